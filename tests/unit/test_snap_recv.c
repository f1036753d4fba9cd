/* Unit tests for src/io/snap_recv.c and wal_snapshot_install_received: a received snapshot
 * written chunk by chunk to its temporary file on the simulated disk, read back for the
 * install, made durable and adopted by the log; chunks that do not follow dropped; a crash
 * before the rename leaves the group as it was and recovery removes the temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/crc.h"
#include "common/status.h"
#include "io/disk_mem.h"
#include "io/snap_recv.h"
#include "io/snap_stream.h"
#include "io/wal.h"
#include "io/wal_codec.h"
#include "io/wal_int.h"

#define DATA_LEN 1000
#define CHUNK    64
#define GROUP    3

static uint8_t data[DATA_LEN];

static void fill_data(unsigned mult)
{
    for (size_t i = 0; i < DATA_LEN; i++) {
        data[i] = (uint8_t)(i * mult + 7);
    }
}

/* The update the Raft core hands over for the chunk at offset (the last one installs). */
static struct raft_update chunk_update(uint64_t index, uint64_t offset)
{
    struct raft_update up;
    memset(&up, 0, sizeof(up));
    up.chunk = 1;
    up.chunk_index = index;
    up.chunk_term = 2;
    up.chunk_membership.count = 1;
    up.chunk_membership.servers[0] = (struct raft_server){1, RAFT_VOTER};
    up.chunk_offset = offset;
    up.chunk_total = DATA_LEN;
    up.chunk_crc = hy_crc32c(0, data, DATA_LEN);
    up.chunk_len = (uint32_t)(offset + CHUNK <= DATA_LEN ? CHUNK : DATA_LEN - offset);
    up.chunk_data = data + offset;
    if (offset + up.chunk_len == DATA_LEN) {
        up.snapshot_install = 1;
        up.snap_index = index;
        up.snap_term = 2;
        up.snap_membership = up.chunk_membership;
        up.snap_len = DATA_LEN;
    }
    return up;
}

static int file_exists(struct disk *d, const char *name)
{
    int fd;
    if (d->ops->open(d, name, 0, &fd) != HY_OK) {
        return 0;
    }
    d->ops->close(d, fd);
    return 1;
}

static void open_wal(struct disk *d, struct wal **w, struct wal_recovered *rec)
{
    struct wal_config cfg;
    wal_config_default(&cfg);
    uint32_t groups[1] = {GROUP};
    char err[256];
    assert_int_equal(wal_open(d, &cfg, groups, 1, w, rec, err, sizeof(err)), HY_OK);
}

/* Every chunk in order: the file reads back as the data, the log makes it the group's
 * snapshot (under its own name, the temporary one gone), and it survives a crash. */
static void test_received_chunks_become_the_groups_snapshot(void **state)
{
    (void)state;
    fill_data(31);
    struct disk *d = disk_mem_new("/wal", 9);
    struct wal *w;
    struct wal_recovered rec;
    open_wal(d, &w, &rec);
    wal_recovered_free(&rec);
    struct snap_recv *r = snap_recv_new(d, NULL);
    for (uint64_t off = 0; off < DATA_LEN; off += CHUNK) {
        struct raft_update up = chunk_update(42, off);
        assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_OK);
        assert_int_equal(snap_recv_open_count(r), up.snapshot_install ? 0 : 1);
    }
    assert_int_equal(snap_recv_bytes(r), DATA_LEN);
    struct hy_buf got;
    hy_buf_init(&got);
    assert_int_equal(snap_recv_load(d, GROUP, 42, &got), HY_OK);
    assert_int_equal(got.len, DATA_LEN);
    assert_memory_equal(got.data, data, DATA_LEN);
    hy_buf_free(&got);
    uint8_t membership[64];
    struct raft_membership m = {.count = 1, .servers = {{1, RAFT_VOTER}}};
    struct wal_snapshot s = {.index = 42,
                             .term = 2,
                             .membership = membership,
                             .membership_len = (uint32_t)raft_membership_encode(&m, membership),
                             .data_len = DATA_LEN};
    assert_int_equal(wal_snapshot_install_received(w, GROUP, &s), HY_OK);
    char tmp[WAL_NAME_MAX], name[WAL_NAME_MAX];
    wal__name_snapshot_recv(tmp, GROUP, 42);
    wal__name_snapshot(name, GROUP, 42, 0);
    assert_false(file_exists(d, tmp));
    assert_true(file_exists(d, name));
    assert_int_equal(wal_snapshot_index(w, GROUP), 42);
    wal_close(w);
    snap_recv_free(r);
    disk_mem_crash(d, DISK_CRASH_DROP); /* nothing was left unsynced */
    open_wal(d, &w, &rec);
    assert_int_equal(rec.snapshot.index, 42);
    assert_int_equal(rec.snapshot.term, 2);
    assert_int_equal(rec.snapshot.data_len, DATA_LEN);
    assert_memory_equal(rec.snapshot.data, data, DATA_LEN);
    wal_recovered_free(&rec);
    wal_close(w);
    disk_destroy(d);
}

/* A chunk that does not follow what the file holds (a gap) drops the transfer and its file;
 * a transfer of another snapshot starting at 0 removes the first one's file. */
static void test_chunks_that_do_not_follow_drop_the_transfer(void **state)
{
    (void)state;
    fill_data(13);
    struct disk *d = disk_mem_new("/wal", 3);
    assert_int_equal(d->ops->sync_parent(d), HY_OK);
    struct snap_recv *r = snap_recv_new(d, NULL);
    char tmp42[WAL_NAME_MAX], tmp50[WAL_NAME_MAX];
    wal__name_snapshot_recv(tmp42, GROUP, 42);
    wal__name_snapshot_recv(tmp50, GROUP, 50);
    struct raft_update up = chunk_update(42, 0);
    assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_OK);
    up = chunk_update(42, 2 * CHUNK);
    assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_ECORRUPT);
    assert_int_equal(snap_recv_open_count(r), 0);
    assert_false(file_exists(d, tmp42));
    up = chunk_update(42, 0);
    assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_OK);
    up = chunk_update(50, 0);
    assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_OK);
    assert_false(file_exists(d, tmp42));
    assert_true(file_exists(d, tmp50));
    assert_int_equal(snap_recv_open_count(r), 1);
    /* A write the disk refuses drops it too (the core then starts again from 0). */
    disk_mem_fail(d, DISK_OP_BIT(DISK_OP_WRITE), 1, HY_ENOSPC, 0);
    up = chunk_update(50, CHUNK);
    assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_ENOSPC);
    assert_int_equal(snap_recv_open_count(r), 0);
    assert_false(file_exists(d, tmp50));
    snap_recv_free(r);
    disk_destroy(d);
}

/* A crash while a snapshot is received, or once it is whole but before the log renamed it:
 * recovery removes the temporary file and the group keeps its older snapshot and log. */
static void test_crash_before_the_rename_leaves_the_group_as_it_was(void **state)
{
    (void)state;
    for (int whole = 0; whole <= 1; whole++) {
        fill_data(7);
        struct disk *d = disk_mem_new("/wal", 11);
        struct wal *w;
        struct wal_recovered rec;
        open_wal(d, &w, &rec);
        wal_recovered_free(&rec);
        struct wal_entry e = {.term = 1, .type = 1, .len = 3, .data = (const uint8_t *)"abc"};
        assert_int_equal(wal_append(w, GROUP, 1, &e, 1), HY_OK);
        struct snap_recv *r = snap_recv_new(d, NULL);
        uint64_t end = whole ? DATA_LEN : 5 * CHUNK;
        for (uint64_t off = 0; off < end; off += CHUNK) {
            struct raft_update up = chunk_update(42, off);
            assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_OK);
        }
        snap_recv_free(r);
        wal_close(w);
        disk_mem_crash(d, DISK_CRASH_KEEP); /* the temporary name reached the disk */
        char tmp[WAL_NAME_MAX];
        wal__name_snapshot_recv(tmp, GROUP, 42);
        assert_true(file_exists(d, tmp));
        open_wal(d, &w, &rec);
        assert_false(file_exists(d, tmp));
        assert_int_equal(rec.snapshot.index, 0);
        assert_int_equal(rec.n_entries, 1);
        wal_recovered_free(&rec);
        wal_close(w);
        disk_destroy(d);
    }
}

/* The message a leader sends first (offset 0) of snapshot `index`, as the node's reserve sees
 * it before the core does. */
static struct raft_message first_message(uint64_t index)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_SNAPSHOT;
    m.snap_index = index;
    m.snap_term = 2;
    m.snap_membership.count = 1;
    m.snap_membership.servers[0] = (struct raft_server){1, RAFT_VOTER};
    m.total = DATA_LEN;
    return m;
}

/* A disk too full for a whole snapshot refuses it at its reservation, before its first chunk
 * (the message is dropped and sent again), and leaves no file; with room, the reservation holds
 * the whole size, so that the last chunk finds the room it needs even if the disk fills up
 * meanwhile. A delayed message of an older snapshot leaves the transfer under way alone. */
static void test_reserve_makes_room_for_the_whole_snapshot_first(void **state)
{
    (void)state;
    fill_data(7);
    struct disk *d = disk_mem_new("/wal", 5);
    assert_int_equal(d->ops->sync_parent(d), HY_OK);
    struct snap_recv *r = snap_recv_new(d, NULL);
    char tmp[WAL_NAME_MAX];
    wal__name_snapshot_recv(tmp, GROUP, 42);
    struct raft_message m = first_message(42);
    disk_mem_set_capacity(d, disk_mem_used_bytes(d) + DATA_LEN / 2);
    assert_int_equal(snap_recv_reserve(r, GROUP, &m), HY_ENOSPC);
    assert_false(file_exists(d, tmp));
    assert_int_equal(snap_recv_open_count(r), 0);
    disk_mem_set_capacity(d, disk_mem_used_bytes(d) + 2 * DATA_LEN);
    assert_int_equal(snap_recv_reserve(r, GROUP, &m), HY_OK);
    assert_true(file_exists(d, tmp));
    /* The disk fills up to what is used now: every chunk still has its room. */
    disk_mem_set_capacity(d, disk_mem_used_bytes(d));
    for (uint64_t off = 0; off < DATA_LEN; off += CHUNK) {
        struct raft_update up = chunk_update(42, off);
        assert_int_equal(snap_recv_chunk(r, GROUP, &up), HY_OK);
        if (off == 0) {
            struct raft_message old = first_message(41);
            assert_int_equal(snap_recv_reserve(r, GROUP, &old), HY_OK);
        }
    }
    assert_int_equal(snap_recv_open_count(r), 0);
    struct hy_buf got;
    hy_buf_init(&got);
    assert_int_equal(snap_recv_load(d, GROUP, 42, &got), HY_OK);
    assert_int_equal(got.len, DATA_LEN);
    assert_memory_equal(got.data, data, DATA_LEN);
    hy_buf_free(&got);
    snap_recv_free(r);
    disk_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_received_chunks_become_the_groups_snapshot),
        cmocka_unit_test(test_chunks_that_do_not_follow_drop_the_transfer),
        cmocka_unit_test(test_crash_before_the_rename_leaves_the_group_as_it_was),
        cmocka_unit_test(test_reserve_makes_room_for_the_whole_snapshot_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
