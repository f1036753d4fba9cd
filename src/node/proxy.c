/*
 * proxy.c - followers forward requests to the leader (redirect: proxy, the default), so plain
 * clients behind a load balancer work against any member.
 *
 * A follower re-encodes the request, sends it to the leader in a FORWARD frame and the client
 * waits; the leader runs it on an internal client (authenticated by the follower already) and
 * sends back the reply bytes, which the follower hands over unchanged.
 *
 * Failover (issue 9). A request goes only to a leader whose link is up (dispatch.c waits for
 * one otherwise, as during an election). A forward that is known never to have reached the
 * leader (the transport dropped the frame, or the leader answered -MOVED: it no longer leads
 * and ran nothing) is run again from the start: it waits for the next leader and goes there,
 * or runs here if this node leads now. A read whose leader failed is simply run again.
 *
 * A write is never re-applied blindly (Redis-Raft's proxy looped re-applying commands; Jepsen
 * 2020): the follower forwards each data write inside HY.REQ under an exactly-once session of
 * its own (opened on first use, renewed by use, reopened when lost), one seq per write. When
 * its leader fails before answering, the write is sent again, same session and seq, to the
 * next leader (or proposed here under them, if this node leads now): applied once whatever
 * the first leader did, and the client gets the command's real reply. The store admits seqs
 * in any order within a window (store.h); the follower keeps its unresolved seqs within it.
 * A client's own HY.REQ is re-sent the same way. Only writes that cannot travel in a session
 * (HY.SESSION itself) still end -UNKNOWN when their leader fails.
 *
 * Acknowledged writes (read-your-writes). A follower decides a few things from its own
 * replica: whether a blocking command can be served now, INFO's counters, CONFIG GET's
 * encoding thresholds, AUTH's (and HELLO AUTH's) users. Its replica learns that an entry committed
 * only from the leader's next message, so right after the leader acknowledged a client's write it
 * may not hold it yet: a BLPOP after the client's own LPUSH would block, a BZPOPMIN of a key it
 * just SET would not answer WRONGTYPE. So behind every write it forwards, the follower asks
 * HY.APPLIED: the leader answers it after the write (a request's replies keep their order), with
 * its applied index, which is at least the write's entry. The follower strips that answer from the
 * reply, keeps the highest index per group (acked_index), and a command it decides from its replica
 * first waits until the replica applied as far as acked_index was when it looked, bounded by
 * request-timeout-ms (then it goes on as before). The index is the node's, not the client's:
 * a write acknowledged to any client of this follower is seen by every command after it, as
 * on one Redis server (a test's BLPOP on one connection after an LPUSH on another).
 *
 * Batches. A client waits for its forward's reply before its next request runs (replies keep
 * the order of requests, and each request sees the effects of those before it). A pipelined
 * client's writes would so cross to the leader one round trip (and one commit) at a time: a
 * follower's -P 16 clients cost 5-6x the CPU per SET of the leader's own (docs/partitioning.md).
 * So while a client's forward of a session write is being built, its next pipelined requests
 * that are the same command, in the same partition, to the same leader, and that this node
 * would not answer itself (ACL, quorum rules, the window of the session), go in the same frame,
 * each under its own slot of the follower's session, up to PROXY_BATCH_MAX; the frame leaves
 * when the client's processing stops (proxy_batch_close). The leader runs them in order on one
 * internal client, as it runs a pipeline of its own clients: proposed in one turn, answered in
 * one frame, which the follower splits into the requests' replies. Every reply that is not a
 * final answer (-MOVED, -TRYAGAIN, -UNKNOWN, an expired session, a refusal of a re-sent copy)
 * sends that request and every one after it back to the client's input with their slots
 * (c->fwd_held, taken again in order): the replies before it go out, and those after it are
 * asked again under the same slots, so each is applied once whatever its first copy did.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define PROXY_BATCH_MAX 64 /* requests in one forward's frame */

void node_outbox_push(struct hy_node *n, int kind, const char *to, uint64_t req_id,
                      const uint8_t *data, size_t len)
{
    struct node_peer_msg *m = hy_xcalloc(1, sizeof(*m));
    m->kind = kind;
    snprintf(m->to, sizeof(m->to), "%s", to);
    m->req_id = req_id;
    hy_buf_init(&m->data);
    hy_buf_append(&m->data, data, len);
    if (n->outbox_tail != NULL) {
        n->outbox_tail->next = m;
    } else {
        n->outbox_head = m;
    }
    n->outbox_tail = m;
}

struct node_peer_msg *node_take_peer_msg(struct hy_node *n)
{
    struct node_peer_msg *m = n->outbox_head;
    if (m != NULL) {
        n->outbox_head = m->next;
        if (n->outbox_head == NULL) {
            n->outbox_tail = NULL;
        }
        m->next = NULL;
    }
    return m;
}

void node_peer_msg_free(struct node_peer_msg *m)
{
    hy_buf_free(&m->data);
    hy_free(m);
}

/* ---- the follower's side ------------------------------------------------------------------- */

/* The request as a RESP multibulk (what the client sent, re-encoded), inside HY.REQ when
 * `seq` is not 0. */
static void encode_request(const struct cmd_ctx *x, uint64_t session, uint64_t seq,
                           struct hy_buf *out)
{
    if (seq != 0) {
        char a[24], b[24];
        int la = snprintf(a, sizeof(a), "%llu", (unsigned long long)session);
        int lb = snprintf(b, sizeof(b), "%llu", (unsigned long long)seq);
        hy_buf_printf(out, "*%zu\r\n$6\r\nHY.REQ\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", x->argc + 3, la, a,
                      lb, b);
    } else {
        hy_buf_printf(out, "*%zu\r\n", x->argc);
    }
    for (size_t i = 0; i < x->argc; i++) {
        hy_buf_printf(out, "$%zu\r\n", x->argv[i].len);
        hy_buf_append(out, x->argv[i].ptr, x->argv[i].len);
        hy_buf_append(out, "\r\n", 2);
    }
}

/* The member a request may be forwarded to now: the known leader, when its link is up.
 * NULL while none is known, or while the one known is unreachable (killed, partitioned):
 * forwarding into a dead link would only wait out the deadline. */
const struct node_member *proxy_target(const struct node_group *g)
{
    const struct hy_node *n = g->node;
    const struct node_member *leader = partmap_leader_member(g);
    if (leader == NULL || leader->id == g->raft.cfg.id) {
        return leader;
    }
    return n->member_up[leader - n->members] ? leader : NULL;
}

/* ---- the follower's own session --------------------------------------------------------- */

#define FSESSION_TTL_MS 600000 /* renewed by every write; reopened after half of it idle */
#define FSESSION_OFF_MS 1000   /* after an OPEN refused: forward without a session meanwhile */

int proxy_wrappable(const struct cmd_def *d)
{
    /* MIGRATE's effects are the target's RESTOREs and a DEL of its own (cmd_migrate.c): it is
     * forwarded as it is, as HY.SESSION is. */
    return (d->flags & CMD_WRITE) && d->handler != cmd_hy_req && d->handler != cmd_hy_session &&
           d->handler != cmd_migrate;
}

static struct node_forward *forward_new(struct hy_node *n, struct node_client *c,
                                        const struct node_member *leader, uint64_t sent_ms)
{
    if (n->forward_count == n->forward_cap) {
        n->forward_cap = n->forward_cap ? n->forward_cap * 2 : 16;
        n->forwards = hy_xrealloc(n->forwards, n->forward_cap * sizeof(*n->forwards));
    }
    struct node_forward *f = &n->forwards[n->forward_count++];
    *f = (struct node_forward){
        .req_id = ++n->next_forward_id, .client = c, .sent_ms = sent_ms, .leader = leader->id};
    snprintf(f->to, sizeof(f->to), "%s", leader->name);
    hy_buf_init(&f->req);
    hy_buf_init(&f->frame);
    return f;
}

static void fsession_reset(struct node_group *g)
{
    g->fsession = 0;
    g->fsession_live_count = 0;
}

/* Clients waiting for the session or for room in its window look again, at the next safe
 * point (proxy_wake: never from inside a client's processing). */
static void fsession_wake(struct node_group *g)
{
    if (g->fsession_waiters) {
        g->fsession_waiters = 0;
        g->node->fsession_wake = 1;
    }
}

void proxy_wake(struct hy_node *n, uint64_t now_ms)
{
    if (n->fsession_wake) {
        n->fsession_wake = 0;
        replica_wake(n, now_ms);
    }
}

/* Seq `seq` of `session` is resolved: the window may move past it. */
static void fsession_release(struct hy_node *n, uint64_t session, uint64_t seq)
{
    struct node_group *g = node_group_get(n, (uint32_t)(session >> NODE_SESSION_GROUP_SHIFT));
    if (seq == 0 || g == NULL || session != g->fsession) {
        return;
    }
    size_t lo = 0, hi = g->fsession_live_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->fsession_live[mid] < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < g->fsession_live_count && g->fsession_live[lo] == seq) {
        memmove(&g->fsession_live[lo], &g->fsession_live[lo + 1],
                (g->fsession_live_count - lo - 1) * sizeof(*g->fsession_live));
        g->fsession_live_count--;
        fsession_wake(g);
    }
}

void proxy_request_done(struct hy_node *n, struct node_client *c)
{
    fsession_release(n, c->fwd_session, c->fwd_seq);
    c->fwd_session = c->fwd_seq = 0;
    c->fwd_took = 0;
    c->outcome_unsure = 0;
    c->retry_since_ms = 0;
}

static void fsession_open(struct node_group *g, const struct node_member *leader, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    struct node_forward *f = forward_new(n, NULL, leader, now_ms);
    f->opens_session = 1;
    f->group = g->id;
    g->fsession_open_req = f->req_id;
    struct hy_buf frame;
    hy_buf_init(&frame);
    hy_buf_append_u8(&frame, 2);
    if (g == n->meta) {
        hy_buf_printf(&frame, "*3\r\n$10\r\nHY.SESSION\r\n$4\r\nOPEN\r\n$6\r\n%d\r\n",
                      FSESSION_TTL_MS);
    } else {
        /* In the partition's own store: its first slot names it. */
        char slot[8];
        struct node_group *const *groups;
        size_t parts = node_data_groups(n, &groups);
        int len = snprintf(slot, sizeof(slot), "%u",
                           (unsigned)(((uint64_t)(g->id - 1) * HY_SLOT_COUNT + parts - 1) / parts));
        hy_buf_printf(
            &frame,
            "*5\r\n$10\r\nHY.SESSION\r\n$4\r\nOPEN\r\n$6\r\n%d\r\n$4\r\nSLOT\r\n$%d\r\n%s\r\n",
            FSESSION_TTL_MS, len, slot);
    }
    node_outbox_push(n, NODE_FORWARD, leader->name, f->req_id, frame.data, frame.len);
    hy_buf_free(&frame);
}

/* Whether g's session is open with room in its window for one more unresolved seq. */
static int fsession_room(const struct node_group *g)
{
    return g->fsession != 0 && (g->fsession_live_count == 0 ||
                                g->fsession_next_seq - g->fsession_live[0] < STORE_SESSION_WINDOW);
}

/* The next seq of g's session, unresolved until released (fsession_room said there is room). */
static uint64_t fsession_take(struct node_group *g, uint64_t now_ms)
{
    /* Live seqs are distinct and within the window of the oldest: never more than it. */
    HY_ASSERT(g->fsession_live_count < STORE_SESSION_WINDOW);
    if (g->fsession_live == NULL) {
        g->fsession_live = hy_xcalloc(STORE_SESSION_WINDOW, sizeof(*g->fsession_live));
    }
    uint64_t seq = g->fsession_next_seq++;
    g->fsession_live[g->fsession_live_count++] = seq;
    g->fsession_used_ms = now_ms;
    return seq;
}

int proxy_hold(struct node_group *g, struct node_client *c, const struct cmd_def *d,
               uint64_t now_ms)
{
    const struct node_member *leader = proxy_target(g);
    /* One session per group: each lives in its group's store. */
    if (d == NULL || !proxy_wrappable(d) || c->is_proxy || c->fwd_seq != 0 || leader == NULL ||
        leader->id == g->raft.cfg.id || now_ms < g->fsession_off_until_ms) {
        return 0;
    }
    if (g->fsession != 0 && g->fsession_live_count == 0 &&
        now_ms >= g->fsession_used_ms + FSESSION_TTL_MS / 2) {
        fsession_reset(g); /* idle long enough that it may expire before the next write */
    }
    if (g->fsession == 0) {
        if (g->fsession_open_req == 0) {
            fsession_open(g, leader, now_ms);
        }
        g->fsession_waiters = 1;
        return 1;
    }
    if (!fsession_room(g)) {
        g->fsession_waiters = 1; /* its oldest unresolved seq would fall out of the window */
        return 1;
    }
    return 0;
}

/* The session slot the client's write travels under: the one it holds already (sent before
 * and lost), or the next of the follower's session. 0 when it travels as written. */
static void forward_slot(struct cmd_ctx *x, struct node_forward *f)
{
    struct node_group *g = x->group;
    struct node_client *c = x->client;
    if (c->fwd_seq == 0 && proxy_wrappable(x->cmd) && fsession_room(g)) {
        c->fwd_session = g->fsession;
        c->fwd_seq = fsession_take(g, x->now_ms);
    }
    if (c->fwd_seq != 0 && proxy_wrappable(x->cmd) &&
        !(x->node->mutation == NODE_MUT_RESEND_BARE &&
          c->outcome_unsure)) { /* the bug under test */
        f->session = c->fwd_session;
        f->seq = c->fwd_seq;
    }
    f->resend = f->seq != 0 || x->cmd->handler == cmd_hy_req;
}

/* ---- acknowledged writes (read-your-writes) ------------------------------------------------ */

#define APPLIED_UNKNOWN_MS                                                \
    60000 /* a member of a version before HY.APPLIED is asked again after \
           */

/* Whether member `name` may be asked HY.APPLIED: not if it answered it as an unknown command
 * within APPLIED_UNKNOWN_MS (a version before it, during a rolling upgrade; asked again later,
 * as it may have been upgraded meanwhile). */
static int applied_known(struct hy_node *n, const char *name, uint64_t now_ms)
{
    for (size_t i = 0; i < HY_ARRAY_LEN(n->applied_unknown); i++) {
        if (strcmp(n->applied_unknown[i].name, name) == 0) {
            if (now_ms < n->applied_unknown[i].until_ms) {
                return 0;
            }
            n->applied_unknown[i].name[0] = '\0';
        }
    }
    return 1;
}

static void applied_unknown_note(struct hy_node *n, const char *name, uint64_t now_ms)
{
    size_t free_row = SIZE_MAX;
    for (size_t i = 0; i < HY_ARRAY_LEN(n->applied_unknown); i++) {
        if (n->applied_unknown[i].name[0] == '\0' || now_ms >= n->applied_unknown[i].until_ms) {
            free_row = i;
            break;
        }
    }
    if (free_row == SIZE_MAX) {
        return; /* more old members than rows: they are asked, and answer an error, each time */
    }
    hy_log(n->log, HY_LOG_INFO,
           "member %s does not know HY.APPLIED (an earlier version): writes forwarded to it "
           "for the next %d ms carry no applied index (no read-your-writes wait after them)",
           name, APPLIED_UNKNOWN_MS);
    snprintf(n->applied_unknown[free_row].name, sizeof(n->applied_unknown[free_row].name), "%s",
             name);
    n->applied_unknown[free_row].until_ms = now_ms + APPLIED_UNKNOWN_MS;
}

/* The reply to a forward that asked HY.APPLIED ends with that answer, one line: `:index` or
 * an error (a member of an earlier version: unknown command). Returns the length of the
 * request's own reply before it and sets *index (0: none). A reply that does not end so (it
 * cannot, as both requests are always answered in order) is left whole. */
static size_t applied_strip(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                            uint64_t *index, uint64_t now_ms)
{
    *index = 0;
    if (len < 4 || data[len - 2] != '\r' || data[len - 1] != '\n') {
        return len;
    }
    size_t start = len - 2;
    while (start > 0 && !(data[start - 1] == '\n' && start >= 2 && data[start - 2] == '\r')) {
        start--;
    }
    if (start == 0) {
        return len; /* one line: the request's reply alone */
    }
    const uint8_t *line = data + start;
    size_t line_len = len - 2 - start;
    if (line_len >= 2 && line[0] == ':') {
        uint64_t v = 0;
        for (size_t k = 1; k < line_len; k++) {
            if (line[k] < '0' || line[k] > '9' || v > UINT64_MAX / 10 - 1) {
                return len;
            }
            v = v * 10 + (uint64_t)(line[k] - '0');
        }
        *index = v;
        return start;
    }
    if (line_len >= 1 && line[0] == '-') {
        static const char unknown[] = "-ERR unknown command";
        if (line_len >= sizeof(unknown) - 1 && memcmp(line, unknown, sizeof(unknown) - 1) == 0) {
            applied_unknown_note(n, from, now_ms);
        }
        return start;
    }
    return len;
}

static void applied_note(struct node_group *g, uint64_t index)
{
    if (index > g->acked_index) {
        g->acked_index = index;
    }
}

void cmd_hy_applied(struct cmd_ctx *x)
{
    int64_t id;
    if (!node_arg_i64(x, 1, &id)) {
        return;
    }
    const struct node_group *g =
        id >= 0 && id <= UINT32_MAX ? node_group_get(x->node, (uint32_t)id) : NULL;
    resp_write_int(&x->w, g != NULL ? (int64_t)g->applied : 0);
}

/* Whether this node decides d from its own replica (the follower's view; a leader's replica
 * holds what it acknowledged): -1 every group (INFO), 1 the command's group, 2 slot 0's group
 * (CONFIG GET's encoding thresholds), 0 not at all. */
/* Whether a CONFIG GET's patterns (argv[2..]) match an encoding threshold's name. */
static int ryw_gets_encoding(size_t argc, const struct resp_arg *argv)
{
    for (size_t i = 2; i < argc; i++) {
        for (size_t k = 0; store_encoding_name(k) != NULL; k++) {
            const char *name = store_encoding_name(k);
            if (hy_glob_match(argv[i].ptr, argv[i].len, (const uint8_t *)name, strlen(name), 1)) {
                return 1;
            }
        }
    }
    return 0;
}

static int ryw_decides_here(const struct hy_node *n, const struct node_client *c,
                            const struct cmd_def *d, size_t argc, const struct resp_arg *argv)
{
    if (d == NULL || c->is_proxy || n->capture != NULL || c->no_block) {
        return 0;
    }
    if (d->handler == cmd_info) {
        return -1; /* the keyspace, the dirty counter, ... of every group held here */
    }
    if (d->handler == cmd_auth || (d->handler == cmd_hello && argc > 2)) {
        /* The users are the metadata group's: an ACL SETUSER this node's client had
         * acknowledged must be there before its AUTH is judged. */
        return 3;
    }
    if (d->handler == cmd_config) {
        /* Only the encoding thresholds are replicated state (slot 0's copy answers): a GET of
         * other settings reads this node's own, and waits for nothing. */
        return argc >= 2 && node_arg_is(&argv[1], "GET") && ryw_gets_encoding(argc, argv) ? 2 : 0;
    }
    if (!(d->flags & CMD_BLOCKING)) {
        return 0;
    }
    if (d->handler == cmd_xread || d->handler == cmd_xreadgroup) {
        /* Without BLOCK the leader answers it (a read where reads run). */
        for (size_t i = 1; i + 1 < argc && !node_arg_is(&argv[i], "STREAMS"); i++) {
            if (node_arg_is(&argv[i], "BLOCK")) {
                return 1;
            }
        }
        return 0;
    }
    return 1;
}

/* Whether g's replica here has yet to apply a write this node's forwards had acknowledged. */
static int ryw_behind(const struct node_group *g)
{
    return g->acked_index > g->applied && !g->parked && node_group_raft_view(g);
}

int proxy_ryw_hold(struct node_group *g, struct node_client *c, const struct cmd_def *d,
                   size_t argc, const struct resp_arg *argv, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (c->ryw_gave_up || c->ryw_next == UINT32_MAX) {
        return 0;
    }
    int which = ryw_decides_here(n, c, d, argc, argv);
    if (which != 0 && !c->ryw_looked) {
        /* Its arrival, for XREAD's barrier (cmd_stream.c): counted from the end of this wait,
         * the barrier waited for one more message of the leader, and the writes sent after
         * the request (a DEL of its stream) could apply before it was judged. */
        c->ryw_looked = 1;
        c->ryw_arrival_msgs = g->leader_msgs;
    }
    struct node_group *lag = NULL;
    if (which == -1) {
        /* Each group in turn, each against its index when it is looked at: the wait is
         * bounded even while writes keep being acknowledged. */
        for (; c->ryw_next < n->group_count && lag == NULL; c->ryw_next++) {
            if (ryw_behind(n->groups[c->ryw_next])) {
                lag = n->groups[c->ryw_next];
            }
        }
    } else if (which != 0) {
        struct node_group *one = which == 2 ? node_group_of_slot(n, 0) : which == 3 ? n->meta : g;
        lag = ryw_behind(one) ? one : NULL;
    }
    if (lag == NULL) {
        c->ryw_next = UINT32_MAX; /* looked: the request goes on, and is not held again */
        return 0;
    }
    if (which != -1) {
        c->ryw_next = UINT32_MAX; /* once satisfied, the one group it needs is not waited again */
    }
    c->ryw_wait = 1;
    c->ryw_group = lag->id;
    c->ryw_index = lag->acked_index;
    node_client_block(lag, c, now_ms);
    return 1;
}

int proxy_ryw_ready(const struct hy_node *n, const struct node_client *c)
{
    const struct node_group *g = node_group_get(n, c->ryw_group);
    return g == NULL || g->applied >= c->ryw_index || !node_group_raft_view(g) || g->parked;
}

void proxy_ryw_reset(struct node_client *c)
{
    c->ryw_next = 0;
    c->ryw_gave_up = 0;
    c->ryw_looked = 0;
    c->block_fwd_deadline_ms = c->block_fwd_order = 0; /* never carried to the next request */
}

/* A FORWARD's head: the client's RESP version, with FORWARD_F_USER and its ACL user after it
 * when that is not the default user (redis.acl_check_cmd answers for it where the script
 * runs: docs/peer-protocol.md "FORWARD"). */
#define FORWARD_F_USER 0x10u
static void forward_head(struct hy_buf *frame, const struct node_client *c, int proto)
{
    size_t ulen = strnlen(c->user, sizeof(c->user));
    int named = ulen > 0 && ulen <= UINT8_MAX && strcmp(c->user, "default") != 0;
    hy_buf_append_u8(frame, (uint8_t)((unsigned)proto | (named ? FORWARD_F_USER : 0)));
    if (named) {
        hy_buf_append_u8(frame, (uint8_t)ulen);
        hy_buf_append(frame, c->user, ulen);
    }
}

size_t proxy_forward_head(const uint8_t *data, size_t len, int *proto_out, const uint8_t **user_out,
                          size_t *user_len_out)
{
    *user_out = NULL;
    *user_len_out = 0;
    if (len < 1 || ((data[0] & ~FORWARD_F_USER) != 2 && (data[0] & ~FORWARD_F_USER) != 3)) {
        return 0;
    }
    *proto_out = data[0] & ~FORWARD_F_USER;
    if (!(data[0] & FORWARD_F_USER)) {
        return 1;
    }
    if (len < 2 || data[1] == 0 || (size_t)data[1] + 2 > len) {
        return 0;
    }
    *user_out = data + 2;
    *user_len_out = data[1];
    return 2 + (size_t)data[1];
}

int proxy_forward(struct cmd_ctx *x)
{
    const struct node_member *leader = proxy_target(x->group);
    if (leader == NULL || leader->id == x->group->raft.cfg.id) {
        return 0;
    }
    return proxy_forward_to(x, leader);
}

static size_t forward_find(const struct hy_node *n, uint64_t req_id);

/* The slot of the next request to join a batch: the one it held (sent before in a batch and
 * back in the input), or the next of the follower's session (proxy_batch_joins saw room). */
static struct node_fwd_held batch_slot(struct cmd_ctx *x)
{
    struct node_client *c = x->client;
    struct node_group *g = x->group;
    struct node_fwd_held slot = {0, 0, 0, 0};
    if (c->fwd_held_count > 0) {
        slot = c->fwd_held[0];
        memmove(c->fwd_held, c->fwd_held + 1, (c->fwd_held_count - 1) * sizeof(*c->fwd_held));
        c->fwd_held_count--;
    }
    if (slot.seq == 0) {
        HY_ASSERT(fsession_room(g));
        slot.session = g->fsession;
        slot.seq = fsession_take(g, x->now_ms);
    }
    return slot;
}

/* x joins its client's batch f (proxy_batch_joins said it may). */
static void batch_join(struct cmd_ctx *x, struct node_forward *f)
{
    struct node_fwd_held slot = batch_slot(x);
    if (f->more_count == f->more_cap) {
        f->more_cap = f->more_cap ? f->more_cap * 2 : 8;
        f->more = hy_xrealloc(f->more, f->more_cap * sizeof(*f->more));
    }
    encode_request(x, slot.session, slot.seq, &f->frame);
    encode_request(x, 0, 0, &f->req);
    f->more[f->more_count++] = (struct node_fwd_member){.req_end = f->req.len, .slot = slot};
    x->node->stats.forwards_sent++;
    x->node->stats.forwards_batched++;
}

int proxy_forward_to(struct cmd_ctx *x, const struct node_member *leader)
{
    struct hy_node *n = x->node;
    if (x->client->fwd_open != 0) {
        size_t open = forward_find(n, x->client->fwd_open);
        HY_ASSERT(open != SIZE_MAX && n->forwards[open].leader == leader->id);
        batch_join(x, &n->forwards[open]);
        return 1;
    }
    struct node_forward *f = forward_new(
        n, x->client, leader, x->client->retry_since_ms ? x->client->retry_since_ms : x->now_ms);
    f->is_write = (x->cmd->flags & CMD_WRITE) != 0;
    f->group = x->group->id;
    f->to_busy = x->client->forward_busy;
    f->block_deadline_ms = x->client->block_fwd_deadline_ms;
    f->block_order = x->client->block_fwd_order;
    x->client->block_fwd_deadline_ms = x->client->block_fwd_order = 0;
    if (f->is_write) {
        forward_slot(x, f);
        f->feeds_waiter = node_block_feeds_waiter(n, x->group, x->cmd, x->argc, x->argv);
    }
    encode_request(x, 0, 0, &f->req);
    f->cmd = x->cmd;
    f->head_end = f->req.len;
    forward_head(&f->frame, x->client, x->w.proto);
    encode_request(x, f->session, f->seq, &f->frame);
    f->asks_applied =
        f->is_write && node_group_raft_view(x->group) && applied_known(n, leader->name, x->now_ms);
    n->stats.forwards_sent++;
    x->client->forwarding = 1;
    /* A session write run from its client's input may gather the client's next requests
     * ("Batches"); not one a blocked client waits on, nor under a mutation of the simulator
     * (each tests the path of one request). */
    if (n->processing == x->client && f->seq != 0 && !f->feeds_waiter &&
        f->block_deadline_ms == 0 && !x->client->forward_busy && n->mutation == NODE_MUT_NONE &&
        !(x->cmd->flags & CMD_BLOCKING) && x->client->reply_mode == NODE_REPLY_ON &&
        !node_multi_active(x->client)) {
        f->open = 1;
        x->client->fwd_open = f->req_id;
        return 1;
    }
    f->open = 1;
    x->client->fwd_open = f->req_id;
    proxy_batch_close(n, x->client);
    return 1;
}

void proxy_batch_close(struct hy_node *n, struct node_client *c)
{
    size_t i = c->fwd_open != 0 ? forward_find(n, c->fwd_open) : SIZE_MAX;
    c->fwd_open = 0;
    if (i == SIZE_MAX || !n->forwards[i].open) {
        return;
    }
    struct node_forward *f = &n->forwards[i];
    f->open = 0;
    if (f->asks_applied) {
        /* Pipelined behind the writes: answered once they are (see "Acknowledged writes"). */
        char id[16];
        int len = snprintf(id, sizeof(id), "%u", f->group);
        hy_buf_printf(&f->frame, "*2\r\n$10\r\nHY.APPLIED\r\n$%d\r\n%s\r\n", len, id);
    }
    node_outbox_push(n, c->forward_busy ? NODE_FORWARD_BUSY : NODE_FORWARD, f->to, f->req_id,
                     f->frame.data, f->frame.len);
    hy_buf_free(&f->frame);
    hy_buf_init(&f->frame);
}

void proxy_take_held(struct node_client *c)
{
    if (c->fwd_took || c->forwarding || c->fwd_held_count == 0) {
        return;
    }
    struct node_fwd_held slot = c->fwd_held[0];
    memmove(c->fwd_held, c->fwd_held + 1, (c->fwd_held_count - 1) * sizeof(*c->fwd_held));
    c->fwd_held_count--;
    c->fwd_took = 1;
    if (c->fwd_seq == 0 && slot.seq != 0) {
        c->fwd_session = slot.session;
        c->fwd_seq = slot.seq;
    }
    c->outcome_unsure |= slot.unsure;
    if (slot.first_ms != 0 && c->retry_since_ms == 0) {
        c->retry_since_ms = slot.first_ms; /* sent with the request before it: one deadline */
    }
}

int proxy_batch_joins(struct hy_node *n, struct node_client *c, size_t argc,
                      const struct resp_arg *argv, uint64_t now_ms)
{
    size_t i = c->fwd_open != 0 ? forward_find(n, c->fwd_open) : SIZE_MAX;
    if (i == SIZE_MAX || argc == 0 || n->peer_busy_count > 0 || n->cfg->maxmemory > 0 ||
        c->reply_mode != NODE_REPLY_ON || c->blocked_on_read || c->held ||
        c->block_state != NODE_BLOCK_NONE || node_multi_active(c)) {
        return 0;
    }
    const struct node_forward *f = &n->forwards[i];
    const struct cmd_def *d = node_command_lookup(n, argv[0].ptr, argv[0].len);
    d = node_command_sub(n, d, argc, argv);
    if (!f->open || f->more_count + 1 >= PROXY_BATCH_MAX || d == NULL || d != f->cmd ||
        !node_arity_ok(d, argc)) {
        return 0;
    }
    struct node_group *g = node_command_group(n, d, argc, argv);
    const struct node_member *leader = proxy_target(g);
    if (g->id != f->group || leader == NULL || leader->id != f->leader ||
        !node_keys_in_group(n, g, d, argc, argv) || node_block_feeds_waiter(n, g, d, argc, argv)) {
        return 0;
    }
    if (c->fwd_held_count == 0 && !fsession_room(g)) {
        return 0; /* no room for its slot: it waits for the batch's reply, as it would alone */
    }
    /* What node_run checks of the request itself before forwarding it: the rest (the client's
     * state, the node's, the partition's) is as it was for the first request, a moment ago. */
    struct hy_buf scratch;
    hy_buf_init(&scratch);
    struct cmd_ctx x =
        node_busy_ctx(n, g, c, d, argc, argv, now_ms, (struct resp_writer){&scratch, c->proto});
    int ok = acl_allows(&x, d) && node_quorum_check(&x, d);
    hy_buf_free(&scratch);
    return ok;
}

/* Sends `frame` (a RESP request, protocol byte first) to member m as a probe of kind `what`:
 * no client waits for it, and its answer goes to the probe's handler (forward_reply). */
static void probe_send(struct hy_node *n, const struct node_member *m, enum node_probe what,
                       const struct hy_buf *frame, uint64_t now_ms)
{
    struct node_forward *f = forward_new(n, NULL, m, now_ms);
    f->probe = what;
    f->group = n->meta->id;
    node_outbox_push(n, NODE_FORWARD, m->name, f->req_id, frame->data, frame->len);
}

void proxy_probe(struct hy_node *n, const struct node_member *m, enum node_probe what,
                 uint64_t now_ms)
{
    struct hy_buf frame;
    hy_buf_init(&frame);
    hy_buf_append_u8(&frame, 2);
    if (what == NODE_PROBE_ROLE) {
        hy_buf_printf(&frame, "*2\r\n$13\r\nHY.MEMBERROLE\r\n$%zu\r\n%s\r\n",
                      strlen(n->cfg->node_id), n->cfg->node_id);
    } else {
        hy_buf_printf(&frame, "*1\r\n$10\r\nHY.LEADERS\r\n");
    }
    probe_send(n, m, what, &frame, now_ms);
    hy_buf_free(&frame);
}

void proxy_probe_transfer(struct hy_node *n, const struct node_member *leader, size_t partition,
                          const char *target, uint64_t now_ms)
{
    char part[24];
    int len = snprintf(part, sizeof(part), "%zu", partition);
    struct hy_buf frame;
    hy_buf_init(&frame);
    hy_buf_append_u8(&frame, 2);
    hy_buf_printf(&frame,
                  "*6\r\n$7\r\nHALYARD\r\n$8\r\nFAILOVER\r\n$2\r\nTO\r\n$%zu\r\n%s\r\n"
                  "$9\r\nPARTITION\r\n$%d\r\n%s\r\n",
                  strlen(target), target, len, part);
    probe_send(n, leader, NODE_PROBE_TRANSFER, &frame, now_ms);
    hy_buf_free(&frame);
}

/* The group a forward's request runs against (the metadata group if it went away). */
static struct node_group *forward_group(const struct hy_node *n, const struct node_forward *f)
{
    struct node_group *g = node_group_get(n, f->group);
    return g != NULL ? g : n->meta;
}

static void forward_remove(struct hy_node *n, size_t i)
{
    hy_buf_free(&n->forwards[i].req);
    hy_buf_free(&n->forwards[i].frame);
    hy_free(n->forwards[i].more);
    n->forwards[i] = n->forwards[--n->forward_count];
}

static size_t forward_find(const struct hy_node *n, uint64_t req_id)
{
    for (size_t i = 0; i < n->forward_count; i++) {
        if (n->forwards[i].req_id == req_id) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Forward i is resolved and removed. Its client, if `done`, has its reply in its output and
 * goes on to its next requests; otherwise its request is back in its input, to run again. */
static void forward_finish(struct hy_node *n, size_t i, int done, uint64_t now_ms)
{
    struct node_client *c = n->forwards[i].client;
    uint64_t session = n->forwards[i].session, seq = n->forwards[i].seq;
    /* A batch's later requests: answered too, or nobody waits for them (a re-run moved
     * their slots to the client first). */
    for (size_t k = 0; k < n->forwards[i].more_count; k++) {
        fsession_release(n, n->forwards[i].more[k].slot.session, n->forwards[i].more[k].slot.seq);
    }
    if (c != NULL && c->fwd_open == n->forwards[i].req_id) {
        c->fwd_open = 0;
    }
    forward_remove(n, i);
    if (c == NULL) {
        fsession_release(n, session, seq); /* nobody waits for it any more */
        return;
    }
    c->forwarding = 0;
    if (done) {
        c->last_ms = now_ms;
        proxy_request_done(n, c);
        if (!c->held) {
            c->pop_root = 0; /* its pop, if it was one, is answered (blocking.c) */
        }
    }
    replica_mark_ready(n, c);
    node_client_process(n, c, now_ms); /* its next requests, in order */
}

/* Forward i runs again from the start: its request goes back to the front of the client's
 * input (it waits for a leader, goes to it, or runs here), keeping its session slot. When
 * `block`, it first waits for the next change of leadership (the one it went to said it no
 * longer leads, and this node has not yet heard who does). `sent` says the leader may have
 * applied it: the client's answer may no longer say "not applied". */
static void forward_rerun(struct hy_node *n, size_t i, int block, int sent, uint64_t now_ms)
{
    struct node_client *c = n->forwards[i].client;
    if (c != NULL) {
        struct hy_buf in;
        hy_buf_init(&in);
        hy_buf_append(&in, n->forwards[i].req.data, n->forwards[i].req.len);
        hy_buf_append(&in, c->in.data, c->in.len);
        hy_buf_free(&c->in);
        c->in = in;
        c->read_ok_bytes = 0; /* offsets into the input moved */
        c->read_reg_bytes = 0;
        if (c->retry_since_ms == 0) { /* its deadline counts from the first attempt */
            c->retry_since_ms = n->forwards[i].sent_ms;
        }
        c->outcome_unsure |= sent;
        c->fwd_took = 1; /* its slot stays its own: the held ones are for the requests after */
        /* A batch's later requests keep their slots, ahead of any the client holds already. */
        struct node_forward *f = &n->forwards[i];
        if (f->more_count > 0) {
            size_t need = c->fwd_held_count + f->more_count;
            if (need > c->fwd_held_cap) {
                c->fwd_held_cap = HY_MAX(need, 2 * c->fwd_held_cap);
                c->fwd_held = hy_xrealloc(c->fwd_held, c->fwd_held_cap * sizeof(*c->fwd_held));
            }
            memmove(c->fwd_held + f->more_count, c->fwd_held,
                    c->fwd_held_count * sizeof(*c->fwd_held));
            for (size_t k = 0; k < f->more_count; k++) {
                c->fwd_held[k] = f->more[k].slot;
                c->fwd_held[k].unsure |= sent;
                c->fwd_held[k].first_ms = c->retry_since_ms; /* the batch's first attempt */
            }
            c->fwd_held_count = need;
            f->more_count = 0;
        }
        if (n->forwards[i].block_deadline_ms != 0) {
            /* A blocking pop keeps its deadline and its place among the waiters. */
            c->block_deadline_ms = n->forwards[i].block_deadline_ms;
            c->block_order = n->forwards[i].block_order;
        }
        if (sent) {
            n->stats.forwards_resent++;
        } else {
            n->stats.forwards_rerun++;
        }
        if (block) {
            node_client_block(forward_group(n, &n->forwards[i]), c, now_ms);
        }
    }
    forward_finish(n, i, 0, now_ms);
}

/* RESP's nulls: a blocking pop's timeout answer (*-1 / $-1, RESP3 _). */
static int reply_is_null(const uint8_t *data, size_t len)
{
    return (len == 5 && (memcmp(data, "*-1\r\n", 5) == 0 || memcmp(data, "$-1\r\n", 5) == 0)) ||
           (len == 3 && memcmp(data, "_\r\n", 3) == 0);
}

/* A blocking pop forwarded once this replica showed data was answered null by the leader:
 * another client took the data first (the follower's replica had not applied that yet). It
 * is not the client's answer: only its timeout answers null (Redis serves a blocked client
 * only with data). The request goes back to the front of the client's input with its
 * deadline and order, and waits again (after its replica applied the pops that took the
 * data: their index came with the null). Its session slot is resolved (the null pop applied
 * once); a later forward takes a new one. */
static void forward_block_again(struct hy_node *n, size_t i, uint64_t now_ms)
{
    struct node_forward *f = &n->forwards[i];
    struct node_client *c = f->client;
    struct hy_buf in;
    hy_buf_init(&in);
    hy_buf_append(&in, f->req.data, f->req.len);
    hy_buf_append(&in, c->in.data, c->in.len);
    hy_buf_free(&c->in);
    c->in = in;
    c->read_ok_bytes = 0; /* offsets into the input moved */
    c->read_reg_bytes = 0;
    c->block_deadline_ms = f->block_deadline_ms;
    c->block_order = f->block_order;
    forward_finish(n, i, 1, now_ms);
}

/* The follower's HY.SESSION OPEN is resolved: its id, or a refusal (the clients that wait
 * go without a session for FSESSION_OFF_MS), or nothing when `data` is NULL (it was lost:
 * the clients that wait try again at the next change, not at once into the same link). */
static void fsession_opened(struct hy_node *n, size_t i, const uint8_t *data, size_t len,
                            uint64_t now_ms)
{
    struct node_group *g = forward_group(n, &n->forwards[i]);
    uint64_t id = 0;
    if (data != NULL && len > 3 && data[0] == ':') {
        for (size_t k = 1; k < len && data[k] >= '0' && data[k] <= '9' && id < UINT64_MAX / 10;
             k++) {
            id = id * 10 + (uint64_t)(data[k] - '0');
        }
    }
    if (data != NULL && id == 0) {
        hy_log(n->log, HY_LOG_WARN,
               "the leader %s refused this follower's session (%.*s); forwarding writes "
               "without one for %d ms",
               n->forwards[i].to, (int)(len > 2 ? len - 2 : len), (const char *)data,
               FSESSION_OFF_MS);
        g->fsession_off_until_ms = now_ms + FSESSION_OFF_MS;
    }
    forward_remove(n, i);
    g->fsession_open_req = 0;
    if (id != 0) {
        fsession_reset(g);
        g->fsession = id;
        g->fsession_next_seq = 1;
        g->fsession_used_ms = now_ms;
    }
    if (data != NULL) {
        fsession_wake(g);
    }
}

void node_forward_dropped(struct hy_node *n, uint64_t req_id, uint64_t now_ms)
{
    size_t i = forward_find(n, req_id);
    if (i == SIZE_MAX) {
        return;
    }
    if (n->forwards[i].opens_session) {
        fsession_opened(n, i, NULL, 0, now_ms);
        return;
    }
    if (n->forwards[i].probe != NODE_PROBE_NONE) {
        forward_remove(n, i);
        return;
    }
    /* The frame never left: nothing ran. It waits for the next change (a link coming up, a
     * Raft message) rather than going straight back into the same full or dead link. */
    forward_rerun(n, i, 1, 0, now_ms);
    proxy_wake(n, now_ms);
}

static int reply_starts(const uint8_t *data, size_t len, const char *prefix)
{
    size_t k = strlen(prefix);
    return len > k && memcmp(data, prefix, k) == 0;
}

/* -MOVED (the member no longer leads) and -TRYAGAIN (it had no leader, or lost leadership
 * before proposing) both say the request did not run there. */
static int reply_not_run(const uint8_t *data, size_t len)
{
    return reply_starts(data, len, "-MOVED ") || reply_starts(data, len, "-TRYAGAIN ");
}

/* What a batch's request does with its reply (batch_reply). */
enum batch_verdict {
    BATCH_ANSWERED = 0, /* the client's answer */
    BATCH_NOT_RUN,      /* -MOVED, -TRYAGAIN: that member ran nothing */
    BATCH_SENT,         /* -UNKNOWN: proposed and lost; sent again under its slot */
    BATCH_REFUSED,      /* a copy sent again was refused: the first may have applied */
    BATCH_EXPIRED,      /* the follower's session expired: not applied, a new slot */
};

static enum batch_verdict batch_judge(const struct node_group *g, uint64_t session, int unsure,
                                      const uint8_t *r, size_t len)
{
    if (reply_not_run(r, len)) {
        return BATCH_NOT_RUN;
    }
    if (unsure && (reply_starts(r, len, "-READONLY ") || reply_starts(r, len, "-OOM ") ||
                   reply_starts(r, len, "-LOADING ") || reply_starts(r, len, "-BUSY ") ||
                   reply_starts(r, len, "-NOQUORUM "))) {
        return BATCH_REFUSED;
    }
    if (reply_starts(r, len, "-UNKNOWN ")) {
        return BATCH_SENT;
    }
    if (session == g->fsession && reply_starts(r, len, "-ERR unknown or expired session")) {
        return BATCH_EXPIRED;
    }
    return BATCH_ANSWERED;
}

/* The reply of batch i: its requests' replies one after the other (the leader runs them in
 * order). Those before the first that is not an answer go to the client; that one and every
 * one after it go back to the client's input with their slots (forward_rerun), as the one
 * request of a forward would on that reply: the ones after it may have applied, and asked
 * again under their slots they apply once and answer their first execution's reply. */
static void batch_reply(struct hy_node *n, size_t i, const uint8_t *data, size_t len,
                        uint64_t applied, uint64_t now_ms)
{
    struct node_forward *f = &n->forwards[i];
    struct node_group *g = forward_group(n, f);
    size_t k = f->more_count + 1;
    size_t *ends = hy_xcalloc(k, sizeof(*ends));
    size_t pos = 0, got = 0;
    while (got < k && pos < len) {
        struct resp_value v;
        size_t used = 0;
        if (resp_value_parse(NULL, data + pos, len - pos, &v, &used, NULL) != HY_OK) {
            break;
        }
        resp_value_free(&v);
        pos += used;
        ends[got++] = pos;
    }
    if (got != k || pos != len) {
        /* Not one reply per request (a leader cannot answer so): the client gets it all. */
        hy_log(n->log, HY_LOG_WARN, "forward %llu from %s: %zu replies for %zu requests",
               (unsigned long long)f->req_id, f->to, got, k);
        got = 0;
    }
    size_t first = k; /* the first request whose reply is not its answer */
    enum batch_verdict why = BATCH_ANSWERED;
    for (size_t r = 0; r < got && first == k; r++) {
        size_t from = r == 0 ? 0 : ends[r - 1];
        uint64_t session = r == 0 ? f->session : f->more[r - 1].slot.session;
        int unsure =
            r == 0 ? (f->client != NULL && f->client->outcome_unsure) : f->more[r - 1].slot.unsure;
        why = batch_judge(g, session, unsure, data + from, ends[r] - from);
        first = why != BATCH_ANSWERED ? r : k;
    }
    struct node_client *c = f->client;
    if (first == k || c == NULL) {
        applied_note(g, applied);
        if (c != NULL) {
            for (size_t r = 0; r < (got ? k : 1); r++) {
                size_t from = r == 0 ? 0 : ends[r - 1], to = got ? ends[r] : len;
                node_note_reply(n, data + from, to - from);
            }
            hy_buf_append(&c->out, data, len);
        }
        hy_free(ends);
        forward_finish(n, i, 1, now_ms);
        return;
    }
    /* The answered ones go out and give their slots back; the request `first` heads the
     * forward now, in the client's slot, with the ones after it in `more`. */
    for (size_t r = 0; r < first; r++) {
        size_t from = r == 0 ? 0 : ends[r - 1];
        node_note_reply(n, data + from, ends[r] - from);
    }
    hy_buf_append(&c->out, data, first > 0 ? ends[first - 1] : 0);
    if (first > 0) {
        proxy_request_done(n, c);
        for (size_t r = 1; r < first; r++) {
            fsession_release(n, f->more[r - 1].slot.session, f->more[r - 1].slot.seq);
        }
        struct node_fwd_held head = f->more[first - 1].slot;
        size_t cut = first == 1 ? f->head_end : f->more[first - 2].req_end;
        c->fwd_session = head.session;
        c->fwd_seq = head.seq;
        c->outcome_unsure = head.unsure;
        f->session = head.session;
        f->seq = head.seq;
        f->head_end = f->more[first - 1].req_end - cut;
        hy_buf_consume(&f->req, cut);
        memmove(f->more, f->more + first, (f->more_count - first) * sizeof(*f->more));
        f->more_count -= first;
        for (size_t m = 0; m < f->more_count; m++) {
            f->more[m].req_end -= cut;
        }
    }
    /* The requests after `first` may have run (only a reply that says so proves they did not):
     * each is unsure now, unless its own reply says its session expired (a new slot). */
    for (size_t m = 0; m < f->more_count; m++) {
        size_t r = first + 1 + m;
        struct node_fwd_held *slot = &f->more[m].slot;
        enum batch_verdict v =
            batch_judge(g, slot->session, slot->unsure, data + ends[r - 1], ends[r] - ends[r - 1]);
        if (v == BATCH_EXPIRED) {
            slot->session = slot->seq = 0;
        } else if (v != BATCH_NOT_RUN) {
            slot->unsure = 1;
        }
    }
    hy_free(ends);
    const struct node_member *leader = partmap_leader_member(g);
    int same_leader = leader != NULL && leader->id == f->leader;
    if (why == BATCH_EXPIRED) {
        hy_log(n->log, HY_LOG_INFO, "this follower's session %llu expired; opening another",
               (unsigned long long)g->fsession);
        fsession_reset(g);
        c->fwd_session = c->fwd_seq = 0;
        forward_rerun(n, i, 0, 0, now_ms);
    } else {
        forward_rerun(n, i, why == BATCH_REFUSED ? 1 : same_leader, why != BATCH_NOT_RUN, now_ms);
    }
}

static void forward_reply(struct hy_node *n, const char *from, uint64_t req_id, const uint8_t *data,
                          size_t len, uint64_t now_ms)
{
    size_t i = forward_find(n, req_id);
    if (i == SIZE_MAX || strcmp(n->forwards[i].to, from) != 0) {
        /* A reply after its client was answered, or from a member we did not ask: dropped. */
        return;
    }
    struct node_forward *f = &n->forwards[i];
    if (f->probe == NODE_PROBE_ROLE) {
        member_role_answer(n, from, data, len);
    } else if (f->probe == NODE_PROBE_LEADERS) {
        partmap_note_leaders(n, from, data, len, now_ms);
    } else if (f->probe == NODE_PROBE_TRANSFER && len > 0 && data[0] == '-') {
        /* Not the leader any more, or a transfer already under way: the balancer looks
         * again at its next round. */
        hy_log(n->log, HY_LOG_DEBUG, "balance: %s refused a hand-over: %.*s", from,
               (int)HY_MIN(len, 120), (const char *)data);
    }
    if (f->probe != NODE_PROBE_NONE) {
        forward_remove(n, i);
        return;
    }
    uint64_t applied = 0;
    if (f->asks_applied) {
        len = applied_strip(n, from, data, len, &applied, now_ms);
    }
    if (reply_not_run(data, len) && !node_group_raft_view(forward_group(n, f))) {
        /* A replica of a partition this node does not hold: it names the leader, or has
         * none; the next attempt goes there, or to the next replica (partmap.c). */
        partmap_note_moved(forward_group(n, f), f->leader, data, len);
    }
    if (f->opens_session) {
        /* -MOVED/-TRYAGAIN: that member no longer leads and opened nothing. Not a refusal
         * (which sends writes without a session for a second): the open is tried again at
         * the next leader, and the writes wait for it. */
        int not_run = reply_not_run(data, len);
        fsession_opened(n, i, not_run ? NULL : data, not_run ? 0 : len, now_ms);
        return;
    }
    if (f->more_count > 0) {
        batch_reply(n, i, data, len, applied, now_ms);
        return;
    }
    const struct node_member *leader = partmap_leader_member(forward_group(n, f));
    int same_leader = leader != NULL && leader->id == f->leader;
    if (reply_not_run(data, len) && !(n->mutation == NODE_MUT_STALE_REPLY && f->client != NULL &&
                                      f->client->outcome_unsure)) { /* the bug under test */
        /* It no longer leads and ran nothing: a plain client of a follower never sees MOVED
         * (docs/protocol.md); the request waits for the next leader. */
        forward_rerun(n, i, same_leader, 0, now_ms);
        return;
    }
    if (f->client != NULL && f->client->outcome_unsure && f->is_write &&
        (reply_starts(data, len, "-READONLY ") || reply_starts(data, len, "-OOM ") ||
         reply_starts(data, len, "-LOADING ") || reply_starts(data, len, "-BUSY ") ||
         reply_starts(data, len, "-NOQUORUM "))) {
        /* A refusal of this copy only: the one sent before may have been applied, so the
         * client may not hear "not applied". It is tried again at the next change, until its
         * deadline, when it is -UNKNOWN (dispatch.c). Found by the whole-node simulator
         * (seed 88: a resent INCR refused "READONLY disk full" after its first copy applied;
         * -NOQUORUM from a replica of a partition this node does not hold: seed 8 --nodes 5
         * --partitions 8 --rf 3). */
        forward_rerun(n, i, 1, 1, now_ms);
        return;
    }
    if (f->resend && reply_starts(data, len, "-UNKNOWN ")) {
        /* It proposed the write and lost leadership before it committed: sent again under
         * the same slot, it is applied once whatever that entry becomes. */
        forward_rerun(n, i, same_leader, 1, now_ms);
        return;
    }
    struct node_group *g = forward_group(n, f);
    if (f->seq != 0 && f->session == g->fsession &&
        reply_starts(data, len, "-ERR unknown or expired session")) {
        /* Our session is gone (expired while idle): the write was not applied. It goes again
         * under a new session; if an earlier attempt was lost, its outcome stays unsure. */
        hy_log(n->log, HY_LOG_INFO, "this follower's session %llu expired; opening another",
               (unsigned long long)g->fsession);
        fsession_reset(g);
        if (f->client != NULL) {
            f->client->fwd_session = f->client->fwd_seq = 0;
        }
        forward_rerun(n, i, 0, 0, now_ms);
        return;
    }
    applied_note(g, applied); /* answered: later decisions here wait until it applied here */
    if (f->client != NULL && f->block_deadline_ms != 0 && now_ms < f->block_deadline_ms &&
        reply_is_null(data, len)) {
        forward_block_again(n, i, now_ms);
        return;
    }
    if (f->client != NULL) {
        /* Counted where the client got it, as Redis counts the errors it replies (INFO
         * errorstats); the leader counts it too, as its own reply. */
        node_note_reply(n, data, len);
        if (!f->feeds_waiter ||
            !node_block_hold_forwarded(n, f->client, g, applied, data, len, now_ms)) {
            hy_buf_append(&f->client->out, data, len);
        }
    }
    forward_finish(n, i, 1, now_ms);
}

void node_forward_reply(struct hy_node *n, const char *from, uint64_t req_id, const uint8_t *data,
                        size_t len, uint64_t now_ms)
{
    forward_reply(n, from, req_id, data, len, now_ms);
    node_block_release(n, now_ms); /* the last pop a held push waited for may be this one */
    proxy_wake(n, now_ms);
}

/* Why forward f's leader can no longer answer it, or NULL while it still may. */
static const char *forward_lost(const struct hy_node *n, const struct node_forward *f)
{
    if (f->to_busy) {
        for (size_t i = 0; i < n->member_count; i++) {
            if (n->members[i].id == f->leader) {
                return n->member_up[i] ? NULL : "its link went down";
            }
        }
        return "it left the cluster";
    }
    const struct node_member *leader = replica_leader_member(forward_group(n, f));
    if (leader == NULL || leader->id != f->leader) {
        return "leadership moved";
    }
    if (!n->member_up[leader - n->members]) {
        return "its link went down";
    }
    return NULL;
}

int node_cut_off(const struct hy_node *n, const struct node_group *g, uint64_t now_ms)
{
    if (g != n->meta && n->partmap != NULL && replica_voters(g) < replica_voters(n->meta) &&
        proxy_target(g) == NULL && replica_reachable_voters(g) < replica_voters(g) / 2 + 1) {
        /* A partition placed on fewer than all members loses its majority on its own (the
         * metadata group may keep one): no usable leader and too few of its replicas up. */
        return 1;
    }
    if (n->leaderless_since_ms == 0 ||
        now_ms < n->leaderless_since_ms + (uint64_t)n->cfg->election_timeout_ms) {
        return 0;
    }
    return replica_reachable_voters(n->meta) < replica_voters(n->meta) / 2 + 1 &&
           replica_reachable_voters(g) < replica_voters(g) / 2 + 1;
}

/* g's session of forwarded writes, checked after g changed. */
static void fsession_check(struct node_group *g)
{
    if (g->fsession != 0 && replica_is_leader(g)) {
        fsession_reset(g); /* a leader forwards nothing; as a follower again it opens anew */
    }
    if (g->raft.stat_conflicts_refused != g->conflicts_seen) {
        /* The leader's log conflicts with entries this node committed (a quorum forced
         * without it): our session's history there is not the one we numbered, so a seq
         * could be answered with another write's recorded reply. A new session is opened
         * for the next write. */
        g->conflicts_seen = g->raft.stat_conflicts_refused;
        fsession_reset(g);
        g->acked_index = 0; /* indexes of that other history: nothing to wait for here */
    }
}

/* Resolves the forwards (of group `only`, or every group's if NULL) whose leader can no
 * longer answer them. */
static void forwards_check(struct hy_node *n, const struct node_group *only, uint64_t now_ms)
{
    for (size_t i = 0; i < n->forward_count;) {
        struct node_forward *f = &n->forwards[i];
        const char *why = only != NULL && forward_group(n, f) != only ? NULL : forward_lost(n, f);
        if (why == NULL ||
            f->probe != NODE_PROBE_NONE) { /* a probe waits for its answer or expiry */
            i++;
            continue;
        }
        if (f->opens_session) {
            fsession_opened(n, i, NULL, 0, now_ms); /* opened anew at the next leader */
            continue;
        }
        if (!f->is_write || f->resend) {
            /* A read is simply asked again; a write in a session is sent again, same slot. */
            forward_rerun(n, i, 0, f->is_write, now_ms);
            continue;
        }
        struct node_client *c = f->client;
        if (c != NULL) {
            struct resp_writer w = {&c->out, c->proto};
            resp_write_errorf(&w,
                              "UNKNOWN outcome: the write was forwarded to the leader %s, then %s "
                              "before it answered; it may or may not be applied",
                              f->to, why);
        }
        n->stats.forwards_unknown++;
        forward_finish(n, i, 1, now_ms);
    }
}

static void leaderless_check(struct hy_node *n, uint64_t now_ms)
{
    if (proxy_target(n->meta) != NULL) {
        n->leaderless_since_ms = 0;
    } else if (n->leaderless_since_ms == 0) {
        n->leaderless_since_ms = now_ms;
    }
}

void proxy_check(struct hy_node *n, uint64_t now_ms)
{
    leaderless_check(n, now_ms);
    /* A group's forwarding session changes only with its Raft state (a step). */
    int due = node_walk_due(n, &n->fsession_walk, now_ms);
    for (size_t k = 0; due && k < n->group_count; k++) {
        fsession_check(n->groups[k]);
    }
    forwards_check(n, NULL, now_ms);
}

void proxy_check_group(struct node_group *g, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (g == n->meta) {
        leaderless_check(n, now_ms);
    }
    fsession_check(g);
    forwards_check(n, g, now_ms);
}

void proxy_expire(struct hy_node *n, uint64_t now_ms)
{
    uint64_t timeout = (uint64_t)n->cfg->request_timeout_ms;
    for (size_t i = 0; i < n->forward_count;) {
        struct node_forward *f = &n->forwards[i];
        if (node_peer_busy_now(n, f->to, now_ms)) {
            /* Its leader runs a script (its notices): alive and at work, maybe on this very
             * request, which a Redis client would wait for. Not an unanswered request: its
             * time counts from the script's end. A script's run is bounded by
             * script-max-instructions. */
            f->busy_seen_ms = now_ms;
        }
        if (now_ms < HY_MAX(f->sent_ms, f->busy_seen_ms) + timeout) {
            i++;
            continue;
        }
        if (f->opens_session) {
            fsession_opened(n, i, NULL, 0, now_ms);
            continue;
        }
        if (f->probe != NODE_PROBE_NONE) {
            forward_remove(n, i); /* unanswered: asked again later */
            continue;
        }
        struct node_client *c = f->client;
        for (size_t r = 0; c != NULL && r <= f->more_count; r++) { /* each request of a batch */
            struct resp_writer w = {&c->out, c->proto};
            int unsure = r == 0 ? c->outcome_unsure : f->more[r - 1].slot.unsure;
            if (f->to_busy) {
                resp_write_errorf(&w,
                                  "TRYAGAIN %s, which ran a busy script, did not answer within "
                                  "request-timeout-ms of its last busy notice",
                                  f->to);
            } else if (f->is_write && unsure) {
                resp_write_errorf(&w,
                                  "UNKNOWN outcome: the write was sent again to the leader %s "
                                  "after an earlier leader failed, and got no answer within "
                                  "request-timeout-ms; it may or may not be applied (once)",
                                  f->to);
            } else {
                resp_write_errorf(&w,
                                  f->is_write
                                      ? "UNKNOWN outcome: the leader %s, reachable all along, "
                                        "did not answer the forwarded write within "
                                        "request-timeout-ms; it may or may not be applied"
                                      : "TRYAGAIN the leader %s, reachable all along, did not "
                                        "answer the forwarded read within request-timeout-ms",
                                  f->to);
            }
        }
        forward_finish(n, i, 1, now_ms);
    }
}

void proxy_client_gone(struct hy_node *n, struct node_client *c)
{
    for (size_t k = 0; k < c->fwd_held_count; k++) {
        fsession_release(n, c->fwd_held[k].session, c->fwd_held[k].seq);
    }
    hy_free(c->fwd_held);
    c->fwd_held = NULL;
    c->fwd_held_count = c->fwd_held_cap = 0;
    for (size_t i = 0; i < n->forward_count; i++) {
        if (n->forwards[i].client == c) {
            n->forwards[i].client = NULL; /* the reply, if any, is dropped */
            return;                       /* the forward holds its slot until resolved */
        }
    }
    fsession_release(n, c->fwd_session, c->fwd_seq);
}

void proxy_free(struct hy_node *n)
{
    struct node_peer_msg *m;
    while ((m = node_take_peer_msg(n)) != NULL) {
        node_peer_msg_free(m);
    }
    for (size_t i = 0; i < n->forward_count; i++) {
        hy_buf_free(&n->forwards[i].req);
        hy_buf_free(&n->forwards[i].frame);
        hy_free(n->forwards[i].more);
    }
    hy_free(n->forwards);
}

/* ---- the leader's side --------------------------------------------------------------------- */

int proxy_maybe_finish(struct hy_node *n, struct node_client *c)
{
    if (!c->is_proxy || c->waiting > 0 || c->blocked_on_read || c->forwarding || c->in.len > 0 ||
        c->out.len == 0 || c->scatter_pending > 0) {
        return 0;
    }
    node_outbox_push(n, NODE_FORWARD_REPLY, c->proxy_from, c->proxy_req_id, c->out.data,
                     c->out.len);
    node_client_free(n, c);
    return 1;
}

void node_forward_request(struct hy_node *n, const char *from, uint64_t req_id, const uint8_t *data,
                          size_t len, uint64_t now_ms)
{
    int proto = 2;
    const uint8_t *user;
    size_t ulen;
    size_t head = proxy_forward_head(data, len, &proto, &user, &ulen);
    if (head == 0 || head >= len || ulen >= sizeof(((struct node_client *)0)->user)) {
        hy_log(n->log, HY_LOG_WARN, "forward %llu from %s: malformed, dropped",
               (unsigned long long)req_id, from);
        return;
    }
    char addr[96];
    snprintf(addr, sizeof(addr), "peer:%s", from);
    struct node_client *c = node_client_new(n, addr, "", -1, now_ms);
    c->is_proxy = 1;
    c->flags &= ~NODE_CLIENT_CLOSE_AFTER_REPLY; /* maxclients is for sockets, not forwards */
    hy_buf_reset(&c->out);
    c->authenticated = 1; /* the follower authenticated its client */
    c->proto = proto;
    if (ulen > 0) {
        /* The follower's client's user: what a script's redis.acl_check_cmd answers for (the
         * follower checked its rights; acl_check does not check a forward's again). */
        memcpy(c->user, user, ulen);
        c->user[ulen] = '\0';
    }
    c->proxy_req_id = req_id;
    snprintf(c->proxy_from, sizeof(c->proxy_from), "%s", from);
    hy_buf_append(&c->in, data + head, len - head);
    node_client_process(n, c, now_ms);
    proxy_maybe_finish(n, c);
}
