/*
 * raft.h - Raft consensus as a pure state machine (DESIGN.md §5).
 *
 * One call drives everything: raft_step(r, event, update). An event is something that happened
 * to this server (a message arrived, a timer fired, the disk finished a write, a client
 * submitted commands); the update is what the caller must now do (persist, send, apply, arm a
 * timer). The core makes no system calls, reads no clock (time arrives as event.now_ms) and
 * draws randomness only from the hy_prng seeded in its config, so the simulator runs many
 * servers side by side and replays a run exactly from one seed.
 *
 * Invariants kept by the core:
 *  - currentTerm never decreases; at most one vote is granted per term;
 *  - the in-memory log is [base + 1, last_index], contiguous, terms non-decreasing, where the
 *    base is at or behind the latest snapshot (a few entries may trail it, config);
 *  - commit_index never decreases and never exceeds last_index;
 *  - a leader counts only entries of its own term when advancing commit_index (§3.6.2).
 *
 * ---- The caller's contract ---------------------------------------------------------------
 *
 * After each raft_step() the caller handles the update IN THIS ORDER:
 *  1. Persist (durably, i.e. fsync'd) everything in section "persist" of the update:
 *     a. term/vote when term_vote_changed is set (before anything else: a vote that is sent
 *        but forgotten lets this server vote twice in one term);
 *     b. snapshot when snapshot_install is set: replace the state machine with it, store it
 *        and discard the whole stored log;
 *     c. entries: delete every stored entry with index >= entries_first_index, then append
 *        the n_entries entries starting at entries_first_index.
 *     The caller's own snapshots (RAFT_EV_SNAPSHOT) are written in the same order as these
 *     writes: a snapshot stored ahead of a queued truncation would keep stale entries after
 *     it on disk.
 *  2. Only then send the messages. Replies in `messages` may depend on step 1 (a vote grant,
 *     an AppendEntries acknowledgement): sending before the data is durable breaks Raft.
 *     One exception (§10.2.1, "the leader can write to its disk in parallel with
 *     replicating"): a message for which raft_msg_may_precede_persist() is true (what a
 *     leader sends: AppendEntries, snapshot chunks, TimeoutNow) may go before the writes,
 *     provided no term/vote change (of this update or an earlier one) is still unwritten,
 *     since a leader's term must be durable before anyone acts on it. The leader still
 *     counts its own copy only from its PERSISTED report.
 *  3. Apply entries (read with raft_entry_get) up to commit_index, in order, never beyond.
 *     Entries of type RAFT_ENTRY_NOOP and RAFT_ENTRY_CONFIG are skipped by the state machine
 *     but count as applied. commit_index may run ahead of what this server has made durable
 *     (those entries are durable on a majority); applying them is fine. When
 *     snapshot_wanted is set the caller may snapshot its state machine at its applied index
 *     and report it with RAFT_EV_SNAPSHOT (the core then compacts its log). When
 *     snapshot_needed is set it must: a follower waits for it (see raft_release_applied).
 *  3b. Optionally, once this update's entries and messages are copied where they must go,
 *     call raft_release_applied(r, applied) with the index the state machine has applied:
 *     the core then frees the entries nobody needs any more, without waiting for a snapshot.
 *     While a snapshot of the caller's is being taken at index S (asynchronously), pass at
 *     most S, so that the log still reaches S when it is reported.
 *  4. Report RAFT_EV_PERSISTED with the index and term of the last entry written once step
 *     1.c is durable. The leader counts its own copy toward a majority only from that report.
 *     The caller may batch several updates' writes into one fsync and report once for the
 *     highest. (RAFT_EV_SNAPSHOT_DONE may report an installed snapshot; with the order above
 *     the core needs nothing from it today.)
 *  5. Deliver RAFT_EV_TIMEOUT at the (absolute) time timeout_ms, or earlier; a spurious
 *     timeout is harmless.
 *  6. Serve reads listed in `reads` once the state machine has applied read.index.
 * Updates may be handled asynchronously (writes queued to a disk thread), provided the
 * order above holds across updates: messages of update k are sent only after the writes of
 * updates 1..k are durable.
 *
 * Ownership: every pointer inside an event is borrowed for the duration of raft_step(); the
 * core copies what it keeps. Every pointer inside an update (entries, messages and the
 * entries they carry, reads, snapshot data) is owned by the core and stays valid until the
 * next raft_step() or raft_free() on the same struct raft; the caller copies what it keeps
 * longer (a network queue, a disk write).
 */
#ifndef HY_RAFT_H
#define HY_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "common/prng.h"
#include "common/status.h"

#define RAFT_SERVERS_MAX    16
/* RAFT_EV_FORCE starts a term this far above the node's own (raft.c, on_force). */
#define RAFT_FORCE_TERM_GAP (1ull << 20)
#define RAFT_NONE           0 /* no server id */

typedef uint64_t raft_id;

enum raft_role { RAFT_FOLLOWER, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_entry_type { RAFT_ENTRY_COMMAND = 1, RAFT_ENTRY_NOOP = 2, RAFT_ENTRY_CONFIG = 3 };

enum raft_server_role { RAFT_VOTER = 1, RAFT_LEARNER = 2 };

struct raft_server {
    raft_id id;
    uint8_t role; /* enum raft_server_role */
};

/* A cluster configuration. Config entries carry it encoded (raft_membership_encode). */
struct raft_membership {
    uint32_t count;
    struct raft_server servers[RAFT_SERVERS_MAX];
};

struct raft_entry {
    uint64_t term;
    uint32_t type; /* enum raft_entry_type */
    uint32_t len;
    const uint8_t *data; /* see the ownership rules above */
};

enum raft_msg_type {
    RAFT_MSG_VOTE = 1,      /* RequestVote, or a pre-vote when pre_vote is set */
    RAFT_MSG_VOTE_RESP,     /* granted */
    RAFT_MSG_APPEND,        /* AppendEntries (also the heartbeat) */
    RAFT_MSG_APPEND_RESP,   /* success + index, or a rejection with a back-off hint */
    RAFT_MSG_SNAPSHOT,      /* InstallSnapshot, one chunk */
    RAFT_MSG_SNAPSHOT_RESP, /* index = next offset wanted, or done */
    RAFT_MSG_TIMEOUT_NOW,   /* leadership transfer: start an election now */
    RAFT_MSG_TYPE_COUNT
};

/* One flat message; each type uses the fields noted. */
struct raft_message {
    uint32_t type; /* enum raft_msg_type */
    raft_id from;
    raft_id to;
    uint64_t term;
    /* VOTE: the candidate's last log position; flags. VOTE_RESP: granted, pre_vote. */
    uint64_t last_log_index;
    uint64_t last_log_term;
    uint8_t pre_vote;
    uint8_t transfer; /* a vote asked after TimeoutNow: ignore leader stickiness (§3.10) */
    uint8_t granted;
    /* APPEND: the leader asks this follower to quiesce (heartbeat of an idle group).
     * APPEND_RESP: the follower quiesced (raft.c "Quiescing"). */
    uint8_t quiesce;
    /* APPEND: prev position, commit, entries. APPEND_RESP: success, index (match index on
     * success, else the back-off hint index), hint_term (conflicting term, 0 if none). */
    uint8_t success;
    uint64_t prev_index;
    uint64_t prev_term;
    uint64_t commit;
    uint64_t index;
    uint64_t hint_term;
    uint32_t n_entries;
    const struct raft_entry *entries;
    /* Heartbeat round (ReadIndex, lease): the leader's sequence and its clock when sent, echoed
     * back verbatim in the response. */
    uint64_t seq;
    uint64_t sent_ms;
    /* SNAPSHOT: snapshot position and configuration, one chunk [offset, offset + len) of
     * total bytes. SNAPSHOT_RESP: index = snapshot index, offset = next byte wanted,
     * success = installed. */
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_membership snap_membership;
    uint64_t offset;
    uint64_t total;
    uint32_t len;
    const uint8_t *data;
    /* SNAPSHOT: CRC32C (common/crc.h) of the whole snapshot's data, so that a follower never
     * assembles one snapshot from the chunks of two that share index, term and size (a
     * transfer resumed from another leader, nodes whose encodings differ); 0 = not known,
     * not checked. Chunks without data (a probe, a keepalive) may carry 0. */
    uint32_t snap_crc;
};

/*
 * Test-only mutations: each injects one known bug so that the simulator's checkers can be
 * shown to catch it. Production configs leave `mutation` at RAFT_MUT_NONE.
 */
enum raft_mutation {
    RAFT_MUT_NONE = 0,
    RAFT_MUT_COMMIT_OLD_TERM,   /* commit a previous-term entry by counting replicas */
    RAFT_MUT_FORGET_VOTE,       /* do not ask the caller to persist the vote */
    RAFT_MUT_VOTE_STALE_LOG,    /* grant votes without the up-to-date log check */
    RAFT_MUT_APPLY_UNCOMMITTED, /* report commit_index = last_index on followers */
    RAFT_MUT_READ_NO_HEARTBEAT, /* serve ReadIndex reads without the heartbeat round */
    RAFT_MUT_READ_BEFORE_NOOP,  /* serve reads before the new leader's no-op commits */
    RAFT_MUT_NO_TRUNCATE,       /* keep conflicting follower entries (append past them) */
    RAFT_MUT_QUIESCE_NO_WAKE,   /* a quiesced follower told its leader's node is down (or
                                   suspected) keeps its election timer off (never campaigns) */
    RAFT_MUT_RELEASE_UNAPPLIED, /* raft_release_applied drops entries not yet applied */
    RAFT_MUT_COUNT
};

/* A node's budget for the snapshot bytes its leaders send (rebalance-bandwidth), shared by
 * every group of the node: a token bucket refilled at `rate` bytes per second that holds at
 * most a tenth of a second's worth. A chunk of any size may go whenever nothing is owed; its
 * bytes are then owed (the credit goes below zero) and paid off at `rate` before the next chunk
 * of any group goes. So the bytes sent in any T seconds stay within rate * T, a tenth of a
 * second's worth and one chunk. Chunks that wait go in the order they began waiting: the
 * longest waiting holds a claim on the next moment nothing is owed, which the others respect
 * while it comes back for it in time. Before, a chunk went only once the credit held its whole
 * size, and smaller chunks of other groups took the credit first as it built up, for good
 * (whole-node simulator seed 296 --partitions 16 --snapshot-bandwidth 512). rate 0: no limit.
 * The caller owns it and may change `rate` between steps; the groups sharing it must step with
 * a now_ms that never goes backwards across them (a node's one Raft clock). A chunk the budget
 * refuses waits (the group's timer fires when it may go); meanwhile each heartbeat sends the
 * follower an empty chunk, so that it keeps hearing its leader. */
struct raft_pacer {
    uint64_t rate;
    int64_t credit;       /* bytes that may go now, times 1000 (exact refills at any rate); below
                             zero: bytes owed */
    uint64_t last_ms;     /* when credit was last refilled */
    const void *claim;    /* the chunk waiting longest (its sender's token), or NULL */
    uint64_t claim_since; /* since when it waits */
    uint64_t claim_until; /* it holds the claim until then (its retry, with some slack) */
    uint64_t firm_until;  /* a chunk that does not yield was refused and comes back by then
                             (its retry, with the same slack): yielding chunks wait until then,
                             whoever holds the claim */
};

struct raft_config {
    raft_id id;
    uint64_t seed; /* randomized election timeouts */
    uint32_t election_timeout_min_ms;
    uint32_t election_timeout_max_ms;
    uint32_t heartbeat_ms;
    uint32_t inflight_max;       /* AppendEntries in flight per follower (pipelining) */
    uint32_t batch_entries_max;  /* entries per AppendEntries */
    uint32_t batch_bytes_max;    /* payload bytes per AppendEntries (at least one entry) */
    uint32_t snapshot_threshold; /* entries applied since the last snapshot before one is
                                    wanted; 0 = never */
    uint32_t snapshot_trailing;  /* entries kept in the log behind a snapshot */
    uint32_t applied_keep;       /* raft_release_applied: entries kept in memory behind the
                                    applied index, so that a new leader catches up slightly
                                    lagging followers from its log rather than a snapshot */
    uint32_t applied_keep_bytes; /* ... and at most this many payload bytes of them (0 = no
                                    bound): large writes are not kept by the thousand */
    uint32_t snapshot_chunk_bytes;
    uint32_t lease_ms;        /* 0 = no lease reads; every server must share the same
                                 election_timeout_min_ms, which bounds the lease */
    uint32_t clock_drift_ppm; /* the clock-rate drift bound leases assume */
    uint32_t late_bound_ms;   /* gray failure: step down when disk/ticks run this late;
                                 0 = off */
    uint32_t quiesce_ticks;   /* an idle group quiesces after this many idle heartbeat
                                 intervals (raft.c "Quiescing"); 0 = never */
    uint32_t mutation;        /* enum raft_mutation, tests only */
    uint32_t group;           /* the group's number, named in log lines only */
    const struct hy_log *log; /* borrowed; outlives the struct raft; may be NULL */
    /* Snapshot chunks to followers take from this budget; borrowed, may be shared by groups.
     * NULL: no limit. */
    struct raft_pacer *snapshot_pacer;
    /* 1: the caller streams snapshots to followers from its disk, where it persisted them; the
     * core keeps no copy (a snapshot as large as the keyspace, per group). A SNAPSHOT message
     * then carries data NULL with len > 0: the caller reads bytes [offset, offset + len) of the
     * data of this group's snapshot at snap_index before it sends the message, and drops the
     * message when it cannot (not durable yet, or replaced by a newer one: the core sends the
     * chunk again on a heartbeat, from the newer one). */
    int snapshot_on_disk;
    /* 1: the caller stores the snapshots this server receives, chunk by chunk, as they arrive
     * (io/snap_recv.h); the core keeps one chunk, not the snapshot. Each update that accepted
     * a chunk carries it (update.chunk_*), to be stored before the update's messages go (the
     * answer acknowledges it); the update that installs the snapshot carries snap_data NULL
     * and snap_len its size: the caller reads the data back from what it stored. A caller
     * that fails to store a chunk calls raft_snapshot_recv_reset. */
    int snapshot_recv_external;
};

/* Fills cfg with defaults (150-300 ms elections, 50 ms heartbeats, ...) for server `id`. */
void raft_config_default(struct raft_config *cfg, raft_id id);

/* Takes len bytes from the pacer's budget at now_ms (struct raft_pacer) for the chunk of sender
 * `who` (a token that names it while it waits) that has waited since `since` (now_ms on its
 * first try): returns 0 when they may go now (they are taken), else how many ms until they may
 * (nothing is taken). The groups sharing a pacer call it as they send snapshot chunks; exposed
 * for tests. */
uint64_t raft_pacer_take(struct raft_pacer *pc, uint64_t now_ms, uint64_t len, const void *who,
                         uint64_t since);
/* The `since` of a chunk that yields (raft_snapshot_yield): it waits behind every chunk that
 * does not, whatever their waits, and holds no claim against them. */
#define RAFT_PACER_YIELD UINT64_MAX
/* Drops the claim `who` holds on the pacer, if it holds it: its sender no longer waits (its
 * transfer ended, its leadership ended, or its server left the configuration). The claim would
 * lapse by itself, but until then it held back the chunks that do wait. NULL pc: nothing. */
void raft_pacer_forget(struct raft_pacer *pc, const void *who);

enum raft_event_type {
    RAFT_EV_START = 1,     /* persisted state loaded from disk (or a fresh bootstrap) */
    RAFT_EV_RECEIVE,       /* a message from a peer */
    RAFT_EV_PERSISTED,     /* entries up to `index` are durable */
    RAFT_EV_SNAPSHOT_DONE, /* the snapshot in the last update is installed and durable */
    RAFT_EV_TIMEOUT,       /* the timer armed by update.timeout_ms fired */
    RAFT_EV_SUBMIT,        /* client commands to replicate (leader only) */
    RAFT_EV_SNAPSHOT,      /* the caller took a snapshot of the state machine at `index` */
    RAFT_EV_READ,          /* linearizable reads to confirm (ReadIndex or lease) */
    RAFT_EV_CHANGE,        /* membership change (leader only) */
    RAFT_EV_TRANSFER,      /* hand leadership to `target` (leader only) */
    RAFT_EV_FORCE,         /* UNSAFE recovery: become the only voter and lead (see below) */
    RAFT_EV_LIVENESS,      /* node-level failure detection: server `id` is suspected down
                              (alive = 0) or reachable again (alive = 1) */
    RAFT_EV_LEADER_BUSY,   /* server `leader`'s node says it still leads in `term` but its
                              event loop is held by a long script (raft.c "Busy leaders") */
    RAFT_EV_FOLLOWER_BUSY, /* server `busy.leader` (here a follower: the busy server) says
                              its event loop is held by a long script: alive, for this
                              leader's check-quorum (raft.c "Busy leaders") */
};

enum raft_change_op { RAFT_ADD_LEARNER = 1, RAFT_PROMOTE, RAFT_REMOVE };

struct raft_event {
    uint32_t type; /* enum raft_event_type */
    uint64_t now_ms;
    union {
        struct {
            uint64_t term;
            raft_id vote;
            /* The stored snapshot (index 0 = none) with its bytes and configuration. */
            uint64_t snap_index;
            uint64_t snap_term;
            struct raft_membership snap_membership;
            const uint8_t *snap_data;
            size_t snap_len;
            /* Stored entries snap_index + 1 .. snap_index + n_entries. */
            const struct raft_entry *entries;
            uint32_t n_entries;
            /* Bootstrap configuration, used when there is no snapshot and no config entry. */
            struct raft_membership bootstrap;
        } start;
        struct {
            const struct raft_message *msg;
        } receive;
        struct {
            uint64_t index; /* last entry of the durable write */
            uint64_t term;  /* its term: a report about since-truncated entries is ignored */
        } persisted;
        struct {
            const struct raft_entry *entries; /* term is ignored: the leader stamps it */
            uint32_t n_entries;
        } submit;
        struct {
            uint64_t index; /* <= the applied index */
            const uint8_t *data;
            size_t len;
        } snapshot;
        struct {
            const uint64_t *ids;
            uint32_t n_ids;
        } read;
        struct {
            uint32_t op; /* enum raft_change_op */
            raft_id id;
        } change;
        struct {
            raft_id target;
        } transfer;
        struct {
            raft_id id;
            int alive;
            /* With alive 0: only suspected (gossip's SUSPECT, which may be refuted), not known
             * down. A quiesced follower of that leader wakes and nudges it (on_liveness). */
            int suspect;
        } liveness;
        struct {
            raft_id leader;
            uint64_t term;
        } busy;
        struct {
            /* The latest stretch [deaf_from_ms, deaf_to_ms) during which this server read
             * none of its input (its event loop busy, or not scheduled by an overloaded
             * machine); 0, 0 when it knows of none. See "Deafness" in raft.c. */
            uint64_t deaf_from_ms;
            uint64_t deaf_to_ms;
            /* The longest such stretch of the last seconds (the caller's window; 0: none):
             * how late this machine has been running lately. */
            uint64_t deaf_recent_ms;
        } timeout;
    };
};

/*
 * RAFT_EV_FORCE exists for one situation: a majority of the voters is gone for good (disks
 * lost), so no leader can ever be elected again. This server then makes itself the only voter
 * of a new configuration in which every other server is a learner, takes a new term, leads it
 * at once, and appends that configuration. What it holds becomes the truth: entries only the
 * lost servers had are gone, and its own uncommitted tail commits. Raft's guarantees do not
 * survive this; the operator confirms it (HALYARD FORCE-QUORUM CONFIRM-DATA-LOSS), and should
 * pick the survivor with the longest log. Learners are promoted as usual once caught up.
 * Status: HY_OK, or HY_EEXIST when this server already leads (a working majority exists).
 */

/* A read the caller may now serve once applied_index >= index (ok), or must fail (!ok). */
struct raft_read {
    uint64_t id;
    uint64_t index;
    int ok;
};

struct raft_update {
    /* ---- 1. persist -------------------------------------------------------------------- */
    int term_vote_changed;
    uint64_t term;
    raft_id vote;
    int snapshot_install;
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_membership snap_membership;
    const uint8_t *snap_data;
    size_t snap_len;
    /* cfg.snapshot_recv_external: a chunk of a snapshot being received, to store before the
     * install below (the same update may carry both: the last chunk completes it). Bytes
     * [chunk_offset, chunk_offset + chunk_len) of the data of the snapshot chunk_index /
     * chunk_term (chunk_total bytes, configuration chunk_membership, whole-data CRC32C
     * chunk_crc or 0). A chunk at offset 0 starts a new transfer: what was stored of any other
     * goes. chunk_len may be 0 (a snapshot of no bytes). */
    int chunk;
    uint64_t chunk_index;
    uint64_t chunk_term;
    struct raft_membership chunk_membership;
    uint64_t chunk_offset;
    uint64_t chunk_total;
    uint32_t chunk_crc;
    uint32_t chunk_len;
    const uint8_t *chunk_data;
    uint64_t entries_first_index;
    uint32_t n_entries;
    const struct raft_entry *entries;
    /* ---- 2. send ------------------------------------------------------------------------ */
    uint32_t n_messages;
    const struct raft_message *messages;
    /* ---- 3. apply ----------------------------------------------------------------------- */
    uint64_t commit_index;
    /* ---- results and hints ------------------------------------------------------------- */
    int status;            /* SUBMIT/CHANGE/TRANSFER: HY_OK, HY_ENOTLEADER, HY_EBUSY, ... */
    uint64_t submit_index; /* SUBMIT: index of the first entry appended */
    uint64_t submit_term;
    uint32_t n_reads;
    const struct raft_read *reads;
    int snapshot_wanted; /* enough entries applied since the last snapshot */
    int snapshot_needed; /* leader: a follower needs entries released from memory and the
                            snapshot held is older than them: take one now (also sets
                            snapshot_wanted); no snapshot is sent to it until then */
    uint64_t timeout_ms; /* absolute time of the next RAFT_EV_TIMEOUT */
};

struct raft_progress;
struct raft_pending_read;

/* The log held in memory: entries (snap_index, last_index], data owned by the log. */
struct raft_log {
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_entry *entries; /* ring-free array; entries[head + i] is index snap_index+1+i */
    size_t head;
    size_t count;
    size_t cap;
    size_t data_bytes; /* payload bytes of the entries held */
    /* Where entries' bytes live (raft_log.c): the block being filled, and every byte
     * allocated for entries (blocks whole, and the large entries' own allocations). */
    struct raft_log_block *fill;
    size_t alloc_bytes;
};

struct raft {
    struct raft_config cfg;
    struct hy_prng prng;
    enum raft_role role;
    uint64_t term;
    raft_id vote;
    raft_id leader;
    struct raft_log log;
    uint64_t commit_index;
    uint64_t persisted_index; /* our own durable log end, as reported */
    /* Configuration: the latest in the log (used at once, §4.1) and where it came from. */
    struct raft_membership membership;
    uint64_t membership_index;
    struct raft_membership snap_membership;
    /* Timers (absolute ms). */
    uint64_t now_ms;
    uint64_t election_deadline_ms;
    uint64_t heartbeat_deadline_ms;
    uint64_t stickiness_until_ms; /* no votes granted before: a leader was heard (§4.2.3) */
    uint64_t leader_contact_ms;   /* last valid message from the leader of our term */
    uint64_t leader_since_ms;
    uint64_t timeout_armed_ms; /* gray failure: when we asked to be woken */
    /* Candidate: votes received (bit per server slot). */
    uint32_t votes_granted;
    uint32_t votes_denied;
    /* Leader state. */
    struct raft_progress *progress; /* one per membership slot */
    uint64_t term_start_index;      /* our no-op: reads and commits wait for it */
    uint64_t read_seq;              /* heartbeat round counter */
    int read_round_wanted;
    struct raft_pending_read *reads;
    size_t n_reads;
    size_t cap_reads;
    raft_id transfer_target;
    int timeout_now_sent; /* this term: leases are off for good */
    uint64_t transfer_deadline_ms;
    uint64_t unpersisted_since_ms; /* gray failure: oldest write not yet reported durable */
    uint64_t step_down_removed;    /* leader removed from config: step down when committed */
    uint64_t removed_handover_ms;  /* ... once committed: hand over by then at the latest */
    /* Quiescing (raft.c "Quiescing"): no timer and no messages while set. */
    int quiesced;
    uint32_t idle_ticks;           /* leader: consecutive idle heartbeat intervals */
    uint64_t quiesce_seq;          /* leader: heartbeat round that asked followers to quiesce */
    uint64_t quiesced_round;       /* follower: the leader's round it quiesced on */
    uint64_t quorum_from_ms;       /* leader: check-quorum window starts here (term or wake) */
    uint64_t deaf_since_ms;        /* the leader was last heard (follower) or a majority
                                      (leader): deafness is excused for a while after */
    uint64_t deaf_excused;         /* stretches excused since deaf_since_ms */
    uint64_t deaf_excused_to_ms;   /* where the last stretch excused ended */
    uint64_t deaf_slack_ms;        /* from the last TIMEOUT's deaf_recent_ms, bounded: added to
                                      the silence tolerated (raft.c "Deafness") */
    uint64_t deaf_slack_at_ms;     /* when deaf_slack_ms was taken */
    int deadline_stretched;        /* the current election deadline got the slack already */
    uint64_t stat_deaf_excused;    /* timeouts excused for our own deafness, ever */
    uint64_t wake_sticky_until_ms; /* follower woken by a non-leader message: no votes before,
                                      unless node-level liveness says the leader is down */
    /* The latest snapshot (may be ahead of log.snap_index: trailing entries are kept), held
     * for sending until raft_release_applied moves the log's base past it (snap_data NULL,
     * snap_len 0: a follower then waits for a newer one), and the one being received. With
     * cfg.snapshot_on_disk, snap_data is NULL but for the one step that installs a received
     * snapshot, and snap_len is the size of the one on the caller's disk. */
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    uint8_t *snap_data;
    size_t snap_len;
    uint8_t *recv_data; /* cfg.snapshot_recv_external: the last chunk only */
    size_t recv_len;
    size_t recv_cap;
    uint64_t recv_index;
    uint64_t recv_term;
    uint64_t recv_total; /* the size the leader named: with index and term, which snapshot */
    uint32_t recv_crc;   /* CRC32C of the recv_len bytes received */
    uint32_t recv_want;  /* the whole data's CRC32C the leader named (0: not known) */
    uint64_t stat_snapshot_crc_mismatches; /* transfers dropped: data and checksum disagree */
    uint32_t snap_crc;                     /* CRC32C of snap_data (in memory), for snap_crc_index */
    uint64_t snap_crc_index;               /* 0: not computed */
    /* Leader: the snapshot before the latest, kept while transfers of it are under way
     * (raft.c "A transfer keeps its snapshot"), with the log entries after it: its data
     * (NULL with cfg.snapshot_on_disk, where the caller's streamer holds its file open), size
     * and CRC32C (0: not computed). kept_index 0: none. */
    uint64_t kept_index;
    uint64_t kept_term;
    uint8_t *kept_data;
    size_t kept_len;
    uint32_t kept_crc;
    /* cfg.snapshot_recv_external: the chunk this step accepted (recv_data holds it). */
    int chunk_dirty;
    uint64_t chunk_offset;
    uint32_t chunk_len;
    uint32_t chunk_crc; /* the checksum of the snapshot the step installed */
    struct raft_membership recv_membership;
    uint64_t applied_hint; /* highest commit reported: snapshot_wanted bookkeeping */
    /* The highest commit index a leader of term commit_heard_term sent in an append or a
     * snapshot chunk this server took (self_may_campaign). */
    uint64_t commit_heard;
    uint64_t commit_heard_term;
    /* Update under construction (owned; reused across steps). */
    struct raft_message *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    struct raft_read *out_reads;
    size_t n_out_reads;
    size_t cap_out_reads;
    uint64_t append_first; /* lowest index written this step, 0 = none */
    int term_vote_dirty;
    int snapshot_dirty;
    int snapshot_needed; /* leader: a follower waits for a snapshot at or past the log base */
    /* Counters (observability and benchmarks). */
    uint64_t stat_msgs_sent;
    uint64_t stat_elections;
    /* Appends refused because they conflicted with a committed entry (only a leader forced on
     * a node that lacked it can send one: on_append); the term last logged. */
    uint64_t stat_conflicts_refused;
    uint64_t conflict_logged_term;
    /* Leader: followers that reported a match beyond this log (after FORCE-QUORUM on a node
     * lacking entries they committed: on_append_resp), not counted. */
    uint64_t stat_followers_ahead;
    uint64_t stat_quiesces;       /* times this server quiesced a group (leader) or followed */
    uint64_t stat_followers_lost; /* leader: followers found lacking entries they had
                                     acknowledged (a power cut with durability replicated) */
};

/* Initializes r from cfg (copied). The server is inert until a RAFT_EV_START event. */
void raft_init(struct raft *r, const struct raft_config *cfg);
/* Frees everything r owns. */
void raft_free(struct raft *r);

/*
 * Handles one event. `ev` and everything it points to is borrowed for the call; `up` is
 * filled (it need not be initialized) and its pointers are owned by r until the next
 * raft_step() or raft_free(). Returns HY_OK, or HY_EINVAL for an event that is malformed for
 * this server's state (the event is then ignored; up is still valid).
 */
int raft_step(struct raft *r, const struct raft_event *ev, struct raft_update *up);

/*
 * Frees the in-memory entries (their payloads and slots) that are applied (index <= applied),
 * committed and durable here, minus the last cfg.applied_keep of them (once a quarter of that
 * many more have gone by since: up to 1.25 times applied_keep stay between), and, on a leader, that
 * every other server of the configuration is known to hold (its match index). The log's base
 * then moves past the latest snapshot: a follower that turns out to need a freed entry (a
 * leader change, a new learner) is sent a snapshot, and when the one held is older than the
 * base the core first asks for a newer one (update.snapshot_needed). A leader never frees what
 * a follower it knows of still lacks, so a follower that is sent a snapshot needs nothing the
 * log freed after it. Emits nothing; may be called after any step (raft.h step 3b).
 */
void raft_release_applied(struct raft *r, uint64_t applied);

/* ---- queries (borrowed pointers valid until the next raft_step) ------------------------ */

enum raft_role raft_role(const struct raft *r);
uint64_t raft_term(const struct raft *r);
raft_id raft_leader(const struct raft *r);
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
uint64_t raft_snapshot_index(const struct raft *r);
/* Returns the entry at index (snapshot_index < index <= last_index), else NULL. */
const struct raft_entry *raft_entry_get(const struct raft *r, uint64_t index);
/* Term of the entry at index (snapshot index included), 0 when unknown. */
uint64_t raft_term_at(const struct raft *r, uint64_t index);
const struct raft_membership *raft_membership(const struct raft *r);
/* 1 when that configuration is committed (a later leader must hold it, §4.1). */
int raft_membership_committed(const struct raft *r);
/* With cfg.snapshot_recv_external: the caller could not store the last chunk (its disk): the
 * transfer under way is forgotten, so that the next chunk from the leader is answered with
 * offset 0 and the leader starts it again. */
void raft_snapshot_recv_reset(struct raft *r);
/* Transfers dropped because the data received did not match the checksum the leader named. */
uint64_t raft_snapshot_crc_mismatches(const struct raft *r);
/* With cfg.snapshot_on_disk, right after the update that installs a received snapshot: hands
 * its bytes (up->snap_data, still valid) to the caller, who frees them with hy_free; NULL
 * otherwise (the caller copies what it keeps). */
uint8_t *raft_snapshot_data_take(struct raft *r);
/* On a leader: 1 when follower id is being sent a snapshot, with the bytes it acknowledged, the
 * snapshot's size and when its transfer began (this server's clock); 0 otherwise. */
int raft_snapshot_transfer(const struct raft *r, raft_id id, uint64_t *acked, uint64_t *total,
                           uint64_t *since_ms);
/* On a leader: whether the snapshot chunks to server id yield at the pacer (cfg.snapshot_pacer)
 * to the chunks of every transfer that does not (RAFT_PACER_YIELD): the caller marks servers it
 * is moving off (a replica the partition map no longer places there: a move's source, a member
 * the operator removed), so that the bandwidth goes to the replicas the group keeps first. Kept
 * while the server stays in the configuration, until this server's leadership ends. A voter
 * the group's majority needs (without it, fewer than a majority of voters are neither sent a
 * snapshot nor seen down) does not yield while that lasts: the group commits nothing until it
 * holds the snapshot. For as long, a learner's chunks yield whether marked or not, so that
 * such a voter's snapshot has the pace to itself. */
void raft_snapshot_yield(struct raft *r, raft_id id, int yield);
/* 1 when lease reads are configured and allowed: lease_ms * (1 + drift) is below the minimum
 * election timeout (else every read takes a ReadIndex round). */
int raft_lease_enabled(const struct raft *r);
/* What a leader knows of another server of its configuration. */
struct raft_follower {
    uint64_t match_index;   /* highest index known to be in its log */
    uint64_t last_heard_ms; /* when it last answered (the leader's clock); UINT64_MAX = now:
                               the group is quiesced and the node-level view (RAFT_EV_LIVENESS)
                               has not reported it down, which is what stands for contact */
    int answered;           /* 1 once it answered this leader at all */
    int caught_up;          /* 1 when RAFT_PROMOTE would accept it now (§4.2.1) */
    int ahead;              /* 1 when it reported entries beyond this leader's log: it committed
                               entries a forced quorum lacks (on_append_resp); not counted */
    int snap_yield; /* 1 when its snapshot chunks yield at the pacer now (raft_snapshot_yield:
                       marked, and not needed for a majority; or a learner while the majority
                       waits for a voter's snapshot) */
    int snapshot;   /* 1 while it is sent a snapshot: it holds nothing this leader can commit
                       with until the whole snapshot has landed */
};
/* Leader only: fills *out for server `id` and returns 1; returns 0 when this server does not
 * lead or id is itself or not in the configuration. */
int raft_follower_info(const struct raft *r, raft_id id, struct raft_follower *out);
/* 1 while this server's group is quiesced: it runs no timer and sends nothing until an event
 * wakes it (raft.c "Quiescing"). */
int raft_quiesced(const struct raft *r);
/* When this server last heard from a leader of its term (its clock, ms; 0 = never since
 * start). A leader returns its current time; a quiesced follower UINT64_MAX ("now": its
 * leader confirmed everything and the node-level view has not reported its node down). Only what
 * the server can know: a follower or a learner cut off from everyone keeps the name of its last
 * leader in raft_leader(), and this says how old that knowledge is. */
uint64_t raft_leader_contact_ms(const struct raft *r);
/* Memory the core holds (INFO memory): its log and its snapshots. */
struct raft_memory {
    size_t log_entries;    /* entries in memory */
    size_t log_bytes;      /* their slots (the array's capacity) and payloads */
    size_t snapshot_bytes; /* the snapshot held for followers, and one being received */
};
void raft_memory_get(const struct raft *r, struct raft_memory *out);
/* The configuration in force at the latest snapshot (to store beside its bytes). */
void raft_snapshot_membership(const struct raft *r, struct raft_membership *m_out);
/* 1 when id is a voter in m. */
int raft_membership_is_voter(const struct raft_membership *m, raft_id id);
/* Encodes m into buf (at least raft_membership_encoded_len(m) bytes); returns the length. */
size_t raft_membership_encoded_len(const struct raft_membership *m);
size_t raft_membership_encode(const struct raft_membership *m, uint8_t *buf);
/* Decodes; returns HY_OK or HY_ECORRUPT. */
int raft_membership_decode(const uint8_t *buf, size_t len,
                           struct raft_membership *m_out) HY_MUST_CHECK;

/* 1 for the messages a leader sends (APPEND, SNAPSHOT, TIMEOUT_NOW): see step 2 above. */
int raft_msg_may_precede_persist(const struct raft_message *m);

const char *raft_role_name(enum raft_role role);
const char *raft_msg_type_name(uint32_t type);

#endif
