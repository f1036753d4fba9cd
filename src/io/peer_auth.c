/*
 * peer_auth.c - the peer handshake state machine and its HMAC (see peer_auth.h).
 */
#include "io/peer_auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/assert.h"

void peer_auth_mac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                   uint8_t mac_out[WIRE_MAC_BYTES])
{
    unsigned int mac_len = 0;
    /* OpenSSL refuses a NULL key even when its length is 0. */
    static const uint8_t empty = 0;
    const uint8_t *k = key_len > 0 ? key : &empty;
    HY_ASSERT(key_len <= INT32_MAX);
    uint8_t *r = HMAC(EVP_sha256(), k, (int)key_len, msg, len, mac_out, &mac_len);
    HY_ASSERT(r != NULL && mac_len == WIRE_MAC_BYTES);
}

void peer_auth_sha256(const uint8_t *buf, size_t len, uint8_t *hash_out)
{
    uint8_t *r = SHA256(buf, len, hash_out);
    HY_ASSERT(r != NULL);
}

void peer_auth_random(uint8_t *buf, size_t len)
{
    HY_ASSERT(len <= INT32_MAX);
    /* A predictable nonce would let a recorded proof be replayed: better stop than go on. */
    int ok = RAND_bytes(buf, (int)len);
    HY_ASSERT(ok == 1);
}

/* MAC of the transcript for `role` (the initiator's or the acceptor's proof), from this
 * handshake's point of view. A WAN link's: the WAN labels, the target cluster's name, the
 * source cluster's name as the initiator's id. */
static void hs_mac(const struct peer_hs *hs, enum wire_auth_role role,
                   uint8_t mac_out[WIRE_MAC_BYTES])
{
    const char *initiator = hs->initiator ? hs->cfg->self_id : hs->peer;
    const char *acceptor = hs->initiator ? hs->peer : hs->cfg->self_id;
    const uint8_t *nonce_i = hs->initiator ? hs->nonce_self : hs->nonce_peer;
    const uint8_t *nonce_a = hs->initiator ? hs->nonce_peer : hs->nonce_self;
    const char *cluster = hs->cfg->cluster;
    if (hs->wan) {
        role = role == WIRE_AUTH_BY_INITIATOR ? WIRE_AUTH_WAN_BY_SOURCE : WIRE_AUTH_WAN_BY_TARGET;
        cluster = hs->initiator ? hs->target : hs->cfg->cluster;
    }
    struct hy_buf t;
    hy_buf_init(&t);
    wire_auth_transcript(&t, role, cluster, initiator, acceptor, nonce_i, nonce_a);
    peer_auth_mac(hs->cfg->secret, hs->cfg->secret_len, t.data, t.len, mac_out);
    hy_buf_free(&t);
}

static int hs_refuse(struct peer_hs *hs, struct hy_buf *out, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* We refuse: record the reason and queue REJECT so the other side logs it too. */
static int hs_refuse(struct peer_hs *hs, struct hy_buf *out, uint16_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hs->reason, sizeof(hs->reason), fmt, ap);
    va_end(ap);
    hs->state = PEER_HS_FAILED;
    hs->refused_by_peer = 0;
    hs->reject_code = code;
    wire_encode_reject(out, code, hs->reason);
    return HY_EPROTO;
}

static int hs_on_reject(struct peer_hs *hs, const struct wire_reject *rj)
{
    hs->state = PEER_HS_FAILED;
    hs->refused_by_peer = 1;
    hs->reject_code = rj->code;
    snprintf(hs->reason, sizeof(hs->reason), "%s: %.*s", wire_reject_name(rj->code),
             (int)rj->text_len, (const char *)rj->text);
    return HY_EPROTO;
}

/* Starts an initiator: its nonce drawn, HELLO (node: the id) or WAN_HELLO (node: the link's
 * name) appended to out. The names were checked by the caller (the transport's config, or
 * wan_link.c). */
static void hs_start(struct peer_hs *hs, const struct peer_hs_config *cfg, int wan,
                     const char *node, struct hy_buf *out)
{
    memset(hs, 0, sizeof(*hs));
    hs->cfg = cfg;
    hs->initiator = 1;
    hs->wan = wan;
    hs->state = PEER_HS_WAIT_CHALLENGE;
    peer_auth_random(hs->nonce_self, sizeof(hs->nonce_self));
    struct wire_hello h = {
        .version = WIRE_VERSION,
        .cluster = (const uint8_t *)cfg->cluster,
        .cluster_len = strlen(cfg->cluster),
        .node = (const uint8_t *)node,
        .node_len = strlen(node),
        .nonce = hs->nonce_self,
        .mac = NULL,
    };
    int rc = wan ? wire_encode_wan_hello(out, &h) : wire_encode_hello(out, &h);
    HY_ASSERT(rc == HY_OK);
}

void peer_hs_start_initiator(struct peer_hs *hs, const struct peer_hs_config *cfg,
                             const char *expected_id, struct hy_buf *out)
{
    hs_start(hs, cfg, 0, cfg->self_id, out);
    HY_ASSERT(strlen(expected_id) <= WIRE_NAME_MAX);
    strcpy(hs->expected, expected_id);
}

void peer_hs_start_wan(struct peer_hs *hs, const struct peer_hs_config *cfg, const char *link,
                       struct hy_buf *out)
{
    hs_start(hs, cfg, 1, link, out);
    HY_ASSERT(strlen(link) <= WIRE_NAME_MAX);
    strcpy(hs->link, link);
}

void peer_hs_start_acceptor(struct peer_hs *hs, const struct peer_hs_config *cfg)
{
    memset(hs, 0, sizeof(*hs));
    hs->cfg = cfg;
    hs->initiator = 0;
    hs->state = PEER_HS_WAIT_HELLO;
}

/* Checks the fields both HELLO and CHALLENGE carry, and records the peer's id and nonce. */
static int hs_check_hello(struct peer_hs *hs, const struct wire_hello *h, struct hy_buf *out)
{
    memcpy(hs->peer, h->node, h->node_len);
    hs->peer[h->node_len] = '\0';
    memcpy(hs->nonce_peer, h->nonce, WIRE_NONCE_BYTES);
    if (h->version != WIRE_VERSION) {
        return hs_refuse(hs, out, WIRE_REJECT_VERSION,
                         "node '%s' speaks peer protocol version %u; this node speaks %u", hs->peer,
                         h->version, WIRE_VERSION);
    }
    const char *cluster = hs->cfg->cluster;
    if (h->cluster_len != strlen(cluster) || memcmp(h->cluster, cluster, h->cluster_len) != 0) {
        return hs_refuse(hs, out, WIRE_REJECT_CLUSTER,
                         "node '%s' belongs to cluster '%.*s'; this is cluster '%s'", hs->peer,
                         (int)h->cluster_len, (const char *)h->cluster, cluster);
    }
    return HY_OK;
}

/* A WAN link's HELLO: its source cluster's name and link name, its nonce. */
static int hs_on_wan_hello(struct peer_hs *hs, const struct wire_hello *h, struct hy_buf *out)
{
    hs->wan = 1;
    memcpy(hs->peer, h->cluster, h->cluster_len);
    hs->peer[h->cluster_len] = '\0';
    memcpy(hs->link, h->node, h->node_len);
    hs->link[h->node_len] = '\0';
    memcpy(hs->nonce_peer, h->nonce, WIRE_NONCE_BYTES);
    if (h->version != WIRE_VERSION) {
        return hs_refuse(hs, out, WIRE_REJECT_VERSION,
                         "WAN link '%s' of cluster '%s' speaks peer protocol version %u; this "
                         "node speaks %u",
                         hs->link, hs->peer, h->version, WIRE_VERSION);
    }
    if (!hs->cfg->wan_ok) {
        return hs_refuse(hs, out, WIRE_REJECT_PROTOCOL, "this node takes no WAN link");
    }
    return HY_OK;
}

static int hs_on_hello(struct peer_hs *hs, const struct wire_frame *f, struct hy_buf *out)
{
    const struct wire_hello *h = &f->hello;
    int rc = f->type == WIRE_WAN_HELLO ? hs_on_wan_hello(hs, h, out) : hs_check_hello(hs, h, out);
    if (rc != HY_OK) {
        return rc;
    }
    const struct peer_hs_config *cfg = hs->cfg;
    if (!hs->wan && (strcmp(hs->peer, cfg->self_id) == 0 || !cfg->known_cb(cfg->ctx, hs->peer))) {
        return hs_refuse(hs, out, WIRE_REJECT_UNKNOWN_NODE,
                         "node id '%s' is not a configured peer of '%s'", hs->peer, cfg->self_id);
    }
    peer_auth_random(hs->nonce_self, sizeof(hs->nonce_self));
    uint8_t mac[WIRE_MAC_BYTES];
    hs_mac(hs, WIRE_AUTH_BY_ACCEPTOR, mac);
    struct wire_hello c = {
        .version = WIRE_VERSION,
        .cluster = (const uint8_t *)cfg->cluster,
        .cluster_len = strlen(cfg->cluster),
        .node = (const uint8_t *)cfg->self_id,
        .node_len = strlen(cfg->self_id),
        .nonce = hs->nonce_self,
        .mac = mac,
    };
    rc = wire_encode_hello(out, &c);
    HY_ASSERT(rc == HY_OK);
    hs->state = PEER_HS_WAIT_AUTH;
    return HY_EAGAIN;
}

/* The target's CHALLENGE to a WAN link: any node of the cluster the link names may answer. */
static void hs_wan_challenge(struct peer_hs *hs, const struct wire_hello *h)
{
    memcpy(hs->peer, h->node, h->node_len);
    hs->peer[h->node_len] = '\0';
    memcpy(hs->target, h->cluster, h->cluster_len);
    hs->target[h->cluster_len] = '\0';
    memcpy(hs->nonce_peer, h->nonce, WIRE_NONCE_BYTES);
}

static int hs_on_challenge(struct peer_hs *hs, const struct wire_hello *h, struct hy_buf *out)
{
    if (hs->wan) {
        hs_wan_challenge(hs, h);
        if (h->version != WIRE_VERSION) {
            return hs_refuse(hs, out, WIRE_REJECT_VERSION,
                             "node '%s' speaks peer protocol version %u; this node speaks %u",
                             hs->peer, h->version, WIRE_VERSION);
        }
    } else {
        int rc = hs_check_hello(hs, h, out);
        if (rc != HY_OK) {
            return rc;
        }
        if (strcmp(hs->peer, hs->expected) != 0) {
            return hs_refuse(hs, out, WIRE_REJECT_UNKNOWN_NODE,
                             "dialled node '%s' but node '%s' answered", hs->expected, hs->peer);
        }
    }
    uint8_t want[WIRE_MAC_BYTES];
    hs_mac(hs, WIRE_AUTH_BY_ACCEPTOR, want);
    if (CRYPTO_memcmp(want, h->mac, WIRE_MAC_BYTES) != 0 && hs->wan) {
        return hs_refuse(hs, out, WIRE_REJECT_AUTH,
                         "node '%s' of cluster '%s' did not prove the link's secret: the link's "
                         "secret is not that cluster's cluster-secret (or --to names another "
                         "cluster)",
                         hs->peer, hs->target);
    }
    if (CRYPTO_memcmp(want, h->mac, WIRE_MAC_BYTES) != 0) {
        return hs_refuse(hs, out, WIRE_REJECT_AUTH,
                         "node '%s' failed to prove the cluster secret of node '%s' (secrets "
                         "differ: one of the two is misconfigured)",
                         hs->peer, hs->cfg->self_id);
    }
    uint8_t mac[WIRE_MAC_BYTES];
    hs_mac(hs, WIRE_AUTH_BY_INITIATOR, mac);
    wire_encode_auth(out, mac);
    hs->state = PEER_HS_WAIT_WELCOME;
    return HY_EAGAIN;
}

static int hs_on_auth(struct peer_hs *hs, const uint8_t *mac, struct hy_buf *out)
{
    uint8_t want[WIRE_MAC_BYTES];
    hs_mac(hs, WIRE_AUTH_BY_INITIATOR, want);
    if (CRYPTO_memcmp(want, mac, WIRE_MAC_BYTES) != 0 && hs->wan) {
        return hs_refuse(hs, out, WIRE_REJECT_AUTH,
                         "WAN link '%s' of cluster '%s' failed to prove the cluster secret of "
                         "cluster '%s' (the link's secret is not this cluster's cluster-secret)",
                         hs->link, hs->peer, hs->cfg->cluster);
    }
    if (CRYPTO_memcmp(want, mac, WIRE_MAC_BYTES) != 0) {
        return hs_refuse(hs, out, WIRE_REJECT_AUTH,
                         "node '%s' failed to prove the cluster secret of node '%s' (secrets "
                         "differ: one of the two is misconfigured)",
                         hs->peer, hs->cfg->self_id);
    }
    wire_encode_welcome(out);
    hs->state = PEER_HS_DONE;
    return HY_OK;
}

int peer_hs_on_frame(struct peer_hs *hs, const struct wire_frame *f, struct hy_buf *out)
{
    HY_ASSERT(hs->state != PEER_HS_DONE && hs->state != PEER_HS_FAILED);
    if (f->type == WIRE_REJECT) {
        return hs_on_reject(hs, &f->reject);
    }
    switch (hs->state) {
    case PEER_HS_WAIT_HELLO:
        if (f->type == WIRE_HELLO || f->type == WIRE_WAN_HELLO) {
            return hs_on_hello(hs, f, out);
        }
        break;
    case PEER_HS_WAIT_CHALLENGE:
        if (f->type == WIRE_CHALLENGE) {
            return hs_on_challenge(hs, &f->hello, out);
        }
        break;
    case PEER_HS_WAIT_AUTH:
        if (f->type == WIRE_AUTH) {
            return hs_on_auth(hs, f->mac, out);
        }
        break;
    case PEER_HS_WAIT_WELCOME:
        if (f->type == WIRE_WELCOME) {
            hs->state = PEER_HS_DONE;
            return HY_OK;
        }
        break;
    default: HY_UNREACHABLE();
    }
    return hs_refuse(hs, out, WIRE_REJECT_PROTOCOL, "unexpected %s frame during the handshake",
                     wire_type_name(f->type));
}
