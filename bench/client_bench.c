/*
 * client_bench.c - libhalyard's blocking API against hiredis, same server, same operations
 * (make bench-client; issue 15). Each thread has its own connection (a hiredis context, or a
 * libhalyard client) and runs its share of the operations one at a time.
 *
 *   client_bench libhalyard|hiredis PORT SET|GET THREADS OPS
 *   client_bench libhalyard-async|hiredis-async PORT SET|GET WINDOW OPS
 *   client_bench paired PORT SET|GET 1 OPS
 *
 * The async pair keeps WINDOW requests outstanding from one libuv loop the program owns:
 * hiredis's async context (one connection, its libuv adapter) against halyard_command_async
 * with its callbacks on the same kind of loop (halyard_attach_loop; the library's default 4
 * I/O threads, each with its connection); every callback sends the next request.
 *
 * Prints one line: "<lib> <op> threads=T ops=N ops_per_s=X cpu_us_per_op=Y setup_ms=S", where
 * the CPU time is the benchmark process's own (user + system, getrusage): the client's cost per
 * operation, which moves far less than throughput on a noisy machine. The blocking runs count
 * from a barrier every thread reaches after its first request (see `ready`); setup_ms is the
 * time to it (the clients' start: threads, connections, for libhalyard the slot map, its
 * heartbeat thread and connections, and for SET the session). The async runs count from the
 * start (setup_ms 0).
 *
 * "paired" runs one request of each library in turn, one at a time, OPS pairs (the order
 * alternating), and prints the median latency of each and the median of the per-pair ratios:
 * a SET waits for its fsync, whose time on a shared disk swings by 5x between runs, and two
 * requests sent a few milliseconds apart see the same disk ("paired ... lat_us=L
 * hiredis_lat_us=H pair_ratio=R", R > 1: libhalyard slower).
 */
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "halyard.h"

static int use_halyard, port, is_set;
static long per_thread;
static long failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* The blocking runs are timed from when every thread has its connection and has run one
 * request of the kind measured (for libhalyard: the slot map read, and for SET the session
 * opened) to when every thread has run its share, so a client's start and its close, paid once
 * per program, are not counted as throughput; they are reported apart (setup_ms). */
static pthread_barrier_t ready, finished;
static double t_start, c_start, t_end, c_end;
static double now_s(void);
static double cpu_s(void);

static void at_barrier(pthread_barrier_t *b, double *t, double *c)
{
    if (pthread_barrier_wait(b) == PTHREAD_BARRIER_SERIAL_THREAD) {
        *t = now_s();
        *c = cpu_s();
    }
}

static void failed(void)
{
    pthread_mutex_lock(&fail_lock);
    failures++;
    pthread_mutex_unlock(&fail_lock);
}

/* BENCH_SESSIONS=0 and BENCH_HEARTBEATS=0 turn the exactly-once sessions and the heartbeats
 * off, to measure what each costs apart from the rest of the client; BENCH_PIPELINE sets
 * pipeline_max (the asynchronous API's batch bound). */
static void tune(halyard_config *cfg)
{
    const char *v = getenv("BENCH_SESSIONS");
    if (v != NULL) {
        cfg->sessions = atoi(v) != 0;
    }
    v = getenv("BENCH_HEARTBEATS");
    if (v != NULL && atoi(v) == 0) {
        cfg->heartbeat_interval_ms = 0;
    }
    v = getenv("BENCH_PIPELINE");
    if (v != NULL) {
        cfg->pipeline_max = (uint32_t)atoi(v);
    }
}

/* A libhalyard client of the node under test, tuned as the environment asks (halyard_open
 * keeps copies of the address list). */
static halyard_client *open_halyard(void)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    const char *addrs[] = {addr};
    halyard_config cfg;
    halyard_config_init(&cfg);
    cfg.addrs = addrs;
    cfg.n_addrs = 1;
    tune(&cfg);
    const char *lanes = getenv("BENCH_ASYNC_THREADS");
    if (lanes != NULL) {
        cfg.async_threads = (uint32_t)atoi(lanes);
    }
    return halyard_open(&cfg, NULL, 0);
}

static void *run_halyard(void *arg)
{
    (void)arg;
    halyard_client *c = open_halyard();
    for (long i = -1; i < per_thread; i++) { /* -1: the warm-up */
        const char *set[] = {"SET", "bench:key", "xxxxxxxxxxxxxxxx"};
        const char *get[] = {"GET", "bench:key"};
        halyard_reply *r = NULL;
        if (halyard_command(c, is_set ? 3 : 2, is_set ? set : get, NULL, &r) != HALYARD_OK) {
            failed();
        }
        halyard_reply_free(r);
        if (i == -1) {
            at_barrier(&ready, &t_start, &c_start);
        }
    }
    at_barrier(&finished, &t_end, &c_end);
    halyard_close(c);
    return NULL;
}

static void *run_hiredis(void *arg)
{
    (void)arg;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        failed();
        exit(1); /* the others would wait at the barrier */
    }
    for (long i = -1; i < per_thread; i++) { /* -1: the warm-up */
        redisReply *r = is_set ? redisCommand(c, "SET bench:key xxxxxxxxxxxxxxxx")
                               : redisCommand(c, "GET bench:key");
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            failed();
        }
        freeReplyObject(r);
        if (i == -1) {
            at_barrier(&ready, &t_start, &c_start);
        }
    }
    at_barrier(&finished, &t_end, &c_end);
    redisFree(c);
    return NULL;
}

/* The async runs: `issued` requests sent so far, `answered` callbacks; the loop stops at the
 * last answer. */
static uv_loop_t loop;
static long issued, answered, total_ops;
static halyard_client *hc;
static redisAsyncContext *ac;

static void halyard_next(void);

static void halyard_done_cb(void *ctx, halyard_status st, halyard_reply *r)
{
    (void)ctx;
    if (st != HALYARD_OK) {
        failed();
    }
    halyard_reply_free(r);
    if (++answered == total_ops) {
        uv_stop(&loop);
    }
    halyard_next();
}

static void halyard_next(void)
{
    if (issued >= total_ops) {
        return;
    }
    issued++;
    const char *set[] = {"SET", "bench:key", "xxxxxxxxxxxxxxxx"};
    const char *get[] = {"GET", "bench:key"};
    if (halyard_command_async(hc, is_set ? 3 : 2, is_set ? set : get, NULL, halyard_done_cb,
                              NULL) != HALYARD_OK) {
        failed();
        if (++answered == total_ops) {
            uv_stop(&loop);
        }
    }
}

static void hiredis_next(void);

static void hiredis_done_cb(redisAsyncContext *c, void *reply, void *priv)
{
    (void)c;
    (void)priv;
    redisReply *r = reply;
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        failed();
    }
    if (++answered == total_ops) {
        redisAsyncDisconnect(ac); /* the loop ends when the connection is closed */
        return;
    }
    hiredis_next();
}

static void hiredis_next(void)
{
    if (issued >= total_ops) {
        return;
    }
    issued++;
    int rc = is_set ? redisAsyncCommand(ac, hiredis_done_cb, NULL, "SET bench:key xxxxxxxxxxxxxxxx")
                    : redisAsyncCommand(ac, hiredis_done_cb, NULL, "GET bench:key");
    if (rc != REDIS_OK) {
        failed();
    }
}

/* WINDOW requests outstanding from one libuv loop until OPS are answered. */
static void run_async(int halyard, long window)
{
    uv_loop_init(&loop);
    if (halyard) {
        hc = open_halyard();
        if (hc == NULL || halyard_attach_loop(hc, &loop) != 0) {
            failed();
            return;
        }
        for (long i = 0; i < window; i++) {
            halyard_next();
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        halyard_close(hc);
    } else {
        ac = redisAsyncConnect("127.0.0.1", port);
        if (ac == NULL || ac->err || redisLibuvAttach(ac, &loop) != REDIS_OK) {
            failed();
            return;
        }
        for (long i = 0; i < window; i++) {
            hiredis_next();
        }
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, long n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* OPS pairs of one libhalyard and one hiredis request, one at a time (see the top). */
static int run_paired(long ops)
{
    halyard_client *hc1 = open_halyard();
    redisContext *rc = redisConnect("127.0.0.1", port);
    double *lh = calloc((size_t)ops, sizeof(double)), *lr = calloc((size_t)ops, sizeof(double));
    double *ratio = calloc((size_t)ops, sizeof(double));
    if (hc1 == NULL || rc == NULL || rc->err || lh == NULL || lr == NULL || ratio == NULL) {
        fprintf(stderr, "paired: cannot start\n");
        return 1;
    }
    const char *set[] = {"SET", "bench:key", "xxxxxxxxxxxxxxxx"};
    const char *get[] = {"GET", "bench:key"};
    for (long i = -1; i < ops; i++) { /* -1: the warm-up of both */
        for (int k = 0; k < 2; k++) {
            int hy = (k == 0) == (i % 2 == 0);
            double t0 = now_s();
            if (hy) {
                halyard_reply *r = NULL;
                if (halyard_command(hc1, is_set ? 3 : 2, is_set ? set : get, NULL, &r) !=
                    HALYARD_OK) {
                    failed();
                }
                halyard_reply_free(r);
            } else {
                redisReply *r = is_set ? redisCommand(rc, "SET bench:key xxxxxxxxxxxxxxxx")
                                       : redisCommand(rc, "GET bench:key");
                if (r == NULL || r->type == REDIS_REPLY_ERROR) {
                    failed();
                }
                freeReplyObject(r);
            }
            if (i >= 0) {
                (hy ? lh : lr)[i] = (now_s() - t0) * 1e6;
            }
        }
        if (i >= 0) {
            ratio[i] = lh[i] / lr[i];
        }
    }
    double mr = median_of(ratio, ops), mh = median_of(lh, ops), mhr = median_of(lr, ops);
    printf("paired %s threads=1 ops=%ld lat_us=%.0f hiredis_lat_us=%.0f pair_ratio=%.3f "
           "failures=%ld\n",
           is_set ? "SET" : "GET", ops, mh, mhr, mr, failures);
    halyard_close(hc1);
    redisFree(rc);
    free(lh);
    free(lr);
    free(ratio);
    return failures ? 1 : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s libhalyard|hiredis PORT SET|GET THREADS OPS\n", argv[0]);
        return 2;
    }
    use_halyard = strncmp(argv[1], "libhalyard", 10) == 0;
    int async = strstr(argv[1], "-async") != NULL;
    port = atoi(argv[2]);
    is_set = strcmp(argv[3], "SET") == 0;
    int threads = atoi(argv[4]);
    long ops = atol(argv[5]);
    if (threads < 1 || threads > 256 || ops < threads) {
        fprintf(stderr, "threads 1..256, ops >= threads\n");
        return 2;
    }
    if (strcmp(argv[1], "paired") == 0) {
        return run_paired(ops);
    }
    per_thread = ops / threads;
    pthread_t tid[256];
    double t0 = now_s(), c0 = cpu_s();
    if (async) {
        total_ops = per_thread * threads;
        run_async(use_halyard, threads);
        t_start = t0;
        c_start = c0;
        t_end = now_s();
        c_end = cpu_s();
        threads = 0; /* none to join */
    } else {
        pthread_barrier_init(&ready, NULL, (unsigned)threads);
        pthread_barrier_init(&finished, NULL, (unsigned)threads);
    }
    for (int i = 0; i < threads; i++) {
        pthread_create(&tid[i], NULL, use_halyard ? run_halyard : run_hiredis, NULL);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
    }
    long done = per_thread * atoi(argv[4]);
    double secs = t_end - t_start, cpu = c_end - c_start;
    printf("%s %s threads=%s ops=%ld ops_per_s=%.0f cpu_us_per_op=%.2f setup_ms=%.1f "
           "failures=%ld\n",
           argv[1], argv[3], argv[4], done, (double)done / secs, cpu * 1e6 / (double)done,
           (t_start - t0) * 1e3, failures);
    return failures ? 1 : 0;
}
