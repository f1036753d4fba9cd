/*
 * http.c - the HTTP endpoints over libmicrohttpd (http.h).
 */
#include "io/http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/assert.h"

#define IO_HTTP_MEMORY_BYTES (32 * 1024) /* per connection: request line and headers */

struct io_http {
    const struct hy_config *cfg;
    const struct hy_log *log;
    struct MHD_Daemon *daemon;
    uv_mutex_t mu;
    /* Under mu. */
    struct node_observation *latest; /* NULL until the first publish */
    uint64_t published_ns;           /* uv_hrtime() of the publish */
};

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

enum http_route { ROUTE_NONE, ROUTE_HEALTH, ROUTE_READY, ROUTE_LIVE, ROUTE_METRICS };

static enum http_route http_route(const char *url)
{
    static const struct {
        const char *path;
        enum http_route route;
    } routes[] = {{"/health", ROUTE_HEALTH},
                  {"/health/ready", ROUTE_READY},
                  {"/health/live", ROUTE_LIVE},
                  {"/metrics", ROUTE_METRICS}};
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
                         "not found: try /health, /health/ready, /health/live or /metrics\n");
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
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
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    /* The logger first: MHD logs through the default logger until it has seen it. */
    h->daemon = MHD_start_daemon(flags, (uint16_t)cfg->http_port, NULL, NULL, http_request_cb, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, http_log_cb, h, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)IO_HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)IO_HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                 (size_t)IO_HTTP_MEMORY_BYTES, MHD_OPTION_END);
    if (h->daemon == NULL) {
        hy_log(log, HY_LOG_ERROR,
               "http: cannot listen on %s:%lld (port taken? set http-port, "
               "or 0 for no HTTP)",
               cfg->bind, (long long)cfg->http_port);
        uv_mutex_destroy(&h->mu);
        hy_free(h);
        return HY_EIO;
    }
    *out = h;
    return HY_OK;
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

void io_http_close(struct io_http *h)
{
    if (h == NULL) {
        return;
    }
    MHD_stop_daemon(h->daemon); /* joins its thread: no callback runs after this */
    hy_free(h->latest);
    uv_mutex_destroy(&h->mu);
    hy_free(h);
}
