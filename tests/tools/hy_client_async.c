/*
 * hy_client_async.c - drives libhalyard's asynchronous API for the integration tests
 * (tests/integration/test_client_async.py), which kill, stop and restart members meanwhile.
 *
 *   hy_client_async HOST:PORT[,...] MODE KEY N [--window W] [--loop] [--threads T]
 *                   [--max-outstanding M] [--read-from leader|replica|nearest]
 *                   [--hedge-ms MS | --hedge] [--timeout-ms MS] [--no-sessions]
 *                   [--attempt-timeout-ms MS] [--heartbeat-ms INTERVAL,TIMEOUT]
 *                   [--pipeline MAX] [--max-staleness-ms MS] [--expect VALUE]
 *                   [--no-routing] [--warmup-ms MS] [--password PASS]
 *                   [--max-inflight N] [--balancer round-robin|random|least-outstanding]
 *                   [--events]
 *
 * MODE incr: N INCRs of KEY, W outstanding at a time (each callback submits the next).
 * MODE get:  N GETs of KEY the same way; reports read latencies.
 * MODE shed: N INCRs submitted at once, without waiting: the ones beyond --max-outstanding are
 *            refused HALYARD_BUSY at the call; the accepted ones all complete.
 * MODE close: N INCRs submitted at once, then halyard_close at once: every accepted request gets
 *            its callback (CANCELLED if it never ran).
 * --events: prints "event NAME cluster=C member=M" (flushed) for every event the client raises.
 * --no-routing: smart_routing 0. --warmup-ms MS: wait MS after halyard_open before the first
 * request (the heartbeats run meanwhile).
 * --expect VALUE (MODE get): GET answers other than VALUE are counted as `mismatch` (a stale
 * read, for the staleness bound's test).
 * --loop: callbacks on a libuv loop the program owns (halyard_attach_loop), else on the
 * client's I/O threads. Prints "progress K heartbeat_downs=H timeouts=T hedge_wins=W
 * breaker_opens=O" as callbacks arrive, then one line
 * "done submitted=S busy=B callbacks=C ok=.. unknown=.. not_applied=.. timeout=.. error=..
 *  cancelled=.. last=V p50_ms=.. p99_ms=.. max_ms=.. hedges=.. hedge_wins=.. replica_reads=..
 *  shed=.. server_backoffs=.. resends=.. heartbeat_downs=.. breaker_opens=.. pipelined=.."
 * (last: the largest
 * INCR value seen; not_applied counts HALYARD_NOT_APPLIED, HALYARD_NO_QUORUM,
 * HALYARD_QUORUM_RULE and HALYARD_UNREACHABLE, every outcome that is certainly not applied). Exit
 * 0, or 2 on bad arguments, 3 when a callback ran twice or was missing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "halyard.h"

struct run {
    halyard_client *c;
    const char *mode, *key;
    long n, window, submitted, busy, callbacks, progress_at;
    long counts[32]; /* by status */
    long long last;
    const char *expect;
    long mismatch;
    long warmup_ms;
    double *lat_ms;
    struct one *ones; /* one per attempt, kept to the end: a second callback is caught */
    long slots, slots_max;
    int use_loop;
    uv_loop_t loop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

struct one {
    struct run *r;
    double t0;
    int seen;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void submit_one(struct run *r);

/* --events: the client's listener (called on any of its threads, never under its locks). */
static void print_event(void *ctx, halyard_event ev, const char *cluster, const char *member)
{
    (void)ctx;
    printf("event %s cluster=%s member=%s\n", halyard_event_str(ev), cluster ? cluster : "",
           member ? member : "");
    fflush(stdout);
}

static void done_cb(void *ctx, halyard_status st, halyard_reply *reply)
{
    struct one *o = ctx;
    struct run *r = o->r;
    double ms = now_ms() - o->t0;
    pthread_mutex_lock(&r->lock);
    if (o->seen++) {
        printf("error: a callback ran twice\n");
        fflush(stdout);
        exit(3);
    }
    r->counts[st]++;
    if (r->lat_ms != NULL && st == HALYARD_OK) {
        r->lat_ms[r->counts[HALYARD_OK] - 1] = ms;
    }
    if (st == HALYARD_OK && r->expect != NULL &&
        (reply->type != HALYARD_REPLY_STRING || strcmp(reply->str, r->expect) != 0)) {
        r->mismatch++;
    }
    if (st == HALYARD_OK && reply->type == HALYARD_REPLY_INTEGER && reply->integer > r->last) {
        r->last = reply->integer;
    } else if (st != HALYARD_OK && st != HALYARD_CANCELLED && st != HALYARD_BUSY) {
        printf("status %s: %s\n", halyard_status_str(st), reply && reply->str ? reply->str : "");
    }
    long done = ++r->callbacks;
    if (done >= r->progress_at) {
        halyard_stats now;
        halyard_get_stats(r->c, &now);
        printf("progress %ld heartbeat_downs=%llu timeouts=%ld hedge_wins=%llu "
               "breaker_opens=%llu\n",
               done, (unsigned long long)now.heartbeat_downs, r->counts[HALYARD_TIMEOUT],
               (unsigned long long)now.hedge_wins, (unsigned long long)now.breaker_opens);
        fflush(stdout);
        r->progress_at += 50;
    }
    int more = (strcmp(r->mode, "incr") == 0 || strcmp(r->mode, "get") == 0) && r->submitted < r->n;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    halyard_reply_free(reply);
    if (more) {
        submit_one(r);
    }
    if (r->use_loop && done == (strcmp(r->mode, "shed") == 0 ? r->submitted : r->n)) {
        uv_stop(&r->loop);
    }
}

static void submit_one(struct run *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->submitted >= r->n) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    if (r->slots == r->slots_max) {
        printf("error: too many refused submissions\n");
        exit(2);
    }
    r->submitted++;
    struct one *o = &r->ones[r->slots++];
    pthread_mutex_unlock(&r->lock);
    o->r = r;
    o->t0 = now_ms();
    const char *argv[] = {strcmp(r->mode, "get") == 0 ? "GET" : "INCR", r->key};
    halyard_status st = halyard_command_async(r->c, 2, argv, NULL, done_cb, o);
    if (st != HALYARD_OK) {
        pthread_mutex_lock(&r->lock);
        r->submitted--;
        r->n--; /* not accepted: no callback will come */
        r->busy += st == HALYARD_BUSY;
        pthread_mutex_unlock(&r->lock);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int parse_args(int argc, char **argv, halyard_config *cfg, struct run *r)
{
    for (int i = 5; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--loop") == 0) {
            r->use_loop = 1;
        } else if (strcmp(a, "--no-sessions") == 0) {
            cfg->sessions = 0;
        } else if (strcmp(a, "--hedge") == 0) {
            cfg->hedge_reads = 1;
        } else if (strcmp(a, "--events") == 0) {
            cfg->on_event = print_event;
        } else if (strcmp(a, "--no-routing") == 0) {
            cfg->smart_routing = 0;
        } else if (v == NULL) {
            return -1;
        } else if (strcmp(a, "--window") == 0) {
            r->window = atol(v), i++;
        } else if (strcmp(a, "--pipeline") == 0) {
            cfg->pipeline_max = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--threads") == 0) {
            cfg->async_threads = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--max-outstanding") == 0) {
            cfg->max_outstanding = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            cfg->request_timeout_ms = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--attempt-timeout-ms") == 0) {
            cfg->attempt_timeout_ms = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--heartbeat-ms") == 0) { /* INTERVAL,TIMEOUT */
            cfg->heartbeat_interval_ms = (uint32_t)atoi(v);
            const char *comma = strchr(v, ',');
            cfg->heartbeat_timeout_ms = comma ? (uint32_t)atoi(comma + 1) : 2000;
            i++;
        } else if (strcmp(a, "--hedge-ms") == 0) {
            cfg->hedge_reads = 1;
            cfg->hedge_after_ms = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--max-inflight") == 0) {
            cfg->max_inflight_per_member = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--balancer") == 0) {
            cfg->load_balancer = strcmp(v, "random") == 0 ? HALYARD_LB_RANDOM
                                 : strcmp(v, "least-outstanding") == 0
                                     ? HALYARD_LB_LEAST_OUTSTANDING
                                     : HALYARD_LB_ROUND_ROBIN;
            i++;
        } else if (strcmp(a, "--max-staleness-ms") == 0) {
            cfg->max_staleness_ms = (uint32_t)atoi(v), i++;
        } else if (strcmp(a, "--password") == 0) {
            cfg->password = v, i++;
        } else if (strcmp(a, "--warmup-ms") == 0) {
            r->warmup_ms = atol(v), i++;
        } else if (strcmp(a, "--expect") == 0) {
            r->expect = v, i++;
        } else if (strcmp(a, "--read-from") == 0) {
            cfg->read_from = strcmp(v, "replica") == 0   ? HALYARD_READ_REPLICA
                             : strcmp(v, "nearest") == 0 ? HALYARD_READ_NEAREST
                                                         : HALYARD_READ_LEADER;
            i++;
        } else {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST:PORT[,...] incr|get|shed|close KEY N [options]\n", argv[0]);
        return 2;
    }
    const char *addrs[64];
    size_t n_addrs = 0;
    for (char *tok = strtok(argv[1], ","); tok != NULL && n_addrs < 64; tok = strtok(NULL, ",")) {
        addrs[n_addrs++] = tok;
    }
    static struct run r;
    r.mode = argv[2];
    r.key = argv[3];
    r.n = atol(argv[4]);
    r.window = 64;
    r.progress_at = 50;
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    halyard_config cfg;
    halyard_config_init(&cfg);
    cfg.addrs = addrs;
    cfg.n_addrs = n_addrs;
    if (parse_args(argc, argv, &cfg, &r) != 0 || r.n < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    char err[200];
    r.c = halyard_open(&cfg, err, sizeof(err));
    if (r.c == NULL) {
        fprintf(stderr, "halyard_open: %s\n", err);
        return 2;
    }
    long total = r.n;
    r.lat_ms = calloc((size_t)total, sizeof(double));
    r.slots_max = 2 * total;
    r.ones = calloc((size_t)r.slots_max, sizeof(struct one));
    if (r.use_loop) {
        uv_loop_init(&r.loop);
        if (halyard_attach_loop(r.c, &r.loop) != 0) {
            fprintf(stderr, "halyard_attach_loop failed\n");
            return 2;
        }
    }
    if (r.warmup_ms > 0) {
        struct timespec ts = {r.warmup_ms / 1000, (r.warmup_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    int burst = strcmp(r.mode, "shed") == 0 || strcmp(r.mode, "close") == 0;
    long first = burst ? total : (r.window < total ? r.window : total);
    for (long i = 0; i < first; i++) {
        submit_one(&r);
    }
    if (strcmp(r.mode, "close") == 0) {
        halyard_close(r.c); /* every accepted request's callback has run when it returns */
        r.c = NULL;
    } else if (r.use_loop) {
        if (r.callbacks < r.n) {
            uv_run(&r.loop, UV_RUN_DEFAULT);
        }
    } else {
        pthread_mutex_lock(&r.lock);
        while (r.callbacks < r.n) {
            pthread_cond_wait(&r.cond, &r.lock);
        }
        pthread_mutex_unlock(&r.lock);
    }
    halyard_stats st = {0};
    if (r.c != NULL) {
        halyard_get_stats(r.c, &st);
        halyard_close(r.c);
    }
    if (r.use_loop) {
        uv_run(&r.loop, UV_RUN_NOWAIT); /* the client's handle closes */
        uv_loop_close(&r.loop);
    }
    long ok = r.counts[HALYARD_OK];
    qsort(r.lat_ms, (size_t)ok, sizeof(double), cmp_double);
    double p50 = ok ? r.lat_ms[ok / 2] : 0, p99 = ok ? r.lat_ms[(ok * 99) / 100] : 0,
           mx = ok ? r.lat_ms[ok - 1] : 0;
    printf("done submitted=%ld busy=%ld callbacks=%ld ok=%ld unknown=%ld not_applied=%ld "
           "timeout=%ld error=%ld cancelled=%ld last=%lld p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
           "hedges=%llu hedge_wins=%llu replica_reads=%llu shed=%llu server_backoffs=%llu "
           "resends=%llu heartbeat_downs=%llu breaker_opens=%llu pipelined=%llu mismatch=%ld "
           "busy_outcomes=%ld member_sheds=%llu\n",
           r.submitted, r.busy, r.callbacks, ok, r.counts[HALYARD_UNKNOWN],
           r.counts[HALYARD_NOT_APPLIED] + r.counts[HALYARD_NO_QUORUM] +
               r.counts[HALYARD_QUORUM_RULE] + r.counts[HALYARD_UNREACHABLE],
           r.counts[HALYARD_TIMEOUT], r.counts[HALYARD_REPLY_ERROR], r.counts[HALYARD_CANCELLED],
           r.last, p50, p99, mx, (unsigned long long)st.hedges, (unsigned long long)st.hedge_wins,
           (unsigned long long)st.replica_reads, (unsigned long long)st.shed,
           (unsigned long long)st.server_backoffs, (unsigned long long)st.resends,
           (unsigned long long)st.heartbeat_downs, (unsigned long long)st.breaker_opens,
           (unsigned long long)st.pipelined, r.mismatch, r.counts[HALYARD_BUSY],
           (unsigned long long)st.member_sheds);
    free(r.lat_ms);
    free(r.ones);
    return r.callbacks == r.submitted ? 0 : 3;
}
