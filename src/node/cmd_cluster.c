/*
 * cmd_cluster.c - CLUSTER INFO|MYID|NODES|SLOTS|SHARDS|KEYSLOT in Redis Cluster's formats, so
 * cluster-aware clients find the leader of each slot range and route to it directly. Today
 * one partition holds all 16384 slots (docs/architecture.md "Not built yet"); its leader is the
 * shard's master.
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

static int member_is_leader(const struct hy_node *n, const struct node_member *m)
{
    return raft_leader(&n->meta->raft) == m->id;
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

static void cluster_info(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    int ok = raft_leader(&n->meta->raft) != RAFT_NONE;
    struct hy_buf b;
    hy_buf_init(&b);
    hy_buf_printf(&b,
                  "cluster_state:%s\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%d\r\n"
                  "cluster_slots_pfail:0\r\ncluster_slots_fail:%d\r\ncluster_known_nodes:%zu\r\n"
                  "cluster_size:1\r\ncluster_current_epoch:%llu\r\ncluster_my_epoch:%llu\r\n"
                  "halyard_partitions:1\r\nhalyard_leader_known:%d\r\n",
                  ok ? "ok" : "fail", HY_SLOT_COUNT, ok ? HY_SLOT_COUNT : 0, ok ? 0 : HY_SLOT_COUNT,
                  configured_count(n), (unsigned long long)raft_term(&n->meta->raft),
                  (unsigned long long)raft_term(&n->meta->raft), ok);
    resp_write_verbatim(&x->w, "txt", b.data, b.len);
    hy_buf_free(&b);
}

static void cluster_nodes(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    const struct node_member *leader = replica_leader_member(n->meta);
    char leader_id[41] = "-";
    if (leader != NULL) {
        member_node_id(leader, leader_id);
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
        int is_leader = member_is_leader(n, m);
        int myself = m->id == n->meta->raft.cfg.id;
        hy_buf_printf(&b, "%s %s:%u@%u %s%s %s 0 0 %llu connected%s\n", id, m->host, m->client_port,
                      m->peer_port, myself ? "myself," : "", is_leader ? "master" : "slave",
                      is_leader ? "-" : leader_id, (unsigned long long)raft_term(&n->meta->raft),
                      is_leader ? " 0-16383" : "");
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

/* CLUSTER SLOTS: one range, the leader first, then the other members. */
static void cluster_slots(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    const struct node_member *leader = replica_leader_member(n->meta);
    if (leader == NULL) {
        resp_write_array(&x->w, 0); /* no leader: no slot is served right now */
        return;
    }
    resp_write_array(&x->w, 1);
    resp_write_array(&x->w, 2 + configured_count(n));
    resp_write_int(&x->w, 0);
    resp_write_int(&x->w, HY_SLOT_COUNT - 1);
    write_slot_node(&x->w, leader);
    for (size_t i = 0; i < n->member_count; i++) {
        if (&n->members[i] != leader && member_in_config(n, n->members[i].id)) {
            write_slot_node(&x->w, &n->members[i]);
        }
    }
}

static void write_shard_node(struct cmd_ctx *x, const struct node_member *m)
{
    struct hy_node *n = x->node;
    char id[41];
    member_node_id(m, id);
    int myself = m->id == n->meta->raft.cfg.id;
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
    resp_write_bulk_str(&x->w, member_is_leader(n, m) ? "master" : "replica");
    resp_write_bulk_str(&x->w, "replication-offset");
    resp_write_int(&x->w, myself ? (int64_t)n->meta->applied : 0);
    resp_write_bulk_str(&x->w, "health");
    resp_write_bulk_str(&x->w, raft_leader(&n->meta->raft) != RAFT_NONE ? "online" : "fail");
}

static void cluster_shards(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    resp_write_array(&x->w, 1);
    resp_write_map(&x->w, 2);
    resp_write_bulk_str(&x->w, "slots");
    resp_write_array(&x->w, 2);
    resp_write_int(&x->w, 0);
    resp_write_int(&x->w, HY_SLOT_COUNT - 1);
    resp_write_bulk_str(&x->w, "nodes");
    resp_write_array(&x->w, configured_count(n));
    for (size_t i = 0; i < n->member_count; i++) {
        if (member_in_config(n, n->members[i].id)) {
            write_shard_node(x, &n->members[i]);
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
    } else {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try CLUSTER HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}
