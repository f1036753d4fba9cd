/*
 * migrate.c - carries out MIGRATE's I/O away from the loop (migrate.h).
 *
 * A few threads share one queue of jobs, so that a slow or silent target holds only the
 * MIGRATEs sent to it (and at most this many at once). Each job gets a connection of its own,
 * closed when it is done (no connection is cached, unlike Redis). As Redis, the requests go
 * in one write and the replies are read one by one; the first step that fails or times out
 * ends the job with the replies read so far.
 */
#include "io/migrate.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/rconn.h"
#include "common/alloc.h"
#include "common/assert.h"
#include "io/server.h"
#include "proto/resp.h"

#define MIGRATE_THREADS   4
#define MIGRATE_REPLY_MAX 256 /* the most of an error's text kept (Redis keeps 1024) */

struct migrate_result {
    uint64_t id;
    int io;
    size_t count;
    struct hy_buf texts; /* count strings, each NUL-terminated: "" or an error's text */
};

struct io_migrate {
    const struct hy_log *log;
    struct hy_node *node; /* borrowed: pumped from the loop's thread only */
    uv_async_t wakeup;    /* sent by a thread when an outcome is ready */
    uv_thread_t threads[MIGRATE_THREADS];
    uv_mutex_t mu;
    uv_cond_t cond;
    int wake[2]; /* written on close: cuts the threads' waits short */
    /* Under mu. */
    struct node_migrate_job *jobs;
    size_t job_count, job_cap;
    struct migrate_result *results;
    size_t result_count, result_cap;
    int stopping;
};

/* Reads one whole reply from c into *text ("" when it is no error). 0, or -1 when the
 * connection ended, timed out or sent something that is not RESP. */
static int read_reply(struct rconn *c, struct hy_buf *in, uint64_t timeout_ms, struct hy_buf *text)
{
    uint64_t until = rconn_now_ms() + timeout_ms;
    for (;;) {
        struct resp_value v;
        size_t used;
        char why[128];
        int rc = resp_value_parse(NULL, in->data, in->len, &v, &used, why);
        if (rc == HY_OK) {
            if (v.type == RESP_ERROR || v.type == RESP_BULK_ERROR) {
                size_t len = HY_MIN(v.len, (size_t)MIGRATE_REPLY_MAX);
                hy_buf_append(text, v.str, len);
            }
            hy_buf_append_u8(text, 0);
            resp_value_free(&v);
            hy_buf_consume(in, used);
            return 0;
        }
        if (rc != HY_EAGAIN) {
            return -1;
        }
        int n = rconn_recv(c, hy_buf_reserve(in, 4096), 4096, until);
        if (n < 0 || (n == 0 && rconn_now_ms() >= until)) {
            return -1;
        }
        if (n == 0 && rconn_wait(c->wake_fd, POLLIN, rconn_now_ms(), -1) == 1) {
            return -1; /* woken: the server stops */
        }
        in->len += (size_t)n; /* 0: interrupted, read again */
    }
}

/* One job: its outcome in *r. */
static void migrate_run(struct io_migrate *m, const struct node_migrate_job *j,
                        struct migrate_result *r)
{
    struct rconn c = {.fd = -1, .wake_fd = m->wake[0]};
    int unresolved = 0;
    c.fd = rconn_dial(j->host, j->port, rconn_now_ms() + j->timeout_ms, &unresolved);
    if (c.fd < 0) {
        /* Redis connects without waiting and learns of a refusal when it writes: its reply
         * then says "writing"; "connecting" when the connect timed out or the name did not
         * resolve. */
        r->io = unresolved || errno == ETIMEDOUT ? NODE_MIGRATE_ECONNECT : NODE_MIGRATE_EWRITE;
        return;
    }
    if (rconn_send(&c, j->req.data, j->req.len, rconn_now_ms() + j->timeout_ms) != 0) {
        r->io = NODE_MIGRATE_EWRITE;
        rconn_close(&c);
        return;
    }
    struct hy_buf in;
    hy_buf_init(&in);
    r->io = NODE_MIGRATE_OK;
    while (r->count < j->replies) {
        if (read_reply(&c, &in, j->timeout_ms, &r->texts) != 0) {
            r->io = NODE_MIGRATE_EREAD;
            break;
        }
        r->count++;
    }
    hy_buf_free(&in);
    rconn_close(&c);
}

static void migrate_thread(void *arg)
{
    struct io_migrate *m = arg;
    for (;;) {
        uv_mutex_lock(&m->mu);
        while (m->job_count == 0 && !m->stopping) {
            uv_cond_wait(&m->cond, &m->mu);
        }
        if (m->stopping) {
            uv_mutex_unlock(&m->mu);
            break;
        }
        struct node_migrate_job job = m->jobs[0];
        memmove(&m->jobs[0], &m->jobs[1], (m->job_count - 1) * sizeof(*m->jobs));
        m->job_count--;
        uv_mutex_unlock(&m->mu);
        struct migrate_result res = {.id = job.id};
        hy_buf_init(&res.texts);
        migrate_run(m, &job, &res);
        hy_buf_free(&job.req);
        uv_mutex_lock(&m->mu);
        if (m->result_count == m->result_cap) {
            m->result_cap = m->result_cap ? 2 * m->result_cap : 8;
            m->results = hy_xrealloc(m->results, m->result_cap * sizeof(*m->results));
        }
        m->results[m->result_count++] = res;
        uv_mutex_unlock(&m->mu);
        uv_async_send(&m->wakeup);
    }
}

static void wakeup_cb(uv_async_t *h)
{
    struct io_migrate *m = h->data;
    io_migrate_pump(m, m->node, io_clock_ms());
}

static void wakeup_closed_cb(uv_handle_t *h)
{
    hy_free(h->data);
}

int io_migrate_open(uv_loop_t *loop, struct hy_node *node, const struct hy_log *log,
                    struct io_migrate **out)
{
    struct io_migrate *m = hy_xcalloc(1, sizeof(*m));
    m->log = log;
    m->node = node;
    if (pipe(m->wake) != 0) {
        hy_log(log, HY_LOG_ERROR, "MIGRATE: pipe: %s", strerror(errno));
        hy_free(m);
        *out = NULL;
        return HY_EIO;
    }
    HY_ASSERT(uv_mutex_init(&m->mu) == 0 && uv_cond_init(&m->cond) == 0);
    HY_ASSERT(uv_async_init(loop, &m->wakeup, wakeup_cb) == 0);
    m->wakeup.data = m;
    uv_unref((uv_handle_t *)&m->wakeup); /* the loop's liveness does not depend on it */
    for (size_t i = 0; i < MIGRATE_THREADS; i++) {
        HY_ASSERT(uv_thread_create(&m->threads[i], migrate_thread, m) == 0);
    }
    *out = m;
    return HY_OK;
}

/* Hands the engine one outcome: its replies as the strings they are. */
static void result_hand(struct hy_node *n, struct migrate_result *r, uint64_t now_ms)
{
    const char **texts = hy_xcalloc(r->count + 1, sizeof(*texts));
    const char *p = (const char *)r->texts.data;
    for (size_t i = 0; i < r->count; i++) {
        texts[i] = p;
        p += strlen(p) + 1;
    }
    node_migrate_done(n, r->id, r->io, texts, r->count, now_ms);
    hy_free(texts);
    hy_buf_free(&r->texts);
}

void io_migrate_pump(struct io_migrate *m, struct hy_node *n, uint64_t now_ms)
{
    if (m == NULL) {
        return;
    }
    uv_mutex_lock(&m->mu);
    struct migrate_result *results = m->results;
    size_t count = m->result_count;
    m->results = NULL;
    m->result_count = m->result_cap = 0;
    uv_mutex_unlock(&m->mu);
    for (size_t i = 0; i < count; i++) {
        result_hand(n, &results[i], now_ms);
    }
    hy_free(results);
    struct node_migrate_job *jobs;
    size_t jc = node_migrate_take(n, &jobs);
    if (jc == 0) {
        return;
    }
    uv_mutex_lock(&m->mu);
    if (m->job_count + jc > m->job_cap) {
        m->job_cap = m->job_count + jc;
        m->jobs = hy_xrealloc(m->jobs, m->job_cap * sizeof(*m->jobs));
    }
    memcpy(&m->jobs[m->job_count], jobs, jc * sizeof(*jobs));
    m->job_count += jc;
    uv_cond_broadcast(&m->cond);
    uv_mutex_unlock(&m->mu);
    hy_free(jobs); /* the requests' bytes now belong to the queued copies */
}

void io_migrate_close(struct io_migrate *m)
{
    if (m == NULL) {
        return;
    }
    uv_mutex_lock(&m->mu);
    m->stopping = 1;
    uv_cond_broadcast(&m->cond);
    uv_mutex_unlock(&m->mu);
    ssize_t wr = write(m->wake[1], "x", 1);
    (void)wr;
    for (size_t i = 0; i < MIGRATE_THREADS; i++) {
        uv_thread_join(&m->threads[i]);
    }
    for (size_t i = 0; i < m->job_count; i++) {
        hy_buf_free(&m->jobs[i].req);
    }
    for (size_t i = 0; i < m->result_count; i++) {
        hy_buf_free(&m->results[i].texts);
    }
    hy_free(m->jobs);
    hy_free(m->results);
    close(m->wake[0]);
    close(m->wake[1]);
    uv_cond_destroy(&m->cond);
    uv_mutex_destroy(&m->mu);
    uv_close((uv_handle_t *)&m->wakeup, wakeup_closed_cb); /* freed once the loop closed it */
}
