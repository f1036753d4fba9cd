/*
 * balance.c - leaderships spread evenly over the live voters (issue 11 item 7, issue 12).
 *
 * Every partition elects on its own, so after a start or a failover one node may lead most
 * of them, and all their writes run on its CPU and its disk. Leadership transfer (§3.10 of
 * the Raft dissertation: the writes of the partition pause for a round trip, nothing is lost)
 * spreads them again. Two planners, by who can see every partition's leader:
 *
 * - Every member holds every partition: each node looks, from cron, at who leads every
 *   partition (as its own replicas see it) and, when it leads at least two more than a live
 *   voter, hands one to it. A round hands over up to `batch` partitions, counting each
 *   hand-over before choosing the next target; then the node pauses two election timeouts,
 *   so that every node's view catches up and no two nodes chase each other.
 * - A replication factor below the member count: a node sees the leaders of the partitions
 *   it holds only, and nodes deciding on such partial views handed leaderships round in
 *   cycles (simulator seeds 693 and 71). There the metadata group's leader alone plans, from
 *   every partition's leader (its own replicas' view, its peers' HY.LEADERS answers for the
 *   rest) and the partition map: each member's fair share is the sum, over the partitions it
 *   holds a replica of, of 1/(the partition's replicas that may lead). A transfer goes from a
 *   member leading more than one above its share (at least two above its share rounded
 *   down), or to one leading more than one below it (hysteresis: nothing moves for less),
 *   and only between two members whose excesses over their shares differ by more than one:
 *   a transfer changes the sum of the squared excesses by 2 (1 - that difference) < 0, so
 *   on one view the sum only falls, over a finite set of leader assignments, and once faults
 *   stop and the views agree the transfers end (a cycle would have to come back to the sum
 *   it started from). When no transfer is allowed and every two members share a partition,
 *   every member leads within its fair share ± 1 (one more than one above it would find a
 *   member below its own excess minus one, and the excesses sum to 0). A round sends at
 *   most `batch` transfers, each to the partition's current leader (HALYARD FAILOVER TO, as
 *   halyctl cluster failover does; none is recorded in the metadata group: a transfer lost
 *   with its leader is planned again from the next counts), no partition twice within
 *   BALANCE_COOL_TIMEOUTS election timeouts, then waits BALANCE_ROUND_TIMEOUTS for the
 *   HY.LEADERS answers to show the new leaders.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "node/node_internal.h"

/* Leaderships one node hands over in one round: BALANCE_BATCH, or one in BALANCE_BATCH_PER
 * of the partitions when that is more (4,096 partitions on 3 nodes took ~50 s to balance 16
 * at a time; with 1,024 or fewer nothing changes). */
#define BALANCE_BATCH     16
#define BALANCE_BATCH_PER 64

/* The metadata leader's planner: no partition's leadership is moved twice within this many
 * election timeouts; after a round that sent transfers, the next waits this many (every
 * node's HY.LEADERS answers, asked every election timeout, show the new leaders by then). */
#define BALANCE_COOL_TIMEOUTS  10
#define BALANCE_ROUND_TIMEOUTS 3
/* A peer that said it drains (its HY.LEADERS answer) is given no leadership for this many
 * election timeouts after it last said so. */
#define BALANCE_DRAIN_TIMEOUTS 3

/* A voter of g whose link is up and that answered its leader within an election timeout. */
static int fit_target(const struct node_group *g, const struct node_member *m, int up)
{
    const struct hy_node *n = g->node;
    if (!up || m->id == g->raft.cfg.id ||
        !raft_membership_is_voter(raft_membership(&g->raft), m->id)) {
        return 0;
    }
    struct raft_follower f;
    return raft_follower_info(&g->raft, m->id, &f) && f.answered &&
           n->raft_now_ms - HY_MIN(f.last_heard_ms, n->raft_now_ms) <
               (uint64_t)n->cfg->election_timeout_ms;
}

void node_balance_note_draining(struct hy_node *n, raft_id id, uint64_t now_ms)
{
    size_t i = 0;
    while (i < n->drain_seen_count && n->drain_seen[i].id != id) {
        i++;
    }
    if (i == n->drain_seen_count) {
        if (i == NODE_MEMBERS_MAX) {
            return;
        }
        n->drain_seen_count++;
    }
    n->drain_seen[i].id = id;
    n->drain_seen[i].seen_ms = now_ms;
}

/* Whether member i may be given a leadership by the planner: a voter of the address book
 * (observers hold no replica), up as this node's links see it, not draining (this node, or a
 * peer whose HY.LEADERS answer said so lately). */
static int may_lead(const struct hy_node *n, size_t i, uint64_t now_ms)
{
    const struct node_member *m = &n->members[i];
    if (m->role != STORE_MEMBER_VOTER || !n->member_up[i] ||
        (m->id == n->meta->raft.cfg.id && (n->draining || n->drain_handoff))) {
        return 0;
    }
    uint64_t keep = BALANCE_DRAIN_TIMEOUTS * (uint64_t)n->cfg->election_timeout_ms;
    for (size_t k = 0; k < n->drain_seen_count; k++) {
        if (n->drain_seen[k].id == m->id && now_ms < n->drain_seen[k].seen_ms + keep) {
            return 0;
        }
    }
    return 1;
}

static int member_index(const struct hy_node *n, raft_id id)
{
    const struct node_member *m = node_member_find(n->members, n->member_count, id);
    return m != NULL ? (int)(m - n->members) : -1;
}

/* Partition group g's replicas in the map that may lead (member indexes into elig, at most
 * RAFT_SERVERS_MAX), and its leader as this node knows it: its own replica's view where it
 * holds g, else what g's replicas last answered (HY.LEADERS, -MOVED). Returns the leader's
 * index when it is one of those replicas, else -1 (no leader known, or one that should not
 * keep it: it drains, or it is a move's source outside the map: it hands over on its own). */
static int partition_view(const struct hy_node *n, const struct node_group *g, uint64_t now_ms,
                          int *elig, size_t *elig_count)
{
    const struct node_placement *pl = partmap_of(n, g);
    *elig_count = 0;
    if (pl == NULL) {
        return -1;
    }
    raft_id leader = RAFT_NONE;
    if (node_group_raft_view(g)) {
        leader = raft_leader(&g->raft);
    } else if (g->leader_hint_vouched) {
        leader = g->leader_hint;
    }
    int at = -1;
    for (uint32_t k = 0; k < pl->count; k++) {
        int i = member_index(n, pl->ids[k]);
        if (i >= 0 && may_lead(n, (size_t)i, now_ms)) {
            at = pl->ids[k] == leader ? (int)*elig_count : at;
            elig[(*elig_count)++] = i;
        }
    }
    return at >= 0 ? elig[at] : -1;
}

size_t node_balance_shares(const struct hy_node *n, uint64_t now_ms, uint64_t *fair_out,
                           size_t *leads_out)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups), counted = 0;
    memset(fair_out, 0, n->member_count * sizeof(*fair_out));
    memset(leads_out, 0, n->member_count * sizeof(*leads_out));
    for (size_t p = 0; p < parts; p++) {
        int elig[RAFT_SERVERS_MAX];
        size_t count;
        int leader = partition_view(n, groups[p], now_ms, elig, &count);
        if (leader < 0) {
            continue; /* counted neither in the shares nor in the leads: Σ fair = Σ leads */
        }
        for (size_t k = 0; k < count; k++) {
            fair_out[elig[k]] += BALANCE_UNIT / count;
        }
        leads_out[leader]++;
        counted++;
    }
    return counted;
}

/* The transfer that evens leaderships most (the largest difference of excesses, the lowest
 * partition first among equals), with its target in *target_out; -1 when none is allowed:
 * see the top of the file. excess[i]: member i's leaderships minus its fair share, in units. */
static long plan_pick(const struct hy_node *n, const int *leader, const int64_t *excess,
                      uint64_t now_ms, int *target_out)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    const int64_t one = BALANCE_UNIT;
    long best = -1;
    int64_t best_gap = 0;
    for (size_t p = 0; p < parts; p++) {
        int l = leader[p], elig[RAFT_SERVERS_MAX];
        size_t count;
        if (l < 0 || now_ms < groups[p]->balance_cool_ms || !partmap_group_settled(groups[p])) {
            continue; /* unknown, cooling down, or a move under way (its target may not vote) */
        }
        (void)partition_view(n, groups[p], now_ms, elig, &count);
        for (size_t k = 0; k < count; k++) {
            int t = elig[k];
            int64_t gap = excess[l] - excess[t];
            if (t != l && gap > one && (excess[l] > one || excess[t] < -one) && gap > best_gap) {
                best = (long)p;
                best_gap = gap;
                *target_out = t;
            }
        }
    }
    return best;
}

/* The metadata leader's round (see the top of the file). */
static void balance_plan(struct hy_node *n, uint64_t now_ms)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    if (n->partmap == NULL) {
        return;
    }
    uint64_t fair[NODE_MEMBERS_MAX];
    size_t leads[NODE_MEMBERS_MAX];
    int64_t excess[NODE_MEMBERS_MAX];
    const int64_t one = BALANCE_UNIT;
    (void)node_balance_shares(n, now_ms, fair, leads);
    int uneven = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        excess[i] = (int64_t)leads[i] * BALANCE_UNIT - (int64_t)fair[i];
        uneven |= excess[i] > one || excess[i] < -one;
    }
    if (!uneven || partmap_rebalance_paused(n)) {
        /* The steady state (every member within its fair share ± 1), or rebalancing paused,
         * which moves no leadership either: said once, as the replica moves say it. */
        if (uneven && !n->balance_held) {
            hy_log(n->log, HY_LOG_INFO,
                   "balance: paused while leaderships are uneven (a member more than one off "
                   "its fair share): no leadership moves until rebalancing resumes");
        }
        n->balance_held = uneven;
        return;
    }
    n->balance_held = 0;
    int *leader = hy_xcalloc(parts, sizeof(*leader));
    for (size_t p = 0; p < parts; p++) {
        int elig[RAFT_SERVERS_MAX];
        size_t count;
        leader[p] = partition_view(n, groups[p], now_ms, elig, &count);
    }
    uint64_t et = (uint64_t)n->cfg->election_timeout_ms;
    size_t sent = 0, batch = HY_MAX((size_t)BALANCE_BATCH, parts / BALANCE_BATCH_PER);
    int t = -1;
    long p;
    while (sent < batch && (p = plan_pick(n, leader, excess, now_ms, &t)) >= 0) {
        struct node_group *g = groups[p];
        const struct node_member *from = &n->members[leader[p]], *to = &n->members[t];
        hy_log(n->log, HY_LOG_INFO,
               "balance: partition %ld from %s to %s (leaderships %zu and %zu; fair shares "
               "%.2f and %.2f)",
               p, from->name, to->name, leads[leader[p]], leads[t],
               (double)fair[leader[p]] / BALANCE_UNIT, (double)fair[t] / BALANCE_UNIT);
        if (from->id == n->meta->raft.cfg.id) {
            (void)replica_transfer(g, to->id, now_ms); /* HY_EBUSY: looked at again later */
        } else {
            proxy_probe_transfer(n, from, (size_t)p, to->name, now_ms);
        }
        g->balance_cool_ms = now_ms + BALANCE_COOL_TIMEOUTS * et;
        excess[leader[p]] -= BALANCE_UNIT;
        excess[t] += BALANCE_UNIT;
        leads[leader[p]]--;
        leads[t]++;
        leader[p] = t;
        sent++;
    }
    hy_free(leader);
    if (sent > 0) {
        n->balance_next_ms = now_ms + BALANCE_ROUND_TIMEOUTS * et;
    }
}

void node_balance_leaders(struct hy_node *n, uint64_t now_ms)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    if (parts < 2 || n->draining || now_ms < n->balance_next_ms) {
        return;
    }
    /* The next look in an election timeout whatever this one finds: each look walks every
     * partition, and at every cron tick that was a fifth of an idle node's CPU with 4,096. */
    n->balance_next_ms = now_ms + (uint64_t)n->cfg->election_timeout_ms;
    raft_id me = n->meta->raft.cfg.id;
    if (!partmap_everyone_holds_all(n)) {
        /* A replication factor below the member count: only the metadata leader plans (see
         * the top of the file; seeds 693 and 71 cycled when every node did). */
        if (replica_is_leader(n->meta)) {
            balance_plan(n, now_ms);
        }
        return;
    }
    if (!partmap_holds_all(n)) {
        return; /* the map is not applied here yet */
    }
    /* Per member m, over the partitions both this node and m hold (this node sees their
     * leaders, and so does m): how many this node leads (mine[m]) and how many m leads
     * (theirs[m]). With every partition on every member these are the plain counts; with a
     * replication factor below the member count each pair compares what both see, so that
     * two nodes never hand a partition back and forth on different views. */
    size_t mine[NODE_MEMBERS_MAX] = {0}, theirs[NODE_MEMBERS_MAX] = {0};
    for (size_t p = 0; p < parts; p++) {
        const struct node_group *g = groups[p];
        if (!node_group_raft_view(g)) {
            continue; /* not held here (partmap.c): its leader is not known here */
        }
        raft_id leader = raft_leader(&g->raft);
        for (size_t i = 0; i < n->member_count; i++) {
            if (n->members[i].id != me && node_group_has(g, n->members[i].id)) {
                mine[i] += leader == me;
                theirs[i] += leader == n->members[i].id;
            }
        }
    }
    /* Balanced within one with every member (the steady state): no partition can find a
     * target below, so the walk over every led partition (and each candidate's follower
     * state) is skipped: with 1,024 idle partitions it was a tenth of a node's CPU. */
    int uneven = 0;
    for (size_t i = 0; i < n->member_count && !uneven; i++) {
        uneven = theirs[i] + 2 <= mine[i];
    }
    if (!uneven) {
        return;
    }
    size_t moved = 0, batch = HY_MAX((size_t)BALANCE_BATCH, parts / BALANCE_BATCH_PER);
    for (size_t p = parts; p-- > 0 && moved < batch;) {
        struct node_group *g = groups[p];
        if (!replica_is_leader(g) || replica_transferring(g)) {
            continue;
        }
        /* The fittest voter that leads fewest, if that is at least two fewer than this. */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n->member_count; i++) {
            if (fit_target(g, &n->members[i], n->member_up[i]) && theirs[i] + 2 <= mine[i] &&
                (best == SIZE_MAX || mine[i] - theirs[i] > mine[best] - theirs[best])) {
                best = i;
            }
        }
        if (best == SIZE_MAX) {
            continue; /* balanced within one with every voter of this one, or none fit */
        }
        if (replica_transfer(g, n->members[best].id, now_ms) == HY_OK) {
            hy_log(n->log, HY_LOG_DEBUG,
                   "balance: handing partition %zu to %s (of the partitions both hold, it "
                   "leads %zu, this node %zu)",
                   p, n->members[best].name, theirs[best], mine[best]);
            for (size_t i = 0; i < n->member_count; i++) {
                if (n->members[i].id != me && node_group_has(g, n->members[i].id)) {
                    mine[i]--;
                }
            }
            theirs[best]++;
            moved++;
        }
    }
    if (moved > 0) {
        hy_log(n->log, HY_LOG_INFO, "balance: handed %zu partitions over", moved);
        n->balance_next_ms = now_ms + 2 * (uint64_t)n->cfg->election_timeout_ms;
    }
}
