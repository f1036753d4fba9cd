/*
 * join_auth.c - HALYARD CHALLENGE, HALYARD PEER-AUTH and HALYARD WAN-AUTH (see join_auth.h).
 */
#include "node/join_auth.h"

#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "node/node_internal.h"
#include "node/wan.h"

_Static_assert(sizeof(((struct node_client *)0)->join_nonce) == JOIN_AUTH_NONCE_BYTES,
               "the client keeps one nonce");

size_t join_auth_message(const char *cluster, const char *name, const char *nonce_hex, char *out,
                         size_t cap)
{
    int len = snprintf(out, cap, "halyard-join-v1\n%s\n%s\n%s", cluster, name, nonce_hex);
    return len < 0 || (size_t)len >= cap ? 0 : (size_t)len;
}

size_t wan_auth_message(const char *role, const char *source, const char *nonce_t_hex,
                        const char *nonce_s_hex, char *out, size_t cap)
{
    int len = snprintf(out, cap, "halyard-wan-v1\n%s\n%s\n%s\n%s", role, source, nonce_t_hex,
                       nonce_s_hex);
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
           (node_arg_is(&x->argv[1], "CHALLENGE") || node_arg_is(&x->argv[1], "PEER-AUTH") ||
            node_arg_is(&x->argv[1], "WAN-AUTH"));
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

/* The hex MAC of msg (len bytes; 0: it did not fit, and no MAC matches) under this node's
 * cluster secret into hex (room for 2 * JOIN_AUTH_MAC_BYTES + 1). */
static void secret_mac_hex(const struct hy_node *n, const char *msg, size_t len, char *hex)
{
    uint8_t mac[JOIN_AUTH_MAC_BYTES];
    n->crypto_mac((const uint8_t *)n->cfg->cluster_secret, strlen(n->cfg->cluster_secret),
                  (const uint8_t *)msg, len, mac);
    join_auth_hex(mac, sizeof(mac), hex);
}

/* Whether the argument is want (hex, its length known), in constant time: the comparison must
 * not tell how much of a guess was right. */
static int proof_matches(const struct resp_arg *got, const char *want, size_t want_len,
                         size_t msg_len)
{
    unsigned diff = got->len != want_len || msg_len == 0;
    for (size_t i = 0; i < want_len && i < got->len; i++) {
        diff |= (unsigned)(got->ptr[i] ^ (uint8_t)want[i]);
    }
    return diff == 0;
}

/* The start of a proof of argc arguments: the connection's CHALLENGE nonce is spent, right or
 * wrong (one proof per nonce). 1 to go on and check the proof, 0 when answered already. */
static int take_nonce(struct cmd_ctx *x, size_t argc)
{
    if (x->argc != argc) {
        node_reply_syntax_error(x);
        return 0;
    }
    if (!x->client->join_nonce_set || x->node->crypto_mac == NULL) {
        resp_write_error(&x->w, "ERR run HALYARD CHALLENGE first");
        return 0;
    }
    x->client->join_nonce_set = 0;
    return 1;
}

/* HALYARD PEER-AUTH name mac */
void cmd_halyard_peer_auth(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    if (!take_nonce(x, 4)) {
        return;
    }
    char name[NODE_MEMBER_NAME_MAX + 1], nonce_hex[2 * JOIN_AUTH_NONCE_BYTES + 1];
    char msg[NODE_MEMBER_NAME_MAX + 512], want[2 * JOIN_AUTH_MAC_BYTES + 1];
    snprintf(name, sizeof(name), "%.*s", (int)HY_MIN(x->argv[2].len, NODE_MEMBER_NAME_MAX),
             (const char *)x->argv[2].ptr);
    join_auth_hex(c->join_nonce, sizeof(c->join_nonce), nonce_hex);
    size_t len = join_auth_message(n->cfg->cluster_name, name, nonce_hex, msg, sizeof(msg));
    secret_mac_hex(n, msg, len, want);
    if (!proof_matches(&x->argv[3], want, sizeof(want) - 1, len)) {
        hy_log(n->log, HY_LOG_WARN,
               "client %s: HALYARD PEER-AUTH as %s refused (another cluster-secret or "
               "cluster-name)",
               c->addr, name);
        resp_write_error(&x->w, "ERR cluster-secret or cluster-name differs from this cluster's");
        return;
    }
    c->authenticated = 1;
    c->wan_link = 0;
    c->user[0] = '\0'; /* a member: ACL rules are for clients */
    resp_write_ok(&x->w);
}

/* Whether p (len bytes) is 2 * JOIN_AUTH_NONCE_BYTES lowercase hex digits. */
static int nonce_hex_ok(const uint8_t *p, size_t len)
{
    if (len != 2 * JOIN_AUTH_NONCE_BYTES) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* HALYARD WAN-AUTH source nonce_s mac_s: a WAN link proves this cluster's secret (join_auth.h);
 * the answer proves it back. */
void cmd_halyard_wan_auth(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    if (!take_nonce(x, 5)) {
        return;
    }
    const struct resp_arg *src = &x->argv[2], *ns = &x->argv[3];
    if (!wan_name_ok(src->ptr, src->len) || !nonce_hex_ok(ns->ptr, ns->len)) {
        resp_write_error(&x->w, "ERR HALYARD WAN-AUTH needs a cluster name (1 to 64 of A-Z a-z "
                                "0-9 _ - .) and a nonce of 32 hex digits");
        return;
    }
    char source[WAN_NAME_MAX + 1], nonce_t[2 * JOIN_AUTH_NONCE_BYTES + 1];
    char nonce_s[2 * JOIN_AUTH_NONCE_BYTES + 1], msg[WAN_NAME_MAX + 256];
    char want[2 * JOIN_AUTH_MAC_BYTES + 1];
    snprintf(source, sizeof(source), "%.*s", (int)src->len, (const char *)src->ptr);
    snprintf(nonce_s, sizeof(nonce_s), "%.*s", (int)ns->len, (const char *)ns->ptr);
    join_auth_hex(c->join_nonce, sizeof(c->join_nonce), nonce_t);
    size_t len = wan_auth_message("source", source, nonce_t, nonce_s, msg, sizeof(msg));
    secret_mac_hex(n, msg, len, want);
    if (!proof_matches(&x->argv[4], want, sizeof(want) - 1, len)) {
        hy_log(n->log, HY_LOG_WARN,
               "client %s: WAN link from cluster '%s' refused: its secret is not this "
               "cluster's cluster-secret",
               c->addr, source);
        resp_write_error(&x->w, "ERR WAN link refused: its secret is not this cluster's "
                                "cluster-secret");
        return;
    }
    len = wan_auth_message("target", source, nonce_t, nonce_s, msg, sizeof(msg));
    secret_mac_hex(n, msg, len, want);
    c->authenticated = 1;
    c->wan_link = 1;
    c->user[0] = '\0'; /* not a client's rights: wan_link says what it may run */
    hy_log(n->log, HY_LOG_INFO, "client %s: WAN link from cluster '%s' proved the cluster-secret",
           c->addr, source);
    resp_write_bulk_str(&x->w, want);
}

int join_auth_wan_link_may(const struct cmd_ctx *x)
{
    const struct resp_arg *a = x->argv;
    size_t argc = x->argc;
    if (node_arg_is(&a[0], "HY.WANAPPLY") || node_arg_is(&a[0], "PING") ||
        node_arg_is(&a[0], "QUIT")) {
        return 1;
    }
    if (node_arg_is(&a[0], "CONFIG")) {
        return argc == 3 && node_arg_is(&a[1], "GET") && node_arg_is(&a[2], "partitions");
    }
    if (node_arg_is(&a[0], "HALYARD") && argc >= 2) {
        return node_arg_is(&a[1], "CHALLENGE") || node_arg_is(&a[1], "WAN-AUTH") ||
               (argc >= 3 && node_arg_is(&a[1], "WAN") && node_arg_is(&a[2], "DEMOTE"));
    }
    return 0;
}
