/*
 * wal_recover.c - opening a log directory: the recovery rules of
 * docs/disk-format.md, in their order, and wal_repair (`halyard --repair DIR`).
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

/* A file of the directory, by kind: closed (a = first, b = last), open (a = N),
 * snapshot (a = index). */
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
    int meta_seen;
};

/* Buffers that recovered entries point into. */
struct rec_priv {
    uint8_t **bufs;
    size_t n_bufs;
};

struct rec_ctx {
    struct wal *w;
    struct wal_recovered *rec;
    struct rec_priv *priv;
    size_t cap_entries;
    char *err;
    size_t err_len;
};

/* ---- names
 * ----------------------------------------------------------------------------------
 */

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
    return a->a < b->a ? -1 : a->a > b->a;
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
    if (len == 41 && name[20] == '-' && rec_digits(name, 20, &a) && rec_digits(name + 21, 20, &b)) {
        rec_list_push(&dir->closed, name, a, b);
    } else if (len > 5 && strncmp(name, "open-", 5) == 0 && rec_digits(name + 5, len - 5, &a)) {
        rec_list_push(&dir->open, name, a, 0);
    } else if (len == 29 && strncmp(name, "snapshot-", 9) == 0 && rec_digits(name + 9, 20, &a)) {
        rec_list_push(&dir->snaps, name, a, 0);
    } else if (strcmp(name, "metadata1") == 0 || strcmp(name, "metadata2") == 0) {
        dir->meta_seen = 1;
    }
    return 0;
}

static int rec_scan_dir(struct disk *d, struct rec_dir *dir)
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
            rc = d->ops->remove(d, names[i]);
            removed = 1;
        }
    }
    disk_names_free(names, count);
    if (rc == HY_OK && removed) {
        rc = d->ops->sync_dir(d);
    }
    struct rec_list *lists[] = {&dir->closed, &dir->open, &dir->snaps};
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
}

/* ---- errors
 * ----------------------------------------------------------------------------------
 */

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
                 "'halyard --repair' does not change this file: restore it from a "
                 "backup, or "
                 "empty %s and let the node catch up from the other replicas",
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

/* ---- rule 2: metadata
 * -------------------------------------------------------------------------- */

/* Reads one metadata file: 1 = valid (in *m), 0 = absent or empty, -1 =
 * damaged, -2 = the disk failed (an I/O error is not evidence of damage). */
static int rec_meta_one(struct disk *d, const char *name, struct wal_meta *m, const char **why)
{
    uint8_t *buf;
    size_t len;
    int rc = wal__read_file(d, name, &buf, &len);
    if (rc == HY_ENOTFOUND) {
        return 0;
    }
    if (rc != HY_OK) {
        *why = hy_strerror(rc);
        return -2;
    }
    int result = len == 0 ? 0 : wal_meta_decode(buf, len, m, why) == HY_OK ? 1 : -1;
    hy_free(buf);
    return result;
}

static int rec_load_meta(struct rec_ctx *c)
{
    struct wal_meta m[2] = {{0, 0, 0}, {0, 0, 0}};
    const char *why[2] = {NULL, NULL};
    int st[2];
    st[0] = rec_meta_one(c->w->disk, "metadata1", &m[0], &why[0]);
    st[1] = rec_meta_one(c->w->disk, "metadata2", &m[1], &why[1]);
    if (st[0] == -2 || st[1] == -2) {
        return rec_io_error(c, st[0] == -2 ? "metadata1" : "metadata2", HY_EIO);
    }
    if (st[0] < 0 && st[1] < 0) {
        return rec_refuse(c, "metadata1", 0, why[0], 0);
    }
    if (st[0] < 1 && st[1] < 0) {
        return rec_refuse(c, "metadata2", 0, why[1], 0);
    }
    if (st[1] < 1 && st[0] < 0) {
        return rec_refuse(c, "metadata1", 0, why[0], 0);
    }
    for (int i = 0; i < 2; i++) {
        if (st[i] < 0) {
            /* The write of a newer state was torn by a crash: the other file holds
             * the last durable one. */
            hy_log(c->w->cfg.log, HY_LOG_WARN, "wal: %s/metadata%d: %s; using metadata%d",
                   c->w->disk->path, i + 1, why[i], 2 - i);
        }
    }
    int pick = st[1] == 1 && (st[0] != 1 || m[1].sequence > m[0].sequence) ? 1 : 0;
    if (st[pick] == 1) {
        c->w->meta = m[pick];
        c->w->meta_slot = pick;
    }
    c->rec->term = c->w->meta.term;
    c->rec->vote = c->w->meta.vote;
    return HY_OK;
}

/* ---- rule 3: snapshot
 * -------------------------------------------------------------------------- */

static void rec_keep_buf(struct rec_ctx *c, uint8_t *buf)
{
    struct rec_priv *p = c->priv;
    p->bufs = hy_xrealloc(p->bufs, (p->n_bufs + 1) * sizeof(*p->bufs));
    p->bufs[p->n_bufs++] = buf;
}

static int rec_load_snapshot(struct rec_ctx *c, const struct rec_dir *dir)
{
    if (dir->snaps.n == 0) {
        return HY_OK;
    }
    const struct rec_file *f = &dir->snaps.v[dir->snaps.n - 1];
    uint8_t *buf;
    size_t len;
    int rc = wal__read_file(c->w->disk, f->name, &buf, &len);
    if (rc != HY_OK) {
        return rec_io_error(c, f->name, rc);
    }
    rec_keep_buf(c, buf);
    const char *why = NULL;
    struct wal_snapshot s;
    if (wal_snapshot_decode(buf, len, &s, &why) != HY_OK) {
        return rec_refuse(c, f->name, 0, why, 0);
    }
    if (s.index != f->a) {
        return rec_refuse(c, f->name, 16, "snapshot index differs from the file name", 0);
    }
    c->rec->snapshot = s;
    c->w->snap_index = s.index;
    c->w->snap_term = s.term;
    for (size_t i = 0; i + 1 < dir->snaps.n; i++) {
        rc = c->w->disk->ops->remove(c->w->disk, dir->snaps.v[i].name);
        if (rc != HY_OK && rc != HY_ENOTFOUND) {
            return rec_io_error(c, dir->snaps.v[i].name, rc);
        }
    }
    return HY_OK;
}

/* ---- rules 4 and 5: segments
 * ------------------------------------------------------------------- */

static void rec_push_records(struct rec_ctx *c, const struct wal_seg_parse *p)
{
    struct wal_recovered *r = c->rec;
    if (r->n_entries + p->n_records > c->cap_entries) {
        c->cap_entries = HY_MAX(c->cap_entries * 2, r->n_entries + p->n_records);
        r->entries = hy_xrealloc(r->entries, c->cap_entries * sizeof(*r->entries));
    }
    if (r->n_entries == 0 && p->n_records > 0) {
        r->first_index = p->records[0].index;
    }
    for (size_t i = 0; i < p->n_records; i++) {
        const struct wal_record *rec = &p->records[i];
        r->entries[r->n_entries++] = (struct wal_entry){
            .term = rec->term, .type = rec->type, .len = rec->len, .data = rec->data};
    }
}

static int rec_check_closed(struct rec_ctx *c, const struct rec_file *f, size_t len,
                            const struct wal_seg_parse *p)
{
    struct wal *w = c->w;
    if (f->a == 0 || f->b < f->a) {
        return rec_refuse(c, f->name, 0, "segment name holds an impossible index range", 1);
    }
    if (w->n_closed > 0 && f->a != w->last_index + 1) {
        return rec_refuse(c, f->name, 0, "segment does not follow the previous one (gap)", 1);
    }
    if (p->outcome != WAL_SEG_CLEAN) {
        return rec_refuse(c, f->name, p->bad_offset, p->why ? p->why : "bad segment header", 1);
    }
    if (p->n_records != f->b - f->a + 1 || p->end_offset != len) {
        return rec_refuse(c, f->name, p->end_offset,
                          "closed segment ends before its last record or has bytes after it", 1);
    }
    if (p->records[0].term < w->last_term) {
        return rec_refuse(c, f->name, WAL_SEG_HEADER_SIZE,
                          "first record's term is lower than the previous segment's", 1);
    }
    return HY_OK;
}

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
        wal_segment_parse(buf, len, f->a, &p);
        rc = rec_check_closed(c, f, len, &p);
        if (rc == HY_OK) {
            rec_push_records(c, &p);
            struct wal_seg seg = {
                .first = f->a, .last = f->b, .last_term = p.records[p.n_records - 1].term};
            snprintf(seg.name, sizeof(seg.name), "%s", f->name);
            wal__push_closed(w, &seg);
            w->last_index = f->b;
            w->last_term = seg.last_term;
        }
        wal_seg_parse_free(&p);
        if (rc != HY_OK) {
            return rc;
        }
    }
    return HY_OK;
}

/* Rule 5's cut: the torn tail goes, the file is zero-filled back so no junk
 * follows the end. */
static int rec_cut_torn(struct rec_ctx *c, const struct rec_file *f, int fd, size_t len,
                        const struct wal_seg_parse *p)
{
    hy_log(c->w->cfg.log, HY_LOG_WARN,
           "wal: %s/%s: offset %" PRIu64 ": %s: torn tail of the last write, never acknowledged; "
           "cutting %" PRIu64 " bytes",
           c->w->disk->path, f->name, p->bad_offset, p->why, (uint64_t)len - p->end_offset);
    int rc = wal__cut_file(c->w->disk, fd, p->end_offset, len);
    return rc == HY_OK ? HY_OK : rec_io_error(c, f->name, rc);
}

/* Makes the open segment with records the wal's open segment (fd kept open). */
static void rec_adopt_open(struct rec_ctx *c, const struct rec_file *f, int fd, size_t len,
                           const uint8_t *buf, const struct wal_seg_parse *p)
{
    struct wal *w = c->w;
    w->fd = fd;
    snprintf(w->open_name, sizeof(w->open_name), "%s", f->name);
    w->open_size = len;
    w->open_used = p->end_offset;
    w->open_first = p->records[0].index;
    w->n_slots = 0;
    for (size_t i = 0; i < p->n_records; i++) {
        if (w->n_slots == w->cap_slots) {
            w->cap_slots = HY_MAX(1024, w->cap_slots * 2);
            w->slots = hy_xrealloc(w->slots, w->cap_slots * sizeof(*w->slots));
        }
        uint64_t off = (uint64_t)(p->records[i].data - buf) - WAL_REC_HEADER_SIZE;
        w->slots[w->n_slots++] = (struct wal_slot){.offset = off, .term = p->records[i].term};
    }
    w->last_index = p->records[p->n_records - 1].index;
    w->last_term = p->records[p->n_records - 1].term;
}

/* One open-N file: adopt it (records), or queue it for deletion (*empty_out).
 */
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
    wal_segment_parse(buf, len, w->n_closed > 0 ? w->last_index + 1 : 0, &p);
    *empty_out = p.outcome == WAL_SEG_EMPTY || p.n_records == 0;
    if (p.outcome == WAL_SEG_CORRUPT) {
        rc = rec_refuse(c, f->name, p.bad_offset, p.why, 1);
    } else if (!*empty_out && w->fd >= 0) {
        rc = rec_refuse(c, f->name, 0, "a second open segment holds records", 1);
    } else if (!*empty_out && p.records[0].term < w->last_term) {
        rc = rec_refuse(c, f->name, WAL_SEG_HEADER_SIZE,
                        "first record's term is lower than the previous segment's", 1);
    }
    int fd = -1;
    if (rc == HY_OK && !*empty_out) {
        rc = w->disk->ops->open(w->disk, f->name, 0, &fd);
        rc = rc == HY_OK ? HY_OK : rec_io_error(c, f->name, rc);
    }
    if (rc == HY_OK && !*empty_out && p.outcome == WAL_SEG_TORN) {
        rc = rec_cut_torn(c, f, fd, len, &p);
    }
    if (rc == HY_OK && !*empty_out) {
        rec_push_records(c, &p);
        rec_adopt_open(c, f, fd, len, buf, &p);
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
            /* A segment a crash left without records (interrupted creation or roll).
             */
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

/* ---- rule 6: log against snapshot
 * -------------------------------------------------------------- */

static int rec_discard_all(struct rec_ctx *c)
{
    struct wal *w = c->w;
    hy_log(w->cfg.log, HY_LOG_WARN,
           "wal: %s: log %" PRIu64 "..%" PRIu64 " is older than snapshot %" PRIu64
           " (a crash during a snapshot install): removing it",
           w->disk->path, c->rec->first_index, w->last_index, w->snap_index);
    int rc = HY_OK;
    if (w->fd >= 0) {
        w->disk->ops->close(w->disk, w->fd);
        w->fd = -1;
        rc = wal__remove_synced(w->disk, w->open_name);
    }
    while (rc == HY_OK && w->n_closed > 0) {
        rc = wal__remove_synced(w->disk, w->closed[w->n_closed - 1].name);
        w->n_closed -= rc == HY_OK ? 1 : 0;
    }
    w->open_first = 0;
    w->n_slots = 0;
    c->rec->n_entries = 0;
    c->rec->first_index = 0;
    return rc == HY_OK ? HY_OK : rec_io_error(c, ".", rc);
}

static int rec_check_snapshot(struct rec_ctx *c)
{
    struct wal *w = c->w;
    struct wal_recovered *r = c->rec;
    if (r->n_entries > 0) {
        const char *first_file = w->n_closed > 0 ? w->closed[0].name : w->open_name;
        uint64_t first = r->first_index;
        if (w->snap_index == 0 && first != 1) {
            return rec_refuse(c, first_file, WAL_SEG_HEADER_SIZE,
                              "log does not start at index 1 and there is no snapshot", 1);
        }
        if (first > w->snap_index + 1) {
            return rec_refuse(c, first_file, WAL_SEG_HEADER_SIZE,
                              "gap between the snapshot and the first log entry", 1);
        }
        int older =
            w->last_index < w->snap_index ||
            (w->snap_index >= first && r->entries[w->snap_index - first].term != w->snap_term);
        if (older) {
            int rc = rec_discard_all(c);
            if (rc != HY_OK) {
                return rc;
            }
        }
    }
    if (r->n_entries == 0) {
        w->last_index = w->snap_index;
        w->last_term = w->snap_term;
    }
    return HY_OK;
}

/* ---- open
 * -------------------------------------------------------------------------------------
 */

void wal_recovered_free(struct wal_recovered *rec)
{
    struct rec_priv *p = rec->priv;
    if (p != NULL) {
        for (size_t i = 0; i < p->n_bufs; i++) {
            hy_free(p->bufs[i]);
        }
        hy_free(p->bufs);
        hy_free(p);
    }
    hy_free(rec->entries);
    memset(rec, 0, sizeof(*rec));
}

/* ---- rule 7: a log has a term
 * ----------------------------------------------------------- */

/* A server adopts and persists a term before it accepts or makes an entry of it (Raft
 * dissertation §3.8), so a log without a term/vote file lost the file: the node could vote
 * twice in a term it already voted in. Not repairable: the vote is unknowable.
 * A directory with neither is new: its term/vote file is written now, so that from here on
 * "a cluster file but no term/vote file" can only mean the log was lost (io/identity.h). */
static int rec_check_term(struct rec_ctx *c)
{
    struct wal *w = c->w;
    int has_log = c->rec->n_entries > 0 || w->snap_index > 0;
    if (w->meta_slot < 0 && has_log) {
        return rec_refuse(c, "metadata1", 0,
                          "the log holds entries but neither term/vote file (metadata1, "
                          "metadata2) is there: they were lost, and with them this node's vote",
                          0);
    }
    if (w->meta_slot < 0 && w->cfg.must_exist) {
        return rec_refuse(c, "metadata1", 0,
                          "the directory holds no Raft state (no term/vote file, no log), yet "
                          "the data dir's cluster file says this node was formed: its log was "
                          "lost",
                          0);
    }
    if (w->meta_slot < 0) {
        c->rec->created = 1;
        int rc = wal_set_term_vote(w, 0, 0);
        return rc == HY_OK ? HY_OK : rec_io_error(c, "metadata1", rc);
    }
    return HY_OK;
}

static int rec_run(struct rec_ctx *c)
{
    struct rec_dir dir;
    memset(&dir, 0, sizeof(dir));
    /* The directory may be new (the server made it a moment ago): everything written in it
     * is only durable once its own name is. */
    int rc = c->w->disk->ops->sync_parent(c->w->disk);
    if (rc == HY_OK) {
        rc = rec_scan_dir(c->w->disk, &dir);
    }
    if (rc != HY_OK) {
        rc = rec_io_error(c, ".", rc);
    }
    if (rc == HY_OK) {
        rc = rec_load_meta(c);
    }
    if (rc == HY_OK) {
        rc = rec_load_snapshot(c, &dir);
    }
    if (rc == HY_OK) {
        rc = rec_load_closed(c, &dir);
    }
    if (rc == HY_OK) {
        rc = rec_load_open(c, &dir);
    }
    if (rc == HY_OK) {
        rc = rec_check_snapshot(c);
    }
    if (rc == HY_OK) {
        rc = rec_check_term(c);
    }
    rec_dir_free(&dir);
    return rc;
}

int wal_open(struct disk *disk, const struct wal_config *cfg, struct wal **wal_out,
             struct wal_recovered *rec_out, char *err, size_t err_len)
{
    HY_ASSERT(cfg->segment_size_bytes > WAL_SEG_HEADER_SIZE);
    struct wal *w = hy_xcalloc(1, sizeof(*w));
    w->disk = disk;
    w->cfg = *cfg;
    w->fd = -1;
    w->meta_slot = -1;
    hy_buf_init(&w->batch);
    memset(rec_out, 0, sizeof(*rec_out));
    rec_out->priv = hy_xcalloc(1, sizeof(struct rec_priv));
    struct rec_ctx c = {
        .w = w, .rec = rec_out, .priv = rec_out->priv, .err = err, .err_len = err_len};
    if (err_len > 0) {
        err[0] = '\0';
    }
    int rc = rec_run(&c);
    if (rc != HY_OK) {
        wal_close(w);
        wal_recovered_free(rec_out);
        return rc;
    }
    /* The check after reading, paired with the encoders' checks before writing.
     */
    HY_ASSERT(rec_out->n_entries == 0 ||
              rec_out->first_index + rec_out->n_entries - 1 == w->last_index);
    rec_out->snapshot.index = w->snap_index;
    rec_out->snapshot.term = w->snap_term;
    *wal_out = w;
    return HY_OK;
}

/* ---- repair
 * ------------------------------------------------------------------------------------
 */

struct rep_ctx {
    struct disk *d;
    char *report;
    size_t report_len;
    size_t used;
    uint64_t prev_last; /* last index of the log kept so far, 0 = none */
    int cut;            /* the log was cut: every later segment goes */
    int open_kept;      /* an open segment with records was kept */
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

/* Cuts a segment after its last good record: closed ones are renamed to what
 * they now hold, the open one is zero-filled back to its size. */
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
    uint64_t last = p->records[p->n_records - 1].index;
    rep_say(r, "cut %s at offset %" PRIu64 " after index %" PRIu64 " (%s)\n", f->name,
            p->end_offset, last, p->why != NULL ? p->why : "bytes past the last record");
    if (rc == HY_OK && closed) {
        char name[WAL_NAME_MAX];
        wal__name_closed(name, p->records[0].index, last);
        rc = r->d->ops->rename(r->d, f->name, name);
        rc = rc == HY_OK ? wal__sync_dir(r->d) : rc;
    }
    r->prev_last = last;
    return rc;
}

static int rep_segment(struct rep_ctx *r, const struct rec_file *f, int closed)
{
    if (r->cut || (!closed && r->open_kept)) {
        return rep_remove(r, f->name, "after the cut");
    }
    if (closed && r->prev_last != 0 && f->a != r->prev_last + 1) {
        r->cut = 1;
        return rep_remove(r, f->name, "does not follow the previous segment");
    }
    uint8_t *buf;
    size_t len;
    int rc = wal__read_file(r->d, f->name, &buf, &len);
    if (rc != HY_OK) {
        return rc;
    }
    struct wal_seg_parse p;
    wal_segment_parse(buf, len, closed ? f->a : r->prev_last + (r->prev_last != 0), &p);
    int good =
        closed ? p.outcome == WAL_SEG_CLEAN && p.n_records == f->b - f->a + 1 && p.end_offset == len
               : p.outcome == WAL_SEG_CLEAN || p.outcome == WAL_SEG_EMPTY;
    if (good && p.n_records > 0) {
        r->prev_last = p.records[p.n_records - 1].index;
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

/* Reports damaged metadata or snapshot (never changed by repair); returns
 * HY_ECORRUPT then. */
static int rep_check_state(struct rep_ctx *r, const struct rec_dir *dir)
{
    int result = HY_OK;
    struct wal_meta m[2];
    const char *why[2] = {NULL, NULL};
    int st0 = rec_meta_one(r->d, "metadata1", &m[0], &why[0]);
    int st1 = rec_meta_one(r->d, "metadata2", &m[1], &why[1]);
    if (st0 == -2 || st1 == -2) {
        rep_say(r, "metadata cannot be read (%s)\n", st0 == -2 ? why[0] : why[1]);
        return HY_EIO;
    }
    if (st0 < 0 && st1 < 1) {
        rep_say(r, "metadata1 is damaged (%s); left alone\n", why[0]);
        result = HY_ECORRUPT;
    }
    if (st1 < 0 && st0 < 1) {
        rep_say(r, "metadata2 is damaged (%s); left alone\n", why[1]);
        result = HY_ECORRUPT;
    }
    if (dir->snaps.n > 0) {
        const struct rec_file *f = &dir->snaps.v[dir->snaps.n - 1];
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
    int rc = rec_scan_dir(disk, &dir);
    int state = rc == HY_OK ? rep_check_state(&r, &dir) : HY_OK;
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
