/*
 * alerts.c - webhook alerts (alerts.h): cluster events POSTed as JSON to configured URLs by a
 * thread of their own with libcurl, so the event loop never waits for a receiver.
 */
#include "io/alerts.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/assert.h"

#define ALERTS_QUEUE_MAX  256  /* alerts waiting; beyond, the oldest is dropped */
#define ALERTS_BYTES      512  /* one event's JSON */
#define ALERTS_TRIES      4    /* attempts per alert and URL */
#define ALERTS_BACKOFF_MS 250  /* before the second attempt; doubles */
#define ALERTS_TIMEOUT_MS 5000 /* one attempt */
#define ALERTS_URLS_MAX   8
#define ALERTS_URL_BYTES  512

struct io_alerts {
    const struct hy_log *log;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    /* Under mu. */
    char queue[ALERTS_QUEUE_MAX][ALERTS_BYTES];
    size_t head, count;
    int stopping;
    struct io_alerts_stats stats;
    /* Set at open. */
    uint32_t rate_max;
    uint64_t window_ms;
    /* The thread's own. */
    char urls[ALERTS_URLS_MAX][ALERTS_URL_BYTES];
    size_t n_urls;
    uint64_t window_start_ms[ALERTS_URLS_MAX];
    uint32_t in_window[ALERTS_URLS_MAX];
};

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

static size_t discard_body(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* One POST; 1 when the receiver answered 2xx. */
static int post(CURL *curl, const char *url, const char *json, char *why, size_t cap)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)ALERTS_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "halyard-alerts");
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(why, cap, "%s", curl_easy_strerror(rc));
        return 0;
    }
    if (status < 200 || status > 299) {
        snprintf(why, cap, "HTTP %ld", status);
        return 0;
    }
    return 1;
}

/* Sleeps ms, or less when told to stop. 1 when stopping. The condition variable is also
 * signalled for every alert queued (and may wake spuriously): the wait goes on until the
 * deadline, or a flood of alerts would cut every backoff short. */
static int nap(struct io_alerts *a, uint64_t ms)
{
    uint64_t until = mono_ms() + ms;
    uv_mutex_lock(&a->mu);
    for (uint64_t now = mono_ms(); !a->stopping && now < until; now = mono_ms()) {
        (void)uv_cond_timedwait(&a->cond, &a->mu, (until - now) * 1000000u);
    }
    int stop = a->stopping;
    uv_mutex_unlock(&a->mu);
    return stop;
}

/* Adds to one of the counts (under mu: io_alerts_stats reads them from the loop). */
static void count(struct io_alerts *a, uint64_t *field, uint64_t by)
{
    uv_mutex_lock(&a->mu);
    *field += by;
    uv_mutex_unlock(&a->mu);
}

static void deliver(struct io_alerts *a, CURL *curl, const char *json)
{
    for (size_t u = 0; u < a->n_urls; u++) {
        uint64_t now = mono_ms();
        if (now >= a->window_start_ms[u] + a->window_ms) {
            a->window_start_ms[u] = now;
            a->in_window[u] = 0;
        }
        if (a->in_window[u] >= a->rate_max) {
            if (a->in_window[u]++ == a->rate_max) {
                hy_log(a->log, HY_LOG_WARN,
                       "alerts: over %u in %llu ms to %s; dropping until the window ends",
                       a->rate_max, (unsigned long long)a->window_ms, a->urls[u]);
            }
            count(a, &a->stats.rate_limited, 1);
            continue;
        }
        a->in_window[u]++;
        char why[200] = "";
        uint64_t wait = ALERTS_BACKOFF_MS;
        int ok = 0;
        for (int t = 0; t < ALERTS_TRIES && !ok; t++) {
            if (t > 0 && nap(a, wait)) {
                break; /* stopping: what is left is lost, as the process goes */
            }
            if (t > 0) {
                count(a, &a->stats.retries, 1);
            }
            ok = post(curl, a->urls[u], json, why, sizeof(why));
            wait *= 2;
        }
        count(a, ok ? &a->stats.sent : &a->stats.failed, 1);
        if (!ok) {
            hy_log(a->log, HY_LOG_WARN, "alerts: %s did not take an alert after %d tries: %s",
                   a->urls[u], ALERTS_TRIES, why);
        }
    }
}

static void alerts_thread(void *arg)
{
    struct io_alerts *a = arg;
    CURL *curl = curl_easy_init();
    HY_ASSERT(curl != NULL);
    char json[ALERTS_BYTES];
    for (;;) {
        uv_mutex_lock(&a->mu);
        while (a->count == 0 && !a->stopping) {
            uv_cond_wait(&a->cond, &a->mu);
        }
        if (a->count == 0) { /* stopping, nothing left */
            uv_mutex_unlock(&a->mu);
            break;
        }
        memcpy(json, a->queue[a->head], sizeof(json));
        a->head = (a->head + 1) % ALERTS_QUEUE_MAX;
        a->count--;
        int stopping = a->stopping;
        uv_mutex_unlock(&a->mu);
        if (stopping) {
            break; /* the process is going: alerts not sent yet are dropped */
        }
        deliver(a, curl, json);
    }
    curl_easy_cleanup(curl);
}

int io_alerts_open(const char *urls, uint32_t rate_max, uint64_t window_ms,
                   const struct hy_log *log, struct io_alerts **out)
{
    *out = NULL;
    if (urls == NULL || urls[0] == '\0') {
        return HY_OK;
    }
    HY_ASSERT(rate_max > 0 && window_ms > 0);
    struct io_alerts *a = hy_xcalloc(1, sizeof(*a));
    a->log = log;
    a->rate_max = rate_max;
    a->window_ms = window_ms;
    const char *p = urls;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            if (a->n_urls == ALERTS_URLS_MAX || len >= ALERTS_URL_BYTES ||
                (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0)) {
                hy_log(log, HY_LOG_ERROR,
                       "alert-webhooks: at most %d http:// or https:// URLs, comma-separated "
                       "(got \"%.*s\")",
                       ALERTS_URLS_MAX, (int)len, p);
                hy_free(a);
                return HY_ECONFIG;
            }
            memcpy(a->urls[a->n_urls++], p, len);
        }
        p = end ? end + 1 : p + len;
    }
    HY_ASSERT(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    HY_ASSERT(uv_mutex_init(&a->mu) == 0 && uv_cond_init(&a->cond) == 0);
    HY_ASSERT(uv_thread_create(&a->thread, alerts_thread, a) == 0);
    hy_log(log, HY_LOG_INFO, "alerts: %zu webhook URLs", a->n_urls);
    *out = a;
    return HY_OK;
}

void io_alerts_push(struct io_alerts *a, const char *json)
{
    if (a == NULL) {
        return;
    }
    uv_mutex_lock(&a->mu);
    if (a->count == ALERTS_QUEUE_MAX) {
        a->head = (a->head + 1) % ALERTS_QUEUE_MAX; /* the oldest goes */
        a->count--;
        a->stats.queue_full++;
    }
    snprintf(a->queue[(a->head + a->count) % ALERTS_QUEUE_MAX], ALERTS_BYTES, "%s", json);
    a->count++;
    uv_cond_signal(&a->cond);
    uv_mutex_unlock(&a->mu);
}

void io_alerts_stats(struct io_alerts *a, struct io_alerts_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (a != NULL) {
        uv_mutex_lock(&a->mu);
        *out = a->stats;
        uv_mutex_unlock(&a->mu);
    }
}

int io_alerts_wanted(const char *json)
{
    static const char *const types[] = {"\"QUORUM_LOST\"",      "\"QUORUM_REGAINED\"",
                                        "\"MEMBER_FAILED\"",    "\"DISK_FULL\"",
                                        "\"FOLLOWER_LAGGING\"", "\"ALERT_TEST\""};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strstr(json, types[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

void io_alerts_close(struct io_alerts *a)
{
    if (a == NULL) {
        return;
    }
    uv_mutex_lock(&a->mu);
    a->stopping = 1;
    uv_cond_broadcast(&a->cond);
    uv_mutex_unlock(&a->mu);
    uv_thread_join(&a->thread);
    uv_cond_destroy(&a->cond);
    uv_mutex_destroy(&a->mu);
    curl_global_cleanup();
    hy_free(a);
}
