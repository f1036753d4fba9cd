/*
 * cmd_cluster.c - CLUSTER INFO|MYID|NODES|SLOTS|SHARDS|KEYSLOT in Redis Cluster's formats, so
 * cluster-aware clients find the leader of each slot range and route to it directly. Each
 * partition is one shard (its slot range, its leader as master, the other members of its
 * group as replicas); with one partition, one shard holds all 16384 slots. A partition this
 * node holds no replica of (partmap.c) shows the replicas of the partition map and the leader
 * this node last learnt of (or a replica, which redirects with -MOVED).
 */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc.h"
#include "node/node_internal.h"

/* Redis Cluster node ids are 40 hex digits; ours are the 64-bit Raft id, zero-padded. */
static void member_node_id(const struct node_member *m, char out[41])
{
    snprintf(out, 41, "%016llx000000000000000000000000", (unsigned long long)m->id);
}

static const struct node_member *self_member(const struct hy_node *n)
{
    return node_member_find(n->members, n->member_count, n->meta->raft.cfg.id);
}

/* Configured members (voters and learners); the address book may know more. */
static size_t configured_count(const struct hy_node *n)
{
    size_t count = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        count += member_in_config(n, n->members[i].id);
    }
    return count;
}

void node_partition_slots(uint32_t part, uint32_t parts, uint32_t *lo, uint32_t *hi)
{
    *lo = (uint32_t)(((uint64_t)part * HY_SLOT_COUNT + parts - 1) / parts);
    *hi = (uint32_t)(((uint64_t)(part + 1) * HY_SLOT_COUNT + parts - 1) / parts) - 1;
}

/* Whether member id holds a replica of g: in g's configuration where this node holds g, else
 * in the partition map (partmap.c). */
static int holds(const struct node_group *g, raft_id id)
{
    const struct node_placement *pl = partmap_of(g->node, g);
    if (pl != NULL && !node_group_raft_view(g)) {
        return node_placement_has(pl, id);
    }
    return node_group_has(g, id);
}

/* The member shown as g's master: its leader as this node knows it (for a partition it does
 * not hold: the member it last learnt leads it, or a replica that redirects). On a node
 * removed from the cluster, which hears no leader of the groups it still has a stale copy of,
 * a member that remains (it redirects with -MOVED): cluster clients started on the removed
 * node then find every slot served. NULL when none. */
static const struct node_member *master_of(const struct node_group *g)
{
    const struct node_member *m = partmap_leader_member(g);
    if (m == NULL && member_removed_here(g->node)) {
        return member_after_removal(g->node, g);
    }
    return m;
}

/* g's master's id (master_of), RAFT_NONE when none. */
static raft_id leader_of(const struct node_group *g)
{
    const struct node_member *m = master_of(g);
    return m != NULL ? m->id : RAFT_NONE;
}

/* Partitions with a leader known here, and slots they hold. */
static void served(const struct hy_node *n, uint32_t *parts_ok, uint32_t *slots_ok)
{
    struct node_group *const *groups;
    uint32_t parts = (uint32_t)node_data_groups(n, &groups);
    *parts_ok = *slots_ok = 0;
    for (uint32_t p = 0; p < parts; p++) {
        if (leader_of(groups[p]) != RAFT_NONE) {
            uint32_t lo, hi;
            node_partition_slots(p, parts, &lo, &hi);
            *parts_ok += 1;
            *slots_ok += hi - lo + 1;
        }
    }
}

static void cluster_info(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_group *const *groups;
    uint32_t parts = (uint32_t)node_data_groups(n, &groups), parts_ok, slots_ok;
    served(n, &parts_ok, &slots_ok);
    int ok = slots_ok == HY_SLOT_COUNT;
    struct hy_buf b;
    hy_buf_init(&b);
    hy_buf_printf(&b,
                  "cluster_state:%s\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%u\r\n"
                  "cluster_slots_pfail:0\r\ncluster_slots_fail:%u\r\ncluster_known_nodes:%zu\r\n"
                  "cluster_size:%u\r\ncluster_current_epoch:%llu\r\ncluster_my_epoch:%llu\r\n"
                  "halyard_partitions:%u\r\nhalyard_partitions_with_leader:%u\r\n"
                  "halyard_leader_known:%d\r\n",
                  ok ? "ok" : "fail", HY_SLOT_COUNT, slots_ok, HY_SLOT_COUNT - slots_ok,
                  configured_count(n), parts, (unsigned long long)raft_term(&n->meta->raft),
                  (unsigned long long)raft_term(&n->meta->raft), parts, parts_ok,
                  raft_leader(&n->meta->raft) != RAFT_NONE);
    /* The region (this cluster's name) and the order in which clients fail over between
     * regions: libhalyard orders its cluster list by it (docs/client.md). */
    hy_buf_printf(&b, "halyard_region:%s\r\nhalyard_region_failover_priority:%s\r\n",
                  n->cfg->cluster_name, n->cfg->region_failover_priority);
    resp_write_verbatim(&x->w, "txt", b.data, b.len);
    hy_buf_free(&b);
}

/* CLUSTER NODES: a member that leads partitions is a master holding their slot ranges; one
 * that leads none is shown as a replica of the first master (Redis Cluster's format has no
 * way to say "replica of several masters": docs/partitioning.md). */
static void cluster_nodes(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_group *const *groups;
    uint32_t parts = (uint32_t)node_data_groups(n, &groups);
    const struct node_member *first_master = NULL;
    for (uint32_t p = 0; p < parts && first_master == NULL; p++) {
        first_master = master_of(groups[p]);
    }
    char master_id[41] = "-";
    if (first_master != NULL) {
        member_node_id(first_master, master_id);
    }
    struct hy_buf b;
    hy_buf_init(&b);
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (!member_in_config(n, m->id)) {
            continue;
        }
        char id[41];
        member_node_id(m, id);
        struct hy_buf ranges;
        hy_buf_init(&ranges);
        for (uint32_t p = 0; p < parts; p++) {
            if (leader_of(groups[p]) == m->id) {
                uint32_t lo, hi;
                node_partition_slots(p, parts, &lo, &hi);
                hy_buf_printf(&ranges, lo == hi ? " %u" : " %u-%u", lo, hi);
            }
        }
        int is_master = ranges.len > 0;
        int myself = m->id == n->meta->raft.cfg.id;
        /* Redis's flags for a failing node: fail? while gossip suspects it (PFAIL), fail once
         * gossip declared it dead (FAIL). */
        const char *gs = myself ? NULL : node_gossip_state(n, m->name);
        const char *fail = gs == NULL                   ? ""
                           : strcmp(gs, "suspect") == 0 ? ",fail?"
                           : strcmp(gs, "dead") == 0    ? ",fail"
                                                        : "";
        size_t idx = (size_t)(m - n->members);
        int linked = myself || n->member_up[idx];
        hy_buf_printf(&b, "%s %s:%u@%u %s%s%s %s 0 0 %llu %s%.*s\n", id, m->host, m->client_port,
                      m->peer_port, myself ? "myself," : "", is_master ? "master" : "slave", fail,
                      is_master ? "-" : master_id, (unsigned long long)raft_term(&n->meta->raft),
                      linked ? "connected" : "disconnected", (int)ranges.len,
                      (const char *)ranges.data);
        hy_buf_free(&ranges);
    }
    resp_write_verbatim(&x->w, "txt", b.data, b.len);
    hy_buf_free(&b);
}

static void write_slot_node(struct resp_writer *w, const struct node_member *m)
{
    char id[41];
    member_node_id(m, id);
    resp_write_array(w, 3);
    resp_write_bulk_str(w, m->host);
    resp_write_int(w, m->client_port);
    resp_write_bulk_str(w, id);
}

/* Members of g's configuration besides `leader` that this node has an address for. */
static size_t group_replicas(const struct hy_node *n, const struct node_group *g,
                             const struct node_member *leader)
{
    size_t count = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        count += &n->members[i] != leader && holds(g, n->members[i].id);
    }
    return count;
}

/* CLUSTER SLOTS: per partition with a known leader, its range, the leader, then the others. */
static void cluster_slots(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_group *const *groups;
    uint32_t parts = (uint32_t)node_data_groups(n, &groups), with_leader = 0;
    for (uint32_t p = 0; p < parts; p++) {
        with_leader += master_of(groups[p]) != NULL;
    }
    resp_write_array(&x->w, with_leader); /* no leader: those slots are not served now */
    for (uint32_t p = 0; p < parts; p++) {
        const struct node_member *leader = master_of(groups[p]);
        if (leader == NULL) {
            continue;
        }
        uint32_t lo, hi;
        node_partition_slots(p, parts, &lo, &hi);
        resp_write_array(&x->w, 3 + group_replicas(n, groups[p], leader));
        resp_write_int(&x->w, lo);
        resp_write_int(&x->w, hi);
        write_slot_node(&x->w, leader);
        for (size_t i = 0; i < n->member_count; i++) {
            if (&n->members[i] != leader && holds(groups[p], n->members[i].id)) {
                write_slot_node(&x->w, &n->members[i]);
            }
        }
    }
}

static void write_shard_node(struct cmd_ctx *x, const struct node_group *g,
                             const struct node_member *m)
{
    char id[41];
    member_node_id(m, id);
    int myself = m->id == g->raft.cfg.id;
    resp_write_map(&x->w, 7);
    resp_write_bulk_str(&x->w, "id");
    resp_write_bulk_str(&x->w, id);
    resp_write_bulk_str(&x->w, "port");
    resp_write_int(&x->w, m->client_port);
    resp_write_bulk_str(&x->w, "ip");
    resp_write_bulk_str(&x->w, m->host);
    resp_write_bulk_str(&x->w, "endpoint");
    resp_write_bulk_str(&x->w, m->host);
    resp_write_bulk_str(&x->w, "role");
    resp_write_bulk_str(&x->w, leader_of(g) == m->id ? "master" : "replica");
    resp_write_bulk_str(&x->w, "replication-offset");
    resp_write_int(&x->w, myself ? (int64_t)g->applied : 0);
    resp_write_bulk_str(&x->w, "health");
    resp_write_bulk_str(&x->w, leader_of(g) != RAFT_NONE ? "online" : "fail");
}

/* CLUSTER SHARDS: one shard per partition. */
static void cluster_shards(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_group *const *groups;
    uint32_t parts = (uint32_t)node_data_groups(n, &groups);
    resp_write_array(&x->w, parts);
    for (uint32_t p = 0; p < parts; p++) {
        uint32_t lo, hi;
        node_partition_slots(p, parts, &lo, &hi);
        resp_write_map(&x->w, 2);
        resp_write_bulk_str(&x->w, "slots");
        resp_write_array(&x->w, 2);
        resp_write_int(&x->w, lo);
        resp_write_int(&x->w, hi);
        resp_write_bulk_str(&x->w, "nodes");
        resp_write_array(&x->w, group_replicas(n, groups[p], NULL));
        for (size_t i = 0; i < n->member_count; i++) {
            if (holds(groups[p], n->members[i].id)) {
                write_shard_node(x, groups[p], &n->members[i]);
            }
        }
    }
}

void cmd_cluster(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "INFO") && x->argc == 2) {
        cluster_info(x);
    } else if (node_arg_is(sub, "MYID") && x->argc == 2) {
        char id[41];
        member_node_id(self_member(x->node), id);
        resp_write_bulk_str(&x->w, id);
    } else if (node_arg_is(sub, "NODES") && x->argc == 2) {
        cluster_nodes(x);
    } else if (node_arg_is(sub, "SLOTS") && x->argc == 2) {
        cluster_slots(x);
    } else if (node_arg_is(sub, "SHARDS") && x->argc == 2) {
        cluster_shards(x);
    } else if (node_arg_is(sub, "KEYSLOT") && x->argc == 3) {
        resp_write_int(&x->w, hy_key_slot(x->argv[2].ptr, x->argv[2].len));
    } else if (node_arg_is(sub, "HELP") && x->argc == 2) {
        static const char *const lines[] = {
            "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MYID",
            "    Return the node id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
            "HELP",
            "    Print this help.",
            "(Membership and placement are halyard's own: HALYARD MEMBERS, halyctl cluster.)"};
        node_reply_help(x, lines, HY_ARRAY_LEN(lines));
    } else {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try CLUSTER HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}
