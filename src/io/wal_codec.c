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
static const uint8_t meta_magic[8] = {'H', 'Y', 'W', 'A', 'L', 'M', 'E', 'T'};
static const uint8_t snap_magic[8] = {'H', 'Y', 'W', 'A', 'L', 'S', 'N', 'P'};

/* Segment header. */
enum { SEG_MAGIC = 0, SEG_VERSION = 8, SEG_CRC = 12, SEG_END = 16 };
static_assert(SEG_END == WAL_SEG_HEADER_SIZE, "segment header size");
static_assert(WAL_SEG_HEADER_SIZE % 8 == 0, "records start 8-byte aligned");

/* Record header. */
enum {
    REC_CRC = 0,
    REC_LEN = 4,
    REC_INDEX = 8,
    REC_TERM = 16,
    REC_BATCH = 24,
    REC_TYPE = 32,
    REC_RESERVED = 36,
    REC_DATA = 40
};
static_assert(REC_DATA == WAL_REC_HEADER_SIZE, "record header size");
static_assert(WAL_REC_HEADER_SIZE % 8 == 0, "records stay 8-byte aligned");

/* Metadata file. */
enum {
    META_MAGIC = 0,
    META_VERSION = 8,
    META_RESERVED = 12,
    META_SEQ = 16,
    META_TERM = 24,
    META_VOTE = 32,
    META_CRC = 40,
    META_RESERVED2 = 44,
    META_END = 48
};
static_assert(META_END == WAL_META_SIZE, "metadata size");

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

void wal_record_encode(uint8_t *out, uint64_t index, uint64_t batch_first,
                       const struct wal_entry *e)
{
    /* The check before writing, paired with wal_record_decode's after reading. */
    HY_ASSERT(index >= 1 && index < WAL_INDEX_LIMIT && e->term >= 1 && e->type != 0 &&
              e->len <= WAL_RECORD_LEN_MAX);
    HY_ASSERT(batch_first >= 1 && batch_first <= index);
    size_t size = wal_record_size(e->len);
    memset(out, 0, size);
    hy_store_u32le(out + REC_LEN, e->len);
    hy_store_u64le(out + REC_INDEX, index);
    hy_store_u64le(out + REC_TERM, e->term);
    hy_store_u64le(out + REC_BATCH, batch_first);
    hy_store_u32le(out + REC_TYPE, e->type);
    if (e->len > 0) {
        memcpy(out + REC_DATA, e->data, e->len);
    }
    uint32_t crc = hy_crc32c(0, out + REC_LEN, (size_t)REC_DATA - REC_LEN + e->len);
    hy_store_u32le(out + REC_CRC, crc);
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
        .index = hy_load_u64le(buf + REC_INDEX),
        .term = hy_load_u64le(buf + REC_TERM),
        .batch_first = hy_load_u64le(buf + REC_BATCH),
        .type = hy_load_u32le(buf + REC_TYPE),
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
    if (r.index == 0 || r.index >= WAL_INDEX_LIMIT || r.term == 0 || r.type == 0 ||
        r.batch_first == 0 || r.batch_first > r.index || hy_load_u32le(buf + REC_RESERVED) != 0) {
        *why_out = "record fields out of range (index, term, type or batch start)";
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
    hy_store_u32le(out + SEG_VERSION, WAL_FORMAT_VERSION);
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
    if (hy_load_u32le(buf + SEG_VERSION) != WAL_FORMAT_VERSION) {
        return "unsupported segment format version";
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
 * of a *later* write follows. A later write starts only after the one holding
 * index `expect` was synced, so an intact record with batch_first > expect
 * proves synced data was damaged. When the expected index is unknown (0), the
 * first intact record found is taken to be of the torn write itself.
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
            expect = r.batch_first;
        }
        if (r.batch_first > expect) {
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

void wal_segment_parse(const uint8_t *buf, size_t len, uint64_t expect_first,
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
    uint64_t expect = expect_first;
    uint64_t last_term = 0;
    for (;;) {
        struct wal_record r;
        size_t size;
        const char *why = NULL;
        if (wal_record_decode(buf + p, len - p, &r, &size, &why) != WAL_REC_OK) {
            seg_classify_tail(buf, len, p, expect, why, out);
            return;
        }
        if ((expect != 0 && r.index != expect) || r.term < last_term) {
            out->outcome = WAL_SEG_CORRUPT;
            out->bad_offset = p;
            out->end_offset = p;
            out->why = r.term < last_term ? "record term lower than the previous record's"
                                          : "record index out of sequence";
            return;
        }
        seg_push(out, &cap, &r);
        expect = r.index + 1;
        last_term = r.term;
        p += size;
    }
}

void wal_seg_parse_free(struct wal_seg_parse *p)
{
    hy_free(p->records);
    p->records = NULL;
    p->n_records = 0;
}

/* ---- metadata
 * -------------------------------------------------------------------------------
 */

void wal_meta_encode(const struct wal_meta *m, uint8_t out[WAL_META_SIZE])
{
    HY_ASSERT(m->sequence >= 1);
    memset(out, 0, WAL_META_SIZE);
    memcpy(out + META_MAGIC, meta_magic, sizeof(meta_magic));
    hy_store_u32le(out + META_VERSION, WAL_FORMAT_VERSION);
    hy_store_u64le(out + META_SEQ, m->sequence);
    hy_store_u64le(out + META_TERM, m->term);
    hy_store_u64le(out + META_VOTE, m->vote);
    hy_store_u32le(out + META_CRC, hy_crc32c(0, out, META_CRC));
}

int wal_meta_decode(const uint8_t *buf, size_t len, struct wal_meta *m_out, const char **why_out)
{
    if (len != WAL_META_SIZE) {
        *why_out = "metadata file is not 48 bytes";
        return HY_ECORRUPT;
    }
    if (hy_load_u32le(buf + META_CRC) != hy_crc32c(0, buf, META_CRC)) {
        *why_out = "metadata checksum mismatch";
        return HY_ECORRUPT;
    }
    if (memcmp(buf + META_MAGIC, meta_magic, sizeof(meta_magic)) != 0 ||
        hy_load_u32le(buf + META_VERSION) != WAL_FORMAT_VERSION) {
        *why_out = "not a version 1 metadata file (magic or version)";
        return HY_ECORRUPT;
    }
    if (hy_load_u32le(buf + META_RESERVED) != 0 || hy_load_u32le(buf + META_RESERVED2) != 0) {
        *why_out = "metadata reserved fields are not 0";
        return HY_ECORRUPT;
    }
    m_out->sequence = hy_load_u64le(buf + META_SEQ);
    m_out->term = hy_load_u64le(buf + META_TERM);
    m_out->vote = hy_load_u64le(buf + META_VOTE);
    if (m_out->sequence == 0) {
        *why_out = "metadata sequence 0";
        return HY_ECORRUPT;
    }
    return HY_OK;
}

/* ---- snapshots
 * ------------------------------------------------------------------------------
 */

void wal_snapshot_header_encode(const struct wal_snapshot *s, uint8_t out[WAL_SNAP_HEADER_SIZE])
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
    hy_store_u32le(out + SNAP_DCRC, hy_crc32c(0, s->data, (size_t)s->data_len));
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
