/*
 * peer_echo - a test node for the peer transport (src/io/peer.c), driven by
 * tests/integration/test_peer.py. It joins a mesh and, every --send-interval-ms, sends each
 * peer --burst RAFT AppendEntries (one entry of --payload-bytes) and one FORWARD; it answers
 * each FORWARD with a FORWARD_REPLY. It prints one line per event on stdout:
 *   UP <id> | DOWN <id> <reason>
 *   RAFT from=<id> type=<name> term=<t> entries=<n> bytes=<b>   (unless --quiet)
 *   FORWARD from=<id> req=<n> data=<text> | REPLY from=<id> req=<n> data=<text>
 *   STATS peer=<id> up=<0|1> queued=<b> peak=<b> dropped_full=<n> dropped_down=<n>
 *         sent=<n> recv=<n> handshakes=<n>                     (every --stats-interval-ms)
 *   BADDATA from=<id>                                          (an entry arrived altered)
 * and logs to stderr. SIGTERM or SIGINT closes the transport and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "common/assert.h"
#include "common/crc.h"
#include "common/log.h"
#include "io/peer.h"

#define ECHO_PEERS_MAX 16

struct echo {
    uv_loop_t *loop;
    struct peer_transport *t;
    uv_timer_t send_timer, stats_timer;
    uv_signal_t sigterm, sigint;
    struct peer_addr peers[ECHO_PEERS_MAX];
    size_t n_peers;
    const char *self_id;
    uint32_t burst, payload_bytes;
    uint8_t *payload;
    uint64_t seq;
    int quiet;
};

static void log_write_cb(void *ctx, enum hy_log_level level, const char *msg)
{
    const struct echo *e = ctx;
    fprintf(stderr, "[%s] %s: %s\n", e->self_id, hy_log_level_name(level), msg);
}

static uint64_t raft_id_of(const char *id)
{
    return (uint64_t)hy_crc32c(0, (const uint8_t *)id, strlen(id)) + 1;
}

static void on_raft(void *ctx, const char *from, uint16_t group, const struct raft_message *m)
{
    struct echo *e = ctx;
    (void)group; /* every echo goes to group 0 */
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *en = &m->entries[i];
        for (uint32_t k = 0; k < en->len; k++) {
            if (en->data[k] != (uint8_t)(k * 31 + 7)) {
                printf("BADDATA from=%s\n", from);
                break;
            }
        }
    }
    if (!e->quiet) {
        printf("RAFT from=%s type=%s term=%llu entries=%u bytes=%u\n", from,
               raft_msg_type_name(m->type), (unsigned long long)m->term, m->n_entries,
               m->n_entries > 0 ? m->entries[0].len : 0);
    }
}

static void on_forward(void *ctx, const char *from, uint64_t req_id, const uint8_t *data,
                       size_t len)
{
    struct echo *e = ctx;
    printf("FORWARD from=%s req=%llu data=%.*s\n", from, (unsigned long long)req_id, (int)len,
           (const char *)data);
    char reply[256];
    int n = snprintf(reply, sizeof(reply), "echo:%.*s", (int)HY_MIN(len, 200), data);
    (void)peer_send_forward_reply(e->t, from, req_id, (const uint8_t *)reply, (size_t)n);
}

static void on_forward_reply(void *ctx, const char *from, uint64_t req_id, const uint8_t *data,
                             size_t len)
{
    (void)ctx;
    printf("REPLY from=%s req=%llu data=%.*s\n", from, (unsigned long long)req_id, (int)len,
           (const char *)data);
}

static void on_state(void *ctx, const char *id, int up, const char *reason)
{
    (void)ctx;
    if (up) {
        printf("UP %s\n", id);
    } else {
        printf("DOWN %s %s\n", id, reason);
    }
}

static void send_cb(uv_timer_t *h)
{
    struct echo *e = h->data;
    for (size_t i = 0; i < e->n_peers; i++) {
        const char *to = e->peers[i].id;
        struct raft_entry en = {
            .term = 1, .type = RAFT_ENTRY_COMMAND, .len = e->payload_bytes, .data = e->payload};
        for (uint32_t b = 0; b < e->burst; b++) {
            struct raft_message m = {.type = RAFT_MSG_APPEND,
                                     .from = raft_id_of(e->self_id),
                                     .to = raft_id_of(to),
                                     .term = ++e->seq,
                                     .n_entries = 1,
                                     .entries = &en};
            (void)peer_send_raft(e->t, to, 0, &m);
        }
        char text[96];
        int n = snprintf(text, sizeof(text), "hello-from-%s-%llu", e->self_id,
                         (unsigned long long)e->seq);
        (void)peer_send_forward(e->t, to, e->seq, (const uint8_t *)text, (size_t)n);
    }
}

static void stats_cb(uv_timer_t *h)
{
    struct echo *e = h->data;
    for (size_t i = 0; i < e->n_peers; i++) {
        struct peer_stats s;
        if (peer_get_stats(e->t, e->peers[i].id, &s) != HY_OK) {
            continue;
        }
        printf("STATS peer=%s up=%d queued=%llu peak=%llu dropped_full=%llu dropped_down=%llu "
               "sent=%llu recv=%llu handshakes=%llu\n",
               e->peers[i].id, s.up, (unsigned long long)s.queued_bytes,
               (unsigned long long)s.queued_bytes_peak, (unsigned long long)s.dropped_full,
               (unsigned long long)s.dropped_down, (unsigned long long)s.frames_sent,
               (unsigned long long)s.frames_recv, (unsigned long long)s.handshakes);
    }
    fflush(stdout);
}

static void closed_cb(void *arg)
{
    struct echo *e = arg;
    e->t = NULL;
}

static void signal_cb(uv_signal_t *h, int signum)
{
    (void)signum;
    struct echo *e = h->data;
    if (e->t == NULL || uv_is_closing((uv_handle_t *)&e->send_timer)) {
        return;
    }
    peer_transport_close(e->t, closed_cb, e);
    uv_close((uv_handle_t *)&e->send_timer, NULL);
    uv_close((uv_handle_t *)&e->stats_timer, NULL);
    uv_close((uv_handle_t *)&e->sigterm, NULL);
    uv_close((uv_handle_t *)&e->sigint, NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: peer_echo --id ID --cluster NAME --secret S --listen HOST:PORT\n"
                    "  [--peer ID@HOST:PORT]... [--send-interval-ms N] [--burst N]\n"
                    "  [--payload-bytes N] [--queue-max BYTES] [--ping-interval-ms N]\n"
                    "  [--ping-timeout-ms N] [--handshake-timeout-ms N]\n"
                    "  [--stats-interval-ms N] [--quiet]\n");
    exit(2);
}

/* Parses the flags into cfg and e; returns the send and stats intervals. */
static void parse_args(int argc, char **argv, struct peer_config *cfg, struct echo *e,
                       uint64_t *send_ms, uint64_t *stats_ms)
{
    static char listen_host[PEER_HOST_MAX + 1];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quiet") == 0) {
            e->quiet = 1;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
        }
        const char *v = argv[++i];
        unsigned long long n = strtoull(v, NULL, 10);
        if (strcmp(a, "--id") == 0) {
            cfg->self_id = e->self_id = v;
        } else if (strcmp(a, "--cluster") == 0) {
            cfg->cluster = v;
        } else if (strcmp(a, "--secret") == 0) {
            cfg->secret = (const uint8_t *)v;
            cfg->secret_len = strlen(v);
        } else if (strcmp(a, "--listen") == 0) {
            struct peer_addr la;
            char spec[PEER_HOST_MAX + 32];
            snprintf(spec, sizeof(spec), "self@%s", v);
            if (peer_addr_parse(spec, &la) != HY_OK) {
                usage();
            }
            strcpy(listen_host, la.host);
            cfg->listen_host = listen_host;
            cfg->listen_port = la.port;
        } else if (strcmp(a, "--peer") == 0) {
            if (e->n_peers == ECHO_PEERS_MAX || peer_addr_parse(v, &e->peers[e->n_peers])) {
                usage();
            }
            e->n_peers++;
        } else if (strcmp(a, "--send-interval-ms") == 0) {
            *send_ms = n;
        } else if (strcmp(a, "--stats-interval-ms") == 0) {
            *stats_ms = n;
        } else if (strcmp(a, "--burst") == 0) {
            e->burst = (uint32_t)n;
        } else if (strcmp(a, "--payload-bytes") == 0) {
            e->payload_bytes = (uint32_t)n;
        } else if (strcmp(a, "--queue-max") == 0) {
            cfg->queue_bytes_max = (size_t)n;
        } else if (strcmp(a, "--ping-interval-ms") == 0) {
            cfg->ping_interval_ms = (uint32_t)n;
        } else if (strcmp(a, "--ping-timeout-ms") == 0) {
            cfg->ping_timeout_ms = (uint32_t)n;
        } else if (strcmp(a, "--handshake-timeout-ms") == 0) {
            cfg->handshake_timeout_ms = (uint32_t)n;
        } else {
            usage();
        }
    }
    if (e->self_id == NULL || cfg->cluster == NULL || cfg->secret == NULL) {
        usage();
    }
}

static void start_timers(struct echo *e, uint64_t send_ms, uint64_t stats_ms)
{
    uv_timer_init(e->loop, &e->send_timer);
    uv_timer_init(e->loop, &e->stats_timer);
    e->send_timer.data = e->stats_timer.data = e;
    if (send_ms > 0) {
        uv_timer_start(&e->send_timer, send_cb, send_ms, send_ms);
    }
    uv_timer_start(&e->stats_timer, stats_cb, stats_ms, stats_ms);
    uv_signal_init(e->loop, &e->sigterm);
    uv_signal_init(e->loop, &e->sigint);
    e->sigterm.data = e->sigint.data = e;
    uv_signal_start(&e->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&e->sigint, signal_cb, SIGINT);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    struct echo e = {.burst = 1, .payload_bytes = 16};
    struct peer_config cfg;
    peer_config_default(&cfg);
    uint64_t send_ms = 100, stats_ms = 200;
    parse_args(argc, argv, &cfg, &e, &send_ms, &stats_ms);
    struct hy_log log = {.level = HY_LOG_INFO, .ctx = &e, .write_cb = log_write_cb};
    cfg.log = &log;
    cfg.peers = e.peers;
    cfg.n_peers = e.n_peers;
    cfg.seed = uv_hrtime();
    e.payload = malloc(e.payload_bytes + 1);
    for (uint32_t k = 0; k < e.payload_bytes; k++) {
        e.payload[k] = (uint8_t)(k * 31 + 7);
    }
    e.loop = uv_default_loop();
    struct peer_callbacks cbs = {&e,       on_raft, on_forward, on_forward_reply,
                                 on_state, NULL,    NULL,       NULL,
                                 NULL,     NULL,    NULL,       NULL};
    if (peer_transport_create(e.loop, &cfg, &cbs, &e.t) != HY_OK) {
        return 1;
    }
    printf("LISTENING %u\n", peer_transport_port(e.t));
    start_timers(&e, send_ms, stats_ms);
    uv_run(e.loop, UV_RUN_DEFAULT);
    uv_loop_close(e.loop);
    free(e.payload);
    printf("EXIT\n");
    return 0;
}
