/* Unit tests for src/io/wal_thread.c on the simulated disk and a real libuv loop: group
 * commit per loop turn, suffix replacement inside a group, ENOSPC retry, fatal EIO, stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    struct wal_recovered rec;
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

static void tfx_start(struct tfx *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->disk = disk_mem_new("/t", 1);
    wal_config_default(&f->cfg);
    f->cfg.segment_size_bytes = 1 << 16;
    assert_int_equal(wal_open(f->disk, &f->cfg, &f->w, &f->rec, NULL, 0), HY_OK);
    wal_recovered_free(&f->rec);
    assert_int_equal(wal_thread_start(&f->loop, f->w, f, done_cb, &f->t), HY_OK);
}

/* Stops the thread, checks the log by reopening it, and frees everything. */
static void tfx_stop(struct tfx *f)
{
    wal_thread_stop(f->t);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    wal_close(f->w);
    assert_int_equal(wal_open(f->disk, &f->cfg, &f->w, &f->rec, NULL, 0), HY_OK);
}

static void tfx_free(struct tfx *f)
{
    wal_close(f->w);
    wal_recovered_free(&f->rec);
    disk_destroy(f->disk);
}

static uint64_t submit(struct tfx *f, uint64_t first, size_t n, uint64_t term)
{
    struct wal_entry e[16];
    uint8_t data[16] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        e[i] = (struct wal_entry){.term = term, .type = 1, .len = (uint32_t)(i + 1), .data = data};
    }
    struct wal_thread_req req = {.first_index = first, .entries = e, .n_entries = n};
    return wal_thread_submit(f->t, &req);
}

/* Proves that everything submitted in one loop turn shares one fdatasync. */
static void test_group_commit_per_turn(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    for (uint64_t i = 1; i <= 10; i++) {
        assert_int_equal(submit(&f, i, 1, 1), i);
    }
    struct wal_thread_req tv = {.term_vote_changed = 1, .term = 1, .vote = 2};
    assert_int_equal(wal_thread_submit(f.t, &tv), 11);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0); /* returns once all is durable */
    assert_int_equal(f.last.status, HY_OK);
    assert_int_equal(f.last.durable_seq, 11);
    assert_int_equal(f.last.last_index, 10);
    assert_int_equal(f.last.last_term, 1);
    /* One sync for the new segment, one for the metadata file, one for all ten entries. */
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 3);
    tfx_stop(&f);
    assert_int_equal(f.rec.n_entries, 10);
    assert_int_equal(f.rec.term, 1);
    assert_int_equal(f.rec.vote, 2);
    tfx_free(&f);
}

/* Proves a request replacing a suffix inside the same group trims the merged entries. */
static void test_suffix_replaced_in_group(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    submit(&f, 1, 5, 1);
    submit(&f, 3, 2, 2);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.last_index, 4);
    assert_int_equal(f.last.last_term, 2);
    submit(&f, 2, 1, 3); /* a later turn: truncates on disk */
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.last.last_index, 2);
    tfx_stop(&f);
    assert_int_equal(f.rec.n_entries, 2);
    assert_int_equal(f.rec.entries[0].term, 1);
    assert_int_equal(f.rec.entries[1].term, 3);
    tfx_free(&f);
}

/* Proves a full disk is reported as HY_ENOSPC and the thread retries by itself once space
 * returns, then reports the work durable. */
static void test_enospc_retry(void **state)
{
    (void)state;
    struct tfx f;
    tfx_start(&f);
    /* The first segment cannot be created; then space returns (the fault is transient), and
     * the thread must notice by itself. The disk is only touched here, before the thread
     * runs: the simulated disk is single-threaded. */
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_PREALLOCATE), 1, HY_ENOSPC, 0);
    submit(&f, 1, 3, 1);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_true(f.enospc_seen);
    assert_int_equal(f.last.status, HY_OK);
    assert_int_equal(f.last.durable_seq, 1);
    assert_int_equal(f.last.last_index, 3);
    tfx_stop(&f);
    assert_int_equal(f.rec.n_entries, 3);
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
    assert_int_equal(wal_append(f.w, 3, NULL, 1), HY_EIO); /* the wal stays failed */
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
    struct wal_thread_req req = {.snapshot = &s};
    wal_thread_submit(f.t, &req);
    tfx_stop(&f);
    assert_int_equal(f.last.durable_seq, 2);
    assert_int_equal(f.last.snapshot_index, 2);
    assert_int_equal(f.rec.snapshot.index, 2);
    assert_int_equal(f.rec.first_index + f.rec.n_entries - 1, 4);
    tfx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit_per_turn),
        cmocka_unit_test(test_suffix_replaced_in_group),
        cmocka_unit_test(test_enospc_retry),
        cmocka_unit_test(test_sync_failure_reported),
        cmocka_unit_test(test_stop_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
