/*
 * migrate.h - the shell's part of MIGRATE (src/node/cmd_migrate.c): a few threads of their own
 * carry out the jobs the engine hands out (node_migrate_take): connect to the target, send
 * its requests in one write, read its replies, every step bounded by the job's timeout
 * (blocking I/O with deadlines, src/client/rconn.c), and hand each outcome back to the loop,
 * which gives it to the engine (node_migrate_done). The loop never waits for a target.
 */
#ifndef HY_IO_MIGRATE_H
#define HY_IO_MIGRATE_H

#include <uv.h>

#include "common/log.h"
#include "node/node.h"

struct io_migrate;

/* The threads wake the loop (an async handle on `loop`) whenever an outcome comes back; the
 * loop then hands it to `node` at once. */
int io_migrate_open(uv_loop_t *loop, struct hy_node *node, const struct hy_log *log,
                    struct io_migrate **out);
/* From the loop: hands the engine the outcomes that came back, then queues the jobs it has. */
void io_migrate_pump(struct io_migrate *m, struct hy_node *n, uint64_t now_ms);
/* Stops the threads (a job under way is cut short) and closes the async handle (the loop must
 * run once more to finish it). */
void io_migrate_close(struct io_migrate *m);

#endif
