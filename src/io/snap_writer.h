/*
 * snap_writer.h - snapshot files written and fsync'd on a thread of their own, not on the WAL
 * thread (issue 12's leftovers): a snapshot file costs a write of the partition's whole
 * keyspace and three fsyncs (the file, the directory after the rename, the directory after the
 * old file's removal), and on the WAL thread every other group's writes of that group commit
 * waited for them (up to 94 ms for five 1 MB snapshots, docs/partitioning.md).
 *
 * The writer only makes the file durable under its name (wal_snapshot_file_write, on a struct
 * disk of its own over the log directory); the group's log adopts it afterwards on the WAL
 * thread (wal_snapshot_install), which is cheap. durable.c holds the group's later writes back
 * meanwhile, so that each group's writes still reach the log in order; other groups go on.
 */
#ifndef HY_IO_SNAP_WRITER_H
#define HY_IO_SNAP_WRITER_H

#include <stdint.h>
#include <uv.h>

#include "common/log.h"
#include "common/metrics.h"
#include "io/wal.h"

struct snap_writer;

/* Called on the loop thread, once per submitted file, in submission order: status HY_OK (the
 * file is durable), HY_ENOSPC (nothing left behind: write it on the WAL thread, which retries
 * on a full disk) or HY_EIO (a write or fsync failed: the caller aborts, as for the log). */
typedef void (*snap_writer_done_cb)(void *ctx, uint32_t group, uint64_t index, int status);

/* Starts the thread writing into directory `dir` (the log's). HY_OK and *out, or HY_EIO. */
int snap_writer_start(uv_loop_t *loop, const char *dir, const struct hy_log *log, void *ctx,
                      snap_writer_done_cb done_cb, struct snap_writer **out) HY_MUST_CHECK;

/* Queues group's snapshot s: its descriptor and membership are copied, its data is borrowed
 * until the done callback for it ran (or snap_writer_stop returned). Loop thread only. */
void snap_writer_submit(struct snap_writer *w, uint32_t group, const struct wal_snapshot *s);

/* Lets the file being written finish, drops the ones not started (no callback: their batches
 * were never acknowledged), joins the thread and closes the handle; the struct is freed by its
 * close callback, so the loop must run once more. Loop thread only. */
void snap_writer_stop(struct snap_writer *w);

/* The time each file took to write and make durable (since start). Loop thread only. */
void snap_writer_times(struct snap_writer *w, struct hy_histo *out);

#endif
