/*
 * fuzz_client.c - libFuzzer target for libhalyard's core (src/client/core.c): whatever bytes
 * a server sends, and whenever its connections fail, the core never crashes, never loops, and
 * every request ends with an outcome and a reply by its deadline.
 *
 * Input: a sequence of steps. Byte 0 of each: low 2 bits pick the event (0: the server's next
 * chunk of bytes follows, its length in the next byte; 1: the connection closes; 2: time
 * advances by the next byte × 10 ms; 3: a new request begins, a write when bit 2 is set, or,
 * when bit 4 is set and the connection can take them, a write and a read pipelined, whose
 * answers the next chunks carry), and bit 3 whether connecting fails next.
 *
 * With size % 5 == 4 the client has two failover clusters (the region priority query and the
 * reordering of its list run on whatever the server answers).
 *
 * The requests count in flight in a table of their own with a bound of size % 3 per member
 * (max_inflight_per_member: 0 none, 1 or 2): once everything has ended, nothing may be left
 * counted. The whole input is also read as a pushed cluster event (hyc_event_parse): what the
 * subscription hands it is whatever a member published.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/core.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *addrs[] = {"127.0.0.1:1", "127.0.0.1:2"};
static const char *wr[] = {"INCR", "k"}, *rd[] = {"GET", "k"};

static int settle(struct hyc_core *k, uint64_t *now, int refuse);

/* Pipelined requests waiting for their answers (in order), and the bytes received for them. */
struct pipe {
    struct hyc_pipe_slot slots[2];
    size_t n, next;
    struct hy_buf in;
};

/* A pipelined request given back, or left unanswered on a lost connection, runs the normal
 * way to its outcome (under its slot when it has one); a plain write lost is UNKNOWN. */
static void run_back(struct hyc_core *k, const struct hyc_pipe_slot *slot, int lost, uint64_t *now)
{
    if (lost && slot->is_write && slot->session == 0) {
        halyard_reply *r = hyc_pipe_unknown();
        FUZZ_CHECK(r != NULL);
        halyard_reply_free(r);
        return;
    }
    hyc_begin(k, 2, slot->is_write ? wr : rd, NULL, *now);
    hyc_resume(k, slot, lost && slot->is_write);
    while (settle(k, now, 0)) {
        *now += 100; /* no server answers it here: it ends by its deadline */
    }
}

/* Feeds received bytes to the pipelined requests' answers. */
static void pipe_feed(struct hyc_core *k, struct pipe *p, const uint8_t *data, size_t n,
                      uint64_t *now)
{
    hy_buf_append(&p->in, data, n);
    while (p->next < p->n) {
        size_t used = 0;
        halyard_status st;
        halyard_reply *r = NULL;
        int rc = hyc_pipe_answer(k, &p->slots[p->next], p->in.data, p->in.len, &used, &st, &r);
        if (rc == 0) {
            return;
        }
        if (rc < 0) {
            hyc_pipe_lost(k, "a protocol error", p->n - p->next, *now);
            for (; p->next < p->n; p->next++) {
                run_back(k, &p->slots[p->next], 1, now);
            }
            break;
        }
        FUZZ_CHECK(used > 0 && used <= p->in.len);
        hy_buf_consume(&p->in, used);
        if (rc == 1) {
            FUZZ_CHECK(r != NULL);
            halyard_reply_free(r);
        } else if (rc == 2) {
            run_back(k, &p->slots[p->next], 0, now);
        }
        p->next += rc != 3;
    }
    p->n = p->next = 0;
    hy_buf_reset(&p->in);
}

/* Drives the core until it waits for the server or is done; 1 when it waits. */
static int settle(struct hyc_core *k, uint64_t *now, int refuse)
{
    for (int guard = 0; guard < 10000; guard++) {
        struct hyc_action a;
        hyc_next(k, *now, &a);
        switch (a.what) {
        case HYC_DO_DONE: {
            halyard_reply *r = NULL;
            (void)hyc_take_result(k, &r);
            FUZZ_CHECK(r != NULL);
            halyard_reply_free(r);
            return 0;
        }
        case HYC_DO_CLOSE: break;
        case HYC_DO_SLEEP:
            FUZZ_CHECK(a.until_ms > *now);
            *now = a.until_ms;
            break;
        case HYC_DO_CONNECT:
            if (refuse) {
                *now += 1;
                hyc_closed(k, *now);
            } else {
                hyc_connected(k, *now);
            }
            break;
        case HYC_DO_SEND:
            FUZZ_CHECK(a.len > 0);
            hyc_sent(k, *now);
            break;
        case HYC_DO_RECV: FUZZ_CHECK(a.until_ms > *now); return 1;
        case HYC_DO_PROBE: hyc_probed(k, 0, *now); break; /* no failover clusters here */
        }
    }
    __builtin_trap(); /* it must settle */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addrs = addrs;
    cfg.n_addrs = 2;
    cfg.connect_timeout_ms = 50;
    cfg.request_timeout_ms = 2000;
    cfg.attempt_timeout_ms = 300;
    cfg.backoff_initial_ms = 10;
    cfg.backoff_max_ms = 200;
    cfg.backoff_multiplier = 2.0;
    cfg.backoff_jitter = 0.5;
    cfg.sessions = 1;
    cfg.session_ttl_ms = 60000;
    cfg.max_inflight_per_member = (uint32_t)(size % 3);
    /* size % 5 == 4: two failover clusters, so the core asks each cluster it connects to for
     * its region priority (CLUSTER INFO) and reorders its list by whatever comes back. */
    static const char *dr_addrs[] = {"127.0.0.1:3"}, *north_addrs[] = {"127.0.0.1:4"};
    static const halyard_cluster failover[2] = {{"dr", dr_addrs, 1}, {"north", north_addrs, 1}};
    if (size % 5 == 4) {
        cfg.cluster_name = "primary";
        cfg.failover = failover;
        cfg.n_failover = 2;
        cfg.cluster_connect_timeout_ms = 300;
    }
    static struct hyc_load load;
    memset(&load, 0, sizeof(load));
    halyard_event ev;
    char who[HYC_HOST_MAX + 8];
    who[sizeof(who) - 1] = 'x';
    if (hyc_event_parse((const char *)data, size, &ev, who, sizeof(who) - 1)) {
        FUZZ_CHECK(memchr(who, '\0', sizeof(who) - 1) != NULL && who[sizeof(who) - 1] == 'x');
        FUZZ_CHECK(ev >= HALYARD_EV_MEMBER_ADDED && ev <= HALYARD_EV_QUORUM_REGAINED);
    }
    struct hyc_core *k = hyc_core_new(&cfg, 1);
    hyc_set_load(k, &load);
    struct pipe p = {.n = 0};
    hy_buf_init(&p.in);
    uint64_t now = 1000;
    int waiting = 0, refuse = 0;
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++];
        refuse = (op >> 3) & 1;
        switch (op & 3) {
        case 0: {
            size_t n = i < size ? data[i++] : 0;
            n = n < size - i ? n : size - i;
            if (p.n > 0) {
                pipe_feed(k, &p, data + i, n, &now);
            } else if (waiting) {
                hyc_received(k, data + i, n, now);
                waiting = settle(k, &now, refuse);
            }
            i += n;
            break;
        }
        case 1:
            if (p.n > 0) {
                hyc_pipe_lost(k, "closed", p.n - p.next, now);
                for (; p.next < p.n; p.next++) {
                    run_back(k, &p.slots[p.next], 1, &now);
                }
                p.n = p.next = 0;
                hy_buf_reset(&p.in);
            } else if (waiting) {
                hyc_closed(k, now);
                waiting = settle(k, &now, refuse);
            }
            break;
        case 2:
            now += 10u * (i < size ? data[i++] : 1);
            if (waiting) {
                waiting = settle(k, &now, refuse);
            }
            break;
        case 3:
            if (!waiting && p.n == 0 && (op & 16)) {
                struct hy_buf out;
                hy_buf_init(&out);
                p.n += (size_t)hyc_pipe_add(k, 2, wr, NULL, now, &out, &p.slots[p.n]);
                p.n += (size_t)hyc_pipe_add(k, 2, rd, NULL, now, &out, &p.slots[p.n]);
                FUZZ_CHECK((p.n > 0) == (out.len > 0));
                hy_buf_free(&out);
            } else if (!waiting && p.n == 0) {
                hyc_begin(k, 2, (op & 4) ? wr : rd, NULL, now);
                waiting = settle(k, &now, refuse);
            }
            break;
        }
    }
    /* Whatever happened, the request in flight ends by its deadline. */
    while (waiting) {
        now += 100;
        waiting = settle(k, &now, 1);
    }
    if (p.n > 0) {
        hyc_pipe_lost(k, "closed", p.n - p.next, now);
    }
    for (size_t m = 0; hyc_member(k, m) != NULL; m++) { /* every count taken back */
        FUZZ_CHECK(hyc_load_get(&load, hyc_member(k, m)) == 0);
    }
    hy_buf_free(&p.in);
    hyc_core_free(k);
    return 0;
}
