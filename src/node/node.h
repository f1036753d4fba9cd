/*
 * node.h - the node engine: command table, dispatch, the read and write paths.
 *
 * Sans-I/O (docs/architecture.md "Cores and shell"). The shell owns sockets; for every connection
 * it creates a node_client, appends the bytes it reads to client->in, and calls
 * node_client_process(), which parses requests, executes commands and appends replies to
 * client->out. The shell writes client->out once per loop turn and honours the client's close
 * flags. node_cron() runs the periodic work (active expiry, eviction, idle timeouts) and must be
 * called hz times per second. Every call takes the caller's wall clock in ms; the engine reads
 * none.
 *
 * The write path: a write command's handler checks syntax, stamps absolute times, encodes a
 * store entry and proposes it (node_propose). Today the node is a one-member log: the entry
 * is appended, committed and applied at once through store_apply(), which also produces the
 * reply. When Raft lands, proposing appends to the Raft log and the reply is produced when
 * the entry commits; nothing else in the command handlers changes.
 */
#ifndef HY_NODE_H
#define HY_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "node/cluster.h"
#include "node/config.h"
#include "proto/resp.h"
#include "raft/raft.h"

enum node_client_flag {
    NODE_CLIENT_CLOSE_AFTER_REPLY = 1u << 0, /* QUIT, protocol error, maxclients: flush, close */
    NODE_CLIENT_CLOSE_ASAP = 1u << 1,        /* CLIENT KILL, idle timeout: close now */
};

/* blocking.c: the keys of a follower's waiting client noted one by one (more: any key). */
#define NODE_BLOCK_KEYS_MAX 8
#define NODE_BLOCK_KEYS_ANY UINT32_MAX

struct node_client {
    uint64_t id;
    unsigned flags; /* enum node_client_flag */
    int proto;      /* 2 or 3 */
    int authenticated;
    int fd; /* for CLIENT LIST only */
    char name[64];
    char addr[64];  /* peer "ip:port" */
    char laddr[64]; /* local "ip:port" */
    uint64_t created_ms;
    uint64_t last_ms; /* last command */
    const char *last_cmd;
    struct hy_buf in;    /* bytes read, not yet parsed; owned by the client */
    size_t in_peak;      /* the most `in` held since the last resize look (node_cron) */
    int in_partial;      /* the last look at `in` ended inside a request: more must come */
    struct hy_buf out;   /* replies not yet handed to the socket; owned by the client */
    size_t out_inflight; /* bytes the shell is still writing (for omem/limits) */
    struct resp_request_parser parser;
    struct node_client *prev, *next; /* the node's list of clients */
    void *shell;                     /* the shell's connection; opaque to the engine */
    /* Writes proposed and not yet answered; while non-zero, only write commands run (their
     * replies come back in log order) and anything else waits, so replies keep the order of
     * requests and a read sees the client's own earlier writes. */
    uint32_t waiting;
    struct node_waiter *last_waiter; /* where immediate replies queue behind pending ones */
    int blocked_on_read;             /* waiting for the node to be able to serve reads */
    uint32_t wait_group;             /* the group it waits for (blocked_on_read) */
    uint64_t read_id;                /* the ReadIndex request it waits for (0 = none) */
    uint32_t read_group;             /* the group whose pending table holds read_id */
    size_t read_ok_bytes;            /* input bytes a confirmed read round covers */
    size_t read_reg_bytes;           /* input bytes present when the read was registered */
    int readonly_mode;               /* READONLY: stale reads from this replica are fine */
    int forwarding;                  /* a request went to the leader; waiting for its reply */
    uint64_t retry_since_ms; /* a request run again (proxy.c): when it was first forwarded */
    /* The slot of the follower's own session (proxy.c) that the current write holds once
     * forwarded: it keeps it through every re-send, so it is applied once at most. */
    uint64_t fwd_session, fwd_seq;
    int outcome_unsure; /* it was sent and lost: it may have been applied already */
    /* Batches (proxy.c): the slots of pipelined writes that went to a leader in one frame with
     * the request before them and are back in `in` to be sent again, in input order; the
     * request at the head of `in` takes the first (fwd_took: it did). fwd_open: the req id of
     * this client's forward whose frame is still gathering its next requests (0: none). */
    struct node_fwd_held *fwd_held;
    size_t fwd_held_count, fwd_held_cap;
    int fwd_took;
    uint64_t fwd_open;
    /* Read-your-writes on a follower (proxy.c, "Acknowledged writes"): the request at the head
     * of `in` decides from this replica, and waits (blocked_on_read) for group ryw_group to
     * apply ryw_index, the leader's applied index when a forwarded write was acknowledged.
     * ryw_next is the next of the node's groups it looks at (an INFO looks at each in turn);
     * ryw_gave_up: the wait passed request-timeout-ms, the request goes on as it is;
     * ryw_arrival_msgs: its group's leader_msgs when it was first looked at (ryw_looked), the
     * arrival XREAD's barrier counts from. All are reset when the request is done. */
    int ryw_wait;
    int ryw_gave_up;
    int ryw_looked;
    uint64_t ryw_arrival_msgs;
    uint32_t ryw_group;
    uint32_t ryw_next;
    uint64_t ryw_index;
    int is_proxy; /* a request forwarded to us by a follower */
    int no_block; /* runs inside an entry (an EXEC's reads, a script): never blocks */
    /* scatter.c: a client whose FLUSHALL runs in every partition waits for this many parts
     * (the first error kept); an internal client running one part names its parent (NULL
     * once the parent went away: then is_scatter_orphan). */
    uint32_t scatter_pending;
    char scatter_error[320];
    char scatter_ok[160]; /* the reply once every part succeeded ("" = +OK) */
    /* DBSIZE/KEYS across partitions held elsewhere: the parts' integers summed (mode 1) or
     * their arrays joined (mode 2) into the reply instead of scatter_ok; SCAN (3), RANDOMKEY
     * (4); INFO (5: scatter_sum the sections asked, scatter_acc a struct node_info_totals);
     * WATCH on a follower (6: the leader's versions added to the client's watched keys). */
    int scatter_mode;
    int64_t scatter_sum;
    struct hy_buf scatter_acc;
    struct node_client *scatter_parent;
    int is_scatter_orphan;
    int log_reply; /* an orphan whose reply is logged (the aclfile's load at start) */
    uint64_t proxy_req_id;
    char proxy_from[NODE_MEMBER_NAME_MAX + 1];
    int read_timed_out; /* answer an error: 1 = the wait passed request-timeout-ms, 2 = the
                           leader lost leadership before it could confirm the read */
    uint64_t blocked_since_ms;
    uint64_t wait_start_ms; /* when the request at the head of `in` first had to wait */
    int on_ready;           /* in the node's ready list */
    struct node_client *ready_next;
    uint8_t join_nonce[16]; /* HALYARD CHALLENGE's nonce, until one PEER-AUTH uses it */
    char user[129]; /* the ACL user it runs as (node/acl.h): "default" until AUTH; "" = a member */
    int forward_busy;       /* busy_peers.c: its forward goes to a busy peer (NODE_FORWARD_BUSY) */
    uint32_t auth_failures; /* failed AUTH in a row on this connection (acl.c rate limit) */
    uint64_t auth_retry_ms; /* no password is checked before this time */
    int join_nonce_set;
    int wan_link; /* proved the cluster secret as a WAN link: runs only what a link sends */
    uint64_t wan_conn, wan_req; /* runs a request of a WAN link on the peer port (wan_peer.c) */
    struct node_multi *multi;   /* cmd_multi.c: MULTI's queue and WATCH's keys (NULL: none) */
    struct node_subs *subs;     /* pubsub.c: its channels and patterns (NULL: none) */
    /* blocking.c: a blocking pop at the head of `in` (left there until answered). */
    int block_state;            /* enum node_block_state */
    int block_hold;             /* set by a handler: leave the request in the input */
    int block_null_bulk;        /* its timeout answers $-1 (BLMOVE), else *-1 */
    uint32_t block_group;       /* the group whose applies wake it */
    uint64_t block_seen;        /* that group's applied index when it last looked */
    uint64_t block_deadline_ms; /* UINT64_MAX: none; 0: not blocked */
    size_t block_req_len;       /* the request's bytes at the head of `in` */
    uint64_t block_order;       /* when it blocked, in the node's count: served oldest first */
    /* A follower's pop found data and goes to the leader: its deadline and order, kept with
     * the forward so that a null from the leader (another client took the data first) sends
     * it back to waiting, as before (proxy.c). 0: none. */
    uint64_t block_fwd_deadline_ms, block_fwd_order;
    /* blocking.c, "A push and the pops it feeds": replies held back until the blocked
     * clients' pops that this client's writes woke have applied (held_index: its last write
     * in held_group), as Redis serves them before it answers the push. */
    int held;
    uint32_t held_group;
    uint64_t held_index;
    struct hy_buf held_out;
    /* blocking.c, "A push through a follower": held by a follower, its forwarded write's
     * reply waits for this replica to apply held_index (the leader's applied index that came
     * with it) and for the pops it woke here; held_since_ms bounds the wait. pop_root: its
     * blocking pop, woken here, is on its way through the leader (or held so): the earliest
     * index of the writes that fed it (0: none). */
    int held_follower;
    uint64_t held_since_ms;
    uint64_t pop_root;
    /* A follower's waiting client: the keys it waits on, as hy_crc64 of each; count
     * NODE_BLOCK_KEYS_ANY: more than NODE_BLOCK_KEYS_MAX (any write of its group may feed it). */
    uint64_t block_key_hash[NODE_BLOCK_KEYS_MAX];
    uint32_t block_key_count;
    uint64_t replied_pass; /* the node's wake_pass in which its first reply was noted, */
    size_t replied_slot;   /* and where (the node's replied list) */
    int reply_mode;        /* enum node_reply_mode: CLIENT REPLY */
    /* cmd_stream.c: a blocked XREAD's IDs ("$" resolved when it first ran), and the request a
     * follower forwards with them in place of "$" (its arguments point into xread_text). */
    struct hy_buf xread_ids;
    int xread_resolved;          /* xread_ids hold this request's "$" IDs */
    int xread_synced;            /* a follower's replica caught up with the request's arrival */
    uint64_t xread_arrival_msgs; /* the group's leader_msgs when this request first ran */
    struct resp_arg *xread_argv;
    struct hy_buf xread_text;
};

/*
 * Busy scripts (cmd_script.c). A Lua script runs inside one step of the loop; every few
 * thousand Lua instructions it calls the shell's busy poll (NULL: none, as in the simulator).
 * Once node_script_busy() says the script is past busy-reply-threshold, the poll reads the
 * clients that node_busy_can_serve() allows and hands each to node_busy_client(), which
 * answers its complete requests at once: -BUSY, or SCRIPT KILL / FUNCTION KILL / FUNCTION
 * STATS. Nothing else runs until the script ends.
 */
struct hy_node;
typedef void (*node_busy_poll_fn)(void *ctx);
void node_set_busy_poll(struct hy_node *n, node_busy_poll_fn fn, void *ctx);
int node_script_busy(struct hy_node *n, uint64_t now_ms);
int node_busy_can_serve(const struct hy_node *n, const struct node_client *c);
void node_busy_client(struct hy_node *n, struct node_client *c, uint64_t now_ms);
/* The server must stop (SIGTERM, SIGINT) while a script runs: a run that can be killed (a
 * probe before its first write, a read-only run) is stopped as SCRIPT KILL stops it, and 1 is
 * returned: nothing of it was written, and the loop goes on to a clean shutdown. 0: the run is
 * at apply, where stopping it part-way would leave this replica's store unlike the others'. */
int node_busy_stop(struct hy_node *n);
/* SHUTDOWN NOSAVE arrived while the script was busy (node_busy_client answered nothing): the
 * shell stops the process at once, as Redis's SHUTDOWN NOSAVE kills a busy server. */
int node_busy_shutdown_asked(const struct hy_node *n);

/*
 * Busy scripts seen from the other nodes (busy_peers.c, docs/protocol.md "Busy scripts
 * through a follower"). While a script holds this node's loop, the shell's poll sends every
 * peer a BUSY notice (node_busy_notice) every NODE_BUSY_NOTICE_MS, once the script has run
 * NODE_BUSY_PEER_MS, and one saying it is over when it ends; it answers the SCRIPT KILL,
 * FUNCTION KILL and FUNCTION STATS requests peers forward (node_busy_forward). A node that
 * receives a notice (node_peer_busy) answers its own clients -BUSY while that script is past
 * its busy-reply-threshold, forwards their kills to the busy node, and its Raft groups led by
 * the busy node hold off elections (RAFT_EV_LEADER_BUSY).
 */
#define NODE_BUSY_PEER_MS       10
#define NODE_BUSY_NOTICE_MS     50
/* A notice holds this long unless renewed (a lost end notice, a peer that died busy). */
#define NODE_BUSY_NOTICE_TTL_MS 1000
/* How long the running script has run (from the shell's first poll), or -1 when none runs. */
int64_t node_script_running_ms(struct hy_node *n, uint64_t now_ms);
/* This node's notice (its script's state and the groups it leads, with their terms), to
 * send in a BUSY frame: appended to out. */
void node_busy_notice(struct hy_node *n, uint64_t now_ms, struct hy_buf *out);
/* A FORWARD from peer `from` while a script runs here: 1 with the reply in *reply when it is
 * one of the requests a busy script answers, else 0 (it waits for the loop). */
int node_busy_forward(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                      uint64_t now_ms, struct hy_buf *reply);
/* A BUSY notice from peer `from` (payload borrowed); a malformed one is logged and dropped. */
void node_peer_busy(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                    uint64_t now_ms);
/* The same, seen by node_busy's pump while a script holds this node: only which peers are
 * busy is noted (no Raft group is stepped; the loop hands the notice to node_peer_busy
 * later), so that a run at apply here answers clients -BUSY only while the script's leader is
 * busy with it (node_script_busy). */
void node_peer_busy_note(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                         uint64_t now_ms);

enum node_reply_mode { NODE_REPLY_ON = 0, NODE_REPLY_OFF, NODE_REPLY_SKIP_NEXT, NODE_REPLY_SKIP };
enum node_block_state { NODE_BLOCK_NONE = 0, NODE_BLOCK_WAITING = 1, NODE_BLOCK_POPPING = 2 };

/* A write proposed for a client, answered when its entry is applied (node internal). */
struct node_waiter;

/*
 * The storage and network work the shell does for the engine, one batch per Raft update,
 * handled in the order node_io_take() hands them out (raft.h's caller contract):
 *  1. persist: term/vote, the snapshot, entries (truncate from entries_first_index, append);
 *  2. once that is durable, send `messages`;
 *  3. call node_io_done(). The engine then counts the entries as durable, commits, applies
 *     and answers clients.
 * A batch with nothing to persist still waits for the batches before it. Everything a batch
 * points to is owned by the engine until node_io_done().
 */
/* NODE_SNAP_FORGET: the group's log and snapshot are dropped, its term/vote kept (a parked
 * copy's files, no longer needed: replica.c "Parked copies"); nothing else in the batch. */
/* INSTALL: received from the leader, its bytes in snap_data; RECEIVED: received, its bytes
 * written to disk as they came by the shell's receiver (node_set_snapshot_receiver), snap_data
 * NULL; TAKEN: this node's own; FORGET: a parked copy's files go. */
enum node_snapshot_kind {
    NODE_SNAP_NONE,
    NODE_SNAP_INSTALL,
    NODE_SNAP_TAKEN,
    NODE_SNAP_FORGET,
    NODE_SNAP_RECEIVED
};

struct node_io_batch {
    struct node_io_batch *next;
    struct node_io_batch *prev; /* engine's: O(1) removal with thousands of groups */
    uint64_t group_seq;         /* engine's: its place among its group's batches */
    uint32_t group;             /* the Raft group it belongs to (its log, its messages) */
    int term_vote_changed;
    uint64_t term;
    raft_id vote;
    int snapshot; /* enum node_snapshot_kind */
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_membership snap_membership;
    uint8_t *snap_data;
    size_t snap_len;
    uint64_t entries_first_index; /* 0 = no entries to write */
    uint32_t n_entries;
    struct raft_entry *entries;
    int unpin; /* entries already durable, written again at the log's end (node_log_unpin) */
    uint32_t n_messages;
    struct raft_message *messages;
};

struct hy_node;

/* Creates a node. cfg is borrowed and must outlive the node (the shell owns it; CONFIG SET
 * changes it in place). `seed` seeds the engine's PRNG. Returns NULL (reason logged) when the
 * settings cannot make a node, e.g. a bootstrap list that does not name node-id. */
struct hy_node *node_create(struct hy_config *cfg, const struct hy_log *log, uint64_t seed,
                            uint64_t now_ms);
void node_destroy(struct hy_node *n);

/* A new connection. When maxclients is exceeded the client gets the error reply and
 * NODE_CLIENT_CLOSE_AFTER_REPLY. Owned by the node; free with node_client_free. */
struct node_client *node_client_new(struct hy_node *n, const char *addr, const char *laddr, int fd,
                                    uint64_t now_ms);
void node_client_free(struct hy_node *n, struct node_client *c);

/* Parses and executes every complete request in c->in, consuming them. Replies go to c->out.
 * On a protocol error the error reply is written and CLOSE_AFTER_REPLY set. */
void node_client_process(struct hy_node *n, struct node_client *c, uint64_t now_ms);

/* Periodic work; marks idle clients CLOSE_ASAP. Returns the number of clients marked to close
 * (by timeout or CLIENT KILL since the last call) so the shell knows to sweep. */
size_t node_cron(struct hy_node *n, uint64_t now_ms);

/* Clients marked CLOSE_ASAP by commands since the last call (CLIENT KILL); resets the count. */
size_t node_take_kills(struct hy_node *n);

/* Counters the shell reports into (INFO stats). */
void node_note_rejected_connection(struct hy_node *n);
void node_note_net_io(struct hy_node *n, size_t in_bytes, size_t out_bytes);
/* One event loop turn worked busy_us (its callbacks, waiting for I/O excluded), of which its
 * thread ran on a CPU for cpu_us (the shell reads that clock at most once a millisecond: 0 for
 * most short turns, and up to a millisecond of the turns before included): recorded in /metrics
 * and INFO; a turn of NODE_SLOW_TURN_MS
 * or more is counted and logged (at most one line a second) with its CPU time and what the
 * node did since the previous turn. */
void node_note_loop_turn(struct hy_node *n, uint64_t busy_us, uint64_t cpu_us, uint64_t now_ms);
/* The shell's Raft timer, due at due_ms, fired at now_ms: a timer a heartbeat interval late or
 * more, like a turn that long, is time the node read nothing (raft.c "Deafness"). The shell
 * reports a long turn and a late timer before it reads its input, and delivers node_tick only
 * after it has read the input that waited meanwhile. */
void node_note_timer_late(struct hy_node *n, uint64_t due_ms, uint64_t now_ms);
/* AppendEntries responses the storage shell left out (wal_node_coalesce_acks): INFO stats. */
void node_note_acks_coalesced(struct hy_node *n, size_t count);

/* What the node recovered from its data directory (all empty for a new node). Borrowed for
 * the call. */
struct node_recovered {
    uint64_t term;
    raft_id vote;
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_membership snap_membership;
    const uint8_t *snap_data;
    size_t snap_len;
    const struct raft_entry *entries; /* snap_index + 1 ... */
    uint32_t n_entries;
    /* Its log and snapshot were dropped on purpose (a parked copy's files: NODE_SNAP_FORGET):
     * it starts without the bootstrap configuration, which would bring back a membership the
     * group has long left, as a replica of a node that joined does. */
    int forgotten;
};

/* Starts the node's Raft group from what was recovered; a node with nothing recovered
 * bootstraps a one-member group of itself. Returns HY_OK or HY_ECORRUPT (snapshot). */
int node_start(struct hy_node *n, uint32_t group, const struct node_recovered *rec,
               uint64_t now_ms) HY_MUST_CHECK;

/* End of a loop turn: proposes the writes queued during the turn as one batch (group
 * commit), and retries or times out requests waiting for a leader. */
void node_flush(struct hy_node *n, uint64_t now_ms);

/* 1 when writes are queued for the next node_flush (e.g. a woken client proposed more). */
int node_has_proposals(const struct hy_node *n);

/* The next storage/network batch to carry out, or NULL. */
/* What a leader sends (AppendEntries, snapshot chunks, TimeoutNow) need not wait for its own
 * disk (raft.h step 2, §10.2.1): with a sender set, the node hands those messages to it at
 * once, during the call that produced them (borrowed for the call), instead of queueing them
 * behind the batch's writes. */
typedef void (*node_send_fn)(void *ctx, uint32_t group, const struct raft_message *m);
void node_set_early_sender(struct hy_node *n, node_send_fn send, void *ctx);

/* on: the shell sends snapshots to followers from the files its log keeps (io/snap_stream.h):
 * the groups' Raft cores keep no copy of their snapshots, and the SNAPSHOT messages they send
 * carry no data (data NULL, len > 0) until the shell fills them. Every group, now and later. */
void node_set_snapshots_on_disk(struct hy_node *n, int on);

/* Reads the data of group's snapshot at index from the log's disk, appending it to out
 * (io/snap_stream.h snap_stream_load): HY_OK or why not. With a loader set, a copy of a
 * partition that moved away for good leaves memory ("parked", replica.c) and comes back from
 * its snapshot if the partition needs it again. */
struct hy_buf;
typedef int (*node_snapshot_load_fn)(void *ctx, uint32_t group, uint64_t index, struct hy_buf *out);
void node_set_snapshot_loader(struct hy_node *n, node_snapshot_load_fn load, void *ctx);
/* The shell's store of the snapshots this node receives from leaders (io/snap_recv.h). With
 * one set (and snapshots on disk), every group's Raft core hands each chunk it receives over
 * (raft_config.snapshot_recv_external) instead of assembling the snapshot in memory: `chunk`
 * writes it (HY_OK or why not: the transfer then starts again from 0), and the install reads
 * the completed snapshot back with `load`, then the log makes its file durable and adopts it
 * (NODE_SNAP_RECEIVED). NULL, NULL: snapshots are received in memory. */
/* `reserve` is asked first, before the core sees a snapshot's chunk at offset 0, to make room
 * for the whole snapshot: refused (a full disk), the message is dropped as lost and the leader
 * sends it again, so that no later chunk, and above all not the last one, finds the disk full
 * (io/snap_recv.h snap_recv_reserve). */
struct raft_update;
struct raft_message;
typedef int (*node_snapshot_chunk_fn)(void *ctx, uint32_t group, const struct raft_update *up);
typedef int (*node_snapshot_reserve_fn)(void *ctx, uint32_t group, const struct raft_message *m);
void node_set_snapshot_receiver(struct hy_node *n, node_snapshot_chunk_fn chunk,
                                node_snapshot_load_fn load, node_snapshot_reserve_fn reserve,
                                void *ctx);
/* Copies of partitions parked on this node now (INFO). */
uint32_t node_parked_count(const struct hy_node *n);

/* The crypto a joining node's proof of the cluster secret needs (join_auth.h), lent by the
 * shell: an HMAC-SHA256 into mac_out (32 bytes) and a cryptographic random source. Without
 * them HALYARD CHALLENGE refuses. */
typedef void (*node_mac_fn)(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                            uint8_t *mac_out);
typedef void (*node_random_fn)(uint8_t *buf, size_t len);
void node_set_crypto(struct hy_node *n, node_mac_fn mac, node_random_fn random);
/* SHA-256 of buf into hash_out (32 bytes), lent by the shell for ACL passwords (node/acl.h).
 * Without it, ACL users cannot be given passwords (requirepass still works). */
typedef void (*node_hash_fn)(const uint8_t *buf, size_t len, uint8_t *hash_out);
void node_set_hash(struct hy_node *n, node_hash_fn sha256);

/* Files the node reads and writes by name (the `aclfile`), lent by the shell: read appends at
 * most `max` bytes of the file to out; write replaces the file durably (a temporary, fsync,
 * rename, directory fsync). Both return 0, or -1 with the reason in err. Without them ACL
 * LOAD/SAVE refuse. */
struct hy_buf;
typedef int (*node_read_file_fn)(const char *path, size_t max, struct hy_buf *out, char *err,
                                 size_t cap);
typedef int (*node_write_file_fn)(const char *path, const uint8_t *data, size_t len, char *err,
                                  size_t cap);
void node_set_files(struct hy_node *n, node_read_file_fn read, node_write_file_fn write);

/* The health score the shell computed from the last observation (observe.h), for INFO:
 * scores 0-100 and the reasons, "; "-separated ("" when none). */
void node_set_health(struct hy_node *n, int node_score, int cluster_score, const char *reasons);
/* When the shell's log was last fdatasync'd (now_ms clock), for INFO persistence. */
void node_set_wal_last_sync(struct hy_node *n, uint64_t at_ms);
/* The shell's count of group commits its event loop wrote itself, without the WAL thread, and
 * of the times a slow fdatasync handed them back to the thread (io/durable.h), for INFO
 * persistence's wal_loop_group_commits and wal_loop_sync_pauses. */
void node_set_wal_loop_commits(struct hy_node *n, uint64_t count, uint64_t pauses);
/* Whether, since the last call (which clears it), the node had work besides writers waiting
 * for their replies: a client sent a write while one of its writes was waiting (pipelining),
 * or stopped inside a request (more is coming), or a request ran that did not leave its client
 * waiting for a write (a read, a forward, PING...). The shell's durable layer syncs a leader's turn
 * of writes in its loop when it is not busy: nobody could then be served during the wait
 * (io/durable.c). */
int node_turn_busy_take(struct hy_node *n);

/* Cluster events (events.c): the last id given (0: none yet), and event `id` as one JSON
 * object, or NULL when it is not (or no longer) kept. */
uint64_t node_events_last_id(const struct hy_node *n);
const char *node_event_get(const struct hy_node *n, uint64_t id);
/* After node_set_files: whether `aclfile` (when set) reads and holds valid users; -1 with the
 * reason in err (the server refuses to start, as Redis does). */
int node_aclfile_check(struct hy_node *n, char *err, size_t cap);

/* Snapshots away from the event loop. With a snapshotter set, a due snapshot is started
 * through it: start() must capture the store as it is during the call (a forked child does)
 * and return HY_OK, then encode it (store_snapshot_encode) elsewhere and hand the bytes back
 * with node_snapshot_done (ownership moves; data NULL = it failed). One runs at a time.
 * start() returning HY_EBUSY means "not now" (tried again later); any other failure, or no
 * snapshotter, and the node encodes inline. */
struct store;
typedef int (*node_snapshot_fn)(void *ctx, uint32_t group, const struct store *store);
void node_set_snapshotter(struct hy_node *n, node_snapshot_fn start, void *ctx);

/* The shell's say on a CONFIG SET of settings only it uses (the TLS certificates): called
 * with the settings as they would be; non-zero, with the reason in err, refuses the whole
 * CONFIG SET (rolled back). Applying them is the shell's business too. */
typedef int (*node_config_hook_fn)(void *ctx, const struct hy_config *cfg, char *err, size_t cap);
void node_set_config_hook(struct hy_node *n, node_config_hook_fn fn, void *ctx);
/* CONFIG REWRITE: the shell writes the running settings into the file they came from (same
 * signature: 0, or non-zero with the reason in err). None set: there is no file to write. */
void node_set_rewrite_hook(struct hy_node *n, node_config_hook_fn fn, void *ctx);
void node_snapshot_done(struct hy_node *n, uint32_t group, uint8_t *data, size_t len,
                        uint64_t now_ms);

struct node_io_batch *node_io_take(struct hy_node *n);
/* The batch is durable and its messages are sent: the engine may commit and answer. The
 * batches of one group (b->group) must be done in the order they were taken; batches of
 * different groups in any order (each group has a log of its own). */
void node_io_done(struct hy_node *n, struct node_io_batch *b, uint64_t now_ms);
/* Around a run of node_io_done calls (one turn's completions, of many groups): between
 * node_wake_hold and node_wake_release the clients those completions answered are looked at
 * once, at the release, instead of once per group's completion (a walk of the node's ready
 * clients each: 16 of them a turn with 16 partitions written). Holds nest. */
void node_wake_hold(struct hy_node *n);
void node_wake_release(struct hy_node *n, uint64_t now_ms);

/* When node_tick must next be called (absolute ms), and the tick itself (Raft timers). */
uint64_t node_timeout_ms(struct hy_node *n);
void node_tick(struct hy_node *n, uint64_t now_ms);

/* Clients with new output produced outside their own node_client_process call (a write that
 * committed, a client that was woken). Each is returned once; NULL when none. */
struct node_client *node_take_ready(struct hy_node *n);

/* Applies settings changed in cfg (after CONFIG SET or at start). */
void node_reconfigure(struct hy_node *n);

size_t node_client_count(const struct hy_node *n);
/* ---- proxying: followers forward requests to the leader (redirect: proxy) ---- */

/* NODE_PUBLISH: a PUBLISH for every other member's subscribers (pubsub.c); at most once: the
 * shell drops it when the link is down. */
/* NODE_FORWARD_BUSY: a FORWARD to a peer whose loop a script holds (SCRIPT KILL and its kin),
 * sent on the link that peer dialled when there is one: the peer's busy pump cannot read the
 * link whose frame started the script (busy_peers.c). */
enum node_peer_msg_kind {
    NODE_FORWARD = 1,
    NODE_FORWARD_REPLY = 2,
    NODE_PUBLISH = 3,
    NODE_FORWARD_BUSY = 4,
    NODE_WAN_REPLY = 5 /* the answer to a WAN link's request (node_wan_link_request) */
};

/* A message for the shell to send to member `to`; owned by the caller after take. */
struct node_peer_msg {
    struct node_peer_msg *next;
    int kind; /* enum node_peer_msg_kind */
    char to[NODE_MEMBER_NAME_MAX + 1];
    uint64_t req_id;
    struct hy_buf data; /* NODE_WAN_REPLY: the text (an error's, or an OK's) */
    /* NODE_WAN_REPLY: the link's connection, and the answer (enum wire_wan_status, value). */
    uint64_t wan_conn;
    int wan_status;
    int64_t wan_value;
};

/* WAN links on the peer port (docs/multi-region.md "The link's transport"). A request of the
 * link connection `conn` (the shell's id), source cluster `source`: what it asks runs as it
 * did for a link on the client port (HY.WANAPPLY slot batch; HALYARD WAN DEMOTE epoch by;
 * CONFIG GET partitions), by an internal client that may run only those; its answer leaves
 * through node_take_peer_msg as a NODE_WAN_REPLY. op: NODE_WAN_OP_*; data, len: the batch
 * (APPLY) or the promoted cluster's name (DEMOTE), borrowed for the call. */
enum node_wan_op { NODE_WAN_OP_APPLY = 1, NODE_WAN_OP_DEMOTE, NODE_WAN_OP_PARTS };
void node_wan_link_request(struct hy_node *n, uint64_t conn, const char *source, uint64_t req_id,
                           int op, uint16_t slot, uint64_t epoch, const uint8_t *data, size_t len,
                           uint64_t now_ms);

/* The next forward or forward reply to send, or NULL; free with node_peer_msg_free. */
struct node_peer_msg *node_take_peer_msg(struct hy_node *n);
void node_peer_msg_free(struct node_peer_msg *m);

/* A request a follower forwarded (data borrowed for the call). The reply leaves through
 * node_take_peer_msg as a NODE_FORWARD_REPLY. */
void node_forward_request(struct hy_node *n, const char *from, uint64_t req_id, const uint8_t *data,
                          size_t len, uint64_t now_ms);
/* The reply of member `from` to one of our forwards (data borrowed). */
void node_forward_reply(struct hy_node *n, const char *from, uint64_t req_id, const uint8_t *data,
                        size_t len, uint64_t now_ms);
/* A PUBLISH frame's payload from member `from` (data borrowed): delivered to this node's
 * subscribers (pubsub.c). */
void node_publish_received(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                           uint64_t now_ms);
/* The shell could not send forward req_id (no link, queue full): it never left this node, so
 * the request waits for a reachable leader and goes again. */
void node_forward_dropped(struct hy_node *n, uint64_t req_id, uint64_t now_ms);

/* The peer transport's view of member `name`: reachable (1) or not (0). Requests are never
 * forwarded into a link that is down, forwards sent into one that goes down are resolved at
 * once, and a node that cannot reach a majority answers -NOQUORUM. */
void node_peer_state(struct hy_node *n, const char *name, int up, uint64_t now_ms);
/* Node-level failure detection of member `name`: suspected down (0: its link broke, or
 * nothing came from it for an election timeout) or heard again (1). Every Raft group hears of
 * it (RAFT_EV_LIVENESS): quiesced groups rely on it instead of their own timers. Also called
 * by node_peer_state. */
void node_peer_liveness(struct hy_node *n, const char *name, int alive, uint64_t now_ms);
/* Gossip suspects the member (it may refute it): the MEMBER_SUSPECT event, and the quiesced
 * followers of the groups it leads wake and nudge it, so that a hung leader is replaced an
 * election timeout later (raft.c on_liveness), not when the suspicion times out. */
void node_peer_suspect(struct hy_node *n, const char *name, uint64_t now_ms);

/*
 * Gossip (src/membership; node/gossip.c): the node's view of who is alive, over the peer
 * transport's GOSSIP frames. The shell starts it once it can carry the messages (without it,
 * e.g. in the whole-node simulator, the links alone say who is up). With it on, gossip's
 * states drive node_peer_liveness and the member events; a broken link is gossip's own
 * suspicion (node_peer_state hands it over) rather than a verdict.
 *
 * start: HY_OK (also when the gossip setting is no: then nothing runs). receive: a GOSSIP
 * frame's payload (borrowed; malformed ones are dropped and logged). heartbeat: anything
 * arrived from `from` at heard_ms (the phi detector's samples; non-decreasing per member).
 * tick: runs the timers, the member list and the runtime settings; call by next_ms. take:
 * the next message to send (*data_out valid until the next gossip call), 0 when none.
 */
int node_gossip_start(struct hy_node *n, uint64_t seed, uint64_t now_ms) HY_MUST_CHECK;
int node_gossip_on(const struct hy_node *n);
void node_gossip_receive(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                         uint64_t now_ms);
void node_gossip_heartbeat(struct hy_node *n, const char *from, uint64_t heard_ms);
void node_gossip_link_down(struct hy_node *n, const char *name, uint64_t now_ms);
void node_gossip_tick(struct hy_node *n, uint64_t now_ms);
uint64_t node_gossip_next_ms(const struct hy_node *n);
int node_gossip_take(struct hy_node *n, char *to_out, size_t to_cap, const uint8_t **data_out,
                     size_t *len_out);
/* "alive", "suspect", "dead", "left", or NULL (gossip off or member unknown). Static text. */
const char *node_gossip_state(const struct hy_node *n, const char *name);
struct node_gossip_view {
    const char *state; /* static */
    uint64_t incarnation;
    double phi; /* of the heartbeats on its link now (0: too few yet) */
};
int node_gossip_member(const struct hy_node *n, const char *name, struct node_gossip_view *out);
struct node_gossip_stats {
    int on;
    uint32_t local_health;         /* Lifeguard's multiplier: 0 healthy .. 8 */
    uint64_t incarnation;          /* this node's */
    uint64_t alive, suspect, dead; /* other members, as this node sees them */
    uint64_t probes, probes_failed, suspicions, refutations, deaths, msgs_dropped;
    uint64_t suspect_probe, suspect_phi, suspect_link; /* this node's own, by cause */
    uint64_t stalls, stall_max_ms; /* turns that judged nothing: this node had not run */
    uint64_t stalls_stopped;       /* of them, the process's own pauses (not the host's lag) */
    uint32_t lag_grace_ms;         /* the loop-lag grace added to every silence now */
    uint64_t grace_saved_probe, grace_saved_phi; /* suspicions the grace held back */
    uint64_t peer_stalls;                        /* refuted suspicions that taught the grace */
    uint64_t peer_gaps;  /* live members' heartbeat gaps past their rhythm that taught it */
    uint32_t ring_links; /* ring neighbours: the links that carry beacons and phi */
};
void node_gossip_stats(const struct hy_node *n, struct node_gossip_stats *out);
/* The process's runnable time so far in ms (membership_note_runnable): every few ms, and before
 * a tick or a heartbeat. */
void node_gossip_note_runnable(struct hy_node *n, uint64_t runnable_ms, uint64_t now_ms);
/* The most ring neighbours a node has (2 * MEMBERSHIP_RING_K_MAX). */
#define NODE_GOSSIP_RING_MAX 16
/* Gossip's ring neighbours as its last turn computed them (membership_ring): the members the
 * shell beacons to and whose links phi watches. Names into out (borrowed until the next gossip
 * call), at most cap; returns how many, 0 with gossip off. *epoch (may be NULL) changes when
 * they do. */
size_t node_gossip_ring(const struct hy_node *n, const char **out, size_t cap, uint64_t *epoch);

/* The ids of the Raft groups this node holds (ascending), up to cap; returns their count. */
size_t node_group_ids(const struct hy_node *n, uint32_t *ids, size_t cap);

/* The durable log asks for a snapshot of `group` (its old entries keep log segments that the
 * other groups no longer need: wal.h wal_pinning_groups). Starts one as a due snapshot would,
 * unless one is under way or nothing was applied since the last. HY_OK when started,
 * HY_EEXIST when not needed, HY_ENOTFOUND for an unknown group. */
int node_snapshot_request(struct hy_node *n, uint32_t group, uint64_t now_ms);
/* The durable log's answer to a group pinning its old segments (wal_pinning_groups): a
 * snapshot (node_snapshot_request) when one would cover something; otherwise, when the group's
 * entries after its snapshot are all unapplied (a partition without a leader, or a leader
 * without its majority, can hold them for hours and no snapshot can cover them), a batch that
 * writes them again at the log's end, so that their old copies, and the segments they kept,
 * can go (one at a time per group). HY_OK when either started, HY_EEXIST when neither is
 * needed or possible now, HY_ENOTFOUND for an unknown group. */
int node_log_unpin(struct hy_node *n, uint32_t group, uint64_t now_ms);

/* A Raft message from a peer (borrowed for the call). */
void node_receive(struct hy_node *n, uint32_t group, const struct raft_message *m, uint64_t now_ms);

/* The group's members (this node alone without a bootstrap list); borrowed. */
const struct node_member *node_members(const struct hy_node *n, size_t *count_out);

/* Grows whenever the member list or the Raft configuration changed: the shell then refreshes
 * the transport's peers. */
uint64_t node_members_epoch(const struct hy_node *n);
/* Whether the transport should talk to m: any member whose peer address is known, removed
 * ones included. A removed member may be added back under its name while this node misses
 * the re-add; refusing it then cut this node off from it for good once it led (the open bug
 * of docs/simulator.md, seeds 2000661 and 5001055): only its entries could tell this node of
 * the re-add. Raft keeps a removed member harmless: its votes are not granted while a leader
 * is heard (§4.2.3), wiped and started afresh it grants none until it holds a configuration
 * (raft.c), a leader sends only to its configuration, and partition groups ignore members the
 * metadata group removed (node_receive). */
int node_member_is_peer(const struct hy_node *n, const struct node_member *m);

/* Name of the member (or guest) with Raft id `id` (to address messages), or NULL when
 * unknown. */
const char *node_member_name(const struct hy_node *n, raft_id id);

/*
 * Guests: a node that proved the cluster secret in the peer handshake but that this node's
 * member list does not name yet. It joined while this node was cut off: the entry that names
 * it is in the metadata group's log, and when the joiner leads that group, only it can send
 * this node that entry (simulator seed 1960000267). So the transport admits it on the
 * connection it dialled, answers on that connection, and the engine addresses it by name
 * until the log makes it a member. Admitting it is safe for the reason removed members stay
 * peers (node_member_is_peer): an unknown name is at worst a member removed while this node
 * missed it, and Raft keeps such a one harmless.
 *
 * node_guest_admissible: 1 when `name` may be admitted as a guest: not this node, and not a
 * member this node knows as removed (one it knows is a peer, and not a guest, anyway).
 * node_guest_add: the transport admitted `name` (a bounded list, the oldest replaced).
 */
int node_guest_admissible(const struct hy_node *n, const char *name);
void node_guest_add(struct hy_node *n, const char *name);

/* The log's disk is full (1) or has room again (0): writes are refused meanwhile. */
void node_set_disk_full(struct hy_node *n, int full);

/* 1 once HALYARD DRAIN was asked and this node no longer leads: the shell then shuts down
 * gracefully (stop accepting, finish replies, exit 0). */
int node_drained(const struct hy_node *n);
/* A failure the node cannot go on from (the last chunk of a received snapshot not written, or
 * not read back for its install): said in the log; nothing of the update it came with was
 * persisted, sent or applied, and no Raft group moves any more. The shell stops the process
 * (abort) before sending anything else, as when its log cannot be synced; a restart receives
 * the snapshot again. */
int node_fatal(const struct hy_node *n);
/* Once drained: what happened, for the log ("leadership handed over" only when it led). */
const char *node_drain_outcome(const struct hy_node *n);

/* 1 when this node leads its Raft group. */
int node_is_leader(const struct hy_node *n);
/* 1 when this node leads any of its Raft groups (the metadata group or a partition): a loop
 * over the groups, so callers on a hot path read it at most once a millisecond. */
int node_leads_any(const struct hy_node *n);

/* Test only: the simulator's mutation self-test injects a known bug to prove that some seed
 * catches it (as raft_config.mutation does for the core). Never set outside halyard-sim.
 * NODE_MUT_SNAPSHOT_AHEAD labels a snapshot one index below the state it holds, so the entry
 * it already contains is applied again after a restart or an install. NODE_MUT_SESSION_IGNORED
 * runs HY.REQ's command without its session, so a retried write is applied again.
 * NODE_MUT_RESEND_BARE re-forwards a write whose first copy may have been applied without the
 * follower's session; NODE_MUT_STALE_REPLY hands a client the "not run" refusal (-TRYAGAIN,
 * -MOVED) of a leader it re-sent a possibly applied write to, as if nothing had run;
 * NODE_MUT_APPLY_CLOCK and NODE_MUT_SESSION_FORGET are the store's (store_set_mutation).
 * NODE_MUT_FIRST_MAP_JOINER places the first partition map over every member, a node that
 * joined before it was written too, instead of the bootstrap's members (partmap.c's old bug). */
enum node_mutation {
    NODE_MUT_NONE = 0,
    NODE_MUT_SNAPSHOT_AHEAD = 1,
    NODE_MUT_SESSION_IGNORED = 2,
    NODE_MUT_RESEND_BARE = 3,
    NODE_MUT_STALE_REPLY = 4,
    NODE_MUT_APPLY_CLOCK = 5,    /* STORE_MUT_APPLY_CLOCK */
    NODE_MUT_SESSION_FORGET = 6, /* STORE_MUT_SESSION_FORGET */
    NODE_MUT_FIRST_MAP_JOINER = 7
};
void node_set_mutation(struct hy_node *n, unsigned mutation);

/* ---- MIGRATE (cmd_migrate.c, docs/protocol.md "MIGRATE") ---- */

/* One MIGRATE's I/O for the shell: connect to host:port, send req in one write, read
 * `replies` replies, each step bounded by timeout_ms; the outcome goes to node_migrate_done
 * with the job's id. */
struct node_migrate_job {
    uint64_t id;
    char host[256];
    char port[16];
    uint64_t timeout_ms;
    struct hy_buf req; /* RESP requests: [AUTH], SELECT, RESTORE... */
    size_t replies;
};
/* Whether a MIGRATE waits for the shell to take its job. */
int node_migrate_pending(const struct hy_node *n);
/* The jobs not yet taken (owned by the caller: node_migrate_jobs_free). */
size_t node_migrate_take(struct hy_node *n, struct node_migrate_job **out);
void node_migrate_jobs_free(struct node_migrate_job *jobs, size_t count);
enum {
    NODE_MIGRATE_OK = 0,   /* every reply was read */
    NODE_MIGRATE_ECONNECT, /* no connection to the target */
    NODE_MIGRATE_EWRITE,   /* the requests could not be sent */
    NODE_MIGRATE_EREAD     /* the connection ended, or timed out, before every reply */
};
/* The outcome of job id: io, and the replies read (count of them, in order), each "" when it
 * was no error, else the error's text without its '-' (borrowed for the call). */
void node_migrate_done(struct hy_node *n, uint64_t id, int io, const char *const *replies,
                       size_t count, uint64_t now_ms);

/* ---- links between clusters (wan_ship.c, docs/wan.md) ---- */

/* One batch a partition leader ships to a link's target. The shell sends it (split per target
 * partition, as HY.WANAPPLY) and reports the outcome with node_wan_done. */
struct node_wan_job {
    char link[65];
    char targets[513]; /* host:port[,host:port...]: the target members' peer ports */
    char secret[257];  /* the target's cluster secret; empty: none */
    char source[65];   /* this cluster's name (cluster-name), which the link's proof binds */
    uint32_t partition;
    uint64_t term;     /* handed back to node_wan_done */
    uint64_t last_seq; /* the batch's last sequence number */
    uint64_t entries;
    int resync;          /* a resync's scan batch (last_seq numbers it within the resync) */
    struct hy_buf batch; /* store_wan.h's batch */
    /* This cluster was promoted at tell_epoch (0: no) and the link is active-passive: the
     * thread sends HALYARD WAN DEMOTE tell_epoch tell_by on every new connection. */
    uint64_t tell_epoch;
    char tell_by[65];
    /* TLS to the target (the link says TLS): the files of the context, from the link (its CA)
     * and this member's settings (tls-ca-cert-file/-dir when the link names no CA; the
     * certificate it shows: tls-client-cert-file/-key-file, else tls-cert-file/-key-file). */
    int tls;
    char tls_ca[513], tls_ca_dir[513], tls_cert[513], tls_key[513], tls_key_pass[257];
};
/* The batches due now, at most one in flight per (link, partition); free with
 * node_wan_jobs_free. */
size_t node_wan_take(struct hy_node *n, uint64_t now_ms, struct node_wan_job **out);
void node_wan_jobs_free(struct node_wan_job *jobs, size_t count);
/* Whether changes were collected since node_wan_take last looked: the shell then takes at the
 * end of the loop turn instead of waiting for its cron. */
int node_wan_pending(const struct hy_node *n);
/* The target applied the batch (ok), or it failed (why). */
void node_wan_done(struct hy_node *n, const char *link, uint32_t partition, uint64_t term,
                   uint64_t last_seq, uint64_t entries, int resync, int ok, const char *why,
                   uint64_t now_ms);

/* Where each (link, partition) this node leads stands, for /metrics. */
struct node_wan_lag_view {
    char link[65];
    uint32_t partition;
    uint64_t acked_seq, shipped_seq, last_seq;
    uint64_t lag_entries, lag_ms;
    uint64_t batches, entries, failures, skipped;
    int gap, backing_off;
    int resyncing;                      /* a resync runs (docs/wan.md "Resync") */
    uint64_t resync_keys, resync_bytes; /* its states acknowledged so far (or the last's) */
    uint64_t resyncs;                   /* resyncs this node completed as leader */
    uint64_t outbox_bytes;              /* the partition's outbox (every link's changes) */
    int writes_blocked;                 /* wan-queue-full block-writes and the outbox full */
    int link_down;                      /* the link's last batch from this node failed */
};
size_t node_wan_lags(const struct hy_node *n, struct node_wan_lag_view *out, size_t cap,
                     uint64_t now_ms);
/* Active-active merge decisions made by the partitions this node leads, summed per (link the
 * changes came over, policy, outcome: "applied" when the incoming version won, "kept" when the
 * local one stayed). */
struct node_wan_conflict_view {
    char link[65];
    char policy[24];
    const char *outcome;
    uint64_t count;
};
size_t node_wan_conflict_totals(const struct hy_node *n, struct node_wan_conflict_view *out,
                                size_t cap);

#endif
