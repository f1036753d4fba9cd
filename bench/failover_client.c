/*
 * failover_client.c - one writer for bench/failover_client.py (make bench-failover; issue 15):
 * how long a client's writes stop when a member it depends on is killed.
 *
 *   failover_client libhalyard|libhalyard-proxy|hiredis ADDR[,ADDR...] NAME
 *   failover_client libhalyard-failover ADDR[,ADDR...] NAME SECONDARY[,ADDR...]
 *
 * It writes SET NAME:i x in a loop, one at a time, from the first address on:
 *   libhalyard        libhalyard's defaults (smart routing: writes go to the leader; sessions)
 *   libhalyard-proxy  the same with smart_routing 0: it stays on the first address (a follower,
 *                     which forwards), as a client behind a TCP load balancer
 *   libhalyard-failover  libhalyard's defaults with a failover cluster (SECONDARY): when the
 *                     whole first cluster is stopped, it moves there after
 *                     cluster_connect_timeout_ms (default 4000)
 *   hiredis           hiredis with the usual hand-written reconnect: 1 s connect and command
 *                     timeouts; on a lost connection the next address at once (5 ms pause after
 *                     a whole round failed); on an error reply (-TRYAGAIN, -NOQUORUM, ...) a 5 ms
 *                     pause and the next write
 * The driver stamps the kill (CLOCK_MONOTONIC, before its SIGKILL), waits for the killed
 * process to be gone, then writes "mark NS" on stdin (read by a thread of its own, so the
 * writes never see a signal). The first write acknowledged after the line arrived, when the
 * killed member certainly sent nothing more, ends the run with one line:
 *   result first_ack_ms=F gap_ms=G acks=N errors=E unknown=U
 * F: from the kill to that acknowledgement (issue 15's "time from the kill to the first
 * acknowledged write"; an acknowledgement between the kill and the line is not counted, as it
 * may be the dead member's last, so F is at least the time the kernel took to reap it); G: from
 * the last acknowledgement before the kill to it (the gap the program saw); N acknowledgements
 * before the kill; E error outcomes (error replies, lost connections, statuses other than OK)
 * and U writes of unknown outcome. Before the mark it prints "ready" once 20 writes were
 * acknowledged. End of stdin ends it.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "halyard.h"

#define ADDRS_MAX 16

static _Atomic uint64_t mark_ns, valid_ns; /* the kill; when the line came */
#define RING 4096
static uint64_t ring[RING]; /* the latest acknowledgements' times */
static char *addrs[ADDRS_MAX], *secondary[ADDRS_MAX];
static size_t n_addrs, n_secondary;
static const char *name;
static long acks, errors, unknown;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pause_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void *mark_main(void *arg)
{
    (void)arg;
    char line[64];
    unsigned long long ns;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (sscanf(line, "mark %llu", &ns) == 1) {
            atomic_store(&mark_ns, (uint64_t)ns);
            atomic_store(&valid_ns, now_ns());
        }
    }
    _exit(3); /* the driver is gone */
}

/* After each acknowledgement: 1 when it ends the run (result printed). */
static int acked(void)
{
    uint64_t t = now_ns(), valid = atomic_load(&valid_ns);
    if (valid != 0 && t > valid) {
        uint64_t mark = atomic_load(&mark_ns), before = 0;
        long n_before = 0;
        for (long i = acks - 1; i >= 0 && i >= acks - RING; i--) {
            if (ring[i % RING] <= mark) {
                before = ring[i % RING];
                n_before = i + 1;
                break;
            }
        }
        printf("result first_ack_ms=%.1f gap_ms=%.1f acks=%ld errors=%ld unknown=%ld\n",
               (double)(t - mark) / 1e6, before ? (double)(t - before) / 1e6 : -1.0, n_before,
               errors, unknown);
        return 1;
    }
    ring[acks % RING] = t;
    if (++acks == 20) {
        printf("ready\n");
    }
    return 0;
}

static void run_halyard(int smart)
{
    halyard_config cfg;
    halyard_config_init(&cfg);
    cfg.addrs = (const char *const *)addrs;
    cfg.n_addrs = n_addrs;
    cfg.smart_routing = smart;
    halyard_cluster dr = {"secondary", (const char *const *)secondary, n_secondary};
    if (n_secondary > 0) {
        cfg.failover = &dr;
        cfg.n_failover = 1;
    }
    char err[200];
    halyard_client *c = halyard_open(&cfg, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "halyard_open: %s\n", err);
        exit(2);
    }
    char key[128];
    for (long i = 0;; i++) {
        snprintf(key, sizeof(key), "%s:%ld", name, i);
        const char *argv[] = {"SET", key, "x"};
        halyard_reply *r = NULL;
        halyard_status st = halyard_command(c, 3, argv, NULL, &r);
        halyard_reply_free(r);
        if (st == HALYARD_OK) {
            if (acked()) {
                break;
            }
        } else if (st == HALYARD_UNKNOWN) {
            unknown++;
        } else {
            errors++;
        }
    }
    halyard_close(c);
}

static redisContext *hiredis_connect(size_t at)
{
    char host[256];
    snprintf(host, sizeof(host), "%s", addrs[at]);
    char *colon = strrchr(host, ':');
    if (colon == NULL) {
        return NULL;
    }
    *colon = '\0';
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    if (rc != NULL && (rc->err || redisSetTimeout(rc, tv) != REDIS_OK)) {
        redisFree(rc);
        rc = NULL;
    }
    return rc;
}

static void run_hiredis(void)
{
    size_t at = 0, failed_in_row = 0;
    redisContext *rc = NULL;
    for (long i = 0;;) {
        if (rc == NULL) {
            rc = hiredis_connect(at);
            if (rc == NULL) {
                at = (at + 1) % n_addrs;
                if (++failed_in_row % n_addrs == 0) {
                    pause_ms(5);
                }
                continue;
            }
        }
        i++;
        redisReply *r = redisCommand(rc, "SET %s:%ld x", name, i);
        if (r == NULL) { /* lost, or no answer in 1 s: the next address */
            errors++;
            redisFree(rc);
            rc = NULL;
            at = (at + 1) % n_addrs;
            continue;
        }
        failed_in_row = 0;
        int ok = r->type == REDIS_REPLY_STATUS;
        int unk = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "UNKNOWN", 7) == 0;
        freeReplyObject(r);
        if (ok) {
            if (acked()) {
                break;
            }
        } else {
            unknown += unk;
            errors += !unk;
            pause_ms(5);
        }
    }
    redisFree(rc);
}

int main(int argc, char **argv)
{
    if (argc != 4 && !(argc == 5 && strcmp(argv[1], "libhalyard-failover") == 0)) {
        fprintf(stderr,
                "usage: %s libhalyard|libhalyard-proxy|hiredis ADDR[,ADDR...] NAME\n"
                "       %s libhalyard-failover ADDR[,ADDR...] NAME SECONDARY[,ADDR...]\n",
                argv[0], argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (char *save = NULL, *a = strtok_r(argv[2], ",", &save); a && n_addrs < ADDRS_MAX;
         a = strtok_r(NULL, ",", &save)) {
        addrs[n_addrs++] = a;
    }
    name = argv[3];
    for (char *save = NULL, *a = argc == 5 ? strtok_r(argv[4], ",", &save) : NULL;
         a && n_secondary < ADDRS_MAX; a = strtok_r(NULL, ",", &save)) {
        secondary[n_secondary++] = a;
    }
    pthread_t t;
    pthread_create(&t, NULL, mark_main, NULL);
    if (strcmp(argv[1], "hiredis") == 0) {
        run_hiredis();
    } else {
        run_halyard(strcmp(argv[1], "libhalyard-proxy") != 0);
    }
    return 0;
}
