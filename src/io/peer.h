/*
 * peer.h - the peer transport: TCP connections between halyard nodes on libuv, carrying the
 * frames of src/proto/wire.h (docs/peer-protocol.md).
 *
 * The transport listens on the peer port, dials every configured peer, authenticates each
 * connection (version, cluster name, node id, HMAC proof of the cluster secret: peer_auth.h)
 * and delivers RAFT, FORWARD and FORWARD_REPLY frames to callbacks. Everything runs on the
 * thread of the libuv loop given at creation: every function here must be called on it, and
 * every callback is called on it.
 *
 * Invariants:
 *  - each peer has one outbound connection (ours, for what we send) and at most one
 *    authenticated inbound connection (theirs, for what they send); a guest (admit_cb) has
 *    only the inbound one, which carries both ways;
 *  - a peer's send queue never holds more than queue_bytes_max bytes plus one frame: a frame
 *    that would exceed it is dropped and counted; frames for a peer that is not up are
 *    dropped and counted, never queued for later (Raft retransmits), except while its idle
 *    link is dialled again (below);
 *  - a refused handshake is logged on this side with its reason, and the reason is sent to
 *    the other side in REJECT so that it is logged there too;
 *  - a connection that hears nothing for ping_timeout_ms (a link on demand: below), or does
 *    not finish its handshake in handshake_timeout_ms, is closed; outbound connections are
 *    redialled with exponential backoff and jitter (backoff_min_ms .. backoff_max_ms).
 *
 * Idle links (idle_close_ms, docs/peer-protocol.md "Keepalive and idle links"): once gossip
 * named its ring, a link to a peer off it is a link on demand: no PING and no silence deadline
 * on its dialler's side (TCP_USER_TIMEOUT closes what cannot deliver), every inbound
 * connection judged by what arrives from the peer on either connection for idle_close_ms +
 * ping_timeout_ms (without idle_close_ms: PINGs only after a silence); one that carried
 * nothing but keepalive for idle_close_ms is closed by its dialler, quietly: the peer stays up for
 * the node (no state_cb, no log above debug, no redial) and is dialled again when a frame must go
 * out to it, the frames waiting (bounded like the queue) until the handshake is done. Only a dial
 * on demand that fails reports the peer down. Gossip, not these links, says who is alive.
 */
#ifndef HY_IO_PEER_H
#define HY_IO_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/log.h"
#include "common/status.h"
#include "proto/wire.h"

#define PEER_MAX        RAFT_SERVERS_MAX
/* Guests admitted at once (peer_callbacks.admit_cb); each takes a peer slot. */
#define PEER_GUESTS_MAX 4
#define PEER_HOST_MAX   255

/* One configured peer, "id@host:port". */
struct peer_addr {
    char id[WIRE_NAME_MAX + 1];
    char host[PEER_HOST_MAX + 1];
    uint16_t port;
};

/* Parses "id@host:port" (host may be "[v6addr]"). Returns HY_OK or HY_ECONFIG. */
int peer_addr_parse(const char *spec, struct peer_addr *out) HY_MUST_CHECK;

struct io_tls_ctx;

struct peer_config {
    const char *self_id;   /* borrowed for peer_transport_create (copied) */
    const char *cluster;   /* copied */
    const uint8_t *secret; /* copied; must not be empty */
    size_t secret_len;
    const char *listen_host; /* copied; e.g. "0.0.0.0" */
    uint16_t listen_port;    /* 0: an ephemeral port (see peer_transport_port) */
    /* The peers to dial and to accept (copied). An entry with self_id is skipped, so the
     * whole bootstrap list may be passed. At most PEER_MAX others. */
    const struct peer_addr *peers;
    size_t n_peers;
    size_t queue_bytes_max;        /* per peer send queue bound (default 8 MiB) */
    uint32_t ping_interval_ms;     /* default 250 */
    uint32_t ping_timeout_ms;      /* default 2000 */
    uint32_t handshake_timeout_ms; /* default 2000 */
    uint32_t backoff_min_ms;       /* default 50 */
    uint32_t backoff_max_ms;       /* default 2000 */
    uint32_t beacon_ms; /* an empty HEARTBEAT on a link idle this long; 0 = none (default) */
    /* A link off gossip's ring (peer_transport_set_beacons) sends no keepalive, and on which
     * nothing went out for this long is closed quietly by its dialler and dialled again when a
     * frame must go out (see "Idle links" below); 0 = never, and PINGs (default). */
    uint32_t idle_close_ms;
    uint32_t suspect_ms; /* liveness_cb(0) for a peer silent this long; 0 = never (default) */
    int coalesce;        /* heartbeats and their answers travel in HEARTBEAT frames (default 1) */
    uint64_t seed;       /* reconnect jitter */
    struct wire_limits limits; /* frame_bytes_max >= 4096, entries_max >= 1 */
    const struct hy_log *log;  /* borrowed; outlives the transport; may be NULL */
    struct io_tls_ctx *tls;    /* tls-cluster: as peer_transport_set_tls; NULL: clear text */
};

/* Fills the defaults above; the caller sets identity, secret, addresses and seed. */
void peer_config_default(struct peer_config *cfg);

/*
 * The callbacks. `from` is the sending peer's configured id (valid for the transport's
 * lifetime). Every pointer argument is borrowed for the call only: the message, its entries
 * and chunk, and payloads point into the connection's input buffer, so copy what you keep.
 * A callback may send, and may call peer_transport_close. A NULL callback ignores its frames.
 */
struct peer_callbacks {
    void *ctx;
    void (*raft_cb)(void *ctx, const char *from, uint16_t group, const struct raft_message *m);
    void (*forward_cb)(void *ctx, const char *from, uint64_t req_id, const uint8_t *data,
                       size_t len);
    void (*forward_reply_cb)(void *ctx, const char *from, uint64_t req_id, const uint8_t *data,
                             size_t len);
    /* Our outbound connection to `id` became usable (up = 1) or stopped being usable
     * (up = 0, with a reason); called once per transition. May be NULL. */
    void (*state_cb)(void *ctx, const char *id, int up, const char *reason);
    /* A PUBLISH frame (payload borrowed). May be NULL. */
    void (*publish_cb)(void *ctx, const char *from, const uint8_t *data, size_t len);
    /* Node-level failure detection (suspect_ms): `id` is suspected down (alive = 0) or heard
     * again (1), while its link stays up. May be NULL. */
    void (*liveness_cb)(void *ctx, const char *id, int alive);
    /* A GOSSIP frame: one membership message for src/membership (payload borrowed). */
    void (*gossip_cb)(void *ctx, const char *from, const uint8_t *data, size_t len);
    /* A BUSY frame: the sender's loop is held by a script, or no longer (payload borrowed).
     * May be NULL. */
    void (*busy_cb)(void *ctx, const char *from, const uint8_t *data, size_t len);
    /*
     * Guests. A node that proves the cluster secret under a name the peer list does not hold
     * is refused, unless admit_cb(ctx, id, 0) returns 1: the engine does not know it yet (it
     * joined while this node was cut off, and only its own messages may bring the log entry
     * that names it: node.h node_guest_admissible). It is then a guest: up (state_cb) while
     * the connection it dialled lasts, every frame to it goes on that connection, and it is
     * down and forgotten when that one closes. admit_cb(ctx, id, 1) tells the engine it was
     * admitted. At most PEER_GUESTS_MAX at once. With tls-cluster, only one whose certificate
     * names the IP address its connection comes from (there is no member address for the
     * name yet). A guest that peer_transport_set_peers lists becomes a peer (dialled), its
     * connection closed if its certificate does not name the listed address; one the engine
     * no longer admits is closed there. NULL: no guests.
     */
    int (*admit_cb)(void *ctx, const char *id, int admitted);
    /*
     * WAN links (docs/multi-region.md "The link's transport"): another cluster's link that
     * proved this cluster's secret (WAN_HELLO, peer_auth.h) gets a connection of its own kind:
     * no peer, no Raft, no guest, no membership effect. Its WAN_APPLY, WAN_DEMOTE and
     * WAN_PARTS frames come here with the connection's id (`conn`), the source cluster's name
     * and the link's name; the answers go back by peer_send_wan_reply. PINGs are answered;
     * any other frame closes it. NULL: no WAN link is taken (WAN_HELLO is refused).
     */
    void (*wan_cb)(void *ctx, uint64_t conn, const char *source, const char *link,
                   const struct wire_frame *f);
    /* The frames of one read from a connection are delivered between batch_cb(ctx, 1) and
     * batch_cb(ctx, 0), so that work each frame would repeat (looking at every waiting
     * client) can be done once for all of them. May be NULL. */
    void (*batch_cb)(void *ctx, int begin);
};

struct peer_stats {
    int up;
    uint64_t queued_bytes;         /* now: written to the queue, not yet acknowledged by libuv */
    uint64_t queued_bytes_peak;    /* highest since creation */
    uint64_t dropped_full;         /* frames dropped because the queue was over its bound */
    uint64_t dropped_down;         /* frames dropped because the peer was not up */
    uint64_t frames_sent;          /* frames queued for sending */
    uint64_t heartbeats_coalesced; /* Raft messages sent as entries of HEARTBEAT frames */
    uint64_t frames_recv;          /* frames received from the peer (both connections) */
    uint64_t handshakes;           /* outbound connections authenticated */
    uint64_t beacons_sent;         /* empty HEARTBEATs sent on its idle link (beacon_ms) */
    uint64_t pings_sent;  /* keepalive PINGs sent on the outbound connection (conn_ping_ms) */
    uint64_t idle_closes; /* outbound connections closed for idleness (idle_close_ms) */
    int parked;           /* 1 while its link is closed for idleness (up stays 1) */
};

struct peer_transport;

/*
 * Validates cfg, binds and listens, and starts dialling every peer. cfg and cbs are copied.
 * Returns HY_OK with *t_out set, HY_ECONFIG for an invalid configuration (reason logged) or
 * HY_EIO when the listen address cannot be bound (reason logged).
 */
int peer_transport_create(uv_loop_t *loop, const struct peer_config *cfg,
                          const struct peer_callbacks *cbs,
                          struct peer_transport **t_out) HY_MUST_CHECK;

/*
 * Replaces the peer list (membership changed): new peers are dialled, removed ones have their
 * connections closed and are refused from then on, a peer whose address changed is redialled
 * there. Entries with self_id are skipped. Returns HY_OK, or HY_ENOSPC / HY_ECONFIG when some
 * entry could not be taken (logged; the others are).
 */
int peer_transport_set_peers(struct peer_transport *t, const struct peer_addr *peers, size_t n);

/*
 * Beacons (beacon_ms) go only to the peers named in ids (read during the call) from now on; a
 * peer added later gets none until a call names it. Before the first call every peer gets
 * them. Gossip names its ring neighbours here (2k of them), so that each node beacons to 4
 * peers, not to all n - 1.
 */
void peer_transport_set_beacons(struct peer_transport *t, const char *const *ids, size_t n);

/* tls-cluster: every connection made or accepted from now on speaks TLS with `tls` (from
 * io_tls_cluster_ctx_new; borrowed, the caller keeps it alive while connections may start;
 * NULL: clear text). Open connections keep what they started with. */
void peer_transport_set_tls(struct peer_transport *t, struct io_tls_ctx *tls);

/* The port actually listened on. */
uint16_t peer_transport_port(const struct peer_transport *t);

/*
 * Queues one frame to peer `to`; m / data are borrowed for the call (encoded at once).
 * Returns HY_OK (queued), HY_ENOTFOUND (no such peer), HY_ECLOSED (peer not up: dropped),
 * HY_EBUSY (queue over its bound: dropped), HY_EINVAL / HY_ETOOBIG (cannot be encoded).
 * Frames leave once per loop turn, in the order queued.
 */
int peer_send_raft(struct peer_transport *t, const char *to, uint16_t group,
                   const struct raft_message *m);
int peer_send_forward(struct peer_transport *t, const char *to, uint64_t req_id,
                      const uint8_t *data, size_t len);
/* The same; with inbound set, on the connection `to` dialled when it is up (a busy peer's
 * pump reads that one: peer_transport_busy_pump), else on ours. */
int peer_send_forward_on(struct peer_transport *t, const char *to, uint64_t req_id,
                         const uint8_t *data, size_t len, int inbound);
/* A PUBLISH frame (pubsub.c's payload) to `to`: dropped, not queued for later, when the
 * link is down or full (at most once). */
int peer_send_publish(struct peer_transport *t, const char *to, const uint8_t *data, size_t len);
/* A GOSSIP frame (membership message bytes); dropped like any frame when the peer is down. */
int peer_send_gossip(struct peer_transport *t, const char *to, const uint8_t *data, size_t len);
/* A BUSY frame (the engine's busy notice) to every peer; dropped like any frame where the
 * peer is down. */
void peer_send_busy_all(struct peer_transport *t, const uint8_t *data, size_t len);

/*
 * While a Lua script holds the event loop (docs/protocol.md "Busy scripts"), called from the
 * script's poll: queues the BUSY notice (notice, len; NULL: none this time) to every peer,
 * reads what the peers sent, answers PINGs and the FORWARDs fn answers (fn, given the frame's
 * type, returns 1 with the reply bytes in *reply, or 0 to leave the request for the loop), shows
 * fn every BUSY frame (which stays for the loop too), and writes what was queued without
 * waiting for the loop. Every other frame stays queued, in order, and is
 * dispatched once the loop runs again. Nothing here calls a callback of cbs.
 */
typedef int (*peer_busy_forward_fn)(void *ctx, uint8_t type, const char *from, const uint8_t *data,
                                    size_t len, struct hy_buf *reply);
void peer_transport_busy_pump(struct peer_transport *t, const uint8_t *notice, size_t len,
                              peer_busy_forward_fn fn, void *ctx);

/* When anything last arrived from `id` on either connection (the loop's clock, uv_now), or 0
 * when nothing ever did or the peer is unknown: the phi-accrual detector's heartbeats. */
uint64_t peer_last_heard_ms(const struct peer_transport *t, const char *id);
/* A WAN_REPLY on the WAN link connection `conn` (wan_cb); HY_ENOTFOUND when it closed since,
 * HY_EBUSY when its queue is full (the link sends the request again), else what
 * wire_encode_wan says. */
int peer_send_wan_reply(struct peer_transport *t, uint64_t conn,
                        const struct wire_wan *w) HY_MUST_CHECK;

int peer_send_forward_reply(struct peer_transport *t, const char *to, uint64_t req_id,
                            const uint8_t *data, size_t len);

/* Copies peer `id`'s counters; HY_ENOTFOUND when it is not configured. */
int peer_get_stats(const struct peer_transport *t, const char *id, struct peer_stats *out);

/* Closes every connection and handle; close_cb(arg) runs once all are closed, after which
 * t is freed. No callback of cbs runs after this call. */
/* Hands every connection's queued frames to the kernel now rather than at the loop's next
 * prepare phase (before the loop blocks: durable.h io_durable_set_before_sync). */
void peer_transport_flush(struct peer_transport *t);

void peer_transport_close(struct peer_transport *t, void (*close_cb)(void *arg), void *arg);

/* Internal, exposed for tests: the redial delay after `attempts` consecutive failures, in
 * [d - d/2, d] where d = min(backoff_min_ms * 2^attempts, backoff_max_ms). */
struct hy_prng;
uint64_t peer__backoff_ms(const struct peer_config *cfg, uint32_t attempts, struct hy_prng *prng);

#endif
