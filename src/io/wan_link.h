/*
 * wan_link.h - the shell's part of links between clusters (docs/wan.md): a thread of its own
 * sends the batches the engine's partition leaders hand out (node_wan_take) to each link's
 * target, over one RESP connection per link (blocking I/O with deadlines, src/client/rconn.c),
 * and reports each outcome back to the loop, which hands it to the engine (node_wan_done).
 * The engine never waits for it: at most one batch per (link, partition) is out at a time.
 */
#ifndef HY_IO_WAN_LINK_H
#define HY_IO_WAN_LINK_H

#include <uv.h>

#include "common/log.h"
#include "node/node.h"

struct io_wan;

/* The thread wakes the loop (an async handle on `loop`) whenever an outcome comes back, and
 * the loop then pumps `node` at once: a partition's next batch does not wait for the cron. */
int io_wan_open(uv_loop_t *loop, struct hy_node *node, const struct hy_log *log,
                struct io_wan **out);
/* From the loop (cron): hands the engine the outcomes that came back, then queues the batches
 * now due. */
void io_wan_pump(struct io_wan *w, struct hy_node *n, uint64_t now_ms);
/* Stops the thread and closes the async handle (the loop must run once more to finish it). */
void io_wan_close(struct io_wan *w);

#endif
