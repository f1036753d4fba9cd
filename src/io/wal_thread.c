/*
 * wal_thread.c - the WAL thread and its hand-off with the libuv loop (wal_thread.h).
 *
 * Three queues move requests along: `pending` (loop thread only, filled by submit), `queue`
 * (shared, under the mutex: pending is spliced onto it in the prepare callback, once per loop
 * turn), and the batch the thread took off `queue` and is writing. Results travel back as one
 * struct under the mutex plus uv_async_send, which libuv coalesces. Requests hold the caller's
 * data borrowed, not copied (wal_thread_submit).
 *
 * In `durability: replicated` the loop writes a request of entries itself when the thread
 * holds nothing (wal_thread_write_now), and in `durability: fsync` a node that leads no group
 * (or a leader, for a large turn) writes and fdatasyncs it itself (wal_thread_sync_now): the wal
 * then belongs to whichever of the two claimed it under the mutex (loop_owns, thread_owns), and the
 * thread's periodic fdatasync runs beside the loop's writes on a disk that allows it
 * (wal_sync_begin, wal_sync_fd).
 */
#include "io/wal_thread.h"

#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"

#define WAL_THREAD_RETRY_NS      (200ull * 1000 * 1000)
#define WAL_THREAD_WANTED_MAX    64 /* groups asked to snapshot per report */
/* The longest a group commit waits for the writers of the previous one (wt_linger). */
#define WAL_THREAD_LINGER_MAX_NS (250ull * 1000)

/* A request's descriptors, copied in one allocation after the struct; the data is borrowed. */
struct wt_req {
    struct wt_req *next;
    uint64_t seq;
    struct wal_node_req r;
    struct wal_snapshot snap;
    struct wal_entry *entries;
};

struct wt_list {
    struct wt_req *head;
    struct wt_req *tail;
};

struct wal_thread {
    uv_loop_t *loop;
    struct wal *w;
    void *ctx;
    wal_thread_done_cb done_cb;
    uv_prepare_t prepare;
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    int handles_open;
    uint64_t next_seq;
    struct wt_list pending; /* loop thread only */
    size_t pending_entries; /* loop thread only: entries in pending */
    int pending_plain;      /* loop thread only: pending holds a request that is not entries */
    /* Under mu. */
    struct wt_list queue;
    size_t queue_entries; /* entries in queue */
    int queue_plain;      /* queue holds a request that is not entries alone (wt_linger) */
    size_t linger_want;   /* wt_linger: entries that end the wait of the next group */
    uint64_t linger_until_ns;
    uint64_t linger_fixed_ns; /* wal_thread__set_linger_ns: the wait's bound, fixed (tests) */
    int stopping;
    struct wal_thread_done state;
    int state_dirty;
    uint32_t wanted[WAL_THREAD_WANTED_MAX];      /* state.snapshot_wanted (under mu) */
    uint32_t wanted_loop[WAL_THREAD_WANTED_MAX]; /* the loop's copy */
    struct hy_histo sync_time; /* one sample per fdatasync (with its group's write, if any) */
    uint64_t last_sync_us;     /* the last of them */
    /* `durability` (wal_thread_set_durability), under mu. In replicated mode a group is
     * reported durable once written, and the log is fdatasync'd at most interval_ns after the
     * first unsynced write, and before the thread ends. */
    enum wal_node_durability mode;
    uint64_t interval_ns;
    int unsynced;          /* the log holds writes not fdatasync'd yet (wal_unsynced) */
    uint64_t last_sync_ns; /* uv_hrtime of the last fdatasync (the start: recovery synced) */
    /* Who is using the wal, under mu: the thread while it writes a group, or syncs on a disk
     * that cannot sync beside a write; the loop while it writes a request itself
     * (wal_thread_write_now). Never both. thread_waits: the thread waits for the loop. */
    int thread_owns;
    int loop_owns;
    int thread_waits;
    int sync_concurrent;  /* the wal's disk may fdatasync beside a write (disk.h) */
    uint64_t loop_writes; /* requests the loop wrote itself (loop thread only) */
};

/* Records one fdatasync's time (under mu). */
static void wt_note_sync(struct wal_thread *t, uint64_t us)
{
    hy_histo_record_us(&t->sync_time, us);
    t->last_sync_us = us;
}

static void wt_list_push(struct wt_list *l, struct wt_req *r)
{
    r->next = NULL;
    if (l->tail != NULL) {
        l->tail->next = r;
    } else {
        l->head = r;
    }
    l->tail = r;
}

/* Moves all of `from` to the end of `to`. */
static void wt_list_splice(struct wt_list *to, struct wt_list *from)
{
    if (from->head == NULL) {
        return;
    }
    if (to->tail != NULL) {
        to->tail->next = from->head;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    from->head = from->tail = NULL;
}

static void wt_list_free(struct wt_list *l)
{
    struct wt_req *r = l->head;
    while (r != NULL) {
        struct wt_req *next = r->next;
        hy_free(r);
        r = next;
    }
    l->head = l->tail = NULL;
}

/* ---- loop side ----------------------------------------------------------------------------- */

/* Copies the request's descriptors; the bytes they point at (entries' and snapshot data) are
 * borrowed until the request is reported durable (wal_thread.h): a turn of n writes costs one
 * allocation and no second copy of its entries. */
static struct wt_req *wt_copy(const struct wal_node_req *req)
{
    size_t size = sizeof(struct wt_req) + req->n_entries * sizeof(struct wal_entry);
    const struct wal_snapshot *s = req->snapshot;
    if (s != NULL) {
        size += s->membership_len;
    }
    struct wt_req *c = hy_xmalloc(size);
    c->next = NULL;
    c->seq = 0;
    c->r = *req;
    c->entries = (struct wal_entry *)(c + 1);
    if (req->n_entries > 0) {
        memcpy(c->entries, req->entries, req->n_entries * sizeof(struct wal_entry));
    }
    c->r.entries = c->entries;
    if (s != NULL) {
        uint8_t *p = (uint8_t *)(c->entries + req->n_entries);
        c->snap = *s;
        c->snap.membership = p; /* small, and the caller's buffer for it is on its stack */
        if (s->membership_len > 0) {
            memcpy(p, s->membership, s->membership_len);
        }
        c->r.snapshot = &c->snap;
    }
    return c;
}

uint64_t wal_thread_submit(struct wal_thread *t, const struct wal_node_req *req)
{
    HY_ASSERT(req->n_entries == 0 || req->first_index >= 1);
    struct wt_req *c = wt_copy(req);
    c->seq = ++t->next_seq;
    wt_list_push(&t->pending, c);
    t->pending_entries += req->n_entries;
    t->pending_plain |=
        req->n_entries == 0 || req->term_vote_changed || req->snapshot != NULL || req->forget;
    uv_ref((uv_handle_t *)&t->async);
    return c->seq;
}

/* End of the loop turn: everything submitted in it goes to the thread together. */
static void wt_prepare_cb(uv_prepare_t *h)
{
    struct wal_thread *t = h->data;
    if (t->pending.head == NULL) {
        return;
    }
    uv_mutex_lock(&t->mu);
    wt_list_splice(&t->queue, &t->pending);
    t->queue_entries += t->pending_entries;
    t->queue_plain |= t->pending_plain;
    t->pending_entries = 0;
    t->pending_plain = 0;
    uv_cond_signal(&t->cond);
    uv_mutex_unlock(&t->mu);
}

static void wt_report(struct wal_thread *t)
{
    uv_mutex_lock(&t->mu);
    struct wal_thread_done d = t->state;
    memcpy(t->wanted_loop, t->wanted, d.n_snapshot_wanted * sizeof(uint32_t));
    d.snapshot_wanted = t->wanted_loop;
    int dirty = t->state_dirty;
    t->state_dirty = 0;
    uv_mutex_unlock(&t->mu);
    if (d.durable_seq == t->next_seq || (d.status != HY_OK && d.status != HY_ENOSPC)) {
        uv_unref((uv_handle_t *)&t->async);
    }
    if (dirty) {
        t->done_cb(t->ctx, &d);
    }
}

static void wt_async_cb(uv_async_t *h)
{
    wt_report(h->data);
}

/* The loop writes reqs itself in `mode` (wal_thread_write_now, wal_thread_sync_now): the mode
 * must be the thread's, everything submitted before must be written and nothing queued, so
 * that this write keeps the submission order, and reporting it durable reports every earlier
 * request too. */
static size_t wt_loop_write(struct wal_thread *t, const struct wal_node_req *const *reqs, size_t n,
                            enum wal_node_durability mode, uint64_t *first_seq_out)
{
    *first_seq_out = 0;
    uv_mutex_lock(&t->mu);
    int may = t->mode == mode && !t->stopping && !t->thread_owns && t->pending.head == NULL &&
              t->queue.head == NULL && t->state.status == HY_OK &&
              t->state.durable_seq == t->next_seq;
    t->loop_owns = may;
    uv_mutex_unlock(&t->mu);
    if (!may) {
        return 0;
    }
    /* A failed write (ENOSPC, or EIO, which the wal keeps, a failed fdatasync too) is left for
     * the thread to meet again when the caller submits the requests: its reports and retries
     * stay in one place. */
    size_t k = wal_node_unsynced_prefix(t->w, reqs, n);
    uint64_t began_ns = uv_hrtime();
    if (k > 0 && wal_node_write_as(t->w, reqs, k, mode) != HY_OK) {
        k = 0;
    }
    uint64_t now = uv_hrtime();
    int unsynced = wal_unsynced(t->w);
    uv_mutex_lock(&t->mu);
    t->loop_owns = 0;
    int wake = t->thread_waits;
    if (k > 0) {
        *first_seq_out = t->next_seq + 1;
        t->next_seq += k;
        t->state.durable_seq = t->next_seq;
        t->loop_writes += k;
        if (mode == WAL_NODE_FSYNC) {
            /* Synced here: the same record as the thread's group commits. */
            wt_note_sync(t, (now - began_ns) / 1000);
            t->last_sync_ns = now;
        }
        /* A thread with nothing unsynced sleeps without a deadline: give it one. */
        wake |= unsynced && !t->unsynced;
        t->unsynced = unsynced || (t->unsynced && mode != WAL_NODE_FSYNC);
    }
    if (wake) {
        uv_cond_signal(&t->cond);
    }
    uv_mutex_unlock(&t->mu);
    return k;
}

size_t wal_thread_write_now(struct wal_thread *t, const struct wal_node_req *const *reqs, size_t n,
                            uint64_t *first_seq_out)
{
    return wt_loop_write(t, reqs, n, WAL_NODE_REPLICATED, first_seq_out);
}

size_t wal_thread_sync_now(struct wal_thread *t, const struct wal_node_req *const *reqs, size_t n,
                           uint64_t *first_seq_out)
{
    return wt_loop_write(t, reqs, n, WAL_NODE_FSYNC, first_seq_out);
}

uint64_t wal_thread_loop_writes(const struct wal_thread *t)
{
    return t->loop_writes;
}

/* ---- thread side --------------------------------------------------------------------------- */

/* Takes the wal for the thread (under mu), once the loop is not writing to it. */
static void wt_claim(struct wal_thread *t)
{
    while (t->loop_owns) {
        t->thread_waits = 1;
        uv_cond_wait(&t->cond, &t->mu);
    }
    t->thread_waits = 0;
    t->thread_owns = 1;
}

/* Writes a list of requests of any groups as one group commit (wal_node_write_as). */
static int wt_write_group(struct wal_thread *t, const struct wt_req *head,
                          enum wal_node_durability mode)
{
    size_t n = 0;
    for (const struct wt_req *r = head; r != NULL; r = r->next) {
        n++;
    }
    const struct wal_node_req **reqs = hy_xcalloc(n ? n : 1, sizeof(*reqs));
    n = 0;
    for (const struct wt_req *r = head; r != NULL; r = r->next) {
        reqs[n++] = &r->r;
    }
    int rc = wal_node_write_as(t->w, reqs, n, mode);
    hy_free(reqs);
    return rc;
}

/* Publishes the result of a group (under mu) and wakes the loop. */
static void wt_publish(struct wal_thread *t, int rc, uint64_t seq)
{
    if (rc == HY_OK) {
        t->state.durable_seq = seq;
        t->state.n_snapshot_wanted = wal_pinning_groups(t->w, t->wanted, WAL_THREAD_WANTED_MAX);
    }
    if (rc == HY_OK || rc != t->state.status) {
        t->state.status = rc;
        t->state_dirty = 1;
        uv_async_send(&t->async);
    }
}

/* Whether the unsynced writes must be fdatasync'd now (under mu): their interval ran out, the
 * mode turned back to fsync, or the thread is stopping (a clean shutdown leaves nothing
 * unsynced). */
static int wt_sync_due(const struct wal_thread *t, uint64_t now_ns)
{
    return t->unsynced &&
           (t->stopping || t->mode == WAL_NODE_FSYNC || now_ns - t->last_sync_ns >= t->interval_ns);
}

/* Sleeps (under mu) until there is work: a group to retry once its pause is over, requests,
 * the stop, or an fdatasync that falls due. */
static void wt_wait(struct wal_thread *t, const struct wt_list *retry)
{
    if (retry->head != NULL && !t->stopping) {
        (void)uv_cond_timedwait(&t->cond, &t->mu, WAL_THREAD_RETRY_NS);
    }
    while (retry->head == NULL && t->queue.head == NULL && !t->stopping) {
        if (!t->unsynced) {
            uv_cond_wait(&t->cond, &t->mu);
            continue;
        }
        uint64_t now = uv_hrtime();
        if (wt_sync_due(t, now)) {
            return;
        }
        (void)uv_cond_timedwait(&t->cond, &t->mu, t->last_sync_ns + t->interval_ns - now);
    }
}

/* fdatasyncs what was written without it (mu is held on entry and exit). On a disk that
 * allows it the loop may go on writing meanwhile: what it writes then is unsynced again. A
 * failure is fatal and reported like a failed group commit. */
static int wt_sync(struct wal_thread *t)
{
    wt_claim(t);
    uint64_t began_ns = uv_hrtime();
    int fd = -1;
    int rc = HY_OK;
    if (t->sync_concurrent) {
        rc = wal_sync_begin(t->w, &fd);
        t->unsynced = 0;
        t->thread_owns = 0;
    }
    uv_mutex_unlock(&t->mu);
    if (!t->sync_concurrent) {
        rc = wal_sync(t->w);
    } else if (rc == HY_OK && fd >= 0) {
        rc = wal_sync_fd(t->w, fd);
    }
    uint64_t now = uv_hrtime();
    uv_mutex_lock(&t->mu);
    t->thread_owns = 0;
    if (rc != HY_OK) {
        wt_publish(t, rc, t->state.durable_seq);
        return rc;
    }
    wt_note_sync(t, (now - began_ns) / 1000);
    if (!t->sync_concurrent) {
        t->unsynced = 0;
    }
    /* From the fdatasync's start: what was written after it may be unsynced, and its
     * interval counts from there. */
    t->last_sync_ns = began_ns;
    return HY_OK;
}

/* Group commit of `durability: fsync` (under mu): before the next group, waits for the writers
 * whose group just became durable to send again, so that they join it. Each of them waits for
 * its reply before its next write (redis-benchmark's clients, an application's connections),
 * and the loop queues what arrives during an fdatasync: taken at once, that became the next
 * group and the writers of the previous one, arriving a round trip later, the one after. Two
 * cohorts then alternate, each fdatasync carrying half the writers (50 clients at -P 1: 23.5
 * SETs per fdatasync against Redis's 43, which syncs in its loop after reading everyone), and
 * each writer waits two fdatasyncs per write. The wait ends once as many entries are queued as
 * the previous group and the queue held when it ended together, or after half the previous
 * group's time (at most WAL_THREAD_LINGER_MAX_NS), or at once when the queue holds something
 * other than entries (a term, a vote, a snapshot: elections are not slowed). A lone writer's
 * next entry ends it on arrival. Only the acknowledgement waits: nothing is acknowledged
 * before its fdatasync either way. */
static void wt_linger(struct wal_thread *t)
{
    while (!t->stopping && !t->queue_plain && t->queue_entries < t->linger_want) {
        uint64_t now = uv_hrtime();
        if (now >= t->linger_until_ns) {
            return;
        }
        (void)uv_cond_timedwait(&t->cond, &t->mu, t->linger_until_ns - now);
    }
}

static void wt_main(void *arg)
{
    struct wal_thread *t = arg;
    struct wt_list retry = {NULL, NULL}; /* a group that hit ENOSPC, to write again */
    int failed = 0;
    uv_mutex_lock(&t->mu);
    for (;;) {
        wt_wait(t, &retry);
        /* Checked before the next group too, so that a steady stream of writes, which never
         * lets the thread sleep, still syncs once an interval. */
        if (wt_sync_due(t, uv_hrtime()) && wt_sync(t) != HY_OK) {
            failed = 1;
            break;
        }
        if (retry.head == NULL && t->queue.head == NULL) {
            if (t->stopping) {
                break; /* everything is written and synced */
            }
            continue;
        }
        if (retry.head == NULL && t->mode == WAL_NODE_FSYNC) {
            wt_linger(t);
        }
        /* The loop writes only while nothing is queued, so it does not now; but the claim
         * keeps the rule in one place. */
        wt_claim(t);
        struct wt_list group = retry;
        retry.head = retry.tail = NULL;
        wt_list_splice(&group, &t->queue);
        size_t group_entries = t->queue_entries;
        t->queue_entries = 0;
        t->queue_plain = 0;
        enum wal_node_durability mode = t->mode;
        uv_mutex_unlock(&t->mu);
        uint64_t began_ns = uv_hrtime();
        int rc = wt_write_group(t, group.head, mode);
        int unsynced = rc == HY_OK && wal_unsynced(t->w);
        uint64_t now = uv_hrtime();
        uv_mutex_lock(&t->mu);
        t->thread_owns = 0;
        if (rc == HY_OK && !unsynced) {
            wt_note_sync(t, (now - began_ns) / 1000);
            t->last_sync_ns = now;
        }
        if (rc == HY_OK) {
            /* The interval counts from the last fdatasync, so the oldest unsynced write is
             * never older than it. */
            t->unsynced = unsynced;
        }
        wt_publish(t, rc, group.tail->seq);
        /* The next group waits for this one's writers (wt_linger): as many entries as this
         * group and those queued meanwhile, for half the time this one took. */
        t->linger_want = group_entries + t->queue_entries;
        t->linger_until_ns =
            now + (t->linger_fixed_ns != 0
                       ? t->linger_fixed_ns
                       : HY_MIN((now - began_ns) / 2, (uint64_t)WAL_THREAD_LINGER_MAX_NS));
        if (rc == HY_ENOSPC && !t->stopping) {
            retry = group;
            continue;
        }
        wt_list_free(&group);
        if (rc != HY_OK && rc != HY_ENOSPC) {
            failed = 1;
            break; /* fatal: the process is about to abort */
        }
        if (rc == HY_ENOSPC) {
            break; /* stopping on a full disk: what is not durable was never acknowledged */
        }
    }
    if (!failed && t->unsynced) {
        (void)wt_sync(t); /* stopping on a full disk: what was written is still synced */
    }
    wt_list_free(&retry); /* only after a fatal error: the process is about to abort */
    wt_list_free(&t->queue);
    uv_mutex_unlock(&t->mu);
}

/* ---- lifetime ------------------------------------------------------------------------------- */

int wal_thread_start(uv_loop_t *loop, struct wal *w, void *ctx, wal_thread_done_cb done_cb,
                     struct wal_thread **thread_out)
{
    struct wal_thread *t = hy_xcalloc(1, sizeof(*t));
    t->loop = loop;
    t->w = w;
    t->ctx = ctx;
    t->done_cb = done_cb;
    hy_histo_init_us(&t->sync_time);
    t->mode = WAL_NODE_FSYNC;
    t->interval_ns = 1000ull * 1000 * 1000;
    t->last_sync_ns = uv_hrtime();
    t->sync_concurrent = wal_sync_concurrent(w);
    if (uv_mutex_init(&t->mu) != 0 || uv_cond_init(&t->cond) != 0) {
        HY_UNREACHABLE(); /* only fails on resource exhaustion at start */
    }
    HY_ASSERT(uv_prepare_init(loop, &t->prepare) == 0);
    HY_ASSERT(uv_async_init(loop, &t->async, wt_async_cb) == 0);
    t->prepare.data = t;
    t->async.data = t;
    t->handles_open = 2;
    HY_ASSERT(uv_prepare_start(&t->prepare, wt_prepare_cb) == 0);
    /* Neither handle keeps the loop alive by itself; submit refs the async handle while work
     * is outstanding, so uv_run returns only once everything submitted is durable. */
    uv_unref((uv_handle_t *)&t->prepare);
    uv_unref((uv_handle_t *)&t->async);
    if (uv_thread_create(&t->thread, wt_main, t) != 0) {
        uv_close((uv_handle_t *)&t->prepare, NULL);
        uv_close((uv_handle_t *)&t->async, NULL);
        return HY_EIO; /* the handles close on the next loop run; t leaks only on this path */
    }
    *thread_out = t;
    return HY_OK;
}

static void wt_close_cb(uv_handle_t *h)
{
    struct wal_thread *t = h->data;
    if (--t->handles_open > 0) {
        return;
    }
    uv_mutex_destroy(&t->mu);
    uv_cond_destroy(&t->cond);
    wt_list_free(&t->pending);
    hy_free(t);
}

void wal_thread_stop(struct wal_thread *t)
{
    uv_mutex_lock(&t->mu);
    wt_list_splice(&t->queue, &t->pending);
    t->stopping = 1;
    uv_cond_signal(&t->cond);
    uv_mutex_unlock(&t->mu);
    uv_thread_join(&t->thread);
    wt_report(t);
    uv_prepare_stop(&t->prepare);
    uv_close((uv_handle_t *)&t->prepare, wt_close_cb);
    uv_close((uv_handle_t *)&t->async, wt_close_cb);
}

void wal_thread_sync_times(struct wal_thread *t, struct hy_histo *out)
{
    uv_mutex_lock(&t->mu);
    *out = t->sync_time;
    uv_mutex_unlock(&t->mu);
}

void wal_thread_set_durability(struct wal_thread *t, enum wal_node_durability mode,
                               uint32_t interval_ms)
{
    HY_ASSERT(interval_ms >= 1);
    uv_mutex_lock(&t->mu);
    t->mode = mode;
    t->interval_ns = (uint64_t)interval_ms * 1000 * 1000;
    uv_cond_signal(&t->cond); /* a shorter interval, or fsync mode, may make a sync due now */
    uv_mutex_unlock(&t->mu);
}

void wal_thread__set_linger_ns(struct wal_thread *t, uint64_t ns)
{
    uv_mutex_lock(&t->mu);
    t->linger_fixed_ns = ns;
    uv_mutex_unlock(&t->mu);
}

uint64_t wal_thread_last_sync_us(struct wal_thread *t)
{
    uv_mutex_lock(&t->mu);
    uint64_t us = t->last_sync_us;
    uv_mutex_unlock(&t->mu);
    return us;
}

uint64_t wal_thread_last_sync_ns(struct wal_thread *t)
{
    uv_mutex_lock(&t->mu);
    uint64_t at = t->last_sync_ns;
    uv_mutex_unlock(&t->mu);
    return at;
}
