/*
 * store_wan.c - links between clusters, the target's side (store_wan.h, docs/wan.md): the batch
 * codec, the dedup rule, STORE_OP_WAN_APPLY and the per-source positions in snapshots.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/store_wan.h"

#define BATCH_HEADER_FIXED 9  /* origin_len 1, source partition 4, count 4 */
#define ENTRY_HEADER       12 /* index 8, length 4 */

/* ---- batches --------------------------------------------------------------------------------- */

void wan_batch_init(struct wan_batch *b, const char *origin, uint32_t src_partition,
                    size_t max_bytes, uint32_t max_entries)
{
    size_t olen = strlen(origin);
    HY_ASSERT(olen >= 1 && olen <= WAN_ORIGIN_MAX);
    hy_buf_init(&b->buf);
    hy_buf_append_u8(&b->buf, (uint8_t)olen);
    hy_buf_append(&b->buf, origin, olen);
    hy_buf_append_u32le(&b->buf, src_partition);
    hy_buf_append_u32le(&b->buf, 0); /* the count, patched by each add */
    b->count = 0;
    b->last_index = 0;
    b->max_bytes = max_bytes;
    b->max_entries = max_entries;
}

void wan_batch_free(struct wan_batch *b)
{
    hy_buf_free(&b->buf);
}

enum hy_status wan_batch_add(struct wan_batch *b, uint64_t index, const uint8_t *entry, size_t len)
{
    if (index <= b->last_index || len > UINT32_MAX) {
        return HY_EINVAL;
    }
    if (b->count > 0 &&
        (b->count >= b->max_entries || b->buf.len + ENTRY_HEADER + len > b->max_bytes)) {
        return HY_EBUSY;
    }
    hy_buf_append_u64le(&b->buf, index);
    hy_buf_append_u32le(&b->buf, (uint32_t)len);
    hy_buf_append(&b->buf, entry, len);
    b->count++;
    b->last_index = index;
    size_t count_at = 1 + (size_t)b->buf.data[0] + 4;
    hy_store_u32le(b->buf.data + count_at, b->count);
    return HY_OK;
}

enum hy_status wan_batch_open(struct wan_batch_reader *r, const uint8_t *p, size_t len)
{
    memset(r, 0, sizeof(*r));
    if (len < 1) {
        return HY_ECORRUPT;
    }
    size_t olen = p[0];
    if (olen == 0 || olen > WAN_ORIGIN_MAX || len < BATCH_HEADER_FIXED + olen) {
        return HY_ECORRUPT;
    }
    for (size_t i = 0; i < olen; i++) {
        if (p[1 + i] <= 0x20 || p[1 + i] >= 0x7f) {
            return HY_ECORRUPT;
        }
    }
    memcpy(r->origin, p + 1, olen);
    r->src_partition = hy_load_u32le(p + 1 + olen);
    r->count = hy_load_u32le(p + 5 + olen);
    r->p = p;
    r->len = len;
    r->off = BATCH_HEADER_FIXED + olen;
    /* Each entry takes at least its header: a count the bytes cannot hold is refused now. */
    if (r->count > (len - r->off) / ENTRY_HEADER) {
        return HY_ECORRUPT;
    }
    return HY_OK;
}

enum hy_status wan_batch_next(struct wan_batch_reader *r, uint64_t *index, const uint8_t **entry,
                              size_t *len)
{
    if (r->read == r->count) {
        return r->off == r->len ? HY_ENOTFOUND : HY_ECORRUPT;
    }
    if (r->len - r->off < ENTRY_HEADER) {
        return HY_ECORRUPT;
    }
    uint64_t idx = hy_load_u64le(r->p + r->off);
    uint32_t elen = hy_load_u32le(r->p + r->off + 8);
    if (idx <= r->last_index || elen > r->len - r->off - ENTRY_HEADER) {
        return HY_ECORRUPT;
    }
    *index = idx;
    *entry = r->p + r->off + ENTRY_HEADER;
    *len = elen;
    r->off += ENTRY_HEADER + elen;
    r->last_index = idx;
    r->read++;
    return HY_OK;
}

int wan_dedup_admit(uint64_t *last, uint64_t index)
{
    if (index <= *last) {
        return 0;
    }
    *last = index;
    return 1;
}

/* ---- the target's positions ------------------------------------------------------------------ */

/* Per source (origin cluster, source partition), the highest source index applied here; sorted
 * by (origin, partition) so that one table has one encoding in snapshots. */
struct store_wan_src {
    char origin[WAN_ORIGIN_MAX + 1];
    uint32_t partition;
    uint64_t last;
};

struct store_wans {
    struct store_wan_src *v;
    size_t count, cap;
};

static int src_cmp(const struct store_wan_src *a, const char *origin, uint32_t partition)
{
    int c = strcmp(a->origin, origin);
    return c != 0 ? c : (a->partition > partition) - (a->partition < partition);
}

/* The entry of (origin, partition), made (at 0) when create is set and it is not there. */
static struct store_wan_src *src_find(struct store *s, const char *origin, uint32_t partition,
                                      int create)
{
    struct store_wans *t = s->wans;
    size_t lo = 0, hi = t ? t->count : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = src_cmp(&t->v[mid], origin, partition);
        if (c == 0) {
            return &t->v[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (!create) {
        return NULL;
    }
    if (t == NULL) {
        t = s->wans = hy_xcalloc(1, sizeof(*t));
    }
    if (t->count == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 4;
        t->v = hy_xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    memmove(&t->v[lo + 1], &t->v[lo], (t->count - lo) * sizeof(*t->v));
    memset(&t->v[lo], 0, sizeof(t->v[lo]));
    strcpy(t->v[lo].origin, origin);
    t->v[lo].partition = partition;
    t->count++;
    return &t->v[lo];
}

uint64_t store_wan_applied(struct store *s, const char *origin, uint32_t partition)
{
    const struct store_wan_src *e = src_find(s, origin, partition, 0);
    return e ? e->last : 0;
}

/* [batch]: each entry of the batch whose source index is above what this store applied from
 * its source is applied (its own reply dropped), in order; the others are resends, skipped.
 * Replies the highest source index now applied from that source. A batch that does not decode
 * changes nothing (the proposing leader checked it, so this is a bug, answered as an error). */
void store__op_wan_apply(struct store *s, const struct store_entry *e, struct resp_writer *reply)
{
    struct wan_batch_reader r;
    if (s->wan_depth > 0) {
        /* A batch inside a batch: never shipped (the tap is off inside one), so only crafted
         * bytes hold it; refused rather than recursed into without bound. */
        if (reply != NULL) {
            resp_write_error(reply, "ERR nested WAN batch");
        }
        return;
    }
    if (wan_batch_open(&r, e->argv[0].ptr, e->argv[0].len) != HY_OK) {
        if (reply != NULL) {
            resp_write_error(reply, "ERR corrupt WAN batch");
        }
        return;
    }
    struct store_wan_src *src = src_find(s, r.origin, r.src_partition, 1);
    uint64_t index;
    const uint8_t *entry;
    size_t len;
    enum hy_status rc;
    /* The batch's entries are not tapped: this slice ships a cluster's own writes only, so
     * that two links never send a change back where it came from. */
    s->wan_depth++;
    while ((rc = wan_batch_next(&r, &index, &entry, &len)) == HY_OK) {
        if (wan_dedup_admit(&src->last, index)) {
            /* A shipped entry that does not decode here (a newer source's op) is skipped on
             * every replica alike: the position still moves past it. */
            if (store_apply(s, entry, len, NULL) != HY_OK) {
                s->wan_undecoded++;
            }
        }
    }
    s->wan_depth--;
    if (reply != NULL) {
        resp_write_int(reply, (int64_t)src->last);
    }
}

void store__wans_free(struct store *s)
{
    if (s->wans != NULL) {
        hy_free(s->wans->v);
        hy_free(s->wans);
        s->wans = NULL;
    }
}

void store__wans_encode(const struct store *s, struct hy_buf *out)
{
    size_t n = s->wans ? s->wans->count : 0;
    uint8_t *p = hy_buf_reserve(out, VARINT_MAX);
    out->len += varint_put(p, n);
    for (size_t i = 0; i < n; i++) {
        const struct store_wan_src *w = &s->wans->v[i];
        size_t olen = strlen(w->origin);
        p = hy_buf_reserve(out, 3 * VARINT_MAX + olen);
        p += varint_put(p, olen);
        memcpy(p, w->origin, olen);
        p += olen;
        p += varint_put(p, w->partition);
        p += varint_put(p, w->last);
        out->len = (size_t)(p - out->data);
    }
}

int store__wans_decode(const uint8_t *buf, size_t len, size_t *used_out, struct store_wans **out)
{
    struct rd r = {buf, len, 0, 0};
    uint64_t count = rd_varint(&r);
    *out = NULL;
    if (r.bad || count > len) {
        return 0;
    }
    struct store tmp;
    memset(&tmp, 0, sizeof(tmp));
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        size_t olen;
        const uint8_t *origin = rd_bytes(&r, &olen);
        uint64_t partition = rd_varint(&r);
        uint64_t last = rd_varint(&r);
        if (r.bad || olen == 0 || olen > WAN_ORIGIN_MAX || memchr(origin, '\0', olen) != NULL ||
            partition > UINT32_MAX) {
            r.bad = 1;
            break;
        }
        char name[WAN_ORIGIN_MAX + 1];
        memcpy(name, origin, olen);
        name[olen] = '\0';
        /* Canonical: strictly ascending, so one table has one encoding. */
        if (tmp.wans != NULL && tmp.wans->count > 0 &&
            src_cmp(&tmp.wans->v[tmp.wans->count - 1], name, (uint32_t)partition) >= 0) {
            r.bad = 1;
            break;
        }
        src_find(&tmp, name, (uint32_t)partition, 1)->last = last;
    }
    if (r.bad) {
        store__wans_free(&tmp);
        return 0;
    }
    *used_out = r.off;
    *out = tmp.wans;
    return 1;
}

void store__wans_replace(struct store *s, struct store_wans *fresh)
{
    store__wans_free(s);
    s->wans = fresh;
}

void store_set_tap(struct store *s, store_tap_fn fn, void *ctx)
{
    s->tap_fn = fn;
    s->tap_ctx = ctx;
}
