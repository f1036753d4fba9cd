/*
 * store_set.c - the set ops of the log.
 *
 * A set is a hash object (store_hash.c) whose values are all empty: small sets get the compact
 * list encoding, large ones the table, and random picks and SCAN come for free.
 *
 * SPOP is the one op whose outcome is random. The proposer draws the members (it sees the
 * same set, up to the entries still in flight) and the entry carries them with a seed; apply
 * removes the carried members that are still there and, when concurrent writes took some of
 * them away, completes the pick from the remaining members in byte order with a PRNG seeded
 * from the entry. Apply thus never draws randomness of its own: every replica removes the same
 * members.
 */
#include <stdlib.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

#define ARG(e, i) (e)->argv[(i)].ptr, (e)->argv[(i)].len

static void r_set(struct resp_writer *w, size_t n)
{
    if (w != NULL) {
        resp_write_set(w, n);
    }
}

static void r_null(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_null(w);
    }
}

/* Links a new set entry holding h under key k. */
static struct store_obj *set_link(struct store *s, const struct store_entry *e, const uint8_t *k,
                                  size_t klen, struct hobj *h)
{
    struct store_obj *o = store__entry_new(STORE_SET, -1, k, klen, 0);
    store__set_hobj(o, h);
    o->lru = store__lru_of(e);
    store__link(s, o);
    return o;
}

/* A new set for first member m: an intset when m is an integer, as Redis's setTypeCreate. */
static struct hobj *set_new(const struct store *s, const uint8_t *m, size_t mlen)
{
    int64_t v;
    return store__hobj_new_set(s->hash_seed, hy_parse_i64(m, mlen, &v));
}

/* Adds or removes one member, keeping obj_bytes in step; returns 1 when it changed the set. */
static int member_add(struct store *s, struct hobj *h, const uint8_t *m, size_t mlen)
{
    size_t before = store__hobj_extra_bytes(h);
    int added = store__hobj_put(h, m, mlen, NULL, 0, &s->cfg.encoding);
    s->obj_bytes = s->obj_bytes - before + store__hobj_extra_bytes(h);
    return added;
}

static int member_del(struct store *s, struct hobj *h, const uint8_t *m, size_t mlen)
{
    size_t before = store__hobj_extra_bytes(h);
    int removed = store__hobj_del(h, m, mlen);
    s->obj_bytes = s->obj_bytes - before + store__hobj_extra_bytes(h);
    return removed;
}

/* After a write: an empty set is no value (the key goes), else its members move into the
 * entry (store__set_pack). o is not to be used after this. */
static void set_done(struct store *s, struct store_obj *o)
{
    if (store__hobj_count(store__hobj(o)) == 0) {
        store__delete(s, o);
    } else {
        store__set_pack(s, o);
    }
}

void store__op_sadd(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_SET, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        o = set_link(s, e, ARG(e, 0), set_new(s, e->argv[1].ptr, e->argv[1].len));
    }
    int64_t added = 0;
    struct hobj *h = store__hobj(o);
    for (uint32_t i = 1; i < e->argc; i++) {
        added += member_add(s, h, ARG(e, i));
    }
    set_done(s, o);
    store__r_int(w, added);
}

void store__op_srem(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_SET, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    int64_t removed = 0;
    for (uint32_t i = 1; o != NULL && i < e->argc; i++) {
        removed += member_del(s, store__hobj(o), ARG(e, i));
    }
    if (o != NULL) {
        set_done(s, o);
    }
    store__r_int(w, removed);
}

void store__op_smove(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    /* Redis's order: a missing source answers 0 before either type is checked. */
    struct store_obj *src = store__lookup_write(s, ARG(e, 0), e->time_ms);
    struct store_obj *dst = store__lookup_write(s, ARG(e, 1), e->time_ms);
    /* Redis touches (for WATCH) only what SMOVE changed: nothing when it moves nothing, and
     * the destination only when the member was not there already. */
    s->watch_skip = 3;
    if (src == NULL) {
        store__r_int(w, 0);
        return;
    }
    if (se_type(src) != STORE_SET || (dst != NULL && se_type(dst) != STORE_SET)) {
        store__r_err(w, STORE_ERR_WRONGTYPE);
        return;
    }
    const uint8_t *v;
    size_t vlen;
    int present = store__hobj_get(store__hobj(src), ARG(e, 2), &v, &vlen);
    if (src == dst || !present) {
        store__r_int(w, present);
        return;
    }
    s->watch_skip = 0;
    member_del(s, store__hobj(src), ARG(e, 2));
    set_done(s, src);
    if (dst == NULL) {
        dst = set_link(s, e, ARG(e, 1), set_new(s, ARG(e, 2)));
    }
    if (!member_add(s, store__hobj(dst), ARG(e, 2))) {
        s->watch_skip = 2;
    }
    dst->lru = store__lru_of(e);
    set_done(s, dst);
    store__r_int(w, 1);
}

/* ---- SPOP ----------------------------------------------------------------------------------- */

struct member_ref {
    const uint8_t *p;
    size_t len;
};

struct member_list {
    struct member_ref *v;
    size_t n;
};

static void member_collect_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v,
                              size_t vlen)
{
    (void)v;
    (void)vlen;
    struct member_list *l = ctx;
    l->v[l->n++] = (struct member_ref){m, mlen};
}

static int member_cmp(const void *pa, const void *pb)
{
    const struct member_ref *a = pa, *b = pb;
    int c = memcmp(a->p, b->p, HY_MIN(a->len, b->len));
    return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

/* The members of h in byte order (an order every replica shares, unlike table order). */
static struct member_list sorted_members(const struct hobj *h)
{
    struct member_list l = {hy_xmalloc(HY_MAX(store__hobj_count(h), 1) * sizeof(*l.v)), 0};
    store__hobj_foreach(h, member_collect_cb, &l);
    qsort(l.v, l.n, sizeof(*l.v), member_cmp);
    return l;
}

/* Picks `need` more members with the entry's seed, copies them into out (one allocation per
 * member, appended to picks) and removes them. */
static void spop_complete(struct store *s, struct hobj *h, const struct store_arg *seed,
                          size_t need, struct member_ref *picks, size_t *npicks, uint8_t **copies)
{
    uint64_t x = 0;
    memcpy(&x, seed->ptr, HY_MIN(seed->len, sizeof(x)));
    struct hy_prng prng;
    hy_prng_seed(&prng, x);
    struct member_list l = sorted_members(h);
    HY_ASSERT(need <= l.n);
    for (size_t i = 0; i < need; i++) { /* a partial Fisher-Yates shuffle */
        size_t j = i + (size_t)hy_prng_below(&prng, l.n - i);
        struct member_ref t = l.v[i];
        l.v[i] = l.v[j];
        l.v[j] = t;
        uint8_t *c = hy_xmalloc(HY_MAX(l.v[i].len, 1));
        memcpy(c, l.v[i].p, l.v[i].len);
        copies[i] = c;
        picks[(*npicks)++] = (struct member_ref){c, l.v[i].len};
    }
    hy_free(l.v);
    for (size_t i = 0; i < need; i++) {
        member_del(s, h, picks[*npicks - need + i].p, picks[*npicks - need + i].len);
    }
}

void store__op_spop(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int64_t count = e->incr;
    if (count < -1) {
        store__r_err(w, "ERR value is out of range, must be positive");
        return;
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_SET, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        count < 0 ? r_null(w) : r_set(w, 0);
        return;
    }
    struct hobj *h = store__hobj(o);
    size_t want = count < 0 ? 1 : (size_t)HY_MIN((uint64_t)count, store__hobj_count(h));
    struct member_ref *picks = hy_xmalloc(HY_MAX(want, 1) * sizeof(*picks));
    uint8_t **copies = hy_xcalloc(HY_MAX(want, 1), sizeof(*copies));
    size_t npicks = 0;
    /* The carried members first; each removal also skips a member named twice. */
    for (uint32_t i = 2; i < e->argc && npicks < want; i++) {
        if (member_del(s, h, ARG(e, i))) {
            picks[npicks++] = (struct member_ref){e->argv[i].ptr, e->argv[i].len};
        }
    }
    if (npicks < want) {
        spop_complete(s, h, &e->argv[1], want - npicks, picks, &npicks, copies);
    }
    if (count < 0) {
        store__r_bulk(w, picks[0].p, picks[0].len);
    } else {
        r_set(w, npicks);
        for (size_t i = 0; i < npicks; i++) {
            store__r_bulk(w, picks[i].p, picks[i].len);
        }
    }
    for (size_t i = 0; i < want; i++) {
        hy_free(copies[i]);
    }
    hy_free(copies);
    hy_free(picks);
    set_done(s, o);
}

/* ---- SINTERSTORE, SUNIONSTORE, SDIFFSTORE -------------------------------------------------- */

struct setop_ctx {
    struct hobj *out;
    const struct hobj *const *others; /* sets a member must be in (INTER) or not be in (DIFF) */
    size_t nothers;
    int want_in;
    const struct store_encoding *enc;
};

static void setop_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    struct setop_ctx *c = ctx;
    for (size_t i = 0; i < c->nothers; i++) {
        const uint8_t *x;
        size_t xlen;
        if (store__hobj_get(c->others[i], m, mlen, &x, &xlen) != c->want_in) {
            return;
        }
    }
    store__hobj_put(c->out, m, mlen, NULL, 0, c->enc);
}

/* Computes the kind's result over sets (NULL = missing, an empty set) into out. */
static void setop_compute(enum store_setop kind, const struct hobj **sets, size_t n,
                          struct hobj *out, const struct store_encoding *enc)
{
    if (kind == STORE_SUNION) {
        struct setop_ctx c = {out, NULL, 0, 1, enc};
        for (size_t i = 0; i < n; i++) {
            if (sets[i] != NULL) {
                store__hobj_foreach(sets[i], setop_cb, &c);
            }
        }
        return;
    }
    if (kind == STORE_SDIFF) {
        const struct hobj **others = hy_xmalloc(HY_MAX(n, 1) * sizeof(*others));
        size_t m = 0;
        for (size_t i = 1; i < n; i++) {
            if (sets[i] != NULL) {
                others[m++] = sets[i];
            }
        }
        struct setop_ctx c = {out, others, m, 0, enc};
        if (sets[0] != NULL) {
            store__hobj_foreach(sets[0], setop_cb, &c);
        }
        hy_free(others);
        return;
    }
    /* INTER: empty when any is missing; else walk the smallest, probe the others. */
    size_t smallest = 0;
    for (size_t i = 0; i < n; i++) {
        if (sets[i] == NULL) {
            return;
        }
        if (store__hobj_count(sets[i]) < store__hobj_count(sets[smallest])) {
            smallest = i;
        }
    }
    const struct hobj **others = hy_xmalloc(HY_MAX(n, 1) * sizeof(*others));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (i != smallest) {
            others[m++] = sets[i];
        }
    }
    struct setop_ctx c = {out, others, m, 1, enc};
    store__hobj_foreach(sets[smallest], setop_cb, &c);
    hy_free(others);
}

void store__op_sstore(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if (e->incr < STORE_SINTER || e->incr > STORE_SDIFF) {
        store__r_err(w, "ERR syntax error");
        return;
    }
    size_t n = e->argc - 1;
    const struct hobj **sets = hy_xmalloc(n * sizeof(*sets));
    for (size_t i = 0; i < n; i++) {
        int wrong;
        struct store_obj *o = store__lookup_typed(STORE_SET, s, e, (uint32_t)(i + 1), w, &wrong);
        if (wrong) {
            hy_free(sets);
            return;
        }
        sets[i] = o != NULL ? store__hobj(o) : NULL;
    }
    /* As Redis, a result starts as an intset and converts as members ask. */
    struct hobj *out = store__hobj_new_set(s->hash_seed, 1);
    setop_compute((enum store_setop)e->incr, sets, n, out, &s->cfg.encoding);
    hy_free(sets);
    /* The sources are read; now the destination is replaced whatever its type. */
    struct store_obj *dst = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (dst != NULL) {
        store__delete(s, dst);
    }
    size_t count = store__hobj_count(out);
    if (count == 0) {
        store__hobj_free(out);
    } else {
        set_done(s, set_link(s, e, ARG(e, 0), out));
    }
    store__r_int(w, (int64_t)count);
}
