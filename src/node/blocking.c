/*
 * blocking.c - BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX and BZMPOP.
 *
 * A blocking command is its non-blocking pop (LMPOP, LMOVE, ZMPOP), proposed once one of its
 * keys holds something, so the pop that reaches the log is an ordinary replicated write and
 * every replica applies the same thing. Until then the client waits on this node, its request
 * left unconsumed at the head of its input (nothing after it runs, as in Redis), and is looked
 * at again whenever its partition's replica on this node applies an entry. While its pop is in
 * flight the request stays there too: if entries ahead of it emptied the key (another client
 * took the element), the pop answers null at apply and the client goes back to waiting
 * instead of seeing a null; at the deadline it gets Redis's null. So an element is popped by
 * exactly one client, and only a timeout answers null.
 *
 * A client of a follower waits on the follower and watches that replica; once it shows data
 * the command goes to the leader like any write. There the forwarded pop never blocks: it
 * answers null if the key was emptied meanwhile, and the follower's client sees that null
 * early (docs/protocol.md). Inside MULTI a blocking command never blocks (Redis 7.0).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "node/node_internal.h"

/* The keys a blocking command waits on: argv[first..first+count). */
struct block_keys {
    size_t first, count;
};

/* Parses a timeout in seconds (Redis accepts a float) into *deadline_ms (UINT64_MAX: none). */
static int parse_timeout(struct cmd_ctx *x, size_t i, uint64_t *deadline_ms)
{
    long double t;
    if (!hy_parse_double(x->argv[i].ptr, x->argv[i].len, 0, &t)) {
        resp_write_error(&x->w, "ERR timeout is not a float or out of range");
        return 0;
    }
    if (t < 0) {
        resp_write_error(&x->w, "ERR timeout is negative");
        return 0;
    }
    long double ms = ceill(t * 1000.0L);
    if (ms > 1e15L) {
        resp_write_error(&x->w, "ERR timeout is out of range");
        return 0;
    }
    *deadline_ms = ms == 0 ? UINT64_MAX : x->now_ms + (uint64_t)ms;
    return 1;
}

/* 1 when one of the keys exists on this replica. On the first look a key of another type
 * counts (the pop answers WRONGTYPE at once, as Redis does); once blocked, only a key of the
 * command's type wakes it (Redis serves blocked clients from keys of their type only). */
static int keys_ready(struct cmd_ctx *x, const struct block_keys *k, int blocked)
{
    enum store_type want =
        x->cmd != NULL && (x->cmd->handler == cmd_bzpopmin || x->cmd->handler == cmd_bzpopmax ||
                           x->cmd->handler == cmd_bzmpop)
            ? STORE_ZSET
            : STORE_LIST;
    for (size_t i = 0; i < k->count; i++) {
        const struct resp_arg *a = &x->argv[k->first + i];
        const struct store_obj *o = store_peek(x->store, a->ptr, a->len, x->now_ms);
        if (o != NULL && (!blocked || store_obj_type(o) == want)) {
            return 1;
        }
    }
    return 0;
}

int node_block_active(const struct node_client *c)
{
    return c->block_state != NODE_BLOCK_NONE;
}

/* Runs pop for x, or makes its client wait. null_bulk: the timeout answers $-1 (BLMOVE). */
static void block_or_pop(struct cmd_ctx *x, size_t timeout_at, const struct block_keys *k,
                         int null_bulk, void (*pop)(struct cmd_ctx *x))
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    uint64_t deadline;
    if (!parse_timeout(x, timeout_at, &deadline)) {
        return;
    }
    if (n->capture != NULL || c->is_proxy) {
        pop(x); /* inside MULTI, or forwarded by a follower that saw data: never blocks */
        return;
    }
    int blocked = c->block_deadline_ms != 0; /* run again after waiting */
    if (!blocked) {
        c->block_deadline_ms = deadline; /* from its first run, not from each retry */
        c->block_order = ++n->block_seq;
    }
    c->block_null_bulk = null_bulk;
    c->block_group = x->group->id;
    c->block_hold = 1;
    if (!keys_ready(x, k, blocked)) {
        c->block_state = NODE_BLOCK_WAITING;
        c->block_seen = x->group->applied;
        n->block_any = 1;
        return;
    }
    struct node_waiter *before = c->last_waiter;
    pop(x);
    if (c->last_waiter != NULL && c->last_waiter != before) {
        c->last_waiter->blocking = 1;
        c->block_state = NODE_BLOCK_POPPING;
        return;
    }
    /* Answered at once (an error): the request is done. */
    c->block_hold = 0;
    c->block_deadline_ms = 0;
}

void node_block_wait_here(struct cmd_ctx *x, uint64_t deadline_ms)
{
    struct node_client *c = x->client;
    if (c->block_deadline_ms == 0) {
        c->block_deadline_ms = deadline_ms;
        c->block_order = ++x->node->block_seq;
    }
    c->block_null_bulk = 0;
    c->block_group = x->group->id;
    c->block_hold = 1;
    c->block_state = NODE_BLOCK_WAITING;
    c->block_seen = x->group->applied;
    x->node->block_any = 1;
}

void node_block_stream(struct cmd_ctx *x, uint64_t timeout_ms, int ready,
                       void (*run)(struct cmd_ctx *x))
{
    struct hy_node *n = x->node;
    struct node_client *c = x->client;
    if (n->capture != NULL || c->is_proxy || c->no_block) {
        /* Inside MULTI or a script, or forwarded by a follower that saw data: never blocks
         * (an XREAD BLOCK among an EXEC's reads waited for ever). */
        run(x);
        return;
    }
    if (!ready) {
        node_block_wait_here(x, timeout_ms == 0 ? UINT64_MAX : x->now_ms + timeout_ms);
        return;
    }
    c->block_null_bulk = 0;
    c->block_group = x->group->id;
    if (c->block_deadline_ms == 0) {
        c->block_deadline_ms = timeout_ms == 0 ? UINT64_MAX : x->now_ms + timeout_ms;
        c->block_order = ++n->block_seq;
    }
    c->block_hold = 1;
    struct node_waiter *before = c->last_waiter;
    run(x);
    if (c->last_waiter != NULL && c->last_waiter != before) {
        c->last_waiter->blocking = 1; /* a null at apply (data taken meanwhile): wait again */
        c->block_state = NODE_BLOCK_POPPING;
        return;
    }
    c->block_hold = 0; /* answered at once (a read, or an error) */
    c->block_deadline_ms = 0;
}

static int mpop_syntax_ok(struct cmd_ctx *x, const struct block_keys *k);

/* Notes the keys c waits on (node_block_feeds_waiter compares a forwarded write's). */
static void note_waited_keys(struct node_client *c, const struct resp_arg *argv,
                             const struct block_keys *k)
{
    if (k->count > NODE_BLOCK_KEYS_MAX) {
        c->block_key_count = NODE_BLOCK_KEYS_ANY;
        return;
    }
    for (size_t i = 0; i < k->count; i++) {
        const struct resp_arg *a = &argv[k->first + i];
        c->block_key_hash[i] = hy_crc64(0, a->ptr, a->len);
    }
    c->block_key_count = (uint32_t)k->count;
}

/* A follower's client: wait here until this replica shows data (returns 1), then forward. */
int node_block_follower_wait(struct cmd_ctx *x, const struct cmd_def *d)
{
    struct node_client *c = x->client;
    if (!(d->flags & CMD_BLOCKING) || c->is_proxy || x->node->capture != NULL) {
        return 0;
    }
    struct block_keys k;
    size_t timeout_at;
    node_block_shape(d, x->argc, x->argv, &k.first, &k.count, &timeout_at);
    note_waited_keys(c, x->argv, &k);
    if (d->handler == cmd_xread || d->handler == cmd_xreadgroup) {
        return node_xread_follower_wait(x, d);
    }
    if (k.count == 0) {
        return 0; /* malformed: the leader answers the error */
    }
    if ((d->handler == cmd_blmpop || d->handler == cmd_bzmpop) && !mpop_syntax_ok(x, &k)) {
        return 1; /* answered at once, as on the leader: Redis checks the syntax before it
                     blocks (a BZMPOP ... bad_where waited out its timeout and answered null) */
    }
    uint64_t deadline;
    if (!parse_timeout(x, timeout_at, &deadline)) {
        return 1; /* answered */
    }
    if (keys_ready(x, &k, c->block_deadline_ms != 0)) {
        /* Forwarded: should the leader answer null (the data was taken first), it waits again
         * with these (proxy.c), as a pop that met a null at apply does here. */
        c->block_fwd_deadline_ms = c->block_deadline_ms != 0 ? c->block_deadline_ms : deadline;
        c->block_fwd_order = c->block_deadline_ms != 0 ? c->block_order : ++x->node->block_seq;
        c->block_deadline_ms = 0;
        return 0;
    }
    if (c->block_deadline_ms == 0) {
        c->block_deadline_ms = deadline;
        c->block_order = ++x->node->block_seq;
    }
    c->block_null_bulk = d->handler == cmd_blmove || d->handler == cmd_brpoplpush;
    c->block_group = x->group->id;
    c->block_hold = 1;
    c->block_state = NODE_BLOCK_WAITING;
    c->pop_root = 0; /* waiting again: no pop of its own under way */
    c->block_seen = x->group->applied;
    x->node->block_any = 1;
    return 1;
}

void node_block_shape(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                      size_t *first, size_t *count, size_t *timeout_at)
{
    *first = 1;
    *count = 0;
    *timeout_at = argc - 1;
    if (d->handler == cmd_xread || d->handler == cmd_xreadgroup) {
        node_xread_keys(argc, argv, first, count);
        *first = *count > 0 ? *first : 1;
    } else if (d->handler == cmd_blmpop || d->handler == cmd_bzmpop) {
        int64_t numkeys;
        *timeout_at = 1;
        if (argc > 3 && hy_parse_i64(argv[2].ptr, argv[2].len, &numkeys) && numkeys > 0 &&
            (uint64_t)numkeys < argc - 3) {
            *first = 3;
            *count = (size_t)numkeys;
        }
    } else if (d->handler == cmd_blmove || d->handler == cmd_brpoplpush) {
        *count = argc >= 4 ? 1 : 0;
    } else if (argc >= 3) {
        *count = argc - 2;
    }
}

/* ---- the commands ------------------------------------------------------------------------- */

static void pop_lists(struct cmd_ctx *x, int right)
{
    size_t n = x->argc - 2;
    struct store_arg *args = hy_xmalloc(n * sizeof(*args));
    for (size_t i = 0; i < n; i++) {
        args[i] = (struct store_arg){x->argv[1 + i].ptr, x->argv[1 + i].len};
    }
    struct store_entry e = {.op = STORE_OP_LMPOP,
                            .flags = STORE_F_FLAT | (right ? STORE_F_RIGHT : 0),
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = 1,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

static void pop_zsets(struct cmd_ctx *x, int right)
{
    size_t n = x->argc - 2;
    struct store_arg *args = hy_xmalloc(n * sizeof(*args));
    for (size_t i = 0; i < n; i++) {
        args[i] = (struct store_arg){x->argv[1 + i].ptr, x->argv[1 + i].len};
    }
    struct store_entry e = {.op = STORE_OP_ZMPOP,
                            .flags = STORE_F_FLAT | (right ? STORE_F_RIGHT : 0),
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .incr = 1,
                            .argc = (uint32_t)n,
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
}

static void pop_left(struct cmd_ctx *x)
{
    pop_lists(x, 0);
}

static void pop_right(struct cmd_ctx *x)
{
    pop_lists(x, 1);
}

static void zpop_min(struct cmd_ctx *x)
{
    pop_zsets(x, 0);
}

static void zpop_max(struct cmd_ctx *x)
{
    pop_zsets(x, 1);
}

/* The non-blocking command with the timeout argument removed (BLMOVE -> LMOVE...). */
static void run_without(struct cmd_ctx *x, size_t drop, void (*handler)(struct cmd_ctx *x))
{
    struct resp_arg *argv = hy_xmalloc(x->argc * sizeof(*argv));
    size_t n = 0;
    for (size_t i = 0; i < x->argc; i++) {
        if (i != drop) {
            argv[n++] = x->argv[i];
        }
    }
    struct cmd_ctx inner = *x;
    inner.argc = n;
    inner.argv = argv;
    handler(&inner);
    hy_free(argv);
}

static void lmove_now(struct cmd_ctx *x)
{
    run_without(x, 5, cmd_lmove);
}

static void rpoplpush_now(struct cmd_ctx *x)
{
    run_without(x, 3, cmd_rpoplpush);
}

static void lmpop_now(struct cmd_ctx *x)
{
    run_without(x, 1, cmd_lmpop);
}

static void zmpop_now(struct cmd_ctx *x)
{
    run_without(x, 1, cmd_zmpop);
}

/* BLMPOP/BZMPOP after the keys: LEFT|RIGHT (MIN|MAX), then at most COUNT n (n >= 1). */
static int mpop_syntax_ok(struct cmd_ctx *x, const struct block_keys *k)
{
    size_t where = k->first + k->count;
    int zset = x->cmd->handler == cmd_bzmpop;
    const struct resp_arg *a = &x->argv[where];
    if (!(zset ? node_arg_is(a, "MIN") || node_arg_is(a, "MAX")
               : node_arg_is(a, "LEFT") || node_arg_is(a, "RIGHT"))) {
        node_reply_syntax_error(x);
        return 0;
    }
    if (where + 1 == x->argc) {
        return 1;
    }
    int64_t count;
    if (where + 3 != x->argc || !node_arg_is(&x->argv[where + 1], "COUNT")) {
        node_reply_syntax_error(x);
        return 0;
    }
    if (!hy_parse_i64(x->argv[where + 2].ptr, x->argv[where + 2].len, &count) || count < 1) {
        resp_write_error(&x->w, "ERR count should be greater than 0");
        return 0;
    }
    return 1;
}

static void blocking(struct cmd_ctx *x, int null_bulk, void (*pop)(struct cmd_ctx *x))
{
    struct block_keys k;
    size_t timeout_at;
    node_block_shape(x->cmd, x->argc, x->argv, &k.first, &k.count, &timeout_at);
    if (k.count == 0) {
        /* BLMPOP/BZMPOP with a bad numkeys: the non-blocking form words the error. */
        int64_t numkeys;
        if (!hy_parse_i64(x->argv[2].ptr, x->argv[2].len, &numkeys) || numkeys < 1) {
            resp_write_error(&x->w, "ERR numkeys should be greater than 0");
        } else {
            node_reply_syntax_error(x);
        }
        return;
    }
    if ((x->cmd->handler == cmd_blmpop || x->cmd->handler == cmd_bzmpop) &&
        !mpop_syntax_ok(x, &k)) {
        return; /* Redis checks the whole syntax before it blocks */
    }
    block_or_pop(x, timeout_at, &k, null_bulk, pop);
}

void cmd_blpop(struct cmd_ctx *x)
{
    blocking(x, 0, pop_left);
}

void cmd_brpop(struct cmd_ctx *x)
{
    blocking(x, 0, pop_right);
}

void cmd_blmove(struct cmd_ctx *x)
{
    blocking(x, 1, lmove_now);
}

void cmd_brpoplpush(struct cmd_ctx *x)
{
    blocking(x, 1, rpoplpush_now);
}

void cmd_blmpop(struct cmd_ctx *x)
{
    blocking(x, 0, lmpop_now);
}

void cmd_bzpopmin(struct cmd_ctx *x)
{
    blocking(x, 0, zpop_min);
}

void cmd_bzpopmax(struct cmd_ctx *x)
{
    blocking(x, 0, zpop_max);
}

void cmd_bzmpop(struct cmd_ctx *x)
{
    blocking(x, 0, zmpop_now);
}

/* ---- waking -----------------------------------------------------------------------------------
 */

/* The blocked request is over (answered): it leaves the input and the client goes on. */
void node_block_done(struct hy_node *n, struct node_client *c)
{
    hy_buf_consume(&c->in, HY_MIN(c->block_req_len, c->in.len));
    c->block_state = NODE_BLOCK_NONE;
    c->block_req_len = 0;
    c->block_deadline_ms = 0;
    proxy_ryw_reset(c);
    replica_mark_ready(n, c);
}

/* A waiter's reply for a blocking pop, written to scratch at apply: a null means entries
 * ahead of it took the data, and the client waits again. Returns 1 when it was delivered. */
int node_block_applied(struct hy_node *n, struct node_client *c, const struct hy_buf *reply,
                       int silent)
{
    int is_null = (reply->len == 5 && (memcmp(reply->data, "*-1\r\n", 5) == 0 ||
                                       memcmp(reply->data, "$-1\r\n", 5) == 0)) ||
                  (reply->len == 3 && memcmp(reply->data, "_\r\n", 3) == 0);
    if (is_null) {
        c->block_state = NODE_BLOCK_WAITING;
        c->block_seen = 0; /* look again at the next wake */
        n->block_any = 1;
        return 0;
    }
    if (!silent) { /* CLIENT REPLY OFF drops it */
        hy_buf_append(node_client_out(c), reply->data, reply->len);
    }
    node_block_done(n, c);
    return 1;
}

void node_block_unblock(struct hy_node *n, struct node_client *c, int error, uint64_t now_ms)
{
    HY_ASSERT(c->block_state == NODE_BLOCK_WAITING);
    struct resp_writer w = {&c->out, c->proto};
    if (error) {
        resp_write_error(&w, "UNBLOCKED client unblocked via CLIENT UNBLOCK");
    } else if (c->block_null_bulk) {
        resp_write_null(&w);
    } else {
        resp_write_null_array(&w);
    }
    node_block_done(n, c);
    if (now_ms != 0) {
        node_client_process(n, c, now_ms); /* requests behind it (0: the caller is running a
                                              command; the next wake runs them) */
    }
}

static int by_block_order(const void *a, const void *b)
{
    uint64_t x = (*(struct node_client *const *)a)->block_order;
    uint64_t y = (*(struct node_client *const *)b)->block_order;
    return x < y ? -1 : x > y;
}

/* ---- a push and the pops it feeds ------------------------------------------------------------
 *
 * Redis serves the clients blocked on a key before it answers the command that pushed to it:
 * once RPUSH list1 foo is answered, a BLMOVE list1 list2 waiting on list1 has moved foo, and a
 * BLMOVE list2 list3 waiting on list2 has moved it on (Redis's "Linked LMOVEs"); a WATCH of
 * list2 sees the change ("PUSH resulting from BRPOPLPUSH affect WATCH"). Here each woken pop is
 * a log entry of its own, proposed after the push applied, so the pushing client would get its
 * reply while the pops are still in flight and could read the list before them.
 *
 * So the replies written at apply while some client is blocked are noted, and a wake pass that
 * proposes pops holds back the replies of the entries applied since the previous pass (the
 * entries that may have fed them; more would be a guess at which keys each touched): they
 * go out once no pop of that group is pending whose root is at or before the client's write.
 * A pop's root is the earliest entry of the pass that woke it, or, when a pop's apply woke it,
 * that pop's root: so a chain of pops keeps the root of the push that started it, while pops
 * that later writes fed have later roots and never hold an earlier writer. A held client runs
 * nothing more until it is released (its replies stay in order), and what its pending writes
 * answer meanwhile joins the held replies. A follower's forward is held the same way (its
 * reply goes back once released, proxy_maybe_finish), so a client of the follower that
 * pushed reads what the pops on the leader did. */

struct hy_buf *node_client_out(struct node_client *c)
{
    return c->held ? &c->held_out : &c->out;
}

void node_block_note_apply(struct node_group *g, uint64_t index, const struct node_waiter *w,
                           struct node_client *c, size_t mark)
{
    struct hy_node *n = g->node;
    uint64_t root = w != NULL && w->wake_root != 0 ? w->wake_root : index;
    if (g->wake_root_pass != n->wake_pass || root < g->wake_root) {
        g->wake_root = root;
        g->wake_root_pass = n->wake_pass;
    }
    if (c == NULL || c->scatter_parent != NULL || c->is_scatter_orphan) {
        return;
    }
    if (c->held) {
        /* Its reply went behind the held ones; a pop it feeds holds it on (its index). */
        if (c->held_group == g->id) {
            c->held_index = HY_MAX(c->held_index, index);
        }
        return;
    }
    size_t slot = c->replied_slot;
    if (c->replied_pass == n->wake_pass && slot < n->replied_count &&
        n->replied[slot].client == c) {
        n->replied[slot].index = index; /* its first reply's mark, its last write */
        n->replied[slot].group = g->id;
        return;
    }
    if (n->replied_count == n->replied_cap) {
        n->replied_cap = n->replied_cap ? n->replied_cap * 2 : 16;
        n->replied = hy_xrealloc(n->replied, n->replied_cap * sizeof(*n->replied));
    }
    c->replied_slot = n->replied_count;
    c->replied_pass = n->wake_pass;
    n->replied[n->replied_count++] = (struct node_replied){c, g->id, index, mark};
}

void node_block_client_gone(struct hy_node *n, struct node_client *c)
{
    for (size_t i = 0; i < n->replied_count; i++) {
        if (n->replied[i].client == c) {
            n->replied[i].client = NULL;
        }
    }
    if (c->held) {
        c->held = 0;
        HY_ASSERT(n->held_count > 0);
        n->held_count--;
    }
}

/* Whether a pop of g fed, directly or through other pops, by entries up to index is pending. */
static int pops_pending(const struct node_group *g, uint64_t index)
{
    for (const struct node_waiter *w = g->waiters_head; w != NULL; w = w->next) {
        if (w->wake_root != 0 && w->wake_root <= index) {
            return 1;
        }
    }
    return 0;
}

/* The replies noted in this pass whose group woke pops in it are held back. */
static void hold_fed(struct hy_node *n)
{
    for (size_t i = 0; i < n->replied_count; i++) {
        struct node_replied *r = &n->replied[i];
        struct node_client *c = r->client;
        struct node_group *g = node_group_get(n, r->group);
        if (c == NULL || c->held || g == NULL || g->wake_popped_pass != n->wake_pass) {
            continue;
        }
        size_t mark = HY_MIN(r->mark, c->out.len);
        hy_buf_append(&c->held_out, c->out.data + mark, c->out.len - mark);
        c->out.len = mark;
        c->held = 1;
        c->held_group = r->group;
        c->held_index = r->index;
        n->held_count++;
    }
    n->replied_count = 0;
}

/* ---- a push through a follower -------------------------------------------------------------
 *
 * A follower's blocked clients wait on its replica, and their pops are forwarded like any
 * write (above): the leader answers a push the follower forwarded before this replica even
 * applied it, let alone woke the clients it feeds. So the reply to a forwarded write of a key
 * some client here waits on (as it was forwarded: node_block_feeds_waiter) is held until this
 * replica applied the leader's applied index that came with it (the write's entry, at least),
 * the wake pass after it ran, and the pops that woke here with a root at or before that index
 * are answered. A pop's root is the earliest entry of the pass that woke it; a pop's own reply
 * is held the same way while others wait on its keys (a chain of BLMOVEs: "Linked LMOVEs"),
 * so a push waits for the whole chain. Writes of other keys are answered at once. The wait is
 * bounded by request-timeout-ms (a pop lost with its leader is run again meanwhile). */

struct feeds_ctx {
    const struct hy_node *n;
    uint32_t group;
};

/* 0 (stop) when a client of this node waits on key in the group (or on more keys than it
 * noted). A hash collision only holds a reply for nothing. */
static int key_not_waited_cb(const void *ctx, const struct resp_arg *key)
{
    const struct feeds_ctx *f = ctx;
    uint64_t h = hy_crc64(0, key->ptr, key->len);
    for (const struct node_client *c = f->n->clients; c != NULL; c = c->next) {
        if (c->block_state != NODE_BLOCK_WAITING || c->block_group != f->group) {
            continue;
        }
        if (c->block_key_count == NODE_BLOCK_KEYS_ANY) {
            return 0;
        }
        for (uint32_t i = 0; i < c->block_key_count; i++) {
            if (c->block_key_hash[i] == h) {
                return 0;
            }
        }
    }
    return 1;
}

int node_block_feeds_waiter(const struct hy_node *n, const struct node_group *g,
                            const struct cmd_def *d, size_t argc, const struct resp_arg *argv)
{
    if (!n->block_any) {
        return 0; /* nobody waits: the common case costs nothing */
    }
    struct feeds_ctx f = {n, g->id};
    if (d->handler != cmd_hy_req) {
        int rc = node_keys_each(d, argc, argv, key_not_waited_cb, &f);
        if (rc >= 0) {
            return rc == 0;
        }
    }
    /* A command without key columns (EXEC, a session's HY.REQ) may write any key: it is held
     * whenever someone waits in the group. */
    for (const struct node_client *c = n->clients; c != NULL; c = c->next) {
        if (c->block_state == NODE_BLOCK_WAITING && c->block_group == g->id) {
            return 1;
        }
    }
    return 0;
}

int node_block_hold_forwarded(struct hy_node *n, struct node_client *c, struct node_group *g,
                              uint64_t index, const uint8_t *data, size_t len, uint64_t now_ms)
{
    if (index == 0 || c->is_proxy || c->held) {
        return 0;
    }
    hy_buf_append(&c->held_out, data, len);
    c->held = 1;
    c->held_follower = 1;
    c->held_group = g->id;
    c->held_index = index;
    c->held_since_ms = now_ms;
    n->held_count++;
    return 1;
}

/* Whether a pop woken here (other than self's) with a root at or before index is under way. */
static int follower_pops_pending(const struct hy_node *n, uint32_t group, uint64_t index,
                                 const struct node_client *self)
{
    for (const struct node_client *c = n->clients; c != NULL; c = c->next) {
        if (c != self && c->pop_root != 0 && c->pop_root <= index && c->block_group == group) {
            return 1;
        }
    }
    return 0;
}

/* Whether held client c may have its replies now. */
static int held_done(const struct hy_node *n, const struct node_client *c, uint64_t now_ms)
{
    const struct node_group *g = node_group_get(n, c->held_group);
    if (g == NULL) {
        return 1;
    }
    if (!c->held_follower) {
        return !pops_pending(g, c->held_index);
    }
    if (now_ms >= c->held_since_ms + (uint64_t)n->cfg->request_timeout_ms) {
        return 1; /* a bound, not an answer: a pop lost with its leader runs again meanwhile */
    }
    return g->applied >= c->held_index && !follower_pops_pending(n, g->id, c->held_index, c);
}

/* Held clients whose pops have all applied (or failed) get their replies and go on; again
 * while one went (a held pop's release may free the push that fed it). */
static void release_held(struct hy_node *n, uint64_t now_ms)
{
    int again = 1;
    while (again && n->held_count > 0) {
        again = 0;
        for (struct node_client *c = n->clients; c != NULL; c = c->next) {
            if (!c->held || !held_done(n, c, now_ms)) {
                continue;
            }
            again |= c->pop_root != 0;
            int process = c->held_follower || c->is_proxy;
            c->held = 0;
            c->held_follower = 0;
            c->pop_root = 0;
            n->held_count--;
            hy_buf_append(&c->out, c->held_out.data, c->held_out.len);
            hy_buf_reset(&c->held_out);
            replica_mark_ready(n, c);
            if (process) {
                /* Its next requests (a forward's reply or a timer may have got here: no pass
                 * of the ready clients follows, as one does after an apply). A follower's
                 * forward has its HY.APPLIED behind the held write: answered now, the reply
                 * can go back (proxy_maybe_finish waits for an empty input). */
                node_client_process(n, c, now_ms);
            }
        }
    }
}

void node_block_release(struct hy_node *n, uint64_t now_ms)
{
    release_held(n, now_ms);
}

/* Clients waiting on groups that applied entries since they looked run again; those past
 * their deadline get Redis's null. */
static void wake_waiting(struct hy_node *n, uint64_t now_ms)
{
    if (!n->block_any) {
        return; /* nobody has waited since the last pass found none: no walk of the clients */
    }
    n->block_any = 0;
    /* In the order they blocked, as Redis serves blocked clients. Only waiting clients are
     * collected; serving one may change others' state (checked again below). */
    size_t count = 0, cap = 0;
    struct node_client **v = NULL;
    for (struct node_client *c = n->clients; c != NULL; c = c->next) {
        if (c->block_state == NODE_BLOCK_WAITING) {
            if (count == cap) {
                cap = cap ? cap * 2 : 8;
                v = hy_xrealloc(v, cap * sizeof(*v));
            }
            v[count++] = c;
        }
    }
    if (count > 1) {
        qsort(v, count, sizeof(*v), by_block_order); /* never with NULL: UB for qsort */
    }
    for (size_t i = 0; i < count; i++) {
        struct node_client *c = v[i];
        if (c->block_state != NODE_BLOCK_WAITING) {
            continue;
        }
        n->block_any = 1; /* still one (set again if it is served below: harmless) */
        struct node_group *g = node_group_get(n, c->block_group);
        if (now_ms >= c->block_deadline_ms) {
            node_block_unblock(n, c, 0, now_ms); /* Redis's null at the timeout */
            continue;
        }
        if (g == NULL || g->applied == c->block_seen) {
            continue;
        }
        c->block_state = NODE_BLOCK_NONE;
        c->block_seen = g->applied;
        struct node_waiter *before = c->last_waiter;
        node_client_process(n, c, now_ms);
        /* Fed by this pass's entries (or, if none applied here in it, by what applied
         * before, which is no later). */
        uint64_t root = g->wake_root_pass == n->wake_pass ? g->wake_root : g->applied;
        if (c->block_state == NODE_BLOCK_POPPING && c->last_waiter != NULL &&
            c->last_waiter != before) {
            c->last_waiter->wake_root = root; /* its pop is proposed */
            g->wake_popped_pass = n->wake_pass;
        } else if (c->block_state == NODE_BLOCK_NONE &&
                   (c->forwarding || (c->blocked_on_read && c->ryw_wait))) {
            /* A follower's pop, on its way to the leader (or first waiting for this replica
             * to apply what was acknowledged: then forwarded, or waiting again). Not a read
             * answered here (a follower's XREAD): nothing would clear its root. */
            c->pop_root = root;
        }
        replica_mark_ready(n, c);
    }
    hy_free(v);
}

void node_block_wake(struct hy_node *n, uint64_t now_ms)
{
    wake_waiting(n, now_ms);
    hold_fed(n);
    release_held(n, now_ms);
    n->wake_pass++;
}
