/*
 * node_internal.h - what the engine's files share: the node struct, the command context and
 * the helpers command handlers use. Not for the shell (it uses node.h).
 */
#ifndef HY_NODE_INTERNAL_H
#define HY_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/prng.h"
#include "node/cluster.h"
#include "node/placement.h"
#include "node/node.h"
#include "node/observe.h"
#include "node/wan.h"
#include "proto/resp.h"
#include "store/store.h"

enum cmd_flag {
    CMD_WRITE = 1u << 0,
    CMD_READONLY = 1u << 1,
    CMD_FAST = 1u << 2,
    CMD_ADMIN = 1u << 3,
    CMD_DENYOOM = 1u << 4,
    CMD_NOAUTH = 1u << 5,
    CMD_STALE = 1u << 6,
    CMD_CONTAINER =
        1u << 7,            /* has "name|sub" rows for subcommands that differ (node_command_sub) */
    CMD_BLOCKING = 1u << 8, /* may wait for data (blocking.c) */
    /* Reads the script cache or the function libraries, which every data partition holds
     * alike: it runs on slot 0's partition where reads run (the leader after ReadIndex, or a
     * READONLY connection's replica), so a client of a follower sees its own SCRIPT and
     * FUNCTION writes, as it sees its own key writes (dispatch.c). */
    CMD_LIBRARY_READ = 1u << 9,
    /* A write that reads this replica's store before anything is proposed (EVALSHA's script,
     * FCALL's function, MIGRATE's keys): on a leader whose term's first entry is not applied
     * yet it waits as a read does, since a write the previous leader acknowledged may be
     * missing from that store (dispatch.c node_must_wait). */
    CMD_READS_FIRST = 1u << 10,
};

struct cmd_ctx;
typedef void (*cmd_handler)(struct cmd_ctx *x);

struct cmd_def {
    const char *name;
    cmd_handler handler;
    int arity;
    unsigned flags;
    int first_key, last_key, key_step;
    const char *group;
    const char *summary;
};

/* INFO errorstats: error replies by their first word, as Redis's (at most this many codes;
 * past it new codes are not tracked, as Redis's ERRORSTATS_LIMIT). */
#define NODE_ERRORSTATS_MAX  128
#define NODE_ERROR_CODE_SIZE 32

struct node_error_stat {
    char code[NODE_ERROR_CODE_SIZE];
    uint64_t count;
};

#define NODE_COMMANDS_MAX 256 /* room for per-command counters (asserted at create) */

/* INFO commandstats: one command's counters, as Redis 7.0's (calls answered or proposed;
 * rejected_calls refused before running: arity, NOAUTH, NOPERM, -CROSSSLOT, -MOVED, OOM;
 * failed_calls that ran and answered an error). */
struct node_cmd_stat {
    uint64_t calls, usec, rejected_calls, failed_calls;
};

/* A container command's subcommand counted apart, named "config|get" as Redis 7.0 names it
 * (at most NODE_CMDSTAT_SUBS_MAX names between resets; past it, the command's own counters). */
#define NODE_CMDSTAT_SUBS_MAX 128
#define NODE_CMDSTAT_SUB_SIZE 32

struct node_cmd_sub_stat {
    uint16_t cmd; /* index in node_commands */
    char name[NODE_CMDSTAT_SUB_SIZE];
    struct node_cmd_stat st;
};

struct node_stats {
    uint64_t total_error_replies; /* every error reply sent, counted or not by code */
    size_t error_code_count;
    struct node_error_stat errors[NODE_ERRORSTATS_MAX];
    uint64_t connections_received;
    uint64_t commands_processed;
    uint64_t rejected_connections;
    uint64_t expired_keys;
    uint64_t evicted_keys;
    uint64_t keyspace_hits;
    uint64_t keyspace_misses;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t forwards_sent;    /* requests this follower forwarded to the leader */
    uint64_t forwards_batched; /* of them, sent in the frame of a request before (batches) */
    uint64_t forwards_rerun;   /* forwards run again: they never ran on the leader */
    uint64_t forwards_unknown; /* forwarded writes whose leader failed before answering */
    uint64_t forwards_resent;  /* forwarded writes sent again under their session slot */
    /* instantaneous ops/sec from samples taken by cron */
    uint64_t ops_sample_cmds;
    uint64_t ops_sample_ms;
    uint64_t ops_per_sec;
    /* INFO commandstats by slot: NODE_COMMANDS_MAX + i is subs[i] (node_cmdstat_slot). */
    struct node_cmd_stat cmds[NODE_COMMANDS_MAX];
    /* whether a command counts its subcommands apart: 0 not known yet, 1 yes, -1 no (found
     * once per command, instead of comparing names on every call) */
    int8_t cmd_container[NODE_COMMANDS_MAX];
    size_t sub_count;
    struct node_cmd_sub_stat subs[NODE_CMDSTAT_SUBS_MAX];
};

#define NODE_CMD_SLOTS           512
#define NODE_LAG_SAMPLES         1024  /* (log end, time) samples for followers' lag in ms */
#define NODE_SLOW_TURN_MS        100   /* an event loop turn this long is logged and counted */
#define NODE_DEAF_RECENT_MS      10000 /* how long a stretch of deafness stretches Raft's timeouts */
#define NODE_MEMBERS_MAX         (RAFT_SERVERS_MAX + STORE_MEMBERS_MAX)
#define NODE_GUESTS_MAX          4
/* Peers whose busy notices a node keeps at once (busy_peers.c); more are ignored. */
#define NODE_PEER_BUSY_MAX       16
#define NODE_SNAPSHOT_BYTES_MIN  (1024 * 1024)
/* Below this many keys and bytes of data, snapshots are encoded inline (start_snapshot). */
#define NODE_SNAPSHOT_FORK_KEYS  20000
#define NODE_SNAPSHOT_FORK_BYTES (2 * 1024 * 1024)

/* Counters and histograms for /metrics and /health (observe.c); the engine records into them
 * as things happen, with its own clock (ms). */
struct node_metrics {
    uint64_t now_ms; /* the clock of the update being handled: latencies noted at apply */
    raft_id last_leader;
    uint64_t leader_changes;
    uint64_t proposals_committed; /* client writes applied and answered */
    uint64_t proposals_unknown;   /* answered -UNKNOWN: may or may not have applied */
    uint64_t proposals_rejected;  /* answered -TRYAGAIN: never applied */
    struct hy_histo commit_latency;
    uint64_t snapshots_taken, snapshots_installed, snapshot_last_bytes, snapshot_bytes_total;
    uint64_t snapshot_sent_bytes;     /* snapshot chunk bytes this node's leaders sent followers */
    uint64_t snapshot_received_bytes; /* chunk bytes its followers wrote to disk as they came */
    uint64_t snapshot_started_ms;     /* when the snapshot being encoded was started */
    struct hy_histo snapshot_duration;
    uint64_t cmd_calls[NODE_COMMANDS_MAX]; /* by index in node_commands */
    struct hy_histo cmd_latency[NODE_COMMANDS_MAX];
    /* Leader: "by time ms the log reached index", one sample per ms in which it grew, oldest
     * first in a ring; a follower's lag in ms is the age of the first sample past its match. */
    struct {
        uint64_t index, ms;
    } lag_samples[NODE_LAG_SAMPLES];
    size_t lag_head, lag_count;
    /* The event loop's turns (node_note_loop_turn): the time each spent working, how many
     * took NODE_SLOW_TURN_MS or more, and what the node did since the previous turn, which
     * a slow turn's log line gives (entries applied, snapshots installed and taken). */
    struct hy_histo loop_turn;
    uint64_t loop_slow_turns, loop_turn_max_us;
    uint64_t entries_applied;
    uint64_t mark_applied, mark_installed, mark_taken, mark_sent;
    uint64_t slow_logged_ms, slow_unlogged;
    /* Successful AppendEntries responses left out because a later one of the same group
     * commit said as much (wal_node_coalesce_acks). */
    uint64_t acks_coalesced;
};

enum node_redirect { NODE_REDIRECT_PROXY = 0, NODE_REDIRECT_MOVED = 1 }; /* config "redirect" */

/* A proposed write whose client waits for the reply (replica.c). */
/* The ASan build keeps no pool, so that a waiter used after its end is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define NODE_WAITER_POOL_MAX 0
#else
#define NODE_WAITER_POOL_MAX 512
#endif

struct node_waiter {
    struct node_waiter *next;
    struct node_client *client; /* NULL once the client went away */
    uint64_t index;             /* 0 until submitted to Raft */
    uint64_t term;
    uint64_t proposed_ms;
    uint64_t started_ms; /* when its command first arrived (it may have waited before) */
    int cmd_index;       /* in node_commands, -1 = none; for per-command latency */
    int stat_slot;       /* node_cmdstat_slot of its command, -1 = none: failures at apply */
    int outcome_noted;   /* counted in node_metrics (a waiter may be answered twice) */
    int proto;
    int blocking; /* a blocking command's pop: a null reply makes it wait again */
    /* A pop proposed for a blocked client that an apply woke: the earliest index of the
     * writes that fed it, through every pop between (blocking.c); 0: none. */
    uint64_t wake_root;
    int silent;         /* CLIENT REPLY OFF/SKIP: its reply is dropped */
    struct hy_buf tail; /* immediate replies that must follow this one */
    int answer_integer; /* node_propose_answer_integer: +OK is replaced by answer */
    long long answer;
    /* Proposed here for a client whose write this node had forwarded to a leader that failed
     * before answering (outcome_unsure, proxy.c): that copy may have been applied, so this
     * one's loss never tells the client "not applied" (waiter_not_applied). */
    int unsure;
};

/* A pipelined write that went in another one's forward, after it (proxy.c "Batches"): where
 * its bytes end in the forward's req, and its session slot (seq 0: none, a new one is taken). */
struct node_fwd_held {
    uint64_t session, seq;
    int unsure;        /* sent before and lost: it may have been applied */
    uint64_t first_ms; /* when it was first forwarded: its deadline counts from then (0: none) */
};
struct node_fwd_member {
    size_t req_end;
    struct node_fwd_held slot;
};

struct node_forward {
    uint64_t req_id;
    struct node_client *client; /* NULL once the client went away */
    uint64_t sent_ms;
    int is_write;
    uint32_t group;                    /* the Raft group of its keys */
    raft_id leader;                    /* the leader it went to */
    char to[NODE_MEMBER_NAME_MAX + 1]; /* and its name: only its reply counts */
    struct hy_buf req;                 /* the request, to run again if it never ran there */
    uint64_t session, seq; /* sent under this follower's session slot (0: as the client wrote it) */
    int resend;            /* under a session (ours or the client's): safe to send again */
    int opens_session;     /* HY.SESSION OPEN for this follower's own session: no client */
    int asks_applied;      /* HY.APPLIED follows the request: its reply ends with an index */
    int feeds_waiter;      /* a write to a key a client of this node waits on (blocking.c) */
    /* A blocking pop's deadline and order (0: not one): a null answer sends it back to wait. */
    uint64_t block_deadline_ms, block_order;
    int probe; /* enum node_probe: a question of this node's, asked of a peer */
    /* When its leader was last seen busy with a script (proxy_expire): request-timeout-ms
     * counts from then, as a Redis client waits for a long script (0: never). */
    uint64_t busy_seen_ms;
    /* Sent to a busy peer's poll (SCRIPT KILL and its kin, node_busy_elsewhere), which need
     * not lead its group: lost only with that peer's link, never with the group's leadership
     * (forward_lost). Run again on a leadership change it went straight back to the same
     * peer, the peer's notice still held, and was lost again in the same walk: the loop
     * never ended (a follower's SCRIPT KILL while the busy leader was stopped). */
    int to_busy;
    /* A batch: the client's next pipelined writes of the same command and partition, sent in
     * the same frame behind this one, each under its own slot (proxy.c "Batches"). `open`
     * while the frame gathers them (sent when the client's processing stops). */
    struct node_fwd_member *more;
    size_t more_count, more_cap;
    int open;
    struct hy_buf frame;
    const struct cmd_def *cmd; /* the first request's command (a batch's requests share it) */
    size_t head_end;           /* where the first request ends in req */
};

/* A forward without a client: this node asks a peer something for itself. */
enum node_probe {
    NODE_PROBE_NONE = 0,
    NODE_PROBE_ROLE,     /* HY.MEMBERROLE <this node>: was it removed? (member_removal_step) */
    NODE_PROBE_LEADERS,  /* HY.LEADERS: who leads the peer's groups (partmap_refresh_hints) */
    NODE_PROBE_TRANSFER, /* HALYARD FAILOVER TO t PARTITION p: the balancer's hand-over */
};

struct node_pending_read {
    uint64_t id;
    struct node_client *client; /* NULL once answered or gone */
};

struct node_turn_entry {
    size_t offset, len;         /* in turn_data */
    struct node_waiter *waiter; /* NULL for internal entries (expiry, eviction) */
};

/* One Raft group this node holds a replica of: its log, its keyspace, and the writes and reads
 * waiting on it (replica.c). A node holds one today (id 0, every slot and the membership); the
 * partitioned grid gives it one per partition it replicates. */
/* A copy of a partition the committed map does not place here acts on one timeout in this
 * many (replica.c node_tick). */
#define NODE_UNPLACED_TIMEOUTS 4
/* A group FORCE-QUORUM did not force at once (member.c): it still led here (forced once it
 * steps down, unless a new leader is heard), or this node had heard its leader within an
 * election timeout (forced once it has not for that long, unless a leader speaks since with
 * a majority this node can reach, or in a later term). */
enum node_force_pending {
    NODE_FORCE_NONE = 0,
    NODE_FORCE_WHEN_STEPPED_DOWN,
    NODE_FORCE_UNLESS_LEADER_HEARD
};

/* Voters a group remembers the answers of (node_group.holders). */
#define NODE_GROUP_HOLDERS 8

struct node_group {
    struct hy_node *node;
    uint32_t id;
    /* A move this node started as the partition's leader (member.c): its target and source
     * (RAFT_NONE: none), reported MOVE_FINISHED once the voters are the map's replicas and the
     * configuration that made them so is committed. When this leader removed itself as the
     * move's last step, that entry's index and term and the map's epoch (move_done_index 0:
     * none): reported once it is committed here, whatever this node leads by then. */
    raft_id move_target, move_source;
    uint64_t move_done_index, move_done_term, move_done_epoch;
    uint32_t unplaced_timeouts; /* timeouts of a copy the map does not place here (replica.c) */
    /* What voters of this group's configuration last answered (HY.LEADERS) about their own
     * copies: when (ms 0: a free slot), and whether they hold one as a voter of their own
     * configuration. FORCE-QUORUM counts by it a voter the map no longer places (member.c
     * force_count), and asks again (force_probe_ms: not before then) when it is not known. */
    struct node_holder {
        raft_id id;
        uint64_t ms;
        int holds;
    } holders[NODE_GROUP_HOLDERS];
    uint64_t force_probe_ms;
    /* A member the metadata group removed that this node voted for, and the term: followed in
     * that term only (node_receive). */
    raft_id removed_leader;
    uint64_t removed_leader_term;
    struct raft raft;
    struct store *store;
    int started;
    uint64_t applied; /* last log index applied to the store */
    /* blocking.c: the earliest root of the entries applied in the node's wake pass
     * wake_root_pass (an entry's own index, or its pop's wake_root), and whether pops were
     * woken here in pass wake_popped_pass. */
    uint64_t wake_root, wake_root_pass, wake_popped_pass;
    uint64_t leader_msgs; /* messages received from the group's leader (as this node knew it) */
    /* The highest applied index a leader reported with its reply to a write this node
     * forwarded (proxy.c): a command decided from this replica waits until it applied that. */
    uint64_t acked_index;
    uint64_t log_bytes_since_snapshot;
    size_t snapshot_dataset_bytes; /* store_used_bytes when the last snapshot was taken */
    uint64_t dirty_at_snapshot;    /* store_dirty then (INFO rdb_changes_since_last_save) */
    uint64_t timeout_ms;           /* when Raft wants its next tick */
    /* Entries proposed during this loop turn, submitted together by node_flush. */
    struct hy_buf turn_data;
    struct node_turn_entry *turn;
    size_t turn_count, turn_cap;
    uint64_t internal_index; /* index of the last such entry submitted */
    /* Proposals waiting for their entry to apply, in proposal (= log) order. */
    struct node_waiter *waiters_head, *waiters_tail;
    int tv_unwritten;      /* batches holding a term/vote change not yet durable */
    uint64_t io_pushed;    /* io batches made for this group ... */
    uint64_t io_done;      /* ... and completed (they complete in that order) */
    uint64_t snap_pending; /* index of the snapshot the snapshotter is encoding, 0 = none */
    /* This follower's own session in the group's store, for the writes it forwards to the
     * group's leader (proxy.c): its id (0 = none), the next seq, the seqs handed out and not
     * yet resolved (ascending), the HY.SESSION OPEN in flight, and whether clients wait for it
     * or for room in the window. */
    uint64_t fsession, fsession_next_seq, fsession_used_ms, fsession_open_req;
    uint64_t fsession_off_until_ms; /* after an OPEN refused: forward without a session */
    uint64_t *fsession_live;
    size_t fsession_live_count;
    int fsession_waiters;
    int snap_finishing;      /* a snapshot is being handed to Raft: none may start meanwhile */
    int unpin_pending;       /* node_log_unpin's batch is not yet durable */
    int force_pending;       /* enum node_force_pending: FORCE-QUORUM left it for later */
    uint64_t force_asked_ms; /* when */
    uint64_t force_term;     /* the group's term then */
    uint64_t conflicts_seen; /* raft stat_conflicts_refused when the follower session last saw it */
    uint64_t deposed_ms;     /* when this node stopped leading the group (0: leads, or never did) */
    /* A partition this node holds no replica of (partmap.c): the member believed to lead
     * it, learnt from -MOVED answers and from its replicas' HY.LEADERS answers (RAFT_NONE:
     * none yet, ask a replica of the map); the term that answer named (0: from a -MOVED).
     * Vouched: the hint came from a replica of the map (its -MOVED, or its HY.LEADERS line),
     * so it is followed even when the map does not place the partition on it (the source
     * of a move leads until the move ends); a hint from any other member is followed only
     * if the map places the partition there (partmap_leader_member). */
    raft_id leader_hint;
    uint64_t leader_hint_term;
    int leader_hint_vouched;
    /* The map epoch whose replicas a replica of this partition last reported as its voters
     * (HY.LEADERS; 0: none yet): the metadata leader counts the moves under way by it. */
    uint64_t settled_epoch;
    /* The index, in the group's log, of the configuration that report found settled (0: not
     * given): a copy whose own configuration is later (a leader added it since) belongs to a
     * later group than the report described, and does not park on it (replica.c node_tick). */
    uint64_t settled_cfg_index;
    /* balance.c, on the metadata leader: no leadership transfer of this partition is planned
     * before this (a cool-down, so that no leadership moves twice within
     * BALANCE_COOL_TIMEOUTS election timeouts). */
    uint64_t balance_cool_ms;
    struct node_wan_outbox *wan_out; /* wan_ship.c: changes to ship (NULL: group 0) */
    /* ReadIndex (§6.4): reads registered this turn, confirmed together by one round. */
    uint64_t read_seq;
    /* Registered reads awaiting their round, in id order (ids only grow): a result finds its
     * client by binary search instead of walking every connection. */
    struct node_pending_read *pending_reads;
    size_t pending_head, pending_count, pending_cap;
    uint64_t *turn_reads;
    size_t turn_read_count, turn_read_cap;
    int in_flush; /* in its node's flush list: it queued writes or reads this turn */
    /* A copy the map moved away for good, its keyspace out of memory (replica.c "Parked
     * copies"); unpark_failed: its snapshot could not be read back (said once). */
    int parked;
    int unpark_failed;
    uint64_t parked_digest; /* store_digest when it parked: what reading it back must give */
    uint64_t parked_ms;     /* when it parked: its files go parked-keep-ms later */
};

/* A periodic walk over every group (a cron's) that reads only what moves when a group steps,
 * a link goes up or down, a write or admin command runs, keys expire or are evicted, or the
 * members or the map change: node_walk_due says whether one is due. With 1,024 idle partitions such
 * walks, made at every cron tick, were most of an idle node's CPU. */
struct node_walk {
    uint64_t seen;    /* the node's activity at the last walk (node_walk_due) */
    uint64_t next_ms; /* a walk is due by then whatever happened: a source of change missed
                         here costs at most NODE_WALK_QUIET_MS, never a walk for good */
};
#define NODE_WALK_QUIET_MS 1000

/* Cluster events (events.c): a ring of the last NODE_EVENTS_MAX, as JSON, and what cron
 * compares against to find new ones. */
#define NODE_EVENTS_MAX        1024
#define NODE_EVENT_BYTES       256
#define NODE_GROUPS_EVENTS_MAX (NODE_PARTITIONS_MAX + 1)
struct node_events {
    uint64_t last_id;
    char ring[NODE_EVENTS_MAX][NODE_EVENT_BYTES];
    uint64_t members_epoch;
    int members_seen;
    char member_names[NODE_MEMBERS_MAX][NODE_MEMBER_NAME_MAX + 1];
    size_t member_count;
    uint64_t down_since_ms[NODE_MEMBERS_MAX]; /* by index in members[]; 0 = up */
    uint8_t failed[NODE_MEMBERS_MAX];
    uint8_t reached[NODE_MEMBERS_MAX]; /* by index: its link was up since this node started */
    raft_id leader[NODE_GROUPS_EVENTS_MAX];
    uint64_t leader_term[NODE_GROUPS_EVENTS_MAX];
    uint64_t leaderless_since_ms[NODE_GROUPS_EVENTS_MAX];
    uint8_t quorum_lost[NODE_GROUPS_EVENTS_MAX];
    int disk_full;
    int wan_role; /* enum wan_role_kind last seen (REGION_PROMOTED/DEMOTED) */
    uint64_t wan_role_epoch;
    uint32_t wan_role_by; /* the origin id of its promoted cluster's name */
    uint64_t started_ms;  /* the first cron */
    /* Leader of a group: followers reported lagging (bit per member index), per group. */
    uint64_t lagging[NODE_GROUPS_EVENTS_MAX];
    /* The walk over the groups' leaders and lags (node_walk_due), and how many groups it found
     * without a leader: while any is, the walk runs at every tick (QUORUM_LOST is timed). */
    struct node_walk groups_walk;
    size_t leaderless_groups;
};
void node_events_peer(struct hy_node *n, const char *name, int up, uint64_t now_ms);
/* A WAN link's event (wan_ship.c): `type` with `fields`, JSON members without braces. */
void node_events_wan(struct hy_node *n, uint64_t now_ms, const char *type, const char *fields);
/* Gossip declared member `name` DEAD: MEMBER_FAILED once (until it is ALIVE again). */
void node_events_failed(struct hy_node *n, const char *name, uint64_t now_ms);
/* A move the metadata leader cancelled (HALYARD REBALANCE CANCEL): MOVE_CANCELLED, with the
 * replicas the partition goes back to (sources) and those it no longer gets (targets), names
 * joined by commas. */
void node_events_move_cancelled(struct hy_node *n, uint64_t now_ms, uint32_t partition,
                                const char *targets, const char *sources, uint64_t epoch);
/* A partition's leader started (done = 0: MOVE_STARTED) or finished (1: MOVE_FINISHED) moving
 * a replica to `target` (from `source`, NULL when the partition only gains one), towards map
 * epoch `epoch`, or saw it end without `target` (2: MOVE_ABANDONED: the map no longer lists
 * it, the move was cancelled or redirected). */
void node_events_move(struct hy_node *n, uint64_t now_ms, const struct node_group *g, int done,
                      const char *target, const char *source, uint64_t epoch);
/* HALYARD ALERTS TEST: an ALERT_TEST event, which every alert-webhooks URL is sent (to check
 * the wiring); answers its id. */
void cmd_halyard_alerts(struct cmd_ctx *x);
void node_gossip_free(struct hy_node *n);
/* quorum.c: split-brain protection rules (quorum.h). node_quorum_check: 1 when x's command may
 * run, else it answers -QUORUM and returns 0. node_live_members: this node and the members
 * gossip holds alive or suspect (the transport's links with gossip off). */
void node_quorum_free(struct hy_node *n);
int node_quorum_check(struct cmd_ctx *x, const struct cmd_def *d);
uint32_t node_live_members(const struct hy_node *n);
/* The rules and their state now, as a JSON array (/health) or INFO lines. */
void node_quorum_json(const struct hy_node *n, struct hy_buf *out);
void node_quorum_info(const struct hy_node *n, struct hy_buf *out);
void node_events_cron(struct hy_node *n, uint64_t now_ms);
void cmd_halyard_events(struct cmd_ctx *x);

struct hy_node {
    struct hy_config *cfg;    /* borrowed from the shell */
    const struct hy_log *log; /* borrowed */
    struct hy_prng prng;
    struct hy_log raft_log; /* node_log.c: the core's lines, members named */
    node_mac_fn crypto_mac; /* lent by the shell (node_set_crypto); NULL in the simulator */
    node_random_fn crypto_random;
    node_hash_fn crypto_hash;    /* SHA-256 for ACL passwords (node_set_hash); NULL: none */
    node_read_file_fn file_read; /* node_set_files; NULL: none */
    node_write_file_fn file_write;
    int aclfile_pending;         /* aclfile set: loaded into the cluster once a leader is known */
    struct acl_state *acl;       /* acl.c: this node's ACL LOG */
    struct node_client *clients; /* doubly linked, newest first */
    size_t client_count;
    uint64_t next_client_id;
    uint64_t start_ms;
    size_t kills; /* clients marked CLOSE_ASAP by commands since last take */
    /* ---- replication (replica.c) ---- */
    /* The Raft groups this node holds a replica of (node_group_*). Today one, id 0: it holds
     * every slot and the membership; `meta` points to it. */
    struct node_group **groups;
    size_t group_count;
    struct node_group *meta;
    uint64_t raft_now_ms; /* the clock as the Raft groups see it: never goes backwards */
    /* The sum of every group's log_bytes_since_snapshot (replica.c snapshot_due: the groups
     * share snapshot-log-min by what each holds, not in equal parts). */
    uint64_t log_bytes_since_snapshots;
    /* Storage/network batches of every group, in order; io_next is the first not yet taken. */
    struct node_io_batch *io_head, *io_tail, *io_next;
    node_snapshot_fn snap_start;     /* the shell's snapshotter (NULL: encode inline) */
    node_config_hook_fn config_hook; /* the shell's check of a CONFIG SET (NULL: none) */
    void *config_hook_ctx;
    node_config_hook_fn rewrite_hook; /* the shell's CONFIG REWRITE (NULL: no file) */
    void *rewrite_hook_ctx;
    void *snap_ctx;
    node_send_fn early_send; /* the shell's sender for what need not wait (raft.h step 2) */
    void *early_ctx;
    int snapshots_on_disk;               /* node_set_snapshots_on_disk */
    node_snapshot_load_fn snapshot_load; /* node_set_snapshot_loader; NULL: nothing parks */
    void *snapshot_load_ctx;
    node_snapshot_chunk_fn snapshot_chunk; /* node_set_snapshot_receiver; NULL: in memory */
    node_snapshot_reserve_fn snapshot_reserve;
    node_snapshot_load_fn snapshot_recv_load;
    void *snapshot_recv_ctx;
    struct node_client *ready;      /* clients with output to flush (node_take_ready) */
    int read_waiters;               /* clients blocked until reads can be served */
    int read_rounds;                /* of them, those in a ReadIndex round (read_id != 0) */
    int disk_full;                  /* the log cannot grow: refuse writes (-READONLY) */
    int fatal;                      /* node_fatal: the process must stop */
    int draining;                   /* HALYARD DRAIN: hand leadership over, then stop */
    int drain_handoff;              /* HALYARD DRAIN with partitions to move off first: this
                                       node is marked leaving until they have (partmap.c) */
    uint64_t leaving_sent_ms;       /* the leaving mark last sent to the metadata leader */
    int drain_led;                  /* it led while draining (so it had leadership to hand over) */
    int self_removed;               /* a peer's current metadata says this node was removed while
                                       it missed the change: it leads nothing (member.c) */
    uint64_t removal_probe_ms;      /* when this node may next ask a peer whether it was removed */
    size_t removal_probe_next;      /* the member asked next */
    uint64_t hints_probe_ms;        /* when this node next asks its peers who leads (HY.LEADERS) */
    uint32_t rebalance_held_spread; /* the load spread last logged as held back (partmap.c) */
    uint64_t rebalance_wait_noted;  /* rebalance_step's last "nothing to move" reason logged */
    size_t rebalance_held_moves;    /* the map changes last logged as waiting for room */
    /* rebalance-bandwidth: the snapshot bytes per second this node's leaders send, shared by
     * every group (raft.h struct raft_pacer); its rate follows the setting at each tick. */
    struct raft_pacer snap_pacer;
    /* Members seen down while this node leads the metadata group (replace-after-ms). */
    struct node_down_watch {
        raft_id id;
        uint64_t since_ms;
        int logged;
    } down_watch[NODE_MEMBERS_MAX];
    size_t down_watch_count;
    uint64_t timeout_min; /* replica.c: the earliest of the groups' timeout_ms (0: none) */
    /* The latest stretch during which the shell read none of this node's input (a long loop
     * turn, or the Raft timer firing late because the process was not scheduled), handed to
     * every Raft timeout (raft.c "Deafness"). */
    uint64_t deaf_from_ms;
    uint64_t deaf_to_ms;
    /* The longest stretch since deaf_recent_at_ms, forgotten NODE_DEAF_RECENT_MS after it. */
    uint64_t deaf_recent_ms;
    uint64_t deaf_recent_at_ms;
    /* replica.c: the groups that queued writes or reads since node_flush last looked, each
     * once (in_flush), so that a loop turn costs what it did, not one look per group: with
     * 4,096 partitions walking every group at every turn was most of an idle node's CPU. */
    struct node_group **flush_list;
    size_t flush_count, flush_cap;
    int turn_busy; /* node_turn_busy_take */
    /* replica.c: freed waiters kept for reuse (at most NODE_WAITER_POOL_MAX), one pool for
     * every group, so that a write costs no allocation for its waiter. An array, not a list
     * linked through the waiters: taking one then reads no cold waiter's link, a cache miss
     * that cost 2% of a SET's CPU with 16 partitions (docs/partitioning.md "Row (e) in
     * session 20"). */
    struct node_waiter **waiter_pool; /* NODE_WAITER_POOL_MAX slots, allocated at first use */
    uint32_t waiter_pool_count;
    /* replica.c: node_wake_hold depth, and a wake of the clients postponed meanwhile. */
    int wake_held;
    int wake_due;
    int timeout_dirty;        /* timeout_min must be walked again */
    uint64_t balance_next_ms; /* balance.c: no leadership moved for balance before this */
    int balance_held; /* balance.c: leaderships uneven while rebalancing is paused (logged) */
    /* balance.c: the peers whose last HY.LEADERS answer said they drain, and when (the
     * metadata leader hands them no leadership while that is under 3 election timeouts old). */
    struct {
        raft_id id;
        uint64_t seen_ms;
    } drain_seen[NODE_MEMBERS_MAX];
    size_t drain_seen_count;
    uint64_t force_until_ms; /* FORCE-QUORUM: groups that step down are forced until then */
    /* Every member whose address we know (member.c): the replicated address book, then
     * MEMBER_SET entries found in the log at start, then this node's bootstrap (or join)
     * list, which wins for the names it gives. */
    struct node_member boot[RAFT_SERVERS_MAX];
    size_t boot_count;
    struct store_member log_members[STORE_MEMBERS_MAX];
    size_t log_member_count;
    uint64_t log_members_upto; /* overlay dropped once applied reaches this index */
    struct node_member members[NODE_MEMBERS_MAX];
    size_t member_count;
    /* Guests (node_guest_add): nodes that proved the cluster secret on a connection of their
     * own before this node's member list named them; their names, so that their Raft messages
     * and the answers to them are addressed. Oldest replaced first. */
    char guests[NODE_GUESTS_MAX][NODE_MEMBER_NAME_MAX + 1];
    uint8_t guest_up[NODE_GUESTS_MAX]; /* its link, as node_peer_state said: a member it
                                          becomes starts up (member_rebuild) */
    size_t guest_next;
    /* The partition map (partmap.c): the committed one, decoded (NULL until the metadata
     * group holds one), the bytes it came from, and the first configurations a bootstrap
     * list gives the partitions (NULL: every bootstrap member holds every partition). */
    struct node_placement *partmap;
    struct node_wan *wan; /* wan_ship.c: the links and their shippers (NULL until the first look) */
    struct hy_buf partmap_raw;
    uint64_t partmap_seen_applied;
    uint64_t partmap_epoch; /* grows at every change of the committed map */
    struct node_placement *boot_place;
    uint64_t domain_sent_ms; /* this node's zone and rack last sent to the metadata leader */
    uint8_t member_up[NODE_MEMBERS_MAX];    /* the transport's view; this node counts as up */
    struct node_events events;              /* events.c */
    struct node_gossip *gossip;             /* gossip.c; NULL until the shell starts it */
    struct node_quorum *quorum;             /* quorum.c: quorum-rules parsed; NULL until used */
    int health_score, cluster_health_score; /* node_set_health; -1 until set */
    char health_reasons[512];
    uint64_t wal_last_sync_ms;     /* node_set_wal_last_sync; 0 until set */
    uint64_t wal_loop_commits;     /* node_set_wal_loop_commits */
    uint64_t wal_loop_sync_pauses; /* the same */
    uint64_t members_epoch;        /* grows when members (or the Raft config) change */
    /* Grows at every Raft step of any group and every link that goes up or down: what the
     * periodic walks over every group read moves only then (node_walk_due). */
    uint64_t activity;
    /* observe.c: the counts over every partition of the last walk (observe_counters), and
     * when it was made. */
    struct node_part_counts {
        struct node_walk walk;
        uint32_t led, without_leader, under_replicated, without_quorum;
        uint32_t sharing_zone, sharing_rack;
        size_t keys, volatile_keys, parked;
        size_t wan_conflict_count;
        struct node_wan_conflict_view wan_conflicts[OBSERVE_WAN_MAX];
    } part_counts;
    uint64_t members_seen_version; /* store_members_version last folded in */
    uint64_t members_seen_config;  /* Raft membership index last folded in */
    /* cmd_wan.c wan_role_fresh: the metadata store's WAN role as last decoded, and the state of
     * that store it was read from (every client write asks: a lookup of the role's key each
     * time was a twentieth of a SET's instructions with partitions). */
    struct wan_role wan_role_seen;
    const struct store *wan_role_store;
    uint64_t wan_role_dirty, wan_role_applied;
    int wan_role_valid;
    uint64_t member_warned_ms;
    /* cmd_multi.c: while set, node_propose hands entries to the transaction being built. */
    struct node_capture *capture;
    /* cmd_script.c: the Lua script running now (it runs inside one loop step), and the
     * shell's poll that answers the other clients while it runs past busy-reply-threshold. */
#define NODE_BUSY_KILL_SHUTDOWN 2 /* script_busy.kill: the server stops (node_busy_stop) */
    struct node_script_busy {
        int active;
        int is_eval;         /* EVAL and friends (SCRIPT KILL), else a function (FUNCTION KILL) */
        int killable;        /* not at apply: a probe or a read-only run */
        int replica;         /* at apply in a group this node follows (NODE_BUSY_F_REPLICA) */
        uint32_t group;      /* the run's group */
        int wrote;           /* at apply: it has written (UNKILLABLE's wording) */
        int kill;            /* SCRIPT KILL / FUNCTION KILL (1) or a stopping server asked */
        int shutdown;        /* SHUTDOWN NOSAVE asked for the process to stop */
        uint64_t started_ms; /* on the shell's clock, set at its first poll; 0: not yet */
        char name[64];       /* the function's name (FUNCTION STATS) */
        char command[128];   /* the command that runs it, as FUNCTION STATS shows it */
    } script_busy;
    node_busy_poll_fn busy_poll;
    void *busy_poll_ctx;
    /* busy_peers.c: the peers whose loop a script holds, from their BUSY notices. */
    struct node_peer_busy {
        char name[NODE_MEMBER_NAME_MAX + 1];
        unsigned flags;      /* NODE_BUSY_F_* */
        uint64_t started_ms; /* on this node's clock: when the script started there */
        uint64_t until_ms;   /* forgotten then unless a notice renews it */
    } peer_busy[NODE_PEER_BUSY_MAX];
    size_t peer_busy_count;
    struct node_client *processing; /* node_client_process's client: its input is in use */
    uint64_t block_seq;             /* blocking.c: numbers clients in the order they blocked */
    int block_any; /* blocking.c: a client may be waiting for data (cleared by a pass that
                      found none) */
    /* blocking.c: replies written at apply since the last wake pass (while block_any), which
     * a pop that the same entries woke holds back; and the clients so held. */
    uint64_t wake_pass;
    struct node_replied {
        struct node_client *client; /* NULL once it went away */
        uint32_t group;
        uint64_t index;
        size_t mark; /* where its reply begins in its out */
    } * replied;
    size_t replied_count, replied_cap;
    uint32_t held_count;
    /* HY.REQ: while set, node_propose wraps the entry in a session request. */
    int wrap_active;
    uint64_t wrap_session, wrap_seq;
    /* Proxying (proxy.c): our forwards awaiting the leader's reply, and the outbox. */
    struct node_forward *forwards;
    size_t forward_count, forward_cap;
    uint64_t next_forward_id;
    struct node_peer_msg *outbox_head, *outbox_tail;
    /* MIGRATEs under way (cmd_migrate.c): their jobs until the shell takes them, then their
     * keys until node_migrate_done. */
    struct node_migration **migrations;
    size_t migration_count, migration_cap;
    uint64_t next_migration_id;
    uint64_t leaderless_since_ms;    /* no usable leader (none, or its link down) since; 0 = one */
    int fsession_wake;               /* a group's session changed: its waiting clients look again */
    struct node_walk fsession_walk;  /* proxy_check's look at every group's session */
    struct node_walk reconcile_walk; /* member_reconcile's look at every partition it leads */
    struct node_walk cron_walk;      /* node_cron's expiry, eviction and rehash of every group */
    size_t cron_volatile_keys;       /* keys with a TTL, every group's, at its last walk */
    size_t cron_rehashing;           /* groups whose tables were rehashing then */
    /* Members that answered HY.APPLIED as an unknown command (a version before it): forwards
     * to them go without it until `until_ms` (proxy.c). An empty name is a free row. */
    struct {
        char name[NODE_MEMBER_NAME_MAX + 1];
        uint64_t until_ms;
    } applied_unknown[NODE_MEMBERS_MAX];
    struct node_stats stats;
    struct node_metrics metrics;
    unsigned mutation; /* enum node_mutation: test only */
    struct resp_limits limits;
    /* Command lookup: open addressing over lower-cased names, built at create. */
    const struct cmd_def *cmd_slots[NODE_CMD_SLOTS];
};

/* Everything a handler needs; handlers never parse RESP. */
struct cmd_ctx {
    struct hy_node *node;
    struct node_group *group; /* the Raft group of the command's keys on this node */
    /* The keyspace the command runs against: its keys' partition on this node. Handlers reach
     * the store only through it (never x->node's), so that a node holding many partitions
     * runs them unchanged. */
    struct store *store;
    struct node_client *client;
    const struct cmd_def *cmd;
    size_t argc;
    const struct resp_arg *argv;
    uint64_t now_ms;
    struct resp_writer w; /* the reply, in the client's protocol */
};

extern const struct cmd_def node_commands[];
extern const size_t node_command_count;
const struct cmd_def *node_command_lookup(const struct hy_node *n, const uint8_t *name, size_t len);
/* For a container (CMD_CONTAINER), the "name|sub" row of argv[1] when the table has one (a
 * subcommand with its own flags, e.g. ACL SETUSER is a write); else d itself. */
const struct cmd_def *node_command_sub(const struct hy_node *n, const struct cmd_def *d,
                                       size_t argc, const struct resp_arg *argv);

/* Proposes a write for the client of x: queued for this turn's Raft batch; the client waits
 * and gets the reply when the entry applies. */
void node_propose(struct cmd_ctx *x, const struct store_entry *e);
/* node_propose, and the client gets the integer `value` instead of the write's +OK once the
 * entry applies (an error the write answers is kept). */
void node_propose_answer_integer(struct cmd_ctx *x, const struct store_entry *e, long long value);
/* Proposes op with argv[1..nargs] as the entry's arguments. */
void node_propose_argv(struct cmd_ctx *x, enum store_op op, uint32_t flags, int64_t incr,
                       int64_t expire_at, size_t nargs);
/* Proposes an entry nobody waits for (expiry, eviction). */
void node_propose_internal(struct node_group *g, const struct hy_buf *entry);

/* replica.c internals used by dispatch.c and node.c */
/* Creates group `id` (its store and Raft state) and adds it to the node. */
struct node_group *replica_group_new(struct hy_node *n, uint32_t id, struct store *store);
void replica_free(struct hy_node *n);
/* The group holding `slot` on this node (today the one group holds every slot). */
struct node_group *node_group_of_slot(const struct hy_node *n, uint16_t slot);
/* The partition (0-based) holding `slot`: 0 with one partition. */
uint32_t node_partition_of_slot(const struct hy_node *n, uint16_t slot);
/* The slots of partition `part` (0-based) of `parts`: those s with s * parts / 16384 == part,
 * a contiguous range (node_group_of_slot). */
void node_partition_slots(uint32_t part, uint32_t parts, uint32_t *lo, uint32_t *hi);
/* Whether partition g has fewer replicas up (this node's links; it counts itself) than the
 * replication factor can give, and fewer than a majority of them (cmd_halyard.c). */
void node_partition_risk(const struct hy_node *n, const struct node_group *g, int *under_replicated,
                         int *no_quorum);
/* The groups holding keys on this node (the one group, or every partition's), in partition
 * order; returns their count. */
size_t node_data_groups(const struct hy_node *n, struct node_group *const **out);
/* Keys (and keys with a TTL, when volatile_out is not NULL) in every partition's replica on
 * this node. */
size_t node_key_count(const struct hy_node *n, size_t *volatile_out);
/* A session id names the group whose store opened it: id >> NODE_SESSION_GROUP_SHIFT. */
#define NODE_SESSION_GROUP_SHIFT 48
/* SCAN cursors carry the partition in their low bits (cmd_keys.c): 10 bits. */
#define NODE_SCAN_PARTS          4096
_Static_assert(NODE_SCAN_PARTS >= NODE_PARTITIONS_MAX, "a SCAN cursor names every partition");
/* Group `id` on this node, or NULL when it holds no replica of it. */
struct node_group *node_group_get(const struct hy_node *n, uint32_t id);
void replica_queue(struct node_group *g, const uint8_t *entry, size_t len, struct node_waiter *w);
/* The turn's entry bytes: a proposer encodes straight into them (no scratch copy on the write
 * path), then calls replica_queue_tail with where its entry began. */
struct hy_buf *replica_turn_data(struct node_group *g);
void replica_queue_tail(struct node_group *g, size_t offset, struct node_waiter *w);
struct node_waiter *replica_waiter_new(struct node_group *g, struct node_client *c, uint64_t now);
void replica_client_gone(struct hy_node *n, struct node_client *c);
/* Drops client c's read round, if any (its pending entry, read_id, the count). */
void replica_read_forget(struct hy_node *n, struct node_client *c);
/* 1 when this node may answer reads from its store now (leader of a settled term). */
int replica_can_read(const struct node_group *g);
int replica_is_leader(const struct node_group *g);
/* Member `id`, a voter of g's configuration here, answered at now_ms whether it holds a copy of
 * g as a voter of its own (HY.LEADERS). replica_holder: what it answered at since_ms or later
 * (1 holds, 0 does not, -1 no answer since then, or not a voter here). */
void replica_note_holder(struct node_group *g, raft_id id, int holds, uint64_t now_ms);
int replica_holder(const struct node_group *g, raft_id id, uint64_t since_ms);
/* 1 when g, a copy the map pl moved away, may park on the last report of its replicas. */
int replica_copy_may_park(const struct node_group *g, const struct node_placement *pl);
void replica_mark_ready(struct hy_node *n, struct node_client *c);
/* Clients that waited may go on: runs them (after a link came up, say). */
void replica_wake(struct hy_node *n, uint64_t now_ms);
/* Node-level liveness of member `id` to every started group (RAFT_EV_LIVENESS). */
void replica_liveness(struct hy_node *n, raft_id id, int alive, int suspect, uint64_t now_ms);
/* Member `leader`'s node is busy and still leads `group` in `term` (RAFT_EV_LEADER_BUSY). */
void replica_leader_busy(struct hy_node *n, uint32_t group, raft_id leader, uint64_t term,
                         uint64_t now_ms);
/* A busy notice from follower `follower`'s node: each group this node leads hears it is alive
 * (check-quorum; raft.c on_follower_busy). */
void replica_follower_busy(struct hy_node *n, raft_id follower, uint64_t now_ms);
/* Cron: a quiesced partition group that follows a member the metadata group removed (whose
 * messages node_receive ignores) is told that member is down, so that it elects another. */
void replica_wake_from_removed_leaders(struct hy_node *n, uint64_t now_ms);
/* dispatch.c: the client waits (for a leader) until woken or its request-timeout-ms. */
void node_client_block(struct node_group *g, struct node_client *c, uint64_t now_ms);
/* The group a request runs against: its first key's slot's, else the metadata group. */
struct node_group *node_command_group(const struct hy_node *n, const struct cmd_def *d, size_t argc,
                                      const struct resp_arg *argv);
void replica_expire_waiters(struct hy_node *n, uint64_t now_ms);
/* Whether the walk `w` (struct node_walk) is due at now_ms: the node's activity moved since
 * the last one, or NODE_WALK_QUIET_MS passed. When due, records it as made now. */
int node_walk_due(struct hy_node *n, struct node_walk *w, uint64_t now_ms);
/* Something the periodic walks read changed outside a Raft step (a link, a peer's report). */
void node_note_activity(struct hy_node *n);
/* Registers a linearizable read for c (ReadIndex); the client waits for its confirmation. */
void replica_read_register(struct node_group *g, struct node_client *c, uint64_t now_ms);
/* member.c */
/* member.c: membership and metadata changes run on the metadata group's leader: forwarded there
 * once, or refused with -TRYAGAIN when none is known. Returns 1 when the request was handled here
 * (forwarded or refused), 0 when this node leads and makes the change itself. */
int node_route_to_meta_leader(struct cmd_ctx *x);
int member_load_boot(struct hy_node *n);
/* Rebuilds members from the lists; bumps members_epoch when anything changed. */
void member_rebuild(struct hy_node *n);
/* node.c: 1 when `name` is a guest whose link is up (node_guest_add). */
int node_guest_up(const struct hy_node *n, const char *name);
/* After applying or a Raft step: rebuild when the address book or configuration moved. */
void member_maybe_rebuild(struct hy_node *n);
/* Start: MEMBER_SET entries of the recovered log, applied or not, as address hints. */
void member_scan_log(struct hy_node *n, const struct raft_entry *entries, uint32_t count,
                     uint64_t first_index);
/* Leader: moves the Raft configuration towards the address book, one change at a time. */
void member_reconcile(struct hy_node *n, uint64_t now_ms);
int member_in_config(const struct hy_node *n, raft_id id);
/* member.c: 1 when this node knows it was removed from the cluster (its address book says so,
 * or a peer told it: it missed its removal). Its clients are sent to the members that remain
 * (-MOVED) instead of waiting for a leader that no longer talks to it. */
int member_removed_here(const struct hy_node *n);
/* A member that remains, up in this node's links, for g's requests: g's leader as this node
 * knows it, else any; NULL when none is reachable. */
const struct node_member *member_after_removal(const struct hy_node *n, const struct node_group *g);
/* Whether id is in g's Raft configuration (voter or learner). */
int node_group_has(const struct node_group *g, raft_id id);
/* "leader", "follower", "learner", "observer", "joining", "removed". */
const char *member_role_name(const struct hy_node *n, const struct node_member *m);
void cmd_halyard_join(struct cmd_ctx *x);
void cmd_halyard_remove(struct cmd_ctx *x);
void cmd_halyard_peers(struct cmd_ctx *x);
/* acl.c: the dispatch hook (see acl.h). */
struct store;
int acl_check(struct cmd_ctx *x, const struct cmd_def *d);
/* acl_check's verdict alone: no reply, no ACL LOG entry (a look ahead, proxy.c "Batches"). */
int acl_allows(struct cmd_ctx *x, const struct cmd_def *d);
int acl_default_open(const struct hy_node *n, const struct store *s);
void acl_init(struct hy_node *n);
void acl_free(struct hy_node *n);
/* join_auth.c: the joining node's proof of the cluster secret, open before AUTH. */
void cmd_halyard_challenge(struct cmd_ctx *x);
void cmd_halyard_peer_auth(struct cmd_ctx *x);
void cmd_halyard_wan_auth(struct cmd_ctx *x);
int join_auth_open_before_auth(const struct cmd_ctx *x);
/* Whether a WAN link's connection (HALYARD WAN-AUTH) may run x's command: only what a link
 * sends (join_auth.h). */
int join_auth_wan_link_may(const struct cmd_ctx *x);
/* node_log.c: the log sink for the Raft core (valid while n lives). */
const struct hy_log *node_raft_log(struct hy_node *n);
void cmd_halyard_force_quorum(struct cmd_ctx *x);
/* From cron, for a while after FORCE-QUORUM: forces the groups that stepped down since. */
void member_force_step(struct hy_node *n, uint64_t now_ms);
/* From cron: a node whose metadata replica has heard no leader for long asks a peer whether it
 * was removed (HY.MEMBERROLE); member_role_answer takes the peer's reply. */
void member_removal_step(struct hy_node *n, uint64_t now_ms);
void member_role_answer(struct hy_node *n, const char *from, const uint8_t *data, size_t len);
void cmd_hy_memberrole(struct cmd_ctx *x);
int replica_force(struct node_group *g, uint64_t now_ms);
/* This leader is handing leadership over: writes wait (§3.10). */
int replica_transferring(const struct node_group *g);
int replica_change(struct node_group *g, uint32_t op, raft_id id, uint64_t now_ms);

/* cmd_halyard.c, shared with observe.c. What this node can know of its leader: the one it
 * last heard from, and how long ago (ms); `current` when heard within an election timeout. */
struct leader_view {
    const struct node_member *last; /* last leader heard from, NULL = none */
    uint64_t contact_ms;            /* time since, 0 when this node leads */
    int current;                    /* heard within an election timeout */
};
void node_leader_view(const struct hy_node *n, uint64_t now_ms, struct leader_view *v);
/* Replication state of follower m as the leader sees it. Returns 0 on other nodes. */
struct lag {
    uint64_t match, entries, contact_ms;
    int answered, caught_up;
};
int node_follower_lag(const struct hy_node *n, const struct node_member *m, struct lag *out);
/* Members shown to operators: configured ones, and those the address book wants in. */
int node_member_shown(const struct hy_node *n, const struct node_member *m);
/* observe.c: empty histograms at create. */
void observe_init(struct hy_node *n);
/* observe.c: notes the outcome of a client's proposed write (error NULL = applied), once. */
void observe_note_outcome(struct hy_node *n, struct node_waiter *w, const char *error);
/* observe.c: after a Raft step: leader changes, the leader's log-growth samples. */
void observe_note_step(struct hy_node *n, uint64_t now_ms);

/* The leader's member entry, or NULL when no leader is known (or it is not a member). For a
 * partition this node holds no replica of: the one the map and -MOVED answers point to
 * (partmap_leader_member). */
const struct node_member *replica_leader_member(const struct node_group *g);
/* The leader as g's Raft state here knows it (held groups). */
const struct node_member *replica_raft_leader_member(const struct node_group *g);
/* Voters in the current configuration. */
uint32_t replica_voters(const struct node_group *g);
/* Voters whose link is up, this node included when it votes (the transport's view). */
uint32_t replica_reachable_voters(const struct node_group *g);

/* Leadership transfer (TimeoutNow, §3.10) to target; returns raft's status. */
int replica_transfer(struct node_group *g, raft_id target, uint64_t now_ms);
/* Takes a snapshot now; HY_EEXIST when nothing was applied since the last one. */
int replica_snapshot_now(struct node_group *g, uint64_t now_ms);

/* partmap.c: the partition map (docs/partitioning.md "Replicas"). */
/* Folds a newly committed map into n->partmap (after the metadata group applied). */
void partmap_refresh(struct hy_node *n);
/* The metadata group's leader commits the map the members call for, when it differs. */
void partmap_maintain(struct hy_node *n, uint64_t now_ms);
/* Partition group g's replicas in the committed map, or NULL (no map yet, or g is the
 * metadata group, or the node has one group). */
const struct node_placement *partmap_of(const struct hy_node *n, const struct node_group *g);
/* Whether g's own Raft state here says who leads and votes: no map, or the map places g here
 * and this node is in g's configuration. Otherwise (not placed here, or removed from g and
 * never told, or not added yet) the map's replicas do (partmap.c). */
int node_group_raft_view(const struct node_group *g);
/* Whether partition group g's voters are its replicas in the committed map, as this node
 * knows: its own replica's configuration where it holds g, else what g's replicas last
 * reported (HY.LEADERS). 0 without a map, or not known. */
int partmap_group_settled(const struct node_group *g);
/* Whether this node holds every partition (always, without a map). */
int partmap_holds_all(const struct hy_node *n);
/* Whether the committed map places every partition on every member (or there is no map): only
 * then does every node see every partition's leader. */
int partmap_everyone_holds_all(const struct hy_node *n);
/* The first configuration of partition group g from the bootstrap list: fills ids, returns
 * their count; -1 when every bootstrap member holds it. */
int partmap_boot_servers(struct hy_node *n, const struct node_group *g, raft_id *ids);
/* The member leading g, as well as this node knows: its Raft view where it holds g, else the
 * hint (a -MOVED answer), else the first live replica of the map. NULL: none known. */
const struct node_member *partmap_leader_member(const struct node_group *g);
/* A forward to a partition not held here was answered -MOVED host:port by member `from`:
 * the hint. */
void partmap_note_moved(struct node_group *g, raft_id from, const uint8_t *reply, size_t len);
/* From cron, where this node does not hold every partition: now and then (an election
 * timeout) asks every live peer who leads the groups it holds (HY.LEADERS), so that the
 * leaders of partitions held elsewhere are known without a forward's -MOVED (a node
 * answering -MOVED to clients forwards nothing, and its CLUSTER SLOTS would name a leader
 * gone for good). partmap_note_leaders takes an answer; cmd_hy_leaders gives one. */
void partmap_refresh_hints(struct hy_node *n, uint64_t now_ms);
void partmap_note_leaders(struct hy_node *n, const char *from, const uint8_t *reply, size_t len,
                          uint64_t now_ms);
/* Reading an HY.LEADERS answer (bytes from a peer, fuzzed by tests/fuzz/fuzz_leaders.c): its
 * lines "group term name [settled-epoch [configuration-index]]\n", then, from a node that
 * drains, "draining\n", and last, for each group whose copy there is a voter of its own
 * configuration (led or not, placed there by the map or not), "voter group\n" (a node of before
 * stops reading at the first).
 * partmap_leaders_body: where the lines of a bulk-string reply start, or NULL (an error
 * reply, or anything else). partmap_leaders_next: the item at *p, advancing *p past it: a line
 * (*out filled; name NUL-terminated), the draining mark, or the end (also at a line that does
 * not parse or is too long: what follows is ignored). Never reads at or past end. */
enum {
    PARTMAP_LEADERS_END = 0,
    PARTMAP_LEADERS_LINE,
    PARTMAP_LEADERS_DRAINING,
    PARTMAP_LEADERS_VOTER /* out->group only */
};
struct partmap_leaders_line {
    uint32_t group;
    uint64_t term;
    uint64_t settled; /* the map epoch the group's voters match (0: not settled, or absent) */
    /* The index of the configuration so settled, in the group's log (0: absent, as from a
     * node of before, or not settled) */
    uint64_t cfg_index;
    char name[NODE_MEMBER_NAME_MAX + 1];
};
const char *partmap_leaders_body(const uint8_t *reply, size_t len);
int partmap_leaders_next(const char **p, const char *end, struct partmap_leaders_line *out);
void cmd_hy_leaders(struct cmd_ctx *x);
/* The metadata group's key saying whether fair-share rebalancing runs ("running", the default
 * when absent), is paused ("paused"), or is to cancel the moves under way and pause
 * ("cancel": the metadata leader carries it out and writes "paused"); HALYARD REBALANCE
 * PAUSE|RESUME|CANCEL|STATE. */
#define PARTMAP_REBALANCE_KEY "halyard:rebalance"
/* The metadata group's key recording the moves under way: where each started (placement.h
 * node_moves_note), in the partition map's text form; written with the map. */
#define PARTMAP_MOVES_KEY     "halyard:rebalance-moves"
/* Paused, or a cancel not carried out yet (no move starts either way). */
int partmap_rebalance_paused(const struct hy_node *n);
/* The metadata leader: how many moves under way a cancel carried out now would put back
 * (partmap_maintain's cancel, counted on copies; HALYARD REBALANCE CANCEL's answer). */
size_t partmap_cancellable(struct hy_node *n);
/* How many moves the committed record says are under way (the metadata leader's count of
 * them may be lower: it also knows which have finished). */
uint32_t partmap_moves_recorded(const struct hy_node *n);
/* Whether the metadata group's record of moves under way (halyard:rebalance-moves) has one of
 * partition group g that started on this node: a move's source, which may still be a voter
 * (and hold the partition's only live copy) while the map names other members. */
int partmap_move_from_here(const struct hy_node *n, const struct node_group *g);
int partmap_move_from(const struct hy_node *n, const struct node_group *g, raft_id id);
/* The partition g serves, as events and -NOQUORUM name it: -1 for the metadata group (events.c). */
int node_group_partition(const struct hy_node *n, const struct node_group *g);
/* Whether x reads partition g's keys from this node's replica (scatter.c). */
int node_scatter_reads_here(const struct cmd_ctx *x, const struct node_group *g);
int partmap_move_target_with_origin_up(const struct hy_node *n, const struct node_group *g);
/* The committed map's replicas per placement member: the most held minus the fewest. */
uint32_t partmap_load_spread(const struct hy_node *n);
void cmd_halyard_rebalance(struct cmd_ctx *x);
/* The metadata group's key holding a replication factor set at run time (HALYARD
 * REPLICATION-FACTOR N); without it, the one the cluster was created with. */
#define PARTMAP_RF_KEY "halyard:replication-factor"
uint32_t partmap_replication_factor(const struct hy_node *n);
void cmd_halyard_replication_factor(struct cmd_ctx *x);
/* Voters of g, and those reachable, by the map where this node does not hold g. */
uint32_t partmap_voters(const struct node_group *g, uint32_t *reachable);
void partmap_free(struct hy_node *n);
/* A member's zone and rack as the metadata group holds them (each "" when none); for this
 * node, its own settings. With one partition there are none but this node's own. */
void partmap_member_domain(const struct hy_node *n, const char *name, char zone[33], char rack[33]);
/* Sends this node's zone and rack to the metadata group's leader (HALYARD DOMAIN) while the
 * committed ones differ, now and then (from cron, on a node whose metadata replica is fresh). */
void partmap_publish_domain(struct hy_node *n, uint64_t now_ms);
/* Whether member `name` is marked leaving in the committed metadata (HALYARD LEAVING). */
int partmap_leaving(const struct hy_node *n, const char *name);
/* Whether placement could leave this node out if it were marked leaving: partitions exist and
 * the members not leaving, without it, are at least the replication factor. */
int partmap_handoff_possible(const struct hy_node *n);
/* A node that drains with a hand-off (drain_handoff): -1 while its leaving mark is not
 * committed, else how many partitions it still holds a replica of (named by the map, or not
 * yet settled without it); 0 also when placement cannot leave it out (*stuck set: too few
 * members would remain). */
int partmap_handoff_left(const struct hy_node *n, int *stuck);
/* Sends this node's leaving mark (drain_handoff) to the metadata leader while the committed one
 * differs: set while it hands off, cleared once it runs again (from cron, as the domain). */
void partmap_publish_leaving(struct hy_node *n, uint64_t now_ms);
/* Of the committed map's partitions, how many have replicas sharing a zone, and (among the
 * others) a rack: placement spreads them when enough zones exist, so these are the
 * partitions one failure domain's loss could take below a majority. */
void partmap_shared_domains(const struct hy_node *n, uint32_t *zone_out, uint32_t *rack_out);
/* Whether the placement members' committed zones (racks) span more than one. */
int partmap_zoned(const struct hy_node *n);
/* HALYARD DOMAIN name zone rack: writes a member's zone and rack in the metadata group. */
void cmd_halyard_domain(struct cmd_ctx *x);
/* HALYARD LEAVING name 0|1: marks a member leaving (its replicas move off) or not. */
void cmd_halyard_leaving(struct cmd_ctx *x);
/* cmd_wan.c and wan_ship.c (docs/wan.md) */
struct wan_link;
void cmd_halyard_wan(struct cmd_ctx *x);
void cmd_hy_wanapply(struct cmd_ctx *x);
size_t node_wan_links(struct hy_node *n, struct wan_link *out, size_t cap);
struct wan_role;
void node_wan_role(struct hy_node *n, struct wan_role *out);
/* *role_out: the node's copy of the role, valid until the metadata group applies an entry. */
int node_wan_passive(struct hy_node *n, const struct wan_role **role_out);
struct wan_conflict;
/* The last merge decisions over link made by the partitions this node leads, newest first. */
size_t node_wan_conflicts_last(struct hy_node *n, const char *link, struct wan_conflict *out,
                               size_t cap);
/* The partitions this member holds a replica of that have not applied the promotion of role
 * yet (STORE_OP_WAN_FENCE; none unless role is primary): their numbers, comma-separated, are
 * appended to out; returns how many. */
size_t node_wan_fence_pending(struct hy_node *n, const struct wan_role *role, struct hy_buf *out);
void node_wan_status_partitions(struct hy_node *n, const char *link, struct hy_buf *b, int json,
                                uint64_t now_ms);
void node_wan_group_init(struct node_group *g);
/* wan-queue-full block-writes, a link known and g's outbox at wan-outbox-max-bytes or more:
 * clients' writes to g are refused until its links' targets catch up (docs/wan.md "Resync").
 * *bytes_out: the outbox's size. */
#define WAN_QUEUE_FULL_BLOCK 1
int node_wan_blocked(const struct node_group *g, size_t *bytes_out);
void node_wan_group_free(struct node_group *g);
/* The group is about to apply the entry at index (every entry, before store_apply). */
void node_wan_applying(struct node_group *g, uint64_t index, uint64_t now_ms);
void node_wan_cron(struct hy_node *n, uint64_t now_ms);
/* A read d (argv) ran on g's leader: its keys' reads are counted for HIGHER_HITS (docs/wan.md
 * "HIGHER_HITS"); nothing unless g keeps versions (an active-active link). */
void node_wan_note_read(struct node_group *g, const struct cmd_def *d, size_t argc,
                        const struct resp_arg *argv);
void node_wan_free(struct hy_node *n);

/* balance.c, from cron: spreads leaderships over the members. Where every member holds every
 * partition, each node hands one of its partitions to the live voter leading fewest when it
 * leads two more than that one; otherwise the metadata group's leader plans the transfers
 * from every member's counts (docs/partitioning.md "Leader balance"). */
void node_balance_leaders(struct hy_node *n, uint64_t now_ms);
/* balance.c: each member's fair share of the leaderships, in units of 1/BALANCE_UNIT of a
 * partition (fair_out), and how many it leads (leads_out), both indexed like n->members,
 * over the partitions whose leader this node knows and may keep leading (what the metadata
 * leader's balancer acts on; HALYARD STATUS shows it). Returns the partitions counted. */
#define BALANCE_UNIT 420 /* lcm(1..7): 1/k of a partition is a whole number of units, k <= 7 */
size_t node_balance_shares(const struct hy_node *n, uint64_t now_ms, uint64_t *fair_out,
                           size_t *leads_out);
/* balance.c: a peer's HY.LEADERS answer said it drains (partmap_note_leaders). */
void node_balance_note_draining(struct hy_node *n, raft_id id, uint64_t now_ms);
/* cmd_halyard.c: retries the leadership hand-over of a draining node. */
void node_drain_step(struct hy_node *n, uint64_t now_ms);

/* proxy.c */
/* The leader requests may go to now (this node itself when it leads), or NULL: none known, or
 * its link is down. */
const struct node_member *proxy_target(const struct node_group *g);
/* Sends x's request to the leader; the client waits for the reply. Returns 0 when it cannot
 * (no reachable leader, or this node leads). */
int proxy_forward(struct cmd_ctx *x);
/* The same, to member m (up, not this node). */
int proxy_forward_to(struct cmd_ctx *x, const struct node_member *m);
/* Reads a FORWARD's head (its RESP version, and the client's ACL user when it names one, then
 * borrowed from data): returns its length, or 0 when data does not start with one. */
size_t proxy_forward_head(const uint8_t *data, size_t len, int *proto_out, const uint8_t **user_out,
                          size_t *user_len_out);
/* Asks member m a question of this node's own (enum node_probe): `HY.MEMBERROLE <this
 * node's name>` (member_removal_step) or `HY.LEADERS` (partmap_refresh_hints). */
void proxy_probe(struct hy_node *n, const struct node_member *m, enum node_probe what,
                 uint64_t now_ms);
/* Asks member `leader` to hand its leadership of `partition` to member `target` (HALYARD
 * FAILOVER TO target PARTITION partition, as halyctl cluster failover does): the metadata
 * leader's balancer (balance.c). Nothing waits for the answer. */
void proxy_probe_transfer(struct hy_node *n, const struct node_member *leader, size_t partition,
                          const char *target, uint64_t now_ms);
/* Redis's min-replicas-to-write: 1 when fewer replicas of g than it asks for (followers this
 * leader heard from within min-replicas-max-lag seconds) are good, so writes are refused
 * with -NOREPLICAS. 0 when the setting is 0 (the default). */
int node_replicas_short(const struct node_group *g);
/* Answers -OOM and returns 1 when d may not run for lack of memory (maxmemory, noeviction). */
int node_refuse_oom(struct cmd_ctx *x, const struct cmd_def *d);
/* Whether a write must wait before it is forwarded: for the follower's own session to open,
 * or for room in its window (its oldest unresolved seq is STORE_SESSION_WINDOW behind). */
int proxy_hold(struct node_group *g, struct node_client *c, const struct cmd_def *d,
               uint64_t now_ms);
/* The client's request is done (answered, or proposed here): its session slot is released. */
void proxy_request_done(struct hy_node *n, struct node_client *c);
/* Batches (proxy.c): whether the client's next pipelined request (argc, argv) may go in the
 * frame of its forward still gathering (fwd_open): the same command, partition and leader,
 * and nothing this node would answer itself; the frame leaves at proxy_batch_close. The slot
 * of a request sent before in a batch and back in the input: proxy_take_held. */
/* dispatch.c: whether argc fits d's arity. */
int node_arity_ok(const struct cmd_def *d, size_t argc);
int proxy_batch_joins(struct hy_node *n, struct node_client *c, size_t argc,
                      const struct resp_arg *argv, uint64_t now_ms);
void proxy_batch_close(struct hy_node *n, struct node_client *c);
void proxy_take_held(struct node_client *c);
/* Read-your-writes (proxy.c, "Acknowledged writes"): whether the request (d, argc, argv) of c,
 * which this node decides from its own replica (a blocking command's first look, XREAD and
 * XREADGROUP with BLOCK, INFO, CONFIG GET), must first wait for this replica to apply the
 * writes this node's forwards had acknowledged. Returns 1 when it waits (blocked_on_read). */
int proxy_ryw_hold(struct node_group *g, struct node_client *c, const struct cmd_def *d,
                   size_t argc, const struct resp_arg *argv, uint64_t now_ms);
/* 1 when c's read-your-writes wait is over: its group applied the index (or went away). */
int proxy_ryw_ready(const struct hy_node *n, const struct node_client *c);
/* c's request is done: the next one looks at every group again. */
void proxy_ryw_reset(struct node_client *c);
/* HY.APPLIED group: this node's last applied index of the group (0 when it holds none). A
 * follower sends it behind every write it forwards (proxy.c). */
void cmd_hy_applied(struct cmd_ctx *x);
/* Wakes the clients waiting for the follower's session, if it changed (from the shell's entry
 * points and cron, never from inside a client's processing). */
void proxy_wake(struct hy_node *n, uint64_t now_ms);
/* Whether a command may travel inside HY.REQ (a data write). */
int proxy_wrappable(const struct cmd_def *d);
/* After a Raft step or a link change: resolves the forwards whose leader failed (a read runs
 * again, a write is answered -UNKNOWN) and notes since when no leader is usable. */
void proxy_check(struct hy_node *n, uint64_t now_ms);
/* proxy_check for what a change of g alone can change (called on every step of g: with
 * thousands of groups, checking all of them there cost O(groups^2) a turn). */
void proxy_check_group(struct node_group *g, uint64_t now_ms);
/* 1 when this node knows it is cut off from a majority of group g: no usable leader (of the
 * metadata group) for an election timeout, and fewer of g's voters reachable than g's quorum.
 * Requests for g then get -NOQUORUM at once. The quorum is g's own: the reply names it
 * (node_reply_no_leader), and a majority of the metadata group's voters may be out of reach
 * while g's are not (their configurations differ while members change). */
int node_cut_off(const struct hy_node *n, const struct node_group *g, uint64_t now_ms);
/* A proxy client that finished: its reply goes back to the follower; the client is freed.
 * Returns 1 when it did. */
int proxy_maybe_finish(struct hy_node *n, struct node_client *c);
/* wan_peer.c: a WAN link's request client (wan_conn) with its answer: the answer queued for
 * the shell, the client freed; 1 when it was. */
int wan_peer_maybe_finish(struct hy_node *n, struct node_client *c);
void proxy_client_gone(struct hy_node *n, struct node_client *c);
void proxy_expire(struct hy_node *n, uint64_t now_ms);
void proxy_free(struct hy_node *n);

/* scatter.c: FLUSHALL/FLUSHDB with partitions runs as one internal request per partition;
 * returns 0 when the node has one group (the caller runs the plain command). */
int node_scatter_flush(struct cmd_ctx *x);
/* DBSIZE (keys 0) and KEYS (keys 1) on a node that does not hold every partition: run in
 * every partition on its leader and summed or joined; 0 when it holds them all. */
int node_scatter_keyspace(struct cmd_ctx *x, int keys);
/* SCAN's step in partition `part` (held on other members) from its own cursor `inner`: run
 * there as HY.SCANPART, the reply's cursor made the keyspace's. 0 when it cannot (answered). */
int node_scatter_scan(struct cmd_ctx *x, size_t part, uint64_t inner);
/* WATCH on a node that does not lead the keys' partition: one HY.WATCHPART read on its leader,
 * whose versions node_multi_watch_fold adds; answered +OK then. 0 when x is no client's own
 * WATCH (forwarded, in a transaction): read here. */
int node_scatter_watch(struct cmd_ctx *x);
/* Adds a HY.WATCHPART reply's keys and versions to c's watched keys; 0 when malformed. */
int node_multi_watch_fold(struct node_client *c, const uint8_t *p, size_t len);
/* RANDOMKEY where some partitions are held elsewhere: HY.RANDOMKEYPART on each of those, a
 * key drawn by key count among them and this node's. 0 when every partition is held here. */
int node_scatter_randomkey(struct cmd_ctx *x);
/* INFO's cluster-wide figures (keyspace, memory): summed over the partitions that answered
 * HY.INFOPART on their leaders, or over this node's replicas when it holds every partition. */
struct node_info_totals {
    int64_t keys, expires, dataset_bytes;
    int64_t answered, partitions; /* partitions counted, of how many */
    int scattered;                /* 1: from the partitions' leaders; 0: this node's replicas */
};
/* INFO where some partitions are held elsewhere and the sections asked (bits of
 * cmd_info.c's table, `sections`) include keyspace or memory: HY.INFOPART in every partition,
 * then node_info_render. 0 when it is not needed (the caller renders at once). */
int node_scatter_info(struct cmd_ctx *x, uint32_t sections);
/* cmd_info.c: INFO's reply for the sections asked, with t's figures (NULL: this node's). */
void node_info_render(struct hy_node *n, uint64_t now_ms, uint32_t sections,
                      const struct node_info_totals *t, int proto, struct hy_buf *out);
/* Runs `cmd slot extra...` once per partition (slot: one of the partition's), each on an
 * internal client routed as any request; the client of x is answered once all are: the first
 * error, else ok_reply (RESP bytes, at most 159; "" = +OK). Works with one group too. */
void node_scatter_parts(struct cmd_ctx *x, const char *cmd, const struct resp_arg *extra,
                        size_t nextra, const char *ok_reply);
/* Runs the request req (RESP bytes, borrowed) on an internal client named `name`, routed as
 * any request, answered to parent as one of its parts (parent->scatter_pending counts it);
 * parent NULL: an orphan, freed once answered. */
void node_scatter_request(struct hy_node *n, struct node_client *parent, const char *name,
                          const uint8_t *req, size_t len, uint64_t now_ms);
/* c's parts are all answered (its reply is in c->out): it is marked ready, and the requests
 * it read meanwhile run. */
void node_scatter_resume(struct hy_node *n, struct node_client *c);
/* cmd_migrate.c: MIGRATE's keys: argv[3], or those after KEYS when argv[3] is empty. */
void node_migrate_keys(size_t argc, const struct resp_arg *argv, size_t *first, size_t *count);
/* Frees the MIGRATEs under way (node_destroy). */
void node_migrate_free(struct hy_node *n);
/* script: SCRIPT LOAD and SCRIPT FLUSH run in every partition (cmd_script.c). */
int node_script_scatters(const struct cmd_def *d);
/* EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO: keys after numkeys (argv[2]). */
int node_is_script(const struct cmd_def *d);
/* The body of the script named sha in store first (NULL: slot 0's partition, for keyless
 * commands), borrowed until the next apply, or NULL. */
const uint8_t *node_script_find(const struct hy_node *n, const struct store *first,
                                const uint8_t *sha, size_t sha_len, size_t *len_out);
/* The store's runner of STORE_OP_EVAL entries (ctx: the group). */
int node_script_apply_cb(void *ctx, struct store *s, const struct store_entry *e, const char *sha,
                         struct resp_writer *w);
/* cmd_multi.c: runs d's handler for x with its proposal captured instead of queued. Returns 1
 * with the one entry it proposed in entry_out, 0 when it proposed nothing (its reply, if
 * any, went to x->w), -1 when it proposed more than one or in another group. */
int node_capture_run(struct cmd_ctx *x, const struct cmd_def *d, struct hy_buf *entry_out);
/* From node_take_ready: an internal part that answered is collected (and freed); returns 1
 * for every internal part, answered or not. */
int scatter_maybe_finish(struct hy_node *n, struct node_client *c);
/* A client went away: its internal parts finish without it. */
void scatter_client_gone(struct hy_node *n, struct node_client *c);

/* pubsub.c: keyspace notifications. The store's callback (ctx: the node), and the classes
 * the stores are asked to report under the node's notify-keyspace-events. */
void node_notify_keyspace_cb(void *ctx, unsigned cls, const char *event, const uint8_t *key,
                             size_t klen);
unsigned node_notify_classes(const struct hy_config *cfg);
/* cmd_command.c: COMMAND GETKEYS, GETKEYSANDFLAGS, LIST, HELP; 0 when argv[1] is none. */
int node_command_more(struct cmd_ctx *x);
/* Whether d's "keys" are shard channels (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH). */
int node_cmd_shard_channels(const struct cmd_def *d);

/* Reply helpers with Redis's exact texts. */
void node_reply_syntax_error(struct cmd_ctx *x);
/* A HELP subcommand's reply: the lines, one simple string each, as Redis answers it. */
void node_reply_help(struct cmd_ctx *x, const char *const *lines, size_t n);
void node_reply_not_integer(struct cmd_ctx *x);
void node_reply_wrongtype(struct cmd_ctx *x);
void node_reply_arity(struct resp_writer *w, const char *name);

/* Argument helpers. */
int node_arg_is(const struct resp_arg *a, const char *lit);
int node_arg_i64(struct cmd_ctx *x, size_t i, int64_t *out); /* replies the error on failure */
/* SRANDMEMBER/HRANDFIELD/ZRANDMEMBER key [count [with]] (with NULL: no such option): the
 * count (0 when absent) and whether `with` was given; 0 when an error was replied. */
int node_rand_count(struct cmd_ctx *x, const char *with, int64_t *count, int *with_out);
/* numkeys of LMPOP/SINTERCARD (>= 1); replies Redis's error and returns 0 otherwise. */
int node_arg_numkeys(struct cmd_ctx *x, size_t i, int64_t *out);
const struct store_obj *node_lookup(struct cmd_ctx *x, size_t i);
/* store_find on argv[i] requiring type t: returns 1 with *o (maybe NULL when absent), or
 * replies WRONGTYPE and returns 0. */
int node_lookup_typed(struct cmd_ctx *x, size_t i, enum store_type t, const struct store_obj **o);

/* Converts a TTL argument to an absolute expiry in ms. `unit_ms` is 1 or 1000; `base_ms` is
 * added for relative forms (0 for the *AT forms). Returns 0 on overflow. */
int node_expire_abs(int64_t v, int64_t unit_ms, int64_t base_ms, int64_t *abs_out);
/* Parses SCAN-family options from argv[first..]: MATCH, COUNT and (when allow_type) TYPE.
 * Replies the error and returns 0 on bad input. */
struct scan_opts {
    const struct resp_arg *match;
    int64_t count;
    int type; /* 0 = any, else enum store_type; -1 = a type that matches nothing */
};
int node_parse_scan_opts(struct cmd_ctx *x, size_t first, int allow_type, struct scan_opts *o);
/* The enum store_type TYPE names (as TYPE answers), or -1 for any other word. */
int node_type_parse(const struct resp_arg *a);
int node_parse_cursor(struct cmd_ctx *x, size_t i, uint64_t *out);
void node_write_cursor(struct resp_writer *w, uint64_t cursor);
int node_scan_match(const struct scan_opts *o, const uint8_t *p, size_t len);

/* Counts a reply in INFO errorstats when it is an error (reply[0..len) is one whole reply;
 * a RESP '-' line: its first word is the code). */
void node_note_reply(struct hy_node *n, const uint8_t *reply, size_t len);
/* INFO commandstats: the counters a request of d (argv[0..argc)) counts in: d's own, or for a
 * container command its subcommand's; -1 for none (d NULL). */
int node_cmdstat_slot(struct hy_node *n, const struct cmd_def *d, size_t argc,
                      const struct resp_arg *argv);
/* A call of slot answered or proposed, taking usec; a call refused before it ran; a call that
 * ran and answered an error. A slot from before CONFIG RESETSTAT may be gone: ignored. */
void node_cmdstat_call(struct hy_node *n, int slot, uint64_t usec);
void node_cmdstat_rejected(struct hy_node *n, int slot);
void node_cmdstat_failed(struct hy_node *n, int slot);

void node_client_describe(struct hy_node *n, const struct node_client *c, uint64_t now_ms,
                          struct hy_buf *out);

/* dispatch.c */
void node_reply_unknown_command(struct resp_writer *w, size_t argc, const struct resp_arg *argv);
/* The index of the request's first key (XREAD's after STREAMS), or 0 when it has none. */
size_t node_first_key(const struct cmd_def *d, size_t argc, const struct resp_arg *argv);
/* Calls fn with each key of the request (as the command table's key columns, numkeys and
 * XREAD's STREAMS name them) until it returns 0. Returns 0 then, 1 after the last key, -1
 * when the table names no key columns for d (EXEC, FLUSHALL, HY.*: the caller decides). */
int node_keys_each(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                   int (*fn)(const void *ctx, const struct resp_arg *key), const void *ctx);
/* 1 when every key of the request is in g's partition (or the node has one group). */
int node_keys_in_group(const struct hy_node *n, const struct node_group *g, const struct cmd_def *d,
                       size_t argc, const struct resp_arg *argv);

/* cmd_multi.c: transactions. */
int node_multi_active(const struct node_client *c);
/* Queues x's command when its client is in MULTI (answering +QUEUED or the error that makes
 * EXEC abort); returns 0 for a command that does not queue (EXEC, DISCARD, MULTI, WATCH...). */
int node_multi_queue(struct cmd_ctx *x, const struct cmd_def *d);
/* EXEC of an active transaction: answers it at once (EXECABORT, an empty one; returns 0) or
 * sets the HY.EXEC request to run instead (borrowed until node_multi_exec_sent; returns 1). */
int node_multi_exec_request(struct hy_node *n, struct node_client *c, struct resp_writer *w,
                            size_t *argc_out, const struct resp_arg **argv_out);
void node_multi_exec_sent(struct node_client *c);
void node_multi_reset(struct node_client *c);
/* A request of c while a script is busy (cmd_script.c): MULTI and DISCARD run, EXEC aborts
 * the transaction with the busy error, anything else gets it (and dooms a transaction). */
void node_multi_busy(struct node_client *c, const struct cmd_def *d, struct resp_writer *w,
                     const char *busy);
/* The context a request served while a script is busy runs in (c's request argv, against g). */
struct cmd_ctx node_busy_ctx(struct hy_node *n, struct node_group *g, struct node_client *c,
                             const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                             uint64_t now_ms, struct resp_writer w);
/* Redis's -BUSY text for a script (is_eval) or a function. */
const char *node_busy_text(int is_eval);
/* SCRIPT KILL, FUNCTION KILL (kill = 1) or FUNCTION STATS (0): the requests a busy script
 * leaves to be answered, also when they come from a peer (1 when d, argv is one). */
int node_busy_request_kind(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                           int *kill_out);
/* busy_peers.c: while a peer's script is past this node's busy-reply-threshold, c's request
 * is answered as the busy node answers it (-BUSY, MULTI/DISCARD/EXEC as node_multi_busy),
 * or, SCRIPT KILL / FUNCTION KILL / FUNCTION STATS, forwarded to the busy node. Returns 1
 * when it did either (the request is done or forwarded), 0 to run it as usual. */
int node_busy_elsewhere(struct hy_node *n, struct node_client *c, const struct cmd_def *d,
                        size_t argc, const struct resp_arg *argv, uint64_t now_ms);
/* A BUSY notice (docs/peer-protocol.md "BUSY (14)"): flags (NODE_BUSY_F_*; 0: the script is
 * over, and no groups), how long the script has run, and the groups the sender leads with
 * their terms (owned arrays of count entries). */
#define NODE_BUSY_F_ACTIVE   1u /* a script runs there */
#define NODE_BUSY_F_EVAL     2u /* EVAL and friends (SCRIPT KILL), else a function */
#define NODE_BUSY_F_KILLABLE 4u /* a probe or a read-only run: SCRIPT KILL stops it */
#define NODE_BUSY_F_REPLICA                                       \
    8u /* a run at apply in a group the sender follows: no client \
          waits for it (the leader's run answers), so it makes no \
          node answer -BUSY; its groups' notices still count */
#define NODE_BUSY_F_ALL      15u
#define NODE_BUSY_GROUPS_MAX 4096
struct node_busy_notice {
    unsigned flags;
    uint64_t ran_ms;
    size_t count;
    uint32_t *group;
    uint64_t *term;
};
void node_busy_notice_encode(struct hy_buf *out, const struct node_busy_notice *b);
/* Reads a notice from a peer's bytes: 1 with *out filled (free with node_busy_notice_free),
 * 0 when they are not one (nothing to free). */
int node_busy_notice_parse(const uint8_t *data, size_t len, struct node_busy_notice *out);
void node_busy_notice_free(struct node_busy_notice *b);
/* 1 while peer `name`'s notice says a script holds it. */
int node_peer_busy_now(struct hy_node *n, const char *name, uint64_t now_ms);
/* The link to `name` went down: its busy notice no longer holds. */
void node_peer_busy_forget(struct hy_node *n, const char *name);
void node_multi_free(struct node_client *c);
struct node_group *node_multi_exec_group(const struct hy_node *n, size_t argc,
                                         const struct resp_arg *argv);
/* HY.EXEC: fn for each key of each command it runs (node_keys_each's walk). 0 when fn returned
 * 0, -1 when a write among them names no key, else 1. */
int node_multi_exec_each_key(const struct hy_node *n, size_t argc, const struct resp_arg *argv,
                             int (*fn)(const void *ctx, const struct resp_arg *key),
                             const void *ctx);
/* HY.EXEC: the slot of the key that places it (node_multi_exec_group's), for -MOVED; -1 when it
 * names none. */
int node_multi_exec_slot(const struct hy_node *n, size_t argc, const struct resp_arg *argv);
int node_multi_exec_keys_in_group(const struct hy_node *n, const struct node_group *g, size_t argc,
                                  const struct resp_arg *argv);
void node_capture_entry(struct cmd_ctx *x, const uint8_t *entry, size_t len);
/* The store's EXEC reader (store_set_exec_reader); ctx is the node_group. */
void node_exec_read_cb(void *ctx, struct store *s, const uint8_t *cmd, size_t len, uint64_t time_ms,
                       uint64_t seed, struct resp_writer *w);

/* proxy.c: queues a message for the shell to send to member `to` (data copied). */
void node_outbox_push(struct hy_node *n, int kind, const char *to, uint64_t req_id,
                      const uint8_t *data, size_t len);

/* blocking.c */
int node_block_active(const struct node_client *c);
int node_block_follower_wait(struct cmd_ctx *x, const struct cmd_def *d);
/* XREAD/XREADGROUP BLOCK (cmd_stream.c): ready says whether the streams hold what the command
 * waits for; run answers (XREAD) or proposes (XREADGROUP) once they do. timeout_ms 0: none. */
void node_block_stream(struct cmd_ctx *x, uint64_t timeout_ms, int ready,
                       void (*run)(struct cmd_ctx *x));
/* The client of x waits on this replica until its group applies an entry or the deadline. */
void node_block_wait_here(struct cmd_ctx *x, uint64_t deadline_ms);
/* cmd_stream.c: a follower's XREAD/XREADGROUP BLOCK (see node_block_follower_wait). */
int node_xread_follower_wait(struct cmd_ctx *x, const struct cmd_def *d);
/* cmd_stream.c: the keys of an XREAD/XREADGROUP request (after STREAMS); count 0: none. */
void node_xread_keys(size_t argc, const struct resp_arg *argv, size_t *first, size_t *count);
void node_block_shape(const struct cmd_def *d, size_t argc, const struct resp_arg *argv,
                      size_t *first, size_t *count, size_t *timeout_at);
void node_block_done(struct hy_node *n, struct node_client *c);
int node_block_applied(struct hy_node *n, struct node_client *c, const struct hy_buf *reply,
                       int silent);
void node_block_wake(struct hy_node *n, uint64_t now_ms);
/* Where a client's replies go: its output, or the replies held back behind pops its writes
 * fed (blocking.c, "A push and the pops it feeds"). */
struct hy_buf *node_client_out(struct node_client *c);
/* An entry applied in g at index, by waiter w (NULL: none) whose client's reply begins at
 * mark in node_client_out (c NULL: no reply here); noted for the next wake pass. */
void node_block_note_apply(struct node_group *g, uint64_t index, const struct node_waiter *w,
                           struct node_client *c, size_t mark);
void node_block_client_gone(struct hy_node *n, struct node_client *c);
/* A follower got the reply (data, len) to c's write forwarded in g, with the leader's applied
 * index after it (0: none): returns 1 when the reply is held (blocking.c, "A push through a
 * follower"), 0 when the caller delivers it. */
int node_block_hold_forwarded(struct hy_node *n, struct node_client *c, struct node_group *g,
                              uint64_t index, const uint8_t *data, size_t len, uint64_t now_ms);
/* Whether the write (d, argc, argv) in g, about to be forwarded, touches a key a client of
 * this node waits on (or may: a command without key columns, as EXEC): its reply is held. */
int node_block_feeds_waiter(const struct hy_node *n, const struct node_group *g,
                            const struct cmd_def *d, size_t argc, const struct resp_arg *argv);
/* Held clients whose pops have all been answered get their replies (node_block_wake does
 * it too; a forward's reply calls it, as the last pop answered may free them). */
void node_block_release(struct hy_node *n, uint64_t now_ms);
/* A waiting client answers now: its timeout's null, or -UNBLOCKED (CLIENT UNBLOCK). */
void node_block_unblock(struct hy_node *n, struct node_client *c, int error, uint64_t now_ms);

/* pubsub.c */
size_t node_pubsub_count(const struct node_client *c);
void node_pubsub_free(struct node_client *c);
void node_pubsub_reset(struct node_client *c);
/* 0 when c is a RESP2 subscriber and d (with argv[0..argc)) is not one of the commands that
 * context allows. */
int node_pubsub_allowed(const struct node_client *c, const struct cmd_def *d, size_t argc,
                        const struct resp_arg *argv);
/* The channel every cluster event is published on to this node's subscribers (events.c). */
#define NODE_EVENTS_CHANNEL "__halyard__:events"
/* Delivers json (one event) on NODE_EVENTS_CHANNEL to this node's subscribers only. */
void node_pubsub_event(struct hy_node *n, const char *json);
/* HALYARD EVENTS SUBSCRIBE [SINCE id]: x's client subscribes to NODE_EVENTS_CHANNEL (the
 * notice SUBSCRIBE gives), then gets the kept events after `since` (none when since < 0) as
 * that channel's messages, oldest first, before any new one. */
void node_pubsub_events_subscribe(struct cmd_ctx *x, int64_t since);
/* HALYARD EVENTS UNSUBSCRIBE: UNSUBSCRIBE from NODE_EVENTS_CHANNEL. */
void node_pubsub_events_unsubscribe(struct cmd_ctx *x);

#define CMD(name, handler, arity, flags, first, last, step, group, summary) \
    void handler(struct cmd_ctx *x);
#include "node/commands.def"
#undef CMD

/* The longest stretch of deafness (node_note_timer_late, a long loop turn) of the last
 * NODE_DEAF_RECENT_MS, which Raft's timeouts tolerate on top of their own (raft.c "Deafness");
 * 0 when there was none. */
uint64_t node_deaf_recent(const struct hy_node *n, uint64_t now_ms);

#endif
