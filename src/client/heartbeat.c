/*
 * heartbeat.c - libhalyard's heartbeats (Hazelcast's heartbeat-interval and -timeout, on a
 * connection of their own per member, so a slow request never delays them and a dead member is
 * found even while no request goes to it).
 *
 * One thread per client PINGs every member of `addrs` each heartbeat_interval_ms over its own
 * connection (reconnecting when needed) and waits for answers with one poll. Any answer counts
 * (a -NOAUTH too: the process is alive and reading). A member with no answer for
 * heartbeat_timeout_ms is dead: the verdict goes to every core of the client (hyc_member_down,
 * its breaker opens; applied by each core's owner at the start of its next request, since a
 * core belongs to one thread) and the asynchronous requests running on that member leave it at
 * once (hys_async_member_down). An answer again brings it back (hyc_member_up).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/shell.h"

struct hb_member {
    struct hyc_member m;
    int fd;
    int awaiting;            /* a PING is unanswered */
    uint64_t alive_since_ms; /* its last answer (or the start, or its last reconnect attempt) */
    int down;
};

struct hys_heartbeat {
    halyard_client *c;
    pthread_t thread;
    pthread_mutex_t lock; /* guards gen, down, downs */
    int wake_fd;
    atomic_int stop;
    struct hb_member mem[HYC_MEMBERS_MAX];
    size_t n;
    uint64_t gen; /* bumped when a member's verdict changes */
    uint64_t downs;
};

static const char ping[] = "*1\r\n$4\r\nPING\r\n";

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
    }
}

/* Sends this round's PINGs (connecting first where needed). */
static void send_pings(struct hys_heartbeat *h, uint64_t now_ms)
{
    const halyard_config *cfg = &h->c->cfg;
    for (size_t i = 0; i < h->n; i++) {
        struct hb_member *m = &h->mem[i];
        if (m->fd < 0) {
            m->fd = hys_connect(&m->m, now_ms + cfg->connect_timeout_ms);
            m->awaiting = 0;
        }
        if (m->fd >= 0 && !m->awaiting) {
            if (send(m->fd, ping, sizeof(ping) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(ping) - 1)) {
                m->awaiting = 1;
            } else {
                close(m->fd);
                m->fd = -1;
            }
        }
    }
}

/* Waits until `until_ms` for answers (or the stop); an answer marks its member alive. */
static void read_answers(struct hys_heartbeat *h, uint64_t until_ms)
{
    struct pollfd p[HYC_MEMBERS_MAX + 1];
    size_t idx[HYC_MEMBERS_MAX], n = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->mem[i].fd >= 0 && h->mem[i].awaiting) {
            p[n] = (struct pollfd){.fd = h->mem[i].fd, .events = POLLIN};
            idx[n++] = i;
        }
    }
    p[n] = (struct pollfd){.fd = h->wake_fd, .events = POLLIN};
    uint64_t now = hys_now_ms();
    int rc = poll(p, n + 1, until_ms > now ? (int)(until_ms - now) : 0);
    if (rc <= 0) {
        return;
    }
    now = hys_now_ms();
    for (size_t j = 0; j < n; j++) {
        if (p[j].revents == 0) {
            continue;
        }
        struct hb_member *m = &h->mem[idx[j]];
        char buf[512];
        ssize_t got = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (got > 0) {
            m->awaiting = 0;
            m->alive_since_ms = now;
            if (m->down) {
                set_down(h, idx[j], 0);
            }
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(m->fd); /* reconnected at the next round */
            m->fd = -1;
            m->awaiting = 0;
        }
    }
}

static void *hb_main(void *arg)
{
    struct hys_heartbeat *h = arg;
    const halyard_config *cfg = &h->c->cfg;
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

void hys_heartbeat_start(halyard_client *c)
{
    const halyard_config *cfg = &c->cfg;
    if (cfg->heartbeat_interval_ms == 0 || c->tls != NULL) {
        return;
    }
    struct hys_heartbeat *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return; /* the client works without heartbeats (attempt_timeout_ms still applies) */
    }
    h->c = c;
    for (size_t i = 0; i < cfg->n_addrs && h->n < HYC_MEMBERS_MAX; i++) {
        const struct hyc_member *m = hyc_member(c->core, i); /* the core parsed addrs in order */
        if (m != NULL) {
            h->mem[h->n++] = (struct hb_member){.m = *m, .fd = -1};
        }
    }
    pthread_mutex_init(&h->lock, NULL);
    h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->wake_fd < 0 || pthread_create(&h->thread, NULL, hb_main, h) != 0) {
        if (h->wake_fd >= 0) {
            close(h->wake_fd);
        }
        pthread_mutex_destroy(&h->lock);
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
        if (h->mem[i].fd >= 0) {
            close(h->mem[i].fd);
        }
    }
    close(h->wake_fd);
    pthread_mutex_destroy(&h->lock);
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
    pthread_mutex_unlock(&h->lock);
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
        pthread_mutex_unlock(&h->lock);
    }
}
