#include "io/wal_node.h"

#include "common/alloc.h"
#include "common/assert.h"

int wal_node_start(struct hy_node *n, uint32_t group, const struct wal_recovered *rec,
                   uint64_t now_ms, const struct hy_log *log)
{
    struct node_recovered nr = {.term = rec->term, .vote = rec->vote};
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

void wal_node_snapshot_of(const struct node_io_batch *b, struct wal_snapshot *out,
                          uint8_t membership[WAL_NODE_MEMBERSHIP_MAX])
{
    HY_ASSERT(raft_membership_encoded_len(&b->snap_membership) <= WAL_NODE_MEMBERSHIP_MAX);
    *out = (struct wal_snapshot){
        .index = b->snap_index,
        .term = b->snap_term,
        .membership = membership,
        .membership_len = (uint32_t)raft_membership_encode(&b->snap_membership, membership),
        .data = b->snap_data,
        .data_len = b->snap_len,
    };
}

int wal_node_write_batch(struct wal *w, const struct node_io_batch *b)
{
    int rc = HY_OK;
    if (b->term_vote_changed) {
        wal_batch_term_vote(w, b->group, b->term, b->vote);
    }
    if (b->snapshot != NODE_SNAP_NONE) {
        /* The term/vote is durable before the snapshot (node.h's order). */
        rc = wal_batch_commit(w);
        uint8_t membership[WAL_NODE_MEMBERSHIP_MAX];
        struct wal_snapshot snap;
        wal_node_snapshot_of(b, &snap, membership);
        if (rc == HY_OK) {
            rc = wal_snapshot_put(w, b->group, &snap, b->snapshot == NODE_SNAP_INSTALL);
        }
    }
    if (rc == HY_OK && b->n_entries > 0) {
        struct wal_entry *ents = hy_xcalloc(b->n_entries, sizeof(*ents));
        for (uint32_t i = 0; i < b->n_entries; i++) {
            ents[i] = (struct wal_entry){b->entries[i].term, b->entries[i].type, b->entries[i].len,
                                         b->entries[i].data};
        }
        wal_batch_append(w, b->group, b->entries_first_index, ents, b->n_entries);
        rc = wal_batch_commit(w);
        hy_free(ents);
    }
    if (rc == HY_OK) {
        rc = wal_batch_commit(w); /* a term/vote alone */
    }
    return rc;
}
