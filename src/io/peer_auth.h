/*
 * peer_auth.h - the peer handshake: protocol version, cluster name, node id and a shared
 * cluster secret proven by HMAC-SHA256 challenge-response (docs/peer-protocol.md).
 *
 * The handshake is a small state machine over decoded frames (no sockets), so the unit tests
 * drive both sides in memory; src/io/peer.c feeds it the frames of a connection. It lives in
 * the shell because it uses OpenSSL (HMAC, CRYPTO_memcmp, RAND_bytes), which the pure cores
 * may not.
 *
 *   initiator                                  acceptor
 *   HELLO(version, cluster, id_i, nonce_i) ->
 *                                           <- CHALLENGE(version, cluster, id_a, nonce_a,
 *                                                        mac_a = HMAC(acceptor transcript))
 *   AUTH(mac_i = HMAC(initiator transcript)) ->
 *                                           <- WELCOME
 * A WAN link (docs/multi-region.md "The link's transport") runs the same four steps with
 * WAN_HELLO(version, source cluster, link name, nonce_s) first: the target's node answers
 * CHALLENGE with its own cluster's name, and both MACs are made under the *target's* cluster
 * secret (the link's configured secret at the source) over a transcript with the WAN role
 * labels, the target cluster's name, the source cluster's name and the target node's id. The
 * link is then no member: peer.c gives it a connection of its own kind.
 * Each side checks what it receives and, when it refuses, sends REJECT(code, reason) before
 * closing, so the reason is logged on both sides. The transcripts (wire_auth_transcript) bind
 * both nonces, both ids and a role label: a recorded proof is useless on a new connection
 * and cannot be reflected back to its author.
 */
#ifndef HY_IO_PEER_AUTH_H
#define HY_IO_PEER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"
#include "proto/wire.h"

struct peer_hs_config {
    const char *cluster; /* borrowed; outlives every handshake using this config */
    const char *self_id;
    const uint8_t *secret;
    size_t secret_len;
    /* Acceptor: returns 1 when `id` is a node allowed to connect. */
    int (*known_cb)(void *ctx, const char *id);
    void *ctx;
    int wan_ok; /* acceptor: WAN links may connect (WAN_HELLO) */
};

enum peer_hs_state {
    PEER_HS_WAIT_HELLO = 1, /* acceptor */
    PEER_HS_WAIT_CHALLENGE, /* initiator */
    PEER_HS_WAIT_AUTH,      /* acceptor */
    PEER_HS_WAIT_WELCOME,   /* initiator */
    PEER_HS_DONE,
    PEER_HS_FAILED,
};

struct peer_hs {
    const struct peer_hs_config *cfg; /* borrowed */
    int initiator;
    enum peer_hs_state state;
    char expected[WIRE_NAME_MAX + 1]; /* initiator: the id we dialled */
    char peer[WIRE_NAME_MAX + 1];     /* the id the other side claims (proven when DONE) */
    /* A WAN link's handshake: at the target, peer is the source cluster's name and link the
     * link's; at the source, peer is the target node's id and target its cluster's name. */
    int wan;
    char link[WIRE_NAME_MAX + 1];
    char target[WIRE_NAME_MAX + 1];
    uint8_t nonce_self[WIRE_NONCE_BYTES];
    uint8_t nonce_peer[WIRE_NONCE_BYTES];
    /* Set when FAILED: who refused, the code, and a reason for the log. */
    int refused_by_peer;
    uint16_t reject_code;
    char reason[WIRE_REASON_MAX + 80];
};

/* Starts an initiator handshake towards the node `expected_id` and appends HELLO to out. */
void peer_hs_start_initiator(struct peer_hs *hs, const struct peer_hs_config *cfg,
                             const char *expected_id, struct hy_buf *out);
/* Starts a WAN link's handshake (the source): cfg->cluster and cfg->self_id are the source
 * cluster's name, cfg->secret the link's (the target's cluster secret); appends WAN_HELLO. */
void peer_hs_start_wan(struct peer_hs *hs, const struct peer_hs_config *cfg, const char *link,
                       struct hy_buf *out);
/* Starts an acceptor handshake: it waits for HELLO (or WAN_HELLO when cfg->wan_ok). */
void peer_hs_start_acceptor(struct peer_hs *hs, const struct peer_hs_config *cfg);

/*
 * Feeds one frame received during the handshake; the frame is borrowed for the call.
 * Returns HY_EAGAIN (more frames expected; out may have gained a frame to send), HY_OK (the
 * peer is authenticated; the acceptor appended WELCOME to out), or HY_EPROTO (the handshake
 * failed: hs->reason says why; when we refused, out holds the REJECT to send before closing).
 */
int peer_hs_on_frame(struct peer_hs *hs, const struct wire_frame *f,
                     struct hy_buf *out) HY_MUST_CHECK;

/* HMAC-SHA256 of msg under key into mac_out. */
void peer_auth_mac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                   uint8_t mac_out[WIRE_MAC_BYTES]);

/* SHA-256 of buf into hash_out (32 bytes): ACL passwords are stored hashed (node_set_hash). */
void peer_auth_sha256(const uint8_t *buf, size_t len, uint8_t *hash_out);

/* Fills buf with cryptographically random bytes (aborts if the system cannot provide them). */
void peer_auth_random(uint8_t *buf, size_t len);

#endif
