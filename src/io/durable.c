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

/* One Raft group's log: its directory, WAL and WAL thread, and its batches handed out, in
 * order (a group's batches complete in order; groups do not wait for each other). */
struct durable_group {
    struct io_durable *d;
    uint32_t id;
    struct disk *disk;
    struct wal *wal;
    struct wal_thread *thread;
    struct pending *queue; /* FIFO ring */
    size_t head, count, cap;
    int disk_full;
};

struct io_durable {
    struct hy_node *node;
    const struct hy_config *cfg;
    const struct hy_log *log;
    io_durable_progress_cb progress_cb;
    io_durable_send_cb send_cb;
    void *ctx;
    struct wal_config wal_cfg;
    struct durable_group *groups;
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
static uint64_t submit_batch(struct durable_group *g, const struct node_io_batch *b)
{
    struct wal_thread_req req = {0};
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
    uint64_t seq = wal_thread_submit(g->thread, &req);
    hy_free(ents);
    return seq;
}

static struct durable_group *group_of(struct io_durable *d, uint32_t id)
{
    for (size_t i = 0; i < d->group_count; i++) {
        if (d->groups[i].id == id) {
            return &d->groups[i];
        }
    }
    return NULL;
}

void io_durable_pump(struct io_durable *d)
{
    struct node_io_batch *b;
    while ((b = node_io_take(d->node)) != NULL) {
        struct durable_group *g = group_of(d, b->group);
        HY_ASSERT(g != NULL); /* the node's groups were all opened */
        if (batch_persists(b)) {
            queue_push(g, b, submit_batch(g, b));
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
    struct durable_group *g = ctx;
    struct io_durable *d = g->d;
    if (done->status == HY_EIO) {
        /* Never retry an fsync: after a failure the kernel may have dropped the dirty pages,
         * and a retry could report as durable what is lost (wal.h). */
        hy_log(d->log, HY_LOG_ERROR,
               "FATAL: write or fsync of the Raft log of group %u failed; stopping "
               "so that nothing unsafe is acknowledged",
               g->id);
        abort();
    }
    g->disk_full = done->status == HY_ENOSPC;
    int full = 0;
    for (size_t i = 0; i < d->group_count; i++) {
        full |= d->groups[i].disk_full;
    }
    if (full != d->disk_full) {
        d->disk_full = full;
        node_set_disk_full(d->node, full);
        hy_log(d->log, full ? HY_LOG_ERROR : HY_LOG_INFO, "%s",
               full ? "disk full: writes are refused until space is freed; reads go on"
                    : "disk space is back: writes accepted again");
    }
    struct pending *p;
    while ((p = queue_front(g)) != NULL && p->seq <= done->durable_seq) {
        struct node_io_batch *b = p->batch;
        queue_pop(g);
        d->send_cb(d->ctx, b); /* raft.h step 2: only once step 1 is durable */
        node_io_done(d->node, b, io_clock_ms());
    }
    d->progress_cb(d->ctx);
}

static int durable_open_wal(struct io_durable *d, struct durable_group *g,
                            struct wal_recovered *rec)
{
    char path[4200], err[512] = "";
    snprintf(path, sizeof(path), "%s/group-%u", d->cfg->data_dir, g->id);
    int rc = disk_posix_open(path, &g->disk);
    if (rc != HY_OK) {
        hy_log(d->log, HY_LOG_ERROR, "cannot open %s: %s", path, hy_strerror(rc));
        return rc;
    }
    rc = wal_open(g->disk, &d->wal_cfg, &g->wal, rec, err, sizeof(err));
    if (rc != HY_OK) {
        hy_log(d->log, HY_LOG_ERROR, "cannot open the Raft log in %s: %s", path, err);
    }
    return rc;
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
    uint32_t ids[NODE_PARTITIONS_MAX + 1];
    d->group_count = node_group_ids(node, ids, HY_ARRAY_LEN(ids));
    d->groups = hy_xcalloc(d->group_count, sizeof(*d->groups));
    int rc = HY_OK;
    for (size_t i = 0; i < d->group_count && rc == HY_OK; i++) {
        struct durable_group *g = &d->groups[i];
        g->d = d;
        g->id = ids[i];
        struct wal_recovered rec;
        rc = durable_open_wal(d, g, &rec);
        if (rc == HY_OK) {
            rc = wal_node_start(d->node, g->id, &rec, io_clock_ms(), d->log);
            wal_recovered_free(&rec);
        }
    }
    /* Threads only once every group recovered: a damaged group stops the node before any
     * thread runs. */
    for (size_t i = 0; i < d->group_count && rc == HY_OK; i++) {
        struct durable_group *g = &d->groups[i];
        rc = wal_thread_start(loop, g->wal, g, durable_done_cb, &g->thread);
    }
    if (rc != HY_OK) {
        io_durable_stop(d);
        uv_run(loop, UV_RUN_NOWAIT); /* the stopped threads' handles close */
        io_durable_close(d);
        return rc;
    }
    *out = d;
    return HY_OK;
}

void io_durable_stop(struct io_durable *d)
{
    for (size_t i = 0; i < d->group_count; i++) {
        if (d->groups[i].thread != NULL) {
            wal_thread_stop(d->groups[i].thread);
            d->groups[i].thread = NULL;
        }
    }
}

void io_durable_close(struct io_durable *d)
{
    for (size_t i = 0; i < d->group_count; i++) {
        struct durable_group *g = &d->groups[i];
        HY_ASSERT(g->thread == NULL);
        if (g->wal != NULL) {
            wal_close(g->wal);
        }
        if (g->disk != NULL) {
            disk_destroy(g->disk);
        }
        hy_free(g->queue); /* any batch still queued belongs to the node, freed with it */
    }
    hy_free(d->groups);
    hy_free(d);
}

/* Cuts one group's log (dir holds its files). Returns the exit code. */
static int repair_group(const char *dir)
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

/* A name the log writes (docs/disk-format.md "Files"). */
static int repair_is_log_file(const char *name)
{
    return strcmp(name, "metadata1") == 0 || strcmp(name, "metadata2") == 0 ||
           strncmp(name, "open-", 5) == 0 || strncmp(name, "snapshot-", 9) == 0 ||
           (name[0] >= '0' && name[0] <= '9' && strchr(name, '-') != NULL);
}

static int repair_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int io_durable_repair(const char *dir)
{
    /* Operators name the data dir they configured; the logs live one level down, one
     * directory per Raft group (group-N). A group directory itself is accepted too. */
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "halyard --repair: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **groups = NULL;
    size_t n_groups = 0, cap = 0;
    int has_log = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned id;
        char rest;
        if (sscanf(e->d_name, "group-%u%c", &id, &rest) == 1) {
            if (n_groups == cap) {
                cap = cap ? cap * 2 : 4;
                groups = hy_xrealloc(groups, cap * sizeof(*groups));
            }
            groups[n_groups] = hy_xmalloc(strlen(dir) + strlen(e->d_name) + 2);
            sprintf(groups[n_groups++], "%s/%s", dir, e->d_name);
        }
        has_log |= repair_is_log_file(e->d_name);
    }
    closedir(d);
    int rc = 0;
    if (n_groups == 0 && !has_log) {
        fprintf(stderr,
                "halyard --repair: no Raft log in %s: give the node's data-dir (its groups are "
                "in DATA_DIR/group-N) or one group directory\n",
                dir);
        rc = 1;
    } else if (n_groups == 0) {
        rc = repair_group(dir);
    }
    if (n_groups > 1) {
        qsort(groups, n_groups, sizeof(*groups), repair_name_cmp);
    }
    for (size_t i = 0; i < n_groups; i++) {
        rc |= repair_group(groups[i]);
        hy_free(groups[i]);
    }
    hy_free(groups);
    return rc;
}

void io_durable_sync_times(struct io_durable *d, struct hy_histo *out)
{
    /* Group 0's: the metadata group (with one partition, every write's). */
    if (d->group_count == 0 || d->groups[0].thread == NULL) {
        hy_histo_init_us(out);
        return;
    }
    wal_thread_sync_times(d->groups[0].thread, out);
}
