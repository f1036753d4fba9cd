/*
 * fuzz_store_apply.c - libFuzzer target for store_apply (the replicated state machine).
 *
 * Input: one config byte, then a sequence of log entries, each framed as a 16-bit
 * little-endian length and the entry bytes. Every entry is applied (malformed ones must be
 * HY_ECORRUPT with the keyspace unchanged); in between, the leader-side helpers run too
 * (active expiry and eviction proposals, applied like any entry; incremental rehash; SCAN).
 * At the end the keyspace must survive a snapshot round-trip byte for byte, and after
 * FLUSHALL the store must hold no memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/status.h"
#include "store/store.h"
#include "fuzz.h"

/* Keeps each run small: SETRANGE, SETBIT and BITFIELD could otherwise ask for a 512 MiB
 * string. */
#define FUZZ_OFFSET_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Every entry is also hinted (store_prefetch_bucket, store_prefetch_node) before it is
 * applied: its reader of the first argument meets the same malformed bytes. */

static struct store *fuzz_store(uint64_t seed, uint8_t cfg_byte)
{
    struct store_config cfg = {
        .seed = seed,
        .maxmemory_bytes = (cfg_byte & 3) == 0 ? 0 : (size_t)(cfg_byte & 0xf0) * 16 + 256,
        .policy = (enum store_evict_policy)((cfg_byte & 3) % 3),
        .maxmemory_samples = 1 + ((cfg_byte >> 2) & 3),
    };
    if ((cfg_byte & 0x30) == 0x30) {
        /* Tiny encoding thresholds: small inputs then cross every conversion (hash, set,
         * intset and sorted set lists into their full structures). */
        cfg.encoding = (struct store_encoding){1, 2, 4, 2, 3, 4, 2, 4, 2, 0, 100, 4096};
    }
    return store_create(&cfg, NULL);
}

static int entry_too_costly(const uint8_t *p, size_t len)
{
    struct store_entry e;
    if (store_entry_decode(p, len, &e) != HY_OK) {
        return 0;
    }
    int costly = e.op == STORE_OP_SETRANGE && e.incr > FUZZ_OFFSET_MAX;
    uint64_t bit;
    if (e.op == STORE_OP_SETBIT &&
        store_bit_offset_parse(e.argv[1].ptr, e.argv[1].len, 0, 0, &bit)) {
        costly = bit / 8 > FUZZ_OFFSET_MAX;
    }
    if (e.op == STORE_OP_BITFIELD) {
        struct store_bf_op *ops = malloc(e.argc * sizeof(*ops));
        int writes;
        const char *err;
        costly = store_bitfield_parse(e.argv + 1, e.argc - 1, ops, &writes, &bit, &err) >= 0 &&
                 bit / 8 > FUZZ_OFFSET_MAX;
        free(ops);
    }
    if (e.op == STORE_OP_EXEC) {
        /* A transaction's writes are entries too: the same bound holds inside. */
        for (uint32_t i = 2; i < e.argc && !costly; i++) {
            if (e.argv[i].len > 1 && e.argv[i].ptr[0] == 'W') {
                costly = entry_too_costly(e.argv[i].ptr + 1, e.argv[i].len - 1);
            }
        }
    }
    store_entry_release(&e);
    return costly;
}

static void scan_cb(void *ctx, const uint8_t *key, size_t klen, const struct store_obj *o)
{
    (void)key;
    (void)klen;
    (void)o;
    (*(size_t *)ctx)++;
}

/* What the leader would do between entries: propose expiry and eviction, and apply them. */
static void leader_chores(struct store *s, uint64_t now)
{
    struct hy_buf e;
    hy_buf_init(&e);
    if (store_propose_expired(s, now, 8, &e) > 0) {
        FUZZ_CHECK(store_apply(s, e.data, e.len, NULL) == HY_OK);
    }
    hy_buf_reset(&e);
    if (store_propose_evictions(s, now, 8, &e) > 0) {
        FUZZ_CHECK(store_apply(s, e.data, e.len, NULL) == HY_OK);
    }
    hy_buf_free(&e);
    store_rehash_step(s, 1);
    size_t seen = 0;
    (void)store_scan(s, 0, 4, now, scan_cb, &seen);
}

static void apply_one(struct store *s, const uint8_t *p, size_t len, struct resp_writer *w)
{
    uint8_t *copy = malloc(len ? len : 1); /* exact size: over-reads show under ASan */
    if (len > 0) {
        memcpy(copy, p, len);
    }
    size_t keys = store_key_count(s), used = store_used_bytes(s);
    uint64_t hv = 0;
    if (store_prefetch_bucket(s, copy, len, &hv)) {
        store_prefetch_node(s, hv);
    }
    int rc = store_apply(s, copy, len, w);
    FUZZ_CHECK(rc == HY_OK || rc == HY_ECORRUPT);
    if (rc == HY_ECORRUPT) {
        FUZZ_CHECK(store_key_count(s) == keys && store_used_bytes(s) == used);
    }
    store_check_invariants(s);
    free(copy);
}

static void check_roundtrip(struct store *s)
{
    struct hy_buf a, b;
    hy_buf_init(&a);
    hy_buf_init(&b);
    store_snapshot_encode(s, &a);
    struct store *t = fuzz_store(7, 0);
    FUZZ_CHECK(store_snapshot_decode(t, a.data, a.len) == HY_OK);
    /* Records come in table order, which differs between the two stores: compare the
     * canonical encodings (sorted, the owner's section empty). */
    hy_buf_reset(&a);
    store_digest_encode(s, &a);
    store_digest_encode(t, &b);
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    store_destroy(t);
    hy_buf_free(&a);
    hy_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t base = hy_alloc_used_bytes();
    struct store *s = fuzz_store(1, data[0]);
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2 + (data[0] >> 7)};
    uint64_t now = 1;
    for (size_t off = 1; off + 2 <= size;) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        len = len < size - off ? len : size - off;
        if (!entry_too_costly(data + off, len)) {
            apply_one(s, data + off, len, (data[0] & 0x40) ? &w : NULL);
        }
        off += len;
        hy_buf_reset(&out);
        leader_chores(s, now += 97);
    }
    check_roundtrip(s);
    static const uint8_t flushall[] = {1, STORE_OP_FLUSHALL, 0, 0, 0, 0, 0};
    FUZZ_CHECK(store_apply(s, flushall, sizeof(flushall), NULL) == HY_OK);
    FUZZ_CHECK(store_used_bytes(s) == 0 && store_key_count(s) == 0);
    store_destroy(s);
    hy_buf_free(&out);
    FUZZ_CHECK(hy_alloc_used_bytes() == base);
    return 0;
}
