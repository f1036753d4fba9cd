/*
 * wal_thread.h - the node's shared durable log driven from the libuv loop: writes and fdatasyncs
 * of every Raft group run on ONE dedicated thread, completions come back to the loop
 * (docs/architecture.md "Cores and shell", "The path of a write": group commit).
 *
 * Everything submitted during one loop turn is handed to the thread together just before the
 * loop sleeps (a uv_prepare handle, like Redis's beforeSleep), and the thread writes all the
 * work it finds queued, whatever its groups, with ONE write and ONE fdatasync (wal_node_write), so
 * the fsync count follows loop turns and disk speed, never the number of clients or of groups.
 * Requests complete in the order they were submitted, so each group's do too. While the thread
 * syncs, the next turns' submissions queue up and share the next fsync.
 *
 * The wal is owned by the thread between wal_thread_start and wal_thread_stop: the loop must
 * not call it directly meanwhile, but through wal_thread_write_now, which in `durability:
 * replicated` writes a request from the loop itself when the thread holds nothing (no
 * hand-off and no wake-up either way), the thread's timed fdatasync running beside it.
 *
 * Errors arrive in the completion: HY_ENOSPC means the submitted work is not durable yet; the
 * thread retries it by itself every 200 ms (and at each new submission) and reports HY_OK once
 * it succeeds, so the node turns read-only and back. HY_EIO is fatal: log it and abort the
 * process (never retry an fsync; wal.h).
 */
#ifndef HY_WAL_THREAD_H
#define HY_WAL_THREAD_H

#include <uv.h>

#include "common/metrics.h"
#include "io/wal.h"
#include "io/wal_node.h"

struct wal_thread_done {
    int status;           /* HY_OK, HY_ENOSPC (retrying), HY_EIO (fatal: abort) */
    uint64_t durable_seq; /* every request with seq <= durable_seq is durable */
    /* Groups the log asks to snapshot (wal_pinning_groups after the last write). */
    const uint32_t *snapshot_wanted;
    size_t n_snapshot_wanted;
};

/* Called on the loop thread; `done` is borrowed for the call. Several completions may be
 * folded into one call (the latest state is reported). */
typedef void (*wal_thread_done_cb)(void *ctx, const struct wal_thread_done *done);

struct wal_thread;

/*
 * Starts the thread for wal `w` (ownership moves to the thread until wal_thread_stop). `loop`
 * is borrowed and must outlive the thread. Returns HY_OK and *thread_out, or HY_EIO.
 */
int wal_thread_start(uv_loop_t *loop, struct wal *w, void *ctx, wal_thread_done_cb done_cb,
                     struct wal_thread **thread_out) HY_MUST_CHECK;

/* Queues a request (wal_node.h); returns its sequence number (1, 2, ...), reported back in
 * wal_thread_done.durable_seq once durable. The request and its arrays are copied; the bytes
 * of its entries and of its snapshot's data are borrowed and must stay unchanged until that
 * sequence number is reported durable (or wal_thread_stop returned): the node's io batch that
 * holds them lives that long (durable.c), so the entries are not copied a second time on the
 * write path. Loop thread only. */
uint64_t wal_thread_submit(struct wal_thread *t, const struct wal_node_req *req);

/*
 * `durability: replicated`'s short path: writes requests reqs[0..n) (borrowed for the call,
 * their entries' bytes too) from the loop thread itself, as one group commit with one write()
 * and no hand-off to the thread and back, when it can: replicated mode, everything submitted
 * before is written, nothing waits, the disk is not full; and only the first requests that
 * are entries needing no fdatasync and no new segment (wal_node_unsynced_prefix). Returns how
 * many it wrote, k, numbered *first_seq_out .. + k - 1 as wal_thread_submit would have, and
 * durable as replicated mode means it (so is every earlier request), with no completion to
 * wait for: the caller completes them itself. 0 when it wrote nothing (or the write failed:
 * the thread meets the failure again): submit the requests left, in order. The thread
 * fdatasyncs what the loop wrote within the interval, as its own writes. Loop thread only.
 */
size_t wal_thread_write_now(struct wal_thread *t, const struct wal_node_req *const *reqs, size_t n,
                            uint64_t *first_seq_out);

/*
 * The same in `durability: fsync`, for a node whose loop has nothing better to do than wait
 * for the disk (durable.c: a node that leads no group, or a leader's large turn, on a disk
 * whose fdatasyncs are short): writes reqs[0..n) and fdatasyncs them from the loop thread, with
 * the same conditions, numbering and return value, durable when it returns (its time is
 * recorded with the thread's group commits, wal_thread_sync_times). It saves the two wake-ups
 * of a hand-off (a futex to the thread, an eventfd back); the loop is blocked for the
 * fdatasync meanwhile. Loop thread only.
 */
size_t wal_thread_sync_now(struct wal_thread *t, const struct wal_node_req *const *reqs, size_t n,
                           uint64_t *first_seq_out);

/* How many requests wal_thread_write_now and wal_thread_sync_now wrote. Loop thread only. */
uint64_t wal_thread_loop_writes(const struct wal_thread *t);

/*
 * Writes everything submitted so far, stops and joins the thread, reports a last completion,
 * and closes the libuv handles; the struct is freed by their close callbacks, so the loop must
 * run once more (uv_run). The wal goes back to the caller (wal_close it). Loop thread only.
 */
void wal_thread_stop(struct wal_thread *t);

/* A copy of the histogram of the time each fdatasync took (with the write of its group commit,
 * if any), since start. Loop thread only. */
void wal_thread_sync_times(struct wal_thread *t, struct hy_histo *out);

/*
 * `durability` and `fsync-interval-ms` (>= 1), from the next group commit on: WAL_NODE_FSYNC
 * (the default) reports a request durable once fdatasync'd; WAL_NODE_REPLICATED once written
 * (the page cache holds it: a crash of the process loses nothing, a power cut may), and
 * fdatasyncs at most interval_ms after the last fdatasync, whenever writes are unsynced, and
 * before the thread stops. Term/votes, snapshots and configuration entries are synced before
 * they are reported in both modes (wal_node_write_as). Loop thread only.
 */
void wal_thread_set_durability(struct wal_thread *t, enum wal_node_durability mode,
                               uint32_t interval_ms);

/* uv_hrtime() of the last fdatasync of the log (the thread's start when none yet). */
uint64_t wal_thread_last_sync_ns(struct wal_thread *t);
/* How long the last fdatasync took, in microseconds (the thread's or the loop's; 0 before the
 * first). */
uint64_t wal_thread_last_sync_us(struct wal_thread *t);

/* Tests: the bound of the wait of a group commit for the writers of the previous one
 * (wal_thread.c wt_linger) fixed at ns (0: half the previous group's time, at most 250 µs). */
void wal_thread__set_linger_ns(struct wal_thread *t, uint64_t ns);

#endif
