/*
 * store_int.h - internals shared by the store's files (not for other modules).
 *
 * A key is ONE allocation, struct store_obj, laid out as:
 *
 *   next (8)   chain pointer of the keyspace table (struct htab_node)
 *   lru  (4)   LRU clock in 256 ms units (wraps after ~35 years; compared modulo 2^32)
 *   meta (1)   bits 0-2 type (enum store_type), bit 3 VOLATILE
 *   [expire_at (8), vol_index (4)]   only when VOLATILE, unaligned (memcpy)
 *   varint klen
 *   [varint vlen]                    strings only
 *   key bytes
 *   value bytes (strings) | object pointer (8, unaligned): struct hobj for hashes,
 *                                                            struct lobj for lists, ...
 *                         | sets: padding to 8-byte alignment, struct hobj (32 bytes), then
 *                           room for the set's list or intset bytes (the rest of the usable
 *                           allocation: store__set_pack moves them in after a write)
 *
 * A 16-byte key with a 3-byte value is 34 bytes, which glibc serves from a 40-byte chunk.
 * Changing a string's size or a key's volatility builds a new entry and swaps it into the
 * table (htab_replace), fixing the volatile array's back pointer.
 *
 * A small set is thus one allocation (entry, object and members): 100,000 sets of 10 small
 * integers cost one 96-byte chunk each, where the object and the intset in allocations of
 * their own cost three chunks (144 bytes).
 *
 * Invariants: s->vol[e.vol_index] == e for every volatile entry and only those; obj_bytes is
 * the usable size of every entry plus every hash object's bytes (struct, fields, buckets) and
 * a set object's bytes outside its entry (store__hobj_extra_bytes).
 */
#ifndef HY_STORE_INT_H
#define HY_STORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/prng.h"
#include "store/htab.h"
#include "store/store.h"

#define SE_TYPE_MASK 0x07u
#define SE_VOLATILE  0x08u
#define SE_VOL_BYTES 12u /* expire_at + vol_index */
#define SE_LRU_SHIFT 8   /* LRU clock units: 256 ms */

struct store_obj {
    struct htab_node node;
    uint32_t lru;
    uint8_t meta;
    uint8_t data[];
};

/* A hash value (store_hash.c): a compact list while small, else a table of hfield nodes.
 * A set is the same object with every value empty. */
struct hobj;
/* A list value (store_list.c): a ring of element pointers. */
struct lobj;
/* A sorted set (store_zset.c): a member -> score index and an array sorted by score. */
struct zobj;

/* A hash field in the table encoding: varint flen, varint vlen, field bytes, value bytes. */
struct hfield {
    struct htab_node node;
    uint8_t data[];
};

struct store {
    struct store_config cfg;
    const struct hy_log *log;
    struct hy_prng prng;
    uint64_t hash_seed;
    struct htab keys;
    struct store_obj **vol; /* volatile entries, for O(1) random sampling */
    size_t vol_count;
    size_t vol_cap;
    size_t obj_bytes;
    struct store_sessions *sessions; /* store_session.c; never touched by FLUSHALL */
    struct store_members *members;   /* store_member.c; never touched by FLUSHALL */
    uint64_t members_version;
    struct store_acl *acl; /* store_acl.c; never touched by FLUSHALL */
    uint64_t acl_version;
    uint64_t expired_deleted; /* store_expired_count() */
    /* store_watch.c: the apply sequence and the buckets' versions (NULL = all 0). */
    uint64_t watch_seq;
    uint64_t *watch_ver;
    size_t watch_used; /* buckets of watch_ver not 0 (each digest and snapshot names them) */
    /* Bit b set: watch_ver[b] is not 0. 512 bytes that stay in cache, so that a write's touch
     * stores its bucket's version without loading it (a random one of 4,096: a cache miss,
     * 16 times as many buckets on a node of 16 partitions; docs/partitioning.md "Row (e) in
     * session 20"). */
    uint64_t watch_live[STORE_WATCH_BUCKETS / 64];
    store_exec_read_fn exec_read;
    void *exec_read_ctx;
    unsigned exec_depth; /* EXEC entries being applied (one: they do not nest) */
    uint64_t watch_skip; /* set by an op: bit i = its key argument i is unchanged (not touched) */
    store_notify_fn notify_fn; /* store_notify.c; NULL: nobody listens */
    void *notify_ctx;
    struct store_scripts *scripts;     /* store_script.c; never touched by FLUSHALL */
    struct store_libraries *libraries; /* store_script.c; never touched by FLUSHALL */
    store_script_run_fn script_run;
    void *script_run_ctx;
    unsigned script_depth; /* EVAL entries being applied (they do not nest) */
    struct store_wans
        *wans;          /* store_wan.c: applied positions per source; not touched by FLUSHALL */
    unsigned wan_depth; /* WAN batches being applied: their entries are not tapped */
    const struct wan_batch_reader *wan_batch; /* the batch being applied (its link's policies) */
    struct store_hlc *hlc; /* store_wan.c: versions per key (active-active); NULL: none kept */
    struct store_wan_stats *wan_stats; /* merge decisions counted (not replicated state) */
    uint64_t wan_undecoded;            /* shipped entries this version could not decode (skipped) */
    store_tap_fn tap_fn;               /* store_set_tap; NULL: none */
    int tap_states;                    /* store_set_tap_states */
    void *tap_ctx;
    store_extra_encode_fn extra_encode; /* store_set_snapshot_extra; NULL: none */
    store_extra_load_fn extra_load;
    void *extra_ctx;
    /* Redis's dirty counter (INFO rdb_changes_since_last_save): changes applied, one per
     * write entry by default; an op sets dirty_delta when it knows better (SETBIT, BITFIELD:
     * only bits that changed, as Redis; WRONGTYPE: none). */
    uint64_t dirty;
    uint64_t dirty_delta;
    uint64_t term;            /* store_set_term: the term of the entries being applied */
    unsigned mutation;        /* enum store_mutation: test only */
    uint64_t mutation_now_ms; /* the clock STORE_MUT_APPLY_CLOCK reads */
};

/* store_session.c */
struct store_sessions;
void store__sessions_free(struct store *s);
void store__op_session_open(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_session_req(struct store *s, const struct store_entry *e, struct resp_writer *w);
/* The snapshot's sessions section, after the keys. Decoding builds a fresh table, or returns
 * NULL when buf[0..len) is not exactly one valid section. */
void store__sessions_encode(const struct store *s, struct hy_buf *out);
struct store_sessions *store__sessions_decode(const uint8_t *buf, size_t len, uint32_t version,
                                              size_t *used_out);
void store__sessions_replace(struct store *s, struct store_sessions *fresh);

/* store_member.c: the operation and the snapshot section after the sessions (version 3). */
struct store_members;
void store__members_free(struct store *s);
void store__op_member_set(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__members_encode(const struct store *s, struct hy_buf *out);
/* Returns 1 with a fresh table (NULL when empty) in *out and the bytes used, or 0 when
 * buf[0..len) does not start with one valid section. */
int store__members_decode(const uint8_t *buf, size_t len, size_t *used_out,
                          struct store_members **out);
void store__members_replace(struct store *s, struct store_members *fresh);

/* store_acl.c: the ACL ops and the snapshot section after the members (version 5). */
struct store_acl;
void store__acl_free(struct store *s);
void store__op_acl_setuser(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_acl_deluser(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_acl_load(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__acl_encode(const struct store *s, struct hy_buf *out);
/* Returns 1 with a fresh table (NULL when empty) in *out and the bytes used, or 0 when
 * buf[0..len) does not start with one valid section. */
int store__acl_decode(const uint8_t *buf, size_t len, size_t *used_out, struct store_acl **out);
void store__acl_replace(struct store *s, struct store_acl *fresh);

/* store_watch.c: versions (called by store_apply around each op), the EXEC op, and the
 * snapshot section after the ACL users (version 6). */
void store__watch_before(struct store *s, const struct store_entry *e);
void store__watch_after(struct store *s, const struct store_entry *e);
void store__op_exec(struct store *s, const struct store_entry *e, struct resp_writer *w);

/* store_wan.c */
struct store_wans;
void store__op_wan_apply(struct store *s, const struct store_entry *e, struct resp_writer *reply);
void store__op_encoding_set(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__wans_free(struct store *s);
void store__wans_encode(const struct store *s, struct hy_buf *out);
int store__wans_decode(const uint8_t *buf, size_t len, size_t *used_out, struct store_wans **out);
void store__wans_replace(struct store *s, struct store_wans *fresh);
/* Versions per key (snapshot version 9): the ops, what store_apply calls after a local write
 * (the versions of the keys it wrote, and the tap), and the snapshot section after the WAN
 * positions. */
struct store_hlc;
struct wan_batch_reader;
void store__op_wan_hlc(struct store *s, const struct store_entry *e, struct resp_writer *reply);
void store__op_wan_fence(struct store *s, const struct store_entry *e, struct resp_writer *reply);
void store__op_wan_put(struct store *s, const struct store_entry *e, struct resp_writer *reply);
void store__op_wan_hits(struct store *s, const struct store_entry *e, struct resp_writer *reply);
void store__wan_after(struct store *s, const struct store_entry *e, uint64_t skip,
                      const uint8_t *entry, size_t len);
void store__hlc_free(struct store *s);
void store__hlc_encode(const struct store *s, struct hy_buf *out);
int store__hlc_decode(const uint8_t *buf, size_t len, uint64_t seed, int with_hits,
                      size_t *used_out, struct store_hlc **out);
void store__hlc_replace(struct store *s, struct store_hlc *fresh);
void store__wan_stats_free(struct store *s);
/* The argument indexes of the keys op e may have written (store_watch.c's spans), leaving out
 * those the op marked unchanged in skip; returns how many (at most cap). */
size_t store__written_keys(const struct store_entry *e, uint64_t skip, uint32_t *idx, size_t cap);
int store__exec_shape_ok(const struct store_entry *e);
void store__watch_encode(const struct store *s, struct hy_buf *out);
/* Returns 1 and sets *seq_out and *ver_out (a fresh array, or NULL when all 0) and the bytes
 * used, or 0 when buf[0..len) does not start with one valid section. */
int store__watch_decode(const uint8_t *buf, size_t len, size_t *used_out, uint64_t *seq_out,
                        uint64_t **ver_out);
void store__watch_free(struct store *s);
/* Takes ver (STORE_WATCH_BUCKETS versions, or NULL: all 0) and seq as the store's, as a snapshot
 * loaded them. */
void store__watch_adopt(struct store *s, uint64_t seq, uint64_t *ver);

/* store_notify.c: keyspace notifications around one op (store_apply). notify_pre holds what
 * the keys looked like before it. */
#define STORE_NOTIFY_KEYS_MAX 64
struct store_notify_pre {
    uint8_t existed[STORE_NOTIFY_KEYS_MAX];
};
int store__notify_wanted(const struct store *s, const struct store_entry *e);
void store__notify_before(const struct store *s, const struct store_entry *e,
                          struct store_notify_pre *pre);
/* reply[0..len): the op's reply (RESP2 or RESP3), which says whether it did anything. */
void store__notify_after(struct store *s, const struct store_entry *e,
                         const struct store_notify_pre *pre, const uint8_t *reply, size_t len);
/* One event now, when its class is wanted (expiry and eviction deletions report this way). */
void store__notify(struct store *s, unsigned cls, const char *event, const uint8_t *k, size_t klen);
/* store_script.c: the script cache, its ops and the snapshot section after the WATCH
 * versions (version 7). */
struct store_scripts;
void store__scripts_free(struct store *s);
int store__eval_shape_ok(const struct store_entry *e);
void store__op_eval(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_script_load(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_script_flush(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__scripts_encode(const struct store *s, struct hy_buf *out);
/* Returns 1 with a fresh cache (NULL when empty) in *out and the bytes used, or 0 when
 * buf[0..len) does not start with one valid section. */
int store__scripts_decode(const uint8_t *buf, size_t len, size_t *used_out,
                          struct store_scripts **out);
void store__scripts_replace(struct store *s, struct store_scripts *fresh);
struct store_libraries;
void store__libraries_free(struct store *s);
int store__fcall_shape_ok(const struct store_entry *e);
void store__op_fcall(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_function_load(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_function_delete(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_function_flush(struct store *s, const struct store_entry *e, struct resp_writer *w);
int store__function_restore_shape_ok(const struct store_entry *e);
void store__op_function_restore(struct store *s, const struct store_entry *e,
                                struct resp_writer *w);
void store__libraries_encode(const struct store *s, struct hy_buf *out);
int store__libraries_decode(const uint8_t *buf, size_t len, size_t *used_out,
                            struct store_libraries **out);
void store__libraries_replace(struct store *s, struct store_libraries *fresh);

/* ---- varints (LEB128: 7 bits per byte, low group first) ---------------------------------- */

#define VARINT_MAX 10

static inline size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Appends v as a varint to out. */
static inline void varint_append(struct hy_buf *out, uint64_t v)
{
    uint8_t *p = hy_buf_reserve(out, VARINT_MAX);
    out->len += varint_put(p, v);
}

/* Appends p[0..len) to out after its length as a varint. */
static inline void varint_append_bytes(struct hy_buf *out, const uint8_t *p, size_t len)
{
    varint_append(out, len);
    hy_buf_append(out, p, len);
}

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Decodes a varint from p[0..len); returns bytes used, or 0 when truncated or overlong. */
static inline size_t varint_get(const uint8_t *p, size_t len, uint64_t *v_out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < VARINT_MAX; i++) {
        uint64_t b = p[i] & 0x7f;
        if (i == 9 && b > 1) {
            return 0; /* more than 64 bits */
        }
        v |= b << (7 * i);
        if ((p[i] & 0x80) == 0) {
            if (i > 0 && p[i] == 0) {
                return 0; /* non-canonical: one encoding per value keeps entries comparable */
            }
            *v_out = v;
            return i + 1;
        }
    }
    return 0;
}

/* A bounded reader over untrusted bytes (entries, snapshot sections); any failure latches
 * `bad` and every later read returns 0 / NULL. */
struct rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    int bad;
};

static inline uint64_t rd_varint(struct rd *r)
{
    uint64_t v = 0;
    size_t n = r->bad ? 0 : varint_get(r->p + r->off, r->len - r->off, &v);
    if (n == 0) {
        r->bad = 1;
        return 0;
    }
    r->off += n;
    return v;
}

static inline uint8_t rd_u8(struct rd *r)
{
    if (r->bad || r->off >= r->len) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->off++];
}

/* A length-prefixed byte string, borrowed from the input. */
static inline const uint8_t *rd_bytes(struct rd *r, size_t *len_out)
{
    uint64_t n = rd_varint(r);
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        *len_out = 0;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += (size_t)n;
    *len_out = (size_t)n;
    return p;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- entries ------------------------------------------------------------------------------ */

struct se_layout {
    size_t key_off; /* offsets into e->data */
    size_t klen;
    size_t val_off;
    size_t vlen; /* strings only */
};

static inline enum store_type se_type(const struct store_obj *e)
{
    return (enum store_type)(e->meta & SE_TYPE_MASK);
}

static inline int se_volatile(const struct store_obj *e)
{
    return (e->meta & SE_VOLATILE) != 0;
}

void store__layout(const struct store_obj *e, struct se_layout *l);
/* The first argument of an encoded entry (borrowed from buf); 0 when buf does not hold one. */
int store__entry_first_arg(const uint8_t *buf, size_t len, const uint8_t **arg_out,
                           size_t *arg_len_out);
void store__key(const struct store_obj *e, const uint8_t **k_out, size_t *klen_out);
int64_t store__expire(const struct store_obj *e);
void store__set_expire_inplace(struct store_obj *e, int64_t at);
uint8_t *store__value_ptr(struct store_obj *e);
/* The object of a hash or set entry (asserts the type). */
struct hobj *store__hobj(const struct store_obj *e);
struct lobj *store__lobj(const struct store_obj *e);
/* The object pointer of any non-string entry. */
void *store__vobj(const struct store_obj *e);
void store__set_vobj(struct store_obj *e, void *obj);

/* A new detached entry with value room for vlen bytes (strings; uninitialised) or for the
 * object pointer (other types; set with store__set_hobj / store__set_vobj). expire_at -1 =
 * not volatile. */
struct store_obj *store__entry_new(enum store_type type, int64_t expire_at, const uint8_t *k,
                                   size_t klen, size_t vlen);
void store__set_hobj(struct store_obj *e, struct hobj *h);
/* Frees a detached entry and its hash object. */
void store__entry_free(struct store_obj *e);
/* A new detached entry under key k (may point into e) with expiry at (-1: none) holding e's
 * value; e's allocation is then to be freed with hy_free, never store__entry_free. */
struct store_obj *store__entry_move(const struct store_obj *e, const uint8_t *k, size_t klen,
                                    int64_t at);
/* After a write to set o (live): its list or intset bytes moved into the entry (o rebuilt
 * and swapped when they do not fit its room); returns the entry, which may be new. A no-op
 * for other types. */
struct store_obj *store__set_pack(struct store *s, struct store_obj *o);
/* Bytes freed by deleting e (entry plus hash object). */
size_t store__entry_bytes(const struct store_obj *e);

/* Attaches a new entry to the keyspace (its key must be absent). */
void store__link(struct store *s, struct store_obj *e);
/* Replaces live entry old by new_e (same key) and frees old's allocation but never its hash
 * object: a hash entry is only rebuilt to change its expiry, and new_e shares the object (a
 * set's moved into new_e: store__entry_move). Counts the entries' own sizes only. */
void store__swap(struct store *s, struct store_obj *old, struct store_obj *new_e);
/* Detaches e from the keyspace without freeing it (the caller owns it). */
void store__unlink(struct store *s, struct store_obj *e);
/* Detaches and frees e. */
void store__delete(struct store *s, struct store_obj *e);
/* The entry for key, or NULL; an entry expired at time_ms is deleted first (apply path). */
struct store_obj *store__lookup_write(struct store *s, const uint8_t *k, size_t klen,
                                      uint64_t time_ms);
/* The LRU clock of entry e's time. */
static inline uint32_t store__lru_of(const struct store_entry *e)
{
    return (uint32_t)(e->time_ms >> SE_LRU_SHIFT);
}
/* The collection of `type` at key argv[ki] for writing (its LRU clock touched), or NULL:
 * absent (*wrong_out 0) or of another type (*wrong_out 1, WRONGTYPE replied). */
struct store_obj *store__lookup_typed(enum store_type type, struct store *s,
                                      const struct store_entry *e, uint32_t ki,
                                      struct resp_writer *w, int *wrong_out);
/* Sets or clears (at = -1) a live entry's expiry; returns the entry (possibly reallocated). */
struct store_obj *store__set_expire(struct store *s, struct store_obj *e, int64_t at);
/* store_entry_decode, with the arguments in stack[] when there are at most nstack of them
 * (then e_out->argv == stack, not to be released); else allocated as store_entry_decode's. */
int store__entry_decode_into(const uint8_t *buf, size_t len, struct store_entry *e_out,
                             struct store_arg *stack, size_t nstack) HY_MUST_CHECK;
/* Overwrites string entry e's value with v and its expiry with at, in e's own allocation, when
 * the layout allows it: e is a string, volatile exactly when at >= 0, the new length's varint
 * as long as the old one's, and the new size in e's allocation without wasting more than an
 * eighth of it (+16 bytes). Returns 1 when done (e stays linked; store bytes unchanged), else 0
 * with e untouched. */
int store__string_overwrite(struct store_obj *e, const uint8_t *v, size_t vlen, int64_t at);
/* Replaces a string entry's value, keeping its expiry; returns the new entry. */
struct store_obj *store__set_string(struct store *s, struct store_obj *e, const uint8_t *v,
                                    size_t vlen);
/* Drops every key. */
void store__flush(struct store *s);

/* ---- list objects (store_list.c) ---------------------------------------------------------- */

/* One element: its own allocation, moved between lists without copying. */
struct lelem {
    uint32_t len;
    uint8_t data[];
};

struct lobj *store__lobj_new(void);
void store__lobj_free(struct lobj *l);
size_t store__lobj_bytes(const struct lobj *l);
size_t store__lobj_count(const struct lobj *l);
/* 1 while the list is in the compact encoding. */
int store__lobj_compact(const struct lobj *l);
/* The element at index (< count): its bytes, borrowed until the next change. */
void store__lobj_get(const struct lobj *l, size_t index, const uint8_t **p_out, size_t *len_out);
struct lelem *store__lelem_new(const uint8_t *p, size_t len);
/* Inserts el (ownership transferred) before position index (0..count), converting the list
 * at enc's list-max-listpack-size (NULL: the default). */
void store__lobj_insert(struct lobj *l, size_t index, struct lelem *el,
                        const struct store_encoding *enc);
/* Detaches the element at index (< count); the caller owns and frees it (hy_free). */
struct lelem *store__lobj_take(struct lobj *l, size_t index);
/* Replaces the element at index by el (ownership transferred); the old one is freed. */
void store__lobj_replace(struct lobj *l, size_t index, struct lelem *el,
                         const struct store_encoding *enc);
void store__lobj_check(const struct lobj *l);

/* Creates a string key argv[ki] (replacing old, of any type) holding v with expiry at. */
struct store_obj *store__string_put(struct store *s, const struct store_entry *e,
                                    struct store_obj *old, uint32_t ki, const uint8_t *v,
                                    size_t vlen, int64_t at);
/* String entry o resized to len (zero-filled growth), keeping its expiry; o itself when the
 * length is unchanged (then its bytes may be changed in place). */
struct store_obj *store__string_resize(struct store *s, struct store_obj *o, size_t len);

/* A deep copy of a hash, list, set or sorted set entry's object (COPY), through the snapshot
 * codec's own encoding of it (store_codec.c). */
void *store__object_clone(const struct store_obj *e, uint64_t seed);

/* Decodes a DUMP payload into a new detached entry for key k (expiry at, -1: none); returns
 * an enum store_dump_status, *e_out set only on STORE_DUMP_OK (store_codec.c). */
int store__dump_load(const uint8_t *buf, size_t len, uint64_t seed, const uint8_t *k, size_t klen,
                     int64_t at, struct store_obj **e_out);

void store__op_geosearch(struct store *s, const struct store_entry *e, struct resp_writer *w);

/* ---- bit ops (store_bits.c), called by store_apply ------------------------------------- */

void store__op_setbit(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_bitop(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_bitfield(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_sort(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_pfadd(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_pfcount(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_pfmerge(struct store *s, const struct store_entry *e, struct resp_writer *w);

/* ---- list and set ops (store_list.c, store_set.c), called by store_apply --------------- */

void store__op_push(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_pop(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_lset(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_linsert(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_lrem(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_ltrim(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_lmove(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_lmpop(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_sadd(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_srem(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_smove(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_spop(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_sstore(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_zadd(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_zrem(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_zpop(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_zmpop(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_zremrange(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_zstore(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_zrangestore(struct store *s, const struct store_entry *e, struct resp_writer *w);

/* ---- sorted set objects (store_zset.c) --------------------------------------------------- */

struct zobj *store__zobj_new(uint64_t seed);
void store__zobj_free(struct zobj *z);
size_t store__zobj_bytes(const struct zobj *z);
size_t store__zobj_count(const struct zobj *z);
int store__zobj_has(const struct zobj *z, const uint8_t *m, size_t mlen);
/* Adds a member that is not in z, converting at enc's thresholds (NULL: the defaults). */
void store__zobj_put(struct zobj *z, double score, const uint8_t *m, size_t mlen,
                     const struct store_encoding *enc);
void store__zobj_insert(struct zobj *z, double score, const uint8_t *m, size_t mlen);
/* 1 while z is in the compact encoding. */
int store__zobj_compact(const struct zobj *z);
void store__zobj_at(const struct zobj *z, size_t rank, double *score_out, const uint8_t **m_out,
                    size_t *mlen_out);
void store__zobj_check(const struct zobj *z);
struct zobj *store__zobj(const struct store_obj *e);

/* ---- stream objects (store_stream.c) ------------------------------------------------------ */

struct xobj;
struct xobj *store__xobj_new(void);
void store__xobj_free(struct xobj *x);
size_t store__xobj_bytes(const struct xobj *x);
void store__xobj_check(const struct xobj *x);
struct xobj *store__xobj(const struct store_obj *e);
/* The snapshot's encoding of a stream (docs/disk-format.md); decode returns NULL (r->bad set)
 * when malformed. */
void store__xobj_encode(const struct xobj *x, struct hy_buf *out);
struct xobj *store__xobj_decode(struct rd *r, uint64_t seed);
void store__op_xadd(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xtrim(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xdel(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xsetid(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xgroup(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xreadgroup(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xack(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xclaim(struct store *s, const struct store_entry *e, struct resp_writer *w);
void store__op_xautoclaim(struct store *s, const struct store_entry *e, struct resp_writer *w);

/* ---- replies: skipped on replicas (w == NULL) ---------------------------------------------- */

#define STORE_ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define STORE_ERR_NOT_INT   "ERR value is not an integer or out of range"

static inline void store__r_int(struct resp_writer *w, int64_t v)
{
    if (w != NULL) {
        resp_write_int(w, v);
    }
}

static inline void store__r_err(struct resp_writer *w, const char *msg)
{
    if (w != NULL) {
        resp_write_error(w, msg);
    }
}

static inline void store__r_null(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_null(w);
    }
}

static inline void store__r_bulk(struct resp_writer *w, const void *p, size_t len)
{
    if (w != NULL) {
        resp_write_bulk(w, p, len);
    }
}

/* ---- hash objects (store_hash.c) ---------------------------------------------------------- */

struct hobj *store__hobj_new(uint64_t seed);
/* A new empty set object: an intset when `intset` (its first member is an integer). */
struct hobj *store__hobj_new_set(uint64_t seed, int intset);
void store__hobj_free(struct hobj *h);
/* Frees what the object holds but not the struct itself (a set's, inside its entry). */
void store__hobj_release(struct hobj *h);
/* Usable bytes of everything the object holds. */
size_t store__hobj_bytes(const struct hobj *h);
/* The same without the struct and without list bytes kept in the entry (a set's). */
size_t store__hobj_extra_bytes(const struct hobj *h);
/* sizeof(struct hobj) (8-byte aligned): a set entry holds one. */
size_t store__hobj_struct_size(void);
/* Bytes the list or intset would take inline (0 for the table encoding). */
size_t store__hobj_payload(const struct hobj *h);
/* Moves the list or intset bytes into room (room_len bytes inside the entry holding h), freeing
 * the heap copy; returns 0 (nothing moved) when they do not fit, 1 when they are in room or
 * there is nothing to move. */
int store__hobj_inline(struct hobj *h, uint8_t *room, size_t room_len);
/* Moves object src (inside an entry about to be freed without its contents) to dst (inside a
 * new entry with room_len bytes of room): its list goes into room when it fits, else to the
 * heap. */
void store__hobj_move(struct hobj *dst, const struct hobj *src, uint8_t *room, size_t room_len);
size_t store__hobj_count(const struct hobj *h);
/* 1 while the object is in the compact list encoding; 1 while a set is an intset. */
int store__hobj_compact(const struct hobj *h);
int store__hobj_intset(const struct hobj *h);
/* Sets field f to v, converting the encoding at enc's thresholds (NULL: the defaults);
 * returns 1 when the field is new. */
int store__hobj_put(struct hobj *h, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen,
                    const struct store_encoding *enc);
int store__hobj_set(struct hobj *h, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen);
/* Returns 1 and the value (borrowed until the next change) when present. */
int store__hobj_get(const struct hobj *h, const uint8_t *f, size_t flen, const uint8_t **v_out,
                    size_t *vlen_out);
int store__hobj_del(struct hobj *h, const uint8_t *f, size_t flen);
void store__hobj_foreach(const struct hobj *h, store_field_cb cb, void *ctx);
/* As store__hobj_foreach for a set's members, but an intset's are formatted on the fly: the
 * pointers live only for the call, and no text view is built and kept (snapshot encoding). */
void store__hobj_members_each(const struct hobj *h, store_field_cb cb, void *ctx);
uint64_t store__hobj_scan(const struct hobj *h, uint64_t cursor, size_t count_hint,
                          store_field_cb cb, void *ctx);
void store__hobj_random(const struct hobj *h, struct hy_prng *prng, const uint8_t **f_out,
                        size_t *flen_out, const uint8_t **v_out, size_t *vlen_out);
/* Asserts the object's internal invariants (is_set: every value is empty). */
void store__hobj_check(const struct hobj *h, int is_set);
void store__field_kv(const struct hfield *n, const uint8_t **f_out, size_t *flen_out,
                     const uint8_t **v_out, size_t *vlen_out);

/* The keyspace's hash key function (for building tables in the snapshot decoder). */
void store__entry_key_fn(const struct htab_node *n, const uint8_t **k_out, size_t *klen_out);

#endif
