/*
 * wal_bench - what the durable log costs on this disk, next to what the disk itself costs
 * (make bench-wal; issue 4's benchmark).
 *
 *   wal_bench [DIR]     (default build/bench-wal; everything runs in DIR, on one disk)
 *
 * 1. The floor: serial 4 KiB pwrite + fdatasync, appending to a growing file, and overwriting
 *    a preallocated, zero-filled one.
 * 2. The log (wal_append on real files): 1-entry batches (one writer, every append its own
 *    fsync), then batches of 16 and 256 entries (the group commit of a busy loop turn).
 * Prints operations/s, entries/s, MB/s and p50/p99 latency of each call. Never a pass/fail:
 * numbers for the closing note, measured side by side in the same run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "io/disk.h"
#include "io/wal.h"

#define ENTRY_BYTES 100

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints one row: calls/s, entries/s, MB/s, p50 and p99 of the per-call latencies. */
static void report(const char *name, uint64_t *lat, size_t n, uint64_t total_ns, size_t per_call,
                   size_t bytes_per_call)
{
    qsort(lat, n, sizeof(*lat), cmp_u64);
    double secs = (double)total_ns / 1e9;
    printf("%-34s %10.0f %12.0f %8.1f %9.1f %9.1f\n", name, (double)n / secs,
           (double)(n * per_call) / secs, (double)(n * bytes_per_call) / secs / 1e6,
           (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3);
}

static void die(const char *what)
{
    fprintf(stderr, "wal_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Serial 4 KiB pwrite + fdatasync at increasing offsets; `prealloc` zero-fills the file first
 * so that every sync is an overwrite. */
static void bench_floor(const char *dir, int prealloc, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/floor-%s", dir, prealloc ? "overwrite" : "append");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        die(path);
    }
    static uint8_t block[4096];
    memset(block, 0xa5, sizeof(block));
    if (prealloc) {
        for (size_t i = 0; i < n; i++) {
            if (pwrite(fd, block, sizeof(block), (off_t)(i * sizeof(block))) < 0) {
                die("pwrite");
            }
        }
        if (fsync(fd) != 0) {
            die("fsync");
        }
    }
    uint64_t *lat = hy_xmalloc(n * sizeof(*lat));
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t s = now_ns();
        if (pwrite(fd, block, sizeof(block), (off_t)(i * sizeof(block))) != sizeof(block) ||
            fdatasync(fd) != 0) {
            die("pwrite/fdatasync");
        }
        lat[i] = now_ns() - s;
    }
    report(prealloc ? "floor: 4K pwrite+fdatasync overwrite" : "floor: 4K pwrite+fdatasync append",
           lat, n, now_ns() - t0, 1, sizeof(block));
    hy_free(lat);
    close(fd);
    unlink(path);
}

/* Removes every file of a directory the bench created (flat: no subdirectories). */
static void empty_dir(struct disk *d)
{
    char **names;
    size_t n;
    if (d->ops->list(d, &names, &n) != HY_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        (void)d->ops->remove(d, names[i]);
    }
    disk_names_free(names, n);
}

static void bench_log(const char *dir, size_t batch, size_t calls)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/wal-%zu", dir, batch);
    struct disk *disk;
    if (disk_posix_open(path, &disk) != HY_OK) {
        die(path);
    }
    empty_dir(disk);
    struct wal_config cfg;
    wal_config_default(&cfg);
    cfg.segment_size_bytes = 64u << 20; /* one roll at most per run: the steady state */
    struct wal *w;
    struct wal_recovered rec;
    char err[512];
    static const uint32_t group0 = 0; /* one group: the log alone, as before the shared log */
    if (wal_open(disk, &cfg, &group0, 1, &w, &rec, err, sizeof(err)) != HY_OK) {
        fprintf(stderr, "wal_bench: %s\n", err);
        exit(1);
    }
    wal_recovered_free(&rec);
    static uint8_t payload[ENTRY_BYTES];
    memset(payload, 0x5a, sizeof(payload));
    struct wal_entry *e = hy_xmalloc(batch * sizeof(*e));
    for (size_t i = 0; i < batch; i++) {
        e[i] = (struct wal_entry){.term = 1, .type = 1, .len = ENTRY_BYTES, .data = payload};
    }
    /* The first append creates (and zero-fills) the segment: not part of the steady state. */
    if (wal_append(w, 0, 1, e, batch) != HY_OK) {
        die("wal_append");
    }
    uint64_t *lat = hy_xmalloc(calls * sizeof(*lat));
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < calls; i++) {
        uint64_t s = now_ns();
        if (wal_append(w, 0, wal_last_index(w, 0) + 1, e, batch) != HY_OK) {
            die("wal_append");
        }
        lat[i] = now_ns() - s;
    }
    char name[64];
    snprintf(name, sizeof(name), "log: batches of %zu x %d B", batch, ENTRY_BYTES);
    report(name, lat, calls, now_ns() - t0, batch, batch * wal_record_size(ENTRY_BYTES));
    hy_free(lat);
    hy_free(e);
    wal_close(w);
    empty_dir(disk);
    disk_destroy(disk);
    rmdir(path);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/bench-wal";
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        die(dir);
    }
    printf("wal_bench in %s (one disk, one run)\n", dir);
    printf("%-34s %10s %12s %8s %9s %9s\n", "", "calls/s", "entries/s", "MB/s", "p50 us", "p99 us");
    bench_floor(dir, 0, 2000);
    bench_floor(dir, 1, 2000);
    bench_log(dir, 1, 2000);
    bench_log(dir, 16, 1000);
    bench_log(dir, 256, 300);
    return 0;
}
