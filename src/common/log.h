/*
 * log.h - a leveled logger reached through an injected callback.
 *
 * The cores never write to a file or read a clock: they hold a `const struct hy_log *` handed
 * in at init and call hy_log(). The shell's callback adds the timestamp and writes the line;
 * the simulator's callback prefixes simulated time and node id.
 */
#ifndef HY_LOG_H
#define HY_LOG_H

enum hy_log_level { HY_LOG_DEBUG, HY_LOG_INFO, HY_LOG_WARN, HY_LOG_ERROR };

struct hy_log {
    enum hy_log_level level; /* messages below this level are dropped */
    void *ctx;
    /* `msg` is borrowed for the call and has no trailing newline. */
    void (*write_cb)(void *ctx, enum hy_log_level level, const char *msg);
};

void hy_log(const struct hy_log *log, enum hy_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *hy_log_level_name(enum hy_log_level level);
/* Parses "debug", "info", "warn"/"warning", "error"; returns -1 when unknown. */
int hy_log_level_parse(const char *name);

/* One line of `log-format: json` (no newline): {"time":..,"level":..,"node":..,"pid":..,
 * "msg":..} with every string escaped. `when` is an RFC 3339 UTC time. */
struct hy_buf;
void hy_log_format_json(struct hy_buf *out, const char *when, enum hy_log_level level,
                        const char *node, long pid, const char *msg);

#endif
