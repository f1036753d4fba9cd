/*
 * wal_node.h - the node's shared log as the engine sees it: the part of the storage shell that
 * makes no system call and runs no thread, so that the server (durable.c with its WAL thread,
 * wal_thread.c) and the whole-node simulator (sim/whole.c, which writes on its own loop) run
 * the same code (issue 10 item 1):
 *  - opening: the shared log opened for every group the node holds, each group started from
 *    what it recovered (wal_node_open, wal_node_start);
 *  - writing: an engine io batch turned into a request of its group (wal_node_req_of), and a
 *    list of requests of any groups written as ONE group commit (wal_node_write: one write and
 *    one fdatasync, a snapshot on its own; node.h's order per group: term/vote, snapshot,
 *    entries);
 *  - completing: per group, batches hand back to the engine in order, a batch with nothing to
 *    persist at once when nothing of its group is ahead of it (wal_node_queues), and the log's
 *    report (durable, full disk, groups to snapshot) turned into the engine's calls
 *    (wal_node_complete).
 */
#ifndef HY_IO_WAL_NODE_H
#define HY_IO_WAL_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "io/disk.h"
#include "io/wal.h"
#include "node/node.h"

/*
 * Starts group `group` of node n (node_start) from rec (borrowed for the call): the snapshot, its
 * membership, and the entries after it (the WAL may also hold trailing ones at or below it). Logs
 * what was recovered to log (may be NULL). Returns HY_OK or HY_ECORRUPT (the snapshot's membership
 * or data does not decode).
 */
int wal_node_start(struct hy_node *n, uint32_t group, const struct wal_recovered *rec,
                   uint64_t now_ms, const struct hy_log *log) HY_MUST_CHECK;

/* Called with each group's recovered state before the group starts from it (borrowed). */
typedef void (*wal_node_recovered_cb)(void *ctx, const struct wal_recovered *rec);

/*
 * io_durable_open's recovery: opens the shared log on `disk` (wal_open with cfg) for every group
 * node n holds (node_group_ids), then starts the groups from what it recovered in ascending id
 * order (wal_node_start), calling seen (may be NULL) with each group's state first. Returns HY_OK
 * and *wal_out, or an error with a one-line explanation in err (err_len bytes) and nothing open;
 * a group that failed to start leaves the groups before it started.
 */
int wal_node_open(struct disk *disk, const struct wal_config *cfg, struct hy_node *n,
                  uint64_t now_ms, const struct hy_log *log, wal_node_recovered_cb seen, void *ctx,
                  struct wal **wal_out, char *err, size_t err_len) HY_MUST_CHECK;

/* One unit of work of one group: any of term/vote, a snapshot, entries (applied in that order).
 * Pointers are borrowed. */
struct wal_node_req {
    uint32_t group;
    int term_vote_changed;
    uint64_t term;
    uint64_t vote;
    const struct wal_snapshot *snapshot; /* NULL = none */
    int discard_log;                     /* with snapshot: one received from the leader */
    int forget;                /* the group's log and snapshot go (wal_group_forget), first */
    int snapshot_file_written; /* with snapshot: its file is durable already (io/snap_writer.h):
                                  wal_snapshot_install instead of wal_snapshot_put */
    int snapshot_received;     /* with snapshot: received, its file written whole under a
                                  temporary name (io/snap_recv.h):
                                  wal_snapshot_install_received */
    uint64_t first_index;      /* entries >= first_index are replaced */
    const struct wal_entry *entries;
    size_t n_entries;
};

/* 1 when batch b has something to persist (term/vote, a snapshot, entries). */
int wal_node_batch_persists(const struct node_io_batch *b);

#define WAL_NODE_MEMBERSHIP_MAX (8 + RAFT_SERVERS_MAX * 16)

/* The request that persists batch b (borrowed): its snapshot is described in *snap, whose
 * configuration is encoded into membership, and its entries in *ents_out (allocated: hy_free it
 * once the request is written or copied; NULL without entries). All must outlive *req. */
void wal_node_req_of(const struct node_io_batch *b, struct wal_node_req *req,
                     struct wal_snapshot *snap, uint8_t membership[WAL_NODE_MEMBERSHIP_MAX],
                     struct wal_entry **ents_out);

/*
 * Writes the n requests reqs[0..n) (of any groups, in submission order) as one group commit:
 * every term/vote and entries staged and committed with ONE write and ONE fdatasync; a snapshot
 * (rare) first commits what is staged, so that its group's term/vote is durable before it, and
 * is written on its own. Entries a snapshot already covers are skipped, and so is a term/vote
 * not newer than the one its group's log holds (a retry after ENOSPC writes the whole list
 * again, part of which may be durable). Nothing may be staged. Returns HY_OK (all durable),
 * HY_ENOSPC (write the same list again later: what was written is superseded by the same
 * records) or HY_EIO (fatal: the caller aborts).
 */
int wal_node_write(struct wal *w, const struct wal_node_req *const *reqs, size_t n) HY_MUST_CHECK;

/* The node's `durability` setting (docs/operations.md "Data directory and durability"). */
enum wal_node_durability {
    WAL_NODE_FSYNC = 0,      /* every group commit is fdatasync'd before it is reported */
    WAL_NODE_REPLICATED = 1, /* written to the page cache; fdatasync'd by the caller later */
};

/*
 * wal_node_write in either mode. WAL_NODE_REPLICATED writes without the fdatasync
 * (wal_batch_write) unless the list holds a term/vote to record, a snapshot or a configuration
 * entry, which are synced as in WAL_NODE_FSYNC (with everything written before them);
 * wal_unsynced(w) then says whether the caller owes an fdatasync (wal_sync).
 */
int wal_node_write_as(struct wal *w, const struct wal_node_req *const *reqs, size_t n,
                      enum wal_node_durability mode) HY_MUST_CHECK;

/* How many of reqs[0..n), from the first, wal_node_write_as writes in WAL_NODE_REPLICATED with
 * one write() and nothing else: entries only (no term/vote, snapshot, forget or configuration
 * entry, which are synced) that fit in the open segment together (no new segment, whose
 * making syncs). Such a write is quick enough for the event loop itself (io/wal_thread.h
 * wal_thread_write_now). */
size_t wal_node_unsynced_prefix(const struct wal *w, const struct wal_node_req *const *reqs,
                                size_t n);

/* Each group's batches handed out and not yet given back, in order, with the write request
 * (seq) each waits for. */
struct wal_node_queues;

/* Queues for every group node n holds. */
struct wal_node_queues *wal_node_queues_new(const struct hy_node *n);
/* Frees the queues; batches still queued belong to the node. */
void wal_node_queues_free(struct wal_node_queues *q);

/* io_durable_pump's rule for batch b, seq its write request (0: it persists nothing). Returns
 * 1 when it may complete at once (nothing to persist, nothing of its group ahead: send its
 * messages and call node_io_done), else queues it and returns 0. */
int wal_node_queues_add(struct wal_node_queues *q, struct node_io_batch *b, uint64_t seq);

/* The write request of batch b, queued with WAL_NODE_SEQ_HELD because it was not submitted
 * yet (its group waits for a snapshot file written off the WAL thread: durable.c), once it is.
 * b must be queued and still held. */
#define WAL_NODE_SEQ_HELD UINT64_MAX
void wal_node_queues_set_seq(struct wal_node_queues *q, const struct node_io_batch *b,
                             uint64_t seq);

/* Called with each batch as it completes, before the engine is told (node_io_done follows):
 * its messages go now (raft.h step 2: only once step 1 is durable). */
typedef void (*wal_node_send_cb)(void *ctx, struct node_io_batch *b);

/* Follower acknowledgements batched per group commit: of the batches of one group made durable
 * by the same write, a successful AppendEntries response is left out when a later one of them
 * acknowledges, to the same leader in the same term, as much or more. A follower handed one
 * batch per AppendEntries it received, each with its response, so with pipelined writes it
 * answered every message of a group commit, and its leader stepped each of those answers,
 * where the last alone says all they say: the leader takes the highest match index, heartbeat
 * round (seq) and send time (sent_ms) it is told (raft.c on_append_resp), and a response is
 * left out only when the later one is as high on all three. Rejections and answers to a
 * quiesce round (their flag is not a maximum) all go. `batches`: n batches of one group, in
 * the order they complete; their message arrays are compacted in place. Returns how many
 * responses were left out. */
size_t wal_node_coalesce_acks(struct node_io_batch *const *batches, size_t n);

/*
 * The log reported (durable.c's completion, the simulator's disk event): status HY_OK or
 * HY_ENOSPC (HY_EIO is the caller's: it aborts), every request with seq <= durable_seq durable,
 * the groups it asks to snapshot (wal_pinning_groups). Tells the engine when the disk turns
 * full or has room again (node_set_disk_full; *disk_full holds what it was last told), asks for
 * the snapshots (node_snapshot_request), then hands back, group by group in id order, each
 * queued batch whose request is durable: send, then node_io_done.
 */
void wal_node_complete(struct wal_node_queues *q, struct hy_node *n, int status,
                       uint64_t durable_seq, const uint32_t *wanted, size_t n_wanted,
                       int *disk_full, wal_node_send_cb send, void *ctx, uint64_t now_ms,
                       const struct hy_log *log);

#endif
