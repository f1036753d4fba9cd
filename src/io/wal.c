/*
 * wal.c - writing the durable Raft log: group-committed appends, truncation,
 * term/vote, snapshots and compaction (wal.h; open and recovery are in
 * wal_recover.c).
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
}

/* ---- small helpers shared with wal_recover.c
 * --------------------------------------------- */

void wal__name_closed(char out[WAL_NAME_MAX], uint64_t first, uint64_t last)
{
    snprintf(out, WAL_NAME_MAX, "%020" PRIu64 "-%020" PRIu64, first, last);
}

void wal__name_open(char out[WAL_NAME_MAX], uint64_t counter)
{
    snprintf(out, WAL_NAME_MAX, "open-%" PRIu64, counter);
}

void wal__name_snapshot(char out[WAL_NAME_MAX], uint64_t index, int tmp)
{
    snprintf(out, WAL_NAME_MAX, "snapshot-%020" PRIu64 "%s", index, tmp ? ".tmp" : "");
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

void wal__push_closed(struct wal *w, const struct wal_seg *seg)
{
    if (w->n_closed == w->cap_closed) {
        w->cap_closed = w->cap_closed ? w->cap_closed * 2 : 16;
        w->closed = hy_xrealloc(w->closed, w->cap_closed * sizeof(*w->closed));
    }
    HY_ASSERT(w->n_closed == 0 || w->closed[w->n_closed - 1].last + 1 == seg->first);
    w->closed[w->n_closed++] = *seg;
}

uint64_t wal__first_index(const struct wal *w)
{
    if (w->n_closed > 0) {
        return w->closed[0].first;
    }
    return w->open_first;
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

/* ---- segments
 * ------------------------------------------------------------------------------
 */

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

/* Closes the open segment: cut to its used length, renamed FIRST-LAST, name
 * made durable. An open segment without records is removed instead. */
static int wal_segment_close(struct wal *w)
{
    struct disk *d = w->disk;
    int rc;
    if (w->open_first == 0) {
        d->ops->close(d, w->fd);
        w->fd = -1;
        return wal__remove_synced(d, w->open_name);
    }
    struct wal_seg seg = {.first = w->open_first, .last = w->last_index, .last_term = w->last_term};
    wal__name_closed(seg.name, seg.first, seg.last);
    rc = wal__cut_file(d, w->fd, w->open_used, 0);
    if (rc == HY_OK) {
        rc = d->ops->rename(d, w->open_name, seg.name);
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
    return HY_OK;
}

/* Makes room for a batch of `need` bytes: a new segment is created (and
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
    memcpy(w->open_name, name, WAL_NAME_MAX);
    w->open_size = size;
    w->open_used = WAL_SEG_HEADER_SIZE;
    w->open_first = 0;
    w->n_slots = 0;
    return HY_OK;
}

static void wal_slot_push(struct wal *w, uint64_t offset, uint64_t term)
{
    if (w->n_slots == w->cap_slots) {
        w->cap_slots = w->cap_slots ? w->cap_slots * 2 : 1024;
        w->slots = hy_xrealloc(w->slots, w->cap_slots * sizeof(*w->slots));
    }
    w->slots[w->n_slots++] = (struct wal_slot){.offset = offset, .term = term};
}

/* ---- appends
 * -------------------------------------------------------------------------------
 */

/* Encodes the batch into w->batch: records first_index.., each stamped with
 * batch_first. */
static void wal_encode_batch(struct wal *w, uint64_t first_index, const struct wal_entry *entries,
                             size_t n)
{
    hy_buf_reset(&w->batch);
    for (size_t i = 0; i < n; i++) {
        size_t size = wal_record_size(entries[i].len);
        uint8_t *p = hy_buf_reserve(&w->batch, size);
        wal_record_encode(p, first_index + i, first_index, &entries[i]);
        w->batch.len += size;
    }
}

int wal_append(struct wal *w, uint64_t first_index, const struct wal_entry *entries, size_t n)
{
    if (w->failed) {
        return HY_EIO;
    }
    HY_ASSERT(n >= 1 && first_index > w->snap_index && first_index <= w->last_index + 1);
    int rc;
    if (first_index <= w->last_index) {
        rc = wal_truncate(w, first_index);
        if (rc != HY_OK) {
            return rc;
        }
    }
    wal_encode_batch(w, first_index, entries, n);
    if (w->fd < 0 || w->open_used + w->batch.len > w->open_size) {
        rc = wal_segment_roll(w, w->batch.len);
        if (rc != HY_OK) {
            return wal_fail(w, rc);
        }
    }
    rc = w->disk->ops->write(w->disk, w->fd, w->open_used, w->batch.data, w->batch.len);
    if (rc != HY_OK) {
        /* The bytes past open_used are not part of the log: the next append
         * overwrites them, and recovery treats them as a torn tail. */
        return wal_fail(w, rc == HY_ENOSPC ? HY_ENOSPC : HY_EIO);
    }
    rc = wal__sync(w->disk, w->fd);
    if (rc != HY_OK) {
        return wal_fail(w, rc);
    }
    uint64_t off = w->open_used;
    for (size_t i = 0; i < n; i++) {
        wal_slot_push(w, off, entries[i].term);
        off += wal_record_size(entries[i].len);
    }
    HY_ASSERT(off == w->open_used + w->batch.len);
    if (w->open_first == 0) {
        w->open_first = first_index;
    }
    w->open_used = off;
    w->last_index = first_index + n - 1;
    w->last_term = entries[n - 1].term;
    return HY_OK;
}

/* ---- truncation
 * ----------------------------------------------------------------------------
 */

/* Cuts the open segment before `index` and zero-fills it back, so no stale
 * record can follow the new end (a later append into the zeros must not be
 * followed by old, valid records). */
static int wal_truncate_open(struct wal *w, uint64_t index)
{
    size_t keep = index <= w->open_first ? 0 : (size_t)(index - w->open_first);
    uint64_t cut = keep < w->n_slots ? w->slots[keep].offset : w->open_used;
    int rc = wal__cut_file(w->disk, w->fd, cut, w->open_size);
    if (rc != HY_OK) {
        return rc;
    }
    w->n_slots = keep;
    w->open_used = cut;
    if (keep == 0) {
        w->open_first = 0;
    }
    return HY_OK;
}

/* Turns the last closed segment, which holds `index` (first < index <= last),
 * back into the open segment cut before `index`. Renaming first keeps every
 * crash state valid: open-N holding FIRST..LAST is the old log, and the cut
 * that follows leaves a prefix of it. */
static int wal_reopen_closed(struct wal *w, uint64_t index)
{
    struct disk *d = w->disk;
    struct wal_seg seg = w->closed[w->n_closed - 1];
    char name[WAL_NAME_MAX];
    wal__name_open(name, w->open_counter + 1);
    int rc = d->ops->rename(d, seg.name, name);
    rc = rc == HY_OK ? wal__sync_dir(d) : rc;
    if (rc != HY_OK) {
        return rc;
    }
    w->open_counter++;
    w->n_closed--;
    uint8_t *buf;
    size_t len;
    rc = wal__read_file(d, name, &buf, &len);
    if (rc != HY_OK) {
        return rc;
    }
    struct wal_seg_parse p;
    wal_segment_parse(buf, len, seg.first, &p);
    /* The segment was checked when it was opened or written: finding it changed
     * is an invariant violation, not an operating error. */
    HY_ASSERT(p.outcome == WAL_SEG_CLEAN && p.n_records == seg.last - seg.first + 1);
    w->n_slots = 0;
    for (uint64_t i = 0; i < index - seg.first; i++) {
        wal_slot_push(w, (uint64_t)(p.records[i].data - buf) - WAL_REC_HEADER_SIZE,
                      p.records[i].term);
    }
    uint64_t cut = (uint64_t)(p.records[index - seg.first].data - buf) - WAL_REC_HEADER_SIZE;
    wal_seg_parse_free(&p);
    hy_free(buf);
    rc = d->ops->open(d, name, 0, &w->fd);
    if (rc != HY_OK) {
        return rc;
    }
    memcpy(w->open_name, name, WAL_NAME_MAX);
    w->open_first = seg.first;
    w->open_used = cut;
    w->open_size = HY_MAX(cut, w->cfg.segment_size_bytes);
    return wal__cut_file(d, w->fd, cut, w->open_size);
}

/* Removes the open segment (all its records are being deleted). */
static int wal_drop_open(struct wal *w)
{
    w->disk->ops->close(w->disk, w->fd);
    w->fd = -1;
    w->open_first = 0;
    w->n_slots = 0;
    return wal__remove_synced(w->disk, w->open_name);
}

/* Truncation runs newest first, each step durable before the next, so a crash
 * leaves a prefix of the old log: the open segment, then closed segments from
 * the last one back. */
int wal_truncate(struct wal *w, uint64_t index)
{
    if (w->failed) {
        return HY_EIO;
    }
    HY_ASSERT(index > w->snap_index && index >= 1);
    if (index > w->last_index) {
        return HY_OK;
    }
    int rc = HY_OK;
    if (w->fd >= 0 && w->open_first != 0 && index >= w->open_first) {
        rc = wal_truncate_open(w, index);
    } else if (w->fd >= 0) {
        rc = wal_drop_open(w);
    }
    while (rc == HY_OK && w->n_closed > 0 && w->closed[w->n_closed - 1].first >= index) {
        rc = wal__remove_synced(w->disk, w->closed[w->n_closed - 1].name);
        w->n_closed -= rc == HY_OK ? 1 : 0;
    }
    if (rc == HY_OK && w->n_closed > 0 && w->closed[w->n_closed - 1].last >= index) {
        rc = wal_reopen_closed(w, index);
    }
    if (rc != HY_OK) {
        return wal_fail(w, HY_EIO);
    }
    w->last_index = index - 1;
    if (w->open_first != 0) {
        w->last_term = w->slots[w->n_slots - 1].term;
    } else if (w->n_closed > 0) {
        w->last_term = w->closed[w->n_closed - 1].last_term;
    } else {
        w->last_term = w->snap_term;
    }
    return HY_OK;
}

/* ---- term and vote
 * ------------------------------------------------------------------------- */

/* Odd sequences live in metadata1, even ones in metadata2: each write goes to
 * the file that does not hold the current state, so a torn write can only lose
 * the new value. */
int wal_set_term_vote(struct wal *w, uint64_t term, uint64_t vote)
{
    if (w->failed) {
        return HY_EIO;
    }
    struct disk *d = w->disk;
    struct wal_meta m = {.sequence = w->meta.sequence + 1, .term = term, .vote = vote};
    int slot = w->meta_slot == 0 ? 1 : 0;
    const char *name = slot == 0 ? "metadata1" : "metadata2";
    uint8_t buf[WAL_META_SIZE];
    wal_meta_encode(&m, buf);
    int fd;
    int rc = d->ops->open(d, name, DISK_CREATE, &fd);
    if (rc != HY_OK) {
        return wal_fail(w, rc == HY_ENOSPC ? HY_ENOSPC : HY_EIO);
    }
    uint64_t size = 0;
    rc = d->ops->size(d, fd, &size);
    /* A file of another size (damaged, or cut by a crash) would stay invalid after an
     * overwrite of its first 48 bytes. */
    if (rc == HY_OK && size != 0 && size != WAL_META_SIZE) {
        rc = d->ops->truncate(d, fd, 0);
    }
    if (rc == HY_OK) {
        rc = d->ops->write(d, fd, 0, buf, sizeof(buf));
    }
    if (rc == HY_OK) {
        rc = wal__sync(d, fd);
    }
    /* A file new to the directory is only durable once the directory is. */
    if (rc == HY_OK && size == 0) {
        rc = wal__sync_dir(d);
    }
    d->ops->close(d, fd);
    if (rc != HY_OK) {
        return wal_fail(w, rc == HY_ENOSPC ? HY_ENOSPC : HY_EIO);
    }
    w->meta = m;
    w->meta_slot = slot;
    return HY_OK;
}

/* ---- snapshots
 * ------------------------------------------------------------------------------
 */

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

/* Deletes every segment, newest first (a snapshot from the leader replaces the
 * log). */
static int wal_discard_log(struct wal *w)
{
    int rc = HY_OK;
    if (w->fd >= 0) {
        w->disk->ops->close(w->disk, w->fd);
        w->fd = -1;
        rc = wal__remove_synced(w->disk, w->open_name);
        w->open_first = 0;
        w->n_slots = 0;
    }
    while (rc == HY_OK && w->n_closed > 0) {
        rc = wal__remove_synced(w->disk, w->closed[w->n_closed - 1].name);
        w->n_closed -= rc == HY_OK ? 1 : 0;
    }
    return rc;
}

static uint64_t wal_entries_on_disk(const struct wal *w)
{
    uint64_t first = wal__first_index(w);
    return first == 0 ? 0 : w->last_index - first + 1;
}

/* Deletes closed segments the snapshot covers, oldest first: those beyond the
 * retained tail, then more while the log is over max_log_entries. Never an
 * entry above the snapshot. */
static int wal_compact(struct wal *w)
{
    uint64_t keep_from =
        w->snap_index > w->cfg.retention_logs ? w->snap_index - w->cfg.retention_logs + 1 : 1;
    size_t drop = 0;
    uint64_t entries = wal_entries_on_disk(w);
    while (drop < w->n_closed && w->closed[drop].last <= w->snap_index) {
        const struct wal_seg *seg = &w->closed[drop];
        int over = w->cfg.max_log_entries != 0 && entries > w->cfg.max_log_entries;
        if (seg->last >= keep_from && !over) {
            break;
        }
        int rc = wal__remove_synced(w->disk, seg->name);
        if (rc != HY_OK) {
            memmove(w->closed, w->closed + drop, (w->n_closed - drop) * sizeof(*w->closed));
            w->n_closed -= drop;
            return rc;
        }
        entries -= seg->last - seg->first + 1;
        drop++;
    }
    if (drop > 0) {
        memmove(w->closed, w->closed + drop, (w->n_closed - drop) * sizeof(*w->closed));
        w->n_closed -= drop;
    }
    return HY_OK;
}

static int wal_remove_old_snapshot(struct wal *w, uint64_t old_index)
{
    if (old_index == 0 || old_index == w->snap_index) {
        return HY_OK;
    }
    char name[WAL_NAME_MAX];
    wal__name_snapshot(name, old_index, 0);
    return wal__remove_synced(w->disk, name);
}

int wal_snapshot_put(struct wal *w, const struct wal_snapshot *s, int discard_log)
{
    if (w->failed) {
        return HY_EIO;
    }
    HY_ASSERT(s->index >= 1 && s->term >= 1 && s->index >= w->snap_index);
    char tmp[WAL_NAME_MAX];
    char name[WAL_NAME_MAX];
    wal__name_snapshot(tmp, s->index, 1);
    wal__name_snapshot(name, s->index, 0);
    int rc = wal_snapshot_write(w->disk, s, tmp);
    if (rc == HY_OK) {
        rc = w->disk->ops->rename(w->disk, tmp, name);
    }
    if (rc == HY_OK) {
        rc = wal__sync_dir(w->disk);
    }
    if (rc == HY_ENOSPC) {
        (void)w->disk->ops->remove(w->disk, tmp);
        return HY_ENOSPC;
    }
    if (rc != HY_OK) {
        return wal_fail(w, HY_EIO);
    }
    uint64_t old = w->snap_index;
    w->snap_index = s->index;
    w->snap_term = s->term;
    rc = wal_remove_old_snapshot(w, old);
    if (rc == HY_OK && (discard_log || s->index > w->last_index)) {
        rc = wal_discard_log(w);
        w->last_index = s->index;
        w->last_term = s->term;
    } else if (rc == HY_OK) {
        rc = wal_compact(w);
    }
    return rc == HY_OK ? HY_OK : wal_fail(w, HY_EIO);
}

int wal_snapshot_wanted(const struct wal *w)
{
    if (w->cfg.snapshot_interval != 0 &&
        w->last_index - w->snap_index >= w->cfg.snapshot_interval) {
        return 1;
    }
    return w->cfg.max_log_entries != 0 && wal_entries_on_disk(w) > w->cfg.max_log_entries;
}

/* ---- queries and teardown
 * ------------------------------------------------------------------- */

uint64_t wal_last_index(const struct wal *w)
{
    return w->last_index;
}

uint64_t wal_last_term(const struct wal *w)
{
    return w->last_term;
}

uint64_t wal_first_index(const struct wal *w)
{
    return wal__first_index(w);
}

uint64_t wal_snapshot_index(const struct wal *w)
{
    return w->snap_index;
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
    hy_free(w->closed);
    hy_free(w->slots);
    hy_buf_free(&w->batch);
    hy_free(w);
}
