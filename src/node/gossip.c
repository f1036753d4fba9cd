/*
 * gossip.c - the node's membership view (src/membership) bound to the engine: the members
 * Raft knows are the members gossip probes; gossip's SUSPECT, DEAD and ALIVE become the
 * MEMBER_SUSPECT, MEMBER_FAILED and MEMBER_ALIVE events, the node-level liveness every Raft
 * group hears (RAFT_EV_LIVENESS), the health score's suspect members and CLUSTER NODES' flags.
 * Raft stays the authority on who is a member and who leads; gossip only says who is alive.
 *
 * Pure like the rest of the engine: the shell starts it (node_gossip_start) when it has a
 * transport for its messages, hands in what arrives and the link's heartbeats, drains the
 * outbox (node_gossip_take) and calls node_gossip_tick by node_gossip_next_ms.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/log.h"
#include "common/version.h"
#include "membership/membership.h"
#include "node/node_internal.h"

#define GOSSIP_OUT_MAX 256 /* messages waiting for the shell; beyond, dropped (gossip is lossy) */

_Static_assert(MEMBERSHIP_MSG_BYTES_MAX >=
                   1 + 4 + 1 + MEMBERSHIP_NAME_MAX + 1 +
                       MEMBERSHIP_PIGGYBACK_MAX *
                           (1 + 8 + 1 + MEMBERSHIP_NAME_MAX + 3 + MEMBERSHIP_ADDR_MAX +
                            MEMBERSHIP_ZONE_MAX + MEMBERSHIP_VERSION_MAX + 4 + 1 +
                            MEMBERSHIP_NAME_MAX),
               "an encoded message fits an outbox slot");
_Static_assert(NODE_GOSSIP_RING_MAX == 2 * MEMBERSHIP_RING_K_MAX, "node.h's ring bound");

struct gossip_out {
    char to[NODE_MEMBER_NAME_MAX + 1];
    size_t len;
    uint8_t data[MEMBERSHIP_MSG_BYTES_MAX];
};

struct node_gossip {
    struct membership mb;
    struct hy_node *node;
    uint64_t members_epoch; /* the node's member list last folded in */
    uint64_t now_ms;        /* of the call in progress (for the state callback) */
    struct gossip_out *out;
    size_t out_head, out_count;
    uint64_t dropped;
};

static void gossip_send_cb(void *ctx, const char *to, const struct membership_msg *msg)
{
    struct node_gossip *g = ctx;
    if (g->out_count == GOSSIP_OUT_MAX || strlen(to) > NODE_MEMBER_NAME_MAX) {
        g->dropped++;
        return;
    }
    struct gossip_out *o = &g->out[(g->out_head + g->out_count++) % GOSSIP_OUT_MAX];
    snprintf(o->to, sizeof(o->to), "%s", to);
    struct hy_buf b;
    hy_buf_init(&b);
    membership_msg_encode(&b, msg);
    HY_ASSERT(b.len <= sizeof(o->data));
    memcpy(o->data, b.data, b.len);
    o->len = b.len;
    hy_buf_free(&b);
}

/* Gossip's view changed: the engine hears of it as it heard of links before. */
static void gossip_state_cb(void *ctx, const char *name, int from, int to, uint64_t inc)
{
    struct node_gossip *g = ctx;
    struct hy_node *n = g->node;
    (void)inc;
    if (strcmp(name, n->cfg->node_id) == 0 || from == to) {
        return;
    }
    hy_log(n->log, to == MEMBERSHIP_ALIVE ? HY_LOG_INFO : HY_LOG_WARN,
           "gossip: member %s %s -> %s (incarnation %llu)", name,
           from < 0 ? "new" : membership_state_name(from), membership_state_name(to),
           (unsigned long long)inc);
    switch (to) {
    case MEMBERSHIP_ALIVE: node_peer_liveness(n, name, 1, g->now_ms); break;
    case MEMBERSHIP_SUSPECT:
        /* A suspicion may be refuted: Raft groups are not told the member is down (their
         * followers would campaign against a healthy leader), only that it is suspected, on
         * which the quiesced followers of the groups it leads wake and nudge it, and campaign
         * only if it stays silent for an election timeout. They hear of a broken link at once
         * (node_peer_state) and of a death below. */
        node_peer_suspect(n, name, g->now_ms);
        break;
    case MEMBERSHIP_DEAD:
        node_peer_liveness(n, name, 0, g->now_ms); /* MEMBER_SUSPECT first, if not yet */
        node_events_failed(n, name, g->now_ms);
        break;
    default: break; /* LEFT: Raft removed it; MEMBER_REMOVED says so */
    }
}

static void gossip_config(const struct hy_config *cfg, struct membership_config *mc)
{
    membership_config_default(mc);
    mc->phi_threshold = (double)cfg->gossip_phi_threshold;
    mc->probe_interval_ms = (uint32_t)cfg->gossip_probe_interval_ms;
    mc->probe_timeout_ms = (uint32_t)cfg->gossip_probe_timeout_ms;
    mc->suspicion_mult = (uint32_t)cfg->gossip_suspicion_mult;
    mc->suspicion_max_mult = (uint32_t)cfg->gossip_suspicion_max_mult;
    mc->indirect_probes = (uint32_t)cfg->gossip_indirect_probes;
    mc->stall_ms = (uint32_t)cfg->gossip_stall_ms;
    /* Below the core's bucket count the window means nothing: off. */
    mc->lag_window_ms = cfg->gossip_lag_window_ms < MEMBERSHIP_LAG_BUCKETS
                            ? 0
                            : (uint32_t)cfg->gossip_lag_window_ms;
    mc->lag_grace_max_ms = (uint32_t)cfg->gossip_lag_grace_max_ms;
    mc->members_max = NODE_MEMBERS_MAX;
}

/* The node's members (Raft's list) into the view: new ones added, removed ones LEFT. */
static void gossip_members(struct node_gossip *g, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (g->members_epoch == n->members_epoch) {
        return;
    }
    g->members_epoch = n->members_epoch;
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (m->role == STORE_MEMBER_REMOVED) {
            membership_remove(&g->mb, m->name, now_ms);
        } else if (node_member_is_peer(n, m)) {
            if (membership_add(&g->mb, m->name, now_ms) != HY_OK) {
                g->dropped++; /* the view is full: this member stays unwatched */
            }
        }
    }
}

int node_gossip_start(struct hy_node *n, uint64_t seed, uint64_t now_ms)
{
    if (!n->cfg->gossip || n->gossip != NULL) {
        return HY_OK;
    }
    struct node_gossip *g = hy_xcalloc(1, sizeof(*g));
    g->node = n;
    g->now_ms = now_ms;
    g->out = hy_xcalloc(GOSSIP_OUT_MAX, sizeof(*g->out));
    struct membership_config mc;
    gossip_config(n->cfg, &mc);
    struct membership_meta meta = {0};
    snprintf(meta.addr, sizeof(meta.addr), "%.40s:%lld", n->cfg->bind, (long long)n->cfg->port);
    snprintf(meta.version, sizeof(meta.version), "%s", HY_VERSION);
    struct membership_callbacks cbs = {
        .ctx = g, .send_cb = gossip_send_cb, .state_cb = gossip_state_cb};
    int rc = membership_init(&g->mb, &mc, n->cfg->node_id, &meta, &cbs, seed, now_ms);
    if (rc != HY_OK) {
        hy_free(g->out);
        hy_free(g);
        return rc;
    }
    n->gossip = g;
    g->members_epoch = n->members_epoch - 1;
    gossip_members(g, now_ms);
    /* The ring now, not at the first probe: the shell beacons to it from its first turn. */
    (void)membership_ring(&g->mb, NULL, 0);
    return HY_OK;
}

void node_gossip_free(struct hy_node *n)
{
    if (n->gossip == NULL) {
        return;
    }
    membership_free(&n->gossip->mb);
    hy_free(n->gossip->out);
    hy_free(n->gossip);
    n->gossip = NULL;
}

int node_gossip_on(const struct hy_node *n)
{
    return n->gossip != NULL;
}

void node_gossip_receive(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                         uint64_t now_ms)
{
    struct node_gossip *g = n->gossip;
    if (g == NULL) {
        return;
    }
    struct membership_msg msg;
    if (membership_msg_decode(data, len, &msg) != HY_OK) {
        g->mb.stats.msgs_refused++;
        hy_log(n->log, HY_LOG_WARN, "gossip: dropped a malformed message from %s (%zu bytes)", from,
               len);
        return;
    }
    g->now_ms = now_ms;
    membership_receive(&g->mb, from, &msg, now_ms);
}

void node_gossip_heartbeat(struct hy_node *n, const char *from, uint64_t heard_ms)
{
    if (n->gossip != NULL) {
        n->gossip->now_ms = heard_ms;
        membership_heartbeat(&n->gossip->mb, from, heard_ms);
    }
}

void node_gossip_link_down(struct hy_node *n, const char *name, uint64_t now_ms)
{
    if (n->gossip != NULL) {
        n->gossip->now_ms = now_ms;
        membership_link_down(&n->gossip->mb, name, now_ms);
    }
}

void node_gossip_tick(struct hy_node *n, uint64_t now_ms)
{
    struct node_gossip *g = n->gossip;
    if (g == NULL) {
        return;
    }
    g->now_ms = now_ms;
    struct membership_config mc;
    gossip_config(n->cfg, &mc);
    if (memcmp(&mc, &g->mb.cfg, sizeof(mc)) != 0 && membership_set_config(&g->mb, &mc) != HY_OK) {
        /* CONFIG SET let through a pair the core refuses (timeout >= interval): keep the old. */
        n->cfg->gossip_probe_timeout_ms = g->mb.cfg.probe_timeout_ms;
        n->cfg->gossip_probe_interval_ms = g->mb.cfg.probe_interval_ms;
    }
    gossip_members(g, now_ms);
    membership_tick(&g->mb, now_ms);
}

void node_gossip_note_runnable(struct hy_node *n, uint64_t runnable_ms, uint64_t now_ms)
{
    if (n->gossip != NULL) {
        membership_note_runnable(&n->gossip->mb, runnable_ms, now_ms);
    }
}

uint64_t node_gossip_next_ms(const struct hy_node *n)
{
    return n->gossip != NULL ? membership_next_ms(&n->gossip->mb) : UINT64_MAX;
}

int node_gossip_take(struct hy_node *n, char *to_out, size_t to_cap, const uint8_t **data_out,
                     size_t *len_out)
{
    struct node_gossip *g = n->gossip;
    if (g == NULL || g->out_count == 0) {
        return 0;
    }
    struct gossip_out *o = &g->out[g->out_head];
    g->out_head = (g->out_head + 1) % GOSSIP_OUT_MAX;
    g->out_count--;
    snprintf(to_out, to_cap, "%s", o->to);
    *data_out = o->data; /* valid until the slot is reused: after the next gossip call */
    *len_out = o->len;
    return 1;
}

const char *node_gossip_state(const struct hy_node *n, const char *name)
{
    if (n->gossip == NULL) {
        return NULL;
    }
    const struct membership_member *m = membership_find(&n->gossip->mb, name);
    return m != NULL ? membership_state_name(m->state) : NULL;
}

int node_gossip_member(const struct hy_node *n, const char *name, struct node_gossip_view *out)
{
    if (n->gossip == NULL) {
        return 0;
    }
    const struct membership_member *m = membership_find(&n->gossip->mb, name);
    if (m == NULL) {
        return 0;
    }
    out->state = membership_state_name(m->state);
    out->incarnation = m->incarnation;
    out->phi = m->is_self ? 0.0 : membership_phi(&n->gossip->mb, name, n->gossip->now_ms);
    return 1;
}

size_t node_gossip_ring(const struct hy_node *n, const char **out, size_t cap, uint64_t *epoch)
{
    if (epoch != NULL) {
        *epoch = n->gossip != NULL ? n->gossip->mb.ring_epoch : 0;
    }
    if (n->gossip == NULL) {
        return 0;
    }
    const struct membership *mb = &n->gossip->mb;
    for (size_t i = 0; i < mb->ring_count && i < cap; i++) {
        out[i] = mb->members[mb->ring[i]].name;
    }
    return mb->ring_count;
}

void node_gossip_stats(const struct hy_node *n, struct node_gossip_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (n->gossip == NULL) {
        return;
    }
    const struct membership *mb = &n->gossip->mb;
    out->on = 1;
    out->local_health = mb->lhm;
    out->incarnation = mb->members[0].incarnation;
    out->probes = mb->stats.probes;
    out->probes_failed = mb->stats.probes_failed;
    out->suspicions = mb->stats.suspicions;
    out->refutations = mb->stats.refutations;
    out->deaths = mb->stats.deaths;
    out->msgs_dropped = n->gossip->dropped;
    out->suspect_probe = mb->stats.suspect_probe;
    out->suspect_phi = mb->stats.suspect_phi;
    out->suspect_link = mb->stats.suspect_link;
    out->stalls = mb->stats.stalls;
    out->stall_max_ms = mb->stats.stall_max_ms;
    out->stalls_stopped = mb->stats.stalls_stopped;
    out->lag_grace_ms = membership_grace(mb);
    out->grace_saved_probe = mb->stats.grace_saved_probe;
    out->grace_saved_phi = mb->stats.grace_saved_phi;
    out->peer_stalls = mb->stats.peer_stalls;
    out->peer_gaps = mb->stats.peer_gaps;
    out->ring_links = (uint32_t)mb->ring_count;
    for (size_t i = 1; i < mb->count; i++) {
        out->alive += mb->members[i].state == MEMBERSHIP_ALIVE;
        out->suspect += mb->members[i].state == MEMBERSHIP_SUSPECT;
        out->dead += mb->members[i].state == MEMBERSHIP_DEAD;
    }
}
