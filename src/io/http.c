/*
 * http.c - the HTTP endpoints over libmicrohttpd (http.h).
 */
#include "io/http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"

#define IO_HTTP_MEMORY_BYTES  (32 * 1024)   /* per connection: request line and headers */
#define IO_HTTP_PEM_BYTES_MAX (1024 * 1024) /* a certificate chain or key file */

struct io_http {
    const struct hy_config *cfg;
    const struct hy_log *log;
    struct MHD_Daemon *daemon;
    uv_mutex_t mu;
    uv_cond_t events_cond; /* signalled when events arrive or streams must end */
    /* Under mu. */
    struct node_observation *latest; /* NULL until the first publish */
    uint64_t published_ns;           /* uv_hrtime() of the publish */
    /* /events: copies of the node's last IO_HTTP_EVENTS events (ids up to events_last), the
     * open streams, and the daemon generation they belong to (a reload or close ends the
     * streams of the daemon it stops). */
    char (*events)[IO_HTTP_EVENT_BYTES];
    uint64_t events_last;
    unsigned streams;
    uint64_t generation;
};

static enum MHD_Result http_text(struct MHD_Connection *conn, unsigned status, const char *text);

/* One /events stream: the next event id to send. */
struct http_stream {
    struct io_http *h;
    uint64_t next;
    uint64_t generation;
};

/* Server-Sent Events: "id", "event" (the type) and "data" (the JSON) per event; a comment
 * every few seconds keeps an idle stream (and proxies on the way) alive. Blocks (its own
 * thread: the daemon runs a thread per connection) until there is something to send. */
static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct http_stream *st = cls;
    struct io_http *h = st->h;
    ssize_t out = 0;
    uv_mutex_lock(&h->mu);
    if (st->next > h->events_last && st->generation == h->generation) {
        /* Nothing to send: wait for an event, the end, or the keep-alive's time. */
        (void)uv_cond_timedwait(&h->events_cond, &h->mu,
                                (uint64_t)IO_HTTP_KEEPALIVE_S * 1000000000u);
    }
    if (st->generation != h->generation) {
        uv_mutex_unlock(&h->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    uint64_t oldest = h->events_last >= IO_HTTP_EVENTS ? h->events_last - IO_HTTP_EVENTS + 1 : 1;
    if (st->next < oldest) {
        st->next = oldest; /* fell behind: the ids show the gap */
    }
    while (st->next <= h->events_last) {
        const char *json = h->events[st->next % IO_HTTP_EVENTS];
        const char *t = strstr(json, "\"type\":\"");
        const char *te = t ? strchr(t + 8, '"') : NULL;
        int n = snprintf(buf + out, max - (size_t)out, "id: %llu\nevent: %.*s\ndata: %s\n\n",
                         (unsigned long long)st->next, te ? (int)(te - t - 8) : 0, te ? t + 8 : "",
                         json);
        if (n < 0 || (size_t)n >= max - (size_t)out) {
            break; /* the rest next time */
        }
        out += n;
        st->next++;
    }
    uv_mutex_unlock(&h->mu);
    if (out == 0) {
        out = snprintf(buf, max, ": keepalive\n\n");
    }
    return out;
}

static void http_stream_free(void *cls)
{
    struct http_stream *st = cls;
    uv_mutex_lock(&st->h->mu);
    st->h->streams--;
    uv_mutex_unlock(&st->h->mu);
    hy_free(st);
}

/* GET /events[?since=ID] (or a Last-Event-ID header): the events after that id, then every new
 * one as it comes; without either, only the new ones. */
static enum MHD_Result http_events(struct io_http *h, struct MHD_Connection *conn)
{
    const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    if (since == NULL) {
        since = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    }
    struct http_stream *st = hy_xcalloc(1, sizeof(*st));
    st->h = h;
    uv_mutex_lock(&h->mu);
    if (h->streams >= IO_HTTP_STREAMS_MAX) {
        uv_mutex_unlock(&h->mu);
        hy_free(st);
        return http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                         "too many /events streams open; try again later\n");
    }
    h->streams++;
    st->generation = h->generation;
    st->next = since != NULL ? strtoull(since, NULL, 10) + 1 : h->events_last + 1;
    uv_mutex_unlock(&h->mu);
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, IO_HTTP_STREAM_CHUNK, http_stream_read, st, http_stream_free);
    if (r == NULL) {
        http_stream_free(st);
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* Ends the streams of the daemon about to stop (MHD_stop_daemon joins their threads). */
static void http_end_streams(struct io_http *h)
{
    uv_mutex_lock(&h->mu);
    h->generation++;
    uv_cond_broadcast(&h->events_cond);
    uv_mutex_unlock(&h->mu);
}

/* A copy of the latest snapshot and its age in ms, or NULL when none was published yet. */
static struct node_observation *http_snapshot(struct io_http *h, uint64_t *age_ms_out)
{
    struct node_observation *copy = NULL;
    uv_mutex_lock(&h->mu);
    if (h->latest != NULL) {
        copy = hy_xmalloc(sizeof(*copy));
        memcpy(copy, h->latest, sizeof(*copy));
        *age_ms_out = (uv_hrtime() - h->published_ns) / 1000000;
    }
    uv_mutex_unlock(&h->mu);
    return copy;
}

static uint64_t http_stale_ms(const struct io_http *h)
{
    uint64_t ticks = (uint64_t)IO_HTTP_STALE_TICKS * 1000 / (uint64_t)h->cfg->hz;
    return HY_MAX(ticks, (uint64_t)IO_HTTP_STALE_MS_MIN);
}

/* Queues the response; body is copied by MHD. */
static enum MHD_Result http_reply(struct MHD_Connection *conn, unsigned status,
                                  const char *content_type, const void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result http_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return http_reply(conn, status, "text/plain; charset=utf-8", text, strlen(text));
}

enum http_route { ROUTE_NONE, ROUTE_HEALTH, ROUTE_READY, ROUTE_LIVE, ROUTE_METRICS, ROUTE_EVENTS };

static enum http_route http_route(const char *url)
{
    static const struct {
        const char *path;
        enum http_route route;
    } routes[] = {{"/health", ROUTE_HEALTH},
                  {"/health/ready", ROUTE_READY},
                  {"/health/live", ROUTE_LIVE},
                  {"/metrics", ROUTE_METRICS},
                  {"/events", ROUTE_EVENTS}};
    for (size_t i = 0; i < HY_ARRAY_LEN(routes); i++) {
        if (strcmp(url, routes[i].path) == 0) {
            return routes[i].route;
        }
    }
    return ROUTE_NONE;
}

/* Renders the route from snapshot o (age_ms old) and queues the reply. */
static enum MHD_Result http_serve(struct io_http *h, struct MHD_Connection *conn,
                                  enum http_route route, const struct node_observation *o,
                                  uint64_t age_ms)
{
    char line[256];
    if (route == ROUTE_LIVE) {
        if (age_ms > http_stale_ms(h)) {
            snprintf(line, sizeof(line), "not live: the event loop last reported %llu ms ago\n",
                     (unsigned long long)age_ms);
            return http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, line);
        }
        return http_text(conn, MHD_HTTP_OK, "live\n");
    }
    if (route == ROUTE_READY) {
        char reason[200];
        int ready = observe_ready(o, reason, sizeof(reason));
        if (ready && age_ms > http_stale_ms(h)) {
            ready = 0;
            snprintf(reason, sizeof(reason), "not live: the event loop last reported %llu ms ago",
                     (unsigned long long)age_ms);
        }
        snprintf(line, sizeof(line), "%s\n", reason);
        return http_text(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, line);
    }
    struct hy_buf b;
    hy_buf_init(&b);
    const char *type = "application/json";
    if (route == ROUTE_HEALTH) {
        observe_health_json(o, &b);
    } else {
        observe_metrics(o, &b);
        type = "text/plain; version=0.0.4; charset=utf-8";
    }
    enum MHD_Result rc = http_reply(conn, MHD_HTTP_OK, type, b.data, b.len);
    hy_buf_free(&b);
    return rc;
}

static enum MHD_Result http_request_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    struct io_http *h = cls;
    enum http_route route = http_route(url);
    if (route == ROUTE_NONE) {
        return http_text(conn, MHD_HTTP_NOT_FOUND,
                         "not found: try /health, /health/ready, /health/live, /metrics or "
                         "/events\n");
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
    }
    if (route == ROUTE_EVENTS) {
        return http_events(h, conn);
    }
    uint64_t age_ms = 0;
    struct node_observation *o = http_snapshot(h, &age_ms);
    if (o == NULL) {
        return http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n");
    }
    enum MHD_Result rc = http_serve(h, conn, route, o, age_ms);
    hy_free(o);
    return rc;
}

static void http_log_cb(void *cls, const char *fmt, va_list ap)
{
    const struct io_http *h = cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) {
        text[--len] = '\0';
    }
    hy_log(h->log, HY_LOG_WARN, "http: %s", text);
}

/* The listening address: cfg->bind as IPv4, else as IPv6 (as the client port). */
static int http_address(const struct hy_config *cfg, struct sockaddr_storage *ss, int *ipv6_out)
{
    memset(ss, 0, sizeof(*ss));
    *ipv6_out = 0;
    if (uv_ip4_addr(cfg->bind, (int)cfg->http_port, (struct sockaddr_in *)ss) == 0) {
        return 0;
    }
    *ipv6_out = 1;
    return uv_ip6_addr(cfg->bind, (int)cfg->http_port, (struct sockaddr_in6 *)ss);
}

/* Reads a whole (small) PEM file into a NUL-terminated buffer; NULL with the reason in err. */
static char *http_read_pem(const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "cannot read %s", path);
        return NULL;
    }
    struct hy_buf b;
    hy_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < IO_HTTP_PEM_BYTES_MAX) {
        hy_buf_append(&b, chunk, n);
    }
    fclose(f);
    hy_buf_append(&b, "", 1);
    return (char *)b.data; /* owned by the caller: hy_free */
}

/* GnuTLS's priority string for tls-protocols: TLS 1.2 and/or 1.3, never older. */
static void http_priorities(const struct hy_config *cfg, char *out, size_t cap)
{
    int v12 = strstr(cfg->tls_protocols, "TLSv1.2") != NULL;
    int v13 = strstr(cfg->tls_protocols, "TLSv1.3") != NULL;
    if (!v12 && !v13) {
        v12 = v13 = 1;
    }
    snprintf(out, cap, "NORMAL:-VERS-ALL%s%s", v13 ? ":+VERS-TLS1.3" : "",
             v12 ? ":+VERS-TLS1.2" : "");
}

/* Starts one daemon for h on cfg's port: clear text, or TLS (tls-http yes) with cfg's
 * certificate and key read now. NULL with the reason in err. */
static struct MHD_Daemon *http_daemon_start(struct io_http *h, const struct hy_config *cfg,
                                            const struct sockaddr_storage *ss, int ipv6, char *err,
                                            size_t cap)
{
    /* A thread per connection: an /events stream waits in its own thread (IO_HTTP_CONNECTIONS_MAX
     * bounds them, IO_HTTP_STREAMS_MAX the streams among them). */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    char *cert = NULL, *key = NULL, prio[96];
    struct MHD_OptionItem tls_opts[6];
    size_t k = 0;
    if (cfg->tls_http) {
        cert = http_read_pem(cfg->tls_cert_file, err, cap);
        key = cert ? http_read_pem(cfg->tls_key_file, err, cap) : NULL;
        if (key == NULL) {
            hy_free(cert);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        http_priorities(cfg, prio, sizeof(prio));
        tls_opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        tls_opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
        tls_opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, prio};
        if (cfg->tls_key_file_pass[0] != '\0') {
            tls_opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_KEY_PASSWORD, 0,
                                                    (void *)(uintptr_t)cfg->tls_key_file_pass};
        }
        /* SO_REUSEPORT: a reload starts the new daemon before the old one stops. */
        tls_opts[k++] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
    }
    tls_opts[k] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    /* The logger first: MHD logs through the default logger until it has seen it. */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->http_port, NULL, NULL, http_request_cb, h, MHD_OPTION_EXTERNAL_LOGGER,
        http_log_cb, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)IO_HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IO_HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)IO_HTTP_MEMORY_BYTES, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    /* MHD copies the certificate and key into GnuTLS at start. */
    hy_free(cert);
    hy_free(key);
    if (d == NULL) {
        snprintf(err, cap,
                 cfg->tls_http ? "cannot start HTTPS on %s:%lld: port taken, or a certificate "
                                 "or key (or its passphrase) that does not load"
                               : "cannot listen on %s:%lld (port taken? set http-port, or 0 "
                                 "for no HTTP)",
                 cfg->bind, (long long)cfg->http_port);
    }
    return d;
}

int io_http_open(const struct hy_config *cfg, const struct hy_log *log, struct io_http **out)
{
    *out = NULL;
    if (cfg->http_port == 0) {
        return HY_OK;
    }
    struct sockaddr_storage ss;
    int ipv6 = 0;
    if (http_address(cfg, &ss, &ipv6) != 0) {
        hy_log(log, HY_LOG_ERROR, "http: cannot listen on %s:%lld: not an IP address", cfg->bind,
               (long long)cfg->http_port);
        return HY_EIO;
    }
    struct io_http *h = hy_xcalloc(1, sizeof(*h));
    h->cfg = cfg;
    h->log = log;
    HY_ASSERT(uv_mutex_init(&h->mu) == 0);
    HY_ASSERT(uv_cond_init(&h->events_cond) == 0);
    h->events = hy_xcalloc(IO_HTTP_EVENTS, sizeof(*h->events));
    char err[300];
    h->daemon = http_daemon_start(h, cfg, &ss, ipv6, err, sizeof(err));
    if (h->daemon == NULL) {
        hy_log(log, HY_LOG_ERROR, "http: %s", err);
        uv_cond_destroy(&h->events_cond);
        uv_mutex_destroy(&h->mu);
        hy_free(h->events);
        hy_free(h);
        return HY_EIO;
    }
    *out = h;
    return HY_OK;
}

int io_http_reload(struct io_http *h, const struct hy_config *cfg, char *err, size_t cap)
{
    if (h == NULL || !h->cfg->tls_http) {
        return 0;
    }
    struct sockaddr_storage ss;
    int ipv6 = 0;
    HY_ASSERT(http_address(h->cfg, &ss, &ipv6) == 0); /* it did when the daemon started */
    struct MHD_Daemon *fresh = http_daemon_start(h, cfg, &ss, ipv6, err, cap);
    if (fresh == NULL) {
        return -1; /* the old daemon and its certificate stay */
    }
    struct MHD_Daemon *old = h->daemon;
    h->daemon = fresh;
    MHD_socket s = MHD_quiesce_daemon(old); /* accepts no more; then goes */
    (void)s;
    http_end_streams(h); /* its streams end (clients reconnect with Last-Event-ID) */
    MHD_stop_daemon(old);
    return 0;
}

void io_http_publish(struct io_http *h, const struct node_observation *o)
{
    if (h == NULL) {
        return;
    }
    uv_mutex_lock(&h->mu);
    if (h->latest == NULL) {
        h->latest = hy_xmalloc(sizeof(*h->latest));
    }
    memcpy(h->latest, o, sizeof(*o));
    h->published_ns = uv_hrtime();
    uv_mutex_unlock(&h->mu);
}

void io_http_event(struct io_http *h, uint64_t id, const char *json)
{
    if (h == NULL) {
        return;
    }
    uv_mutex_lock(&h->mu);
    snprintf(h->events[id % IO_HTTP_EVENTS], IO_HTTP_EVENT_BYTES, "%s", json);
    h->events_last = id;
    uv_cond_broadcast(&h->events_cond);
    uv_mutex_unlock(&h->mu);
}

uint64_t io_http_events_last(struct io_http *h)
{
    if (h == NULL) {
        return UINT64_MAX;
    }
    uv_mutex_lock(&h->mu);
    uint64_t last = h->events_last;
    uv_mutex_unlock(&h->mu);
    return last;
}

void io_http_close(struct io_http *h)
{
    if (h == NULL) {
        return;
    }
    http_end_streams(h);
    MHD_stop_daemon(h->daemon); /* joins its threads: no callback runs after this */
    hy_free(h->latest);
    hy_free(h->events);
    uv_cond_destroy(&h->events_cond);
    uv_mutex_destroy(&h->mu);
    hy_free(h);
}
