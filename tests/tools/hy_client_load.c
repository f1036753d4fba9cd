/*
 * hy_client_load.c - increments a counter N times through libhalyard and reports every
 * outcome (tests/integration/test_client.py kills and stops members meanwhile).
 *
 *   hy_client_load HOST:PORT[,HOST:PORT...] KEY N [--no-sessions] [--timeout-ms MS]
 *                  [--no-routing] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]
 *                  [--tls-name NAME]] [--user USER] [--password PASS]
 *                  [--heartbeat-ms INTERVAL,TIMEOUT] [--warmup-ms MS]
 *                  [--breaker FAILURES,COOLDOWN_MS]
 *
 * Prints "progress K" after every 50 increments (flushed), then one line
 * "done ok=A unknown=B not_applied=C timeout=D error=E last=V resends=R sessions=S routed=T
 * topology=M heartbeat_downs=H breaker_opens=O breaker_skips=K" where V is the last value an INCR
 * returned (not_applied counts HALYARD_NOT_APPLIED, HALYARD_NO_QUORUM, HALYARD_QUORUM_RULE and
 * HALYARD_UNREACHABLE).
 * --warmup-ms waits that long after halyard_open before the first INCR (the heartbeats run
 * meanwhile). Exit 0 when it ran to the end, 2 on bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "halyard.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST:PORT[,...] KEY N [--no-sessions] [--timeout-ms MS]\n",
                argv[0]);
        return 2;
    }
    const char *addrs[64];
    size_t n_addrs = 0;
    char *list = strdup(argv[1]);
    for (char *tok = strtok(list, ","); tok != NULL && n_addrs < 64; tok = strtok(NULL, ",")) {
        addrs[n_addrs++] = tok;
    }
    long warmup_ms = 0;
    halyard_config cfg;
    halyard_config_init(&cfg);
    cfg.addrs = addrs;
    cfg.n_addrs = n_addrs;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--no-routing") == 0) {
            cfg.smart_routing = 0;
        } else if (strcmp(argv[i], "--no-sessions") == 0) {
            cfg.sessions = 0;
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            cfg.request_timeout_ms = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) {
            cfg.tls = 1;
            cfg.tls_ca_file = argv[++i];
        } else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) {
            cfg.tls_cert_file = argv[++i];
        } else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) {
            cfg.tls_key_file = argv[++i];
        } else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
            cfg.username = argv[++i];
        } else if (strcmp(argv[i], "--password") == 0 && i + 1 < argc) {
            cfg.password = argv[++i];
        } else if (strcmp(argv[i], "--tls-name") == 0 && i + 1 < argc) {
            cfg.tls_server_name = argv[++i];
        } else if (strcmp(argv[i], "--heartbeat-ms") == 0 && i + 1 < argc) {
            const char *v = argv[++i], *comma = strchr(v, ',');
            cfg.heartbeat_interval_ms = (uint32_t)atoi(v);
            cfg.heartbeat_timeout_ms = comma ? (uint32_t)atoi(comma + 1) : 2000;
        } else if (strcmp(argv[i], "--breaker") == 0 && i + 1 < argc) {
            const char *v = argv[++i], *comma = strchr(v, ',');
            cfg.breaker_failures = (uint32_t)atoi(v);
            cfg.breaker_cooldown_ms = comma ? (uint32_t)atoi(comma + 1) : 5000;
        } else if (strcmp(argv[i], "--warmup-ms") == 0 && i + 1 < argc) {
            warmup_ms = atol(argv[++i]);
        } else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    char err[200];
    halyard_client *c = halyard_open(&cfg, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "halyard_open: %s\n", err);
        return 2;
    }
    if (warmup_ms > 0) {
        struct timespec ts = {warmup_ms / 1000, (warmup_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    long n = atol(argv[3]);
    long counts[32] = {0}; /* by status */
    long long last = 0;
    for (long i = 1; i <= n; i++) {
        const char *cmd[] = {"INCR", argv[2]};
        halyard_reply *r = NULL;
        halyard_status st = halyard_command(c, 2, cmd, NULL, &r);
        counts[st]++;
        if (st == HALYARD_OK && r->type == HALYARD_REPLY_INTEGER) {
            last = r->integer;
        } else if (st != HALYARD_OK) {
            printf("status %s: %s\n", halyard_status_str(st), r ? r->str : "");
        }
        halyard_reply_free(r);
        if (i % 50 == 0) {
            printf("progress %ld\n", i);
            fflush(stdout);
        }
    }
    halyard_stats s;
    halyard_get_stats(c, &s);
    printf("done ok=%ld unknown=%ld not_applied=%ld timeout=%ld error=%ld last=%lld resends=%llu "
           "sessions=%llu routed=%llu topology=%llu heartbeat_downs=%llu breaker_opens=%llu "
           "breaker_skips=%llu\n",
           counts[HALYARD_OK], counts[HALYARD_UNKNOWN],
           counts[HALYARD_NOT_APPLIED] + counts[HALYARD_NO_QUORUM] + counts[HALYARD_QUORUM_RULE] +
               counts[HALYARD_UNREACHABLE],
           counts[HALYARD_TIMEOUT], counts[HALYARD_REPLY_ERROR], last,
           (unsigned long long)s.resends, (unsigned long long)s.sessions_opened,
           (unsigned long long)s.routed, (unsigned long long)s.topology_reads,
           (unsigned long long)s.heartbeat_downs, (unsigned long long)s.breaker_opens,
           (unsigned long long)s.breaker_skips);
    halyard_close(c);
    free(list);
    return 0;
}
