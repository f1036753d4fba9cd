/*
 * client.c - the workload: several concurrent clients issuing GET, SET, INCR and DEL over a
 * few keys, with timeouts and retries to other nodes, and the server side that turns their
 * requests into Raft proposals (writes) and ReadIndex reads. Every call and return is stamped
 * in the history that lin.c checks.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "sim_int.h"

int sim_quiet_at(const struct sim *s, uint64_t t)
{
    uint64_t p = s->quiet_period_ms;
    return p != 0 && t % p >= p / 2;
}

static void client_schedule(struct sim *s, int c, uint64_t delay)
{
    if (s->draining) {
        return;
    }
    uint64_t at = s->now + delay;
    if (sim_quiet_at(s, at)) {
        /* Quiesce seeds: nobody asks anything in the second half of each period, so groups
         * go idle, quiesce, and must wake for the next burst (or a failure). */
        delay += s->quiet_period_ms - at % s->quiet_period_ms + (uint64_t)c * 3;
    }
    struct sim_ev ev = {.at = s->now + delay, .kind = EV_CLIENT_START, .client = c};
    sim_push(s, &ev);
}

void client_start_all(struct sim *s)
{
    for (int c = 0; c < s->nclients; c++) {
        s->clients[c].target = (int)hy_prng_below(&s->rng, (uint64_t)s->n);
        client_schedule(s, c, 200 + hy_prng_below(&s->rng, 200));
    }
}

static size_t op_new(struct sim *s, int c)
{
    if (s->nops == s->capops) {
        s->capops = s->capops ? s->capops * 2 : 256;
        s->ops = hy_xrealloc(s->ops, s->capops * sizeof(*s->ops));
    }
    struct sim_op *op = &s->ops[s->nops];
    memset(op, 0, sizeof(*op));
    op->client = c;
    uint64_t k = hy_prng_below(&s->rng, 100);
    op->kind = k < 35 ? SIM_OP_GET : k < 60 ? SIM_OP_SET : k < 88 ? SIM_OP_INCR : SIM_OP_DEL;
    op->key = (int)hy_prng_below(&s->rng, SIM_KEYS);
    /* SET values are unique: the op's number times SIM_VALUE_SPAN, so no INCR run on top of
     * one reaches another. A read returning a value some earlier SET wrote then names that
     * SET, and a stale read cannot hide behind a later SET of the same value. The draw is
     * kept (and unused) so that every seed makes the same other choices as before. */
    (void)hy_prng_below(&s->rng, 1000);
    op->arg = op->kind == SIM_OP_SET ? (int64_t)(s->nops + 1) * SIM_VALUE_SPAN : 0;
    op->call = ++s->hseq;
    op->ret = SIM_INF;
    return s->nops++;
}

void client_on_start(struct sim *s, const struct sim_ev *ev)
{
    struct sim_client *cl = &s->clients[ev->client];
    if (s->draining || cl->busy) {
        return;
    }
    cl->busy = 1;
    cl->op = op_new(s, ev->client);
    cl->gen++;
    struct sim_ev req = {.at = s->now + 1 + hy_prng_below(&s->rng, 2), .kind = EV_CLIENT_REQ};
    req.node = cl->target;
    req.client = ev->client;
    req.op = cl->op;
    sim_push(s, &req);
    struct sim_ev to = {.at = s->now + s->client_timeout_ms, .kind = EV_CLIENT_TIMEOUT};
    to.client = ev->client;
    to.gen = cl->gen;
    sim_push(s, &to);
    sim_trace(s, "c%d: op %zu kind %d key %d arg %lld -> n%d", ev->client, cl->op,
              s->ops[cl->op].kind, s->ops[cl->op].key, (long long)s->ops[cl->op].arg,
              cl->target + 1);
}

void client_on_reply(struct sim *s, const struct sim_ev *ev)
{
    struct sim_client *cl = &s->clients[ev->client];
    if (!cl->busy || cl->op != ev->op) {
        return; /* an answer after the client gave up: the op stays indeterminate */
    }
    struct sim_op *op = &s->ops[ev->op];
    cl->busy = 0;
    cl->gen++;
    if (ev->status) {
        op->done = 1;
        op->ret = ++s->hseq;
        op->has_value = ev->has_value;
        op->value = ev->value;
        if (s->healing) {
            cl->ok_after_heal = 1;
        }
    } else {
        op->failed = 1;
        int hinted = sim_node_index(s, ev->hint);
        cl->target = hinted >= 0 ? hinted : (int)hy_prng_below(&s->rng, (uint64_t)s->n);
    }
    sim_trace(s, "c%d: op %zu %s value %lld", ev->client, ev->op, ev->status ? "ok" : "failed",
              (long long)ev->value);
    client_schedule(s, ev->client, ev->status ? hy_prng_below(&s->rng, 10) : 5);
}

void client_on_timeout(struct sim *s, const struct sim_ev *ev)
{
    struct sim_client *cl = &s->clients[ev->client];
    if (!cl->busy || ev->gen != cl->gen) {
        return;
    }
    cl->busy = 0;
    cl->gen++;
    sim_trace(s, "c%d: op %zu timed out (indeterminate)", ev->client, cl->op);
    cl->target = (int)hy_prng_below(&s->rng, (uint64_t)s->n);
    client_schedule(s, ev->client, 1);
}

void node_reply(struct sim *s, struct sim_node *nd, int client, size_t op, int ok, int has_value,
                int64_t value)
{
    struct sim_ev ev = {.at = s->now + 1 + hy_prng_below(&s->rng, 2), .kind = EV_CLIENT_REPLY};
    ev.client = client;
    ev.op = op;
    ev.status = ok;
    ev.has_value = has_value;
    ev.value = value;
    ev.hint = nd->up ? raft_leader(&nd->raft) : RAFT_NONE;
    sim_push(s, &ev);
}

static void node_submit(struct sim *s, struct sim_node *nd, const struct sim_ev *ev)
{
    const struct sim_op *op = &s->ops[ev->op];
    struct hy_buf b;
    hy_buf_init(&b);
    sim_kv_encode(op->kind, op->key, op->arg, nd->raft.now_ms, &b);
    struct raft_entry e = {.type = RAFT_ENTRY_COMMAND, .len = (uint32_t)b.len, .data = b.data};
    struct raft_event rev = {.type = RAFT_EV_SUBMIT};
    rev.submit.entries = &e;
    rev.submit.n_entries = 1;
    sim_node_event(s, nd, &rev);
    hy_buf_free(&b);
    if (!nd->up || nd->last_status != HY_OK) {
        node_reply(s, nd, ev->client, ev->op, 0, 0, 0);
        return;
    }
    if (nd->npw == nd->cappw) {
        nd->cappw = nd->cappw ? nd->cappw * 2 : 16;
        nd->pw = hy_xrealloc(nd->pw, nd->cappw * sizeof(*nd->pw));
    }
    nd->pw[nd->npw++] = (struct sim_pending_write){.index = nd->last_submit_index,
                                                   .term = nd->last_submit_term,
                                                   .client = ev->client,
                                                   .op = ev->op};
}

static void node_read(struct sim *s, struct sim_node *nd, const struct sim_ev *ev)
{
    uint64_t id = ++s->read_ids;
    if (nd->npr == nd->cappr) {
        nd->cappr = nd->cappr ? nd->cappr * 2 : 16;
        nd->pr = hy_xrealloc(nd->pr, nd->cappr * sizeof(*nd->pr));
    }
    nd->pr[nd->npr++] = (struct sim_pending_read){.id = id, .client = ev->client, .op = ev->op};
    struct raft_event rev = {.type = RAFT_EV_READ};
    rev.read.ids = &id;
    rev.read.n_ids = 1;
    sim_node_event(s, nd, &rev);
}

void node_on_client_req(struct sim *s, const struct sim_ev *ev)
{
    struct sim_node *nd = &s->nodes[ev->node];
    if (!nd->up) {
        return; /* lost with the node: the client times out */
    }
    if (raft_role(&nd->raft) != RAFT_LEADER) {
        node_reply(s, nd, ev->client, ev->op, 0, 0, 0);
        return;
    }
    if (s->ops[ev->op].kind == SIM_OP_GET) {
        node_read(s, nd, ev);
    } else {
        node_submit(s, nd, ev);
    }
}

void node_on_read_results(struct sim *s, struct sim_node *nd, const struct raft_update *up)
{
    for (uint32_t i = 0; i < up->n_reads; i++) {
        const struct raft_read *rd = &up->reads[i];
        for (size_t k = 0; k < nd->npr; k++) {
            struct sim_pending_read *p = &nd->pr[k];
            if (p->id != rd->id) {
                continue;
            }
            if (!rd->ok) {
                node_reply(s, nd, p->client, p->op, 0, 0, 0);
                nd->pr[k] = nd->pr[--nd->npr];
            } else {
                p->ready = 1;
                p->index = rd->index;
            }
            break;
        }
    }
}

/* §6.4 step 4: "The leader waits for its state machine to advance at least as far as the
 * readIndex" before it answers. */
void node_serve_reads(struct sim *s, struct sim_node *nd)
{
    size_t k = 0;
    while (k < nd->npr) {
        struct sim_pending_read *p = &nd->pr[k];
        if (!p->ready || nd->applied < p->index) {
            k++;
            continue;
        }
        int64_t v = 0;
        int has = sim_kv_get(nd->kv, s->ops[p->op].key, &v);
        node_reply(s, nd, p->client, p->op, 1, has, v);
        nd->pr[k] = nd->pr[--nd->npr];
    }
}

void node_on_applied(struct sim *s, struct sim_node *nd, uint64_t index, uint64_t term, int ok,
                     int64_t result)
{
    for (size_t k = 0; k < nd->npw; k++) {
        struct sim_pending_write *w = &nd->pw[k];
        if (w->index != index) {
            continue;
        }
        /* Another entry at our index means ours was never committed: a definite failure. */
        int ours = w->term == term && ok;
        if (ours) {
            check_acked(s, index, term);
        }
        node_reply(s, nd, w->client, w->op, ours, 0, result);
        nd->pw[k] = nd->pw[--nd->npw];
        return;
    }
}
