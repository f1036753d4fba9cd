/*
 * cmd_set.c - set commands. Writes become STORE_OP_SADD/SREM/SMOVE/SPOP/SSTORE entries; SPOP's
 * members are drawn here, by the node that proposes, and travel in the entry (store_set.c).
 * Reads (SINTER, SRANDMEMBER...) run on the local replica with the node's PRNG.
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

static int set_lookup(struct cmd_ctx *x, size_t i, const struct store_obj **o)
{
    return node_lookup_typed(x, i, STORE_SET, o);
}

/* ---- writes --------------------------------------------------------------------------------- */

void cmd_sadd(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_SADD, 0, 0, -1, x->argc - 1);
}

void cmd_srem(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_SREM, 0, 0, -1, x->argc - 1);
}

void cmd_smove(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_SMOVE, 0, 0, -1, 3);
}

void cmd_sinterstore(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_SSTORE, 0, STORE_SINTER, -1, x->argc - 1);
}

void cmd_sunionstore(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_SSTORE, 0, STORE_SUNION, -1, x->argc - 1);
}

void cmd_sdiffstore(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_SSTORE, 0, STORE_SDIFF, -1, x->argc - 1);
}

struct pick {
    struct hy_prng *prng;
    size_t want, seen;
    struct resp_arg *v; /* want slots */
};

/* Reservoir sampling (Algorithm R): `want` distinct members, each equally likely. */
static void pick_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    struct pick *p = ctx;
    size_t slot = p->seen < p->want ? p->seen : (size_t)hy_prng_below(p->prng, p->seen + 1);
    p->seen++;
    if (slot < p->want) {
        p->v[slot] = (struct resp_arg){m, mlen};
    }
}

/* Draws min(want, size) distinct members of o into a new array (borrowed bytes). */
static struct resp_arg *pick_members(struct cmd_ctx *x, const struct store_obj *o, size_t want,
                                     size_t *n_out)
{
    want = HY_MIN(want, store_set_len(o));
    struct pick p = {&x->node->prng, want, 0, hy_xmalloc(HY_MAX(want, 1) * sizeof(*p.v))};
    store_set_foreach(o, pick_cb, &p);
    *n_out = want;
    return p.v;
}

void cmd_spop(struct cmd_ctx *x)
{
    int64_t count = -1;
    if (x->argc > 3) {
        node_reply_syntax_error(x);
        return;
    }
    if (x->argc == 3) {
        if (!node_arg_i64(x, 2, &count)) {
            return;
        }
        if (count < 0) {
            resp_write_error(&x->w, "ERR value is out of range, must be positive");
            return;
        }
    }
    /* The members are chosen here, from this node's view; apply completes the pick only
     * when entries still in flight took some of them (store_set.c). */
    const struct store_obj *o = store_find(x->store, x->argv[1].ptr, x->argv[1].len, x->now_ms);
    size_t n = 0;
    struct resp_arg *chosen = NULL;
    if (o != NULL && store_obj_type(o) == STORE_SET) {
        chosen = pick_members(x, o, count < 0 ? 1 : (size_t)HY_MIN((uint64_t)count, SIZE_MAX), &n);
    }
    uint8_t seed[8];
    hy_store_u64le(seed, hy_prng_next(&x->node->prng));
    struct store_arg *args = hy_xmalloc((n + 2) * sizeof(*args));
    args[0] = (struct store_arg){x->argv[1].ptr, x->argv[1].len};
    args[1] = (struct store_arg){seed, sizeof(seed)};
    for (size_t i = 0; i < n; i++) {
        args[i + 2] = (struct store_arg){chosen[i].ptr, chosen[i].len};
    }
    struct store_entry e = {.op = STORE_OP_SPOP,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = count,
                            .argc = (uint32_t)(n + 2),
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
    hy_free(chosen);
}

struct member_list {
    struct resp_arg *v;
    size_t n, cap;
    const struct scan_opts *opts; /* NULL: keep every member */
};

static void collect_member_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v,
                              size_t vlen);

/* ---- reads on one set ----------------------------------------------------------------------- */

void cmd_scard(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (set_lookup(x, 1, &o)) {
        resp_write_int(&x->w, o != NULL ? (int64_t)store_set_len(o) : 0);
    }
}

void cmd_sismember(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (set_lookup(x, 1, &o)) {
        resp_write_int(&x->w, o != NULL && store_set_has(o, x->argv[2].ptr, x->argv[2].len));
    }
}

void cmd_smismember(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (!set_lookup(x, 1, &o)) {
        return;
    }
    resp_write_array(&x->w, x->argc - 2);
    for (size_t i = 2; i < x->argc; i++) {
        resp_write_int(&x->w, o != NULL && store_set_has(o, x->argv[i].ptr, x->argv[i].len));
    }
}

static void write_member_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    resp_write_bulk(ctx, m, mlen);
}

static void write_whole_set(struct cmd_ctx *x, const struct store_obj *o)
{
    resp_write_set(&x->w, o != NULL ? store_set_len(o) : 0);
    if (o != NULL) {
        store_set_foreach(o, write_member_cb, &x->w);
    }
}

void cmd_smembers(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (set_lookup(x, 1, &o)) {
        write_whole_set(x, o);
    }
}

/* Exactly `picks` members, repetition allowed, each pick uniform over the members: they are
 * listed once, then drawn by index (a table's random bucket walk would favour short chains). */
static void srandmember_repeating(struct cmd_ctx *x, const struct store_obj *o, size_t picks)
{
    struct member_list all = {0};
    store_set_foreach(o, collect_member_cb, &all);
    resp_write_array(&x->w, picks);
    for (size_t i = 0; i < picks; i++) {
        const struct resp_arg *m = &all.v[hy_prng_below(&x->node->prng, all.n)];
        resp_write_bulk(&x->w, m->ptr, m->len);
    }
    hy_free(all.v);
}

static void srandmember_count(struct cmd_ctx *x, const struct store_obj *o, int64_t count)
{
    if (o == NULL || count == 0) {
        resp_write_array(&x->w, 0);
        return;
    }
    if (count < 0) {
        srandmember_repeating(x, o, (size_t)(-(count + 1)) + 1);
        return;
    }
    if ((uint64_t)count >= store_set_len(o)) {
        write_whole_set(x, o);
        return;
    }
    size_t n;
    struct resp_arg *v = pick_members(x, o, (size_t)count, &n);
    resp_write_array(&x->w, n);
    for (size_t i = 0; i < n; i++) {
        resp_write_bulk(&x->w, v[i].ptr, v[i].len);
    }
    hy_free(v);
}

void cmd_srandmember(struct cmd_ctx *x)
{
    int64_t count;
    int unused;
    if (!node_rand_count(x, NULL, &count, &unused)) {
        return;
    }
    const struct store_obj *o;
    if (!set_lookup(x, 1, &o)) {
        return;
    }
    if (x->argc == 3) {
        srandmember_count(x, o, count);
        return;
    }
    if (o == NULL) {
        resp_write_null(&x->w);
        return;
    }
    const uint8_t *m;
    size_t mlen;
    store_set_random(o, &x->node->prng, &m, &mlen);
    resp_write_bulk(&x->w, m, mlen);
}

/* ---- SSCAN ---------------------------------------------------------------------------------- */

static void member_push(struct member_list *l, const uint8_t *m, size_t mlen)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->v = hy_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = (struct resp_arg){m, mlen};
}

static void collect_member_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v,
                              size_t vlen)
{
    (void)v;
    (void)vlen;
    struct member_list *l = ctx;
    if (l->opts == NULL || node_scan_match(l->opts, m, mlen)) {
        member_push(l, m, mlen);
    }
}

void cmd_sscan(struct cmd_ctx *x)
{
    uint64_t cursor;
    struct scan_opts opts;
    const struct store_obj *o;
    if (!node_parse_cursor(x, 2, &cursor) || !node_parse_scan_opts(x, 3, 0, &opts) ||
        !set_lookup(x, 1, &o)) {
        return;
    }
    struct member_list l = {.opts = &opts};
    if (o == NULL) {
        cursor = 0;
    } else {
        int rounds = 0;
        do {
            cursor = store_set_scan(o, cursor, (size_t)HY_MIN(opts.count, 1 << 20),
                                    collect_member_cb, &l);
        } while (cursor != 0 && l.n < (size_t)opts.count && ++rounds < 10);
    }
    resp_write_array(&x->w, 2);
    node_write_cursor(&x->w, cursor);
    resp_write_array(&x->w, l.n);
    for (size_t i = 0; i < l.n; i++) {
        resp_write_bulk(&x->w, l.v[i].ptr, l.v[i].len);
    }
    hy_free(l.v);
}

/* ---- SINTER, SUNION, SDIFF, SINTERCARD ------------------------------------------------------ */

/* Looks up argv[first .. first + n) as sets (NULL = missing); NULL after a WRONGTYPE reply.
 * Redis 7 checks every key's type before computing anything. */
static const struct store_obj **sets_lookup(struct cmd_ctx *x, size_t first, size_t n)
{
    const struct store_obj **sets = hy_xmalloc(HY_MAX(n, 1) * sizeof(*sets));
    for (size_t i = 0; i < n; i++) {
        if (!set_lookup(x, first + i, &sets[i])) {
            hy_free(sets);
            return NULL;
        }
    }
    return sets;
}

struct probe {
    struct member_list *out;
    const struct store_obj *const *sets;
    size_t n, skip; /* probe sets[0..n) except sets[skip] */
    int want_in;
    uint64_t limit; /* stop after this many results (0 = none) */
};

static void probe_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    struct probe *p = ctx;
    if (p->limit > 0 && p->out->n >= p->limit) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (i != p->skip && p->sets[i] != NULL &&
            store_set_has(p->sets[i], m, mlen) != p->want_in) {
            return;
        }
    }
    member_push(p->out, m, mlen);
}

static void sets_inter(const struct store_obj *const *sets, size_t n, uint64_t limit,
                       struct member_list *out)
{
    size_t smallest = 0;
    for (size_t i = 0; i < n; i++) {
        if (sets[i] == NULL) {
            return; /* with an empty set, the intersection is empty */
        }
        if (store_set_len(sets[i]) < store_set_len(sets[smallest])) {
            smallest = i;
        }
    }
    struct probe p = {out, sets, n, smallest, 1, limit};
    store_set_foreach(sets[smallest], probe_cb, &p);
}

static int ref_cmp(const void *pa, const void *pb)
{
    const struct resp_arg *a = pa, *b = pb;
    int c = memcmp(a->ptr, b->ptr, HY_MIN(a->len, b->len));
    return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

static void sets_union(const struct store_obj *const *sets, size_t n, struct member_list *out)
{
    struct member_list all = {0};
    for (size_t i = 0; i < n; i++) {
        if (sets[i] != NULL) {
            store_set_foreach(sets[i], collect_member_cb, &all);
        }
    }
    if (all.n > 0) {
        qsort(all.v, all.n, sizeof(*all.v), ref_cmp);
    }
    for (size_t i = 0; i < all.n; i++) {
        if (i == 0 || ref_cmp(&all.v[i - 1], &all.v[i]) != 0) {
            member_push(out, all.v[i].ptr, all.v[i].len);
        }
    }
    hy_free(all.v);
}

static void set_algebra(struct cmd_ctx *x, enum store_setop kind)
{
    size_t n = x->argc - 1;
    const struct store_obj **sets = sets_lookup(x, 1, n);
    if (sets == NULL) {
        return;
    }
    struct member_list out = {0};
    if (kind == STORE_SINTER) {
        sets_inter(sets, n, 0, &out);
    } else if (kind == STORE_SUNION) {
        sets_union(sets, n, &out);
    } else if (sets[0] != NULL) {
        struct probe p = {&out, sets, n, 0, 0, 0};
        store_set_foreach(sets[0], probe_cb, &p);
    }
    resp_write_set(&x->w, out.n);
    for (size_t i = 0; i < out.n; i++) {
        resp_write_bulk(&x->w, out.v[i].ptr, out.v[i].len);
    }
    hy_free(out.v);
    hy_free(sets);
}

void cmd_sinter(struct cmd_ctx *x)
{
    set_algebra(x, STORE_SINTER);
}

void cmd_sunion(struct cmd_ctx *x)
{
    set_algebra(x, STORE_SUNION);
}

void cmd_sdiff(struct cmd_ctx *x)
{
    set_algebra(x, STORE_SDIFF);
}

void cmd_sintercard(struct cmd_ctx *x)
{
    int64_t numkeys, limit = 0;
    if (!node_arg_numkeys(x, 1, &numkeys)) {
        return;
    }
    if ((uint64_t)numkeys > x->argc - 2) {
        resp_write_error(&x->w, "ERR Number of keys can't be greater than number of args");
        return;
    }
    for (size_t i = 2 + (size_t)numkeys; i < x->argc; i++) {
        if (node_arg_is(&x->argv[i], "LIMIT") && i + 1 < x->argc) {
            i++;
            if (!hy_parse_i64(x->argv[i].ptr, x->argv[i].len, &limit) || limit < 0) {
                resp_write_error(&x->w, "ERR LIMIT can't be negative");
                return;
            }
        } else {
            node_reply_syntax_error(x);
            return;
        }
    }
    const struct store_obj **sets = sets_lookup(x, 2, (size_t)numkeys);
    if (sets == NULL) {
        return;
    }
    struct member_list out = {0};
    sets_inter(sets, (size_t)numkeys, (uint64_t)limit, &out);
    resp_write_int(&x->w, (int64_t)out.n);
    hy_free(out.v);
    hy_free(sets);
}
