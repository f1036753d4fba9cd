/*
 * wal_bench - what the durable log costs on this disk, next to what the disk itself costs
 * (make bench-wal; issue 4's benchmark).
 *
 *   wal_bench [DIR]     (default build/bench-wal; everything runs in DIR, on one disk)
 *
 * 1. The floor: serial writes, each made durable before the next: 4 KiB and 128 B, appending
 *    to a growing file (as Redis's AOF) and overwriting a preallocated, zero-filled one (as the
 *    wal's segments); pwrite + fdatasync, O_DSYNC, pwritev2 RWF_DSYNC; and 2 or 3 processes
 *    doing it at once on the same disk (three nodes on one machine).
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "io/disk.h"
#include "io/wal.h"

#define ENTRY_BYTES       100
#define FLOOR_ROUNDS      3
#define FLOOR_WRITERS_MAX 3

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

/* How one floor row syncs each write. */
enum floor_sync {
    FLOOR_FDATASYNC, /* pwrite, then fdatasync (what the wal does) */
    FLOOR_O_DSYNC,   /* pwrite on a descriptor opened O_DSYNC: one system call */
    FLOOR_RWF_DSYNC, /* pwritev2 with RWF_DSYNC: one system call, this write only */
};

struct floor_row {
    const char *name;
    size_t bytes; /* per write */
    int prealloc; /* zero-filled first (every sync an overwrite) or growing */
    enum floor_sync sync;
    int writers; /* processes doing the same at once, each on its own file */
};

/* One writer's serial writes of r->bytes at increasing offsets, each made durable as r->sync
 * says; latencies in lat[n]. A growing file changes its size at each write, which fdatasync must
 * journal (Redis's AOF); a preallocated one only overwrites zeros (the wal's segments). */
static void floor_writer(const char *dir, const struct floor_row *r, int id, size_t n,
                         uint64_t *lat, uint64_t *total_ns)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/floor-%d", dir, id);
    int flags = O_RDWR | O_CREAT | O_TRUNC | (r->sync == FLOOR_O_DSYNC ? O_DSYNC : 0);
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        die(path);
    }
    static uint8_t block[4096];
    memset(block, 0xa5, sizeof(block));
    if (r->prealloc) {
        static uint8_t zeros[4096];
        for (size_t off = 0; off < n * r->bytes + sizeof(zeros); off += sizeof(zeros)) {
            if (pwrite(fd, zeros, sizeof(zeros), (off_t)off) < 0) {
                die("pwrite");
            }
        }
        if (fsync(fd) != 0) {
            die("fsync");
        }
    }
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t s = now_ns();
        off_t off = (off_t)(i * r->bytes);
        ssize_t w;
        if (r->sync == FLOOR_RWF_DSYNC) {
            struct iovec v = {block, r->bytes};
            w = pwritev2(fd, &v, 1, off, RWF_DSYNC);
        } else {
            w = pwrite(fd, block, r->bytes, off);
        }
        if (w != (ssize_t)r->bytes || (r->sync == FLOOR_FDATASYNC && fdatasync(fd) != 0)) {
            die("write/sync");
        }
        lat[i] = now_ns() - s;
    }
    *total_ns = now_ns() - t0;
    close(fd);
    unlink(path);
}

/* One floor row: r->writers processes doing it at once, each on its own file of the same disk
 * (three nodes of a cluster on one machine), every writer's latencies pooled (shared pages).
 * Prints the row; returns its p50 in microseconds. */
static double bench_floor(const char *dir, const struct floor_row *r, size_t n)
{
    size_t writers = (size_t)r->writers;
    size_t size = writers * n * sizeof(uint64_t);
    uint64_t *lat = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (lat == MAP_FAILED) {
        die("mmap");
    }
    uint64_t total = 0;
    pid_t kids[FLOOR_WRITERS_MAX];
    size_t nk = 0;
    for (size_t i = 1; i < writers; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            die("fork");
        }
        if (pid == 0) {
            uint64_t t;
            floor_writer(dir, r, (int)i, n, lat + i * n, &t);
            _exit(0);
        }
        kids[nk++] = pid;
    }
    floor_writer(dir, r, 0, n, lat, &total);
    for (size_t i = 0; i < nk; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "wal_bench: a writer of '%s' failed\n", r->name);
            exit(1);
        }
    }
    /* calls/s and MB/s are the first writer's; the latencies every writer's. */
    report(r->name, lat, writers * n, total * writers, 1, r->bytes);
    double p50 = (double)lat[writers * n / 2] / 1e3;
    munmap(lat, size);
    return p50;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
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
    static const struct floor_row rows[] = {
        {"floor: 4K fdatasync append", 4096, 0, FLOOR_FDATASYNC, 1},
        {"floor: 4K fdatasync overwrite", 4096, 1, FLOOR_FDATASYNC, 1},
        {"floor: 128B fdatasync append", 128, 0, FLOOR_FDATASYNC, 1},
        {"floor: 128B fdatasync overwrite", 128, 1, FLOOR_FDATASYNC, 1},
        {"floor: 128B O_DSYNC overwrite", 128, 1, FLOOR_O_DSYNC, 1},
        {"floor: 128B RWF_DSYNC overwrite", 128, 1, FLOOR_RWF_DSYNC, 1},
        {"floor: 128B overwrite, 2 at once", 128, 1, FLOOR_FDATASYNC, 2},
        {"floor: 128B overwrite, 3 at once", 128, 1, FLOOR_FDATASYNC, 3},
    };
    /* The disk's latency drifts from minute to minute on a shared machine: the rows run in
     * FLOOR_ROUNDS rounds, in the opposite order every other round, and the summary gives each
     * row's median p50 over the rounds. */
    enum { N_ROWS = sizeof(rows) / sizeof(rows[0]) };
    double p50[N_ROWS][FLOOR_ROUNDS];
    for (int round = 0; round < FLOOR_ROUNDS; round++) {
        for (size_t k = 0; k < N_ROWS; k++) {
            size_t i = round % 2 ? N_ROWS - 1 - k : k;
            p50[i][round] = bench_floor(dir, &rows[i], 1000);
        }
    }
    printf("floor, median of %d rounds' p50 (us):\n", FLOOR_ROUNDS);
    for (size_t i = 0; i < N_ROWS; i++) {
        qsort(p50[i], FLOOR_ROUNDS, sizeof(double), cmp_double);
        printf("  %-34s %9.1f\n", rows[i].name, p50[i][FLOOR_ROUNDS / 2]);
    }
    bench_log(dir, 1, 2000);
    bench_log(dir, 16, 1000);
    bench_log(dir, 256, 300);
    return 0;
}
