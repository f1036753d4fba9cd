/*
 * main.c - the halyard daemon: settings from defaults, then a YAML file (--config), then
 * flags; logging to stderr; the data directory; then the libuv shell until SIGINT/SIGTERM.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/version.h"
#include "io/config_file.h"
#include "io/disk.h"
#include "io/durable.h"
#include "io/server.h"
#include "node/config.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: halyard [--config FILE] [--SETTING VALUE]...\n"
                 "       halyard --repair DATA-DIR   (cut a damaged log after its last good "
                 "record)\n\n"
                 "Every setting is also a key of the YAML config file; flags win over the file.\n"
                 "Settings:\n");
    struct hy_config cfg;
    config_init(&cfg);
    for (size_t i = 0; i < config_count(); i++) {
        char value[256];
        config_get(&cfg, i, value, sizeof(value));
        if (strcmp(config_name(i), "http-port") == 0) {
            snprintf(value, sizeof(value), "port + 1000; 0 = no HTTP"); /* config_derive */
        }
        fprintf(out, "  --%-28s (default: %s)\n", config_name(i), value[0] ? value : "\"\"");
    }
    config_free(&cfg);
}

/* The shell's log sink: timestamped lines on stderr, filtered by the live log-level setting
 * (so CONFIG SET log-level takes effect at once). */
static void log_write_cb(void *ctx, enum hy_log_level level, const char *msg)
{
    const struct hy_config *cfg = ctx;
    if ((int64_t)level < cfg->log_level) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32], stamp[48];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof(stamp), "%s.%03ldZ", when, ts.tv_nsec / 1000000);
    if (cfg->log_format == CONFIG_LOG_JSON) {
        struct hy_buf line;
        hy_buf_init(&line);
        hy_log_format_json(&line, stamp, level, cfg->node_id, (long)getpid(), msg);
        hy_buf_append_u8(&line, '\n');
        fwrite(line.data, 1, line.len, stderr); /* one write: lines from threads never mix */
        hy_buf_free(&line);
        return;
    }
    fprintf(stderr, "%s %ld [%s] %s\n", stamp, (long)getpid(), hy_log_level_name(level), msg);
}

/* Finds --config first so that the other flags override the file whatever their order. */
static int load_config_file(int argc, char **argv, struct hy_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[i + 1];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
        if (path != NULL) {
            char err[512];
            if (config_load_file(cfg, path, err, sizeof(err)) != HY_OK) {
                fprintf(stderr, "halyard: invalid config: %s\n", err);
                return 0;
            }
        }
    }
    return 1;
}

static int apply_flags(int argc, char **argv, struct hy_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "halyard: unexpected argument '%s' (see --help)\n", argv[i]);
            return 0;
        }
        char name[128];
        const char *value;
        const char *eq = strchr(argv[i], '=');
        if (eq != NULL) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - argv[i] - 2), argv[i] + 2);
            value = eq + 1;
        } else if (i + 1 < argc) {
            snprintf(name, sizeof(name), "%s", argv[i] + 2);
            value = argv[++i];
        } else {
            fprintf(stderr, "halyard: option %s needs a value (see --help)\n", argv[i]);
            return 0;
        }
        if (strcmp(name, "config") == 0) {
            continue;
        }
        char err[160];
        int index = config_index(name);
        if (index >= 0) {
            cfg->file_line[index] = 0; /* the flag wins: blame it, not the file */
        }
        int rc = config_set(cfg, name, value, 0, err);
        if (rc != HY_OK) {
            fprintf(stderr, "halyard: --%s: %s\n", name,
                    rc == HY_ENOTFOUND ? "unknown option" : err);
            return 0;
        }
    }
    return 1;
}

/* Settings that cannot work together stop the start, naming the file and line of the setting
 * to change when it came from the config file. */
static int check_config(const struct hy_config *cfg)
{
    char err[320];
    int blame;
    if (config_check(cfg, err, sizeof(err), &blame) == HY_OK) {
        return 1;
    }
    if (blame >= 0 && cfg->file_line[blame] != 0) {
        fprintf(stderr, "halyard: invalid config: %s:%u: %s\n", cfg->config_file,
                cfg->file_line[blame], err);
    } else {
        fprintf(stderr, "halyard: invalid config: %s\n", err);
    }
    return 0;
}

/* glibc raises its mmap and trim thresholds for good once a large block (a snapshot, a burst's
 * buffers) is freed, up to 32 MiB and 64 MiB: from then on the heap is never trimmed, and the
 * pages that a pipelined load's transient copies freed between the keys stay resident. Fixed
 * at glibc's initial 128 KiB, RSS per small collection fell from 1.4-2.3x Redis's to 1.2-1.4x
 * (docs/performance.md "Memory per key"; issue 13). */
static void malloc_tune(void)
{
#ifdef __GLIBC__
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
}

int main(int argc, char **argv)
{
    malloc_tune();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("halyard %s\n", HY_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--repair") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "usage: halyard --repair DATA-DIR\n");
                return 2;
            }
            return io_durable_repair(argv[i + 1]);
        }
    }
    static struct hy_config cfg;
    config_init(&cfg);
    if (!load_config_file(argc, argv, &cfg) || !apply_flags(argc, argv, &cfg)) {
        return 2;
    }
    config_derive(&cfg);
    if (!check_config(&cfg)) {
        return 2;
    }
    cfg.pid = (long)getpid();
    char exe[PATH_MAX];
    snprintf(cfg.executable, sizeof(cfg.executable), "%s",
             realpath(argv[0], exe) != NULL ? exe : argv[0]);
    struct hy_log log = {.level = HY_LOG_DEBUG, .ctx = &cfg, .write_cb = log_write_cb};
    if (disk_posix_mkdirs(cfg.data_dir) != 0) {
        hy_log(&log, HY_LOG_ERROR, "cannot create data dir %s: %s", cfg.data_dir, strerror(errno));
        return 1;
    }
    int rc = io_server_run(&cfg, &log);
    config_free(&cfg);
    return rc;
}
