/*
 * observe.h - what a node shows operators: a snapshot of its state and counters as plain
 * data (struct node_observation), and the texts made from it: /health's JSON, /health/ready's
 * verdict and /metrics in the Prometheus text format.
 *
 * node_observe() copies what the engine knows into the struct, on the loop's thread. The
 * struct holds no pointer into the node (names are copied, other strings are static), so the
 * shell can hand a copy to another thread (its HTTP server) and render it there while the
 * engine moves on. The shell adds the facts only it has (the WAL's fsync times, each peer
 * link's dropped frames) before publishing. Rendering is a pure function of the struct, so
 * tests build one by hand and check the texts. Pure.
 *
 * Latencies the engine measures (commit, per command, snapshots) have millisecond
 * resolution: the engine's clock is now_ms. The WAL's fsync histogram is measured by the
 * shell in microseconds.
 */
#ifndef HY_NODE_OBSERVE_H
#define HY_NODE_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/metrics.h"
#include "node/cluster.h"
#include "node/node.h"

#define OBSERVE_MEMBERS_MAX          48  /* >= NODE_MEMBERS_MAX (asserted in observe.c) */
#define OBSERVE_COMMANDS_MAX         256 /* >= the command table's size (asserted) */
#define OBSERVE_WAN_MAX              256 /* (link, partition) pairs shown; beyond, left out */
/* A follower or observer is ready while it has applied all but this many committed entries. */
#define OBSERVE_READY_APPLY_LAG_MAX  1000
/* The health score counts fsyncs slower than this at p99 as slow. */
#define OBSERVE_HEALTH_SLOW_FSYNC_US 50000

struct observe_member {
    char name[NODE_MEMBER_NAME_MAX + 1];
    const char *role; /* "leader", "follower", "learner", "observer", "joining", ... (static) */
    int is_self;
    int link_up;       /* the transport's view; this node counts as up */
    const char *state; /* gossip's view: "alive", "suspect", "dead" (static); NULL: gossip off */
    uint64_t incarnation;
    double phi;
    /* Leader only: what it knows of this member's replication. */
    int has_lag;
    uint64_t match_index;
    uint64_t lag_entries;
    uint64_t lag_ms; /* age of the oldest entry it lacks (0 = it has every entry) */
    int answered;    /* it answered this leader at all */
    uint64_t contact_ms;
    /* Filled by the shell from its peer link (0 when it has none, e.g. for itself). */
    int has_link_stats;
    uint64_t dropped_full, dropped_down;
    uint64_t beacons_sent; /* liveness beacons on its link (gossip's ring neighbours only) */
    uint64_t pings_sent;   /* keepalive PINGs on its link (4x sparser off gossip's ring) */
    uint64_t frames_recv;  /* frames received from it, on either connection */
    uint64_t idle_closes;  /* its link off gossip's ring closed for idleness (peer-idle-close-ms) */
    int link_parked;       /* 1 while that link is closed for idleness (it counts as up) */
};

struct observe_command {
    const char *name; /* static, from the command table */
    uint64_t calls;
    struct hy_histo latency;
};

struct node_observation {
    uint64_t now_ms; /* the loop's clock when taken */
    char node_id[NODE_MEMBER_NAME_MAX + 1];
    int started, draining, disk_full;
    int leaving;  /* a drain whose replicas move off first (HALYARD DRAIN) */
    int stopping; /* set by the shell during a graceful shutdown */
    /* Raft. */
    const char *role; /* raft_role_name: "leader", "follower", ... (static) */
    int is_leader;
    char leader[NODE_MEMBER_NAME_MAX + 1]; /* current leader, "" when none is current */
    char last_leader[NODE_MEMBER_NAME_MAX + 1];
    uint64_t leader_contact_ms;
    int has_quorum;        /* a leader heard within an election timeout (or this node leads) */
    const char *self_role; /* member_role_name of this node: "observer", "learner", ... */
    uint64_t term, commit_index, applied_index, last_index, snapshot_index;
    uint32_t voters, reachable_voters, cluster_size;
    uint64_t elections, leader_changes;
    uint64_t proposals_committed, proposals_unknown, proposals_rejected;
    struct hy_histo commit_latency;
    uint64_t snapshots_taken, snapshots_installed, snapshot_last_bytes, snapshot_bytes_total;
    uint64_t snapshot_sent_bytes;
    uint32_t partitions_parked;
    struct hy_histo snapshot_duration;
    struct hy_histo loop_turn; /* time the event loop worked per turn */
    uint64_t loop_slow_turns;  /* turns of NODE_SLOW_TURN_MS or more */
    /* Members as this node knows them. */
    size_t member_count;
    struct observe_member members[OBSERVE_MEMBERS_MAX];
    /* Commands (the whole table, in its order). */
    size_t command_count;
    struct observe_command commands[OBSERVE_COMMANDS_MAX];
    /* Clients, keyspace and memory. */
    uint64_t clients, connections_received, rejected_connections;
    uint64_t commands_processed, net_input_bytes, net_output_bytes;
    uint64_t keys, volatile_keys, expired_keys, evicted_keys, keyspace_hits, keyspace_misses;
    uint64_t memory_used_bytes, memory_dataset_bytes, memory_max_bytes;
    /* Partitions (docs/partitioning.md): how many, led by this node, without a leader known
     * here (1, 1 or 0, and 0 on a cluster of one partition). */
    uint32_t partitions, partitions_led, partitions_without_leader;
    /* Partitions with fewer replicas up (this node's links) than the replication factor can
     * give / than a majority of them (HALYARD STATUS's counts). */
    uint32_t partitions_under_replicated, partitions_without_quorum;
    /* Of the partition map's partitions, those with replicas sharing a zone (a rack). */
    uint32_t partitions_sharing_zone, partitions_sharing_rack;
    uint64_t uptime_ms;
    struct node_gossip_stats gossip;
    /* Split-brain protection rules and their state now (node_quorum_json), "[]" when none.
     * Room for the longest: 16 rules of a 32-byte name and a 128-byte pattern each escaped to
     * \u00XX, about 900 bytes a rule. */
    char quorum_rules_json[16384];
    /* WAN links (docs/wan.md): each (link, partition) this node leads. */
    size_t wan_count;
    struct node_wan_lag_view wan[OBSERVE_WAN_MAX];
    size_t wan_conflict_count;
    struct node_wan_conflict_view wan_conflicts[OBSERVE_WAN_MAX];
    /* Filled by the shell. */
    struct hy_histo wal_fsync;
    int64_t wal_fsync_age_ms;      /* since the log's last fdatasync; -1: unknown */
    int durability_replicated;     /* the `durability` setting is replicated (else fsync) */
    struct hy_histo snapshot_file; /* writing and fsyncing a snapshot file (io/snap_writer.h) */
    uint64_t disk_total_bytes, disk_free_bytes; /* the data dir's file system; 0: unknown */
    /* Webhook alerts (io/alerts.h), per alert and URL: answered 2xx, failed every attempt,
     * dropped over the rate or from a full queue; and the attempts after the first. */
    uint64_t alerts_sent, alerts_failed, alerts_rate_limited, alerts_queue_full, alerts_retries;
};

/* The health score (0-100) of this node and of the cluster as this node sees it, and what
 * lowers them (docs/operations.md "Health score"). */
#define OBSERVE_HEALTH_REASONS_MAX   8
#define OBSERVE_HEALTH_WAN_BEHIND_MS 60000u /* a WAN link this far behind lowers the score */
struct observe_health {
    int node_score, cluster_score;
    size_t reason_count;
    char reasons[OBSERVE_HEALTH_REASONS_MAX][96];
};
void observe_health_score(const struct node_observation *o, struct observe_health *out);

struct hy_node;

/* Fills *out from the node (borrowed for the call); the shell's fields are zeroed. The counts
 * over every partition are those of the node's last walk over them, made again when anything
 * they read may have moved and at least once a second (node_walk_due). */
void node_observe(struct hy_node *n, uint64_t now_ms, struct node_observation *out);

/* /health: one JSON object (Hazelcast's fields, the health score, then Raft's and each
 * member's). */
void observe_health_json(const struct node_observation *o, struct hy_buf *out);

/* /health/ready: 1 when this node can do its job (started, not leaving, a leader with a
 * majority behind it, its state machine caught up, a full member of the configuration);
 * otherwise 0 with the reason, one line of text, in `reason` (cap bytes). */
int observe_ready(const struct node_observation *o, char *reason, size_t cap);

/* /metrics: every metric in the Prometheus text format 0.0.4. */
void observe_metrics(const struct node_observation *o, struct hy_buf *out);

#endif
