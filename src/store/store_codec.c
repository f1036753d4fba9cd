/*
 * store_codec.c - the store's two byte formats: log entries and snapshots.
 * Both are specified in docs/disk-format.md; every decoder here is bounds-checked and treats
 * any inconsistency as HY_ECORRUPT, never as a crash.
 */
#include <math.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "store/store.h"
#include "store/store_int.h"

#define ENTRY_VERSION    1
#define SNAP_MAGIC       "HYKS"
/* 11: hits in the versions per key (HIGHER_HITS); 10: the owner's section (the WAN outbox); 9:
 * encoding thresholds and versions per key (active-active WAN links); 8: WAN positions; 7: streams,
 * Lua scripts and function libraries; 6: WATCH versions; 5: ACL users; 4: lists, sets, sorted sets
 * and session windows; 3: members; 2: sessions */
#define SNAP_VERSION     11
#define SNAP_HEADER_SIZE 16 /* magic 4, version 4, key count 8 */
#define SNAP_CRC_SIZE    4

/* ---- log entries ---------------------------------------------------------------------------- */

struct op_shape {
    uint32_t argc_min;
    uint32_t argc_max;
    uint8_t parity; /* 0: any; 1: argc odd; 2: argc even */
    uint32_t flags; /* allowed flags */
};

/* Op numbers are on disk (docs/disk-format.md): new ops are only ever appended. */
_Static_assert(STORE_OP_MEMBER_SET == 23 && STORE_OP_PUSH == 24 && STORE_OP_SSTORE == 36 &&
                   STORE_OP_ZREMRANGE == 41 && STORE_OP_ZRANGESTORE == 43 &&
                   STORE_OP_SESSION_REQW == 44 && STORE_OP_SETBIT == 45 &&
                   STORE_OP_BITFIELD == 47 && STORE_OP_COPY == 48 && STORE_OP_SORT == 49 &&
                   STORE_OP_PFMERGE == 52 && STORE_OP_ACL_SETUSER == 53 &&
                   STORE_OP_ACL_DELUSER == 54 && STORE_OP_EXEC == 55 && STORE_OP_ACL_LOAD == 56 &&
                   STORE_OP_RESTORE == 57 && STORE_OP_GEOSEARCH == 58 && STORE_OP_EVAL == 59 &&
                   STORE_OP_SCRIPT_FLUSH == 61 && STORE_OP_FCALL == 62 &&
                   STORE_OP_FUNCTION_FLUSH == 65 && STORE_OP_XADD == 66 &&
                   STORE_OP_XAUTOCLAIM == 74 && STORE_OP_FUNCTION_RESTORE == 75 &&
                   STORE_OP_WAN_APPLY == 76 && STORE_OP_ENCODING_SET == 77 &&
                   STORE_OP_WAN_HLC == 78 && STORE_OP_WAN_PUT == 79 && STORE_OP_WAN_FENCE == 80 &&
                   STORE_OP_WAN_HITS == 81,
               "store op numbers are part of the log format");

#define ANY UINT32_MAX
static const struct op_shape op_shapes[STORE_OP_COUNT] = {
    [STORE_OP_NOOP] = {0, 0, 0, 0},
    [STORE_OP_SET] = {2, 2, 0,
                      STORE_F_NX | STORE_F_XX | STORE_F_GET | STORE_F_KEEPTTL | STORE_F_REPLY_INT},
    [STORE_OP_MSET] = {2, ANY, 2, STORE_F_NX},
    [STORE_OP_DEL] = {1, ANY, 0, 0},
    [STORE_OP_EXPIRE] = {1, 1, 0, STORE_F_NX | STORE_F_XX | STORE_F_GT | STORE_F_LT},
    [STORE_OP_PERSIST] = {1, 1, 0, 0},
    [STORE_OP_RENAME] = {2, 2, 0, STORE_F_NX},
    [STORE_OP_INCRBY] = {1, 1, 0, 0},
    [STORE_OP_INCRBYFLOAT] = {2, 2, 0, 0},
    [STORE_OP_APPEND] = {2, 2, 0, 0},
    [STORE_OP_SETRANGE] = {2, 2, 0, 0},
    [STORE_OP_GETDEL] = {1, 1, 0, 0},
    [STORE_OP_GETEX] = {1, 1, 0, STORE_F_PERSIST},
    [STORE_OP_HSET] = {3, ANY, 1, STORE_F_REPLY_OK},
    [STORE_OP_HSETNX] = {3, 3, 0, 0},
    [STORE_OP_HDEL] = {2, ANY, 0, 0},
    [STORE_OP_HINCRBY] = {2, 2, 0, 0},
    [STORE_OP_HINCRBYFLOAT] = {3, 3, 0, 0},
    [STORE_OP_FLUSHALL] = {0, 0, 0, 0},
    [STORE_OP_EXPIRED] = {1, ANY, 0, 0},
    [STORE_OP_EVICT] = {1, ANY, 0, 0},
    [STORE_OP_SESSION_OPEN] = {0, 0, 0, 0},
    [STORE_OP_SESSION_REQ] = {2, 2, 0, STORE_F_RESP3},
    [STORE_OP_RESTORE] = {2, 2, 0, STORE_F_REPLACE},
    [STORE_OP_GEOSEARCH] = {3, 4, 0, 0},
    [STORE_OP_MEMBER_SET] = {3, 3, 0, STORE_F_NX},
    [STORE_OP_PUSH] = {2, ANY, 0, STORE_F_RIGHT | STORE_F_XX},
    [STORE_OP_POP] = {1, 1, 0, STORE_F_RIGHT},
    [STORE_OP_LSET] = {2, 2, 0, 0},
    [STORE_OP_LINSERT] = {3, 3, 0, STORE_F_RIGHT},
    [STORE_OP_LREM] = {2, 2, 0, 0},
    [STORE_OP_LTRIM] = {3, 3, 0, 0},
    [STORE_OP_LMOVE] = {2, 2, 0, STORE_F_RIGHT | STORE_F_DST_RIGHT},
    [STORE_OP_LMPOP] = {1, ANY, 0, STORE_F_RIGHT | STORE_F_FLAT},
    [STORE_OP_SADD] = {2, ANY, 0, 0},
    [STORE_OP_SREM] = {2, ANY, 0, 0},
    [STORE_OP_SMOVE] = {3, 3, 0, 0},
    [STORE_OP_SPOP] = {2, ANY, 0, 0},
    [STORE_OP_SSTORE] = {2, ANY, 0, 0},
    [STORE_OP_ZADD] = {3, ANY, 1,
                       STORE_F_NX | STORE_F_XX | STORE_F_GT | STORE_F_LT | STORE_F_CH |
                           STORE_F_INCR},
    [STORE_OP_ZREM] = {2, ANY, 0, 0},
    [STORE_OP_ZPOP] = {1, 1, 0, STORE_F_RIGHT},
    [STORE_OP_ZMPOP] = {1, ANY, 0, STORE_F_RIGHT | STORE_F_FLAT},
    [STORE_OP_ZREMRANGE] = {3, 3, 0, 0},
    [STORE_OP_ZSTORE] = {3, ANY, 1, 0},
    [STORE_OP_ZRANGESTORE] = {6, 6, 0, STORE_F_RIGHT},
    [STORE_OP_SESSION_REQW] = {2, 2, 0, STORE_F_RESP3},
    [STORE_OP_SETBIT] = {3, 3, 0, 0},
    [STORE_OP_BITOP] = {2, ANY, 0, 0},
    [STORE_OP_BITFIELD] = {1, ANY, 0, 0},
    [STORE_OP_COPY] = {2, 2, 0, STORE_F_REPLACE},
    [STORE_OP_SORT] = {1, ANY, 0, 0},
    [STORE_OP_PFADD] = {1, ANY, 0, 0},
    [STORE_OP_PFCOUNT] = {1, ANY, 0, 0},
    [STORE_OP_PFMERGE] = {1, ANY, 0, 0},
    [STORE_OP_ACL_SETUSER] = {1, ANY, 0, 0},
    [STORE_OP_ACL_DELUSER] = {1, ANY, 0, 0},
    [STORE_OP_EXEC] = {2, ANY, 0, 0}, /* and store__exec_shape_ok */
    [STORE_OP_ACL_LOAD] = {0, ANY, 0, 0},
    [STORE_OP_EVAL] = {3, ANY, 0, 0}, /* and store__eval_shape_ok */
    [STORE_OP_SCRIPT_LOAD] = {1, 1, 0, 0},
    [STORE_OP_SCRIPT_FLUSH] = {0, 0, 0, 0},
    [STORE_OP_FCALL] = {4, ANY, 0, 0}, /* and store__fcall_shape_ok */
    [STORE_OP_FUNCTION_LOAD] = {4, ANY, 2, STORE_F_REPLACE},
    [STORE_OP_FUNCTION_DELETE] = {1, 1, 0, 0},
    [STORE_OP_FUNCTION_FLUSH] = {0, 0, 0, 0},
    [STORE_OP_XADD] = {2, ANY, 0, 0},
    [STORE_OP_XTRIM] = {1, ANY, 0, 0},
    [STORE_OP_XDEL] = {1, ANY, 0, 0},
    [STORE_OP_XSETID] = {2, ANY, 0, 0},
    [STORE_OP_XGROUP] = {2, ANY, 0, 0},
    [STORE_OP_XREADGROUP] = {4, ANY, 2, 0},
    [STORE_OP_XACK] = {2, ANY, 0, 0},
    [STORE_OP_XCLAIM] = {4, ANY, 0, 0},
    [STORE_OP_XAUTOCLAIM] = {5, ANY, 0, 0},
    [STORE_OP_FUNCTION_RESTORE] = {0, ANY, 0, 0}, /* and store__function_restore_shape_ok */
    [STORE_OP_WAN_APPLY] = {1, 1, 0, 0},
    [STORE_OP_ENCODING_SET] = {2, ANY, 2, 0},
    [STORE_OP_WAN_HLC] = {1, 1, 0, 0},
    [STORE_OP_WAN_PUT] = {3, 3, 0, 0},
    [STORE_OP_WAN_FENCE] = {1, 2, 0, 0},
    [STORE_OP_WAN_HITS] = {2, ANY, 2, 0},
};
#undef ANY

static int entry_shape_ok(const struct store_entry *e)
{
    const struct op_shape *sh = &op_shapes[e->op];
    if (e->argc < sh->argc_min || e->argc > sh->argc_max || (e->flags & ~sh->flags) != 0) {
        return 0;
    }
    if ((sh->parity == 1 && e->argc % 2 == 0) || (sh->parity == 2 && e->argc % 2 == 1)) {
        return 0;
    }
    if (e->op == STORE_OP_EXEC && !store__exec_shape_ok(e)) {
        return 0;
    }
    if (e->op == STORE_OP_EVAL && !store__eval_shape_ok(e)) {
        return 0;
    }
    if (e->op == STORE_OP_FCALL && !store__fcall_shape_ok(e)) {
        return 0;
    }
    if (e->op == STORE_OP_FUNCTION_RESTORE && !store__function_restore_shape_ok(e)) {
        return 0;
    }
    /* Only EXPIRE may carry a time in the past (it deletes); elsewhere -1 means "none". */
    if (e->op != STORE_OP_EXPIRE && e->expire_at_ms < -1) {
        return 0;
    }
    return 1;
}

void store_entry_encode(const struct store_entry *e, struct hy_buf *out)
{
    HY_ASSERT(e->op < STORE_OP_COUNT && entry_shape_ok(e));
    /* Room for the whole entry reserved once: the header's five varints, then each argument's
     * length varint and bytes. */
    size_t bound = 2 + 6 * VARINT_MAX;
    for (uint32_t i = 0; i < e->argc; i++) {
        bound += VARINT_MAX + e->argv[i].len;
        HY_ASSERT(bound > e->argv[i].len); /* no overflow */
    }
    uint8_t *start = hy_buf_reserve(out, bound), *p = start;
    *p++ = ENTRY_VERSION;
    *p++ = (uint8_t)e->op;
    p += varint_put(p, e->flags);
    p += varint_put(p, e->time_ms);
    p += varint_put(p, zigzag(e->expire_at_ms));
    p += varint_put(p, zigzag(e->incr));
    p += varint_put(p, e->argc);
    for (uint32_t i = 0; i < e->argc; i++) {
        p += varint_put(p, e->argv[i].len);
        if (e->argv[i].len > 0) {
            memcpy(p, e->argv[i].ptr, e->argv[i].len);
            p += e->argv[i].len;
        }
    }
    out->len += (size_t)(p - start);
}

/* The arguments go into stack[] when they fit (nstack of them), else into an allocation. */
static int entry_decode_args(struct rd *r, struct store_entry *e, struct store_arg *stack,
                             size_t nstack)
{
    uint64_t argc = rd_varint(r);
    /* Every argument takes at least one length byte: bound the array by the input left. */
    if (r->bad || argc > r->len - r->off || argc > UINT32_MAX) {
        return HY_ECORRUPT;
    }
    e->argc = (uint32_t)argc;
    struct store_arg *argv = argc <= nstack ? stack : hy_xmalloc(HY_MAX(argc, 1) * sizeof(*argv));
    for (uint32_t i = 0; i < e->argc; i++) {
        argv[i].ptr = rd_bytes(r, &argv[i].len);
    }
    e->argv = argv;
    if (r->bad || r->off != r->len || !entry_shape_ok(e)) {
        if (argv != stack) {
            hy_free(argv);
        }
        e->argv = NULL;
        return HY_ECORRUPT;
    }
    return HY_OK;
}

int store__entry_first_arg(const uint8_t *buf, size_t len, const uint8_t **arg_out,
                           size_t *arg_len_out)
{
    struct rd r = {buf, len, 0, 0};
    if (rd_u8(&r) != ENTRY_VERSION) {
        return 0;
    }
    (void)rd_u8(&r); /* op, flags, time, expiry, increment */
    for (int i = 0; i < 4; i++) {
        (void)rd_varint(&r);
    }
    uint64_t argc = rd_varint(&r);
    if (r.bad || argc == 0) {
        return 0;
    }
    *arg_out = rd_bytes(&r, arg_len_out);
    return !r.bad;
}

int store_entry_decode(const uint8_t *buf, size_t len, struct store_entry *e_out)
{
    return store__entry_decode_into(buf, len, e_out, NULL, 0);
}

int store__entry_decode_into(const uint8_t *buf, size_t len, struct store_entry *e_out,
                             struct store_arg *stack, size_t nstack)
{
    struct rd r = {buf, len, 0, 0};
    memset(e_out, 0, sizeof(*e_out));
    if (rd_u8(&r) != ENTRY_VERSION) {
        return HY_ECORRUPT;
    }
    uint8_t op = rd_u8(&r);
    uint64_t flags = rd_varint(&r);
    e_out->time_ms = rd_varint(&r);
    e_out->expire_at_ms = unzigzag(rd_varint(&r));
    e_out->incr = unzigzag(rd_varint(&r));
    if (r.bad || op >= STORE_OP_COUNT || flags > UINT32_MAX) {
        return HY_ECORRUPT;
    }
    e_out->op = (enum store_op)op;
    e_out->flags = (uint32_t)flags;
    return entry_decode_args(&r, e_out, stack, nstack);
}

void store_entry_release(struct store_entry *e)
{
    hy_free((void *)e->argv);
    e->argv = NULL;
    e->argc = 0;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, HY_MIN(alen, blen));
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen;
}

struct field_ref {
    const uint8_t *f;
    size_t flen;
    const uint8_t *v;
    size_t vlen;
};

static int field_cmp(const void *pa, const void *pb)
{
    const struct field_ref *a = pa, *b = pb;
    return bytes_cmp(a->f, a->flen, b->f, b->flen);
}

struct field_list {
    struct field_ref *v;
    size_t n;
};

static void field_collect_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v,
                             size_t vlen)
{
    struct field_list *l = ctx;
    l->v[l->n++] = (struct field_ref){f, flen, v, vlen};
}

struct collect {
    struct htab_node **v;
    size_t n;
};

static void collect_cb(void *ctx, struct htab_node *n)
{
    struct collect *c = ctx;
    c->v[c->n++] = n;
}

/* The nodes of t in table order (an hy_xmalloc'd array the caller frees). The caller sorts
 * them: that makes a snapshot a function of the keyspace alone, not of hash seeds or table
 * history. */
static struct htab_node **table_nodes(const struct htab *t)
{
    struct collect c = {hy_xmalloc(HY_MAX(htab_count(t), 1) * sizeof(*c.v)), 0};
    htab_foreach(t, collect_cb, &c);
    HY_ASSERT(c.n == htab_count(t));
    return c.v;
}

static void snap_put_hash(const struct hobj *h, struct hy_buf *out)
{
    size_t n = store__hobj_count(h);
    struct field_list l = {hy_xmalloc(HY_MAX(n, 1) * sizeof(*l.v)), 0};
    store__hobj_foreach(h, field_collect_cb, &l);
    HY_ASSERT(l.n == n);
    qsort(l.v, n, sizeof(*l.v), field_cmp);
    varint_append(out, n);
    for (size_t i = 0; i < n; i++) {
        varint_append_bytes(out, l.v[i].f, l.v[i].flen);
        varint_append_bytes(out, l.v[i].v, l.v[i].vlen);
    }
    hy_free(l.v);
}

static void snap_put_list(const struct lobj *l, struct hy_buf *out)
{
    size_t n = store__lobj_count(l);
    varint_append(out, n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t len;
        store__lobj_get(l, i, &p, &len);
        varint_append_bytes(out, p, len);
    }
}

/* An intset's members as text, copied ([u8 len][digits] at off[i]): the view a read builds
 * stays with the value, and a snapshot encoded in the event loop must not leave one behind
 * on every intset (it doubled their memory, uncounted). */
struct text_list {
    struct hy_buf buf;
    size_t *off;
    size_t n;
};

static void text_collect_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    struct text_list *t = ctx;
    HY_ASSERT(flen < 256);
    uint8_t len = (uint8_t)flen;
    t->off[t->n++] = t->buf.len;
    hy_buf_append(&t->buf, &len, 1);
    hy_buf_append(&t->buf, f, flen);
}

/* A set is written as its members in byte order, each once. */
static void snap_put_set(const struct hobj *h, struct hy_buf *out)
{
    size_t n = store__hobj_count(h);
    struct field_list l = {hy_xmalloc(HY_MAX(n, 1) * sizeof(*l.v)), 0};
    struct text_list t = {.off = NULL};
    if (store__hobj_intset(h)) {
        hy_buf_init(&t.buf);
        t.off = hy_xmalloc(HY_MAX(n, 1) * sizeof(*t.off));
        store__hobj_members_each(h, text_collect_cb, &t);
        HY_ASSERT(t.n == n);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = t.buf.data + t.off[i];
            l.v[l.n++] = (struct field_ref){p + 1, p[0], (const uint8_t *)"", 0};
        }
    } else {
        store__hobj_foreach(h, field_collect_cb, &l);
    }
    HY_ASSERT(l.n == n);
    qsort(l.v, n, sizeof(*l.v), field_cmp);
    varint_append(out, n);
    for (size_t i = 0; i < n; i++) {
        varint_append_bytes(out, l.v[i].f, l.v[i].flen);
    }
    hy_free(l.v);
    if (t.off != NULL) {
        hy_free(t.off);
        hy_buf_free(&t.buf);
    }
}

/* A sorted set: its members in rank order, each with its score's 8 bytes (little-endian). */
static void snap_put_zset(const struct zobj *z, struct hy_buf *out)
{
    size_t n = store__zobj_count(z);
    varint_append(out, n);
    for (size_t i = 0; i < n; i++) {
        double score;
        const uint8_t *m;
        size_t mlen;
        store__zobj_at(z, i, &score, &m, &mlen);
        varint_append_bytes(out, m, mlen);
        uint64_t bits;
        memcpy(&bits, &score, sizeof(bits));
        hy_buf_append_u64le(out, bits);
    }
}

static void *snap_get_object(struct rd *r, uint8_t type, uint64_t seed);

static void snap_put_entry(const struct store_obj *e, struct hy_buf *out)
{
    const uint8_t *k;
    size_t klen;
    store__key(e, &k, &klen);
    hy_buf_append_u8(out, (uint8_t)se_type(e));
    varint_append(out, zigzag(store__expire(e)));
    varint_append_bytes(out, k, klen);
    if (se_type(e) == STORE_STRING) {
        const uint8_t *v;
        size_t vlen;
        store_obj_string(e, &v, &vlen);
        varint_append_bytes(out, v, vlen);
    } else if (se_type(e) == STORE_HASH) {
        snap_put_hash(store__hobj(e), out);
    } else if (se_type(e) == STORE_LIST) {
        snap_put_list(store__lobj(e), out);
    } else if (se_type(e) == STORE_ZSET) {
        snap_put_zset(store__zobj(e), out);
    } else if (se_type(e) == STORE_STREAM) {
        store__xobj_encode(store__xobj(e), out);
    } else {
        snap_put_set(store__hobj(e), out);
    }
}

void *store__object_clone(const struct store_obj *e, uint64_t seed)
{
    HY_ASSERT(se_type(e) != STORE_STRING);
    struct hy_buf buf;
    hy_buf_init(&buf);
    if (se_type(e) == STORE_HASH) {
        snap_put_hash(store__hobj(e), &buf);
    } else if (se_type(e) == STORE_LIST) {
        snap_put_list(store__lobj(e), &buf);
    } else if (se_type(e) == STORE_ZSET) {
        snap_put_zset(store__zobj(e), &buf);
    } else if (se_type(e) == STORE_STREAM) {
        store__xobj_encode(store__xobj(e), &buf);
    } else {
        snap_put_set(store__hobj(e), &buf);
    }
    struct rd r = {buf.data, buf.len, 0, 0};
    void *obj = snap_get_object(&r, (uint8_t)se_type(e), seed);
    HY_ASSERT(obj != NULL && !r.bad && r.off == r.len); /* our own encoding decodes */
    hy_buf_free(&buf);
    return obj;
}

/* A key with its bytes located once: sorting compares these directly, instead of decoding
 * each entry's layout on every comparison (that decoding dominated snapshot time). */
struct key_ref {
    const uint8_t *k;
    size_t klen;
    const struct store_obj *e;
};

static int key_ref_cmp(const void *pa, const void *pb)
{
    const struct key_ref *a = pa, *b = pb;
    return bytes_cmp(a->k, a->klen, b->k, b->klen);
}

static struct key_ref *sorted_keys(const struct store *s, size_t n)
{
    struct htab_node **nodes = table_nodes(&s->keys);
    struct key_ref *refs = hy_xmalloc(HY_MAX(n, 1) * sizeof(*refs));
    for (size_t i = 0; i < n; i++) {
        refs[i].e = (const struct store_obj *)nodes[i];
        store__key(refs[i].e, &refs[i].k, &refs[i].klen);
    }
    hy_free(nodes);
    qsort(refs, n, sizeof(*refs), key_ref_cmp);
    return refs;
}

/* The encoding thresholds in a snapshot (version 9): their count, then each as a zigzag
 * varint, in this order. A later version may add some at the end. */
#define SNAP_ENCODING_COUNT 11

static int64_t *encoding_field(struct store_encoding *enc, size_t i)
{
    int64_t *f[SNAP_ENCODING_COUNT] = {
        &enc->hash_entries,  &enc->hash_value,     &enc->set_intset_entries, &enc->set_entries,
        &enc->set_value,     &enc->zset_entries,   &enc->zset_value,         &enc->list_size,
        &enc->list_compress, &enc->stream_entries, &enc->stream_bytes};
    return f[i];
}

static void encoding_put(const struct store *s, struct hy_buf *out)
{
    struct store_encoding enc = *store_encoding(s);
    varint_append(out, SNAP_ENCODING_COUNT);
    for (size_t i = 0; i < SNAP_ENCODING_COUNT; i++) {
        int64_t v = *encoding_field(&enc, i);
        varint_append(out, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
    }
}

/* Reads the thresholds into *enc (defaults first); 0 when malformed or out of range. */
static int encoding_get(struct rd *r, struct store_encoding *enc)
{
    *enc = (struct store_encoding)STORE_ENCODING_DEFAULT;
    uint64_t n = rd_varint(r);
    if (r->bad || n != SNAP_ENCODING_COUNT) {
        return 0;
    }
    for (size_t i = 0; i < SNAP_ENCODING_COUNT && !r->bad; i++) {
        uint64_t z = rd_varint(r);
        int64_t v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        if (v > INT32_MAX || v < (i == 7 ? INT32_MIN : 0)) {
            return 0;
        }
        *encoding_field(enc, i) = v;
    }
    return !r->bad;
}

void store_set_snapshot_extra(struct store *s, store_extra_encode_fn encode,
                              store_extra_load_fn load, void *ctx)
{
    s->extra_encode = encode;
    s->extra_load = load;
    s->extra_ctx = ctx;
}

static void put_entry_cb(void *ctx, struct htab_node *n)
{
    snap_put_entry((const struct store_obj *)n, ctx);
}

/* canonical 1 (store_digest): the records in ascending key order and the owner's section left
 * empty, so the bytes are a function of the content alone. canonical 0 (a snapshot): the
 * records in table order, which depends on the hash seed and the table's history; sorting
 * every key was a third of a snapshot's CPU. */
static void snapshot_encode(const struct store *s, struct hy_buf *out, int canonical)
{
    size_t start = out->len;
    size_t n = htab_count(&s->keys);
    hy_buf_append(out, SNAP_MAGIC, 4);
    hy_buf_append_u32le(out, SNAP_VERSION);
    hy_buf_append_u64le(out, n);
    if (canonical) {
        struct key_ref *keys = sorted_keys(s, n);
        for (size_t i = 0; i < n; i++) {
            snap_put_entry(keys[i].e, out);
        }
        hy_free(keys);
    } else {
        htab_foreach(&s->keys, put_entry_cb, out);
    }
    store__sessions_encode(s, out);
    store__members_encode(s, out);
    store__acl_encode(s, out);
    store__watch_encode(s, out);
    store__scripts_encode(s, out);
    store__libraries_encode(s, out);
    store__wans_encode(s, out);
    encoding_put(s, out);
    store__hlc_encode(s, out);
    size_t at = out->len;
    hy_buf_append_u32le(out, 0);
    if (!canonical && s->extra_encode != NULL) {
        s->extra_encode(s->extra_ctx, out);
        HY_ASSERT(out->len - at - 4 <= UINT32_MAX);
        hy_store_u32le(out->data + at, (uint32_t)(out->len - at - 4));
    }
    hy_buf_append_u32le(out, hy_crc32c(0, out->data + start, out->len - start));
}

void store_snapshot_encode(const struct store *s, struct hy_buf *out)
{
    snapshot_encode(s, out, 0);
}

void store_digest_encode(const struct store *s, struct hy_buf *out)
{
    snapshot_encode(s, out, 1);
}

/* Reads a hash value's fields into a new object; NULL when malformed. */
static struct hobj *snap_get_hash(struct rd *r, uint64_t seed)
{
    uint64_t n = rd_varint(r);
    /* A field takes at least two length bytes; an empty hash is not a valid value. */
    if (r->bad || n == 0 || n > (r->len - r->off) / 2) {
        r->bad = 1;
        return NULL;
    }
    struct hobj *h = store__hobj_new(seed);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t flen, vlen;
        const uint8_t *f = rd_bytes(r, &flen);
        const uint8_t *v = rd_bytes(r, &vlen);
        if (!r->bad && !store__hobj_set(h, f, flen, v, vlen)) {
            r->bad = 1; /* duplicate field */
        }
    }
    if (r->bad) {
        store__hobj_free(h);
        return NULL;
    }
    return h;
}

/* Reads a list's elements into a new object; NULL when malformed (an empty list included). */
static struct lobj *snap_get_list(struct rd *r)
{
    uint64_t n = rd_varint(r);
    if (r->bad || n == 0 || n > r->len - r->off) { /* an element takes a length byte at least */
        r->bad = 1;
        return NULL;
    }
    struct lobj *l = store__lobj_new();
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t len;
        const uint8_t *p = rd_bytes(r, &len);
        if (!r->bad && len > STORE_STRING_BYTES_MAX) {
            r->bad = 1;
        }
        if (!r->bad) {
            store__lobj_insert(l, store__lobj_count(l), store__lelem_new(p, len), NULL);
        }
    }
    if (r->bad) {
        store__lobj_free(l);
        return NULL;
    }
    return l;
}

/* Reads a set's members; NULL when malformed (empty, or a member twice). */
static struct hobj *snap_get_set(struct rd *r, uint64_t seed)
{
    uint64_t n = rd_varint(r);
    if (r->bad || n == 0 || n > r->len - r->off) {
        r->bad = 1;
        return NULL;
    }
    struct hobj *h = store__hobj_new_set(seed, 1); /* an intset while its members allow */
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t mlen;
        const uint8_t *m = rd_bytes(r, &mlen);
        if (!r->bad && !store__hobj_set(h, m, mlen, NULL, 0)) {
            r->bad = 1;
        }
    }
    if (r->bad) {
        store__hobj_free(h);
        return NULL;
    }
    return h;
}

/* Reads a sorted set; NULL when malformed (empty, a member twice, a NaN score). */
static struct zobj *snap_get_zset(struct rd *r, uint64_t seed)
{
    uint64_t n = rd_varint(r);
    if (r->bad || n == 0 || n > (r->len - r->off) / 9) { /* a member takes 9 bytes at least */
        r->bad = 1;
        return NULL;
    }
    struct zobj *z = store__zobj_new(seed);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        size_t mlen;
        const uint8_t *m = rd_bytes(r, &mlen);
        if (r->bad || r->len - r->off < 8) {
            r->bad = 1;
            break;
        }
        uint64_t bits = hy_load_u64le(r->p + r->off);
        r->off += 8;
        double score;
        memcpy(&score, &bits, sizeof(score));
        if (isnan(score) || mlen > UINT32_MAX || store__zobj_has(z, m, mlen)) {
            r->bad = 1;
            break;
        }
        store__zobj_insert(z, score, m, mlen);
    }
    if (r->bad) {
        store__zobj_free(z);
        return NULL;
    }
    return z;
}

/* Reads a non-string value of the given type; NULL when malformed. */
static void *snap_get_object(struct rd *r, uint8_t type, uint64_t seed)
{
    switch (type) {
    case STORE_HASH: return snap_get_hash(r, seed);
    case STORE_LIST: return snap_get_list(r);
    case STORE_SET: return snap_get_set(r, seed);
    case STORE_ZSET: return snap_get_zset(r, seed);
    case STORE_STREAM: return store__xobj_decode(r, seed);
    default: return NULL;
    }
}

/* Reads one record into tmp; returns 0 when malformed. Lists and sets exist from version 4. */
static int snap_get_entry(struct rd *r, struct store *tmp, uint32_t version)
{
    uint8_t type = rd_u8(r);
    int64_t at = unzigzag(rd_varint(r));
    size_t klen, vlen = 0;
    const uint8_t *k = rd_bytes(r, &klen);
    const uint8_t *v = NULL;
    uint8_t type_max = version >= 7 ? STORE_STREAM : version >= 4 ? STORE_ZSET : STORE_HASH;
    if (r->bad || type < STORE_STRING || type > type_max || at < -1 ||
        htab_find(&tmp->keys, k, klen) != NULL) {
        return 0;
    }
    void *obj = NULL;
    if (type == STORE_STRING) {
        v = rd_bytes(r, &vlen);
        if (r->bad || vlen > STORE_STRING_BYTES_MAX) {
            return 0;
        }
    } else if ((obj = snap_get_object(r, type, tmp->hash_seed)) == NULL) {
        return 0;
    } else if (type == STORE_SET) {
        vlen = store__hobj_payload(obj); /* the members' room in the entry */
    }
    struct store_obj *e = store__entry_new((enum store_type)type, at, k, klen, vlen);
    if (obj != NULL) {
        store__set_vobj(e, obj);
    } else if (vlen > 0) {
        memcpy(store__value_ptr(e), v, vlen);
    }
    store__link(tmp, e);
    return 1;
}

static int snap_check_frame(const uint8_t *buf, size_t len, uint64_t *count_out)
{
    if (len < SNAP_HEADER_SIZE + SNAP_CRC_SIZE || memcmp(buf, SNAP_MAGIC, 4) != 0 ||
        hy_load_u32le(buf + 4) < 1 || hy_load_u32le(buf + 4) > SNAP_VERSION) {
        return 0;
    }
    size_t body = len - SNAP_CRC_SIZE;
    if (hy_crc32c(0, buf, body) != hy_load_u32le(buf + body)) {
        return 0;
    }
    *count_out = hy_load_u64le(buf + 8);
    /* A record takes at least 4 bytes (type, expiry, key length, value length). */
    return *count_out <= (body - SNAP_HEADER_SIZE) / 4;
}

void store_clear(struct store *s)
{
    /* An empty version 1 snapshot: no keys, and none of what later versions added (sessions,
     * the address book, users, scripts), all of which it leaves empty. */
    uint8_t empty[SNAP_HEADER_SIZE + SNAP_CRC_SIZE];
    memcpy(empty, SNAP_MAGIC, 4);
    hy_store_u32le(empty + 4, 1);
    hy_store_u64le(empty + 8, 0);
    hy_store_u32le(empty + SNAP_HEADER_SIZE, hy_crc32c(0, empty, SNAP_HEADER_SIZE));
    int rc = store_snapshot_decode(s, empty, sizeof(empty));
    HY_ASSERT(rc == HY_OK);
}

int store_snapshot_decode(struct store *s, const uint8_t *buf, size_t len)
{
    uint64_t count;
    if (!snap_check_frame(buf, len, &count)) {
        return HY_ECORRUPT;
    }
    /* Build the new keyspace on the side and swap only when all of it decoded. */
    struct store tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.hash_seed = s->hash_seed;
    htab_init(&tmp.keys, store__entry_key_fn, s->hash_seed);
    if (count > 0) {
        htab_presize(&tmp.keys, (size_t)count);
    }
    struct rd r = {buf, len - SNAP_CRC_SIZE, SNAP_HEADER_SIZE, 0};
    for (uint64_t i = 0; i < count; i++) {
        if (!snap_get_entry(&r, &tmp, hy_load_u32le(buf + 4))) {
            r.bad = 1;
            break;
        }
    }
    struct store_sessions *sessions = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 2) {
        size_t used = 0;
        sessions =
            store__sessions_decode(buf + r.off, r.len - r.off, hy_load_u32le(buf + 4), &used);
        r.bad = sessions == NULL;
        r.off += used;
    }
    struct store_members *members = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 3) {
        size_t used = 0;
        r.bad = !store__members_decode(buf + r.off, r.len - r.off, &used, &members);
        r.off += used;
    }
    struct store_acl *acl = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 5) {
        size_t used = 0;
        r.bad = !store__acl_decode(buf + r.off, r.len - r.off, &used, &acl);
        r.off += used;
    }
    uint64_t watch_seq = 0, *watch_ver = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 6) {
        size_t used = 0;
        r.bad = !store__watch_decode(buf + r.off, r.len - r.off, &used, &watch_seq, &watch_ver);
        r.off += used;
    }
    struct store_scripts *scripts = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 7) {
        size_t used = 0;
        r.bad = !store__scripts_decode(buf + r.off, r.len - r.off, &used, &scripts);
        r.off += used;
    }
    struct store_libraries *libraries = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 7) {
        size_t used = 0;
        r.bad = !store__libraries_decode(buf + r.off, r.len - r.off, &used, &libraries);
        r.off += used;
    }
    struct store_wans *wans = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 8) {
        size_t used = 0;
        r.bad = !store__wans_decode(buf + r.off, r.len - r.off, &used, &wans);
        r.off += used;
    }
    /* Older snapshots: Redis 7.0's defaults (their thresholds were each node's setting). */
    struct store_encoding enc = STORE_ENCODING_DEFAULT;
    if (!r.bad && hy_load_u32le(buf + 4) >= 9) {
        r.bad = !encoding_get(&r, &enc);
    }
    struct store_hlc *hlc = NULL;
    if (!r.bad && hy_load_u32le(buf + 4) >= 9) {
        size_t used = 0;
        r.bad = !store__hlc_decode(buf + r.off, r.len - r.off, s->hash_seed,
                                   hy_load_u32le(buf + 4) >= 11, &used, &hlc);
        r.off += used;
    }
    const uint8_t *extra = NULL;
    size_t extra_len = 0;
    if (!r.bad && hy_load_u32le(buf + 4) >= 10) {
        if (r.len - r.off < 4 || hy_load_u32le(buf + r.off) > r.len - r.off - 4) {
            r.bad = 1;
        } else {
            extra_len = hy_load_u32le(buf + r.off);
            extra = buf + r.off + 4;
            r.off += 4 + extra_len;
        }
    }
    if (!r.bad && r.off == r.len && extra_len > 0 && s->extra_load != NULL &&
        !s->extra_load(s->extra_ctx, extra, extra_len)) {
        r.bad = 1;
    }
    if (r.bad || r.off != r.len) {
        tmp.hlc = hlc;
        store__hlc_free(&tmp);
        tmp.wans = wans;
        store__wans_free(&tmp);
        tmp.scripts = scripts;
        store__scripts_free(&tmp);
        tmp.libraries = libraries;
        store__libraries_free(&tmp);
        hy_free(watch_ver);
        tmp.acl = acl;
        store__acl_free(&tmp);
        store__flush(&tmp);
        tmp.sessions = sessions;
        store__sessions_free(&tmp);
        tmp.members = members;
        store__members_free(&tmp);
        return HY_ECORRUPT;
    }
    store__sessions_replace(s, sessions);
    store__members_replace(s, members);
    store__acl_replace(s, acl);
    /* A snapshot older than version 6 has no versions: every bucket starts at 0 (replicas
     * that replayed those entries instead hold others; mixing the two only changes which
     * EXECs a WATCH aborts during an upgrade). */
    store__watch_adopt(s, watch_seq, watch_ver);
    store__scripts_replace(s, scripts);
    store__libraries_replace(s, libraries);
    store__wans_replace(s, wans);
    s->cfg.encoding = enc;
    store__hlc_replace(s, hlc);
    store__flush(s);
    s->keys = tmp.keys;
    s->vol = tmp.vol;
    s->vol_count = tmp.vol_count;
    s->vol_cap = tmp.vol_cap;
    s->obj_bytes = tmp.obj_bytes;
    return HY_OK;
}

uint64_t store_digest(const struct store *s)
{
    struct hy_buf b;
    hy_buf_init(&b);
    store_digest_encode(s, &b);
    uint64_t h = 14695981039346656037ull; /* FNV-1a: the encoding is already canonical */
    for (size_t i = 0; i < b.len; i++) {
        h = (h ^ b.data[i]) * 1099511628211ull;
    }
    hy_buf_free(&b);
    return h;
}

/* ---- DUMP payloads ---------------------------------------------------------------------------
 *
 * A value travels in the snapshot's own encoding (snap_put_entry's value part), framed by its
 * type byte in front and the format version and CRC32C behind, the shape of Redis's DUMP
 * (type, value, RDB version, CRC64). A new type (streams) needs only its snapshot encoder and
 * decoder (snap_put_entry and snap_get_object): DUMP and RESTORE then carry it unchanged, with
 * dump_type_ok below widened to accept its type byte. */

#define DUMP_TRAILER_SIZE 6 /* version 2, CRC32C 4 */

/* The type bytes a payload may hold. */
static int dump_type_ok(uint8_t type)
{
    return type >= STORE_STRING && type <= STORE_STREAM;
}

/* A small hash keeps its fields in insertion order (as Redis's listpack, whose order HGETALL
 * shows): its payload keeps that order, so a restored copy answers HGETALL alike. Built in
 * that order again, it is small again: the payload of a restored copy is the same bytes. */
static void dump_put_hash_ordered(const struct hobj *h, struct hy_buf *out)
{
    size_t n = store__hobj_count(h);
    struct field_list l = {hy_xmalloc(HY_MAX(n, 1) * sizeof(*l.v)), 0};
    store__hobj_foreach(h, field_collect_cb, &l);
    HY_ASSERT(l.n == n);
    varint_append(out, n);
    for (size_t i = 0; i < n; i++) {
        varint_append_bytes(out, l.v[i].f, l.v[i].flen);
        varint_append_bytes(out, l.v[i].v, l.v[i].vlen);
    }
    hy_free(l.v);
}

void store_dump(const struct store_obj *o, struct hy_buf *out)
{
    size_t start = out->len;
    hy_buf_append_u8(out, (uint8_t)se_type(o));
    if (se_type(o) == STORE_STRING) {
        const uint8_t *v;
        size_t vlen;
        store_obj_string(o, &v, &vlen);
        varint_append_bytes(out, v, vlen);
    } else if (se_type(o) == STORE_HASH && store__hobj_compact(store__hobj(o))) {
        dump_put_hash_ordered(store__hobj(o), out);
    } else if (se_type(o) == STORE_HASH) {
        snap_put_hash(store__hobj(o), out);
    } else if (se_type(o) == STORE_LIST) {
        snap_put_list(store__lobj(o), out);
    } else if (se_type(o) == STORE_ZSET) {
        snap_put_zset(store__zobj(o), out);
    } else if (se_type(o) == STORE_STREAM) {
        store__xobj_encode(store__xobj(o), out);
    } else {
        snap_put_set(store__hobj(o), out);
    }
    uint8_t version[2] = {STORE_DUMP_VERSION & 0xff, STORE_DUMP_VERSION >> 8};
    hy_buf_append(out, version, sizeof(version));
    hy_buf_append_u32le(out, hy_crc32c(0, out->data + start, out->len - start));
}

/* Checks the frame: length, version and checksum. Returns the body's length (type byte and
 * value), or 0 when the frame is wrong. */
static size_t dump_frame(const uint8_t *buf, size_t len)
{
    if (buf == NULL || len < 1 + 1 + DUMP_TRAILER_SIZE) { /* type and a length byte at least */
        return 0;
    }
    size_t body = len - DUMP_TRAILER_SIZE;
    unsigned version = (unsigned)buf[body] | (unsigned)buf[body + 1] << 8;
    if (version < 1 || version > STORE_DUMP_VERSION) {
        return 0;
    }
    if (hy_crc32c(0, buf, body + 2) != hy_load_u32le(buf + body + 2)) {
        return 0;
    }
    return body;
}

int store__dump_load(const uint8_t *buf, size_t len, uint64_t seed, const uint8_t *k, size_t klen,
                     int64_t at, struct store_obj **e_out)
{
    size_t body = dump_frame(buf, len);
    if (body == 0) {
        return STORE_DUMP_BAD_CHECKSUM;
    }
    struct rd r = {buf, body, 1, 0};
    uint8_t type = buf[0];
    if (!dump_type_ok(type)) {
        return STORE_DUMP_BAD_DATA;
    }
    const uint8_t *v = NULL;
    size_t vlen = 0;
    void *obj = NULL;
    if (type == STORE_STRING) {
        v = rd_bytes(&r, &vlen);
        if (r.bad || vlen > STORE_STRING_BYTES_MAX || r.off != r.len) {
            return STORE_DUMP_BAD_DATA;
        }
    } else if ((obj = snap_get_object(&r, type, seed)) == NULL) {
        return STORE_DUMP_BAD_DATA;
    } else if (type == STORE_SET) {
        vlen = store__hobj_payload(obj); /* the members' room in the entry */
    }
    struct store_obj *e = store__entry_new((enum store_type)type, at, k, klen, vlen);
    if (obj != NULL) {
        store__set_vobj(e, obj);
    } else if (vlen > 0) {
        memcpy(store__value_ptr(e), v, vlen);
    }
    if (r.off != r.len) { /* bytes after the value */
        store__entry_free(e);
        return STORE_DUMP_BAD_DATA;
    }
    *e_out = e;
    return STORE_DUMP_OK;
}

int store_dump_check(const uint8_t *buf, size_t len)
{
    struct store_obj *e = NULL;
    int rc = store__dump_load(buf, len, 0, (const uint8_t *)"", 0, -1, &e);
    if (rc == STORE_DUMP_OK) {
        store__entry_free(e);
    }
    return rc;
}

const char *store_dump_error(int status)
{
    switch (status) {
    case STORE_DUMP_OK: return NULL;
    case STORE_DUMP_BAD_CHECKSUM: return "ERR DUMP payload version or checksum are wrong";
    case STORE_DUMP_MODULE:
        return "ERR Bad data format: a Redis module's value (RDB type 6 or 7), and halyard has no "
               "modules";
    default: return "ERR Bad data format";
    }
}
