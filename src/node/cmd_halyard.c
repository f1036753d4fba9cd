/*
 * cmd_halyard.c - HALYARD STATUS|MEMBERS [JSON], FAILOVER [TO node], DRAIN, SNAPSHOT, and
 * JOIN|REMOVE|PEERS (member.c): the admin
 * commands halyctl is a thin shell over. Text for people, JSON for scripts; both report the
 * same facts as INFO replication and CLUSTER NODES.
 */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc.h"
#include "node/node_internal.h"

int node_member_shown(const struct hy_node *n, const struct node_member *m)
{
    return member_in_config(n, m->id) || m->role == STORE_MEMBER_VOTER ||
           m->role == STORE_MEMBER_OBSERVER;
}

/* A leader that lost its majority steps down within an election timeout (check-quorum, §6.2),
 * and a follower that hears nothing for that long starts an election, so a leader heard from
 * within an election timeout is this node's best knowledge of a working majority. A learner
 * (observer) never stands for election and keeps its last leader's name however long it is cut
 * off: only the contact age tells. */
void node_leader_view(const struct hy_node *n, uint64_t now_ms, struct leader_view *v)
{
    v->last = replica_leader_member(n->meta);
    uint64_t at = raft_leader_contact_ms(&n->meta->raft);
    v->contact_ms = now_ms - HY_MIN(at, now_ms);
    if (replica_is_leader(n->meta)) {
        v->contact_ms = 0;
    }
    v->current = v->last != NULL &&
                 (replica_is_leader(n->meta) ||
                  (at != 0 && v->contact_ms <= n->meta->raft.cfg.election_timeout_max_ms));
}

/* Entries behind the leader's log, time since it last answered, whether it ever did. */
int node_follower_lag(const struct hy_node *n, const struct node_member *m, struct lag *out)
{
    struct raft_follower f;
    if (!raft_follower_info(&n->meta->raft, m->id, &f)) {
        return 0;
    }
    uint64_t last = raft_last_index(&n->meta->raft);
    out->match = f.match_index;
    out->entries = last - HY_MIN(f.match_index, last);
    out->contact_ms = n->raft_now_ms - HY_MIN(f.last_heard_ms, n->raft_now_ms);
    out->answered = f.answered;
    out->caught_up = f.caught_up;
    return 1;
}

/* The member's replication state as this leader sees it, in JSON (nothing elsewhere). A
 * member that never answered has no contact time; a learner says whether it is caught up. */
static void member_lag_json(const struct hy_node *n, const struct node_member *m, struct hy_buf *b)
{
    struct lag lag;
    if (!node_follower_lag(n, m, &lag)) {
        return;
    }
    hy_buf_printf(b, ",\"match_index\":%llu,\"lag_entries\":%llu,\"answered\":%s",
                  (unsigned long long)lag.match, (unsigned long long)lag.entries,
                  lag.answered ? "true" : "false");
    if (lag.answered) {
        hy_buf_printf(b, ",\"last_contact_ms\":%llu", (unsigned long long)lag.contact_ms);
    } else {
        hy_buf_append_str(b, ",\"last_contact_ms\":null");
    }
    if (!raft_membership_is_voter(raft_membership(&n->meta->raft), m->id)) {
        hy_buf_printf(b, ",\"caught_up\":%s", lag.caught_up ? "true" : "false");
    }
}

/* ,"voters":[names],"learners":[names]: group g's Raft configuration as this replica has it. */
static void config_json(const struct hy_node *n, const struct node_group *g, struct hy_buf *b)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    for (int voters = 1; voters >= 0; voters--) {
        hy_buf_append_str(b, voters ? ",\"voters\":[" : ",\"learners\":[");
        int first = 1;
        for (uint32_t i = 0; i < cm->count; i++) {
            if ((cm->servers[i].role == RAFT_VOTER) == voters) {
                const char *name = node_member_name(n, cm->servers[i].id);
                hy_buf_printf(b, "%s\"%s\"", first ? "" : ",", name ? name : "?");
                first = 0;
            }
        }
        hy_buf_append_str(b, "]");
    }
}

/* ,"transfers":[{"to","sent","total","elapsed_ms"}]: on the partition's leader, the snapshots
 * being sent to members of its configuration (a move's new replica; a follower too far
 * behind): bytes the follower acknowledged of the snapshot's size, and for how long
 * (halyctl cluster rebalance status draws the rate and ETA from them). */
static void transfers_json(const struct hy_node *n, const struct node_group *g, struct hy_buf *b)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    int first = 1;
    for (uint32_t i = 0; i < cm->count; i++) {
        uint64_t acked, total, since;
        if (!raft_snapshot_transfer(&g->raft, cm->servers[i].id, &acked, &total, &since)) {
            continue;
        }
        const char *name = node_member_name(n, cm->servers[i].id);
        hy_buf_printf(b, "%s{\"to\":\"%s\",\"sent\":%llu,\"total\":%llu,\"elapsed_ms\":%llu}",
                      first ? ",\"transfers\":[" : ",", name ? name : "?",
                      (unsigned long long)acked, (unsigned long long)total,
                      (unsigned long long)(n->raft_now_ms - HY_MIN(since, n->raft_now_ms)));
        first = 0;
    }
    if (!first) {
        hy_buf_append_str(b, "]");
    }
}

/* One partition as this node can tell it without asking anyone (bounded: no request, no
 * wait): its replicas (the map's; this replica's voters before any map), how many of them
 * this node's links see up (it counts itself), and its leader: this replica's view where it
 * holds one, else the leader its replicas last named (HY.LEADERS, -MOVED) if that node is up,
 * else unknown (NULL; partmap_leader_member would name a live replica to ask instead). */
struct part_view {
    raft_id replicas[NODE_MEMBERS_MAX];
    uint32_t count, live;
    const struct node_member *leader;
    int under_replicated; /* fewer replicas up than the replication factor can give */
    int no_quorum;        /* fewer replicas up than a majority of them */
};

static int member_index(const struct hy_node *n, raft_id id)
{
    const struct node_member *m = node_member_find(n->members, n->member_count, id);
    return m != NULL ? (int)(m - n->members) : -1;
}

/* Whether this node's replica of g leads. A move's source may lead although the map no longer
 * places it here (until it removes itself): its Raft view is then still the group's latest. */
static int leads_here(const struct node_group *g)
{
    return node_group_has(g, g->raft.cfg.id) && raft_role(&g->raft) == RAFT_LEADER;
}

static void part_view_of(const struct hy_node *n, const struct node_group *g, uint32_t rf,
                         struct part_view *v)
{
    const struct node_placement *pl = partmap_of(n, g);
    v->count = v->live = 0;
    if (pl != NULL) {
        for (uint32_t k = 0; k < pl->count && v->count < NODE_MEMBERS_MAX; k++) {
            v->replicas[v->count++] = pl->ids[k];
        }
    } else {
        const struct raft_membership *cm = raft_membership(&g->raft);
        for (uint32_t k = 0; k < cm->count && v->count < NODE_MEMBERS_MAX; k++) {
            if (cm->servers[k].role == RAFT_VOTER) {
                v->replicas[v->count++] = cm->servers[k].id;
            }
        }
    }
    for (uint32_t k = 0; k < v->count; k++) {
        int i = member_index(n, v->replicas[k]);
        v->live += i >= 0 && n->member_up[i];
    }
    v->leader = NULL;
    if (node_group_raft_view(g) || leads_here(g)) {
        v->leader = replica_raft_leader_member(g);
    } else if (g->leader_hint != RAFT_NONE && g->leader_hint != g->raft.cfg.id) {
        int i = member_index(n, g->leader_hint);
        v->leader = i >= 0 && n->member_up[i] ? &n->members[i] : NULL;
    }
    v->under_replicated = v->live < HY_MIN(rf, v->count) || v->count < rf;
    v->no_quorum = v->live < v->count / 2 + 1;
}

/* The replicas the replication factor can give: at most the voters of the metadata group. */
static uint32_t replicas_wanted(const struct hy_node *n)
{
    const struct raft_membership *cm = raft_membership(&n->meta->raft);
    uint32_t voters = 0;
    for (uint32_t k = 0; k < cm->count; k++) {
        voters += cm->servers[k].role == RAFT_VOTER;
    }
    return HY_MIN((uint32_t)n->cfg->replication_factor, voters);
}

void node_partition_risk(const struct hy_node *n, const struct node_group *g, int *under_replicated,
                         int *no_quorum)
{
    struct part_view v;
    part_view_of(n, g, replicas_wanted(n), &v);
    *under_replicated = v.under_replicated;
    *no_quorum = v.no_quorum;
}

static void partition_json(const struct hy_node *n, const struct node_group *g, size_t p,
                           size_t parts, const struct part_view *v, int first, struct hy_buf *b)
{
    int held = node_group_has(g, g->raft.cfg.id);
    uint32_t lo = (uint32_t)((p * HY_SLOT_COUNT + parts - 1) / parts);
    uint32_t hi = (uint32_t)(((p + 1) * HY_SLOT_COUNT + parts - 1) / parts) - 1;
    const struct node_placement *pl = partmap_of(n, g);
    /* "partition" first: halyctl finds a partition's object by its opening. */
    hy_buf_printf(
        b,
        "%s{\"partition\":%zu,\"slots\":\"%u-%u\",\"leader\":%s%s%s,"
        "\"role\":\"%s\",\"term\":%llu,\"commit_index\":%llu,"
        "\"applied_index\":%llu,\"snapshot_index\":%llu",
        first ? "" : ",", p, lo, hi, v->leader ? "\"" : "", v->leader ? v->leader->name : "null",
        v->leader ? "\"" : "", held ? raft_role_name(raft_role(&g->raft)) : "none",
        (unsigned long long)raft_term(&g->raft), (unsigned long long)raft_commit_index(&g->raft),
        (unsigned long long)g->applied, (unsigned long long)raft_snapshot_index(&g->raft));
    /* The replicas (the map's: what placement asks for; the group moves towards it). */
    hy_buf_append_str(b, ",\"replicas\":[");
    for (uint32_t k = 0; k < v->count; k++) {
        const char *name = node_member_name(n, v->replicas[k]);
        hy_buf_printf(b, "%s\"%s\"", k ? "," : "", name ? name : "?");
    }
    hy_buf_printf(b, "],\"live_replicas\":%u,\"under_replicated\":%s,\"quorum\":%s", v->live,
                  v->under_replicated ? "true" : "false", v->no_quorum ? "false" : "true");
    if (pl != NULL) {
        hy_buf_printf(b, ",\"epoch\":%llu", (unsigned long long)pl->epoch);
    }
    /* As this replica knows it: its leader's is the latest. A leader the map no longer places
     * here (a move's source that leads until it removes itself) names it too: halyctl cluster
     * rebalance status reads each move from its partition's leader, and without it showed such
     * a move with every replica as a target and no source (and this node no leader). */
    if (node_group_raft_view(g) || leads_here(g)) {
        config_json(n, g, b);
        transfers_json(n, g, b);
    }
    hy_buf_append_str(b, "}");
}

static void partition_text(const struct hy_node *n, const struct node_group *g, size_t p,
                           size_t parts, const struct part_view *v, struct hy_buf *b)
{
    int held = node_group_has(g, g->raft.cfg.id);
    uint32_t lo = (uint32_t)((p * HY_SLOT_COUNT + parts - 1) / parts);
    uint32_t hi = (uint32_t)(((p + 1) * HY_SLOT_COUNT + parts - 1) / parts) - 1;
    hy_buf_printf(b, "  %-4zu slots %5u-%-5u  leader %-12s  replicas ", p, lo, hi,
                  v->leader ? v->leader->name : "(unknown)");
    for (uint32_t k = 0; k < v->count; k++) {
        const char *name = node_member_name(n, v->replicas[k]);
        hy_buf_printf(b, "%s%s", k ? "," : "", name ? name : "?");
    }
    hy_buf_printf(b, " (%u up)  here: %-9s term %llu, applied %llu%s%s\n", v->live,
                  held ? raft_role_name(raft_role(&g->raft)) : "none",
                  (unsigned long long)raft_term(&g->raft), (unsigned long long)g->applied,
                  v->under_replicated ? "  UNDER-REPLICATED" : "",
                  v->no_quorum ? "  NO QUORUM" : "");
}

/* With partitions: every partition as this node can tell it (part_view_of: the map, its
 * links, its replicas, the leaders peers named; no request is sent, so it answers at once
 * even with partitions down), then the counts per node and the partitions at risk. With
 * `only` set (HALYARD PARTITIONS NODE name), the list holds only the partitions placed on that
 * member; the counts after it stay the whole cluster's, so that one member's list can be read
 * against the rest. With `at_risk_only` (HALYARD STATUS's text, halyctl cluster status: a
 * summary that stays a screen long with thousands of partitions) it holds only the partitions
 * without a known leader, under-replicated or without quorum. */
/* The worst follower lag of the partitions this node leads. */
struct worst_lag {
    int leads;        /* whether this node leads any partition */
    uint64_t entries; /* entries behind the leader's log */
    size_t partition; /* where */
    raft_id follower; /* who */
};

/* Folds the followers of partition p, if this node leads it, into w: entries of the leader's
 * log each has not acknowledged (its match index). A quiesced group has nothing in flight, so
 * its figures stand as they were; a member this node's map does not name (an observer's
 * learner) counts as well, since it serves reads. */
static void worst_lag_fold(const struct hy_node *n, const struct node_group *g, size_t p,
                           struct worst_lag *w)
{
    if (!replica_is_leader(g)) {
        return;
    }
    w->leads = 1;
    uint64_t last = raft_last_index(&g->raft);
    for (size_t i = 0; i < n->member_count; i++) {
        struct raft_follower f;
        if (!raft_follower_info(&g->raft, n->members[i].id, &f)) {
            continue;
        }
        uint64_t lag = last - HY_MIN(f.match_index, last);
        if (lag > w->entries || w->follower == RAFT_NONE) {
            w->entries = lag;
            w->partition = p;
            w->follower = n->members[i].id;
        }
    }
}

/* Each member's fair share of the leaderships and whether every member leads within it ± 1,
 * as the metadata leader's balancer counts them (balance.c): over the partitions whose leader
 * is known here and may keep leading. */
static void leader_shares(const struct hy_node *n, struct hy_buf *b, int json)
{
    uint64_t fair[NODE_MEMBERS_MAX];
    size_t leads[NODE_MEMBERS_MAX];
    size_t counted = node_balance_shares(n, n->raft_now_ms, fair, leads);
    int balanced = 1, first = 1;
    hy_buf_append_str(b, json ? ",\"leader_fair_share\":{" : "leader fair share per node:");
    for (size_t i = 0; i < n->member_count; i++) {
        if (fair[i] == 0 && leads[i] == 0) {
            continue; /* holds no partition that could be its to lead (an observer, down) */
        }
        int64_t excess = (int64_t)leads[i] * BALANCE_UNIT - (int64_t)fair[i];
        balanced &= excess <= BALANCE_UNIT && excess >= -(int64_t)BALANCE_UNIT;
        hy_buf_printf(b, json ? "%s\"%s\":%.2f" : "%s %s %.2f", first ? "" : ",",
                      n->members[i].name, (double)fair[i] / BALANCE_UNIT);
        first = 0;
    }
    if (json) {
        hy_buf_printf(b, "},\"leaders_balanced\":%s,\"leaders_counted\":%zu",
                      balanced ? "true" : "false", counted);
    } else {
        hy_buf_printf(b,
                      "\nleaders balanced (each within its fair share +-1): %s (%zu partitions "
                      "counted)\n",
                      balanced ? "yes" : "no", counted);
    }
}

static void partitions_status(const struct hy_node *n, struct hy_buf *b, int json, raft_id only,
                              int at_risk_only)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    if (n->group_count == 1) {
        return;
    }
    size_t leads[NODE_MEMBERS_MAX] = {0}, holds[NODE_MEMBERS_MAX] = {0};
    size_t leaderless = 0, under = 0, no_quorum = 0;
    uint32_t rf = replicas_wanted(n);
    hy_buf_append_str(b, json           ? ",\"partitions\":["
                         : at_risk_only ? "partitions at risk (halyctl partitions lists all):\n"
                                        : "partitions:\n");
    size_t listed = 0;
    struct worst_lag worst = {0, 0, 0, RAFT_NONE};
    for (size_t p = 0; p < parts; p++) {
        struct part_view v;
        part_view_of(n, groups[p], rf, &v);
        worst_lag_fold(n, groups[p], p, &worst);
        int shown = only == RAFT_NONE;
        for (uint32_t k = 0; k < v.count && !shown; k++) {
            shown = v.replicas[k] == only;
        }
        shown &= !at_risk_only || v.leader == NULL || v.under_replicated || v.no_quorum;
        if (v.leader == NULL) {
            leaderless++;
        } else {
            leads[v.leader - n->members]++;
        }
        for (uint32_t k = 0; k < v.count; k++) {
            int i = member_index(n, v.replicas[k]);
            holds[i >= 0 ? i : 0] += i >= 0;
        }
        under += v.under_replicated;
        no_quorum += v.no_quorum;
        if (!shown) {
            continue;
        }
        if (json) {
            partition_json(n, groups[p], p, parts, &v, listed == 0, b);
        } else {
            partition_text(n, groups[p], p, parts, &v, b);
        }
        listed++;
    }
    if (json) {
        hy_buf_append_str(b, "]");
    } else if (at_risk_only && listed == 0) {
        hy_buf_append_str(b, "  none\n");
    }
    if (only != RAFT_NONE) {
        const char *name = node_member_name(n, only);
        hy_buf_printf(b,
                      json ? ",\"node\":\"%s\",\"partitions_listed\":%zu"
                           : "placed on %s: %zu of the partitions\n",
                      name ? name : "?", listed);
    }
    /* Flat fields, not an object: halyctl cluster status reads them from every member with
     * its plain key search, as it reads the partitions' fields. */
    const char *lag_name = node_member_name(n, worst.follower);
    if (json && worst.follower != RAFT_NONE) {
        hy_buf_printf(b,
                      ",\"worst_lag_entries\":%llu,\"worst_lag_partition\":%zu,"
                      "\"worst_lag_follower\":\"%s\"",
                      (unsigned long long)worst.entries, worst.partition,
                      lag_name ? lag_name : "?");
    } else if (json) {
        hy_buf_append_str(b, ",\"worst_lag_entries\":null");
    }
    uint32_t shared_zone, shared_rack;
    partmap_shared_domains(n, &shared_zone, &shared_rack);
    if (json) {
        hy_buf_printf(b,
                      ",\"partitions_without_leader\":%zu,\"partitions_under_replicated\":%zu,"
                      "\"partitions_without_quorum\":%zu,\"partitions_sharing_zone\":%u,"
                      "\"partitions_sharing_rack\":%u,\"leaders\":{",
                      leaderless, under, no_quorum, shared_zone, shared_rack);
    } else {
        hy_buf_printf(b,
                      "partitions: %zu, without a known leader: %zu, under-replicated: %zu, "
                      "without quorum: %zu\n",
                      parts, leaderless, under, no_quorum);
        if (shared_zone > 0 || shared_rack > 0) {
            hy_buf_printf(b,
                          "partitions with replicas sharing a zone: %u, a rack: %u (too few "
                          "zones or racks for the replication factor, or a move under way)\n",
                          shared_zone, shared_rack);
        }
    }
    if (json) {
        /* the worst lag went before the counts, above */
    } else if (worst.follower != RAFT_NONE) {
        hy_buf_printf(b,
                      "worst follower lag of the partitions led here: %llu entries (partition "
                      "%zu, %s)\n",
                      (unsigned long long)worst.entries, worst.partition,
                      lag_name ? lag_name : "?");
    } else {
        hy_buf_printf(b, "worst follower lag of the partitions led here: none (%s)\n",
                      worst.leads ? "no follower" : "this node leads no partition");
    }
    for (int counts = 0; counts < 2; counts++) {
        const size_t *per = counts == 0 ? leads : holds;
        if (json) {
            hy_buf_append_str(b, counts == 0 ? "" : ",\"replicas_per_node\":{");
        } else {
            hy_buf_append_str(b, counts == 0 ? "leaders per node:" : "replicas per node:");
        }
        int first = 1;
        for (size_t i = 0; i < n->member_count; i++) {
            if (!member_in_config(n, n->members[i].id)) {
                continue;
            }
            hy_buf_printf(b, json ? "%s\"%s\":%zu" : "%s %s %zu", first ? "" : ",",
                          n->members[i].name, per[i]);
            first = 0;
        }
        hy_buf_append_str(b, json ? "}" : "\n");
    }
    leader_shares(n, b, json);
}

static void status_json(struct cmd_ctx *x, struct hy_buf *b)
{
    struct hy_node *n = x->node;
    struct leader_view lv;
    node_leader_view(n, x->now_ms, &lv);
    const char *q = lv.current ? "\"" : "", *last_q = lv.last ? "\"" : "";
    hy_buf_printf(b,
                  "{\"node\":\"%s\",\"role\":\"%s\",\"term\":%llu,\"leader\":%s%s%s,"
                  "\"last_leader\":%s%s%s,",
                  n->cfg->node_id, raft_role_name(raft_role(&n->meta->raft)),
                  (unsigned long long)raft_term(&n->meta->raft), q,
                  lv.current ? lv.last->name : "null", q, last_q, lv.last ? lv.last->name : "null",
                  last_q);
    if (lv.last != NULL) {
        hy_buf_printf(b, "\"leader_contact_ms\":%llu,", (unsigned long long)lv.contact_ms);
    } else {
        hy_buf_append_str(b, "\"leader_contact_ms\":null,");
    }
    /* The health score (issue 14 asks for it in halyctl too): as INFO cluster has it, -1 until
     * the shell has scored once; the reasons as one string, "; " between them. */
    hy_buf_printf(b, "\"health_score\":%d,\"cluster_health_score\":%d,\"health_reasons\":",
                  n->health_score, n->cluster_health_score);
    hy_buf_append_json_str(b, n->health_reasons);
    hy_buf_append_str(b, ",");
    hy_buf_printf(
        b,
        "\"has_quorum\":%s,\"commit_index\":%llu,\"applied_index\":%llu,"
        "\"last_index\":%llu,\"snapshot_index\":%llu,\"members\":[",
        lv.current ? "true" : "false", (unsigned long long)raft_commit_index(&n->meta->raft),
        (unsigned long long)n->meta->applied, (unsigned long long)raft_last_index(&n->meta->raft),
        (unsigned long long)raft_snapshot_index(&n->meta->raft));
    int first = 1;
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (!node_member_shown(n, m)) {
            continue;
        }
        hy_buf_printf(b,
                      "%s{\"name\":\"%s\",\"address\":\"%s:%u\",\"peer\":\"%s:%u\",\"role\":\"%s\"",
                      first ? "" : ",", m->name, m->host, m->client_port, m->host, m->peer_port,
                      member_role_name(n, m));
        first = 0;
        char zone[33], rack[33];
        partmap_member_domain(n, m->name, zone, rack);
        hy_buf_printf(b, ",\"zone\":\"%s\",\"rack\":\"%s\"", zone, rack);
        struct node_gossip_view gv;
        if (node_gossip_member(n, m->name, &gv)) {
            hy_buf_printf(b, ",\"state\":\"%s\",\"incarnation\":%llu", gv.state,
                          (unsigned long long)gv.incarnation);
        }
        member_lag_json(n, m, b);
        hy_buf_append_str(b, "}");
    }
    hy_buf_append_str(b, "]");
    partitions_status(n, b, 1, RAFT_NONE, 0);
    hy_buf_append_str(b, "}");
}

/* "leader: n1", or what is left of it when the node has not heard from n1 for an election
 * timeout (it may be cut off: an observer keeps the name for good). */
static void leader_text(const struct leader_view *lv, struct hy_buf *b)
{
    if (lv->current) {
        hy_buf_printf(b, "leader: %s\n", lv->last->name);
    } else if (lv->last != NULL) {
        hy_buf_printf(b, "leader: (none; last heard from %s %llu ms ago)\n", lv->last->name,
                      (unsigned long long)lv->contact_ms);
    } else {
        hy_buf_append_str(b, "leader: (none)\n");
    }
}

static void member_lag_text(const struct hy_node *n, const struct node_member *m, struct hy_buf *b)
{
    struct lag lag;
    if (!node_follower_lag(n, m, &lag)) {
        return;
    }
    hy_buf_printf(b, "  match %llu, lag %llu entries, ", (unsigned long long)lag.match,
                  (unsigned long long)lag.entries);
    if (lag.answered) {
        hy_buf_printf(b, "last contact %llu ms ago", (unsigned long long)lag.contact_ms);
    } else {
        hy_buf_append_str(b, "never answered (not running, or refused: see its log)");
    }
    if (lag.answered && !raft_membership_is_voter(raft_membership(&n->meta->raft), m->id)) {
        hy_buf_append_str(b, lag.caught_up ? ", caught up" : ", catching up");
    }
}

static void status_text(struct cmd_ctx *x, struct hy_buf *b)
{
    struct hy_node *n = x->node;
    struct leader_view lv;
    node_leader_view(n, x->now_ms, &lv);
    hy_buf_printf(b, "node: %s\nrole: %s\nterm: %llu\n", n->cfg->node_id,
                  raft_role_name(raft_role(&n->meta->raft)),
                  (unsigned long long)raft_term(&n->meta->raft));
    leader_text(&lv, b);
    hy_buf_printf(b, "health: %d (cluster %d)%s%s\n", n->health_score, n->cluster_health_score,
                  n->health_reasons[0] ? ": " : "", n->health_reasons);
    hy_buf_printf(b,
                  "has_quorum: %s\ncommit_index: %llu\napplied_index: %llu\nlast_index: %llu\n"
                  "snapshot_index: %llu\nmembers:\n",
                  lv.current ? "yes" : "no", (unsigned long long)raft_commit_index(&n->meta->raft),
                  (unsigned long long)n->meta->applied,
                  (unsigned long long)raft_last_index(&n->meta->raft),
                  (unsigned long long)raft_snapshot_index(&n->meta->raft));
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (!node_member_shown(n, m)) {
            continue;
        }
        hy_buf_printf(b, "  %-12s %s:%u  %s%s", m->name, m->host, m->client_port,
                      member_role_name(n, m), m->id == n->meta->raft.cfg.id ? " (this node)" : "");
        char zone[33], rack[33];
        partmap_member_domain(n, m->name, zone, rack);
        if (zone[0] != '\0' || rack[0] != '\0') {
            hy_buf_printf(b, "  zone %s%s%s", zone[0] ? zone : "-", rack[0] ? " rack " : "", rack);
        }
        struct node_gossip_view gv;
        if (m->id != n->meta->raft.cfg.id && node_gossip_member(n, m->name, &gv)) {
            hy_buf_printf(b, "  %s", gv.state); /* gossip's view: alive, suspect, dead */
        }
        member_lag_text(n, m, b);
        hy_buf_append_str(b, "\n");
    }
    partitions_status(n, b, 0, RAFT_NONE, 1);
}

static void halyard_status(struct cmd_ctx *x, int json)
{
    struct hy_buf b;
    hy_buf_init(&b);
    if (json) {
        status_json(x, &b);
        resp_write_bulk(&x->w, b.data, b.len);
    } else {
        status_text(x, &b);
        resp_write_verbatim(&x->w, "txt", b.data, b.len);
    }
    hy_buf_free(&b);
}

/* The voter other than this node best placed to take leadership, or RAFT_NONE: on a leader,
 * one heard from within an election timeout with the highest match index (a member that is
 * down would make a drain retry a transfer to it for ever); elsewhere the first one. */
static raft_id other_voter(const struct node_group *g)
{
    const struct hy_node *n = g->node;
    raft_id first = RAFT_NONE, best = RAFT_NONE;
    uint64_t best_match = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        raft_id id = n->members[i].id;
        if (id == g->raft.cfg.id || !raft_membership_is_voter(raft_membership(&g->raft), id) ||
            n->members[i].role == STORE_MEMBER_REMOVED) {
            continue; /* a removed member takes no leadership (member.c) */
        }
        first = first == RAFT_NONE ? id : first;
        struct raft_follower f;
        if (raft_follower_info(&g->raft, id, &f) && f.answered &&
            n->raft_now_ms - HY_MIN(f.last_heard_ms, n->raft_now_ms) <
                (uint64_t)n->cfg->election_timeout_ms &&
            (best == RAFT_NONE || f.match_index > best_match)) {
            best = id;
            best_match = f.match_index;
        }
    }
    return best != RAFT_NONE ? best : first;
}

/* Groups this node still leads that another voter could take over. */
static size_t drain_left(const struct hy_node *n, size_t *sole_out)
{
    size_t left = 0, sole = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        if (replica_is_leader(n->groups[i])) {
            if (replica_voters(n->groups[i]) == 1 || other_voter(n->groups[i]) == RAFT_NONE) {
                sole++;
            } else {
                left++;
            }
        }
    }
    if (sole_out != NULL) {
        *sole_out = sole;
    }
    return left;
}

int node_drained(const struct hy_node *n)
{
    return n->draining && drain_left(n, NULL) == 0;
}

const char *node_drain_outcome(const struct hy_node *n)
{
    if (!n->drain_led) {
        return "drained: this node did not lead, nothing to hand over";
    }
    size_t sole;
    (void)drain_left(n, &sole);
    return sole > 0 ? "drained: the only voter, no one to hand leadership to"
                    : "drained: leadership handed over";
}

/* Called from cron while draining: every group this node leads is handed over; a transfer
 * that aborted (the target was not caught up in time) is tried again. */
void node_drain_step(struct hy_node *n, uint64_t now_ms)
{
    int stuck = 0, left = n->drain_handoff && !n->draining ? partmap_handoff_left(n, &stuck) : 1;
    if (left == 0) { /* else its replicas still move off (or the mark is not recorded yet) */
        hy_log(n->log, HY_LOG_INFO, "drain: %s; handing leadership over",
               stuck ? "too few members would remain for the replication factor, the "
                       "replicas stay"
                     : "no partition holds a replica here any more");
        n->draining = 1;
    }
    /* A node that learned it was removed (member.c) hands its groups over the same way. */
    for (size_t i = 0; (n->draining || n->self_removed) && i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (!replica_is_leader(g)) {
            continue;
        }
        n->drain_led |= n->draining;
        raft_id target = other_voter(g);
        if (target != RAFT_NONE) {
            (void)replica_transfer(g, target, now_ms); /* HY_EBUSY while one is under way */
        }
    }
}

/* DRAIN [KEEP|STATUS]: with partitions and members enough for the replication factor without
 * this node, it is first marked leaving and its replicas move off (partmap.c), serving
 * meanwhile; then (and at once with KEEP, or when they cannot move) it hands leadership to
 * another voter and stops accepting and exits (the shell watches node_drained). A follower
 * simply stops. STATUS says where a drain stands. */
static void halyard_drain(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    const struct resp_arg *how = x->argc == 3 ? &x->argv[2] : NULL;
    if (how != NULL && node_arg_is(how, "STATUS")) {
        int stuck, left = partmap_handoff_left(n, &stuck);
        if (n->draining) {
            resp_write_simple(&x->w, "draining: handing leadership over, then stopping");
        } else if (n->drain_handoff && left < 0) {
            resp_write_simple(&x->w, "leaving: the metadata group has not recorded it yet");
        } else if (n->drain_handoff) {
            char line[96];
            snprintf(line, sizeof(line), "leaving: %d partition(s) still hold a replica here",
                     left);
            resp_write_simple(&x->w, line);
        } else {
            resp_write_simple(&x->w, "not draining");
        }
        return;
    }
    if (how != NULL && !node_arg_is(how, "KEEP")) {
        node_reply_syntax_error(x);
        return;
    }
    if (how == NULL && !n->draining && partmap_handoff_possible(n)) {
        if (!n->drain_handoff) {
            hy_log(n->log, HY_LOG_INFO, "drain: this node's replicas move off before it stops");
        }
        n->drain_handoff = 1;
        partmap_publish_leaving(n, x->now_ms);
        resp_write_simple(&x->w, "OK draining: replicas move off, then this node stops once it "
                                 "no longer leads");
        return;
    }
    n->draining = 1;
    node_drain_step(n, x->now_ms);
    resp_write_simple(&x->w, "OK draining: this node stops once it no longer leads");
}

/* FAILOVER [TO name] [PARTITION p]: without a name, the best other voter; without a
 * partition, the metadata group (with one partition, the group of every key). */
static void halyard_failover(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    raft_id target = RAFT_NONE;
    struct node_group *g = n->meta;
    for (size_t i = 2; i < x->argc; i += 2) {
        if (i + 1 < x->argc && node_arg_is(&x->argv[i], "TO") && target == RAFT_NONE) {
            char name[NODE_MEMBER_NAME_MAX + 1];
            snprintf(name, sizeof(name), "%.*s",
                     (int)HY_MIN(x->argv[i + 1].len, NODE_MEMBER_NAME_MAX),
                     (const char *)x->argv[i + 1].ptr);
            target = node_member_id(name);
        } else if (i + 1 < x->argc && node_arg_is(&x->argv[i], "PARTITION")) {
            int64_t p;
            struct node_group *const *groups;
            size_t parts = node_data_groups(n, &groups);
            if (!node_arg_i64(x, i + 1, &p)) {
                return;
            }
            if (p < 0 || (uint64_t)p >= parts) {
                resp_write_errorf(&x->w, "ERR no partition %lld (this cluster has %zu)",
                                  (long long)p, parts);
                return;
            }
            g = groups[p];
        } else {
            node_reply_syntax_error(x);
            return;
        }
    }
    if (target == RAFT_NONE) {
        target = other_voter(g);
    }
    int rc = target == RAFT_NONE ? HY_EINVAL : replica_transfer(g, target, x->now_ms);
    if (rc == HY_OK) {
        resp_write_simple(&x->w, "OK transfer started");
    } else if (rc == HY_ENOTLEADER) {
        resp_write_error(&x->w, "ERR not the leader: run HALYARD FAILOVER on the leader");
    } else if (rc == HY_EBUSY) {
        resp_write_error(&x->w, "BUSY a leadership transfer is already under way");
    } else {
        resp_write_error(&x->w, "ERR no such voter to hand leadership to");
    }
}

void cmd_halyard(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    int json = x->argc == 3 && node_arg_is(&x->argv[2], "JSON");
    if ((node_arg_is(sub, "STATUS") || node_arg_is(sub, "MEMBERS")) && (x->argc == 2 || json)) {
        halyard_status(x, json);
    } else if (node_arg_is(sub, "PARTITIONS") &&
               (x->argc == 2 || json || x->argc == 4 || x->argc == 5)) {
        /* Each partition: its slots, its leader, this node's replica of it; with NODE name,
         * only those placed on that member (halyctl partitions --node N). */
        raft_id only = RAFT_NONE;
        if (x->argc >= 4) {
            json = x->argc == 5 && node_arg_is(&x->argv[4], "JSON");
            if (!node_arg_is(&x->argv[2], "NODE") || (x->argc == 5 && !json)) {
                node_reply_syntax_error(x);
                return;
            }
            char name[NODE_MEMBER_NAME_MAX + 1];
            snprintf(name, sizeof(name), "%.*s", (int)HY_MIN(x->argv[3].len, NODE_MEMBER_NAME_MAX),
                     (const char *)x->argv[3].ptr);
            only = node_member_id(name);
            if (x->argv[3].len > NODE_MEMBER_NAME_MAX ||
                node_member_find(x->node->members, x->node->member_count, only) == NULL) {
                resp_write_errorf(&x->w, "ERR no member named '%s'", name);
                return;
            }
        }
        struct hy_buf b;
        hy_buf_init(&b);
        if (x->node->group_count == 1) {
            hy_buf_append_str(&b, json ? "{\"partitions\":1}"
                                       : "partitions: 1 (group 0 holds every slot)\n");
        } else {
            if (json) {
                hy_buf_printf(&b, "{\"partitions_count\":%zu", x->node->group_count - 1);
            }
            partitions_status(x->node, &b, json, only, 0);
            if (json) {
                hy_buf_append_str(&b, "}");
            }
        }
        if (json) {
            resp_write_bulk(&x->w, b.data, b.len);
        } else {
            resp_write_verbatim(&x->w, "txt", b.data, b.len);
        }
        hy_buf_free(&b);
    } else if (node_arg_is(sub, "FAILOVER")) {
        halyard_failover(x);
    } else if (node_arg_is(sub, "EVENTS")) {
        cmd_halyard_events(x);
    } else if (node_arg_is(sub, "ALERTS")) {
        cmd_halyard_alerts(x);
    } else if (node_arg_is(sub, "DRAIN") && x->argc <= 3) {
        halyard_drain(x);
    } else if (node_arg_is(sub, "JOIN")) {
        cmd_halyard_join(x);
    } else if (node_arg_is(sub, "REMOVE")) {
        cmd_halyard_remove(x);
    } else if (node_arg_is(sub, "WAN")) {
        cmd_halyard_wan(x);
    } else if (node_arg_is(sub, "DOMAIN")) {
        cmd_halyard_domain(x);
    } else if (node_arg_is(sub, "LEAVING")) {
        cmd_halyard_leaving(x);
    } else if (node_arg_is(sub, "REBALANCE")) {
        cmd_halyard_rebalance(x);
    } else if (node_arg_is(sub, "REPLICATION-FACTOR")) {
        cmd_halyard_replication_factor(x);
    } else if (node_arg_is(sub, "FORCE-QUORUM")) {
        cmd_halyard_force_quorum(x);
    } else if (node_arg_is(sub, "CHALLENGE")) {
        cmd_halyard_challenge(x);
    } else if (node_arg_is(sub, "PEER-AUTH")) {
        cmd_halyard_peer_auth(x);
    } else if (node_arg_is(sub, "WAN-AUTH")) {
        cmd_halyard_wan_auth(x);
    } else if (node_arg_is(sub, "PEERS") && x->argc == 2) {
        cmd_halyard_peers(x);
    } else if (node_arg_is(sub, "SNAPSHOT") && x->argc == 2) {
        int taken = 0;
        for (size_t i = 0; i < x->node->group_count; i++) {
            taken |= replica_snapshot_now(x->node->groups[i], x->now_ms) == HY_OK;
        }
        resp_write_simple(&x->w, taken ? "OK snapshot taken" : "OK nothing new to snapshot");
    } else {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try HALYARD STATUS.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}
