/*
 * cmd_bits.c - strings as bit arrays: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
 * BITFIELD_RO. Reads run here against x->store; writes check their arguments as Redis does
 * (so errors come before any lookup) and propose an entry that store_bits.c applies. Also
 * HyperLogLog's PFADD PFCOUNT PFMERGE (HLLs are strings too), applied by store_hll.c.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define ERR_BIT_OFFSET "ERR bit offset is not an integer or out of range"

/* The string bytes of key argv[i] (NULL, 0 when absent). Returns 0 after a WRONGTYPE reply,
 * 1 when the key is absent, 2 when it holds a string. */
static int string_arg(struct cmd_ctx *x, size_t i, const uint8_t **p_out, size_t *len_out)
{
    const struct store_obj *o;
    *p_out = NULL;
    *len_out = 0;
    if (!node_lookup_typed(x, i, STORE_STRING, &o)) {
        return 0;
    }
    if (o == NULL) {
        return 1;
    }
    store_obj_string(o, p_out, len_out);
    return 2;
}

void cmd_setbit(struct cmd_ctx *x)
{
    uint64_t off;
    int64_t on;
    if (!store_bit_offset_parse(x->argv[2].ptr, x->argv[2].len, 0, 0, &off)) {
        resp_write_error(&x->w, ERR_BIT_OFFSET);
        return;
    }
    if (!hy_parse_i64(x->argv[3].ptr, x->argv[3].len, &on) || (on & ~1)) {
        resp_write_error(&x->w, "ERR bit is not an integer or out of range");
        return;
    }
    node_propose_argv(x, STORE_OP_SETBIT, 0, 0, -1, 3);
}

void cmd_getbit(struct cmd_ctx *x)
{
    uint64_t off;
    if (!store_bit_offset_parse(x->argv[2].ptr, x->argv[2].len, 0, 0, &off)) {
        resp_write_error(&x->w, ERR_BIT_OFFSET);
        return;
    }
    const uint8_t *p;
    size_t len;
    if (!string_arg(x, 1, &p, &len)) {
        return;
    }
    int bit = (off >> 3) < len ? (p[off >> 3] >> (7 - (off & 7))) & 1 : 0;
    resp_write_int(&x->w, bit);
}

/* BITCOUNT/BITPOS's range [start, end] over totlen units, negative indexes from the end and
 * clamped as Redis does. Returns 0 when the range is empty. */
static int clamp_range(int64_t *start, int64_t *end, int64_t totlen)
{
    if (*start < 0) {
        *start = HY_MAX(totlen + *start, 0);
    }
    if (*end < 0) {
        *end = HY_MAX(totlen + *end, 0);
    }
    if (*end >= totlen) {
        *end = totlen - 1;
    }
    return *start <= *end;
}

/* Parses the optional BYTE|BIT unit at argv[i]; 0 after a syntax error reply. */
static int parse_unit(struct cmd_ctx *x, size_t i, int *isbit)
{
    *isbit = 0;
    if (i >= x->argc || node_arg_is(&x->argv[i], "BYTE")) {
        return 1;
    }
    if (node_arg_is(&x->argv[i], "BIT")) {
        *isbit = 1;
        return 1;
    }
    node_reply_syntax_error(x);
    return 0;
}

static int bit_at(const uint8_t *p, int64_t i)
{
    return (p[i >> 3] >> (7 - (i & 7))) & 1;
}

static int64_t popcount_bits(const uint8_t *p, int64_t from, int64_t to)
{
    int64_t n = 0;
    while (from <= to && (from & 7) != 0) {
        n += bit_at(p, from++);
    }
    while (from + 7 <= to) {
        n += __builtin_popcount(p[from >> 3]);
        from += 8;
    }
    while (from <= to) {
        n += bit_at(p, from++);
    }
    return n;
}

void cmd_bitcount(struct cmd_ctx *x)
{
    int64_t start = 0, end = -1;
    int isbit = 0;
    if (x->argc == 3 || x->argc > 5) {
        node_reply_syntax_error(x);
        return;
    }
    if (x->argc >= 4 &&
        (!node_arg_i64(x, 2, &start) || !node_arg_i64(x, 3, &end) || !parse_unit(x, 4, &isbit))) {
        return;
    }
    const uint8_t *p;
    size_t len;
    int found = string_arg(x, 1, &p, &len);
    if (found == 0) {
        return;
    }
    if (found == 1 || (start < 0 && end < 0 && start > end)) {
        resp_write_int(&x->w, 0);
        return;
    }
    int64_t totlen = (int64_t)len * (isbit ? 8 : 1);
    if (!clamp_range(&start, &end, totlen)) {
        resp_write_int(&x->w, 0);
        return;
    }
    if (!isbit) {
        start *= 8;
        end = end * 8 + 7;
    }
    resp_write_int(&x->w, popcount_bits(p, start, end));
}

/* The first bit equal to `bit` in bits [from, to], or -1. */
static int64_t find_bit(const uint8_t *p, int64_t from, int64_t to, int bit)
{
    uint8_t skip = bit ? 0x00 : 0xff;
    while (from <= to) {
        if ((from & 7) == 0 && from + 7 <= to && p[from >> 3] == skip) {
            from += 8;
            continue;
        }
        if (bit_at(p, from) == bit) {
            return from;
        }
        from++;
    }
    return -1;
}

void cmd_bitpos(struct cmd_ctx *x)
{
    int64_t bit, start = 0, end = -1;
    int isbit = 0, end_given = x->argc >= 5;
    if (!node_arg_i64(x, 2, &bit)) {
        return;
    }
    if (bit != 0 && bit != 1) {
        resp_write_error(&x->w, "ERR The bit argument must be 1 or 0.");
        return;
    }
    const uint8_t *p;
    size_t len;
    int found = string_arg(x, 1, &p, &len);
    if (found == 0) {
        return;
    }
    if (found == 1) {
        resp_write_int(&x->w, bit ? -1 : 0);
        return;
    }
    if (x->argc > 6) {
        node_reply_syntax_error(x);
        return;
    }
    if ((x->argc >= 4 && !node_arg_i64(x, 3, &start)) || !parse_unit(x, 5, &isbit) ||
        (end_given && !node_arg_i64(x, 4, &end))) {
        return;
    }
    int64_t totlen = (int64_t)len * (isbit ? 8 : 1);
    if (!clamp_range(&start, &end, totlen)) {
        resp_write_int(&x->w, -1);
        return;
    }
    if (!isbit) {
        start *= 8;
        end = end * 8 + 7;
    }
    int64_t pos = find_bit(p, start, end, (int)bit);
    if (pos < 0 && bit == 0 && !end_given) {
        pos = end + 1; /* past the string: its infinite zero padding */
    }
    resp_write_int(&x->w, pos);
}

void cmd_bitop(struct cmd_ctx *x)
{
    static const char *const kinds[] = {"AND", "OR", "XOR", "NOT"};
    int64_t kind = -1;
    for (size_t k = 0; k < HY_ARRAY_LEN(kinds); k++) {
        if (node_arg_is(&x->argv[1], kinds[k])) {
            kind = (int64_t)k;
        }
    }
    if (kind < 0) {
        node_reply_syntax_error(x);
        return;
    }
    if (kind == 3 && x->argc != 4) {
        resp_write_error(&x->w, "ERR BITOP NOT must be called with a single source key.");
        return;
    }
    /* The entry's arguments are [dst, srcs...]: argv from 2 on. */
    size_t nargs = x->argc - 2;
    struct store_arg *args = hy_xmalloc(nargs * sizeof(*args));
    for (size_t i = 0; i < nargs; i++) {
        args[i].ptr = x->argv[i + 2].ptr;
        args[i].len = x->argv[i + 2].len;
    }
    struct store_entry e = {.op = STORE_OP_BITOP,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = kind,
                            .argc = (uint32_t)nargs,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

static void bitfield_generic(struct cmd_ctx *x, int ro)
{
    size_t n = x->argc - 2;
    struct store_arg *args = hy_xmalloc((n + 1) * sizeof(*args));
    struct store_bf_op *ops = hy_xmalloc((n + 1) * sizeof(*ops));
    for (size_t i = 0; i < n; i++) {
        args[i].ptr = x->argv[i + 2].ptr;
        args[i].len = x->argv[i + 2].len;
    }
    int writes;
    uint64_t highest;
    const char *err = NULL;
    long nops = store_bitfield_parse(args, n, ops, &writes, &highest, &err);
    if (nops < 0) {
        resp_write_error(&x->w, err);
    } else if (writes && ro) {
        resp_write_error(&x->w, "ERR BITFIELD_RO only supports the GET subcommand");
    } else if (!ro) {
        /* Even GETs alone go through the log: BITFIELD is a write command, so it may run while
         * this client's earlier writes are still pending, and must read after them. */
        node_propose_argv(x, STORE_OP_BITFIELD, 0, 0, -1, x->argc - 1);
    } else {
        const uint8_t *p;
        size_t len;
        if (string_arg(x, 1, &p, &len)) {
            store_bitfield_read(p, len, ops, (size_t)nops, &x->w);
        }
    }
    hy_free(ops);
    hy_free(args);
}

void cmd_bitfield(struct cmd_ctx *x)
{
    bitfield_generic(x, 0);
}

void cmd_bitfield_ro(struct cmd_ctx *x)
{
    bitfield_generic(x, 1);
}

/* HyperLogLog: the store checks and executes (store_hll.c); every one is a log entry. */
void cmd_pfadd(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PFADD, 0, 0, -1, x->argc - 1);
}

void cmd_pfcount(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PFCOUNT, 0, 0, -1, x->argc - 1);
}

void cmd_pfmerge(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PFMERGE, 0, 0, -1, x->argc - 1);
}
