/*
 * peer.c - the peer transport on libuv (see peer.h and docs/peer-protocol.md).
 *
 * Shape: one listener; per peer one outbound connection (dialled, redialled with backoff) and
 * at most one authenticated inbound connection; one tick timer that sends PINGs, the node
 * pair's liveness beacon and enforces the handshake and liveness deadlines; one prepare handle
 * that flushes every connection's queued frames once per loop turn, so the messages of one
 * turn leave in one write.
 *
 * Coalesced heartbeats (DESIGN.md §7): the Raft messages that are heartbeats or their answers
 * (wire_heartbeat_fits), whatever their group, wait in the connection's heartbeat batch and
 * leave as one HEARTBEAT frame per loop turn; any other frame queued meanwhile seals the batch
 * first, so a connection's messages keep their order. With beacon_ms set, a connection that
 * sent nothing for beacon_ms sends an empty HEARTBEAT: the node pair's liveness signal, which
 * is all that crosses an idle link once every group is quiesced. A peer from which nothing
 * arrived for suspect_ms is reported suspected (liveness_cb), without closing anything. Once
 * peer_transport_set_beacons named the peers to beacon to (gossip's ring neighbours), the
 * others get none: their links carry PINGs and whatever the node sends, and gossip's probes
 * watch them.
 *
 * Idle links (peer.h): a link off the ring is judged by what arrives from its peer on either
 * connection (peer_heard), so the gossip and Raft traffic of the pair keeps both of its
 * connections alive and PINGs go out only after a silence; with idle_close_ms its dialler
 * parks it (closes it quietly) once it carried nothing but keepalive for that long, and
 * dials it again on demand (peer_slot), the frames waiting in `hold` for the handshake.
 */
#include "io/peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/prng.h"
#include "io/peer_auth.h"
#include "io/tls.h"

#define PEER_READ_CHUNK          (64 * 1024)
#define PEER_HANDSHAKES_MAX      (4 * PEER_MAX)
#define PEER_HANDSHAKE_FRAME_MAX 1024
/* Room for a heartbeat with a few entries; below it Raft could not work at all. */
#define PEER_FRAME_BYTES_MIN     4096
#define PEER_BUF_KEEP_BYTES      (1024 * 1024)
#define REFUSAL_LOG_MS           10000
/* A link off gossip's ring PINGs this many times less often (conn_ping_ms). */
#define PEER_OFF_RING_PINGS      4
#define PEER_REFUSAL_SLOTS       8
/* Entries per HEARTBEAT frame before it is sealed (68 bytes each: about 68 KiB). */
#define PEER_HEARTBEAT_BATCH_MAX 1024
/* WAN links (peer.h wan_cb): at most this many at once; one silent this long is closed (its
 * source dials again before it would: io/wan_link.c). */
#define PEER_WAN_LINKS_MAX       64
#define PEER_WAN_IDLE_MS         (5u * 60 * 1000)

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_UP, CONN_DRAINING };

struct peer;

struct peer_conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    struct peer_transport *t;
    struct peer *peer; /* outbound: always; inbound: once authenticated */
    int outbound;
    enum conn_state state;
    int writing, closing;
    struct peer_hs hs;
    struct wire_reader reader;
    struct hy_buf in;
    struct hy_buf pending; /* frames queued, not yet handed to libuv */
    struct hy_buf hb;      /* heartbeat entries waiting to leave in one HEARTBEAT frame */
    /* Outbound, dialled on demand for a parked peer: frames waiting for the handshake to end
     * (then moved behind its output in `pending`). */
    struct hy_buf hold;
    uint32_t hb_count;
    uint64_t last_send_ms; /* when a frame was last queued (the beacon) */
    uint64_t last_use_ms;  /* when a frame other than keepalive was last queued (idle_close_ms) */
    int idle_close;        /* closed for idleness: quietly, the peer stays up (parked) */
    uint64_t last_ping_ms;
    struct hy_buf inflight; /* bytes of the write in progress */
    /* tls-cluster: records in from the socket, records out not yet handed to libuv (frames
     * wait in `pending` until the TLS handshake is done, then become records here). */
    struct io_tls *tls;
    struct hy_buf tls_in, tls_out;
    uint64_t started_ms, last_recv_ms;
    /* peer_transport_busy_pump: the frames in in[0..busy_off) were looked at and left for
     * the loop (they are dispatched in order once the script is over). */
    size_t busy_off;
    /* conn_process is dispatching this connection's frames (a script may be running inside
     * one): its input is in use, and the busy pump leaves it alone. */
    int dispatching;
    char addr[PEER_HOST_MAX + 16];
    uint64_t wan; /* a WAN link's connection (peer.h wan_cb): its id; 0: a member's */
    char remote_host[INET6_ADDRSTRLEN]; /* the other end's IP address ("" when unknown) */
    struct peer_conn *prev, *next;
};

struct peer {
    struct peer_addr addr;
    struct peer_transport *t;
    struct peer_conn *out; /* outbound connection (any state), NULL between attempts */
    struct peer_conn *in;  /* authenticated inbound connection */
    uv_timer_t retry;
    uint32_t attempts; /* consecutive failed dials, for the backoff */
    struct peer_stats stats;
    int active;    /* 0: left the peer list (its slot and timer wait for reuse) */
    int guest;     /* admitted, not listed (admit_cb): no address, never dialled, its frames
                      go on the connection it dialled, and the slot goes with that one */
    int suspected; /* liveness_cb(0) reported and not yet taken back */
    int beacon;    /* its idle link gets beacons (peer_transport_set_beacons) */
};

struct peer_refusal {
    char id[WIRE_NAME_MAX + 1];
    int by_peer;
    uint64_t logged_ms;
    uint64_t quiet; /* refusals since, not logged */
};

struct peer_transport {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t tick;
    uv_prepare_t flusher;
    uv_timer_t resume;      /* after a busy pump: dispatches the frames it left (busy_off) */
    struct peer_config cfg; /* string fields point at the copies below */
    struct io_tls_ctx *tls; /* borrowed (peer_transport_set_tls); NULL: clear text */
    char self_id[WIRE_NAME_MAX + 1];
    char cluster[WIRE_NAME_MAX + 1];
    uint8_t *secret;
    struct peer_hs_config hs_cfg;
    struct peer_callbacks cbs;
    struct peer peers[PEER_MAX];
    size_t n_peers;
    struct peer_conn *conns; /* every open connection */
    struct hy_prng prng;
    uint64_t ping_token;
    uint64_t wan_ids; /* the last WAN link connection's id */
    uint64_t last_tick_ms;
    int beacons_listed; /* peer_transport_set_beacons was called: a peer added since gets none */
    int dialling_on_demand; /* peer_slot is dialling a parked link (peer_report_down waits) */
    struct peer_refusal refusals[PEER_REFUSAL_SLOTS]; /* refusal_quiet */
    uint16_t port;
    int closing;
    int handles_open;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void conn_close(struct peer_conn *c, const char *reason);
static void peer_schedule_dial(struct peer *p);
static int refusal_quiet(struct peer_transport *t, const char *who, int by_peer, uint64_t now,
                         char *again, size_t cap);

void peer_config_default(struct peer_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = "0.0.0.0";
    cfg->queue_bytes_max = 8u << 20;
    cfg->ping_interval_ms = 250;
    cfg->ping_timeout_ms = 2000;
    cfg->handshake_timeout_ms = 2000;
    cfg->backoff_min_ms = 50;
    cfg->backoff_max_ms = 2000;
    cfg->coalesce = 1;
    wire_limits_default(&cfg->limits);
}

int peer_addr_parse(const char *spec, struct peer_addr *out)
{
    memset(out, 0, sizeof(*out));
    const char *at = strchr(spec, '@');
    const char *colon = strrchr(spec, ':');
    if (at == NULL || colon == NULL || colon < at ||
        !wire_name_valid((const uint8_t *)spec, (size_t)(at - spec))) {
        return HY_ECONFIG;
    }
    memcpy(out->id, spec, (size_t)(at - spec));
    const char *host = at + 1;
    size_t host_len = (size_t)(colon - host);
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    if (host_len == 0 || host_len > PEER_HOST_MAX) {
        return HY_ECONFIG;
    }
    memcpy(out->host, host, host_len);
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535) {
        return HY_ECONFIG;
    }
    out->port = (uint16_t)port;
    return HY_OK;
}

/* The slot of `id`, active or not. */
static struct peer *peer_slot_of(const struct peer_transport *t, const char *id)
{
    for (size_t i = 0; i < t->n_peers; i++) {
        if (strcmp(t->peers[i].addr.id, id) == 0) {
            return (struct peer *)&t->peers[i];
        }
    }
    return NULL;
}

static struct peer *peer_find(const struct peer_transport *t, const char *id)
{
    for (size_t i = 0; i < t->n_peers; i++) {
        if (t->peers[i].active && strcmp(t->peers[i].addr.id, id) == 0) {
            return (struct peer *)&t->peers[i];
        }
    }
    return NULL;
}

/* The handshake's question: a peer, or a node the engine admits as a guest. */
static int peer_known_cb(void *ctx, const char *id)
{
    struct peer_transport *t = ctx;
    return peer_find(t, id) != NULL ||
           (t->cbs.admit_cb != NULL && t->cbs.admit_cb(t->cbs.ctx, id, 0));
}

/* ---- connection lifetime -------------------------------------------------------------------- */

static void handle_closed(struct peer_transport *t)
{
    HY_ASSERT(t->handles_open > 0);
    if (--t->handles_open == 0 && t->closing) {
        void (*cb)(void *) = t->close_cb;
        void *arg = t->close_arg;
        hy_free(t->secret);
        hy_free(t);
        if (cb != NULL) {
            cb(arg);
        }
    }
}

static void handle_closed_cb(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void retry_closed_cb(uv_handle_t *h)
{
    const struct peer *p = h->data;
    handle_closed(p->t);
}

static struct peer_conn *conn_new(struct peer_transport *t, int outbound)
{
    struct peer_conn *c = hy_xcalloc(1, sizeof(*c));
    c->t = t;
    c->outbound = outbound;
    c->started_ms = c->last_recv_ms = uv_now(t->loop);
    /* Until the peer is authenticated only small handshake frames are accepted, so a
     * stranger cannot make us reserve frame_bytes_max bytes per connection. */
    struct wire_limits hs_limits = t->cfg.limits;
    hs_limits.frame_bytes_max = PEER_HANDSHAKE_FRAME_MAX;
    wire_reader_init(&c->reader, &hs_limits);
    hy_buf_init(&c->in);
    hy_buf_init(&c->pending);
    hy_buf_init(&c->hb);
    hy_buf_init(&c->hold);
    hy_buf_init(&c->inflight);
    hy_buf_init(&c->tls_in);
    hy_buf_init(&c->tls_out);
    HY_ASSERT(uv_tcp_init(t->loop, &c->tcp) == 0);
    c->tcp.data = c;
    t->handles_open++;
    c->next = t->conns;
    if (t->conns != NULL) {
        t->conns->prev = c;
    }
    t->conns = c;
    return c;
}

static void conn_closed_cb(uv_handle_t *h)
{
    struct peer_conn *c = h->data;
    struct peer_transport *t = c->t;
    wire_reader_free(&c->reader);
    hy_buf_free(&c->in);
    hy_buf_free(&c->pending);
    hy_buf_free(&c->hb);
    hy_buf_free(&c->hold);
    hy_buf_free(&c->inflight);
    hy_buf_free(&c->tls_in);
    hy_buf_free(&c->tls_out);
    io_tls_free(c->tls);
    hy_free(c);
    handle_closed(t);
}

static void conn_unlink(struct peer_conn *c)
{
    struct peer_transport *t = c->t;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        t->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

/* The peer is no longer up (its link broke, or a dial on demand of its parked link failed):
 * logged and reported once. A dial on demand that fails at once does so inside a send, where
 * no callback may run: the peer stays parked, and retry_cb reports it. */
static void peer_report_down(struct peer *p, const char *reason)
{
    struct peer_transport *t = p->t;
    if (t->dialling_on_demand) {
        return;
    }
    p->stats.parked = 0;
    if (p->stats.up && t->closing) {
        p->stats.up = 0;
    } else if (p->stats.up) {
        p->stats.up = 0;
        hy_log(t->cfg.log, HY_LOG_WARN, "peer %s: down: %s", p->addr.id, reason);
        if (t->cbs.state_cb != NULL) {
            t->cbs.state_cb(t->cbs.ctx, p->addr.id, 0, reason);
        }
    }
}

/* Detaches c from its peer; an outbound connection that was up reports the peer down, unless
 * it was closed for idleness (the peer stays up, parked, and is dialled on demand). */
static void conn_detach(struct peer_conn *c, const char *reason)
{
    struct peer *p = c->peer;
    if (p == NULL) {
        return;
    }
    if (!c->outbound) {
        if (p->in == c) {
            p->in = NULL;
            if (p->guest) { /* its only link: it is down, and its slot free again */
                peer_report_down(p, reason);
                p->guest = 0;
                p->active = 0;
            }
        }
        return;
    }
    HY_ASSERT(p->out == c);
    p->out = NULL;
    p->stats.queued_bytes = 0;
    struct peer_transport *t = c->t;
    if (c->idle_close && !t->closing && p->active) {
        p->stats.parked = 1;
        p->stats.idle_closes++;
        hy_log(t->cfg.log, HY_LOG_DEBUG, "peer %s: idle link closed (dialled again on demand)",
               p->addr.id);
        return;
    }
    peer_report_down(p, reason);
    if (!t->closing && p->active) {
        peer_schedule_dial(p);
    }
}

/* Closes c now; queued frames are discarded (for the peer they are lost like any packet). */
static void conn_close(struct peer_conn *c, const char *reason)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    conn_unlink(c);
    conn_detach(c, reason);
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

/* Empties b, and gives its memory back when a burst (a snapshot chunk, a flood) grew it, so
 * an idle connection holds little. */
static void buf_release(struct hy_buf *b)
{
    if (b->cap > PEER_BUF_KEEP_BYTES) {
        hy_buf_free(b);
    } else {
        hy_buf_reset(b);
    }
}

static size_t conn_queued(const struct peer_conn *c)
{
    return c->pending.len + c->hb.len + c->hold.len + c->tls_out.len + c->inflight.len;
}

/* Where a frame for the peer is encoded: the queue, or, while a dial on demand of a parked
 * link has not finished its handshake, the frames held for after it. */
static struct hy_buf *conn_out(struct peer_conn *c)
{
    return c->state == CONN_UP ? &c->pending : &c->hold;
}

/* Bytes queued and not yet handed to libuv (the heartbeat batch is sealed into pending). */
static size_t conn_unsent(const struct peer_conn *c)
{
    return c->pending.len + c->tls_out.len;
}

/* Moves the heartbeat batch into the queue as one HEARTBEAT frame. */
static void conn_hb_seal(struct peer_conn *c)
{
    if (c->hb_count == 0) {
        return;
    }
    int rc = wire_encode_heartbeat(conn_out(c), c->hb.data, c->hb_count, &c->t->cfg.limits);
    HY_ASSERT(rc == HY_OK); /* batches are sealed well below the frame limit */
    if (c->peer != NULL) {
        c->peer->stats.frames_sent++;
    }
    hy_buf_reset(&c->hb);
    c->hb_count = 0;
}

static void peer_note_queue(struct peer *p)
{
    if (p != NULL && p->out != NULL) {
        p->stats.queued_bytes = conn_queued(p->out);
        if (p->stats.queued_bytes > p->stats.queued_bytes_peak) {
            p->stats.queued_bytes_peak = p->stats.queued_bytes;
        }
    }
}

/* ---- writing --------------------------------------------------------------------------------- */

static void conn_flush(struct peer_conn *c);

static void write_cb(uv_write_t *req, int status)
{
    struct peer_conn *c = req->data;
    c->writing = 0;
    buf_release(&c->inflight);
    if (c->closing) {
        return;
    }
    if (status < 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "write failed: %s", uv_strerror(status));
        conn_close(c, reason);
        return;
    }
    if (c->outbound) {
        peer_note_queue(c->peer);
    }
    if (c->state == CONN_DRAINING && conn_unsent(c) == 0) {
        conn_close(c, "closed after REJECT");
        return;
    }
    conn_flush(c);
}

/* Hands the queued frames to libuv in one write, unless a write is already in progress (its
 * callback flushes again). */
static void conn_flush(struct peer_conn *c)
{
    if (c->closing || c->state == CONN_CONNECTING) {
        return;
    }
    struct hy_buf *out = &c->pending;
    if (c->tls != NULL) { /* frames become records once the TLS handshake is done */
        if (c->pending.len > 0 && io_tls_ready(c->tls)) {
            if (io_tls_write(c->tls, c->pending.data, c->pending.len, &c->tls_out) != 0) {
                conn_close(c, "TLS: cannot encrypt");
                return;
            }
            buf_release(&c->pending);
        }
        out = &c->tls_out;
    }
    if (c->writing || out->len == 0) {
        return;
    }
    struct hy_buf tmp = c->inflight;
    c->inflight = *out;
    *out = tmp;
    uv_buf_t b = uv_buf_init((char *)c->inflight.data, (unsigned)c->inflight.len);
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    if (rc < 0) {
        conn_close(c, uv_strerror(rc));
        return;
    }
    c->writing = 1;
}

static void flusher_cb(uv_prepare_t *h)
{
    peer_transport_flush(h->data);
}

void peer_transport_flush(struct peer_transport *t)
{
    struct peer_conn *c = t->conns;
    while (c != NULL) {
        struct peer_conn *next = c->next; /* a failed write unlinks c */
        conn_hb_seal(c);
        conn_flush(c);
        c = next;
    }
}

/* Sends REJECT-carrying output (already queued by the handshake) and closes once written. */
static void conn_drain_and_close(struct peer_conn *c)
{
    c->state = CONN_DRAINING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (conn_unsent(c) == 0 && !c->writing) {
        conn_close(c, "closed after REJECT");
        return;
    }
    conn_flush(c);
}

/* ---- reading -------------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct peer_conn *c = h->data;
    if (c->tls != NULL) { /* records: decrypted into c->in by read_cb */
        uint8_t *p = hy_buf_reserve(&c->tls_in, PEER_READ_CHUNK);
        *buf = uv_buf_init((char *)p, (unsigned)(c->tls_in.cap - c->tls_in.len));
        return;
    }
    /* A large frame whose header arrived gets room for all of it at once; the reader has
     * already checked its length against frame_bytes_max. */
    size_t need = wire_reader_bytes_needed(&c->reader);
    size_t extra = need > c->in.len + PEER_READ_CHUNK ? need - c->in.len : PEER_READ_CHUNK;
    uint8_t *p = hy_buf_reserve(&c->in, extra);
    *buf = uv_buf_init((char *)p, (unsigned)(c->in.cap - c->in.len));
}

/* A frame on a WAN link's connection: only what a link sends. */
static void conn_on_wan_frame(struct peer_conn *c, const struct wire_frame *f)
{
    struct peer_transport *t = c->t;
    switch (f->type) {
    case WIRE_WAN_APPLY:
    case WIRE_WAN_DEMOTE:
    case WIRE_WAN_PARTS: t->cbs.wan_cb(t->cbs.ctx, c->wan, c->hs.peer, c->hs.link, f); break;
    case WIRE_PING:
        if (conn_queued(c) < t->cfg.queue_bytes_max) {
            wire_encode_ping(&c->pending, WIRE_PONG, f->ping_token);
        }
        break;
    default: {
        char reason[96];
        snprintf(reason, sizeof(reason), "protocol error: a WAN link may not send %s",
                 wire_type_name(f->type));
        hy_log(t->cfg.log, HY_LOG_WARN, "WAN link '%s' of cluster '%s' (%s): %s", c->hs.link,
               c->hs.peer, c->addr, reason);
        conn_close(c, reason);
    }
    }
}

/* A frame on an authenticated connection. */
static void conn_on_frame(struct peer_conn *c, const struct wire_frame *f)
{
    struct peer_transport *t = c->t;
    if (c->wan != 0) {
        conn_on_wan_frame(c, f);
        return;
    }
    const char *from = c->peer->addr.id;
    switch (f->type) {
    case WIRE_RAFT:
        if (t->cbs.raft_cb != NULL) {
            t->cbs.raft_cb(t->cbs.ctx, from, f->raft_group, &f->raft);
        }
        break;
    case WIRE_FORWARD:
        if (t->cbs.forward_cb != NULL) {
            t->cbs.forward_cb(t->cbs.ctx, from, f->forward.req_id, f->forward.data, f->forward.len);
        }
        break;
    case WIRE_FORWARD_REPLY:
        if (t->cbs.forward_reply_cb != NULL) {
            t->cbs.forward_reply_cb(t->cbs.ctx, from, f->forward.req_id, f->forward.data,
                                    f->forward.len);
        }
        break;
    case WIRE_PUBLISH:
        if (t->cbs.publish_cb != NULL) {
            t->cbs.publish_cb(t->cbs.ctx, from, f->forward.data, f->forward.len);
        }
        break;
    case WIRE_GOSSIP:
        if (t->cbs.gossip_cb != NULL) {
            t->cbs.gossip_cb(t->cbs.ctx, from, f->forward.data, f->forward.len);
        }
        break;
    case WIRE_BUSY:
        if (t->cbs.busy_cb != NULL) {
            t->cbs.busy_cb(t->cbs.ctx, from, f->forward.data, f->forward.len);
        }
        break;
    case WIRE_PING:
        /* Answered on the connection it came in on, bounded like any queue. */
        if (conn_queued(c) < t->cfg.queue_bytes_max) {
            wire_encode_ping(&c->pending, WIRE_PONG, f->ping_token);
        }
        break;
    case WIRE_PONG: break; /* liveness only: last_recv_ms is already updated */
    case WIRE_HEARTBEAT:
        for (uint32_t i = 0; i < f->heartbeat.count && t->cbs.raft_cb != NULL; i++) {
            uint16_t group;
            struct raft_message m;
            wire_heartbeat_get(&f->heartbeat, i, &group, &m);
            t->cbs.raft_cb(t->cbs.ctx, from, group, &m);
        }
        break;
    default: {
        char reason[96];
        snprintf(reason, sizeof(reason), "protocol error: unexpected %s after the handshake",
                 wire_type_name(f->type));
        hy_log(t->cfg.log, HY_LOG_WARN, "peer %s (%s): %s", from, c->addr, reason);
        conn_close(c, reason);
    }
    }
}

static struct peer *peer_new_slot(struct peer_transport *t);

/* An inbound connection from a node the peer list does not name, that the engine admits: a
 * guest slot (peer.h "Guests"). NULL when it is not admitted, or there is no room. With
 * tls-cluster no member address is known for the name yet: the certificate (verified against
 * the CA by the handshake) must name the address the connection comes from, so that a
 * member's key still speaks only from the address it was made for; once the peer list names
 * the guest, its certificate is checked against that address too (peer_transport_set_peers). */
static struct peer *peer_guest(struct peer_transport *t, struct peer_conn *c)
{
    if (t->cbs.admit_cb == NULL || !t->cbs.admit_cb(t->cbs.ctx, c->hs.peer, 0)) {
        return NULL;
    }
    if (c->tls != NULL &&
        (c->remote_host[0] == '\0' || !io_tls_peer_names(c->tls, c->remote_host))) {
        char again[64] = "";
        if (!refusal_quiet(t, c->hs.peer, 0, uv_now(t->loop), again, sizeof(again))) {
            hy_log(t->cfg.log, HY_LOG_ERROR,
                   "peer %s (%s): refused as a guest: its TLS certificate does not name the "
                   "address it connects from%s",
                   c->hs.peer, c->addr, again);
        }
        return NULL;
    }
    size_t guests = 0;
    for (size_t i = 0; i < t->n_peers; i++) {
        guests += t->peers[i].active && t->peers[i].guest;
    }
    struct peer *p = guests < PEER_GUESTS_MAX ? peer_new_slot(t) : NULL;
    if (p == NULL) {
        return NULL;
    }
    memset(&p->addr, 0, sizeof(p->addr));
    snprintf(p->addr.id, sizeof(p->addr.id), "%s", c->hs.peer);
    p->active = p->guest = 1;
    (void)t->cbs.admit_cb(t->cbs.ctx, p->addr.id, 1);
    return p;
}

/* A WAN link proved this cluster's secret: a connection of its own kind (peer.h wan_cb). Its
 * certificate, with tls-cluster, was checked against this member's CA by the TLS handshake;
 * it has no address for it to name. */
static void conn_wan_up(struct peer_conn *c)
{
    struct peer_transport *t = c->t;
    size_t links = 0;
    for (const struct peer_conn *o = t->conns; o != NULL; o = o->next) {
        links += o->wan != 0;
    }
    if (links >= PEER_WAN_LINKS_MAX) {
        hy_log(t->cfg.log, HY_LOG_WARN,
               "WAN link '%s' of cluster '%s' (%s): refused: %d links "
               "connected already",
               c->hs.link, c->hs.peer, c->addr, PEER_WAN_LINKS_MAX);
        conn_close(c, "too many WAN links");
        return;
    }
    c->state = CONN_UP;
    c->reader.limits = t->cfg.limits;
    c->wan = ++t->wan_ids;
    hy_log(t->cfg.log, HY_LOG_INFO,
           "WAN link '%s' from cluster '%s' (%s) proved the cluster-secret%s: connected",
           c->hs.link, c->hs.peer, c->addr, c->tls != NULL ? " over TLS" : "");
}

/* The handshake finished: wire the connection to its peer. */
static void conn_authenticated(struct peer_conn *c)
{
    struct peer_transport *t = c->t;
    if (c->hs.wan && !c->outbound) {
        conn_wan_up(c);
        return;
    }
    struct peer *p = c->outbound ? c->peer : peer_find(t, c->hs.peer);
    if (p == NULL && !c->outbound) {
        p = peer_guest(t, c);
    }
    if (p == NULL || !p->active) {
        /* It left the peer list while the handshake ran. */
        conn_close(c, "no longer a peer");
        return;
    }
    if (c->tls != NULL && !c->outbound && !p->guest && !io_tls_peer_names(c->tls, p->addr.host)) {
        /* The secret proved who it is; its certificate must also be the one for its address
         * (a member's key alone does not let it speak for another member). */
        char again[64] = "";
        if (!refusal_quiet(t, p->addr.id, 0, uv_now(t->loop), again, sizeof(again))) {
            hy_log(t->cfg.log, HY_LOG_ERROR,
                   "peer %s (%s): refused: its TLS certificate does not name its address %s%s",
                   p->addr.id, c->addr, p->addr.host, again);
        }
        conn_close(c, "certificate does not name the member's address");
        return;
    }
    c->state = CONN_UP;
    c->reader.limits = t->cfg.limits; /* between frames: the next header sees the new limit */
    c->peer = p;
    if (!c->outbound) {
        struct peer_conn *old = p->in;
        p->in = c; /* first: the old one's close then leaves the peer (a guest's slot) alone */
        if (old != NULL) {
            conn_close(old, "replaced by a newer connection from the same node");
        }
        hy_log(t->cfg.log, HY_LOG_INFO, "peer %s: accepted connection from %s%s", p->addr.id,
               c->addr, p->guest ? " (a guest: not a peer this node lists yet)" : "");
        if (p->guest && !p->stats.up) {
            p->stats.up = 1;
            if (t->cbs.state_cb != NULL) {
                t->cbs.state_cb(t->cbs.ctx, p->addr.id, 1, "connected (a guest)");
            }
        }
        return;
    }
    p->attempts = 0;
    p->stats.handshakes++;
    c->last_use_ms = uv_now(t->loop);
    if (c->hold.len > 0) { /* what waited for the handshake goes now, behind its output */
        hy_buf_append(&c->pending, c->hold.data, c->hold.len);
        buf_release(&c->hold);
    }
    if (p->stats.parked) { /* a dial on demand: the peer never stopped being up */
        p->stats.parked = 0;
        hy_log(t->cfg.log, HY_LOG_DEBUG, "peer %s: idle link dialled again (%s)", p->addr.id,
               c->addr);
        return;
    }
    int was_up = p->stats.up; /* a guest's link, when the peer list named it since */
    p->stats.up = 1;
    hy_log(t->cfg.log, HY_LOG_INFO, "peer %s: up (%s)", p->addr.id, c->addr);
    if (t->cbs.state_cb != NULL && !was_up) {
        t->cbs.state_cb(t->cbs.ctx, p->addr.id, 1, "connected");
    }
}

/* Refusals repeat at every redial (a removed member, a misconfigured one): for each node
 * and direction (we refused it, or it refused us), the first is logged, then at most one per
 * REFUSAL_LOG_MS with the count of those in between. Returns 1 when this one stays quiet;
 * else fills `again` with the count note. */
static int refusal_quiet(struct peer_transport *t, const char *who, int by_peer, uint64_t now,
                         char *again, size_t cap)
{
    if (who[0] == '\0') {
        return 0; /* a stranger that never said who it is: always logged */
    }
    struct peer_refusal *slot = NULL, *oldest = &t->refusals[0];
    for (size_t i = 0; i < PEER_REFUSAL_SLOTS; i++) {
        struct peer_refusal *r = &t->refusals[i];
        if (r->by_peer == by_peer && strcmp(r->id, who) == 0) {
            slot = r;
            break;
        }
        if (r->logged_ms < oldest->logged_ms) {
            oldest = r;
        }
    }
    if (slot != NULL && now < slot->logged_ms + REFUSAL_LOG_MS) {
        slot->quiet++;
        return 1;
    }
    if (slot != NULL && slot->quiet > 0) {
        snprintf(again, cap, " (and %llu times since the last report)",
                 (unsigned long long)slot->quiet);
    }
    if (slot == NULL) {
        slot = oldest;
        snprintf(slot->id, sizeof(slot->id), "%s", who);
        slot->by_peer = by_peer;
    }
    slot->logged_ms = now;
    slot->quiet = 0;
    return 0;
}

static void conn_on_handshake_frame(struct peer_conn *c, const struct wire_frame *f)
{
    struct peer_transport *t = c->t;
    int rc = peer_hs_on_frame(&c->hs, f, &c->pending);
    if (rc == HY_EAGAIN) {
        return;
    }
    if (rc == HY_OK) {
        conn_authenticated(c);
        return;
    }
    const char *who = c->outbound ? c->hs.expected : c->hs.peer;
    char again[64] = "";
    if (refusal_quiet(t, who, c->hs.refused_by_peer, uv_now(t->loop), again, sizeof(again))) {
        /* The same refusal again (a removed member redialling): counted, logged later. */
    } else if (c->hs.refused_by_peer) {
        hy_log(t->cfg.log, HY_LOG_ERROR, "peer %s (%s): refused by the other side: %s%s",
               who[0] ? who : "?", c->addr, c->hs.reason, again);
    } else {
        hy_log(t->cfg.log, HY_LOG_ERROR, "peer %s (%s): refused: %s: %s%s", who[0] ? who : "?",
               c->addr, wire_reject_name(c->hs.reject_code), c->hs.reason, again);
    }
    if (c->hs.refused_by_peer) {
        conn_close(c, c->hs.reason);
    } else {
        conn_drain_and_close(c);
    }
}

/* A malformed frame: during the handshake the other side is told why before we close. */
static void conn_on_read_error(struct peer_conn *c)
{
    struct peer_transport *t = c->t;
    const char *who = c->peer != NULL ? c->peer->addr.id : "?";
    hy_log(t->cfg.log, HY_LOG_ERROR, "peer %s (%s): protocol error: %s (%s)", who, c->addr,
           c->reader.error, hy_status_name(c->reader.status));
    if (c->state == CONN_HANDSHAKE) {
        wire_encode_reject(&c->pending, WIRE_REJECT_PROTOCOL, c->reader.error);
        conn_drain_and_close(c);
        return;
    }
    conn_close(c, c->reader.error);
}

/* Decodes and dispatches every complete frame in c->in, then drops their bytes at once. */
static void conn_process(struct peer_conn *c)
{
    size_t off = 0;
    c->busy_off = 0; /* frames a busy pump left are dispatched now, in order */
    c->dispatching = 1;
    while (!c->closing && c->state != CONN_DRAINING) {
        struct wire_frame f;
        size_t consumed;
        int rc = wire_read(&c->reader, c->in.data + off, c->in.len - off, &consumed, &f);
        if (rc == HY_EAGAIN) {
            break;
        }
        if (rc != HY_OK) {
            c->dispatching = 0;
            conn_on_read_error(c);
            return;
        }
        off += consumed;
        if (c->peer != NULL) {
            c->peer->stats.frames_recv++;
        }
        if (c->state == CONN_UP) {
            conn_on_frame(c, &f);
        } else {
            conn_on_handshake_frame(c, &f);
        }
    }
    c->dispatching = 0;
    if (!c->closing) {
        hy_buf_consume(&c->in, off);
        if (c->in.len == 0) {
            buf_release(&c->in);
        }
    }
}

/* Records from the socket (or none, to start a dialled handshake): frames to c->in, records to
 * send (handshake, alerts) to c->tls_out. A failed handshake is logged and closes c. */
static void conn_tls_feed(struct peer_conn *c)
{
    char err[300];
    int was_ready = io_tls_ready(c->tls);
    int rc =
        io_tls_feed(c->tls, c->tls_in.data, c->tls_in.len, &c->in, &c->tls_out, err, sizeof(err));
    buf_release(&c->tls_in);
    if (rc != 0) {
        struct peer_transport *t = c->t;
        const char *who = c->outbound ? c->hs.expected : "";
        char again[64] = "";
        /* A session the other side ended (close_notify) is no refusal. */
        int ended = io_tls_ready(c->tls) && strstr(err, "closed the session") != NULL;
        if (ended) {
            hy_log(t->cfg.log, HY_LOG_INFO, "peer %s (%s): %s", who[0] ? who : "?", c->addr, err);
        } else if (!refusal_quiet(t, who, 2, uv_now(t->loop), again, sizeof(again))) {
            hy_log(t->cfg.log, HY_LOG_ERROR, "peer %s (%s): %s%s", who[0] ? who : "?", c->addr, err,
                   again);
        }
        /* An alert the handshake produced goes out before the close, when libuv can. */
        if (c->tls_out.len > 0 && !c->writing) {
            uv_buf_t b = uv_buf_init((char *)c->tls_out.data, (unsigned)c->tls_out.len);
            (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        }
        conn_close(c, err);
        return;
    }
    if (c->in.len > 0) {
        conn_process(c);
    }
    if (!c->closing && (c->tls_out.len > 0 || (!was_ready && io_tls_ready(c->tls)))) {
        conn_flush(c);
    }
}

static uint32_t inbound_timeout_ms(const struct peer_config *cfg);
static int conn_on_demand(const struct peer_conn *c);

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct peer_conn *c = s->data;
    if (c->closing) {
        return;
    }
    if (nread < 0) {
        char reason[128];
        snprintf(reason, sizeof(reason), "connection lost: %s", uv_strerror((int)nread));
        /* The peer's end closed a link on demand that has been unused for a while (its node
         * may judge inbound silence on a shorter deadline than conn_on_demand's dialler keeps:
         * an earlier version, or a view of the ring that differs for a moment): closed as for
         * idleness, quietly, and dialled again on demand, whose failure would report the peer
         * down. A link in use reports at once, as before. */
        if (nread == UV_EOF && c->state == CONN_UP && conn_on_demand(c) &&
            uv_now(c->t->loop) - c->last_use_ms >= c->t->cfg.ping_timeout_ms &&
            conn_queued(c) == 0 && !c->writing) {
            c->idle_close = 1;
        }
        if (c->state == CONN_HANDSHAKE) {
            hy_log(c->t->cfg.log, HY_LOG_WARN, "peer %s (%s): handshake failed: %s",
                   c->outbound ? c->hs.expected : "?", c->addr, reason);
        }
        conn_close(c, reason);
        return;
    }
    c->last_recv_ms = uv_now(c->t->loop);
    /* Copied: a callback may close the connection, or the transport. */
    void (*batch_cb)(void *, int) = c->t->cbs.batch_cb;
    void *ctx = c->t->cbs.ctx;
    if (batch_cb != NULL) {
        batch_cb(ctx, 1);
    }
    if (c->tls != NULL) {
        c->tls_in.len += (size_t)nread;
        conn_tls_feed(c);
    } else {
        c->in.len += (size_t)nread;
        conn_process(c);
    }
    if (batch_cb != NULL) {
        batch_cb(ctx, 0);
    }
}

static void conn_set_addr(struct peer_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
            uv_ip6_name(a6, host, sizeof(host));
            port = ntohs(a6->sin6_port);
        } else {
            const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
            uv_ip4_name(a4, host, sizeof(host));
            port = ntohs(a4->sin_port);
        }
    }
    snprintf(c->addr, sizeof(c->addr), "%s:%d", host, port);
    snprintf(c->remote_host, sizeof(c->remote_host), "%s", port != 0 ? host : "");
}

/* An outbound connection that may go on demand (idle_close_ms set) is not PINGed while it is
 * off the ring (conn_on_demand): the kernel says when what it sent stays unacknowledged
 * (TCP_USER_TIMEOUT: the path or the peer's host is gone), instead of a PING's answer. Data the
 * peer's host acknowledges but its process does not read (a stopped peer) is gossip's to judge,
 * as every other silence of a member off the ring. */
static void conn_set_user_timeout(struct peer_conn *c)
{
    uv_os_fd_t fd;
    if (!c->outbound || c->t->cfg.idle_close_ms == 0 ||
        uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
        return;
    }
    unsigned int ms = inbound_timeout_ms(&c->t->cfg);
    if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) != 0) {
        hy_log(c->t->cfg.log, HY_LOG_DEBUG, "peer %s: TCP_USER_TIMEOUT not set", c->addr);
    }
}

static int conn_start_reading(struct peer_conn *c)
{
    c->state = CONN_HANDSHAKE;
    c->started_ms = c->last_recv_ms = uv_now(c->t->loop);
    uv_tcp_nodelay(&c->tcp, 1);
    conn_set_user_timeout(c);
    conn_set_addr(c);
    if (c->t->tls != NULL) { /* TLS first; the secret's handshake runs inside it */
        c->tls =
            c->outbound ? io_tls_new_client(c->t->tls, c->peer->addr.host) : io_tls_new(c->t->tls);
    }
    return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* ---- dialling and accepting ---------------------------------------------------------------- */

static void connect_cb(uv_connect_t *req, int status)
{
    struct peer_conn *c = req->data;
    if (c->closing) {
        return;
    }
    int rc = status < 0 ? status : conn_start_reading(c);
    if (rc < 0) {
        char reason[PEER_HOST_MAX + 160];
        snprintf(reason, sizeof(reason), "connect to %s:%u failed: %s", c->peer->addr.host,
                 c->peer->addr.port, uv_strerror(rc));
        hy_log(c->t->cfg.log, HY_LOG_DEBUG, "peer %s: %s", c->peer->addr.id, reason);
        conn_close(c, reason);
        return;
    }
    peer_hs_start_initiator(&c->hs, &c->t->hs_cfg, c->peer->addr.id, &c->pending);
    if (c->tls != NULL) {
        conn_tls_feed(c); /* the ClientHello; HELLO waits in pending for the handshake */
    }
}

/* Resolves host:port; numeric addresses need no lookup. Names are resolved synchronously
 * (getaddrinfo through libuv without a callback), which may block the loop briefly. */
static int peer_resolve(const struct peer *p, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(p->addr.host, p->addr.port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(p->addr.host, p->addr.port, (struct sockaddr_in6 *)ss) == 0) {
        return 0;
    }
    uv_getaddrinfo_t req;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[8];
    snprintf(port, sizeof(port), "%u", p->addr.port);
    int rc = uv_getaddrinfo(p->t->loop, &req, NULL, p->addr.host, port, &hints);
    if (rc < 0) {
        return rc;
    }
    memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

static void peer_dial(struct peer *p)
{
    struct peer_transport *t = p->t;
    HY_ASSERT(p->out == NULL && !t->closing);
    struct sockaddr_storage ss;
    int rc = peer_resolve(p, &ss);
    if (rc < 0) {
        hy_log(t->cfg.log, HY_LOG_WARN, "peer %s: cannot resolve %s: %s", p->addr.id, p->addr.host,
               uv_strerror(rc));
        peer_report_down(p, "cannot resolve its address"); /* a parked peer was still up */
        peer_schedule_dial(p);
        return;
    }
    struct peer_conn *c = conn_new(t, 1);
    c->peer = p;
    p->out = c;
    snprintf(c->addr, sizeof(c->addr), "%s:%u", p->addr.host, p->addr.port);
    c->connect_req.data = c;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&ss, connect_cb);
    if (rc < 0) {
        conn_close(c, uv_strerror(rc));
    }
}

static void retry_cb(uv_timer_t *h)
{
    struct peer *p = h->data;
    if (!p->t->closing && p->out == NULL) {
        if (p->stats.parked) { /* its dial on demand failed inside a send (peer_report_down) */
            peer_report_down(p, "its idle link could not be dialled again");
        }
        peer_dial(p);
    }
}

/* Exponential backoff with jitter: the k-th consecutive failure waits a delay drawn from the
 * upper half of min * 2^k (capped at max), so nodes restarted together do not redial in
 * lockstep. */
uint64_t peer__backoff_ms(const struct peer_config *cfg, uint32_t attempts, struct hy_prng *prng)
{
    uint64_t delay = cfg->backoff_min_ms;
    for (uint32_t i = 0; i < attempts && delay < cfg->backoff_max_ms; i++) {
        delay *= 2;
    }
    delay = HY_MIN(delay, (uint64_t)cfg->backoff_max_ms);
    return delay - delay / 2 + hy_prng_below(prng, delay / 2 + 1);
}

static void peer_schedule_dial(struct peer *p)
{
    uint64_t delay = peer__backoff_ms(&p->t->cfg, p->attempts, &p->t->prng);
    if (p->attempts < 32) {
        p->attempts++;
    }
    uv_timer_start(&p->retry, retry_cb, delay, 0);
}

/* Unauthenticated inbound connections: bounded, so strangers cannot exhaust descriptors or
 * memory faster than the handshake timeout reaps them. */
static size_t inbound_handshakes(const struct peer_transport *t)
{
    size_t n = 0;
    for (const struct peer_conn *c = t->conns; c != NULL; c = c->next) {
        n += !c->outbound && c->state != CONN_UP;
    }
    return n;
}

static void connection_cb(uv_stream_t *server, int status)
{
    struct peer_transport *t = server->data;
    if (status < 0 || t->closing) {
        hy_log(t->cfg.log, HY_LOG_WARN, "peer listener: %s", uv_strerror(status));
        return;
    }
    struct peer_conn *c = conn_new(t, 0);
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0 && inbound_handshakes(t) > PEER_HANDSHAKES_MAX) {
        hy_log(t->cfg.log, HY_LOG_WARN,
               "peer: over %d handshakes in progress; connection "
               "refused",
               PEER_HANDSHAKES_MAX);
        conn_close(c, "too many handshakes");
        return;
    }
    if (rc == 0) {
        rc = conn_start_reading(c);
    }
    if (rc < 0) {
        conn_close(c, uv_strerror(rc));
        return;
    }
    peer_hs_start_acceptor(&c->hs, &t->hs_cfg);
}

/* ---- liveness ------------------------------------------------------------------------------- */

/* How often a connection's dialler PINGs. A link to a peer off gossip's ring
 * (peer_transport_set_beacons left it out) PINGs PEER_OFF_RING_PINGS times less often: the
 * failure detector does not watch it, so its PINGs only find a dead connection, and with n
 * members they are O(n^2) frames a second. Never sparser than half of suspect_ms when a silence
 * detector runs. */
static uint32_t off_ring_ping_ms(const struct peer_config *cfg)
{
    uint32_t ms = cfg->ping_interval_ms * PEER_OFF_RING_PINGS;
    if (cfg->suspect_ms != 0 && ms > cfg->suspect_ms / 2) {
        ms = HY_MAX(cfg->ping_interval_ms, cfg->suspect_ms / 2);
    }
    return ms;
}

/* Whether c is a link off gossip's ring (its dialler's view; see conn_heard_ms for the
 * other end). */
static int conn_off_ring(const struct peer_conn *c)
{
    return c->t->beacons_listed && c->peer != NULL && !c->peer->beacon;
}

static uint32_t conn_ping_ms(const struct peer_conn *c)
{
    return conn_off_ring(c) ? off_ring_ping_ms(&c->t->cfg) : c->t->cfg.ping_interval_ms;
}

/* A dialler's link off gossip's ring, with idle_close_ms set, is a link on demand: it carries
 * the pair's own traffic (gossip's probes, Raft, forwards) and no keepalive of its own, no PING
 * and no silence deadline, so that a node's keepalive does not grow with the members off its
 * ring (issue 14: "a 100-node cluster needs no full mesh of heartbeats"). What it sent and the
 * kernel could not deliver closes it (TCP_USER_TIMEOUT, conn_set_user_timeout), the peer's
 * end closing it is seen at once, and nothing but gossip judges the peer's silence: gossip's
 * probes of it travel on this link and time out on their own. Unused for idle_close_ms, it
 * closes quietly (conn_idle). */
static int conn_on_demand(const struct peer_conn *c)
{
    return c->t->cfg.idle_close_ms != 0 && c->outbound && conn_off_ring(c);
}

/* When anything last arrived from c's peer, on either of its connections. */
static uint64_t peer_heard(const struct peer *p)
{
    uint64_t heard = p->out != NULL ? p->out->last_recv_ms : 0;
    if (p->in != NULL && p->in->last_recv_ms > heard) {
        heard = p->in->last_recv_ms;
    }
    return heard;
}

/* What c's silence is judged on. A ring link's dialler judges its own connection by its
 * PONGs. Once gossip named its ring, an off-ring link's dialler and every inbound connection
 * judge the peer by what arrives on either of its connections: the pair's own traffic (gossip,
 * Raft, forwards in both directions) proves the peer runs, so the off-ring dialler PINGs only
 * when its connection carried nothing else (conn_keepalive), and gets its peer's news on the
 * other connection as often as on its own. */
static uint64_t conn_heard_ms(const struct peer_conn *c)
{
    if (c->state != CONN_UP || c->peer == NULL || !c->t->beacons_listed ||
        (c->outbound && c->peer->beacon)) {
        return c->last_recv_ms;
    }
    return peer_heard(c->peer);
}

/* How long a connection may hear nothing before it is closed: ping_timeout_ms, plus as much as
 * its PINGs are sparser, so that a link off the ring tolerates the same stall of its peer as a
 * ring link (ping_timeout_ms - ping_interval_ms). An inbound connection cannot know whether its
 * dialler counts this node on its ring (their views of the members may differ for a while), so
 * it always allows for the sparser PINGs. */
static uint32_t conn_timeout_ms(const struct peer_conn *c)
{
    const struct peer_config *cfg = &c->t->cfg;
    if (!c->outbound) {
        return inbound_timeout_ms(cfg);
    }
    return cfg->ping_timeout_ms + (conn_ping_ms(c) - cfg->ping_interval_ms);
}

/* An inbound connection allows for the sparser PINGs of a dialler off the ring, and, with
 * idle_close_ms, for a dialler on demand (conn_on_demand), which sends nothing but its pair's
 * traffic and closes the link itself once it has been unused for idle_close_ms. */
static uint32_t inbound_timeout_ms(const struct peer_config *cfg)
{
    uint32_t ms = cfg->ping_timeout_ms + (off_ring_ping_ms(cfg) - cfg->ping_interval_ms);
    if (cfg->idle_close_ms != 0) {
        ms = HY_MAX(ms, cfg->idle_close_ms + cfg->ping_timeout_ms);
    }
    return ms;
}

/* Returns a reason when c has missed its deadline, else NULL. */
static const char *conn_overdue(const struct peer_conn *c, uint64_t now, char *buf, size_t n)
{
    const struct peer_config *cfg = &c->t->cfg;
    if (c->state != CONN_UP && now - c->started_ms > cfg->handshake_timeout_ms) {
        snprintf(buf, n, "%s timed out after %u ms",
                 c->state == CONN_CONNECTING ? "connect" : "handshake", cfg->handshake_timeout_ms);
        return buf;
    }
    uint32_t timeout = c->wan != 0 ? PEER_WAN_IDLE_MS : conn_timeout_ms(c);
    uint64_t heard = conn_heard_ms(c);
    if (c->state == CONN_UP && !conn_on_demand(c) && now - heard > timeout) {
        snprintf(buf, n, "nothing received for %llu ms (ping timeout %u ms)",
                 (unsigned long long)(now - heard), timeout);
        return buf;
    }
    return NULL;
}

/* When this node itself stalled (SIGSTOP, a VM pause, a long loop turn), its ticks come
 * late and every peer looks silent: give each connection a fresh deadline instead of
 * blaming peers for our own pause. */
static uint32_t tick_interval_ms(const struct peer_config *cfg)
{
    uint32_t ms = cfg->ping_interval_ms;
    if (cfg->beacon_ms != 0 && cfg->beacon_ms < ms) {
        ms = cfg->beacon_ms;
    }
    return ms;
}

static int tick_was_late(struct peer_transport *t, uint64_t now)
{
    int late = now - t->last_tick_ms > 2ull * tick_interval_ms(&t->cfg);
    t->last_tick_ms = now;
    if (!late) {
        return 0;
    }
    for (struct peer_conn *c = t->conns; c != NULL; c = c->next) {
        c->last_recv_ms = now;
        c->started_ms = now;
    }
    return 1;
}

/* How long an off-ring dialler may send nothing on its connection: the other end may judge
 * the connection on its own frames (a node of an earlier version does), with the inbound
 * timeout of conn_timeout_ms, and must hear something an interval before it. */
static uint32_t off_ring_send_gap_ms(const struct peer_config *cfg)
{
    uint32_t ping = off_ring_ping_ms(cfg);
    return HY_MAX(ping, inbound_timeout_ms(cfg) - ping);
}

/* PING every conn_ping_ms; off the ring only when nothing came from the peer for that long
 * (its PONG is the news), or nothing else went out on the connection for
 * off_ring_send_gap_ms; an empty HEARTBEAT when nothing left for beacon_ms. */
static void conn_keepalive(struct peer_transport *t, struct peer_conn *c, uint64_t now)
{
    if (conn_on_demand(c)) {
        return; /* no keepalive of its own, and no beacon (off the ring) */
    }
    uint32_t ping_ms = conn_ping_ms(c);
    if (now - c->last_ping_ms >= ping_ms &&
        (!conn_off_ring(c) || now - conn_heard_ms(c) >= ping_ms ||
         now - HY_MAX(c->last_send_ms, c->last_ping_ms) >= off_ring_send_gap_ms(&t->cfg))) {
        c->last_ping_ms = now;
        conn_hb_seal(c);
        wire_encode_ping(&c->pending, WIRE_PING, ++t->ping_token);
        c->peer->stats.pings_sent++;
    }
    if (t->cfg.beacon_ms != 0 && c->peer->beacon && now - c->last_send_ms >= t->cfg.beacon_ms &&
        c->hb_count == 0) {
        int rc = wire_encode_heartbeat(&c->pending, NULL, 0, &t->cfg.limits);
        HY_ASSERT(rc == HY_OK);
        c->last_send_ms = now;
        c->peer->stats.beacons_sent++;
    }
}

/* Node-level failure detection: a peer whose connections brought nothing for suspect_ms is
 * suspected (its groups hear of it: RAFT_EV_LIVENESS), and cleared once anything arrives. */
static void peers_suspect(struct peer_transport *t, uint64_t now)
{
    if (t->cfg.suspect_ms == 0 || t->cbs.liveness_cb == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n_peers; i++) {
        struct peer *p = &t->peers[i];
        if (!p->active || p->out == NULL || p->out->state != CONN_UP) {
            p->suspected = 0; /* a link that is down says so itself (state_cb) */
            continue;
        }
        uint64_t heard = p->out->last_recv_ms;
        if (p->in != NULL && p->in->last_recv_ms > heard) {
            heard = p->in->last_recv_ms;
        }
        int silent = now - heard > t->cfg.suspect_ms;
        if (silent != p->suspected) {
            p->suspected = silent;
            hy_log(t->cfg.log, silent ? HY_LOG_WARN : HY_LOG_INFO, "peer %s: %s", p->addr.id,
                   silent ? "suspected down (nothing heard within suspect time)"
                          : "heard again after being suspected");
            t->cbs.liveness_cb(t->cbs.ctx, p->addr.id, !silent);
        }
    }
}

/* An off-ring link its dialler may park: nothing but keepalive went out on it for
 * idle_close_ms, and nothing of it waits to be written. */
static int conn_idle(const struct peer_conn *c, uint64_t now)
{
    uint32_t idle_ms = c->t->cfg.idle_close_ms;
    return idle_ms != 0 && c->outbound && c->state == CONN_UP && conn_off_ring(c) &&
           now - c->last_use_ms >= idle_ms && conn_queued(c) == 0 && !c->writing;
}

static void tick_cb(uv_timer_t *h)
{
    struct peer_transport *t = h->data;
    uint64_t now = uv_now(t->loop);
    if (tick_was_late(t, now)) {
        return;
    }
    struct peer_conn *c = t->conns;
    while (c != NULL) {
        struct peer_conn *next = c->next;
        char buf[128];
        const char *overdue = conn_overdue(c, now, buf, sizeof(buf));
        if (overdue != NULL) {
            hy_log(t->cfg.log, HY_LOG_WARN, "peer %s (%s): %s",
                   c->peer != NULL ? c->peer->addr.id : "?", c->addr, overdue);
            conn_close(c, overdue);
        } else if (conn_idle(c, now)) {
            c->idle_close = 1;
            conn_close(c, "idle");
        } else if (c->outbound && c->state == CONN_UP && conn_queued(c) < t->cfg.queue_bytes_max) {
            conn_keepalive(t, c, now);
        }
        c = next;
    }
    peers_suspect(t, now);
}

/* ---- creation ------------------------------------------------------------------------------- */

static int transport_config_check(const struct peer_config *cfg)
{
    const struct hy_log *log = cfg->log;
    if (cfg->self_id == NULL ||
        !wire_name_valid((const uint8_t *)cfg->self_id, strlen(cfg->self_id)) ||
        cfg->cluster == NULL ||
        !wire_name_valid((const uint8_t *)cfg->cluster, strlen(cfg->cluster))) {
        hy_log(log, HY_LOG_ERROR,
               "peer: node id and cluster name must be 1-%d printable "
               "characters without spaces",
               WIRE_NAME_MAX);
        return HY_ECONFIG;
    }
    if (cfg->secret == NULL || cfg->secret_len == 0) {
        hy_log(log, HY_LOG_ERROR, "peer: a cluster secret is required");
        return HY_ECONFIG;
    }
    if (cfg->ping_interval_ms == 0 || cfg->ping_timeout_ms <= cfg->ping_interval_ms ||
        cfg->backoff_min_ms == 0 || cfg->backoff_max_ms < cfg->backoff_min_ms ||
        cfg->handshake_timeout_ms == 0 || cfg->queue_bytes_max == 0 ||
        cfg->limits.frame_bytes_max < PEER_FRAME_BYTES_MIN || cfg->limits.entries_max == 0) {
        hy_log(log, HY_LOG_ERROR, "peer: invalid timing, queue or frame limit settings");
        return HY_ECONFIG;
    }
    return HY_OK;
}

/* Copies the peers other than self; refuses duplicates and more than PEER_MAX. */
static int config_copy_peers(struct peer_transport *t, const struct peer_config *cfg)
{
    for (size_t i = 0; i < cfg->n_peers; i++) {
        const struct peer_addr *a = &cfg->peers[i];
        if (strcmp(a->id, t->self_id) == 0) {
            continue;
        }
        if (!wire_name_valid((const uint8_t *)a->id, strlen(a->id)) || peer_find(t, a->id) ||
            t->n_peers == PEER_MAX) {
            hy_log(cfg->log, HY_LOG_ERROR, "peer: invalid, duplicate or too many peers ('%s')",
                   a->id);
            return HY_ECONFIG;
        }
        struct peer *p = &t->peers[t->n_peers++];
        p->addr = *a;
        p->t = t;
        p->active = 1;
        p->beacon = 1; /* every peer until peer_transport_set_beacons names some */
    }
    return HY_OK;
}

static int transport_listen(struct peer_transport *t, const struct peer_config *cfg)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int rc = uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        rc = uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)&ss);
    }
    if (rc == 0) {
        rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&ss, 0);
    }
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&t->listener, 64, connection_cb);
    }
    if (rc < 0) {
        hy_log(cfg->log, HY_LOG_ERROR, "peer: cannot listen on %s:%u: %s", cfg->listen_host,
               cfg->listen_port, uv_strerror(rc));
        return HY_EIO;
    }
    int len = sizeof(ss);
    uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len);
    t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return HY_OK;
}

/* Initializes every handle; each counts in handles_open until its close callback. */
static void transport_init_handles(struct peer_transport *t)
{
    HY_ASSERT(uv_tcp_init(t->loop, &t->listener) == 0);
    HY_ASSERT(uv_timer_init(t->loop, &t->tick) == 0);
    HY_ASSERT(uv_prepare_init(t->loop, &t->flusher) == 0);
    HY_ASSERT(uv_timer_init(t->loop, &t->resume) == 0);
    t->listener.data = t->tick.data = t->flusher.data = t->resume.data = t;
    t->handles_open += 4;
    for (size_t i = 0; i < t->n_peers; i++) {
        HY_ASSERT(uv_timer_init(t->loop, &t->peers[i].retry) == 0);
        t->peers[i].retry.data = &t->peers[i];
        t->handles_open++;
    }
}

int peer_transport_create(uv_loop_t *loop, const struct peer_config *cfg,
                          const struct peer_callbacks *cbs, struct peer_transport **t_out)
{
    *t_out = NULL;
    int rc = transport_config_check(cfg);
    if (rc != HY_OK) {
        return rc;
    }
    struct peer_transport *t = hy_xcalloc(1, sizeof(*t));
    t->loop = loop;
    t->cfg = *cfg;
    t->cbs = *cbs;
    t->tls = cfg->tls;
    strcpy(t->self_id, cfg->self_id);
    strcpy(t->cluster, cfg->cluster);
    t->secret = hy_xmemdup(cfg->secret, cfg->secret_len);
    t->cfg.self_id = t->self_id;
    t->cfg.cluster = t->cluster;
    t->cfg.secret = t->secret;
    t->cfg.listen_host = NULL; /* only used here */
    t->cfg.peers = NULL;
    t->hs_cfg = (struct peer_hs_config){
        t->cluster, t->self_id, t->secret, cfg->secret_len, peer_known_cb, t, cbs->wan_cb != NULL};
    hy_prng_seed(&t->prng, cfg->seed);
    rc = config_copy_peers(t, cfg);
    if (rc != HY_OK) {
        hy_free(t->secret);
        hy_free(t);
        return rc;
    }
    transport_init_handles(t);
    rc = transport_listen(t, cfg);
    if (rc != HY_OK) {
        peer_transport_close(t, NULL, NULL);
        return rc;
    }
    t->last_tick_ms = uv_now(loop);
    uv_timer_start(&t->tick, tick_cb, tick_interval_ms(cfg), tick_interval_ms(cfg));
    uv_prepare_start(&t->flusher, flusher_cb);
    for (size_t i = 0; i < t->n_peers; i++) {
        peer_dial(&t->peers[i]);
    }
    hy_log(cfg->log, HY_LOG_INFO, "peer: node %s of cluster %s listening on %s:%u%s, %zu peers",
           t->self_id, t->cluster, cfg->listen_host, t->port, t->tls ? " (TLS)" : "", t->n_peers);
    *t_out = t;
    return HY_OK;
}

void peer_transport_set_tls(struct peer_transport *t, struct io_tls_ctx *tls)
{
    t->tls = tls;
}

uint16_t peer_transport_port(const struct peer_transport *t)
{
    return t->port;
}

/* ---- changing the peer list ---------------------------------------------------------------- */

static int addr_in(const struct peer_addr *list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].id, id) == 0) {
            return 1;
        }
    }
    return 0;
}

static void peer_deactivate(struct peer *p, const char *why)
{
    p->active = 0;
    uv_timer_stop(&p->retry);
    if (p->stats.parked && p->out == NULL) {
        peer_report_down(p, why); /* as its link's close would have */
    }
    if (p->out != NULL) {
        conn_close(p->out, why);
    }
    if (p->in != NULL) {
        conn_close(p->in, why);
    }
    p->attempts = 0;
    hy_log(p->t->cfg.log, HY_LOG_INFO, "peer %s: removed from the peer list", p->addr.id);
}

/* A slot for a new id: a fresh one, else one a removed peer left (its connections closed). */
static struct peer *peer_new_slot(struct peer_transport *t)
{
    if (t->n_peers < PEER_MAX) {
        struct peer *p = &t->peers[t->n_peers++];
        memset(p, 0, sizeof(*p));
        p->t = t;
        p->beacon = !t->beacons_listed;
        HY_ASSERT(uv_timer_init(t->loop, &p->retry) == 0);
        p->retry.data = p;
        t->handles_open++;
        return p;
    }
    for (size_t i = 0; i < t->n_peers; i++) {
        struct peer *p = &t->peers[i];
        if (!p->active && p->out == NULL && p->in == NULL) {
            memset(&p->stats, 0, sizeof(p->stats)); /* up and parked too */
            p->attempts = 0;
            p->beacon = !t->beacons_listed;
            return p;
        }
    }
    return NULL;
}

int peer_transport_set_peers(struct peer_transport *t, const struct peer_addr *peers, size_t n)
{
    HY_ASSERT(!t->closing);
    int rc = HY_OK;
    for (size_t i = 0; i < t->n_peers; i++) {
        struct peer *p = &t->peers[i];
        if (p->active && p->guest && !addr_in(peers, n, p->addr.id) &&
            !t->cbs.admit_cb(t->cbs.ctx, p->addr.id, 0)) {
            conn_close(p->in, "no longer admitted"); /* known as removed now; frees the slot */
        } else if (p->active && !p->guest && !addr_in(peers, n, p->addr.id)) {
            peer_deactivate(p, "no longer a peer");
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct peer_addr *a = &peers[i];
        if (strcmp(a->id, t->self_id) == 0) {
            continue;
        }
        if (!wire_name_valid((const uint8_t *)a->id, strlen(a->id))) {
            rc = HY_ECONFIG;
            continue;
        }
        struct peer *p = peer_slot_of(t, a->id);
        if (p != NULL && p->active && p->guest) {
            /* Listed now: a peer, dialled; the connection it dialled stays its inbound one. */
            p->guest = 0;
            p->addr = *a;
            hy_log(t->cfg.log, HY_LOG_INFO, "peer %s: added (%s:%u), a guest until now", a->id,
                   a->host, a->port);
            if (p->in != NULL && p->in->tls != NULL && !io_tls_peer_names(p->in->tls, a->host)) {
                /* Admitted by the address it came from; the member's address is the one its
                 * certificate must name, as for any member's connection (conn_authenticated). */
                hy_log(t->cfg.log, HY_LOG_ERROR,
                       "peer %s (%s): its TLS certificate does not name its address %s: the "
                       "connection it dialled as a guest is closed",
                       a->id, p->in->addr, a->host);
                conn_close(p->in, "certificate does not name the member's address");
            }
            peer_dial(p);
            continue;
        }
        if (p != NULL && p->active) {
            if (strcmp(p->addr.host, a->host) != 0 || p->addr.port != a->port) {
                hy_log(t->cfg.log, HY_LOG_INFO, "peer %s: address now %s:%u", a->id, a->host,
                       a->port);
                p->addr = *a;
                if (p->out != NULL) {
                    conn_close(p->out, "its address changed"); /* redials the new one */
                }
            }
            continue;
        }
        if (p == NULL && (p = peer_new_slot(t)) == NULL) {
            hy_log(t->cfg.log, HY_LOG_ERROR, "peer: no room for peer %s (at most %d)", a->id,
                   PEER_MAX);
            rc = HY_ENOSPC;
            continue;
        }
        p->addr = *a;
        p->active = 1;
        hy_log(t->cfg.log, HY_LOG_INFO, "peer %s: added (%s:%u)", a->id, a->host, a->port);
        if (p->out == NULL) {
            peer_dial(p);
        }
    }
    return rc;
}

void peer_transport_set_beacons(struct peer_transport *t, const char *const *ids, size_t n)
{
    t->beacons_listed = 1;
    for (size_t i = 0; i < t->n_peers; i++) {
        struct peer *p = &t->peers[i];
        int was = p->beacon;
        p->beacon = 0;
        for (size_t k = 0; k < n && !p->beacon; k++) {
            p->beacon = strcmp(p->addr.id, ids[k]) == 0;
        }
        if (p->beacon && !was && p->out != NULL && p->out->state == CONN_UP) {
            /* Judged by its own PONGs from now on (conn_heard_ms): off the ring its PINGs
             * were spared while the peer was heard on either connection, and that news
             * counts until the first PONG; a link on demand sent none, and its deadline
             * starts now (its first PING leaves at the next tick). */
            uint64_t from = t->cfg.idle_close_ms != 0 ? uv_now(t->loop) : peer_heard(p);
            p->out->last_recv_ms = HY_MAX(p->out->last_recv_ms, from);
        }
        if (p->beacon && p->active && p->stats.parked && p->out == NULL && !t->closing) {
            peer_dial(p); /* a ring link carries the beacons: no longer parked */
        }
    }
}

/* ---- sending -------------------------------------------------------------------------------- */

/* Finds the up connection to `to` with room for frame_len more bytes; counts a drop when
 * there is none. Returns HY_OK with *c_out set, or the status the send returns. */
static int peer_slot(struct peer_transport *t, const char *to, size_t frame_len,
                     struct peer_conn **c_out)
{
    struct peer *p = peer_find(t, to);
    if (p == NULL || t->closing) {
        return p == NULL ? HY_ENOTFOUND : HY_ECLOSED;
    }
    if (p->stats.parked && p->out == NULL) {
        t->dialling_on_demand = 1; /* on demand: the frame waits for the handshake */
        peer_dial(p);
        t->dialling_on_demand = 0;
    }
    struct peer_conn *c = p->guest ? p->in : p->out;
    if (c == NULL || (c->state != CONN_UP && !p->stats.parked)) {
        p->stats.dropped_down++;
        return HY_ECLOSED;
    }
    size_t queued = conn_queued(c);
    /* An empty queue takes any frame, so a frame larger than the bound still goes out. */
    if (queued > 0 && queued + frame_len > t->cfg.queue_bytes_max) {
        p->stats.dropped_full++;
        return HY_EBUSY;
    }
    *c_out = c;
    return HY_OK;
}

static void peer_sent(struct peer_conn *c)
{
    c->peer->stats.frames_sent++;
    c->last_send_ms = c->last_use_ms = uv_now(c->t->loop);
    peer_note_queue(c->peer);
}

/* A heartbeat or its answer joins the connection's batch (one HEARTBEAT frame per turn). */
static int send_coalesced(struct peer_transport *t, const char *to, uint16_t group,
                          const struct raft_message *m)
{
    struct peer_conn *c;
    int rc = peer_slot(t, to, WIRE_HEARTBEAT_ENTRY_BYTES, &c);
    if (rc != HY_OK) {
        return rc;
    }
    rc = wire_heartbeat_add(&c->hb, group, m);
    HY_ASSERT(rc == HY_OK); /* wire_heartbeat_fits said so */
    c->hb_count++;
    c->peer->stats.heartbeats_coalesced++;
    c->last_send_ms = c->last_use_ms = uv_now(t->loop);
    peer_note_queue(c->peer);
    if (c->hb_count >= PEER_HEARTBEAT_BATCH_MAX) {
        conn_hb_seal(c);
    }
    return HY_OK;
}

int peer_send_raft(struct peer_transport *t, const char *to, uint16_t group,
                   const struct raft_message *m)
{
    if (t->cfg.coalesce && wire_heartbeat_fits(m)) {
        return send_coalesced(t, to, group, m);
    }
    size_t len = wire_raft_frame_len(m);
    if (len == 0) {
        return HY_EINVAL;
    }
    if (len > t->cfg.limits.frame_bytes_max || m->n_entries > t->cfg.limits.entries_max) {
        return HY_ETOOBIG;
    }
    struct peer_conn *c;
    int rc = peer_slot(t, to, len, &c);
    if (rc != HY_OK) {
        return rc;
    }
    conn_hb_seal(c); /* what was batched before goes before */
    rc = wire_encode_raft(conn_out(c), group, m, &t->cfg.limits);
    HY_ASSERT(rc == HY_OK); /* checked above */
    peer_sent(c);
    return HY_OK;
}

static int send_forward(struct peer_transport *t, uint8_t type, const char *to, uint64_t req_id,
                        const uint8_t *data, size_t len)
{
    if (len > (size_t)t->cfg.limits.frame_bytes_max - WIRE_HEADER_BYTES - 8) {
        return HY_ETOOBIG;
    }
    struct peer_conn *c;
    int rc = peer_slot(t, to, WIRE_HEADER_BYTES + 8 + len, &c);
    if (rc != HY_OK) {
        return rc;
    }
    conn_hb_seal(c);
    rc = wire_encode_forward(conn_out(c), type, req_id, data, len, &t->cfg.limits);
    HY_ASSERT(rc == HY_OK);
    peer_sent(c);
    return HY_OK;
}

int peer_send_forward(struct peer_transport *t, const char *to, uint64_t req_id,
                      const uint8_t *data, size_t len)
{
    return send_forward(t, WIRE_FORWARD, to, req_id, data, len);
}

int peer_send_forward_on(struct peer_transport *t, const char *to, uint64_t req_id,
                         const uint8_t *data, size_t len, int inbound)
{
    struct peer *p = peer_find(t, to);
    struct peer_conn *c = p != NULL && inbound ? p->in : NULL;
    if (c == NULL || c->state != CONN_UP || c->closing || t->closing ||
        len > (size_t)t->cfg.limits.frame_bytes_max - WIRE_HEADER_BYTES - 8 ||
        conn_queued(c) >= t->cfg.queue_bytes_max) {
        return send_forward(t, WIRE_FORWARD, to, req_id, data, len);
    }
    conn_hb_seal(c);
    int rc = wire_encode_forward(&c->pending, WIRE_FORWARD, req_id, data, len, &t->cfg.limits);
    HY_ASSERT(rc == HY_OK);
    peer_sent(c);
    return HY_OK;
}

int peer_send_publish(struct peer_transport *t, const char *to, const uint8_t *data, size_t len)
{
    return send_forward(t, WIRE_PUBLISH, to, 0, data, len);
}

int peer_send_gossip(struct peer_transport *t, const char *to, const uint8_t *data, size_t len)
{
    return send_forward(t, WIRE_GOSSIP, to, 0, data, len);
}

void peer_send_busy_all(struct peer_transport *t, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < t->n_peers && !t->closing; i++) {
        struct peer *p = &t->peers[i];
        if (!p->active) {
            continue;
        }
        (void)send_forward(t, WIRE_BUSY, p->addr.id, 0, data, len);
        /* On the link the peer dialled too: a busy pump does not read the link whose frame
         * started the script, so its PINGs go unanswered; the notices keep the peer hearing
         * from it there, and it does not time the link out. */
        struct peer_conn *c = p->in;
        if (c != NULL && c->state == CONN_UP && !c->closing &&
            conn_queued(c) < t->cfg.queue_bytes_max &&
            len <= (size_t)t->cfg.limits.frame_bytes_max - WIRE_HEADER_BYTES - 8) {
            conn_hb_seal(c);
            int rc = wire_encode_forward(&c->pending, WIRE_BUSY, 0, data, len, &t->cfg.limits);
            HY_ASSERT(rc == HY_OK);
        }
    }
}

/* ---- while a script holds the loop ---------------------------------------------------------
 *
 * The loop cannot be entered from inside the script's step, so the pump reads the peers'
 * sockets itself (as server.c's busy poll reads its clients'), answers what can be answered
 * without the engine's loop (PING, and the forwards fn takes: SCRIPT KILL and friends), leaves
 * every other frame where it is for the loop to dispatch once the script is over, in its
 * order, and writes what it queued with uv_try_write (a uv_write would wait for the loop).
 * Frames that wait in libuv's own queue go first: then nothing more is written until they
 * have left. */

/* Reads what the socket holds now into c->in (records decrypted on a TLS link). 0 when
 * nothing came or the link failed (the loop sees the failure later). */
static int busy_conn_read(struct peer_conn *c)
{
    uv_os_fd_t fd = -1;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0) {
        return 0;
    }
    struct hy_buf *dst = c->tls != NULL ? &c->tls_in : &c->in;
    uint8_t *p = hy_buf_reserve(dst, PEER_READ_CHUNK);
    ssize_t r = recv(fd, p, dst->cap - dst->len, MSG_DONTWAIT);
    if (r <= 0) {
        return 0;
    }
    dst->len += (size_t)r;
    if (c->tls != NULL) {
        char err[300];
        int rc = io_tls_feed(c->tls, c->tls_in.data, c->tls_in.len, &c->in, &c->tls_out, err,
                             sizeof(err));
        hy_buf_reset(&c->tls_in);
        return rc == 0;
    }
    return 1;
}

/* Answers the frames of c->in past busy_off that can be answered now and drops them; the
 * others stay, in order. A reader of its own: the connection's keeps its place. */
static void busy_conn_scan(struct peer_conn *c, peer_busy_forward_fn fn, void *ctx)
{
    struct peer_transport *t = c->t;
    struct wire_reader rd;
    wire_reader_init(&rd, &t->cfg.limits);
    size_t off = c->busy_off;
    while (off < c->in.len) {
        struct wire_frame f;
        size_t consumed;
        if (wire_read(&rd, c->in.data + off, c->in.len - off, &consumed, &f) != HY_OK) {
            break; /* incomplete, or an error the loop reports */
        }
        int answered = 0;
        if (f.type == WIRE_PING && conn_queued(c) < t->cfg.queue_bytes_max) {
            wire_encode_ping(&c->pending, WIRE_PONG, f.ping_token);
            answered = 1;
        } else if ((f.type == WIRE_FORWARD || f.type == WIRE_BUSY) && fn != NULL) {
            struct hy_buf reply;
            hy_buf_init(&reply);
            if (fn(ctx, f.type, c->peer->addr.id, f.forward.data, f.forward.len, &reply) &&
                f.type == WIRE_FORWARD) {
                (void)send_forward(t, WIRE_FORWARD_REPLY, c->peer->addr.id, f.forward.req_id,
                                   reply.data, reply.len);
                answered = 1;
            }
            hy_buf_free(&reply);
        }
        if (answered) {
            memmove(c->in.data + off, c->in.data + off + consumed, c->in.len - off - consumed);
            c->in.len -= consumed;
        } else {
            off += consumed;
        }
    }
    wire_reader_free(&rd);
    c->busy_off = off;
    wire_reader_rewind(&c->reader); /* its frame in progress may have moved */
}

/* Hands what c queued to the socket now, as far as it takes it without blocking. */
static void busy_conn_write(struct peer_conn *c)
{
    conn_hb_seal(c);
    struct hy_buf *out = &c->pending;
    if (c->tls != NULL) {
        if (c->pending.len == 0 || !io_tls_ready(c->tls) ||
            io_tls_write(c->tls, c->pending.data, c->pending.len, &c->tls_out) != 0) {
            return;
        }
        hy_buf_reset(&c->pending);
        out = &c->tls_out;
    }
    if (out->len == 0) {
        return;
    }
    uv_buf_t b = uv_buf_init((char *)out->data, (unsigned)out->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0) {
        hy_buf_consume(out, (size_t)n);
    }
}

static void resume_cb(uv_timer_t *h)
{
    struct peer_transport *t = h->data;
    struct peer_conn *c = t->conns;
    while (c != NULL) {
        struct peer_conn *next = c->next; /* dispatching may close c */
        if (c->state == CONN_UP && !c->closing && c->in.len > 0) {
            conn_process(c);
        }
        c = next;
    }
}

void peer_transport_busy_pump(struct peer_transport *t, const uint8_t *notice, size_t len,
                              peer_busy_forward_fn fn, void *ctx)
{
    if (t->closing) {
        return;
    }
    if (notice != NULL) {
        peer_send_busy_all(t, notice, len);
    }
    for (struct peer_conn *c = t->conns; c != NULL; c = c->next) {
        /* The connection whose frame started the script is in use up the stack: its input
         * must not move (frames borrow from it), so it is not read until the script is over.
         * Peers send what a busy node must answer on their other link. */
        if (c->state != CONN_UP || c->closing || c->peer == NULL || c->dispatching) {
            continue;
        }
        if (busy_conn_read(c) || c->in.len > c->busy_off) {
            busy_conn_scan(c, fn, ctx);
        }
    }
    for (struct peer_conn *c = t->conns; c != NULL; c = c->next) {
        if (c->state == CONN_UP && !c->closing) {
            busy_conn_write(c);
        }
    }
    /* Once the loop runs again: what the pump left is dispatched even if nothing more comes. */
    uv_timer_start(&t->resume, resume_cb, 0, 0);
}

uint64_t peer_last_heard_ms(const struct peer_transport *t, const char *id)
{
    const struct peer *p = peer_find(t, id);
    if (p == NULL) {
        return 0;
    }
    uint64_t heard = 0;
    if (p->out != NULL && p->out->state == CONN_UP) {
        heard = p->out->last_recv_ms;
    }
    if (p->in != NULL && p->in->last_recv_ms > heard) {
        heard = p->in->last_recv_ms;
    }
    return heard;
}

int peer_send_wan_reply(struct peer_transport *t, uint64_t conn, const struct wire_wan *w)
{
    for (struct peer_conn *c = t->conns; c != NULL; c = c->next) {
        if (c->wan == conn && conn != 0 && !c->closing && c->state == CONN_UP) {
            if (conn_queued(c) >= t->cfg.queue_bytes_max) {
                return HY_EBUSY;
            }
            return wire_encode_wan(&c->pending, WIRE_WAN_REPLY, w, &t->cfg.limits);
        }
    }
    return HY_ENOTFOUND;
}

int peer_send_forward_reply(struct peer_transport *t, const char *to, uint64_t req_id,
                            const uint8_t *data, size_t len)
{
    return send_forward(t, WIRE_FORWARD_REPLY, to, req_id, data, len);
}

int peer_get_stats(const struct peer_transport *t, const char *id, struct peer_stats *out)
{
    const struct peer *p = peer_find(t, id);
    if (p == NULL) {
        return HY_ENOTFOUND;
    }
    *out = p->stats;
    return HY_OK;
}

/* ---- closing -------------------------------------------------------------------------------- */

void peer_transport_close(struct peer_transport *t, void (*close_cb)(void *arg), void *arg)
{
    HY_ASSERT(!t->closing);
    t->closing = 1;
    t->close_cb = close_cb;
    t->close_arg = arg;
    while (t->conns != NULL) {
        conn_close(t->conns, "transport closing");
    }
    uv_close((uv_handle_t *)&t->listener, handle_closed_cb);
    uv_close((uv_handle_t *)&t->tick, handle_closed_cb);
    uv_close((uv_handle_t *)&t->flusher, handle_closed_cb);
    uv_close((uv_handle_t *)&t->resume, handle_closed_cb);
    for (size_t i = 0; i < t->n_peers; i++) {
        uv_close((uv_handle_t *)&t->peers[i].retry, retry_closed_cb);
    }
}
