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
#include "common/alloc.h"
#include "common/assert.h"
#include "store/store_int.h"

#define HLIST_ENTRIES_MAX 128
#define HLIST_BYTES_MAX   64

struct hobj {
    uint8_t *list; /* compact records; NULL when empty or converted */
    size_t list_len;
    uint32_t count; /* list encoding only */
    struct htab *tab;
    size_t field_bytes; /* table encoding only */
    uint64_t seed;
};

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
    p += varint_get(h->list + p, h->list_len - p, &flen);
    p += varint_get(h->list + p, h->list_len - p, &vlen);
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
    for (size_t off = 0; off < h->list_len;) {
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
    struct htab_node *old = htab_find(h->tab, f, flen);
    h->field_bytes += hy_alloc_size(n);
    if (old != NULL) {
        htab_replace(h->tab, old, &n->node);
        h->field_bytes -= hy_alloc_size(old);
        hy_free(old);
        return 0;
    }
    htab_insert(h->tab, &n->node);
    return 1;
}

/* Moves every record of the list into a new table; the list encoding ends for good. */
static void convert_to_table(struct hobj *h)
{
    HY_ASSERT(h->tab == NULL);
    h->tab = hy_xmalloc(sizeof(*h->tab));
    htab_init(h->tab, field_key_fn, h->seed);
    h->field_bytes = 0;
    struct hrec r;
    for (size_t off = 0; off < h->list_len;) {
        off = rec_read(h, off, &r);
        HY_ASSERT(tab_set(h, r.f, r.flen, r.v, r.vlen) == 1);
    }
    hy_free(h->list);
    h->list = NULL;
    h->list_len = 0;
    h->count = 0;
}

/* ---- the object ----------------------------------------------------------------------------- */

struct hobj *store__hobj_new(uint64_t seed)
{
    struct hobj *h = hy_xcalloc(1, sizeof(*h));
    h->seed = seed;
    return h;
}

static void field_free_cb(void *ctx, struct htab_node *n)
{
    (void)ctx;
    hy_free(n);
}

void store__hobj_free(struct hobj *h)
{
    if (h == NULL) {
        return;
    }
    if (h->tab != NULL) {
        htab_clear(h->tab, field_free_cb, NULL);
        hy_free(h->tab);
    }
    hy_free(h->list);
    hy_free(h);
}

size_t store__hobj_bytes(const struct hobj *h)
{
    size_t n = hy_alloc_size(h);
    if (h->tab != NULL) {
        n += hy_alloc_size(h->tab) + h->tab->table_bytes + h->field_bytes;
    } else if (h->list != NULL) {
        n += hy_alloc_size(h->list);
    }
    return n;
}

int store__hobj_compact(const struct hobj *h)
{
    return h->tab == NULL;
}

size_t store__hobj_count(const struct hobj *h)
{
    return h->tab != NULL ? htab_count(h->tab) : h->count;
}

/* Rewrites the list with record r (NULL: none) replaced by new_size bytes of room; returns
 * the room's offset. */
static size_t list_splice(struct hobj *h, const struct hrec *r, size_t new_size)
{
    size_t off = r != NULL ? r->off : h->list_len;
    size_t old_size = r != NULL ? r->size : 0;
    size_t tail = h->list_len - off - old_size;
    size_t len = h->list_len - old_size + new_size;
    if (len > h->list_len) {
        h->list = hy_xrealloc(h->list, len);
    }
    memmove(h->list + off + new_size, h->list + off + old_size, tail);
    if (len == 0) {
        hy_free(h->list);
        h->list = NULL;
    } else if (len < h->list_len) {
        h->list = hy_xrealloc(h->list, len);
    }
    h->list_len = len;
    return off;
}

int store__hobj_set(struct hobj *h, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    if (h->tab == NULL &&
        (flen > HLIST_BYTES_MAX || vlen > HLIST_BYTES_MAX || h->count >= HLIST_ENTRIES_MAX)) {
        struct hrec r;
        if (!(h->count >= HLIST_ENTRIES_MAX && flen <= HLIST_BYTES_MAX && vlen <= HLIST_BYTES_MAX &&
              list_find(h, f, flen, &r))) {
            convert_to_table(h); /* an overwrite of an existing field does not grow the list */
        }
    }
    if (h->tab != NULL) {
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

int store__hobj_get(const struct hobj *h, const uint8_t *f, size_t flen, const uint8_t **v_out,
                    size_t *vlen_out)
{
    if (h->tab != NULL) {
        const struct htab_node *n = htab_find(h->tab, f, flen);
        if (n == NULL) {
            return 0;
        }
        const uint8_t *ff;
        size_t fl;
        store__field_kv((const struct hfield *)n, &ff, &fl, v_out, vlen_out);
        return 1;
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
    if (h->tab != NULL) {
        struct htab_node *n = htab_remove(h->tab, f, flen);
        if (n == NULL) {
            return 0;
        }
        h->field_bytes -= hy_alloc_size(n);
        hy_free(n);
        return 1;
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
    for (size_t off = 0; off < h->list_len;) {
        off = rec_read(h, off, &r);
        cb(ctx, r.f, r.flen, r.v, r.vlen);
    }
}

void store__hobj_foreach(const struct hobj *h, store_field_cb cb, void *ctx)
{
    if (h->tab == NULL) {
        list_foreach(h, cb, ctx);
        return;
    }
    struct field_visit fv = {cb, ctx};
    htab_foreach(h->tab, field_visit_cb, &fv);
}

uint64_t store__hobj_scan(const struct hobj *h, uint64_t cursor, size_t count_hint,
                          store_field_cb cb, void *ctx)
{
    if (h->tab == NULL) {
        list_foreach(h, cb, ctx); /* small: all of it in one step, as Redis does */
        return 0;
    }
    struct field_visit fv = {cb, ctx};
    size_t steps = HY_MAX(count_hint, 1);
    do {
        cursor = htab_scan(h->tab, cursor, field_visit_cb, &fv);
    } while (cursor != 0 && --steps > 0);
    return cursor;
}

void store__hobj_random(const struct hobj *h, struct hy_prng *prng, const uint8_t **f_out,
                        size_t *flen_out, const uint8_t **v_out, size_t *vlen_out)
{
    HY_ASSERT(store__hobj_count(h) > 0);
    if (h->tab != NULL) {
        const struct htab_node *n = htab_random(h->tab, prng);
        store__field_kv((const struct hfield *)n, f_out, flen_out, v_out, vlen_out);
        return;
    }
    uint64_t skip = hy_prng_below(prng, h->count);
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
    if (is_set) {
        store__hobj_foreach(h, check_set_cb, NULL);
    }
    struct hcheck c = {0, 0};
    if (h->tab != NULL) {
        HY_ASSERT(h->list == NULL && h->count == 0);
        htab_foreach(h->tab, check_node_cb, &c);
        HY_ASSERT(c.count == htab_count(h->tab) && c.bytes == h->field_bytes);
        return;
    }
    HY_ASSERT((h->list == NULL) == (h->list_len == 0) && h->count <= HLIST_ENTRIES_MAX);
    struct hrec r;
    for (size_t off = 0; off < h->list_len; c.count++) {
        off = rec_read(h, off, &r);
        HY_ASSERT(off <= h->list_len && r.flen <= HLIST_BYTES_MAX && r.vlen <= HLIST_BYTES_MAX);
    }
    HY_ASSERT(c.count == h->count);
}
