#include "io/snapshotter.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "io/server.h"
#include "store/store.h"

struct io_snapshotter {
    uv_loop_t *loop;
    struct hy_node *node;
    uint32_t group; /* the group whose snapshot is being encoded */
    const struct hy_log *log;
    uv_pipe_t pipe;
    int pipe_open;
    pid_t child;
    struct hy_buf data;
    uint64_t started_ms;
    int closing;
    void (*done_cb)(void *arg);
    void *done_arg;
};

/* ---- the child ----------------------------------------------------------------------------- */

static void write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            _exit(1); /* the parent went away or closed its end */
        }
        p += n;
        len -= (size_t)n;
    }
}

static void child_main(int wfd, const struct store *store)
{
    /* Only the pipe: an inherited listening socket would keep the port taken after the
     * parent dies, an inherited peer connection would keep it open. */
    if (wfd > 3) {
        close_range(3, (unsigned)wfd - 1, 0);
    }
    close_range((unsigned)wfd + 1, ~0u, 0);
    /* Below the event loops in CPU priority: on a loaded machine the encoders of every node
     * (they snapshot at about the same index) took the CPUs from the loops at once, whose
     * turns then ran for up to a second and whose followers campaigned (docs/performance.md
     * "Leader changes under load"). The snapshot is background work; it only pins the log
     * longer. */
    if (nice(10) == -1) {
        /* errno may be set or not; either way the child encodes at the priority it has */
    }
    struct hy_buf out;
    hy_buf_init(&out);
    store_snapshot_encode(store, &out);
    write_all(wfd, out.data, out.len);
    _exit(0);
}

/* ---- the parent ---------------------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct io_snapshotter *s = h->data;
    (void)suggested;
    buf->base = (char *)hy_buf_reserve(&s->data, 256 * 1024);
    buf->len = 256 * 1024;
}

static void pipe_closed_cb(uv_handle_t *h)
{
    struct io_snapshotter *s = h->data;
    s->pipe_open = 0;
    if (s->closing) {
        void (*done)(void *) = s->done_cb;
        void *arg = s->done_arg;
        hy_buf_free(&s->data);
        hy_free(s);
        if (done != NULL) {
            done(arg);
        }
    }
}

/* Reaps the child; 1 when it exited 0. */
static int reap(struct io_snapshotter *s)
{
    int status = 0;
    pid_t got;
    do {
        got = waitpid(s->child, &status, 0);
    } while (got < 0 && errno == EINTR);
    s->child = 0;
    return got > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct io_snapshotter *s = st->data;
    (void)buf;
    if (nread > 0) {
        s->data.len += (size_t)nread;
        return;
    }
    if (nread == 0) {
        return;
    }
    /* EOF (the child is done) or an error: either way this snapshot ends here. */
    uv_read_stop(st);
    if (nread != UV_EOF && s->child > 0) {
        kill(s->child, SIGKILL); /* reap() below must not wait for a child still encoding */
    }
    uv_close((uv_handle_t *)&s->pipe, pipe_closed_cb);
    int ok = reap(s) && nread == UV_EOF && s->data.len > 0;
    uint64_t now = io_clock_ms();
    if (ok) {
        hy_log(s->log, HY_LOG_INFO, "snapshot encoded in a child: %zu bytes in %llu ms",
               s->data.len, (unsigned long long)(now - s->started_ms));
        size_t len = s->data.len;
        /* Exactly its size: the buffer grew by doubling, and it lives on in the io batch. */
        uint8_t *bytes = hy_xrealloc(s->data.data, len); /* ownership moves to the node */
        hy_buf_init(&s->data);
        node_snapshot_done(s->node, s->group, bytes, len, now);
    } else {
        hy_log(s->log, HY_LOG_WARN, "snapshot child failed (%s)",
               nread == UV_EOF ? "it exited early" : uv_strerror((int)nread));
        hy_buf_reset(&s->data);
        node_snapshot_done(s->node, s->group, NULL, 0, now);
    }
}

/* node_snapshot_fn */
static int start(void *ctx, uint32_t group, const struct store *store)
{
    struct io_snapshotter *s = ctx;
    if (s->closing || s->pipe_open) {
        return HY_EBUSY;
    }
    s->group = group;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        hy_log(s->log, HY_LOG_WARN, "snapshot: pipe: %s; encoding inline", strerror(errno));
        return HY_EIO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        hy_log(s->log, HY_LOG_WARN, "snapshot: fork: %s; encoding inline", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return HY_EIO;
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(fds[1], store);
    }
    close(fds[1]);
    HY_ASSERT(uv_pipe_init(s->loop, &s->pipe, 0) == 0);
    s->pipe.data = s;
    s->pipe_open = 1;
    s->child = pid;
    s->started_ms = io_clock_ms();
    hy_buf_reset(&s->data);
    int rc = uv_pipe_open(&s->pipe, fds[0]);
    if (rc == 0) {
        rc = uv_read_start((uv_stream_t *)&s->pipe, alloc_cb, read_cb);
    }
    if (rc != 0) {
        /* Cannot read it: stop the child; the node encodes inline instead. */
        kill(pid, SIGKILL);
        (void)reap(s);
        uv_close((uv_handle_t *)&s->pipe, pipe_closed_cb);
        hy_log(s->log, HY_LOG_WARN, "snapshot: cannot read the child's pipe: %s; inline",
               uv_strerror(rc));
        return HY_EIO;
    }
    return HY_OK;
}

struct io_snapshotter *io_snapshotter_open(uv_loop_t *loop, struct hy_node *node,
                                           const struct hy_log *log)
{
    struct io_snapshotter *s = hy_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->node = node;
    s->log = log;
    hy_buf_init(&s->data);
    node_set_snapshotter(node, start, s);
    return s;
}

void io_snapshotter_close(struct io_snapshotter *s, void (*done_cb)(void *arg), void *arg)
{
    node_set_snapshotter(s->node, NULL, NULL);
    s->closing = 1;
    s->done_cb = done_cb;
    s->done_arg = arg;
    if (s->child > 0) {
        kill(s->child, SIGKILL);
        (void)reap(s);
    }
    if (s->pipe_open) {
        uv_read_stop((uv_stream_t *)&s->pipe);
        if (!uv_is_closing((uv_handle_t *)&s->pipe)) {
            uv_close((uv_handle_t *)&s->pipe, pipe_closed_cb);
        }
        return; /* pipe_closed_cb finishes */
    }
    hy_buf_free(&s->data);
    hy_free(s);
    if (done_cb != NULL) {
        done_cb(arg);
    }
}
