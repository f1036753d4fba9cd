/*
 * fuzz_dump.c - libFuzzer target for the decoder of halyard's own DUMP payloads
 * (store_dump_check and the STORE_OP_RESTORE op): what the RESTORE log entry carries, and what
 * RESTORE still accepts from clients (fuzz_rdb.c fuzzes the reader of Redis's payloads).
 *
 * The input is a DUMP payload. It is tried twice: as given, and with its trailing CRC32C
 * recomputed, so that mutations reach the value decoder behind the checksum instead of all
 * dying at the check. The check and a RESTORE entry of the payload must agree: a payload the
 * check refuses leaves the store exactly as it was (a marker key, its bytes); one it accepts
 * restores a key whose DUMP is a fixed point (dumped again, restored elsewhere, dumped a third
 * time: the same bytes), and the store keeps its invariants and returns every byte.
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

static int apply(struct store *s, const struct store_entry *e, struct hy_buf *reply)
{
    struct hy_buf b;
    hy_buf_init(&b);
    store_entry_encode(e, &b);
    struct resp_writer w = {reply, 2};
    int rc = store_apply(s, b.data, b.len, &w);
    hy_buf_free(&b);
    return rc;
}

/* RESTORE key 0 payload REPLACE into s; returns the reply's first byte. */
static char restore(struct store *s, const uint8_t *buf, size_t len)
{
    struct store_arg argv[2] = {{(const uint8_t *)"k", 1}, {buf, len}};
    struct store_entry e = {STORE_OP_RESTORE, STORE_F_REPLACE, 10, -1, -1, 2, argv};
    struct hy_buf reply;
    hy_buf_init(&reply);
    FUZZ_CHECK(apply(s, &e, &reply) == HY_OK);
    FUZZ_CHECK(reply.len > 0);
    char c = (char)reply.data[0];
    hy_buf_free(&reply);
    return c;
}

static void dump_key(struct store *s, struct hy_buf *out)
{
    const struct store_obj *o = store_peek(s, (const uint8_t *)"k", 1, 10);
    FUZZ_CHECK(o != NULL);
    store_dump(o, out);
}

static void try_one(const uint8_t *buf, size_t size)
{
    size_t base = hy_alloc_used_bytes();
    int status = store_dump_check(buf, size);
    FUZZ_CHECK(status == STORE_DUMP_OK || status == STORE_DUMP_BAD_CHECKSUM ||
               status == STORE_DUMP_BAD_DATA);
    FUZZ_CHECK(hy_alloc_used_bytes() == base);
    struct store *s = fuzz_store(1);
    struct store_arg mark[2] = {{(const uint8_t *)"marker", 6}, {(const uint8_t *)"v", 1}};
    struct store_entry set = {STORE_OP_SET, 0, 1, -1, 0, 2, mark};
    struct hy_buf ignored;
    hy_buf_init(&ignored);
    FUZZ_CHECK(apply(s, &set, &ignored) == HY_OK);
    hy_buf_free(&ignored);
    size_t used = store_used_bytes(s);
    char c = restore(s, buf, size);
    if (status != STORE_DUMP_OK) {
        FUZZ_CHECK(c == '-' && store_key_count(s) == 1 && store_used_bytes(s) == used);
    } else {
        FUZZ_CHECK(c == '+' && store_key_count(s) == 2);
        store_check_invariants(s);
        struct hy_buf first, second;
        hy_buf_init(&first);
        hy_buf_init(&second);
        dump_key(s, &first);
        FUZZ_CHECK(store_dump_check(first.data, first.len) == STORE_DUMP_OK);
        struct store *t = fuzz_store(2);
        FUZZ_CHECK(restore(t, first.data, first.len) == '+');
        dump_key(t, &second);
        FUZZ_CHECK(first.len == second.len && memcmp(first.data, second.data, first.len) == 0);
        store_destroy(t);
        hy_buf_free(&first);
        hy_buf_free(&second);
    }
    store_destroy(s);
    FUZZ_CHECK(hy_alloc_used_bytes() == base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_copy(data, size);
    try_one(copy, size);
    if (size >= 4) {
        hy_store_u32le(copy + size - 4, hy_crc32c(0, copy, size - 4));
        try_one(copy, size);
    }
    free(copy);
    return 0;
}
