/*
 * placement.c - the partition map's arithmetic (placement.h). Pure: no node, no clock.
 *
 * Placement is greedy on load: each missing replica goes to the member holding fewest, among
 * those not already in the partition. From an empty map this keeps every member within one
 * replica of every other (at each step the r least loaded distinct members take one more), and
 * since existing replicas stay where they are, a change moves only what it must: the replicas
 * of a member that left, the ones a partition lacks.
 *
 * Failure domains come first when the members span more than one zone (or rack): a new
 * replica goes where it shares no zone with the partition's others if any member allows it,
 * and a partition whose replicas share a zone that another member could spare has them
 * replaced (spread_domains). Without zones every step is the load-only one above.
 */
#include "node/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"

#define MAP_MAGIC "halyard-partition-map 1 "

_Static_assert(RAFT_SERVERS_MAX <= 32, "fresh replicas are bits of a uint32_t per partition");

int node_placement_has(const struct node_placement *pl, raft_id id)
{
    for (uint32_t i = 0; i < pl->count; i++) {
        if (pl->ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    raft_id x = *(const raft_id *)a, y = *(const raft_id *)b;
    return x < y ? -1 : x > y;
}

/* The members sorted by id, with their domains and what placement counts per member. */
struct place_ctx {
    size_t n;
    raft_id id[RAFT_SERVERS_MAX];
    struct node_domain dom[RAFT_SERVERS_MAX];
    size_t load[RAFT_SERVERS_MAX];
    uint8_t avoided[RAFT_SERVERS_MAX];
    int zones; /* the members span more than one zone: replicas spread over zones */
    int racks; /* ... more than one rack */
};

static int member_index(const struct place_ctx *c, raft_id id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->id[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

/* Replicas of pl (other than the one at `skip`, UINT32_MAX for none) in member i's zone and
 * in its rack; zero when the members span one zone (one rack). */
static void domain_conflicts(const struct place_ctx *c, const struct node_placement *pl, size_t i,
                             uint32_t skip, uint32_t *zone_out, uint32_t *rack_out)
{
    uint32_t z = 0, r = 0;
    for (uint32_t k = 0; k < pl->count; k++) {
        int j = member_index(c, pl->ids[k]);
        if (k == skip || j < 0) {
            continue;
        }
        z += c->zones && c->dom[j].zone == c->dom[i].zone;
        r += c->racks && c->dom[j].rack == c->dom[i].rack;
    }
    *zone_out = z;
    *rack_out = r;
}

/* Pairs of pl's replicas that share a zone, and a rack. */
static void shared_pairs(const struct place_ctx *c, const struct node_placement *pl, uint32_t *z,
                         uint32_t *r)
{
    *z = *r = 0;
    for (uint32_t k = 0; k < pl->count; k++) {
        int i = member_index(c, pl->ids[k]);
        for (uint32_t j = k + 1; i >= 0 && j < pl->count; j++) {
            int o = member_index(c, pl->ids[j]);
            if (o >= 0) {
                *z += c->zones && c->dom[i].zone == c->dom[o].zone;
                *r += c->racks && c->dom[i].rack == c->dom[o].rack;
            }
        }
    }
}

static void ctx_init(struct place_ctx *c, const raft_id *members, const struct node_domain *dom,
                     size_t n_members, const raft_id *avoid, size_t n_avoid)
{
    HY_ASSERT(n_members <= RAFT_SERVERS_MAX);
    memset(c, 0, sizeof(*c));
    c->n = n_members;
    memcpy(c->id, members, n_members * sizeof(*members));
    qsort(c->id, n_members, sizeof(*c->id), id_cmp);
    for (size_t i = 0; i < n_members; i++) {
        for (size_t k = 0; k < n_members && dom != NULL; k++) {
            if (members[k] == c->id[i]) {
                c->dom[i] = dom[k];
            }
        }
        /* Graded: avoid[0] most (the caller lists the members down longest first), so that
         * of two replicas on members seen down, the one down longer is dropped first. */
        for (size_t k = 0; k < n_avoid && c->avoided[i] == 0; k++) {
            c->avoided[i] = c->id[i] == avoid[k] ? (uint8_t)(n_avoid - k) : 0;
        }
        c->zones |= c->dom[i].zone != c->dom[0].zone;
        c->racks |= c->dom[i].rack != c->dom[0].rack;
    }
}

/* Lexicographic order of two tuples of n numbers: negative, zero or positive. */
static int tuple_cmp(const uint64_t *a, const uint64_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return a[i] < b[i] ? -1 : 1;
        }
    }
    return 0;
}

/* Too few: repeatedly, of the pairs (member, short partition that lacks it), the one that
 * shares fewest zones then racks with the partition's replicas, then the least loaded member
 * (lowest number among equals), then the partition with fewest members able to take it (it
 * has the least choice), then the lowest partition. With one zone this is: the least loaded
 * member takes one, so from an empty map loads stay within one of each other. Members in
 * `avoid` only once no other can take one. */
static void fill_short(struct place_ctx *c, struct node_placement *map, uint32_t parts, uint32_t r,
                       uint8_t *dirty, uint32_t *fresh)
{
    for (int pass = 0; pass < 2;) {
        uint64_t best[6] = {0};
        int found = 0;
        size_t best_m = 0;
        uint32_t best_p = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (pass == 0 && c->avoided[i]) {
                continue;
            }
            for (uint32_t p = 0; p < parts; p++) {
                const struct node_placement *pl = &map[p];
                if (pl->count >= r || node_placement_has(pl, c->id[i])) {
                    continue;
                }
                uint32_t zc, rc;
                domain_conflicts(c, pl, i, UINT32_MAX, &zc, &rc);
                uint64_t key[6] = {zc, rc, c->load[i], i, c->n - pl->count, p};
                if (!found || tuple_cmp(key, best, 6) < 0) {
                    memcpy(best, key, sizeof(best));
                    best_m = i;
                    best_p = p;
                    found = 1;
                }
            }
        }
        if (!found) {
            pass++; /* none left that is not avoided: the avoided ones, then done */
            continue;
        }
        struct node_placement *pl = &map[best_p];
        fresh[best_p] |= 1u << pl->count;
        pl->ids[pl->count++] = c->id[best_m];
        c->load[best_m]++;
        dirty[best_p] = 1;
    }
}

/* Replicas placed by this call (fresh: no data has moved for them yet) go from a member
 * holding two or more than another to that one, where the partition lacks it and its zones
 * and racks stay as spread: the zone-first choices of fill_short can leave loads apart that
 * a balanced placement of the same changes avoids. Replicas already in place never move for
 * balance here. Ends: each swap lowers the sum of squared loads. */
static void balance_fresh(struct place_ctx *c, struct node_placement *map, uint32_t parts,
                          uint32_t *fresh)
{
    for (int moved = 1; moved;) {
        moved = 0;
        for (size_t h = 0; h < c->n && !moved; h++) {
            for (size_t l = 0; l < c->n && !moved; l++) {
                if (c->load[h] < c->load[l] + 2 || c->avoided[l]) {
                    continue;
                }
                for (uint32_t p = 0; p < parts && !moved; p++) {
                    struct node_placement *pl = &map[p];
                    if (node_placement_has(pl, c->id[l])) {
                        continue;
                    }
                    for (uint32_t k = 0; k < pl->count && !moved; k++) {
                        if (pl->ids[k] != c->id[h] || !(fresh[p] & (1u << k))) {
                            continue;
                        }
                        uint32_t hz, hr, lz, lr;
                        domain_conflicts(c, pl, h, k, &hz, &hr);
                        domain_conflicts(c, pl, l, k, &lz, &lr);
                        if (lz < hz || (lz == hz && lr <= hr)) {
                            pl->ids[k] = c->id[l];
                            c->load[h]--;
                            c->load[l]++;
                            moved = 1;
                        }
                    }
                }
            }
        }
    }
}

/* A partition whose replicas share a zone (rack) while a member it lacks, in a zone (rack) it
 * lacks, could hold one: replace replicas, one at a time, each swap lowering the shared pairs
 * (zones first), the least loaded newcomer and the most loaded leaver first. Ends: every
 * swap lowers a finite count. */
static void spread_domains(struct place_ctx *c, struct node_placement *map, uint32_t parts,
                           uint8_t *dirty, uint32_t *fresh)
{
    for (uint32_t p = 0; p < parts && (c->zones || c->racks); p++) {
        struct node_placement *pl = &map[p];
        for (;;) {
            uint32_t z, r;
            shared_pairs(c, pl, &z, &r);
            if (z == 0 && r == 0) {
                break;
            }
            uint64_t best[6] = {z, r, 0, 0, 0, 0};
            int found = 0;
            uint32_t best_k = 0;
            size_t best_m = 0;
            for (uint32_t k = 0; k < pl->count; k++) {
                int v = member_index(c, pl->ids[k]);
                uint32_t vz, vr;
                domain_conflicts(c, pl, (size_t)v, k, &vz, &vr);
                for (size_t i = 0; i < c->n; i++) {
                    if (c->avoided[i] || node_placement_has(pl, c->id[i])) {
                        continue;
                    }
                    uint32_t nz, nr;
                    domain_conflicts(c, pl, i, k, &nz, &nr);
                    uint64_t key[6] = {z - vz + nz,           r - vr + nr, c->load[i],
                                       SIZE_MAX - c->load[v], i,           k};
                    if ((found && tuple_cmp(key, best, 6) < 0) ||
                        (!found && tuple_cmp(key, best, 2) < 0)) {
                        memcpy(best, key, sizeof(best));
                        best_k = k;
                        best_m = i;
                        found = 1;
                    }
                }
            }
            if (!found) {
                break; /* no member could spread it further */
            }
            c->load[member_index(c, pl->ids[best_k])]--;
            pl->ids[best_k] = c->id[best_m];
            fresh[p] |= 1u << best_k;
            c->load[best_m]++;
            dirty[p] = 1;
        }
    }
}

size_t node_place_domains(struct node_placement *map, uint32_t parts, const raft_id *members,
                          const struct node_domain *dom, size_t n_members, uint32_t rf,
                          const raft_id *avoid, size_t n_avoid)
{
    struct place_ctx c;
    ctx_init(&c, members, dom, n_members, avoid, n_avoid);
    uint32_t r = rf < n_members ? rf : (uint32_t)n_members;
    size_t changed = 0;
    uint8_t *dirty = hy_xcalloc(parts ? parts : 1, 1);
    /* Replicas on nodes that are no longer members go; the others count as load. */
    for (uint32_t p = 0; p < parts; p++) {
        struct node_placement *pl = &map[p];
        uint32_t k = 0;
        for (uint32_t i = 0; i < pl->count; i++) {
            int mi = member_index(&c, pl->ids[i]);
            if (mi >= 0) {
                pl->ids[k++] = pl->ids[i];
                c.load[mi]++;
            }
        }
        dirty[p] = k != pl->count;
        pl->count = k;
    }
    for (uint32_t p = 0; p < parts; p++) {
        struct node_placement *pl = &map[p];
        /* Too many (the replication factor lowered, or a map written with more members):
         * drop the replicas on members in `avoid` (seen down) first, then those that share a
         * zone (a rack) most, then those of the most loaded members. A replica on a live
         * member dropped while one on a dead member stays can cost the partition its quorum:
         * with RF 3 lowered to 2 while n1 and n3 were lost, a partition on n2, n3 and n5
         * kept n3 and dropped n5, and never led again (simulator seed 998000006 --nodes 5
         * --partitions 8 --rf 3 --rf-change). Of two replicas on members in `avoid`, the one
         * listed first (down longer) goes: with RF 3 lowered to 2 while n1 was lost, a link
         * from the metadata leader to n2 closed for a moment (a corrupted frame) and a
         * partition on n1, n2, n3 dropped n2, kept the dead n1, and never led again (seed 7
         * --nodes 5 --partitions 8 --rf 3 --rf-change, on branch bal16). */
        while (pl->count > r) {
            uint32_t worst = 0;
            uint64_t worst_key[4] = {0};
            for (uint32_t i = 0; i < pl->count; i++) {
                int a = member_index(&c, pl->ids[i]);
                uint32_t zc, rc;
                domain_conflicts(&c, pl, (size_t)a, i, &zc, &rc);
                uint64_t key[4] = {c.avoided[a], zc, rc, c.load[a]};
                if (i == 0 || tuple_cmp(key, worst_key, 4) >= 0) {
                    worst = i;
                    memcpy(worst_key, key, sizeof(key));
                }
            }
            c.load[member_index(&c, pl->ids[worst])]--;
            pl->ids[worst] = pl->ids[--pl->count];
            dirty[p] = 1;
        }
    }
    uint32_t *fresh = hy_xcalloc(parts ? parts : 1, sizeof(*fresh));
    fill_short(&c, map, parts, r, dirty, fresh);
    spread_domains(&c, map, parts, dirty, fresh);
    if (c.zones || c.racks) {
        balance_fresh(&c, map, parts, fresh);
    }
    hy_free(fresh);
    for (uint32_t p = 0; p < parts; p++) {
        if (dirty[p]) {
            map[p].epoch++;
            changed++;
        }
    }
    hy_free(dirty);
    return changed;
}

int node_place_rebalance(struct node_placement *map, uint32_t parts, const raft_id *members,
                         const struct node_domain *dom, size_t n_members, const raft_id *avoid,
                         size_t n_avoid, const uint8_t *busy)
{
    struct place_ctx c;
    ctx_init(&c, members, dom, n_members, avoid, n_avoid);
    for (uint32_t p = 0; p < parts; p++) {
        for (uint32_t i = 0; i < map[p].count; i++) {
            int mi = member_index(&c, map[p].ids[i]);
            if (mi >= 0) {
                c.load[mi]++;
            }
        }
    }
    /* The pair farthest apart first (most loaded giver, then least loaded taker, lowest
     * numbers among equals), then the lowest partition that may move between them. */
    uint64_t best[4] = {0};
    int found = 0;
    uint32_t best_p = 0, best_k = 0;
    size_t best_l = 0;
    for (size_t h = 0; h < c.n; h++) {
        for (size_t l = 0; l < c.n; l++) {
            if (c.load[h] < c.load[l] + 2 || c.avoided[l]) {
                continue;
            }
            uint64_t pair[2] = {SIZE_MAX - c.load[h], c.load[l]};
            if (found && tuple_cmp(pair, best, 2) > 0) {
                continue;
            }
            for (uint32_t p = 0; p < parts; p++) {
                const struct node_placement *pl = &map[p];
                if ((busy != NULL && busy[p]) || node_placement_has(pl, c.id[l])) {
                    continue;
                }
                for (uint32_t k = 0; k < pl->count; k++) {
                    if (pl->ids[k] != c.id[h]) {
                        continue;
                    }
                    uint32_t hz, hr, lz, lr;
                    domain_conflicts(&c, pl, h, k, &hz, &hr);
                    domain_conflicts(&c, pl, l, k, &lz, &lr);
                    uint64_t key[4] = {pair[0], pair[1], h * c.n + l, p};
                    if ((lz < hz || (lz == hz && lr <= hr)) &&
                        (!found || tuple_cmp(key, best, 4) < 0)) {
                        memcpy(best, key, sizeof(best));
                        best_p = p;
                        best_k = k;
                        best_l = l;
                        found = 1;
                    }
                }
            }
        }
    }
    if (!found) {
        return -1;
    }
    map[best_p].ids[best_k] = c.id[best_l];
    map[best_p].epoch++;
    return (int)best_p;
}

size_t node_place(struct node_placement *map, uint32_t parts, const raft_id *members,
                  size_t n_members, uint32_t rf, const raft_id *avoid, size_t n_avoid)
{
    return node_place_domains(map, parts, members, NULL, n_members, rf, avoid, n_avoid);
}

void node_placement_shared(const struct node_placement *pl, const raft_id *members,
                           const struct node_domain *dom, size_t n_members, uint32_t *zone_out,
                           uint32_t *rack_out)
{
    struct place_ctx c;
    ctx_init(&c, members, dom, n_members, NULL, 0);
    shared_pairs(&c, pl, zone_out, rack_out);
}

int node_placement_same(const struct node_placement *a, const struct node_placement *b)
{
    if (a->count != b->count) {
        return 0;
    }
    for (uint32_t i = 0; i < a->count; i++) {
        if (!node_placement_has(b, a->ids[i])) {
            return 0;
        }
    }
    return 1;
}

int node_moves_note(struct node_placement *origin, const struct node_placement *cur,
                    const struct node_placement *next, uint32_t parts, const uint8_t *settled)
{
    int changed = 0;
    for (uint32_t p = 0; p < parts; p++) {
        struct node_placement *o = &origin[p];
        if (next[p].epoch != cur[p].epoch) {
            /* A move redirected before it finished is still where it started: its voters
             * have not left the origin yet, whatever the map said in between. */
            if (o->count == 0 || settled[p]) {
                changed |= o->count != cur[p].count || o->epoch != cur[p].epoch ||
                           !node_placement_same(o, &cur[p]);
                *o = cur[p];
            }
        } else if (o->count > 0 && settled[p]) {
            memset(o, 0, sizeof(*o)); /* its voters are the map's: the move is over */
            changed = 1;
        }
    }
    return changed;
}

size_t node_place_limit(const struct node_placement *cur, struct node_placement *next,
                        uint32_t parts, const uint8_t *moving, size_t room)
{
    size_t held = 0;
    for (uint32_t p = 0; p < parts; p++) {
        if (next[p].epoch == cur[p].epoch || moving[p]) {
            continue;
        }
        if (room > 0) {
            room--;
        } else {
            next[p] = cur[p];
            held++;
        }
    }
    return held;
}

size_t node_moves_cancel(struct node_placement *map, struct node_placement *origin, uint32_t parts,
                         const uint8_t *settled, const raft_id *members,
                         const struct node_domain *dom, size_t n_members, uint32_t rf,
                         const raft_id *avoid, size_t n_avoid, uint8_t *cancelled)
{
    struct node_placement *back = hy_xcalloc(parts ? parts : 1, sizeof(*back));
    memcpy(back, map, parts * sizeof(*map));
    for (uint32_t p = 0; p < parts; p++) {
        cancelled[p] =
            origin[p].count > 0 && !settled[p] && !node_placement_same(&origin[p], &map[p]);
        if (cancelled[p]) {
            memcpy(back[p].ids, origin[p].ids, sizeof(back[p].ids));
            back[p].count = origin[p].count;
        }
    }
    /* The map placement would make of the cancelled one: a partition it changes again is one
     * whose move the map must make, and cancelling it would only start it over. */
    struct node_placement *again = hy_xcalloc(parts ? parts : 1, sizeof(*again));
    memcpy(again, back, parts * sizeof(*back));
    node_place_domains(again, parts, members, dom, n_members, rf, avoid, n_avoid);
    size_t count = 0;
    for (uint32_t p = 0; p < parts; p++) {
        if (cancelled[p] && again[p].epoch != back[p].epoch) {
            cancelled[p] = 0;
        }
        if (cancelled[p]) {
            map[p].count = back[p].count;
            memcpy(map[p].ids, back[p].ids, sizeof(map[p].ids));
            map[p].epoch++;
            memset(&origin[p], 0, sizeof(origin[p]));
            count++;
        }
    }
    hy_free(again);
    hy_free(back);
    return count;
}

void node_placement_encode(const struct node_placement *map, uint32_t parts, struct hy_buf *out)
{
    hy_buf_printf(out, MAP_MAGIC "%u\n", parts);
    for (uint32_t p = 0; p < parts; p++) {
        hy_buf_printf(out, "%llu ", (unsigned long long)map[p].epoch);
        for (uint32_t i = 0; i < map[p].count; i++) {
            hy_buf_printf(out, "%s%llx", i ? "," : "", (unsigned long long)map[p].ids[i]);
        }
        hy_buf_append(out, "\n", 1);
    }
}

/* Reads an unsigned number in base 10 or 16 from p[*off..len); 0 when there is none, or it
 * has a leading zero, or it overflows. */
static int read_num(const uint8_t *p, size_t len, size_t *off, int base, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *off;
    while (*off < len) {
        int c = p[*off], d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (base == 16 && c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            break;
        }
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
            return 0; /* would overflow */
        }
        v = v * (uint64_t)base + (uint64_t)d;
        (*off)++;
    }
    *out = v;
    /* Canonical only (no leading zero): a map has one text, as its encoder writes it. */
    return *off > start && (p[start] != '0' || *off == start + 1);
}

int node_placement_decode(const uint8_t *p, size_t len, struct node_placement *map, uint32_t parts)
{
    size_t off = strlen(MAP_MAGIC);
    uint64_t count;
    if (len < off || memcmp(p, MAP_MAGIC, off) != 0 || !read_num(p, len, &off, 10, &count) ||
        count != parts || off >= len || p[off++] != '\n') {
        return 0;
    }
    for (uint32_t k = 0; k < parts; k++) {
        struct node_placement *pl = &map[k];
        memset(pl, 0, sizeof(*pl));
        if (!read_num(p, len, &off, 10, &pl->epoch) || off >= len || p[off++] != ' ') {
            return 0;
        }
        while (off < len && p[off] != '\n') {
            uint64_t id;
            if (pl->count == RAFT_SERVERS_MAX || !read_num(p, len, &off, 16, &id) ||
                id == RAFT_NONE || node_placement_has(pl, id)) {
                return 0;
            }
            pl->ids[pl->count++] = id;
            if (off < len && p[off] == ',') {
                if (++off >= len || p[off] == '\n') {
                    return 0; /* a comma ends a line */
                }
            } else if (off >= len || p[off] != '\n') {
                return 0;
            }
        }
        if (off >= len || p[off++] != '\n') {
            return 0;
        }
    }
    return off == len;
}
