/*
 * acl.c - categories, permission checks, authentication and ACL LOG (see acl.h).
 */
#include "node/acl.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"

_Static_assert(sizeof(((struct node_client *)0)->user) == STORE_ACL_NAME_MAX + 1,
               "a client holds one user name");

/* ---- categories ----------------------------------------------------------------------------- */

enum acl_cat {
    CAT_KEYSPACE,
    CAT_READ,
    CAT_WRITE,
    CAT_SET,
    CAT_SORTEDSET,
    CAT_LIST,
    CAT_HASH,
    CAT_STRING,
    CAT_BITMAP,
    CAT_HYPERLOGLOG,
    CAT_GEO,
    CAT_STREAM,
    CAT_PUBSUB,
    CAT_ADMIN,
    CAT_FAST,
    CAT_SLOW,
    CAT_BLOCKING,
    CAT_DANGEROUS,
    CAT_CONNECTION,
    CAT_TRANSACTION,
    CAT_SCRIPTING,
    CAT_COUNT
};

static const char *const cat_names[CAT_COUNT] = {
    "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
    "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting",
};

#define BIT(c) (1u << (c))

size_t acl_category_count(void)
{
    return CAT_COUNT;
}

const char *acl_category_name(size_t i)
{
    HY_ASSERT(i < CAT_COUNT);
    return cat_names[i];
}

int acl_category_find(const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < CAT_COUNT; i++) {
        if (hy_eq_nocase(name, len, cat_names[i])) {
            return (int)i;
        }
    }
    return -1;
}

/* Categories the flags and the group do not tell, as Redis files these commands. */
static const struct {
    const char *name;
    uint32_t cats;
} cat_extra[] = {
    {"flushall", BIT(CAT_KEYSPACE) | BIT(CAT_DANGEROUS)},
    {"flushdb", BIT(CAT_KEYSPACE) | BIT(CAT_DANGEROUS)},
    {"dbsize", BIT(CAT_KEYSPACE)},
    {"keys", BIT(CAT_DANGEROUS)},
    {"migrate", BIT(CAT_DANGEROUS)},
    {"info", BIT(CAT_DANGEROUS)},
    {"readonly", BIT(CAT_CONNECTION)},
    {"readwrite", BIT(CAT_CONNECTION)},
    {"hy.session", BIT(CAT_CONNECTION)},
};

static uint32_t group_categories(const char *group)
{
    static const struct {
        const char *group;
        uint32_t cats;
    } groups[] = {
        {"string", BIT(CAT_STRING)},
        {"hash", BIT(CAT_HASH)},
        {"list", BIT(CAT_LIST)},
        {"set", BIT(CAT_SET)},
        {"sorted-set", BIT(CAT_SORTEDSET)},
        {"sorted_set", BIT(CAT_SORTEDSET)}, /* the blocking pops' group name */
        {"stream", BIT(CAT_STREAM)},
        {"scripting", BIT(CAT_SCRIPTING)},
        {"generic", BIT(CAT_KEYSPACE)},
        {"connection", BIT(CAT_CONNECTION)},
        {"pubsub", BIT(CAT_PUBSUB)},
        {"transactions", BIT(CAT_TRANSACTION)},
        {"bitmap", BIT(CAT_BITMAP)},
        {"hyperloglog", BIT(CAT_HYPERLOGLOG)},
        {"geo", BIT(CAT_GEO)},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(groups); i++) {
        if (strcmp(groups[i].group, group) == 0) {
            return groups[i].cats;
        }
    }
    return 0;
}

/* CLIENT, ACL and CLUSTER are containers: in Redis their harmless subcommands (CLIENT SETNAME,
 * ACL WHOAMI, CLUSTER INFO) are neither @admin nor @dangerous, which clients rely on. */
static int harmless_subcommand(const struct cmd_def *d, size_t argc, const struct resp_arg *argv)
{
    static const char *const client_ok[] = {"id",      "info",     "setname",  "getname",  "reply",
                                            "setinfo", "no-evict", "no-touch", "tracking", "help"};
    static const char *const acl_ok[] = {"whoami", "cat", "genpass", "help"};
    const char *const *ok = NULL;
    size_t count = 0;
    if (argc < 2) {
        return 0;
    }
    if (strcmp(d->name, "client") == 0) {
        ok = client_ok;
        count = HY_ARRAY_LEN(client_ok);
    } else if (strcmp(d->name, "acl") == 0) {
        ok = acl_ok;
        count = HY_ARRAY_LEN(acl_ok);
    }
    for (size_t i = 0; i < count; i++) {
        if (hy_eq_nocase(argv[1].ptr, argv[1].len, ok[i])) {
            return 1;
        }
    }
    return 0;
}

uint32_t acl_command_categories(const struct cmd_def *d, size_t argc, const struct resp_arg *argv)
{
    uint32_t cats = group_categories(d->group);
    cats |= (d->flags & CMD_WRITE) ? BIT(CAT_WRITE) : 0;
    cats |= (d->flags & CMD_READONLY) ? BIT(CAT_READ) : 0;
    cats |= (d->flags & CMD_FAST) ? BIT(CAT_FAST) : BIT(CAT_SLOW);
    cats |= (d->flags & CMD_BLOCKING) ? BIT(CAT_BLOCKING) : 0;
    if ((d->flags & CMD_ADMIN) && !harmless_subcommand(d, argc, argv)) {
        cats |= BIT(CAT_ADMIN) | BIT(CAT_DANGEROUS);
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(cat_extra); i++) {
        if (strcmp(cat_extra[i].name, d->name) == 0) {
            cats |= cat_extra[i].cats;
        }
    }
    return cats;
}

void acl_write_categories(struct resp_writer *w, const struct cmd_def *d)
{
    uint32_t cats = acl_command_categories(d, 1, NULL);
    size_t count = 0;
    for (size_t i = 0; i < CAT_COUNT; i++) {
        count += (cats >> i) & 1;
    }
    resp_write_set(w, count);
    for (size_t i = 0; i < CAT_COUNT; i++) {
        if ((cats >> i) & 1) {
            char name[32];
            snprintf(name, sizeof(name), "@%s", cat_names[i]);
            resp_write_simple(w, name);
        }
    }
}

/* ---- command rules -------------------------------------------------------------------------- */

/* Whether the rule's target ("get", "@read", "client|kill", "@all") covers d with argv. */
static int rule_covers(const char *target, const struct cmd_def *d, uint32_t cats, size_t argc,
                       const struct resp_arg *argv)
{
    if (target[0] == '@') {
        if (strcmp(target + 1, "all") == 0) {
            return 1;
        }
        int c = acl_category_find((const uint8_t *)target + 1, strlen(target + 1));
        return c >= 0 && (cats & BIT(c));
    }
    /* d is "get", or a subcommand's own row "acl|setuser"; the sub otherwise is argv[1]. */
    const char *dbar = strchr(d->name, '|');
    size_t dname_len = dbar ? (size_t)(dbar - d->name) : strlen(d->name);
    const char *bar = strchr(target, '|');
    size_t name_len = bar ? (size_t)(bar - target) : strlen(target);
    if (dname_len != name_len || memcmp(d->name, target, name_len) != 0) {
        return 0;
    }
    if (bar == NULL) {
        return 1;
    }
    if (dbar != NULL) {
        return strcmp(dbar + 1, bar + 1) == 0;
    }
    return argc >= 2 && hy_eq_nocase(argv[1].ptr, argv[1].len, bar + 1); /* name|sub */
}

int acl_rules_allow(char *const *rules, size_t count, const struct cmd_def *d, size_t argc,
                    const struct resp_arg *argv)
{
    uint32_t cats = acl_command_categories(d, argc, argv);
    int allowed = 0; /* no rules: -@all */
    for (size_t i = 0; i < count; i++) {
        if (rule_covers(rules[i] + 1, d, cats, argc, argv)) {
            allowed = rules[i][0] == '+';
        }
    }
    return allowed;
}

/* The keys d takes from argv, as COMMAND reports them (first, last, step). */
static enum acl_result check_keys(const struct store_acl_user *u, const struct cmd_def *d,
                                  size_t argc, const struct resp_arg *argv, size_t *key_out)
{
    size_t first = node_first_key(d, argc, argv);
    if (first == 0 || node_cmd_shard_channels(d)) {
        return ACL_OK; /* SSUBSCRIBE's "keys" are channels, checked as channels below */
    }
    size_t last = d->last_key < 0 ? (size_t)((int64_t)argc + d->last_key) : (size_t)d->last_key;
    size_t step = d->key_step > 0 ? (size_t)d->key_step : 1;
    if (d->handler == cmd_xread || d->handler == cmd_xreadgroup) {
        size_t count;
        node_xread_keys(argc, argv, &first, &count); /* the keys follow STREAMS */
        last = first + count - 1;
        step = 1;
    }
    /* Per command, not per key spec: a write needs %W~ on each of its keys, a read %R~. */
    unsigned perm = (d->flags & CMD_WRITE)      ? STORE_ACL_WRITE
                    : (d->flags & CMD_READONLY) ? STORE_ACL_READ
                                                : STORE_ACL_READ | STORE_ACL_WRITE;
    for (size_t i = first; i <= last && i < argc; i += step) {
        if (!store_acl_key_ok(u, argv[i].ptr, argv[i].len, perm)) {
            *key_out = i;
            return ACL_DENIED_KEY;
        }
    }
    return ACL_OK;
}

enum acl_result acl_user_check(const struct store_acl_user *u, const struct cmd_def *d, size_t argc,
                               const struct resp_arg *argv, size_t *key_index_out)
{
    *key_index_out = 0;
    /* As Redis: what runs before AUTH (AUTH, HELLO, QUIT, RESET) is never denied. */
    if (!(d->flags & CMD_NOAUTH) &&
        !acl_rules_allow(u->commands, u->command_count, d, argc, argv)) {
        return ACL_DENIED_CMD;
    }
    enum acl_result r = check_keys(u, d, argc, argv, key_index_out);
    if (r != ACL_OK) {
        return r;
    }
    /* Channels (&pattern): SUBSCRIBE's and PUBLISH's channels must match one, PSUBSCRIBE's
     * patterns must be one, literally (Redis 7). */
    int literal = d->handler == cmd_psubscribe;
    size_t last = d->handler == cmd_publish || d->handler == cmd_spublish ? 1 : argc - 1;
    if (d->handler == cmd_subscribe || d->handler == cmd_publish || literal ||
        d->handler == cmd_ssubscribe || d->handler == cmd_spublish) {
        for (size_t i = 1; i <= last && i < argc; i++) {
            if (!store_acl_channel_ok(u, argv[i].ptr, argv[i].len, literal)) {
                *key_index_out = i;
                return ACL_DENIED_CHANNEL;
            }
        }
    }
    return ACL_OK;
}

/* ---- users ---------------------------------------------------------------------------------- */

struct acl_log_entry {
    uint64_t count;
    const char *reason; /* "auth", "command", "key" */
    char object[129];
    char username[STORE_ACL_NAME_MAX + 1];
    uint64_t created_ms;
    char *client_info;
};

struct acl_state {
    struct acl_log_entry log[ACL_LOG_MAX]; /* log[0] is the newest */
    size_t log_count;
};

void acl_init(struct hy_node *n)
{
    n->acl = hy_xcalloc(1, sizeof(*n->acl));
}

void acl_free(struct hy_node *n)
{
    if (n->acl == NULL) {
        return;
    }
    for (size_t i = 0; i < n->acl->log_count; i++) {
        hy_free(n->acl->log[i].client_info);
    }
    hy_free(n->acl);
    n->acl = NULL;
}

/* The implicit default user (until an entry names it): on, ~* &* +@all, nopass or requirepass's
 * hash. Owned by the caller. */
struct store_acl_user *acl__implicit_default(const struct hy_node *n)
{
    struct store_acl_user *u = store_acl_user_new((const uint8_t *)"default", 7);
    static const char *const rules[] = {"on", "~*", "&*", "+@all"};
    for (size_t i = 0; i < HY_ARRAY_LEN(rules); i++) {
        const char *err = store_acl_rule_apply(u, (const uint8_t *)rules[i], strlen(rules[i]));
        HY_ASSERT(err == NULL);
    }
    const char *pass = n->cfg->requirepass;
    if (pass[0] == '\0') {
        u->flags |= STORE_ACL_NOPASS;
    } else if (n->crypto_hash != NULL) {
        u->passwords = hy_xmalloc(sizeof(*u->passwords));
        n->crypto_hash((const uint8_t *)pass, strlen(pass), u->passwords[0]);
        u->password_count = 1;
    }
    return u;
}

/* The user named name[0..len) in s (the implicit default included, then in *tmp_out for the
 * caller to free), or NULL. */
const struct store_acl_user *acl__resolve(const struct hy_node *n, const struct store *s,
                                          const uint8_t *name, size_t len,
                                          struct store_acl_user **tmp_out)
{
    *tmp_out = NULL;
    const struct store_acl_user *u = store_acl_find(s, name, len);
    if (u == NULL && len == 7 && memcmp(name, "default", 7) == 0) {
        *tmp_out = acl__implicit_default(n);
        u = *tmp_out;
    }
    return u;
}

int acl_default_open(const struct hy_node *n, const struct store *s)
{
    if (n->cfg->requirepass[0] != '\0') {
        return 0;
    }
    const struct store_acl_user *u = store_acl_find(s, (const uint8_t *)"default", 7);
    return u == NULL || ((u->flags & STORE_ACL_ON) && (u->flags & STORE_ACL_NOPASS));
}

/* ---- ACL LOG -------------------------------------------------------------------------------- */

/* Records a denial or a failed AUTH. As Redis's, a repeat of an entry (same reason, object and
 * user within 60 s) counts on that entry and moves it to the front. */
void acl__log(struct cmd_ctx *x, const char *reason, const uint8_t *object, size_t olen,
              const char *username)
{
    struct acl_state *st = x->node->acl;
    char obj[129];
    snprintf(obj, sizeof(obj), "%.*s", (int)HY_MIN(olen, 128), (const char *)object);
    struct acl_log_entry e;
    size_t at = st->log_count;
    for (size_t i = 0; i < st->log_count; i++) {
        const struct acl_log_entry *o = &st->log[i];
        if (o->reason == reason && strcmp(o->object, obj) == 0 &&
            strcmp(o->username, username) == 0 && x->now_ms - o->created_ms <= 60000) {
            at = i;
            break;
        }
    }
    if (at < st->log_count) {
        e = st->log[at];
        hy_free(e.client_info);
        e.count++;
    } else {
        memset(&e, 0, sizeof(e));
        e.count = 1;
        e.reason = reason;
        memcpy(e.object, obj, sizeof(obj));
        snprintf(e.username, sizeof(e.username), "%s", username);
        if (st->log_count == ACL_LOG_MAX) {
            hy_free(st->log[ACL_LOG_MAX - 1].client_info); /* the oldest goes */
            st->log_count--;
        }
        at = st->log_count++;
    }
    e.created_ms = x->now_ms;
    struct hy_buf info;
    hy_buf_init(&info);
    node_client_describe(x->node, x->client, x->now_ms, &info);
    e.client_info = hy_xmalloc(info.len + 1);
    memcpy(e.client_info, info.data, info.len);
    e.client_info[info.len > 0 && info.data[info.len - 1] == '\n' ? info.len - 1 : info.len] = '\0';
    hy_buf_free(&info);
    memmove(&st->log[1], &st->log[0], at * sizeof(st->log[0]));
    st->log[0] = e;
}

void acl__log_reply(struct cmd_ctx *x, size_t count)
{
    struct acl_state *st = x->node->acl;
    count = HY_MIN(count, st->log_count);
    resp_write_array(&x->w, count);
    for (size_t i = 0; i < count; i++) {
        const struct acl_log_entry *e = &st->log[i];
        resp_write_map(&x->w, 7);
        resp_write_bulk_str(&x->w, "count");
        resp_write_int(&x->w, (int64_t)e->count);
        resp_write_bulk_str(&x->w, "reason");
        resp_write_bulk_str(&x->w, e->reason);
        resp_write_bulk_str(&x->w, "context");
        resp_write_bulk_str(&x->w, "toplevel");
        resp_write_bulk_str(&x->w, "object");
        resp_write_bulk_str(&x->w, e->object);
        resp_write_bulk_str(&x->w, "username");
        resp_write_bulk_str(&x->w, e->username);
        resp_write_bulk_str(&x->w, "age-seconds");
        resp_write_double(&x->w, (double)(x->now_ms - HY_MIN(e->created_ms, x->now_ms)) / 1000.0);
        resp_write_bulk_str(&x->w, "client-info");
        resp_write_bulk_str(&x->w, e->client_info);
    }
}

void acl__log_reset(struct hy_node *n)
{
    for (size_t i = 0; i < n->acl->log_count; i++) {
        hy_free(n->acl->log[i].client_info);
    }
    n->acl->log_count = 0;
}

/* ---- the checks ----------------------------------------------------------------------------- */

static int acl_judge(struct cmd_ctx *x, const struct cmd_def *d, int quiet);

int acl_check(struct cmd_ctx *x, const struct cmd_def *d)
{
    return acl_judge(x, d, 0);
}

int acl_allows(struct cmd_ctx *x, const struct cmd_def *d)
{
    return acl_judge(x, d, 1);
}

/* acl_check, or with `quiet` only the verdict: no reply, no ACL LOG entry, nothing closed. */
static int acl_judge(struct cmd_ctx *x, const struct cmd_def *d, int quiet)
{
    struct node_client *c = x->client;
    if (c->is_proxy || c->user[0] == '\0' || join_auth_open_before_auth(x)) {
        /* Forwarded by a member that checked it, a member itself, or a joining node proving
         * the cluster secret (HALYARD CHALLENGE/PEER-AUTH): not a client's rights. */
        return 1;
    }
    if (d->handler == cmd_hy_exec || d->handler == cmd_hy_exec_ro) {
        return 1; /* each command inside is checked: when queued, and by exec_run */
    }
    size_t argc = x->argc;
    const struct resp_arg *argv = x->argv;
    if (d->handler == cmd_hy_req && argc >= 4) {
        /* HY.REQ s q SET k v: what runs is the wrapped command, so that is what is checked. */
        const struct cmd_def *inner = node_command_lookup(x->node, argv[3].ptr, argv[3].len);
        inner = node_command_sub(x->node, inner, argc - 3, argv + 3);
        if (inner != NULL) {
            d = inner;
            argc -= 3;
            argv += 3;
        }
    }
    int is_default = strcmp(c->user, "default") == 0;
    if (is_default && store_acl_find(x->node->meta->store, (const uint8_t *)"default", 7) == NULL) {
        return 1; /* the implicit default user may run anything: no cost for most setups */
    }
    struct store_acl_user *tmp;
    const struct store_acl_user *u = acl__resolve(x->node, x->node->meta->store,
                                                  (const uint8_t *)c->user, strlen(c->user), &tmp);
    if (u == NULL) {
        if (quiet) {
            return 0;
        }
        /* ACL DELUSER removed it: as Redis, its connections are closed. */
        c->flags |= NODE_CLIENT_CLOSE_ASAP;
        x->node->kills++;
        return 0;
    }
    size_t key = 0;
    enum acl_result r = acl_user_check(u, d, argc, argv, &key);
    store_acl_user_free(tmp);
    if (quiet) {
        return r == ACL_OK;
    }
    if (r == ACL_DENIED_CMD) {
        acl__log(x, "command", (const uint8_t *)d->name, strlen(d->name), c->user);
        resp_write_errorf(&x->w, "NOPERM this user has no permissions to run the '%s' command",
                          d->name);
        return 0;
    }
    if (r == ACL_DENIED_KEY) {
        acl__log(x, "key", argv[key].ptr, argv[key].len, c->user);
        resp_write_error(&x->w, "NOPERM this user has no permissions to access one of the keys "
                                "used as arguments");
        return 0;
    }
    if (r == ACL_DENIED_CHANNEL) {
        acl__log(x, "channel", argv[key].ptr, argv[key].len, c->user);
        resp_write_error(&x->w, "NOPERM this user has no permissions to access one of the "
                                "channels used as arguments");
        return 0;
    }
    return 1;
}

static int password_ok(const struct hy_node *n, const struct store_acl_user *u, int is_default,
                       const struct resp_arg *pass)
{
    const char *want = n->cfg->requirepass;
    if (is_default && want[0] != '\0') {
        /* requirepass is the default user's password, whatever nopass says. */
        if (strlen(want) == pass->len && memcmp(want, pass->ptr, pass->len) == 0) {
            return 1;
        }
    } else if (u->flags & STORE_ACL_NOPASS) {
        return 1;
    }
    if (u->password_count == 0 || n->crypto_hash == NULL) {
        return 0;
    }
    uint8_t hash[STORE_ACL_HASH_BYTES];
    n->crypto_hash(pass->ptr, pass->len, hash);
    return store_acl_has_password(u, hash);
}

/* Counts a failed AUTH on c and sets when the next may be checked. */
static void auth_failed(struct node_client *c, uint64_t now_ms)
{
    c->auth_failures++;
    if (c->auth_failures >= ACL_AUTH_FREE_FAILURES) {
        uint32_t doublings = HY_MIN(c->auth_failures - ACL_AUTH_FREE_FAILURES, 16u);
        uint64_t delay = HY_MIN((uint64_t)ACL_AUTH_DELAY_MS << doublings, ACL_AUTH_DELAY_MS_MAX);
        c->auth_retry_ms = now_ms + delay;
    }
}

int acl_authenticate(struct cmd_ctx *x, const struct resp_arg *user, const struct resp_arg *pass)
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    if (x->now_ms < c->auth_retry_ms) {
        resp_write_errorf(&x->w,
                          "ERR too many failed authentications on this connection: retry in "
                          "%llu ms",
                          (unsigned long long)(c->auth_retry_ms - x->now_ms));
        return 0;
    }
    static const struct resp_arg default_name = {(const uint8_t *)"default", 7};
    const struct resp_arg *name = user != NULL ? user : &default_name;
    int is_default = name->len == 7 && memcmp(name->ptr, "default", 7) == 0;
    struct store_acl_user *tmp;
    const struct store_acl_user *u =
        name->len <= STORE_ACL_NAME_MAX
            ? acl__resolve(n, x->node->meta->store, name->ptr, name->len, &tmp)
            : (tmp = NULL, NULL);
    if (user == NULL && u != NULL && (u->flags & STORE_ACL_NOPASS) &&
        n->cfg->requirepass[0] == '\0') {
        store_acl_user_free(tmp);
        resp_write_error(&x->w, "ERR AUTH <password> called without any password configured for "
                                "the default user. Are you sure your configuration is correct?");
        return 0;
    }
    int ok = u != NULL && (u->flags & STORE_ACL_ON) && password_ok(n, u, is_default, pass);
    store_acl_user_free(tmp);
    if (!ok) {
        char uname[STORE_ACL_NAME_MAX + 1];
        snprintf(uname, sizeof(uname), "%.*s", (int)HY_MIN(name->len, STORE_ACL_NAME_MAX),
                 (const char *)name->ptr);
        acl__log(x, "auth", (const uint8_t *)"AUTH", 4, uname);
        auth_failed(c, x->now_ms);
        resp_write_error(&x->w, "WRONGPASS invalid username-password pair or user is disabled.");
        return 0;
    }
    c->authenticated = 1;
    c->auth_failures = 0;
    memcpy(c->user, name->ptr, name->len);
    c->user[name->len] = '\0';
    return 1;
}
