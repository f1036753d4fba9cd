/* Unit tests for the simulator's black-box linearizability checker (sim/lin.c): indeterminate
 * writes, the reductions that keep the search small, and a cross-check against brute force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/prng.h"

/* The Makefile links unit tests with the core library only, so the checker is compiled in. */
#include "../../sim/lin.c"

#define STEPS    1000000u
#define OPS_MAX  8
#define BF_OPS   7
#define NO_VALUE INT64_MIN

/* ---- building histories ---------------------------------------------------------------- */

struct hist {
    struct sim_op ops[OPS_MAX];
    size_t n;
};

/* A completed op on key 0 over [call, ret]; value is the result (NO_VALUE: GET of nothing). */
static void done(struct hist *h, int kind, int64_t arg, uint64_t call, uint64_t ret, int64_t value)
{
    struct sim_op *op = &h->ops[h->n++];
    *op = (struct sim_op){.kind = kind, .arg = arg, .call = call, .ret = ret, .done = 1};
    op->has_value = value != NO_VALUE;
    op->value = value == NO_VALUE ? 0 : value;
}

/* A write whose client never heard back: indeterminate. */
static void timed_out(struct hist *h, int kind, int64_t arg, uint64_t call)
{
    h->ops[h->n++] = (struct sim_op){.kind = kind, .arg = arg, .call = call, .ret = SIM_INF};
}

static int check(const struct hist *h)
{
    char why[256];
    return sim_lin_check(h->ops, h->n, STEPS, why, sizeof(why));
}

/* ---- named histories --------------------------------------------------------------------- */

/* A timed-out SET may take effect long after its call, as a later read shows. */
static void test_timed_out_set_may_take_effect_late(void **state)
{
    (void)state;
    struct hist h = {0};
    done(&h, SIM_OP_SET, 5, 1, 2, 0);
    timed_out(&h, SIM_OP_SET, 7, 3);
    done(&h, SIM_OP_GET, 0, 10, 11, 5);
    done(&h, SIM_OP_GET, 0, 12, 13, 7);
    assert_int_equal(check(&h), 1);
}

/* A timed-out SET takes effect at most once: 7 cannot reappear after 5 overwrote it. */
static void test_timed_out_set_takes_effect_once(void **state)
{
    (void)state;
    struct hist h = {0};
    timed_out(&h, SIM_OP_SET, 7, 1);
    done(&h, SIM_OP_GET, 0, 4, 5, 7);
    done(&h, SIM_OP_SET, 5, 6, 7, 0);
    done(&h, SIM_OP_GET, 0, 8, 9, 7);
    assert_int_equal(check(&h), 0);
}

/* A timed-out SET cannot take effect before its call. */
static void test_timed_out_set_not_before_its_call(void **state)
{
    (void)state;
    struct hist h = {0};
    done(&h, SIM_OP_GET, 0, 1, 2, 7);
    timed_out(&h, SIM_OP_SET, 7, 3);
    assert_int_equal(check(&h), 0);
}

/* A timed-out INCR counts once; two of them may explain a value of 2. */
static void test_timed_out_incr_counts_once(void **state)
{
    (void)state;
    struct hist h = {0};
    timed_out(&h, SIM_OP_INCR, 0, 1);
    done(&h, SIM_OP_GET, 0, 2, 3, 1);
    done(&h, SIM_OP_GET, 0, 4, 5, 2);
    assert_int_equal(check(&h), 0);
    timed_out(&h, SIM_OP_INCR, 0, 6);
    assert_int_equal(check(&h), 0); /* called after the GET of 2 returned: too late */
    h.ops[h.n - 1].call = 1;
    assert_int_equal(check(&h), 1);
}

/* A timed-out DEL may never take effect, or take effect between two reads. */
static void test_timed_out_del_is_optional(void **state)
{
    (void)state;
    struct hist h = {0};
    done(&h, SIM_OP_SET, 3, 1, 2, 0);
    timed_out(&h, SIM_OP_DEL, 0, 3);
    done(&h, SIM_OP_GET, 0, 4, 5, 3);
    done(&h, SIM_OP_GET, 0, 6, 7, NO_VALUE);
    assert_int_equal(check(&h), 1);
    done(&h, SIM_OP_GET, 0, 8, 9, 3);
    assert_int_equal(check(&h), 0);
}

/* A SET whose value nobody read still makes the key present for a DEL's count (it must not be
 * dropped as if it never happened), but only after its call. */
static void test_unread_set_seen_by_del_count(void **state)
{
    (void)state;
    struct hist h = {0};
    timed_out(&h, SIM_OP_SET, 500, 1);
    done(&h, SIM_OP_DEL, 0, 2, 3, 1);
    assert_int_equal(check(&h), 1);
    h.ops[0].call = 4;
    assert_int_equal(check(&h), 0);
}

/* A TOUCH (an EXPIRE beyond the run) tells whether the key existed and changes nothing: a
 * read after it still sees the value; one answered 0 between a SET and a read of that SET is
 * not linearizable, and an unanswered one is dropped. */
static void test_touch_sees_existence_and_changes_nothing(void **state)
{
    (void)state;
    struct hist h = {0};
    done(&h, SIM_OP_TOUCH, 0, 1, 2, 0);
    done(&h, SIM_OP_SET, 4, 3, 4, 0);
    done(&h, SIM_OP_TOUCH, 0, 5, 6, 1);
    timed_out(&h, SIM_OP_TOUCH, 0, 7);
    done(&h, SIM_OP_GET, 0, 8, 9, 4);
    assert_int_equal(check(&h), 1);
    h.ops[2].value = 0;
    assert_int_equal(check(&h), 0);
    h.ops[2].value = 1;
    h.ops[0].value = 1;
    assert_int_equal(check(&h), 0);
}

/* A SET whose value nobody read cannot explain a read or INCR result it does not lead to. */
static void test_unread_set_explains_no_value(void **state)
{
    (void)state;
    struct hist h = {0};
    timed_out(&h, SIM_OP_SET, 500, 1);
    done(&h, SIM_OP_INCR, 0, 2, 3, 1);
    done(&h, SIM_OP_GET, 0, 4, 5, 1);
    assert_int_equal(check(&h), 1);
    done(&h, SIM_OP_INCR, 0, 6, 7, 9);
    assert_int_equal(check(&h), 0);
}

/* Running out of steps is reported as inconclusive, never as a pass. */
static void test_out_of_steps_is_inconclusive(void **state)
{
    (void)state;
    struct hist h = {0};
    timed_out(&h, SIM_OP_SET, 7, 1);
    done(&h, SIM_OP_SET, 5, 2, 3, 0);
    done(&h, SIM_OP_GET, 0, 4, 5, 5);
    done(&h, SIM_OP_GET, 0, 6, 7, 7);
    char why[256];
    assert_int_equal(sim_lin_check(h.ops, h.n, 1, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "inconclusive"));
    assert_int_equal(sim_lin_check(h.ops, h.n, STEPS, why, sizeof(why)), 1);
}

/* ---- cross-check against brute force ------------------------------------------------------- */

struct bf_state {
    int present;
    int64_t value;
};

/* The plain register model with no reductions; returns 0 when a completed op's result differs. */
static int bf_step(const struct sim_op *op, struct bf_state *s)
{
    switch (op->kind) {
    case SIM_OP_GET:
        return !op->done || (op->has_value ? s->present && s->value == op->value : !s->present);
    case SIM_OP_SET: *s = (struct bf_state){1, op->arg}; return 1;
    case SIM_OP_INCR:
        *s = (struct bf_state){1, s->present ? s->value + 1 : 1};
        return !op->done || s->value == op->value;
    case SIM_OP_TOUCH: return !op->done || op->value == s->present;
    default: {
        int had = s->present;
        *s = (struct bf_state){0, 0};
        return !op->done || op->value == had;
    }
    }
}

/* Tries every order of every subset of the indeterminate ops with all the completed ones. */
static int bf_search(const struct hist *h, unsigned placed, struct bf_state s)
{
    unsigned need = 0;
    for (size_t i = 0; i < h->n; i++) {
        need |= (unsigned)h->ops[i].done << i;
    }
    if ((placed & need) == need) {
        return 1;
    }
    for (size_t i = 0; i < h->n; i++) {
        int blocked = placed >> i & 1u;
        for (size_t k = 0; k < h->n && !blocked; k++) {
            blocked = !(placed >> k & 1u) && h->ops[k].done && h->ops[k].ret < h->ops[i].call;
        }
        struct bf_state t = s;
        if (!blocked && bf_step(&h->ops[i], &t) && bf_search(h, placed | 1u << i, t)) {
            return 1;
        }
    }
    return 0;
}

/* A random history from a real sequential run: each op acts at a point inside its interval
 * (a timed-out write after its call, or never); sometimes one result is then falsified. */
static void random_history(struct hy_prng *rng, struct hist *h)
{
    uint64_t at[OPS_MAX];
    h->n = 1 + hy_prng_below(rng, BF_OPS);
    for (size_t i = 0; i < h->n; i++) {
        struct sim_op *op = &h->ops[i];
        *op = (struct sim_op){.kind = (int)hy_prng_below(rng, 5)};
        op->arg = (int64_t)hy_prng_below(rng, 3) + (hy_prng_chance(rng, 1, 4) ? 500 : 0);
        op->call = (hy_prng_below(rng, 30) * 16 + i) * 4;
        op->done = op->kind == SIM_OP_GET || !hy_prng_chance(rng, 2, 5);
        op->ret = op->done ? op->call + (hy_prng_range(rng, 1, 20) * 16 + i) * 4 + 2 : SIM_INF;
        uint64_t end = op->done ? op->ret : op->call + 200;
        at[i] = op->call + 1 + hy_prng_below(rng, end - op->call - 1);
        if (!op->done && hy_prng_chance(rng, 1, 3)) {
            at[i] = UINT64_MAX; /* never took effect */
        }
    }
    struct bf_state s = {0, 0};
    for (unsigned used = 0; used != (1u << h->n) - 1;) {
        size_t first = h->n;
        for (size_t i = 0; i < h->n; i++) {
            if (!(used >> i & 1u) && (first == h->n || at[i] < at[first])) {
                first = i;
            }
        }
        used |= 1u << first;
        if (at[first] == UINT64_MAX) {
            continue;
        }
        struct sim_op *op = &h->ops[first];
        struct bf_state before = s;
        bf_step(op, &s);
        op->has_value = op->kind == SIM_OP_GET && before.present;
        op->value = op->kind == SIM_OP_GET                               ? before.value
                    : op->kind == SIM_OP_INCR                            ? s.value
                    : op->kind == SIM_OP_DEL || op->kind == SIM_OP_TOUCH ? before.present
                                                                         : 0;
    }
    if (hy_prng_chance(rng, 1, 2)) {
        struct sim_op *op = &h->ops[hy_prng_below(rng, h->n)];
        op->value += (int64_t)hy_prng_range(rng, 1, 2);
        op->has_value ^= hy_prng_chance(rng, 1, 4);
    }
}

/* The checker with all its reductions agrees with brute force on thousands of small histories,
 * both linearizable and not. */
static void test_agrees_with_brute_force(void **state)
{
    (void)state;
    struct hy_prng rng;
    hy_prng_seed(&rng, 7);
    int counts[2] = {0, 0};
    for (int round = 0; round < 30000; round++) {
        struct hist h;
        random_history(&rng, &h);
        int expect = bf_search(&h, 0, (struct bf_state){0, 0});
        int got = check(&h);
        if (got != expect) {
            fprintf(stderr, "round %d: checker %d, brute force %d\n", round, got, expect);
            for (size_t i = 0; i < h.n; i++) {
                const struct sim_op *o = &h.ops[i];
                fprintf(stderr, "  kind %d arg %lld [%llu, %llu] done %d has %d value %lld\n",
                        o->kind, (long long)o->arg, (unsigned long long)o->call,
                        (unsigned long long)o->ret, o->done, o->has_value, (long long)o->value);
            }
        }
        assert_int_equal(got, expect);
        counts[expect]++;
    }
    assert_true(counts[0] > 3000 && counts[1] > 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timed_out_set_may_take_effect_late),
        cmocka_unit_test(test_timed_out_set_takes_effect_once),
        cmocka_unit_test(test_timed_out_set_not_before_its_call),
        cmocka_unit_test(test_timed_out_incr_counts_once),
        cmocka_unit_test(test_timed_out_del_is_optional),
        cmocka_unit_test(test_unread_set_seen_by_del_count),
        cmocka_unit_test(test_unread_set_explains_no_value),
        cmocka_unit_test(test_out_of_steps_is_inconclusive),
        cmocka_unit_test(test_touch_sees_existence_and_changes_nothing),
        cmocka_unit_test(test_agrees_with_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
