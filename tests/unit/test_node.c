/* Unit tests for src/node: dispatch, auth, pipelining, protocol errors, expiry and eviction
 * driven through the sans-I/O engine with simulated time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/crc.h"
#include "node/config.h"
#include "node/join_auth.h"
#include "node/node.h"
#include "node/node_internal.h"
#include "store/store.h"

struct fixture {
    struct hy_config cfg;
    struct hy_node *node;
    struct node_client *client;
    uint64_t now_ms;
    uint64_t last_snap_written; /* the log refuses a snapshot older than the one it holds */
};

static void settle(struct fixture *f);

static int setup(void **state)
{
    struct fixture *f = hy_xcalloc(1, sizeof(*f));
    config_init(&f->cfg);
    f->now_ms = 1700000000000ULL;
    f->node = node_create(&f->cfg, NULL, 7, f->now_ms);
    f->client = node_client_new(f->node, "127.0.0.1:1000", "127.0.0.1:7379", 5, f->now_ms);
    struct node_recovered nothing = {0};
    assert_int_equal(node_start(f->node, 0, &nothing, f->now_ms), HY_OK);
    settle(f);
    *state = f;
    return 0;
}

/* The shell's part, in memory: propose the turn's writes, make every batch "durable" at
 * once, and deliver Raft's timer ticks that are due. */
static void pump(struct fixture *f)
{
    node_flush(f->node, f->now_ms);
    struct node_io_batch *b;
    while ((b = node_io_take(f->node)) != NULL) {
        if (b->snapshot != NODE_SNAP_NONE) {
            assert_true(b->snap_index >= f->last_snap_written);
            f->last_snap_written = b->snap_index;
        }
        node_io_done(f->node, b, f->now_ms);
    }
    while (node_take_ready(f->node) != NULL) {
    }
}

/* Advances simulated time, firing Raft's timers, until the single node leads. */
static void settle(struct fixture *f)
{
    for (int i = 0; i < 100 && !replica_can_read(f->node->meta); i++) {
        pump(f);
        uint64_t at = node_timeout_ms(f->node);
        if (at > f->now_ms) {
            f->now_ms = at;
        }
        node_tick(f->node, f->now_ms);
    }
    pump(f);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    node_destroy(f->node);
    config_free(&f->cfg);
    hy_free(f);
    return 0;
}

/* Feeds raw bytes and returns everything the engine replied (NUL-terminated, static). */
static const char *feed(struct fixture *f, const char *bytes)
{
    static char out[65536];
    hy_buf_append(&f->client->in, bytes, strlen(bytes));
    node_client_process(f->node, f->client, f->now_ms);
    for (int i = 0; i < 32; i++) {
        pump(f); /* writes commit and answer; a woken client runs its next requests */
    }
    size_t n = f->client->out.len < sizeof(out) - 1 ? f->client->out.len : sizeof(out) - 1;
    if (n > 0) {
        memcpy(out, f->client->out.data, n);
    }
    out[n] = '\0';
    hy_buf_reset(&f->client->out);
    return out;
}

/* A snapshotter that "forks": it captures the store as it is when started (encoding it at
 * once stands for the child's copy-on-write image) and hands the bytes back when told. */
struct fake_snapshotter {
    int started;
    struct hy_buf image;
};

static int fake_start(void *ctx, uint32_t group, const struct store *store)
{
    struct fake_snapshotter *fs = ctx;
    assert_int_equal(group, 0); /* the one group a node holds today */
    fs->started++;
    hy_buf_reset(&fs->image);
    store_snapshot_encode(store, &fs->image);
    return HY_OK;
}

/* A forked snapshot that completes when another is due at once (the keyspace was flushed
 * meanwhile) must reach the disk before that one: a snapshot may not start while the
 * finished one is being handed to Raft (the log asserts snapshots only move forward). */
static void test_forked_snapshot_then_another_is_due(void **state)
{
    struct fixture *f = *state;
    struct fake_snapshotter fs = {0};
    hy_buf_init(&fs.image);
    node_set_snapshotter(f->node, fake_start, &fs);
    struct hy_buf cmds;
    hy_buf_init(&cmds);
    for (int i = 0; i < NODE_SNAPSHOT_FORK_KEYS + 5000; i++) {
        hy_buf_printf(&cmds, "SET key:%d value-%d\r\n", i, i);
    }
    hy_buf_append(&cmds, "", 1);
    feed(f, (const char *)cmds.data);
    /* The log (1.8 MB) outgrew the dataset, but not snapshot-log-min's share (64 MiB over
     * the node's groups); at 1mb, the next write finds one due. */
    assert_int_equal(fs.started, 0);
    assert_string_equal(feed(f, "CONFIG SET snapshot-log-min 1mb\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "SET one more\r\n"), "+OK\r\n");
    assert_int_equal(fs.started, 1); /* due once the log outgrew the dataset */
    uint64_t pending = f->node->meta->snap_pending;
    assert_true(pending > 0);
    assert_string_equal(feed(f, "FLUSHALL\r\n"), "+OK\r\n"); /* now another is due */
    uint8_t *bytes = hy_xmemdup(fs.image.data, fs.image.len);
    node_snapshot_done(f->node, 0, bytes, fs.image.len, f->now_ms);
    assert_int_equal(raft_snapshot_index(&f->node->meta->raft), pending);
    pump(f);
    feed(f, "SET after flush\r\n"); /* the due snapshot (inline: tiny keyspace) follows */
    assert_true(raft_snapshot_index(&f->node->meta->raft) > pending);
    assert_true(f->last_snap_written > pending);
    node_set_snapshotter(f->node, NULL, NULL);
    hy_buf_free(&fs.image);
    hy_buf_free(&cmds);
}

/* A keyspace of few keys but many bytes (one large list, large strings) is snapshot in the
 * forked child too: the encoding's cost follows the bytes, and inline it stalled the loop. */
static void test_few_large_keys_snapshot_in_the_child(void **state)
{
    struct fixture *f = *state;
    struct fake_snapshotter fs = {0};
    hy_buf_init(&fs.image);
    node_set_snapshotter(f->node, fake_start, &fs);
    assert_string_equal(feed(f, "CONFIG SET snapshot-log-min 1mb\r\n"), "+OK\r\n");
    size_t len = 256 * 1024;
    char *value = hy_xmalloc(len + 1);
    memset(value, 'v', len);
    value[len] = '\0';
    struct hy_buf cmd;
    hy_buf_init(&cmd);
    /* 20 keys of 256 KiB written over and over: a snapshot comes due each time the log since
     * the last outgrows the dataset (5 MiB once full), inline while the dataset is under
     * NODE_SNAPSHOT_FORK_BYTES, in the child from there on. */
    for (int i = 0; i < 80 && fs.started == 0; i++) {
        hy_buf_reset(&cmd);
        hy_buf_printf(&cmd, "*3\r\n$3\r\nSET\r\n$5\r\nbig%02d\r\n$%zu\r\n", i % 20, len);
        hy_buf_append(&cmd, value, len);
        hy_buf_append(&cmd, "\r\n", 3); /* with the terminating NUL feed() reads up to */
        assert_string_equal(feed(f, (const char *)cmd.data), "+OK\r\n");
    }
    assert_int_equal(store_key_count(f->node->meta->store), 20);
    assert_true(raft_snapshot_index(&f->node->meta->raft) > 0); /* the small ones: inline */
    assert_int_equal(fs.started, 1); /* the first of FORK_BYTES or more: in the child */
    assert_true(store_used_bytes(f->node->meta->store) >= NODE_SNAPSHOT_FORK_BYTES);
    assert_true(f->node->meta->snap_pending > 0);
    node_set_snapshotter(f->node, NULL, NULL);
    hy_buf_free(&fs.image);
    hy_buf_free(&cmd);
    hy_free(value);
}

/* snapshot-log-percent decides when a snapshot is due: at 10000 (the log may grow to 100 times
 * the dataset, and 200 times the key count in entries) 20,000 writes take none; set to 10 at
 * run time, the next write takes one. */
static void test_snapshot_log_percent(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "CONFIG SET snapshot-log-percent 10000\r\n"), "+OK\r\n");
    struct hy_buf cmds;
    hy_buf_init(&cmds);
    for (int i = 0; i < 20000; i++) {
        hy_buf_printf(&cmds, "SET key:%d value-%d\r\n", i, i);
    }
    hy_buf_append(&cmds, "", 1);
    feed(f, (const char *)cmds.data);
    assert_string_equal(feed(f, "DBSIZE\r\n"), ":20000\r\n");
    assert_int_equal(raft_snapshot_index(&f->node->meta->raft), 0);
    assert_string_equal(feed(f, "CONFIG SET snapshot-log-percent 10\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "SET one more\r\n"), "+OK\r\n");
    /* 20,001 entries: over 8,192 and twice 10% of the 20,001 keys (the log's 1.7 MB is under
     * snapshot-log-min's share) */
    assert_true(raft_snapshot_index(&f->node->meta->raft) > 20000);
    assert_string_equal(feed(f, "CONFIG SET snapshot-log-percent 9\r\n"),
                        "-ERR CONFIG SET failed (possibly related to argument "
                        "'snapshot-log-percent') - argument must be between 10 and 10000 "
                        "inclusive\r\n");
    hy_buf_free(&cmds);
}

/* setup() with 4 partitions: the metadata group and groups 1-4 on one node. */
static int setup_partitions(void **state)
{
    struct fixture *f = hy_xcalloc(1, sizeof(*f));
    config_init(&f->cfg);
    f->cfg.partitions = 4;
    f->now_ms = 1700000000000ULL;
    f->node = node_create(&f->cfg, NULL, 7, f->now_ms);
    f->client = node_client_new(f->node, "127.0.0.1:1000", "127.0.0.1:7379", 5, f->now_ms);
    struct node_recovered nothing = {0};
    assert_int_equal(f->node->group_count, 5);
    for (uint32_t g = 0; g < 5; g++) { /* as the shell starts each group it recovered */
        assert_int_equal(node_start(f->node, g, &nothing, f->now_ms), HY_OK);
    }
    settle(f);
    for (size_t g = 1; g < 5; g++) {
        for (int i = 0; i < 200 && !replica_can_read(f->node->groups[g]); i++) {
            f->now_ms += 10;
            node_tick(f->node, f->now_ms);
            settle(f);
        }
        assert_true(replica_can_read(f->node->groups[g]));
    }
    *state = f;
    return 0;
}

/* A hash tag whose keys go to partition `part` (written into tag, "{tN}"). */
static void tag_of_partition(struct fixture *f, uint32_t part, char *tag, size_t cap)
{
    for (int i = 0; i < 10000; i++) {
        snprintf(tag, cap, "{t%d}", i);
        if (node_partition_of_slot(f->node, hy_key_slot((const uint8_t *)tag, strlen(tag))) ==
            part) {
            return;
        }
    }
    fail();
}

/* `sets` writes of 1 KB to partition part's tag, each DEL'd after: the log grows by about a
 * megabyte per thousand while the dataset stays empty. */
static void log_churn(struct fixture *f, uint32_t part, int sets)
{
    char tag[32], value[1001];
    tag_of_partition(f, part, tag, sizeof(tag));
    memset(value, 'v', 1000);
    value[1000] = '\0';
    struct hy_buf cmds;
    hy_buf_init(&cmds);
    for (int i = 0; i < sets; i++) {
        hy_buf_printf(&cmds, "SET %s:k %s\r\nDEL %s:k\r\n", tag, value, tag);
    }
    hy_buf_append(&cmds, "", 1);
    assert_int_equal(strlen(feed(f, (const char *)cmds.data)), (size_t)sets * 9); /* +OK :1 */
    hy_buf_free(&cmds);
}

/* The groups of a node share snapshot-log-min by what they hold: the one partition written
 * takes no snapshot at its equal share (1/5 of 8 MiB here), but once the node's logs since
 * their snapshots reach snapshot-log-min, the group that grows them takes one. */
static void test_snapshot_log_min_shared_by_use(void **state)
{
    struct fixture *f = *state;
    struct hy_node *n = f->node;
    assert_string_equal(feed(f, "CONFIG SET snapshot-log-min 8mb\r\n"), "+OK\r\n");
    log_churn(f, 0, 2800); /* ~3 MB: over the equal share (1.6 MiB), under 8 MiB */
    struct node_group *a = n->groups[1], *b = n->groups[2];
    assert_true(a->log_bytes_since_snapshot > 2 * 1024 * 1024);
    assert_int_equal(raft_snapshot_index(&a->raft), 0);
    assert_true(n->log_bytes_since_snapshots - a->log_bytes_since_snapshot < 4096); /* starts */
    log_churn(f, 1, 6000); /* another ~6.7 MB: partition 1 snapshots within the 8 MiB */
    assert_true(raft_snapshot_index(&b->raft) > 0);
    assert_int_equal(raft_snapshot_index(&a->raft), 0);
    assert_true(n->log_bytes_since_snapshots <= 8 * 1024 * 1024);
    uint64_t sum = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        sum += n->groups[i]->log_bytes_since_snapshot;
    }
    assert_int_equal(n->log_bytes_since_snapshots, sum);
}

/* A write reads the cluster's WAN role as of the metadata group's last applied change: one
 * looked at before a DEMOTE (and remembered, node_wan_role) does not outlive it, nor the
 * demotion a later PROMOTE. */
static void test_wan_role_followed_by_writes(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "SET k 1\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "SET k 2\r\n"), "+OK\r\n"); /* the remembered role */
    assert_string_equal(feed(f, "HALYARD WAN DEMOTE 3 west\r\n"), "+OK\r\n");
    assert_non_null(strstr(feed(f, "SET k 3\r\n"), "-READONLY this cluster was demoted"));
    assert_string_equal(feed(f, "HALYARD WAN PROMOTE\r\n"), "+OK\r\n");
    /* Writable once this partition applied the promotion's fence (proposed by its leader:
     * node_cron), -TRYAGAIN until then. */
    const char *r = "";
    for (int i = 0; i < 100 && strcmp(r, "+OK\r\n") != 0; i++) {
        f->now_ms += 100;
        node_cron(f->node, f->now_ms);
        node_tick(f->node, f->now_ms);
        r = feed(f, "SET k 4\r\n");
        assert_null(strstr(r, "READONLY"));
    }
    assert_string_equal(r, "+OK\r\n");
}

/* Inline commands, multibulk requests and a pipeline all answer in order. */
static void test_pipeline_in_order(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "PING\r\n"), "+PONG\r\n");
    assert_string_equal(feed(f, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\n"
                                "k\r\nINCR k\r\n"),
                        "+OK\r\n$1\r\nv\r\n-ERR value is not an integer or out of range\r\n");
}

/* Takes every I/O batch the engine hands out, after a loop turn, without reporting any of
 * them durable (the fsync has not returned yet); returns how many entries they carry. */
static uint32_t hold_batches(struct fixture *f, struct node_io_batch **held, size_t *n_held,
                             size_t cap)
{
    uint32_t entries = 0;
    node_flush(f->node, f->now_ms);
    struct node_io_batch *b;
    while ((b = node_io_take(f->node)) != NULL) {
        assert_true(*n_held < cap);
        held[(*n_held)++] = b;
        entries += b->n_entries;
    }
    while (node_take_ready(f->node) != NULL) {
    }
    return entries;
}

/* A write is answered only once its batch is reported durable: while the batch is held
 * back (its fsync still running), neither the write nor a read pipelined behind it answers,
 * and another client cannot read the value; after node_io_done both answer, in order. */
static void test_reply_waits_for_durability(void **state)
{
    struct fixture *f = *state;
    struct node_client *other = node_client_new(f->node, "a:1", "b:2", 6, f->now_ms);
    struct node_io_batch *held[64];
    size_t n_held = 0;
    const char *req = "SET k v\r\nGET k\r\n";
    hy_buf_append(&f->client->in, req, strlen(req));
    node_client_process(f->node, f->client, f->now_ms);
    assert_true(hold_batches(f, held, &n_held, 64) >= 1); /* the SET's entry, to persist */
    /* Loop turns and timer ticks go on (well within request-timeout-ms) while the fsync runs. */
    for (int turn = 0; turn < 20; turn++) {
        f->now_ms += 10;
        node_tick(f->node, f->now_ms);
        if (turn == 10) {
            hy_buf_append(&other->in, "GET k\r\n", 7);
            node_client_process(f->node, other, f->now_ms);
        }
        hold_batches(f, held, &n_held, 64);
        assert_int_equal(f->client->out.len, 0);
    }
    /* The other client saw no value, or the one from before the write (nil): never "v". */
    assert_true(other->out.len == 0 ||
                (other->out.len == 5 && memcmp(other->out.data, "$-1\r\n", 5) == 0));
    for (size_t i = 0; i < n_held; i++) {
        node_io_done(f->node, held[i], f->now_ms);
    }
    assert_string_equal(feed(f, ""), "+OK\r\n$1\r\nv\r\n");
    node_client_free(f->node, other);
}

/* Reports the held batches durable and lets their writes answer. */
static void release_batches(struct fixture *f, struct node_io_batch **held, size_t *n_held)
{
    for (size_t i = 0; i < *n_held; i++) {
        node_io_done(f->node, held[i], f->now_ms);
    }
    *n_held = 0;
    pump(f);
}

/* A loop turn in which each client had one write proposed, and nothing else ran, is not busy
 * (each writer waits for its reply: the shell may then sync it in its loop, io/durable.c). A
 * client's write sent while another of its writes waits is pipelining, a request cut short
 * says more is coming, and a read is work besides: each makes it busy. Taking clears it. */
static void test_turn_busy(void **state)
{
    struct fixture *f = *state;
    struct node_client *other = node_client_new(f->node, "a:1", "b:2", 6, f->now_ms);
    struct node_io_batch *held[64];
    size_t n_held = 0;
    (void)node_turn_busy_take(f->node);
    hy_buf_append(&f->client->in, "SET a 1\r\n", 9);
    node_client_process(f->node, f->client, f->now_ms);
    hy_buf_append(&other->in, "SET b 2\r\n", 9);
    node_client_process(f->node, other, f->now_ms);
    assert_int_equal(hold_batches(f, held, &n_held, 64), 2);
    assert_false(node_turn_busy_take(f->node));
    release_batches(f, held, &n_held);
    /* Answered, the same client's next write is not pipelining either. */
    hy_buf_append(&other->in, "SET b 3\r\n", 9);
    node_client_process(f->node, other, f->now_ms);
    hold_batches(f, held, &n_held, 64);
    assert_false(node_turn_busy_take(f->node));
    /* Sent before that one is answered: pipelining, in a turn of its own too. */
    hy_buf_append(&other->in, "SET b 4\r\n", 9);
    node_client_process(f->node, other, f->now_ms);
    hold_batches(f, held, &n_held, 64);
    assert_true(node_turn_busy_take(f->node));
    assert_false(node_turn_busy_take(f->node)); /* taken: cleared */
    release_batches(f, held, &n_held);
    /* A client's two writes in one read. */
    hy_buf_append(&f->client->in, "SET c 1\r\nSET d 1\r\n", 18);
    node_client_process(f->node, f->client, f->now_ms);
    hold_batches(f, held, &n_held, 64);
    assert_true(node_turn_busy_take(f->node));
    release_batches(f, held, &n_held);
    /* One write and the start of the next. */
    hy_buf_append(&f->client->in, "SET e 1\r\nSET e", 14);
    node_client_process(f->node, f->client, f->now_ms);
    hold_batches(f, held, &n_held, 64);
    assert_true(node_turn_busy_take(f->node));
    release_batches(f, held, &n_held);
    hy_buf_append(&f->client->in, " 2\r\n", 4);
    node_client_process(f->node, f->client, f->now_ms);
    hold_batches(f, held, &n_held, 64);
    release_batches(f, held, &n_held);
    (void)node_turn_busy_take(f->node);
    /* A read by another client, then one write: the reader would wait behind a loop sync. */
    hy_buf_append(&other->in, "GET a\r\n", 7);
    node_client_process(f->node, other, f->now_ms);
    hy_buf_append(&f->client->in, "SET f 1\r\n", 9);
    node_client_process(f->node, f->client, f->now_ms);
    hold_batches(f, held, &n_held, 64);
    assert_true(node_turn_busy_take(f->node));
    release_batches(f, held, &n_held);
    assert_string_equal(feed(f, ""), "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n");
    node_client_free(f->node, other);
}

/* A request split across reads is executed once, when its last byte arrives. */
static void test_partial_request_resumes(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "*2\r\n$4\r\nECHO\r\n$5\r\nhel"), "");
    assert_string_equal(feed(f, "lo\r"), "");
    assert_string_equal(feed(f, "\n"), "$5\r\nhello\r\n");
    assert_int_equal(f->client->in.len, 0);
}

/* Unknown commands and wrong arity get Redis's exact texts; the connection stays usable. */
static void test_unknown_and_arity(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "FOO a b\r\n"),
                        "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    assert_string_equal(feed(f, "GET\r\n"), "-ERR wrong number of arguments for 'get' command\r\n");
    assert_string_equal(feed(f, "get k x\r\n"),
                        "-ERR wrong number of arguments for 'get' command\r\n");
    assert_string_equal(feed(f, "PING\r\n"), "+PONG\r\n");
}

/* The request limits are settings: a smaller multibulk limit refuses a longer request. */
static void test_protocol_limits_are_settings(void **state)
{
    struct fixture *f = *state;
    char err[160];
    assert_int_equal(config_set(&f->cfg, "proto-max-multibulk-len", "3", 1, err), HY_OK);
    assert_int_equal(config_set(&f->cfg, "proto-max-inline-len", "64", 1, err), HY_OK);
    node_reconfigure(f->node);
    assert_string_equal(feed(f, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), "+OK\r\n");
    const char *r = feed(f, "*4\r\n");
    assert_non_null(strstr(r, "-ERR Protocol error: invalid multibulk length"));
}

/* A protocol error answers once and marks the client to close after the reply. */
static void test_protocol_error_closes(void **state)
{
    struct fixture *f = *state;
    const char *r = feed(f, "*1\r\n$-5\r\n");
    assert_non_null(strstr(r, "-ERR Protocol error: invalid bulk length"));
    assert_true(f->client->flags & NODE_CLIENT_CLOSE_AFTER_REPLY);
    assert_string_equal(feed(f, "PING\r\n"), ""); /* nothing more is executed */
}

/* With requirepass, only AUTH/HELLO/QUIT/RESET run until the client authenticates. */
static void test_requirepass(void **state)
{
    struct fixture *f = *state;
    char err[160];
    assert_int_equal(config_set(&f->cfg, "requirepass", "s3cret", 1, err), HY_OK);
    struct node_client *c = node_client_new(f->node, "a:1", "b:2", 6, f->now_ms);
    struct node_client *saved = f->client;
    f->client = c;
    assert_string_equal(feed(f, "GET k\r\n"), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(feed(f, "AUTH nope\r\n"),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_string_equal(feed(f, "AUTH s3cret\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "GET k\r\n"), "$-1\r\n");
    f->client = saved;
    node_client_free(f->node, c);
}

/* A stand-in MAC (the engine only needs a keyed function; the shell lends HMAC-SHA256). */
static void toy_mac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                    uint8_t *mac_out)
{
    memset(mac_out, 0, JOIN_AUTH_MAC_BYTES);
    for (size_t i = 0; i < key_len; i++) {
        mac_out[i % JOIN_AUTH_MAC_BYTES] ^= (uint8_t)(key[i] * 7u + 1u);
    }
    for (size_t i = 0; i < len; i++) {
        mac_out[(i * 5) % JOIN_AUTH_MAC_BYTES] += msg[i];
    }
}

static void toy_random(uint8_t *buf, size_t len)
{
    static uint8_t next = 1;
    for (size_t i = 0; i < len; i++) {
        buf[i] = next++;
    }
}

/* toy_mac of msg under secret, in hex. */
static void toy_mac_hex(const char *secret, const char *msg, size_t len, char *hex_out)
{
    uint8_t mac[JOIN_AUTH_MAC_BYTES];
    toy_mac((const uint8_t *)secret, strlen(secret), (const uint8_t *)msg, len, mac);
    join_auth_hex(mac, sizeof(mac), hex_out);
}

/* The proof a joining node sends for nonce (hex), as identity.c computes it. */
static void join_proof(const char *secret, const char *name, const char *nonce, char *hex_out)
{
    char msg[512];
    size_t len = join_auth_message("halyard", name, nonce, msg, sizeof(msg));
    toy_mac_hex(secret, msg, len, hex_out);
}

/* With requirepass, a joining node authenticates by proving the cluster secret: the right
 * proof lets it in, a wrong one or a replayed nonce does not, other HALYARD commands need AUTH. */
static void test_join_proof_of_the_cluster_secret(void **state)
{
    struct fixture *f = *state;
    char err[160], nonce[64], mac[2 * JOIN_AUTH_MAC_BYTES + 1], req[256];
    assert_int_equal(config_set(&f->cfg, "requirepass", "pw", 1, err), HY_OK);
    assert_int_equal(config_set(&f->cfg, "cluster-secret", "sec", 0, err), HY_OK);
    struct node_client *saved = f->client;
    f->client = node_client_new(f->node, "a:1", "b:2", 6, f->now_ms);
    assert_string_equal(feed(f, "HALYARD CHALLENGE\r\n"),
                        "-ERR this node has no cluster-secret to prove\r\n"); /* no crypto lent */
    node_set_crypto(f->node, toy_mac, toy_random);
    assert_string_equal(feed(f, "HALYARD PEERS\r\n"), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(feed(f, "HALYARD PEER-AUTH n2 00\r\n"),
                        "-ERR run HALYARD CHALLENGE first\r\n");
    const char *reply = feed(f, "HALYARD CHALLENGE\r\n");
    assert_int_equal(sscanf(reply, "$32\r\n%32s\r\n", nonce), 1);
    join_proof("wrong", "n2", nonce, mac);
    snprintf(req, sizeof(req), "HALYARD PEER-AUTH n2 %s\r\n", mac);
    assert_non_null(strstr(feed(f, req), "-ERR cluster-secret or cluster-name differs"));
    join_proof("sec", "n2", nonce, mac); /* right proof, but that nonce is spent */
    snprintf(req, sizeof(req), "HALYARD PEER-AUTH n2 %s\r\n", mac);
    assert_string_equal(feed(f, req), "-ERR run HALYARD CHALLENGE first\r\n");
    assert_string_equal(feed(f, "GET k\r\n"), "-NOAUTH Authentication required.\r\n");
    reply = feed(f, "HALYARD CHALLENGE\r\n");
    assert_int_equal(sscanf(reply, "$32\r\n%32s\r\n", nonce), 1);
    join_proof("sec", "n2", nonce, mac);
    snprintf(req, sizeof(req), "HALYARD PEER-AUTH n2 %s\r\n", mac);
    assert_string_equal(feed(f, req), "+OK\r\n");
    assert_string_equal(feed(f, "GET k\r\n"), "$-1\r\n");
    node_client_free(f->node, f->client);
    f->client = saved;
}

/* A WAN link's proof (join_auth.h) for role, as the link's thread computes it. */
static void wan_proof(const char *secret, const char *role, const char *nonce_t,
                      const char *nonce_s, char *hex_out)
{
    char msg[512];
    size_t len = wan_auth_message(role, "east", nonce_t, nonce_s, msg, sizeof(msg));
    assert_true(len > 0);
    toy_mac_hex(secret, msg, len, hex_out);
}

/* A WAN link proves the cluster secret with HALYARD WAN-AUTH: a wrong proof, a replayed nonce
 * or a malformed one is refused; the right one is answered with the target's own proof, and
 * the connection then runs only what a link sends (not GET, not AUTH, not other HALYARD
 * commands, not CONFIG GET of anything but partitions). */
static void test_wan_link_proof_of_the_cluster_secret(void **state)
{
    struct fixture *f = *state;
    char err[160], nonce_t[64], mac[2 * JOIN_AUTH_MAC_BYTES + 1], req[512];
    const char *nonce_s = "00112233445566778899aabbccddeeff";
    assert_int_equal(config_set(&f->cfg, "requirepass", "pw", 1, err), HY_OK);
    assert_int_equal(config_set(&f->cfg, "cluster-secret", "sec", 0, err), HY_OK);
    node_set_crypto(f->node, toy_mac, toy_random);
    struct node_client *saved = f->client;
    f->client = node_client_new(f->node, "a:1", "b:2", 6, f->now_ms);
    snprintf(req, sizeof(req), "HALYARD WAN-AUTH east %s 00\r\n", nonce_s);
    assert_string_equal(feed(f, req), "-ERR run HALYARD CHALLENGE first\r\n");
    assert_int_equal(sscanf(feed(f, "HALYARD CHALLENGE\r\n"), "$32\r\n%32s\r\n", nonce_t), 1);
    wan_proof("wrong", "source", nonce_t, nonce_s, mac);
    snprintf(req, sizeof(req), "HALYARD WAN-AUTH east %s %s\r\n", nonce_s, mac);
    assert_string_equal(feed(f, req), "-ERR WAN link refused: its secret is not this cluster's "
                                      "cluster-secret\r\n");
    wan_proof("sec", "source", nonce_t, nonce_s, mac); /* right, but the nonce is spent */
    snprintf(req, sizeof(req), "HALYARD WAN-AUTH east %s %s\r\n", nonce_s, mac);
    assert_string_equal(feed(f, req), "-ERR run HALYARD CHALLENGE first\r\n");
    assert_int_equal(sscanf(feed(f, "HALYARD CHALLENGE\r\n"), "$32\r\n%32s\r\n", nonce_t), 1);
    snprintf(req, sizeof(req), "HALYARD WAN-AUTH east XYZ %s\r\n", mac);
    assert_non_null(strstr(feed(f, req), "a nonce of 32 hex digits"));
    assert_string_equal(feed(f, "GET k\r\n"), "-NOAUTH Authentication required.\r\n");
    assert_int_equal(sscanf(feed(f, "HALYARD CHALLENGE\r\n"), "$32\r\n%32s\r\n", nonce_t), 1);
    /* A proof for another source name does not pass as east's. */
    wan_proof("sec", "source", nonce_t, nonce_s, mac);
    snprintf(req, sizeof(req), "HALYARD WAN-AUTH west %s %s\r\n", nonce_s, mac);
    assert_non_null(strstr(feed(f, req), "its secret is not this cluster's"));
    assert_int_equal(sscanf(feed(f, "HALYARD CHALLENGE\r\n"), "$32\r\n%32s\r\n", nonce_t), 1);
    wan_proof("sec", "source", nonce_t, nonce_s, mac);
    snprintf(req, sizeof(req), "HALYARD WAN-AUTH east %s %s\r\n", nonce_s, mac);
    char want[2 * JOIN_AUTH_MAC_BYTES + 1], reply[256];
    wan_proof("sec", "target", nonce_t, nonce_s, want);
    snprintf(reply, sizeof(reply), "$64\r\n%s\r\n", want);
    assert_string_equal(feed(f, req), reply);
    assert_string_equal(feed(f, "PING\r\n"), "+PONG\r\n");
    static const char *const refused[] = {"GET k\r\n",         "AUTH pw\r\n",
                                          "HALYARD PEERS\r\n", "CONFIG GET requirepass\r\n",
                                          "SET k v\r\n",       "HALYARD PEER-AUTH n2 00\r\n"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_non_null(strstr(feed(f, refused[i]), "-NOPERM this connection is a WAN link's"));
    }
    assert_null(strstr(feed(f, "CONFIG GET partitions\r\n"), "NOPERM"));
    node_client_free(f->node, f->client);
    f->client = saved;
}

/* Lazy expiry hides a key the moment its time passes; active expiry deletes it from cron. */
static void test_expiry_lazy_and_active(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "SET k v PX 100\r\n"), "+OK\r\n");
    for (int i = 0; i < 50; i++) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "SET t%d v PX 100\r\n", i);
        assert_string_equal(feed(f, cmd), "+OK\r\n");
    }
    assert_string_equal(feed(f, "DBSIZE\r\n"), ":51\r\n");
    f->now_ms += 99;
    assert_string_equal(feed(f, "GET k\r\n"), "$1\r\nv\r\n");
    f->now_ms += 1;
    assert_string_equal(feed(f, "GET k\r\n"), "$-1\r\n");
    /* The keys are still held until expiry deletes them through the log. */
    for (int i = 0; i < 100 && strcmp(feed(f, "DBSIZE\r\n"), ":0\r\n") != 0; i++) {
        f->now_ms += 100;
        node_cron(f->node, f->now_ms);
    }
    assert_string_equal(feed(f, "DBSIZE\r\n"), ":0\r\n");
}

/* Relative TTLs are stamped as absolute times: TTL counts down with the clock. */
static void test_ttl_counts_down(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "SET k v EX 100\r\n"), "+OK\r\n");
    f->now_ms += 40000;
    assert_string_equal(feed(f, "TTL k\r\n"), ":60\r\n");
    assert_string_equal(feed(f, "PERSIST k\r\n"), ":1\r\n");
    assert_string_equal(feed(f, "TTL k\r\n"), ":-1\r\n");
}

/* Under noeviction a write over maxmemory gets -OOM; under allkeys-lru it evicts instead. */
static void test_maxmemory(void **state)
{
    struct fixture *f = *state;
    char err[160], cmd[128];
    assert_int_equal(config_set(&f->cfg, "maxmemory", "200kb", 1, err), HY_OK);
    node_reconfigure(f->node);
    int oom = 0;
    for (int i = 0; i < 5000 && !oom; i++) {
        snprintf(cmd, sizeof(cmd), "SET key:%d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", i);
        oom = strncmp(feed(f, cmd), "-OOM", 4) == 0;
    }
    assert_true(oom);
    assert_string_equal(feed(f, "GET key:0\r\n"),
                        "$40\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
    assert_int_equal(config_set(&f->cfg, "maxmemory-policy", "allkeys-lru", 1, err), HY_OK);
    node_reconfigure(f->node);
    for (int i = 0; i < 5000; i++) {
        snprintf(cmd, sizeof(cmd), "SET other:%d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", i);
        assert_string_equal(feed(f, cmd), "+OK\r\n");
    }
    int64_t keys = 0;
    sscanf(feed(f, "DBSIZE\r\n"), ":%lld", (long long *)&keys);
    assert_true(keys > 0 && keys < 5000);
}

/* Idle clients are marked to close once timeout seconds pass without a command. */
static void test_idle_timeout(void **state)
{
    struct fixture *f = *state;
    char err[160];
    assert_int_equal(config_set(&f->cfg, "timeout", "2", 1, err), HY_OK);
    f->now_ms += 1500;
    assert_int_equal(node_cron(f->node, f->now_ms), 0);
    f->now_ms += 1000;
    assert_int_equal(node_cron(f->node, f->now_ms), 1);
    assert_true(f->client->flags & NODE_CLIENT_CLOSE_ASAP);
}

/* Settings parse memory units and reject bad values with a reason. */
static void test_config_values(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[160], out[64];
    config_init(&cfg);
    int64_t v;
    assert_true(config_parse_memory("10mb", &v) && v == 10 * 1024 * 1024);
    assert_true(config_parse_memory("1GB", &v) && v == 1024LL * 1024 * 1024);
    assert_true(config_parse_memory("5k", &v) && v == 5000);
    assert_false(config_parse_memory("5x", &v));
    assert_false(config_parse_memory("", &v));
    assert_int_equal(config_set(&cfg, "port", "70000", 0, err), HY_EINVAL);
    assert_int_equal(config_set(&cfg, "nope", "1", 0, err), HY_ENOTFOUND);
    assert_int_equal(config_set(&cfg, "port", "7400", 1, err), HY_EINVAL); /* not at runtime */
    assert_int_equal(config_set(&cfg, "maxmemory-policy", "volatile-lru", 1, err), HY_OK);
    for (size_t i = 0; i < config_count(); i++) {
        if (strcmp(config_name(i), "maxmemory-policy") == 0) {
            config_get(&cfg, i, out, sizeof(out));
            assert_string_equal(out, "volatile-lru");
        }
    }
    config_free(&cfg);
}

/* --join lists: names, port ranges, address ranges, in order; errors say what is wrong. */
static void test_join_targets(void **state)
{
    (void)state;
    struct node_join_target t[16];
    size_t n = 0;
    char err[160];
    assert_int_equal(
        node_join_targets_parse("a.example:17379,10.0.0.1-3:17380,h:17381-17382", t, 16, &n, err),
        0);
    assert_int_equal(n, 6);
    assert_string_equal(t[0].host, "a.example");
    assert_int_equal(t[0].peer_port, 17379);
    assert_string_equal(t[1].host, "10.0.0.1");
    assert_string_equal(t[3].host, "10.0.0.3");
    assert_int_equal(t[3].peer_port, 17380);
    assert_string_equal(t[4].host, "h");
    assert_int_equal(t[5].peer_port, 17382);
    assert_int_equal(node_join_targets_parse("10.0.0.250-260:1", t, 16, &n, err), -1);
    assert_non_null(strstr(err, "not a range"));
    assert_int_equal(node_join_targets_parse("h:2-1", t, 16, &n, err), -1);
    assert_int_equal(node_join_targets_parse("h", t, 16, &n, err), -1);
    assert_int_equal(node_join_targets_parse(":17379", t, 16, &n, err), -1);
    assert_int_equal(node_join_targets_parse("h:1-20", t, 16, &n, err), -1);
    assert_non_null(strstr(err, "more than 16"));
}

/* --bootstrap lists with ranges: a range of addresses or ports comes with a range of names of
 * the same length, expanded pairwise; a name with "-" and a host whose last part has letters
 * stay as they are; errors say what is wrong. */
static void test_bootstrap_ranges(void **state)
{
    (void)state;
    struct node_member m[16];
    size_t n = 0;
    char err[160];
    assert_int_equal(node_members_parse("n1-3@127.0.0.1:17379-17381,db-1@a.my-host:17390,"
                                        "x7-8@10.0.0.254-255:17400",
                                        m, 16, &n, err),
                     HY_OK);
    assert_int_equal(n, 6);
    assert_string_equal(m[0].name, "n1");
    assert_string_equal(m[2].name, "n3");
    assert_string_equal(m[2].host, "127.0.0.1");
    assert_int_equal(m[2].peer_port, 17381);
    assert_int_equal(m[2].client_port, 7381);
    assert_true(m[2].id == node_member_id("n3"));
    assert_string_equal(m[3].name, "db-1");
    assert_string_equal(m[3].host, "a.my-host");
    assert_string_equal(m[4].name, "x7");
    assert_string_equal(m[4].host, "10.0.0.254");
    assert_string_equal(m[5].name, "x8");
    assert_string_equal(m[5].host, "10.0.0.255");
    assert_int_equal(m[5].peer_port, 17400);
    /* Name and address ranges of different lengths, no name range, both kinds of range. */
    assert_int_equal(node_members_parse("n1-2@127.0.0.1:17379-17381", m, 16, &n, err), HY_ECONFIG);
    assert_non_null(strstr(err, "same length"));
    assert_int_equal(node_members_parse("node@127.0.0.1:17379-17381", m, 16, &n, err), HY_ECONFIG);
    assert_int_equal(node_members_parse("n1-4@10.0.0.1-2:17379-17380", m, 16, &n, err), HY_ECONFIG);
    assert_non_null(strstr(err, "not both"));
    assert_int_equal(node_members_parse("n1-3@10.0.0.3-1:17379", m, 16, &n, err), HY_ECONFIG);
    /* A range that repeats a listed name, and one past the cap. */
    assert_int_equal(node_members_parse("n2@h:17000,n1-3@127.0.0.1:17379-17381", m, 16, &n, err),
                     HY_ECONFIG);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(node_members_parse("n1-20@127.0.0.1:17379-17398", m, 16, &n, err), HY_ECONFIG);
    assert_non_null(strstr(err, "too many"));
}

static const uint8_t *member_up_of(struct hy_node *n, const char *name)
{
    for (size_t i = 0; i < n->member_count; i++) {
        if (strcmp(n->members[i].name, name) == 0) {
            return &n->member_up[i];
        }
    }
    return NULL;
}

/* A guest (node.h): a node that proved the secret before this one's member list named it (it
 * joined while this node was cut off, simulator seed 1960000267). Its name addresses its Raft
 * messages at once; a link up as a guest is up for the member it becomes (else this node
 * never forwards to it: the link does not come up again); a name known as removed, or this
 * node's own, is not admitted. */
static void test_guest_named_until_its_log_member(void **state)
{
    struct fixture *f = *state;
    struct hy_node *n = f->node;
    assert_true(node_guest_admissible(n, "n5"));
    assert_false(node_guest_admissible(n, "n1")); /* itself */
    assert_null(node_member_name(n, node_member_id("n5")));
    node_guest_add(n, "n5");
    assert_string_equal(node_member_name(n, node_member_id("n5")), "n5");
    assert_false(node_guest_up(n, "n5"));
    node_peer_state(n, "n5", 1, f->now_ms);
    assert_true(node_guest_up(n, "n5"));
    assert_null(member_up_of(n, "n5"));

    /* The log names it (the hints member_scan_log takes): a member, and up. */
    struct store_member sm = {
        .name = "n5", .host = "127.0.0.1", .peer_port = 17005, .role = STORE_MEMBER_VOTER};
    n->log_members[n->log_member_count++] = sm;
    /* And one removed while this node looked away: a member, not a guest. */
    struct store_member gone = {
        .name = "n6", .host = "127.0.0.1", .peer_port = 17006, .role = STORE_MEMBER_REMOVED};
    n->log_members[n->log_member_count++] = gone;
    n->log_members_upto = UINT64_MAX;
    member_rebuild(n);
    const uint8_t *up = member_up_of(n, "n5");
    assert_non_null(up);
    assert_int_equal(*up, 1);
    assert_string_equal(node_member_name(n, node_member_id("n5")), "n5");
    assert_false(node_guest_admissible(n, "n6"));
    node_guest_add(n, "n6"); /* refused: the transport asks first, but even so */
    assert_false(node_guest_up(n, "n6"));
    node_peer_state(n, "n6", 1, f->now_ms);
    assert_false(node_guest_up(n, "n6"));
}

/* The member events: a link up and down between two crons still counts as reached. Else, once
 * gossip said the member ALIVE (after a restart, its link not back yet), the cron took it for
 * one never reached and said SUSPECT, and nothing said ALIVE again (CI, test_events.py). A link
 * back to a member gossip holds alive ends a SUSPECT (node_peer_state). */
static void test_member_reached_between_two_crons_stays_alive(void **state)
{
    struct fixture *f = *state;
    struct hy_node *n = f->node;
    struct store_member sm = {
        .name = "n2", .host = "127.0.0.1", .peer_port = 17002, .role = STORE_MEMBER_VOTER};
    n->log_members[n->log_member_count++] = sm;
    n->log_members_upto = UINT64_MAX;
    member_rebuild(n);
    node_events_cron(n, f->now_ms); /* the first cron: the link grace starts */
    node_peer_state(n, "n2", 1, f->now_ms);
    node_peer_state(n, "n2", 0, f->now_ms + 40); /* no cron between: SUSPECT */
    uint64_t suspect = n->events.last_id;
    assert_non_null(strstr(n->events.ring[suspect % NODE_EVENTS_MAX], "MEMBER_SUSPECT"));
    node_events_peer(n, "n2", 1, f->now_ms + 1000); /* gossip's verdict: ALIVE */
    uint64_t alive = n->events.last_id;
    assert_int_equal(alive, suspect + 1);
    assert_non_null(strstr(n->events.ring[alive % NODE_EVENTS_MAX], "MEMBER_ALIVE"));
    node_events_cron(n, f->now_ms + 5000); /* past the link grace: nothing new of n2 */
    for (uint64_t id = alive + 1; id <= n->events.last_id; id++) {
        assert_null(strstr(n->events.ring[id % NODE_EVENTS_MAX], "\"n2\""));
    }
}

/* An HY.LEADERS answer reads as its lines, then the draining mark only when a whole line says
 * so (fuzz_leaders found "draining\0..." taken for it); a line that does not parse ends it. */
static void test_hy_leaders_answer_reading(void **state)
{
    (void)state;
    static const char answer[] =
        "$49\r\n1 5 n1 7\n2 9 n3\n3 9 n2 4 31\n4 9 n2 0 31\ndraining\n\r\n";
    const char *end = answer + sizeof(answer) - 1;
    const char *p = partmap_leaders_body((const uint8_t *)answer, sizeof(answer) - 1);
    struct partmap_leaders_line l;
    assert_non_null(p);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_LINE);
    assert_int_equal(l.group, 1);
    assert_int_equal(l.term, 5);
    assert_string_equal(l.name, "n1");
    assert_int_equal(l.settled, 7);
    assert_int_equal(l.cfg_index, 0); /* a node of before names no configuration index */
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_LINE);
    assert_int_equal(l.group, 2);
    assert_string_equal(l.name, "n3");
    assert_int_equal(l.settled, 0);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_LINE);
    assert_int_equal(l.group, 3);
    assert_int_equal(l.settled, 4);
    assert_int_equal(l.cfg_index, 31);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_LINE);
    assert_int_equal(l.group, 4);
    assert_int_equal(l.settled, 0);
    assert_int_equal(l.cfg_index, 0); /* not settled: no index */
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_DRAINING);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_END);

    /* The copies that vote, last; a voter line that is not "voter <group>" ends the answer. */
    static const char voters[] = "$0\r\n1 5 n1\nvoter 3\nvoter 4294967295\nvoter 7x\nvoter 8\n\r\n";
    end = voters + sizeof(voters) - 1;
    p = partmap_leaders_body((const uint8_t *)voters, sizeof(voters) - 1);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_LINE);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_VOTER);
    assert_int_equal(l.group, 3);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_VOTER);
    assert_int_equal(l.group, UINT32_MAX);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_END);
    static const char big[] = "$0\r\nvoter 4294967296\n\r\n";
    end = big + sizeof(big) - 1;
    p = partmap_leaders_body((const uint8_t *)big, sizeof(big) - 1);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_END);
    static const char sign[] = "$0\r\nvoter -1\n\r\n";
    end = sign + sizeof(sign) - 1;
    p = partmap_leaders_body((const uint8_t *)sign, sizeof(sign) - 1);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_END);

    static const char nul[] = "$12\r\ndraining\0-\n\r\n";
    end = nul + sizeof(nul) - 1;
    p = partmap_leaders_body((const uint8_t *)nul, sizeof(nul) - 1);
    assert_int_equal(partmap_leaders_next(&p, end, &l), PARTMAP_LEADERS_END);
    assert_null(partmap_leaders_body((const uint8_t *)"-ERR x\r\n", 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_waits_for_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_turn_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_request_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_arity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_error_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_limits_are_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requirepass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_proof_of_the_cluster_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wan_link_proof_of_the_cluster_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_lazy_and_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_counts_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maxmemory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forked_snapshot_then_another_is_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_few_large_keys_snapshot_in_the_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_log_percent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_log_min_shared_by_use, setup_partitions,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wan_role_followed_by_writes, setup_partitions,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_named_until_its_log_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_reached_between_two_crons_stays_alive, setup,
                                        teardown),
        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_join_targets),
        cmocka_unit_test(test_bootstrap_ranges),
        cmocka_unit_test(test_hy_leaders_answer_reading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
