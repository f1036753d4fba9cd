/*
 * snap_recv.c - received snapshots written to disk as they arrive (snap_recv.h).
 */
#include "io/snap_recv.h"

#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/status.h"
#include "io/wal_codec.h"
#include "io/wal_int.h"

/* Reads of the install's whole-data check. */
#define SNAP_RECV_CHECK_PIECE (1u << 20)

/* One transfer being received: a group receives one snapshot at a time. */
struct snap_rx {
    uint32_t group;
    uint64_t index;
    int fd;
    uint64_t data_offset; /* where the data starts in the file: after header and configuration */
    uint64_t len;         /* data bytes written */
    uint32_t crc;         /* CRC32C of those bytes */
    uint32_t mlen;
    uint8_t membership[8 + RAFT_SERVERS_MAX * 16];
    int started; /* a chunk came; 0: only reserved (snap_recv_reserve) */
};

struct snap_recv {
    struct disk *disk;
    const struct hy_log *log;
    uint32_t refused_group; /* the last reservation refused, logged once (+1; 0: none) */
    uint64_t refused_index;
    struct snap_rx *rx;
    size_t count;
    size_t cap;
    uint64_t bytes;
};

struct snap_recv *snap_recv_new(struct disk *d, const struct hy_log *log)
{
    struct snap_recv *s = hy_xcalloc(1, sizeof(*s));
    s->disk = d;
    s->log = log;
    return s;
}

/* Closes rx's file (removing it when asked) and forgets the transfer. */
static void rx_drop(struct snap_recv *s, struct snap_rx *rx, int remove)
{
    s->disk->ops->close(s->disk, rx->fd);
    if (remove) {
        char name[WAL_NAME_MAX];
        wal__name_snapshot_recv(name, rx->group, rx->index);
        /* No directory fsync: a name that a crash brings back is a .tmp, which start-up
         * removes. */
        (void)s->disk->ops->remove(s->disk, name);
    }
    *rx = s->rx[--s->count];
}

void snap_recv_free(struct snap_recv *s)
{
    if (s == NULL) {
        return;
    }
    while (s->count > 0) {
        rx_drop(s, &s->rx[0], 0);
    }
    hy_free(s->rx);
    hy_free(s);
}

size_t snap_recv_open_count(const struct snap_recv *s)
{
    return s->count;
}

uint64_t snap_recv_bytes(const struct snap_recv *s)
{
    return s->bytes;
}

static struct snap_rx *rx_find(struct snap_recv *s, uint32_t group)
{
    for (size_t i = 0; i < s->count; i++) {
        if (s->rx[i].group == group) {
            return &s->rx[i];
        }
    }
    return NULL;
}

/* A new file for snapshot `index` of group (total bytes of data, configuration m), its whole
 * size allocated: the configuration is written now, the header (which needs the data's
 * checksum) once the data is whole. */
static int rx_start(struct snap_recv *s, uint32_t group, uint64_t index, uint64_t total,
                    const struct raft_membership *m, struct snap_rx **out)
{
    struct snap_rx *old = rx_find(s, group);
    if (old != NULL) {
        rx_drop(s, old, 1); /* another snapshot, or this one again from 0 */
    }
    char name[WAL_NAME_MAX];
    wal__name_snapshot_recv(name, group, index);
    int fd;
    int rc = s->disk->ops->open(s->disk, name, DISK_CREATE, &fd);
    if (rc != HY_OK) {
        return rc;
    }
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->rx = hy_xrealloc(s->rx, s->cap * sizeof(*s->rx));
    }
    struct snap_rx *rx = &s->rx[s->count++];
    memset(rx, 0, sizeof(*rx));
    rx->group = group;
    rx->index = index;
    rx->fd = fd;
    HY_ASSERT(raft_membership_encoded_len(m) <= sizeof(rx->membership));
    rx->mlen = (uint32_t)raft_membership_encode(m, rx->membership);
    rx->data_offset = WAL_SNAP_HEADER_SIZE + (uint64_t)rx->mlen;
    rc = s->disk->ops->truncate(s->disk, fd, 0);
    /* The whole file's space now (snap_recv_reserve: before the core sees the first chunk),
     * so that no later chunk finds the disk full: the last one's failure stops the node. */
    if (rc == HY_OK) {
        rc = s->disk->ops->reserve(s->disk, fd, rx->data_offset + total);
    }
    if (rc == HY_OK) {
        rc = s->disk->ops->write(s->disk, fd, WAL_SNAP_HEADER_SIZE, rx->membership, rx->mlen);
    }
    if (rc != HY_OK) {
        rx_drop(s, rx, 1);
        return rc;
    }
    *out = rx;
    return HY_OK;
}

/* The data is whole: the header goes in at the front (it names the data's checksum, which the
 * chunks were summed to), and the file is closed, for the WAL thread to make durable. */
static int rx_finish(struct snap_recv *s, struct snap_rx *rx, const struct raft_update *up)
{
    if (up->chunk_crc != 0 && rx->crc != up->chunk_crc) {
        return HY_ECORRUPT; /* the core checked the same bytes: only a bug gets here */
    }
    struct wal_snapshot ws = {.index = up->snap_index,
                              .term = up->snap_term,
                              .membership = rx->membership,
                              .membership_len = rx->mlen,
                              .data = NULL,
                              .data_len = rx->len};
    uint8_t header[WAL_SNAP_HEADER_SIZE];
    wal_snapshot_header_encode_crc(&ws, rx->crc, header);
    int rc = s->disk->ops->write(s->disk, rx->fd, 0, header, sizeof(header));
    if (rc != HY_OK) {
        return rc;
    }
    rx_drop(s, rx, 0);
    return HY_OK;
}

int snap_recv_chunk(struct snap_recv *s, uint32_t group, const struct raft_update *up)
{
    HY_ASSERT(up->chunk);
    struct snap_rx *rx = rx_find(s, group);
    int rc = HY_OK;
    if (up->chunk_offset == 0 && rx != NULL && rx->index == up->chunk_index && rx->len == 0 &&
        !rx->started) {
        rx->started = 1; /* reserved by snap_recv_reserve: the file and its space are there */
    } else if (up->chunk_offset == 0) {
        rc = rx_start(s, group, up->chunk_index, up->chunk_total, &up->chunk_membership, &rx);
        if (rx != NULL && rc == HY_OK) {
            rx->started = 1;
        }
    } else if (rx == NULL || rx->index != up->chunk_index || rx->len != up->chunk_offset) {
        /* Not what this file holds (a restart lost it, or a bug): the leader starts again. */
        if (rx != NULL) {
            rx_drop(s, rx, 1);
        }
        hy_log(s->log, HY_LOG_WARN,
               "group %u: snapshot %llu chunk at %llu does not follow what was received: "
               "starting that transfer again",
               group, (unsigned long long)up->chunk_index, (unsigned long long)up->chunk_offset);
        return HY_ECORRUPT;
    }
    if (rc == HY_OK && up->chunk_len > 0) {
        rc = s->disk->ops->write(s->disk, rx->fd, rx->data_offset + rx->len, up->chunk_data,
                                 up->chunk_len);
    }
    if (rc == HY_OK) {
        rx->crc = hy_crc32c(rx->crc, up->chunk_data, up->chunk_len);
        rx->len += up->chunk_len;
        s->bytes += up->chunk_len;
    }
    if (rc == HY_OK && up->snapshot_install) {
        rc = rx_finish(s, rx, up);
    }
    if (rc != HY_OK) {
        if (rx != NULL && rx_find(s, group) == rx) {
            rx_drop(s, rx, 1);
        }
        hy_log(s->log, HY_LOG_ERROR,
               "group %u: cannot write received snapshot %llu in %s (%s): starting that transfer "
               "again",
               group, (unsigned long long)up->chunk_index, s->disk->path, hy_status_name(rc));
    }
    return rc;
}

int snap_recv_reserve(struct snap_recv *s, uint32_t group, const struct raft_message *m)
{
    struct snap_rx *rx = rx_find(s, group);
    if (rx != NULL && rx->index >= m->snap_index) {
        /* Reserved or under way (a chunk at offset 0 starts it again in place), or a newer
         * one is: a delayed message of an older snapshot, which the core drops, must not end
         * it. */
        return HY_OK;
    }
    int rc = rx_start(s, group, m->snap_index, m->total, &m->snap_membership, &rx);
    int said = s->refused_group == group + 1 && s->refused_index == m->snap_index;
    s->refused_group = rc != HY_OK ? group + 1 : 0;
    s->refused_index = m->snap_index;
    if (rc != HY_OK && !said) {
        hy_log(s->log, HY_LOG_WARN,
               "group %u: no room for received snapshot %llu (%llu bytes) in %s (%s): its "
               "chunk is dropped, and the leader sends it again",
               group, (unsigned long long)m->snap_index, (unsigned long long)m->total,
               s->disk->path, hy_status_name(rc));
    }
    return rc;
}

static int read_exact(struct disk *d, int fd, uint64_t offset, uint8_t *buf, size_t len)
{
    size_t got = 0;
    int rc = d->ops->read(d, fd, offset, buf, len, &got);
    if (rc != HY_OK) {
        return rc;
    }
    return got == len ? HY_OK : HY_ECORRUPT;
}

int snap_recv_load(struct disk *d, uint32_t group, uint64_t index, struct hy_buf *out)
{
    char name[WAL_NAME_MAX];
    wal__name_snapshot_recv(name, group, index);
    int fd;
    int rc = d->ops->open(d, name, 0, &fd);
    if (rc != HY_OK) {
        return rc;
    }
    uint64_t size = 0;
    uint8_t header[WAL_SNAP_HEADER_SIZE];
    struct wal_snapshot_head head;
    const char *why = NULL;
    rc = d->ops->size(d, fd, &size);
    if (rc == HY_OK) {
        rc = read_exact(d, fd, 0, header, sizeof(header));
    }
    if (rc == HY_OK && (wal_snapshot_head_check(header, size, &head, &why) != HY_OK ||
                        head.index != index || head.data_len > SIZE_MAX)) {
        rc = HY_ECORRUPT;
    }
    if (rc == HY_OK) {
        /* Read straight into the caller's buffer: one copy of the snapshot in memory, the
         * one the install decodes, checked in pieces as it comes. */
        size_t at = out->len;
        hy_buf_reserve(out, (size_t)head.data_len);
        uint32_t crc = 0;
        for (uint64_t off = 0; off < head.data_len && rc == HY_OK;) {
            size_t n = (size_t)HY_MIN((uint64_t)SNAP_RECV_CHECK_PIECE, head.data_len - off);
            rc = read_exact(d, fd, head.data_offset + off, out->data + at + off, n);
            if (rc == HY_OK) {
                crc = hy_crc32c(crc, out->data + at + off, n);
            }
            off += n;
        }
        if (rc == HY_OK && crc != head.data_crc) {
            rc = HY_ECORRUPT;
        }
        if (rc == HY_OK) {
            out->len = at + (size_t)head.data_len;
        }
    }
    d->ops->close(d, fd);
    return rc;
}
