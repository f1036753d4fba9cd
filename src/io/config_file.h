/*
 * config_file.h - loads a YAML config file (libyaml) into struct hy_config.
 *
 * The file is one mapping of setting names to scalar values (a list is accepted for
 * `bootstrap` and joined with commas). Every value goes through config_set(), the same check
 * as flags and CONFIG SET. Any problem fails with "FILE:LINE: reason".
 */
#ifndef HY_IO_CONFIG_FILE_H
#define HY_IO_CONFIG_FILE_H

#include <stddef.h>

#include "common/status.h"
#include "node/config.h"

/* Returns HY_OK, or HY_ECONFIG with "path:line: reason" in err (cap bytes). */
int config_load_file(struct hy_config *cfg, const char *path, char *err, size_t cap) HY_MUST_CHECK;

/* CONFIG REWRITE: the file cur was loaded from (cur->config_file) gets cur's running values
 * (config_file.c says how), durably. HY_OK, or HY_ECONFIG with the reason in err (without a
 * config file: "The server is running without a config file", Redis's words). */
int config_rewrite_file(const struct hy_config *cur, char *err, size_t cap) HY_MUST_CHECK;

#endif
