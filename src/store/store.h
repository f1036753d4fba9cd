/*
 * store.h - the keyspace: the replicated state machine of a partition.
 *
 * Values are strings, hashes (the grid's named maps), lists or sets. Keys may carry an absolute
 * expiry time in milliseconds. The store is pure: no clock, no I/O; time comes in as arguments.
 *
 * Two ways in:
 *  - Reads (store_find and friends) take the reader's now_ms and hide keys whose expiry has
 *    passed (lazy expiry without mutation: only the log deletes).
 *  - Writes happen only through store_apply(), which executes one encoded log entry. Apply is
 *    deterministic: it reads no clock (the proposer stamped entry.time_ms and every absolute
 *    expiry), draws no randomness, and so yields the same keyspace on every replica. A key whose
 *    expiry is <= entry.time_ms is treated as absent by that entry.
 *
 * Expiry and eviction deletions are themselves proposed as entries: store_propose_expired()
 * and store_propose_evictions() pick keys (the leader's decision, with the store's seeded PRNG
 * and approximate LRU) and encode an entry that the caller proposes like any other.
 *
 * Memory: store_used_bytes() is the sum of the allocator's usable sizes of everything the store
 * holds (entries, tables, hash objects); maxmemory applies to it.
 */
#ifndef HY_STORE_H
#define HY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/prng.h"
#include "common/status.h"
#include "proto/resp.h"

/* Largest string value, as Redis's proto-max-bulk-len default. */
#define STORE_STRING_BYTES_MAX (512ull * 1024 * 1024)

enum store_type {
    STORE_STRING = 1,
    STORE_HASH = 2,
    STORE_LIST = 3,
    STORE_SET = 4,
    STORE_ZSET = 5,
    STORE_STREAM = 6
};

enum store_evict_policy { STORE_NOEVICTION, STORE_ALLKEYS_LRU, STORE_VOLATILE_LRU };

/* Redis's encoding thresholds (CONFIG SET hash-max-listpack-entries ...): when a small
 * collection leaves its compact layout for the full structure (never back, as Redis), and the
 * stream node sizes. Replicated state: they change only through STORE_OP_ENCODING_SET entries
 * and travel in snapshots (version 9), so every replica lays a collection out alike and a
 * leader's OBJECT ENCODING is every replica's. `set` 0 means Redis 7.0's defaults. */
struct store_encoding {
    int set;
    int64_t hash_entries, hash_value; /* hash-max-listpack-entries / -value */
    int64_t set_intset_entries;       /* set-max-intset-entries */
    int64_t set_entries, set_value;   /* set-max-listpack-entries / -value (7.2's) */
    int64_t zset_entries, zset_value; /* zset-max-listpack-entries / -value */
    int64_t list_size;                /* list-max-listpack-size: > 0 entries, < 0 -1..-5 */
    int64_t list_compress;            /* list-compress-depth (accepted, not used) */
    int64_t stream_entries;           /* stream-node-max-entries (XADD/XTRIM LIMIT's default) */
    int64_t stream_bytes;             /* stream-node-max-bytes (accepted, not used) */
};
#define STORE_ENCODING_DEFAULT                              \
    {                                                       \
        1, 128, 64, 512, 128, 64, 128, 64, -2, 0, 100, 4096 \
    }

/* The thresholds by their Redis names: the i-th name (both spellings, listpack and ziplist,
 * are names), NULL past the last. */
const char *store_encoding_name(size_t i);
/* Sets the threshold named name (any case) to v in *enc. 0 when name is none of them or v is
 * out of its range (negative, except list-max-listpack-size, or above INT32_MAX). */
int store_encoding_set(struct store_encoding *enc, const uint8_t *name, size_t len, int64_t v);
/* The threshold named name (any case) in *enc into *v; 0 when name is none of them. */
int store_encoding_get(const struct store_encoding *enc, const char *name, int64_t *v);

struct store_config {
    uint64_t seed;          /* PRNG for sampling (eviction, expiry, HRANDFIELD) */
    size_t maxmemory_bytes; /* 0 = no limit */
    enum store_evict_policy policy;
    unsigned maxmemory_samples; /* keys sampled per eviction pick; default 5 */
    /* Session ids this store hands out are above it: every replica of one Raft group must be
     * given the same (the node uses the group id << 48, so that an id names its partition). */
    uint64_t session_id_base;
    /* Keyspace notification classes to report (enum store_notify_class bits; 0: none, and
     * apply does no work for them). Node-local: it changes what is reported, never the data. */
    unsigned notify_classes;
    struct store_encoding encoding;
};

struct store;
struct store_obj; /* a value in the keyspace; borrowed, valid until the next store_apply */

struct store *store_create(const struct store_config *cfg, const struct hy_log *log);
/* Changes applied so far (Redis's dirty counter): one per write entry that changed data, in
 * general; SETBIT and BITFIELD count as Redis's (only when bits changed or the string was
 * created or grown; BITFIELD INCRBY always); an entry that only read (SORT, GEOSEARCH,
 * PFCOUNT without a store, a script or EXEC wrapper itself) or failed with WRONGTYPE counts
 * none. Node-local bookkeeping, never in snapshots. */
uint64_t store_dirty(const struct store *s);
void store_destroy(struct store *s);
/* Changes maxmemory / policy / samples at run time (CONFIG SET). The encoding thresholds are
 * taken from cfg at creation only: afterwards they are replicated state (STORE_OP_ENCODING_SET). */
void store_configure(struct store *s, const struct store_config *cfg);
/* The thresholds this replica applies. */
const struct store_encoding *store_encoding(const struct store *s);

/* ---- reads --------------------------------------------------------------------------------- */

/* The live value of key at now_ms, or NULL when absent or expired. Updates the key's LRU
 * clock to now_ms (non-replicated metadata, used only by the leader's eviction choice). */
const struct store_obj *store_find(struct store *s, const uint8_t *key, size_t klen,
                                   uint64_t now_ms);
/* As store_find without touching the LRU clock (TYPE, TTL, EXISTS, OBJECT: Redis's NOTOUCH). */
const struct store_obj *store_peek(const struct store *s, const uint8_t *key, size_t klen,
                                   uint64_t now_ms);
/* Milliseconds since the key was last touched (OBJECT IDLETIME), in the LRU clock's 256 ms
 * steps. */
uint64_t store_obj_idle_ms(const struct store_obj *o, uint64_t now_ms);
/* A random live key (the store's PRNG; borrowed until the next change); 0 when none found. */
int store_random_key(struct store *s, uint64_t now_ms, const uint8_t **k_out, size_t *klen_out);
enum store_type store_obj_type(const struct store_obj *o);
/* Absolute expiry in ms, or -1 when the key has none. */
int64_t store_obj_expire_at(const struct store_obj *o);
/* A string's bytes (borrowed). Precondition: type STORE_STRING. */
void store_obj_string(const struct store_obj *o, const uint8_t **p_out, size_t *len_out);

size_t store_hash_len(const struct store_obj *o);
/* Returns 1 and the value (borrowed) when field exists in hash o, else 0. */
int store_hash_get(const struct store_obj *o, const uint8_t *f, size_t flen, const uint8_t **v_out,
                   size_t *vlen_out);

typedef void (*store_field_cb)(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v,
                               size_t vlen);
/* Calls cb for every field of hash o (order unspecified, stable while unmodified). */
void store_hash_foreach(const struct store_obj *o, store_field_cb cb, void *ctx);
/* One step of HSCAN: visits some fields, returns the next cursor (0 = done). Guarantees as
 * SCAN: a field present from start to end is returned at least once. */
uint64_t store_hash_scan(const struct store_obj *o, uint64_t cursor, size_t count_hint,
                         store_field_cb cb, void *ctx);
/* A uniformly random field of a non-empty hash (store's PRNG); borrowed pointers. */
void store_hash_random(struct store *s, const struct store_obj *o, const uint8_t **f_out,
                       size_t *flen_out, const uint8_t **v_out, size_t *vlen_out);

/* Bytes the value holds (its key entry and objects, as counted by store_used_bytes). */
size_t store_obj_bytes(const struct store_obj *o);
/* 1 when a hash, sorted set or set is in its compact list encoding (OBJECT ENCODING's
 * listpack for hashes and sorted sets; a set's list has no name in Redis 7.0). */
int store_obj_compact(const struct store_obj *o);
/* 1 when a set is an intset (sorted integers). */
int store_set_intset(const struct store_obj *o);

/* Lists. Indexes are 0-based from the head; precondition: index < store_list_len(o). */
size_t store_list_len(const struct store_obj *o);
/* 1 while a list is one compact buffer (Redis 7.0 names every list quicklist). */
int store_list_compact(const struct store_obj *o);
void store_list_at(const struct store_obj *o, size_t index, const uint8_t **p_out, size_t *len_out);

/* Sets (members only; the callbacks' value is always empty). */
size_t store_set_len(const struct store_obj *o);
int store_set_has(const struct store_obj *o, const uint8_t *m, size_t mlen);
void store_set_foreach(const struct store_obj *o, store_field_cb cb, void *ctx);
uint64_t store_set_scan(const struct store_obj *o, uint64_t cursor, size_t count_hint,
                        store_field_cb cb, void *ctx);
/* A uniformly random member of a non-empty set, drawn from prng; borrowed. */
void store_set_random(const struct store_obj *o, struct hy_prng *prng, const uint8_t **m_out,
                      size_t *mlen_out);
/* 1 when every member is an integer that fits in 64 bits (Redis's intset test). */
int store_set_all_int(const struct store_obj *o);

/* Sorted sets: members ordered by (score, member bytes); ranks are 0-based. */
size_t store_zset_len(const struct store_obj *o);
void store_zset_at(const struct store_obj *o, size_t rank, double *score_out, const uint8_t **m_out,
                   size_t *mlen_out);
/* Calls cb with the member and score of each rank in [lo, hi) (lo <= hi <= len), in rank order,
 * or from hi - 1 down to lo when rev: O(log n + hi - lo), where a store_zset_at per rank costs
 * O(rank) on a compact set. The member is borrowed for the call; cb must not change o. */
typedef void (*store_zmember_cb)(void *ctx, const uint8_t *m, size_t mlen, double score);
void store_zset_range(const struct store_obj *o, size_t lo, size_t hi, int rev, store_zmember_cb cb,
                      void *ctx);
/* Returns 1 and the score when m is a member. */
int store_zset_score(const struct store_obj *o, const uint8_t *m, size_t mlen, double *score_out);
/* The rank of member m, or -1. */
int64_t store_zset_rank(const struct store_obj *o, const uint8_t *m, size_t mlen);

/* A score range (ZRANGEBYSCORE's "(1.5" "-inf" "+inf") and a lex range ("[a" "(a" "-" "+"). */
struct store_zscore_range {
    double min, max;
    int minex, maxex;
};
struct store_zlex_range {
    const uint8_t *min, *max; /* borrowed, after the [ or ( */
    size_t minlen, maxlen;
    int min_kind, max_kind; /* 0 inclusive, 1 exclusive, 2 "-" (below all), 3 "+" (above all) */
};
int store_zscore_range_parse(const uint8_t *min, size_t minlen, const uint8_t *max, size_t maxlen,
                             struct store_zscore_range *out);
int store_zlex_range_parse(const uint8_t *min, size_t minlen, const uint8_t *max, size_t maxlen,
                           struct store_zlex_range *out);
/* The ranks [*lo_out, *hi_out) of the members inside the range (empty: lo == hi). Lex ranges
 * assume equal scores, as Redis's do. */
void store_zset_score_span(const struct store_obj *o, const struct store_zscore_range *r,
                           size_t *lo_out, size_t *hi_out);
void store_zset_lex_span(const struct store_obj *o, const struct store_zlex_range *r,
                         size_t *lo_out, size_t *hi_out);
/* Parses a score as ZADD does (inf allowed, NaN refused); 1 on success. */
int store_zscore_parse(const uint8_t *p, size_t len, double *out);

/* ZUNION/ZINTER/ZDIFF over sorted sets and sets (a set member scores 1; NULL = missing, an
 * empty set). The result is a detached sorted set, sorted as a stored one. */
enum store_zop { STORE_ZUNION = 0, STORE_ZINTER = 1, STORE_ZDIFF = 2 };
enum store_zaggr { STORE_ZAGGR_SUM = 0, STORE_ZAGGR_MIN = 1, STORE_ZAGGR_MAX = 2 };
struct store_ztmp;
/* limit > 0 (ZINTER only): stop after that many members. */
struct store_ztmp *store_zcombine(const struct store_obj *const *srcs, const double *weights,
                                  size_t n, enum store_zop op, enum store_zaggr aggr,
                                  uint64_t limit);
size_t store_ztmp_len(const struct store_ztmp *t);
void store_ztmp_at(const struct store_ztmp *t, size_t rank, double *score_out,
                   const uint8_t **m_out, size_t *mlen_out);
void store_ztmp_free(struct store_ztmp *t);

struct store_arg;

/* Streams (store_stream.c). An entry ID is (ms, seq). */
struct store_stream_id {
    uint64_t ms, seq;
};
/* Parses "ms" (seq = missing_seq) or "ms-seq"; without strict, "-" and "+" are the smallest and
 * largest IDs. With seq_given_out, "ms-*" parses (*seq_given_out = 0). 1 on success. */
int store_stream_id_parse(const uint8_t *p, size_t len, uint64_t missing_seq, int strict,
                          struct store_stream_id *out, int *seq_given_out);
/* An XRANGE bound: as above, and "(id" excludes id (end: the interval's end). Returns 1, 0 for
 * a bad ID, -1 when the exclusive bound leaves no ID. */
int store_stream_interval_parse(const uint8_t *p, size_t len, int end, struct store_stream_id *out);
size_t store_stream_len(const struct store_obj *o);
/* The last ID the stream generated (XADD's top), which may be above its last entry. */
struct store_stream_id store_stream_last_id(const struct store_obj *o);
/* 1 when the stream holds an entry with an ID above id. */
int store_stream_has_after(const struct store_obj *o, struct store_stream_id id);
/* 1 and group g's last delivered ID when the group exists. */
int store_stream_group_last(const struct store_obj *o, const uint8_t *g, size_t glen,
                            struct store_stream_id *out);
/* Writes XRANGE's reply: the entries in [start, end], at most count, rev: highest first. */
void store_stream_range(const struct store_obj *o, struct store_stream_id start,
                        struct store_stream_id end, uint64_t count, int rev, struct resp_writer *w);
/* XPENDING key group [[IDLE n] start end count [consumer]] (argv from the key; o may be NULL):
 * writes the reply, idle times measured at now_ms. */
void store_stream_xpending(const struct store_obj *o, const struct store_arg *argv, size_t argc,
                           uint64_t now_ms, struct resp_writer *w);
/* XINFO STREAM|GROUPS|CONSUMERS (argv from the subcommand) on the stream o: writes the reply
 * and returns 1, or 0 for an unknown subcommand or arity (nothing written). */
int store_stream_xinfo(const struct store_obj *o, const struct store_arg *argv, size_t argc,
                       uint64_t now_ms, struct resp_writer *w);

/* Bit strings (SETBIT, BITFIELD): a bit offset as Redis parses it ("#N" = N * bits when hash
 * and bits > 0), below STORE_STRING_BYTES_MAX * 8; 1 on success. */
int store_bit_offset_parse(const uint8_t *p, size_t len, int hash, unsigned bits, uint64_t *out);

struct store_arg;

/* One BITFIELD operation, parsed. */
enum store_bf_opcode { STORE_BF_GET = 0, STORE_BF_SET = 1, STORE_BF_INCRBY = 2 };
enum store_bf_overflow { STORE_BF_WRAP = 0, STORE_BF_SAT = 1, STORE_BF_FAIL = 2 };
struct store_bf_op {
    uint8_t opcode, overflow, sign, bits;
    uint64_t offset;
    int64_t value; /* SET's value, INCRBY's increment */
};
/*
 * Parses BITFIELD's subcommands args[0..n) (after the key) into ops (room for n), as Redis 7.0
 * does. Returns the number of ops, or -1 with *err_out set to the error reply (a static
 * string). *writes_out tells whether any op writes; *highest_out is the highest bit a write
 * reaches (the string grows to hold it).
 */
long store_bitfield_parse(const struct store_arg *args, size_t n, struct store_bf_op *ops,
                          int *writes_out, uint64_t *highest_out, const char **err_out);
/* Replies the array of a read-only BITFIELD (GET ops only) over string bytes p (NULL = none). */
void store_bitfield_read(const uint8_t *p, size_t len, const struct store_bf_op *ops, size_t n,
                         struct resp_writer *w);

/* SORT / SORT_RO (store_sort.c). Options parsed from the arguments after the key; they
 * borrow from args. */
struct store_sort_opts {
    const struct store_arg *by;    /* BY pattern, or NULL */
    const struct store_arg *store; /* STORE destination, or NULL */
    struct store_arg *gets;        /* GET patterns (allocated) */
    size_t ngets;
    int64_t limit_start, limit_count;
    int desc, alpha, dontsort; /* dontsort: BY a pattern without '*' */
};
/* Parses SORT's options (readonly: SORT_RO, no STORE). Returns 1, or 0 with *err_out set (a
 * static error reply); free a parsed one with store_sort_opts_free. */
int store_sort_parse(const struct store_arg *args, size_t n, int readonly,
                     struct store_sort_opts *o, const char **err_out);
void store_sort_opts_free(struct store_sort_opts *o);
/* SORT's result: n byte strings (len SIZE_MAX = nil) held in data. */
struct store_sort_result {
    struct hy_buf data;
    size_t n;
    size_t *off, *len;
};
/* Sorts the list, set or sorted set at key as of now; BY/GET read keys of s. Returns 1, or 0
 * with *err_out set (WRONGTYPE, a score that does not parse). Free r either way. */
int store_sort_run(struct store *s, uint64_t now, const uint8_t *key, size_t klen,
                   const struct store_sort_opts *o, struct store_sort_result *r,
                   const char **err_out);
void store_sort_result_free(struct store_sort_result *r);
/* Writes r as SORT's array reply (nil for missing GET values); w may be NULL. */
void store_sort_reply(const struct store_sort_result *r, struct resp_writer *w);

/* Keys held, including expired ones not yet deleted by the log (as Redis's DBSIZE). */
size_t store_key_count(const struct store *s);
/* Keys with an expiry. */
size_t store_volatile_count(const struct store *s);

typedef void (*store_key_cb)(void *ctx, const uint8_t *key, size_t klen, const struct store_obj *o);
/* One step of SCAN over the keyspace, skipping keys expired at now_ms; returns the next
 * cursor (0 = done). count_hint buckets' worth of keys are visited per call (at least one). */
uint64_t store_scan(struct store *s, uint64_t cursor, size_t count_hint, uint64_t now_ms,
                    store_key_cb cb, void *ctx);

size_t store_used_bytes(const struct store *s);
/* Does some incremental-rehash work when a table is resizing; call when idle. Returns 1 while
 * more work is pending. */
int store_rehash_step(struct store *s, unsigned steps);

/* ---- log entries: the only way to change the keyspace ------------------------------------- */

enum store_op {
    STORE_OP_NOOP = 0,     /* no args; no reply. A new leader's no-op, for instance. */
    STORE_OP_SET,          /* [key, value] expire_at; NX XX GET KEEPTTL REPLY_INT */
    STORE_OP_MSET,         /* [k1, v1, ...]; NX (MSETNX: reply 1/0, else +OK) */
    STORE_OP_DEL,          /* [keys...] -> deleted count */
    STORE_OP_EXPIRE,       /* [key] expire_at; NX XX GT LT -> 1/0; past time deletes */
    STORE_OP_PERSIST,      /* [key] -> 1/0 */
    STORE_OP_RENAME,       /* [src, dst]; NX (RENAMENX -> 1/0, else +OK) */
    STORE_OP_INCRBY,       /* [key] incr -> new value */
    STORE_OP_INCRBYFLOAT,  /* [key, increment text] -> bulk */
    STORE_OP_APPEND,       /* [key, value] -> new length */
    STORE_OP_SETRANGE,     /* [key, value] incr = offset -> new length */
    STORE_OP_GETDEL,       /* [key] -> bulk or null */
    STORE_OP_GETEX,        /* [key] expire_at (-1 = keep); PERSIST -> bulk or null */
    STORE_OP_HSET,         /* [key, f1, v1, ...]; REPLY_OK (HMSET) -> fields added */
    STORE_OP_HSETNX,       /* [key, field, value] -> 1/0 */
    STORE_OP_HDEL,         /* [key, f...] -> removed count (empty hash deletes the key) */
    STORE_OP_HINCRBY,      /* [key, field] incr -> new value */
    STORE_OP_HINCRBYFLOAT, /* [key, field, increment text] -> bulk */
    STORE_OP_FLUSHALL,     /* no args -> +OK */
    STORE_OP_EXPIRED,      /* [keys...] delete those expired at time_ms; no reply */
    STORE_OP_EVICT,        /* [keys...] delete (maxmemory eviction); no reply */
    STORE_OP_SESSION_OPEN, /* no args; incr = ttl ms -> new session id */
    STORE_OP_SESSION_REQ,  /* [seq (8 bytes LE), inner entry]; incr = session id; RESP3 */
    STORE_OP_MEMBER_SET,   /* [name, host, role]; incr = peer port; NX -> +OK */
    /* Lists. RIGHT picks the tail (else the head); DST_RIGHT the destination's tail. */
    STORE_OP_PUSH,    /* [key, elems...]; RIGHT XX (LPUSHX) -> new length */
    STORE_OP_POP,     /* [key]; incr = count (-1: none given); RIGHT -> bulk | array */
    STORE_OP_LSET,    /* [key, elem]; incr = index -> +OK */
    STORE_OP_LINSERT, /* [key, pivot, elem]; RIGHT = AFTER -> length, -1, 0 */
    STORE_OP_LREM,    /* [key, elem]; incr = count -> removed */
    STORE_OP_LTRIM,   /* [key, start, stop] (decimal text) -> +OK */
    STORE_OP_LMOVE,   /* [src, dst]; RIGHT DST_RIGHT -> bulk | null */
    STORE_OP_LMPOP,   /* [keys...]; incr = count; RIGHT -> null | [key, [elems]] */
    /* Sets. */
    STORE_OP_SADD,   /* [key, members...] -> added */
    STORE_OP_SREM,   /* [key, members...] -> removed (an empty set deletes the key) */
    STORE_OP_SMOVE,  /* [src, dst, member] -> 1/0 */
    STORE_OP_SPOP,   /* [key, seed (8 bytes LE), chosen members...]; incr = count (-1: none) */
    STORE_OP_SSTORE, /* [dst, keys...]; incr = 0 SINTER, 1 SUNION, 2 SDIFF -> result size */
    /* Sorted sets. RIGHT picks the highest scores. */
    STORE_OP_ZADD,         /* [key, score, member, ...]; NX XX GT LT CH INCR -> count | score */
    STORE_OP_ZREM,         /* [key, members...] -> removed */
    STORE_OP_ZPOP,         /* [key]; incr = count (-1: none); RIGHT -> [member, score...] */
    STORE_OP_ZMPOP,        /* [keys...]; incr = count; RIGHT -> null | [key, [[m, s]...]] */
    STORE_OP_ZREMRANGE,    /* [key, min, max]; incr = 0 rank, 1 score, 2 lex -> removed */
    STORE_OP_ZSTORE,       /* [dst, keys..., weights...]; incr = zop + 4 * aggregate -> size */
    STORE_OP_ZRANGESTORE,  /* [dst, src, min, max, offset, limit]; incr = 0 rank, 1 score, 2 lex;
                              RIGHT = REV -> size */
    STORE_OP_SESSION_REQW, /* as SESSION_REQ, admitted by the window rule (client sessions) */
    /* Bits. */
    STORE_OP_SETBIT,   /* [key, offset, bit] (decimal text) -> old bit */
    STORE_OP_BITOP,    /* [dst, srcs...]; incr = 0 AND, 1 OR, 2 XOR, 3 NOT -> result length */
    STORE_OP_BITFIELD, /* [key, subcommand args...] as BITFIELD's -> array */
    /* Keys. */
    STORE_OP_COPY, /* [src, dst]; REPLACE -> 1/0 */
    STORE_OP_SORT, /* [key, SORT's options...] -> array, or STORE's length */
    /* HyperLogLog. */
    STORE_OP_PFADD,   /* [key, elements...] -> 1/0 */
    STORE_OP_PFCOUNT, /* [keys...] -> cardinality (one key: its cache refreshed) */
    STORE_OP_PFMERGE, /* [dst, srcs...] -> +OK */
    /* ACL users (store_acl.c). Passwords arrive hashed (#hex, !hex): apply never hashes. */
    STORE_OP_ACL_SETUSER, /* [name, rules...] -> +OK | -ERR (the user unchanged) */
    STORE_OP_ACL_DELUSER, /* [names...] -> deleted count ("default" is never deleted) */
    /* Transactions (store_watch.c): MULTI/EXEC as one entry. */
    STORE_OP_EXEC, /* [seed (8), nwatch (4 LE), (key, version 8 LE + alive 1) x nwatch,
                      items...] -> null array (a watched key changed) | [item replies] */
    /* [name, rule count, rules..., name, rule count, rules...]: every user replaced at once
     * (ACL LOAD) -> +OK | -ERR (nothing changed) */
    STORE_OP_ACL_LOAD,
    /* DUMP/RESTORE (store_codec.c "DUMP payloads"): [key, payload]; expire_at (-1: none);
     * REPLACE; incr = IDLETIME in ms (-1: none) -> +OK | -BUSYKEY | -ERR (payload) */
    STORE_OP_RESTORE,
    /* GEORADIUS[BYMEMBER] and GEOSEARCHSTORE (store_geo.c): [dst ("" without STORE), src,
     * query (STORE_GEO_BLOB_BYTES), member (FROMMEMBER)] -> the results | stored count */
    STORE_OP_GEOSEARCH,
    /* Lua scripts (store_script.c): the whole script is one entry, run at apply on every
     * replica through the node's runner. */
    STORE_OP_EVAL,         /* [seed (8 LE) + step budget (8 LE), body, numkeys (4 LE), keys...,
                              args...] -> the script's reply; a body that compiles is cached */
    STORE_OP_SCRIPT_LOAD,  /* [body] -> its SHA-1 (bulk); cached */
    STORE_OP_SCRIPT_FLUSH, /* no args -> +OK; the cache emptied */
    STORE_OP_FCALL,        /* [seed + step budget (16), library code, function name, numkeys (4 LE),
                              keys..., args...] -> the function's reply */
    STORE_OP_FUNCTION_LOAD,   /* [code, library name, (function name, flags (1))...]; REPLACE
                                 -> the library name | -ERR (nothing changed) */
    STORE_OP_FUNCTION_DELETE, /* [library name] -> +OK | -ERR Library not found */
    STORE_OP_FUNCTION_FLUSH,  /* no args -> +OK */
    /* Streams (store_stream.c): the command's own arguments, parsed at apply as Redis 7.0
     * does (its errors included); time_ms is the leader's clock (auto IDs, delivery times);
     * incr = the leader's stream-node-max-entries (XADD, XTRIM). */
    STORE_OP_XADD,       /* [key, options..., id, field, value...] -> id | null */
    STORE_OP_XTRIM,      /* [key, MAXLEN|MINID [=|~] n [LIMIT n]] -> removed */
    STORE_OP_XDEL,       /* [key, ids...] -> removed */
    STORE_OP_XSETID,     /* [key, id, options...] -> +OK */
    STORE_OP_XGROUP,     /* [key, subcommand, args...] -> as XGROUP's */
    STORE_OP_XREADGROUP, /* [group, consumer, keys..., ids...]; incr = COUNT * 2 + NOACK */
    STORE_OP_XACK,       /* [key, group, ids...] -> acknowledged */
    STORE_OP_XCLAIM,     /* [key, group, consumer, min-idle, ids..., options...] */
    STORE_OP_XAUTOCLAIM, /* [key, group, consumer, min-idle, start, options...] */
    /* FUNCTION RESTORE: [(nargs (4 LE), code, library name, (function name, flags)...)...];
     * incr = 0 APPEND, 1 REPLACE, 2 FLUSH -> +OK | -ERR (nothing changed: all or nothing) */
    STORE_OP_FUNCTION_RESTORE,
    /* [batch] (store_wan.h): entries shipped by another cluster's partition leader, each
     * applied once by its source index -> the highest source index applied from that source */
    STORE_OP_WAN_APPLY,
    /* [name, value, ...]: encoding thresholds (store_encoding_set's names, values in decimal)
     * -> +OK | -ERR (nothing changed: all or nothing) */
    STORE_OP_ENCODING_SET,
    /* [origin cluster name]: from this entry on the store keeps a version (HLC, origin id) per
     * key, for active-active links (docs/wan.md "Active-active") -> +OK */
    STORE_OP_WAN_HLC,
    /* [key, version (hlc u64 LE, origin u32 LE), DUMP payload, empty for a deletion];
     * expire_at (-1: none): a key's state shipped by an active-active link, merged by the
     * batch's policy; only inside STORE_OP_WAN_APPLY -> 1 applied / 0 the local one kept */
    STORE_OP_WAN_PUT,
    /* [epoch, decimal]: the region promotion this partition applied (docs/wan.md "Region
     * failover"): while it is not 0, active-passive WAN batches are refused at apply, so that
     * every batch proposed before it applies and none after it does; 0 when the cluster is no
     * longer primary -> +OK */
    STORE_OP_WAN_FENCE,
    /* [key, count (decimal, 1 or more), ...]: reads of each key its partition's leader served
     * (docs/wan.md "HIGHER_HITS"): in a store keeping versions, each key that holds a value
     * gets a new version, its hits grown by its count, and its state is tapped as a write's
     * (shipped by the active-active links); nothing otherwise -> +OK */
    STORE_OP_WAN_HITS,
    STORE_OP_COUNT
};

enum store_flag {
    STORE_F_NX = 1u << 0,
    STORE_F_XX = 1u << 1,
    STORE_F_GT = 1u << 2,
    STORE_F_LT = 1u << 3,
    STORE_F_GET = 1u << 4,
    STORE_F_KEEPTTL = 1u << 5,
    STORE_F_PERSIST = 1u << 6,
    STORE_F_REPLY_INT = 1u << 7,  /* SETNX: :1/:0 instead of +OK/nil */
    STORE_F_REPLY_OK = 1u << 8,   /* HMSET: +OK instead of the count */
    STORE_F_RESP3 = 1u << 9,      /* SESSION_REQ: the reply kept for retries is in RESP3 */
    STORE_F_RIGHT = 1u << 10,     /* list ops: the tail (LINSERT: AFTER) */
    STORE_F_DST_RIGHT = 1u << 11, /* LMOVE: push at the destination's tail */
    STORE_F_CH = 1u << 12,        /* ZADD: count changed members, not only added ones */
    STORE_F_INCR = 1u << 13,      /* ZADD: increment (ZINCRBY); reply the new score */
    STORE_F_REPLACE = 1u << 14,   /* COPY: overwrite an existing destination */
    STORE_F_FLAT = 1u << 15,      /* LMPOP/ZMPOP: BLPOP's [key, elem] / BZPOPMIN's [key, m, s] */
};

/* SSTORE kinds (entry.incr). */
enum store_setop { STORE_SINTER = 0, STORE_SUNION = 1, STORE_SDIFF = 2 };

struct store_arg {
    const uint8_t *ptr;
    size_t len;
};

struct store_entry {
    enum store_op op;
    uint32_t flags;       /* enum store_flag bits */
    uint64_t time_ms;     /* the proposer's clock at proposal: "now" for this entry */
    int64_t expire_at_ms; /* absolute expiry for SET/EXPIRE/GETEX, -1 = none */
    int64_t incr;         /* INCRBY/HINCRBY delta; SETRANGE offset */
    uint32_t argc;
    const struct store_arg *argv; /* borrowed */
};

/*
 * Hints, with no effect on the store's state: they start loading into the CPU's caches the
 * memory that applying `entry` (len bytes, as store_apply takes it) will touch first.
 * store_prefetch_bucket: its first argument's hash bucket; returns 0 when the entry names no
 * key, else 1 with the key's hash in *hv. store_prefetch_node, once that bucket is cached: the
 * key's entry it points at (hv as store_prefetch_bucket gave it). Applying a run of entries,
 * the caller hints entry i + 2d's bucket and entry i + d's node before applying entry i, so
 * that the cache misses of a lookup, most of a SET's apply on 100,000 keys (docs/performance.md
 * "Applying a run of entries"), overlap instead of following each other; keeping each entry's
 * hash from the first hint to the second reads and hashes its key once. Malformed bytes are
 * ignored.
 */
int store_prefetch_bucket(const struct store *s, const uint8_t *entry, size_t len, uint64_t *hv);
void store_prefetch_node(const struct store *s, uint64_t hv);

/* Encodes e (see docs/disk-format.md, "store entry") and appends it to out. */
void store_entry_encode(const struct store_entry *e, struct hy_buf *out);
/*
 * Decodes and validates one encoded entry (the same checks store_apply makes: known op and
 * flags, argument count for the op, no trailing bytes). On HY_OK, e_out->argv is allocated and
 * its slices borrow from buf; release it with store_entry_release. On HY_ECORRUPT there is
 * nothing to release. For tools and for callers that inspect entries before proposing.
 */
int store_entry_decode(const uint8_t *buf, size_t len, struct store_entry *e_out) HY_MUST_CHECK;
void store_entry_release(struct store_entry *e);

/*
 * Applies one encoded entry. The reply (if the op has one) is appended through `reply`, which
 * may be NULL on replicas that answer nobody. Returns HY_OK when the entry was well formed
 * (whatever its reply, errors such as WRONGTYPE included) and HY_ECORRUPT when the bytes do not
 * decode; then the keyspace is unchanged.
 */
/* Called after every entry applied, nested ones included (a session request's inner write,
 * a transaction's and a script's writes each come once, the wrapper too), except those of a
 * WAN batch: links between clusters collect the data changes to ship through it (node/wan.c).
 * The tap reads e and the entry's bytes; it must not apply anything. Once the store keeps
 * versions (STORE_OP_WAN_HLC), a write that names keys is tapped as one STORE_OP_WAN_PUT per
 * key it wrote instead: the key's state after it, with its version. */
typedef void (*store_tap_fn)(void *ctx, const struct store_entry *e, const uint8_t *entry,
                             size_t len);
void store_set_tap(struct store *s, store_tap_fn fn, void *ctx);
/* While on, the tap sees the state of each key a write changed (a STORE_OP_WAN_PUT, version 0
 * when the store keeps none) instead of the op, as a store keeping versions always does. Not
 * replicated state: a WAN resync's leader turns it on for the keys its scan may have seen
 * already (docs/wan.md "Resync"), since a state may be applied twice and an op may not. */
void store_set_tap_states(struct store *s, int on);
/* Encodes into out the STORE_OP_WAN_PUT of key k's state (its value o as a DUMP payload and
 * its expiry) with its kept version, or version 0 (and this store's origin id, when it keeps
 * versions) for a key written before versions were kept. time_ms is the entry's time. */
void store_wan_state(struct store *s, const uint8_t *k, size_t klen, const struct store_obj *o,
                     uint64_t time_ms, struct hy_buf *out);

/* A section the store's owner keeps in the store's snapshots next to the keyspace (the WAN
 * outbox, node/wan_ship.c), so that what it held at the snapshot's index survives a restart
 * and reaches a replica the snapshot is installed on. `encode` appends its bytes (run in the
 * forked snapshot child too: it may only read). `load` is given them back by
 * store_snapshot_decode before the keyspace is swapped: it returns 0 when they are malformed
 * (then nothing changes and the snapshot is corrupt), else takes them. A snapshot without the
 * section (older than version 10, or an empty one) does not call `load`. The section is not
 * part of store_digest: replicas may hold different ones. */
typedef void (*store_extra_encode_fn)(void *ctx, struct hy_buf *out);
typedef int (*store_extra_load_fn)(void *ctx, const uint8_t *data, size_t len);
void store_set_snapshot_extra(struct store *s, store_extra_encode_fn encode,
                              store_extra_load_fn load, void *ctx);

/* The highest source index applied from (origin cluster, source partition) by
 * STORE_OP_WAN_APPLY (store_wan.h); 0 when none was. */
uint64_t store_wan_applied(struct store *s, const char *origin, uint32_t partition);

struct wan_version;
struct wan_conflict_count;
struct wan_conflict;
/* Whether the store keeps versions per key (STORE_OP_WAN_HLC was applied), and its clock: the
 * last HLC it drew or received. */
int store_wan_versions_on(const struct store *s);
/* The region promotion this partition applied (STORE_OP_WAN_FENCE; 0: none): while not 0,
 * active-passive WAN batches are refused at apply. */
uint64_t store_wan_fence(struct store *s);
uint64_t store_wan_clock(const struct store *s);
/* Key's version: 1 with *v set when one is kept (a live key or a tombstone), else 0. */
int store_wan_version(const struct store *s, const uint8_t *k, size_t klen, struct wan_version *v);
/* How many versions are kept (keys and tombstones) and the bytes they take. */
size_t store_wan_versions(const struct store *s, size_t *bytes_out);
/* The merge decisions counted since start (struct wan_conflict_count, store_wan.h). */
size_t store_wan_conflict_counts(const struct store *s, const struct wan_conflict_count **out);
/* The last merge decisions over link (NULL: any), newest first, up to cap. */
size_t store_wan_conflicts_last(const struct store *s, const char *link, struct wan_conflict *out,
                                size_t cap);

int store_apply(struct store *s, const uint8_t *entry, size_t len,
                struct resp_writer *reply) HY_MUST_CHECK;

/*
 * Active expiry (leader side): samples up to max_keys volatile keys, and when some have expired
 * at now_ms encodes one STORE_OP_EXPIRED entry naming them into entry_out and returns how many.
 * Returns 0 (entry_out untouched) when none were found.
 */
size_t store_propose_expired(struct store *s, uint64_t now_ms, size_t max_keys,
                             struct hy_buf *entry_out);
/*
 * One active-expiry cycle, as Redis's: samples `sample` volatile keys per round, for up to
 * rounds_max rounds while a quarter or more of a round's sample was newly found expired, and
 * encodes ONE STORE_OP_EXPIRED entry naming every expired key found, each once. Returns how
 * many (0: entry_out untouched). The keys stay in the store until the entry applies: the
 * caller proposes the next cycle only after this one applied (or failed), else it would name
 * the same keys again.
 */
size_t store_propose_expired_cycle(struct store *s, uint64_t now_ms, size_t sample,
                                   unsigned rounds_max, struct hy_buf *entry_out);
/* Keys deleted because their expiry had passed (by EXPIRED entries, or by a write that found
 * the key expired), since the store was created: INFO's expired_keys. Deterministic, as apply. */
uint64_t store_expired_count(const struct store *s);

/*
 * Eviction (leader side): when store_used_bytes exceeds maxmemory and the policy allows,
 * picks victims by approximate LRU (sampling maxmemory_samples keys per pick) until the
 * estimated usage is under the limit or max_keys are chosen, encodes one STORE_OP_EVICT entry
 * into entry_out and returns how many. Returns 0 when nothing can or need be evicted.
 */
size_t store_propose_evictions(struct store *s, uint64_t now_ms, size_t max_keys,
                               struct hy_buf *entry_out);

/* 1 when maxmemory is set and store_used_bytes() exceeds it. */
int store_over_maxmemory(const struct store *s);

/* Recomputes the store's bookkeeping from scratch (key and volatile counts, the volatile
 * index, byte accounting, no empty hash) and stops the process (HY_ASSERT) on a mismatch.
 * O(keys + fields): for tests, fuzzers and the simulator, not for the serving path. */
void store_check_invariants(const struct store *s);

/* ---- client sessions: exactly-once writes ------------------------------------------------
 *
 * A session (STORE_OP_SESSION_OPEN) is replicated state: its id comes from a counter in the
 * store, its expiry is the entry's time plus its TTL, renewed by every request. A request
 * (STORE_OP_SESSION_REQW) carries (session, seq, inner entry) and is admitted by the window
 * rule: the session remembers the STORE_SESSION_WINDOW highest sequences applied, with their
 * replies (at most STORE_SESSION_REPLY_BYTES in all; the lowest lose their bytes first), and
 * a floor, the highest sequence that left the window. A seq in the window returns its kept
 * reply (or an error saying it was applied when the reply was dropped); a seq at or below the
 * floor is refused; any other seq is applied once, whatever order requests arrive in. So a
 * sender that keeps its unanswered sequences within STORE_SESSION_WINDOW of each other may
 * re-send any of them to any leader, any number of times, in any order (a follower forwarding
 * for its clients does: proxy.c). STORE_OP_SESSION_REQ, the first rule ("a seq at or below
 * the highest applied was applied"), is still applied for logs that hold it. The table is
 * bounded (STORE_SESSIONS_MAX sessions) and travels in snapshots. */
#define STORE_SESSIONS_MAX        65536
#define STORE_SESSION_WINDOW      256
#define STORE_SESSION_REPLY_BYTES (1024 * 1024)

/* The Raft term of the entries applied next (0, the default, where there is none: tools,
 * fuzzers). A session opened in a term takes an id at or above session_id_base +
 * ((term >> 20) << 32): FORCE-QUORUM starts a term 2^20 above the survivor's (raft.h), so a
 * forced history never hands out the id of a session a lost history opened (its counter may
 * be behind theirs), and a follower still holding that id hears "unknown session" instead of
 * another client's replies (simulator seed 50000155 --nodes 5 --partitions 8 --rf 3). */
void store_set_term(struct store *s, uint64_t term);

/* Whether session `id` exists and has not expired at now_ms. */
int store_session_exists(const struct store *s, uint64_t id, uint64_t now_ms);

/* Sessions held (expired ones included until something purges them). */
size_t store_session_count(const struct store *s);

/* ---- cluster members: the address book ---------------------------------------------------
 *
 * Every member's name, peer address and wanted role ("voter", "observer", or "removed": a
 * tombstone that tells the leader to take it out of the Raft configuration), set by
 * STORE_OP_MEMBER_SET and kept in snapshots. At most STORE_MEMBERS_MAX entries; when full, a
 * tombstone is dropped to make room, else the op fails. FLUSHALL leaves it alone. */
#define STORE_MEMBERS_MAX     32
#define STORE_MEMBER_NAME_MAX 64
#define STORE_MEMBER_HOST_MAX 255

enum store_member_role { STORE_MEMBER_VOTER = 1, STORE_MEMBER_OBSERVER, STORE_MEMBER_REMOVED };

struct store_member {
    char name[STORE_MEMBER_NAME_MAX + 1];
    char host[STORE_MEMBER_HOST_MAX + 1];
    uint16_t peer_port;
    uint8_t role; /* enum store_member_role */
};

/* The members, sorted by name; *out is borrowed until the next change to the store. */
size_t store_members(const struct store *s, const struct store_member **out);
/* Grows whenever the table changes (an entry applied, a snapshot installed). */
uint64_t store_members_version(const struct store *s);
/* "voter", "observer", "removed"; and back (0 when the text is none of them). */
const char *store_member_role_name(enum store_member_role role);
int store_member_role_parse(const uint8_t *p, size_t len);

/* ---- ACL users ----------------------------------------------------------------------------
 *
 * Redis 6/7's users, as replicated state: they change only through STORE_OP_ACL_SETUSER and
 * STORE_OP_ACL_DELUSER entries and travel in snapshots, so every replica holds the same users.
 * A user is its flags, its password hashes (SHA-256, computed by the proposer: the entry never
 * holds a clear password and apply never hashes), its key and channel patterns and its command
 * rules ("+@all", "-@dangerous", "+get"), kept in order as text: the command table belongs to
 * the node, which compiles them (node/acl.c). Apply checks rules' syntax only; the proposer
 * checks command and category names. `default` is implicit (on, nopass, ~* &* +@all) until an
 * entry names it. At most STORE_ACL_USERS_MAX users of STORE_ACL_RULES_MAX rules each. FLUSHALL
 * leaves them alone. */
#define STORE_ACL_USERS_MAX      1024
#define STORE_ACL_RULES_MAX      1024
#define STORE_ACL_NAME_MAX       128
#define STORE_ACL_RULE_BYTES_MAX 1024
#define STORE_ACL_HASH_BYTES     32

enum store_acl_flag {
    STORE_ACL_ON = 1u << 0,
    STORE_ACL_NOPASS = 1u << 1,
    STORE_ACL_ALLCHANNELS = 1u << 2, /* &*: no channel patterns kept besides */
};
enum store_acl_perm {
    STORE_ACL_READ = 1u << 0,
    STORE_ACL_WRITE = 1u << 1,
    STORE_ACL_CHANNEL = 1u << 2
};

struct store_acl_pattern {
    uint8_t perm; /* enum store_acl_perm: READ|WRITE for keys, CHANNEL for channels */
    uint8_t *p;
    size_t len;
};

struct store_acl_user {
    char name[STORE_ACL_NAME_MAX + 1];
    uint32_t flags; /* enum store_acl_flag */
    uint8_t (*passwords)[STORE_ACL_HASH_BYTES];
    size_t password_count;
    struct store_acl_pattern *patterns; /* keys and channels, in the order given */
    size_t pattern_count;
    char **commands; /* "+@all", "-get"...: lower case, in order; none = -@all */
    size_t command_count;
};

/* The user named name[0..len), or NULL. Borrowed until the next change to the store. */
const struct store_acl_user *store_acl_find(const struct store *s, const uint8_t *name, size_t len);
/* The users, sorted by name (borrowed, as above). */
size_t store_acl_users(const struct store *s, const struct store_acl_user *const **out);
/* Grows whenever a user changes (an entry applied, a snapshot installed). */
uint64_t store_acl_version(const struct store *s);
/* Whether u may touch key (perm: STORE_ACL_READ and/or STORE_ACL_WRITE). */
int store_acl_key_ok(const struct store_acl_user *u, const uint8_t *key, size_t len, unsigned perm);
/* Whether u may use channel ch (PUBLISH, SUBSCRIBE: it matches one of u's channel patterns) or,
 * with `literal`, the pattern ch (PSUBSCRIBE: it is one of them, as Redis 7 checks); always
 * with allchannels. */
int store_acl_channel_ok(const struct store_acl_user *u, const uint8_t *ch, size_t len,
                         int literal);
/* Whether u has the password whose SHA-256 is hash. */
int store_acl_has_password(const struct store_acl_user *u, const uint8_t *hash);
/*
 * Applies one rule to u (a user being built: see store_acl_user_new), as ACL SETUSER does.
 * ">pass" and "<pass" are refused (the proposer turns them into "#hash" and "!hash"). Returns
 * NULL on success, else the reason, as Redis words it, with u partly changed: callers work on
 * a copy.
 */
const char *store_acl_rule_apply(struct store_acl_user *u, const uint8_t *rule, size_t len);
/* A new user with no rules (off, no passwords, no patterns, -@all), named name. */
struct store_acl_user *store_acl_user_new(const uint8_t *name, size_t len);
struct store_acl_user *store_acl_user_copy(const struct store_acl_user *u);
void store_acl_user_free(struct store_acl_user *u);
/* The user as the rules that rebuild it, as ACL LIST words it without "user <name>":
 * "on nopass #<hex> ~* &* +@all" (tokens separated by one space). */
void store_acl_user_describe(const struct store_acl_user *u, struct hy_buf *out);

/* ---- transactions: WATCH versions and EXEC ---------------------------------------------
 *
 * Every key hashes (CRC32C of its name, so every replica agrees) to one of
 * STORE_WATCH_BUCKETS buckets, each holding the store's apply sequence (a counter that grows
 * by one per applied entry, nested ones included) of the last entry that wrote a key of that
 * bucket: any write op naming the key (even one that changed nothing, or failed), an expiry or
 * eviction entry naming it, and FLUSHALL for every key it removed. The buckets and the counter
 * are replicated state (applied identically, kept in snapshots from version 6), so a version
 * read on any replica at WATCH time can be checked by the EXEC entry at apply time on every
 * replica, across failovers. A change is never missed; a write to another key of the same
 * bucket (or a no-op write of the key) aborts an EXEC that Redis would have run: a false
 * conflict, which a WATCH user already retries.
 *
 * A STORE_OP_EXEC entry carries the watched keys with the versions and liveness seen at WATCH
 * and the transaction's items, each one argument whose first byte says its kind:
 *   'W' + an encoded entry: a write, applied in place (its reply is the item's reply);
 *   'R' + an encoded command (store_exec_cmd_encode): a read, run at apply through the
 *       reader the node registered (store_set_exec_reader), so it sees the writes before it;
 *       only when a reply is wanted (reads change nothing);
 *   'L' + reply bytes: a reply the proposer computed (a queuing-time error, PING...).
 * If a watched key's bucket moved, or a key alive at WATCH has expired by the entry's time,
 * nothing is applied and the reply is a null array. */
#define STORE_WATCH_BUCKETS 4096

/* The current version of key's bucket (see above). */
uint64_t store_watch_version(const struct store *s, const uint8_t *key, size_t klen);

/* Runs one transaction read: cmd is a store_exec_cmd_encode'd command, time_ms the entry's
 * time, seed a value drawn by the proposer for this item (for random replies). */
typedef void (*store_exec_read_fn)(void *ctx, struct store *s, const uint8_t *cmd, size_t len,
                                   uint64_t time_ms, uint64_t seed, struct resp_writer *w);
/* Registers the reader EXEC items of kind 'R' run through (ctx borrowed while s lives). With
 * none, such an item answers an error. */
void store_set_exec_reader(struct store *s, store_exec_read_fn fn, void *ctx);
/* Runs EXEC entry e (no 'W' item: a transaction of reads, which is not proposed) against s
 * as its apply would, at e->time_ms, without changing s: the watches are checked and the
 * replies written to w. */
void store_exec_read_only(struct store *s, const struct store_entry *e, struct resp_writer *w);
/* A command as an EXEC item's payload: varint argc, then each argument as varint length and
 * bytes. Decode allocates *argv_out (slices borrow from buf; hy_free it); 0 when malformed. */
void store_exec_cmd_encode(size_t argc, const struct store_arg *argv, struct hy_buf *out);
int store_exec_cmd_decode(const uint8_t *buf, size_t len, struct store_arg **argv_out,
                          size_t *argc_out);
/* As store_exec_cmd_decode for the command at the start of buf[0..len), which may go on:
 * adds the bytes it used to *off_inout. */
int store_exec_cmd_decode_prefix(const uint8_t *buf, size_t len, struct store_arg **argv_out,
                                 size_t *argc_out, size_t *off_inout);

/* ---- GEO (store_geo.c) -------------------------------------------------------------------------
 *
 * Redis's 52-bit geohashes as sorted-set scores, its haversine distance and its searches. */
int store_geo_valid(double lon, double lat);
/* The score of a point; 0 when outside [-180, 180] x [-85.05112878, 85.05112878]. */
int store_geo_encode(double lon, double lat, uint64_t *bits_out);
/* The centre of the cell a score names. */
void store_geo_decode(uint64_t bits, double *lon_out, double *lat_out);
/* Metres between two points (Redis's EARTH_RADIUS_IN_METERS sphere). */
double store_geo_distance(double lon1, double lat1, double lon2, double lat2);
/* GEOHASH's 11-letter standard geohash of a score. */
void store_geo_hash_string(uint64_t bits, char out[12]);

struct store_geo_query {
    const uint8_t *member; /* FROMMEMBER (borrowed), or NULL: FROMLONLAT lon, lat */
    size_t mlen;
    double lon, lat;
    int by_box; /* BYBOX width_m x height_m, else BYRADIUS radius_m */
    double radius_m, width_m, height_m;
    double unit_m;  /* metres per unit of the reply's (or STOREDIST's) distances */
    uint64_t count; /* 0: no COUNT */
    int any;
    int sort;  /* 0 none, 1 ASC, 2 DESC */
    int store; /* 0 reply, 1 STORE (geohash scores), 2 STOREDIST (distances) */
    int withdist, withhash, withcoord;
};
struct store_geo_hit {
    size_t rank; /* in the sorted set */
    double dist_m, score, lon, lat;
};
/* The members of sorted set o (NULL: none) inside q's shape, in q's order and COUNT, as a new
 * array (hy_free it) in *hits_out; returns how many, or -1 when FROMMEMBER's member is absent. */
long store_geo_search(const struct store_obj *o, const struct store_geo_query *q,
                      struct store_geo_hit **hits_out);
/* GEOSEARCH's reply for the hits (names, or arrays with WITHDIST / WITHHASH / WITHCOORD). */
void store_geo_reply(struct resp_writer *w, const struct store_obj *o,
                     const struct store_geo_query *q, const struct store_geo_hit *hits, size_t n);
/* GEOPOS's [lon, lat] and GEODIST's "%.4f" distance, as Redis writes them. */
void store_geo_write_point(struct resp_writer *w, double lon, double lat);
void store_geo_write_distance(struct resp_writer *w, double dist);
/* The query as STORE_OP_GEOSEARCH's third argument. */
#define STORE_GEO_BLOB_BYTES 64
void store_geo_query_encode(const struct store_geo_query *q, uint8_t out[STORE_GEO_BLOB_BYTES]);

/* ---- keyspace notifications ------------------------------------------------------------------
 *
 * Apply reports what each entry did to which key, as Redis's notifyKeyspaceEvent calls do
 * ("set", "lpush", "del", "expired", "evicted", "new"...), through the callback the node
 * registers, for the classes store_config.notify_classes asks for. Every replica applies every
 * entry, so each reports to its own node (docs/protocol.md "Keyspace notifications"). The
 * bits are Redis's NOTIFY_* values. */
enum store_notify_class {
    STORE_NOTIFY_GENERIC = 1u << 2, /* g */
    STORE_NOTIFY_STRING = 1u << 3,  /* $ */
    STORE_NOTIFY_LIST = 1u << 4,    /* l */
    STORE_NOTIFY_SET = 1u << 5,     /* s */
    STORE_NOTIFY_HASH = 1u << 6,    /* h */
    STORE_NOTIFY_ZSET = 1u << 7,    /* z */
    STORE_NOTIFY_EXPIRED = 1u << 8, /* x */
    STORE_NOTIFY_EVICTED = 1u << 9, /* e */
    STORE_NOTIFY_STREAM = 1u << 10, /* t (store_stream.c) */
    STORE_NOTIFY_NEW = 1u << 14,    /* n */
};
/* Called during store_apply for each event of a class asked for; event is a static string,
 * key borrowed for the call. The callback must not change the store. */
typedef void (*store_notify_fn)(void *ctx, unsigned cls, const char *event, const uint8_t *key,
                                size_t klen);
void store_set_notify(struct store *s, store_notify_fn fn, void *ctx);

/* ---- DUMP payloads ---------------------------------------------------------------------------
 *
 * Two formats (docs/disk-format.md "DUMP payload"). DUMP answers Redis 7.0's: the RDB type
 * byte, the value in RDB encodings, RDB version 10 (u16 LE) and a CRC-64/Jones (u64 LE) of
 * everything before it (store_rdb.c). halyard's own format serializes a value as its type byte
 * (enum store_type), the value as the snapshot encodes it (a string as varint length +
 * bytes), a 2-byte little-endian format version (STORE_DUMP_VERSION) and a 4-byte
 * little-endian CRC32C of everything before it: the RESTORE log entry and the WAN links carry
 * it, and RESTORE still accepts it. The expiry and the key are in neither, as in Redis. */
#define STORE_DUMP_VERSION 1

/* Appends halyard's own payload of value o to out. */
void store_dump(const struct store_obj *o, struct hy_buf *out);
/* Appends the Redis (RDB version 10) payload of value o to out: what DUMP answers. */
void store_dump_rdb(const struct store_obj *o, struct hy_buf *out);
enum store_dump_status {
    STORE_DUMP_OK = 0,
    STORE_DUMP_BAD_CHECKSUM = 1, /* too short, unknown version or checksum mismatch */
    STORE_DUMP_BAD_DATA = 2,     /* the checksum holds but the value does not decode */
    STORE_DUMP_MODULE = 3,       /* a Redis module's value (RDB types 6 and 7) */
};
/* Checks a payload of halyard's own format completely (the decoder RESTORE's apply runs, the
 * value then freed); returns an enum store_dump_status. Never reads outside buf[0..len). */
int store_dump_check(const uint8_t *buf, size_t len);
/* Checks a RESTORE payload, Redis's (told apart by its frame: an RDB version up to 10 and a
 * CRC-64 that holds) or halyard's own, and appends to out the equivalent payload in halyard's
 * own format, which the RESTORE log entry carries; returns an enum store_dump_status, out
 * unchanged unless STORE_DUMP_OK. Never reads outside buf[0..len). */
int store_restore_payload(const uint8_t *buf, size_t len, struct hy_buf *out);
/* The reply RESTORE gives for a status (Redis's texts), NULL for STORE_DUMP_OK. */
const char *store_dump_error(int status);
/* ---- Lua scripts --------------------------------------------------------------------------
 *
 * The script cache (SHA-1 of the body -> body) is replicated state: STORE_OP_EVAL caches a
 * body that compiled, STORE_OP_SCRIPT_LOAD caches one, STORE_OP_SCRIPT_FLUSH empties it; it
 * travels in snapshots (version 7) and FLUSHALL leaves it alone. At most STORE_SCRIPTS_MAX
 * scripts and STORE_SCRIPT_CACHE_BYTES_MAX bytes of bodies: SCRIPT LOAD then fails, EVAL still
 * runs (uncached). A STORE_OP_EVAL entry runs its script through the runner the node
 * registered, which must be deterministic: it reads only the entry and the store. */
#define STORE_SCRIPTS_MAX            65536
#define STORE_SCRIPT_CACHE_BYTES_MAX (256u * 1024 * 1024)

/* The body of the cached script named sha (40 lower-case hex digits), or NULL; borrowed until
 * the next store_apply. */
const uint8_t *store_script_find(const struct store *s, const char *sha, size_t *len_out);
size_t store_script_count(const struct store *s);
size_t store_script_bytes(const struct store *s);
/* Runs a STORE_OP_EVAL entry e (shape checked: argv[0] seed, argv[1] body, argv[2] numkeys,
 * then keys and args) against s, writing its reply to w (may be NULL). Nested writes go
 * through store_apply. sha is the body's SHA-1 (40 lower-case hex digits, made once by the
 * store for its cache), or NULL for an FCALL entry. Returns 1 when the body compiled (the
 * store then caches it). */
typedef int (*store_script_run_fn)(void *ctx, struct store *s, const struct store_entry *e,
                                   const char *sha, struct resp_writer *w);
/* Registers the runner (ctx borrowed while s lives). With none, EVAL entries answer an
 * error and change nothing. */
void store_set_script_runner(struct store *s, store_script_run_fn fn, void *ctx);
/* The store's sampling PRNG (eviction, RANDOMKEY, HRANDFIELD). Not replicated state: a script
 * runner seeds it from the entry around a run (and restores it), so a script's random reads
 * are the same on every replica. */
struct hy_prng *store_prng(struct store *s);

/* Function libraries (FUNCTION LOAD): replicated like the script cache. The proposer runs
 * the library's code once to learn its functions and carries their names and flags in the
 * entry, so apply needs no Lua; FCALL entries carry the library's code. */
#define STORE_FUNCTION_NAME_MAX 128
#define STORE_LIBRARIES_MAX     4096
struct store_function {
    char name[STORE_FUNCTION_NAME_MAX + 1];
    unsigned flags; /* the node's SCRIPT_FN_* bits, kept as given */
};
struct store_library {
    char name[STORE_FUNCTION_NAME_MAX + 1];
    uint8_t *code;
    size_t len;
    struct store_function *funcs;
    size_t nfuncs;
};
/* The libraries, sorted by name (borrowed until the next store_apply). */
size_t store_libraries(const struct store *s, const struct store_library *const **out);
/* The library holding function name (case-insensitive) and the function, or NULL. */
const struct store_library *store_function_find(const struct store *s, const char *name,
                                                const struct store_function **fn_out);

/* ---- snapshots ------------------------------------------------------------------------------ */

/* Appends a snapshot of the whole keyspace (format in docs/disk-format.md, CRC32C-protected).
 * The records come in hash-table order: two replicas with the same content may encode different
 * bytes. Compare contents with store_digest, never snapshot bytes. */
void store_snapshot_encode(const struct store *s, struct hy_buf *out);
/*
 * Replaces the keyspace with the snapshot in buf. Returns HY_OK, or HY_ECORRUPT (bad magic,
 * version, checksum, truncation, lengths) with the keyspace unchanged.
 */
int store_snapshot_decode(struct store *s, const uint8_t *buf, size_t len) HY_MUST_CHECK;
/* Empties the store as a snapshot of nothing would: keys, sessions, members, users, scripts. */
void store_clear(struct store *s);

/*
 * A 64-bit digest of the replicated state: keys (sorted), values, expiry times, sessions and
 * the address book, as the snapshot encodes them. Replicas that applied the same entries have
 * the same digest (the simulator compares them at equal applied indices). Costs O(dataset).
 */
uint64_t store_digest(const struct store *s);
/* Appends the bytes store_digest hashes: the snapshot encoding with the records sorted by key
 * and the owner's section (store_set_snapshot_extra) left empty, since replicas may hold
 * different ones; it decodes as a snapshot. The
 * whole-node simulator hashes these itself, more cheaply, after every event. */
void store_digest_encode(const struct store *s, struct hy_buf *out);

/* Test only (the whole-node simulator's mutation self-test; never set elsewhere):
 * STORE_MUT_APPLY_CLOCK makes apply use now_ms, the applying node's clock, instead of the
 * entry's time (replicas then disagree, e.g. on when a session expires);
 * STORE_MUT_SESSION_FORGET forgets that a session's request was applied, so a retry of it is
 * applied again. */
enum store_mutation { STORE_MUT_NONE = 0, STORE_MUT_APPLY_CLOCK = 1, STORE_MUT_SESSION_FORGET = 2 };
void store_set_mutation(struct store *s, unsigned mutation, uint64_t now_ms);

#endif
