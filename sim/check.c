/*
 * check.c - the safety invariants of Raft (Figure 3.2 of the dissertation), checked after
 * every step of every node:
 *   Election Safety      at most one leader per term;
 *   Log Matching         same index and term => identical entries up to there;
 *   Leader Completeness  a new leader holds every entry committed before its election;
 *   State Machine Safety every node applies the same entry at each index;
 *   plus: commit index monotonic within a node's life, no acknowledged write lost, and at the
 *   end, replicas that applied the same prefix hold the same keys.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "sim_int.h"

uint32_t sim_entry_crc(const struct raft_entry *e)
{
    uint32_t c = hy_crc32c(0, (const uint8_t *)&e->type, sizeof(e->type));
    return e->len ? hy_crc32c(c, e->data, e->len) : c;
}

void record_free(struct sim_record *r)
{
    hy_free(r->term);
    hy_free(r->crc);
    hy_free(r->in_term);
    memset(r, 0, sizeof(*r));
}

static void record_reserve(struct sim_record *r, uint64_t index)
{
    if (index < r->cap) {
        return;
    }
    size_t cap = r->cap ? r->cap : 1024;
    while (cap <= index) {
        cap *= 2;
    }
    r->term = hy_xrealloc(r->term, cap * sizeof(*r->term));
    r->crc = hy_xrealloc(r->crc, cap * sizeof(*r->crc));
    r->in_term = hy_xrealloc(r->in_term, cap * sizeof(*r->in_term));
    memset(r->term + r->cap, 0, (cap - r->cap) * sizeof(*r->term));
    memset(r->crc + r->cap, 0, (cap - r->cap) * sizeof(*r->crc));
    memset(r->in_term + r->cap, 0, (cap - r->cap) * sizeof(*r->in_term));
    r->cap = cap;
}

/* Records (term, crc) at index, or compares with what is recorded; returns 0 on mismatch. */
static int record_agree(struct sim_record *r, uint64_t index, uint64_t term, uint32_t crc)
{
    record_reserve(r, index);
    if (r->term[index] == 0) {
        r->term[index] = term;
        r->crc[index] = crc;
        return 1;
    }
    return r->term[index] == term && r->crc[index] == crc;
}

static void check_election_safety(struct sim *s, struct sim_node *nd)
{
    uint64_t term = raft_term(&nd->raft);
    if (term >= s->cap_terms) {
        size_t cap = s->cap_terms ? s->cap_terms : 256;
        while (cap <= term) {
            cap *= 2;
        }
        s->term_leader = hy_xrealloc(s->term_leader, cap * sizeof(*s->term_leader));
        memset(s->term_leader + s->cap_terms, 0, (cap - s->cap_terms) * sizeof(raft_id));
        s->cap_terms = cap;
    }
    if (s->term_leader[term] == RAFT_NONE) {
        s->term_leader[term] = nd->id;
    } else if (s->term_leader[term] != nd->id) {
        sim_fail(s, "election safety: n%llu and n%llu both lead term %llu",
                 (unsigned long long)s->term_leader[term], (unsigned long long)nd->id,
                 (unsigned long long)term);
    }
}

/* Figure 3.2: "If a log entry is committed in a given term, then that entry will be present in
 * the logs of the leaders for all higher-numbered terms." (A slow node may still win an older
 * term after later terms committed entries: those it need not hold.) */
static void check_leader_completeness(struct sim *s, struct sim_node *nd)
{
    uint64_t base = nd->raft.log.snap_index;
    for (uint64_t i = base + 1; i <= s->commit_max && i < s->committed.cap; i++) {
        if (s->committed.in_term[i] >= raft_term(&nd->raft)) {
            continue;
        }
        const struct raft_entry *e = raft_entry_get(&nd->raft, i);
        if (e == NULL || e->term != s->committed.term[i] ||
            sim_entry_crc(e) != s->committed.crc[i]) {
            sim_fail(s,
                     "leader completeness: new leader n%llu (term %llu) lacks committed entry "
                     "%llu",
                     (unsigned long long)nd->id, (unsigned long long)raft_term(&nd->raft),
                     (unsigned long long)i);
            return;
        }
    }
}

static void check_commit(struct sim *s, struct sim_node *nd)
{
    uint64_t c = raft_commit_index(&nd->raft);
    if (c < nd->last_commit) {
        sim_fail(s, "commit index of n%llu went back from %llu to %llu", (unsigned long long)nd->id,
                 (unsigned long long)nd->last_commit, (unsigned long long)c);
        return;
    }
    for (uint64_t i = HY_MAX(nd->last_commit, nd->raft.log.snap_index) + 1; i <= c; i++) {
        const struct raft_entry *e = raft_entry_get(&nd->raft, i);
        HY_ASSERT(e != NULL);
        if (!record_agree(&s->committed, i, e->term, sim_entry_crc(e))) {
            sim_fail(s, "state machine safety: n%llu committed a different entry at %llu",
                     (unsigned long long)nd->id, (unsigned long long)i);
            return;
        }
        if (s->committed.in_term[i] == 0) {
            s->committed.in_term[i] = raft_term(&nd->raft);
        }
        if (i < s->acked.cap && s->acked.term[i] && s->acked.term[i] != e->term) {
            sim_fail(s, "acknowledged write at %llu lost", (unsigned long long)i);
            return;
        }
    }
    if (c > nd->last_commit) {
        const struct raft_membership *m = raft_membership(&nd->raft);
        sim_trace(s, "n%llu: commit %llu (term %llu, %s, %u servers, config at %llu)",
                  (unsigned long long)nd->id, (unsigned long long)c,
                  (unsigned long long)raft_term(&nd->raft), raft_role_name(raft_role(&nd->raft)),
                  m->count, (unsigned long long)nd->raft.membership_index);
    }
    nd->last_commit = c;
    s->commit_max = HY_MAX(s->commit_max, c);
}

/* Log Matching between nd and every other live node, down to the point both have committed
 * (below it the committed record already forces agreement). */
static void check_log_matching_pair(struct sim *s, struct sim_node *a, struct sim_node *b)
{
    uint64_t hi = HY_MIN(raft_last_index(&a->raft), raft_last_index(&b->raft));
    uint64_t lo = HY_MAX(HY_MIN(raft_commit_index(&a->raft), raft_commit_index(&b->raft)),
                         HY_MAX(a->raft.log.snap_index, b->raft.log.snap_index));
    int matched = 0;
    for (uint64_t i = hi; i > lo; i--) {
        const struct raft_entry *x = raft_entry_get(&a->raft, i);
        const struct raft_entry *y = raft_entry_get(&b->raft, i);
        if (!matched && x->term == y->term) {
            matched = 1;
        }
        if (matched && (x->term != y->term || sim_entry_crc(x) != sim_entry_crc(y))) {
            sim_fail(s, "log matching: n%llu and n%llu differ at %llu below a common entry",
                     (unsigned long long)a->id, (unsigned long long)b->id, (unsigned long long)i);
            return;
        }
    }
}

void check_after_step(struct sim *s, struct sim_node *nd)
{
    if (!nd->up || s->failed) {
        return;
    }
    if (raft_role(&nd->raft) == RAFT_LEADER) {
        check_election_safety(s, nd);
        if (nd->leader_term != raft_term(&nd->raft)) {
            nd->leader_term = raft_term(&nd->raft);
            check_leader_completeness(s, nd);
        }
    }
    check_commit(s, nd);
    sim_scenario_check(s, nd);
    for (int i = 0; i < s->n && !s->failed; i++) {
        if (&s->nodes[i] != nd && s->nodes[i].up) {
            check_log_matching_pair(s, nd, &s->nodes[i]);
        }
    }
}

void check_applied(struct sim *s, struct sim_node *nd, uint64_t index, const struct raft_entry *e)
{
    if (!record_agree(&s->applied, index, e->term, sim_entry_crc(e))) {
        sim_fail(s, "state machine safety: n%llu applied a different entry at %llu",
                 (unsigned long long)nd->id, (unsigned long long)index);
    }
}

void check_acked(struct sim *s, uint64_t index, uint64_t term)
{
    record_reserve(&s->acked, index);
    s->acked.term[index] = term;
    if (index < s->committed.cap && s->committed.term[index] && s->committed.term[index] != term) {
        sim_fail(s, "acknowledged write at %llu lost", (unsigned long long)index);
    }
}

void check_logs_full(struct sim *s)
{
    for (int a = 0; a < s->n; a++) {
        for (int b = a + 1; b < s->n && !s->failed; b++) {
            struct sim_node *x = &s->nodes[a], *y = &s->nodes[b];
            if (!x->up || !y->up) {
                continue;
            }
            uint64_t hi = HY_MIN(raft_last_index(&x->raft), raft_last_index(&y->raft));
            uint64_t lo = HY_MAX(x->raft.log.snap_index, y->raft.log.snap_index);
            int matched = 0;
            for (uint64_t i = hi; i > lo && !s->failed; i--) {
                const struct raft_entry *e = raft_entry_get(&x->raft, i);
                const struct raft_entry *f = raft_entry_get(&y->raft, i);
                matched |= e->term == f->term;
                if (matched && (e->term != f->term || sim_entry_crc(e) != sim_entry_crc(f))) {
                    sim_fail(s, "log matching (final): n%d and n%d differ at %llu", a + 1, b + 1,
                             (unsigned long long)i);
                }
            }
        }
    }
}

/* Replicas that applied the same prefix hold the same values. */
void check_convergence(struct sim *s)
{
    for (int a = 0; a < s->n; a++) {
        for (int b = a + 1; b < s->n; b++) {
            struct sim_node *x = &s->nodes[a], *y = &s->nodes[b];
            if (!x->up || !y->up || x->applied != y->applied) {
                continue;
            }
            for (int k = 0; k < SIM_KEYS; k++) {
                int64_t vx = 0, vy = 0;
                int hx = sim_kv_get(x->kv, k, &vx), hy = sim_kv_get(y->kv, k, &vy);
                if (hx != hy || vx != vy) {
                    sim_fail(s, "replicas n%d and n%d disagree on k%d at applied index %llu", a + 1,
                             b + 1, k, (unsigned long long)x->applied);
                    return;
                }
            }
        }
    }
}
