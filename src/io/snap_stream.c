/*
 * snap_stream.c - snapshots streamed to followers from the log's files (snap_stream.h).
 */
#include "io/snap_stream.h"

#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/status.h"
#include "io/wal_codec.h"
#include "io/wal_int.h"

/* Transfers kept open at once: one per (group, follower) sending now. The least recently used
 * one is closed to make room; it reopens (and checks its data whole) if it goes on. */
#define SNAP_STREAM_OPEN_MAX    64
/* Reads of a whole-data check (a transfer whose chunks did not go out in order). */
#define SNAP_STREAM_CHECK_PIECE (1u << 20)

struct snap_xfer {
    uint32_t group;
    raft_id to;
    uint64_t index;
    int fd;
    struct wal_snapshot_head head;
    uint64_t crc_next; /* the data is checksummed up to here, chunk by chunk in order */
    uint32_t crc;
    int gap;       /* a chunk came beyond crc_next: the in-order checksum cannot finish */
    int verified;  /* the whole data matched its checksum */
    uint64_t used; /* LRU clock */
};

struct snap_stream {
    struct disk *disk;
    const struct hy_log *log;
    struct snap_xfer xfers[SNAP_STREAM_OPEN_MAX];
    size_t count;
    uint64_t clock;
    uint64_t corrupt;
    uint32_t bad_group; /* the damaged snapshot last logged: said once, not per heartbeat */
    uint64_t bad_index;
};

/* 1 when this damaged snapshot was not logged yet (then it is now remembered). */
static int bad_first(struct snap_stream *s, uint32_t group, uint64_t index)
{
    s->corrupt++;
    if (s->bad_group == group && s->bad_index == index) {
        return 0;
    }
    s->bad_group = group;
    s->bad_index = index;
    return 1;
}

struct snap_stream *snap_stream_new(struct disk *d, const struct hy_log *log)
{
    struct snap_stream *s = hy_xcalloc(1, sizeof(*s));
    s->disk = d;
    s->log = log;
    return s;
}

static void xfer_close(struct snap_stream *s, struct snap_xfer *x)
{
    s->disk->ops->close(s->disk, x->fd);
    *x = s->xfers[--s->count];
}

void snap_stream_free(struct snap_stream *s)
{
    if (s == NULL) {
        return;
    }
    while (s->count > 0) {
        xfer_close(s, &s->xfers[0]);
    }
    hy_free(s);
}

size_t snap_stream_open_count(const struct snap_stream *s)
{
    return s->count;
}

uint64_t snap_stream_corrupt_count(const struct snap_stream *s)
{
    return s->corrupt;
}

static int read_exact(struct disk *d, int fd, uint64_t offset, uint8_t *buf, size_t len)
{
    size_t got = 0;
    int rc = d->ops->read(d, fd, offset, buf, len, &got);
    if (rc != HY_OK) {
        return rc;
    }
    return got == len ? HY_OK : HY_ECORRUPT; /* shorter than its header says */
}

static int xfer_open(struct snap_stream *s, uint32_t group, const struct raft_message *m,
                     struct snap_xfer **out)
{
    char name[WAL_NAME_MAX];
    wal__name_snapshot(name, group, m->snap_index, 0);
    int fd;
    int rc = s->disk->ops->open(s->disk, name, 0, &fd);
    if (rc != HY_OK) {
        return rc; /* HY_ENOTFOUND: not durable yet, or gone */
    }
    uint64_t size = 0;
    uint8_t header[WAL_SNAP_HEADER_SIZE];
    struct wal_snapshot_head head;
    const char *why = NULL;
    rc = s->disk->ops->size(s->disk, fd, &size);
    if (rc == HY_OK) {
        rc = read_exact(s->disk, fd, 0, header, sizeof(header));
    }
    if (rc == HY_OK && wal_snapshot_head_check(header, size, &head, &why) != HY_OK) {
        rc = HY_ECORRUPT;
    }
    if (rc == HY_OK && (head.index != m->snap_index || head.data_len != m->total)) {
        why = "its index or size is not the one Raft sends";
        rc = HY_ECORRUPT;
    }
    if (rc != HY_OK) {
        s->disk->ops->close(s->disk, fd);
        if (rc == HY_ECORRUPT && bad_first(s, group, m->snap_index)) {
            hy_log(s->log, HY_LOG_ERROR, "snapshot %s/%s is damaged (%s): not sent to followers",
                   s->disk->path, name, why ? why : "shorter than its header says");
        }
        return rc;
    }
    if (s->count == SNAP_STREAM_OPEN_MAX) {
        struct snap_xfer *lru = &s->xfers[0];
        for (size_t i = 1; i < s->count; i++) {
            lru = s->xfers[i].used < lru->used ? &s->xfers[i] : lru;
        }
        xfer_close(s, lru);
    }
    struct snap_xfer *x = &s->xfers[s->count++];
    *x = (struct snap_xfer){
        .group = group, .to = m->to, .index = m->snap_index, .fd = fd, .head = head};
    *out = x;
    return HY_OK;
}

/* The whole data's checksum, read piece by piece (the rare transfer not sent in order). */
static int xfer_check_whole(struct snap_stream *s, struct snap_xfer *x)
{
    uint8_t *piece = hy_xmalloc(SNAP_STREAM_CHECK_PIECE);
    uint32_t crc = 0;
    int rc = HY_OK;
    for (uint64_t off = 0; off < x->head.data_len && rc == HY_OK;) {
        size_t n = (size_t)HY_MIN((uint64_t)SNAP_STREAM_CHECK_PIECE, x->head.data_len - off);
        rc = read_exact(s->disk, x->fd, x->head.data_offset + off, piece, n);
        crc = hy_crc32c(crc, piece, n);
        off += n;
    }
    hy_free(piece);
    if (rc == HY_OK && crc != x->head.data_crc) {
        rc = HY_ECORRUPT;
    }
    return rc;
}

int snap_stream_fill(struct snap_stream *s, uint32_t group, struct raft_message *m, uint8_t *buf)
{
    if (m->type != RAFT_MSG_SNAPSHOT || m->len == 0 || m->data != NULL) {
        return HY_OK;
    }
    struct snap_xfer *x = NULL;
    for (size_t i = 0; i < s->count; i++) {
        if (s->xfers[i].group == group && s->xfers[i].to == m->to) {
            x = &s->xfers[i];
            break;
        }
    }
    if (x != NULL && x->index != m->snap_index) {
        xfer_close(s, x); /* a newer snapshot: the transfer starts again from it */
        x = NULL;
    }
    int rc = x == NULL ? xfer_open(s, group, m, &x) : HY_OK;
    if (rc != HY_OK) {
        return rc;
    }
    x->used = ++s->clock;
    if (m->offset > x->head.data_len || m->len > x->head.data_len - m->offset ||
        m->total != x->head.data_len) {
        return HY_ECORRUPT; /* not this file's range: the next chunk Raft sends is */
    }
    rc = read_exact(s->disk, x->fd, x->head.data_offset + m->offset, buf, m->len);
    if (rc != HY_OK) {
        xfer_close(s, x);
        return rc;
    }
    if (m->offset == x->crc_next) {
        x->crc = hy_crc32c(x->crc, buf, m->len);
        x->crc_next += m->len;
    } else if (m->offset > x->crc_next) {
        x->gap = 1; /* resent chunks (offset below) were checksummed when they first went */
    }
    if (m->offset + m->len == x->head.data_len && !x->verified) {
        int ok = x->crc_next == x->head.data_len && !x->gap ? x->crc == x->head.data_crc
                                                            : xfer_check_whole(s, x) == HY_OK;
        if (!ok) {
            if (bad_first(s, group, x->index)) {
                hy_log(s->log, HY_LOG_ERROR,
                       "snapshot of group %u at index %llu in %s: data checksum mismatch, not "
                       "sent to followers (the next snapshot replaces it: one is asked for)",
                       group, (unsigned long long)x->index, s->disk->path);
            }
            xfer_close(s, x);
            return HY_ECORRUPT;
        }
        x->verified = 1;
    }
    m->data = buf;
    /* The follower checks what it assembles against the checksum the file's header holds. */
    m->snap_crc = x->head.data_crc;
    return HY_OK;
}

int snap_stream_load(struct disk *d, uint32_t group, uint64_t index, struct hy_buf *out)
{
    char name[WAL_NAME_MAX];
    wal__name_snapshot(name, group, index, 0);
    uint8_t *file = NULL;
    size_t len = 0;
    int rc = wal__read_file(d, name, &file, &len);
    if (rc != HY_OK) {
        return rc;
    }
    struct wal_snapshot s;
    const char *why = NULL;
    if (wal_snapshot_decode(file, len, &s, &why) != HY_OK || s.index != index) {
        rc = HY_ECORRUPT;
    } else {
        hy_buf_append(out, s.data, (size_t)s.data_len);
    }
    hy_free(file);
    return rc;
}
