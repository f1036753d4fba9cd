/*
 * fuzz_client.c - libFuzzer target for libhalyard's core (src/client/core.c): whatever bytes
 * a server sends, and whenever its connections fail, the core never crashes, never loops, and
 * every request ends with an outcome and a reply by its deadline.
 *
 * Input: a sequence of steps. Byte 0 of each: low 2 bits pick the event (0: the server's next
 * chunk of bytes follows, its length in the next byte; 1: the connection closes; 2: time
 * advances by the next byte × 10 ms; 3: a new request begins, a write when bit 2 is set), and
 * bit 3 whether connecting fails next.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/core.h"

#define FUZZ_CHECK(cond)      \
    do {                      \
        if (!(cond)) {        \
            __builtin_trap(); \
        }                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *addrs[] = {"127.0.0.1:1", "127.0.0.1:2"};

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
    struct hyc_core *k = hyc_core_new(&cfg, 1);
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
            if (waiting) {
                hyc_received(k, data + i, n, now);
                waiting = settle(k, &now, refuse);
            }
            i += n;
            break;
        }
        case 1:
            if (waiting) {
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
            if (!waiting) {
                const char *w[] = {"INCR", "k"}, *r[] = {"GET", "k"};
                hyc_begin(k, 2, (op & 4) ? w : r, NULL, now);
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
    hyc_core_free(k);
    return 0;
}
