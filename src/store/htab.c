#include "store/htab.h"

#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"

#define HTAB_EXP_MIN      2 /* 4 buckets */
/* Buckets a rehash step may find empty per bucket it is asked to move, so a step over a sparse
 * table stays bounded. */
#define HTAB_EMPTY_VISITS 10

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t htab_hash(const struct htab *h, const uint8_t *k, size_t klen)
{
    /* Eight bytes per round with a multiply-rotate mix and a final avalanche: fast on short
     * keys, seeded per store so bucket layout is not predictable from outside. */
    uint64_t acc = h->seed ^ ((uint64_t)klen * 0x9e3779b97f4a7c15ULL);
    size_t i = 0;
    for (; i + 8 <= klen; i += 8) {
        uint64_t w;
        memcpy(&w, k + i, 8);
        w *= 0x87c37b91114253d5ULL;
        w = rotl64(w, 31) * 0x4cf5ad432745937fULL;
        acc = rotl64(acc ^ w, 27) * 5 + 0x52dce729;
    }
    uint64_t tail = 0;
    for (size_t j = 0; i + j < klen; j++) {
        tail |= (uint64_t)k[i + j] << (8 * j);
    }
    acc ^= fmix64(tail ^ 0x2545f4914f6cdd1dULL);
    return fmix64(acc);
}

static size_t tab_size(const struct htab *h, int t)
{
    return h->table[t] ? (size_t)1 << h->size_exp[t] : 0;
}

static size_t tab_mask(const struct htab *h, int t)
{
    return tab_size(h, t) - 1;
}

static int node_has_key(const struct htab *h, const struct htab_node *n, const uint8_t *k,
                        size_t klen)
{
    const uint8_t *nk;
    size_t nlen;
    h->key_fn(n, &nk, &nlen);
    return nlen == klen && (klen == 0 || memcmp(nk, k, klen) == 0);
}

void htab_init(struct htab *h, htab_key_fn key_fn, uint64_t seed)
{
    memset(h, 0, sizeof(*h));
    h->rehash_idx = -1;
    h->seed = seed;
    h->key_fn = key_fn;
}

static void tab_free(struct htab *h, int t)
{
    if (h->table[t] != NULL) {
        h->table_bytes -= hy_alloc_size(h->table[t]);
        hy_free(h->table[t]);
    }
    h->table[t] = NULL;
    h->size_exp[t] = 0;
    h->used[t] = 0;
}

void htab_clear(struct htab *h, htab_visit_cb free_cb, void *ctx)
{
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; free_cb != NULL && i < tab_size(h, t); i++) {
            struct htab_node *n = h->table[t][i];
            while (n != NULL) {
                struct htab_node *next = n->next;
                free_cb(ctx, n);
                n = next;
            }
        }
        tab_free(h, t);
    }
    h->rehash_idx = -1;
    HY_ASSERT(h->table_bytes == 0);
}

size_t htab_count(const struct htab *h)
{
    return h->used[0] + h->used[1];
}

int htab_is_rehashing(const struct htab *h)
{
    return h->rehash_idx >= 0;
}

static struct htab_node **tab_alloc(struct htab *h, unsigned exp)
{
    struct htab_node **t = hy_xcalloc((size_t)1 << exp, sizeof(*t));
    h->table_bytes += hy_alloc_size(t);
    return t;
}

static unsigned exp_for(size_t count)
{
    unsigned e = HTAB_EXP_MIN;
    while (((size_t)1 << e) < count && e < 62) {
        e++;
    }
    return e;
}

/* Starts an incremental resize to 1 << exp buckets (or installs the first table). */
static void resize_start(struct htab *h, unsigned exp)
{
    HY_ASSERT(!htab_is_rehashing(h));
    if (h->table[0] == NULL) {
        h->table[0] = tab_alloc(h, exp);
        h->size_exp[0] = (uint8_t)exp;
        return;
    }
    if (exp == h->size_exp[0]) {
        return;
    }
    h->table[1] = tab_alloc(h, exp);
    h->size_exp[1] = (uint8_t)exp;
    h->used[1] = 0;
    h->rehash_idx = 0;
}

void htab_presize(struct htab *h, size_t count)
{
    HY_ASSERT(htab_count(h) == 0 && h->table[0] == NULL);
    resize_start(h, exp_for(count));
}

static void rehash_finish(struct htab *h)
{
    HY_ASSERT(h->used[0] == 0);
    tab_free(h, 0);
    h->table[0] = h->table[1];
    h->size_exp[0] = h->size_exp[1];
    h->used[0] = h->used[1];
    h->table[1] = NULL;
    h->size_exp[1] = 0;
    h->used[1] = 0;
    h->rehash_idx = -1;
}

static void rehash_bucket(struct htab *h, size_t idx)
{
    struct htab_node *n = h->table[0][idx];
    size_t mask = tab_mask(h, 1);
    while (n != NULL) {
        struct htab_node *next = n->next;
        const uint8_t *k;
        size_t klen;
        h->key_fn(n, &k, &klen);
        size_t to = (size_t)htab_hash(h, k, klen) & mask;
        n->next = h->table[1][to];
        h->table[1][to] = n;
        h->used[0]--;
        h->used[1]++;
        n = next;
    }
    h->table[0][idx] = NULL;
}

int htab_rehash_step(struct htab *h, unsigned steps)
{
    if (!htab_is_rehashing(h)) {
        return 0;
    }
    size_t empty_left = (size_t)steps * HTAB_EMPTY_VISITS;
    size_t size0 = tab_size(h, 0);
    while (steps > 0 && h->used[0] > 0) {
        HY_ASSERT((size_t)h->rehash_idx < size0);
        if (h->table[0][h->rehash_idx] == NULL) {
            h->rehash_idx++;
            if (--empty_left == 0) {
                return 1;
            }
            continue;
        }
        rehash_bucket(h, (size_t)h->rehash_idx);
        h->rehash_idx++;
        steps--;
    }
    if (h->used[0] == 0) {
        rehash_finish(h);
        return 0;
    }
    return 1;
}

/* Grows at load factor 1; shrinks below 1/8 full (not below the minimum size). */
static void resize_maybe(struct htab *h)
{
    if (htab_is_rehashing(h)) {
        return;
    }
    size_t used = h->used[0], size = tab_size(h, 0);
    if (size == 0) {
        return;
    }
    if (used >= size) {
        resize_start(h, exp_for(used + 1));
    } else if (size > ((size_t)1 << HTAB_EXP_MIN) && used * 8 < size) {
        resize_start(h, exp_for(used));
    }
}

void htab_prefetch(const struct htab *h, uint64_t hv, int deep)
{
    if (htab_count(h) == 0) {
        return;
    }
    for (int t = 0; t < 2 && h->table[t] != NULL; t++) {
        struct htab_node *const *slot = &h->table[t][hv & tab_mask(h, t)];
        if (!deep) {
            __builtin_prefetch(slot);
        } else if (*slot != NULL) {
            __builtin_prefetch(*slot);
        }
    }
}

struct htab_node *htab_find(const struct htab *h, const uint8_t *k, size_t klen)
{
    if (htab_count(h) == 0) {
        return NULL;
    }
    uint64_t hv = htab_hash(h, k, klen);
    for (int t = 0; t < 2 && h->table[t] != NULL; t++) {
        for (struct htab_node *n = h->table[t][hv & tab_mask(h, t)]; n != NULL; n = n->next) {
            if (node_has_key(h, n, k, klen)) {
                return n;
            }
        }
    }
    return NULL;
}

/* Like htab_find_link, also reporting which table the node lives in. */
static struct htab_node **find_link_tab(struct htab *h, const uint8_t *k, size_t klen, int *tab_out)
{
    if (htab_count(h) == 0) {
        return NULL;
    }
    uint64_t hv = htab_hash(h, k, klen);
    for (int t = 0; t < 2 && h->table[t] != NULL; t++) {
        struct htab_node **link = &h->table[t][hv & tab_mask(h, t)];
        for (; *link != NULL; link = &(*link)->next) {
            if (node_has_key(h, *link, k, klen)) {
                *tab_out = t;
                return link;
            }
        }
    }
    return NULL;
}

struct htab_node **htab_find_link(struct htab *h, const uint8_t *k, size_t klen)
{
    int t;
    return find_link_tab(h, k, klen, &t);
}

void htab_insert(struct htab *h, struct htab_node *n)
{
    htab_rehash_step(h, 1);
    if (h->table[0] == NULL) {
        resize_start(h, HTAB_EXP_MIN);
    }
    resize_maybe(h);
    const uint8_t *k;
    size_t klen;
    h->key_fn(n, &k, &klen);
    HY_DEBUG_ASSERT(htab_find(h, k, klen) == NULL);
    int t = htab_is_rehashing(h) ? 1 : 0;
    size_t idx = (size_t)htab_hash(h, k, klen) & tab_mask(h, t);
    n->next = h->table[t][idx];
    h->table[t][idx] = n;
    h->used[t]++;
}

struct htab_node *htab_remove(struct htab *h, const uint8_t *k, size_t klen)
{
    htab_rehash_step(h, 1);
    int t;
    struct htab_node **link = find_link_tab(h, k, klen, &t);
    if (link == NULL) {
        return NULL;
    }
    struct htab_node *n = *link;
    *link = n->next;
    n->next = NULL;
    h->used[t]--;
    if (htab_count(h) == 0) {
        /* An empty table holds no memory, so deleting every key returns the bytes to 0. */
        tab_free(h, 0);
        tab_free(h, 1);
        h->rehash_idx = -1;
    } else {
        resize_maybe(h);
    }
    return n;
}

void htab_replace(struct htab *h, struct htab_node *old, struct htab_node *new_node)
{
    const uint8_t *k;
    size_t klen;
    h->key_fn(new_node, &k, &klen);
    struct htab_node **link = htab_find_link(h, k, klen);
    HY_ASSERT(link != NULL && *link == old);
    new_node->next = old->next;
    *link = new_node;
}

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0fULL) | ((v & 0x0f0f0f0f0f0f0f0fULL) << 4);
    v = ((v >> 8) & 0x00ff00ff00ff00ffULL) | ((v & 0x00ff00ff00ff00ffULL) << 8);
    v = ((v >> 16) & 0x0000ffff0000ffffULL) | ((v & 0x0000ffff0000ffffULL) << 16);
    return (v >> 32) | (v << 32);
}

static void visit_chain(struct htab_node *n, htab_visit_cb cb, void *ctx)
{
    while (n != NULL) {
        struct htab_node *next = n->next;
        cb(ctx, n);
        n = next;
    }
}

/* Increments the cursor's unmasked high bits counted from the top, so that buckets are visited
 * in an order where every bucket of a doubled (or halved) table maps onto buckets still to
 * come; that is what keeps the at-least-once guarantee across resizes. */
static uint64_t cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = rev64(v);
    v++;
    return rev64(v);
}

uint64_t htab_scan(const struct htab *h, uint64_t cursor, htab_visit_cb cb, void *ctx)
{
    if (htab_count(h) == 0 || h->table[0] == NULL) {
        return 0;
    }
    if (!htab_is_rehashing(h)) {
        uint64_t m0 = tab_mask(h, 0);
        visit_chain(h->table[0][cursor & m0], cb, ctx);
        return cursor_next(cursor, m0);
    }
    /* Visit the smaller table's bucket, then every bucket of the larger table that it
     * expands to (those share its low bits). */
    int small = tab_size(h, 0) <= tab_size(h, 1) ? 0 : 1, large = 1 - small;
    uint64_t ms = tab_mask(h, small), ml = tab_mask(h, large);
    visit_chain(h->table[small][cursor & ms], cb, ctx);
    do {
        visit_chain(h->table[large][cursor & ml], cb, ctx);
        cursor = cursor_next(cursor, ml);
    } while (cursor & (ms ^ ml));
    return cursor;
}

void htab_foreach(const struct htab *h, htab_visit_cb cb, void *ctx)
{
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < tab_size(h, t); i++) {
            visit_chain(h->table[t][i], cb, ctx);
        }
    }
}

struct htab_node *htab_random(const struct htab *h, struct hy_prng *prng)
{
    if (htab_count(h) == 0) {
        return NULL;
    }
    size_t s0 = tab_size(h, 0), s1 = tab_size(h, 1);
    size_t lo = htab_is_rehashing(h) ? (size_t)h->rehash_idx : 0; /* below: known empty */
    struct htab_node *n = NULL;
    while (n == NULL) {
        size_t i = lo + (size_t)hy_prng_below(prng, s0 + s1 - lo);
        n = i < s0 ? h->table[0][i] : h->table[1][i - s0];
    }
    size_t len = 0;
    for (struct htab_node *c = n; c != NULL; c = c->next) {
        len++;
    }
    for (size_t skip = (size_t)hy_prng_below(prng, len); skip > 0; skip--) {
        n = n->next;
    }
    return n;
}
