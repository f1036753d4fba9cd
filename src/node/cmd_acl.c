/*
 * cmd_acl.c - the ACL command: SETUSER DELUSER GETUSER LIST USERS WHOAMI CAT LOG DRYRUN GENPASS
 * (see acl.h). SETUSER and DELUSER are log entries proposed by the leader: their own rows in
 * commands.def (acl|setuser, acl|deluser) are writes, so dispatch brings them to the leader as
 * any write (waiting for one, or forwarding under the follower's session: applied once); the
 * rest read this node's replica of the users and its own ACL LOG.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/acl.h"

#define HASH_HEX_BYTES (2 * STORE_ACL_HASH_BYTES)

static void hex(const uint8_t *buf, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[buf[i] >> 4];
        out[2 * i + 1] = digits[buf[i] & 15];
    }
    out[2 * len] = '\0';
}

/* ---- SETUSER / DELUSER: proposed by the leader ---------------------------------------------- */

static int user_name_ok(const struct resp_arg *a)
{
    if (a->len == 0 || a->len > STORE_ACL_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < a->len; i++) {
        if (a->ptr[i] <= ' ' || a->ptr[i] > '~') {
            return 0;
        }
    }
    return 1;
}

/* A "+name", "-@cat", "+name|sub" rule names a command or category that exists. */
int acl__command_rule_known(const struct hy_node *n, const struct resp_arg *r)
{
    if (r->len < 2 || (r->ptr[0] != '+' && r->ptr[0] != '-')) {
        return 1; /* not a command rule */
    }
    if (r->ptr[1] == '@') {
        return hy_eq_nocase(r->ptr + 2, r->len - 2, "all") ||
               acl_category_find(r->ptr + 2, r->len - 2) >= 0;
    }
    const uint8_t *bar = memchr(r->ptr + 1, '|', r->len - 1);
    size_t len = bar ? (size_t)(bar - r->ptr - 1) : r->len - 1;
    return node_command_lookup(n, r->ptr + 1, len) != NULL;
}

/* Turns x's rules into the entry's: clear passwords hashed (">p" -> "#hex", "<p" -> "!hex").
 * args[0] is the name; hashes are written into `hexes` (ACL_HASHED_RULE_BYTES per rule). Returns
 * 0 with the error written. */
static int setuser_translate(struct cmd_ctx *x, struct store_arg *args, char *hexes)
{
    struct hy_node *n = x->node;
    args[0] = (struct store_arg){x->argv[2].ptr, x->argv[2].len};
    for (size_t i = 3; i < x->argc; i++) {
        const struct resp_arg *r = &x->argv[i];
        args[i - 2] = (struct store_arg){r->ptr, r->len};
        if (!acl__command_rule_known(n, r)) {
            resp_write_errorf(&x->w,
                              "ERR Error in ACL SETUSER modifier '%.*s': Unknown command or "
                              "category name in ACL",
                              (int)HY_MIN(r->len, 128), (const char *)r->ptr);
            return 0;
        }
        if (r->len == 0 || (r->ptr[0] != '>' && r->ptr[0] != '<')) {
            continue;
        }
        if (n->crypto_hash == NULL) {
            resp_write_error(&x->w, "ERR this node cannot hash passwords (no SHA-256 lent)");
            return 0;
        }
        char *h = hexes + (i - 3) * ACL_HASHED_RULE_BYTES;
        acl__hash_rule(n, r->ptr, r->len, h);
        args[i - 2] = (struct store_arg){(const uint8_t *)h, ACL_HASHED_RULE_BYTES - 1};
    }
    return 1;
}

/* The rules of the implicit default user, which the first SETUSER default starts from (its
 * requirepass is node configuration and stays out of the log). */
static const char *const implicit_default_rules[] = {"on", "nopass", "~*", "&*", "+@all"};
#define IMPLICIT_RULES HY_ARRAY_LEN(implicit_default_rules)

/* Applies the rules to a copy of the user as it is here, so errors are answered before
 * anything is proposed (apply checks again: the leader's state may differ). */
static int setuser_dry_run(struct cmd_ctx *x, const struct store_arg *args, size_t count)
{
    struct store_acl_user *tmp;
    const struct store_acl_user *u =
        acl__resolve(x->node, x->node->meta->store, args[0].ptr, args[0].len, &tmp);
    struct store_acl_user *w =
        u != NULL ? store_acl_user_copy(u) : store_acl_user_new(args[0].ptr, args[0].len);
    store_acl_user_free(tmp);
    for (size_t i = 1; i < count; i++) {
        const char *err = store_acl_rule_apply(w, args[i].ptr, args[i].len);
        if (err != NULL) {
            const struct resp_arg *orig = &x->argv[i + 2]; /* as the client wrote it */
            resp_write_errorf(&x->w, "ERR Error in ACL SETUSER modifier '%.*s': %s",
                              (int)HY_MIN(orig->len, 128), (const char *)orig->ptr, err);
            store_acl_user_free(w);
            return 0;
        }
    }
    store_acl_user_free(w);
    return 1;
}

static void acl_setuser(struct cmd_ctx *x)
{
    if (!user_name_ok(&x->argv[2])) {
        resp_write_error(&x->w, "ERR Usernames can't contain spaces or null characters");
        return;
    }
    size_t rules = x->argc - 3;
    struct store_arg *args = hy_xmalloc((rules + 1 + IMPLICIT_RULES) * sizeof(*args));
    char *hexes = hy_xmalloc(HY_MAX(rules, 1) * ACL_HASHED_RULE_BYTES);
    /* A write (the acl|setuser row): dispatch brought it to the leader, or forwarded it. */
    if (setuser_translate(x, args, hexes) && setuser_dry_run(x, args, rules + 1)) {
        size_t count = rules + 1;
        if (store_acl_find(x->node->meta->store, args[0].ptr, args[0].len) == NULL &&
            args[0].len == 7 && memcmp(args[0].ptr, "default", 7) == 0) {
            memmove(&args[1 + IMPLICIT_RULES], &args[1], rules * sizeof(*args));
            for (size_t i = 0; i < IMPLICIT_RULES; i++) {
                const char *r = implicit_default_rules[i];
                args[1 + i] = (struct store_arg){(const uint8_t *)r, strlen(r)};
            }
            count += IMPLICIT_RULES;
        }
        struct store_entry e = {.op = STORE_OP_ACL_SETUSER,
                                .time_ms = x->now_ms,
                                .expire_at_ms = -1,
                                .argc = (uint32_t)count,
                                .argv = args};
        node_propose(x, &e);
    }
    hy_free(hexes);
    hy_free(args);
}

static void acl_deluser(struct cmd_ctx *x)
{
    for (size_t i = 2; i < x->argc; i++) {
        if (x->argv[i].len == 7 && memcmp(x->argv[i].ptr, "default", 7) == 0) {
            resp_write_error(&x->w, "ERR The 'default' user cannot be removed");
            return;
        }
    }
    acl__propose_args(x, STORE_OP_ACL_DELUSER, 2);
}

void acl__propose_args(struct cmd_ctx *x, uint32_t op, size_t from)
{
    size_t count = x->argc > from ? x->argc - from : 0;
    struct store_arg *args = hy_xmalloc(HY_MAX(count, 1) * sizeof(*args));
    for (size_t i = 0; i < count; i++) {
        args[i] = (struct store_arg){x->argv[i + from].ptr, x->argv[i + from].len};
    }
    struct store_entry e = {
        .op = op, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = (uint32_t)count, .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

void acl__hash_rule(const struct hy_node *n, const uint8_t *rule, size_t len, char *out)
{
    HY_ASSERT(n->crypto_hash != NULL && len >= 1);
    uint8_t hash[STORE_ACL_HASH_BYTES];
    n->crypto_hash(rule + 1, len - 1, hash);
    out[0] = rule[0] == '>' ? '#' : '!';
    hex(hash, sizeof(hash), out + 1);
}

/* ---- reading users -------------------------------------------------------------------------- */

/* The users in name order, the implicit default included: count, and each through cb. */
typedef void (*user_cb)(struct cmd_ctx *x, const struct store_acl_user *u);
static void for_each_user(struct cmd_ctx *x, user_cb cb)
{
    const struct store_acl_user *const *v;
    size_t count = store_acl_users(x->node->meta->store, &v);
    struct store_acl_user *dflt = NULL;
    if (store_acl_find(x->node->meta->store, (const uint8_t *)"default", 7) == NULL) {
        dflt = acl__implicit_default(x->node);
    }
    resp_write_array(&x->w, count + (dflt != NULL));
    for (size_t i = 0; i < count; i++) {
        if (dflt != NULL && strcmp(v[i]->name, "default") > 0) {
            cb(x, dflt);
            store_acl_user_free(dflt);
            dflt = NULL;
        }
        cb(x, v[i]);
    }
    if (dflt != NULL) {
        cb(x, dflt);
        store_acl_user_free(dflt);
    }
}

static void list_one(struct cmd_ctx *x, const struct store_acl_user *u)
{
    struct hy_buf b;
    hy_buf_init(&b);
    hy_buf_printf(&b, "user %s ", u->name);
    store_acl_user_describe(u, &b);
    resp_write_bulk(&x->w, b.data, b.len);
    hy_buf_free(&b);
}

static void users_one(struct cmd_ctx *x, const struct store_acl_user *u)
{
    resp_write_bulk_str(&x->w, u->name);
}

/* The tokens of u's description that start with one of `firsts` (keys: "~%", channels: "&"),
 * space-separated, as GETUSER reports them. */
static void describe_part(const struct store_acl_user *u, const char *part, struct hy_buf *out)
{
    struct hy_buf d;
    hy_buf_init(&d);
    store_acl_user_describe(u, &d);
    size_t i = 0;
    while (i < d.len) {
        size_t j = i;
        while (j < d.len && d.data[j] != ' ') {
            j++;
        }
        uint8_t c = d.data[i];
        int want = strcmp(part, "keys") == 0       ? (c == '~' || c == '%')
                   : strcmp(part, "channels") == 0 ? c == '&'
                                                   : (c == '+' || c == '-');
        if (want) {
            if (out->len > 0) {
                hy_buf_append(out, " ", 1);
            }
            hy_buf_append(out, d.data + i, j - i);
        }
        i = j + 1;
    }
    hy_buf_free(&d);
}

static void acl_getuser(struct cmd_ctx *x)
{
    struct store_acl_user *tmp;
    const struct store_acl_user *u =
        acl__resolve(x->node, x->node->meta->store, x->argv[2].ptr, x->argv[2].len, &tmp);
    if (u == NULL) {
        resp_write_null(&x->w);
        return;
    }
    struct resp_writer *w = &x->w;
    resp_write_map(w, 6);
    resp_write_bulk_str(w, "flags");
    int nopass = (u->flags & STORE_ACL_NOPASS) != 0;
    resp_write_array(w, 1 + (size_t)nopass);
    resp_write_bulk_str(w, (u->flags & STORE_ACL_ON) ? "on" : "off");
    if (nopass) {
        resp_write_bulk_str(w, "nopass");
    }
    resp_write_bulk_str(w, "passwords");
    resp_write_array(w, u->password_count);
    for (size_t i = 0; i < u->password_count; i++) {
        char h[HASH_HEX_BYTES + 1];
        hex(u->passwords[i], STORE_ACL_HASH_BYTES, h);
        resp_write_bulk_str(w, h);
    }
    static const char *const parts[] = {"commands", "keys", "channels"};
    for (size_t p = 0; p < HY_ARRAY_LEN(parts); p++) {
        struct hy_buf b;
        hy_buf_init(&b);
        describe_part(u, parts[p], &b);
        resp_write_bulk_str(w, parts[p]);
        resp_write_bulk(w, b.data, b.len);
        hy_buf_free(&b);
    }
    resp_write_bulk_str(w, "selectors");
    resp_write_array(w, 0);
    store_acl_user_free(tmp);
}

static void acl_cat(struct cmd_ctx *x)
{
    if (x->argc == 2) {
        resp_write_array(&x->w, acl_category_count());
        for (size_t i = 0; i < acl_category_count(); i++) {
            resp_write_bulk_str(&x->w, acl_category_name(i));
        }
        return;
    }
    int c = acl_category_find(x->argv[2].ptr, x->argv[2].len);
    if (c < 0) {
        resp_write_errorf(&x->w, "ERR Unknown category '%.*s'", (int)HY_MIN(x->argv[2].len, 128),
                          (const char *)x->argv[2].ptr);
        return;
    }
    size_t count = 0;
    for (size_t i = 0; i < node_command_count; i++) {
        count += (acl_command_categories(&node_commands[i], 1, x->argv) >> c) & 1;
    }
    resp_write_array(&x->w, count);
    for (size_t i = 0; i < node_command_count; i++) {
        if ((acl_command_categories(&node_commands[i], 1, x->argv) >> c) & 1) {
            resp_write_bulk_str(&x->w, node_commands[i].name);
        }
    }
}

static void acl_log(struct cmd_ctx *x)
{
    int64_t count = 10;
    if (x->argc == 3 && node_arg_is(&x->argv[2], "RESET")) {
        acl__log_reset(x->node);
        resp_write_ok(&x->w);
        return;
    }
    if (x->argc == 3 && (!hy_parse_i64(x->argv[2].ptr, x->argv[2].len, &count) || count < 0)) {
        resp_write_error(&x->w, "ERR value is out of range, must be positive");
        return;
    }
    acl__log_reply(x, (size_t)count);
}

static void acl_dryrun(struct cmd_ctx *x)
{
    struct store_acl_user *tmp;
    const struct store_acl_user *u =
        acl__resolve(x->node, x->node->meta->store, x->argv[2].ptr, x->argv[2].len, &tmp);
    if (u == NULL) {
        resp_write_errorf(&x->w, "ERR User '%.*s' not found", (int)HY_MIN(x->argv[2].len, 128),
                          (const char *)x->argv[2].ptr);
        return;
    }
    size_t argc = x->argc - 3;
    const struct resp_arg *argv = x->argv + 3;
    const struct cmd_def *d = node_command_lookup(x->node, argv[0].ptr, argv[0].len);
    d = node_command_sub(x->node, d, argc, argv);
    if (d == NULL) {
        resp_write_errorf(&x->w, "ERR Command '%.*s' not found", (int)HY_MIN(argv[0].len, 128),
                          (const char *)argv[0].ptr);
    } else if (d->arity > 0 ? argc != (size_t)d->arity : argc < (size_t)-d->arity) {
        node_reply_arity(&x->w, d->name);
    } else {
        size_t key = 0;
        enum acl_result r = acl_user_check(u, d, argc, argv, &key);
        if (r == ACL_OK) {
            resp_write_ok(&x->w);
        } else {
            struct hy_buf b;
            hy_buf_init(&b);
            if (r == ACL_DENIED_CMD) {
                hy_buf_printf(&b, "This user has no permissions to run the '%s' command", d->name);
            } else {
                hy_buf_printf(&b, "This user has no permissions to access the '%.*s' %s",
                              (int)HY_MIN(argv[key].len, 128), (const char *)argv[key].ptr,
                              r == ACL_DENIED_CHANNEL ? "channel" : "key");
            }
            resp_write_bulk(&x->w, b.data, b.len);
            hy_buf_free(&b);
        }
    }
    store_acl_user_free(tmp);
}

static void acl_genpass(struct cmd_ctx *x)
{
    int64_t bits = 256;
    if (x->argc == 3 &&
        (!hy_parse_i64(x->argv[2].ptr, x->argv[2].len, &bits) || bits <= 0 || bits > 4096)) {
        resp_write_error(&x->w, "ERR ACL GENPASS argument must be the number of bits for the "
                                "output password, a positive number up to 4096");
        return;
    }
    if (x->node->crypto_random == NULL) {
        resp_write_error(&x->w, "ERR this node has no random source");
        return;
    }
    uint8_t buf[512];
    char out[1025];
    size_t chars = (size_t)(bits + 3) / 4;
    x->node->crypto_random(buf, (chars + 1) / 2);
    hex(buf, (chars + 1) / 2, out);
    resp_write_bulk(&x->w, out, chars);
}

static void acl_help(struct cmd_ctx *x)
{
    static const char *const lines[] = {
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command "
        "categories when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the "
        "command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password.",
        "LIST",
        "    Show users details in config file format.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help.",
    };
    node_reply_help(x, lines, HY_ARRAY_LEN(lines));
}

void cmd_acl(struct cmd_ctx *x)
{
    static const struct {
        const char *name;
        void (*fn)(struct cmd_ctx *x);
        size_t argc_min, argc_max; /* including ACL and the subcommand */
    } subs[] = {
        {"setuser", acl_setuser, 3, SIZE_MAX},
        {"deluser", acl_deluser, 3, SIZE_MAX},
        {"getuser", acl_getuser, 3, 3},
        {"cat", acl_cat, 2, 3},
        {"log", acl_log, 2, 3},
        {"dryrun", acl_dryrun, 4, SIZE_MAX},
        {"genpass", acl_genpass, 2, 3},
        {"help", acl_help, 2, 2},
    };
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "WHOAMI") && x->argc == 2) {
        resp_write_bulk_str(&x->w, x->client->user[0] ? x->client->user : "default");
        return;
    }
    if ((node_arg_is(sub, "LIST") || node_arg_is(sub, "USERS")) && x->argc == 2) {
        for_each_user(x, node_arg_is(sub, "LIST") ? list_one : users_one);
        return;
    }
    if (node_arg_is(sub, "LOAD") && x->argc == 2) {
        acl_file_cmd_load(x);
        return;
    }
    if (node_arg_is(sub, "SAVE") && x->argc == 2) {
        acl_file_cmd_save(x);
        return;
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(subs); i++) {
        if (!node_arg_is(sub, subs[i].name)) {
            continue;
        }
        if (x->argc < subs[i].argc_min || x->argc > subs[i].argc_max) {
            char name[32];
            snprintf(name, sizeof(name), "acl|%s", subs[i].name);
            node_reply_arity(&x->w, name);
            return;
        }
        subs[i].fn(x);
        return;
    }
    resp_write_errorf(&x->w,
                      "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                      "Try ACL HELP.",
                      (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
}
