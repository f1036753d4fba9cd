/* Unit tests for ACL users: the rule parser and the replicated table (src/store/store_acl.c),
 * categories and permission checks (src/node/acl.c), and the ACL command, AUTH and NOPERM
 * driven through the sans-I/O engine (src/node/cmd_acl.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "io/peer_auth.h"
#include "node/acl.h"
#include "node/config.h"
#include "node/node.h"
#include "node/node_internal.h"
#include "store/store.h"

#define SECRET_HASH "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"

/* ---- the rule parser ------------------------------------------------------------------------ */

static struct store_acl_user *user_with(const char *const *rules, size_t n, const char **err_out)
{
    struct store_acl_user *u = store_acl_user_new((const uint8_t *)"u", 1);
    *err_out = NULL;
    for (size_t i = 0; i < n && *err_out == NULL; i++) {
        *err_out = store_acl_rule_apply(u, (const uint8_t *)rules[i], strlen(rules[i]));
    }
    return u;
}

static void assert_describes(const struct store_acl_user *u, const char *want)
{
    struct hy_buf b;
    hy_buf_init(&b);
    store_acl_user_describe(u, &b);
    hy_buf_append(&b, "", 1);
    assert_string_equal((const char *)b.data, want);
    hy_buf_free(&b);
}

/* A new user is off, without passwords, keys or commands; rules build it up in order. */
static void test_rules_build_a_user(void **state)
{
    (void)state;
    const char *err;
    struct store_acl_user *u = user_with(NULL, 0, &err);
    assert_describes(u, "off resetchannels -@all");
    store_acl_user_free(u);
    const char *rules[] = {"on",    "#" SECRET_HASH, "~app:*", "%R~ro:*", "%W~wo:*",
                           "&news", "+@read",        "-keys",  "+SET",    "+client|setname"};
    u = user_with(rules, HY_ARRAY_LEN(rules), &err);
    assert_null(err);
    assert_describes(u, "on #" SECRET_HASH " ~app:* %R~ro:* %W~wo:* resetchannels &news "
                        "-@all +@read -keys +set +client|setname");
    assert_true(store_acl_key_ok(u, (const uint8_t *)"app:1", 5, STORE_ACL_READ | STORE_ACL_WRITE));
    assert_true(store_acl_key_ok(u, (const uint8_t *)"ro:1", 4, STORE_ACL_READ));
    assert_false(store_acl_key_ok(u, (const uint8_t *)"ro:1", 4, STORE_ACL_WRITE));
    assert_true(store_acl_key_ok(u, (const uint8_t *)"wo:1", 4, STORE_ACL_WRITE));
    assert_false(store_acl_key_ok(u, (const uint8_t *)"wo:1", 4, STORE_ACL_READ));
    assert_false(store_acl_key_ok(u, (const uint8_t *)"other", 5, STORE_ACL_READ));
    store_acl_user_free(u);
}

/* +@all / -@all start the command rules over; a later rule for a target replaces the earlier;
 * nopass drops passwords and a password drops nopass; reset empties everything. */
static void test_rules_compact_and_reset(void **state)
{
    (void)state;
    const char *err;
    const char *rules[] = {"+get", "-set",   "+@all",   "-@dangerous", "+get",
                           "-get", "nopass", "allkeys", "allchannels"};
    struct store_acl_user *u = user_with(rules, HY_ARRAY_LEN(rules), &err);
    assert_null(err);
    assert_describes(u, "off nopass ~* &* +@all -@dangerous -get");
    assert_null(store_acl_rule_apply(u, (const uint8_t *)"#" SECRET_HASH, 65));
    assert_describes(u, "off #" SECRET_HASH " ~* &* +@all -@dangerous -get");
    assert_null(store_acl_rule_apply(u, (const uint8_t *)"resetkeys", 9));
    assert_null(store_acl_rule_apply(u, (const uint8_t *)"nocommands", 10));
    assert_describes(u, "off #" SECRET_HASH " &* -@all");
    assert_null(store_acl_rule_apply(u, (const uint8_t *)"reset", 5));
    assert_describes(u, "off resetchannels -@all");
    store_acl_user_free(u);
}

/* Malformed rules are refused with Redis's reasons; clear passwords never reach the store. */
static void test_rules_refused(void **state)
{
    (void)state;
    struct store_acl_user *u = store_acl_user_new((const uint8_t *)"u", 1);
    static const struct {
        const char *rule;
        const char *reason;
    } cases[] = {
        {"bogus", "Syntax error"},
        {"#abc", "The password hash must be exactly 64 characters and contain only lowercase "
                 "hexadecimal characters"},
        {"#"
         "2BB80D537B1DA3E38BD30361AA855686BDE0EACD7162FEF6A25FE97BF527A25B",
         "The password hash must be exactly 64 characters and contain only lowercase "
         "hexadecimal characters"},
        {"!" SECRET_HASH, "The password you are trying to remove from the user does not exist"},
        {">secret", "a clear password must be hashed before it is replicated"},
        {"%X~k", "Syntax error"},
        {"~a b", "Syntax error"},
        {"&a\tb", "Syntax error"},
        {"%R", "Syntax error"},
        {"+", "Syntax error"},
        {"+@", "Syntax error"},
        {"", "Syntax error"},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(cases); i++) {
        const char *err =
            store_acl_rule_apply(u, (const uint8_t *)cases[i].rule, strlen(cases[i].rule));
        assert_non_null(err);
        assert_string_equal(err, cases[i].reason);
    }
    store_acl_user_free(u);
}

/* ---- entries and snapshots ------------------------------------------------------------------ */

static void apply(struct store *s, enum store_op op, const char *const *args, size_t n,
                  const char *want)
{
    struct store_arg argv[16];
    for (size_t i = 0; i < n; i++) {
        argv[i] = (struct store_arg){(const uint8_t *)args[i], strlen(args[i])};
    }
    struct store_entry e = {.op = op, .expire_at_ms = -1, .argc = (uint32_t)n, .argv = argv};
    struct hy_buf entry, out;
    hy_buf_init(&entry);
    hy_buf_init(&out);
    store_entry_encode(&e, &entry);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    hy_buf_append(&out, "", 1);
    assert_string_equal((const char *)out.data, want);
    hy_buf_free(&entry);
    hy_buf_free(&out);
}

static struct store *new_store(void)
{
    struct store_config cfg = {.seed = 1, .maxmemory_samples = 5};
    return store_create(&cfg, NULL);
}

/* SETUSER is all-or-nothing; DELUSER never deletes default; both survive a snapshot. */
static void test_entries_and_snapshot(void **state)
{
    (void)state;
    struct store *s = new_store();
    const char *alice[] = {"alice", "on", "#" SECRET_HASH, "~app:*", "+@read"};
    apply(s, STORE_OP_ACL_SETUSER, alice, 5, "+OK\r\n");
    const char *bad[] = {"alice", "off", "bogus"};
    apply(s, STORE_OP_ACL_SETUSER, bad, 3,
          "-ERR Error in ACL SETUSER modifier 'bogus': Syntax error\r\n");
    const struct store_acl_user *u = store_acl_find(s, (const uint8_t *)"alice", 5);
    assert_non_null(u);
    assert_true(u->flags & STORE_ACL_ON); /* "off" did not apply: the entry failed */
    const char *dflt[] = {"default", "on", "nopass", "+@all", "-flushall"};
    apply(s, STORE_OP_ACL_SETUSER, dflt, 5, "+OK\r\n");
    const char *spaced[] = {"a b"};
    apply(s, STORE_OP_ACL_SETUSER, spaced, 1,
          "-ERR Usernames can't contain spaces or null characters\r\n");
    const char *bob[] = {"bob"};
    apply(s, STORE_OP_ACL_SETUSER, bob, 1, "+OK\r\n");

    struct hy_buf snap;
    hy_buf_init(&snap);
    store_snapshot_encode(s, &snap);
    struct store *t = new_store();
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    assert_int_equal(store_digest(s), store_digest(t));
    const struct store_acl_user *const *v;
    assert_int_equal(store_acl_users(t, &v), 3);
    assert_string_equal(v[0]->name, "alice");
    assert_string_equal(v[1]->name, "bob");
    assert_string_equal(v[2]->name, "default");
    assert_describes(v[0], "on #" SECRET_HASH " ~app:* resetchannels -@all +@read");

    const char *del[] = {"default", "bob", "nobody"};
    apply(t, STORE_OP_ACL_DELUSER, del, 3, ":1\r\n");
    assert_int_equal(store_acl_users(t, &v), 2);
    hy_buf_free(&snap);
    store_destroy(s);
    store_destroy(t);
}

/* A snapshot whose users section is damaged (a rule that does not parse, names out of order)
 * is refused and the store keeps its users. */
static void test_snapshot_users_corrupt(void **state)
{
    (void)state;
    struct store *s = new_store();
    const char *alice[] = {"alice", "on", "+get"};
    apply(s, STORE_OP_ACL_SETUSER, alice, 3, "+OK\r\n");
    struct hy_buf snap;
    hy_buf_init(&snap);
    store_snapshot_encode(s, &snap);
    /* The rules are the last bytes before the CRC: "on resetchannels -@all +get". */
    uint8_t *rules = NULL;
    for (size_t i = 0; i + 4 <= snap.len && rules == NULL; i++) {
        rules = memcmp(snap.data + i, "+get", 4) == 0 ? snap.data + i : NULL;
    }
    assert_non_null(rules);
    rules[0] = '?'; /* "?get": not a rule */
    uint32_t crc = hy_crc32c(0, snap.data, snap.len - 4);
    hy_store_u32le(snap.data + snap.len - 4, crc);
    struct store *t = new_store();
    const char *bob[] = {"bob", "on"};
    apply(t, STORE_OP_ACL_SETUSER, bob, 2, "+OK\r\n");
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_ECORRUPT);
    assert_non_null(store_acl_find(t, (const uint8_t *)"bob", 3));
    hy_buf_free(&snap);
    store_destroy(s);
    store_destroy(t);
}

/* ---- categories and checks ------------------------------------------------------------------ */

static const struct cmd_def *def(const char *name)
{
    for (size_t i = 0; i < node_command_count; i++) {
        if (strcmp(node_commands[i].name, name) == 0) {
            return &node_commands[i];
        }
    }
    fail_msg("no command %s", name);
    return NULL;
}

static int has_cat(const char *cmd, const char *sub, const char *cat)
{
    struct resp_arg argv[2] = {{(const uint8_t *)cmd, strlen(cmd)},
                               {(const uint8_t *)(sub ? sub : ""), sub ? strlen(sub) : 0}};
    int c = acl_category_find((const uint8_t *)cat, strlen(cat));
    assert_true(c >= 0);
    return (acl_command_categories(def(cmd), sub ? 2 : 1, argv) >> c) & 1;
}

/* Categories come from the table's flags and groups, with Redis's exceptions. */
static void test_categories(void **state)
{
    (void)state;
    assert_true(has_cat("get", NULL, "read") && has_cat("get", NULL, "string") &&
                has_cat("get", NULL, "fast") && !has_cat("get", NULL, "write"));
    assert_true(has_cat("set", NULL, "write") && has_cat("set", NULL, "slow"));
    assert_true(has_cat("hset", NULL, "hash") && has_cat("zadd", NULL, "sortedset") &&
                has_cat("lpush", NULL, "list") && has_cat("sadd", NULL, "set"));
    assert_true(has_cat("flushall", NULL, "dangerous") && has_cat("flushall", NULL, "keyspace"));
    assert_true(has_cat("keys", NULL, "dangerous") && has_cat("del", NULL, "keyspace"));
    assert_true(has_cat("config", "set", "admin") && has_cat("config", "set", "dangerous"));
    assert_true(has_cat("client", "kill", "dangerous"));
    assert_false(has_cat("client", "setname", "dangerous"));
    assert_false(has_cat("acl", "whoami", "admin"));
    assert_true(has_cat("acl", "setuser", "admin"));
    assert_true(has_cat("auth", NULL, "connection"));
    assert_int_equal(acl_category_find((const uint8_t *)"nope", 4), -1);
}

static enum acl_result check(const char *const *rules, size_t n, const char *const *argv_s,
                             size_t argc, size_t *key_out)
{
    const char *err;
    struct store_acl_user *u = user_with(rules, n, &err);
    assert_null(err);
    struct resp_arg argv[8];
    for (size_t i = 0; i < argc; i++) {
        argv[i] = (struct resp_arg){(const uint8_t *)argv_s[i], strlen(argv_s[i])};
    }
    enum acl_result r = acl_user_check(u, def(argv_s[0]), argc, argv, key_out);
    store_acl_user_free(u);
    return r;
}

/* Command rules apply in order; keys need the pattern's permission for the command's kind. */
static void test_permission_checks(void **state)
{
    (void)state;
    size_t key;
    const char *r1[] = {"+@all", "-@dangerous", "~*"};
    const char *get[] = {"get", "k"}, *flush[] = {"flushall"}, *keys[] = {"keys", "*"};
    assert_int_equal(check(r1, 3, get, 2, &key), ACL_OK);
    assert_int_equal(check(r1, 3, flush, 1, &key), ACL_DENIED_CMD);
    assert_int_equal(check(r1, 3, keys, 2, &key), ACL_DENIED_CMD);
    const char *r2[] = {"-@all", "+@read", "+set", "~app:*", "%R~ro:*"};
    const char *get_app[] = {"get", "app:1"}, *set_ro[] = {"set", "ro:1", "v"};
    const char *set_app[] = {"set", "app:1", "v"}, *del_app[] = {"del", "app:1"};
    const char *mget[] = {"mget", "app:1", "ro:2", "zz"};
    assert_int_equal(check(r2, 5, get_app, 2, &key), ACL_OK);
    assert_int_equal(check(r2, 5, set_app, 3, &key), ACL_OK);
    assert_int_equal(check(r2, 5, set_ro, 3, &key), ACL_DENIED_KEY);
    assert_int_equal(key, 1);
    assert_int_equal(check(r2, 5, del_app, 2, &key), ACL_DENIED_CMD);
    assert_int_equal(check(r2, 5, mget, 4, &key), ACL_DENIED_KEY);
    assert_int_equal(key, 3); /* "zz" matches nothing */
    const char *r3[] = {"+client|setname", "~*"};
    const char *setname[] = {"client", "setname", "x"}, *kill[] = {"client", "kill", "x"};
    assert_int_equal(check(r3, 2, setname, 3, &key), ACL_OK);
    assert_int_equal(check(r3, 2, kill, 3, &key), ACL_DENIED_CMD);
    const char *r4[] = {"-@all"};
    const char *auth[] = {"auth", "pw"};
    assert_int_equal(check(r4, 1, auth, 2, &key), ACL_OK); /* runs before AUTH: never denied */
}

/* ---- through the engine --------------------------------------------------------------------- */

struct fixture {
    struct hy_config cfg;
    struct hy_node *node;
    struct node_client *client;
    uint64_t now_ms;
};

static void pump(struct fixture *f)
{
    node_flush(f->node, f->now_ms);
    struct node_io_batch *b;
    while ((b = node_io_take(f->node)) != NULL) {
        node_io_done(f->node, b, f->now_ms);
    }
    while (node_take_ready(f->node) != NULL) {
    }
}

static int setup(void **state)
{
    struct fixture *f = hy_xcalloc(1, sizeof(*f));
    config_init(&f->cfg);
    f->now_ms = 1700000000000ULL;
    f->node = node_create(&f->cfg, NULL, 7, f->now_ms);
    node_set_hash(f->node, peer_auth_sha256);
    node_set_crypto(f->node, peer_auth_mac, peer_auth_random);
    f->client = node_client_new(f->node, "127.0.0.1:1000", "127.0.0.1:7379", 5, f->now_ms);
    struct node_recovered nothing = {0};
    assert_int_equal(node_start(f->node, 0, &nothing, f->now_ms), HY_OK);
    for (int i = 0; i < 100 && !replica_can_read(f->node->meta); i++) {
        pump(f);
        uint64_t at = node_timeout_ms(f->node);
        f->now_ms = at > f->now_ms ? at : f->now_ms;
        node_tick(f->node, f->now_ms);
    }
    pump(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    node_destroy(f->node);
    config_free(&f->cfg);
    hy_free(f);
    return 0;
}

static const char *feed_client(struct fixture *f, struct node_client *c, const char *bytes)
{
    static char out[65536];
    hy_buf_append(&c->in, bytes, strlen(bytes));
    node_client_process(f->node, c, f->now_ms);
    for (int i = 0; i < 32; i++) {
        pump(f);
    }
    size_t n = c->out.len < sizeof(out) - 1 ? c->out.len : sizeof(out) - 1;
    memcpy(out, c->out.data, n);
    out[n] = '\0';
    hy_buf_reset(&c->out);
    return out;
}

static const char *feed(struct fixture *f, const char *bytes)
{
    return feed_client(f, f->client, bytes);
}

/* A user made with ACL SETUSER authenticates with AUTH user pass and is held to its rules:
 * NOPERM with Redis 7.0's texts for commands and keys, each denial in ACL LOG. */
static void test_auth_and_noperm(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "ACL SETUSER alice on >secret ~app:* +@read +set\r\n"), "+OK\r\n");
    const char *list = feed(f, "ACL LIST\r\n");
    assert_non_null(strstr(list, "user alice on #" SECRET_HASH " ~app:* resetchannels -@all "
                                 "+@read +set"));
    assert_non_null(strstr(list, "user default on nopass ~* &* +@all"));
    assert_string_equal(feed(f, "AUTH alice wrong\r\n"),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_string_equal(feed(f, "AUTH alice secret\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "ACL WHOAMI\r\n"),
                        "-NOPERM this user has no permissions to run the 'acl' command\r\n");
    assert_string_equal(feed(f, "SET app:1 v\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "GET app:1\r\n"), "$1\r\nv\r\n");
    assert_string_equal(feed(f, "SET other v\r\n"),
                        "-NOPERM this user has no permissions to access one of the keys used as "
                        "arguments\r\n");
    assert_string_equal(feed(f, "DEL app:1\r\n"),
                        "-NOPERM this user has no permissions to run the 'del' command\r\n");
    assert_string_equal(feed(f, "HY.REQ 1 1 SET other v\r\n"),
                        "-NOPERM this user has no permissions to access one of the keys used as "
                        "arguments\r\n");
    assert_string_equal(
        feed(f, "ACL SETUSER x\r\n"),
        "-NOPERM this user has no permissions to run the 'acl|setuser' command\r\n");
    /* AUTH and HELLO are never denied (Redis: commands that run before AUTH). */
    assert_non_null(strstr(feed(f, "HELLO 3\r\n"), "proto"));
    const char *log = feed(f, "AUTH default x\r\n"); /* default is nopass: any password */
    assert_string_equal(log, "+OK\r\n");
    log = feed(f, "ACL LOG\r\n");
    /* Newest first: acl|setuser, other (SET and HY.REQ merged, moved up), del, acl, auth. */
    assert_non_null(strstr(log, "reason"));
    const char *setuser = strstr(log, "$11\r\nacl|setuser\r\n");
    const char *acl = strstr(log, "$3\r\nacl\r\n");
    const char *other = strstr(log, "$5\r\nother\r\n");
    const char *del = strstr(log, "$3\r\ndel\r\n");
    const char *auth = strstr(log, "$4\r\nAUTH\r\n");
    assert_true(setuser && acl && other && del && auth);
    assert_true(setuser < other && other < del && del < acl && acl < auth);
    assert_non_null(strstr(log, ":2\r\n$6\r\nreason\r\n$3\r\nkey\r\n"));
    assert_string_equal(feed(f, "ACL LOG RESET\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "ACL LOG\r\n"), "*0\r\n");
}

/* ACL DRYRUN answers what the user would get without running anything. */
static void test_dryrun(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "ACL SETUSER bob on nopass %R~r:* +get +set\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "ACL DRYRUN bob GET r:1\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "ACL DRYRUN bob SET r:1 v\r\n"),
                        "$52\r\nThis user has no permissions to access the 'r:1' key\r\n");
    assert_string_equal(feed(f, "ACL DRYRUN bob DEL r:1\r\n"),
                        "$53\r\nThis user has no permissions to run the 'del' command\r\n");
    assert_string_equal(feed(f, "ACL DRYRUN nobody GET k\r\n"), "-ERR User 'nobody' not found\r\n");
    assert_string_equal(feed(f, "ACL DRYRUN bob NOPE k\r\n"), "-ERR Command 'NOPE' not found\r\n");
    assert_string_equal(feed(f, "GET r:1\r\n"), "$-1\r\n"); /* nothing ran as bob */
}

/* requirepass stays the default user's password; a disabled user cannot log in; a deleted
 * user's connections are closed; SETUSER errors are answered before anything is proposed. */
static void test_default_off_and_deleted(void **state)
{
    struct fixture *f = *state;
    char err[160];
    assert_string_equal(
        feed(f, "ACL SETUSER carol on >pw +@all ~* +nosuch\r\n"),
        "-ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in "
        "ACL\r\n");
    assert_string_equal(feed(f, "ACL GETUSER carol\r\n"), "$-1\r\n");
    assert_string_equal(feed(f, "ACL SETUSER carol on >pw +@all ~*\r\n"), "+OK\r\n");
    assert_int_equal(config_set(&f->cfg, "requirepass", "s3cret", 1, err), HY_OK);
    struct node_client *c = node_client_new(f->node, "a:1", "b:2", 6, f->now_ms);
    assert_string_equal(feed_client(f, c, "GET k\r\n"), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(feed_client(f, c, "AUTH s3cret\r\n"), "+OK\r\n");
    assert_string_equal(feed_client(f, c, "AUTH carol pw\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "AUTH s3cret\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "ACL SETUSER carol off\r\n"), "+OK\r\n");
    assert_string_equal(feed_client(f, c, "GET k\r\n"), "$-1\r\n"); /* still logged in */
    struct node_client *d = node_client_new(f->node, "a:2", "b:2", 7, f->now_ms);
    assert_string_equal(feed_client(f, d, "AUTH carol pw\r\n"),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_string_equal(feed(f, "ACL DELUSER carol default\r\n"),
                        "-ERR The 'default' user cannot be removed\r\n");
    assert_string_equal(feed(f, "ACL DELUSER carol nobody\r\n"), ":1\r\n");
    assert_string_equal(feed_client(f, c, "GET k\r\n"), "");
    assert_true(c->flags & NODE_CLIENT_CLOSE_ASAP);
    node_client_free(f->node, c);
    node_client_free(f->node, d);
}

/* Once ACL SETUSER names default, its rules hold for new connections (here: off). */
static void test_default_explicit(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(feed(f, "ACL SETUSER default -flushall\r\n"), "+OK\r\n");
    const char *list = feed(f, "ACL LIST\r\n");
    assert_non_null(strstr(list, "user default on nopass ~* &* +@all -flushall"));
    assert_string_equal(feed(f, "FLUSHALL\r\n"),
                        "-NOPERM this user has no permissions to run the 'flushall' command\r\n");
    assert_string_equal(feed(f, "ACL SETUSER admin on >pw +@all ~*\r\n"), "+OK\r\n");
    /* A joining node proves the cluster secret whatever default may run. */
    assert_string_equal(feed(f, "ACL SETUSER default -@admin\r\n"), "+OK\r\n");
    assert_string_equal(feed(f, "HALYARD CHALLENGE\r\n"),
                        "-ERR this node has no cluster-secret to prove\r\n");
    assert_string_equal(feed(f, "HALYARD PEERS\r\n"),
                        "-NOPERM this user has no permissions to run the 'halyard' command\r\n");
    assert_string_equal(feed(f, "AUTH admin pw\r\n"), "+OK\r\n"); /* default may not ACL now */
    assert_string_equal(feed(f, "ACL SETUSER default off\r\n"), "+OK\r\n");
    struct node_client *c = node_client_new(f->node, "a:1", "b:2", 6, f->now_ms);
    assert_string_equal(feed_client(f, c, "GET k\r\n"), "-NOAUTH Authentication required.\r\n");
    assert_non_null(strstr(feed_client(f, c, "HELLO 3 AUTH admin pw\r\n"), "proto"));
    assert_string_equal(feed_client(f, c, "ACL WHOAMI\r\n"), "$5\r\nadmin\r\n");
    node_client_free(f->node, c);
}

/* Failed AUTH on one connection: three are free, then each waits longer (100 ms, doubling)
 * and an attempt before its time is refused without checking the password; a success resets
 * it, and other connections are not held back. */
static void test_auth_rate_limited(void **state)
{
    struct fixture *f = *state;
    const char *wrong = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_string_equal(feed(f, "ACL SETUSER eve on >right +@all ~*\r\n"), "+OK\r\n");
    for (int i = 0; i < 3; i++) {
        assert_string_equal(feed(f, "AUTH eve nope\r\n"), wrong);
    }
    assert_string_equal(
        feed(f, "AUTH eve right\r\n"),
        "-ERR too many failed authentications on this connection: retry in 100 ms\r\n");
    struct node_client *other = node_client_new(f->node, "a:9", "b:2", 9, f->now_ms);
    assert_string_equal(feed_client(f, other, "AUTH eve right\r\n"), "+OK\r\n");
    node_client_free(f->node, other);
    f->now_ms += 100;
    assert_string_equal(feed(f, "AUTH eve nope\r\n"), wrong); /* 4th: now 200 ms */
    f->now_ms += 150;
    assert_string_equal(
        feed(f, "AUTH eve right\r\n"),
        "-ERR too many failed authentications on this connection: retry in 50 ms\r\n");
    f->now_ms += 50;
    assert_string_equal(feed(f, "AUTH eve right\r\n"), "+OK\r\n");
    assert_int_equal(f->client->auth_failures, 0);
    assert_string_equal(feed(f, "AUTH eve nope\r\n"), wrong); /* free again */
    assert_string_equal(feed(f, "AUTH eve right\r\n"), "+OK\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_build_a_user),
        cmocka_unit_test(test_rules_compact_and_reset),
        cmocka_unit_test(test_rules_refused),
        cmocka_unit_test(test_entries_and_snapshot),
        cmocka_unit_test(test_snapshot_users_corrupt),
        cmocka_unit_test(test_categories),
        cmocka_unit_test(test_permission_checks),
        cmocka_unit_test_setup_teardown(test_auth_and_noperm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dryrun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_off_and_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_rate_limited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
