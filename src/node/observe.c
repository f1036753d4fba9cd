/*
 * observe.c - the node's counters as they happen, its snapshot for operators, and the texts
 * made from it (observe.h).
 */
#include "node/observe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/version.h"
#include "node/node_internal.h"

static_assert(OBSERVE_MEMBERS_MAX >= NODE_MEMBERS_MAX, "observation cannot hold every member");
static_assert(OBSERVE_COMMANDS_MAX >= NODE_COMMANDS_MAX, "observation cannot hold every command");

/* ---- recording (loop thread, as things happen) -------------------------------------------- */

void observe_init(struct hy_node *n)
{
    HY_ASSERT(node_command_count <= NODE_COMMANDS_MAX);
    struct node_metrics *m = &n->metrics;
    hy_histo_init_ms(&m->commit_latency);
    hy_histo_init_ms(&m->snapshot_duration);
    hy_histo_init_us(&m->loop_turn);
    for (size_t i = 0; i < NODE_COMMANDS_MAX; i++) {
        hy_histo_init_ms(&m->cmd_latency[i]);
    }
}

void observe_note_outcome(struct hy_node *n, struct node_waiter *w, const char *error)
{
    if (w->outcome_noted) {
        return;
    }
    w->outcome_noted = 1;
    struct node_metrics *m = &n->metrics;
    if (error == NULL) {
        m->proposals_committed++;
        uint64_t now = m->now_ms;
        hy_histo_record_ms(&m->commit_latency, now - HY_MIN(w->proposed_ms, now));
        if (w->cmd_index >= 0) {
            hy_histo_record_ms(&m->cmd_latency[w->cmd_index], now - HY_MIN(w->started_ms, now));
        }
    } else if (strncmp(error, "UNKNOWN", 7) == 0) {
        m->proposals_unknown++;
    } else {
        m->proposals_rejected++; /* TRYAGAIN: it was never applied */
    }
}

void observe_note_step(struct hy_node *n, uint64_t now_ms)
{
    struct node_metrics *m = &n->metrics;
    raft_id leader = raft_leader(&n->meta->raft);
    if (leader != RAFT_NONE && leader != m->last_leader) {
        m->leader_changes++;
        m->last_leader = leader;
    }
    if (raft_role(&n->meta->raft) != RAFT_LEADER) {
        m->lag_count = 0; /* the samples describe this node's own term as leader only */
        return;
    }
    uint64_t last = raft_last_index(&n->meta->raft);
    size_t newest = (m->lag_head + m->lag_count + NODE_LAG_SAMPLES - 1) % NODE_LAG_SAMPLES;
    if (m->lag_count > 0 && m->lag_samples[newest].index >= last) {
        return;
    }
    if (m->lag_count > 0 && m->lag_samples[newest].ms == now_ms) {
        m->lag_samples[newest].index = last; /* the log reached further within the same ms */
        return;
    }
    if (m->lag_count == NODE_LAG_SAMPLES) {
        m->lag_head = (m->lag_head + 1) % NODE_LAG_SAMPLES; /* drop the oldest */
        m->lag_count--;
    }
    size_t at = (m->lag_head + m->lag_count) % NODE_LAG_SAMPLES;
    m->lag_samples[at].index = last;
    m->lag_samples[at].ms = now_ms;
    m->lag_count++;
}

/* How long ago the leader's log first held an entry past `match`: the age of the oldest entry
 * the follower lacks (0 when it lacks none). Past the oldest sample, that sample's age: a
 * lower bound. */
static uint64_t lag_ms(const struct hy_node *n, uint64_t match, uint64_t now_ms)
{
    const struct node_metrics *m = &n->metrics;
    if (match >= raft_last_index(&n->meta->raft) || m->lag_count == 0) {
        return 0;
    }
    for (size_t k = 0; k < m->lag_count; k++) {
        size_t i = (m->lag_head + k) % NODE_LAG_SAMPLES;
        if (m->lag_samples[i].index > match) {
            return now_ms - HY_MIN(m->lag_samples[i].ms, now_ms);
        }
    }
    return 0;
}

/* ---- the snapshot (loop thread) ----------------------------------------------------------- */

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, NODE_MEMBER_NAME_MAX + 1, "%s", src);
}

static void observe_members(const struct hy_node *n, uint64_t now_ms, struct node_observation *o)
{
    for (size_t i = 0; i < n->member_count && o->member_count < OBSERVE_MEMBERS_MAX; i++) {
        const struct node_member *m = &n->members[i];
        int is_self = m->id == n->meta->raft.cfg.id;
        if (is_self) {
            o->self_role = member_role_name(n, m);
        }
        if (!node_member_shown(n, m)) {
            continue;
        }
        struct observe_member *om = &o->members[o->member_count++];
        copy_name(om->name, m->name);
        om->role = member_role_name(n, m);
        om->is_self = is_self;
        om->link_up = is_self || n->member_up[i] != 0;
        struct node_gossip_view gv;
        if (!is_self && node_gossip_member(n, m->name, &gv)) {
            om->state = gv.state;
            om->incarnation = gv.incarnation;
            om->phi = gv.phi;
        }
        struct lag lag;
        if (!is_self && node_follower_lag(n, m, &lag)) {
            om->has_lag = 1;
            om->match_index = lag.match;
            om->lag_entries = lag.entries;
            om->lag_ms = lag_ms(n, lag.match, now_ms);
            om->answered = lag.answered;
            om->contact_ms = lag.contact_ms;
        }
    }
}

static void observe_commands(const struct hy_node *n, struct node_observation *o)
{
    o->command_count = node_command_count;
    for (size_t i = 0; i < node_command_count; i++) {
        o->commands[i].name = node_commands[i].name;
        o->commands[i].calls = n->metrics.cmd_calls[i];
        o->commands[i].latency = n->metrics.cmd_latency[i];
    }
}

/* The counts that walk every partition, made again only when node_walk_due says something
 * they read may have moved: at every cron tick, with 1,024 idle partitions, these walks were a
 * quarter of an idle node's CPU. */
static void observe_part_counts(struct hy_node *n, uint64_t now_ms)
{
    struct node_part_counts *pc = &n->part_counts;
    if (!node_walk_due(n, &pc->walk, now_ms)) {
        return;
    }
    pc->keys = node_key_count(n, &pc->volatile_keys);
    pc->parked = node_parked_count(n);
    pc->led = pc->without_leader = pc->under_replicated = pc->without_quorum = 0;
    struct node_group *const *groups;
    uint32_t parts = (uint32_t)node_data_groups(n, &groups);
    for (uint32_t p = 0; p < parts; p++) {
        pc->led += replica_is_leader(groups[p]);
        /* Only the partitions this node holds a replica of: of the others it knows no more
         * than the map (partmap.c); their own replicas count them. */
        pc->without_leader += node_group_has(groups[p], groups[p]->raft.cfg.id) &&
                              raft_leader(&groups[p]->raft) == RAFT_NONE;
        /* Every partition, held here or not, as HALYARD STATUS counts them: its replicas
         * this node's links see up. */
        int under, no_quorum;
        node_partition_risk(n, groups[p], &under, &no_quorum);
        pc->under_replicated += (uint32_t)under;
        pc->without_quorum += (uint32_t)no_quorum;
    }
    partmap_shared_domains(n, &pc->sharing_zone, &pc->sharing_rack);
    pc->wan_conflict_count = node_wan_conflict_totals(n, pc->wan_conflicts, OBSERVE_WAN_MAX);
}

static void observe_counters(const struct hy_node *n, uint64_t now_ms, struct node_observation *o)
{
    const struct node_metrics *m = &n->metrics;
    const struct node_stats *s = &n->stats;
    o->elections = n->meta->raft.stat_elections;
    o->leader_changes = m->leader_changes;
    o->proposals_committed = m->proposals_committed;
    o->proposals_unknown = m->proposals_unknown;
    o->proposals_rejected = m->proposals_rejected;
    o->commit_latency = m->commit_latency;
    o->snapshots_taken = m->snapshots_taken;
    o->snapshots_installed = m->snapshots_installed;
    o->snapshot_last_bytes = m->snapshot_last_bytes;
    o->snapshot_bytes_total = m->snapshot_bytes_total;
    o->snapshot_sent_bytes = m->snapshot_sent_bytes;
    o->partitions_parked = n->part_counts.parked;
    o->snapshot_duration = m->snapshot_duration;
    o->loop_turn = m->loop_turn;
    o->loop_slow_turns = m->loop_slow_turns;
    o->clients = n->client_count;
    o->connections_received = s->connections_received;
    o->rejected_connections = s->rejected_connections;
    o->commands_processed = s->commands_processed;
    o->net_input_bytes = s->net_input_bytes;
    o->net_output_bytes = s->net_output_bytes;
    struct node_group *const *groups;
    o->partitions = (uint32_t)node_data_groups(n, &groups);
    const struct node_part_counts *pc = &n->part_counts;
    o->keys = pc->keys;
    o->volatile_keys = pc->volatile_keys;
    o->partitions_led = pc->led;
    o->partitions_without_leader = pc->without_leader;
    o->partitions_under_replicated = pc->under_replicated;
    o->partitions_without_quorum = pc->without_quorum;
    o->partitions_sharing_zone = pc->sharing_zone;
    o->partitions_sharing_rack = pc->sharing_rack;
    o->expired_keys = s->expired_keys;
    o->evicted_keys = s->evicted_keys;
    o->keyspace_hits = s->keyspace_hits;
    o->keyspace_misses = s->keyspace_misses;
    o->memory_used_bytes = hy_alloc_used_bytes();
    o->memory_dataset_bytes = store_used_bytes(n->meta->store);
    o->memory_max_bytes = (uint64_t)n->cfg->maxmemory;
    o->uptime_ms = now_ms - HY_MIN(n->start_ms, now_ms);
}

void node_observe(struct hy_node *n, uint64_t now_ms, struct node_observation *o)
{
    memset(o, 0, sizeof(*o));
    node_gossip_stats(n, &o->gossip);
    struct hy_buf q;
    hy_buf_init(&q);
    node_quorum_json(n, &q);
    snprintf(o->quorum_rules_json, sizeof(o->quorum_rules_json), "%.*s", (int)q.len,
             (const char *)q.data);
    hy_buf_free(&q);
    o->wan_count = node_wan_lags(n, o->wan, OBSERVE_WAN_MAX, now_ms);
    observe_part_counts(n, now_ms);
    o->wan_conflict_count = n->part_counts.wan_conflict_count;
    memcpy(o->wan_conflicts, n->part_counts.wan_conflicts,
           o->wan_conflict_count * sizeof(o->wan_conflicts[0]));
    o->now_ms = now_ms;
    copy_name(o->node_id, n->cfg->node_id);
    o->started = n->meta->started;
    o->draining = n->draining;
    o->leaving = n->drain_handoff && !n->draining;
    o->disk_full = n->disk_full;
    const struct raft *r = &n->meta->raft;
    o->role = raft_role_name(raft_role(r));
    o->is_leader = replica_is_leader(n->meta);
    struct leader_view lv;
    node_leader_view(n, now_ms, &lv);
    o->has_quorum = lv.current;
    if (lv.last != NULL) {
        copy_name(o->last_leader, lv.last->name);
        o->leader_contact_ms = lv.contact_ms;
    }
    if (lv.current) {
        copy_name(o->leader, lv.last->name);
    }
    o->self_role = "not-a-member";
    o->term = raft_term(r);
    o->commit_index = raft_commit_index(r);
    o->applied_index = n->meta->applied;
    o->last_index = raft_last_index(r);
    o->snapshot_index = raft_snapshot_index(r);
    o->cluster_size = raft_membership(r)->count; /* voters and learners, known by address or not */
    o->voters = replica_voters(n->meta);
    o->reachable_voters = replica_reachable_voters(n->meta);
    observe_members(n, now_ms, o);
    observe_commands(n, o);
    observe_counters(n, now_ms, o);
    hy_histo_init_us(&o->wal_fsync);
    o->wal_fsync_age_ms = -1;
    o->durability_replicated = n->cfg->durability == CONFIG_DURABILITY_REPLICATED;
    hy_histo_init_us(&o->snapshot_file);
}

/* ---- /health and /health/ready (pure) ------------------------------------------------------ */

int observe_ready(const struct node_observation *o, char *reason, size_t cap)
{
    uint32_t need = o->voters / 2 + 1;
    if (!o->started) {
        snprintf(reason, cap, "starting: the log is being recovered");
    } else if (o->stopping) {
        snprintf(reason, cap, "shutting down");
    } else if (o->draining) {
        snprintf(reason, cap, "draining: leadership is handed over before this node stops");
    } else if (o->leaving) {
        snprintf(reason, cap, "draining: its replicas move to other members before it stops");
    } else if (o->disk_full) {
        snprintf(reason, cap, "disk full: writes are refused until space is freed");
    } else if (strcmp(o->self_role, "joining") == 0 || strcmp(o->self_role, "learner") == 0) {
        snprintf(reason, cap, "%s: catching up before it becomes a voter", o->self_role);
    } else if (strcmp(o->self_role, "removed") == 0 || strcmp(o->self_role, "not-a-member") == 0) {
        snprintf(reason, cap, "not a member of the cluster's configuration");
    } else if (!o->has_quorum && o->reachable_voters < need) {
        snprintf(reason, cap, "no quorum: %u of %u voters reachable, %u needed",
                 o->reachable_voters, o->voters, need);
    } else if (!o->has_quorum) {
        snprintf(reason, cap, "no leader: an election is under way");
    } else if (o->partitions_without_leader > 0) {
        snprintf(reason, cap, "no leader for %u of %u partitions: elections are under way",
                 o->partitions_without_leader, o->partitions);
    } else if (o->commit_index > o->applied_index + OBSERVE_READY_APPLY_LAG_MAX) {
        snprintf(reason, cap, "catching up: applied %llu of %llu committed entries",
                 (unsigned long long)o->applied_index, (unsigned long long)o->commit_index);
    } else {
        snprintf(reason, cap, "ready");
        return 1;
    }
    return 0;
}

/* Hazelcast's states: ACTIVE; PASSIVE for a node that refuses writes (disk full) and for a
 * cluster this node sees without a majority (it serves stale reads only); SHUTTING_DOWN and
 * IN_TRANSITION (an election) as Hazelcast's transitions. */
static const char *node_state(const struct node_observation *o)
{
    if (!o->started) {
        return "STARTING";
    }
    if (o->stopping || o->draining || o->leaving) {
        return "SHUTTING_DOWN";
    }
    return o->disk_full ? "PASSIVE" : "ACTIVE";
}

static const char *cluster_state(const struct node_observation *o)
{
    if (o->has_quorum) {
        return "ACTIVE";
    }
    return o->reachable_voters >= o->voters / 2 + 1 ? "IN_TRANSITION" : "PASSIVE";
}

/* Safe: a majority behind a leader, and (as far as this node knows: the leader knows) every
 * configured member has every entry. */
static int cluster_safe(const struct node_observation *o)
{
    if (!o->has_quorum) {
        return 0;
    }
    for (size_t i = 0; i < o->member_count; i++) {
        const struct observe_member *m = &o->members[i];
        if (!m->link_up || (m->has_lag && m->lag_entries > OBSERVE_READY_APPLY_LAG_MAX)) {
            return 0;
        }
    }
    return 1;
}

static const char *json_bool(int v)
{
    return v ? "true" : "false";
}

static void health_member_json(const struct observe_member *m, struct hy_buf *b)
{
    hy_buf_append_str(b, "{\"name\":");
    hy_buf_append_json_str(b, m->name);
    hy_buf_printf(b, ",\"role\":\"%s\",\"self\":%s,\"linkUp\":%s", m->role, json_bool(m->is_self),
                  json_bool(m->link_up));
    if (m->state != NULL) {
        hy_buf_printf(b, ",\"state\":\"%s\",\"incarnation\":%llu,\"phi\":%.2f", m->state,
                      (unsigned long long)m->incarnation, m->phi);
    }
    if (m->has_lag) {
        hy_buf_printf(b, ",\"matchIndex\":%llu,\"lagEntries\":%llu,\"lagMs\":%llu,\"answered\":%s",
                      (unsigned long long)m->match_index, (unsigned long long)m->lag_entries,
                      (unsigned long long)m->lag_ms, json_bool(m->answered));
        if (m->answered) {
            hy_buf_printf(b, ",\"lastContactMs\":%llu", (unsigned long long)m->contact_ms);
        }
    }
    hy_buf_append_str(b, "}");
}

/* The p99 of a histogram, as the upper bound (us) of the bucket holding it; 0 when empty or
 * above every bound (then UINT64_MAX). */
static uint64_t histo_p99_us(const struct hy_histo *h)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t want = h->count - h->count / 100, seen = 0;
    for (size_t i = 0; i <= HY_HISTO_BOUNDS; i++) {
        seen += h->bucket[i];
        if (seen >= want) {
            return i < HY_HISTO_BOUNDS ? hy_histo_bounds_us[i] : UINT64_MAX;
        }
    }
    return UINT64_MAX;
}

static void health_lower(struct observe_health *h, int *score, int by, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void health_lower(struct observe_health *h, int *score, int by, const char *fmt, ...)
{
    *score -= by;
    if (h->reason_count < OBSERVE_HEALTH_REASONS_MAX) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->reasons[h->reason_count++], sizeof(h->reasons[0]), fmt, ap);
        va_end(ap);
    }
}

/* Links between clusters (docs/wan.md "Lag"), per link over the partitions this node leads: a
 * link down (its last batch failed) lowers the score by 10, one whose outbox refuses writes
 * (wan-queue-full block-writes) by 20, one more than a minute behind by 5; at most 30 for
 * every link together. */
static void health_wan(const struct node_observation *o, struct observe_health *h, int *score)
{
    int lowered = 0;
    for (size_t i = 0; i < o->wan_count; i++) {
        const char *link = o->wan[i].link;
        int first = 1;
        for (size_t j = 0; j < i && first; j++) {
            first = strcmp(o->wan[j].link, link) != 0;
        }
        if (!first) {
            continue;
        }
        uint32_t down = 0, blocked = 0;
        uint64_t lag_ms = 0;
        for (size_t j = i; j < o->wan_count; j++) {
            const struct node_wan_lag_view *v = &o->wan[j];
            if (strcmp(v->link, link) == 0) {
                down += v->link_down != 0;
                blocked += v->writes_blocked != 0;
                lag_ms = HY_MAX(lag_ms, v->lag_ms);
            }
        }
        int by = down ? 10 : blocked ? 20 : lag_ms > OBSERVE_HEALTH_WAN_BEHIND_MS ? 5 : 0;
        by = HY_MIN(by, 30 - lowered);
        if (by <= 0) {
            continue;
        }
        lowered += by;
        if (down) {
            health_lower(h, score, by, "WAN link '%.40s' down (%u partitions)", link, down);
        } else if (blocked) {
            health_lower(h, score, by, "WAN link '%.40s' full: writes refused (%u partitions)",
                         link, blocked);
        } else {
            health_lower(h, score, by, "WAN link '%.40s' behind by %llu s", link,
                         (unsigned long long)(lag_ms / 1000));
        }
    }
}

void observe_health_score(const struct node_observation *o, struct observe_health *h)
{
    memset(h, 0, sizeof(*h));
    int node = 100;
    if (!o->has_quorum) {
        health_lower(h, &node, 50, "no quorum: no leader heard within an election timeout");
    }
    if (o->partitions_without_leader > 0) {
        health_lower(h, &node, (int)HY_MIN(40u, 10u * o->partitions_without_leader),
                     "%u partitions without a leader", o->partitions_without_leader);
    }
    if (o->partitions_sharing_zone > 0) {
        health_lower(h, &node, 10, "%u partitions with replicas sharing a zone",
                     o->partitions_sharing_zone);
    }
    if (o->disk_full) {
        health_lower(h, &node, 50, "disk full: writes are refused");
    } else if (o->disk_total_bytes > 0 && o->disk_free_bytes * 10 < o->disk_total_bytes) {
        health_lower(h, &node, 20, "disk nearly full: %llu%% free",
                     (unsigned long long)(o->disk_free_bytes * 100 / o->disk_total_bytes));
    }
    uint64_t p99 = histo_p99_us(&o->wal_fsync);
    if (p99 > OBSERVE_HEALTH_SLOW_FSYNC_US) {
        health_lower(h, &node, 15, "slow fsync: p99 above %llu ms",
                     (unsigned long long)(p99 == UINT64_MAX ? OBSERVE_HEALTH_SLOW_FSYNC_US / 1000
                                                            : p99 / 1000));
    }
    if (o->memory_max_bytes > 0 && o->memory_used_bytes * 10 > o->memory_max_bytes * 9) {
        health_lower(h, &node, 10, "memory above 90%% of maxmemory");
    }
    uint32_t down = 0, lagging = 0, suspect = 0;
    for (size_t i = 0; i < o->member_count; i++) {
        const struct observe_member *m = &o->members[i];
        /* With gossip, its verdict counts (a member with a broken direct link that others
         * still reach is alive); without, the link. */
        if (m->state != NULL) {
            down += strcmp(m->state, "dead") == 0;
            suspect += strcmp(m->state, "suspect") == 0;
        } else {
            down += !m->is_self && !m->link_up;
        }
        lagging += m->has_lag && !m->is_self &&
                   (m->lag_entries > OBSERVE_READY_APPLY_LAG_MAX || m->lag_ms > 2000);
    }
    if (down > 0) {
        health_lower(h, &node, (int)HY_MIN(30u, 10u * down), "%u members unreachable", down);
    }
    if (suspect > 0) {
        health_lower(h, &node, (int)HY_MIN(20u, 5u * suspect), "%u members suspect", suspect);
    }
    if (lagging > 0) {
        health_lower(h, &node, (int)HY_MIN(30u, 10u * lagging), "%u followers lagging", lagging);
    }
    health_wan(o, h, &node);
    h->node_score = node < 0 ? 0 : node;
    /* The cluster, from here: the share of members reachable, and whether writes can go on. */
    int cluster = 100;
    uint32_t size = o->member_count > 0 ? (uint32_t)o->member_count : 1;
    cluster -= (int)(100u * down / size);
    if (!o->has_quorum || o->partitions_without_leader > 0) {
        cluster -= 50;
    }
    h->cluster_score = cluster < 0 ? 0 : cluster;
}

/* "wanLinks": each (WAN link, partition) this node leads (docs/wan.md "Lag"), with a state:
 * down (its last batch failed), resyncing, blocked (writes refused: outbox full), lagging
 * (changes not yet acknowledged) or up. */
static void health_wan_json(const struct node_observation *o, struct hy_buf *b)
{
    hy_buf_append_str(b, "\"wanLinks\":[");
    for (size_t i = 0; i < o->wan_count; i++) {
        const struct node_wan_lag_view *v = &o->wan[i];
        const char *state = v->link_down        ? "down"
                            : v->resyncing      ? "resyncing"
                            : v->writes_blocked ? "blocked"
                            : v->lag_entries    ? "lagging"
                                                : "up";
        hy_buf_append_str(b, i > 0 ? ",{\"link\":" : "{\"link\":");
        hy_buf_append_json_str(b, v->link);
        hy_buf_printf(b,
                      ",\"partition\":%u,\"state\":\"%s\",\"lagEntries\":%llu,\"lagMs\":%llu,"
                      "\"outboxBytes\":%llu,\"writesBlocked\":%s}",
                      v->partition, state, (unsigned long long)v->lag_entries,
                      (unsigned long long)v->lag_ms, (unsigned long long)v->outbox_bytes,
                      v->writes_blocked ? "true" : "false");
    }
    hy_buf_append_str(b, "],");
}

void observe_health_json(const struct node_observation *o, struct hy_buf *b)
{
    char reason[160];
    int ready = observe_ready(o, reason, sizeof(reason));
    hy_buf_printf(b,
                  "{\"nodeState\":\"%s\",\"clusterState\":\"%s\",\"clusterSafe\":%s,"
                  "\"migrationQueueSize\":0,\"clusterSize\":%u,\"node\":",
                  node_state(o), cluster_state(o), json_bool(cluster_safe(o)), o->cluster_size);
    hy_buf_append_json_str(b, o->node_id);
    hy_buf_printf(b, ",\"ready\":%s,\"readyReason\":", json_bool(ready));
    hy_buf_append_json_str(b, reason);
    hy_buf_printf(b, ",\"hasQuorum\":%s,\"leader\":", json_bool(o->has_quorum));
    if (o->leader[0] != '\0') {
        hy_buf_append_json_str(b, o->leader);
    } else {
        hy_buf_append_str(b, "null");
    }
    hy_buf_printf(b,
                  ",\"role\":\"%s\",\"term\":%llu,\"commitIndex\":%llu,\"appliedIndex\":%llu,"
                  "\"lastIndex\":%llu,\"snapshotIndex\":%llu,\"voters\":%u,"
                  "\"reachableVoters\":%u,\"partitions\":%u,\"partitionsLed\":%u,"
                  "\"partitionsWithoutLeader\":%u,\"partitionsUnderReplicated\":%u,"
                  "\"partitionsWithoutQuorum\":%u,\"partitionsSharingZone\":%u,"
                  "\"partitionsSharingRack\":%u,",
                  o->role, (unsigned long long)o->term, (unsigned long long)o->commit_index,
                  (unsigned long long)o->applied_index, (unsigned long long)o->last_index,
                  (unsigned long long)o->snapshot_index, o->voters, o->reachable_voters,
                  o->partitions, o->partitions_led, o->partitions_without_leader,
                  o->partitions_under_replicated, o->partitions_without_quorum,
                  o->partitions_sharing_zone, o->partitions_sharing_rack);
    struct observe_health health;
    observe_health_score(o, &health);
    hy_buf_printf(b, "\"healthScore\":%d,\"clusterHealthScore\":%d,\"healthReasons\":[",
                  health.node_score, health.cluster_score);
    for (size_t i = 0; i < health.reason_count; i++) {
        if (i > 0) {
            hy_buf_append_str(b, ",");
        }
        hy_buf_append_json_str(b, health.reasons[i]);
    }
    hy_buf_append_str(b, "],");
    if (o->gossip.on) {
        hy_buf_printf(b,
                      "\"gossip\":{\"incarnation\":%llu,\"localHealth\":%u,\"alive\":%llu,"
                      "\"suspect\":%llu,\"dead\":%llu},",
                      (unsigned long long)o->gossip.incarnation, o->gossip.local_health,
                      (unsigned long long)o->gossip.alive, (unsigned long long)o->gossip.suspect,
                      (unsigned long long)o->gossip.dead);
    }
    hy_buf_printf(b, "\"quorumRules\":%s,", o->quorum_rules_json[0] ? o->quorum_rules_json : "[]");
    health_wan_json(o, b);
    hy_buf_append_str(b, "\"members\":[");
    for (size_t i = 0; i < o->member_count; i++) {
        if (i > 0) {
            hy_buf_append_str(b, ",");
        }
        health_member_json(&o->members[i], b);
    }
    hy_buf_append_str(b, "]}\n");
}

/* ---- /metrics (pure) ------------------------------------------------------------------------ */

static void gauge(struct hy_buf *b, const char *name, const char *help, uint64_t v)
{
    prom_family(b, name, "gauge", help);
    prom_u64(b, name, NULL, v);
}

static void counter(struct hy_buf *b, const char *name, const char *help, uint64_t v)
{
    prom_family(b, name, "counter", help);
    prom_u64(b, name, NULL, v);
}

static void metrics_cluster(const struct node_observation *o, struct hy_buf *b)
{
    struct prom_labels l;
    prom_family(b, "halyard_info", "gauge", "This node: its name and version (always 1).");
    prom_labels_init(&l);
    prom_label(&l, "node", o->node_id);
    prom_label(&l, "version", HY_VERSION);
    prom_u64(b, "halyard_info", &l, 1);
    gauge(b, "halyard_cluster_size", "Members in the Raft configuration.", o->cluster_size);
    struct observe_health health;
    observe_health_score(o, &health);
    gauge(b, "halyard_health_score", "This node's health score, 0-100 (/health says why).",
          (uint64_t)health.node_score);
    gauge(b, "halyard_cluster_health_score", "The cluster's health score as this node sees it.",
          (uint64_t)health.cluster_score);
    gauge(b, "halyard_partitions", "Partitions (Raft groups holding slots) of the cluster.",
          o->partitions);
    gauge(b, "halyard_partitions_led", "Partitions this node leads.", o->partitions_led);
    gauge(b, "halyard_partitions_under_replicated",
          "Partitions with fewer replicas up than the replication factor can give.",
          o->partitions_under_replicated);
    gauge(b, "halyard_partitions_without_quorum",
          "Partitions with fewer replicas up than a majority of them.",
          o->partitions_without_quorum);
    gauge(b, "halyard_partitions_sharing_zone",
          "Partitions of the map with replicas sharing a zone.", o->partitions_sharing_zone);
    gauge(b, "halyard_partitions_without_leader", "Partitions for which this node knows no leader.",
          o->partitions_without_leader);
    uint64_t up = 0;
    for (size_t i = 0; i < o->member_count; i++) {
        up += o->members[i].link_up != 0;
    }
    prom_family(b, "halyard_cluster_members", "gauge",
                "Members this node knows, by the state of its link to them.");
    prom_labels_init(&l);
    prom_label(&l, "state", "reachable");
    prom_u64(b, "halyard_cluster_members", &l, up);
    prom_labels_init(&l);
    prom_label(&l, "state", "unreachable");
    prom_u64(b, "halyard_cluster_members", &l, o->member_count - up);
    if (o->gossip.on) {
        prom_family(b, "halyard_gossip_members", "gauge",
                    "Other members by gossip's verdict (alive, suspect, dead).");
        const char *states[] = {"alive", "suspect", "dead"};
        const uint64_t counts[] = {o->gossip.alive, o->gossip.suspect, o->gossip.dead};
        for (size_t i = 0; i < 3; i++) {
            prom_labels_init(&l);
            prom_label(&l, "state", states[i]);
            prom_u64(b, "halyard_gossip_members", &l, counts[i]);
        }
        gauge(b, "halyard_gossip_local_health",
              "Lifeguard's local health multiplier: 0 healthy, higher when this node is slow.",
              o->gossip.local_health);
        counter(b, "halyard_gossip_suspicions_total", "Suspicions this node took or learned.",
                o->gossip.suspicions);
        counter(b, "halyard_gossip_refutations_total",
                "Suspicions of this node it refuted with a higher incarnation.",
                o->gossip.refutations);
        gauge(b, "halyard_gossip_ring_links",
              "Ring neighbours: the members this node beacons to and watches with phi.",
              o->gossip.ring_links);
    }
    gauge(b, "halyard_cluster_voters", "Voters in the Raft configuration.", o->voters);
    gauge(b, "halyard_cluster_reachable_voters",
          "Voters whose link is up, this node included when it votes.", o->reachable_voters);
    gauge(b, "halyard_raft_has_quorum",
          "1 while a leader with a majority is known (heard within an election timeout).",
          (uint64_t)o->has_quorum);
    gauge(b, "halyard_raft_is_leader", "1 while this node leads the Raft group.",
          (uint64_t)o->is_leader);
    prom_family(b, "halyard_raft_leader", "gauge", "The current leader by name (always 1).");
    if (o->leader[0] != '\0') {
        prom_labels_init(&l);
        prom_label(&l, "leader", o->leader);
        prom_u64(b, "halyard_raft_leader", &l, 1);
    }
    gauge(b, "halyard_raft_term", "Current Raft term.", o->term);
    gauge(b, "halyard_raft_commit_index", "Highest log index known committed.", o->commit_index);
    gauge(b, "halyard_raft_applied_index", "Highest log index applied to the keyspace.",
          o->applied_index);
    gauge(b, "halyard_raft_last_index", "Last index of this node's log.", o->last_index);
    gauge(b, "halyard_raft_snapshot_index", "Index of the latest snapshot.", o->snapshot_index);
    counter(b, "halyard_raft_elections_total", "Elections this node started as a candidate.",
            o->elections);
    counter(b, "halyard_raft_leader_changes_total", "Times this node saw a new leader.",
            o->leader_changes);
}

static void metrics_replication(const struct node_observation *o, struct hy_buf *b)
{
    struct prom_labels l;
    prom_family(b, "halyard_raft_proposals_total", "counter",
                "Client writes proposed by this node, by outcome: committed, unknown (-UNKNOWN: "
                "may or may not apply), rejected (-TRYAGAIN: never applied).");
    const char *outcomes[] = {"committed", "unknown", "rejected"};
    uint64_t counts[] = {o->proposals_committed, o->proposals_unknown, o->proposals_rejected};
    for (size_t i = 0; i < 3; i++) {
        prom_labels_init(&l);
        prom_label(&l, "outcome", outcomes[i]);
        prom_u64(b, "halyard_raft_proposals_total", &l, counts[i]);
    }
    prom_family(b, "halyard_raft_commit_latency_seconds", "histogram",
                "From proposal to applied and answered, on the leader (ms resolution).");
    prom_histo(b, "halyard_raft_commit_latency_seconds", NULL, &o->commit_latency);
    prom_family(b, "halyard_wal_fsync_duration_seconds", "histogram",
                "One fdatasync of the log: with durability fsync, each group commit's write "
                "and fdatasync; with replicated, each fdatasync (at most every "
                "fsync-interval-ms).");
    prom_histo(b, "halyard_wal_fsync_duration_seconds", NULL, &o->wal_fsync);
    gauge(b, "halyard_durability_replicated",
          "1 when the durability setting is replicated (acknowledged once written on a majority, "
          "fdatasync'd within fsync-interval-ms), 0 when fsync.",
          (uint64_t)o->durability_replicated);
    if (o->wal_fsync_age_ms >= 0) {
        prom_family(b, "halyard_wal_last_fsync_age_seconds", "gauge",
                    "Time since the log's last fdatasync.");
        prom_seconds(b, "halyard_wal_last_fsync_age_seconds", NULL,
                     (uint64_t)o->wal_fsync_age_ms * 1000);
    }
    prom_family(b, "halyard_snapshot_file_write_seconds", "histogram",
                "Writing and fsyncing one snapshot file this node took, off the WAL thread.");
    prom_histo(b, "halyard_snapshot_file_write_seconds", NULL, &o->snapshot_file);
    prom_family(b, "halyard_raft_follower_lag_entries", "gauge",
                "Leader only: entries each member lacks from the leader's log.");
    for (size_t i = 0; i < o->member_count; i++) {
        if (o->members[i].has_lag) {
            prom_labels_init(&l);
            prom_label(&l, "member", o->members[i].name);
            prom_u64(b, "halyard_raft_follower_lag_entries", &l, o->members[i].lag_entries);
        }
    }
    prom_family(b, "halyard_raft_follower_lag_seconds", "gauge",
                "Leader only: age of the oldest entry each member lacks (0 when it has all).");
    for (size_t i = 0; i < o->member_count; i++) {
        if (o->members[i].has_lag) {
            prom_labels_init(&l);
            prom_label(&l, "member", o->members[i].name);
            prom_seconds(b, "halyard_raft_follower_lag_seconds", &l, o->members[i].lag_ms * 1000);
        }
    }
}

static void metrics_snapshots(const struct node_observation *o, struct hy_buf *b)
{
    struct prom_labels l;
    prom_family(b, "halyard_snapshots_total", "counter",
                "Snapshots taken by this node, or installed from the leader.");
    prom_labels_init(&l);
    prom_label(&l, "kind", "taken");
    prom_u64(b, "halyard_snapshots_total", &l, o->snapshots_taken);
    prom_labels_init(&l);
    prom_label(&l, "kind", "installed");
    prom_u64(b, "halyard_snapshots_total", &l, o->snapshots_installed);
    gauge(b, "halyard_snapshot_last_size_bytes", "Size of the last snapshot taken.",
          o->snapshot_last_bytes);
    counter(b, "halyard_snapshot_written_bytes_total", "Bytes of every snapshot taken.",
            o->snapshot_bytes_total);
    gauge(b, "halyard_partitions_parked",
          "Copies of partitions moved away for good whose keyspace left memory (snapshot kept).",
          o->partitions_parked);
    counter(b, "halyard_snapshot_sent_bytes_total",
            "Snapshot bytes sent to followers (new replicas, lagging ones), every group; "
            "paced by rebalance-bandwidth.",
            o->snapshot_sent_bytes);
    prom_family(b, "halyard_snapshot_duration_seconds", "histogram",
                "From the start of a snapshot to its hand-over to the log (ms resolution).");
    prom_histo(b, "halyard_snapshot_duration_seconds", NULL, &o->snapshot_duration);
}

static void metrics_loop(const struct node_observation *o, struct hy_buf *b)
{
    prom_family(b, "halyard_loop_turn_duration_seconds", "histogram",
                "Time the event loop worked per turn (waiting for I/O excluded): a long turn "
                "delays every client and peer of this node.");
    prom_histo(b, "halyard_loop_turn_duration_seconds", NULL, &o->loop_turn);
    counter(b, "halyard_loop_slow_turns_total",
            "Event loop turns that worked 100 ms or more (each is logged, at most once a second).",
            o->loop_slow_turns);
}

static void metrics_commands(const struct node_observation *o, struct hy_buf *b)
{
    struct prom_labels l;
    prom_family(b, "halyard_commands_total", "counter",
                "Calls by command, forwarded ones included (commands never called are left out).");
    for (size_t i = 0; i < o->command_count; i++) {
        if (o->commands[i].calls > 0) {
            prom_labels_init(&l);
            prom_label(&l, "cmd", o->commands[i].name);
            prom_u64(b, "halyard_commands_total", &l, o->commands[i].calls);
        }
    }
    prom_family(b, "halyard_command_duration_seconds", "histogram",
                "From a command's arrival to its reply, waits included, for commands this node "
                "ran (ms resolution).");
    for (size_t i = 0; i < o->command_count; i++) {
        if (o->commands[i].latency.count > 0) {
            prom_labels_init(&l);
            prom_label(&l, "cmd", o->commands[i].name);
            prom_histo(b, "halyard_command_duration_seconds", &l, &o->commands[i].latency);
        }
    }
}

static void metrics_clients(const struct node_observation *o, struct hy_buf *b)
{
    gauge(b, "halyard_connected_clients", "Client connections open now.", o->clients);
    counter(b, "halyard_connections_received_total", "Client connections accepted.",
            o->connections_received);
    counter(b, "halyard_rejected_connections_total", "Connections refused (maxclients).",
            o->rejected_connections);
    counter(b, "halyard_commands_processed_total", "Commands run by this node.",
            o->commands_processed);
    counter(b, "halyard_net_input_bytes_total", "Bytes read from clients.", o->net_input_bytes);
    counter(b, "halyard_net_output_bytes_total", "Bytes written to clients.", o->net_output_bytes);
    gauge(b, "halyard_keys", "Keys in the keyspace.", o->keys);
    gauge(b, "halyard_keys_volatile", "Keys with a time to live.", o->volatile_keys);
    counter(b, "halyard_expired_keys_total", "Keys deleted because their time to live passed.",
            o->expired_keys);
    counter(b, "halyard_evicted_keys_total", "Keys evicted to stay within maxmemory.",
            o->evicted_keys);
    counter(b, "halyard_keyspace_hits_total", "Key lookups that found the key.", o->keyspace_hits);
    counter(b, "halyard_keyspace_misses_total", "Key lookups that did not.", o->keyspace_misses);
    gauge(b, "halyard_memory_used_bytes", "Memory allocated by the process through halyard.",
          o->memory_used_bytes);
    gauge(b, "halyard_memory_dataset_bytes", "Memory the keyspace accounts for.",
          o->memory_dataset_bytes);
    gauge(b, "halyard_memory_max_bytes", "The maxmemory setting (0 = no limit).",
          o->memory_max_bytes);
    prom_family(b, "halyard_uptime_seconds", "gauge", "Time since the node started.");
    prom_seconds(b, "halyard_uptime_seconds", NULL, o->uptime_ms * 1000);
}

/* One counter family with a sample per member whose link this node has: the uint64_t at
 * byte `field` of its observe_member. */
static void observe_link_counter(struct hy_buf *b, const struct node_observation *o,
                                 const char *family, const char *help, size_t field)
{
    prom_family(b, family, "counter", help);
    for (size_t i = 0; i < o->member_count; i++) {
        const struct observe_member *m = &o->members[i];
        if (m->has_link_stats) {
            uint64_t v;
            memcpy(&v, (const uint8_t *)m + field, sizeof(v));
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "member", m->name);
            prom_u64(b, family, &l, v);
        }
    }
}

static void metrics_peers(const struct node_observation *o, struct hy_buf *b)
{
    struct prom_labels l;
    prom_family(b, "halyard_peer_up", "gauge", "1 while the link to the member is up.");
    for (size_t i = 0; i < o->member_count; i++) {
        if (!o->members[i].is_self) {
            prom_labels_init(&l);
            prom_label(&l, "member", o->members[i].name);
            prom_u64(b, "halyard_peer_up", &l, (uint64_t)o->members[i].link_up);
        }
    }
    prom_family(b, "halyard_peer_dropped_messages_total", "counter",
                "Frames to a member dropped: its queue was full, or its link was down.");
    for (size_t i = 0; i < o->member_count; i++) {
        const struct observe_member *m = &o->members[i];
        if (m->has_link_stats) {
            prom_labels_init(&l);
            prom_label(&l, "member", m->name);
            prom_label(&l, "reason", "queue_full");
            prom_u64(b, "halyard_peer_dropped_messages_total", &l, m->dropped_full);
            prom_labels_init(&l);
            prom_label(&l, "member", m->name);
            prom_label(&l, "reason", "link_down");
            prom_u64(b, "halyard_peer_dropped_messages_total", &l, m->dropped_down);
        }
    }
    static const struct {
        const char *family, *help;
        size_t field;
    } counters[] = {
        {"halyard_peer_beacons_sent_total",
         "Liveness beacons sent on the link to a member while it was idle: with gossip on, to its "
         "ring neighbours only.",
         offsetof(struct observe_member, beacons_sent)},
        {"halyard_peer_pings_sent_total",
         "Keepalive PINGs sent on the link to a member (every 250 ms; with gossip on, to members "
         "off this node's ring only after a second without news from them).",
         offsetof(struct observe_member, pings_sent)},
        {"halyard_peer_frames_received_total",
         "Frames received from a member, on either of its connections (keepalive included).",
         offsetof(struct observe_member, frames_recv)},
        {"halyard_peer_idle_closes_total",
         "Times the link to a member off this node's gossip ring was closed for idleness "
         "(peer-idle-close-ms); it is dialled again on demand and counts as up meanwhile.",
         offsetof(struct observe_member, idle_closes)},
    };
    for (size_t k = 0; k < HY_ARRAY_LEN(counters); k++) {
        observe_link_counter(b, o, counters[k].family, counters[k].help, counters[k].field);
    }
    prom_family(b, "halyard_peer_link_idle", "gauge",
                "1 while the link to the member is closed for idleness (it counts as up).");
    for (size_t i = 0; i < o->member_count; i++) {
        if (o->members[i].has_link_stats) {
            prom_labels_init(&l);
            prom_label(&l, "member", o->members[i].name);
            prom_u64(b, "halyard_peer_link_idle", &l, (uint64_t)o->members[i].link_parked);
        }
    }
}

/* Per (link, partition) this node leads: the changes the target has not acknowledged, how long
 * the oldest waited, what was shipped (docs/wan.md). Families are written even with no link,
 * so that dashboards find them. */
static void metrics_wan(const struct node_observation *o, struct hy_buf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"halyard_wan_lag_entries", "gauge",
         "Changes of a partition this node leads not yet acknowledged by a WAN link's target."},
        {"halyard_wan_lag_ms", "gauge",
         "How long the oldest change not yet acknowledged by the link's target has waited."},
        {"halyard_wan_acked_seq", "gauge",
         "The sequence number (log index * 65536 + place) the link's target applied up to."},
        {"halyard_wan_shipped_entries_total", "counter",
         "Changes the link's target acknowledged since this node led the partition."},
        {"halyard_wan_failures_total", "counter",
         "Batches not applied (refused, timed out, connection lost) and sent again."},
        {"halyard_wan_resync_needed", "gauge",
         "1 when the partition's outbox lacks changes the target needs and no resync runs yet."},
        {"halyard_wan_resyncing", "gauge",
         "1 while a resync of the link's target runs (its keys' states, then the changes since)."},
        {"halyard_wan_resync_keys", "gauge",
         "Keys' states the target acknowledged in the running resync (or the last one)."},
        {"halyard_wan_resync_bytes", "gauge",
         "Bytes of resync batches the target acknowledged in the running resync (or the last)."},
        {"halyard_wan_resyncs_total", "counter",
         "Resyncs this node completed as the partition's leader, since it knew the link."},
        {"halyard_wan_outbox_bytes", "gauge",
         "Bytes of the partition's outbox: changes some link's target has not acknowledged."},
        {"halyard_wan_writes_blocked", "gauge",
         "1 while clients' writes to the partition are refused (wan-queue-full block-writes)."},
    };
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        prom_family(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < o->wan_count; i++) {
            const struct node_wan_lag_view *v = &o->wan[i];
            char part[16];
            snprintf(part, sizeof(part), "%u", v->partition);
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "link", v->link);
            prom_label(&l, "partition", part);
            uint64_t x = f == 0    ? v->lag_entries
                         : f == 1  ? v->lag_ms
                         : f == 2  ? v->acked_seq
                         : f == 3  ? v->entries
                         : f == 4  ? v->failures
                         : f == 5  ? (uint64_t)v->gap
                         : f == 6  ? (uint64_t)v->resyncing
                         : f == 7  ? v->resync_keys
                         : f == 8  ? v->resync_bytes
                         : f == 9  ? v->resyncs
                         : f == 10 ? v->outbox_bytes
                                   : (uint64_t)v->writes_blocked;
            prom_u64(b, fam[f].name, &l, x);
        }
    }
    const char *name = "halyard_wan_conflicts_total";
    prom_family(b, name, "counter",
                "Active-active merge decisions made by partitions this node leads, by the link "
                "the change came over, the policy and the outcome (applied: the incoming "
                "version won; kept: the local one stayed).");
    for (size_t i = 0; i < o->wan_conflict_count; i++) {
        const struct node_wan_conflict_view *v = &o->wan_conflicts[i];
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "link", v->link);
        prom_label(&l, "policy", v->policy);
        prom_label(&l, "outcome", v->outcome);
        prom_u64(b, name, &l, v->count);
    }
}

static void metrics_alerts(const struct node_observation *o, struct hy_buf *b)
{
    static const char name[] = "halyard_alerts_total";
    const struct {
        const char *outcome;
        uint64_t count;
    } v[] = {{"sent", o->alerts_sent},
             {"failed", o->alerts_failed},
             {"rate_limited", o->alerts_rate_limited},
             {"queue_full", o->alerts_queue_full}};
    prom_family(b, name, "counter",
                "Webhook alerts per URL: answered 2xx, failed every attempt, dropped over "
                "alert-rate-max, dropped from a full queue (docs/operations.md \"Alerts\").");
    struct prom_labels l;
    for (size_t i = 0; i < HY_ARRAY_LEN(v); i++) {
        prom_labels_init(&l);
        prom_label(&l, "outcome", v[i].outcome);
        prom_u64(b, name, &l, v[i].count);
    }
    prom_family(b, "halyard_alert_retries_total", "counter",
                "Webhook attempts after an alert's first (a failure, then the backoff).");
    prom_u64(b, "halyard_alert_retries_total", NULL, o->alerts_retries);
}

void observe_metrics(const struct node_observation *o, struct hy_buf *b)
{
    metrics_cluster(o, b);
    metrics_wan(o, b);
    metrics_replication(o, b);
    metrics_snapshots(o, b);
    metrics_loop(o, b);
    metrics_commands(o, b);
    metrics_clients(o, b);
    metrics_peers(o, b);
    metrics_alerts(o, b);
}
