/*
 * snap_recv.h - snapshots a follower receives, written to the log's directory as they arrive.
 *
 * With raft_config.snapshot_recv_external the Raft core keeps one chunk of a snapshot being
 * received, not the snapshot (as large as the partition): each update that accepted a chunk
 * hands it over, and the receiver appends it to a file of its own in the log's directory,
 * `snapshot-G-INDEX.recv.tmp` (docs/disk-format.md "Received snapshot"), laid out as the
 * group's snapshot file will be: the header is written last, once the whole data arrived and
 * its checksum is known. That file is then renamed into `snapshot-G-INDEX` by the WAL thread
 * (wal_snapshot_install_received), after an fdatasync, and adopted as a snapshot the node took
 * would be. The install reads the data back from the file (snap_recv_load).
 *
 * Why each crash is safe: a crash while chunks arrive, or after the last one but before the
 * WAL thread's fdatasync and rename, leaves a `.tmp` name, which recovery deletes at start-up
 * (rule 1) without looking at it: the group's log and older snapshot were not touched, and the
 * transfer starts again from its leader. A crash after the rename recovers from the new file,
 * which is whole (fdatasync'd before its name appeared) and holds committed state; the log is
 * voided only after that (wal_snapshot_install's truncation record).
 *
 * Pure over struct disk (no libuv), one thread: the loop's, through the mesh's disk.
 */
#ifndef HY_SNAP_RECV_H
#define HY_SNAP_RECV_H

#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "io/disk.h"
#include "raft/raft.h"

struct snap_recv;

/* A receiver writing into d (borrowed; outlives it); log may be NULL. */
struct snap_recv *snap_recv_new(struct disk *d, const struct hy_log *log);
/* Closes the files still being received (they stay: start-up removes them). */
void snap_recv_free(struct snap_recv *s);

/*
 * Stores the chunk of up (up->chunk set) for group. A chunk at offset 0 starts the snapshot's
 * file again (and removes the file of any other snapshot the group was receiving); the others
 * are appended in order. With up->snapshot_install (the chunk completes the snapshot) the
 * header goes in too and the file is closed: whole, not yet durable, for the WAL thread.
 * HY_OK, or HY_ENOSPC / HY_EIO / HY_ECORRUPT (a chunk not following the file: the transfer is
 * dropped and its file removed; the caller calls raft_snapshot_recv_reset so that the leader
 * sends it again from 0).
 */
int snap_recv_chunk(struct snap_recv *s, uint32_t group, const struct raft_update *up);

/* Before the Raft core sees m, a SNAPSHOT chunk at offset 0: the file of m's snapshot is
 * created with its whole size allocated (header, configuration, m->total bytes of data), so
 * that a full disk refuses the transfer here, where the message can be dropped (the leader
 * sends it again), and not at its last chunk, which the core installs with it. Nothing is done
 * for a snapshot already reserved or under way. HY_OK, HY_ENOSPC, HY_EIO (logged once per
 * snapshot). */
int snap_recv_reserve(struct snap_recv *s, uint32_t group, const struct raft_message *m);

/* Appends the data of group's received snapshot at index (whole, its file completed by
 * snap_recv_chunk and not yet renamed) to out, checked against the file's header and data
 * checksum. HY_OK, HY_ENOTFOUND, HY_ECORRUPT, HY_EIO. */
int snap_recv_load(struct disk *d, uint32_t group, uint64_t index, struct hy_buf *out);

/* Transfers being received now, and bytes written since start (tests, INFO). */
size_t snap_recv_open_count(const struct snap_recv *s);
uint64_t snap_recv_bytes(const struct snap_recv *s);

#endif
