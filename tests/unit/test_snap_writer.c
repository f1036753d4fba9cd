/* Unit tests for src/io/snap_writer.c on real files and a real libuv loop: snapshot files
 * written and made durable off the loop, reported in submission order, each readable back
 * whole under its final name with no temporary file left; stopping with nothing queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <uv.h>

#include "common/alloc.h"
#include "io/snap_writer.h"
#include "io/wal.h"

struct wfx {
    uv_loop_t loop;
    char dir[64];
    struct snap_writer *w;
    uint32_t groups[4];
    uint64_t indices[4];
    int status[4];
    int calls;
};

static void done_cb(void *ctx, uint32_t group, uint64_t index, int status)
{
    struct wfx *f = ctx;
    assert_true(f->calls < 4);
    f->groups[f->calls] = group;
    f->indices[f->calls] = index;
    f->status[f->calls] = status;
    f->calls++;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = hy_xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

/* Proves two snapshots of two groups are written durably under their names, reported in
 * order with HY_OK, and read back whole (header, configuration and data checked). */
static void test_files_written_and_reported_in_order(void **state)
{
    (void)state;
    struct wfx f;
    memset(&f, 0, sizeof(f));
    snprintf(f.dir, sizeof(f.dir), "/tmp/hy-snapw-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(snap_writer_start(&f.loop, f.dir, NULL, &f, done_cb, &f.w), HY_OK);
    static uint8_t big[300000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 31);
    }
    const uint8_t membership[] = {1, 2, 3, 4};
    struct wal_snapshot a = {.index = 40,
                             .term = 2,
                             .membership = membership,
                             .membership_len = sizeof(membership),
                             .data = big,
                             .data_len = sizeof(big)};
    struct wal_snapshot b = a;
    b.index = 7;
    b.data_len = 10;
    snap_writer_submit(f.w, 3, &a);
    snap_writer_submit(f.w, 5, &b);
    /* The loop runs while files are outstanding, then returns by itself. */
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.groups[0], 3);
    assert_int_equal(f.indices[0], 40);
    assert_int_equal(f.status[0], HY_OK);
    assert_int_equal(f.groups[1], 5);
    assert_int_equal(f.indices[1], 7);
    assert_int_equal(f.status[1], HY_OK);
    char path[400];
    size_t len;
    struct wal_snapshot got;
    const char *why = NULL;
    snprintf(path, sizeof(path), "%s/snapshot-0000000003-00000000000000000040", f.dir);
    uint8_t *buf = read_all(path, &len);
    assert_int_equal(wal_snapshot_decode(buf, len, &got, &why), HY_OK);
    assert_int_equal(got.index, 40);
    assert_int_equal(got.term, 2);
    assert_int_equal(got.data_len, sizeof(big));
    assert_memory_equal(got.data, big, sizeof(big));
    assert_memory_equal(got.membership, membership, sizeof(membership));
    hy_free(buf);
    snprintf(path, sizeof(path), "%s/snapshot-0000000005-00000000000000000007", f.dir);
    buf = read_all(path, &len);
    assert_int_equal(wal_snapshot_decode(buf, len, &got, &why), HY_OK);
    assert_int_equal(got.data_len, 10);
    hy_free(buf);
    snap_writer_stop(f.w);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    /* Nothing else in the directory (no temporary file); then it goes. */
    DIR *d = opendir(f.dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        assert_null(strstr(e->d_name, ".tmp"));
        files++;
        snprintf(path, sizeof(path), "%s/%s", f.dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    assert_int_equal(files, 2);
    rmdir(f.dir);
}

/* Proves a writer with nothing queued stops at once and lets the loop end. */
static void test_stop_idle(void **state)
{
    (void)state;
    struct wfx f;
    memset(&f, 0, sizeof(f));
    snprintf(f.dir, sizeof(f.dir), "/tmp/hy-snapw-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(snap_writer_start(&f.loop, f.dir, NULL, &f, done_cb, &f.w), HY_OK);
    assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 0); /* idle: keeps nothing alive */
    snap_writer_stop(f.w);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    assert_int_equal(f.calls, 0);
    rmdir(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_written_and_reported_in_order),
        cmocka_unit_test(test_stop_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
