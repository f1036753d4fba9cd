/*
 * store_list.c - list values and the list ops of the log.
 *
 * A list has two encodings. A small list (list-max-listpack-size: at most N elements when
 * positive, at most 4 KiB << (-N - 1) of records when negative, Redis's default -2 = 8 KiB) is
 * one buffer of [varint len][bytes] records, like Redis's listpack: ten short elements cost one
 * allocation. A list that outgrows it converts for good to a ring buffer of pointers to
 * elements, each element its own allocation (struct lelem): pushes and pops at either end are
 * O(1) amortised; an insert or removal in the middle moves the pointers of the shorter side, as
 * a deque does, and LMOVE hands an element from one list to another without copying its bytes.
 * The compact encoding keeps the last position looked up (index and offset) so that walking a
 * list in order (LRANGE, LPOS) does not rescan it from the head for every element. OBJECT
 * ENCODING says quicklist for both, as Redis 7.0 does for every list.
 *
 * Invariants: full: count <= cap; v == NULL iff cap == 0; elem_bytes is the usable size of every
 * element held. Compact: elem_bytes == LOBJ_COMPACT; cap is the bytes of lp (NULL iff 0); the
 * hint, when set, names a record start. An empty list never stays in the keyspace (the op that
 * empties it deletes the key, as Redis does).
 */
#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

struct lobj {
    union {
        struct lelem **v; /* full */
        uint8_t *lp;      /* compact */
    } u;
    size_t head; /* full: slot of element 0; compact: the hint, index << 32 | offset */
    size_t count;
    size_t cap;        /* full: slots of v; compact: bytes of lp */
    size_t elem_bytes; /* full; LOBJ_COMPACT in the compact encoding */
};

#define LOBJ_CAP_MIN       4
#define LOBJ_COMPACT       SIZE_MAX
#define LOBJ_SAFETY_BYTES  8192 /* Redis's bound on a node of a count-limited list */
#define LOBJ_COMPACT_COUNT ((size_t)1 << 20)

static const struct store_encoding lenc_default = STORE_ENCODING_DEFAULT;

static int is_compact(const struct lobj *l)
{
    return l->elem_bytes == LOBJ_COMPACT;
}

/* ---- the compact encoding --------------------------------------------------------------- */

/* Reads the record at off: its bytes and the next offset. */
static size_t crec(const struct lobj *l, size_t off, const uint8_t **p, size_t *len)
{
    uint64_t n = 0;
    size_t h = varint_get(l->u.lp + off, l->cap - off, &n);
    *p = l->u.lp + off + h;
    *len = (size_t)n;
    return off + h + (size_t)n;
}

/* The offset of the record at index (count: the end), from the hint when it helps. */
static size_t coff(const struct lobj *lc, size_t index)
{
    struct lobj *l = (struct lobj *)(uintptr_t)lc; /* the hint is a cache, not the value */
    if (index == l->count) {
        return l->cap;
    }
    size_t i = 0, off = 0;
    if (l->head != 0 && (l->head >> 32) <= index) {
        i = l->head >> 32;
        off = l->head & 0xffffffffu;
    }
    for (; i < index; i++) {
        const uint8_t *p;
        size_t len;
        off = crec(l, off, &p, &len);
    }
    if (l->cap <= 0xffffffffu && index <= 0xffffffffu) {
        l->head = index << 32 | off;
    }
    return off;
}

/* Replaces bytes [off, off + old) by room for size bytes; forgets the hint. */
static void csplice(struct lobj *l, size_t off, size_t old, size_t size)
{
    size_t len = l->cap - old + size;
    if (len > l->cap) {
        l->u.lp = hy_xrealloc(l->u.lp, len);
    }
    memmove(l->u.lp + off + size, l->u.lp + off + old, l->cap - off - old);
    if (len == 0) {
        hy_free(l->u.lp);
        l->u.lp = NULL;
    } else if (len < l->cap) {
        l->u.lp = hy_xrealloc(l->u.lp, len);
    }
    l->cap = len;
    l->head = 0;
}

/* Whether a compact list of count records in bytes fits list-max-listpack-size. */
static int compact_fits(size_t count, size_t bytes, const struct store_encoding *enc)
{
    int64_t size = enc->list_size;
    if (count > LOBJ_COMPACT_COUNT) {
        return 0;
    }
    if (size >= 0) {
        return (int64_t)count <= HY_MAX(size, 1) && bytes <= LOBJ_SAFETY_BYTES;
    }
    int64_t shift = HY_MIN(-size - 1, 4);
    return bytes <= ((size_t)4096 << shift);
}

static void full_insert(struct lobj *l, size_t index, struct lelem *el);

/* Moves every element into lelems in the ring, for good. */
static void convert_full(struct lobj *l)
{
    HY_ASSERT(is_compact(l));
    struct lobj old = *l;
    memset(l, 0, sizeof(*l));
    size_t off = 0;
    for (size_t i = 0; i < old.count; i++) {
        const uint8_t *p;
        size_t len;
        off = crec(&old, off, &p, &len);
        full_insert(l, i, store__lelem_new(p, len));
    }
    hy_free(old.u.lp);
}

/* ---- the object ----------------------------------------------------------------------------- */

struct lobj *store__lobj_new(void)
{
    struct lobj *l = hy_xcalloc(1, sizeof(struct lobj));
    l->elem_bytes = LOBJ_COMPACT;
    return l;
}

void store__lobj_free(struct lobj *l)
{
    if (l == NULL) {
        return;
    }
    if (is_compact(l)) {
        hy_free(l->u.lp);
        hy_free(l);
        return;
    }
    for (size_t i = 0; i < l->count; i++) {
        hy_free(l->u.v[(l->head + i) % l->cap]);
    }
    hy_free(l->u.v);
    hy_free(l);
}

size_t store__lobj_bytes(const struct lobj *l)
{
    if (is_compact(l)) {
        return hy_alloc_size(l) + (l->u.lp != NULL ? hy_alloc_size(l->u.lp) : 0);
    }
    return hy_alloc_size(l) + (l->u.v != NULL ? hy_alloc_size(l->u.v) : 0) + l->elem_bytes;
}

size_t store__lobj_count(const struct lobj *l)
{
    return l->count;
}

int store__lobj_compact(const struct lobj *l)
{
    return is_compact(l);
}

static size_t slot(const struct lobj *l, size_t index)
{
    return (l->head + index) % l->cap;
}

void store__lobj_get(const struct lobj *l, size_t index, const uint8_t **p_out, size_t *len_out)
{
    HY_ASSERT(index < l->count);
    if (is_compact(l)) {
        crec(l, coff(l, index), p_out, len_out);
        return;
    }
    const struct lelem *el = l->u.v[slot(l, index)];
    *p_out = el->data;
    *len_out = el->len;
}

struct lelem *store__lelem_new(const uint8_t *p, size_t len)
{
    HY_ASSERT(len <= UINT32_MAX);
    struct lelem *el = hy_xmalloc(sizeof(*el) + len);
    el->len = (uint32_t)len;
    if (len > 0) {
        memcpy(el->data, p, len);
    }
    return el;
}

/* Re-lays the ring into an array of new_cap slots with element 0 first. */
static void relayout(struct lobj *l, size_t new_cap)
{
    HY_ASSERT(new_cap >= l->count);
    struct lelem **v = NULL;
    if (new_cap > 0) {
        v = hy_xmalloc(new_cap * sizeof(*v));
        for (size_t i = 0; i < l->count; i++) {
            v[i] = l->u.v[slot(l, i)];
        }
    }
    hy_free(l->u.v);
    l->u.v = v;
    l->cap = new_cap;
    l->head = 0;
}

static void full_insert(struct lobj *l, size_t index, struct lelem *el)
{
    if (l->count == l->cap) {
        relayout(l, HY_MAX(l->cap * 2, LOBJ_CAP_MIN));
    }
    if (index < l->count / 2) {
        /* Move the front part one slot towards the head. */
        l->head = (l->head + l->cap - 1) % l->cap;
        for (size_t i = 0; i < index; i++) {
            l->u.v[slot(l, i)] = l->u.v[slot(l, i + 1)];
        }
    } else {
        for (size_t i = l->count; i > index; i--) {
            l->u.v[slot(l, i)] = l->u.v[slot(l, i - 1)];
        }
    }
    l->u.v[slot(l, index)] = el;
    l->count++;
    l->elem_bytes += hy_alloc_size(el);
}

void store__lobj_insert(struct lobj *l, size_t index, struct lelem *el,
                        const struct store_encoding *enc)
{
    HY_ASSERT(index <= l->count);
    if (enc == NULL) {
        enc = &lenc_default;
    }
    size_t size = varint_len(el->len) + el->len;
    if (is_compact(l) && !compact_fits(l->count + 1, l->cap + size, enc)) {
        convert_full(l);
    }
    if (!is_compact(l)) {
        full_insert(l, index, el);
        return;
    }
    size_t off = index == 0 ? 0 : coff(l, index);
    csplice(l, off, 0, size);
    size_t h = varint_put(l->u.lp + off, el->len);
    if (el->len > 0) {
        memcpy(l->u.lp + off + h, el->data, el->len);
    }
    l->count++;
    hy_free(el);
}

struct lelem *store__lobj_take(struct lobj *l, size_t index)
{
    HY_ASSERT(index < l->count);
    if (is_compact(l)) {
        const uint8_t *p;
        size_t len;
        size_t off = coff(l, index);
        size_t next = crec(l, off, &p, &len);
        struct lelem *el = store__lelem_new(p, len);
        csplice(l, off, next - off, 0);
        l->count--;
        return el;
    }
    struct lelem *el = l->u.v[slot(l, index)];
    if (index < l->count / 2) {
        for (size_t i = index; i > 0; i--) {
            l->u.v[slot(l, i)] = l->u.v[slot(l, i - 1)];
        }
        l->head = (l->head + 1) % l->cap;
    } else {
        for (size_t i = index; i + 1 < l->count; i++) {
            l->u.v[slot(l, i)] = l->u.v[slot(l, i + 1)];
        }
    }
    l->count--;
    l->elem_bytes -= hy_alloc_size(el);
    if (l->count == 0) {
        relayout(l, 0); /* an empty list holds no array */
    } else if (l->cap > LOBJ_CAP_MIN * 4 && l->count * 4 < l->cap) {
        relayout(l, l->cap / 2);
    }
    return el;
}

void store__lobj_replace(struct lobj *l, size_t index, struct lelem *el,
                         const struct store_encoding *enc)
{
    HY_ASSERT(index < l->count);
    if (is_compact(l)) {
        hy_free(store__lobj_take(l, index));
        store__lobj_insert(l, index, el, enc);
        return;
    }
    struct lelem **p = &l->u.v[slot(l, index)];
    l->elem_bytes -= hy_alloc_size(*p);
    hy_free(*p);
    *p = el;
    l->elem_bytes += hy_alloc_size(el);
}

void store__lobj_check(const struct lobj *l)
{
    if (is_compact(l)) {
        HY_ASSERT((l->u.lp == NULL) == (l->cap == 0));
        size_t off = 0;
        for (size_t i = 0; i < l->count; i++) {
            const uint8_t *p;
            size_t len;
            HY_ASSERT(off < l->cap);
            off = crec(l, off, &p, &len);
            HY_ASSERT(off <= l->cap);
        }
        HY_ASSERT(off == l->cap);
        return;
    }
    HY_ASSERT(l->count <= l->cap && (l->u.v == NULL) == (l->cap == 0));
    HY_ASSERT(l->cap == 0 || l->head < l->cap);
    size_t bytes = 0;
    for (size_t i = 0; i < l->count; i++) {
        bytes += hy_alloc_size(l->u.v[slot(l, i)]);
    }
    HY_ASSERT(bytes == l->elem_bytes);
}

/* ---- replies -------------------------------------------------------------------------------- */

static void r_null(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_null(w);
    }
}

static void r_null_array(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_null_array(w);
    }
}

static void r_array(struct resp_writer *w, size_t n)
{
    if (w != NULL) {
        resp_write_array(w, n);
    }
}

static void r_ok(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_ok(w);
    }
}

static void r_elem(struct resp_writer *w, const struct lelem *el)
{
    store__r_bulk(w, el->data, el->len);
}

/* ---- ops ------------------------------------------------------------------------------------ */

#define ARG(e, i) (e)->argv[(i)].ptr, (e)->argv[(i)].len

static struct store_obj *list_create(struct store *s, const struct store_entry *e, uint32_t ki)
{
    struct store_obj *o = store__entry_new(STORE_LIST, -1, ARG(e, ki), 0);
    store__set_vobj(o, store__lobj_new());
    o->lru = store__lru_of(e);
    store__link(s, o);
    return o;
}

/* Brackets a change to a list's elements: obj_bytes follows the object's size. */
static size_t change_begin(const struct store_obj *o)
{
    return store__lobj_bytes(store__lobj(o));
}

/* Ends the change; deletes the key when the list is now empty. */
static void change_end(struct store *s, struct store_obj *o, size_t before)
{
    struct lobj *l = store__lobj(o);
    s->obj_bytes = s->obj_bytes - before + store__lobj_bytes(l);
    if (l->count == 0) {
        store__delete(s, o);
    }
}

static size_t end_index(const struct lobj *l, int right)
{
    return right ? l->count - 1 : 0;
}

void store__op_push(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_LIST, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL && (e->flags & STORE_F_XX)) {
        store__r_int(w, 0); /* LPUSHX/RPUSHX never create the list */
        return;
    }
    if (o == NULL) {
        o = list_create(s, e, 0);
    }
    struct lobj *l = store__lobj(o);
    size_t before = change_begin(o);
    int right = (e->flags & STORE_F_RIGHT) != 0;
    for (uint32_t i = 1; i < e->argc; i++) {
        store__lobj_insert(l, right ? l->count : 0, store__lelem_new(ARG(e, i)), &s->cfg.encoding);
    }
    store__r_int(w, (int64_t)l->count);
    change_end(s, o, before);
}

/* Pops up to n elements from one end of o, replying each as a bulk. */
static void pop_n(struct store *s, struct store_obj *o, size_t n, int right, struct resp_writer *w)
{
    struct lobj *l = store__lobj(o);
    size_t before = change_begin(o);
    for (size_t i = 0; i < n; i++) {
        struct lelem *el = store__lobj_take(l, end_index(l, right));
        r_elem(w, el);
        hy_free(el);
    }
    change_end(s, o, before);
}

void store__op_pop(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int64_t count = e->incr;
    if (count < -1) {
        store__r_err(w, "ERR value is out of range, must be positive");
        return;
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_LIST, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        count < 0 ? r_null(w) : r_null_array(w);
        return;
    }
    int right = (e->flags & STORE_F_RIGHT) != 0;
    if (count < 0) {
        pop_n(s, o, 1, right, w);
        return;
    }
    size_t n = HY_MIN((uint64_t)count, store__lobj_count(store__lobj(o)));
    r_array(w, n);
    pop_n(s, o, n, right, w);
}

/* Resolves a Redis list index (negative counts from the tail); 0 when out of range. */
static int list_index(const struct lobj *l, int64_t index, size_t *out)
{
    if (index < 0) {
        index += (int64_t)l->count;
    }
    if (index < 0 || (uint64_t)index >= l->count) {
        return 0;
    }
    *out = (size_t)index;
    return 1;
}

void store__op_lset(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_LIST, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        store__r_err(w, "ERR no such key");
        return;
    }
    struct lobj *l = store__lobj(o);
    size_t index;
    if (!list_index(l, e->incr, &index)) {
        store__r_err(w, "ERR index out of range");
        return;
    }
    size_t before = change_begin(o);
    store__lobj_replace(l, index, store__lelem_new(ARG(e, 1)), &s->cfg.encoding);
    change_end(s, o, before);
    r_ok(w);
}

/* Whether the element at index is the bytes p[0..len). */
static int elem_eq(const struct lobj *l, size_t index, const uint8_t *p, size_t len)
{
    const uint8_t *ep;
    size_t elen;
    store__lobj_get(l, index, &ep, &elen);
    return elen == len && (len == 0 || memcmp(ep, p, len) == 0);
}

void store__op_linsert(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_LIST, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        store__r_int(w, 0);
        return;
    }
    struct lobj *l = store__lobj(o);
    size_t at = 0;
    while (at < l->count && !elem_eq(l, at, ARG(e, 1))) {
        at++;
    }
    if (at == l->count) {
        store__r_int(w, -1); /* no pivot */
        return;
    }
    size_t before = change_begin(o);
    store__lobj_insert(l, at + ((e->flags & STORE_F_RIGHT) ? 1 : 0), store__lelem_new(ARG(e, 2)),
                       &s->cfg.encoding);
    store__r_int(w, (int64_t)l->count);
    change_end(s, o, before);
}

void store__op_lrem(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_LIST, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        store__r_int(w, 0);
        return;
    }
    struct lobj *l = store__lobj(o);
    int from_tail = e->incr < 0;
    /* 0 = every match; -INT64_MIN does not fit, so the magnitude is taken unsigned. */
    uint64_t limit = from_tail ? (uint64_t)(-(e->incr + 1)) + 1 : (uint64_t)e->incr;
    size_t before = change_begin(o);
    uint64_t removed = 0;
    if (from_tail) {
        for (size_t i = l->count; i-- > 0 && removed < limit;) {
            if (elem_eq(l, i, ARG(e, 1))) {
                hy_free(store__lobj_take(l, i));
                removed++;
            }
        }
    } else {
        for (size_t i = 0; i < l->count && (limit == 0 || removed < limit);) {
            if (elem_eq(l, i, ARG(e, 1))) {
                hy_free(store__lobj_take(l, i));
                removed++;
            } else {
                i++;
            }
        }
    }
    store__r_int(w, (int64_t)removed);
    change_end(s, o, before);
}

void store__op_ltrim(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int64_t start, stop;
    if (!hy_parse_i64(ARG(e, 1), &start) || !hy_parse_i64(ARG(e, 2), &stop)) {
        store__r_err(w, STORE_ERR_NOT_INT);
        return;
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_LIST, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        r_ok(w);
        return;
    }
    struct lobj *l = store__lobj(o);
    int64_t len = (int64_t)l->count;
    start = start < 0 ? HY_MAX(start + len, 0) : start;
    stop = stop < 0 ? stop + len : stop;
    size_t drop_head, drop_tail;
    if (start > stop || start >= len) {
        drop_head = l->count; /* empty range: the whole list goes */
        drop_tail = 0;
    } else {
        stop = HY_MIN(stop, len - 1);
        drop_head = (size_t)start;
        drop_tail = (size_t)(len - stop - 1);
    }
    size_t before = change_begin(o);
    for (size_t i = 0; i < drop_head; i++) {
        hy_free(store__lobj_take(l, 0));
    }
    for (size_t i = 0; i < drop_tail; i++) {
        hy_free(store__lobj_take(l, l->count - 1));
    }
    change_end(s, o, before);
    r_ok(w);
}

void store__op_lmove(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *src = store__lookup_typed(STORE_LIST, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (src == NULL) {
        r_null(w);
        return;
    }
    struct store_obj *dst = store__lookup_typed(STORE_LIST, s, e, 1, w, &wrong);
    if (wrong) {
        return;
    }
    /* Take first, then push: when src is dst, a one-element list rotates onto itself. */
    size_t src_before = change_begin(src);
    struct lobj *sl = store__lobj(src);
    struct lelem *el = store__lobj_take(sl, end_index(sl, (e->flags & STORE_F_RIGHT) != 0));
    s->obj_bytes = s->obj_bytes - src_before + store__lobj_bytes(sl);
    if (dst == NULL) {
        dst = list_create(s, e, 1);
    }
    size_t dst_before = change_begin(dst);
    struct lobj *dl = store__lobj(dst);
    r_elem(w, el); /* first: a compact list copies the element and frees it */
    store__lobj_insert(dl, (e->flags & STORE_F_DST_RIGHT) ? dl->count : 0, el, &s->cfg.encoding);
    change_end(s, dst, dst_before);
    if (src != dst && sl->count == 0) {
        store__delete(s, src);
    }
}

void store__op_lmpop(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if (e->incr < 1) {
        store__r_err(w, "ERR count should be greater than 0");
        return;
    }
    for (uint32_t i = 0; i < e->argc; i++) {
        int wrong;
        struct store_obj *o = store__lookup_typed(STORE_LIST, s, e, i, w, &wrong);
        if (wrong) {
            return;
        }
        if (o == NULL) {
            continue;
        }
        size_t n = HY_MIN((uint64_t)e->incr, store__lobj_count(store__lobj(o)));
        if (e->flags & STORE_F_FLAT) {
            n = 1; /* BLPOP/BRPOP: [key, element] */
        }
        r_array(w, 2);
        store__r_bulk(w, ARG(e, i));
        if (!(e->flags & STORE_F_FLAT)) {
            r_array(w, n);
        }
        pop_n(s, o, n, (e->flags & STORE_F_RIGHT) != 0, w);
        return;
    }
    r_null_array(w);
}
