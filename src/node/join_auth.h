/*
 * join_auth.h - a joining node proves the cluster secret on a member's client port.
 *
 * A node started with --join asks a member (HALYARD JOIN on its client port) before it is a
 * member, so the peer handshake cannot carry it; and requirepass is the password of clients,
 * which a new node should not need. So the client port offers a challenge-response over the
 * cluster secret, open before AUTH:
 *
 *   HALYARD CHALLENGE            -> a fresh random nonce (hex), remembered for this connection
 *   HALYARD PEER-AUTH name mac   -> OK, and the connection is authenticated
 *
 * where mac is hex(HMAC-SHA256(cluster-secret, join_auth_message(cluster-name, name, nonce))).
 * The nonce is used once; the message binds the cluster name and the node name, so a proof
 * recorded on one connection is worth nothing on another. The engine has no crypto: the shell
 * lends it an HMAC and a random source (node_set_crypto); without them the commands refuse.
 */
/*
 * A WAN link proves the target's cluster secret the same way (docs/wan.md "Transport"), and the
 * target proves it back, so neither side sends the secret and a source does not ship to a
 * cluster that does not hold it:
 *
 *   HALYARD CHALLENGE                          -> nonce_t (hex)
 *   HALYARD WAN-AUTH source nonce_s mac_s      -> mac_t (hex), and the connection is a link's
 *
 * where mac_s = HMAC(cluster-secret, wan_auth_message("source", source, nonce_t, nonce_s)) and
 * mac_t the same with "target". The connection then runs only what a link sends (HY.WANAPPLY,
 * HALYARD WAN DEMOTE, CONFIG GET partitions, PING): it is not a member's and not a client's.
 */
#ifndef HY_NODE_JOIN_AUTH_H
#define HY_NODE_JOIN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define JOIN_AUTH_NONCE_BYTES 16
#define JOIN_AUTH_MAC_BYTES   32

/* Writes the text that is MAC'd into out (cap bytes) and returns its length, or 0 when it
 * does not fit. nonce_hex is the CHALLENGE reply as received. */
size_t join_auth_message(const char *cluster, const char *name, const char *nonce_hex, char *out,
                         size_t cap);

/* Writes the text a WAN link's proof MACs (role "source" or "target", the source cluster's
 * name, both nonces as hex) into out (cap bytes); returns its length, or 0 when it does not
 * fit. */
size_t wan_auth_message(const char *role, const char *source, const char *nonce_t_hex,
                        const char *nonce_s_hex, char *out, size_t cap);

/* Lowercase hex of len bytes into out (room for 2 * len + 1). */
void join_auth_hex(const uint8_t *buf, size_t len, char *out);

#endif
