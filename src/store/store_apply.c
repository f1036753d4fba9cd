/*
 * store_apply.c - executes log entries: the only code that changes the keyspace.
 *
 * Every op reads "now" from entry.time_ms only, so all replicas end in the same state. Replies
 * follow Redis 7.0 exactly (texts, and which error wins when several apply). An op that
 * answers an error leaves the keyspace as it was, except that keys already expired at
 * time_ms may have been dropped (they were logically absent anyway).
 */
#include <math.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store.h"
#include "store/store_int.h"

#define ERR_WRONGTYPE      "WRONGTYPE Operation against a key holding the wrong kind of value"
#define ERR_NOT_INT        "ERR value is not an integer or out of range"
#define ERR_OVERFLOW       "ERR increment or decrement would overflow"
#define ERR_NOT_FLOAT      "ERR value is not a valid float"
#define ERR_NAN            "ERR increment would produce NaN or Infinity"
#define ERR_HASH_NOT_INT   "ERR hash value is not an integer"
#define ERR_HASH_NOT_FLOAT "ERR hash value is not a float"
#define ERR_NO_KEY         "ERR no such key"
#define ERR_TOO_BIG        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
#define ERR_OFFSET         "ERR offset is out of range"

#define FLOAT_TEXT_MAX (5 * 1024)

/* Replies are skipped on replicas (w == NULL), so every writer call goes through these. */
static void r_ok(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_ok(w);
    }
}

static void r_int(struct resp_writer *w, int64_t v)
{
    if (w != NULL) {
        resp_write_int(w, v);
    }
}

static void r_err(struct resp_writer *w, const char *msg)
{
    if (w != NULL) {
        resp_write_error(w, msg);
    }
}

static void r_null(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_null(w);
    }
}

static void r_bulk(struct resp_writer *w, const void *p, size_t len)
{
    if (w != NULL) {
        resp_write_bulk(w, p, len);
    }
}

/* Bulk of a string entry's value, or null when absent. */
static void r_value(struct resp_writer *w, const struct store_obj *o)
{
    if (o == NULL) {
        r_null(w);
        return;
    }
    const uint8_t *v;
    size_t vlen;
    store_obj_string(o, &v, &vlen);
    r_bulk(w, v, vlen);
}

#define ARG(e, i) (e)->argv[(i)].ptr, (e)->argv[(i)].len

struct store_obj *store__lookup_typed(enum store_type type, struct store *s,
                                      const struct store_entry *e, uint32_t ki,
                                      struct resp_writer *w, int *wrong_out)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, ki), e->time_ms);
    *wrong_out = o != NULL && se_type(o) != type;
    if (*wrong_out) {
        store__r_err(w, STORE_ERR_WRONGTYPE);
        s->dirty_delta = 0;
        return NULL;
    }
    if (o != NULL) {
        o->lru = store__lru_of(e);
    }
    return o;
}

static int past(int64_t at, uint64_t time_ms)
{
    return at >= 0 && (uint64_t)at <= time_ms;
}

/* Creates a string key (replacing old, of any type) holding v with expiry at. */
struct store_obj *store__string_put(struct store *s, const struct store_entry *e,
                                    struct store_obj *old, uint32_t ki, const uint8_t *v,
                                    size_t vlen, int64_t at)
{
    if (old != NULL && store__string_overwrite(old, v, vlen, at)) {
        old->lru = store__lru_of(e);
        return old; /* the same allocation: no table walk, no free, no malloc */
    }
    if (old != NULL) {
        store__delete(s, old);
    }
    struct store_obj *o = store__entry_new(STORE_STRING, at, ARG(e, ki), vlen);
    if (vlen > 0) {
        memcpy(store__value_ptr(o), v, vlen);
    }
    o->lru = store__lru_of(e);
    store__link(s, o);
    return o;
}

/* A copy of string entry o resized to len (zero-filled growth), keeping its expiry. */
struct store_obj *store__string_resize(struct store *s, struct store_obj *o, size_t len)
{
    const uint8_t *v;
    size_t vlen;
    store_obj_string(o, &v, &vlen);
    if (vlen == len) {
        return o;
    }
    const uint8_t *k;
    size_t klen;
    store__key(o, &k, &klen);
    struct store_obj *n = store__entry_new(STORE_STRING, store__expire(o), k, klen, len);
    uint8_t *nv = store__value_ptr(n);
    memcpy(nv, v, HY_MIN(vlen, len));
    if (len > vlen) {
        memset(nv + vlen, 0, len - vlen);
    }
    store__swap(s, o, n);
    return n;
}

/* ---- strings -------------------------------------------------------------------------------- */

static void op_noop(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    (void)s;
    (void)e;
    (void)w;
}

static void op_set(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    int get = (e->flags & STORE_F_GET) != 0;
    if (get && o != NULL && se_type(o) != STORE_STRING) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    if (get) {
        r_value(w, o); /* the old value is answered whether or not NX/XX let the set happen */
    }
    int doit = !((e->flags & STORE_F_NX) && o != NULL) && !((e->flags & STORE_F_XX) && o == NULL);
    if (doit) {
        int64_t at = e->expire_at_ms;
        if ((e->flags & STORE_F_KEEPTTL) && o != NULL) {
            at = store__expire(o);
        }
        if (past(at, e->time_ms)) {
            if (o != NULL) {
                store__delete(s, o); /* set, then expired at once: Redis's result too */
            }
        } else {
            store__string_put(s, e, o, 0, ARG(e, 1), at);
        }
    }
    if (get) {
        return;
    }
    if (e->flags & STORE_F_REPLY_INT) {
        r_int(w, doit);
    } else if (doit) {
        r_ok(w);
    } else {
        r_null(w);
    }
}

static void op_mset(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int nx = (e->flags & STORE_F_NX) != 0;
    for (uint32_t i = 0; nx && i < e->argc; i += 2) {
        if (store__lookup_write(s, ARG(e, i), e->time_ms) != NULL) {
            r_int(w, 0);
            return;
        }
    }
    for (uint32_t i = 0; i < e->argc; i += 2) {
        struct store_obj *o = store__lookup_write(s, ARG(e, i), e->time_ms);
        store__string_put(s, e, o, i, ARG(e, i + 1), -1);
    }
    if (nx) {
        r_int(w, 1);
    } else {
        r_ok(w);
    }
}

static void op_incrby(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    int64_t cur = 0;
    if (o != NULL) {
        if (se_type(o) != STORE_STRING) {
            r_err(w, ERR_WRONGTYPE);
            return;
        }
        const uint8_t *v;
        size_t vlen;
        store_obj_string(o, &v, &vlen);
        if (!hy_parse_i64(v, vlen, &cur)) {
            r_err(w, ERR_NOT_INT);
            return;
        }
    }
    if ((e->incr > 0 && cur > INT64_MAX - e->incr) || (e->incr < 0 && cur < INT64_MIN - e->incr)) {
        r_err(w, ERR_OVERFLOW);
        return;
    }
    char text[24];
    size_t n = hy_format_i64(text, cur + e->incr);
    if (o != NULL) {
        store__set_string(s, o, (const uint8_t *)text, n)->lru = store__lru_of(e);
    } else {
        store__string_put(s, e, NULL, 0, (const uint8_t *)text, n, -1);
    }
    r_int(w, cur + e->incr);
}

/* Parses a float argument or value as Redis does (inf accepted; the sum is checked after). */
static int parse_ld(const uint8_t *p, size_t len, long double *out)
{
    return hy_parse_double(p, len, 1, out);
}

/* Adds the increment text arg to cur; writes the formatted result, or replies an error and
 * returns 0. */
static int float_add(long double cur, const struct store_entry *e, uint32_t ai, char *text,
                     size_t *len_out, struct resp_writer *w)
{
    long double incr;
    if (!parse_ld(ARG(e, ai), &incr)) {
        r_err(w, ERR_NOT_FLOAT);
        return 0;
    }
    long double sum = cur + incr;
    if (isnan(sum) || isinf(sum)) {
        r_err(w, ERR_NAN);
        return 0;
    }
    *len_out = hy_format_long_double(text, FLOAT_TEXT_MAX, sum);
    return 1;
}

static void op_incrbyfloat(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    long double cur = 0;
    if (o != NULL) {
        if (se_type(o) != STORE_STRING) {
            r_err(w, ERR_WRONGTYPE);
            return;
        }
        const uint8_t *v;
        size_t vlen;
        store_obj_string(o, &v, &vlen);
        if (!parse_ld(v, vlen, &cur)) {
            r_err(w, ERR_NOT_FLOAT);
            return;
        }
    }
    char text[FLOAT_TEXT_MAX];
    size_t n;
    if (!float_add(cur, e, 1, text, &n, w)) {
        return;
    }
    if (o != NULL) {
        store__set_string(s, o, (const uint8_t *)text, n)->lru = store__lru_of(e);
    } else {
        store__string_put(s, e, NULL, 0, (const uint8_t *)text, n, -1);
    }
    r_bulk(w, text, n);
}

static void op_append(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    size_t add = e->argv[1].len;
    if (o == NULL) {
        store__string_put(s, e, NULL, 0, ARG(e, 1), -1);
        r_int(w, (int64_t)add);
        return;
    }
    if (se_type(o) != STORE_STRING) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    const uint8_t *v;
    size_t vlen;
    store_obj_string(o, &v, &vlen);
    if ((uint64_t)vlen + add > STORE_STRING_BYTES_MAX) {
        r_err(w, ERR_TOO_BIG);
        return;
    }
    o = store__string_resize(s, o, vlen + add);
    if (add > 0) {
        memcpy(store__value_ptr(o) + vlen, e->argv[1].ptr, add);
    }
    o->lru = store__lru_of(e);
    r_int(w, (int64_t)(vlen + add));
}

static void op_setrange(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if (e->incr < 0) {
        r_err(w, ERR_OFFSET);
        return;
    }
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o != NULL && se_type(o) != STORE_STRING) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    size_t vlen = 0, add = e->argv[1].len;
    if (o != NULL) {
        const uint8_t *v;
        store_obj_string(o, &v, &vlen);
    }
    if (add == 0) {
        r_int(w, (int64_t)vlen); /* nothing to write: no key is created, none is padded */
        return;
    }
    uint64_t off = (uint64_t)e->incr;
    if (off + add > STORE_STRING_BYTES_MAX) {
        r_err(w, ERR_TOO_BIG);
        return;
    }
    size_t len = HY_MAX(vlen, (size_t)off + add);
    if (o == NULL) {
        o = store__string_put(s, e, NULL, 0, NULL, 0, -1);
    }
    o = store__string_resize(s, o, len);
    memcpy(store__value_ptr(o) + off, e->argv[1].ptr, add);
    o->lru = store__lru_of(e);
    r_int(w, (int64_t)len);
}

static void op_getdel(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o != NULL && se_type(o) != STORE_STRING) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    r_value(w, o);
    if (o != NULL) {
        store__delete(s, o);
    }
}

static void op_getex(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o != NULL && se_type(o) != STORE_STRING) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    r_value(w, o);
    if (o == NULL) {
        return;
    }
    if (e->flags & STORE_F_PERSIST) {
        store__set_expire(s, o, -1);
    } else if (past(e->expire_at_ms, e->time_ms)) {
        store__delete(s, o);
    } else if (e->expire_at_ms >= 0) {
        store__set_expire(s, o, e->expire_at_ms);
    }
}

/* ---- keys ----------------------------------------------------------------------------------- */

static void op_del(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int64_t n = 0;
    for (uint32_t i = 0; i < e->argc; i++) {
        struct store_obj *o = store__lookup_write(s, ARG(e, i), e->time_ms);
        if (o != NULL) {
            store__delete(s, o);
            n++;
        }
    }
    r_int(w, n);
}

/* Redis 7's EXPIRE option checks; a key without expiry has an infinite TTL for GT/LT. */
static int expire_allowed(uint32_t flags, int64_t cur, int64_t at)
{
    if ((flags & STORE_F_NX) && cur >= 0) {
        return 0;
    }
    if ((flags & STORE_F_XX) && cur < 0) {
        return 0;
    }
    if ((flags & STORE_F_GT) && (cur < 0 || at <= cur)) {
        return 0;
    }
    if ((flags & STORE_F_LT) && cur >= 0 && at >= cur) {
        return 0;
    }
    return 1;
}

static void op_expire(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    int64_t at = e->expire_at_ms;
    if (o == NULL || !expire_allowed(e->flags, store__expire(o), at)) {
        r_int(w, 0);
        return;
    }
    if (at < 0 || (uint64_t)at <= e->time_ms) {
        store__delete(s, o);
    } else {
        store__set_expire(s, o, at);
    }
    r_int(w, 1);
}

static void op_persist(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o == NULL || !se_volatile(o)) {
        r_int(w, 0);
        return;
    }
    store__set_expire(s, o, -1);
    r_int(w, 1);
}

static void op_rename(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int nx = (e->flags & STORE_F_NX) != 0;
    struct store_obj *src = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (src == NULL) {
        r_err(w, ERR_NO_KEY);
        return;
    }
    if (e->argv[0].len == e->argv[1].len &&
        memcmp(e->argv[0].ptr, e->argv[1].ptr, e->argv[0].len) == 0) {
        nx ? r_int(w, 0) : r_ok(w);
        return;
    }
    struct store_obj *dst = store__lookup_write(s, ARG(e, 1), e->time_ms);
    if (dst != NULL && nx) {
        r_int(w, 0);
        return;
    }
    if (dst != NULL) {
        store__delete(s, dst);
    }
    /* The key bytes are inline, so the value moves to a new entry under the new key. */
    store__unlink(s, src);
    struct store_obj *n = store__entry_move(src, ARG(e, 1), store__expire(src));
    n->lru = src->lru;
    hy_free(src); /* the allocation only: a hash, list or set object now belongs to n */
    store__link(s, n);
    nx ? r_int(w, 1) : r_ok(w);
}

/* COPY: the destination gets a deep copy of the source's value and its expiry. The handler
 * refuses src == dst; apply answers 0 for it too, so a hand-made entry cannot free a live
 * value it is copying. */
static void op_copy(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *src = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (src == NULL || (e->argv[0].len == e->argv[1].len &&
                        memcmp(e->argv[0].ptr, e->argv[1].ptr, e->argv[0].len) == 0)) {
        r_int(w, 0);
        return;
    }
    struct store_obj *dst = store__lookup_write(s, ARG(e, 1), e->time_ms);
    if (dst != NULL && !(e->flags & STORE_F_REPLACE)) {
        r_int(w, 0);
        return;
    }
    if (dst != NULL) {
        store__delete(s, dst);
    }
    struct se_layout l;
    store__layout(src, &l);
    struct store_obj *n = store__entry_new(se_type(src), store__expire(src), ARG(e, 1), l.vlen);
    if (se_type(src) != STORE_STRING) {
        store__set_vobj(n, store__object_clone(src, s->hash_seed));
    } else if (l.vlen > 0) {
        memcpy(store__value_ptr(n), src->data + l.val_off, l.vlen);
    }
    n->lru = store__lru_of(e);
    store__link(s, n);
    store__set_pack(s, n);
    r_int(w, 1);
}

/* RESTORE: the key gets the payload's value (REPLACE: whatever it held goes), as Redis 7.0's
 * restoreCommand: BUSYKEY is checked before the payload, and an expiry already past at the
 * entry's time leaves no key (only REPLACE's deletion happens). The proposer checked the
 * payload already; apply checks it again, for a log entry is untrusted bytes too. */
static void op_restore(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *old = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (old != NULL && !(e->flags & STORE_F_REPLACE)) {
        r_err(w, "BUSYKEY Target key name already exists.");
        return;
    }
    struct store_obj *n = NULL;
    int at_past = e->expire_at_ms >= 0 && (uint64_t)e->expire_at_ms <= e->time_ms;
    int rc = store__dump_load(e->argv[1].ptr, e->argv[1].len, s->hash_seed, ARG(e, 0),
                              at_past ? -1 : e->expire_at_ms, &n);
    if (rc != STORE_DUMP_OK) {
        r_err(w, store_dump_error(rc));
        return;
    }
    if (old != NULL) {
        store__delete(s, old);
    }
    if (at_past) {
        store__entry_free(n);
        r_ok(w);
        return;
    }
    uint64_t idle_ms = e->incr > 0 ? HY_MIN((uint64_t)e->incr, e->time_ms) : 0;
    n->lru = (uint32_t)((e->time_ms - idle_ms) >> SE_LRU_SHIFT);
    store__link(s, n);
    r_ok(w);
}

static void op_flushall(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    (void)e;
    store__flush(s);
    r_ok(w);
}

static void op_expired(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    (void)w;
    /* Only keys really expired at the entry's time go: the leader's sample may be stale. */
    for (uint32_t i = 0; i < e->argc; i++) {
        (void)store__lookup_write(s, ARG(e, i), e->time_ms);
    }
}

static void op_evict(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    (void)w;
    for (uint32_t i = 0; i < e->argc; i++) {
        struct store_obj *o = (struct store_obj *)htab_find(&s->keys, ARG(e, i));
        if (o != NULL) {
            store__delete(s, o);
            store__notify(s, STORE_NOTIFY_EVICTED, "evicted", ARG(e, i));
        }
    }
}

/* ---- hashes --------------------------------------------------------------------------------- */

/* The hash at key argv[0] for writing, created when absent; NULL after a WRONGTYPE reply. */
static struct store_obj *hash_for_write(struct store *s, const struct store_entry *e,
                                        struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o != NULL && se_type(o) != STORE_HASH) {
        r_err(w, ERR_WRONGTYPE);
        return NULL;
    }
    if (o == NULL) {
        o = store__entry_new(STORE_HASH, -1, ARG(e, 0), 0);
        store__set_hobj(o, store__hobj_new(s->hash_seed));
        store__link(s, o);
    }
    o->lru = store__lru_of(e);
    return o;
}

/* Field writes change the hash object's size; keep obj_bytes in step. */
static void hash_set(struct store *s, struct hobj *h, const uint8_t *f, size_t flen,
                     const uint8_t *v, size_t vlen, int *added_out)
{
    size_t before = store__hobj_bytes(h);
    int added = store__hobj_put(h, f, flen, v, vlen, &s->cfg.encoding);
    s->obj_bytes = s->obj_bytes - before + store__hobj_bytes(h);
    if (added_out != NULL) {
        *added_out = added;
    }
}

static void op_hset(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = hash_for_write(s, e, w);
    if (o == NULL) {
        return;
    }
    struct hobj *h = store__hobj(o);
    int64_t added = 0;
    for (uint32_t i = 1; i + 1 < e->argc; i += 2) {
        int a;
        hash_set(s, h, ARG(e, i), ARG(e, i + 1), &a);
        added += a;
    }
    if (e->flags & STORE_F_REPLY_OK) {
        r_ok(w);
    } else {
        r_int(w, added);
    }
}

static void op_hsetnx(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o != NULL && se_type(o) != STORE_HASH) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    const uint8_t *v;
    size_t vlen;
    if (o != NULL && store__hobj_get(store__hobj(o), ARG(e, 1), &v, &vlen)) {
        r_int(w, 0);
        return;
    }
    o = hash_for_write(s, e, w);
    hash_set(s, store__hobj(o), ARG(e, 1), ARG(e, 2), NULL);
    r_int(w, 1);
}

static void op_hdel(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o == NULL) {
        r_int(w, 0);
        return;
    }
    if (se_type(o) != STORE_HASH) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    struct hobj *h = store__hobj(o);
    size_t before = store__hobj_bytes(h);
    int64_t n = 0;
    for (uint32_t i = 1; i < e->argc; i++) {
        n += store__hobj_del(h, ARG(e, i));
    }
    s->obj_bytes = s->obj_bytes - before + store__hobj_bytes(h);
    if (store__hobj_count(h) == 0) {
        store__delete(s, o); /* an empty hash is no value: the key goes */
    }
    r_int(w, n);
}

static void op_hincrby(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o != NULL && se_type(o) != STORE_HASH) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    int64_t cur = 0;
    const uint8_t *v;
    size_t vlen;
    if (o != NULL && store__hobj_get(store__hobj(o), ARG(e, 1), &v, &vlen) &&
        !hy_parse_i64(v, vlen, &cur)) {
        r_err(w, ERR_HASH_NOT_INT);
        return;
    }
    if ((e->incr > 0 && cur > INT64_MAX - e->incr) || (e->incr < 0 && cur < INT64_MIN - e->incr)) {
        r_err(w, ERR_OVERFLOW);
        return;
    }
    char text[24];
    size_t n = hy_format_i64(text, cur + e->incr);
    o = hash_for_write(s, e, w);
    hash_set(s, store__hobj(o), ARG(e, 1), (const uint8_t *)text, n, NULL);
    r_int(w, cur + e->incr);
}

static void op_hincrbyfloat(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    long double incr;
    if (!parse_ld(ARG(e, 2), &incr)) {
        r_err(w, ERR_NOT_FLOAT); /* Redis checks the increment before the key */
        return;
    }
    struct store_obj *o = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (o != NULL && se_type(o) != STORE_HASH) {
        r_err(w, ERR_WRONGTYPE);
        return;
    }
    long double cur = 0;
    const uint8_t *v;
    size_t vlen;
    if (o != NULL && store__hobj_get(store__hobj(o), ARG(e, 1), &v, &vlen) &&
        !parse_ld(v, vlen, &cur)) {
        r_err(w, ERR_HASH_NOT_FLOAT);
        return;
    }
    char text[FLOAT_TEXT_MAX];
    size_t n;
    if (!float_add(cur, e, 2, text, &n, w)) {
        return;
    }
    o = hash_for_write(s, e, w);
    hash_set(s, store__hobj(o), ARG(e, 1), (const uint8_t *)text, n, NULL);
    r_bulk(w, text, n);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

typedef void (*op_fn)(struct store *s, const struct store_entry *e, struct resp_writer *w);

static const op_fn op_table[STORE_OP_COUNT] = {
    [STORE_OP_NOOP] = op_noop,
    [STORE_OP_SET] = op_set,
    [STORE_OP_MSET] = op_mset,
    [STORE_OP_DEL] = op_del,
    [STORE_OP_EXPIRE] = op_expire,
    [STORE_OP_PERSIST] = op_persist,
    [STORE_OP_RENAME] = op_rename,
    [STORE_OP_INCRBY] = op_incrby,
    [STORE_OP_INCRBYFLOAT] = op_incrbyfloat,
    [STORE_OP_APPEND] = op_append,
    [STORE_OP_SETRANGE] = op_setrange,
    [STORE_OP_GETDEL] = op_getdel,
    [STORE_OP_GETEX] = op_getex,
    [STORE_OP_HSET] = op_hset,
    [STORE_OP_HSETNX] = op_hsetnx,
    [STORE_OP_HDEL] = op_hdel,
    [STORE_OP_HINCRBY] = op_hincrby,
    [STORE_OP_HINCRBYFLOAT] = op_hincrbyfloat,
    [STORE_OP_FLUSHALL] = op_flushall,
    [STORE_OP_EXPIRED] = op_expired,
    [STORE_OP_EVICT] = op_evict,
    [STORE_OP_SESSION_OPEN] = store__op_session_open,
    [STORE_OP_SESSION_REQ] = store__op_session_req,
    [STORE_OP_SESSION_REQW] = store__op_session_req,
    [STORE_OP_MEMBER_SET] = store__op_member_set,
    [STORE_OP_PUSH] = store__op_push,
    [STORE_OP_POP] = store__op_pop,
    [STORE_OP_LSET] = store__op_lset,
    [STORE_OP_LINSERT] = store__op_linsert,
    [STORE_OP_LREM] = store__op_lrem,
    [STORE_OP_LTRIM] = store__op_ltrim,
    [STORE_OP_LMOVE] = store__op_lmove,
    [STORE_OP_LMPOP] = store__op_lmpop,
    [STORE_OP_SADD] = store__op_sadd,
    [STORE_OP_SREM] = store__op_srem,
    [STORE_OP_SMOVE] = store__op_smove,
    [STORE_OP_SPOP] = store__op_spop,
    [STORE_OP_SSTORE] = store__op_sstore,
    [STORE_OP_ZADD] = store__op_zadd,
    [STORE_OP_ZREM] = store__op_zrem,
    [STORE_OP_ZPOP] = store__op_zpop,
    [STORE_OP_ZMPOP] = store__op_zmpop,
    [STORE_OP_ZREMRANGE] = store__op_zremrange,
    [STORE_OP_ZSTORE] = store__op_zstore,
    [STORE_OP_ZRANGESTORE] = store__op_zrangestore,
    [STORE_OP_SETBIT] = store__op_setbit,
    [STORE_OP_BITOP] = store__op_bitop,
    [STORE_OP_BITFIELD] = store__op_bitfield,
    [STORE_OP_COPY] = op_copy,
    [STORE_OP_SORT] = store__op_sort,
    [STORE_OP_PFADD] = store__op_pfadd,
    [STORE_OP_PFCOUNT] = store__op_pfcount,
    [STORE_OP_PFMERGE] = store__op_pfmerge,
    [STORE_OP_ACL_SETUSER] = store__op_acl_setuser,
    [STORE_OP_ACL_DELUSER] = store__op_acl_deluser,
    [STORE_OP_EXEC] = store__op_exec,
    [STORE_OP_ACL_LOAD] = store__op_acl_load,
    [STORE_OP_RESTORE] = op_restore,
    [STORE_OP_GEOSEARCH] = store__op_geosearch,
    [STORE_OP_EVAL] = store__op_eval,
    [STORE_OP_SCRIPT_LOAD] = store__op_script_load,
    [STORE_OP_SCRIPT_FLUSH] = store__op_script_flush,
    [STORE_OP_FCALL] = store__op_fcall,
    [STORE_OP_FUNCTION_LOAD] = store__op_function_load,
    [STORE_OP_FUNCTION_DELETE] = store__op_function_delete,
    [STORE_OP_FUNCTION_FLUSH] = store__op_function_flush,
    [STORE_OP_XADD] = store__op_xadd,
    [STORE_OP_XTRIM] = store__op_xtrim,
    [STORE_OP_XDEL] = store__op_xdel,
    [STORE_OP_XSETID] = store__op_xsetid,
    [STORE_OP_XGROUP] = store__op_xgroup,
    [STORE_OP_XREADGROUP] = store__op_xreadgroup,
    [STORE_OP_XACK] = store__op_xack,
    [STORE_OP_XCLAIM] = store__op_xclaim,
    [STORE_OP_XAUTOCLAIM] = store__op_xautoclaim,
    [STORE_OP_FUNCTION_RESTORE] = store__op_function_restore,
    [STORE_OP_WAN_APPLY] = store__op_wan_apply,
    [STORE_OP_ENCODING_SET] = store__op_encoding_set,
    [STORE_OP_WAN_HLC] = store__op_wan_hlc,
    [STORE_OP_WAN_PUT] = store__op_wan_put,
    [STORE_OP_WAN_FENCE] = store__op_wan_fence,
    [STORE_OP_WAN_HITS] = store__op_wan_hits,
};

void store_set_mutation(struct store *s, unsigned mutation, uint64_t now_ms)
{
    s->mutation = mutation;
    s->mutation_now_ms = now_ms;
}

/* Runs one op with keyspace notifications: the keys' state before, then the events its
 * reply and the keys' state after call for. A replica that answers nobody still needs the
 * reply, so it gets a scratch one (only while notifications are on). */
static void apply_notifying(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_notify_pre pre;
    store__notify_before(s, e, &pre);
    struct hy_buf scratch;
    hy_buf_init(&scratch);
    struct resp_writer sw = {&scratch, 2};
    struct resp_writer *out = w != NULL ? w : &sw;
    size_t mark = out->out->len;
    op_table[e->op](s, e, out);
    store__notify_after(s, e, &pre, out->out->data + mark, out->out->len - mark);
    hy_buf_free(&scratch);
}

/* Whether an entry of op counts one change by default (store_dirty). */
static uint64_t op_counts_dirty(enum store_op op)
{
    switch (op) {
    case STORE_OP_NOOP:
    case STORE_OP_SESSION_OPEN:
    case STORE_OP_SESSION_REQ:
    case STORE_OP_SESSION_REQW:
    case STORE_OP_MEMBER_SET:
    case STORE_OP_ACL_SETUSER:
    case STORE_OP_ACL_DELUSER:
    case STORE_OP_ACL_LOAD:
    case STORE_OP_EXEC:
    case STORE_OP_EVAL:
    case STORE_OP_FCALL:
    case STORE_OP_SCRIPT_LOAD:
    case STORE_OP_FUNCTION_RESTORE:
    case STORE_OP_WAN_APPLY:
    case STORE_OP_ENCODING_SET:
    case STORE_OP_WAN_HLC:
    case STORE_OP_WAN_FENCE:
    case STORE_OP_WAN_HITS:
    case STORE_OP_SORT:
    case STORE_OP_GEOSEARCH:
    case STORE_OP_PFCOUNT: return 0;
    default: return 1;
    }
}

uint64_t store_dirty(const struct store *s)
{
    return s->dirty;
}

int store_prefetch_bucket(const struct store *s, const uint8_t *entry, size_t len, uint64_t *hv)
{
    const uint8_t *k;
    size_t klen;
    if (!store__entry_first_arg(entry, len, &k, &klen)) {
        return 0;
    }
    *hv = htab_hash(&s->keys, k, klen);
    htab_prefetch(&s->keys, *hv, 0);
    return 1;
}

void store_prefetch_node(const struct store *s, uint64_t hv)
{
    htab_prefetch(&s->keys, hv, 1);
}

int store_apply(struct store *s, const uint8_t *entry, size_t len, struct resp_writer *reply)
{
    struct store_entry e;
    struct store_arg stack[8]; /* most entries' arguments: no allocation */
    int rc = store__entry_decode_into(entry, len, &e, stack, HY_ARRAY_LEN(stack));
    if (rc != HY_OK) {
        return rc;
    }
    HY_ASSERT(op_table[e.op] != NULL);
    if (s->mutation == STORE_MUT_APPLY_CLOCK) {
        e.time_ms = s->mutation_now_ms; /* the bug under test: apply reads a clock */
    }
    store__watch_before(s, &e);
    uint64_t outer_delta = s->dirty_delta; /* EXEC, EVAL and sessions apply entries inside */
    s->dirty_delta = op_counts_dirty(e.op);
    if (store__notify_wanted(s, &e)) {
        apply_notifying(s, &e, reply);
    } else {
        op_table[e.op](s, &e, reply);
    }
    s->dirty += s->dirty_delta;
    s->dirty_delta = outer_delta;
    uint64_t skip = s->watch_skip;
    store__watch_after(s, &e);
    if ((s->hlc != NULL || (s->tap_states && s->tap_fn != NULL)) && s->wan_depth == 0) {
        /* Versions are kept (or a WAN resync asks for states): the keys this write changed get
         * a new version, and the tap sees their states instead of the op (store__wan_after). */
        store__wan_after(s, &e, skip, entry, len);
    } else if (s->tap_fn != NULL && s->wan_depth == 0) {
        s->tap_fn(s->tap_ctx, &e, entry, len);
    }
    if (e.argv != stack) {
        store_entry_release(&e);
    }
    return HY_OK;
}
