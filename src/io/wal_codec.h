/*
 * wal_codec.h - the byte layouts of the node's shared log (docs/disk-format.md, "Raft
 * log and snapshots on disk"): segment header, record (entries, term/vote, truncation,
 * each tagged with its Raft group), snapshot.
 *
 * Pure functions over memory: no disk, no allocation except the record array of
 * a segment parse. They are the only code that reads untrusted bytes from the
 * data directory, so they are what the fuzz targets drive
 * (tests/fuzz/fuzz_wal_*.c). Every decoder checks lengths before it reads and a
 * CRC32C before it trusts a field.
 */
#ifndef HY_WAL_CODEC_H
#define HY_WAL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define WAL_SEG_HEADER_SIZE  16
#define WAL_REC_HEADER_SIZE  40
#define WAL_SNAP_HEADER_SIZE 56
#define WAL_RECORD_LEN_MAX   (64u << 20)
#define WAL_MEMBERSHIP_MAX   (64u << 10)
#define WAL_FORMAT_VERSION   1 /* snapshot files */
#define WAL_SEGMENT_VERSION  2 /* segments of the shared log (1: one log per group) */
/* Indices at or above this are corrupt: it keeps index + count arithmetic far from overflow. */
#define WAL_INDEX_LIMIT      (1ull << 62)

/* One log entry as the caller hands it in (the shape of struct raft_entry).
 * `data` borrowed. */
struct wal_entry {
    uint64_t term;
    uint32_t type; /* enum raft_entry_type, never 0 */
    uint32_t len;
    const uint8_t *data;
};

enum wal_record_kind {
    WAL_KIND_ENTRY = 1,     /* a log entry: index, term, type, data */
    WAL_KIND_TERM_VOTE = 2, /* the group's term (index field) and vote (term field) */
    WAL_KIND_TRUNCATE = 3,  /* the group's entries >= index written before are void */
};

/* A record. Decoded, `data` points into the buffer it was decoded from; to encode, it is
 * borrowed. For TERM_VOTE, `index` holds the term and `term` the vote. */
struct wal_record {
    uint64_t seq;   /* the write it was part of: +1 per write over the whole stream */
    uint32_t group; /* Raft group id */
    uint32_t kind;  /* enum wal_record_kind */
    uint64_t index;
    uint64_t term;
    uint32_t type; /* ENTRY: enum raft_entry_type (never 0); else 0 */
    uint32_t len;  /* ENTRY: payload bytes; else 0 */
    const uint8_t *data;
};

/* A snapshot: position, encoded configuration and state-machine bytes (all
 * borrowed). */
struct wal_snapshot {
    uint64_t index;
    uint64_t term;
    const uint8_t *membership;
    uint32_t membership_len;
    const uint8_t *data;
    uint64_t data_len;
};

/* ---- records and segments
 * ------------------------------------------------------------------ */

/* Bytes a record with a `len`-byte payload takes on disk (header + payload +
 * padding to 8). */
size_t wal_record_size(uint32_t len);
/* Encodes one record into out (wal_record_size(r->len) bytes); r must pass
 * wal_record_fields_ok. */
void wal_record_encode(uint8_t *out, const struct wal_record *r);
/* 1 when the fields are in range for the kind (what the decoder accepts). */
int wal_record_fields_ok(const struct wal_record *r);

enum wal_rec_result {
    WAL_REC_OK,    /* a good record */
    WAL_REC_ZERO,  /* 40 zero bytes, or fewer zero bytes up to the end: no record
                      here */
    WAL_REC_SHORT, /* a record header whose length runs past the end */
    WAL_REC_BAD,   /* a checksum mismatch or impossible fields */
};
/* Decodes the record at buf (avail bytes to the end of the file). On WAL_REC_OK
 * fills *rec_out and *size_out (bytes taken); otherwise *why_out says what is
 * wrong. */
enum wal_rec_result wal_record_decode(const uint8_t *buf, size_t avail, struct wal_record *rec_out,
                                      size_t *size_out, const char **why_out);

void wal_segment_header_encode(uint8_t out[WAL_SEG_HEADER_SIZE]);

enum wal_seg_outcome {
    WAL_SEG_CLEAN,   /* records, then zeros or the end of the file */
    WAL_SEG_EMPTY,   /* no valid header and nothing but zeros: a segment whose
                        creation a crash interrupted */
    WAL_SEG_TORN,    /* records, then the torn tail of the last write (recovery rule
                        5) */
    WAL_SEG_CORRUPT, /* damage that a crash cannot explain */
};

struct wal_seg_parse {
    enum wal_seg_outcome outcome;
    struct wal_record *records; /* owned (hy_free via wal_seg_parse_free); data in the buffer */
    size_t n_records;
    uint64_t end_offset; /* just after the last good record (the header size if
                            none) */
    uint64_t bad_offset; /* TORN/CORRUPT: where the damage starts */
    const char *why;     /* TORN/CORRUPT: what is wrong (static string) */
};

/*
 * Parses a whole segment file held in buf. expect_seq is the write sequence the
 * first record must have, or 0 when unknown. Sequences go up by 0 (same write)
 * or 1 (next write) from record to record; a good record that breaks this is
 * corruption. What the records say about each group is checked by recovery.
 * Always fills *out (free with wal_seg_parse_free).
 */
void wal_segment_parse(const uint8_t *buf, size_t len, uint64_t expect_seq,
                       struct wal_seg_parse *out);
void wal_seg_parse_free(struct wal_seg_parse *p);

/* ---- snapshots
 * ------------------------------------------------------------------------------
 */

/* Encodes the header of the snapshot file for s (its CRCs cover s->membership
 * and s->data). */
void wal_snapshot_header_encode(const struct wal_snapshot *s, uint8_t out[WAL_SNAP_HEADER_SIZE]);
/* The same with the data's CRC32C given (s->data is not read): the header of a file whose
 * data was written piece by piece (io/snap_recv.h). */
void wal_snapshot_header_encode_crc(const struct wal_snapshot *s, uint32_t data_crc,
                                    uint8_t out[WAL_SNAP_HEADER_SIZE]);
/* Where a snapshot file's data lies, from its header alone (snap_stream.c reads the data
 * piecewise from there). */
struct wal_snapshot_head {
    uint64_t index;
    uint64_t data_offset; /* in the file */
    uint64_t data_len;
    uint32_t data_crc; /* CRC32C of the data, which the reader checks as it goes */
};

/* Checks a snapshot file's header against the file's size; on HY_OK fills *out. HY_ECORRUPT
 * with *why_out. */
int wal_snapshot_head_check(const uint8_t header[WAL_SNAP_HEADER_SIZE], uint64_t file_len,
                            struct wal_snapshot_head *out, const char **why_out) HY_MUST_CHECK;
/* Checks a whole snapshot file; on HY_OK *s_out points into buf. HY_ECORRUPT
 * with *why_out. */
int wal_snapshot_decode(const uint8_t *buf, size_t len, struct wal_snapshot *s_out,
                        const char **why_out) HY_MUST_CHECK;

#endif
