/* Unit tests for src/io/wal_thread.c on the simulated disk and a real libuv loop: one WAL
 * thread for several Raft groups, group commit per loop turn across groups (one fdatasync),
 * suffix replacement inside a group, ENOSPC retry, fatal EIO, stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "common/alloc.h"
#include "io/disk_mem.h"
#include "io/wal.h"
#include "io/wal_thread.h"

struct tfx {
    uv_loop_t loop;
    struct disk *disk;
    struct wal_config cfg;
    struct wal *w;
    struct wal_recovered rec[3]; /* groups 0, 7, 3 */
    struct wal_thread *t;
    struct wal_thread_done last;
    int calls;
    int enospc_seen;
};

static void done_cb(void *ctx, const struct wal_thread_done *d)
{
    struct tfx *f = ctx;
    f->last = *d;
    f->calls++;
    f->enospc_seen |= d->status == HY_ENOSPC;
}

static const uint32_t groups[3] = {0, 7, 3};

static void tfx_recs_free(struct tfx *f)
{
    for (int i = 0; i < 3; i++) {
        wal_recovered_free(&f->rec[i]);
    }
}

/* Starts the fixture on `disk` (owned by the fixture from now on). */
static void tfx_start_on(struct tfx *f, struct disk *disk)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->disk = disk;
    wal_config_default(&f->cfg);
    f->cfg.segment_size_bytes = 1 << 16;
    assert_int_equal(wal_open(f->disk, &f->cfg, groups, 3, &f->w, f->rec, NULL, 0), HY_OK);
    tfx_recs_free(f);
    assert_int_equal(wal_thread_start(&f->loop, f->w, f, done_cb, &f->t), HY_OK);
}

static void tfx_start(struct tfx *f)
{
    tfx_start_on(f, disk_mem_new("/t", 1));
}

/* Stops the thread, checks the log by reopening it, and frees everything. */
static void tfx_stop(struct tfx *f)
{
    wal_thread_stop(f->t);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    wal_close(f->w);
    char err[512] = "";
    int rc = wal_open(f->disk, &f->cfg, groups, 3, &f->w, f->rec, err, sizeof(err));
    if (rc != HY_OK) {
        fail_msg("reopen: %s", err);
    }
}

static void tfx_free(struct tfx *f)
{
    wal_close(f->w);
    tfx_recs_free(f);
    disk_destroy(f->disk);
}

static uint64_t submit_g(struct tfx *f, uint32_t group, uint64_t first, size_t n, uint64_t term)
{
    struct wal_entry e[16];
    /* Borrowed until durable (wal_thread_submit): static, not on this stack frame. */
    static const uint8_t data[16] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        e[i] = (struct wal_entry){.term = term, .type = 1, .len = (uint32_t)(i + 1), .data = data};
    }
    struct wal_node_req req = {.group = group, .first_index = first, .entries = e, .n_entries = n};
    return wal_thread_submit(f->t, &req);
}

static uint64_t submit(struct tfx *f, uint64_t first, size_t n, uint64_t term)
{
    return submit_g(f, 0, first, n, term);
}

/* Proves that everything submitted in one loop turn, by every group, shares one fdatasync,
 * and that each group recovers its own entries and term/vote. */
static void test_group_commit_per_turn(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    for (uint64_t i = 1; i <= 10; i++) {
        assert_int_equal(submit_g(&f, groups[i % 3], (i + 2) / 3, 1, 1), i);
    }
    struct wal_node_req tv = {.group = 7, .term_vote_changed = 1, .term = 1, .vote = 2};
    assert_int_equal(wal_thread_submit(f.t, &tv), 11);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0); /* returns once all is durable */
    assert_int_equal(f.last.status, HY_OK);
    assert_int_equal(f.last.durable_seq, 11);
    /* The segment exists since the open: one sync for every group's entries and the vote. */
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1);
    tfx_stop(&f);
    /* i % 3 == 1 -> group 7 (i = 1, 4, 7, 10), 2 -> group 3 (2, 5, 8), 0 -> group 0 (3, 6, 9). */
    assert_int_equal(f.rec[1].n_entries, 4);
    assert_int_equal(f.rec[2].n_entries, 3);
    assert_int_equal(f.rec[0].n_entries, 3);
    assert_int_equal(f.rec[1].term, 1);
    assert_int_equal(f.rec[1].vote, 2);
    assert_int_equal(f.rec[0].term, 0);
    assert_int_equal(f.rec[2].vote, 0);
    tfx_free(&f);
}

/* Runs the loop until request seq is durable. */
static void run_until_durable(struct tfx *f, uint64_t seq)
{
    while (f->last.durable_seq < seq) {
        assert_int_equal(f->last.status, HY_OK);
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Group commit waits for the writers of the previous group: after a group of 5 entries, 2
 * entries submitted in one loop turn wait for the 3 of the next turn, and the 5 share one
 * fdatasync. Taken at once, the 2 made a group of their own, and writers that each wait for
 * their reply then alternated in two cohorts, each fdatasync carrying half of them (bench
 * SET -P 1 with 50 clients: 23.5 SETs per fdatasync against Redis's 43). The wait is bounded
 * (half the previous group's time, at most 250 µs); here the bound is an hour, so that only
 * the entries can end it. */
static void test_group_commit_waits_for_the_previous_writers(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    wal_thread__set_linger_ns(f.t, 3600ull * 1000 * 1000 * 1000);
    run_until_durable(&f, submit(&f, 1, 5, 1));
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    submit(&f, 6, 2, 1);
    (void)uv_run(&f.loop, UV_RUN_NOWAIT); /* the turn ends: its 2 entries go to the thread */
    run_until_durable(&f, submit(&f, 8, 3, 1));
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1);
    /* A term or vote does not wait (elections are not slowed): with the hour's bound, this
     * test would hang here otherwise. */
    struct wal_node_req tv = {.group = 7, .term_vote_changed = 1, .term = 2, .vote = 1};
    run_until_durable(&f, wal_thread_submit(f.t, &tv));
    tfx_stop(&f);
    assert_int_equal(f.rec[0].n_entries, 10);
    assert_int_equal(f.rec[1].term, 2);
    tfx_free(&f);
}

/* Proves a request replacing a suffix inside the same group trims the merged entries. */
static void test_suffix_replaced_in_group(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    submit(&f, 1, 5, 1);
    submit_g(&f, 3, 1, 4, 1);
    submit(&f, 3, 2, 2);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.durable_seq, 3);
    submit(&f, 2, 1, 3); /* a later turn: supersedes 2.. of group 0 only */
    submit_g(&f, 3, 5, 1, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    tfx_stop(&f);
    assert_int_equal(f.rec[0].n_entries, 2);
    assert_int_equal(f.rec[0].entries[0].term, 1);
    assert_int_equal(f.rec[0].entries[1].term, 3);
    assert_int_equal(f.rec[2].n_entries, 5);
    assert_int_equal(f.rec[2].first_index, 1);
    tfx_free(&f);
}

/* Proves a full disk is reported as HY_ENOSPC and the thread retries by itself once space
 * returns, then reports the work durable. */
static void test_enospc_retry(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    /* The write fails; then space returns (the fault is transient), and the thread must
     * notice by itself (the retry goes to a new segment). The disk is only touched here,
     * before the thread runs: the simulated disk is single-threaded. */
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_WRITE), 1, HY_ENOSPC, 0);
    submit(&f, 1, 3, 1);
    submit_g(&f, 7, 1, 2, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_true(f.enospc_seen);
    assert_int_equal(f.last.status, HY_OK);
    assert_int_equal(f.last.durable_seq, 2);
    tfx_stop(&f);
    assert_int_equal(f.rec[0].n_entries, 3);
    assert_int_equal(f.rec[1].n_entries, 2);
    tfx_free(&f);
}

/* Proves a failed fdatasync is reported as HY_EIO (fatal) and nothing after it is written. */
static void test_sync_failure_reported(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    submit(&f, 1, 1, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_SYNC), 1, HY_EIO, 0);
    submit(&f, 2, 1, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.status, HY_EIO);
    assert_int_equal(f.last.durable_seq, 1);
    wal_thread_stop(f.t);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    assert_int_equal(wal_append(f.w, 0, 3, NULL, 1), HY_EIO); /* the wal stays failed */
    wal_close(f.w);
    disk_destroy(f.disk);
}

/* Proves stop writes what was submitted but never handed over, and reports it. */
static void test_stop_drains(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    submit(&f, 1, 4, 1);
    struct wal_snapshot s = {.index = 2, .term = 1, .data = (const uint8_t *)"s", .data_len = 1};
    struct wal_node_req req = {.snapshot = &s};
    wal_thread_submit(f.t, &req);
    submit_g(&f, 3, 1, 2, 1);
    tfx_stop(&f);
    assert_int_equal(f.last.durable_seq, 3);
    assert_int_equal(f.rec[0].snapshot.index, 2);
    assert_int_equal(f.rec[0].first_index + f.rec[0].n_entries - 1, 4);
    assert_int_equal(f.rec[2].n_entries, 2);
    assert_int_equal(f.rec[1].n_entries, 0);
    tfx_free(&f);
}

/* Proves replicated mode reports entries durable once written, with no fdatasync, and syncs
 * them when the thread stops (a clean shutdown leaves nothing unsynced). The interval is long
 * enough that no timed sync can come in between, so the thread leaves the disk alone while the
 * test reads its counters. */
static void test_replicated_reports_written(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 10000);
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    submit(&f, 1, 3, 1);
    submit_g(&f, 7, 1, 2, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.status, HY_OK);
    assert_int_equal(f.last.durable_seq, 2);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 0);
    submit(&f, 4, 1, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.durable_seq, 3);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 0);
    wal_thread_stop(f.t);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1);
    /* Only what was synced survives a power cut: the stop's fdatasync took everything. */
    disk_mem_crash(f.disk, DISK_CRASH_DROP);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    wal_close(f.w);
    char err[512] = "";
    if (wal_open(f.disk, &f.cfg, groups, 3, &f.w, f.rec, err, sizeof(err)) != HY_OK) {
        fail_msg("reopen: %s", err);
    }
    assert_int_equal(f.rec[0].n_entries, 4);
    assert_int_equal(f.rec[1].n_entries, 2);
    tfx_free(&f);
}

/* Proves a term/vote is fdatasync'd before it is reported in replicated mode too (with the
 * entries written before it). */
static void test_replicated_syncs_votes(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 10000);
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    submit(&f, 1, 2, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 0);
    struct wal_node_req tv = {.group = 3, .term_vote_changed = 1, .term = 2, .vote = 1};
    assert_int_equal(wal_thread_submit(f.t, &tv), 2);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.durable_seq, 2);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1);
    tfx_stop(&f);
    assert_int_equal(f.rec[2].term, 2);
    assert_int_equal(f.rec[2].vote, 1);
    assert_int_equal(f.rec[0].n_entries, 2);
    tfx_free(&f);
}

/* Proves replicated mode fdatasyncs by itself once the interval runs out, with no further
 * write to prompt it (waits for it with a deadline; how soon is not asserted). */
static void test_replicated_syncs_within_interval(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 20);
    uint64_t before = wal_thread_last_sync_ns(f.t);
    submit(&f, 1, 2, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    uint64_t deadline = uv_hrtime() + 30ull * 1000 * 1000 * 1000;
    while (wal_thread_last_sync_ns(f.t) == before && uv_hrtime() < deadline) {
        uv_sleep(5);
    }
    assert_true(wal_thread_last_sync_ns(f.t) != before);
    struct hy_histo h;
    wal_thread_sync_times(f.t, &h);
    assert_int_equal(h.count, 1);
    tfx_stop(&f);
    assert_int_equal(f.rec[0].n_entries, 2);
    tfx_free(&f);
}

/* wal_thread_write_now of one request: its sequence number, 0 when not written. */
static uint64_t write_now(struct tfx *f, const struct wal_node_req *req)
{
    uint64_t seq;
    return wal_thread_write_now(f->t, &req, 1, &seq) == 1 ? seq : 0;
}

/* wal_thread_write_now of n entries of `len` bytes each (static data) at first in group. */
static uint64_t write_now_g(struct tfx *f, uint32_t group, uint64_t first, size_t n, uint32_t len)
{
    static const uint8_t data[4096];
    struct wal_entry e[16];
    for (size_t i = 0; i < n; i++) {
        e[i] = (struct wal_entry){.term = 1, .type = 1, .len = len, .data = data};
    }
    struct wal_node_req req = {.group = group, .first_index = first, .entries = e, .n_entries = n};
    return write_now(f, &req);
}

/* Proves that in replicated mode the loop writes a request of entries itself (no completion
 * to wait for, no fdatasync), and that it leaves to the thread the fsync mode, a term/vote, a
 * configuration entry, and anything while a submitted request is not written yet; and that
 * what it wrote is synced when the thread stops and recovered. */
static void test_loop_writes_itself_in_replicated_mode(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    assert_int_equal(write_now_g(&f, 0, 1, 2, 10), 0); /* fsync mode: the thread's */
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 10000);
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    uint64_t writes = disk_mem_op_calls(f.disk, DISK_OP_WRITE);
    assert_int_equal(write_now_g(&f, 0, 1, 2, 10), 1);
    assert_int_equal(write_now_g(&f, 7, 1, 3, 10), 2);
    /* Written at once, on this thread: one write() each, no fdatasync, nothing reported. */
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_WRITE) - writes, 2);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 0);
    assert_int_equal(wal_thread_loop_writes(f.t), 2);
    assert_int_equal(f.calls, 0);
    /* A term/vote is synced: submitted; behind it, entries wait their turn too. */
    struct wal_node_req tv = {.group = 3, .term_vote_changed = 1, .term = 2, .vote = 1};
    struct wal_node_req one = tv;
    assert_int_equal(write_now(&f, &one), 0);
    assert_int_equal(wal_thread_submit(f.t, &tv), 3);
    assert_int_equal(write_now_g(&f, 0, 3, 1, 10), 0);
    assert_int_equal(submit_g(&f, 0, 3, 1, 1), 4);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.durable_seq, 4);
    /* A configuration entry is synced too. */
    static const uint8_t cfg_data[4] = "cfg";
    struct wal_entry ce = {.term = 1, .type = RAFT_ENTRY_CONFIG, .len = 3, .data = cfg_data};
    struct wal_node_req creq = {.group = 7, .first_index = 4, .entries = &ce, .n_entries = 1};
    assert_int_equal(write_now(&f, &creq), 0);
    assert_int_equal(write_now_g(&f, 7, 4, 1, 10), 5); /* written once nothing waits */
    assert_int_equal(wal_thread_loop_writes(f.t), 3);
    tfx_stop(&f); /* the stop syncs: a power cut after it loses nothing */
    assert_int_equal(f.rec[0].n_entries, 3);
    assert_int_equal(f.rec[1].n_entries, 4);
    assert_int_equal(f.rec[2].term, 2);
    tfx_free(&f);
}

/* wal_thread_sync_now of n entries of 10 bytes at first in group 0: its sequence number, 0
 * when not written. */
static uint64_t sync_now_n(struct tfx *f, uint64_t first, size_t n)
{
    static const uint8_t data[16];
    struct wal_entry e[16];
    for (size_t i = 0; i < n; i++) {
        e[i] = (struct wal_entry){.term = 1, .type = 1, .len = 10, .data = data};
    }
    struct wal_node_req req = {.group = 0, .first_index = first, .entries = e, .n_entries = n};
    const struct wal_node_req *p = &req;
    uint64_t seq;
    return wal_thread_sync_now(f->t, &p, 1, &seq) == 1 ? seq : 0;
}

/* Proves that in fsync mode the loop writes and fdatasyncs entries itself (one write and one
 * fdatasync, durable on return: a power cut right after loses none of them), numbers them
 * after what the thread wrote, records the sync with the thread's, and leaves everything to
 * the thread in replicated mode, behind a submitted request, and after a failed fdatasync
 * (the wal stays failed and the thread reports it). */
static void test_loop_syncs_itself_in_fsync_mode(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    assert_int_equal(submit(&f, 1, 1, 1), 1);
    assert_int_equal(sync_now_n(&f, 2, 1), 0); /* the thread holds one */
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.durable_seq, 1);
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    uint64_t writes = disk_mem_op_calls(f.disk, DISK_OP_WRITE);
    int calls = f.calls;
    assert_int_equal(sync_now_n(&f, 2, 3), 2);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_WRITE) - writes, 1);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1);
    assert_int_equal(f.calls, calls); /* nothing to report: the caller completes it */
    assert_int_equal(wal_thread_loop_writes(f.t), 1);
    struct hy_histo h;
    wal_thread_sync_times(f.t, &h);
    assert_int_equal(h.count, 2); /* the thread's group commit and the loop's */
    /* Replicated mode is wal_thread_write_now's. */
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 10000);
    assert_int_equal(sync_now_n(&f, 5, 1), 0);
    wal_thread_set_durability(f.t, WAL_NODE_FSYNC, 10000);
    assert_int_equal(sync_now_n(&f, 5, 1), 3);
    /* A power cut now keeps all five entries: every one was fdatasync'd. */
    wal_thread_stop(f.t);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    disk_mem_crash(f.disk, DISK_CRASH_DROP);
    wal_close(f.w);
    char err[512] = "";
    if (wal_open(f.disk, &f.cfg, groups, 3, &f.w, f.rec, err, sizeof(err)) != HY_OK) {
        fail_msg("reopen: %s", err);
    }
    assert_int_equal(f.rec[0].n_entries, 5);
    tfx_recs_free(&f);
    /* A failed fdatasync in the loop: nothing is numbered, and the thread, given the same
     * request, reports the failure (never a retried fdatasync). */
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(wal_thread_start(&f.loop, f.w, &f, done_cb, &f.t), HY_OK);
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_SYNC), 1, HY_EIO, 0);
    assert_int_equal(sync_now_n(&f, 6, 1), 0);
    assert_int_equal(submit(&f, 6, 1, 1), 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.status, HY_EIO);
    wal_thread_stop(f.t);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    wal_close(f.w);
    disk_destroy(f.disk);
}

/* Proves that the loop writes a turn's requests of several groups with one write() and numbers
 * them in order, and stops at the first one that must be synced (a configuration entry), which
 * and whose followers go to the thread after it, in order. */
static void test_loop_writes_a_turn_as_one_group_commit(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 10000);
    static const uint8_t data[4] = "abc";
    struct wal_entry e = {.term = 1, .type = 1, .len = 3, .data = data};
    struct wal_entry ce = {.term = 1, .type = RAFT_ENTRY_CONFIG, .len = 3, .data = data};
    struct wal_node_req r[5] = {
        {.group = 0, .first_index = 1, .entries = &e, .n_entries = 1},
        {.group = 7, .first_index = 1, .entries = &e, .n_entries = 1},
        {.group = 0, .first_index = 2, .entries = &e, .n_entries = 1},
        {.group = 3, .first_index = 1, .entries = &ce, .n_entries = 1},
        {.group = 0, .first_index = 3, .entries = &e, .n_entries = 1},
    };
    const struct wal_node_req *p[5] = {&r[0], &r[1], &r[2], &r[3], &r[4]};
    uint64_t writes = disk_mem_op_calls(f.disk, DISK_OP_WRITE);
    uint64_t first = 0;
    assert_int_equal(wal_thread_write_now(f.t, p, 5, &first), 3);
    assert_int_equal(first, 1);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_WRITE) - writes, 1);
    assert_int_equal(wal_thread_submit(f.t, p[3]), 4);
    assert_int_equal(wal_thread_submit(f.t, p[4]), 5);
    assert_int_equal(wal_thread_write_now(f.t, p, 1, &first), 0); /* the thread holds some */
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.durable_seq, 5);
    tfx_stop(&f);
    assert_int_equal(f.rec[0].n_entries, 3);
    assert_int_equal(f.rec[1].n_entries, 1);
    assert_int_equal(f.rec[2].n_entries, 1);
    tfx_free(&f);
}

/* Proves that the loop leaves to the thread a write that needs a new segment (whose making
 * syncs), and that the thread's roll keeps every entry in order. */
static void test_loop_leaves_segment_roll_to_thread(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f); /* 64 KiB segments */
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 10000);
    uint64_t next = 1, by_loop = 0;
    int handed = 0;
    while (next < 40) {
        uint64_t seq = write_now_g(&f, 0, next, 4, 4000);
        if (seq == 0) {
            handed++;
            submit_g(&f, 0, next, 4, 1);
            assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
        } else {
            by_loop++;
        }
        next += 4;
    }
    assert_true(handed >= 1 && by_loop >= 5);
    assert_int_equal(wal_thread_loop_writes(f.t), by_loop);
    assert_true(wal_segment_count(f.w) >= 2);
    tfx_stop(&f);
    assert_int_equal(f.rec[0].first_index, 1);
    assert_int_equal(f.rec[0].n_entries, next - 1);
    tfx_free(&f);
}

/* Proves that, on a real file system, the thread's timed fdatasyncs run while the loop keeps
 * writing (wal_sync_begin / wal_sync_fd), that one comes by itself after a lone write of the
 * loop (the thread, asleep with nothing unsynced, is woken for it), and that every entry the
 * loop wrote is recovered afterwards, in order. */
static void test_loop_writes_beside_timed_syncs(void **state)
{
    (void)state;
    char dir[] = "/tmp/hy_wal_thread_XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct disk *disk;
    assert_int_equal(disk_posix_open(dir, &disk), HY_OK);
    struct tfx f;
    tfx_start_on(&f, disk);
    wal_thread_set_durability(f.t, WAL_NODE_REPLICATED, 1);
    uint64_t next = 1, by_loop = 0;
    uint64_t deadline = uv_hrtime() + 30ull * 1000 * 1000 * 1000;
    struct hy_histo h;
    do {
        for (int i = 0; i < 200; i++, next++) {
            if (write_now_g(&f, 0, next, 1, 32) != 0) {
                by_loop++;
                continue;
            }
            /* The thread holds something (a sync on a disk that could not run beside it
             * would): hand it over and let it finish. */
            submit_g(&f, 0, next, 1, 1);
            assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
        }
        wal_thread_sync_times(f.t, &h);
    } while (h.count < 3 && uv_hrtime() < deadline);
    assert_true(h.count >= 3); /* timed fdatasyncs came while the loop wrote */
    assert_true(by_loop > 0);
    /* Once everything is synced, a lone write is synced too, with nothing more to prompt it. */
    uint64_t before = h.count;
    do {
        uv_sleep(5);
        wal_thread_sync_times(f.t, &h);
    } while (h.count == before && uv_hrtime() < deadline);
    for (int lone = 0; lone < 3; lone++, next++) {
        uv_sleep(5); /* past the 1 ms interval: the thread sleeps with nothing unsynced */
        before = h.count;
        assert_int_not_equal(write_now_g(&f, 0, next, 1, 32), 0);
        do {
            uv_sleep(1);
            wal_thread_sync_times(f.t, &h);
        } while (h.count == before && uv_hrtime() < deadline);
        assert_true(h.count > before);
    }
    tfx_stop(&f);
    assert_int_equal(f.rec[0].first_index, 1);
    assert_int_equal(f.rec[0].n_entries, next - 1);
    tfx_free(&f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_writes_itself_in_replicated_mode),
        cmocka_unit_test(test_loop_syncs_itself_in_fsync_mode),
        cmocka_unit_test(test_loop_writes_a_turn_as_one_group_commit),
        cmocka_unit_test(test_loop_leaves_segment_roll_to_thread),
        cmocka_unit_test(test_loop_writes_beside_timed_syncs),
        cmocka_unit_test(test_replicated_reports_written),
        cmocka_unit_test(test_replicated_syncs_votes),
        cmocka_unit_test(test_replicated_syncs_within_interval),
        cmocka_unit_test(test_group_commit_per_turn),
        cmocka_unit_test(test_group_commit_waits_for_the_previous_writers),
        cmocka_unit_test(test_suffix_replaced_in_group),
        cmocka_unit_test(test_enospc_retry),
        cmocka_unit_test(test_sync_failure_reported),
        cmocka_unit_test(test_stop_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
