/* raft_log.c - the in-memory Raft log (see raft_log.h). */
#include "raft/raft_log.h"

#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"

void raft_log_init(struct raft_log *l)
{
    memset(l, 0, sizeof(*l));
}

static void entry_release(struct raft_log *l, struct raft_entry *e)
{
    l->data_bytes -= e->len;
    hy_free((void *)e->data);
    e->data = NULL;
}

void raft_log_free(struct raft_log *l)
{
    raft_log_reset(l, 0, 0);
    hy_free(l->entries);
    memset(l, 0, sizeof(*l));
}

uint64_t raft_log_last_index(const struct raft_log *l)
{
    return l->snap_index + l->count;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
    return l->count ? l->entries[l->head + l->count - 1].term : l->snap_term;
}

struct raft_entry *raft_log_get(const struct raft_log *l, uint64_t index)
{
    if (index <= l->snap_index || index > raft_log_last_index(l)) {
        return NULL;
    }
    return &l->entries[l->head + (index - l->snap_index - 1)];
}

uint64_t raft_log_term(const struct raft_log *l, uint64_t index)
{
    if (index == l->snap_index) {
        return l->snap_term;
    }
    const struct raft_entry *e = raft_log_get(l, index);
    return e ? e->term : 0;
}

/* Makes room for one more entry at the end, sliding the live window to the front first when
 * compaction has left more than half the array unused. */
static void log_reserve(struct raft_log *l)
{
    if (l->head + l->count < l->cap) {
        return;
    }
    if (l->head > 0 && l->head >= l->cap / 2) {
        memmove(l->entries, l->entries + l->head, l->count * sizeof(*l->entries));
        l->head = 0;
        return;
    }
    l->cap = l->cap ? l->cap * 2 : 64;
    l->entries = hy_xrealloc(l->entries, l->cap * sizeof(*l->entries));
}

void raft_log_append(struct raft_log *l, const struct raft_entry *e)
{
    HY_ASSERT(e->term >= raft_log_last_term(l));
    log_reserve(l);
    struct raft_entry *dst = &l->entries[l->head + l->count];
    *dst = *e;
    dst->data = e->len ? hy_xmemdup(e->data, e->len) : NULL;
    l->data_bytes += e->len;
    l->count++;
}

void raft_log_truncate(struct raft_log *l, uint64_t from)
{
    HY_ASSERT(from > l->snap_index);
    while (raft_log_last_index(l) >= from) {
        entry_release(l, &l->entries[l->head + l->count - 1]);
        l->count--;
    }
}

void raft_log_compact(struct raft_log *l, uint64_t upto)
{
    HY_ASSERT(upto > l->snap_index && upto <= raft_log_last_index(l));
    uint64_t term = raft_log_term(l, upto);
    size_t drop = (size_t)(upto - l->snap_index);
    for (size_t i = 0; i < drop; i++) {
        entry_release(l, &l->entries[l->head + i]);
    }
    l->head += drop;
    l->count -= drop;
    if (l->count == 0) {
        l->head = 0;
    }
    l->snap_index = upto;
    l->snap_term = term;
    /* A log that once grew long (a slow follower held it) gives the array back once it is
     * short again: raft_release_applied keeps it short, and the slots cost 24 bytes each. */
    if (l->cap > 256 && l->count < l->cap / 8) {
        size_t cap = l->cap;
        while (cap > 64 && l->count < cap / 4) {
            cap /= 2;
        }
        memmove(l->entries, l->entries + l->head, l->count * sizeof(*l->entries));
        l->head = 0;
        l->cap = cap;
        l->entries = hy_xrealloc(l->entries, l->cap * sizeof(*l->entries));
    }
}

void raft_log_reset(struct raft_log *l, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < l->count; i++) {
        entry_release(l, &l->entries[l->head + i]);
    }
    l->head = 0;
    l->count = 0;
    l->snap_index = index;
    l->snap_term = term;
}
