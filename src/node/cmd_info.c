/*
 * cmd_info.c - INFO, in Redis's "field:value" sections so existing tools parse it.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/version.h"
#include "common/strutil.h"
#include "node/node_internal.h"

static void human_bytes(char *out, size_t cap, uint64_t n)
{
    const char *units = "BKMGT";
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(out, cap, "%lluB", (unsigned long long)n);
    } else {
        snprintf(out, cap, "%.2f%c", v, units[u]);
    }
}

static void info_server(struct cmd_ctx *x, struct hy_buf *b)
{
    const struct hy_node *n = x->node;
    uint64_t up = (x->now_ms - n->start_ms) / 1000;
    hy_buf_printf(b,
                  "# Server\r\nredis_version:" HY_REDIS_COMPAT_VERSION
                  "\r\nhalyard_version:" HY_VERSION "\r\n"
                  "redis_mode:standalone\r\nos:Linux\r\narch_bits:64\r\nmultiplexing_api:libuv\r\n"
                  "process_id:%ld\r\nrun_id:%016llx%016llx%08llx\r\ntcp_port:%lld\r\n"
                  "uptime_in_seconds:%llu\r\nuptime_in_days:%llu\r\nhz:%lld\r\n"
                  "executable:%s\r\nconfig_file:%s\r\n",
                  n->cfg->pid, (unsigned long long)n->start_ms, (unsigned long long)n->cfg->pid,
                  (unsigned long long)(n->start_ms & 0xffffffff), (long long)n->cfg->port,
                  (unsigned long long)up, (unsigned long long)(up / 86400), (long long)n->cfg->hz,
                  n->cfg->executable, n->cfg->config_file);
}

static void info_clients(struct cmd_ctx *x, struct hy_buf *b)
{
    size_t blocked = 0, pubsub = 0;
    for (const struct node_client *c = x->node->clients; c != NULL; c = c->next) {
        blocked += c->block_state != NODE_BLOCK_NONE; /* BLPOP & co. waiting or popping */
        pubsub += node_pubsub_count(c) > 0;
    }
    hy_buf_printf(b,
                  "# Clients\r\nconnected_clients:%zu\r\nmaxclients:%lld\r\nblocked_clients:%zu\r\n"
                  "pubsub_clients:%zu\r\n",
                  x->node->client_count, (long long)x->node->cfg->maxclients, blocked, pubsub);
}

static void info_memory(struct cmd_ctx *x, struct hy_buf *b)
{
    const struct hy_node *n = x->node;
    size_t used = hy_alloc_used_bytes(), dataset = store_used_bytes(n->meta->store);
    char used_h[32], max_h[32];
    human_bytes(used_h, sizeof(used_h), used);
    human_bytes(max_h, sizeof(max_h), (uint64_t)n->cfg->maxmemory);
    char policy[32];
    for (size_t i = 0; i < config_count(); i++) {
        if (strcmp(config_name(i), "maxmemory-policy") == 0) {
            config_get(n->cfg, i, policy, sizeof(policy));
        }
    }
    hy_buf_printf(b,
                  "# Memory\r\nused_memory:%zu\r\nused_memory_human:%s\r\n"
                  "used_memory_dataset:%zu\r\nmaxmemory:%lld\r\nmaxmemory_human:%s\r\n"
                  "maxmemory_policy:%s\r\nmem_allocator:libc\r\n",
                  used, used_h, dataset, (long long)n->cfg->maxmemory, max_h, policy);
}

static void info_stats(struct cmd_ctx *x, struct hy_buf *b)
{
    const struct node_stats *s = &x->node->stats;
    hy_buf_printf(b,
                  "# Stats\r\ntotal_connections_received:%llu\r\n"
                  "total_commands_processed:%llu\r\ninstantaneous_ops_per_sec:%llu\r\n"
                  "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
                  "rejected_connections:%llu\r\nexpired_keys:%llu\r\nevicted_keys:%llu\r\n"
                  "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\n"
                  "forwards_sent:%llu\r\nforwards_rerun:%llu\r\nforwards_resent:%llu\r\n"
                  "forwards_unknown:%llu\r\n",
                  (unsigned long long)s->connections_received,
                  (unsigned long long)s->commands_processed, (unsigned long long)s->ops_per_sec,
                  (unsigned long long)s->net_input_bytes, (unsigned long long)s->net_output_bytes,
                  (unsigned long long)s->rejected_connections, (unsigned long long)s->expired_keys,
                  (unsigned long long)s->evicted_keys, (unsigned long long)s->keyspace_hits,
                  (unsigned long long)s->keyspace_misses, (unsigned long long)s->forwards_sent,
                  (unsigned long long)s->forwards_rerun, (unsigned long long)s->forwards_resent,
                  (unsigned long long)s->forwards_unknown);
}

static void info_replication(struct cmd_ctx *x, struct hy_buf *b)
{
    /* Redis's role names for tools (master = Raft leader); the Raft facts follow. */
    const struct raft *r = &x->node->meta->raft;
    int leader = raft_role(r) == RAFT_LEADER;
    /* The leader by the name operators gave it (empty while none is known). */
    const char *leader_name =
        raft_leader(r) != RAFT_NONE ? node_member_name(x->node, raft_leader(r)) : NULL;
    hy_buf_printf(
        b,
        "# Replication\r\nrole:%s\r\nconnected_slaves:0\r\nmaster_repl_offset:%llu\r\n"
        "raft_role:%s\r\nraft_term:%llu\r\nraft_leader:%s\r\n"
        "raft_commit_index:%llu\r\nraft_applied_index:%llu\r\n"
        "raft_last_index:%llu\r\nraft_snapshot_index:%llu\r\nraft_read_mode:%s\r\n",
        leader ? "master" : "slave", (unsigned long long)x->node->meta->applied,
        raft_role_name(raft_role(r)), (unsigned long long)raft_term(r),
        leader_name ? leader_name : "", (unsigned long long)raft_commit_index(r),
        (unsigned long long)x->node->meta->applied, (unsigned long long)raft_last_index(r),
        (unsigned long long)raft_snapshot_index(r), raft_lease_enabled(r) ? "lease" : "readindex");
}

static void info_keyspace(struct cmd_ctx *x, struct hy_buf *b)
{
    size_t vol, keys = node_key_count(x->node, &vol);
    hy_buf_append_str(b, "# Keyspace\r\n");
    if (keys > 0) {
        hy_buf_printf(b, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", keys, vol);
    }
}

static void info_cluster(struct cmd_ctx *x, struct hy_buf *b)
{
    /* Every halyard node answers CLUSTER SLOTS/SHARDS, so cluster-aware clients may use it. */
    hy_buf_append_str(b, "# Cluster\r\ncluster_enabled:1\r\n");
    /* The health score the shell computed at its last publish (observe.h); -1: none yet. */
    const struct hy_node *n = x->node;
    hy_buf_printf(b, "health_score:%d\r\ncluster_health_score:%d\r\nhealth_reasons:%s\r\n",
                  n->health_score, n->cluster_health_score, n->health_reasons);
    struct node_gossip_stats gs;
    node_gossip_stats(n, &gs);
    hy_buf_printf(b, "gossip_enabled:%d\r\n", gs.on);
    if (gs.on) {
        hy_buf_printf(b,
                      "gossip_members_alive:%llu\r\ngossip_members_suspect:%llu\r\n"
                      "gossip_members_dead:%llu\r\ngossip_incarnation:%llu\r\n"
                      "gossip_local_health:%u\r\ngossip_probes:%llu\r\n"
                      "gossip_probes_failed:%llu\r\ngossip_suspicions:%llu\r\n"
                      "gossip_refutations:%llu\r\n",
                      (unsigned long long)gs.alive, (unsigned long long)gs.suspect,
                      (unsigned long long)gs.dead, (unsigned long long)gs.incarnation,
                      gs.local_health, (unsigned long long)gs.probes,
                      (unsigned long long)gs.probes_failed, (unsigned long long)gs.suspicions,
                      (unsigned long long)gs.refutations);
        for (size_t i = 0; i < n->member_count; i++) {
            struct node_gossip_view gv;
            const char *name = n->members[i].name;
            /* One line per member, as Redis's slaveN lines: key:k=v,... (clients parse it). */
            if (strcmp(name, n->cfg->node_id) != 0 && node_gossip_member(n, name, &gv)) {
                hy_buf_printf(b, "gossip_member_%s:state=%s,incarnation=%llu,phi=%.2f\r\n", name,
                              gv.state, (unsigned long long)gv.incarnation, gv.phi);
            }
        }
    }
}

typedef void (*info_section_fn)(struct cmd_ctx *x, struct hy_buf *b);

static const struct {
    const char *name;
    info_section_fn fn;
    int in_default;
} info_sections[] = {
    {"server", info_server, 1},           {"clients", info_clients, 1},
    {"memory", info_memory, 1},           {"stats", info_stats, 1},
    {"replication", info_replication, 1}, {"cluster", info_cluster, 1},
    {"keyspace", info_keyspace, 1},
};

static int info_wanted(struct cmd_ctx *x, size_t section)
{
    if (x->argc == 1) {
        return info_sections[section].in_default;
    }
    for (size_t i = 1; i < x->argc; i++) {
        if (node_arg_is(&x->argv[i], "all") || node_arg_is(&x->argv[i], "everything") ||
            node_arg_is(&x->argv[i], "default") ||
            node_arg_is(&x->argv[i], info_sections[section].name)) {
            return 1;
        }
    }
    return 0;
}

void cmd_info(struct cmd_ctx *x)
{
    struct hy_buf b;
    hy_buf_init(&b);
    for (size_t i = 0; i < HY_ARRAY_LEN(info_sections); i++) {
        if (info_wanted(x, i)) {
            if (b.len > 0) {
                hy_buf_append_str(&b, "\r\n");
            }
            info_sections[i].fn(x, &b);
        }
    }
    resp_write_verbatim(&x->w, "txt", b.data, b.len);
    hy_buf_free(&b);
}
