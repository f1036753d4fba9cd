/*
 * fuzz_snapshot.c - libFuzzer target for the store's snapshot decoder.
 *
 * The input is an untrusted snapshot (a peer's InstallSnapshot, a file on disk). It is decoded
 * twice: as given, and with its trailing CRC32C recomputed, so that mutations reach the record
 * parser behind the checksum instead of all dying at the CRC check. Decoding must either fail
 * with HY_ECORRUPT, leaving the store exactly as it was, or succeed; a decoded keyspace must
 * then re-encode, decode again and re-encode to the same bytes (the encoder's canonical form is
 * a fixed point), and destroying it must return every byte it allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/crc.h"
#include "common/status.h"
#include "store/store.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *fuzz_store(uint64_t seed)
{
    struct store_config cfg = {
        .seed = seed, .maxmemory_bytes = 0, .policy = STORE_NOEVICTION, .maxmemory_samples = 5};
    return store_create(&cfg, NULL);
}

/* A store with one known key, to prove a failed decode leaves it untouched. */
static void put_marker(struct store *s)
{
    struct store_arg argv[2] = {{(const uint8_t *)"marker", 6}, {(const uint8_t *)"v", 1}};
    struct store_entry e = {STORE_OP_SET, 0, 1, 5000, 0, 2, argv};
    struct hy_buf b;
    hy_buf_init(&b);
    store_entry_encode(&e, &b);
    FUZZ_CHECK(store_apply(s, b.data, b.len, NULL) == HY_OK);
    hy_buf_free(&b);
}

static void check_fixed_point(struct store *s)
{
    struct hy_buf first, second;
    hy_buf_init(&first);
    hy_buf_init(&second);
    store_snapshot_encode(s, &first);
    struct store *t = fuzz_store(2);
    FUZZ_CHECK(store_snapshot_decode(t, first.data, first.len) == HY_OK);
    FUZZ_CHECK(store_key_count(t) == store_key_count(s));
    FUZZ_CHECK(store_volatile_count(t) == store_volatile_count(s));
    /* A snapshot's records come in table order, which differs between the two stores: the
     * canonical encodings (sorted, the owner's section empty) must agree. */
    hy_buf_reset(&first);
    store_digest_encode(s, &first);
    store_digest_encode(t, &second);
    FUZZ_CHECK(first.len == second.len && memcmp(first.data, second.data, first.len) == 0);
    store_destroy(t);
    hy_buf_free(&first);
    hy_buf_free(&second);
}

static void decode_one(const uint8_t *buf, size_t size)
{
    size_t base = hy_alloc_used_bytes();
    struct store *s = fuzz_store(1);
    put_marker(s);
    size_t used = store_used_bytes(s);
    int rc = store_snapshot_decode(s, buf, size);
    FUZZ_CHECK(rc == HY_OK || rc == HY_ECORRUPT);
    if (rc == HY_ECORRUPT) {
        FUZZ_CHECK(store_key_count(s) == 1 && store_used_bytes(s) == used);
        FUZZ_CHECK(store_find(s, (const uint8_t *)"marker", 6, 2) != NULL);
    } else {
        check_fixed_point(s);
    }
    store_destroy(s);
    FUZZ_CHECK(hy_alloc_used_bytes() == base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_copy(data, size);
    decode_one(copy, size);
    if (size >= 4) {
        hy_store_u32le(copy + size - 4, hy_crc32c(0, copy, size - 4));
        decode_one(copy, size);
    }
    free(copy);
    return 0;
}
