/*
 * files.c - whole files read and replaced durably for the engine (node_set_files): the
 * `aclfile` of ACL LOAD and ACL SAVE.
 */
#include "io/files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"

int io_file_read(const char *path, size_t max, struct hy_buf *out, char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "cannot open: %s", strerror(errno));
        return -1;
    }
    size_t total = 0;
    for (;;) {
        uint8_t *p = hy_buf_reserve(out, 65536);
        ssize_t n = read(fd, p, 65536);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(err, cap, "cannot read: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        out->len += (size_t)n;
        total += (size_t)n;
        if (total > max) {
            snprintf(err, cap, "larger than %zu bytes", max);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int io_file_write(const char *path, const uint8_t *data, size_t len, char *err, size_t cap)
{
    char tmp[4096], dir[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(err, cap, "path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, cap, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        snprintf(err, cap, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, cap, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        snprintf(err, cap, "cannot sync the directory of %s: %s", path, strerror(errno));
        if (dfd >= 0) {
            close(dfd);
        }
        return -1;
    }
    close(dfd);
    return 0;
}
