/*
 * durable.h - the node's storage: recovers the Raft group from its data directory at start
 * and carries out the engine's io batches (node.h) through the WAL thread, strictly in
 * order, so that nothing is acknowledged before it is fsync'd (docs/architecture.md "The path of a
 * write", "Raft, membership and storage").
 *
 * Layout: <data-dir>/wal holds the node's one log, shared by all of its Raft groups (their
 * entries, terms and votes in one stream of segments) and each group's snapshot
 * (docs/disk-format.md): group 0 is the metadata group (and, with one partition, holds every
 * slot); with partitions, group p + 1 holds partition p. One WAL thread writes every group's
 * batches of a loop turn with one write and one fdatasync. Everything runs on the loop thread
 * except the WAL thread's writes.
 */
#ifndef HY_IO_DURABLE_H
#define HY_IO_DURABLE_H

#include <uv.h>

#include "common/log.h"
#include "common/metrics.h"
#include "node/config.h"
#include "node/node.h"

struct io_durable;

/* Called on the loop thread after completed batches were handed back to the engine, so the
 * shell can flush the clients they answered and re-arm timers. */
typedef void (*io_durable_progress_cb)(void *ctx);
/* Called when a batch is durable, before the engine is told: send its messages now. */
typedef void (*io_durable_send_cb)(void *ctx, const struct node_io_batch *b);

/*
 * Opens <data-dir>/wal for the node's groups, recovers them, starts the node's groups from what
 * they held (node_start) and starts the WAL thread. A data dir in the older per-group layout
 * (<data-dir>/group-N) is refused with a message saying so. Everything is borrowed and must
 * outlive the io_durable. Returns HY_OK, or an error after logging why (a damaged directory names
 * the file and offset and points at `halyard --repair DIR`).
 */
int io_durable_open(uv_loop_t *loop, struct hy_node *node, const struct hy_config *cfg,
                    const struct hy_log *log, io_durable_progress_cb progress_cb,
                    io_durable_send_cb send_cb, void *ctx, struct io_durable **out) HY_MUST_CHECK;

/* Hands every batch the engine has ready to the WAL thread (or completes those with nothing
 * to persist when nothing is ahead of them). In `durability: replicated`, batches of entries
 * wait for the loop turn's end (turn_end: the last pump before the loop polls), where the loop
 * writes them itself as one group commit when the thread holds nothing (wal_thread_write_now),
 * and they complete at once, in order: returns 1 when some did, so that the caller flushes the
 * clients they answered (the progress callback is not called for them). In `durability: fsync`
 * a node that leads no group does the same with an fdatasync (wal_thread_sync_now), and so does
 * a leader for a turn of many entries, while its fdatasyncs stay under 10 ms (durable.c
 * durable_loop_syncs). */
int io_durable_pump(struct io_durable *d, int turn_end);

/* Called right before the loop fdatasyncs a leader's turn itself (durable.c
 * durable_leader_syncs), to send what is ready first: the peers' messages, the clients'
 * replies. It must not give the engine anything to persist. */
typedef void (*io_durable_before_sync_cb)(void *ctx);
void io_durable_set_before_sync(struct io_durable *d, io_durable_before_sync_cb cb, void *ctx);

/* Writes what is queued, stops the thread (the loop must run once more to close its handles). */
void io_durable_stop(struct io_durable *d);

/* The WAL thread's group-commit times (write + fdatasync), copied into *out; an empty
 * histogram once the thread stopped. */
void io_durable_sync_times(struct io_durable *d, struct hy_histo *out);

/* Applies the settings `durability` and `fsync-interval-ms` of cfg (borrowed for the call)
 * to the WAL thread: at open, and after a CONFIG SET. */
void io_durable_configure(struct io_durable *d, const struct hy_config *cfg);

/* Group commits the loop wrote itself (io_durable_pump): `replicated` writes, and `fsync`
 * writes and fdatasyncs of a node that leads no group, or of a leader's turn that is large or
 * that nobody but its writers waits for. */
uint64_t io_durable_loop_commits(const struct io_durable *d);
/* How many times a slow fdatasync (10 ms or more) handed the loop's syncs to the thread until
 * the thread's were fast again. */
uint64_t io_durable_loop_sync_pauses(const struct io_durable *d);

/* Milliseconds since the log's last fdatasync (-1 once the thread stopped). */
int64_t io_durable_last_sync_age_ms(struct io_durable *d);
/* The snapshot writer's times (writing and fsyncing one snapshot file the node took, off the
 * WAL thread), copied into *out; an empty histogram once it stopped. */
void io_durable_snapshot_file_times(struct io_durable *d, struct hy_histo *out);

/* After the loop ended: closes the log and frees everything. */
void io_durable_close(struct io_durable *d);

/* `halyard --repair DIR`: cuts a damaged log after its last good record, in DIR/wal or in DIR
 * itself when it is the log directory. Prints a report; returns the process exit code (1 when
 * DIR holds no log at all). */
int io_durable_repair(const char *dir);

#endif
