/*
 * disk_mem.c - the simulated disk (disk_mem.h).
 *
 * Each file (inode) holds two byte arrays: `cur`, what reads see, and `dur`,
 * what survives a crash, plus the list of writes and size changes made since
 * its last sync. The directory is two name tables (visible and durable) plus
 * the list of name changes since the last sync_dir. A crash replays the pending
 * lists onto the durable state, keeping, dropping or tearing each entry. Inodes
 * no name or handle can reach are freed at sync_dir and crash.
 */
#include "io/disk_mem.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/prng.h"

#define MEM_NAME_MAX  64
#define MEM_FILES_MAX 64
#define MEM_SECTOR    512

struct mem_bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
};

enum mem_op_kind { MEM_WRITE, MEM_RESIZE };

/* A change to a file not yet synced: a write of `data` at `offset`, or a resize
 * to `size`. */
struct mem_op {
    enum mem_op_kind kind;
    uint64_t offset;
    uint64_t size;
    uint8_t *data;
    size_t len;
};

struct mem_inode {
    struct mem_bytes cur;
    struct mem_bytes dur;
    struct mem_op *ops;
    size_t n_ops;
    size_t cap_ops;
    int mark; /* garbage collection */
};

struct mem_name {
    char name[MEM_NAME_MAX];
    struct mem_inode *ino;
};

struct mem_ns {
    struct mem_name *v;
    size_t n;
    size_t cap;
};

enum mem_dirop_kind { MEM_CREATE, MEM_RENAME, MEM_REMOVE };

struct mem_dirop {
    enum mem_dirop_kind kind;
    char name[MEM_NAME_MAX];
    char to[MEM_NAME_MAX];
    struct mem_inode *ino; /* MEM_CREATE */
};

struct disk_mem {
    struct disk base; /* first: the ops receive a struct disk * */
    struct hy_prng prng;
    struct mem_inode **inodes;
    size_t n_inodes;
    size_t cap_inodes;
    struct mem_ns cur;
    struct mem_ns dur;
    struct mem_dirop *dirops;
    size_t n_dirops;
    size_t cap_dirops;
    struct mem_inode *fds[MEM_FILES_MAX];
    int dir_durable; /* the directory's own name survives a crash (sync_parent) */
    /* Faults. */
    uint32_t fail_mask;
    uint64_t fail_countdown;
    int fail_status;
    int fail_persistent;
    int fail_active;
    int fail_fired;
    uint64_t capacity;
    /* Latency and counters. */
    uint32_t lat_op[2];
    uint32_t lat_sync[2];
    uint64_t latency_us;
    uint64_t calls;
    uint64_t op_calls[DISK_OP_COUNT];
};

static struct disk_mem *mem_of(struct disk *d)
{
    return (struct disk_mem *)d;
}

/* ---- byte arrays
 * ------------------------------------------------------------------------ */

static void mem_bytes_resize(struct mem_bytes *b, size_t len)
{
    if (len > b->cap) {
        size_t cap = HY_MAX(len, b->cap * 2);
        b->data = hy_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (len > b->len) {
        memset(b->data + b->len, 0, len - b->len);
    }
    b->len = len;
}

static void mem_bytes_write(struct mem_bytes *b, uint64_t offset, const uint8_t *buf, size_t len)
{
    if (offset + len > b->len) {
        mem_bytes_resize(b, (size_t)(offset + len));
    }
    if (len > 0) {
        memcpy(b->data + offset, buf, len);
    }
}

static void mem_bytes_copy(struct mem_bytes *dst, const struct mem_bytes *src)
{
    mem_bytes_resize(dst, src->len);
    if (src->len > 0) {
        memcpy(dst->data, src->data, src->len);
    }
}

/* ---- inodes and names
 * ------------------------------------------------------------------- */

static void mem_inode_clear_ops(struct mem_inode *ino)
{
    for (size_t i = 0; i < ino->n_ops; i++) {
        hy_free(ino->ops[i].data);
    }
    ino->n_ops = 0;
}

static void mem_inode_free(struct mem_inode *ino)
{
    mem_inode_clear_ops(ino);
    hy_free(ino->ops);
    hy_free(ino->cur.data);
    hy_free(ino->dur.data);
    hy_free(ino);
}

static struct mem_inode *mem_inode_new(struct disk_mem *m)
{
    if (m->n_inodes == m->cap_inodes) {
        m->cap_inodes = m->cap_inodes ? m->cap_inodes * 2 : 16;
        m->inodes = hy_xrealloc(m->inodes, m->cap_inodes * sizeof(*m->inodes));
    }
    struct mem_inode *ino = hy_xcalloc(1, sizeof(*ino));
    m->inodes[m->n_inodes++] = ino;
    return ino;
}

static void mem_inode_push(struct mem_inode *ino, const struct mem_op *op)
{
    if (ino->n_ops == ino->cap_ops) {
        ino->cap_ops = ino->cap_ops ? ino->cap_ops * 2 : 8;
        ino->ops = hy_xrealloc(ino->ops, ino->cap_ops * sizeof(*ino->ops));
    }
    ino->ops[ino->n_ops++] = *op;
}

static struct mem_name *mem_ns_find(struct mem_ns *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++) {
        if (strcmp(ns->v[i].name, name) == 0) {
            return &ns->v[i];
        }
    }
    return NULL;
}

static void mem_ns_put(struct mem_ns *ns, const char *name, struct mem_inode *ino)
{
    struct mem_name *e = mem_ns_find(ns, name);
    if (e == NULL) {
        if (ns->n == ns->cap) {
            ns->cap = ns->cap ? ns->cap * 2 : 16;
            ns->v = hy_xrealloc(ns->v, ns->cap * sizeof(*ns->v));
        }
        e = &ns->v[ns->n++];
        snprintf(e->name, sizeof(e->name), "%s", name);
    }
    e->ino = ino;
}

static void mem_ns_del(struct mem_ns *ns, const char *name)
{
    struct mem_name *e = mem_ns_find(ns, name);
    if (e != NULL) {
        *e = ns->v[--ns->n];
    }
}

static void mem_ns_copy(struct mem_ns *dst, const struct mem_ns *src)
{
    if (dst->cap < src->n) {
        dst->cap = src->n;
        dst->v = hy_xrealloc(dst->v, dst->cap * sizeof(*dst->v));
    }
    if (src->n > 0) {
        memcpy(dst->v, src->v, src->n * sizeof(*src->v));
    }
    dst->n = src->n;
}

static void mem_mark_ns(const struct mem_ns *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        ns->v[i].ino->mark = 1;
    }
}

/* Frees every inode that no name (visible or durable), pending creation or
 * handle reaches. */
static void mem_gc(struct disk_mem *m)
{
    for (size_t i = 0; i < m->n_inodes; i++) {
        m->inodes[i]->mark = 0;
    }
    mem_mark_ns(&m->cur);
    mem_mark_ns(&m->dur);
    for (size_t i = 0; i < m->n_dirops; i++) {
        if (m->dirops[i].ino != NULL) {
            m->dirops[i].ino->mark = 1;
        }
    }
    for (size_t i = 0; i < MEM_FILES_MAX; i++) {
        if (m->fds[i] != NULL) {
            m->fds[i]->mark = 1;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < m->n_inodes; i++) {
        if (m->inodes[i]->mark) {
            m->inodes[kept++] = m->inodes[i];
        } else {
            mem_inode_free(m->inodes[i]);
        }
    }
    m->n_inodes = kept;
}

static void mem_dirop_push(struct disk_mem *m, enum mem_dirop_kind kind, const char *name,
                           const char *to, struct mem_inode *ino)
{
    if (m->n_dirops == m->cap_dirops) {
        m->cap_dirops = m->cap_dirops ? m->cap_dirops * 2 : 16;
        m->dirops = hy_xrealloc(m->dirops, m->cap_dirops * sizeof(*m->dirops));
    }
    struct mem_dirop *op = &m->dirops[m->n_dirops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    snprintf(op->name, sizeof(op->name), "%s", name);
    snprintf(op->to, sizeof(op->to), "%s", to != NULL ? to : "");
    op->ino = ino;
}

/* ---- faults, latency, space
 * --------------------------------------------------------------- */

/* Counts the call, accrues its latency, and returns the armed fault if this
 * call fails. */
static int mem_enter(struct disk_mem *m, enum disk_mem_op op)
{
    m->calls++;
    m->op_calls[op]++;
    const uint32_t *lat = op == DISK_OP_SYNC || op == DISK_OP_SYNC_DIR ? m->lat_sync : m->lat_op;
    if (lat[1] > 0) {
        m->latency_us += hy_prng_range(&m->prng, lat[0], lat[1]);
    }
    if ((m->fail_mask & DISK_OP_BIT(op)) == 0) {
        return HY_OK;
    }
    if (m->fail_active) {
        return m->fail_status;
    }
    if (m->fail_countdown > 0 && --m->fail_countdown == 0) {
        m->fail_fired = 1;
        m->fail_active = m->fail_persistent;
        return m->fail_status;
    }
    return HY_OK;
}

uint64_t disk_mem_used_bytes(const struct disk *d)
{
    const struct disk_mem *m = (const struct disk_mem *)d;
    uint64_t used = 0;
    for (size_t i = 0; i < m->cur.n; i++) {
        used += m->cur.v[i].ino->cur.len;
    }
    return used;
}

/* HY_ENOSPC when growing some file by `growth` bytes would pass the capacity.
 */
static int mem_space(struct disk_mem *m, uint64_t growth)
{
    if (m->capacity == 0 || growth == 0) {
        return HY_OK;
    }
    return disk_mem_used_bytes(&m->base) + growth > m->capacity ? HY_ENOSPC : HY_OK;
}

/* The file behind a handle, or NULL for a handle a crash invalidated (the
 * process that held it is gone; its calls fail with HY_EIO). */
static struct mem_inode *mem_fd(struct disk_mem *m, int fd)
{
    HY_ASSERT(fd >= 0 && fd < MEM_FILES_MAX);
    return m->fds[fd];
}

/* ---- the operations
 * ------------------------------------------------------------------------ */

static int mem_open(struct disk *d, const char *name, int flags, int *fd_out)
{
    struct disk_mem *m = mem_of(d);
    HY_ASSERT(strlen(name) < MEM_NAME_MAX && strchr(name, '/') == NULL);
    int rc = mem_enter(m, DISK_OP_OPEN);
    if (rc != HY_OK) {
        return rc;
    }
    int fd = 0;
    while (fd < MEM_FILES_MAX && m->fds[fd] != NULL) {
        fd++;
    }
    HY_ASSERT(fd < MEM_FILES_MAX);
    struct mem_name *e = mem_ns_find(&m->cur, name);
    if (e != NULL && (flags & DISK_EXCL)) {
        return HY_EEXIST;
    }
    if (e == NULL && !(flags & DISK_CREATE)) {
        return HY_ENOTFOUND;
    }
    struct mem_inode *ino = e != NULL ? e->ino : NULL;
    if (ino == NULL) {
        ino = mem_inode_new(m);
        mem_ns_put(&m->cur, name, ino);
        mem_dirop_push(m, MEM_CREATE, name, NULL, ino);
    }
    m->fds[fd] = ino;
    *fd_out = fd;
    return HY_OK;
}

static void mem_close(struct disk *d, int fd)
{
    struct disk_mem *m = mem_of(d);
    HY_ASSERT(fd >= 0 && fd < MEM_FILES_MAX);
    m->fds[fd] = NULL;
}

static int mem_resize(struct disk_mem *m, struct mem_inode *ino, uint64_t size)
{
    if (size > ino->cur.len) {
        int rc = mem_space(m, size - ino->cur.len);
        if (rc != HY_OK) {
            return rc;
        }
    }
    mem_bytes_resize(&ino->cur, (size_t)size);
    struct mem_op op = {.kind = MEM_RESIZE, .size = size};
    mem_inode_push(ino, &op);
    return HY_OK;
}

static int mem_preallocate(struct disk *d, int fd, uint64_t size)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_PREALLOCATE);
    struct mem_inode *ino = mem_fd(m, fd);
    if (rc != HY_OK || ino == NULL) {
        return ino == NULL ? HY_EIO : rc;
    }
    return size > ino->cur.len ? mem_resize(m, ino, size) : HY_OK;
}

static int mem_truncate(struct disk *d, int fd, uint64_t size)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_TRUNCATE);
    struct mem_inode *ino = mem_fd(m, fd);
    if (rc != HY_OK || ino == NULL) {
        return ino == NULL ? HY_EIO : rc;
    }
    return mem_resize(m, ino, size);
}

static int mem_write(struct disk *d, int fd, uint64_t offset, const uint8_t *buf, size_t len)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_WRITE);
    struct mem_inode *ino = mem_fd(m, fd);
    if (rc != HY_OK || ino == NULL) {
        return ino == NULL ? HY_EIO : rc;
    }
    if (offset + len > ino->cur.len) {
        rc = mem_space(m, offset + len - ino->cur.len);
        if (rc != HY_OK) {
            return rc;
        }
    }
    mem_bytes_write(&ino->cur, offset, buf, len);
    struct mem_op op = {.kind = MEM_WRITE, .offset = offset, .len = len};
    op.data = hy_xmemdup(buf, len > 0 ? len : 1);
    mem_inode_push(ino, &op);
    return HY_OK;
}

static int mem_sync(struct disk *d, int fd)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_SYNC);
    struct mem_inode *ino = mem_fd(m, fd);
    if (rc != HY_OK || ino == NULL) {
        return ino == NULL ? HY_EIO : rc;
    }
    mem_bytes_copy(&ino->dur, &ino->cur);
    mem_inode_clear_ops(ino);
    return HY_OK;
}

static int mem_read(struct disk *d, int fd, uint64_t offset, uint8_t *buf, size_t len,
                    size_t *read_out)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_READ);
    struct mem_inode *ino = mem_fd(m, fd);
    if (rc != HY_OK || ino == NULL) {
        return ino == NULL ? HY_EIO : rc;
    }
    size_t n = 0;
    if (offset < ino->cur.len) {
        n = (size_t)HY_MIN((uint64_t)len, ino->cur.len - offset);
        memcpy(buf, ino->cur.data + offset, n);
    }
    *read_out = n;
    return HY_OK;
}

static int mem_size(struct disk *d, int fd, uint64_t *size_out)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_SIZE);
    struct mem_inode *ino = mem_fd(m, fd);
    if (rc != HY_OK || ino == NULL) {
        return ino == NULL ? HY_EIO : rc;
    }
    *size_out = ino->cur.len;
    return HY_OK;
}

static int mem_rename(struct disk *d, const char *from, const char *to)
{
    struct disk_mem *m = mem_of(d);
    HY_ASSERT(strlen(to) < MEM_NAME_MAX && strchr(to, '/') == NULL);
    int rc = mem_enter(m, DISK_OP_RENAME);
    if (rc != HY_OK) {
        return rc;
    }
    struct mem_name *e = mem_ns_find(&m->cur, from);
    if (e == NULL) {
        return HY_ENOTFOUND;
    }
    struct mem_inode *ino = e->ino;
    mem_ns_del(&m->cur, from);
    mem_ns_put(&m->cur, to, ino);
    mem_dirop_push(m, MEM_RENAME, from, to, NULL);
    return HY_OK;
}

static int mem_remove(struct disk *d, const char *name)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_REMOVE);
    if (rc != HY_OK) {
        return rc;
    }
    if (mem_ns_find(&m->cur, name) == NULL) {
        return HY_ENOTFOUND;
    }
    mem_ns_del(&m->cur, name);
    mem_dirop_push(m, MEM_REMOVE, name, NULL, NULL);
    return HY_OK;
}

static int mem_sync_dir(struct disk *d)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_SYNC_DIR);
    if (rc != HY_OK) {
        return rc;
    }
    mem_ns_copy(&m->dur, &m->cur);
    m->n_dirops = 0;
    mem_gc(m);
    return HY_OK;
}

static int mem_sync_parent(struct disk *d)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_SYNC_PARENT);
    if (rc != HY_OK) {
        return rc;
    }
    m->dir_durable = 1;
    return HY_OK;
}

static int mem_list(struct disk *d, char ***names_out, size_t *count_out)
{
    struct disk_mem *m = mem_of(d);
    int rc = mem_enter(m, DISK_OP_LIST);
    if (rc != HY_OK) {
        return rc;
    }
    char **names = hy_xcalloc(m->cur.n + 1, sizeof(*names));
    for (size_t i = 0; i < m->cur.n; i++) {
        names[i] = hy_xstrdup(m->cur.v[i].name);
    }
    *names_out = names;
    *count_out = m->cur.n;
    return HY_OK;
}

static void mem_destroy(struct disk *d)
{
    struct disk_mem *m = mem_of(d);
    for (size_t i = 0; i < m->n_inodes; i++) {
        mem_inode_free(m->inodes[i]);
    }
    hy_free(m->inodes);
    hy_free(m->cur.v);
    hy_free(m->dur.v);
    hy_free(m->dirops);
    hy_free(m);
}

static const struct disk_ops disk_mem_ops = {
    .open = mem_open,
    .close = mem_close,
    .preallocate = mem_preallocate,
    .reserve = mem_preallocate, /* the model has no unwritten extents: the same */
    .write = mem_write,
    .sync = mem_sync,
    .read = mem_read,
    .size = mem_size,
    .truncate = mem_truncate,
    .rename = mem_rename,
    .remove = mem_remove,
    .sync_dir = mem_sync_dir,
    .sync_parent = mem_sync_parent,
    .list = mem_list,
    .destroy = mem_destroy,
};

struct disk *disk_mem_new(const char *path, uint64_t seed)
{
    struct disk_mem *m = hy_xcalloc(1, sizeof(*m));
    m->base.ops = &disk_mem_ops;
    snprintf(m->base.path, sizeof(m->base.path), "%s", path);
    hy_prng_seed(&m->prng, seed);
    return &m->base;
}

/* ---- crashes
 * --------------------------------------------------------------------------------
 */

/* A torn write: each 512-byte sector it touches reaches the disk or not,
 * independently. */
static void mem_apply_torn(struct disk_mem *m, struct mem_bytes *b, const struct mem_op *op)
{
    uint64_t pos = op->offset;
    uint64_t end = op->offset + op->len;
    while (pos < end) {
        uint64_t next = HY_MIN(end, (pos / MEM_SECTOR + 1) * MEM_SECTOR);
        if (hy_prng_chance(&m->prng, 1, 2)) {
            mem_bytes_write(b, pos, op->data + (pos - op->offset), (size_t)(next - pos));
        }
        pos = next;
    }
}

static void mem_crash_inode(struct disk_mem *m, struct mem_inode *ino,
                            enum disk_mem_crash_mode mode)
{
    for (size_t i = 0; i < ino->n_ops; i++) {
        const struct mem_op *op = &ino->ops[i];
        uint64_t fate = mode == DISK_CRASH_KEEP   ? 0
                        : mode == DISK_CRASH_DROP ? 1
                        : mode == DISK_CRASH_TEAR ? 2
                                                  : hy_prng_below(&m->prng, 3);
        if (op->kind == MEM_RESIZE && fate == 2) {
            fate = hy_prng_below(&m->prng, 2); /* a size change is never half done */
        }
        if (fate == 0 && op->kind == MEM_RESIZE) {
            mem_bytes_resize(&ino->dur, (size_t)op->size);
        } else if (fate == 0) {
            mem_bytes_write(&ino->dur, op->offset, op->data, op->len);
        } else if (fate == 2) {
            mem_apply_torn(m, &ino->dur, op);
        }
    }
    mem_inode_clear_ops(ino);
    mem_bytes_copy(&ino->cur, &ino->dur);
}

static void mem_crash_names(struct disk_mem *m, enum disk_mem_crash_mode mode)
{
    size_t keep = mode == DISK_CRASH_KEEP   ? m->n_dirops
                  : mode == DISK_CRASH_DROP ? 0
                                            : (size_t)hy_prng_below(&m->prng, m->n_dirops + 1);
    for (size_t i = 0; i < keep; i++) {
        const struct mem_dirop *op = &m->dirops[i];
        struct mem_name *e = mem_ns_find(&m->dur, op->name);
        if (op->kind == MEM_CREATE) {
            mem_ns_put(&m->dur, op->name, op->ino);
        } else if (op->kind == MEM_RENAME && e != NULL) {
            struct mem_inode *ino = e->ino;
            mem_ns_del(&m->dur, op->name);
            mem_ns_put(&m->dur, op->to, ino);
        } else if (op->kind == MEM_REMOVE) {
            mem_ns_del(&m->dur, op->name);
        }
    }
    m->n_dirops = 0;
    mem_ns_copy(&m->cur, &m->dur);
}

void disk_mem_crash(struct disk *d, enum disk_mem_crash_mode mode)
{
    struct disk_mem *m = mem_of(d);
    for (size_t i = 0; i < m->n_inodes; i++) {
        mem_crash_inode(m, m->inodes[i], mode);
    }
    mem_crash_names(m, mode);
    if (!m->dir_durable) {
        /* The directory's own name never reached its parent: after the reboot it is not
         * there, and the server makes a new, empty one. */
        m->dur.n = 0;
        m->cur.n = 0;
    }
    memset(m->fds, 0, sizeof(m->fds));
    mem_gc(m);
}

/* ---- test controls
 * -------------------------------------------------------------------------- */

void disk_mem_fail(struct disk *d, uint32_t op_mask, uint64_t nth, int status, int persistent)
{
    struct disk_mem *m = mem_of(d);
    HY_ASSERT(nth >= 1 && (status == HY_EIO || status == HY_ENOSPC));
    m->fail_mask = op_mask;
    m->fail_countdown = nth;
    m->fail_status = status;
    m->fail_persistent = persistent;
    m->fail_active = 0;
    m->fail_fired = 0;
}

void disk_mem_fail_clear(struct disk *d)
{
    struct disk_mem *m = mem_of(d);
    m->fail_mask = 0;
    m->fail_countdown = 0;
    m->fail_active = 0;
}

int disk_mem_fault_fired(const struct disk *d)
{
    return ((const struct disk_mem *)d)->fail_fired;
}

void disk_mem_set_capacity(struct disk *d, uint64_t bytes)
{
    mem_of(d)->capacity = bytes;
}

void disk_mem_set_latency(struct disk *d, uint32_t op_us_min, uint32_t op_us_max,
                          uint32_t sync_us_min, uint32_t sync_us_max)
{
    struct disk_mem *m = mem_of(d);
    HY_ASSERT(op_us_min <= op_us_max && sync_us_min <= sync_us_max);
    m->lat_op[0] = op_us_min;
    m->lat_op[1] = op_us_max;
    m->lat_sync[0] = sync_us_min;
    m->lat_sync[1] = sync_us_max;
}

uint64_t disk_mem_take_latency_us(struct disk *d)
{
    struct disk_mem *m = mem_of(d);
    uint64_t us = m->latency_us;
    m->latency_us = 0;
    return us;
}

uint64_t disk_mem_calls(const struct disk *d)
{
    return ((const struct disk_mem *)d)->calls;
}

uint64_t disk_mem_op_calls(const struct disk *d, enum disk_mem_op op)
{
    HY_ASSERT(op < DISK_OP_COUNT);
    return ((const struct disk_mem *)d)->op_calls[op];
}

int disk_mem_put_file(struct disk *d, const char *name, const uint8_t *buf, size_t len)
{
    struct disk_mem *m = mem_of(d);
    HY_ASSERT(strlen(name) < MEM_NAME_MAX);
    struct mem_name *e = mem_ns_find(&m->cur, name);
    struct mem_inode *ino = e != NULL ? e->ino : mem_inode_new(m);
    mem_ns_put(&m->cur, name, ino);
    mem_ns_put(&m->dur, name, ino);
    m->dir_durable = 1;
    mem_inode_clear_ops(ino);
    ino->cur.len = 0;
    mem_bytes_write(&ino->cur, 0, buf, len);
    mem_bytes_copy(&ino->dur, &ino->cur);
    return HY_OK;
}
