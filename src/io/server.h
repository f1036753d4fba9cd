/*
 * server.h - the libuv shell around the node engine: listening socket, connections, the
 * once-per-loop-turn reply flush, the cron timer, and graceful shutdown on SIGINT/SIGTERM.
 *
 * The shell moves bytes and reads the clock; every decision about a request is the engine's
 * (node.h). Replies are never written inline: a connection with output joins the pending
 * list and a uv_prepare handle flushes the list once per loop turn, right before the loop
 * blocks, so pipelined requests read in one turn leave in one write.
 */
#ifndef HY_IO_SERVER_H
#define HY_IO_SERVER_H

#include "common/log.h"
#include "node/config.h"

/* Runs the server until SIGINT/SIGTERM. cfg and log are borrowed for the call. Returns 0 after
 * a clean shutdown, or a non-zero exit code when the server could not start (reason logged). */
int io_server_run(struct hy_config *cfg, struct hy_log *log);

/* Wall-clock milliseconds since the Unix epoch (absolute expiry times use it). */
uint64_t io_clock_ms(void);

#endif
