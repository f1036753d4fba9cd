/*
 * wan_link.c - sends WAN batches to the links' targets (wan_link.h, docs/wan.md,
 * docs/multi-region.md "The link's transport").
 *
 * One connection per link, to the first target address (a member's peer port) that answers,
 * in TLS when the link says so (the target's certificate checked against the link's CA, this
 * member's certificate shown: the target's tls-cluster asks for one). On connecting, the thread
 * runs the peer handshake of a WAN link (io/peer_auth.h: WAN_HELLO, the target's CHALLENGE
 * proving the target's cluster secret, AUTH proving the link's secret, WELCOME); then it asks
 * the target's partition count (WAN_PARTS), then splits each batch by target partition, by the
 * slot of each change's key, and sends one WAN_APPLY per target partition: the target node
 * routes it to that partition's leader (proxied or run there). A batch succeeds when every part
 * was applied (the target answers the highest sequence number it holds from the batch's
 * source, at least the part's last); anything else fails the whole batch, which the engine
 * sends again from its acknowledged position (the target skips what it already has).
 */
#include "io/wan_link.h"

#include <errno.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "client/rconn.h"
#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "io/peer_auth.h"
#include "io/server.h"
#include "io/tls.h"
#include "proto/wire.h"
#include "store/store.h"
#include "store/store_wan.h"

#define WAN_CONNECT_MS     2000u
#define WAN_CALL_MS        5000u
#define WAN_CONNS_MAX      16
#define WAN_PARTS_MAX      4096
/* A connection unused this long is dialled again before its next request: the target closes
 * a WAN link silent for 5 minutes (io/peer.c PEER_WAN_IDLE_MS). */
#define WAN_IDLE_REDIAL_MS (2u * 60 * 1000)

struct wan_result {
    char link[65];
    uint32_t partition;
    uint64_t term, last_seq, entries;
    int resync, ok;
    char why[160];
};

struct wan_conn {
    char link[65];
    char targets[513];
    char secret[257];
    char source[65]; /* this cluster's name, which the proof binds */
    struct rconn c;
    long parts;       /* the target's partition count */
    uint64_t told;    /* the promotion epoch this connection told the target of (0: none) */
    struct hy_buf in; /* what arrived; its first `taken` bytes are a frame already read */
    size_t taken;
    struct wire_reader rd;
    uint64_t req_ids; /* the last request's id */
    uint64_t used_ms; /* when the connection last had an answer */
    /* TLS (the link says TLS): the job's files, and the context made of them (NULL: not yet,
     * or no TLS), kept across connections until the files named change. */
    int tls;
    char tls_ca[513], tls_ca_dir[513], tls_cert[513], tls_key[513], tls_key_pass[257];
    SSL_CTX *ctx;
};

struct io_wan {
    const struct hy_log *log;
    struct hy_node *node; /* borrowed: pumped from the loop's thread only */
    uv_async_t wakeup;    /* sent by the thread when an outcome is ready */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    int wake[2]; /* written on close: cuts the thread's waits short */
    /* Under mu. */
    struct node_wan_job *jobs;
    size_t job_count, job_cap;
    struct wan_result *results;
    size_t result_count, result_cap;
    int stopping;
    /* The thread's own. */
    struct wan_conn conns[WAN_CONNS_MAX];
};

static void conn_drop(struct wan_conn *k)
{
    if (k->c.fd >= 0) {
        rconn_close(&k->c);
    }
    k->c.fd = -1;
    k->c.ssl = NULL;
    k->parts = 0;
    k->told = 0;
    hy_buf_reset(&k->in);
    k->taken = 0;
    wire_reader_free(&k->rd);
    wire_reader_init(&k->rd, NULL);
}

/* The answer to one request (WAN_REPLY), its text copied. */
struct wan_reply {
    int status; /* enum wire_wan_status */
    int64_t value;
    char text[WIRE_REASON_MAX + 1];
};

/* Fails the connection: why says why, and k is dropped. Always -1. */
static int conn_fail(struct wan_conn *k, char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int conn_fail(struct wan_conn *k, char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    conn_drop(k);
    return -1;
}

static int frame_send(struct wan_conn *k, const struct hy_buf *b, char *why, size_t cap)
{
    if (rconn_send(&k->c, b->data, b->len, rconn_now_ms() + WAN_CALL_MS) != 0) {
        return conn_fail(k, why, cap, "no reply from the target (connection lost)");
    }
    return 0;
}

/* The next frame from the target into *f (its pointers borrow from k->in until the next
 * call), by until_ms. 0, or -1 (k dropped) with why filled. */
static int frame_recv(struct wan_conn *k, struct wire_frame *f, uint64_t until_ms, char *why,
                      size_t cap)
{
    hy_buf_consume(&k->in, k->taken);
    k->taken = 0;
    for (;;) {
        size_t used = 0;
        int rc = k->in.len > 0 ? wire_read(&k->rd, k->in.data, k->in.len, &used, f) : HY_EAGAIN;
        if (rc == HY_OK) {
            k->taken = used;
            return 0;
        }
        if (rc != HY_EAGAIN && strstr(k->rd.error, "bad magic") != NULL) {
            return conn_fail(k, why, cap,
                             "the target does not speak the peer protocol: --to must name the "
                             "target's peer ports (a client port? docs/multi-region.md)");
        }
        if (rc != HY_EAGAIN) {
            return conn_fail(k, why, cap, "protocol error from the target: %.100s", k->rd.error);
        }
        uint8_t *p = hy_buf_reserve(&k->in, 64 * 1024);
        int n = rconn_recv(&k->c, p, k->in.cap - k->in.len, until_ms);
        if (n <= 0) {
            return conn_fail(k, why, cap, "no reply from the target (%s)",
                             n == 0 ? "timed out" : "connection lost");
        }
        k->in.len += (size_t)n;
    }
}

/* One request (a WAN frame of type `type`) and its answer. 0, or -1 (k dropped) with why
 * filled. */
static int request(struct wan_conn *k, uint8_t type, struct wire_wan *q, struct wan_reply *out,
                   char *why, size_t cap)
{
    q->req_id = ++k->req_ids;
    struct hy_buf b;
    hy_buf_init(&b);
    struct wire_limits l;
    wire_limits_default(&l);
    int rc = wire_encode_wan(&b, type, q, &l);
    if (rc != HY_OK) {
        hy_buf_free(&b);
        snprintf(why, cap, "a request that does not encode (%s)", hy_status_name(rc));
        return -1;
    }
    rc = frame_send(k, &b, why, cap);
    hy_buf_free(&b);
    uint64_t until = rconn_now_ms() + WAN_CALL_MS;
    while (rc == 0) {
        struct wire_frame f;
        if (frame_recv(k, &f, until, why, cap) != 0) {
            return -1;
        }
        if (f.type == WIRE_PONG || f.type == WIRE_PING) {
            continue;
        }
        if (f.type != WIRE_WAN_REPLY || f.wan.req_id != q->req_id) {
            return conn_fail(k, why, cap, "the target sent %s instead of an answer",
                             wire_type_name(f.type));
        }
        out->status = f.wan.status;
        out->value = f.wan.value;
        memcpy(out->text, f.wan.data, f.wan.len);
        out->text[f.wan.len] = '\0';
        k->used_ms = rconn_now_ms();
        return 0;
    }
    return -1;
}

/* The TLS handshake on k's new connection to host:port, whose certificate must name host. 0,
 * or -1 with why filled. */
static int conn_tls(struct wan_conn *k, const char *host, const char *port, char *why, size_t cap)
{
    char err[256] = "";
    if (k->ctx == NULL) {
        k->ctx = io_tls_link_ctx_new(k->tls_ca, k->tls_ca_dir, k->tls_cert, k->tls_key,
                                     k->tls_key_pass, err, sizeof(err));
        if (k->ctx == NULL) {
            snprintf(why, cap, "TLS: %.150s", err); /* why holds 160 */
            return -1;
        }
    }
    int rc = rconn_tls_start(&k->c, k->ctx, host, 1, rconn_now_ms() + WAN_CONNECT_MS);
    if (rc == 0) {
        return 0;
    }
    long v = k->c.ssl != NULL ? SSL_get_verify_result(k->c.ssl) : X509_V_OK;
    snprintf(why, cap, "TLS handshake with %s:%s failed (%s)", host, port,
             v != X509_V_OK ? X509_verify_cert_error_string(v) : "no TLS on that port?");
    return -1;
}

/* Whether job j names other TLS files than k has (its context is then made again). */
static int tls_changed(const struct wan_conn *k, const struct node_wan_job *j)
{
    return k->tls != j->tls || strcmp(k->tls_ca, j->tls_ca) != 0 ||
           strcmp(k->tls_ca_dir, j->tls_ca_dir) != 0 || strcmp(k->tls_cert, j->tls_cert) != 0 ||
           strcmp(k->tls_key, j->tls_key) != 0 || strcmp(k->tls_key_pass, j->tls_key_pass) != 0;
}

static void tls_take(struct wan_conn *k, const struct node_wan_job *j)
{
    SSL_CTX_free(k->ctx);
    k->ctx = NULL;
    k->tls = j->tls;
    snprintf(k->tls_ca, sizeof(k->tls_ca), "%s", j->tls_ca);
    snprintf(k->tls_ca_dir, sizeof(k->tls_ca_dir), "%s", j->tls_ca_dir);
    snprintf(k->tls_cert, sizeof(k->tls_cert), "%s", j->tls_cert);
    snprintf(k->tls_key, sizeof(k->tls_key), "%s", j->tls_key);
    snprintf(k->tls_key_pass, sizeof(k->tls_key_pass), "%s", j->tls_key_pass);
}

/* The WAN link's handshake on k's new connection (io/peer_auth.h): the target proves its
 * cluster secret (the link's), and the link proves it back; the secret never crosses the
 * wire, and a batch never goes to a cluster that does not hold it. 0, or -1 (k dropped) with
 * why filled. */
static int conn_handshake(struct wan_conn *k, const char *addr, char *why, size_t cap)
{
    const char *link =
        wire_name_valid((const uint8_t *)k->link, strlen(k->link)) ? k->link : "link";
    if (!wire_name_valid((const uint8_t *)k->source, strlen(k->source))) {
        return conn_fail(k, why, cap, "this cluster's cluster-name '%.64s' cannot name a link",
                         k->source);
    }
    struct peer_hs_config cfg = {
        k->source, k->source, (const uint8_t *)k->secret, strlen(k->secret), NULL, NULL, 0};
    struct peer_hs hs;
    struct hy_buf out;
    hy_buf_init(&out);
    peer_hs_start_wan(&hs, &cfg, link, &out);
    uint64_t until = rconn_now_ms() + WAN_CONNECT_MS;
    int rc = HY_EAGAIN;
    while (rc == HY_EAGAIN) {
        if (out.len > 0 && frame_send(k, &out, why, cap) != 0) {
            hy_buf_free(&out);
            return -1;
        }
        hy_buf_reset(&out);
        struct wire_frame f;
        if (frame_recv(k, &f, until, why, cap) != 0) {
            hy_buf_free(&out);
            if (strncmp(why, "no reply", 8) == 0) { /* a client port waits for a line */
                snprintf(why, cap,
                         "no answer to the link's handshake from %.40s: --to must name the "
                         "target's peer ports%s",
                         addr, k->tls ? "" : " (TLS peer port? --link-tls)");
            }
            return -1;
        }
        rc = peer_hs_on_frame(&hs, &f, &out);
    }
    if (rc != HY_OK && out.len > 0) { /* our REJECT, so the target logs it too */
        (void)rconn_send(&k->c, out.data, out.len, rconn_now_ms() + WAN_CALL_MS);
    }
    hy_buf_free(&out);
    if (rc != HY_OK && hs.reject_code == WIRE_REJECT_AUTH) {
        /* Either side's proof failed: the secrets differ (why holds 160 bytes). */
        return conn_fail(k, why, cap,
                         "the link's secret is not the target's cluster-secret (%.40s at "
                         "%.40s): refused",
                         hs.target[0] ? hs.target : "?", addr);
    }
    if (rc != HY_OK) {
        return conn_fail(k, why, cap, "%s %.40s: %.90s",
                         hs.refused_by_peer ? "refused by the target" : "refused the target", addr,
                         hs.reason);
    }
    return 0;
}

static int conn_ready(struct io_wan *w, struct wan_conn *k, char *why, size_t cap)
{
    if (k->c.fd >= 0 && k->parts > 0 && rconn_now_ms() - k->used_ms < WAN_IDLE_REDIAL_MS) {
        return 0;
    }
    conn_drop(k);
    char list[513];
    snprintf(list, sizeof(list), "%s", k->targets);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(t, ':');
        if (colon == NULL) {
            continue;
        }
        *colon = '\0';
        int fd = rconn_dial(t, colon + 1, rconn_now_ms() + WAN_CONNECT_MS, NULL);
        if (fd < 0) {
            snprintf(why, cap, "cannot connect to %s:%s (%s)", t, colon + 1, strerror(errno));
            continue;
        }
        k->c.fd = fd;
        k->c.ssl = NULL;
        k->c.wake_fd = w->wake[0];
        char addr[300];
        snprintf(addr, sizeof(addr), "%s:%s", t, colon + 1);
        if (k->tls && conn_tls(k, t, colon + 1, why, cap) != 0) {
            conn_drop(k);
            continue;
        }
        if (conn_handshake(k, addr, why, cap) == 0) {
            break;
        }
    }
    if (k->c.fd < 0) {
        return -1;
    }
    struct wire_wan q = {0};
    struct wan_reply r;
    if (request(k, WIRE_WAN_PARTS, &q, &r, why, cap) != 0) {
        return -1;
    }
    if (r.status != WIRE_WAN_INTEGER || r.value < 1 || r.value > WAN_PARTS_MAX) {
        return conn_fail(k, why, cap, "the target did not say its partition count: %.100s", r.text);
    }
    k->parts = (long)r.value;
    return 0;
}

static struct wan_conn *conn_for(struct io_wan *w, const struct node_wan_job *j)
{
    struct wan_conn *free_slot = NULL;
    for (size_t i = 0; i < WAN_CONNS_MAX; i++) {
        struct wan_conn *k = &w->conns[i];
        if (strcmp(k->link, j->link) == 0) {
            if (strcmp(k->targets, j->targets) != 0 || strcmp(k->secret, j->secret) != 0 ||
                strcmp(k->source, j->source) != 0 || tls_changed(k, j)) {
                conn_drop(k); /* the link was redefined: connect again */
                snprintf(k->targets, sizeof(k->targets), "%s", j->targets);
                snprintf(k->secret, sizeof(k->secret), "%s", j->secret);
                snprintf(k->source, sizeof(k->source), "%s", j->source);
                tls_take(k, j);
            }
            return k;
        }
        if (k->link[0] == '\0' && free_slot == NULL) {
            free_slot = k;
        }
    }
    if (free_slot == NULL) {
        free_slot = &w->conns[0]; /* more links than slots: reuse (links are few) */
        conn_drop(free_slot);
    }
    snprintf(free_slot->link, sizeof(free_slot->link), "%s", j->link);
    snprintf(free_slot->targets, sizeof(free_slot->targets), "%s", j->targets);
    snprintf(free_slot->secret, sizeof(free_slot->secret), "%s", j->secret);
    snprintf(free_slot->source, sizeof(free_slot->source), "%s", j->source);
    tls_take(free_slot, j);
    return free_slot;
}

/* The slot of an encoded change's key (its first argument). */
static int entry_slot(const uint8_t *entry, size_t len, uint16_t *slot)
{
    struct store_entry e;
    if (store_entry_decode(entry, len, &e) != HY_OK) {
        return 0;
    }
    int ok = e.argc > 0;
    if (ok) {
        *slot = hy_key_slot(e.argv[0].ptr, e.argv[0].len);
    }
    store_entry_release(&e);
    return ok;
}

/* This cluster was promoted (docs/wan.md "Region failover"): the target of an active-passive
 * link steps down before it takes the batch, once per connection (the target logs it). Its
 * answer is not looked at: a target promoted later refuses the batch -DEMOTED, and this
 * cluster steps down instead. */
static int tell_promoted(struct io_wan *w, struct wan_conn *k, const struct node_wan_job *j,
                         char *why, size_t cap)
{
    (void)w;
    if (j->tell_epoch == 0 || k->told == j->tell_epoch) {
        return 0;
    }
    struct wire_wan q = {
        .epoch = j->tell_epoch, .data = (const uint8_t *)j->tell_by, .len = strlen(j->tell_by)};
    struct wan_reply r;
    if (request(k, WIRE_WAN_DEMOTE, &q, &r, why, cap) != 0) {
        return -1;
    }
    k->told = j->tell_epoch;
    return 0;
}

/* Sends one batch, split by target partition. 1 applied, 0 not (why says why). */
static int ship(struct io_wan *w, const struct node_wan_job *j, char *why, size_t cap)
{
    struct wan_conn *k = conn_for(w, j);
    if (conn_ready(w, k, why, cap) != 0 || tell_promoted(w, k, j, why, cap) != 0) {
        return 0;
    }
    struct wan_batch_reader r;
    if (wan_batch_open(&r, j->batch.data, j->batch.len) != HY_OK) {
        snprintf(why, cap, "a batch that does not decode (a bug)");
        return 0;
    }
    /* Each target partition's part, in order; parts[tp].count == 0: none. */
    long parts = k->parts;
    struct wan_batch *sub = hy_xcalloc((size_t)parts, sizeof(*sub));
    uint16_t *first_slot = hy_xcalloc((size_t)parts, sizeof(*first_slot));
    uint64_t index;
    const uint8_t *entry;
    size_t len;
    int ok = 1;
    while (ok && wan_batch_next(&r, &index, &entry, &len) == HY_OK) {
        uint16_t slot;
        if (!entry_slot(entry, len, &slot)) {
            continue; /* the engine ships only changes with a key: cannot happen */
        }
        long tp = (long)slot * parts / HY_SLOT_COUNT;
        if (sub[tp].buf.data == NULL && sub[tp].count == 0) {
            wan_batch_init_ext(&sub[tp], r.origin, r.src_partition, SIZE_MAX, UINT32_MAX, r.ext,
                               r.ext_len);
            first_slot[tp] = slot;
        }
        ok = wan_batch_add(&sub[tp], index, entry, len) == HY_OK;
    }
    if (ok && r.clear) {
        /* A resync's first batch has every target partition holding some of the source
         * partition's slots drop what it holds there, even one that gets no key from it. */
        for (long tp = 0; tp < parts; tp++) {
            long lo = (tp * HY_SLOT_COUNT + parts - 1) / parts;
            long hi = ((tp + 1) * HY_SLOT_COUNT + parts - 1) / parts - 1;
            if (hi < r.clear_lo || lo > r.clear_hi || sub[tp].buf.data != NULL) {
                continue;
            }
            wan_batch_init_ext(&sub[tp], r.origin, r.src_partition, SIZE_MAX, UINT32_MAX, r.ext,
                               r.ext_len);
            first_slot[tp] = (uint16_t)(lo > r.clear_lo ? lo : r.clear_lo);
        }
    }
    for (long tp = 0; tp < parts && ok; tp++) {
        if (sub[tp].buf.data == NULL) {
            continue;
        }
        struct wire_wan q = {
            .slot = first_slot[tp], .data = sub[tp].buf.data, .len = sub[tp].buf.len};
        struct wan_reply ans;
        if (request(k, WIRE_WAN_APPLY, &q, &ans, why, cap) != 0) {
            ok = 0;
            break;
        }
        if (ans.status != WIRE_WAN_INTEGER || (uint64_t)ans.value < sub[tp].last_index) {
            snprintf(why, cap, "target partition %ld answered %.100s", tp,
                     ans.status == WIRE_WAN_INTEGER ? "short" : ans.text);
            ok = 0;
            /* A -MOVED or -TRYAGAIN (a failover there) is worth a new connection, whose
             * target may know the new leader. */
            if (ans.status == WIRE_WAN_ERROR) {
                conn_drop(k);
            }
        }
    }
    for (long tp = 0; tp < parts; tp++) {
        if (sub[tp].buf.data != NULL || sub[tp].count > 0) {
            wan_batch_free(&sub[tp]);
        }
    }
    hy_free(sub);
    hy_free(first_slot);
    return ok;
}

static void wan_thread(void *arg)
{
    struct io_wan *w = arg;
    for (size_t i = 0; i < WAN_CONNS_MAX; i++) {
        w->conns[i].c.fd = -1;
        w->conns[i].c.wake_fd = w->wake[0];
        hy_buf_init(&w->conns[i].in);
        wire_reader_init(&w->conns[i].rd, NULL);
    }
    for (;;) {
        uv_mutex_lock(&w->mu);
        while (w->job_count == 0 && !w->stopping) {
            uv_cond_wait(&w->cond, &w->mu);
        }
        if (w->stopping) {
            uv_mutex_unlock(&w->mu);
            break;
        }
        struct node_wan_job job = w->jobs[0];
        memmove(&w->jobs[0], &w->jobs[1], (w->job_count - 1) * sizeof(*w->jobs));
        w->job_count--;
        uv_mutex_unlock(&w->mu);
        struct wan_result res;
        memset(&res, 0, sizeof(res));
        snprintf(res.link, sizeof(res.link), "%s", job.link);
        res.partition = job.partition;
        res.term = job.term;
        res.last_seq = job.last_seq;
        res.entries = job.entries;
        res.resync = job.resync;
        res.ok = ship(w, &job, res.why, sizeof(res.why));
        hy_buf_free(&job.batch);
        uv_mutex_lock(&w->mu);
        if (w->result_count == w->result_cap) {
            w->result_cap = w->result_cap ? 2 * w->result_cap : 8;
            w->results = hy_xrealloc(w->results, w->result_cap * sizeof(*w->results));
        }
        w->results[w->result_count++] = res;
        uv_mutex_unlock(&w->mu);
        uv_async_send(&w->wakeup);
    }
    for (size_t i = 0; i < WAN_CONNS_MAX; i++) {
        conn_drop(&w->conns[i]);
        SSL_CTX_free(w->conns[i].ctx);
        hy_buf_free(&w->conns[i].in);
        wire_reader_free(&w->conns[i].rd);
    }
}

static void wakeup_cb(uv_async_t *h)
{
    struct io_wan *w = h->data;
    io_wan_pump(w, w->node, io_clock_ms());
}

static void wakeup_closed_cb(uv_handle_t *h)
{
    hy_free(h->data);
}

int io_wan_open(uv_loop_t *loop, struct hy_node *node, const struct hy_log *log,
                struct io_wan **out)
{
    struct io_wan *w = hy_xcalloc(1, sizeof(*w));
    w->log = log;
    w->node = node;
    if (pipe(w->wake) != 0) {
        hy_log(log, HY_LOG_ERROR, "WAN links: pipe: %s", strerror(errno));
        hy_free(w);
        *out = NULL;
        return HY_EIO;
    }
    HY_ASSERT(uv_mutex_init(&w->mu) == 0 && uv_cond_init(&w->cond) == 0);
    HY_ASSERT(uv_async_init(loop, &w->wakeup, wakeup_cb) == 0);
    w->wakeup.data = w;
    /* The loop's own liveness must not depend on this handle (a stopping loop ends when
     * its other handles are closed). */
    uv_unref((uv_handle_t *)&w->wakeup);
    HY_ASSERT(uv_thread_create(&w->thread, wan_thread, w) == 0);
    *out = w;
    return HY_OK;
}

void io_wan_pump(struct io_wan *w, struct hy_node *n, uint64_t now_ms)
{
    if (w == NULL) {
        return;
    }
    uv_mutex_lock(&w->mu);
    struct wan_result *results = w->results;
    size_t count = w->result_count;
    w->results = NULL;
    w->result_count = w->result_cap = 0;
    uv_mutex_unlock(&w->mu);
    for (size_t i = 0; i < count; i++) {
        const struct wan_result *r = &results[i];
        node_wan_done(n, r->link, r->partition, r->term, r->last_seq, r->entries, r->resync, r->ok,
                      r->why, now_ms);
    }
    hy_free(results);
    struct node_wan_job *jobs;
    size_t jc = node_wan_take(n, now_ms, &jobs);
    if (jc == 0) {
        return;
    }
    uv_mutex_lock(&w->mu);
    if (w->job_count + jc > w->job_cap) {
        w->job_cap = w->job_count + jc;
        w->jobs = hy_xrealloc(w->jobs, w->job_cap * sizeof(*w->jobs));
    }
    memcpy(&w->jobs[w->job_count], jobs, jc * sizeof(*jobs));
    w->job_count += jc;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
    hy_free(jobs); /* the batches' bytes now belong to the queued copies */
}

void io_wan_close(struct io_wan *w)
{
    if (w == NULL) {
        return;
    }
    uv_mutex_lock(&w->mu);
    w->stopping = 1;
    uv_cond_broadcast(&w->cond);
    uv_mutex_unlock(&w->mu);
    ssize_t wr = write(w->wake[1], "x", 1);
    (void)wr;
    uv_thread_join(&w->thread);
    for (size_t i = 0; i < w->job_count; i++) {
        hy_buf_free(&w->jobs[i].batch);
    }
    hy_free(w->jobs);
    hy_free(w->results);
    close(w->wake[0]);
    close(w->wake[1]);
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->mu);
    /* Freed once the loop has closed the handle. */
    uv_close((uv_handle_t *)&w->wakeup, wakeup_closed_cb);
}
