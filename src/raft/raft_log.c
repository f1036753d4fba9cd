/* raft_log.c - the in-memory Raft log (see raft_log.h). */
#include "raft/raft_log.h"

#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* A released entry's bytes stay in their block until the block's last entry goes: poisoned,
 * so that a reader still holding them is caught as a use after free would be. */
#define LOG_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define LOG_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define LOG_POISON(p, n)   ((void)(p), (void)(n))
#define LOG_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/*
 * Entries' bytes. A write's entry is a few dozen bytes, and a malloc and a free of its own
 * per entry were a measurable part of a SET (docs/performance.md, issue 17), so entries are
 * carved out of blocks of LOG_BLOCK_BYTES, one after the other. Each entry's bytes are
 * preceded by a pointer to their block (NULL for an entry larger than LOG_BIG_BYTES, which
 * has an allocation of its own); a block counts the entries it holds and is freed with the
 * last of them, unless it is the block being filled. The log releases entries from its front
 * (compaction) and its end (truncation), so blocks empty in order: what is held beyond the
 * live entries is the block being filled and the unused ends of the blocks they span.
 * Bytes never move while their entry is in the log (borrowers rely on it: raft.h).
 */
#define LOG_BLOCK_BYTES (64u * 1024)
#define LOG_BIG_BYTES   (LOG_BLOCK_BYTES / 8)
#define LOG_ALIGN       sizeof(void *)

struct raft_log_block {
    size_t used; /* bytes of data handed out */
    size_t live; /* entries whose bytes are here */
    _Alignas(LOG_ALIGN) uint8_t data[];
};

static size_t log_round(size_t n)
{
    return (n + LOG_ALIGN - 1) & ~(LOG_ALIGN - 1);
}

static void log_block_free(struct raft_log *l, struct raft_log_block *b)
{
    LOG_UNPOISON(b->data, LOG_BLOCK_BYTES);
    l->alloc_bytes -= sizeof(*b) + LOG_BLOCK_BYTES;
    hy_free(b);
}

/* A copy of len bytes (len > 0) that the log owns, headed by its block's address. */
static uint8_t *log_data_copy(struct raft_log *l, const uint8_t *src, size_t len)
{
    struct raft_log_block **head;
    size_t need = sizeof(*head) + log_round(len);
    if (len > LOG_BIG_BYTES) {
        head = hy_xmalloc(need);
        *head = NULL;
        l->alloc_bytes += need;
    } else {
        struct raft_log_block *b = l->fill;
        if (b == NULL || b->used + need > LOG_BLOCK_BYTES) {
            if (b != NULL && b->live == 0) {
                log_block_free(l, b);
            }
            b = hy_xmalloc(sizeof(*b) + LOG_BLOCK_BYTES);
            b->used = 0;
            b->live = 0;
            LOG_POISON(b->data, LOG_BLOCK_BYTES);
            l->alloc_bytes += sizeof(*b) + LOG_BLOCK_BYTES;
            l->fill = b;
        }
        head = (struct raft_log_block **)(void *)(b->data + b->used);
        LOG_UNPOISON(head, need);
        b->used += need;
        b->live++;
        *head = b;
    }
    uint8_t *data = (uint8_t *)(head + 1);
    memcpy(data, src, len);
    return data;
}

static void log_data_release(struct raft_log *l, const uint8_t *data, size_t len)
{
    struct raft_log_block **head = (struct raft_log_block **)(void *)data - 1;
    struct raft_log_block *b = *head;
    size_t size = sizeof(*head) + log_round(len);
    if (b == NULL) {
        l->alloc_bytes -= size;
        hy_free(head);
        return;
    }
    HY_ASSERT(b->live > 0);
    LOG_POISON(head, size);
    if (--b->live == 0) {
        if (b != l->fill) {
            log_block_free(l, b);
        } else {
            b->used = 0; /* empty: filled again from its start */
        }
    }
}

void raft_log_init(struct raft_log *l)
{
    memset(l, 0, sizeof(*l));
}

static void entry_release(struct raft_log *l, struct raft_entry *e)
{
    l->data_bytes -= e->len;
    if (e->data != NULL) {
        log_data_release(l, e->data, e->len);
    }
    e->data = NULL;
}

void raft_log_free(struct raft_log *l)
{
    raft_log_reset(l, 0, 0);
    if (l->fill != NULL) {
        HY_ASSERT(l->fill->live == 0);
        log_block_free(l, l->fill);
    }
    HY_ASSERT(l->alloc_bytes == 0);
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
    dst->data = e->len ? log_data_copy(l, e->data, e->len) : NULL;
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
