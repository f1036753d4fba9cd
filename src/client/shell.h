/*
 * shell.h - what libhalyard's two shells share (private): the blocking one (shell.c: sockets,
 * poll, TLS, the clock, a mutex) and the asynchronous one (async.c: I/O threads, a bounded
 * queue, hedged reads, a libuv loop's wakeups) run the same pure core (core.h) through one
 * driver, hys_drive, so the protocol logic exists once.
 */
#ifndef HY_CLIENT_SHELL_H
#define HY_CLIENT_SHELL_H

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/ssl.h>

#include "client/core.h"
#include "client/rconn.h"

/* One connection and the core that drives it. */
struct hys_conn {
    struct hyc_core *core;
    struct rconn io;         /* fd, TLS session, and wake_fd: readable, stop waiting and look
                              * at *cancel (-1: none) */
    SSL_CTX *tls;            /* borrowed from the client; NULL without TLS */
    const char *server_name; /* borrowed: tls_server_name, or NULL: each member's host */
    int verify;
    atomic_int *cancel;  /* set: end the request now (hyc_cancel); NULL: never */
    atomic_int *abandon; /* set: leave the member now (hyc_abandon); NULL: never */
    /* Where it is connected, for hedged reads (written under *at_lock; NULL: not kept). */
    pthread_mutex_t *at_lock;
    struct hyc_member at;
    int at_valid;
    /* Called by hys_drive, without any lock of the client, after each step that may have
     * connected or lost the connection (the core's lifecycle events): an I/O thread delivers
     * them as they happen, not when its request ends. NULL (the blocking API, which holds the
     * client's lock while it drives): after the call. */
    void (*on_conn_change)(void *arg);
    void *on_conn_arg;
};

struct hys_async;     /* async.c */
struct hys_heartbeat; /* heartbeat.c */

struct halyard_client {
    pthread_mutex_t lock;
    struct hyc_core *core; /* the blocking API's */
    struct hys_conn conn;
    halyard_event_fn on_event;
    void *event_ctx;
    SSL_CTX *tls;      /* NULL without TLS */
    char *server_name; /* tls_server_name, or NULL: each member's host */
    int verify;
    halyard_config cfg; /* as given to halyard_open, its strings and lists copied (owned) */
    void **owned;       /* those copies, freed by halyard_close */
    size_t n_owned;
    uint64_t seed;
    struct hys_async *async;  /* NULL until the first asynchronous call or attach */
    struct hys_heartbeat *hb; /* NULL: heartbeats off */
    uint64_t hb_gen;          /* the heartbeats' verdicts the blocking core has seen */
    struct hyc_load load;     /* requests in flight per member, over every core of the client */
    atomic_uint waiting;      /* blocking calls running or waiting for the lock */
    atomic_ullong blocking_shed;
};

/* Runs the conn's core's current request to its outcome (hyc_take_result). */
void hys_drive(struct hys_conn *c);
void hys_drop_fd(struct hys_conn *c);
/* A non-blocking TCP connection to m bounded by until_ms (TCP_NODELAY); -1 on failure. */
int hys_connect(const struct hyc_member *m, uint64_t until_ms);
uint64_t hys_now_ms(void);
/* On a connected conn (TLS or not): sends all of p by until_ms (0, or -1); reads what comes
 * (> 0 bytes, 0 when the time ran out or wake_fd fired, -1 when the connection is gone). */
int hys_conn_send(struct hys_conn *c, const uint8_t *p, size_t len, uint64_t until_ms);
int hys_conn_recv(struct hys_conn *c, uint8_t *buf, size_t cap, uint64_t until_ms);
/* As hys_conn_recv without waiting: what is there already (0: nothing yet). */
int hys_conn_try_recv(struct hys_conn *c, uint8_t *buf, size_t cap);

/* async.c: stops the I/O threads (what is queued ends CANCELLED, what runs is cut short) and
 * delivers every callback still due; adds the I/O threads' counters to *out. */
void hys_async_close(halyard_client *c);
/* async.c: the I/O threads raise no more lifecycle events (halyard_close, before
 * SHUTTING_DOWN); returns once none is being delivered. */
void hys_async_events_off(halyard_client *c);
void hys_async_stats(halyard_client *c, halyard_stats *out);
/* async.c: the I/O threads connected to m leave it now (a heartbeat found it dead). */
void hys_async_member_down(halyard_client *c, const struct hyc_member *m);

/* heartbeat.c: the heartbeat thread (when heartbeat_interval_ms > 0); applying its
 * verdicts to a core when they changed since *gen (the caller owns k); its counters. */
void hys_heartbeat_start(halyard_client *c, const halyard_config *cfg); /* cfg: for AUTH */
/* stop: the thread ends and its connections close; its last verdicts stay readable (the I/O
 * threads still apply them until hys_async_close joins them). free: after that. */
void hys_heartbeat_stop(halyard_client *c);
void hys_heartbeat_free(halyard_client *c);
void hys_heartbeat_apply(halyard_client *c, struct hyc_core *k, uint64_t *gen);
void hys_heartbeat_stats(halyard_client *c, halyard_stats *out);

#endif
