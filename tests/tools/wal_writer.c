/*
 * wal_writer - a test helper that appends to a real data directory through the durable log
 * and says which records are durable (tests/integration/test_wal_*.py).
 *
 *   wal_writer DIR [--batch N] [--segment-bytes N] [--snapshot-every N] [--count N]
 *                  [--groups N] [--verify-only]
 *
 * The log holds Raft groups 0..N-1 (--groups, default 1), which all receive the same records:
 * each batch is staged for every group and committed as ONE write and ONE fdatasync (the
 * shared log's group commit). At start it opens DIR (running recovery), checks every
 * recovered record of every group (indices contiguous, payload a function of the index,
 * snapshot bytes a function of its index) and prints
 *   RECOVERED <snapshot index> <first index> <last index>
 * for group 0, with <last index> the lowest last index over the groups (a torn write may
 * leave one group's records of it and not another's). Then it appends batches forever (or
 * until --count records), printing "A <index>" for each record once the commit returned,
 * i.e. after its fdatasync: a line on stdout is an acknowledgement for every group. On a full disk
 * it prints "ENOSPC <last durable index>" once and retries every 20 ms until space returns. Exit
 * status: 0, 2 (the log refused to open: the reason is on stderr), 3 (a recovered record is wrong),
 * 4 (usage). A failed fdatasync aborts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "io/disk.h"
#include "io/wal.h"

struct opts {
    const char *dir;
    size_t batch;
    uint64_t segment_bytes;
    uint64_t snapshot_every;
    uint64_t count;
    uint32_t groups;
    int verify_only;
};

static uint32_t group_ids[256];

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
                    "[--snapshot-every N] [--count N] [--groups N] [--verify-only]\n");
    return 4;
}

static int parse(int argc, char **argv, struct opts *o)
{
    if (argc < 2) {
        return usage();
    }
    *o = (struct opts){.dir = argv[1], .batch = 1, .segment_bytes = 1 << 20, .groups = 1};
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
        } else if (i + 1 < argc && strcmp(a, "--groups") == 0) {
            o->groups = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(a, "--count") == 0) {
            o->count = strtoull(argv[++i], NULL, 10);
        } else {
            return usage();
        }
    }
    return o->batch >= 1 && o->batch <= 1024 && o->groups >= 1 && o->groups <= 256 ? 0 : usage();
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

/* Takes a snapshot of each group at its last index when due; ENOSPC just postpones it. */
static void maybe_snapshot(struct wal *w, const struct opts *o)
{
    for (uint32_t g = 0; g < o->groups; g++) {
        uint64_t last = wal_last_index(w, g);
        if (o->snapshot_every == 0 || last - wal_snapshot_index(w, g) < o->snapshot_every) {
            continue;
        }
        char data[64];
        int n = snprintf(data, sizeof(data), "snap-%" PRIu64, last);
        struct wal_snapshot s = {
            .index = last, .term = 1, .data = (const uint8_t *)data, .data_len = (uint64_t)n};
        (void)must(wal_snapshot_put(w, g, &s, 0), "snapshot");
    }
}

static void append_loop(struct wal *w, const struct opts *o)
{
    static uint8_t bufs[1024][128];
    struct wal_entry entries[1024];
    int full = 0;
    for (uint64_t done = 0; o->count == 0 || done < o->count;) {
        uint64_t first = UINT64_MAX;
        for (uint32_t g = 0; g < o->groups; g++) {
            first = HY_MIN(first, wal_last_index(w, g) + 1);
        }
        for (size_t i = 0; i < o->batch; i++) {
            size_t len = payload(first + i, bufs[i]);
            entries[i] =
                (struct wal_entry){.term = 1, .type = 1, .len = (uint32_t)len, .data = bufs[i]};
        }
        for (uint32_t g = 0; g < o->groups; g++) {
            /* A torn write may have left the groups at different ends: each resumes at its
             * own, and the batch is acknowledged once every group holds it. */
            uint64_t from = wal_last_index(w, g) + 1;
            if (from <= first + o->batch - 1) {
                wal_batch_append(w, g, from, entries + (from - first), o->batch - (from - first));
            }
        }
        int rc = must(wal_batch_commit(w), "append");
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
    struct opts o = {0};
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
    struct wal_recovered recs[256];
    char err[1024];
    for (uint32_t g = 0; g < o.groups; g++) {
        group_ids[g] = g;
    }
    int rc = wal_open(disk, &cfg, group_ids, o.groups, &w, recs, err, sizeof(err));
    if (rc != HY_OK) {
        fprintf(stderr, "%s\n", err[0] ? err : hy_strerror(rc));
        disk_destroy(disk);
        return 2;
    }
    int bad = 0;
    uint64_t last = UINT64_MAX;
    for (uint32_t g = 0; g < o.groups; g++) {
        bad |= verify(&recs[g]);
        last = HY_MIN(last, wal_last_index(w, g));
    }
    uint64_t term = recs[0].term;
    printf("RECOVERED %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", recs[0].snapshot.index,
           recs[0].n_entries ? recs[0].first_index : 0, last);
    fflush(stdout);
    for (uint32_t g = 0; g < o.groups; g++) {
        wal_recovered_free(&recs[g]);
    }
    if (bad == 0 && !o.verify_only) {
        if (term == 0) {
            for (uint32_t g = 0; g < o.groups; g++) {
                wal_batch_term_vote(w, g, 1, 1);
            }
            (void)must(wal_batch_commit(w), "term");
        }
        append_loop(w, &o);
    }
    wal_close(w);
    disk_destroy(disk);
    return bad;
}
