/*
 * wal_node.c - the pure part of the node's storage shell (wal_node.h): shared by durable.c and
 * the whole-node simulator.
 */
#include "io/wal_node.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/assert.h"

int wal_node_start(struct hy_node *n, uint32_t group, const struct wal_recovered *rec,
                   uint64_t now_ms, const struct hy_log *log)
{
    struct node_recovered nr = {.term = rec->term, .vote = rec->vote, .forgotten = rec->forgotten};
    if (rec->snapshot.index > 0) {
        nr.snap_index = rec->snapshot.index;
        nr.snap_term = rec->snapshot.term;
        nr.snap_data = rec->snapshot.data;
        nr.snap_len = rec->snapshot.data_len;
        if (raft_membership_decode(rec->snapshot.membership, rec->snapshot.membership_len,
                                   &nr.snap_membership) != HY_OK) {
            hy_log(log, HY_LOG_ERROR, "snapshot %llu: membership does not decode",
                   (unsigned long long)rec->snapshot.index);
            return HY_ECORRUPT;
        }
    }
    size_t skip = 0;
    while (skip < rec->n_entries && rec->first_index + skip <= nr.snap_index) {
        skip++;
    }
    size_t count = rec->n_entries - skip;
    struct raft_entry *ents = count ? hy_xcalloc(count, sizeof(*ents)) : NULL;
    for (size_t i = 0; i < count; i++) {
        const struct wal_entry *e = &rec->entries[skip + i];
        ents[i] = (struct raft_entry){e->term, e->type, e->len, e->data};
    }
    nr.entries = ents;
    nr.n_entries = (uint32_t)count;
    int rc = node_start(n, group, &nr, now_ms);
    hy_log(log, HY_LOG_INFO, "group %u: recovered term %llu, snapshot %llu, %zu log entries",
           (unsigned)group, (unsigned long long)rec->term, (unsigned long long)nr.snap_index,
           count);
    hy_free(ents);
    return rc;
}

static int wal_node_id_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The node's group ids, ascending (allocated); their count in *count. */
static uint32_t *wal_node_ids(const struct hy_node *n, size_t *count)
{
    uint32_t *ids = hy_xcalloc(NODE_PARTITIONS_MAX + 1, sizeof(*ids));
    *count = node_group_ids(n, ids, NODE_PARTITIONS_MAX + 1);
    qsort(ids, *count, sizeof(*ids), wal_node_id_cmp);
    return ids;
}

int wal_node_open(struct disk *disk, const struct wal_config *cfg, struct hy_node *n,
                  uint64_t now_ms, const struct hy_log *log, wal_node_recovered_cb seen, void *ctx,
                  struct wal **wal_out, char *err, size_t err_len)
{
    size_t count;
    uint32_t *ids = wal_node_ids(n, &count);
    struct wal_recovered *recs = hy_xcalloc(count, sizeof(*recs));
    struct wal *w = NULL;
    int rc = wal_open(disk, cfg, ids, count, &w, recs, err, err_len);
    if (rc == HY_OK) {
        for (size_t i = 0; i < count && rc == HY_OK; i++) {
            if (seen != NULL) {
                seen(ctx, &recs[i]);
            }
            rc = wal_node_start(n, ids[i], &recs[i], now_ms, log);
            if (rc != HY_OK && err_len > 0) {
                snprintf(err, err_len, "group %u does not start from what it recovered: %s",
                         (unsigned)ids[i], hy_strerror(rc));
            }
        }
        for (size_t i = 0; i < count; i++) {
            wal_recovered_free(&recs[i]);
        }
        if (rc != HY_OK) {
            wal_close(w);
            w = NULL;
        }
    }
    hy_free(recs);
    hy_free(ids);
    *wal_out = w;
    return rc;
}

int wal_node_batch_persists(const struct node_io_batch *b)
{
    return b->term_vote_changed || b->snapshot != NODE_SNAP_NONE || b->n_entries > 0;
}

void wal_node_req_of(const struct node_io_batch *b, struct wal_node_req *req,
                     struct wal_snapshot *snap, uint8_t membership[WAL_NODE_MEMBERSHIP_MAX],
                     struct wal_entry **ents_out)
{
    *req = (struct wal_node_req){.group = b->group,
                                 .term_vote_changed = b->term_vote_changed,
                                 .term = b->term,
                                 .vote = b->vote};
    req->forget = b->snapshot == NODE_SNAP_FORGET;
    if (b->snapshot != NODE_SNAP_NONE && !req->forget) {
        HY_ASSERT(raft_membership_encoded_len(&b->snap_membership) <= WAL_NODE_MEMBERSHIP_MAX);
        *snap = (struct wal_snapshot){
            .index = b->snap_index,
            .term = b->snap_term,
            .membership = membership,
            .membership_len = (uint32_t)raft_membership_encode(&b->snap_membership, membership),
            .data = b->snap_data,
            .data_len = b->snap_len,
        };
        req->snapshot = snap;
        req->discard_log = b->snapshot == NODE_SNAP_INSTALL || b->snapshot == NODE_SNAP_RECEIVED;
        req->snapshot_received = b->snapshot == NODE_SNAP_RECEIVED;
    }
    *ents_out = NULL;
    if (b->n_entries > 0) {
        struct wal_entry *ents = hy_xcalloc(b->n_entries, sizeof(*ents));
        for (uint32_t i = 0; i < b->n_entries; i++) {
            ents[i] = (struct wal_entry){b->entries[i].term, b->entries[i].type, b->entries[i].len,
                                         b->entries[i].data};
        }
        req->first_index = b->entries_first_index;
        req->entries = ents;
        req->n_entries = b->n_entries;
        *ents_out = ents;
    }
}

/* Stages the entries of r, skipping those a snapshot written since already covers (a retry
 * after ENOSPC writes the whole list again). */
static void wal_node_stage_entries(struct wal *w, const struct wal_node_req *r)
{
    uint64_t first = r->first_index;
    size_t n = r->n_entries;
    const struct wal_entry *ents = r->entries;
    uint64_t snap = wal_snapshot_index(w, r->group);
    if (first <= snap) {
        size_t skip = (size_t)HY_MIN((uint64_t)n, snap + 1 - first);
        first += skip;
        ents += skip;
        n -= skip;
    }
    if (n > 0) {
        wal_batch_append(w, r->group, first, ents, n);
    }
}

/* Whether r's term/vote is newer than the one its group's log holds durably. A retry after
 * ENOSPC writes the whole list again, and a list with a snapshot commits what precedes the
 * snapshot first: a list that then ran out of space is written again with term/votes that are
 * durable already, and an older one among them (term 2 after term 3 in one list, or a term's
 * first record, without its vote, after the vote) written after a newer one would put the
 * group's term back (recovery refuses such a log: "group 7's term goes down", simulator seed
 * 76000504 --nodes 5 --partitions 8 --rf 3 --zones 3 --cancel) or forget a vote cast. Raft
 * never asks for an older term/vote than it had, so one not newer is such a copy: skipped. */
static int term_vote_is_new(const struct wal *w, const struct wal_node_req *r)
{
    uint64_t term, vote;
    wal_term_vote(w, r->group, &term, &vote);
    return r->term > term || (r->term == term && r->vote != vote && vote == RAFT_NONE);
}

/* Whether r holds a configuration entry (a membership change). */
static int wal_node_has_config(const struct wal_node_req *r)
{
    for (size_t i = 0; i < r->n_entries; i++) {
        if (r->entries[i].type == RAFT_ENTRY_CONFIG) {
            return 1;
        }
    }
    return 0;
}

size_t wal_node_unsynced_prefix(const struct wal *w, const struct wal_node_req *const *reqs,
                                size_t n)
{
    uint64_t len = 0;
    size_t k = 0;
    for (; k < n; k++) {
        const struct wal_node_req *r = reqs[k];
        if (r->term_vote_changed || r->snapshot != NULL || r->forget || r->n_entries == 0 ||
            wal_node_has_config(r)) {
            break;
        }
        uint64_t more = 0;
        for (size_t i = 0; i < r->n_entries; i++) {
            more += wal_record_size(r->entries[i].len);
        }
        if (!wal_fits_open_segment(w, len + more)) {
            break;
        }
        len += more;
    }
    return k;
}

int wal_node_write(struct wal *w, const struct wal_node_req *const *reqs, size_t n)
{
    return wal_node_write_as(w, reqs, n, WAL_NODE_FSYNC);
}

int wal_node_write_as(struct wal *w, const struct wal_node_req *const *reqs, size_t n,
                      enum wal_node_durability mode)
{
    int rc = HY_OK;
    int sync = mode == WAL_NODE_FSYNC;
    for (size_t i = 0; i < n && rc == HY_OK; i++) {
        const struct wal_node_req *r = reqs[i];
        if (r->term_vote_changed && term_vote_is_new(w, r)) {
            /* A vote (and the term it was cast in) is fsync'd before Raft acts on it in
             * every mode: a node that forgot a vote after a power cut could vote again in the
             * same term, two leaders could be elected for it, and they could commit different
             * entries at one index, which breaks every replica, not only the write in flight. */
            wal_batch_term_vote(w, r->group, r->term, r->vote);
            sync = 1;
        }
        /* A configuration entry decides which nodes count towards a majority; one lost after
         * it was counted could let two majorities of different configurations disagree. They
         * are rare, so syncing them costs nothing measurable. (Looked for only when the
         * commit would otherwise go unsynced: in fsync mode the scan is wasted work.) */
        if (!sync && wal_node_has_config(r)) {
            sync = 1;
        }
        if (r->forget) {
            rc = wal_batch_commit(w);
            rc = rc == HY_OK ? wal_group_forget(w, r->group) : rc;
        }
        if (rc == HY_OK && r->snapshot != NULL) {
            rc = wal_batch_commit(w);
            if (rc == HY_OK) {
                rc = r->snapshot_received ? wal_snapshot_install_received(w, r->group, r->snapshot)
                     : r->snapshot_file_written
                         ? wal_snapshot_install(w, r->group, r->snapshot, r->discard_log)
                         : wal_snapshot_put(w, r->group, r->snapshot, r->discard_log);
            }
        }
        if (rc == HY_OK && r->n_entries > 0) {
            wal_node_stage_entries(w, r);
        }
    }
    if (rc != HY_OK) {
        return rc;
    }
    return sync ? wal_batch_commit(w) : wal_batch_write(w);
}

/* ---- completion ---------------------------------------------------------------------------- */

struct wal_node_pending {
    struct node_io_batch *batch;
    uint64_t seq; /* write request to wait for; 0 = nothing of its own to persist */
};

/* One group's batches handed out, in order (a group's batches complete in order; groups never
 * wait for each other longer than the shared fdatasync). */
struct wal_node_group {
    uint32_t id;
    struct wal_node_pending *ring; /* FIFO */
    size_t head, count, cap;
};

struct wal_node_queues {
    struct wal_node_group *groups; /* ascending by id */
    size_t count;
    size_t busy; /* groups with something queued */
};

struct wal_node_queues *wal_node_queues_new(const struct hy_node *n)
{
    struct wal_node_queues *q = hy_xcalloc(1, sizeof(*q));
    uint32_t *ids = wal_node_ids(n, &q->count);
    q->groups = hy_xcalloc(q->count ? q->count : 1, sizeof(*q->groups));
    for (size_t i = 0; i < q->count; i++) {
        q->groups[i].id = ids[i];
    }
    hy_free(ids);
    return q;
}

void wal_node_queues_free(struct wal_node_queues *q)
{
    if (q == NULL) {
        return;
    }
    for (size_t i = 0; i < q->count; i++) {
        hy_free(q->groups[i].ring);
    }
    hy_free(q->groups);
    hy_free(q);
}

static struct wal_node_group *wal_node_group_of(struct wal_node_queues *q, uint32_t id)
{
    size_t lo = 0, hi = q->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (q->groups[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < q->count && q->groups[lo].id == id ? &q->groups[lo] : NULL;
}

int wal_node_queues_add(struct wal_node_queues *q, struct node_io_batch *b, uint64_t seq)
{
    struct wal_node_group *g = wal_node_group_of(q, b->group);
    HY_ASSERT(g != NULL); /* the node's groups were all opened */
    if (seq == 0 && g->count == 0) {
        return 1; /* nothing ahead of it and nothing to write: its messages may go at once */
    }
    if (g->count == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct wal_node_pending *r = hy_xcalloc(cap, sizeof(*r));
        for (size_t i = 0; i < g->count; i++) {
            r[i] = g->ring[(g->head + i) % g->cap];
        }
        hy_free(g->ring);
        g->ring = r;
        g->head = 0;
        g->cap = cap;
    }
    g->ring[(g->head + g->count) % g->cap] = (struct wal_node_pending){b, seq};
    g->count++;
    q->busy += g->count == 1;
    return 0;
}

void wal_node_queues_set_seq(struct wal_node_queues *q, const struct node_io_batch *b, uint64_t seq)
{
    struct wal_node_group *g = wal_node_group_of(q, b->group);
    HY_ASSERT(g != NULL);
    for (size_t i = 0; i < g->count; i++) {
        struct wal_node_pending *p = &g->ring[(g->head + i) % g->cap];
        if (p->batch == b) {
            HY_ASSERT(p->seq == WAL_NODE_SEQ_HELD);
            p->seq = seq;
            return;
        }
    }
    HY_UNREACHABLE(); /* a held batch stays queued until its request is durable */
}

/* wal_node.h */
size_t wal_node_coalesce_acks(struct node_io_batch *const *batches, size_t done)
{
    size_t dropped = 0;
    struct {
        raft_id to;
        uint64_t term, index, seq, sent_ms;
    } later[RAFT_SERVERS_MAX];
    size_t n_later = 0;
    for (size_t i = done; i-- > 0;) {
        struct node_io_batch *b = batches[i];
        uint32_t kept = 0;
        for (uint32_t k = 0; k < b->n_messages; k++) {
            const struct raft_message *m = &b->messages[k];
            int drop = 0;
            if (m->type == RAFT_MSG_APPEND_RESP && m->success && !m->quiesce) {
                size_t j = 0;
                while (j < n_later && later[j].to != m->to) {
                    j++;
                }
                if (j < n_later && later[j].term == m->term && later[j].index >= m->index &&
                    later[j].seq >= m->seq && later[j].sent_ms >= m->sent_ms) {
                    drop = 1;
                } else if (j < n_later || n_later < RAFT_SERVERS_MAX) {
                    n_later += j == n_later;
                    later[j].to = m->to;
                    later[j].term = m->term;
                    later[j].index = m->index;
                    later[j].seq = m->seq;
                    later[j].sent_ms = m->sent_ms;
                }
            }
            dropped += (size_t)drop;
            if (!drop) {
                /* an acknowledgement owns no entries or data: nothing is lost by overwriting */
                b->messages[kept++] = *m;
            }
        }
        b->n_messages = kept;
    }
    return dropped;
}

void wal_node_complete(struct wal_node_queues *q, struct hy_node *n, int status,
                       uint64_t durable_seq, const uint32_t *wanted, size_t n_wanted,
                       int *disk_full, wal_node_send_cb send, void *ctx, uint64_t now_ms,
                       const struct hy_log *log)
{
    int full = status == HY_ENOSPC;
    if (full != *disk_full) {
        *disk_full = full;
        node_set_disk_full(n, full);
        hy_log(log, full ? HY_LOG_ERROR : HY_LOG_INFO, "%s",
               full ? "disk full: writes are refused until space is freed; reads go on"
                    : "disk space is back: writes accepted again");
    }
    /* Old segments pinned by these groups' entries: snapshots let the log collect them, or,
     * for entries no snapshot can cover yet, writing them again at the log's end. */
    for (size_t i = 0; i < n_wanted; i++) {
        (void)node_log_unpin(n, wanted[i], now_ms);
    }
    /* Requests complete in submission order: every group's batches up to durable_seq. The
     * clients they answer are looked at once, after all of them (node_wake_hold). */
    node_wake_hold(n);
    for (size_t i = 0; i < q->count && q->busy > 0; i++) {
        struct wal_node_group *g = &q->groups[i];
        size_t done = 0;
        while (done < g->count && g->ring[(g->head + done) % g->cap].seq <= durable_seq) {
            done++;
        }
        if (done > 1) {
            struct node_io_batch **v = hy_xmalloc(done * sizeof(*v));
            for (size_t k = 0; k < done; k++) {
                v[k] = g->ring[(g->head + k) % g->cap].batch;
            }
            node_note_acks_coalesced(n, wal_node_coalesce_acks(v, done));
            hy_free(v);
        }
        while (g->count > 0 && g->ring[g->head].seq <= durable_seq) {
            struct node_io_batch *b = g->ring[g->head].batch;
            g->head = (g->head + 1) % g->cap;
            g->count--;
            q->busy -= g->count == 0;
            send(ctx, b);
            node_io_done(n, b, now_ms);
        }
    }
    node_wake_release(n, now_ms);
}
