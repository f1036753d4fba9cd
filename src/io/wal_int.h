/*
 * wal_int.h - the wal's private state, shared by wal.c (writing) and
 * wal_recover.c (open, recovery, repair). Not for other modules.
 */
#ifndef HY_WAL_INT_H
#define HY_WAL_INT_H

#include "common/buf.h"
#include "io/wal.h"

#define WAL_NAME_MAX 64

/* A segment: its counter and, per group slot, the lowest and highest entry index it holds
 * (0 = none), which is what garbage collection asks. */
struct wal_seg {
    uint64_t counter;
    uint64_t last_seq;   /* sequence of its last write */
    uint64_t *min_index; /* n_groups each */
    uint64_t *max_index;
    char name[WAL_NAME_MAX];
};

/* From `index` on (up to the next run), entries have `term`: a group's terms, run-length
 * encoded, so that a truncation knows the new last term without reading the disk. */
struct wal_run {
    uint64_t index;
    uint64_t term;
};

struct wal_group {
    uint32_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t first_index; /* 0 = no entry on disk (only a snapshot, or nothing) */
    uint64_t last_index;  /* snapshot index when the log is empty */
    uint64_t last_term;
    uint64_t snap_index;
    uint64_t snap_term;
    struct wal_run *runs;
    size_t n_runs;
    size_t cap_runs;
    /* Staging (wal_batch_*): the last index and term after what is staged. */
    uint64_t st_last_index;
    uint64_t st_last_term;
};

/* What a staged record does to the in-memory state once committed. */
struct wal_stage_op {
    uint32_t slot;
    uint32_t kind;      /* enum wal_record_kind */
    uint64_t a;         /* first index / term / truncation index */
    uint64_t b;         /* entries / vote */
    uint64_t term;      /* ENTRY: term of the first entry ... */
    uint64_t last_term; /* ... and of the last */
};

struct wal {
    struct disk *disk;
    struct wal_config cfg;
    struct wal_group *groups; /* ascending by id */
    size_t n_groups;
    struct wal_seg *closed; /* ascending by counter */
    size_t n_closed;
    size_t cap_closed;
    /* The open segment; fd < 0 when there is none yet. Its seg.last_seq is 0 while it holds
     * no record (then its head, every group's term/vote, goes before the next write). */
    int fd;
    struct wal_seg open;
    uint64_t open_counter; /* N of the newest segment ever seen or made */
    uint64_t open_size;    /* preallocated bytes */
    uint64_t open_used;    /* end of the last record */
    int roll_needed;       /* a failed write left bytes after open_used: next write rolls */
    uint64_t seq;          /* sequence of the last durable write */
    struct hy_buf batch;   /* staged records, encoded */
    struct wal_stage_op *ops;
    size_t n_ops;
    size_t cap_ops;
    int failed;   /* sticky after HY_EIO: the caller must abort */
    int unsynced; /* the open segment holds records written without fdatasync (wal_sync) */
};

void wal__name_closed(char out[WAL_NAME_MAX], uint64_t counter);
void wal__name_open(char out[WAL_NAME_MAX], uint64_t counter);
void wal__name_snapshot(char out[WAL_NAME_MAX], uint32_t group, uint64_t index, int tmp);
/* snapshot-G-INDEX.recv.tmp: a snapshot being received (io/snap_recv.h); a .tmp name, so that
 * recovery removes one a crash left (rule 1). */
void wal__name_snapshot_recv(char out[WAL_NAME_MAX], uint32_t group, uint64_t index);
/* Reads a whole file into a new buffer (hy_free). HY_OK, HY_ENOTFOUND, HY_EIO.
 */
int wal__read_file(struct disk *d, const char *name, uint8_t **buf_out, size_t *len_out);
/* fdatasync; any failure is HY_EIO (fatal, never retried). */
int wal__sync(struct disk *d, int fd);
int wal__sync_dir(struct disk *d);
/* Cuts a file to `keep` bytes, optionally zero-fills it back to `size`, and
 * syncs it. */
int wal__cut_file(struct disk *d, int fd, uint64_t keep, uint64_t size);
int wal__remove_synced(struct disk *d, const char *name);
/* The slot of group id, or -1. */
int wal__slot(const struct wal *w, uint32_t group);
/* Per-slot index ranges of a new segment (zeroed). */
void wal__seg_alloc(struct wal *w, struct wal_seg *seg);
void wal__seg_free(struct wal_seg *seg);
/* Records that segment seg holds entries first..last of slot. */
void wal__seg_note(struct wal_seg *seg, size_t slot, uint64_t first, uint64_t last);
void wal__push_closed(struct wal *w, const struct wal_seg *seg);
/* Adds entries from..(from + n - 1) with `term` to the group's runs (the caller cut first). */
void wal__runs_push(struct wal_group *g, uint64_t from, uint64_t term);
/* Drops runs at and after index; returns the term of index - 1 (snap_term at or below the
 * snapshot, 0 when unknown). */
uint64_t wal__runs_cut(struct wal_group *g, uint64_t index);
/* Stages a truncation record of slot at index (1: the whole log, below the snapshot too). */
void wal__stage_truncate(struct wal *w, size_t slot, uint64_t index);
/* Removes the closed segments nobody needs, oldest first. HY_OK or HY_EIO. */
int wal__gc(struct wal *w);

#endif
