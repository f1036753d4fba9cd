/* Unit tests for src/node/observe: the counters the engine records as writes commit, the
 * readiness verdict, and the /health JSON and /metrics texts rendered from a snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "node/config.h"
#include "node/node.h"
#include "node/node_internal.h"
#include "node/observe.h"

struct one_node {
    struct hy_config cfg;
    struct hy_node *node;
    struct node_client *client;
    uint64_t now_ms;
};

/* Every io batch done at once, clients' output dropped. */
static void drain(struct one_node *f)
{
    node_flush(f->node, f->now_ms);
    struct node_io_batch *b;
    while ((b = node_io_take(f->node)) != NULL) {
        node_io_done(f->node, b, f->now_ms);
    }
    while (node_take_ready(f->node) != NULL) {
    }
}

static int setup(void **state)
{
    struct one_node *f = hy_xcalloc(1, sizeof(*f));
    config_init(&f->cfg);
    f->now_ms = 1700000000000ULL;
    f->node = node_create(&f->cfg, NULL, 11, f->now_ms);
    f->client = node_client_new(f->node, "127.0.0.1:1", "127.0.0.1:7379", 5, f->now_ms);
    struct node_recovered nothing = {0};
    assert_int_equal(node_start(f->node, 0, &nothing, f->now_ms), HY_OK);
    for (int i = 0; i < 100 && !node_is_leader(f->node); i++) {
        drain(f);
        f->now_ms = node_timeout_ms(f->node) > f->now_ms ? node_timeout_ms(f->node) : f->now_ms;
        node_tick(f->node, f->now_ms);
    }
    drain(f);
    assert_true(node_is_leader(f->node));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct one_node *f = *state;
    node_destroy(f->node);
    config_free(&f->cfg);
    hy_free(f);
    return 0;
}

static const struct observe_command *find_cmd(const struct node_observation *o, const char *name)
{
    for (size_t i = 0; i < o->command_count; i++) {
        if (strcmp(o->commands[i].name, name) == 0) {
            return &o->commands[i];
        }
    }
    fail_msg("command %s not in the observation", name);
    return NULL;
}

/* A write's commit latency and its command's latency run from proposal (arrival) to the
 * moment its batch is durable and applied, in the engine's clock; a read answered at once
 * counts a call with zero latency. */
static void test_write_latency_follows_durability(void **state)
{
    struct one_node *f = *state;
    struct node_observation *before = hy_xmalloc(sizeof(*before));
    node_observe(f->node, f->now_ms, before);
    const char *req = "SET k v\r\n";
    hy_buf_append(&f->client->in, req, strlen(req));
    node_client_process(f->node, f->client, f->now_ms);
    node_flush(f->node, f->now_ms);
    struct node_io_batch *held[16];
    size_t n = 0;
    struct node_io_batch *b;
    while (n < 16 && (b = node_io_take(f->node)) != NULL) {
        held[n++] = b;
    }
    f->now_ms += 7; /* the fsync takes 7 ms */
    for (size_t i = 0; i < n; i++) {
        node_io_done(f->node, held[i], f->now_ms);
    }
    drain(f);
    hy_buf_append(&f->client->in, "GET k\r\n", 7);
    node_client_process(f->node, f->client, f->now_ms);
    drain(f);
    assert_non_null(strstr((const char *)f->client->out.data, "$1\r\nv\r\n"));
    struct node_observation *o = hy_xmalloc(sizeof(*o));
    node_observe(f->node, f->now_ms, o);
    assert_int_equal(o->proposals_committed, before->proposals_committed + 1);
    assert_int_equal(o->commit_latency.count, before->commit_latency.count + 1);
    assert_int_equal(o->commit_latency.sum_us - before->commit_latency.sum_us, 7000);
    assert_int_equal(find_cmd(o, "set")->calls, 1);
    assert_int_equal(find_cmd(o, "set")->latency.sum_us, 7000);
    assert_int_equal(find_cmd(o, "get")->calls, 1);
    assert_int_equal(find_cmd(o, "get")->latency.count, 1);
    assert_int_equal(find_cmd(o, "get")->latency.sum_us, 0);
    assert_int_equal(o->keys, 1);
    assert_true(o->is_leader && o->has_quorum);
    assert_string_equal(o->leader, "n1");
    assert_int_equal(o->cluster_size, 1);
    hy_free(o);
    hy_free(before);
}

/* The walks over every partition run again only when something they read moved: a write (a
 * command and a Raft step) or a link's report makes one due at once, an idle node makes none
 * until NODE_WALK_QUIET_MS passed, and the counts they publish follow a write at once. */
static void test_walks_follow_activity(void **state)
{
    struct one_node *f = *state;
    struct node_walk w = {0};
    assert_true(node_walk_due(f->node, &w, f->now_ms)); /* never made */
    assert_false(node_walk_due(f->node, &w, f->now_ms));
    assert_false(node_walk_due(f->node, &w, f->now_ms + NODE_WALK_QUIET_MS - 1));
    node_note_activity(f->node);
    assert_true(node_walk_due(f->node, &w, f->now_ms));
    assert_false(node_walk_due(f->node, &w, f->now_ms + 1));
    assert_true(node_walk_due(f->node, &w, f->now_ms + NODE_WALK_QUIET_MS));
    struct node_observation *o = hy_xmalloc(sizeof(*o));
    node_observe(f->node, f->now_ms, o);
    assert_int_equal(o->keys, 0);
    assert_false(node_walk_due(f->node, &f->node->part_counts.walk, f->now_ms));
    hy_buf_append(&f->client->in, "SET a 1\r\n", 9);
    node_client_process(f->node, f->client, f->now_ms);
    drain(f);
    node_observe(f->node, f->now_ms, o); /* the same ms: counted again all the same */
    assert_int_equal(o->keys, 1);
    /* A read changes nothing the walks read: no walk is due for it. */
    hy_buf_append(&f->client->in, "GET a\r\n", 7);
    node_client_process(f->node, f->client, f->now_ms);
    drain(f);
    assert_false(node_walk_due(f->node, &f->node->part_counts.walk, f->now_ms));
    hy_free(o);
}

/* A lone leader renders valid-looking texts: every sample follows its family's # TYPE, no
 * family is declared twice, and the write shows in both texts. */
static void test_texts_from_a_live_node(void **state)
{
    struct one_node *f = *state;
    hy_buf_append(&f->client->in, "SET a 1\r\n", 9);
    node_client_process(f->node, f->client, f->now_ms);
    drain(f);
    struct node_observation *o = hy_xmalloc(sizeof(*o));
    node_observe(f->node, f->now_ms, o);
    struct hy_buf b;
    hy_buf_init(&b);
    observe_metrics(o, &b);
    hy_buf_append_u8(&b, '\0');
    char *text = (char *)b.data;
    assert_non_null(strstr(text, "\nhalyard_commands_total{cmd=\"set\"} 1\n"));
    assert_non_null(strstr(text, "\nhalyard_raft_is_leader 1\n"));
    assert_non_null(strstr(text, "\nhalyard_raft_leader{leader=\"n1\"} 1\n"));
    char declared[128][80];
    size_t n_declared = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[80];
        if (sscanf(line, "# TYPE %79s", name) == 1) {
            for (size_t i = 0; i < n_declared; i++) {
                assert_string_not_equal(declared[i], name);
            }
            assert_true(n_declared < 128);
            snprintf(declared[n_declared++], sizeof(declared[0]), "%s", name);
        } else if (line[0] != '#') {
            const char *fam = declared[n_declared - 1];
            assert_true(n_declared > 0);
            assert_memory_equal(line, fam, strlen(fam)); /* a sample of the open family */
        }
    }
    hy_buf_reset(&b);
    observe_health_json(o, &b);
    hy_buf_append_u8(&b, '\0');
    assert_non_null(strstr((char *)b.data, "{\"nodeState\":\"ACTIVE\",\"clusterState\":\"ACTIVE\","
                                           "\"clusterSafe\":true,\"migrationQueueSize\":0,"
                                           "\"clusterSize\":1,\"node\":\"n1\",\"ready\":true"));
    hy_buf_free(&b);
    hy_free(o);
}

/* A healthy follower of a 3-voter group, built by hand. */
static void follower(struct node_observation *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->node_id, sizeof(o->node_id), "n2");
    o->started = 1;
    o->role = "follower";
    o->self_role = "follower";
    o->has_quorum = 1;
    snprintf(o->leader, sizeof(o->leader), "n1");
    o->voters = 3;
    o->reachable_voters = 3;
    o->commit_index = 5000;
    o->applied_index = 5000;
}

/* Each reason a node is not ready, in the order they are checked, and ready otherwise. */
static void test_ready_reasons(void **state)
{
    (void)state;
    struct node_observation *o = hy_xmalloc(sizeof(*o));
    char why[200];
    follower(o);
    assert_int_equal(observe_ready(o, why, sizeof(why)), 1);
    assert_string_equal(why, "ready");
    o->applied_index = 5000 - OBSERVE_READY_APPLY_LAG_MAX - 1;
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_string_equal(why, "catching up: applied 3999 of 5000 committed entries");
    follower(o);
    o->partitions = 8;
    o->partitions_without_leader = 2;
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_string_equal(why, "no leader for 2 of 8 partitions: elections are under way");
    struct hy_buf b;
    hy_buf_init(&b);
    observe_health_json(o, &b);
    hy_buf_append(&b, "", 1);
    assert_non_null(strstr((const char *)b.data, "\"partitions\":8,\"partitionsLed\":0,"
                                                 "\"partitionsWithoutLeader\":2,"));
    hy_buf_free(&b);
    follower(o);
    o->has_quorum = 0;
    o->leader[0] = '\0';
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_string_equal(why, "no leader: an election is under way");
    o->reachable_voters = 1;
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_string_equal(why, "no quorum: 1 of 3 voters reachable, 2 needed");
    follower(o);
    o->self_role = "learner";
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_string_equal(why, "learner: catching up before it becomes a voter");
    follower(o);
    o->self_role = "observer"; /* a permanent non-voter serves (stale) reads: ready */
    assert_int_equal(observe_ready(o, why, sizeof(why)), 1);
    o->disk_full = 1;
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "disk full"));
    o->draining = 1;
    assert_non_null(strstr(observe_ready(o, why, sizeof(why)) ? "" : why, "draining"));
    o->stopping = 1;
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_string_equal(why, "shutting down");
    o->started = 0;
    assert_int_equal(observe_ready(o, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "starting"));
    hy_free(o);
}

/* /health on a cut-off follower: no leader (null), PASSIVE, not safe, the reason, and member
 * names escaped as JSON; a leader's view adds each follower's lag. */
/* The health score: each reason lowers it by its weight, capped, and is named. */
static void test_health_score(void **state)
{
    (void)state;
    struct node_observation *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    o->has_quorum = 1;
    o->member_count = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(o->members[i].name, sizeof(o->members[i].name), "n%d", i + 1);
        o->members[i].link_up = 1;
    }
    o->members[0].is_self = 1;
    hy_histo_init_us(&o->wal_fsync);
    struct observe_health h;
    observe_health_score(o, &h);
    assert_int_equal(h.node_score, 100);
    assert_int_equal(h.cluster_score, 100);
    assert_int_equal(h.reason_count, 0);
    /* One member down, the disk 95% full, fsyncs slow, a follower lagging. */
    o->members[2].link_up = 0;
    o->disk_total_bytes = 1000;
    o->disk_free_bytes = 50;
    for (int i = 0; i < 100; i++) {
        hy_histo_record_us(&o->wal_fsync, 200000);
    }
    o->members[1].has_lag = 1;
    o->members[1].lag_entries = 5000;
    observe_health_score(o, &h);
    assert_int_equal(h.node_score, 100 - 20 - 15 - 10 - 10);
    assert_int_equal(h.cluster_score, 100 - 33);
    assert_int_equal(h.reason_count, 4);
    assert_string_equal(h.reasons[0], "disk nearly full: 5% free");
    assert_string_equal(h.reasons[2], "1 members unreachable");
    /* No quorum and three leaderless partitions: the floor is 0. */
    o->has_quorum = 0;
    o->partitions_without_leader = 3;
    o->disk_full = 1;
    observe_health_score(o, &h);
    assert_int_equal(h.node_score, 0);
    assert_int_equal(h.cluster_score, 100 - 33 - 50);
    free(o);
}

/* Links between clusters lower the score per link, with the link named: down by 10, an
 * outbox refusing writes by 20, a minute behind by 5, all links together by 30 at most; a
 * link up, or lagging a little, changes nothing. */
static void test_health_wan_links(void **state)
{
    (void)state;
    struct node_observation *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    o->has_quorum = 1;
    o->member_count = 1;
    o->members[0].is_self = 1;
    o->members[0].link_up = 1;
    hy_histo_init_us(&o->wal_fsync);
    static const char *const links[] = {"dr", "dr", "eu", "eu", "us", "asia"};
    o->wan_count = 6;
    for (size_t i = 0; i < o->wan_count; i++) {
        snprintf(o->wan[i].link, sizeof(o->wan[i].link), "%s", links[i]);
        o->wan[i].partition = (uint32_t)(i % 2);
        o->wan[i].lag_ms = 1500; /* lagging a little: no reason */
        o->wan[i].lag_entries = 3;
    }
    struct observe_health h;
    observe_health_score(o, &h);
    assert_int_equal(h.node_score, 100);
    assert_int_equal(h.reason_count, 0);
    o->wan[1].link_down = 1;
    observe_health_score(o, &h);
    assert_int_equal(h.node_score, 90);
    assert_int_equal(h.reason_count, 1);
    assert_string_equal(h.reasons[0], "WAN link 'dr' down (1 partitions)");
    o->wan[2].writes_blocked = o->wan[3].writes_blocked = 1;
    o->wan[4].lag_ms = 61000;
    observe_health_score(o, &h);
    assert_int_equal(h.node_score, 100 - 10 - 20);
    assert_int_equal(h.reason_count, 2); /* the cap: 30 for every link */
    assert_string_equal(h.reasons[1], "WAN link 'eu' full: writes refused (2 partitions)");
    o->wan[2].writes_blocked = o->wan[3].writes_blocked = 0;
    observe_health_score(o, &h);
    assert_int_equal(h.node_score, 100 - 10 - 5);
    assert_string_equal(h.reasons[1], "WAN link 'us' behind by 61 s");
    free(o);
}

static void test_health_json_cut_off_and_lag(void **state)
{
    (void)state;
    struct node_observation *o = hy_xmalloc(sizeof(*o));
    follower(o);
    o->has_quorum = 0;
    o->leader[0] = '\0';
    o->reachable_voters = 1;
    o->member_count = 1;
    snprintf(o->members[0].name, sizeof(o->members[0].name), "we\"ird");
    o->members[0].role = "follower";
    o->members[0].link_up = 0;
    struct hy_buf b;
    hy_buf_init(&b);
    observe_health_json(o, &b);
    hy_buf_append_u8(&b, '\0');
    const char *t = (const char *)b.data;
    assert_non_null(strstr(t, "\"clusterState\":\"PASSIVE\",\"clusterSafe\":false,"));
    assert_non_null(strstr(t, "\"ready\":false,\"readyReason\":\"no quorum: 1 of 3 voters "
                              "reachable, 2 needed\",\"hasQuorum\":false,\"leader\":null,"));
    assert_non_null(strstr(t, "{\"name\":\"we\\\"ird\",\"role\":\"follower\",\"self\":false,"
                              "\"linkUp\":false}"));
    follower(o);
    o->role = "leader";
    o->member_count = 1;
    struct observe_member *m = &o->members[0];
    snprintf(m->name, sizeof(m->name), "n3");
    m->role = "follower";
    m->link_up = 1;
    m->has_lag = 1;
    m->match_index = 90;
    m->lag_entries = 10;
    m->lag_ms = 35;
    m->answered = 1;
    m->contact_ms = 4;
    hy_buf_reset(&b);
    observe_health_json(o, &b);
    hy_buf_append_u8(&b, '\0');
    assert_non_null(strstr((const char *)b.data, "\"matchIndex\":90,\"lagEntries\":10,"
                                                 "\"lagMs\":35,\"answered\":true,"
                                                 "\"lastContactMs\":4}"));
    hy_buf_reset(&b);
    observe_metrics(o, &b);
    hy_buf_append_u8(&b, '\0');
    assert_non_null(
        strstr((const char *)b.data, "\nhalyard_raft_follower_lag_entries{member=\"n3\"} 10\n"));
    assert_non_null(
        strstr((const char *)b.data, "\nhalyard_raft_follower_lag_seconds{member=\"n3\"} 0.035\n"));
    hy_buf_free(&b);
    hy_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_latency_follows_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_texts_from_a_live_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walks_follow_activity, setup, teardown),
        cmocka_unit_test(test_ready_reasons),
        cmocka_unit_test(test_health_json_cut_off_and_lag),
        cmocka_unit_test(test_health_score),
        cmocka_unit_test(test_health_wan_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
