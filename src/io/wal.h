/*
 * wal.h - the durable Raft log of one group: segments, term/vote metadata and
 * snapshots in one directory (format and recovery rules: docs/disk-format.md,
 * "Raft log and snapshots on disk").
 *
 * It runs on a struct disk (disk.h): real files in the server, the simulated
 * disk in the simulator and tests. It is single-threaded: one caller at a time
 * (the server's WAL thread, wal_thread.h, or the simulator's loop). Every call
 * that returns HY_OK has made its effect durable (fdatasync'd, and the
 * directory fsync'd where names changed).
 *
 * Invariants kept on disk at every instant, so that a crash at any point
 * recovers:
 *  - the log is one contiguous run of indices with non-decreasing terms,
 * starting at or before snapshot index + 1 (entries at or below it are the
 * trailing log);
 *  - synced records are never rewritten; truncation and compaction remove from
 * the end and from the beginning respectively, one durable step at a time.
 *
 * Errors: HY_ENOSPC leaves everything as it was (the caller turns read-only and
 * retries later); HY_EIO means a write or an fdatasync failed. After HY_EIO the
 * wal refuses every further call and the CALLER MUST ABORT THE PROCESS: after a
 * failed fsync the kernel may have dropped the dirty pages, so retrying could
 * report durable data that is lost. HY_ECORRUPT from wal_open means the
 * directory is damaged beyond a torn tail; the error text names the file, the
 * offset and the problem, and points at wal_repair (`halyard --repair DIR`).
 */
#ifndef HY_WAL_H
#define HY_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "common/status.h"
#include "io/disk.h"
#include "io/wal_codec.h"

struct wal_config {
    uint64_t segment_size_bytes; /* preallocated size of a segment (a larger batch
                                    gets a larger one) */
    uint64_t snapshot_interval;  /* wal_snapshot_wanted after this many entries; 0
                                    = never */
    uint64_t max_log_entries;    /* ... or when the log holds more; 0 = no limit */
    uint64_t retention_logs;     /* entries kept behind a snapshot for lagging followers */
    const struct hy_log *log;    /* borrowed, outlives the wal; may be NULL */
    int must_exist; /* refuse a directory without a term/vote file instead of starting a
                       new log there (the server knows it was formed: io/identity.h) */
};

/* 8 MiB segments, a snapshot every 10000 entries, 1000 retained, no hard limit.
 */
void wal_config_default(struct wal_config *cfg);

/* What wal_open found on disk. Every pointer is owned by the struct: release it
 * with wal_recovered_free (it may outlive the wal). */
struct wal_recovered {
    uint64_t term;
    uint64_t vote;
    struct wal_snapshot snapshot; /* index 0 = no snapshot */
    uint64_t first_index;         /* index of entries[0]; may be <= snapshot.index
                                     (trailing) */
    struct wal_entry *entries;
    size_t n_entries;
    int created; /* the directory held no log: this open made it (term 0, no vote) */
    void *priv;  /* the buffers the pointers above point into */
};

void wal_recovered_free(struct wal_recovered *rec);

struct wal;

/*
 * Opens (creating when empty) the log on `disk`, applying the recovery rules.
 * `disk` and `cfg` are borrowed; disk must outlive the wal. On HY_OK *wal_out
 * and *rec_out are filled. On failure nothing is returned and err (err_len
 * bytes, may be 0) holds a one-line explanation: HY_ECORRUPT (refuse to start:
 * names file, offset, problem, and `halyard --repair DIR`), HY_EIO, HY_ENOSPC.
 */
int wal_open(struct disk *disk, const struct wal_config *cfg, struct wal **wal_out,
             struct wal_recovered *rec_out, char *err, size_t err_len) HY_MUST_CHECK;

/* Closes the files; frees the wal. Does not sync: every successful call already
 * did. */
void wal_close(struct wal *w);

/*
 * Appends n entries (borrowed) at indices first_index.. as ONE write and ONE
 * fdatasync (group commit: pass everything proposed in one loop turn). When
 * first_index <= wal_last_index, entries >= first_index are deleted first
 * (Raft's conflicting suffix). Precondition: snapshot index < first_index <=
 * last index + 1, n >= 1. Returns HY_OK (durable), HY_ENOSPC (nothing appended, though a
 * requested truncation may already be done; retry the same call later), HY_EIO (fatal: abort).
 */
int wal_append(struct wal *w, uint64_t first_index, const struct wal_entry *entries,
               size_t n) HY_MUST_CHECK;

/* Deletes every entry with index >= index (> snapshot index). HY_OK, HY_EIO
 * (fatal). */
int wal_truncate(struct wal *w, uint64_t index) HY_MUST_CHECK;

/* Durably records term and vote (0 = none). HY_OK, HY_ENOSPC, HY_EIO (fatal).
 */
int wal_set_term_vote(struct wal *w, uint64_t term, uint64_t vote) HY_MUST_CHECK;

/*
 * Stores snapshot s (borrowed; s->index >= 1) durably (temp file, fdatasync,
 * rename, directory fsync), then deletes older snapshots and log segments as
 * configured. discard_log (a snapshot received from the leader) deletes the
 * whole log; a snapshot past the log's end always does. HY_OK, HY_ENOSPC
 * (nothing changed), HY_EIO (fatal).
 */
int wal_snapshot_put(struct wal *w, const struct wal_snapshot *s, int discard_log) HY_MUST_CHECK;

/* 1 when the configuration asks for a snapshot now (interval reached or log too
 * long). */
int wal_snapshot_wanted(const struct wal *w);

uint64_t wal_last_index(const struct wal *w); /* snapshot index when the log is empty */
uint64_t wal_last_term(const struct wal *w);
uint64_t wal_first_index(const struct wal *w); /* 0 when the log is empty */
uint64_t wal_snapshot_index(const struct wal *w);
/* Number of segment files (closed + open) on disk. */
size_t wal_segment_count(const struct wal *w);

/*
 * `halyard --repair DIR`: cuts the log after the last good record of the first
 * damaged segment (torn or corrupt, wherever it is) and deletes every later
 * segment; then the directory opens. It never touches metadata or snapshots,
 * whose damage it only reports. Runs only when asked. Writes a human-readable
 * account into report. Returns HY_OK when the log is now readable (repaired or
 * nothing to do), HY_ECORRUPT when metadata or a snapshot is damaged (left
 * alone), HY_EIO.
 */
int wal_repair(struct disk *disk, const struct wal_config *cfg, char *report,
               size_t report_len) HY_MUST_CHECK;

#endif
