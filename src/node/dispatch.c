/*
 * dispatch.c - from parsed requests to handlers; the write path; periodic work.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "node/acl.h"
#include "node/node_internal.h"
#include "node/wan.h"

void node_reply_unknown_command(struct resp_writer *w, size_t argc, const struct resp_arg *argv)
{
    /* Same text as Redis, which clients and tests match: the name, then up to 128 bytes of
     * the first arguments, each quoted and followed by a space. */
    char args[160];
    size_t len = 0;
    args[0] = '\0';
    for (size_t i = 1; i < argc && len < 128; i++) {
        int room = (int)(128 - len);
        int arg_len = argv[i].len > (size_t)room ? room : (int)argv[i].len;
        len += (size_t)snprintf(args + len, sizeof(args) - len, "'%.*s' ", arg_len,
                                (const char *)argv[i].ptr);
        len = HY_MIN(len, sizeof(args) - 1);
    }
    int name_len = argv[0].len > 128 ? 128 : (int)argv[0].len;
    char msg[400];
    snprintf(msg, sizeof(msg), "ERR unknown command '%.*s', with args beginning with: %s", name_len,
             (const char *)argv[0].ptr, args);
    for (char *p = msg; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            *p = ' '; /* an error reply is one line */
        }
    }
    resp_write_error(w, msg);
}

void node_reply_arity(struct resp_writer *w, const char *name)
{
    resp_write_errorf(w, "ERR wrong number of arguments for '%s' command", name);
}

void node_reply_help(struct cmd_ctx *x, const char *const *lines, size_t n)
{
    resp_write_array(&x->w, n);
    for (size_t i = 0; i < n; i++) {
        resp_write_simple(&x->w, lines[i]);
    }
}

void node_reply_syntax_error(struct cmd_ctx *x)
{
    resp_write_error(&x->w, "ERR syntax error");
}

void node_reply_not_integer(struct cmd_ctx *x)
{
    resp_write_error(&x->w, "ERR value is not an integer or out of range");
}

void node_reply_wrongtype(struct cmd_ctx *x)
{
    resp_write_error(&x->w, "WRONGTYPE Operation against a key holding the wrong kind of value");
}

int node_arg_is(const struct resp_arg *a, const char *lit)
{
    return hy_eq_nocase(a->ptr, a->len, lit);
}

int node_arg_i64(struct cmd_ctx *x, size_t i, int64_t *out)
{
    HY_ASSERT(i < x->argc);
    if (!hy_parse_i64(x->argv[i].ptr, x->argv[i].len, out)) {
        node_reply_not_integer(x);
        return 0;
    }
    return 1;
}

int node_rand_count(struct cmd_ctx *x, const char *with, int64_t *count, int *with_out)
{
    *count = 0;
    *with_out = 0;
    size_t most = with != NULL ? 4 : 3;
    if (x->argc > most || (x->argc == 4 && !node_arg_is(&x->argv[3], with))) {
        node_reply_syntax_error(x);
        return 0;
    }
    if (x->argc < 3) {
        return 1;
    }
    if (!node_arg_i64(x, 2, count)) {
        return 0;
    }
    if (*count == INT64_MIN) {
        resp_write_error(&x->w, "ERR value is out of range, value must between "
                                "-9223372036854775807 and 9223372036854775807");
        return 0;
    }
    *with_out = x->argc == 4;
    if (*with_out && (*count < -INT64_MAX / 2 || *count > INT64_MAX / 2)) {
        resp_write_error(&x->w, "ERR value is out of range");
        return 0;
    }
    return 1;
}

const struct store_obj *node_lookup(struct cmd_ctx *x, size_t i)
{
    HY_ASSERT(i < x->argc);
    const struct store_obj *o = store_find(x->store, x->argv[i].ptr, x->argv[i].len, x->now_ms);
    if (o != NULL) {
        x->node->stats.keyspace_hits++;
    } else {
        x->node->stats.keyspace_misses++;
    }
    return o;
}

int node_lookup_typed(struct cmd_ctx *x, size_t i, enum store_type t, const struct store_obj **o)
{
    *o = node_lookup(x, i);
    if (*o != NULL && store_obj_type(*o) != t) {
        node_reply_wrongtype(x);
        return 0;
    }
    return 1;
}

/* ---- the write path ------------------------------------------------------------------------ */

/* HY.REQ: the entry travels inside a session request, applied at most once per (session,
 * seq) and whose reply is kept for retries (store.h, "client sessions"). */
static void node_wrap_session(struct cmd_ctx *x, const struct store_entry *e, struct hy_buf *out)
{
    struct hy_node *n = x->node;
    struct hy_buf inner;
    hy_buf_init(&inner);
    store_entry_encode(e, &inner);
    uint8_t seq[8];
    hy_store_u64le(seq, n->wrap_seq);
    struct store_arg args[2] = {{seq, 8}, {inner.data, inner.len}};
    struct store_entry req = {.op = STORE_OP_SESSION_REQW,
                              .flags = x->w.proto == 3 ? STORE_F_RESP3 : 0,
                              .time_ms = e->time_ms,
                              .expire_at_ms = -1,
                              .incr = (int64_t)n->wrap_session,
                              .argc = 2,
                              .argv = args};
    store_entry_encode(&req, out);
    hy_buf_free(&inner);
}

void node_propose(struct cmd_ctx *x, const struct store_entry *e)
{
    struct hy_node *n = x->node;
    if (n->capture != NULL) {
        /* A command of a transaction being built (cmd_multi.c); HY.REQ inside keeps its
         * session: the item is the session request. */
        struct hy_buf one;
        hy_buf_init(&one);
        if (n->wrap_active) {
            node_wrap_session(x, e, &one);
        } else {
            store_entry_encode(e, &one);
        }
        node_capture_entry(x, one.data, one.len);
        hy_buf_free(&one);
        return;
    }
    struct hy_buf *turn = replica_turn_data(x->group);
    size_t offset = turn->len;
    if (n->wrap_active) {
        node_wrap_session(x, e, turn);
    } else {
        store_entry_encode(e, turn);
    }
    struct node_waiter *w = replica_waiter_new(x->group, x->client, x->now_ms);
    w->proto = x->w.proto;
    replica_queue_tail(x->group, offset, w);
}

void node_propose_answer_integer(struct cmd_ctx *x, const struct store_entry *e, long long value)
{
    node_propose(x, e);
    /* Inside MULTI the transaction's reply carries the write's own. */
    if (x->node->capture == NULL) {
        struct node_waiter *w = x->group->waiters_tail;
        w->answer_integer = 1;
        w->answer = value;
    }
}

void node_propose_argv(struct cmd_ctx *x, enum store_op op, uint32_t flags, int64_t incr,
                       int64_t expire_at, size_t nargs)
{
    HY_ASSERT(nargs < x->argc);
    struct store_arg stack[16];
    struct store_arg *args =
        nargs <= HY_ARRAY_LEN(stack) ? stack : hy_xmalloc(nargs * sizeof(*args));
    for (size_t i = 0; i < nargs; i++) {
        args[i].ptr = x->argv[i + 1].ptr;
        args[i].len = x->argv[i + 1].len;
    }
    struct store_entry e = {.op = op,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = expire_at,
                            .incr = incr,
                            .argc = (uint32_t)nargs,
                            .argv = args};
    node_propose(x, &e);
    if (args != stack) {
        hy_free(args);
    }
}

void node_propose_internal(struct node_group *g, const struct hy_buf *entry)
{
    replica_queue(g, entry->data, entry->len, NULL);
}

/* Evicts by proposing deletions until under maxmemory or nothing more can go. The store
 * counts victims already proposed, so repeated calls in one turn do not pick them twice.
 * Returns 1 when memory is (or will be, once the evictions apply) within the limit. */
static int node_make_room(struct node_group *g, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (!replica_is_leader(g)) {
        return !store_over_maxmemory(g->store);
    }
    if (store_over_maxmemory(g->store) && n->cfg->maxmemory_policy != STORE_NOEVICTION &&
        g->applied < g->internal_index) {
        return 1; /* evictions already proposed will free the room once they apply */
    }
    for (int round = 0; round < 64 && store_over_maxmemory(g->store); round++) {
        struct hy_buf buf;
        hy_buf_init(&buf);
        size_t k = store_propose_evictions(g->store, now_ms, 128, &buf);
        if (k > 0) {
            node_propose_internal(g, &buf);
            n->stats.evicted_keys += k;
        }
        hy_buf_free(&buf);
        if (k == 0) {
            break;
        }
        return 1; /* the room comes when this eviction entry applies */
    }
    return !store_over_maxmemory(g->store);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

int node_arity_ok(const struct cmd_def *d, size_t argc)
{
    return d->arity > 0 ? argc == (size_t)d->arity : argc >= (size_t)-d->arity;
}

/* Appends an immediate reply behind the client's pending writes, so replies keep the order
 * of requests: everything written to c->out since `mark` moves to the last waiter's tail. */
static void node_defer_reply(struct node_client *c, struct node_waiter *pending, size_t mark)
{
    if (pending != NULL && c->last_waiter == pending && c->out.len > mark) {
        hy_buf_append(&pending->tail, c->out.data + mark, c->out.len - mark);
        c->out.len = mark;
    }
}

/* Whether the command needs this group's leader: writes, and reads unless the connection
 * asked for stale reads (READONLY). */
static int node_needs_leader(const struct hy_node *n, const struct node_group *g,
                             const struct node_client *c, const struct cmd_def *d)
{
    if (d == NULL || (d->handler == cmd_flushall && n->group_count > 1) ||
        node_script_scatters(d) ||
        ((d->handler == cmd_dbsize || d->handler == cmd_keys || d->handler == cmd_scan ||
          d->handler == cmd_randomkey) &&
         n->group_count > 1)) {
        return 0; /* FLUSHALL with partitions, SCRIPT LOAD/FLUSH: run here, their parts go to
                     each partition's leader; so do DBSIZE's, KEYS', SCAN's and RANDOMKEY's
                     in the partitions not led here (scatter.c node_scatter_reads_here): on
                     the metadata group's leader they read its replicas, which may lag */
    }
    /* READONLY reads this node's replica; of a partition it holds none of (partmap.c) it has
     * nothing to read: the leader answers. */
    return (d->flags & CMD_WRITE) || ((d->flags & (CMD_READONLY | CMD_LIBRARY_READ)) &&
                                      (!c->readonly_mode || !node_group_raft_view(g)));
}

void node_client_block(struct node_group *g, struct node_client *c, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    HY_ASSERT(!c->blocked_on_read);
    c->blocked_on_read = 1;
    c->wait_group = g->id;
    c->blocked_since_ms = c->retry_since_ms ? c->retry_since_ms : now_ms;
    n->read_waiters++;
}

/* Whether the command must wait: 0 = run it now, 1 = leave it in the input for later. */
/* A client's request on a node removed from the cluster, for a group it does not lead: sent to
 * a member that remains (-MOVED, as Redis Cluster answers for a slot a node does not serve;
 * cluster clients follow it and refresh their map) rather than waiting request-timeout-ms for
 * a leader that no longer talks to it and answering -TRYAGAIN. Not a request forwarded here
 * (its follower picks another member), nor a write whose first copy may have applied. */
static int node_removed_redirects(const struct hy_node *n, const struct node_client *c)
{
    return !c->is_proxy && !c->outcome_unsure && member_removed_here(n);
}

static int node_must_wait(struct node_group *g, struct node_client *c, const struct cmd_def *d,
                          size_t argc, const struct resp_arg *argv, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    int is_write = d != NULL && (d->flags & CMD_WRITE);
    if (c->scatter_pending > 0) {
        return 1; /* its FLUSHALL's parts are not all answered yet */
    }
    if (c->waiting > 0 && d != NULL &&
        ((d->handler == cmd_flushall && n->group_count > 1) || node_script_scatters(d))) {
        return 1; /* run in every partition once the client's earlier writes are answered */
    }
    if (c->waiting > 0 && !is_write) {
        return 1; /* reads see the client's own writes; replies stay in order */
    }
    if (!c->read_timed_out && proxy_ryw_hold(g, c, d, argc, argv, now_ms)) {
        return 1; /* decided from this replica once it applied the acknowledged writes */
    }
    if (!node_needs_leader(n, g, c, d) || c->read_timed_out) {
        return 0;
    }
    if (!replica_is_leader(g)) {
        if (node_removed_redirects(n, c)) {
            return 0; /* node_run sends it to a member that remains */
        }
        if (proxy_target(g) != NULL || c->is_proxy) {
            /* node_run forwards it, or answers -MOVED (-TRYAGAIN with no leader known) to a
             * follower's forward: the follower then runs it again elsewhere. A write first
             * waits for this follower's session, or for room in its window (proxy.c). */
            if (is_write && n->cfg->redirect == NODE_REDIRECT_PROXY &&
                proxy_hold(g, c, d, now_ms)) {
                node_client_block(g, c, now_ms);
                return 1;
            }
            return 0;
        }
        if (node_cut_off(n, g, now_ms) && !c->outcome_unsure) {
            c->read_timed_out = 1; /* node_run answers -NOQUORUM at once: waiting is futile */
            return 0;
        }
        /* A write lost with its leader (outcome_unsure) waits out its deadline even here: the
         * partition may heal, and it is then sent again and answered for real. */
        /* An election is under way, or the leader's link is down (it died, or a partition):
         * wait for the next leader rather than forward into a dead link or redirect to it. */
        node_client_block(g, c, now_ms);
        return 1;
    }
    if (is_write && replica_transferring(g)) {
        /* §3.10: no new writes while leadership is handed over; wait for the new leader (the
         * write is then forwarded) or for the transfer to abort (it is proposed here). */
        node_client_block(g, c, now_ms);
        return 1;
    }
    /* A write that reads the store before proposing (CMD_READS_FIRST: EVALSHA, FCALL,
     * MIGRATE), on a leader whose own no-op is not applied yet: a write the previous leader
     * acknowledged (SCRIPT LOAD, FUNCTION LOAD, a SET) may be missing from its store, and
     * NOSCRIPT or "Function not found" from there would deny it. It waits as a read does
     * (ReadIndex: answered once this leader applied its term's start). */
    if (is_write && c->read_ok_bytes == 0 && g->applied < g->raft.term_start_index &&
        (d->flags & CMD_READS_FIRST)) {
        replica_read_register(g, c, now_ms);
        return 1;
    }
    if (is_write || replica_can_read(g) || c->read_ok_bytes > 0) {
        return 0;
    }
    replica_read_register(g, c, now_ms); /* ReadIndex: one heartbeat round per turn */
    return 1;
}

/* The request waited request-timeout-ms for a leader. On the minority side of a partition it
 * is -NOQUORUM <partition> <reachable>/<needed> (docs/architecture.md "Interfaces"); otherwise the
 * election simply has not finished: -TRYAGAIN. Either way nothing was applied. */
static void node_reply_no_leader(struct cmd_ctx *x, int why)
{
    if (x->client->outcome_unsure && (x->cmd->flags & CMD_WRITE)) {
        resp_write_error(&x->w, "UNKNOWN outcome: the write was forwarded to a leader that "
                                "failed before answering, and no leader could take it again "
                                "within request-timeout-ms; it may or may not be applied");
        return;
    }
    uint32_t have = replica_reachable_voters(x->group), need = replica_voters(x->group) / 2 + 1;
    if (have < need) {
        resp_write_errorf(&x->w,
                          "NOQUORUM %d %u/%u this side of the partition cannot reach a "
                          "majority; the request was not applied",
                          node_group_partition(x->node, x->group), have, need);
        return;
    }
    if (why == 2) {
        /* A ReadIndex round refused: this node stopped leading before it could confirm the
         * read. Saying request-timeout-ms ran out would be false (it answers at once). */
        resp_write_error(&x->w, "TRYAGAIN leadership was lost before the read could be "
                                "confirmed; it was not applied");
        return;
    }
    resp_write_error(&x->w, "TRYAGAIN no leader could serve the request within "
                            "request-timeout-ms; it was not applied");
}

static void node_reply_moved_to(struct cmd_ctx *x, const struct cmd_def *d,
                                const struct node_member *leader);

/* -MOVED <slot> <host:port>: the leader serves this; cluster-aware clients go there. */
static void node_reply_moved(struct cmd_ctx *x, const struct cmd_def *d)
{
    if (x->client->outcome_unsure && (d->flags & CMD_WRITE)) {
        /* -MOVED says "not run"; a copy of this write went to a leader that failed. */
        node_reply_no_leader(x, 1);
        return;
    }
    const struct node_member *leader = partmap_leader_member(x->group);
    if (leader == NULL) {
        resp_write_error(&x->w, "TRYAGAIN no leader is known; the request was not applied");
        return;
    }
    node_reply_moved_to(x, d, leader);
}

static void node_reply_moved_to(struct cmd_ctx *x, const struct cmd_def *d,
                                const struct node_member *leader)
{
    /* The slot of the key that placed the command; for one that names none (a script without
     * keys, an internal part of a scatter, a WATCH's versions read on the leader) the first
     * slot of the partition it ran in: "MOVED 0" taught cluster clients that slot 0 lives
     * with this partition's leader. */
    const struct hy_node *n = x->node;
    uint16_t slot = 0;
    if (n->group_count > 1 && x->group != n->meta) {
        uint32_t lo, hi;
        node_partition_slots(x->group->id - 1, (uint32_t)n->group_count - 1, &lo, &hi);
        slot = (uint16_t)lo;
    }
    int64_t numkeys = 1;
    if (node_is_script(d) &&
        (!hy_parse_i64(x->argv[2].ptr, x->argv[2].len, &numkeys) || numkeys <= 0)) {
        numkeys = 0; /* a script with no key runs in slot 0's partition */
    }
    size_t first = numkeys > 0 ? node_first_key(d, x->argc, x->argv) : 0;
    int exec_slot = d->handler == cmd_hy_exec || d->handler == cmd_hy_exec_ro
                        ? node_multi_exec_slot(n, x->argc, x->argv)
                        : -1;
    int64_t part_slot = -1;
    if (d->handler == cmd_hy_watchpart &&
        (!hy_parse_i64(x->argv[1].ptr, x->argv[1].len, &part_slot) || part_slot >= HY_SLOT_COUNT)) {
        part_slot = -1; /* HY.WATCHPART slot key...: the slot of the client's WATCH */
    }
    if (exec_slot >= 0) {
        slot = (uint16_t)exec_slot;
    } else if (part_slot >= 0) {
        slot = (uint16_t)part_slot;
    } else if (first > 0) {
        slot = hy_key_slot(x->argv[first].ptr, x->argv[first].len);
    }
    resp_write_errorf(&x->w, "MOVED %u %s:%u", slot, leader->host, leader->client_port);
}

int node_replicas_short(const struct node_group *g)
{
    const struct hy_node *n = g->node;
    int64_t want = n->cfg->min_replicas_to_write;
    if (want <= 0) {
        return 0;
    }
    uint64_t lag_ms = (uint64_t)n->cfg->min_replicas_max_lag * 1000;
    int64_t good = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        raft_id id = n->members[i].id;
        struct raft_follower f;
        if (id != g->raft.cfg.id && raft_follower_info(&g->raft, id, &f) && f.answered &&
            n->raft_now_ms - HY_MIN(f.last_heard_ms, n->raft_now_ms) <= lag_ms) {
            good++;
        }
    }
    return good < want;
}

int node_refuse_oom(struct cmd_ctx *x, const struct cmd_def *d)
{
    struct hy_node *n = x->node;
    if ((d->flags & CMD_DENYOOM) && n->cfg->maxmemory > 0 && !node_make_room(x->group, x->now_ms)) {
        resp_write_error(&x->w, x->client->outcome_unsure
                                    ? "UNKNOWN outcome: the write was forwarded to a leader "
                                      "that failed before answering, and this node cannot take "
                                      "it again (maxmemory); it may or may not be applied"
                                    : "OOM command not allowed when used memory > 'maxmemory'.");
        return 1;
    }
    return 0;
}

/* Runs d's handler, unless the request is refused, redirected, forwarded or made to wait
 * first. Returns 1 when the handler ran. */
/* wan-passive yes, or demoted by a primary promoted elsewhere (docs/wan.md "Writes at the
 * target", "Region failover"): a client's write is refused, a WAN
 * batch (HY.WANAPPLY, also when a member forwards it wrapped in HY.REQ) is not. A write
 * transaction comes here as HY.EXEC; a read-only one (HY.EXEC_RO) and scripts flagged
 * read-only are not writes. Returns 1 when x was answered. */
static int node_client_write(struct cmd_ctx *x, const struct cmd_def *d)
{
    if (d->handler == cmd_hy_req && x->argc > 3) {
        const struct cmd_def *inner = node_command_lookup(x->node, x->argv[3].ptr, x->argv[3].len);
        if (inner != NULL) {
            d = inner;
        }
    }
    return d->handler != cmd_hy_wanapply && ((d->flags & CMD_WRITE) || d->handler == cmd_hy_exec);
}

struct passive_keys {
    const char *glob;
    size_t seen; /* keys looked at */
};

static int passive_key_cb(const void *ctx, const struct resp_arg *key)
{
    struct passive_keys *pk = (struct passive_keys *)ctx;
    pk->seen++;
    return !hy_glob_match((const uint8_t *)pk->glob, strlen(pk->glob), key->ptr, key->len, 0);
}

/* wan-passive-keys (docs/multi-region.md "A role per link"): whether the write x runs names a
 * key matching the glob, or names no key at all (it could touch them: FLUSHALL, a script
 * declaring none), in a MULTI/EXEC any of its commands. */
static int passive_for_keys(struct cmd_ctx *x, const struct cmd_def *d)
{
    struct passive_keys pk = {x->node->cfg->wan_passive_keys, 0};
    size_t argc = x->argc;
    const struct resp_arg *argv = x->argv;
    if (d->handler == cmd_hy_req && argc > 3) {
        const struct cmd_def *inner = node_command_lookup(x->node, argv[3].ptr, argv[3].len);
        if (inner != NULL) {
            d = node_command_sub(x->node, inner, argc - 3, argv + 3);
            d = d != NULL ? d : inner;
            argc -= 3;
            argv += 3;
        }
    }
    int r = d->handler == cmd_hy_exec
                ? node_multi_exec_each_key(x->node, argc, argv, passive_key_cb, &pk)
                : node_keys_each(d, argc, argv, passive_key_cb, &pk);
    return r <= 0 || pk.seen == 0;
}

static int node_refuse_passive(struct cmd_ctx *x, const struct cmd_def *d)
{
    if (!node_client_write(x, d)) {
        return 0;
    }
    const struct wan_role *role;
    if (!node_wan_passive(x->node, &role)) {
        if (role->kind == WAN_ROLE_PRIMARY && x->group != NULL && x->group != x->node->meta &&
            store_wan_fence(x->group->store) != role->epoch) {
            /* Promoted, and this partition's replica here has not applied it yet (wan_ship.c
             * fence_partition): a write now could land before batches taken earlier. */
            resp_write_errorf(&x->w,
                              "TRYAGAIN this cluster's promotion (epoch %llu) is not applied by "
                              "partition %u yet: the batches it took before it are applying",
                              (unsigned long long)role->epoch, x->group->id - 1);
            return 1;
        }
        /* A session's opening names no key and writes none of them: libhalyard's writes
         * to the other keys need it. */
        if (role->kind == WAN_ROLE_NONE && x->node->cfg->wan_passive_keys[0] != '\0' &&
            d->handler != cmd_hy_session && passive_for_keys(x, d)) {
            /* Not "READONLY this cluster ...": libhalyard moves to another cluster on those;
             * here only some keys are another region's. */
            resp_write_errorf(&x->w,
                              "READONLY the keys matching '%s' are a passive WAN copy here "
                              "(wan-passive-keys): this cluster takes writes to them, and "
                              "writes naming no key, from its links only",
                              x->node->cfg->wan_passive_keys);
            return 1;
        }
        return 0;
    }
    if (role->kind == WAN_ROLE_PASSIVE) {
        resp_write_errorf(&x->w,
                          "READONLY this cluster was demoted: cluster '%s' was promoted to "
                          "primary in its place (HALYARD WAN PROMOTE, epoch %llu); it takes "
                          "writes from its links only",
                          role->by, (unsigned long long)role->epoch);
    } else {
        resp_write_error(&x->w, "READONLY this cluster is a passive WAN target (wan-passive yes): "
                                "it takes writes from its links only");
    }
    return 1;
}

static int names_one_key(const struct cmd_def *d);

/* by_key: x->group was chosen by the slot of d's first key (command_group). */
static int node_run(struct cmd_ctx *x, const struct cmd_def *d, int by_key)
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    /* The request's verdict of node_must_wait, taken here whatever the answer: a request
     * answered earlier (arity, NOAUTH, NOPERM, -CROSSSLOT) must not leave it to the next one,
     * which was then answered "no leader ... within request-timeout-ms" at once (seed 50
     * --partitions 8: an MGET refused -CROSSSLOT on a node cut off, then an INCR). */
    int timed_out = c->read_timed_out;
    c->read_timed_out = 0;
    x->cmd = d;
    c->last_cmd = d->name;
    if (!node_arity_ok(d, x->argc)) {
        node_reply_arity(&x->w, d->name);
        return 0;
    }
    if (!c->authenticated && !(d->flags & CMD_NOAUTH) && !join_auth_open_before_auth(x)) {
        resp_write_error(&x->w, "NOAUTH Authentication required.");
        return 0;
    }
    if (c->wan_link && !join_auth_wan_link_may(x)) {
        resp_write_error(&x->w, "NOPERM this connection is a WAN link's (HALYARD WAN-AUTH): it may "
                                "send HY.WANAPPLY, HALYARD WAN DEMOTE, CONFIG GET partitions and "
                                "PING only");
        return 0;
    }
    if (!node_pubsub_allowed(c, d, x->argc, x->argv)) {
        resp_write_errorf(&x->w,
                          "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                          "QUIT / RESET are allowed in this context",
                          d->name);
        return 0;
    }
    if (!acl_check(x, d)) {
        return 0; /* NOPERM (acl.c) */
    }
    if (n->group_count > 1 || n->cfg->wan_passive || n->cfg->wan_passive_keys[0] != '\0') {
        if (node_refuse_passive(x, d)) {
            return 0; /* -READONLY: a passive WAN target takes writes from its links only */
        }
        size_t obytes;
        if (x->group != NULL && node_wan_blocked(x->group, &obytes) && node_client_write(x, d)) {
            /* docs/wan.md "Resync": the other choice than dropping changes and resyncing. */
            resp_write_errorf(&x->w,
                              "BUSY the WAN outbox of partition %u is full (%zu bytes, "
                              "wan-queue-full block-writes): writes to it are refused until "
                              "its links' targets catch up",
                              x->group->id - 1, obytes);
            return 0;
        }
    }
    if (!(by_key && names_one_key(d)) && !node_keys_in_group(n, x->group, d, x->argc, x->argv)) {
        /* Redis Cluster's text; here the unit is the partition (a range of slots), so keys
         * of different slots in one partition are fine, and {hash tags} keep keys together. */
        resp_write_error(&x->w, "CROSSSLOT Keys in request don't hash to the same slot");
        return 0;
    }
    if (!node_quorum_check(x, d)) {
        return 0; /* -QUORUM: a split-brain protection rule (quorum.c) */
    }
    int needs_leader = node_needs_leader(n, x->group, c, d); /* asked once: four uses below */
    if (needs_leader && !replica_is_leader(x->group) && node_removed_redirects(n, c)) {
        const struct node_member *m = member_after_removal(n, x->group);
        if (m == NULL) {
            resp_write_error(&x->w, "CLUSTERDOWN this node was removed from the cluster and "
                                    "reaches none of its members; the request was not applied");
        } else {
            node_reply_moved_to(x, d, m);
        }
        return 0;
    }
    if (needs_leader && timed_out) {
        node_reply_no_leader(x, timed_out);
        return 0;
    }
    if (needs_leader && !replica_is_leader(x->group) && node_block_follower_wait(x, d)) {
        /* A blocking command waits for this replica to show data, then goes on; or it was
         * answered here (a blocked XREADGROUP whose group was destroyed: -NOGROUP): it ran,
         * and an error is a failed call, not a rejected one, as Redis counts it. */
        return 1;
    }
    if (needs_leader && !replica_is_leader(x->group) && !c->is_proxy &&
        n->cfg->maxmemory_policy == STORE_NOEVICTION && node_group_raft_view(x->group) &&
        node_refuse_oom(x, d)) {
        /* maxmemory is each node's own limit, as in Redis Cluster, and this node holds the
         * partition too: over it, it refuses what it would have to take (with an evicting
         * policy the leader makes room, and its deletions reach this replica). */
        return 0;
    }
    if (needs_leader && !replica_is_leader(x->group)) {
        /* Proxy by default, so plain clients work against any member; a forwarded request
         * is never forwarded again (the leader moved meanwhile: -MOVED tells the follower it
         * ran nothing, and the follower runs it again: proxy.c). */
        if (n->cfg->redirect == NODE_REDIRECT_PROXY && !c->is_proxy && proxy_forward(x)) {
            return 0;
        }
        if (c->is_proxy && n->partmap != NULL && node_cut_off(n, x->group, x->now_ms)) {
            /* Forwarded here for a partition that lost its majority (with a replication
             * factor below the member count the forwarder may not hold it): say so, rather
             * than -TRYAGAIN until the forwarder's deadline. Nothing was run. */
            node_reply_no_leader(x, 1);
            return 0;
        }
        node_reply_moved(x, d);
        return 0;
    }
    if ((d->flags & CMD_WRITE) && n->disk_full) {
        if (c->outcome_unsure) {
            /* Sent once to a leader that failed: it may be applied; "refused" would be a lie. */
            resp_write_error(&x->w, "UNKNOWN outcome: the write was forwarded to a leader that "
                                    "failed before answering, and this node, leading now, "
                                    "cannot take it again (disk full); it may or may not be "
                                    "applied");
            return 0;
        }
        resp_write_error(&x->w, "READONLY disk full: writes are refused until space is freed; "
                                "reads go on");
        return 0;
    }
    if ((d->flags & CMD_WRITE) && !node_is_script(d) && node_replicas_short(x->group)) {
        resp_write_error(&x->w, "NOREPLICAS Not enough good replicas to write.");
        return 0;
    }
    if (node_refuse_oom(x, d)) {
        return 0;
    }
    n->stats.commands_processed++;
    if (d->flags & (CMD_WRITE | CMD_ADMIN)) {
        /* The periodic walks look again (node_walk_due); reads change nothing they read, and
         * counting them made every walk due at every tick on 5 nodes with RF 3, where each
         * node answers its peers' HY.LEADERS probes several times a second. */
        node_note_activity(n);
    }
    if (c->fwd_seq != 0 && proxy_wrappable(d)) {
        /* Forwarded once under this follower's session and lost with its leader; this node
         * leads now: proposed under the same slot, it is applied once (proxy.c). */
        HY_ASSERT(!n->wrap_active);
        n->wrap_active = 1;
        n->wrap_session = c->fwd_session;
        n->wrap_seq = c->fwd_seq;
        d->handler(x);
        n->wrap_active = 0;
        return 1;
    }
    d->handler(x);
    if (!(d->flags & CMD_WRITE) && x->group != NULL && x->group->wan_out != NULL) {
        node_wan_note_read(x->group, d, x->argc, x->argv); /* HIGHER_HITS counts reads */
    }
    return 1;
}

/* Counts a call of d and its latency: now for a reply given at once; when its entry applies
 * for a write it proposed (the waiter carries the start); none for a request forwarded to the
 * leader (the leader counts it). */
static void node_note_command(struct hy_node *n, struct node_client *c, const struct cmd_def *d,
                              const struct node_waiter *pending, uint64_t started_ms,
                              uint64_t now_ms)
{
    size_t i = (size_t)(d - node_commands);
    HY_ASSERT(i < node_command_count);
    n->metrics.cmd_calls[i]++;
    if (c->forwarding) {
        return;
    }
    struct node_waiter *w = c->last_waiter;
    if (w != NULL && w != pending && w->cmd_index < 0) {
        w->cmd_index = (int)i; /* proposed by this command: latency noted when it applies */
        w->started_ms = started_ms;
        return;
    }
    hy_histo_record_ms(&n->metrics.cmd_latency[i], now_ms - HY_MIN(started_ms, now_ms));
}

/* Commands whose keys follow a numkeys argument (the table's key columns name only the
 * first): the position of numkeys. Matched by handler, not by name: every keyed command of a
 * node with partitions asks (node_keys_in_group), and 18 strcmp calls were ~900 instructions
 * of a SET's ~18,000 (docs/partitioning.md "Where a SET's CPU goes"). */
static size_t numkeys_position(const struct cmd_def *d)
{
    static const struct {
        cmd_handler handler;
        size_t pos;
    } table[] = {{cmd_lmpop, 1},      {cmd_sintercard, 1},  {cmd_zmpop, 1},
                 {cmd_zunion, 1},     {cmd_zinter, 1},      {cmd_zdiff, 1},
                 {cmd_zintercard, 1}, {cmd_zunionstore, 2}, {cmd_zinterstore, 2},
                 {cmd_zdiffstore, 2}, {cmd_blmpop, 2},      {cmd_bzmpop, 2},
                 {cmd_eval, 2},       {cmd_evalsha, 2},     {cmd_eval_ro, 2},
                 {cmd_evalsha_ro, 2}, {cmd_fcall, 2},       {cmd_fcall_ro, 2}};
    for (size_t i = 0; i < HY_ARRAY_LEN(table); i++) {
        if (d->handler == table[i].handler) {
            return table[i].pos;
        }
    }
    return 0;
}

/* XREAD's, XREADGROUP's and MIGRATE's keys: where they begin and how many there are. */
static void node_any_keys(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                          size_t *first, size_t *count)
{
    if (d->handler == cmd_migrate) {
        node_migrate_keys(argc, argv, first, count);
    } else {
        node_xread_keys(argc, argv, first, count);
    }
}

size_t node_first_key(const struct cmd_def *d, size_t argc, const struct resp_arg *argv)
{
    if (d == NULL) {
        return 0;
    }
    if (d->handler == cmd_xread || d->handler == cmd_xreadgroup || d->handler == cmd_migrate) {
        size_t first, count;
        node_any_keys(d, argc, argv, &first, &count);
        return count > 0 ? first : 0;
    }
    return d->first_key > 0 && (size_t)d->first_key < argc ? (size_t)d->first_key : 0;
}

int node_keys_each(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                   int (*fn)(const void *ctx, const struct resp_arg *key), const void *ctx)
{
    if (d->handler == cmd_xread || d->handler == cmd_xreadgroup || d->handler == cmd_migrate) {
        size_t kfirst, kcount;
        node_any_keys(d, argc, argv, &kfirst, &kcount);
        for (size_t i = kfirst; i < kfirst + kcount; i++) {
            if (!fn(ctx, &argv[i])) {
                return 0;
            }
        }
        return 1;
    }
    if (d->first_key <= 0) {
        return -1;
    }
    size_t first = (size_t)d->first_key, step = d->key_step > 0 ? (size_t)d->key_step : 1;
    size_t last = d->last_key < 0 ? argc - (size_t)(-d->last_key) : (size_t)d->last_key;
    size_t pos = numkeys_position(d);
    int64_t numkeys;
    if (pos > 0 && pos < argc && hy_parse_i64(argv[pos].ptr, argv[pos].len, &numkeys) &&
        numkeys >= 0 && (uint64_t)numkeys <= argc - pos - 1) {
        for (size_t i = pos + 1; i <= pos + (size_t)numkeys; i++) {
            if (!fn(ctx, &argv[i])) {
                return 0;
            }
        }
        /* Left to visit: a key before numkeys (the *STORE forms' destination). */
        if (first >= pos) {
            return 1;
        }
        last = first;
    }
    for (size_t i = first; i <= last && i < argc; i += step) {
        if (!fn(ctx, &argv[i])) {
            return 0;
        }
    }
    return 1;
}

static int key_in_group_cb(const void *ctx, const struct resp_arg *key)
{
    const struct node_group *g = ctx;
    return node_group_of_slot(g->node, hy_key_slot(key->ptr, key->len)) == g;
}

/* 1 when every key of the request is in g's partition (or the node has one group). */
int node_keys_in_group(const struct hy_node *n, const struct node_group *g, const struct cmd_def *d,
                       size_t argc, const struct resp_arg *argv)
{
    if (n->group_count == 1 || d == NULL) {
        return 1;
    }
    if (d->handler == cmd_hy_req && argc > 3) {
        const struct cmd_def *inner = node_command_lookup(n, argv[3].ptr, argv[3].len);
        return inner == NULL || inner->handler == cmd_hy_req ||
               node_keys_in_group(n, g, inner, argc - 3, argv + 3);
    }
    if (d->handler == cmd_hy_exec || d->handler == cmd_hy_exec_ro) {
        return node_multi_exec_keys_in_group(n, g, argc, argv);
    }
    return node_keys_each(d, argc, argv, key_in_group_cb, g) != 0; /* -1: no keys */
}

/* node_command_group; *by_key (when not NULL) is set to 1 when the group was chosen by the
 * slot of the key node_first_key names, else left alone. */
static struct node_group *command_group(const struct hy_node *n, const struct cmd_def *d,
                                        size_t argc, const struct resp_arg *argv, int *by_key);

struct node_group *node_command_group(const struct hy_node *n, const struct cmd_def *d, size_t argc,
                                      const struct resp_arg *argv)
{
    return command_group(n, d, argc, argv, NULL);
}

/* 1 when argv[d->first_key] is the only key d names (no numkeys, no key list): a request of
 * it placed by that key's slot (command_group's by_key) is in its group by construction, and
 * node_run does not hash the key a second time for the -CROSSSLOT check (docs/partitioning.md
 * "Row (e) in session 20"). */
static int names_one_key(const struct cmd_def *d)
{
    return d->first_key > 0 && d->last_key == d->first_key && numkeys_position(d) == 0 &&
           d->handler != cmd_xread && d->handler != cmd_xreadgroup && d->handler != cmd_migrate;
}

static struct node_group *command_group(const struct hy_node *n, const struct cmd_def *d,
                                        size_t argc, const struct resp_arg *argv, int *by_key)
{
    if (d != NULL && d->handler == cmd_hy_req && argc > 3) {
        /* HY.REQ session seq command...: the wrapped command's keys decide (sessions live in
         * the store of the partition they were opened for). */
        const struct cmd_def *inner = node_command_lookup(n, argv[3].ptr, argv[3].len);
        if (inner != NULL && inner->handler != cmd_hy_req) {
            return node_command_group(n, inner, argc - 3, argv + 3);
        }
        return n->meta;
    }
    if (d != NULL && (d->handler == cmd_hy_exec || d->handler == cmd_hy_exec_ro)) {
        return node_multi_exec_group(n, argc, argv);
    }
    if (d != NULL && (d->flags & CMD_LIBRARY_READ)) {
        return node_group_of_slot(n, 0); /* the libraries read are slot 0's partition's */
    }
    if (d != NULL && node_is_script(d)) {
        /* EVAL's keys follow numkeys; a script with none runs in slot 0's partition. */
        int64_t numkeys;
        if (argc > 3 && hy_parse_i64(argv[2].ptr, argv[2].len, &numkeys) && numkeys > 0 &&
            (uint64_t)numkeys <= argc - 3) {
            return node_group_of_slot(n, hy_key_slot(argv[3].ptr, argv[3].len));
        }
        return node_group_of_slot(n, 0);
    }
    if (d != NULL &&
        (d->handler == cmd_hy_flushpart || d->handler == cmd_hy_scriptpart ||
         d->handler == cmd_hy_configpart || d->handler == cmd_hy_watchpart ||
         d->handler == cmd_hy_countpart || d->handler == cmd_hy_keyspart ||
         d->handler == cmd_hy_infopart || d->handler == cmd_hy_scanpart ||
         d->handler == cmd_hy_randomkeypart || d->handler == cmd_hy_wanapply) &&
        argc >= 2) {
        int64_t slot;
        if (hy_parse_i64(argv[1].ptr, argv[1].len, &slot) && slot >= 0 && slot < HY_SLOT_COUNT) {
            return node_group_of_slot(n, (uint16_t)slot);
        }
        return n->meta;
    }
    if (d != NULL && d->handler == cmd_hy_session) {
        /* HY.SESSION OPEN [ttl_ms] [SLOT n]: opened in that slot's partition. */
        for (size_t i = 2; i + 1 < argc; i++) {
            int64_t slot;
            if (hy_eq_nocase(argv[i].ptr, argv[i].len, "SLOT") &&
                hy_parse_i64(argv[i + 1].ptr, argv[i + 1].len, &slot) && slot >= 0 &&
                slot < HY_SLOT_COUNT) {
                return node_group_of_slot(n, (uint16_t)slot);
            }
        }
        return n->meta;
    }
    size_t first = node_first_key(d, argc, argv);
    if (first == 0) {
        return n->meta;
    }
    const struct resp_arg *k = &argv[first];
    if (by_key != NULL) {
        *by_key = 1;
    }
    return node_group_of_slot(n, hy_key_slot(k->ptr, k->len));
}

/* A request of a client in MULTI: queued (or refused) and answered here (returns 1), or
 * EXEC, turned into its HY.EXEC request in *d, *argc, *argv (returns -1: run it as any
 * request), or one that does not queue (-1 as well). */
static int node_multi_step(struct hy_node *n, struct node_client *c, const struct cmd_def **d,
                           size_t *argc, const struct resp_arg **argv, uint64_t now_ms)
{
    struct node_group *g = node_command_group(n, *d, *argc, *argv);
    struct cmd_ctx x = {
        .node = n,
        .group = g,
        .store = g->store,
        .client = c,
        .argc = *argc,
        .argv = *argv,
        .now_ms = now_ms,
        .w = {.out = &c->out, .proto = c->proto},
    };
    struct node_waiter *pending = c->last_waiter;
    size_t mark = c->out.len;
    if (*d != NULL && (*d)->handler == cmd_exec) {
        if (node_multi_exec_request(n, c, &x.w, argc, argv)) {
            *d = node_command_lookup(n, (*argv)[0].ptr, (*argv)[0].len); /* HY.EXEC[_RO] */
            HY_ASSERT(*d != NULL);
            return -1;
        }
    } else if (!node_multi_queue(&x, *d)) {
        return -1;
    }
    c->last_ms = now_ms;
    node_defer_reply(c, pending, mark);
    return 1;
}

/* CLIENT REPLY OFF/SKIP: the request's reply is dropped (a write's when it applies), except
 * the subscribe commands' notices, which Redis 7.0 sends as pushes regardless. */
static void node_silence(struct node_client *c, const struct cmd_def *d,
                         const struct node_waiter *pending, size_t mark)
{
    if (d != NULL && (d->handler == cmd_subscribe || d->handler == cmd_psubscribe ||
                      d->handler == cmd_unsubscribe || d->handler == cmd_punsubscribe ||
                      d->handler == cmd_ssubscribe || d->handler == cmd_sunsubscribe)) {
        return;
    }
    if (c->out.len > mark) {
        c->out.len = mark;
    }
    if (c->last_waiter != NULL && c->last_waiter != pending) {
        c->last_waiter->silent = 1;
    }
}

/* Counts a request in INFO commandstats once its fate is known here: refused before it ran,
 * answered (an error reply is a failed call), or proposed (its waiter counts a failure at
 * apply). Nothing while it waits blocked (counted once, when it is answered, as Redis counts
 * a blocked command) or when forwarded (the leader counts it). */
static void note_cmdstat(struct hy_node *n, struct node_client *c, int slot, int ran,
                         const struct node_waiter *pending, size_t mark, uint64_t took_ms)
{
    if (slot < 0 || c->forwarding) {
        return;
    }
    int replied = c->out.len > mark;
    int error = replied && c->out.data[mark] == '-';
    struct node_waiter *w = c->last_waiter != pending ? c->last_waiter : NULL;
    if (!ran) {
        if (error) {
            node_cmdstat_rejected(n, slot);
        }
        return;
    }
    if (c->block_hold && w == NULL && !replied) {
        return;
    }
    /* The core reads no clock of its own: the time is the node's millisecond clock from the
     * request's arrival, so a command answered within the same millisecond counts 0. */
    node_cmdstat_call(n, slot, took_ms * 1000);
    if (w != NULL) {
        w->stat_slot = slot;
    } else if (error) {
        node_cmdstat_failed(n, slot);
    }
}

/* Runs one request. Returns 0 when it must wait (it stays in the input), 1 when done. */
static int node_execute(struct hy_node *n, struct node_client *c, size_t argc,
                        const struct resp_arg *argv, uint64_t now_ms)
{
    const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
    d = node_command_sub(n, d, argc, argv); /* ACL SETUSER: a write, unlike ACL WHOAMI */
    int from_exec = 0;
    if (n->peer_busy_count > 0) {
        struct node_waiter *pending = c->last_waiter;
        size_t mark = c->out.len;
        if (node_busy_elsewhere(n, c, d, argc, argv, now_ms)) {
            /* A peer's script holds it (busy_peers.c): answered -BUSY, or forwarded there. */
            c->last_ms = now_ms;
            node_defer_reply(c, pending, mark);
            return 1;
        }
    }
    if (node_multi_active(c)) {
        int r = node_multi_step(n, c, &d, &argc, &argv, now_ms);
        if (r >= 0) {
            return r; /* queued, or refused, or answered (EXECABORT, an empty EXEC) */
        }
        from_exec = d != NULL && (d->handler == cmd_hy_exec || d->handler == cmd_hy_exec_ro);
    }
    int by_key = 0;
    struct node_group *g = command_group(n, d, argc, argv, &by_key);
    if (node_must_wait(g, c, d, argc, argv, now_ms)) {
        if (c->wait_start_ms == 0) {
            c->wait_start_ms = now_ms; /* its latency counts from here */
        }
        return 0;
    }
    uint64_t started_ms = c->wait_start_ms != 0 ? c->wait_start_ms : now_ms;
    c->wait_start_ms = 0;
    struct cmd_ctx x =
        node_busy_ctx(n, g, c, NULL, argc, argv, now_ms, (struct resp_writer){&c->out, c->proto});
    c->last_ms = now_ms;
    struct node_waiter *pending = c->last_waiter;
    size_t mark = c->out.len;
    if (c->reply_mode == NODE_REPLY_SKIP_NEXT) {
        c->reply_mode = NODE_REPLY_SKIP; /* this command's reply, not CLIENT REPLY SKIP's */
    } else if (c->reply_mode == NODE_REPLY_SKIP) {
        c->reply_mode = NODE_REPLY_ON;
    }
    int silent = c->reply_mode != NODE_REPLY_ON;
    if (c->reply_mode == NODE_REPLY_SKIP) {
        c->reply_mode = NODE_REPLY_ON; /* one command only */
    }
    int ran = 0;
    if (d == NULL) {
        node_reply_unknown_command(&x.w, argc, argv);
    } else {
        ran = node_run(&x, d, by_key);
    }
    node_note_reply(n, c->out.data + mark, c->out.len - mark); /* an immediate reply */
    /* The client sent EXEC: its stats are EXEC's, not those of the HY.EXEC it became. */
    int slot = from_exec ? node_cmdstat_slot(n, node_command_lookup(n, (const uint8_t *)"exec", 4),
                                             1, argv)
                         : node_cmdstat_slot(n, d, argc, argv);
    note_cmdstat(n, c, slot, ran, pending, mark, now_ms - HY_MIN(started_ms, now_ms));
    if (d != NULL && d->handler == cmd_client) {
        silent = c->reply_mode != NODE_REPLY_ON; /* CLIENT REPLY ON answers, OFF/SKIP do not */
    }
    if (silent) {
        node_silence(c, d, pending, mark);
    }
    if (from_exec) {
        node_multi_exec_sent(c); /* proposed, forwarded or answered: the transaction ends */
    }
    if (!c->forwarding) {
        proxy_request_done(n, c); /* done (or proposed here): a new deadline next */
    }
    if (d != NULL) {
        node_note_command(n, c, d, pending, started_ms, now_ms);
    }
    node_defer_reply(c, pending, mark);
    return 1;
}

void node_client_process(struct hy_node *n, struct node_client *c, uint64_t now_ms)
{
    size_t off = 0;
    const unsigned stop = NODE_CLIENT_CLOSE_AFTER_REPLY | NODE_CLIENT_CLOSE_ASAP;
    /* Its input is in use (argv borrows from it): a busy script's poll must not read into it. */
    struct node_client *outer = n->processing;
    n->processing = c;
    c->in_peak = HY_MAX(c->in_peak, c->in.len);
    c->in_partial = 0;
    /* While its forward's frame gathers (fwd_open), the client's next pipelined requests may
     * join it (proxy.c "Batches"); the frame leaves once the loop stops. */
    while (!(c->flags & stop) && !c->blocked_on_read && (!c->forwarding || c->fwd_open != 0) &&
           off < c->in.len && c->block_state == NODE_BLOCK_NONE && !c->held) {
        size_t consumed = 0, argc = 0;
        const struct resp_arg *argv = NULL;
        int rc = resp_request_parse(&c->parser, c->in.data + off, c->in.len - off, &consumed, &argc,
                                    &argv);
        if (rc == HY_EAGAIN) {
            c->in_partial = 1;
            break;
        }
        if (rc != HY_OK) {
            struct node_waiter *pending = c->last_waiter;
            size_t mark = c->out.len;
            struct resp_writer w = {&c->out, c->proto};
            resp_write_errorf(&w, "ERR Protocol error: %s", c->parser.error);
            node_note_reply(n, c->out.data + mark, c->out.len - mark);
            node_defer_reply(c, pending, mark);
            c->flags |= NODE_CLIENT_CLOSE_AFTER_REPLY;
            hy_log(n->log, HY_LOG_INFO, "client %llu (%s): protocol error: %s",
                   (unsigned long long)c->id, c->addr, c->parser.error);
            off = c->in.len;
            break;
        }
        if (c->forwarding && !proxy_batch_joins(n, c, argc, argv, now_ms)) {
            break; /* it runs once the batch is answered */
        }
        proxy_take_held(c); /* the slot it had in a batch that went back to the input */
        /* argv borrows from c->in: execute before the bytes are consumed below. A request
         * that leaves no new write of the client waiting, or a write behind one that waits, is
         * other work than a writer's waiting for its reply (node_turn_busy_take). */
        uint32_t waiting = c->waiting;
        int ran = argc == 0 || node_execute(n, c, argc, argv, now_ms);
        n->turn_busy |= argc > 0 && (c->waiting <= waiting || waiting > 0);
        if (!ran) {
            break; /* it waits for earlier writes or for reads to be possible */
        }
        if (c->block_hold) {
            /* A blocking command waits, or its pop is in flight: it stays in the input until
             * answered (blocking.c). */
            c->block_hold = 0;
            c->block_req_len = consumed;
            break;
        }
        proxy_ryw_reset(c); /* the next request looks at the acknowledged writes afresh */
        off += consumed;
    }
    n->processing = outer;
    n->turn_busy |= c->in_partial; /* the rest of a request is on its way */
    if (c->fwd_open != 0) {
        proxy_batch_close(n, c);
    }
    hy_buf_consume(&c->in, off);
    /* Byte counts that describe the input are rebased on what was consumed. */
    c->read_ok_bytes = c->read_ok_bytes > off ? c->read_ok_bytes - off : 0;
    c->read_reg_bytes = c->read_reg_bytes > off ? c->read_reg_bytes - off : 0;
}

/* ---- periodic work --------------------------------------------------------------------------- */

/* 1 while an internal entry (expiry, eviction, address book) proposed by this node has not
 * applied yet: still in this turn's batch, or submitted at an index not yet applied. One that
 * failed to be proposed was dropped from the turn; one whose leader lost its term is passed by
 * the entries that replaced it. */
static int node_internal_pending(const struct node_group *g)
{
    for (size_t i = 0; i < g->turn_count; i++) {
        if (g->turn[i].waiter == NULL) {
            return 1;
        }
    }
    return g->applied < g->internal_index;
}

static void node_active_expire(struct node_group *g, uint64_t now_ms)
{
    if (!replica_is_leader(g)) {
        return; /* expiry is the leader's decision, replicated as deletions */
    }
    /* The keys of a proposed batch stay in the store until it applies: sampling again before
     * then would propose the same deletions again (issue 20: 10 keys gave 17 entries). */
    if (node_internal_pending(g)) {
        return;
    }
    /* As Redis's active expiry: sample, delete what expired, and go on while a quarter or
     * more of the sample had expired; bounded per call so one cron never stalls the loop.
     * expired_keys counts the deletions when they apply (replica.c). */
    struct hy_buf buf;
    hy_buf_init(&buf);
    if (store_propose_expired_cycle(g->store, now_ms, 20, 16, &buf) > 0) {
        node_propose_internal(g, &buf);
    }
    hy_buf_free(&buf);
}

/* Redis's query buffer resizing (clientsCronResizeQueryBuffer), so an idle client or one
 * past a large request does not keep its largest buffer: a buffer wasting more than 4 KiB is
 * freed once its client has been idle over 2 s with nothing unparsed, or cut to the most it
 * held since the last look when it is over 32 KiB and twice that. Only a client whose input
 * nothing points into (not running, waiting or blocked) is touched. */
static void node_resize_inputs(struct hy_node *n, uint64_t now_ms)
{
    for (struct node_client *c = n->clients; c != NULL; c = c->next) {
        struct hy_buf *in = &c->in;
        int quiet = c != n->processing && c->waiting == 0 && !c->blocked_on_read &&
                    !c->forwarding && c->block_state == NODE_BLOCK_NONE;
        if (quiet && in->cap - in->len > 4096) {
            size_t want = HY_MAX(in->len, c->in_peak);
            if (now_ms > c->last_ms + 2000 && in->len == 0) {
                hy_buf_free(in);
            } else if (in->cap > 32 * 1024 && in->cap / 2 > c->in_peak && want > 0) {
                in->data = hy_xrealloc(in->data, want);
                in->cap = want;
            }
        }
        c->in_peak = in->len;
    }
}

static size_t node_close_idle(struct hy_node *n, uint64_t now_ms)
{
    size_t marked = 0;
    uint64_t idle_ms_max = (uint64_t)n->cfg->timeout * 1000;
    for (struct node_client *c = n->clients; c != NULL; c = c->next) {
        if (idle_ms_max > 0 && !(c->flags & NODE_CLIENT_CLOSE_ASAP) && now_ms > c->last_ms &&
            now_ms - c->last_ms > idle_ms_max) {
            hy_log(n->log, HY_LOG_DEBUG, "closing idle client %llu", (unsigned long long)c->id);
            c->flags |= NODE_CLIENT_CLOSE_ASAP;
            marked++;
        }
    }
    return marked;
}

/* Requests that waited too long for a leader are answered with an error when they run; so
 * are those waiting for one on a node that knows it is cut off from a majority. */
static void node_time_out_reads(struct hy_node *n, uint64_t now_ms)
{
    uint64_t timeout = (uint64_t)n->cfg->request_timeout_ms;
    for (struct node_client *c = n->clients; c != NULL && n->read_waiters > 0; c = c->next) {
        if (c->blocked_on_read && (now_ms >= c->blocked_since_ms + timeout ||
                                   (c->read_id == 0 && !c->outcome_unsure &&
                                    node_cut_off(n, node_group_get(n, c->wait_group), now_ms)))) {
            c->blocked_on_read = 0;
            replica_read_forget(n, c); /* its round's answer, if it comes, is of no use */
            if (c->ryw_wait) {
                /* Its replica did not apply the acknowledged writes in time (or cannot: cut
                 * off): it is decided from the replica as it is, as before the wait. */
                c->ryw_wait = 0;
                c->ryw_gave_up = 1;
            } else {
                c->read_timed_out = 1;
            }
            n->read_waiters--;
            node_client_process(n, c, now_ms);
            replica_mark_ready(n, c);
        }
    }
}

/* Active expiry, eviction and incremental rehashing in every group. Keys come, go and get a
 * TTL, and tables start rehashing, only through commands and Raft steps: without keys that
 * expire, maxmemory or a rehash under way, the groups are looked at only when those moved
 * (node_walk_due), not at every tick. */
static void node_cron_groups(struct hy_node *n, uint64_t now_ms)
{
    if (!node_walk_due(n, &n->cron_walk, now_ms) && n->cron_volatile_keys == 0 &&
        n->cfg->maxmemory == 0 && n->cron_rehashing == 0) {
        return;
    }
    size_t volatile_keys = 0, rehashing = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        node_active_expire(g, now_ms);
        if (n->cfg->maxmemory > 0 && (g != n->meta || n->group_count == 1)) {
            /* With partitions the metadata group holds no user key, only the map (partmap.c):
             * nothing there may be evicted. */
            node_make_room(g, now_ms);
        }
        rehashing += store_rehash_step(g->store, 100) != 0;
        volatile_keys += store_volatile_count(g->store);
    }
    n->cron_volatile_keys = volatile_keys;
    n->cron_rehashing = rehashing;
}

size_t node_cron(struct hy_node *n, uint64_t now_ms)
{
    proxy_check(n, now_ms);
    proxy_wake(n, now_ms);
    node_time_out_reads(n, now_ms);
    node_block_wake(n, now_ms); /* blocking commands past their timeout */
    node_drain_step(n, now_ms);
    node_balance_leaders(n, now_ms);
    member_force_step(n, now_ms);
    member_removal_step(n, now_ms);
    partmap_refresh_hints(n, now_ms);
    member_reconcile(n, now_ms);
    replica_wake_from_removed_leaders(n, now_ms);
    acl_file_startup(n, now_ms);
    node_events_cron(n, now_ms);
    proxy_expire(n, now_ms);
    replica_expire_waiters(n, now_ms);
    node_cron_groups(n, now_ms);
    struct node_stats *st = &n->stats;
    if (now_ms - st->ops_sample_ms >= 1000) {
        st->ops_per_sec =
            (st->commands_processed - st->ops_sample_cmds) * 1000 / (now_ms - st->ops_sample_ms);
        st->ops_sample_cmds = st->commands_processed;
        st->ops_sample_ms = now_ms;
    }
    node_wan_cron(n, now_ms);
    node_resize_inputs(n, now_ms);
    return node_close_idle(n, now_ms) + node_take_kills(n);
}
