/*
 * fuzz_rdb.c - libFuzzer target for RESTORE's reader of Redis's RDB payloads
 * (store_restore_payload, src/store/store_rdb.c): the lengths, LZF, ziplists, listpacks,
 * intsets and stream listpacks a client may send on purpose, and DUMP's encoder behind it.
 *
 * The input is a Redis DUMP payload. It is tried as given, then with its RDB version held to
 * at most 10 and its CRC-64 recomputed, so that mutations reach the decoders behind the frame.
 * Every status is one of the four; the reader returns every byte it took; a payload it accepts
 * gives halyard's own payload of a value that the RESTORE log entry restores, with the store's
 * invariants kept. From there, DUMP (Redis's format) and RESTORE again reach a fixed point: the
 * second round trip gives the same bytes as the first (the first may renumber a stream's
 * nodes and drop the deleted entries a Redis node counted).
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

/* RESTORE k 0 own REPLACE into s (halyard's own payload, as the node proposes it). */
static void restore(struct store *s, const struct hy_buf *own)
{
    struct store_arg argv[2] = {{(const uint8_t *)"k", 1}, {own->data, own->len}};
    struct store_entry e = {STORE_OP_RESTORE, STORE_F_REPLACE, 10, -1, -1, 2, argv};
    struct hy_buf entry, reply;
    hy_buf_init(&entry);
    hy_buf_init(&reply);
    store_entry_encode(&e, &entry);
    struct resp_writer w = {&reply, 2};
    FUZZ_CHECK(store_apply(s, entry.data, entry.len, &w) == HY_OK);
    FUZZ_CHECK(reply.len > 0 && reply.data[0] == '+');
    FUZZ_CHECK(store_key_count(s) == 1);
    store_check_invariants(s);
    hy_buf_free(&entry);
    hy_buf_free(&reply);
}

/* One round trip: own restored in a fresh store, DUMPed in Redis's format, read back into
 * next (halyard's own payload again). */
static void round_trip(const struct hy_buf *own, uint64_t seed, struct hy_buf *next)
{
    struct store *s = fuzz_store(seed);
    restore(s, own);
    const struct store_obj *o = store_peek(s, (const uint8_t *)"k", 1, 10);
    FUZZ_CHECK(o != NULL);
    struct hy_buf rdb;
    hy_buf_init(&rdb);
    store_dump_rdb(o, &rdb);
    FUZZ_CHECK(store_restore_payload(rdb.data, rdb.len, next) == STORE_DUMP_OK);
    hy_buf_free(&rdb);
    store_destroy(s);
}

static void try_one(const uint8_t *buf, size_t size)
{
    size_t base = hy_alloc_used_bytes();
    struct hy_buf own;
    hy_buf_init(&own);
    int status = store_restore_payload(buf, size, &own);
    FUZZ_CHECK(status == STORE_DUMP_OK || status == STORE_DUMP_BAD_CHECKSUM ||
               status == STORE_DUMP_BAD_DATA || status == STORE_DUMP_MODULE);
    if (status != STORE_DUMP_OK) {
        FUZZ_CHECK(own.len == 0);
    } else {
        FUZZ_CHECK(store_dump_check(own.data, own.len) == STORE_DUMP_OK);
        struct hy_buf second, third;
        hy_buf_init(&second);
        hy_buf_init(&third);
        round_trip(&own, 1, &second);
        round_trip(&second, 2, &third);
        FUZZ_CHECK(second.len == third.len && memcmp(second.data, third.data, third.len) == 0);
        hy_buf_free(&second);
        hy_buf_free(&third);
    }
    hy_buf_free(&own);
    FUZZ_CHECK(hy_alloc_used_bytes() == base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_copy(data, size);
    try_one(copy, size);
    if (size >= 11) {
        if (copy[size - 10] > 10 || copy[size - 9] != 0) {
            copy[size - 10] = 10;
            copy[size - 9] = 0;
        }
        hy_store_u64le(copy + size - 8, hy_crc64(0, copy, size - 8));
        try_one(copy, size);
    }
    free(copy);
    return 0;
}
