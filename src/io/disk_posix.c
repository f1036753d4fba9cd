/*
 * disk_posix.c - the disk interface on real files (disk.h).
 *
 * Every name is resolved against one directory descriptor (openat, renameat,
 * unlinkat), so a disk cannot wander outside its directory. sync is fdatasync:
 * the log's files never change size in the hot path (segments are
 * preallocated), so the inode's metadata need not be flushed on each append.
 */
#include "io/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/assert.h"

#define DISK_POSIX_FILES_MAX 64
#define DISK_ZERO_CHUNK      (256 * 1024)

struct disk_posix {
    struct disk base; /* first: the ops receive a struct disk * */
    int dir_fd;
};

static int disk_posix_status(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT: return HY_ENOSPC;
    case ENOENT: return HY_ENOTFOUND;
    case EEXIST: return HY_EEXIST;
    default: return HY_EIO;
    }
}

static int disk_posix_dir(struct disk *d)
{
    return ((struct disk_posix *)d)->dir_fd;
}

static int disk_posix_fopen(struct disk *d, const char *name, int flags, int *fd_out)
{
    HY_ASSERT(strchr(name, '/') == NULL);
    int oflags = O_RDWR | O_CLOEXEC;
    if (flags & DISK_CREATE) {
        oflags |= O_CREAT;
    }
    if (flags & DISK_EXCL) {
        oflags |= O_EXCL;
    }
    int fd = openat(disk_posix_dir(d), name, oflags, 0644);
    if (fd < 0) {
        return disk_posix_status(errno);
    }
    *fd_out = fd;
    return HY_OK;
}

static void disk_posix_close(struct disk *d, int fd)
{
    (void)d;
    close(fd);
}

static int disk_posix_pwrite_all(int fd, uint64_t offset, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return disk_posix_status(errno);
        }
        HY_ASSERT(n > 0);
        buf += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return HY_OK;
}

static int disk_posix_write(struct disk *d, int fd, uint64_t offset, const uint8_t *buf, size_t len)
{
    (void)d;
    return disk_posix_pwrite_all(fd, offset, buf, len);
}

static int disk_posix_size(struct disk *d, int fd, uint64_t *size_out)
{
    (void)d;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return disk_posix_status(errno);
    }
    *size_out = (uint64_t)st.st_size;
    return HY_OK;
}

/* The blocks only (fallocate's unwritten extents; a file system without fallocate reserves
 * nothing and the writes find out), and the size. */
static int disk_posix_reserve(struct disk *d, int fd, uint64_t size)
{
    uint64_t from;
    int rc = disk_posix_size(d, fd, &from);
    if (rc != HY_OK || from >= size) {
        return rc;
    }
    int err = posix_fallocate(fd, (off_t)from, (off_t)(size - from));
    if (err == EINVAL || err == EOPNOTSUPP) {
        err = ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
    }
    return err != 0 ? disk_posix_status(err) : HY_OK;
}

/* Reserves the blocks (so ENOSPC shows here, not in a later append), then
 * writes real zeros: blocks that fallocate only reserved are "unwritten"
 * extents, and the first write into one makes fdatasync journal an extent
 * conversion, which is what preallocation is meant to avoid. */
static int disk_posix_preallocate(struct disk *d, int fd, uint64_t size)
{
    uint64_t from;
    int rc = disk_posix_size(d, fd, &from);
    if (rc != HY_OK || from >= size) {
        return rc;
    }
    /* Filesystems without fallocate (EOPNOTSUPP, EINVAL) still get the zeros
     * written below. */
    int err = posix_fallocate(fd, (off_t)from, (off_t)(size - from));
    if (err != 0 && err != EINVAL && err != EOPNOTSUPP) {
        return disk_posix_status(err);
    }
    uint8_t *zeros = hy_xcalloc(1, DISK_ZERO_CHUNK);
    for (uint64_t off = from; off < size && rc == HY_OK;) {
        size_t n = (size_t)HY_MIN((uint64_t)DISK_ZERO_CHUNK, size - off);
        rc = disk_posix_pwrite_all(fd, off, zeros, n);
        off += n;
    }
    hy_free(zeros);
    return rc;
}

static int disk_posix_sync(struct disk *d, int fd)
{
    (void)d;
    if (fdatasync(fd) != 0) {
        return disk_posix_status(errno);
    }
    return HY_OK;
}

static int disk_posix_read(struct disk *d, int fd, uint64_t offset, uint8_t *buf, size_t len,
                           size_t *read_out)
{
    (void)d;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return disk_posix_status(errno);
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    *read_out = done;
    return HY_OK;
}

static int disk_posix_truncate(struct disk *d, int fd, uint64_t size)
{
    (void)d;
    if (ftruncate(fd, (off_t)size) != 0) {
        return disk_posix_status(errno);
    }
    return HY_OK;
}

static int disk_posix_rename(struct disk *d, const char *from, const char *to)
{
    HY_ASSERT(strchr(from, '/') == NULL && strchr(to, '/') == NULL);
    if (renameat(disk_posix_dir(d), from, disk_posix_dir(d), to) != 0) {
        return disk_posix_status(errno);
    }
    return HY_OK;
}

static int disk_posix_remove(struct disk *d, const char *name)
{
    HY_ASSERT(strchr(name, '/') == NULL);
    if (unlinkat(disk_posix_dir(d), name, 0) != 0) {
        return disk_posix_status(errno);
    }
    return HY_OK;
}

static int disk_posix_sync_dir(struct disk *d)
{
    if (fsync(disk_posix_dir(d)) != 0) {
        return disk_posix_status(errno);
    }
    return HY_OK;
}

/* fsync of the directory that holds `path` ("." for a relative name without a '/'). */
static int fsync_parent_of(const char *path)
{
    char parent[PATH_MAX];
    if (snprintf(parent, sizeof(parent), "%s", path) >= (int)sizeof(parent)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *end = parent + strlen(parent);
    while (end > parent + 1 && end[-1] == '/') { /* "a/b/" names b */
        *--end = '\0';
    }
    char *slash = strrchr(parent, '/');
    if (slash == NULL) {
        snprintf(parent, sizeof(parent), ".");
    } else if (slash == parent) {
        parent[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

static int disk_posix_sync_parent(struct disk *d)
{
    if (fsync_parent_of(d->path) != 0) {
        return disk_posix_status(errno);
    }
    return HY_OK;
}

static int disk_posix_list(struct disk *d, char ***names_out, size_t *count_out)
{
    int fd = openat(disk_posix_dir(d), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return disk_posix_status(errno);
    }
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return disk_posix_status(errno);
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        names = hy_xrealloc(names, (count + 1) * sizeof(*names));
        names[count++] = hy_xstrdup(de->d_name);
    }
    closedir(dir);
    *names_out = names;
    *count_out = count;
    return HY_OK;
}

static void disk_posix_destroy(struct disk *d)
{
    close(disk_posix_dir(d));
    hy_free(d);
}

static const struct disk_ops disk_posix_ops = {
    .open = disk_posix_fopen,
    .close = disk_posix_close,
    .preallocate = disk_posix_preallocate,
    .reserve = disk_posix_reserve,
    .write = disk_posix_write,
    .sync = disk_posix_sync,
    .read = disk_posix_read,
    .size = disk_posix_size,
    .truncate = disk_posix_truncate,
    .rename = disk_posix_rename,
    .remove = disk_posix_remove,
    .sync_dir = disk_posix_sync_dir,
    .sync_parent = disk_posix_sync_parent,
    .list = disk_posix_list,
    .destroy = disk_posix_destroy,
};

/* Creates one directory and makes its name durable in its parent. A directory that exists
 * already may be one a killed process made and never synced, so its parent is synced too,
 * but there a failure (say, an unreadable ancestor such as /var) is not an error. */
static int mkdir_durable(const char *path)
{
    if (mkdir(path, 0755) != 0) {
        if (errno != EEXIST) {
            return -1;
        }
        (void)fsync_parent_of(path);
        return 0;
    }
    return fsync_parent_of(path);
}

int disk_posix_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/' && p[-1] != '/') {
            *p = '\0';
            if (mkdir_durable(tmp) != 0) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir_durable(tmp);
}

int disk_posix_write_file(const char *dir, const char *name, const void *buf, size_t len)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp) ||
        snprintf(final, sizeof(final), "%s/%s", dir, name) >= (int)sizeof(final)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    if (disk_posix_pwrite_all(fd, 0, buf, len) != HY_OK || fsync(fd) != 0) {
        int err = errno;
        close(fd);
        unlink(tmp);
        errno = err;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, final) != 0) {
        return -1;
    }
    /* The rename is only durable once the directory holding both names is. */
    return fsync_parent_of(final);
}

int disk_posix_open(const char *path, struct disk **disk_out)
{
    if (disk_posix_mkdirs(path) != 0) {
        return disk_posix_status(errno);
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return disk_posix_status(errno);
    }
    struct disk_posix *p = hy_xcalloc(1, sizeof(*p));
    p->base.ops = &disk_posix_ops;
    p->base.sync_concurrent = 1; /* fdatasync and pwrite on one file are safe together */
    snprintf(p->base.path, sizeof(p->base.path), "%s", path);
    p->dir_fd = fd;
    *disk_out = &p->base;
    return HY_OK;
}
