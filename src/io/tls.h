/*
 * tls.h - TLS for the client port (issue 16, first slice), with OpenSSL over memory BIOs: the
 * shell reads ciphertext from the socket, feeds it in, and gets plaintext for the engine and
 * ciphertext to write back (handshake records included). Nothing here blocks or touches a
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

struct io_tls *io_tls_new(struct io_tls_ctx *x);
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
