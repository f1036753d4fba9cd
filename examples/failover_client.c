/*
 * failover_client.c - seed 002's failover client in C: a primary and a secondary cluster, a
 * write loop with no try/catch, and the lifecycle events printed as they happen.
 *
 *   cc failover_client.c $(pkg-config --cflags --libs halyard) -o failover_client
 *   ./failover_client --primary 127.0.0.1:7379,127.0.0.1:7380,127.0.0.1:7381 \
 *                     --secondary 127.0.0.1:8379 [--writes N] [--interval-ms MS]
 *                     [--tertiary 127.0.0.1:9379]
 *
 * Stop the primary while it runs: it prints CLIENT_DISCONNECTED, CLIENT_CONNECTED and
 * CLIENT_CHANGED_CLUSTER, and goes on writing to the secondary. Each write's status is a
 * value, not an exception: the loop needs no try/catch. The write in flight when the primary
 * went away is reported "outcome unknown" (it may have been applied there: sessions do not
 * cross clusters); every other write is applied once. The clusters are named "primary",
 * "secondary" and "tertiary" in that order; a cluster whose region-failover-priority names
 * them (the servers' cluster-name) reorders the list (docs/client.md).
 */
#include <halyard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_event(void *ctx, halyard_event ev, const char *cluster, const char *member)
{
    (void)ctx;
    printf("%s cluster=%s member=%s\n", halyard_event_str(ev), cluster, member);
    fflush(stdout);
}

/* Splits "a,b,c" into addrs (at most max); the string is modified. */
static size_t split(char *list, const char **addrs, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(list, ","); tok != NULL && n < max; tok = strtok(NULL, ",")) {
        addrs[n++] = tok;
    }
    return n;
}

int main(int argc, char **argv)
{
    char *primary = NULL, *secondary = NULL, *tertiary = NULL;
    long writes = 1000, interval_ms = 20, failback_ms = 0, events_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--primary") == 0) {
            primary = argv[i + 1];
        } else if (strcmp(argv[i], "--secondary") == 0) {
            secondary = argv[i + 1];
        } else if (strcmp(argv[i], "--tertiary") == 0) {
            tertiary = argv[i + 1];
        } else if (strcmp(argv[i], "--writes") == 0) {
            writes = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--interval-ms") == 0) {
            interval_ms = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--failback-ms") == 0) {
            failback_ms = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--events-ms") == 0) {
            events_ms = atol(argv[i + 1]);
        }
    }
    if (primary == NULL || secondary == NULL) {
        fprintf(stderr,
                "usage: %s --primary A[,B...] --secondary C[,D...] [--tertiary E[,F...]] "
                "[--writes N] "
                "[--interval-ms MS] [--failback-ms MS] [--events-ms MS]\n",
                argv[0]);
        return 2;
    }
    const char *p_addrs[16], *s_addrs[16], *t_addrs[16];
    halyard_cluster dr[2] = {{"secondary", s_addrs, split(secondary, s_addrs, 16)},
                             {"tertiary", t_addrs, 0}};
    if (tertiary != NULL) {
        dr[1].n_addrs = split(tertiary, t_addrs, 16);
    }
    halyard_config cfg;
    halyard_config_init(&cfg);
    cfg.addrs = p_addrs;
    cfg.n_addrs = split(primary, p_addrs, 16);
    cfg.cluster_name = "primary";
    cfg.failover = dr;
    cfg.n_failover = tertiary != NULL ? 2 : 1;
    cfg.on_event = on_event;
    cfg.failback_after_ms = (uint32_t)failback_ms; /* 0: stay on the secondary */
    cfg.events_poll_ms = (uint32_t)events_ms;      /* 0: no membership events */
    char err[200];
    halyard_client *c = halyard_open(&cfg, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "halyard_open: %s\n", err);
        return 1;
    }
    long ok = 0, unknown = 0, other = 0;
    for (long i = 0; i < writes; i++) {
        char key[32], value[32];
        snprintf(key, sizeof(key), "key-%ld", i);
        snprintf(value, sizeof(value), "value-%ld", i);
        const char *set[] = {"SET", key, value};
        halyard_reply *r = NULL;
        halyard_status st = halyard_command(c, 3, set, NULL, &r);
        if (st == HALYARD_OK) {
            ok++;
        } else {
            unknown += st == HALYARD_UNKNOWN;
            other += st != HALYARD_UNKNOWN;
            printf("write %ld: %s: %s\n", i, halyard_status_str(st), r ? r->str : "");
        }
        halyard_reply_free(r);
        if (i % 50 == 49) {
            printf("progress %ld\n", i + 1);
            fflush(stdout);
        }
        struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    printf("done ok=%ld unknown=%ld other=%ld\n", ok, unknown, other);
    halyard_close(c);
    return 0;
}
