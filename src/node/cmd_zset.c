/*
 * cmd_zset.c - sorted set commands. Writes become STORE_OP_ZADD/ZREM/ZPOP/ZMPOP/ZREMRANGE
 * entries, their arguments checked here first with Redis 7.0's error texts; reads (ranges,
 * ranks, scores) run on the local replica.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define ERR_FLOAT     "ERR value is not a valid float"
#define ERR_NOT_FLOAT "ERR min or max is not a float"
#define ERR_LEX       "ERR min or max not valid string range item"

static int zset_lookup(struct cmd_ctx *x, size_t i, const struct store_obj **o)
{
    return node_lookup_typed(x, i, STORE_ZSET, o);
}

/* ---- writes --------------------------------------------------------------------------------- */

/* Parses ZADD's options from argv[2..]; returns the index of the first score, or 0 after
 * replying an error. */
static size_t zadd_options(struct cmd_ctx *x, uint32_t *flags)
{
    static const struct {
        const char *name;
        uint32_t flag;
    } opts[] = {{"NX", STORE_F_NX}, {"XX", STORE_F_XX}, {"GT", STORE_F_GT},
                {"LT", STORE_F_LT}, {"CH", STORE_F_CH}, {"INCR", STORE_F_INCR}};
    size_t i = 2;
    for (; i < x->argc; i++) {
        size_t k = 0;
        while (k < HY_ARRAY_LEN(opts) && !node_arg_is(&x->argv[i], opts[k].name)) {
            k++;
        }
        if (k == HY_ARRAY_LEN(opts)) {
            break;
        }
        *flags |= opts[k].flag;
    }
    size_t elements = x->argc - i;
    if (elements == 0 || elements % 2 != 0) {
        node_reply_syntax_error(x);
        return 0;
    }
    uint32_t f = *flags;
    if ((f & STORE_F_NX) && (f & STORE_F_XX)) {
        resp_write_error(&x->w, "ERR XX and NX options at the same time are not compatible");
        return 0;
    }
    if (((f & STORE_F_NX) && (f & (STORE_F_GT | STORE_F_LT))) ||
        ((f & STORE_F_GT) && (f & STORE_F_LT))) {
        resp_write_error(&x->w,
                         "ERR GT, LT, and/or NX options at the same time are not compatible");
        return 0;
    }
    if ((f & STORE_F_INCR) && elements > 2) {
        resp_write_error(&x->w, "ERR INCR option supports a single increment-element pair");
        return 0;
    }
    return i;
}

static void propose_zadd(struct cmd_ctx *x, uint32_t flags, size_t first)
{
    for (size_t i = first; i < x->argc; i += 2) {
        double score;
        if (!store_zscore_parse(x->argv[i].ptr, x->argv[i].len, &score)) {
            resp_write_error(&x->w, ERR_FLOAT);
            return;
        }
    }
    size_t n = 1 + (x->argc - first);
    struct store_arg *args = hy_xmalloc(n * sizeof(*args));
    args[0] = (struct store_arg){x->argv[1].ptr, x->argv[1].len};
    for (size_t i = first; i < x->argc; i++) {
        args[1 + i - first] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
    }
    struct store_entry e = {.op = STORE_OP_ZADD,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

void cmd_zadd(struct cmd_ctx *x)
{
    uint32_t flags = 0;
    size_t first = zadd_options(x, &flags);
    if (first > 0) {
        propose_zadd(x, flags, first);
    }
}

void cmd_zincrby(struct cmd_ctx *x)
{
    propose_zadd(x, STORE_F_INCR, 2);
}

void cmd_zrem(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_ZREM, 0, 0, -1, x->argc - 1);
}

static void zpop(struct cmd_ctx *x, uint32_t flags)
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
    node_propose_argv(x, STORE_OP_ZPOP, flags, count, -1, 1);
}

void cmd_zpopmin(struct cmd_ctx *x)
{
    zpop(x, 0);
}

void cmd_zpopmax(struct cmd_ctx *x)
{
    zpop(x, STORE_F_RIGHT);
}

void cmd_zmpop(struct cmd_ctx *x)
{
    int64_t numkeys, count = -1;
    uint32_t flags;
    if (!node_arg_numkeys(x, 1, &numkeys)) {
        return;
    }
    if ((uint64_t)numkeys >= x->argc - 2) {
        node_reply_syntax_error(x);
        return;
    }
    size_t where = 2 + (size_t)numkeys;
    if (node_arg_is(&x->argv[where], "MIN")) {
        flags = 0;
    } else if (node_arg_is(&x->argv[where], "MAX")) {
        flags = STORE_F_RIGHT;
    } else {
        node_reply_syntax_error(x);
        return;
    }
    for (size_t i = where + 1; i < x->argc; i++) {
        if (count == -1 && node_arg_is(&x->argv[i], "COUNT") && i + 1 < x->argc) {
            i++;
            if (!hy_parse_i64(x->argv[i].ptr, x->argv[i].len, &count) || count < 1) {
                resp_write_error(&x->w, "ERR count should be greater than 0");
                return;
            }
        } else {
            node_reply_syntax_error(x);
            return;
        }
    }
    struct store_arg *args = hy_xmalloc((size_t)numkeys * sizeof(*args));
    for (size_t i = 0; i < (size_t)numkeys; i++) {
        args[i] = (struct store_arg){x->argv[2 + i].ptr, x->argv[2 + i].len};
    }
    struct store_entry e = {.op = STORE_OP_ZMPOP,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = count == -1 ? 1 : count,
                            .argc = (uint32_t)numkeys,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

/* ZREMRANGEBY*: the range is checked here and again at apply (same text, same answer). */
static void zremrange(struct cmd_ctx *x, int kind)
{
    struct store_zscore_range sr;
    struct store_zlex_range lr;
    int64_t a, b;
    const struct resp_arg *min = &x->argv[2], *max = &x->argv[3];
    if (kind == 0 && (!node_arg_i64(x, 2, &a) || !node_arg_i64(x, 3, &b))) {
        return;
    }
    if (kind == 1 && !store_zscore_range_parse(min->ptr, min->len, max->ptr, max->len, &sr)) {
        resp_write_error(&x->w, ERR_NOT_FLOAT);
        return;
    }
    if (kind == 2 && !store_zlex_range_parse(min->ptr, min->len, max->ptr, max->len, &lr)) {
        resp_write_error(&x->w, ERR_LEX);
        return;
    }
    node_propose_argv(x, STORE_OP_ZREMRANGE, 0, kind, -1, 3);
}

void cmd_zremrangebyrank(struct cmd_ctx *x)
{
    zremrange(x, 0);
}

void cmd_zremrangebyscore(struct cmd_ctx *x)
{
    zremrange(x, 1);
}

void cmd_zremrangebylex(struct cmd_ctx *x)
{
    zremrange(x, 2);
}

/* ---- point reads ---------------------------------------------------------------------------- */

void cmd_zcard(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (zset_lookup(x, 1, &o)) {
        resp_write_int(&x->w, o != NULL ? (int64_t)store_zset_len(o) : 0);
    }
}

void cmd_zscore(struct cmd_ctx *x)
{
    const struct store_obj *o;
    double score;
    if (!zset_lookup(x, 1, &o)) {
        return;
    }
    if (o != NULL && store_zset_score(o, x->argv[2].ptr, x->argv[2].len, &score)) {
        resp_write_double(&x->w, score);
    } else {
        resp_write_null(&x->w);
    }
}

void cmd_zmscore(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (!zset_lookup(x, 1, &o)) {
        return;
    }
    resp_write_array(&x->w, x->argc - 2);
    for (size_t i = 2; i < x->argc; i++) {
        double score;
        if (o != NULL && store_zset_score(o, x->argv[i].ptr, x->argv[i].len, &score)) {
            resp_write_double(&x->w, score);
        } else {
            resp_write_null(&x->w);
        }
    }
}

static void zrank(struct cmd_ctx *x, int rev)
{
    const struct store_obj *o;
    if (!zset_lookup(x, 1, &o)) {
        return;
    }
    int64_t rank = o != NULL ? store_zset_rank(o, x->argv[2].ptr, x->argv[2].len) : -1;
    if (rank < 0) {
        resp_write_null(&x->w);
    } else {
        resp_write_int(&x->w, rev ? (int64_t)store_zset_len(o) - 1 - rank : rank);
    }
}

void cmd_zrank(struct cmd_ctx *x)
{
    zrank(x, 0);
}

void cmd_zrevrank(struct cmd_ctx *x)
{
    zrank(x, 1);
}

void cmd_zcount(struct cmd_ctx *x)
{
    struct store_zscore_range r;
    const struct store_obj *o;
    if (!store_zscore_range_parse(x->argv[2].ptr, x->argv[2].len, x->argv[3].ptr, x->argv[3].len,
                                  &r)) {
        resp_write_error(&x->w, ERR_NOT_FLOAT);
        return;
    }
    if (!zset_lookup(x, 1, &o)) {
        return;
    }
    size_t lo = 0, hi = 0;
    if (o != NULL) {
        store_zset_score_span(o, &r, &lo, &hi);
    }
    resp_write_int(&x->w, (int64_t)(hi - lo));
}

void cmd_zlexcount(struct cmd_ctx *x)
{
    struct store_zlex_range r;
    const struct store_obj *o;
    if (!store_zlex_range_parse(x->argv[2].ptr, x->argv[2].len, x->argv[3].ptr, x->argv[3].len,
                                &r)) {
        resp_write_error(&x->w, ERR_LEX);
        return;
    }
    if (!zset_lookup(x, 1, &o)) {
        return;
    }
    size_t lo = 0, hi = 0;
    if (o != NULL) {
        store_zset_lex_span(o, &r, &lo, &hi);
    }
    resp_write_int(&x->w, (int64_t)(hi - lo));
}

/* ---- ranges --------------------------------------------------------------------------------- */

enum zrange_type { ZR_AUTO, ZR_RANK, ZR_SCORE, ZR_LEX };

struct zrange_req {
    enum zrange_type type;
    int rev; /* -1: not given yet */
    int withscores;
    int64_t offset;      /* LIMIT */
    int64_t limit;       /* -1: none */
    size_t min_i, max_i; /* argument positions of the range, after REV's swap */
};

static int zrange_options(struct cmd_ctx *x, size_t from, int store, struct zrange_req *q)
{
    for (size_t j = from; j < x->argc; j++) {
        const struct resp_arg *a = &x->argv[j];
        if (!store && node_arg_is(a, "WITHSCORES")) {
            q->withscores = 1;
        } else if (node_arg_is(a, "LIMIT") && x->argc - j - 1 >= 2) {
            if (!node_arg_i64(x, j + 1, &q->offset) || !node_arg_i64(x, j + 2, &q->limit)) {
                return 0;
            }
            j += 2;
        } else if (q->rev == -1 && node_arg_is(a, "REV")) {
            q->rev = 1;
        } else if (q->type == ZR_AUTO && node_arg_is(a, "BYLEX")) {
            q->type = ZR_LEX;
        } else if (q->type == ZR_AUTO && node_arg_is(a, "BYSCORE")) {
            q->type = ZR_SCORE;
        } else {
            node_reply_syntax_error(x);
            return 0;
        }
    }
    q->rev = q->rev == 1;
    q->type = q->type == ZR_AUTO ? ZR_RANK : q->type;
    if (q->limit != -1 && q->type == ZR_RANK) {
        resp_write_error(&x->w, "ERR syntax error, LIMIT is only supported in combination with "
                                "either BYSCORE or BYLEX");
        return 0;
    }
    if (q->withscores && q->type == ZR_LEX) {
        resp_write_error(&x->w,
                         "ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return 0;
    }
    if (q->rev && q->type != ZR_RANK) {
        size_t t = q->min_i; /* the range is given as max, min */
        q->min_i = q->max_i;
        q->max_i = t;
    }
    return 1;
}

static void write_scored(struct cmd_ctx *x, const uint8_t *m, size_t mlen, double score,
                         int withscores)
{
    if (withscores && x->w.proto >= 3) {
        resp_write_array(&x->w, 2);
    }
    resp_write_bulk(&x->w, m, mlen);
    if (withscores) {
        resp_write_double(&x->w, score);
    }
}

static void write_member(struct cmd_ctx *x, const struct store_obj *o, size_t rank, int withscores)
{
    double score;
    const uint8_t *m;
    size_t mlen;
    store_zset_at(o, rank, &score, &m, &mlen);
    write_scored(x, m, mlen, score, withscores);
}

struct zrange_out {
    struct cmd_ctx *x;
    int withscores;
};

static void zrange_member_cb(void *ctx, const uint8_t *m, size_t mlen, double score)
{
    const struct zrange_out *out = ctx;
    write_scored(out->x, m, mlen, score, out->withscores);
}

/* Writes ranks [lo, hi) in the request's direction, after LIMIT. */
static void zrange_write(struct cmd_ctx *x, const struct store_obj *o, size_t lo, size_t hi,
                         const struct zrange_req *q)
{
    size_t n = hi - lo, skip = 0;
    if (q->type != ZR_RANK) {
        if (q->offset < 0) {
            n = 0;
        } else {
            skip = (size_t)HY_MIN((uint64_t)q->offset, n);
            n -= skip;
            if (q->limit >= 0) {
                n = (size_t)HY_MIN((uint64_t)q->limit, n);
            }
        }
    }
    int pairs = q->withscores && x->w.proto < 3;
    resp_write_array(&x->w, pairs ? n * 2 : n);
    struct zrange_out out = {x, q->withscores};
    if (q->rev) {
        store_zset_range(o, hi - skip - n, hi - skip, 1, zrange_member_cb, &out);
    } else {
        store_zset_range(o, lo + skip, lo + skip + n, 0, zrange_member_cb, &out);
    }
}

/* The generic ZRANGE: `type` and `rev` preset by the legacy forms (ZRANGEBYSCORE...). */
static void zrange_generic(struct cmd_ctx *x, enum zrange_type type, int rev)
{
    struct zrange_req q = {type, rev, 0, 0, -1, 2, 3};
    if (!zrange_options(x, 4, 0, &q)) {
        return;
    }
    const struct resp_arg *min = &x->argv[q.min_i], *max = &x->argv[q.max_i];
    int64_t start = 0, stop = 0;
    struct store_zscore_range sr;
    struct store_zlex_range lr;
    if (q.type == ZR_RANK &&
        (!node_arg_i64(x, q.min_i, &start) || !node_arg_i64(x, q.max_i, &stop))) {
        return;
    }
    if (q.type == ZR_SCORE &&
        !store_zscore_range_parse(min->ptr, min->len, max->ptr, max->len, &sr)) {
        resp_write_error(&x->w, ERR_NOT_FLOAT);
        return;
    }
    if (q.type == ZR_LEX && !store_zlex_range_parse(min->ptr, min->len, max->ptr, max->len, &lr)) {
        resp_write_error(&x->w, ERR_LEX);
        return;
    }
    const struct store_obj *o;
    if (!zset_lookup(x, 1, &o)) {
        return;
    }
    if (o == NULL) {
        resp_write_array(&x->w, 0);
        return;
    }
    size_t lo = 0, hi = 0;
    if (q.type == ZR_SCORE) {
        store_zset_score_span(o, &sr, &lo, &hi);
    } else if (q.type == ZR_LEX) {
        store_zset_lex_span(o, &lr, &lo, &hi);
    } else {
        int64_t len = (int64_t)store_zset_len(o);
        start = start < 0 ? HY_MAX(start + len, 0) : start;
        stop = stop < 0 ? stop + len : stop;
        if (start <= stop && start < len) {
            stop = HY_MIN(stop, len - 1);
            /* REV ranks count from the highest score. */
            lo = (size_t)(q.rev ? len - 1 - stop : start);
            hi = (size_t)(q.rev ? len - start : stop + 1);
        }
    }
    zrange_write(x, o, lo, hi, &q);
}

void cmd_zrange(struct cmd_ctx *x)
{
    zrange_generic(x, ZR_AUTO, -1);
}

void cmd_zrevrange(struct cmd_ctx *x)
{
    zrange_generic(x, ZR_RANK, 1);
}

void cmd_zrangebyscore(struct cmd_ctx *x)
{
    zrange_generic(x, ZR_SCORE, 0);
}

void cmd_zrevrangebyscore(struct cmd_ctx *x)
{
    zrange_generic(x, ZR_SCORE, 1);
}

void cmd_zrangebylex(struct cmd_ctx *x)
{
    zrange_generic(x, ZR_LEX, 0);
}

void cmd_zrevrangebylex(struct cmd_ctx *x)
{
    zrange_generic(x, ZR_LEX, 1);
}

/* ---- ZRANDMEMBER, ZSCAN --------------------------------------------------------------------- */

static void zrandmember_count(struct cmd_ctx *x, const struct store_obj *o, int64_t count,
                              int withscores)
{
    size_t len = o != NULL ? store_zset_len(o) : 0;
    if (count == 0 || len == 0) {
        resp_write_array(&x->w, 0);
        return;
    }
    int flat = withscores && x->w.proto < 3;
    if (count < 0) { /* repetition allowed: exactly -count picks */
        size_t picks = (size_t)(-(count + 1)) + 1;
        resp_write_array(&x->w, flat ? picks * 2 : picks);
        for (size_t i = 0; i < picks; i++) {
            write_member(x, o, (size_t)hy_prng_below(&x->node->prng, len), withscores);
        }
        return;
    }
    size_t want = (size_t)HY_MIN((uint64_t)count, len);
    /* Distinct ranks: a partial Fisher-Yates shuffle over [0, len). */
    size_t *ranks = hy_xmalloc(len * sizeof(*ranks));
    for (size_t i = 0; i < len; i++) {
        ranks[i] = i;
    }
    for (size_t i = 0; i < want; i++) {
        size_t j = i + (size_t)hy_prng_below(&x->node->prng, len - i);
        size_t t = ranks[i];
        ranks[i] = ranks[j];
        ranks[j] = t;
    }
    resp_write_array(&x->w, flat ? want * 2 : want);
    for (size_t i = 0; i < want; i++) {
        write_member(x, o, ranks[i], withscores);
    }
    hy_free(ranks);
}

void cmd_zrandmember(struct cmd_ctx *x)
{
    int64_t count;
    int withscores;
    if (!node_rand_count(x, "WITHSCORES", &count, &withscores)) {
        return;
    }
    const struct store_obj *o;
    if (!zset_lookup(x, 1, &o)) {
        return;
    }
    if (x->argc >= 3) {
        zrandmember_count(x, o, count, withscores);
        return;
    }
    if (o == NULL) {
        resp_write_null(&x->w);
        return;
    }
    write_member(x, o, (size_t)hy_prng_below(&x->node->prng, store_zset_len(o)), 0);
}

void cmd_zscan(struct cmd_ctx *x)
{
    uint64_t cursor;
    struct scan_opts opts;
    const struct store_obj *o;
    if (!node_parse_cursor(x, 2, &cursor) || !node_parse_scan_opts(x, 3, 0, &opts) ||
        !zset_lookup(x, 1, &o)) {
        return;
    }
    /* One step returns everything: ranks shift under writes, so a rank cursor could miss
     * members, and a sorted set is walked in order anyway. */
    size_t len = o != NULL ? store_zset_len(o) : 0, n = 0;
    size_t *hits = hy_xmalloc(HY_MAX(len, 1) * sizeof(*hits));
    for (size_t i = 0; i < len; i++) {
        double score;
        const uint8_t *m;
        size_t mlen;
        store_zset_at(o, i, &score, &m, &mlen);
        if (node_scan_match(&opts, m, mlen)) {
            hits[n++] = i;
        }
    }
    resp_write_array(&x->w, 2);
    node_write_cursor(&x->w, 0);
    resp_write_array(&x->w, n * 2);
    for (size_t i = 0; i < n; i++) {
        double score;
        const uint8_t *m;
        size_t mlen;
        store_zset_at(o, hits[i], &score, &m, &mlen);
        resp_write_bulk(&x->w, m, mlen);
        char text[64];
        int tlen = isinf(score) ? snprintf(text, sizeof(text), "%s", score > 0 ? "inf" : "-inf")
                                : snprintf(text, sizeof(text), "%.17g", score);
        resp_write_bulk(&x->w, text, (size_t)tlen);
    }
    hy_free(hits);
}

/* ---- ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD ---------------------------------- */

struct zcomb_req {
    size_t numkeys, first; /* the keys are argv[first .. first + numkeys) */
    const struct store_obj **srcs;
    double *weights;
    enum store_zaggr aggr;
    int withscores;
    int64_t limit;
};

/* Redis's order: numkeys, then every key's type, then the options. */
static int zcomb_keys(struct cmd_ctx *x, size_t numkeys_i, struct zcomb_req *q)
{
    int64_t numkeys;
    if (!node_arg_i64(x, numkeys_i, &numkeys)) {
        return 0;
    }
    if (numkeys < 1) {
        resp_write_errorf(&x->w, "ERR at least 1 input key is needed for '%s' command",
                          x->cmd->name);
        return 0;
    }
    if ((uint64_t)numkeys > x->argc - numkeys_i - 1) {
        node_reply_syntax_error(x);
        return 0;
    }
    q->numkeys = (size_t)numkeys;
    q->first = numkeys_i + 1;
    q->srcs = hy_xcalloc(q->numkeys, sizeof(*q->srcs));
    q->weights = hy_xmalloc(q->numkeys * sizeof(*q->weights));
    for (size_t i = 0; i < q->numkeys; i++) {
        const struct store_obj *o = node_lookup(x, q->first + i);
        if (o != NULL && store_obj_type(o) != STORE_ZSET && store_obj_type(o) != STORE_SET) {
            node_reply_wrongtype(x);
            return 0;
        }
        q->srcs[i] = o;
        q->weights[i] = 1.0;
    }
    return 1;
}

static int zcomb_options(struct cmd_ctx *x, enum store_zop op, int store, int card,
                         struct zcomb_req *q)
{
    size_t j = q->first + q->numkeys;
    while (j < x->argc) {
        size_t left = x->argc - j;
        const struct resp_arg *a = &x->argv[j];
        if (op != STORE_ZDIFF && !card && left >= q->numkeys + 1 && node_arg_is(a, "WEIGHTS")) {
            for (size_t i = 0; i < q->numkeys; i++) {
                const struct resp_arg *wa = &x->argv[j + 1 + i];
                if (!store_zscore_parse(wa->ptr, wa->len, &q->weights[i])) {
                    resp_write_error(&x->w, "ERR weight value is not a float");
                    return 0;
                }
            }
            j += 1 + q->numkeys;
        } else if (op != STORE_ZDIFF && !card && left >= 2 && node_arg_is(a, "AGGREGATE")) {
            const struct resp_arg *v = &x->argv[j + 1];
            if (node_arg_is(v, "SUM")) {
                q->aggr = STORE_ZAGGR_SUM;
            } else if (node_arg_is(v, "MIN")) {
                q->aggr = STORE_ZAGGR_MIN;
            } else if (node_arg_is(v, "MAX")) {
                q->aggr = STORE_ZAGGR_MAX;
            } else {
                node_reply_syntax_error(x);
                return 0;
            }
            j += 2;
        } else if (!store && !card && node_arg_is(a, "WITHSCORES")) {
            q->withscores = 1;
            j++;
        } else if (card && left >= 2 && node_arg_is(a, "LIMIT")) {
            const struct resp_arg *v = &x->argv[j + 1];
            if (!hy_parse_i64(v->ptr, v->len, &q->limit) || q->limit < 0) {
                resp_write_error(&x->w, "ERR LIMIT can't be negative");
                return 0;
            }
            j += 2;
        } else {
            node_reply_syntax_error(x);
            return 0;
        }
    }
    return 1;
}

static void zcomb_free(struct zcomb_req *q)
{
    hy_free(q->srcs);
    hy_free(q->weights);
}

static void zcomb_read(struct cmd_ctx *x, enum store_zop op, int card)
{
    struct zcomb_req q = {0};
    if (!zcomb_keys(x, 1, &q) || !zcomb_options(x, op, 0, card, &q)) {
        zcomb_free(&q);
        return;
    }
    struct store_ztmp *t =
        store_zcombine(q.srcs, q.weights, q.numkeys, op, q.aggr, card ? (uint64_t)q.limit : 0);
    size_t n = store_ztmp_len(t);
    if (card) {
        resp_write_int(&x->w, (int64_t)n);
    } else {
        resp_write_array(&x->w, q.withscores && x->w.proto < 3 ? n * 2 : n);
        for (size_t i = 0; i < n; i++) {
            double score;
            const uint8_t *m;
            size_t mlen;
            store_ztmp_at(t, i, &score, &m, &mlen);
            if (q.withscores && x->w.proto >= 3) {
                resp_write_array(&x->w, 2);
            }
            resp_write_bulk(&x->w, m, mlen);
            if (q.withscores) {
                resp_write_double(&x->w, score);
            }
        }
    }
    store_ztmp_free(t);
    zcomb_free(&q);
}

static void zcomb_store(struct cmd_ctx *x, enum store_zop op)
{
    struct zcomb_req q = {0};
    if (!zcomb_keys(x, 2, &q) || !zcomb_options(x, op, 1, 0, &q)) {
        zcomb_free(&q);
        return;
    }
    /* [dst, keys..., weights...]: weights travel as the text the client sent, or "1". */
    size_t n = 1 + 2 * q.numkeys;
    struct store_arg *args = hy_xmalloc(n * sizeof(*args));
    char(*text)[32] = hy_xmalloc(q.numkeys * sizeof(*text));
    args[0] = (struct store_arg){x->argv[1].ptr, x->argv[1].len};
    for (size_t i = 0; i < q.numkeys; i++) {
        args[1 + i] = (struct store_arg){x->argv[q.first + i].ptr, x->argv[q.first + i].len};
        int len = snprintf(text[i], sizeof(text[i]), "%.17g", q.weights[i]);
        args[1 + q.numkeys + i] = (struct store_arg){(const uint8_t *)text[i], (size_t)len};
    }
    struct store_entry e = {.op = STORE_OP_ZSTORE,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = (int64_t)op + 4 * (int64_t)q.aggr,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
    hy_free(text);
    hy_free(args);
    zcomb_free(&q);
}

void cmd_zunion(struct cmd_ctx *x)
{
    zcomb_read(x, STORE_ZUNION, 0);
}

void cmd_zinter(struct cmd_ctx *x)
{
    zcomb_read(x, STORE_ZINTER, 0);
}

void cmd_zdiff(struct cmd_ctx *x)
{
    zcomb_read(x, STORE_ZDIFF, 0);
}

void cmd_zintercard(struct cmd_ctx *x)
{
    zcomb_read(x, STORE_ZINTER, 1);
}

void cmd_zunionstore(struct cmd_ctx *x)
{
    zcomb_store(x, STORE_ZUNION);
}

void cmd_zinterstore(struct cmd_ctx *x)
{
    zcomb_store(x, STORE_ZINTER);
}

void cmd_zdiffstore(struct cmd_ctx *x)
{
    zcomb_store(x, STORE_ZDIFF);
}

void cmd_zrangestore(struct cmd_ctx *x)
{
    struct zrange_req q = {ZR_AUTO, -1, 0, 0, -1, 3, 4};
    if (!zrange_options(x, 5, 1, &q)) {
        return;
    }
    const struct resp_arg *min = &x->argv[q.min_i], *max = &x->argv[q.max_i];
    int64_t v;
    struct store_zscore_range sr;
    struct store_zlex_range lr;
    if (q.type == ZR_RANK && (!node_arg_i64(x, q.min_i, &v) || !node_arg_i64(x, q.max_i, &v))) {
        return;
    }
    if (q.type == ZR_SCORE &&
        !store_zscore_range_parse(min->ptr, min->len, max->ptr, max->len, &sr)) {
        resp_write_error(&x->w, ERR_NOT_FLOAT);
        return;
    }
    if (q.type == ZR_LEX && !store_zlex_range_parse(min->ptr, min->len, max->ptr, max->len, &lr)) {
        resp_write_error(&x->w, ERR_LEX);
        return;
    }
    char offset[24], limit[24];
    size_t olen = hy_format_i64(offset, q.offset), llen = hy_format_i64(limit, q.limit);
    struct store_arg args[6] = {{x->argv[1].ptr, x->argv[1].len},
                                {x->argv[2].ptr, x->argv[2].len},
                                {min->ptr, min->len},
                                {max->ptr, max->len},
                                {(const uint8_t *)offset, olen},
                                {(const uint8_t *)limit, llen}};
    struct store_entry e = {.op = STORE_OP_ZRANGESTORE,
                            .flags = q.rev ? STORE_F_RIGHT : 0,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = q.type == ZR_RANK    ? 0
                                    : q.type == ZR_SCORE ? 1
                                                         : 2,
                            .argc = 6,
                            .argv = args};
    node_propose(x, &e);
}
