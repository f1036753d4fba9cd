/*
 * client_bench.c - libhalyard's blocking API against hiredis, same server, same operations
 * (make bench-client; issue 15). Each thread has its own connection (a hiredis context, or a
 * libhalyard client) and runs its share of the operations one at a time.
 *
 *   client_bench libhalyard|hiredis PORT SET|GET THREADS OPS
 *
 * Prints one line: "<lib> <op> threads=T ops=N ops_per_s=X cpu_us_per_op=Y", where the CPU
 * time is the benchmark process's own (user + system, getrusage): the client's cost per
 * operation, which moves far less than throughput on a noisy machine.
 */
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

static void failed(void)
{
    pthread_mutex_lock(&fail_lock);
    failures++;
    pthread_mutex_unlock(&fail_lock);
}

static void *run_halyard(void *arg)
{
    (void)arg;
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    const char *addrs[] = {addr};
    halyard_config cfg;
    halyard_config_init(&cfg);
    cfg.addrs = addrs;
    cfg.n_addrs = 1;
    halyard_client *c = halyard_open(&cfg, NULL, 0);
    for (long i = 0; i < per_thread; i++) {
        const char *set[] = {"SET", "bench:key", "xxxxxxxxxxxxxxxx"};
        const char *get[] = {"GET", "bench:key"};
        halyard_reply *r = NULL;
        if (halyard_command(c, is_set ? 3 : 2, is_set ? set : get, NULL, &r) != HALYARD_OK) {
            failed();
        }
        halyard_reply_free(r);
    }
    halyard_close(c);
    return NULL;
}

static void *run_hiredis(void *arg)
{
    (void)arg;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        failed();
        return NULL;
    }
    for (long i = 0; i < per_thread; i++) {
        redisReply *r = is_set ? redisCommand(c, "SET bench:key xxxxxxxxxxxxxxxx")
                               : redisCommand(c, "GET bench:key");
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            failed();
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
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
    use_halyard = strcmp(argv[1], "libhalyard") == 0;
    port = atoi(argv[2]);
    is_set = strcmp(argv[3], "SET") == 0;
    int threads = atoi(argv[4]);
    long ops = atol(argv[5]);
    if (threads < 1 || threads > 256 || ops < threads) {
        fprintf(stderr, "threads 1..256, ops >= threads\n");
        return 2;
    }
    per_thread = ops / threads;
    pthread_t tid[256];
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < threads; i++) {
        pthread_create(&tid[i], NULL, use_halyard ? run_halyard : run_hiredis, NULL);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
    }
    double secs = now_s() - t0, cpu = cpu_s() - c0;
    long done = per_thread * threads;
    printf("%s %s threads=%d ops=%ld ops_per_s=%.0f cpu_us_per_op=%.2f failures=%ld\n", argv[1],
           argv[3], threads, done, (double)done / secs, cpu * 1e6 / (double)done, failures);
    return failures ? 1 : 0;
}
