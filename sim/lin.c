/*
 * lin.c - black-box linearizability checking of the client history: Wing & Gong's search with
 * Lowe's memoization of (linearized set, model state) pairs. The model is one integer register
 * per key; keys are checked independently since linearizability is local (P-compositional,
 * Herlihy & Wing). The checker sees only what clients saw: calls, returns and results.
 *
 * An unanswered write (timed out, or answered after the client gave up) is indeterminate: it may
 * take effect at any point after its call, or never, and its result is unknown. An unanswered
 * read has no effect and constrains nothing, so it is dropped. The search places only completed
 * ops one by one; before each it may place a "block" of indeterminate ops. That is complete
 * because of three facts about this model, each of which turns one linearization into another:
 *  - a completed op's own result fixes the state after it (GET w: w; INCR: its result; DEL:
 *    absent; SET: its value), so indeterminate ops only matter through the state they leave
 *    right before a completed op, and the block can be cut to its last overwrite (an
 *    indeterminate SET or DEL) plus the INCRs after it: the ops cut simply never took effect;
 *  - indeterminate ops with the same effect (every INCR, every DEL, SETs of one value) are
 *    interchangeable because their returns are all at infinity, so each class is used in call
 *    order: k of them give k + 1 choices instead of 2^k;
 *  - an indeterminate SET none of whose reachable values (arg .. arg + m, m = the key's INCR
 *    count) any completed op observed can only be seen through presence (a DEL's count of 1);
 *    all such SETs form one "opaque" class, which no completed GET or INCR accepts.
 * The search has a step budget; running out is "inconclusive", which the caller must treat as a
 * failure, never as a pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "sim.h"

#define LIN_NONE SIZE_MAX

enum lin_kind { LIN_ABSENT, LIN_VALUE, LIN_OPAQUE };

struct lin_state {
    int64_t kind; /* enum lin_kind; 64 bits wide because it is part of the memo key */
    int64_t value;
};

/* Indeterminate ops of one effect, in call order; the first `taken` are linearized. Class 0 holds
 * the INCRs; the others are a DEL, an opaque SET or a SET of one value. */
struct lin_class {
    int kind;
    int opaque;
    int64_t arg;
    size_t *members;
    size_t count;
    size_t taken;
};

/* One call or return of a completed op in the doubly linked list the search lifts entries out
 * of; indeterminate ops are not in it since their returns are at infinity. */
struct lin_entry {
    int is_call;
    size_t op;
    uint64_t time;
    struct lin_entry *match; /* call <-> return */
    struct lin_entry *prev, *next;
};

struct lin_cache {
    uint64_t *slots;
    uint8_t *used;
    size_t cap;
    size_t count;
    size_t words;
};

/* Indeterminate ops placed right before a completed op: the first untaken member of class w
 * (LIN_NONE: no overwrite), then the first j untaken INCRs. */
struct lin_block {
    size_t w;
    size_t j;
};

struct lin_search {
    const struct sim_op *ops; /* sorted by call */
    size_t n;
    struct lin_entry *ents; /* 2n + 1: ents[2n] is the list's sentinel */
    struct lin_entry *head;
    struct lin_class *cls;
    size_t ncls;
    uint64_t *key; /* memo key: linearized bitmap then the state (2 words) */
    size_t words;
    struct lin_cache cache;
    struct lin_state state;
    uint64_t steps;
    uint64_t steps_max;
};

/* Applies op to s; returns 0 when a completed op's recorded result contradicts the model.
 * Indeterminate ops reach here only through apply_block (opaque SETs never do). */
static int step_model(const struct sim_op *op, const struct lin_state *s, struct lin_state *out)
{
    *out = *s;
    switch (op->kind) {
    case SIM_OP_GET:
        return op->has_value ? s->kind == LIN_VALUE && s->value == op->value
                             : s->kind == LIN_ABSENT;
    case SIM_OP_SET: *out = (struct lin_state){LIN_VALUE, op->arg}; return 1;
    case SIM_OP_INCR:
        /* On an opaque state the result would have revealed a value nobody observed. */
        *out = (struct lin_state){LIN_VALUE, s->kind == LIN_VALUE ? s->value + 1 : 1};
        return s->kind != LIN_OPAQUE && (!op->done || out->value == op->value);
    case SIM_OP_DEL:
        *out = (struct lin_state){LIN_ABSENT, 0};
        return !op->done || op->value < 0 || op->value == (s->kind != LIN_ABSENT);
    case SIM_OP_TOUCH: return !op->done || op->value == (s->kind != LIN_ABSENT);
    }
    return 0;
}

static uint64_t hash_words(const uint64_t *w, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static void cache_grow(struct lin_cache *c);

/* Inserts key (c->words long); returns 0 when it was already there. */
static int cache_insert(struct lin_cache *c, const uint64_t *key)
{
    if ((c->count + 1) * 2 > c->cap) {
        cache_grow(c);
    }
    size_t i = hash_words(key, c->words) & (c->cap - 1);
    while (c->used[i]) {
        if (memcmp(&c->slots[i * c->words], key, c->words * 8) == 0) {
            return 0;
        }
        i = (i + 1) & (c->cap - 1);
    }
    c->used[i] = 1;
    memcpy(&c->slots[i * c->words], key, c->words * 8);
    c->count++;
    return 1;
}

static void cache_grow(struct lin_cache *c)
{
    struct lin_cache old = *c;
    c->cap = old.cap ? old.cap * 2 : 1024;
    c->slots = hy_xcalloc(c->cap, c->words * 8);
    c->used = hy_xcalloc(c->cap, 1);
    c->count = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.used[i]) {
            cache_insert(c, &old.slots[i * c->words]);
        }
    }
    hy_free(old.slots);
    hy_free(old.used);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct lin_entry *x = *(struct lin_entry *const *)a, *y = *(struct lin_entry *const *)b;
    return x->time < y->time ? -1 : x->time > y->time ? 1 : 0;
}

static int op_call_cmp(const void *a, const void *b)
{
    const struct sim_op *x = a, *y = b;
    return x->call < y->call ? -1 : x->call > y->call ? 1 : 0;
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static void bit_flip(uint64_t *bits, size_t i)
{
    bits[i / 64] ^= 1ull << (i % 64);
}

static void lift(struct lin_entry *call)
{
    call->prev->next = call->next;
    call->next->prev = call->prev;
    struct lin_entry *ret = call->match;
    ret->prev->next = ret->next;
    ret->next->prev = ret->prev;
}

static void unlift(struct lin_entry *call)
{
    struct lin_entry *ret = call->match;
    ret->prev->next = ret;
    ret->next->prev = ret;
    call->prev->next = call;
    call->next->prev = call;
}

/* Whether some completed op observed a value in [v, v + m]; observed is sorted. */
static int value_seen(const int64_t *observed, size_t n, int64_t v, int64_t m)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (observed[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && observed[lo] <= v + m;
}

/* Returns the opaque flag of every SET: 1 when no completed op saw a value it could lead to. */
static uint8_t *find_opaque(const struct sim_op *ops, size_t n)
{
    int64_t *observed = hy_xcalloc(n + 1, sizeof(*observed));
    size_t nobs = 0;
    int64_t incrs = 0;
    for (size_t i = 0; i < n; i++) {
        incrs += ops[i].kind == SIM_OP_INCR;
        int reads = ops[i].kind == SIM_OP_INCR || (ops[i].kind == SIM_OP_GET && ops[i].has_value);
        if (ops[i].done && reads) {
            observed[nobs++] = ops[i].value;
        }
    }
    qsort(observed, nobs, sizeof(*observed), i64_cmp);
    uint8_t *opaque = hy_xcalloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        opaque[i] = ops[i].kind == SIM_OP_SET && !value_seen(observed, nobs, ops[i].arg, incrs);
    }
    hy_free(observed);
    return opaque;
}

/* Returns the class of an indeterminate op, adding it when new. */
static size_t class_of(struct lin_search *ls, const struct sim_op *op, int opaque)
{
    size_t c = op->kind == SIM_OP_INCR ? 0 : 1;
    for (; c < ls->ncls; c++) {
        const struct lin_class *k = &ls->cls[c];
        if (k->kind == op->kind && k->opaque == opaque &&
            (op->kind != SIM_OP_SET || opaque || k->arg == op->arg)) {
            return c;
        }
    }
    ls->cls[c] = (struct lin_class){.kind = op->kind, .opaque = opaque, .arg = op->arg};
    ls->cls[c].members = hy_xcalloc(ls->n, sizeof(size_t));
    ls->ncls++;
    return c;
}

/* Sorts the indeterminate ops (already in call order) into their classes. */
static void classify(struct lin_search *ls)
{
    uint8_t *opaque = find_opaque(ls->ops, ls->n);
    ls->cls = hy_xcalloc(ls->n + 1, sizeof(*ls->cls));
    ls->cls[0] = (struct lin_class){.kind = SIM_OP_INCR};
    ls->cls[0].members = hy_xcalloc(ls->n + 1, sizeof(size_t));
    ls->ncls = 1;
    for (size_t i = 0; i < ls->n; i++) {
        if (!ls->ops[i].done) {
            struct lin_class *k = &ls->cls[class_of(ls, &ls->ops[i], opaque[i])];
            k->members[k->count++] = i;
        }
    }
    hy_free(opaque);
}

/* Links every call and return of the completed ops in time order after the sentinel. */
static void build_list(struct lin_search *ls)
{
    struct lin_entry **order = hy_xcalloc(2 * ls->n + 1, sizeof(*order));
    size_t m = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (!ls->ops[i].done) {
            continue;
        }
        struct lin_entry *c = &ls->ents[2 * i], *r = &ls->ents[2 * i + 1];
        *c = (struct lin_entry){.is_call = 1, .op = i, .time = ls->ops[i].call, .match = r};
        *r = (struct lin_entry){.is_call = 0, .op = i, .time = ls->ops[i].ret, .match = c};
        order[m++] = c;
        order[m++] = r;
    }
    qsort(order, m, sizeof(*order), entry_cmp);
    ls->head = &ls->ents[2 * ls->n];
    struct lin_entry *prev = ls->head;
    for (size_t i = 0; i < m; i++) {
        prev->next = order[i];
        order[i]->prev = prev;
        prev = order[i];
    }
    prev->next = ls->head;
    ls->head->prev = prev;
    hy_free(order);
}

static void search_init(struct lin_search *ls, const struct sim_op *ops, size_t n,
                        uint64_t steps_max)
{
    memset(ls, 0, sizeof(*ls));
    ls->ops = ops;
    ls->n = n;
    ls->ents = hy_xcalloc(2 * n + 1, sizeof(*ls->ents));
    build_list(ls);
    classify(ls);
    ls->words = (n + 63) / 64 + 2;
    ls->cache.words = ls->words;
    ls->key = hy_xcalloc(ls->words, 8);
    ls->state = (struct lin_state){LIN_ABSENT, 0};
    ls->steps_max = steps_max;
}

static void search_free(struct lin_search *ls)
{
    for (size_t c = 0; c < ls->ncls; c++) {
        hy_free(ls->cls[c].members);
    }
    hy_free(ls->cls);
    hy_free(ls->key);
    hy_free(ls->cache.slots);
    hy_free(ls->cache.used);
    hy_free(ls->ents);
}

/* Whether class c has j untaken members all called before limit (members are in call order). */
static int class_has(const struct lin_search *ls, size_t c, size_t j, uint64_t limit)
{
    const struct lin_class *k = &ls->cls[c];
    return j == 0 ||
           (k->taken + j <= k->count && ls->ops[k->members[k->taken + j - 1]].call < limit);
}

/* The state the overwrite of block b leaves, before its INCRs. */
static struct lin_state block_base(const struct lin_search *ls, size_t w)
{
    if (w == LIN_NONE) {
        return ls->state;
    }
    const struct lin_class *k = &ls->cls[w];
    if (k->kind == SIM_OP_DEL) {
        return (struct lin_state){LIN_ABSENT, 0};
    }
    return (struct lin_state){k->opaque ? LIN_OPAQUE : LIN_VALUE, k->arg};
}

/* How many INCRs must follow base so that the completed op d accepts the state; -1 if none can.
 * One count suffices: d's result names the one state it needs (DEL of 1: any present one). */
static int64_t incrs_needed(const struct sim_op *d, const struct lin_state *base)
{
    int absent = base->kind == LIN_ABSENT;
    switch (d->kind) {
    case SIM_OP_SET: return 0;
    case SIM_OP_DEL:
    case SIM_OP_TOUCH: /* as a DEL's count: whether some state, any, was there */
        if (d->value < 0) {
            return 0; /* a count not known (FLUSHALL): any state */
        }
        return d->value == 1 ? (absent ? 1 : 0) : (absent ? 0 : -1);
    case SIM_OP_GET:
        if (!d->has_value) {
            return absent ? 0 : -1;
        }
        break;
    default: break;
    }
    if (base->kind == LIN_OPAQUE) {
        return -1; /* a GET or INCR result would have revealed a value nobody observed */
    }
    /* From absent, j INCRs reach j (j >= 1); an INCR returning w needs w - 1 before it. */
    int64_t target = d->kind == SIM_OP_INCR ? d->value - 1 : d->value;
    int64_t j = target - (absent ? 0 : base->value);
    if (absent && d->kind == SIM_OP_GET && j == 0) {
        return -1;
    }
    return j;
}

/* Takes (undo = 0) or gives back (undo = 1) the ops of block b, flipping their memo bits. */
static void block_apply(struct lin_search *ls, const struct lin_block *b, int undo)
{
    struct lin_class *incr = &ls->cls[0];
    if (undo) {
        incr->taken -= b->j;
    }
    for (size_t k = 0; k < b->j; k++) {
        bit_flip(ls->key, incr->members[incr->taken + k]);
    }
    if (!undo) {
        incr->taken += b->j;
    }
    if (b->w != LIN_NONE) {
        struct lin_class *k = &ls->cls[b->w];
        k->taken -= (size_t)undo;
        bit_flip(ls->key, k->members[k->taken]);
        k->taken += (size_t)!undo;
    }
}

static int search(struct lin_search *ls);

/* Linearizes block b then the completed op d if the model accepts it and the (set, state) pair
 * is new, and searches on from there. Returns 1, 0 or -1 as search does. */
static int try_block(struct lin_search *ls, struct lin_entry *d, const struct lin_block *b)
{
    struct lin_state s = block_base(ls, b->w), next;
    for (size_t k = 0; k < b->j && s.kind != LIN_OPAQUE; k++) {
        s = (struct lin_state){LIN_VALUE, s.kind == LIN_VALUE ? s.value + 1 : 1};
    }
    if (!step_model(&ls->ops[d->op], &s, &next)) {
        return 0;
    }
    block_apply(ls, b, 0);
    bit_flip(ls->key, d->op);
    ls->key[ls->words - 2] = (uint64_t)next.kind;
    ls->key[ls->words - 1] = (uint64_t)next.value;
    int result = 0;
    if (cache_insert(&ls->cache, ls->key)) {
        ls->steps += ls->words; /* charged for its memory, which the budget thereby bounds */
        struct lin_state saved = ls->state;
        ls->state = next;
        lift(d);
        result = search(ls);
        unlift(d);
        ls->state = saved;
    }
    bit_flip(ls->key, d->op);
    block_apply(ls, b, 1);
    return result;
}

/* Tries every useful block before the completed op d: none, or one overwrite of each class,
 * each followed by the INCRs d's result asks for. */
static int try_op(struct lin_search *ls, struct lin_entry *d, uint64_t limit)
{
    const struct sim_op *op = &ls->ops[d->op];
    for (size_t c = 0; c < ls->ncls; c++) {
        size_t w = c == 0 ? LIN_NONE : c; /* class 0 holds INCRs, which never overwrite */
        if (++ls->steps > ls->steps_max) {
            return -1;
        }
        struct lin_state base = block_base(ls, w);
        /* An overwrite leaving the state as it was only uses up an op: never better. */
        int useless = w != LIN_NONE && memcmp(&base, &ls->state, sizeof(base)) == 0;
        int64_t j = useless ? -1 : incrs_needed(op, &base);
        if (j >= 0 && (w == LIN_NONE || class_has(ls, w, 1, limit)) &&
            class_has(ls, 0, (size_t)j, limit)) {
            struct lin_block b = {.w = w, .j = (size_t)j};
            int r = try_block(ls, d, &b);
            if (r != 0) {
                return r;
            }
        }
        if (w == LIN_NONE && j == 0) {
            return 0; /* nothing placed before d dominates every block that places some */
        }
    }
    return 0;
}

/* Places one more completed op: any whose call comes before the first return still pending. */
static int search(struct lin_search *ls)
{
    if (ls->head->next == ls->head) {
        return 1; /* every completed op is placed; the rest may never take effect */
    }
    struct lin_entry *ret = ls->head->next;
    while (ret->is_call) {
        ret = ret->next;
    }
    for (struct lin_entry *e = ls->head->next; e != ret; e = e->next) {
        int r = try_op(ls, e, ret->time);
        if (r != 0) {
            return r;
        }
    }
    return 0;
}

/* Checks the ops of one key (sorted here by call). */
static int check_key(struct sim_op *ops, size_t n, uint64_t steps_max)
{
    qsort(ops, n, sizeof(*ops), op_call_cmp);
    struct lin_search ls;
    search_init(&ls, ops, n, steps_max);
    int result = search(&ls);
    search_free(&ls);
    return result;
}

int sim_lin_check(const struct sim_op *ops, size_t n, uint64_t steps_max, char *why, size_t why_len)
{
    struct sim_op *sel = hy_xcalloc(n + 1, sizeof(*sel));
    int result = 1;
    for (int key = 0; key < SIM_LIN_KEYS && result == 1; key++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const struct sim_op *op = &ops[i];
            /* Failed ops never ran; an unanswered read or TOUCH has no effect. */
            if (op->key != key || op->failed ||
                ((op->kind == SIM_OP_GET || op->kind == SIM_OP_TOUCH) && !op->done)) {
                continue;
            }
            sel[m] = *op;
            sel[m].ret = op->done ? op->ret : SIM_INF;
            m++;
        }
        result = check_key(sel, m, steps_max);
        if (result == 0) {
            snprintf(why, why_len, "history of key k%d (%zu ops) is not linearizable", key, m);
        } else if (result < 0) {
            snprintf(why, why_len,
                     "check inconclusive: search of key k%d (%zu ops) ran out of its %llu steps",
                     key, m, (unsigned long long)steps_max);
        }
    }
    hy_free(sel);
    return result;
}
