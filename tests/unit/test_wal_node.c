/* Unit tests for src/io/wal_node.c, the pure part of the storage shell shared by durable.c and
 * the whole-node simulator: a node's groups opened from one shared log on the simulated disk,
 * every group's batches of a turn written with one fdatasync, per-group completion order, a
 * full disk and its retry, and recovery of every group after a power loss. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/disk_mem.h"
#include "io/wal.h"
#include "io/wal_node.h"
#include "node/config.h"
#include "node/node.h"
#include "node/node_internal.h"

#define GROUPS 3 /* partitions 2: the metadata group 0 and groups 1, 2 */

struct fx {
    struct hy_config cfg;
    struct wal_config wcfg;
    struct disk *disk;
    struct hy_node *node;
    struct wal *w;
    struct wal_node_queues *q;
    uint64_t now_ms;
    /* The WAL thread's list: batches submitted and not yet written. */
    struct node_io_batch *sub[256];
    size_t n_sub;
    uint64_t next_seq, durable_seq;
    int disk_full;
    /* What the last open reported, per group id, and the order of the reports. */
    uint64_t rec_term[GROUPS], rec_last[GROUPS];
    uint32_t seen_order[GROUPS];
    size_t n_seen;
    /* Completed batches' groups, in completion order. */
    uint32_t done_groups[1024];
    size_t n_done;
};

static void seen_cb(void *ctx, const struct wal_recovered *rec)
{
    struct fx *f = ctx;
    assert_true(rec->group < GROUPS);
    f->seen_order[f->n_seen++] = rec->group;
    f->rec_term[rec->group] = rec->term;
    f->rec_last[rec->group] = rec->n_entries ? rec->first_index + rec->n_entries - 1 : 0;
}

static void send_cb(void *ctx, struct node_io_batch *b)
{
    struct fx *f = ctx;
    if (f->n_done < HY_ARRAY_LEN(f->done_groups)) {
        f->done_groups[f->n_done++] = b->group;
    }
}

/* A node process on f->disk: created, its groups started from the shared log. */
static void fx_node_up(struct fx *f)
{
    f->node = node_create(&f->cfg, NULL, 7, f->now_ms);
    assert_non_null(f->node);
    f->q = wal_node_queues_new(f->node);
    f->n_seen = 0;
    char err[256] = "";
    assert_int_equal(wal_node_open(f->disk, &f->wcfg, f->node, f->now_ms, NULL, seen_cb, f, &f->w,
                                   err, sizeof(err)),
                     HY_OK);
    f->n_sub = 0;
    f->next_seq = f->durable_seq = 0;
    f->disk_full = 0;
}

static void fx_node_down(struct fx *f)
{
    node_destroy(f->node);
    wal_close(f->w);
    wal_node_queues_free(f->q);
    f->node = NULL;
}

static int setup(void **state)
{
    struct fx *f = hy_xcalloc(1, sizeof(*f));
    config_init(&f->cfg);
    char err[160];
    assert_int_equal(config_set(&f->cfg, "partitions", "2", 0, err), HY_OK);
    wal_config_default(&f->wcfg);
    f->wcfg.segment_size_bytes = 1 << 16;
    f->now_ms = 1700000000000ULL;
    f->disk = disk_mem_new("/n", 3);
    fx_node_up(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_node_down(f);
    disk_destroy(f->disk);
    config_free(&f->cfg);
    hy_free(f);
    return 0;
}

/* io_durable_pump: each persisting batch is submitted, the rest complete at once when nothing
 * of their group is ahead of them. */
static void fx_pump(struct fx *f)
{
    node_flush(f->node, f->now_ms);
    struct node_io_batch *b;
    while ((b = node_io_take(f->node)) != NULL) {
        uint64_t seq = 0;
        if (wal_node_batch_persists(b)) {
            assert_true(f->n_sub < HY_ARRAY_LEN(f->sub));
            f->sub[f->n_sub++] = b;
            seq = ++f->next_seq;
        }
        if (wal_node_queues_add(f->q, b, seq)) {
            send_cb(f, b);
            node_io_done(f->node, b, f->now_ms);
        }
    }
}

/* The WAL thread's turn: the whole list as one group commit, then the completion. */
static int fx_write(struct fx *f)
{
    struct wal_node_req reqs[256];
    const struct wal_node_req *ptrs[256];
    struct wal_snapshot snaps[256];
    static uint8_t membership[256][WAL_NODE_MEMBERSHIP_MAX];
    struct wal_entry *ents[256];
    for (size_t i = 0; i < f->n_sub; i++) {
        wal_node_req_of(f->sub[i], &reqs[i], &snaps[i], membership[i], &ents[i]);
        ptrs[i] = &reqs[i];
    }
    int rc = wal_node_write(f->w, ptrs, f->n_sub);
    for (size_t i = 0; i < f->n_sub; i++) {
        hy_free(ents[i]);
    }
    if (rc == HY_OK) {
        f->durable_seq = f->next_seq;
        f->n_sub = 0;
    }
    wal_node_complete(f->q, f->node, rc, f->durable_seq, NULL, 0, &f->disk_full, send_cb, f,
                      f->now_ms, NULL);
    return rc;
}

static const struct raft *fx_group(struct fx *f, uint32_t id)
{
    for (size_t k = 0; k < f->node->group_count; k++) {
        if (f->node->groups[k]->id == id) {
            return &f->node->groups[k]->raft;
        }
    }
    fail_msg("no group %u", (unsigned)id);
    return NULL;
}

/* Runs timers and the log until every group of the single node leads. */
static void fx_settle(struct fx *f)
{
    for (int i = 0; i < 200; i++) {
        fx_pump(f);
        if (f->n_sub > 0) {
            assert_int_equal(fx_write(f), HY_OK);
        }
        int all = 1;
        for (uint32_t g = 0; g < GROUPS; g++) {
            all &= raft_role(fx_group(f, g)) == RAFT_LEADER;
        }
        if (all && f->n_sub == 0) {
            return;
        }
        uint64_t at = node_timeout_ms(f->node);
        f->now_ms = at > f->now_ms ? at : f->now_ms + 1;
        node_tick(f->node, f->now_ms);
    }
    fail_msg("the groups did not all lead");
}

/* The node's groups are opened from one log, in ascending order, each created empty. */
static void test_open_starts_every_group(void **state)
{
    struct fx *f = *state;
    assert_int_equal(f->n_seen, GROUPS);
    for (uint32_t g = 0; g < GROUPS; g++) {
        assert_int_equal(f->seen_order[g], g);
        assert_int_equal(f->rec_term[g], 0);
    }
}

/* The elections of all three groups, persisted in one turn: one write list, ONE fdatasync. */
static void test_one_fsync_for_every_group(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 200; i++) {
        fx_pump(f);
        if (f->n_sub >= GROUPS) {
            break;
        }
        uint64_t at = node_timeout_ms(f->node);
        f->now_ms = at > f->now_ms ? at : f->now_ms + 1;
        node_tick(f->node, f->now_ms);
    }
    uint32_t groups_seen = 0;
    for (size_t i = 0; i < f->n_sub; i++) {
        groups_seen |= 1u << f->sub[i]->group;
    }
    assert_int_equal(groups_seen, (1u << GROUPS) - 1);
    uint64_t syncs = disk_mem_op_calls(f->disk, DISK_OP_SYNC);
    assert_int_equal(fx_write(f), HY_OK);
    assert_int_equal(disk_mem_op_calls(f->disk, DISK_OP_SYNC) - syncs, 1);
    fx_settle(f);
}

/* A full disk: nothing is lost, the engine is told, and the same list written again once there
 * is room completes every batch, group by group in id order. */
static void test_full_disk_then_room(void **state)
{
    struct fx *f = *state;
    fx_settle(f);
    disk_mem_fail(f->disk, DISK_OP_BIT(DISK_OP_WRITE) | DISK_OP_BIT(DISK_OP_PREALLOCATE), 1,
                  HY_ENOSPC, 1);
    /* "b" (slot 3300) is in partition 0 (group 1), "a" (slot 15495) in partition 1 (group 2). */
    struct node_client *c =
        node_client_new(f->node, "127.0.0.1:1000", "127.0.0.1:7379", 5, f->now_ms);
    const char *req = "SET a 1\r\nSET b 2\r\n";
    hy_buf_append(&c->in, req, strlen(req));
    node_client_process(f->node, c, f->now_ms);
    f->n_done = 0;
    fx_pump(f);
    uint32_t groups_seen = 0;
    for (size_t i = 0; i < f->n_sub; i++) {
        groups_seen |= 1u << f->sub[i]->group;
    }
    assert_int_equal(groups_seen, 1u << 1 | 1u << 2);
    assert_int_equal(fx_write(f), HY_ENOSPC);
    assert_int_equal(f->disk_full, 1);
    assert_true(f->node->disk_full);
    assert_int_equal(f->n_done, 0); /* nothing durable: nothing handed back */
    disk_mem_fail_clear(f->disk);
    assert_int_equal(fx_write(f), HY_OK);
    assert_int_equal(f->disk_full, 0);
    assert_false(f->node->disk_full);
    assert_int_equal(f->n_done, 2);
    assert_int_equal(f->done_groups[0], 1);
    assert_int_equal(f->done_groups[1], 2);
    for (int i = 0; i < 8; i++) {
        fx_pump(f);
        if (f->n_sub > 0) {
            assert_int_equal(fx_write(f), HY_OK);
        }
    }
    assert_int_equal(c->out.len, 10);
    assert_memory_equal(c->out.data, "+OK\r\n+OK\r\n", 10);
    node_client_free(f->node, c);
}

/* After a power loss, a new process recovers every group's term and log from the one log: what
 * was acknowledged survives. */
static void test_power_loss_recovers_every_group(void **state)
{
    struct fx *f = *state;
    fx_settle(f);
    uint64_t term[GROUPS], last[GROUPS];
    for (uint32_t g = 0; g < GROUPS; g++) {
        const struct raft *r = fx_group(f, g);
        term[g] = raft_term(r);
        last[g] = raft_last_index(r);
        assert_true(term[g] >= 1);
    }
    fx_node_down(f);
    disk_mem_crash(f->disk, DISK_CRASH_DROP);
    fx_node_up(f);
    assert_int_equal(f->n_seen, GROUPS);
    for (uint32_t g = 0; g < GROUPS; g++) {
        assert_int_equal(f->rec_term[g], term[g]);
        assert_true(f->rec_last[g] >= last[g]);
    }
}

/* The list written again after ENOSPC holds term/votes that may be durable already (a list
 * with a snapshot commits what precedes it first): those are skipped, so that the log never
 * puts a group's term back (recovery refuses it: simulator seed 76000504 --nodes 5
 * --partitions 8 --rf 3 --zones 3 --cancel) nor forgets a vote cast. */
static void test_list_written_again_keeps_term_and_vote(void **state)
{
    (void)state;
    struct wal_config cfg;
    wal_config_default(&cfg);
    struct disk *d = disk_mem_new("/r", 5);
    uint32_t ids[2] = {0, 1};
    struct wal_recovered recs[2];
    struct wal *w;
    char err[256] = "";
    assert_int_equal(wal_open(d, &cfg, ids, 2, &w, recs, err, sizeof(err)), HY_OK);
    for (int i = 0; i < 2; i++) {
        wal_recovered_free(&recs[i]);
    }
    /* Group 1: term 2 voting 0x22, then term 3 (no vote yet), then its vote 0x33; group 0:
     * term 1. The same list twice, as after a retry, then once more in part. */
    struct wal_node_req r[4] = {
        {.group = 1, .term_vote_changed = 1, .term = 2, .vote = 0x22},
        {.group = 1, .term_vote_changed = 1, .term = 3, .vote = 0},
        {.group = 0, .term_vote_changed = 1, .term = 1, .vote = 0},
        {.group = 1, .term_vote_changed = 1, .term = 3, .vote = 0x33},
    };
    const struct wal_node_req *list[4] = {&r[0], &r[1], &r[2], &r[3]};
    assert_int_equal(wal_node_write(w, list, 4), HY_OK);
    assert_int_equal(wal_node_write(w, list, 4), HY_OK);
    assert_int_equal(wal_node_write(w, list, 2), HY_OK);
    uint64_t term, vote;
    wal_term_vote(w, 1, &term, &vote);
    assert_int_equal(term, 3);
    assert_int_equal(vote, 0x33);
    wal_close(w);
    disk_mem_crash(d, DISK_CRASH_DROP);
    err[0] = '\0';
    assert_int_equal(wal_open(d, &cfg, ids, 2, &w, recs, err, sizeof(err)), HY_OK);
    assert_string_equal(err, "");
    assert_int_equal(recs[1].term, 3);
    assert_int_equal(recs[1].vote, 0x33);
    assert_int_equal(recs[0].term, 1);
    for (int i = 0; i < 2; i++) {
        wal_recovered_free(&recs[i]);
    }
    wal_close(w);
    disk_destroy(d);
}

static struct raft_message ack(raft_id to, uint64_t term, uint64_t index, uint64_t seq, int ok)
{
    struct raft_message m = {.type = RAFT_MSG_APPEND_RESP, .from = 2, .to = to, .term = term};
    m.index = index;
    m.seq = seq;
    m.sent_ms = seq * 10;
    m.success = (uint8_t)ok;
    return m;
}

/* One acknowledgement per leader and group commit: of the responses made durable together,
 * only the last of each leader's successful ones goes; a rejection, an answer to a quiesce
 * round, one to another server and one of an older heartbeat round than the last all go. */
static void test_acks_of_one_group_commit_coalesce(void **state)
{
    (void)state;
    struct raft_message in[4][3] = {
        {ack(1, 5, 10, 1, 1), ack(3, 5, 10, 1, 1)},
        {ack(1, 5, 12, 2, 1), ack(1, 5, 0, 2, 0)},
        {ack(1, 5, 14, 9, 1)},
        {ack(1, 5, 16, 3, 1), ack(1, 5, 16, 3, 1)},
    };
    in[3][1].quiesce = 1;
    uint32_t counts[4] = {2, 2, 1, 2};
    struct node_io_batch b[4];
    struct node_io_batch *v[4];
    memset(b, 0, sizeof(b));
    for (int i = 0; i < 4; i++) {
        b[i].messages = hy_xmemdup(in[i], counts[i] * sizeof(struct raft_message));
        b[i].n_messages = counts[i];
        v[i] = &b[i];
    }
    assert_int_equal(wal_node_coalesce_acks(v, 4), 2);
    /* Batch 0: its ack to 1 is covered by batch 2's (index 14, round 9); the one to 3 goes. */
    assert_int_equal(b[0].n_messages, 1);
    assert_int_equal(b[0].messages[0].to, 3);
    /* Batch 1: the success is covered too; the rejection goes. */
    assert_int_equal(b[1].n_messages, 1);
    assert_false(b[1].messages[0].success);
    /* Batch 2: round 9 is newer than batch 3's round 3, so it goes although 16 > 14. */
    assert_int_equal(b[2].n_messages, 1);
    assert_int_equal(b[2].messages[0].index, 14);
    assert_int_equal(b[3].n_messages, 2);
    for (int i = 0; i < 4; i++) {
        hy_free(b[i].messages);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_starts_every_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_fsync_for_every_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_then_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_recovers_every_group, setup, teardown),
        cmocka_unit_test(test_list_written_again_keeps_term_and_vote),
        cmocka_unit_test(test_acks_of_one_group_commit_coalesce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
