/*
 * cmd_list.c - list commands. Writes become STORE_OP_PUSH/POP/... entries (store.h); reads
 * walk the list in place. Argument errors are answered here, before anything is proposed, with
 * Redis 7.0's texts; errors that depend on the keyspace (WRONGTYPE, no such key) come from
 * apply, so they are the same on every replica.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define ERR_POSITIVE "ERR value is out of range, must be positive"

/* Proposes op with the arguments argv[idx[0]], argv[idx[1]], ... */
static void propose_picked(struct cmd_ctx *x, enum store_op op, uint32_t flags, int64_t incr,
                           const size_t *idx, size_t n)
{
    struct store_arg args[4];
    HY_ASSERT(n <= HY_ARRAY_LEN(args));
    for (size_t i = 0; i < n; i++) {
        args[i] = (struct store_arg){x->argv[idx[i]].ptr, x->argv[idx[i]].len};
    }
    struct store_entry e = {.op = op,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = incr,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
}

/* Proposes op with argv[first .. first + n) as the arguments. */
static void propose_range(struct cmd_ctx *x, enum store_op op, uint32_t flags, int64_t incr,
                          size_t first, size_t n)
{
    struct store_arg *args = hy_xmalloc(HY_MAX(n, 1) * sizeof(*args));
    for (size_t i = 0; i < n; i++) {
        args[i] = (struct store_arg){x->argv[first + i].ptr, x->argv[first + i].len};
    }
    struct store_entry e = {.op = op,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = incr,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

/* Parses a non-negative integer as Redis's getPositiveLongFromObjectOrReply. */
static int arg_positive(struct cmd_ctx *x, size_t i, int64_t *out)
{
    if (!node_arg_i64(x, i, out)) {
        return 0;
    }
    if (*out < 0) {
        resp_write_error(&x->w, ERR_POSITIVE);
        return 0;
    }
    return 1;
}

/* LEFT or RIGHT; replies a syntax error otherwise. */
static int arg_side(struct cmd_ctx *x, size_t i, int *right_out)
{
    if (node_arg_is(&x->argv[i], "LEFT")) {
        *right_out = 0;
    } else if (node_arg_is(&x->argv[i], "RIGHT")) {
        *right_out = 1;
    } else {
        node_reply_syntax_error(x);
        return 0;
    }
    return 1;
}

/* ---- writes --------------------------------------------------------------------------------- */

void cmd_lpush(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PUSH, 0, 0, -1, x->argc - 1);
}

void cmd_rpush(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PUSH, STORE_F_RIGHT, 0, -1, x->argc - 1);
}

void cmd_lpushx(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PUSH, STORE_F_XX, 0, -1, x->argc - 1);
}

void cmd_rpushx(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PUSH, STORE_F_RIGHT | STORE_F_XX, 0, -1, x->argc - 1);
}

static void list_pop(struct cmd_ctx *x, uint32_t flags)
{
    if (x->argc > 3) {
        node_reply_arity(&x->w, x->cmd->name);
        return;
    }
    int64_t count = -1;
    if (x->argc == 3 && !arg_positive(x, 2, &count)) {
        return;
    }
    node_propose_argv(x, STORE_OP_POP, flags, count, -1, 1);
}

void cmd_lpop(struct cmd_ctx *x)
{
    list_pop(x, 0);
}

void cmd_rpop(struct cmd_ctx *x)
{
    list_pop(x, STORE_F_RIGHT);
}

void cmd_lset(struct cmd_ctx *x)
{
    int64_t index;
    if (!node_arg_i64(x, 2, &index)) {
        return;
    }
    const size_t idx[] = {1, 3};
    propose_picked(x, STORE_OP_LSET, 0, index, idx, 2);
}

void cmd_linsert(struct cmd_ctx *x)
{
    uint32_t flags;
    if (node_arg_is(&x->argv[2], "BEFORE")) {
        flags = 0;
    } else if (node_arg_is(&x->argv[2], "AFTER")) {
        flags = STORE_F_RIGHT;
    } else {
        node_reply_syntax_error(x);
        return;
    }
    const size_t idx[] = {1, 3, 4};
    propose_picked(x, STORE_OP_LINSERT, flags, 0, idx, 3);
}

void cmd_lrem(struct cmd_ctx *x)
{
    int64_t count;
    if (!node_arg_i64(x, 2, &count)) {
        return;
    }
    const size_t idx[] = {1, 3};
    propose_picked(x, STORE_OP_LREM, 0, count, idx, 2);
}

void cmd_ltrim(struct cmd_ctx *x)
{
    int64_t start, stop;
    if (!node_arg_i64(x, 2, &start) || !node_arg_i64(x, 3, &stop)) {
        return;
    }
    node_propose_argv(x, STORE_OP_LTRIM, 0, 0, -1, 3);
}

void cmd_lmove(struct cmd_ctx *x)
{
    int from_right, to_right;
    if (!arg_side(x, 3, &from_right) || !arg_side(x, 4, &to_right)) {
        return;
    }
    uint32_t flags = (from_right ? STORE_F_RIGHT : 0) | (to_right ? STORE_F_DST_RIGHT : 0);
    node_propose_argv(x, STORE_OP_LMOVE, flags, 0, -1, 2);
}

void cmd_rpoplpush(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_LMOVE, STORE_F_RIGHT, 0, -1, 2);
}

/* numkeys at argv[1] as LMPOP/SINTERCARD parse it; 0 after replying the error. */
int node_arg_numkeys(struct cmd_ctx *x, size_t i, int64_t *out)
{
    if (!hy_parse_i64(x->argv[i].ptr, x->argv[i].len, out) || *out < 1) {
        resp_write_error(&x->w, "ERR numkeys should be greater than 0");
        return 0;
    }
    return 1;
}

void cmd_lmpop(struct cmd_ctx *x)
{
    int64_t numkeys, count = -1;
    int right;
    if (!node_arg_numkeys(x, 1, &numkeys)) {
        return;
    }
    if ((uint64_t)numkeys >= x->argc - 2) {
        node_reply_syntax_error(x); /* no room left for LEFT|RIGHT */
        return;
    }
    size_t where = 2 + (size_t)numkeys;
    if (!arg_side(x, where, &right)) {
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
    propose_range(x, STORE_OP_LMPOP, right ? STORE_F_RIGHT : 0, count == -1 ? 1 : count, 2,
                  (size_t)numkeys);
}

/* ---- reads ---------------------------------------------------------------------------------- */

static int list_lookup(struct cmd_ctx *x, const struct store_obj **o)
{
    return node_lookup_typed(x, 1, STORE_LIST, o);
}

static void write_elem(struct cmd_ctx *x, const struct store_obj *o, size_t i)
{
    const uint8_t *p;
    size_t len;
    store_list_at(o, i, &p, &len);
    resp_write_bulk(&x->w, p, len);
}

void cmd_llen(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (list_lookup(x, &o)) {
        resp_write_int(&x->w, o != NULL ? (int64_t)store_list_len(o) : 0);
    }
}

void cmd_lindex(struct cmd_ctx *x)
{
    const struct store_obj *o;
    int64_t index;
    if (!node_arg_i64(x, 2, &index) || !list_lookup(x, &o)) {
        return;
    }
    int64_t len = o != NULL ? (int64_t)store_list_len(o) : 0;
    if (index < 0) {
        index += len;
    }
    if (index < 0 || index >= len) {
        resp_write_null(&x->w);
        return;
    }
    write_elem(x, o, (size_t)index);
}

void cmd_lrange(struct cmd_ctx *x)
{
    const struct store_obj *o;
    int64_t start, stop;
    if (!node_arg_i64(x, 2, &start) || !node_arg_i64(x, 3, &stop) || !list_lookup(x, &o)) {
        return;
    }
    int64_t len = o != NULL ? (int64_t)store_list_len(o) : 0;
    start = start < 0 ? HY_MAX(start + len, 0) : start;
    stop = stop < 0 ? stop + len : stop;
    if (start > stop || start >= len) {
        resp_write_array(&x->w, 0);
        return;
    }
    stop = HY_MIN(stop, len - 1);
    resp_write_array(&x->w, (size_t)(stop - start + 1));
    for (int64_t i = start; i <= stop; i++) {
        write_elem(x, o, (size_t)i);
    }
}

struct lpos_opts {
    int64_t rank;   /* 1 = first match from the head; -1 = first from the tail */
    int64_t count;  /* -1 = not given (one reply, not an array); 0 = all */
    int64_t maxlen; /* 0 = no limit */
};

static int lpos_option(struct cmd_ctx *x, const struct resp_arg *a, int64_t v, struct lpos_opts *op)
{
    if (node_arg_is(a, "RANK")) {
        if (v == INT64_MIN) {
            resp_write_error(&x->w, "ERR value is out of range, value must between "
                                    "-9223372036854775807 and 9223372036854775807");
            return 0;
        }
        if (v == 0) {
            resp_write_error(&x->w, "ERR RANK can't be zero: use 1 to start from the first "
                                    "match, 2 from the second ... or use negative to start "
                                    "from the end of the list");
            return 0;
        }
        op->rank = v;
    } else if (node_arg_is(a, "COUNT")) {
        if (v < 0) {
            resp_write_error(&x->w, "ERR COUNT can't be negative");
            return 0;
        }
        op->count = v;
    } else {
        if (v < 0) {
            resp_write_error(&x->w, "ERR MAXLEN can't be negative");
            return 0;
        }
        op->maxlen = v;
    }
    return 1;
}

static int lpos_parse(struct cmd_ctx *x, struct lpos_opts *op)
{
    *op = (struct lpos_opts){1, -1, 0};
    for (size_t i = 3; i < x->argc; i += 2) {
        const struct resp_arg *a = &x->argv[i];
        int known = node_arg_is(a, "RANK") || node_arg_is(a, "COUNT") || node_arg_is(a, "MAXLEN");
        if (!known || i + 1 >= x->argc) {
            node_reply_syntax_error(x);
            return 0;
        }
        int64_t v;
        if (!node_arg_i64(x, i + 1, &v) || !lpos_option(x, a, v, op)) {
            return 0;
        }
    }
    return 1;
}

void cmd_lpos(struct cmd_ctx *x)
{
    struct lpos_opts op;
    const struct store_obj *o;
    if (!lpos_parse(x, &op) || !list_lookup(x, &o)) {
        return;
    }
    size_t len = o != NULL ? store_list_len(o) : 0;
    int from_tail = op.rank < 0;
    uint64_t skip = (from_tail ? (uint64_t)(-op.rank) : (uint64_t)op.rank) - 1;
    uint64_t want = op.count < 0 ? 1 : op.count == 0 ? UINT64_MAX : (uint64_t)op.count;
    uint64_t limit = op.maxlen == 0 ? UINT64_MAX : (uint64_t)op.maxlen;
    int64_t *found = NULL;
    size_t nfound = 0, cap = 0;
    const struct resp_arg *needle = &x->argv[2];
    for (uint64_t seen = 0; seen < len && seen < limit && nfound < want; seen++) {
        size_t i = from_tail ? len - 1 - (size_t)seen : (size_t)seen;
        const uint8_t *p;
        size_t plen;
        store_list_at(o, i, &p, &plen);
        if (plen != needle->len || (plen > 0 && memcmp(p, needle->ptr, plen) != 0)) {
            continue;
        }
        if (skip > 0) {
            skip--;
            continue;
        }
        if (nfound == cap) {
            cap = cap ? cap * 2 : 8;
            found = hy_xrealloc(found, cap * sizeof(*found));
        }
        found[nfound++] = (int64_t)i;
    }
    if (op.count < 0) {
        nfound > 0 ? resp_write_int(&x->w, found[0]) : resp_write_null(&x->w);
    } else {
        resp_write_array(&x->w, nfound);
        for (size_t i = 0; i < nfound; i++) {
            resp_write_int(&x->w, found[i]);
        }
    }
    hy_free(found);
}
