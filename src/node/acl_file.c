/*
 * acl_file.c - `aclfile`, ACL LOAD and ACL SAVE (Redis's ACL file: one "user NAME RULE..." per
 * line), over replicated users (docs/security.md "ACL users").
 *
 * The file belongs to the node it is configured on; the users belong to the cluster. ACL LOAD
 * reads this node's file, checks every line (nothing changes if one is wrong, as in Redis),
 * hashes clear passwords here, and sends the whole set as one write, HY.ACLLOAD, which goes to
 * the metadata group's leader like any write and replaces every user at one point of the log
 * (STORE_OP_ACL_LOAD). ACL SAVE writes this node's replica of the users to its file. A node
 * started with `aclfile` loads the file into the cluster once the metadata group has a leader,
 * as Redis loads it at start: changes made since by ACL SETUSER are replaced unless saved.
 *
 * The node touches no file itself: the shell lends a reader and a writer (node_set_files).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/acl.h"

#define ACL_FILE_BYTES_MAX (16u << 20)

void node_set_files(struct hy_node *n, node_read_file_fn read, node_write_file_fn write)
{
    n->file_read = read;
    n->file_write = write;
    n->aclfile_pending = n->cfg->aclfile[0] != '\0' && read != NULL;
}

static void file_add(struct acl_file *f, const uint8_t *p, size_t len, uint32_t line)
{
    if (f->argc == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->args = hy_xrealloc(f->args, f->cap * sizeof(*f->args));
        f->lines = hy_xrealloc(f->lines, f->cap * sizeof(*f->lines));
    }
    f->args[f->argc] = (struct store_arg){p, len};
    f->lines[f->argc++] = line;
}

/* A string the file owns (a rule count, a hashed password). */
static const uint8_t *file_own(struct acl_file *f, const char *s)
{
    f->owned = hy_xrealloc(f->owned, (f->owned_count + 1) * sizeof(*f->owned));
    f->owned[f->owned_count] = hy_xstrdup(s);
    return (const uint8_t *)f->owned[f->owned_count++];
}

void acl_file_free(struct acl_file *f)
{
    for (size_t i = 0; i < f->owned_count; i++) {
        hy_free(f->owned[i]);
    }
    hy_free(f->owned);
    hy_free(f->args);
    hy_free(f->lines);
    memset(f, 0, sizeof(*f));
}

static int is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int acl_file_parse(const uint8_t *text, size_t len, struct acl_file *f, char *err, size_t cap)
{
    memset(f, 0, sizeof(*f));
    uint32_t line = 0;
    size_t pos = 0;
    while (pos < len) {
        line++;
        const uint8_t *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t i = pos, words = 0, count_at = 0;
        pos = end + 1;
        while (i < end) {
            while (i < end && is_blank(text[i])) {
                i++;
            }
            if (i == end || (words == 0 && text[i] == '#')) {
                break; /* the end, or a comment line */
            }
            size_t start = i;
            while (i < end && !is_blank(text[i])) {
                i++;
            }
            const uint8_t *w = text + start;
            size_t wlen = i - start;
            if (words == 0 && !(wlen == 4 && memcmp(w, "user", 4) == 0)) {
                snprintf(err, cap, "%u: line should start with the 'user' keyword", line);
                acl_file_free(f);
                return -1;
            }
            if (words == 1) {
                file_add(f, w, wlen, line);
                count_at = f->argc;
                file_add(f, NULL, 0, line); /* its rule count, filled below */
            } else if (words > 1) {
                file_add(f, w, wlen, line);
            }
            words++;
        }
        if (words == 1) {
            snprintf(err, cap, "%u: a user line needs a name", line);
            acl_file_free(f);
            return -1;
        }
        if (words >= 2) {
            char num[24];
            snprintf(num, sizeof(num), "%zu", words - 2);
            f->args[count_at] = (struct store_arg){file_own(f, num), strlen(num)};
        }
    }
    /* Each user once (Redis refuses a file that names one twice). */
    for (size_t i = 0; i < f->argc;) {
        const struct store_arg *a = &f->args[i];
        for (size_t j = 0; j < i;) {
            const struct store_arg *b = &f->args[j];
            if (a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0) {
                snprintf(err, cap, "%u: duplicate user '%.*s'", f->lines[i],
                         (int)HY_MIN(a->len, 128), (const char *)a->ptr);
                acl_file_free(f);
                return -1;
            }
            j += 2 + (size_t)strtoull((const char *)f->args[j + 1].ptr, NULL, 10);
        }
        i += 2 + (size_t)strtoull((const char *)f->args[i + 1].ptr, NULL, 10);
    }
    return 0;
}

/* ---- the node's side: hashing, checking, sending, saving ------------------------------------- */

/* Reads, parses and checks this node's aclfile, passwords hashed: 0 and *f, or -1 with the
 * reason (prefixed by the file's name and line) in err. */
static int acl_file_load(struct hy_node *n, struct acl_file *f, char *err, size_t cap)
{
    const char *path = n->cfg->aclfile;
    if (n->file_read == NULL) {
        snprintf(err, cap, "this node cannot read files");
        return -1;
    }
    struct hy_buf text;
    hy_buf_init(&text);
    char why[300];
    if (n->file_read(path, ACL_FILE_BYTES_MAX, &text, why, sizeof(why)) != 0) {
        snprintf(err, cap, "%s: %s", path, why);
        hy_buf_free(&text);
        return -1;
    }
    int rc = acl_file_parse(text.data, text.len, f, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, cap, "%s:%s", path, why);
        hy_buf_free(&text);
        return -1;
    }
    /* The args point into text: own every one of them from here. */
    for (size_t i = 0; i < f->argc; i++) {
        char *s = hy_xmalloc(f->args[i].len + 1);
        memcpy(s, f->args[i].ptr, f->args[i].len);
        s[f->args[i].len] = '\0';
        f->args[i].ptr = file_own(f, s);
        hy_free(s);
    }
    hy_buf_free(&text);
    size_t i = 0;
    while (rc == 0 && i < f->argc) {
        const struct store_arg *name = &f->args[i];
        int64_t rules = 0;
        HY_ASSERT(hy_parse_i64(f->args[i + 1].ptr, f->args[i + 1].len, &rules));
        struct store_acl_user *u = store_acl_user_new(name->ptr, name->len);
        for (size_t r = i + 2; rc == 0 && r < i + 2 + (size_t)rules; r++) {
            struct store_arg *a = &f->args[r];
            if (a->len > 0 && (a->ptr[0] == '>' || a->ptr[0] == '<')) {
                if (n->crypto_hash == NULL) {
                    snprintf(err, cap, "%s:%u: this node cannot hash passwords", path, f->lines[r]);
                    rc = -1;
                    break;
                }
                char h[ACL_HASHED_RULE_BYTES];
                acl__hash_rule(n, a->ptr, a->len, h);
                *a = (struct store_arg){file_own(f, h), ACL_HASHED_RULE_BYTES - 1};
            }
            struct resp_arg ra = {a->ptr, a->len};
            const char *bad = acl__command_rule_known(n, &ra)
                                  ? store_acl_rule_apply(u, a->ptr, a->len)
                                  : "Unknown command or category name in ACL";
            if (bad != NULL) {
                snprintf(err, cap, "%s:%u: Error in rule '%.*s': %s", path, f->lines[r],
                         (int)HY_MIN(a->len, 128), (const char *)a->ptr, bad);
                rc = -1;
            }
        }
        store_acl_user_free(u);
        i += 2 + (size_t)rules;
    }
    if (rc != 0) {
        acl_file_free(f);
    }
    return rc;
}

int node_aclfile_check(struct hy_node *n, char *err, size_t cap)
{
    if (n->cfg->aclfile[0] == '\0') {
        return 0;
    }
    struct acl_file f;
    if (acl_file_load(n, &f, err, cap) != 0) {
        return -1;
    }
    acl_file_free(&f);
    return 0;
}

/* An internal client that sends HY.ACLLOAD with f's users: answered to `parent` (ACL LOAD's
 * client), or logged when there is none (the load at start). */
static void send_load(struct hy_node *n, struct node_client *parent, const struct acl_file *f,
                      uint64_t now_ms)
{
    struct node_client *c = node_client_new(n, "internal:aclfile", "", -1, now_ms);
    c->flags &= ~NODE_CLIENT_CLOSE_AFTER_REPLY;
    hy_buf_reset(&c->out);
    n->stats.connections_received--;
    c->authenticated = 1; /* the parent was allowed ACL LOAD; the start is the operator's */
    c->user[0] = '\0';
    c->proto = 2;
    snprintf(c->name, sizeof(c->name), "aclfile");
    if (parent != NULL) {
        parent->scatter_pending = 1;
        parent->scatter_error[0] = '\0';
        c->scatter_parent = parent;
    } else {
        c->is_scatter_orphan = 1;
        c->log_reply = 1;
    }
    hy_buf_printf(&c->in, "*%zu\r\n$10\r\nHY.ACLLOAD\r\n", f->argc + 1);
    for (size_t i = 0; i < f->argc; i++) {
        hy_buf_printf(&c->in, "$%zu\r\n", f->args[i].len);
        hy_buf_append(&c->in, f->args[i].ptr, f->args[i].len);
        hy_buf_append(&c->in, "\r\n", 2);
    }
    node_client_process(n, c, now_ms);
    replica_mark_ready(n, c);
}

void acl_file_cmd_load(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (n->cfg->aclfile[0] == '\0') {
        resp_write_error(&x->w, "ERR This Redis instance is not configured to use an ACL file. "
                                "Set aclfile, or use ACL SETUSER: users are replicated through "
                                "the log and survive restarts.");
        return;
    }
    if (n->wrap_active) {
        resp_write_error(&x->w, "ERR ACL LOAD cannot travel inside HY.REQ");
        return;
    }
    struct acl_file f;
    char err[600];
    if (acl_file_load(n, &f, err, sizeof(err)) != 0) {
        resp_write_errorf(&x->w,
                          "ERR %s. WARNING: ACL errors detected, no change to the previously "
                          "active ACL rules was performed",
                          err);
        return;
    }
    send_load(n, x->client, &f, x->now_ms);
    acl_file_free(&f);
}

void acl_file_cmd_save(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (n->cfg->aclfile[0] == '\0') {
        resp_write_error(&x->w, "ERR This Redis instance is not configured to use an ACL file. "
                                "Set aclfile to save the users to it.");
        return;
    }
    if (n->file_write == NULL) {
        resp_write_error(&x->w, "ERR this node cannot write files");
        return;
    }
    struct hy_buf out;
    hy_buf_init(&out);
    const struct store_acl_user *const *v;
    size_t count = store_acl_users(n->meta->store, &v);
    struct store_acl_user *dflt = NULL;
    if (store_acl_find(n->meta->store, (const uint8_t *)"default", 7) == NULL) {
        dflt = acl__implicit_default(n); /* requirepass's user, written as Redis does */
        hy_buf_printf(&out, "user default ");
        store_acl_user_describe(dflt, &out);
        hy_buf_append(&out, "\n", 1);
        store_acl_user_free(dflt);
    }
    for (size_t i = 0; i < count; i++) {
        hy_buf_printf(&out, "user %s ", v[i]->name);
        store_acl_user_describe(v[i], &out);
        hy_buf_append(&out, "\n", 1);
    }
    char err[300];
    if (n->file_write(n->cfg->aclfile, out.data, out.len, err, sizeof(err)) != 0) {
        resp_write_errorf(&x->w, "ERR There was an error trying to save the ACLs to %s: %s",
                          n->cfg->aclfile, err);
    } else {
        resp_write_ok(&x->w);
    }
    hy_buf_free(&out);
}

void cmd_hy_aclload(struct cmd_ctx *x)
{
    acl__propose_args(x, STORE_OP_ACL_LOAD, 1);
}

void acl_file_startup(struct hy_node *n, uint64_t now_ms)
{
    if (!n->aclfile_pending || raft_leader(&n->meta->raft) == RAFT_NONE) {
        return;
    }
    n->aclfile_pending = 0;
    struct acl_file f;
    char err[600];
    if (acl_file_load(n, &f, err, sizeof(err)) != 0) {
        hy_log(n->log, HY_LOG_ERROR, "aclfile not loaded, the users stay as they were: %s", err);
        return;
    }
    hy_log(n->log, HY_LOG_INFO, "aclfile %s: loading its users into the cluster", n->cfg->aclfile);
    send_load(n, NULL, &f, now_ms);
    acl_file_free(&f);
}
