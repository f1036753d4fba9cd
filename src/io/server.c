#include "io/server.h"

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/clock.h"
#include "io/config_file.h"
#include "io/durable.h"
#include "io/alerts.h"
#include "io/migrate.h"
#include "io/wan_link.h"
#include "io/files.h"
#include "io/http.h"
#include "io/identity.h"
#include "io/mesh.h"
#include "io/peer.h"
#include "io/peer_auth.h"
#include "io/snapshotter.h"
#include "io/tls.h"
#include "node/node.h"

#define IO_READ_CHUNK       (16 * 1024)
#define IO_SHUTDOWN_WAIT_MS 3000
#define IO_FLUSH_ROUNDS_MAX 64
/* Pumps of one server_do_io while the loop's own writes complete batches. */
#define IO_DO_ROUNDS_MAX    4

struct io_conn;

struct io_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t tls_listener; /* on tls-port, when set */
    int tls_listening;
    int listening;          /* on port (0: the plain port is off) */
    struct io_tls_ctx *tls; /* NULL without tls-port */
    char *tls_loaded;       /* the tls-* settings it was built from */
    uv_signal_t sighup;     /* reloads the TLS certificates */
    uv_timer_t cron;
    uint64_t purge_at; /* memory_purge: when it last looked */
    size_t purge_base; /* the smallest RSS - used_memory seen: code, libraries, stacks */
    uv_timer_t raft_timer;
    uint64_t raft_timer_at;
    uv_timer_t shutdown_timer;
    uv_prepare_t flusher;
    uv_idle_t spinner; /* keeps the loop from blocking while proposals are queued */
    /* A due Raft tick waits for the next poll: ticker runs it right after, and tick_spinner
     * keeps that poll from blocking (raft_timer_cb). */
    uv_check_t ticker;
    uv_idle_t tick_spinner;
    int tick_due;
    uv_signal_t sigint, sigterm;
    struct hy_node *node;
    struct io_durable *durable;
    struct io_mesh *mesh; /* NULL for a node without peers */
    struct io_snapshotter *snapshotter;
    struct io_http *http;         /* NULL with http-port 0 */
    struct io_alerts *alerts;     /* NULL without alert-webhooks */
    struct io_wan *wan;           /* WAN links' sender (wan_link.c) */
    struct io_migrate *migrate;   /* MIGRATE's I/O (migrate.c) */
    uint64_t alerts_last_event;   /* the last event id looked at for alerts */
    struct node_observation *obs; /* scratch for what is published to the HTTP thread */
    struct hy_config *cfg;
    struct hy_log *log;
    struct io_conn *conns;   /* every open connection */
    struct io_conn *pending; /* connections with output to flush this turn */
    int stopping;
    uint64_t busy_polled_ms;        /* busy_poll_cb's last look at the sockets */
    int busy_stop_seen;             /* busy_stop_check acted on the stop signal */
    uint64_t turn_ns, turn_idle_ns; /* note_turn: the last flush, and the loop's idle time then */
    uint64_t turn_cpu_ns, cpu_read_ns; /* the loop thread's CPU time, and when it was read */
};

struct io_conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    struct io_server *srv;
    struct node_client *client;
    struct hy_buf inflight; /* bytes handed to uv_write, kept alive until its callback */
    struct io_tls *tls;     /* a connection to tls-port: these carry its records */
    struct hy_buf tls_in, tls_out;
    int writing, closing, is_pending;
    struct io_conn *next_pending;
    struct io_conn *prev, *next;
};

/* The node's clock (common/clock.h): wall-clock milliseconds that a step of the wall clock
 * neither moves back nor makes jump (small steps are slewed away). One for the process,
 * behind a lock: the loop reads it, and so may the shell's other threads. */
static struct hy_clock g_clock;
static pthread_mutex_t g_clock_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t io_clock_ms(void)
{
    struct timespec wall, mono;
    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_BOOTTIME, &mono); /* counts a suspended system too: leases end */
    pthread_mutex_lock(&g_clock_lock);
    uint64_t now =
        hy_clock_read_us(&g_clock, (uint64_t)wall.tv_sec * 1000000 + (uint64_t)wall.tv_nsec / 1000,
                         (uint64_t)mono.tv_sec * 1000000 + (uint64_t)mono.tv_nsec / 1000);
    pthread_mutex_unlock(&g_clock_lock);
    return now;
}

static void conn_close(struct io_conn *conn);
static void conn_flush(struct io_conn *conn);
static void server_maybe_finish(struct io_server *srv);

static void conn_closed_cb(uv_handle_t *h)
{
    struct io_conn *conn = h->data;
    struct io_server *srv = conn->srv;
    node_client_free(srv->node, conn->client);
    hy_buf_free(&conn->inflight);
    io_tls_free(conn->tls);
    hy_buf_free(&conn->tls_in);
    hy_buf_free(&conn->tls_out);
    hy_free(conn);
    if (srv->stopping) {
        server_maybe_finish(srv);
    }
}

static void pending_remove(struct io_conn *conn)
{
    if (!conn->is_pending) {
        return;
    }
    struct io_conn **pp = &conn->srv->pending;
    while (*pp != conn) {
        pp = &(*pp)->next_pending;
    }
    *pp = conn->next_pending;
    conn->is_pending = 0;
}

static void conn_close(struct io_conn *conn)
{
    if (conn->closing) {
        return;
    }
    conn->closing = 1;
    pending_remove(conn);
    struct io_server *srv = conn->srv;
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        srv->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    uv_read_stop((uv_stream_t *)&conn->tcp);
    uv_close((uv_handle_t *)&conn->tcp, conn_closed_cb);
}

static void pending_add(struct io_conn *conn)
{
    if (!conn->is_pending && !conn->closing) {
        conn->is_pending = 1;
        conn->next_pending = conn->srv->pending;
        conn->srv->pending = conn;
    }
}

/* Closes every connection the engine marked CLOSE_ASAP (CLIENT KILL, idle timeout). */
static void server_sweep(struct io_server *srv)
{
    struct io_conn *conn = srv->conns;
    while (conn != NULL) {
        struct io_conn *next = conn->next;
        if (conn->client->flags & NODE_CLIENT_CLOSE_ASAP) {
            conn_close(conn);
        } else if (conn->client->flags & NODE_CLIENT_CLOSE_AFTER_REPLY) {
            pending_add(conn);
        }
        conn = next;
    }
}

static int conn_over_output_limit(const struct io_conn *conn)
{
    int64_t limit = conn->srv->cfg->client_output_buffer_limit;
    const struct node_client *c = conn->client;
    return limit > 0 && (int64_t)(c->out.len + c->out_inflight) > limit;
}

/* After the engine ran: honour close flags, enforce the output limit, queue the flush. */
static void conn_after_process(struct io_conn *conn)
{
    struct node_client *c = conn->client;
    if (c->flags & NODE_CLIENT_CLOSE_ASAP) {
        conn_close(conn);
        return;
    }
    if (conn_over_output_limit(conn)) {
        hy_log(conn->srv->log, HY_LOG_WARN,
               "client %llu (%s) closed: output buffer over client-output-buffer-limit "
               "(%zu bytes pending)",
               (unsigned long long)c->id, c->addr, c->out.len + c->out_inflight);
        conn_close(conn);
        return;
    }
    if (c->flags & NODE_CLIENT_CLOSE_AFTER_REPLY) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
    }
    if (c->out.len > 0 || (c->flags & NODE_CLIENT_CLOSE_AFTER_REPLY)) {
        pending_add(conn);
    }
    if (node_take_kills(conn->srv->node) > 0) {
        server_sweep(conn->srv);
    }
}

/* Connections whose clients the engine gave output outside their own read (a write that
 * committed, a client woken up) join the flush list. */
static void server_drain_ready(struct io_server *srv)
{
    struct node_client *c;
    while ((c = node_take_ready(srv->node)) != NULL) {
        struct io_conn *conn = c->shell;
        if (conn != NULL && !conn->closing) {
            if (c->flags & NODE_CLIENT_CLOSE_ASAP) {
                conn_close(conn);
            } else {
                pending_add(conn);
            }
        }
    }
}

static void raft_timer_cb(uv_timer_t *t);
static void spin_cb(uv_idle_t *h);

/* Re-arms the Raft timer when the engine wants its next tick at another time (not while a
 * tick is due: the tick re-arms it). */
static void server_arm_raft_timer(struct io_server *srv)
{
    uint64_t at = node_timeout_ms(srv->node);
    if (at == 0 || at == srv->raft_timer_at || srv->stopping || srv->tick_due) {
        return;
    }
    srv->raft_timer_at = at;
    uint64_t now = io_clock_ms();
    uv_timer_start(&srv->raft_timer, raft_timer_cb, at > now ? at - now : 0, 0);
}

/* Hands the engine's storage batches to the WAL thread, flushes the clients the engine
 * answered, and follows Raft's timer. turn_end: the loop polls next (flush_cb), so the batches
 * the loop writes itself in `durability: replicated` are written now (io_durable_pump). */
static void server_do_io(struct io_server *srv, int turn_end)
{
    if (node_fatal(srv->node)) {
        abort(); /* said in the log; nothing of what failed has left (node.h node_fatal) */
    }
    io_durable_pump(srv->durable, turn_end);
    io_mesh_flush(srv->mesh, srv->node);
    io_mesh_update(srv->mesh);
    server_drain_ready(srv);
    /* Draining may have run clients' pipelined requests (a scatter that completed): what they
     * proposed is handed to the WAL and the peers now, not at the next event. Batches the loop
     * wrote itself complete in the pump (`durability: replicated`) and may answer clients:
     * they join the flush list now, not at the next event. */
    for (int round = 0; round < IO_DO_ROUNDS_MAX; round++) {
        int completed = io_durable_pump(srv->durable, turn_end);
        io_mesh_flush(srv->mesh, srv->node);
        if (!completed) {
            break;
        }
        server_drain_ready(srv);
    }
    server_arm_raft_timer(srv);
}

/* The WAL thread made batches durable and the engine answered their clients; or peers'
 * messages moved the engine. */
static void durable_progress_cb(void *ctx)
{
    server_do_io(ctx, 0);
}

static void durable_send_cb(void *ctx, const struct node_io_batch *b)
{
    struct io_server *srv = ctx;
    io_mesh_send(srv->mesh, b);
}

/* libuv runs timers before it polls for input, so a Raft timer that fires after the loop
 * was busy, or after the process waited for a CPU, would judge the peers' silence before
 * reading what they sent meanwhile: a follower campaigned with its leader's heartbeats unread
 * in its socket, a leader stepped down with its followers' acknowledgements unread in its own
 * (docs/performance.md "Leader changes under load"). So the timer only notes the tick as due,
 * and how late it fired (raft.c "Deafness"); the tick runs in the check phase, right after a
 * poll that does not block, once the input that waited is read. */
static void raft_timer_cb(uv_timer_t *t)
{
    struct io_server *srv = t->data;
    node_note_timer_late(srv->node, srv->raft_timer_at, io_clock_ms());
    srv->raft_timer_at = 0;
    srv->tick_due = 1;
    uv_idle_start(&srv->tick_spinner, spin_cb);
}

static void ticker_cb(uv_check_t *h)
{
    struct io_server *srv = h->data;
    if (!srv->tick_due) {
        return;
    }
    srv->tick_due = 0;
    uv_idle_stop(&srv->tick_spinner);
    node_tick(srv->node, io_clock_ms());
    server_do_io(srv, 0);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct io_conn *conn = h->data;
    if (conn->tls != NULL) { /* records: decrypted into the client's input by read_cb */
        uint8_t *p = hy_buf_reserve(&conn->tls_in, IO_READ_CHUNK);
        *buf = uv_buf_init((char *)p, (unsigned)(conn->tls_in.cap - conn->tls_in.len));
        return;
    }
    struct hy_buf *in = &conn->client->in;
    /* A large bulk whose header was read: make room for all of it at once, so it arrives in
     * few reads and one allocation instead of a chain of doublings. The query buffer limit
     * bounds it (checked after each read). */
    size_t need = resp_request_bytes_needed(&conn->client->parser);
    size_t extra = need > in->len + IO_READ_CHUNK ? need - in->len : IO_READ_CHUNK;
    if ((int64_t)(in->len + extra) > conn->srv->cfg->client_query_buffer_limit) {
        extra = IO_READ_CHUNK;
    }
    uint8_t *p = hy_buf_reserve(in, extra);
    *buf = uv_buf_init((char *)p, (unsigned)(in->cap - in->len));
}

/* Acknowledges at once what the client sent. The read ended inside a request, and a client
 * that writes a large command in pieces without TCP_NODELAY sends the next piece only once the
 * last is acknowledged (Nagle), which the kernel's delayed ACK holds back for up to 40 ms:
 * Redis's test suite's Tcl client writes in 4 KiB pieces, and its large PFADDs waited 40 ms a
 * piece (on Redis too). Quick-ack mode lasts until the kernel leaves it again, so it is asked
 * for each time; requests that arrive whole, the usual case, cost no call. */
static void conn_ack_now(struct io_conn *conn)
{
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((const uv_handle_t *)&conn->tcp, &fd) == 0) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct io_conn *conn = s->data;
    if (nread < 0) {
        conn_close(conn); /* EOF or reset: nothing more will come */
        return;
    }
    if (nread == 0 || conn->closing) {
        return;
    }
    struct node_client *c = conn->client;
    if (conn->tls != NULL) {
        char err[300];
        conn->tls_in.len += (size_t)nread;
        size_t before = c->in.len;
        int rc = io_tls_feed(conn->tls, conn->tls_in.data, conn->tls_in.len, &c->in, &conn->tls_out,
                             err, sizeof(err));
        hy_buf_reset(&conn->tls_in);
        if (rc != 0) {
            hy_log(conn->srv->log, HY_LOG_INFO, "client %llu (%s) closed: %s",
                   (unsigned long long)c->id, c->addr, err);
            conn_close(conn);
            return;
        }
        if (conn->tls_out.len > 0) {
            pending_add(conn); /* handshake records */
        }
        if (c->in.len == before) {
            return; /* a handshake step, or a record not yet complete */
        }
        nread = (ssize_t)(c->in.len - before); /* plaintext bytes, for the counters */
    } else {
        c->in.len += (size_t)nread;
    }
    node_note_net_io(conn->srv->node, (size_t)nread, 0);
    node_client_process(conn->srv->node, c, io_clock_ms());
    if (c->in_partial) {
        conn_ack_now(conn);
    }
    if ((int64_t)c->in.len > conn->srv->cfg->client_query_buffer_limit) {
        hy_log(conn->srv->log, HY_LOG_WARN,
               "client %llu (%s) closed: query buffer over client-query-buffer-limit",
               (unsigned long long)c->id, c->addr);
        conn_close(conn);
        return;
    }
    conn_after_process(conn);
}

static void write_cb(uv_write_t *req, int status)
{
    struct io_conn *conn = req->data;
    conn->writing = 0;
    node_note_net_io(conn->srv->node, 0, conn->inflight.len);
    hy_buf_reset(&conn->inflight);
    conn->client->out_inflight = 0;
    if (conn->closing) {
        return;
    }
    if (status < 0) {
        conn_close(conn);
        return;
    }
    conn_flush(conn);
}

/* Writes what the engine queued: try_write first (no copy, no allocation), then hand the rest
 * to uv_write. At most one uv_write per connection is in flight. */
static void conn_flush(struct io_conn *conn)
{
    struct node_client *c = conn->client;
    if (conn->writing || conn->closing) {
        return;
    }
    /* Over TLS, the replies become records first; what goes on the wire is those. */
    struct hy_buf *src = &c->out;
    if (conn->tls != NULL) {
        if (c->out.len > 0 &&
            io_tls_write(conn->tls, c->out.data, c->out.len, &conn->tls_out) != 0) {
            conn_close(conn);
            return;
        }
        hy_buf_reset(&c->out);
        src = &conn->tls_out;
    }
    if (src->len > 0) {
        uv_buf_t b = uv_buf_init((char *)src->data, (unsigned)HY_MIN(src->len, 1u << 30));
        int n = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(conn);
            return;
        }
        if (n > 0) {
            node_note_net_io(conn->srv->node, 0, (size_t)n);
            hy_buf_consume(src, (size_t)n);
        }
    }
    if (src->len > 0) {
        struct hy_buf tmp = conn->inflight; /* swap: the engine keeps appending to c->out */
        conn->inflight = *src;
        *src = tmp;
        hy_buf_reset(src);
        c->out_inflight = conn->inflight.len;
        uv_buf_t b = uv_buf_init((char *)conn->inflight.data, (unsigned)conn->inflight.len);
        conn->wreq.data = conn;
        if (uv_write(&conn->wreq, (uv_stream_t *)&conn->tcp, &b, 1, write_cb) != 0) {
            conn_close(conn);
            return;
        }
        conn->writing = 1;
        return;
    }
    if ((c->flags & NODE_CLIENT_CLOSE_AFTER_REPLY) && c->waiting == 0) {
        conn_close(conn); /* every reply, including those of pending writes, is out */
    }
}

static void conn_free_unstarted_cb(uv_handle_t *h);

/* Reads what conn's socket holds into its client's input (decrypted over TLS), without the
 * loop: 1 when bytes arrived. EOF and errors are left for the loop to see. */
static int busy_read(struct io_conn *conn, int fd)
{
    struct node_client *c = conn->client;
    struct hy_buf *dst = conn->tls != NULL ? &conn->tls_in : &c->in;
    uint8_t *p = hy_buf_reserve(dst, IO_READ_CHUNK);
    ssize_t r = recv(fd, p, dst->cap - dst->len, MSG_DONTWAIT);
    if (r <= 0) {
        return 0;
    }
    dst->len += (size_t)r;
    size_t before = c->in.len;
    if (conn->tls != NULL) {
        char err[300];
        int rc = io_tls_feed(conn->tls, conn->tls_in.data, conn->tls_in.len, &c->in, &conn->tls_out,
                             err, sizeof(err));
        hy_buf_reset(&conn->tls_in);
        if (rc != 0) {
            return 0; /* the loop closes it when the script is over */
        }
    }
    node_note_net_io(conn->srv->node, c->in.len - before, 0);
    return 1;
}

static void conn_start(struct io_server *srv, struct io_conn *conn);

/* A client connection's handle, before a socket is attached (accepted by the loop, or by
 * busy_accept while a script runs). */
static struct io_conn *conn_alloc(struct io_server *srv)
{
    struct io_conn *conn = hy_xcalloc(1, sizeof(*conn));
    conn->srv = srv;
    hy_buf_init(&conn->inflight);
    uv_tcp_init(srv->loop, &conn->tcp);
    conn->tcp.data = conn;
    return conn;
}

/* Its socket attached: TLS state for a TLS listener's connection, then served. */
static void conn_begin(struct io_server *srv, struct io_conn *conn, int tls)
{
    if (tls) {
        conn->tls = io_tls_new(srv->tls);
        hy_buf_init(&conn->tls_in);
        hy_buf_init(&conn->tls_out);
    }
    conn_start(srv, conn);
}

/* Accepts the connections waiting on listener without the loop (its own accept is only
 * possible from its callback), at most a few per call. */
static void busy_accept(struct io_server *srv, uv_tcp_t *listener, int tls)
{
    uv_os_fd_t lfd = -1;
    if (uv_fileno((uv_handle_t *)listener, &lfd) != 0) {
        return;
    }
    for (int i = 0; i < 16; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            return;
        }
        struct io_conn *conn = conn_alloc(srv);
        if (uv_tcp_open(&conn->tcp, fd) != 0) {
            close(fd);
            uv_close((uv_handle_t *)&conn->tcp, conn_free_unstarted_cb);
            return;
        }
        conn_begin(srv, conn, tls);
    }
}

/*
 * SIGINT and SIGTERM while a Lua script runs. libuv's handler only writes to a pipe that the
 * loop reads in a later step, and a busy script holds the loop in this one: an endless script
 * kept the server from ever stopping. This handler, put in front of libuv's, also raises a
 * flag that the busy poll reads; libuv's handler then runs as before, so the loop shuts down
 * as for any signal once the script has stopped.
 */
static volatile sig_atomic_t busy_stop_signal;
static struct sigaction busy_prev_int, busy_prev_term;

static void busy_signal_handler(int signum)
{
    busy_stop_signal = signum;
    const struct sigaction *prev = signum == SIGINT ? &busy_prev_int : &busy_prev_term;
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(signum);
    }
}

/* Called once libuv has installed its handler for signum (uv_signal_start). */
static void busy_signal_chain(int signum, struct sigaction *prev)
{
    struct sigaction sa;
    if (sigaction(signum, NULL, prev) != 0 || (prev->sa_flags & SA_SIGINFO)) {
        return; /* not libuv's plain handler: leave it alone */
    }
    sa = *prev;
    sa.sa_handler = busy_signal_handler;
    (void)sigaction(signum, &sa, NULL);
}

/*
 * The process must stop while a script is busy. A run that can be killed is stopped here and
 * the loop goes on (a signal then shuts down cleanly, by libuv's callback). A run at apply
 * cannot be stopped part-way (this replica's store would then differ from the others'), and
 * SHUTDOWN NOSAVE asks for a stop at once: the process exits now, as after a crash. Nothing
 * is lost: what was acknowledged is in the fsync'd log, and a run at apply is itself a log
 * entry, run again at restart within script-max-instructions.
 */
static void busy_stop_check(struct io_server *srv)
{
    int nosave = node_busy_shutdown_asked(srv->node);
    int signum = busy_stop_signal;
    if (!nosave && (signum == 0 || srv->busy_stop_seen)) {
        return;
    }
    srv->busy_stop_seen = 1;
    if (!nosave && node_busy_stop(srv->node)) {
        hy_log(srv->log, HY_LOG_WARN, "received %s while a script runs: the script is stopped",
               strsignal(signum));
        return;
    }
    if (nosave) {
        hy_log(srv->log, HY_LOG_WARN, "SHUTDOWN NOSAVE while a script runs: exiting now");
    } else {
        hy_log(srv->log, HY_LOG_ERROR,
               "received %s while a script runs at apply, which cannot be stopped part-way: "
               "exiting now without a clean shutdown (its entry runs again at restart)",
               strsignal(signum));
    }
    fflush(stderr); /* _exit skips stdio: the line above must be out */
    _exit(nosave ? 0 : 1);
}

/*
 * A Lua script runs past busy-reply-threshold inside this loop step (node.h "Busy scripts"):
 * libuv's loop cannot be entered again from here, so this polls the clients' sockets itself,
 * at most once a millisecond, and has the engine answer the requests that arrived (-BUSY,
 * SCRIPT KILL). A client the engine cannot answer now is not read; nor are new connections
 * accepted, nor peers served, until the script ends.
 */
static void busy_poll_cb(void *ctx)
{
    struct io_server *srv = ctx;
    uint64_t now = io_clock_ms();
    /* The peers first: they must hear from this node whatever its clients are told. */
    io_mesh_busy(srv->mesh, node_script_running_ms(srv->node, now), now);
    if (!node_script_busy(srv->node, now)) {
        /* A script not yet past busy-reply-threshold ends soon: a signal waits for libuv's
         * callback and a clean shutdown. (Checked first, a SIGTERM that came while a short
         * script ran at apply made the server exit with 1, as after a crash: seen once in CI
         * when test_partitioned_cluster_scripts stopped its cluster.) */
        return;
    }
    busy_stop_check(srv);
    if (now == srv->busy_polled_ms) {
        return;
    }
    srv->busy_polled_ms = now;
    if (!srv->stopping && srv->listening) {
        busy_accept(srv, &srv->listener, 0);
    }
    if (!srv->stopping && srv->tls_listening) {
        busy_accept(srv, &srv->tls_listener, 1);
    }
    size_t count = 0;
    for (struct io_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        count++;
    }
    if (count == 0) {
        return;
    }
    struct pollfd *fds = hy_xmalloc(count * sizeof(*fds));
    struct io_conn **conns = hy_xmalloc(count * sizeof(*conns));
    nfds_t k = 0;
    for (struct io_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        uv_os_fd_t fd = -1;
        if (conn->closing || conn->client == NULL ||
            !node_busy_can_serve(srv->node, conn->client) ||
            uv_fileno((uv_handle_t *)&conn->tcp, &fd) != 0) {
            continue;
        }
        if (conn->client->out.len > 0 || conn->tls_out.len > 0) {
            /* Replies made earlier in this loop step, before the script started (a PING
             * read in the same step), are due now, as Redis sends them from its busy hook:
             * held until the script ended, their client waited for them and sent nothing
             * more, and a test that waits for -BUSY got its PONG only after the script. A
             * client with a request in flight is not served here: its buffer may be in use
             * further up (a reply built at apply). */
            conn_flush(conn);
            if (conn->closing) {
                continue; /* the write failed: closed (its memory stays until the loop runs) */
            }
            if (conn->client->out.len > 0 || conn->tls_out.len > 0) {
                pending_add(conn);
            }
        }
        fds[k] = (struct pollfd){.fd = fd, .events = POLLIN};
        conns[k++] = conn;
    }
    if (k > 0 && poll(fds, k, 0) > 0) {
        for (nfds_t i = 0; i < k; i++) {
            if ((fds[i].revents & POLLIN) && busy_read(conns[i], fds[i].fd)) {
                node_busy_client(srv->node, conns[i]->client, now);
                conn_flush(conns[i]);
                if (conns[i]->client->out.len > 0 || conns[i]->tls_out.len > 0) {
                    pending_add(conns[i]);
                }
            }
        }
    }
    hy_free(fds);
    hy_free(conns);
    busy_stop_check(srv); /* SHUTDOWN NOSAVE may have been among the requests */
}

static void spin_cb(uv_idle_t *h)
{
    (void)h; /* its presence alone makes the next poll non-blocking */
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The time the loop worked since the previous turn's flush: wall time less the time it
 * waited in poll (libuv's idle-time metric); and the CPU time the loop's thread had meanwhile,
 * which tells a turn slow for its work from one slow for want of a CPU. Reading a thread's
 * CPU clock is a system call (the vDSO serves the wall and monotonic clocks only); read at every
 * turn it was 1.6 system calls per group commit at -P 1 (docs/performance.md). So it is read at
 * most once a millisecond, which always includes a slow turn's end (NODE_SLOW_TURN_MS); the
 * figure then counts at most a millisecond of the turns before it. Other turns report 0. */
static void note_turn(struct io_server *srv)
{
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(srv->loop);
    if (srv->turn_ns == 0) {
        srv->turn_cpu_ns = thread_cpu_ns();
        srv->cpu_read_ns = now;
    } else {
        uint64_t wall = now - srv->turn_ns;
        uint64_t waited = HY_MIN(idle - srv->turn_idle_ns, wall);
        uint64_t cpu_us = 0;
        if (now - srv->cpu_read_ns >= 1000 * 1000) {
            uint64_t cpu = thread_cpu_ns();
            cpu_us = (cpu - srv->turn_cpu_ns) / 1000;
            srv->turn_cpu_ns = cpu;
            srv->cpu_read_ns = now;
        }
        node_note_loop_turn(srv->node, (wall - waited) / 1000, cpu_us, io_clock_ms());
    }
    srv->turn_ns = now;
    srv->turn_idle_ns = idle;
}

/* Writes the replies of the clients the engine answered. */
static void server_flush_clients(struct io_server *srv)
{
    while (srv->pending != NULL) {
        struct io_conn *conn = srv->pending;
        srv->pending = conn->next_pending;
        conn->is_pending = 0;
        conn_flush(conn);
    }
}

static void flush_cb(uv_prepare_t *h)
{
    struct io_server *srv = h->data;
    note_turn(srv);
    /* End of the loop turn: everything proposed during it goes to Raft as one batch. A
     * batch that commits at once can wake clients whose next requests propose again; go
     * round a bounded number of times, then let the loop turn (without blocking in poll). */
    for (int round = 0; round < IO_FLUSH_ROUNDS_MAX; round++) {
        node_flush(srv->node, io_clock_ms());
        server_do_io(srv, 1);
        if (!node_has_proposals(srv->node)) {
            break;
        }
    }
    /* Proposals enter a turn only while this node leads (node_flush refuses them otherwise),
     * so a non-empty turn here always has somewhere to go: keep the loop turning. */
    if (node_wan_pending(srv->node)) {
        io_wan_pump(srv->wan, srv->node, io_clock_ms());
    }
    if (node_migrate_pending(srv->node)) {
        io_migrate_pump(srv->migrate, srv->node, io_clock_ms());
    }
    if (node_has_proposals(srv->node)) {
        uv_idle_start(&srv->spinner, spin_cb);
    } else {
        uv_idle_stop(&srv->spinner);
    }
    server_flush_clients(srv);
}

/* The loop is about to fdatasync a leader's turn itself: what is ready leaves first. */
static void durable_before_sync_cb(void *ctx)
{
    struct io_server *srv = ctx;
    io_mesh_flush_peers(srv->mesh);
    server_flush_clients(srv);
}

static void addr_name(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

static void conn_start(struct io_server *srv, struct io_conn *conn)
{
    struct sockaddr_storage peer, local;
    int len = sizeof(peer);
    char peer_name[64] = "?", local_name[64] = "?";
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&peer, &len) == 0) {
        addr_name(&peer, peer_name, sizeof(peer_name));
    }
    len = sizeof(local);
    if (uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&local, &len) == 0) {
        addr_name(&local, local_name, sizeof(local_name));
    }
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)&conn->tcp, &fd);
    conn->client = node_client_new(srv->node, peer_name, local_name, fd, io_clock_ms());
    conn->client->shell = conn;
    conn->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = conn;
    }
    srv->conns = conn;
    uv_tcp_nodelay(&conn->tcp, 1);
    if (conn->client->flags & NODE_CLIENT_CLOSE_AFTER_REPLY) {
        pending_add(conn); /* maxclients: send the error, then close */
        return;
    }
    uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);
}

static void conn_free_unstarted_cb(uv_handle_t *h)
{
    struct io_conn *conn = h->data;
    hy_buf_free(&conn->inflight);
    hy_free(conn);
}

static void accept_on(uv_stream_t *listener, int status, int tls);

static void on_connection(uv_stream_t *listener, int status)
{
    accept_on(listener, status, 0);
}

static void on_tls_connection(uv_stream_t *listener, int status)
{
    accept_on(listener, status, 1);
}

static void accept_on(uv_stream_t *listener, int status, int tls)
{
    struct io_server *srv = listener->data;
    if (status < 0) {
        hy_log(srv->log, HY_LOG_WARN, "accept failed: %s", uv_strerror(status));
        node_note_rejected_connection(srv->node);
        return;
    }
    struct io_conn *conn = conn_alloc(srv);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 || srv->stopping) {
        uv_close((uv_handle_t *)&conn->tcp, conn_free_unstarted_cb);
        return;
    }
    conn_begin(srv, conn, tls);
}

static void server_shutdown(struct io_server *srv, const char *why);

/* Hands the HTTP thread a fresh snapshot of the node, with the facts only the shell has: the
 * WAL's fsync times and each peer link's dropped frames. */
static void server_publish(struct io_server *srv)
{
    if (srv->obs == NULL) {
        return; /* not started yet */
    }
    struct node_observation *o = srv->obs;
    node_observe(srv->node, io_clock_ms(), o);
    o->stopping = srv->stopping != 0;
    io_durable_sync_times(srv->durable, &o->wal_fsync);
    struct io_alerts_stats as;
    io_alerts_stats(srv->alerts, &as);
    o->alerts_sent = as.sent;
    o->alerts_failed = as.failed;
    o->alerts_rate_limited = as.rate_limited;
    o->alerts_queue_full = as.queue_full;
    o->alerts_retries = as.retries;
    o->wal_fsync_age_ms = io_durable_last_sync_age_ms(srv->durable);
    node_set_wal_loop_commits(srv->node, io_durable_loop_commits(srv->durable),
                              io_durable_loop_sync_pauses(srv->durable));
    if (o->wal_fsync_age_ms >= 0) {
        uint64_t now = io_clock_ms();
        node_set_wal_last_sync(srv->node, now - HY_MIN((uint64_t)o->wal_fsync_age_ms, now - 1));
    }
    io_durable_snapshot_file_times(srv->durable, &o->snapshot_file);
    struct statvfs fs;
    if (statvfs(srv->cfg->data_dir, &fs) == 0) {
        o->disk_total_bytes = (uint64_t)fs.f_blocks * fs.f_frsize;
        o->disk_free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
    }
    for (size_t i = 0; i < o->member_count; i++) {
        struct observe_member *m = &o->members[i];
        struct peer_stats ps;
        if (!m->is_self && io_mesh_peer_stats(srv->mesh, m->name, &ps)) {
            m->has_link_stats = 1;
            m->dropped_full = ps.dropped_full;
            m->dropped_down = ps.dropped_down;
            m->beacons_sent = ps.beacons_sent;
            m->pings_sent = ps.pings_sent;
            m->frames_recv = ps.frames_recv;
            m->idle_closes = ps.idle_closes;
            m->link_parked = ps.parked;
        }
    }
    io_http_publish(srv->http, o);
    struct observe_health health;
    observe_health_score(o, &health);
    char reasons[512] = "";
    for (size_t i = 0, at = 0; i < health.reason_count && at < sizeof(reasons); i++) {
        at += (size_t)snprintf(reasons + at, sizeof(reasons) - at, "%s%s", i ? "; " : "",
                               health.reasons[i]);
    }
    node_set_health(srv->node, health.node_score, health.cluster_score, reasons);
    /* New cluster events for /events streams (older than the node keeps: skipped). */
    uint64_t last = node_events_last_id(srv->node);
    for (uint64_t id = srv->alerts_last_event + 1; srv->alerts != NULL && id <= last; id++) {
        const char *json = node_event_get(srv->node, id);
        if (json != NULL && io_alerts_wanted(json)) {
            char body[600];
            snprintf(body, sizeof(body), "{\"node\":\"%s\",\"cluster\":\"%s\",%s",
                     srv->cfg->node_id, srv->cfg->cluster_name, json + 1);
            io_alerts_push(srv->alerts, body);
        }
    }
    srv->alerts_last_event = last;
    for (uint64_t id = io_http_events_last(srv->http) + 1; srv->http != NULL && id <= last; id++) {
        const char *json = node_event_get(srv->node, id);
        if (json != NULL) {
            io_http_event(srv->http, id, json);
        }
    }
}

/* Resident bytes of this process (/proc/self/statm), or 0 when unknown. */
static size_t rss_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char text[128];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    text[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(text, "%llu %llu", &size, &resident) != 2) {
        return 0;
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* glibc gives freed memory back to the kernel only from the top of a heap: the pages that a
 * pipelined load's transient buffers (requests, log entries, replies) freed between the keys'
 * objects stay resident, 35-40 bytes per key for 100,000 small sets (docs/performance.md
 * "Memory per key"). jemalloc, Redis's allocator, purges such pages as they age. Here, at most
 * every IO_PURGE_PERIOD_MS, when RSS exceeds used_memory by 1 MiB + used_memory/16 more than
 * the smallest gap seen (hy_alloc_purge_due), malloc_trim hands every free page of every arena
 * back (madvise): used_memory does not change, RSS does. */
#define IO_PURGE_PERIOD_MS 1000

static void memory_purge(struct io_server *srv, uint64_t now_ms)
{
#ifdef __GLIBC__
    if (now_ms - srv->purge_at < IO_PURGE_PERIOD_MS) {
        return;
    }
    srv->purge_at = now_ms;
    if (hy_alloc_purge_due(hy_alloc_used_bytes(), rss_bytes(), &srv->purge_base)) {
        (void)malloc_trim(0);
        hy_alloc_purge_done(hy_alloc_used_bytes(), rss_bytes(), &srv->purge_base);
    }
#else
    (void)srv;
    (void)now_ms;
#endif
}

static void cron_cb(uv_timer_t *t)
{
    struct io_server *srv = t->data;
    server_publish(srv);
    if (node_cron(srv->node, io_clock_ms()) > 0) {
        server_sweep(srv);
    }
    io_wan_pump(srv->wan, srv->node, io_clock_ms());
    server_do_io(srv, 0);
    memory_purge(srv, io_clock_ms());
    if (node_drained(srv->node)) {
        server_shutdown(srv, node_drain_outcome(srv->node));
    }
}

static void server_close_handles(struct io_server *srv)
{
    uv_close((uv_handle_t *)&srv->cron, NULL);
    uv_close((uv_handle_t *)&srv->raft_timer, NULL);
    uv_close((uv_handle_t *)&srv->shutdown_timer, NULL);
    uv_close((uv_handle_t *)&srv->flusher, NULL);
    uv_close((uv_handle_t *)&srv->spinner, NULL);
    uv_close((uv_handle_t *)&srv->ticker, NULL);
    uv_close((uv_handle_t *)&srv->tick_spinner, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sighup, NULL);
    /* Closing libuv's last watcher of a signal puts back its default action, which for
     * SIGTERM and SIGINT is to die: a SIGTERM that came now, while the clean stop under way
     * syncs and frees, killed the process (seen in CI: a drain stopped the node and the test's
     * SIGTERM landed in that window, exit -15). The stop is already what the signal asks for. */
    (void)signal(SIGINT, SIG_IGN);
    (void)signal(SIGTERM, SIG_IGN);
}

static void server_maybe_finish(struct io_server *srv)
{
    if (srv->conns == NULL && srv->stopping == 1) {
        srv->stopping = 2;
        node_set_early_sender(srv->node, NULL, NULL); /* the mesh goes away below */
        node_set_snapshot_loader(srv->node, NULL, NULL);
        node_set_snapshot_receiver(srv->node, NULL, NULL, NULL, NULL);
        io_snapshotter_close(srv->snapshotter, NULL, NULL);
        srv->snapshotter = NULL;
        io_durable_stop(srv->durable);
        io_mesh_close(srv->mesh, NULL, NULL);
        srv->mesh = NULL;
        server_close_handles(srv);
    }
}

static void shutdown_timeout_cb(uv_timer_t *t)
{
    struct io_server *srv = t->data;
    hy_log(srv->log, HY_LOG_WARN, "shutdown: closing clients that did not take their replies");
    while (srv->conns != NULL) {
        conn_close(srv->conns);
    }
}

/* Graceful shutdown: stop accepting and reading, flush every reply, close, exit 0. */
static void server_shutdown(struct io_server *srv, const char *why)
{
    if (srv->stopping) {
        return;
    }
    hy_log(srv->log, HY_LOG_INFO, "%s, shutting down", why);
    srv->stopping = 1;
    server_publish(srv); /* /health/ready turns 503 at once: load balancers move away */
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
    if (srv->tls_listening) {
        uv_close((uv_handle_t *)&srv->tls_listener, NULL);
    }
    uv_timer_stop(&srv->cron);
    uv_timer_stop(&srv->raft_timer);
    for (struct io_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->client->flags |= NODE_CLIENT_CLOSE_AFTER_REPLY;
        pending_add(conn);
    }
    uv_timer_start(&srv->shutdown_timer, shutdown_timeout_cb, IO_SHUTDOWN_WAIT_MS, 0);
    server_maybe_finish(srv);
}

/* SIGINT/SIGTERM from the moment the client port listens until the loop's own handlers are
 * installed (server_start_handles): a client may already see the port open, and the default
 * action killed the process with no clean stop (CI: a test's SIGTERM right after the port
 * opened, while the peer transport was still being set up, exit -15). Noted here, acted on
 * once the handlers are in place. */
static volatile sig_atomic_t start_stop_signal;

static void start_signal_handler(int signum)
{
    start_stop_signal = signum;
}

static void start_signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = start_signal_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    start_stop_signal = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    char why[64];
    snprintf(why, sizeof(why), "received %s", strsignal(signum));
    server_shutdown(s->data, why);
}

/* *initialized_out is set once the listener handle exists (it must then be closed). */
static int listen_on(struct io_server *srv, uv_tcp_t *h, int64_t port, uv_connection_cb cb,
                     int *initialized_out)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(srv->cfg->bind, (int)port, (struct sockaddr_in *)&addr);
    if (rc != 0) {
        rc = uv_ip6_addr(srv->cfg->bind, (int)port, (struct sockaddr_in6 *)&addr);
    }
    if (rc == 0) {
        uv_tcp_init(srv->loop, h);
        h->data = srv;
        *initialized_out = 1;
        rc = uv_tcp_bind(h, (const struct sockaddr *)&addr, 0);
    }
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)h, 511, cb);
    }
    if (rc != 0) {
        hy_log(srv->log, HY_LOG_ERROR, "cannot listen on %s:%lld: %s", srv->cfg->bind,
               (long long)port, uv_strerror(rc));
    }
    return rc;
}

/* The tls-* settings a context is built from, as one string to compare. */
static char *tls_settings(const struct hy_config *cfg)
{
    struct hy_buf b;
    hy_buf_init(&b);
    hy_buf_printf(&b, "%s\n%s\n%s\n%s\n%lld\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%lld %lld %lld %lld",
                  cfg->tls_cert_file, cfg->tls_key_file, cfg->tls_key_file_pass,
                  cfg->tls_ca_cert_file, (long long)cfg->tls_auth_clients, cfg->tls_protocols,
                  cfg->tls_ca_cert_dir, cfg->tls_client_cert_file, cfg->tls_client_key_file,
                  cfg->tls_client_key_file_pass, cfg->tls_ciphers, cfg->tls_ciphersuites,
                  (long long)cfg->tls_prefer_server_ciphers, (long long)cfg->tls_session_caching,
                  (long long)cfg->tls_session_cache_size,
                  (long long)cfg->tls_session_cache_timeout);
    hy_buf_append_u8(&b, 0);
    char *s = hy_xstrdup((const char *)b.data);
    hy_buf_free(&b);
    return s;
}

/* A new TLS context from cfg (`force`: even if its settings did not change, as on SIGHUP:
 * the files may have). New connections use it; open ones keep theirs. On failure the old
 * one stays and err says why. */
static int tls_reload(struct io_server *srv, const struct hy_config *cfg, int force, char *err,
                      size_t cap)
{
    int http = srv->http != NULL && srv->cfg->tls_http;
    int cluster = srv->mesh != NULL && srv->cfg->tls_cluster;
    if (srv->tls == NULL && !http && !cluster) {
        return 0; /* no tls-port, tls-http nor tls-cluster: the settings wait for a restart */
    }
    char *now = tls_settings(cfg);
    if (!force && srv->tls_loaded != NULL && strcmp(now, srv->tls_loaded) == 0) {
        hy_free(now);
        return 0;
    }
    /* All or none: the client and peer ports' contexts are built first, swapped in only
     * once the HTTPS daemon took the same certificate. */
    struct io_tls_ctx *fresh = NULL, *fresh_peer = NULL;
    if ((srv->tls != NULL && (fresh = io_tls_ctx_new(cfg, err, cap)) == NULL) ||
        io_mesh_tls_prepare(srv->mesh, cfg, &fresh_peer, err, cap) != 0 ||
        (http && io_http_reload(srv->http, cfg, err, cap) != 0)) {
        io_tls_ctx_free(fresh);
        io_tls_ctx_free(fresh_peer);
        hy_free(now);
        return -1;
    }
    if (fresh != NULL) {
        io_tls_ctx_free(srv->tls);
        srv->tls = fresh;
    }
    io_mesh_tls_swap(srv->mesh, fresh_peer);
    hy_free(srv->tls_loaded);
    srv->tls_loaded = now;
    hy_log(srv->log, HY_LOG_INFO, "TLS: certificates (re)loaded from %s", cfg->tls_cert_file);
    return 0;
}

static int config_hook(void *ctx, const struct hy_config *cfg, char *err, size_t cap)
{
    struct io_server *srv = ctx;
    int rc = tls_reload(srv, cfg, 0, err, cap);
    if (rc == 0 && srv->durable != NULL) {
        io_durable_configure(srv->durable, cfg); /* durability, fsync-interval-ms */
    }
    return rc;
}

static int rewrite_hook(void *ctx, const struct hy_config *cfg, char *err, size_t cap)
{
    (void)ctx;
    return config_rewrite_file(cfg, err, cap) == HY_OK ? 0 : -1;
}

static void sighup_cb(uv_signal_t *s, int signum)
{
    (void)signum;
    struct io_server *srv = s->data;
    char err[600];
    if (tls_reload(srv, srv->cfg, 1, err, sizeof(err)) != 0) {
        hy_log(srv->log, HY_LOG_ERROR, "SIGHUP: TLS reload failed, the old certificates stay: %s",
               err);
    }
}

static int server_listen(struct io_server *srv, int *initialized_out)
{
    int rc = 0;
    if (srv->cfg->port > 0) { /* port 0: TLS only (config_check asked for tls-port) */
        rc = listen_on(srv, &srv->listener, srv->cfg->port, on_connection, initialized_out);
        srv->listening = *initialized_out;
    }
    if (rc != 0 || srv->cfg->tls_port == 0) {
        return rc;
    }
    char err[600];
    srv->tls = io_tls_ctx_new(srv->cfg, err, sizeof(err));
    if (srv->tls == NULL) {
        hy_log(srv->log, HY_LOG_ERROR, "TLS: %s", err);
        return -1;
    }
    srv->tls_loaded = tls_settings(srv->cfg);
    return listen_on(srv, &srv->tls_listener, srv->cfg->tls_port, on_tls_connection,
                     &srv->tls_listening);
}

/* Room for maxclients sockets plus our own descriptors, as far as the hard limit allows. */
static void server_raise_nofile(struct io_server *srv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t want = (rlim_t)srv->cfg->maxclients + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
            hy_log(srv->log, HY_LOG_WARN, "open file limit %llu is below maxclients + 64",
                   (unsigned long long)rl.rlim_cur);
        }
    }
}

static void server_start_handles(struct io_server *srv)
{
    uv_timer_init(srv->loop, &srv->cron);
    uv_timer_init(srv->loop, &srv->raft_timer);
    uv_timer_init(srv->loop, &srv->shutdown_timer);
    uv_prepare_init(srv->loop, &srv->flusher);
    uv_idle_init(srv->loop, &srv->spinner);
    srv->spinner.data = srv;
    uv_idle_init(srv->loop, &srv->tick_spinner);
    uv_check_init(srv->loop, &srv->ticker);
    srv->ticker.data = srv;
    uv_signal_init(srv->loop, &srv->sigint);
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_init(srv->loop, &srv->sighup);
    srv->sighup.data = srv;
    srv->cron.data = srv->shutdown_timer.data = srv->flusher.data = srv->raft_timer.data = srv;
    node_set_busy_poll(srv->node, busy_poll_cb, srv);
    srv->sigint.data = srv->sigterm.data = srv;
    uint64_t period_ms = (uint64_t)(1000 / srv->cfg->hz);
    uv_timer_start(&srv->cron, cron_cb, period_ms, period_ms);
    uv_unref((uv_handle_t *)&srv->shutdown_timer);
    uv_prepare_start(&srv->flusher, flush_cb);
    uv_check_start(&srv->ticker, ticker_cb);
    uv_signal_start(&srv->sigint, signal_cb, SIGINT);
    uv_signal_start(&srv->sigterm, signal_cb, SIGTERM);
    busy_signal_chain(SIGINT, &busy_prev_int);
    busy_signal_chain(SIGTERM, &busy_prev_term);
    uv_signal_start(&srv->sighup, sighup_cb, SIGHUP);
    uv_unref((uv_handle_t *)&srv->sighup);
}

/* A start that failed after the WAL opened: close everything opened so far (the client
 * listener too, or the loop below would wait on it for ever), let the handles finish closing,
 * and leave the caller to exit non-zero. The reason was logged where it happened. */
static void server_abort_start(struct io_server *srv, int listening)
{
    if (listening) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
    if (srv->tls_listening) {
        uv_close((uv_handle_t *)&srv->tls_listener, NULL);
    }
    io_http_close(srv->http);
    io_alerts_close(srv->alerts);
    srv->alerts = NULL;
    io_wan_close(srv->wan);
    srv->wan = NULL;
    io_migrate_close(srv->migrate);
    srv->migrate = NULL;
    srv->http = NULL;
    io_tls_ctx_free(srv->tls);
    srv->tls = NULL;
    hy_free(srv->tls_loaded);
    io_durable_stop(srv->durable);
    uv_run(srv->loop, UV_RUN_DEFAULT); /* lets the WAL thread's handles close */
    io_durable_close(srv->durable);
    node_destroy(srv->node);
    (void)uv_loop_close(srv->loop);
    hy_log(srv->log, HY_LOG_ERROR, "halyard could not start; exiting");
}

int io_server_run(struct hy_config *cfg, struct hy_log *log)
{
    struct io_server srv;
    memset(&srv, 0, sizeof(srv));
    srv.loop = uv_default_loop();
    uv_loop_configure(srv.loop, UV_METRICS_IDLE_TIME); /* note_turn */
    srv.cfg = cfg;
    srv.log = log;
    signal(SIGPIPE, SIG_IGN);
    server_raise_nofile(&srv);
    int id_rc = io_identity_load(cfg, log);
    if (id_rc != HY_OK) {
        return id_rc == HY_ECLOSED ? 1 : 2; /* ECLOSED: a signal stopped a --join */
    }
    uint64_t now = io_clock_ms();
    srv.node = node_create(cfg, log, now ^ ((uint64_t)getpid() << 32), now);
    if (srv.node == NULL) {
        return 2;
    }
    if (io_durable_open(srv.loop, srv.node, cfg, log, durable_progress_cb, durable_send_cb, &srv,
                        &srv.durable) != HY_OK) {
        node_destroy(srv.node);
        return 1;
    }
    io_durable_set_before_sync(srv.durable, durable_before_sync_cb, &srv);
    int listening = 0, rc = io_identity_save(cfg, log);
    start_signals_catch();
    if (rc == HY_OK) {
        rc = server_listen(&srv, &listening) != 0 ? HY_EIO : HY_OK;
    }
    if (rc == HY_OK) {
        rc = io_http_open(cfg, log, &srv.http);
    }
    if (rc == HY_OK) {
        rc = io_alerts_open(cfg->alert_webhooks, (uint32_t)cfg->alert_rate_max,
                            (uint64_t)cfg->alert_rate_window_ms, log, &srv.alerts);
    }
    if (rc == HY_OK) {
        /* Idle until a WAN link has something to ship. */
        rc = io_wan_open(srv.loop, srv.node, log, &srv.wan);
    }
    if (rc == HY_OK) {
        rc = io_migrate_open(srv.loop, srv.node, log, &srv.migrate);
    }
    if (rc == HY_OK && srv.tls_loaded == NULL && (cfg->tls_http || cfg->tls_cluster)) {
        srv.tls_loaded = tls_settings(cfg); /* what HTTPS and the peer port are built from */
    }
    node_set_hash(srv.node, peer_auth_sha256); /* ACL passwords in the aclfile, below */
    node_set_files(srv.node, io_file_read, io_file_write);
    char acl_err[700];
    if (rc == HY_OK && node_aclfile_check(srv.node, acl_err, sizeof(acl_err)) != 0) {
        hy_log(log, HY_LOG_ERROR, "aclfile: %s", acl_err); /* refused, as Redis does */
        rc = HY_ECONFIG;
    }
    if (rc == HY_OK) {
        rc = io_mesh_open(srv.loop, srv.node, cfg, log, durable_progress_cb, &srv, &srv.mesh);
    }
    if (rc != HY_OK) {
        server_abort_start(&srv, listening);
        return rc == HY_ECONFIG ? 2 : 1; /* 2: the settings cannot work, as for a bad flag */
    }
    if (srv.mesh != NULL) {
        node_set_early_sender(srv.node, io_mesh_send_one, srv.mesh);
    }
    node_set_crypto(srv.node, peer_auth_mac, peer_auth_random);
    node_set_hash(srv.node, peer_auth_sha256);
    node_set_config_hook(srv.node, config_hook, &srv);
    node_set_rewrite_hook(srv.node, rewrite_hook, &srv);
    srv.snapshotter = io_snapshotter_open(srv.loop, srv.node, log);
    server_start_handles(&srv);
    if (start_stop_signal != 0) {
        char why[80];
        snprintf(why, sizeof(why), "received %s while starting", strsignal(start_stop_signal));
        server_shutdown(&srv, why);
    }
    server_do_io(&srv, 0);
    srv.obs = hy_xmalloc(sizeof(*srv.obs));
    server_publish(&srv);
    hy_log(log, HY_LOG_INFO, "halyard listening on %s:%lld%s (data dir %s)", cfg->bind,
           (long long)(cfg->port > 0 ? cfg->port : cfg->tls_port),
           cfg->port > 0 ? "" : " (TLS only: port 0)", cfg->data_dir);
    if (srv.http != NULL) {
        hy_log(log, HY_LOG_INFO, "%s endpoints on %s:%lld (/health, /metrics)",
               cfg->tls_http ? "https" : "http", cfg->bind, (long long)cfg->http_port);
    }
    if (srv.tls != NULL) {
        hy_log(log, HY_LOG_INFO, "TLS clients on %s:%lld", cfg->bind, (long long)cfg->tls_port);
    }
    uv_run(srv.loop, UV_RUN_DEFAULT);
    io_http_close(srv.http);
    io_alerts_close(srv.alerts);
    io_wan_close(srv.wan);
    io_migrate_close(srv.migrate);
    uv_run(srv.loop, UV_RUN_DEFAULT); /* lets the WAN sender's and MIGRATE's handles close */
    hy_free(srv.obs);
    io_durable_close(srv.durable);
    node_destroy(srv.node);
    uv_loop_close(srv.loop);
    io_tls_ctx_free(srv.tls);
    hy_free(srv.tls_loaded);
    hy_log(log, HY_LOG_INFO, "halyard stopped");
    return 0;
}
