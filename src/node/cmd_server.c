/*
 * cmd_server.c - connection and server commands: PING ECHO HELLO AUTH SELECT QUIT RESET
 * CLIENT COMMAND CONFIG. INFO lives in cmd_info.c.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "common/version.h"
#include "node/acl.h"
#include "node/node_internal.h"

void cmd_ping(struct cmd_ctx *x)
{
    if (x->argc > 2) {
        node_reply_arity(&x->w, "ping");
    } else if (x->client->proto < 3 && node_pubsub_count(x->client) > 0) {
        /* A RESP2 subscriber's PING answers in the subscriber's form. */
        resp_write_array(&x->w, 2);
        resp_write_bulk_str(&x->w, "pong");
        if (x->argc == 2) {
            resp_write_bulk(&x->w, x->argv[1].ptr, x->argv[1].len);
        } else {
            resp_write_bulk_str(&x->w, "");
        }
    } else if (x->argc == 2) {
        resp_write_bulk(&x->w, x->argv[1].ptr, x->argv[1].len);
    } else {
        resp_write_simple(&x->w, "PONG");
    }
}

void cmd_echo(struct cmd_ctx *x)
{
    resp_write_bulk(&x->w, x->argv[1].ptr, x->argv[1].len);
}

void cmd_select(struct cmd_ctx *x)
{
    int64_t db;
    if (!node_arg_i64(x, 1, &db)) {
        return;
    }
    if (db != 0) {
        resp_write_error(&x->w, "ERR DB index is out of range");
        return;
    }
    resp_write_ok(&x->w);
}

void cmd_readonly(struct cmd_ctx *x)
{
    x->client->readonly_mode = 1;
    resp_write_ok(&x->w);
}

void cmd_readwrite(struct cmd_ctx *x)
{
    x->client->readonly_mode = 0;
    resp_write_ok(&x->w);
}

void cmd_quit(struct cmd_ctx *x)
{
    resp_write_ok(&x->w);
    x->client->flags |= NODE_CLIENT_CLOSE_AFTER_REPLY;
}

/* AUTH and HELLO AUTH: ACL users (acl.c), `default` with requirepass. Returns 1 when
 * accepted (or replies the error). */
static int auth_check(struct cmd_ctx *x, const struct resp_arg *user, const struct resp_arg *pass)
{
    return acl_authenticate(x, user, pass);
}

void cmd_auth(struct cmd_ctx *x)
{
    if (x->argc > 3) {
        node_reply_syntax_error(x);
        return;
    }
    const struct resp_arg *user = x->argc == 3 ? &x->argv[1] : NULL;
    if (auth_check(x, user, &x->argv[x->argc - 1])) {
        resp_write_ok(&x->w);
    }
}

static int client_name_valid(const struct resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++) {
        if (a->ptr[i] < '!' || a->ptr[i] > '~') {
            return 0; /* as Redis: no spaces, newlines or special characters */
        }
    }
    return 1;
}

static int client_setname(struct cmd_ctx *x, const struct resp_arg *a)
{
    if (!client_name_valid(a) || a->len >= sizeof(x->client->name)) {
        resp_write_error(&x->w, "ERR Client names cannot contain spaces, newlines or special "
                                "characters.");
        return 0;
    }
    memcpy(x->client->name, a->ptr, a->len);
    x->client->name[a->len] = '\0';
    return 1;
}

static void hello_reply(struct cmd_ctx *x)
{
    struct resp_writer *w = &x->w;
    resp_write_map(w, 7);
    resp_write_bulk_str(w, "server");
    resp_write_bulk_str(w, "redis");
    resp_write_bulk_str(w, "version");
    resp_write_bulk_str(w, HY_REDIS_COMPAT_VERSION);
    resp_write_bulk_str(w, "proto");
    resp_write_int(w, w->proto);
    resp_write_bulk_str(w, "id");
    resp_write_int(w, (int64_t)x->client->id);
    resp_write_bulk_str(w, "mode");
    resp_write_bulk_str(w, "standalone");
    resp_write_bulk_str(w, "role");
    resp_write_bulk_str(w, "master");
    resp_write_bulk_str(w, "modules");
    resp_write_array(w, 0);
}

void cmd_hello(struct cmd_ctx *x)
{
    int64_t ver = x->client->proto;
    if (x->argc >= 2) {
        if (!hy_parse_i64(x->argv[1].ptr, x->argv[1].len, &ver)) {
            resp_write_error(&x->w, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            resp_write_error(&x->w, "NOPROTO unsupported protocol version");
            return;
        }
    }
    for (size_t i = 2; i < x->argc; i++) {
        int more = x->argc - i - 1;
        if (node_arg_is(&x->argv[i], "AUTH") && more >= 2) {
            if (!auth_check(x, &x->argv[i + 1], &x->argv[i + 2])) {
                return;
            }
            i += 2;
        } else if (node_arg_is(&x->argv[i], "SETNAME") && more >= 1) {
            if (!client_setname(x, &x->argv[++i])) {
                return;
            }
        } else {
            resp_write_errorf(&x->w, "ERR Syntax error in HELLO option '%.*s'",
                              (int)HY_MIN(x->argv[i].len, 128), (const char *)x->argv[i].ptr);
            return;
        }
    }
    if (!x->client->authenticated) {
        resp_write_error(&x->w, "NOAUTH HELLO must be called with the client already "
                                "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                                "option can be used to authenticate the client and select the "
                                "RESP protocol version at the same time");
        return;
    }
    x->client->proto = (int)ver;
    x->w.proto = (int)ver;
    hello_reply(x);
}

void cmd_reset(struct cmd_ctx *x)
{
    struct node_client *c = x->client;
    node_multi_reset(c); /* as Redis: DISCARD and UNWATCH */
    node_pubsub_reset(c);
    c->reply_mode = NODE_REPLY_ON;
    c->proto = 2;
    c->name[0] = '\0';
    c->authenticated = acl_default_open(x->node, x->store);
    memcpy(c->user, "default", sizeof("default"));
    x->w.proto = 2;
    resp_write_simple(&x->w, "RESET");
}

/* ---- CLIENT -------------------------------------------------------------------------------- */

void node_client_describe(struct hy_node *n, const struct node_client *c, uint64_t now_ms,
                          struct hy_buf *out)
{
    (void)n;
    uint64_t age = now_ms > c->created_ms ? (now_ms - c->created_ms) / 1000 : 0;
    uint64_t idle = now_ms > c->last_ms ? (now_ms - c->last_ms) / 1000 : 0;
    hy_buf_printf(out,
                  "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=N db=0 "
                  "sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 "
                  "rbs=%zu rbp=%zu obl=%zu oll=0 omem=%zu tot-mem=%zu events=r cmd=%s "
                  "user=%s redir=-1 resp=%d\n",
                  (unsigned long long)c->id, c->addr, c->laddr, c->fd, c->name,
                  (unsigned long long)age, (unsigned long long)idle, c->in.len,
                  c->in.cap - c->in.len, c->in.cap, c->in.len, c->out.len,
                  c->out.len + c->out_inflight, c->in.cap + c->out.cap + sizeof(*c), c->last_cmd,
                  c->user[0] ? c->user : "default", c->proto);
}

static void client_list(struct cmd_ctx *x)
{
    struct hy_buf b;
    hy_buf_init(&b);
    for (struct node_client *c = x->node->clients; c != NULL; c = c->next) {
        node_client_describe(x->node, c, x->now_ms, &b);
    }
    resp_write_verbatim(&x->w, "txt", b.data, b.len);
    hy_buf_free(&b);
}

static int client_matches(const struct node_client *c, const struct resp_arg *filter,
                          const struct resp_arg *value)
{
    if (node_arg_is(filter, "ID")) {
        int64_t id;
        return hy_parse_i64(value->ptr, value->len, &id) && (uint64_t)id == c->id;
    }
    const char *s = node_arg_is(filter, "ADDR") ? c->addr : c->laddr;
    return strlen(s) == value->len && memcmp(s, value->ptr, value->len) == 0;
}

static int client_kill_filters_valid(struct cmd_ctx *x, int *skipme)
{
    for (size_t i = 2; i + 1 < x->argc; i += 2) {
        const struct resp_arg *f = &x->argv[i];
        int64_t id;
        if (node_arg_is(f, "ID") &&
            (!hy_parse_i64(x->argv[i + 1].ptr, x->argv[i + 1].len, &id) || id <= 0)) {
            resp_write_error(&x->w, "ERR client-id should be greater than 0");
            return -1;
        }
        if (node_arg_is(f, "SKIPME")) {
            *skipme = node_arg_is(&x->argv[i + 1], "yes");
            if (!*skipme && !node_arg_is(&x->argv[i + 1], "no")) {
                return 0;
            }
        } else if (!node_arg_is(f, "ID") && !node_arg_is(f, "ADDR") && !node_arg_is(f, "LADDR")) {
            return 0;
        }
    }
    return x->argc % 2 == 0;
}

static void client_kill(struct cmd_ctx *x)
{
    int old_form = x->argc == 3, skipme = 1;
    int valid = old_form ? 1 : client_kill_filters_valid(x, &skipme);
    if (valid <= 0) {
        if (valid == 0) {
            node_reply_syntax_error(x);
        }
        return;
    }
    int64_t killed = 0;
    for (struct node_client *c = x->node->clients; c != NULL; c = c->next) {
        int match = 1;
        if (old_form) {
            static const struct resp_arg addr = {(const uint8_t *)"ADDR", 4};
            match = client_matches(c, &addr, &x->argv[2]);
        }
        for (size_t i = 2; !old_form && i + 1 < x->argc; i += 2) {
            if (!node_arg_is(&x->argv[i], "SKIPME")) {
                match &= client_matches(c, &x->argv[i], &x->argv[i + 1]);
            }
        }
        if (match && !(c == x->client && (skipme && !old_form))) {
            c->flags |= c == x->client ? NODE_CLIENT_CLOSE_AFTER_REPLY : NODE_CLIENT_CLOSE_ASAP;
            x->node->kills++;
            killed++;
        }
    }
    if (old_form && killed == 0) {
        resp_write_error(&x->w, "ERR No such client");
    } else if (old_form) {
        resp_write_ok(&x->w);
    } else {
        resp_write_int(&x->w, killed);
    }
}

/* CLIENT UNBLOCK id [TIMEOUT|ERROR]: a client waiting in a blocking command answers as at its
 * timeout, or with -UNBLOCKED. One whose pop is already proposed is not waiting any more (its
 * element may be taken): 0, as for a client that is not blocked. */
static void client_unblock(struct cmd_ctx *x)
{
    int64_t id;
    if (!node_arg_i64(x, 2, &id)) {
        return;
    }
    int error = 0;
    if (x->argc == 4) {
        if (node_arg_is(&x->argv[3], "ERROR")) {
            error = 1;
        } else if (!node_arg_is(&x->argv[3], "TIMEOUT")) {
            resp_write_error(&x->w, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
    }
    for (struct node_client *c = x->node->clients; c != NULL; c = c->next) {
        if (c->id == (uint64_t)id && c->block_state == NODE_BLOCK_WAITING) {
            node_block_unblock(x->node, c, error, 0);
            resp_write_int(&x->w, 1);
            return;
        }
    }
    resp_write_int(&x->w, 0);
}

void cmd_client(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "ID") && x->argc == 2) {
        resp_write_int(&x->w, (int64_t)x->client->id);
    } else if (node_arg_is(sub, "GETNAME") && x->argc == 2) {
        if (x->client->name[0] == '\0') {
            resp_write_null(&x->w);
        } else {
            resp_write_bulk_str(&x->w, x->client->name);
        }
    } else if (node_arg_is(sub, "SETNAME") && x->argc == 3) {
        if (client_setname(x, &x->argv[2])) {
            resp_write_ok(&x->w);
        }
    } else if (node_arg_is(sub, "LIST") && x->argc == 2) {
        client_list(x);
    } else if (node_arg_is(sub, "INFO") && x->argc == 2) {
        struct hy_buf b;
        hy_buf_init(&b);
        node_client_describe(x->node, x->client, x->now_ms, &b);
        resp_write_verbatim(&x->w, "txt", b.data, b.len);
        hy_buf_free(&b);
    } else if (node_arg_is(sub, "KILL") && x->argc >= 3) {
        client_kill(x);
    } else if (node_arg_is(sub, "HELP") && x->argc == 2) {
        static const char *const lines[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
            "    SKIPME (YES|NO).",
            "LIST",
            "    Return information about client connections.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "HELP",
            "    Print this help."};
        node_reply_help(x, lines, HY_ARRAY_LEN(lines));
    } else if (node_arg_is(sub, "UNBLOCK") && (x->argc == 3 || x->argc == 4)) {
        client_unblock(x);
    } else if (node_arg_is(sub, "REPLY") && x->argc == 3) {
        /* OFF and SKIP answer nothing (dispatch drops the output); pub/sub pushes still go
         * out, as in Redis 7.0. */
        if (node_arg_is(&x->argv[2], "ON")) {
            x->client->reply_mode = NODE_REPLY_ON;
            resp_write_ok(&x->w);
        } else if (node_arg_is(&x->argv[2], "OFF")) {
            x->client->reply_mode = NODE_REPLY_OFF;
        } else if (node_arg_is(&x->argv[2], "SKIP")) {
            x->client->reply_mode = NODE_REPLY_SKIP_NEXT;
        } else {
            node_reply_syntax_error(x);
        }
    } else if (node_arg_is(sub, "ID") || node_arg_is(sub, "GETNAME") ||
               node_arg_is(sub, "SETNAME") || node_arg_is(sub, "LIST") ||
               node_arg_is(sub, "INFO") || node_arg_is(sub, "KILL") ||
               node_arg_is(sub, "UNBLOCK")) {
        char name[32];
        snprintf(name, sizeof(name), "client|%.*s", (int)HY_MIN(sub->len, 16),
                 (const char *)sub->ptr);
        for (char *p = name; *p; p++) {
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        }
        node_reply_arity(&x->w, name);
    } else {
        resp_write_errorf(&x->w, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}

/* ---- COMMAND ------------------------------------------------------------------------------- */

/* Commands whose keys cannot be found from first/last/step alone (a numkeys argument, STORE,
 * STREAMS...): Redis 7.0's COMMAND INFO flags them movablekeys. */
static int command_movablekeys(const struct cmd_def *d)
{
    static const char *const names[] = {
        "zunionstore", "zinterstore", "zdiffstore", "zunion",  "zinter",    "zdiff",
        "zintercard",  "sintercard",  "lmpop",      "blmpop",  "zmpop",     "bzmpop",
        "xread",       "xreadgroup",  "eval",       "evalsha", "eval_ro",   "evalsha_ro",
        "fcall",       "fcall_ro",    "sort",       "sort_ro", "georadius", "georadiusbymember",
        "migrate"};
    for (size_t i = 0; i < HY_ARRAY_LEN(names); i++) {
        if (strcmp(d->name, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void command_write_flags(struct resp_writer *w, const struct cmd_def *d)
{
    unsigned flags = d->flags;
    int movable = command_movablekeys(d);
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CMD_WRITE, "write"}, {CMD_READONLY, "readonly"}, {CMD_DENYOOM, "denyoom"},
                 {CMD_ADMIN, "admin"}, {CMD_NOAUTH, "no_auth"},    {CMD_STALE, "stale"},
                 {CMD_FAST, "fast"}};
    size_t count = (size_t)movable;
    for (size_t i = 0; i < HY_ARRAY_LEN(names); i++) {
        count += (flags & names[i].bit) != 0;
    }
    resp_write_set(w, count);
    for (size_t i = 0; i < HY_ARRAY_LEN(names); i++) {
        if (flags & names[i].bit) {
            resp_write_simple(w, names[i].name);
        }
    }
    if (movable) {
        resp_write_simple(w, "movablekeys");
    }
}

static void command_write_info(struct resp_writer *w, const struct cmd_def *d)
{
    resp_write_array(w, 10);
    resp_write_bulk_str(w, d->name);
    resp_write_int(w, d->arity);
    command_write_flags(w, d);
    resp_write_int(w, d->first_key);
    resp_write_int(w, d->last_key);
    resp_write_int(w, d->key_step);
    acl_write_categories(w, d);
    resp_write_set(w, 0);   /* tips */
    resp_write_array(w, 0); /* key specs */
    resp_write_array(w, 0); /* subcommands */
}

static void command_write_docs(struct resp_writer *w, const struct cmd_def *d)
{
    resp_write_bulk_str(w, d->name);
    resp_write_map(w, 3);
    resp_write_bulk_str(w, "summary");
    resp_write_bulk_str(w, d->summary);
    resp_write_bulk_str(w, "since");
    resp_write_bulk_str(w, HY_VERSION);
    resp_write_bulk_str(w, "group");
    resp_write_bulk_str(w, d->group);
}

static void command_for_each_named(struct cmd_ctx *x, int docs)
{
    size_t found = 0;
    const struct cmd_def *defs[256];
    for (size_t i = 2; i < x->argc && found < HY_ARRAY_LEN(defs); i++) {
        defs[found++] = node_command_lookup(x->node, x->argv[i].ptr, x->argv[i].len);
    }
    if (docs) {
        size_t n = 0;
        for (size_t i = 0; i < found; i++) {
            n += defs[i] != NULL;
        }
        resp_write_map(&x->w, n);
        for (size_t i = 0; i < found; i++) {
            if (defs[i] != NULL) {
                command_write_docs(&x->w, defs[i]);
            }
        }
        return;
    }
    resp_write_array(&x->w, found);
    for (size_t i = 0; i < found; i++) {
        if (defs[i] == NULL) {
            resp_write_null_array(&x->w);
        } else {
            command_write_info(&x->w, defs[i]);
        }
    }
}

/* Top-level commands: rows of subcommands ("acl|setuser") are listed by COMMAND LIST only, as
 * Redis 7 does. */
static size_t command_top_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < node_command_count; i++) {
        n += strchr(node_commands[i].name, '|') == NULL;
    }
    return n;
}

void cmd_command(struct cmd_ctx *x)
{
    const struct resp_arg *sub = x->argc >= 2 ? &x->argv[1] : NULL;
    if (sub == NULL) {
        resp_write_array(&x->w, command_top_count());
        for (size_t i = 0; i < node_command_count; i++) {
            if (strchr(node_commands[i].name, '|') == NULL) {
                command_write_info(&x->w, &node_commands[i]);
            }
        }
    } else if (node_arg_is(sub, "COUNT") && x->argc == 2) {
        resp_write_int(&x->w, (int64_t)command_top_count());
    } else if (node_command_more(x)) {
        /* GETKEYS, GETKEYSANDFLAGS, LIST [FILTERBY], HELP: cmd_command.c */
    } else if (node_arg_is(sub, "DOCS") && x->argc == 2) {
        resp_write_map(&x->w, command_top_count());
        for (size_t i = 0; i < node_command_count; i++) {
            if (strchr(node_commands[i].name, '|') == NULL) {
                command_write_docs(&x->w, &node_commands[i]);
            }
        }
    } else if (node_arg_is(sub, "INFO") || node_arg_is(sub, "DOCS")) {
        command_for_each_named(x, node_arg_is(sub, "DOCS"));
    } else {
        resp_write_errorf(&x->w, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}

/* ---- CONFIG -------------------------------------------------------------------------------- */

/* Read-only answers for settings tools ask about (redis-benchmark reads save/appendonly)
 * that have no knob in halyard: durability is the Raft log's, always on. */
static const char *const config_compat[][2] = {
    {"save", ""},
    {"appendonly", "no"},
    {"databases", "1"},
};

/* Redis's encoding thresholds (both spellings) are replicated state of every partition
 * (store_encoding_set): CONFIG GET reads slot 0's replica here, CONFIG SET proposes them. */
static int encoding_find(const char *name)
{
    for (size_t i = 0; store_encoding_name(i) != NULL; i++) {
        if (strcasecmp(store_encoding_name(i), name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static size_t encoding_count(void)
{
    size_t i = 0;
    while (store_encoding_name(i) != NULL) {
        i++;
    }
    return i;
}

/* 1 when name is one of the fixed answers above and value is that answer: tools and Redis's
 * test suite (`save ""`) set them to what halyard already does. */
static int compat_unchanged(const char *name, const char *value)
{
    for (size_t i = 0; i < HY_ARRAY_LEN(config_compat); i++) {
        if (strcasecmp(config_compat[i][0], name) == 0 && strcmp(config_compat[i][1], value) == 0) {
            return 1;
        }
    }
    return 0;
}

static int config_get_matches(struct cmd_ctx *x, const char *name)
{
    for (size_t k = 2; k < x->argc; k++) {
        if (hy_glob_match(x->argv[k].ptr, x->argv[k].len, (const uint8_t *)name, strlen(name), 1)) {
            return 1;
        }
    }
    return 0;
}

static void config_get_cmd(struct cmd_ctx *x)
{
    size_t n = config_count(), matched = 0;
    size_t nenc = encoding_count();
    char seen[CONFIG_SETTINGS_MAX + HY_ARRAY_LEN(config_compat) + 32] = {0};
    HY_ASSERT(nenc <= 32);
    HY_ASSERT(n <= CONFIG_SETTINGS_MAX);
    size_t enc_base = n + HY_ARRAY_LEN(config_compat);
    for (size_t i = 0; i < n; i++) {
        seen[i] = (char)config_get_matches(x, config_name(i));
        matched += (size_t)seen[i];
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(config_compat); i++) {
        seen[n + i] = (char)config_get_matches(x, config_compat[i][0]);
        matched += (size_t)seen[n + i];
    }
    for (size_t i = 0; i < nenc; i++) {
        seen[enc_base + i] = (char)config_get_matches(x, store_encoding_name(i));
        matched += (size_t)seen[enc_base + i];
    }
    resp_write_map(&x->w, matched);
    for (size_t i = 0; i < n; i++) {
        if (seen[i]) {
            char value[512];
            config_get(x->node->cfg, i, value, sizeof(value));
            if (config_is_secret(i) && value[0] != '\0') {
                /* Any client could read it, and the YAML file is recommended precisely to keep
                 * the secret out of `ps`. Whether one is set is all CONFIG GET tells. */
                snprintf(value, sizeof(value), "%s", CONFIG_REDACTED);
            }
            resp_write_bulk_str(&x->w, config_name(i));
            resp_write_bulk_str(&x->w, value);
        }
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(config_compat); i++) {
        if (seen[n + i]) {
            resp_write_bulk_str(&x->w, config_compat[i][0]);
            resp_write_bulk_str(&x->w, config_compat[i][1]);
        }
    }
    const struct store_encoding *enc = store_encoding(node_group_of_slot(x->node, 0)->store);
    for (size_t i = 0; i < nenc; i++) {
        if (seen[enc_base + i]) {
            int64_t v = 0;
            HY_ASSERT(store_encoding_get(enc, store_encoding_name(i), &v));
            resp_write_bulk_str(&x->w, store_encoding_name(i));
            resp_write_bulk_i64(&x->w, v);
        }
    }
}

/* Copies argv[i] into a NUL-terminated buffer, truncating to cap - 1 bytes. */
static void arg_text(const struct resp_arg *a, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)HY_MIN(a->len, cap - 1), (const char *)a->ptr);
}

/* Puts back the settings changed by a CONFIG SET that failed part way: all or nothing. An
 * index below 0 changed nothing here (a fixed answer, or an encoding threshold, which is
 * only proposed once every setting passed). */
static void config_set_rollback(struct hy_node *n, char (*old)[1024], const int *index,
                                size_t count)
{
    struct hy_config *cfg = n->cfg;
    char err[160];
    for (size_t k = count; k-- > 0;) {
        if (index[k] < 0) {
            continue;
        }
        int rc = config_set(cfg, config_name((size_t)index[k]), old[k], 0, err);
        HY_ASSERT(rc == HY_OK); /* the value was valid a moment ago */
    }
}

/* The encoding thresholds of a CONFIG SET whose every setting passed (index[k] -2), as one
 * HY.CONFIGPART per partition, each an entry of that partition's log: every replica then lays
 * collections out alike, and a follower's client changes what the leader uses. Answered +OK
 * once every partition applied them (the node settings of the same CONFIG SET are already
 * changed here: a partition without a leader fails the reply, not them). */
static void config_set_encodings(struct cmd_ctx *x, const int *index, size_t pairs)
{
    struct resp_arg *extra = hy_xcalloc(2 * pairs, sizeof(*extra));
    size_t n = 0;
    for (size_t k = 0; k < pairs; k++) {
        if (index[k] == -2) {
            extra[n++] = x->argv[2 + 2 * k];
            extra[n++] = x->argv[3 + 2 * k];
        }
    }
    node_scatter_parts(x, "HY.CONFIGPART", extra, n, "");
    hy_free(extra);
}

/* HY.CONFIGPART slot name value [name value ...]: one partition's part of a CONFIG SET of
 * encoding thresholds (routed to the partition holding the slot, like HY.FLUSHPART). */
void cmd_hy_configpart(struct cmd_ctx *x)
{
    if (x->argc % 2 != 0) {
        node_reply_syntax_error(x);
        return;
    }
    struct store_arg *args = hy_xcalloc(x->argc - 2, sizeof(*args));
    for (size_t i = 2; i < x->argc; i++) {
        args[i - 2] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
    }
    struct store_entry e = {.op = STORE_OP_ENCODING_SET,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)(x->argc - 2),
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

static void config_set_cmd(struct cmd_ctx *x)
{
    if (x->argc < 4 || x->argc % 2 != 0) {
        node_reply_arity(&x->w, "config|set");
        return;
    }
    size_t pairs = (x->argc - 2) / 2, nenc = 0;
    /* Encoding thresholds are checked on a copy here and proposed to every partition below. */
    struct store_encoding scratch = *store_encoding(node_group_of_slot(x->node, 0)->store);
    char(*old)[1024] = hy_xcalloc(pairs, sizeof(*old));
    int *index = hy_xcalloc(pairs, sizeof(*index));
    size_t done = 0;
    for (; done < pairs; done++) {
        char name[128], value[1024], err[160];
        arg_text(&x->argv[2 + 2 * done], name, sizeof(name));
        arg_text(&x->argv[3 + 2 * done], value, sizeof(value));
        index[done] = config_index(name);
        if (index[done] < 0 && encoding_find(name) >= 0) {
            int64_t v;
            if (!hy_parse_i64((const uint8_t *)value, strlen(value), &v) ||
                !store_encoding_set(&scratch, (const uint8_t *)name, strlen(name), v)) {
                resp_write_errorf(&x->w,
                                  "ERR CONFIG SET failed (possibly related to argument '%s') - "
                                  "argument couldn't be parsed into an integer",
                                  name);
                break;
            }
            index[done] = -2;
            nenc++;
            continue;
        }
        if (index[done] < 0 && compat_unchanged(name, value)) {
            index[done] = -1; /* setting a fixed answer to itself changes nothing */
            continue;
        }
        if (index[done] < 0) {
            resp_write_errorf(
                &x->w, "ERR Unknown option or number of arguments for CONFIG SET - '%s'", name);
            break;
        }
        config_get(x->node->cfg, (size_t)index[done], old[done], sizeof(old[done]));
        if (config_set(x->node->cfg, name, value, 1, err) != HY_OK) {
            resp_write_errorf(
                &x->w, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", name, err);
            break;
        }
    }
    char hook_err[300];
    if (done == pairs && x->node->config_hook != NULL &&
        x->node->config_hook(x->node->config_hook_ctx, x->node->cfg, hook_err, sizeof(hook_err)) !=
            0) {
        resp_write_errorf(&x->w, "ERR CONFIG SET failed - %s", hook_err);
        config_set_rollback(x->node, old, index, done);
    } else if (done < pairs) {
        config_set_rollback(x->node, old, index, done);
    } else {
        node_reconfigure(x->node);
        if (nenc == 0) {
            resp_write_ok(&x->w);
        } else {
            config_set_encodings(x, index, pairs);
        }
    }
    hy_free(old);
    hy_free(index);
}

void cmd_config(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "GET")) {
        if (x->argc < 3) {
            node_reply_arity(&x->w, "config|get");
            return;
        }
        config_get_cmd(x);
    } else if (node_arg_is(sub, "SET")) {
        config_set_cmd(x);
    } else if (node_arg_is(sub, "REWRITE") && x->argc == 2) {
        /* This node's own file: settings are each node's (the encoding thresholds, replicated
         * state, are in no file). */
        char err[600];
        struct hy_node *n = x->node;
        if (n->rewrite_hook == NULL || n->cfg->config_file[0] == 0) {
            resp_write_error(&x->w, "ERR The server is running without a config file");
        } else if (n->rewrite_hook(n->rewrite_hook_ctx, n->cfg, err, sizeof(err)) != 0) {
            resp_write_errorf(&x->w, "ERR Rewriting config file: %s", err);
        } else {
            hy_log(n->log, HY_LOG_INFO, "CONFIG REWRITE executed with success.");
            resp_write_ok(&x->w);
        }
    } else if (node_arg_is(sub, "HELP") && x->argc == 2) {
        static const char *const lines[] = {
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Print this help."};
        node_reply_help(x, lines, HY_ARRAY_LEN(lines));
    } else if (node_arg_is(sub, "RESETSTAT") && x->argc == 2) {
        memset(&x->node->stats, 0, sizeof(x->node->stats));
        x->node->stats.ops_sample_ms = x->now_ms;
        resp_write_ok(&x->w);
    } else {
        resp_write_errorf(&x->w, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}

/* ---- SAVE and SHUTDOWN ------------------------------------------------------------------------
 */

/* SAVE: Redis writes its dataset to disk; here the log already is on disk (fsync'd), and the
 * counterpart of an RDB save is a snapshot of each partition this node holds, taken now. */
void cmd_save(struct cmd_ctx *x)
{
    for (size_t i = 0; i < x->node->group_count; i++) {
        (void)replica_snapshot_now(x->node->groups[i], x->now_ms); /* nothing new: kept */
    }
    resp_write_ok(&x->w);
}

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: the node stops as HALYARD DRAIN stops it
 * (leadership handed to another voter first, then every reply flushed and the process exits
 * 0), so a cluster loses no acknowledged write and no more availability than it must. As in
 * Redis, a shutdown under way answers nothing (the connection closes); SAVE takes the
 * snapshots first; NOW and FORCE are accepted (nothing here waits for replicas to catch up
 * or can fail to save); ABORT calls off a shutdown still handing leadership over. */
void cmd_shutdown(struct cmd_ctx *x)
{
    int save = 0, nosave = 0, abort_it = 0;
    for (size_t i = 1; i < x->argc; i++) {
        if (node_arg_is(&x->argv[i], "NOSAVE")) {
            nosave = 1;
        } else if (node_arg_is(&x->argv[i], "SAVE")) {
            save = 1;
        } else if (node_arg_is(&x->argv[i], "ABORT")) {
            abort_it = 1;
        } else if (!node_arg_is(&x->argv[i], "NOW") && !node_arg_is(&x->argv[i], "FORCE")) {
            node_reply_syntax_error(x);
            return;
        }
    }
    if ((save && nosave) || (abort_it && x->argc != 2)) {
        node_reply_syntax_error(x);
        return;
    }
    if (abort_it) {
        if (!x->node->draining) {
            resp_write_error(&x->w, "ERR No shutdown in progress.");
            return;
        }
        x->node->draining = 0;
        resp_write_ok(&x->w);
        return;
    }
    if (save) {
        for (size_t i = 0; i < x->node->group_count; i++) {
            (void)replica_snapshot_now(x->node->groups[i], x->now_ms);
        }
    }
    hy_log(x->node->log, HY_LOG_WARN,
           "SHUTDOWN from client %llu: handing leadership over, then stopping",
           (unsigned long long)x->client->id);
    x->node->draining = 1;
    node_drain_step(x->node, x->now_ms);
}

/* TIME: the node's clock, which has millisecond resolution (the shell reads it once per loop
 * turn), so the microseconds are whole milliseconds. Inside a script it is the entry's time,
 * the same on every replica, so a script may write what TIME answered. */
void cmd_time(struct cmd_ctx *x)
{
    char sec[24], usec[24];
    int ls = snprintf(sec, sizeof(sec), "%llu", (unsigned long long)(x->now_ms / 1000));
    int lu = snprintf(usec, sizeof(usec), "%llu", (unsigned long long)(x->now_ms % 1000 * 1000));
    resp_write_array(&x->w, 2);
    resp_write_bulk(&x->w, sec, (size_t)ls);
    resp_write_bulk(&x->w, usec, (size_t)lu);
}
