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
    uint32_t count;
    uint64_t last_index;
    size_t max_bytes;
    uint32_t max_entries;
};

void wan_batch_init(struct wan_batch *b, const char *origin, uint32_t src_partition,
                    size_t max_bytes, uint32_t max_entries);
void wan_batch_free(struct wan_batch *b);
/* Appends one entry. Returns HY_OK; HY_EBUSY when the batch is full (the entry is not added;
 * a batch always takes its first entry, however large); HY_EINVAL when index does not follow
 * the last one. */
enum hy_status wan_batch_add(struct wan_batch *b, uint64_t index, const uint8_t *entry, size_t len);

struct wan_batch_reader {
    const uint8_t *p;
    size_t len, off;
    char origin[WAN_ORIGIN_MAX + 1];
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

#endif
