/*
 * wal.c - writing the node's shared Raft log: group-committed records of every
 * group, snapshots per group, and segment garbage collection (wal.h; open and
 * recovery are in wal_recover.c).
 *
 * Every public function leaves the directory in a state the recovery rules
 * accept, after each of its durable steps, so a crash at any point recovers
 * (docs/disk-format.md).
 */
#include "io/wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/wal_int.h"

void wal_config_default(struct wal_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->segment_size_bytes = 8u << 20;
    cfg->snapshot_interval = 10000;
    cfg->retention_logs = 1000;
    cfg->segments_soft_max = 16;
}

/* ---- small helpers shared with wal_recover.c ---------------------------------------------- */

void wal__name_closed(char out[WAL_NAME_MAX], uint64_t counter)
{
    snprintf(out, WAL_NAME_MAX, "segment-%020" PRIu64, counter);
}

void wal__name_open(char out[WAL_NAME_MAX], uint64_t counter)
{
    snprintf(out, WAL_NAME_MAX, "open-%" PRIu64, counter);
}

void wal__name_snapshot(char out[WAL_NAME_MAX], uint32_t group, uint64_t index, int tmp)
{
    snprintf(out, WAL_NAME_MAX, "snapshot-%010" PRIu32 "-%020" PRIu64 "%s", group, index,
             tmp ? ".tmp" : "");
}

void wal__name_snapshot_recv(char out[WAL_NAME_MAX], uint32_t group, uint64_t index)
{
    snprintf(out, WAL_NAME_MAX, "snapshot-%010" PRIu32 "-%020" PRIu64 ".recv.tmp", group, index);
}

int wal__read_file(struct disk *d, const char *name, uint8_t **buf_out, size_t *len_out)
{
    int fd;
    int rc = d->ops->open(d, name, 0, &fd);
    if (rc != HY_OK) {
        return rc;
    }
    uint64_t size = 0;
    rc = d->ops->size(d, fd, &size);
    uint8_t *buf = hy_xmalloc(size > 0 ? (size_t)size : 1);
    size_t got = 0;
    if (rc == HY_OK) {
        rc = d->ops->read(d, fd, 0, buf, (size_t)size, &got);
    }
    d->ops->close(d, fd);
    if (rc != HY_OK) {
        hy_free(buf);
        return rc;
    }
    *buf_out = buf;
    *len_out = got;
    return HY_OK;
}

int wal__sync(struct disk *d, int fd)
{
    /* Whatever the reason (EIO, ENOSPC on thin storage), a failed fdatasync is
     * fatal. */
    return d->ops->sync(d, fd) == HY_OK ? HY_OK : HY_EIO;
}

int wal__sync_dir(struct disk *d)
{
    return d->ops->sync_dir(d) == HY_OK ? HY_OK : HY_EIO;
}

int wal__cut_file(struct disk *d, int fd, uint64_t keep, uint64_t size)
{
    int rc = d->ops->truncate(d, fd, keep);
    if (rc == HY_OK && size > keep) {
        rc = d->ops->preallocate(d, fd, size);
    }
    if (rc == HY_OK) {
        rc = wal__sync(d, fd);
    }
    return rc;
}

int wal__remove_synced(struct disk *d, const char *name)
{
    int rc = d->ops->remove(d, name);
    if (rc == HY_ENOTFOUND) {
        rc = HY_OK;
    }
    return rc == HY_OK ? wal__sync_dir(d) : rc;
}

int wal__slot(const struct wal *w, uint32_t group)
{
    size_t lo = 0;
    size_t hi = w->n_groups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->groups[mid].id < group) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < w->n_groups && w->groups[lo].id == group ? (int)lo : -1;
}

static struct wal_group *wal_group_of(const struct wal *w, uint32_t group)
{
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0); /* a group the wal was opened with */
    return &w->groups[slot];
}

void wal__seg_alloc(struct wal *w, struct wal_seg *seg)
{
    seg->min_index = hy_xcalloc(w->n_groups ? w->n_groups : 1, sizeof(uint64_t));
    seg->max_index = hy_xcalloc(w->n_groups ? w->n_groups : 1, sizeof(uint64_t));
}

void wal__seg_free(struct wal_seg *seg)
{
    hy_free(seg->min_index);
    hy_free(seg->max_index);
    seg->min_index = seg->max_index = NULL;
}

void wal__seg_note(struct wal_seg *seg, size_t slot, uint64_t first, uint64_t last)
{
    if (seg->max_index[slot] == 0 || first < seg->min_index[slot]) {
        seg->min_index[slot] = first;
    }
    seg->max_index[slot] = HY_MAX(seg->max_index[slot], last);
}

void wal__push_closed(struct wal *w, const struct wal_seg *seg)
{
    if (w->n_closed == w->cap_closed) {
        w->cap_closed = w->cap_closed ? w->cap_closed * 2 : 16;
        w->closed = hy_xrealloc(w->closed, w->cap_closed * sizeof(*w->closed));
    }
    HY_ASSERT(w->n_closed == 0 || w->closed[w->n_closed - 1].counter < seg->counter);
    w->closed[w->n_closed++] = *seg;
}

void wal__runs_push(struct wal_group *g, uint64_t from, uint64_t term)
{
    if (g->n_runs > 0 && g->runs[g->n_runs - 1].term == term) {
        return;
    }
    if (g->n_runs == g->cap_runs) {
        g->cap_runs = g->cap_runs ? g->cap_runs * 2 : 4;
        g->runs = hy_xrealloc(g->runs, g->cap_runs * sizeof(*g->runs));
    }
    g->runs[g->n_runs++] = (struct wal_run){.index = from, .term = term};
}

uint64_t wal__runs_cut(struct wal_group *g, uint64_t index)
{
    while (g->n_runs > 0 && g->runs[g->n_runs - 1].index >= index) {
        g->n_runs--;
    }
    if (index - 1 <= g->snap_index || g->n_runs == 0) {
        return g->snap_term;
    }
    return g->runs[g->n_runs - 1].term;
}

/* Makes a failure sticky: after an I/O error nothing more may be written
 * (wal.h). */
static int wal_fail(struct wal *w, int rc)
{
    if (rc == HY_EIO) {
        w->failed = 1;
        hy_log(w->cfg.log, HY_LOG_ERROR,
               "wal %s: write or fdatasync failed: the process must stop (never "
               "retry fsync)",
               w->disk->path);
    }
    return rc;
}

static uint64_t wal_entries_on_disk(const struct wal_group *g)
{
    return g->first_index == 0 ? 0 : g->last_index - g->first_index + 1;
}

/* Entries of the group from this index on must stay on disk. */
static uint64_t wal_keep_from(const struct wal *w, const struct wal_group *g, int pressure)
{
    int over = w->cfg.max_log_entries != 0 && wal_entries_on_disk(g) > w->cfg.max_log_entries;
    if (pressure || over) {
        return g->snap_index + 1;
    }
    return g->snap_index + 1 - HY_MIN(w->cfg.retention_logs, g->snap_index);
}

/* ---- segments ----------------------------------------------------------------------------- */

/* Creates open-(N+1): preallocated, header written, synced, and its name made
 * durable. On failure the partial file is removed and the wal is unchanged. */
static int wal_segment_create(struct wal *w, uint64_t size, int *fd_out, char *name_out)
{
    struct disk *d = w->disk;
    wal__name_open(name_out, w->open_counter + 1);
    int fd;
    int rc = d->ops->open(d, name_out, DISK_CREATE | DISK_EXCL, &fd);
    if (rc == HY_ENOTFOUND || rc == HY_EEXIST) {
        rc = HY_EIO;
    }
    if (rc != HY_OK) {
        return rc;
    }
    uint8_t header[WAL_SEG_HEADER_SIZE];
    wal_segment_header_encode(header);
    rc = d->ops->preallocate(d, fd, size);
    if (rc == HY_OK) {
        rc = d->ops->write(d, fd, 0, header, sizeof(header));
    }
    if (rc == HY_OK) {
        rc = wal__sync(d, fd);
    }
    if (rc == HY_OK) {
        rc = wal__sync_dir(d);
    }
    if (rc != HY_OK) {
        d->ops->close(d, fd);
        (void)d->ops->remove(d, name_out);
        return rc == HY_ENOSPC ? HY_ENOSPC : HY_EIO;
    }
    w->open_counter++;
    *fd_out = fd;
    return HY_OK;
}

/* Closes the open segment: cut to its used length, renamed segment-N, name made
 * durable. An open segment without records is removed instead. */
static int wal_segment_close(struct wal *w)
{
    struct disk *d = w->disk;
    if (w->open.last_seq == 0) {
        d->ops->close(d, w->fd);
        w->fd = -1;
        wal__seg_free(&w->open);
        return wal__remove_synced(d, w->open.name);
    }
    struct wal_seg seg = w->open;
    wal__name_closed(seg.name, seg.counter);
    int rc = wal__cut_file(d, w->fd, w->open_used, 0);
    if (rc == HY_OK) {
        rc = d->ops->rename(d, w->open.name, seg.name);
    }
    if (rc == HY_OK) {
        rc = wal__sync_dir(d);
    }
    if (rc != HY_OK) {
        return rc;
    }
    d->ops->close(d, w->fd);
    w->fd = -1;
    wal__push_closed(w, &seg);
    w->open.min_index = w->open.max_index = NULL;
    return HY_OK;
}

/* Makes room for a write of `need` bytes: a new segment is created (and
 * preallocated) before the full one is closed, so running out of space changes
 * nothing. */
static int wal_segment_roll(struct wal *w, uint64_t need)
{
    uint64_t size = HY_MAX(w->cfg.segment_size_bytes, need + WAL_SEG_HEADER_SIZE);
    int fd;
    char name[WAL_NAME_MAX];
    int rc = wal_segment_create(w, size, &fd, name);
    if (rc != HY_OK) {
        return rc;
    }
    if (w->fd >= 0) {
        rc = wal_segment_close(w);
        if (rc != HY_OK) {
            w->disk->ops->close(w->disk, fd);
            return rc == HY_ENOSPC ? HY_EIO : rc;
        }
    }
    w->fd = fd;
    memset(&w->open, 0, sizeof(w->open));
    memcpy(w->open.name, name, WAL_NAME_MAX);
    w->open.counter = w->open_counter;
    wal__seg_alloc(w, &w->open);
    w->open_size = size;
    w->open_used = WAL_SEG_HEADER_SIZE;
    w->roll_needed = 0;
    return HY_OK;
}

/* ---- staging and committing ----------------------------------------------------------------- */

static void wal_stage_record(struct wal *w, const struct wal_record *r)
{
    size_t size = wal_record_size(r->len);
    uint8_t *p = hy_buf_reserve(&w->batch, size);
    wal_record_encode(p, r);
    w->batch.len += size;
}

static void wal_stage_op(struct wal *w, const struct wal_stage_op *op)
{
    if (w->n_ops == w->cap_ops) {
        w->cap_ops = w->cap_ops ? w->cap_ops * 2 : 64;
        w->ops = hy_xrealloc(w->ops, w->cap_ops * sizeof(*w->ops));
    }
    w->ops[w->n_ops++] = *op;
}

void wal_batch_term_vote(struct wal *w, uint32_t group, uint64_t term, uint64_t vote)
{
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0 && term < WAL_INDEX_LIMIT);
    struct wal_record r = {
        .seq = w->seq + 1, .group = group, .kind = WAL_KIND_TERM_VOTE, .index = term, .term = vote};
    wal_stage_record(w, &r);
    wal_stage_op(w, &(struct wal_stage_op){
                        .slot = (uint32_t)slot, .kind = WAL_KIND_TERM_VOTE, .a = term, .b = vote});
}

void wal_batch_append(struct wal *w, uint32_t group, uint64_t first_index,
                      const struct wal_entry *entries, size_t n)
{
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0);
    struct wal_group *g = &w->groups[slot];
    HY_ASSERT(n >= 1 && first_index > g->snap_index && first_index <= g->st_last_index + 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        struct wal_record r = {.seq = w->seq + 1,
                               .group = group,
                               .kind = WAL_KIND_ENTRY,
                               .index = first_index + i,
                               .term = entries[i].term,
                               .type = entries[i].type,
                               .len = entries[i].len,
                               .data = entries[i].data};
        wal_stage_record(w, &r);
        /* One op per run of equal terms. */
        if (i + 1 == n || entries[i + 1].term != entries[i].term) {
            wal_stage_op(w, &(struct wal_stage_op){.slot = (uint32_t)slot,
                                                   .kind = WAL_KIND_ENTRY,
                                                   .a = first_index + run,
                                                   .b = i + 1 - run,
                                                   .term = entries[i].term});
            run = i + 1;
        }
    }
    g->st_last_index = first_index + n - 1;
    g->st_last_term = entries[n - 1].term;
}

void wal__stage_truncate(struct wal *w, size_t slot, uint64_t index)
{
    struct wal_group *g = &w->groups[slot];
    struct wal_record r = {
        .seq = w->seq + 1, .group = g->id, .kind = WAL_KIND_TRUNCATE, .index = index};
    wal_stage_record(w, &r);
    wal_stage_op(
        w, &(struct wal_stage_op){.slot = (uint32_t)slot, .kind = WAL_KIND_TRUNCATE, .a = index});
    if (index <= g->st_last_index) {
        g->st_last_index = HY_MAX(index - 1, g->snap_index);
    }
}

void wal_batch_truncate(struct wal *w, uint32_t group, uint64_t index)
{
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0);
    HY_ASSERT(index > w->groups[slot].snap_index && index >= 1);
    wal__stage_truncate(w, (size_t)slot, index);
}

#define WAL_BATCH_KEEP_BYTES (256 * 1024)

static void wal_stage_reset(struct wal *w)
{
    for (size_t i = 0; i < w->n_ops; i++) {
        struct wal_group *g = &w->groups[w->ops[i].slot];
        g->st_last_index = g->last_index;
        g->st_last_term = g->last_term;
    }
    w->n_ops = 0;
    hy_buf_reset(&w->batch);
}

/* Entries >= index of the group are void: no segment counts them any more. */
static void wal_void_from(struct wal *w, size_t slot, uint64_t index)
{
    for (size_t i = 0; i <= w->n_closed; i++) {
        struct wal_seg *seg = i < w->n_closed ? &w->closed[i] : &w->open;
        if (seg->max_index == NULL || seg->max_index[slot] < index) {
            continue;
        }
        if (seg->min_index[slot] >= index) {
            seg->min_index[slot] = seg->max_index[slot] = 0;
        } else {
            seg->max_index[slot] = index - 1;
        }
    }
}

static void wal_apply_op(struct wal *w, const struct wal_stage_op *op)
{
    struct wal_group *g = &w->groups[op->slot];
    switch (op->kind) {
    case WAL_KIND_TERM_VOTE:
        g->term = op->a;
        g->vote = op->b;
        break;
    case WAL_KIND_ENTRY: {
        uint64_t first = op->a;
        uint64_t last = op->a + op->b - 1;
        if (first <= g->last_index) {
            (void)wal__runs_cut(g, first);
            wal_void_from(w, op->slot, first);
        }
        if (g->first_index == 0 || first < g->first_index) {
            g->first_index = first;
        }
        wal__runs_push(g, first, op->term);
        wal__seg_note(&w->open, op->slot, first, last);
        g->last_index = last;
        g->last_term = op->term;
        break;
    }
    case WAL_KIND_TRUNCATE:
        wal_void_from(w, op->slot, op->a);
        if (op->a <= g->snap_index) {
            /* The whole log is void (a snapshot replaced it). */
            g->first_index = 0;
            g->n_runs = 0;
            g->last_index = g->snap_index;
            g->last_term = g->snap_term;
        } else if (op->a <= g->last_index) {
            g->last_term = wal__runs_cut(g, op->a);
            g->last_index = op->a - 1;
            if (g->first_index != 0 && op->a <= g->first_index) {
                g->first_index = 0;
            }
        }
        break;
    default: HY_UNREACHABLE();
    }
    g->st_last_index = g->last_index;
    g->st_last_term = g->last_term;
}

/* Every group's durable term/vote, the head of a new segment: so that no older segment is
 * needed for them. */
static void wal_encode_head(struct wal *w, struct hy_buf *out)
{
    for (size_t i = 0; i < w->n_groups; i++) {
        struct wal_record r = {.seq = w->seq + 1,
                               .group = w->groups[i].id,
                               .kind = WAL_KIND_TERM_VOTE,
                               .index = w->groups[i].term,
                               .term = w->groups[i].vote};
        size_t size = wal_record_size(0);
        wal_record_encode(hy_buf_reserve(out, size), &r);
        out->len += size;
    }
}

/* The bytes of the head of a new segment (wal_encode_head). */
static uint64_t wal_head_len(const struct wal *w)
{
    return (uint64_t)w->n_groups * wal_record_size(0);
}

/* Whether a write of `len` bytes of records needs a new segment first. */
static int wal_needs_roll(const struct wal *w, uint64_t len)
{
    return w->fd < 0 || w->roll_needed ||
           w->open_used + (w->open.last_seq == 0 ? wal_head_len(w) : 0) + len > w->open_size;
}

/* The group commit: ONE write, and ONE fdatasync unless `sync` is 0 (wal_batch_write). */
static int wal_commit(struct wal *w, int sync)
{
    if (w->failed) {
        wal_stage_reset(w);
        return HY_EIO;
    }
    if (w->batch.len == 0) {
        return HY_OK;
    }
    uint64_t head_len = wal_head_len(w);
    int rolled = 0;
    int rc;
    if (wal_needs_roll(w, w->batch.len)) {
        rc = wal_segment_roll(w, head_len + w->batch.len);
        if (rc != HY_OK) {
            wal_stage_reset(w);
            return wal_fail(w, rc);
        }
        rolled = 1;
    }
    struct hy_buf head = {0};
    const uint8_t *data = w->batch.data;
    size_t len = w->batch.len;
    if (w->open.last_seq == 0) {
        wal_encode_head(w, &head);
        hy_buf_append(&head, w->batch.data, w->batch.len);
        data = head.data;
        len = head.len;
    }
    rc = w->disk->ops->write(w->disk, w->fd, w->open_used, data, len);
    if (rc == HY_OK && (sync || rolled)) {
        /* A roll is followed by a collection of segments that the records just written may
         * make obsolete (a group's entries replaced, a truncation): they are synced first, so
         * that no power cut can leave the old records deleted and their successors lost. */
        rc = wal__sync(w->disk, w->fd);
        w->unsynced = 0;
    } else if (rc == HY_OK) {
        w->unsynced = 1;
    } else {
        /* Bytes past open_used may have changed: the next write goes to a new segment, and
         * closing this one cuts them off. */
        w->roll_needed = 1;
        rc = rc == HY_ENOSPC ? HY_ENOSPC : HY_EIO;
    }
    hy_buf_free(&head);
    if (rc != HY_OK) {
        wal_stage_reset(w);
        return wal_fail(w, rc);
    }
    w->seq++;
    w->open.last_seq = w->seq;
    w->open_used += len;
    for (size_t i = 0; i < w->n_ops; i++) {
        wal_apply_op(w, &w->ops[i]);
    }
    w->n_ops = 0;
    hy_buf_reset(&w->batch);
    /* A burst (a pipelined bulk load) grows the staging buffer to megabytes: give a large
     * one back rather than hold it for good (issue 13; a commit that size amortizes a new
     * allocation easily). */
    if (w->batch.cap > WAL_BATCH_KEEP_BYTES) {
        hy_buf_free(&w->batch);
    }
    if (rolled) {
        rc = wal__gc(w);
    }
    return rc == HY_OK ? HY_OK : wal_fail(w, HY_EIO);
}

int wal_batch_commit(struct wal *w)
{
    return wal_commit(w, 1);
}

int wal_batch_write(struct wal *w)
{
    return wal_commit(w, 0);
}

int wal_sync(struct wal *w)
{
    if (w->failed) {
        return HY_EIO;
    }
    if (!w->unsynced) {
        return HY_OK;
    }
    /* Only the open segment can hold unsynced records: closing a segment syncs it. */
    if (wal__sync(w->disk, w->fd) != HY_OK) {
        return wal_fail(w, HY_EIO);
    }
    w->unsynced = 0;
    return HY_OK;
}

int wal_unsynced(const struct wal *w)
{
    return w->unsynced;
}

int wal_sync_begin(struct wal *w, int *fd_out)
{
    *fd_out = -1;
    if (w->failed) {
        return HY_EIO;
    }
    if (w->unsynced) {
        /* Cleared before the fdatasync, not after: a write that lands while it runs sets it
         * again and is synced the next time, whether or not this fdatasync covered it. */
        w->unsynced = 0;
        *fd_out = w->fd; /* only the open segment can hold unsynced records (wal_sync) */
    }
    return HY_OK;
}

int wal_sync_fd(struct wal *w, int fd)
{
    return wal__sync(w->disk, fd); /* w->disk is set at open and never changes */
}

int wal_sync_concurrent(const struct wal *w)
{
    return w->disk->sync_concurrent;
}

int wal_fits_open_segment(const struct wal *w, uint64_t len)
{
    return !w->failed && !wal_needs_roll(w, len);
}

int wal_append(struct wal *w, uint32_t group, uint64_t first_index, const struct wal_entry *entries,
               size_t n)
{
    if (w->failed) {
        return HY_EIO;
    }
    wal_batch_append(w, group, first_index, entries, n);
    return wal_batch_commit(w);
}

int wal_truncate(struct wal *w, uint32_t group, uint64_t index)
{
    if (w->failed) {
        return HY_EIO;
    }
    struct wal_group *g = wal_group_of(w, group);
    HY_ASSERT(index > g->snap_index && index >= 1);
    if (index > g->last_index) {
        return HY_OK;
    }
    wal_batch_truncate(w, group, index);
    return wal_batch_commit(w);
}

int wal_set_term_vote(struct wal *w, uint32_t group, uint64_t term, uint64_t vote)
{
    if (w->failed) {
        return HY_EIO;
    }
    wal_batch_term_vote(w, group, term, vote);
    return wal_batch_commit(w);
}

/* ---- garbage collection --------------------------------------------------------------------- */

int wal__gc(struct wal *w)
{
    while (w->n_closed > 0) {
        /* The next segment must hold the term/vote head first. */
        if (w->n_closed == 1 && w->open.last_seq == 0) {
            break;
        }
        int pressure = w->cfg.segments_soft_max != 0 && w->n_closed > w->cfg.segments_soft_max;
        struct wal_seg *seg = &w->closed[0];
        int needed = 0;
        for (size_t i = 0; i < w->n_groups && !needed; i++) {
            needed = seg->max_index[i] != 0 &&
                     seg->max_index[i] >= wal_keep_from(w, &w->groups[i], pressure);
        }
        if (needed) {
            break;
        }
        int rc = wal__remove_synced(w->disk, seg->name);
        if (rc != HY_OK) {
            return HY_EIO;
        }
        for (size_t i = 0; i < w->n_groups; i++) {
            struct wal_group *g = &w->groups[i];
            if (seg->max_index[i] == 0 || g->first_index == 0 ||
                g->first_index > seg->max_index[i]) {
                continue;
            }
            g->first_index = seg->max_index[i] + 1 > g->last_index ? 0 : seg->max_index[i] + 1;
            size_t drop = 0;
            while (drop + 1 < g->n_runs && g->runs[drop + 1].index <= g->first_index) {
                drop++;
            }
            if (drop > 0) {
                memmove(g->runs, g->runs + drop, (g->n_runs - drop) * sizeof(*g->runs));
                g->n_runs -= drop;
            }
        }
        wal__seg_free(seg);
        memmove(w->closed, w->closed + 1, (w->n_closed - 1) * sizeof(*w->closed));
        w->n_closed--;
    }
    return HY_OK;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static int wal_snapshot_write(struct disk *d, const struct wal_snapshot *s, const char *tmp)
{
    uint8_t header[WAL_SNAP_HEADER_SIZE];
    wal_snapshot_header_encode(s, header);
    int fd;
    int rc = d->ops->open(d, tmp, DISK_CREATE, &fd);
    if (rc != HY_OK) {
        return rc;
    }
    uint64_t off = 0;
    rc = d->ops->truncate(d, fd, 0);
    if (rc == HY_OK) {
        rc = d->ops->write(d, fd, off, header, sizeof(header));
        off += sizeof(header);
    }
    if (rc == HY_OK && s->membership_len > 0) {
        rc = d->ops->write(d, fd, off, s->membership, s->membership_len);
        off += s->membership_len;
    }
    if (rc == HY_OK && s->data_len > 0) {
        rc = d->ops->write(d, fd, off, s->data, (size_t)s->data_len);
    }
    if (rc == HY_OK) {
        rc = wal__sync(d, fd);
    }
    d->ops->close(d, fd);
    return rc;
}

int wal_snapshot_file_write(struct disk *d, uint32_t group, const struct wal_snapshot *s)
{
    HY_ASSERT(s->index >= 1 && s->term >= 1);
    char tmp[WAL_NAME_MAX];
    char name[WAL_NAME_MAX];
    wal__name_snapshot(tmp, group, s->index, 1);
    wal__name_snapshot(name, group, s->index, 0);
    int rc = wal_snapshot_write(d, s, tmp);
    if (rc == HY_OK) {
        rc = d->ops->rename(d, tmp, name);
    }
    if (rc == HY_OK) {
        rc = wal__sync_dir(d);
    }
    if (rc == HY_ENOSPC) {
        (void)d->ops->remove(d, tmp);
        return HY_ENOSPC;
    }
    return rc == HY_OK ? HY_OK : HY_EIO;
}

/* The second half of wal_snapshot_put, once the file is durable under its name: the group's
 * log now starts from it. The old snapshot's file is removed without a directory fsync when
 * file_written (the caller wrote the file elsewhere, to keep fsyncs off the group commit): a
 * crash that brings the name back leaves two snapshot files of the group, and recovery keeps
 * the newest and removes the others (docs/disk-format.md, rule 2). */
static int wal_snapshot_adopt(struct wal *w, size_t slot, const struct wal_snapshot *s,
                              int discard_log, int file_written)
{
    /* Records written without their fdatasync (wal_batch_write, durability replicated) are
     * synced before a snapshot lands: the collection below deletes segments on the strength of
     * the log's state in memory, which must then be the state on disk. */
    int synced = wal_sync(w);
    if (synced != HY_OK) {
        return synced;
    }
    struct wal_group *g = &w->groups[slot];
    uint64_t old = g->snap_index;
    g->snap_index = s->index;
    g->snap_term = s->term;
    if (old != 0 && old != s->index) {
        char old_name[WAL_NAME_MAX];
        wal__name_snapshot(old_name, g->id, old, 0);
        int rc;
        if (file_written) {
            rc = w->disk->ops->remove(w->disk, old_name);
            rc = rc == HY_ENOTFOUND ? HY_OK : rc;
        } else {
            rc = wal__remove_synced(w->disk, old_name);
        }
        if (rc != HY_OK) {
            return wal_fail(w, HY_EIO);
        }
    }
    if (discard_log || s->index > g->last_index) {
        /* In memory the log is void from now on, whatever the record's fate: recovery drops
         * a log that ends before the snapshot, and later appends supersede the rest. */
        wal__stage_truncate(w, slot, 1);
        wal_apply_op(w, &w->ops[w->n_ops - 1]); /* applied again, harmlessly, at the commit */
        int rc = wal_batch_commit(w);
        if (rc != HY_OK) {
            return rc;
        }
    }
    return wal__gc(w) == HY_OK ? HY_OK : wal_fail(w, HY_EIO);
}

int wal_snapshot_put(struct wal *w, uint32_t group, const struct wal_snapshot *s, int discard_log)
{
    if (w->failed) {
        return HY_EIO;
    }
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0 && w->batch.len == 0);
    HY_ASSERT(s->index >= 1 && s->term >= 1 && s->index >= w->groups[slot].snap_index);
    int rc = wal_snapshot_file_write(w->disk, group, s);
    if (rc == HY_ENOSPC) {
        return HY_ENOSPC;
    }
    if (rc != HY_OK) {
        return wal_fail(w, HY_EIO);
    }
    return wal_snapshot_adopt(w, (size_t)slot, s, discard_log, 0);
}

int wal_snapshot_install(struct wal *w, uint32_t group, const struct wal_snapshot *s,
                         int discard_log)
{
    if (w->failed) {
        return HY_EIO;
    }
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0 && w->batch.len == 0);
    HY_ASSERT(s->index >= 1 && s->term >= 1 && s->index >= w->groups[slot].snap_index);
    return wal_snapshot_adopt(w, (size_t)slot, s, discard_log, 1);
}

int wal_snapshot_install_received(struct wal *w, uint32_t group, const struct wal_snapshot *s)
{
    if (w->failed) {
        return HY_EIO;
    }
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0 && w->batch.len == 0);
    HY_ASSERT(s->index >= 1 && s->term >= 1 && s->index >= w->groups[slot].snap_index);
    char recv[WAL_NAME_MAX];
    char name[WAL_NAME_MAX];
    wal__name_snapshot_recv(recv, group, s->index);
    wal__name_snapshot(name, group, s->index, 0);
    struct disk *d = w->disk;
    int fd;
    int rc = d->ops->open(d, recv, 0, &fd);
    if (rc == HY_OK) {
        /* The data first, under the temporary name; the name only then, so that no crash
         * leaves `snapshot-G-INDEX` naming bytes that are not on the disk. */
        rc = wal__sync(d, fd);
        d->ops->close(d, fd);
        rc = rc == HY_OK ? d->ops->rename(d, recv, name) : rc;
        rc = rc == HY_OK ? wal__sync_dir(d) : rc;
    } else if (rc == HY_ENOTFOUND) {
        /* Written again after a full disk stopped the list: the rename happened already. */
        rc = d->ops->open(d, name, 0, &fd);
        if (rc == HY_OK) {
            d->ops->close(d, fd);
            rc = wal__sync_dir(d);
        }
    }
    if (rc != HY_OK) {
        return wal_fail(w, HY_EIO);
    }
    return wal_snapshot_adopt(w, (size_t)slot, s, 1, 1);
}

int wal_group_forget(struct wal *w, uint32_t group)
{
    if (w->failed) {
        return HY_EIO;
    }
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0 && w->batch.len == 0);
    struct wal_group *g = &w->groups[slot];
    if (g->snap_index == 0 && g->last_index == 0) {
        return HY_OK;
    }
    /* First the marker, durably: the group, restarted with nothing, must not take the
     * bootstrap configuration again (node.h node_recovered.forgotten). Then the log: a crash
     * before the snapshot file goes leaves the snapshot with no log, which recovers; the other
     * order would leave entries after a missing snapshot (a gap: recovery refuses). */
    char marker[WAL_NAME_MAX];
    snprintf(marker, sizeof(marker), "forgotten-%010" PRIu32, group);
    int fd;
    int rc = w->disk->ops->open(w->disk, marker, DISK_CREATE, &fd);
    if (rc == HY_OK) {
        rc = wal__sync(w->disk, fd);
        w->disk->ops->close(w->disk, fd);
    }
    rc = rc == HY_OK ? wal__sync_dir(w->disk) : rc;
    if (rc == HY_ENOSPC) {
        return HY_ENOSPC;
    }
    if (rc != HY_OK) {
        return wal_fail(w, HY_EIO);
    }
    wal__stage_truncate(w, (size_t)slot, 1);
    rc = wal_batch_commit(w);
    if (rc != HY_OK) {
        return rc;
    }
    uint64_t old = g->snap_index;
    g->snap_index = g->snap_term = 0;
    g->first_index = 0;
    g->n_runs = 0;
    g->last_index = g->last_term = 0;
    g->st_last_index = g->st_last_term = 0;
    if (old != 0) {
        char name[WAL_NAME_MAX];
        wal__name_snapshot(name, group, old, 0);
        if (wal__remove_synced(w->disk, name) != HY_OK) {
            return wal_fail(w, HY_EIO);
        }
    }
    return wal__gc(w) == HY_OK ? HY_OK : wal_fail(w, HY_EIO);
}

int wal_snapshot_wanted(const struct wal *w, uint32_t group)
{
    int slot = wal__slot(w, group);
    HY_ASSERT(slot >= 0);
    const struct wal_group *g = &w->groups[slot];
    if (w->cfg.snapshot_interval != 0 &&
        g->last_index - g->snap_index >= w->cfg.snapshot_interval) {
        return 1;
    }
    if (w->cfg.max_log_entries != 0 && wal_entries_on_disk(g) > w->cfg.max_log_entries) {
        return 1;
    }
    /* Too many segments, and this group's unsnapshotted entries keep the oldest one. */
    return w->cfg.segments_soft_max != 0 && w->n_closed > w->cfg.segments_soft_max &&
           w->closed[0].max_index[slot] > g->snap_index && g->last_index > g->snap_index;
}

size_t wal_pinning_groups(const struct wal *w, uint32_t *out, size_t cap)
{
    if (w->cfg.segments_soft_max == 0 || w->n_closed <= w->cfg.segments_soft_max) {
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < w->n_groups && n < cap; i++) {
        const struct wal_group *g = &w->groups[i];
        if (w->closed[0].max_index[i] > g->snap_index && g->last_index > g->snap_index) {
            out[n++] = g->id;
        }
    }
    return n;
}

/* ---- queries and teardown ------------------------------------------------------------------- */

uint64_t wal_last_index(const struct wal *w, uint32_t group)
{
    return wal_group_of(w, group)->last_index;
}

void wal_term_vote(const struct wal *w, uint32_t group, uint64_t *term, uint64_t *vote)
{
    const struct wal_group *g = wal_group_of(w, group);
    *term = g->term;
    *vote = g->vote;
}

uint64_t wal_last_term(const struct wal *w, uint32_t group)
{
    return wal_group_of(w, group)->last_term;
}

uint64_t wal_first_index(const struct wal *w, uint32_t group)
{
    return wal_group_of(w, group)->first_index;
}

uint64_t wal_snapshot_index(const struct wal *w, uint32_t group)
{
    return wal_group_of(w, group)->snap_index;
}

size_t wal_segment_count(const struct wal *w)
{
    return w->n_closed + (w->fd >= 0 ? 1 : 0);
}

void wal_close(struct wal *w)
{
    if (w == NULL) {
        return;
    }
    if (w->fd >= 0) {
        w->disk->ops->close(w->disk, w->fd);
    }
    for (size_t i = 0; i < w->n_closed; i++) {
        wal__seg_free(&w->closed[i]);
    }
    wal__seg_free(&w->open);
    for (size_t i = 0; i < w->n_groups; i++) {
        hy_free(w->groups[i].runs);
    }
    hy_free(w->groups);
    hy_free(w->closed);
    hy_free(w->ops);
    hy_buf_free(&w->batch);
    hy_free(w);
}
