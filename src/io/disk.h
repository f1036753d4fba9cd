/*
 * disk.h - the disk the write-ahead log runs on: a small table of file
 * operations.
 *
 * The log (wal.c) never calls the operating system directly; it goes through a
 * struct disk, so the same code runs on real files (disk_posix.c) and on the
 * simulated disk of halyard-sim and the unit tests (disk_mem.c), which loses
 * unsynced writes on a crash and injects faults.
 *
 * A disk is one directory: every name is a plain file name inside it (no '/').
 * Files are referred to by small non-negative handles. Every operation returns
 * HY_OK or a status: HY_ENOSPC (no space: nothing was lost, the operation may
 * succeed later), HY_ENOTFOUND, HY_EEXIST, or HY_EIO (anything else).
 * Durability follows POSIX: written bytes survive a crash only after sync() of
 * the file returned HY_OK; a created, renamed or removed name only after
 * sync_dir() returned HY_OK; and the directory itself, when it was just created,
 * only after sync_parent() (or its creator's fsync of the parent) returned HY_OK.
 */
#ifndef HY_DISK_H
#define HY_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/status.h"

enum disk_open_flags {
    DISK_CREATE = 1, /* create the file when it does not exist */
    DISK_EXCL = 2,   /* with DISK_CREATE: fail with HY_EEXIST when it exists */
};

struct disk;

struct disk_ops {
    int (*open)(struct disk *d, const char *name, int flags, int *fd_out);
    void (*close)(struct disk *d, int fd);
    /* Makes [0, size) of the file allocated and zero-filled beyond its current
     * end, so that a later write + sync inside it is an overwrite. HY_ENOSPC when
     * the space is not there. */
    int (*preallocate)(struct disk *d, int fd, uint64_t size);
    /* Makes the file's size `size`, with its blocks allocated where the file system can
     * (nothing is written: cheaper than preallocate, for a file written once whole): HY_ENOSPC
     * here rather than in a later write inside it. */
    int (*reserve)(struct disk *d, int fd, uint64_t size);
    int (*write)(struct disk *d, int fd, uint64_t offset, const uint8_t *buf, size_t len);
    /* fdatasync. HY_EIO here is fatal to the caller: never retry a failed sync.
     */
    int (*sync)(struct disk *d, int fd);
    /* Reads up to len bytes; *read_out < len only at the end of the file. */
    int (*read)(struct disk *d, int fd, uint64_t offset, uint8_t *buf, size_t len,
                size_t *read_out);
    int (*size)(struct disk *d, int fd, uint64_t *size_out);
    int (*truncate)(struct disk *d, int fd, uint64_t size);
    int (*rename)(struct disk *d, const char *from, const char *to);
    int (*remove)(struct disk *d, const char *name);
    int (*sync_dir)(struct disk *d);
    /* fsync of the parent directory: makes the directory's own name durable. A directory
     * created by disk_posix_open is already (disk_posix_mkdirs); the log calls this once at
     * open anyway, so that no way of creating its directory can leave it vanishing in a
     * power cut with everything in it (disk_mem models exactly that). */
    int (*sync_parent)(struct disk *d);
    /* Lists the names in the directory (unsorted, without "." and ".."). On
     * success *names_out is an array of *count_out strings, owned by the caller:
     * free it with disk_names_free. */
    int (*list)(struct disk *d, char ***names_out, size_t *count_out);
    void (*destroy)(struct disk *d);
};

/* Embedded first in each implementation's struct. `path` names the directory in
 * messages. */
struct disk {
    const struct disk_ops *ops;
    char path[256];
    /* 1 when sync may run on one thread while write runs on another on the same open file
     * (a real file system); 0 for the simulated disk, which is single-threaded. */
    int sync_concurrent;
};

/* Frees what disk_ops.list returned. */
static inline void disk_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        hy_free(names[i]);
    }
    hy_free(names);
}

/* Frees the disk and closes what it holds open. */
static inline void disk_destroy(struct disk *d)
{
    d->ops->destroy(d);
}

/*
 * Opens the directory `path` (created when missing) as a disk. Returns HY_OK
 * and the disk in *disk_out (free it with disk_destroy), HY_ENOSPC, or HY_EIO.
 * Defined in disk_posix.c.
 */
int disk_posix_open(const char *path, struct disk **disk_out) HY_MUST_CHECK;

/*
 * The one way the server creates directories and small files on real paths (outside a
 * disk), so that no call site can forget a directory fsync (docs/disk-format.md, "Names").
 *
 * disk_posix_mkdirs: mkdir -p of `path`; after each directory it creates, its parent is
 * fsync'd, so the whole chain of new names is durable when it returns 0. -1 and errno on
 * failure.
 *
 * disk_posix_write_file: replaces dir/name with `len` bytes atomically and durably: a
 * temporary file is written and fsync'd, renamed over `name`, and `dir` is fsync'd. 0, or
 * -1 and errno. `dir` must exist durably (disk_posix_mkdirs).
 */
int disk_posix_mkdirs(const char *path) HY_MUST_CHECK;
int disk_posix_write_file(const char *dir, const char *name, const void *buf,
                          size_t len) HY_MUST_CHECK;

#endif
