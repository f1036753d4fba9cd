/*
 * fuzz_wal_meta.c - libFuzzer target for the term/vote and truncation records of the shared
 * log and their replay per group at recovery (src/io/wal_codec.c, src/io/wal_recover.c).
 *
 * Term and vote are no longer files of their own: they are records of the node's one log,
 * tagged with their Raft group, as are truncations. The input is a list of such records, six
 * bytes each (group 0-3 — 3 is not one of the log's groups —, kind, term or index, vote, and
 * whether the record starts a new write), encoded with valid checksums into one open segment,
 * so that mutations exercise the replay rules rather than the CRC. Recovery must either
 * refuse (a record of an unknown group, a term that goes down, an entry out of place) or
 * recover for each group exactly the last term/vote a model replay computes; an opened log
 * must then record a new term for each group and reopen with it.
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

struct model {
    uint64_t term[4];
    uint64_t vote[4];
    int has[4];
    int refuse;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 6 * 256) {
        return 0;
    }
    size_t n = size / 6;
    size_t cap = WAL_SEG_HEADER_SIZE + (n + 1) * wal_record_size(8) + 64;
    uint8_t *seg = hy_xcalloc(1, cap);
    wal_segment_header_encode(seg);
    size_t off = WAL_SEG_HEADER_SIZE;
    uint64_t seq = 1;
    struct model m;
    memset(&m, 0, sizeof(m));
    uint64_t next_index[4] = {1, 1, 1, 1};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = data + 6 * i;
        uint32_t group = b[0] % 4;
        uint32_t kind = 1 + b[1] % 3;
        seq += b[5] & 1;
        struct wal_record r = {.seq = seq, .group = group, .kind = kind};
        if (kind == WAL_KIND_TERM_VOTE) {
            r.index = b[2];
            r.term = b[3];
            if (m.has[group] && r.index < m.term[group]) {
                m.refuse = 1;
            }
            m.term[group] = r.index;
            m.vote[group] = r.term;
            m.has[group] = 1;
        } else if (kind == WAL_KIND_TRUNCATE) {
            r.index = 1 + b[2] % 8;
        } else {
            /* Mostly the next index, sometimes an overwrite or a gap. */
            r.index = b[2] % 4 == 0 ? 1 + b[3] % 8 : next_index[group];
            r.term = 1 + b[4] % 3;
            r.type = 1;
            r.len = 8;
            r.data = b;
        }
        if (kind == WAL_KIND_ENTRY) {
            next_index[group] = r.index + 1;
        } else if (kind == WAL_KIND_TRUNCATE && next_index[group] > r.index) {
            next_index[group] = r.index;
        }
        m.refuse |= group == 3;
        uint8_t pad[8] = {0};
        if (r.data != NULL) {
            memcpy(pad, b, 6);
            r.data = pad;
        }
        wal_record_encode(seg + off, &r);
        off += wal_record_size(r.len);
    }
    struct disk *d = disk_mem_new("/fuzz", 2);
    FUZZ_CHECK(disk_mem_put_file(d, "open-1", seg, cap) == HY_OK);
    struct wal_config cfg;
    wal_config_default(&cfg);
    cfg.segment_size_bytes = 4096;
    struct wal *w;
    struct wal_recovered recs[3];
    char err[512];
    int rc = wal_open(d, &cfg, groups, 3, &w, recs, err, sizeof(err));
    FUZZ_CHECK(rc == HY_OK || rc == HY_ECORRUPT);
    if (m.refuse) {
        FUZZ_CHECK(rc == HY_ECORRUPT);
    }
    if (rc == HY_OK) {
        for (int g = 0; g < 3; g++) {
            FUZZ_CHECK(recs[g].term == m.term[g] && recs[g].vote == m.vote[g]);
            FUZZ_CHECK(recs[g].created == !m.has[g]);
            wal_batch_term_vote(w, (uint32_t)g, recs[g].term + 1, 7);
            wal_recovered_free(&recs[g]);
        }
        FUZZ_CHECK(wal_batch_commit(w) == HY_OK);
        wal_close(w);
        FUZZ_CHECK(wal_open(d, &cfg, groups, 3, &w, recs, err, sizeof(err)) == HY_OK);
        for (int g = 0; g < 3; g++) {
            FUZZ_CHECK(recs[g].term == m.term[g] + 1 && recs[g].vote == 7);
            wal_recovered_free(&recs[g]);
        }
        wal_close(w);
    }
    disk_destroy(d);
    hy_free(seg);
    return 0;
}
