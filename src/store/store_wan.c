/*
 * store_wan.c - links between clusters, the target's side (store_wan.h, docs/wan.md): the batch
 * codec, the dedup rule, STORE_OP_WAN_APPLY and the per-source positions in snapshots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/store_wan.h"

#define BATCH_HEADER_FIXED 9    /* origin_len 1, source partition 4, count 4 */
#define ENTRY_HEADER       12   /* index 8, length 4 */
#define BATCH_EXT_FLAG     0x80 /* in origin_len: a header extension follows the origin */
#define BATCH_EXT_MIN      3    /* mode 1, link_len 1, rule count 1 */
#define WAN_PUT_META_V1    12   /* a WAN_PUT's version before hits: hlc 8, origin 4 */
#define WAN_PUT_META       20   /* a WAN_PUT's version: hlc 8, origin 4, hits 8 */

/* ---- policies and versions ---------------------------------------------------------------- */

static const char *const policy_names[WAN_POLICY_COUNT] = {
    [WAN_POLICY_LATEST_UPDATE] = "LATEST_UPDATE",     [WAN_POLICY_PUT_IF_ABSENT] = "PUT_IF_ABSENT",
    [WAN_POLICY_PASS_THROUGH] = "PASS_THROUGH",       [WAN_POLICY_DISCARD] = "DISCARD",
    [WAN_POLICY_EXPIRATION_TIME] = "EXPIRATION_TIME", [WAN_POLICY_HIGHER_HITS] = "HIGHER_HITS",
};

const char *wan_policy_name(enum wan_policy p)
{
    return (unsigned)p < WAN_POLICY_COUNT ? policy_names[p] : "?";
}

int wan_policy_parse(const uint8_t *p, size_t len, enum wan_policy *out)
{
    for (unsigned i = 0; i < WAN_POLICY_COUNT; i++) {
        if (hy_eq_nocase(p, len, policy_names[i])) {
            *out = (enum wan_policy)i;
            return 1;
        }
    }
    return 0;
}

enum wan_policy wan_policy_for(const struct wan_policy_rule *rules, size_t n, const uint8_t *key,
                               size_t klen)
{
    for (size_t i = 0; i < n; i++) {
        if (hy_glob_match((const uint8_t *)rules[i].pattern, strlen(rules[i].pattern), key, klen,
                          0)) {
            return rules[i].policy;
        }
    }
    return WAN_POLICY_LATEST_UPDATE;
}

/* LATEST_UPDATE's order: the HLC, then the origin id, so that two clusters that drew the same
 * HLC still pick the same winner. */
static int newer(const struct wan_version *a, const struct wan_version *b)
{
    return a->hlc != b->hlc ? a->hlc > b->hlc : a->origin > b->origin;
}

/* DISCARD's and PUT_IF_ABSENT's order among versions of the same hits: the one written first
 * stays (the later, concurrent change is the one discarded), the origin id again breaking a
 * tie of HLCs, alike on both sides. */
static int earlier(const struct wan_version *a, const struct wan_version *b)
{
    return a->hlc != b->hlc ? a->hlc < b->hlc : a->origin > b->origin;
}

/* EXPIRATION_TIME's rank: a deletion lasts least, no expiry longest. */
static uint64_t lasts(const struct wan_version *v)
{
    return !v->live ? 0 : v->expire_at < 0 ? UINT64_MAX : (uint64_t)v->expire_at + 1;
}

/*
 * Every policy is a total order on versions, and the incoming version replaces the local one
 * when it is higher: so each cluster holds the highest version it has seen, provided every local
 * write makes a version higher than the one it replaces (docs/wan.md "Why every policy
 * converges"). LATEST_UPDATE's order is the HLC's, which every local write climbs. The others
 * rank by hits first (a local write has one more than the version it replaces, the highest
 * seen), so a version written after the other was seen always wins, and the policy decides
 * only between versions of as many writes since they forked: concurrent ones.
 */
int wan_merge_decide(enum wan_policy p, const struct wan_version *local,
                     const struct wan_version *in)
{
    if (p == WAN_POLICY_LATEST_UPDATE || (unsigned)p >= WAN_POLICY_COUNT) {
        return newer(in, local);
    }
    if (in->hits != local->hits) {
        return in->hits > local->hits;
    }
    switch (p) {
    case WAN_POLICY_PUT_IF_ABSENT:
        if (in->live != local->live) {
            return in->live; /* put where the key is absent; a deletion removes no put */
        }
        return earlier(in, local);
    case WAN_POLICY_DISCARD: return earlier(in, local);
    case WAN_POLICY_EXPIRATION_TIME:
        if (lasts(in) != lasts(local)) {
            return lasts(in) > lasts(local);
        }
        return newer(in, local);
    case WAN_POLICY_PASS_THROUGH:
    case WAN_POLICY_HIGHER_HITS:
    case WAN_POLICY_LATEST_UPDATE:
    case WAN_POLICY_COUNT: break;
    }
    return newer(in, local);
}

uint32_t wan_origin_id(const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    }
    return h != 0 ? h : 1;
}

uint64_t wan_hlc_next(uint64_t last, uint64_t now_ms)
{
    uint64_t phys = now_ms << 16;
    return last + 1 > phys ? last + 1 : phys;
}

void wan_batch_ext_encode(struct hy_buf *out, const char *link, const struct wan_policy_rule *rules,
                          size_t n)
{
    size_t llen = strlen(link);
    HY_ASSERT(llen <= WAN_ORIGIN_MAX && n <= WAN_POLICIES_MAX);
    hy_buf_append_u8(out, 1);
    hy_buf_append_u8(out, (uint8_t)llen);
    hy_buf_append(out, link, llen);
    hy_buf_append_u8(out, (uint8_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(rules[i].pattern);
        HY_ASSERT(plen <= WAN_PATTERN_MAX);
        hy_buf_append_u8(out, (uint8_t)plen);
        hy_buf_append(out, rules[i].pattern, plen);
        hy_buf_append_u8(out, (uint8_t)rules[i].policy);
    }
}

void wan_batch_ext_resync_encode(struct hy_buf *out, uint64_t base, uint16_t clear_lo,
                                 uint16_t clear_hi, const char *keys, const uint8_t *aa_ext,
                                 size_t aa_len)
{
    HY_ASSERT(aa_ext == NULL || (aa_len >= BATCH_EXT_MIN && aa_ext[0] == 1));
    int clear = clear_lo <= clear_hi;
    int some = clear && keys != NULL && keys[0] != '\0';
    HY_ASSERT(!clear || clear_hi < HY_SLOT_COUNT);
    HY_ASSERT(!some || strlen(keys) <= WAN_PATTERN_MAX);
    hy_buf_append_u8(out,
                     (uint8_t)(2 | (aa_ext != NULL ? 1 : 0) | (clear ? 4 : 0) | (some ? 8 : 0)));
    hy_buf_append_u64le(out, base);
    if (clear) {
        uint8_t sl[4] = {(uint8_t)clear_lo, (uint8_t)(clear_lo >> 8), (uint8_t)clear_hi,
                         (uint8_t)(clear_hi >> 8)};
        hy_buf_append(out, sl, sizeof(sl));
    }
    if (some) {
        hy_buf_append_u8(out, (uint8_t)strlen(keys));
        hy_buf_append(out, keys, strlen(keys));
    }
    if (aa_ext != NULL) {
        hy_buf_append(out, aa_ext + 1, aa_len - 1);
    }
}

/* Reads a header extension into r; returns the bytes it takes, 0 when malformed. Its first
 * byte holds flags: 1 an active-active link's name and policies follow, 2 a resync's base
 * comes first (wan_batch_ext_resync_encode). */
static size_t ext_read(struct wan_batch_reader *r, const uint8_t *p, size_t len)
{
    /* Deleting slots (4) comes only with a resync (2), a key pattern (8) only with 4. */
    if (len < BATCH_EXT_MIN || p[0] == 0 || p[0] > 15 || (p[0] & 6) == 4 || (p[0] & 12) == 8) {
        return 0;
    }
    size_t off = 1;
    if (p[0] & 2) {
        if (len - off < 8) {
            return 0;
        }
        r->resync = 1;
        r->resync_base = hy_load_u64le(p + off);
        off += 8;
        if (p[0] & 4) {
            if (len - off < 4) {
                return 0;
            }
            r->clear = 1;
            r->clear_lo = (uint16_t)(p[off] | p[off + 1] << 8);
            r->clear_hi = (uint16_t)(p[off + 2] | p[off + 3] << 8);
            off += 4;
            if (r->clear_lo > r->clear_hi || r->clear_hi >= HY_SLOT_COUNT) {
                return 0;
            }
        }
        if (p[0] & 8) {
            size_t klen = len - off >= 1 ? p[off] : 0;
            if (klen == 0 || klen > WAN_PATTERN_MAX || len - off < 1 + klen ||
                memchr(p + off + 1, '\0', klen) != NULL) {
                return 0;
            }
            memcpy(r->clear_keys, p + off + 1, klen);
            r->clear_keys[klen] = '\0';
            off += 1 + klen;
        }
        if (!(p[0] & 1)) {
            return off;
        }
    }
    if (len - off < 2) {
        return 0;
    }
    size_t llen = p[off++];
    if (llen > WAN_ORIGIN_MAX || len - off < llen + 1 || memchr(p + off, '\0', llen) != NULL) {
        return 0;
    }
    memcpy(r->link, p + off, llen);
    off += llen;
    size_t n = p[off++];
    if (n > WAN_POLICIES_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (len - off < 1) {
            return 0;
        }
        size_t plen = p[off++];
        if (plen > WAN_PATTERN_MAX || len - off < plen + 1 || memchr(p + off, '\0', plen) != NULL ||
            p[off + plen] >= WAN_POLICY_COUNT) {
            return 0;
        }
        memcpy(r->rules[i].pattern, p + off, plen);
        r->rules[i].pattern[plen] = '\0';
        r->rules[i].policy = (enum wan_policy)p[off + plen];
        off += plen + 1;
    }
    r->nrules = n;
    r->active_active = 1;
    return off;
}

/* ---- batches --------------------------------------------------------------------------------- */

void wan_batch_init(struct wan_batch *b, const char *origin, uint32_t src_partition,
                    size_t max_bytes, uint32_t max_entries)
{
    wan_batch_init_ext(b, origin, src_partition, max_bytes, max_entries, NULL, 0);
}

void wan_batch_init_ext(struct wan_batch *b, const char *origin, uint32_t src_partition,
                        size_t max_bytes, uint32_t max_entries, const uint8_t *ext, size_t ext_len)
{
    size_t olen = strlen(origin);
    HY_ASSERT(olen >= 1 && olen <= WAN_ORIGIN_MAX);
    hy_buf_init(&b->buf);
    hy_buf_append_u8(&b->buf, (uint8_t)(olen | (ext != NULL ? BATCH_EXT_FLAG : 0)));
    hy_buf_append(&b->buf, origin, olen);
    if (ext != NULL) {
        hy_buf_append(&b->buf, ext, ext_len);
    }
    hy_buf_append_u32le(&b->buf, src_partition);
    b->count_at = b->buf.len;
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
    hy_store_u32le(b->buf.data + b->count_at, b->count);
    return HY_OK;
}

enum hy_status wan_batch_open(struct wan_batch_reader *r, const uint8_t *p, size_t len)
{
    memset(r, 0, sizeof(*r));
    if (len < 1) {
        return HY_ECORRUPT;
    }
    size_t olen = p[0] & ~BATCH_EXT_FLAG;
    if (olen == 0 || olen > WAN_ORIGIN_MAX || len < BATCH_HEADER_FIXED + olen) {
        return HY_ECORRUPT;
    }
    for (size_t i = 0; i < olen; i++) {
        if (p[1 + i] <= 0x20 || p[1 + i] >= 0x7f) {
            return HY_ECORRUPT;
        }
    }
    memcpy(r->origin, p + 1, olen);
    size_t off = 1 + olen;
    if (p[0] & BATCH_EXT_FLAG) {
        size_t used = ext_read(r, p + off, len - off);
        if (used == 0) {
            return HY_ECORRUPT;
        }
        r->ext = p + off;
        r->ext_len = used;
        off += used;
    }
    if (len - off < BATCH_HEADER_FIXED - 1) {
        return HY_ECORRUPT;
    }
    r->src_partition = hy_load_u32le(p + off);
    r->count = hy_load_u32le(p + off + 4);
    r->p = p;
    r->len = len;
    r->off = off + 8;
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

/* The fence is kept among the positions, under an origin no batch can carry (a batch's origin
 * has no space: wan_batch_open), so that snapshots hold it as they are (docs/disk-format.md
 * "WAN positions"): its epoch as partition 0's position, and, when the promotion replaced one
 * source only (HALYARD WAN PROMOTE FROM), that source's origin id as partition 1's (absent or 0:
 * every source). */
#define FENCE_ORIGIN " promoted"

uint64_t store_wan_fence(struct store *s)
{
    return store_wan_applied(s, FENCE_ORIGIN, 0);
}

/* Whether the fence refuses an active-passive batch from origin. */
static int fence_refuses(struct store *s, const char *origin)
{
    uint64_t from = store_wan_applied(s, FENCE_ORIGIN, 1);
    return store_wan_fence(s) != 0 && (from == 0 || from == wan_origin_id(origin, strlen(origin)));
}

void store__op_wan_fence(struct store *s, const struct store_entry *e, struct resp_writer *reply)
{
    int64_t epoch;
    int from_ok = e->argc < 2 || (e->argv[1].len >= 1 && e->argv[1].len <= WAN_ORIGIN_MAX &&
                                  memchr(e->argv[1].ptr, ' ', e->argv[1].len) == NULL);
    if (!hy_parse_i64(e->argv[0].ptr, e->argv[0].len, &epoch) || epoch < 0 || !from_ok ||
        (epoch == 0 && e->argc > 1)) {
        if (reply != NULL) {
            resp_write_error(reply, "ERR invalid fence epoch or source");
        }
        return;
    }
    uint32_t from = e->argc > 1 ? wan_origin_id((const char *)e->argv[1].ptr, e->argv[1].len) : 0;
    struct store_wan_src *f = src_find(s, FENCE_ORIGIN, 0, epoch != 0);
    if (f != NULL) {
        f->last = (uint64_t)epoch;
    }
    struct store_wan_src *o = src_find(s, FENCE_ORIGIN, 1, from != 0);
    if (o != NULL) {
        o->last = from;
    }
    if (reply != NULL) {
        resp_write_simple(reply, "OK");
    }
}

/* Applies a resync batch (docs/wan.md "Resync"): key states, each applied whatever the
 * position (a state applied twice is the same state), after which the source's position is
 * its base: the link's stream resumes from there. It is refused when the position is past the
 * base already: the stream of that resync (or of a later one) has begun, and an earlier state
 * applied now would undo a change applied since. */
struct slot_keys {
    uint16_t lo, hi;
    const char *pattern; /* "": every key */
    struct hy_buf keys;  /* u32 LE length + bytes, repeated */
    size_t count;
};

static void collect_slot_key(void *ctx, const uint8_t *key, size_t klen, const struct store_obj *o)
{
    (void)o;
    struct slot_keys *c = ctx;
    uint16_t slot = hy_key_slot(key, klen);
    if (slot >= c->lo && slot <= c->hi &&
        (c->pattern[0] == '\0' ||
         hy_glob_match((const uint8_t *)c->pattern, strlen(c->pattern), key, klen, 0))) {
        hy_buf_append_u32le(&c->keys, (uint32_t)klen);
        hy_buf_append(&c->keys, key, klen);
        c->count++;
    }
}

/* Deletes every key held in slots lo..hi that matches pattern ("": all; expired ones included:
 * they are gone anyway). */
static void clear_slots(struct store *s, uint16_t lo, uint16_t hi, const char *pattern,
                        uint64_t time_ms)
{
    struct slot_keys c = {.lo = lo, .hi = hi, .pattern = pattern, .count = 0};
    hy_buf_init(&c.keys);
    uint64_t cursor = 0;
    do {
        cursor = store_scan(s, cursor, 1024, 0, collect_slot_key, &c);
    } while (cursor != 0);
    for (size_t off = 0; off < c.keys.len;) {
        uint32_t klen = hy_load_u32le(c.keys.data + off);
        const uint8_t *k = c.keys.data + off + 4;
        off += 4 + klen;
        struct store_obj *o = store__lookup_write(s, k, klen, time_ms);
        if (o != NULL) {
            store__delete(s, o);
        }
    }
    hy_buf_free(&c.keys);
}

static void apply_resync(struct store *s, const struct store_entry *e, struct wan_batch_reader *r,
                         struct store_wan_src *src, struct resp_writer *reply)
{
    if (r->resync_base < src->last) {
        if (reply != NULL) {
            resp_write_error(reply, "ERR stale WAN resync batch: the stream is past its base");
        }
        return;
    }
    if (r->clear && r->resync_base > src->last) {
        /* An active-passive resync's first batch, applied once (its resends find the position
         * at the base): the target is a replica of the source's slots, so what it holds there
         * goes, and the scan's states (this batch's and the next ones') are all that stays. */
        clear_slots(s, r->clear_lo, r->clear_hi, r->clear_keys, e->time_ms);
    }
    uint64_t index;
    const uint8_t *entry;
    size_t len;
    while (wan_batch_next(r, &index, &entry, &len) == HY_OK) {
        /* Only states: an op in a resync batch (crafted bytes) could not be applied twice. */
        struct store_entry pe;
        int state = store_entry_decode(entry, len, &pe) == HY_OK;
        if (state) {
            state = pe.op == STORE_OP_WAN_PUT;
            store_entry_release(&pe);
        }
        if (!state || store_apply(s, entry, len, NULL) != HY_OK) {
            s->wan_undecoded++;
        }
    }
    src->last = r->resync_base;
    if (reply != NULL) {
        resp_write_int(reply, (int64_t)src->last);
    }
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
    uint64_t fence = store_wan_fence(s);
    if (!r.active_active && fence_refuses(s, r.origin)) {
        /* The cluster was promoted, and this partition applied it (docs/wan.md "Region
         * failover"): an active-passive batch proposed after that is not applied, on any
         * replica; its sender tries again and is then told -DEMOTED before it is proposed. */
        if (reply != NULL) {
            resp_write_errorf(reply,
                              "ERR this partition applied its cluster's promotion (epoch %llu): "
                              "active-passive batches are refused",
                              (unsigned long long)fence);
        }
        return;
    }
    struct store_wan_src *src = src_find(s, r.origin, r.src_partition, 1);
    /* The batch's entries are not tapped: this slice ships a cluster's own writes only, so
     * that two links never send a change back where it came from. */
    s->wan_depth++;
    s->wan_batch = &r;
    if (r.resync) {
        apply_resync(s, e, &r, src, reply);
        s->wan_batch = NULL;
        s->wan_depth--;
        return;
    }
    uint64_t index;
    const uint8_t *entry;
    size_t len;
    enum hy_status rc;
    while ((rc = wan_batch_next(&r, &index, &entry, &len)) == HY_OK) {
        if (wan_dedup_admit(&src->last, index)) {
            /* A shipped entry that does not decode here (a newer source's op) is skipped on
             * every replica alike: the position still moves past it. */
            if (store_apply(s, entry, len, NULL) != HY_OK) {
                s->wan_undecoded++;
            }
        }
    }
    s->wan_batch = NULL;
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

/* ---- versions per key (active-active) ---------------------------------------------------------
 */

/* One key's version: kept while the key lives and after it is deleted (a tombstone), so that a
 * deletion and a concurrent write elsewhere are ordered like two writes. */
struct hlc_key {
    struct htab_node node;
    uint64_t hlc;
    uint64_t hits; /* the writes in this version's history (struct wan_version) */
    uint32_t origin;
    /* The key's length << 1 | dead (deleted: a tombstone). One word for both keeps the header
     * at 32 bytes. A key is at most 512 MB (proto limit), far below 2^31. */
    uint32_t klen_dead;
    uint8_t key[];
};

_Static_assert(sizeof(struct hlc_key) == 32, "a version's header is 32 bytes (docs/wan.md)");

static size_t hk_len(const struct hlc_key *h)
{
    return h->klen_dead >> 1;
}

static int hk_dead(const struct hlc_key *h)
{
    return (int)(h->klen_dead & 1u);
}

struct store_hlc {
    uint32_t origin; /* this cluster's id: the origin of its own writes */
    uint64_t clock;  /* the last HLC drawn or received */
    struct htab keys;
    size_t bytes; /* the versions' allocations (usable sizes) */
};

static void hlc_key_fn(const struct htab_node *n, const uint8_t **k, size_t *klen)
{
    const struct hlc_key *h = (const struct hlc_key *)n;
    *k = h->key;
    *klen = hk_len(h);
}

static struct store_hlc *hlc_new(uint64_t seed, uint32_t origin)
{
    struct store_hlc *h = hy_xcalloc(1, sizeof(*h));
    htab_init(&h->keys, hlc_key_fn, seed);
    h->origin = origin;
    return h;
}

static void hlc_key_free(void *ctx, struct htab_node *n)
{
    (void)ctx;
    hy_free(n);
}

static void hlc_free(struct store_hlc *h)
{
    if (h != NULL) {
        htab_clear(&h->keys, hlc_key_free, NULL);
        hy_free(h);
    }
}

void store__hlc_free(struct store *s)
{
    hlc_free(s->hlc);
    s->hlc = NULL;
}

void store__hlc_replace(struct store *s, struct store_hlc *fresh)
{
    store__hlc_free(s);
    s->hlc = fresh;
}

/* Sets key's version, making its record when there is none. */
static void hlc_set(struct store_hlc *h, const uint8_t *k, size_t klen, uint64_t hlc,
                    uint32_t origin, uint64_t hits, int dead)
{
    struct hlc_key *v = (struct hlc_key *)htab_find(&h->keys, k, klen);
    if (v == NULL) {
        HY_ASSERT(klen < (1u << 31));
        v = hy_xmalloc(sizeof(*v) + klen);
        memset(v, 0, sizeof(*v));
        v->klen_dead = (uint32_t)klen << 1;
        memcpy(v->key, k, klen);
        htab_insert(&h->keys, &v->node);
        h->bytes += hy_alloc_size(v);
    }
    v->hlc = hlc;
    v->hits = hits;
    v->origin = origin;
    v->klen_dead = (v->klen_dead & ~1u) | (dead != 0);
}

int store_wan_versions_on(const struct store *s)
{
    return s->hlc != NULL;
}

uint64_t store_wan_clock(const struct store *s)
{
    return s->hlc != NULL ? s->hlc->clock : 0;
}

int store_wan_version(const struct store *s, const uint8_t *k, size_t klen, struct wan_version *v)
{
    const struct hlc_key *h =
        s->hlc ? (const struct hlc_key *)htab_find(&s->hlc->keys, k, klen) : NULL;
    memset(v, 0, sizeof(*v));
    v->expire_at = -1;
    if (h == NULL) {
        return 0;
    }
    v->live = !hk_dead(h);
    v->hlc = h->hlc;
    v->origin = h->origin;
    v->hits = h->hits;
    return 1;
}

size_t store_wan_versions(const struct store *s, size_t *bytes_out)
{
    *bytes_out = s->hlc ? s->hlc->bytes + s->hlc->keys.table_bytes : 0;
    return s->hlc ? htab_count(&s->hlc->keys) : 0;
}

/* [origin name]: versions are kept from here on. Keys written before have none (older than
 * any kept version); a second one changes nothing but the origin. */
void store__op_wan_hlc(struct store *s, const struct store_entry *e, struct resp_writer *reply)
{
    const struct store_arg *o = &e->argv[0];
    if (o->len == 0 || o->len > WAN_ORIGIN_MAX) {
        if (reply != NULL) {
            resp_write_error(reply, "ERR invalid origin");
        }
        return;
    }
    uint32_t id = wan_origin_id((const char *)o->ptr, o->len);
    if (s->hlc == NULL) {
        s->hlc = hlc_new(s->hash_seed, id);
    }
    s->hlc->origin = id;
    if (reply != NULL) {
        resp_write_simple(reply, "OK");
    }
}

/* Encodes the WAN_PUT of key k's state (o: its value, NULL: deleted) with version v's hlc,
 * origin and hits into out. */
static void put_state_of(const uint8_t *k, size_t klen, const struct store_obj *o, uint64_t time_ms,
                         const struct wan_version *v, struct hy_buf *out)
{
    uint8_t meta[WAN_PUT_META];
    hy_store_u64le(meta, v->hlc);
    hy_store_u32le(meta + 8, v->origin);
    hy_store_u64le(meta + 12, v->hits);
    struct hy_buf dump;
    hy_buf_init(&dump);
    if (o != NULL) {
        store_dump(o, &dump);
    }
    struct store_arg args[3] = {{k, klen}, {meta, sizeof(meta)}, {dump.data, dump.len}};
    struct store_entry pe = {.op = STORE_OP_WAN_PUT,
                             .time_ms = time_ms,
                             .expire_at_ms = o != NULL ? store_obj_expire_at(o) : -1,
                             .argc = 3,
                             .argv = args};
    store_entry_encode(&pe, out);
    hy_buf_free(&dump);
}

/* The same for key k's state now. */
static void put_state(struct store *s, const uint8_t *k, size_t klen, uint64_t time_ms,
                      const struct wan_version *v, struct hy_buf *out)
{
    put_state_of(k, klen, store_peek(s, k, klen, time_ms), time_ms, v, out);
}

void store_wan_state(struct store *s, const uint8_t *k, size_t klen, const struct store_obj *o,
                     uint64_t time_ms, struct hy_buf *out)
{
    struct wan_version v;
    if (!store_wan_version(s, k, klen, &v)) {
        v.origin = s->hlc != NULL ? s->hlc->origin : 0; /* version 0: hlc and hits 0 */
    }
    put_state_of(k, klen, o, time_ms, &v, out);
}

/* Hands the tap key k's state now with version v, as a STORE_OP_WAN_PUT (put: scratch). */
static void tap_state(struct store *s, const struct store_arg *k, uint64_t time_ms,
                      const struct wan_version *v, struct hy_buf *put)
{
    if (s->tap_fn == NULL) {
        return;
    }
    hy_buf_reset(put);
    put_state(s, k->ptr, k->len, time_ms, v, put);
    struct store_entry pe;
    if (store_entry_decode(put->data, put->len, &pe) == HY_OK) {
        s->tap_fn(s->tap_ctx, &pe, put->data, put->len);
        store_entry_release(&pe);
    }
}

void store__op_wan_hits(struct store *s, const struct store_entry *e, struct resp_writer *reply)
{
    uint64_t counts[64];
    size_t pairs = e->argc / 2;
    for (size_t i = 0; i < pairs; i++) {
        int64_t c;
        if (!hy_parse_i64(e->argv[2 * i + 1].ptr, e->argv[2 * i + 1].len, &c) || c < 1 ||
            c > UINT32_MAX) {
            if (reply != NULL) {
                resp_write_error(reply, "ERR invalid read count");
            }
            return;
        }
        if (i < 64) {
            counts[i] = (uint64_t)c;
        }
    }
    if (pairs > 64) {
        if (reply != NULL) {
            resp_write_error(reply, "ERR at most 64 keys per entry");
        }
        return;
    }
    struct hy_buf put;
    hy_buf_init(&put);
    for (size_t i = 0; i < pairs && s->hlc != NULL; i++) {
        const struct store_arg *k = &e->argv[2 * i];
        if (store_peek(s, k->ptr, k->len, e->time_ms) == NULL) {
            continue; /* read while absent, or deleted since: nothing to count on */
        }
        /* As a write's version (store__wan_after), with the reads as its hits: drawn at apply
         * from the entry's time and the replicated clock, alike on every replica. */
        struct wan_version v;
        store_wan_version(s, k->ptr, k->len, &v);
        v.hlc = wan_hlc_next(s->hlc->clock, e->time_ms);
        s->hlc->clock = v.hlc;
        v.origin = s->hlc->origin;
        v.hits += counts[i];
        hlc_set(s->hlc, k->ptr, k->len, v.hlc, v.origin, v.hits, 0);
        tap_state(s, k, e->time_ms, &v, &put);
    }
    hy_buf_free(&put);
    if (reply != NULL) {
        resp_write_simple(reply, "OK");
    }
}

void store_set_tap_states(struct store *s, int on)
{
    s->tap_states = on;
}

/* The keys write e changed, as argument indexes into idx (room for e->argc). WATCH's spans
 * err on the side of more keys; here a key too many would be shipped as a deletion of a key
 * that is not one, so the two approximate spans are narrowed: SORT writes only its STORE
 * destination, and XREADGROUP is not shipped at all (its consumer-group state, docs/wan.md). */
static size_t keys_written(const struct store_entry *e, uint64_t skip, uint32_t *idx)
{
    if (e->op == STORE_OP_XREADGROUP) {
        return 0;
    }
    if (e->op == STORE_OP_SORT) {
        for (size_t i = e->argc; i-- > 1;) {
            if (i + 1 < e->argc && hy_eq_nocase(e->argv[i].ptr, e->argv[i].len, "STORE")) {
                idx[0] = (uint32_t)(i + 1);
                return 1;
            }
        }
        return 0;
    }
    return store__written_keys(e, skip, idx, e->argc);
}

void store__wan_after(struct store *s, const struct store_entry *e, uint64_t skip,
                      const uint8_t *entry, size_t len)
{
    uint32_t stack[64];
    uint32_t *idx = e->argc <= 64 ? stack : hy_xmalloc(e->argc * sizeof(*idx));
    size_t n = keys_written(e, skip, idx);
    if (n == 0 || e->op == STORE_OP_WAN_PUT) {
        /* No key named (a transaction, a script: their writes come one by one; FLUSHALL and
         * the caches: not shipped), or a state outside a batch (refused by its op). */
        if (s->tap_fn != NULL) {
            s->tap_fn(s->tap_ctx, e, entry, len);
        }
        if (idx != stack) {
            hy_free(idx);
        }
        return;
    }
    /* Drawn here, at apply, from the entry's time (the leader's clock at proposal) and the
     * replicated clock, so that every replica gets the same HLC for the same entry. A store
     * keeping no versions (its tap asked for states: store_set_tap_states) ships version 0. */
    uint64_t hlc = 0;
    uint32_t origin = 0;
    if (s->hlc != NULL) {
        hlc = wan_hlc_next(s->hlc->clock, e->time_ms);
        s->hlc->clock = hlc;
        origin = s->hlc->origin;
    }
    struct hy_buf put;
    hy_buf_init(&put);
    for (size_t i = 0; i < n; i++) {
        const struct store_arg *k = &e->argv[idx[i]];
        /* This write's version of the key: one hit more than the one it replaces (0 for a
         * key that had none, written before versions were kept). */
        struct wan_version v;
        store_wan_version(s, k->ptr, k->len, &v);
        v.hlc = hlc;
        v.origin = origin;
        v.hits = s->hlc != NULL ? v.hits + 1 : 0;
        if (s->hlc != NULL) {
            int live = store_peek(s, k->ptr, k->len, e->time_ms) != NULL;
            hlc_set(s->hlc, k->ptr, k->len, hlc, origin, v.hits, !live);
        }
        tap_state(s, k, e->time_ms, &v, &put);
    }
    hy_buf_free(&put);
    if (idx != stack) {
        hy_free(idx);
    }
}

/* ---- merge decisions, counted -------------------------------------------------------------- */

struct store_wan_stats {
    struct wan_conflict_count counts[WAN_CONFLICT_COUNTS_MAX];
    size_t ncounts;
    struct wan_conflict last[WAN_CONFLICT_LAST_MAX]; /* a ring: next is the oldest when full */
    size_t next, nlast;
};

void store__wan_stats_free(struct store *s)
{
    hy_free(s->wan_stats);
    s->wan_stats = NULL;
}

static void count_decision(struct store *s, const char *link, const char *origin, const uint8_t *k,
                           size_t klen, enum wan_policy p, int applied,
                           const struct wan_version *local, const struct wan_version *in,
                           uint64_t time_ms)
{
    if (s->wan_stats == NULL) {
        s->wan_stats = hy_xcalloc(1, sizeof(*s->wan_stats));
    }
    struct store_wan_stats *st = s->wan_stats;
    size_t i = 0;
    while (i < st->ncounts && !(strcmp(st->counts[i].link, link) == 0 &&
                                st->counts[i].policy == p && st->counts[i].applied == applied)) {
        i++;
    }
    if (i == st->ncounts && st->ncounts < WAN_CONFLICT_COUNTS_MAX) {
        snprintf(st->counts[i].link, sizeof(st->counts[i].link), "%s", link);
        st->counts[i].policy = p;
        st->counts[i].applied = applied;
        st->ncounts++;
    }
    if (i < st->ncounts) {
        st->counts[i].count++;
    }
    struct wan_conflict *c = &st->last[st->next];
    snprintf(c->link, sizeof(c->link), "%s", link);
    snprintf(c->origin, sizeof(c->origin), "%s", origin);
    c->klen = klen < WAN_CONFLICT_KEY_MAX ? klen : WAN_CONFLICT_KEY_MAX;
    memcpy(c->key, k, c->klen);
    c->policy = p;
    c->applied = applied;
    c->local = *local;
    c->in = *in;
    c->time_ms = time_ms;
    st->next = (st->next + 1) % WAN_CONFLICT_LAST_MAX;
    if (st->nlast < WAN_CONFLICT_LAST_MAX) {
        st->nlast++;
    }
}

size_t store_wan_conflict_counts(const struct store *s, const struct wan_conflict_count **out)
{
    *out = s->wan_stats ? s->wan_stats->counts : NULL;
    return s->wan_stats ? s->wan_stats->ncounts : 0;
}

size_t store_wan_conflicts_last(const struct store *s, const char *link, struct wan_conflict *out,
                                size_t cap)
{
    const struct store_wan_stats *st = s->wan_stats;
    size_t k = 0;
    for (size_t i = 0; st != NULL && i < st->nlast && k < cap; i++) {
        const struct wan_conflict *c =
            &st->last[(st->next + WAN_CONFLICT_LAST_MAX - 1 - i) % WAN_CONFLICT_LAST_MAX];
        if (link == NULL || strcmp(c->link, link) == 0) {
            out[k++] = *c;
        }
    }
    return k;
}

/*
 * [key, version, payload]: a key's state from an active-active link (or from any link once its
 * source keeps versions). A conflict is a change to a key whose current version another
 * cluster wrote (this one, mostly): the batch's policy for the key decides, and the decision is
 * counted. A change over a key whose version came from the same cluster is that cluster's next
 * write: it applies when newer. An active-passive link's changes always apply (the source is
 * the only writer). The receiving store's clock moves past the incoming HLC, so that its next
 * write is newer than every version it has seen.
 */
void store__op_wan_put(struct store *s, const struct store_entry *e, struct resp_writer *reply)
{
    const struct store_arg *k = &e->argv[0], *meta = &e->argv[1], *pl = &e->argv[2];
    /* A version without hits (written before they were kept: a log replayed) counts 0. */
    if (s->wan_depth == 0 || (meta->len != WAN_PUT_META && meta->len != WAN_PUT_META_V1)) {
        if (reply != NULL) {
            resp_write_error(reply, "ERR WAN_PUT only comes inside a WAN batch");
        }
        return;
    }
    struct wan_version in = {.live = pl->len > 0,
                             .hlc = hy_load_u64le(meta->ptr),
                             .origin = hy_load_u32le(meta->ptr + 8),
                             .expire_at = e->expire_at_ms,
                             .hits = meta->len == WAN_PUT_META ? hy_load_u64le(meta->ptr + 12) : 0};
    if (in.live && in.expire_at >= 0 && (uint64_t)in.expire_at <= e->time_ms) {
        in.live = 0; /* expired already: it arrives as the deletion it has become */
        in.expire_at = -1;
    }
    struct store_obj *obj = store__lookup_write(s, k->ptr, k->len, e->time_ms);
    struct wan_version local;
    int tracked = store_wan_version(s, k->ptr, k->len, &local);
    if (!tracked && s->hlc != NULL) {
        /* A key written here before versions were kept: this cluster's, version 0, as its
         * resync sends it (store_wan_state), so that two such keys of the same name, one on
         * each side, are decided alike on both (by the origin id). */
        local.origin = s->hlc->origin;
    }
    local.live = obj != NULL;
    local.expire_at = obj != NULL ? store__expire(obj) : -1;
    if (s->hlc != NULL && in.hlc > s->hlc->clock) {
        s->hlc->clock = in.hlc;
    }
    const struct wan_batch_reader *b = s->wan_batch;
    int apply;
    if (b == NULL || !b->active_active) {
        apply = 1;
    } else if (!tracked && obj == NULL) {
        apply = 1; /* nothing here: no conflict */
    } else if (tracked && local.origin == in.origin) {
        apply = in.hlc > local.hlc;
    } else {
        enum wan_policy p = wan_policy_for(b->rules, b->nrules, k->ptr, k->len);
        apply = wan_merge_decide(p, &local, &in);
        count_decision(s, b->link, b->origin, k->ptr, k->len, p, apply, &local, &in, e->time_ms);
    }
    if (apply) {
        struct store_obj *n = NULL;
        if (in.live) {
            int rc =
                store__dump_load(pl->ptr, pl->len, s->hash_seed, k->ptr, k->len, in.expire_at, &n);
            if (rc != STORE_DUMP_OK) {
                /* Checked by nobody on the way: skipped alike on every replica. */
                s->wan_undecoded++;
                if (reply != NULL) {
                    resp_write_error(reply, store_dump_error(rc));
                }
                return;
            }
        }
        if (obj != NULL) {
            store__delete(s, obj);
        }
        if (n != NULL) {
            n->lru = store__lru_of(e);
            store__link(s, n);
        }
        if (s->hlc != NULL) {
            hlc_set(s->hlc, k->ptr, k->len, in.hlc, in.origin, in.hits, !in.live);
        }
    }
    if (reply != NULL) {
        resp_write_int(reply, apply);
    }
}

/* The snapshot section (version 9): present u8; when 1, origin, clock and count varints, then
 * per version in key order: key bytes, hlc and origin varints, (since version 11) hits varint,
 * dead u8. */
struct hlc_ref {
    const struct hlc_key *v;
};

static void collect_hlc(void *ctx, struct htab_node *n)
{
    struct hlc_ref **p = ctx;
    (*p)->v = (const struct hlc_key *)n;
    (*p)++;
}

static int hlc_ref_cmp(const void *pa, const void *pb)
{
    const struct hlc_key *a = ((const struct hlc_ref *)pa)->v, *b = ((const struct hlc_ref *)pb)->v;
    size_t al = hk_len(a), bl = hk_len(b);
    int c = memcmp(a->key, b->key, al < bl ? al : bl);
    return c != 0 ? c : (al > bl) - (al < bl);
}

void store__hlc_encode(const struct store *s, struct hy_buf *out)
{
    if (s->hlc == NULL) {
        hy_buf_append_u8(out, 0);
        return;
    }
    hy_buf_append_u8(out, 1);
    size_t n = htab_count(&s->hlc->keys);
    uint8_t *p = hy_buf_reserve(out, 3 * VARINT_MAX);
    p += varint_put(p, s->hlc->origin);
    p += varint_put(p, s->hlc->clock);
    p += varint_put(p, n);
    out->len = (size_t)(p - out->data);
    struct hlc_ref *refs = hy_xmalloc((n > 0 ? n : 1) * sizeof(*refs)), *w = refs;
    htab_foreach(&s->hlc->keys, collect_hlc, &w);
    qsort(refs, n, sizeof(*refs), hlc_ref_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct hlc_key *v = refs[i].v;
        size_t klen = hk_len(v);
        p = hy_buf_reserve(out, 4 * VARINT_MAX + klen + 1);
        p += varint_put(p, klen);
        memcpy(p, v->key, klen);
        p += klen;
        p += varint_put(p, v->hlc);
        p += varint_put(p, v->origin);
        p += varint_put(p, v->hits);
        *p++ = (uint8_t)hk_dead(v);
        out->len = (size_t)(p - out->data);
    }
    hy_free(refs);
}

int store__hlc_decode(const uint8_t *buf, size_t len, uint64_t seed, int with_hits,
                      size_t *used_out, struct store_hlc **out)
{
    struct rd r = {buf, len, 0, 0};
    *out = NULL;
    uint8_t present = rd_u8(&r);
    if (r.bad || present > 1) {
        return 0;
    }
    if (present == 0) {
        *used_out = r.off;
        return 1;
    }
    uint64_t origin = rd_varint(&r), clock = rd_varint(&r), count = rd_varint(&r);
    /* A version takes at least 4 bytes (key length, hlc, origin, dead). */
    if (r.bad || origin == 0 || origin > UINT32_MAX || count > (len - r.off) / 4) {
        return 0;
    }
    struct store_hlc *h = hlc_new(seed, (uint32_t)origin);
    h->clock = clock;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        size_t klen;
        const uint8_t *k = rd_bytes(&r, &klen);
        uint64_t hlc = rd_varint(&r), o = rd_varint(&r);
        uint64_t hits = with_hits ? rd_varint(&r) : 0;
        uint8_t dead = rd_u8(&r);
        if (r.bad || o > UINT32_MAX || dead > 1 || klen >= (1u << 31)) {
            r.bad = 1;
            break;
        }
        /* Canonical: strictly ascending keys (no duplicate). */
        if (prev != NULL) {
            int c = memcmp(prev, k, prev_len < klen ? prev_len : klen);
            if (c > 0 || (c == 0 && prev_len >= klen)) {
                r.bad = 1;
                break;
            }
        }
        prev = k;
        prev_len = klen;
        hlc_set(h, k, klen, hlc, (uint32_t)o, hits, dead);
    }
    if (r.bad) {
        hlc_free(h);
        return 0;
    }
    *used_out = r.off;
    *out = h;
    return 1;
}

void store_set_tap(struct store *s, store_tap_fn fn, void *ctx)
{
    s->tap_fn = fn;
    s->tap_ctx = ctx;
}
