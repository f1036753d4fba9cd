/*
 * quorum.c - split-brain protection rules: parsing and matching (quorum.h), and the node's
 * side (node_internal.h): the live members as gossip sees them, the check dispatch runs before
 * a data command, and the rules' state for /health, INFO and halyctl. Pure, as the engine.
 */
#include "node/quorum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

const char *quorum_type_name(unsigned type)
{
    switch (type) {
    case QUORUM_READ: return "read";
    case QUORUM_WRITE: return "write";
    default: return "read-write";
    }
}

static int parse_type(const char *p, size_t len, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned type;
    } types[] = {{"read", QUORUM_READ},
                 {"write", QUORUM_WRITE},
                 {"read-write", QUORUM_READ_WRITE},
                 {"read_write", QUORUM_READ_WRITE}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].name) == len && strncasecmp(types[i].name, p, len) == 0) {
            *out = types[i].type;
            return 1;
        }
    }
    return 0;
}

static int name_ok(const char *p, size_t len)
{
    if (len == 0 || len > QUORUM_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* One NAME:MIN:TYPE[:PATTERN] of len bytes at p (the pattern may hold colons). */
static int parse_rule(const char *p, size_t len, struct quorum_rule *r, char *err, size_t cap)
{
    const char *end = p + len;
    const char *c1 = memchr(p, ':', len);
    const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
    if (c2 == NULL) {
        snprintf(err, cap, "quorum rule '%.*s': expected NAME:MIN:TYPE[:PATTERN]", (int)len, p);
        return 0;
    }
    const char *c3 = memchr(c2 + 1, ':', (size_t)(end - c2 - 1));
    const char *type_end = c3 != NULL ? c3 : end;
    int64_t min;
    if (!name_ok(p, (size_t)(c1 - p))) {
        snprintf(err, cap, "quorum rule '%.*s': the name must be 1-%d of [A-Za-z0-9_-]", (int)len,
                 p, QUORUM_NAME_MAX);
        return 0;
    }
    if (!hy_parse_i64((const uint8_t *)c1 + 1, (size_t)(c2 - c1 - 1), &min) || min < 1 ||
        min > QUORUM_MEMBERS_MAX) {
        snprintf(err, cap, "quorum rule '%.*s': MIN must be a member count from 1 to %d", (int)len,
                 p, QUORUM_MEMBERS_MAX);
        return 0;
    }
    if (!parse_type(c2 + 1, (size_t)(type_end - c2 - 1), &r->type)) {
        snprintf(err, cap, "quorum rule '%.*s': TYPE must be read, write or read-write", (int)len,
                 p);
        return 0;
    }
    size_t plen = c3 != NULL ? (size_t)(end - c3 - 1) : 1;
    if (plen == 0 || plen > QUORUM_PATTERN_MAX) {
        snprintf(err, cap, "quorum rule '%.*s': the pattern must be 1-%d bytes", (int)len, p,
                 QUORUM_PATTERN_MAX);
        return 0;
    }
    memcpy(r->name, p, (size_t)(c1 - p));
    r->name[c1 - p] = '\0';
    r->min_members = (uint32_t)min;
    memcpy(r->pattern, c3 != NULL ? c3 + 1 : "*", plen);
    r->pattern[plen] = '\0';
    r->pattern_len = plen;
    return 1;
}

int quorum_rules_parse(const char *text, struct quorum_rules *out, char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    const char *p = text;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *e = strchr(p, ',');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        if (out->count == QUORUM_RULES_MAX) {
            snprintf(err, cap, "at most %d quorum rules", QUORUM_RULES_MAX);
            memset(out, 0, sizeof(*out));
            return 0;
        }
        struct quorum_rule *r = &out->rule[out->count];
        if (!parse_rule(p, len, r, err, cap)) {
            memset(out, 0, sizeof(*out));
            return 0;
        }
        for (size_t i = 0; i < out->count; i++) {
            if (strcmp(out->rule[i].name, r->name) == 0) {
                snprintf(err, cap, "quorum rule '%s' is named twice", r->name);
                memset(out, 0, sizeof(*out));
                return 0;
            }
        }
        out->count++;
        p += len;
    }
    return 1;
}

int quorum_rule_applies(const struct quorum_rule *r, unsigned kind, const uint8_t *key, size_t klen)
{
    if (!(r->type & kind)) {
        return 0;
    }
    if (r->pattern_len == 1 && r->pattern[0] == '*') {
        return 1;
    }
    return key != NULL && hy_glob_match((const uint8_t *)r->pattern, r->pattern_len, key, klen, 0);
}

/* ---- the node's side: live members, the check, the status ------------------------------------ */

struct node_quorum {
    char *text; /* the quorum-rules value `rules` was parsed from */
    struct quorum_rules rules;
};

void node_quorum_free(struct hy_node *n)
{
    if (n->quorum != NULL) {
        hy_free(n->quorum->text);
        hy_free(n->quorum);
        n->quorum = NULL;
    }
}

/* The rules in force, parsed again only when the setting changed (CONFIG SET); NULL: none. */
static const struct quorum_rules *rules_of(struct hy_node *n)
{
    const char *text = n->cfg->quorum_rules;
    if (text == NULL || text[0] == '\0') {
        return NULL;
    }
    if (n->quorum == NULL) {
        n->quorum = hy_xcalloc(1, sizeof(*n->quorum));
    }
    struct node_quorum *q = n->quorum;
    if (q->text == NULL || strcmp(q->text, text) != 0) {
        char err[160];
        int ok = quorum_rules_parse(text, &q->rules, err, sizeof(err));
        HY_ASSERT(ok); /* config_set refused anything else */
        hy_free(q->text);
        q->text = hy_xstrdup(text);
    }
    return q->rules.count > 0 ? &q->rules : NULL;
}

uint32_t node_live_members(const struct hy_node *n)
{
    uint32_t live = 1; /* this node */
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (m->role == STORE_MEMBER_REMOVED || strcmp(m->name, n->cfg->node_id) == 0) {
            continue;
        }
        const char *st = node_gossip_state(n, m->name);
        if (st != NULL ? strcmp(st, "alive") == 0 || strcmp(st, "suspect") == 0
                       : n->member_up[i] != 0) {
            live++;
        }
    }
    return live;
}

/* 1 when rule r covers the request (d, argv): its type, and one of its keys (or, for a command
 * without keys, or a transaction whose keys are inside, an all-keys rule). */
static int rule_covers(const struct quorum_rule *r, const struct cmd_def *d, unsigned kind,
                       size_t argc, const struct resp_arg *argv)
{
    size_t first = node_first_key(d, argc, argv);
    if (first == 0 || d->handler == cmd_hy_exec) {
        return quorum_rule_applies(r, kind, NULL, 0);
    }
    size_t last = d->last_key < 0 ? (size_t)((int64_t)argc + d->last_key) : (size_t)d->last_key;
    size_t step = d->key_step > 0 ? (size_t)d->key_step : 1;
    if (d->handler == cmd_xread || d->handler == cmd_xreadgroup) {
        size_t count;
        node_xread_keys(argc, argv, &first, &count);
        last = first + count - 1;
        step = 1;
    }
    for (size_t i = first; i <= last && i < argc; i += step) {
        if (quorum_rule_applies(r, kind, argv[i].ptr, argv[i].len)) {
            return 1;
        }
    }
    return 0;
}

int node_quorum_check(struct cmd_ctx *x, const struct cmd_def *d)
{
    const struct quorum_rules *rules = rules_of(x->node);
    if (rules == NULL) {
        return 1;
    }
    size_t argc = x->argc;
    const struct resp_arg *argv = x->argv;
    if (d->handler == cmd_hy_req && argc >= 4) {
        /* HY.REQ s q SET k v: the wrapped command is what runs. */
        const struct cmd_def *inner = node_command_lookup(x->node, argv[3].ptr, argv[3].len);
        inner = node_command_sub(x->node, inner, argc - 3, argv + 3);
        if (inner != NULL) {
            d = inner;
            argc -= 3;
            argv += 3;
        }
    }
    /* Data commands only: INFO, CLUSTER, HALYARD, PUBLISH... stay open, so an operator can
     * see why. A transaction (HY.EXEC) reads and writes. */
    unsigned kind = d->handler == cmd_hy_exec   ? QUORUM_READ_WRITE
                    : (d->flags & CMD_WRITE)    ? QUORUM_WRITE
                    : (d->flags & CMD_READONLY) ? QUORUM_READ
                                                : 0;
    if (kind == 0) {
        return 1;
    }
    uint32_t live = node_live_members(x->node);
    for (size_t i = 0; i < rules->count; i++) {
        const struct quorum_rule *r = &rules->rule[i];
        if (live < r->min_members && rule_covers(r, d, kind, argc, argv)) {
            resp_write_errorf(&x->w, "QUORUM %s required=%u actual=%u", r->name, r->min_members,
                              live);
            return 0;
        }
    }
    return 1;
}

void node_quorum_json(const struct hy_node *n, struct hy_buf *out)
{
    struct quorum_rules *rules = hy_xmalloc(sizeof(*rules));
    char err[160];
    if (!quorum_rules_parse(n->cfg->quorum_rules, rules, err, sizeof(err))) {
        rules->count = 0; /* config_set refused it: cannot happen */
    }
    uint32_t live = node_live_members(n);
    hy_buf_append_str(out, "[");
    for (size_t i = 0; i < rules->count; i++) {
        const struct quorum_rule *r = &rules->rule[i];
        hy_buf_append_str(out, i > 0 ? ",{\"name\":" : "{\"name\":");
        hy_buf_append_json_str(out, r->name);
        hy_buf_printf(out, ",\"type\":\"%s\",\"pattern\":", quorum_type_name(r->type));
        hy_buf_append_json_str(out, r->pattern);
        hy_buf_printf(out, ",\"required\":%u,\"actual\":%u,\"ok\":%s}", r->min_members, live,
                      live >= r->min_members ? "true" : "false");
    }
    hy_buf_append_str(out, "]");
    hy_free(rules);
}

void node_quorum_info(const struct hy_node *n, struct hy_buf *out)
{
    struct quorum_rules *rules = hy_xmalloc(sizeof(*rules));
    char err[160];
    if (!quorum_rules_parse(n->cfg->quorum_rules, rules, err, sizeof(err))) {
        rules->count = 0; /* config_set refused it: cannot happen */
    }
    uint32_t live = node_live_members(n);
    hy_buf_printf(out, "quorum_live_members:%u\r\nquorum_rules:%zu\r\n", live, rules->count);
    for (size_t i = 0; i < rules->count; i++) {
        const struct quorum_rule *r = &rules->rule[i];
        hy_buf_printf(out, "quorum_rule_%s:type=%s,pattern=%s,required=%u,actual=%u,ok=%d\r\n",
                      r->name, quorum_type_name(r->type), r->pattern, r->min_members, live,
                      live >= r->min_members);
    }
    hy_free(rules);
}
