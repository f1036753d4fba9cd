/*
 * mesh.h - binds the engine's Raft group to the peer transport (peer.h): Raft messages from
 * peers go to node_receive(), and the messages of each durable io batch go out to their
 * members by name. The peers follow the node's member list as it changes (joins, removals).
 * A node without a cluster secret has no mesh (and cannot have peers).
 */
#ifndef HY_IO_MESH_H
#define HY_IO_MESH_H

#include <uv.h>

#include "common/log.h"
#include "node/config.h"
#include "node/node.h"

struct io_mesh;

/* Called after peers' messages were handed to the engine, so the shell can carry out the
 * resulting io and flush answered clients. */
typedef void (*io_mesh_progress_cb)(void *ctx);

/*
 * Starts the transport when cluster-secret is set (*out = NULL without one; then having
 * other members is a configuration error). Everything is borrowed and must outlive the mesh.
 * Returns HY_OK or an error after logging why.
 */
int io_mesh_open(uv_loop_t *loop, struct hy_node *node, const struct hy_config *cfg,
                 const struct hy_log *log, io_mesh_progress_cb progress_cb, void *ctx,
                 struct io_mesh **out) HY_MUST_CHECK;

/* Brings the transport's peers in line with the node's member list when it changed (cheap
 * when it did not: call after every turn). m may be NULL. */
void io_mesh_update(struct io_mesh *m);

/* Sends one message now (a node_send_fn: the node's early sender, ctx = the mesh). */
void io_mesh_send_one(void *ctx, uint32_t group, const struct raft_message *msg);

/* Sends the batch's messages (the batch is durable). m may be NULL (no peers). */
void io_mesh_send(struct io_mesh *m, const struct node_io_batch *b);

/* Sends the forwarded requests and replies the engine has queued. m may be NULL (no peers:
 * they are dropped). */
void io_mesh_flush(struct io_mesh *m, struct hy_node *node);
/* Writes what the peer connections queued now (peer_transport_flush). */
void io_mesh_flush_peers(struct io_mesh *m);

/* From the poll of a script that holds the loop (node.h "Busy scripts seen from the other
 * nodes"): ran_ms is node_script_running_ms. Once the script has run NODE_BUSY_PEER_MS, it
 * sends the peers BUSY notices and serves their links (peer_transport_busy_pump), at most once
 * a millisecond; once it is over (ran_ms < 0), it tells the peers it told. m may be NULL. */
void io_mesh_busy(struct io_mesh *m, int64_t ran_ms, uint64_t now_ms);

/* The link to member `name`: fills *out and returns 1, or returns 0 when it has none (m may
 * be NULL: no peers). */
struct peer_stats;
int io_mesh_peer_stats(const struct io_mesh *m, const char *name, struct peer_stats *out);

/* Certificate reload (CONFIG SET tls-*, SIGHUP) in two steps, so that every port takes the
 * new files or none does: prepare builds the peer port's new contexts from cfg (*out = NULL
 * and 0 when the mesh runs in clear text; -1 with err when the files are wrong), swap makes
 * new connections use them (fresh may be NULL: nothing to do). */
struct io_tls_ctx;
int io_mesh_tls_prepare(const struct io_mesh *m, const struct hy_config *cfg,
                        struct io_tls_ctx **out, char *err, size_t cap);
void io_mesh_tls_swap(struct io_mesh *m, struct io_tls_ctx *fresh);

/* Closes the transport; done_cb(arg) runs once its handles are closed. m may be NULL. */
void io_mesh_close(struct io_mesh *m, void (*done_cb)(void *arg), void *arg);

#endif
