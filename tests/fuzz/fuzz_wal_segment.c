/*
 * fuzz_wal_segment.c - libFuzzer target for the log's segment reader and the recovery that
 * drives it (src/io/wal_codec.c, src/io/wal_recover.c).
 *
 * The input is an untrusted segment file. It is parsed three ways: as given; behind a valid
 * segment header (so mutations reach the record parser instead of dying at the header CRC);
 * and as the open segment of a data directory on the simulated disk, opened by wal_open. The
 * parser must stay inside the buffer and report records that re-encode to exactly the bytes
 * they came from. Recovery must refuse cleanly or open a log that accepts an append and
 * reopens with the same entries plus the new one.
 *
 * The fuzz build links only the pure cores, so the (pure) codec, simulated disk and wal
 * sources are compiled into this file directly.
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

/* Every reported record lies inside buf and re-encodes to the bytes it was read from. */
static void check_parse(const uint8_t *buf, size_t len, uint64_t expect)
{
    struct wal_seg_parse p;
    wal_segment_parse(buf, len, expect, &p);
    FUZZ_CHECK(p.end_offset <= len);
    uint64_t off = WAL_SEG_HEADER_SIZE;
    for (size_t i = 0; i < p.n_records; i++) {
        const struct wal_record *r = &p.records[i];
        size_t rsize = wal_record_size(r->len);
        FUZZ_CHECK((uint64_t)(r->data - buf) == off + WAL_REC_HEADER_SIZE);
        FUZZ_CHECK(off + rsize <= len);
        FUZZ_CHECK(i == 0 || r->index == p.records[i - 1].index + 1);
        uint8_t *again = hy_xmalloc(rsize);
        struct wal_entry e = {.term = r->term, .type = r->type, .len = r->len, .data = r->data};
        wal_record_encode(again, r->index, r->batch_first, &e);
        FUZZ_CHECK(memcmp(again, buf + off, rsize) == 0);
        hy_free(again);
        off += rsize;
    }
    FUZZ_CHECK(p.n_records == 0 || p.end_offset == off);
    wal_seg_parse_free(&p);
}

/* Opens the input as open-1; an opened log must take an append and reopen with it. */
static void check_recovery(const uint8_t *buf, size_t len)
{
    struct disk *d = disk_mem_new("/fuzz", 1);
    FUZZ_CHECK(disk_mem_put_file(d, "open-1", buf, len) == HY_OK);
    /* A log with entries has a term/vote file (recovery rule 7): plant one, so the segment is
     * what recovery judges. */
    struct wal_meta meta = {.sequence = 1, .term = 1, .vote = 0};
    uint8_t meta_buf[WAL_META_SIZE];
    wal_meta_encode(&meta, meta_buf);
    FUZZ_CHECK(disk_mem_put_file(d, "metadata1", meta_buf, sizeof(meta_buf)) == HY_OK);
    struct wal_config cfg;
    wal_config_default(&cfg);
    cfg.segment_size_bytes = 4096;
    struct wal *w;
    struct wal_recovered rec;
    char err[512];
    int rc = wal_open(d, &cfg, &w, &rec, err, sizeof(err));
    FUZZ_CHECK(rc == HY_OK || rc == HY_ECORRUPT);
    if (rc == HY_OK) {
        size_t n = rec.n_entries;
        uint64_t last = wal_last_index(w);
        FUZZ_CHECK(n == 0 || rec.first_index + n - 1 == last);
        uint64_t term = wal_last_term(w) ? wal_last_term(w) : 1;
        struct wal_entry e = {.term = term, .type = 1, .len = 3, .data = (const uint8_t *)"abc"};
        FUZZ_CHECK(wal_append(w, last + 1, &e, 1) == HY_OK);
        wal_close(w);
        wal_recovered_free(&rec);
        FUZZ_CHECK(wal_open(d, &cfg, &w, &rec, err, sizeof(err)) == HY_OK);
        FUZZ_CHECK(rec.n_entries == (n == 0 ? 1 : n + 1));
        FUZZ_CHECK(rec.entries[rec.n_entries - 1].len == 3);
        wal_close(w);
        wal_recovered_free(&rec);
    } else {
        FUZZ_CHECK(strstr(err, "open-1") != NULL);
    }
    disk_destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) {
        return 0;
    }
    uint64_t expect = size > 0 ? data[0] % 4 : 0;
    check_parse(data, size, expect);
    uint8_t *framed = hy_xmalloc(size + WAL_SEG_HEADER_SIZE);
    wal_segment_header_encode(framed);
    if (size > 0) {
        memcpy(framed + WAL_SEG_HEADER_SIZE, data, size);
    }
    check_parse(framed, size + WAL_SEG_HEADER_SIZE, 0);
    check_recovery(framed, size + WAL_SEG_HEADER_SIZE);
    check_recovery(data, size);
    hy_free(framed);
    return 0;
}
