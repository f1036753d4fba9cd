/* Unit tests for src/io/snap_stream.c: snapshot chunks read from the log's snapshot files
 * (on the simulated disk), the data checked against its header's CRC as the chunks go, a
 * damaged file never sent whole, a missing one reported as such. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/status.h"
#include "io/disk_mem.h"
#include "io/snap_stream.h"
#include "io/wal.h"
#include "io/wal_codec.h"
#include "io/wal_int.h"

#define DATA_LEN 1000
#define CHUNK    64

static uint8_t data[DATA_LEN];

/* Writes group 3's snapshot at index 42 as the log does (header, membership, data). */
static struct disk *disk_with_snapshot(int damage_at)
{
    for (size_t i = 0; i < DATA_LEN; i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
    struct disk *d = disk_mem_new("/snap", 5);
    uint8_t membership[9] = {1, 0, 0, 0, 0, 0, 0, 0, 1};
    struct wal_snapshot s = {.index = 42,
                             .term = 3,
                             .membership = membership,
                             .membership_len = sizeof(membership),
                             .data = data,
                             .data_len = DATA_LEN};
    uint8_t header[WAL_SNAP_HEADER_SIZE];
    wal_snapshot_header_encode(&s, header);
    char name[WAL_NAME_MAX];
    wal__name_snapshot(name, 3, 42, 0);
    int fd;
    assert_int_equal(d->ops->open(d, name, DISK_CREATE, &fd), HY_OK);
    assert_int_equal(d->ops->write(d, fd, 0, header, sizeof(header)), HY_OK);
    assert_int_equal(d->ops->write(d, fd, sizeof(header), membership, sizeof(membership)), HY_OK);
    uint8_t copy[DATA_LEN];
    memcpy(copy, data, DATA_LEN);
    if (damage_at >= 0) {
        copy[damage_at] ^= 0x40; /* rotted on disk after the header was written */
    }
    assert_int_equal(d->ops->write(d, fd, sizeof(header) + sizeof(membership), copy, DATA_LEN),
                     HY_OK);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    d->ops->close(d, fd);
    return d;
}

static struct raft_message chunk_msg(uint64_t offset)
{
    struct raft_message m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    m.snap_index = 42;
    m.total = DATA_LEN;
    m.offset = offset;
    m.len = (uint32_t)(offset + CHUNK <= DATA_LEN ? CHUNK : DATA_LEN - offset);
    return m;
}

/* Every chunk in order: the bytes are the data's, and the last goes out checked. */
static void test_chunks_in_order_read_back_the_data(void **state)
{
    (void)state;
    struct disk *d = disk_with_snapshot(-1);
    struct snap_stream *s = snap_stream_new(d, NULL);
    uint8_t got[DATA_LEN], buf[CHUNK];
    for (uint64_t off = 0; off < DATA_LEN; off += CHUNK) {
        struct raft_message m = chunk_msg(off);
        assert_int_equal(snap_stream_fill(s, 3, &m, buf), HY_OK);
        assert_ptr_equal(m.data, buf);
        memcpy(got + off, m.data, m.len);
        /* A resend of the same chunk (a lost one) reads the same bytes. */
        struct raft_message again = chunk_msg(off);
        assert_int_equal(snap_stream_fill(s, 3, &again, buf), HY_OK);
        assert_memory_equal(again.data, got + off, again.len);
    }
    assert_memory_equal(got, data, DATA_LEN);
    assert_int_equal(snap_stream_open_count(s), 1);
    assert_int_equal(snap_stream_corrupt_count(s), 0);
    /* Empty chunks (keepalives) and chunks with data need nothing. */
    struct raft_message empty = chunk_msg(0);
    empty.len = 0;
    assert_int_equal(snap_stream_fill(s, 3, &empty, buf), HY_OK);
    assert_null(empty.data);
    snap_stream_free(s);
    disk_destroy(d);
}

/* A byte rotted on disk: the chunks before the last still go (the follower cannot install
 * them), the last is refused, every time it is asked for. */
static void test_damaged_data_never_completes(void **state)
{
    (void)state;
    struct disk *d = disk_with_snapshot(500);
    struct snap_stream *s = snap_stream_new(d, NULL);
    uint8_t buf[CHUNK];
    uint64_t last = (DATA_LEN - 1) / CHUNK * CHUNK;
    for (uint64_t off = 0; off < last; off += CHUNK) {
        struct raft_message m = chunk_msg(off);
        assert_int_equal(snap_stream_fill(s, 3, &m, buf), HY_OK);
    }
    struct raft_message m = chunk_msg(last);
    assert_int_equal(snap_stream_fill(s, 3, &m, buf), HY_ECORRUPT);
    assert_null(m.data);
    m = chunk_msg(last);
    assert_int_equal(snap_stream_fill(s, 3, &m, buf), HY_ECORRUPT); /* reopened: checked whole */
    assert_int_equal(snap_stream_corrupt_count(s), 2);
    snap_stream_free(s);
    disk_destroy(d);
}

/* A transfer that starts midway (this side lost its open file, the follower held the rest):
 * the last chunk is checked against the whole data instead, and passes when it is sound. */
static void test_out_of_order_transfer_checks_the_whole_data(void **state)
{
    (void)state;
    for (int damage = -1; damage <= 0; damage++) {
        struct disk *d = disk_with_snapshot(damage < 0 ? -1 : 10);
        struct snap_stream *s = snap_stream_new(d, NULL);
        uint8_t buf[CHUNK];
        int rc = HY_OK;
        for (uint64_t off = 5 * CHUNK; off < DATA_LEN && rc == HY_OK; off += CHUNK) {
            struct raft_message m = chunk_msg(off);
            rc = snap_stream_fill(s, 3, &m, buf);
        }
        assert_int_equal(rc, damage < 0 ? HY_OK : HY_ECORRUPT);
        snap_stream_free(s);
        disk_destroy(d);
    }
}

/* A snapshot not on disk (not durable yet, or replaced), or not the one Raft names. */
static void test_missing_or_mismatched_snapshot(void **state)
{
    (void)state;
    struct disk *d = disk_with_snapshot(-1);
    struct snap_stream *s = snap_stream_new(d, NULL);
    uint8_t buf[CHUNK];
    struct raft_message m = chunk_msg(0);
    m.snap_index = 43;
    assert_int_equal(snap_stream_fill(s, 3, &m, buf), HY_ENOTFOUND);
    m = chunk_msg(0);
    assert_int_equal(snap_stream_fill(s, 4, &m, buf), HY_ENOTFOUND); /* another group */
    m = chunk_msg(0);
    m.total = DATA_LEN + 1; /* Raft's size is not the file's */
    assert_int_equal(snap_stream_fill(s, 3, &m, buf), HY_ECORRUPT);
    m = chunk_msg(DATA_LEN - 10);
    m.len = 20; /* beyond the data */
    assert_int_equal(snap_stream_fill(s, 3, &m, buf), HY_ECORRUPT);
    assert_int_equal(snap_stream_open_count(s), 1); /* the file is sound: kept for the next */
    snap_stream_free(s);
    disk_destroy(d);
}

/* A parked copy's keyspace read back whole: the data, or why not. */
static void test_load_reads_the_whole_data_checked(void **state)
{
    (void)state;
    struct hy_buf out;
    hy_buf_init(&out);
    struct disk *d = disk_with_snapshot(-1);
    assert_int_equal(snap_stream_load(d, 3, 42, &out), HY_OK);
    assert_int_equal(out.len, DATA_LEN);
    assert_memory_equal(out.data, data, DATA_LEN);
    assert_int_equal(snap_stream_load(d, 3, 41, &out), HY_ENOTFOUND);
    assert_int_equal(out.len, DATA_LEN); /* nothing appended */
    disk_destroy(d);
    d = disk_with_snapshot(999);
    assert_int_equal(snap_stream_load(d, 3, 42, &out), HY_ECORRUPT);
    assert_int_equal(out.len, DATA_LEN);
    disk_destroy(d);
    hy_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks_in_order_read_back_the_data),
        cmocka_unit_test(test_damaged_data_never_completes),
        cmocka_unit_test(test_out_of_order_transfer_checks_the_whole_data),
        cmocka_unit_test(test_missing_or_mismatched_snapshot),
        cmocka_unit_test(test_load_reads_the_whole_data_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
