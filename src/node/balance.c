/*
 * balance.c - leaderships spread evenly over the live voters (issue 11, item 7).
 *
 * Every partition elects on its own, so after a start or a failover one node may lead most
 * of them, and all their writes run on its CPU and its disk. Each node looks, from cron, at
 * who leads every partition (as its own replicas see it) and, when it leads at least two more
 * than the live voter that leads fewest, hands one of its partitions to that voter
 * (leadership transfer, §3.10: the writes of the partition pause for a round trip, nothing
 * is lost). Repeated, the counts end within one of each other; a node that comes back gets
 * its share. A round hands over up to BALANCE_BATCH partitions at once, counting each
 * hand-over in its own tally before choosing the next target (with 1,024 partitions one at a
 * time took minutes to spread a start's leaderships); then the node pauses two election
 * timeouts, so that every node's view catches up before its next decision and no two nodes
 * chase each other: each gives only to voters that lead at least two fewer than it does.
 */
#include "common/assert.h"
#include "node/node_internal.h"

/* Leaderships one node hands over in one round. */
#define BALANCE_BATCH 16

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
    /* Leaderships per member (live voters of the metadata group only). */
    size_t leads[NODE_MEMBERS_MAX] = {0};
    size_t self = SIZE_MAX;
    for (size_t i = 0; i < n->member_count; i++) {
        if (n->members[i].id == n->meta->raft.cfg.id) {
            self = i;
        }
    }
    if (self == SIZE_MAX) {
        return;
    }
    for (size_t p = 0; p < parts; p++) {
        raft_id leader = raft_leader(&groups[p]->raft);
        for (size_t i = 0; i < n->member_count; i++) {
            leads[i] += n->members[i].id == leader;
        }
    }
    size_t moved = 0;
    for (size_t p = parts; p-- > 0 && moved < BALANCE_BATCH;) {
        struct node_group *g = groups[p];
        if (!replica_is_leader(g) || replica_transferring(g)) {
            continue;
        }
        /* The fittest voter that leads fewest, if that is at least two fewer than this. */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n->member_count; i++) {
            if (fit_target(g, &n->members[i], n->member_up[i]) &&
                (best == SIZE_MAX || leads[i] < leads[best])) {
                best = i;
            }
        }
        if (best == SIZE_MAX || leads[best] + 2 > leads[self]) {
            break; /* balanced within one, or no one fit to take a partition */
        }
        if (replica_transfer(g, n->members[best].id, now_ms) == HY_OK) {
            hy_log(n->log, HY_LOG_DEBUG,
                   "balance: handing partition %zu to %s (it leads %zu, this node %zu)", p,
                   n->members[best].name, leads[best], leads[self]);
            leads[best]++;
            leads[self]--;
            moved++;
        }
    }
    if (moved > 0) {
        hy_log(n->log, HY_LOG_INFO, "balance: handed %zu partitions over; this node leads %zu",
               moved, leads[self]);
        n->balance_next_ms = now_ms + 2 * (uint64_t)n->cfg->election_timeout_ms;
    }
}
