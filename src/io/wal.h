/*
 * wal.h - the durable Raft log of a node, shared by all of its Raft groups: one
 * stream of segments whose records are tagged with their group (entries,
 * term/vote, truncations), and one snapshot file per group, in one directory
 * (format and recovery rules: docs/disk-format.md, "Raft log and snapshots on
 * disk"). Like TiKV's raft-engine: every group's writes of a loop turn go out
 * as ONE write and ONE fdatasync (wal_batch_*).
 *
 * It runs on a struct disk (disk.h): real files in the server, the simulated
 * disk in the simulator and tests. It is single-threaded: one caller at a time
 * (the server's WAL thread or its loop, wal_thread.h, or the simulator's loop),
 * but for wal_sync_fd (below). Every call
 * that returns HY_OK has made its effect durable (fdatasync'd, and the
 * directory fsync'd where names changed), except wal_batch_write (below).
 *
 * Invariants kept on disk at every instant, for every group, so that a crash at
 * any point recovers:
 *  - the group's log (its records replayed in stream order, a later append or
 * truncation superseding the indices at and after it) is one contiguous run of
 * indices with non-decreasing terms, starting at or before snapshot index + 1
 * (entries at or below it are the trailing log);
 *  - synced records are never rewritten; a segment is removed only when every
 * group's records in it are obsolete (oldest segment first), and the next
 * segment starts with every group's term/vote.
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
    uint64_t segments_soft_max;  /* over this many closed segments, retention no longer pins
                                    one and the groups whose entries do are asked for a
                                    snapshot (wal_snapshot_wanted); 0 = no limit */
    const struct hy_log *log;    /* borrowed, outlives the wal; may be NULL */
    int must_exist; /* refuse a group without a term/vote record instead of starting a new
                       log for it (the server knows it was formed: io/identity.h) */
};

/* 8 MiB segments, a snapshot every 10000 entries, 1000 retained, no hard limit, retention
 * pins at most 16 closed segments. */
void wal_config_default(struct wal_config *cfg);

/* What wal_open found on disk for one group. Every pointer is owned by the struct: release
 * it with wal_recovered_free (it may outlive the wal). */
struct wal_recovered {
    uint32_t group;
    uint64_t term;
    uint64_t vote;
    struct wal_snapshot snapshot; /* index 0 = no snapshot */
    uint64_t first_index;         /* index of entries[0]; may be <= snapshot.index
                                     (trailing) */
    struct wal_entry *entries;
    size_t n_entries;
    int created;   /* the log held nothing of this group: this open made it (term 0, no vote) */
    int forgotten; /* wal_group_forget's marker is there: its log was dropped on purpose */
    void *priv;    /* the buffers the pointers above point into */
};

void wal_recovered_free(struct wal_recovered *rec);

struct wal;

/*
 * Opens (creating when empty) the log on `disk` for the n_groups Raft groups `groups` (ids,
 * distinct), applying the recovery rules; recs_out (n_groups of them) receives each group's
 * state, in the order of `groups`. `disk`, `cfg` and `groups` are borrowed; disk must outlive
 * the wal. On HY_OK *wal_out and recs_out are filled. On failure nothing is returned and err
 * (err_len bytes, may be 0) holds a one-line explanation: HY_ECORRUPT (refuse to start: names
 * file, offset, problem, and `halyard --repair DIR`; also a record of a group not in `groups`),
 * HY_EIO, HY_ENOSPC.
 */
int wal_open(struct disk *disk, const struct wal_config *cfg, const uint32_t *groups,
             size_t n_groups, struct wal **wal_out, struct wal_recovered *recs_out, char *err,
             size_t err_len) HY_MUST_CHECK;

/* Closes the files; frees the wal. Does not sync: every successful call already
 * did. */
void wal_close(struct wal *w);

/*
 * Group commit over groups: wal_batch_term_vote / wal_batch_append / wal_batch_truncate stage
 * records (any groups, any order; each group's preconditions are checked against what is
 * staged before it), and wal_batch_commit writes them all with ONE write and ONE fdatasync.
 * Nothing staged changes the wal's state until the commit returns HY_OK; on any other result
 * the staged records are dropped (stage them again to retry). Returns HY_OK (durable),
 * HY_ENOSPC (nothing written; retry later), HY_EIO (fatal: abort). A commit with nothing
 * staged does nothing.
 *
 * wal_batch_append: n (>= 1) entries (borrowed until the commit) at indices first_index..;
 * when first_index <= the group's last index, entries >= first_index are replaced (Raft's
 * conflicting suffix). Precondition: snapshot index < first_index <= last index + 1.
 * wal_batch_truncate: deletes every entry with index >= index (> snapshot index).
 */
void wal_batch_term_vote(struct wal *w, uint32_t group, uint64_t term, uint64_t vote);
void wal_batch_append(struct wal *w, uint32_t group, uint64_t first_index,
                      const struct wal_entry *entries, size_t n);
void wal_batch_truncate(struct wal *w, uint32_t group, uint64_t index);
int wal_batch_commit(struct wal *w) HY_MUST_CHECK;

/*
 * `durability: replicated` (docs/operations.md "Data directory and durability"): the commit's
 * write without its fdatasync, so the records are in the page cache (a crash of the process
 * loses none of them) but not on the disk (a power cut may lose any of them, and may leave a
 * later one on disk behind an earlier one lost, which recovery then calls damaged). The wal's
 * state moves on as after wal_batch_commit. Same results; a segment roll still syncs (the
 * collection of old segments that follows must not outrun the records that obsolete them).
 * wal_sync fdatasyncs what was written so (HY_OK at once when nothing is unsynced, HY_EIO is
 * fatal as for a commit); wal_unsynced says whether anything is. Every other call that
 * returns HY_OK is durable as before, and wal_snapshot_put syncs the log before it.
 */
int wal_batch_write(struct wal *w) HY_MUST_CHECK;
int wal_sync(struct wal *w) HY_MUST_CHECK;
int wal_unsynced(const struct wal *w);

/*
 * wal_sync in two halves, for a caller that lets one thread write (wal_batch_write) while
 * another fdatasyncs, on a disk that allows it (disk.sync_concurrent; io/wal_thread.h):
 * wal_sync_begin, called with the wal to itself, counts everything written so far as synced
 * and gives the descriptor to fdatasync in *fd_out (-1: nothing unsynced; HY_EIO when the wal
 * failed); wal_sync_fd then fdatasyncs that descriptor and reads nothing else of the wal, so the
 * other thread may write meanwhile, but nothing that can close the segment may run until it returns
 * (a commit that needs a new segment, a snapshot, a forget, wal_close). Its HY_EIO is fatal
 * and not recorded in the wal: the caller aborts the process.
 */
int wal_sync_begin(struct wal *w, int *fd_out) HY_MUST_CHECK;
int wal_sync_fd(struct wal *w, int fd) HY_MUST_CHECK;
/* 1 when the wal's disk allows the two halves above to run beside a write (disk.h). */
int wal_sync_concurrent(const struct wal *w);

/* 1 when records of `len` bytes (wal_record_size of each) committed now would go into the open
 * segment, with no new segment made first (whose creation and the old one's closing fsync). */
int wal_fits_open_segment(const struct wal *w, uint64_t len);

/* One-group shorthands: stage one thing and commit. */
int wal_append(struct wal *w, uint32_t group, uint64_t first_index, const struct wal_entry *entries,
               size_t n) HY_MUST_CHECK;
int wal_truncate(struct wal *w, uint32_t group, uint64_t index) HY_MUST_CHECK;
int wal_set_term_vote(struct wal *w, uint32_t group, uint64_t term, uint64_t vote) HY_MUST_CHECK;

/*
 * Stores group's snapshot s (borrowed; s->index >= 1) durably (temp file, fdatasync, rename,
 * directory fsync), then deletes the group's older snapshot. discard_log (a snapshot received
 * from the leader) voids the group's whole log with a truncation record; a snapshot past the
 * log's end always does. Then removes the segments no group needs any more. Nothing may be
 * staged. HY_OK, HY_ENOSPC (nothing changed), HY_EIO (fatal).
 */
int wal_snapshot_put(struct wal *w, uint32_t group, const struct wal_snapshot *s,
                     int discard_log) HY_MUST_CHECK;

/*
 * wal_snapshot_put in two halves, so that the file's fsyncs need not hold up the group commit
 * of every other group (io/snap_writer.h): wal_snapshot_file_write stores s as group's snapshot
 * file on d (temp file, fdatasync, rename, directory fsync) and touches no wal: it may run on
 * another thread, with a struct disk of its own on the same directory, while the wal's thread
 * goes on. HY_OK (durable), HY_ENOSPC (the temp file is removed), HY_EIO. Then
 * wal_snapshot_install, on the wal's thread, makes that durable file the group's snapshot as
 * wal_snapshot_put would have after writing it (the old snapshot file goes, the log is voided
 * when asked or when the snapshot is past its end, unneeded segments are removed). Until the
 * install the wal knows nothing of the file; a crash in between recovers from it (recovery
 * takes each group's newest snapshot file), which is safe because it holds applied, hence
 * committed, state and no log is cut before it is durable.
 */
int wal_snapshot_file_write(struct disk *d, uint32_t group,
                            const struct wal_snapshot *s) HY_MUST_CHECK;
int wal_snapshot_install(struct wal *w, uint32_t group, const struct wal_snapshot *s,
                         int discard_log) HY_MUST_CHECK;

/*
 * A snapshot received from the leader whose file io/snap_recv.c wrote whole under the name
 * snapshot-G-INDEX.recv.tmp (its data never held in memory at once): fdatasync'd, renamed to
 * snapshot-G-INDEX, the directory fsync'd, then installed as wal_snapshot_install with
 * discard_log. A crash before the rename leaves a .tmp that recovery removes (the group as
 * before); after it, recovery takes the new file. s describes it (s->data is not read). HY_OK
 * or HY_EIO (fatal).
 */
int wal_snapshot_install_received(struct wal *w, uint32_t group,
                                  const struct wal_snapshot *s) HY_MUST_CHECK;

/*
 * Drops everything group holds but its term/vote: its log (a truncation record at 1, committed
 * first) and then its snapshot file (removed, directory fsync'd); segments no group needs any
 * more are collected. The group is then as a new one that voted (a parked copy's files, no
 * longer needed: node.h NODE_SNAP_FORGET), and a marker file (forgotten-G, kept) makes every
 * later open report it as forgotten (wal_recovered.forgotten). Nothing may be staged. HY_OK,
 * HY_ENOSPC (nothing changed), HY_EIO (fatal).
 */
int wal_group_forget(struct wal *w, uint32_t group) HY_MUST_CHECK;

/* 1 when the configuration asks for a snapshot of the group now (interval reached, log too
 * long, or its entries pin the oldest segment while there are too many). */
int wal_snapshot_wanted(const struct wal *w, uint32_t group);

/* The groups whose unsnapshotted entries keep the oldest segment while there are more than
 * segments_soft_max closed segments (what the node should snapshot so that the log can be
 * collected): up to cap ids into out; returns how many. */
size_t wal_pinning_groups(const struct wal *w, uint32_t *out, size_t cap);

/* The group's durable term and vote: what its last committed term/vote record says. */
void wal_term_vote(const struct wal *w, uint32_t group, uint64_t *term, uint64_t *vote);
uint64_t wal_last_index(const struct wal *w, uint32_t group); /* snapshot index when empty */
uint64_t wal_last_term(const struct wal *w, uint32_t group);
uint64_t wal_first_index(const struct wal *w, uint32_t group); /* 0 when the log is empty */
uint64_t wal_snapshot_index(const struct wal *w, uint32_t group);
/* Number of segment files (closed + open) on disk. */
size_t wal_segment_count(const struct wal *w);

/*
 * `halyard --repair DIR`: cuts the log after the last good record of the first
 * damaged segment (torn or corrupt, wherever it is) and deletes every later
 * segment; then the directory opens, unless what the surviving records say
 * about a group is inconsistent (reported). It never touches snapshots, whose
 * damage it only reports. Runs only when asked. Writes a human-readable
 * account into report. Returns HY_OK when the log is now readable (repaired or
 * nothing to do), HY_ECORRUPT when a snapshot is damaged (left alone) or
 * the log still does not open, HY_EIO.
 */
int wal_repair(struct disk *disk, const struct wal_config *cfg, char *report,
               size_t report_len) HY_MUST_CHECK;

#endif
