/*
 * proxy.c - followers forward requests to the leader (redirect: proxy, the default), so plain
 * clients behind a load balancer work against any member.
 *
 * A follower re-encodes the request, sends it once to the leader in a FORWARD frame and the
 * client waits; the leader runs it on an internal client (authenticated by the follower
 * already) and sends back the reply bytes, which the follower hands over unchanged. A request
 * is forwarded once and never retried by the engine: a write whose reply does not come back
 * within request-timeout-ms is answered -UNKNOWN outcome, never re-applied (Redis-Raft's
 * proxy looped re-applying commands; Jepsen 2020).
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

/* Payload: the client's protocol (one byte), then the request as a RESP multibulk. */
static void encode_request(const struct cmd_ctx *x, struct hy_buf *out)
{
    hy_buf_append_u8(out, (uint8_t)x->w.proto);
    hy_buf_printf(out, "*%zu\r\n", x->argc);
    for (size_t i = 0; i < x->argc; i++) {
        hy_buf_printf(out, "$%zu\r\n", x->argv[i].len);
        hy_buf_append(out, x->argv[i].ptr, x->argv[i].len);
        hy_buf_append(out, "\r\n", 2);
    }
}

int proxy_forward(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    const struct node_member *leader = replica_leader_member(n);
    if (leader == NULL) {
        return 0;
    }
    if (n->forward_count == n->forward_cap) {
        n->forward_cap = n->forward_cap ? n->forward_cap * 2 : 16;
        n->forwards = hy_xrealloc(n->forwards, n->forward_cap * sizeof(*n->forwards));
    }
    uint64_t id = ++n->next_forward_id;
    n->forwards[n->forward_count++] =
        (struct node_forward){.req_id = id,
                              .client = x->client,
                              .sent_ms = x->now_ms,
                              .is_write = (x->cmd->flags & CMD_WRITE) != 0};
    struct hy_buf req;
    hy_buf_init(&req);
    encode_request(x, &req);
    outbox_push(n, NODE_FORWARD, leader->name, id, req.data, req.len);
    hy_buf_free(&req);
    x->client->forwarding = 1;
    return 1;
}

static void forward_remove(struct hy_node *n, size_t i)
{
    n->forwards[i] = n->forwards[--n->forward_count];
}

void node_forward_reply(struct hy_node *n, uint64_t req_id, const uint8_t *data, size_t len,
                        uint64_t now_ms)
{
    for (size_t i = 0; i < n->forward_count; i++) {
        if (n->forwards[i].req_id == req_id) {
            struct node_client *c = n->forwards[i].client;
            forward_remove(n, i);
            if (c != NULL) {
                hy_buf_append(&c->out, data, len);
                c->forwarding = 0;
                replica_mark_ready(n, c);
                node_client_process(n, c, now_ms); /* its next requests, in order */
            }
            return;
        }
    }
    /* A reply after its deadline: the client was already told the outcome is unknown. */
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
            resp_write_error(&w, f->is_write
                                     ? "UNKNOWN outcome: the leader did not answer the forwarded "
                                       "write within request-timeout-ms; it may or may not be "
                                       "applied"
                                     : "TRYAGAIN the leader did not answer the forwarded read "
                                       "within request-timeout-ms");
            c->forwarding = 0;
            replica_mark_ready(n, c);
            node_client_process(n, c, now_ms);
        }
        forward_remove(n, i);
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
