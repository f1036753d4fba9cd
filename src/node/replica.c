/*
 * replica.c - the node's Raft group, seen from the engine.
 *
 * Writes proposed during one loop turn are submitted to Raft together (one AppendEntries
 * per peer, one fsync: group commit). Each Raft update becomes a node_io_batch that the
 * shell persists and sends in order (raft.h's caller contract); committed entries are
 * applied to the store in log order, and the reply that store_apply() writes goes to the
 * client that proposed the entry, if it still waits. A node that has not recovered anything
 * bootstraps a one-member group of itself: a single node is a Raft cluster of one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "node/node_internal.h"

struct node_group *replica_group_new(struct hy_node *n, uint32_t id, struct store *store)
{
    struct node_group *g = hy_xcalloc(1, sizeof(*g));
    g->node = n;
    g->id = id;
    g->store = store;
    store_set_exec_reader(store, node_exec_read_cb, g);      /* EXEC's reads (cmd_multi.c) */
    store_set_notify(store, node_notify_keyspace_cb, n);     /* keyspace notifications (pubsub.c) */
    store_set_script_runner(store, node_script_apply_cb, g); /* EVAL (cmd_script.c) */
    node_wan_group_init(g); /* the data changes links ship (wan_ship.c) */
    n->groups = hy_xrealloc(n->groups, (n->group_count + 1) * sizeof(*n->groups));
    n->groups[n->group_count++] = g;
    struct raft_config rc;
    raft_config_default(&rc, node_member_id(n->cfg->node_id));
    rc.seed = hy_prng_next(&n->prng);
    rc.election_timeout_max_ms = (uint32_t)n->cfg->election_timeout_ms;
    rc.election_timeout_min_ms = (uint32_t)HY_MAX(n->cfg->election_timeout_ms / 2, 1);
    rc.heartbeat_ms = (uint32_t)n->cfg->heartbeat_ms;
    /* Entries kept behind a snapshot let a briefly lagging follower catch up without a
     * snapshot transfer; they cost memory as large as the writes, so keep few. */
    rc.snapshot_trailing = 16;
    /* A snapshot goes to a follower in chunks of this size, each acknowledged before the
     * next: smaller chunks make a move's catch-up slower (tests cancel moves under way). */
    rc.snapshot_chunk_bytes = (uint32_t)n->cfg->snapshot_chunk_bytes;
    /* Applied entries are freed from memory as they apply (raft_release_applied): the log in
     * memory is then what followers still lack, not every write since the last snapshot
     * (issue 13: memory per key). The last 1,024 (at most 1 MiB of them; released in steps of
     * 256) stay, so that a new leader catches up followers that lagged a little under load
     * from its log: a follower needing a freed entry is sent a fresh snapshot, O(keys) to
     * encode. */
    rc.applied_keep = 1024;
    rc.applied_keep_bytes = 1 << 20;
    /* Leader leases (§6.4.1): reads without a heartbeat round while a majority acknowledged
     * one within lease-ms; the core refuses them unless lease * (1 + drift) stays under the
     * minimum election timeout. */
    rc.lease_ms = (uint32_t)n->cfg->lease_ms;
    /* An idle group stops its timers and heartbeats after this many idle heartbeat intervals
     * (raft.c "Quiescing"); the node-level link (node_peer_liveness) watches its peers. */
    rc.quiesce_ticks = (uint32_t)n->cfg->quiesce_ticks;
    rc.log = node_raft_log(n); /* names members instead of their Raft ids */
    /* Snapshots sent to followers (a move's new replica, a follower too far behind) share the
     * node's rebalance-bandwidth, so that moves leave the clients' traffic its room. */
    n->snap_pacer.rate = (uint64_t)n->cfg->rebalance_bandwidth;
    rc.snapshot_pacer = &n->snap_pacer;
    rc.snapshot_on_disk = n->snapshots_on_disk;
    rc.snapshot_recv_external = n->snapshots_on_disk && n->snapshot_chunk != NULL;
    rc.group = id;
    raft_init(&g->raft, &rc);
    if (rc.lease_ms > 0 && !raft_lease_enabled(&g->raft)) {
        hy_log(n->log, HY_LOG_WARN,
               "lease-ms %u is not below election-timeout-ms/2 = %u less the %u ppm clock "
               "drift bound: leases are off, reads use ReadIndex",
               rc.lease_ms, rc.election_timeout_min_ms, rc.clock_drift_ppm);
    }
    hy_buf_init(&g->turn_data);
    return g;
}

uint32_t node_partition_of_slot(const struct hy_node *n, uint16_t slot)
{
    uint32_t parts = n->group_count > 1 ? (uint32_t)(n->group_count - 1) : 1;
    return (uint32_t)(((uint64_t)slot * parts) / HY_SLOT_COUNT);
}

size_t node_data_groups(const struct hy_node *n, struct node_group *const **out)
{
    size_t skip = n->group_count > 1 ? 1 : 0;
    *out = n->groups + skip;
    return n->group_count - skip;
}

struct node_group *node_group_of_slot(const struct hy_node *n, uint16_t slot)
{
    if (n->group_count == 1) {
        return n->meta;
    }
    /* Contiguous ranges, as Redis Cluster's shards: partition p holds the slots s with
     * s * P / 16384 == p. Groups are created in id order, so group p + 1 sits at p + 1. */
    struct node_group *g = n->groups[1 + node_partition_of_slot(n, slot)];
    HY_ASSERT(g->id == 1 + node_partition_of_slot(n, slot));
    return g;
}

static void batch_free(struct node_io_batch *b)
{
    hy_free(b->entries); /* one block with their data (entries_copy) */
    for (uint32_t i = 0; i < b->n_messages; i++) {
        struct raft_message *m = &b->messages[i];
        hy_free((void *)m->entries);
        hy_free((void *)m->data);
    }
    hy_free(b->messages);
    hy_free(b->snap_data);
    hy_free(b);
}

static void waiter_free(struct node_waiter *w)
{
    hy_buf_free(&w->tail);
    hy_free(w);
}

/* A waiter done with goes to the group's pool while it has room (replica_waiter_new). */
static void waiter_recycle(struct node_group *g, struct node_waiter *w)
{
    struct hy_node *n = g->node;
    if ((size_t)n->waiter_pool_count + 1 > NODE_WAITER_POOL_MAX) {
        waiter_free(w);
        return;
    }
    if (n->waiter_pool == NULL) {
        n->waiter_pool = hy_xmalloc(NODE_WAITER_POOL_MAX * sizeof(*n->waiter_pool));
    }
    hy_buf_free(&w->tail);
    n->waiter_pool[n->waiter_pool_count++] = w;
}

static void group_free(struct node_group *g)
{
    while (g->waiters_head != NULL) {
        struct node_waiter *w = g->waiters_head;
        g->waiters_head = w->next;
        waiter_free(w);
    }
    hy_free(g->turn);
    hy_free(g->turn_reads);
    hy_free(g->pending_reads);
    hy_free(g->fsession_live);
    hy_buf_free(&g->turn_data);
    node_wan_group_free(g);
    raft_free(&g->raft);
    store_destroy(g->store);
    hy_free(g);
}

void replica_free(struct hy_node *n)
{
    while (n->io_head != NULL) {
        struct node_io_batch *b = n->io_head;
        n->io_head = b->next;
        batch_free(b);
    }
    for (size_t i = 0; i < n->group_count; i++) {
        group_free(n->groups[i]);
    }
    hy_free(n->groups);
    n->groups = NULL;
    while (n->waiter_pool_count > 0) {
        waiter_free(n->waiter_pool[--n->waiter_pool_count]);
    }
    hy_free(n->waiter_pool);
    n->waiter_pool = NULL;
    hy_free(n->flush_list);
    n->flush_list = NULL;
    hy_free(n->replied);
    n->replied = NULL;
    n->replied_count = n->replied_cap = 0;
    n->flush_count = n->flush_cap = 0;
    n->group_count = 0;
    n->meta = NULL;
}

/* ---- clients and waiters --------------------------------------------------------------------- */

void replica_mark_ready(struct hy_node *n, struct node_client *c)
{
    if (!c->on_ready) {
        c->on_ready = 1;
        c->ready_next = n->ready;
        n->ready = c;
    }
}

struct node_client *node_take_ready(struct hy_node *n)
{
    for (;;) {
        struct node_client *c = n->ready;
        if (c == NULL) {
            return NULL;
        }
        n->ready = c->ready_next;
        c->on_ready = 0;
        c->ready_next = NULL;
        if (scatter_maybe_finish(n, c)) {
            continue; /* an internal part of a FLUSHALL: collected, never the shell's */
        }
        if (c->wan_conn != 0) {
            wan_peer_maybe_finish(n, c); /* a WAN link's request: answers its connection */
            continue;
        }
        if (!c->is_proxy) {
            return c;
        }
        proxy_maybe_finish(n, c); /* forwarded requests answer the follower, not a socket */
    }
}

struct node_waiter *replica_waiter_new(struct node_group *g, struct node_client *c, uint64_t now)
{
    struct hy_node *n = g->node;
    struct node_waiter *w;
    if (n->waiter_pool_count > 0) {
        w = n->waiter_pool[--n->waiter_pool_count];
        memset(w, 0, sizeof(*w));
    } else {
        w = hy_xcalloc(1, sizeof(*w));
    }
    w->client = c;
    /* A request run again here after its forward was lost keeps the deadline of its first
     * attempt (proxy.c's retry_since_ms), as it would forwarded again: else a follower that
     * becomes leader could answer it twice request-timeout-ms after it came (seed 5001256). */
    w->proposed_ms = c->retry_since_ms != 0 && c->retry_since_ms < now ? c->retry_since_ms : now;
    w->started_ms = now;
    w->unsure = c->outcome_unsure;
    w->cmd_index = -1;
    w->stat_slot = -1;
    w->proto = c->proto;
    hy_buf_init(&w->tail);
    if (g->waiters_tail != NULL) {
        g->waiters_tail->next = w;
    } else {
        g->waiters_head = w;
    }
    g->waiters_tail = w;
    c->waiting++;
    c->last_waiter = w;
    return w;
}

static struct node_client *take_pending_read(struct node_group *g, uint64_t id);

/* Client c's read round, if it is in one, is dropped: its entry leaves the pending table of
 * its group (the only one that names c: a round answered, refused or given up takes its entry
 * out), so that a client freed later leaves no pointer behind and nobody has to walk every
 * group's table to find one. */
void replica_read_forget(struct hy_node *n, struct node_client *c)
{
    if (c->read_id == 0) {
        return;
    }
    struct node_group *g = node_group_get(n, c->read_group);
    if (g != NULL) {
        (void)take_pending_read(g, c->read_id);
    }
    HY_ASSERT(n->read_rounds > 0);
    n->read_rounds--;
    c->read_id = 0;
}

void replica_client_gone(struct hy_node *n, struct node_client *c)
{
    node_block_client_gone(n, c);
    replica_read_forget(n, c);
    /* Only a client with writes unanswered is named by waiters (waiter_answer clears the
     * name and counts `waiting` down): a walk over every group's waiters for each client
     * freed made a scattered read of thousands of partitions quadratic (DBSIZE over 4,096
     * partitions spent seconds here and in wake_clients, past request-timeout-ms). */
    for (size_t k = 0; k < n->group_count && c->waiting > 0; k++) {
        for (struct node_waiter *w = n->groups[k]->waiters_head; w != NULL; w = w->next) {
            if (w->client == c) {
                w->client = NULL;
            }
        }
    }
    struct node_client **pp = &n->ready;
    while (*pp != NULL && *pp != c) {
        pp = &(*pp)->ready_next;
    }
    if (*pp == c) {
        *pp = c->ready_next;
    }
}

/* The waiter's client is answered (reply already written, or `error`), then its queued
 * immediate replies follow. The waiter stays in the FIFO until its index applies. */
static void waiter_answer(struct node_group *g, struct node_waiter *w, const char *error)
{
    struct hy_node *n = g->node;
    observe_note_outcome(n, w, error);
    struct node_client *c = w->client;
    if (c == NULL) {
        return;
    }
    struct hy_buf *out = node_client_out(c);
    if (error != NULL) {
        struct resp_writer wr = {out, w->proto};
        size_t mark = out->len;
        resp_write_error(&wr, error);
        node_note_reply(n, out->data + mark, out->len - mark);
        node_cmdstat_failed(n, w->stat_slot);
        if (w->blocking) {
            node_block_done(n, c); /* its fate is told: the blocked request is over */
        }
    }
    hy_buf_append(out, w->tail.data, w->tail.len);
    hy_buf_reset(&w->tail);
    w->client = NULL;
    HY_ASSERT(c->waiting > 0);
    c->waiting--;
    if (c->last_waiter == w) {
        c->last_waiter = NULL;
    }
    replica_mark_ready(n, c);
}

static void waiter_pop(struct node_group *g)
{
    struct node_waiter *w = g->waiters_head;
    g->waiters_head = w->next;
    if (g->waiters_head == NULL) {
        g->waiters_tail = NULL;
    }
    waiter_recycle(g, w);
}

/* Submitted writes whose outcome this node can no longer learn (it lost leadership, or the
 * deadline passed): they may or may not commit, and the client is told exactly that. */
static void fail_submitted(struct node_group *g, uint64_t older_than_ms, const char *error)
{
    for (struct node_waiter *w = g->waiters_head; w != NULL; w = w->next) {
        if (w->index != 0 && w->proposed_ms <= older_than_ms) {
            waiter_answer(g, w, error);
        }
    }
}

/* ---- the caller side of raft.h ------------------------------------------------------------- */

static void handle_update(struct node_group *g, const struct raft_update *up, uint64_t now_ms);
static void unblock(struct hy_node *n, struct node_client *c);
static void turn_reads_flush(struct node_group *g, uint64_t now_ms);

/* ---- parked copies ---------------------------------------------------------------------------
 *
 * A copy of a partition that the committed map no longer places here, whose group a replica of
 * the map reports settled on the map's replicas with that configuration committed (HY.LEADERS),
 * serves nothing and takes no part in the group unless a leader adds this node back (then as a
 * learner, caught up from where this copy is). Its keyspace would stay in memory for ever: every
 * move leaves one on its source. So once its latest snapshot covers all it applied (it asks for
 * one) and is durable, the keyspace leaves memory and the copy is "parked": Raft's state (a few
 * entries behind the snapshot, the configuration) and the snapshot file stay, and Raft runs on
 * as before (a vote asked of it needs no keyspace). The first time it has entries to apply (a
 * leader added this node back), the keyspace is read back from that snapshot first (the
 * shell's loader), so the copy goes on exactly where it stopped; a snapshot installed from a
 * leader replaces it anyway. A parked copy that cannot be read back (the file damaged) applies
 * nothing: said once in the log; the partition's other replicas carry on without it.
 *
 * The snapshot file and the log stay for parked-keep-ms (runtime, default 10 minutes): a move
 * back within that time (a newcomer removed, a rebalance undone) catches up from where the copy
 * stopped. After it they are no longer needed, and they go (replica_forget): the group's log
 * and snapshot are dropped on disk (NODE_SNAP_FORGET, after everything the group wrote before)
 * and its Raft core starts again empty with its term and vote, as a replica of a node that
 * joined; a move back then catches up as any new replica does, from the leader's log or its
 * snapshot. Safe because nothing counts this copy: the map places the partition elsewhere and
 * its group's committed configuration, which a replica of the map reported, holds no replica
 * here; a Raft member out of the configuration may lose its log, never its term and vote,
 * which stay. */

static void start_snapshot(struct node_group *g, uint64_t now_ms);

static void step(struct node_group *g, struct raft_event *ev, uint64_t now_ms);
static void batch_push(struct hy_node *n, struct node_io_batch *b);

/* The group's log since its snapshot starts again from nothing (a snapshot taken, installed
 * or forgotten): the node's sum follows. */
static void log_bytes_reset(struct node_group *g)
{
    HY_ASSERT(g->node->log_bytes_since_snapshots >= g->log_bytes_since_snapshot);
    g->node->log_bytes_since_snapshots -= g->log_bytes_since_snapshot;
    g->log_bytes_since_snapshot = 0;
}

/* Drops a parked copy's files and restarts its Raft core empty ("Parked copies" above). */
static void replica_forget(struct node_group *g, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    uint64_t index = raft_snapshot_index(&g->raft);
    uint64_t term = g->raft.term;
    raft_id vote = g->raft.vote;
    struct node_io_batch *b = hy_xcalloc(1, sizeof(*b));
    b->group = g->id;
    b->snapshot = NODE_SNAP_FORGET;
    batch_push(n, b); /* before anything the new core writes */
    struct raft_config rc = g->raft.cfg;
    raft_free(&g->raft);
    raft_init(&g->raft, &rc);
    struct raft_event ev = {.type = RAFT_EV_START};
    ev.start.term = term;
    ev.start.vote = vote; /* no bootstrap: a leader that adds this node back tells it */
    g->applied = 0;
    g->parked = 0;
    g->unpark_failed = 0;
    g->parked_digest = 0;
    log_bytes_reset(g);
    g->snapshot_dataset_bytes = 0;
    step(g, &ev, now_ms);
    hy_log(n->log, HY_LOG_INFO,
           "partition %u: the parked copy's snapshot at %llu and its log leave the disk "
           "(parked-keep-ms %lld passed); a move back catches up from the leader",
           g->id - 1, (unsigned long long)index, (long long)n->cfg->parked_keep_ms);
}

/* One step towards parking g (node_tick, for a copy moved away for good), and once parked
 * for parked-keep-ms, towards dropping its files. */
static void replica_park_step(struct node_group *g, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (g->parked && g->io_done == g->io_pushed && g->waiters_head == NULL &&
        g->pending_count == 0 && g->turn_count == 0 && g->snap_pending == 0 && !g->snap_finishing &&
        !replica_is_leader(g) && now_ms >= g->parked_ms + (uint64_t)n->cfg->parked_keep_ms) {
        replica_forget(g, now_ms);
        return;
    }
    if (g->parked || n->snapshot_load == NULL || g->applied == 0 || g->snap_pending != 0 ||
        g->snap_finishing || g->waiters_head != NULL || g->pending_count != 0 ||
        g->turn_count != 0 || replica_is_leader(g) || raft_commit_index(&g->raft) != g->applied) {
        return;
    }
    if (raft_snapshot_index(&g->raft) < g->applied) {
        start_snapshot(g, now_ms); /* parked on the next tick once it is durable */
        return;
    }
    if (g->io_done != g->io_pushed) {
        return; /* the snapshot (or other writes) not durable yet */
    }
    size_t bytes = store_used_bytes(g->store);
    g->parked_digest = store_digest(g->store);
    store_clear(g->store);
    g->parked = 1;
    g->parked_ms = now_ms;
    hy_log(n->log, HY_LOG_INFO,
           "partition %u: this copy moved away for good (the map places it on other members "
           "and its group settled there): its keyspace (%zu bytes) leaves memory; the snapshot "
           "at %llu stays on disk",
           g->id - 1, bytes, (unsigned long long)g->applied);
}

/* Reads a parked copy's keyspace back; 0 when it cannot be (the group must not step). */
static int replica_unpark(struct node_group *g)
{
    struct hy_node *n = g->node;
    if (g->unpark_failed) {
        return 0;
    }
    struct hy_buf data;
    hy_buf_init(&data);
    uint64_t index = raft_snapshot_index(&g->raft);
    int rc = n->snapshot_load != NULL ? n->snapshot_load(n->snapshot_load_ctx, g->id, index, &data)
                                      : HY_ENOTFOUND; /* the shell is stopping */
    if (rc == HY_OK) {
        rc = store_snapshot_decode(g->store, data.data, data.len);
    }
    hy_buf_free(&data);
    if (rc == HY_OK && store_digest(g->store) != g->parked_digest) {
        store_clear(g->store);
        rc = HY_ECORRUPT; /* not the keyspace it parked with */
    }
    if (rc != HY_OK) {
        g->unpark_failed = 1;
        hy_log(n->log, HY_LOG_ERROR,
               "partition %u: the parked copy's snapshot at %llu cannot be read back (%s): "
               "this node takes no part in the partition until it restarts",
               g->id - 1, (unsigned long long)index, hy_strerror(rc));
        return 0;
    }
    g->parked = 0;
    hy_log(n->log, HY_LOG_INFO, "partition %u: the parked copy is back in memory (snapshot %llu)",
           g->id - 1, (unsigned long long)index);
    return 1;
}

uint32_t node_parked_count(const struct hy_node *n)
{
    uint32_t count = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        count += n->groups[i]->parked != 0;
    }
    return count;
}

void node_set_snapshot_loader(struct hy_node *n, node_snapshot_load_fn load, void *ctx)
{
    n->snapshot_load = load;
    n->snapshot_load_ctx = ctx;
}

static void step(struct node_group *g, struct raft_event *ev, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (n->fatal) {
        return; /* the shell stops the process: no Raft group moves any more */
    }
    if (now_ms > n->raft_now_ms) {
        n->raft_now_ms = now_ms;
    }
    ev->now_ms = n->raft_now_ms;
    n->activity++;
    struct raft_update up;
    (void)raft_step(&g->raft, ev, &up);
    handle_update(g, &up, now_ms);
}

/* Copies count entries and their data into one allocation (freed with one hy_free): a turn
 * of n writes costs one malloc here, not n + 1. */
static struct raft_entry *entries_copy(const struct raft_entry *src, uint32_t count)
{
    if (count == 0) {
        return NULL;
    }
    size_t size = (size_t)count * sizeof(struct raft_entry);
    for (uint32_t i = 0; i < count; i++) {
        size += src[i].len;
    }
    struct raft_entry *dst = hy_xmalloc(size);
    uint8_t *p = (uint8_t *)(dst + count);
    for (uint32_t i = 0; i < count; i++) {
        dst[i] = src[i];
        dst[i].data = NULL;
        if (src[i].len > 0) {
            memcpy(p, src[i].data, src[i].len);
            dst[i].data = p;
            p += src[i].len;
        }
    }
    return dst;
}

/* raft.h step 2's exception (§10.2.1): what a leader sends need not wait for its own disk,
 * unless a term/vote change is still unwritten. Those messages go to the shell's sender at
 * once, without a copy; the others are copied into the batch and wait for its writes. */
static int send_early(const struct node_group *g, const struct raft_update *up,
                      const struct raft_message *m)
{
    struct hy_node *n = g->node;
    return n->early_send != NULL && !up->term_vote_changed && g->tv_unwritten == 0 &&
           raft_msg_may_precede_persist(m);
}

static void batch_copy_messages(struct node_group *g, struct node_io_batch *b,
                                const struct raft_update *up)
{
    struct hy_node *n = g->node;
    uint32_t late = 0;
    for (uint32_t i = 0; i < up->n_messages; i++) {
        if (up->messages[i].type == RAFT_MSG_SNAPSHOT) {
            n->metrics.snapshot_sent_bytes += up->messages[i].len;
        }
        if (send_early(g, up, &up->messages[i])) {
            n->early_send(n->early_ctx, g->id, &up->messages[i]);
        } else {
            late++;
        }
    }
    b->n_messages = late;
    b->messages = late ? hy_xcalloc(late, sizeof(*b->messages)) : NULL;
    for (uint32_t i = 0, k = 0; i < up->n_messages; i++) {
        if (send_early(g, up, &up->messages[i])) {
            continue;
        }
        struct raft_message *m = &b->messages[k++];
        *m = up->messages[i];
        m->entries = entries_copy(up->messages[i].entries, up->messages[i].n_entries);
        /* A chunk of a snapshot on disk has no data yet: the shell reads it when sending. */
        m->data = m->len && m->data != NULL ? hy_xmemdup(up->messages[i].data, m->len) : NULL;
    }
}

void node_set_snapshots_on_disk(struct hy_node *n, int on)
{
    n->snapshots_on_disk = on;
    for (size_t i = 0; i < n->group_count; i++) {
        n->groups[i]->raft.cfg.snapshot_on_disk = on; /* a copy held now goes at its next step */
        n->groups[i]->raft.cfg.snapshot_recv_external = on && n->snapshot_chunk != NULL;
    }
}

void node_set_snapshot_receiver(struct hy_node *n, node_snapshot_chunk_fn chunk,
                                node_snapshot_load_fn load, node_snapshot_reserve_fn reserve,
                                void *ctx)
{
    n->snapshot_chunk = chunk;
    n->snapshot_reserve = reserve;
    n->snapshot_recv_load = load;
    n->snapshot_recv_ctx = ctx;
    /* A transfer under way when this changes goes on in the other mode: what the new mode
     * lacks of its start (the file, or the bytes in memory) fails the chunks' order or the
     * data's checksum, and the leader sends it again from 0. */
    for (size_t i = 0; i < n->group_count; i++) {
        n->groups[i]->raft.cfg.snapshot_recv_external = n->snapshots_on_disk && chunk != NULL;
    }
}

void node_set_early_sender(struct hy_node *n, node_send_fn send, void *ctx)
{
    n->early_send = send;
    n->early_ctx = ctx;
}

static void batch_push(struct hy_node *n, struct node_io_batch *b)
{
    struct node_group *g = node_group_get(n, b->group);
    HY_ASSERT(g != NULL);
    b->group_seq = ++g->io_pushed;
    b->prev = n->io_tail;
    b->next = NULL;
    if (n->io_tail != NULL) {
        n->io_tail->next = b;
    } else {
        n->io_head = b;
    }
    n->io_tail = b;
    if (n->io_next == NULL) {
        n->io_next = b;
    }
}

/* Copies what the update asks the shell to persist and send: the update's pointers die at
 * the next raft_step, the batch lives until the shell is done with it. */
static void batch_from_update(struct node_group *g, const struct raft_update *up)
{
    struct hy_node *n = g->node;
    int persist = up->term_vote_changed || up->snapshot_install || up->entries_first_index;
    if (!persist && up->n_messages == 0) {
        return;
    }
    struct node_io_batch *b = hy_xcalloc(1, sizeof(*b));
    batch_copy_messages(g, b, up); /* before tv_unwritten counts this update's own change */
    if (!persist && b->n_messages == 0) {
        hy_free(b); /* everything went out already */
        return;
    }
    g->tv_unwritten += up->term_vote_changed != 0;
    b->term_vote_changed = up->term_vote_changed;
    b->group = g->id;
    b->term = up->term;
    b->vote = up->vote;
    if (up->snapshot_install && up->snap_data == NULL && up->chunk) {
        /* Its bytes are on disk already, in the receiver's file: the log makes that durable
         * and adopts it, with nothing in memory. */
        b->snapshot = NODE_SNAP_RECEIVED;
        b->snap_index = up->snap_index;
        b->snap_term = up->snap_term;
        b->snap_membership = up->snap_membership;
        b->snap_len = up->snap_len;
    } else if (up->snapshot_install) {
        b->snapshot = NODE_SNAP_INSTALL;
        b->snap_index = up->snap_index;
        b->snap_term = up->snap_term;
        b->snap_membership = up->snap_membership;
        /* With snapshots on disk the core gives the received bytes up (it would free them at
         * its next step): the batch takes them for the log instead of a second copy, as
         * large as the partition. */
        uint8_t *taken = raft_snapshot_data_take(&g->raft);
        b->snap_data = taken != NULL  ? taken
                       : up->snap_len ? hy_xmemdup(up->snap_data, up->snap_len)
                                      : NULL;
        b->snap_len = up->snap_len;
    }
    b->entries_first_index = up->entries_first_index;
    b->n_entries = up->n_entries;
    b->entries = entries_copy(up->entries, up->n_entries);
    batch_push(n, b);
}

struct node_io_batch *node_io_take(struct hy_node *n)
{
    struct node_io_batch *b = n->io_next;
    if (b != NULL) {
        n->io_next = b->next;
    }
    return b;
}

void node_io_done(struct hy_node *n, struct node_io_batch *b, uint64_t now_ms)
{
    /* Within a group, batches complete in the order they were handed out (raft.h); groups
     * are independent of each other (each has its own log), so b need only be the first of
     * its group still outstanding. */
    struct node_group *g = node_group_get(n, b->group);
    HY_ASSERT(g != NULL);
    /* The first of its group still outstanding (O(1): a scan of every group's batches made
     * thousands of partitions quadratic). */
    HY_ASSERT(b->group_seq == g->io_done + 1);
    g->io_done++;
    HY_ASSERT(n->io_next != b); /* it was handed out */
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        HY_ASSERT(n->io_head == b);
        n->io_head = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    } else {
        n->io_tail = b->prev;
    }
    g->tv_unwritten -= b->term_vote_changed != 0;
    if (b->unpin) {
        g->unpin_pending = 0;
    }
    if (b->n_entries > 0) {
        struct raft_event ev = {.type = RAFT_EV_PERSISTED};
        ev.persisted.index = b->entries_first_index + b->n_entries - 1;
        ev.persisted.term = b->entries[b->n_entries - 1].term;
        step(g, &ev, now_ms);
    }
    batch_free(b);
}

/* Unlinks an unsubmitted waiter (its write was never proposed) and frees it. */
static void waiter_remove(struct node_group *g, struct node_waiter *w)
{
    struct node_waiter **pp = &g->waiters_head, *prev = NULL;
    while (*pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = w->next;
    if (g->waiters_tail == w) {
        g->waiters_tail = prev;
    }
    waiter_recycle(g, w);
}

/* ---- applying ---------------------------------------------------------------------------------
 */

/* Answers a waiter whose entry will never apply (refused, or replaced by another leader's
 * entry) with `error`, a "not applied" -TRYAGAIN: true of that entry. But a client's write
 * this node had first forwarded to a leader that failed before answering (unsure) has another
 * copy, which may have been applied, or may yet be (proposed under the same session slot, the
 * two apply once, but either may): its answer is -UNKNOWN. Simulator seed 1715000010
 * --durability replicated: n3 forwarded an EXPIRE k0 -1 to n2, which committed it and lost
 * its leadership before answering; n3, elected, proposed the write again, lost its
 * leadership in turn, and its entry, replaced, answered "not applied" for a deletion that
 * had happened (a DEL then found k0 gone). */
static void waiter_not_applied(struct node_group *g, struct node_waiter *w, const char *error)
{
    waiter_answer(g, w,
                  w->unsure ? "UNKNOWN outcome: the write was forwarded to a leader that failed "
                              "before answering, and this node's own attempt at it did not "
                              "commit; it may or may not be applied"
                            : error);
}

/* The waiter for entry (index, term), popped from the FIFO head; NULL when nobody waits. A
 * waiter whose entry was replaced by another leader's is told its write was not applied. */
static struct node_waiter *waiter_for(struct node_group *g, uint64_t index, uint64_t term)
{
    while (g->waiters_head != NULL && g->waiters_head->index != 0 &&
           g->waiters_head->index < index) {
        waiter_answer(g, g->waiters_head,
                      "UNKNOWN outcome: the write may or may not have been "
                      "applied");
        waiter_pop(g);
    }
    struct node_waiter *w = g->waiters_head;
    if (w == NULL || w->index != index) {
        return NULL;
    }
    if (w->term != term) {
        /* Log Matching: another entry is committed at our index, so ours is gone for good. */
        waiter_not_applied(g, w,
                           "TRYAGAIN the leader changed before this write committed; it was "
                           "not applied");
        waiter_pop(g);
        return NULL;
    }
    g->waiters_head = w->next;
    if (g->waiters_head == NULL) {
        g->waiters_tail = NULL;
    } else {
        /* The next entry's waiter is read when this entry is applied: fetched meanwhile. It
         * was out of cache at that read (half of handle_update's time, 2-3% of a SET's CPU
         * with 16 partitions; docs/partitioning.md "Row (e) in session 20"). */
        __builtin_prefetch(g->waiters_head);
    }
    return w;
}

static void apply_one(struct node_group *g, uint64_t index, const struct raft_entry *e)
{
    struct hy_node *n = g->node;
    struct node_waiter *w = waiter_for(g, index, e->term);
    node_wan_applying(g, index, n->raft_now_ms); /* every entry: a jump means a snapshot */
    if (e->type == RAFT_ENTRY_COMMAND) {
        struct node_client *c = w ? w->client : NULL;
        struct hy_buf scratch; /* a blocking pop's reply: delivered unless null (blocking.c) */
        hy_buf_init(&scratch);
        int blocking = c != NULL && w->blocking;
        struct hy_buf *out = c != NULL ? node_client_out(c) : NULL;
        struct resp_writer wr = {c ? (blocking || w->silent ? &scratch : out) : NULL,
                                 w ? w->proto : 2};
        uint64_t expired = store_expired_count(g->store);
        size_t mark = wr.out != NULL ? wr.out->len : 0;
        if (n->mutation >= NODE_MUT_APPLY_CLOCK) { /* test only: the bug under test */
            store_set_mutation(g->store, n->mutation - NODE_MUT_APPLY_CLOCK + 1, n->raft_now_ms);
        }
        store_set_term(g->store, e->term);
        int rc = store_apply(g->store, e->data, e->len, c ? &wr : NULL);
        n->stats.expired_keys += store_expired_count(g->store) - expired;
        /* Entries come from our own encoder, through CRC-checked disk and wire: one that
         * does not decode means a bug, and applying on would fork the replicas. */
        HY_ASSERT(rc == HY_OK);
        if (c != NULL && w->answer_integer && wr.out->len > mark && wr.out->data[mark] == '+') {
            wr.out->len = mark;
            resp_write_int(&wr, w->answer);
        }
        if (c != NULL && wr.out == out) {
            node_note_reply(n, out->data + mark, out->len - mark); /* a write's reply */
        }
        if (n->block_any) {
            node_block_note_apply(g, index, w, wr.out == out ? c : NULL, mark);
        }
        if (c != NULL && w->stat_slot >= 0 && wr.out->len > mark && wr.out->data[mark] == '-') {
            node_cmdstat_failed(n, w->stat_slot); /* it ran and answered an error */
        }
        if (blocking) {
            node_block_applied(n, c, &scratch, w->silent);
        }
        hy_buf_free(&scratch);
    }
    g->applied = index;
    /* What the entry costs the in-memory log: its header and its data's allocation. */
    uint64_t cost = sizeof(struct raft_entry) + ((e->len + 8 + 15) & ~(size_t)15);
    g->log_bytes_since_snapshot += cost;
    g->node->log_bytes_since_snapshots += cost;
    if (w != NULL) {
        waiter_answer(g, w, NULL);
        waiter_recycle(g, w);
    }
}

/* How far ahead of the entry it applies apply_committed hints the store: the bucket
 * APPLY_PREFETCH_AHEAD entries ahead (store_prefetch_bucket), the key's entry half as far
 * (store_prefetch_node, from the hash the first hint kept in the ring). */
#define APPLY_PREFETCH_AHEAD 8

struct apply_hint {
    uint64_t index; /* 0: none */
    uint64_t hv;
    int key;
};

static void apply_prefetch(struct node_group *g, uint64_t index, uint64_t commit, int deep,
                           struct apply_hint ring[APPLY_PREFETCH_AHEAD])
{
    if (index > commit) {
        return;
    }
    struct apply_hint *h = &ring[index % APPLY_PREFETCH_AHEAD];
    if (h->index != index) {
        const struct raft_entry *e = raft_entry_get(&g->raft, index);
        h->index = index;
        h->key = e != NULL && e->type == RAFT_ENTRY_COMMAND &&
                 store_prefetch_bucket(g->store, e->data, e->len, &h->hv);
    }
    if (deep && h->key) {
        store_prefetch_node(g->store, h->hv);
    }
}

static void apply_committed(struct node_group *g, uint64_t commit)
{
    /* A run of entries: their lookups' cache misses overlap (store.h store_prefetch_bucket). */
    struct apply_hint ring[APPLY_PREFETCH_AHEAD] = {{0, 0, 0}};
    for (uint64_t i = g->applied + 1; i < g->applied + 1 + APPLY_PREFETCH_AHEAD && i <= commit;
         i++) {
        apply_prefetch(g, i, commit, i < g->applied + 1 + APPLY_PREFETCH_AHEAD / 2, ring);
    }
    while (g->applied < commit) {
        uint64_t i = g->applied + 1;
        const struct raft_entry *e = raft_entry_get(&g->raft, i);
        HY_ASSERT(e != NULL);
        apply_prefetch(g, i + APPLY_PREFETCH_AHEAD, commit, 0, ring);
        apply_prefetch(g, i + APPLY_PREFETCH_AHEAD / 2, commit, 1, ring);
        apply_one(g, i, e);
        g->node->metrics.entries_applied++;
    }
}

/* A chunk of a snapshot being received goes to the shell's receiver before anything of the
 * update is sent (its answer acknowledges the chunk). A chunk the receiver cannot write drops
 * the transfer: the core answers the next chunk with offset 0 and the leader starts again. The
 * last chunk cannot be dropped so: the core installed the snapshot with it, and only the
 * receiver's file holds the bytes; a node that cannot write them stops, as it does when its
 * log cannot be written. */
static int store_chunk(struct node_group *g, const struct raft_update *up)
{
    struct hy_node *n = g->node;
    int rc = n->snapshot_chunk != NULL ? n->snapshot_chunk(n->snapshot_recv_ctx, g->id, up)
                                       : HY_ENOTFOUND; /* the shell is stopping */
    if (rc == HY_OK) {
        n->metrics.snapshot_received_bytes += up->chunk_len;
        return 0;
    }
    if (up->snapshot_install) {
        hy_log(n->log, HY_LOG_ERROR,
               "FATAL: group %u: the last chunk of snapshot %llu cannot be written (%s); "
               "stopping so that a restart receives it again",
               g->id, (unsigned long long)up->snap_index, hy_status_name(rc));
        n->fatal = 1;
        return -1;
    }
    raft_snapshot_recv_reset(&g->raft);
    return 0;
}

static int install_snapshot(struct node_group *g, const struct raft_update *up)
{
    struct hy_node *n = g->node;
    int rc;
    if (up->snap_data == NULL && up->chunk) {
        /* Received to disk: read back from the receiver's file, whole and checked. The one
         * copy in memory is the buffer the keyspace is decoded from, freed at once. */
        struct hy_buf data;
        hy_buf_init(&data);
        rc = n->snapshot_recv_load != NULL
                 ? n->snapshot_recv_load(n->snapshot_recv_ctx, g->id, up->snap_index, &data)
                 : HY_ENOTFOUND;
        if (rc != HY_OK || data.len != up->snap_len) {
            hy_log(n->log, HY_LOG_ERROR,
                   "FATAL: group %u: received snapshot %llu does not read back (%s, %zu of %zu "
                   "bytes); stopping",
                   g->id, (unsigned long long)up->snap_index, hy_status_name(rc), data.len,
                   up->snap_len);
            hy_buf_free(&data);
            n->fatal = 1;
            return -1;
        }
        rc = store_snapshot_decode(g->store, data.data, data.len);
        hy_buf_free(&data);
    } else {
        rc = store_snapshot_decode(g->store, up->snap_data, up->snap_len);
    }
    HY_ASSERT(rc == HY_OK); /* CRC-checked on arrival; a bad one is a leader bug */
    g->applied = up->snap_index;
    log_bytes_reset(g);
    n->metrics.snapshots_installed++;
    /* Writes at or below the snapshot cannot be answered with their own reply any more. */
    while (g->waiters_head != NULL && g->waiters_head->index != 0 &&
           g->waiters_head->index <= up->snap_index) {
        waiter_answer(g, g->waiters_head,
                      "UNKNOWN outcome: the write may or may not have been "
                      "applied");
        waiter_pop(g);
    }
    return 0;
}

/* Our own snapshot. Encoding the keyspace costs O(keys) (in a forked child for a large one,
 * whose copy-on-write faults the event loop pays), so it is taken only once the log since the
 * last holds memory worth snapshot-log-percent of the dataset (100 by default: the point at
 * which Redis rewrites its AOF, auto-aof-rewrite-percentage) and at least the group's share of
 * snapshot-log-min (64 MiB over the node's groups by default, 1 MiB at least: Redis's
 * auto-aof-rewrite-min-size), or, when Raft asks, twice that share of the keyspace's key count
 * in entries: O(1) amortized per write. Half the dataset, as before, spent about half of a
 * durable SET's CPU on snapshots when a client rewrote 100,000 keys (docs/performance.md); the
 * price of rarer snapshots is a longer log on disk (to replay at a restart) and, while a
 * follower lags, in memory. */
static int snapshot_due(const struct node_group *g, int raft_wants)
{
    uint64_t since = g->applied - raft_snapshot_index(&g->raft);
    if (g->applied <= raft_snapshot_index(&g->raft)) {
        return 0;
    }
    const struct hy_node *n = g->node;
    uint64_t percent = (uint64_t)n->cfg->snapshot_log_percent;
    uint64_t dataset = store_used_bytes(g->store);
    /* The groups share snapshot-log-min by what they hold: a group may use what the node's
     * other groups leave of it, and never less than an equal share. Equal shares alone made
     * a node whose writes go to a few of its partitions (redis-benchmark --cluster writes
     * one partition per leader) snapshot each of them at 1/17 of the floor with 16
     * partitions: three times the snapshot work per write of one partition
     * (docs/partitioning.md "Where a SET's CPU goes"). With every group as busy, both come
     * to the same; the node's logs since their snapshots stay within snapshot-log-min plus
     * what the datasets' own terms allow, as before. */
    uint64_t min_log = (uint64_t)n->cfg->snapshot_log_min;
    uint64_t others = n->log_bytes_since_snapshots - g->log_bytes_since_snapshot;
    uint64_t share = HY_MAX(min_log / HY_MAX(n->group_count, (size_t)1),
                            min_log > others ? min_log - others : 0);
    uint64_t bytes_floor =
        HY_MAX(dataset * percent / 100, HY_MAX(share, (uint64_t)NODE_SNAPSHOT_BYTES_MIN));
    /* A keyspace that shrank to under half of the last snapshot: a new one releases the old
     * copy, and the deletions that shrank it paid for it. */
    int shrunk = g->snapshot_dataset_bytes > NODE_SNAPSHOT_BYTES_MIN &&
                 dataset < g->snapshot_dataset_bytes / 2;
    return (raft_wants && since >= (uint64_t)store_key_count(g->store) * 2 * percent / 100) ||
           g->log_bytes_since_snapshot >= bytes_floor || shrunk;
}

static int admin_step(struct node_group *g, struct raft_event *ev, uint64_t now_ms);

/* Hands a snapshot of the state machine at `index` (ownership of data moves here) to Raft
 * and queues it for the disk. A snapshot that Raft no longer wants (one installed from the
 * leader, or taken inline, went past it meanwhile) is dropped. */
static void snapshot_finish(struct node_group *g, uint64_t index, uint8_t *data, size_t len,
                            uint64_t now_ms)
{
    struct hy_node *n = g->node;
    uint64_t term = raft_term_at(&g->raft, index);
    struct raft_event ev = {.type = RAFT_EV_SNAPSHOT};
    ev.snapshot.index = index;
    ev.snapshot.data = data;
    ev.snapshot.len = len;
    /* No snapshot may start inside this step: its batch would reach the disk before ours,
     * and the log refuses a snapshot older than the one it holds. */
    g->snap_finishing = 1;
    int ok = index > raft_snapshot_index(&g->raft) && index <= g->applied && term != 0 &&
             admin_step(g, &ev, now_ms) == HY_OK;
    g->snap_finishing = 0;
    if (!ok) {
        hy_free(data);
        return;
    }
    struct node_metrics *nm = &n->metrics;
    nm->snapshots_taken++;
    nm->snapshot_last_bytes = len;
    nm->snapshot_bytes_total += len;
    hy_histo_record_ms(&nm->snapshot_duration, now_ms - HY_MIN(nm->snapshot_started_ms, now_ms));
    struct node_io_batch *b = hy_xcalloc(1, sizeof(*b));
    b->group = g->id;
    b->snapshot = NODE_SNAP_TAKEN;
    b->snap_index = index;
    b->snap_term = term;
    raft_snapshot_membership(&g->raft, &b->snap_membership);
    b->snap_data = data; /* ownership moves to the batch */
    b->snap_len = len;
    batch_push(n, b);
}

static void take_snapshot(struct node_group *g, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    struct hy_buf data;
    hy_buf_init(&data);
    n->metrics.snapshot_started_ms = now_ms;
    g->dirty_at_snapshot = store_dirty(g->store);
    store_snapshot_encode(g->store, &data);
    log_bytes_reset(g);
    g->snapshot_dataset_bytes = store_used_bytes(g->store);
    uint64_t index = g->applied;
    if (n->mutation == NODE_MUT_SNAPSHOT_AHEAD && index - 1 > raft_snapshot_index(&g->raft)) {
        index--; /* the bug under test: the state holds one entry more than its label says */
    }
    snapshot_finish(g, index, data.data, data.len, now_ms);
}

/* A due snapshot: through the shell's snapshotter when there is one (it encodes the store as
 * it is now away from the event loop, e.g. in a forked child, and calls node_snapshot_done),
 * inline otherwise. Encoding costs O(keys): inline, a million keys would stall the loop for
 * longer than an election timeout. */
static void start_snapshot(struct node_group *g, uint64_t now_ms)
{
    if (g->parked) {
        return; /* its keyspace is not in memory: its snapshot on disk covers it all */
    }
    struct hy_node *n = g->node;
    /* A small keyspace encodes in a few ms: inline is cheaper than a fork, and keeps memory
     * tight (no log piling up meanwhile, no second copy in flight). Small in keys and in
     * bytes: the encoding's cost follows the data, and one list of a million elements is one
     * key (redis-benchmark's LPUSH at -P 16 spent a fifth of the node's CPU encoding it on the
     * event loop, which answered nobody meanwhile). */
    int small = store_key_count(g->store) < NODE_SNAPSHOT_FORK_KEYS &&
                store_used_bytes(g->store) < NODE_SNAPSHOT_FORK_BYTES;
    int rc = n->snap_start != NULL && !small ? n->snap_start(n->snap_ctx, g->id, g->store)
                                             : HY_ENOTFOUND;
    if (rc == HY_EBUSY) {
        return; /* the last one is still being collected: soon */
    }
    if (rc != HY_OK) {
        take_snapshot(g, now_ms);
        return;
    }
    g->snap_pending = g->applied;
    g->dirty_at_snapshot = store_dirty(g->store);
    n->metrics.snapshot_started_ms = now_ms;
    log_bytes_reset(g);
    g->snapshot_dataset_bytes = store_used_bytes(g->store);
}

void node_set_snapshotter(struct hy_node *n, node_snapshot_fn start, void *ctx)
{
    n->snap_start = start;
    n->snap_ctx = ctx;
}

void node_set_config_hook(struct hy_node *n, node_config_hook_fn fn, void *ctx)
{
    n->config_hook = fn;
    n->config_hook_ctx = ctx;
}

void node_set_rewrite_hook(struct hy_node *n, node_config_hook_fn fn, void *ctx)
{
    n->rewrite_hook = fn;
    n->rewrite_hook_ctx = ctx;
}

void node_snapshot_done(struct hy_node *n, uint32_t group, uint8_t *data, size_t len,
                        uint64_t now_ms)
{
    struct node_group *g = node_group_get(n, group);
    HY_ASSERT(g != NULL);
    uint64_t index = g->snap_pending;
    HY_ASSERT(index != 0);
    g->snap_pending = 0;
    if (data == NULL) {
        hy_log(n->log, HY_LOG_WARN, "snapshot at index %llu failed; another is taken later",
               (unsigned long long)index);
        return;
    }
    snapshot_finish(g, index, data, len, now_ms); /* its step wakes whoever can go on */
}

static void wake_clients(struct hy_node *n, uint64_t now_ms);

/* Sets g's next tick and keeps the node's earliest (node_timeout_ms) without a walk over
 * every group: that walk ran after every peer frame, O(groups^2) a turn with thousands of
 * groups electing at once. Only when the group holding the earliest moves later is it walked
 * again, once, at the next node_timeout_ms. */
static void group_set_timeout(struct node_group *g, uint64_t t)
{
    struct hy_node *n = g->node;
    if (g->timeout_ms == t) {
        return;
    }
    if (!n->timeout_dirty) {
        if (g->timeout_ms != 0 && g->timeout_ms == n->timeout_min &&
            (t == 0 || t > g->timeout_ms)) {
            n->timeout_dirty = 1;
        } else if (t != 0 && (n->timeout_min == 0 || t < n->timeout_min)) {
            n->timeout_min = t;
        }
    }
    g->timeout_ms = t;
}

static void handle_reads(struct node_group *g, const struct raft_update *up);

int node_fatal(const struct hy_node *n)
{
    return n->fatal;
}

static void handle_update(struct node_group *g, const struct raft_update *up, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    n->metrics.now_ms = now_ms;
    /* A fatal failure (node_fatal): nothing of this update is persisted, sent or applied,
     * and the shell stops the process before anything else leaves it. */
    if (up->chunk && store_chunk(g, up) != 0) {
        return;
    }
    if (up->snapshot_install) {
        if (install_snapshot(g, up) != 0) {
            return;
        }
        g->parked = 0; /* the whole keyspace came with it */
    }
    batch_from_update(g, up);
    if (!g->parked || (up->commit_index > g->applied && replica_unpark(g))) {
        apply_committed(g, up->commit_index);
    }
    /* The batch above holds copies of what it persists and sends: applied entries may go.
     * A snapshot being encoded at snap_pending must still find its index in the log. */
    raft_release_applied(&g->raft,
                         g->snap_pending != 0 ? HY_MIN(g->applied, g->snap_pending) : g->applied);
    member_maybe_rebuild(n);
    handle_reads(g, up);
    group_set_timeout(g, up->timeout_ms);
    int snapshot_wanted = up->snapshot_wanted; /* `up` dies at the next raft_step */
    int snapshot_needed = up->snapshot_needed;
    /* The writes this node proposed as leader and has not answered stay waiting once it is
     * no longer leader (a hand-over, an election it lost, a step-down for lack of quorum): the
     * next leader's entries, which reach this node as a follower, decide each one's fate.
     * Committed, it applies here and gets its real reply; another entry committed at its
     * index, it was never applied (waiter_for, at apply). Its entry merely replaced in this
     * node's log proves nothing: other members may still hold it, and a later leader among
     * them may commit it (Raft's Figure 8). Answering "not applied" at the replacement told
     * clients an applied INCR had not been (simulator seed 1464000047 --nodes 5 --partitions
     * 8 --rf 3 --early-join: the client's retry counted twice). Only a fate not learnt within
     * deposed_wait_ms of the step-down (this node cut off from the next leader) ends in
     * UNKNOWN (replica_expire_waiters). */
    if (raft_role(&g->raft) == RAFT_LEADER) {
        g->deposed_ms = 0;
    } else if (g->deposed_ms == 0) {
        g->deposed_ms = now_ms;
    }
    if (g->snap_pending == 0 && !g->snap_finishing &&
        (snapshot_due(g, snapshot_wanted) ||
         (snapshot_needed && g->applied > raft_snapshot_index(&g->raft)))) {
        start_snapshot(g, now_ms);
    }
    proxy_check_group(g, now_ms); /* forwards to a leader that is gone are resolved at once */
    observe_note_step(n, now_ms);
    if (n->wake_held > 0) {
        n->wake_due = 1; /* node_wake_release looks at the clients, once for every group */
    } else {
        wake_clients(n, now_ms);
    }
}

void node_wake_hold(struct hy_node *n)
{
    n->wake_held++;
}

void node_wake_release(struct hy_node *n, uint64_t now_ms)
{
    HY_ASSERT(n->wake_held > 0);
    if (--n->wake_held == 0 && n->wake_due) {
        n->wake_due = 0;
        wake_clients(n, now_ms);
    }
}

int node_snapshot_request(struct hy_node *n, uint32_t group, uint64_t now_ms)
{
    struct node_group *g = node_group_get(n, group);
    if (g == NULL || !g->started) {
        return HY_ENOTFOUND;
    }
    if (g->snap_pending != 0 || g->snap_finishing || g->applied <= raft_snapshot_index(&g->raft)) {
        return HY_EEXIST;
    }
    start_snapshot(g, now_ms);
    return HY_OK;
}

/* At most this many entries are written again at once (the tail of a group that cannot
 * commit is short: a leaderless partition's few uncommitted entries). */
#define UNPIN_ENTRIES_MAX 65536

int node_log_unpin(struct hy_node *n, uint32_t group, uint64_t now_ms)
{
    int rc = node_snapshot_request(n, group, now_ms);
    if (rc != HY_EEXIST) {
        return rc;
    }
    struct node_group *g = node_group_get(n, group);
    const struct raft *r = &g->raft;
    uint64_t first = raft_snapshot_index(r) + 1;
    uint64_t last = raft_last_index(r);
    if (g->snap_pending != 0 || g->snap_finishing || g->unpin_pending || last < first ||
        g->applied >= first || last - first >= UNPIN_ENTRIES_MAX) {
        return HY_EEXIST;
    }
    uint32_t count = (uint32_t)(last - first + 1);
    struct raft_entry *view = hy_xmalloc((size_t)count * sizeof(*view));
    for (uint32_t i = 0; i < count; i++) {
        const struct raft_entry *e = raft_entry_get(r, first + i);
        if (e == NULL) { /* released from memory: not the case this is for */
            hy_free(view);
            return HY_EEXIST;
        }
        view[i] = *e;
    }
    struct node_io_batch *b = hy_xcalloc(1, sizeof(*b));
    b->group = g->id;
    b->unpin = 1;
    b->entries_first_index = first;
    b->n_entries = count;
    b->entries = entries_copy(view, count);
    hy_free(view);
    g->unpin_pending = 1;
    batch_push(n, b);
    hy_log(n->log, HY_LOG_INFO,
           "group %u: entries %llu..%llu cannot be snapshotted (not applied) and keep old log "
           "segments: written again at the log's end",
           g->id, (unsigned long long)first, (unsigned long long)last);
    return HY_OK;
}

int replica_is_leader(const struct node_group *g)
{
    return g->started && raft_role(&g->raft) == RAFT_LEADER;
}

void replica_note_holder(struct node_group *g, raft_id id, int holds, uint64_t now_ms)
{
    if (!raft_membership_is_voter(raft_membership(&g->raft), id)) {
        return;
    }
    size_t slot = 0;
    for (size_t i = 0; i < NODE_GROUP_HOLDERS; i++) {
        if (g->holders[i].ms != 0 && g->holders[i].id == id) {
            slot = i;
            break;
        }
        if (g->holders[i].ms < g->holders[slot].ms) {
            slot = i; /* the oldest answer (or a free slot) gives way */
        }
    }
    g->holders[slot].id = id;
    g->holders[slot].ms = now_ms;
    g->holders[slot].holds = holds;
}

int replica_holder(const struct node_group *g, raft_id id, uint64_t since_ms)
{
    for (size_t i = 0; i < NODE_GROUP_HOLDERS; i++) {
        if (g->holders[i].ms != 0 && g->holders[i].id == id) {
            return g->holders[i].ms >= since_ms ? g->holders[i].holds : -1;
        }
    }
    return -1;
}

int replica_transferring(const struct node_group *g)
{
    return replica_is_leader(g) && g->raft.transfer_target != RAFT_NONE;
}

int node_is_leader(const struct hy_node *n)
{
    return replica_is_leader(n->meta);
}

int node_turn_busy_take(struct hy_node *n)
{
    int p = n->turn_busy;
    n->turn_busy = 0;
    return p;
}

int node_leads_any(const struct hy_node *n)
{
    for (size_t i = 0; i < n->group_count; i++) {
        if (replica_is_leader(n->groups[i])) {
            return 1;
        }
    }
    return 0;
}

void node_set_mutation(struct hy_node *n, unsigned mutation)
{
    n->mutation = mutation;
}

static uint32_t voter_count(const struct raft_membership *m)
{
    uint32_t voters = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        voters += m->servers[i].role == RAFT_VOTER;
    }
    return voters;
}

uint32_t replica_reachable_voters(const struct node_group *g)
{
    struct hy_node *n = g->node;
    uint32_t have = 0;
    if (!node_group_raft_view(g)) {
        (void)partmap_voters(g, &have); /* not held here: the replicas the map names */
        return have;
    }
    for (size_t i = 0; i < n->member_count; i++) {
        have += n->member_up[i] &&
                raft_membership_is_voter(raft_membership(&g->raft), n->members[i].id);
    }
    return have;
}

int replica_can_read(const struct node_group *g)
{
    /* A leader whose own no-op has been applied has every committed write in its store.
     * With a single voter no other leader can exist, so its reads are linearizable without
     * a heartbeat round. (Groups of several voters confirm with ReadIndex: issue 5.) */
    return replica_is_leader(g) && g->applied >= g->raft.term_start_index &&
           voter_count(raft_membership(&g->raft)) == 1;
}

/* Clients that may go on: writes answered, or reads possible again. Their queued input is
 * processed now; what they produce is flushed by the shell via node_take_ready. */
/* Whether requests waiting for g to settle (a leader known and reachable, or this node's
 * term ready for reads) may run again. */
static int group_settled(const struct node_group *g)
{
    return !replica_transferring(g) &&
           (replica_can_read(g) ||
            (proxy_target(g) != NULL &&
             (!replica_is_leader(g) || g->applied >= g->raft.term_start_index)));
}

static void wake_clients(struct hy_node *n, uint64_t now_ms)
{
    /* Clients that waited for their group to settle look again: run, register a read
     * round, or get -MOVED. */
    /* Only clients that wait for their group to settle (or for read-your-writes) are looked
     * at here; those in a read round wait for its answer (handle_reads). Walking every client
     * at every update while thousands were in rounds (a scattered DBSIZE) was quadratic. */
    HY_ASSERT(n->read_rounds <= n->read_waiters);
    if (n->read_waiters > n->read_rounds) {
        for (struct node_client *c = n->clients; c != NULL; c = c->next) {
            if (c->blocked_on_read && c->ryw_wait) {
                if (proxy_ryw_ready(n, c)) {
                    /* Its replica applied the acknowledged writes: it is decided here now. */
                    c->ryw_wait = 0;
                    unblock(n, c);
                }
                continue;
            }
            if (c->blocked_on_read && c->read_id == 0 &&
                group_settled(node_group_get(n, c->wait_group))) {
                /* Its deadline keeps counting from when it began to wait: forwarded now, the
                 * forward's own deadline must not start afresh (proxy.c uses retry_since_ms),
                 * or a request could wait request-timeout-ms for a leader and as long again
                 * for the leader's reply. proxy_request_done clears it once answered. */
                if (c->retry_since_ms == 0) {
                    c->retry_since_ms = c->blocked_since_ms;
                }
                unblock(n, c);
            }
        }
    }
    node_block_wake(n, now_ms);
    for (struct node_client *c = n->ready; c != NULL; c = c->ready_next) {
        if (c->waiting == 0 && !c->blocked_on_read && !c->forwarding && c->in.len > 0 &&
            c->scatter_pending == 0) {
            node_client_process(n, c, now_ms);
        }
    }
}

void replica_wake(struct hy_node *n, uint64_t now_ms)
{
    wake_clients(n, now_ms);
}

struct hy_buf *replica_turn_data(struct node_group *g)
{
    return &g->turn_data;
}

/* Puts g in its node's flush list (once): node_flush looks at the groups listed only. */
static void flush_mark(struct node_group *g)
{
    struct hy_node *n = g->node;
    if (g->in_flush) {
        return;
    }
    if (n->flush_count == n->flush_cap) {
        n->flush_cap = n->flush_cap ? n->flush_cap * 2 : 16;
        n->flush_list = hy_xrealloc(n->flush_list, n->flush_cap * sizeof(*n->flush_list));
    }
    n->flush_list[n->flush_count++] = g;
    g->in_flush = 1;
}

void replica_queue_tail(struct node_group *g, size_t offset, struct node_waiter *w)
{
    flush_mark(g);
    HY_ASSERT(offset < g->turn_data.len);
    if (g->turn_count == g->turn_cap) {
        g->turn_cap = g->turn_cap ? g->turn_cap * 2 : 64;
        g->turn = hy_xrealloc(g->turn, g->turn_cap * sizeof(*g->turn));
    }
    g->turn[g->turn_count++] = (struct node_turn_entry){offset, g->turn_data.len - offset, w};
}

void replica_queue(struct node_group *g, const uint8_t *entry, size_t len, struct node_waiter *w)
{
    size_t offset = g->turn_data.len;
    hy_buf_append(&g->turn_data, entry, len);
    replica_queue_tail(g, offset, w);
}

#define NODE_TURN_KEEP_BYTES (256 * 1024)

static void turn_reset(struct node_group *g)
{
    g->turn_count = 0;
    hy_buf_reset(&g->turn_data);
    /* A pipelined burst makes a turn of thousands of writes: give its buffers back rather than
     * hold them for good (issue 13: a bulk load of 100,000 small sets left ~1 MB). */
    if (g->turn_data.cap > NODE_TURN_KEEP_BYTES) {
        hy_buf_free(&g->turn_data);
    }
    if (g->turn_cap * sizeof(*g->turn) > NODE_TURN_KEEP_BYTES) {
        hy_free(g->turn);
        g->turn = NULL;
        g->turn_cap = 0;
    }
}

/* The turn's writes were not proposed (no leader, or Raft refused): safe to retry. */
static void turn_fail(struct node_group *g, const char *error)
{
    for (size_t i = 0; i < g->turn_count; i++) {
        struct node_waiter *w = g->turn[i].waiter;
        if (w != NULL) {
            waiter_not_applied(g, w, error);
            waiter_remove(g, w);
        }
    }
    turn_reset(g);
}

static void turn_submit(struct node_group *g, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (n->fatal) {
        return; /* no group steps any more (node_fatal): the turn dies with the process */
    }
    struct raft_entry stack[64];
    struct raft_entry *ents =
        g->turn_count <= 64 ? stack : hy_xmalloc(g->turn_count * sizeof(*ents));
    for (size_t i = 0; i < g->turn_count; i++) {
        ents[i] = (struct raft_entry){.type = RAFT_ENTRY_COMMAND,
                                      .len = (uint32_t)g->turn[i].len,
                                      .data = g->turn_data.data + g->turn[i].offset};
    }
    struct raft_event ev = {.type = RAFT_EV_SUBMIT};
    ev.submit.entries = ents;
    ev.submit.n_entries = (uint32_t)g->turn_count;
    if (now_ms > n->raft_now_ms) {
        n->raft_now_ms = now_ms;
    }
    ev.now_ms = n->raft_now_ms;
    struct raft_update up;
    (void)raft_step(&g->raft, &ev, &up);
    if (up.status == HY_OK) {
        for (size_t i = 0; i < g->turn_count; i++) {
            if (g->turn[i].waiter != NULL) {
                g->turn[i].waiter->index = up.submit_index + i;
                g->turn[i].waiter->term = up.submit_term;
            } else {
                g->internal_index = up.submit_index + i;
            }
        }
        turn_reset(g);
    } else if (up.status == HY_EBUSY) {
        turn_fail(g, "TRYAGAIN leadership is being handed over (it takes at most an election "
                     "timeout); the write was not applied");
    } else {
        turn_fail(g, "TRYAGAIN no leader to propose the write to; it was not applied");
    }
    if (ents != stack) {
        hy_free(ents);
    }
    handle_update(g, &up, now_ms);
}

int node_has_proposals(const struct hy_node *n)
{
    for (size_t i = 0; i < n->flush_count; i++) {
        if (n->flush_list[i]->turn_count > 0) {
            return 1;
        }
    }
    return 0;
}

static void group_flush(struct node_group *g, uint64_t now_ms)
{
    turn_reads_flush(g, now_ms);
    if (g->turn_count == 0) {
        return;
    }
    if (replica_is_leader(g)) {
        turn_submit(g, now_ms);
        return;
    }
    /* Writes enter the turn only while this node leads (others wait or are forwarded), so
     * leadership was lost within this very turn: nothing was proposed, say so at once. */
    turn_fail(g, "TRYAGAIN leadership changed before the write was proposed; it was not "
                 "applied");
    wake_clients(g->node, now_ms);
}

void node_flush(struct hy_node *n, uint64_t now_ms)
{
    /* The groups listed when the flush starts, once each (as the walk over every group was):
     * one that queues again meanwhile is listed anew, for the next flush. */
    size_t count = n->flush_count;
    if (count == 0) {
        return; /* (and the list may be NULL: no memmove of it) */
    }
    node_wake_hold(n); /* one look at the clients for the whole flush, not one per group */
    for (size_t i = 0; i < count; i++) {
        struct node_group *g = n->flush_list[i];
        g->in_flush = 0;
        group_flush(g, now_ms);
        if (g->turn_count > 0 || g->turn_read_count > 0) {
            flush_mark(g); /* queued again as it flushed (woken clients): the next flush */
        }
    }
    HY_ASSERT(n->flush_count >= count);
    memmove(n->flush_list, n->flush_list + count,
            (n->flush_count - count) * sizeof(*n->flush_list));
    n->flush_count -= count;
    /* Woken clients may queue writes and list groups anew: after the memmove, so that those
     * go to the next flush as before. */
    node_wake_release(n, now_ms);
}

/* How long a deposed leader's writes wait to learn their fate: the next leader's election
 * (up to two election timeouts, a pre-vote round included) and its first entries reaching this
 * node, with room for one failed round. A node that hears no leader by then is cut off. */
static uint64_t replica_deposed_wait_ms(const struct hy_node *n)
{
    return 4 * (uint64_t)n->cfg->election_timeout_ms + 2 * (uint64_t)n->cfg->heartbeat_ms;
}

void replica_expire_waiters(struct hy_node *n, uint64_t now_ms)
{
    uint64_t timeout = (uint64_t)n->cfg->request_timeout_ms;
    uint64_t deposed_wait = replica_deposed_wait_ms(n);
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (now_ms > timeout) {
            fail_submitted(g, now_ms - timeout,
                           "UNKNOWN outcome: the write did not commit within "
                           "request-timeout-ms; it may or may not be applied");
        }
        if (g->deposed_ms != 0 && now_ms >= g->deposed_ms + deposed_wait) {
            fail_submitted(g, UINT64_MAX,
                           "UNKNOWN outcome: leadership changed after the write was "
                           "proposed; it may or may not be applied");
        }
    }
    node_flush(n, now_ms);
    wake_clients(n, now_ms);
}

void node_note_activity(struct hy_node *n)
{
    n->activity++;
}

int node_walk_due(struct hy_node *n, struct node_walk *w, uint64_t now_ms)
{
    /* Each term only grows: their sum moves whenever one of them does. */
    const struct node_stats *s = &n->stats;
    uint64_t seen =
        n->activity + s->expired_keys + s->evicted_keys + n->members_epoch + n->partmap_epoch;
    if (seen == w->seen && now_ms < w->next_ms && w->next_ms != 0) {
        return 0;
    }
    w->seen = seen;
    w->next_ms = now_ms + NODE_WALK_QUIET_MS;
    return 1;
}

uint64_t node_timeout_ms(struct hy_node *n)
{
    if (n->timeout_dirty) {
        uint64_t at = 0;
        for (size_t i = 0; i < n->group_count; i++) {
            uint64_t t = n->groups[i]->timeout_ms;
            if (t != 0 && (at == 0 || t < at)) {
                at = t;
            }
        }
        n->timeout_min = at;
        n->timeout_dirty = 0;
    }
    return n->timeout_min;
}

/* Whether this node's own address book lists it as a voting member, the only kind of member
 * whose copies can be moved away for good. An observer is a learner of every partition that
 * no map places, so a copy of its own is never one that moved away (partmap.c counts a group
 * settled with the observers' learners in it, and such a copy must not park). Neither is the
 * copy of a node its book lists as removed, or not at all: that book is behind (a wiped node
 * joined again replays the metadata group from the start, its old removal before its new
 * join) or the node is leaving the cluster. Parked on such a stale book, a re-added
 * observer's copies were learners its leaders had already added and had nothing more to
 * send, so they were never read back and stayed empty for good (seed 960001017 --nodes 5
 * --partitions 16 --rf 3). */
static int node_holds_placed_replicas(const struct hy_node *n)
{
    const struct node_member *m =
        node_member_find(n->members, n->member_count, n->meta->raft.cfg.id);
    return m != NULL && m->role == STORE_MEMBER_VOTER;
}

/* A replica of the partition reported its voters to be the map's replicas (HY.LEADERS), this node
 * not among them: this copy was moved away and never told, and nothing needs it. It campaigns no
 * more: its pre-votes woke the real replicas' quiesced groups again and again, and they changed
 * leader every few seconds (seed 72000040 --nodes 7 --partitions 8 --rf 3, where rebalancing moved
 * replicas off live members). Its keyspace leaves memory ("Parked copies" above). Not when this
 * copy's configuration is later in the group's log than the one the report found settled: a leader
 * added it since, and the report (and a map not yet current here) describe an older group
 * (campaign seed 4800001491 --nodes 5 --partitions 8 --rf 3 --replace-after 1500 --parked-keep
 * 500: n4 and n5, cut off from the metadata group with map epoch 1 and a report "settled at epoch
 * 1", were added to partition 0 by epoch 2's move, made its majority, and then parked their copies
 * and dropped their logs: no leader ever again). The report names that configuration's index:
 * taking this copy's own index when the report came, as before, parked a copy added after the
 * report was written but before it arrived. An answer of a node of before names none (0) and parks
 * nothing that holds a configuration. */
int replica_copy_may_park(const struct node_group *g, const struct node_placement *pl)
{
    return pl != NULL && !node_placement_has(pl, g->raft.cfg.id) && !replica_is_leader(g) &&
           g->settled_epoch == pl->epoch && g->settled_cfg_index >= g->raft.membership_index &&
           node_holds_placed_replicas(g->node);
}

void node_tick(struct hy_node *n, uint64_t now_ms)
{
    n->snap_pacer.rate = (uint64_t)n->cfg->rebalance_bandwidth; /* CONFIG SET takes effect */
    n->timeout_dirty = 1; /* walked anyway here; and a group gone since is forgotten */
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (g->parked && n->snapshot_load != NULL) {
            /* Parked, but perhaps no longer moved away: the map places it here again, or this
             * node became an observer (a learner of the partition that its leader may have
             * added before this copy parked, and then has nothing to send that would read it
             * back). Read back now rather than at the next entry, which may never come: a
             * caught-up learner with an empty keyspace never converges. Checked whether its
             * timer is due or not: a learner's or a quiesced follower's Raft has none. */
            const struct node_placement *pl = partmap_of(n, g);
            if (pl == NULL || node_placement_has(pl, g->raft.cfg.id) ||
                !node_holds_placed_replicas(n)) {
                replica_unpark(g);
            }
        }
        /* Only the groups whose timer is due: an idle group costs nothing between its own
         * deadlines (node_timeout_ms is the earliest of them). */
        if (g->started && g->timeout_ms != 0 && g->timeout_ms <= now_ms) {
            const struct node_placement *pl = partmap_of(n, g);
            if (replica_copy_may_park(g, pl)) {
                g->timeout_ms = now_ms + (uint64_t)n->cfg->election_timeout_ms;
                replica_park_step(g, now_ms);
                continue;
            }
            if (pl != NULL && !node_placement_has(pl, g->raft.cfg.id) && !replica_is_leader(g) &&
                partmap_zoned(n) && ++g->unplaced_timeouts % NODE_UNPLACED_TIMEOUTS != 0) {
                /* The committed map no longer places a replica of this partition here: this
                 * copy (a replica moved away and never told, §4.2.3, or the old replica of a
                 * move not finished) lets all but one in NODE_UNPLACED_TIMEOUTS of its timeouts
                 * pass. Campaigning at every one, the stale copies left by the moves after a
                 * start with zones kept the partitions' real replicas changing leader every
                 * few seconds after the faults stopped (seed 10 --nodes 5 --partitions 8 --rf
                 * 3 --zones 3; also 12, 15, 37, 57, 72, 84, 91). Not never: an old replica that
                 * still votes may hold the longest log, and then only it can win (seed 94:
                 * the partition had no leader for good). Only with zones, for now: without
                 * them, moves are rare (a member removed) and the throttle cost elections
                 * the old replica had to win (seed 7 --rf 3, seed 102 --rf 2, no zones). */
                g->timeout_ms = now_ms + (uint64_t)n->cfg->election_timeout_ms;
                continue;
            }
            struct raft_event ev = {.type = RAFT_EV_TIMEOUT};
            ev.timeout.deaf_from_ms = n->deaf_from_ms;
            ev.timeout.deaf_to_ms = n->deaf_to_ms;
            ev.timeout.deaf_recent_ms = node_deaf_recent(n, now_ms);
            step(g, &ev, now_ms);
        }
    }
}

void replica_liveness(struct hy_node *n, raft_id id, int alive, int suspect, uint64_t now_ms)
{
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (g->started) {
            struct raft_event ev = {.type = RAFT_EV_LIVENESS};
            ev.liveness.id = id;
            ev.liveness.alive = alive;
            ev.liveness.suspect = suspect;
            step(g, &ev, now_ms);
        }
    }
}

void replica_leader_busy(struct hy_node *n, uint32_t group, raft_id leader, uint64_t term,
                         uint64_t now_ms)
{
    struct node_group *g = node_group_get(n, group);
    if (g != NULL && g->started && leader != g->raft.cfg.id) {
        struct raft_event ev = {.type = RAFT_EV_LEADER_BUSY};
        ev.busy.leader = leader;
        ev.busy.term = term;
        step(g, &ev, now_ms);
    }
}

void replica_follower_busy(struct hy_node *n, raft_id follower, uint64_t now_ms)
{
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (g->started && replica_is_leader(g) && follower != g->raft.cfg.id) {
            struct raft_event ev = {.type = RAFT_EV_FOLLOWER_BUSY};
            ev.busy.leader = follower;
            step(g, &ev, now_ms);
        }
    }
}

void replica_wake_from_removed_leaders(struct hy_node *n, uint64_t now_ms)
{
    /* A partition whose leader, as this node knows it, is a member the metadata group removed:
     * node_receive ignores that member's messages here, so to this group it is as silent as a
     * dead node, yet its link stays up and it is heard at node level (beacons), so no liveness
     * report comes. Not knowing it was removed, it may go on leading; a quiesced follower has no
     * election timer and would wait for it for ever (seed 31000120 --partitions 0: the removal
     * never finished in the partitions, with quiescing on). Report it down to that group, as the
     * silence detector would: its followers campaign. */
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (g == n->meta || !g->started || !raft_quiesced(&g->raft)) {
            continue;
        }
        raft_id leader = raft_leader(&g->raft);
        if (leader == RAFT_NONE || leader == g->raft.cfg.id) {
            continue;
        }
        const struct node_member *mm = node_member_find(n->members, n->member_count, leader);
        if (mm != NULL && mm->role == STORE_MEMBER_REMOVED) {
            struct raft_event ev = {.type = RAFT_EV_LIVENESS};
            ev.liveness.id = leader;
            ev.liveness.alive = 0;
            step(g, &ev, now_ms);
        }
    }
}

size_t node_group_ids(const struct hy_node *n, uint32_t *ids, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n->group_count && k < cap; i++) {
        ids[k++] = n->groups[i]->id;
    }
    return k;
}

struct node_group *node_group_get(const struct hy_node *n, uint32_t id)
{
    /* Groups are made in id order, 0..partitions: the common case is a direct index (a scan
     * per message and per batch made thousands of partitions quadratic). */
    if (id < n->group_count && n->groups[id]->id == id) {
        return n->groups[id];
    }
    for (size_t i = 0; i < n->group_count; i++) {
        if (n->groups[i]->id == id) {
            return n->groups[i];
        }
    }
    return NULL;
}

int node_start(struct hy_node *n, uint32_t group, const struct node_recovered *rec, uint64_t now_ms)
{
    struct node_group *g = node_group_get(n, group);
    HY_ASSERT(g != NULL && !g->started);
    if (rec->snap_index > 0 &&
        store_snapshot_decode(g->store, rec->snap_data, rec->snap_len) != HY_OK) {
        hy_log(n->log, HY_LOG_ERROR, "snapshot at index %llu does not decode",
               (unsigned long long)rec->snap_index);
        return HY_ECORRUPT;
    }
    g->applied = rec->snap_index;
    struct raft_event ev = {.type = RAFT_EV_START};
    ev.start.term = rec->term;
    ev.start.vote = rec->vote;
    ev.start.snap_index = rec->snap_index;
    ev.start.snap_term = rec->snap_term;
    ev.start.snap_membership = rec->snap_membership;
    ev.start.snap_data = rec->snap_data;
    ev.start.snap_len = rec->snap_len;
    ev.start.entries = rec->entries;
    ev.start.n_entries = rec->n_entries;
    /* The first configuration: the bootstrap voters, or none for a node that joined (the
     * leader's log tells it). Raft uses it only while no snapshot or config entry exists. */
    raft_id placed[RAFT_SERVERS_MAX];
    int n_placed = n->cfg->joined || rec->forgotten ? -1 : partmap_boot_servers(n, g, placed);
    if (rec->forgotten) {
        /* No bootstrap: a leader that adds this node back tells it ("Parked copies"). */
    } else if (n_placed >= 0) {
        /* More bootstrap members than the replication factor: partition groups start on
         * the members the map places them on (partmap.c); the others start empty, as a
         * joining node does, until a leader adds them. */
        int self = 0;
        for (int i = 0; i < n_placed; i++) {
            self |= placed[i] == g->raft.cfg.id;
        }
        ev.start.bootstrap.count = self ? (uint32_t)n_placed : 0;
        for (int i = 0; self && i < n_placed; i++) {
            ev.start.bootstrap.servers[i].id = placed[i];
            ev.start.bootstrap.servers[i].role = RAFT_VOTER;
        }
    } else if (!n->cfg->joined) {
        ev.start.bootstrap.count = (uint32_t)n->boot_count;
        for (size_t i = 0; i < n->boot_count; i++) {
            ev.start.bootstrap.servers[i].id = n->boot[i].id;
            ev.start.bootstrap.servers[i].role = RAFT_VOTER;
        }
    }
    if (g == n->meta) {
        member_scan_log(n, rec->entries, rec->n_entries, rec->snap_index + 1);
    }
    g->started = 1;
    step(g, &ev, now_ms);
    return HY_OK;
}

/* ---- reads (ReadIndex, §6.4) ------------------------------------------------------------------
 */

uint32_t replica_voters(const struct node_group *g)
{
    uint32_t reachable;
    if (!node_group_raft_view(g)) {
        return partmap_voters(g, &reachable);
    }
    return voter_count(raft_membership(&g->raft));
}

const struct node_member *replica_leader_member(const struct node_group *g)
{
    return partmap_leader_member(g);
}

const struct node_member *replica_raft_leader_member(const struct node_group *g)
{
    struct hy_node *n = g->node;
    raft_id leader = raft_leader(&g->raft);
    return leader == RAFT_NONE ? NULL : node_member_find(n->members, n->member_count, leader);
}

void replica_read_register(struct node_group *g, struct node_client *c, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (g->turn_read_count == g->turn_read_cap) {
        g->turn_read_cap = g->turn_read_cap ? g->turn_read_cap * 2 : 64;
        g->turn_reads = hy_xrealloc(g->turn_reads, g->turn_read_cap * sizeof(*g->turn_reads));
    }
    replica_read_forget(n, c); /* a round it was still in (none expected) is given up */
    c->read_id = ++g->read_seq;
    c->read_group = g->id;
    n->read_rounds++;
    /* Every read already in the input when the round starts may be served by it: they all
     * began before the leader confirmed it still leads. */
    c->read_ok_bytes = 0;
    c->read_reg_bytes = c->in.len; /* node_client_process rebases it on what it consumes */
    c->blocked_on_read = 1;
    /* A read that already waited for a leader keeps its deadline (wake_clients carried it
     * into retry_since_ms): counted afresh, a read registered once a new leader came, whose
     * round then waited for that leader's first commit, went unanswered for longer than
     * request-timeout-ms (campaign seed 23001248: 3.5 s, its client's deadline). */
    c->blocked_since_ms = c->retry_since_ms != 0 ? c->retry_since_ms : now_ms;
    n->read_waiters++;
    g->turn_reads[g->turn_read_count++] = c->read_id;
    flush_mark(g);
    if (g->pending_count == g->pending_cap) {
        g->pending_cap = g->pending_cap ? g->pending_cap * 2 : 64;
        g->pending_reads =
            hy_xrealloc(g->pending_reads, g->pending_cap * sizeof(*g->pending_reads));
    }
    g->pending_reads[g->pending_count++] = (struct node_pending_read){c->read_id, c};
}

static int pending_live(const struct node_pending_read *p)
{
    return p->client != NULL && p->client->read_id == p->id;
}

/* The client still waiting for read `id`, taken out of the pending table; NULL when it went
 * away or stopped waiting (request timeout). */
static struct node_client *take_pending_read(struct node_group *g, uint64_t id)
{
    size_t lo = g->pending_head, hi = g->pending_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->pending_reads[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    struct node_client *c = NULL;
    if (lo < g->pending_count && g->pending_reads[lo].id == id) {
        c = g->pending_reads[lo].client;
        g->pending_reads[lo].client = NULL;
    }
    /* Entries at the head whose client is gone or stopped waiting (a timed-out read gets no
     * answer it could use) are dropped too, so the table cannot grow without bound. */
    while (g->pending_head < g->pending_count &&
           !pending_live(&g->pending_reads[g->pending_head])) {
        g->pending_head++;
    }
    if (g->pending_head == g->pending_count) {
        g->pending_head = g->pending_count = 0;
    }
    return c != NULL && c->read_id == id ? c : NULL;
}

static void unblock(struct hy_node *n, struct node_client *c)
{
    c->blocked_on_read = 0;
    if (c->read_id != 0) {
        n->read_rounds--; /* its round answered (handle_reads took it out of the table) */
    }
    c->read_id = 0;
    HY_ASSERT(n->read_waiters > 0);
    n->read_waiters--;
    replica_mark_ready(n, c);
}

/* Results of read rounds: a confirmed read may run once its index is applied (the leader
 * applies synchronously, so it is); a refused one (leadership lost) is answered an error. */
static void handle_reads(struct node_group *g, const struct raft_update *up)
{
    struct hy_node *n = g->node;
    for (uint32_t i = 0; i < up->n_reads; i++) {
        struct node_client *c = take_pending_read(g, up->reads[i].id);
        if (c == NULL) {
            continue; /* the client went away */
        }
        HY_ASSERT(!up->reads[i].ok || g->applied >= up->reads[i].index);
        if (!up->reads[i].ok && !c->is_proxy && n->cfg->redirect == NODE_REDIRECT_PROXY) {
            /* Refused (leadership moved: a failover, a transfer for balance): the read never
             * ran, so it waits for the next leader and goes there, within the deadline it
             * had from the start (blocked_since_ms is kept). */
            c->read_id = 0;
            n->read_rounds--;
            c->read_ok_bytes = 0;
            c->wait_group = g->id;
            continue;
        }
        c->read_ok_bytes = up->reads[i].ok ? c->read_reg_bytes : 0;
        c->read_timed_out = up->reads[i].ok ? 0 : 2; /* refused: leadership was lost */
        unblock(n, c);
    }
}

static void turn_reads_flush(struct node_group *g, uint64_t now_ms)
{
    if (g->turn_read_count == 0) {
        return;
    }
    struct raft_event ev = {.type = RAFT_EV_READ};
    ev.read.ids = g->turn_reads;
    ev.read.n_ids = (uint32_t)g->turn_read_count;
    g->turn_read_count = 0;
    step(g, &ev, now_ms); /* a refusal comes back in the update's reads */
}

/* 1 when the voters of g's configuration that are not removed from the cluster (as this node
 * knows it) and are reachable from here (this node, or a member whose link is up) form a
 * majority of them. A voter lost for good still counts in the configuration until it is
 * removed, but cannot help elect anyone: counted as kept, a partition of a removed member, a
 * lost one and this node ignored the removed member, the only other voter that could elect a
 * leader, and never moved off it (simulator seed 2260000044 --early-join --nodes 5 --partitions
 * 8 --rf 3: the operator removed a survivor that refused a forced leader's entries while it
 * still was one of partition 7's three voters, the third lost). */
static int quorum_without_removed(const struct hy_node *n, const struct node_group *g)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    uint32_t voters = 0, kept = 0;
    for (uint32_t i = 0; i < cm->count; i++) {
        if (cm->servers[i].role != RAFT_VOTER) {
            continue;
        }
        voters++;
        raft_id id = cm->servers[i].id;
        const struct node_member *mm = node_member_find(n->members, n->member_count, id);
        kept += id == g->raft.cfg.id ||
                (mm != NULL && mm->role != STORE_MEMBER_REMOVED && n->member_up[mm - n->members]);
    }
    return kept * 2 > voters;
}

/* Whether a removed member's message m must reach g's Raft all the same: a vote request whose
 * log is more up-to-date than this node's (its log holds entries this one lacks, perhaps the
 * configuration change that left this node's view of the voters stale), an answer to this
 * node's leadership in its term, or a message of the leader it then elected, in that term. */
static int removed_sender_needed(const struct node_group *g, const struct raft_message *m)
{
    if (m->type == RAFT_MSG_VOTE) {
        uint64_t last = raft_last_index(&g->raft);
        uint64_t last_term = raft_term_at(&g->raft, last);
        return m->last_log_term > last_term ||
               (m->last_log_term == last_term && m->last_log_index > last);
    }
    if ((m->type == RAFT_MSG_APPEND_RESP || m->type == RAFT_MSG_SNAPSHOT_RESP) &&
        raft_role(&g->raft) == RAFT_LEADER && m->term == raft_term(&g->raft)) {
        /* A follower's answer to this node's own leadership: it cannot make the removed member
         * lead, and until this leader takes it out of the configuration it is one of the
         * voters whose acknowledgements commit, the change that removes it among them.
         * Ignored, a leader whose other voters were reachable but far behind committed nothing
         * until one of them took a paced snapshot (campaign seed 4700009557 --nodes 5
         * --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512
         * --snapshot-chunk 512, on 6d896db: n2 led partition 2 with n3, which waited 17 s for
         * its snapshot, and n5, removed, which held every entry and answered all along: no
         * write committed from 15.3 s to 32.7 s). */
        return 1;
    }
    return m->from == g->removed_leader && m->term == g->removed_leader_term;
}

void node_receive(struct hy_node *n, uint32_t group, const struct raft_message *m, uint64_t now_ms)
{
    struct node_group *g = node_group_get(n, group);
    if (g == NULL || !g->started) {
        return; /* a group this node holds no replica of (yet): the sender tries again */
    }
    if ((n->draining || n->self_removed) && m->type == RAFT_MSG_TIMEOUT_NOW) {
        /* A draining node takes no leadership: its peers do not know it drains, and another
         * node's balancer handed it a partition that it handed back, again and again, so it
         * never drained (seed 22001039 --partitions 8). The transfer aborts at its deadline
         * and the leader keeps the group. One whose replicas move off first (drain_handoff)
         * still takes it: a partition whose other voter is a removed member that has not
         * learnt it needs a leader that follows the map (simulator seed 5124 --nodes 6
         * --partitions 8 --rf 2 --zones 2: n3 leaving refused the partition from removed n6,
         * and it never moved). The metadata leader's balancer hands it none (HY.LEADERS). */
        return;
    }
    if (g != n->meta && !member_in_config(n, m->from)) {
        /* A partition follows the metadata group's membership: a member removed from it (as
         * this node knows it) takes no part in partitions here. Removed members stay peers
         * (node_member_is_peer: they may be added back while this node misses it, and only
         * the metadata group's entries tell it so); but one that does not know it was removed
         * could otherwise keep leading a partition whose other members then never elect the
         * leader that takes it out (seed 40 --partitions 4). Unless the partition cannot
         * reach a quorum without its removed members: then only they can finish the change
         * (seed 32001631 --nodes 5 --partitions 4: after FORCE-QUORUM a partition of two
         * voters was led by the member the operator then removed; it proposed its own
         * removal, which the other voter never acknowledged, and that voter could not be
         * elected without it). */
        /* Nor when the removed member is needed after all: this node's configuration may be
         * stale (it missed the change that made the removed member one of two voters, and
         * the member removed from the group since, which still counts here, refuses its vote
         * to this node's shorter log), and then only the removed member, whose log is ahead,
         * can be elected and bring this node up to date (seed 75004513 --nodes 5 --partitions
         * 8 --rf 2 --zones 2: a move's target drained and stopped before it heard the move's
         * last step, the other voter removed from the cluster, the partition leaderless for
         * good). Such a vote is granted only to a log ahead of this one, which a leader the
         * others elected meanwhile has not let it be. */
        const struct node_member *mm = node_member_find(n->members, n->member_count, m->from);
        if (mm != NULL && mm->role == STORE_MEMBER_REMOVED && quorum_without_removed(n, g) &&
            !removed_sender_needed(g, m)) {
            return;
        }
    }
    /* Room for a snapshot before its first chunk: only for one the core may take (raft.c
     * on_snapshot drops a stale term's, and one at or below the commit index). A snapshot
     * installed here whose file the log has not renamed yet is such a one: reserving it again
     * emptied that file, and the log then made the empty one the group's snapshot (simulator
     * seed 682, a duplicate of the first chunk after the install). */
    if (m->type == RAFT_MSG_SNAPSHOT && m->offset == 0 && g->raft.cfg.snapshot_recv_external &&
        n->snapshot_reserve != NULL && m->term >= raft_term(&g->raft) &&
        m->snap_index > raft_commit_index(&g->raft) &&
        n->snapshot_reserve(n->snapshot_recv_ctx, group, m) != HY_OK) {
        return; /* no room for it (said in the log): lost, as far as the leader knows */
    }
    struct raft_event ev = {.type = RAFT_EV_RECEIVE};
    ev.receive.msg = m;
    if (m->from == raft_leader(&g->raft)) {
        g->leader_msgs++; /* cmd_stream.c: a follower's barrier for XREAD BLOCK */
    }
    step(g, &ev, now_ms);
    if (g != n->meta && m->type == RAFT_MSG_VOTE && !m->pre_vote &&
        raft_term(&g->raft) == m->term && g->raft.vote == m->from) {
        const struct node_member *mm = node_member_find(n->members, n->member_count, m->from);
        if (mm != NULL && mm->role == STORE_MEMBER_REMOVED) {
            g->removed_leader = m->from;
            g->removed_leader_term = m->term;
        }
    }
}

/* ---- administration -------------------------------------------------------------------------- */

/* An event stepped at once whose status matters (transfer, membership change, a snapshot). */
static int admin_step(struct node_group *g, struct raft_event *ev, uint64_t now_ms)
{
    struct hy_node *n = g->node;
    if (n->fatal) {
        return HY_EIO; /* the shell stops the process (node_fatal), as step() */
    }
    if (now_ms > n->raft_now_ms) {
        n->raft_now_ms = now_ms;
    }
    ev->now_ms = n->raft_now_ms;
    struct raft_update up;
    (void)raft_step(&g->raft, ev, &up);
    int status = up.status;
    handle_update(g, &up, now_ms);
    return status;
}

int replica_transfer(struct node_group *g, raft_id target, uint64_t now_ms)
{
    if (replica_is_leader(g) && g->turn_count > 0) {
        turn_submit(g, now_ms); /* writes of this turn go first: after, they would be refused */
    }
    struct raft_event ev = {.type = RAFT_EV_TRANSFER};
    ev.transfer.target = target;
    return admin_step(g, &ev, now_ms);
}

int replica_change(struct node_group *g, uint32_t op, raft_id id, uint64_t now_ms)
{
    struct raft_event ev = {.type = RAFT_EV_CHANGE};
    ev.change.op = op;
    ev.change.id = id;
    return admin_step(g, &ev, now_ms);
}

int replica_force(struct node_group *g, uint64_t now_ms)
{
    struct raft_event ev = {.type = RAFT_EV_FORCE};
    return admin_step(g, &ev, now_ms);
}

int replica_snapshot_now(struct node_group *g, uint64_t now_ms)
{
    if (g->applied <= raft_snapshot_index(&g->raft)) {
        return HY_EEXIST; /* nothing applied since the last one */
    }
    take_snapshot(g, now_ms);
    return HY_OK;
}
