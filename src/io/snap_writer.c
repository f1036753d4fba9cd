/*
 * snap_writer.c - the snapshot file writer's thread and its hand-off with the loop
 * (snap_writer.h). Jobs go to the thread through a FIFO under a mutex; results come back on
 * another FIFO plus uv_async_send, which libuv coalesces.
 */
#include "io/snap_writer.h"

#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/disk.h"

struct sw_job {
    struct sw_job *next;
    uint32_t group;
    int status;
    struct wal_snapshot snap; /* membership points into the bytes after the struct */
};

struct sw_fifo {
    struct sw_job *head;
    struct sw_job *tail;
};

struct snap_writer {
    struct disk *disk;
    const struct hy_log *log;
    void *ctx;
    snap_writer_done_cb done_cb;
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    size_t outstanding; /* loop thread only: submitted, callback not run yet */
    /* Under mu. */
    struct sw_fifo todo;
    struct sw_fifo done;
    int stopping;
    struct hy_histo times;
};

static void sw_push(struct sw_fifo *f, struct sw_job *j)
{
    j->next = NULL;
    if (f->tail != NULL) {
        f->tail->next = j;
    } else {
        f->head = j;
    }
    f->tail = j;
}

static struct sw_job *sw_pop(struct sw_fifo *f)
{
    struct sw_job *j = f->head;
    if (j != NULL) {
        f->head = j->next;
        if (f->head == NULL) {
            f->tail = NULL;
        }
    }
    return j;
}

static void sw_free_all(struct sw_fifo *f)
{
    struct sw_job *j;
    while ((j = sw_pop(f)) != NULL) {
        hy_free(j);
    }
}

static void sw_main(void *arg)
{
    struct snap_writer *w = arg;
    uv_mutex_lock(&w->mu);
    for (;;) {
        while (w->todo.head == NULL && !w->stopping) {
            uv_cond_wait(&w->cond, &w->mu);
        }
        if (w->stopping) {
            break; /* what is not started was never acknowledged: dropped */
        }
        struct sw_job *j = sw_pop(&w->todo);
        uv_mutex_unlock(&w->mu);
        uint64_t began_ns = uv_hrtime();
        j->status = wal_snapshot_file_write(w->disk, j->group, &j->snap);
        uint64_t took_us = (uv_hrtime() - began_ns) / 1000;
        uv_mutex_lock(&w->mu);
        if (j->status == HY_OK) {
            hy_histo_record_us(&w->times, took_us);
        }
        sw_push(&w->done, j);
        uv_async_send(&w->async);
    }
    uv_mutex_unlock(&w->mu);
}

static void sw_async_cb(uv_async_t *h)
{
    struct snap_writer *w = h->data;
    uv_mutex_lock(&w->mu);
    struct sw_fifo done = w->done;
    w->done.head = w->done.tail = NULL;
    uv_mutex_unlock(&w->mu);
    struct sw_job *j;
    while ((j = sw_pop(&done)) != NULL) {
        HY_ASSERT(w->outstanding > 0);
        if (--w->outstanding == 0) {
            uv_unref((uv_handle_t *)&w->async);
        }
        w->done_cb(w->ctx, j->group, j->snap.index, j->status);
        hy_free(j);
    }
}

int snap_writer_start(uv_loop_t *loop, const char *dir, const struct hy_log *log, void *ctx,
                      snap_writer_done_cb done_cb, struct snap_writer **out)
{
    struct snap_writer *w = hy_xcalloc(1, sizeof(*w));
    w->log = log;
    w->ctx = ctx;
    w->done_cb = done_cb;
    hy_histo_init_us(&w->times);
    /* A disk of its own: the WAL thread's is used by that thread alone. */
    if (disk_posix_open(dir, &w->disk) != HY_OK) {
        hy_log(log, HY_LOG_ERROR, "cannot open %s for the snapshot writer", dir);
        hy_free(w);
        return HY_EIO;
    }
    if (uv_mutex_init(&w->mu) != 0 || uv_cond_init(&w->cond) != 0) {
        HY_UNREACHABLE(); /* only fails on resource exhaustion at start */
    }
    HY_ASSERT(uv_async_init(loop, &w->async, sw_async_cb) == 0);
    w->async.data = w;
    /* It keeps the loop alive only while files are outstanding. */
    uv_unref((uv_handle_t *)&w->async);
    if (uv_thread_create(&w->thread, sw_main, w) != 0) {
        uv_close((uv_handle_t *)&w->async, NULL);
        return HY_EIO; /* the handle closes on the next loop run; w leaks only on this path */
    }
    *out = w;
    return HY_OK;
}

void snap_writer_submit(struct snap_writer *w, uint32_t group, const struct wal_snapshot *s)
{
    struct sw_job *j = hy_xmalloc(sizeof(*j) + s->membership_len);
    j->next = NULL;
    j->group = group;
    j->status = HY_OK;
    j->snap = *s;
    uint8_t *m = (uint8_t *)(j + 1);
    if (s->membership_len > 0) {
        memcpy(m, s->membership, s->membership_len);
    }
    j->snap.membership = m;
    if (w->outstanding++ == 0) {
        uv_ref((uv_handle_t *)&w->async);
    }
    uv_mutex_lock(&w->mu);
    sw_push(&w->todo, j);
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
}

static void sw_close_cb(uv_handle_t *h)
{
    struct snap_writer *w = h->data;
    uv_mutex_destroy(&w->mu);
    uv_cond_destroy(&w->cond);
    disk_destroy(w->disk);
    hy_free(w);
}

void snap_writer_stop(struct snap_writer *w)
{
    uv_mutex_lock(&w->mu);
    w->stopping = 1;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
    uv_thread_join(&w->thread);
    sw_free_all(&w->todo);
    sw_free_all(&w->done);
    uv_close((uv_handle_t *)&w->async, sw_close_cb);
}

void snap_writer_times(struct snap_writer *w, struct hy_histo *out)
{
    uv_mutex_lock(&w->mu);
    *out = w->times;
    uv_mutex_unlock(&w->mu);
}
