/*
 * cmd_info.c - INFO, in Redis's "field:value" sections so existing tools parse it.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/version.h"
#include "common/strutil.h"
#include "node/node_internal.h"

/* What a section is rendered from: when INFO gathered figures from other members' partitions
 * (scatter.c) it is rendered once they answered, without the client's command at hand. */
struct info_ctx {
    struct hy_node *node;
    uint64_t now_ms;
    const struct node_info_totals *totals; /* the cluster's keyspace and dataset */
};

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

static void info_server(const struct info_ctx *x, struct hy_buf *b)
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

static void info_clients(const struct info_ctx *x, struct hy_buf *b)
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

/* This node's figures, as Redis gives its own (used_memory is this process's allocations,
 * used_memory_dataset the stores of every replica it holds); then the cluster's: the dataset of
 * every partition once (on its leader, or this node's replica when it holds every one). */
static void info_memory(const struct info_ctx *x, struct hy_buf *b)
{
    const struct hy_node *n = x->node;
    size_t used = hy_alloc_used_bytes(), dataset = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        dataset += store_used_bytes(n->groups[i]->store);
    }
    char used_h[32], max_h[32], cluster_h[32];
    human_bytes(used_h, sizeof(used_h), used);
    human_bytes(max_h, sizeof(max_h), (uint64_t)n->cfg->maxmemory);
    char policy[32];
    for (size_t i = 0; i < config_count(); i++) {
        if (strcmp(config_name(i), "maxmemory-policy") == 0) {
            config_get(n->cfg, i, policy, sizeof(policy));
        }
    }
    /* Where the rest of used_memory goes: the Raft logs held in memory (entries not yet
     * applied everywhere) and the snapshots held for followers, every group summed. */
    struct raft_memory rm, sum = {0};
    for (size_t i = 0; i < n->group_count; i++) {
        raft_memory_get(&n->groups[i]->raft, &rm);
        sum.log_entries += rm.log_entries;
        sum.log_bytes += rm.log_bytes;
        sum.snapshot_bytes += rm.snapshot_bytes;
    }
    hy_buf_printf(b,
                  "# Memory\r\nused_memory:%zu\r\nused_memory_human:%s\r\n"
                  "used_memory_dataset:%zu\r\nused_memory_raft_log:%zu\r\n"
                  "raft_log_entries_in_memory:%zu\r\nused_memory_snapshots:%zu\r\n"
                  "maxmemory:%lld\r\nmaxmemory_human:%s\r\n"
                  "maxmemory_policy:%s\r\nmem_allocator:libc\r\n",
                  used, used_h, dataset, sum.log_bytes, sum.log_entries, sum.snapshot_bytes,
                  (long long)n->cfg->maxmemory, max_h, policy);
    /* Redis's count of cached scripts: SCRIPT LOAD reaches every partition, so the largest
     * cache among this node's replicas is the node's. */
    size_t scripts = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        scripts = HY_MAX(scripts, store_script_count(n->groups[i]->store));
    }
    hy_buf_printf(b, "number_of_cached_scripts:%zu\r\n", scripts);
    const struct node_info_totals *t = x->totals;
    human_bytes(cluster_h, sizeof(cluster_h), (uint64_t)t->dataset_bytes);
    hy_buf_printf(b,
                  "cluster_used_memory_dataset:%lld\r\ncluster_used_memory_dataset_human:%s\r\n"
                  "cluster_memory_partitions:answered=%lld,total=%lld,from=%s\r\n",
                  (long long)t->dataset_bytes, cluster_h, (long long)t->answered,
                  (long long)t->partitions, t->scattered ? "leaders" : "local");
}

static void info_stats(const struct info_ctx *x, struct hy_buf *b)
{
    const struct node_stats *s = &x->node->stats;
    hy_buf_printf(b,
                  "# Stats\r\ntotal_connections_received:%llu\r\n"
                  "total_commands_processed:%llu\r\ninstantaneous_ops_per_sec:%llu\r\n"
                  "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
                  "rejected_connections:%llu\r\nexpired_keys:%llu\r\nevicted_keys:%llu\r\n"
                  "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\n"
                  "forwards_sent:%llu\r\nforwards_rerun:%llu\r\nforwards_resent:%llu\r\n"
                  "forwards_unknown:%llu\r\nforwards_batched:%llu\r\n"
                  "total_error_replies:%llu\r\n"
                  /* Redis's MIGRATE connection cache: halyard's MIGRATE dials afresh each time. */
                  "migrate_cached_sockets:0\r\n",
                  (unsigned long long)s->connections_received,
                  (unsigned long long)s->commands_processed, (unsigned long long)s->ops_per_sec,
                  (unsigned long long)s->net_input_bytes, (unsigned long long)s->net_output_bytes,
                  (unsigned long long)s->rejected_connections, (unsigned long long)s->expired_keys,
                  (unsigned long long)s->evicted_keys, (unsigned long long)s->keyspace_hits,
                  (unsigned long long)s->keyspace_misses, (unsigned long long)s->forwards_sent,
                  (unsigned long long)s->forwards_rerun, (unsigned long long)s->forwards_resent,
                  (unsigned long long)s->forwards_unknown, (unsigned long long)s->forwards_batched,
                  (unsigned long long)s->total_error_replies);
    const struct node_metrics *m = &x->node->metrics;
    uint64_t excused = 0;
    for (size_t i = 0; i < x->node->group_count; i++) {
        excused += x->node->groups[i]->raft.stat_deaf_excused;
    }
    hy_buf_printf(b,
                  "loop_slow_turns:%llu\r\nloop_turn_max_ms:%llu\r\nraft_acks_coalesced:%llu\r\n"
                  "raft_timeouts_excused:%llu\r\n",
                  (unsigned long long)m->loop_slow_turns,
                  (unsigned long long)(m->loop_turn_max_us / 1000),
                  (unsigned long long)m->acks_coalesced, (unsigned long long)excused);
}

void node_note_reply(struct hy_node *n, const uint8_t *reply, size_t len)
{
    if (len == 0 || reply[0] != '-') {
        return;
    }
    struct node_stats *s = &n->stats;
    s->total_error_replies++;
    size_t clen = 0;
    while (clen + 1 < len && clen < NODE_ERROR_CODE_SIZE - 1 && reply[1 + clen] != ' ' &&
           reply[1 + clen] != '\r') {
        clen++;
    }
    for (size_t i = 0; i < s->error_code_count; i++) {
        if (strlen(s->errors[i].code) == clen && memcmp(s->errors[i].code, reply + 1, clen) == 0) {
            s->errors[i].count++;
            return;
        }
    }
    if (s->error_code_count < NODE_ERRORSTATS_MAX) {
        struct node_error_stat *e = &s->errors[s->error_code_count++];
        memcpy(e->code, reply + 1, clen);
        e->code[clen] = '\0';
        e->count = 1;
    }
}

/* Redis 7.0's container commands: their subcommands are counted apart ("config|get"). */
static int cmdstat_is_container(const char *name)
{
    static const char *const names[] = {
        "acl",    "client", "cluster", "command", "config", "debug",   "function", "latency",
        "memory", "module", "object",  "pubsub",  "script", "slowlog", "xgroup",   "xinfo"};
    for (size_t i = 0; i < HY_ARRAY_LEN(names); i++) {
        if (strcmp(name, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int node_cmdstat_slot(struct hy_node *n, const struct cmd_def *d, size_t argc,
                      const struct resp_arg *argv)
{
    if (d == NULL) {
        return -1;
    }
    size_t cmd = (size_t)(d - node_commands);
    HY_ASSERT(cmd < NODE_COMMANDS_MAX);
    if (argc < 2 || argv[1].len == 0 || argv[1].len >= NODE_CMDSTAT_SUB_SIZE) {
        return (int)cmd;
    }
    int8_t *container = &n->stats.cmd_container[cmd];
    if (*container == 0) {
        *container = cmdstat_is_container(d->name) ? 1 : -1;
    }
    if (*container < 0) {
        return (int)cmd;
    }
    /* Only a word can name a subcommand: anything else a client sends (binary, spaces) would
     * end up in INFO's text as a name. */
    char name[NODE_CMDSTAT_SUB_SIZE];
    for (size_t i = 0; i < argv[1].len; i++) {
        int ch = tolower(argv[1].ptr[i]);
        if (!islower(ch) && ch != '-') {
            return (int)cmd;
        }
        name[i] = (char)ch;
    }
    name[argv[1].len] = '\0';
    struct node_stats *s = &n->stats;
    for (size_t i = 0; i < s->sub_count; i++) {
        if (s->subs[i].cmd == cmd && strcmp(s->subs[i].name, name) == 0) {
            return NODE_COMMANDS_MAX + (int)i;
        }
    }
    if (s->sub_count == NODE_CMDSTAT_SUBS_MAX) {
        return (int)cmd;
    }
    struct node_cmd_sub_stat *sub = &s->subs[s->sub_count];
    sub->cmd = (uint16_t)cmd;
    memcpy(sub->name, name, argv[1].len + 1);
    sub->st = (struct node_cmd_stat){0};
    return NODE_COMMANDS_MAX + (int)s->sub_count++;
}

static struct node_cmd_stat *cmdstat_at(struct hy_node *n, int slot)
{
    struct node_stats *s = &n->stats;
    if (slot >= 0 && slot < NODE_COMMANDS_MAX) {
        return &s->cmds[slot];
    }
    if (slot >= NODE_COMMANDS_MAX && (size_t)(slot - NODE_COMMANDS_MAX) < s->sub_count) {
        return &s->subs[slot - NODE_COMMANDS_MAX].st;
    }
    return NULL;
}

void node_cmdstat_call(struct hy_node *n, int slot, uint64_t usec)
{
    struct node_cmd_stat *st = cmdstat_at(n, slot);
    if (st != NULL) {
        st->calls++;
        st->usec += usec;
    }
}

void node_cmdstat_rejected(struct hy_node *n, int slot)
{
    struct node_cmd_stat *st = cmdstat_at(n, slot);
    if (st != NULL) {
        st->rejected_calls++;
    }
}

void node_cmdstat_failed(struct hy_node *n, int slot)
{
    struct node_cmd_stat *st = cmdstat_at(n, slot);
    if (st != NULL) {
        st->failed_calls++;
    }
}

static void cmdstat_line(struct hy_buf *b, const char *name, const char *sub,
                         const struct node_cmd_stat *st)
{
    if (st->calls == 0 && st->rejected_calls == 0 && st->failed_calls == 0) {
        return; /* as Redis: only commands that were called */
    }
    hy_buf_printf(b,
                  "cmdstat_%s%s%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                  "failed_calls=%llu\r\n",
                  name, sub != NULL ? "|" : "", sub != NULL ? sub : "",
                  (unsigned long long)st->calls, (unsigned long long)st->usec,
                  st->calls > 0 ? (double)st->usec / (double)st->calls : 0.0,
                  (unsigned long long)st->rejected_calls, (unsigned long long)st->failed_calls);
}

static void info_commandstats(const struct info_ctx *x, struct hy_buf *b)
{
    const struct node_stats *s = &x->node->stats;
    hy_buf_append_str(b, "# Commandstats\r\n");
    for (size_t i = 0; i < node_command_count; i++) {
        cmdstat_line(b, node_commands[i].name, NULL, &s->cmds[i]);
        for (size_t j = 0; j < s->sub_count; j++) {
            if (s->subs[j].cmd == i) {
                cmdstat_line(b, node_commands[i].name, s->subs[j].name, &s->subs[j].st);
            }
        }
    }
}

/* Redis's persistence section, for tools and tests that read it: durability is the Raft log
 * (always on); a snapshot plays the part of an RDB save, so rdb_changes_since_last_save
 * counts the changes applied (store_dirty) since each group's last snapshot. Then the
 * `durability` setting and the age of the log's last fdatasync as the shell last reported it
 * (each cron tick; -1 before the first report). */
static void info_persistence(const struct info_ctx *x, struct hy_buf *b)
{
    const struct hy_node *n = x->node;
    uint64_t changes = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        const struct node_group *g = n->groups[i];
        changes += store_dirty(g->store) - HY_MIN(g->dirty_at_snapshot, store_dirty(g->store));
    }
    hy_buf_printf(b,
                  "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:%llu\r\n"
                  "rdb_bgsave_in_progress:0\r\naof_enabled:0\r\n",
                  (unsigned long long)changes);
    long long age = -1;
    if (n->wal_last_sync_ms != 0) {
        age = (long long)(x->now_ms - HY_MIN(n->wal_last_sync_ms, x->now_ms));
    }
    hy_buf_printf(b,
                  "durability:%s\r\nfsync_interval_ms:%lld\r\nwal_last_fsync_age_ms:%lld\r\n"
                  "wal_loop_group_commits:%llu\r\nwal_loop_sync_pauses:%llu\r\n",
                  n->cfg->durability == CONFIG_DURABILITY_REPLICATED ? "replicated" : "fsync",
                  (long long)n->cfg->fsync_interval_ms, age,
                  (unsigned long long)n->wal_loop_commits,
                  (unsigned long long)n->wal_loop_sync_pauses);
}

static void info_errorstats(const struct info_ctx *x, struct hy_buf *b)
{
    const struct node_stats *s = &x->node->stats;
    hy_buf_append_str(b, "# Errorstats\r\n");
    for (size_t i = 0; i < s->error_code_count; i++) {
        hy_buf_printf(b, "errorstat_%s:count=%llu\r\n", s->errors[i].code,
                      (unsigned long long)s->errors[i].count);
    }
}

static void info_replication(const struct info_ctx *x, struct hy_buf *b)
{
    /* Redis's role names for tools (master = Raft leader); the Raft facts follow. */
    const struct raft *r = &x->node->meta->raft;
    int leader = raft_role(r) == RAFT_LEADER;
    /* The leader by the name operators gave it (empty while none is known). */
    const char *leader_name =
        raft_leader(r) != RAFT_NONE ? node_member_name(x->node, raft_leader(r)) : NULL;
    hy_buf_printf(b,
                  "# Replication\r\nrole:%s\r\nconnected_slaves:0\r\nmaster_repl_offset:%llu\r\n"
                  "raft_role:%s\r\nraft_term:%llu\r\nraft_leader:%s\r\n"
                  "raft_commit_index:%llu\r\nraft_applied_index:%llu\r\n"
                  "raft_last_index:%llu\r\nraft_snapshot_index:%llu\r\nraft_read_mode:%s\r\n"
                  "raft_quiesced:%d\r\n",
                  leader ? "master" : "slave", (unsigned long long)x->node->meta->applied,
                  raft_role_name(raft_role(r)), (unsigned long long)raft_term(r),
                  leader_name ? leader_name : "", (unsigned long long)raft_commit_index(r),
                  (unsigned long long)x->node->meta->applied,
                  (unsigned long long)raft_last_index(r),
                  (unsigned long long)raft_snapshot_index(r),
                  raft_lease_enabled(r) ? "lease" : "readindex", raft_quiesced(r));
    /* Snapshot chunks this node's leaders sent, every group, and their budget; chunks its
     * followers received to disk, and transfers they dropped on a checksum mismatch. */
    uint64_t mismatches = 0;
    for (size_t i = 0; i < x->node->group_count; i++) {
        mismatches += raft_snapshot_crc_mismatches(&x->node->groups[i]->raft);
    }
    hy_buf_printf(
        b, "snapshot_sent_bytes:%llu\r\nrebalance_bandwidth:%lld\r\npartitions_parked:%u\r\n",
        (unsigned long long)x->node->metrics.snapshot_sent_bytes,
        (long long)x->node->cfg->rebalance_bandwidth, node_parked_count(x->node));
    hy_buf_printf(b, "snapshot_received_bytes:%llu\r\nsnapshot_crc_mismatches:%llu\r\n",
                  (unsigned long long)x->node->metrics.snapshot_received_bytes,
                  (unsigned long long)mismatches);
}

/* The whole cluster's keys (x->totals): db0 as Redis prints it (avg_ttl is not tracked: 0),
 * then how many partitions the figures cover (all of them unless some had no leader). */
static void info_keyspace(const struct info_ctx *x, struct hy_buf *b)
{
    const struct node_info_totals *t = x->totals;
    hy_buf_append_str(b, "# Keyspace\r\n");
    if (t->keys > 0) {
        hy_buf_printf(b, "db0:keys=%lld,expires=%lld,avg_ttl=0\r\n", (long long)t->keys,
                      (long long)t->expires);
    }
    if (x->node->group_count > 1) {
        hy_buf_printf(b, "keyspace_partitions:answered=%lld,total=%lld,from=%s\r\n",
                      (long long)t->answered, (long long)t->partitions,
                      t->scattered ? "leaders" : "local");
    }
}

static void info_cluster(const struct info_ctx *x, struct hy_buf *b)
{
    /* Every halyard node answers CLUSTER SLOTS/SHARDS, so cluster-aware clients may use it. */
    hy_buf_append_str(b, "# Cluster\r\ncluster_enabled:1\r\n");
    /* The health score the shell computed at its last publish (observe.h); -1: none yet. */
    const struct hy_node *n = x->node;
    hy_buf_printf(b, "health_score:%d\r\ncluster_health_score:%d\r\nhealth_reasons:%s\r\n",
                  n->health_score, n->cluster_health_score, n->health_reasons);
    if (n->group_count > 1) {
        /* The zone this node is in, and the partitions one zone's (rack's) loss could hurt
         * more than it must (docs/partitioning.md "Failure domains"). */
        uint32_t shared_zone, shared_rack;
        partmap_shared_domains(n, &shared_zone, &shared_rack);
        hy_buf_printf(b,
                      "zone:%s\r\nrack:%s\r\npartitions_sharing_zone:%u\r\n"
                      "partitions_sharing_rack:%u\r\nrebalance:%s\r\nreplica_load_spread:%u\r\n"
                      "rebalance_moves_recorded:%u\r\n",
                      n->cfg->zone, n->cfg->rack, shared_zone, shared_rack,
                      partmap_rebalance_paused(n) ? "paused" : "running", partmap_load_spread(n),
                      partmap_moves_recorded(n));
    }
    struct node_gossip_stats gs;
    node_gossip_stats(n, &gs);
    node_quorum_info(n, b);
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
        hy_buf_printf(b,
                      "gossip_suspect_probe:%llu\r\ngossip_suspect_phi:%llu\r\n"
                      "gossip_suspect_link:%llu\r\ngossip_stalls:%llu\r\n"
                      "gossip_stall_max_ms:%llu\r\ngossip_lag_grace_ms:%u\r\n"
                      "gossip_grace_saved_probe:%llu\r\ngossip_grace_saved_phi:%llu\r\n"
                      "gossip_peer_stalls:%llu\r\ngossip_peer_gaps:%llu\r\n"
                      "gossip_stalls_stopped:%llu\r\n",
                      (unsigned long long)gs.suspect_probe, (unsigned long long)gs.suspect_phi,
                      (unsigned long long)gs.suspect_link, (unsigned long long)gs.stalls,
                      (unsigned long long)gs.stall_max_ms, gs.lag_grace_ms,
                      (unsigned long long)gs.grace_saved_probe,
                      (unsigned long long)gs.grace_saved_phi, (unsigned long long)gs.peer_stalls,
                      (unsigned long long)gs.peer_gaps, (unsigned long long)gs.stalls_stopped);
        /* The ring neighbours: the only members this node beacons to and watches with phi. */
        const char *ring[NODE_GOSSIP_RING_MAX];
        size_t ring_count = node_gossip_ring(n, ring, HY_ARRAY_LEN(ring), NULL);
        hy_buf_printf(b, "gossip_ring_links:%zu\r\ngossip_ring:", ring_count);
        for (size_t i = 0; i < ring_count && i < HY_ARRAY_LEN(ring); i++) {
            hy_buf_printf(b, "%s%s", i ? "," : "", ring[i]);
        }
        hy_buf_printf(b, "\r\n");
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

typedef void (*info_section_fn)(const struct info_ctx *x, struct hy_buf *b);

static const struct {
    const char *name;
    info_section_fn fn;
    int in_default;
} info_sections[] = {
    {"server", info_server, 1},         {"clients", info_clients, 1},
    {"memory", info_memory, 1},         {"persistence", info_persistence, 1},
    {"stats", info_stats, 1},           {"replication", info_replication, 1},
    {"cluster", info_cluster, 1},       {"keyspace", info_keyspace, 1},
    {"errorstats", info_errorstats, 1}, {"commandstats", info_commandstats, 0},
};

static int info_wanted(struct cmd_ctx *x, size_t section)
{
    if (x->argc == 1) {
        return info_sections[section].in_default;
    }
    for (size_t i = 1; i < x->argc; i++) {
        if (node_arg_is(&x->argv[i], "all") || node_arg_is(&x->argv[i], "everything") ||
            node_arg_is(&x->argv[i], info_sections[section].name)) {
            return 1;
        }
        /* "default" is the sections plain INFO gives: commandstats only when asked for. */
        if (node_arg_is(&x->argv[i], "default") && info_sections[section].in_default) {
            return 1;
        }
    }
    return 0;
}

/* This node's own replicas of every partition (it holds them all, or has one group). */
static void local_totals(const struct hy_node *n, struct node_info_totals *t)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups), vol;
    *t = (struct node_info_totals){.partitions = (int64_t)parts, .answered = (int64_t)parts};
    t->keys = (int64_t)node_key_count(n, &vol);
    t->expires = (int64_t)vol;
    for (size_t p = 0; p < parts; p++) {
        t->dataset_bytes += (int64_t)store_used_bytes(groups[p]->store);
    }
}

void node_info_render(struct hy_node *n, uint64_t now_ms, uint32_t sections,
                      const struct node_info_totals *t, int proto, struct hy_buf *out)
{
    struct node_info_totals mine;
    if (t == NULL) {
        local_totals(n, &mine);
        t = &mine;
    }
    struct info_ctx x = {.node = n, .now_ms = now_ms, .totals = t};
    struct hy_buf b;
    hy_buf_init(&b);
    for (size_t i = 0; i < HY_ARRAY_LEN(info_sections); i++) {
        if (sections & (1u << i)) {
            if (b.len > 0) {
                hy_buf_append_str(&b, "\r\n");
            }
            info_sections[i].fn(&x, &b);
        }
    }
    struct resp_writer w = {.out = out, .proto = proto};
    resp_write_verbatim(&w, "txt", b.data, b.len);
    hy_buf_free(&b);
}

void cmd_info(struct cmd_ctx *x)
{
    uint32_t sections = 0, scattering = 0;
    for (size_t i = 0; i < HY_ARRAY_LEN(info_sections); i++) {
        if (info_wanted(x, i)) {
            sections |= 1u << i;
            scattering |=
                info_sections[i].fn == info_memory || info_sections[i].fn == info_keyspace;
        }
    }
    if (scattering && node_scatter_info(x, sections)) {
        return; /* answered by node_info_render once every partition has */
    }
    node_info_render(x->node, x->now_ms, sections, NULL, x->w.proto, x->w.out);
}
