/* Unit tests for src/node/placement.c: the partition map's spread, stability and codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "node/placement.h"

#define PARTS 271

static size_t load_of(const struct node_placement *map, uint32_t parts, raft_id id)
{
    size_t l = 0;
    for (uint32_t p = 0; p < parts; p++) {
        l += node_placement_has(&map[p], id);
    }
    return l;
}

/* Every partition has r distinct member replicas; every member holds floor or ceil of
 * parts * r / members. */
static void check_even(const struct node_placement *map, uint32_t parts, const raft_id *m, size_t n,
                       uint32_t r)
{
    for (uint32_t p = 0; p < parts; p++) {
        assert_int_equal(map[p].count, r);
        for (uint32_t i = 0; i < map[p].count; i++) {
            int found = 0;
            for (size_t k = 0; k < n; k++) {
                found |= map[p].ids[i] == m[k];
            }
            assert_true(found);
            for (uint32_t j = i + 1; j < map[p].count; j++) {
                assert_true(map[p].ids[i] != map[p].ids[j]);
            }
        }
    }
    size_t lo = (size_t)parts * r / n, hi = lo + ((size_t)parts * r % n != 0);
    for (size_t k = 0; k < n; k++) {
        size_t l = load_of(map, parts, m[k]);
        if (l < lo || l > hi) {
            print_message("member %zu holds %zu, want %zu..%zu\n", k, l, lo, hi);
        }
        assert_true(l >= lo && l <= hi);
    }
}

static void test_initial_spread(void **state)
{
    (void)state;
    raft_id m[7] = {0x9a, 0x11, 0x5c, 0x73, 0x20, 0x44, 0xe1};
    for (size_t n = 1; n <= 7; n++) {
        for (uint32_t rf = 1; rf <= 7; rf++) {
            for (uint32_t parts = 1; parts <= PARTS; parts += 27) {
                struct node_placement *map = hy_xcalloc(parts, sizeof(*map));
                assert_int_equal(node_place(map, parts, m, n, rf, NULL, 0), parts);
                check_even(map, parts, m, n, rf < n ? rf : (uint32_t)n);
                /* Placing again changes nothing: the map is a fixed point. */
                assert_int_equal(node_place(map, parts, m, n, rf, NULL, 0), 0);
                hy_free(map);
            }
        }
    }
}

static void test_same_input_same_map(void **state)
{
    (void)state;
    raft_id a[5] = {5, 1, 4, 2, 3}, b[5] = {3, 4, 1, 5, 2};
    struct node_placement x[64], y[64];
    memset(x, 0, sizeof(x));
    memset(y, 0, sizeof(y));
    node_place(x, 64, a, 5, 3, NULL, 0);
    node_place(y, 64, b, 5, 3, NULL, 0);
    assert_memory_equal(x, y, sizeof(x));
}

/* A JOIN gives the new member replicas only where partitions lack them. */
static void test_join(void **state)
{
    (void)state;
    raft_id m[6] = {10, 20, 30, 40, 50, 60};
    struct node_placement map[PARTS], before[PARTS];
    memset(map, 0, sizeof(map));
    node_place(map, PARTS, m, 5, 3, NULL, 0);
    memcpy(before, map, sizeof(map));
    /* 5 -> 6 members with RF 3: every partition has 3, nothing moves (issue 12). */
    assert_int_equal(node_place(map, PARTS, m, 6, 3, NULL, 0), 0);
    assert_memory_equal(map, before, sizeof(map));
    assert_int_equal(load_of(map, PARTS, 60), 0);
    /* 2 -> 3 members with RF 3: every partition gains the new member, keeps its two. */
    memset(map, 0, sizeof(map));
    node_place(map, PARTS, m, 2, 3, NULL, 0);
    memcpy(before, map, sizeof(map));
    assert_int_equal(node_place(map, PARTS, m, 3, 3, NULL, 0), PARTS);
    for (uint32_t p = 0; p < PARTS; p++) {
        assert_int_equal(map[p].count, 3);
        assert_int_equal(map[p].ids[0], before[p].ids[0]);
        assert_int_equal(map[p].ids[1], before[p].ids[1]);
        assert_int_equal(map[p].ids[2], 30);
        assert_int_equal(map[p].epoch, before[p].epoch + 1);
    }
}

/* After a join, rebalancing moves one replica at a time from the most loaded member to the
 * least loaded until every member is within one of every other: each step changes one
 * partition by one replica (the map stays RF per partition, no duplicate), busy partitions
 * are never chosen, avoided members never receive, and zones stay as spread as before. */
static void test_rebalance_after_join(void **state)
{
    (void)state;
    raft_id m[7] = {10, 20, 30, 40, 50, 60, 70};
    for (size_t n = 2; n <= 6; n++) {
        for (uint32_t rf = 1; rf <= 3 && rf < n; rf++) {
            struct node_placement map[PARTS], before[PARTS];
            memset(map, 0, sizeof(map));
            node_place(map, PARTS, m, n, rf, NULL, 0);
            assert_int_equal(node_place(map, PARTS, m, n + 1, rf, NULL, 0), 0);
            uint8_t busy[PARTS];
            memset(busy, 0, sizeof(busy));
            size_t steps = 0;
            for (;;) {
                memcpy(before, map, sizeof(map));
                int p = node_place_rebalance(map, PARTS, m, NULL, n + 1, NULL, 0, busy);
                if (p < 0) {
                    break;
                }
                steps++;
                assert_false(busy[p]);
                busy[p] = (steps % 3) == 0; /* some stay busy: others must be chosen */
                for (uint32_t q = 0; q < PARTS; q++) {
                    if (q != (uint32_t)p) {
                        assert_memory_equal(&map[q], &before[q], sizeof(map[q]));
                    }
                }
                assert_int_equal(map[p].count, before[p].count);
                assert_int_equal(map[p].epoch, before[p].epoch + 1);
                uint32_t changed = 0;
                for (uint32_t k = 0; k < map[p].count; k++) {
                    changed += map[p].ids[k] != before[p].ids[k];
                    for (uint32_t j = k + 1; j < map[p].count; j++) {
                        assert_true(map[p].ids[k] != map[p].ids[j]);
                    }
                }
                assert_int_equal(changed, 1);
                assert_true(steps <= (size_t)PARTS * rf);
                if (steps % 7 == 0) {
                    memset(busy, 0, sizeof(busy)); /* their moves ended */
                }
            }
            memset(busy, 0, sizeof(busy));
            while (node_place_rebalance(map, PARTS, m, NULL, n + 1, NULL, 0, busy) >= 0) {
            }
            check_even(map, PARTS, m, n + 1, rf);
            assert_true(load_of(map, PARTS, m[n]) > 0);
            /* Balanced: placing again and rebalancing again change nothing. */
            assert_int_equal(node_place(map, PARTS, m, n + 1, rf, NULL, 0), 0);
            assert_int_equal(node_place_rebalance(map, PARTS, m, NULL, n + 1, NULL, 0, NULL), -1);
        }
    }
    /* An avoided (down) newcomer receives nothing. */
    struct node_placement map[PARTS];
    memset(map, 0, sizeof(map));
    node_place(map, PARTS, m, 5, 3, NULL, 0);
    raft_id down = 60;
    assert_int_equal(node_place_rebalance(map, PARTS, m, NULL, 6, &down, 1, NULL), -1);
    /* Zones: 3 zones of 2, the newcomer in zone 0; no move puts two replicas in one zone. */
    struct node_domain dom[7] = {{0, 0}, {1, 1}, {2, 2}, {0, 3}, {1, 4}, {2, 5}, {0, 6}};
    memset(map, 0, sizeof(map));
    node_place_domains(map, PARTS, m, dom, 6, 3, NULL, 0);
    node_place_domains(map, PARTS, m, dom, 7, 3, NULL, 0);
    size_t moves = 0;
    while (node_place_rebalance(map, PARTS, m, dom, 7, NULL, 0, NULL) >= 0) {
        moves++;
    }
    assert_true(moves > 0);
    for (uint32_t p = 0; p < PARTS; p++) {
        uint32_t z, r;
        node_placement_shared(&map[p], m, dom, 7, &z, &r);
        assert_int_equal(z, 0);
    }
    assert_true(load_of(map, PARTS, 70) > 0);
}

/* A REMOVE replaces only the removed member's replicas, on the members holding fewest. */
static void test_remove(void **state)
{
    (void)state;
    raft_id m[5] = {10, 20, 30, 40, 50};
    struct node_placement map[PARTS], before[PARTS];
    memset(map, 0, sizeof(map));
    node_place(map, PARTS, m, 5, 3, NULL, 0);
    memcpy(before, map, sizeof(map));
    raft_id rest[4] = {10, 20, 40, 50}; /* 30 leaves */
    size_t had = load_of(map, PARTS, 30);
    assert_int_equal(node_place(map, PARTS, rest, 4, 3, NULL, 0), had);
    check_even(map, PARTS, rest, 4, 3);
    for (uint32_t p = 0; p < PARTS; p++) {
        int lost = node_placement_has(&before[p], 30);
        assert_int_equal(map[p].epoch, before[p].epoch + (uint64_t)lost);
        /* Every replica but the removed one stayed where it was. */
        for (uint32_t i = 0; i < before[p].count; i++) {
            if (before[p].ids[i] != 30) {
                assert_true(node_placement_has(&map[p], before[p].ids[i]));
            }
        }
    }
    /* Down to 2 members with RF 3: two replicas each, all on both. */
    raft_id two[2] = {10, 50};
    node_place(map, PARTS, two, 2, 3, NULL, 0);
    check_even(map, PARTS, two, 2, 2);
}

/* New replicas go to members not avoided (seen down) while others can take them; only when
 * none can does an avoided one get them. */
static void test_avoid_members_seen_down(void **state)
{
    (void)state;
    raft_id m[5] = {10, 20, 30, 40, 50};
    struct node_placement map[PARTS];
    memset(map, 0, sizeof(map));
    node_place(map, PARTS, m, 5, 3, NULL, 0);
    size_t had = load_of(map, PARTS, 50);
    raft_id rest[4] = {10, 20, 30, 50}, down[1] = {50}; /* 40 removed, 50 down */
    node_place(map, PARTS, rest, 4, 3, down, 1);
    assert_int_equal(load_of(map, PARTS, 50), had);
    for (uint32_t p = 0; p < PARTS; p++) {
        assert_int_equal(map[p].count, 3);
    }
    /* Three members, one of them down, RF 3: it must hold every partition after all. */
    raft_id three[3] = {10, 20, 50};
    node_place(map, PARTS, three, 3, 3, down, 1);
    assert_int_equal(load_of(map, PARTS, 50), PARTS);
}

/* The replication factor lowered while a member is down: every partition it held drops its
 * replica there, none a live one (simulator seed 998000006 --rf-change: RF 3 to 2 kept a
 * lost member's replica and dropped a live one, and the partition lost its quorum). */
static void test_lower_rf_drops_replicas_seen_down_first(void **state)
{
    (void)state;
    raft_id m[5] = {10, 20, 30, 40, 50}, down[1] = {30};
    struct node_placement map[PARTS];
    memset(map, 0, sizeof(map));
    node_place(map, PARTS, m, 5, 3, NULL, 0);
    size_t had = load_of(map, PARTS, 30);
    assert_true(had > 0);
    struct node_placement before[PARTS];
    memcpy(before, map, sizeof(map));
    node_place(map, PARTS, m, 5, 2, down, 1);
    assert_int_equal(load_of(map, PARTS, 30), 0);
    for (uint32_t p = 0; p < PARTS; p++) {
        assert_int_equal(map[p].count, 2);
        for (uint32_t k = 0; k < map[p].count; k++) {
            assert_true(node_placement_has(&before[p], map[p].ids[k])); /* dropped, not moved */
        }
    }
}

/* Two members seen down, the factor lowered by one: a partition holding both drops the one
 * listed first in `avoid` (down longest), whatever the order of their ids (simulator seed 7
 * --rf-change: n1 lost, n2's link closed a moment; the partition kept n1 and never led). */
static void test_lower_rf_drops_the_member_down_longest(void **state)
{
    (void)state;
    raft_id m[5] = {10, 20, 30, 40, 50};
    for (int order = 0; order < 2; order++) {
        raft_id down[2] = {order ? 20 : 10, order ? 10 : 20};
        struct node_placement map[1];
        memset(map, 0, sizeof(map));
        map[0] = (struct node_placement){.epoch = 1, .count = 3, .ids = {10, 20, 30}};
        node_place(map, 1, m, 5, 2, down, 2);
        assert_int_equal(map[0].count, 2);
        assert_false(node_placement_has(&map[0], down[0]));
        assert_true(node_placement_has(&map[0], down[1]));
        assert_true(node_placement_has(&map[0], 30));
    }
}

static void test_codec(void **state)
{
    (void)state;
    raft_id m[5] = {0xffffffffffffffffULL, 1, 0xabcdef0123456789ULL, 7, 99};
    struct node_placement map[40], back[40];
    memset(map, 0, sizeof(map));
    node_place(map, 40, m, 5, 3, NULL, 0);
    map[3].epoch = 18446744073709551615ULL;
    struct hy_buf b;
    hy_buf_init(&b);
    node_placement_encode(map, 40, &b);
    assert_true(node_placement_decode(b.data, b.len, back, 40));
    assert_memory_equal(map, back, sizeof(map));
    assert_false(node_placement_decode(b.data, b.len, back, 39)); /* another count */
    assert_false(node_placement_decode(b.data, b.len - 1, back, 40));
    /* Every prefix and every one-byte change is refused or decodes to a valid map. */
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_false(node_placement_decode(b.data, cut, back, 40));
    }
    const char *bad[] = {
        "halyard-partition-map 1 1\n",        "halyard-partition-map 1 1\n5 \n\n",
        "halyard-partition-map 1 1\n5 1,1\n", "halyard-partition-map 1 1\n5 1,\n",
        "halyard-partition-map 1 1\n5 0\n",   "halyard-partition-map 1 1\n5 1 2\n",
        "halyard-partition-map 2 1\n5 1\n",   "halyard-partition-map 1 1\n5 12345678901234567\n",
        "halyard-partition-map 1 1\n 1\n",    "halyard-partition-map 1 1\n5 1\nx",
        "halyard-partition-map 1 1\n5 01\n",  "halyard-partition-map 1 1\n05 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(node_placement_decode((const uint8_t *)bad[i], strlen(bad[i]), back, 1));
    }
    const char *ok = "halyard-partition-map 1 2\n5 1,a\n0 \n";
    assert_true(node_placement_decode((const uint8_t *)ok, strlen(ok), back, 2));
    assert_int_equal(back[0].count, 2);
    assert_int_equal(back[0].ids[1], 10);
    assert_int_equal(back[1].count, 0);
    hy_buf_free(&b);
}

/* A small deterministic generator for the random layouts (xorshift64*). */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static uint32_t zones_of(const struct node_placement *pl, const raft_id *m,
                         const struct node_domain *dom, size_t n, int racks)
{
    uint32_t seen[RAFT_SERVERS_MAX], count = 0;
    for (uint32_t i = 0; i < pl->count; i++) {
        for (size_t k = 0; k < n; k++) {
            if (m[k] != pl->ids[i]) {
                continue;
            }
            uint32_t d = racks ? dom[k].rack : dom[k].zone;
            int dup = 0;
            for (uint32_t j = 0; j < count; j++) {
                dup |= seen[j] == d;
            }
            if (!dup) {
                seen[count++] = d;
            }
        }
    }
    return count;
}

static uint32_t distinct(const struct node_domain *dom, size_t n, int racks)
{
    struct node_placement all = {.count = (uint32_t)n};
    raft_id ids[RAFT_SERVERS_MAX];
    for (size_t k = 0; k < n; k++) {
        ids[k] = all.ids[k] = (raft_id)(k + 1);
    }
    return zones_of(&all, ids, dom, n, racks);
}

/* Many random layouts of members over zones, from an empty map: every partition has its
 * replicas in min(rf, zones) distinct zones (so in distinct zones whenever zones >= rf), the
 * map is a fixed point, and with zones of equal size (and zones >= rf) every member holds
 * floor or ceil of its share. */
static void test_zones_random_layouts(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + rnd(&seed) % 9;
        uint32_t rf = 1 + (uint32_t)(rnd(&seed) % 7);
        uint32_t parts = 1 + (uint32_t)(rnd(&seed) % 97);
        uint32_t nz = 1 + (uint32_t)(rnd(&seed) % n);
        int equal = rnd(&seed) % 2 == 0 && n % nz == 0;
        raft_id m[RAFT_SERVERS_MAX];
        struct node_domain dom[RAFT_SERVERS_MAX];
        for (size_t k = 0; k < n; k++) {
            m[k] = 1000 + rnd(&seed) % 100000;
            for (size_t j = 0; j < k; j++) {
                m[k] += m[j] == m[k] ? 100000 + k : 0;
            }
            dom[k].zone = equal ? (uint32_t)(k % nz) : (uint32_t)(rnd(&seed) % nz);
            dom[k].rack = dom[k].zone * 16 + (uint32_t)(rnd(&seed) % 3);
        }
        struct node_placement *map = hy_xcalloc(parts, sizeof(*map));
        node_place_domains(map, parts, m, dom, n, rf, NULL, 0);
        uint32_t r = rf < n ? rf : (uint32_t)n, zones = distinct(dom, n, 0);
        for (uint32_t p = 0; p < parts; p++) {
            assert_int_equal(map[p].count, r);
            uint32_t got = zones_of(&map[p], m, dom, n, 0);
            if (got != (r < zones ? r : zones)) {
                print_message("round %d partition %u: %u zones, want %u\n", round, p, got,
                              r < zones ? r : zones);
            }
            assert_int_equal(got, r < zones ? r : zones);
        }
        assert_int_equal(node_place_domains(map, parts, m, dom, n, rf, NULL, 0), 0);
        if (equal && zones >= r) {
            check_even(map, parts, m, n, r);
        }
        hy_free(map);
    }
}

/* With one zone and several racks, racks play the zones' part. */
static void test_racks_in_one_zone(void **state)
{
    (void)state;
    raft_id m[6] = {1, 2, 3, 4, 5, 6};
    struct node_domain dom[6] = {{0, 1}, {0, 1}, {0, 2}, {0, 2}, {0, 3}, {0, 3}};
    struct node_placement map[PARTS];
    memset(map, 0, sizeof(map));
    node_place_domains(map, PARTS, m, dom, 6, 3, NULL, 0);
    for (uint32_t p = 0; p < PARTS; p++) {
        assert_int_equal(zones_of(&map[p], m, dom, 6, 1), 3);
    }
    check_even(map, PARTS, m, 6, 3);
}

/* A map made without zones (a bootstrap's) is spread over the zones once they are known,
 * each partition in one change that keeps every replica not needed elsewhere; a member that
 * joins or leaves afterwards moves only what it must. */
static void test_zones_repair_and_stay_stable(void **state)
{
    (void)state;
    raft_id m[7] = {10, 20, 30, 40, 50, 60, 70};
    struct node_domain dom[7] = {{0, 0}, {0, 0}, {1, 1}, {1, 1}, {2, 2}, {2, 2}, {0, 3}};
    struct node_placement map[PARTS], before[PARTS];
    memset(map, 0, sizeof(map));
    node_place(map, PARTS, m, 6, 3, NULL, 0);
    memcpy(before, map, sizeof(map));
    size_t changed = node_place_domains(map, PARTS, m, dom, 6, 3, NULL, 0);
    size_t shared = 0;
    for (uint32_t p = 0; p < PARTS; p++) {
        uint32_t z, r;
        node_placement_shared(&before[p], m, dom, 6, &z, &r);
        shared += z > 0;
        assert_int_equal(zones_of(&map[p], m, dom, 6, 0), 3);
        /* One replica per shared pair moves (RF 3: at most one pair here), no more. */
        uint32_t kept = 0;
        for (uint32_t i = 0; i < 3; i++) {
            kept += node_placement_has(&map[p], before[p].ids[i]);
        }
        assert_int_equal(kept, z > 0 ? 2 : 3);
        assert_int_equal(map[p].epoch, before[p].epoch + (z > 0));
    }
    assert_int_equal(changed, shared);
    assert_true(shared > 0);
    /* A seventh member (zone 0) joins: nothing to spread, nothing moves. */
    memcpy(before, map, sizeof(map));
    assert_int_equal(node_place_domains(map, PARTS, m, dom, 7, 3, NULL, 0), 0);
    /* Member 30 (zone 1) leaves: its partitions get a replica on 40, the other of zone 1. */
    raft_id rest[6] = {10, 20, 40, 50, 60, 70};
    struct node_domain rest_dom[6] = {{0, 0}, {0, 0}, {1, 1}, {2, 2}, {2, 2}, {0, 3}};
    size_t had = load_of(map, PARTS, 30);
    assert_int_equal(node_place_domains(map, PARTS, rest, rest_dom, 6, 3, NULL, 0), had);
    for (uint32_t p = 0; p < PARTS; p++) {
        assert_int_equal(zones_of(&map[p], rest, rest_dom, 6, 0), 3);
        if (node_placement_has(&before[p], 30)) {
            assert_true(node_placement_has(&map[p], 40));
        }
    }
}

/* A partition's replicas are r distinct members of m[0..n). */
static void check_valid(const struct node_placement *map, uint32_t parts, const raft_id *m,
                        size_t n, uint32_t r)
{
    for (uint32_t p = 0; p < parts; p++) {
        assert_int_equal(map[p].count, r);
        for (uint32_t i = 0; i < map[p].count; i++) {
            int found = 0;
            for (size_t k = 0; k < n; k++) {
                found |= map[p].ids[i] == m[k];
            }
            assert_true(found);
            for (uint32_t j = i + 1; j < map[p].count; j++) {
                assert_true(map[p].ids[i] != map[p].ids[j]);
            }
        }
    }
}

/* rebalance-max-moves bounds the moves of one map change: a member removed from 5 (16
 * partitions, RF 3) moves its replicas at most `limit` partitions at a time, the others as
 * those finish, and ends where every partition has 3 replicas on the 4 left; a move under
 * way that changes again (redirected) takes no new room. With limit 1 (what 0 means for the
 * moves the map must make) it still ends. */
static void test_moves_bounded(void **state)
{
    (void)state;
    enum { P = 16 };
    raft_id m[5] = {0x10, 0x20, 0x30, 0x40, 0x50};
    for (size_t limit = 1; limit <= 3; limit++) {
        struct node_placement cur[P] = {{0}}, next[P], origin[P] = {{0}};
        node_place(cur, P, m, 5, 3, NULL, 0);
        size_t owed = load_of(cur, P, m[4]), rounds = 0, moved = 0;
        assert_true(owed > limit);
        for (;;) {
            uint8_t settled[P], moving[P];
            memset(settled, 1, sizeof(settled)); /* every move started last round finished */
            memset(moving, 0, sizeof(moving));
            memcpy(next, cur, sizeof(next));
            size_t changed = node_place_domains(next, P, m, NULL, 4, 3, NULL, 0);
            size_t held = node_place_limit(cur, next, P, moving, limit);
            if (changed == 0) {
                break;
            }
            assert_int_equal(changed - held, HY_MIN(changed, limit));
            assert_int_equal(held, changed > limit ? changed - limit : 0);
            node_moves_note(origin, cur, next, P, settled);
            for (uint32_t p = 0; p < P; p++) {
                if (next[p].epoch != cur[p].epoch) {
                    /* Where the move started: the replicas before it, the removed one among
                     * them. */
                    assert_true(node_placement_same(&origin[p], &cur[p]));
                    assert_true(node_placement_has(&origin[p], m[4]));
                    moved++;
                }
            }
            memcpy(cur, next, sizeof(cur));
            rounds++;
            assert_true(rounds <= P);
        }
        assert_int_equal(moved, owed);
        assert_int_equal(rounds, (owed + limit - 1) / limit);
        check_valid(cur, P, m, 4, 3);
    }
    /* Room 0: nothing new starts, but a move under way that the map changes again does. */
    struct node_placement cur[P] = {{0}}, next[P];
    node_place(cur, P, m, 5, 3, NULL, 0);
    memcpy(next, cur, sizeof(next));
    size_t changed = node_place_domains(next, P, m, NULL, 4, 3, NULL, 0);
    uint8_t moving[P] = {0};
    int redirected = -1;
    for (uint32_t p = 0; p < P && redirected < 0; p++) {
        if (next[p].epoch != cur[p].epoch) {
            redirected = (int)p;
            moving[p] = 1;
        }
    }
    assert_true(redirected >= 0);
    assert_int_equal(node_place_limit(cur, next, P, moving, 0), changed - 1);
    for (uint32_t p = 0; p < P; p++) {
        assert_int_equal(next[p].epoch != cur[p].epoch, (int)p == redirected);
    }
}

/* Where moves start, and cancelling them: a fair-share move under way goes back to its
 * origin (a new epoch, the origin dropped); a finished one stays; a move the map must make
 * (its source removed) stays; a move redirected keeps its first origin; a settled partition
 * loses its record. */
static void test_moves_note_and_cancel(void **state)
{
    (void)state;
    enum { P = 8 };
    raft_id m[5] = {0x10, 0x20, 0x30, 0x40, 0x50};
    struct node_placement cur[P] = {{0}}, next[P], origin[P] = {{0}};
    node_place(cur, P, m, 4, 3, NULL, 0); /* m[4] joins next */
    memcpy(next, cur, sizeof(next));
    int p = node_place_rebalance(next, P, m, NULL, 5, NULL, 0, NULL);
    assert_true(p >= 0);
    assert_true(node_placement_has(&next[p], m[4]));
    uint8_t settled[P], cancelled[P];
    memset(settled, 1, sizeof(settled));
    assert_int_equal(node_moves_note(origin, cur, next, P, settled), 1);
    for (uint32_t q = 0; q < P; q++) {
        assert_int_equal(origin[q].count, (uint32_t)q == (uint32_t)p ? 3 : 0);
    }
    assert_true(node_placement_same(&origin[p], &cur[p]));
    assert_int_equal(origin[p].epoch, cur[p].epoch);
    /* Nothing new noted while nothing changes and the move is not settled. */
    settled[p] = 0;
    assert_int_equal(node_moves_note(origin, next, next, P, settled), 0);
    /* Settled at the new epoch: finished, nothing to cancel. */
    struct node_placement map[P], keep[P];
    memcpy(map, next, sizeof(map));
    settled[p] = 1;
    assert_int_equal(node_moves_cancel(map, origin, P, settled, m, NULL, 5, 3, NULL, 0, cancelled),
                     0);
    assert_memory_equal(map, next, sizeof(map));
    /* Under way: back on its origin, one epoch further. */
    settled[p] = 0;
    memcpy(keep, origin, sizeof(keep));
    assert_int_equal(node_moves_cancel(map, origin, P, settled, m, NULL, 5, 3, NULL, 0, cancelled),
                     1);
    assert_int_equal(cancelled[p], 1);
    assert_true(node_placement_same(&map[p], &cur[p]));
    assert_false(node_placement_has(&map[p], m[4]));
    assert_int_equal(map[p].epoch, next[p].epoch + 1);
    assert_int_equal(origin[p].count, 0);
    for (uint32_t q = 0; q < P; q++) {
        if ((int)q != p) {
            assert_memory_equal(&map[q], &next[q], sizeof(map[q]));
        }
    }
    /* Redirected mid-move (its target changes again): the origin stays the first one. */
    memcpy(origin, keep, sizeof(origin));
    struct node_placement again[P];
    memcpy(again, next, sizeof(again));
    for (uint32_t k = 0; k < again[p].count; k++) {
        if (again[p].ids[k] == m[4]) {
            for (size_t c = 0; c < 5; c++) {
                if (!node_placement_has(&again[p], m[c])) {
                    again[p].ids[k] = m[c];
                    break;
                }
            }
        }
    }
    again[p].epoch++;
    assert_int_equal(node_moves_note(origin, next, again, P, settled), 0);
    assert_memory_equal(origin, keep, sizeof(origin));
    /* Settled and unchanged: the record goes. */
    settled[p] = 1;
    assert_int_equal(node_moves_note(origin, again, again, P, settled), 1);
    assert_int_equal(origin[p].count, 0);

    /* A member removed: the moves the map must make are kept by a cancel. */
    memset(origin, 0, sizeof(origin));
    memset(cur, 0, sizeof(cur));
    node_place(cur, P, m, 5, 3, NULL, 0);
    memcpy(next, cur, sizeof(next));
    size_t changed = node_place_domains(next, P, m, NULL, 4, 3, NULL, 0);
    assert_true(changed > 0);
    memset(settled, 1, sizeof(settled));
    node_moves_note(origin, cur, next, P, settled);
    memset(settled, 0, sizeof(settled));
    memcpy(map, next, sizeof(map));
    assert_int_equal(node_moves_cancel(map, origin, P, settled, m, NULL, 4, 3, NULL, 0, cancelled),
                     0);
    assert_memory_equal(map, next, sizeof(map));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_spread),
        cmocka_unit_test(test_same_input_same_map),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_rebalance_after_join),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_avoid_members_seen_down),
        cmocka_unit_test(test_lower_rf_drops_replicas_seen_down_first),
        cmocka_unit_test(test_lower_rf_drops_the_member_down_longest),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_zones_random_layouts),
        cmocka_unit_test(test_racks_in_one_zone),
        cmocka_unit_test(test_zones_repair_and_stay_stable),
        cmocka_unit_test(test_moves_bounded),
        cmocka_unit_test(test_moves_note_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
