#include "io/durable.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/disk.h"
#include "io/server.h"
#include "io/snap_writer.h"
#include "io/wal.h"
#include "io/wal_node.h"
#include "io/wal_thread.h"

struct io_durable {
    struct hy_node *node;
    const struct hy_config *cfg;
    const struct hy_log *log;
    io_durable_progress_cb progress_cb;
    io_durable_send_cb send_cb;
    void *ctx;
    struct wal_config wal_cfg;
    /* The node's one log, shared by every group, and its one WAL thread. */
    struct disk *disk;
    struct wal *wal;
    struct wal_thread *thread;
    struct wal_node_queues *queues; /* each group's batches handed out, in order */
    int disk_full;
    /* Snapshot files taken here are written off the WAL thread (snap_writer.h); meanwhile
     * their group's later writes wait in a hold, in order (durable_hold_take). */
    struct snap_writer *writer;
    struct durable_hold *holds;
    size_t n_holds;
    /* `durability: replicated`: the batches of entries taken during this loop turn, in order,
     * queued with WAL_NODE_SEQ_HELD until the turn's end writes them from the loop as one group
     * commit (durable_turn_write), as the WAL thread would have, so that a follower given many
     * AppendEntries in one turn still writes them once and answers them together. */
    int replicated;
    /* `durability: fsync`: the turn's batches of entries wait in the same list, and the loop
     * writes and fdatasyncs them itself at the turn's end (wal_thread_sync_now) on a node that
     * leads no group, or on a leader for a large turn or when nobody but its writers waits
     * for it (durable_leader_syncs), as long as its fdatasyncs stay short
     * (durable_loop_syncs); other turns of a leader go to the thread at the turn's end. */
    uint64_t leads_checked_ms; /* when node_leads_any was last asked (at most once a ms) */
    int leads;
    uint64_t followed_ms; /* when a turn last held entries of a group this node follows */
    io_durable_before_sync_cb before_sync_cb;
    void *before_sync_ctx;
    /* Inside io_durable_pump: the callback may report a peer down (a write that fails at
     * once), which moves the engine and asks for a pump again; that one waits for the next. */
    int pumping;
    uint64_t loop_sync_paused_ms; /* no loop fdatasync before this (one was slow); 0: none */
    uint64_t loop_commits;        /* group commits the loop wrote (io_durable_loop_commits) */
    uint64_t loop_sync_pauses;    /* times a slow one handed its syncs to the thread */
    struct node_io_batch **turn;
    size_t n_turn, cap_turn;
    struct wal_node_req *turn_reqs; /* durable_turn_write's requests, kept for their capacity */
    const struct wal_node_req **turn_ptrs;
    size_t cap_reqs;
    struct wal_entry *turn_ents;
    size_t cap_ents;
};

static void durable_send(void *ctx, struct node_io_batch *b)
{
    struct io_durable *d = ctx;
    d->send_cb(d->ctx, b);
}

#define DURABLE_PUMP_ROUNDS         4
/* durable_loop_syncs: a loop fdatasync slower than this hands the next pause to the thread,
 * and the loop syncs again only once the last fdatasync was quicker. */
#define DURABLE_LOOP_SYNC_SLOW_US   10000
#define DURABLE_LOOP_SYNC_PAUSE_MS  1000
/* durable_leader_syncs: the fewest entries in a leader's turn that the loop fdatasyncs itself
 * whatever else it has to do; and how long after entries of a group it follows it leaves the
 * smaller turns to the thread. */
#define DURABLE_LEADER_SYNC_ENTRIES 256
#define DURABLE_FOLLOWED_RECENT_MS  100

/* A group whose snapshot file is being written: v[0] is that snapshot's batch, then the
 * group's later batches with something to persist, none submitted yet. */
struct durable_hold {
    uint32_t group;
    struct node_io_batch **v;
    size_t n, cap;
};

/* Submits the batch's writes: term/vote, snapshot, entries, in that order (raft.h).
 * file_written: its snapshot's file is durable already (the snapshot writer's). */
static uint64_t submit_batch(struct io_durable *d, const struct node_io_batch *b, int file_written)
{
    struct wal_node_req req;
    struct wal_snapshot snap;
    uint8_t membership[WAL_NODE_MEMBERSHIP_MAX];
    struct wal_entry *ents;
    wal_node_req_of(b, &req, &snap, membership, &ents);
    req.snapshot_file_written = file_written;
    /* The thread copies the descriptors and borrows the data, which b holds until it is done:
     * b stays in d->queues until the thread reports it durable. */
    uint64_t seq = wal_thread_submit(d->thread, &req);
    hy_free(ents);
    return seq;
}

/* The requests of the turn's batches, built in d's arrays (valid until the next call);
 * returns how many entries they hold. */
static size_t durable_turn_reqs(struct io_durable *d)
{
    size_t n_ents = 0;
    for (size_t i = 0; i < d->n_turn; i++) {
        n_ents += d->turn[i]->n_entries;
    }
    if (d->n_turn > d->cap_reqs) {
        d->cap_reqs = d->n_turn * 2;
        d->turn_reqs = hy_xrealloc(d->turn_reqs, d->cap_reqs * sizeof(*d->turn_reqs));
        d->turn_ptrs = hy_xrealloc(d->turn_ptrs, d->cap_reqs * sizeof(*d->turn_ptrs));
    }
    if (n_ents > d->cap_ents) {
        d->cap_ents = n_ents * 2;
        d->turn_ents = hy_xrealloc(d->turn_ents, d->cap_ents * sizeof(*d->turn_ents));
    }
    struct wal_entry *e = d->turn_ents;
    for (size_t i = 0; i < d->n_turn; i++) {
        const struct node_io_batch *b = d->turn[i];
        for (uint32_t k = 0; k < b->n_entries; k++) {
            e[k] = (struct wal_entry){b->entries[k].term, b->entries[k].type, b->entries[k].len,
                                      b->entries[k].data};
        }
        d->turn_reqs[i] = (struct wal_node_req){.group = b->group,
                                                .first_index = b->entries_first_index,
                                                .entries = e,
                                                .n_entries = b->n_entries};
        d->turn_ptrs[i] = &d->turn_reqs[i];
        e += b->n_entries;
    }
    return n_ents;
}

/*
 * Whether the loop may write and fdatasync the turn's entries itself in `durability: fsync`
 * (wal_thread_sync_now). On a follower a write's path crosses the node twice: its loop hands
 * the AppendEntries' entries to the WAL thread (a futex wake-up) and the thread hands the
 * fdatasync's end back (an eventfd) before the loop sends the acknowledgement; each wake-up
 * waits for a CPU, tens of microseconds on a busy two-core machine (docs/performance.md "One
 * write's timeline"). Syncing in the loop removes both. It blocks the loop for the fdatasync:
 * a node that leads no group only has the next AppendEntries to read, which the thread would
 * also write only after this fdatasync (and the answers to the heartbeats that come meanwhile
 * wait behind it either way); a leader's next requests and acknowledgements wait unread, which
 * pays only for a large turn or when nobody but its writers waits (durable_leader_syncs). Only
 * while fdatasyncs are short: one over DURABLE_LOOP_SYNC_SLOW_US (10 ms, a tenth of what makes a
 * slow turn; 0.1% to 1% of this test machine's fdatasyncs under load took over 2 ms, none of 24,000
 * over 13 ms) hands the next DURABLE_LOOP_SYNC_PAUSE_MS back to the thread, and the loop takes them
 * back only once the thread's last one was short again, so that a stalled disk holds the node's
 * pings and reads up for one slow fdatasync, not for every one.
 */
static int durable_loop_syncs(struct io_durable *d)
{
    if (d->replicated || d->thread == NULL) {
        return 0;
    }
    uint64_t now = io_clock_ms();
    if (d->loop_sync_paused_ms != 0) {
        if (now < d->loop_sync_paused_ms ||
            wal_thread_last_sync_us(d->thread) >= DURABLE_LOOP_SYNC_SLOW_US) {
            return 0;
        }
        d->loop_sync_paused_ms = 0;
    }
    if (now != d->leads_checked_ms) {
        d->leads = node_leads_any(d->node);
        d->leads_checked_ms = now;
    }
    return 1;
}

/*
 * Whether a node that leads a group fdatasyncs its turn's entries in the loop rather than
 * handing them to the thread, whose path costs two wake-ups per group commit (a futex to the
 * thread, an eventfd back) and, since the loop goes on meanwhile, splits the writers into more,
 * smaller group commits. The loop's wait pays when nothing useful could be done during it
 * (docs/performance.md "A leader's large turns synced in its loop" and "Writers that wait for
 * their replies"):
 *
 *  - a turn of DURABLE_LEADER_SYNC_ENTRIES entries or more (a pipelined load), whatever else;
 *  - any turn since which the node had nothing but writers waiting for their replies
 *    (node_turn_busy_take: no client pipelined writes, no read or other request ran): none of
 *    them can send more before the sync ends, and the loop would only read the next requests
 *    of clients answered earlier, which the thread's path syncs after this fdatasync too
 *    (`-c 50 -P 1`: one node's CPU per SET -20%, its throughput +40%; one client's writes one
 *    at a time: -30% CPU). Not while the node followed a group with entries in the last
 *    DURABLE_FOLLOWED_RECENT_MS: its acknowledgements to other leaders would wait behind the
 *    sync, and with 16 partitions on 3 nodes that cost more than it saved.
 *
 * Otherwise the turn goes to the thread, so that the readers, the pipelining clients and the
 * other leaders of a busy node never wait for its disk. What the leader sends goes before the
 * wait: its AppendEntries (sent early, raft.h step 2's exception) and its clients' replies,
 * flushed by the server's callback.
 */
static int durable_leader_syncs(struct io_durable *d, size_t n_entries, int busy)
{
    if (n_entries < DURABLE_LEADER_SYNC_ENTRIES &&
        (busy || io_clock_ms() < d->followed_ms + DURABLE_FOLLOWED_RECENT_MS)) {
        return 0;
    }
    if (d->before_sync_cb != NULL) {
        d->before_sync_cb(d->before_sync_ctx);
    }
    return 1;
}

/* Writes the turn's batches from the loop (wal_thread_write_now), those it cannot through the
 * thread, in order; returns the sequence number of the last one the loop wrote (0: none). */
static uint64_t durable_turn_write(struct io_durable *d)
{
    if (d->n_turn == 0) {
        return 0;
    }
    size_t n_entries = durable_turn_reqs(d);
    int busy = node_turn_busy_take(d->node); /* taken every turn: it covers this turn only */
    int followed = 0;
    for (size_t i = 0; i < d->n_turn && d->leads && !d->replicated && !followed; i++) {
        const struct node_io_batch *b = d->turn[i];
        for (uint32_t j = 0; j < b->n_messages && !followed; j++) {
            followed = b->messages[j].type == RAFT_MSG_APPEND_RESP;
        }
    }
    if (followed) {
        d->followed_ms = io_clock_ms();
    }
    uint64_t first = 0;
    size_t k = 0;
    if (d->replicated) {
        k = wal_thread_write_now(d->thread, d->turn_ptrs, d->n_turn, &first);
    } else if (!d->leads || durable_leader_syncs(d, n_entries, busy)) {
        k = wal_thread_sync_now(d->thread, d->turn_ptrs, d->n_turn, &first);
        if (k > 0 && wal_thread_last_sync_us(d->thread) >= DURABLE_LOOP_SYNC_SLOW_US) {
            d->loop_sync_paused_ms = io_clock_ms() + DURABLE_LOOP_SYNC_PAUSE_MS;
            d->loop_sync_pauses++;
        }
    }
    for (size_t i = 0; i < d->n_turn; i++) {
        uint64_t seq = i < k ? first + i : wal_thread_submit(d->thread, d->turn_ptrs[i]);
        wal_node_queues_set_seq(d->queues, d->turn[i], seq);
    }
    d->n_turn = 0;
    d->loop_commits += k > 0;
    return k > 0 ? first + k - 1 : 0;
}

/* A batch the loop may write at the turn's end: entries, and nothing that is synced first
 * (term/vote, snapshot; a configuration entry is found by wal_node_unsynced_prefix). */
static int durable_turn_takes(struct io_durable *d, const struct node_io_batch *b)
{
    return !b->term_vote_changed && b->snapshot == NODE_SNAP_NONE && b->n_entries > 0 &&
           (d->replicated || durable_loop_syncs(d));
}

static void durable_turn_add(struct io_durable *d, struct node_io_batch *b)
{
    if (d->n_turn == d->cap_turn) {
        d->cap_turn = d->cap_turn ? d->cap_turn * 2 : 16;
        d->turn = hy_xrealloc(d->turn, d->cap_turn * sizeof(*d->turn));
    }
    d->turn[d->n_turn++] = b;
    int at_once = wal_node_queues_add(d->queues, b, WAL_NODE_SEQ_HELD);
    HY_ASSERT(!at_once);
}

static struct durable_hold *hold_find(struct io_durable *d, uint32_t group)
{
    for (size_t i = 0; i < d->n_holds; i++) {
        if (d->holds[i].group == group) {
            return &d->holds[i];
        }
    }
    return NULL; /* a handful at most: one per snapshot being written */
}

/* Hands the snapshot of b (the first batch of its hold) to the writer. */
static void hold_write_file(struct io_durable *d, const struct node_io_batch *b)
{
    struct wal_node_req req;
    struct wal_snapshot snap;
    uint8_t membership[WAL_NODE_MEMBERSHIP_MAX];
    struct wal_entry *ents;
    wal_node_req_of(b, &req, &snap, membership, &ents);
    hy_free(ents);
    snap_writer_submit(d->writer, b->group, &snap);
}

/*
 * A snapshot this node took goes to the writer first, and its batch with every later batch of
 * its group that persists something waits here, queued with WAL_NODE_SEQ_HELD, until the file
 * is durable (hold_released); batches with nothing to persist queue behind them as usual.
 * Other groups' batches go on to the WAL thread meanwhile.
 *
 * Why the order is safe, step by step, on a crash: the file is written under a temporary name
 * (start-up removes it) and renamed only once fsync'd, so before the rename the group has its
 * old snapshot and log; after it, recovery finds two snapshot files and keeps the newest, whose
 * data is applied state, hence committed, so it may replace whatever of the group's log is not
 * durable yet (earlier batches of the group may still be on the WAL thread: a log ending before
 * the snapshot or disagreeing with it there is dropped by recovery, rule 6). The WAL thread cuts
 * the log (segments the snapshot makes unneeded, or the whole log when the snapshot passes its
 * end) only in wal_snapshot_install, after the file is durable. The group's term/vote needs no
 * care: a group that took a snapshot has applied entries, so its log holds a term/vote record
 * already; the term/vote of the snapshot's own batch is written with it on the WAL thread and
 * is never older than the snapshot's term. A snapshot received from a leader (NODE_SNAP_INSTALL)
 * stays on the WAL thread for now: it voids the group's log, and wal_node_write makes the
 * term/vote of its batch (the leader's term, often new to this node) durable before its file,
 * which a crash between the two would otherwise see in the other order.
 */
static int hold_take(struct io_durable *d, struct node_io_batch *b)
{
    struct durable_hold *h = hold_find(d, b->group);
    if (h == NULL && (b->snapshot != NODE_SNAP_TAKEN || d->writer == NULL)) {
        return 0;
    }
    if (!wal_node_batch_persists(b)) {
        return 0; /* queued behind the held batches by the usual path */
    }
    if (h == NULL) {
        d->holds = hy_xrealloc(d->holds, (d->n_holds + 1) * sizeof(*d->holds));
        h = &d->holds[d->n_holds++];
        *h = (struct durable_hold){.group = b->group};
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->v = hy_xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    h->v[h->n++] = b;
    int at_once = wal_node_queues_add(d->queues, b, WAL_NODE_SEQ_HELD);
    HY_ASSERT(!at_once); /* a held batch waits for its request */
    if (h->n == 1) {
        hold_write_file(d, b);
    }
    return 1;
}

/* The writer is done with the file of the group's first held batch: it and the group's
 * batches after it go to the WAL thread, up to the next snapshot this node took, whose file
 * is written next. */
static void hold_released(void *ctx, uint32_t group, uint64_t index, int status)
{
    struct io_durable *d = ctx;
    if (status != HY_OK && status != HY_ENOSPC) {
        hy_log(d->log, HY_LOG_ERROR,
               "FATAL: write or fsync of group %u's snapshot file %llu failed; stopping so "
               "that nothing unsafe is acknowledged",
               (unsigned)group, (unsigned long long)index);
        abort();
    }
    struct durable_hold *h = hold_find(d, group);
    HY_ASSERT(h != NULL && h->n > 0 && h->v[0]->snap_index == index);
    /* On a full disk the WAL thread writes the file itself, retrying until there is room. */
    uint64_t seq = submit_batch(d, h->v[0], status == HY_OK);
    wal_node_queues_set_seq(d->queues, h->v[0], seq);
    size_t i = 1;
    for (; i < h->n && h->v[i]->snapshot != NODE_SNAP_TAKEN; i++) {
        seq = submit_batch(d, h->v[i], 0);
        wal_node_queues_set_seq(d->queues, h->v[i], seq);
    }
    memmove(h->v, h->v + i, (h->n - i) * sizeof(*h->v));
    h->n -= i;
    if (h->n > 0) {
        hold_write_file(d, h->v[0]);
        return;
    }
    hy_free(h->v);
    *h = d->holds[--d->n_holds];
}

/* Hands the engine's batches on: to the turn's list, to a hold, to the thread, or completed
 * at once when they persist nothing and nothing of their group is ahead of them. */
static void durable_take(struct io_durable *d)
{
    struct node_io_batch *b;
    while ((b = node_io_take(d->node)) != NULL) {
        if (hold_take(d, b)) {
            continue;
        }
        if (durable_turn_takes(d, b)) {
            durable_turn_add(d, b);
            continue;
        }
        uint64_t seq = 0;
        if (wal_node_batch_persists(b)) {
            (void)durable_turn_write(d); /* the turn's batches go first, in order */
            seq = submit_batch(d, b, 0);
        }
        if (wal_node_queues_add(d->queues, b, seq)) {
            d->send_cb(d->ctx, b);
            node_io_done(d->node, b, io_clock_ms());
        }
    }
}

void io_durable_set_before_sync(struct io_durable *d, io_durable_before_sync_cb cb, void *ctx)
{
    d->before_sync_cb = cb;
    d->before_sync_ctx = ctx;
}

int io_durable_pump(struct io_durable *d, int turn_end)
{
    /* At the turn's end the batches the loop wrote itself complete here, with every batch
     * queued before them, as a report of the thread would complete them; completing them may
     * give the engine new batches (a follower's next acknowledgement), taken in the next
     * round. Bounded: what is left waits for the next pump. */
    int completed = 0;
    if (d->pumping) {
        return 0; /* the outer pump, or the caller's next one, takes what the engine has */
    }
    d->pumping = 1;
    for (int round = 0; round < DURABLE_PUMP_ROUNDS; round++) {
        durable_take(d);
        uint64_t written = turn_end ? durable_turn_write(d) : 0;
        if (written == 0) {
            break;
        }
        wal_node_complete(d->queues, d->node, HY_OK, written, NULL, 0, &d->disk_full, durable_send,
                          d, io_clock_ms(), d->log);
        completed = 1;
    }
    d->pumping = 0;
    return completed;
}

static void durable_done_cb(void *ctx, const struct wal_thread_done *done)
{
    struct io_durable *d = ctx;
    if (done->status == HY_EIO) {
        /* Never retry an fsync: after a failure the kernel may have dropped the dirty pages,
         * and a retry could report as durable what is lost (wal.h). */
        hy_log(d->log, HY_LOG_ERROR,
               "FATAL: write or fsync of the node's Raft log failed; stopping "
               "so that nothing unsafe is acknowledged");
        abort();
    }
    wal_node_complete(d->queues, d->node, done->status, done->durable_seq, done->snapshot_wanted,
                      done->n_snapshot_wanted, &d->disk_full, durable_send, d, io_clock_ms(),
                      d->log);
    d->progress_cb(d->ctx);
}

/* A data dir written before the shared log (DATA_DIR/group-N) is refused: nothing of it is
 * read or changed (docs/disk-format.md "Layout versions"). */
static int durable_old_layout(struct io_durable *d)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/group-0", d->cfg->data_dir);
    DIR *dir = opendir(path);
    if (dir == NULL) {
        return 0;
    }
    closedir(dir);
    hy_log(d->log, HY_LOG_ERROR,
           "%s holds the per-group log layout of halyard before the shared log (%s/group-N "
           "directories): this version only reads %s/wal. Start an older halyard to drain "
           "this node, or empty the data dir and let the node rejoin and catch up from the "
           "other replicas",
           d->cfg->data_dir, d->cfg->data_dir, d->cfg->data_dir);
    return 1;
}

int io_durable_open(uv_loop_t *loop, struct hy_node *node, const struct hy_config *cfg,
                    const struct hy_log *log, io_durable_progress_cb progress_cb,
                    io_durable_send_cb send_cb, void *ctx, struct io_durable **out)
{
    struct io_durable *d = hy_xcalloc(1, sizeof(*d));
    *d = (struct io_durable){.node = node,
                             .cfg = cfg,
                             .log = log,
                             .progress_cb = progress_cb,
                             .send_cb = send_cb,
                             .ctx = ctx};
    wal_config_default(&d->wal_cfg);
    d->wal_cfg.log = d->log;
    d->wal_cfg.must_exist = d->cfg->formed;
    d->wal_cfg.segment_size_bytes = (uint64_t)d->cfg->wal_segment_size;
    d->queues = wal_node_queues_new(node);
    char path[4200], err[512] = "";
    snprintf(path, sizeof(path), "%s/wal", d->cfg->data_dir);
    int rc = durable_old_layout(d) ? HY_ECORRUPT : HY_OK;
    if (rc == HY_OK) {
        rc = disk_posix_open(path, &d->disk);
        if (rc != HY_OK) {
            hy_log(d->log, HY_LOG_ERROR, "cannot open %s: %s", path, hy_strerror(rc));
        }
    }
    if (rc == HY_OK) {
        rc = wal_node_open(d->disk, &d->wal_cfg, d->node, io_clock_ms(), d->log, NULL, NULL,
                           &d->wal, err, sizeof(err));
        if (rc != HY_OK) {
            hy_log(d->log, HY_LOG_ERROR, "cannot open the Raft log in %s: %s", path, err);
        }
    }
    /* The thread only once every group recovered: a damaged group stops the node before it
     * runs. */
    if (rc == HY_OK) {
        rc = wal_thread_start(loop, d->wal, d, durable_done_cb, &d->thread);
    }
    if (rc == HY_OK) {
        io_durable_configure(d, cfg);
        rc = snap_writer_start(loop, path, d->log, d, hold_released, &d->writer);
    }
    if (rc != HY_OK) {
        io_durable_stop(d);
        uv_run(loop, UV_RUN_NOWAIT); /* the stopped thread's handles close */
        io_durable_close(d);
        return rc;
    }
    *out = d;
    return HY_OK;
}

void io_durable_stop(struct io_durable *d)
{
    if (d->thread != NULL) {
        (void)durable_turn_write(d); /* the thread writes what the turn held, then stops */
        wal_thread_stop(d->thread);
        d->thread = NULL;
    }
    /* After the WAL thread: held batches were never submitted, and are never acknowledged. */
    if (d->writer != NULL) {
        snap_writer_stop(d->writer);
        d->writer = NULL;
    }
}

void io_durable_close(struct io_durable *d)
{
    HY_ASSERT(d->thread == NULL);
    if (d->wal != NULL) {
        wal_close(d->wal);
    }
    if (d->disk != NULL) {
        disk_destroy(d->disk);
    }
    wal_node_queues_free(d->queues); /* any batch still queued belongs to the node */
    for (size_t i = 0; i < d->n_holds; i++) {
        hy_free(d->holds[i].v); /* the batches themselves belong to the node */
    }
    hy_free(d->holds);
    hy_free(d->turn);
    hy_free(d->turn_reqs);
    hy_free(d->turn_ptrs);
    hy_free(d->turn_ents);
    hy_free(d);
}

/* Cuts the log in dir. Returns the exit code. */
static int repair_log(const char *dir)
{
    struct disk *disk;
    if (disk_posix_open(dir, &disk) != HY_OK) {
        fprintf(stderr, "halyard --repair: cannot open %s\n", dir);
        return 1;
    }
    struct wal_config cfg;
    wal_config_default(&cfg);
    char report[4096] = "";
    int rc = wal_repair(disk, &cfg, report, sizeof(report));
    disk_destroy(disk);
    printf("%s:\n%s\n", dir, report);
    return rc == HY_OK ? 0 : 1;
}

/* A name the shared log writes (docs/disk-format.md "Files"). */
static int repair_is_log_file(const char *name)
{
    return strncmp(name, "open-", 5) == 0 || strncmp(name, "segment-", 8) == 0 ||
           strncmp(name, "snapshot-", 9) == 0;
}

int io_durable_repair(const char *dir)
{
    /* Operators name the data dir they configured; the log lives in DATA_DIR/wal. The log
     * directory itself is accepted too. */
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "halyard --repair: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int has_wal = 0, has_log = 0, old_layout = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        has_wal |= strcmp(e->d_name, "wal") == 0;
        old_layout |= strncmp(e->d_name, "group-", 6) == 0;
        has_log |= repair_is_log_file(e->d_name);
    }
    closedir(d);
    if (has_wal) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/wal", dir);
        return repair_log(path);
    }
    if (has_log) {
        return repair_log(dir);
    }
    fprintf(stderr,
            "halyard --repair: no Raft log in %s: give the node's data-dir (its log is in "
            "DATA_DIR/wal) or the log directory itself%s\n",
            dir,
            old_layout ? "; its group-N directories are the per-group layout of an older "
                         "halyard, which this version does not read"
                       : "");
    return 1;
}

void io_durable_sync_times(struct io_durable *d, struct hy_histo *out)
{
    /* The node's one log: every group's writes. */
    if (d->thread == NULL) {
        hy_histo_init_us(out);
        return;
    }
    wal_thread_sync_times(d->thread, out);
}

void io_durable_configure(struct io_durable *d, const struct hy_config *cfg)
{
    if (d->thread == NULL) {
        return;
    }
    enum wal_node_durability mode =
        cfg->durability == CONFIG_DURABILITY_REPLICATED ? WAL_NODE_REPLICATED : WAL_NODE_FSYNC;
    d->replicated = mode == WAL_NODE_REPLICATED;
    wal_thread_set_durability(d->thread, mode, (uint32_t)cfg->fsync_interval_ms);
}

uint64_t io_durable_loop_commits(const struct io_durable *d)
{
    return d->loop_commits;
}

uint64_t io_durable_loop_sync_pauses(const struct io_durable *d)
{
    return d->loop_sync_pauses;
}

int64_t io_durable_last_sync_age_ms(struct io_durable *d)
{
    if (d->thread == NULL) {
        return -1;
    }
    return (int64_t)((uv_hrtime() - wal_thread_last_sync_ns(d->thread)) / (1000 * 1000));
}

void io_durable_snapshot_file_times(struct io_durable *d, struct hy_histo *out)
{
    if (d->writer == NULL) {
        hy_histo_init_us(out);
        return;
    }
    snap_writer_times(d->writer, out);
}
