/*
 * store_watch.c - WATCH versions and the EXEC entry (store.h, "transactions").
 *
 * Everything here runs inside store_apply and reads only the entry and the store, so every
 * replica reaches the same versions and the same transaction outcome.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/prng.h"
#include "store/store.h"
#include "store/store_int.h"

_Static_assert((STORE_WATCH_BUCKETS & (STORE_WATCH_BUCKETS - 1)) == 0,
               "the bucket count is a power of two");

#define EXEC_WATCH_META 9 /* version (8, LE) + alive (1) */

static size_t bucket_of(const uint8_t *k, size_t klen)
{
    /* CRC32C rather than the table's hash: that one is seeded per process. */
    return hy_crc32c(0, k, klen) & (STORE_WATCH_BUCKETS - 1);
}

uint64_t store_watch_version(const struct store *s, const uint8_t *key, size_t klen)
{
    return s->watch_ver == NULL ? 0 : s->watch_ver[bucket_of(key, klen)];
}

static void touch(struct store *s, const uint8_t *k, size_t klen)
{
    if (s->watch_ver == NULL) {
        s->watch_ver = hy_xcalloc(STORE_WATCH_BUCKETS, sizeof(*s->watch_ver));
    }
    size_t b = bucket_of(k, klen);
    uint64_t bit = 1ull << (b % 64), *live = &s->watch_live[b / 64];
    if (s->watch_seq != 0) {
        s->watch_used += (*live & bit) == 0;
        *live |= bit;
    } else {
        s->watch_used -= (*live & bit) != 0;
        *live &= ~bit;
    }
    s->watch_ver[b] = s->watch_seq; /* written, never read here (watch_live) */
}

/* The arguments of an op that name keys it may write: [first, last] stepping by step, with
 * last counted from the end when negative (-1 = the last argument). */
struct key_span {
    int8_t first, last, step;
};

static const struct key_span key_spans[STORE_OP_COUNT] = {
    [STORE_OP_SET] = {0, 0, 1},
    [STORE_OP_MSET] = {0, -1, 2},
    [STORE_OP_DEL] = {0, -1, 1},
    [STORE_OP_EXPIRE] = {0, 0, 1},
    [STORE_OP_PERSIST] = {0, 0, 1},
    [STORE_OP_RENAME] = {0, 1, 1},
    [STORE_OP_INCRBY] = {0, 0, 1},
    [STORE_OP_INCRBYFLOAT] = {0, 0, 1},
    [STORE_OP_APPEND] = {0, 0, 1},
    [STORE_OP_SETRANGE] = {0, 0, 1},
    [STORE_OP_GETDEL] = {0, 0, 1},
    [STORE_OP_GETEX] = {0, 0, 1},
    [STORE_OP_HSET] = {0, 0, 1},
    [STORE_OP_HSETNX] = {0, 0, 1},
    [STORE_OP_HDEL] = {0, 0, 1},
    [STORE_OP_HINCRBY] = {0, 0, 1},
    [STORE_OP_HINCRBYFLOAT] = {0, 0, 1},
    [STORE_OP_EXPIRED] = {0, -1, 1},
    [STORE_OP_EVICT] = {0, -1, 1},
    [STORE_OP_PUSH] = {0, 0, 1},
    [STORE_OP_POP] = {0, 0, 1},
    [STORE_OP_LSET] = {0, 0, 1},
    [STORE_OP_LINSERT] = {0, 0, 1},
    [STORE_OP_LREM] = {0, 0, 1},
    [STORE_OP_LTRIM] = {0, 0, 1},
    [STORE_OP_LMOVE] = {0, 1, 1},
    [STORE_OP_LMPOP] = {0, -1, 1},
    [STORE_OP_SADD] = {0, 0, 1},
    [STORE_OP_SREM] = {0, 0, 1},
    [STORE_OP_SMOVE] = {0, 1, 1},
    [STORE_OP_SPOP] = {0, 0, 1},
    [STORE_OP_SSTORE] = {0, 0, 1},
    [STORE_OP_ZADD] = {0, 0, 1},
    [STORE_OP_ZREM] = {0, 0, 1},
    [STORE_OP_ZPOP] = {0, 0, 1},
    [STORE_OP_ZMPOP] = {0, -1, 1},
    [STORE_OP_ZREMRANGE] = {0, 0, 1},
    [STORE_OP_ZSTORE] = {0, 0, 1},
    [STORE_OP_ZRANGESTORE] = {0, 0, 1},
    [STORE_OP_SETBIT] = {0, 0, 1},
    [STORE_OP_BITOP] = {0, 0, 1},
    [STORE_OP_BITFIELD] = {0, 0, 1},
    [STORE_OP_COPY] = {1, 1, 1},
    /* SORT's STORE destination sits among its options: every argument counts (more
     * conflicts, never fewer). */
    [STORE_OP_SORT] = {0, -1, 1},
    [STORE_OP_PFADD] = {0, 0, 1},
    [STORE_OP_PFCOUNT] = {0, -1, 1},
    [STORE_OP_PFMERGE] = {0, 0, 1},
    [STORE_OP_RESTORE] = {0, 0, 1},
    [STORE_OP_WAN_PUT] = {0, 0, 1},
    [STORE_OP_GEOSEARCH] = {0, 1, 1},
    [STORE_OP_XADD] = {0, 0, 1},
    [STORE_OP_XTRIM] = {0, 0, 1},
    [STORE_OP_XDEL] = {0, 0, 1},
    [STORE_OP_XSETID] = {0, 0, 1},
    [STORE_OP_XGROUP] = {0, 0, 1},
    /* The keys, and the IDs after them (more conflicts, never fewer). */
    [STORE_OP_XREADGROUP] = {2, -1, 1},
    [STORE_OP_XACK] = {0, 0, 1},
    [STORE_OP_XCLAIM] = {0, 0, 1},
    [STORE_OP_XAUTOCLAIM] = {0, 0, 1},
};

static int has_keys(enum store_op op)
{
    const struct key_span *k = &key_spans[op];
    return k->step != 0;
}

static void touch_cb(void *ctx, struct htab_node *n)
{
    const uint8_t *k;
    size_t klen;
    store__key((const struct store_obj *)n, &k, &klen);
    touch(ctx, k, klen);
}

void store__watch_before(struct store *s, const struct store_entry *e)
{
    s->watch_seq++;
    s->watch_skip = 0;
    if (e->op == STORE_OP_FLUSHALL) {
        /* As Redis's touchAllWatchedKeysInDb: the keys that exist are touched, and a watch
         * on a missing key survives a FLUSHALL. */
        htab_foreach(&s->keys, touch_cb, s);
    }
}

void store__watch_after(struct store *s, const struct store_entry *e)
{
    uint64_t skip = s->watch_skip;
    s->watch_skip = 0;
    if (!has_keys(e->op) || e->argc == 0) {
        return;
    }
    const struct key_span *k = &key_spans[e->op];
    size_t last = k->last >= 0 ? (size_t)k->last : e->argc - (size_t)(-k->last);
    for (size_t i = (size_t)k->first; i <= last && i < e->argc; i += (size_t)k->step) {
        if (i >= 64 || !(skip & (1ull << i))) {
            touch(s, e->argv[i].ptr, e->argv[i].len);
        }
    }
}

size_t store__written_keys(const struct store_entry *e, uint64_t skip, uint32_t *idx, size_t cap)
{
    if (!has_keys(e->op) || e->argc == 0) {
        return 0;
    }
    const struct key_span *k = &key_spans[e->op];
    size_t last = k->last >= 0 ? (size_t)k->last : e->argc - (size_t)(-k->last);
    size_t n = 0;
    for (size_t i = (size_t)k->first; i <= last && i < e->argc && n < cap; i += (size_t)k->step) {
        if (i >= 64 || !(skip & (1ull << i))) {
            idx[n++] = (uint32_t)i;
        }
    }
    return n;
}

void store__watch_free(struct store *s)
{
    hy_free(s->watch_ver);
    s->watch_ver = NULL;
    s->watch_used = 0;
    memset(s->watch_live, 0, sizeof(s->watch_live));
}

void store__watch_adopt(struct store *s, uint64_t seq, uint64_t *ver)
{
    store__watch_free(s);
    s->watch_ver = ver;
    s->watch_seq = seq;
    for (size_t i = 0; ver != NULL && i < STORE_WATCH_BUCKETS; i++) {
        s->watch_used += ver[i] != 0;
        s->watch_live[i / 64] |= (uint64_t)(ver[i] != 0) << (i % 64);
    }
}

void store_set_exec_reader(struct store *s, store_exec_read_fn fn, void *ctx)
{
    s->exec_read = fn;
    s->exec_read_ctx = ctx;
}

/* ---- the EXEC entry -------------------------------------------------------------------------- */

static uint32_t exec_nwatch(const struct store_entry *e)
{
    return hy_load_u32le(e->argv[1].ptr);
}

int store__exec_shape_ok(const struct store_entry *e)
{
    if (e->argc < 2 || e->argv[0].len != 8 || e->argv[1].len != 4) {
        return 0;
    }
    uint32_t nwatch = exec_nwatch(e);
    if (nwatch > (e->argc - 2) / 2) {
        return 0;
    }
    for (uint32_t i = 0; i < nwatch; i++) {
        if (e->argv[3 + 2 * i].len != EXEC_WATCH_META) {
            return 0;
        }
    }
    return 1;
}

/* 1 when no watched key changed since its WATCH. */
static int exec_watches_hold(struct store *s, const struct store_entry *e)
{
    uint32_t nwatch = exec_nwatch(e);
    for (uint32_t i = 0; i < nwatch; i++) {
        const struct store_arg *k = &e->argv[2 + 2 * i], *meta = &e->argv[3 + 2 * i];
        if (store_watch_version(s, k->ptr, k->len) != hy_load_u64le(meta->ptr)) {
            return 0;
        }
        /* Redis 7.0 aborts when a key alive at WATCH has expired since, even if nothing
         * deleted it yet (lazy expiry). */
        if (meta->ptr[8] != 0 && store_peek(s, k->ptr, k->len, e->time_ms) == NULL) {
            return 0;
        }
    }
    return 1;
}

static void item_error(struct resp_writer *w, const char *msg)
{
    if (w != NULL) {
        resp_write_error(w, msg);
    }
}

static void exec_write_item(struct store *s, const uint8_t *p, size_t len, struct resp_writer *w)
{
    struct store_entry inner;
    if (store_entry_decode(p, len, &inner) != HY_OK) {
        item_error(w, "ERR malformed transaction item");
        return;
    }
    enum store_op op = inner.op;
    store_entry_release(&inner);
    if (op == STORE_OP_EXEC || op == STORE_OP_SESSION_OPEN || op == STORE_OP_MEMBER_SET ||
        op == STORE_OP_ACL_SETUSER || op == STORE_OP_ACL_DELUSER) {
        item_error(w, "ERR command not allowed inside a transaction");
        return;
    }
    int rc = store_apply(s, p, len, w);
    HY_ASSERT(rc == HY_OK); /* it decoded just above */
}

void store__op_exec(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if (s->exec_depth > 0) {
        item_error(w, "ERR command not allowed inside a transaction");
        return;
    }
    if (!exec_watches_hold(s, e)) {
        if (w != NULL) {
            resp_write_null_array(w);
        }
        return;
    }
    size_t first = 2 + 2 * (size_t)exec_nwatch(e);
    if (w != NULL) {
        resp_write_array(w, e->argc - first);
    }
    s->exec_depth++;
    uint64_t seed = hy_load_u64le(e->argv[0].ptr);
    for (size_t i = first; i < e->argc; i++) {
        const uint8_t *p = e->argv[i].ptr;
        size_t len = e->argv[i].len;
        uint8_t kind = len > 0 ? p[0] : 0;
        if (kind == 'W') {
            exec_write_item(s, p + 1, len - 1, w);
        } else if (kind == 'L') {
            if (w != NULL) {
                hy_buf_append(w->out, p + 1, len - 1);
            }
        } else if (kind == 'R') {
            if (w == NULL) {
                continue; /* a read changes nothing: only a wanted reply needs it */
            }
            if (s->exec_read == NULL) {
                resp_write_error(w, "ERR reads inside a transaction need the node");
                continue;
            }
            s->exec_read(s->exec_read_ctx, s, p + 1, len - 1, e->time_ms,
                         seed ^ (0x9e3779b97f4a7c15ULL * (i + 1)), w);
        } else {
            item_error(w, "ERR malformed transaction item");
        }
    }
    s->exec_depth--;
}

void store_exec_read_only(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    HY_ASSERT(e->op == STORE_OP_EXEC && store__exec_shape_ok(e));
    for (size_t i = 2 + 2 * (size_t)exec_nwatch(e); i < e->argc; i++) {
        HY_ASSERT(e->argv[i].len == 0 || e->argv[i].ptr[0] != 'W');
    }
    store__op_exec(s, e, w); /* reads and replies only: the store does not change */
}

void store_exec_cmd_encode(size_t argc, const struct store_arg *argv, struct hy_buf *out)
{
    varint_append(out, argc);
    for (size_t i = 0; i < argc; i++) {
        varint_append(out, argv[i].len);
        hy_buf_append(out, argv[i].ptr, argv[i].len);
    }
}

int store_exec_cmd_decode(const uint8_t *buf, size_t len, struct store_arg **argv_out,
                          size_t *argc_out)
{
    size_t off = 0;
    if (!store_exec_cmd_decode_prefix(buf, len, argv_out, argc_out, &off)) {
        return 0;
    }
    if (off != len) {
        hy_free(*argv_out);
        return 0;
    }
    return 1;
}

int store_exec_cmd_decode_prefix(const uint8_t *buf, size_t len, struct store_arg **argv_out,
                                 size_t *argc_out, size_t *off_inout)
{
    struct rd r = {buf, len, 0, 0};
    uint64_t argc = rd_varint(&r);
    if (r.bad || argc == 0 || argc > len) { /* an argument takes a length byte at least */
        return 0;
    }
    struct store_arg *argv = hy_xmalloc((size_t)argc * sizeof(*argv));
    for (uint64_t i = 0; i < argc; i++) {
        argv[i].ptr = rd_bytes(&r, &argv[i].len);
    }
    if (r.bad) {
        hy_free(argv);
        return 0;
    }
    *off_inout += r.off;
    *argv_out = argv;
    *argc_out = (size_t)argc;
    return 1;
}

/* ---- snapshots: after the ACL users, from version 6 ------------------------------------------ */

void store__watch_encode(const struct store *s, struct hy_buf *out)
{
    varint_append(out, s->watch_seq);
    /* The count is kept as buckets are touched: one scan, which stops at the last bucket used
     * (the simulator digests every replica's store after each apply: two full scans of the
     * 4,096 buckets were 7% of its run). */
    varint_append(out, s->watch_used);
    size_t left = s->watch_used;
    for (size_t i = 0; s->watch_ver != NULL && left > 0 && i < STORE_WATCH_BUCKETS; i++) {
        if (s->watch_ver[i] != 0) {
            varint_append(out, i);
            varint_append(out, s->watch_ver[i]);
            left--;
        }
    }
}

int store__watch_decode(const uint8_t *buf, size_t len, size_t *used_out, uint64_t *seq_out,
                        uint64_t **ver_out)
{
    struct rd r = {buf, len, 0, 0};
    uint64_t seq = rd_varint(&r);
    uint64_t n = rd_varint(&r);
    if (r.bad || n > STORE_WATCH_BUCKETS) {
        return 0;
    }
    uint64_t *ver = n > 0 ? hy_xcalloc(STORE_WATCH_BUCKETS, sizeof(*ver)) : NULL;
    uint64_t prev = 0;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        uint64_t b = rd_varint(&r), v = rd_varint(&r);
        /* Ascending buckets, each named once with a version the counter has passed. */
        if (r.bad || b >= STORE_WATCH_BUCKETS || (i > 0 && b <= prev) || v == 0 || v > seq) {
            r.bad = 1;
            break;
        }
        ver[b] = v;
        prev = b;
    }
    if (r.bad) {
        hy_free(ver);
        return 0;
    }
    *used_out = r.off;
    *seq_out = seq;
    *ver_out = ver;
    return 1;
}
