/*
 * cmd_script.c - EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: Lua scripts as replicated log
 * entries (docs/protocol.md, "Scripting").
 *
 * A script that may write is ONE log entry, STORE_OP_EVAL, carrying the whole body, its keys
 * and arguments, a seed and a step budget drawn by the leader, and the leader's time. Every
 * replica runs it at apply (node_script_apply_cb) against its own store, in the same state,
 * so every replica reaches the same keyspace: the script's redis.call runs each command as
 * a transaction's does (cmd_multi.c): a read through its handler at the entry's time, a write
 * through its handler with the proposal captured and applied in place. Randomness inside
 * (SRANDMEMBER, SPOP, RANDOMKEY, math.random) comes from the entry's seed, time from the
 * entry's time, so nothing differs between replicas.
 *
 * EVAL_RO and EVALSHA_RO run where reads run (the leader after its read round, or any replica
 * for a READONLY connection) and refuse writes. EVALSHA resolves the SHA-1 on the node that
 * runs it (the leader of the keys' partition) from the replicated script cache; the entry
 * always carries the body, so apply never depends on a cache.
 *
 * Keys named in KEYS must be in one partition (-CROSSSLOT, checked by dispatch); a script
 * with no key runs in the partition of slot 0. A command inside that names a key of another
 * partition gets an error, as in Redis Cluster. SCRIPT LOAD and SCRIPT FLUSH run in every
 * partition (scatter.c), so EVALSHA finds a loaded script whatever its keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/sha1.h"
#include "common/strutil.h"
#include "node/acl.h"
#include "node/node_internal.h"
#include "node/script.h"

/* What redis.call needs to run a command. */
struct script_call {
    struct hy_node *n;
    struct node_group *g;
    struct store *s;
    uint64_t now_ms;
    int readonly;         /* EVAL_RO, or a no-writes script: writes are refused */
    int at_apply;         /* run by every replica: results must not depend on the replica */
    int probe;            /* the leader's run before proposing: stops at the first write */
    int wrote;            /* the probe reached a write */
    int stopped;          /* the run was stopped: SCRIPT KILL, the probe's write or the budget */
    int killed;           /* by SCRIPT KILL / FUNCTION KILL */
    const char *cmd_name; /* "eval", "fcall", ... (FUNCTION STATS) */
    struct node_client *client;
    /* The calling client's user, for redis.acl_check_cmd: carried in the entry after the
     * seed and the budget, so every replica answers for the same user ("" for an entry
     * without one: the default user). Borrowed for the run. */
    const uint8_t *user;
    size_t user_len;
    const char *sha; /* the body's SHA-1 when known (script.h's script_env.sha), or NULL */
};

/* Commands whose result depends on a replica's own hash table layout (its hashing is seeded
 * per process) or on a random pick from it: a script run on every replica could write
 * different things with them, so at apply they are refused. */
static const char *const script_random[] = {"spop", "srandmember", "hrandfield", "randomkey",
                                            "scan", "sscan",       "hscan"};
/* Commands whose reply order depends on the replica's layout: sorted for scripts, as Redis
 * did before effects replication (HGETALL by field). */
static const char *const script_sorted[] = {"smembers", "sinter", "sunion",  "sdiff",
                                            "hkeys",    "hvals",  "hgetall", "keys"};

static int name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, list[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int bulk_cmp(const void *a, const void *b)
{
    const struct resp_value *x = a, *y = b;
    size_t n = HY_MIN(x->len, y->len);
    int c = n > 0 ? memcmp(x->str, y->str, n) : 0;
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static int pair_cmp(const void *a, const void *b)
{
    return bulk_cmp(a, b); /* a pair starts with its field */
}

/* Rewrites the reply at reply[mark..] with its elements (or field/value pairs) sorted. */
static void sort_reply(struct hy_buf *reply, size_t mark, int pairs, int proto)
{
    struct resp_value v;
    size_t used;
    if (resp_value_parse(NULL, reply->data + mark, reply->len - mark, &v, &used, NULL) != HY_OK) {
        return;
    }
    int is_map = v.type == RESP_MAP;
    size_t n = is_map ? 2 * v.count : v.count;
    int ok = v.type == RESP_ARRAY || v.type == RESP_SET || is_map;
    for (size_t i = 0; ok && i < n; i++) {
        ok = v.elems[i].type == RESP_BULK;
    }
    if (ok && (is_map || (pairs && n % 2 == 0))) {
        qsort(v.elems, n / 2, 2 * sizeof(*v.elems), pair_cmp);
    } else if (ok) {
        qsort(v.elems, n, sizeof(*v.elems), bulk_cmp);
    }
    if (ok) {
        struct hy_buf out;
        hy_buf_init(&out);
        struct resp_writer w = {&out, proto};
        if (is_map) {
            resp_write_map(&w, v.count);
        } else if (v.type == RESP_SET) {
            resp_write_set(&w, n);
        } else {
            resp_write_array(&w, n);
        }
        for (size_t i = 0; i < n; i++) {
            resp_write_bulk(&w, v.elems[i].str, v.elems[i].len);
        }
        reply->len = mark;
        hy_buf_append(reply, out.data, out.len);
        hy_buf_free(&out);
    }
    resp_value_free(&v);
}

/* Commands a script may not run: they act on the connection, the cluster or the server, or
 * would not run inside the one entry. */
static int script_refused(const struct cmd_def *d, int partitioned)
{
    static const char *const names[] = {
        "multi", "exec", "discard", "watch", "unwatch", "eval", "evalsha", "eval_ro", "evalsha_ro",
        "script", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "publish", "hello",
        "auth", "quit", "reset", "readonly", "readwrite", "hy.exec", "hy.exec_ro", "hy.req",
        "hy.session", "hy.flushpart", "hy.configpart", "hy.watchpart", "hy.wanapply",
        "hy.scriptpart", "hy.aclload", "client", "cluster", "halyard", "fcall", "fcall_ro",
        "function",
        /* Replies from node-local state (statistics, LRU clocks, subscribers): a script run
         * at apply would see different values on different replicas. */
        "info", "object", "memory", "pubsub"};
    /* With partitions these read (or flush) every partition's local replica. */
    static const char *const whole[] = {"dbsize",    "keys",     "scan",
                                        "randomkey", "flushall", "flushdb"};
    for (size_t i = 0; partitioned && i < HY_ARRAY_LEN(whole); i++) {
        if (strcmp(d->name, whole[i]) == 0) {
            return 1;
        }
    }
    if ((d->flags & (CMD_ADMIN | CMD_BLOCKING)) || strncmp(d->name, "script|", 7) == 0 ||
        strncmp(d->name, "function|", 9) == 0 || strncmp(d->name, "acl|", 4) == 0) {
        return 1;
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(names); i++) {
        if (strcmp(d->name, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Ops a script's write may not be (they would nest or change the cluster). */
static int script_op_refused(const uint8_t *entry, size_t len)
{
    struct store_entry e;
    if (store_entry_decode(entry, len, &e) != HY_OK) {
        return 1;
    }
    enum store_op op = e.op;
    store_entry_release(&e);
    return op == STORE_OP_EXEC || op == STORE_OP_EVAL || op == STORE_OP_SESSION_OPEN ||
           op == STORE_OP_SESSION_REQ || op == STORE_OP_SESSION_REQW || op == STORE_OP_MEMBER_SET ||
           op == STORE_OP_ACL_SETUSER || op == STORE_OP_ACL_DELUSER || op == STORE_OP_ACL_LOAD ||
           op == STORE_OP_SCRIPT_LOAD || op == STORE_OP_SCRIPT_FLUSH || op == STORE_OP_FCALL ||
           op == STORE_OP_FUNCTION_LOAD || op == STORE_OP_FUNCTION_DELETE ||
           op == STORE_OP_FUNCTION_FLUSH || op == STORE_OP_ENCODING_SET;
}

/* A write: its handler's proposal captured and applied in place (at apply only). */
static void script_call_write(struct script_call *sc, struct cmd_ctx *x, const struct cmd_def *d)
{
    struct hy_buf *reply = x->w.out;
    size_t mark = reply->len;
    struct hy_buf entry;
    hy_buf_init(&entry);
    int rc = node_capture_run(x, d, &entry);
    if (rc < 0 || (rc == 1 && (reply->len > mark || script_op_refused(entry.data, entry.len)))) {
        reply->len = mark;
        resp_write_error(&x->w, "ERR This Redis command is not allowed from script");
    } else if (rc == 1) {
        int ok = store_apply(sc->s, entry.data, entry.len, &x->w);
        HY_ASSERT(ok == HY_OK); /* the handler encoded it */
    }
    hy_buf_free(&entry);
}

/* What a script's redis.call must know of a command, from its name and flags alone. */
enum {
    SCRIPT_CLASS_KNOWN = 1,
    SCRIPT_CLASS_XREAD = 2,        /* XREAD or XREADGROUP: run, but not with BLOCK */
    SCRIPT_CLASS_REFUSED = 4,      /* script_refused on one partition */
    SCRIPT_CLASS_REFUSED_PART = 8, /* ... with partitions */
    SCRIPT_CLASS_RANDOM = 16,      /* script_random */
    SCRIPT_CLASS_SORTED = 32,      /* script_sorted */
    SCRIPT_CLASS_HGETALL = 64,
};

/* d's SCRIPT_CLASS_* bits, worked out once per command of the table (name comparisons were
 * a hundred strcmp per redis.call). */
static unsigned script_class(const struct cmd_def *d)
{
    static uint8_t memo[NODE_COMMANDS_MAX];
    size_t i = (size_t)(d - node_commands);
    int in_table = d >= node_commands && i < node_command_count && i < NODE_COMMANDS_MAX;
    if (in_table && memo[i] != 0) {
        return memo[i];
    }
    unsigned c = SCRIPT_CLASS_KNOWN;
    if (strcmp(d->name, "xread") == 0 || strcmp(d->name, "xreadgroup") == 0) {
        c |= SCRIPT_CLASS_XREAD;
    }
    c |= script_refused(d, 0) ? SCRIPT_CLASS_REFUSED : 0;
    c |= script_refused(d, 1) ? SCRIPT_CLASS_REFUSED_PART : 0;
    c |= name_in(d->name, script_random, HY_ARRAY_LEN(script_random)) ? SCRIPT_CLASS_RANDOM : 0;
    c |= name_in(d->name, script_sorted, HY_ARRAY_LEN(script_sorted)) ? SCRIPT_CLASS_SORTED : 0;
    c |= strcmp(d->name, "hgetall") == 0 ? SCRIPT_CLASS_HGETALL : 0;
    if (in_table) {
        memo[i] = (uint8_t)c;
    }
    return c;
}

static void script_call_cb(void *ctx, size_t argc, const struct resp_arg *argv, int proto,
                           struct hy_buf *reply)
{
    struct script_call *sc = ctx;
    struct hy_node *n = sc->n;
    struct resp_writer w = {reply, proto};
    const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
    d = node_command_sub(n, d, argc, argv);
    if (d == NULL) {
        resp_write_error(&w, "ERR Unknown Redis command called from script");
        return;
    }
    if (!(d->arity > 0 ? argc == (size_t)d->arity : argc >= (size_t)-d->arity)) {
        resp_write_error(&w, "ERR Wrong number of args calling Redis command from script");
        return;
    }
    unsigned cls = script_class(d);
    int xread = (cls & SCRIPT_CLASS_XREAD) != 0;
    if (xread) {
        /* Redis runs XREAD and XREADGROUP in scripts, but never blocking. */
        for (size_t i = 1; i < argc; i++) {
            if (node_arg_is(&argv[i], "STREAMS")) {
                break;
            }
            if (node_arg_is(&argv[i], "BLOCK")) {
                resp_write_errorf(
                    &w, "ERR %s command is not allowed with BLOCK option from scripts", d->name);
                return;
            }
        }
    }
    if (!xread &&
        (cls & (n->group_count > 1 ? SCRIPT_CLASS_REFUSED_PART : SCRIPT_CLASS_REFUSED)) != 0) {
        resp_write_error(&w, "ERR This Redis command is not allowed from script");
        return;
    }
    if (!node_keys_in_group(n, sc->g, d, argc, argv)) {
        resp_write_error(&w, "ERR Script attempted to access a non local key in a cluster node");
        return;
    }
    if (sc->at_apply && (cls & SCRIPT_CLASS_RANDOM) != 0) {
        resp_write_error(&w, "ERR This Redis command is not allowed from script: its result "
                             "depends on the replica, and scripts run on every replica");
        return;
    }
    int write = (d->flags & CMD_WRITE) != 0;
    if (write && sc->readonly) {
        resp_write_error(&w, "ERR Write commands are not allowed from read-only scripts.");
        return;
    }
    if (write && sc->probe && node_replicas_short(sc->g)) {
        /* A script without flags reaches a write while too few replicas are good: the write
         * is refused, and nothing is proposed (the replicas' own counts could differ). */
        sc->stopped = 1;
        resp_write_error(&w, "NOREPLICAS Not enough good replicas to write.");
        return;
    }
    if (write && sc->probe) {
        sc->wrote = 1; /* the poll that follows stops the probe: the script runs at apply */
        resp_write_null(&w);
        return;
    }
    if (write) {
        n->script_busy.wrote = 1;
    }
    sc->client->proto = proto;
    struct cmd_ctx x = {.node = n,
                        .group = sc->g,
                        .store = sc->s,
                        .client = sc->client,
                        .cmd = d,
                        .argc = argc,
                        .argv = argv,
                        .now_ms = sc->now_ms,
                        .w = w};
    size_t mark = reply->len;
    if (write) {
        script_call_write(sc, &x, d);
    } else {
        d->handler(&x);
    }
    /* INFO commandstats counts each command a script calls, as Redis 7.0 does, once: where
     * the script's run is the one that counts (the leader's at apply; a read-only script's
     * where reads run). A probe is run again at apply; other replicas count nothing. */
    if (!sc->probe && (!sc->at_apply || replica_is_leader(sc->g))) {
        int slot = node_cmdstat_slot(n, d, argc, argv);
        node_cmdstat_call(n, slot, 0);
        if (reply->len > mark && reply->data[mark] == '-') {
            node_cmdstat_failed(n, slot);
        }
    }
    if (reply->len == mark) {
        resp_write_null(&w); /* a handler that answered nothing: never leave redis.call empty */
    } else if ((cls & SCRIPT_CLASS_SORTED) != 0) {
        sort_reply(reply, mark, (cls & SCRIPT_CLASS_HGETALL) != 0, proto);
    }
}

/* ---- the shebang ("#!lua flags=no-writes,...") --------------------------------------------------
 */

struct script_flags {
    int shebang; /* the body declares its flags ("#!lua"): Redis judges it before it runs */
    int no_writes;
    int no_cluster;
};

/* Parses body's shebang line, if any. Returns 1, or 0 with the error written to w. */
static int script_flags_parse(const uint8_t *body, size_t len, struct script_flags *f,
                              struct resp_writer *w)
{
    memset(f, 0, sizeof(*f));
    if (len < 2 || body[0] != '#' || body[1] != '!') {
        return 1;
    }
    f->shebang = 1;
    const uint8_t *nl = memchr(body, '\n', len);
    size_t end = nl == NULL ? len : (size_t)(nl - body);
    char line[256];
    if (end - 2 >= sizeof(line)) {
        resp_write_error(w, "ERR Unexpected shebang: the line is too long");
        return 0;
    }
    memcpy(line, body + 2, end - 2);
    line[end - 2] = '\0';
    char *save = NULL;
    char *engine = strtok_r(line, " \t\r", &save);
    if (engine == NULL || strcmp(engine, "lua") != 0) {
        /* Redis 7.0's text names the first word as written, "#!" included. */
        resp_write_errorf(w, "ERR Unexpected engine in script shebang: #!%s",
                          engine != NULL ? engine : "");
        return 0;
    }
    for (char *opt = strtok_r(NULL, " \t\r", &save); opt != NULL;
         opt = strtok_r(NULL, " \t\r", &save)) {
        if (strncmp(opt, "flags=", 6) != 0) {
            resp_write_errorf(w, "ERR Unknown lua shebang option: %s", opt);
            return 0;
        }
        char *save2 = NULL;
        for (char *fl = strtok_r(opt + 6, ",", &save2); fl != NULL;
             fl = strtok_r(NULL, ",", &save2)) {
            if (strcmp(fl, "no-writes") == 0) {
                f->no_writes = 1;
            } else if (strcmp(fl, "no-cluster") == 0) {
                f->no_cluster = 1;
            } else if (strcmp(fl, "allow-oom") != 0 && strcmp(fl, "allow-stale") != 0 &&
                       strcmp(fl, "allow-cross-slot-keys") != 0) {
                resp_write_errorf(w, "ERR Unexpected flag in script shebang: %s", fl);
                return 0;
            }
        }
    }
    return 1;
}

/* ---- running ------------------------------------------------------------------------------------
 */

static struct resp_arg *args_of(const struct store_arg *a, size_t n)
{
    struct resp_arg *v = hy_xmalloc(HY_MAX(n, 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = (struct resp_arg){a[i].ptr, a[i].len};
    }
    return v;
}

/* FCALL's library code and function (lower case); NULL for EVAL. */
struct script_fcall_args {
    const uint8_t *code;
    size_t len;
    const char *fname;
};

/* The run's poll (script.h): lets the shell answer other clients once the script is past
 * busy-reply-threshold, and stops a probe that reached a write or a run SCRIPT KILL asked
 * to stop (only a run that is not at apply can be asked: node_script_kill). */
static const char *script_poll_cb(void *ctx)
{
    struct script_call *sc = ctx;
    struct hy_node *n = sc->n;
    if (sc->probe && sc->wrote) {
        sc->stopped = 1;
        return SCRIPT_STOP_QUIET; /* the script writes: it runs at apply (its reply is unused) */
    }
    if (n->busy_poll != NULL) {
        n->busy_poll(n->busy_poll_ctx);
    }
    if (n->script_busy.kill) {
        sc->stopped = 1;
        sc->killed = 1;
        return n->script_busy.kill == NODE_BUSY_KILL_SHUTDOWN
                   ? "Script killed: the server is shutting down"
                   : "Script killed by user with SCRIPT KILL...";
    }
    return NULL;
}

/* Appends p[0..len) to the NUL-terminated text at out (size bytes), cut to fit. */
static size_t text_append(char *out, size_t size, size_t at, const void *p, size_t len)
{
    size_t n = at + 1 < size ? HY_MIN(len, size - 1 - at) : 0;
    memcpy(out + at, p, n);
    out[at + n] = '\0';
    return at + n;
}

/* FUNCTION STATS's "command": the call as it was made ("fcall f 1 k a", each word cut to 64
 * bytes), cut to fit. Built at every run, so without snprintf (a fifth of a short EVALSHA's
 * own instructions went to it). */
static void script_busy_command(struct node_script_busy *b, const char *cmd_name,
                                const struct script_fcall_args *fa, const struct resp_arg *keys,
                                size_t nkeys, const struct resp_arg *args, size_t nargs)
{
    char num[24];
    size_t i = sizeof(num), v = nkeys;
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    const char *fname = fa != NULL ? fa->fname : "";
    size_t size = sizeof(b->command),
           at = text_append(b->command, size, 0, cmd_name, strlen(cmd_name));
    at = text_append(b->command, size, at, " ", 1);
    at = text_append(b->command, size, at, fname, strlen(fname));
    at = text_append(b->command, size, at, " ", 1);
    at = text_append(b->command, size, at, num + i, sizeof(num) - i);
    for (size_t k = 0; k < nkeys + nargs && at + 1 < size; k++) {
        const struct resp_arg *a = k < nkeys ? &keys[k] : &args[k - nkeys];
        at = text_append(b->command, size, at, " ", 1);
        at = text_append(b->command, size, at, a->ptr, HY_MIN(a->len, 64));
    }
}

/* An EVAL / FCALL entry's head: the seed, the instruction budget, then the calling client's
 * user (what redis.acl_check_cmd answers for, on every replica). Returns its length. */
#define SCRIPT_HEAD_MAX (16 + sizeof(((struct node_client *)0)->user))
static size_t script_head(uint8_t *head, uint64_t seed, uint64_t steps, const struct node_client *c)
{
    hy_store_u64le(head, seed);
    hy_store_u64le(head + 8, steps);
    size_t ulen = strnlen(c->user, sizeof(c->user));
    memcpy(head + 16, c->user, ulen);
    return 16 + ulen;
}

/* redis.acl_check_cmd: whether the run's user may run argv (1 / 0), -1 for an unknown
 * command. No user (an internal client, an entry without one) is the default user. */
static int script_acl_cb(void *ctx, size_t argc, const struct resp_arg *argv)
{
    struct script_call *sc = ctx;
    struct hy_node *n = sc->n;
    const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
    d = node_command_sub(n, d, argc, argv);
    if (d == NULL) {
        return -1;
    }
    const uint8_t *user = sc->user_len > 0 ? sc->user : (const uint8_t *)"default";
    size_t len = sc->user_len > 0 ? sc->user_len : 7;
    struct store_acl_user *tmp;
    const struct store_acl_user *u = acl__resolve(n, n->meta->store, user, len, &tmp);
    if (u == NULL) {
        /* The implicit default user, or one deleted since: as dispatch treats them. */
        return len == 7 && memcmp(user, "default", 7) == 0;
    }
    size_t key = 0;
    enum acl_result r = acl_user_check(u, d, argc, argv, &key);
    store_acl_user_free(tmp);
    return r == ACL_OK;
}

/* Runs body against sc's store, with the node's and the store's PRNGs seeded by seed for the
 * run (restored after), so a replayed entry draws the same numbers everywhere. */
static int script_run_seeded(struct script_call *sc, uint64_t seed, uint64_t steps_max,
                             const uint8_t *body, size_t len, const struct resp_arg *keys,
                             size_t nkeys, const struct resp_arg *args, size_t nargs,
                             struct resp_writer *w, const struct script_fcall_args *fa)
{
    struct hy_node *n = sc->n;
    struct node_client *c = hy_xcalloc(1, sizeof(*c));
    c->proto = 2;
    c->authenticated = 1;
    c->no_block = 1;
    sc->client = c;
    struct hy_prng saved = n->prng, *sp = store_prng(sc->s), saved_store = *sp;
    hy_prng_seed(&n->prng, seed);
    hy_prng_seed(sp, seed ^ 0x9e3779b97f4a7c15ULL);
    int wrap = n->wrap_active;
    n->wrap_active = 0;
    struct script_env env = {.call_cb = script_call_cb,
                             .ctx = sc,
                             .steps_max = steps_max,
                             .memory_max = SCRIPT_MEMORY_BYTES_MAX,
                             /* The entry's seed, so every replica draws the same numbers. */
                             .rand_seed = (uint32_t)(seed >> 32),
                             .acl_cb = script_acl_cb,
                             .log = n->log,
                             .poll_cb = script_poll_cb,
                             /* A probe stopped by its budget must know it was stopped: it
                              * wrote nothing, and is then not proposed (script_probe). */
                             .stopped_out = &sc->stopped,
                             .sha = sc->sha};
    struct node_script_busy *b = &n->script_busy;
    memset(b, 0, sizeof(*b));
    b->active = 1;
    b->is_eval = fa == NULL;
    b->killable = !sc->at_apply || sc->probe;
    b->replica = sc->at_apply && !sc->probe && !replica_is_leader(sc->g);
    b->group = sc->g->id;
    snprintf(b->name, sizeof(b->name), "%s", fa != NULL ? fa->fname : "");
    script_busy_command(b, sc->cmd_name != NULL ? sc->cmd_name : (fa != NULL ? "fcall" : "eval"),
                        fa, keys, nkeys, args, nargs);
    int compiled = 0;
    if (fa != NULL) {
        script_fcall(&env, fa->code, fa->len, fa->fname, keys, nkeys, args, nargs, w);
    } else {
        compiled = script_run(&env, body, len, keys, nkeys, args, nargs, w);
    }
    int polled = b->started_ms != 0;
    memset(b, 0, sizeof(*b));
    if (polled && n->busy_poll != NULL) {
        n->busy_poll(n->busy_poll_ctx); /* it is over: the shell tells the peers it told */
    }
    n->wrap_active = wrap;
    n->prng = saved;
    *sp = saved_store;
    hy_buf_free(&c->xread_ids); /* what an XREAD inside kept on the client */
    hy_buf_free(&c->xread_text);
    hy_free(c->xread_argv);
    hy_free(c);
    return compiled;
}

/* An FCALL entry: [head, code, function name, numkeys, keys..., args...]. */
static void fcall_apply(struct node_group *g, struct store *s, const struct store_entry *e,
                        struct resp_writer *out)
{
    size_t nkeys = hy_load_u32le(e->argv[3].ptr);
    char fname[STORE_FUNCTION_NAME_MAX + 1];
    size_t flen = HY_MIN(e->argv[2].len, STORE_FUNCTION_NAME_MAX);
    for (size_t i = 0; i < flen; i++) {
        uint8_t ch = e->argv[2].ptr[i];
        fname[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    fname[flen] = '\0';
    /* The function's flags as the library in this store has them (the same on every
     * replica); a library deleted since the proposal runs with none. */
    const struct store_function *fn = NULL;
    int no_writes =
        store_function_find(s, fname, &fn) != NULL && (fn->flags & SCRIPT_FN_NO_WRITES) != 0;
    struct resp_arg *keys = args_of(e->argv + 4, nkeys);
    struct resp_arg *args = args_of(e->argv + 4 + nkeys, e->argc - 4 - nkeys);
    struct script_call sc = {.n = g->node,
                             .g = g,
                             .s = s,
                             .now_ms = e->time_ms,
                             .readonly = no_writes,
                             .at_apply = 1,
                             .user = e->argv[0].ptr + 16,
                             .user_len = e->argv[0].len - 16};
    struct script_fcall_args fa = {e->argv[1].ptr, e->argv[1].len, fname};
    (void)script_run_seeded(&sc, hy_load_u64le(e->argv[0].ptr), hy_load_u64le(e->argv[0].ptr + 8),
                            NULL, 0, keys, nkeys, args, e->argc - 4 - nkeys, out, &fa);
    hy_free(keys);
    hy_free(args);
}

int node_script_apply_cb(void *ctx, struct store *s, const struct store_entry *e, const char *sha,
                         struct resp_writer *w)
{
    struct node_group *g = ctx;
    if (e->op == STORE_OP_FCALL) {
        struct hy_buf scratch;
        hy_buf_init(&scratch);
        struct resp_writer out = w != NULL ? *w : (struct resp_writer){&scratch, 2};
        fcall_apply(g, s, e, &out);
        hy_buf_free(&scratch);
        return 0; /* nothing to cache */
    }
    uint64_t seed = hy_load_u64le(e->argv[0].ptr);
    uint64_t steps = hy_load_u64le(e->argv[0].ptr + 8);
    size_t nkeys = hy_load_u32le(e->argv[2].ptr);
    const uint8_t *body = e->argv[1].ptr;
    size_t len = e->argv[1].len;
    struct hy_buf scratch;
    hy_buf_init(&scratch);
    struct resp_writer out = w != NULL ? *w : (struct resp_writer){&scratch, 2};
    struct script_flags f;
    if (!script_flags_parse(body, len, &f, &out)) {
        hy_buf_free(&scratch);
        return 0;
    }
    struct resp_arg *keys = args_of(e->argv + 3, nkeys);
    struct resp_arg *args = args_of(e->argv + 3 + nkeys, e->argc - 3 - nkeys);
    struct script_call sc = {.n = g->node,
                             .g = g,
                             .s = s,
                             .now_ms = e->time_ms,
                             .readonly = f.no_writes,
                             .at_apply = 1,
                             .user = e->argv[0].ptr + 16,
                             .user_len = e->argv[0].len - 16,
                             .sha = sha};
    int compiled = script_run_seeded(&sc, seed, steps, body, len, keys, nkeys, args,
                                     e->argc - 3 - nkeys, &out, NULL);
    hy_free(keys);
    hy_free(args);
    hy_buf_free(&scratch);
    return compiled;
}

const uint8_t *node_script_find(const struct hy_node *n, const struct store *first,
                                const uint8_t *sha, size_t sha_len, size_t *len_out)
{
    if (sha_len != HY_SHA1_HEX_LEN) {
        return NULL;
    }
    char hex[HY_SHA1_HEX_LEN + 1];
    for (size_t i = 0; i < HY_SHA1_HEX_LEN; i++) {
        hex[i] = (char)(sha[i] >= 'A' && sha[i] <= 'Z' ? sha[i] + ('a' - 'A') : sha[i]);
    }
    hex[HY_SHA1_HEX_LEN] = '\0';
    /* Only the partition's own store: SCRIPT LOAD reaches every partition, and another
     * partition's replica here may lag its leader (a SCRIPT FLUSH not applied yet). */
    const struct store *s = first != NULL ? first : node_group_of_slot(n, 0)->store;
    return store_script_find(s, hex, len_out);
}

/* numkeys (argv[2]) checked as Redis checks it; 0 with the error written. */
static int eval_numkeys(struct cmd_ctx *x, size_t *out)
{
    int64_t v;
    if (!hy_parse_i64(x->argv[2].ptr, x->argv[2].len, &v)) {
        resp_write_error(&x->w, "ERR value is not an integer or out of range");
        return 0;
    }
    if (v < 0) {
        resp_write_error(&x->w, "ERR Number of keys can't be negative");
        return 0;
    }
    if ((uint64_t)v > x->argc - 3) {
        resp_write_error(&x->w, "ERR Number of keys can't be greater than number of args");
        return 0;
    }
    *out = (size_t)v;
    return 1;
}

/* The budget of a run, in Lua instructions (script-max-instructions). */
static uint64_t script_steps_max(const struct hy_node *n)
{
    return (uint64_t)n->cfg->script_max_instructions;
}

/*
 * The leader's probe of a script that may write, before anything is proposed: the script
 * runs here against this replica's store, with the entry's seed and the refusals of a run at
 * apply, until its first write. Only a probe can be killed (SCRIPT KILL / FUNCTION KILL) or
 * stopped by its budget before it wrote, and then nothing is proposed: the error is the
 * reply (written to x->w) and 0 returned. Otherwise (it reached a write, or ended without
 * one) 1: the script is proposed and every replica runs it at apply, where it cannot be
 * killed. Inside a transaction being built there is no probe (its EXEC is one entry): a
 * script is only compiled there, so that one that does not compile is refused at once. The
 * probe compiles the script itself, and one that does not compile is not proposed either.
 */
static int script_probe(struct cmd_ctx *x, uint64_t seed, const uint8_t *body, size_t len,
                        const char *sha, size_t nkeys, const struct script_fcall_args *fa,
                        int no_writes)
{
    struct hy_node *n = x->node;
    if (n->capture != NULL) {
        return fa != NULL || script_compile_check(body, len, &x->w);
    }
    const struct resp_arg *keys = x->argc > 3 ? x->argv + 3 : NULL;
    struct script_call sc = {.n = n,
                             .g = x->group,
                             .s = x->store,
                             .now_ms = x->now_ms,
                             .readonly = no_writes,
                             .at_apply = 1,
                             .probe = 1,
                             .cmd_name = fa != NULL ? "fcall" : "eval",
                             .user = (const uint8_t *)x->client->user,
                             .user_len = strlen(x->client->user),
                             .sha = sha};
    struct hy_buf scratch;
    hy_buf_init(&scratch);
    struct resp_writer w = {&scratch, x->w.proto};
    int compiled =
        script_run_seeded(&sc, seed, script_steps_max(n), body, len, keys, nkeys,
                          keys == NULL ? NULL : keys + nkeys, x->argc - 3 - nkeys, &w, fa);
    int propose = (fa != NULL || compiled) && (sc.wrote || !sc.stopped);
    if (!propose) {
        hy_buf_append(x->w.out, scratch.data, scratch.len);
    }
    hy_buf_free(&scratch);
    return propose;
}

/* Proposes the script as one STORE_OP_EVAL entry. */
static void eval_propose(struct cmd_ctx *x, uint64_t seed, const uint8_t *body, size_t len,
                         size_t nkeys)
{
    struct hy_node *n = x->node;
    size_t nargs = 3 + (x->argc - 3);
    struct store_arg *args = hy_xmalloc(nargs * sizeof(*args));
    uint8_t head[SCRIPT_HEAD_MAX], nk[4];
    size_t head_len = script_head(head, seed, script_steps_max(n), x->client);
    hy_store_u32le(nk, (uint32_t)nkeys);
    args[0] = (struct store_arg){head, head_len};
    args[1] = (struct store_arg){body, len};
    args[2] = (struct store_arg){nk, 4};
    for (size_t i = 3; i < x->argc; i++) {
        args[i] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
    }
    struct store_entry e = {.op = STORE_OP_EVAL,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)nargs,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

static void eval_generic(struct cmd_ctx *x, int by_sha, int readonly)
{
    size_t nkeys;
    if (!eval_numkeys(x, &nkeys)) {
        return;
    }
    const uint8_t *body = x->argv[1].ptr;
    size_t len = x->argv[1].len;
    char hex[HY_SHA1_HEX_LEN + 1];
    const char *sha = NULL; /* EVAL: made by the engine only if an error reply names it */
    if (by_sha) {
        body = node_script_find(x->node, x->store, x->argv[1].ptr, x->argv[1].len, &len);
        if (body == NULL) {
            resp_write_error(&x->w, "NOSCRIPT No matching script. Please use EVAL.");
            return;
        }
        for (size_t i = 0; i < HY_SHA1_HEX_LEN; i++) {
            uint8_t ch = x->argv[1].ptr[i]; /* 40 digits: node_script_find found them */
            hex[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
        }
        hex[HY_SHA1_HEX_LEN] = '\0';
        sha = hex;
    }
    struct script_flags f;
    if (!script_flags_parse(body, len, &f, &x->w)) {
        return;
    }
    if (f.no_cluster && x->node->group_count > 1) {
        resp_write_error(&x->w, "ERR Can not run script on cluster, 'no-cluster' flag is set.");
        return;
    }
    if (!readonly && f.shebang && !f.no_writes && node_replicas_short(x->group)) {
        /* A script that declares it may write is refused before it runs, as Redis does. */
        resp_write_error(&x->w, "NOREPLICAS Not enough good replicas to write.");
        return;
    }
    if (!readonly) {
        uint64_t seed = hy_prng_next(&x->node->prng);
        if (script_probe(x, seed, body, len, sha, nkeys, NULL, f.no_writes)) {
            eval_propose(x, seed, body, len, nkeys);
        }
        return;
    }
    /* A read: here, at the read's time, against this replica. */
    const struct resp_arg *keys = x->argc > 3 ? x->argv + 3 : NULL;
    struct script_call sc = {.n = x->node,
                             .g = x->group,
                             .s = x->store,
                             .now_ms = x->now_ms,
                             .readonly = 1,
                             .cmd_name = "eval_ro",
                             .user = (const uint8_t *)x->client->user,
                             .user_len = strlen(x->client->user),
                             .sha = sha};
    (void)script_run_seeded(&sc, hy_prng_next(&x->node->prng), script_steps_max(x->node), body, len,
                            keys, nkeys, keys == NULL ? NULL : keys + nkeys, x->argc - 3 - nkeys,
                            &x->w, NULL);
}

void cmd_eval(struct cmd_ctx *x)
{
    eval_generic(x, 0, 0);
}

void cmd_evalsha(struct cmd_ctx *x)
{
    eval_generic(x, 1, 0);
}

void cmd_eval_ro(struct cmd_ctx *x)
{
    eval_generic(x, 0, 1);
}

void cmd_evalsha_ro(struct cmd_ctx *x)
{
    eval_generic(x, 1, 1);
}

/* ---- SCRIPT -------------------------------------------------------------------------------------
 */

int node_is_script(const struct cmd_def *d)
{
    return d->handler == cmd_eval || d->handler == cmd_evalsha || d->handler == cmd_eval_ro ||
           d->handler == cmd_evalsha_ro || d->handler == cmd_fcall || d->handler == cmd_fcall_ro;
}

int node_script_scatters(const struct cmd_def *d)
{
    return d != NULL && (d->handler == cmd_script || d->handler == cmd_function) &&
           (strcmp(d->name, "script|load") == 0 || strcmp(d->name, "script|flush") == 0 ||
            strcmp(d->name, "function|load") == 0 || strcmp(d->name, "function|delete") == 0 ||
            strcmp(d->name, "function|flush") == 0);
}

static void script_help(struct cmd_ctx *x)
{
    static const char *const lines[] = {
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache (in every partition).",
        "KILL",
        "    Kill the currently executing Lua script (scripts never run concurrently with "
        "commands here: see docs/protocol.md).",
        "LOAD <script>",
        "    Load a script into the scripts cache of every partition without executing it.",
        "HELP",
        "    Print this help."};
    node_reply_help(x, lines, HY_ARRAY_LEN(lines));
}

void cmd_script(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "LOAD") && x->argc == 3) {
        if (!script_compile_check(x->argv[2].ptr, x->argv[2].len, &x->w)) {
            return;
        }
        char sha[HY_SHA1_HEX_LEN + 1], ok[64];
        hy_sha1_hex(x->argv[2].ptr, x->argv[2].len, sha);
        snprintf(ok, sizeof(ok), "$40\r\n%s\r\n", sha);
        struct resp_arg extra[2] = {{(const uint8_t *)"LOAD", 4}, x->argv[2]};
        node_scatter_parts(x, "HY.SCRIPTPART", extra, 2, ok);
    } else if (node_arg_is(sub, "EXISTS") && x->argc >= 3) {
        resp_write_array(&x->w, x->argc - 2);
        for (size_t i = 2; i < x->argc; i++) {
            size_t len;
            resp_write_int(&x->w, node_script_find(x->node, NULL, x->argv[i].ptr, x->argv[i].len,
                                                   &len) != NULL);
        }
    } else if (node_arg_is(sub, "FLUSH") && x->argc <= 3) {
        if (x->argc == 3 && !node_arg_is(&x->argv[2], "ASYNC") &&
            !node_arg_is(&x->argv[2], "SYNC")) {
            resp_write_error(&x->w, "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
            return;
        }
        struct resp_arg extra[1] = {{(const uint8_t *)"FLUSH", 5}};
        node_scatter_parts(x, "HY.SCRIPTPART", extra, 1, "");
    } else if (node_arg_is(sub, "KILL") && x->argc == 2) {
        resp_write_error(&x->w, "NOTBUSY No scripts in execution right now.");
    } else if (node_arg_is(sub, "HELP") && x->argc == 2) {
        script_help(x);
    } else {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try SCRIPT HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}

/* The proposer's part of FUNCTION LOAD: the library's functions learnt by running its code,
 * as one STORE_OP_FUNCTION_LOAD entry. */
static void function_load_propose(struct cmd_ctx *x, const struct resp_arg *code, int replace)
{
    struct script_library lib;
    if (!script_library_parse(code->ptr, code->len, &lib, &x->w)) {
        return;
    }
    size_t argc = 2 + 2 * lib.count;
    struct store_arg *args = hy_xmalloc(argc * sizeof(*args));
    uint8_t *flags = hy_xmalloc(lib.count);
    args[0] = (struct store_arg){code->ptr, code->len};
    args[1] = (struct store_arg){(const uint8_t *)lib.name, strlen(lib.name)};
    for (size_t i = 0; i < lib.count; i++) {
        flags[i] = (uint8_t)lib.funcs[i].flags;
        args[2 + 2 * i] =
            (struct store_arg){(const uint8_t *)lib.funcs[i].name, strlen(lib.funcs[i].name)};
        args[3 + 2 * i] = (struct store_arg){&flags[i], 1};
    }
    struct store_entry e = {.op = STORE_OP_FUNCTION_LOAD,
                            .flags = replace ? STORE_F_REPLACE : 0,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)argc,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
    hy_free(flags);
    script_library_free(&lib);
}

/* ---- FUNCTION DUMP and RESTORE -----------------------------------------------------------------
 *
 * The payload (halyard's own, docs/protocol.md): varint count, then each library's code as a
 * varint length and its bytes, then the format version (2 bytes LE) and a CRC32C (4 bytes LE)
 * of everything before it, the frame of a key's DUMP. */

#define FUNCTION_DUMP_VERSION 1

static void put_varint_buf(struct hy_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        hy_buf_append_u8(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    hy_buf_append_u8(b, (uint8_t)v);
}

static void function_dump(struct cmd_ctx *x)
{
    /* Libraries live in every data partition alike (FUNCTION LIST reads slot 0's too). */
    struct node_group *g = node_group_of_slot(x->node, 0);
    const struct store_library *const *libs;
    size_t n = g != NULL ? store_libraries(g->store, &libs) : 0;
    struct hy_buf b;
    hy_buf_init(&b);
    put_varint_buf(&b, n);
    for (size_t i = 0; i < n; i++) {
        put_varint_buf(&b, libs[i]->len);
        hy_buf_append(&b, libs[i]->code, libs[i]->len);
    }
    hy_buf_append_u8(&b, FUNCTION_DUMP_VERSION & 0xff);
    hy_buf_append_u8(&b, FUNCTION_DUMP_VERSION >> 8);
    hy_buf_append_u32le(&b, hy_crc32c(0, b.data, b.len));
    resp_write_bulk(&x->w, b.data, b.len);
    hy_buf_free(&b);
}

/* Reads a varint from p[*off..len); 0 when truncated or too long. */
static int get_varint_buf(const uint8_t *p, size_t len, size_t *off, uint64_t *v_out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *off < len && shift < 64; shift += 7) {
        uint8_t byte = p[(*off)++];
        v |= (uint64_t)(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            *v_out = v;
            return 1;
        }
    }
    return 0;
}

/* The libraries' code in a payload: fills codes[] (borrowed from p) and returns the count, or
 * -1 when the frame, version or checksum is wrong or the body malformed. */
static long function_payload_read(const uint8_t *p, size_t len, struct resp_arg *codes, size_t max)
{
    if (len < 6) {
        return -1;
    }
    size_t body = len - 6, off = 0;
    unsigned version = (unsigned)p[body] | (unsigned)p[body + 1] << 8;
    if (version != FUNCTION_DUMP_VERSION ||
        hy_crc32c(0, p, body + 2) != hy_load_u32le(p + body + 2)) {
        return -1;
    }
    uint64_t n;
    if (!get_varint_buf(p, body, &off, &n) || n > max) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t clen;
        if (!get_varint_buf(p, body, &off, &clen) || clen > body - off) {
            return -1;
        }
        codes[i] = (struct resp_arg){p + off, (size_t)clen};
        off += (size_t)clen;
    }
    return off == body ? (long)n : -1;
}

/* HY.SCRIPTPART's FRESTORE: parses every library of the payload and proposes them as one
 * FUNCTION_RESTORE entry (applied all or nothing). */
static void function_restore_propose(struct cmd_ctx *x, int64_t policy, const struct resp_arg *pl)
{
    struct resp_arg codes[STORE_LIBRARIES_MAX];
    long n = function_payload_read(pl->ptr, pl->len, codes, STORE_LIBRARIES_MAX);
    if (n < 0) {
        resp_write_error(&x->w, "ERR payload version or checksum are wrong");
        return;
    }
    struct script_library *libs = hy_xcalloc((size_t)HY_MAX(n, 1), sizeof(*libs));
    size_t argc = 0, parsed = 0;
    for (; parsed < (size_t)n; parsed++) {
        if (!script_library_parse(codes[parsed].ptr, codes[parsed].len, &libs[parsed], &x->w)) {
            goto out;
        }
        argc += 3 + 2 * libs[parsed].count;
    }
    struct store_arg *args = hy_xmalloc(HY_MAX(argc, 1) * sizeof(*args));
    uint8_t *meta = hy_xmalloc(HY_MAX(argc, 1) * 4); /* counts (4) and flags (1) */
    size_t a = 0, m = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
        const struct script_library *l = &libs[i];
        uint32_t nargs = (uint32_t)(2 + 2 * l->count);
        uint8_t *cnt = meta + m;
        m += 4;
        for (int b = 0; b < 4; b++) {
            cnt[b] = (uint8_t)(nargs >> (8 * b));
        }
        args[a++] = (struct store_arg){cnt, 4};
        args[a++] = (struct store_arg){codes[i].ptr, codes[i].len};
        args[a++] = (struct store_arg){(const uint8_t *)l->name, strlen(l->name)};
        for (size_t f = 0; f < l->count; f++) {
            meta[m] = (uint8_t)l->funcs[f].flags;
            args[a++] =
                (struct store_arg){(const uint8_t *)l->funcs[f].name, strlen(l->funcs[f].name)};
            args[a++] = (struct store_arg){&meta[m++], 1};
        }
    }
    struct store_entry e = {.op = STORE_OP_FUNCTION_RESTORE,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = policy,
                            .argc = (uint32_t)argc,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
    hy_free(meta);
out:
    for (size_t i = 0; i < parsed; i++) {
        script_library_free(&libs[i]);
    }
    hy_free(libs);
}

/* FUNCTION RESTORE payload [APPEND|REPLACE|FLUSH]: checked here, then one entry per
 * partition, as FUNCTION LOAD. */
static void function_restore(struct cmd_ctx *x)
{
    int64_t policy = 0;
    if (x->argc == 4) {
        if (node_arg_is(&x->argv[3], "APPEND")) {
            policy = 0;
        } else if (node_arg_is(&x->argv[3], "REPLACE")) {
            policy = 1;
        } else if (node_arg_is(&x->argv[3], "FLUSH")) {
            policy = 2;
        } else {
            resp_write_error(&x->w, "ERR Wrong restore policy given, value should be either "
                                    "FLUSH, APPEND or REPLACE.");
            return;
        }
    }
    struct resp_arg codes[STORE_LIBRARIES_MAX];
    if (function_payload_read(x->argv[2].ptr, x->argv[2].len, codes, STORE_LIBRARIES_MAX) < 0) {
        resp_write_error(&x->w, "ERR payload version or checksum are wrong");
        return;
    }
    char pol[2] = {(char)('0' + policy), 0};
    struct resp_arg extra[3] = {
        {(const uint8_t *)"FRESTORE", 8}, {(const uint8_t *)pol, 1}, x->argv[2]};
    node_scatter_parts(x, "HY.SCRIPTPART", extra, 3, "");
}

/* HY.SCRIPTPART slot LOAD body | FLUSH | FLOAD [REPLACE] code | FDELETE lib | FFLUSH: one
 * partition's part of SCRIPT LOAD/FLUSH and FUNCTION LOAD/DELETE/FLUSH (routed to the
 * partition holding the slot, like HY.FLUSHPART). */
void cmd_hy_scriptpart(struct cmd_ctx *x)
{
    struct store_entry e = {.time_ms = x->now_ms, .expire_at_ms = -1};
    struct store_arg one;
    const struct resp_arg *sub = &x->argv[2];
    if (x->argc == 4 && node_arg_is(sub, "FLOAD")) {
        function_load_propose(x, &x->argv[3], 0);
        return;
    }
    if (x->argc == 5 && node_arg_is(sub, "FLOAD") && node_arg_is(&x->argv[3], "REPLACE")) {
        script_cache_flush(); /* the replaced library's chunk: memory only */
        function_load_propose(x, &x->argv[4], 1);
        return;
    }
    if (x->argc == 5 && node_arg_is(sub, "FRESTORE") && x->argv[3].len == 1 &&
        x->argv[3].ptr[0] >= '0' && x->argv[3].ptr[0] <= '2') {
        function_restore_propose(x, x->argv[3].ptr[0] - '0', &x->argv[4]);
        return;
    }
    if (x->argc == 4 && (node_arg_is(sub, "LOAD") || node_arg_is(sub, "FDELETE"))) {
        one = (struct store_arg){x->argv[3].ptr, x->argv[3].len};
        e.op = node_arg_is(sub, "LOAD") ? STORE_OP_SCRIPT_LOAD : STORE_OP_FUNCTION_DELETE;
        if (e.op == STORE_OP_FUNCTION_DELETE) {
            script_cache_flush(); /* the deleted library's chunk: memory only */
        }
        e.argc = 1;
        e.argv = &one;
    } else if (x->argc == 3 && node_arg_is(sub, "FLUSH")) {
        e.op = STORE_OP_SCRIPT_FLUSH;
        script_cache_flush(); /* this thread's compiled bodies: memory only (script.h) */
    } else if (x->argc == 3 && node_arg_is(sub, "FFLUSH")) {
        e.op = STORE_OP_FUNCTION_FLUSH;
        script_cache_flush();
    } else {
        resp_write_error(&x->w, "ERR usage: HY.SCRIPTPART slot LOAD body | FLUSH | FLOAD "
                                "[REPLACE] code | FDELETE library | FFLUSH");
        return;
    }
    node_propose(x, &e);
}

/* ---- FCALL and FUNCTION ------------------------------------------------------------------------
 */

/* The library holding fname in this node's stores (x's first). */
static const struct store_library *function_find(struct cmd_ctx *x, const char *fname,
                                                 const struct store_function **fn_out)
{
    return store_function_find(x->store, fname, fn_out); /* as node_script_find */
}

static void fcall_generic(struct cmd_ctx *x, int readonly)
{
    char fname[STORE_FUNCTION_NAME_MAX + 1];
    if (x->argv[1].len > STORE_FUNCTION_NAME_MAX) {
        resp_write_error(&x->w, "ERR Function not found");
        return;
    }
    for (size_t i = 0; i < x->argv[1].len; i++) {
        uint8_t ch = x->argv[1].ptr[i];
        fname[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    fname[x->argv[1].len] = '\0';
    const struct store_function *fn = NULL;
    const struct store_library *lib = function_find(x, fname, &fn);
    if (lib == NULL) {
        resp_write_error(&x->w, "ERR Function not found");
        return;
    }
    /* The function is looked up before its key count is read, as Redis 7.0 does. */
    int64_t v;
    if (!hy_parse_i64(x->argv[2].ptr, x->argv[2].len, &v)) {
        resp_write_error(&x->w, "ERR Bad number of keys provided");
        return;
    }
    size_t nkeys;
    if (!eval_numkeys(x, &nkeys)) {
        return;
    }
    if ((fn->flags & SCRIPT_FN_NO_CLUSTER) && x->node->group_count > 1) {
        resp_write_error(&x->w, "ERR Can not run script on cluster, 'no-cluster' flag is set.");
        return;
    }
    if (readonly && !(fn->flags & SCRIPT_FN_NO_WRITES)) {
        resp_write_error(&x->w, "ERR Can not execute a script with write flag using *_ro command.");
        return;
    }
    struct script_fcall_args fa = {lib->code, lib->len, fname};
    if (!readonly) {
        uint64_t seed = hy_prng_next(&x->node->prng);
        if (!script_probe(x, seed, NULL, 0, NULL, nkeys, &fa,
                          (fn->flags & SCRIPT_FN_NO_WRITES) != 0)) {
            return;
        }
        size_t nargs = 4 + (x->argc - 3);
        struct store_arg *args = hy_xmalloc(nargs * sizeof(*args));
        uint8_t head[SCRIPT_HEAD_MAX], nk[4];
        size_t head_len = script_head(head, seed, script_steps_max(x->node), x->client);
        hy_store_u32le(nk, (uint32_t)nkeys);
        args[0] = (struct store_arg){head, head_len};
        args[1] = (struct store_arg){lib->code, lib->len};
        args[2] = (struct store_arg){(const uint8_t *)fname, strlen(fname)};
        args[3] = (struct store_arg){nk, 4};
        for (size_t i = 3; i < x->argc; i++) {
            args[i + 1] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
        }
        struct store_entry e = {.op = STORE_OP_FCALL,
                                .time_ms = x->now_ms,
                                .expire_at_ms = -1,
                                .argc = (uint32_t)nargs,
                                .argv = args};
        node_propose(x, &e);
        hy_free(args);
        return;
    }
    const struct resp_arg *keys = x->argc > 3 ? x->argv + 3 : NULL;
    struct script_call sc = {.n = x->node,
                             .g = x->group,
                             .s = x->store,
                             .now_ms = x->now_ms,
                             .readonly = 1,
                             .cmd_name = "fcall_ro",
                             .user = (const uint8_t *)x->client->user,
                             .user_len = strlen(x->client->user)};
    (void)script_run_seeded(&sc, hy_prng_next(&x->node->prng), script_steps_max(x->node), NULL, 0,
                            keys, nkeys, keys == NULL ? NULL : keys + nkeys, x->argc - 3 - nkeys,
                            &x->w, &fa);
}

void cmd_fcall(struct cmd_ctx *x)
{
    fcall_generic(x, 0);
}

void cmd_fcall_ro(struct cmd_ctx *x)
{
    fcall_generic(x, 1);
}

/* FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern]. */
static void function_list(struct cmd_ctx *x)
{
    int withcode = 0;
    const struct resp_arg *pattern = NULL;
    /* Each option once; a second one is an unknown argument, as Redis 7.0 says. */
    for (size_t i = 2; i < x->argc; i++) {
        if (!withcode && node_arg_is(&x->argv[i], "WITHCODE")) {
            withcode = 1;
        } else if (pattern == NULL && node_arg_is(&x->argv[i], "LIBRARYNAME")) {
            if (i + 1 >= x->argc) {
                resp_write_error(&x->w, "ERR library name argument was not given");
                return;
            }
            pattern = &x->argv[++i];
        } else {
            resp_write_errorf(&x->w, "ERR Unknown argument %.*s", (int)HY_MIN(x->argv[i].len, 128),
                              (const char *)x->argv[i].ptr);
            return;
        }
    }
    struct node_group *g = node_group_of_slot(x->node, 0);
    const struct store_library *const *libs;
    size_t n = store_libraries(g->store, &libs), shown = 0;
    for (size_t i = 0; i < n; i++) {
        shown += pattern == NULL ||
                 hy_glob_match(pattern->ptr, pattern->len, (const uint8_t *)libs[i]->name,
                               strlen(libs[i]->name), 0);
    }
    resp_write_array(&x->w, shown);
    for (size_t i = 0; i < n; i++) {
        const struct store_library *l = libs[i];
        if (pattern != NULL && !hy_glob_match(pattern->ptr, pattern->len, (const uint8_t *)l->name,
                                              strlen(l->name), 0)) {
            continue;
        }
        resp_write_map(&x->w, withcode ? 4 : 3);
        resp_write_bulk_str(&x->w, "library_name");
        resp_write_bulk_str(&x->w, l->name);
        resp_write_bulk_str(&x->w, "engine");
        resp_write_bulk_str(&x->w, "LUA");
        resp_write_bulk_str(&x->w, "functions");
        resp_write_array(&x->w, l->nfuncs);
        /* Descriptions are not kept in the replicated state: the library's code gives them
         * again (it loaded before, so it loads now; if not, none is shown). */
        struct script_library parsed;
        struct hy_buf scratch;
        hy_buf_init(&scratch);
        struct resp_writer sw = {&scratch, 2};
        int have = script_library_parse(l->code, l->len, &parsed, &sw);
        hy_buf_free(&scratch);
        for (size_t j = 0; j < l->nfuncs; j++) {
            resp_write_map(&x->w, 3);
            resp_write_bulk_str(&x->w, "name");
            resp_write_bulk_str(&x->w, l->funcs[j].name);
            resp_write_bulk_str(&x->w, "description");
            const char *desc = NULL;
            for (size_t k = 0; have && k < parsed.count; k++) {
                if (strcmp(parsed.funcs[k].name, l->funcs[j].name) == 0) {
                    desc = parsed.funcs[k].description;
                }
            }
            if (desc != NULL) {
                resp_write_bulk_str(&x->w, desc);
            } else {
                resp_write_null(&x->w);
            }
            resp_write_bulk_str(&x->w, "flags");
            int nw = (l->funcs[j].flags & SCRIPT_FN_NO_WRITES) != 0;
            int nc = (l->funcs[j].flags & SCRIPT_FN_NO_CLUSTER) != 0;
            resp_write_set(&x->w, (size_t)(nw + nc));
            /* Status replies, as Redis 7.0 gives the flags. */
            if (nw) {
                resp_write_simple(&x->w, "no-writes");
            }
            if (nc) {
                resp_write_simple(&x->w, "no-cluster");
            }
        }
        if (have) {
            script_library_free(&parsed);
        }
        if (withcode) {
            resp_write_bulk_str(&x->w, "library_code");
            resp_write_bulk(&x->w, l->code, l->len);
        }
    }
}

static void function_stats(struct cmd_ctx *x)
{
    struct node_group *g = node_group_of_slot(x->node, 0);
    const struct store_library *const *libs;
    size_t n = store_libraries(g->store, &libs), funcs = 0;
    for (size_t i = 0; i < n; i++) {
        funcs += libs[i]->nfuncs;
    }
    resp_write_map(&x->w, 2);
    resp_write_bulk_str(&x->w, "running_script");
    resp_write_null(&x->w);
    resp_write_bulk_str(&x->w, "engines");
    resp_write_map(&x->w, 1);
    resp_write_bulk_str(&x->w, "LUA");
    resp_write_map(&x->w, 2);
    resp_write_bulk_str(&x->w, "libraries_count");
    resp_write_int(&x->w, (int64_t)n);
    resp_write_bulk_str(&x->w, "functions_count");
    resp_write_int(&x->w, (int64_t)funcs);
}

static void function_load(struct cmd_ctx *x)
{
    int replace = 0;
    size_t i = 2;
    for (; i + 1 < x->argc; i++) {
        if (!node_arg_is(&x->argv[i], "REPLACE")) {
            resp_write_errorf(&x->w, "ERR Unknown option given: %.*s",
                              (int)HY_MIN(x->argv[i].len, 128), (const char *)x->argv[i].ptr);
            return;
        }
        replace = 1;
    }
    struct script_library lib;
    if (!script_library_parse(x->argv[i].ptr, x->argv[i].len, &lib, &x->w)) {
        return;
    }
    char ok[160];
    snprintf(ok, sizeof(ok), "$%zu\r\n%s\r\n", strlen(lib.name), lib.name);
    script_library_free(&lib);
    struct resp_arg extra[3] = {
        {(const uint8_t *)"FLOAD", 5}, {(const uint8_t *)"REPLACE", 7}, x->argv[i]};
    if (replace) {
        node_scatter_parts(x, "HY.SCRIPTPART", extra, 3, ok);
    } else {
        extra[1] = x->argv[i];
        node_scatter_parts(x, "HY.SCRIPTPART", extra, 2, ok);
    }
}

/* FUNCTION's subcommands and their arities (negative: at least), as Redis 7.0's command table
 * has them: an unknown one and a wrong count are refused with its texts. */
static int function_sub_check(struct cmd_ctx *x)
{
    static const struct {
        const char *name;
        int arity;
    } subs[] = {{"load", -3}, {"delete", 3}, {"flush", -2},   {"list", -2}, {"stats", 2},
                {"kill", 2},  {"dump", 2},   {"restore", -3}, {"help", 2}};
    const struct resp_arg *sub = &x->argv[1];
    for (size_t i = 0; i < HY_ARRAY_LEN(subs); i++) {
        if (node_arg_is(sub, subs[i].name)) {
            int a = subs[i].arity;
            if ((a > 0 && x->argc != (size_t)a) || (a < 0 && x->argc < (size_t)-a)) {
                char full[32];
                snprintf(full, sizeof(full), "function|%s", subs[i].name);
                node_reply_arity(&x->w, full);
                return 0;
            }
            return 1;
        }
    }
    resp_write_errorf(&x->w, "ERR unknown subcommand '%.*s'. Try FUNCTION HELP.",
                      (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    return 0;
}

void cmd_function(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (!function_sub_check(x)) {
        return;
    }
    if (node_arg_is(sub, "LOAD") && x->argc >= 3) {
        function_load(x);
    } else if (node_arg_is(sub, "DELETE") && x->argc == 3) {
        struct resp_arg extra[2] = {{(const uint8_t *)"FDELETE", 7}, x->argv[2]};
        node_scatter_parts(x, "HY.SCRIPTPART", extra, 2, "");
    } else if (node_arg_is(sub, "FLUSH") && x->argc <= 3) {
        if (x->argc == 3 && !node_arg_is(&x->argv[2], "ASYNC") &&
            !node_arg_is(&x->argv[2], "SYNC")) {
            resp_write_error(&x->w, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
            return;
        }
        struct resp_arg extra[1] = {{(const uint8_t *)"FFLUSH", 6}};
        node_scatter_parts(x, "HY.SCRIPTPART", extra, 1, "");
    } else if (node_arg_is(sub, "LIST")) {
        function_list(x);
    } else if (node_arg_is(sub, "STATS") && x->argc == 2) {
        function_stats(x);
    } else if (node_arg_is(sub, "KILL") && x->argc == 2) {
        resp_write_error(&x->w, "NOTBUSY No scripts in execution right now.");
    } else if (node_arg_is(sub, "DUMP") && x->argc == 2) {
        function_dump(x);
    } else if (node_arg_is(sub, "RESTORE") && (x->argc == 3 || x->argc == 4)) {
        function_restore(x);
    } else if (node_arg_is(sub, "HELP") && x->argc == 2) {
        static const char *const lines[] = {
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "DELETE <LIBRARY NAME>",
            "LIST [WITHCODE] "
            "[LIBRARYNAME <PATTERN>]",
            "FLUSH [ASYNC|SYNC]",
            "STATS",
            "DUMP",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "KILL",
            "HELP"};
        node_reply_help(x, lines, HY_ARRAY_LEN(lines));
    } else {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try FUNCTION HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}

/* ---- busy scripts -------------------------------------------------------------------------------
 */

void node_set_busy_poll(struct hy_node *n, node_busy_poll_fn fn, void *ctx)
{
    n->busy_poll = fn;
    n->busy_poll_ctx = ctx;
}

int64_t node_script_running_ms(struct hy_node *n, uint64_t now_ms)
{
    struct node_script_busy *b = &n->script_busy;
    if (!b->active) {
        return -1;
    }
    if (b->started_ms == 0) {
        b->started_ms = HY_MAX(now_ms, 1);
    }
    return now_ms >= b->started_ms ? (int64_t)(now_ms - b->started_ms) : 0;
}

int node_script_busy(struct hy_node *n, uint64_t now_ms)
{
    int64_t ran = node_script_running_ms(n, now_ms);
    if (ran < 0 || ran < (int64_t)n->cfg->busy_reply_threshold) {
        return 0;
    }
    if (!n->script_busy.replica) {
        return 1;
    }
    /* A run at apply on a follower: no client waits for it. The clients see the script busy
     * while its leader is busy with it (its notices); once the leader has answered, a
     * request here waits for this replica's run instead of getting -BUSY. */
    const struct node_group *g = node_group_get(n, n->script_busy.group);
    const char *leader = g != NULL ? node_member_name(n, raft_leader(&g->raft)) : NULL;
    return leader != NULL && node_peer_busy_now(n, leader, now_ms);
}

int node_busy_can_serve(const struct hy_node *n, const struct node_client *c)
{
    /* Only a client with nothing in flight: its reply goes out now and keeps its order. The
     * client whose request runs the script is in flight (or being processed). */
    const unsigned closing = NODE_CLIENT_CLOSE_AFTER_REPLY | NODE_CLIENT_CLOSE_ASAP;
    return c != n->processing && !(c->flags & closing) && c->waiting == 0 &&
           c->last_waiter == NULL && !c->forwarding && !c->blocked_on_read &&
           c->block_state == NODE_BLOCK_NONE && node_pubsub_count(c) == 0 &&
           c->scatter_pending == 0 && !c->is_proxy;
}

static void busy_kill(struct hy_node *n, int is_eval, struct resp_writer *w);
static void busy_function_stats(struct hy_node *n, struct resp_writer *w, uint64_t now_ms);

const char *node_busy_text(int is_eval)
{
    return is_eval ? "BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
                     "SHUTDOWN NOSAVE."
                   : "BUSY Redis is busy running a script. You can only call FUNCTION KILL "
                     "or SHUTDOWN NOSAVE.";
}

static const char *busy_text(const struct node_script_busy *b)
{
    return node_busy_text(b->is_eval);
}

int node_busy_request_kind(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                           int *kill_out)
{
    if (d == NULL || argc != 2) {
        return 0;
    }
    *kill_out =
        (d->handler == cmd_script || d->handler == cmd_function) && node_arg_is(&argv[1], "KILL");
    return *kill_out || (d->handler == cmd_function && node_arg_is(&argv[1], "STATS"));
}

int node_busy_forward(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                      uint64_t now_ms, struct hy_buf *reply)
{
    int proto = 2;
    const uint8_t *user;
    size_t ulen;
    size_t head = proxy_forward_head(data, len, &proto, &user, &ulen);
    if (!n->script_busy.active || head == 0 || head >= len) {
        return 0;
    }
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    size_t consumed = 0, argc = 0;
    const struct resp_arg *argv = NULL;
    int kill = 0, answered = 0;
    /* Only a request of its own: a follower forwards these alone, never behind a write. */
    if (resp_request_parse(&p, data + head, len - head, &consumed, &argc, &argv) == HY_OK &&
        consumed == len - head && argc == 2) {
        const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
        if (node_busy_request_kind(d, argc, argv, &kill)) {
            struct resp_writer w = {reply, proto};
            if (kill) {
                hy_log(n->log, HY_LOG_INFO, "%.*s KILL from peer %s while a script is busy",
                       (int)HY_MIN(argv[0].len, 16), (const char *)argv[0].ptr, from);
                busy_kill(n, d->handler == cmd_script, &w);
            } else {
                busy_function_stats(n, &w, now_ms);
            }
            answered = 1;
        }
    }
    resp_request_parser_free(&p);
    return answered;
}

static void busy_error(const struct node_script_busy *b, struct resp_writer *w)
{
    resp_write_error(w, busy_text(b));
}

/* SCRIPT KILL (is_eval) or FUNCTION KILL while a script is busy, as Redis 7.0 answers. A run
 * at apply is in the replicated log and runs on every replica: it cannot be killed. */
static void busy_kill(struct hy_node *n, int is_eval, struct resp_writer *w)
{
    struct node_script_busy *b = &n->script_busy;
    if (!b->killable && b->wrote) {
        resp_write_error(w, "UNKILLABLE Sorry the script already executed write commands "
                            "against the dataset. You can either wait the script termination "
                            "or kill the server in a hard way using the SHUTDOWN NOSAVE "
                            "command.");
    } else if (!b->killable) {
        resp_write_error(w, "UNKILLABLE The busy script writes: it runs at apply on every "
                            "replica, and ends when it returns or passes "
                            "script-max-instructions.");
    } else if (is_eval != b->is_eval) {
        busy_error(b, w);
    } else {
        b->kill = 1;
        resp_write_simple(w, "OK");
    }
}

int node_busy_stop(struct hy_node *n)
{
    struct node_script_busy *b = &n->script_busy;
    if (!b->active) {
        return 1;
    }
    if (!b->killable) {
        return 0;
    }
    b->kill = NODE_BUSY_KILL_SHUTDOWN;
    return 1;
}

int node_busy_shutdown_asked(const struct hy_node *n)
{
    return n->script_busy.active && n->script_busy.shutdown;
}

/* FUNCTION STATS while a script is busy: running_script names it. */
static void busy_function_stats(struct hy_node *n, struct resp_writer *w, uint64_t now_ms)
{
    const struct node_script_busy *b = &n->script_busy;
    struct node_group *g = node_group_of_slot(n, 0);
    const struct store_library *const *libs;
    size_t count = store_libraries(g->store, &libs), funcs = 0;
    for (size_t i = 0; i < count; i++) {
        funcs += libs[i]->nfuncs;
    }
    resp_write_map(w, 2);
    resp_write_bulk_str(w, "running_script");
    if (b->is_eval) {
        resp_write_null(w); /* Redis shows functions only */
    } else {
        resp_write_map(w, 3);
        resp_write_bulk_str(w, "name");
        resp_write_bulk_str(w, b->name);
        resp_write_bulk_str(w, "command");
        size_t words = 1;
        for (const char *p = b->command; *p != '\0'; p++) {
            words += *p == ' ';
        }
        resp_write_array(w, words);
        const char *start = b->command;
        for (const char *p = b->command;; p++) {
            if (*p == ' ' || *p == '\0') {
                resp_write_bulk(w, (const uint8_t *)start, (size_t)(p - start));
                start = p + 1;
            }
            if (*p == '\0') {
                break;
            }
        }
        resp_write_bulk_str(w, "duration_ms");
        resp_write_int(w, (int64_t)(now_ms - HY_MIN(now_ms, b->started_ms)));
    }
    resp_write_bulk_str(w, "engines");
    resp_write_map(w, 1);
    resp_write_bulk_str(w, "LUA");
    resp_write_map(w, 2);
    resp_write_bulk_str(w, "libraries_count");
    resp_write_int(w, (int64_t)count);
    resp_write_bulk_str(w, "functions_count");
    resp_write_int(w, (int64_t)funcs);
}

struct cmd_ctx node_busy_ctx(struct hy_node *n, struct node_group *g, struct node_client *c,
                             const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                             uint64_t now_ms, struct resp_writer w)
{
    return (struct cmd_ctx){.node = n,
                            .group = g,
                            .store = g->store,
                            .client = c,
                            .cmd = d,
                            .argc = argc,
                            .argv = argv,
                            .now_ms = now_ms,
                            .w = w};
}

void node_busy_client(struct hy_node *n, struct node_client *c, uint64_t now_ms)
{
    size_t off = 0;
    struct resp_writer w = {&c->out, c->proto};
    while (off < c->in.len && !(c->flags & NODE_CLIENT_CLOSE_AFTER_REPLY)) {
        size_t consumed = 0, argc = 0;
        const struct resp_arg *argv = NULL;
        int rc = resp_request_parse(&c->parser, c->in.data + off, c->in.len - off, &consumed, &argc,
                                    &argv);
        if (rc == HY_EAGAIN) {
            break;
        }
        if (rc != HY_OK) {
            resp_write_errorf(&w, "ERR Protocol error: %s", c->parser.error);
            c->flags |= NODE_CLIENT_CLOSE_AFTER_REPLY;
            off = c->in.len;
            break;
        }
        off += consumed;
        if (argc == 0) {
            continue;
        }
        c->last_ms = now_ms;
        const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
        int kill = 0;
        int stats = node_busy_request_kind(d, argc, argv, &kill) && !kill;
        /* SHUTDOWN NOSAVE is the one way to stop a script that cannot be killed, as in Redis
         * (plain SHUTDOWN would wait for the script). */
        int shutdown =
            d != NULL && argc == 2 && d->handler == cmd_shutdown && node_arg_is(&argv[1], "NOSAVE");
        if (!kill && !stats && !shutdown) {
            node_multi_busy(c, d, &w, busy_text(&n->script_busy));
            continue;
        }
        if (!c->authenticated) {
            resp_write_error(&w, "NOAUTH Authentication required.");
            continue;
        }
        struct cmd_ctx x = node_busy_ctx(n, node_group_of_slot(n, 0), c, d, argc, argv, now_ms, w);
        if (!acl_check(&x, d)) {
            continue; /* NOPERM written */
        }
        if (shutdown) {
            hy_log(n->log, HY_LOG_WARN,
                   "SHUTDOWN NOSAVE from client %llu while a script is busy: stopping now",
                   (unsigned long long)c->id);
            n->script_busy.shutdown = 1;
        } else if (stats) {
            busy_function_stats(n, &w, now_ms);
        } else {
            busy_kill(n, d->handler == cmd_script, &w);
        }
    }
    hy_buf_consume(&c->in, off);
    c->read_ok_bytes = c->read_ok_bytes > off ? c->read_ok_bytes - off : 0;
    c->read_reg_bytes = c->read_reg_bytes > off ? c->read_reg_bytes - off : 0;
}
