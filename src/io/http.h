/*
 * http.h - the HTTP endpoints on http-port: GET /health, /health/ready, /health/live and
 * /metrics (docs/operations.md "Health checks and metrics").
 *
 * libmicrohttpd parses HTTP and runs its own thread, so a slow or hostile HTTP client never
 * holds up the libuv loop, and an operator still gets an answer while the loop is stuck. That
 * thread never touches the node: the loop thread publishes a snapshot of it (a struct
 * node_observation) at every cron tick, under a mutex, and each request renders from a copy
 * taken under the same mutex. /health/live answers 503 once the latest snapshot is older than
 * the loop's liveness deadline (the loop stopped turning).
 *
 * Bounds: at most IO_HTTP_CONNECTIONS_MAX connections (more are refused by MHD), each closed
 * after IO_HTTP_TIMEOUT_S idle seconds, with a small per-connection memory pool; request
 * bodies are never read. The port binds to the same address as the client port (`bind`).
 * With tls-http yes it speaks HTTPS only (MHD's GnuTLS, TLS 1.2/1.3 per tls-protocols) with
 * the client port's certificate and key; it asks for no client certificate.
 */
#ifndef HY_IO_HTTP_H
#define HY_IO_HTTP_H

#include <stdint.h>

#include "common/log.h"
#include "node/config.h"
#include "node/observe.h"

#define IO_HTTP_CONNECTIONS_MAX 64
#define IO_HTTP_STREAMS_MAX     16   /* open /events streams, within the connections */
#define IO_HTTP_EVENTS          1024 /* events kept for /events (as the node keeps) */
#define IO_HTTP_EVENT_BYTES     256
#define IO_HTTP_KEEPALIVE_S     5 /* an idle /events stream gets a comment this often */
#define IO_HTTP_STREAM_CHUNK    4096
#define IO_HTTP_TIMEOUT_S       10
#define IO_HTTP_STALE_MS_MIN    2000 /* /health/live: a snapshot older than this is stale... */
#define IO_HTTP_STALE_TICKS     10   /* ...or than this many cron periods, whichever is longer */

struct io_http;

/*
 * Starts the server on cfg->bind:cfg->http_port (nothing when http_port is 0: *out = NULL).
 * cfg and log are borrowed and must outlive it. Until the first io_http_publish, every
 * endpoint answers 503. Returns HY_OK, or HY_EIO after logging why (e.g. the port is taken).
 */
int io_http_open(const struct hy_config *cfg, const struct hy_log *log,
                 struct io_http **out) HY_MUST_CHECK;

/* Replaces the published snapshot with a copy of *o (loop thread). h may be NULL. */
void io_http_publish(struct io_http *h, const struct node_observation *o);

/* Stops the server (waits for its thread) and frees it. h may be NULL. */
void io_http_close(struct io_http *h);

/* Cluster event `id` (JSON, copied) for /events streams; ids come in order. */
void io_http_event(struct io_http *h, uint64_t id, const char *json);
/* The last event id handed over (UINT64_MAX when h is NULL: nothing to hand). */
uint64_t io_http_events_last(struct io_http *h);

/* With tls-http yes: starts a daemon with cfg's certificate and key (borrowed for the call) and
 * retires the old one (new connections get the new certificate). Returns 0, or -1 with the
 * reason in err and the old daemon kept. Does nothing (0) without tls-http or HTTP. */
int io_http_reload(struct io_http *h, const struct hy_config *cfg, char *err, size_t cap);

#endif
