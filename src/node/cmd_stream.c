/*
 * cmd_stream.c - stream commands (Redis 7.0's X* family).
 *
 * Writes (XADD, XTRIM, XDEL, XSETID, XGROUP, XREADGROUP, XACK, XCLAIM, XAUTOCLAIM) become
 * STORE_OP_X* entries holding the command's own arguments: apply parses them (and answers
 * their errors) as Redis does, with the leader's clock from the entry for auto IDs and
 * delivery times, so every replica reaches the same stream. Reads (XRANGE, XREVRANGE, XLEN,
 * XREAD, XPENDING, XINFO) run on the local replica. XREADGROUP is a write: it moves the
 * group's last ID and fills its pending entries list.
 *
 * XREAD BLOCK and XREADGROUP BLOCK wait through blocking.c: the request stays at the head of
 * the client's input and runs again whenever its partition applies an entry, until a stream
 * holds what it waits for. XREAD's "$" means the stream's last ID when the command first ran:
 * those IDs are kept on the client (c->xread_ids) for the runs after, and a follower forwards
 * the request with them written in place of "$", so the leader answers what arrived since.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define ERR_BAD_ID "ERR Invalid stream ID specified as stream command argument"

static int stream_lookup(struct cmd_ctx *x, size_t i, const struct store_obj **o)
{
    return node_lookup_typed(x, i, STORE_STREAM, o);
}

static int64_t node_max_entries(struct cmd_ctx *x)
{
    return store_encoding(x->store)->stream_entries;
}

/* ---- writes --------------------------------------------------------------------------------- */

void cmd_xadd(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_XADD, 0, node_max_entries(x), -1, x->argc - 1);
}

void cmd_xtrim(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_XTRIM, 0, node_max_entries(x), -1, x->argc - 1);
}

void cmd_xdel(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_XDEL, 0, 0, -1, x->argc - 1);
}

void cmd_xsetid(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_XSETID, 0, 0, -1, x->argc - 1);
}

void cmd_xack(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_XACK, 0, 0, -1, x->argc - 1);
}

void cmd_xclaim(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_XCLAIM, 0, 0, -1, x->argc - 1);
}

void cmd_xautoclaim(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_XAUTOCLAIM, 0, 0, -1, x->argc - 1);
}

void cmd_xgroup(struct cmd_ctx *x)
{
    static const char *const help[] = {
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Print this help."};
    if (node_arg_is(&x->argv[1], "HELP")) {
        if (x->argc != 2) {
            resp_write_error(&x->w, "ERR wrong number of arguments for 'xgroup|help' command");
            return;
        }
        node_reply_help(x, help, HY_ARRAY_LEN(help));
        return;
    }
    if (x->argc < 3) {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                          "XGROUP HELP.",
                          (int)HY_MIN(x->argv[1].len, 128), (const char *)x->argv[1].ptr);
        return;
    }
    size_t n = x->argc - 1;
    struct store_arg *args = hy_xmalloc(n * sizeof(*args));
    args[0] = (struct store_arg){x->argv[2].ptr, x->argv[2].len};
    args[1] = (struct store_arg){x->argv[1].ptr, x->argv[1].len};
    for (size_t i = 3; i < x->argc; i++) {
        args[i - 1] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
    }
    struct store_entry e = {.op = STORE_OP_XGROUP,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

/* ---- reads ---------------------------------------------------------------------------------- */

static void range(struct cmd_ctx *x, int rev)
{
    struct store_stream_id start, end;
    const struct resp_arg *lo = &x->argv[rev ? 3 : 2], *hi = &x->argv[rev ? 2 : 3];
    int r1 = store_stream_interval_parse(lo->ptr, lo->len, 0, &start);
    int r2 = r1 > 0 ? store_stream_interval_parse(hi->ptr, hi->len, 1, &end) : 1;
    if (r1 <= 0 || r2 <= 0) {
        resp_write_error(&x->w, r1 < 0   ? "ERR invalid start ID for the interval"
                                : r2 < 0 ? "ERR invalid end ID for the interval"
                                         : ERR_BAD_ID);
        return;
    }
    int64_t count = -1;
    if (x->argc == 6 && node_arg_is(&x->argv[4], "COUNT")) {
        if (!node_arg_i64(x, 5, &count)) {
            return;
        }
        count = HY_MAX(count, 0);
    } else if (x->argc != 4) {
        node_reply_syntax_error(x);
        return;
    }
    const struct store_obj *o;
    if (!stream_lookup(x, 1, &o)) {
        return;
    }
    if (o == NULL || count == 0) {
        resp_write_array(&x->w, 0);
        return;
    }
    store_stream_range(o, start, end, count < 0 ? UINT64_MAX : (uint64_t)count, rev, &x->w);
}

void cmd_xrange(struct cmd_ctx *x)
{
    range(x, 0);
}

void cmd_xrevrange(struct cmd_ctx *x)
{
    range(x, 1);
}

void cmd_xlen(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (stream_lookup(x, 1, &o)) {
        resp_write_int(&x->w, o != NULL ? (int64_t)store_stream_len(o) : 0);
    }
}

static struct store_arg *to_store_args(const struct resp_arg *argv, size_t n)
{
    struct store_arg *a = hy_xmalloc(HY_MAX(n, 1) * sizeof(*a));
    for (size_t i = 0; i < n; i++) {
        a[i] = (struct store_arg){argv[i].ptr, argv[i].len};
    }
    return a;
}

void cmd_xpending(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (!stream_lookup(x, 1, &o)) {
        return;
    }
    struct store_arg *a = to_store_args(x->argv + 1, x->argc - 1);
    store_stream_xpending(o, a, x->argc - 1, x->now_ms, &x->w);
    hy_free(a);
}

void cmd_xinfo(struct cmd_ctx *x)
{
    static const char *const help[] = {
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Print this help."};
    if (node_arg_is(&x->argv[1], "HELP")) {
        if (x->argc != 2) {
            resp_write_error(&x->w, "ERR wrong number of arguments for 'xinfo|help' command");
            return;
        }
        node_reply_help(x, help, HY_ARRAY_LEN(help));
        return;
    }
    int known = node_arg_is(&x->argv[1], "STREAM") || node_arg_is(&x->argv[1], "GROUPS") ||
                node_arg_is(&x->argv[1], "CONSUMERS");
    if (!known || x->argc < 3) {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                          "XINFO HELP.",
                          (int)HY_MIN(x->argv[1].len, 128), (const char *)x->argv[1].ptr);
        return;
    }
    const struct store_obj *o;
    if (!stream_lookup(x, 2, &o)) {
        return;
    }
    if (o == NULL) {
        resp_write_error(&x->w, "ERR no such key");
        return;
    }
    struct store_arg *a = to_store_args(x->argv + 1, x->argc - 1);
    if (!store_stream_xinfo(o, a, x->argc - 1, x->now_ms, &x->w)) {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                          "XINFO HELP.",
                          (int)HY_MIN(x->argv[1].len, 128), (const char *)x->argv[1].ptr);
    }
    hy_free(a);
}

/* ---- XREAD and XREADGROUP ----------------------------------------------------------------- */

struct xread_req {
    int group;        /* XREADGROUP */
    size_t group_at;  /* its group name's index (the consumer follows) */
    int64_t count;    /* 0: no limit */
    int block;        /* BLOCK given */
    int64_t block_ms; /* 0: forever */
    int noack;
    size_t keys_at, nkeys; /* the keys, then as many IDs */
};

/* Finds STREAMS in an XREAD/XREADGROUP request: the keys' first index and count (0: none). */
void node_xread_keys(size_t argc, const struct resp_arg *argv, size_t *first, size_t *count)
{
    *first = 0;
    *count = 0;
    for (size_t i = 1; i + 1 < argc; i++) {
        if (hy_eq_nocase(argv[i].ptr, argv[i].len, "STREAMS")) {
            size_t rest = argc - i - 1;
            if (rest % 2 == 0) {
                *first = i + 1;
                *count = rest / 2;
            }
            return;
        }
        if (hy_eq_nocase(argv[i].ptr, argv[i].len, "GROUP")) {
            i += 2;
        } else if (hy_eq_nocase(argv[i].ptr, argv[i].len, "COUNT") ||
                   hy_eq_nocase(argv[i].ptr, argv[i].len, "BLOCK")) {
            i++;
        }
    }
}

/* Parses the options as Redis 7.0 does; 0 after replying an error. */
static int xread_parse(struct cmd_ctx *x, int group, struct xread_req *r)
{
    memset(r, 0, sizeof(*r));
    r->group = group;
    const char *name = group ? "xreadgroup" : "xread";
    for (size_t i = 1; i < x->argc; i++) {
        size_t more = x->argc - i - 1;
        const struct resp_arg *a = &x->argv[i];
        if (node_arg_is(a, "BLOCK") && more > 0) {
            i++;
            if (!hy_parse_i64(x->argv[i].ptr, x->argv[i].len, &r->block_ms)) {
                resp_write_error(&x->w, "ERR timeout is not an integer or out of range");
                return 0;
            }
            if (r->block_ms < 0) {
                resp_write_error(&x->w, "ERR timeout is negative");
                return 0;
            }
            r->block = 1;
        } else if (node_arg_is(a, "COUNT") && more > 0) {
            if (!node_arg_i64(x, ++i, &r->count)) {
                return 0;
            }
            r->count = HY_MAX(r->count, 0);
        } else if (node_arg_is(a, "STREAMS") && more > 0) {
            if (more % 2 != 0) {
                resp_write_errorf(&x->w,
                                  "ERR Unbalanced '%s' list of streams: for each stream key an ID "
                                  "or '%c' must be specified.",
                                  name, group ? '>' : '$');
                return 0;
            }
            r->keys_at = i + 1;
            r->nkeys = more / 2;
            break;
        } else if (node_arg_is(a, "GROUP") && more >= 2) {
            if (!group) {
                resp_write_error(&x->w, "ERR The GROUP option is only supported by XREADGROUP. "
                                        "You called XREAD instead.");
                return 0;
            }
            r->group_at = i + 1;
            i += 2;
        } else if (node_arg_is(a, "NOACK")) {
            if (!group) {
                resp_write_error(&x->w, "ERR The NOACK option is only supported by XREADGROUP. "
                                        "You called XREAD instead.");
                return 0;
            }
            r->noack = 1;
        } else {
            node_reply_syntax_error(x);
            return 0;
        }
    }
    if (r->keys_at == 0) {
        node_reply_syntax_error(x);
        return 0;
    }
    if (group && r->group_at == 0) {
        resp_write_error(&x->w, "ERR Missing GROUP option for XREADGROUP");
        return 0;
    }
    return 1;
}

/* Checks the IDs (and the keys' types); 0 after an error reply. */
static int xread_ids_ok(struct cmd_ctx *x, const struct xread_req *r)
{
    for (size_t i = 0; i < r->nkeys; i++) {
        const struct resp_arg *id = &x->argv[r->keys_at + r->nkeys + i];
        const struct store_obj *o;
        if (!stream_lookup(x, r->keys_at + i, &o)) {
            return 0;
        }
        if (r->group) {
            struct store_stream_id last;
            if (o == NULL || !store_stream_group_last(o, x->argv[r->group_at].ptr,
                                                      x->argv[r->group_at].len, &last)) {
                resp_write_errorf(
                    &x->w,
                    "NOGROUP No such key '%.*s' or consumer group '%.*s' in XREADGROUP with "
                    "GROUP option",
                    (int)HY_MIN(x->argv[r->keys_at + i].len, 1024),
                    (const char *)x->argv[r->keys_at + i].ptr,
                    (int)HY_MIN(x->argv[r->group_at].len, 1024),
                    (const char *)x->argv[r->group_at].ptr);
                return 0;
            }
        }
        int dollar = id->len == 1 && id->ptr[0] == '$';
        int gt = id->len == 1 && id->ptr[0] == '>';
        if (dollar && r->group) {
            resp_write_error(&x->w,
                             "ERR The $ ID is meaningless in the context of XREADGROUP: you want "
                             "to read the history of this consumer by specifying a proper ID, or "
                             "use the > ID to get new messages. The $ ID would just return an "
                             "empty result set.");
            return 0;
        }
        if (gt && !r->group) {
            resp_write_error(&x->w, "ERR The > ID can be specified only when calling XREADGROUP "
                                    "using the GROUP <group> <consumer> option.");
            return 0;
        }
        struct store_stream_id tmp;
        if (!dollar && !gt && !store_stream_id_parse(id->ptr, id->len, 0, 1, &tmp, NULL)) {
            resp_write_error(&x->w, ERR_BAD_ID);
            return 0;
        }
    }
    return 1;
}

/* XREAD's IDs: "$" resolved when the request first ran (kept on the client), else parsed. */
static void xread_resolve(struct cmd_ctx *x, const struct xread_req *r, int rerun,
                          struct store_stream_id *ids)
{
    struct node_client *c = x->client;
    int kept = rerun && c->xread_resolved && c->xread_ids.len == r->nkeys * sizeof(*ids);
    for (size_t i = 0; i < r->nkeys; i++) {
        const struct resp_arg *id = &x->argv[r->keys_at + r->nkeys + i];
        if (id->len == 1 && id->ptr[0] == '$') {
            if (kept) {
                memcpy(&ids[i], c->xread_ids.data + i * sizeof(*ids), sizeof(*ids));
            } else {
                const struct store_obj *o = store_peek(x->store, x->argv[r->keys_at + i].ptr,
                                                       x->argv[r->keys_at + i].len, x->now_ms);
                ids[i] = o != NULL && store_obj_type(o) == STORE_STREAM
                             ? store_stream_last_id(o)
                             : (struct store_stream_id){0, 0};
            }
        } else {
            HY_ASSERT(store_stream_id_parse(id->ptr, id->len, 0, 1, &ids[i], NULL));
        }
    }
    c->xread_ids.len = 0;
    hy_buf_append(&c->xread_ids, ids, r->nkeys * sizeof(*ids));
    c->xread_resolved = 1;
}

/* A follower resolves "$" only once its replica holds every write acknowledged before the
 * request came: after a message from the leader received since then (the leader sent it
 * after acknowledging those writes, and one link carries both, in order), and once it has
 * applied up to the commit index that message brought. */
static int follower_caught_up(struct cmd_ctx *x)
{
    const struct raft *rf = &x->group->raft;
    /* A quiesced follower's leader confirmed everything and has had nothing to send since. */
    int heard = raft_quiesced(rf) || x->group->leader_msgs > x->client->xread_arrival_msgs;
    return heard && x->group->applied >= raft_commit_index(rf);
}

/* The streams that hold entries after their ID. */
static size_t xread_ready(struct cmd_ctx *x, const struct xread_req *r,
                          const struct store_stream_id *ids)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nkeys; i++) {
        const struct store_obj *o = store_peek(x->store, x->argv[r->keys_at + i].ptr,
                                               x->argv[r->keys_at + i].len, x->now_ms);
        n += o != NULL && store_obj_type(o) == STORE_STREAM && store_stream_has_after(o, ids[i]);
    }
    return n;
}

static void xread_reply(struct cmd_ctx *x, const struct xread_req *r,
                        const struct store_stream_id *ids, size_t served)
{
    if (served == 0) {
        resp_write_null_array(&x->w);
        return;
    }
    x->w.proto >= 3 ? resp_write_map(&x->w, served) : resp_write_array(&x->w, served);
    for (size_t i = 0; i < r->nkeys; i++) {
        const struct resp_arg *k = &x->argv[r->keys_at + i];
        const struct store_obj *o = node_lookup(x, r->keys_at + i);
        if (o == NULL || store_obj_type(o) != STORE_STREAM || !store_stream_has_after(o, ids[i])) {
            continue;
        }
        if (x->w.proto < 3) {
            resp_write_array(&x->w, 2);
        }
        resp_write_bulk(&x->w, k->ptr, k->len);
        struct store_stream_id start = ids[i];
        start.seq++;
        if (start.seq == 0) {
            start.ms++;
        }
        store_stream_range(o, start, (struct store_stream_id){UINT64_MAX, UINT64_MAX},
                           r->count > 0 ? (uint64_t)r->count : UINT64_MAX, 0, &x->w);
    }
}

/* Ready for XREADGROUP: some stream has entries after the group's last ID (">"), or history
 * is asked (answered at once). */
static int xreadgroup_ready(struct cmd_ctx *x, const struct xread_req *r)
{
    for (size_t i = 0; i < r->nkeys; i++) {
        const struct resp_arg *id = &x->argv[r->keys_at + r->nkeys + i];
        if (!(id->len == 1 && id->ptr[0] == '>')) {
            return 1;
        }
        const struct store_obj *o = store_peek(x->store, x->argv[r->keys_at + i].ptr,
                                               x->argv[r->keys_at + i].len, x->now_ms);
        struct store_stream_id last;
        if (o == NULL || store_obj_type(o) != STORE_STREAM ||
            !store_stream_group_last(o, x->argv[r->group_at].ptr, x->argv[r->group_at].len,
                                     &last) ||
            store_stream_has_after(o, last)) {
            return 1; /* an error (answered by the proposal) or data */
        }
    }
    return 0;
}

static void xreadgroup_propose(struct cmd_ctx *x)
{
    struct xread_req r;
    HY_ASSERT(xread_parse(x, 1, &r));
    size_t n = 2 + 2 * r.nkeys;
    struct store_arg *args = hy_xmalloc(n * sizeof(*args));
    args[0] = (struct store_arg){x->argv[r.group_at].ptr, x->argv[r.group_at].len};
    args[1] = (struct store_arg){x->argv[r.group_at + 1].ptr, x->argv[r.group_at + 1].len};
    for (size_t i = 0; i < 2 * r.nkeys; i++) {
        args[2 + i] = (struct store_arg){x->argv[r.keys_at + i].ptr, x->argv[r.keys_at + i].len};
    }
    struct store_entry e = {.op = STORE_OP_XREADGROUP,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = r.count * 2 + r.noack,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

static void xread_answer(struct cmd_ctx *x)
{
    struct xread_req r;
    HY_ASSERT(xread_parse(x, 0, &r));
    struct store_stream_id *ids = hy_xmalloc(r.nkeys * sizeof(*ids));
    xread_resolve(x, &r, 1, ids);
    xread_reply(x, &r, ids, xread_ready(x, &r, ids));
    hy_free(ids);
}

void cmd_xread(struct cmd_ctx *x)
{
    struct xread_req r;
    int rerun = x->client->block_deadline_ms != 0;
    /* Checked when it first ran; once blocked, a key of another type only does not wake it. */
    if (!xread_parse(x, 0, &r) || (!rerun && !xread_ids_ok(x, &r))) {
        return;
    }
    if (!rerun) {
        x->client->xread_resolved = 0;
    }
    struct store_stream_id *ids = hy_xmalloc(r.nkeys * sizeof(*ids));
    xread_resolve(x, &r, rerun, ids);
    size_t ready = xread_ready(x, &r, ids);
    hy_free(ids);
    if (!r.block) {
        xread_answer(x);
        return;
    }
    node_block_stream(x, (uint64_t)r.block_ms, ready > 0, xread_answer);
}

/* A blocked XREADGROUP whose stream went away (deleted, replaced, flushed) or lost its group
 * is answered with Redis 7.0's errors; returns 0 then. */
static int xreadgroup_still_valid(struct cmd_ctx *x, const struct xread_req *r)
{
    for (size_t i = 0; i < r->nkeys; i++) {
        const struct store_obj *o = store_peek(x->store, x->argv[r->keys_at + i].ptr,
                                               x->argv[r->keys_at + i].len, x->now_ms);
        struct store_stream_id last;
        if (o == NULL || store_obj_type(o) != STORE_STREAM) {
            resp_write_error(&x->w, "UNBLOCKED the stream key no longer exists");
            return 0;
        }
        if (!store_stream_group_last(o, x->argv[r->group_at].ptr, x->argv[r->group_at].len,
                                     &last)) {
            resp_write_error(&x->w, "NOGROUP the consumer group this client was blocked on no "
                                    "longer exists");
            return 0;
        }
    }
    return 1;
}

void cmd_xreadgroup(struct cmd_ctx *x)
{
    struct xread_req r;
    if (!xread_parse(x, 1, &r)) {
        return;
    }
    if (!r.block) {
        xreadgroup_propose(x);
        return;
    }
    if (x->client->block_deadline_ms != 0 && !xreadgroup_still_valid(x, &r)) {
        x->client->block_deadline_ms = 0; /* answered: the request is done */
        return;
    }
    node_block_stream(x, (uint64_t)r.block_ms, xreadgroup_ready(x, &r), xreadgroup_propose);
}

/* A follower's client of XREAD/XREADGROUP BLOCK: waits here until this replica shows data
 * (returns 1), or lets the request go to the leader (0), XREAD's "$" written as the IDs it
 * stood for when the request first ran. */
int node_xread_follower_wait(struct cmd_ctx *x, const struct cmd_def *d)
{
    struct node_client *c = x->client;
    int group = d->handler == cmd_xreadgroup;
    struct xread_req r;
    size_t mark = x->w.out->len;
    if (!xread_parse(x, group, &r) || !r.block) {
        x->w.out->len = mark; /* the leader answers (and words any error) */
        return 0;
    }
    int rerun = c->block_deadline_ms != 0;
    uint64_t deadline = r.block_ms == 0 ? UINT64_MAX : x->now_ms + (uint64_t)r.block_ms;
    if (!rerun) {
        c->xread_resolved = 0;
        c->xread_synced = 0;
        /* It arrived before any wait for acknowledged writes (proxy.c). */
        c->xread_arrival_msgs = c->ryw_looked ? c->ryw_arrival_msgs : x->group->leader_msgs;
    }
    /* Judged on a replica that holds what was acknowledged before the request came (else a
     * stale replica would forward too early, or resolve "$" too low). */
    int was_synced = c->xread_synced; /* it waited for data, not for the barrier */
    if (!c->xread_synced && !follower_caught_up(x)) {
        /* Catching up is not the command's BLOCK time, which starts once it is judged (as
         * Redis's starts when it runs): counted, a BLOCK 10 answered null after waiting a
         * heartbeat for the barrier, before it had looked at any data. Bounded all the same,
         * by request-timeout-ms more. */
        node_block_wait_here(x, r.block_ms == 0
                                    ? UINT64_MAX
                                    : deadline + (uint64_t)x->node->cfg->request_timeout_ms);
        c->block_seen = 0; /* look again at the next pass, applied or not */
        return 1;
    }
    if (!c->xread_synced && rerun) {
        c->block_deadline_ms = deadline; /* caught up after waiting: its BLOCK time from now */
    }
    c->xread_synced = 1;
    int ready;
    if (group && rerun && was_synced && !xreadgroup_still_valid(x, &r)) {
        c->block_deadline_ms = 0; /* answered: the stream or its group went away */
        return 1;
    }
    if (group) {
        ready = xreadgroup_ready(x, &r);
    } else {
        /* Checked when first judged; once waiting, a key of another type only does not wake
         * it (as on the leader). */
        if (!(rerun && was_synced) && !xread_ids_ok(x, &r)) {
            x->w.out->len = mark;
            return 0;
        }
        struct store_stream_id *ids = hy_xmalloc(r.nkeys * sizeof(*ids));
        xread_resolve(x, &r, rerun, ids);
        ready = xread_ready(x, &r, ids) > 0;
        /* The request as the leader must see it: "$" replaced by the IDs. */
        hy_free(c->xread_argv);
        c->xread_argv = hy_xmalloc(x->argc * sizeof(*c->xread_argv));
        memcpy(c->xread_argv, x->argv, x->argc * sizeof(*c->xread_argv));
        c->xread_text.len = 0;
        hy_buf_reserve(&c->xread_text, r.nkeys * 48);
        for (size_t i = 0; i < r.nkeys; i++) {
            char *p = (char *)c->xread_text.data + c->xread_text.len;
            int len = snprintf(p, 48, "%llu-%llu", (unsigned long long)ids[i].ms,
                               (unsigned long long)ids[i].seq);
            c->xread_argv[r.keys_at + r.nkeys + i] =
                (struct resp_arg){(const uint8_t *)p, (size_t)len};
            c->xread_text.len += (size_t)len;
        }
        hy_free(ids);
        x->argv = c->xread_argv;
    }
    if (ready) {
        c->block_deadline_ms = 0;
        return 0;
    }
    node_block_wait_here(x, deadline);
    return 1;
}
