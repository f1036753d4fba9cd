/* Unit tests for libhalyard's pure core (src/client/core.c): scripted servers and simulated
 * time drive every path of a request — reconnects and backoff, -MOVED, -TRYAGAIN and
 * -NOQUORUM, replies lost after sending (re-sent under the same session slot, or UNKNOWN
 * without a session), expired sessions, commands the server will not wrap, unresponsive
 * members (attempt timeout) and the request deadline. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "client/core.h"
#include "client/rconn.h"
#include "client/stale.h"

/* The script: for each member, whether connecting works; the frames the client sent; the
 * answer the test gives next. */
struct script {
    struct hyc_core *k;
    uint64_t now;
    int refuse[4]; /* connecting to member i fails */
    char sent[16][512];
    size_t n_sent;
    size_t connects[4];
    size_t probes[4];
    size_t member; /* connected to */
    /* With failover clusters the core asks each cluster it connects to for its region
     * priority (CLUSTER INFO) first: run() answers that with region_info when it is set. */
    const char *region_info;
};

#define CLUSTER_INFO_FRAME "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n"

static const char *addrs3[] = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};

static void setup(struct script *t, int sessions, uint32_t request_timeout_ms)
{
    memset(t, 0, sizeof(*t));
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addrs = addrs3;
    cfg.n_addrs = 3;
    cfg.connect_timeout_ms = 100;
    cfg.request_timeout_ms = request_timeout_ms;
    cfg.attempt_timeout_ms = 500;
    cfg.backoff_initial_ms = 40;
    cfg.backoff_max_ms = 1000;
    cfg.backoff_multiplier = 2.0;
    cfg.backoff_jitter = 0.5;
    cfg.sessions = sessions;
    cfg.session_ttl_ms = 60000;
    assert_null(hyc_config_check(&cfg));
    t->k = hyc_core_new(&cfg, 7);
    t->now = 1000;
}

/* Runs the core until it wants to receive (returns 1: the last frame sent is in sent[]) or is
 * done (returns 0). Sleeps advance simulated time; connects follow refuse[]. */
static int run(struct script *t)
{
    for (int guard = 0; guard < 1000; guard++) {
        struct hyc_action a;
        hyc_next(t->k, t->now, &a);
        switch (a.what) {
        case HYC_DO_DONE: return 0;
        case HYC_DO_CLOSE: break;
        case HYC_DO_SLEEP:
            assert_true(a.until_ms > t->now);
            t->now = a.until_ms;
            break;
        case HYC_DO_CONNECT: {
            /* The script knows members by port: 7001-7003, and any other (the secondary's
             * 8001, one learned from -MOVED) as the fourth. */
            int port = hyc_member(t->k, a.member)->port;
            size_t idx = port >= 7001 && port <= 7003 ? (size_t)(port - 7001) : 3;
            t->connects[idx]++;
            if (t->refuse[idx]) {
                t->now += 1;
                hyc_closed(t->k, t->now);
            } else {
                t->member = a.member;
                hyc_connected(t->k, t->now);
            }
            break;
        }
        case HYC_DO_PROBE: {
            int port = a.probe->port;
            size_t idx = port >= 7001 && port <= 7003 ? (size_t)(port - 7001) : 3;
            t->probes[idx]++;
            t->now += 1;
            hyc_probed(t->k, !t->refuse[idx], t->now);
            break;
        }
        case HYC_DO_SEND:
            assert_true(t->n_sent < 16);
            snprintf(t->sent[t->n_sent++], 512, "%.*s", (int)a.len, (const char *)a.data);
            hyc_sent(t->k, t->now);
            break;
        case HYC_DO_RECV:
            if (t->region_info != NULL && t->n_sent > 0 &&
                strcmp(t->sent[t->n_sent - 1], CLUSTER_INFO_FRAME) == 0) {
                t->n_sent--; /* answered here: the test sees the frames after it */
                hyc_received(t->k, (const uint8_t *)t->region_info, strlen(t->region_info), t->now);
                break;
            }
            return 1;
        }
    }
    fail_msg("the core did not settle");
    return 0;
}

static void answer(struct script *t, const char *resp)
{
    hyc_received(t->k, (const uint8_t *)resp, strlen(resp), t->now);
}

static halyard_status result(struct script *t, char *text, size_t len)
{
    halyard_reply *r = NULL;
    halyard_status st = hyc_take_result(t->k, &r);
    assert_non_null(r);
    snprintf(text, len, "%s", r->str ? r->str : "");
    if (r->type == HALYARD_REPLY_INTEGER) {
        snprintf(text, len, "%lld", r->integer);
    }
    halyard_reply_free(r);
    return st;
}

static void begin(struct script *t, const char *a0, const char *a1)
{
    const char *argv[] = {a0, a1};
    hyc_begin(t->k, a1 ? 2 : 1, argv, NULL, t->now);
}

#define OPEN_FRAME "*3\r\n$10\r\nHY.SESSION\r\n$4\r\nOPEN\r\n$5\r\n60000\r\n"
#define INCR1      "*5\r\n$6\r\nHY.REQ\r\n$1\r\n9\r\n$1\r\n1\r\n$4\r\nINCR\r\n$1\r\nc\r\n"

/* A write opens the session first, then goes inside HY.REQ; the next reuses the session. */
static void test_write_goes_in_a_session(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    assert_string_equal(t.sent[0], OPEN_FRAME);
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[1], INCR1);
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    char text[64];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_string_equal(text, "1");
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    assert_string_equal(t.sent[2],
                        "*5\r\n$6\r\nHY.REQ\r\n$1\r\n9\r\n$1\r\n2\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
    /* A read goes plain. */
    answer(&t, ":2\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    begin(&t, "GET", "c");
    assert_true(run(&t));
    assert_string_equal(t.sent[3], "*2\r\n$3\r\nGET\r\n$1\r\nc\r\n");
    hyc_core_free(t.k);
}

/* The reply is lost with the connection: the same (session, seq) goes to the next member. */
static void test_lost_reply_resent_under_the_same_slot(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    assert_int_equal(t.member, 0);
    hyc_closed(t.k, t.now); /* kill -9 of member 0 */
    assert_true(run(&t));
    assert_int_equal(t.member, 1); /* the next member, at once */
    assert_string_equal(t.sent[t.n_sent - 1], INCR1);
    answer(&t, ":1\r\n"); /* applied once: the first execution's reply, replayed */
    assert_false(run(&t));
    char text[64];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    halyard_stats s;
    hyc_stats(t.k, &s);
    assert_int_equal(s.resends, 1);
    hyc_core_free(t.k);
}

/* A re-sent copy refused ("READONLY disk full") says nothing of the first copy, which may
 * have been applied: not the answer; tried again, and at the deadline UNKNOWN. A first copy's
 * refusal is the answer. */
static void test_refused_resend_is_not_the_answer(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 3000);
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    hyc_closed(t.k, t.now); /* the first copy is lost after sending */
    assert_true(run(&t));
    answer(&t, "-READONLY disk full: writes are refused until space is freed; reads go on\r\n");
    assert_true(run(&t)); /* sent again after a backoff step */
    assert_string_equal(t.sent[t.n_sent - 1], INCR1);
    t.now = 5000;
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNKNOWN);
    begin(&t, "INCR", "c"); /* a fresh write refused on its first copy: the refusal stands */
    assert_true(run(&t));
    answer(&t, "-READONLY disk full: writes are refused until space is freed; reads go on\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_REPLY_ERROR);
    hyc_core_free(t.k);
}

/* Without a session, a write whose connection is lost after sending is UNKNOWN, not re-sent;
 * a read is re-sent. */
static void test_without_session_lost_write_is_unknown(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 0, 5000);
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    assert_string_equal(t.sent[0], "*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
    hyc_closed(t.k, t.now);
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNKNOWN);
    assert_non_null(strstr(text, "may or may not"));
    assert_int_equal(t.n_sent, 1);
    begin(&t, "GET", "c");
    assert_true(run(&t));
    hyc_closed(t.k, t.now);
    assert_true(run(&t));
    assert_int_equal(t.n_sent, 3); /* the read again */
    answer(&t, "$1\r\n5\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_string_equal(text, "5");
    hyc_core_free(t.k);
}

/* -MOVED names the member to go to (learned if new); -TRYAGAIN waits a backoff step. */
static void test_moved_and_tryagain(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 0, 5000);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, "-MOVED 3999 127.0.0.1:7003\r\n");
    assert_true(run(&t));
    assert_int_equal(t.member, 2);
    uint64_t before = t.now;
    answer(&t, "-TRYAGAIN no leader is known; the request was not applied\r\n");
    assert_true(run(&t));
    assert_true(t.now >= before + 20 && t.now <= before + 40); /* [40*(1-0.5), 40] */
    answer(&t, "-MOVED 1 10.0.0.9:7009\r\n");
    assert_true(run(&t));
    assert_int_equal(t.member, 3);
    assert_string_equal(hyc_member(t.k, 3)->host, "10.0.0.9");
    answer(&t, "$-1\r\n");
    assert_false(run(&t));
    char text[64];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_core_free(t.k);
}

/* Not applied, and why (issue 15, item 8): -NOQUORUM until the deadline is HALYARD_NO_QUORUM
 * (its partition, have and need parsed from the reply), a quorum rule's -QUORUM is
 * HALYARD_QUORUM_RULE at once (its name, required and actual), and another error is neither. */
static void test_quorum_statuses(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 0, 2000);
    begin(&t, "GET", "k");
    int answers = 0;
    while (run(&t)) {
        answer(&t, "-NOQUORUM 2 1/2 this side of the partition cannot reach a majority\r\n");
        answers++;
    }
    assert_true(answers >= 3); /* tried again (other members, backoff) until the deadline */
    halyard_reply *r = NULL;
    assert_int_equal(hyc_take_result(t.k, &r), HALYARD_NO_QUORUM);
    halyard_quorum_info q;
    assert_int_equal(halyard_quorum_parse(r, &q), 0);
    assert_int_equal(q.rule, 0);
    assert_int_equal(q.partition, 2);
    assert_int_equal(q.have, 1);
    assert_int_equal(q.need, 2);
    halyard_reply_free(r);
    /* The metadata group (an admin command) is named -1. */
    char meta[] = "NOQUORUM -1 2/3 this side of the partition cannot reach a majority";
    halyard_reply m = {.type = HALYARD_REPLY_ERRORMSG, .str = meta, .len = sizeof(meta) - 1};
    assert_int_equal(halyard_quorum_parse(&m, &q), 0);
    assert_int_equal(q.partition, HALYARD_PARTITION_METADATA);
    assert_int_equal(q.have, 2);
    assert_int_equal(q.need, 3);

    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, "-QUORUM dc-pair required=3 actual=2\r\n");
    assert_false(run(&t));
    assert_int_equal(hyc_take_result(t.k, &r), HALYARD_QUORUM_RULE);
    assert_int_equal(halyard_quorum_parse(r, &q), 0);
    assert_int_equal(q.rule, 1);
    assert_string_equal(q.name, "dc-pair");
    assert_int_equal(q.required, 3);
    assert_int_equal(q.actual, 2);
    halyard_reply_free(r);

    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_false(run(&t));
    assert_int_equal(hyc_take_result(t.k, &r), HALYARD_REPLY_ERROR);
    assert_int_equal(halyard_quorum_parse(r, &q), -1);
    halyard_reply_free(r);
    hyc_core_free(t.k);
}

/* Members that refuse: the next at once, then, after a whole round, backoff steps that grow
 * (with jitter) up to the maximum; at the deadline, UNREACHABLE (not applied). */
static void test_unreachable_backs_off_then_not_applied(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 3000);
    t.refuse[0] = t.refuse[1] = t.refuse[2] = 1;
    begin(&t, "SET", "k");
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNREACHABLE);
    assert_non_null(strstr(text, "could not connect"));
    size_t total = t.connects[0] + t.connects[1] + t.connects[2];
    /* Rounds of 3 attempts separated by waits of 20-40, 40-80, 80-160, ... ms: in 3 s, far
     * fewer than one attempt per ms, and more than a handful. */
    assert_true(total >= 12 && total <= 60);
    assert_true(t.connects[0] >= t.connects[2] && t.connects[0] <= t.connects[2] + 1);
    assert_true(t.now >= 4000);
    hyc_core_free(t.k);
}

/* A member that accepts but never answers (SIGSTOP): after attempt_timeout_ms the request
 * goes to the next member under the same slot; at the deadline a sent write is UNKNOWN. */
static void test_unresponsive_member_is_left(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    t.now += 500;
    assert_true(run(&t));
    assert_int_equal(t.member, 1);
    assert_string_equal(t.sent[t.n_sent - 1], INCR1);
    t.now += 500;
    assert_true(run(&t));
    t.now = 6000; /* past the deadline */
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNKNOWN);
    hyc_core_free(t.k);
}

/* On a cluster with partitions a session lives in one partition's store: the first write
 * learns it (its group-0 session is refused for the key, nothing applied), asks CLUSTER INFO
 * how many partitions there are, opens a session in the key's partition (SLOT), and goes
 * under it; a write to another partition opens that one's session at once. */
static void test_sessions_per_partition(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "INCR", "c"); /* slot 7365: partition 1 of 4, group 2 */
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], OPEN_FRAME);
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], INCR1);
    answer(&t, "-ERR session 9 belongs to group 0; this key is in group 2: open a session for "
               "its slot (HY.SESSION OPEN [ttl_ms] SLOT slot)\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n");
    answer(&t, "$40\r\ncluster_state:ok\r\nhalyard_partitions:4\r\n\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1],
                        "*5\r\n$10\r\nHY.SESSION\r\n$4\r\nOPEN\r\n$5\r\n60000\r\n"
                        "$4\r\nSLOT\r\n$4\r\n7365\r\n");
    answer(&t, ":562949953421313\r\n"); /* (2 << 48) + 1 */
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], "*5\r\n$6\r\nHY.REQ\r\n$15\r\n562949953421313\r\n"
                                              "$1\r\n1\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    char text[64];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    begin(&t, "INCR", "a"); /* slot 15495: partition 3, group 4 */
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1],
                        "*5\r\n$10\r\nHY.SESSION\r\n$4\r\nOPEN\r\n$5\r\n60000\r\n"
                        "$4\r\nSLOT\r\n$5\r\n15495\r\n");
    answer(&t, ":1125899906842625\r\n"); /* (4 << 48) + 1 */
    assert_true(run(&t));
    assert_memory_equal(t.sent[t.n_sent - 1], "*5\r\n$6\r\nHY.REQ\r\n$16\r\n1125899906842625\r\n",
                        36);
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_core_free(t.k);
}

/* An expired session: reopened, and the write goes under a new slot (it was not applied).
 * A command the server will not wrap is sent plain, and remembered. */
static void test_expired_session_and_unwrappable_command(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    answer(&t, "-ERR unknown or expired session; the request was not applied\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], OPEN_FRAME);
    answer(&t, ":10\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1],
                        "*5\r\n$6\r\nHY.REQ\r\n$2\r\n10\r\n$1\r\n1\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_int_equal(hyc_session(t.k), 10);
    const char *argv[] = {"CONFIG", "SET", "timeout", "0"};
    for (int round = 0; round < 2; round++) {
        hyc_begin(t.k, 4, argv, NULL, t.now);
        assert_true(run(&t));
        if (round == 0) {
            assert_memory_equal(t.sent[t.n_sent - 1], "*7\r\n$6\r\nHY.REQ", 14);
            answer(&t, "-ERR HY.REQ wraps a data write command (SET, INCR, HSET, ...)\r\n");
            assert_true(run(&t));
        }
        assert_memory_equal(t.sent[t.n_sent - 1], "*4\r\n$6\r\nCONFIG", 14);
        answer(&t, "+OK\r\n");
        assert_false(run(&t));
        assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    }
    hyc_core_free(t.k);
}

/* A plain Redis knows no HY.SESSION: writes go plain from then on. Error replies of commands
 * are REPLY_ERROR with the server's text. */
static void test_plain_redis_and_error_replies(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "SET", "k");
    assert_true(run(&t));
    answer(&t, "-ERR unknown command 'HY.SESSION', with args beginning with: 'OPEN' \r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], "*2\r\n$3\r\nSET\r\n$1\r\nk\r\n");
    answer(&t, "-ERR wrong number of arguments for 'set' command\r\n");
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_REPLY_ERROR);
    assert_string_equal(text, "ERR wrong number of arguments for 'set' command");
    hyc_core_free(t.k);
}

/* Garbage from the server: the connection is dropped; a read is asked again elsewhere. */
static void test_protocol_error_reconnects(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 0, 5000);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, "?garbage\r\n");
    assert_true(run(&t));
    assert_int_equal(t.member, 1);
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    char text[64];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_core_free(t.k);
}

/* The members 7001.. (n of them), short timeouts, no sessions: what the failover, breaker and
 * fail-back tests start from. */
static void test_cfg(halyard_config *cfg, size_t n)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->addrs = addrs3;
    cfg->n_addrs = n;
    cfg->connect_timeout_ms = 100;
    cfg->request_timeout_ms = 10000;
    cfg->attempt_timeout_ms = 500;
    cfg->backoff_initial_ms = 40;
    cfg->backoff_max_ms = 200;
    cfg->backoff_multiplier = 2.0;
}

static const char *secondary_addrs[] = {"127.0.0.2:8001"};

/* The primary becomes unreachable: after cluster_connect_timeout_ms without a connection the
 * client goes to the secondary, with DISCONNECTED, CONNECTED, CHANGED_CLUSTER in that order
 * (seed 002). A write that may have reached the primary ends UNKNOWN; the next goes to the
 * secondary under a new session. With failover_try_count rounds passed, requests fail at
 * once. */
static void test_failover_to_the_next_cluster(void **state)
{
    (void)state;
    struct script t;
    memset(&t, 0, sizeof(t));
    halyard_cluster sec = {"dr", secondary_addrs, 1};
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addrs = addrs3;
    cfg.n_addrs = 2; /* members 0 and 1 */
    cfg.connect_timeout_ms = 100;
    cfg.request_timeout_ms = 10000;
    cfg.attempt_timeout_ms = 500;
    cfg.backoff_initial_ms = 40;
    cfg.backoff_max_ms = 200;
    cfg.backoff_multiplier = 2.0;
    cfg.sessions = 1;
    cfg.session_ttl_ms = 60000;
    cfg.failover = &sec;
    cfg.n_failover = 1;
    cfg.cluster_connect_timeout_ms = 1000;
    cfg.failover_try_count = 2;
    assert_null(hyc_config_check(&cfg));
    t.k = hyc_core_new(&cfg, 3);
    t.now = 1000;
    t.region_info = "$18\r\ncluster_state:ok\r\n\r\n"; /* no priority: the list as given */
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n"); /* the primary's session */
    assert_true(run(&t));
    struct hyc_event ev;
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_CLIENT_CONNECTED);
    assert_string_equal(ev.cluster, "primary");
    /* The primary stops: the INCR was sent, its member is gone, and so is the other. */
    t.refuse[0] = t.refuse[1] = 1;
    hyc_closed(t.k, t.now);
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNKNOWN);
    assert_non_null(strstr(text, "cluster primary"));
    /* It waited the cluster connect timeout, and no more: a backoff step (up to 200 ms here)
     * does not delay the move past it (the first failure came at 1000 or 1001). */
    assert_true(t.now >= 2000 && t.now <= 2001);
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_CLIENT_DISCONNECTED);
    assert_false(hyc_take_event(t.k, &ev));
    assert_string_equal(hyc_cluster_name(t.k), "dr");
    /* The next write: connected to the secondary, a new session there. */
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], OPEN_FRAME);
    assert_string_equal(hyc_member(t.k, t.member)->host, "127.0.0.2");
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_CLIENT_CONNECTED);
    assert_string_equal(ev.cluster, "dr");
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_CLIENT_CHANGED_CLUSTER);
    answer(&t, ":4\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1],
                        "*5\r\n$6\r\nHY.REQ\r\n$1\r\n4\r\n$1\r\n1\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    /* Everything unreachable: back to the primary, then the secondary again: two rounds,
     * then requests fail at once. */
    t.refuse[3] = 1;
    hyc_closed(t.k, t.now);
    begin(&t, "GET", "c");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNREACHABLE);
    assert_non_null(strstr(text, "no cluster could be reached"));
    uint64_t at = t.now;
    begin(&t, "GET", "c");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNREACHABLE);
    assert_int_equal(t.now, at); /* at once */
    hyc_core_free(t.k);
}

#define DEMOTED_ERR                                                                          \
    "-READONLY this cluster was demoted: cluster 'dr' was promoted to primary in its place " \
    "(HALYARD WAN PROMOTE, epoch 3); it takes writes from its links only\r\n"
#define PASSIVE_ERR                                                                               \
    "-READONLY this cluster is a passive WAN target (wan-passive yes): it takes writes from its " \
    "links only\r\n"

static void region_cfg(halyard_config *cfg, halyard_cluster *sec, size_t n_failover)
{
    test_cfg(cfg, 2);
    cfg->sessions = 1;
    cfg->session_ttl_ms = 60000;
    cfg->failover = sec;
    cfg->n_failover = n_failover;
    cfg->cluster_connect_timeout_ms = 1000;
    assert_null(hyc_config_check(cfg));
}

/* A write refused -READONLY by a demoted primary moves the client to the next cluster of its
 * list by itself (a new session there, CHANGED_CLUSTER) and runs there; when every cluster
 * refuses by its role (passive standbys, none promoted yet) it goes round the list with
 * growing waits until the deadline, then says the write was not applied and why. Without a
 * failover cluster the refusal is the answer, at once. */
static void test_region_refusal_moves_to_the_next_cluster(void **state)
{
    (void)state;
    struct script t;
    memset(&t, 0, sizeof(t));
    halyard_cluster sec = {"dr", secondary_addrs, 1};
    halyard_config cfg;
    region_cfg(&cfg, &sec, 1);
    t.k = hyc_core_new(&cfg, 5);
    t.now = 1000;
    t.region_info = "-ERR unknown subcommand 'INFO'\r\n"; /* an older server: the list as given */
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n"); /* the primary's session */
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], INCR1);
    answer(&t, DEMOTED_ERR);
    assert_true(run(&t)); /* at once on the secondary, a session there */
    assert_string_equal(t.sent[t.n_sent - 1], OPEN_FRAME);
    assert_string_equal(hyc_member(t.k, t.member)->host, "127.0.0.2");
    assert_int_equal(t.now, 1000);
    answer(&t, ":4\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1],
                        "*5\r\n$6\r\nHY.REQ\r\n$1\r\n4\r\n$1\r\n1\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    char text[400];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_string_equal(hyc_cluster_name(t.k), "dr");
    struct hyc_event ev;
    int changed = 0;
    while (hyc_take_event(t.k, &ev)) {
        changed += ev.ev == HALYARD_EV_CLIENT_CHANGED_CLUSTER && strcmp(ev.cluster, "dr") == 0;
    }
    assert_int_equal(changed, 1);

    /* Both clusters passive: round the list, waiting between rounds, then NOT_APPLIED. */
    uint64_t start = t.now;
    size_t on_primary = 0, on_secondary = 0;
    begin(&t, "INCR", "c");
    while (run(&t)) {
        const char *sent = t.sent[t.n_sent - 1];
        t.n_sent = 0;
        int primary = strcmp(hyc_member(t.k, t.member)->host, "127.0.0.1") == 0;
        if (strcmp(sent, OPEN_FRAME) == 0 && primary) {
            answer(&t, ":6\r\n"); /* an older server: the session opens, the write is refused */
            continue;
        }
        on_primary += primary;
        on_secondary += !primary;
        /* A passive cluster refuses the session's opening as a write. */
        answer(&t, primary ? DEMOTED_ERR : PASSIVE_ERR);
    }
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_NOT_APPLIED);
    assert_non_null(strstr(text, "READONLY this cluster"));
    assert_true(t.now >= start + 10000);
    assert_true(on_primary >= 3 && on_secondary >= 3);
    /* Waits between rounds: not one attempt per millisecond (backoff up to 200 ms here). */
    assert_true(on_primary + on_secondary <= 2 * (10000 / 20 + 2));
    hyc_core_free(t.k);

    /* One cluster: the refusal is the answer. */
    setup(&t, 1, 5000);
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    answer(&t, DEMOTED_ERR);
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_REPLY_ERROR);
    assert_non_null(strstr(text, "READONLY this cluster was demoted"));
    hyc_core_free(t.k);
}

static const char *third_addrs[] = {"127.0.0.3:8002"};

/* The clusters' region priority (region-failover-priority, published in CLUSTER INFO) orders
 * the client's list: configured [primary, dr, north], the cluster in use says
 * "primary,north,dr", so a write refused by the primary's role goes to north first, not to
 * dr. An answer without a priority, or naming clusters the client does not know, changes
 * nothing else: the named ones first in its order, the others after in the configured one. */
static void test_region_priority_orders_the_cluster_list(void **state)
{
    (void)state;
    struct script t;
    memset(&t, 0, sizeof(t));
    halyard_cluster secs[2] = {{"dr", secondary_addrs, 1}, {"north", third_addrs, 1}};
    halyard_config cfg;
    region_cfg(&cfg, secs, 2);
    t.k = hyc_core_new(&cfg, 5);
    t.now = 1000;
    begin(&t, "INCR", "c");
    assert_true(run(&t)); /* the region query comes first, on the cluster in use */
    assert_string_equal(t.sent[0], CLUSTER_INFO_FRAME);
    assert_string_equal(hyc_member(t.k, t.member)->host, "127.0.0.1");
    static const char info[] = "cluster_state:ok\r\nhalyard_region:primary\r\n"
                               "halyard_region_failover_priority:primary,elsewhere,north,dr\r\n"
                               "halyard_leader_known:1\r\n";
    char reply[256];
    snprintf(reply, sizeof(reply), "$%zu\r\n%s\r\n", sizeof(info) - 1, info);
    answer(&t, reply);
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], OPEN_FRAME); /* still on the primary */
    assert_string_equal(hyc_cluster_name(t.k), "primary");
    halyard_stats st;
    hyc_stats(t.k, &st);
    assert_int_equal(st.region_reorders, 1);
    answer(&t, ":9\r\n");
    assert_true(run(&t));
    answer(&t, DEMOTED_ERR);
    /* At once to north, the next by priority (dr is next in the configured list). */
    assert_true(run(&t));
    assert_string_equal(hyc_member(t.k, t.member)->host, "127.0.0.3");
    assert_string_equal(hyc_cluster_name(t.k), "north");
    /* North is asked too; an older server answers without a priority: the order stays. */
    assert_string_equal(t.sent[t.n_sent - 1], CLUSTER_INFO_FRAME);
    answer(&t, "$18\r\ncluster_state:ok\r\n\r\n");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], OPEN_FRAME);
    answer(&t, ":4\r\n");
    assert_true(run(&t));
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    char text[256];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_stats(t.k, &st);
    assert_int_equal(st.region_reorders, 1);
    /* North refuses too (demoted in turn): dr, the last of the priority, comes next. */
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, DEMOTED_ERR);
    assert_true(run(&t));
    assert_string_equal(hyc_cluster_name(t.k), "dr");
    assert_string_equal(hyc_member(t.k, t.member)->host, "127.0.0.2");
    hyc_core_free(t.k);
}

/* On the secondary, the client probes the primary at request starts; once the probes have
 * succeeded for failback_after_ms it moves back (CLIENT_CHANGED_CLUSTER, a new session). A
 * failed probe restarts the hysteresis. */
static void test_failback_after_hysteresis(void **state)
{
    (void)state;
    struct script t;
    memset(&t, 0, sizeof(t));
    halyard_cluster sec = {"dr", secondary_addrs, 1};
    halyard_config cfg;
    test_cfg(&cfg, 2);
    cfg.failover = &sec;
    cfg.n_failover = 1;
    cfg.cluster_connect_timeout_ms = 1000;
    cfg.failback_after_ms = 3000;
    assert_null(hyc_config_check(&cfg));
    t.k = hyc_core_new(&cfg, 3);
    t.now = 1000;
    /* Each cluster says the priority of the list as configured: nothing moves. */
    t.region_info = "$82\r\ncluster_state:ok\r\nhalyard_region:dr\r\n"
                    "halyard_region_failover_priority:primary,dr\r\n\r\n";
    char text[256];
    struct hyc_event ev;
    /* The primary is down from the start: the client ends on the secondary. */
    t.refuse[0] = t.refuse[1] = 1;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(hyc_cluster_name(t.k), "dr");
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    while (hyc_take_event(t.k, &ev)) {
    }
    /* Requests every 500 ms. While the primary refuses, probes fail and nothing moves. */
    for (int i = 0; i < 6; i++) {
        t.now += 500;
        begin(&t, "GET", "k");
        assert_true(run(&t));
        answer(&t, "$1\r\nv\r\n");
        assert_false(run(&t));
        assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    }
    assert_true(t.probes[0] + t.probes[1] >= 2);
    assert_string_equal(hyc_cluster_name(t.k), "dr");
    /* The primary is back: it takes failback_after_ms of successful probes to move. */
    t.refuse[0] = t.refuse[1] = 0;
    uint64_t back_at = t.now;
    size_t before = t.connects[0] + t.connects[1];
    while (strcmp(hyc_cluster_name(t.k), "dr") == 0) {
        assert_true(t.now < back_at + 6000);
        t.now += 500;
        begin(&t, "GET", "k");
        assert_true(run(&t));
        answer(&t, "$1\r\nv\r\n");
        assert_false(run(&t));
        assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    }
    assert_true(t.now >= back_at + 3000);
    /* The request that saw the move went to the primary. */
    assert_int_equal(t.connects[0] + t.connects[1], before + 1);
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_CLIENT_CHANGED_CLUSTER);
    assert_string_equal(ev.cluster, "primary");
    halyard_stats st;
    hyc_stats(t.k, &st);
    assert_int_equal(st.failbacks, 1);
    hyc_core_free(t.k);
}

/* events_poll_ms: the client asks its member for cluster events at request starts, at most
 * that often; the first answer only sets the cursor, later ones become listener events. */
static void test_membership_events(void **state)
{
    (void)state;
    struct script t;
    memset(&t, 0, sizeof(t));
    halyard_config cfg;
    test_cfg(&cfg, 3);
    cfg.events_poll_ms = 1000;
    t.k = hyc_core_new(&cfg, 5);
    t.now = 1000;
    char text[64];
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1],
                        "*4\r\n$7\r\nHALYARD\r\n$6\r\nEVENTS\r\n$5\r\nCOUNT\r\n$1\r\n1\r\n");
    const char *e5 = "{\"id\":5,\"time\":1,\"type\":\"MEMBER_ALIVE\",\"member\":\"n1\"}";
    char first[128];
    snprintf(first, sizeof(first), "*1\r\n$%zu\r\n%s\r\n", strlen(e5), e5);
    answer(&t, first);
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    struct hyc_event ev;
    while (hyc_take_event(t.k, &ev)) {
        assert_int_not_equal(ev.ev, HALYARD_EV_MEMBER_ALIVE); /* history is not replayed */
    }
    /* Within the poll interval: no poll. */
    t.now += 500;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    /* After it: SINCE the cursor; the new events are raised in order. */
    t.now += 600;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_non_null(strstr(t.sent[t.n_sent - 1], "$5\r\nSINCE\r\n$1\r\n5\r\n"));
    const char *e6 = "{\"id\":6,\"time\":2,\"type\":\"MEMBER_SUSPECT\",\"member\":\"n2\"}";
    const char *e7 = "{\"id\":7,\"time\":3,\"type\":\"LEADER_CHANGED\",\"partition\":0,"
                     "\"group\":0,\"leader\":\"n3\",\"term\":4}";
    const char *e8 = "{\"id\":8,\"time\":4,\"type\":\"QUORUM_LOST\",\"partition\":2,"
                     "\"group\":3,\"term\":4}";
    char reply[512];
    snprintf(reply, sizeof(reply), "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(e6),
             e6, strlen(e7), e7, strlen(e8), e8);
    answer(&t, reply);
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_MEMBER_SUSPECT);
    assert_string_equal(ev.member, "n2");
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_LEADER_CHANGED);
    assert_string_equal(ev.member, "n3");
    assert_true(hyc_take_event(t.k, &ev));
    assert_int_equal(ev.ev, HALYARD_EV_QUORUM_LOST);
    assert_string_equal(ev.member, "partition=2");
    assert_false(hyc_take_event(t.k, &ev));
    /* A server without HALYARD EVENTS: polling stops. */
    t.now += 1000;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, "-ERR unknown subcommand 'EVENTS'\r\n");
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    size_t sent = t.n_sent;
    t.now += 5000;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_int_equal(t.n_sent, sent + 1); /* only the GET */
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_core_free(t.k);
}

/* Members that keep failing are left out while their breaker is open, tried again once it
 * half-opens, and opened again at once when that probe fails. */
static void test_circuit_breaker(void **state)
{
    (void)state;
    struct script t;
    memset(&t, 0, sizeof(t));
    halyard_config cfg;
    test_cfg(&cfg, 3);
    cfg.backoff_max_ms = 1000;
    cfg.breaker_failures = 2;
    cfg.breaker_cooldown_ms = 1000;
    assert_null(hyc_config_check(&cfg));
    t.k = hyc_core_new(&cfg, 7);
    t.now = 1000;
    t.refuse[0] = t.refuse[1] = 1;
    char text[64];
    halyard_stats st;

    /* A: 7001 and 7002 refuse once each (one failure: closed), 7003 answers. */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_int_equal(run(&t), 0);
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_int_equal(t.connects[0], 1);
    assert_int_equal(t.connects[1], 1);

    /* B: 7003's connection is lost; 7001 and 7002 refuse again: both breakers open. */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    hyc_closed(t.k, t.now);
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_int_equal(run(&t), 0);
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_int_equal(t.connects[0], 2);
    assert_int_equal(t.connects[1], 2);
    hyc_stats(t.k, &st);
    assert_int_equal(st.breaker_opens, 2);

    /* C: lost again: the open members are skipped, 7003 is tried again at once. */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    hyc_closed(t.k, t.now);
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_int_equal(run(&t), 0);
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_int_equal(t.connects[0], 2);
    assert_int_equal(t.connects[1], 2);
    hyc_stats(t.k, &st);
    assert_true(st.breaker_skips >= 2);

    /* D: after the cool-down each is tried once (half-open); still refusing, each opens again
     * at its first failure. */
    t.now += 1000;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    hyc_closed(t.k, t.now);
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_int_equal(run(&t), 0);
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_int_equal(t.connects[0], 3);
    assert_int_equal(t.connects[1], 3);
    hyc_stats(t.k, &st);
    assert_int_equal(st.breaker_opens, 4);

    /* E: 7001 is back; after the cool-down its probe succeeds and closes its breaker. */
    t.now += 1000;
    t.refuse[0] = 0;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    hyc_closed(t.k, t.now);
    assert_true(run(&t));
    assert_int_equal(t.member, 0);
    answer(&t, "$1\r\nv\r\n");
    assert_int_equal(run(&t), 0);
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_core_free(t.k);
}

/* Writes text to a fresh temporary file; its path goes to path (removed by the caller). */
static void temp_file(const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/hy-client-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config_load(void **state)
{
    (void)state;
    char path[64], err[300];
    halyard_config cfg;
    temp_file("cluster-name: blue\n"
              "addresses: [127.0.0.1:7379, \"node2:7380\"]\n"
              "request-timeout-ms: 3000\n"
              "sessions: false\n"
              "username: app\n"
              "password: s3cret\n"
              "connection-retry:\n"
              "  initial-backoff-ms: 10\n"
              "  max-backoff-ms: 800\n"
              "  multiplier: 1.5\n"
              "  jitter: 0.2\n"
              "  cluster-connect-timeout-ms: 2500\n"
              "circuit-breaker: {failures: 5, cooldown-ms: 700}\n"
              "tls: {enabled: true, ca-file: /etc/ca.crt, server-name: halyard.local}\n"
              "read-from: nearest\n"
              "load-balancer: weighted\n"
              "weights: [3, 1]\n"
              "max-inflight-per-member: 40\n"
              "server-events: false\n"
              "async-threads: 8\n"
              "max-outstanding: 100\n"
              "pipeline-max: 8\n"
              "hedge-reads: true\n"
              "hedge-after-ms: 15\n"
              "heartbeat-interval-ms: 500\n"
              "heartbeat-timeout-ms: 1500\n"
              "failover:\n"
              "  try-count: 3\n"
              "  clusters:\n"
              "    - name: green\n"
              "      addresses: [10.0.0.9:7379]\n",
              path, sizeof(path));
    assert_int_equal(halyard_config_load(path, &cfg, err, sizeof(err)), 0);
    unlink(path);
    assert_string_equal(cfg.cluster_name, "blue");
    assert_int_equal(cfg.n_addrs, 2);
    assert_string_equal(cfg.addrs[1], "node2:7380");
    assert_int_equal(cfg.request_timeout_ms, 3000);
    assert_int_equal(cfg.connect_timeout_ms, 1000); /* a default kept */
    assert_int_equal(cfg.sessions, 0);
    assert_string_equal(cfg.username, "app");
    assert_int_equal(cfg.backoff_initial_ms, 10);
    assert_int_equal(cfg.backoff_max_ms, 800);
    assert_true(cfg.backoff_multiplier == 1.5 && cfg.backoff_jitter == 0.2);
    assert_int_equal(cfg.cluster_connect_timeout_ms, 2500);
    assert_int_equal(cfg.breaker_failures, 5);
    assert_int_equal(cfg.breaker_cooldown_ms, 700);
    assert_int_equal(cfg.tls, 1);
    assert_string_equal(cfg.tls_server_name, "halyard.local");
    assert_int_equal(cfg.read_from, HALYARD_READ_NEAREST);
    assert_int_equal(cfg.load_balancer, HALYARD_LB_WEIGHTED);
    assert_int_equal(cfg.n_weights, 2);
    assert_int_equal(cfg.weights[0], 3);
    assert_int_equal(cfg.weights[1], 1);
    assert_int_equal(cfg.max_inflight_per_member, 40);
    assert_int_equal(cfg.server_events, 0);
    assert_int_equal(cfg.async_threads, 8);
    assert_int_equal(cfg.max_outstanding, 100);
    assert_int_equal(cfg.pipeline_max, 8);
    assert_int_equal(cfg.hedge_reads, 1);
    assert_int_equal(cfg.hedge_after_ms, 15);
    assert_int_equal(cfg.heartbeat_interval_ms, 500);
    assert_int_equal(cfg.heartbeat_timeout_ms, 1500);
    assert_int_equal(cfg.failover_try_count, 3);
    assert_int_equal(cfg.n_failover, 1);
    assert_string_equal(cfg.failover[0].name, "green");
    assert_string_equal(cfg.failover[0].addrs[0], "10.0.0.9:7379");
    assert_null(hyc_config_check(&cfg));
    halyard_config_release(&cfg);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"addresses: [a:1]\nrequest-timeout: 5\n", "line 2: unknown key: request-timeout"},
        {"addresses: [a:1]\nconnect-timeout-ms: -4\n", "line 2: expected a whole number"},
        {"addresses: a:1\n", "line 1: expected a list of host:port"},
        {"tls: {enabled: maybe}\n", "expected true or false: enabled"},
        {"failover: {clusters: [{name: x, adresses: [b:2]}]}\n", "unknown key in a failover"},
        {"addresses: [a:1\n", "line 2"},
        {"read-from: followers\n", "line 1: expected leader, replica or nearest: read-from"},
        {"load-balancer: fastest\n", "expected round-robin, random, least-outstanding or"},
        {"weights: [1, -2]\n", "line 1: expected a whole number: weights"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        temp_file(bad[i].text, path, sizeof(path));
        assert_int_equal(halyard_config_load(path, &cfg, err, sizeof(err)), -1);
        unlink(path);
        if (strstr(err, bad[i].want) == NULL) {
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].want);
        }
        assert_null(cfg.loaded_);
    }
    assert_int_equal(halyard_config_load("/nonexistent/halyard.yaml", &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
}

static void test_config_check(void **state)
{
    (void)state;
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_non_null(hyc_config_check(&cfg));
    const char *bad[] = {"nohostport"};
    cfg.addrs = bad;
    cfg.n_addrs = 1;
    assert_non_null(hyc_config_check(&cfg));
    halyard_config_init(&cfg);
    cfg.addrs = addrs3;
    cfg.n_addrs = 3;
    assert_null(hyc_config_check(&cfg));
    static const uint32_t w2[] = {1, 2};
    cfg.weights = w2;
    cfg.n_weights = 2; /* one per address */
    assert_non_null(strstr(hyc_config_check(&cfg), "weights"));
    cfg.weights = NULL;
    cfg.n_weights = 0;
    cfg.load_balancer = HALYARD_LB_WEIGHTED + 1;
    assert_non_null(hyc_config_check(&cfg));
}

/* -BUSY (the server shed the request: not applied) and -LOADING are waited out with backoff and
 * the request sent again, the waits growing; the read then gets its answer. */
static void test_busy_and_loading_back_off(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    uint64_t t0 = t.now;
    answer(&t, "-BUSY queue full\r\n");
    assert_true(run(&t));
    uint64_t first_wait = t.now - t0;
    assert_in_range(first_wait, 20, 40); /* backoff_initial 40, jitter 0.5 */
    assert_string_equal(t.sent[t.n_sent - 1], "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    t0 = t.now;
    answer(&t, "-LOADING loading the dataset\r\n");
    assert_true(run(&t));
    assert_in_range(t.now - t0, 40, 80); /* the next step, doubled */
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    char text[64];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_string_equal(text, "v");
    halyard_stats st;
    hyc_stats(t.k, &st);
    assert_int_equal(st.server_backoffs, 2);
    assert_int_equal(t.n_sent, 3);
    hyc_core_free(t.k);
}

/* Cancelling: a read (or a write not yet sent) ends CANCELLED; a write already sent ends
 * UNKNOWN, and its connection is closed so that its late answer is never read as another's. */
static void test_cancel(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 0, 5000);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    hyc_cancel(t.k, t.now);
    struct hyc_action a;
    hyc_next(t.k, t.now, &a);
    assert_int_equal(a.what, HYC_DO_CLOSE);
    assert_false(run(&t));
    char text[128];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_CANCELLED);
    begin(&t, "SET", "k");
    hyc_cancel(t.k, t.now); /* before anything was sent */
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_CANCELLED);
    begin(&t, "SET", "k");
    assert_true(run(&t)); /* sent */
    hyc_cancel(t.k, t.now);
    hyc_next(t.k, t.now, &a);
    assert_int_equal(a.what, HYC_DO_CLOSE);
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_UNKNOWN);
    assert_non_null(strstr(text, "cancelled after the write was sent"));
    halyard_stats st;
    hyc_stats(t.k, &st);
    assert_int_equal(st.cancelled, 3);
    hyc_core_free(t.k);
}

static void setup_reads(struct script *t, int read_from, int balancer, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addrs = addrs3;
    cfg.n_addrs = 3;
    cfg.connect_timeout_ms = 100;
    cfg.request_timeout_ms = 5000;
    cfg.attempt_timeout_ms = 500;
    cfg.backoff_initial_ms = 40;
    cfg.backoff_max_ms = 1000;
    cfg.backoff_multiplier = 2.0;
    cfg.smart_routing = 1;
    cfg.topology_refresh_ms = 1000;
    cfg.read_from = read_from;
    cfg.load_balancer = balancer;
    assert_null(hyc_config_check(&cfg));
    t->k = hyc_core_new(&cfg, seed);
    t->now = 1000;
}

/* One partition led by 7001, replicated on 7002 and 7003. */
#define SLOTS_MAP                                                                             \
    "*1\r\n*5\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7001\r\n*2\r\n$9\r\n127.0.0.1\r\n" \
    ":7002\r\n*2\r\n$9\r\n127.0.0.1\r\n:7003\r\n"
#define SLOTS_FRAME    "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n"
#define READONLY_FRAME "*1\r\n$8\r\nREADONLY\r\n"
#define GET_K          "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"

/* Runs a read on a replica connection to its answer: READONLY first on a new connection. */
static void read_on_replica(struct script *t, int new_connection)
{
    assert_true(run(t));
    if (strcmp(t->sent[t->n_sent - 1], SLOTS_FRAME) == 0) { /* re-read after a loss */
        answer(t, SLOTS_MAP);
        assert_true(run(t));
    }
    if (new_connection) {
        assert_string_equal(t->sent[t->n_sent - 1], READONLY_FRAME);
        answer(t, "+OK\r\n");
        assert_true(run(t));
    }
    assert_string_equal(t->sent[t->n_sent - 1], GET_K);
    answer(t, "$1\r\nv\r\n");
    assert_false(run(t));
    char text[16];
    assert_int_equal(result(t, text, sizeof(text)), HALYARD_OK);
    t->n_sent = 0;
}

/* read_from REPLICA: reads go over READONLY connections to a replica of the key's partition
 * that the round robin picks once the slot map is known (7003, not 7001 where the client began),
 * staying on it while it is eligible; after a lost connection the next member takes over. A
 * write goes to the leader, and the next read stays there (the leader is a replica too). */
static void test_read_replica_round_robin(void **state)
{
    (void)state;
    struct script t;
    setup_reads(&t, HALYARD_READ_REPLICA, HALYARD_LB_ROUND_ROBIN, 8); /* rr starts at 8 */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[0], SLOTS_FRAME);
    answer(&t, SLOTS_MAP);
    read_on_replica(&t, 1);
    assert_int_equal(t.member, 2); /* cand[8 % 3] */
    begin(&t, "GET", "k");
    read_on_replica(&t, 0); /* it stays */
    assert_int_equal(t.member, 2);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    t.now += 1;
    hyc_closed(t.k, t.now); /* the connection is lost with the read */
    read_on_replica(&t, 1);
    assert_int_equal(t.member, 0); /* the next after 7003 */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    hyc_closed(t.k, t.now);
    read_on_replica(&t, 1);
    assert_int_equal(t.member, 1);
    begin(&t, "SET", "k");
    assert_true(run(&t));
    answer(&t, "+OK\r\n");
    assert_false(run(&t));
    char text[16];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_int_equal(t.member, 0); /* the leader */
    begin(&t, "GET", "k");
    read_on_replica(&t, 1); /* a new connection: READONLY again; the leader is eligible */
    assert_int_equal(t.member, 0);
    halyard_stats st;
    hyc_stats(t.k, &st);
    assert_int_equal(st.replica_reads, 7); /* 5 reads, 2 of them sent twice */
    hyc_core_free(t.k);
}

/* Answers the frame in flight after `ms` of simulated time (a member's round trip). */
static void answer_after(struct script *t, uint64_t ms, const char *resp)
{
    t->now += ms;
    answer(t, resp);
}

/* read_from NEAREST: each member's round trip is measured on the client's own requests (7001:
 * 5 ms, 7002: 30 ms, 7003: 10 ms); unmeasured members are tried first, and at each topology
 * refresh the read moves to the lowest average: 7001. */
static void test_read_nearest(void **state)
{
    (void)state;
    struct script t;
    setup_reads(&t, HALYARD_READ_NEAREST, HALYARD_LB_ROUND_ROBIN, 1);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer_after(&t, 5, SLOTS_MAP); /* 7001: 5 ms */
    assert_true(run(&t));
    assert_int_equal(t.member, 1); /* unmeasured 7002 before 7001's 5 ms */
    answer_after(&t, 30, "+OK\r\n");
    assert_true(run(&t));
    answer_after(&t, 30, "$1\r\nv\r\n");
    assert_false(run(&t));
    char text[16];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    t.n_sent = 0;
    t.now += 1000; /* the map is read again: a new pick */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], SLOTS_FRAME);
    answer_after(&t, 30, SLOTS_MAP);
    assert_true(run(&t));
    assert_int_equal(t.member, 2); /* unmeasured 7003 */
    answer_after(&t, 10, "+OK\r\n");
    assert_true(run(&t));
    answer_after(&t, 10, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    t.n_sent = 0;
    t.now += 1000;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer_after(&t, 10, SLOTS_MAP);
    read_on_replica(&t, 1);
    assert_int_equal(t.member, 0); /* 5 ms: the nearest */
    hyc_core_free(t.k);
}

/* A core for the balancer tests: read_from and balancer as given, a bound on in-flight
 * requests per member, weights (NULL: none), counting into the shared table `load`. */
static void setup_lb(struct script *t, int read_from, int balancer, uint64_t seed, uint32_t bound,
                     const uint32_t *weights, struct hyc_load *load)
{
    memset(t, 0, sizeof(*t));
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addrs = addrs3;
    cfg.n_addrs = 3;
    cfg.connect_timeout_ms = 100;
    cfg.request_timeout_ms = 5000;
    cfg.attempt_timeout_ms = 500;
    cfg.backoff_initial_ms = 40;
    cfg.backoff_max_ms = 1000;
    cfg.backoff_multiplier = 2.0;
    cfg.sessions = 1;
    cfg.session_ttl_ms = 60000;
    cfg.smart_routing = 1;
    cfg.topology_refresh_ms = 1000;
    cfg.read_from = read_from;
    cfg.load_balancer = balancer;
    cfg.max_inflight_per_member = bound;
    cfg.breaker_failures = 3;
    cfg.breaker_cooldown_ms = 5000;
    cfg.weights = weights;
    cfg.n_weights = weights != NULL ? 3 : 0;
    assert_null(hyc_config_check(&cfg));
    t->k = hyc_core_new(&cfg, seed);
    hyc_set_load(t->k, load);
    t->now = 1000;
}

/* Runs a GET k on a replica up to the moment it is in flight (the slot map and READONLY
 * answered on the way when asked for): its member is t->member. */
static void read_in_flight(struct script *t)
{
    begin(t, "GET", "k");
    assert_true(run(t));
    if (strcmp(t->sent[t->n_sent - 1], SLOTS_FRAME) == 0) {
        answer(t, SLOTS_MAP);
        assert_true(run(t));
    }
    if (strcmp(t->sent[t->n_sent - 1], READONLY_FRAME) == 0) {
        answer(t, "+OK\r\n");
        assert_true(run(t));
    }
    assert_string_equal(t->sent[t->n_sent - 1], GET_K);
}

static void finish_read(struct script *t)
{
    answer(t, "$1\r\nv\r\n");
    assert_false(run(t));
    char text[16];
    assert_int_equal(result(t, text, sizeof(text)), HALYARD_OK);
    t->n_sent = 0;
}

static uint32_t load_at(struct hyc_load *l, struct script *t, size_t m)
{
    return hyc_load_get(l, hyc_member(t->k, m));
}

/* LEAST_OUTSTANDING: cores sharing one client's in-flight counts spread over the members with
 * the fewest requests in flight (ties in turn): three reads held in flight land on 7001, 7002,
 * 7003; an answer takes its count back. A core whose member has LOR_MARGIN (2) more in flight
 * than another eligible one moves there at its next request; with one more, it stays. */
static void test_balancer_least_outstanding(void **state)
{
    (void)state;
    struct hyc_load *load = calloc(1, sizeof(*load));
    struct script t[5];
    for (size_t i = 0; i < 3; i++) {
        setup_lb(&t[i], HALYARD_READ_REPLICA, HALYARD_LB_LEAST_OUTSTANDING, 0, 0, NULL, load);
        read_in_flight(&t[i]);
        assert_int_equal(t[i].member, i);
    }
    for (size_t m = 0; m < 3; m++) {
        assert_int_equal(load_at(load, &t[0], m), 1);
    }
    finish_read(&t[0]);
    assert_int_equal(load_at(load, &t[0], 0), 0);
    finish_read(&t[1]);
    finish_read(&t[2]);
    /* Two round-robin cores (seed 0: 7001 first) hold two reads in flight on 7001; t[0], on
     * 7001 too, sees 7002 and 7003 with two fewer: it leaves for the least loaded. */
    for (size_t i = 3; i < 5; i++) {
        setup_lb(&t[i], HALYARD_READ_REPLICA, HALYARD_LB_ROUND_ROBIN, 0, 0, NULL, load);
        read_in_flight(&t[i]);
        assert_int_equal(t[i].member, 0);
    }
    assert_int_equal(load_at(load, &t[0], 0), 2);
    read_in_flight(&t[1]); /* 7002: one in flight there now; it stays (no margin over 7003) */
    assert_int_equal(t[1].member, 1);
    read_in_flight(&t[0]);
    assert_int_equal(t[0].member, 2); /* 7003: none in flight (7002 has one) */
    assert_int_equal(load_at(load, &t[0], 2), 1);
    hyc_closed(t[0].k, t[0].now); /* a lost connection takes its count back too */
    assert_int_equal(load_at(load, &t[0], 2), 0);
    finish_read(&t[1]);
    finish_read(&t[3]);
    finish_read(&t[4]);
    for (size_t m = 0; m < 3; m++) {
        assert_int_equal(load_at(load, &t[1], m), 0);
    }
    for (size_t i = 0; i < 5; i++) {
        hyc_core_free(t[i].k);
    }
    free(load);
}

/* WEIGHTED: smooth weighted round robin over the replicas, 3:1:0 — over 8 picks (one per
 * topology refresh) 7001 six times, 7002 twice, interleaved (never three 7001 in a row), and
 * 7003 (weight 0) never while another is eligible; with 7001 and 7002 out (their breakers
 * open after failures), 7003 takes the reads. */
static void test_balancer_weighted(void **state)
{
    (void)state;
    static const uint32_t w[3] = {3, 1, 0};
    struct hyc_load *load = calloc(1, sizeof(*load));
    struct script t;
    setup_lb(&t, HALYARD_READ_REPLICA, HALYARD_LB_WEIGHTED, 0, 0, w, load);
    size_t picks[3] = {0, 0, 0}, run_of_first = 0, longest = 0;
    for (int i = 0; i < 8; i++) {
        read_in_flight(&t);
        picks[t.member]++;
        run_of_first = t.member == 0 ? run_of_first + 1 : 0;
        longest = run_of_first > longest ? run_of_first : longest;
        finish_read(&t);
        t.now += 1000; /* the next request reads the map again: a new pick */
    }
    assert_int_equal(picks[0], 6);
    assert_int_equal(picks[1], 2);
    assert_int_equal(picks[2], 0);
    assert_true(longest <= 3);
    hyc_core_free(t.k);
    /* Weight 0 is still a replica: the only one left eligible takes the read. */
    setup_lb(&t, HALYARD_READ_REPLICA, HALYARD_LB_WEIGHTED, 0, 0, w, load);
    read_in_flight(&t);
    finish_read(&t);
    struct hyc_member m0 = *hyc_member(t.k, 0), m1 = *hyc_member(t.k, 1);
    hyc_member_down(t.k, &m0, t.now); /* as the heartbeats report it: breaker open */
    hyc_member_down(t.k, &m1, t.now);
    read_in_flight(&t);
    assert_int_equal(t.member, 2);
    finish_read(&t);
    hyc_core_free(t.k);
    free(load);
}

/* max_inflight_per_member: with one request of the client in flight on 7001 (the leader), a
 * second core's read of a key 7001 leads fails fast BUSY, nothing sent (not applied), counted;
 * a replica read goes to another replica instead; once the first is answered the bound has
 * room again. A write re-sent under its session slot is never shed (an earlier copy may have
 * run), and the pipelined path counts too. */
static void test_member_inflight_bound(void **state)
{
    (void)state;
    struct hyc_load *load = calloc(1, sizeof(*load));
    struct script a, b, r;
    setup_lb(&a, HALYARD_READ_REPLICA, HALYARD_LB_ROUND_ROBIN, 0, 1, NULL, load);
    read_in_flight(&a);
    assert_int_equal(a.member, 0);
    setup_lb(&b, HALYARD_READ_LEADER, HALYARD_LB_ROUND_ROBIN, 0, 1, NULL, load);
    begin(&b, "GET", "k");
    assert_true(run(&b));
    assert_string_equal(b.sent[0], SLOTS_FRAME);
    answer(&b, SLOTS_MAP);
    assert_false(run(&b)); /* done at once: shed */
    char text[200];
    assert_int_equal(result(&b, text, sizeof(text)), HALYARD_BUSY);
    assert_non_null(strstr(text, "max_inflight_per_member"));
    assert_int_equal(b.n_sent, 1); /* the GET never went out */
    halyard_stats st;
    hyc_stats(b.k, &st);
    assert_int_equal(st.member_sheds, 1);
    assert_int_equal(st.shed, 1);
    assert_int_equal(load_at(load, &a, 0), 1);
    setup_lb(&r, HALYARD_READ_REPLICA, HALYARD_LB_ROUND_ROBIN, 0, 1, NULL, load);
    read_in_flight(&r); /* 7001 is full: the round robin's next eligible replica */
    assert_int_equal(r.member, 1);
    finish_read(&r);
    finish_read(&a);
    assert_int_equal(load_at(load, &a, 0), 0);
    begin(&b, "GET", "k");
    assert_true(run(&b));
    assert_string_equal(b.sent[b.n_sent - 1], GET_K);
    assert_int_equal(load_at(load, &a, 0), 1);
    answer(&b, "$1\r\nv\r\n");
    assert_false(run(&b));
    assert_int_equal(result(&b, text, sizeof(text)), HALYARD_OK);
    assert_int_equal(load_at(load, &a, 0), 0);
    /* A write whose first copy was lost after sending goes again even to a full member. */
    begin(&b, "INCR", "c");
    assert_true(run(&b));
    answer(&b, ":9\r\n"); /* the session */
    assert_true(run(&b));
    assert_int_equal(load_at(load, &a, 0), 1); /* the INCR, in flight on 7001 */
    b.now += 1;
    hyc_closed(b.k, b.now); /* lost after sending: maybe applied */
    assert_int_equal(load_at(load, &a, 0), 0);
    assert_true(run(&b)); /* 7002, reading the map again */
    assert_string_equal(b.sent[b.n_sent - 1], SLOTS_FRAME);
    read_in_flight(&a); /* 7001 full again: a's read */
    assert_int_equal(a.member, 0);
    answer(&b, SLOTS_MAP); /* 7001 leads: the write goes back there, full or not */
    assert_true(run(&b));
    assert_int_equal(b.member, 0);
    assert_non_null(strstr(b.sent[b.n_sent - 1], "INCR"));
    assert_int_equal(load_at(load, &a, 0), 2);
    answer(&b, ":1\r\n");
    assert_false(run(&b));
    assert_int_equal(result(&b, text, sizeof(text)), HALYARD_OK);
    finish_read(&a);
    assert_int_equal(load_at(load, &a, 0), 0);
    /* Pipelined: each request counts until its answer; the bound stops the pipeline. */
    struct hy_buf out;
    hy_buf_init(&out);
    struct hyc_pipe_slot slot[2];
    const char *get[] = {"GET", "k"};
    assert_true(hyc_pipe_add(b.k, 2, get, NULL, b.now, &out, &slot[0]));
    assert_int_equal(load_at(load, &a, b.member), 1);
    assert_false(hyc_pipe_add(b.k, 2, get, NULL, b.now, &out, &slot[1])); /* full */
    size_t used = 0;
    halyard_status pst;
    halyard_reply *rep = NULL;
    assert_int_equal(
        hyc_pipe_answer(b.k, &slot[0], (const uint8_t *)"$1\r\nv\r\n", 7, &used, &pst, &rep), 1);
    halyard_reply_free(rep);
    assert_int_equal(load_at(load, &a, b.member), 0);
    assert_true(hyc_pipe_add(b.k, 2, get, NULL, b.now, &out, &slot[1]));
    hyc_pipe_lost(b.k, "the connection was lost", 1, b.now);
    assert_int_equal(load_at(load, &a, 0), 0);
    assert_int_equal(load_at(load, &a, 1), 0);
    hy_buf_free(&out);
    hyc_core_free(a.k);
    hyc_core_free(b.k);
    hyc_core_free(r.k);
    free(load);
}

/* Pushed cluster events: their JSON (as a node publishes it on __halyard__:events) becomes a
 * listener event, named as the listeners name them; types listeners do not get are
 * not events. A topology push makes the next request read the slot map first (not waiting
 * for topology_refresh_ms); the same generation again does nothing. */
static void test_pushed_events(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int known;
        halyard_event ev;
        const char *member;
    } cases[] = {
        {"{\"id\":7,\"time\":1,\"type\":\"LEADER_CHANGED\",\"partition\":0,\"group\":1,"
         "\"leader\":\"n3\",\"term\":7}",
         1, HALYARD_EV_LEADER_CHANGED, "n3"},
        {"{\"id\":8,\"time\":2,\"type\":\"MEMBER_SUSPECT\",\"member\":\"n1\"}", 1,
         HALYARD_EV_MEMBER_SUSPECT, "n1"},
        {"{\"id\":9,\"time\":3,\"type\":\"MEMBER_FAILED\",\"member\":\"n1\",\"downMs\":3009}", 1,
         HALYARD_EV_MEMBER_FAILED, "n1"},
        {"{\"id\":10,\"time\":4,\"type\":\"QUORUM_LOST\",\"partition\":2,\"group\":3,\"term\":4}",
         1, HALYARD_EV_QUORUM_LOST, "partition=2"},
        {"{\"id\":11,\"time\":5,\"type\":\"QUORUM_REGAINED\",\"partition\":-1,\"group\":0,"
         "\"leader\":\"n2\",\"term\":5}",
         1, HALYARD_EV_QUORUM_REGAINED, "partition=-1"},
        {"{\"id\":12,\"time\":6,\"type\":\"DISK_FULL\"}", 0, HALYARD_EV_STARTING, ""},
        {"not json at all", 0, HALYARD_EV_STARTING, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        halyard_event ev = HALYARD_EV_STARTING;
        char who[64] = "";
        int known = hyc_event_parse(cases[i].json, strlen(cases[i].json), &ev, who, sizeof(who));
        assert_int_equal(known, cases[i].known);
        if (known) {
            assert_int_equal(ev, cases[i].ev);
            assert_string_equal(who, cases[i].member);
        }
    }
    struct script t;
    setup_reads(&t, HALYARD_READ_LEADER, HALYARD_LB_ROUND_ROBIN, 0);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[0], SLOTS_FRAME);
    answer(&t, SLOTS_MAP);
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    char text[16];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    t.n_sent = 0;
    begin(&t, "GET", "k"); /* the map is fresh: straight to the read */
    assert_true(run(&t));
    assert_string_equal(t.sent[0], GET_K);
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    t.n_sent = 0;
    hyc_topology_changed(t.k, 1); /* a leader changed: pushed */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[0], SLOTS_FRAME);
    answer(&t, SLOTS_MAP);
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    t.n_sent = 0;
    hyc_topology_changed(t.k, 1); /* seen already */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[0], GET_K);
    halyard_stats st;
    hyc_stats(t.k, &st);
    assert_int_equal(st.topology_reads, 2);
    hyc_core_free(t.k);
}

/* A member that accepts but does not answer before the request's deadline (shorter than
 * attempt_timeout_ms here) is a failure of it: the read ends TIMEOUT and the next request goes
 * to the next member instead of waiting on the same one again; after breaker_failures such
 * deadlines its breaker is open. */
static void test_deadline_leaves_a_silent_member(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 0, 300); /* deadline 300 ms, attempt timeout 500 ms */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_int_equal(t.member, 0);
    t.now += 300; /* member 0 is silent until the deadline */
    assert_false(run(&t));
    char text[128];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_TIMEOUT);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_int_equal(t.member, 1);
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_core_free(t.k);
}

/* A hedged copy avoids the member of its first copy: with the leader preferred and no map, it
 * goes to the next member (which forwards); with replicas, to another replica. */
static void test_avoid(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    begin(&t, "GET", "k");
    struct hyc_member m0 = *hyc_member(t.k, 0);
    hyc_avoid(t.k, &m0);
    assert_true(run(&t));
    assert_int_equal(t.member, 1);
    assert_int_equal(t.connects[0], 0);
    hyc_core_free(t.k);
    setup_reads(&t, HALYARD_READ_REPLICA, HALYARD_LB_ROUND_ROBIN, 0);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, SLOTS_MAP);
    read_on_replica(&t, 1);
    assert_int_equal(t.member, 0);
    begin(&t, "GET", "k");
    hyc_avoid(t.k, &m0);
    read_on_replica(&t, 1);
    assert_true(t.member == 1 || t.member == 2);
    hyc_core_free(t.k);
}

/* The hedge delay: a fixed one when set; else 50 ms until 20 reads are known, then their p95
 * (never 0), over the last 256 reads only. */
static void test_hedge_delay(void **state)
{
    (void)state;
    struct hyc_latency l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(hyc_hedge_delay(&l, 7), 7);
    assert_int_equal(hyc_hedge_delay(&l, 0), 50);
    for (uint64_t i = 1; i <= 100; i++) {
        hyc_latency_add(&l, i);
    }
    assert_int_equal(hyc_hedge_delay(&l, 0), 95);
    for (int i = 0; i < 256; i++) {
        hyc_latency_add(&l, 0);
    }
    assert_int_equal(hyc_hedge_delay(&l, 0), 1);
    for (int i = 0; i < 20; i++) {
        hyc_latency_add(&l, 400); /* 20 of 256 slow: above the 95th percentile */
    }
    assert_int_equal(hyc_hedge_delay(&l, 0), 400);
    assert_true(hyc_is_read("GeT", 3));
    assert_false(hyc_is_read("INCR", 4));
}

/* Heartbeat verdicts: a request running on a member found dead leaves it at once, re-sent to
 * the next member, as after attempt_timeout_ms but without waiting for it; a member found dead
 * has its connection left and its breaker opened (requests go around it); one answering again
 * has it closed. */
static void test_heartbeat_verdicts(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    hyc_core_free(t.k);
    cfg.addrs = addrs3;
    cfg.n_addrs = 3;
    cfg.connect_timeout_ms = 100;
    cfg.request_timeout_ms = 5000;
    cfg.attempt_timeout_ms = 3000;
    cfg.backoff_initial_ms = 40;
    cfg.backoff_max_ms = 1000;
    cfg.backoff_multiplier = 2.0;
    cfg.breaker_failures = 3;
    cfg.breaker_cooldown_ms = 10000;
    t.k = hyc_core_new(&cfg, 7);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_int_equal(t.member, 0);
    uint64_t t0 = t.now;
    hyc_abandon(t.k); /* 7001 stopped answering heartbeats */
    assert_true(run(&t));
    assert_int_equal(t.member, 1); /* re-sent to 7002 at once */
    assert_int_equal(t.now, t0);
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    char text[16];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    struct hyc_member m1 = *hyc_member(t.k, 1);
    hyc_member_down(t.k, &m1, t.now); /* 7002 dead: its breaker opens, its connection is left */
    halyard_stats st;
    hyc_stats(t.k, &st);
    assert_int_equal(st.breaker_opens, 1);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_int_equal(t.member, 2); /* 7003 */
    hyc_closed(t.k, t.now);
    assert_true(run(&t));
    assert_int_equal(t.member, 0);
    hyc_closed(t.k, t.now); /* from 7001: 7002 is skipped (open), 7003 next */
    assert_true(run(&t));
    assert_int_equal(t.member, 2);
    hyc_stats(t.k, &st);
    assert_int_equal(st.breaker_skips, 1);
    hyc_member_up(t.k, &m1); /* answers heartbeats again: closed */
    hyc_closed(t.k, t.now);  /* from 7003: 7001, then 7002 is not skipped */
    assert_true(run(&t));
    assert_int_equal(t.member, 0);
    hyc_closed(t.k, t.now);
    assert_true(run(&t));
    assert_int_equal(t.member, 1);
    hyc_stats(t.k, &st);
    assert_int_equal(st.breaker_skips, 1);
    hyc_core_free(t.k);
}

/* Pipelining: once the connection is in its steady state (session open), requests go back to
 * back; each answer settles its own request, in order; one the core must handle (-TRYAGAIN)
 * goes the normal way under the same session slot (the same seq: applied once); a plain write
 * answered -UNKNOWN is its outcome, never sent again; nothing is pipelined before the first
 * request has set the connection up, nor after the connection was lost. */
static void test_pipeline(void **state)
{
    (void)state;
    struct script t;
    setup(&t, 1, 5000);
    struct hyc_pipe_slot slot[4];
    struct hy_buf out;
    hy_buf_init(&out);
    const char *get[] = {"GET", "k"}, *incr[] = {"INCR", "c"}, *set[] = {"SET", "x", "1"};
    assert_false(hyc_pipe_add(t.k, 2, get, NULL, t.now, &out, &slot[0])); /* not connected */
    begin(&t, "INCR", "c");
    assert_true(run(&t));
    answer(&t, ":9\r\n"); /* the session */
    assert_true(run(&t));
    answer(&t, ":1\r\n");
    assert_false(run(&t));
    char text[64];
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_true(hyc_pipe_add(t.k, 2, get, NULL, t.now, &out, &slot[0]));
    assert_true(hyc_pipe_add(t.k, 2, incr, NULL, t.now, &out, &slot[1]));
    assert_true(hyc_pipe_add(t.k, 3, set, NULL, t.now, &out, &slot[2]));
    assert_int_equal(slot[0].session, 0);
    assert_int_equal(slot[1].session, 9);
    assert_int_equal(slot[1].seq, 2);
    assert_int_equal(slot[2].seq, 3);
    char want[256];
    snprintf(want, sizeof(want), "%s%s%s", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
             "*5\r\n$6\r\nHY.REQ\r\n$1\r\n9\r\n$1\r\n2\r\n$4\r\nINCR\r\n$1\r\nc\r\n",
             "*6\r\n$6\r\nHY.REQ\r\n$1\r\n9\r\n$1\r\n3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n");
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    const char *answers = "$1\r\nv\r\n-TRYAGAIN election\r\n+OK\r\n";
    size_t at = 0, used = 0, total = strlen(answers);
    halyard_status st;
    halyard_reply *r = NULL;
    int want_rc[] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        int rc = hyc_pipe_answer(t.k, &slot[i], (const uint8_t *)answers + at, total - at, &used,
                                 &st, &r);
        assert_int_equal(rc, want_rc[i]);
        at += used;
        if (rc == 1) {
            assert_int_equal(st, HALYARD_OK);
            halyard_reply_free(r);
        }
    }
    assert_int_equal(at, total);
    /* The INCR the normal way, under its slot: the same seq 2. */
    begin(&t, "INCR", "c");
    hyc_resume(t.k, &slot[1], 0);
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1],
                        "*5\r\n$6\r\nHY.REQ\r\n$1\r\n9\r\n$1\r\n2\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
    answer(&t, ":2\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    /* The connection fails mid-pipeline: nothing more is pipelined until it is set up again. */
    assert_true(hyc_pipe_add(t.k, 2, get, NULL, t.now, &out, &slot[3]));
    hyc_pipe_lost(t.k, "the connection was lost", 1, t.now);
    assert_false(hyc_pipe_add(t.k, 2, get, NULL, t.now, &out, &slot[3]));
    hy_buf_free(&out);
    hyc_core_free(t.k);

    /* Sessions off: a plain write answered -UNKNOWN ends with that answer; -MOVED goes back. */
    setup(&t, 0, 5000);
    hy_buf_init(&out);
    begin(&t, "GET", "k");
    assert_true(run(&t));
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    assert_true(hyc_pipe_add(t.k, 2, incr, NULL, t.now, &out, &slot[0]));
    assert_int_equal(slot[0].session, 0);
    const char *unk = "-UNKNOWN outcome: leader changed\r\n";
    assert_int_equal(
        hyc_pipe_answer(t.k, &slot[0], (const uint8_t *)unk, strlen(unk), &used, &st, &r), 1);
    assert_int_equal(st, HALYARD_REPLY_ERROR);
    halyard_reply_free(r);
    const char *moved = "-MOVED 7365 127.0.0.1:7002\r\n";
    assert_int_equal(
        hyc_pipe_answer(t.k, &slot[0], (const uint8_t *)moved, strlen(moved), &used, &st, &r), 2);
    hy_buf_free(&out);
    hyc_core_free(t.k);
}

/* rconn_call (the round trip halyctl and the server's --join share with the library) frames the
 * request as RESP, reads a reply that arrives in pieces, and tells a closed connection, a
 * protocol error and a deadline apart. Over a socketpair: the "server" side is written and read
 * by the test. */
struct blocking_call {
    halyard_client *c;
    halyard_status st;
};

static void *blocking_ping(void *arg)
{
    struct blocking_call *b = arg;
    const char *argv[] = {"PING"};
    halyard_reply *r = NULL;
    b->st = halyard_command(b->c, 1, argv, NULL, &r);
    halyard_reply_free(r);
    return NULL;
}

/* The blocking API's load shedding: with max_outstanding 1, while one halyard_command waits for
 * its answer (the scripted server has its request and holds the answer back), a second call
 * returns HALYARD_BUSY at once, nothing sent, counted in shed; once the first is answered the
 * next call goes through. */
static void test_blocking_calls_bounded(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    const char *addrs[] = {addr};
    halyard_config cfg;
    halyard_config_init(&cfg);
    cfg.addrs = addrs;
    cfg.n_addrs = 1;
    cfg.smart_routing = 0;
    cfg.sessions = 0;
    cfg.heartbeat_interval_ms = 0;
    cfg.max_outstanding = 1;
    cfg.request_timeout_ms = 30000;
    cfg.attempt_timeout_ms = 30000;
    char err[200];
    halyard_client *c = halyard_open(&cfg, err, sizeof(err));
    assert_non_null(c);
    struct blocking_call b = {c, HALYARD_INVALID};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocking_ping, &b), 0);
    int fd = accept(ls, NULL, NULL); /* the first call connects ... */
    assert_true(fd >= 0);
    char got[64];
    size_t have = 0;
    const char ping[] = "*1\r\n$4\r\nPING\r\n";
    while (have < sizeof(ping) - 1) { /* ... and its request has arrived: it waits inside */
        ssize_t n = read(fd, got + have, sizeof(got) - have);
        assert_true(n > 0);
        have += (size_t)n;
    }
    assert_memory_equal(got, ping, sizeof(ping) - 1);
    const char *argv[] = {"PING"};
    halyard_reply *r = NULL;
    assert_int_equal(halyard_command(c, 1, argv, NULL, &r), HALYARD_BUSY);
    assert_non_null(strstr(r->str, "max_outstanding"));
    halyard_reply_free(r);
    assert_int_equal(write(fd, "+PONG\r\n", 7), 7);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b.st, HALYARD_OK);
    assert_int_equal(write(fd, "+PONG\r\n", 7), 7); /* answered as soon as it is asked */
    assert_int_equal(halyard_command(c, 1, argv, NULL, &r), HALYARD_OK);
    halyard_reply_free(r);
    halyard_stats st;
    halyard_get_stats(c, &st);
    assert_int_equal(st.shed, 1);
    /* A program built against an older, shorter halyard_stats gets its part and nothing past
     * it: here a structure that ends before `shed`. */
    _Alignas(halyard_stats) unsigned char older[offsetof(halyard_stats, shed) + sizeof(uint64_t)];
    memset(older, 0xa5, sizeof older);
    halyard_get_stats_sized(c, (halyard_stats *)(void *)older, offsetof(halyard_stats, shed));
    assert_memory_equal(older, &st, offsetof(halyard_stats, shed));
    for (size_t i = offsetof(halyard_stats, shed); i < sizeof older; i++) {
        assert_int_equal(older[i], 0xa5);
    }
    halyard_close(c);
    close(fd);
    close(ls);
}

static void test_rconn_call(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct rconn c = {.fd = sv[0], .wake_fd = -1};
    struct hy_buf in;
    hy_buf_init(&in);
    struct resp_value v;
    char err[128];
    /* The reply is there before the call (buffered); the request goes out framed. */
    assert_int_equal(write(sv[1], "*2\r\n$1\r\na\r\n:42\r\n", 17), 17);
    const char *argv[] = {"HALYARD", "STATUS", "JSON"};
    assert_int_equal(
        rconn_call(&c, 3, argv, NULL, &in, NULL, rconn_now_ms() + 5000, &v, err, sizeof(err)),
        RCONN_OK);
    assert_int_equal(v.type, RESP_ARRAY);
    assert_int_equal(v.count, 2);
    assert_memory_equal(v.elems[0].str, "a", 1);
    assert_int_equal(v.elems[1].integer, 42);
    resp_value_free(&v);
    char got[128];
    const char want[] = "*3\r\n$7\r\nHALYARD\r\n$6\r\nSTATUS\r\n$4\r\nJSON\r\n";
    assert_int_equal(read(sv[1], got, sizeof(got)), (ssize_t)(sizeof(want) - 1));
    assert_memory_equal(got, want, sizeof(want) - 1);
    /* Binary arguments with their lengths. */
    const char *bin[] = {"SET", "k\0y"};
    const size_t binlen[] = {3, 3};
    assert_int_equal(write(sv[1], "+OK\r\n", 5), 5);
    assert_int_equal(
        rconn_call(&c, 2, bin, binlen, &in, NULL, rconn_now_ms() + 5000, &v, err, sizeof(err)),
        RCONN_OK);
    assert_int_equal(v.type, RESP_SIMPLE);
    resp_value_free(&v);
    assert_int_equal(read(sv[1], got, sizeof(got)), 22);
    assert_memory_equal(got, "*2\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n", 22);
    /* Half a reply and then nothing: the deadline ends the wait. */
    assert_int_equal(write(sv[1], "$5\r\nab", 7), 7);
    assert_int_equal(
        rconn_call(&c, 1, argv, NULL, &in, NULL, rconn_now_ms() + 50, &v, err, sizeof(err)),
        RCONN_ETIMEOUT);
    assert_true(read(sv[1], got, sizeof(got)) > 0); /* the request of that call */
    /* Not RESP: a protocol error, with the parser's reason. */
    assert_int_equal(write(sv[1], "?what\r\n", 7), 7);
    err[0] = '\0';
    assert_int_equal(
        rconn_call(&c, 1, argv, NULL, &in, NULL, rconn_now_ms() + 5000, &v, err, sizeof(err)),
        RCONN_EPROTO);
    assert_true(err[0] != '\0');
    assert_true(read(sv[1], got, sizeof(got)) > 0);
    /* The other side ends mid-reply (it still reads): the connection is gone. */
    assert_int_equal(write(sv[1], ":1", 2), 2);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    assert_int_equal(rconn_call(&c, 1, argv, NULL, &in, NULL, RCONN_FOREVER, &v, err, sizeof(err)),
                     RCONN_ERECV);
    hy_buf_free(&in);
    rconn_close(&c);
    assert_int_equal(c.fd, -1);
    close(sv[1]);
}

/* rconn_dial says whether a name did not resolve or a connection was refused (halyctl prints
 * "cannot resolve" or the connect's own error). */
static void test_rconn_dial_errors(void **state)
{
    (void)state;
    int unresolved = -1;
    assert_int_equal(rconn_dial("no-such-host.invalid", "7379", rconn_now_ms() + 2000, &unresolved),
                     -1);
    assert_int_equal(unresolved, 1);
    /* A port nothing listens on: refused at once on loopback, errno says so. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    close(ls); /* bound once, now free: nothing listens there */
    char port[8];
    snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
    errno = 0;
    assert_int_equal(rconn_dial("127.0.0.1", port, rconn_now_ms() + 2000, &unresolved), -1);
    assert_int_equal(unresolved, 0);
    assert_int_equal(errno, ECONNREFUSED);
}

/* The staleness estimate (stale.h): a replica that has what the leader had at a later sample
 * is not behind; otherwise the latest sample it covers bounds how far behind it is; one that
 * covers no sample in the history is unknown. */
static void test_stale_estimate(void **state)
{
    (void)state;
    struct stale_est *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(stale_replica_ms(e, 0, 10, 1000), STALE_UNKNOWN); /* no leader heard */
    stale_leader_sample(e, 0, 10, 1000);
    stale_leader_sample(e, 0, 20, 2000);
    stale_leader_sample(e, 0, 30, 3000);
    stale_leader_sample(e, 8192, 7, 3000);                 /* another partition: its own history */
    assert_int_equal(stale_replica_ms(e, 0, 30, 2500), 0); /* the leader had 30 at 3000 */
    assert_int_equal(stale_replica_ms(e, 0, 30, 3000), 0); /* caught up at the same time */
    assert_int_equal(stale_replica_ms(e, 0, 25, 3000), 1000); /* has 20: the leader's at 2000 */
    assert_int_equal(stale_replica_ms(e, 0, 10, 3500), 2500);
    assert_int_equal(stale_replica_ms(e, 0, 5, 3500), STALE_UNKNOWN); /* older than it all */
    assert_int_equal(stale_replica_ms(e, 8192, 7, 3100), 100);
    assert_int_equal(stale_replica_ms(e, 100, 7, 3100), STALE_UNKNOWN); /* unknown partition */
    /* The history is a ring: the oldest samples go. */
    for (uint64_t i = 0; i < STALE_HIST; i++) {
        stale_leader_sample(e, 0, 100 + i, 10000 + i * 100);
    }
    assert_int_equal(stale_replica_ms(e, 0, 30, 20000), STALE_UNKNOWN);
    assert_int_equal(stale_replica_ms(e, 0, 100, 20000), 20000 - 10000);
    free(e);
}

/* CLUSTER SHARDS as a member answers it (RESP2: maps as arrays of key, value): two partitions,
 * the member's own offset the only one filled in; it leads the second. */
#define SHARD_NODE(port, role, off)                                                             \
    "*14\r\n$2\r\nid\r\n$1\r\nx\r\n$4\r\nport\r\n:" port "\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"  \
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$" role "\r\n$18\r\nreplication-offset" \
    "\r\n:" off "\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
#define SHARDS_ANSWER                                                                     \
    "*2\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:8191\r\n$5\r\nnodes\r\n*2\r\n" SHARD_NODE(   \
        "7001", "6\r\nmaster", "0")                                                       \
        SHARD_NODE("7002", "7\r\nreplica",                                                \
                   "41") "*4\r\n$5\r\nslots\r\n*2\r\n:8192\r\n:16383\r\n$5\r\nnodes\r\n*" \
                         "2\r\n" SHARD_NODE("7002", "6\r\nmaster", "57")                  \
                             SHARD_NODE("7001", "7\r\nreplica", "0")

static void test_stale_parse_shards(void **state)
{
    (void)state;
    struct resp_value v;
    size_t used;
    const char *text = SHARDS_ANSWER;
    assert_int_equal(resp_value_parse(NULL, (const uint8_t *)text, strlen(text), &v, &used, NULL),
                     HY_OK);
    assert_int_equal(used, strlen(text));
    struct stale_report r[4];
    assert_int_equal(stale_parse_shards(&v, r, 4), 2);
    assert_int_equal(r[0].slot, 0);
    assert_int_equal(r[0].end, 8191);
    assert_int_equal(r[0].applied, 41);
    assert_false(r[0].leads);
    assert_int_equal(r[1].slot, 8192);
    assert_int_equal(r[1].end, 16383);
    assert_int_equal(r[1].applied, 57);
    assert_true(r[1].leads);
    assert_int_equal(stale_parse_shards(&v, r, 1), 1); /* room for one */
    resp_value_free(&v);
    const char *err = "-ERR unknown command 'CLUSTER'\r\n";
    assert_int_equal(resp_value_parse(NULL, (const uint8_t *)err, strlen(err), &v, &used, NULL),
                     HY_OK);
    assert_int_equal(stale_parse_shards(&v, r, 4), -1);
    resp_value_free(&v);
}

/* max_staleness_ms: a replica read goes only to a member the heartbeats found within the bound
 * for the key's partition (7003 is not: never read from); before any verdict, or when no
 * replica is within it, the read is linearizable on the leader: never READONLY, and a
 * connection in READONLY leaves it (READWRITE) or is replaced by one to the leader. */
static void test_read_max_staleness(void **state)
{
    (void)state;
    struct script t;
    memset(&t, 0, sizeof(t));
    halyard_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addrs = addrs3;
    cfg.n_addrs = 3;
    cfg.connect_timeout_ms = 100;
    cfg.request_timeout_ms = 5000;
    cfg.attempt_timeout_ms = 500;
    cfg.backoff_initial_ms = 40;
    cfg.backoff_max_ms = 1000;
    cfg.backoff_multiplier = 2.0;
    cfg.smart_routing = 1;
    cfg.topology_refresh_ms = 1000;
    cfg.read_from = HALYARD_READ_REPLICA;
    cfg.max_staleness_ms = 2000;
    cfg.heartbeat_interval_ms = 1001;
    assert_non_null(hyc_config_check(&cfg)); /* under twice the interval: refused */
    cfg.heartbeat_interval_ms = 0;
    assert_non_null(hyc_config_check(&cfg)); /* no heartbeats, no estimate: refused */
    cfg.heartbeat_interval_ms = 500;
    assert_null(hyc_config_check(&cfg));
    t.k = hyc_core_new(&cfg, 8);
    t.now = 1000;
    char text[16];
    /* No verdict yet: the leader, linearizable. */
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_string_equal(t.sent[0], SLOTS_FRAME);
    answer(&t, SLOTS_MAP);
    assert_true(run(&t));
    assert_string_equal(t.sent[t.n_sent - 1], GET_K);
    assert_int_equal(t.n_sent, 2); /* no READONLY */
    assert_int_equal(t.member, 0);
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    /* 7001 (the leader) and 7002 within the bound, 7003 not. */
    struct hyc_fresh f[3];
    memset(f, 0, sizeof(f));
    for (int i = 0; i < 3; i++) {
        snprintf(f[i].m.host, sizeof(f[i].m.host), "127.0.0.1");
        f[i].m.port = 7001 + i;
        f[i].lo = 0;
        f[i].hi = 16383;
        f[i].fresh = i != 2;
    }
    hyc_set_fresh(t.k, f, 3);
    size_t on[3] = {0, 0, 0};
    for (int i = 0; i < 8; i++) {
        t.n_sent = 0;
        t.now += 1001; /* the map is read again: the balancer picks again */
        begin(&t, "GET", "k");
        assert_true(run(&t));
        if (strcmp(t.sent[t.n_sent - 1], SLOTS_FRAME) == 0) {
            answer(&t, SLOTS_MAP);
            assert_true(run(&t));
        }
        if (strcmp(t.sent[t.n_sent - 1], READONLY_FRAME) == 0) {
            answer(&t, "+OK\r\n");
            assert_true(run(&t));
        }
        assert_string_equal(t.sent[t.n_sent - 1], GET_K);
        on[t.member]++;
        answer(&t, "$1\r\nv\r\n");
        assert_false(run(&t));
        assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    }
    assert_int_equal(on[2], 0);
    assert_true(on[1] > 0 && on[0] > 0);
    /* No verdicts any more (nothing measured): the leader again, never READONLY; the client is
     * on its READONLY connection to the leader (seed 8's last pick), which leaves it. */
    hyc_set_fresh(t.k, NULL, 0);
    size_t connects = t.connects[0] + t.connects[1] + t.connects[2];
    assert_int_equal(t.member, 0);
    t.n_sent = 0;
    begin(&t, "GET", "k");
    assert_true(run(&t));
    assert_int_equal(t.connects[0] + t.connects[1] + t.connects[2], connects);
    assert_string_equal(t.sent[0], "*1\r\n$9\r\nREADWRITE\r\n");
    answer(&t, "+OK\r\n");
    assert_true(run(&t));
    assert_int_equal(t.member, 0);
    assert_string_equal(t.sent[t.n_sent - 1], GET_K);
    for (size_t i = 0; i < t.n_sent; i++) {
        assert_string_not_equal(t.sent[i], READONLY_FRAME);
    }
    answer(&t, "$1\r\nv\r\n");
    assert_false(run(&t));
    assert_int_equal(result(&t, text, sizeof(text)), HALYARD_OK);
    hyc_core_free(t.k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_goes_in_a_session),
        cmocka_unit_test(test_lost_reply_resent_under_the_same_slot),
        cmocka_unit_test(test_refused_resend_is_not_the_answer),
        cmocka_unit_test(test_without_session_lost_write_is_unknown),
        cmocka_unit_test(test_moved_and_tryagain),
        cmocka_unit_test(test_quorum_statuses),
        cmocka_unit_test(test_unreachable_backs_off_then_not_applied),
        cmocka_unit_test(test_unresponsive_member_is_left),
        cmocka_unit_test(test_expired_session_and_unwrappable_command),
        cmocka_unit_test(test_plain_redis_and_error_replies),
        cmocka_unit_test(test_protocol_error_reconnects),
        cmocka_unit_test(test_failover_to_the_next_cluster),
        cmocka_unit_test(test_region_priority_orders_the_cluster_list),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_circuit_breaker),
        cmocka_unit_test(test_config_load),
        cmocka_unit_test(test_failback_after_hysteresis),
        cmocka_unit_test(test_region_refusal_moves_to_the_next_cluster),
        cmocka_unit_test(test_membership_events),
        cmocka_unit_test(test_sessions_per_partition),
        cmocka_unit_test(test_busy_and_loading_back_off),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_read_replica_round_robin),
        cmocka_unit_test(test_read_nearest),
        cmocka_unit_test(test_balancer_least_outstanding),
        cmocka_unit_test(test_balancer_weighted),
        cmocka_unit_test(test_member_inflight_bound),
        cmocka_unit_test(test_blocking_calls_bounded),
        cmocka_unit_test(test_pushed_events),
        cmocka_unit_test(test_deadline_leaves_a_silent_member),
        cmocka_unit_test(test_avoid),
        cmocka_unit_test(test_hedge_delay),
        cmocka_unit_test(test_heartbeat_verdicts),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_rconn_call),
        cmocka_unit_test(test_rconn_dial_errors),
        cmocka_unit_test(test_stale_estimate),
        cmocka_unit_test(test_stale_parse_shards),
        cmocka_unit_test(test_read_max_staleness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
