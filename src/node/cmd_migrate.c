/*
 * cmd_migrate.c - MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw]
 * [AUTH2 user pw] [KEYS key...]: moves keys to another server (a redis-server, or another
 * halyard) as Redis 7.0 does, without blocking the loop.
 *
 * It runs on the leader of the keys' partition (a write: a follower forwards it). The handler
 * DUMPs every key that exists (with its remaining TTL) from the leader's store, and hands the
 * shell one job: the requests to send the target in one write ([AUTH], SELECT db, one RESTORE
 * per key, with REPLACE when asked) and how many replies to read. Its client runs nothing
 * else meanwhile (scatter_pending, as a FLUSHALL's parts). The shell connects, sends and reads
 * away from the loop (io/migrate.c) and hands the replies back (node_migrate_done). The keys
 * the target acknowledged are then deleted, unless COPY, by an ordinary DEL on an internal
 * client (scatter.c's): a replicated write, proposed after the target acknowledged, and the
 * client is answered once it applied. A key whose RESTORE failed stays; the reply is Redis's
 * ("Target instance replied with error: ...", "IOERR error or timeout ... target instance").
 *
 * Unlike Redis, a write to a key between its DUMP and the DEL is not refused (Redis runs the
 * whole command in one blocking step): the DEL then drops it too. No connection is cached
 * (INFO's migrate_cached_sockets stays 0): each MIGRATE dials the target afresh, so it always
 * sends SELECT. docs/protocol.md "MIGRATE".
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

/* A MIGRATE the shell carries out: whose it is, what it moves, and its job until taken. */
struct node_migration {
    uint64_t id;
    uint64_t client_id;
    int copy;
    int taken;          /* the shell has the job */
    size_t head;        /* replies before the first RESTORE's: AUTH, SELECT */
    size_t key_count;   /* the keys sent, one RESTORE each */
    struct hy_buf keys; /* the keys sent, each as its length (a size_t) + bytes */
    struct node_migrate_job job;
};

/* The options after MIGRATE's five fixed arguments. */
struct migrate_opts {
    int copy, replace;
    const struct resp_arg *user, *pass; /* NULL: none */
    size_t first_key, key_count;        /* KEYS key...: where they are, else argv[3] */
};

void node_migrate_keys(size_t argc, const struct resp_arg *argv, size_t *first, size_t *count)
{
    *first = 3;
    *count = argc > 3 ? 1 : 0;
    for (size_t i = 6; i < argc; i++) {
        if (node_arg_is(&argv[i], "AUTH")) {
            i++;
        } else if (node_arg_is(&argv[i], "AUTH2")) {
            i += 2;
        } else if (node_arg_is(&argv[i], "KEYS") && argv[3].len == 0) {
            *first = i + 1;
            *count = argc - i - 1;
            return;
        }
    }
}

/* Parses the options in Redis 7.0's order; 0 when an error was replied. */
static int migrate_parse(struct cmd_ctx *x, struct migrate_opts *o)
{
    *o = (struct migrate_opts){.first_key = 3, .key_count = 1};
    for (size_t i = 6; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        size_t more = x->argc - i - 1;
        if (node_arg_is(a, "COPY")) {
            o->copy = 1;
        } else if (node_arg_is(a, "REPLACE")) {
            o->replace = 1;
        } else if (node_arg_is(a, "AUTH") && more >= 1) {
            o->user = NULL;
            o->pass = &x->argv[++i];
        } else if (node_arg_is(a, "AUTH2") && more >= 2) {
            o->user = &x->argv[++i];
            o->pass = &x->argv[++i];
        } else if (node_arg_is(a, "KEYS")) {
            if (x->argv[3].len != 0) {
                resp_write_error(&x->w, "ERR When using MIGRATE KEYS option, the key argument "
                                        "must be set to the empty string");
                return 0;
            }
            o->first_key = i + 1;
            o->key_count = more;
            return 1;
        } else {
            node_reply_syntax_error(x);
            return 0;
        }
    }
    return 1;
}

static void req_head(struct hy_buf *b, size_t argc)
{
    hy_buf_printf(b, "*%zu\r\n", argc);
}

static void req_arg(struct hy_buf *b, const void *p, size_t len)
{
    hy_buf_printf(b, "$%zu\r\n", len);
    hy_buf_append(b, p, len);
    hy_buf_append_str(b, "\r\n");
}

static void req_str(struct hy_buf *b, const char *s)
{
    req_arg(b, s, strlen(s));
}

/* AUTH [user] pw and SELECT db at the head of m's requests. */
static void migrate_preamble(struct node_migration *m, const struct migrate_opts *o, int64_t db)
{
    struct hy_buf *b = &m->job.req;
    if (o->pass != NULL) {
        req_head(b, o->user != NULL ? 3 : 2);
        req_str(b, "AUTH");
        if (o->user != NULL) {
            req_arg(b, o->user->ptr, o->user->len);
        }
        req_arg(b, o->pass->ptr, o->pass->len);
        m->head++;
    }
    char dbs[24];
    snprintf(dbs, sizeof(dbs), "%lld", (long long)db);
    req_head(b, 2);
    req_str(b, "SELECT");
    req_str(b, dbs);
    m->head++;
}

/* One RESTORE key ttl payload [REPLACE] for key k when it exists (and has not expired). */
static void migrate_add_key(struct cmd_ctx *x, struct node_migration *m, const struct resp_arg *k,
                            int replace)
{
    const struct store_obj *o = store_find(x->store, k->ptr, k->len, x->now_ms);
    if (o == NULL) {
        return;
    }
    int64_t ttl = 0, at = store_obj_expire_at(o);
    if (at >= 0) {
        ttl = at - (int64_t)x->now_ms;
        ttl = ttl < 1 ? 1 : ttl; /* as Redis: a key about to expire goes with the least TTL */
    }
    char ttls[24];
    snprintf(ttls, sizeof(ttls), "%lld", (long long)ttl);
    struct hy_buf payload;
    hy_buf_init(&payload);
    store_dump_rdb(o, &payload);
    struct hy_buf *b = &m->job.req;
    req_head(b, replace ? 5 : 4);
    req_str(b, "RESTORE");
    req_arg(b, k->ptr, k->len);
    req_str(b, ttls);
    req_arg(b, payload.data, payload.len);
    if (replace) {
        req_str(b, "REPLACE");
    }
    hy_buf_free(&payload);
    hy_buf_append(&m->keys, &k->len, sizeof(k->len));
    hy_buf_append(&m->keys, k->ptr, k->len);
    m->key_count++;
}

static void migration_free(struct node_migration *m)
{
    hy_buf_free(&m->job.req);
    hy_buf_free(&m->keys);
    hy_free(m);
}

/* The host and port as the job carries them; 0 when they do not fit (an error was replied). */
static int migrate_target(struct cmd_ctx *x, struct node_migrate_job *j)
{
    const struct resp_arg *host = &x->argv[1], *port = &x->argv[2];
    if (host->len == 0 || host->len >= sizeof(j->host) || port->len == 0 ||
        port->len >= sizeof(j->port) || memchr(host->ptr, '\0', host->len) != NULL ||
        memchr(port->ptr, '\0', port->len) != NULL) {
        /* What Redis answers for a target it cannot reach. */
        resp_write_error(&x->w, "IOERR error or timeout connecting to the client");
        return 0;
    }
    memcpy(j->host, host->ptr, host->len);
    memcpy(j->port, port->ptr, port->len);
    return 1;
}

void cmd_migrate(struct cmd_ctx *x)
{
    struct migrate_opts o;
    int64_t db, timeout;
    if (!migrate_parse(x, &o) || !node_arg_i64(x, 5, &timeout) || !node_arg_i64(x, 4, &db)) {
        return;
    }
    if (x->node->wrap_active || x->node->capture != NULL) {
        resp_write_error(&x->w, "ERR MIGRATE cannot run inside a transaction or a script");
        return;
    }
    struct node_migration *m = hy_xcalloc(1, sizeof(*m));
    hy_buf_init(&m->keys);
    hy_buf_init(&m->job.req);
    if (!migrate_target(x, &m->job)) {
        migration_free(m);
        return;
    }
    m->job.timeout_ms = timeout <= 0 ? 1000 : (uint64_t)timeout; /* Redis's default */
    m->copy = o.copy;
    migrate_preamble(m, &o, db);
    for (size_t i = 0; i < o.key_count; i++) {
        migrate_add_key(x, m, &x->argv[o.first_key + i], o.replace);
    }
    if (m->key_count == 0) {
        migration_free(m);
        resp_write_simple(&x->w, "NOKEY");
        return;
    }
    struct hy_node *n = x->node;
    m->id = m->job.id = ++n->next_migration_id;
    m->client_id = x->client->id;
    m->job.replies = m->head + m->key_count;
    if (n->migration_count == n->migration_cap) {
        n->migration_cap = n->migration_cap ? 2 * n->migration_cap : 4;
        n->migrations = hy_xrealloc(n->migrations, n->migration_cap * sizeof(*n->migrations));
    }
    n->migrations[n->migration_count++] = m;
    /* The client runs nothing else until it is answered (dispatch.c node_must_wait). */
    HY_ASSERT(x->client->scatter_pending == 0);
    x->client->scatter_pending = 1;
    x->client->scatter_mode = 0;
    x->client->scatter_error[0] = '\0';
    x->client->scatter_ok[0] = '\0';
}

int node_migrate_pending(const struct hy_node *n)
{
    for (size_t i = 0; i < n->migration_count; i++) {
        if (!n->migrations[i]->taken) {
            return 1;
        }
    }
    return 0;
}

size_t node_migrate_take(struct hy_node *n, struct node_migrate_job **out)
{
    size_t count = 0;
    *out = NULL;
    for (size_t i = 0; i < n->migration_count; i++) {
        struct node_migration *m = n->migrations[i];
        if (m->taken) {
            continue;
        }
        *out = hy_xrealloc(*out, (count + 1) * sizeof(**out));
        (*out)[count] = m->job; /* the request's bytes go with the job */
        hy_buf_init(&m->job.req);
        m->taken = 1;
        count++;
    }
    return count;
}

void node_migrate_jobs_free(struct node_migrate_job *jobs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        hy_buf_free(&jobs[i].req);
    }
    hy_free(jobs);
}

static struct node_client *client_by_id(struct hy_node *n, uint64_t id)
{
    for (struct node_client *c = n->clients; c != NULL; c = c->next) {
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}

/* The error Redis answers for the outcome, or "" when every reply was read and none was an
 * error: the first error among AUTH's, SELECT's and the RESTOREs'. */
static void migrate_error(int io, const char *const *replies, size_t count, char *err, size_t cap)
{
    err[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        if (replies[i][0] != '\0') {
            snprintf(err, cap, "-ERR Target instance replied with error: %s", replies[i]);
            return;
        }
    }
    if (io == NODE_MIGRATE_ECONNECT) {
        snprintf(err, cap, "-IOERR error or timeout connecting to the client");
    } else if (io != NODE_MIGRATE_OK) {
        snprintf(err, cap, "-IOERR error or timeout %s to target instance",
                 io == NODE_MIGRATE_EWRITE ? "writing" : "reading");
    }
}

/* DEL of the keys whose RESTORE the target acknowledged (AUTH and SELECT too); appends the
 * request to req and returns how many keys it names. */
static size_t migrate_acked(const struct node_migration *m, const char *const *replies,
                            size_t count, struct hy_buf *req)
{
    size_t acked = 0;
    struct hy_buf args;
    hy_buf_init(&args);
    int head_ok = 1;
    for (size_t h = 0; h < m->head && h < count; h++) {
        head_ok &= replies[h][0] == '\0';
    }
    const uint8_t *p = m->keys.data;
    for (size_t k = 0; k < m->key_count; k++) {
        size_t len, r = m->head + k;
        memcpy(&len, p, sizeof(len));
        p += sizeof(len);
        if (r < count && head_ok && replies[r][0] == '\0') {
            req_arg(&args, p, len);
            acked++;
        }
        p += len;
    }
    if (acked > 0) {
        req_head(req, acked + 1);
        req_str(req, "DEL");
        hy_buf_append(req, args.data, args.len);
    }
    hy_buf_free(&args);
    return acked;
}

void node_migrate_done(struct hy_node *n, uint64_t id, int io, const char *const *replies,
                       size_t count, uint64_t now_ms)
{
    size_t at = 0;
    while (at < n->migration_count && n->migrations[at]->id != id) {
        at++;
    }
    if (at == n->migration_count) {
        return; /* not ours (the node forgot it: it cannot happen, but costs nothing) */
    }
    struct node_migration *m = n->migrations[at];
    n->migrations[at] = n->migrations[--n->migration_count];
    struct node_client *c = client_by_id(n, m->client_id);
    char err[sizeof(c->scatter_error)];
    migrate_error(io, replies, count, err, sizeof(err));
    struct hy_buf del;
    hy_buf_init(&del);
    size_t acked = m->copy ? 0 : migrate_acked(m, replies, count, &del);
    if (c != NULL) {
        snprintf(c->scatter_error, sizeof(c->scatter_error), "%s", err);
    }
    if (acked > 0) {
        /* Answered once the DEL applied (scatter_maybe_finish): its error if it failed,
         * else the target's, else +OK. A client that went away leaves an orphan DEL. */
        node_scatter_request(n, c, "internal:migrate", del.data, del.len, now_ms);
    } else if (c != NULL) {
        hy_buf_printf(&c->out, "%s\r\n", err[0] != '\0' ? err : "+OK");
        c->scatter_pending = 0;
        node_scatter_resume(n, c);
    }
    hy_buf_free(&del);
    migration_free(m);
}

void node_migrate_free(struct hy_node *n)
{
    for (size_t i = 0; i < n->migration_count; i++) {
        migration_free(n->migrations[i]);
    }
    hy_free(n->migrations);
    n->migrations = NULL;
    n->migration_count = n->migration_cap = 0;
}
