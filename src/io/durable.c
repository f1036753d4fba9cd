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

struct io_durable {
    struct hy_node *node;
    const struct hy_config *cfg;
    const struct hy_log *log;
    io_durable_progress_cb progress_cb;
    io_durable_send_cb send_cb;
    void *ctx;
    struct disk *disk;
    struct wal *wal;
    struct wal_thread *thread;
    struct wal_config wal_cfg;
    struct pending *queue; /* FIFO ring of batches handed out, in order */
    size_t head, count, cap;
    int disk_full;
};

static void queue_push(struct io_durable *d, struct node_io_batch *b, uint64_t seq)
{
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        struct pending *q = hy_xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < d->count; i++) {
            q[i] = d->queue[(d->head + i) % d->cap];
        }
        hy_free(d->queue);
        d->queue = q;
        d->head = 0;
        d->cap = cap;
    }
    d->queue[(d->head + d->count) % d->cap] = (struct pending){b, seq};
    d->count++;
}

static struct pending *queue_front(struct io_durable *d)
{
    return d->count ? &d->queue[d->head] : NULL;
}

static void queue_pop(struct io_durable *d)
{
    d->head = (d->head + 1) % d->cap;
    d->count--;
}

static int batch_persists(const struct node_io_batch *b)
{
    return b->term_vote_changed || b->snapshot != NODE_SNAP_NONE || b->n_entries > 0;
}

/* Submits the batch's writes: term/vote, snapshot, entries, in that order (raft.h). */
static uint64_t submit_batch(struct io_durable *d, const struct node_io_batch *b)
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
    uint64_t seq = wal_thread_submit(d->thread, &req);
    hy_free(ents);
    return seq;
}

void io_durable_pump(struct io_durable *d)
{
    struct node_io_batch *b;
    while ((b = node_io_take(d->node)) != NULL) {
        if (batch_persists(b)) {
            queue_push(d, b, submit_batch(d, b));
        } else if (d->count == 0) {
            /* Nothing ahead of it and nothing to write: its messages may go at once. */
            d->send_cb(d->ctx, b);
            node_io_done(d->node, b, io_clock_ms());
        } else {
            queue_push(d, b, 0);
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
               "FATAL: write or fsync of the Raft log failed; stopping "
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
    struct pending *p;
    while ((p = queue_front(d)) != NULL && p->seq <= done->durable_seq) {
        struct node_io_batch *b = p->batch;
        queue_pop(d);
        d->send_cb(d->ctx, b); /* raft.h step 2: only once step 1 is durable */
        node_io_done(d->node, b, io_clock_ms());
    }
    d->progress_cb(d->ctx);
}

static int durable_open_wal(struct io_durable *d, struct wal_recovered *rec)
{
    char path[4200], err[512] = "";
    snprintf(path, sizeof(path), "%s/group-0", d->cfg->data_dir);
    int rc = disk_posix_open(path, &d->disk);
    if (rc != HY_OK) {
        hy_log(d->log, HY_LOG_ERROR, "cannot open %s: %s", path, hy_strerror(rc));
        return rc;
    }
    wal_config_default(&d->wal_cfg);
    d->wal_cfg.log = d->log;
    d->wal_cfg.must_exist = d->cfg->formed;
    d->wal_cfg.segment_size_bytes = (uint64_t)d->cfg->wal_segment_size;
    rc = wal_open(d->disk, &d->wal_cfg, &d->wal, rec, err, sizeof(err));
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
    struct wal_recovered rec;
    int rc = durable_open_wal(d, &rec);
    if (rc == HY_OK) {
        rc = wal_node_start(d->node, 0, &rec, io_clock_ms(), d->log);
        wal_recovered_free(&rec);
    }
    if (rc == HY_OK) {
        rc = wal_thread_start(loop, d->wal, d, durable_done_cb, &d->thread);
    }
    if (rc != HY_OK) {
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
    hy_free(d->queue); /* any batch still queued belongs to the node, freed with it */
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
    if (d->thread == NULL) {
        hy_histo_init_us(out);
        return;
    }
    wal_thread_sync_times(d->thread, out);
}
