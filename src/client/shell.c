/*
 * shell.c - libhalyard's blocking shell over the pure core (core.h): sockets, poll, the clock,
 * and a mutex so one client may be shared by threads (their calls run one at a time).
 *
 * Every wait is bounded by the time the core gives (connect timeout, request deadline), so a
 * call returns by its deadline whatever the network does.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client/shell.h"

/* Takes the core's events under the lock (the caller holds it), to be delivered after it is
 * released: callbacks never run under the client's lock. */
static size_t take_events(halyard_client *c, struct hyc_event *evs, size_t max)
{
    size_t n = 0;
    while (n < max && hyc_take_event(c->core, &evs[n])) {
        n++;
    }
    return n;
}

static void deliver(halyard_client *c, const struct hyc_event *evs, size_t n)
{
    for (size_t i = 0; c->on_event != NULL && i < n; i++) {
        c->on_event(c->event_ctx, evs[i].ev, evs[i].cluster, evs[i].member);
    }
}

const char *halyard_event_str(halyard_event ev)
{
    static const char *const names[] = {
        "STARTING",
        "STARTED",
        "CLIENT_CONNECTED",
        "CLIENT_DISCONNECTED",
        "CLIENT_CHANGED_CLUSTER",
        "SHUTTING_DOWN",
        "SHUTDOWN",
        "MEMBER_ADDED",
        "MEMBER_REMOVED",
        "MEMBER_SUSPECT",
        "MEMBER_ALIVE",
        "MEMBER_FAILED",
        "LEADER_CHANGED",
        "QUORUM_LOST",
        "QUORUM_REGAINED",
    };
    return (unsigned)ev < sizeof(names) / sizeof(names[0]) ? names[ev] : "?";
}

static uint64_t mono_ms(void)
{
    return rconn_now_ms();
}

void halyard_config_init(halyard_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->connect_timeout_ms = 1000;
    cfg->request_timeout_ms = 10000;
    cfg->attempt_timeout_ms = 2000;
    cfg->backoff_initial_ms = 50;
    cfg->backoff_max_ms = 2000;
    cfg->backoff_multiplier = 2.0;
    cfg->backoff_jitter = 0.5;
    cfg->sessions = 1;
    cfg->session_ttl_ms = 600000;
    cfg->cluster_connect_timeout_ms = 4000;
    cfg->smart_routing = 1;
    cfg->topology_refresh_ms = 10000;
    cfg->breaker_failures = 3;
    cfg->breaker_cooldown_ms = 5000;
    cfg->async_threads = 4;
    cfg->max_outstanding = 1024;
    cfg->pipeline_max = 64;
    cfg->heartbeat_interval_ms = 1000;
    cfg->server_events = 1;
    cfg->heartbeat_timeout_ms = 5000;
}

/* Keeps p (a copy halyard_open made) for halyard_close to free; NULL when out of memory. */
static void *keep(halyard_client *c, void *p)
{
    void **grown = p != NULL ? realloc(c->owned, (c->n_owned + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        free(p);
        return NULL;
    }
    c->owned = grown;
    c->owned[c->n_owned++] = p;
    return p;
}

static int keep_str(halyard_client *c, const char **s)
{
    return *s == NULL || (*s = keep(c, strdup(*s))) != NULL;
}

static int keep_addrs(halyard_client *c, const char *const **addrs, size_t n)
{
    const char **v = keep(c, calloc(n + 1, sizeof(*v)));
    for (size_t i = 0; v != NULL && i < n; i++) {
        v[i] = (*addrs)[i];
        if (!keep_str(c, &v[i])) {
            return 0;
        }
    }
    *addrs = v;
    return v != NULL;
}

/* c->cfg's strings and lists as copies of the caller's: the asynchronous API's cores are made
 * from it later (at the first asynchronous call), when the caller may have freed its own
 * (halyard_config_release right after halyard_open). 0 when out of memory. */
static int copy_config(halyard_client *c)
{
    halyard_config *k = &c->cfg;
    if (!keep_addrs(c, &k->addrs, k->n_addrs) || !keep_str(c, &k->password) ||
        !keep_str(c, &k->username) || !keep_str(c, &k->cluster_name) ||
        !keep_str(c, &k->tls_ca_file) || !keep_str(c, &k->tls_cert_file) ||
        !keep_str(c, &k->tls_key_file) || !keep_str(c, &k->tls_server_name)) {
        return 0;
    }
    if (k->weights != NULL) {
        uint32_t *w = keep(c, calloc(k->n_weights + 1, sizeof(*w)));
        if (w == NULL) {
            return 0;
        }
        memcpy(w, k->weights, k->n_weights * sizeof(*w));
        k->weights = w;
    }
    if (k->n_failover > 0) {
        halyard_cluster *f = keep(c, calloc(k->n_failover, sizeof(*f)));
        if (f == NULL) {
            return 0;
        }
        memcpy(f, k->failover, k->n_failover * sizeof(*f));
        for (size_t i = 0; i < k->n_failover; i++) {
            if (!keep_str(c, &f[i].name) || !keep_addrs(c, &f[i].addrs, f[i].n_addrs)) {
                return 0;
            }
        }
        k->failover = f;
    }
    k->loaded_ = NULL;
    return 1;
}

static void free_owned(halyard_client *c)
{
    for (size_t i = 0; i < c->n_owned; i++) {
        free(c->owned[i]);
    }
    free(c->owned);
}

halyard_client *halyard_open(const halyard_config *cfg, char *err, size_t errlen)
{
    const char *why = hyc_config_check(cfg);
    if (why == NULL && (cfg->async_threads == 0 || cfg->async_threads > 64)) {
        why = "async_threads must be 1 to 64";
    }
    if (why == NULL && cfg->pipeline_max == 0) {
        why = "pipeline_max must be above 0 (1: no pipelining)";
    }
    if (why == NULL && cfg->max_outstanding == 0) {
        why = "max_outstanding must be above 0";
    }
    if (why == NULL && cfg->heartbeat_interval_ms > 0 && cfg->heartbeat_timeout_ms == 0) {
        why = "heartbeat_timeout_ms must be above 0 with heartbeats on";
    }
    if (why != NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s", why);
        }
        return NULL;
    }
    halyard_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "out of memory");
        }
        return NULL;
    }
    SSL_CTX *tls = NULL;
    if (cfg->tls) {
        tls = SSL_CTX_new(TLS_client_method());
        const char *what = NULL;
        if (tls == NULL) {
            what = "TLS: cannot create a context";
        } else {
            SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
            if (cfg->tls_ca_file ? SSL_CTX_load_verify_locations(tls, cfg->tls_ca_file, NULL) != 1
                                 : SSL_CTX_set_default_verify_paths(tls) != 1) {
                what = "TLS: cannot load tls_ca_file";
            } else if ((cfg->tls_cert_file != NULL) != (cfg->tls_key_file != NULL)) {
                what = "TLS: tls_cert_file and tls_key_file go together";
            } else if (cfg->tls_cert_file != NULL &&
                       (SSL_CTX_use_certificate_chain_file(tls, cfg->tls_cert_file) != 1 ||
                        SSL_CTX_use_PrivateKey_file(tls, cfg->tls_key_file, SSL_FILETYPE_PEM) !=
                            1 ||
                        SSL_CTX_check_private_key(tls) != 1)) {
                what = "TLS: cannot load tls_cert_file/tls_key_file (or they do not match)";
            }
        }
        if (what != NULL) {
            ERR_clear_error();
            SSL_CTX_free(tls);
            if (err != NULL && errlen > 0) {
                snprintf(err, errlen, "%s", what);
            }
            free(c);
            return NULL;
        }
        SSL_CTX_set_verify(tls, cfg->tls_insecure_no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                           NULL);
    }
    c->tls = tls;
    c->verify = cfg->tls && !cfg->tls_insecure_no_verify;
    c->server_name = cfg->tls_server_name ? strdup(cfg->tls_server_name) : NULL;
    c->cfg = *cfg;
    if (!copy_config(c)) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "out of memory");
        }
        free_owned(c);
        SSL_CTX_free(tls);
        free(c->server_name);
        free(c);
        return NULL;
    }
    uint64_t seed = cfg->seed;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    c->seed = seed;
    c->core = hyc_core_new(cfg, seed);
    hyc_set_load(c->core, &c->load);
    c->conn = (struct hys_conn){.core = c->core,
                                .io = {.fd = -1, .wake_fd = -1},
                                .tls = c->tls,
                                .server_name = c->server_name,
                                .verify = c->verify};
    c->on_event = cfg->on_event;
    c->event_ctx = cfg->event_ctx;
    pthread_mutex_init(&c->lock, NULL);
    struct hyc_event evs[2];
    hyc_push_event(c->core, HALYARD_EV_STARTING);
    hyc_push_event(c->core, HALYARD_EV_STARTED); /* it connects lazily, at the first command */
    deliver(c, evs, take_events(c, evs, 2));
    hys_heartbeat_start(c, cfg); /* when configured; without it the client works the same */
    return c;
}

void hys_drop_fd(struct hys_conn *c)
{
    rconn_close(&c->io);
}

void halyard_close(halyard_client *c)
{
    if (c == NULL) {
        return;
    }
    struct hyc_event evs[34];
    hys_heartbeat_stop(c);   /* first: no pushed membership event after SHUTTING_DOWN */
    hys_async_events_off(c); /* nor an I/O thread's lifecycle event */
    pthread_mutex_lock(&c->lock);
    hyc_push_event(c->core, HALYARD_EV_SHUTTING_DOWN);
    size_t n = take_events(c, evs, 33);
    pthread_mutex_unlock(&c->lock);
    deliver(c, evs, n);
    hys_async_close(c);    /* cancels what is queued, cuts short what runs, joins the threads */
    hys_heartbeat_free(c); /* the I/O threads read its verdicts until they were joined */
    hys_drop_fd(&c->conn);
    hyc_push_event(c->core, HALYARD_EV_SHUTDOWN);
    deliver(c, evs, take_events(c, evs, 1));
    hyc_core_free(c->core);
    SSL_CTX_free(c->tls);
    free(c->server_name);
    free_owned(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* A connection to m bounded by until_ms (rconn_dial); -1 on failure. */
int hys_connect(const struct hyc_member *m, uint64_t until_ms)
{
    char port[8];
    snprintf(port, sizeof(port), "%d", m->port);
    return rconn_dial(m->host, port, until_ms, NULL);
}

static void sleep_until(uint64_t until_ms, int wake_fd)
{
    uint64_t now = mono_ms();
    if (until_ms > now && wake_fd >= 0) {
        struct pollfd p = {.fd = wake_fd, .events = POLLIN};
        (void)poll(&p, 1, (int)(until_ms - now)); /* woken early: the caller looks at cancel */
    } else if (until_ms > now) {
        struct timespec ts = {(time_t)((until_ms - now) / 1000),
                              (long)((until_ms - now) % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

uint64_t hys_now_ms(void)
{
    return mono_ms();
}

int hys_conn_send(struct hys_conn *c, const uint8_t *p, size_t len, uint64_t until_ms)
{
    return rconn_send(&c->io, p, len, until_ms);
}

int hys_conn_recv(struct hys_conn *c, uint8_t *buf, size_t cap, uint64_t until_ms)
{
    return rconn_recv(&c->io, buf, cap, until_ms);
}

int hys_conn_try_recv(struct hys_conn *c, uint8_t *buf, size_t cap)
{
    return rconn_try_recv(&c->io, buf, cap);
}

/* Runs the core's request to its outcome; a set *cancel ends it (hyc_cancel) at the next
 * step, and wake_fd cuts the waits short. */
static void conn_changed(struct hys_conn *c)
{
    if (c->on_conn_change != NULL) {
        c->on_conn_change(c->on_conn_arg);
    }
}

void hys_drive(struct hys_conn *c)
{
    struct hyc_core *k = c->core;
    uint8_t buf[16384];
    for (;;) {
        struct hyc_action a;
        if (c->cancel != NULL && atomic_load(c->cancel)) {
            hyc_cancel(k, mono_ms());
        }
        if (c->abandon != NULL && atomic_exchange(c->abandon, 0)) {
            hyc_abandon(k);
        }
        hyc_next(k, mono_ms(), &a);
        switch (a.what) {
        case HYC_DO_DONE: return;
        case HYC_DO_CLOSE:
            hys_drop_fd(c);
            conn_changed(c);
            break;
        case HYC_DO_SLEEP: sleep_until(a.until_ms, c->io.wake_fd); break;
        case HYC_DO_PROBE: { /* fail-back: does the first cluster accept connections? */
            int fd = hys_connect(a.probe, a.until_ms);
            if (fd >= 0) {
                close(fd);
            }
            hyc_probed(k, fd >= 0, mono_ms());
            break;
        }
        case HYC_DO_CONNECT: {
            hys_drop_fd(c);
            const struct hyc_member *m = hyc_member(k, a.member);
            c->io.fd = hys_connect(m, a.until_ms);
            if (c->io.fd >= 0 && c->tls != NULL &&
                rconn_tls_start(&c->io, c->tls, c->server_name ? c->server_name : m->host,
                                c->verify, a.until_ms) != 0) {
                hys_drop_fd(c);
            }
            if (c->io.fd >= 0 && c->at_lock != NULL) {
                pthread_mutex_lock(c->at_lock);
                c->at = *hyc_member(k, a.member);
                c->at_valid = 1;
                pthread_mutex_unlock(c->at_lock);
            }
            if (c->io.fd >= 0) {
                hyc_connected(k, mono_ms());
            } else {
                hyc_closed(k, mono_ms());
            }
            conn_changed(c);
            break;
        }
        case HYC_DO_SEND:
            if (rconn_send(&c->io, a.data, a.len, mono_ms() + 10000) == 0) {
                hyc_sent(k, mono_ms());
            } else {
                hys_drop_fd(c);
                hyc_closed(k, mono_ms());
                conn_changed(c);
            }
            break;
        case HYC_DO_RECV: {
            /* 0: the time ran out or a wake came; the core decides what that means. */
            int n = rconn_recv(&c->io, buf, sizeof(buf), a.until_ms);
            if (n > 0) {
                hyc_received(k, buf, (size_t)n, mono_ms());
            } else if (n < 0) {
                hys_drop_fd(c);
                hyc_closed(k, mono_ms());
                conn_changed(c);
            }
            break;
        }
        }
    }
}

/* OpenSSL writes with write(), not send(MSG_NOSIGNAL): a peer gone mid-write would raise
 * SIGPIPE and kill the program. It is blocked for this thread during the call, and one raised
 * meanwhile is taken before the mask is restored. */
static void sigpipe_block(sigset_t *old)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, old);
}

static void sigpipe_restore(const sigset_t *old)
{
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(old, SIGPIPE)) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&s, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

halyard_status halyard_command(halyard_client *c, int argc, const char *const *argv,
                               const size_t *argvlen, halyard_reply **reply)
{
    *reply = NULL;
    if (c == NULL || argc < 1 || argv == NULL) {
        return HALYARD_INVALID;
    }
    for (int i = 0; i < argc; i++) {
        if (argv[i] == NULL) {
            return HALYARD_INVALID;
        }
    }
    /* Load shedding for the blocking API: its calls run one at a time, so at most
     * max_outstanding of them may wait for the client; beyond, BUSY at once. */
    if (atomic_fetch_add(&c->waiting, 1) >= c->cfg.max_outstanding) {
        atomic_fetch_sub(&c->waiting, 1);
        atomic_fetch_add(&c->blocking_shed, 1);
        *reply = hyc_reply_error("BUSY shed by the client: max_outstanding blocking calls are "
                                 "already waiting on it; not applied");
        return *reply != NULL ? HALYARD_BUSY : HALYARD_NO_MEMORY;
    }
    pthread_mutex_lock(&c->lock);
    sigset_t old;
    if (c->tls != NULL) {
        sigpipe_block(&old);
    }
    hys_heartbeat_apply(c, c->core, &c->hb_gen);
    hyc_begin(c->core, argc, argv, argvlen, mono_ms());
    hys_drive(&c->conn);
    if (c->tls != NULL) {
        sigpipe_restore(&old);
    }
    halyard_status st = hyc_take_result(c->core, reply);
    struct hyc_event evs[32];
    size_t n = take_events(c, evs, 32);
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_sub(&c->waiting, 1);
    deliver(c, evs, n);
    if (*reply == NULL) {
        return HALYARD_NO_MEMORY;
    }
    return st;
}

void halyard_get_stats_sized(halyard_client *c, halyard_stats *out, size_t size)
{
    halyard_stats all;
    pthread_mutex_lock(&c->lock);
    hyc_stats(c->core, &all);
    pthread_mutex_unlock(&c->lock);
    all.shed += atomic_load(&c->blocking_shed);
    hys_async_stats(c, &all); /* the I/O threads' cores, and the asynchronous counters */
    hys_heartbeat_stats(c, &all);
    memcpy(out, &all, size < sizeof all ? size : sizeof all);
}
