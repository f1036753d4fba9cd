/* Unit tests for src/store: hash table, every log op's replies, expiry, eviction, codecs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/crc.h"
#include "common/prng.h"
#include "common/sha1.h"
#include "store/htab.h"
#include "store/store.h"

#define S(lit) (const uint8_t *)(lit), strlen(lit)

#define WRONGTYPE "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
#define NIL       "$-1\r\n"
#define OK        "+OK\r\n"

#if defined(__SANITIZE_ADDRESS__)
#define BIG_KEYS 100000
#else
#define BIG_KEYS 1000000
#endif

/* ---- helpers ------------------------------------------------------------------------------- */

static struct store *new_store(uint64_t seed, size_t maxmemory, enum store_evict_policy policy)
{
    struct store_config cfg = {
        .seed = seed, .maxmemory_bytes = maxmemory, .policy = policy, .maxmemory_samples = 5};
    return store_create(&cfg, NULL);
}

static void encode(struct hy_buf *out, enum store_op op, uint32_t flags, uint64_t t, int64_t exp,
                   int64_t incr, va_list ap)
{
    struct store_arg argv[64];
    uint32_t argc = 0;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        argv[argc].ptr = (const uint8_t *)a;
        argv[argc].len = strlen(a);
        argc++;
    }
    struct store_entry e = {op, flags, t, exp, incr, argc, argv};
    store_entry_encode(&e, out);
}

/* Applies one entry built from NULL-terminated string args; returns the RESP2 reply text. */
static const char *run(struct store *s, enum store_op op, uint32_t flags, uint64_t t, int64_t exp,
                       int64_t incr, ...)
{
    static char text[8192];
    struct hy_buf entry, out;
    hy_buf_init(&entry);
    hy_buf_init(&out);
    va_list ap;
    va_start(ap, incr);
    encode(&entry, op, flags, t, exp, incr, ap);
    va_end(ap);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    HY_ASSERT(out.len < sizeof(text));
    if (out.len > 0) { /* an op with no reply (EXPIRED, EVICT) leaves out.data NULL */
        memcpy(text, out.data, out.len);
    }
    text[out.len] = '\0';
    hy_buf_free(&entry);
    hy_buf_free(&out);
    return text;
}

/* The string at key, or NULL when absent at now. */
static const char *get(struct store *s, const char *key, uint64_t now)
{
    static char text[8192];
    const struct store_obj *o = store_find(s, S(key), now);
    if (o == NULL) {
        return NULL;
    }
    assert_int_equal(store_obj_type(o), STORE_STRING);
    const uint8_t *v;
    size_t len;
    store_obj_string(o, &v, &len);
    memcpy(text, v, len);
    text[len] = '\0';
    return text;
}

static int64_t ttl_at(struct store *s, const char *key, uint64_t now)
{
    const struct store_obj *o = store_find(s, S(key), now);
    assert_non_null(o);
    return store_obj_expire_at(o);
}

static void snapshot(struct store *s, struct hy_buf *out)
{
    hy_buf_init(out);
    store_snapshot_encode(s, out);
}

/* The content's canonical bytes (keys sorted): a snapshot's records come in table order. */
static void canonical(struct store *s, struct hy_buf *out)
{
    hy_buf_init(out);
    store_digest_encode(s, out);
}

/* ---- hash table ---------------------------------------------------------------------------- */

struct tnode {
    struct htab_node node;
    char key[24];
};

static void tnode_key(const struct htab_node *n, const uint8_t **k, size_t *klen)
{
    const struct tnode *t = (const struct tnode *)n;
    *k = (const uint8_t *)t->key;
    *klen = strlen(t->key);
}

static struct tnode *tnodes(size_t n)
{
    struct tnode *v = hy_xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        snprintf(v[i].key, sizeof(v[i].key), "k%zu", i);
    }
    return v;
}

/* The table grows incrementally (two tables at once), finds every key meanwhile, shrinks when
 * sparse, and frees its buckets when empty. */
static void test_htab_grow_shrink(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct tnode *v = tnodes(N);
    struct htab h;
    htab_init(&h, tnode_key, 7);
    int saw_rehash = 0;
    for (size_t i = 0; i < N; i++) {
        htab_insert(&h, &v[i].node);
        saw_rehash |= htab_is_rehashing(&h);
        if (i % 997 == 0) {
            for (size_t j = 0; j <= i; j += 101) {
                assert_ptr_equal(htab_find(&h, S(v[j].key)), &v[j].node);
            }
        }
    }
    assert_true(saw_rehash);
    assert_int_equal(htab_count(&h), N);
    while (htab_rehash_step(&h, 100)) {
    }
    size_t full = h.table_bytes;
    for (size_t i = 0; i < N - 10; i++) {
        assert_ptr_equal(htab_remove(&h, S(v[i].key)), &v[i].node);
    }
    while (htab_rehash_step(&h, 100)) {
    }
    assert_true(h.table_bytes * 100 < full);
    assert_null(htab_find(&h, S("k0")));
    assert_non_null(htab_find(&h, S(v[N - 1].key)));
    for (size_t i = N - 10; i < N; i++) {
        assert_non_null(htab_remove(&h, S(v[i].key)));
    }
    assert_int_equal(h.table_bytes, 0);
    assert_null(htab_remove(&h, S("k1")));
    hy_free(v);
}

struct seen {
    unsigned char *hits;
    struct tnode *base;
};

static void seen_cb(void *ctx, struct htab_node *n)
{
    struct seen *s = ctx;
    s->hits[(struct tnode *)n - s->base] = 1;
}

/* SCAN returns every key present for the whole scan although the table grows and then
 * shrinks (and is mid-rehash) between cursor calls. */
static void test_htab_scan_across_rehash(void **state)
{
    (void)state;
    enum { STABLE = 3000, EXTRA = 30000 };
    struct tnode *v = tnodes(STABLE + EXTRA);
    struct htab h;
    htab_init(&h, tnode_key, 11);
    for (size_t i = 0; i < STABLE; i++) {
        htab_insert(&h, &v[i].node);
    }
    struct seen s = {hy_xcalloc(STABLE + EXTRA, 1), v};
    uint64_t cur = 0;
    size_t added = 0, calls = 0;
    int saw_rehash = 0;
    do {
        cur = htab_scan(&h, cur, seen_cb, &s);
        calls++;
        /* Grow hard during the first half of the scan, then shrink back. */
        for (int k = 0; k < 40 && calls < 2000 && added < EXTRA; k++) {
            htab_insert(&h, &v[STABLE + added++].node);
        }
        if (calls >= 2000) {
            for (int k = 0; k < 40 && added > 0; k++) {
                added--;
                htab_remove(&h, S(v[STABLE + added].key));
            }
        }
        saw_rehash |= htab_is_rehashing(&h);
    } while (cur != 0);
    assert_true(saw_rehash);
    for (size_t i = 0; i < STABLE; i++) {
        assert_true(s.hits[i]);
    }
    htab_clear(&h, NULL, NULL);
    hy_free(s.hits);
    hy_free(v);
}

/* ---- strings ------------------------------------------------------------------------------- */

/* SET stores, replaces and answers +OK; NX/XX gate it with a null reply or :0/:1 for SETNX. */
static void test_set_flags(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_SET, 0, 10, -1, 0, "k", "v", NULL), OK);
    assert_string_equal(get(s, "k", 10), "v");
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_NX, 10, -1, 0, "k", "w", NULL), NIL);
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_XX, 10, -1, 0, "k", "w", NULL), OK);
    assert_string_equal(get(s, "k", 10), "w");
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_XX, 10, -1, 0, "n", "x", NULL), NIL);
    assert_null(get(s, "n", 10));
    assert_string_equal(
        run(s, STORE_OP_SET, STORE_F_NX | STORE_F_REPLY_INT, 10, -1, 0, "k", "z", NULL), ":0\r\n");
    assert_string_equal(
        run(s, STORE_OP_SET, STORE_F_NX | STORE_F_REPLY_INT, 10, -1, 0, "n", "z", NULL), ":1\r\n");
    /* GET answers the old value, even when NX stops the write. */
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_GET, 10, -1, 0, "k", "g", NULL),
                        "$1\r\nw\r\n");
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_GET | STORE_F_NX, 10, -1, 0, "k", "h", NULL),
                        "$1\r\ng\r\n");
    assert_string_equal(get(s, "k", 10), "g");
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_GET, 10, -1, 0, "new", "1", NULL), NIL);
    assert_string_equal(run(s, STORE_OP_SET, 0, 10, -1, 0, "e", "", NULL), OK);
    assert_string_equal(get(s, "e", 10), "");
    store_destroy(s);
}

/* A hint of entry bytes, both steps (store_prefetch_bucket, then store_prefetch_node when it
 * named a key); returns whether it did. */
static int prefetch(const struct store *s, const uint8_t *entry, size_t len)
{
    uint64_t hv = 0;
    int key = store_prefetch_bucket(s, entry, len, &hv);
    if (key) {
        store_prefetch_node(s, hv);
    }
    return key;
}

/* Proves the prefetch hints are only hints: on a key present or absent, on an empty store, on
 * an entry without arguments and on truncated or foreign bytes they change nothing and read
 * nothing past the entry (the truncations run under ASan); a hint names a key only for an
 * entry that has one. */
static void encode_args(struct hy_buf *out, enum store_op op, ...)
{
    va_list ap;
    va_start(ap, op);
    encode(out, op, 0, 10, -1, 0, ap);
    va_end(ap);
}

static void test_prefetch_is_only_a_hint(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    struct hy_buf b;
    hy_buf_init(&b);
    encode_args(&b, STORE_OP_SET, "k", "v", NULL);
    assert_true(prefetch(s, b.data, b.len)); /* empty store */
    assert_string_equal(run(s, STORE_OP_SET, 0, 10, -1, 0, "k", "v", NULL), OK);
    size_t used = store_used_bytes(s);
    for (size_t len = 0; len <= b.len; len++) {
        uint8_t *copy = hy_xmalloc(len ? len : 1);
        memcpy(copy, b.data, len);
        /* a key only once its bytes are whole: "v" and its length byte come after it */
        assert_int_equal(prefetch(s, copy, len), len >= b.len - 2);
        hy_free(copy);
    }
    hy_buf_reset(&b);
    encode_args(&b, STORE_OP_FLUSHALL, NULL);
    assert_false(prefetch(s, b.data, b.len)); /* no argument */
    static const uint8_t junk[] = {0xff, 0x01, 0x02};
    assert_false(prefetch(s, junk, sizeof(junk)));
    store_prefetch_node(s, 0x123456789abcdefULL); /* any hash: still only a hint */
    assert_int_equal(store_key_count(s), 1);
    assert_int_equal(store_used_bytes(s), used);
    assert_string_equal(get(s, "k", 10), "v");
    hy_buf_free(&b);
    store_destroy(s);
}

/* SET clears a TTL unless KEEPTTL; a past expiry leaves no key; SET GET on a hash is WRONGTYPE
 * and changes nothing, while plain SET replaces the hash. */
static void test_set_ttl_and_type(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 10, 1000, 0, "k", "v", NULL);
    assert_int_equal(ttl_at(s, "k", 10), 1000);
    assert_int_equal(store_volatile_count(s), 1);
    run(s, STORE_OP_SET, STORE_F_KEEPTTL, 20, -1, 0, "k", "v2", NULL);
    assert_int_equal(ttl_at(s, "k", 20), 1000);
    run(s, STORE_OP_SET, 0, 30, -1, 0, "k", "v3", NULL);
    assert_int_equal(ttl_at(s, "k", 30), -1);
    assert_int_equal(store_volatile_count(s), 0);
    assert_string_equal(run(s, STORE_OP_SET, 0, 40, 40, 0, "k", "gone", NULL), OK);
    assert_null(get(s, "k", 40));
    assert_int_equal(store_key_count(s), 0);
    run(s, STORE_OP_HSET, 0, 50, -1, 0, "h", "f", "v", NULL);
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_GET, 50, -1, 0, "h", "x", NULL), WRONGTYPE);
    assert_int_equal(store_obj_type(store_find(s, S("h"), 50)), STORE_HASH);
    assert_string_equal(run(s, STORE_OP_SET, 0, 50, -1, 0, "h", "x", NULL), OK);
    assert_string_equal(get(s, "h", 50), "x");
    store_destroy(s);
}

/* MSET sets all and clears TTLs; MSETNX sets none when any key exists. */
static void test_mset(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, 500, 0, "a", "old", NULL);
    assert_string_equal(run(s, STORE_OP_MSET, 0, 1, -1, 0, "a", "1", "b", "2", NULL), OK);
    assert_string_equal(get(s, "a", 1), "1");
    assert_int_equal(ttl_at(s, "a", 1), -1);
    assert_string_equal(run(s, STORE_OP_MSET, STORE_F_NX, 1, -1, 0, "c", "3", "a", "x", NULL),
                        ":0\r\n");
    assert_null(get(s, "c", 1));
    assert_string_equal(run(s, STORE_OP_MSET, STORE_F_NX, 1, -1, 0, "c", "3", "d", "4", NULL),
                        ":1\r\n");
    assert_string_equal(get(s, "d", 1), "4");
    store_destroy(s);
}

/* DEL counts only live keys; an expired key counts as absent. */
static void test_del(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_MSET, 0, 1, -1, 0, "a", "1", "b", "2", NULL);
    run(s, STORE_OP_SET, 0, 1, 100, 0, "t", "1", NULL);
    assert_string_equal(run(s, STORE_OP_DEL, 0, 200, -1, 0, "a", "b", "t", "zz", "a", NULL),
                        ":2\r\n");
    assert_int_equal(store_key_count(s), 0);
    assert_int_equal(store_volatile_count(s), 0);
    store_destroy(s);
}

/* EXPIRE follows Redis 7: NX/XX/GT/LT (no TTL counts as infinite), 0 on a missing key, and a
 * time not after the entry's time deletes the key and answers 1. */
static void test_expire_options(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "k", "v", NULL);
    assert_string_equal(run(s, STORE_OP_EXPIRE, 0, 1, 100, 0, "nope", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_XX, 1, 100, 0, "k", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_GT, 1, 100, 0, "k", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_LT, 1, 100, 0, "k", NULL), ":1\r\n");
    assert_int_equal(ttl_at(s, "k", 1), 100);
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_NX, 1, 200, 0, "k", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_GT, 1, 50, 0, "k", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_GT, 1, 300, 0, "k", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_LT, 1, 400, 0, "k", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_EXPIRE, STORE_F_XX, 1, 250, 0, "k", NULL), ":1\r\n");
    assert_int_equal(ttl_at(s, "k", 1), 250);
    assert_string_equal(run(s, STORE_OP_EXPIRE, 0, 10, 10, 0, "k", NULL), ":1\r\n");
    assert_null(get(s, "k", 10));
    assert_int_equal(store_key_count(s), 0);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "k", "v", NULL);
    assert_string_equal(run(s, STORE_OP_EXPIRE, 0, 1, -5, 0, "k", NULL), ":1\r\n");
    assert_int_equal(store_key_count(s), 0);
    store_destroy(s);
}

/* PERSIST removes a TTL (1) and answers 0 without one or without the key. */
static void test_persist(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, 100, 0, "k", "v", NULL);
    assert_string_equal(run(s, STORE_OP_PERSIST, 0, 1, -1, 0, "k", NULL), ":1\r\n");
    assert_int_equal(ttl_at(s, "k", 1), -1);
    assert_string_equal(run(s, STORE_OP_PERSIST, 0, 1, -1, 0, "k", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_PERSIST, 0, 1, -1, 0, "x", NULL), ":0\r\n");
    assert_int_equal(store_volatile_count(s), 0);
    store_destroy(s);
}

/* RENAME moves value and TTL and overwrites dst; src==dst is OK (RENAMENX 0); missing src is
 * "ERR no such key"; RENAMENX refuses an existing dst. */
static void test_rename(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_RENAME, 0, 1, -1, 0, "a", "b", NULL),
                        "-ERR no such key\r\n");
    assert_string_equal(run(s, STORE_OP_RENAME, STORE_F_NX, 1, -1, 0, "a", "b", NULL),
                        "-ERR no such key\r\n");
    run(s, STORE_OP_SET, 0, 1, 900, 0, "a", "va", NULL);
    run(s, STORE_OP_SET, 0, 1, 800, 0, "b", "vb", NULL);
    assert_string_equal(run(s, STORE_OP_RENAME, 0, 1, -1, 0, "a", "a", NULL), OK);
    assert_string_equal(run(s, STORE_OP_RENAME, STORE_F_NX, 1, -1, 0, "a", "a", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_RENAME, STORE_F_NX, 1, -1, 0, "a", "b", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_RENAME, 0, 1, -1, 0, "a", "b", NULL), OK);
    assert_null(get(s, "a", 1));
    assert_string_equal(get(s, "b", 1), "va");
    assert_int_equal(ttl_at(s, "b", 1), 900);
    assert_int_equal(store_volatile_count(s), 1);
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "v", NULL);
    assert_string_equal(run(s, STORE_OP_RENAME, STORE_F_NX, 1, -1, 0, "h", "h2", NULL), ":1\r\n");
    const struct store_obj *o = store_find(s, S("h2"), 1);
    assert_int_equal(store_obj_type(o), STORE_HASH);
    assert_int_equal(store_hash_len(o), 1);
    assert_int_equal(store_key_count(s), 2);
    store_destroy(s);
}

/* INCRBY creates, adds, keeps TTL, and answers Redis's errors for non-integers, overflow and
 * wrong types without changing the key. */
static void test_incrby(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_INCRBY, 0, 1, -1, 5, "n", NULL), ":5\r\n");
    run(s, STORE_OP_EXPIRE, 0, 1, 1000, 0, "n", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBY, 0, 1, -1, -7, "n", NULL), ":-2\r\n");
    assert_string_equal(get(s, "n", 1), "-2");
    assert_int_equal(ttl_at(s, "n", 1), 1000);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "m", "9223372036854775807", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBY, 0, 1, -1, 1, "m", NULL),
                        "-ERR increment or decrement would overflow\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "m", "-9223372036854775808", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBY, 0, 1, -1, -1, "m", NULL),
                        "-ERR increment or decrement would overflow\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "x", "12a", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBY, 0, 1, -1, 1, "x", NULL),
                        "-ERR value is not an integer or out of range\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "x", " 1", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBY, 0, 1, -1, 1, "x", NULL),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(get(s, "x", 1), " 1");
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "1", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBY, 0, 1, -1, 1, "h", NULL), WRONGTYPE);
    store_destroy(s);
}

/* INCRBYFLOAT formats as Redis, keeps TTL, rejects bad floats and NaN/Infinity results. */
static void test_incrbyfloat(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "f", "10.5", NULL),
                        "$4\r\n10.5\r\n");
    run(s, STORE_OP_EXPIRE, 0, 1, 1000, 0, "f", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "f", "0.1", NULL),
                        "$4\r\n10.6\r\n");
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "f", "-0.6", NULL),
                        "$2\r\n10\r\n");
    assert_int_equal(ttl_at(s, "f", 1), 1000);
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "f", "5.0e3", NULL),
                        "$4\r\n5010\r\n");
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "f", "abc", NULL),
                        "-ERR value is not a valid float\r\n");
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "f", "inf", NULL),
                        "-ERR increment would produce NaN or Infinity\r\n");
    assert_string_equal(get(s, "f", 1), "5010");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "t", "x1", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "t", "1", NULL),
                        "-ERR value is not a valid float\r\n");
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "1", NULL);
    assert_string_equal(run(s, STORE_OP_INCRBYFLOAT, 0, 1, -1, 0, "h", "1", NULL), WRONGTYPE);
    store_destroy(s);
}

/* APPEND creates or extends and keeps TTL; SETRANGE pads with zero bytes, creates nothing for an
 * empty value, and both refuse results beyond the maximum string size. */
static void test_append_setrange(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_APPEND, 0, 1, -1, 0, "a", "Hello", NULL), ":5\r\n");
    run(s, STORE_OP_EXPIRE, 0, 1, 1000, 0, "a", NULL);
    assert_string_equal(run(s, STORE_OP_APPEND, 0, 1, -1, 0, "a", " World", NULL), ":11\r\n");
    assert_string_equal(get(s, "a", 1), "Hello World");
    assert_int_equal(ttl_at(s, "a", 1), 1000);
    assert_string_equal(run(s, STORE_OP_SETRANGE, 0, 1, -1, 6, "a", "Redis", NULL), ":11\r\n");
    assert_string_equal(get(s, "a", 1), "Hello Redis");
    assert_int_equal(ttl_at(s, "a", 1), 1000);
    assert_string_equal(run(s, STORE_OP_SETRANGE, 0, 1, -1, 5, "z", "", NULL), ":0\r\n");
    assert_int_equal(store_key_count(s), 1);
    assert_string_equal(run(s, STORE_OP_SETRANGE, 0, 1, -1, 0, "a", "", NULL), ":11\r\n");
    assert_string_equal(run(s, STORE_OP_SETRANGE, 0, 1, -1, 3, "p", "ab", NULL), ":5\r\n");
    const uint8_t *v;
    size_t len;
    store_obj_string(store_find(s, S("p"), 1), &v, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(v, "\0\0\0ab", 5);
    const char *too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    assert_string_equal(
        run(s, STORE_OP_SETRANGE, 0, 1, -1, (int64_t)STORE_STRING_BYTES_MAX, "p", "x", NULL),
        too_big);
    assert_string_equal(run(s, STORE_OP_SETRANGE, 0, 1, -1, -1, "p", "x", NULL),
                        "-ERR offset is out of range\r\n");
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "1", NULL);
    assert_string_equal(run(s, STORE_OP_APPEND, 0, 1, -1, 0, "h", "x", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_SETRANGE, 0, 1, -1, 0, "h", "x", NULL), WRONGTYPE);
    store_destroy(s);
}

/* SETBIT grows the string with zeros (keeping its expiry) and answers the old bit; BITOP
 * combines sources as zero-padded to the longest and deletes the destination when all are
 * empty; both refuse other types and check their arguments at apply too. */
static void test_setbit_bitop(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_SETBIT, 0, 1, -1, 0, "b", "9", "1", NULL), ":0\r\n");
    const uint8_t *v;
    size_t len;
    store_obj_string(store_find(s, S("b"), 1), &v, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "\x00\x40", 2);
    assert_string_equal(run(s, STORE_OP_SETBIT, 0, 1, -1, 0, "b", "9", "0", NULL), ":1\r\n");
    run(s, STORE_OP_EXPIRE, 0, 1, 1000, 0, "b", NULL);
    assert_string_equal(run(s, STORE_OP_SETBIT, 0, 1, -1, 0, "b", "1", "1", NULL), ":0\r\n");
    assert_string_equal(get(s, "b", 1), "@");
    assert_int_equal(ttl_at(s, "b", 1), 1000);
    assert_string_equal(run(s, STORE_OP_SETBIT, 0, 1, -1, 0, "b", "-1", "1", NULL),
                        "-ERR bit offset is not an integer or out of range\r\n");
    assert_string_equal(run(s, STORE_OP_SETBIT, 0, 1, -1, 0, "b", "4294967296", "1", NULL),
                        "-ERR bit offset is not an integer or out of range\r\n");
    assert_string_equal(run(s, STORE_OP_SETBIT, 0, 1, -1, 0, "b", "1", "2", NULL),
                        "-ERR bit is not an integer or out of range\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "x", "\x0f\xf0", NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "y", "\xff", NULL);
    assert_string_equal(run(s, STORE_OP_BITOP, 0, 1, -1, 0, "d", "x", "y", "none", NULL), ":2\r\n");
    store_obj_string(store_find(s, S("d"), 1), &v, &len);
    assert_memory_equal(v, "\x00\x00", 2); /* AND with a missing key is all zeros */
    run(s, STORE_OP_BITOP, 0, 1, -1, 1, "d", "x", "y", NULL);
    store_obj_string(store_find(s, S("d"), 1), &v, &len);
    assert_memory_equal(v, "\xff\xf0", 2);
    run(s, STORE_OP_BITOP, 0, 1, -1, 2, "d", "x", "y", NULL);
    store_obj_string(store_find(s, S("d"), 1), &v, &len);
    assert_memory_equal(v, "\xf0\xf0", 2);
    run(s, STORE_OP_BITOP, 0, 1, -1, 3, "d", "x", NULL);
    store_obj_string(store_find(s, S("d"), 1), &v, &len);
    assert_memory_equal(v, "\xf0\x0f", 2);
    assert_string_equal(run(s, STORE_OP_BITOP, 0, 1, -1, 1, "d", "none", NULL), ":0\r\n");
    assert_null(store_find(s, S("d"), 1));
    assert_string_equal(run(s, STORE_OP_BITOP, 0, 1, -1, 3, "d", "x", "y", NULL),
                        "-ERR BITOP NOT must be called with a single source key.\r\n");
    assert_string_equal(run(s, STORE_OP_BITOP, 0, 1, -1, 9, "d", "x", NULL),
                        "-ERR syntax error\r\n");
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "1", NULL);
    assert_string_equal(run(s, STORE_OP_SETBIT, 0, 1, -1, 0, "h", "1", "1", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_BITOP, 0, 1, -1, 0, "d", "x", "h", NULL), WRONGTYPE);
    store_check_invariants(s);
    store_destroy(s);
}

/* BITFIELD: signed and unsigned fields across byte boundaries, SET answers the old value,
 * INCRBY the new one, and the three overflow rules (FAIL answers nil and writes nothing). */
static void test_bitfield(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "f", "SET", "u8", "4", "255", "GET",
                            "i8", "4", "GET", "u4", "#1", NULL),
                        "*3\r\n:0\r\n:-1\r\n:15\r\n");
    const uint8_t *v;
    size_t len;
    store_obj_string(store_find(s, S("f"), 1), &v, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "\x0f\xf0", 2);
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "g", "INCRBY", "u2", "100", "1",
                            "OVERFLOW", "SAT", "INCRBY", "u2", "102", "5", NULL),
                        "*2\r\n:1\r\n:3\r\n");
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "g", "OVERFLOW", "FAIL", "INCRBY",
                            "u2", "102", "1", "OVERFLOW", "WRAP", "INCRBY", "i8", "0", "200", NULL),
                        "*2\r\n$-1\r\n:-56\r\n");
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "k64", "INCRBY", "i64", "0",
                            "9223372036854775807", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "100",
                            NULL),
                        "*2\r\n:9223372036854775807\r\n:9223372036854775807\r\n");
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "none", "GET", "u8", "0", NULL),
                        "*1\r\n:0\r\n");
    assert_null(store_find(s, S("none"), 1));
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "g", "GET", "u64", "0", NULL),
                        "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is "
                        "not supported but i64 is.\r\n");
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "g", "OVERFLOW", "X", NULL),
                        "-ERR Invalid OVERFLOW type specified\r\n");
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "g", "SET", "u8", "0", NULL),
                        "-ERR syntax error\r\n");
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "1", NULL);
    assert_string_equal(run(s, STORE_OP_BITFIELD, 0, 1, -1, 0, "h", "GET", "u8", "0", NULL),
                        WRONGTYPE);
    store_check_invariants(s);
    store_destroy(s);
}

/* GETDEL answers and deletes; GETEX answers and sets, keeps, clears (PERSIST) or, with a past
 * time, deletes. Both refuse hashes. */
static void test_getdel_getex(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "k", "v", NULL);
    assert_string_equal(run(s, STORE_OP_GETDEL, 0, 1, -1, 0, "k", NULL), "$1\r\nv\r\n");
    assert_string_equal(run(s, STORE_OP_GETDEL, 0, 1, -1, 0, "k", NULL), NIL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "k", "v", NULL);
    assert_string_equal(run(s, STORE_OP_GETEX, 0, 1, 500, 0, "k", NULL), "$1\r\nv\r\n");
    assert_int_equal(ttl_at(s, "k", 1), 500);
    assert_string_equal(run(s, STORE_OP_GETEX, 0, 1, -1, 0, "k", NULL), "$1\r\nv\r\n");
    assert_int_equal(ttl_at(s, "k", 1), 500);
    run(s, STORE_OP_GETEX, STORE_F_PERSIST, 1, -1, 0, "k", NULL);
    assert_int_equal(ttl_at(s, "k", 1), -1);
    assert_string_equal(run(s, STORE_OP_GETEX, 0, 5, 5, 0, "k", NULL), "$1\r\nv\r\n");
    assert_null(get(s, "k", 5));
    assert_string_equal(run(s, STORE_OP_GETEX, 0, 5, -1, 0, "k", NULL), NIL);
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "1", NULL);
    assert_string_equal(run(s, STORE_OP_GETDEL, 0, 1, -1, 0, "h", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_GETEX, 0, 1, -1, 0, "h", NULL), WRONGTYPE);
    assert_int_equal(store_key_count(s), 1);
    store_destroy(s);
}

/* ---- hashes -------------------------------------------------------------------------------- */

/* HSET counts new fields (HMSET answers +OK) and keeps TTL; HSETNX sets only new fields; HDEL of
 * the last field deletes the key; wrong types are refused. */
static void test_hset_hdel(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "a", "1", "b", "2", NULL),
                        ":2\r\n");
    run(s, STORE_OP_EXPIRE, 0, 1, 1000, 0, "h", NULL);
    assert_string_equal(run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "a", "x", "c", "3", NULL),
                        ":1\r\n");
    assert_int_equal(ttl_at(s, "h", 1), 1000);
    assert_string_equal(run(s, STORE_OP_HSET, STORE_F_REPLY_OK, 1, -1, 0, "h", "d", "4", NULL), OK);
    const struct store_obj *o = store_find(s, S("h"), 1);
    assert_int_equal(store_hash_len(o), 4);
    const uint8_t *v;
    size_t vlen;
    assert_true(store_hash_get(o, S("a"), &v, &vlen));
    assert_memory_equal(v, "x", 1);
    assert_false(store_hash_get(o, S("zz"), &v, &vlen));
    assert_string_equal(run(s, STORE_OP_HSETNX, 0, 1, -1, 0, "h", "a", "y", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_HSETNX, 0, 1, -1, 0, "h", "e", "5", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_HSETNX, 0, 1, -1, 0, "h2", "e", "5", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_HDEL, 0, 1, -1, 0, "h", "a", "b", "zz", NULL), ":2\r\n");
    assert_string_equal(run(s, STORE_OP_HDEL, 0, 1, -1, 0, "nokey", "a", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_HDEL, 0, 1, -1, 0, "h", "c", "d", "e", NULL), ":3\r\n");
    assert_null(store_find(s, S("h"), 1));
    assert_int_equal(store_volatile_count(s), 0);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "v", NULL);
    assert_string_equal(run(s, STORE_OP_HSET, 0, 1, -1, 0, "str", "a", "1", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_HSETNX, 0, 1, -1, 0, "str", "a", "1", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_HDEL, 0, 1, -1, 0, "str", "a", NULL), WRONGTYPE);
    store_destroy(s);
}

/* HINCRBY/HINCRBYFLOAT add to fields and answer the hash-specific errors. */
static void test_hincr(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_HINCRBY, 0, 1, -1, 3, "h", "n", NULL), ":3\r\n");
    assert_string_equal(run(s, STORE_OP_HINCRBY, 0, 1, -1, -4, "h", "n", NULL), ":-1\r\n");
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "s", "abc", "big", "9223372036854775807", NULL);
    assert_string_equal(run(s, STORE_OP_HINCRBY, 0, 1, -1, 1, "h", "s", NULL),
                        "-ERR hash value is not an integer\r\n");
    assert_string_equal(run(s, STORE_OP_HINCRBY, 0, 1, -1, 1, "h", "big", NULL),
                        "-ERR increment or decrement would overflow\r\n");
    assert_string_equal(run(s, STORE_OP_HINCRBYFLOAT, 0, 1, -1, 0, "h", "fl", "1.5", NULL),
                        "$3\r\n1.5\r\n");
    assert_string_equal(run(s, STORE_OP_HINCRBYFLOAT, 0, 1, -1, 0, "h", "n", "0.5", NULL),
                        "$4\r\n-0.5\r\n");
    assert_string_equal(run(s, STORE_OP_HINCRBYFLOAT, 0, 1, -1, 0, "h", "s", "1", NULL),
                        "-ERR hash value is not a float\r\n");
    assert_string_equal(run(s, STORE_OP_HINCRBYFLOAT, 0, 1, -1, 0, "h", "fl", "x", NULL),
                        "-ERR value is not a valid float\r\n");
    assert_string_equal(run(s, STORE_OP_HINCRBYFLOAT, 0, 1, -1, 0, "h", "fl", "-inf", NULL),
                        "-ERR increment would produce NaN or Infinity\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "1", NULL);
    assert_string_equal(run(s, STORE_OP_HINCRBY, 0, 1, -1, 1, "str", "f", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_HINCRBYFLOAT, 0, 1, -1, 0, "str", "f", "1", NULL),
                        WRONGTYPE);
    /* Redis checks the increment before the key's type. */
    assert_string_equal(run(s, STORE_OP_HINCRBYFLOAT, 0, 1, -1, 0, "str", "f", "x", NULL),
                        "-ERR value is not a valid float\r\n");
    store_destroy(s);
}

static void count_field_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    (void)vlen;
    (void)v;
    unsigned char *seen = ctx;
    char tmp[16];
    memcpy(tmp, f, flen);
    tmp[flen] = '\0';
    seen[atoi(tmp + 1)]++;
}

static void count_field_cb2(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    (void)f;
    (void)flen;
    (void)v;
    (void)vlen;
    (*(size_t *)ctx)++;
}

/* HSCAN and foreach visit every field; a random field is one of the hash's. */
static void test_hash_scan_random(void **state)
{
    (void)state;
    struct store *s = new_store(3, 0, STORE_NOEVICTION);
    enum { N = 500 };
    char f[16];
    for (int i = 0; i < N; i++) {
        snprintf(f, sizeof(f), "f%d", i);
        run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", f, "v", NULL);
    }
    const struct store_obj *o = store_find(s, S("h"), 1);
    unsigned char seen[N] = {0};
    uint64_t cur = 0;
    do {
        cur = store_hash_scan(o, cur, 10, count_field_cb, seen);
    } while (cur != 0);
    for (int i = 0; i < N; i++) {
        assert_true(seen[i] >= 1);
    }
    memset(seen, 0, sizeof(seen));
    store_hash_foreach(o, count_field_cb, seen);
    for (int i = 0; i < N; i++) {
        assert_int_equal(seen[i], 1);
    }
    for (int i = 0; i < 50; i++) {
        const uint8_t *rf, *rv;
        size_t rflen, rvlen;
        store_hash_random(s, o, &rf, &rflen, &rv, &rvlen);
        assert_true(store_hash_get(o, rf, rflen, &rv, &rvlen));
    }
    store_destroy(s);
}

/* Small hashes use the compact encoding (little memory); they convert to a table past 128
 * fields or on a long field/value, keeping every field, and shrink back to no key. */
static void test_hash_encodings(void **state)
{
    (void)state;
    struct store *s = new_store(4, 0, STORE_NOEVICTION);
    size_t before = store_used_bytes(s);
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "small", "name", "ann", "age", "42", NULL);
    size_t small = store_used_bytes(s) - before;
    print_message("2-field hash: %zu bytes\n", small);
    assert_true(small < 200); /* includes the first bucket array of the keyspace */
    const struct store_obj *o = store_find(s, S("small"), 1);
    size_t n = 0;
    assert_int_equal(store_hash_scan(o, 0, 1, count_field_cb2, &n), 0); /* one step */
    assert_int_equal(n, 2);
    char f[16], v[16];
    for (int i = 0; i < 200; i++) {
        snprintf(f, sizeof(f), "f%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        run(s, STORE_OP_HSET, 0, 1, -1, 0, "big", f, v, NULL);
        if (i == 127) {
            /* Overwriting at the bound keeps the compact encoding working. */
            run(s, STORE_OP_HSET, 0, 1, -1, 0, "big", "f0", "again", NULL);
        }
        store_check_invariants(s);
    }
    o = store_find(s, S("big"), 1);
    assert_int_equal(store_hash_len(o), 200);
    const uint8_t *rv;
    size_t rvlen;
    assert_true(store_hash_get(o, S("f0"), &rv, &rvlen));
    assert_memory_equal(rv, "again", 5);
    assert_true(store_hash_get(o, S("f199"), &rv, &rvlen));
    char longv[100];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "small", "bio", longv, NULL);
    store_check_invariants(s);
    o = store_find(s, S("small"), 1);
    assert_true(store_hash_get(o, S("bio"), &rv, &rvlen));
    assert_int_equal(rvlen, 99);
    assert_true(store_hash_get(o, S("age"), &rv, &rvlen));
    assert_memory_equal(rv, "42", 2);
    for (int i = 0; i < 200; i++) {
        snprintf(f, sizeof(f), "f%d", i);
        assert_string_equal(run(s, STORE_OP_HDEL, 0, 1, -1, 0, "big", f, NULL), ":1\r\n");
    }
    assert_null(store_find(s, S("big"), 1));
    run(s, STORE_OP_HDEL, 0, 1, -1, 0, "small", "name", "age", "bio", NULL);
    assert_int_equal(store_used_bytes(s), 0);
    store_destroy(s);
}

/* ---- lists ---------------------------------------------------------------------------------- */

#define LIST(...) run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, __VA_ARGS__, NULL)

/* The elements of list key, space separated, or "(none)" when the key is absent. */
static const char *list_text(struct store *s, const char *key)
{
    static char text[1024];
    const struct store_obj *o = store_find(s, S(key), 1);
    if (o == NULL) {
        return "(none)";
    }
    assert_int_equal(store_obj_type(o), STORE_LIST);
    size_t off = 0;
    text[0] = '\0';
    for (size_t i = 0; i < store_list_len(o); i++) {
        const uint8_t *p;
        size_t len;
        store_list_at(o, i, &p, &len);
        off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%.*s", i ? " " : "", (int)len,
                                (const char *)p);
    }
    return text;
}

/* PUSH/POP from both ends with Redis's replies; PUSHX only on an existing list; POP with a
 * count answers arrays (null array for a missing key); the emptied list's key goes away. */
static void test_list_push_pop(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_PUSH, STORE_F_XX, 1, -1, 0, "l", "a", NULL), ":0\r\n");
    assert_int_equal(store_key_count(s), 0);
    assert_string_equal(run(s, STORE_OP_PUSH, 0, 1, -1, 0, "l", "b", "a", NULL), ":2\r\n");
    assert_string_equal(run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "c", "d", NULL),
                        ":4\r\n");
    assert_string_equal(list_text(s, "l"), "a b c d");
    assert_string_equal(run(s, STORE_OP_PUSH, STORE_F_XX | STORE_F_RIGHT, 1, -1, 0, "l", "e", NULL),
                        ":5\r\n");
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, -1, "l", NULL), "$1\r\na\r\n");
    assert_string_equal(run(s, STORE_OP_POP, STORE_F_RIGHT, 1, -1, -1, "l", NULL), "$1\r\ne\r\n");
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, 0, "l", NULL), "*0\r\n");
    assert_string_equal(run(s, STORE_OP_POP, STORE_F_RIGHT, 1, -1, 2, "l", NULL),
                        "*2\r\n$1\r\nd\r\n$1\r\nc\r\n");
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, 10, "l", NULL), "*1\r\n$1\r\nb\r\n");
    assert_int_equal(store_key_count(s), 0);
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, -1, "l", NULL), NIL);
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, 3, "l", NULL), "*-1\r\n");
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, -2, "l", NULL),
                        "-ERR value is out of range, must be positive\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "x", NULL);
    assert_string_equal(run(s, STORE_OP_PUSH, 0, 1, -1, 0, "str", "a", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, 0, "str", NULL), WRONGTYPE);
    /* Many pushes at the head then pops at the tail: the ring wraps and shrinks. */
    for (int i = 0; i < 1000; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        run(s, STORE_OP_PUSH, 0, 1, -1, 0, "big", v, NULL);
    }
    for (int i = 0; i < 999; i++) {
        char want[32];
        snprintf(want, sizeof(want), "$%zu\r\n%d\r\n", strlen("0") + (i >= 10) + (i >= 100), i);
        assert_string_equal(run(s, STORE_OP_POP, STORE_F_RIGHT, 1, -1, -1, "big", NULL), want);
    }
    assert_string_equal(list_text(s, "big"), "999");
    store_check_invariants(s);
    store_destroy(s);
}

/* LSET, LINSERT, LREM (from the head, from the tail, all) and LTRIM follow Redis's indexes,
 * replies and errors. */
static void test_list_edit(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_LSET, 0, 1, -1, 0, "l", "x", NULL), "-ERR no such key\r\n");
    LIST("l", "a", "b", "c");
    assert_string_equal(run(s, STORE_OP_LSET, 0, 1, -1, -1, "l", "C", NULL), OK);
    assert_string_equal(run(s, STORE_OP_LSET, 0, 1, -1, 3, "l", "x", NULL),
                        "-ERR index out of range\r\n");
    assert_string_equal(run(s, STORE_OP_LSET, 0, 1, -1, -4, "l", "x", NULL),
                        "-ERR index out of range\r\n");
    assert_string_equal(list_text(s, "l"), "a b C");
    assert_string_equal(run(s, STORE_OP_LINSERT, 0, 1, -1, 0, "l", "b", "x", NULL), ":4\r\n");
    assert_string_equal(run(s, STORE_OP_LINSERT, STORE_F_RIGHT, 1, -1, 0, "l", "C", "y", NULL),
                        ":5\r\n");
    assert_string_equal(run(s, STORE_OP_LINSERT, 0, 1, -1, 0, "l", "zz", "y", NULL), ":-1\r\n");
    assert_string_equal(run(s, STORE_OP_LINSERT, 0, 1, -1, 0, "none", "a", "y", NULL), ":0\r\n");
    assert_string_equal(list_text(s, "l"), "a x b C y");
    LIST("r", "v", "1", "v", "2", "v", "3", "v");
    assert_string_equal(run(s, STORE_OP_LREM, 0, 1, -1, 2, "r", "v", NULL), ":2\r\n");
    assert_string_equal(list_text(s, "r"), "1 2 v 3 v");
    assert_string_equal(run(s, STORE_OP_LREM, 0, 1, -1, -1, "r", "v", NULL), ":1\r\n");
    assert_string_equal(list_text(s, "r"), "1 2 v 3");
    assert_string_equal(run(s, STORE_OP_LREM, 0, 1, -1, INT64_MIN, "r", "v", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_LREM, 0, 1, -1, 0, "r", "2", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_LREM, 0, 1, -1, 0, "r", "1", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_LREM, 0, 1, -1, 0, "r", "3", NULL), ":1\r\n");
    assert_string_equal(list_text(s, "r"), "(none)");
    LIST("t", "0", "1", "2", "3", "4", "5");
    assert_string_equal(run(s, STORE_OP_LTRIM, 0, 1, -1, 0, "t", "1", "-2", NULL), OK);
    assert_string_equal(list_text(s, "t"), "1 2 3 4");
    assert_string_equal(run(s, STORE_OP_LTRIM, 0, 1, -1, 0, "t", "-100", "100", NULL), OK);
    assert_string_equal(list_text(s, "t"), "1 2 3 4");
    assert_string_equal(run(s, STORE_OP_LTRIM, 0, 1, -1, 0, "t", "x", "1", NULL),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run(s, STORE_OP_LTRIM, 0, 1, -1, 0, "t", "3", "1", NULL), OK);
    assert_string_equal(list_text(s, "t"), "(none)");
    assert_string_equal(run(s, STORE_OP_LTRIM, 0, 1, -1, 0, "t", "0", "1", NULL), OK);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "x", NULL);
    assert_string_equal(run(s, STORE_OP_LSET, 0, 1, -1, 0, "str", "x", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_LINSERT, 0, 1, -1, 0, "str", "x", "y", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_LREM, 0, 1, -1, 0, "str", "x", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_LTRIM, 0, 1, -1, 0, "str", "0", "1", NULL), WRONGTYPE);
    store_check_invariants(s);
    store_destroy(s);
}

/* LMOVE between lists and onto the same list (rotation), WRONGTYPE only once the source has an
 * element; LMPOP pops from the first non-empty list and names it. */
static void test_list_move(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_LMOVE, 0, 1, -1, 0, "a", "b", NULL), NIL);
    LIST("a", "1", "2", "3");
    assert_string_equal(run(s, STORE_OP_LMOVE, STORE_F_RIGHT, 1, -1, 0, "a", "a", NULL),
                        "$1\r\n3\r\n");
    assert_string_equal(list_text(s, "a"), "3 1 2");
    assert_string_equal(run(s, STORE_OP_LMOVE, STORE_F_DST_RIGHT, 1, -1, 0, "a", "b", NULL),
                        "$1\r\n3\r\n");
    assert_string_equal(run(s, STORE_OP_LMOVE, 0, 1, -1, 0, "a", "b", NULL), "$1\r\n1\r\n");
    assert_string_equal(list_text(s, "b"), "1 3");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "x", NULL);
    assert_string_equal(run(s, STORE_OP_LMOVE, 0, 1, -1, 0, "a", "str", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_LMOVE, 0, 1, -1, 0, "none", "str", NULL), NIL);
    assert_string_equal(list_text(s, "a"), "2");
    assert_string_equal(run(s, STORE_OP_LMOVE, 0, 1, -1, 0, "a", "a", NULL), "$1\r\n2\r\n");
    assert_string_equal(run(s, STORE_OP_LMOVE, 0, 1, -1, 0, "a", "c", NULL), "$1\r\n2\r\n");
    assert_string_equal(list_text(s, "a"), "(none)");
    assert_string_equal(run(s, STORE_OP_LMPOP, 0, 1, -1, 5, "none", "b", "c", NULL),
                        "*2\r\n$1\r\nb\r\n*2\r\n$1\r\n1\r\n$1\r\n3\r\n");
    assert_string_equal(run(s, STORE_OP_LMPOP, STORE_F_RIGHT, 1, -1, 1, "b", "c", NULL),
                        "*2\r\n$1\r\nc\r\n*1\r\n$1\r\n2\r\n");
    assert_string_equal(run(s, STORE_OP_LMPOP, 0, 1, -1, 1, "b", "c", NULL), "*-1\r\n");
    assert_string_equal(run(s, STORE_OP_LMPOP, 0, 1, -1, 1, "b", "str", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_LMPOP, 0, 1, -1, 0, "b", NULL),
                        "-ERR count should be greater than 0\r\n");
    assert_int_equal(store_key_count(s), 1);
    store_check_invariants(s);
    store_destroy(s);
}

/* ---- sets ----------------------------------------------------------------------------------- */

/* The members of set key, sorted and space separated, or "(none)". */
static const char *set_text(struct store *s, const char *key)
{
    static char text[1024];
    const struct store_obj *o = store_find(s, S(key), 1);
    if (o == NULL) {
        return "(none)";
    }
    assert_int_equal(store_obj_type(o), STORE_SET);
    /* Set members in the tests are single characters: a byte histogram sorts them. */
    int seen[256] = {0};
    for (int c = 0; c < 256; c++) {
        uint8_t m = (uint8_t)c;
        seen[c] = store_set_has(o, &m, 1);
    }
    size_t off = 0, n = 0;
    text[0] = '\0';
    for (int c = 0; c < 256; c++) {
        if (seen[c]) {
            off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%c", n++ ? " " : "", c);
        }
    }
    assert_int_equal(n, store_set_len(o));
    return text;
}

/* SADD/SREM/SMOVE replies, WRONGTYPE order as Redis 7's, and the key removed when emptied. */
static void test_set_add_rem_move(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_SADD, 0, 1, -1, 0, "s", "a", "b", "a", NULL), ":2\r\n");
    assert_string_equal(run(s, STORE_OP_SADD, 0, 1, -1, 0, "s", "b", "c", NULL), ":1\r\n");
    assert_string_equal(set_text(s, "s"), "a b c");
    assert_string_equal(run(s, STORE_OP_SREM, 0, 1, -1, 0, "s", "a", "z", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_SREM, 0, 1, -1, 0, "none", "a", NULL), ":0\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "x", NULL);
    assert_string_equal(run(s, STORE_OP_SADD, 0, 1, -1, 0, "str", "a", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_SREM, 0, 1, -1, 0, "str", "a", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "none", "str", "a", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "s", "str", "b", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "s", "s", "b", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "s", "s", "q", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "s", "d", "q", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "s", "d", "b", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "s", "d", "c", NULL), ":1\r\n");
    assert_string_equal(set_text(s, "s"), "(none)");
    assert_string_equal(set_text(s, "d"), "b c");
    assert_string_equal(run(s, STORE_OP_SREM, 0, 1, -1, 0, "d", "b", "c", NULL), ":2\r\n");
    assert_int_equal(store_key_count(s), 1);
    store_check_invariants(s);
    store_destroy(s);
}

/* SINTERSTORE/SUNIONSTORE/SDIFFSTORE: a missing source is an empty set, any wrong-typed
 * source is WRONGTYPE with nothing written, the destination is replaced whatever its type
 * (and deleted when the result is empty), and a source may be the destination. */
static void test_set_store(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "x", "a", "b", "c", "d", NULL);
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "y", "c", "d", "e", NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "v", NULL);
    assert_string_equal(run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SINTER, "str", "x", "y", NULL),
                        ":2\r\n");
    assert_string_equal(set_text(s, "str"), "c d");
    assert_string_equal(run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SUNION, "u", "x", "y", "n", NULL),
                        ":5\r\n");
    assert_string_equal(set_text(s, "u"), "a b c d e");
    assert_string_equal(run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SDIFF, "x", "x", "y", NULL),
                        ":2\r\n");
    assert_string_equal(set_text(s, "x"), "a b");
    assert_string_equal(run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SINTER, "u", "x", "n", NULL),
                        ":0\r\n");
    assert_string_equal(set_text(s, "u"), "(none)");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "s2", "v", NULL);
    assert_string_equal(run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SUNION, "x", "y", "s2", NULL),
                        WRONGTYPE);
    assert_string_equal(set_text(s, "x"), "a b");
    assert_string_equal(run(s, STORE_OP_SSTORE, 0, 1, -1, 7, "x", "y", NULL),
                        "-ERR syntax error\r\n");
    store_check_invariants(s);
    store_destroy(s);
}

/* SPOP removes the members the proposer carried; when entries in flight removed some of them,
 * apply completes the pick from the entry's seed, identically in stores with different hash
 * seeds. A missing key answers nil or an empty set. */
static void test_set_spop(void **state)
{
    (void)state;
    struct store *a = new_store(1, 0, STORE_NOEVICTION);
    struct store *b = new_store(987654, 0, STORE_NOEVICTION);
    struct store *both[2] = {a, b};
    const char seed[] = "\x01\x02\x03\x04\x05\x06\x07\x08";
    char picked[2][2][64]; /* the two picks apply completed, per store */
    for (int i = 0; i < 2; i++) {
        struct store *s = both[i];
        assert_string_equal(run(s, STORE_OP_SPOP, 0, 1, -1, -1, "s", seed, NULL), NIL);
        assert_string_equal(run(s, STORE_OP_SPOP, 0, 1, -1, 3, "s", seed, NULL), "*0\r\n");
        run(s, STORE_OP_SADD, 0, 1, -1, 0, "s", "a", "b", "c", "d", "e", "f", "g", NULL);
        assert_string_equal(run(s, STORE_OP_SPOP, 0, 1, -1, -1, "s", seed, "c", NULL),
                            "$1\r\nc\r\n");
        assert_string_equal(run(s, STORE_OP_SPOP, 0, 1, -1, 2, "s", seed, "a", "b", NULL),
                            "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        /* "a" is gone already: apply picks one more itself. */
        const char *r = run(s, STORE_OP_SPOP, 0, 1, -1, 2, "s", seed, "a", "d", NULL);
        assert_memory_equal(r, "*2\r\n$1\r\nd\r\n$1\r\n", 15);
        snprintf(picked[i][0], sizeof(picked[i][0]), "%s", r);
        assert_int_equal(store_set_len(store_find(s, S("s"), 1)), 2);
        run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "v", NULL);
        assert_string_equal(run(s, STORE_OP_SPOP, 0, 1, -1, -1, "str", seed, NULL), WRONGTYPE);
        r = run(s, STORE_OP_SPOP, 0, 1, -1, 10, "s", seed, NULL);
        assert_memory_equal(r, "*2\r\n", 4);
        snprintf(picked[i][1], sizeof(picked[i][1]), "%s", r);
        store_check_invariants(s);
    }
    assert_string_equal(picked[0][0], picked[1][0]);
    assert_string_equal(picked[0][1], picked[1][1]);
    assert_int_equal(store_key_count(a), 1); /* "str": the set emptied and went away */
    struct hy_buf sa, sb;
    snapshot(a, &sa);
    snapshot(b, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    hy_buf_free(&sa);
    hy_buf_free(&sb);
    store_destroy(a);
    store_destroy(b);
}

/* ---- sorted sets ---------------------------------------------------------------------------- */

/* "member:score ..." in rank order, or "(none)". */
static const char *zset_text(struct store *s, const char *key)
{
    static char text[1024];
    const struct store_obj *o = store_find(s, S(key), 1);
    if (o == NULL) {
        return "(none)";
    }
    assert_int_equal(store_obj_type(o), STORE_ZSET);
    size_t off = 0;
    text[0] = '\0';
    for (size_t i = 0; i < store_zset_len(o); i++) {
        double score;
        const uint8_t *m;
        size_t mlen;
        store_zset_at(o, i, &score, &m, &mlen);
        off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%.*s:%g", i ? " " : "",
                                (int)mlen, (const char *)m, score);
    }
    return text;
}

/* ZADD's options and replies as Redis 7.0's (NX XX GT LT CH INCR), order by (score, member),
 * a NaN increment refused, ZREM removing the key with its last member. */
static void test_zset_add(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_ZADD, STORE_F_XX, 1, -1, 0, "z", "1", "a", NULL), ":0\r\n");
    assert_int_equal(store_key_count(s), 0);
    assert_string_equal(run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "2", "b", "1", "c", "1", "a", NULL),
                        ":3\r\n");
    assert_string_equal(zset_text(s, "z"), "a:1 c:1 b:2");
    assert_string_equal(run(s, STORE_OP_ZADD, STORE_F_CH, 1, -1, 0, "z", "5", "a", "2", "b", NULL),
                        ":1\r\n");
    assert_string_equal(run(s, STORE_OP_ZADD, STORE_F_GT | STORE_F_CH, 1, -1, 0, "z", "4", "a", "3",
                            "b", "0", "d", NULL),
                        ":2\r\n"); /* b raised, d added; a kept (4 < 5) */
    assert_string_equal(run(s, STORE_OP_ZADD, STORE_F_LT, 1, -1, 0, "z", "-1", "a", NULL),
                        ":0\r\n");
    assert_string_equal(run(s, STORE_OP_ZADD, STORE_F_NX, 1, -1, 0, "z", "9", "a", "9", "e", NULL),
                        ":1\r\n");
    assert_string_equal(zset_text(s, "z"), "a:-1 d:0 c:1 b:3 e:9");
    assert_string_equal(run(s, STORE_OP_ZADD, STORE_F_INCR, 1, -1, 0, "z", "2.5", "c", NULL),
                        "$3\r\n3.5\r\n");
    assert_string_equal(
        run(s, STORE_OP_ZADD, STORE_F_INCR | STORE_F_XX, 1, -1, 0, "z", "1", "x", NULL), NIL);
    assert_string_equal(
        run(s, STORE_OP_ZADD, STORE_F_INCR | STORE_F_GT, 1, -1, 0, "z", "-1", "c", NULL), NIL);
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "inf", "f", NULL);
    assert_string_equal(run(s, STORE_OP_ZADD, STORE_F_INCR, 1, -1, 0, "z", "-inf", "f", NULL),
                        "-ERR resulting score is not a number (NaN)\r\n");
    assert_string_equal(run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "1", "g", "x", "h", NULL),
                        "-ERR value is not a valid float\r\n");
    assert_string_equal(zset_text(s, "z"), "a:-1 d:0 b:3 c:3.5 e:9 f:inf");
    assert_string_equal(run(s, STORE_OP_ZREM, 0, 1, -1, 0, "z", "a", "zz", "b", NULL), ":2\r\n");
    assert_string_equal(run(s, STORE_OP_ZREM, 0, 1, -1, 0, "z", "c", "d", "e", "f", NULL),
                        ":4\r\n");
    assert_int_equal(store_key_count(s), 0);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "v", NULL);
    assert_string_equal(run(s, STORE_OP_ZADD, 0, 1, -1, 0, "str", "1", "a", NULL), WRONGTYPE);
    assert_string_equal(run(s, STORE_OP_ZREM, 0, 1, -1, 0, "str", "a", NULL), WRONGTYPE);
    store_check_invariants(s);
    store_destroy(s);
}

struct text_list {
    char v[16][32];
    size_t n;
};

static void text_collect_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    assert_int_equal(vlen, 0);
    struct text_list *l = ctx;
    assert_true(l->n < 16 && mlen < 32);
    snprintf(l->v[l->n++], 32, "%.*s", (int)mlen, (const char *)m);
}

static int text_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The members of set key (any length), in byte order, space separated. */
static const char *members_text(struct store *s, const char *key)
{
    static char text[1024];
    struct text_list l = {.n = 0};
    const struct store_obj *o = store_find(s, S(key), 1);
    assert_non_null(o);
    store_set_foreach(o, text_collect_cb, &l);
    assert_int_equal(l.n, store_set_len(o));
    qsort(l.v, l.n, sizeof(l.v[0]), text_cmp);
    size_t off = 0;
    text[0] = '\0';
    for (size_t i = 0; i < l.n; i++) {
        off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s", i ? " " : "", l.v[i]);
    }
    return text;
}

/* The encoding of key's value: 'i' intset, 'l' compact list, 'f' full structure, '-' none. */
static char enc_of(struct store *s, const char *key)
{
    const struct store_obj *o = store_peek(s, S(key), 1);
    if (o == NULL) {
        return '-';
    }
    if (store_obj_type(o) == STORE_LIST) {
        return store_list_compact(o) ? 'l' : 'f';
    }
    if (store_obj_type(o) == STORE_SET && store_set_intset(o)) {
        return 'i';
    }
    return store_obj_compact(o) ? 'l' : 'f';
}

/* Each compact encoding turns into the full structure at the thresholds it is given (count,
 * member size, a non-integer member for an intset), as Redis's do, and never back. */
static void test_encoding_thresholds(void **state)
{
    (void)state;
    struct store_config cfg = {.seed = 3, .maxmemory_samples = 5};
    cfg.encoding = (struct store_encoding){1, 3, 4, 2, 3, 4, 2, 4, -2, 0, 100, 4096};
    struct store *s = store_create(&cfg, NULL);
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "is", "5", "-7", NULL);
    assert_int_equal(enc_of(s, "is"), 'i');
    assert_string_equal(members_text(s, "is"), "-7 5");
    assert_string_equal(run(s, STORE_OP_SADD, 0, 1, -1, 0, "is", "5", "01", NULL), ":1\r\n");
    assert_int_equal(enc_of(s, "is"), 'l'); /* "01" is no integer: the list takes it */
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "big", "1", "70000", NULL); /* widened to 4 bytes */
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "big", "-9223372036854775808", NULL);
    assert_int_equal(enc_of(s, "big"), 'f'); /* 3 > set-max-intset-entries 2; 20 > value 4 */
    assert_string_equal(members_text(s, "big"), "-9223372036854775808 1 70000");
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "ls", "a", "bb", "ccc", NULL);
    assert_int_equal(enc_of(s, "ls"), 'l');
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "ls", "ddddd", NULL); /* longer than value 4 */
    assert_int_equal(enc_of(s, "ls"), 'f');
    run(s, STORE_OP_SREM, 0, 1, -1, 0, "ls", "ddddd", "ccc", NULL);
    assert_int_equal(enc_of(s, "ls"), 'f'); /* never back */
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "a", "1", "b", "2", "c", "3", NULL);
    assert_int_equal(enc_of(s, "h"), 'l');
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "a", "4", NULL); /* an overwrite does not grow */
    assert_int_equal(enc_of(s, "h"), 'l');
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "d", "4", NULL);
    assert_int_equal(enc_of(s, "h"), 'f');
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "1.5", "a", "-0", "b", NULL);
    assert_int_equal(enc_of(s, "z"), 'l');
    assert_string_equal(zset_text(s, "z"), "b:-0 a:1.5");
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "3", "c", NULL);
    assert_int_equal(enc_of(s, "z"), 'f');
    assert_string_equal(zset_text(s, "z"), "b:-0 a:1.5 c:3");
    /* A STORE result small enough is compact again, as Redis's zsetConvertToListpackIfNeeded. */
    run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZINTER, "zi", "z", "z", "1", "1", NULL);
    assert_int_equal(enc_of(s, "zi"), 'f');
    run(s, STORE_OP_ZREM, 0, 1, -1, 0, "z", "c", NULL);
    run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZINTER, "zi", "z", "z", "1", "1", NULL);
    assert_int_equal(enc_of(s, "zi"), 'l');
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "a", "b", NULL);
    assert_int_equal(enc_of(s, "l"), 'l');
    assert_string_equal(run(s, STORE_OP_PUSH, 0, 1, -1, 0, "l", "c", NULL), ":3\r\n");
    assert_int_equal(enc_of(s, "l"), 'l'); /* -2: up to 8 KiB of records */
    char big[9000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", big, NULL);
    assert_int_equal(enc_of(s, "l"), 'f');
    assert_string_equal(run(s, STORE_OP_POP, 0, 1, -1, -1, "l", NULL), "$1\r\nc\r\n");
    assert_string_equal(zset_text(s, "zi"), "b:-0 a:3");
    run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SUNION, "u", "is", "big", NULL);
    assert_int_equal(enc_of(s, "u"), 'f');
    run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SINTER, "u", "big", "big", "big", NULL);
    assert_int_equal(enc_of(s, "u"), 'f');
    store_check_invariants(s);
    store_destroy(s);
}

/* The thresholds are replicated state: STORE_OP_ENCODING_SET changes them all or nothing (a
 * bad pair, an unknown name or a value out of range changes none), new collections follow
 * them, and a snapshot carries them to a store created with others. */
static void test_encoding_set_entry_and_snapshot(void **state)
{
    (void)state;
    struct store *s = new_store(5, 0, STORE_NOEVICTION);
    assert_int_equal(store_encoding(s)->hash_entries, 128);
    assert_string_equal(run(s, STORE_OP_ENCODING_SET, 0, 1, -1, 0, "hash-max-ziplist-entries", "2",
                            "stream-node-max-entries", "no", NULL),
                        "-ERR invalid encoding threshold\r\n");
    assert_string_equal(
        run(s, STORE_OP_ENCODING_SET, 0, 1, -1, 0, "set-max-intset-entries", "-1", NULL),
        "-ERR invalid encoding threshold\r\n");
    assert_string_equal(run(s, STORE_OP_ENCODING_SET, 0, 1, -1, 0, "maxmemory", "1", NULL),
                        "-ERR invalid encoding threshold\r\n");
    assert_int_equal(store_encoding(s)->hash_entries, 128);
    assert_string_equal(run(s, STORE_OP_ENCODING_SET, 0, 1, -1, 0, "HASH-max-ziplist-entries", "2",
                            "list-max-listpack-size", "-5", "stream-node-max-entries", "7", NULL),
                        "+OK\r\n");
    assert_int_equal(store_encoding(s)->hash_entries, 2);
    assert_int_equal(store_encoding(s)->list_size, -5);
    assert_int_equal(store_encoding(s)->stream_entries, 7);
    assert_int_equal(store_dirty(s), 0); /* no data changed */
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "a", "1", "b", "2", "c", "3", NULL);
    assert_int_equal(enc_of(s, "h"), 'f');
    struct hy_buf b;
    snapshot(s, &b);
    struct store *t = new_store(6, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(t, b.data, b.len), HY_OK);
    hy_buf_free(&b);
    assert_int_equal(store_encoding(t)->hash_entries, 2);
    assert_int_equal(store_encoding(t)->list_size, -5);
    assert_int_equal(store_encoding(t)->stream_entries, 7);
    run(t, STORE_OP_HSET, 0, 1, -1, 0, "h2", "a", "1", "b", "2", "c", "3", NULL);
    assert_int_equal(enc_of(t, "h2"), 'f');
    store_clear(t); /* an empty state has Redis's defaults */
    assert_int_equal(store_encoding(t)->hash_entries, 128);
    store_destroy(t);
    store_destroy(s);
}

/* Encodings are a memory layout only: two stores with opposite thresholds (and hash seeds)
 * applying the same random entries give the same replies and the same keyspace in their
 * snapshots, and keep their invariants, whatever conversions happen in between. */
/* Encoding a snapshot allocates nothing that stays: an intset's members were formatted into a
 * text view kept on the value (uncounted, twice the intset's size) when the snapshot was
 * encoded in the event loop. The snapshot still lists them in byte order. */
static void test_snapshot_encode_leaves_no_memory_behind(void **state)
{
    (void)state;
    struct store *s = new_store(5, 0, STORE_NOEVICTION);
    char key[16];
    for (int k = 0; k < 50; k++) {
        snprintf(key, sizeof(key), "is%d", k);
        run(s, STORE_OP_SADD, 0, 1, -1, 0, key, "10", "9", "-3", "100000", NULL);
        snprintf(key, sizeof(key), "ls%d", k);
        run(s, STORE_OP_SADD, 0, 1, -1, 0, key, "b", "a", NULL);
    }
    assert_int_equal(enc_of(s, "is0"), 'i');
    size_t used = hy_alloc_used_bytes(), dataset = store_used_bytes(s);
    struct hy_buf b;
    snapshot(s, &b);
    hy_buf_free(&b);
    assert_int_equal(hy_alloc_used_bytes(), used);
    assert_int_equal(store_used_bytes(s), dataset);
    snapshot(s, &b);
    struct store *t = new_store(6, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(t, b.data, b.len), HY_OK);
    hy_buf_free(&b);
    assert_string_equal(members_text(t, "is7"), "-3 10 100000 9");
    assert_int_equal(enc_of(t, "is7"), 'i');
    store_destroy(t);
    store_destroy(s);
}

static void test_encoding_never_changes_state(void **state)
{
    (void)state;
    struct store_config tiny = {.seed = 11, .maxmemory_samples = 5};
    tiny.encoding = (struct store_encoding){1, 1, 2, 1, 1, 2, 1, 2, 1, 0, 100, 4096};
    struct store_config big = {.seed = 12, .maxmemory_samples = 5};
    big.encoding =
        (struct store_encoding){1, 1000, 1000, 1000, 1000, 1000, 1000, 1000, -5, 0, 100, 4096};
    struct store *a = store_create(&tiny, NULL), *b = store_create(&big, NULL);
    struct hy_prng p;
    hy_prng_seed(&p, 99);
    static const char *const members[] = {"1", "-2", "300", "70000",         "-9223372036854775808",
                                          "x", "yy", "zzz", "a-long-member", "0"};
    static const char *const scores[] = {"0", "-0", "1.5", "3", "1e300", "-inf", "7"};
    static const char *const keys[] = {"k0", "k1", "k2"};
    char reply[256];
    for (int i = 0; i < 3000; i++) {
        const char *k = keys[hy_prng_below(&p, 3)], *k2 = keys[hy_prng_below(&p, 3)];
        const char *m = members[hy_prng_below(&p, 10)], *m2 = members[hy_prng_below(&p, 10)];
        const char *sc = scores[hy_prng_below(&p, 7)];
        for (int side = 0; side < 2; side++) {
            struct store *s = side == 0 ? a : b;
            const char *r = NULL;
            switch (i % 12) {
            case 0: r = run(s, STORE_OP_SADD, 0, 1, -1, 0, k, m, m2, NULL); break;
            case 1: r = run(s, STORE_OP_SREM, 0, 1, -1, 0, k, m, NULL); break;
            case 2: r = run(s, STORE_OP_ZADD, 0, 1, -1, 0, k, sc, m, NULL); break;
            case 3: r = run(s, STORE_OP_ZREM, 0, 1, -1, 0, k, m, NULL); break;
            case 4: r = run(s, STORE_OP_HSET, 0, 1, -1, 0, k, m, m2, NULL); break;
            case 5: r = run(s, STORE_OP_HDEL, 0, 1, -1, 0, k, m, NULL); break;
            case 6:
                r = run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SUNION + (int)(i % 3), k, k2, k, NULL);
                break;
            case 7:
                r = run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZUNION, k, k2, k, "1", "2", NULL);
                break;
            case 8: r = run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, k, m, m2, NULL); break;
            case 9: r = run(s, STORE_OP_PUSH, 0, 1, -1, 0, k, m, NULL); break;
            case 10: r = run(s, STORE_OP_LSET, 0, 1, -1, (int)(i % 3) - 1, k, m2, NULL); break;
            default:
                r = i % 3 ? run(s, STORE_OP_POP, (i % 2) ? STORE_F_RIGHT : 0, 1, -1, -1, k, NULL)
                          : run(s, STORE_OP_LINSERT, 0, 1, -1, 0, k, m, m2, NULL);
                break;
            }
            if (side == 0) {
                snprintf(reply, sizeof(reply), "%s", r);
            } else {
                assert_string_equal(r, reply);
            }
        }
        if (i % 100 == 0) {
            store_check_invariants(a);
            store_check_invariants(b);
        }
    }
    /* The thresholds themselves are in the snapshot (replicated state): made equal (by one
     * entry on each, as every entry counts in the WATCH sequence), the bytes are, whatever
     * layouts the keys took. */
    for (int side = 0; side < 2; side++) {
        assert_string_equal(run(side == 0 ? a : b, STORE_OP_ENCODING_SET, 0, 1, -1, 0,
                                "hash-max-listpack-entries", "1", "hash-max-listpack-value", "2",
                                "set-max-intset-entries", "1", "set-max-listpack-entries", "1",
                                "set-max-listpack-value", "2", "zset-max-listpack-entries", "1",
                                "zset-max-listpack-value", "2", "list-max-listpack-size", "1",
                                NULL),
                            "+OK\r\n");
    }
    struct hy_buf sa, sb;
    canonical(a, &sa);
    canonical(b, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    hy_buf_free(&sa);
    hy_buf_free(&sb);
    store_check_invariants(a);
    store_check_invariants(b);
    store_destroy(a);
    store_destroy(b);
}

/* ---- a big sorted set against a model ------------------------------------------------------- */

#define ZM_MEMBERS 700

struct zmodel {
    int present[ZM_MEMBERS];
    int score[ZM_MEMBERS];
    int order[ZM_MEMBERS]; /* the present members in (score, member bytes) order */
    size_t count;
    int full_seen; /* the set was in the big encoding at a comparison */
};

static const struct zmodel *zm_sorting;

static void zm_name(int id, char *out, size_t size)
{
    snprintf(out, size, "m%d", id); /* "m10" < "m9": byte order is not id order */
}

struct zm_walk {
    const struct zmodel *zm;
    size_t next; /* the rank the next member must have */
    int rev;
};

static void zm_walk_cb(void *ctx, const uint8_t *m, size_t mlen, double score)
{
    struct zm_walk *wk = ctx;
    char name[16];
    int id = wk->zm->order[wk->next];
    zm_name(id, name, sizeof(name));
    assert_int_equal(mlen, strlen(name));
    assert_memory_equal(m, name, mlen);
    assert_true(score == wk->zm->score[id]);
    wk->next = wk->rev ? wk->next - 1 : wk->next + 1;
}

static int zm_cmp(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    if (zm_sorting->score[a] != zm_sorting->score[b]) {
        return zm_sorting->score[a] < zm_sorting->score[b] ? -1 : 1;
    }
    char na[16], nb[16];
    zm_name(a, na, sizeof(na));
    zm_name(b, nb, sizeof(nb));
    return strcmp(na, nb);
}

static void zm_sort(struct zmodel *zm)
{
    zm->count = 0;
    for (int i = 0; i < ZM_MEMBERS; i++) {
        if (zm->present[i]) {
            zm->order[zm->count++] = i;
        }
    }
    zm_sorting = zm;
    qsort(zm->order, zm->count, sizeof(int), zm_cmp);
}

/* Every rank, range walks (store_zset_range, both ways), member ranks and a score span of the
 * store's set equal the model's. */
static void zm_compare(struct store *s, struct zmodel *zm, struct hy_prng *rng)
{
    zm_sort(zm);
    const struct store_obj *o = store_find(s, S("big"), 1);
    if (zm->count == 0) {
        assert_null(o);
        return;
    }
    assert_non_null(o);
    assert_int_equal(store_zset_len(o), zm->count);
    zm->full_seen |= !store_obj_compact(o);
    for (size_t i = 0; i < zm->count; i++) {
        double score;
        const uint8_t *m;
        size_t mlen;
        char name[16];
        store_zset_at(o, i, &score, &m, &mlen);
        zm_name(zm->order[i], name, sizeof(name));
        assert_int_equal(mlen, strlen(name));
        assert_memory_equal(m, name, mlen);
        assert_true(score == zm->score[zm->order[i]]);
    }
    for (int rev = 0; rev < 2; rev++) { /* store_zset_range: a random span, either way */
        size_t lo = (size_t)hy_prng_below(rng, zm->count + 1);
        size_t hi = lo + (size_t)hy_prng_below(rng, zm->count - lo + 1);
        struct zm_walk wk = {zm, rev ? hi - 1 : lo, rev};
        store_zset_range(o, lo, hi, rev, zm_walk_cb, &wk);
        assert_int_equal(wk.next, rev ? lo - 1 : hi); /* (size_t)-1 for lo == 0 backwards */
    }
    for (int k = 0; k < 20; k++) { /* ranks by member, out of walk order */
        size_t i = (size_t)hy_prng_below(rng, zm->count);
        char name[16];
        zm_name(zm->order[i], name, sizeof(name));
        assert_int_equal(store_zset_rank(o, S(name)), (int64_t)i);
    }
    int lo = (int)hy_prng_below(rng, 60) - 5, hi = lo + (int)hy_prng_below(rng, 30);
    char min[16], max[16];
    snprintf(min, sizeof(min), "(%d", lo);
    snprintf(max, sizeof(max), "%d", hi);
    struct store_zscore_range sr;
    assert_true(store_zscore_range_parse(S(min), S(max), &sr));
    size_t a, b, want_a = 0, want_b = 0;
    store_zset_score_span(o, &sr, &a, &b);
    while (want_a < zm->count && zm->score[zm->order[want_a]] <= lo) {
        want_a++;
    }
    while (want_b < zm->count && zm->score[zm->order[want_b]] <= hi) {
        want_b++;
    }
    assert_int_equal(a, want_a);
    assert_int_equal(b, HY_MAX(want_a, want_b));
    /* A lex span is meaningful when all scores are equal; here it checks the walk agrees with a
     * scan of the same (score-ordered) list, as Redis's undefined-but-deterministic answer. */
    struct store_zlex_range lr;
    assert_true(store_zlex_range_parse(S("[m3"), S("(m5"), &lr));
    store_zset_lex_span(o, &lr, &a, &b);
    assert_true(a <= b && b <= zm->count);
}

/* Random ZADD (plain, INCR), ZREM, ZPOP (both ends) and ZREMRANGEBYRANK on a set that grows
 * past zset-max-listpack-entries and shrinks again, checked against a sorted model: the big
 * encoding's ranks, spans, member ranks and invariants (store_check_invariants) hold. */
static void test_zset_big_model(void **state)
{
    (void)state;
    struct store *s = new_store(7, 0, STORE_NOEVICTION);
    struct zmodel zm;
    memset(&zm, 0, sizeof(zm));
    struct hy_prng rng;
    hy_prng_seed(&rng, 20);
    for (int step = 0; step < 12000; step++) {
        int id = (int)hy_prng_below(&rng, ZM_MEMBERS);
        char name[16], num[16];
        zm_name(id, name, sizeof(name));
        uint64_t dice = hy_prng_below(&rng, 100);
        int sc = (int)hy_prng_below(&rng, 50); /* many ties: member order matters */
        snprintf(num, sizeof(num), "%d", sc);
        if (dice < 55) {
            run(s, STORE_OP_ZADD, 0, 1, -1, 0, "big", num, name, NULL);
            zm.present[id] = 1;
            zm.score[id] = sc;
        } else if (dice < 70) {
            snprintf(num, sizeof(num), "%d", sc - 25);
            run(s, STORE_OP_ZADD, STORE_F_INCR, 1, -1, 0, "big", num, name, NULL);
            zm.score[id] = zm.present[id] ? zm.score[id] + sc - 25 : sc - 25;
            zm.present[id] = 1;
        } else if (dice < 88) {
            run(s, STORE_OP_ZREM, 0, 1, -1, 0, "big", name, NULL);
            zm.present[id] = 0;
        } else if (dice < 98) {
            int n = 1 + (int)hy_prng_below(&rng, 3), right = dice & 1;
            run(s, STORE_OP_ZPOP, right ? STORE_F_RIGHT : 0, 1, -1, n, "big", NULL);
            zm_sort(&zm);
            for (int i = 0; i < n && (size_t)i < zm.count; i++) {
                zm.present[zm.order[right ? zm.count - 1 - (size_t)i : (size_t)i]] = 0;
            }
        } else {
            zm_sort(&zm);
            size_t from = zm.count > 0 ? (size_t)hy_prng_below(&rng, zm.count) : 0;
            size_t to = from + (size_t)hy_prng_below(&rng, 5);
            snprintf(name, sizeof(name), "%zu", from);
            snprintf(num, sizeof(num), "%zu", to);
            run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 0, "big", name, num, NULL);
            for (size_t i = from; i <= to && i < zm.count; i++) {
                zm.present[zm.order[i]] = 0;
            }
        }
        if (step % 40 == 0) {
            zm_compare(s, &zm, &rng);
            store_check_invariants(s);
        }
    }
    zm_compare(s, &zm, &rng);
    assert_true(zm.full_seen);
    store_check_invariants(s);
    store_destroy(s);
}

/* ZPOP (flat in RESP2), ZMPOP (nested), ZREMRANGE by rank, score and lex, ZSTORE (weights,
 * aggregates, a plain set as input) and ZRANGESTORE (REV, LIMIT). */
static void test_zset_pop_range_store(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", NULL);
    assert_string_equal(run(s, STORE_OP_ZPOP, 0, 1, -1, -1, "z", NULL),
                        "*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_string_equal(run(s, STORE_OP_ZPOP, STORE_F_RIGHT, 1, -1, 2, "z", NULL),
                        "*4\r\n$1\r\ne\r\n$1\r\n5\r\n$1\r\nd\r\n$1\r\n4\r\n");
    assert_string_equal(run(s, STORE_OP_ZPOP, 0, 1, -1, 0, "z", NULL), "*0\r\n");
    assert_string_equal(run(s, STORE_OP_ZPOP, 0, 1, -1, 1, "none", NULL), "*0\r\n");
    assert_string_equal(run(s, STORE_OP_ZMPOP, 0, 1, -1, 1, "none", "z", NULL),
                        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    assert_string_equal(run(s, STORE_OP_ZMPOP, 0, 1, -1, 5, "z", NULL),
                        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_string_equal(run(s, STORE_OP_ZMPOP, 0, 1, -1, 5, "z", NULL), "*-1\r\n");
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "r", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", NULL);
    assert_string_equal(run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 0, "r", "-1", "-1", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 1, "r", "(1", "3", NULL), ":2\r\n");
    assert_string_equal(zset_text(s, "r"), "a:1 d:4");
    assert_string_equal(run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 1, "r", "x", "3", NULL),
                        "-ERR min or max is not a float\r\n");
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "l", "0", "a", "0", "b", "0", "c", "0", "d", NULL);
    assert_string_equal(run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 2, "l", "(a", "[c", NULL), ":2\r\n");
    assert_string_equal(zset_text(s, "l"), "a:0 d:0");
    assert_string_equal(run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 2, "l", "a", "+", NULL),
                        "-ERR min or max not valid string range item\r\n");
    assert_string_equal(run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 2, "l", "-", "+", NULL), ":2\r\n");
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "set", "a", "x", NULL);
    /* union of r {a:1 d:4} x2 and the set {a x} x1, MAX; inter SUM; diff. */
    assert_string_equal(run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZUNION + 4 * STORE_ZAGGR_MAX, "u",
                            "r", "set", "2", "1", NULL),
                        ":3\r\n");
    assert_string_equal(zset_text(s, "u"), "x:1 a:2 d:8");
    assert_string_equal(
        run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZINTER, "i", "r", "set", "1", "1", NULL), ":1\r\n");
    assert_string_equal(zset_text(s, "i"), "a:2");
    assert_string_equal(
        run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZDIFF, "i", "r", "set", "1", "1", NULL), ":1\r\n");
    assert_string_equal(zset_text(s, "i"), "d:4");
    assert_string_equal(
        run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZINTER, "i", "r", "none", "1", "1", NULL),
        ":0\r\n");
    assert_string_equal(zset_text(s, "i"), "(none)");
    assert_string_equal(
        run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZUNION, "u", "r", "set", "1", "nan", NULL),
        "-ERR weight value is not a float\r\n");
    assert_string_equal(run(s, STORE_OP_ZRANGESTORE, STORE_F_RIGHT, 1, -1, 1, "rs", "u", "-inf",
                            "+inf", "1", "1", NULL),
                        ":1\r\n");
    assert_string_equal(zset_text(s, "rs"), "a:2");
    assert_string_equal(
        run(s, STORE_OP_ZRANGESTORE, 0, 1, -1, 0, "rs", "u", "0", "-2", "0", "-1", NULL), ":2\r\n");
    assert_string_equal(zset_text(s, "rs"), "x:1 a:2");
    assert_string_equal(
        run(s, STORE_OP_ZRANGESTORE, 0, 1, -1, 0, "rs", "none", "0", "-1", "0", "-1", NULL),
        ":0\r\n");
    assert_string_equal(zset_text(s, "rs"), "(none)");
    store_check_invariants(s);
    store_destroy(s);
}

/* ---- streams ------------------------------------------------------------------------------- */

/* The RESP2 text of XRANGE key - + (or of XPENDING with args) on the replica s. */
static const char *xrange_text(struct store *s, const char *key)
{
    static char text[8192];
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2};
    const struct store_obj *o = store_find(s, S(key), 0);
    if (o == NULL) {
        hy_buf_free(&out);
        return "(none)";
    }
    assert_int_equal(store_obj_type(o), STORE_STREAM);
    store_stream_range(o, (struct store_stream_id){0, 0},
                       (struct store_stream_id){UINT64_MAX, UINT64_MAX}, UINT64_MAX, 0, &w);
    HY_ASSERT(out.len < sizeof(text));
    memcpy(text, out.data, out.len);
    text[out.len] = '\0';
    hy_buf_free(&out);
    return text;
}

static const char *xpending_text(struct store *s, uint64_t now, size_t argc, ...)
{
    static char text[8192];
    struct store_arg argv[16];
    va_list ap;
    va_start(ap, argc);
    for (size_t i = 0; i < argc; i++) {
        const char *a = va_arg(ap, const char *);
        argv[i] = (struct store_arg){(const uint8_t *)a, strlen(a)};
    }
    va_end(ap);
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2};
    store_stream_xpending(store_find(s, argv[0].ptr, argv[0].len, now), argv, argc, now, &w);
    HY_ASSERT(out.len < sizeof(text));
    memcpy(text, out.data, out.len);
    text[out.len] = '\0';
    hy_buf_free(&out);
    return text;
}

/* XADD's IDs come from the entry's time (the leader's clock) and the last ID only, so two
 * replicas applying the same entries hold the same stream; explicit, ms-* and the errors as
 * Redis 7.0 words them. */
static void test_stream_xadd_ids(void **state)
{
    (void)state;
    struct store *a = new_store(1, 0, STORE_NOEVICTION), *b = new_store(2, 0, STORE_NOEVICTION);
    struct store *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        struct store *s = both[i];
        assert_string_equal(run(s, STORE_OP_XADD, 0, 1000, -1, 100, "x", "*", "f", "v", NULL),
                            "$6\r\n1000-0\r\n");
        /* The clock went back (a new leader's): the ID still grows. */
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "x", "*", "f", "w", NULL),
                            "$6\r\n1000-1\r\n");
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "x", "1000-*", "g", "1", NULL),
                            "$6\r\n1000-2\r\n");
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "x", "2000-*", "g", "1", NULL),
                            "$6\r\n2000-0\r\n");
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "x", "2000-0", "g", "1", NULL),
                            "-ERR The ID specified in XADD is equal or smaller than the target "
                            "stream top item\r\n");
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "y", "0-0", "g", "1", NULL),
                            "-ERR The ID specified in XADD must be greater than 0-0\r\n");
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "y", "1-x", "g", "1", NULL),
                            "-ERR Invalid stream ID specified as stream command argument\r\n");
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "y", "*", "g", NULL),
                            "-ERR wrong number of arguments for 'xadd' command\r\n");
        assert_string_equal(
            run(s, STORE_OP_XADD, 0, 900, -1, 100, "y", "NOMKSTREAM", "*", "g", "1", NULL), NIL);
        assert_null(store_find(s, S("y"), 0));
        run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "v", NULL);
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "str", "*", "g", "1", NULL),
                            WRONGTYPE);
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "z",
                                "18446744073709551615-"
                                "18446744073709551615",
                                "f", "v", NULL),
                            "$41\r\n18446744073709551615-18446744073709551615\r\n");
        assert_string_equal(run(s, STORE_OP_XADD, 0, 900, -1, 100, "z", "*", "f", "v", NULL),
                            "-ERR The stream has exhausted the last possible ID, unable to add "
                            "more items\r\n");
        store_check_invariants(s);
    }
    assert_string_equal(xrange_text(a, "x"), xrange_text(b, "x"));
    assert_true(store_digest(a) == store_digest(b));
    assert_string_equal(xrange_text(a, "x"),
                        "*4\r\n*2\r\n$6\r\n1000-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
                        "*2\r\n$6\r\n1000-1\r\n*2\r\n$1\r\nf\r\n$1\r\nw\r\n"
                        "*2\r\n$6\r\n1000-2\r\n*2\r\n$1\r\ng\r\n$1\r\n1\r\n"
                        "*2\r\n$6\r\n2000-0\r\n*2\r\n$1\r\ng\r\n$1\r\n1\r\n");
    store_destroy(a);
    store_destroy(b);
}

/* Exact trimming removes what MAXLEN/MINID say; approximate trimming only whole nodes of
 * stream-node-max-entries (the entry's incr) and at most LIMIT entries; XDEL records the
 * highest deleted ID; XSETID's checks. */
static void test_stream_trim_del_setid(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    char id[32];
    for (int i = 1; i <= 25; i++) {
        snprintf(id, sizeof(id), "%d-0", i);
        run(s, STORE_OP_XADD, 0, 1, -1, 10, "x", id, "f", "v", NULL);
    }
    /* Nodes of 10: 1..10, 11..20, 21..25. ~ 12 may drop only the first node. */
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "MAXLEN", "~", "12", NULL),
                        ":10\r\n");
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "MAXLEN", "~", "12", NULL),
                        ":0\r\n");
    assert_string_equal(
        run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "MAXLEN", "~", "0", "LIMIT", "5", NULL),
        ":0\r\n");
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "MAXLEN", "=", "12", NULL),
                        ":3\r\n");
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "MINID", "20", NULL), ":6\r\n");
    assert_string_equal(
        run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "MAXLEN", "1", "LIMIT", "1", NULL),
        "-ERR syntax error, LIMIT cannot be used without the special ~ option\r\n");
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "MAXLEN", "-1", NULL),
                        "-ERR The MAXLEN argument must be >= 0.\r\n");
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "x", "FOO", NULL),
                        "-ERR syntax error\r\n");
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 10, "none", "MAXLEN", "1", NULL),
                        ":0\r\n");
    /* 20..25 left. */
    assert_string_equal(run(s, STORE_OP_XDEL, 0, 1, -1, 0, "x", "21-0", "22-0", "99-0", NULL),
                        ":2\r\n");
    assert_string_equal(run(s, STORE_OP_XDEL, 0, 1, -1, 0, "x", "bad", NULL),
                        "-ERR Invalid stream ID specified as stream command argument\r\n");
    assert_string_equal(run(s, STORE_OP_XSETID, 0, 1, -1, 0, "x", "24-0", NULL),
                        "-ERR The ID specified in XSETID is smaller than the target stream top "
                        "item\r\n");
    assert_string_equal(
        run(s, STORE_OP_XSETID, 0, 1, -1, 0, "x", "30-0", "ENTRIESADDED", "1", NULL),
        "-ERR The entries_added specified in XSETID is smaller than the target "
        "stream length\r\n");
    assert_string_equal(run(s, STORE_OP_XSETID, 0, 1, -1, 0, "x", "30-0", NULL), OK);
    assert_string_equal(run(s, STORE_OP_XADD, 0, 1, -1, 10, "x", "30-0", "f", "v", NULL),
                        "-ERR The ID specified in XADD is equal or smaller than the target stream "
                        "top item\r\n");
    assert_string_equal(run(s, STORE_OP_XSETID, 0, 1, -1, 0, "none", "1-0", NULL),
                        "-ERR no such key\r\n");
    const struct store_obj *o = store_find(s, S("x"), 0);
    assert_int_equal(store_stream_len(o), 4);
    assert_true(store_stream_last_id(o).ms == 30);
    store_check_invariants(s);
    store_destroy(s);
}

/* A group delivers each new entry once (">"), keeps it pending with the entry's time and a
 * count, re-delivers history to its consumer, and XACK, XCLAIM (min idle measured in entry
 * times), XAUTOCLAIM and DELCONSUMER move or drop pending entries. */
static void test_stream_groups(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_XGROUP, 0, 1, -1, 0, "x", "CREATE", "g", "$", NULL),
                        "-ERR The XGROUP subcommand requires the key to exist. Note that for "
                        "CREATE you may want to use the MKSTREAM option to create an empty stream "
                        "automatically.\r\n");
    assert_string_equal(
        run(s, STORE_OP_XGROUP, 0, 1, -1, 0, "x", "CREATE", "g", "$", "MKSTREAM", NULL), OK);
    assert_string_equal(run(s, STORE_OP_XGROUP, 0, 1, -1, 0, "x", "CREATE", "g", "$", NULL),
                        "-BUSYGROUP Consumer Group name already exists\r\n");
    run(s, STORE_OP_XADD, 0, 1, -1, 100, "x", "1-0", "a", "1", NULL);
    run(s, STORE_OP_XADD, 0, 1, -1, 100, "x", "2-0", "b", "2", NULL);
    run(s, STORE_OP_XADD, 0, 1, -1, 100, "x", "3-0", "c", "3", NULL);
    /* incr = COUNT 1 * 2 */
    assert_string_equal(run(s, STORE_OP_XREADGROUP, 0, 100, -1, 2, "g", "alice", "x", ">", NULL),
                        "*1\r\n*2\r\n$1\r\nx\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1"
                        "\r\n");
    assert_string_equal(run(s, STORE_OP_XREADGROUP, 0, 200, -1, 0, "g", "bob", "x", ">", NULL),
                        "*1\r\n*2\r\n$1\r\nx\r\n*2\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2"
                        "\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_string_equal(run(s, STORE_OP_XREADGROUP, 0, 200, -1, 0, "g", "bob", "x", ">", NULL),
                        "*-1\r\n");
    assert_string_equal(run(s, STORE_OP_XREADGROUP, 0, 200, -1, 0, "nog", "bob", "x", ">", NULL),
                        "-NOGROUP No such key 'x' or consumer group 'nog' in XREADGROUP with GROUP "
                        "option\r\n");
    /* History: alice's pending entry again, its count now 2. */
    assert_string_equal(run(s, STORE_OP_XREADGROUP, 0, 300, -1, 0, "g", "alice", "x", "0", NULL),
                        "*1\r\n*2\r\n$1\r\nx\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1"
                        "\r\n");
    assert_string_equal(
        xpending_text(s, 1000, 2, "x", "g"),
        "*4\r\n:3\r\n$3\r\n1-0\r\n$3\r\n3-0\r\n*2\r\n*2\r\n$5\r\nalice\r\n$1\r\n1\r\n"
        "*2\r\n$3\r\nbob\r\n$1\r\n2\r\n");
    assert_string_equal(xpending_text(s, 1000, 5, "x", "g", "-", "+", "1"),
                        "*1\r\n*4\r\n$3\r\n1-0\r\n$5\r\nalice\r\n:700\r\n:2\r\n");
    assert_string_equal(xpending_text(s, 1000, 7, "x", "g", "IDLE", "750", "-", "+", "10"),
                        "*2\r\n*4\r\n$3\r\n2-0\r\n$3\r\nbob\r\n:800\r\n:1\r\n"
                        "*4\r\n$3\r\n3-0\r\n$3\r\nbob\r\n:800\r\n:1\r\n");
    /* XCLAIM at time 1000: 2-0 idle 800 >= 500 moves to carol; 1-0 idle 700 too. */
    assert_string_equal(run(s, STORE_OP_XCLAIM, 0, 1000, -1, 0, "x", "g", "carol", "750", "1-0",
                            "2-0", "JUSTID", NULL),
                        "*1\r\n$3\r\n2-0\r\n");
    assert_string_equal(xpending_text(s, 1000, 6, "x", "g", "-", "+", "10", "carol"),
                        "*1\r\n*4\r\n$3\r\n2-0\r\n$5\r\ncarol\r\n:0\r\n:1\r\n");
    assert_string_equal(run(s, STORE_OP_XACK, 0, 1000, -1, 0, "x", "g", "2-0", "9-0", NULL),
                        ":1\r\n");
    run(s, STORE_OP_XDEL, 0, 1, -1, 0, "x", "3-0", NULL);
    /* XAUTOCLAIM drops 3-0 (deleted) and claims 1-0 for dave. */
    assert_string_equal(
        run(s, STORE_OP_XAUTOCLAIM, 0, 2000, -1, 0, "x", "g", "dave", "10", "0", "JUSTID", NULL),
        "*3\r\n$3\r\n0-0\r\n*1\r\n$3\r\n1-0\r\n*1\r\n$3\r\n3-0\r\n");
    assert_string_equal(
        run(s, STORE_OP_XGROUP, 0, 2000, -1, 0, "x", "DELCONSUMER", "g", "dave", NULL), ":1\r\n");
    assert_string_equal(xpending_text(s, 2000, 2, "x", "g"), "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
    assert_string_equal(
        run(s, STORE_OP_XGROUP, 0, 2000, -1, 0, "x", "CREATECONSUMER", "g", "eve", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_XGROUP, 0, 2000, -1, 0, "x", "DESTROY", "g", NULL),
                        ":1\r\n");
    assert_string_equal(run(s, STORE_OP_XGROUP, 0, 2000, -1, 0, "x", "DESTROY", "g", NULL),
                        ":0\r\n");
    store_check_invariants(s);
    store_destroy(s);
}

/* A stream with groups, consumers, pending entries and emulated nodes survives a snapshot
 * (same digest, same later trimming), COPY deep-copies it, and a cut snapshot is refused. */
static void test_stream_snapshot(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    char id[32];
    for (int i = 1; i <= 12; i++) {
        snprintf(id, sizeof(id), "%d-0", i);
        run(s, STORE_OP_XADD, 0, 1, -1, 5, "x", id, "f", "v", "g", "", NULL);
    }
    run(s, STORE_OP_XDEL, 0, 1, -1, 0, "x", "2-0", NULL);
    run(s, STORE_OP_XGROUP, 0, 1, -1, 0, "x", "CREATE", "g", "0", NULL);
    run(s, STORE_OP_XREADGROUP, 0, 50, -1, 6, "g", "c1", "x", ">", NULL);
    run(s, STORE_OP_XGROUP, 0, 60, -1, 0, "x", "CREATE", "h", "$", "ENTRIESREAD", "3", NULL);
    run(s, STORE_OP_XGROUP, 0, 1, -1, 0, "e", "CREATE", "g", "$", "MKSTREAM", NULL);
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "x", "copy", NULL), ":1\r\n");
    struct hy_buf snap;
    snapshot(s, &snap);
    struct store *t = new_store(9, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    store_check_invariants(t);
    assert_true(store_digest(s) == store_digest(t));
    assert_string_equal(xpending_text(t, 100, 2, "x", "g"), xpending_text(s, 100, 2, "x", "g"));
    /* Both trim the same whole node (1..5 without 2-0) under ~. */
    assert_string_equal(run(s, STORE_OP_XTRIM, 0, 1, -1, 5, "x", "MAXLEN", "~", "6", NULL),
                        ":4\r\n");
    assert_string_equal(run(t, STORE_OP_XTRIM, 0, 1, -1, 5, "x", "MAXLEN", "~", "6", NULL),
                        ":4\r\n");
    assert_true(store_digest(s) == store_digest(t));
    assert_string_equal(xrange_text(t, "copy"), xrange_text(s, "copy"));
    assert_int_equal(store_stream_len(store_find(t, S("copy"), 0)), 11);
    assert_int_equal(store_stream_len(store_find(t, S("e"), 0)), 0);
    for (size_t cut = 1; cut < 40; cut++) {
        assert_int_equal(store_snapshot_decode(t, snap.data, snap.len - cut), HY_ECORRUPT);
    }
    hy_buf_free(&snap);
    store_destroy(s);
    store_destroy(t);
}

/* ---- expiry -------------------------------------------------------------------------------- */

/* COPY deep-copies every type with its expiry (changing the copy leaves the source alone),
 * refuses an existing destination without REPLACE, and answers 0 for a missing source. */
static void test_copy(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "a", "b", NULL);
    run(s, STORE_OP_EXPIRE, 0, 1, 5000, 0, "l", NULL);
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "1", "m", NULL);
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "s", "x", NULL);
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f", "v", NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "v", NULL);
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "l", "l2", NULL), ":1\r\n");
    assert_int_equal(ttl_at(s, "l2", 1), 5000);
    run(s, STORE_OP_PUSH, 0, 1, -1, 0, "l2", "c", NULL);
    assert_string_equal(list_text(s, "l"), "a b");
    assert_string_equal(list_text(s, "l2"), "c a b");
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "z", "l2", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_COPY, STORE_F_REPLACE, 1, -1, 0, "z", "l2", NULL),
                        ":1\r\n");
    assert_string_equal(zset_text(s, "l2"), "m:1");
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "s", "s2", NULL), ":1\r\n");
    assert_string_equal(set_text(s, "s2"), "x");
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "h", "h2", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "str", "str2", NULL), ":1\r\n");
    assert_string_equal(get(s, "str2", 1), "v");
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "none", "x", NULL), ":0\r\n");
    assert_string_equal(run(s, STORE_OP_COPY, STORE_F_REPLACE, 1, -1, 0, "s", "s", NULL), ":0\r\n");
    store_check_invariants(s);
    store_destroy(s);
}

/* SORT in the log: numeric and ALPHA order, BY and GET patterns (hash fields too), LIMIT, and
 * STORE into a list (even over the sorted key itself); an empty result deletes the
 * destination. */
static void test_sort(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "3", "1", "2", "10", NULL);
    run(s, STORE_OP_MSET, 0, 1, -1, 0, "w_1", "d", "w_2", "c", "w_3", "b", "w_10", "a", NULL);
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h_2", "f", "two", NULL);
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", NULL),
                        "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n");
    assert_string_equal(
        run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "ALPHA", "DESC", "LIMIT", "0", "2", NULL),
        "*2\r\n$1\r\n3\r\n$1\r\n2\r\n");
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "BY", "w_*", "ALPHA", "GET",
                            "h_*->f", "LIMIT", "2", "-1", NULL),
                        "*2\r\n$3\r\ntwo\r\n$-1\r\n");
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "BY", "w_*", "STORE", "l", NULL),
                        "-ERR One or more scores can't be converted into double\r\n");
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "STORE", "l", NULL), ":4\r\n");
    assert_string_equal(list_text(s, "l"), "1 2 3 10");
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "none", "STORE", "l", NULL), ":0\r\n");
    assert_null(store_find(s, S("l"), 1));
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "w_1", NULL), WRONGTYPE);
    /* Fuzzer finds: sorting nothing, and LIMIT values whose sum overflows. */
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "none", NULL), "*0\r\n");
    run(s, STORE_OP_PUSH, 0, 1, -1, 0, "l", "1", NULL);
    assert_string_equal(
        run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "LIMIT", "0", "9223372036854775807", NULL),
        "*1\r\n$1\r\n1\r\n");
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "GET", "no_*", "STORE", "e", NULL),
                        ":1\r\n"); /* a nil stored as an empty element */
    assert_int_equal(store_list_len(store_find(s, S("e"), 1)), 1);
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "LIMIT", "9223372036854775807",
                            "9223372036854775807", NULL),
                        "*0\r\n");
    assert_string_equal(run(s, STORE_OP_SORT, 0, 1, -1, 0, "l", "LIMIT", "1", NULL),
                        "-ERR syntax error\r\n");
    store_check_invariants(s);
    store_destroy(s);
}

/* HyperLogLog: a new HLL is sparse in Redis's layout; PFADD answers whether a register
 * changed; PFCOUNT estimates (Redis's own numbers for these inputs) and caches the count in
 * the value; PFMERGE unions; a value that is not an HLL is refused and a corrupt sparse body
 * is reported, never read out of bounds. */
static void test_hyperloglog(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_PFADD, 0, 1, -1, 0, "h", "a", "b", "c", NULL), ":1\r\n");
    assert_string_equal(run(s, STORE_OP_PFADD, 0, 1, -1, 0, "h", "a", NULL), ":0\r\n");
    const uint8_t *v;
    size_t len;
    store_obj_string(store_find(s, S("h"), 1), &v, &len);
    assert_int_equal(len, 27); /* Redis's sparse encoding of the same three elements */
    assert_memory_equal(v, "HYLL\x01", 5);
    assert_int_equal(v[15] & 0x80, 0x80); /* cache stale */
    assert_string_equal(run(s, STORE_OP_PFCOUNT, 0, 1, -1, 0, "h", NULL), ":3\r\n");
    store_obj_string(store_find(s, S("h"), 1), &v, &len);
    assert_int_equal(v[15], 0);
    assert_int_equal(v[8], 3); /* the cached count */
    char *args[1001];
    struct store_arg argv[1001];
    argv[0] = (struct store_arg){S("h2")};
    for (int i = 1; i <= 1000; i++) {
        args[i] = hy_xmalloc(16);
        snprintf(args[i], 16, "%d", i);
        argv[i] = (struct store_arg){(const uint8_t *)args[i], strlen(args[i])};
    }
    struct store_entry e = {STORE_OP_PFADD, 0, 1, -1, 0, 1001, argv};
    struct hy_buf entry;
    hy_buf_init(&entry);
    store_entry_encode(&e, &entry);
    assert_int_equal(store_apply(s, entry.data, entry.len, NULL), HY_OK);
    hy_buf_free(&entry);
    for (int i = 1; i <= 1000; i++) {
        hy_free(args[i]);
    }
    assert_string_equal(run(s, STORE_OP_PFCOUNT, 0, 1, -1, 0, "h2", NULL), ":1001\r\n");
    assert_string_equal(run(s, STORE_OP_PFMERGE, 0, 1, -1, 0, "h3", "h", "h2", NULL), "+OK\r\n");
    assert_string_equal(run(s, STORE_OP_PFCOUNT, 0, 1, -1, 0, "h3", NULL), ":1004\r\n");
    assert_string_equal(run(s, STORE_OP_PFCOUNT, 0, 1, -1, 0, "h", "h2", NULL), ":1004\r\n");
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "HYLL", NULL);
    const char *not_hll = "-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n";
    assert_string_equal(run(s, STORE_OP_PFADD, 0, 1, -1, 0, "str", "x", NULL), not_hll);
    assert_string_equal(run(s, STORE_OP_PFMERGE, 0, 1, -1, 0, "h", "str", NULL), not_hll);
    run(s, STORE_OP_APPEND, 0, 1, -1, 0, "h", "\x7f", NULL);
    assert_string_equal(run(s, STORE_OP_PFCOUNT, 0, 1, -1, 0, "h", NULL),
                        "-INVALIDOBJ Corrupted HLL object detected\r\n");
    run(s, STORE_OP_PUSH, 0, 1, -1, 0, "l", "x", NULL);
    assert_string_equal(run(s, STORE_OP_PFCOUNT, 0, 1, -1, 0, "l", NULL), WRONGTYPE);
    store_check_invariants(s);
    store_destroy(s);
}

static void count_key_cb(void *ctx, const uint8_t *key, size_t klen, const struct store_obj *o)
{
    (void)key;
    (void)klen;
    (void)o;
    (*(size_t *)ctx)++;
}

/* Reads hide a key from its expiry time on without deleting it (DBSIZE still counts it); the
 * next write treats it as absent. */
static void test_lazy_expiry(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, 100, 0, "k", "v", NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "p", "v", NULL);
    assert_string_equal(get(s, "k", 99), "v");
    assert_null(get(s, "k", 100));
    assert_int_equal(store_key_count(s), 2);
    size_t n = 0;
    uint64_t cur = 0;
    do {
        cur = store_scan(s, cur, 10, 100, count_key_cb, &n);
    } while (cur != 0);
    assert_int_equal(n, 1);
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_NX, 100, -1, 0, "k", "new", NULL), OK);
    assert_string_equal(get(s, "k", 100), "new");
    assert_int_equal(store_volatile_count(s), 0);
    store_destroy(s);
}

/* The leader's active-expiry proposal names only expired keys; applying it deletes those still
 * expired at the entry's time and spares a key whose TTL was extended meanwhile. */
static void test_active_expiry(void **state)
{
    (void)state;
    struct store *s = new_store(5, 0, STORE_NOEVICTION);
    char k[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        run(s, STORE_OP_SET, 0, 1, i < 50 ? 100 : 10000, 0, k, "v", NULL);
    }
    run(s, STORE_OP_SET, 0, 1, -1, 0, "persistent", "v", NULL);
    struct hy_buf e;
    hy_buf_init(&e);
    assert_int_equal(store_propose_expired(s, 50, 1000, &e), 0);
    assert_int_equal(e.len, 0);
    size_t n = store_propose_expired(s, 200, 1000, &e);
    assert_int_equal(n, 50);
    /* Before the entry applies, k0 is set again without TTL: EXPIRED must not delete it. */
    run(s, STORE_OP_SET, 0, 150, -1, 0, "k0", "again", NULL);
    assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_OK);
    assert_int_equal(store_key_count(s), 52);
    assert_int_equal(store_volatile_count(s), 50);
    assert_string_equal(get(s, "k0", 200), "again");
    hy_buf_reset(&e);
    /* Sampling fewer than all keys still finds expired ones and never names one twice. */
    size_t total = 0;
    for (int round = 0; round < 200 && store_volatile_count(s) > 0; round++) {
        hy_buf_reset(&e);
        size_t got = store_propose_expired(s, 20000, 7, &e);
        if (got > 0) {
            assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_OK);
            total += got;
        }
    }
    assert_int_equal(total, 50);
    assert_int_equal(store_key_count(s), 2);
    hy_buf_free(&e);
    store_destroy(s);
}

/* One active-expiry cycle names every expired key it finds once, however many of its rounds
 * see it, and expired_keys counts each deletion once when the entry applies. */
static void test_active_expiry_cycle_names_each_key_once(void **state)
{
    (void)state;
    struct store *s = new_store(5, 0, STORE_NOEVICTION);
    char k[16];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        run(s, STORE_OP_SET, 0, 1, 100, 0, k, "v", NULL);
    }
    run(s, STORE_OP_SET, 0, 1, 5000, 0, "later", "v", NULL);
    struct hy_buf e;
    hy_buf_init(&e);
    assert_int_equal(store_propose_expired_cycle(s, 200, 20, 16, &e), 10);
    struct store_entry d;
    assert_int_equal(store_entry_decode(e.data, e.len, &d), HY_OK);
    assert_int_equal(d.argc, 10);
    store_entry_release(&d);
    assert_int_equal(store_expired_count(s), 0);
    assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_OK);
    assert_int_equal(store_expired_count(s), 10);
    assert_int_equal(store_key_count(s), 1);
    /* A write finding a key expired deletes it too, and that counts as well. */
    run(s, STORE_OP_SET, 0, 6000, -1, 0, "later", "new", NULL);
    assert_int_equal(store_expired_count(s), 11);
    hy_buf_free(&e);
    store_destroy(s);
}

/* ---- eviction ------------------------------------------------------------------------------ */

static void fill(struct store *s, int n, uint64_t t, int64_t exp, const char *prefix)
{
    char k[32];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "%s%d", prefix, i);
        run(s, STORE_OP_SET, 0, t, exp, 0, k, "value-value-value", NULL);
    }
}

static size_t evict_until_under(struct store *s, uint64_t now)
{
    struct hy_buf e;
    hy_buf_init(&e);
    size_t total = 0;
    for (int i = 0; i < 1000 && store_over_maxmemory(s); i++) {
        hy_buf_reset(&e);
        size_t n = store_propose_evictions(s, now, 16, &e);
        if (n == 0) {
            break;
        }
        assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_OK);
        total += n;
    }
    hy_buf_free(&e);
    return total;
}

/* noeviction never proposes a victim, however far over the limit. */
static void test_evict_noeviction(void **state)
{
    (void)state;
    struct store *s = new_store(1, 1, STORE_NOEVICTION);
    fill(s, 100, 1000, -1, "k");
    assert_true(store_over_maxmemory(s));
    assert_int_equal(evict_until_under(s, 5000), 0);
    assert_int_equal(store_key_count(s), 100);
    store_destroy(s);
}

/* volatile-lru evicts only keys with a TTL, and stops when none are left. */
static void test_evict_volatile_lru(void **state)
{
    (void)state;
    struct store *s = new_store(2, 0, STORE_NOEVICTION);
    fill(s, 200, 1000, -1, "p");
    fill(s, 200, 1000, 1000000, "v");
    size_t used = store_used_bytes(s);
    struct store_config cfg = {2, used / 4, STORE_VOLATILE_LRU, 5, 0, 0, {0}};
    store_configure(s, &cfg);
    evict_until_under(s, 5000);
    char k[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof(k), "p%d", i);
        assert_non_null(get(s, k, 5000));
    }
    assert_int_equal(store_volatile_count(s), 0);
    assert_true(store_over_maxmemory(s));
    store_destroy(s);
}

/* allkeys-lru evicts until under the limit and prefers keys not read for a long time. */
static void test_evict_allkeys_lru(void **state)
{
    (void)state;
    struct store *s = new_store(3, 0, STORE_NOEVICTION);
    fill(s, 500, 0, -1, "old");
    fill(s, 500, 0, -1, "new");
    char k[32];
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof(k), "new%d", i);
        assert_non_null(get(s, k, 600000)); /* touched ten minutes later */
    }
    struct store_config cfg = {3, store_used_bytes(s) * 6 / 10, STORE_ALLKEYS_LRU, 5, 0, 0, {0}};
    store_configure(s, &cfg);
    size_t evicted = evict_until_under(s, 700000);
    assert_false(store_over_maxmemory(s));
    assert_true(evicted > 0);
    size_t old_left = 0, new_left = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof(k), "old%d", i);
        old_left += store_find(s, S(k), 700000) != NULL;
        snprintf(k, sizeof(k), "new%d", i);
        new_left += store_find(s, S(k), 700000) != NULL;
    }
    print_message("allkeys-lru: evicted %zu, old left %zu, new left %zu\n", evicted, old_left,
                  new_left);
    assert_true(new_left > old_left * 3);
    store_destroy(s);
}

/* ---- transactions ---------------------------------------------------------------------------- */

/* Builds a STORE_OP_EXEC entry: watches (key, version, alive) then items (kind + payload). */
struct exec_build {
    struct store_arg argv[32];
    uint8_t meta[8][9];
    uint8_t seed[8], nw[4];
    struct hy_buf items[8];
    uint32_t argc, nwatch, nitems;
};

static void exec_init(struct exec_build *b, uint32_t nwatch)
{
    memset(b, 0, sizeof(*b));
    b->nwatch = nwatch;
    hy_store_u64le(b->seed, 42);
    hy_store_u32le(b->nw, nwatch);
    b->argv[0] = (struct store_arg){b->seed, 8};
    b->argv[1] = (struct store_arg){b->nw, 4};
    b->argc = 2;
}

static void exec_watch(struct exec_build *b, struct store *s, const char *key, uint64_t now)
{
    uint8_t *m = b->meta[b->argc / 2 - 1];
    hy_store_u64le(m, store_watch_version(s, S(key)));
    m[8] = store_peek(s, S(key), now) != NULL;
    b->argv[b->argc++] = (struct store_arg){(const uint8_t *)key, strlen(key)};
    b->argv[b->argc++] = (struct store_arg){m, 9};
}

static void exec_write(struct exec_build *b, enum store_op op, uint64_t t, ...)
{
    struct hy_buf *item = &b->items[b->nitems++];
    hy_buf_init(item);
    hy_buf_append_u8(item, 'W');
    va_list ap;
    va_start(ap, t);
    encode(item, op, 0, t, -1, 1, ap); /* incr 1: INCRBY adds one */
    va_end(ap);
    b->argv[b->argc++] = (struct store_arg){item->data, item->len};
}

static void exec_literal(struct exec_build *b, const char *reply)
{
    struct hy_buf *item = &b->items[b->nitems++];
    hy_buf_init(item);
    hy_buf_append_u8(item, 'L');
    hy_buf_append_str(item, reply);
    b->argv[b->argc++] = (struct store_arg){item->data, item->len};
}

static const char *exec_run(struct store *s, struct exec_build *b, uint64_t t)
{
    static char text[8192];
    struct store_entry e = {STORE_OP_EXEC, 0, t, -1, 0, b->argc, b->argv};
    struct hy_buf entry, out;
    hy_buf_init(&entry);
    hy_buf_init(&out);
    store_entry_encode(&e, &entry);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    memcpy(text, out.data, out.len);
    text[out.len] = '\0';
    hy_buf_free(&entry);
    hy_buf_free(&out);
    for (uint32_t i = 0; i < b->nitems; i++) {
        hy_buf_free(&b->items[i]);
    }
    return text;
}

/* One EXEC entry applies every item in order (a later write sees an earlier one), and aborts
 * with nothing applied when a watched key was written since its WATCH: by a write naming it,
 * by its lazy expiry, by FLUSHALL when it existed; a FLUSHALL of a missing key and writes to
 * other keys (of other buckets) leave the watch intact. */
static void test_exec_watch(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    struct exec_build b;
    run(s, STORE_OP_SET, 0, 1, -1, 0, "x", "30", NULL);
    exec_init(&b, 1);
    exec_watch(&b, s, "x", 1);
    exec_write(&b, STORE_OP_INCRBY, 2, "x", NULL);
    exec_literal(&b, "+PONG\r\n");
    exec_write(&b, STORE_OP_INCRBY, 2, "x", NULL);
    assert_string_equal(exec_run(s, &b, 2), "*3\r\n:31\r\n+PONG\r\n:32\r\n");

    /* A write to x between WATCH and EXEC aborts it, whatever it wrote. */
    exec_init(&b, 1);
    exec_watch(&b, s, "x", 3);
    run(s, STORE_OP_SET, 0, 3, -1, 0, "x", "32", NULL);
    exec_write(&b, STORE_OP_SET, 4, "y", "1", NULL);
    assert_string_equal(exec_run(s, &b, 4), "*-1\r\n");
    assert_null(get(s, "y", 4));

    /* Writes to other keys leave it alone (these two are in other buckets). */
    assert_true(store_watch_version(s, S("x")) != store_watch_version(s, S("other")));
    exec_init(&b, 1);
    exec_watch(&b, s, "x", 5);
    run(s, STORE_OP_SET, 0, 5, -1, 0, "other", "1", NULL);
    exec_write(&b, STORE_OP_SET, 6, "y", "1", NULL);
    assert_string_equal(exec_run(s, &b, 6), "*1\r\n+OK\r\n");

    /* Lazy expiry: alive at WATCH, expired at the entry's time. */
    run(s, STORE_OP_SET, 0, 7, 100, 0, "e", "1", NULL);
    exec_init(&b, 1);
    exec_watch(&b, s, "e", 7);
    exec_write(&b, STORE_OP_INCRBY, 200, "e", NULL);
    assert_string_equal(exec_run(s, &b, 200), "*-1\r\n");

    /* FLUSHALL: touches x (it exists), not a missing key. */
    exec_init(&b, 2);
    exec_watch(&b, s, "x", 300);
    exec_watch(&b, s, "missing", 300);
    struct exec_build b2;
    exec_init(&b2, 1);
    exec_watch(&b2, s, "missing", 300);
    run(s, STORE_OP_FLUSHALL, 0, 300, -1, 0, NULL);
    exec_literal(&b, "+PONG\r\n");
    assert_string_equal(exec_run(s, &b, 301), "*-1\r\n");
    exec_literal(&b2, "+PONG\r\n");
    assert_string_equal(exec_run(s, &b2, 301), "*1\r\n+PONG\r\n");

    /* A missing key created and deleted again still counts as changed. */
    exec_init(&b, 1);
    exec_watch(&b, s, "gone", 400);
    run(s, STORE_OP_SET, 0, 400, -1, 0, "gone", "1", NULL);
    run(s, STORE_OP_DEL, 0, 400, -1, 0, "gone", NULL);
    exec_literal(&b, "+PONG\r\n");
    assert_string_equal(exec_run(s, &b, 401), "*-1\r\n");

    /* SMOVE touches only what it changed (Redis's test "SMOVE only notify dstset when the
     * addition is successful"): the destination keeps its version when it had the member. */
    run(s, STORE_OP_SADD, 0, 450, -1, 0, "src", "a", "b", NULL);
    run(s, STORE_OP_SADD, 0, 450, -1, 0, "dst", "a", NULL);
    uint64_t dst_v = store_watch_version(s, S("dst")), src_v = store_watch_version(s, S("src"));
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 451, -1, 0, "src", "dst", "a", NULL), ":1\r\n");
    assert_int_equal(store_watch_version(s, S("dst")), dst_v);
    assert_true(store_watch_version(s, S("src")) > src_v);
    src_v = store_watch_version(s, S("src"));
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 452, -1, 0, "src", "dst", "zz", NULL), ":0\r\n");
    assert_int_equal(store_watch_version(s, S("src")), src_v);
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 453, -1, 0, "src", "dst", "b", NULL), ":1\r\n");
    assert_true(store_watch_version(s, S("dst")) > dst_v);

    /* A runtime error inside does not stop the rest (Redis: no rollback); reads without a
     * reader answer an error; nested EXEC and malformed items are refused in place. */
    run(s, STORE_OP_SET, 0, 500, -1, 0, "str", "v", NULL);
    exec_init(&b, 0);
    exec_write(&b, STORE_OP_PUSH, 501, "str", "a", NULL);
    exec_write(&b, STORE_OP_SET, 501, "z", "9", NULL);
    exec_literal(&b, "");
    b.items[b.nitems - 1].data[0] = 'Q';
    b.argv[b.argc - 1].ptr = b.items[b.nitems - 1].data;
    assert_string_equal(exec_run(s, &b, 501),
                        "*3\r\n" WRONGTYPE "+OK\r\n-ERR malformed transaction item\r\n");
    assert_string_equal(get(s, "z", 501), "9");
    store_check_invariants(s);
    store_destroy(s);
}

/* STORE_F_FLAT: LMPOP and ZMPOP in BLPOP's and BZPOPMIN's shapes (one element, no inner
 * array), a null array when every key is empty, as the blocking commands need. */
static void test_flat_pops(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "a", "b", NULL);
    assert_string_equal(run(s, STORE_OP_LMPOP, STORE_F_FLAT, 1, -1, 5, "none", "l", NULL),
                        "*2\r\n$1\r\nl\r\n$1\r\na\r\n");
    assert_string_equal(run(s, STORE_OP_LMPOP, STORE_F_FLAT | STORE_F_RIGHT, 1, -1, 1, "l", NULL),
                        "*2\r\n$1\r\nl\r\n$1\r\nb\r\n");
    assert_string_equal(run(s, STORE_OP_LMPOP, STORE_F_FLAT, 1, -1, 1, "l", NULL), "*-1\r\n");
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "1", "m", "2", "n", NULL);
    assert_string_equal(run(s, STORE_OP_ZMPOP, STORE_F_FLAT | STORE_F_RIGHT, 1, -1, 1, "z", NULL),
                        "*3\r\n$1\r\nz\r\n$1\r\nn\r\n$1\r\n2\r\n");
    assert_string_equal(run(s, STORE_OP_ZMPOP, STORE_F_FLAT, 1, -1, 1, "z", NULL),
                        "*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n");
    assert_string_equal(run(s, STORE_OP_ZMPOP, STORE_F_FLAT, 1, -1, 1, "z", NULL), "*-1\r\n");
    store_check_invariants(s);
    store_destroy(s);
}

/* The versions are replicated state: a snapshot carries them (and the apply counter), so a
 * replica restored from it checks a watch exactly as the one that took it; a replica that did
 * not see the write disagrees with the digest. */
static void test_exec_versions_snapshot(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "x", "1", NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "x", "2", NULL);
    uint64_t v = store_watch_version(s, S("x"));
    assert_true(v > 0);
    struct hy_buf snap;
    snapshot(s, &snap);
    struct store *t = new_store(2, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    assert_int_equal(store_watch_version(t, S("x")), v);
    assert_int_equal(store_digest(t), store_digest(s));
    /* Both go on counting from the same place. */
    run(s, STORE_OP_SET, 0, 2, -1, 0, "x", "3", NULL);
    run(t, STORE_OP_SET, 0, 2, -1, 0, "x", "3", NULL);
    assert_int_equal(store_watch_version(t, S("x")), store_watch_version(s, S("x")));
    assert_int_equal(store_digest(t), store_digest(s));
    /* A truncated section is refused, the store unchanged. */
    snap.data[snap.len - 5] ^= 0xff;
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_ECORRUPT);
    hy_buf_free(&snap);
    store_destroy(t);
    store_destroy(s);
}

/* s and t hold the same content, WATCH versions and bucket count included. */
static void assert_same_content(struct store *s, struct store *t)
{
    struct hy_buf a, b;
    canonical(s, &a); /* keys in order: a snapshot's come in table order */
    canonical(t, &b);
    assert_int_equal(b.len, a.len);
    assert_memory_equal(b.data, a.data, a.len);
    hy_buf_free(&b);
    hy_buf_free(&a);
    assert_int_equal(store_digest(t), store_digest(s));
}

/* The count of buckets in use, which a snapshot names before them, is kept by a bitmap beside
 * the versions (a write stores its bucket's version without reading it): thousands of writes
 * that meet in buckets, and a store that held other buckets before it took the snapshot,
 * still give the same bytes (keys in order) as the store that took it, and go on alike. */
static void test_exec_versions_counted_over_many_buckets(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    struct store *t = new_store(2, 0, STORE_NOEVICTION);
    char k[32];
    for (int i = 0; i < 6000; i++) { /* 4,096 buckets: many are met twice */
        snprintf(k, sizeof(k), "key:%d", i % 5000);
        run(s, STORE_OP_SET, 0, (uint64_t)i + 1, -1, 0, k, "v", NULL);
    }
    for (int i = 0; i < 300; i++) { /* t's own buckets, which the snapshot replaces */
        snprintf(k, sizeof(k), "other:%d", i);
        run(t, STORE_OP_SET, 0, (uint64_t)i + 1, -1, 0, k, "v", NULL);
    }
    struct hy_buf snap;
    snapshot(s, &snap);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    hy_buf_free(&snap);
    assert_same_content(s, t);
    for (int i = 0; i < 2000; i++) { /* buckets used and not yet used, on both */
        snprintf(k, sizeof(k), i % 2 ? "key:%d" : "new:%d", i);
        run(s, STORE_OP_SET, 0, (uint64_t)i + 7000, -1, 0, k, "w", NULL);
        run(t, STORE_OP_SET, 0, (uint64_t)i + 7000, -1, 0, k, "w", NULL);
    }
    assert_same_content(s, t);
    store_destroy(t);
    store_destroy(s);
}

/* ---- snapshots and entries ------------------------------------------------------------------ */

static struct store *populated(uint64_t seed, int n)
{
    struct store *s = new_store(seed, 0, STORE_NOEVICTION);
    char k[32], f[32], v[64];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "key:%06d", i);
        snprintf(v, sizeof(v), "value-%d", i * 7);
        if (i % 5 == 0) {
            snprintf(f, sizeof(f), "f%d", i % 13);
            run(s, STORE_OP_HSET, 0, 1, -1, 0, k, f, v, "other", "x", NULL);
        } else {
            run(s, STORE_OP_SET, 0, 1, i % 3 == 0 ? 100000 + i : -1, 0, k, v, NULL);
        }
    }
    return s;
}

/* populated() plus an address book (it travels in snapshots too). */
static struct store *populated_members(uint64_t seed, int n)
{
    struct store *s = populated(seed, n);
    run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 17379, "n1", "127.0.0.1", "voter", NULL);
    run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 17380, "n0", "host-b", "removed", NULL);
    return s;
}

/* MEMBER_SET: validation, updates by name (kept sorted), tombstones make room when full,
 * FLUSHALL keeps the table, a snapshot carries it. */
static void test_members(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    uint64_t v0 = store_members_version(s);
    assert_string_equal(
        run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 17379, "n2", "10.0.0.2", "voter", NULL), OK);
    assert_string_equal(
        run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 17380, "n1", "10.0.0.1", "observer", NULL), OK);
    assert_true(store_members_version(s) > v0);
    assert_string_equal(run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 0, "n3", "h", "voter", NULL),
                        "-ERR invalid member peer port\r\n");
    assert_string_equal(run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 1, "n 3", "h", "voter", NULL),
                        "-ERR invalid member name\r\n");
    assert_string_equal(run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 1, "n3", "", "voter", NULL),
                        "-ERR invalid member host\r\n");
    assert_string_equal(run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 1, "n3", "h", "king", NULL),
                        "-ERR invalid member role\r\n");
    const struct store_member *m;
    assert_int_equal(store_members(s, &m), 2);
    assert_string_equal(m[0].name, "n1");
    assert_int_equal(m[0].role, STORE_MEMBER_OBSERVER);
    assert_string_equal(m[1].host, "10.0.0.2");
    assert_string_equal(
        run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 17390, "n2", "10.0.0.9", "removed", NULL), OK);
    assert_int_equal(store_members(s, &m), 2);
    assert_int_equal(m[1].peer_port, 17390);
    assert_int_equal(m[1].role, STORE_MEMBER_REMOVED);
    /* NX only fills a gap: the removal applied first stays. */
    assert_string_equal(
        run(s, STORE_OP_MEMBER_SET, STORE_F_NX, 1, -1, 17380, "n2", "10.0.0.2", "voter", NULL), OK);
    assert_int_equal(store_members(s, &m), 2);
    assert_int_equal(m[1].role, STORE_MEMBER_REMOVED);
    assert_int_equal(m[1].peer_port, 17390);
    assert_string_equal(run(s, STORE_OP_FLUSHALL, 0, 1, -1, 0, NULL), OK);
    assert_int_equal(store_members(s, &m), 2);
    /* Full: the one tombstone (n2) makes room; then nothing does. */
    char name[16];
    for (int i = 0; i < STORE_MEMBERS_MAX - 2; i++) {
        snprintf(name, sizeof(name), "m%02d", i);
        assert_string_equal(run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 20000, name, "h", "voter", NULL),
                            OK);
    }
    assert_string_equal(run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 20000, "new1", "h", "voter", NULL),
                        OK);
    assert_string_equal(run(s, STORE_OP_MEMBER_SET, 0, 1, -1, 20000, "new2", "h", "voter", NULL),
                        "-ERR the member table is full; remove a member first\r\n");
    assert_int_equal(store_members(s, &m), STORE_MEMBERS_MAX);
    struct hy_buf snap;
    snapshot(s, &snap);
    struct store *t = new_store(2, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    const struct store_member *tm;
    assert_int_equal(store_members(t, &tm), STORE_MEMBERS_MAX);
    assert_memory_equal(m, tm, STORE_MEMBERS_MAX * sizeof(*m));
    hy_buf_free(&snap);
    store_destroy(s);
    store_destroy(t);
}

/* A snapshot decodes to an equal keyspace (values, hashes, TTLs) that re-encodes identically,
 * into a store with another seed. */
/* An overwriting SET whose value fits the entry's allocation rewrites it in place (the same
 * entry, the same bytes counted); anything else (another size, a change of expiry's presence,
 * another type) builds a new entry. Each step is checked against the value, the expiry and the
 * store's invariants (its byte count, the volatile index). */
static void test_set_overwrites_in_place(void **state)
{
    (void)state;
    struct store *s = new_store(3, 0, STORE_NOEVICTION);
    assert_string_equal(run(s, STORE_OP_SET, 0, 1, -1, 0, "key:0001", "abc", NULL), "+OK\r\n");
    const struct store_obj *first = store_find(s, S("key:0001"), 1);
    size_t used = store_used_bytes(s);
    /* Applied with every allocation failing (an x-allocation aborts the test): the arguments
     * are decoded on the stack and the entry rewritten where it is. */
    struct hy_buf entry;
    hy_buf_init(&entry);
    struct store_arg argv[2] = {{S("key:0001")}, {S("xyz")}};
    store_entry_encode(&(struct store_entry){STORE_OP_SET, 0, 2, -1, 0, 2, argv}, &entry);
    hy_alloc_fail_after(0);
    int rc = store_apply(s, entry.data, entry.len, NULL);
    hy_alloc_fail_after(-1);
    assert_int_equal(rc, HY_OK);
    hy_buf_free(&entry);
    assert_ptr_equal(store_find(s, S("key:0001"), 2), first);
    assert_string_equal(get(s, "key:0001", 2), "xyz");
    assert_int_equal(store_used_bytes(s), used);
    /* One byte shorter still fits the same chunk. */
    assert_string_equal(run(s, STORE_OP_SET, 0, 3, -1, 0, "key:0001", "xy", NULL), "+OK\r\n");
    assert_ptr_equal(store_find(s, S("key:0001"), 3), first);
    assert_string_equal(get(s, "key:0001", 3), "xy");
    store_check_invariants(s);
    /* Gaining an expiry changes the layout: a new entry, in the volatile index. */
    assert_string_equal(run(s, STORE_OP_SET, 0, 4, 9000, 0, "key:0001", "abc", NULL), "+OK\r\n");
    assert_int_equal(store_volatile_count(s), 1);
    const struct store_obj *vol = store_find(s, S("key:0001"), 4);
    assert_int_equal(store_obj_expire_at(vol), 9000);
    /* Volatile to volatile: in place, the new expiry kept. */
    assert_string_equal(run(s, STORE_OP_SET, 0, 5, 7000, 0, "key:0001", "def", NULL), "+OK\r\n");
    assert_ptr_equal(store_find(s, S("key:0001"), 5), vol);
    assert_int_equal(store_obj_expire_at(vol), 7000);
    assert_string_equal(get(s, "key:0001", 5), "def");
    assert_int_equal(ttl_at(s, "key:0001", 5), 7000);
    store_check_invariants(s);
    /* KEEPTTL keeps it; a plain SET drops it (a new entry, out of the volatile index). */
    assert_string_equal(run(s, STORE_OP_SET, STORE_F_KEEPTTL, 6, -1, 0, "key:0001", "ghi", NULL),
                        "+OK\r\n");
    assert_int_equal(ttl_at(s, "key:0001", 6), 7000);
    assert_string_equal(run(s, STORE_OP_SET, 0, 7, -1, 0, "key:0001", "jkl", NULL), "+OK\r\n");
    assert_int_equal(store_volatile_count(s), 0);
    assert_int_equal(store_obj_expire_at(store_find(s, S("key:0001"), 7)), -1);
    store_check_invariants(s);
    /* A much longer value, then a much shorter one: new entries, bytes counted anew. */
    char big[300];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_string_equal(run(s, STORE_OP_SET, 0, 8, -1, 0, "key:0001", big, NULL), "+OK\r\n");
    assert_string_equal(get(s, "key:0001", 8), big);
    assert_true(store_used_bytes(s) > used + 200);
    assert_string_equal(run(s, STORE_OP_SET, 0, 9, -1, 0, "key:0001", "z", NULL), "+OK\r\n");
    assert_string_equal(get(s, "key:0001", 9), "z");
    assert_true(store_used_bytes(s) <= used);
    store_check_invariants(s);
    /* Over another type: replaced, not overwritten. */
    run(s, STORE_OP_SADD, 0, 10, -1, 0, "set", "m", NULL);
    assert_string_equal(run(s, STORE_OP_SET, 0, 11, -1, 0, "set", "v", NULL), "+OK\r\n");
    assert_string_equal(get(s, "set", 11), "v");
    /* More arguments than apply's stack array holds (MSET of 6 pairs). */
    assert_string_equal(run(s, STORE_OP_MSET, 0, 12, -1, 0, "a", "1", "b", "2", "c", "3", "d", "4",
                            "e", "5", "f", "6", NULL),
                        "+OK\r\n");
    assert_string_equal(get(s, "a", 12), "1");
    assert_string_equal(get(s, "f", 12), "6");
    store_check_invariants(s);
    store_destroy(s);
}

static void test_snapshot_roundtrip(void **state)
{
    (void)state;
    struct store *a = populated_members(1, 3000);
    run(a, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "list", "x", "", "y", NULL);
    run(a, STORE_OP_SADD, 0, 1, -1, 0, "set", "m", "n", "", NULL);
    run(a, STORE_OP_EXPIRE, 0, 1, 500000, 0, "set", NULL);
    run(a, STORE_OP_ZADD, 0, 1, -1, 0, "zset", "2", "two", "-inf", "low", "1.5", "", NULL);
    struct hy_buf sa, sb;
    snapshot(a, &sa);
    struct store *b = new_store(99, 0, STORE_NOEVICTION);
    run(b, STORE_OP_SET, 0, 1, -1, 0, "junk", "x", NULL);
    assert_int_equal(store_snapshot_decode(b, sa.data, sa.len), HY_OK);
    assert_int_equal(store_key_count(b), 3003);
    assert_string_equal(zset_text(b, "zset"), "low:-inf :1.5 two:2");
    assert_int_equal(store_volatile_count(b), store_volatile_count(a));
    assert_string_equal(list_text(b, "list"), "x  y");
    const struct store_obj *set = store_find(b, S("set"), 1);
    assert_int_equal(store_set_len(set), 3);
    assert_true(store_set_has(set, S("")) && store_set_has(set, S("n")));
    assert_int_equal(store_obj_expire_at(set), 500000);
    assert_null(get(b, "junk", 1));
    assert_string_equal(get(b, "key:000001", 1), "value-7");
    assert_int_equal(ttl_at(b, "key:000003", 1), 100003);
    const struct store_obj *h = store_find(b, S("key:000010"), 1);
    assert_int_equal(store_hash_len(h), 2);
    hy_buf_free(&sa);
    canonical(a, &sa);
    canonical(b, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    struct store *empty = new_store(5, 0, STORE_NOEVICTION);
    hy_buf_reset(&sb);
    store_snapshot_encode(empty, &sb);
    assert_int_equal(store_snapshot_decode(b, sb.data, sb.len), HY_OK);
    assert_int_equal(store_key_count(b), 0);
    assert_int_equal(store_used_bytes(b), 0);
    hy_buf_free(&sa);
    hy_buf_free(&sb);
    store_destroy(a);
    store_destroy(b);
    store_destroy(empty);
}

/* The owner's section (store_set_snapshot_extra): its bytes come back to the loader of the
 * store it is decoded into, a loader that refuses them makes the snapshot corrupt and changes
 * nothing, a store without a loader skips them, an empty section calls no loader, and
 * store_digest does not see them. */
struct extra_probe {
    const char *give; /* what encode appends */
    int accept;
    int loads;
    char got[32];
};

static void extra_encode(void *ctx, struct hy_buf *out)
{
    const struct extra_probe *x = ctx;
    hy_buf_append(out, x->give, strlen(x->give));
}

static int extra_load(void *ctx, const uint8_t *data, size_t len)
{
    struct extra_probe *x = ctx;
    x->loads++;
    if (!x->accept) {
        return 0;
    }
    assert_true(len < sizeof(x->got));
    memcpy(x->got, data, len);
    x->got[len] = '\0';
    return 1;
}

static void test_snapshot_extra(void **state)
{
    (void)state;
    struct store *a = populated(1, 50);
    uint64_t digest = store_digest(a);
    struct extra_probe xa = {.give = "outbox-bytes", .accept = 1};
    store_set_snapshot_extra(a, extra_encode, extra_load, &xa);
    assert_true(store_digest(a) == digest);
    struct hy_buf snap, before, after;
    snapshot(a, &snap);
    struct store *b = populated(2, 7);
    struct extra_probe xb = {.give = "", .accept = 1};
    store_set_snapshot_extra(b, extra_encode, extra_load, &xb);
    assert_int_equal(store_snapshot_decode(b, snap.data, snap.len), HY_OK);
    assert_int_equal(xb.loads, 1);
    assert_string_equal(xb.got, "outbox-bytes");
    assert_true(store_digest(b) == digest);
    /* Refused: corrupt, and b is as it was. */
    struct store *c = populated(3, 9);
    struct extra_probe xc = {.give = "", .accept = 0};
    store_set_snapshot_extra(c, extra_encode, extra_load, &xc);
    snapshot(c, &before);
    assert_int_equal(store_snapshot_decode(c, snap.data, snap.len), HY_ECORRUPT);
    assert_int_equal(xc.loads, 1);
    snapshot(c, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    /* No loader: skipped. An empty section: no loader called. */
    struct store *d = new_store(4, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(d, snap.data, snap.len), HY_OK);
    assert_true(store_digest(d) == digest);
    hy_buf_free(&snap);
    snapshot(d, &snap);
    xb.loads = 0;
    assert_int_equal(store_snapshot_decode(b, snap.data, snap.len), HY_OK);
    assert_int_equal(xb.loads, 0);
    hy_buf_free(&snap);
    hy_buf_free(&before);
    hy_buf_free(&after);
    store_destroy(a);
    store_destroy(b);
    store_destroy(c);
    store_destroy(d);
}

/* Every truncation and every flipped byte of a snapshot is HY_ECORRUPT and leaves the target
 * store exactly as it was. */
static void test_snapshot_corruption(void **state)
{
    (void)state;
    struct store *a = populated_members(1, 40);
    struct hy_buf good, before, after;
    snapshot(a, &good);
    struct store *b = populated(2, 7);
    snapshot(b, &before);
    for (size_t len = 0; len < good.len; len++) {
        assert_int_equal(store_snapshot_decode(b, good.data, len), HY_ECORRUPT);
    }
    uint8_t *copy = hy_xmemdup(good.data, good.len);
    for (size_t i = 0; i < good.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            copy[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(store_snapshot_decode(b, copy, good.len), HY_ECORRUPT);
            copy[i] ^= (uint8_t)(1u << bit);
        }
    }
    snapshot(b, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    hy_free(copy);
    hy_buf_free(&good);
    hy_buf_free(&before);
    hy_buf_free(&after);
    store_destroy(a);
    store_destroy(b);
}

/* Malformed entries (every truncation, unknown op or flags, wrong argument counts, trailing
 * bytes) are HY_ECORRUPT and change nothing; random flips never crash. */
static void test_entry_corruption(void **state)
{
    (void)state;
    struct store *s = populated(1, 20);
    struct hy_buf e, before, after;
    hy_buf_init(&e);
    struct store_arg argv[3] = {{S("key:000001")}, {S("field")}, {S("value")}};
    struct store_entry ent = {STORE_OP_HSET, 0, 5, -1, 0, 3, argv};
    store_entry_encode(&ent, &e);
    snapshot(s, &before);
    for (size_t len = 0; len < e.len; len++) {
        assert_int_equal(store_apply(s, e.data, len, NULL), HY_ECORRUPT);
    }
    hy_buf_append_u8(&e, 0);
    assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_ECORRUPT);
    const uint8_t bad_op[] = {1, STORE_OP_COUNT, 0, 0, 0, 0, 0};
    const uint8_t bad_flag[] = {1, STORE_OP_DEL, 0x80, 0x80, 0x04, 0, 0, 0, 1, 1, 'k'};
    const uint8_t bad_argc[] = {1, STORE_OP_SET, 0, 0, 0, 0, 1, 1, 'k'};
    const uint8_t bad_version[] = {2, STORE_OP_NOOP, 0, 0, 0, 0, 0};
    const uint8_t huge_argc[] = {1, STORE_OP_DEL, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(store_apply(s, bad_op, sizeof(bad_op), NULL), HY_ECORRUPT);
    assert_int_equal(store_apply(s, bad_flag, sizeof(bad_flag), NULL), HY_ECORRUPT);
    assert_int_equal(store_apply(s, bad_argc, sizeof(bad_argc), NULL), HY_ECORRUPT);
    assert_int_equal(store_apply(s, bad_version, sizeof(bad_version), NULL), HY_ECORRUPT);
    assert_int_equal(store_apply(s, huge_argc, sizeof(huge_argc), NULL), HY_ECORRUPT);
    snapshot(s, &after);
    assert_memory_equal(before.data, after.data, before.len);
    e.len--;
    for (size_t i = 0; i < e.len; i++) {
        e.data[i] ^= 0x5a;
        int rc = store_apply(s, e.data, e.len, NULL);
        assert_true(rc == HY_OK || rc == HY_ECORRUPT);
        e.data[i] ^= 0x5a;
    }
    hy_buf_free(&e);
    hy_buf_free(&before);
    hy_buf_free(&after);
    store_destroy(s);
}

/* Encoding then decoding an entry gives back every field. */
static void test_entry_roundtrip(void **state)
{
    (void)state;
    struct hy_buf b;
    hy_buf_init(&b);
    struct store_arg argv[2] = {{S("k")}, {(const uint8_t *)"", 0}};
    struct store_entry in = {STORE_OP_SETRANGE, 0, UINT64_MAX, -1, INT64_MIN, 2, argv};
    store_entry_encode(&in, &b);
    struct store_entry out;
    assert_int_equal(store_entry_decode(b.data, b.len, &out), HY_OK);
    assert_int_equal(out.op, STORE_OP_SETRANGE);
    assert_true(out.time_ms == UINT64_MAX);
    assert_true(out.incr == INT64_MIN);
    assert_int_equal(out.expire_at_ms, -1);
    assert_int_equal(out.argc, 2);
    assert_int_equal(out.argv[1].len, 0);
    assert_memory_equal(out.argv[0].ptr, "k", 1);
    store_entry_release(&out);
    hy_buf_free(&b);
}

static void random_entry(struct hy_prng *p, struct hy_buf *out, uint64_t t)
{
    static const enum store_op ops[] = {
        STORE_OP_SET,         STORE_OP_DEL,     STORE_OP_EXPIRE, STORE_OP_INCRBY,
        STORE_OP_APPEND,      STORE_OP_HSET,    STORE_OP_HDEL,   STORE_OP_RENAME,
        STORE_OP_SETRANGE,    STORE_OP_PERSIST, STORE_OP_GETDEL, STORE_OP_HINCRBY,
        STORE_OP_INCRBYFLOAT, STORE_OP_PUSH,    STORE_OP_POP,    STORE_OP_LSET,
        STORE_OP_LINSERT,     STORE_OP_LREM,    STORE_OP_LMOVE,  STORE_OP_LMPOP,
        STORE_OP_SADD,        STORE_OP_SREM,    STORE_OP_SMOVE,  STORE_OP_SPOP,
        STORE_OP_SSTORE,      STORE_OP_SETBIT,  STORE_OP_BITOP};
    char k1[16], k2[16], v[16];
    snprintf(k1, sizeof(k1), "k%u", (unsigned)hy_prng_below(p, 300));
    snprintf(k2, sizeof(k2), "k%u", (unsigned)hy_prng_below(p, 300));
    snprintf(v, sizeof(v), "%u", (unsigned)hy_prng_below(p, 1000));
    enum store_op op = ops[hy_prng_below(p, HY_ARRAY_LEN(ops))];
    struct store_arg a3[3] = {{S(k1)}, {S(k2)}, {S(v)}};
    struct store_entry e = {op, 0, t, -1, (int64_t)hy_prng_below(p, 20), 1, a3};
    if (op == STORE_OP_SET && hy_prng_chance(p, 1, 3)) {
        e.expire_at_ms = (int64_t)t + 50;
    }
    switch (op) {
    case STORE_OP_SET:
    case STORE_OP_HDEL:
    case STORE_OP_RENAME:
    case STORE_OP_HINCRBY: e.argc = 2; break;
    case STORE_OP_APPEND:
    case STORE_OP_SETRANGE:
    case STORE_OP_INCRBYFLOAT:
        a3[1] = a3[2];
        e.argc = 2;
        break;
    case STORE_OP_HSET: e.argc = 3; break;
    case STORE_OP_PUSH:
    case STORE_OP_LSET:
    case STORE_OP_LREM:
    case STORE_OP_SADD:
    case STORE_OP_SREM:
    case STORE_OP_SPOP:
        a3[1] = a3[2]; /* [key, value]; SPOP: a short seed, fine for apply */
        e.argc = 2;
        e.incr = op == STORE_OP_SPOP ? e.incr - 1 : e.incr - 10;
        e.flags = hy_prng_chance(p, 1, 2) ? STORE_F_RIGHT : 0;
        e.flags = op == STORE_OP_PUSH ? e.flags : 0;
        break;
    case STORE_OP_POP:
        e.incr -= 1;
        e.flags = STORE_F_RIGHT;
        break;
    case STORE_OP_LINSERT:
        a3[1] = a3[2];
        e.argc = 3;
        break;
    case STORE_OP_SMOVE: e.argc = 3; break;
    case STORE_OP_LMOVE:
        e.argc = 2;
        e.flags = (uint32_t)hy_prng_below(p, 4) << 10; /* RIGHT, DST_RIGHT */
        break;
    case STORE_OP_LMPOP:
        e.argc = 2;
        e.incr += 1;
        break;
    case STORE_OP_SSTORE:
        e.argc = 3;
        e.incr %= 3;
        a3[2] = a3[0];
        break;
    case STORE_OP_ZADD: /* [key, score, member]: scores and members both small numbers */
        a3[1] = a3[2];
        snprintf(v, sizeof(v), "%u", (unsigned)hy_prng_below(p, 50));
        e.argc = 3;
        e.flags = (uint32_t)hy_prng_below(p, 4) == 0 ? STORE_F_INCR : 0;
        break;
    case STORE_OP_ZREM: e.argc = 2; break;
    case STORE_OP_ZPOP:
        e.incr -= 1;
        e.flags = hy_prng_chance(p, 1, 2) ? STORE_F_RIGHT : 0;
        break;
    case STORE_OP_ZMPOP:
        e.argc = 2;
        e.incr += 1;
        break;
    case STORE_OP_ZREMRANGE: /* [key, "0", "v"] by rank */
        a3[1] = (struct store_arg){S("0")};
        e.argc = 3;
        e.incr = 0;
        break;
    case STORE_OP_ZSTORE: /* [k1, k2, "1"]: ZUNIONSTORE k1 1 k2 */
        a3[2] = (struct store_arg){S("1")};
        e.argc = 3;
        e.incr %= 3;
        break;
    case STORE_OP_EXPIRE: e.expire_at_ms = (int64_t)t + (int64_t)hy_prng_below(p, 100); break;
    case STORE_OP_SETBIT: /* [key, offset < 1000, "1"] */
        a3[1] = a3[2];
        a3[2] = (struct store_arg){S("1")};
        e.argc = 3;
        break;
    case STORE_OP_BITOP: /* [k1, k2, k1] */
        a3[2] = a3[0];
        e.argc = 3;
        e.incr %= 3;
        break;
    default: break;
    }
    store_entry_encode(&e, out);
}

/* Two stores with different seeds applying the same entries end with byte-identical
 * snapshots (and identical accounting). */
static void test_determinism(void **state)
{
    (void)state;
    struct store *a = new_store(1, 0, STORE_NOEVICTION);
    struct store *b = new_store(12345, 0, STORE_NOEVICTION);
    struct hy_prng p;
    hy_prng_seed(&p, 77);
    struct hy_buf e, ra, rb;
    hy_buf_init(&e);
    hy_buf_init(&ra);
    hy_buf_init(&rb);
    struct resp_writer wa = {&ra, 2}, wb = {&rb, 3};
    for (uint64_t t = 1; t < 20000; t++) {
        hy_buf_reset(&e);
        random_entry(&p, &e, t);
        assert_int_equal(store_apply(a, e.data, e.len, &wa), HY_OK);
        assert_int_equal(store_apply(b, e.data, e.len, t % 2 ? &wb : NULL), HY_OK);
        if (t % 500 == 0) {
            store_check_invariants(a);
            store_check_invariants(b);
        }
        if (t % 3 == 0) {
            store_rehash_step(b, 3);
        }
    }
    struct hy_buf sa, sb;
    canonical(a, &sa);
    canonical(b, &sb);
    assert_true(store_key_count(a) > 10);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    hy_buf_free(&sa);
    hy_buf_free(&sb);
    hy_buf_free(&e);
    hy_buf_free(&ra);
    hy_buf_free(&rb);
    store_destroy(a);
    store_destroy(b);
}

/* store_used_bytes equals what the store really holds from the allocator, and returns to zero
 * after FLUSHALL (and after deleting every key one by one). */
static void test_accounting(void **state)
{
    (void)state;
    size_t base = hy_alloc_used_bytes();
    struct store *s = populated(1, 2000);
    size_t self = hy_alloc_used_bytes() - base - store_used_bytes(s);
    /* the store struct itself (with its bit per WATCH bucket) and its WATCH buckets
     * (allocated by the first write) only */
    assert_true(self <
                1024 + STORE_WATCH_BUCKETS / 8 + STORE_WATCH_BUCKETS * sizeof(uint64_t) + 64);
    run(s, STORE_OP_APPEND, 0, 1, -1, 0, "key:000001", "more bytes", NULL);
    run(s, STORE_OP_HDEL, 0, 1, -1, 0, "key:000010", "other", NULL);
    run(s, STORE_OP_RENAME, 0, 1, -1, 0, "key:000020", "renamed", NULL);
    run(s, STORE_OP_PERSIST, 0, 1, -1, 0, "key:000003", NULL);
    assert_int_equal(hy_alloc_used_bytes() - base - store_used_bytes(s), self);
    for (int i = 0; i < 200; i++) { /* lists and sets grow, shrink and move */
        char v[32];
        snprintf(v, sizeof(v), "value-%d", i);
        run(s, STORE_OP_PUSH, 0, 1, -1, 0, "list", v, NULL);
        run(s, STORE_OP_SADD, 0, 1, -1, 0, "set", v, NULL);
    }
    run(s, STORE_OP_LSET, 0, 1, -1, 5, "list", "a longer value than the one it replaces", NULL);
    run(s, STORE_OP_LINSERT, 0, 1, -1, 0, "list", "value-9", "inserted", NULL);
    run(s, STORE_OP_POP, 0, 1, -1, 20, "list", NULL);
    run(s, STORE_OP_LMOVE, 0, 1, -1, 0, "list", "list2", NULL);
    run(s, STORE_OP_LTRIM, 0, 1, -1, 0, "list", "10", "-10", NULL);
    run(s, STORE_OP_SREM, 0, 1, -1, 0, "set", "value-1", "value-2", NULL);
    run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "set", "set2", "value-3", NULL);
    run(s, STORE_OP_SPOP, 0, 1, -1, 30, "set", "seed", "value-4", NULL);
    run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SUNION, "set3", "set", "set2", NULL);
    run(s, STORE_OP_RENAME, 0, 1, -1, 0, "set3", "set4", NULL);
    for (int i = 0; i < 100; i++) {
        char sc[32], m[32];
        snprintf(sc, sizeof(sc), "%d", i % 7);
        snprintf(m, sizeof(m), "m%d", i);
        run(s, STORE_OP_ZADD, 0, 1, -1, 0, "zset", sc, m, NULL);
    }
    run(s, STORE_OP_ZADD, STORE_F_INCR, 1, -1, 0, "zset", "3", "m5", NULL);
    run(s, STORE_OP_ZREM, 0, 1, -1, 0, "zset", "m1", "m2", NULL);
    run(s, STORE_OP_ZPOP, 0, 1, -1, 10, "zset", NULL);
    run(s, STORE_OP_ZREMRANGE, 0, 1, -1, 1, "zset", "(5", "+inf", NULL);
    run(s, STORE_OP_ZSTORE, 0, 1, -1, STORE_ZUNION, "zu", "zset", "set", "1", "1", NULL);
    run(s, STORE_OP_ZRANGESTORE, 0, 1, -1, 0, "zr", "zu", "0", "9", "0", "-1", NULL);
    run(s, STORE_OP_ZMPOP, 0, 1, -1, 3, "zr", NULL);
    assert_int_equal(hy_alloc_used_bytes() - base - store_used_bytes(s), self);
    assert_string_equal(run(s, STORE_OP_FLUSHALL, 0, 1, -1, 0, NULL), OK);
    assert_int_equal(store_used_bytes(s), 0);
    assert_int_equal(store_key_count(s), 0);
    assert_int_equal(hy_alloc_used_bytes() - base, self);
    fill(s, 300, 1, 50, "t");
    fill(s, 300, 1, -1, "p");
    char k[32];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof(k), "t%d", i);
        run(s, STORE_OP_DEL, 0, 1, -1, 0, k, NULL);
        snprintf(k, sizeof(k), "p%d", i);
        run(s, STORE_OP_DEL, 0, 1, -1, 0, k, NULL);
    }
    assert_int_equal(store_used_bytes(s), 0);
    store_destroy(s);
    assert_int_equal(hy_alloc_used_bytes(), base);
}

/* Memory per small key (redis-benchmark shaped: 16-byte key, 3-byte value), printed for the
 * closing report; asserted only loosely, against Redis 7's ~85 bytes * 1.2. */
static void test_memory_per_key(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    char k[32];
    struct hy_buf e;
    hy_buf_init(&e);
    for (int i = 0; i < BIG_KEYS; i++) {
        snprintf(k, sizeof(k), "key:%012d", i);
        struct store_arg argv[2] = {{S(k)}, {S("xxx")}};
        struct store_entry ent = {STORE_OP_SET, 0, 1, -1, 0, 2, argv};
        hy_buf_reset(&e);
        store_entry_encode(&ent, &e);
        assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_OK);
    }
    while (store_rehash_step(s, 1000)) {
    }
    double per_key = (double)store_used_bytes(s) / BIG_KEYS;
    print_message("memory per key: %.1f bytes (%d keys, store_used_bytes %zu)\n", per_key, BIG_KEYS,
                  store_used_bytes(s));
    assert_true(per_key < 102.0);
    hy_buf_free(&e);
    store_destroy(s);
}

/* ---- Lua scripts and function libraries (store_script.c) ------------------------------------ */

/* Applies op with args (raw slices) and returns the reply text. */
static const char *run_args(struct store *s, enum store_op op, uint32_t flags, uint64_t t,
                            const struct store_arg *args, uint32_t argc)
{
    static char text[8192];
    struct store_entry e = {op, flags, t, -1, 0, argc, args};
    struct hy_buf entry, out;
    hy_buf_init(&entry);
    hy_buf_init(&out);
    store_entry_encode(&e, &entry);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    HY_ASSERT(out.len < sizeof(text));
    memcpy(text, out.data, out.len);
    text[out.len] = '\0';
    hy_buf_free(&entry);
    hy_buf_free(&out);
    return text;
}

struct fake_runner {
    int calls;
    int compiles;
    uint64_t time_ms;
    struct hy_buf nested; /* an entry the runner applies from inside, when set */
    char nested_reply[256];
};

/* A stand-in for the node's Lua runner: records the call, applies its nested entry (as
 * redis.call does) and answers +ran. The store names the body by its SHA-1. */
static int fake_run(void *ctx, struct store *s, const struct store_entry *e, const char *sha,
                    struct resp_writer *w)
{
    struct fake_runner *f = ctx;
    if (e->op == STORE_OP_EVAL) {
        char want[HY_SHA1_HEX_LEN + 1];
        hy_sha1_hex(e->argv[1].ptr, e->argv[1].len, want);
        assert_non_null(sha);
        assert_string_equal(sha, want);
    }
    f->calls++;
    f->time_ms = e->time_ms;
    if (f->nested.len > 0) {
        struct hy_buf out;
        hy_buf_init(&out);
        struct resp_writer inner = {&out, 2};
        assert_int_equal(store_apply(s, f->nested.data, f->nested.len, &inner), HY_OK);
        snprintf(f->nested_reply, sizeof(f->nested_reply), "%.*s", (int)out.len,
                 (const char *)out.data);
        hy_buf_free(&out);
    }
    if (w != NULL) {
        resp_write_simple(w, "ran");
    }
    return f->compiles;
}

static void eval_args(struct store_arg *a, uint8_t *head, uint8_t *nk, const char *body)
{
    memset(head, 7, 16);
    hy_store_u32le(nk, 0);
    a[0] = (struct store_arg){head, 16};
    a[1] = (struct store_arg){(const uint8_t *)body, strlen(body)};
    a[2] = (struct store_arg){nk, 4};
}

static void test_script_cache_ops(void **state)
{
    /* SCRIPT LOAD caches a body under its SHA-1; EVAL runs through the registered runner, with
     * the entry's time, and caches a body that compiled; nested scripts are refused; FLUSHALL
     * leaves the cache, SCRIPT FLUSH empties it. */
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    struct store_arg a[3];
    uint8_t head[16], nk[4];
    eval_args(a, head, nk, "return 1");
    assert_string_equal(run_args(s, STORE_OP_EVAL, 0, 5, a, 3), "-ERR scripts need the node\r\n");
    assert_int_equal(store_script_count(s), 0);
    struct fake_runner f = {.compiles = 1};
    hy_buf_init(&f.nested);
    store_set_script_runner(s, fake_run, &f);
    assert_string_equal(run_args(s, STORE_OP_EVAL, 0, 9, a, 3), "+ran\r\n");
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.time_ms, 9);
    size_t len;
    const uint8_t *body = store_script_find(s, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", &len);
    assert_non_null(body);
    assert_memory_equal(body, "return 1", len);
    /* A body that did not compile is not cached. */
    f.compiles = 0;
    eval_args(a, head, nk, "bad");
    run_args(s, STORE_OP_EVAL, 0, 9, a, 3);
    assert_int_equal(store_script_count(s), 1);
    /* SCRIPT LOAD: the SHA-1 (of "" here). */
    struct store_arg empty = {(const uint8_t *)"", 0};
    assert_string_equal(run_args(s, STORE_OP_SCRIPT_LOAD, 0, 10, &empty, 1),
                        "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n");
    assert_int_equal(store_script_count(s), 2);
    /* A script inside a script is refused by the store itself. */
    struct store_entry inner = {STORE_OP_EVAL, 0, 11, -1, 0, 3, a};
    store_entry_encode(&inner, &f.nested);
    run_args(s, STORE_OP_EVAL, 0, 11, a, 3);
    assert_string_equal(f.nested_reply, "-ERR This Redis command is not allowed from script\r\n");
    assert_int_equal(f.calls, 3); /* the nested one never reached the runner */
    hy_buf_free(&f.nested);
    run(s, STORE_OP_FLUSHALL, 0, 12, -1, 0, NULL);
    assert_int_equal(store_script_count(s), 2);
    assert_string_equal(run_args(s, STORE_OP_SCRIPT_FLUSH, 0, 13, NULL, 0), "+OK\r\n");
    assert_int_equal(store_script_count(s), 0);
    assert_null(store_script_find(s, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", &len));
    store_destroy(s);
}

static void test_script_entry_shapes(void **state)
{
    /* EVAL and FCALL entries are checked before apply: a head that is not 16 bytes, or more
     * keys than arguments, is corrupt. */
    (void)state;
    struct store_arg a[4];
    uint8_t head[16], nk[4];
    eval_args(a, head, nk, "return 1");
    struct hy_buf b;
    hy_buf_init(&b);
    struct store_entry e = {STORE_OP_EVAL, 0, 1, -1, 0, 3, a};
    store_entry_encode(&e, &b);
    struct store_entry d;
    assert_int_equal(store_entry_decode(b.data, b.len, &d), HY_OK);
    store_entry_release(&d);
    /* numkeys 1 with no key: corrupt (encode would assert, so patch the bytes). */
    size_t at = b.len - 4;
    assert_int_equal(b.data[at], 0);
    b.data[at] = 1;
    assert_int_equal(store_entry_decode(b.data, b.len, &d), HY_ECORRUPT);
    /* A head of 8 bytes: the 16 bytes of 7s and their length byte, rewritten. */
    b.data[at] = 0;
    uint8_t sevens[16];
    memset(sevens, 7, sizeof(sevens));
    uint8_t *h = memmem(b.data, b.len, sevens, sizeof(sevens));
    assert_non_null(h);
    assert_int_equal(h[-1], 16);
    h[-1] = 8;
    memmove(h + 8, h + 16, (size_t)(b.data + b.len - (h + 16)));
    b.len -= 8;
    assert_int_equal(store_entry_decode(b.data, b.len, &d), HY_ECORRUPT);
    hy_buf_free(&b);
}

static void test_function_library_ops(void **state)
{
    /* FUNCTION LOAD keeps a library and its functions (found case-insensitively); loading the
     * same name again needs REPLACE; a function name held by another library is refused and
     * changes nothing; DELETE and FLUSH remove them; FLUSHALL does not. */
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    uint8_t nw = 1, none = 0;
    struct store_arg lib1[6] = {{S("code-1")}, {S("Lib1")}, {S("fa")},
                                {&nw, 1},      {S("fb")},   {&none, 1}};
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_LOAD, 0, 1, lib1, 6), "$4\r\nLib1\r\n");
    const struct store_function *fn;
    const struct store_library *l = store_function_find(s, "FA", &fn);
    assert_non_null(l);
    assert_string_equal(l->name, "Lib1");
    assert_int_equal(fn->flags, 1);
    assert_memory_equal(l->code, "code-1", 6);
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_LOAD, 0, 2, lib1, 6),
                        "-ERR Library 'Lib1' already exists\r\n");
    struct store_arg lib2[4] = {{S("code-2")}, {S("lib2")}, {S("FB")}, {&none, 1}};
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_LOAD, 0, 3, lib2, 4),
                        "-ERR Function FB already exists\r\n");
    assert_null(store_function_find(s, "nosuch", &fn));
    /* REPLACE swaps the library whole (case-insensitive name). */
    struct store_arg lib1b[4] = {{S("code-1b")}, {S("lib1")}, {S("fc")}, {&none, 1}};
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_LOAD, STORE_F_REPLACE, 4, lib1b, 4),
                        "$4\r\nlib1\r\n");
    assert_null(store_function_find(s, "fa", &fn));
    assert_non_null(store_function_find(s, "fc", &fn));
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_LOAD, 0, 5, lib2, 4), "$4\r\nlib2\r\n");
    const struct store_library *const *libs;
    assert_int_equal(store_libraries(s, &libs), 2);
    run(s, STORE_OP_FLUSHALL, 0, 6, -1, 0, NULL);
    assert_int_equal(store_libraries(s, &libs), 2);
    struct store_arg name = {S("LIB2")};
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_DELETE, 0, 7, &name, 1), "+OK\r\n");
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_DELETE, 0, 8, &name, 1),
                        "-ERR Library not found\r\n");
    assert_string_equal(run_args(s, STORE_OP_FUNCTION_FLUSH, 0, 9, NULL, 0), "+OK\r\n");
    assert_int_equal(store_libraries(s, &libs), 0);
    store_destroy(s);
}

static void test_script_snapshot(void **state)
{
    /* The script cache and the libraries travel in snapshots: a replica restored from one has
     * the same digest and answers the same lookups; a cut section is corrupt. */
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    struct store_arg body = {S("return 'snap'")};
    run_args(s, STORE_OP_SCRIPT_LOAD, 0, 1, &body, 1);
    uint8_t none = 0;
    struct store_arg lib[4] = {{S("code")}, {S("snaplib")}, {S("sf")}, {&none, 1}};
    run_args(s, STORE_OP_FUNCTION_LOAD, 0, 2, lib, 4);
    run(s, STORE_OP_SET, 0, 3, -1, 0, "k", "v", NULL);
    struct hy_buf snap;
    snapshot(s, &snap);
    struct store *t = new_store(2, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    assert_int_equal(store_digest(t), store_digest(s));
    assert_int_equal(store_script_count(t), 1);
    const struct store_function *fn;
    assert_non_null(store_function_find(t, "SF", &fn));
    /* Truncating inside the sections (CRC fixed up) is refused, t unchanged. */
    for (size_t cut = 8; cut < 40; cut += 7) {
        struct hy_buf bad;
        hy_buf_init(&bad);
        hy_buf_append(&bad, snap.data, snap.len - 4 - cut);
        hy_buf_append_u32le(&bad, hy_crc32c(0, bad.data, bad.len));
        assert_int_equal(store_snapshot_decode(t, bad.data, bad.len), HY_ECORRUPT);
        hy_buf_free(&bad);
    }
    assert_int_equal(store_digest(t), store_digest(s));
    hy_buf_free(&snap);
    store_destroy(t);
    store_destroy(s);
}

/* RESTORE of a payload (binary: not a C string) into s; returns the RESP2 reply text. */
static const char *restore_raw(struct store *s, const char *key, const uint8_t *p, size_t len,
                               uint32_t flags, uint64_t t, int64_t exp, int64_t idle_ms)
{
    static char text[256];
    struct store_arg argv[2] = {{S(key)}, {p, len}};
    struct store_entry e = {STORE_OP_RESTORE, flags, t, exp, idle_ms, 2, argv};
    struct hy_buf entry, out;
    hy_buf_init(&entry);
    hy_buf_init(&out);
    store_entry_encode(&e, &entry);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    HY_ASSERT(out.len < sizeof(text));
    memcpy(text, out.data, out.len);
    text[out.len] = '\0';
    hy_buf_free(&entry);
    hy_buf_free(&out);
    return text;
}

static void dump_of(struct store *s, const char *key, struct hy_buf *out)
{
    const struct store_obj *o = store_peek(s, S(key), 1);
    assert_non_null(o);
    hy_buf_reset(out);
    store_dump(o, out);
}

/* Whether key's set lies wholly inside its entry: the bytes it counts are the entry's own. */
static int set_folded(struct store *s, const char *key)
{
    const struct store_obj *o = store_peek(s, S(key), 1);
    assert_non_null(o);
    return store_obj_bytes(o) == hy_alloc_size(o);
}

/* A small set (intset or compact list) is one allocation, its entry, after every write that
 * leaves it small and after every way an entry is rebuilt (EXPIRE, PERSIST, RENAME, COPY,
 * RESTORE, a snapshot); the members and used_memory stay exact throughout, and a set that
 * outgrows the compact encodings moves its members out. */
static void test_set_folded_into_entry(void **state)
{
    (void)state;
    size_t heap0 = hy_alloc_used_bytes();
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "warm", "v", NULL); /* the keyspace's buckets exist */
    size_t used0 = store_used_bytes(s), heap1 = hy_alloc_used_bytes();
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "k", "5", "300", "-2", "70000", "9", NULL);
    assert_true(set_folded(s, "k"));
    assert_int_equal(enc_of(s, "k"), 'i');
    /* used_memory counts what is allocated: the store's growth is the heap's. */
    assert_int_equal(store_used_bytes(s) - used0, hy_alloc_used_bytes() - heap1);
    assert_string_equal(run(s, STORE_OP_SADD, 0, 1, -1, 0, "k", "6", "5", NULL), ":1\r\n");
    assert_true(set_folded(s, "k"));
    assert_string_equal(run(s, STORE_OP_SREM, 0, 1, -1, 0, "k", "300", NULL), ":1\r\n");
    assert_true(set_folded(s, "k"));
    assert_string_equal(members_text(s, "k"), "-2 5 6 70000 9");
    run(s, STORE_OP_EXPIRE, 0, 1, 5000, 0, "k", NULL);
    assert_true(set_folded(s, "k"));
    assert_int_equal(ttl_at(s, "k", 1), 5000);
    assert_string_equal(run(s, STORE_OP_RENAME, 0, 1, -1, 0, "k", "r", NULL), OK);
    assert_true(set_folded(s, "r"));
    assert_string_equal(run(s, STORE_OP_PERSIST, 0, 1, -1, 0, "r", NULL), ":1\r\n");
    assert_true(set_folded(s, "r"));
    assert_string_equal(run(s, STORE_OP_COPY, 0, 1, -1, 0, "r", "c", NULL), ":1\r\n");
    assert_true(set_folded(s, "c"));
    assert_string_equal(members_text(s, "c"), "-2 5 6 70000 9");
    /* A non-integer member: the compact list, still in the entry. */
    assert_string_equal(run(s, STORE_OP_SADD, 0, 1, -1, 0, "c", "abc", NULL), ":1\r\n");
    assert_int_equal(enc_of(s, "c"), 'l');
    assert_true(set_folded(s, "c"));
    assert_string_equal(members_text(s, "r"), "-2 5 6 70000 9");
    assert_string_equal(members_text(s, "c"), "-2 5 6 70000 9 abc");
    struct hy_buf d;
    hy_buf_init(&d);
    dump_of(s, "c", &d);
    assert_string_equal(restore_raw(s, "d", d.data, d.len, 0, 1, -1, 0), OK);
    assert_true(set_folded(s, "d"));
    assert_string_equal(members_text(s, "d"), "-2 5 6 70000 9 abc");
    hy_buf_free(&d);
    /* SMOVE, SPOP and SINTERSTORE leave their sets folded too. */
    assert_string_equal(run(s, STORE_OP_SMOVE, 0, 1, -1, 0, "d", "m", "abc", NULL), ":1\r\n");
    assert_true(set_folded(s, "d") && set_folded(s, "m"));
    const char seed[] = "\x01\x02\x03\x04\x05\x06\x07\x08";
    assert_string_equal(run(s, STORE_OP_SPOP, 0, 1, -1, -1, "d", seed, "5", NULL), "$1\r\n5\r\n");
    assert_true(set_folded(s, "d"));
    assert_string_equal(run(s, STORE_OP_SSTORE, 0, 1, -1, STORE_SINTER, "i", "r", "c", NULL),
                        ":5\r\n");
    assert_true(set_folded(s, "i"));
    /* Past the compact bounds the members move out, and stay exact. */
    char m[16];
    for (int i = 0; i < 200; i++) {
        snprintf(m, sizeof(m), "x%d", i);
        run(s, STORE_OP_SADD, 0, 1, -1, 0, "c", m, NULL);
    }
    assert_int_equal(enc_of(s, "c"), 'f');
    assert_false(set_folded(s, "c"));
    assert_int_equal(store_set_len(store_peek(s, S("c"), 1)), 206);
    store_check_invariants(s);
    struct hy_buf snap;
    snapshot(s, &snap);
    struct store *t = new_store(2, 0, STORE_NOEVICTION);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    hy_buf_free(&snap);
    assert_true(set_folded(t, "r") && set_folded(t, "d") && set_folded(t, "i"));
    assert_string_equal(members_text(t, "r"), "-2 5 6 70000 9");
    assert_int_equal(store_digest(t), store_digest(s));
    store_check_invariants(t);
    store_destroy(t);
    store_destroy(s);
    assert_int_equal(hy_alloc_used_bytes(), heap0); /* nothing leaked */
}

/* DUMP then RESTORE gives back every type's value (the same payload again), BUSYKEY without
 * REPLACE, the TTL and idle time given, no key for an expiry already past, and every corrupt or
 * truncated payload is refused with the key space unchanged. */
static void test_dump_restore(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "hello", NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "empty", "", NULL);
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f1", "v1", "f2", "v2", NULL);
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "a", "b", "a", NULL);
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "set", "x", "y", "1", NULL);
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "1.5", "m1", "-inf", "m2", NULL);
    run(s, STORE_OP_PFADD, 0, 1, -1, 0, "hll", "a", "b", "c", NULL);
    const char *keys[] = {"str", "empty", "h", "l", "set", "z", "hll"};
    struct hy_buf d, d2, k2;
    hy_buf_init(&d);
    hy_buf_init(&d2);
    hy_buf_init(&k2);
    for (size_t i = 0; i < HY_ARRAY_LEN(keys); i++) {
        dump_of(s, keys[i], &d);
        assert_int_equal(store_dump_check(d.data, d.len), STORE_DUMP_OK);
        assert_string_equal(restore_raw(s, keys[i], d.data, d.len, 0, 2, -1, -1),
                            "-BUSYKEY Target key name already exists.\r\n");
        hy_buf_reset(&k2);
        hy_buf_append(&k2, keys[i], strlen(keys[i]));
        hy_buf_append(&k2, "2", 2); /* with its NUL: a C string */
        assert_string_equal(restore_raw(s, (const char *)k2.data, d.data, d.len, 0, 2, -1, -1),
                            "+OK\r\n");
        dump_of(s, (const char *)k2.data, &d2);
        assert_int_equal(d.len, d2.len);
        assert_memory_equal(d.data, d2.data, d.len);
        assert_int_equal(store_obj_type(store_peek(s, S((const char *)k2.data), 2)),
                         store_obj_type(store_peek(s, S(keys[i]), 2)));
    }
    assert_string_equal(run(s, STORE_OP_PFCOUNT, 0, 3, -1, 0, "hll2", NULL), ":3\r\n");
    /* REPLACE of another type, with a TTL and an idle time. */
    dump_of(s, "z", &d);
    assert_string_equal(restore_raw(s, "str", d.data, d.len, STORE_F_REPLACE, 10000, 15000, 5000),
                        "+OK\r\n");
    const struct store_obj *o = store_peek(s, S("str"), 10000);
    assert_int_equal(store_obj_type(o), STORE_ZSET);
    assert_int_equal(store_obj_expire_at(o), 15000);
    assert_true(store_obj_idle_ms(o, 10000) >= 4500);
    /* An expiry already past: REPLACE deletes, no key is created. */
    assert_string_equal(restore_raw(s, "str", d.data, d.len, STORE_F_REPLACE, 20000, 20000, -1),
                        "+OK\r\n");
    assert_null(store_peek(s, S("str"), 20000));
    /* Every truncation and every single-byte change is refused; nothing changes. */
    size_t keys_before = store_key_count(s), used = store_used_bytes(s);
    dump_of(s, "h", &d);
    for (size_t len = 0; len < d.len; len++) {
        assert_int_equal(store_dump_check(d.data, len), STORE_DUMP_BAD_CHECKSUM);
        assert_string_equal(restore_raw(s, "new", d.data, len, 0, 30000, -1, -1),
                            "-ERR DUMP payload version or checksum are wrong\r\n");
    }
    for (size_t i = 0; i < d.len; i++) {
        d.data[i] ^= 0x20;
        assert_int_not_equal(store_dump_check(d.data, d.len), STORE_DUMP_OK);
        assert_string_equal(restore_raw(s, "new", d.data, d.len, 0, 30000, -1, -1),
                            "-ERR DUMP payload version or checksum are wrong\r\n");
        d.data[i] ^= 0x20;
    }
    /* A valid checksum over a value that does not decode: Redis's "Bad data format". */
    uint8_t bad[] = {STORE_HASH, 5, 'x', 1, 0, 0, 0, 0, 0};
    bad[3] = 1; /* version */
    hy_store_u32le(bad + 5, hy_crc32c(0, bad, 5));
    assert_int_equal(store_dump_check(bad, sizeof(bad)), STORE_DUMP_BAD_DATA);
    assert_string_equal(restore_raw(s, "new", bad, sizeof(bad), 0, 30000, -1, -1),
                        "-ERR Bad data format\r\n");
    assert_int_equal(store_key_count(s), keys_before);
    assert_int_equal(store_used_bytes(s), used);
    store_check_invariants(s);
    hy_buf_free(&d);
    hy_buf_free(&d2);
    hy_buf_free(&k2);
    store_destroy(s);
}

/* DUMP's Redis payload (RDB version 10, CRC-64): "bar" is Redis's own bytes; every type's
 * payload, read back by RESTORE's conversion, is halyard's own payload of the same value; a
 * halyard payload passes unchanged; a cut or altered Redis payload gets Redis's errors. */
static void test_dump_rdb(void **state)
{
    (void)state;
    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "str", "bar", NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "int", "-70000", NULL);
    run(s, STORE_OP_HSET, 0, 1, -1, 0, "h", "f2", "v2", "f1", "300", NULL);
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "a", "127", "-4096", "1e3", NULL);
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "set", "x", "y", "1", NULL);
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "iset", "5", "-70000", "9000000000", NULL);
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "z", "1.5", "m1", "-inf", "m2", "3", "m3", NULL);
    /* Long strings: one that LZF shrinks (repeats near and far, runs of one byte), one it
     * cannot (pseudo-random bytes, stored as they are). */
    static char rep[6000], rnd[300];
    for (size_t i = 0; i < sizeof(rep) - 1; i++) {
        rep[i] = i < 1000 ? "abcdefghij"[(i * 7) % 10] : i < 2000 ? 'z' : rep[i % 977];
    }
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof(rnd) - 1; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        rnd[i] = (char)('A' + x % 26);
    }
    run(s, STORE_OP_SET, 0, 1, -1, 0, "rep", rep, NULL);
    run(s, STORE_OP_SET, 0, 1, -1, 0, "rnd", rnd, NULL);
    static const uint8_t bar[] = {0x00, 0x03, 'b',  'a',  'r',  0x0a, 0x00, 0xe6,
                                  0xbe, 0x49, 0x60, 0xee, 0x66, 0xfd, 0x17};
    const char *keys[] = {"str", "int", "h", "l", "set", "iset", "z", "rep", "rnd"};
    struct hy_buf rdb, own, conv;
    hy_buf_init(&rdb);
    hy_buf_init(&own);
    hy_buf_init(&conv);
    for (size_t i = 0; i < HY_ARRAY_LEN(keys); i++) {
        const struct store_obj *o = store_peek(s, S(keys[i]), 1);
        hy_buf_reset(&rdb);
        hy_buf_reset(&own);
        hy_buf_reset(&conv);
        store_dump_rdb(o, &rdb);
        store_dump(o, &own);
        if (i == 0) {
            assert_int_equal(rdb.len, sizeof(bar));
            assert_memory_equal(rdb.data, bar, sizeof(bar));
        }
        if (strcmp(keys[i], "rep") == 0) {
            assert_int_equal(rdb.data[1], 0xc3); /* LZF */
            assert_true(rdb.len < sizeof(rep) / 4);
        }
        if (strcmp(keys[i], "rnd") == 0) {
            assert_int_not_equal(rdb.data[1], 0xc3);
        }
        assert_int_equal(store_restore_payload(rdb.data, rdb.len, &conv), STORE_DUMP_OK);
        assert_int_equal(conv.len, own.len);
        assert_memory_equal(conv.data, own.data, own.len);
        hy_buf_reset(&conv);
        assert_int_equal(store_restore_payload(own.data, own.len, &conv), STORE_DUMP_OK);
        assert_memory_equal(conv.data, own.data, own.len);
        hy_buf_reset(&conv);
        assert_int_equal(store_restore_payload(rdb.data, rdb.len - 1, &conv),
                         STORE_DUMP_BAD_CHECKSUM);
        rdb.data[1] ^= 0x04;
        assert_int_equal(store_restore_payload(rdb.data, rdb.len, &conv), STORE_DUMP_BAD_CHECKSUM);
        assert_int_equal(conv.len, 0);
    }
    /* A string whose length runs past the value, behind a valid CRC-64. */
    uint8_t cut[] = {0x00, 0x05, 'b', 'a', 'r', 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
    hy_store_u64le(cut + 7, hy_crc64(0, cut, 7));
    assert_int_equal(store_restore_payload(cut, sizeof(cut), &conv), STORE_DUMP_BAD_DATA);
    assert_string_equal(store_dump_error(STORE_DUMP_BAD_DATA), "ERR Bad data format");
    hy_buf_free(&rdb);
    hy_buf_free(&own);
    hy_buf_free(&conv);
    store_destroy(s);
}

struct events {
    char text[2048];
};

static void event_cb(void *ctx, unsigned cls, const char *event, const uint8_t *key, size_t klen)
{
    struct events *ev = ctx;
    size_t n = strlen(ev->text);
    snprintf(ev->text + n, sizeof(ev->text) - n, "%s%u:%s:%.*s", n ? " " : "", cls, event,
             (int)klen, (const char *)key);
}

/* Keyspace notifications: each op reports Redis's event on the right key only when it did
 * something (an SREM of a missing member reports nothing), "new" before the event of a key it
 * created, "del" after it emptied a collection, "expired" and "evicted" for those deletions,
 * and nothing for classes not asked for; replicas without a reply writer report the same. */
static void test_keyspace_notifications(void **state)
{
    (void)state;
    struct store_config cfg = {1, 0, STORE_NOEVICTION, 5, 0, ~0u, {0}};
    struct store *s = store_create(&cfg, NULL);
    struct events ev = {""};
    store_set_notify(s, event_cb, &ev);
    run(s, STORE_OP_SET, 0, 1, 5000, 0, "k", "v", NULL);
    assert_string_equal(ev.text, "16384:new:k 8:set:k 4:expire:k");
    ev.text[0] = '\0';
    run(s, STORE_OP_PUSH, STORE_F_RIGHT, 1, -1, 0, "l", "a", NULL);
    run(s, STORE_OP_SREM, 0, 1, -1, 0, "nos", "x", NULL);
    run(s, STORE_OP_POP, 0, 1, -1, -1, "l", NULL);
    assert_string_equal(ev.text, "16384:new:l 16:rpush:l 16:lpop:l 4:del:l");
    ev.text[0] = '\0';
    /* A replica (no reply writer) reports the same. */
    struct hy_buf e;
    hy_buf_init(&e);
    struct store_arg argv[3] = {{S("h")}, {S("f")}, {S("1")}};
    struct store_entry he = {STORE_OP_HSET, 0, 1, -1, 0, 3, argv};
    store_entry_encode(&he, &e);
    assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_OK);
    assert_string_equal(ev.text, "16384:new:h 64:hset:h");
    ev.text[0] = '\0';
    run(s, STORE_OP_SADD, 0, 1, -1, 0, "h", "x", NULL); /* WRONGTYPE: nothing */
    run(s, STORE_OP_RENAME, 0, 1, -1, 0, "h", "h2", NULL);
    run(s, STORE_OP_DEL, 0, 1, -1, 0, "h2", "missing", NULL);
    assert_string_equal(ev.text, "16384:new:h2 4:rename_from:h 4:rename_to:h2 4:del:h2");
    ev.text[0] = '\0';
    run(s, STORE_OP_EXPIRED, 0, 6000, -1, 0, "k", NULL);
    run(s, STORE_OP_SET, 0, 6000, -1, 0, "k2", "v", NULL);
    run(s, STORE_OP_EVICT, 0, 6000, -1, 0, "k2", NULL);
    assert_string_equal(ev.text, "256:expired:k 16384:new:k2 8:set:k2 512:evicted:k2");
    ev.text[0] = '\0';
    /* Only the classes asked for. */
    cfg.notify_classes = STORE_NOTIFY_LIST;
    store_configure(s, &cfg);
    run(s, STORE_OP_SET, 0, 7000, -1, 0, "k3", "v", NULL);
    run(s, STORE_OP_PUSH, 0, 7000, -1, 0, "l2", "a", NULL);
    assert_string_equal(ev.text, "16:lpush:l2");
    hy_buf_free(&e);
    store_destroy(s);
}

/* GEO: Redis's published figures (its GEOADD/GEODIST/GEOHASH/GEOPOS documentation example:
 * Palermo and Catania), a point outside the Mercator limits refused, and STORE_OP_GEOSEARCH
 * storing members with their distances at apply, deleting the destination when none match. */
static void test_geo(void **state)
{
    (void)state;
    uint64_t pa, ca;
    assert_true(store_geo_encode(13.361389, 38.115556, &pa));
    assert_true(store_geo_encode(15.087269, 37.502669, &ca));
    assert_int_equal(pa, 3479099956230698ull);
    assert_int_equal(ca, 3479447370796909ull);
    assert_false(store_geo_encode(10, 86, &pa) || store_geo_encode(181, 0, &pa));
    assert_true(store_geo_encode(13.361389, 38.115556, &pa));
    double lon1, lat1, lon2, lat2;
    store_geo_decode(pa, &lon1, &lat1);
    store_geo_decode(ca, &lon2, &lat2);
    char buf[64];
    snprintf(buf, sizeof(buf), "%.4f", store_geo_distance(lon1, lat1, lon2, lat2));
    assert_string_equal(buf, "166274.1516");
    snprintf(buf, sizeof(buf), "%.17Lf", (long double)lon1);
    assert_string_equal(buf, "13.36138933897018433");
    char h[12];
    store_geo_hash_string(pa, h);
    assert_string_equal(h, "sqc8b49rny0");
    store_geo_hash_string(ca, h);
    assert_string_equal(h, "sqdtr74hyu0");

    struct store *s = new_store(1, 0, STORE_NOEVICTION);
    run(s, STORE_OP_ZADD, 0, 1, -1, 0, "Sicily", "3479099956230698", "Palermo", "3479447370796909",
        "Catania", NULL);
    struct store_geo_query q = {
        .lon = 15, .lat = 37, .radius_m = 200000, .unit_m = 1000, .sort = 1, .store = 2};
    uint8_t blob[STORE_GEO_BLOB_BYTES];
    store_geo_query_encode(&q, blob);
    struct store_arg argv[3] = {{S("dst")}, {S("Sicily")}, {blob, sizeof(blob)}};
    struct store_entry e = {STORE_OP_GEOSEARCH, 0, 2, -1, 0, 3, argv};
    struct hy_buf entry, out;
    hy_buf_init(&entry);
    hy_buf_init(&out);
    store_entry_encode(&e, &entry);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    assert_memory_equal(out.data, ":2\r\n", 4);
    const struct store_obj *o = store_peek(s, S("dst"), 2);
    double score;
    assert_true(store_zset_score(o, S("Catania"), &score));
    snprintf(buf, sizeof(buf), "%.4f", score);
    assert_string_equal(buf, "56.4413");
    /* Nothing within 1 m: the destination goes. */
    q.radius_m = 1;
    store_geo_query_encode(&q, blob);
    hy_buf_reset(&entry);
    hy_buf_reset(&out);
    store_entry_encode(&e, &entry);
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    assert_memory_equal(out.data, ":0\r\n", 4);
    assert_null(store_peek(s, S("dst"), 2));
    /* A malformed query (NaN) is refused, nothing changes. */
    memset(blob + 8, 0xff, 8);
    hy_buf_reset(&entry);
    hy_buf_reset(&out);
    store_entry_encode(&e, &entry);
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    assert_memory_equal(out.data, "-ERR syntax error", 17);
    store_check_invariants(s);
    hy_buf_free(&entry);
    hy_buf_free(&out);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_htab_grow_shrink),
        cmocka_unit_test(test_htab_scan_across_rehash),
        cmocka_unit_test(test_set_flags),
        cmocka_unit_test(test_prefetch_is_only_a_hint),
        cmocka_unit_test(test_set_ttl_and_type),
        cmocka_unit_test(test_mset),
        cmocka_unit_test(test_del),
        cmocka_unit_test(test_expire_options),
        cmocka_unit_test(test_persist),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_incrby),
        cmocka_unit_test(test_incrbyfloat),
        cmocka_unit_test(test_append_setrange),
        cmocka_unit_test(test_setbit_bitop),
        cmocka_unit_test(test_bitfield),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_dump_restore),
        cmocka_unit_test(test_set_folded_into_entry),
        cmocka_unit_test(test_dump_rdb),
        cmocka_unit_test(test_keyspace_notifications),
        cmocka_unit_test(test_geo),
        cmocka_unit_test(test_exec_watch),
        cmocka_unit_test(test_exec_versions_snapshot),
        cmocka_unit_test(test_exec_versions_counted_over_many_buckets),
        cmocka_unit_test(test_flat_pops),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_hyperloglog),
        cmocka_unit_test(test_getdel_getex),
        cmocka_unit_test(test_hset_hdel),
        cmocka_unit_test(test_hincr),
        cmocka_unit_test(test_hash_scan_random),
        cmocka_unit_test(test_hash_encodings),
        cmocka_unit_test(test_list_push_pop),
        cmocka_unit_test(test_list_edit),
        cmocka_unit_test(test_list_move),
        cmocka_unit_test(test_set_add_rem_move),
        cmocka_unit_test(test_set_store),
        cmocka_unit_test(test_set_spop),
        cmocka_unit_test(test_zset_add),
        cmocka_unit_test(test_zset_big_model),
        cmocka_unit_test(test_encoding_thresholds),
        cmocka_unit_test(test_encoding_never_changes_state),
        cmocka_unit_test(test_encoding_set_entry_and_snapshot),
        cmocka_unit_test(test_snapshot_encode_leaves_no_memory_behind),
        cmocka_unit_test(test_zset_pop_range_store),
        cmocka_unit_test(test_stream_xadd_ids),
        cmocka_unit_test(test_stream_trim_del_setid),
        cmocka_unit_test(test_stream_groups),
        cmocka_unit_test(test_stream_snapshot),
        cmocka_unit_test(test_lazy_expiry),
        cmocka_unit_test(test_active_expiry),
        cmocka_unit_test(test_active_expiry_cycle_names_each_key_once),
        cmocka_unit_test(test_evict_noeviction),
        cmocka_unit_test(test_evict_volatile_lru),
        cmocka_unit_test(test_evict_allkeys_lru),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_snapshot_corruption),
        cmocka_unit_test(test_snapshot_extra),
        cmocka_unit_test(test_entry_corruption),
        cmocka_unit_test(test_entry_roundtrip),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_set_overwrites_in_place),
        cmocka_unit_test(test_accounting),
        cmocka_unit_test(test_memory_per_key),
        cmocka_unit_test(test_script_cache_ops),
        cmocka_unit_test(test_script_entry_shapes),
        cmocka_unit_test(test_function_library_ops),
        cmocka_unit_test(test_script_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
