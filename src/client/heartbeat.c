/*
 * heartbeat.c - libhalyard's heartbeats (Hazelcast's heartbeat-interval and -timeout, on a
 * connection of their own per member, so a slow request never delays them and a dead member is
 * found even while no request goes to it), and the staleness estimate of max_staleness_ms.
 *
 * One thread per client PINGs every member of `addrs` each heartbeat_interval_ms over its own
 * connection (TLS when the client uses TLS; reconnecting when needed) and waits for answers
 * with one poll. Any answer counts (a -NOAUTH too: the process is alive and reading). A member
 * with no answer for heartbeat_timeout_ms is dead: the verdict goes to every core of the client
 * (hyc_member_down, its breaker opens; applied by each core's owner at the start of its next
 * request, since a core belongs to one thread) and the asynchronous requests running on that
 * member leave it at once (hys_async_member_down). An answer again brings it back
 * (hyc_member_up).
 *
 * With max_staleness_ms the heartbeat is CLUSTER SHARDS instead of PING: each member's answer
 * gives its own applied index per partition and whether it leads it (stale.h); the leaders'
 * answers make the history the replicas are measured against, and the verdicts (within the bound
 * or not, per member and partition) go to the cores like the others (hyc_set_fresh).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/shell.h"
#include "client/stale.h"

#define HB_PARTS_MAX 64 /* partitions a member reports (a cluster has at most 64) */

struct hb_member {
    struct hyc_member m;
    struct rconn io;
    struct hy_buf in;        /* the answer so far */
    int awaiting;            /* a heartbeat is unanswered */
    int auth_pending;        /* AUTH's answer comes first (sent with the first heartbeat) */
    uint64_t alive_since_ms; /* its last answer (or the start, or its last reconnect attempt) */
    int down;
    struct stale_report parts[HB_PARTS_MAX]; /* its last CLUSTER SHARDS answer */
    size_t n_parts;
    uint64_t parts_at_ms; /* when it came; 0: none yet */
};

/* server_events: a connection to one member subscribed to its __halyard__:events channel. */
struct hb_sub {
    struct rconn io;
    struct hy_buf in;
    size_t member;     /* index in mem[] it is (or will be) on */
    int auth_pending;  /* AUTH's answer comes first */
    int off;           /* refused (no permission, not a halyard): no more tries */
    uint64_t retry_ms; /* not connected: the next try */
};

struct hys_heartbeat {
    halyard_client *c;
    pthread_t thread;
    pthread_mutex_t lock; /* guards gen, down, downs, fresh, n_fresh */
    int wake_fd;
    atomic_int stop;
    struct hb_member *mem; /* n of them, allocated for the members of addrs: a client made per
                            * thread (the benchmark's 50) should not clear a table for 64 */
    size_t n;
    uint64_t gen; /* bumped when a member's verdict changes */
    uint64_t downs;
    /* max_staleness_ms */
    int shards;
    struct stale_est *est;             /* only with max_staleness_ms (130 KB) */
    struct hyc_fresh *fresh, *scratch; /* n * HB_PARTS_MAX each: published, being made */
    size_t n_fresh;
    struct hy_buf auth; /* AUTH [user] password, sent first on each connection (CLUSTER SHARDS
                         * needs it where a password is set); empty: none */
    /* server_events: the subscription; topo_gen counts the topology events pushed (and the
     * resubscriptions, which may have missed some), under lock; pushed counts every event. */
    int events;
    int listen; /* membership listeners fed from the pushed events (events_poll_ms 0) */
    struct hb_sub sub;
    struct hy_buf sub_auth;
    uint64_t topo_gen, pushed;
    char cluster[HYC_NAME_MAX + 1];
};

static const char subscribe[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$18\r\n__halyard__:events\r\n";

static const char ping[] = "*1\r\n$4\r\nPING\r\n";
static const char shards[] = "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n";

static void sub_drop(struct hys_heartbeat *h, uint64_t retry_ms)
{
    rconn_close(&h->sub.io);
    hy_buf_reset(&h->sub.in);
    h->sub.auth_pending = 0;
    h->sub.member = (h->sub.member + 1) % h->n; /* another member next time */
    h->sub.retry_ms = retry_ms;
}

/* The verdict on member i changed: publish it, and pull running requests off a dead member. */
static void set_down(struct hys_heartbeat *h, size_t i, int down)
{
    pthread_mutex_lock(&h->lock);
    h->mem[i].down = down;
    h->gen++;
    h->downs += down;
    pthread_mutex_unlock(&h->lock);
    if (down) {
        hys_async_member_down(h->c, &h->mem[i].m);
        if (h->sub.io.fd >= 0 && h->sub.member == i) {
            sub_drop(h, 0); /* a stopped member pushes nothing: subscribe elsewhere now */
        }
    }
}

/* Something may have changed the cluster's topology: every core reads the slot map again. */
static void topology_bump(struct hys_heartbeat *h)
{
    pthread_mutex_lock(&h->lock);
    h->topo_gen++;
    h->gen++;
    pthread_mutex_unlock(&h->lock);
}

/* One event a member pushed (its JSON). */
static void pushed_event(struct hys_heartbeat *h, const char *json, size_t len)
{
    halyard_event ev;
    char who[HYC_HOST_MAX + 8];
    pthread_mutex_lock(&h->lock);
    h->pushed++;
    pthread_mutex_unlock(&h->lock);
    if (!hyc_event_parse(json, len, &ev, who, sizeof(who))) {
        return;
    }
    if (ev == HALYARD_EV_LEADER_CHANGED || ev == HALYARD_EV_MEMBER_ADDED ||
        ev == HALYARD_EV_MEMBER_REMOVED || ev == HALYARD_EV_MEMBER_FAILED ||
        ev == HALYARD_EV_QUORUM_REGAINED) {
        topology_bump(h);
    }
    if (h->listen) { /* this thread holds no lock of the client's */
        h->c->on_event(h->c->event_ctx, ev, h->cluster, who);
    }
}

/* Connects the subscription when it is due: AUTH when the client has a password, then
 * SUBSCRIBE, to the next member not found dead. */
static void sub_connect(struct hys_heartbeat *h, uint64_t now_ms)
{
    struct hb_sub *s = &h->sub;
    if (!h->events || s->off || s->io.fd >= 0 || now_ms < s->retry_ms) {
        return;
    }
    for (size_t j = 0; j < h->n && h->mem[s->member].down; j++) {
        s->member = (s->member + 1) % h->n;
    }
    halyard_client *c = h->c;
    const struct hyc_member *m = &h->mem[s->member].m;
    uint64_t until = now_ms + c->cfg.connect_timeout_ms;
    s->io.fd = hys_connect(m, until);
    if (s->io.fd >= 0 && c->tls != NULL &&
        rconn_tls_start(&s->io, c->tls, c->server_name ? c->server_name : m->host, c->verify,
                        until) != 0) {
        rconn_close(&s->io);
    }
    struct hy_buf out;
    hy_buf_init(&out);
    hy_buf_append(&out, h->sub_auth.data, h->sub_auth.len);
    hy_buf_append(&out, subscribe, sizeof(subscribe) - 1);
    if (s->io.fd < 0 || rconn_send(&s->io, out.data, out.len, now_ms + 1000) != 0) {
        sub_drop(h, now_ms + c->cfg.heartbeat_interval_ms);
    } else {
        s->auth_pending = h->sub_auth.len > 0;
    }
    hy_buf_free(&out);
}

/* What the subscription sent: AUTH's answer, SUBSCRIBE's confirmation (events may have been
 * missed before it: a topology bump), then messages. An error refuses the subscription for
 * good (an ACL user without the channel, a server without pub/sub): requests still refresh
 * their slot map on -MOVED, lost connections and topology_refresh_ms. */
static void sub_read(struct hys_heartbeat *h, uint64_t now_ms)
{
    struct hb_sub *s = &h->sub;
    for (;;) {
        int got = rconn_recv(&s->io, hy_buf_reserve(&s->in, 4096), 4096, now_ms);
        if (got < 0) {
            sub_drop(h, now_ms); /* gone: the next member at once */
            return;
        }
        if (got == 0) {
            break;
        }
        s->in.len += (size_t)got;
    }
    size_t off = 0;
    while (s->io.fd >= 0) {
        struct resp_value v;
        size_t used;
        int rc = resp_value_parse(NULL, s->in.data + off, s->in.len - off, &v, &used, NULL);
        if (rc == HY_EAGAIN) {
            break;
        }
        if (rc != HY_OK) {
            sub_drop(h, now_ms + h->c->cfg.heartbeat_interval_ms);
            return;
        }
        off += used;
        int err = v.type == RESP_ERROR || v.type == RESP_BULK_ERROR;
        if (s->auth_pending) {
            s->auth_pending = 0;
            s->off = err; /* refused: SUBSCRIBE will be too */
        } else if (err) {
            s->off = 1;
        } else if ((v.type == RESP_ARRAY || v.type == RESP_PUSH) && v.count == 3 &&
                   v.elems[0].str != NULL && v.elems[2].str != NULL && v.elems[0].len == 7 &&
                   memcmp(v.elems[0].str, "message", 7) == 0) {
            pushed_event(h, (const char *)v.elems[2].str, v.elems[2].len);
        } else if ((v.type == RESP_ARRAY || v.type == RESP_PUSH) && v.count >= 1 &&
                   v.elems[0].str != NULL && v.elems[0].len == 9 &&
                   memcmp(v.elems[0].str, "subscribe", 9) == 0) {
            topology_bump(h);
        }
        resp_value_free(&v);
        if (s->off) {
            rconn_close(&s->io);
            return;
        }
    }
    if (s->io.fd >= 0) {
        hy_buf_consume(&s->in, off);
    }
}

static void drop(struct hb_member *m)
{
    rconn_close(&m->io);
    hy_buf_reset(&m->in);
    m->awaiting = 0;
    m->auth_pending = 0;
}

/* A connection to m (and its TLS handshake when the client uses TLS), bounded by the connect
 * timeout. */
static void connect_member(struct hys_heartbeat *h, struct hb_member *m, uint64_t now_ms)
{
    halyard_client *c = h->c;
    uint64_t until = now_ms + c->cfg.connect_timeout_ms;
    m->io.fd = hys_connect(&m->m, until);
    if (m->io.fd >= 0 && c->tls != NULL &&
        rconn_tls_start(&m->io, c->tls, c->server_name ? c->server_name : m->m.host, c->verify,
                        until) != 0) {
        drop(m);
    }
}

/* Sends this round's heartbeats (connecting first where needed). */
static void send_pings(struct hys_heartbeat *h, uint64_t now_ms)
{
    const char *msg = h->shards ? shards : ping;
    size_t len = h->shards ? sizeof(shards) - 1 : sizeof(ping) - 1;
    for (size_t i = 0; i < h->n; i++) {
        struct hb_member *m = &h->mem[i];
        if (m->io.fd < 0) {
            connect_member(h, m, now_ms);
            if (m->io.fd >= 0 && h->auth.len > 0) {
                if (rconn_send(&m->io, h->auth.data, h->auth.len, now_ms + 1000) != 0) {
                    drop(m);
                    continue;
                }
                m->auth_pending = 1;
            }
        }
        if (m->io.fd >= 0 && !m->awaiting) {
            if (rconn_send(&m->io, (const uint8_t *)msg, len, now_ms + 1000) == 0) {
                m->awaiting = 1;
            } else {
                drop(m);
            }
        }
    }
}

/* The verdicts of max_staleness_ms from every member's last answer, published when they
 * changed. */
static void publish_fresh(struct hys_heartbeat *h)
{
    struct hyc_fresh *f = h->scratch;
    size_t n = 0;
    uint64_t bound = h->c->cfg.max_staleness_ms;
    for (size_t i = 0; i < h->n; i++) {
        const struct hb_member *m = &h->mem[i];
        for (size_t p = 0; p < m->n_parts && m->parts_at_ms != 0; p++) {
            const struct stale_report *r = &m->parts[p];
            uint64_t st =
                r->leads ? 0 : stale_replica_ms(h->est, r->slot, r->applied, m->parts_at_ms);
            memset(&f[n], 0, sizeof(f[n])); /* padding too: the tables are compared whole */
            f[n].m = m->m;
            f[n].lo = r->slot;
            f[n].hi = r->end;
            f[n].fresh = st <= bound;
            n++;
        }
    }
    pthread_mutex_lock(&h->lock);
    if (n != h->n_fresh || memcmp(f, h->fresh, n * sizeof(f[0])) != 0) {
        h->scratch = h->fresh; /* swapped: the old table is the next scratch */
        h->fresh = f;
        h->n_fresh = n;
        h->gen++;
    }
    pthread_mutex_unlock(&h->lock);
}

/* A whole answer from member i: alive; with the staleness bound, its report is taken. */
static void answered(struct hys_heartbeat *h, size_t i, const struct resp_value *v, uint64_t now_ms)
{
    struct hb_member *m = &h->mem[i];
    m->awaiting = 0;
    m->alive_since_ms = now_ms;
    if (m->down) {
        set_down(h, i, 0);
    }
    if (!h->shards) {
        return;
    }
    int n = stale_parse_shards(v, m->parts, HB_PARTS_MAX);
    m->n_parts = n > 0 ? (size_t)n : 0; /* not CLUSTER SHARDS: no verdict, too stale */
    m->parts_at_ms = now_ms;
    for (size_t p = 0; p < m->n_parts; p++) {
        if (m->parts[p].leads) {
            stale_leader_sample(h->est, m->parts[p].slot, m->parts[p].applied, now_ms);
        }
    }
    publish_fresh(h);
}

/* Reads what member i sent; parses the answer once it is whole. */
static void read_member(struct hys_heartbeat *h, size_t i, uint64_t now_ms)
{
    struct hb_member *m = &h->mem[i];
    for (;;) { /* what is there, without waiting (TLS: the records that came whole) */
        int got = rconn_recv(&m->io, hy_buf_reserve(&m->in, 4096), 4096, now_ms);
        if (got < 0) {
            drop(m); /* gone: reconnected at the next round */
            return;
        }
        if (got == 0) {
            break;
        }
        m->in.len += (size_t)got;
    }
    size_t off = 0;
    while (m->io.fd >= 0) {
        struct resp_value v;
        size_t used;
        int rc = resp_value_parse(NULL, m->in.data + off, m->in.len - off, &v, &used, NULL);
        if (rc == HY_EAGAIN) {
            break;
        }
        if (rc != HY_OK) {
            drop(m);
            return;
        }
        off += used;
        if (m->auth_pending) {
            m->auth_pending = 0; /* refused or not: the heartbeat's own answer says the rest */
        } else {
            answered(h, i, &v, now_ms);
        }
        resp_value_free(&v);
    }
    if (m->io.fd >= 0) {
        hy_buf_consume(&m->in, off);
    }
}

/* Waits until `until_ms` for answers (or the stop); an answer marks its member alive. */
static void read_answers(struct hys_heartbeat *h, uint64_t until_ms)
{
    struct pollfd p[HYC_MEMBERS_MAX + 2];
    size_t idx[HYC_MEMBERS_MAX], n = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->mem[i].io.fd >= 0 && h->mem[i].awaiting) {
            p[n] = (struct pollfd){.fd = h->mem[i].io.fd, .events = POLLIN};
            idx[n++] = i;
        }
    }
    p[n] = (struct pollfd){.fd = h->wake_fd, .events = POLLIN};
    p[n + 1] = (struct pollfd){.fd = h->sub.io.fd, .events = POLLIN}; /* -1: ignored */
    uint64_t now = hys_now_ms();
    int rc = poll(p, n + 2, until_ms > now ? (int)(until_ms - now) : 0);
    if (rc <= 0) {
        return;
    }
    now = hys_now_ms();
    for (size_t j = 0; j < n; j++) {
        if (p[j].revents != 0) {
            read_member(h, idx[j], now);
        }
    }
    if (p[n + 1].fd >= 0 && p[n + 1].revents != 0) {
        sub_read(h, now);
    }
}

static void *hb_main(void *arg)
{
    struct hys_heartbeat *h = arg;
    const halyard_config *cfg = &h->c->cfg;
    sigset_t no_pipe; /* OpenSSL writes with write(): a member gone mid-write is no signal */
    sigemptyset(&no_pipe);
    sigaddset(&no_pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &no_pipe, NULL);
    uint64_t next_ms = hys_now_ms();
    for (size_t i = 0; i < h->n; i++) {
        h->mem[i].alive_since_ms = next_ms;
    }
    while (!atomic_load(&h->stop)) {
        uint64_t now = hys_now_ms();
        if (now >= next_ms) {
            send_pings(h, now);
            next_ms = now + cfg->heartbeat_interval_ms;
        }
        sub_connect(h, now);
        read_answers(h, next_ms);
        now = hys_now_ms();
        for (size_t i = 0; i < h->n; i++) {
            struct hb_member *m = &h->mem[i];
            if (!m->down && now >= m->alive_since_ms + cfg->heartbeat_timeout_ms) {
                set_down(h, i, 1);
            }
        }
    }
    return NULL;
}

void hys_heartbeat_start(halyard_client *c, const halyard_config *given)
{
    const halyard_config *cfg = &c->cfg;
    if (cfg->heartbeat_interval_ms == 0) {
        return;
    }
    struct hys_heartbeat *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return; /* the client works without heartbeats (attempt_timeout_ms still applies) */
    }
    h->c = c;
    h->shards = cfg->max_staleness_ms > 0;
    hy_buf_init(&h->auth);
    hy_buf_init(&h->sub_auth);
    h->events = cfg->server_events;
    h->listen = cfg->server_events && cfg->on_event != NULL && cfg->events_poll_ms == 0;
    snprintf(h->cluster, sizeof(h->cluster), "%s",
             cfg->cluster_name != NULL ? cfg->cluster_name : "primary");
    h->sub.io = (struct rconn){.fd = -1, .wake_fd = -1};
    hy_buf_init(&h->sub.in);
    if (given->password != NULL) { /* SUBSCRIBE needs AUTH where a password is set */
        const char *argv[] = {"AUTH", given->username, given->password};
        if (given->username != NULL) {
            resp_request_write(&h->sub_auth, 3, argv, NULL);
        } else {
            argv[1] = given->password;
            resp_request_write(&h->sub_auth, 2, argv, NULL);
        }
    }
    if (h->shards && given->password != NULL) { /* a PING needs no AUTH, CLUSTER SHARDS does */
        const char *argv[] = {"AUTH", given->username, given->password};
        if (given->username != NULL) {
            resp_request_write(&h->auth, 3, argv, NULL);
        } else {
            argv[1] = given->password;
            resp_request_write(&h->auth, 2, argv, NULL);
        }
    }
    size_t cap = cfg->n_addrs < HYC_MEMBERS_MAX ? cfg->n_addrs : HYC_MEMBERS_MAX;
    h->mem = calloc(cap, sizeof(*h->mem));
    for (size_t i = 0; h->mem != NULL && i < cfg->n_addrs && h->n < cap; i++) {
        const struct hyc_member *m = hyc_member(c->core, i); /* the core parsed addrs in order */
        if (m != NULL) {
            h->mem[h->n] = (struct hb_member){.m = *m, .io = {.fd = -1, .wake_fd = -1}};
            hy_buf_init(&h->mem[h->n].in);
            h->n++;
        }
    }
    if (h->shards) {
        h->fresh = calloc(h->n * HB_PARTS_MAX, sizeof(*h->fresh));
        h->scratch = calloc(h->n * HB_PARTS_MAX, sizeof(*h->scratch));
        h->est = calloc(1, sizeof(*h->est));
    }
    pthread_mutex_init(&h->lock, NULL);
    h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->mem == NULL ||
        (h->shards && (h->fresh == NULL || h->scratch == NULL || h->est == NULL)) ||
        h->wake_fd < 0 || pthread_create(&h->thread, NULL, hb_main, h) != 0) {
        if (h->wake_fd >= 0) {
            close(h->wake_fd);
        }
        pthread_mutex_destroy(&h->lock);
        free(h->fresh);
        free(h->scratch);
        free(h->est);
        free(h->mem);
        hy_buf_free(&h->auth);
        hy_buf_free(&h->sub_auth);
        hy_buf_free(&h->sub.in);
        free(h);
        return;
    }
    c->hb = h;
}

void hys_heartbeat_stop(halyard_client *c)
{
    struct hys_heartbeat *h = c->hb;
    if (h == NULL) {
        return;
    }
    atomic_store(&h->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(h->wake_fd, &one, sizeof(one));
    (void)w;
    pthread_join(h->thread, NULL);
    for (size_t i = 0; i < h->n; i++) {
        rconn_close(&h->mem[i].io);
        hy_buf_free(&h->mem[i].in);
    }
    rconn_close(&h->sub.io);
    hy_buf_free(&h->sub.in);
    hy_buf_free(&h->sub_auth);
    close(h->wake_fd);
}

void hys_heartbeat_free(halyard_client *c)
{
    struct hys_heartbeat *h = c->hb;
    if (h == NULL) {
        return;
    }
    pthread_mutex_destroy(&h->lock);
    free(h->fresh);
    free(h->scratch);
    free(h->est);
    free(h->mem);
    hy_buf_free(&h->auth);
    free(h);
    c->hb = NULL;
}

void hys_heartbeat_apply(halyard_client *c, struct hyc_core *k, uint64_t *gen)
{
    struct hys_heartbeat *h = c->hb;
    if (h == NULL) {
        return;
    }
    struct hyc_member down[HYC_MEMBERS_MAX], up[HYC_MEMBERS_MAX];
    size_t n_down = 0, n_up = 0;
    pthread_mutex_lock(&h->lock);
    if (h->gen == *gen) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    *gen = h->gen;
    for (size_t i = 0; i < h->n; i++) {
        if (h->mem[i].down) {
            down[n_down++] = h->mem[i].m;
        } else {
            up[n_up++] = h->mem[i].m;
        }
    }
    if (h->shards) {
        hyc_set_fresh(k, h->fresh, h->n_fresh); /* copied: the core keeps its own table */
    }
    uint64_t topo = h->topo_gen;
    pthread_mutex_unlock(&h->lock);
    hyc_topology_changed(k, topo);
    uint64_t now = hys_now_ms();
    for (size_t i = 0; i < n_down; i++) {
        hyc_member_down(k, &down[i], now);
    }
    for (size_t i = 0; i < n_up; i++) {
        hyc_member_up(k, &up[i]);
    }
}

void hys_heartbeat_stats(halyard_client *c, halyard_stats *out)
{
    struct hys_heartbeat *h = c->hb;
    if (h != NULL) {
        pthread_mutex_lock(&h->lock);
        out->heartbeat_downs += h->downs;
        out->events_pushed += h->pushed;
        pthread_mutex_unlock(&h->lock);
    }
}
