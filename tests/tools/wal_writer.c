/*
 * wal_writer - a test helper that appends to a real data directory through the durable log
 * and says which records are durable (tests/integration/test_wal_*.py).
 *
 *   wal_writer DIR [--batch N] [--segment-bytes N] [--snapshot-every N] [--count N]
 *                  [--verify-only]
 *
 * At start it opens DIR (running recovery), checks every recovered record (indices contiguous,
 * payload a function of the index, snapshot bytes a function of its index) and prints
 *   RECOVERED <snapshot index> <first index> <last index>
 * Then it appends batches forever (or until --count records), printing "A <index>" for each
 * record once wal_append returned, i.e. after its fdatasync: a line on stdout is an
 * acknowledgement. On a full disk it prints "ENOSPC <last durable index>" once and retries
 * every 20 ms until space returns. Exit status: 0, 2 (the log refused to open: the reason is
 * on stderr), 3 (a recovered record is wrong), 4 (usage). A failed fdatasync aborts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "io/disk.h"
#include "io/wal.h"

struct opts {
    const char *dir;
    size_t batch;
    uint64_t segment_bytes;
    uint64_t snapshot_every;
    uint64_t count;
    int verify_only;
};

/* The payload of record `index`: its index, then bytes derived from it (8..104 bytes). */
static size_t payload(uint64_t index, uint8_t *buf)
{
    size_t len = 8 + (size_t)(index % 97);
    hy_store_u64le(buf, index);
    for (size_t i = 8; i < len; i++) {
        buf[i] = (uint8_t)(index * 131 + i);
    }
    return len;
}

static int verify(const struct wal_recovered *rec)
{
    uint8_t want[128];
    for (size_t i = 0; i < rec->n_entries; i++) {
        uint64_t index = rec->first_index + i;
        const struct wal_entry *e = &rec->entries[i];
        size_t len = payload(index, want);
        if (e->term != 1 || e->type != 1 || e->len != len || memcmp(e->data, want, len) != 0) {
            fprintf(stderr, "wal_writer: record %" PRIu64 " is wrong\n", index);
            return 3;
        }
    }
    if (rec->snapshot.index != 0) {
        char want_snap[64];
        int n = snprintf(want_snap, sizeof(want_snap), "snap-%" PRIu64, rec->snapshot.index);
        if (rec->snapshot.data_len != (uint64_t)n ||
            memcmp(rec->snapshot.data, want_snap, (size_t)n) != 0) {
            fprintf(stderr, "wal_writer: snapshot %" PRIu64 " is wrong\n", rec->snapshot.index);
            return 3;
        }
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int usage(void)
{
    fprintf(stderr, "usage: wal_writer DIR [--batch N] [--segment-bytes N] "
                    "[--snapshot-every N] [--count N] [--verify-only]\n");
    return 4;
}

static int parse(int argc, char **argv, struct opts *o)
{
    if (argc < 2) {
        return usage();
    }
    *o = (struct opts){.dir = argv[1], .batch = 1, .segment_bytes = 1 << 20};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--verify-only") == 0) {
            o->verify_only = 1;
        } else if (i + 1 < argc && strcmp(a, "--batch") == 0) {
            o->batch = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(a, "--segment-bytes") == 0) {
            o->segment_bytes = strtoull(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(a, "--snapshot-every") == 0) {
            o->snapshot_every = strtoull(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(a, "--count") == 0) {
            o->count = strtoull(argv[++i], NULL, 10);
        } else {
            return usage();
        }
    }
    return o->batch >= 1 && o->batch <= 1024 ? 0 : usage();
}

static int must(int rc, const char *what)
{
    if (rc == HY_EIO) {
        fprintf(stderr, "wal_writer: %s: %s: aborting (never retry an fsync)\n", what,
                hy_strerror(rc));
        abort();
    }
    return rc;
}

/* Takes a snapshot at the last index when due; ENOSPC just postpones it. */
static void maybe_snapshot(struct wal *w, const struct opts *o)
{
    uint64_t last = wal_last_index(w);
    if (o->snapshot_every == 0 || last - wal_snapshot_index(w) < o->snapshot_every) {
        return;
    }
    char data[64];
    int n = snprintf(data, sizeof(data), "snap-%" PRIu64, last);
    struct wal_snapshot s = {
        .index = last, .term = 1, .data = (const uint8_t *)data, .data_len = (uint64_t)n};
    (void)must(wal_snapshot_put(w, &s, 0), "snapshot");
}

static void append_loop(struct wal *w, const struct opts *o)
{
    static uint8_t bufs[1024][128];
    struct wal_entry entries[1024];
    int full = 0;
    for (uint64_t done = 0; o->count == 0 || done < o->count;) {
        uint64_t first = wal_last_index(w) + 1;
        for (size_t i = 0; i < o->batch; i++) {
            size_t len = payload(first + i, bufs[i]);
            entries[i] =
                (struct wal_entry){.term = 1, .type = 1, .len = (uint32_t)len, .data = bufs[i]};
        }
        int rc = must(wal_append(w, first, entries, o->batch), "append");
        if (rc == HY_ENOSPC) {
            if (!full) {
                printf("ENOSPC %" PRIu64 "\n", first - 1);
                fflush(stdout);
            }
            full = 1;
            sleep_ms(20);
            continue;
        }
        full = 0;
        for (size_t i = 0; i < o->batch; i++) {
            printf("A %" PRIu64 "\n", first + i);
        }
        fflush(stdout);
        done += o->batch;
        maybe_snapshot(w, o);
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, &o) != 0) {
        return 4;
    }
    struct disk *disk;
    if (disk_posix_open(o.dir, &disk) != HY_OK) {
        fprintf(stderr, "wal_writer: cannot open directory %s\n", o.dir);
        return 2;
    }
    struct wal_config cfg;
    wal_config_default(&cfg);
    cfg.segment_size_bytes = o.segment_bytes;
    cfg.retention_logs = 100;
    struct wal *w;
    struct wal_recovered rec;
    char err[1024];
    int rc = wal_open(disk, &cfg, &w, &rec, err, sizeof(err));
    if (rc != HY_OK) {
        fprintf(stderr, "%s\n", err[0] ? err : hy_strerror(rc));
        disk_destroy(disk);
        return 2;
    }
    int bad = verify(&rec);
    uint64_t term = rec.term;
    printf("RECOVERED %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", rec.snapshot.index,
           rec.n_entries ? rec.first_index : 0, wal_last_index(w));
    fflush(stdout);
    wal_recovered_free(&rec);
    if (bad == 0 && !o.verify_only) {
        if (term == 0) {
            (void)must(wal_set_term_vote(w, 1, 1), "term");
        }
        append_loop(w, &o);
    }
    wal_close(w);
    disk_destroy(disk);
    return bad;
}
