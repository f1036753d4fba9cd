/*
 * store_zset.c - sorted set values and their ops of the log.
 *
 * A big sorted set is a hash object mapping each member to its score (8 bytes, the double's
 * bits) plus a skiplist of nodes sorted by (score, member bytes), the order Redis keeps. Every
 * link of a node carries its span (how many ranks it jumps), so the rank of a node, the node
 * at a rank, an insert and a removal are all O(log n) expected (Pugh's skiplist with the
 * counted links of his "cookbook", which Redis's zskiplist also keeps). Lookups by member go
 * through the hash; ranks and score or lex bounds are walks down the levels.
 *
 * A node's height is drawn from a PRNG seeded from the store's hash seed, so the same ops in
 * the same order build the same list (and the same byte count) on every replica.
 *
 * Invariants: the hash and the list hold the same members with the same scores; level 0 is
 * strictly increasing in (score, member) and its back links mirror it; the spans of every
 * level sum to the ranks they jump; no score is NaN; elem_bytes is the usable size of every
 * node.
 */
#include <math.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

#define ZSL_LEVELS 32 /* 4^32 members: more than memory holds */

struct znode;
struct zlink {
    struct znode *next;
    size_t span; /* ranks from this node to next (to the end when next is NULL) */
};

/* One member: its score, the previous node (level 0), `height` links, then the member. */
struct znode {
    double score;
    struct znode *back;
    uint32_t len;
    uint32_t height;
    struct zlink lv[];
};

/* The list of the full encoding. cur/cur_rank cache the last node read by rank, so a walk in
 * rank order (ZRANGE, snapshots, SORT) costs O(1) a step; every change clears it. */
struct zsl {
    struct znode *head; /* ZSL_LEVELS links, no member */
    struct znode *tail;
    struct znode *cur;
    size_t cur_rank;
    uint64_t rng;
    uint32_t level; /* links in use in head */
};

/* Two encodings. Compact (index == NULL): one buffer of records sorted by (score, member),
 * each [varint mlen << 1 | int][score][member], the score a zigzag varint when it is an
 * integer below 2^53 (most scores are: ranks, timestamps, counters), else its 8 bytes; a
 * 10-member set is one allocation of ~100 bytes, like Redis's listpack. Full: the index and
 * the skiplist. A set converts for good when it passes zset-max-listpack-entries or
 * takes a member longer than zset-max-listpack-value, as Redis's. */
struct zobj {
    struct hobj *index; /* member -> score; NULL in the compact encoding */
    union {
        struct zsl *sl; /* full */
        uint8_t *lp;    /* compact */
    } u;
    size_t count;
    size_t cap; /* compact: bytes of lp; full: 0 */
    union {
        size_t elem_bytes; /* full */
        uint64_t seed;     /* compact: for the index it converts to */
    } x;
};

#define ARG(e, i)      (e)->argv[(i)].ptr, (e)->argv[(i)].len
#define ZSCORE_INT_MAX 9007199254740992.0 /* 2^53: every integer below is exact */

static const struct store_encoding zenc_default = STORE_ENCODING_DEFAULT;

/* ---- compact records ------------------------------------------------------------------------ */

static int score_is_int(double score)
{
    return score > -ZSCORE_INT_MAX && score < ZSCORE_INT_MAX && score == (double)(int64_t)score &&
           !(score == 0 && signbit(score));
}

static size_t crec_size(double score, size_t mlen)
{
    int is_int = score_is_int(score);
    return varint_len((uint64_t)mlen << 1 | (uint64_t)is_int) +
           (is_int ? varint_len(zigzag((int64_t)score)) : sizeof(double)) + mlen;
}

static size_t crec_write(uint8_t *p, double score, const uint8_t *m, size_t mlen)
{
    int is_int = score_is_int(score);
    size_t n = varint_put(p, (uint64_t)mlen << 1 | (uint64_t)is_int);
    if (is_int) {
        n += varint_put(p + n, zigzag((int64_t)score));
    } else {
        memcpy(p + n, &score, sizeof(score));
        n += sizeof(score);
    }
    if (mlen > 0) {
        memcpy(p + n, m, mlen);
    }
    return n + mlen;
}

/* Reads the record at off (written by this file: well formed); returns the next offset. */
static size_t crec_read(const struct zobj *z, size_t off, double *score, const uint8_t **m,
                        size_t *mlen)
{
    uint64_t hdr = 0, zz = 0;
    size_t p = off + varint_get(z->u.lp + off, z->cap - off, &hdr);
    if (hdr & 1) {
        p += varint_get(z->u.lp + p, z->cap - p, &zz);
        *score = (double)unzigzag(zz);
    } else {
        memcpy(score, z->u.lp + p, sizeof(double));
        p += sizeof(double);
    }
    *mlen = (size_t)(hdr >> 1);
    *m = z->u.lp + p;
    return p + *mlen;
}

/* The offset of the record at rank (count: the end). */
static size_t coff_of(const struct zobj *z, size_t rank)
{
    size_t off = 0;
    double sc;
    const uint8_t *m;
    size_t mlen;
    for (size_t i = 0; i < rank; i++) {
        off = crec_read(z, off, &sc, &m, &mlen);
    }
    return off;
}

/* Replaces bytes [off, off + old) of lp by room for `size` bytes. */
static void csplice(struct zobj *z, size_t off, size_t old, size_t size)
{
    size_t len = z->cap - old + size;
    if (len > z->cap) {
        z->u.lp = hy_xrealloc(z->u.lp, len);
    }
    memmove(z->u.lp + off + size, z->u.lp + off + old, z->cap - off - old);
    if (len == 0) {
        hy_free(z->u.lp);
        z->u.lp = NULL;
    } else if (len < z->cap) {
        z->u.lp = hy_xrealloc(z->u.lp, len);
    }
    z->cap = len;
}

/* ---- the skiplist --------------------------------------------------------------------------- */

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = HY_MIN(alen, blen);
    int c = n > 0 ? memcmp(a, b, n) : 0;
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int key_cmp(double as, const uint8_t *am, size_t alen, double score, const uint8_t *m,
                   size_t mlen)
{
    if (as != score) {
        return as < score ? -1 : 1;
    }
    return bytes_cmp(am, alen, m, mlen);
}

static const uint8_t *zn_data(const struct znode *n)
{
    return (const uint8_t *)&n->lv[n->height];
}

static int zn_cmp(const struct znode *n, double score, const uint8_t *m, size_t mlen)
{
    return key_cmp(n->score, zn_data(n), n->len, score, m, mlen);
}

static struct znode *zn_new(uint32_t height, double score, const uint8_t *m, size_t mlen)
{
    struct znode *n = hy_xmalloc(sizeof(*n) + height * sizeof(struct zlink) + mlen);
    n->score = score;
    n->back = NULL;
    n->len = (uint32_t)mlen;
    n->height = height;
    for (uint32_t i = 0; i < height; i++) {
        n->lv[i].next = NULL;
        n->lv[i].span = 0;
    }
    if (mlen > 0) {
        memcpy((uint8_t *)&n->lv[height], m, mlen);
    }
    return n;
}

static struct zsl *zsl_new(uint64_t seed)
{
    struct zsl *sl = hy_xcalloc(1, sizeof(*sl));
    sl->head = zn_new(ZSL_LEVELS, 0, NULL, 0);
    sl->level = 1;
    sl->rng = seed | 1; /* xorshift64 must not start at 0 */
    return sl;
}

/* A new node's height: 1 + k with probability (3/4) 4^-k, Redis's p = 1/4 (1.33 links a node
 * on average, walks of about 2 log4(n) steps). */
static uint32_t zsl_height(struct zsl *sl)
{
    uint64_t x = sl->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sl->rng = x;
    uint32_t h = 1;
    while (h < ZSL_LEVELS && (x & 3) == 0) {
        h++;
        x >>= 2;
    }
    return h;
}

/* Links node n (its member absent from the list) at its place; the count and byte total
 * follow. */
static void zsl_link(struct zobj *z, struct znode *n)
{
    struct zsl *sl = z->u.sl;
    struct znode *update[ZSL_LEVELS], *x = sl->head;
    size_t rank[ZSL_LEVELS]; /* rank[i]: the rank of update[i] (the head is 0) */
    for (uint32_t i = sl->level; i-- > 0;) {
        rank[i] = i + 1 == sl->level ? 0 : rank[i + 1];
        while (x->lv[i].next != NULL && zn_cmp(x->lv[i].next, n->score, zn_data(n), n->len) < 0) {
            rank[i] += x->lv[i].span;
            x = x->lv[i].next;
        }
        update[i] = x;
    }
    uint32_t h = n->height;
    for (; sl->level < h; sl->level++) {
        rank[sl->level] = 0;
        update[sl->level] = sl->head;
        sl->head->lv[sl->level].span = z->count;
    }
    for (uint32_t i = 0; i < h; i++) {
        n->lv[i].next = update[i]->lv[i].next;
        update[i]->lv[i].next = n;
        n->lv[i].span = update[i]->lv[i].span - (rank[0] - rank[i]);
        update[i]->lv[i].span = rank[0] - rank[i] + 1;
    }
    for (uint32_t i = h; i < sl->level; i++) {
        update[i]->lv[i].span++;
    }
    n->back = update[0] == sl->head ? NULL : update[0];
    if (n->lv[0].next != NULL) {
        n->lv[0].next->back = n;
    } else {
        sl->tail = n;
    }
    z->count++;
    z->x.elem_bytes += hy_alloc_size(n);
    sl->cur = NULL;
}

/* Links a new node for (score, m), which must be absent from the list. */
static void zsl_insert(struct zobj *z, double score, const uint8_t *m, size_t mlen)
{
    zsl_link(z, zn_new(zsl_height(z->u.sl), score, m, mlen));
}

/* Unlinks node n, whose predecessors at every level are update[]; the caller owns it after. */
static void zsl_unlink(struct zobj *z, struct znode *n, struct znode *const *update)
{
    struct zsl *sl = z->u.sl;
    for (uint32_t i = 0; i < sl->level; i++) {
        if (update[i]->lv[i].next == n) {
            update[i]->lv[i].span += n->lv[i].span - 1;
            update[i]->lv[i].next = n->lv[i].next;
        } else {
            update[i]->lv[i].span--;
        }
    }
    if (n->lv[0].next != NULL) {
        n->lv[0].next->back = n->back;
    } else {
        sl->tail = n->back;
    }
    while (sl->level > 1 && sl->head->lv[sl->level - 1].next == NULL) {
        sl->level--;
    }
    z->count--;
    z->x.elem_bytes -= hy_alloc_size(n);
    sl->cur = NULL;
}

/* Unlinks and frees the node at rank r (the first is 0), and its index entry. */
static void zsl_remove_rank(struct zobj *z, size_t r)
{
    struct znode *update[ZSL_LEVELS], *x = z->u.sl->head;
    size_t trav = 0; /* the rank of x, counting the head as 0 */
    for (uint32_t i = z->u.sl->level; i-- > 0;) {
        while (x->lv[i].next != NULL && trav + x->lv[i].span <= r) {
            trav += x->lv[i].span;
            x = x->lv[i].next;
        }
        update[i] = x;
    }
    struct znode *n = x->lv[0].next;
    HY_ASSERT(n != NULL && trav == r);
    HY_ASSERT(store__hobj_del(z->index, zn_data(n), n->len) == 1);
    zsl_unlink(z, n, update);
    hy_free(n);
}

/* Unlinks the node of (score, m), which must be in the list, and returns it (its index entry
 * stays): one walk by key where a rank lookup and a removal by rank take two. */
static struct znode *zsl_take_key(struct zobj *z, double score, const uint8_t *m, size_t mlen)
{
    struct znode *update[ZSL_LEVELS], *x = z->u.sl->head;
    for (uint32_t i = z->u.sl->level; i-- > 0;) {
        while (x->lv[i].next != NULL && zn_cmp(x->lv[i].next, score, m, mlen) < 0) {
            x = x->lv[i].next;
        }
        update[i] = x;
    }
    struct znode *n = x->lv[0].next;
    HY_ASSERT(n != NULL && zn_cmp(n, score, m, mlen) == 0);
    zsl_unlink(z, n, update);
    return n;
}

/* The node at rank r < count. A read next to the last one (a walk in rank order, either way)
 * is one step from the cached node; any other read walks down the levels. */
static const struct znode *zsl_at(const struct zobj *z, size_t r)
{
    struct zsl *sl = z->u.sl;
    struct znode *x = sl->cur;
    if (x != NULL && r == sl->cur_rank) {
        return x;
    }
    if (x != NULL && r == sl->cur_rank + 1) {
        x = x->lv[0].next;
    } else if (x != NULL && r + 1 == sl->cur_rank) {
        x = x->back;
    } else {
        x = sl->head;
        size_t trav = 0;
        for (uint32_t i = sl->level; i-- > 0 && trav != r + 1;) {
            while (x->lv[i].next != NULL && trav + x->lv[i].span <= r + 1) {
                trav += x->lv[i].span;
                x = x->lv[i].next;
            }
        }
        HY_ASSERT(trav == r + 1);
    }
    sl->cur = x;
    sl->cur_rank = r;
    return x;
}

/* How many nodes come before a bound: `before` holds for a prefix of the list. */
static size_t zsl_count(const struct zsl *sl, int (*before)(const struct znode *, const void *),
                        const void *ctx)
{
    const struct znode *x = sl->head;
    size_t trav = 0;
    for (uint32_t i = sl->level; i-- > 0;) {
        while (x->lv[i].next != NULL && before(x->lv[i].next, ctx)) {
            trav += x->lv[i].span;
            x = x->lv[i].next;
        }
    }
    return trav;
}

static void zsl_free(struct zsl *sl)
{
    struct znode *x = sl->head->lv[0].next;
    while (x != NULL) {
        struct znode *next = x->lv[0].next;
        hy_free(x);
        x = next;
    }
    hy_free(sl->head);
    hy_free(sl);
}

/* ---- the object ----------------------------------------------------------------------------- */

struct zobj *store__zobj_new(uint64_t seed)
{
    struct zobj *z = hy_xcalloc(1, sizeof(*z));
    z->x.seed = seed;
    return z;
}

int store__zobj_compact(const struct zobj *z)
{
    return z->index == NULL;
}

void store__zobj_free(struct zobj *z)
{
    if (z == NULL) {
        return;
    }
    if (z->index == NULL) {
        hy_free(z->u.lp);
        hy_free(z);
        return;
    }
    zsl_free(z->u.sl);
    store__hobj_free(z->index);
    hy_free(z);
}

size_t store__zobj_bytes(const struct zobj *z)
{
    if (z->index == NULL) {
        return hy_alloc_size(z) + (z->u.lp != NULL ? hy_alloc_size(z->u.lp) : 0);
    }
    return hy_alloc_size(z) + store__hobj_bytes(z->index) + hy_alloc_size(z->u.sl) +
           hy_alloc_size(z->u.sl->head) + z->x.elem_bytes;
}

size_t store__zobj_count(const struct zobj *z)
{
    return z->count;
}

void store__zobj_at(const struct zobj *z, size_t rank, double *score_out, const uint8_t **m_out,
                    size_t *mlen_out)
{
    HY_ASSERT(rank < z->count);
    if (z->index == NULL) {
        crec_read(z, coff_of(z, rank), score_out, m_out, mlen_out);
        return;
    }
    const struct znode *n = zsl_at(z, rank);
    *score_out = n->score;
    *m_out = zn_data(n);
    *mlen_out = n->len;
}

struct zkey {
    double score;
    const uint8_t *m;
    size_t mlen;
};

static int before_key(const struct znode *n, const void *ctx)
{
    const struct zkey *k = ctx;
    return zn_cmp(n, k->score, k->m, k->mlen) < 0;
}

/* The first rank whose element is >= (score, m). */
static size_t lower_bound(const struct zobj *z, double score, const uint8_t *m, size_t mlen)
{
    if (z->index == NULL) {
        size_t off = 0, rank = 0;
        for (; rank < z->count; rank++) {
            double sc;
            const uint8_t *em;
            size_t elen;
            off = crec_read(z, off, &sc, &em, &elen);
            if (key_cmp(sc, em, elen, score, m, mlen) >= 0) {
                break;
            }
        }
        return rank;
    }
    struct zkey k = {score, m, mlen};
    return zsl_count(z->u.sl, before_key, &k);
}

/* The rank and score of member m, or 0 when absent. */
static int find_member(const struct zobj *z, const uint8_t *m, size_t mlen, double *score_out,
                       size_t *rank_out)
{
    if (z->index == NULL) {
        size_t off = 0;
        for (size_t rank = 0; rank < z->count; rank++) {
            double sc;
            const uint8_t *em;
            size_t elen;
            off = crec_read(z, off, &sc, &em, &elen);
            if (elen == mlen && (mlen == 0 || memcmp(em, m, mlen) == 0)) {
                *score_out = sc;
                *rank_out = rank;
                return 1;
            }
        }
        return 0;
    }
    const uint8_t *v;
    size_t vlen;
    if (!store__hobj_get(z->index, m, mlen, &v, &vlen)) {
        return 0;
    }
    HY_ASSERT(vlen == sizeof(double));
    memcpy(score_out, v, sizeof(double));
    *rank_out = lower_bound(z, *score_out, m, mlen);
    return 1;
}

static int index_score(const struct zobj *z, const uint8_t *m, size_t mlen, double *score_out)
{
    size_t rank;
    return find_member(z, m, mlen, score_out, &rank);
}

int store__zobj_has(const struct zobj *z, const uint8_t *m, size_t mlen)
{
    double score;
    return index_score(z, m, mlen, &score);
}

static void full_insert(struct zobj *z, double score, const uint8_t *m, size_t mlen)
{
    HY_ASSERT(store__hobj_set(z->index, m, mlen, (const uint8_t *)&score, sizeof(score)) == 1);
    zsl_insert(z, score, m, mlen);
}

/* Moves a compact set into the full encoding, for good. */
static void convert_full(struct zobj *z)
{
    HY_ASSERT(z->index == NULL);
    struct zobj old = *z;
    z->index = store__hobj_new(old.x.seed);
    z->u.sl = zsl_new(old.x.seed);
    z->count = z->cap = 0;
    z->x.elem_bytes = 0;
    size_t off = 0;
    for (size_t i = 0; i < old.count; i++) {
        double sc;
        const uint8_t *m;
        size_t mlen;
        off = crec_read(&old, off, &sc, &m, &mlen);
        full_insert(z, sc, m, mlen);
    }
    hy_free(old.u.lp);
}

void store__zobj_put(struct zobj *z, double score, const uint8_t *m, size_t mlen,
                     const struct store_encoding *enc)
{
    HY_ASSERT(!isnan(score) && mlen <= UINT32_MAX);
    if (enc == NULL) {
        enc = &zenc_default;
    }
    if (z->index == NULL &&
        ((int64_t)z->count + 1 > enc->zset_entries || (int64_t)mlen > enc->zset_value)) {
        convert_full(z);
    }
    if (z->index != NULL) {
        full_insert(z, score, m, mlen);
        return;
    }
    size_t off = coff_of(z, lower_bound(z, score, m, mlen));
    size_t size = crec_size(score, mlen);
    csplice(z, off, 0, size);
    crec_write(z->u.lp + off, score, m, mlen);
    z->count++;
}

void store__zobj_insert(struct zobj *z, double score, const uint8_t *m, size_t mlen)
{
    store__zobj_put(z, score, m, mlen, NULL);
}

/* Removes the element at rank (its index entry too). */
static void remove_at(struct zobj *z, size_t rank)
{
    if (z->index == NULL) {
        double sc;
        const uint8_t *m;
        size_t mlen;
        size_t off = coff_of(z, rank);
        size_t next = crec_read(z, off, &sc, &m, &mlen);
        csplice(z, off, next - off, 0);
        z->count--;
        return;
    }
    zsl_remove_rank(z, rank);
}

static int64_t rank_of(const struct zobj *z, const uint8_t *m, size_t mlen)
{
    double score;
    size_t rank;
    if (!find_member(z, m, mlen, &score, &rank)) {
        return -1;
    }
    HY_ASSERT(rank < z->count);
    return (int64_t)rank;
}

/* A compact copy of full set z when it fits enc's bounds (Redis's
 * zsetConvertToListpackIfNeeded, for the results of the STORE commands); else z itself. */
static struct zobj *shrink_if_small(struct zobj *z, const struct store_encoding *enc, uint64_t seed)
{
    if (z->index == NULL || (int64_t)z->count > enc->zset_entries) {
        return z;
    }
    const struct znode *first = z->u.sl->head->lv[0].next;
    for (const struct znode *n = first; n != NULL; n = n->lv[0].next) {
        if ((int64_t)n->len > enc->zset_value) {
            return z;
        }
    }
    struct zobj *c = store__zobj_new(seed);
    for (const struct znode *n = first; n != NULL; n = n->lv[0].next) {
        store__zobj_put(c, n->score, zn_data(n), n->len, enc);
    }
    HY_ASSERT(c->index == NULL);
    store__zobj_free(z);
    return c;
}

/* The skiplist's invariants (store__zobj_check): O(n * levels). */
static void zsl_check(const struct zobj *z)
{
    const struct zsl *sl = z->u.sl;
    HY_ASSERT(sl->level >= 1 && sl->level <= ZSL_LEVELS);
    size_t n = 0, bytes = 0;
    const struct znode *prev = NULL;
    for (const struct znode *x = sl->head->lv[0].next; x != NULL; prev = x, x = x->lv[0].next) {
        double score;
        HY_ASSERT(x->back == prev && x->height >= 1 && x->height <= sl->level);
        HY_ASSERT(!isnan(x->score) && index_score(z, zn_data(x), x->len, &score));
        HY_ASSERT(score == x->score || (isinf(score) && isinf(x->score)));
        HY_ASSERT(prev == NULL || zn_cmp(prev, x->score, zn_data(x), x->len) < 0);
        bytes += hy_alloc_size(x);
        n++;
    }
    HY_ASSERT(n == z->count && bytes == z->x.elem_bytes && sl->tail == prev);
    /* Every link of level i jumps exactly its span of level-0 steps, over nodes lower than i + 1,
     * and a last link spans the ranks left to the end. */
    for (uint32_t i = 0; i < sl->level; i++) {
        const struct znode *x = sl->head;
        size_t rank = 0;
        for (;;) {
            const struct znode *y = x->lv[0].next;
            size_t steps = 1;
            for (; y != x->lv[i].next; y = y->lv[0].next, steps++) {
                HY_ASSERT(y != NULL && y->height <= i);
            }
            if (y == NULL) {
                HY_ASSERT(x->lv[i].span == steps - 1 && steps - 1 == z->count - rank);
                break;
            }
            HY_ASSERT(x->lv[i].span == steps);
            rank += steps;
            x = y;
        }
    }
}

void store__zobj_check(const struct zobj *z)
{
    if (z->index == NULL) {
        HY_ASSERT((z->u.lp == NULL) == (z->cap == 0));
        size_t off = 0;
        double prev = 0;
        const uint8_t *pm = NULL;
        size_t plen = 0;
        for (size_t i = 0; i < z->count; i++) {
            double sc;
            const uint8_t *m;
            size_t mlen;
            HY_ASSERT(off < z->cap);
            off = crec_read(z, off, &sc, &m, &mlen);
            HY_ASSERT(!isnan(sc) && off <= z->cap);
            HY_ASSERT(i == 0 || key_cmp(prev, pm, plen, sc, m, mlen) < 0);
            prev = sc;
            pm = m;
            plen = mlen;
        }
        HY_ASSERT(off == z->cap);
        return;
    }
    HY_ASSERT(z->cap == 0 && store__hobj_count(z->index) == z->count);
    zsl_check(z);
}

/* ---- the read API (store.h) ----------------------------------------------------------------- */

struct zobj *store__zobj(const struct store_obj *e)
{
    HY_ASSERT(se_type(e) == STORE_ZSET);
    return store__vobj(e);
}

size_t store_zset_len(const struct store_obj *o)
{
    return store__zobj(o)->count;
}

void store_zset_at(const struct store_obj *o, size_t rank, double *score_out, const uint8_t **m_out,
                   size_t *mlen_out)
{
    store__zobj_at(store__zobj(o), rank, score_out, m_out, mlen_out);
}

/* A compact set's ranks [lo, hi) backwards: their offsets first, records being forward only. */
static void crange_rev(const struct zobj *z, size_t lo, size_t hi, store_zmember_cb cb, void *ctx)
{
    size_t small[128], *offs = hi - lo <= 128 ? small : hy_xmalloc((hi - lo) * sizeof(*offs));
    size_t off = coff_of(z, lo);
    double sc;
    const uint8_t *m;
    size_t mlen;
    for (size_t i = lo; i < hi; i++) {
        offs[i - lo] = off;
        off = crec_read(z, off, &sc, &m, &mlen);
    }
    for (size_t i = hi; i-- > lo;) {
        crec_read(z, offs[i - lo], &sc, &m, &mlen);
        cb(ctx, m, mlen, sc);
    }
    if (offs != small) {
        hy_free(offs);
    }
}

void store_zset_range(const struct store_obj *o, size_t lo, size_t hi, int rev, store_zmember_cb cb,
                      void *ctx)
{
    const struct zobj *z = store__zobj(o);
    HY_ASSERT(lo <= hi && hi <= z->count);
    if (lo == hi) {
        return;
    }
    if (z->index == NULL && rev) {
        crange_rev(z, lo, hi, cb, ctx);
    } else if (z->index == NULL) {
        size_t off = coff_of(z, lo);
        for (size_t i = lo; i < hi; i++) {
            double sc;
            const uint8_t *m;
            size_t mlen;
            off = crec_read(z, off, &sc, &m, &mlen);
            cb(ctx, m, mlen, sc);
        }
    } else {
        const struct znode *n = zsl_at(z, rev ? hi - 1 : lo);
        for (size_t i = lo; i < hi; i++, n = rev ? n->back : n->lv[0].next) {
            cb(ctx, zn_data(n), n->len, n->score);
        }
    }
}

int store_zset_score(const struct store_obj *o, const uint8_t *m, size_t mlen, double *score_out)
{
    return index_score(store__zobj(o), m, mlen, score_out);
}

int64_t store_zset_rank(const struct store_obj *o, const uint8_t *m, size_t mlen)
{
    return rank_of(store__zobj(o), m, mlen);
}

int store_zscore_parse(const uint8_t *p, size_t len, double *out)
{
    long double v;
    if (!hy_parse_double(p, len, 1, &v)) {
        return 0;
    }
    *out = (double)v;
    return !isnan(*out);
}

static int score_bound_parse(const uint8_t *p, size_t len, double *v, int *ex)
{
    *ex = len > 0 && p[0] == '(';
    if (*ex) {
        p++;
        len--;
    }
    return store_zscore_parse(p, len, v);
}

int store_zscore_range_parse(const uint8_t *min, size_t minlen, const uint8_t *max, size_t maxlen,
                             struct store_zscore_range *out)
{
    return score_bound_parse(min, minlen, &out->min, &out->minex) &&
           score_bound_parse(max, maxlen, &out->max, &out->maxex);
}

static int lex_bound_parse(const uint8_t *p, size_t len, const uint8_t **v, size_t *vlen, int *kind)
{
    if (len == 0) {
        return 0;
    }
    *v = p + 1;
    *vlen = len - 1;
    switch (p[0]) {
    case '[': *kind = 0; return 1;
    case '(': *kind = 1; return 1;
    case '-': *kind = 2; return len == 1;
    case '+': *kind = 3; return len == 1;
    default: return 0;
    }
}

int store_zlex_range_parse(const uint8_t *min, size_t minlen, const uint8_t *max, size_t maxlen,
                           struct store_zlex_range *out)
{
    return lex_bound_parse(min, minlen, &out->min, &out->minlen, &out->min_kind) &&
           lex_bound_parse(max, maxlen, &out->max, &out->maxlen, &out->max_kind);
}

static double zscore_at(const struct zobj *z, size_t rank)
{
    double sc;
    const uint8_t *m;
    size_t mlen;
    store__zobj_at(z, rank, &sc, &m, &mlen);
    return sc;
}

struct zbound {
    double score;
    const uint8_t *p;
    size_t len;
    int after;
};

static int before_score(const struct znode *n, const void *ctx)
{
    const struct zbound *b = ctx;
    return b->after ? n->score <= b->score : n->score < b->score;
}

static int before_lex(const struct znode *n, const void *ctx)
{
    const struct zbound *b = ctx;
    int c = bytes_cmp(zn_data(n), n->len, b->p, b->len);
    return b->after ? c <= 0 : c < 0;
}

/* The first rank whose score is above (strictly: `after`) the bound. */
static size_t score_rank(const struct zobj *z, double bound, int after)
{
    if (z->index != NULL) {
        struct zbound b = {bound, NULL, 0, after};
        return zsl_count(z->u.sl, before_score, &b);
    }
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        double sc = zscore_at(z, mid);
        if (after ? sc <= bound : sc < bound) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void score_span(const struct zobj *z, const struct store_zscore_range *r, size_t *lo,
                       size_t *hi)
{
    *lo = score_rank(z, r->min, r->minex);
    *hi = score_rank(z, r->max, !r->maxex);
    if (*hi < *lo) {
        *hi = *lo;
    }
}

void store_zset_score_span(const struct store_obj *o, const struct store_zscore_range *r,
                           size_t *lo_out, size_t *hi_out)
{
    score_span(store__zobj(o), r, lo_out, hi_out);
}

/* The first rank whose member is above (strictly: `after`) the lex bound. */
static size_t lex_rank(const struct zobj *z, const uint8_t *p, size_t len, int kind, int after)
{
    if (kind == 2) {
        return 0;
    }
    if (kind == 3) {
        return z->count;
    }
    if (z->index != NULL) {
        struct zbound b = {0, p, len, after};
        return zsl_count(z->u.sl, before_lex, &b);
    }
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        double sc;
        const uint8_t *m;
        size_t mlen;
        store__zobj_at(z, mid, &sc, &m, &mlen);
        int c = bytes_cmp(m, mlen, p, len);
        if (after ? c <= 0 : c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void lex_span(const struct zobj *z, const struct store_zlex_range *r, size_t *lo, size_t *hi)
{
    *lo = lex_rank(z, r->min, r->minlen, r->min_kind, r->min_kind == 1);
    *hi = lex_rank(z, r->max, r->maxlen, r->max_kind, r->max_kind == 0);
    if (r->min_kind == 3 || r->max_kind == 2 || *hi < *lo) {
        *hi = *lo; /* "+" as a minimum or "-" as a maximum: nothing in between */
    }
}

void store_zset_lex_span(const struct store_obj *o, const struct store_zlex_range *r,
                         size_t *lo_out, size_t *hi_out)
{
    lex_span(store__zobj(o), r, lo_out, hi_out);
}

/* ---- ops ------------------------------------------------------------------------------------ */

/* obj_bytes follows the object's size across a change; an emptied set's key goes. */
static void change_end(struct store *s, struct store_obj *o, size_t before)
{
    struct zobj *z = store__zobj(o);
    s->obj_bytes = s->obj_bytes - before + store__zobj_bytes(z);
    if (z->count == 0) {
        store__delete(s, o);
    }
}

static void r_score(struct resp_writer *w, double score)
{
    if (w != NULL) {
        resp_write_double(w, score);
    }
}

static void r_array(struct resp_writer *w, size_t n)
{
    if (w != NULL) {
        resp_write_array(w, n);
    }
}

/* Moves member m (present, at score cur) to score. The full encoding relinks its node: one
 * walk to take it out, one to put it back, the index's value rewritten in place. */
static void set_score(struct zobj *z, double cur, double score, const uint8_t *m, size_t mlen,
                      const struct store_encoding *enc)
{
    if (z->index == NULL) {
        remove_at(z, (size_t)rank_of(z, m, mlen));
        store__zobj_put(z, score, m, mlen, enc);
        return;
    }
    struct znode *n = zsl_take_key(z, cur, m, mlen);
    n->score = score;
    zsl_link(z, n);
    HY_ASSERT(store__hobj_set(z->index, m, mlen, (const uint8_t *)&score, sizeof(score)) == 0);
}

/* Removes member m; returns 0 when it is absent. */
static int remove_member(struct zobj *z, const uint8_t *m, size_t mlen)
{
    double cur;
    if (z->index == NULL) {
        int64_t rank = rank_of(z, m, mlen);
        if (rank >= 0) {
            remove_at(z, (size_t)rank);
        }
        return rank >= 0;
    }
    if (!index_score(z, m, mlen, &cur)) {
        return 0;
    }
    hy_free(zsl_take_key(z, cur, m, mlen));
    HY_ASSERT(store__hobj_del(z->index, m, mlen) == 1);
    return 1;
}

struct zadd_result {
    int64_t added, updated, processed;
    double last; /* INCR: the member's score after the op */
};

/* One (score, member) pair of ZADD; returns 0 on a NaN result (nothing changed for it). */
static int zadd_one(struct zobj *z, uint32_t flags, double score, const uint8_t *m, size_t mlen,
                    struct zadd_result *r, const struct store_encoding *enc)
{
    double cur;
    if (!index_score(z, m, mlen, &cur)) {
        if (!(flags & STORE_F_XX)) {
            store__zobj_put(z, score, m, mlen, enc);
            r->added++;
            r->processed++;
            r->last = score;
        }
        return 1;
    }
    if (flags & STORE_F_NX) {
        return 1;
    }
    if (flags & STORE_F_INCR) {
        score += cur;
        if (isnan(score)) {
            return 0;
        }
    }
    if (((flags & STORE_F_LT) && score >= cur) || ((flags & STORE_F_GT) && score <= cur)) {
        return 1;
    }
    r->processed++;
    r->last = score;
    if (score != cur) {
        set_score(z, cur, score, m, mlen, enc);
        r->updated++;
    }
    return 1;
}

void store__op_zadd(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    for (uint32_t i = 1; i + 1 < e->argc; i += 2) {
        double score;
        if (!store_zscore_parse(ARG(e, i), &score)) {
            store__r_err(w, "ERR value is not a valid float");
            return;
        }
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_ZSET, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    struct zadd_result r = {0, 0, 0, 0};
    int nan = 0;
    if (o == NULL && !(e->flags & STORE_F_XX)) {
        o = store__entry_new(STORE_ZSET, -1, ARG(e, 0), 0);
        store__set_vobj(o, store__zobj_new(s->hash_seed));
        o->lru = store__lru_of(e);
        store__link(s, o);
    }
    if (o != NULL) {
        size_t before = store__zobj_bytes(store__zobj(o));
        for (uint32_t i = 1; i + 1 < e->argc && !nan; i += 2) {
            double score;
            HY_ASSERT(store_zscore_parse(ARG(e, i), &score));
            nan = !zadd_one(store__zobj(o), e->flags, score, ARG(e, i + 1), &r, &s->cfg.encoding);
        }
        change_end(s, o, before);
    }
    if (nan) {
        store__r_err(w, "ERR resulting score is not a number (NaN)");
    } else if (e->flags & STORE_F_INCR) {
        r.processed > 0 ? r_score(w, r.last) : store__r_null(w);
    } else {
        store__r_int(w, r.added + ((e->flags & STORE_F_CH) ? r.updated : 0));
    }
}

void store__op_zrem(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_ZSET, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    int64_t removed = 0;
    if (o != NULL) {
        struct zobj *z = store__zobj(o);
        size_t before = store__zobj_bytes(z);
        for (uint32_t i = 1; i < e->argc; i++) {
            removed += remove_member(z, ARG(e, i));
        }
        change_end(s, o, before);
    }
    store__r_int(w, removed);
}

/* Pops n members from one end, replying each as [member, score] (nested: an array of two). */
static void pop_n(struct store *s, struct store_obj *o, size_t n, int right, int nested,
                  struct resp_writer *w)
{
    struct zobj *z = store__zobj(o);
    size_t before = store__zobj_bytes(z);
    for (size_t i = 0; i < n; i++) {
        size_t rank = right ? z->count - 1 : 0;
        if (nested) {
            r_array(w, 2);
        }
        double sc;
        const uint8_t *m;
        size_t mlen;
        store__zobj_at(z, rank, &sc, &m, &mlen);
        store__r_bulk(w, m, mlen);
        r_score(w, sc);
        remove_at(z, rank);
    }
    change_end(s, o, before);
}

void store__op_zpop(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if (e->incr < -1) {
        store__r_err(w, "ERR value is out of range, must be positive");
        return;
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_ZSET, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL || e->incr == 0) {
        r_array(w, 0);
        return;
    }
    size_t n = e->incr < 0 ? 1 : HY_MIN((uint64_t)e->incr, store__zobj(o)->count);
    /* RESP3 with a count: one [member, score] pair per pop; otherwise a flat array. */
    int nested = w != NULL && w->proto >= 3 && e->incr >= 0;
    r_array(w, nested ? n : n * 2);
    pop_n(s, o, n, (e->flags & STORE_F_RIGHT) != 0, nested, w);
}

void store__op_zmpop(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if (e->incr < 1) {
        store__r_err(w, "ERR count should be greater than 0");
        return;
    }
    for (uint32_t i = 0; i < e->argc; i++) {
        int wrong;
        struct store_obj *o = store__lookup_typed(STORE_ZSET, s, e, i, w, &wrong);
        if (wrong) {
            return;
        }
        if (o == NULL) {
            continue;
        }
        size_t n = HY_MIN((uint64_t)e->incr, store__zobj(o)->count);
        if (e->flags & STORE_F_FLAT) {
            /* BZPOPMIN/BZPOPMAX: [key, member, score] */
            r_array(w, 3);
            store__r_bulk(w, ARG(e, i));
            pop_n(s, o, 1, (e->flags & STORE_F_RIGHT) != 0, 0, w);
            return;
        }
        r_array(w, 2);
        store__r_bulk(w, ARG(e, i));
        r_array(w, n);
        pop_n(s, o, n, (e->flags & STORE_F_RIGHT) != 0, 1, w);
        return;
    }
    if (w != NULL) {
        resp_write_null_array(w);
    }
}

/* Resolves ZREMRANGEBYRANK's start/stop to ranks [lo, hi). */
static void rank_span(int64_t start, int64_t stop, size_t count, size_t *lo, size_t *hi)
{
    int64_t len = (int64_t)count;
    start = start < 0 ? HY_MAX(start + len, 0) : start;
    stop = stop < 0 ? stop + len : stop;
    if (start > stop || start >= len) {
        *lo = *hi = 0;
        return;
    }
    *lo = (size_t)start;
    *hi = (size_t)HY_MIN(stop, len - 1) + 1;
}

/* Parses the range of a ZREMRANGE entry, or replies Redis's error and returns 0. */
static int zremrange_parse(const struct store_entry *e, int64_t *start, int64_t *stop,
                           struct store_zscore_range *sr, struct store_zlex_range *lr,
                           struct resp_writer *w)
{
    switch (e->incr) {
    case 0:
        if (!hy_parse_i64(ARG(e, 1), start) || !hy_parse_i64(ARG(e, 2), stop)) {
            store__r_err(w, STORE_ERR_NOT_INT);
            return 0;
        }
        return 1;
    case 1:
        if (!store_zscore_range_parse(ARG(e, 1), ARG(e, 2), sr)) {
            store__r_err(w, "ERR min or max is not a float");
            return 0;
        }
        return 1;
    case 2:
        if (!store_zlex_range_parse(ARG(e, 1), ARG(e, 2), lr)) {
            store__r_err(w, "ERR min or max not valid string range item");
            return 0;
        }
        return 1;
    default: store__r_err(w, "ERR syntax error"); return 0;
    }
}

void store__op_zremrange(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int64_t start = 0, stop = 0;
    struct store_zscore_range sr;
    struct store_zlex_range lr;
    if (!zremrange_parse(e, &start, &stop, &sr, &lr, w)) {
        return;
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_ZSET, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    size_t lo = 0, hi = 0;
    if (o != NULL) {
        struct zobj *z = store__zobj(o);
        if (e->incr == 0) {
            rank_span(start, stop, z->count, &lo, &hi);
        } else if (e->incr == 1) {
            score_span(z, &sr, &lo, &hi);
        } else {
            lex_span(z, &lr, &lo, &hi);
        }
        size_t before = store__zobj_bytes(z);
        for (size_t i = hi; i-- > lo;) {
            remove_at(z, i);
        }
        change_end(s, o, before);
    }
    store__r_int(w, (int64_t)(hi - lo));
}

/* ---- ZUNION, ZINTER, ZDIFF (and their STORE forms) ----------------------------------------- */

/* The score of m in a source (a set counts 1.0 per member); 0 when absent. */
static int source_score(const struct store_obj *src, const uint8_t *m, size_t mlen, double *out)
{
    if (src == NULL) {
        return 0;
    }
    if (se_type(src) == STORE_ZSET) {
        return index_score(store__zobj(src), m, mlen, out);
    }
    const uint8_t *v;
    size_t vlen;
    *out = 1.0;
    return store__hobj_get(store__hobj(src), m, mlen, &v, &vlen);
}

static size_t source_len(const struct store_obj *src)
{
    if (src == NULL) {
        return 0;
    }
    return se_type(src) == STORE_ZSET ? store__zobj(src)->count
                                      : store__hobj_count(store__hobj(src));
}

static double weighted(double score, double weight)
{
    double v = score * weight;
    return isnan(v) ? 0.0 : v; /* 0 * inf: Redis counts 0 */
}

static double aggregate(double acc, double v, enum store_zaggr aggr)
{
    if (aggr == STORE_ZAGGR_MIN) {
        return v < acc ? v : acc;
    }
    if (aggr == STORE_ZAGGR_MAX) {
        return v > acc ? v : acc;
    }
    double sum = acc + v;
    return isnan(sum) ? 0.0 : sum; /* inf + -inf */
}

struct combine {
    struct hobj *acc; /* member -> score being built */
    const struct store_obj *const *srcs;
    const double *weights;
    size_t n, self; /* self: the source being walked */
    enum store_zop op;
    enum store_zaggr aggr;
    uint64_t limit; /* INTER: stop after this many (0 = all) */
};

static void acc_put(struct hobj *acc, const uint8_t *m, size_t mlen, double score)
{
    store__hobj_set(acc, m, mlen, (const uint8_t *)&score, sizeof(score));
}

/* Visits one member of source c->self with its score. */
static void combine_member(struct combine *c, const uint8_t *m, size_t mlen, double score)
{
    double v = weighted(score, c->weights[c->self]);
    if (c->op == STORE_ZUNION) {
        double cur;
        const uint8_t *p;
        size_t plen;
        if (store__hobj_get(c->acc, m, mlen, &p, &plen)) {
            memcpy(&cur, p, sizeof(cur));
            v = aggregate(cur, v, c->aggr);
        }
        acc_put(c->acc, m, mlen, v);
        return;
    }
    if (c->limit > 0 && store__hobj_count(c->acc) >= c->limit) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        double other;
        if (i == c->self) {
            continue;
        }
        int in = source_score(c->srcs[i], m, mlen, &other);
        if (c->op == STORE_ZDIFF && in) {
            return;
        }
        if (c->op == STORE_ZINTER) {
            if (!in) {
                return;
            }
            v = aggregate(v, weighted(other, c->weights[i]), c->aggr);
        }
    }
    acc_put(c->acc, m, mlen, c->op == STORE_ZDIFF ? score : v);
}

static void combine_set_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    combine_member(ctx, m, mlen, 1.0);
}

static void combine_walk(struct combine *c, size_t i)
{
    const struct store_obj *src = c->srcs[i];
    c->self = i;
    if (src == NULL) {
        return;
    }
    if (se_type(src) == STORE_SET) {
        store__hobj_foreach(store__hobj(src), combine_set_cb, c);
        return;
    }
    const struct zobj *z = store__zobj(src);
    for (size_t k = 0; k < z->count; k++) {
        double sc;
        const uint8_t *m;
        size_t mlen;
        store__zobj_at(z, k, &sc, &m, &mlen);
        combine_member(c, m, mlen, sc);
    }
}

static void build_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    double score;
    HY_ASSERT(vlen == sizeof(double));
    memcpy(&score, v, sizeof(double));
    zsl_insert(ctx, score, m, mlen);
}

/* Turns an accumulated member -> score index into a sorted set (the index is kept). */
static struct zobj *zobj_from_index(struct hobj *acc, uint64_t seed)
{
    struct zobj *z = hy_xcalloc(1, sizeof(*z));
    z->index = acc;
    z->u.sl = zsl_new(seed);
    store__hobj_foreach(acc, build_cb, z);
    return z;
}

static struct zobj *zcombine(const struct store_obj *const *srcs, const double *weights, size_t n,
                             enum store_zop op, enum store_zaggr aggr, uint64_t limit,
                             uint64_t seed)
{
    struct combine c = {store__hobj_new(seed), srcs, weights, n, 0, op, aggr, limit};
    if (op == STORE_ZUNION) {
        for (size_t i = 0; i < n; i++) {
            combine_walk(&c, i);
        }
    } else if (op == STORE_ZDIFF) {
        combine_walk(&c, 0);
    } else {
        size_t smallest = 0;
        int missing = 0;
        for (size_t i = 0; i < n; i++) {
            missing |= srcs[i] == NULL;
            if (source_len(srcs[i]) < source_len(srcs[smallest])) {
                smallest = i;
            }
        }
        if (!missing) {
            combine_walk(&c, smallest);
        }
    }
    return zobj_from_index(c.acc, seed);
}

struct store_ztmp *store_zcombine(const struct store_obj *const *srcs, const double *weights,
                                  size_t n, enum store_zop op, enum store_zaggr aggr,
                                  uint64_t limit)
{
    return (struct store_ztmp *)zcombine(srcs, weights, n, op, aggr, limit, 0);
}

size_t store_ztmp_len(const struct store_ztmp *t)
{
    return ((const struct zobj *)t)->count;
}

void store_ztmp_at(const struct store_ztmp *t, size_t rank, double *score_out,
                   const uint8_t **m_out, size_t *mlen_out)
{
    store__zobj_at((const struct zobj *)t, rank, score_out, m_out, mlen_out);
}

void store_ztmp_free(struct store_ztmp *t)
{
    store__zobj_free((struct zobj *)t);
}

/* [dst, k1..kn, w1..wn]; incr = op + 4 * aggregate. */
void store__op_zstore(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    size_t n = (e->argc - 1) / 2;
    int64_t op = e->incr & 3, aggr = e->incr >> 2;
    if (e->incr < 0 || op > STORE_ZDIFF || aggr > STORE_ZAGGR_MAX) {
        store__r_err(w, "ERR syntax error");
        return;
    }
    double *weights = hy_xmalloc(HY_MAX(n, 1) * sizeof(*weights));
    const struct store_obj **srcs = hy_xmalloc(HY_MAX(n, 1) * sizeof(*srcs));
    for (size_t i = 0; i < n; i++) {
        if (!store_zscore_parse(ARG(e, (uint32_t)(1 + n + i)), &weights[i])) {
            store__r_err(w, "ERR weight value is not a float");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct store_obj *o = store__lookup_write(s, ARG(e, (uint32_t)(1 + i)), e->time_ms);
        if (o != NULL && se_type(o) != STORE_ZSET && se_type(o) != STORE_SET) {
            store__r_err(w, STORE_ERR_WRONGTYPE);
            goto out;
        }
        srcs[i] = o;
    }
    struct zobj *z =
        zcombine(srcs, weights, n, (enum store_zop)op, (enum store_zaggr)aggr, 0, s->hash_seed);
    z = shrink_if_small(z, &s->cfg.encoding, s->hash_seed);
    /* The sources are read; the destination is replaced whatever its type. */
    struct store_obj *dst = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (dst != NULL) {
        store__delete(s, dst);
    }
    size_t count = z->count;
    if (count == 0) {
        store__zobj_free(z);
    } else {
        struct store_obj *o = store__entry_new(STORE_ZSET, -1, ARG(e, 0), 0);
        store__set_vobj(o, z);
        o->lru = store__lru_of(e);
        store__link(s, o);
    }
    store__r_int(w, (int64_t)count);
out:
    hy_free(weights);
    hy_free(srcs);
}

/* ---- ZRANGESTORE ---------------------------------------------------------------------------- */

struct zrs_range {
    int64_t kind; /* 0 rank, 1 score, 2 lex */
    int64_t start, stop, offset, limit;
    struct store_zscore_range sr;
    struct store_zlex_range lr;
};

static int zrs_parse(const struct store_entry *e, struct zrs_range *q, struct resp_writer *w)
{
    q->kind = e->incr;
    if (!hy_parse_i64(ARG(e, 4), &q->offset) || !hy_parse_i64(ARG(e, 5), &q->limit) ||
        (q->kind == 0 &&
         (!hy_parse_i64(ARG(e, 2), &q->start) || !hy_parse_i64(ARG(e, 3), &q->stop)))) {
        store__r_err(w, STORE_ERR_NOT_INT);
        return 0;
    }
    if (q->kind == 1 && !store_zscore_range_parse(ARG(e, 2), ARG(e, 3), &q->sr)) {
        store__r_err(w, "ERR min or max is not a float");
        return 0;
    }
    if (q->kind == 2 && !store_zlex_range_parse(ARG(e, 2), ARG(e, 3), &q->lr)) {
        store__r_err(w, "ERR min or max not valid string range item");
        return 0;
    }
    if (q->kind < 0 || q->kind > 2) {
        store__r_err(w, "ERR syntax error");
        return 0;
    }
    return 1;
}

/* The members of src selected by the range, in a new sorted set. */
static struct zobj *zrs_select(const struct zobj *src, const struct zrs_range *q, int rev,
                               uint64_t seed, const struct store_encoding *enc)
{
    size_t lo = 0, hi = 0, skip = 0, n;
    if (q->kind == 0) {
        int64_t len = (int64_t)src->count, start = q->start, stop = q->stop;
        start = start < 0 ? HY_MAX(start + len, 0) : start;
        stop = stop < 0 ? stop + len : stop;
        if (start <= stop && start < len) {
            stop = HY_MIN(stop, len - 1);
            lo = (size_t)(rev ? len - 1 - stop : start);
            hi = (size_t)(rev ? len - start : stop + 1);
        }
    } else if (q->kind == 1) {
        score_span(src, &q->sr, &lo, &hi);
    } else {
        lex_span(src, &q->lr, &lo, &hi);
    }
    n = hi - lo;
    if (q->kind != 0) {
        if (q->offset < 0) {
            n = 0;
        } else {
            skip = (size_t)HY_MIN((uint64_t)q->offset, n);
            n -= skip;
            n = q->limit >= 0 ? (size_t)HY_MIN((uint64_t)q->limit, n) : n;
        }
    }
    struct zobj *z = store__zobj_new(seed);
    for (size_t i = 0; i < n; i++) {
        double sc;
        const uint8_t *m;
        size_t mlen;
        store__zobj_at(src, rev ? hi - 1 - skip - i : lo + skip + i, &sc, &m, &mlen);
        store__zobj_put(z, sc, m, mlen, enc);
    }
    return z;
}

/* [dst, src, min, max, offset, limit]; incr = 0 rank, 1 score, 2 lex; RIGHT = REV. */
void store__op_zrangestore(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct zrs_range q;
    if (!zrs_parse(e, &q, w)) {
        return;
    }
    int wrong;
    struct store_obj *src = store__lookup_typed(STORE_ZSET, s, e, 1, w, &wrong);
    if (wrong) {
        return;
    }
    struct zobj *z = src != NULL ? zrs_select(store__zobj(src), &q, (e->flags & STORE_F_RIGHT) != 0,
                                              s->hash_seed, &s->cfg.encoding)
                                 : store__zobj_new(s->hash_seed);
    struct store_obj *dst = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (dst != NULL) {
        store__delete(s, dst);
    }
    size_t count = z->count;
    if (count == 0) {
        store__zobj_free(z);
    } else {
        struct store_obj *o = store__entry_new(STORE_ZSET, -1, ARG(e, 0), 0);
        store__set_vobj(o, z);
        o->lru = store__lru_of(e);
        store__link(s, o);
    }
    store__r_int(w, (int64_t)count);
}
