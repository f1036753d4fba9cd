/*
 * wal_int.h - the wal's private state, shared by wal.c (writing) and
 * wal_recover.c (open, recovery, repair). Not for other modules.
 */
#ifndef HY_WAL_INT_H
#define HY_WAL_INT_H

#include "common/buf.h"
#include "io/wal.h"

#define WAL_NAME_MAX 64

/* A closed segment FIRST-LAST. */
struct wal_seg {
    uint64_t first;
    uint64_t last;
    uint64_t last_term;
    char name[WAL_NAME_MAX];
};

/* Where each record of the open segment starts, and its term (truncation needs
 * both). */
struct wal_slot {
    uint64_t offset;
    uint64_t term;
};

struct wal {
    struct disk *disk;
    struct wal_config cfg;
    struct wal_seg *closed; /* ascending, contiguous */
    size_t n_closed;
    size_t cap_closed;
    /* The open segment; fd < 0 when there is none yet. */
    int fd;
    char open_name[WAL_NAME_MAX];
    uint64_t open_counter; /* N of the newest open-N ever seen or made */
    uint64_t open_size;    /* preallocated bytes */
    uint64_t open_used;    /* end of the last record */
    uint64_t open_first;   /* 0 when it holds no record */
    struct wal_slot *slots;
    size_t n_slots;
    size_t cap_slots;
    /* The log as a whole. */
    uint64_t last_index;
    uint64_t last_term;
    uint64_t snap_index;
    uint64_t snap_term;
    struct wal_meta meta; /* sequence 0 = never written */
    int meta_slot;        /* file holding meta: 0 = metadata1, 1 = metadata2, -1 = none */
    struct hy_buf batch;  /* encoding buffer, reused */
    int failed;           /* sticky after HY_EIO: the caller must abort */
};

void wal__name_closed(char out[WAL_NAME_MAX], uint64_t first, uint64_t last);
void wal__name_open(char out[WAL_NAME_MAX], uint64_t counter);
void wal__name_snapshot(char out[WAL_NAME_MAX], uint64_t index, int tmp);
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
void wal__push_closed(struct wal *w, const struct wal_seg *seg);
uint64_t wal__first_index(const struct wal *w);

#endif
