/*
 * store_hash.c - hash values (the grid's named maps), in two encodings.
 *
 * Small hashes (at most HLIST_ENTRIES_MAX fields, no field or value longer than
 * HLIST_BYTES_MAX) live in one compact buffer of [varint flen][varint vlen][field][value]
 * records, like Redis's listpack: a 2-field hash costs one small allocation instead of a table,
 * bucket array and one node per field. Lookups are linear, which is cheaper than hashing at
 * these sizes. A hash that outgrows either bound converts once, for good, to a table of
 * struct hfield nodes (an htab), as Redis does.
 *
 * Invariants: list encoding iff tab == NULL; in list encoding count is the number of records
 * and list_len their total size; in table encoding field_bytes is the usable size of every node.
 */
/*
 * store_hash.c - hash and set values (the grid's named maps and sets), in three encodings.
 *
 * Small hashes (at most hash-max-listpack-entries fields, no field or value longer than
 * hash-max-listpack-value bytes) live in one compact buffer of [varint flen][varint vlen]
 * [field][value] records, like Redis's listpack: a 2-field hash costs one small allocation
 * instead of a table, bucket array and one node per field. Lookups are linear, which is cheaper
 * than hashing at these sizes. A hash that outgrows either bound converts once, for good, to a
 * table of struct hfield nodes (an htab), as Redis does.
 *
 * A set is the same object with every value empty, and has one more encoding: a set created
 * with an integer member (and the results of SINTERSTORE and its kin) starts as an intset, a
 * sorted array of 2-, 4- or 8-byte little-endian integers, as Redis's. Adding a member that is
 * not a canonical 64-bit integer, or more than set-max-intset-entries members, converts it to
 * the compact list (set-max-listpack-entries/-value, as Redis 7.2) or the table. Callers see
 * members as bytes: the first read that walks an intset formats its members once into a view
 * buffer, kept (not counted in obj_bytes: a cache) until the next change, so that the pointers
 * it hands out stay valid as the other encodings' do.
 *
 * The thresholds are the node's settings (struct store_encoding): an encoding is a memory
 * layout only. No reply and no snapshot byte depends on it, so replicas with different
 * settings still hold the same state; apply converts at the thresholds it is given.
 *
 * A set's object lives inside its key's entry (store.c), and so may its list or intset bytes
 * (`inl`): they then belong to the entry, are never freed or resized here (a change that
 * needs more room copies them out first) and are counted with the entry (store__hobj_extra_
 * bytes leaves them out). store.c folds them back in after a write (store__hobj_inline).
 *
 * Invariants: the encoding is enc; list and intset keep count members in len bytes of list;
 * an intset is strictly increasing, len = count * width; in table encoding tab_bytes is the
 * usable size of every node; aux.view is only set for an intset; inl only with list != NULL.
 */
#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

enum { HENC_LIST = 0, HENC_INTSET = 1, HENC_TABLE = 2 };

/* The compact list never grows past this (bytes or records), whatever the settings say. */
#define HLIST_LEN_CAP   ((size_t)1 << 30)
#define HLIST_COUNT_CAP ((uint32_t)1 << 27) /* count is a 28-bit field (and so is an intset's) */
#define INT_TEXT_MAX    20                  /* "-9223372036854775808" */

/* 32 bytes: a set's is part of its key's entry, so every byte here is paid per key. */
struct hobj {
    union {
        uint8_t *list;    /* compact records or intset integers; NULL when empty */
        size_t tab_bytes; /* HENC_TABLE: usable bytes of every field node */
    };
    union {
        struct htab *tab; /* HENC_TABLE */
        uint8_t *view;    /* HENC_INTSET: the members as text ([u8 len][digits]...), or NULL */
    } aux;
    uint64_t seed;
    uint32_t len;        /* list/intset: bytes of list (at most HLIST_LEN_CAP) */
    uint32_t count : 28; /* list/intset (at most HLIST_COUNT_CAP) */
    uint32_t enc : 2;
    uint32_t is_set : 1;
    uint32_t inl : 1; /* list lives in the containing entry (see the file comment) */
};
_Static_assert(sizeof(struct hobj) == 32, "struct hobj grew: it is part of every set's entry");

static const struct store_encoding enc_default = STORE_ENCODING_DEFAULT;

/* One record of the compact list. */
struct hrec {
    size_t off; /* record start */
    size_t size;
    const uint8_t *f;
    size_t flen;
    const uint8_t *v;
    size_t vlen;
};

static size_t rec_read(const struct hobj *h, size_t off, struct hrec *r)
{
    /* The list was written by this file, so its varints are well formed. */
    uint64_t flen = 0, vlen = 0;
    size_t p = off;
    p += varint_get(h->list + p, h->len - p, &flen);
    p += varint_get(h->list + p, h->len - p, &vlen);
    r->off = off;
    r->f = h->list + p;
    r->flen = (size_t)flen;
    r->v = r->f + flen;
    r->vlen = (size_t)vlen;
    r->size = p - off + (size_t)flen + (size_t)vlen;
    return off + r->size;
}

static int list_find(const struct hobj *h, const uint8_t *f, size_t flen, struct hrec *r)
{
    for (size_t off = 0; off < h->len;) {
        off = rec_read(h, off, r);
        if (r->flen == flen && (flen == 0 || memcmp(r->f, f, flen) == 0)) {
            return 1;
        }
    }
    return 0;
}

static size_t rec_write(uint8_t *p, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    size_t n = varint_put(p, flen);
    n += varint_put(p + n, vlen);
    if (flen > 0) {
        memcpy(p + n, f, flen);
    }
    if (vlen > 0) {
        memcpy(p + n + flen, v, vlen);
    }
    return n + flen + vlen;
}

static size_t rec_size(size_t flen, size_t vlen)
{
    return varint_len(flen) + varint_len(vlen) + flen + vlen;
}

/* ---- intset encoding ------------------------------------------------------------------------ */

static size_t is_width(const struct hobj *h)
{
    return h->count == 0 ? 2 : h->len / h->count;
}

static int64_t is_get(const struct hobj *h, size_t width, size_t i)
{
    const uint8_t *p = h->list + i * width;
    if (width == 2) {
        return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    }
    if (width == 4) {
        return (int32_t)hy_load_u32le(p);
    }
    return (int64_t)hy_load_u64le(p);
}

static void is_put(uint8_t *p, size_t width, int64_t v)
{
    for (size_t b = 0; b < width; b++) {
        p[b] = (uint8_t)((uint64_t)v >> (8 * b));
    }
}

static size_t width_for(int64_t v)
{
    if (v >= INT16_MIN && v <= INT16_MAX) {
        return 2;
    }
    return v >= INT32_MIN && v <= INT32_MAX ? 4 : 8;
}

/* The position of v, or where it would go; *found_out says which. */
static size_t is_search(const struct hobj *h, int64_t v, int *found_out)
{
    size_t width = is_width(h), lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t x = is_get(h, width, mid);
        if (x == v) {
            *found_out = 1;
            return mid;
        }
        if (x < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found_out = 0;
    return lo;
}

static void view_drop(struct hobj *h)
{
    if (h->enc == HENC_INTSET && h->aux.view != NULL) {
        hy_free(h->aux.view);
        h->aux.view = NULL;
    }
}

/* The intset's members as text, built on first use (a cache: see the file comment). */
static const uint8_t *view_get(const struct hobj *hc)
{
    struct hobj *h = (struct hobj *)(uintptr_t)hc; /* the cache is not part of the value */
    if (h->aux.view == NULL) {
        size_t width = is_width(h), off = 0;
        h->aux.view = hy_xmalloc(HY_MAX((size_t)h->count * (INT_TEXT_MAX + 1), 1));
        for (size_t i = 0; i < h->count; i++) {
            char text[32];
            size_t n = hy_format_i64(text, is_get(h, width, i));
            h->aux.view[off] = (uint8_t)n;
            memcpy(h->aux.view + off + 1, text, n);
            off += 1 + n;
        }
    }
    return h->aux.view;
}

/* Adds v (absent) at position at, widening every integer first when v needs it. */
static void is_insert(struct hobj *h, size_t at, int64_t v)
{
    size_t width = is_width(h), need = HY_MAX(width, width_for(v));
    uint8_t *list = hy_xmalloc((h->count + 1) * need);
    for (size_t i = 0, j = 0; i <= h->count; i++) {
        is_put(list + i * need, need, i == at ? v : is_get(h, width, j++));
    }
    if (!h->inl) {
        hy_free(h->list);
    }
    h->list = list;
    h->inl = 0;
    h->count++;
    h->len = (uint32_t)(h->count * need);
}

static void is_remove(struct hobj *h, size_t at)
{
    size_t width = is_width(h);
    memmove(h->list + at * width, h->list + (at + 1) * width, (h->count - at - 1) * width);
    h->count--;
    h->len -= (uint32_t)width;
    if (h->count == 0) {
        if (!h->inl) {
            hy_free(h->list);
        }
        h->list = NULL;
        h->inl = 0;
    } else if (!h->inl) {
        h->list = hy_xrealloc(h->list, h->len);
    }
}

/* ---- table encoding ------------------------------------------------------------------------- */

void store__field_kv(const struct hfield *n, const uint8_t **f_out, size_t *flen_out,
                     const uint8_t **v_out, size_t *vlen_out)
{
    uint64_t flen = 0, vlen = 0;
    size_t off = varint_get(n->data, VARINT_MAX, &flen);
    off += varint_get(n->data + off, VARINT_MAX, &vlen);
    *f_out = n->data + off;
    *flen_out = (size_t)flen;
    if (v_out != NULL) {
        *v_out = n->data + off + flen;
        *vlen_out = (size_t)vlen;
    }
}

static void field_key_fn(const struct htab_node *n, const uint8_t **k_out, size_t *klen_out)
{
    store__field_kv((const struct hfield *)n, k_out, klen_out, NULL, NULL);
}

static struct hfield *field_new(const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    struct hfield *n = hy_xmalloc(sizeof(*n) + rec_size(flen, vlen));
    n->node.next = NULL;
    rec_write(n->data, f, flen, v, vlen);
    return n;
}

static int tab_set(struct hobj *h, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    struct hfield *n = field_new(f, flen, v, vlen);
    struct htab_node *old = htab_find(h->aux.tab, f, flen);
    h->tab_bytes += hy_alloc_size(n);
    if (old != NULL) {
        htab_replace(h->aux.tab, old, &n->node);
        h->tab_bytes -= hy_alloc_size(old);
        hy_free(old);
        return 0;
    }
    htab_insert(h->aux.tab, &n->node);
    return 1;
}

/* Hands every member to cb; valid pointers only during the call (conversions). */
static void members_each(const struct hobj *h, store_field_cb cb, void *ctx);

struct convert {
    struct hobj *to;
};

static void convert_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    struct convert *c = ctx;
    if (c->to->enc == HENC_TABLE) {
        HY_ASSERT(tab_set(c->to, f, flen, v, vlen) == 1);
        return;
    }
    size_t size = rec_size(flen, vlen);
    c->to->list = hy_xrealloc(c->to->list, c->to->len + size);
    rec_write(c->to->list + c->to->len, f, flen, v, vlen);
    c->to->len += (uint32_t)size;
    c->to->count++;
}

/* Moves every member into the encoding `to` (list or table); never back to an intset. */
static void convert(struct hobj *h, uint8_t to)
{
    HY_ASSERT(to != HENC_INTSET && h->enc != HENC_TABLE && to != h->enc);
    struct hobj fresh = {0};
    fresh.enc = to;
    fresh.seed = h->seed;
    if (to == HENC_TABLE) {
        fresh.aux.tab = hy_xmalloc(sizeof(*fresh.aux.tab));
        htab_init(fresh.aux.tab, field_key_fn, h->seed);
    }
    struct convert c = {&fresh};
    members_each(h, convert_cb, &c);
    view_drop(h);
    if (!h->inl) {
        hy_free(h->list);
    }
    h->inl = 0;
    if (to == HENC_TABLE) {
        h->tab_bytes = fresh.tab_bytes;
        h->len = 0;
        h->count = 0;
    } else {
        h->list = fresh.list;
        h->len = fresh.len;
        h->count = fresh.count;
    }
    h->aux = fresh.aux;
    h->enc = to;
}

/* ---- the object ----------------------------------------------------------------------------- */

struct hobj *store__hobj_new(uint64_t seed)
{
    struct hobj *h = hy_xcalloc(1, sizeof(*h));
    h->seed = seed;
    return h;
}

struct hobj *store__hobj_new_set(uint64_t seed, int intset)
{
    struct hobj *h = store__hobj_new(seed);
    h->is_set = 1;
    h->enc = intset ? HENC_INTSET : HENC_LIST;
    return h;
}

static void field_free_cb(void *ctx, struct htab_node *n)
{
    (void)ctx;
    hy_free(n);
}

void store__hobj_release(struct hobj *h)
{
    if (h->enc == HENC_TABLE) {
        htab_clear(h->aux.tab, field_free_cb, NULL);
        hy_free(h->aux.tab);
    } else {
        view_drop(h);
        if (!h->inl) {
            hy_free(h->list);
        }
    }
    memset(h, 0, sizeof(*h));
}

void store__hobj_free(struct hobj *h)
{
    if (h == NULL) {
        return;
    }
    store__hobj_release(h);
    hy_free(h);
}

size_t store__hobj_extra_bytes(const struct hobj *h)
{
    if (h->enc == HENC_TABLE) {
        return hy_alloc_size(h->aux.tab) + h->aux.tab->table_bytes + h->tab_bytes;
    }
    return h->list != NULL && !h->inl ? hy_alloc_size(h->list) : 0;
}

size_t store__hobj_bytes(const struct hobj *h)
{
    return hy_alloc_size(h) + store__hobj_extra_bytes(h);
}

size_t store__hobj_struct_size(void)
{
    return sizeof(struct hobj);
}

size_t store__hobj_payload(const struct hobj *h)
{
    return h->enc != HENC_TABLE ? h->len : 0;
}

int store__hobj_inline(struct hobj *h, uint8_t *room, size_t room_len)
{
    if (h->enc == HENC_TABLE || h->list == NULL) {
        return 1;
    }
    if (h->inl && h->list == room) {
        return 1;
    }
    if (h->len > room_len) {
        return 0;
    }
    memmove(room, h->list, h->len);
    if (!h->inl) {
        hy_free(h->list);
    }
    h->list = room;
    h->inl = 1;
    return 1;
}

void store__hobj_move(struct hobj *dst, const struct hobj *src, uint8_t *room, size_t room_len)
{
    memmove(dst, src, sizeof(*dst));
    if (store__hobj_inline(dst, room, room_len) || !dst->inl) {
        return; /* in room now, or on the heap as it was */
    }
    /* The list was in src's entry, which is going away, and is too long for room. */
    uint8_t *copy = hy_xmalloc(dst->len);
    memcpy(copy, dst->list, dst->len);
    dst->list = copy;
    dst->inl = 0;
}

int store__hobj_compact(const struct hobj *h)
{
    return h->enc == HENC_LIST;
}

int store__hobj_intset(const struct hobj *h)
{
    return h->enc == HENC_INTSET;
}

size_t store__hobj_count(const struct hobj *h)
{
    return h->enc == HENC_TABLE ? htab_count(h->aux.tab) : h->count;
}

/* Rewrites the list with record r (NULL: none) replaced by new_size bytes of room; returns
 * the room's offset. */
static size_t list_splice(struct hobj *h, const struct hrec *r, size_t new_size)
{
    size_t off = r != NULL ? r->off : h->len;
    size_t old_size = r != NULL ? r->size : 0;
    size_t tail = h->len - off - old_size;
    size_t len = h->len - old_size + new_size;
    if (len > h->len && h->inl) { /* the entry's room is the size it had: copy out */
        uint8_t *copy = hy_xmalloc(len);
        memcpy(copy, h->list, h->len);
        h->list = copy;
        h->inl = 0;
    } else if (len > h->len) {
        h->list = hy_xrealloc(h->list, len);
    }
    memmove(h->list + off + new_size, h->list + off + old_size, tail);
    if (len == 0) {
        if (!h->inl) {
            hy_free(h->list);
        }
        h->list = NULL;
        h->inl = 0;
    } else if (len < h->len && !h->inl) {
        h->list = hy_xrealloc(h->list, len);
    }
    h->len = (uint32_t)len;
    return off;
}

/* The list bounds that apply to h. */
static void list_bounds(const struct hobj *h, const struct store_encoding *enc, size_t *entries,
                        size_t *value)
{
    int64_t e = h->is_set ? enc->set_entries : enc->hash_entries;
    int64_t v = h->is_set ? enc->set_value : enc->hash_value;
    *entries = (size_t)HY_MIN(HY_MAX(e, 0), (int64_t)HLIST_COUNT_CAP);
    *value = (size_t)HY_MIN(HY_MAX(v, 0), (int64_t)HLIST_LEN_CAP);
}

/* Whether an intset's members (plus one of nlen bytes) fit the list's bounds: the longest
 * text is the smallest or the largest integer's. */
static int intset_fits_list(const struct hobj *h, const struct store_encoding *enc, size_t extra,
                            size_t nlen)
{
    size_t entries, value;
    list_bounds(h, enc, &entries, &value);
    if (h->count + extra > entries || nlen > value) {
        return 0;
    }
    if (h->count == 0) {
        return 1;
    }
    char text[32];
    size_t width = is_width(h);
    return hy_format_i64(text, is_get(h, width, 0)) <= value &&
           hy_format_i64(text, is_get(h, width, h->count - 1)) <= value;
}

/* Adds integer member v to an intset; converts first when it would break a bound. */
static int intset_add(struct hobj *h, int64_t v, const struct store_encoding *enc)
{
    int found;
    size_t at = is_search(h, v, &found);
    if (found) {
        return 0;
    }
    view_drop(h);
    is_insert(h, at, v);
    if ((int64_t)h->count > HY_MIN(enc->set_intset_entries, (int64_t)HLIST_COUNT_CAP)) {
        /* Redis converts past the bound; the list takes the set while its own bounds allow. */
        convert(h, intset_fits_list(h, enc, 0, 0) ? HENC_LIST : HENC_TABLE);
    }
    return 1;
}

/* Whether a list that holds count records should turn into a table before taking field f. */
static int list_outgrown(struct hobj *h, const uint8_t *f, size_t flen, size_t vlen,
                         const struct store_encoding *enc)
{
    size_t entries, value;
    list_bounds(h, enc, &entries, &value);
    if (flen > value || vlen > value || (size_t)h->len + rec_size(flen, vlen) > HLIST_LEN_CAP) {
        return 1;
    }
    struct hrec r;
    return h->count >= entries && !list_find(h, f, flen, &r); /* an overwrite does not grow */
}

int store__hobj_put(struct hobj *h, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen,
                    const struct store_encoding *enc)
{
    if (enc == NULL) {
        enc = &enc_default;
    }
    if (h->enc == HENC_INTSET) {
        int64_t x;
        HY_ASSERT(vlen == 0);
        if (hy_parse_i64(f, flen, &x)) {
            return intset_add(h, x, enc);
        }
        convert(h, intset_fits_list(h, enc, 1, flen) ? HENC_LIST : HENC_TABLE);
    }
    if (h->enc == HENC_LIST && list_outgrown(h, f, flen, vlen, enc)) {
        convert(h, HENC_TABLE);
    }
    if (h->enc == HENC_TABLE) {
        return tab_set(h, f, flen, v, vlen);
    }
    struct hrec r;
    int found = list_find(h, f, flen, &r);
    size_t size = rec_size(flen, vlen);
    size_t off = list_splice(h, found ? &r : NULL, size);
    rec_write(h->list + off, f, flen, v, vlen);
    h->count += found ? 0 : 1;
    return !found;
}

int store__hobj_set(struct hobj *h, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    return store__hobj_put(h, f, flen, v, vlen, NULL);
}

int store__hobj_get(const struct hobj *h, const uint8_t *f, size_t flen, const uint8_t **v_out,
                    size_t *vlen_out)
{
    if (h->enc == HENC_TABLE) {
        const struct htab_node *n = htab_find(h->aux.tab, f, flen);
        if (n == NULL) {
            return 0;
        }
        const uint8_t *ff;
        size_t fl;
        store__field_kv((const struct hfield *)n, &ff, &fl, v_out, vlen_out);
        return 1;
    }
    if (h->enc == HENC_INTSET) {
        int64_t x;
        int found = 0;
        if (hy_parse_i64(f, flen, &x)) {
            is_search(h, x, &found);
        }
        *v_out = (const uint8_t *)"";
        *vlen_out = 0;
        return found;
    }
    struct hrec r;
    if (!list_find(h, f, flen, &r)) {
        return 0;
    }
    *v_out = r.v;
    *vlen_out = r.vlen;
    return 1;
}

int store__hobj_del(struct hobj *h, const uint8_t *f, size_t flen)
{
    if (h->enc == HENC_TABLE) {
        struct htab_node *n = htab_remove(h->aux.tab, f, flen);
        if (n == NULL) {
            return 0;
        }
        h->tab_bytes -= hy_alloc_size(n);
        hy_free(n);
        return 1;
    }
    if (h->enc == HENC_INTSET) {
        int64_t x;
        int found = 0;
        size_t at = hy_parse_i64(f, flen, &x) ? is_search(h, x, &found) : 0;
        if (found) {
            view_drop(h);
            is_remove(h, at);
        }
        return found;
    }
    struct hrec r;
    if (!list_find(h, f, flen, &r)) {
        return 0;
    }
    list_splice(h, &r, 0);
    h->count--;
    return 1;
}

/* ---- iteration ------------------------------------------------------------------------------ */

struct field_visit {
    store_field_cb cb;
    void *ctx;
};

static void field_visit_cb(void *ctx, struct htab_node *n)
{
    struct field_visit *fv = ctx;
    const uint8_t *f, *v;
    size_t flen, vlen;
    store__field_kv((const struct hfield *)n, &f, &flen, &v, &vlen);
    fv->cb(fv->ctx, f, flen, v, vlen);
}

static void list_foreach(const struct hobj *h, store_field_cb cb, void *ctx)
{
    struct hrec r;
    for (size_t off = 0; off < h->len;) {
        off = rec_read(h, off, &r);
        cb(ctx, r.f, r.flen, r.v, r.vlen);
    }
}

static void intset_foreach(const struct hobj *h, store_field_cb cb, void *ctx)
{
    const uint8_t *p = view_get(h);
    for (size_t i = 0; i < h->count; i++) {
        cb(ctx, p + 1, p[0], (const uint8_t *)"", 0);
        p += 1 + p[0];
    }
}

static void members_each(const struct hobj *h, store_field_cb cb, void *ctx)
{
    if (h->enc != HENC_INTSET) {
        store__hobj_foreach(h, cb, ctx);
        return;
    }
    size_t width = is_width(h);
    for (size_t i = 0; i < h->count; i++) {
        char text[32];
        size_t n = hy_format_i64(text, is_get(h, width, i));
        cb(ctx, (const uint8_t *)text, n, (const uint8_t *)"", 0);
    }
}

void store__hobj_members_each(const struct hobj *h, store_field_cb cb, void *ctx)
{
    members_each(h, cb, ctx);
}

void store__hobj_foreach(const struct hobj *h, store_field_cb cb, void *ctx)
{
    if (h->enc == HENC_LIST) {
        list_foreach(h, cb, ctx);
        return;
    }
    if (h->enc == HENC_INTSET) {
        intset_foreach(h, cb, ctx);
        return;
    }
    struct field_visit fv = {cb, ctx};
    htab_foreach(h->aux.tab, field_visit_cb, &fv);
}

uint64_t store__hobj_scan(const struct hobj *h, uint64_t cursor, size_t count_hint,
                          store_field_cb cb, void *ctx)
{
    if (h->enc != HENC_TABLE) {
        store__hobj_foreach(h, cb, ctx); /* small: all of it in one step, as Redis does */
        return 0;
    }
    struct field_visit fv = {cb, ctx};
    size_t steps = HY_MAX(count_hint, 1);
    do {
        cursor = htab_scan(h->aux.tab, cursor, field_visit_cb, &fv);
    } while (cursor != 0 && --steps > 0);
    return cursor;
}

void store__hobj_random(const struct hobj *h, struct hy_prng *prng, const uint8_t **f_out,
                        size_t *flen_out, const uint8_t **v_out, size_t *vlen_out)
{
    HY_ASSERT(store__hobj_count(h) > 0);
    if (h->enc == HENC_TABLE) {
        const struct htab_node *n = htab_random(h->aux.tab, prng);
        store__field_kv((const struct hfield *)n, f_out, flen_out, v_out, vlen_out);
        return;
    }
    uint64_t skip = hy_prng_below(prng, h->count);
    if (h->enc == HENC_INTSET) {
        const uint8_t *p = view_get(h);
        for (; skip > 0; skip--) {
            p += 1 + p[0];
        }
        *f_out = p + 1;
        *flen_out = p[0];
        *v_out = (const uint8_t *)"";
        *vlen_out = 0;
        return;
    }
    struct hrec r;
    size_t off = rec_read(h, 0, &r);
    for (; skip > 0; skip--) {
        off = rec_read(h, off, &r);
    }
    *f_out = r.f;
    *flen_out = r.flen;
    *v_out = r.v;
    *vlen_out = r.vlen;
}

struct hcheck {
    size_t count;
    size_t bytes;
};

static void check_node_cb(void *ctx, struct htab_node *n)
{
    struct hcheck *c = ctx;
    c->count++;
    c->bytes += hy_alloc_size(n);
}

static void check_set_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    (void)ctx;
    (void)f;
    (void)flen;
    (void)v;
    HY_ASSERT(vlen == 0);
}

void store__hobj_check(const struct hobj *h, int is_set)
{
    HY_ASSERT(h->enc <= HENC_TABLE && (h->enc != HENC_INTSET || h->is_set));
    if (is_set) {
        members_each(h, check_set_cb, NULL);
    }
    struct hcheck c = {0, 0};
    if (h->enc == HENC_TABLE) {
        HY_ASSERT(h->len == 0 && h->count == 0 && !h->inl);
        htab_foreach(h->aux.tab, check_node_cb, &c);
        HY_ASSERT(c.count == htab_count(h->aux.tab) && c.bytes == h->tab_bytes);
        return;
    }
    HY_ASSERT((h->list == NULL) == (h->len == 0) && (h->list != NULL || !h->inl));
    if (h->enc == HENC_INTSET) {
        size_t width = is_width(h);
        HY_ASSERT(h->len == h->count * width && (width == 2 || width == 4 || width == 8));
        for (size_t i = 1; i < h->count; i++) {
            HY_ASSERT(is_get(h, width, i - 1) < is_get(h, width, i));
        }
        return;
    }
    HY_ASSERT(h->count <= HLIST_COUNT_CAP);
    struct hrec r;
    for (size_t off = 0; off < h->len; c.count++) {
        off = rec_read(h, off, &r);
        HY_ASSERT(off <= h->len);
    }
    HY_ASSERT(c.count == h->count);
}
