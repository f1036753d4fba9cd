/*
 * fuzz_wal_meta.c - libFuzzer target for the term/vote metadata reader (src/io/wal_codec.c)
 * and the choice between the two metadata files at recovery (src/io/wal_recover.c).
 *
 * The input is split in two untrusted files, metadata1 and metadata2. The decoder must accept
 * exactly what the encoder produces (a decoded file re-encodes to the same bytes). Recovery
 * must pick the valid file with the higher sequence, or refuse when neither is valid, and a
 * log that opened must record a new term and reopen with it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/io/disk_mem.c"
#include "../../src/io/wal.c"
#include "../../src/io/wal_codec.c"
#include "../../src/io/wal_recover.c"

#define FUZZ_CHECK(cond)      \
    do {                      \
        if (!(cond)) {        \
            __builtin_trap(); \
        }                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int decode_one(const uint8_t *buf, size_t len, struct wal_meta *m)
{
    const char *why = NULL;
    if (wal_meta_decode(buf, len, m, &why) != HY_OK) {
        FUZZ_CHECK(why != NULL);
        return 0;
    }
    uint8_t again[WAL_META_SIZE];
    wal_meta_encode(m, again);
    FUZZ_CHECK(len == WAL_META_SIZE && memcmp(again, buf, WAL_META_SIZE) == 0);
    return 1;
}

static void check_recovery(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    struct wal_meta ma;
    struct wal_meta mb;
    int va = decode_one(a, alen, &ma);
    int vb = decode_one(b, blen, &mb);
    struct disk *d = disk_mem_new("/fuzz", 2);
    FUZZ_CHECK(disk_mem_put_file(d, "metadata1", a, alen) == HY_OK);
    FUZZ_CHECK(disk_mem_put_file(d, "metadata2", b, blen) == HY_OK);
    struct wal_config cfg;
    wal_config_default(&cfg);
    struct wal *w;
    struct wal_recovered rec;
    char err[512];
    int rc = wal_open(d, &cfg, &w, &rec, err, sizeof(err));
    int none_valid = !va && !vb && (alen > 0 || blen > 0);
    FUZZ_CHECK(rc == (none_valid ? HY_ECORRUPT : HY_OK));
    if (rc == HY_OK) {
        const struct wal_meta *want = va && (!vb || ma.sequence >= mb.sequence) ? &ma : &mb;
        if (va || vb) {
            FUZZ_CHECK(rec.term == want->term && rec.vote == want->vote);
        }
        FUZZ_CHECK(wal_set_term_vote(w, rec.term + 1, 7) == HY_OK);
        uint64_t term = rec.term + 1;
        wal_close(w);
        wal_recovered_free(&rec);
        FUZZ_CHECK(wal_open(d, &cfg, &w, &rec, err, sizeof(err)) == HY_OK);
        FUZZ_CHECK(rec.term == term && rec.vote == 7);
        wal_close(w);
        wal_recovered_free(&rec);
    }
    disk_destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) {
        return 0;
    }
    struct wal_meta m;
    (void)decode_one(data, size, &m);
    size_t half = size / 2;
    check_recovery(data, half, data + half, size - half);
    return 0;
}
