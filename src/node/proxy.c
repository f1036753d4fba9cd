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
 * or runs here if this node leads now. When the leader it went to fails (its link goes down,
 * or another leader or none is known), a read is run again; a write, which may or may not
 * have been applied, is answered -UNKNOWN at once, never re-applied blindly (Redis-Raft's
 * proxy looped re-applying commands; Jepsen 2020). Writes wrapped in a client's own session
 * (HY.REQ) are exactly-once whatever happens, so the client may retry them anywhere.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "node/node_internal.h"

static void outbox_push(struct hy_node *n, int kind, const char *to, uint64_t req_id,
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

/* The request as a RESP multibulk (what the client sent, re-encoded). */
static void encode_request(const struct cmd_ctx *x, struct hy_buf *out)
{
    hy_buf_printf(out, "*%zu\r\n", x->argc);
    for (size_t i = 0; i < x->argc; i++) {
        hy_buf_printf(out, "$%zu\r\n", x->argv[i].len);
        hy_buf_append(out, x->argv[i].ptr, x->argv[i].len);
        hy_buf_append(out, "\r\n", 2);
    }
}

/* The member a request may be forwarded to now: the known leader, when its link is up.
 * NULL while none is known, or while the one known is unreachable (killed, partitioned):
 * forwarding into a dead link would only wait out the deadline. */
const struct node_member *proxy_target(const struct hy_node *n)
{
    const struct node_member *leader = replica_leader_member(n);
    if (leader == NULL || leader->id == n->raft.cfg.id) {
        return leader;
    }
    return n->member_up[leader - n->members] ? leader : NULL;
}

int proxy_forward(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    const struct node_member *leader = proxy_target(n);
    if (leader == NULL || leader->id == n->raft.cfg.id) {
        return 0;
    }
    if (n->forward_count == n->forward_cap) {
        n->forward_cap = n->forward_cap ? n->forward_cap * 2 : 16;
        n->forwards = hy_xrealloc(n->forwards, n->forward_cap * sizeof(*n->forwards));
    }
    uint64_t id = ++n->next_forward_id;
    struct node_forward *f = &n->forwards[n->forward_count++];
    *f = (struct node_forward){.req_id = id,
                               .client = x->client,
                               .sent_ms = x->client->retry_since_ms ? x->client->retry_since_ms
                                                                    : x->now_ms,
                               .is_write = (x->cmd->flags & CMD_WRITE) != 0,
                               .leader = leader->id};
    snprintf(f->to, sizeof(f->to), "%s", leader->name);
    hy_buf_init(&f->req);
    encode_request(x, &f->req);
    struct hy_buf frame;
    hy_buf_init(&frame);
    hy_buf_append_u8(&frame, (uint8_t)x->w.proto);
    hy_buf_append(&frame, f->req.data, f->req.len);
    outbox_push(n, NODE_FORWARD, leader->name, id, frame.data, frame.len);
    hy_buf_free(&frame);
    x->client->forwarding = 1;
    return 1;
}

static void forward_remove(struct hy_node *n, size_t i)
{
    hy_buf_free(&n->forwards[i].req);
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

/* The client of forward i goes on: its reply (if any) is in its output already. */
static void forward_finish(struct hy_node *n, size_t i, uint64_t now_ms)
{
    struct node_client *c = n->forwards[i].client;
    forward_remove(n, i);
    if (c != NULL) {
        c->forwarding = 0;
        replica_mark_ready(n, c);
        node_client_process(n, c, now_ms); /* its next requests, in order */
    }
}

/* Forward i is known not to have run on any leader: its request goes back to the front of
 * the client's input and runs again (it waits for a leader, goes to it, or runs here). When
 * `block`, it first waits for the next change of leadership (the one it went to said it no
 * longer leads, and this node has not yet heard who does). */
static void forward_rerun(struct hy_node *n, size_t i, int block, uint64_t now_ms)
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
        n->stats.forwards_rerun++;
        if (block) {
            node_client_block(n, c, now_ms);
        }
    }
    forward_finish(n, i, now_ms);
}

void node_forward_dropped(struct hy_node *n, uint64_t req_id, uint64_t now_ms)
{
    size_t i = forward_find(n, req_id);
    if (i != SIZE_MAX) {
        /* The frame never left: nothing ran. It waits for the next change (a link coming up,
         * a Raft message) rather than going straight back into the same full or dead link. */
        forward_rerun(n, i, 1, now_ms);
    }
}

/* -MOVED (the member no longer leads) and -TRYAGAIN (it had no leader, or lost leadership
 * before proposing) both say the request did not run there. */
static int reply_not_run(const uint8_t *data, size_t len)
{
    return (len > 7 && memcmp(data, "-MOVED ", 7) == 0) ||
           (len > 10 && memcmp(data, "-TRYAGAIN ", 10) == 0);
}

void node_forward_reply(struct hy_node *n, const char *from, uint64_t req_id, const uint8_t *data,
                        size_t len, uint64_t now_ms)
{
    size_t i = forward_find(n, req_id);
    if (i == SIZE_MAX || strcmp(n->forwards[i].to, from) != 0) {
        /* A reply after its client was answered (-UNKNOWN when its leader failed), or from a
         * member we did not ask: dropped. */
        return;
    }
    if (reply_not_run(data, len)) {
        /* It no longer leads and ran nothing: a plain client of a follower never sees MOVED
         * (docs/protocol.md); the request waits for the next leader. */
        const struct node_member *leader = replica_leader_member(n);
        forward_rerun(n, i, leader != NULL && leader->id == n->forwards[i].leader, now_ms);
        return;
    }
    if (n->forwards[i].client != NULL) {
        hy_buf_append(&n->forwards[i].client->out, data, len);
    }
    forward_finish(n, i, now_ms);
}

/* Why forward f's leader can no longer answer it, or NULL while it still may. */
static const char *forward_lost(const struct hy_node *n, const struct node_forward *f)
{
    const struct node_member *leader = replica_leader_member(n);
    if (leader == NULL || leader->id != f->leader) {
        return "leadership moved";
    }
    if (!n->member_up[leader - n->members]) {
        return "its link went down";
    }
    return NULL;
}

int node_cut_off(const struct hy_node *n, uint64_t now_ms)
{
    if (n->leaderless_since_ms == 0 ||
        now_ms < n->leaderless_since_ms + (uint64_t)n->cfg->election_timeout_ms) {
        return 0;
    }
    return replica_reachable_voters(n) < replica_voters(n) / 2 + 1;
}

void proxy_check(struct hy_node *n, uint64_t now_ms)
{
    if (proxy_target(n) != NULL) {
        n->leaderless_since_ms = 0;
    } else if (n->leaderless_since_ms == 0) {
        n->leaderless_since_ms = now_ms;
    }
    for (size_t i = 0; i < n->forward_count;) {
        struct node_forward *f = &n->forwards[i];
        const char *why = forward_lost(n, f);
        if (why == NULL) {
            i++;
            continue;
        }
        if (!f->is_write) {
            forward_rerun(n, i, 0, now_ms); /* a read is simply asked again */
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
        forward_finish(n, i, now_ms);
    }
}

void proxy_expire(struct hy_node *n, uint64_t now_ms)
{
    uint64_t timeout = (uint64_t)n->cfg->request_timeout_ms;
    for (size_t i = 0; i < n->forward_count;) {
        struct node_forward *f = &n->forwards[i];
        if (now_ms < f->sent_ms + timeout) {
            i++;
            continue;
        }
        struct node_client *c = f->client;
        if (c != NULL) {
            struct resp_writer w = {&c->out, c->proto};
            resp_write_errorf(&w,
                              f->is_write ? "UNKNOWN outcome: the leader %s, reachable all along, "
                                            "did not answer the forwarded write within "
                                            "request-timeout-ms; it may or may not be applied"
                                          : "TRYAGAIN the leader %s, reachable all along, did not "
                                            "answer the forwarded read within request-timeout-ms",
                              f->to);
        }
        forward_finish(n, i, now_ms);
    }
}

void proxy_client_gone(struct hy_node *n, struct node_client *c)
{
    for (size_t i = 0; i < n->forward_count; i++) {
        if (n->forwards[i].client == c) {
            n->forwards[i].client = NULL; /* the reply, if any, is dropped */
        }
    }
}

void proxy_free(struct hy_node *n)
{
    struct node_peer_msg *m;
    while ((m = node_take_peer_msg(n)) != NULL) {
        node_peer_msg_free(m);
    }
    for (size_t i = 0; i < n->forward_count; i++) {
        hy_buf_free(&n->forwards[i].req);
    }
    hy_free(n->forwards);
}

/* ---- the leader's side --------------------------------------------------------------------- */

int proxy_maybe_finish(struct hy_node *n, struct node_client *c)
{
    if (!c->is_proxy || c->waiting > 0 || c->blocked_on_read || c->forwarding || c->in.len > 0 ||
        c->out.len == 0) {
        return 0;
    }
    outbox_push(n, NODE_FORWARD_REPLY, c->proxy_from, c->proxy_req_id, c->out.data, c->out.len);
    node_client_free(n, c);
    return 1;
}

void node_forward_request(struct hy_node *n, const char *from, uint64_t req_id, const uint8_t *data,
                          size_t len, uint64_t now_ms)
{
    if (len < 2 || (data[0] != 2 && data[0] != 3)) {
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
    c->proto = data[0];
    c->proxy_req_id = req_id;
    snprintf(c->proxy_from, sizeof(c->proxy_from), "%s", from);
    hy_buf_append(&c->in, data + 1, len - 1);
    node_client_process(n, c, now_ms);
    proxy_maybe_finish(n, c);
}
