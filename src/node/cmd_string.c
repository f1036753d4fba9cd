/*
 * cmd_string.c - string commands. Handlers check syntax and stamp absolute times; the store
 * executes the entry (store.h) and writes the reply.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

int node_expire_abs(int64_t v, int64_t unit_ms, int64_t base_ms, int64_t *abs_out)
{
    if (v > INT64_MAX / unit_ms || v < INT64_MIN / unit_ms) {
        return 0;
    }
    int64_t ms = v * unit_ms;
    if ((base_ms > 0 && ms > INT64_MAX - base_ms) || (base_ms < 0 && ms < INT64_MIN - base_ms)) {
        return 0;
    }
    *abs_out = ms + base_ms;
    return 1;
}

static void reply_invalid_expire(struct cmd_ctx *x)
{
    resp_write_errorf(&x->w, "ERR invalid expire time in '%s' command", x->cmd->name);
}

/* Parses one of EX/PX/EXAT/PXAT's value at argv[i] into an absolute ms time; 0 = replied. */
static int parse_expire_option(struct cmd_ctx *x, const struct resp_arg *opt, size_t i,
                               int64_t *abs_out)
{
    int64_t v;
    if (!node_arg_i64(x, i, &v)) {
        return 0;
    }
    int seconds = node_arg_is(opt, "EX") || node_arg_is(opt, "EXAT");
    int relative = node_arg_is(opt, "EX") || node_arg_is(opt, "PX");
    if (v <= 0 ||
        !node_expire_abs(v, seconds ? 1000 : 1, relative ? (int64_t)x->now_ms : 0, abs_out)) {
        reply_invalid_expire(x);
        return 0;
    }
    return 1;
}

static int is_expire_option(const struct resp_arg *a)
{
    return node_arg_is(a, "EX") || node_arg_is(a, "PX") || node_arg_is(a, "EXAT") ||
           node_arg_is(a, "PXAT");
}

void cmd_get(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (!node_lookup_typed(x, 1, STORE_STRING, &o)) {
        return;
    }
    if (o == NULL) {
        resp_write_null(&x->w);
        return;
    }
    const uint8_t *p;
    size_t len;
    store_obj_string(o, &p, &len);
    resp_write_bulk(&x->w, p, len);
}

static void propose_set(struct cmd_ctx *x, uint32_t flags, int64_t expire_at)
{
    struct store_arg args[2] = {{x->argv[1].ptr, x->argv[1].len}, {x->argv[2].ptr, x->argv[2].len}};
    struct store_entry e = {.op = STORE_OP_SET,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = expire_at,
                            .argc = 2,
                            .argv = args};
    node_propose(x, &e);
}

void cmd_set(struct cmd_ctx *x)
{
    uint32_t flags = 0;
    int64_t expire_at = -1;
    for (size_t i = 3; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        int has_next = i + 1 < x->argc;
        if (node_arg_is(a, "NX") && !(flags & STORE_F_XX)) {
            flags |= STORE_F_NX;
        } else if (node_arg_is(a, "XX") && !(flags & STORE_F_NX)) {
            flags |= STORE_F_XX;
        } else if (node_arg_is(a, "GET")) {
            flags |= STORE_F_GET;
        } else if (node_arg_is(a, "KEEPTTL") && expire_at == -1) {
            flags |= STORE_F_KEEPTTL;
        } else if (is_expire_option(a) && has_next && expire_at == -1 &&
                   !(flags & STORE_F_KEEPTTL)) {
            if (!parse_expire_option(x, a, ++i, &expire_at)) {
                return;
            }
        } else {
            node_reply_syntax_error(x);
            return;
        }
    }
    propose_set(x, flags, expire_at);
}

void cmd_setnx(struct cmd_ctx *x)
{
    propose_set(x, STORE_F_NX | STORE_F_REPLY_INT, -1);
}

void cmd_getset(struct cmd_ctx *x)
{
    propose_set(x, STORE_F_GET, -1);
}

static void setex_generic(struct cmd_ctx *x, int64_t unit_ms)
{
    int64_t v, expire_at;
    if (!node_arg_i64(x, 2, &v)) {
        return;
    }
    if (v <= 0 || !node_expire_abs(v, unit_ms, (int64_t)x->now_ms, &expire_at)) {
        reply_invalid_expire(x);
        return;
    }
    struct store_arg args[2] = {{x->argv[1].ptr, x->argv[1].len}, {x->argv[3].ptr, x->argv[3].len}};
    struct store_entry e = {.op = STORE_OP_SET,
                            .time_ms = x->now_ms,
                            .expire_at_ms = expire_at,
                            .argc = 2,
                            .argv = args};
    node_propose(x, &e);
}

void cmd_setex(struct cmd_ctx *x)
{
    setex_generic(x, 1000);
}

void cmd_psetex(struct cmd_ctx *x)
{
    setex_generic(x, 1);
}

void cmd_getdel(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_GETDEL, 0, 0, -1, x->argc - 1);
}

void cmd_getex(struct cmd_ctx *x)
{
    int64_t expire_at = -1;
    uint32_t flags = 0;
    for (size_t i = 2; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        int has_next = i + 1 < x->argc;
        if (node_arg_is(a, "PERSIST") && expire_at == -1 && !(flags & STORE_F_PERSIST)) {
            flags |= STORE_F_PERSIST;
        } else if (is_expire_option(a) && has_next && expire_at == -1 &&
                   !(flags & STORE_F_PERSIST)) {
            if (!parse_expire_option(x, a, ++i, &expire_at)) {
                return;
            }
        } else {
            node_reply_syntax_error(x);
            return;
        }
    }
    /* Even without options GETEX goes through the log: it is a write command, so it may run
     * while this client's earlier writes are still pending, and must read after them. */
    struct store_arg key = {x->argv[1].ptr, x->argv[1].len};
    struct store_entry e = {.op = STORE_OP_GETEX,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = expire_at,
                            .argc = 1,
                            .argv = &key};
    node_propose(x, &e);
}

void cmd_mget(struct cmd_ctx *x)
{
    resp_write_array(&x->w, x->argc - 1);
    for (size_t i = 1; i < x->argc; i++) {
        const struct store_obj *o = node_lookup(x, i);
        if (o == NULL || store_obj_type(o) != STORE_STRING) {
            resp_write_null(&x->w);
            continue;
        }
        const uint8_t *p;
        size_t len;
        store_obj_string(o, &p, &len);
        resp_write_bulk(&x->w, p, len);
    }
}

void cmd_mset(struct cmd_ctx *x)
{
    if ((x->argc - 1) % 2 != 0) {
        node_reply_arity(&x->w, x->cmd->name);
        return;
    }
    node_propose_argv(x, STORE_OP_MSET, 0, 0, -1, x->argc - 1);
}

void cmd_msetnx(struct cmd_ctx *x)
{
    if ((x->argc - 1) % 2 != 0) {
        node_reply_arity(&x->w, x->cmd->name);
        return;
    }
    node_propose_argv(x, STORE_OP_MSET, STORE_F_NX, 0, -1, x->argc - 1);
}

void cmd_append(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_APPEND, 0, 0, -1, x->argc - 1);
}

void cmd_strlen(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (!node_lookup_typed(x, 1, STORE_STRING, &o)) {
        return;
    }
    size_t len = 0;
    if (o != NULL) {
        const uint8_t *p;
        store_obj_string(o, &p, &len);
    }
    resp_write_int(&x->w, (int64_t)len);
}

void cmd_getrange(struct cmd_ctx *x)
{
    int64_t start, end;
    if (!node_arg_i64(x, 2, &start) || !node_arg_i64(x, 3, &end)) {
        return;
    }
    const struct store_obj *o;
    if (!node_lookup_typed(x, 1, STORE_STRING, &o)) {
        return;
    }
    const uint8_t *p = NULL;
    size_t len = 0;
    if (o != NULL) {
        store_obj_string(o, &p, &len);
    }
    int64_t n = (int64_t)len;
    if ((start < 0 && end < 0 && start > end) || n == 0) {
        resp_write_bulk(&x->w, "", 0);
        return;
    }
    start = start < 0 ? HY_MAX(n + start, 0) : start;
    end = end < 0 ? HY_MAX(n + end, 0) : end;
    end = HY_MIN(end, n - 1);
    if (start > end) {
        resp_write_bulk(&x->w, "", 0);
        return;
    }
    resp_write_bulk(&x->w, p + start, (size_t)(end - start + 1));
}

void cmd_setrange(struct cmd_ctx *x)
{
    int64_t offset;
    if (!node_arg_i64(x, 2, &offset)) {
        return;
    }
    if (offset < 0) {
        resp_write_error(&x->w, "ERR offset is out of range");
        return;
    }
    struct store_arg args[2] = {{x->argv[1].ptr, x->argv[1].len}, {x->argv[3].ptr, x->argv[3].len}};
    struct store_entry e = {.op = STORE_OP_SETRANGE,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = offset,
                            .argc = 2,
                            .argv = args};
    node_propose(x, &e);
}

static void propose_incr(struct cmd_ctx *x, int64_t by)
{
    struct store_arg key = {x->argv[1].ptr, x->argv[1].len};
    struct store_entry e = {.op = STORE_OP_INCRBY,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = by,
                            .argc = 1,
                            .argv = &key};
    node_propose(x, &e);
}

void cmd_incr(struct cmd_ctx *x)
{
    propose_incr(x, 1);
}

void cmd_decr(struct cmd_ctx *x)
{
    propose_incr(x, -1);
}

void cmd_incrby(struct cmd_ctx *x)
{
    int64_t by;
    if (node_arg_i64(x, 2, &by)) {
        propose_incr(x, by);
    }
}

void cmd_decrby(struct cmd_ctx *x)
{
    int64_t by;
    if (!node_arg_i64(x, 2, &by)) {
        return;
    }
    if (by == INT64_MIN) {
        resp_write_error(&x->w, "ERR decrement would overflow");
        return;
    }
    propose_incr(x, -by);
}

void cmd_incrbyfloat(struct cmd_ctx *x)
{
    long double by;
    if (!hy_parse_double(x->argv[2].ptr, x->argv[2].len, 1, &by)) {
        resp_write_error(&x->w, "ERR value is not a valid float");
        return;
    }
    node_propose_argv(x, STORE_OP_INCRBYFLOAT, 0, 0, -1, x->argc - 1);
}

/* LCS's options; 0 after an error reply. */
struct lcs_opts {
    int getlen, getidx, withmatchlen;
    int64_t minmatchlen;
};

static int parse_lcs_opts(struct cmd_ctx *x, struct lcs_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (size_t j = 3; j < x->argc; j++) {
        const struct resp_arg *a = &x->argv[j];
        if (node_arg_is(a, "IDX")) {
            o->getidx = 1;
        } else if (node_arg_is(a, "LEN")) {
            o->getlen = 1;
        } else if (node_arg_is(a, "WITHMATCHLEN")) {
            o->withmatchlen = 1;
        } else if (node_arg_is(a, "MINMATCHLEN") && j + 1 < x->argc) {
            if (!node_arg_i64(x, ++j, &o->minmatchlen)) {
                return 0;
            }
            o->minmatchlen = HY_MAX(o->minmatchlen, 0);
        } else {
            node_reply_syntax_error(x);
            return 0;
        }
    }
    if (o->getidx && o->getlen) {
        resp_write_error(&x->w,
                         "ERR If you want both the length and indexes, please just use IDX.");
        return 0;
    }
    return 1;
}

/* One matching range of LCS IDX (inclusive bounds in a and in b). */
struct lcs_range {
    uint32_t a0, a1, b0, b1;
};

/* Walks the LCS table back from (alen, blen) as Redis does, filling result (idx bytes) and
 * the ranges (room for idx); returns how many ranges pass minmatchlen. */
static size_t lcs_walk(const uint32_t *dp, const uint8_t *a, uint32_t alen, const uint8_t *b,
                       uint32_t blen, int64_t minmatchlen, uint8_t *result,
                       struct lcs_range *ranges)
{
#define LCS(A, B) dp[(B) + (size_t)(A) * (blen + 1)]
    uint32_t idx = LCS(alen, blen), i = alen, j = blen;
    uint32_t as = alen, ae = 0, bs = 0, be = 0; /* as == alen: no range open */
    size_t n = 0;
    while (i > 0 && j > 0) {
        int emit = 0;
        if (a[i - 1] == b[j - 1]) {
            result[idx - 1] = a[i - 1];
            if (as == alen) {
                as = ae = i - 1;
                bs = be = j - 1;
            } else if (as == i && bs == j) {
                as--;
                bs--;
            } else {
                emit = 1;
            }
            if (as == 0 || bs == 0) {
                emit = 1;
            }
            idx--;
            i--;
            j--;
        } else {
            if (LCS(i - 1, j) > LCS(i, j - 1)) {
                i--;
            } else {
                j--;
            }
            emit = as != alen;
        }
        if (emit) {
            if (minmatchlen == 0 || (int64_t)(ae - as + 1) >= minmatchlen) {
                ranges[n++] = (struct lcs_range){as, ae, bs, be};
            }
            as = alen;
        }
    }
    return n;
#undef LCS
}

static void lcs_reply(struct cmd_ctx *x, const struct lcs_opts *o, uint32_t len,
                      const uint8_t *result, const struct lcs_range *ranges, size_t n)
{
    if (o->getlen) {
        resp_write_int(&x->w, len);
        return;
    }
    if (!o->getidx) {
        resp_write_bulk(&x->w, result, len);
        return;
    }
    resp_write_map(&x->w, 2);
    resp_write_bulk_str(&x->w, "matches");
    resp_write_array(&x->w, n);
    for (size_t k = 0; k < n; k++) {
        resp_write_array(&x->w, 2 + (size_t)o->withmatchlen);
        resp_write_array(&x->w, 2);
        resp_write_int(&x->w, ranges[k].a0);
        resp_write_int(&x->w, ranges[k].a1);
        resp_write_array(&x->w, 2);
        resp_write_int(&x->w, ranges[k].b0);
        resp_write_int(&x->w, ranges[k].b1);
        if (o->withmatchlen) {
            resp_write_int(&x->w, ranges[k].a1 - ranges[k].a0 + 1);
        }
    }
    resp_write_bulk_str(&x->w, "len");
    resp_write_int(&x->w, len);
}

/* The LCS table is (alen + 1) * (blen + 1) counters, as Redis's; beyond this many bytes the
 * command is refused rather than let one request take the node's memory. */
#define LCS_TABLE_BYTES_MAX (512ull * 1024 * 1024)

void cmd_lcs(struct cmd_ctx *x)
{
    const struct store_obj *oa = node_lookup(x, 1), *ob = node_lookup(x, 2);
    if ((oa != NULL && store_obj_type(oa) != STORE_STRING) ||
        (ob != NULL && store_obj_type(ob) != STORE_STRING)) {
        resp_write_error(&x->w, "ERR The specified keys must contain string values");
        return;
    }
    struct lcs_opts o;
    if (!parse_lcs_opts(x, &o)) {
        return;
    }
    const uint8_t *a = (const uint8_t *)"", *b = (const uint8_t *)"";
    size_t alen = 0, blen = 0;
    if (oa != NULL) {
        store_obj_string(oa, &a, &alen);
    }
    if (ob != NULL) {
        store_obj_string(ob, &b, &blen);
    }
    if (alen >= UINT32_MAX - 1 || blen >= UINT32_MAX - 1) {
        resp_write_error(&x->w, "ERR String too long for LCS");
        return;
    }
    uint64_t cells = (uint64_t)(alen + 1) * (blen + 1);
    if (cells > LCS_TABLE_BYTES_MAX / sizeof(uint32_t)) {
        resp_write_error(&x->w,
                         "ERR Insufficient memory, failed allocating transient memory for LCS");
        return;
    }
    uint32_t *dp = hy_xmalloc((size_t)cells * sizeof(uint32_t));
    for (size_t i = 0; i <= alen; i++) {
        for (size_t j = 0; j <= blen; j++) {
            uint32_t *c = &dp[j + i * (blen + 1)];
            if (i == 0 || j == 0) {
                *c = 0;
            } else if (a[i - 1] == b[j - 1]) {
                *c = dp[(j - 1) + (i - 1) * (blen + 1)] + 1;
            } else {
                *c = HY_MAX(dp[j + (i - 1) * (blen + 1)], dp[(j - 1) + i * (blen + 1)]);
            }
        }
    }
    uint32_t len = dp[cells - 1];
    uint8_t *result = hy_xmalloc(len + 1);
    struct lcs_range *ranges = hy_xmalloc((len + 1) * sizeof(*ranges));
    size_t n = lcs_walk(dp, a, (uint32_t)alen, b, (uint32_t)blen, o.minmatchlen, result, ranges);
    lcs_reply(x, &o, len, result, ranges, n);
    hy_free(ranges);
    hy_free(result);
    hy_free(dp);
}
