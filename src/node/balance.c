/*
 * balance.c - leaderships spread evenly over the live voters (issue 11, item 7).
 *
 * Every partition elects on its own, so after a start or a failover one node may lead most
 * of them, and all their writes run on its CPU and its disk. Each node looks, from cron, at
 * who leads every partition it holds (as its own replicas see it) and, when it leads at least
 * two more than a live voter of one of them (counted over the partitions both hold), hands
 * that partition to the voter
 * (leadership transfer, §3.10: the writes of the partition pause for a round trip, nothing
 * is lost). Repeated, the counts end within one of each other; a node that comes back gets
 * its share. A round hands over up to `batch` partitions at once, counting each
 * hand-over in its own tally before choosing the next target (with 1,024 partitions one at a
 * time took minutes to spread a start's leaderships); then the node pauses two election
 * timeouts, so that every node's view catches up before its next decision and no two nodes
 * chase each other: each gives only to voters that lead at least two fewer than it does.
 */
#include "common/assert.h"
#include "node/node_internal.h"

/* Leaderships one node hands over in one round: BALANCE_BATCH, or one in BALANCE_BATCH_PER
 * of the partitions when that is more (4,096 partitions on 3 nodes took ~50 s to balance 16
 * at a time; with 1,024 or fewer nothing changes). */
#define BALANCE_BATCH     16
#define BALANCE_BATCH_PER 64

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
    if (!partmap_holds_all(n) || !partmap_everyone_holds_all(n)) {
        /* A replication factor below the member count: this node sees the leaders of the
         * partitions it holds only, and pairs of nodes comparing what both hold handed
         * leaderships round in cycles of three or more (seed 693 --nodes 5 --partitions 8
         * --rf 3). Balancing needs every node's counts (issue 12): until then elections
         * alone spread leaderships here. Also on a node that holds every partition while
         * others do not (the only member of its zone: placement puts a replica of every
         * partition there): it would hand leaderships on its partial counts, and the same
         * cycles followed (seed 71 --nodes 5 --partitions 8 --rf 3 --zones 3). */
        return;
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
