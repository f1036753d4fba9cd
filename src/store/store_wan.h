/*
 * store_wan.h - what a target cluster's store keeps and applies for links between clusters
 * (docs/wan.md): the batch format a source partition leader ships, and the rule that applies
 * each shipped entry once, by its source log index per (origin cluster, source partition).
 * The node encodes batches (node/wan.c); the store applies them (STORE_OP_WAN_APPLY) and keeps
 * the highest index applied per source in its snapshots.
 */
#ifndef HY_STORE_STORE_WAN_H
#define HY_STORE_STORE_WAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

#define WAN_ORIGIN_MAX 64

/*
 * The batch a partition leader ships (docs/wan.md "Batches"), little-endian:
 *   origin_len u8, origin (the source cluster's name), source partition u32, count u32,
 *   then count times: source log index u64, entry length u32, entry (a store entry).
 * Indexes strictly increase inside a batch; they need not be contiguous, as only data entries
 * are shipped.
 */
struct wan_batch {
    struct hy_buf buf;
    size_t count_at; /* where the count sits (after the header's extension, if any) */
    uint32_t count;
    uint64_t last_index;
    size_t max_bytes;
    uint32_t max_entries;
};

void wan_batch_init(struct wan_batch *b, const char *origin, uint32_t src_partition,
                    size_t max_bytes, uint32_t max_entries);
/* As wan_batch_init with a header extension (wan_batch_ext_encode's bytes; NULL: none). The
 * extension is flagged by the origin length's top bit, so a batch without one is encoded as
 * before this slice. */
void wan_batch_init_ext(struct wan_batch *b, const char *origin, uint32_t src_partition,
                        size_t max_bytes, uint32_t max_entries, const uint8_t *ext, size_t ext_len);
void wan_batch_free(struct wan_batch *b);
/* Appends one entry. Returns HY_OK; HY_EBUSY when the batch is full (the entry is not added;
 * a batch always takes its first entry, however large); HY_EINVAL when index does not follow
 * the last one. */
enum hy_status wan_batch_add(struct wan_batch *b, uint64_t index, const uint8_t *entry, size_t len);

/* ---- active-active (docs/wan.md "Active-active") -----------------------------------------------
 */

/* Merge policies, decided by the cluster that receives a change (a pure function of the two
 * versions, so that both clusters decide alike). Each is a total order on versions: every one
 * but LATEST_UPDATE ranks by hits first (more writes behind a version: written after the other
 * was seen, or on a longer branch), and decides as its comment says only between versions of
 * the same hits (docs/wan.md "Why every policy converges"). Numbers travel in batches: append
 * only. */
enum wan_policy {
    WAN_POLICY_LATEST_UPDATE = 0,   /* the higher (HLC, origin id) wins; the default */
    WAN_POLICY_PUT_IF_ABSENT = 1,   /* a value over a deletion, then the one written first */
    WAN_POLICY_PASS_THROUGH = 2,    /* the incoming unless behind: decided as HIGHER_HITS */
    WAN_POLICY_DISCARD = 3,         /* the one written first stays, the later one is discarded */
    WAN_POLICY_EXPIRATION_TIME = 4, /* the later expiry wins (none: latest), then LATEST_UPDATE */
    WAN_POLICY_HIGHER_HITS = 5,     /* the later HLC, then the origin id */
    WAN_POLICY_COUNT
};
#define WAN_POLICIES_MAX 16
#define WAN_PATTERN_MAX  128

const char *wan_policy_name(enum wan_policy p);
/* Case-insensitive; 0 for an unknown name. */
int wan_policy_parse(const uint8_t *p, size_t len, enum wan_policy *out);

struct wan_policy_rule {
    char pattern[WAN_PATTERN_MAX + 1]; /* a glob, as KEYS's */
    enum wan_policy policy;
};
/* The policy of key: the first rule whose pattern matches, else LATEST_UPDATE. */
enum wan_policy wan_policy_for(const struct wan_policy_rule *rules, size_t n, const uint8_t *key,
                               size_t klen);

/*
 * A version of one key as the merge sees it. hlc is the hybrid logical clock of the write that
 * made it (physical milliseconds << 16 | a logical counter); origin the id of the cluster that
 * wrote it (wan_origin_id of its name). 0 and 0: the key was written before this cluster kept
 * versions (older than any kept one).
 */
struct wan_version {
    int live; /* a value is there; 0: absent or deleted (a tombstone) */
    uint64_t hlc;
    uint32_t origin;
    int64_t expire_at; /* -1: none */
    /* The key's hits: the writes in this version's history (docs/wan.md "HIGHER_HITS"): a
     * write makes the version it replaces' count + 1, a version taken from a link keeps its
     * count. 0 for version 0 and for versions received before counts were kept. */
    uint64_t hits;
};
/* 1 when the incoming version replaces the local one under policy p, 0 when the local one
 * stays. Deterministic: both clusters given the same two versions decide alike, and exactly
 * one of two different versions wins from either side. */
int wan_merge_decide(enum wan_policy p, const struct wan_version *local,
                     const struct wan_version *in);
/* A cluster's origin id: FNV-1a of its name, never 0 (0 is "unknown"). */
uint32_t wan_origin_id(const char *name, size_t len);
/* The next HLC after last at physical time now_ms: max(last + 1, now_ms << 16). */
uint64_t wan_hlc_next(uint64_t last, uint64_t now_ms);

/* The header extension of an active-active link's batches: the sender's link name and its
 * policies, which the receiver applies to each change (STORE_OP_WAN_PUT). Layout: mode u8 (1:
 * active-active), link_len u8, link, rule count u8, then per rule: pattern_len u8, pattern,
 * policy u8. */
void wan_batch_ext_encode(struct hy_buf *out, const char *link, const struct wan_policy_rule *rules,
                          size_t n);
/* The header extension of a resync batch (docs/wan.md "Resync"): flags u8 (2; | 1 when an
 * active-active extension follows; | 4 when the target is to delete first the keys it holds in
 * the source partition's slots), the resync's base sequence number (u64 LE), for 4 the slots
 * (first, last: u16 LE each), for 8 (only with 4: a link that ships only some keys) the glob
 * the deleted keys must match (len u8, bytes), then, for 1, the rest of aa_ext
 * (wan_batch_ext_encode's bytes after its mode byte). A resync batch holds key states only
 * (STORE_OP_WAN_PUT); its entries are numbered from 1 within the resync, not by the source's
 * log. clear_lo > clear_hi: no deletion. keys: NULL or "" for every key. */
void wan_batch_ext_resync_encode(struct hy_buf *out, uint64_t base, uint16_t clear_lo,
                                 uint16_t clear_hi, const char *keys, const uint8_t *aa_ext,
                                 size_t aa_len);

struct wan_batch_reader {
    const uint8_t *p;
    size_t len, off;
    char origin[WAN_ORIGIN_MAX + 1];
    const uint8_t *ext; /* the header extension's bytes (NULL: none), as wan_batch_init_ext takes */
    size_t ext_len;
    int active_active;
    int resync;           /* a resync batch: resync_base is where the link's stream resumes */
    uint64_t resync_base; /* the source's sequence number the scan started after */
    int clear;            /* a resync's first batch: the keys in clear_lo..clear_hi go first */
    uint16_t clear_lo, clear_hi;
    char clear_keys[WAN_PATTERN_MAX + 1]; /* only those matching this glob ("": all) */
    char link[WAN_ORIGIN_MAX + 1];
    struct wan_policy_rule rules[WAN_POLICIES_MAX];
    size_t nrules;
    uint32_t src_partition;
    uint32_t count, read;
    uint64_t last_index;
};
/* Reads the header; HY_ECORRUPT on any inconsistency. */
enum hy_status wan_batch_open(struct wan_batch_reader *r, const uint8_t *p, size_t len);
/* The next entry: HY_OK, HY_ENOTFOUND after the last one, HY_ECORRUPT on bad bytes (including
 * indexes that do not increase and bytes left over after the last entry). */
enum hy_status wan_batch_next(struct wan_batch_reader *r, uint64_t *index, const uint8_t **entry,
                              size_t *len);

/*
 * Applied once at the target: per (origin, source partition) the target keeps the highest
 * source index it applied; an entry at or below it is a resend and is skipped. Returns 1 when
 * the entry at `index` is to be applied (and *last moves to it), 0 when it is a duplicate.
 */
int wan_dedup_admit(uint64_t *last, uint64_t index);

/*
 * Merge decisions, counted where they are made (the receiving cluster, every replica alike) by
 * the name of the link the change came over (the sender's name for it), the policy and the
 * outcome; the last ones are kept for HALYARD WAN CONFLICTS. Not replicated state: counted
 * since this replica started.
 */
#define WAN_CONFLICT_COUNTS_MAX 64
#define WAN_CONFLICT_LAST_MAX   64
#define WAN_CONFLICT_KEY_MAX    128
struct wan_conflict_count {
    char link[WAN_ORIGIN_MAX + 1];
    enum wan_policy policy;
    int applied; /* 1: the incoming version won; 0: the local one stayed */
    uint64_t count;
};
struct wan_conflict {
    char link[WAN_ORIGIN_MAX + 1];
    char origin[WAN_ORIGIN_MAX + 1]; /* the sending cluster's name */
    uint8_t key[WAN_CONFLICT_KEY_MAX];
    size_t klen; /* truncated to WAN_CONFLICT_KEY_MAX */
    enum wan_policy policy;
    int applied;
    struct wan_version local, in;
    uint64_t time_ms; /* the receiving entry's time */
};

#endif
