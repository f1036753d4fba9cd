/*
 * cmd_command.c - COMMAND GETKEYS, GETKEYSANDFLAGS, LIST [FILTERBY ...] and HELP, from the
 * command table (commands.def): which arguments of a request are keys, as routing finds
 * them, and Redis 7.0's key flags for the commands whose flags clients ask about.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/acl.h"
#include "node/node_internal.h"

/* Commands whose keys follow a numkeys argument, and where it is (the table's key columns
 * name only the first); pos_dst: a destination key before numkeys (ZUNIONSTORE's). */
static const struct {
    const char *name;
    size_t pos, dst;
} numkeys_cmds[] = {
    {"lmpop", 1, 0},       {"sintercard", 1, 0}, {"zmpop", 1, 0},      {"zunion", 1, 0},
    {"zinter", 1, 0},      {"zdiff", 1, 0},      {"zintercard", 1, 0}, {"zunionstore", 2, 1},
    {"zinterstore", 2, 1}, {"zdiffstore", 2, 1}, {"blmpop", 2, 0},     {"bzmpop", 2, 0},
};

/* The positions of d's keys in argv (argv[0] the command name), at most cap; returns how many
 * there are (may exceed cap), or -1 when the arguments do not say (a bad numkeys). */
static long command_keys(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                         size_t *pos, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(numkeys_cmds); i++) {
        if (strcmp(d->name, numkeys_cmds[i].name) != 0) {
            continue;
        }
        int64_t k;
        size_t at = numkeys_cmds[i].pos;
        if (at >= argc || !hy_parse_i64(argv[at].ptr, argv[at].len, &k) || k <= 0 ||
            (uint64_t)k > argc - at - 1) {
            return -1;
        }
        if (numkeys_cmds[i].dst > 0 && n < cap) {
            pos[n] = numkeys_cmds[i].dst;
        }
        n += numkeys_cmds[i].dst > 0;
        for (size_t j = at + 1; j <= at + (size_t)k; j++, n++) {
            if (n < cap) {
                pos[n] = j;
            }
        }
        return (long)n;
    }
    if (d->first_key <= 0 || (size_t)d->first_key >= argc) {
        return 0;
    }
    if (d->handler == cmd_migrate) {
        size_t first, count;
        node_migrate_keys(argc, argv, &first, &count);
        for (size_t j = 0; j < count; j++) {
            if (j < cap) {
                pos[j] = first + j;
            }
        }
        return (long)count;
    }
    size_t last = d->last_key < 0 ? argc - (size_t)(-d->last_key) : (size_t)d->last_key;
    size_t step = d->key_step > 0 ? (size_t)d->key_step : 1;
    for (size_t i = (size_t)d->first_key; i <= last && i < argc; i += step, n++) {
        if (n < cap) {
            pos[n] = i;
        }
    }
    /* SORT ... STORE dst: the destination is a key too. */
    if (strcmp(d->name, "sort") == 0) {
        for (size_t i = 2; i + 1 < argc; i++) {
            if (node_arg_is(&argv[i], "STORE")) {
                if (n < cap) {
                    pos[n] = i + 1;
                }
                n++;
                break;
            }
        }
    }
    return (long)n;
}

/* Redis 7.0's key-spec flags of key number k of d (GETKEYSANDFLAGS). */
static const char *const *key_flags(const struct cmd_def *d, size_t k, size_t *n_out)
{
    static const char *const ow_update[] = {"OW", "update"};
    static const char *const rw_access_delete[] = {"RW", "access", "delete"};
    static const char *const rw_insert[] = {"RW", "insert"};
    static const char *const ro_access[] = {"RO", "access"};
    static const char *const rw_update[] = {"RW", "update"};
    static const char *const rw_access_update[] = {"RW", "access", "update"};
    static const char *const rm_delete[] = {"RM", "delete"};
    const char *name = d->name;
    const char *const *f = NULL;
    if (strcmp(name, "set") == 0 || strcmp(name, "mset") == 0 || strcmp(name, "setex") == 0 ||
        strcmp(name, "psetex") == 0 || strcmp(name, "restore") == 0) {
        f = ow_update;
    } else if (strcmp(name, "lmove") == 0 || strcmp(name, "blmove") == 0 ||
               strcmp(name, "rpoplpush") == 0 || strcmp(name, "brpoplpush") == 0 ||
               strcmp(name, "smove") == 0) {
        f = k == 0 ? rw_access_delete : rw_insert;
    } else if (strcmp(name, "sort") == 0) {
        f = k == 0 ? ro_access : ow_update;
    } else if (strcmp(name, "del") == 0 || strcmp(name, "unlink") == 0) {
        f = rm_delete;
    } else if (d->flags & CMD_WRITE) {
        f = (d->flags & CMD_DENYOOM) ? rw_update : rw_access_update;
    } else {
        f = ro_access;
    }
    *n_out = f == rm_delete || f == ow_update || f == rw_insert || f == ro_access || f == rw_update
                 ? 2
                 : 3;
    return f;
}

/* COMMAND GETKEYS / GETKEYSANDFLAGS command args...: as Redis 7.0's getKeysSubcommandImpl. */
static void command_getkeys(struct cmd_ctx *x, int with_flags)
{
    if (x->argc < 3) {
        node_reply_arity(&x->w, with_flags ? "command|getkeysandflags" : "command|getkeys");
        return;
    }
    size_t argc = x->argc - 2;
    const struct resp_arg *argv = x->argv + 2;
    const struct cmd_def *d = node_command_lookup(x->node, argv[0].ptr, argv[0].len);
    if (d != NULL) {
        d = node_command_sub(x->node, d, argc, argv);
    }
    if (d == NULL) {
        resp_write_error(&x->w, "ERR Invalid command specified");
        return;
    }
    if (d->first_key <= 0) {
        resp_write_error(&x->w, "ERR The command has no key arguments");
        return;
    }
    if ((d->arity > 0 && (size_t)d->arity != argc) ||
        argc < (size_t)(d->arity < 0 ? -d->arity : 0)) {
        resp_write_error(&x->w, "ERR Invalid number of arguments specified for command");
        return;
    }
    size_t cap = argc;
    size_t *pos = hy_xmalloc(HY_MAX(cap, 1) * sizeof(*pos));
    long n = command_keys(d, argc, argv, pos, cap);
    if (n == 0 && node_is_script(d)) {
        /* Scripts may take no key (Redis 7.0's no_mandatory_keys flag): an empty list. */
        resp_write_array(&x->w, 0);
        hy_free(pos);
        return;
    }
    if (n <= 0) {
        resp_write_error(&x->w, "ERR Invalid arguments specified for command");
        hy_free(pos);
        return;
    }
    resp_write_array(&x->w, (size_t)n);
    for (size_t k = 0; k < (size_t)n; k++) {
        if (with_flags) {
            size_t nf;
            const char *const *f = key_flags(d, k, &nf);
            resp_write_array(&x->w, 2);
            resp_write_bulk(&x->w, argv[pos[k]].ptr, argv[pos[k]].len);
            resp_write_set(&x->w, nf);
            for (size_t j = 0; j < nf; j++) {
                resp_write_simple(&x->w, f[j]);
            }
        } else {
            resp_write_bulk(&x->w, argv[pos[k]].ptr, argv[pos[k]].len);
        }
    }
    hy_free(pos);
}

/* The subcommands halyard implements of Redis 7.0's container commands, which COMMAND LIST
 * names "parent|sub" after their parent, as Redis does (those with an entry of their own in
 * the command table, acl|setuser, script|load..., are listed from it). */
static const struct {
    const char *parent;
    const char *subs;
} command_subs[] = {
    {"acl", "cat deluser dryrun getuser genpass help list log setuser users whoami"},
    {"client", "getname help id info kill list reply setname unblock"},
    {"cluster", "help info keyslot myid nodes shards slots"},
    {"command", "count docs getkeys getkeysandflags help info list"},
    {"config", "get help resetstat rewrite set"},
    {"function", "delete dump flush help kill list load restore stats"},
    {"memory", "usage"},
    {"object", "encoding freq help idletime refcount"},
    {"pubsub", "channels help numpat numsub shardchannels shardnumsub"},
    {"script", "exists flush help kill load"},
    {"xgroup", "create createconsumer delconsumer destroy help setid"},
    {"xinfo", "consumers groups help stream"},
};

/* Whether COMMAND LIST shows name ("parent|sub" for a subcommand of d) under the filter. */
static int command_listed(struct cmd_ctx *x, int kind, int cat, const struct cmd_def *d,
                          const char *name, const char *sub)
{
    if (kind == 2) {
        struct resp_arg argv[2] = {
            {(const uint8_t *)d->name, strlen(d->name)},
            {(const uint8_t *)(sub != NULL ? sub : ""), sub != NULL ? strlen(sub) : 0}};
        uint32_t cats = acl_command_categories(d, sub != NULL ? 2 : 1, argv);
        if (cat < 0 || !(cats & (1u << cat))) {
            return 0;
        }
    }
    return kind != 3 ||
           hy_glob_match(x->argv[4].ptr, x->argv[4].len, (const uint8_t *)name, strlen(name), 1);
}

/* COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]. */
static void command_list(struct cmd_ctx *x)
{
    int kind = 0; /* 0 none, 1 module, 2 aclcat, 3 pattern */
    if (x->argc == 5 && node_arg_is(&x->argv[2], "FILTERBY")) {
        kind = node_arg_is(&x->argv[3], "MODULE")    ? 1
               : node_arg_is(&x->argv[3], "ACLCAT")  ? 2
               : node_arg_is(&x->argv[3], "PATTERN") ? 3
                                                     : -1;
    } else if (x->argc != 2) {
        kind = -1;
    }
    if (kind < 0) {
        node_reply_syntax_error(x);
        return;
    }
    if (kind == 1) {
        resp_write_array(&x->w, 0); /* no modules */
        return;
    }
    int cat = kind == 2 ? acl_category_find(x->argv[4].ptr, x->argv[4].len) : 0;
    struct hy_buf names; /* the names shown, as RESP bulk strings */
    hy_buf_init(&names);
    struct resp_writer nw = {&names, x->w.proto};
    size_t n = 0;
    for (size_t i = 0; i < node_command_count; i++) {
        const struct cmd_def *d = &node_commands[i];
        if (command_listed(x, kind, cat, d, d->name, NULL)) {
            resp_write_bulk_str(&nw, d->name);
            n++;
        }
        for (size_t j = 0; j < HY_ARRAY_LEN(command_subs); j++) {
            if (strcmp(command_subs[j].parent, d->name) != 0) {
                continue;
            }
            for (const char *p = command_subs[j].subs; *p != '\0';) {
                size_t len = strcspn(p, " ");
                char sub[32], full[64];
                snprintf(sub, sizeof(sub), "%.*s", (int)len, p);
                snprintf(full, sizeof(full), "%s|%s", d->name, sub);
                if (node_command_lookup(x->node, (const uint8_t *)full, strlen(full)) == NULL &&
                    command_listed(x, kind, cat, d, full, sub)) {
                    resp_write_bulk_str(&nw, full);
                    n++;
                }
                p += len + (p[len] == ' ');
            }
        }
    }
    resp_write_array(&x->w, n);
    hy_buf_append(x->w.out, names.data, names.len);
    hy_buf_free(&names);
}

static void command_help(struct cmd_ctx *x)
{
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Print this help.",
    };
    node_reply_help(x, lines, HY_ARRAY_LEN(lines));
}

int node_command_more(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "GETKEYS")) {
        command_getkeys(x, 0);
    } else if (node_arg_is(sub, "GETKEYSANDFLAGS")) {
        command_getkeys(x, 1);
    } else if (node_arg_is(sub, "LIST")) {
        command_list(x);
    } else if (node_arg_is(sub, "HELP") && x->argc == 2) {
        command_help(x);
    } else {
        return 0;
    }
    return 1;
}
