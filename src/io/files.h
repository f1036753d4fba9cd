/*
 * files.h - whole files for the engine (node.h node_set_files): read, and replaced durably.
 */
#ifndef HY_IO_FILES_H
#define HY_IO_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Appends the file to out (at most max bytes, else an error). 0, or -1 with err. */
int io_file_read(const char *path, size_t max, struct hy_buf *out, char *err, size_t cap);
/* Replaces the file with data: a temporary beside it (mode 600), fsync, rename, directory
 * fsync, so a crash leaves the old file or the new one. 0, or -1 with err. */
int io_file_write(const char *path, const uint8_t *data, size_t len, char *err, size_t cap);

#endif
