/*
 * partmap.c - the partition map: which members hold a replica of which partition
 * (docs/partitioning.md "Replicas").
 *
 * The map lives in the metadata group (group 0), replicated like the address book: its
 * leader computes it with placement.c from the committed map and the members (the voters of
 * the address book and of the metadata group's configuration, less those marked removed) and
 * commits it when it differs. It is stored as one value, under PARTMAP_KEY, in the metadata
 * group's keyspace, which holds no user key once there is more than one partition (no slot
 * maps to group 0): it travels in the group's log and snapshots like any write. Every
 * partition's leader then moves its group's configuration towards the map (member.c); every
 * node routes the partitions it holds no replica of to the replicas the map names.
 *
 * With one partition there is no map: the metadata group holds every key, on every member.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define PARTMAP_KEY        "halyard:partition-map"
/* One key per member, "halyard:zone:<name>" = "<zone> <rack>" (either may be empty): written
 * by HALYARD DOMAIN, which every node sends for itself (partmap_publish_domain). One key per
 * member, not one value for all, so that two nodes publishing at once never overwrite each
 * other. */
#define DOMAIN_KEY_PREFIX  "halyard:zone:"
/* One key per member, "halyard:leaving:<name>" = "1" while it drains with a hand-off (HALYARD
 * LEAVING, which the node sends for itself: partmap_publish_leaving); "0" or none otherwise.
 * Placement leaves a leaving member out when the others are enough for the replication
 * factor, so its replicas move off before it stops (docs/operations.md "Draining a node"). */
#define LEAVING_KEY_PREFIX "halyard:leaving:"

_Static_assert(NODE_RF_EVERY_MEMBER == RAFT_SERVERS_MAX,
               "a cluster file without replication-factor: every member holds every partition");

static uint32_t parts_of(const struct hy_node *n)
{
    return n->group_count > 1 ? (uint32_t)(n->group_count - 1) : 0;
}

void partmap_free(struct hy_node *n)
{
    hy_free(n->partmap);
    n->partmap = NULL;
    hy_free(n->boot_place);
    n->boot_place = NULL;
    hy_buf_free(&n->partmap_raw);
}

void partmap_refresh(struct hy_node *n)
{
    uint32_t parts = parts_of(n);
    if (parts == 0 || n->meta->applied == n->partmap_seen_applied) {
        return;
    }
    n->partmap_seen_applied = n->meta->applied;
    const struct store_obj *o = store_peek(n->meta->store, (const uint8_t *)PARTMAP_KEY,
                                           strlen(PARTMAP_KEY), n->raft_now_ms);
    const uint8_t *p = NULL;
    size_t len = 0;
    if (o != NULL && store_obj_type(o) == STORE_STRING) {
        store_obj_string(o, &p, &len);
    }
    if (len == n->partmap_raw.len && (len == 0 || memcmp(p, n->partmap_raw.data, len) == 0)) {
        return;
    }
    hy_buf_reset(&n->partmap_raw);
    hy_buf_append(&n->partmap_raw, p, len);
    struct node_placement *map = hy_xcalloc(parts, sizeof(*map));
    if (len > 0 && !node_placement_decode(p, len, map, parts)) {
        hy_log(n->log, HY_LOG_ERROR,
               "the committed partition map does not decode; partitions keep their replicas");
        hy_free(map);
        map = NULL;
    } else if (len == 0) {
        hy_free(map);
        map = NULL;
    }
    hy_free(n->partmap);
    n->partmap = map;
    n->partmap_epoch++;
}

/* The members that may hold replicas: voters of the address book and of the metadata group's
 * configuration, less those the book marks removed. Observers hold none (they learn every
 * partition). */
static size_t replica_members(const struct hy_node *n, raft_id *out)
{
    size_t k = 0;
    const struct store_member *book;
    size_t n_book = store_members(n->meta->store, &book);
    for (size_t i = 0; i < n_book && k < RAFT_SERVERS_MAX; i++) {
        if (book[i].role == STORE_MEMBER_VOTER) {
            out[k++] = node_member_id(book[i].name);
        }
    }
    const struct raft_membership *cm = raft_membership(&n->meta->raft);
    for (uint32_t i = 0; i < cm->count && k < RAFT_SERVERS_MAX; i++) {
        raft_id id = cm->servers[i].id;
        const struct node_member *m = node_member_find(n->members, n->member_count, id);
        int removed = m != NULL && m->role == STORE_MEMBER_REMOVED;
        int known = 0;
        for (size_t j = 0; j < k; j++) {
            known |= out[j] == id;
        }
        if (cm->servers[i].role == RAFT_VOTER && !removed && !known &&
            (m == NULL || m->role != STORE_MEMBER_OBSERVER)) {
            out[k++] = id;
        }
    }
    return k;
}

static int id_leaving(const struct hy_node *n, raft_id id)
{
    const char *name = node_member_name(n, id);
    return name != NULL && partmap_leaving(n, name);
}

/* How many of the `count` members in ids are not marked leaving. */
static size_t staying(const struct hy_node *n, const raft_id *ids, size_t count)
{
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        k += !id_leaving(n, ids[i]);
    }
    return k;
}

/* The members that hold replicas: replica_members, less those marked leaving when the others
 * are enough for the replication factor (a drain never takes a partition below it: with too
 * few, every member keeps its replicas and the drain stops the node with them). */
static size_t placement_members(const struct hy_node *n, raft_id *out)
{
    size_t count = replica_members(n, out), stay = staying(n, out, count);
    if (stay == count || stay < partmap_replication_factor(n)) {
        return count;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (!id_leaving(n, out[i])) {
            out[k++] = out[i];
        }
    }
    return k;
}

/* The committed "<zone> <rack>" of member `name`, split; 0 when there is none. */
static int committed_domain(const struct hy_node *n, const char *name, char zone[33], char rack[33])
{
    char key[sizeof(DOMAIN_KEY_PREFIX) + NODE_MEMBER_NAME_MAX];
    int klen = snprintf(key, sizeof(key), DOMAIN_KEY_PREFIX "%s", name);
    const struct store_obj *o =
        store_peek(n->meta->store, (const uint8_t *)key, (size_t)klen, n->raft_now_ms);
    zone[0] = rack[0] = '\0';
    if (o == NULL || store_obj_type(o) != STORE_STRING) {
        return 0;
    }
    const uint8_t *p;
    size_t len;
    store_obj_string(o, &p, &len);
    const uint8_t *sp = memchr(p, ' ', len);
    size_t zl = sp ? (size_t)(sp - p) : len, rl = sp ? len - zl - 1 : 0;
    if (zl > NODE_DOMAIN_NAME_MAX || rl > NODE_DOMAIN_NAME_MAX) {
        return 0; /* HALYARD DOMAIN never writes one */
    }
    memcpy(zone, p, zl);
    zone[zl] = '\0';
    memcpy(rack, sp ? sp + 1 : p, rl);
    rack[rl] = '\0';
    return 1;
}

void partmap_member_domain(const struct hy_node *n, const char *name, char zone[33], char rack[33])
{
    if (strcmp(name, n->cfg->node_id) == 0) {
        snprintf(zone, 33, "%s", n->cfg->zone);
        snprintf(rack, 33, "%s", n->cfg->rack);
        return;
    }
    if (parts_of(n) == 0) {
        zone[0] = rack[0] = '\0'; /* the metadata group holds user keys: nothing kept there */
        return;
    }
    (void)committed_domain(n, name, zone, rack);
}

/* The members' zones and racks as numbers for placement: equal names, equal numbers (a rack
 * is named within its zone). Members without a zone share the zone "". Only what is committed
 * counts, this node's own settings too: every leader computes from the same facts. */
static void members_domains(const struct hy_node *n, const raft_id *members, size_t count,
                            struct node_domain *dom)
{
    char zones[RAFT_SERVERS_MAX][33], racks[RAFT_SERVERS_MAX][33];
    for (size_t i = 0; i < count; i++) {
        const char *name = node_member_name(n, members[i]);
        if (name == NULL || !committed_domain(n, name, zones[i], racks[i])) {
            zones[i][0] = racks[i][0] = '\0';
        }
        dom[i].zone = dom[i].rack = (uint32_t)i;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(zones[i], zones[j]) == 0) {
                dom[i].zone = dom[j].zone;
                if (strcmp(racks[i], racks[j]) == 0) {
                    dom[i].rack = dom[j].rack;
                }
            }
        }
    }
}

int partmap_zoned(const struct hy_node *n)
{
    if (parts_of(n) == 0 || n->partmap == NULL) {
        return 0;
    }
    raft_id members[RAFT_SERVERS_MAX];
    size_t count = placement_members(n, members);
    struct node_domain dom[RAFT_SERVERS_MAX];
    members_domains(n, members, count, dom);
    for (size_t i = 1; i < count; i++) {
        if (dom[i].zone != dom[0].zone || dom[i].rack != dom[0].rack) {
            return 1;
        }
    }
    return 0;
}

void partmap_shared_domains(const struct hy_node *n, uint32_t *zone_out, uint32_t *rack_out)
{
    *zone_out = *rack_out = 0;
    uint32_t parts = parts_of(n);
    if (parts == 0 || n->partmap == NULL) {
        return;
    }
    raft_id members[RAFT_SERVERS_MAX];
    size_t count = placement_members(n, members);
    struct node_domain dom[RAFT_SERVERS_MAX];
    members_domains(n, members, count, dom);
    for (uint32_t p = 0; p < parts; p++) {
        uint32_t z, r;
        node_placement_shared(&n->partmap[p], members, dom, count, &z, &r);
        *zone_out += z > 0;
        *rack_out += z == 0 && r > 0;
    }
}

/* Runs HALYARD <sub> <args...> for this node as an internal client, whose answer nobody waits
 * for: what it changes is read back from the committed metadata, and it is sent again while
 * that differs. */
static void send_internal(struct hy_node *n, const char *label, const char *sub,
                          const char *const *args, size_t argc, uint64_t now_ms)
{
    struct node_client *c = node_client_new(n, label, "", -1, now_ms);
    c->flags &= ~NODE_CLIENT_CLOSE_AFTER_REPLY;
    hy_buf_reset(&c->out);
    n->stats.connections_received--;
    c->authenticated = 1; /* this node's own settings */
    c->user[0] = '\0';
    c->proto = 2;
    c->is_scatter_orphan = 1; /* freed once answered */
    snprintf(c->name, sizeof(c->name), "%s", label + strlen("internal:"));
    hy_buf_printf(&c->in, "*%zu\r\n$7\r\nHALYARD\r\n$%zu\r\n%s\r\n", argc + 2, strlen(sub), sub);
    for (size_t i = 0; i < argc; i++) {
        hy_buf_printf(&c->in, "$%zu\r\n%s\r\n", strlen(args[i]), args[i]);
    }
    node_client_process(n, c, now_ms);
    replica_mark_ready(n, c);
}

void partmap_publish_domain(struct hy_node *n, uint64_t now_ms)
{
    char zone[33], rack[33];
    int have = parts_of(n) > 0 && committed_domain(n, n->cfg->node_id, zone, rack);
    if (parts_of(n) == 0 || (!have && n->cfg->zone[0] == '\0' && n->cfg->rack[0] == '\0') ||
        (have && strcmp(zone, n->cfg->zone) == 0 && strcmp(rack, n->cfg->rack) == 0) ||
        now_ms < n->domain_sent_ms + 4 * (uint64_t)n->cfg->election_timeout_ms) {
        return;
    }
    n->domain_sent_ms = now_ms;
    hy_log(n->log, HY_LOG_INFO, "zone '%s', rack '%s': sent to the metadata group", n->cfg->zone,
           n->cfg->rack);
    const char *args[] = {n->cfg->node_id, n->cfg->zone, n->cfg->rack};
    send_internal(n, "internal:domain", "DOMAIN", args, 3, now_ms);
}

int partmap_leaving(const struct hy_node *n, const char *name)
{
    char key[sizeof(LEAVING_KEY_PREFIX) + NODE_MEMBER_NAME_MAX];
    int klen = snprintf(key, sizeof(key), LEAVING_KEY_PREFIX "%s", name);
    const struct store_obj *o = parts_of(n) == 0 ? NULL
                                                 : store_peek(n->meta->store, (const uint8_t *)key,
                                                              (size_t)klen, n->raft_now_ms);
    const uint8_t *p;
    size_t len;
    if (o == NULL || store_obj_type(o) != STORE_STRING) {
        return 0;
    }
    store_obj_string(o, &p, &len);
    return len == 1 && p[0] == '1';
}

int partmap_handoff_possible(const struct hy_node *n)
{
    if (parts_of(n) == 0) {
        return 0;
    }
    raft_id members[RAFT_SERVERS_MAX];
    size_t count = replica_members(n, members), others = 0;
    int member = 0;
    for (size_t i = 0; i < count; i++) {
        member |= members[i] == n->meta->raft.cfg.id;
        others += members[i] != n->meta->raft.cfg.id && !id_leaving(n, members[i]);
    }
    /* A member removed, or an observer, holds no replica placement could move. */
    return member && others >= partmap_replication_factor(n);
}

int partmap_handoff_left(const struct hy_node *n, int *stuck)
{
    *stuck = 0;
    raft_id self = n->meta->raft.cfg.id, members[RAFT_SERVERS_MAX];
    size_t count = replica_members(n, members);
    int member = 0;
    for (size_t i = 0; i < count; i++) {
        member |= members[i] == self;
    }
    if (!member) {
        return 0; /* removed meanwhile (its removal moves its replicas), or an observer */
    }
    if (!partmap_leaving(n, n->cfg->node_id)) {
        return -1;
    }
    count = placement_members(n, members);
    int placed = 0;
    for (size_t i = 0; i < count; i++) {
        placed |= members[i] == self;
    }
    if (placed) {
        *stuck = 1; /* too few members would remain: placement keeps this node's replicas */
        return 0;
    }
    struct node_group *const *groups;
    size_t held = node_data_groups(n, &groups);
    int left = 0;
    for (uint32_t p = 0; p < parts_of(n); p++) {
        const struct node_placement *pl = n->partmap != NULL ? &n->partmap[p] : NULL;
        left += pl == NULL || node_placement_has(pl, self) ||
                (p < held && !partmap_group_settled(groups[p]));
    }
    return left;
}

void partmap_publish_leaving(struct hy_node *n, uint64_t now_ms)
{
    if (parts_of(n) == 0 || partmap_leaving(n, n->cfg->node_id) == n->drain_handoff ||
        now_ms < n->leaving_sent_ms + 4 * (uint64_t)n->cfg->election_timeout_ms) {
        return;
    }
    n->leaving_sent_ms = now_ms;
    hy_log(n->log, HY_LOG_INFO, "%s: sent to the metadata group",
           n->drain_handoff ? "leaving (drain: replicas move off first)" : "not leaving");
    const char *args[] = {n->cfg->node_id, n->drain_handoff ? "1" : "0"};
    send_internal(n, "internal:leaving", "LEAVING", args, 2, now_ms);
}

/* Whether g's configuration, as this node's replica of it has it, is the map's: every
 * replica pl names votes, and nothing else is in it but the observers' learners (the last
 * change of pl carried out; a copy left out receives nothing more and may park, replica.c).
 * Observers are learners of every partition for good (member.c adds them), so counting them
 * made no partition settle while the cluster had one: the record of moves kept finished moves
 * under way, they filled rebalance-max-moves, and the moves waiting behind them (a zone to
 * mend, a fair share) never started (simulator seed 76020079 --rf 3 --zones 3 --cancel: n5
 * re-added as an observer, two partitions left with two replicas in zone z0 for good). */
static int group_settled(const struct hy_node *n, const struct node_group *g,
                         const struct node_placement *pl)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    uint32_t voters = 0;
    for (uint32_t i = 0; i < cm->count; i++) {
        const struct node_member *m =
            node_member_find(n->members, n->member_count, cm->servers[i].id);
        if (cm->servers[i].role == RAFT_VOTER) {
            voters++;
        } else if (node_placement_has(pl, cm->servers[i].id) || m == NULL ||
                   m->role != STORE_MEMBER_OBSERVER) {
            return 0; /* a move's target still catching up, or a learner that should go */
        }
    }
    for (uint32_t k = 0; k < pl->count; k++) {
        if (!raft_membership_is_voter(cm, pl->ids[k])) {
            return 0;
        }
    }
    return voters == pl->count;
}

uint32_t partmap_load_spread(const struct hy_node *n)
{
    uint32_t parts = parts_of(n);
    if (parts == 0 || n->partmap == NULL) {
        return 0;
    }
    raft_id members[RAFT_SERVERS_MAX];
    size_t count = placement_members(n, members);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t load = 0;
        for (uint32_t p = 0; p < parts; p++) {
            load += (uint32_t)node_placement_has(&n->partmap[p], members[i]);
        }
        lo = HY_MIN(lo, load);
        hi = HY_MAX(hi, load);
    }
    return count > 0 ? hi - lo : 0;
}

uint32_t partmap_replication_factor(const struct hy_node *n)
{
    uint32_t rf = (uint32_t)n->cfg->replication_factor;
    const struct store_obj *o = store_peek(n->meta->store, (const uint8_t *)PARTMAP_RF_KEY,
                                           strlen(PARTMAP_RF_KEY), n->raft_now_ms);
    const uint8_t *p;
    size_t len;
    if (o != NULL && store_obj_type(o) == STORE_STRING) {
        store_obj_string(o, &p, &len);
        if (len == 1 && p[0] >= '1' && p[0] <= '0' + NODE_RF_MAX) {
            rf = (uint32_t)(p[0] - '0'); /* HALYARD REPLICATION-FACTOR writes nothing else */
        }
    }
    return rf;
}

enum { REBALANCE_RUNNING, REBALANCE_PAUSED, REBALANCE_CANCEL };

/* The committed value of PARTMAP_REBALANCE_KEY (HALYARD REBALANCE writes nothing else). */
static int rebalance_state(const struct hy_node *n)
{
    const struct store_obj *o = store_peek(n->meta->store, (const uint8_t *)PARTMAP_REBALANCE_KEY,
                                           strlen(PARTMAP_REBALANCE_KEY), n->raft_now_ms);
    const uint8_t *p;
    size_t len;
    if (o == NULL || store_obj_type(o) != STORE_STRING) {
        return REBALANCE_RUNNING;
    }
    store_obj_string(o, &p, &len);
    if (len == 6 && memcmp(p, "paused", 6) == 0) {
        return REBALANCE_PAUSED;
    }
    return len == 6 && memcmp(p, "cancel", 6) == 0 ? REBALANCE_CANCEL : REBALANCE_RUNNING;
}

int partmap_rebalance_paused(const struct hy_node *n)
{
    return rebalance_state(n) != REBALANCE_RUNNING;
}

/* The committed record of the moves under way (PARTMAP_MOVES_KEY) into origin[0..parts): all
 * empty when there is none, or one that does not decode (a record from before a change of
 * the partition count cannot exist: the count is fixed at bootstrap). */
static void moves_load(const struct hy_node *n, struct node_placement *origin, uint32_t parts)
{
    const struct store_obj *o = store_peek(n->meta->store, (const uint8_t *)PARTMAP_MOVES_KEY,
                                           strlen(PARTMAP_MOVES_KEY), n->raft_now_ms);
    const uint8_t *p;
    size_t len;
    if (o != NULL && store_obj_type(o) == STORE_STRING) {
        store_obj_string(o, &p, &len);
        if (node_placement_decode(p, len, origin, parts)) {
            return;
        }
    }
    memset(origin, 0, parts * sizeof(*origin));
}

int partmap_move_from_here(const struct hy_node *n, const struct node_group *g)
{
    return partmap_move_from(n, g, g->raft.cfg.id);
}

/* Whether a move of g is under way (the metadata group's record) that started from member id. */
int partmap_move_from(const struct hy_node *n, const struct node_group *g, raft_id id)
{
    uint32_t parts = parts_of(n);
    if (parts == 0 || g == n->meta || g->id == 0 || g->id > parts) {
        return 0;
    }
    struct node_placement *origin = hy_xcalloc(parts, sizeof(*origin));
    moves_load(n, origin, parts);
    int from = node_placement_has(&origin[g->id - 1], id);
    hy_free(origin);
    return from;
}

/* Whether a move under way places g on this node without starting here (the record's origin
 * does not name it: this copy is the move's target, or a stale copy the map names again), while
 * a member of that origin which the map still names is up. Such a member holds the group's
 * history and is forced itself; this copy may hold an old one, from before its group removed
 * it. An origin member the map no longer names (the move's source, which may have left the
 * group already) counts only when this copy is older than the move (below): seed 1411000321
 * --nodes 5 --partitions 8 --rf 2 --zones 2: n5 had removed itself, n1 the target had become a
 * voter with n4, lost; counting n5, nobody forced the partition. Nor does one this copy's
 * configuration no longer holds as a voter: it removed itself (the move's last step, which
 * this copy holds), so it forces nothing of the group (campaign seed 1807000263 --nodes 5
 * --partitions 8 --rf 3 --replace-after 1500: move n2 -> n4 of partition 2 ended with n2
 * removing itself, then n3 and n5 were lost; the map named n2 again, n4 deferred to it and n2,
 * no longer a voter of its own copy, forced nothing: the partition never led again). */
int partmap_move_target_with_origin_up(const struct hy_node *n, const struct node_group *g)
{
    uint32_t parts = parts_of(n);
    const struct node_placement *pl = partmap_of(n, g);
    if (parts == 0 || g == n->meta || g->id == 0 || g->id > parts || pl == NULL) {
        return 0;
    }
    struct node_placement *origin = hy_xcalloc(parts, sizeof(*origin));
    moves_load(n, origin, parts);
    const struct node_placement *o = &origin[g->id - 1];
    int up = 0;
    const struct raft_membership *cm = raft_membership(&g->raft);
    if (o->count > 0 && !node_placement_has(o, g->raft.cfg.id)) {
        /* This copy's configuration lacks a voter the move started from: it is older than the
         * move (this copy was removed from the group before, or missed the entries that made
         * the origin). */
        int older = 0;
        for (uint32_t i = 0; i < o->count; i++) {
            older |= !raft_membership_is_voter(cm, o->ids[i]);
        }
        for (uint32_t i = 0; i < o->count && !up; i++) {
            const struct node_member *m = node_member_find(n->members, n->member_count, o->ids[i]);
            /* The move's source (an origin member the map no longer names) counts too when
             * this copy is older than the move and still names it a voter: the source holds
             * the group's later history and is forced itself (campaign seed 5400029440
             * --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep 500: n1,
             * moved off partition 0 at epoch 2 and named again by epoch 3's move from n3,
             * forced its copy from before its removal, n3 forced its own, and both committed
             * entry 16). A copy as new as the move does not wait for the source: it may have
             * removed itself, the move's last step, and then forces nothing
             * (test_force_quorum_in_a_moves_last_step_forces_the_target). */
            up = m != NULL && n->member_up[m - n->members] &&
                 raft_membership_is_voter(cm, o->ids[i]) &&
                 (node_placement_has(pl, o->ids[i]) || older);
        }
    }
    hy_free(origin);
    return up;
}

uint32_t partmap_moves_recorded(const struct hy_node *n)
{
    uint32_t parts = parts_of(n), count = 0;
    if (parts == 0) {
        return 0;
    }
    struct node_placement *origin = hy_xcalloc(parts, sizeof(*origin));
    moves_load(n, origin, parts);
    for (uint32_t p = 0; p < parts; p++) {
        count += origin[p].count > 0;
    }
    hy_free(origin);
    return count;
}

/* Which partitions' voters are the map's replicas (settled[p]), as this node knows: from its
 * own replica's configuration where it holds one, else from what the partition's replicas
 * last reported (HY.LEADERS: the map epoch their voters match). Not known counts as not
 * settled. */
static void partitions_settled(const struct hy_node *n, const struct node_placement *map,
                               uint32_t parts, uint8_t *settled)
{
    struct node_group *const *groups;
    size_t held = node_data_groups(n, &groups);
    for (uint32_t p = 0; p < parts; p++) {
        const struct node_group *g = p < held ? groups[p] : NULL;
        settled[p] = g != NULL && (node_group_raft_view(g) ? group_settled(n, g, &map[p])
                                                           : g->settled_epoch == map[p].epoch);
    }
}

/* rebalance_step found nothing to move while member loads differ: says why, once each time
 * the reason changes (moves under way at the limit, partitions busy: a configuration not yet
 * what the map says, or neither: no move the placement allows), so that a rebalance that waits
 * long can be told from one that found no move, without a line per busy partition settling. */
static void rebalance_note_wait(struct hy_node *n, const uint8_t *busy, uint32_t parts,
                                uint64_t under_way, uint64_t max)
{
    uint32_t spread = partmap_load_spread(n);
    uint32_t n_busy = 0;
    for (uint32_t p = 0; p < parts; p++) {
        n_busy += busy[p] != 0;
    }
    uint64_t state = spread < 2 ? 0 : 1 + (under_way >= max) + 2 * (n_busy > 0);
    if (state != 0 && state != n->rebalance_wait_noted) {
        hy_log(n->log, HY_LOG_INFO,
               "rebalance: no move while member loads differ by %u replicas: %llu move(s) under "
               "way (rebalance-max-moves %llu), %u of %u partitions busy (their configuration "
               "not yet the map's)",
               spread, (unsigned long long)under_way, (unsigned long long)max, n_busy, parts);
    }
    n->rebalance_wait_noted = state;
}

/* Fair share (issue 12): with nothing else to change, one replica moves from the member
 * holding most to one holding two fewer (a member that joined), while fewer than
 * rebalance-max-moves moves are under way (`under_way`: recorded, not yet settled), in a
 * partition whose configuration is what the map says (as this node's replicas show it or as
 * the others report it: HY.LEADERS). Returns the partition changed in next, or -1. */
static int rebalance_step(struct hy_node *n, struct node_placement *next, const raft_id *members,
                          const struct node_domain *dom, size_t count, const raft_id *down,
                          size_t n_down, uint64_t under_way)
{
    uint32_t parts = parts_of(n);
    uint64_t max = (uint64_t)n->cfg->rebalance_max_moves;
    if (max == 0 || partmap_rebalance_paused(n)) {
        uint32_t spread = partmap_load_spread(n);
        if (spread >= 2 && spread != n->rebalance_held_spread) {
            hy_log(n->log, HY_LOG_INFO, "rebalance: %s while member loads differ by %u replicas",
                   max == 0 ? "off (rebalance-max-moves 0)" : "paused", spread);
        }
        n->rebalance_held_spread = spread;
        return -1;
    }
    n->rebalance_held_spread = 0;
    struct node_group *const *groups;
    size_t held = node_data_groups(n, &groups);
    uint8_t *busy = hy_xcalloc(parts, 1);
    for (uint32_t p = 0; p < parts; p++) {
        const struct node_group *g = p < held ? groups[p] : NULL;
        busy[p] = g == NULL || (node_group_raft_view(g) ? !group_settled(n, g, &next[p])
                                                        : g->settled_epoch != next[p].epoch);
    }
    int moved = -1;
    if (under_way < max) {
        moved = node_place_rebalance(next, parts, members, dom, count, down, n_down, busy);
    }
    if (moved >= 0) {
        hy_log(n->log, HY_LOG_INFO,
               "rebalance: partition %d gets a replica on a member holding fewer (map epoch "
               "%llu; %llu other move(s) under way, rebalance-max-moves %llu)",
               moved, (unsigned long long)next[moved].epoch, (unsigned long long)under_way,
               (unsigned long long)max);
        n->rebalance_wait_noted = 0;
    } else {
        rebalance_note_wait(n, busy, parts, under_way, max);
    }
    hy_free(busy);
    return moved;
}

/* Replacing failed nodes (issue 12): a member this node, as metadata leader, has seen down
 * for replace-after-ms (0: never) holds no replica in the next map; its replicas are placed
 * on the others, and it gets its share back by rebalancing once it is up again (an empty
 * member to the partitions: each adds it as a learner and catches it up). Never this node.
 * Down is the transport's (or gossip's) view, timed from when this node first saw it while
 * leading: a new metadata leader waits the whole time again. */
static size_t drop_replaced(struct hy_node *n, raft_id *members, size_t count, uint64_t now_ms)
{
    uint64_t after = (uint64_t)n->cfg->replace_after_ms;
    struct node_down_watch *dw = n->down_watch;
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        const struct node_member *m = node_member_find(n->members, n->member_count, members[i]);
        int up = m == NULL || members[i] == n->meta->raft.cfg.id || n->member_up[m - n->members];
        size_t w = 0;
        while (w < n->down_watch_count && dw[w].id != members[i]) {
            w++;
        }
        if (up) {
            if (w < n->down_watch_count) {
                dw[w] = dw[--n->down_watch_count];
            }
            members[k++] = members[i];
            continue;
        }
        if (w == n->down_watch_count && w < NODE_MEMBERS_MAX) {
            dw[n->down_watch_count++] = (struct node_down_watch){members[i], now_ms, 0};
        }
        if (w == n->down_watch_count || after == 0 || now_ms < dw[w].since_ms + after) {
            members[k++] = members[i];
            continue;
        }
        if (!dw[w].logged) {
            dw[w].logged = 1;
            hy_log(n->log, HY_LOG_WARN,
                   "partition map: %s has been down for %llu ms (replace-after-ms %llu): its "
                   "replicas go to the other members",
                   m->name, (unsigned long long)(now_ms - dw[w].since_ms),
                   (unsigned long long)after);
        }
    }
    return k;
}

/* Orders down[] (members seen down) by how long this node has seen each down, longest first:
 * placement drops the replicas of the first ones first when a partition has too many
 * (node_place_domains). The time is this node's own, kept whatever it leads (events.c
 * down_since_ms, set when the link or gossip first said down), else down_watch's (from this
 * node's current term as metadata leader; one it has no time for counts as down just now).
 * down_watch alone restarts every member's time at a new metadata leader's first map: a member
 * lost for good and one that had dropped out a moment ago tied there, and the live one's
 * replica went (campaign seed 2216000044 --rf-change: n1, leader for 0.1 s, lowered partition
 * 0 from n1, n2, n3 to RF 2 by dropping n2, seen down 0.1 s, and kept n3, lost 3 s before;
 * the partition kept no live majority and never led again). */
static void down_longest_first(const struct hy_node *n, raft_id *down, size_t n_down)
{
    uint64_t since[RAFT_SERVERS_MAX];
    for (size_t i = 0; i < n_down; i++) {
        since[i] = UINT64_MAX;
        for (size_t w = 0; w < n->down_watch_count; w++) {
            since[i] = n->down_watch[w].id == down[i] ? n->down_watch[w].since_ms : since[i];
        }
        const struct node_member *m = node_member_find(n->members, n->member_count, down[i]);
        size_t k = m != NULL ? (size_t)(m - n->members) : NODE_MEMBERS_MAX;
        if (k < NODE_MEMBERS_MAX && n->events.down_since_ms[k] != 0) {
            since[i] = HY_MIN(since[i], n->events.down_since_ms[k]);
        }
    }
    for (size_t i = 1; i < n_down; i++) { /* insertion sort: at most RAFT_SERVERS_MAX */
        for (size_t j = i; j > 0 && since[j] < since[j - 1]; j--) {
            uint64_t t = since[j];
            since[j] = since[j - 1];
            since[j - 1] = t;
            raft_id id = down[j];
            down[j] = down[j - 1];
            down[j - 1] = id;
        }
    }
}

/* Names of the ids of a that b lacks, joined by commas ("" when none), into out. */
static void names_missing(const struct hy_node *n, const struct node_placement *a,
                          const struct node_placement *b, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    for (uint32_t k = 0; k < a->count; k++) {
        if (!node_placement_has(b, a->ids[k]) && at < cap) {
            const char *name = node_member_name(n, a->ids[k]);
            int w = snprintf(out + at, cap - at, "%s%s", at > 0 ? "," : "", name ? name : "?");
            at = w > 0 ? HY_MIN(at + (size_t)w, cap - 1) : at;
        }
    }
}

/* HALYARD REBALANCE CANCEL, carried out (the metadata leader, once "cancel" is committed):
 * every partition whose recorded move has not settled goes back to where it started, each
 * logged and reported (MOVE_CANCELLED); a move the map must make stays (placement.h
 * node_moves_cancel). Returns how many partitions next changes. */
static size_t cancel_moves(struct hy_node *n, struct node_placement *next,
                           struct node_placement *origin, const uint8_t *settled,
                           const raft_id *members, const struct node_domain *dom, size_t count,
                           uint32_t rf, const raft_id *down, size_t n_down, uint64_t now_ms)
{
    uint32_t parts = parts_of(n);
    uint8_t *cancelled = hy_xcalloc(parts, 1);
    struct node_placement *before = hy_xcalloc(parts, sizeof(*before));
    memcpy(before, next, parts * sizeof(*before));
    size_t under_way = 0;
    for (uint32_t p = 0; p < parts; p++) {
        under_way += origin[p].count > 0 && !settled[p];
    }
    size_t done = node_moves_cancel(next, origin, parts, settled, members, dom, count, rf, down,
                                    n_down, cancelled);
    for (uint32_t p = 0; p < parts; p++) {
        if (!cancelled[p]) {
            continue;
        }
        char targets[256], sources[256];
        names_missing(n, &before[p], &next[p], targets, sizeof(targets));
        names_missing(n, &next[p], &before[p], sources, sizeof(sources));
        hy_log(n->log, HY_LOG_INFO,
               "rebalance: cancelled the move of partition %u: back on %s (not on %s), map epoch "
               "%llu",
               p, sources, targets, (unsigned long long)next[p].epoch);
        node_events_move_cancelled(n, now_ms, p, targets, sources, next[p].epoch);
    }
    hy_log(n->log, HY_LOG_INFO,
           "rebalance: cancel: %zu move(s) cancelled, %zu the map must make kept; rebalancing "
           "is paused until resumed",
           done, under_way - done);
    hy_free(before);
    hy_free(cancelled);
    return done;
}

size_t partmap_cancellable(struct hy_node *n)
{
    uint32_t parts = parts_of(n);
    partmap_refresh(n);
    const struct node_placement *cur = n->partmap;
    if (parts == 0 || cur == NULL) {
        return 0;
    }
    /* partmap_maintain's inputs as it will see them, without its side effects (members down
     * past replace-after-ms stay members here: such a member's moves are the map's own). */
    raft_id members[RAFT_SERVERS_MAX], down[RAFT_SERVERS_MAX];
    size_t count = placement_members(n, members), n_down = 0;
    for (size_t i = 0; i < count; i++) {
        const struct node_member *m = node_member_find(n->members, n->member_count, members[i]);
        if (m != NULL && !n->member_up[m - n->members]) {
            down[n_down++] = members[i];
        }
    }
    struct node_domain dom[RAFT_SERVERS_MAX];
    members_domains(n, members, count, dom);
    struct node_placement *next = hy_xcalloc(parts, sizeof(*next));
    struct node_placement *origin = hy_xcalloc(parts, sizeof(*origin));
    uint8_t *settled = hy_xcalloc(parts, 1), *cancelled = hy_xcalloc(parts, 1);
    memcpy(next, cur, parts * sizeof(*next));
    moves_load(n, origin, parts);
    partitions_settled(n, cur, parts, settled);
    size_t done = node_moves_cancel(next, origin, parts, settled, members, dom, count,
                                    partmap_replication_factor(n), down, n_down, cancelled);
    hy_free(next);
    hy_free(origin);
    hy_free(settled);
    hy_free(cancelled);
    return done;
}

/* The first map is the bootstrap's placement, the one the partition groups started on
 * (partmap_boot_servers): over the bootstrap members still members, not over a node that
 * joined before it was written. Placed over the joiner too, it moved every partition at once,
 * past rebalance-max-moves and a pause (test_rebalance_pause_holds_moves_and_resume_starts_them:
 * n5 joined 90 ms after the metadata group's first leader, before its first map). A node that
 * joined has no bootstrap list and places over the members it knows. */
static size_t first_map_members(const struct hy_node *n, raft_id *members, size_t count)
{
    raft_id boot[RAFT_SERVERS_MAX];
    size_t k = 0;
    for (size_t b = 0; b < n->boot_count; b++) { /* in the bootstrap's order, as placed */
        int member = 0;
        for (size_t i = 0; i < count; i++) {
            member |= members[i] == n->boot[b].id;
        }
        if (member) {
            boot[k++] = n->boot[b].id;
        }
    }
    if (k == 0 || n->mutation == NODE_MUT_FIRST_MAP_JOINER) {
        return count;
    }
    memcpy(members, boot, k * sizeof(*boot));
    return k;
}

void partmap_maintain(struct hy_node *n, uint64_t now_ms)
{
    uint32_t parts = parts_of(n);
    struct node_group *meta = n->meta;
    /* The leader, once everything committed before its term is applied (the map it starts
     * from is the committed one) and its own last proposal is. */
    if (!replica_is_leader(meta)) {
        n->down_watch_count = 0; /* timed again from scratch by the next term it leads */
    }
    if (parts == 0 || !replica_is_leader(meta) || meta->applied < meta->raft.term_start_index ||
        meta->applied < meta->internal_index) {
        return;
    }
    partmap_refresh(n);
    if (n->partmap == NULL && n->partmap_raw.len > 0) {
        return; /* one that does not decode: said in the log; never overwritten blindly */
    }
    raft_id members[RAFT_SERVERS_MAX];
    /* The first map is the bootstrap's placement even when a member drains already (marked
     * leaving before it was written): the groups started on that placement, and the drain's
     * moves follow from the next map like any other (campaign seed 1810000247 --early-join:
     * n2 drained at 202 ms, the first map left it out, unlike the groups it led). */
    size_t count = n->partmap == NULL ? first_map_members(n, members, replica_members(n, members))
                                      : placement_members(n, members);
    count = drop_replaced(n, members, count, now_ms);
    if (count == 0) {
        return;
    }
    struct node_placement *next = hy_xcalloc(parts, sizeof(*next));
    if (n->partmap != NULL) {
        memcpy(next, n->partmap, parts * sizeof(*next));
    }
    /* New replicas go to members this node sees up before those it sees down: a replica
     * placed on a dead member never catches up, and the one it replaces stays meanwhile. Not
     * for the first map: it is the bootstrap's placement (the links are still coming up). */
    raft_id down[RAFT_SERVERS_MAX];
    size_t n_down = 0;
    for (size_t i = 0; i < count && n->partmap != NULL; i++) {
        const struct node_member *m = node_member_find(n->members, n->member_count, members[i]);
        if (m != NULL && !n->member_up[m - n->members]) {
            down[n_down++] = members[i];
        }
    }
    down_longest_first(n, down, n_down);
    /* Zones and racks from the first change on: the first map is the bootstrap's placement,
     * made before any zone was known (the groups were started on it). */
    struct node_domain dom[RAFT_SERVERS_MAX];
    members_domains(n, members, count, dom);
    const struct node_placement *cur = n->partmap;
    uint32_t rf = partmap_replication_factor(n);
    /* The moves under way: recorded (where each started) and not settled yet. Those of a
     * partition the map places on a member seen down take no room: such a move may wait for
     * that member for long (it never settles while a replica cannot vote), and counting it
     * held every other move back, a removed member's too, for good (simulator seed 39 --nodes
     * 5 --partitions 8 --rf 3: two members lost, the partitions listing one of them never
     * settled, and the other's replicas never moved off it). */
    struct node_placement *origin = hy_xcalloc(parts, sizeof(*origin));
    uint8_t *settled = hy_xcalloc(parts, 1), *moving = hy_xcalloc(parts, 1);
    uint64_t under_way = 0;
    if (cur != NULL) {
        moves_load(n, origin, parts);
        partitions_settled(n, cur, parts, settled);
        for (uint32_t p = 0; p < parts; p++) {
            moving[p] = origin[p].count > 0 && !settled[p];
            int waits_for_down = 0;
            for (size_t d = 0; d < n_down; d++) {
                waits_for_down |= node_placement_has(&cur[p], down[d]);
            }
            under_way += moving[p] && !waits_for_down;
        }
    }
    size_t changed = 0;
    int origin_changed = 0, cancel = cur != NULL && rebalance_state(n) == REBALANCE_CANCEL;
    if (cancel) {
        changed =
            cancel_moves(n, next, origin, settled, members, dom, count, rf, down, n_down, now_ms);
        origin_changed = 1;
    } else {
        changed = node_place_domains(next, parts, members, cur != NULL ? dom : NULL, count, rf,
                                     down, n_down);
        size_t held = 0;
        if (changed > 0 && cur != NULL) {
            /* rebalance-max-moves bounds every move a map change starts (0 as 1: a member
             * removed or replaced must not wait for ever); a move redirected takes no room. */
            uint64_t limit = HY_MAX((uint64_t)n->cfg->rebalance_max_moves, 1);
            held = node_place_limit(cur, next, parts, moving,
                                    under_way < limit ? (size_t)(limit - under_way) : 0);
            changed -= held;
            if (held > 0 && held != n->rebalance_held_moves) {
                hy_log(n->log, HY_LOG_INFO,
                       "partition map: %zu partition(s) wait to change: %llu move(s) under "
                       "way, rebalance-max-moves %lld",
                       held, (unsigned long long)under_way, (long long)n->cfg->rebalance_max_moves);
            }
        }
        n->rebalance_held_moves = held;
        if (changed == 0 && held == 0 && cur != NULL) {
            changed = rebalance_step(n, next, members, dom, count, down, n_down, under_way) >= 0;
        }
        if (cur != NULL) {
            origin_changed = node_moves_note(origin, cur, next, parts, settled);
        }
    }
    if (changed > 0 || cur == NULL || origin_changed) {
        struct hy_buf value, moves, entry;
        hy_buf_init(&value);
        hy_buf_init(&moves);
        hy_buf_init(&entry);
        node_placement_encode(next, parts, &value);
        node_placement_encode(origin, parts, &moves);
        /* The map, the record of moves and (a cancel carried out) the paused state, in one
         * entry: a new metadata leader finds them consistent. */
        struct store_arg args[6];
        uint32_t argc = 0;
        if (changed > 0 || cur == NULL) {
            args[argc++] = (struct store_arg){(const uint8_t *)PARTMAP_KEY, strlen(PARTMAP_KEY)};
            args[argc++] = (struct store_arg){value.data, value.len};
        }
        if (origin_changed) {
            args[argc++] =
                (struct store_arg){(const uint8_t *)PARTMAP_MOVES_KEY, strlen(PARTMAP_MOVES_KEY)};
            args[argc++] = (struct store_arg){moves.data, moves.len};
        }
        if (cancel) {
            args[argc++] = (struct store_arg){(const uint8_t *)PARTMAP_REBALANCE_KEY,
                                              strlen(PARTMAP_REBALANCE_KEY)};
            args[argc++] = (struct store_arg){(const uint8_t *)"paused", 6};
        }
        struct store_entry e = {
            .op = STORE_OP_MSET, .time_ms = now_ms, .expire_at_ms = -1, .argc = argc, .argv = args};
        store_entry_encode(&e, &entry);
        node_propose_internal(meta, &entry);
        if (changed > 0 || cur == NULL) {
            hy_log(n->log, HY_LOG_INFO,
                   "partition map: %zu partition(s) change, %zu member(s), replication-factor "
                   "%lld",
                   changed, count, (long long)rf);
        }
        hy_buf_free(&value);
        hy_buf_free(&moves);
        hy_buf_free(&entry);
    }
    hy_free(origin);
    hy_free(settled);
    hy_free(moving);
    hy_free(next);
}

const struct node_placement *partmap_of(const struct hy_node *n, const struct node_group *g)
{
    if (n->partmap == NULL || g == n->meta || g->id == 0 || g->id > parts_of(n)) {
        return NULL;
    }
    return &n->partmap[g->id - 1];
}

int node_group_raft_view(const struct node_group *g)
{
    const struct hy_node *n = g->node;
    const struct node_placement *pl = partmap_of(n, g);
    return pl == NULL ? node_group_has(g, g->raft.cfg.id) || g == n->meta || n->group_count == 1
                      : node_placement_has(pl, g->raft.cfg.id) && node_group_has(g, g->raft.cfg.id);
}

int partmap_group_settled(const struct node_group *g)
{
    const struct hy_node *n = g->node;
    const struct node_placement *pl = partmap_of(n, g);
    return pl != NULL &&
           (node_group_raft_view(g) ? group_settled(n, g, pl) : g->settled_epoch == pl->epoch);
}

int partmap_holds_all(const struct hy_node *n)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    for (size_t p = 0; n->partmap != NULL && p < parts; p++) {
        if (!node_group_raft_view(groups[p])) {
            return 0;
        }
    }
    return 1;
}

int partmap_everyone_holds_all(const struct hy_node *n)
{
    uint32_t parts = parts_of(n);
    if (n->partmap == NULL) {
        return 1;
    }
    raft_id members[RAFT_SERVERS_MAX];
    size_t count = placement_members(n, members);
    for (uint32_t p = 0; p < parts; p++) {
        for (size_t i = 0; i < count; i++) {
            if (!node_placement_has(&n->partmap[p], members[i])) {
                return 0;
            }
        }
    }
    return 1;
}

int partmap_boot_servers(struct hy_node *n, const struct node_group *g, raft_id *ids)
{
    uint32_t parts = parts_of(n);
    if (parts == 0 || g == n->meta || n->boot_count <= (size_t)n->cfg->replication_factor) {
        return -1;
    }
    if (n->boot_place == NULL) {
        /* What the metadata group's first leader commits too: the same members, no map. */
        raft_id members[RAFT_SERVERS_MAX];
        for (size_t i = 0; i < n->boot_count; i++) {
            members[i] = n->boot[i].id;
        }
        n->boot_place = hy_xcalloc(parts, sizeof(*n->boot_place));
        node_place(n->boot_place, parts, members, n->boot_count,
                   (uint32_t)n->cfg->replication_factor, NULL, 0);
    }
    const struct node_placement *pl = &n->boot_place[g->id - 1];
    memcpy(ids, pl->ids, pl->count * sizeof(*ids));
    return (int)pl->count;
}

static int member_index_of(const struct hy_node *n, raft_id id)
{
    const struct node_member *m = node_member_find(n->members, n->member_count, id);
    return m != NULL ? (int)(m - n->members) : -1;
}

const struct node_member *partmap_leader_member(const struct node_group *g)
{
    const struct hy_node *n = g->node;
    const struct node_placement *pl = partmap_of(n, g);
    if (node_group_raft_view(g) || pl == NULL) {
        return replica_raft_leader_member(g);
    }
    /* This node is never the answer: the map may name it a replica before it holds the
     * group (it is being added), and a request it "forwarded" to itself would be answered
     * -MOVED to itself, even one whose first copy went to a leader that then died (seed
     * 1873 --nodes 5 --partitions 8 --rf 3: a SET applied, its client told MOVED). */
    raft_id self = g->raft.cfg.id;
    if (g->leader_hint != RAFT_NONE && g->leader_hint != self &&
        (g->leader_hint_vouched || node_placement_has(pl, g->leader_hint))) {
        int i = member_index_of(n, g->leader_hint);
        if (i >= 0 && n->member_up[i]) {
            return &n->members[i];
        }
    }
    /* No hint, or its node is down: a live replica; one that does not lead answers -MOVED
     * to the leader. */
    for (uint32_t k = 0; k < pl->count; k++) {
        int i = member_index_of(n, pl->ids[k]);
        if (pl->ids[k] != self && i >= 0 && n->member_up[i]) {
            return &n->members[i];
        }
    }
    return NULL;
}

void partmap_note_moved(struct node_group *g, raft_id from, const uint8_t *reply, size_t len)
{
    struct hy_node *n = g->node;
    /* "-MOVED <slot> <host>:<port>\r\n" */
    char text[NODE_MEMBER_HOST_MAX + 40];
    size_t k = 0;
    while (k < len && k + 1 < sizeof(text) && reply[k] != '\r') {
        text[k] = (char)reply[k];
        k++;
    }
    text[k] = '\0';
    const char *sp = strrchr(text, ' ');
    const char *colon = strrchr(text, ':');
    raft_id hint = RAFT_NONE;
    if (sp != NULL && colon != NULL && colon > sp) {
        long port = strtol(colon + 1, NULL, 10);
        for (size_t i = 0; i < n->member_count; i++) {
            const struct node_member *m = &n->members[i];
            if (m->client_port == port && strlen(m->host) == (size_t)(colon - sp - 1) &&
                memcmp(m->host, sp + 1, (size_t)(colon - sp - 1)) == 0) {
                hint = m->id;
            }
        }
    }
    /* Unknown or no leader (-TRYAGAIN): the next replica is asked next time. */
    const struct node_placement *pl = partmap_of(n, g);
    if (hint == RAFT_NONE && pl != NULL && pl->count > 1) {
        uint32_t at = 0;
        while (at < pl->count && pl->ids[at] != g->leader_hint) {
            at++;
        }
        hint = pl->ids[at < pl->count ? (at + 1) % pl->count : 1];
    }
    g->leader_hint = hint;
    node_note_activity(n);
    /* A replica of the map names the leader of its own Raft view (or what it was told by
     * one): the leader may be the source of a move under way, outside the map, and is
     * followed there. Found by the whole-node simulator (seed 18 --nodes 5 --partitions 8
     * --rf 3 --replace-after 1500 --snapshot-bandwidth 512, with followers' acknowledgements
     * coalesced): while a new replica waited 8 s for its paced snapshot, the leader was the
     * move's source; the hint it named was dropped for the first live replica of the map,
     * which answered -MOVED to the source again, and the members not holding the partition
     * (the new replica among them, without a Raft view yet) bounced their writes between
     * replicas until request-timeout-ms, for the whole move. A member outside the map is
     * not believed: two copies moved away could name each other. */
    g->leader_hint_vouched = pl != NULL && node_placement_has(pl, from);
}

void cmd_hy_leaders(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct hy_buf lines;
    hy_buf_init(&lines);
    for (size_t i = 0; i < n->group_count; i++) {
        const struct node_group *g = n->groups[i];
        const struct node_member *m =
            node_group_raft_view(g) ? replica_raft_leader_member(g) : NULL;
        if (m != NULL && g != n->meta) {
            const struct node_placement *pl = partmap_of(n, g);
            /* Settled only once that configuration is committed: a later leader holds it, so
             * a copy it leaves out may drop its keyspace (replica.c "Parked copies"). */
            int settled =
                pl != NULL && group_settled(n, g, pl) && raft_membership_committed(&g->raft);
            hy_buf_printf(&lines, "%u %llu %s %llu %llu\n", g->id,
                          (unsigned long long)raft_term(&g->raft), m->name,
                          settled ? (unsigned long long)pl->epoch : 0,
                          settled ? (unsigned long long)g->raft.membership_index : 0);
        }
    }
    if (n->draining || n->drain_handoff) {
        /* After the leaders: a node of before stops reading at a line that does not parse,
         * and the metadata leader's balancer hands no leadership to a node that drains. */
        hy_buf_append_str(&lines, "draining\n");
    }
    /* Last (a node of before stops at the first): the copies here that vote, which
     * FORCE-QUORUM elsewhere counts for a voter its map no longer places here (member.c). */
    for (size_t i = 0; i < n->group_count; i++) {
        const struct node_group *g = n->groups[i];
        if (g != n->meta && raft_membership_is_voter(raft_membership(&g->raft), g->raft.cfg.id)) {
            hy_buf_printf(&lines, "voter %u\n", g->id);
        }
    }
    resp_write_bulk(&x->w, lines.data, lines.len);
    hy_buf_free(&lines);
}

const char *partmap_leaders_body(const uint8_t *reply, size_t len)
{
    /* "$<len>\r\n<lines>\r\n"; anything else (an error from an older node) has none. */
    const char *s = (const char *)reply;
    const char *nl = len > 1 && s[0] == '$' ? memchr(s, '\n', len) : NULL;
    return nl != NULL ? nl + 1 : NULL;
}

int partmap_leaders_next(const char **p, const char *end, struct partmap_leaders_line *out)
{
    if (*p >= end) {
        return PARTMAP_LEADERS_END;
    }
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (nl == NULL) {
        return PARTMAP_LEADERS_END;
    }
    /* group, term, name, epoch, configuration index: at most 5 + 3 * 20 digits, 4 spaces */
    char line[NODE_MEMBER_NAME_MAX + 72];
    size_t len = (size_t)(nl - *p);
    if (len >= sizeof(line)) {
        return PARTMAP_LEADERS_END;
    }
    memcpy(line, *p, len);
    line[len] = '\0';
    *p = nl + 1;
    if (len == 8 && memcmp(line, "draining", 8) == 0) { /* not "draining\0...": fuzz_leaders */
        return PARTMAP_LEADERS_DRAINING;
    }
    if (len > 6 && memcmp(line, "voter ", 6) == 0) {
        char *num_end;
        unsigned long g = strtoul(line + 6, &num_end, 10);
        /* to the line's end: not "voter 429\0..." (fuzz_leaders) */
        if (line[6] < '0' || line[6] > '9' || num_end != line + len || g > UINT32_MAX) {
            return PARTMAP_LEADERS_END;
        }
        out->group = (uint32_t)g;
        return PARTMAP_LEADERS_VOTER;
    }
    unsigned long long t = 0, e = 0, ci = 0;
    unsigned int id = 0;
    char fmt[40];
    snprintf(fmt, sizeof(fmt), "%%u %%llu %%%ds %%llu %%llu", NODE_MEMBER_NAME_MAX);
    out->name[0] = '\0';
    int got = sscanf(line, fmt, &id, &t, out->name, &e, &ci);
    out->group = id;
    out->term = t;
    out->settled = got >= 4 ? e : 0;
    out->cfg_index = got == 5 && out->settled != 0 ? ci : 0;
    /* A line that does not parse ends the answer: the rest is ignored (a hint, never a fact). */
    return got >= 3 ? PARTMAP_LEADERS_LINE : PARTMAP_LEADERS_END;
}

void partmap_note_leaders(struct hy_node *n, const char *from, const uint8_t *reply, size_t len,
                          uint64_t now_ms)
{
    const char *body = partmap_leaders_body(reply, len), *end = (const char *)reply + len;
    struct partmap_leaders_line l;
    int item;
    raft_id member = node_member_id(from);
    if (body != NULL) {
        /* Its copies that vote are named last: until then, none (replica_note_holder). */
        for (size_t i = 0; i < n->group_count; i++) {
            if (n->groups[i] != n->meta) {
                replica_note_holder(n->groups[i], member, 0, now_ms);
            }
        }
    }
    while (body != NULL && (item = partmap_leaders_next(&body, end, &l)) != PARTMAP_LEADERS_END) {
        if (item == PARTMAP_LEADERS_DRAINING) {
            node_balance_note_draining(n, member, now_ms);
            continue;
        }
        if (item == PARTMAP_LEADERS_VOTER) {
            struct node_group *g = node_group_get(n, l.group);
            if (g != NULL && g != n->meta) {
                replica_note_holder(g, member, 1, now_ms);
            }
            continue;
        }
        struct node_group *g = node_group_get(n, l.group);
        if (g == NULL || g == n->meta || node_group_raft_view(g) || l.term < g->leader_hint_term) {
            continue;
        }
        if (g->settled_epoch != l.settled) {
            node_note_activity(n); /* partmap_maintain reads it */
        }
        g->settled_epoch = l.settled;
        g->settled_cfg_index = l.cfg_index;
        for (size_t i = 0; i < n->member_count; i++) {
            if (strcmp(n->members[i].name, l.name) == 0) {
                g->leader_hint = n->members[i].id;
                g->leader_hint_term = l.term;
                g->leader_hint_vouched = 1; /* only replicas answer for a group */
            }
        }
    }
}

void partmap_refresh_hints(struct hy_node *n, uint64_t now_ms)
{
    if (n->group_count == 1 || now_ms < n->hints_probe_ms) {
        return;
    }
    n->hints_probe_ms = now_ms + (uint64_t)n->cfg->election_timeout_ms;
    if (partmap_holds_all(n) && (!replica_is_leader(n->meta) || partmap_everyone_holds_all(n))) {
        /* Looked at once per election timeout too: it walks every partition. The metadata
         * leader asks even when it holds every partition (the only member of its zone) while
         * others do not: its balancer needs to know who drains. */
        return;
    }
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (m->id != n->meta->raft.cfg.id && n->member_up[i] && m->peer_port != 0 &&
            m->role != STORE_MEMBER_REMOVED) {
            proxy_probe(n, m, NODE_PROBE_LEADERS, now_ms);
        }
    }
}

uint32_t partmap_voters(const struct node_group *g, uint32_t *reachable)
{
    const struct hy_node *n = g->node;
    const struct node_placement *pl = partmap_of(n, g);
    uint32_t have = 0;
    for (uint32_t k = 0; pl != NULL && k < pl->count; k++) {
        int i = member_index_of(n, pl->ids[k]);
        have += i >= 0 && n->member_up[i];
    }
    *reachable = have;
    return pl != NULL ? pl->count : 0;
}
