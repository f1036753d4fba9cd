/*
 * wal_codec.c - encoders and checking decoders of the log's file formats
 * (wal_codec.h).
 *
 * Field offsets are named once below and checked against the documented sizes
 * with static_assert, so the code and docs/disk-format.md cannot drift
 * silently.
 */
#include "io/wal_codec.h"

#include <assert.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/crc.h"

static const uint8_t seg_magic[8] = {'H', 'Y', 'W', 'A', 'L', 'S', 'E', 'G'};
static const uint8_t snap_magic[8] = {'H', 'Y', 'W', 'A', 'L', 'S', 'N', 'P'};

/* Segment header. */
enum { SEG_MAGIC = 0, SEG_VERSION = 8, SEG_CRC = 12, SEG_END = 16 };
static_assert(SEG_END == WAL_SEG_HEADER_SIZE, "segment header size");
static_assert(WAL_SEG_HEADER_SIZE % 8 == 0, "records start 8-byte aligned");

/* Record header. */
enum {
    REC_CRC = 0,
    REC_LEN = 4,
    REC_SEQ = 8,
    REC_GROUP = 16,
    REC_KIND = 20,
    REC_TYPE = 22,
    REC_A = 24,
    REC_B = 32,
    REC_DATA = 40
};
static_assert(REC_DATA == WAL_REC_HEADER_SIZE, "record header size");
static_assert(WAL_REC_HEADER_SIZE % 8 == 0, "records stay 8-byte aligned");

/* Snapshot file header. */
enum {
    SNAP_MAGIC = 0,
    SNAP_VERSION = 8,
    SNAP_MLEN = 12,
    SNAP_INDEX = 16,
    SNAP_TERM = 24,
    SNAP_DLEN = 32,
    SNAP_MCRC = 40,
    SNAP_DCRC = 44,
    SNAP_HCRC = 48,
    SNAP_RESERVED = 52,
    SNAP_END = 56
};
static_assert(SNAP_END == WAL_SNAP_HEADER_SIZE, "snapshot header size");

static uint16_t load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void store_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static int all_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* ---- records
 * --------------------------------------------------------------------------------
 */

size_t wal_record_size(uint32_t len)
{
    return WAL_REC_HEADER_SIZE + (((size_t)len + 7) & ~(size_t)7);
}

void wal_record_encode(uint8_t *out, const struct wal_record *r)
{
    /* The check before writing, paired with wal_record_decode's after reading. */
    HY_ASSERT(wal_record_fields_ok(r));
    size_t size = wal_record_size(r->len);
    memset(out, 0, size);
    hy_store_u32le(out + REC_LEN, r->len);
    hy_store_u64le(out + REC_SEQ, r->seq);
    hy_store_u32le(out + REC_GROUP, r->group);
    store_u16(out + REC_KIND, (uint16_t)r->kind);
    store_u16(out + REC_TYPE, (uint16_t)r->type);
    hy_store_u64le(out + REC_A, r->index);
    hy_store_u64le(out + REC_B, r->term);
    if (r->len > 0) {
        memcpy(out + REC_DATA, r->data, r->len);
    }
    uint32_t crc = hy_crc32c(0, out + REC_LEN, (size_t)REC_DATA - REC_LEN + r->len);
    hy_store_u32le(out + REC_CRC, crc);
}

int wal_record_fields_ok(const struct wal_record *r)
{
    if (r->seq == 0 || r->seq >= WAL_INDEX_LIMIT) {
        return 0;
    }
    switch (r->kind) {
    case WAL_KIND_ENTRY:
        return r->index >= 1 && r->index < WAL_INDEX_LIMIT && r->term >= 1 &&
               r->term < WAL_INDEX_LIMIT && r->type != 0 && r->type <= 0xffff &&
               r->len <= WAL_RECORD_LEN_MAX;
    case WAL_KIND_TERM_VOTE: return r->len == 0 && r->type == 0 && r->index < WAL_INDEX_LIMIT;
    case WAL_KIND_TRUNCATE:
        return r->len == 0 && r->type == 0 && r->index >= 1 && r->index < WAL_INDEX_LIMIT &&
               r->term == 0;
    default: return 0;
    }
}

enum wal_rec_result wal_record_decode(const uint8_t *buf, size_t avail, struct wal_record *rec_out,
                                      size_t *size_out, const char **why_out)
{
    if (avail < WAL_REC_HEADER_SIZE || all_zero(buf, WAL_REC_HEADER_SIZE)) {
        int zero = all_zero(buf, HY_MIN(avail, (size_t)WAL_REC_HEADER_SIZE));
        *why_out = zero ? "end of records" : "record header cut short by the end of the file";
        return zero ? WAL_REC_ZERO : WAL_REC_SHORT;
    }
    uint32_t len = hy_load_u32le(buf + REC_LEN);
    struct wal_record r = {
        .seq = hy_load_u64le(buf + REC_SEQ),
        .group = hy_load_u32le(buf + REC_GROUP),
        .kind = load_u16(buf + REC_KIND),
        .type = load_u16(buf + REC_TYPE),
        .index = hy_load_u64le(buf + REC_A),
        .term = hy_load_u64le(buf + REC_B),
        .len = len,
        .data = buf + REC_DATA,
    };
    if (len > WAL_RECORD_LEN_MAX) {
        *why_out = "record length over the 64 MiB limit";
        return WAL_REC_BAD;
    }
    if (wal_record_size(len) > avail) {
        *why_out = "record runs past the end of the file";
        return WAL_REC_SHORT;
    }
    uint32_t crc = hy_crc32c(0, buf + REC_LEN, (size_t)REC_DATA - REC_LEN + len);
    if (crc != hy_load_u32le(buf + REC_CRC)) {
        *why_out = "record checksum mismatch";
        return WAL_REC_BAD;
    }
    if (!all_zero(buf + REC_DATA + len, wal_record_size(len) - REC_DATA - len)) {
        *why_out = "record padding is not zero";
        return WAL_REC_BAD;
    }
    if (!wal_record_fields_ok(&r)) {
        *why_out = "record fields out of range (sequence, kind, index, term or type)";
        return WAL_REC_BAD;
    }
    *rec_out = r;
    *size_out = wal_record_size(len);
    return WAL_REC_OK;
}

/* ---- segments
 * -------------------------------------------------------------------------------
 */

void wal_segment_header_encode(uint8_t out[WAL_SEG_HEADER_SIZE])
{
    memcpy(out + SEG_MAGIC, seg_magic, sizeof(seg_magic));
    hy_store_u32le(out + SEG_VERSION, WAL_SEGMENT_VERSION);
    hy_store_u32le(out + SEG_CRC, hy_crc32c(0, out, SEG_CRC));
}

static const char *seg_header_check(const uint8_t *buf, size_t len)
{
    if (len < WAL_SEG_HEADER_SIZE) {
        return "file shorter than the segment header";
    }
    if (hy_load_u32le(buf + SEG_CRC) != hy_crc32c(0, buf, SEG_CRC)) {
        return "segment header checksum mismatch";
    }
    if (memcmp(buf + SEG_MAGIC, seg_magic, sizeof(seg_magic)) != 0) {
        return "not a segment (bad magic)";
    }
    if (hy_load_u32le(buf + SEG_VERSION) != WAL_SEGMENT_VERSION) {
        return hy_load_u32le(buf + SEG_VERSION) == 1
                   ? "a version 1 segment (the per-group layout of halyard before the shared log)"
                   : "unsupported segment format version";
    }
    return NULL;
}

static void seg_push(struct wal_seg_parse *p, size_t *cap, const struct wal_record *r)
{
    if (p->n_records == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        p->records = hy_xrealloc(p->records, *cap * sizeof(*p->records));
    }
    p->records[p->n_records++] = *r;
}

/*
 * Recovery rule 5: bad bytes at `at` are a torn tail only if no intact record
 * of a *later* write follows. A write starts only after the previous one was
 * synced, so an intact record whose write sequence is above `expect` (the
 * sequence the torn write may have had) proves synced data was damaged. When
 * it is unknown (0), the first intact record found is taken to be of the torn
 * write itself.
 */
static int seg_later_write_follows(const uint8_t *buf, size_t len, uint64_t at, uint64_t expect)
{
    for (uint64_t q = at + 8; q + WAL_REC_HEADER_SIZE <= len; q += 8) {
        struct wal_record r;
        size_t size;
        const char *why;
        if (wal_record_decode(buf + q, len - q, &r, &size, &why) != WAL_REC_OK) {
            continue;
        }
        if (expect == 0) {
            expect = r.seq;
        }
        if (r.seq > expect) {
            return 1;
        }
    }
    return 0;
}

/* Classifies what follows the last good record at offset p (rules 4 and 5). */
static void seg_classify_tail(const uint8_t *buf, size_t len, uint64_t p, uint64_t expect,
                              const char *why, struct wal_seg_parse *out)
{
    out->end_offset = p;
    if (all_zero(buf + p, len - p)) {
        out->outcome = WAL_SEG_CLEAN;
        return;
    }
    out->bad_offset = p;
    out->why = why;
    if (seg_later_write_follows(buf, len, p, expect)) {
        out->outcome = WAL_SEG_CORRUPT;
        out->why = "damaged record followed by intact records of a later write";
    } else {
        out->outcome = WAL_SEG_TORN;
    }
}

void wal_segment_parse(const uint8_t *buf, size_t len, uint64_t expect_seq,
                       struct wal_seg_parse *out)
{
    memset(out, 0, sizeof(*out));
    const char *hwhy = seg_header_check(buf, len);
    if (hwhy != NULL) {
        int empty = all_zero(buf, len < WAL_SEG_HEADER_SIZE ? len : WAL_SEG_HEADER_SIZE) &&
                    (len <= WAL_SEG_HEADER_SIZE || all_zero(buf, len));
        out->outcome = empty || all_zero(buf + HY_MIN(len, (size_t)WAL_SEG_HEADER_SIZE),
                                         len - HY_MIN(len, (size_t)WAL_SEG_HEADER_SIZE))
                           ? WAL_SEG_EMPTY
                           : WAL_SEG_CORRUPT;
        out->why = hwhy;
        return;
    }
    size_t cap = 0;
    uint64_t p = WAL_SEG_HEADER_SIZE;
    uint64_t last_seq = 0;
    for (;;) {
        struct wal_record r;
        size_t size;
        const char *why = NULL;
        if (wal_record_decode(buf + p, len - p, &r, &size, &why) != WAL_REC_OK) {
            /* The torn write is the next one (or the rest of the last one). */
            uint64_t expect = last_seq != 0 ? last_seq + 1 : expect_seq;
            seg_classify_tail(buf, len, p, expect, why, out);
            return;
        }
        int bad_seq = last_seq != 0 ? (r.seq != last_seq && r.seq != last_seq + 1)
                                    : (expect_seq != 0 && r.seq != expect_seq);
        if (bad_seq) {
            out->outcome = WAL_SEG_CORRUPT;
            out->bad_offset = p;
            out->end_offset = p;
            out->why = "record write sequence out of order";
            return;
        }
        seg_push(out, &cap, &r);
        last_seq = r.seq;
        p += size;
    }
}

void wal_seg_parse_free(struct wal_seg_parse *p)
{
    hy_free(p->records);
    p->records = NULL;
    p->n_records = 0;
}

/* ---- snapshots
 * ------------------------------------------------------------------------------
 */

void wal_snapshot_header_encode(const struct wal_snapshot *s, uint8_t out[WAL_SNAP_HEADER_SIZE])
{
    wal_snapshot_header_encode_crc(s, hy_crc32c(0, s->data, (size_t)s->data_len), out);
}

void wal_snapshot_header_encode_crc(const struct wal_snapshot *s, uint32_t data_crc,
                                    uint8_t out[WAL_SNAP_HEADER_SIZE])
{
    HY_ASSERT(s->index >= 1 && s->index < WAL_INDEX_LIMIT && s->term >= 1 &&
              s->membership_len <= WAL_MEMBERSHIP_MAX);
    memset(out, 0, WAL_SNAP_HEADER_SIZE);
    memcpy(out + SNAP_MAGIC, snap_magic, sizeof(snap_magic));
    hy_store_u32le(out + SNAP_VERSION, WAL_FORMAT_VERSION);
    hy_store_u32le(out + SNAP_MLEN, s->membership_len);
    hy_store_u64le(out + SNAP_INDEX, s->index);
    hy_store_u64le(out + SNAP_TERM, s->term);
    hy_store_u64le(out + SNAP_DLEN, s->data_len);
    hy_store_u32le(out + SNAP_MCRC, hy_crc32c(0, s->membership, s->membership_len));
    hy_store_u32le(out + SNAP_DCRC, data_crc);
    hy_store_u32le(out + SNAP_HCRC, hy_crc32c(0, out, SNAP_HCRC));
}

static const char *snap_header_check(const uint8_t *buf, size_t len)
{
    if (len < WAL_SNAP_HEADER_SIZE) {
        return "snapshot shorter than its header";
    }
    if (hy_load_u32le(buf + SNAP_HCRC) != hy_crc32c(0, buf, SNAP_HCRC)) {
        return "snapshot header checksum mismatch";
    }
    if (memcmp(buf + SNAP_MAGIC, snap_magic, sizeof(snap_magic)) != 0 ||
        hy_load_u32le(buf + SNAP_VERSION) != WAL_FORMAT_VERSION) {
        return "not a version 1 snapshot (magic or version)";
    }
    uint32_t mlen = hy_load_u32le(buf + SNAP_MLEN);
    uint64_t dlen = hy_load_u64le(buf + SNAP_DLEN);
    if (mlen > WAL_MEMBERSHIP_MAX || dlen > len || WAL_SNAP_HEADER_SIZE + mlen + dlen != len) {
        return "snapshot size does not match its header";
    }
    uint64_t index = hy_load_u64le(buf + SNAP_INDEX);
    if (index == 0 || index >= WAL_INDEX_LIMIT || hy_load_u64le(buf + SNAP_TERM) == 0) {
        return "snapshot index (0 or over 2^62) or term (0) out of range";
    }
    if (hy_load_u32le(buf + SNAP_RESERVED) != 0) {
        return "snapshot reserved field is not 0";
    }
    return NULL;
}

int wal_snapshot_head_check(const uint8_t header[WAL_SNAP_HEADER_SIZE], uint64_t file_len,
                            struct wal_snapshot_head *out, const char **why_out)
{
    /* snap_header_check reads the header's bytes only, and compares its sizes with len. */
    const char *why = snap_header_check(header, file_len > SIZE_MAX ? SIZE_MAX : file_len);
    if (why != NULL) {
        *why_out = why;
        return HY_ECORRUPT;
    }
    uint32_t mlen = hy_load_u32le(header + SNAP_MLEN);
    *out = (struct wal_snapshot_head){.index = hy_load_u64le(header + SNAP_INDEX),
                                      .data_offset = WAL_SNAP_HEADER_SIZE + (uint64_t)mlen,
                                      .data_len = hy_load_u64le(header + SNAP_DLEN),
                                      .data_crc = hy_load_u32le(header + SNAP_DCRC)};
    return HY_OK;
}

int wal_snapshot_decode(const uint8_t *buf, size_t len, struct wal_snapshot *s_out,
                        const char **why_out)
{
    const char *why = snap_header_check(buf, len);
    if (why != NULL) {
        *why_out = why;
        return HY_ECORRUPT;
    }
    struct wal_snapshot s = {
        .index = hy_load_u64le(buf + SNAP_INDEX),
        .term = hy_load_u64le(buf + SNAP_TERM),
        .membership = buf + WAL_SNAP_HEADER_SIZE,
        .membership_len = hy_load_u32le(buf + SNAP_MLEN),
        .data_len = hy_load_u64le(buf + SNAP_DLEN),
    };
    s.data = s.membership + s.membership_len;
    if (hy_crc32c(0, s.membership, s.membership_len) != hy_load_u32le(buf + SNAP_MCRC)) {
        *why_out = "snapshot configuration checksum mismatch";
        return HY_ECORRUPT;
    }
    if (hy_crc32c(0, s.data, (size_t)s.data_len) != hy_load_u32le(buf + SNAP_DCRC)) {
        *why_out = "snapshot data checksum mismatch";
        return HY_ECORRUPT;
    }
    *s_out = s;
    return HY_OK;
}
