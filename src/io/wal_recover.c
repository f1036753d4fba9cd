/*
 * wal_recover.c - opening the shared log: the recovery rules of
 * docs/disk-format.md, in their order, replaying every group's records from the
 * one stream of segments, and wal_repair (`halyard --repair DIR`).
 *
 * Recovery only ever deletes what a crash can explain (a temp file, an empty
 * new segment, the torn tail of the last unsynced write, a log the snapshot
 * superseded); everything else that is wrong stops the open with a message
 * naming the file, the byte offset and the problem.
 */
#include "io/wal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/wal_int.h"

#define REPAIR_HINT                                                        \
    "run 'halyard --repair %s' to cut the log after the last good record " \
    "(later entries are "                                                  \
    "lost on this node and restored from the other replicas)"

/* A file of the directory, by kind: closed and open segments (a = counter), snapshots
 * (a = group, b = index). */
struct rec_file {
    char name[WAL_NAME_MAX];
    uint64_t a;
    uint64_t b;
};

struct rec_list {
    struct rec_file *v;
    size_t n;
};

struct rec_dir {
    struct rec_list closed;
    struct rec_list open;
    struct rec_list snaps;
    struct rec_list forgot; /* wal_group_forget's markers (a = group) */
};

/* One group as the replay rebuilds it. Entries point into the segment buffers. */
struct rec_group {
    struct wal_entry *entries;
    size_t n;
    size_t cap;
    uint64_t first; /* index of entries[0] */
    uint64_t term;
    uint64_t vote;
    int has_tv;
    uint8_t *snap_buf; /* the snapshot file, owned */
    struct wal_snapshot snap;
    int drop_log;  /* rule 6: the log is older than the snapshot */
    int forgotten; /* wal_group_forget's marker */
};

struct rec_ctx {
    struct wal *w;
    struct rec_group *g; /* per slot */
    uint8_t **bufs;      /* segment files read */
    size_t n_bufs;
    const char *file; /* the segment being replayed, for messages */
    char *err;
    size_t err_len;
};

/* ---- names ---------------------------------------------------------------------------------- */

static int rec_digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - digit) / 10) {
            return 0;
        }
        v = v * 10 + digit;
    }
    *out = v;
    return n > 0;
}

static void rec_list_push(struct rec_list *l, const char *name, uint64_t a, uint64_t b)
{
    l->v = hy_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    struct rec_file *f = &l->v[l->n++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->a = a;
    f->b = b;
}

static int rec_file_cmp(const void *x, const void *y)
{
    const struct rec_file *a = x;
    const struct rec_file *b = y;
    if (a->a != b->a) {
        return a->a < b->a ? -1 : 1;
    }
    return a->b < b->b ? -1 : a->b > b->b;
}

/* Sorts one name into its list; returns 1 for a temp file that recovery rule 1
 * deletes. */
static int rec_classify(struct rec_dir *dir, const char *name)
{
    size_t len = strlen(name);
    uint64_t a;
    uint64_t b;
    if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
        return 1;
    }
    if (len == 28 && strncmp(name, "segment-", 8) == 0 && rec_digits(name + 8, 20, &a)) {
        rec_list_push(&dir->closed, name, a, 0);
    } else if (len > 5 && strncmp(name, "open-", 5) == 0 && rec_digits(name + 5, len - 5, &a)) {
        rec_list_push(&dir->open, name, a, 0);
    } else if (len == 40 && strncmp(name, "snapshot-", 9) == 0 && name[19] == '-' &&
               rec_digits(name + 9, 10, &a) && a <= UINT32_MAX && rec_digits(name + 20, 20, &b)) {
        rec_list_push(&dir->snaps, name, a, b);
    } else if (len == 20 && strncmp(name, "forgotten-", 10) == 0 && rec_digits(name + 10, 10, &a)) {
        rec_list_push(&dir->forgot, name, a, 0);
    }
    return 0;
}

static int rec_scan_dir(struct disk *d, struct rec_dir *dir, const struct hy_log *log)
{
    char **names;
    size_t count;
    int rc = d->ops->list(d, &names, &count);
    if (rc != HY_OK) {
        return HY_EIO;
    }
    int removed = 0;
    for (size_t i = 0; i < count && rc == HY_OK; i++) {
        if (rec_classify(dir, names[i])) {
            /* A snapshot being written or received when the node stopped: said, since a
             * received one means that transfer starts again from its leader. */
            hy_log(log, HY_LOG_INFO, "recovery: removing %s/%s (left by a stop mid-write)", d->path,
                   names[i]);
            rc = d->ops->remove(d, names[i]);
            removed = 1;
        }
    }
    disk_names_free(names, count);
    if (rc == HY_OK && removed) {
        rc = d->ops->sync_dir(d);
    }
    struct rec_list *lists[] = {&dir->closed, &dir->open, &dir->snaps, &dir->forgot};
    for (size_t i = 0; i < HY_ARRAY_LEN(lists); i++) {
        if (lists[i]->n > 1) {
            qsort(lists[i]->v, lists[i]->n, sizeof(*lists[i]->v), rec_file_cmp);
        }
    }
    return rc == HY_OK ? HY_OK : HY_EIO;
}

static void rec_dir_free(struct rec_dir *dir)
{
    hy_free(dir->closed.v);
    hy_free(dir->open.v);
    hy_free(dir->snaps.v);
    hy_free(dir->forgot.v);
}

/* ---- errors --------------------------------------------------------------------------------- */

/* Refuses to open: the message names the file, the offset and the problem (rule
 * "refuse"). */
static int rec_refuse(struct rec_ctx *c, const char *file, uint64_t offset, const char *why,
                      int repairable)
{
    const char *path = c->w->disk->path;
    char hint[512];
    if (repairable) {
        snprintf(hint, sizeof(hint), REPAIR_HINT, path);
    } else {
        snprintf(hint, sizeof(hint),
                 "'halyard --repair' does not change this: restore the directory from a "
                 "backup, or empty %s and let the node catch up from the other replicas",
                 path);
    }
    char msg[1024];
    snprintf(msg, sizeof(msg), "wal: %s/%s: offset %" PRIu64 ": %s; %s", path, file, offset, why,
             hint);
    if (c->err_len > 0) {
        snprintf(c->err, c->err_len, "%s", msg);
    }
    hy_log(c->w->cfg.log, HY_LOG_ERROR, "%s", msg);
    return HY_ECORRUPT;
}

static int rec_io_error(struct rec_ctx *c, const char *file, int rc)
{
    if (c->err_len > 0) {
        snprintf(c->err, c->err_len, "wal: %s/%s: %s", c->w->disk->path, file, hy_strerror(rc));
    }
    return rc == HY_ENOSPC ? HY_ENOSPC : HY_EIO;
}

/* ---- snapshots (rule 2) ------------------------------------------------------------------- */

static int rec_load_snapshots(struct rec_ctx *c, const struct rec_dir *dir)
{
    struct wal *w = c->w;
    int removed = 0;
    /* Sorted by group, then index: the last file of each group is its snapshot. */
    for (size_t i = 0; i < dir->snaps.n; i++) {
        const struct rec_file *f = &dir->snaps.v[i];
        int slot = wal__slot(w, (uint32_t)f->a);
        if (slot < 0) {
            char why[128];
            snprintf(why, sizeof(why),
                     "snapshot of group %" PRIu64 ", which this node does not have", f->a);
            return rec_refuse(c, f->name, 0, why, 0);
        }
        int newest = i + 1 == dir->snaps.n || dir->snaps.v[i + 1].a != f->a;
        if (!newest) {
            int rc = w->disk->ops->remove(w->disk, f->name);
            if (rc != HY_OK && rc != HY_ENOTFOUND) {
                return rec_io_error(c, f->name, rc);
            }
            removed = 1;
            continue;
        }
        struct rec_group *g = &c->g[slot];
        size_t len;
        int rc = wal__read_file(w->disk, f->name, &g->snap_buf, &len);
        if (rc != HY_OK) {
            return rec_io_error(c, f->name, rc);
        }
        const char *why = NULL;
        if (wal_snapshot_decode(g->snap_buf, len, &g->snap, &why) != HY_OK) {
            return rec_refuse(c, f->name, 0, why, 0);
        }
        if (g->snap.index != f->b) {
            return rec_refuse(c, f->name, 16, "snapshot index differs from its file name", 0);
        }
    }
    int rc = removed ? wal__sync_dir(w->disk) : HY_OK;
    return rc == HY_OK ? HY_OK : rec_io_error(c, ".", rc);
}

/* ---- replay of the records (rules 3-5) ------------------------------------------------------ */

static void rec_keep_buf(struct rec_ctx *c, uint8_t *buf)
{
    c->bufs = hy_xrealloc(c->bufs, (c->n_bufs + 1) * sizeof(*c->bufs));
    c->bufs[c->n_bufs++] = buf;
}

/* Entries >= index of the slot are void in every segment read so far. */
static void rec_void_from(struct wal *w, size_t slot, uint64_t index)
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

/* Applies one record to its group; seg is the segment it is in. */
static int rec_apply(struct rec_ctx *c, struct wal_seg *seg, const uint8_t *buf,
                     const struct wal_record *r)
{
    struct wal *w = c->w;
    uint64_t off = (uint64_t)(r->data - buf) - WAL_REC_HEADER_SIZE;
    char why[192];
    int slot = wal__slot(w, r->group);
    if (slot < 0) {
        snprintf(why, sizeof(why), "record of group %" PRIu32 ", which this node does not have",
                 r->group);
        return rec_refuse(c, c->file, off, why, 0);
    }
    struct rec_group *g = &c->g[slot];
    if (r->kind == WAL_KIND_TERM_VOTE) {
        if (g->has_tv && r->index < g->term) {
            snprintf(why, sizeof(why), "group %" PRIu32 "'s term goes down", r->group);
            return rec_refuse(c, c->file, off, why, 1);
        }
        g->term = r->index;
        g->vote = r->term;
        g->has_tv = 1;
        return HY_OK;
    }
    if (r->kind == WAL_KIND_TRUNCATE) {
        rec_void_from(w, (size_t)slot, r->index);
        if (g->n > 0 && r->index < g->first + g->n) {
            g->n = r->index <= g->first ? 0 : (size_t)(r->index - g->first);
        }
        return HY_OK;
    }
    /* An entry. */
    /* An index at or below the last one replaces the suffix from there (Raft's conflicting
     * suffix, possibly within one write); one above the next leaves a gap. */
    if (g->n > 0 && r->index > g->first + g->n) {
        snprintf(why, sizeof(why),
                 "group %" PRIu32 ": entry %" PRIu64 " leaves a gap after entry %" PRIu64, r->group,
                 r->index, g->first + g->n - 1);
        return rec_refuse(c, c->file, off, why, 1);
    }
    if (g->n > 0 && r->index < g->first + g->n) {
        rec_void_from(w, (size_t)slot, r->index);
        g->n = r->index <= g->first ? 0 : (size_t)(r->index - g->first);
    }
    if (g->n > 0 && g->entries[g->n - 1].term > r->term) {
        snprintf(why, sizeof(why),
                 "group %" PRIu32 ": entry %" PRIu64 "'s term is lower than the previous entry's",
                 r->group, r->index);
        return rec_refuse(c, c->file, off, why, 1);
    }
    if (g->n == 0) {
        g->first = r->index;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->entries = hy_xrealloc(g->entries, g->cap * sizeof(*g->entries));
    }
    g->entries[g->n++] = (struct wal_entry){r->term, r->type, r->len, r->data};
    wal__seg_note(seg, (size_t)slot, r->index, r->index);
    return HY_OK;
}

static int rec_apply_all(struct rec_ctx *c, struct wal_seg *seg, const uint8_t *buf,
                         const struct wal_seg_parse *p)
{
    for (size_t i = 0; i < p->n_records; i++) {
        int rc = rec_apply(c, seg, buf, &p->records[i]);
        if (rc != HY_OK) {
            return rc;
        }
    }
    return HY_OK;
}

/* Rule 3: closed segments, in order; each must be whole and continue the stream. */
static int rec_load_closed(struct rec_ctx *c, const struct rec_dir *dir)
{
    struct wal *w = c->w;
    for (size_t i = 0; i < dir->closed.n; i++) {
        const struct rec_file *f = &dir->closed.v[i];
        uint8_t *buf;
        size_t len;
        int rc = wal__read_file(w->disk, f->name, &buf, &len);
        if (rc != HY_OK) {
            return rec_io_error(c, f->name, rc);
        }
        rec_keep_buf(c, buf);
        struct wal_seg_parse p;
        wal_segment_parse(buf, len, w->seq != 0 ? w->seq + 1 : 0, &p);
        if (p.outcome != WAL_SEG_CLEAN) {
            rc = rec_refuse(c, f->name, p.bad_offset,
                            p.why != NULL ? p.why : "closed segment is not whole", 1);
        } else if (p.n_records == 0) {
            rc = rec_refuse(c, f->name, WAL_SEG_HEADER_SIZE, "closed segment holds no record", 1);
        } else if (p.end_offset != len) {
            rc = rec_refuse(c, f->name, p.end_offset,
                            "bytes after the last record of a closed segment", 1);
        }
        struct wal_seg seg = {.counter = f->a};
        if (rc == HY_OK) {
            snprintf(seg.name, sizeof(seg.name), "%s", f->name);
            wal__seg_alloc(w, &seg);
            wal__push_closed(w, &seg);
            c->file = f->name;
            rc = rec_apply_all(c, &w->closed[w->n_closed - 1], buf, &p);
            w->seq = p.records[p.n_records - 1].seq;
            w->closed[w->n_closed - 1].last_seq = w->seq;
        }
        w->open_counter = HY_MAX(w->open_counter, f->a);
        wal_seg_parse_free(&p);
        if (rc != HY_OK) {
            return rc;
        }
    }
    return HY_OK;
}

/* Rule 4: one open-N file: adopt it (records), or say it is empty (deleted by the caller). */
static int rec_open_one(struct rec_ctx *c, const struct rec_file *f, int *empty_out)
{
    struct wal *w = c->w;
    uint8_t *buf;
    size_t len;
    int rc = wal__read_file(w->disk, f->name, &buf, &len);
    if (rc != HY_OK) {
        return rec_io_error(c, f->name, rc);
    }
    rec_keep_buf(c, buf);
    struct wal_seg_parse p;
    wal_segment_parse(buf, len, w->seq != 0 ? w->seq + 1 : 0, &p);
    *empty_out = p.outcome == WAL_SEG_EMPTY || p.n_records == 0;
    if (p.outcome == WAL_SEG_CORRUPT) {
        rc = rec_refuse(c, f->name, p.bad_offset, p.why, 1);
    } else if (!*empty_out && w->fd >= 0) {
        rc = rec_refuse(c, f->name, 0, "a second open segment holds records", 1);
    } else if (!*empty_out && w->n_closed > 0 && f->a < w->closed[w->n_closed - 1].counter) {
        rc = rec_refuse(c, f->name, 0, "open segment older than a closed one", 1);
    }
    int fd = -1;
    if (rc == HY_OK && !*empty_out) {
        rc = w->disk->ops->open(w->disk, f->name, 0, &fd);
        rc = rc == HY_OK ? HY_OK : rec_io_error(c, f->name, rc);
    }
    if (rc == HY_OK && !*empty_out && p.outcome == WAL_SEG_TORN) {
        hy_log(w->cfg.log, HY_LOG_WARN,
               "wal: %s/%s: offset %" PRIu64 ": %s: torn tail of the last write, never "
               "acknowledged; cutting %" PRIu64 " bytes",
               w->disk->path, f->name, p.bad_offset, p.why, (uint64_t)len - p.end_offset);
        rc = wal__cut_file(w->disk, fd, p.end_offset, len);
        rc = rc == HY_OK ? HY_OK : rec_io_error(c, f->name, rc);
    }
    if (rc == HY_OK && !*empty_out) {
        w->fd = fd;
        memset(&w->open, 0, sizeof(w->open));
        snprintf(w->open.name, sizeof(w->open.name), "%s", f->name);
        w->open.counter = f->a;
        wal__seg_alloc(w, &w->open);
        w->open_size = len;
        w->open_used = p.end_offset;
        c->file = f->name;
        rc = rec_apply_all(c, &w->open, buf, &p);
        w->seq = p.records[p.n_records - 1].seq;
        w->open.last_seq = w->seq;
    } else if (fd >= 0) {
        w->disk->ops->close(w->disk, fd);
    }
    wal_seg_parse_free(&p);
    return rc;
}

static int rec_load_open(struct rec_ctx *c, const struct rec_dir *dir)
{
    struct wal *w = c->w;
    int removed = 0;
    for (size_t i = 0; i < dir->open.n; i++) {
        const struct rec_file *f = &dir->open.v[i];
        w->open_counter = HY_MAX(w->open_counter, f->a);
        int empty = 0;
        int rc = rec_open_one(c, f, &empty);
        if (rc != HY_OK) {
            return rc;
        }
        if (empty) {
            /* A segment a crash left without records (interrupted creation or roll). */
            rc = w->disk->ops->remove(w->disk, f->name);
            if (rc != HY_OK) {
                return rec_io_error(c, f->name, rc);
            }
            removed = 1;
        }
    }
    int rc = removed ? wal__sync_dir(w->disk) : HY_OK;
    return rc == HY_OK ? HY_OK : rec_io_error(c, ".", rc);
}

/* ---- per group: rules 6 and 7 --------------------------------------------------------------- */

static int rec_check_group(struct rec_ctx *c, size_t slot, int *stage_tv)
{
    struct wal *w = c->w;
    struct rec_group *g = &c->g[slot];
    uint32_t id = w->groups[slot].id;
    uint64_t snap = g->snap_buf != NULL ? g->snap.index : 0;
    char why[256];
    *stage_tv = 0;
    if (g->n > 0) {
        uint64_t last = g->first + g->n - 1;
        if (g->first > snap + 1) {
            snprintf(why, sizeof(why),
                     "group %" PRIu32 "'s log starts at %" PRIu64 ", after snapshot %" PRIu64
                     " + 1 (a gap)",
                     id, g->first, snap);
            return rec_refuse(c, ".", 0, why, 0);
        }
        if (snap > 0 && (last < snap ||
                         (g->first <= snap && g->entries[snap - g->first].term != g->snap.term))) {
            hy_log(w->cfg.log, HY_LOG_WARN,
                   "wal: %s: group %" PRIu32 ": log %" PRIu64 "..%" PRIu64
                   " is older than snapshot %" PRIu64
                   " (a crash during a snapshot install): removing it",
                   w->disk->path, id, g->first, last, snap);
            g->n = 0;
            g->drop_log = 1;
        }
    }
    if (!g->has_tv && (g->n > 0 || snap > 0)) {
        snprintf(why, sizeof(why),
                 "group %" PRIu32 " has entries or a snapshot but no term/vote record (not "
                 "repairable: the vote is unknowable)",
                 id);
        return rec_refuse(c, ".", 0, why, 0);
    }
    if (!g->has_tv && w->cfg.must_exist) {
        snprintf(why, sizeof(why),
                 "no term/vote record of group %" PRIu32
                 " although this node was formed (its cluster file exists): the log was lost",
                 id);
        return rec_refuse(c, ".", 0, why, 0);
    }
    *stage_tv = !g->has_tv;
    return HY_OK;
}

/* Fills the wal's view of the group and the caller's copy of what was recovered. */
static void rec_fill_group(struct rec_ctx *c, size_t slot, struct wal_recovered *out)
{
    struct wal *w = c->w;
    struct rec_group *g = &c->g[slot];
    struct wal_group *wg = &w->groups[slot];
    uint64_t snap = g->snap_buf != NULL ? g->snap.index : 0;
    uint64_t snap_term = g->snap_buf != NULL ? g->snap.term : 0;
    wg->term = g->term;
    wg->vote = g->vote;
    wg->snap_index = snap;
    wg->snap_term = snap_term;
    wg->first_index = g->n > 0 ? g->first : 0;
    wg->last_index = g->n > 0 ? g->first + g->n - 1 : snap;
    wg->last_term = g->n > 0 ? g->entries[g->n - 1].term : snap_term;
    for (size_t i = 0; i < g->n; i++) {
        wal__runs_push(wg, g->first + i, g->entries[i].term);
    }
    wg->st_last_index = wg->last_index;
    wg->st_last_term = wg->last_term;
    /* A copy the caller owns: the entries and their bytes, and the snapshot file. */
    memset(out, 0, sizeof(*out));
    out->group = wg->id;
    out->forgotten = g->forgotten;
    out->term = g->term;
    out->vote = g->vote;
    out->created = !g->has_tv;
    size_t bytes = g->n * sizeof(struct wal_entry);
    for (size_t i = 0; i < g->n; i++) {
        bytes += g->entries[i].len;
    }
    uint8_t *mem = hy_xmalloc(bytes > 0 ? bytes : 1);
    struct wal_entry *ents = (struct wal_entry *)(void *)mem;
    uint8_t *p = mem + g->n * sizeof(struct wal_entry);
    for (size_t i = 0; i < g->n; i++) {
        ents[i] = g->entries[i];
        ents[i].data = p;
        if (g->entries[i].len > 0) {
            memcpy(p, g->entries[i].data, g->entries[i].len);
        }
        p += g->entries[i].len;
    }
    out->entries = g->n > 0 ? ents : NULL;
    out->n_entries = g->n;
    out->first_index = g->n > 0 ? g->first : 0;
    void **priv = hy_xcalloc(2, sizeof(void *));
    priv[0] = mem;
    priv[1] = g->snap_buf;
    out->priv = priv;
    if (g->snap_buf != NULL) {
        out->snapshot = g->snap;
        g->snap_buf = NULL;
    }
}

void wal_recovered_free(struct wal_recovered *rec)
{
    if (rec->priv != NULL) {
        void **priv = rec->priv;
        hy_free(priv[0]);
        hy_free(priv[1]);
        hy_free(priv);
    }
    memset(rec, 0, sizeof(*rec));
}

static int rec_run(struct rec_ctx *c, struct wal_recovered *recs)
{
    struct wal *w = c->w;
    struct rec_dir dir;
    memset(&dir, 0, sizeof(dir));
    /* The directory may be new (the server made it a moment ago): everything written in it
     * is only durable once its own name is. */
    int rc = w->disk->ops->sync_parent(w->disk);
    if (rc == HY_OK) {
        rc = rec_scan_dir(w->disk, &dir, w->cfg.log);
    }
    if (rc != HY_OK) {
        rc = rec_io_error(c, ".", rc);
    }
    for (size_t i = 0; rc == HY_OK && i < dir.forgot.n; i++) {
        int slot = wal__slot(w, (uint32_t)dir.forgot.v[i].a);
        if (slot >= 0) {
            c->g[slot].forgotten = 1; /* a group the node no longer has: the marker is moot */
        }
    }
    if (rc == HY_OK) {
        rc = rec_load_snapshots(c, &dir);
    }
    if (rc == HY_OK) {
        rc = rec_load_closed(c, &dir);
    }
    if (rc == HY_OK) {
        rc = rec_load_open(c, &dir);
    }
    rec_dir_free(&dir);
    int *stage_tv = hy_xcalloc(w->n_groups ? w->n_groups : 1, sizeof(int));
    for (size_t i = 0; i < w->n_groups && rc == HY_OK; i++) {
        rc = rec_check_group(c, i, &stage_tv[i]);
    }
    if (rc == HY_OK) {
        for (size_t i = 0; i < w->n_groups; i++) {
            rec_fill_group(c, i, &recs[i]);
        }
        /* New groups get their term/vote record, and logs older than their snapshot a
         * truncation, all in one durable write, before anything relies on them. */
        for (size_t i = 0; i < w->n_groups; i++) {
            if (stage_tv[i]) {
                wal_batch_term_vote(w, w->groups[i].id, 0, 0);
            }
            if (c->g[i].drop_log) {
                wal__stage_truncate(w, i, 1);
            }
        }
        rc = wal_batch_commit(w);
        if (rc != HY_OK) {
            rc = rec_io_error(c, "open segment", rc);
            for (size_t i = 0; i < w->n_groups; i++) {
                wal_recovered_free(&recs[i]);
            }
        }
    }
    hy_free(stage_tv);
    return rc;
}

static int rec_group_id_cmp(const void *x, const void *y)
{
    const struct wal_group *a = x;
    const struct wal_group *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

int wal_open(struct disk *disk, const struct wal_config *cfg, const uint32_t *groups,
             size_t n_groups, struct wal **wal_out, struct wal_recovered *recs_out, char *err,
             size_t err_len)
{
    HY_ASSERT(cfg->segment_size_bytes > WAL_SEG_HEADER_SIZE);
    struct wal *w = hy_xcalloc(1, sizeof(*w));
    w->disk = disk;
    w->cfg = *cfg;
    w->fd = -1;
    hy_buf_init(&w->batch);
    w->n_groups = n_groups;
    w->groups = hy_xcalloc(n_groups ? n_groups : 1, sizeof(*w->groups));
    for (size_t i = 0; i < n_groups; i++) {
        w->groups[i].id = groups[i];
    }
    qsort(w->groups, n_groups, sizeof(*w->groups), rec_group_id_cmp);
    for (size_t i = 1; i < n_groups; i++) {
        HY_ASSERT(w->groups[i - 1].id != w->groups[i].id);
    }
    struct rec_ctx c = {.w = w, .err = err, .err_len = err_len};
    c.g = hy_xcalloc(n_groups ? n_groups : 1, sizeof(*c.g));
    if (err_len > 0) {
        err[0] = '\0';
    }
    /* Recovered in slot order, handed back in the caller's order. */
    struct wal_recovered *by_slot = hy_xcalloc(n_groups ? n_groups : 1, sizeof(*by_slot));
    int rc = rec_run(&c, by_slot);
    for (size_t i = 0; i < n_groups; i++) {
        hy_free(c.g[i].entries);
        hy_free(c.g[i].snap_buf);
    }
    hy_free(c.g);
    for (size_t i = 0; i < c.n_bufs; i++) {
        hy_free(c.bufs[i]);
    }
    hy_free(c.bufs);
    if (rc != HY_OK) {
        hy_free(by_slot);
        wal_close(w);
        return rc;
    }
    for (size_t i = 0; i < n_groups; i++) {
        recs_out[i] = by_slot[wal__slot(w, groups[i])];
    }
    hy_free(by_slot);
    *wal_out = w;
    return HY_OK;
}

/* ---- repair --------------------------------------------------------------------------------- */

struct rep_ctx {
    struct disk *d;
    char *report;
    size_t report_len;
    size_t used;
    uint64_t seq;  /* last write sequence of the stream kept so far, 0 = none */
    int cut;       /* the stream was cut: every later segment goes */
    int open_kept; /* an open segment with records was kept */
};

static void rep_say(struct rep_ctx *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rep_say(struct rep_ctx *r, const char *fmt, ...)
{
    if (r->used + 1 >= r->report_len) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->report + r->used, r->report_len - r->used, fmt, ap);
    va_end(ap);
    r->used = HY_MIN(r->report_len - 1, r->used + (n > 0 ? (size_t)n : 0));
}

static int rep_remove(struct rep_ctx *r, const char *name, const char *why)
{
    rep_say(r, "removed %s (%s)\n", name, why);
    return wal__remove_synced(r->d, name);
}

/* Cuts a segment after its last good record: a closed one to its new end, the open one
 * zero-filled back to its size. */
static int rep_cut(struct rep_ctx *r, const struct rec_file *f, int closed, size_t len,
                   const struct wal_seg_parse *p)
{
    if (p->n_records == 0) {
        return rep_remove(r, f->name, p->why != NULL ? p->why : "no good record");
    }
    int fd;
    int rc = r->d->ops->open(r->d, f->name, 0, &fd);
    if (rc != HY_OK) {
        return rc;
    }
    rc = wal__cut_file(r->d, fd, p->end_offset, closed ? 0 : len);
    r->d->ops->close(r->d, fd);
    r->seq = p->records[p->n_records - 1].seq;
    rep_say(r, "cut %s at offset %" PRIu64 " after write %" PRIu64 " (%s)\n", f->name,
            p->end_offset, r->seq, p->why != NULL ? p->why : "bytes past the last record");
    return rc;
}

static int rep_segment(struct rep_ctx *r, const struct rec_file *f, int closed)
{
    if (r->cut || (!closed && r->open_kept)) {
        return rep_remove(r, f->name, "after the cut");
    }
    uint8_t *buf;
    size_t len;
    int rc = wal__read_file(r->d, f->name, &buf, &len);
    if (rc != HY_OK) {
        return rc;
    }
    struct wal_seg_parse p;
    wal_segment_parse(buf, len, r->seq != 0 ? r->seq + 1 : 0, &p);
    int good = closed ? p.outcome == WAL_SEG_CLEAN && p.n_records > 0 && p.end_offset == len
                      : p.outcome == WAL_SEG_CLEAN || p.outcome == WAL_SEG_EMPTY;
    if (good && p.n_records > 0) {
        r->seq = p.records[p.n_records - 1].seq;
    }
    if (!good) {
        rc = rep_cut(r, f, closed, len, &p);
        r->cut = 1;
    }
    r->open_kept |= !closed && p.n_records > 0;
    wal_seg_parse_free(&p);
    hy_free(buf);
    return rc;
}

/* Reports a damaged snapshot (never changed by repair); returns HY_ECORRUPT then. */
static int rep_check_snapshots(struct rep_ctx *r, const struct rec_dir *dir)
{
    int result = HY_OK;
    for (size_t i = 0; i < dir->snaps.n; i++) {
        const struct rec_file *f = &dir->snaps.v[i];
        if (i + 1 < dir->snaps.n && dir->snaps.v[i + 1].a == f->a) {
            continue; /* an older one, deleted at the next open */
        }
        uint8_t *buf;
        size_t len;
        struct wal_snapshot s;
        const char *swhy = "cannot be read";
        if (wal__read_file(r->d, f->name, &buf, &len) == HY_OK) {
            if (wal_snapshot_decode(buf, len, &s, &swhy) == HY_OK) {
                swhy = NULL;
            }
            hy_free(buf);
        }
        if (swhy != NULL) {
            rep_say(r, "%s is damaged (%s); left alone\n", f->name, swhy);
            result = HY_ECORRUPT;
        }
    }
    return result;
}

int wal_repair(struct disk *disk, const struct wal_config *cfg, char *report, size_t report_len)
{
    (void)cfg;
    struct rep_ctx r = {.d = disk, .report = report, .report_len = report_len};
    if (report_len > 0) {
        report[0] = '\0';
    }
    struct rec_dir dir;
    memset(&dir, 0, sizeof(dir));
    int rc = rec_scan_dir(disk, &dir, NULL);
    int state = rc == HY_OK ? rep_check_snapshots(&r, &dir) : HY_OK;
    for (size_t i = 0; rc == HY_OK && i < dir.closed.n; i++) {
        rc = rep_segment(&r, &dir.closed.v[i], 1);
    }
    for (size_t i = 0; rc == HY_OK && i < dir.open.n; i++) {
        rc = rep_segment(&r, &dir.open.v[i], 0);
    }
    rec_dir_free(&dir);
    if (rc != HY_OK) {
        rep_say(&r, "repair stopped: %s\n", hy_strerror(rc));
        return HY_EIO;
    }
    if (r.used == 0) {
        rep_say(&r, "%s: nothing to repair\n", disk->path);
    }
    return state;
}
