/*
 * lin.c - linearizability checking of the client history (Wing & Gong's search with Lowe's
 * memoization of (linearized set, state) pairs). The model is one register-like counter per
 * key; keys are checked independently since linearizability is compositional (a local
 * property, Herlihy & Wing). Indeterminate operations (timed out) may take effect at any
 * point after their call, or never: their return is at infinity and any result is accepted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "sim.h"

#define LIN_STEPS_MAX 4000000u

struct lin_state {
    int present;
    int64_t value;
};

/* One call or return in the doubly linked list the search lifts entries out of. */
struct lin_entry {
    int is_call;
    size_t op; /* index into the per-key op array */
    uint64_t time;
    struct lin_entry *match; /* call <-> return */
    struct lin_entry *prev, *next;
};

struct lin_cache {
    uint64_t *slots; /* words per slot: bitset words + 2 (state) ; 0 marks empty via flag */
    uint8_t *used;
    size_t cap;
    size_t count;
    size_t words;
};

static int step_model(const struct sim_op *op, const struct lin_state *s, struct lin_state *out)
{
    *out = *s;
    switch (op->kind) {
    case SIM_OP_GET:
        if (!op->done) {
            return 1;
        }
        return op->has_value ? s->present && s->value == op->value : !s->present;
    case SIM_OP_SET:
        out->present = 1;
        out->value = op->arg;
        return 1;
    case SIM_OP_INCR:
        out->present = 1;
        out->value = s->present ? s->value + 1 : 1;
        return !op->done || out->value == op->value;
    case SIM_OP_DEL: out->present = 0; return !op->done || op->value == (s->present ? 1 : 0);
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

/* Inserts key (words long); returns 0 when it was already there. */
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
    if (x->time != y->time) {
        return x->time < y->time ? -1 : 1;
    }
    /* Times are unique event numbers; a tie only happens between two returns at infinity. */
    return x->op < y->op ? -1 : x->op > y->op ? 1 : 0;
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

struct lin_frame {
    struct lin_entry *call;
    struct lin_state state;
};

/* Links every call and return in time order after a sentinel (ents[2n]), which it returns. */
static struct lin_entry *build_list(const struct sim_op *ops, size_t n, struct lin_entry *ents,
                                    struct lin_entry **order)
{
    for (size_t i = 0; i < n; i++) {
        struct lin_entry *c = &ents[2 * i], *r = &ents[2 * i + 1];
        *c = (struct lin_entry){.is_call = 1, .op = i, .time = ops[i].call, .match = r};
        *r = (struct lin_entry){.is_call = 0, .op = i, .time = ops[i].ret, .match = c};
        order[2 * i] = c;
        order[2 * i + 1] = r;
    }
    qsort(order, 2 * n, sizeof(*order), entry_cmp);
    struct lin_entry *head = &ents[2 * n]; /* sentinel: head->next is the first entry */
    struct lin_entry *prev = head;
    for (size_t i = 0; i < 2 * n; i++) {
        prev->next = order[i];
        order[i]->prev = prev;
        prev = order[i];
    }
    prev->next = head;
    head->prev = prev;
    return head;
}

/* Checks the ops of one key. */
static int check_key(const struct sim_op *ops, size_t n)
{
    if (n == 0) {
        return 1;
    }
    struct lin_entry *ents = hy_xcalloc(2 * n + 1, sizeof(*ents));
    struct lin_entry **order = hy_xcalloc(2 * n, sizeof(*order));
    struct lin_entry *head = build_list(ops, n, ents, order);
    size_t words = (n + 63) / 64 + 2;
    struct lin_cache cache = {.words = words};
    uint64_t *key = hy_xcalloc(words, 8);
    struct lin_frame *stack = hy_xcalloc(n, sizeof(*stack));
    size_t depth = 0;
    struct lin_state state = {0, 0};
    struct lin_entry *e = head->next;
    int result = 1;
    unsigned long steps = 0;
    while (head->next != head) {
        if (++steps > LIN_STEPS_MAX) {
            result = -1;
            break;
        }
        if (e->is_call) {
            struct lin_state next;
            if (step_model(&ops[e->op], &state, &next)) {
                key[e->op / 64] |= 1ull << (e->op % 64);
                key[words - 2] = (uint64_t)next.present;
                key[words - 1] = (uint64_t)next.value;
                if (cache_insert(&cache, key)) {
                    stack[depth++] = (struct lin_frame){.call = e, .state = state};
                    state = next;
                    lift(e);
                    e = head->next;
                    continue;
                }
                key[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            e = e->next;
        } else {
            if (depth == 0) {
                result = 0;
                break;
            }
            struct lin_frame f = stack[--depth];
            state = f.state;
            key[f.call->op / 64] &= ~(1ull << (f.call->op % 64));
            unlift(f.call);
            e = f.call->next;
        }
    }
    hy_free(stack);
    hy_free(key);
    hy_free(cache.slots);
    hy_free(cache.used);
    hy_free(order);
    hy_free(ents);
    return result;
}

int sim_lin_check(const struct sim_op *ops, size_t n, char *why, size_t why_len)
{
    struct sim_op *sel = hy_xcalloc(n ? n : 1, sizeof(*sel));
    int result = 1;
    for (int key = 0; key < SIM_KEYS && result == 1; key++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const struct sim_op *op = &ops[i];
            /* Failed ops never ran; an unanswered read constrains nothing. */
            if (op->key != key || op->failed || (op->kind == SIM_OP_GET && !op->done)) {
                continue;
            }
            sel[m++] = *op;
        }
        result = check_key(sel, m);
        if (result == 0) {
            snprintf(why, why_len, "history of key k%d (%zu ops) is not linearizable", key, m);
        } else if (result < 0) {
            snprintf(why, why_len, "linearizability search of key k%d (%zu ops) gave up", key, m);
        }
    }
    hy_free(sel);
    return result;
}
