/*
 * events.c - cluster events as this node sees them (issue 14, "Cluster events"): members
 * added and removed (the address book), a member's link lost and back (MEMBER_SUSPECT,
 * MEMBER_ALIVE) and lost for long (MEMBER_FAILED), a Raft group's new leader
 * (LEADER_CHANGED), a group without a leader for longer than an election can take
 * (QUORUM_LOST: "partition detected") and its leader back (QUORUM_REGAINED: "partition
 * healed"), the WAL's disk full and writable again (DISK_FULL, DISK_WRITABLE), and, on a
 * group's leader, a follower more than alert-lag-entries behind (FOLLOWER_LAGGING) and back
 * within half of it (FOLLOWER_CAUGHT_UP), and, on a partition's leader, a replica move
 * started (MOVE_STARTED: a replica the partition map asks for added as a learner) and finished
 * (MOVE_FINISHED: the group's voters are the map's replicas again; member.c) or ended without
 * its target (MOVE_ABANDONED: the map no longer lists it), and, on the metadata leader, a move
 * cancelled (MOVE_CANCELLED: HALYARD REBALANCE CANCEL put the partition back; partmap.c),
 * and, on a partition's leader, a WAN link's target unreachable and back (WAN_LINK_DOWN,
 * WAN_LINK_UP) and a resync of it started and done (RESYNC_STARTED, RESYNC_DONE; wan_ship.c),
 * and the cluster's region role set (REGION_PROMOTED, REGION_DEMOTED: HALYARD WAN PROMOTE,
 * or a primary promoted elsewhere; every member reports it as it applies it).
 *
 * Each event is one JSON object, numbered from 1 in the order this node saw them, kept in a
 * ring of the last NODE_EVENTS_MAX, logged, published to this node's subscribers of the pub/sub
 * channel __halyard__:events (NODE_EVENTS_CHANNEL; HALYARD EVENTS SUBSCRIBE [SINCE id] names it
 * for the client and replays the kept ones first), and read with HALYARD EVENTS [SINCE id]
 * [COUNT n] (halyctl events polls it; the shell streams them on /events). Detection is
 * level-triggered from cron, so nothing is missed while the loop was busy, and a change that
 * undoes itself between two looks is not reported: events say what this node observed, not
 * every Raft step. Member verdicts come from gossip (gossip.c: node_events_peer and
 * node_events_failed); with gossip off, from the peer links' silence.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"
#include "node/wan.h"

/* A member down this long (link lost, not back) is reported FAILED. */
#define EVENTS_FAILED_AFTER_ELECTIONS 10
/* After start, links get this long to form before a member never reached is suspect. */
#define EVENTS_LINK_GRACE_MS          2000

static void event_push(struct hy_node *n, uint64_t now_ms, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void event_push(struct hy_node *n, uint64_t now_ms, const char *type, const char *fmt, ...)
{
    struct node_events *ev = &n->events;
    uint64_t id = ++ev->last_id;
    char *slot = ev->ring[id % NODE_EVENTS_MAX];
    int len = snprintf(slot, NODE_EVENT_BYTES, "{\"id\":%llu,\"time\":%llu,\"type\":\"%s\"",
                       (unsigned long long)id, (unsigned long long)now_ms, type);
    /* The fields after the common ones, then the closing brace (they are short: names of at
     * most NODE_MEMBER_NAME_MAX bytes and numbers). */
    char fields[NODE_EVENT_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int flen = vsnprintf(fields, sizeof(fields), fmt, ap);
    va_end(ap);
    size_t at = len > 0 && (size_t)len < NODE_EVENT_BYTES - 2 ? (size_t)len : 0;
    if (at > 0 && flen > 0) {
        size_t room = NODE_EVENT_BYTES - 2 - at - 1; /* the comma, the brace, the NUL */
        size_t take = HY_MIN((size_t)flen, room);
        slot[at++] = ',';
        memcpy(slot + at, fields, take);
        at += take;
    }
    slot[at] = '}';
    slot[at + 1] = '\0';
    hy_log(n->log, HY_LOG_INFO, "event %s", slot);
    node_pubsub_event(n, slot);
}

/* A group's name in events and -NOQUORUM: "partition" p for data groups, the metadata group as
 * -1 (with one partition, group 0 holds every slot: partition 0). */
int node_group_partition(const struct hy_node *n, const struct node_group *g)
{
    if (n->group_count == 1) {
        return 0;
    }
    return g->id == 0 ? -1 : (int)g->id - 1;
}

static const char *member_name_of(const struct hy_node *n, raft_id id)
{
    const char *name = node_member_name(n, id);
    return name != NULL ? name : "?";
}

void node_events_peer(struct hy_node *n, const char *name, int up, uint64_t now_ms)
{
    struct node_events *ev = &n->events;
    for (size_t i = 0; i < n->member_count; i++) {
        if (strcmp(n->members[i].name, name) != 0) {
            continue;
        }
        if (up && ev->down_since_ms[i] != 0) {
            event_push(n, now_ms, "MEMBER_ALIVE", "\"member\":\"%s\"", name);
            ev->down_since_ms[i] = 0;
            ev->failed[i] = 0;
        } else if (!up && ev->down_since_ms[i] == 0) {
            event_push(n, now_ms, "MEMBER_SUSPECT", "\"member\":\"%s\"", name);
            ev->down_since_ms[i] = now_ms;
        }
    }
}

void node_events_move(struct hy_node *n, uint64_t now_ms, const struct node_group *g, int done,
                      const char *target, const char *source, uint64_t epoch)
{
    event_push(n, now_ms,
               done == 2   ? "MOVE_ABANDONED"
               : done == 1 ? "MOVE_FINISHED"
                           : "MOVE_STARTED",
               "\"partition\":%u,\"group\":%u,\"target\":\"%s\",\"source\":%s%s%s,"
               "\"epoch\":%llu",
               g->id - 1, g->id, target, source ? "\"" : "", source ? source : "null",
               source ? "\"" : "", (unsigned long long)epoch);
}

void node_events_wan(struct hy_node *n, uint64_t now_ms, const char *type, const char *fields)
{
    event_push(n, now_ms, type, "%s", fields);
}

void node_events_move_cancelled(struct hy_node *n, uint64_t now_ms, uint32_t partition,
                                const char *targets, const char *sources, uint64_t epoch)
{
    event_push(n, now_ms, "MOVE_CANCELLED",
               "\"partition\":%u,\"group\":%u,\"targets\":\"%s\",\"sources\":\"%s\","
               "\"epoch\":%llu",
               partition, partition + 1, targets, sources, (unsigned long long)epoch);
}

void node_events_failed(struct hy_node *n, const char *name, uint64_t now_ms)
{
    struct node_events *ev = &n->events;
    for (size_t i = 0; i < n->member_count; i++) {
        if (strcmp(n->members[i].name, name) != 0 || ev->failed[i]) {
            continue;
        }
        if (ev->down_since_ms[i] == 0) {
            ev->down_since_ms[i] = now_ms;
        }
        ev->failed[i] = 1;
        event_push(n, now_ms, "MEMBER_FAILED", "\"member\":\"%s\",\"downMs\":%llu", name,
                   (unsigned long long)(now_ms - ev->down_since_ms[i]));
    }
}

/* The address book: members that appeared, and those that went (or were marked removed). */
static void events_members(struct hy_node *n, uint64_t now_ms)
{
    struct node_events *ev = &n->events;
    if (ev->members_epoch == n->members_epoch && ev->members_seen) {
        return;
    }
    char now_names[NODE_MEMBERS_MAX][NODE_MEMBER_NAME_MAX + 1];
    size_t count = 0;
    for (size_t i = 0; i < n->member_count && count < NODE_MEMBERS_MAX; i++) {
        if (n->members[i].role != STORE_MEMBER_REMOVED) {
            snprintf(now_names[count++], NODE_MEMBER_NAME_MAX + 1, "%s", n->members[i].name);
        }
    }
    if (ev->members_seen) {
        for (size_t i = 0; i < count; i++) {
            int known = 0;
            for (size_t j = 0; j < ev->member_count && !known; j++) {
                known = strcmp(ev->member_names[j], now_names[i]) == 0;
            }
            if (!known) {
                event_push(n, now_ms, "MEMBER_ADDED", "\"member\":\"%s\"", now_names[i]);
            }
        }
        for (size_t j = 0; j < ev->member_count; j++) {
            int still = 0;
            for (size_t i = 0; i < count && !still; i++) {
                still = strcmp(ev->member_names[j], now_names[i]) == 0;
            }
            if (!still) {
                event_push(n, now_ms, "MEMBER_REMOVED", "\"member\":\"%s\"", ev->member_names[j]);
            }
        }
    }
    memcpy(ev->member_names, now_names, count * sizeof(now_names[0]));
    ev->member_count = count;
    ev->members_epoch = n->members_epoch;
    ev->members_seen = 1;
}

/* On each group this node leads: followers more than alert-lag-entries behind. */
static void events_lag(struct hy_node *n, uint64_t now_ms)
{
    struct node_events *ev = &n->events;
    uint64_t limit = (uint64_t)n->cfg->alert_lag_entries;
    for (size_t gi = 0; gi < n->group_count && gi < NODE_GROUPS_EVENTS_MAX; gi++) {
        struct node_group *g = n->groups[gi];
        if (raft_role(&g->raft) != RAFT_LEADER) {
            ev->lagging[gi] = 0;
            continue;
        }
        if (raft_quiesced(&g->raft)) {
            continue; /* no entry and no answer moves a lag while quiesced: nothing to judge */
        }
        uint64_t last = raft_last_index(&g->raft);
        for (size_t i = 0; i < n->member_count && i < 64; i++) {
            struct raft_follower f;
            if (!raft_follower_info(&g->raft, n->members[i].id, &f)) {
                continue;
            }
            uint64_t lag = last > f.match_index ? last - f.match_index : 0;
            uint64_t bit = 1ull << i;
            if (!(ev->lagging[gi] & bit) && lag > limit) {
                ev->lagging[gi] |= bit;
                event_push(n, now_ms, "FOLLOWER_LAGGING",
                           "\"member\":\"%s\",\"partition\":%d,\"group\":%u,\"lagEntries\":%llu",
                           n->members[i].name, node_group_partition(n, g), g->id,
                           (unsigned long long)lag);
            } else if ((ev->lagging[gi] & bit) && lag <= limit / 2) {
                ev->lagging[gi] &= ~bit;
                event_push(n, now_ms, "FOLLOWER_CAUGHT_UP",
                           "\"member\":\"%s\",\"partition\":%d,\"group\":%u,\"lagEntries\":%llu",
                           n->members[i].name, node_group_partition(n, g), g->id,
                           (unsigned long long)lag);
            }
        }
    }
}

/* The cluster's region role (docs/wan.md "Region failover") as this member's copy of the
 * metadata group holds it: a new one is REGION_PROMOTED or REGION_DEMOTED. */
static void events_region(struct hy_node *n, uint64_t now_ms)
{
    struct node_events *ev = &n->events;
    struct wan_role r;
    node_wan_role(n, &r);
    uint32_t by = wan_origin_id(r.by, strlen(r.by));
    if ((int)r.kind == ev->wan_role && r.epoch == ev->wan_role_epoch && by == ev->wan_role_by) {
        return;
    }
    ev->wan_role = (int)r.kind;
    ev->wan_role_epoch = r.epoch;
    ev->wan_role_by = by;
    if (r.kind != WAN_ROLE_NONE) {
        event_push(n, now_ms, r.kind == WAN_ROLE_PRIMARY ? "REGION_PROMOTED" : "REGION_DEMOTED",
                   "\"epoch\":%llu,\"by\":\"%s\"", (unsigned long long)r.epoch, r.by);
    }
}

static size_t events_groups(struct hy_node *n, uint64_t now_ms);

void node_events_cron(struct hy_node *n, uint64_t now_ms)
{
    struct node_events *ev = &n->events;
    events_members(n, now_ms);
    /* The groups' leaders and lags move only when a group steps: walked then, and at every
     * tick while a group has no leader (its QUORUM_LOST comes with time alone). */
    int walk = ev->leaderless_groups > 0 || node_walk_due(n, &ev->groups_walk, now_ms);
    if (walk) {
        events_lag(n, now_ms);
    }
    if (n->disk_full != ev->disk_full) {
        ev->disk_full = n->disk_full;
        event_push(n, now_ms, n->disk_full ? "DISK_FULL" : "DISK_WRITABLE", "%s", "");
    }
    events_region(n, now_ms);
    uint64_t election = (uint64_t)n->cfg->election_timeout_ms;
    if (ev->started_ms == 0) {
        ev->started_ms = now_ms;
    }
    for (size_t i = 0; i < n->member_count; i++) {
        /* A member whose link never came up (down before this node could reach it) is
         * suspect too, once the links have had time to form. Only one never reached: a link
         * that broke later was reported as it broke, and a member back since was reported
         * ALIVE by whoever judges it (gossip, or the link), which would not say so again when
         * this link formed later (a member that restarted while this node's dial to it timed
         * out was suspected here after gossip's MEMBER_ALIVE, and stayed so). */
        const struct node_member *m = &n->members[i];
        ev->reached[i] |= n->member_up[i];
        if (!ev->reached[i] && ev->down_since_ms[i] == 0 && m->role != STORE_MEMBER_REMOVED &&
            strcmp(m->name, n->cfg->node_id) != 0 &&
            now_ms >= ev->started_ms + EVENTS_LINK_GRACE_MS) {
            event_push(n, now_ms, "MEMBER_SUSPECT", "\"member\":\"%s\"", m->name);
            ev->down_since_ms[i] = now_ms;
        }
    }
    for (size_t i = 0; i < n->member_count; i++) {
        /* Without gossip, a member down this long is failed; with it, gossip says (DEAD). */
        if (n->gossip == NULL && ev->down_since_ms[i] != 0 && !ev->failed[i] &&
            now_ms >= ev->down_since_ms[i] + EVENTS_FAILED_AFTER_ELECTIONS * election) {
            ev->failed[i] = 1;
            event_push(n, now_ms, "MEMBER_FAILED", "\"member\":\"%s\",\"downMs\":%llu",
                       n->members[i].name, (unsigned long long)(now_ms - ev->down_since_ms[i]));
        }
    }
    if (walk) {
        ev->leaderless_groups = events_groups(n, now_ms);
    }
}

/* LEADER_CHANGED, QUORUM_LOST and QUORUM_REGAINED of every group; returns how many groups
 * have no leader. */
static size_t events_groups(struct hy_node *n, uint64_t now_ms)
{
    struct node_events *ev = &n->events;
    uint64_t election = (uint64_t)n->cfg->election_timeout_ms;
    size_t leaderless = 0;
    for (size_t gi = 0; gi < n->group_count && gi < NODE_GROUPS_EVENTS_MAX; gi++) {
        struct node_group *g = n->groups[gi];
        if (!node_group_has(g, g->raft.cfg.id) && g != n->meta) {
            continue; /* no replica here (partmap.c): its replicas report on it */
        }
        raft_id leader = raft_leader(&g->raft);
        uint64_t term = raft_term(&g->raft);
        int p = node_group_partition(n, g);
        if (leader != RAFT_NONE && (leader != ev->leader[gi] || term != ev->leader_term[gi])) {
            if (leader != ev->leader[gi]) {
                event_push(n, now_ms, "LEADER_CHANGED",
                           "\"partition\":%d,\"group\":%u,\"leader\":\"%s\",\"term\":%llu", p,
                           g->id, member_name_of(n, leader), (unsigned long long)term);
            }
            ev->leader[gi] = leader;
            ev->leader_term[gi] = term;
        }
        /* Quorum: a group that had a leader and has none for longer than elections take. */
        if (leader == RAFT_NONE) {
            leaderless++;
            if (ev->leaderless_since_ms[gi] == 0) {
                ev->leaderless_since_ms[gi] = now_ms;
            }
            if (!ev->quorum_lost[gi] && ev->leader_term[gi] != 0 &&
                now_ms >= ev->leaderless_since_ms[gi] + 2 * election) {
                ev->quorum_lost[gi] = 1;
                event_push(n, now_ms, "QUORUM_LOST", "\"partition\":%d,\"group\":%u,\"term\":%llu",
                           p, g->id, (unsigned long long)term);
            }
        } else {
            ev->leaderless_since_ms[gi] = 0;
            if (ev->quorum_lost[gi]) {
                ev->quorum_lost[gi] = 0;
                event_push(n, now_ms, "QUORUM_REGAINED",
                           "\"partition\":%d,\"group\":%u,\"leader\":\"%s\",\"term\":%llu", p,
                           g->id, member_name_of(n, leader), (unsigned long long)term);
            }
        }
    }
    return leaderless;
}

void node_set_health(struct hy_node *n, int node_score, int cluster_score, const char *reasons)
{
    n->health_score = node_score;
    n->cluster_health_score = cluster_score;
    snprintf(n->health_reasons, sizeof(n->health_reasons), "%s", reasons);
}

void node_set_wal_last_sync(struct hy_node *n, uint64_t at_ms)
{
    n->wal_last_sync_ms = at_ms;
}

void node_set_wal_loop_commits(struct hy_node *n, uint64_t count, uint64_t pauses)
{
    n->wal_loop_sync_pauses = pauses;
    n->wal_loop_commits = count;
}

uint64_t node_events_last_id(const struct hy_node *n)
{
    return n->events.last_id;
}

const char *node_event_get(const struct hy_node *n, uint64_t id)
{
    const struct node_events *ev = &n->events;
    if (id == 0 || id > ev->last_id || ev->last_id - id >= NODE_EVENTS_MAX) {
        return NULL;
    }
    return ev->ring[id % NODE_EVENTS_MAX];
}

void cmd_halyard_alerts(struct cmd_ctx *x)
{
    if (x->argc != 3 || !node_arg_is(&x->argv[2], "TEST")) {
        resp_write_error(&x->w, "ERR syntax: HALYARD ALERTS TEST");
        return;
    }
    event_push(x->node, x->now_ms, "ALERT_TEST", "%s", "");
    resp_write_int(&x->w, (int64_t)x->node->events.last_id);
}

/* HALYARD EVENTS SUBSCRIBE [SINCE id] and HALYARD EVENTS UNSUBSCRIBE (pubsub.c). */
static void events_subscription(struct cmd_ctx *x)
{
    int64_t since = -1;
    if (node_arg_is(&x->argv[2], "UNSUBSCRIBE") && x->argc == 3) {
        node_pubsub_events_unsubscribe(x);
    } else if (node_arg_is(&x->argv[2], "SUBSCRIBE") &&
               (x->argc == 3 ||
                (x->argc == 5 && node_arg_is(&x->argv[3], "SINCE") &&
                 hy_parse_i64(x->argv[4].ptr, x->argv[4].len, &since) && since >= 0))) {
        node_pubsub_events_subscribe(x, since);
    } else {
        resp_write_error(&x->w, "ERR syntax: HALYARD EVENTS SUBSCRIBE [SINCE id] | UNSUBSCRIBE");
    }
}

/* HALYARD EVENTS [SINCE id] [COUNT n]: the events after id (default: the last COUNT), oldest
 * first, as JSON strings; COUNT defaults to 100. */
void cmd_halyard_events(struct cmd_ctx *x)
{
    const struct hy_node *n = x->node;
    int64_t since = -1, count = 100;
    if (x->argc >= 3 &&
        (node_arg_is(&x->argv[2], "SUBSCRIBE") || node_arg_is(&x->argv[2], "UNSUBSCRIBE"))) {
        events_subscription(x);
        return;
    }
    for (size_t i = 2; i < x->argc; i += 2) {
        int64_t v;
        if (i + 1 >= x->argc || !hy_parse_i64(x->argv[i + 1].ptr, x->argv[i + 1].len, &v) ||
            v < 0) {
            resp_write_error(&x->w, "ERR syntax: HALYARD EVENTS [SINCE id] [COUNT n]");
            return;
        }
        if (node_arg_is(&x->argv[i], "SINCE")) {
            since = v;
        } else if (node_arg_is(&x->argv[i], "COUNT") && v > 0) {
            count = v;
        } else {
            resp_write_error(&x->w, "ERR syntax: HALYARD EVENTS [SINCE id] [COUNT n]");
            return;
        }
    }
    uint64_t last = n->events.last_id;
    uint64_t oldest = last >= NODE_EVENTS_MAX ? last - NODE_EVENTS_MAX + 1 : 1;
    uint64_t from;
    if (since < 0) {
        from = last >= (uint64_t)count ? last - (uint64_t)count + 1 : 1;
    } else {
        from = (uint64_t)since + 1;
    }
    if (from < oldest) {
        from = oldest; /* older ones were overwritten: the reader sees the gap in the ids */
    }
    uint64_t to = last;
    if (to >= from && to - from + 1 > (uint64_t)count) {
        to = from + (uint64_t)count - 1;
    }
    size_t k = to >= from ? (size_t)(to - from + 1) : 0;
    resp_write_array(&x->w, k);
    for (uint64_t id = from; k > 0 && id <= to; id++) {
        resp_write_bulk_str(&x->w, node_event_get(n, id));
    }
}
