/*
 * member.c - who the members are and where they live, and membership changes at run time.
 *
 * Two things describe the cluster, and they are kept apart on purpose:
 *  - the Raft configuration (raft.h): who votes and who only learns. It changes one server
 *    at a time through RAFT_EV_CHANGE, and only the leader changes it;
 *  - the address book (store.h, "cluster members"): each member's name, peer address and
 *    wanted role, replicated through the log like any write (STORE_OP_MEMBER_SET), so every
 *    node, and a node that joins or restarts without flags, learns every address.
 * HALYARD JOIN / REMOVE only write the address book. The leader then moves the configuration
 * towards it (member_reconcile, from cron): add a wanted member as a learner, promote it once
 * it has caught up (the core refuses before), remove a member marked "removed". Because the
 * book is replicated and the reconciler is level-triggered, a change survives the leader that
 * started it: the next leader finishes it.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"
#include "proto/wire.h"

/* ---- the member list ------------------------------------------------------------------- */

static void self_fill(const struct hy_node *n, struct node_member *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", n->cfg->node_id);
    snprintf(m->host, sizeof(m->host), "%s", n->cfg->bind);
    m->peer_port = (uint16_t)n->cfg->peer_port;
    /* The port clients reach: tls-port when the plain port is off (port 0). */
    m->client_port = (uint16_t)(n->cfg->port > 0 ? n->cfg->port : n->cfg->tls_port);
    m->id = node_member_id(m->name);
}

int member_load_boot(struct hy_node *n)
{
    char err[160];
    const char *list = n->cfg->bootstrap;
    n->boot_count = 0;
    if (list[0] == '\0') {
        if (!n->cfg->joined) {
            self_fill(n, &n->boot[0]);
            n->boot_count = 1;
        }
    } else if (node_members_parse(list, n->boot, RAFT_SERVERS_MAX, &n->boot_count, err) != HY_OK) {
        hy_log(n->log, HY_LOG_ERROR, "invalid %s list: %s", n->cfg->joined ? "join" : "bootstrap",
               err);
        return HY_ECONFIG;
    } else if (!n->cfg->joined &&
               node_member_find(n->boot, n->boot_count, node_member_id(n->cfg->node_id)) == NULL) {
        hy_log(n->log, HY_LOG_ERROR, "node-id '%s' is not in the bootstrap list", n->cfg->node_id);
        return HY_ECONFIG;
    }
    member_rebuild(n);
    return HY_OK;
}

static struct node_member *find_name(struct node_member *v, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(v[i].name, name) == 0) {
            return &v[i];
        }
    }
    return NULL;
}

/* Folds address-book entries into v (updating by name, appending new ones). */
static size_t overlay(struct node_member *v, size_t count, const struct store_member *book,
                      size_t n_book)
{
    for (size_t i = 0; i < n_book; i++) {
        const struct store_member *sm = &book[i];
        struct node_member *m = find_name(v, count, sm->name);
        if (m == NULL) {
            if (count == NODE_MEMBERS_MAX) {
                continue;
            }
            m = &v[count++];
            memset(m, 0, sizeof(*m));
            snprintf(m->name, sizeof(m->name), "%s", sm->name);
            m->id = node_member_id(m->name);
        }
        snprintf(m->host, sizeof(m->host), "%s", sm->host);
        m->peer_port = sm->peer_port;
        m->client_port = sm->peer_port > 10000 ? (uint16_t)(sm->peer_port - 10000) : 0;
        m->role = sm->role;
    }
    return count;
}

void member_rebuild(struct hy_node *n)
{
    struct node_member next[NODE_MEMBERS_MAX];
    memset(next, 0, sizeof(next));
    const struct store_member *book;
    size_t n_book = store_members(n->meta->store, &book);
    size_t count = overlay(next, 0, book, n_book);
    count = overlay(next, count, n->log_members, n->log_member_count);
    /* This node's own list (--bootstrap, or what it joined with) wins for the names it gives:
     * behind NAT or a proxy, members may reach one another at different addresses. */
    for (size_t i = 0; i < n->boot_count; i++) {
        struct node_member *m = find_name(next, count, n->boot[i].name);
        if (m == NULL && count < NODE_MEMBERS_MAX) {
            next[count++] = n->boot[i];
        } else if (m != NULL) {
            memcpy(m->host, n->boot[i].host, sizeof(m->host));
            m->peer_port = n->boot[i].peer_port;
            m->client_port = n->boot[i].client_port;
        }
    }
    /* This node is always a member of its own list, reachable where it really listens. */
    struct node_member self;
    self_fill(n, &self);
    struct node_member *me = find_name(next, count, self.name);
    if (me == NULL && count < NODE_MEMBERS_MAX) {
        me = &next[count++];
        *me = self;
    }
    if (me != NULL) {
        me->client_port = self.client_port;
    }
    if (count == n->member_count && memcmp(next, n->members, count * sizeof(next[0])) == 0) {
        return;
    }
    uint8_t up[NODE_MEMBERS_MAX];
    for (size_t i = 0; i < count; i++) {
        const struct node_member *old = find_name(n->members, n->member_count, next[i].name);
        /* A guest's link that is up carries on as the new member's (node_guest_add). */
        up[i] = next[i].id == n->meta->raft.cfg.id ||
                (old != NULL && n->member_up[old - n->members] != 0) ||
                (old == NULL && node_guest_up(n, next[i].name));
    }
    memcpy(n->members, next, count * sizeof(next[0]));
    memcpy(n->member_up, up, count);
    n->member_count = count;
    n->members_epoch++;
}

void member_maybe_rebuild(struct hy_node *n)
{
    int drop_hints = n->log_member_count > 0 && n->meta->applied >= n->log_members_upto;
    if (drop_hints) {
        n->log_member_count = 0; /* the entries they came from are in the book now */
    }
    uint64_t version = store_members_version(n->meta->store);
    if (version != n->members_seen_version || drop_hints) {
        n->members_seen_version = version;
        member_rebuild(n);
    }
    if (n->meta->raft.membership_index != n->members_seen_config) {
        n->members_seen_config = n->meta->raft.membership_index;
        n->members_epoch++; /* the transport keeps removed members only while configured */
    }
}

void member_scan_log(struct hy_node *n, const struct raft_entry *entries, uint32_t count,
                     uint64_t first_index)
{
    for (uint32_t i = 0; i < count; i++) {
        struct store_entry e;
        if (entries[i].type != RAFT_ENTRY_COMMAND || entries[i].len < 2 ||
            entries[i].data[1] != STORE_OP_MEMBER_SET ||
            store_entry_decode(entries[i].data, entries[i].len, &e) != HY_OK) {
            continue;
        }
        int role = store_member_role_parse(e.argv[2].ptr, e.argv[2].len);
        if (role != 0 && e.argv[0].len <= STORE_MEMBER_NAME_MAX &&
            e.argv[1].len <= STORE_MEMBER_HOST_MAX && e.incr > 0 && e.incr <= 65535) {
            struct store_member sm;
            memset(&sm, 0, sizeof(sm));
            memcpy(sm.name, e.argv[0].ptr, e.argv[0].len);
            memcpy(sm.host, e.argv[1].ptr, e.argv[1].len);
            sm.peer_port = (uint16_t)e.incr;
            sm.role = (uint8_t)role;
            size_t k = 0;
            while (k < n->log_member_count && strcmp(n->log_members[k].name, sm.name) != 0) {
                k++;
            }
            if (k < STORE_MEMBERS_MAX) {
                n->log_members[k] = sm;
                n->log_member_count += k == n->log_member_count;
            }
        }
        store_entry_release(&e);
    }
    n->log_members_upto = first_index + count - 1;
    member_rebuild(n);
}

int node_group_has(const struct node_group *g, raft_id id)
{
    const struct raft_membership *m = raft_membership(&g->raft);
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->servers[i].id == id) {
            return 1;
        }
    }
    return 0;
}

int member_in_config(const struct hy_node *n, raft_id id)
{
    return node_group_has(n->meta, id);
}

const char *member_role_name(const struct hy_node *n, const struct node_member *m)
{
    if (member_in_config(n, m->id)) {
        if (raft_leader(&n->meta->raft) == m->id) {
            return "leader";
        }
        if (raft_membership_is_voter(raft_membership(&n->meta->raft), m->id)) {
            return m->role == STORE_MEMBER_REMOVED ? "leaving" : "follower";
        }
        return m->role == STORE_MEMBER_OBSERVER  ? "observer"
               : m->role == STORE_MEMBER_REMOVED ? "leaving"
                                                 : "learner";
    }
    if (m->role == STORE_MEMBER_VOTER || m->role == STORE_MEMBER_OBSERVER) {
        return "joining";
    }
    return m->role == STORE_MEMBER_REMOVED ? "removed" : "not-a-member";
}

/* ---- the leader's reconciler ---------------------------------------------------------------- */

static const struct store_member *book_find(const struct hy_node *n, const char *name)
{
    const struct store_member *book;
    size_t count = store_members(n->meta->store, &book);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(book[i].name, name) == 0) {
            return &book[i];
        }
    }
    return NULL;
}

/* A MEMBER_SET entry; args holds its three arguments and must outlive e. */
static void member_entry(struct store_entry *e, struct store_arg args[3], const char *name,
                         const char *host, uint16_t port, int role, uint32_t flags, uint64_t now_ms)
{
    const char *role_text = store_member_role_name((enum store_member_role)role);
    args[0] = (struct store_arg){(const uint8_t *)name, strlen(name)};
    args[1] = (struct store_arg){(const uint8_t *)host, strlen(host)};
    args[2] = (struct store_arg){(const uint8_t *)role_text, strlen(role_text)};
    *e = (struct store_entry){.op = STORE_OP_MEMBER_SET,
                              .flags = flags,
                              .time_ms = now_ms,
                              .expire_at_ms = -1,
                              .incr = port,
                              .argc = 3,
                              .argv = args};
}

/* Configured servers missing from the address book (a cluster formed from --bootstrap):
 * write what the bootstrap list says, so that restarts and new members learn them. With NX:
 * a HALYARD JOIN/REMOVE for the same name proposed meanwhile (not applied yet when the gap
 * was seen) wins whichever order the two apply in. */
static void fill_book_gaps(struct hy_node *n, uint64_t now_ms)
{
    if (n->meta->applied < n->meta->internal_index) {
        return; /* what we proposed last is not applied yet */
    }
    const struct raft_membership *cm = raft_membership(&n->meta->raft);
    struct hy_buf buf;
    hy_buf_init(&buf);
    for (uint32_t i = 0; i < cm->count; i++) {
        const struct node_member *m =
            node_member_find(n->members, n->member_count, cm->servers[i].id);
        if (m == NULL || book_find(n, m->name) != NULL || m->peer_port == 0) {
            continue;
        }
        struct store_entry e;
        struct store_arg args[3];
        member_entry(&e, args, m->name, m->host, m->peer_port,
                     cm->servers[i].role == RAFT_VOTER ? STORE_MEMBER_VOTER : STORE_MEMBER_OBSERVER,
                     STORE_F_NX, now_ms);
        hy_buf_reset(&buf);
        store_entry_encode(&e, &buf);
        node_propose_internal(n->meta, &buf);
    }
    hy_buf_free(&buf);
}

static uint32_t config_voters(const struct raft_membership *m)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        v += m->servers[i].role == RAFT_VOTER;
    }
    return v;
}

static const char *const change_names[] = {
    [RAFT_ADD_LEARNER] = "adding as a learner",
    [RAFT_PROMOTE] = "promoting to voter",
    [RAFT_REMOVE] = "removing",
};

/* One group's leader moves its configuration towards the address book (this node's replica
 * of the metadata group's: partitions follow the membership it publishes). */
static int member_up_id(const struct hy_node *n, raft_id id);
static uint32_t voters_left_up(const struct hy_node *n, const struct raft *r, raft_id id,
                               int skip_removed, uint32_t *voters);

static void reconcile_group(struct hy_node *n, struct node_group *g, uint64_t now_ms)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    const struct store_member *book;
    size_t count = store_members(n->meta->store, &book);
    int may_warn = now_ms >= n->member_warned_ms + 10000; /* about every member, now and then */
    for (size_t i = 0; i < count; i++) {
        const struct store_member *sm = &book[i];
        raft_id id = node_member_id(sm->name);
        int in = node_group_has(g, id);
        int voter = raft_membership_is_voter(cm, id);
        uint32_t op;
        if (sm->role == STORE_MEMBER_REMOVED && in) {
            if (voter && config_voters(cm) == 1) {
                continue; /* HALYARD REMOVE refuses this; a stale tombstone cannot force it */
            }
            uint32_t left;
            if (voter && member_up_id(n, id) &&
                voters_left_up(n, &g->raft, id, 0, &left) < left / 2 + 1) {
                /* HALYARD REMOVE checked this when it was asked (removal_loses_quorum), but a
                 * voter down then may be back by now: removed, reachable, while the voters
                 * left have no majority this leader can count on, it would stop every commit
                 * until they have one (campaign seed 4800006646 --partitions 1
                 * --snapshot-bandwidth 512 --snapshot-chunk 512, on 6d896db: n1 removed while
                 * down, back before its removal was made, was taken out with n3 still 5 KB
                 * into a snapshot at 512 B/s, and nothing committed for 10 s). Held, as
                 * reconcile_partition holds it; it goes once they have one. */
                continue;
            }
            op = RAFT_REMOVE;
        } else if (sm->role != STORE_MEMBER_REMOVED && !in) {
            op = RAFT_ADD_LEARNER;
        } else if (sm->role == STORE_MEMBER_VOTER && in && !voter) {
            op = RAFT_PROMOTE;
        } else {
            continue;
        }
        int rc = replica_change(g, op, id, now_ms);
        if (rc == HY_OK) {
            hy_log(n->log, HY_LOG_INFO, "membership of group %u: %s %s (%s:%u)", g->id,
                   change_names[op], sm->name, sm->host, sm->peer_port);
            return;
        }
        if (rc == HY_EBUSY || rc == HY_ENOTLEADER) {
            return; /* one change at a time; the next cron tries again */
        }
        if (!may_warn) {
            continue;
        }
        struct raft_follower f;
        if (rc == HY_EAGAIN && raft_follower_info(&g->raft, id, &f) && !f.answered) {
            /* A learner that never answered stays one (§4.2.1): say why, now and then. */
            n->member_warned_ms = now_ms;
            hy_log(n->log, HY_LOG_WARN,
                   "membership: %s (%s:%u) has never answered; it stays a learner until it "
                   "does (is it running, with this cluster's secret and name? its log says)",
                   sm->name, sm->host, sm->peer_port);
        } else if (rc != HY_EAGAIN) {
            n->member_warned_ms = now_ms; /* EAGAIN: a learner still catching up */
            hy_log(n->log, HY_LOG_WARN, "membership: %s %s refused: %s", change_names[op], sm->name,
                   hy_strerror(rc));
        }
    }
}

/* 1 when this node's replica of the metadata group holds every change committed before the
 * current term's: a leader that committed an entry of its term has them all (Leader
 * Completeness), and a follower whose commit index reached an entry of the current term learned
 * it from that leader after it did. Until then (a node restarted from an older snapshot, a
 * follower still catching up) its address book may be stale, and a partition it leads must not
 * follow it: seed 34009006 --nodes 3 --partitions 4 had a restarted node remove from its
 * partition a member that had been removed and joined again (its snapshot held the removal, not
 * the join) while the partition still counted a removed node, leaving two voters of which one
 * could never answer. */
static int meta_fresh(const struct hy_node *n)
{
    const struct raft *r = &n->meta->raft;
    uint64_t commit = raft_commit_index(r);
    return raft_leader(r) != RAFT_NONE && raft_term_at(r, commit) == raft_term(r) &&
           n->meta->applied >= commit;
}

/* A replica the map asks for was added as a learner: a move starts. Its source is a voter
 * the map no longer lists (the first), if any: the partition may only be gaining one. */
static void note_move_start(struct hy_node *n, struct node_group *g,
                            const struct node_placement *pl, raft_id target, uint64_t now_ms)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    raft_id source = RAFT_NONE;
    for (uint32_t i = 0; i < cm->count && source == RAFT_NONE; i++) {
        if (cm->servers[i].role == RAFT_VOTER && !node_placement_has(pl, cm->servers[i].id)) {
            source = cm->servers[i].id;
        }
    }
    const char *tname = node_member_name(n, target), *sname = node_member_name(n, source);
    node_events_move(n, now_ms, g, 0, tname ? tname : "?",
                     source != RAFT_NONE ? (sname ? sname : "?") : NULL, pl->epoch);
    g->move_target = target;
    g->move_source = source;
}

/* A partition's leader moves its configuration towards the partition map (partmap.c): the
 * map's replicas are voters (added as learners, promoted once caught up), observers of the
 * address book learn every partition, anyone else goes. A voter goes only once every replica
 * the map wants votes, so that the group stays at its replication factor during a move when
 * it can (§4.2.1: add and catch up first); a learner goes at once. One change at a time. */
/* Whether the link to member id is up (this node itself counts as up). */
static int member_up_id(const struct hy_node *n, raft_id id)
{
    if (id == n->meta->raft.cfg.id) {
        return 1;
    }
    for (size_t i = 0; i < n->member_count; i++) {
        if (n->members[i].id == id) {
            return n->member_up[i];
        }
    }
    return 0;
}

/* Whether id is a voter of the address book: a member that stays in the cluster, as a
 * move's source does (not one the operator removed, nor one never added). */
static int member_stays(const struct hy_node *n, raft_id id)
{
    const struct store_member *book;
    size_t n_book = store_members(n->meta->store, &book);
    for (size_t i = 0; i < n_book; i++) {
        if (node_member_id(book[i].name) == id) {
            return book[i].role == STORE_MEMBER_VOTER;
        }
    }
    return 0;
}

/* How many voters of group r's configuration but `id` this node, leading it, can count on to
 * commit now (*voters: how many there are): itself, and each whose link is up and that it is
 * not sending a snapshot. One sent a snapshot can confirm nothing before the whole snapshot has
 * landed, which at rebalance-bandwidth can take many seconds (campaign seed 4300006666
 * --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk 512: n2 removed while n3, the other
 * voter left, was still being sent 3 KB at 512 B/s; the group committed nothing for 6 s).
 * With skip_removed, voters the address book says were removed do not count at all: the
 * configuration this leads to drops them too. */
static uint32_t voters_left_up(const struct hy_node *n, const struct raft *r, raft_id id,
                               int skip_removed, uint32_t *voters)
{
    const struct raft_membership *cm = raft_membership(r);
    uint32_t up = 0;
    *voters = 0;
    for (uint32_t i = 0; i < cm->count; i++) {
        raft_id v = cm->servers[i].id;
        const struct node_member *m = node_member_find(n->members, n->member_count, v);
        if (cm->servers[i].role != RAFT_VOTER || v == id ||
            (skip_removed && m != NULL && m->role == STORE_MEMBER_REMOVED)) {
            continue;
        }
        (*voters)++;
        struct raft_follower f;
        int behind = raft_follower_info(r, v, &f) && f.snapshot;
        up += (uint32_t)(member_up_id(n, v) && !behind);
    }
    return up;
}

/* Whether voter id, which the map no longer lists, may leave the partition's configuration
 * now, given how many of the map's `wanted` replicas vote and how many vote or are down. It
 * goes once every replica the map wants votes, so that the partition stays at its replication
 * factor during a move (§4.2.1: add and catch up first). A wanted replica whose node is down
 * cannot catch up until it is back: it holds back a voter that stays a member, since removing
 * that one would leave the partition a voter short for as long as the target is down (a
 * kill -9 of a fair-share move's target removed the source at once: test_moves.py), but not
 * one that left the address book, which the operator may stop (waiting for the down replica
 * would keep a removed member voting for ever, seed 52003851 --nodes 5 --partitions 8 --rf 3).
 * A target down for good is replaced in the map after replace-after-ms. */
static int voter_may_go(const struct hy_node *n, raft_id id, uint32_t wanted,
                        uint32_t wanted_voting, uint32_t wanted_voting_or_down)
{
    if (wanted_voting >= wanted) {
        return 1;
    }
    return wanted_voting_or_down >= wanted && !member_stays(n, id);
}

/* Whether every replica the map wants that votes here holds the configuration in force (its
 * match index, on this leader, reaches the entry that made it): a voter that stays a member
 * leaves only then. A target promoted while cut off has not got the entry that made it a
 * voter; removing the source then leaves a configuration whose majority needs the target and
 * the third replica, and losing that one for good left the group no leader while the source,
 * its log the longest, was alive and no longer a voter of its own configuration (campaign
 * seed 2255000176 --nodes 5 --partitions 8 --rf 2 --zones 2: partition 0 moved n1 -> n2, n1
 * removed itself while n2 was cut off, then n3 was lost; FORCE-QUORUM on every survivor forced
 * nothing, the operator's recovery never ended). Kept a voter, the source and the target are
 * a majority of three. */
static int wanted_voters_have_config(const struct node_group *g, const struct node_placement *pl)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    for (uint32_t k = 0; k < pl->count; k++) {
        struct raft_follower f;
        if (raft_membership_is_voter(cm, pl->ids[k]) && pl->ids[k] != g->raft.cfg.id &&
            (!raft_follower_info(&g->raft, pl->ids[k], &f) ||
             f.match_index < g->raft.membership_index)) {
            return 0;
        }
    }
    return 1;
}

static void reconcile_partition(struct hy_node *n, struct node_group *g,
                                const struct node_placement *pl, uint64_t now_ms)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    /* The changes the map calls for, in the order they are tried: the first the core takes
     * is made; one it cannot make yet (a learner still catching up, or one that never
     * answers: a lost member the map still lists) does not hold up the others. */
    struct {
        uint32_t op;
        raft_id id;
    } todo[2 * RAFT_SERVERS_MAX + STORE_MEMBERS_MAX];
    size_t count = 0;
    int held = 0; /* a voter's removal waits for the replicas it leaves (below) */
    /* Snapshots to the servers this leader moves off (a move's source, a member the operator
     * removed) wait at the pacer behind those of the replicas the map keeps, and of observers:
     * rebalance-bandwidth goes first where the move's end needs it (raft_snapshot_yield). */
    for (uint32_t i = 0; i < cm->count; i++) {
        const struct node_member *m =
            node_member_find(n->members, n->member_count, cm->servers[i].id);
        int observer = m != NULL && m->role == STORE_MEMBER_OBSERVER;
        raft_snapshot_yield(&g->raft, cm->servers[i].id,
                            !node_placement_has(pl, cm->servers[i].id) && !observer);
    }
    /* Replicas the map wants that vote, and those that vote or cannot come now (their node
     * is down: a lost member the map still lists until the operator removes it). */
    uint32_t wanted_voting = 0, wanted_voting_or_down = 0;
    for (uint32_t k = 0; k < pl->count; k++) {
        int voter = raft_membership_is_voter(cm, pl->ids[k]);
        wanted_voting += voter;
        wanted_voting_or_down += voter || !member_up_id(n, pl->ids[k]);
    }
    for (uint32_t k = 0; k < pl->count; k++) {
        if (!node_group_has(g, pl->ids[k])) {
            todo[count].op = RAFT_ADD_LEARNER;
            todo[count++].id = pl->ids[k];
        }
    }
    const struct store_member *book;
    size_t n_book = store_members(n->meta->store, &book);
    for (size_t i = 0; i < n_book && count < HY_ARRAY_LEN(todo); i++) {
        raft_id id = node_member_id(book[i].name);
        if (book[i].role == STORE_MEMBER_OBSERVER && !node_group_has(g, id) &&
            !node_placement_has(pl, id)) {
            todo[count].op = RAFT_ADD_LEARNER;
            todo[count++].id = id;
        }
    }
    for (uint32_t k = 0; k < pl->count && count < HY_ARRAY_LEN(todo); k++) {
        if (node_group_has(g, pl->ids[k]) && !raft_membership_is_voter(cm, pl->ids[k])) {
            todo[count].op = RAFT_PROMOTE;
            todo[count++].id = pl->ids[k];
        }
    }
    for (uint32_t i = 0; i < cm->count && count < HY_ARRAY_LEN(todo); i++) {
        raft_id id = cm->servers[i].id;
        const struct node_member *m = node_member_find(n->members, n->member_count, id);
        int observer = m != NULL && m->role == STORE_MEMBER_OBSERVER;
        if (node_placement_has(pl, id) || (observer && cm->servers[i].role == RAFT_LEARNER)) {
            continue;
        }
        if (cm->servers[i].role == RAFT_VOTER &&
            !voter_may_go(n, id, pl->count, wanted_voting, wanted_voting_or_down)) {
            continue; /* it votes until every replica the map wants does */
        }
        if (cm->servers[i].role == RAFT_VOTER && member_stays(n, id) &&
            !wanted_voters_have_config(g, pl)) {
            held = 1; /* the move is not over: its last step waits */
            continue; /* and until each of them holds the configuration that made it vote */
        }
        uint32_t left;
        if (cm->servers[i].role == RAFT_VOTER &&
            voters_left_up(n, &g->raft, id, 0, &left) < left / 2 + 1) {
            /* Nor while the voters it leaves have no majority this leader can count on, as
             * HALYARD REMOVE refuses for the metadata group (removal_loses_quorum): the group
             * could not commit even its removal, and would stay without a leader until the
             * lost ones came back. Nor a voter that looks unreachable: its removal cannot
             * commit either, and the group, its configuration now in effect on the leader,
             * waits for the lost ones for good (campaign seed 6700012451 --nodes 5
             * --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --moved: n4,
             * leading partition 6 with n5 and n1, n1 removed by the operator and down,
             * removed n5 while a corrupt frame had closed n5's link; n4 and n1 were left, n4
             * held that entry and n5 could not win its vote: no leader again). Campaign seed
             * 4100010447 --nodes 5 --partitions 8 --rf 3 --rf-change, on d76bce8: partition 4
             * on n2 n4 n5, n2 lost for good; the map, at replication factor 2, kept n2 and n5,
             * and n4, leading, removed itself: n5 alone of n2 n5 never elected anyone, and the
             * operator's removal of the lost members waited for ever. Held, it waits for the
             * map to replace n2 (replace-after-ms). */
            held = 1;
            continue;
        }
        todo[count].op = RAFT_REMOVE;
        todo[count++].id = id;
    }
    for (uint32_t k = 0; k < pl->count && count > 0 && g->move_target == RAFT_NONE; k++) {
        if (!raft_membership_is_voter(cm, pl->ids[k])) {
            /* A move under way that another leader started (this one took over meanwhile):
             * its end is reported here. */
            g->move_target = pl->ids[k];
            for (uint32_t i = 0; i < cm->count && g->move_source == RAFT_NONE; i++) {
                if (cm->servers[i].role == RAFT_VOTER &&
                    !node_placement_has(pl, cm->servers[i].id)) {
                    g->move_source = cm->servers[i].id;
                }
            }
        }
    }
    int reached = g->move_target != RAFT_NONE && node_placement_has(pl, g->move_target);
    if (count == 0 && !held && g->move_target != RAFT_NONE && g->move_done_index == 0 &&
        (!reached || raft_commit_index(&g->raft) >= g->raft.membership_index)) {
        /* Settled: every voter is a replica the map names, and every one of them votes, in a
         * configuration that is committed (the latest one, which the core goes by, may not be
         * yet: a finish reported then could be undone with this leader). A target the map no
         * longer lists was called off (a cancel put the partition back, or a later change sent
         * the move elsewhere): that is no move finished. */
        const char *target = node_member_name(n, g->move_target);
        const char *source = node_member_name(n, g->move_source);
        if (!reached) {
            hy_log(n->log, HY_LOG_INFO,
                   "partition %u (group %u): the move to %s ended without it: the map (epoch "
                   "%llu) no longer lists it",
                   g->id - 1, g->id, target ? target : "?", (unsigned long long)pl->epoch);
        }
        node_events_move(n, now_ms, g, reached ? 1 : 2, target ? target : "?",
                         g->move_source != RAFT_NONE ? (source ? source : "?") : NULL, pl->epoch);
        g->move_target = g->move_source = RAFT_NONE;
    }
    for (size_t k = 0; k < count; k++) {
        int rc = replica_change(g, todo[k].op, todo[k].id, now_ms);
        const char *name = node_member_name(n, todo[k].id);
        if (rc == HY_OK) {
            hy_log(n->log, HY_LOG_INFO, "partition %u (group %u): %s %s (map epoch %llu)",
                   g->id - 1, g->id, change_names[todo[k].op], name ? name : "?",
                   (unsigned long long)pl->epoch);
            if (todo[k].op == RAFT_ADD_LEARNER && node_placement_has(pl, todo[k].id)) {
                note_move_start(n, g, pl, todo[k].id, now_ms);
            } else if (todo[k].op == RAFT_REMOVE && count == 1 && todo[k].id == g->raft.cfg.id &&
                       g->move_target != RAFT_NONE) {
                /* The move's last step removes this leader, which hands over once it commits:
                 * the next leader sees the group settled and knows of no move, so the end is
                 * reported here, once this entry is committed (member_move_done_step). */
                g->move_source = g->raft.cfg.id;
                g->move_done_index = g->raft.membership_index;
                g->move_done_term = raft_term(&g->raft);
                g->move_done_epoch = pl->epoch;
            }
            return;
        }
        if (rc == HY_EBUSY || rc == HY_ENOTLEADER) {
            return; /* one change at a time; the next cron tries again */
        }
        if (rc != HY_EAGAIN && now_ms >= n->member_warned_ms + 10000) {
            n->member_warned_ms = now_ms;
            hy_log(n->log, HY_LOG_WARN, "partition %u: %s %s refused: %s", g->id - 1,
                   change_names[todo[k].op], name ? name : "?", hy_strerror(rc));
        }
    }
}

/* Whether a member of the address book (not removed) is down as this node's links see it. */
static int member_down(const struct hy_node *n)
{
    for (size_t i = 0; i < n->member_count; i++) {
        if (!n->member_up[i] && n->members[i].role != STORE_MEMBER_REMOVED) {
            return 1;
        }
    }
    return 0;
}

/* A move whose last step removed this node as g's leader: MOVE_FINISHED once that entry is
 * committed here (this node learns it as leader before it steps down, or from the next leader
 * as a member still); nothing if another entry took its place (the move is not over: the next
 * leader removes the source itself, and knows of no move to report). */
static void move_done_step(struct hy_node *n, struct node_group *g, uint64_t now_ms)
{
    uint64_t index = g->move_done_index;
    if (index == 0 || raft_commit_index(&g->raft) < index) {
        return;
    }
    if (raft_term_at(&g->raft, index) == g->move_done_term) {
        const char *target = node_member_name(n, g->move_target);
        const char *source = node_member_name(n, g->move_source);
        node_events_move(n, now_ms, g, 1, target ? target : "?", source ? source : "?",
                         g->move_done_epoch);
    } else {
        hy_log(n->log, HY_LOG_INFO,
               "partition %u (group %u): the move's last step (this node's removal at %llu) was "
               "replaced: not reported finished here",
               g->id - 1, g->id, (unsigned long long)index);
    }
    g->move_done_index = 0;
    g->move_target = g->move_source = RAFT_NONE;
}

void member_reconcile(struct hy_node *n, uint64_t now_ms)
{
    partmap_refresh(n);
    if (replica_is_leader(n->meta)) {
        fill_book_gaps(n, now_ms);
    }
    if (!meta_fresh(n)) {
        return; /* neither the map nor the partitions follow a stale address book */
    }
    partmap_publish_domain(n, now_ms);
    partmap_publish_leaving(n, now_ms);
    /* What the map and the partitions' configurations are computed from moves when a group
     * steps, a link goes up or down, or a peer reports a partition settled; and with time only
     * while a member is down (replace-after-ms, the down members' order). Looked at then, not
     * at every tick: with 1,024 partitions the metadata leader's look at them was a quarter
     * of its idle CPU. */
    if (!node_walk_due(n, &n->reconcile_walk, now_ms) && !member_down(n)) {
        return;
    }
    if (replica_is_leader(n->meta)) {
        partmap_maintain(n, now_ms);
    }
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        move_done_step(n, g, now_ms);
        if (!replica_is_leader(g)) {
            continue;
        }
        if (g == n->meta || n->group_count == 1) {
            reconcile_group(n, g, now_ms);
            continue;
        }
        const struct node_placement *pl = partmap_of(n, g);
        if (pl != NULL && pl->count > 0) {
            reconcile_partition(n, g, pl, now_ms); /* none yet: it keeps its replicas */
        }
    }
}

/* ---- HALYARD JOIN / REMOVE / PEERS ------------------------------------------------------- */

int node_route_to_meta_leader(struct cmd_ctx *x)
{
    if (replica_is_leader(x->node->meta)) {
        return 0;
    }
    if (!x->client->is_proxy && proxy_forward(x)) {
        return 1;
    }
    resp_write_error(&x->w, "TRYAGAIN no leader is known to make the change; nothing was "
                            "changed");
    return 1;
}

static void propose_member(struct cmd_ctx *x, const char *name, const char *host, uint16_t port,
                           int role)
{
    struct store_entry e;
    struct store_arg args[3];
    member_entry(&e, args, name, host, port, role, 0, x->now_ms);
    node_propose(x, &e);
}

static int arg_text(const struct resp_arg *a, char *out, size_t cap)
{
    if (a->len == 0 || a->len >= cap || memchr(a->ptr, '\0', a->len) != NULL) {
        return 0;
    }
    memcpy(out, a->ptr, a->len);
    out[a->len] = '\0';
    return 1;
}

/* Members that are, or are about to be, in the configuration. */
static size_t active_members(const struct hy_node *n)
{
    size_t active = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        active += member_in_config(n, m->id) || m->role == STORE_MEMBER_VOTER ||
                  m->role == STORE_MEMBER_OBSERVER;
    }
    return active;
}

/* The role the address book records for `name` (voter or observer), else voter: what a JOIN
 * that names no role asks for, so that a node started with --join and no --role takes the
 * role it was added with (halyctl cluster join NAME@... --observer). */
static int recorded_role(const struct hy_node *n, const char *name)
{
    const struct store_member *sm = book_find(n, name);
    return sm != NULL && sm->role == STORE_MEMBER_OBSERVER ? STORE_MEMBER_OBSERVER
                                                           : STORE_MEMBER_VOTER;
}

/* HALYARD JOIN name host peerport [VOTER|OBSERVER]: without a role, the recorded one. */
void cmd_halyard_join(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (x->argc != 5 && x->argc != 6) {
        node_reply_syntax_error(x);
        return;
    }
    if (node_route_to_meta_leader(x)) {
        return;
    }
    char name[NODE_MEMBER_NAME_MAX + 1], host[NODE_MEMBER_HOST_MAX + 1];
    int64_t port = 0;
    int role = STORE_MEMBER_VOTER;
    if (x->argc == 5 && arg_text(&x->argv[2], name, sizeof(name))) {
        role = recorded_role(n, name);
    } else if (x->argc == 6) {
        role = node_arg_is(&x->argv[5], "VOTER")      ? STORE_MEMBER_VOTER
               : node_arg_is(&x->argv[5], "OBSERVER") ? STORE_MEMBER_OBSERVER
                                                      : 0;
    }
    if (!arg_text(&x->argv[2], name, sizeof(name)) ||
        !wire_name_valid((const uint8_t *)name, strlen(name))) {
        resp_write_error(&x->w, "ERR invalid node name (1-64 printable characters, no spaces)");
    } else if (!arg_text(&x->argv[3], host, sizeof(host)) || strpbrk(host, " \t\r\n,@") != NULL) {
        resp_write_error(&x->w, "ERR invalid host");
    } else if (!hy_parse_i64(x->argv[4].ptr, x->argv[4].len, &port) || port <= 10000 ||
               port > 65535) {
        resp_write_error(&x->w, "ERR invalid peer port (10001..65535: the client port is 10000 "
                                "below it)");
    } else if (role == 0) {
        resp_write_error(&x->w, "ERR the role is VOTER or OBSERVER");
    } else if (n->cfg->cluster_secret[0] == '\0') {
        resp_write_error(&x->w, "ERR this node has no cluster-secret; a cluster needs the same "
                                "secret on every member");
    } else {
        const struct node_member *m = find_name(n->members, n->member_count, name);
        int configured_voter =
            m != NULL && raft_membership_is_voter(raft_membership(&n->meta->raft), m->id);
        if (configured_voter && role == STORE_MEMBER_OBSERVER) {
            resp_write_error(&x->w, "ERR that node is a voter; remove it before it rejoins as "
                                    "an observer");
        } else if ((m == NULL || !member_in_config(n, m->id)) &&
                   active_members(n) +
                           (m == NULL || m->role == STORE_MEMBER_REMOVED || m->role == 0) >
                       RAFT_SERVERS_MAX) {
            resp_write_errorf(&x->w, "ERR a cluster has at most %d members", RAFT_SERVERS_MAX);
        } else {
            propose_member(x, name, host, (uint16_t)port, role);
        }
    }
}

/* Whether removing voter id, reachable, leaves the metadata group's configuration without a
 * majority of voters this node can count on (voters_left_up): `voters` and `up` are those
 * left. The new configuration could not commit even the removal, and the metadata group would
 * stay without a leader until the unreachable ones came back (etcd refuses such a change too:
 * --strict-reconfig-check). Removing an unreachable voter never lowers the reachable share,
 * so it is always allowed: that is how a cluster sheds lost members. */
static int removal_loses_quorum(const struct hy_node *n, raft_id id, uint32_t *voters, uint32_t *up)
{
    const struct raft *r = &n->meta->raft;
    *voters = *up = 0;
    if (!raft_membership_is_voter(raft_membership(r), id) || !member_up_id(n, id)) {
        return 0;
    }
    *up = voters_left_up(n, r, id, 1, voters);
    return *up < *voters / 2 + 1;
}

/* Whether the address book records `name` as removed (its removal may still wait: a voter
 * held in the configuration by reconcile_group). */
static int recorded_removed(const struct hy_node *n, const char *name)
{
    const struct store_member *sm = book_find(n, name);
    return sm != NULL && sm->role == STORE_MEMBER_REMOVED;
}

/* HALYARD REMOVE name */
void cmd_halyard_remove(struct cmd_ctx *x)
{
    uint32_t voters, up;
    struct hy_node *n = x->node;
    if (x->argc != 3) {
        node_reply_syntax_error(x);
        return;
    }
    if (node_route_to_meta_leader(x)) {
        return;
    }
    char name[NODE_MEMBER_NAME_MAX + 1];
    const struct node_member *m = arg_text(&x->argv[2], name, sizeof(name))
                                      ? find_name(n->members, n->member_count, name)
                                      : NULL;
    const struct raft_membership *cm = raft_membership(&n->meta->raft);
    if (m == NULL || (!member_in_config(n, m->id) && m->role != STORE_MEMBER_VOTER &&
                      m->role != STORE_MEMBER_OBSERVER)) {
        resp_write_error(&x->w, "ERR no such member");
    } else if (raft_membership_is_voter(cm, m->id) && config_voters(cm) == 1) {
        resp_write_error(&x->w, "ERR that is the last voter; a cluster cannot remove it");
    } else if (recorded_removed(n, m->name)) {
        /* Asked again while the removal waits (held until the voters left have a majority:
         * reconcile_group): it is recorded, as the first answer said; the quorum check below
         * would deny what is already decided. */
        resp_write_ok(&x->w);
    } else if (removal_loses_quorum(n, m->id, &voters, &up)) {
        resp_write_errorf(&x->w,
                          "ERR removing %s would leave the metadata group %u voters of which "
                          "only %u are reachable and not waiting for a snapshot, no majority; "
                          "nothing was changed: remove the unreachable members first, or bring "
                          "them back, or retry once the snapshot has landed",
                          m->name, voters, up);
    } else {
        propose_member(x, m->name, m->host, m->peer_port, STORE_MEMBER_REMOVED);
    }
}

/* Whether g's leader is alive as this node knows it: heard within an election timeout, or
 * (a quiesced follower hears nothing) its node's link is up. A follower keeps the name of a
 * leader that died: the name alone says nothing. */
static int leader_heard(const struct hy_node *n, const struct node_group *g, uint64_t now_ms)
{
    raft_id leader = raft_leader(&g->raft);
    if (leader == RAFT_NONE) {
        return 0;
    }
    uint64_t contact = raft_leader_contact_ms(&g->raft);
    if (contact == UINT64_MAX) {
        for (size_t i = 0; i < n->member_count; i++) {
            if (n->members[i].id == leader) {
                return n->member_up[i];
            }
        }
        return 0;
    }
    return contact <= now_ms && now_ms - contact < (uint64_t)n->cfg->election_timeout_ms;
}

/* Whether this node has gone without a leader of g long enough to say g has none: its
 * election timer ran out (it campaigns), or, for a learner (which never campaigns), it has
 * heard no leader for an election timeout since it started. A node just restarted has not yet
 * heard the leader that is still there (seed 472 --nodes 5 --partitions 8 --rf 3: forced 43 ms
 * after its restart, it took the metadata group from a leader of a working majority). */
static int force_may_judge(const struct hy_node *n, const struct node_group *g, uint64_t now_ms)
{
    if (leader_heard(n, g, now_ms)) {
        return 0;
    }
    uint64_t contact = raft_leader_contact_ms(&g->raft);
    if (raft_role(&g->raft) != RAFT_FOLLOWER || contact == UINT64_MAX) {
        return 1; /* it campaigns, or a quiesced follower whose leader's link is down */
    }
    uint64_t since = HY_MAX(contact, n->start_ms);
    return now_ms >= since + (uint64_t)n->cfg->election_timeout_ms;
}

/* The start of HALYARD DOMAIN and LEAVING, each a key per member in the metadata group (only
 * with partitions: with one, that keyspace is the users'): the argument count, the partitions,
 * the way to the metadata leader, and argv[2] naming a member (into name). 0: answered. */
static int member_key_command(struct cmd_ctx *x, size_t argc, const char *only_partitioned,
                              char name[NODE_MEMBER_NAME_MAX + 1])
{
    struct hy_node *n = x->node;
    if (x->argc != argc) {
        node_reply_syntax_error(x);
        return 0;
    }
    if (n->group_count == 1) {
        resp_write_error(&x->w, only_partitioned);
        return 0;
    }
    if (node_route_to_meta_leader(x)) {
        return 0;
    }
    if (!arg_text(&x->argv[2], name, NODE_MEMBER_NAME_MAX + 1) ||
        find_name(n->members, n->member_count, name) == NULL) {
        resp_write_error(&x->w, "ERR no such member");
        return 0;
    }
    return 1;
}

/* Proposes "<prefix><name>" = value in the metadata group. */
static void member_key_set(struct cmd_ctx *x, const char *prefix, const char *name,
                           const uint8_t *value, size_t vlen)
{
    char key[32 + NODE_MEMBER_NAME_MAX];
    int klen = snprintf(key, sizeof(key), "%s%s", prefix, name);
    struct store_arg args[2] = {{(const uint8_t *)key, (size_t)klen}, {value, vlen}};
    struct store_entry e = {
        .op = STORE_OP_SET, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = 2, .argv = args};
    node_propose(x, &e);
}

/* HALYARD DOMAIN name zone rack: a member's failure domains, as the metadata group keeps them
 * for placement (partmap.c); each node sends its own. Either may be empty (none). */
void cmd_halyard_domain(struct cmd_ctx *x)
{
    char name[NODE_MEMBER_NAME_MAX + 1], zone[NODE_DOMAIN_NAME_MAX + 1],
        rack[NODE_DOMAIN_NAME_MAX + 1];
    if (!member_key_command(x, 5,
                            "ERR zones are kept only in a partitioned cluster (partitions > 1): "
                            "with one partition every member holds every key",
                            name)) {
        return;
    }
    if (x->argv[3].len > NODE_DOMAIN_NAME_MAX || x->argv[4].len > NODE_DOMAIN_NAME_MAX) {
        resp_write_error(&x->w, "ERR invalid zone or rack");
        return;
    }
    memcpy(zone, x->argv[3].ptr, x->argv[3].len);
    zone[x->argv[3].len] = '\0';
    memcpy(rack, x->argv[4].ptr, x->argv[4].len);
    rack[x->argv[4].len] = '\0';
    if (strlen(zone) != x->argv[3].len || strlen(rack) != x->argv[4].len ||
        !config_domain_name_ok(zone) || !config_domain_name_ok(rack)) {
        resp_write_error(&x->w, "ERR invalid zone or rack");
        return;
    }
    char value[2 * NODE_DOMAIN_NAME_MAX + 2];
    int vlen = snprintf(value, sizeof(value), "%s %s", zone, rack);
    member_key_set(x, "halyard:zone:", name, (const uint8_t *)value, (size_t)vlen);
}

/* HALYARD LEAVING name 0|1: member `name` leaves (1: placement moves its replicas off when
 * the other members are enough for the replication factor) or stays (0). Each node sends its
 * own: set by HALYARD DRAIN, cleared once it runs again (partmap.c). */
void cmd_halyard_leaving(struct cmd_ctx *x)
{
    char name[NODE_MEMBER_NAME_MAX + 1];
    if (!member_key_command(x, 4,
                            "ERR replicas move only in a partitioned cluster (partitions > 1): "
                            "with one partition every member holds every key",
                            name)) {
        return;
    }
    if (x->argv[3].len != 1 || (x->argv[3].ptr[0] != '0' && x->argv[3].ptr[0] != '1')) {
        resp_write_error(&x->w, "ERR the leaving mark is 0 or 1");
        return;
    }
    member_key_set(x, "halyard:leaving:", name, x->argv[3].ptr, 1);
}

/* HALYARD REBALANCE PAUSE|RESUME|CANCEL|STATE: fair-share rebalancing (partmap.c) paused or
 * running for the whole cluster, kept in the metadata group ("halyard:rebalance"), so that it
 * holds across metadata leader changes; STATE reads this node's committed copy. PAUSE lets a
 * move under way finish; no new one starts while paused. CANCEL writes "cancel": the
 * metadata leader then puts every partition whose move has not finished back on the replicas
 * it started from and writes "paused", in one entry (a new metadata leader finds a cancel
 * not carried out and carries it out). STATE says "paused" for a cancel not carried out yet:
 * no move starts either way. Only with partitions. */
void cmd_halyard_rebalance(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (x->argc != 3) {
        node_reply_syntax_error(x);
        return;
    }
    if (n->group_count == 1) {
        resp_write_error(&x->w, "ERR rebalancing moves partitions: there is one (partitions 1)");
        return;
    }
    const struct resp_arg *sub = &x->argv[2];
    if (node_arg_is(sub, "STATE")) {
        resp_write_simple(&x->w, partmap_rebalance_paused(n) ? "paused" : "running");
        return;
    }
    if (!node_arg_is(sub, "PAUSE") && !node_arg_is(sub, "RESUME") && !node_arg_is(sub, "CANCEL")) {
        resp_write_error(&x->w, "ERR HALYARD REBALANCE PAUSE|RESUME|CANCEL|STATE");
        return;
    }
    if (node_route_to_meta_leader(x)) {
        return;
    }
    const char *value = node_arg_is(sub, "PAUSE")    ? "paused"
                        : node_arg_is(sub, "CANCEL") ? "cancel"
                                                     : "running";
    struct store_arg args[2] = {
        {(const uint8_t *)PARTMAP_REBALANCE_KEY, strlen(PARTMAP_REBALANCE_KEY)},
        {(const uint8_t *)value, strlen(value)}};
    struct store_entry e = {
        .op = STORE_OP_SET, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = 2, .argv = args};
    if (node_arg_is(sub, "CANCEL")) {
        /* The answer is how many moves the cancel puts back, counted here on the metadata
         * leader as its next map change will carry it out (a move that finishes in between is
         * not cancelled, nor counted by the log line that change writes). */
        node_propose_answer_integer(x, &e, (long long)partmap_cancellable(n));
        return;
    }
    node_propose(x, &e);
}

/* HALYARD REPLICATION-FACTOR [N]: the replication factor the metadata leader places
 * partitions with; with N (1..7), changes it for the whole cluster at run time (kept in the
 * metadata group, "halyard:replication-factor"): each partition then gains or loses
 * replicas, one Raft change at a time (partmap.c). Only with partitions. */
void cmd_halyard_replication_factor(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (x->argc != 2 && x->argc != 3) {
        node_reply_syntax_error(x);
        return;
    }
    if (n->group_count == 1) {
        resp_write_error(&x->w, "ERR with one partition every member holds every key: the "
                                "replication factor is the member count");
        return;
    }
    if (x->argc == 2) {
        resp_write_int(&x->w, (int64_t)partmap_replication_factor(n));
        return;
    }
    int64_t rf;
    if (!node_arg_i64(x, 2, &rf)) {
        return;
    }
    if (rf < 1 || rf > NODE_RF_MAX) {
        resp_write_errorf(&x->w, "ERR the replication factor is 1 to %d", NODE_RF_MAX);
        return;
    }
    if (node_route_to_meta_leader(x)) {
        return;
    }
    char value[8];
    int vlen = snprintf(value, sizeof(value), "%lld", (long long)rf);
    struct store_arg args[2] = {{(const uint8_t *)PARTMAP_RF_KEY, strlen(PARTMAP_RF_KEY)},
                                {(const uint8_t *)value, (size_t)vlen}};
    struct store_entry e = {
        .op = STORE_OP_SET, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = 2, .argv = args};
    node_propose(x, &e);
}

/* Whether FORCE-QUORUM may force this node's copy of g: a replica the map names and this node
 * holds (its Raft view), or the source of a move under way (the metadata group's record of
 * moves says it started here) that is still a voter of its own configuration. The map names
 * a move's target from the move's first step; when the leader the move kept was lost before
 * the move could go on, the source held the partition's only live copy and, skipped as a copy
 * the map does not name, stayed leaderless for good (simulator seeds 73000035 and 75001993
 * --nodes 5 --partitions 8 --rf 2 --zones 2). A copy of one the node was removed from by a
 * finished move is not a voter of its own configuration when it took part in the removal,
 * and the record goes once the move settles. Such a source is left alone while another voter
 * of its configuration that the map names is up: that replica holds a copy as well and is the
 * one to force (the operator asks every survivor). Forcing both made two histories: n5, the
 * map's replica, was forced and removed n2, the move's source, which then, asked a second
 * later and no longer hearing the group, forced it again and replaced entries n5 had
 * committed (simulator seed 950000197 --nodes 5 --partitions 8 --rf 3 --replace-after 1500).
 * Likewise a replica the map names only as the target of a move under way is left alone while
 * a member the move started from is up: the group may have removed this copy before (n2 was
 * replaced while down, parked its copy, and was named again once the two other members were
 * lost; forced, its copy from before the removal replaced entries n4, the survivor of the
 * group's real configuration, had committed: simulator seed 995300138 --nodes 5 --partitions 8
 * --rf 3 --replace-after 1500). The survivor is forced, and adds the target afresh. */
/* Whether this node is no voter of its own copy of g while a voter of that configuration is
 * up that the map places the partition on, or that a move under way started from (its source,
 * still holding its copy): that voter holds the group's history and is the one to force. The
 * learner of a move forced as well made a second history in the same forced term: n1, the
 * move's source and a voter, was forced and did not name n2, the learner the move was adding
 * (the leader's entry adding n2 had not reached n1); n2, asked a second later and hearing no
 * leader, forced its own copy (campaign seed 2807000521 --nodes 5 --partitions 8 --rf 3
 * --replace-after 1500: two leaders of term 2^20 + 2). Forced, the source's leader goes on
 * with the move and adds the learner afresh. A voter defers to no learner, so one of them
 * always goes ahead. */
static raft_id force_learner_with_voter_up(const struct hy_node *n, const struct node_group *g)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    if (raft_membership_is_voter(cm, g->raft.cfg.id)) {
        return RAFT_NONE;
    }
    const struct node_placement *pl = partmap_of(n, g);
    for (uint32_t i = 0; i < cm->count; i++) {
        raft_id id = cm->servers[i].id;
        const struct node_member *m = node_member_find(n->members, n->member_count, id);
        if (id != g->raft.cfg.id && cm->servers[i].role == RAFT_VOTER && m != NULL &&
            n->member_up[m - n->members] &&
            (pl == NULL || node_placement_has(pl, id) || partmap_move_from(n, g, id))) {
            return id;
        }
    }
    return RAFT_NONE;
}

/* For an observer's copy of partition g (a learner of its configuration; the map places no
 * partition on an observer): a member that is up and is a voter of that configuration or a
 * replica the map names, which holds the group's history (or a later configuration than
 * this copy's) and is the one to force; RAFT_NONE when none is, or this node is no observer
 * learning g. With every voter lost the observer's copy is the only one left, and skipped as
 * a copy the map does not name it stayed leaderless for good: the operator, told the lost
 * members could be removed, waited for them to leave partitions nobody led (campaign seed
 * 3701001172 --partitions 0: n3, re-added as an observer, survived n1 and n2). */
static raft_id observer_copy_holder_up(const struct hy_node *n, const struct node_group *g,
                                       int *orphaned)
{
    raft_id self = g->raft.cfg.id;
    const struct node_member *me = node_member_find(n->members, n->member_count, self);
    const struct raft_membership *cm = raft_membership(&g->raft);
    *orphaned = 0;
    if (g == n->meta || me == NULL || me->role != STORE_MEMBER_OBSERVER ||
        raft_membership_is_voter(cm, self) || !node_group_has(g, self)) {
        return RAFT_NONE;
    }
    for (uint32_t i = 0; i < cm->count; i++) {
        raft_id id = cm->servers[i].id;
        if (id != self && cm->servers[i].role == RAFT_VOTER && member_up_id(n, id)) {
            return id;
        }
    }
    const struct node_placement *pl = partmap_of(n, g);
    for (uint32_t k = 0; pl != NULL && k < pl->count; k++) {
        if (pl->ids[k] != self && member_up_id(n, pl->ids[k])) {
            return pl->ids[k];
        }
    }
    *orphaned = 1;
    return RAFT_NONE;
}

/* Whether this node forces its copy of g; when it leaves g to a voter that is up, that voter
 * in *defer_to (else RAFT_NONE): the answer names it, so that the operator runs it there. */
static int force_candidate(const struct hy_node *n, const struct node_group *g, raft_id *defer_to)
{
    *defer_to = RAFT_NONE;
    if (node_group_raft_view(g)) {
        if (partmap_move_target_with_origin_up(n, g)) {
            return 0;
        }
        *defer_to = force_learner_with_voter_up(n, g);
        return *defer_to == RAFT_NONE;
    }
    int orphaned;
    *defer_to = observer_copy_holder_up(n, g, &orphaned);
    if (*defer_to != RAFT_NONE || orphaned) {
        return orphaned;
    }
    const struct raft_membership *cm = raft_membership(&g->raft);
    if (g == n->meta || !raft_membership_is_voter(cm, g->raft.cfg.id) ||
        !partmap_move_from_here(n, g)) {
        return 0;
    }
    const struct node_placement *pl = partmap_of(n, g);
    for (uint32_t i = 0; i < cm->count && pl != NULL; i++) {
        raft_id id = cm->servers[i].id;
        const struct node_member *m = node_member_find(n->members, n->member_count, id);
        if (id != g->raft.cfg.id && cm->servers[i].role == RAFT_VOTER &&
            node_placement_has(pl, id) && m != NULL && n->member_up[m - n->members]) {
            return 0;
        }
    }
    return 1;
}

/* Whether g's replica here refused a leader's entries that conflict with entries it committed:
 * a quorum was forced on another survivor that lacked them, and that survivor's history is the
 * group's now. Forcing this copy as well makes two committed histories of one group (simulator
 * seeds 2262000072 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 and 2260000044
 * --early-join: asked after it had refused n4's (n2's) forced entries, n3 forced the group from
 * its own log once that leader was cut off). Such a copy is removed and added back afresh
 * (docs/operations.md). The refusal is known until this process exits: restarted, the node
 * learns it again from the forced leader's first append. */
static int force_refused_elsewhere(const struct node_group *g)
{
    return g->raft.stat_conflicts_refused > 0;
}

/* The answers of its voters FORCE-QUORUM goes by for g (replica_holder): those heard within
 * three election timeouts (HY.LEADERS is asked every one), and, while a request waits, any since
 * it was made. */
static uint64_t force_since(const struct hy_node *n, const struct node_group *g, uint64_t now_ms)
{
    uint64_t span = 3 * (uint64_t)n->cfg->election_timeout_ms;
    uint64_t since = now_ms > span ? now_ms - span : 1;
    if (g->force_pending && g->force_asked_ms != 0 && g->force_asked_ms < since) {
        since = g->force_asked_ms;
    }
    return since;
}

/* g's voters, as FORCE-QUORUM counts them: all; reachable (this node, and the others up); and
 * unknown, up but not counted until they answer whether they still hold a copy.
 *
 * A replica the map names: a voter of its configuration that the map no longer places the
 * partition on is counted only if it said lately (its HY.LEADERS answer) that it still holds a
 * copy as a voter. A copy moved away for good may be gone (parked, then dropped), and an empty
 * replica votes for nobody: this replica had missed the move (crashed before its entries came),
 * so its configuration still named the source; with the move's two other replicas lost for good
 * the partition never led again, and FORCE-QUORUM answered "a majority still looks reachable"
 * for ever (simulator seed 2547000105 --nodes 5 --partitions 8 --rf 3 --replace-after 1500
 * --parked-keep 500). But a source that still holds its copy makes a leader with the others:
 * not counted, n4 forced group 7 while n1, the move's source that n4's map no longer named, led
 * it with n2 and had committed entry 10 that n4 lacked (campaign seed 6500001439 --nodes 5
 * --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500 --moved: n1's last answer came
 * before a network partition, 1.1 s earlier). One that has not answered lately is unknown:
 * FORCE-QUORUM asks it and waits (force_unknown_matters). A move's source judges by its
 * configuration alone. */
struct force_count {
    uint32_t voters, reachable, unknown;
};

static struct force_count force_count(const struct hy_node *n, const struct node_group *g,
                                      uint64_t now_ms)
{
    raft_id self = g->raft.cfg.id;
    const struct raft_membership *cm = raft_membership(&g->raft);
    const struct node_placement *pl = node_group_raft_view(g) ? partmap_of(n, g) : NULL;
    uint64_t since = force_since(n, g, now_ms);
    struct force_count c = {0, 0, 0};
    for (uint32_t i = 0; i < cm->count; i++) {
        if (cm->servers[i].role != RAFT_VOTER) {
            continue;
        }
        raft_id id = cm->servers[i].id;
        const struct node_member *m = node_member_find(n->members, n->member_count, id);
        c.voters++;
        if (id == self) {
            c.reachable++;
        } else if (m != NULL && n->member_up[m - n->members]) {
            int holds = pl == NULL || node_placement_has(pl, id) ? 1 : replica_holder(g, id, since);
            c.reachable += holds == 1;
            c.unknown += holds == -1;
        }
    }
    return c;
}

/* Whether a majority of g's voters is reachable, and (force_left_alone) whether g also or
 * instead has a leader this node can reach, as FORCE-QUORUM judges them (force_count). */
static int force_majority_reachable(const struct hy_node *n, const struct node_group *g,
                                    uint64_t now_ms)
{
    struct force_count c = force_count(n, g, now_ms);
    return c.reachable >= c.voters / 2 + 1;
}

/* Whether g's majority hangs on voters not yet known to hold a copy: they are asked (at most
 * once an election timeout) and the group waits for their answers. */
static int force_unknown_matters(struct hy_node *n, struct node_group *g, uint64_t now_ms)
{
    struct force_count c = force_count(n, g, now_ms);
    if (c.reachable >= c.voters / 2 + 1 || c.reachable + c.unknown < c.voters / 2 + 1) {
        return 0;
    }
    if (now_ms >= g->force_probe_ms) {
        g->force_probe_ms = now_ms + (uint64_t)n->cfg->election_timeout_ms;
        const struct raft_membership *cm = raft_membership(&g->raft);
        uint64_t since = force_since(n, g, now_ms);
        for (uint32_t i = 0; i < cm->count; i++) {
            const struct node_member *m =
                node_member_find(n->members, n->member_count, cm->servers[i].id);
            if (m != NULL && m->id != g->raft.cfg.id && n->member_up[m - n->members] &&
                m->peer_port != 0 && replica_holder(g, m->id, since) == -1) {
                proxy_probe(n, m, NODE_PROBE_LEADERS, now_ms);
            }
        }
    }
    return 1;
}

static int force_left_alone(const struct hy_node *n, const struct node_group *g, uint64_t now_ms)
{
    if (node_group_raft_view(g)) {
        return proxy_target(g) != NULL || force_majority_reachable(n, g, now_ms);
    }
    raft_id self = g->raft.cfg.id;
    const struct node_member *leader = replica_raft_leader_member(g);
    int leader_up = leader != NULL && leader->id != self && n->member_up[leader - n->members];
    return leader_up || force_majority_reachable(n, g, now_ms);
}

/* Whether this node's partition map is one the metadata group's leader gave it since the node
 * started (heard that leader since, and applied what it learned committed), or its own as
 * that leader. A node just restarted judges by the map its log held at the crash, which may
 * still name it for partitions moved off it meanwhile: forced, it took partitions 2, 3 and 5
 * from stale copies (applied 0 of its metadata log) and made a second history beside the
 * groups' real replicas (campaign seed 1857000603 --nodes 5 --partitions 8 --rf 3
 * --replace-after 1500). While the metadata group has a reachable majority, FORCE-QUORUM
 * waits for that; without one, the metadata group is itself forced from here and this map
 * is the best there is. */
static int meta_map_current(const struct hy_node *n)
{
    const struct node_group *m = n->meta;
    if (replica_is_leader(m)) {
        return m->applied >= m->raft.term_start_index;
    }
    /* A quiesced follower (UINT64_MAX) was quiesced by a leader it heard: a node starts awake. */
    uint64_t contact = raft_leader_contact_ms(&m->raft);
    int heard = contact == UINT64_MAX ? raft_leader(&m->raft) != RAFT_NONE : contact >= n->start_ms;
    return heard && m->applied >= raft_commit_index(&m->raft);
}

/* Leaves g to member_force_step, which forces it unless a leader is heard first (and, where its
 * majority hangs on voters not yet known to hold a copy, unless they say they do). */
static void force_defer(struct node_group *g, uint64_t now_ms, const char *why)
{
    g->force_pending = NODE_FORCE_UNLESS_LEADER_HEARD;
    g->force_asked_ms = now_ms;
    g->force_term = raft_term(&g->raft);
    hy_log(g->node->log, HY_LOG_WARN, "FORCE-QUORUM: group %u %s", g->id, why);
}

/* HALYARD FORCE-QUORUM CONFIRM-DATA-LOSS: unsafe recovery when a majority is lost for good
 * (raft.h, RAFT_EV_FORCE). This node becomes the only voter; the reconciler then promotes the
 * members that catch up from it. */
void cmd_halyard_force_quorum(struct cmd_ctx *x)
{
    if (x->argc != 3 || !node_arg_is(&x->argv[2], "CONFIRM-DATA-LOSS")) {
        resp_write_error(&x->w, "ERR this may lose acknowledged writes; to go ahead, run "
                                "HALYARD FORCE-QUORUM CONFIRM-DATA-LOSS on the member with the "
                                "longest log");
        return;
    }
    struct hy_node *n = x->node;
    if (n->disk_full) {
        /* The forced term and configuration could not be written: the node would lead on
         * them until it restarts, then be back where it was (seed 34019043 --nodes 5
         * --partitions 8), and the operator would have been told it worked. */
        resp_write_error(&x->w, "ERR disk full: the forced configuration cannot be written; "
                                "free space on this member and run it again");
        return;
    }
    if (n->group_count > 1 && !meta_map_current(n) &&
        force_majority_reachable(n, n->meta, x->now_ms)) {
        resp_write_error(&x->w, "TRYAGAIN this node's partition map is not current: it has not "
                                "heard the metadata group's leader since it started (whose "
                                "majority is reachable); nothing was forced, run it again once "
                                "it has");
        return;
    }
    /* Every group this node holds a replica of (the metadata group first). With a
     * replication factor below the member count, a partition whose replicas are all lost
     * cannot be forced from here: it has no copy here. */
    size_t forced = 0, deferred = 0, unled = 0, refused = 0, left_to_voter = 0;
    raft_id voter_up = RAFT_NONE;
    int rc = HY_EEXIST;
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        raft_id to;
        if (!force_candidate(n, g, &to)) {
            /* A partition with no replica here (partmap.c), or a stale copy of one this node
             * was removed from: forced on one of its own replicas. A learner's copy: on the
             * voter up that holds the group's history. */
            left_to_voter += to != RAFT_NONE;
            voter_up = voter_up == RAFT_NONE ? to : voter_up;
            continue;
        }
        if (force_refused_elsewhere(g)) {
            refused++;
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: group %u is not forced: this replica refused entries of a "
                   "leader forced elsewhere that conflict with entries it committed; remove "
                   "this member and add it back afresh",
                   g->id);
            continue;
        }
        if (n->group_count > 1 && !replica_is_leader(g) && force_left_alone(n, g, x->now_ms) &&
            (force_majority_reachable(n, g, x->now_ms) || force_may_judge(n, g, x->now_ms))) {
            /* With partitions placed on fewer than all members, each group (the metadata
             * group too) keeps or loses its majority on its own: one that has a reachable
             * leader (forced on another survivor already, or never without one) or a
             * reachable majority is left alone. With partitions, not only once the map is
             * applied here: a node just restarted has none until its metadata replica hears
             * a leader, and took every group for forceable (seed 73000035 --nodes 5
             * --partitions 8 --rf 2 --zones 2: it forced the metadata group from a reachable
             * majority electing its next leader). A leader heard less than an election
             * timeout ago without a reachable majority is no reason on its own: it may have
             * stepped down already (check-quorum) and this node not have noticed yet. Such a
             * group is deferred below, forced unless a leader speaks meanwhile; left alone,
             * it stayed leaderless for good when the move's source, the only other survivor
             * holding it, left it to this replica of the map's (simulator seed 1463000086
             * --nodes 5 --partitions 16 --rf 3). */
            /* Counted when no leader spoke for an election timeout: its majority only looks
             * reachable (links of members just lost stay up until they are found dead), and
             * "nothing to force" made the operator move on for good (simulator seed
             * 2254000116 --nodes 5 --partitions 8 --rf 3: asked 0.5 s after two members were
             * lost, its partition stayed leaderless). */
            unled += force_may_judge(n, g, x->now_ms) != 0;
            continue;
        }
        if (n->group_count > 1 && !replica_is_leader(g) && force_unknown_matters(n, g, x->now_ms)) {
            /* Asked now (force_unknown_matters): member_force_step forces it once they
             * answer that they hold no copy, unless a leader speaks first; it is left alone
             * if they answer that they do, and while they do not answer. */
            force_defer(g, x->now_ms,
                        "waits for voters the partition map moved it from to say whether they "
                        "still hold a copy: forced unless they do");
            deferred++;
            continue;
        }
        if (!replica_is_leader(g) && !force_may_judge(n, g, x->now_ms)) {
            force_defer(g, x->now_ms,
                        "is forced in an election timeout unless its leader is heard meanwhile");
            deferred++;
            continue;
        }
        uint64_t last = raft_last_index(&g->raft);
        int grc = replica_force(g, x->now_ms);
        /* Only a group led here without a reachable majority waits to be forced: one whose
         * majority answers is left alone, as a follower's is above. Marked all the same, it
         * was forced once another group's force armed the watch and this node, cut off a
         * moment later, saw it step down: taken from the majority that had elected another
         * leader meanwhile (seed 75004646 --nodes 5 --partitions 8 --rf 2 --zones 2: the
         * metadata group's committed entry 19 replaced). */
        int no_majority = !force_majority_reachable(n, g, x->now_ms);
        g->force_pending = grc == HY_EEXIST && no_majority ? NODE_FORCE_WHEN_STEPPED_DOWN : 0;
        g->force_asked_ms = x->now_ms;
        g->force_term = raft_term(&g->raft);
        if (grc == HY_OK) {
            forced++;
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: this node is now the only voter of group %u, from its log "
                   "ending at %llu",
                   g->id, (unsigned long long)last);
        } else if (grc == HY_EEXIST && no_majority) {
            /* It still leads, without a reachable majority (its leadership lasts until
             * check-quorum steps it down): forced once it has. Counted, so that the watch
             * below runs even when no other group was forced (seed 73000035 --nodes 5
             * --partitions 8 --rf 2 --zones 2: answered "nothing to force", its groups
             * stayed leaderless for good). */
            deferred++;
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: group %u still led here without a reachable majority: forced "
                   "once this node steps down",
                   g->id);
        } else if (grc != HY_EEXIST) {
            rc = grc;
        }
    }
    if (forced > 0 || deferred > 0) {
        rc = HY_OK;
        /* A group this node still led (its leadership lasts up to an election timeout after
         * the majority went) refused: forced as soon as it steps down. */
        n->force_until_ms = x->now_ms + 10 * (uint64_t)n->cfg->election_timeout_ms;
    }
    if (rc == HY_EEXIST && refused > 0 && unled == 0) {
        resp_write_errorf(&x->w,
                          "ERR %zu group(s) here refused the entries of a leader forced on "
                          "another survivor (they conflict with entries this node committed): "
                          "not forced; remove this member and add it back afresh",
                          refused);
    } else if (rc == HY_EEXIST && unled > 0) {
        resp_write_errorf(&x->w,
                          "TRYAGAIN %zu group(s) here have no leader but a majority of their "
                          "voters still looks reachable (their links are up): nothing was "
                          "forced; run it again once the lost members are seen down "
                          "(halyctl cluster status)",
                          unled);
    } else if (rc == HY_EEXIST && left_to_voter > 0) {
        /* An observer (a learner of every group) asked while a voter survived: "nothing to
         * force" sent the operator back to it for good (campaign seed 3201000759 --partitions
         * 1 --moved: n1, an observer with the longest log, chosen; n5, the voter left, never
         * asked). */
        const char *name = node_member_name(n, voter_up);
        resp_write_errorf(&x->w,
                          "TRYAGAIN %zu group(s) here are only a learner's copy while %s, a "
                          "voter of them, is up and holds their history: nothing was forced "
                          "here; run FORCE-QUORUM on %s",
                          left_to_voter, name ? name : "?", name ? name : "?");
    } else if (rc == HY_EEXIST) {
        /* Not "this node leads": a move's source, or any follower, answers it too. */
        resp_write_error(&x->w, "ERR every group here has a working majority (a leader heard, "
                                "or a majority of its voters reachable); nothing to force");
    } else if (rc != HY_OK) {
        resp_write_errorf(&x->w, "ERR cannot force: %s", hy_strerror(rc));
    } else if (forced == 0) {
        resp_write_simple(&x->w, "OK this node has not heard its groups' leaders for an "
                                 "election timeout yet: it becomes their only voter then if "
                                 "none shows up; members that catch up are promoted again, "
                                 "remove the lost ones");
    } else {
        resp_write_simple(&x->w, "OK this node is the only voter now; members that catch up "
                                 "are promoted again, remove the lost ones");
    }
}

void member_force_step(struct hy_node *n, uint64_t now_ms)
{
    if (now_ms >= n->force_until_ms) {
        for (size_t i = 0; i < n->group_count; i++) {
            n->groups[i]->force_pending = 0; /* it kept a working majority after all */
        }
        return;
    }
    /* Only the groups FORCE-QUORUM found still led here: one forced already is never forced
     * again (that would drop the members re-added since). */
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (g->force_pending == NODE_FORCE_UNLESS_LEADER_HEARD && replica_is_leader(g)) {
            /* Elected here since it was asked: a leader spoke, this node, with a majority of
             * its configuration behind it. Still pending, the group was forced once this node
             * stepped down, over what a majority elected meanwhile had committed (simulator
             * seed 2300000514: forced, drained, restarted and asked again, it led again, the
             * lost members were re-added, and cut off 3 s later it forced the group a second
             * time: two histories). */
            g->force_pending = 0;
            continue;
        }
        if (g->force_pending == NODE_FORCE_WHEN_STEPPED_DOWN && replica_is_leader(g) &&
            now_ms >= g->force_asked_ms + 2 * (uint64_t)n->cfg->election_timeout_ms) {
            /* Still leading well past check-quorum's window: a majority answers it that this
             * node's links do not show (they flap). Forced once it stepped down (cut off), it
             * would replace what that majority commits under the next leader (campaign seed
             * 3507000018, test_force_quorum_drops_a_deferred_group_whose_leader_outlives_
             * check_quorum). */
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: group %u is not forced: it still leads with a majority", g->id);
            g->force_pending = 0;
            continue;
        }
        if (!g->force_pending || replica_is_leader(g)) {
            continue;
        }
        if (force_refused_elsewhere(g)) {
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: group %u is not forced: a leader forced elsewhere sent "
                   "entries that conflict with entries this replica committed",
                   g->id);
            g->force_pending = 0;
            continue;
        }
        uint64_t contact = raft_leader_contact_ms(&g->raft);
        int was_leader = g->force_pending == NODE_FORCE_WHEN_STEPPED_DOWN;
        if (raft_leader(&g->raft) != RAFT_NONE &&
            (was_leader || (contact != UINT64_MAX && contact > g->force_asked_ms))) {
            if (!was_leader && raft_term(&g->raft) == g->force_term &&
                !force_majority_reachable(n, g, now_ms) &&
                contact < g->force_asked_ms + 2 * (uint64_t)n->cfg->election_timeout_ms) {
                /* The leader this node named when asked, in the same term, and still without
                 * a majority this node can reach: it goes on sending heartbeats until
                 * check-quorum steps it down, within an election timeout. Those are no sign
                 * of a working majority; taken for one, the group was left alone for good
                 * (simulator seed 1463000086 --nodes 5 --partitions 16 --rf 3, and
                 * test_force_quorum_defers_a_group_whose_leader_lost_its_majority). Heard
                 * past twice that, the leader has a majority this node does not see (its
                 * links to the others down): it is a working leader, and forcing the group
                 * once its heartbeats stopped reaching this node made a second history (n5
                 * led group 5 with n3 for 1.1 s after n2 was asked, and n2, its links to n3
                 * and n5 flapping, forced it: campaign seed 3507000018 --nodes 5 --partitions
                 * 8 --rf 3 --replace-after 1500). Not forcing is safe; the operator asks
                 * again if the group is leaderless later. */
                continue;
            }
            /* It stepped down for a leader elected by a majority (members re-added since,
             * a transfer), or a leader spoke since the operator asked: forcing it now would
             * drop what that majority committed (seed 24001517 --partitions 2). (A follower
             * keeps the name of a leader that died: that name alone is no reason.) */
            hy_log(n->log, HY_LOG_WARN, "FORCE-QUORUM: group %u is not forced: a leader is heard",
                   g->id);
            g->force_pending = 0;
            continue;
        }
        if (was_leader && force_majority_reachable(n, g, now_ms)) {
            g->force_pending = 0; /* its majority answers: it will elect a leader */
            continue;
        }
        if (!force_may_judge(n, g, now_ms)) {
            continue; /* not yet waited an election timeout without a leader */
        }
        if (n->group_count > 1 && force_unknown_matters(n, g, now_ms)) {
            continue; /* asked whether they still hold it: not answered yet */
        }
        if (n->group_count > 1 && force_left_alone(n, g, now_ms)) {
            /* Left alone, as FORCE-QUORUM leaves a group with a reachable leader or majority
             * at once: a node asked right after its restart sees its peers down until their
             * links come up, and forcing then took the metadata group from a majority that
             * was electing its next leader, dropping what it had committed (seed 73000035
             * --nodes 5 --partitions 8 --rf 2 --zones 2). Still pending: forced if the
             * majority goes again before the operator's request lapses. */
            continue;
        }
        if (replica_force(g, now_ms) == HY_OK) {
            g->force_pending = 0;
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: group %u is forced now: this node is its only voter, from its "
                   "log ending at %llu",
                   g->id, (unsigned long long)raft_last_index(&g->raft));
        }
    }
}

/* ---- a member that missed its own removal -------------------------------------------------
 *
 * A member removed while it was cut off, crashed or behind never hears the entry that removes
 * it: its metadata group's leader no longer sends to it. Its replicas of the partitions still
 * list it, and a partition it leads follows no map, because its metadata replica is never
 * current again (meta_fresh); with two replicas (or after FORCE-QUORUM) the other one cannot
 * be elected without it, so the partition never moves off it (simulator seeds 50001013 --rf 2,
 * 40404537 --partitions 8). So a node that has heard no metadata leader for a while asks a
 * peer, once a second, what its address book says of it; a peer whose metadata replica is
 * current answers. Told "removed", the node hands over every group it leads (node_drain_step)
 * and takes no leadership handed to it, but still votes, follows and campaigns (it may hold the
 * only log a partition can be led from: it leads then until the other voter caught up), so that
 * the partitions' leaders can move their replicas off it. It is undone when it hears a metadata
 * leader again as a member (it was added back). */
/* Election timeouts without a metadata leader before it asks: an election takes one or two. It
 * was 10, and with one group the node did not ask at all ("out of it, a node holds nothing"):
 * but its clients are still connected, and until it knows, each of their requests waits
 * request-timeout-ms for a leader that no longer talks to it and is answered -TRYAGAIN
 * (campaign seed 4800001053 --nodes 5 --partitions 1 --snapshot-bandwidth 512 --snapshot-chunk
 * 512: c4 on n2, removed at 18.7 s, answered -TRYAGAIN until the operator stopped n2 at
 * 29.2 s). Told, it sends them to a member that remains (-MOVED: node_removed_redirects). */
#define REMOVAL_PROBE_QUIET_TIMEOUTS 3
#define REMOVAL_PROBE_EVERY_MS       1000

static void set_self_removed(struct hy_node *n, int removed, const char *from)
{
    if (n->self_removed == removed) {
        return;
    }
    n->self_removed = removed;
    if (removed) {
        hy_log(n->log, HY_LOG_WARN,
               "this node was removed from the cluster (so says %s, whose metadata is current) "
               "and missed it: it hands over what it leads; stop it once no partition lists "
               "it, or add it back",
               from);
    } else {
        hy_log(n->log, HY_LOG_INFO, "this node is a member again: it may lead");
    }
}

void member_removal_step(struct hy_node *n, uint64_t now_ms)
{
    const struct raft *r = &n->meta->raft;
    uint64_t contact = raft_leader_contact_ms(r);
    uint64_t et = (uint64_t)n->cfg->election_timeout_ms;
    int quiesced = contact == UINT64_MAX;
    int heard = quiesced || (contact <= now_ms && now_ms - contact < et);
    if (heard) {
        const struct node_member *self =
            node_member_find(n->members, n->member_count, n->meta->raft.cfg.id);
        if (n->self_removed && meta_fresh(n) && self != NULL &&
            self->role != STORE_MEMBER_REMOVED) {
            set_self_removed(n, 0, NULL);
        }
        /* A quiesced follower hears nothing and counts it good news (raft.h) while its
         * leader's node is up, but a leader that removed it sends it nothing more, not even
         * the wake-up: the entry removing it went to the others only. Asked now and then
         * (seeds 57003452, 58002381 --nodes 5 --partitions 8 --rf 2: removed, it kept
         * leading its partitions for good). */
        if (!quiesced || n->self_removed || now_ms < n->removal_probe_ms) {
            return;
        }
        n->removal_probe_ms = now_ms + REMOVAL_PROBE_QUIET_TIMEOUTS * et;
    } else {
        uint64_t since = HY_MAX(contact, n->start_ms);
        if (n->self_removed || now_ms < since + REMOVAL_PROBE_QUIET_TIMEOUTS * et ||
            now_ms < n->removal_probe_ms) {
            return;
        }
        n->removal_probe_ms = now_ms + REMOVAL_PROBE_EVERY_MS;
    }
    for (size_t k = 0; k < n->member_count; k++) {
        size_t i = (n->removal_probe_next + k) % n->member_count;
        const struct node_member *m = &n->members[i];
        if (m->id != n->meta->raft.cfg.id && n->member_up[i] && m->peer_port != 0) {
            n->removal_probe_next = i + 1;
            proxy_probe(n, m, NODE_PROBE_ROLE, now_ms);
            return;
        }
    }
}

int member_removed_here(const struct hy_node *n)
{
    const struct node_member *self =
        node_member_find(n->members, n->member_count, n->meta->raft.cfg.id);
    return n->self_removed || (self != NULL && self->role == STORE_MEMBER_REMOVED);
}

const struct node_member *member_after_removal(const struct hy_node *n, const struct node_group *g)
{
    raft_id self = n->meta->raft.cfg.id;
    const struct node_member *leader = partmap_leader_member(g);
    if (leader != NULL && leader->id != self && leader->role != STORE_MEMBER_REMOVED &&
        leader->client_port != 0 && n->member_up[leader - n->members]) {
        return leader;
    }
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (m->id != self && m->role != STORE_MEMBER_REMOVED && m->client_port != 0 &&
            n->member_up[i]) {
            return m;
        }
    }
    return NULL;
}

void member_role_answer(struct hy_node *n, const char *from, const uint8_t *data, size_t len)
{
    if (len >= 9 && memcmp(data, "+removed\r", 9) == 0) {
        set_self_removed(n, 1, from);
    }
}

/* HY.MEMBERROLE name: what this node's address book says of a member ("+voter", "+observer",
 * "+removed", "+unknown"), asked by a member that missed its own removal; only while this
 * node's metadata replica is current. Internal. */
void cmd_hy_memberrole(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (!meta_fresh(n)) {
        resp_write_error(&x->w, "TRYAGAIN this node's metadata is not current; ask another");
        return;
    }
    char name[NODE_MEMBER_NAME_MAX + 1];
    const struct node_member *m = arg_text(&x->argv[1], name, sizeof(name))
                                      ? find_name(n->members, n->member_count, name)
                                      : NULL;
    const char *role = m == NULL                          ? "unknown"
                       : m->role == STORE_MEMBER_REMOVED  ? "removed"
                       : m->role == STORE_MEMBER_OBSERVER ? "observer"
                                                          : "voter";
    resp_write_simple(&x->w, role);
}

/* HALYARD PEERS: "name@host:peerport" of every member (what a joining node dials). */
void cmd_halyard_peers(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    size_t count = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        count +=
            m->peer_port != 0 && (m->role != STORE_MEMBER_REMOVED || member_in_config(n, m->id));
    }
    resp_write_array(&x->w, count);
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (m->peer_port != 0 && (m->role != STORE_MEMBER_REMOVED || member_in_config(n, m->id))) {
            char peer[NODE_MEMBER_NAME_MAX + NODE_MEMBER_HOST_MAX + 16];
            int len = snprintf(peer, sizeof(peer), "%s@%s:%u", m->name, m->host, m->peer_port);
            resp_write_bulk(&x->w, peer, (size_t)len);
        }
    }
}
