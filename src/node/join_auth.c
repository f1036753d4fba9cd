/*
 * join_auth.c - HALYARD CHALLENGE and HALYARD PEER-AUTH (see join_auth.h).
 */
#include "node/join_auth.h"

#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "node/node_internal.h"

_Static_assert(sizeof(((struct node_client *)0)->join_nonce) == JOIN_AUTH_NONCE_BYTES,
               "the client keeps one nonce");

size_t join_auth_message(const char *cluster, const char *name, const char *nonce_hex, char *out,
                         size_t cap)
{
    int len = snprintf(out, cap, "halyard-join-v1\n%s\n%s\n%s", cluster, name, nonce_hex);
    return len < 0 || (size_t)len >= cap ? 0 : (size_t)len;
}

void join_auth_hex(const uint8_t *buf, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[buf[i] >> 4];
        out[2 * i + 1] = digits[buf[i] & 15];
    }
    out[2 * len] = '\0';
}

void node_set_crypto(struct hy_node *n, node_mac_fn mac, node_random_fn random)
{
    n->crypto_mac = mac;
    n->crypto_random = random;
}

void node_set_hash(struct hy_node *n, node_hash_fn sha256)
{
    n->crypto_hash = sha256;
}

int join_auth_open_before_auth(const struct cmd_ctx *x)
{
    return x->argc >= 2 && node_arg_is(&x->argv[0], "HALYARD") &&
           (node_arg_is(&x->argv[1], "CHALLENGE") || node_arg_is(&x->argv[1], "PEER-AUTH"));
}

/* HALYARD CHALLENGE */
void cmd_halyard_challenge(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    if (x->argc != 2) {
        node_reply_syntax_error(x);
        return;
    }
    if (n->crypto_random == NULL || n->cfg->cluster_secret[0] == '\0') {
        resp_write_error(&x->w, "ERR this node has no cluster-secret to prove");
        return;
    }
    n->crypto_random(c->join_nonce, sizeof(c->join_nonce));
    c->join_nonce_set = 1;
    char hex[2 * JOIN_AUTH_NONCE_BYTES + 1];
    join_auth_hex(c->join_nonce, sizeof(c->join_nonce), hex);
    resp_write_bulk_str(&x->w, hex);
}

/* HALYARD PEER-AUTH name mac */
void cmd_halyard_peer_auth(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    if (x->argc != 4) {
        node_reply_syntax_error(x);
        return;
    }
    if (!c->join_nonce_set || n->crypto_mac == NULL) {
        resp_write_error(&x->w, "ERR run HALYARD CHALLENGE first");
        return;
    }
    c->join_nonce_set = 0; /* one proof per nonce, right or wrong */
    char name[NODE_MEMBER_NAME_MAX + 1], nonce_hex[2 * JOIN_AUTH_NONCE_BYTES + 1];
    char msg[NODE_MEMBER_NAME_MAX + 512], want[2 * JOIN_AUTH_MAC_BYTES + 1];
    snprintf(name, sizeof(name), "%.*s", (int)HY_MIN(x->argv[2].len, NODE_MEMBER_NAME_MAX),
             (const char *)x->argv[2].ptr);
    join_auth_hex(c->join_nonce, sizeof(c->join_nonce), nonce_hex);
    size_t len = join_auth_message(n->cfg->cluster_name, name, nonce_hex, msg, sizeof(msg));
    uint8_t mac[JOIN_AUTH_MAC_BYTES];
    n->crypto_mac((const uint8_t *)n->cfg->cluster_secret, strlen(n->cfg->cluster_secret),
                  (const uint8_t *)msg, len, mac);
    join_auth_hex(mac, sizeof(mac), want);
    /* Constant time: the comparison must not tell how much of a guess was right. */
    unsigned diff = x->argv[3].len != sizeof(want) - 1 || len == 0;
    for (size_t i = 0; i < sizeof(want) - 1 && i < x->argv[3].len; i++) {
        diff |= (unsigned)(x->argv[3].ptr[i] ^ (uint8_t)want[i]);
    }
    if (diff != 0) {
        hy_log(n->log, HY_LOG_WARN,
               "client %s: HALYARD PEER-AUTH as %s refused (another cluster-secret or "
               "cluster-name)",
               c->addr, name);
        resp_write_error(&x->w, "ERR cluster-secret or cluster-name differs from this cluster's");
        return;
    }
    c->authenticated = 1;
    c->user[0] = '\0'; /* a member: ACL rules are for clients */
    resp_write_ok(&x->w);
}
