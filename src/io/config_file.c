#include "io/config_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "common/buf.h"

struct yaml_reader {
    yaml_parser_t parser;
    const char *path;
    char *err;
    size_t cap;
    uint32_t line[CONFIG_SETTINGS_MAX]; /* where each setting was seen (1-based), 0 = not yet */
};

static int reader_fail(struct yaml_reader *r, size_t line, const char *reason, const char *what)
{
    snprintf(r->err, r->cap, "%s:%zu: %s%s", r->path, line + 1, reason, what ? what : "");
    return HY_ECONFIG;
}

static int reader_next(struct yaml_reader *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev)) {
        return reader_fail(r, r->parser.problem_mark.line,
                           "invalid YAML: ", r->parser.problem ? r->parser.problem : "parse error");
    }
    return HY_OK;
}

/* A plain scalar that spans lines is a line indented by mistake: YAML folds it into the value
 * above ("hz: 10" then "  maxmemory: 1mb" reads as hz = "10 maxmemory: 1mb"). Report that
 * line, not the setting it was folded into. Quoted values may span lines on purpose. */
static int check_one_line(struct yaml_reader *r, const yaml_event_t *ev)
{
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        ev->end_mark.line > ev->start_mark.line) {
        return reader_fail(r, ev->start_mark.line + 1,
                           "this line is indented, so YAML reads it as part of the value above "
                           "(every setting starts at column 1)",
                           NULL);
    }
    return HY_OK;
}

/* Reads a scalar, or a sequence of scalars joined with ',', into out. */
static int read_value(struct yaml_reader *r, yaml_event_t *first, struct hy_buf *out)
{
    if (first->type == YAML_SCALAR_EVENT) {
        hy_buf_append(out, first->data.scalar.value, first->data.scalar.length);
        return check_one_line(r, first);
    }
    if (first->type != YAML_SEQUENCE_START_EVENT) {
        return reader_fail(r, first->start_mark.line, "expected a value", NULL);
    }
    for (;;) {
        yaml_event_t ev;
        if (reader_next(r, &ev) != HY_OK) {
            return HY_ECONFIG;
        }
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return HY_OK;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            size_t line = ev.start_mark.line;
            yaml_event_delete(&ev);
            return reader_fail(r, line, "a list may hold only plain values", NULL);
        }
        if (out->len > 0) {
            hy_buf_append_u8(out, ',');
        }
        hy_buf_append(out, ev.data.scalar.value, ev.data.scalar.length);
        int rc = check_one_line(r, &ev);
        yaml_event_delete(&ev);
        if (rc != HY_OK) {
            return rc;
        }
    }
}

static int read_pair(struct yaml_reader *r, struct hy_config *cfg, yaml_event_t *key)
{
    char name[128];
    snprintf(name, sizeof(name), "%s", (const char *)key->data.scalar.value);
    size_t line = key->start_mark.line;
    yaml_event_t ev;
    if (reader_next(r, &ev) != HY_OK) {
        return HY_ECONFIG;
    }
    struct hy_buf value;
    hy_buf_init(&value);
    int rc = read_value(r, &ev, &value);
    yaml_event_delete(&ev);
    if (rc == HY_OK) {
        hy_buf_append_u8(&value, 0);
        char reason[160];
        int index = config_index(name);
        if (index >= 0 && r->line[index] != 0) {
            char what[200];
            snprintf(what, sizeof(what), "'%s' (first at line %u)", name, r->line[index]);
            hy_buf_free(&value);
            return reader_fail(r, line, "duplicate setting ", what);
        }
        rc = config_set(cfg, name, (const char *)value.data, 0, reason);
        if (rc == HY_OK) {
            r->line[index] = (uint32_t)line + 1;
            cfg->file_line[index] = (uint32_t)line + 1;
        } else if (rc == HY_ENOTFOUND) {
            rc = reader_fail(r, line, reason, NULL);
        } else if (rc != HY_OK) {
            char what[320];
            snprintf(what, sizeof(what), "'%s': %s", name, reason);
            rc = reader_fail(r, line, "invalid value for ", what);
        }
    }
    hy_buf_free(&value);
    return rc;
}

/* Walks the top-level mapping: scalar key, value, until its end. */
static int read_mapping(struct yaml_reader *r, struct hy_config *cfg)
{
    for (;;) {
        yaml_event_t ev;
        if (reader_next(r, &ev) != HY_OK) {
            return HY_ECONFIG;
        }
        int rc = HY_OK;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return HY_OK;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            rc = reader_fail(r, ev.start_mark.line, "expected a setting name", NULL);
        } else {
            rc = read_pair(r, cfg, &ev);
        }
        yaml_event_delete(&ev);
        if (rc != HY_OK) {
            return rc;
        }
    }
}

static int read_document(struct yaml_reader *r, struct hy_config *cfg)
{
    for (;;) {
        yaml_event_t ev;
        if (reader_next(r, &ev) != HY_OK) {
            return HY_ECONFIG;
        }
        yaml_event_type_t type = ev.type;
        size_t line = ev.start_mark.line;
        yaml_event_delete(&ev);
        switch (type) {
        case YAML_STREAM_END_EVENT: return HY_OK;
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT: continue;
        case YAML_MAPPING_START_EVENT:
            if (read_mapping(r, cfg) != HY_OK) {
                return HY_ECONFIG;
            }
            continue;
        case YAML_SCALAR_EVENT:
            /* An empty document parses as one empty scalar: accept an empty file. */
            continue;
        default: return reader_fail(r, line, "expected a mapping of setting: value", NULL);
        }
    }
}

int config_load_file(struct hy_config *cfg, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return HY_ECONFIG;
    }
    struct yaml_reader r = {.path = path, .err = err, .cap = cap};
    yaml_parser_initialize(&r.parser);
    yaml_parser_set_input_file(&r.parser, f);
    int rc = read_document(&r, cfg);
    yaml_parser_delete(&r.parser);
    fclose(f);
    if (rc == HY_OK) {
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", path);
    }
    return rc;
}
