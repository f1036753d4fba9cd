#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"

void hy_log(const struct hy_log *log, enum hy_log_level level, const char *fmt, ...)
{
    if (log == NULL || log->write_cb == NULL || level < log->level) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log->write_cb(log->ctx, level, msg);
}

const char *hy_log_level_name(enum hy_log_level level)
{
    switch (level) {
    case HY_LOG_DEBUG: return "debug";
    case HY_LOG_INFO: return "info";
    case HY_LOG_WARN: return "warn";
    case HY_LOG_ERROR: return "error";
    }
    return "?";
}

int hy_log_level_parse(const char *name)
{
    if (strcmp(name, "debug") == 0) {
        return HY_LOG_DEBUG;
    }
    if (strcmp(name, "info") == 0) {
        return HY_LOG_INFO;
    }
    if (strcmp(name, "warn") == 0 || strcmp(name, "warning") == 0) {
        return HY_LOG_WARN;
    }
    if (strcmp(name, "error") == 0) {
        return HY_LOG_ERROR;
    }
    return -1;
}

void hy_log_format_json(struct hy_buf *out, const char *when, enum hy_log_level level,
                        const char *node, long pid, const char *msg)
{
    hy_buf_append_str(out, "{\"time\":");
    hy_buf_append_json_str(out, when);
    hy_buf_printf(out, ",\"level\":\"%s\",\"node\":", hy_log_level_name(level));
    hy_buf_append_json_str(out, node);
    hy_buf_printf(out, ",\"pid\":%ld,\"msg\":", pid);
    hy_buf_append_json_str(out, msg);
    hy_buf_append_str(out, "}");
}
