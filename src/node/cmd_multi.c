/*
 * cmd_multi.c - MULTI, EXEC, DISCARD, WATCH, UNWATCH and HY.EXEC: Redis transactions as one
 * log entry (store.h, "transactions").
 *
 * The connection's node keeps the transaction: the queue (checked as Redis checks at queuing
 * time: unknown command, arity, ACL, keys outside the transaction's partition, commands not
 * allowed; any error makes EXEC answer EXECABORT) and the watched keys with the versions its
 * replica holds. EXEC turns both into one request, HY.EXEC, that runs as any write: at the
 * partition's leader, or forwarded to it by a follower (under the follower's session, so a
 * re-sent EXEC is applied once). The leader builds one STORE_OP_EXEC entry: each write is the
 * entry its handler would have proposed (randomness and times drawn by the leader, as for a
 * lone command), each read is carried as its command and run at apply through
 * node_exec_read_cb, so it sees the transaction's own writes before it, and every other reply
 * (PING, a syntax error) is carried as bytes. The whole transaction applies atomically, in one
 * step of the state machine, identically on every replica; its watches are checked there.
 *
 * A version read on a follower may be older than the leader's: the EXEC then aborts when the
 * key's bucket moved in between, never runs on a changed key (store.h).
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define GROUP_NONE UINT32_MAX

struct node_multi {
    int active; /* between MULTI and EXEC/DISCARD */
    int dirty;  /* a queuing error: EXEC answers EXECABORT */
    uint32_t queue_group, watch_group;
    struct hy_buf queue; /* queued commands, store_exec_cmd_encode'd one after another */
    size_t queued;
    size_t writes;       /* queued commands that are not plain reads */
    struct hy_buf watch; /* watched: klen (4 LE), key, version (8 LE), alive (1) */
    size_t watched;
    /* The HY.EXEC request EXEC runs (its argv borrows from text and the two buffers). */
    struct hy_buf text;
    struct resp_arg *exec_argv;
    size_t exec_argc;
};

/* What the leader's handlers propose while a transaction is being built (node_propose). */
struct node_capture {
    struct node_group *group;
    size_t count;
    int bad;
    struct hy_buf entry;
};

static struct node_multi *multi_of(struct node_client *c)
{
    if (c->multi == NULL) {
        c->multi = hy_xcalloc(1, sizeof(*c->multi));
        c->multi->queue_group = GROUP_NONE;
        c->multi->watch_group = GROUP_NONE;
    }
    return c->multi;
}

static void multi_clear_queue(struct node_multi *m)
{
    m->active = 0;
    m->dirty = 0;
    m->queued = 0;
    m->writes = 0;
    m->queue.len = 0;
    m->queue_group = GROUP_NONE;
}

static void multi_clear_watch(struct node_multi *m)
{
    m->watched = 0;
    m->watch.len = 0;
    m->watch_group = GROUP_NONE;
}

void node_multi_free(struct node_client *c)
{
    struct node_multi *m = c->multi;
    if (m == NULL) {
        return;
    }
    hy_buf_free(&m->queue);
    hy_buf_free(&m->watch);
    hy_buf_free(&m->text);
    hy_free(m->exec_argv);
    hy_free(m);
    c->multi = NULL;
}

void node_multi_reset(struct node_client *c)
{
    if (c->multi != NULL) {
        multi_clear_queue(c->multi);
        multi_clear_watch(c->multi);
    }
}

int node_multi_active(const struct node_client *c)
{
    return c->multi != NULL && c->multi->active;
}

/* Commands a transaction may not hold: they act on the connection or the cluster, or are
 * internal, or would run outside the one entry. */
static int multi_refused(const struct hy_node *n, const struct cmd_def *d)
{
    static const char *const names[] = {"multi",      "watch",        "hy.exec",     "hy.exec_ro",
                                        "hy.session", "hy.flushpart", "hy.wanapply", "halyard",
                                        "acl",        "hello",        "auth",        "readonly",
                                        "readwrite",  "save",         "shutdown"};
    for (size_t i = 0; i < HY_ARRAY_LEN(names); i++) {
        if (strcmp(d->name, names[i]) == 0) {
            return 1;
        }
    }
    if (strncmp(d->name, "acl|", 4) == 0) {
        return 1;
    }
    /* With partitions FLUSHALL runs in every partition (scatter.c): not one entry. */
    return d->handler == cmd_flushall && n->group_count > 1;
}

/* Commands that do not queue while MULTI is active. */
static int multi_passthrough(const struct cmd_def *d)
{
    return d != NULL &&
           (d->handler == cmd_exec || d->handler == cmd_discard || d->handler == cmd_multi ||
            d->handler == cmd_watch || d->handler == cmd_quit || d->handler == cmd_reset);
}

/* The transaction's partition so far; a command or WATCH in another is -CROSSSLOT. */
static int multi_same_group(struct node_multi *m, uint32_t group, int is_watch)
{
    uint32_t other = is_watch ? m->queue_group : m->watch_group;
    uint32_t *own = is_watch ? &m->watch_group : &m->queue_group;
    if ((other != GROUP_NONE && other != group) || (*own != GROUP_NONE && *own != group)) {
        return 0;
    }
    *own = group;
    return 1;
}

static int has_keys(const struct cmd_def *d, size_t argc, const struct resp_arg *argv)
{
    return node_first_key(d, argc, argv) > 0;
}

/* Queues one command of an active transaction (or refuses it, making the EXEC abort).
 * Returns 1 when the command was handled here. */
int node_multi_queue(struct cmd_ctx *x, const struct cmd_def *d)
{
    struct node_client *c = x->client;
    if (!node_multi_active(c) || multi_passthrough(d)) {
        return 0;
    }
    struct node_multi *m = c->multi;
    struct hy_node *n = x->node;
    x->cmd = d;
    if (d == NULL) {
        node_reply_unknown_command(&x->w, x->argc, x->argv);
        m->dirty = 1;
        return 1;
    }
    if (!(d->arity > 0 ? x->argc == (size_t)d->arity : x->argc >= (size_t)-d->arity)) {
        node_reply_arity(&x->w, d->name);
        m->dirty = 1;
        return 1;
    }
    if (!c->authenticated && !(d->flags & CMD_NOAUTH)) {
        resp_write_error(&x->w, "NOAUTH Authentication required.");
        m->dirty = 1;
        return 1;
    }
    if (multi_refused(n, d)) {
        resp_write_error(&x->w, "ERR Command not allowed inside a transaction");
        m->dirty = 1;
        return 1;
    }
    if (!acl_check(x, d)) {
        m->dirty = 1;
        return 1;
    }
    if (has_keys(d, x->argc, x->argv) && (!node_keys_in_group(n, x->group, d, x->argc, x->argv) ||
                                          !multi_same_group(m, x->group->id, 0))) {
        resp_write_error(&x->w, "CROSSSLOT Keys in request don't hash to the same slot");
        m->dirty = 1;
        return 1;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < x->argc; i++) {
        bytes += x->argv[i].len + 10;
    }
    if ((int64_t)(m->queue.len + bytes) > n->cfg->client_query_buffer_limit) {
        /* The queue is bounded like the input it came from. */
        resp_write_error(&x->w, "ERR the transaction's queue is over client-query-buffer-limit");
        m->dirty = 1;
        return 1;
    }
    struct store_arg *args = hy_xmalloc(x->argc * sizeof(*args));
    for (size_t i = 0; i < x->argc; i++) {
        args[i] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
    }
    store_exec_cmd_encode(x->argc, args, &m->queue);
    hy_free(args);
    m->queued++;
    m->writes += !((d->flags & CMD_READONLY) && !(d->flags & CMD_WRITE));
    resp_write_simple(&x->w, "QUEUED");
    return 1;
}

void cmd_multi(struct cmd_ctx *x)
{
    struct node_multi *m = multi_of(x->client);
    if (m->active) {
        resp_write_error(&x->w, "ERR MULTI calls can not be nested");
        return;
    }
    m->active = 1;
    m->dirty = 0;
    resp_write_ok(&x->w);
}

void cmd_discard(struct cmd_ctx *x)
{
    if (!node_multi_active(x->client)) {
        resp_write_error(&x->w, "ERR DISCARD without MULTI");
        return;
    }
    node_multi_reset(x->client);
    resp_write_ok(&x->w);
}

void cmd_exec(struct cmd_ctx *x)
{
    /* An active transaction's EXEC runs as HY.EXEC (node_multi_exec_request). */
    resp_write_error(&x->w, "ERR EXEC without MULTI");
}

void node_multi_busy(struct node_client *c, const struct cmd_def *d, struct resp_writer *w,
                     const char *busy)
{
    int active = node_multi_active(c);
    if (d != NULL && d->handler == cmd_multi) {
        if (active) {
            resp_write_error(w, "ERR MULTI calls can not be nested");
        } else {
            struct node_multi *m = multi_of(c);
            m->active = 1;
            m->dirty = 0;
            resp_write_ok(w);
        }
    } else if (d != NULL && d->handler == cmd_discard && active) {
        node_multi_reset(c);
        resp_write_ok(w);
    } else if (d != NULL && d->handler == cmd_exec && active) {
        node_multi_reset(c);
        resp_write_errorf(w, "EXECABORT Transaction discarded because of: %s", busy);
    } else {
        resp_write_error(w, busy);
        if (active) {
            c->multi->dirty = 1;
        }
    }
}

/* One watched key with the version and liveness read for it. */
static void watch_add(struct node_multi *m, const uint8_t *key, size_t klen, uint64_t version,
                      int alive)
{
    uint8_t meta[9];
    hy_buf_append_u32le(&m->watch, (uint32_t)klen);
    hy_buf_append(&m->watch, key, klen);
    hy_store_u64le(meta, version);
    meta[8] = (uint8_t)(alive != 0);
    hy_buf_append(&m->watch, meta, 9);
    m->watched++;
}

/* WATCH key...: on the partition's leader, the versions its replica holds (every write
 * acknowledged so far has applied there); on a follower, whose replica may not have applied
 * the client's own acknowledged writes yet, the same read is made on the leader (one
 * HY.WATCHPART, ReadIndex there): a version read from a lagging replica made EXEC abort where
 * Redis runs it. */
void cmd_watch(struct cmd_ctx *x)
{
    struct node_multi *m = multi_of(x->client);
    if (m->active) {
        resp_write_error(&x->w, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    if (!multi_same_group(m, x->group->id, 1)) {
        resp_write_error(&x->w, "CROSSSLOT Keys in request don't hash to the same slot");
        return;
    }
    if (!replica_is_leader(x->group) && node_scatter_watch(x)) {
        return; /* the versions come from the leader (node_multi_watch_fold) */
    }
    for (size_t i = 1; i < x->argc; i++) {
        const struct resp_arg *k = &x->argv[i];
        watch_add(m, k->ptr, k->len, store_watch_version(x->store, k->ptr, k->len),
                  store_peek(x->store, k->ptr, k->len, x->now_ms) != NULL);
    }
    resp_write_ok(&x->w);
}

/* HY.WATCHPART slot key...: [key, version, alive] for each key, read where reads run (the
 * partition's leader after ReadIndex), for a WATCH on a follower. */
void cmd_hy_watchpart(struct cmd_ctx *x)
{
    resp_write_array(&x->w, 3 * (x->argc - 2));
    for (size_t i = 2; i < x->argc; i++) {
        const struct resp_arg *k = &x->argv[i];
        resp_write_bulk(&x->w, k->ptr, k->len);
        resp_write_int(&x->w, (int64_t)store_watch_version(x->store, k->ptr, k->len));
        resp_write_int(&x->w, store_peek(x->store, k->ptr, k->len, x->now_ms) != NULL);
    }
}

/* Reads a RESP integer line at p[*off..len); 0 when it is not one. */
static int fold_int(const uint8_t *p, size_t len, size_t *off, int64_t *v)
{
    const uint8_t *eol = *off < len ? memchr(p + *off, '\r', len - *off) : NULL;
    if (eol == NULL || p[*off] != ':' || (size_t)(eol - p) + 2 > len ||
        !hy_parse_i64(p + *off + 1, (size_t)(eol - p) - *off - 1, v)) {
        return 0;
    }
    *off = (size_t)(eol - p) + 2;
    return 1;
}

int node_multi_watch_fold(struct node_client *c, const uint8_t *p, size_t len)
{
    struct node_multi *m = multi_of(c);
    size_t off = 0;
    int64_t count;
    const uint8_t *eol = memchr(p, '\r', len);
    if (len < 4 || p[0] != '*' || eol == NULL ||
        !hy_parse_i64(p + 1, (size_t)(eol - p) - 1, &count) || count < 0 || count % 3 != 0) {
        return 0;
    }
    off = (size_t)(eol - p) + 2;
    for (int64_t i = 0; i < count / 3; i++) {
        int64_t klen, version, alive;
        const uint8_t *keol = off < len ? memchr(p + off, '\r', len - off) : NULL;
        if (keol == NULL || p[off] != '$' ||
            !hy_parse_i64(p + off + 1, (size_t)(keol - p) - off - 1, &klen) || klen < 0 ||
            (size_t)(keol - p) + 2 + (size_t)klen + 2 > len) {
            return 0;
        }
        const uint8_t *key = keol + 2;
        off = (size_t)(keol - p) + 2 + (size_t)klen + 2;
        if (!fold_int(p, len, &off, &version) || !fold_int(p, len, &off, &alive)) {
            return 0;
        }
        watch_add(m, key, (size_t)klen, (uint64_t)version, alive != 0);
    }
    return off == len;
}

void cmd_unwatch(struct cmd_ctx *x)
{
    if (x->client->multi != NULL) {
        multi_clear_watch(x->client->multi);
    }
    resp_write_ok(&x->w);
}

/* ---- EXEC: the HY.EXEC request ----------------------------------------------------------------
 *
 * HY.EXEC nwatch [key version alive]... [argc arg...]...  (numbers in decimal) */

struct exec_view {
    size_t nwatch, cmds_at;
};

static int parse_count(const struct resp_arg *a, size_t most, size_t *out)
{
    int64_t v;
    if (!hy_parse_i64(a->ptr, a->len, &v) || v < 0 || (uint64_t)v > most) {
        return 0;
    }
    *out = (size_t)v;
    return 1;
}

static int exec_parse(size_t argc, const struct resp_arg *argv, struct exec_view *v)
{
    if (argc < 2 || !parse_count(&argv[1], (argc - 2) / 3, &v->nwatch)) {
        return 0;
    }
    v->cmds_at = 2 + 3 * v->nwatch;
    for (size_t i = v->cmds_at; i < argc;) {
        size_t n;
        if (!parse_count(&argv[i], argc - i - 1, &n) || n == 0) {
            return 0;
        }
        i += 1 + n;
    }
    return 1;
}

/* The next command of a parsed HY.EXEC at *i; 0 at the end. */
static int exec_next(size_t argc, const struct resp_arg *argv, size_t *i, size_t *cargc,
                     const struct resp_arg **cargv)
{
    if (*i >= argc) {
        return 0;
    }
    int ok = parse_count(&argv[*i], argc - *i - 1, cargc);
    HY_ASSERT(ok); /* exec_parse checked it */
    *cargv = &argv[*i + 1];
    *i += 1 + *cargc;
    return 1;
}

int node_multi_exec_each_key(const struct hy_node *n, size_t argc, const struct resp_arg *argv,
                             int (*fn)(const void *ctx, const struct resp_arg *key),
                             const void *ctx)
{
    struct exec_view v;
    if (!exec_parse(argc, argv, &v)) {
        return 1; /* the handler answers the syntax error */
    }
    int all = 1;
    size_t i = v.cmds_at, cargc;
    const struct resp_arg *cargv;
    while (exec_next(argc, argv, &i, &cargc, &cargv)) {
        const struct cmd_def *d = node_command_lookup(n, cargv[0].ptr, cargv[0].len);
        d = node_command_sub(n, d, cargc, cargv);
        if (d == NULL) {
            continue;
        }
        int r = node_keys_each(d, cargc, cargv, fn, ctx);
        if (r == 0) {
            return 0;
        }
        if ((r < 0 || !has_keys(d, cargc, cargv)) && (d->flags & CMD_WRITE)) {
            all = -1;
        }
    }
    return all;
}

/* What places an HY.EXEC: its first watched key (1, *key set), else the first command that
 * names a key (2, *d and its arguments set); 0 when it names none or does not parse. */
static int exec_placing(const struct hy_node *n, size_t argc, const struct resp_arg *argv,
                        const struct resp_arg **key, const struct cmd_def **d, size_t *cargc,
                        const struct resp_arg **cargv)
{
    struct exec_view v;
    if (!exec_parse(argc, argv, &v)) {
        return 0;
    }
    if (v.nwatch > 0) {
        *key = &argv[2];
        return 1;
    }
    size_t i = v.cmds_at;
    while (exec_next(argc, argv, &i, cargc, cargv)) {
        *d = node_command_sub(n, node_command_lookup(n, (*cargv)[0].ptr, (*cargv)[0].len), *cargc,
                              *cargv);
        if (*d != NULL && has_keys(*d, *cargc, *cargv)) {
            *key = &(*cargv)[node_first_key(*d, *cargc, *cargv)];
            return 2;
        }
    }
    return 0;
}

struct node_group *node_multi_exec_group(const struct hy_node *n, size_t argc,
                                         const struct resp_arg *argv)
{
    const struct resp_arg *key = NULL, *cargv = NULL;
    const struct cmd_def *d = NULL;
    size_t cargc = 0;
    switch (exec_placing(n, argc, argv, &key, &d, &cargc, &cargv)) {
    case 1: return node_group_of_slot(n, hy_key_slot(key->ptr, key->len));
    case 2: return node_command_group(n, d, cargc, cargv);
    default: return n->meta;
    }
}

int node_multi_exec_slot(const struct hy_node *n, size_t argc, const struct resp_arg *argv)
{
    const struct resp_arg *key = NULL, *cargv = NULL;
    const struct cmd_def *d = NULL;
    size_t cargc = 0;
    return exec_placing(n, argc, argv, &key, &d, &cargc, &cargv) != 0
               ? hy_key_slot(key->ptr, key->len)
               : -1;
}

int node_multi_exec_keys_in_group(const struct hy_node *n, const struct node_group *g, size_t argc,
                                  const struct resp_arg *argv)
{
    struct exec_view v;
    if (!exec_parse(argc, argv, &v)) {
        return 1; /* the handler answers the syntax error */
    }
    for (size_t i = 0; i < v.nwatch; i++) {
        const struct resp_arg *k = &argv[2 + 3 * i];
        if (node_group_of_slot(n, hy_key_slot(k->ptr, k->len)) != g) {
            return 0;
        }
    }
    size_t i = v.cmds_at, cargc;
    const struct resp_arg *cargv;
    while (exec_next(argc, argv, &i, &cargc, &cargv)) {
        const struct cmd_def *d = node_command_lookup(n, cargv[0].ptr, cargv[0].len);
        d = node_command_sub(n, d, cargc, cargv);
        if (d != NULL && has_keys(d, cargc, cargv) && !node_keys_in_group(n, g, d, cargc, cargv)) {
            return 0;
        }
    }
    return 1;
}

static size_t text_num(struct hy_buf *t, uint64_t v)
{
    size_t at = t->len;
    hy_buf_printf(t, "%llu", (unsigned long long)v);
    return at;
}

/* Builds the HY.EXEC request of c's transaction into m->exec_argv. */
static void multi_build_exec(const struct hy_node *n, struct node_multi *m)
{
    /* Offsets first (text grows), pointers once it is complete. */
    struct slice {
        int in_text; /* 1: text, 0: watch or queue buffer given by ptr */
        size_t off, len;
        const uint8_t *ptr;
    };
    size_t cap = 2 + 3 * m->watched, count = 0;
    struct store_arg *cargv = NULL;
    size_t qoff = 0;
    /* Count the queue's arguments. */
    for (size_t q = 0; q < m->queued; q++) {
        size_t cargc;
        int ok = store_exec_cmd_decode_prefix(m->queue.data + qoff, m->queue.len - qoff, &cargv,
                                              &cargc, &qoff);
        HY_ASSERT(ok);
        cap += 1 + cargc;
        hy_free(cargv);
    }
    struct slice *s = hy_xmalloc(cap * sizeof(*s));
    /* Nothing but reads: HY.EXEC_RO, run where reads run (no log entry; Redis runs such a
     * transaction on a read-only replica and with writes refused, so do we). */
    const char *name = m->writes == 0 ? "HY.EXEC_RO" : "HY.EXEC";
    m->text.len = 0;
    hy_buf_append(&m->text, name, strlen(name));
    s[count++] = (struct slice){1, 0, strlen(name), NULL};
    size_t at = text_num(&m->text, m->watched);
    s[count++] = (struct slice){1, at, m->text.len - at, NULL};
    size_t woff = 0;
    for (size_t i = 0; i < m->watched; i++) {
        size_t klen = hy_load_u32le(m->watch.data + woff), used = 4;
        const uint8_t *k = m->watch.data + woff + used;
        const uint8_t *meta = k + klen;
        s[count++] = (struct slice){0, 0, (size_t)klen, k};
        at = text_num(&m->text, hy_load_u64le(meta));
        s[count++] = (struct slice){1, at, m->text.len - at, NULL};
        at = text_num(&m->text, meta[8]);
        s[count++] = (struct slice){1, at, m->text.len - at, NULL};
        woff += used + (size_t)klen + 9;
    }
    qoff = 0;
    for (size_t q = 0; q < m->queued; q++) {
        size_t cargc;
        int ok = store_exec_cmd_decode_prefix(m->queue.data + qoff, m->queue.len - qoff, &cargv,
                                              &cargc, &qoff);
        HY_ASSERT(ok);
        at = text_num(&m->text, cargc);
        s[count++] = (struct slice){1, at, m->text.len - at, NULL};
        for (size_t j = 0; j < cargc; j++) {
            s[count++] = (struct slice){0, 0, cargv[j].len, cargv[j].ptr};
        }
        hy_free(cargv);
    }
    HY_ASSERT(count == cap);
    hy_free(m->exec_argv);
    m->exec_argv = hy_xmalloc(cap * sizeof(*m->exec_argv));
    for (size_t i = 0; i < cap; i++) {
        m->exec_argv[i].ptr = s[i].in_text ? m->text.data + s[i].off : s[i].ptr;
        m->exec_argv[i].len = s[i].len;
    }
    m->exec_argc = cap;
    hy_free(s);
    (void)n;
}

int node_multi_exec_request(struct hy_node *n, struct node_client *c, struct resp_writer *w,
                            size_t *argc_out, const struct resp_arg **argv_out)
{
    struct node_multi *m = c->multi;
    if (m->dirty) {
        resp_write_error(w, "EXECABORT Transaction discarded because of previous errors.");
        node_multi_reset(c);
        return 0;
    }
    if (m->queued == 0 && m->watched == 0) {
        resp_write_array(w, 0);
        node_multi_reset(c);
        return 0;
    }
    multi_build_exec(n, m);
    *argc_out = m->exec_argc;
    *argv_out = m->exec_argv;
    return 1;
}

void node_multi_exec_sent(struct node_client *c)
{
    node_multi_reset(c); /* the request is encoded (proposed or forwarded): the state goes */
}

/* ---- the leader: one entry ---------------------------------------------------------------- */

void node_capture_entry(struct cmd_ctx *x, const uint8_t *entry, size_t len)
{
    struct node_capture *cap = x->node->capture;
    if (x->group != cap->group) {
        cap->bad = 1;
        return;
    }
    cap->count++;
    cap->entry.len = 0;
    hy_buf_append_u8(&cap->entry, 'W');
    hy_buf_append(&cap->entry, entry, len);
}

int node_capture_run(struct cmd_ctx *x, const struct cmd_def *d, struct hy_buf *entry_out)
{
    struct hy_node *n = x->node;
    struct node_capture cap = {.group = x->group};
    hy_buf_init(&cap.entry);
    struct node_capture *outer = n->capture;
    n->capture = &cap;
    d->handler(x);
    n->capture = outer;
    int rc = 0;
    if (cap.bad || cap.count > 1) {
        rc = -1;
    } else if (cap.count == 1) {
        HY_ASSERT(cap.entry.len > 1 && cap.entry.data[0] == 'W');
        hy_buf_append(entry_out, cap.entry.data + 1, cap.entry.len - 1);
        rc = 1;
    }
    hy_buf_free(&cap.entry);
    return rc;
}

/* One command of the transaction as an EXEC item (kind byte + payload) into item. */
static void exec_item(struct cmd_ctx *x, size_t argc, const struct resp_arg *argv,
                      struct hy_buf *item)
{
    struct hy_node *n = x->node;
    const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
    d = node_command_sub(n, d, argc, argv);
    struct hy_buf reply;
    hy_buf_init(&reply);
    struct cmd_ctx inner = *x;
    inner.argc = argc;
    inner.argv = argv;
    inner.cmd = d;
    inner.w.out = &reply;
    hy_buf_append_u8(item, 'L');
    if (d == NULL) {
        node_reply_unknown_command(&inner.w, argc, argv);
    } else if (!(d->arity > 0 ? argc == (size_t)d->arity : argc >= (size_t)-d->arity)) {
        node_reply_arity(&inner.w, d->name);
    } else if (multi_refused(n, d)) {
        resp_write_error(&inner.w, "ERR Command not allowed inside a transaction");
    } else if (!acl_check(&inner, d)) {
        /* NOPERM written (a raw HY.EXEC; EXEC checked it when queuing) */
    } else if ((d->flags & CMD_READONLY) && !(d->flags & CMD_WRITE)) {
        item->len = 0;
        hy_buf_append_u8(item, 'R');
        struct store_arg *args = hy_xmalloc(argc * sizeof(*args));
        for (size_t i = 0; i < argc; i++) {
            args[i] = (struct store_arg){argv[i].ptr, argv[i].len};
        }
        store_exec_cmd_encode(argc, args, item);
        hy_free(args);
    } else {
        struct node_capture cap = {.group = x->group};
        hy_buf_init(&cap.entry);
        n->capture = &cap;
        d->handler(&inner);
        n->capture = NULL;
        if (cap.bad || cap.count > 1 || (cap.count == 1 && reply.len > 0)) {
            reply.len = 0;
            resp_write_error(&inner.w, "ERR command not supported inside a transaction");
        } else if (cap.count == 1) {
            item->len = 0;
            hy_buf_append(item, cap.entry.data, cap.entry.len);
        }
        hy_buf_free(&cap.entry);
    }
    if (item->len == 1 && item->data[0] == 'L') {
        hy_buf_append(item, reply.data, reply.len);
    }
    hy_buf_free(&reply);
}

/* Runs HY.EXEC (readonly 0: proposed as one entry) or HY.EXEC_RO (readonly 1: every item a
 * read or a reply, run here against this replica, which dispatch brought to the read point). */
static void exec_run(struct cmd_ctx *x, int readonly)
{
    struct hy_node *n = x->node;
    struct exec_view v;
    if (!exec_parse(x->argc, x->argv, &v)) {
        resp_write_error(&x->w, "ERR usage: HY.EXEC nwatch [key version alive]... "
                                "[argc arg...]...");
        return;
    }
    /* Under HY.REQ (a follower's session) only the whole entry is wrapped. */
    int wrap = n->wrap_active;
    n->wrap_active = 0;
    size_t nitems = 0, i = v.cmds_at, cargc;
    const struct resp_arg *cargv;
    while (exec_next(x->argc, x->argv, &i, &cargc, &cargv)) {
        nitems++;
    }
    size_t nargs = 2 + 2 * v.nwatch + nitems;
    struct store_arg *args = hy_xmalloc(nargs * sizeof(*args));
    struct hy_buf *bufs = hy_xcalloc(nitems + 1, sizeof(*bufs));
    uint8_t seed[8], nw[4];
    hy_store_u64le(seed, hy_prng_next(&n->prng));
    hy_store_u32le(nw, (uint32_t)v.nwatch);
    args[0] = (struct store_arg){seed, 8};
    args[1] = (struct store_arg){nw, 4};
    uint8_t *metas = hy_xmalloc(9 * (v.nwatch + 1));
    int bad = 0;
    for (size_t w = 0; w < v.nwatch; w++) {
        const struct resp_arg *k = &x->argv[2 + 3 * w];
        int64_t ver, alive;
        if (!hy_parse_i64(x->argv[3 + 3 * w].ptr, x->argv[3 + 3 * w].len, &ver) ||
            !hy_parse_i64(x->argv[4 + 3 * w].ptr, x->argv[4 + 3 * w].len, &alive)) {
            bad = 1;
            break;
        }
        hy_store_u64le(metas + 9 * w, (uint64_t)ver);
        metas[9 * w + 8] = alive != 0;
        args[2 + 2 * w] = (struct store_arg){k->ptr, k->len};
        args[3 + 2 * w] = (struct store_arg){metas + 9 * w, 9};
    }
    i = v.cmds_at;
    int writes = 0;
    for (size_t j = 0; !bad && exec_next(x->argc, x->argv, &i, &cargc, &cargv); j++) {
        /* INFO commandstats counts each command of the transaction, as Redis 7.0's EXEC
         * calls each (here where the transaction is built: the leader). */
        const struct cmd_def *d = node_command_lookup(n, cargv[0].ptr, cargv[0].len);
        node_cmdstat_call(
            n, node_cmdstat_slot(n, node_command_sub(n, d, cargc, cargv), cargc, cargv), 0);
        exec_item(x, cargc, cargv, &bufs[j]);
        writes += bufs[j].len > 0 && bufs[j].data[0] == 'W';
        args[2 + 2 * v.nwatch + j] = (struct store_arg){bufs[j].data, bufs[j].len};
    }
    n->wrap_active = wrap;
    struct store_entry e = {.op = STORE_OP_EXEC,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)nargs,
                            .argv = args};
    if (bad) {
        resp_write_error(&x->w, "ERR HY.EXEC version and alive must be integers");
    } else if (!readonly) {
        node_propose(x, &e);
    } else if (writes > 0) {
        resp_write_error(&x->w, "ERR HY.EXEC_RO holds a write");
    } else {
        store_exec_read_only(x->store, &e, &x->w);
    }
    for (size_t j = 0; j < nitems; j++) {
        hy_buf_free(&bufs[j]);
    }
    hy_free(bufs);
    hy_free(metas);
    hy_free(args);
}

void cmd_hy_exec(struct cmd_ctx *x)
{
    exec_run(x, 0);
}

void cmd_hy_exec_ro(struct cmd_ctx *x)
{
    exec_run(x, 1);
}

/* ---- apply: the reads of a transaction ------------------------------------------------------ */

void node_exec_read_cb(void *ctx, struct store *s, const uint8_t *cmd, size_t len, uint64_t time_ms,
                       uint64_t seed, struct resp_writer *w)
{
    struct node_group *g = ctx;
    struct hy_node *n = g->node;
    struct store_arg *args;
    size_t argc;
    if (!store_exec_cmd_decode(cmd, len, &args, &argc)) {
        resp_write_error(w, "ERR malformed transaction read");
        return;
    }
    struct resp_arg *argv = hy_xmalloc(argc * sizeof(*argv));
    for (size_t i = 0; i < argc; i++) {
        argv[i] = (struct resp_arg){args[i].ptr, args[i].len};
    }
    hy_free(args);
    const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
    d = node_command_sub(n, d, argc, argv);
    if (d == NULL || !(d->flags & CMD_READONLY) || (d->flags & CMD_WRITE) ||
        !(d->arity > 0 ? argc == (size_t)d->arity : argc >= (size_t)-d->arity)) {
        resp_write_error(w, "ERR malformed transaction read");
        hy_free(argv);
        return;
    }
    /* A bare connection: reads use only the protocol. Random replies (SRANDMEMBER...) draw
     * from a PRNG seeded by the proposer, so a reply kept by a session is the same on every
     * replica. */
    struct node_client *c = hy_xcalloc(1, sizeof(*c));
    c->proto = w->proto;
    c->authenticated = 1;
    c->no_block = 1;
    struct cmd_ctx x = {.node = n,
                        .group = g,
                        .store = s,
                        .client = c,
                        .cmd = d,
                        .argc = argc,
                        .argv = argv,
                        .now_ms = time_ms,
                        .w = *w};
    struct hy_prng saved = n->prng;
    hy_prng_seed(&n->prng, seed);
    d->handler(&x);
    n->prng = saved;
    hy_buf_free(&c->xread_ids); /* what an XREAD kept on the client */
    hy_buf_free(&c->xread_text);
    hy_free(c->xread_argv);
    hy_free(c);
    hy_free(argv);
}
