/*
 * store.c - keyspace entries, hash objects, the volatile index and the read API.
 * Writes (store_apply) live in store_apply.c; codecs in store_codec.c; expiry and eviction
 * proposals in store_evict.c.
 */
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

/* ---- entry layout -------------------------------------------------------------------------- */

void store__layout(const struct store_obj *e, struct se_layout *l)
{
    /* The entry was built by this module, so its varints are well formed: bound by 2 * max. */
    const uint8_t *p = e->data;
    size_t off = se_volatile(e) ? SE_VOL_BYTES : 0;
    uint64_t v = 0;
    off += varint_get(p + off, VARINT_MAX, &v);
    l->klen = (size_t)v;
    l->vlen = 0;
    if (se_type(e) == STORE_STRING) {
        off += varint_get(p + off, VARINT_MAX, &v);
        l->vlen = (size_t)v;
    }
    l->key_off = off;
    l->val_off = off + l->klen;
}

void store__key(const struct store_obj *e, const uint8_t **k_out, size_t *klen_out)
{
    struct se_layout l;
    store__layout(e, &l);
    *k_out = e->data + l.key_off;
    *klen_out = l.klen;
}

void store__entry_key_fn(const struct htab_node *n, const uint8_t **k_out, size_t *klen_out)
{
    store__key((const struct store_obj *)n, k_out, klen_out);
}

int64_t store__expire(const struct store_obj *e)
{
    if (!se_volatile(e)) {
        return -1;
    }
    int64_t at;
    memcpy(&at, e->data, sizeof(at));
    return at;
}

void store__set_expire_inplace(struct store_obj *e, int64_t at)
{
    HY_ASSERT(se_volatile(e) && at >= 0);
    memcpy(e->data, &at, sizeof(at));
}

static uint32_t vol_index(const struct store_obj *e)
{
    uint32_t i;
    memcpy(&i, e->data + 8, sizeof(i));
    return i;
}

static void vol_index_set(struct store_obj *e, uint32_t i)
{
    memcpy(e->data + 8, &i, sizeof(i));
}

uint8_t *store__value_ptr(struct store_obj *e)
{
    struct se_layout l;
    store__layout(e, &l);
    return e->data + l.val_off;
}

/* A set entry's object: the first 8-byte aligned offset (from the entry's start, which malloc
 * aligns) after the key. */
static size_t set_obj_off(size_t val_off)
{
    return (offsetof(struct store_obj, data) + val_off + 7) & ~(size_t)7;
}

static struct hobj *set_obj(const struct store_obj *e)
{
    struct se_layout l;
    store__layout(e, &l);
    return (struct hobj *)(uintptr_t)((const uint8_t *)e + set_obj_off(l.val_off));
}

/* The room after a set entry's object: the rest of its usable allocation. */
static uint8_t *set_room(struct store_obj *e, size_t *len_out)
{
    uint8_t *room = (uint8_t *)set_obj(e) + store__hobj_struct_size();
    *len_out = hy_alloc_size(e) - (size_t)(room - (uint8_t *)e);
    return room;
}

void *store__vobj(const struct store_obj *e)
{
    HY_ASSERT(se_type(e) != STORE_STRING);
    if (se_type(e) == STORE_SET) {
        return set_obj(e);
    }
    struct se_layout l;
    store__layout(e, &l);
    void *obj;
    memcpy(&obj, e->data + l.val_off, sizeof(obj));
    return obj;
}

void store__set_vobj(struct store_obj *e, void *obj)
{
    HY_ASSERT(se_type(e) != STORE_STRING);
    if (se_type(e) == STORE_SET) { /* the heap object's contents move into the entry */
        size_t room_len;
        uint8_t *room = set_room(e, &room_len);
        store__hobj_move(set_obj(e), obj, room, room_len);
        hy_free(obj);
        return;
    }
    memcpy(store__value_ptr(e), &obj, sizeof(obj));
}

struct hobj *store__hobj(const struct store_obj *e)
{
    HY_ASSERT(se_type(e) == STORE_HASH || se_type(e) == STORE_SET);
    return store__vobj(e);
}

struct lobj *store__lobj(const struct store_obj *e)
{
    HY_ASSERT(se_type(e) == STORE_LIST);
    return store__vobj(e);
}

void store__set_hobj(struct store_obj *e, struct hobj *h)
{
    HY_ASSERT(se_type(e) == STORE_HASH || se_type(e) == STORE_SET);
    store__set_vobj(e, h);
}

struct store_obj *store__entry_new(enum store_type type, int64_t expire_at, const uint8_t *k,
                                   size_t klen, size_t vlen)
{
    size_t body = type != STORE_STRING ? sizeof(void *) : vlen;
    size_t hdr = (expire_at >= 0 ? SE_VOL_BYTES : 0) + varint_len(klen) +
                 (type == STORE_STRING ? varint_len(vlen) : 0);
    size_t size = offsetof(struct store_obj, data) + hdr + klen + body;
    if (type == STORE_SET) { /* padding, the object, vlen bytes of room for its members */
        body = store__hobj_struct_size() + vlen;
        size = set_obj_off(hdr + klen) + body;
    }
    HY_ASSERT(size > klen + body); /* no overflow */
    struct store_obj *e = hy_xmalloc(HY_MAX(size, sizeof(struct store_obj)));
    e->node.next = NULL;
    e->lru = 0;
    e->meta = (uint8_t)type;
    size_t off = 0;
    if (expire_at >= 0) {
        e->meta |= SE_VOLATILE;
        memcpy(e->data, &expire_at, sizeof(expire_at));
        vol_index_set(e, UINT32_MAX);
        off = SE_VOL_BYTES;
    }
    off += varint_put(e->data + off, klen);
    if (type == STORE_STRING) {
        off += varint_put(e->data + off, vlen);
    }
    if (klen > 0) {
        memcpy(e->data + off, k, klen);
    }
    if (type == STORE_SET) {
        memset(set_obj(e), 0, store__hobj_struct_size());
    } else if (type != STORE_STRING) {
        memset(e->data + off + klen, 0, sizeof(void *));
    }
    return e;
}

void store__entry_free(struct store_obj *e)
{
    if (se_type(e) == STORE_SET) {
        store__hobj_release(set_obj(e));
    } else if (se_type(e) == STORE_HASH) {
        store__hobj_free(store__hobj(e));
    } else if (se_type(e) == STORE_LIST) {
        store__lobj_free(store__lobj(e));
    } else if (se_type(e) == STORE_ZSET) {
        store__zobj_free(store__zobj(e));
    } else if (se_type(e) == STORE_STREAM) {
        store__xobj_free(store__xobj(e));
    }
    hy_free(e);
}

size_t store__entry_bytes(const struct store_obj *e)
{
    size_t n = hy_alloc_size(e);
    if (se_type(e) == STORE_SET) {
        n += store__hobj_extra_bytes(set_obj(e));
    } else if (se_type(e) == STORE_HASH) {
        n += store__hobj_bytes(store__hobj(e));
    } else if (se_type(e) == STORE_LIST) {
        n += store__lobj_bytes(store__lobj(e));
    } else if (se_type(e) == STORE_ZSET) {
        n += store__zobj_bytes(store__zobj(e));
    } else if (se_type(e) == STORE_STREAM) {
        n += store__xobj_bytes(store__xobj(e));
    }
    return n;
}

/* ---- the volatile index and the keyspace --------------------------------------------------- */

static size_t vol_cap_bytes(const struct store *s)
{
    return s->vol == NULL ? 0 : hy_alloc_size(s->vol);
}

static void vol_add(struct store *s, struct store_obj *e)
{
    if (s->vol_count == s->vol_cap) {
        size_t cap = s->vol_cap ? s->vol_cap * 2 : 16;
        HY_ASSERT(cap < UINT32_MAX);
        s->vol = hy_xrealloc(s->vol, cap * sizeof(*s->vol));
        s->vol_cap = cap;
    }
    vol_index_set(e, (uint32_t)s->vol_count);
    s->vol[s->vol_count++] = e;
}

static void vol_del(struct store *s, struct store_obj *e)
{
    uint32_t i = vol_index(e);
    HY_ASSERT(i < s->vol_count && s->vol[i] == e);
    struct store_obj *last = s->vol[--s->vol_count];
    s->vol[i] = last;
    vol_index_set(last, i);
    if (s->vol_count == 0) {
        hy_free(s->vol); /* so an empty store holds no memory */
        s->vol = NULL;
        s->vol_cap = 0;
    } else if (s->vol_cap > 64 && s->vol_count * 4 < s->vol_cap) {
        s->vol_cap /= 2;
        s->vol = hy_xrealloc(s->vol, s->vol_cap * sizeof(*s->vol));
    }
}

void store__link(struct store *s, struct store_obj *e)
{
    htab_insert(&s->keys, &e->node);
    if (se_volatile(e)) {
        vol_add(s, e);
    }
    s->obj_bytes += store__entry_bytes(e);
}

void store__unlink(struct store *s, struct store_obj *e)
{
    const uint8_t *k;
    size_t klen;
    store__key(e, &k, &klen);
    struct htab_node *n = htab_remove(&s->keys, k, klen);
    HY_ASSERT(n == &e->node);
    if (se_volatile(e)) {
        vol_del(s, e);
    }
    s->obj_bytes -= store__entry_bytes(e);
}

void store__delete(struct store *s, struct store_obj *e)
{
    store__unlink(s, e);
    store__entry_free(e);
}

void store__swap(struct store *s, struct store_obj *old, struct store_obj *new_e)
{
    new_e->lru = old->lru;
    htab_replace(&s->keys, &old->node, &new_e->node);
    s->obj_bytes -= hy_alloc_size(old);
    s->obj_bytes += hy_alloc_size(new_e);
    if (se_volatile(old) && se_volatile(new_e)) {
        uint32_t i = vol_index(old);
        s->vol[i] = new_e;
        vol_index_set(new_e, i);
    } else if (se_volatile(old)) {
        vol_del(s, old);
    } else if (se_volatile(new_e)) {
        vol_add(s, new_e);
    }
    hy_free(old);
}

static int expired_at(const struct store_obj *e, uint64_t now_ms)
{
    int64_t at = store__expire(e);
    return at >= 0 && (uint64_t)at <= now_ms;
}

struct store_obj *store__lookup_write(struct store *s, const uint8_t *k, size_t klen,
                                      uint64_t time_ms)
{
    struct store_obj *e = (struct store_obj *)htab_find(&s->keys, k, klen);
    if (e != NULL && expired_at(e, time_ms)) {
        store__delete(s, e);
        s->expired_deleted++;
        store__notify(s, STORE_NOTIFY_EXPIRED, "expired", k, klen);
        return NULL;
    }
    return e;
}

uint64_t store_expired_count(const struct store *s)
{
    return s->expired_deleted;
}

struct store_obj *store__set_expire(struct store *s, struct store_obj *e, int64_t at)
{
    if (se_volatile(e) && at >= 0) {
        store__set_expire_inplace(e, at);
        return e;
    }
    if (!se_volatile(e) && at < 0) {
        return e;
    }
    const uint8_t *k;
    size_t klen;
    store__key(e, &k, &klen);
    size_t outside = store__entry_bytes(e) - hy_alloc_size(e); /* a set's list may move in */
    struct store_obj *n = store__entry_move(e, k, klen, at);
    store__swap(s, e, n);
    s->obj_bytes = s->obj_bytes - outside + (store__entry_bytes(n) - hy_alloc_size(n));
    return n;
}

struct store_obj *store__entry_move(const struct store_obj *e, const uint8_t *k, size_t klen,
                                    int64_t at)
{
    struct se_layout l;
    store__layout(e, &l);
    if (se_type(e) == STORE_SET) {
        const struct hobj *h = set_obj(e);
        struct store_obj *n = store__entry_new(STORE_SET, at, k, klen, store__hobj_payload(h));
        size_t room_len;
        uint8_t *room = set_room(n, &room_len);
        store__hobj_move(set_obj(n), h, room, room_len);
        return n;
    }
    struct store_obj *n = store__entry_new(se_type(e), at, k, klen, l.vlen);
    if (se_type(e) != STORE_STRING) {
        store__set_vobj(n, store__vobj(e));
    } else if (l.vlen > 0) {
        memcpy(store__value_ptr(n), e->data + l.val_off, l.vlen);
    }
    return n;
}

struct store_obj *store__set_pack(struct store *s, struct store_obj *o)
{
    if (se_type(o) != STORE_SET) {
        return o;
    }
    struct hobj *h = set_obj(o);
    size_t before = store__hobj_extra_bytes(h);
    size_t room_len;
    uint8_t *room = set_room(o, &room_len);
    if (!store__hobj_inline(h, room, room_len)) {
        const uint8_t *k;
        size_t klen;
        store__key(o, &k, &klen);
        struct store_obj *n = store__entry_move(o, k, klen, store__expire(o));
        store__swap(s, o, n); /* the entry's usable size, counted there */
        o = n;
        h = set_obj(o);
    }
    s->obj_bytes = s->obj_bytes - before + store__hobj_extra_bytes(h);
    return o;
}

int store__string_overwrite(struct store_obj *e, const uint8_t *v, size_t vlen, int64_t at)
{
    if (se_type(e) != STORE_STRING || se_volatile(e) != (at >= 0)) {
        return 0;
    }
    struct se_layout l;
    store__layout(e, &l);
    if (varint_len(vlen) != varint_len(l.vlen)) {
        return 0;
    }
    size_t size = offsetof(struct store_obj, data) + l.key_off + l.klen + vlen;
    size_t usable = hy_alloc_size(e);
    if (size > usable || usable - size > 16 + usable / 8) {
        return 0;
    }
    if (at >= 0) {
        store__set_expire_inplace(e, at);
    }
    /* The length varint sits just before the key (its length unchanged). */
    varint_put(e->data + l.key_off - varint_len(vlen), vlen);
    if (vlen > 0) {
        memmove(e->data + l.key_off + l.klen, v, vlen);
    }
    return 1;
}

struct store_obj *store__set_string(struct store *s, struct store_obj *e, const uint8_t *v,
                                    size_t vlen)
{
    HY_ASSERT(se_type(e) == STORE_STRING);
    const uint8_t *k;
    size_t klen;
    store__key(e, &k, &klen);
    struct store_obj *n = store__entry_new(STORE_STRING, store__expire(e), k, klen, vlen);
    if (vlen > 0) {
        memmove(store__value_ptr(n), v, vlen); /* v may point into e, still alive here */
    }
    store__swap(s, e, n);
    return n;
}

static void entry_free_cb(void *ctx, struct htab_node *n)
{
    (void)ctx;
    store__entry_free((struct store_obj *)n);
}

void store__flush(struct store *s)
{
    htab_clear(&s->keys, entry_free_cb, NULL);
    hy_free(s->vol);
    s->vol = NULL;
    s->vol_count = 0;
    s->vol_cap = 0;
    s->obj_bytes = 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static uint64_t seed_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

struct store *store_create(const struct store_config *cfg, const struct hy_log *log)
{
    struct store *s = hy_xcalloc(1, sizeof(*s));
    s->log = log;
    store_configure(s, cfg);
    hy_prng_seed(&s->prng, cfg->seed);
    /* Tables hash with a seed derived from (not equal to) the sampling seed. Snapshots are
     * written in key order, so replicas with different seeds still encode identically. */
    s->hash_seed = seed_mix(cfg->seed ^ 0x68616c7961726421ULL);
    htab_init(&s->keys, store__entry_key_fn, s->hash_seed);
    return s;
}

void store_destroy(struct store *s)
{
    if (s == NULL) {
        return;
    }
    store__flush(s);
    store__sessions_free(s);
    store__members_free(s);
    store__acl_free(s);
    store__watch_free(s);
    store__scripts_free(s);
    store__libraries_free(s);
    store__wans_free(s);
    store__hlc_free(s);
    store__wan_stats_free(s);
    hy_free(s);
}

void store_configure(struct store *s, const struct store_config *cfg)
{
    /* The seed is fixed at creation: reseeding would change table hashing under live keys. */
    uint64_t seed = s->cfg.seed;
    struct store_encoding enc = s->cfg.encoding;
    s->cfg = *cfg;
    if (s->keys.key_fn != NULL) {
        s->cfg.seed = seed;
        s->cfg.encoding = enc; /* replicated: only entries change it (STORE_OP_ENCODING_SET) */
    }
    if (s->cfg.maxmemory_samples == 0) {
        s->cfg.maxmemory_samples = 5;
    }
    if (!s->cfg.encoding.set) {
        s->cfg.encoding = (struct store_encoding)STORE_ENCODING_DEFAULT;
    }
}

const struct store_encoding *store_encoding(const struct store *s)
{
    return &s->cfg.encoding;
}

/* Redis's names of the thresholds, with where each is kept and its least value. */
static const struct {
    const char *name;
    size_t off;
    int64_t min;
} encoding_names[] = {
    {"hash-max-listpack-entries", offsetof(struct store_encoding, hash_entries), 0},
    {"hash-max-ziplist-entries", offsetof(struct store_encoding, hash_entries), 0},
    {"hash-max-listpack-value", offsetof(struct store_encoding, hash_value), 0},
    {"hash-max-ziplist-value", offsetof(struct store_encoding, hash_value), 0},
    {"list-max-listpack-size", offsetof(struct store_encoding, list_size), INT32_MIN},
    {"list-max-ziplist-size", offsetof(struct store_encoding, list_size), INT32_MIN},
    {"list-compress-depth", offsetof(struct store_encoding, list_compress), 0},
    {"set-max-intset-entries", offsetof(struct store_encoding, set_intset_entries), 0},
    {"set-max-listpack-entries", offsetof(struct store_encoding, set_entries), 0},
    {"set-max-listpack-value", offsetof(struct store_encoding, set_value), 0},
    {"zset-max-listpack-entries", offsetof(struct store_encoding, zset_entries), 0},
    {"zset-max-ziplist-entries", offsetof(struct store_encoding, zset_entries), 0},
    {"zset-max-listpack-value", offsetof(struct store_encoding, zset_value), 0},
    {"zset-max-ziplist-value", offsetof(struct store_encoding, zset_value), 0},
    {"stream-node-max-entries", offsetof(struct store_encoding, stream_entries), 0},
    {"stream-node-max-bytes", offsetof(struct store_encoding, stream_bytes), 0},
};

const char *store_encoding_name(size_t i)
{
    return i < HY_ARRAY_LEN(encoding_names) ? encoding_names[i].name : NULL;
}

static int encoding_find(const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < HY_ARRAY_LEN(encoding_names); i++) {
        if (hy_eq_nocase(name, len, encoding_names[i].name)) {
            return (int)i;
        }
    }
    return -1;
}

int store_encoding_set(struct store_encoding *enc, const uint8_t *name, size_t len, int64_t v)
{
    int i = encoding_find(name, len);
    if (i < 0 || v < encoding_names[i].min || v > INT32_MAX) {
        return 0;
    }
    memcpy((char *)enc + encoding_names[i].off, &v, sizeof(v));
    return 1;
}

int store_encoding_get(const struct store_encoding *enc, const char *name, int64_t *v)
{
    int i = encoding_find((const uint8_t *)name, strlen(name));
    if (i < 0) {
        return 0;
    }
    memcpy(v, (const char *)enc + encoding_names[i].off, sizeof(*v));
    return 1;
}

void store__op_encoding_set(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    /* On a copy, so that an entry with one bad pair changes nothing (every replica refuses it
     * alike: the check depends on the entry only). */
    struct store_encoding enc = s->cfg.encoding;
    for (uint32_t i = 0; i + 1 < e->argc; i += 2) {
        int64_t v;
        if (!hy_parse_i64(e->argv[i + 1].ptr, e->argv[i + 1].len, &v) ||
            !store_encoding_set(&enc, e->argv[i].ptr, e->argv[i].len, v)) {
            if (w != NULL) {
                resp_write_error(w, "ERR invalid encoding threshold");
            }
            return;
        }
    }
    s->cfg.encoding = enc;
    if (w != NULL) {
        resp_write_ok(w);
    }
}

/* ---- reads ---------------------------------------------------------------------------------- */

const struct store_obj *store_find(struct store *s, const uint8_t *key, size_t klen,
                                   uint64_t now_ms)
{
    struct store_obj *e = (struct store_obj *)htab_find(&s->keys, key, klen);
    if (e == NULL || expired_at(e, now_ms)) {
        return NULL;
    }
    e->lru = (uint32_t)(now_ms >> SE_LRU_SHIFT);
    return e;
}

const struct store_obj *store_peek(const struct store *s, const uint8_t *key, size_t klen,
                                   uint64_t now_ms)
{
    struct store_obj *e = (struct store_obj *)htab_find(&s->keys, key, klen);
    return e == NULL || expired_at(e, now_ms) ? NULL : e;
}

uint64_t store_obj_idle_ms(const struct store_obj *o, uint64_t now_ms)
{
    uint32_t clock = (uint32_t)(now_ms >> SE_LRU_SHIFT);
    return (uint64_t)(uint32_t)(clock - o->lru) << SE_LRU_SHIFT; /* modulo 2^32: wraps */
}

/* A few draws find a live key unless nearly all have expired unseen by the log; then none is
 * answered rather than loop (Redis bounds its own search the same way). */
#define RANDOM_KEY_TRIES 100

int store_random_key(struct store *s, uint64_t now_ms, const uint8_t **k_out, size_t *klen_out)
{
    for (int i = 0; i < RANDOM_KEY_TRIES && htab_count(&s->keys) > 0; i++) {
        struct store_obj *e = (struct store_obj *)htab_random(&s->keys, &s->prng);
        if (e != NULL && !expired_at(e, now_ms)) {
            store__key(e, k_out, klen_out);
            return 1;
        }
    }
    return 0;
}

enum store_type store_obj_type(const struct store_obj *o)
{
    return se_type(o);
}

int64_t store_obj_expire_at(const struct store_obj *o)
{
    return store__expire(o);
}

void store_obj_string(const struct store_obj *o, const uint8_t **p_out, size_t *len_out)
{
    HY_ASSERT(se_type(o) == STORE_STRING);
    struct se_layout l;
    store__layout(o, &l);
    *p_out = o->data + l.val_off;
    *len_out = l.vlen;
}

size_t store_hash_len(const struct store_obj *o)
{
    return store__hobj_count(store__hobj(o));
}

int store_hash_get(const struct store_obj *o, const uint8_t *f, size_t flen, const uint8_t **v_out,
                   size_t *vlen_out)
{
    return store__hobj_get(store__hobj(o), f, flen, v_out, vlen_out);
}

void store_hash_foreach(const struct store_obj *o, store_field_cb cb, void *ctx)
{
    store__hobj_foreach(store__hobj(o), cb, ctx);
}

uint64_t store_hash_scan(const struct store_obj *o, uint64_t cursor, size_t count_hint,
                         store_field_cb cb, void *ctx)
{
    return store__hobj_scan(store__hobj(o), cursor, count_hint, cb, ctx);
}

void store_hash_random(struct store *s, const struct store_obj *o, const uint8_t **f_out,
                       size_t *flen_out, const uint8_t **v_out, size_t *vlen_out)
{
    store__hobj_random(store__hobj(o), &s->prng, f_out, flen_out, v_out, vlen_out);
}

static const struct hobj *set_hobj(const struct store_obj *o);

size_t store_obj_bytes(const struct store_obj *o)
{
    return store__entry_bytes(o);
}

int store_obj_compact(const struct store_obj *o)
{
    if (se_type(o) == STORE_ZSET) {
        return store__zobj_compact(store__zobj(o));
    }
    return store__hobj_compact(store__hobj(o));
}

int store_set_intset(const struct store_obj *o)
{
    return store__hobj_intset(set_hobj(o));
}

int store_list_compact(const struct store_obj *o)
{
    return store__lobj_compact(store__lobj(o));
}

size_t store_list_len(const struct store_obj *o)
{
    return store__lobj_count(store__lobj(o));
}

void store_list_at(const struct store_obj *o, size_t index, const uint8_t **p_out, size_t *len_out)
{
    store__lobj_get(store__lobj(o), index, p_out, len_out);
}

static const struct hobj *set_hobj(const struct store_obj *o)
{
    HY_ASSERT(se_type(o) == STORE_SET);
    return store__hobj(o);
}

size_t store_set_len(const struct store_obj *o)
{
    return store__hobj_count(set_hobj(o));
}

int store_set_has(const struct store_obj *o, const uint8_t *m, size_t mlen)
{
    const uint8_t *v;
    size_t vlen;
    return store__hobj_get(set_hobj(o), m, mlen, &v, &vlen);
}

void store_set_foreach(const struct store_obj *o, store_field_cb cb, void *ctx)
{
    store__hobj_foreach(set_hobj(o), cb, ctx);
}

uint64_t store_set_scan(const struct store_obj *o, uint64_t cursor, size_t count_hint,
                        store_field_cb cb, void *ctx)
{
    return store__hobj_scan(set_hobj(o), cursor, count_hint, cb, ctx);
}

void store_set_random(const struct store_obj *o, struct hy_prng *prng, const uint8_t **m_out,
                      size_t *mlen_out)
{
    const uint8_t *v;
    size_t vlen;
    store__hobj_random(set_hobj(o), prng, m_out, mlen_out, &v, &vlen);
}

struct all_int {
    int yes;
};

static void all_int_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    struct all_int *a = ctx;
    int64_t x;
    if (a->yes && !hy_parse_i64(m, mlen, &x)) {
        a->yes = 0;
    }
}

int store_set_all_int(const struct store_obj *o)
{
    struct all_int a = {1};
    store__hobj_foreach(set_hobj(o), all_int_cb, &a);
    return a.yes;
}

size_t store_key_count(const struct store *s)
{
    return htab_count(&s->keys);
}

size_t store_volatile_count(const struct store *s)
{
    return s->vol_count;
}

struct key_visit {
    store_key_cb cb;
    void *ctx;
    uint64_t now_ms;
};

static void key_visit_cb(void *ctx, struct htab_node *n)
{
    struct key_visit *kv = ctx;
    const struct store_obj *e = (const struct store_obj *)n;
    if (expired_at(e, kv->now_ms)) {
        return;
    }
    const uint8_t *k;
    size_t klen;
    store__key(e, &k, &klen);
    kv->cb(kv->ctx, k, klen, e);
}

uint64_t store_scan(struct store *s, uint64_t cursor, size_t count_hint, uint64_t now_ms,
                    store_key_cb cb, void *ctx)
{
    struct key_visit kv = {cb, ctx, now_ms};
    size_t steps = HY_MAX(count_hint, 1);
    do {
        cursor = htab_scan(&s->keys, cursor, key_visit_cb, &kv);
    } while (cursor != 0 && --steps > 0);
    return cursor;
}

size_t store_used_bytes(const struct store *s)
{
    /* The WATCH buckets (store_watch.c) are a fixed part of the store, like its struct. */
    return s->obj_bytes + s->keys.table_bytes + vol_cap_bytes(s);
}

int store_rehash_step(struct store *s, unsigned steps)
{
    return htab_rehash_step(&s->keys, steps);
}

int store_over_maxmemory(const struct store *s)
{
    return s->cfg.maxmemory_bytes > 0 && store_used_bytes(s) > s->cfg.maxmemory_bytes;
}

struct check_ctx {
    const struct store *s;
    size_t keys;
    size_t volatiles;
    size_t bytes;
};

static void check_entry_cb(void *ctx, struct htab_node *n)
{
    struct check_ctx *c = ctx;
    const struct store_obj *e = (const struct store_obj *)n;
    HY_ASSERT(se_type(e) >= STORE_STRING && se_type(e) <= STORE_STREAM);
    c->keys++;
    c->bytes += store__entry_bytes(e);
    if (se_volatile(e)) {
        c->volatiles++;
        HY_ASSERT(vol_index(e) < c->s->vol_count && c->s->vol[vol_index(e)] == e);
        HY_ASSERT(store__expire(e) >= 0);
    }
    if (se_type(e) == STORE_HASH || se_type(e) == STORE_SET) {
        const struct hobj *h = store__hobj(e);
        HY_ASSERT(store__hobj_count(h) > 0); /* an empty hash or set is deleted, never kept */
        store__hobj_check(h, se_type(e) == STORE_SET);
    } else if (se_type(e) == STORE_LIST) {
        HY_ASSERT(store__lobj_count(store__lobj(e)) > 0);
        store__lobj_check(store__lobj(e));
    } else if (se_type(e) == STORE_ZSET) {
        HY_ASSERT(store__zobj_count(store__zobj(e)) > 0);
        store__zobj_check(store__zobj(e));
    } else if (se_type(e) == STORE_STREAM) {
        store__xobj_check(store__xobj(e)); /* a stream may be empty (XDEL, XTRIM, MKSTREAM) */
    }
}

void store_check_invariants(const struct store *s)
{
    struct check_ctx c = {.s = s};
    htab_foreach(&s->keys, check_entry_cb, &c);
    HY_ASSERT(c.keys == htab_count(&s->keys));
    HY_ASSERT(c.volatiles == s->vol_count);
    HY_ASSERT(c.bytes == s->obj_bytes);
    HY_ASSERT(s->vol_count <= s->vol_cap);
}
