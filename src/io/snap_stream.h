/*
 * snap_stream.h - a leader's snapshots streamed to followers from the files its log keeps.
 *
 * With raft_config.snapshot_on_disk the Raft core keeps no copy of a group's snapshot (one as
 * large as the partition's keyspace): each SNAPSHOT message it sends names a byte range of the
 * data of the group's snapshot at snap_index, and the shell fills it from that snapshot's file
 * (snapshot-G-INDEX, docs/disk-format.md) just before the message goes out. The streamer keeps
 * each transfer's file open, so that a newer snapshot removing the name meanwhile does not cut
 * the transfer short, and checks the data's CRC32C as the chunks go out in order: the last
 * chunk goes out only once the whole data matched the checksum in the file's header, so a
 * snapshot damaged on disk never completes on a follower.
 *
 * Pure over struct disk (no libuv): the server's mesh and the simulator use it alike, each
 * from one thread. Reads are plain reads of the log directory; the WAL thread only ever
 * creates snapshot files under a temporary name and renames them whole.
 */
#ifndef HY_SNAP_STREAM_H
#define HY_SNAP_STREAM_H

#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "io/disk.h"
#include "raft/raft.h"

struct snap_stream;

/* A streamer reading d (borrowed; outlives it); log may be NULL. */
struct snap_stream *snap_stream_new(struct disk *d, const struct hy_log *log);
void snap_stream_free(struct snap_stream *s);

/* Fills m's chunk (m->len bytes at m->offset of the data) into buf, which holds at least
 * m->len bytes, and points m->data at it. A message that needs nothing (not a SNAPSHOT, len 0,
 * or data already set) is left as it is: HY_OK. Otherwise HY_OK, or a reason to drop the
 * message (Raft sends the chunk again): HY_ENOTFOUND when that snapshot is not on disk (not
 * durable yet, or replaced by a newer one since the transfer began elsewhere), HY_ECORRUPT when
 * the file is damaged or does not match the message (logged once per transfer), HY_EIO. */
int snap_stream_fill(struct snap_stream *s, uint32_t group, struct raft_message *m, uint8_t *buf);

/* Appends the data of group's snapshot at index to out, read whole from its file and checked
 * (header, configuration and data checksums): what a parked copy of a partition reloads its
 * keyspace from (node_set_snapshot_loader). HY_OK, HY_ENOTFOUND, HY_ECORRUPT (also when the file
 * holds another index), HY_EIO. */
int snap_stream_load(struct disk *d, uint32_t group, uint64_t index, struct hy_buf *out);

/* Open transfers, and chunks refused because the data failed its checksum (tests, INFO). */
size_t snap_stream_open_count(const struct snap_stream *s);
uint64_t snap_stream_corrupt_count(const struct snap_stream *s);

#endif
