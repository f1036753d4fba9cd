/*
 * store_evict.c - the leader's choices of keys to delete: active expiry and maxmemory eviction.
 *
 * Both only *propose*: they encode an entry (EXPIRED or EVICT) that goes through the log like
 * any write, so every replica deletes the same keys. The choices themselves use the store's
 * seeded PRNG and the non-replicated LRU clock, so they may differ between nodes, which is
 * fine because only the leader's choice is ever applied.
 */
#include "common/alloc.h"
#include "common/assert.h"
#include "store/store.h"
#include "store/store_int.h"

/* Candidates kept across picks of one eviction proposal, as Redis's eviction pool: a victim is
 * the oldest of every sample taken so far, not only of the last one. */
#define EVICT_POOL_SIZE 16

static void encode_keys(enum store_op op, uint64_t now_ms, struct store_obj *const *keys, size_t n,
                        struct hy_buf *out)
{
    struct store_arg *argv = hy_xmalloc(HY_MAX(n, 1) * sizeof(*argv));
    for (size_t i = 0; i < n; i++) {
        store__key(keys[i], &argv[i].ptr, &argv[i].len);
    }
    struct store_entry e = {
        .op = op,
        .flags = 0,
        .time_ms = now_ms,
        .expire_at_ms = -1,
        .incr = 0,
        .argc = (uint32_t)n,
        .argv = argv,
    };
    store_entry_encode(&e, out);
    hy_free(argv);
}

static int obj_listed(struct store_obj *const *v, size_t n, const struct store_obj *e)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == e) {
            return 1;
        }
    }
    return 0;
}

size_t store_propose_expired_cycle(struct store *s, uint64_t now_ms, size_t sample,
                                   unsigned rounds_max, struct hy_buf *entry_out)
{
    if (sample == 0 || rounds_max == 0 || s->vol_count == 0) {
        return 0;
    }
    struct store_obj **found = hy_xmalloc(sample * rounds_max * sizeof(*found));
    size_t nfound = 0;
    for (unsigned round = 0; round < rounds_max; round++) {
        /* A window of the volatile array from a random start: distinct keys, O(n), and the
         * array order is already shuffled by swap-removal. Windows of successive rounds may
         * overlap: a key already listed is not listed again (one entry names a key once). */
        size_t n = HY_MIN(sample, s->vol_count);
        size_t start = (size_t)hy_prng_below(&s->prng, s->vol_count);
        size_t fresh = 0;
        for (size_t i = 0; i < n; i++) {
            struct store_obj *e = s->vol[(start + i) % s->vol_count];
            if ((uint64_t)store__expire(e) <= now_ms && !obj_listed(found, nfound, e)) {
                found[nfound++] = e;
                fresh++;
            }
        }
        /* As Redis: go on while a quarter or more of the sample was newly found expired. */
        if (fresh * 4 < n) {
            break;
        }
    }
    if (nfound > 0) {
        encode_keys(STORE_OP_EXPIRED, now_ms, found, nfound, entry_out);
    }
    hy_free(found);
    return nfound;
}

size_t store_propose_expired(struct store *s, uint64_t now_ms, size_t max_keys,
                             struct hy_buf *entry_out)
{
    return store_propose_expired_cycle(s, now_ms, max_keys, 1, entry_out);
}

struct evict_pool {
    struct store_obj *e[EVICT_POOL_SIZE];
    uint32_t idle[EVICT_POOL_SIZE];
    size_t n;
};

static int pool_has(const struct evict_pool *p, const struct store_obj *e)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->e[i] == e) {
            return 1;
        }
    }
    return 0;
}

/* Adds a candidate, dropping the youngest one when the pool is full. */
static void pool_offer(struct evict_pool *p, struct store_obj *e, uint32_t idle)
{
    if (pool_has(p, e)) {
        return;
    }
    size_t slot = p->n;
    if (p->n == EVICT_POOL_SIZE) {
        slot = 0;
        for (size_t i = 1; i < p->n; i++) {
            if (p->idle[i] < p->idle[slot]) {
                slot = i;
            }
        }
        if (p->idle[slot] >= idle) {
            return;
        }
    } else {
        p->n++;
    }
    p->e[slot] = e;
    p->idle[slot] = idle;
}

static struct store_obj *pool_take_oldest(struct evict_pool *p)
{
    if (p->n == 0) {
        return NULL;
    }
    size_t best = 0;
    for (size_t i = 1; i < p->n; i++) {
        if (p->idle[i] > p->idle[best]) {
            best = i;
        }
    }
    struct store_obj *e = p->e[best];
    p->e[best] = p->e[--p->n];
    p->idle[best] = p->idle[p->n];
    return e;
}

static struct store_obj *sample_key(struct store *s)
{
    if (s->cfg.policy == STORE_VOLATILE_LRU) {
        return s->vol_count == 0 ? NULL : s->vol[hy_prng_below(&s->prng, s->vol_count)];
    }
    return (struct store_obj *)htab_random(&s->keys, &s->prng);
}

static int chosen_has(struct store_obj *const *chosen, size_t n, const struct store_obj *e)
{
    for (size_t i = 0; i < n; i++) {
        if (chosen[i] == e) {
            return 1;
        }
    }
    return 0;
}

/* Samples maxmemory_samples keys into the pool and takes the oldest not yet chosen. */
static struct store_obj *evict_pick(struct store *s, struct evict_pool *pool, uint32_t clock,
                                    struct store_obj *const *chosen, size_t nchosen)
{
    /* One sample per pick; more rounds only while a small keyspace keeps yielding keys that
     * were already chosen, leaving the pool empty. */
    for (int round = 0; round == 0 || (round < 8 && pool->n == 0); round++) {
        for (unsigned i = 0; i < s->cfg.maxmemory_samples; i++) {
            struct store_obj *e = sample_key(s);
            if (e == NULL) {
                return NULL;
            }
            if (!chosen_has(chosen, nchosen, e)) {
                pool_offer(pool, e, clock - e->lru); /* modulo 2^32: survives clock wrap */
            }
        }
    }
    return pool_take_oldest(pool);
}

size_t store_propose_evictions(struct store *s, uint64_t now_ms, size_t max_keys,
                               struct hy_buf *entry_out)
{
    size_t limit = s->cfg.maxmemory_bytes, used = store_used_bytes(s);
    if (limit == 0 || used <= limit || s->cfg.policy == STORE_NOEVICTION || max_keys == 0) {
        return 0;
    }
    size_t pool_keys = s->cfg.policy == STORE_VOLATILE_LRU ? s->vol_count : htab_count(&s->keys);
    size_t cap = HY_MIN(max_keys, pool_keys);
    if (cap == 0) {
        return 0;
    }
    struct store_obj **chosen = hy_xmalloc(cap * sizeof(*chosen));
    struct evict_pool pool = {.n = 0};
    uint32_t clock = (uint32_t)(now_ms >> SE_LRU_SHIFT);
    size_t n = 0, freed = 0;
    while (n < cap && used - freed > limit) {
        struct store_obj *e = evict_pick(s, &pool, clock, chosen, n);
        if (e == NULL) {
            break;
        }
        chosen[n++] = e;
        freed += HY_MIN(store__entry_bytes(e) + sizeof(void *), used - freed);
    }
    if (n > 0) {
        encode_keys(STORE_OP_EVICT, now_ms, chosen, n, entry_out);
    }
    hy_free(chosen);
    return n;
}
