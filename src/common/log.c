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

/* A cluster event's line is "event {...}", the object events.c built (its own JSON, with a
 * "type":"NAME" member right after id and time): its type, or 0 when msg is not one. */
static size_t event_type(const char *msg, const char **type)
{
    static const char prefix[] = "event {";
    if (strncmp(msg, prefix, sizeof(prefix) - 1) != 0) {
        return 0;
    }
    const char *t = strstr(msg, "\"type\":\"");
    if (t == NULL) {
        return 0;
    }
    t += 8;
    size_t len = strcspn(t, "\"\\");
    if (t[len] != '"') {
        return 0;
    }
    *type = t;
    return len;
}

void hy_log_format_json(struct hy_buf *out, const char *when, enum hy_log_level level,
                        const char *node, long pid, const char *msg)
{
    hy_buf_append_str(out, "{\"time\":");
    hy_buf_append_json_str(out, when);
    hy_buf_printf(out, ",\"level\":\"%s\",\"node\":", hy_log_level_name(level));
    hy_buf_append_json_str(out, node);
    /* Every line names its event: a cluster event's type with the event as its fields, else
     * "log" with none, so that a log shipper can filter on one key. */
    const char *type = NULL;
    size_t type_len = event_type(msg, &type);
    hy_buf_append_str(out, ",\"event\":");
    if (type_len > 0) {
        hy_buf_printf(out, "\"%.*s\",\"fields\":%s", (int)type_len, type, msg + 6);
    } else {
        hy_buf_append_str(out, "\"log\",\"fields\":{}");
    }
    hy_buf_printf(out, ",\"pid\":%ld,\"msg\":", pid);
    hy_buf_append_json_str(out, msg);
    hy_buf_append_str(out, "}");
}
