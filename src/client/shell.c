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

#include "client/core.h"

struct halyard_client {
    pthread_mutex_t lock;
    struct hyc_core *core;
    int fd;
    halyard_event_fn on_event;
    void *event_ctx;
};

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
    };
    return (unsigned)ev < sizeof(names) / sizeof(names[0]) ? names[ev] : "?";
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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
}

halyard_client *halyard_open(const halyard_config *cfg, char *err, size_t errlen)
{
    const char *why = hyc_config_check(cfg);
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
    uint64_t seed = cfg->seed;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    c->core = hyc_core_new(cfg, seed);
    c->fd = -1;
    c->on_event = cfg->on_event;
    c->event_ctx = cfg->event_ctx;
    pthread_mutex_init(&c->lock, NULL);
    struct hyc_event evs[2];
    hyc_push_event(c->core, HALYARD_EV_STARTING);
    hyc_push_event(c->core, HALYARD_EV_STARTED); /* it connects lazily, at the first command */
    deliver(c, evs, take_events(c, evs, 2));
    return c;
}

static void drop_fd(halyard_client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

void halyard_close(halyard_client *c)
{
    if (c == NULL) {
        return;
    }
    struct hyc_event evs[34];
    pthread_mutex_lock(&c->lock);
    hyc_push_event(c->core, HALYARD_EV_SHUTTING_DOWN);
    size_t n = take_events(c, evs, 33);
    pthread_mutex_unlock(&c->lock);
    deliver(c, evs, n);
    drop_fd(c);
    hyc_push_event(c->core, HALYARD_EV_SHUTDOWN);
    deliver(c, evs, take_events(c, evs, 1));
    hyc_core_free(c->core);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int wait_fd(int fd, short events, uint64_t until_ms)
{
    for (;;) {
        uint64_t now = mono_ms();
        int ms = until_ms > now ? (int)(until_ms - now) : 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        return rc; /* 1 ready, 0 timed out, -1 error */
    }
}

/* A non-blocking connect bounded by until_ms; -1 when it failed or timed out. */
static int connect_to(const struct hyc_member *m, uint64_t until_ms)
{
    char port[8];
    snprintf(port, sizeof(port), "%d", m->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(m->host, port, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, until_ms) == 1) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0 ? 0 : -1;
        }
        if (rc != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t len, uint64_t until_ms)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, until_ms) != 1) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return 0;
}

static void sleep_until(uint64_t until_ms)
{
    uint64_t now = mono_ms();
    if (until_ms > now) {
        struct timespec ts = {(time_t)((until_ms - now) / 1000),
                              (long)((until_ms - now) % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

/* Runs the core's request to its outcome. */
static void drive(halyard_client *c)
{
    struct hyc_core *k = c->core;
    uint8_t buf[16384];
    for (;;) {
        struct hyc_action a;
        hyc_next(k, mono_ms(), &a);
        switch (a.what) {
        case HYC_DO_DONE: return;
        case HYC_DO_CLOSE: drop_fd(c); break;
        case HYC_DO_SLEEP: sleep_until(a.until_ms); break;
        case HYC_DO_CONNECT:
            drop_fd(c);
            c->fd = connect_to(hyc_member(k, a.member), a.until_ms);
            if (c->fd >= 0) {
                hyc_connected(k, mono_ms());
            } else {
                hyc_closed(k, mono_ms());
            }
            break;
        case HYC_DO_SEND:
            if (send_all(c->fd, a.data, a.len, a.until_ms ? a.until_ms : mono_ms() + 10000) == 0) {
                hyc_sent(k, mono_ms());
            } else {
                drop_fd(c);
                hyc_closed(k, mono_ms());
            }
            break;
        case HYC_DO_RECV: {
            int rc = wait_fd(c->fd, POLLIN, a.until_ms);
            if (rc == 0) {
                break; /* the core decides what the time means */
            }
            ssize_t n = rc > 0 ? recv(c->fd, buf, sizeof(buf), 0) : -1;
            if (n > 0) {
                hyc_received(k, buf, (size_t)n, mono_ms());
            } else if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                break;
            } else {
                drop_fd(c);
                hyc_closed(k, mono_ms());
            }
            break;
        }
        }
    }
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
    pthread_mutex_lock(&c->lock);
    hyc_begin(c->core, argc, argv, argvlen, mono_ms());
    drive(c);
    halyard_status st = hyc_take_result(c->core, reply);
    struct hyc_event evs[32];
    size_t n = take_events(c, evs, 32);
    pthread_mutex_unlock(&c->lock);
    deliver(c, evs, n);
    if (*reply == NULL) {
        return HALYARD_NO_MEMORY;
    }
    return st;
}

void halyard_get_stats(halyard_client *c, halyard_stats *out)
{
    pthread_mutex_lock(&c->lock);
    hyc_stats(c->core, out);
    pthread_mutex_unlock(&c->lock);
}
