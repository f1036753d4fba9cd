/*
 * fuzz_wal_segment.c - libFuzzer target for the log's segment reader and the recovery that
 * drives it (src/io/wal_codec.c, src/io/wal_recover.c).
 *
 * The input is an untrusted segment file of the node's shared log. It is parsed three ways:
 * as given; behind a valid segment header and a term/vote record of each of groups 0-2 (so
 * mutations reach the record parser and the per-group replay instead of dying at the header
 * CRC or at recovery rule 7); and as the open segment of a log directory on the simulated
 * disk, opened by wal_open for groups 0, 1 and 2. The parser must stay inside the buffer and
 * report records that re-encode to exactly the bytes they came from, with write sequences
 * that never go down. Recovery must refuse cleanly or open a log that accepts an append to
 * group 0 and reopens with the same entries plus the new one.
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
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t groups[3] = {0, 1, 2};

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
        FUZZ_CHECK(i == 0 || r->seq == p.records[i - 1].seq || r->seq == p.records[i - 1].seq + 1);
        FUZZ_CHECK(wal_record_fields_ok(r));
        uint8_t *again = hy_xmalloc(rsize);
        wal_record_encode(again, r);
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
    struct wal_config cfg;
    wal_config_default(&cfg);
    cfg.segment_size_bytes = 4096;
    struct wal *w;
    struct wal_recovered recs[3];
    char err[512];
    int rc = wal_open(d, &cfg, groups, 3, &w, recs, err, sizeof(err));
    FUZZ_CHECK(rc == HY_OK || rc == HY_ECORRUPT);
    if (rc == HY_OK) {
        for (int i = 1; i < 3; i++) {
            FUZZ_CHECK(recs[i].n_entries == 0 ||
                       recs[i].first_index + recs[i].n_entries - 1 == wal_last_index(w, groups[i]));
            wal_recovered_free(&recs[i]);
        }
        struct wal_recovered rec = recs[0];
        size_t n = rec.n_entries;
        uint64_t last = wal_last_index(w, 0);
        FUZZ_CHECK(n == 0 || rec.first_index + n - 1 == last);
        uint64_t term = wal_last_term(w, 0) ? wal_last_term(w, 0) : 1;
        struct wal_entry e = {.term = term, .type = 1, .len = 3, .data = (const uint8_t *)"abc"};
        FUZZ_CHECK(wal_append(w, 0, last + 1, &e, 1) == HY_OK);
        wal_close(w);
        wal_recovered_free(&rec);
        FUZZ_CHECK(wal_open(d, &cfg, groups, 3, &w, recs, err, sizeof(err)) == HY_OK);
        FUZZ_CHECK(recs[0].n_entries == (n == 0 ? 1 : n + 1));
        FUZZ_CHECK(recs[0].entries[recs[0].n_entries - 1].len == 3);
        wal_close(w);
        for (int i = 0; i < 3; i++) {
            wal_recovered_free(&recs[i]);
        }
    } else {
        FUZZ_CHECK(strstr(err, "open-1") != NULL || strstr(err, "group") != NULL);
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
    size_t head = WAL_SEG_HEADER_SIZE + 3 * WAL_REC_HEADER_SIZE;
    uint8_t *framed = hy_xmalloc(size + head);
    wal_segment_header_encode(framed);
    for (uint32_t g = 0; g < 3; g++) {
        struct wal_record tv = {.seq = 1, .group = g, .kind = WAL_KIND_TERM_VOTE, .index = 1};
        wal_record_encode(framed + WAL_SEG_HEADER_SIZE + g * WAL_REC_HEADER_SIZE, &tv);
    }
    if (size > 0) {
        memcpy(framed + head, data, size);
    }
    check_parse(framed, size + head, 0);
    check_recovery(framed, size + head);
    check_recovery(data, size);
    hy_free(framed);
    return 0;
}
