#include "io/durable.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/disk.h"
#include "io/server.h"
#include "io/wal.h"
#include "io/wal_node.h"
#include "io/wal_thread.h"

struct pending {
    struct node_io_batch *batch;
    uint64_t seq; /* WAL request to wait for; 0 = nothing of its own to persist */
};

struct io_durable;

/* One Raft group's batches handed out, in order (a group's batches complete in order; groups
 * never wait for each other longer than the shared fdatasync). */
struct durable_group {
    uint32_t id;
    struct pending *queue; /* FIFO ring */
    size_t head, count, cap;
};

struct io_durable {
    struct hy_node *node;
    const struct hy_config *cfg;
    const struct hy_log *log;
    io_durable_progress_cb progress_cb;
    io_durable_send_cb send_cb;
    void *ctx;
    struct wal_config wal_cfg;
    /* The node's one log, shared by every group, and its one WAL thread. */
    struct disk *disk;
    struct wal *wal;
    struct wal_thread *thread;
    struct durable_group *groups; /* ascending by id */
    size_t group_count;
    int disk_full;
};

static void queue_push(struct durable_group *g, struct node_io_batch *b, uint64_t seq)
{
    if (g->count == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct pending *q = hy_xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < g->count; i++) {
            q[i] = g->queue[(g->head + i) % g->cap];
        }
        hy_free(g->queue);
        g->queue = q;
        g->head = 0;
        g->cap = cap;
    }
    g->queue[(g->head + g->count) % g->cap] = (struct pending){b, seq};
    g->count++;
}

static struct pending *queue_front(struct durable_group *g)
{
    return g->count ? &g->queue[g->head] : NULL;
}

static void queue_pop(struct durable_group *g)
{
    g->head = (g->head + 1) % g->cap;
    g->count--;
}

static int batch_persists(const struct node_io_batch *b)
{
    return b->term_vote_changed || b->snapshot != NODE_SNAP_NONE || b->n_entries > 0;
}

/* Submits the batch's writes: term/vote, snapshot, entries, in that order (raft.h). */
static uint64_t submit_batch(struct io_durable *d, const struct node_io_batch *b)
{
    struct wal_thread_req req = {0};
    req.group = b->group;
    req.term_vote_changed = b->term_vote_changed;
    req.term = b->term;
    req.vote = b->vote;
    struct wal_snapshot snap;
    uint8_t membership[8 + RAFT_SERVERS_MAX * 16];
    if (b->snapshot != NODE_SNAP_NONE) {
        HY_ASSERT(raft_membership_encoded_len(&b->snap_membership) <= sizeof(membership));
        snap = (struct wal_snapshot){
            .index = b->snap_index,
            .term = b->snap_term,
            .membership = membership,
            .membership_len = (uint32_t)raft_membership_encode(&b->snap_membership, membership),
            .data = b->snap_data,
            .data_len = b->snap_len,
        };
        req.snapshot = &snap;
        req.discard_log = b->snapshot == NODE_SNAP_INSTALL;
    }
    struct wal_entry *ents = NULL;
    if (b->n_entries > 0) {
        ents = hy_xcalloc(b->n_entries, sizeof(*ents));
        for (uint32_t i = 0; i < b->n_entries; i++) {
            ents[i] = (struct wal_entry){b->entries[i].term, b->entries[i].type, b->entries[i].len,
                                         b->entries[i].data};
        }
        req.first_index = b->entries_first_index;
        req.entries = ents;
        req.n_entries = b->n_entries;
    }
    uint64_t seq = wal_thread_submit(d->thread, &req);
    hy_free(ents);
    return seq;
}

static struct durable_group *group_of(struct io_durable *d, uint32_t id)
{
    size_t lo = 0, hi = d->group_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->groups[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < d->group_count && d->groups[lo].id == id ? &d->groups[lo] : NULL;
}

void io_durable_pump(struct io_durable *d)
{
    struct node_io_batch *b;
    while ((b = node_io_take(d->node)) != NULL) {
        struct durable_group *g = group_of(d, b->group);
        HY_ASSERT(g != NULL); /* the node's groups were all opened */
        if (batch_persists(b)) {
            queue_push(g, b, submit_batch(d, b));
        } else if (g->count == 0) {
            /* Nothing ahead of it and nothing to write: its messages may go at once. */
            d->send_cb(d->ctx, b);
            node_io_done(d->node, b, io_clock_ms());
        } else {
            queue_push(g, b, 0);
        }
    }
}

static void durable_done_cb(void *ctx, const struct wal_thread_done *done)
{
    struct io_durable *d = ctx;
    if (done->status == HY_EIO) {
        /* Never retry an fsync: after a failure the kernel may have dropped the dirty pages,
         * and a retry could report as durable what is lost (wal.h). */
        hy_log(d->log, HY_LOG_ERROR,
               "FATAL: write or fsync of the node's Raft log failed; stopping "
               "so that nothing unsafe is acknowledged");
        abort();
    }
    int full = done->status == HY_ENOSPC;
    if (full != d->disk_full) {
        d->disk_full = full;
        node_set_disk_full(d->node, full);
        hy_log(d->log, full ? HY_LOG_ERROR : HY_LOG_INFO, "%s",
               full ? "disk full: writes are refused until space is freed; reads go on"
                    : "disk space is back: writes accepted again");
    }
    /* Old segments pinned by these groups' entries: snapshots let the log collect them. */
    for (size_t i = 0; i < done->n_snapshot_wanted; i++) {
        (void)node_snapshot_request(d->node, done->snapshot_wanted[i], io_clock_ms());
    }
    /* Requests complete in submission order: every group's batches up to durable_seq. */
    for (size_t i = 0; i < d->group_count; i++) {
        struct durable_group *g = &d->groups[i];
        struct pending *p;
        while ((p = queue_front(g)) != NULL && p->seq <= done->durable_seq) {
            struct node_io_batch *b = p->batch;
            queue_pop(g);
            d->send_cb(d->ctx, b); /* raft.h step 2: only once step 1 is durable */
            node_io_done(d->node, b, io_clock_ms());
        }
    }
    d->progress_cb(d->ctx);
}

static int durable_id_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A data dir written before the shared log (DATA_DIR/group-N) is refused: nothing of it is
 * read or changed (docs/disk-format.md "Layout versions"). */
static int durable_old_layout(struct io_durable *d)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/group-0", d->cfg->data_dir);
    DIR *dir = opendir(path);
    if (dir == NULL) {
        return 0;
    }
    closedir(dir);
    hy_log(d->log, HY_LOG_ERROR,
           "%s holds the per-group log layout of halyard before the shared log (%s/group-N "
           "directories): this version only reads %s/wal. Start an older halyard to drain "
           "this node, or empty the data dir and let the node rejoin and catch up from the "
           "other replicas",
           d->cfg->data_dir, d->cfg->data_dir, d->cfg->data_dir);
    return 1;
}

int io_durable_open(uv_loop_t *loop, struct hy_node *node, const struct hy_config *cfg,
                    const struct hy_log *log, io_durable_progress_cb progress_cb,
                    io_durable_send_cb send_cb, void *ctx, struct io_durable **out)
{
    struct io_durable *d = hy_xcalloc(1, sizeof(*d));
    *d = (struct io_durable){.node = node,
                             .cfg = cfg,
                             .log = log,
                             .progress_cb = progress_cb,
                             .send_cb = send_cb,
                             .ctx = ctx};
    wal_config_default(&d->wal_cfg);
    d->wal_cfg.log = d->log;
    d->wal_cfg.must_exist = d->cfg->formed;
    d->wal_cfg.segment_size_bytes = (uint64_t)d->cfg->wal_segment_size;
    uint32_t *ids = hy_xcalloc(NODE_PARTITIONS_MAX + 1, sizeof(*ids));
    d->group_count = node_group_ids(node, ids, NODE_PARTITIONS_MAX + 1);
    qsort(ids, d->group_count, sizeof(*ids), durable_id_cmp);
    d->groups = hy_xcalloc(d->group_count, sizeof(*d->groups));
    for (size_t i = 0; i < d->group_count; i++) {
        d->groups[i].id = ids[i];
    }
    struct wal_recovered *recs = hy_xcalloc(d->group_count, sizeof(*recs));
    char path[4200], err[512] = "";
    snprintf(path, sizeof(path), "%s/wal", d->cfg->data_dir);
    int rc = durable_old_layout(d) ? HY_ECORRUPT : HY_OK;
    if (rc == HY_OK) {
        rc = disk_posix_open(path, &d->disk);
        if (rc != HY_OK) {
            hy_log(d->log, HY_LOG_ERROR, "cannot open %s: %s", path, hy_strerror(rc));
        }
    }
    if (rc == HY_OK) {
        rc = wal_open(d->disk, &d->wal_cfg, ids, d->group_count, &d->wal, recs, err, sizeof(err));
        if (rc != HY_OK) {
            hy_log(d->log, HY_LOG_ERROR, "cannot open the Raft log in %s: %s", path, err);
        }
    }
    for (size_t i = 0; i < d->group_count && rc == HY_OK; i++) {
        rc = wal_node_start(d->node, ids[i], &recs[i], io_clock_ms(), d->log);
    }
    if (rc == HY_OK) {
        for (size_t i = 0; i < d->group_count; i++) {
            wal_recovered_free(&recs[i]);
        }
    }
    hy_free(recs);
    hy_free(ids);
    /* The thread only once every group recovered: a damaged group stops the node before it
     * runs. */
    if (rc == HY_OK) {
        rc = wal_thread_start(loop, d->wal, d, durable_done_cb, &d->thread);
    }
    if (rc != HY_OK) {
        io_durable_stop(d);
        uv_run(loop, UV_RUN_NOWAIT); /* the stopped thread's handles close */
        io_durable_close(d);
        return rc;
    }
    *out = d;
    return HY_OK;
}

void io_durable_stop(struct io_durable *d)
{
    if (d->thread != NULL) {
        wal_thread_stop(d->thread);
        d->thread = NULL;
    }
}

void io_durable_close(struct io_durable *d)
{
    HY_ASSERT(d->thread == NULL);
    if (d->wal != NULL) {
        wal_close(d->wal);
    }
    if (d->disk != NULL) {
        disk_destroy(d->disk);
    }
    for (size_t i = 0; i < d->group_count; i++) {
        hy_free(d->groups[i].queue); /* any batch still queued belongs to the node */
    }
    hy_free(d->groups);
    hy_free(d);
}

/* Cuts the log in dir. Returns the exit code. */
static int repair_log(const char *dir)
{
    struct disk *disk;
    if (disk_posix_open(dir, &disk) != HY_OK) {
        fprintf(stderr, "halyard --repair: cannot open %s\n", dir);
        return 1;
    }
    struct wal_config cfg;
    wal_config_default(&cfg);
    char report[4096] = "";
    int rc = wal_repair(disk, &cfg, report, sizeof(report));
    disk_destroy(disk);
    printf("%s:\n%s\n", dir, report);
    return rc == HY_OK ? 0 : 1;
}

/* A name the shared log writes (docs/disk-format.md "Files"). */
static int repair_is_log_file(const char *name)
{
    return strncmp(name, "open-", 5) == 0 || strncmp(name, "segment-", 8) == 0 ||
           strncmp(name, "snapshot-", 9) == 0;
}

int io_durable_repair(const char *dir)
{
    /* Operators name the data dir they configured; the log lives in DATA_DIR/wal. The log
     * directory itself is accepted too. */
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "halyard --repair: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int has_wal = 0, has_log = 0, old_layout = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        has_wal |= strcmp(e->d_name, "wal") == 0;
        old_layout |= strncmp(e->d_name, "group-", 6) == 0;
        has_log |= repair_is_log_file(e->d_name);
    }
    closedir(d);
    if (has_wal) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/wal", dir);
        return repair_log(path);
    }
    if (has_log) {
        return repair_log(dir);
    }
    fprintf(stderr,
            "halyard --repair: no Raft log in %s: give the node's data-dir (its log is in "
            "DATA_DIR/wal) or the log directory itself%s\n",
            dir,
            old_layout ? "; its group-N directories are the per-group layout of an older "
                         "halyard, which this version does not read"
                       : "");
    return 1;
}

void io_durable_sync_times(struct io_durable *d, struct hy_histo *out)
{
    /* The node's one log: every group's writes. */
    if (d->thread == NULL) {
        hy_histo_init_us(out);
        return;
    }
    wal_thread_sync_times(d->thread, out);
}
