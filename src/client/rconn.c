/*
 * rconn.c - one RESP connection's blocking I/O, shared by every RESP client (see rconn.h).
 */
#include "client/rconn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

uint64_t rconn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int rconn_wait(int fd, short events, uint64_t until_ms, int wake_fd)
{
    for (;;) {
        int ms = -1;
        if (until_ms != RCONN_FOREVER) {
            uint64_t now = rconn_now_ms();
            uint64_t left = until_ms > now ? until_ms - now : 0;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = wake_fd, .events = POLLIN}};
        int rc = poll(p, wake_fd >= 0 ? 2 : 1, ms);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc > 0 && !(p[0].revents & (events | POLLERR | POLLHUP))) {
            return 0; /* only the wake */
        }
        return rc > 0 ? 1 : rc;
    }
}

/* One address: a non-blocking connect bounded by until_ms. The fd, or -1 with errno set. */
static int dial_one(const struct addrinfo *ai, uint64_t until_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
        int ready = rconn_wait(fd, POLLOUT, until_ms, -1);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (ready != 1) {
            soerr = ready == 0 ? ETIMEDOUT : errno;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
            soerr = errno;
        }
        rc = soerr == 0 ? 0 : -1;
        errno = soerr;
    }
    if (rc != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int rconn_dial(const char *host, const char *port, uint64_t until_ms, int *unresolved)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (unresolved != NULL) {
        *unresolved = 0;
    }
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        if (unresolved != NULL) {
            *unresolved = 1;
        }
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = dial_one(ai, until_ms);
    }
    int e = errno;
    freeaddrinfo(res);
    errno = e;
    return fd;
}

/* Waits for what OpenSSL asked for (rc from an SSL call); 0 to go on, -1 to give up (the error
 * queue is left for the caller to report). */
static int tls_wait(struct rconn *c, int rc, uint64_t until_ms)
{
    int e = SSL_get_error(c->ssl, rc);
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (ev == 0) {
        return -1;
    }
    return rconn_wait(c->fd, ev, until_ms, c->wake_fd) == 1 ? 0 : -1;
}

int rconn_tls_start(struct rconn *c, SSL_CTX *ctx, const char *name, int verify, uint64_t until_ms)
{
    c->tls_tried = 1;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        return -2;
    }
    if (verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) { /* not an IP address: a name */
            SSL_set_tlsext_host_name(c->ssl, name);
            SSL_set1_host(c->ssl, name);
        }
    }
    for (;;) {
        int rc = SSL_connect(c->ssl);
        if (rc == 1) {
            return 0;
        }
        if (tls_wait(c, rc, until_ms) != 0) {
            return -1;
        }
    }
}

static int send_plain(struct rconn *c, const uint8_t *p, size_t len, uint64_t until_ms)
{
    while (len > 0) {
        /* MSG_DONTWAIT: the fd may have been made blocking for its receives (rconn_recv);
         * a full send buffer is waited for in poll, bounded by until_ms, either way. */
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (rconn_wait(c->fd, POLLOUT, until_ms, -1) != 1) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return 0;
}

static int send_tls(struct rconn *c, const uint8_t *p, size_t len, uint64_t until_ms)
{
    while (len > 0) {
        int n = SSL_write(c->ssl, p, (int)(len > (1u << 30) ? 1u << 30 : len));
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (tls_wait(c, n, until_ms) != 0) {
            return -1;
        }
    }
    return 0;
}

int rconn_send(struct rconn *c, const uint8_t *p, size_t len, uint64_t until_ms)
{
    if (c->fd < 0) {
        return -1;
    }
    return c->ssl ? send_tls(c, p, len, until_ms) : send_plain(c, p, len, until_ms);
}

static int recv_tls(struct rconn *c, uint8_t *buf, size_t cap, uint64_t until_ms)
{
    for (;;) {
        int n = SSL_read(c->ssl, buf, (int)(cap > INT_MAX ? INT_MAX : cap));
        if (n > 0) {
            return n;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            return -1;
        }
        int rc =
            rconn_wait(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until_ms, c->wake_fd);
        if (rc <= 0) {
            return rc;
        }
    }
}

/* A plain connection without a wake fd: recv blocks, bounded by a receive timeout that never
 * runs past until_ms. The timeout is set again only when the one set would pass the deadline
 * or is less than half the time left (the core then asks again: an early return costs a loop,
 * never a late one), so a steady stream of requests with the same attempt timeout sets it once.
 * -2: the socket could not be set up; the caller waits in poll instead. */
static int recv_blocking(struct rconn *c, uint8_t *buf, size_t cap, uint64_t until_ms)
{
    uint64_t now = rconn_now_ms();
    int flags = MSG_DONTWAIT; /* the deadline has passed: only what is there already */
    if (until_ms == RCONN_FOREVER || until_ms > now) {
        if (!c->blocking) {
            int fl = fcntl(c->fd, F_GETFL);
            if (fl < 0 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
                return -2;
            }
            c->blocking = 1;
        }
        /* 0: no timeout (the kernel's default, and RCONN_FOREVER's). */
        uint64_t left = until_ms == RCONN_FOREVER ? 0 : until_ms - now;
        int reset = left == 0
                        ? c->rcvtimeo_ms != 0
                        : c->rcvtimeo_ms == 0 || c->rcvtimeo_ms > left || c->rcvtimeo_ms * 2 < left;
        if (reset) {
            struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
            if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
                return -2;
            }
            c->rcvtimeo_ms = left;
        }
        flags = 0;
    }
    ssize_t n = recv(c->fd, buf, cap, flags);
    if (n > 0) {
        return (int)n;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
}

int rconn_recv(struct rconn *c, uint8_t *buf, size_t cap, uint64_t until_ms)
{
    if (c->fd < 0) {
        return -1;
    }
    if (c->ssl != NULL) {
        return recv_tls(c, buf, cap, until_ms);
    }
    if (c->wake_fd < 0) {
        int n = recv_blocking(c, buf, cap, until_ms);
        if (n != -2) {
            return n;
        }
    }
    int rc = rconn_wait(c->fd, POLLIN, until_ms, c->wake_fd);
    if (rc == 0) {
        return 0;
    }
    ssize_t n = rc > 0 ? recv(c->fd, buf, cap, 0) : -1;
    if (n > 0) {
        return (int)n;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN) ? 0 : -1;
}

int rconn_try_recv(struct rconn *c, uint8_t *buf, size_t cap)
{
    if (c->fd < 0) {
        return -1;
    }
    if (c->ssl != NULL) {
        return SSL_pending(c->ssl) > 0 ? recv_tls(c, buf, cap, 0) : 0;
    }
    ssize_t n = recv(c->fd, buf, cap, MSG_DONTWAIT);
    if (n > 0) {
        return (int)n;
    }
    return n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
}

void rconn_close(struct rconn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl); /* no close_notify: the peer sees the connection end either way */
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->blocking = 0;
    c->rcvtimeo_ms = 0;
    /* Only after TLS was tried: the first ERR_clear_error of a process initialises OpenSSL
     * (1-6 ms of CPU here, per program using libhalyard), which a plain connection never
     * needs, and it has put nothing in the queue. */
    if (c->tls_tried) {
        ERR_clear_error();
        c->tls_tried = 0;
    }
}

int rconn_call(struct rconn *c, int argc, const char *const *argv, const size_t *argvlen,
               struct hy_buf *in, const struct resp_limits *limits, uint64_t until_ms,
               struct resp_value *out, char *err, size_t errlen)
{
    struct hy_buf req;
    hy_buf_init(&req);
    resp_request_write(&req, argc, argv, argvlen);
    int sent = rconn_send(c, req.data, req.len, until_ms);
    hy_buf_free(&req);
    if (sent != 0) {
        return RCONN_ESEND;
    }
    hy_buf_reset(in);
    for (;;) {
        size_t used;
        char why[128] = "";
        int rc = resp_value_parse(limits, in->data, in->len, out, &used, why);
        if (rc == HY_OK) {
            return RCONN_OK;
        }
        if (rc != HY_EAGAIN) {
            if (err != NULL && errlen > 0) {
                snprintf(err, errlen, "%s", why);
            }
            return RCONN_EPROTO;
        }
        int n = rconn_recv(c, hy_buf_reserve(in, 4096), 4096, until_ms);
        if (n < 0) {
            return RCONN_ERECV;
        }
        if (n == 0) {
            if (c->wake_fd < 0 && (until_ms == RCONN_FOREVER || rconn_now_ms() < until_ms)) {
                continue; /* EINTR or EAGAIN: wait again */
            }
            return RCONN_ETIMEOUT; /* or woken: the caller looks at why */
        }
        in->len += (size_t)n;
    }
}
