/*
 * snapshotter.h - snapshots of the keyspace encoded in a forked child, as Redis does for
 * BGSAVE: fork() gives the child a copy-on-write image of the store as it is at that instant,
 * the child encodes it (store_snapshot_encode) into a pipe and exits, and the event loop
 * reads the bytes as they come and hands them to the node (node_snapshot_done). The loop
 * never stalls for O(keys) work; what it pays is the fork itself (page tables) and pages the
 * parent writes while the child runs.
 *
 * The child closes every inherited descriptor but its pipe at once (listening sockets, peer
 * connections, the log's files), touches nothing but the store and exits with _exit().
 */
#ifndef HY_IO_SNAPSHOTTER_H
#define HY_IO_SNAPSHOTTER_H

#include <uv.h>

#include "common/log.h"
#include "node/node.h"

struct io_snapshotter;

/* Registers itself as the node's snapshotter. Borrowed pointers outlive it. */
struct io_snapshotter *io_snapshotter_open(uv_loop_t *loop, struct hy_node *node,
                                           const struct hy_log *log);

/* Stops: a child still encoding is killed and reaped, the node's snapshotter is unset.
 * done_cb(arg) runs once the pipe handle is closed; s is then freed. */
void io_snapshotter_close(struct io_snapshotter *s, void (*done_cb)(void *arg), void *arg);

#endif
