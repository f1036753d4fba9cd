#include "io/config_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "io/files.h"

struct yaml_reader {
    yaml_parser_t parser;
    const char *path;
    char *err;
    size_t cap;
    uint32_t line[CONFIG_SETTINGS_MAX]; /* where each setting was seen (1-based), 0 = not yet */
    uint32_t end[CONFIG_SETTINGS_MAX];  /* the line its value ends on (1-based) */
    size_t value_end;                   /* read_value: the line the value just read ends on */
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

/* The line (0-based) a value from start to end ends on: an end at column 0 of a later line
 * (a block scalar's, which takes its line break) ends on the line before. */
static size_t mark_line(yaml_mark_t start, yaml_mark_t end)
{
    return end.column == 0 && end.line > start.line ? end.line - 1 : end.line;
}

/* Reads a scalar, or a sequence of scalars joined with ',', into out. */
static int read_value(struct yaml_reader *r, yaml_event_t *first, struct hy_buf *out)
{
    r->value_end = mark_line(first->start_mark, first->end_mark);
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
            if (first->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE) {
                r->value_end = mark_line(first->start_mark, ev.end_mark); /* its "]" */
            } /* a block list's end event sits on the next setting's line: its last item's */
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
        r->value_end = mark_line(ev.start_mark, ev.end_mark);
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
            r->end[index] = (uint32_t)r->value_end + 1;
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

/* Reads the file at path into cfg (over what cfg holds), and into r where each setting is. */
static int load_into(struct yaml_reader *r, struct hy_config *cfg, const char *path, char *err,
                     size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return HY_ECONFIG;
    }
    memset(r, 0, sizeof(*r));
    r->path = path;
    r->err = err;
    r->cap = cap;
    yaml_parser_initialize(&r->parser);
    yaml_parser_set_input_file(&r->parser, f);
    int rc = read_document(r, cfg);
    yaml_parser_delete(&r->parser);
    fclose(f);
    return rc;
}

int config_load_file(struct hy_config *cfg, const char *path, char *err, size_t cap)
{
    struct yaml_reader *r = hy_xcalloc(1, sizeof(*r));
    int rc = load_into(r, cfg, path, err, cap);
    hy_free(r);
    if (rc == HY_OK) {
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", path);
    }
    return rc;
}

/* ---- CONFIG REWRITE ---------------------------------------------------------------------------
 *
 * As Redis's: the file keeps its comments, order and every line the running values agree
 * with; a setting whose running value differs from what the file gives it (the file's line,
 * or the default where the file has none: a CONFIG SET, or a flag that overrode the file) gets
 * the running value, on its own line where the file had one, else on a line appended at the
 * end. Secrets are never written: a secret the file holds stays as it is, one given otherwise
 * (a flag, CONFIG SET) is not copied into a file that may be readable. The new file is read
 * back before it replaces the old one, and must give every setting its running value. */

/* value as a YAML double-quoted scalar (any text reads back exactly). */
static void yaml_quote(struct hy_buf *out, const char *value)
{
    hy_buf_append_u8(out, '"');
    for (const unsigned char *p = (const unsigned char *)value; *p != 0; p++) {
        if (*p == '"' || *p == '\\') {
            hy_buf_append_u8(out, '\\');
            hy_buf_append_u8(out, *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\x%02x", *p);
            hy_buf_append(out, esc, strlen(esc));
        } else {
            hy_buf_append_u8(out, *p);
        }
    }
    hy_buf_append_u8(out, '"');
}

/* Whether setting i reads back from the file at path as it runs in cur (secrets: skipped). */
static int rewrite_matches(const struct hy_config *cur, const char *path, char *err, size_t cap)
{
    struct hy_config *back = hy_xcalloc(1, sizeof(*back));
    struct yaml_reader *r = hy_xcalloc(1, sizeof(*r));
    config_init(back);
    int rc = load_into(r, back, path, err, cap);
    if (rc == HY_OK) {
        config_derive(back);
        char a[4096], b[4096];
        for (size_t i = 0; i < config_count() && rc == HY_OK; i++) {
            if (config_is_secret(i)) {
                continue;
            }
            config_get(cur, i, a, sizeof(a));
            config_get(back, i, b, sizeof(b));
            if (strcmp(a, b) != 0) {
                snprintf(err, cap, "%s reads back '%s' as '%s', not '%s'", path, config_name(i), b,
                         a);
                rc = HY_ECONFIG;
            }
        }
    }
    config_free(back);
    hy_free(back);
    hy_free(r);
    return rc;
}

int config_rewrite_file(const struct hy_config *cur, char *err, size_t cap)
{
    const char *path = cur->config_file;
    if (path[0] == 0) {
        snprintf(err, cap, "The server is running without a config file");
        return HY_ECONFIG;
    }
    struct hy_buf text;
    hy_buf_init(&text);
    if (io_file_read(path, 64u << 20, &text, err, cap) != 0) {
        hy_buf_free(&text);
        return HY_ECONFIG;
    }
    /* What the file gives each setting, and on which lines. */
    struct hy_config *file = hy_xcalloc(1, sizeof(*file));
    struct yaml_reader *r = hy_xcalloc(1, sizeof(*r));
    config_init(file);
    int rc = load_into(r, file, path, err, cap);
    if (rc == HY_OK) {
        config_derive(file);
    }
    /* The new line of each setting that changes (NULL: none), and the lines it replaces. */
    size_t count = config_count();
    char **line_of = hy_xcalloc(count, sizeof(*line_of));
    for (size_t i = 0; i < count && rc == HY_OK; i++) {
        char now[4096], was[4096];
        config_get(cur, i, now, sizeof(now));
        config_get(file, i, was, sizeof(was));
        if (config_is_secret(i) || strcmp(now, was) == 0) {
            continue;
        }
        struct hy_buf l;
        hy_buf_init(&l);
        hy_buf_append(&l, config_name(i), strlen(config_name(i)));
        hy_buf_append(&l, ": ", 2);
        yaml_quote(&l, now);
        hy_buf_append_u8(&l, 0);
        line_of[i] = (char *)l.data;
    }
    struct hy_buf out;
    hy_buf_init(&out);
    if (rc == HY_OK) {
        /* Line by line (1-based numbers, as the reader keeps them). */
        size_t pos = 0, lineno = 1;
        while (pos < text.len) {
            const uint8_t *nl = memchr(text.data + pos, '\n', text.len - pos);
            size_t len = nl != NULL ? (size_t)(nl - (text.data + pos)) + 1 : text.len - pos;
            int skip = 0;
            for (size_t i = 0; i < count; i++) {
                if (line_of[i] == NULL || r->line[i] == 0) {
                    continue;
                }
                if (lineno == r->line[i]) {
                    hy_buf_append(&out, line_of[i], strlen(line_of[i]));
                    hy_buf_append_u8(&out, '\n');
                }
                if (lineno >= r->line[i] && lineno <= r->end[i]) {
                    skip = 1; /* its old value's lines */
                }
            }
            if (!skip) {
                hy_buf_append(&out, text.data + pos, len);
                if (nl == NULL) {
                    hy_buf_append_u8(&out, '\n');
                }
            }
            pos += len;
            lineno++;
        }
        int header = 0;
        for (size_t i = 0; i < count; i++) {
            if (line_of[i] != NULL && r->line[i] == 0) {
                if (!header) {
                    const char *h = "# Added by CONFIG REWRITE\n";
                    hy_buf_append(&out, h, strlen(h));
                    header = 1;
                }
                hy_buf_append(&out, line_of[i], strlen(line_of[i]));
                hy_buf_append_u8(&out, '\n');
            }
        }
        /* Checked before it replaces the file: written beside it, read back, then renamed. */
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.rewrite", path);
        if (io_file_write(tmp, out.data, out.len, err, cap) != 0) {
            rc = HY_ECONFIG;
        } else if (rewrite_matches(cur, tmp, err, cap) != HY_OK) {
            unlink(tmp);
            rc = HY_ECONFIG;
        } else if (io_file_write(path, out.data, out.len, err, cap) != 0) {
            unlink(tmp);
            rc = HY_ECONFIG;
        } else {
            unlink(tmp);
        }
    }
    for (size_t i = 0; i < count; i++) {
        hy_free(line_of[i]);
    }
    hy_free(line_of);
    hy_buf_free(&out);
    hy_buf_free(&text);
    config_free(file);
    hy_free(file);
    hy_free(r);
    return rc;
}
