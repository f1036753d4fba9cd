/*
 * async.c - libhalyard's asynchronous shell (halyard_command_async, halyard_attach_loop).
 *
 * async_threads I/O threads ("lanes") each own a connection and a core of their own (core.h:
 * the same pure core as the blocking API, driven by the same hys_drive), so every guarantee of
 * halyard_command holds for each request: retries, failover, and exactly-once writes under the
 * lane's own session. Requests wait in one FIFO queue; a free lane takes the oldest. The queue
 * and the running requests together are bounded by max_outstanding: beyond it a request is
 * refused HALYARD_BUSY at once (load shedding), never queued without limit; a queued request's
 * deadline counts from its submission, so a long queue ends in NOT_APPLIED, not in a hang.
 *
 * Hedged reads: a read still running after its hedge delay (hyc_hedge_delay) is taken by a free
 * lane a second time, told to avoid the member of its first copy; the first outcome is
 * delivered and the other copy is cancelled (hyc_cancel, its waits cut short by the lane's
 * eventfd). Writes are never hedged.
 *
 * Invariants (under a->lock): every accepted request is delivered exactly once (its callback
 * runs once); `outstanding` counts accepted requests not yet delivered; a request is freed by
 * the last lane running a copy of it, after its delivery was decided.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <uv.h>

#include "client/shell.h"

struct areq;

/* The attached loop's wake-up: an eventfd the loop polls, written by a lane only when no
 * wake-up is pending already (`pending`: written and not yet seen by the loop), so one write and
 * one loop turn serve every outcome queued meanwhile. Not a uv_async_t: libuv 1.44's
 * uv_async_send marks the handle busy, writes its fd and then marks it done, and the loop,
 * woken by that write, spins and then sched_yields until the mark is done; with the writer
 * preempted in its write (two shared cores), that was 4-5 sched_yield calls per wake-up of the
 * asynchronous SET. Allocated with the handle, freed by its close callback (which closes fd). */
struct waker {
    uv_poll_t poll;
    int fd;
    atomic_int pending;
};

/* An outcome waiting for the attached loop to run its callback. */
struct done {
    struct done *next;
    halyard_reply_fn cb;
    void *ctx;
    halyard_status st;
    halyard_reply *reply;
    struct areq *req; /* non-NULL: this is req->done, freed with req after the callback */
};

struct areq {
    struct areq *next; /* in the queue */
    int argc;
    char **argv; /* one allocation with argvlen and the bytes */
    size_t *argvlen;
    halyard_reply_fn cb;
    void *ctx;
    uint64_t submit_ms, hedge_at_ms; /* hedge_at_ms 0: not hedged */
    int copies;                      /* lanes running it */
    int hedged, delivered;
    struct done done; /* its outcome, when a batch delivers it to the attached loop */
};

struct lane {
    struct hys_async *a;
    pthread_t thread;
    struct hyc_core *core;
    struct hys_conn conn;
    atomic_int cancel;
    atomic_int abandon; /* a heartbeat found its member dead */
    atomic_int woken;   /* its wake_fd was written: drain it before the next wait */
    /* Running a request the normal way (not a pipelined round): see want_lane. Set under the
     * lock, cleared without it. */
    atomic_int normal;
    int served;       /* it has run a request to its end (under the lock) */
    uint64_t hb_gen;  /* the heartbeats' verdicts its core has seen */
    struct areq *req; /* running, or NULL */
    int is_hedge;
    int in_batch;        /* req is only a busy mark then (it may be freed): never read through it */
    halyard_stats stats; /* the core's, copied after each request (read by get_stats) */
};

#define LANE_EVENTS_MAX 64 /* merged lifecycle events waiting for delivery */

struct hys_async {
    halyard_client *c;
    pthread_mutex_t lock;
    pthread_cond_t work; /* a request was queued, a hedge may be due, or closing */
    struct areq *head, *tail;
    size_t queued; /* in the queue */
    /* Changed under the lock, except the reservations of the loop's callbacks (below): atomic. */
    atomic_size_t outstanding;
    size_t idle; /* lanes waiting for work */
    /* The attached loop's thread while it runs callbacks (run_done): requests they submit are
     * queued without waking a lane, and one lane is woken when they are all in, so the lanes
     * take them in batches (one wake-up for many requests, not one each). */
    pthread_t done_thread;
    atomic_int in_done;
    /* What those callbacks submitted, not yet in the queue: touched by the loop's thread alone
     * (no lock per request), spliced into the queue when the callbacks are done. */
    struct areq *pend_head, *pend_tail;
    size_t pend_n;
    uint64_t pend_shed;
    int closing;
    struct lane *lanes;
    size_t n_lanes;   /* async_threads: room for that many */
    size_t batch_max; /* pipeline_max, at most PIPE_MAX (1: every request the normal way) */
    size_t n_started; /* lanes[0, n_started) have their thread (see want_lane) */
    struct hyc_latency lat;
    uint64_t hedge_delay_ms;
    size_t lat_added; /* since hedge_delay_ms was computed */
    uint64_t shed, hedges, hedge_wins;
    /* halyard_attach_loop */
    struct waker *wakeup; /* NULL: callbacks run on the lanes */
    struct done *done_head, *done_tail;
    /* The lanes' lifecycle events merged into the client's (lane_events), under the lock. */
    uint64_t lanes_up;                     /* bit i: lane i's core is connected */
    char lanes_cluster[HYC_NAME_MAX + 1];  /* the cluster announced last */
    struct hyc_event evq[LANE_EVENTS_MAX]; /* decided, not yet delivered */
    size_t evq_n;
    int ev_delivering; /* a lane is delivering evq (one at a time keeps the order) */
    int ev_off;        /* halyard_close began: no more of them */
};

static void deliver_or_queue(struct hys_async *a, struct areq *r, halyard_status st,
                             halyard_reply *reply);
static int lane_start(struct hys_async *a);

/* After outcomes were queued for the loop (done_head): wakes it unless a wake-up is pending. The
 * loop clears `pending` before it takes the queue, so an outcome queued before a lane found it
 * set is taken by that turn, and one queued after the loop cleared it writes again. */
static void wake_loop(struct waker *w)
{
    if (!atomic_exchange(&w->pending, 1)) {
        uint64_t one = 1;
        ssize_t n = write(w->fd, &one, sizeof(one));
        (void)n; /* an eventfd at its maximum is readable anyway */
    }
}

/* Called with the lock held when requests wait in the queue. Another lane (an idle one, else
 * a new one, up to async_threads) is engaged when no lane is busy, when more than a batch
 * (pipeline_max) waits, or when a busy lane runs a request the normal way after its first (one
 * at a time: after a lost connection, -MOVED, a retry's backoff), and always without
 * pipelining; otherwise the queue waits for a busy lane to end its pipelined round (bounded by
 * attempt_timeout_ms, like the round's own requests) and take it whole. One lane is what a loop
 * keeping up to pipeline_max requests outstanding needs: one batch per round, each paying the
 * same hand-offs whatever its size, on one connection, where the server takes the whole batch
 * in one turn (a SET batch, one fsync); more lanes, engaged for the requests its callbacks
 * submit while the lane still reads the round's answers, split the window into small batches
 * on several connections (measured: half the throughput of one lane for the asynchronous SET,
 * 1.4x its CPU per request). Lanes also start only then, not all at the first call: each costs
 * a thread, a core, an eventfd, then a connection, a slot map read and a session (about 1 ms of
 * CPU here). A lane's first request (its connection, slot map and session) does not count as
 * slow: another lane would have to make its own. */
static void want_lane(struct hys_async *a)
{
    int need =
        a->closing || a->batch_max == 1 || a->idle == a->n_started || a->queued > a->batch_max;
    for (size_t i = 0; i < a->n_started && !need; i++) {
        need = a->lanes[i].served && atomic_load(&a->lanes[i].normal);
    }
    if (!need) {
        return; /* a busy lane takes the queue when its round ends */
    }
    if (a->idle > 0 || a->closing || a->n_started == a->n_lanes || lane_start(a) != 0) {
        pthread_cond_signal(&a->work);
    }
}

/* Before a request the lane runs the normal way: what waits in the queue may need another lane
 * now (want_lane). */
static void normal_begin(struct lane *l)
{
    struct hys_async *a = l->a;
    pthread_mutex_lock(&a->lock);
    atomic_store(&l->normal, 1);
    if (a->head != NULL && l->served) {
        want_lane(a);
    }
    pthread_mutex_unlock(&a->lock);
}

/* Lane l's lifecycle events, merged into the client's: CLIENT_CONNECTED when a lane connects
 * while none is, CLIENT_DISCONNECTED when the last connected lane loses its connection,
 * CLIENT_CHANGED_CLUSTER once per change of cluster however many lanes make it (a lane's core
 * raises each for its own connection). A lane learns of a lost connection at its next request:
 * an idle lane counts as connected until then. Decided under the lock in the order the lanes
 * report them, queued, and delivered by one lane at a time without the lock (callbacks never
 * run under the client's locks; one may call halyard_command), so they keep that order. The
 * lanes' membership events are dropped: the blocking API's connection and the heartbeat
 * thread raise those. Called without the lock. */
static void lane_events(struct lane *l)
{
    struct hys_async *a = l->a;
    halyard_client *c = a->c;
    uint64_t bit = 1ull << (size_t)(l - a->lanes);
    struct hyc_event ev;
    pthread_mutex_lock(&a->lock);
    while (hyc_take_event(l->core, &ev)) {
        int keep = 0;
        if (ev.ev == HALYARD_EV_CLIENT_CONNECTED) {
            keep = a->lanes_up == 0;
            a->lanes_up |= bit;
        } else if (ev.ev == HALYARD_EV_CLIENT_DISCONNECTED) {
            keep = a->lanes_up == bit;
            a->lanes_up &= ~bit;
        } else if (ev.ev == HALYARD_EV_CLIENT_CHANGED_CLUSTER) {
            keep = strcmp(a->lanes_cluster, ev.cluster) != 0;
            snprintf(a->lanes_cluster, sizeof(a->lanes_cluster), "%s", ev.cluster);
        }
        if (keep && !a->ev_off && c->on_event != NULL && a->evq_n < LANE_EVENTS_MAX) {
            a->evq[a->evq_n++] = ev;
        }
    }
    if (a->ev_delivering) {
        pthread_mutex_unlock(&a->lock); /* the lane delivering takes these too */
        return;
    }
    a->ev_delivering = 1;
    while (a->evq_n > 0 && !a->ev_off) {
        ev = a->evq[0];
        a->evq_n--;
        memmove(a->evq, a->evq + 1, a->evq_n * sizeof(ev));
        pthread_mutex_unlock(&a->lock);
        c->on_event(c->event_ctx, ev.ev, ev.cluster, ev.member);
        pthread_mutex_lock(&a->lock);
    }
    a->ev_delivering = 0;
    pthread_mutex_unlock(&a->lock);
}

static void free_req(struct areq *r)
{
    free(r); /* argv, argvlen and the bytes are in the same allocation */
}

/* The lane's next work, under the lock: the oldest queued request, else a running read whose
 * hedge is due (then *hedge is set), else NULL with *wait_ms how long to wait (0: no limit). */
static struct areq *pick(struct hys_async *a, uint64_t now_ms, int *hedge, uint64_t *wait_ms)
{
    *hedge = 0;
    *wait_ms = 0;
    if (a->head != NULL) {
        struct areq *r = a->head;
        a->head = r->next;
        a->queued--;
        if (a->head == NULL) {
            a->tail = NULL;
        }
        return r;
    }
    for (size_t i = 0; i < a->n_lanes; i++) {
        struct areq *r = a->lanes[i].req;
        if (r == NULL || a->lanes[i].in_batch || a->lanes[i].is_hedge || r->hedge_at_ms == 0 ||
            r->hedged || r->delivered) {
            continue;
        }
        if (now_ms >= r->hedge_at_ms) {
            *hedge = 1;
            return r;
        }
        uint64_t w = r->hedge_at_ms - now_ms;
        *wait_ms = *wait_ms == 0 || w < *wait_ms ? w : *wait_ms;
    }
    return NULL;
}

static void timed_wait(struct hys_async *a, uint64_t wait_ms)
{
    if (wait_ms == 0) {
        pthread_cond_wait(&a->work, &a->lock);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(wait_ms / 1000);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&a->work, &a->lock, &ts);
}

/* The lane that runs the other copy of r (not `self`), or NULL. */
static struct lane *other_copy(struct hys_async *a, const struct areq *r, const struct lane *self)
{
    for (size_t i = 0; i < a->n_lanes; i++) {
        if (&a->lanes[i] != self && a->lanes[i].req == r) {
            return &a->lanes[i];
        }
    }
    return NULL;
}

/* Written before the flag is set: a drain that sees the flag finds the bytes (one that misses
 * it leaves the flag for the next drain). */
static void poke_lane(struct lane *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->conn.io.wake_fd, &one, sizeof(one));
    (void)w; /* an eventfd at its maximum is readable anyway */
    atomic_store(&l->woken, 1);
}

static void wake_lane(struct lane *l)
{
    atomic_store(&l->cancel, 1);
    poke_lane(l);
}

/* Before a lane waits on its connection: a wake-up meant for an earlier request is drained (a
 * readable wake_fd would cut every wait short). The flag saves a read per batch. */
static void drain_wake(struct lane *l)
{
    if (atomic_exchange(&l->woken, 0)) {
        uint64_t drained;
        while (read(l->conn.io.wake_fd, &drained, sizeof(drained)) > 0) {
        }
    }
}

/* Runs one copy of r on lane l (without the lock) and settles its outcome (with it). */
static void run_copy(struct lane *l, struct areq *r, int hedge)
{
    struct hys_async *a = l->a;
    struct hyc_member avoid = {0};
    struct lane *first = hedge ? other_copy(a, r, l) : NULL;
    int has_avoid = first != NULL && first->conn.at_valid;
    if (has_avoid) {
        avoid = first->conn.at;
    }
    l->req = r;
    l->is_hedge = hedge;
    r->copies++;
    if (hedge) {
        r->hedged = 1;
        a->hedges++;
    }
    atomic_store(&l->cancel, 0);
    pthread_mutex_unlock(&a->lock);

    drain_wake(l);
    hys_heartbeat_apply(a->c, l->core, &l->hb_gen);
    atomic_store(&l->abandon, 0);
    hyc_begin(l->core, r->argc, (const char *const *)r->argv, r->argvlen, r->submit_ms);
    if (has_avoid) {
        hyc_avoid(l->core, &avoid);
    }
    normal_begin(l);
    hys_drive(&l->conn);
    atomic_store(&l->normal, 0);
    halyard_reply *reply = NULL;
    halyard_status st = hyc_take_result(l->core, &reply);
    lane_events(l);
    uint64_t now = hys_now_ms();

    pthread_mutex_lock(&a->lock);
    hyc_stats(l->core, &l->stats);
    l->req = NULL;
    l->served = 1;
    if (r->delivered) { /* the other copy won */
        halyard_reply_free(reply);
    } else {
        r->delivered = 1;
        a->outstanding--;
        if (hedge) {
            a->hedge_wins++;
        }
        if (r->hedge_at_ms != 0 && st == HALYARD_OK) {
            hyc_latency_add(&a->lat, now - r->submit_ms);
            a->lat_added++;
        }
        struct lane *other = other_copy(a, r, l);
        if (other != NULL) {
            wake_lane(other);
        }
        /* Unlocks and locks again around the callback: this copy still counts meanwhile, so
         * the other copy, ending then, does not free r under it. */
        deliver_or_queue(a, r, st, reply);
    }
    if (--r->copies == 0) {
        free_req(r);
    }
}

/* An outcome of a request this lane alone ran (a batch's: never hedged), to be delivered. */
struct settled {
    struct areq *r;
    halyard_status st;
    halyard_reply *reply;
};

/* Queues r's outcome for the attached loop (with the lock held; the caller wakes the loop). 0
 * when it could not be queued (no memory): the caller runs the callback itself. */
static int queue_done(struct hys_async *a, struct areq *r, halyard_status st, halyard_reply *reply,
                      int embed)
{
    /* Embedded (a batch's request, which no other lane holds): no allocation, and the loop
     * frees the request after its callback. */
    struct done *d = embed ? &r->done : malloc(sizeof(*d));
    if (d == NULL) {
        return 0;
    }
    *d = (struct done){NULL, r->cb, r->ctx, st, reply, embed ? r : NULL};
    if (a->done_tail != NULL) {
        a->done_tail->next = d;
    } else {
        a->done_head = d;
    }
    a->done_tail = d;
    return 1;
}

/* Delivers n outcomes and frees their requests, under one lock (and with a loop attached, one
 * wake-up of the loop for them all). Called without the lock. */
static void settle_many(struct lane *l, struct settled *s, size_t n)
{
    struct hys_async *a = l->a;
    if (n == 0) {
        return;
    }
    pthread_mutex_lock(&a->lock);
    /* The core's counters as of these outcomes: halyard_get_stats after a callback counts its
     * request (the batch's end, which copies them too, may come later). */
    hyc_stats(l->core, &l->stats);
    a->outstanding -= n;
    size_t queued = 0;
    for (size_t i = 0; i < n; i++) {
        s[i].r->delivered = 1;
        if (a->wakeup != NULL && queue_done(a, s[i].r, s[i].st, s[i].reply, 1)) {
            queued++;
            s[i].r = NULL; /* the loop's now: it runs the callback and frees it */
        }
    }
    if (queued > 0) {
        wake_loop(a->wakeup);
    }
    pthread_mutex_unlock(&a->lock);
    for (size_t i = 0; i < n; i++) {
        if (s[i].r != NULL) { /* no loop: run it here */
            s[i].r->cb(s[i].r->ctx, s[i].st, s[i].reply);
            free_req(s[i].r);
        }
    }
}

static void settle_alone(struct lane *l, struct areq *r, halyard_status st, halyard_reply *reply)
{
    struct settled one = {r, st, reply};
    settle_many(l, &one, 1);
}

/* One request of a batch the normal way (the pipeline could not take it, or gave it back). */
static void run_normal(struct lane *l, struct areq *r, const struct hyc_pipe_slot *slot,
                       int maybe_applied)
{
    hyc_begin(l->core, r->argc, (const char *const *)r->argv, r->argvlen, r->submit_ms);
    if (slot != NULL) {
        hyc_resume(l->core, slot, maybe_applied);
    }
    normal_begin(l);
    hys_drive(&l->conn);
    atomic_store(&l->normal, 0);
    halyard_reply *reply = NULL;
    halyard_status st = hyc_take_result(l->core, &reply);
    lane_events(l);
    settle_alone(l, r, st, reply);
}

#define PIPE_MAX 256

struct batch {
    struct areq *reqs[PIPE_MAX];
    struct hyc_pipe_slot slots[PIPE_MAX];
    uint8_t piped[PIPE_MAX], back[PIPE_MAX], maybe[PIPE_MAX]; /* back: to the normal path */
    size_t n;
    struct settled ready[PIPE_MAX]; /* answered, not yet delivered */
};

/* Reads the answers of the piped requests in order, settling them as they come (those parsed
 * from what arrived together under one lock); what is left unanswered when the connection fails
 * (or the client closes) is marked for the normal path or settled. Without the lock. */
static void read_answers(struct lane *l, struct batch *b)
{
    struct hyc_core *k = l->core;
    struct hy_buf in;
    hy_buf_init(&in);
    size_t off = 0; /* parsed up to here */
    uint8_t chunk[16384];
    uint64_t deadline = hys_now_ms() + l->a->c->cfg.attempt_timeout_ms;
    const char *lost = NULL;
    size_t i = 0, n_ready = 0;
    int got_any = 0;
    while (i < b->n && lost == NULL) {
        if (!b->piped[i]) {
            i++;
            continue;
        }
        size_t used = 0;
        halyard_status st = HALYARD_OK;
        halyard_reply *reply = NULL;
        int rc = hyc_pipe_answer(k, &b->slots[i], in.data + off, in.len - off, &used, &st, &reply);
        if (rc > 0) {
            off += used;
            if (rc == 1) {
                b->ready[n_ready++] = (struct settled){b->reqs[i], st, reply};
                b->reqs[i] = NULL;
            } else if (rc == 2) {
                b->back[i] = 1;
            }
            i += rc != 3;
            continue;
        }
        if (rc < 0) {
            lost = "a protocol error";
            break;
        }
        /* More bytes are needed. Once answers flow they often are there already: try without
         * waiting first, and deliver what is parsed only before a real wait. */
        int n = got_any ? hys_conn_try_recv(&l->conn, chunk, sizeof(chunk)) : 0;
        if (n == 0) {
            settle_many(l, b->ready, n_ready);
            n_ready = 0;
            n = hys_conn_recv(&l->conn, chunk, sizeof(chunk), deadline);
        }
        if (n > 0) {
            got_any = 1;
            if (off == in.len) {
                in.len = off = 0;
            } else if (off > sizeof(chunk)) {
                hy_buf_consume(&in, off);
                off = 0;
            }
            hy_buf_append(&in, chunk, (size_t)n);
        } else if (n < 0) {
            lost = "the connection was lost";
        } else if (atomic_load(&l->cancel)) {
            lost = "the client was closed";
        } else if (atomic_exchange(&l->abandon, 0)) {
            lost = "no answer to heartbeats";
        } else if (hys_now_ms() >= deadline) {
            lost = "no answer within attempt_timeout_ms";
        }
    }
    settle_many(l, b->ready, n_ready);
    hy_buf_free(&in);
    if (lost == NULL) {
        return;
    }
    size_t unanswered = 0;
    for (size_t j = i; j < b->n; j++) {
        unanswered += b->piped[j] && !b->back[j];
    }
    hyc_pipe_lost(k, lost, unanswered, hys_now_ms());
    hys_drop_fd(&l->conn);
    for (; i < b->n; i++) {
        if (!b->piped[i] || b->back[i]) {
            continue;
        }
        if (b->slots[i].is_write && b->slots[i].session == 0) {
            settle_alone(l, b->reqs[i], HALYARD_UNKNOWN, hyc_pipe_unknown());
            b->reqs[i] = NULL;
        } else {
            b->back[i] = 1; /* a read, or a write under its slot: sent again, applied once */
            b->maybe[i] = b->slots[i].is_write;
        }
    }
}

/* Runs a batch of queued requests, in rounds: those the connection can take as it is go back to
 * back (pipelined), then those given back (with their slots), then the first of those it could
 * not take goes the normal way, and the rest are tried again. A batch that meets an unready
 * connection (the lane's first, or after a lost one: no connection, slot map or session yet)
 * thus sends one request the normal way and pipelines the others once it has opened them,
 * instead of sending all of them one at a time (64 SETs, 64 fsyncs in a row). After two rounds
 * without a pipelined request the rest go the normal way (what pipelining refuses for good, such
 * as a key another member serves, costs no more rounds). Called with the lock, returns with it. */
static void run_batch(struct lane *l, struct batch *b)
{
    struct hys_async *a = l->a;
    l->req = b->reqs[0]; /* busy: lanes_stop and heartbeats wake it */
    l->in_batch = 1;
    l->is_hedge = 0;
    atomic_store(&l->cancel, 0);
    pthread_mutex_unlock(&a->lock);
    drain_wake(l);
    hys_heartbeat_apply(a->c, l->core, &l->hb_gen);
    atomic_store(&l->abandon, 0);
    struct hy_buf out;
    hy_buf_init(&out);
    int dry_rounds = 0; /* rounds in a row that pipelined nothing */
    for (;;) {
        size_t n_piped = 0;
        uint64_t now = hys_now_ms();
        hy_buf_reset(&out);
        for (size_t i = 0; i < b->n; i++) {
            struct areq *r = b->reqs[i]; /* NULL: settled in an earlier round */
            b->piped[i] = b->back[i] = b->maybe[i] = 0;
            if (r != NULL && now < r->submit_ms + a->c->cfg.request_timeout_ms &&
                hyc_pipe_add(l->core, r->argc, (const char *const *)r->argv, r->argvlen, now, &out,
                             &b->slots[i])) {
                b->piped[i] = 1;
                n_piped++;
            }
        }
        if (n_piped > 0) {
            dry_rounds = 0;
            if (hys_conn_send(&l->conn, out.data, out.len, now + a->c->cfg.attempt_timeout_ms) !=
                0) {
                /* Part may have gone out: read_answers finds the connection gone and settles. */
                hys_drop_fd(&l->conn);
            }
            read_answers(l, b);
        } else {
            dry_rounds++;
        }
        /* Those given back were sent under their slots: the normal way only, with the same. */
        for (size_t i = 0; i < b->n; i++) {
            if (b->reqs[i] != NULL && b->piped[i] && b->back[i]) {
                run_normal(l, b->reqs[i], &b->slots[i], b->maybe[i]);
                b->reqs[i] = NULL;
            }
        }
        size_t first = 0;
        while (first < b->n && b->reqs[first] == NULL) {
            first++;
        }
        if (first == b->n) {
            break;
        }
        for (size_t i = first; i < b->n; i++) {
            if (b->reqs[i] != NULL && (i == first || dry_rounds >= 2)) {
                run_normal(l, b->reqs[i], NULL, 0);
                b->reqs[i] = NULL;
            }
        }
    }
    hy_buf_free(&out);
    lane_events(l);
    pthread_mutex_lock(&a->lock);
    hyc_stats(l->core, &l->stats);
    l->req = NULL;
    l->in_batch = 0;
    l->served = 1;
}

static void *lane_main(void *arg)
{
    struct lane *l = arg;
    struct hys_async *a = l->a;
    size_t batch_max = a->batch_max;
    struct batch *b = batch_max > 1 && !a->c->cfg.hedge_reads ? calloc(1, sizeof(*b)) : NULL;
    pthread_mutex_lock(&a->lock);
    a->idle--; /* lane_start counted it idle until now */
    while (!a->closing) {
        int hedge;
        uint64_t wait_ms;
        struct areq *r = pick(a, hys_now_ms(), &hedge, &wait_ms);
        if (r == NULL) {
            a->idle++;
            timed_wait(a, wait_ms);
            a->idle--;
            continue;
        }
        if (b == NULL || hedge) {
            run_copy(l, r, hedge);
            continue;
        }
        /* Take the queue's next ones too, up to pipeline_max; what is left wakes another lane.
         * Every batch costs the same hand-offs whatever its size (a wake-up of this lane, a
         * send, a wait in poll, a receive, a wake-up of the loop): splitting a short queue over
         * the idle lanes instead (64 outstanding into four batches of 16) makes four times as
         * many, which cost the asynchronous SET twice hiredis's CPU per request. */
        b->reqs[0] = r;
        b->n = 1;
        while (b->n < batch_max && a->head != NULL) {
            b->reqs[b->n++] = a->head;
            a->head = a->head->next;
            a->queued--;
            if (a->head == NULL) {
                a->tail = NULL;
            }
        }
        if (a->head != NULL) {
            want_lane(a);
        }
        run_batch(l, b);
    }
    pthread_mutex_unlock(&a->lock);
    free(b);
    return NULL;
}

/* Called with the lock held; returns with it held. On the lanes the callback runs without the
 * lock; with a loop attached the outcome is queued and the loop woken. */
static void deliver_or_queue(struct hys_async *a, struct areq *r, halyard_status st,
                             halyard_reply *reply)
{
    if (a->wakeup != NULL && queue_done(a, r, st, reply, 0)) {
        wake_loop(a->wakeup);
        return;
    }
    /* No loop, or the outcome could not be queued: run it here rather than lose it. */
    pthread_mutex_unlock(&a->lock);
    r->cb(r->ctx, st, reply);
    pthread_mutex_lock(&a->lock);
}

/* On the loop's thread: runs the callbacks due. */
static void run_done(struct hys_async *a)
{
    pthread_mutex_lock(&a->lock);
    struct done *d = a->done_head;
    a->done_head = a->done_tail = NULL;
    a->done_thread = pthread_self();
    atomic_store(&a->in_done, 1);
    pthread_mutex_unlock(&a->lock);
    while (d != NULL) {
        struct done *next = d->next;
        d->cb(d->ctx, d->st, d->reply);
        if (d->req != NULL) {
            free_req(d->req);
        } else {
            free(d);
        }
        d = next;
    }
    pthread_mutex_lock(&a->lock);
    atomic_store(&a->in_done, 0);
    if (a->pend_head != NULL) {
        if (a->tail != NULL) {
            a->tail->next = a->pend_head;
        } else {
            a->head = a->pend_head;
        }
        a->tail = a->pend_tail;
        a->queued += a->pend_n;
        a->pend_head = a->pend_tail = NULL;
        a->pend_n = 0;
    }
    a->shed += a->pend_shed;
    a->pend_shed = 0;
    if (a->head != NULL) {
        want_lane(a); /* the lane woken wakes more if the queue is long */
    }
    pthread_mutex_unlock(&a->lock);
}

static void on_wakeup_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct waker *w = (struct waker *)h;
    uint64_t n;
    ssize_t got = read(w->fd, &n, sizeof(n)); /* an eventfd's count comes whole: one read */
    (void)got;
    atomic_store(&w->pending, 0); /* before the queue is taken: see wake_loop */
    if (h->data != NULL) {
        run_done(h->data);
    }
}

static void free_waker_cb(uv_handle_t *h)
{
    struct waker *w = (struct waker *)h;
    close(w->fd);
    free(w);
}

static void lanes_stop(struct hys_async *a);
static void async_free(struct hys_async *a);

/* hys_drive's hook (on_conn_change): a lane's connection came or went mid-request. */
static void lane_conn_change(void *arg)
{
    lane_events(arg);
}

/* Creates the lanes' state and starts the first lane (every lane with hedged reads) at the
 * first asynchronous call or attach. NULL when out of resources. */
static struct hys_async *async_start(halyard_client *c)
{
    struct hys_async *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->c = c;
    snprintf(a->lanes_cluster, sizeof(a->lanes_cluster), "%s",
             c->cfg.cluster_name != NULL ? c->cfg.cluster_name : "primary");
    a->n_lanes = c->cfg.async_threads;
    a->batch_max = c->cfg.pipeline_max < PIPE_MAX ? c->cfg.pipeline_max : PIPE_MAX;
    if (c->cfg.hedge_reads) {
        a->batch_max = 1; /* a hedged read runs alone */
    }
    a->lanes = calloc(a->n_lanes, sizeof(*a->lanes));
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->work, &ca);
    pthread_condattr_destroy(&ca);
    if (a->lanes == NULL) {
        lanes_stop(a);
        async_free(a);
        return NULL;
    }
    /* Hedged reads need lanes waiting for the hedges' moments: all of them from the start. */
    size_t first = c->cfg.hedge_reads ? a->n_lanes : 1;
    pthread_mutex_lock(&a->lock);
    while (a->n_started < first && lane_start(a) == 0) {
    }
    size_t started = a->n_started;
    pthread_mutex_unlock(&a->lock);
    if (started < first) {
        lanes_stop(a);
        async_free(a);
        return NULL;
    }
    return a;
}

/* Starts lane n_started (with the lock held: the lane takes it before it looks at the queue,
 * and until then counts as idle, so that requests queued meanwhile do not start more). 0, or -1
 * when out of resources (nothing started). */
static int lane_start(struct hys_async *a)
{
    halyard_client *c = a->c;
    size_t i = a->n_started;
    struct lane *l = &a->lanes[i];
    l->a = a;
    l->core = hyc_core_new(&c->cfg, c->seed + 1 + i); /* each its own jitter and balance */
    hyc_set_load(l->core, &c->load); /* in-flight counts shared by the whole client */
    l->conn = (struct hys_conn){.core = l->core,
                                .io = {.fd = -1, .wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)},
                                .tls = c->tls,
                                .server_name = c->server_name,
                                .verify = c->verify,
                                .cancel = &l->cancel,
                                .abandon = &l->abandon,
                                .at_lock = &a->lock,
                                .on_conn_change = lane_conn_change,
                                .on_conn_arg = l};
    if (l->conn.io.wake_fd < 0 || pthread_create(&l->thread, NULL, lane_main, l) != 0) {
        if (l->conn.io.wake_fd >= 0) {
            close(l->conn.io.wake_fd);
        }
        hyc_core_free(l->core);
        memset(l, 0, sizeof(*l));
        return -1;
    }
    a->idle++;
    a->n_started++;
    return 0;
}

/* Stops the lanes started (what runs is cancelled and delivered) and frees them; none starts
 * after (closing). */
static void lanes_stop(struct hys_async *a)
{
    pthread_mutex_lock(&a->lock);
    a->closing = 1;
    size_t n = a->n_started;
    for (size_t i = 0; i < n; i++) {
        if (a->lanes[i].req != NULL) {
            wake_lane(&a->lanes[i]);
        }
    }
    pthread_cond_broadcast(&a->work);
    pthread_mutex_unlock(&a->lock);
    for (size_t i = 0; i < n; i++) {
        pthread_join(a->lanes[i].thread, NULL);
        hys_drop_fd(&a->lanes[i].conn);
        close(a->lanes[i].conn.io.wake_fd);
        hyc_core_free(a->lanes[i].core);
    }
}

static void async_free(struct hys_async *a)
{
    pthread_cond_destroy(&a->work);
    pthread_mutex_destroy(&a->lock);
    free(a->lanes);
    free(a);
}

static struct hys_async *async_get(halyard_client *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->async == NULL) {
        /* Published with release: the heartbeat thread reads it without the lock. */
        __atomic_store_n(&c->async, async_start(c), __ATOMIC_RELEASE);
    }
    struct hys_async *a = c->async;
    pthread_mutex_unlock(&c->lock);
    return a;
}

int halyard_attach_loop(halyard_client *c, void *uv_loop)
{
    if (c == NULL || uv_loop == NULL) {
        return -1;
    }
    struct hys_async *a = async_get(c);
    if (a == NULL) {
        return -1;
    }
    struct waker *w = malloc(sizeof(*w));
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_lock(&a->lock);
    int ok = w != NULL && fd >= 0 && a->wakeup == NULL && a->outstanding == 0 &&
             uv_poll_init(uv_loop, &w->poll, fd) == 0;
    if (ok) {
        w->fd = fd;
        atomic_init(&w->pending, 0);
        w->poll.data = a;
        if (uv_poll_start(&w->poll, UV_READABLE, on_wakeup_cb) == 0) {
            a->wakeup = w;
        } else {
            /* Initialised: only a close frees it (at the loop's next turn). */
            w->poll.data = NULL;
            uv_close((uv_handle_t *)&w->poll, free_waker_cb);
            ok = 0;
            w = NULL;
            fd = -1;
        }
    }
    pthread_mutex_unlock(&a->lock);
    if (!ok) {
        free(w);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return 0;
}

/* A request and its copy of argv in one allocation: the request, pointers, lengths, then the
 * bytes (each NUL-ended). */
static struct areq *req_new(int argc, const char *const *argv, const size_t *argvlen)
{
    size_t bytes = 0;
    for (int i = 0; i < argc; i++) {
        bytes += (argvlen ? argvlen[i] : strlen(argv[i])) + 1;
    }
    size_t head = (sizeof(struct areq) + sizeof(char *) - 1) / sizeof(char *) * sizeof(char *);
    char *mem = malloc(head + (size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes);
    if (mem == NULL) {
        return NULL;
    }
    struct areq *r = (struct areq *)mem;
    *r = (struct areq){.argc = argc};
    r->argv = (char **)(mem + head);
    r->argvlen = (size_t *)(mem + head + (size_t)argc * sizeof(char *));
    char *p = mem + head + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(p, argv[i], n);
        p[n] = '\0';
        r->argv[i] = p;
        r->argvlen[i] = n;
        p += n + 1;
    }
    return r;
}

/* A request submitted by a callback on the attached loop (run_done): the bound is kept with an
 * atomic reservation and the request waits in the loop thread's own list, so the callbacks of a
 * turn take no lock and wake no lane; run_done queues them all and wakes one lane. Close
 * cannot run meanwhile (not from a callback; once attached, only on the loop's thread). */
static halyard_status submit_in_done(struct hys_async *a, struct areq *r)
{
    if (atomic_fetch_add(&a->outstanding, 1) >= a->c->cfg.max_outstanding) {
        atomic_fetch_sub(&a->outstanding, 1);
        a->pend_shed++;
        free_req(r);
        return HALYARD_BUSY;
    }
    if (a->pend_tail != NULL) {
        a->pend_tail->next = r;
    } else {
        a->pend_head = r;
    }
    a->pend_tail = r;
    a->pend_n++;
    return HALYARD_OK;
}

halyard_status halyard_command_async(halyard_client *c, int argc, const char *const *argv,
                                     const size_t *argvlen, halyard_reply_fn cb, void *ctx)
{
    if (c == NULL || argc < 1 || argv == NULL || cb == NULL) {
        return HALYARD_INVALID;
    }
    for (int i = 0; i < argc; i++) {
        if (argv[i] == NULL) {
            return HALYARD_INVALID;
        }
    }
    struct hys_async *a = async_get(c);
    if (a == NULL) {
        return HALYARD_NO_MEMORY;
    }
    uint64_t now = hys_now_ms();
    /* Copied before the lock is taken (once: it is the hot path); freed again when refused. */
    struct areq *r = req_new(argc, argv, argvlen);
    if (r == NULL) {
        return HALYARD_NO_MEMORY;
    }
    r->cb = cb;
    r->ctx = ctx;
    r->submit_ms = now;
    if (!c->cfg.hedge_reads && atomic_load(&a->in_done) &&
        pthread_equal(a->done_thread, pthread_self())) {
        return submit_in_done(a, r);
    }
    pthread_mutex_lock(&a->lock);
    if (a->closing || a->outstanding >= c->cfg.max_outstanding) {
        halyard_status refused = a->closing ? HALYARD_INVALID : HALYARD_BUSY;
        a->shed += refused == HALYARD_BUSY;
        pthread_mutex_unlock(&a->lock);
        free_req(r);
        return refused;
    }
    a->outstanding++;
    if (c->cfg.hedge_reads && a->n_lanes > 1 && hyc_is_read(argv[0], r->argvlen[0])) {
        if (a->hedge_delay_ms == 0 || a->lat_added >= 32) {
            a->hedge_delay_ms = hyc_hedge_delay(&a->lat, c->cfg.hedge_after_ms);
            a->lat_added = 0;
        }
        r->hedge_at_ms = now + a->hedge_delay_ms;
    }
    if (a->tail != NULL) {
        a->tail->next = r;
    } else {
        a->head = r;
    }
    a->tail = r;
    a->queued++;
    want_lane(a); /* one lane takes it (the others keep their hedge timers) */
    pthread_mutex_unlock(&a->lock);
    return HALYARD_OK;
}

void hys_async_events_off(halyard_client *c)
{
    struct hys_async *a = __atomic_load_n(&c->async, __ATOMIC_ACQUIRE);
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&a->lock);
    a->ev_off = 1;
    while (a->ev_delivering) { /* its callback returns, then it sees ev_off */
        pthread_mutex_unlock(&a->lock);
        sched_yield();
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
}

void hys_async_close(halyard_client *c)
{
    struct hys_async *a = c->async;
    if (a == NULL) {
        return;
    }
    /* What no lane has taken ends CANCELLED: nothing of it was sent. */
    pthread_mutex_lock(&a->lock);
    a->closing = 1;
    struct areq *q = a->head;
    a->head = a->tail = NULL;
    a->queued = 0;
    while (q != NULL) {
        struct areq *next = q->next;
        q->delivered = 1;
        a->outstanding--;
        halyard_reply *rep = hyc_reply_error("CANCELLED the client was closed before it ran");
        deliver_or_queue(a, q, rep ? HALYARD_CANCELLED : HALYARD_NO_MEMORY, rep);
        free_req(q);
        q = next;
    }
    pthread_mutex_unlock(&a->lock);
    lanes_stop(a); /* what runs is cancelled (hyc_cancel) and delivered */
    c->async = NULL;
    if (a->wakeup != NULL) {
        /* On the loop's thread (halyard_attach_loop's rule): the callbacks still due run now;
         * a closing handle's callback is not called again, and the handle is freed by libuv's
         * close callback at the loop's next turn. */
        run_done(a);
        a->wakeup->poll.data = NULL;
        uv_close((uv_handle_t *)&a->wakeup->poll, free_waker_cb);
    }
    async_free(a);
}

void hys_async_stats(halyard_client *c, halyard_stats *out)
{
    pthread_mutex_lock(&c->lock);
    struct hys_async *a = c->async;
    if (a != NULL) {
        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_lanes; i++) {
            const uint64_t *from = (const uint64_t *)&a->lanes[i].stats;
            uint64_t *to = (uint64_t *)out;
            for (size_t f = 0; f < sizeof(halyard_stats) / sizeof(uint64_t); f++) {
                to[f] += from[f];
            }
        }
        out->shed += a->shed;
        out->hedges += a->hedges;
        out->hedge_wins += a->hedge_wins;
        pthread_mutex_unlock(&a->lock);
    }
    pthread_mutex_unlock(&c->lock);
}

void hys_async_member_down(halyard_client *c, const struct hyc_member *m)
{
    /* Not under c->lock: a blocking call holds it for its whole request, and a heartbeat must
     * not wait for that. c->async is set once and freed only after the heartbeats stop. */
    struct hys_async *a = __atomic_load_n(&c->async, __ATOMIC_ACQUIRE);
    if (a != NULL) {
        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_lanes; i++) {
            struct lane *l = &a->lanes[i];
            if (l->req != NULL && l->conn.at_valid && l->conn.at.port == m->port &&
                strcmp(l->conn.at.host, m->host) == 0) {
                atomic_store(&l->abandon, 1);
                poke_lane(l);
            }
        }
        pthread_mutex_unlock(&a->lock);
    }
}
