/*
 * wal_node.h - the log of one Raft group as the engine sees it: what wal_open recovered turned
 * into the engine's start event, and an engine io batch written through the WAL.
 *
 * Pure glue, no libuv and no threads, so that the server (durable.c, whose WAL thread merges
 * batches itself) and the whole-node simulator (sim/whole.c, which writes on its own loop)
 * start a node the same way and persist a batch in the same order (node.h's contract:
 * term/vote, then the snapshot, then the entries).
 */
#ifndef HY_IO_WAL_NODE_H
#define HY_IO_WAL_NODE_H

#include <stdint.h>

#include "common/log.h"
#include "io/wal.h"
#include "node/node.h"

/*
 * Starts group `group` of node n (node_start) from rec (borrowed for the call): the snapshot, its
 * membership, and the entries after it (the WAL may also hold trailing ones at or below it). Logs
 * what was recovered to log (may be NULL). Returns HY_OK or HY_ECORRUPT (the snapshot's membership
 * or data does not decode).
 */
int wal_node_start(struct hy_node *n, uint32_t group, const struct wal_recovered *rec,
                   uint64_t now_ms, const struct hy_log *log) HY_MUST_CHECK;

/* Writes batch b (borrowed) of group b->group durably: term/vote, snapshot (discarding the log
 * for one installed from the leader), entries; with one write and one fdatasync when there is
 * no snapshot. Returns what the failing WAL call returned, or HY_OK. Nothing may be staged. */
int wal_node_write_batch(struct wal *w, const struct node_io_batch *b) HY_MUST_CHECK;

#define WAL_NODE_MEMBERSHIP_MAX (8 + RAFT_SERVERS_MAX * 16)
/* The snapshot batch b carries, as the WAL stores it; its configuration is encoded into
 * membership, which must outlive *out. */
void wal_node_snapshot_of(const struct node_io_batch *b, struct wal_snapshot *out,
                          uint8_t membership[WAL_NODE_MEMBERSHIP_MAX]);

#endif
