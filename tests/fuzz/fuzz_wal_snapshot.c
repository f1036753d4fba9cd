/*
 * fuzz_wal_snapshot.c - libFuzzer target for the snapshot file loader (src/io/wal_codec.c)
 * and its use at recovery (src/io/wal_recover.c).
 *
 * The input is an untrusted snapshot file. It is decoded as given, and again with its three
 * CRCs recomputed so that mutations reach the length and field checks behind them. A decoded
 * snapshot must point inside the buffer and re-encode to the same header. As the snapshot of a
 * data directory it must either refuse to open or open with exactly the decoded contents.
 * Streamed to a follower chunk by chunk (src/io/snap_stream.c), a valid one reads back exactly
 * its data and one whose data fails its checksum never delivers its last chunk; loaded whole,
 * it gives the data or an error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/io/disk_mem.c"
#include "../../src/io/snap_stream.c"
#include "../../src/io/wal.c"
#include "../../src/io/wal_codec.c"
#include "../../src/io/wal_recover.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_decode(const uint8_t *buf, size_t len, struct wal_snapshot *s)
{
    const char *why = NULL;
    if (wal_snapshot_decode(buf, len, s, &why) != HY_OK) {
        FUZZ_CHECK(why != NULL);
        return 0;
    }
    FUZZ_CHECK(s->membership == buf + WAL_SNAP_HEADER_SIZE);
    FUZZ_CHECK(WAL_SNAP_HEADER_SIZE + s->membership_len + s->data_len == len);
    uint8_t header[WAL_SNAP_HEADER_SIZE];
    wal_snapshot_header_encode(s, header);
    FUZZ_CHECK(memcmp(header, buf, WAL_SNAP_HEADER_SIZE) == 0);
    return 1;
}

/* Recomputes the membership, data and header CRCs from the lengths the header claims. */
static void fix_crcs(uint8_t *buf, size_t len)
{
    if (len < WAL_SNAP_HEADER_SIZE) {
        return;
    }
    uint64_t mlen = hy_load_u32le(buf + 12);
    if (WAL_SNAP_HEADER_SIZE + mlen <= len) {
        hy_store_u32le(buf + 40, hy_crc32c(0, buf + WAL_SNAP_HEADER_SIZE, (size_t)mlen));
        size_t rest = len - WAL_SNAP_HEADER_SIZE - (size_t)mlen;
        uint64_t dlen = HY_MIN(hy_load_u64le(buf + 32), (uint64_t)rest);
        hy_store_u32le(buf + 44, hy_crc32c(0, buf + WAL_SNAP_HEADER_SIZE + mlen, (size_t)dlen));
    }
    hy_store_u32le(buf + 48, hy_crc32c(0, buf, 48));
}

static void check_recovery(const uint8_t *buf, size_t len, int valid, const struct wal_snapshot *s)
{
    struct disk *d = disk_mem_new("/fuzz", 3);
    char name[WAL_NAME_MAX];
    wal__name_snapshot(name, 0, valid ? s->index : 7, 0);
    FUZZ_CHECK(disk_mem_put_file(d, name, buf, len) == HY_OK);
    /* A snapshot comes with a term/vote record of its group (recovery rule 7): plant one in
     * a segment, so the snapshot is what recovery judges. */
    uint8_t seg[WAL_SEG_HEADER_SIZE + WAL_REC_HEADER_SIZE];
    wal_segment_header_encode(seg);
    struct wal_record tv = {.seq = 1, .group = 0, .kind = WAL_KIND_TERM_VOTE, .index = 1};
    wal_record_encode(seg + WAL_SEG_HEADER_SIZE, &tv);
    FUZZ_CHECK(disk_mem_put_file(d, "open-1", seg, sizeof(seg)) == HY_OK);
    struct wal_config cfg;
    wal_config_default(&cfg);
    struct wal *w;
    struct wal_recovered rec;
    char err[512];
    static const uint32_t group0 = 0;
    int rc = wal_open(d, &cfg, &group0, 1, &w, &rec, err, sizeof(err));
    FUZZ_CHECK(rc == (valid ? HY_OK : HY_ECORRUPT));
    if (rc == HY_OK) {
        FUZZ_CHECK(rec.snapshot.index == s->index && rec.snapshot.term == s->term);
        FUZZ_CHECK(rec.snapshot.data_len == s->data_len);
        FUZZ_CHECK(memcmp(rec.snapshot.data, s->data, (size_t)s->data_len) == 0);
        FUZZ_CHECK(wal_last_index(w, 0) == s->index);
        wal_close(w);
        wal_recovered_free(&rec);
    }
    disk_destroy(d);
}

static void check_stream(const uint8_t *buf, size_t len, int valid, const struct wal_snapshot *s)
{
    struct wal_snapshot_head head;
    const char *why = NULL;
    int head_ok =
        len >= WAL_SNAP_HEADER_SIZE && wal_snapshot_head_check(buf, len, &head, &why) == HY_OK;
    FUZZ_CHECK(!valid || head_ok); /* a whole file that decodes has a sound header */
    if (!head_ok) {
        return;
    }
    FUZZ_CHECK(head.data_offset + head.data_len == len);
    struct disk *d = disk_mem_new("/fuzz", 5);
    char name[WAL_NAME_MAX];
    wal__name_snapshot(name, 2, head.index, 0);
    FUZZ_CHECK(disk_mem_put_file(d, name, buf, len) == HY_OK);
    struct snap_stream *st = snap_stream_new(d, NULL);
    uint8_t chunk[97];
    int rc = HY_OK;
    for (uint64_t off = 0; off < head.data_len && rc == HY_OK; off += sizeof(chunk)) {
        struct raft_message m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
        m.snap_index = head.index;
        m.total = head.data_len;
        m.offset = off;
        m.len = (uint32_t)HY_MIN((uint64_t)sizeof(chunk), head.data_len - off);
        rc = snap_stream_fill(st, 2, &m, chunk);
        if (rc == HY_OK) {
            FUZZ_CHECK(memcmp(m.data, buf + head.data_offset + off, m.len) == 0);
        }
    }
    int data_ok = hy_crc32c(0, buf + head.data_offset, (size_t)head.data_len) == head.data_crc;
    FUZZ_CHECK(rc == (data_ok ? HY_OK : HY_ECORRUPT));
    snap_stream_free(st);
    struct hy_buf out;
    hy_buf_init(&out);
    rc = snap_stream_load(d, 2, head.index, &out);
    FUZZ_CHECK(rc == (valid ? HY_OK : HY_ECORRUPT));
    FUZZ_CHECK(!valid || (out.len == s->data_len &&
                          (out.len == 0 || memcmp(out.data, s->data, out.len) == 0)));
    hy_buf_free(&out);
    disk_destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) {
        return 0;
    }
    struct wal_snapshot s;
    int valid = check_decode(data, size, &s);
    check_recovery(data, size, valid, &s);
    check_stream(data, size, valid, &s);
    uint8_t *fixed = hy_xmalloc(size + 1);
    if (size > 0) {
        memcpy(fixed, data, size);
    }
    fix_crcs(fixed, size);
    valid = check_decode(fixed, size, &s);
    check_recovery(fixed, size, valid, &s);
    check_stream(fixed, size, valid, &s);
    hy_free(fixed);
    return 0;
}
