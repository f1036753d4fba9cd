/*
 * rconn.h - one RESP connection's blocking I/O, the part every RESP client of the code base
 * shares: libhalyard's shells (shell.c, async.c, heartbeat.c), halyctl (src/cli) and the
 * server's --join (src/io/identity.c). So there is one way to resolve and connect with a bound,
 * to do the TLS handshake, to send and receive with a deadline (plain or TLS, cut short by a
 * wake fd), and to make one round trip (framed by resp_request_write, src/proto/resp.h); the
 * clients differ only in what they do with it (libhalyard's pure core, halyctl's subcommands, the
 * join's steps).
 *
 * Every wait ends by `until_ms` (CLOCK_MONOTONIC milliseconds, rconn_now_ms; RCONN_FOREVER: no
 * bound). Errors leave errno (connect) and OpenSSL's error queue (TLS) as the failing call left
 * them, for the caller to report; rconn_close clears the queue after TLS.
 */
#ifndef HY_CLIENT_RCONN_H
#define HY_CLIENT_RCONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/buf.h"
#include "proto/resp.h"

#define RCONN_FOREVER UINT64_MAX

/* A connection: fd (-1: none), its TLS session when there is one, and a wake fd (-1: none)
 * that, readable, cuts a wait short (the caller looks at why). A plain connection without a
 * wake fd waits for its answers in recv itself, the socket made blocking with a receive timeout
 * (SO_RCVTIMEO) no later than the deadline, instead of in poll and then recv: one system call
 * per answer instead of two (the blocking API's round trip, issue 15's benchmark). `blocking`
 * and `rcvtimeo_ms` (the timeout set; 0: none yet) belong to that fd and are cleared by
 * rconn_close, as is `tls_tried` (rconn_tls_start ran: OpenSSL's error queue may hold this fd's
 * errors); a zeroed struct starts without them. */
struct rconn {
    int fd;
    SSL *ssl;
    int wake_fd;
    int blocking;
    int tls_tried;
    uint64_t rcvtimeo_ms;
};

uint64_t rconn_now_ms(void);

/* 1 ready, 0 the time ran out (or only wake_fd fired), -1 poll failed. */
int rconn_wait(int fd, short events, uint64_t until_ms, int wake_fd);

/* Resolves host:port and connects (non-blocking, bounded by until_ms), with TCP_NODELAY; the fd
 * stays non-blocking. -1 on failure: errno says why (the connect's own error), and
 * *unresolved (when not NULL) is set when the name did not resolve. */
int rconn_dial(const char *host, const char *port, uint64_t until_ms, int *unresolved);

/* The TLS handshake on c->fd with ctx, bounded by until_ms. With verify, the certificate must
 * name `name` (an IP address or a DNS name, also sent as SNI). 0; -1 the handshake failed (c->ssl
 * is kept for SSL_get_verify_result); -2 no session could be made. */
int rconn_tls_start(struct rconn *c, SSL_CTX *ctx, const char *name, int verify, uint64_t until_ms);

/* Sends all of p by until_ms: 0, or -1. */
int rconn_send(struct rconn *c, const uint8_t *p, size_t len, uint64_t until_ms);
/* Reads what comes: > 0 bytes, 0 the time ran out or wake_fd fired, -1 the connection is gone. */
int rconn_recv(struct rconn *c, uint8_t *buf, size_t cap, uint64_t until_ms);
/* As rconn_recv without waiting: what is there already (0: nothing yet). */
int rconn_try_recv(struct rconn *c, uint8_t *buf, size_t cap);
/* Frees the TLS session (no close_notify), closes the fd, clears OpenSSL's error queue (when
 * rconn_tls_start ran on it). */
void rconn_close(struct rconn *c);

enum {
    RCONN_OK = 0,
    RCONN_ESEND = -1,    /* the request could not be sent */
    RCONN_ERECV = -2,    /* the connection ended before a whole reply */
    RCONN_EPROTO = -3,   /* the reply is not RESP (err says why) */
    RCONN_ETIMEOUT = -4, /* no whole reply by until_ms (or wake_fd fired) */
};

/* One round trip: sends argv, reads one reply into *out (limits NULL: none). `in` holds what was
 * read (emptied first); out's strings point into it until the next call with it. err (room for
 * errlen bytes, may be NULL) says why for RCONN_EPROTO. */
int rconn_call(struct rconn *c, int argc, const char *const *argv, const size_t *argvlen,
               struct hy_buf *in, const struct resp_limits *limits, uint64_t until_ms,
               struct resp_value *out, char *err, size_t errlen);

#endif
