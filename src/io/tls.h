/*
 * tls.h - TLS for the client port and, with tls-cluster, the peer port, with OpenSSL over memory
 * BIOs: the shell reads ciphertext from the socket, feeds it in, and gets plaintext for the engine
 * and ciphertext to write back (handshake records included). Nothing here blocks or touches a
 * socket, so the libuv loop never waits for a handshake.
 */
#ifndef HY_IO_TLS_H
#define HY_IO_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "node/config.h"

struct io_tls_ctx;
struct io_tls;

/* The server context from tls-cert-file, tls-key-file (tls-key-file-pass), tls-ca-cert-file,
 * tls-auth-clients and tls-protocols. NULL with the reason in err when any of it is wrong. */
struct io_tls_ctx *io_tls_ctx_new(const struct hy_config *cfg, char *err, size_t cap);
void io_tls_ctx_free(struct io_tls_ctx *x);

/* The peer port's contexts (tls-cluster yes): mutual TLS both ways. Accepting, a member's
 * certificate is required and verified against tls-ca-cert-file/-dir; dialling, this node
 * shows tls-client-cert-file (else tls-cert-file) and verifies the other's certificate and that
 * it names the address dialled. NULL with the reason in err. */
struct io_tls_ctx *io_tls_cluster_ctx_new(const struct hy_config *cfg, char *err, size_t cap);

/* A WAN link's client context (docs/wan.md "Transport"): TLS 1.2 or later; the target's
 * certificate is checked against ca_file and/or ca_dir (both "": the system's CAs); cert and
 * key (pass: their passphrase, "" none) are shown when cert is not "" (a target with
 * tls-auth-clients yes asks for one). NULL with the reason in err. Free with SSL_CTX_free. */
struct ssl_ctx_st *io_tls_link_ctx_new(const char *ca_file, const char *ca_dir, const char *cert,
                                       const char *key, const char *pass, char *err, size_t cap);

/* A connection accepted on a TLS port. */
struct io_tls *io_tls_new(struct io_tls_ctx *x);
/* A connection dialled to `host` (an address or a name its certificate must carry), with a
 * context from io_tls_cluster_ctx_new. io_tls_feed with no bytes starts its handshake. */
struct io_tls *io_tls_new_client(struct io_tls_ctx *x, const char *host);
/* After the handshake: 1 when the other side's (verified) certificate names host. */
int io_tls_peer_names(const struct io_tls *t, const char *host);
void io_tls_free(struct io_tls *t);

/* Ciphertext from the peer: plaintext goes to plain_out, records to send to cipher_out.
 * Returns 0, or -1 when the connection must close (a failed handshake, a bad record, the
 * peer's close_notify); err then says why. */
int io_tls_feed(struct io_tls *t, const uint8_t *data, size_t len, struct hy_buf *plain_out,
                struct hy_buf *cipher_out, char *err, size_t cap);
/* Plaintext to send: its records are appended to cipher_out. -1 when it cannot be sent. */
int io_tls_write(struct io_tls *t, const uint8_t *data, size_t len, struct hy_buf *cipher_out);
/* Whether the handshake has finished. */
int io_tls_ready(const struct io_tls *t);

#endif
