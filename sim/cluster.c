/*
 * cluster.c - the simulated world: event queue, network, disks, clocks, crashes, faults.
 *
 * Time is a global simulated millisecond counter; each node sees it through its own clock,
 * which may run fast or slow (rate skew). Events with equal times run in insertion order, so a
 * run is a pure function of the seed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "sim_int.h"

/* ---- diagnostics --------------------------------------------------------------------------- */

void sim_fail(struct sim *s, const char *fmt, ...)
{
    if (s->failed) {
        return;
    }
    s->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
    va_end(ap);
    if (s->o.trace) {
        printf("[%6llu] FAIL %s\n", (unsigned long long)s->now, s->reason);
    }
}

void sim_trace(struct sim *s, const char *fmt, ...)
{
    if (!s->o.trace) {
        return;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("[%6llu] %s\n", (unsigned long long)s->now, buf);
}

static void raft_log_cb(void *ctx, enum hy_log_level level, const char *msg)
{
    (void)level;
    sim_trace(ctx, "%s", msg);
}

/* ---- event queue (binary heap on (at, seq)) ------------------------------------------------ */

static int ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

void sim_push(struct sim *s, const struct sim_ev *ev)
{
    if (s->nheap == s->capheap) {
        s->capheap = s->capheap ? s->capheap * 2 : 256;
        s->heap = hy_xrealloc(s->heap, s->capheap * sizeof(*s->heap));
    }
    size_t i = s->nheap++;
    s->heap[i] = *ev;
    s->heap[i].seq = s->seq++;
    if (s->heap[i].at < s->now) {
        s->heap[i].at = s->now;
    }
    while (i > 0 && ev_less(&s->heap[i], &s->heap[(i - 1) / 2])) {
        struct sim_ev t = s->heap[i];
        s->heap[i] = s->heap[(i - 1) / 2];
        s->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct sim_ev sim_pop(struct sim *s)
{
    struct sim_ev top = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && ev_less(&s->heap[l], &s->heap[m])) {
            m = l;
        }
        if (r < s->nheap && ev_less(&s->heap[r], &s->heap[m])) {
            m = r;
        }
        if (m == i) {
            break;
        }
        struct sim_ev t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
    return top;
}

/* ---- messages ------------------------------------------------------------------------------ */

static struct raft_entry *entries_copy(const struct raft_entry *src, uint32_t n)
{
    if (n == 0) {
        return NULL;
    }
    struct raft_entry *e = hy_xcalloc(n, sizeof(*e));
    for (uint32_t i = 0; i < n; i++) {
        e[i] = src[i];
        e[i].data = src[i].len ? hy_xmemdup(src[i].data, src[i].len) : NULL;
    }
    return e;
}

static void entries_free(struct raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n && e; i++) {
        hy_free((void *)e[i].data);
    }
    hy_free(e);
}

static struct sim_msg *msg_copy(const struct raft_message *m)
{
    struct sim_msg *c = hy_xcalloc(1, sizeof(*c));
    c->m = *m;
    c->ents = entries_copy(m->entries, m->n_entries);
    c->m.entries = c->ents;
    if (m->type == RAFT_MSG_SNAPSHOT && m->len) {
        c->data = hy_xmemdup(m->data, m->len);
    }
    c->m.data = c->data;
    return c;
}

static void msg_free(struct sim_msg *c)
{
    if (c) {
        entries_free(c->ents, c->m.n_entries);
        hy_free(c->data);
        hy_free(c);
    }
}

int sim_node_index(const struct sim *s, raft_id id)
{
    return id >= 1 && id <= (raft_id)s->n ? (int)id - 1 : -1;
}

static int fault_on(const struct sim *s, int f)
{
    return !s->healing && (s->faults >> f & 1u);
}

/* Sends a copy of m from node `from`, subject to partitions, loss, duplication and delay;
 * random delays also reorder. */
static void net_send(struct sim *s, int from, const struct raft_message *m)
{
    int to = sim_node_index(s, m->to);
    if (to < 0 || s->block[from][to]) {
        return;
    }
    if (fault_on(s, SIM_F_DROP) && hy_prng_below(&s->rng, 1000) < s->drop_pm) {
        return;
    }
    int copies = 1 + (fault_on(s, SIM_F_DUP) && hy_prng_below(&s->rng, 1000) < s->dup_pm);
    for (int i = 0; i < copies; i++) {
        uint64_t delay = 1 + hy_prng_below(&s->rng, 3);
        if (fault_on(s, SIM_F_DELAY)) {
            delay += hy_prng_below(&s->rng, s->delay_max_ms + 1);
        }
        struct sim_ev ev = {.at = s->now + delay, .kind = EV_DELIVER, .node = to};
        ev.msg = msg_copy(m);
        ev.msg->from_wipes = s->nodes[from].wipes;
        ev.msg->to_wipes = s->nodes[to].wipes;
        sim_push(s, &ev);
    }
}

/* ---- clocks -------------------------------------------------------------------------------- */

static uint64_t local_now(const struct sim *s, const struct sim_node *nd)
{
    return nd->clk_base_l + (s->now - nd->clk_base_g) * nd->rate_ppm / 1000000u;
}

static uint64_t global_at(const struct sim *s, const struct sim_node *nd, uint64_t local)
{
    uint64_t ln = local_now(s, nd);
    if (local <= ln) {
        return s->now;
    }
    return s->now + ((local - ln) * 1000000u + nd->rate_ppm - 1) / nd->rate_ppm;
}

/* ---- disk ---------------------------------------------------------------------------------- */

static void disk_truncate(struct sim_disk *d, uint64_t from)
{
    while (d->n > 0 && d->snap_index + d->n >= from) {
        d->n--;
        hy_free((void *)d->ents[d->n].data);
    }
}

static void disk_append(struct sim_disk *d, uint64_t index, const struct raft_entry *e)
{
    if (index <= d->snap_index) {
        return; /* already covered by the snapshot */
    }
    HY_ASSERT(index == d->snap_index + d->n + 1);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->ents = hy_xrealloc(d->ents, d->cap * sizeof(*d->ents));
    }
    d->ents[d->n] = *e;
    d->ents[d->n].data = e->len ? hy_xmemdup(e->data, e->len) : NULL;
    d->n++;
}

static void disk_set_snapshot(struct sim_disk *d, uint64_t index, uint64_t term,
                              const struct raft_membership *m, const uint8_t *data, size_t len,
                              int keep_later)
{
    hy_free(d->snap);
    d->snap = len ? hy_xmemdup(data, len) : NULL;
    d->snap_len = len;
    d->snap_membership = *m;
    /* Keep entries after the snapshot when they extend it; drop the rest. */
    size_t drop = 0;
    if (keep_later && index >= d->snap_index) {
        drop = (size_t)HY_MIN((uint64_t)d->n, index - d->snap_index);
    } else {
        drop = d->n;
    }
    for (size_t i = 0; i < drop; i++) {
        hy_free((void *)d->ents[i].data);
    }
    if (d->n > drop) {
        memmove(d->ents, d->ents + drop, (d->n - drop) * sizeof(*d->ents));
    }
    d->n -= drop;
    d->snap_index = index;
    d->snap_term = term;
}

static void disk_wipe(struct sim_disk *d)
{
    disk_truncate(d, 1);
    hy_free(d->ents);
    hy_free(d->snap);
    struct raft_membership empty = {0};
    memset(d, 0, sizeof(*d));
    d->bootstrap = empty;
}

static void batch_free(struct sim_batch *b)
{
    hy_free(b->snap_data);
    entries_free(b->ents, b->n);
    for (uint32_t i = 0; i < b->nmsgs; i++) {
        msg_free(b->msgs[i]);
    }
    hy_free(b->msgs);
    memset(b, 0, sizeof(*b));
}

/* Applies (a prefix of, when torn) a batch to the disk image. */
static void batch_write(struct sim_disk *d, const struct sim_batch *b, uint32_t n_entries)
{
    if (b->tv) {
        d->term = b->term;
        d->vote = b->vote;
    }
    if (b->snap) {
        disk_set_snapshot(d, b->snap_index, b->snap_term, &b->snap_membership, b->snap_data,
                          b->snap_len, b->snap == 2);
    }
    if (b->has_entries) {
        disk_truncate(d, b->first);
        for (uint32_t i = 0; i < n_entries; i++) {
            disk_append(d, b->first + i, &b->ents[i]);
        }
    }
}

/* ---- node lifecycle -------------------------------------------------------------------------- */

static void node_boot(struct sim *s, struct sim_node *nd)
{
    struct raft_config cfg = s->rcfg;
    cfg.id = nd->id;
    cfg.seed = s->o.seed * 31 + nd->id * 7 + nd->inc;
    cfg.log = &s->log;
    raft_init(&nd->raft, &cfg);
    nd->kv = sim_kv_create(s->o.seed + nd->id);
    nd->applied = nd->disk.snap_index;
    if (nd->disk.snap_len) {
        HY_ASSERT(sim_kv_restore(nd->kv, nd->disk.snap, nd->disk.snap_len));
    }
    nd->up = 1;
    nd->last_commit = 0;
    nd->leader_term = 0;
    nd->timer_at_local = 0;
    int self = sim_node_index(s, nd->id);
    for (int b = 0; b < SIM_NODES_MAX; b++) {
        s->alive_view[self][b] = 1; /* a new process trusts every peer until it hears not */
        s->heard_ms[self][b] = s->now;
    }
    struct raft_event ev = {.type = RAFT_EV_START};
    ev.start.term = nd->disk.term;
    ev.start.vote = nd->disk.vote;
    ev.start.snap_index = nd->disk.snap_index;
    ev.start.snap_term = nd->disk.snap_term;
    ev.start.snap_membership = nd->disk.snap_membership;
    ev.start.snap_data = nd->disk.snap;
    ev.start.snap_len = nd->disk.snap_len;
    ev.start.entries = nd->disk.ents;
    ev.start.n_entries = (uint32_t)nd->disk.n;
    ev.start.bootstrap = nd->disk.bootstrap;
    sim_trace(s, "n%llu: start term %llu snap %llu entries %zu", (unsigned long long)nd->id,
              (unsigned long long)nd->disk.term, (unsigned long long)nd->disk.snap_index,
              nd->disk.n);
    sim_node_event(s, nd, &ev);
}

static void node_crash(struct sim *s, struct sim_node *nd)
{
    if (!nd->up) {
        return;
    }
    s->wake_deadline[sim_node_index(s, nd->id)] = 0;
    sim_trace(s, "n%llu: crash (%zu disk batches pending)", (unsigned long long)nd->id,
              nd->nbatches);
    /* The first pending write may be torn: some of its entries reached the platter. */
    if (nd->nbatches > 0 && fault_on(s, SIM_F_TORN) && !nd->batches[0].snap) {
        struct sim_batch *b = &nd->batches[0];
        uint32_t k = b->n ? (uint32_t)hy_prng_below(&s->rng, b->n) : 0;
        if (hy_prng_chance(&s->rng, 1, 2)) {
            batch_write(&nd->disk, b, k);
        }
    }
    for (size_t i = 0; i < nd->nbatches; i++) {
        batch_free(&nd->batches[i]);
    }
    nd->nbatches = 0;
    nd->up = 0;
    nd->inc++;
    nd->npw = 0;
    nd->npr = 0;
    raft_free(&nd->raft);
    sim_kv_destroy(nd->kv);
    nd->kv = NULL;
}

/* ---- handling an update (the caller's contract of raft.h, in order) -------------------------- */

static uint64_t disk_latency(struct sim *s)
{
    if (fault_on(s, SIM_F_SLOWDISK) && hy_prng_below(&s->rng, 1000) < s->slow_disk_pm) {
        return 5 + hy_prng_below(&s->rng, s->slow_disk_max_ms);
    }
    return hy_prng_below(&s->rng, 2);
}

static void node_send_all(struct sim *s, struct sim_node *nd, struct sim_msg **msgs, uint32_t n)
{
    int from = sim_node_index(s, nd->id);
    for (uint32_t i = 0; i < n; i++) {
        net_send(s, from, &msgs[i]->m);
    }
}

static void batch_fill(struct sim_batch *b, const struct raft_update *up)
{
    if (up->term_vote_changed) {
        b->tv = 1;
        b->term = up->term;
        b->vote = up->vote;
    }
    if (up->snapshot_install) {
        b->snap = 1;
        b->snap_index = up->snap_index;
        b->snap_term = up->snap_term;
        b->snap_membership = up->snap_membership;
        b->snap_data = up->snap_len ? hy_xmemdup(up->snap_data, up->snap_len) : NULL;
        b->snap_len = up->snap_len;
    }
    if (up->entries_first_index) {
        b->has_entries = 1;
        b->first = up->entries_first_index;
        b->n = up->n_entries;
        b->ents = entries_copy(up->entries, up->n_entries);
    }
}

static struct sim_batch *batch_new(struct sim *s, struct sim_node *nd, int persist)
{
    if (nd->nbatches == nd->capbatches) {
        nd->capbatches = nd->capbatches ? nd->capbatches * 2 : 8;
        nd->batches = hy_xrealloc(nd->batches, nd->capbatches * sizeof(*nd->batches));
    }
    struct sim_batch *b = &nd->batches[nd->nbatches++];
    memset(b, 0, sizeof(*b));
    uint64_t start = HY_MAX(nd->disk_free_at, s->now);
    b->done_at = start + (persist ? disk_latency(s) : 0);
    nd->disk_free_at = b->done_at;
    struct sim_ev ev = {.at = b->done_at, .kind = EV_DISK, .node = sim_node_index(s, nd->id)};
    ev.gen = nd->inc;
    sim_push(s, &ev);
    return b;
}

/* 1 when a term/vote change is still on its way to the disk. */
static int term_vote_unwritten(const struct sim_node *nd)
{
    for (size_t i = 0; i < nd->nbatches; i++) {
        if (nd->batches[i].tv) {
            return 1;
        }
    }
    return 0;
}

/* Steps 1 and 2: writes go to the disk queue; messages wait for the writes before them,
 * except what a leader sends, which goes at once unless a term/vote is unwritten (raft.h). */
static void node_persist_and_send(struct sim *s, struct sim_node *nd, const struct raft_update *up)
{
    int persist = up->term_vote_changed || up->snapshot_install || up->entries_first_index;
    int early_ok = !up->term_vote_changed && !term_vote_unwritten(nd);
    int all_now = !persist && nd->nbatches == 0; /* nothing to wait for */
    uint32_t late = 0;
    for (uint32_t i = 0; i < up->n_messages; i++) {
        if (all_now || (early_ok && raft_msg_may_precede_persist(&up->messages[i]))) {
            net_send(s, sim_node_index(s, nd->id), &up->messages[i]);
        } else {
            late++;
        }
    }
    if (!persist && late == 0) {
        return;
    }
    struct sim_batch *b = batch_new(s, nd, persist);
    batch_fill(b, up);
    b->nmsgs = late;
    b->msgs = late ? hy_xcalloc(late, sizeof(*b->msgs)) : NULL;
    for (uint32_t i = 0, k = 0; i < up->n_messages; i++) { /* all_now is 0 here */
        if (!(early_ok && raft_msg_may_precede_persist(&up->messages[i]))) {
            b->msgs[k++] = msg_copy(&up->messages[i]);
        }
    }
    struct sim_ev ev = {.node = sim_node_index(s, nd->id)};
    /* Crash points matter most right after a vote is cast: that is where a vote that was
     * never made durable would be forgotten. */
    if (up->term_vote_changed && up->vote != nd->id && fault_on(s, SIM_F_CRASH) &&
        hy_prng_chance(&s->rng, 1, 4)) {
        struct sim_ev crash = {.at = b->done_at + 1, .kind = EV_CRASH, .node = ev.node};
        crash.gen = nd->inc;
        sim_push(s, &crash);
    }
}

/* Step 3: apply committed entries in order, never beyond the commit index. */
static void node_apply(struct sim *s, struct sim_node *nd, uint64_t commit)
{
    while (nd->applied < commit && nd->up) {
        uint64_t i = nd->applied + 1;
        const struct raft_entry *e = raft_entry_get(&nd->raft, i);
        if (e == NULL) {
            sim_fail(s, "n%llu: committed entry %llu missing from its log",
                     (unsigned long long)nd->id, (unsigned long long)i);
            return;
        }
        check_applied(s, nd, i, e);
        int ok = 1;
        int64_t result = 0;
        if (e->type == RAFT_ENTRY_COMMAND) {
            ok = sim_kv_apply(nd->kv, e->data, e->len, &result);
            if (!ok) {
                sim_fail(s, "n%llu: unexpected reply applying entry %llu",
                         (unsigned long long)nd->id, (unsigned long long)i);
            }
        }
        nd->applied = i;
        node_on_applied(s, nd, i, e->term, ok, result);
    }
}

static void node_arm_timer(struct sim *s, struct sim_node *nd, uint64_t local)
{
    if (local == nd->timer_at_local) {
        return;
    }
    if (local == 0) { /* no timer (a quiesced group): the armed one is void */
        nd->timer_at_local = 0;
        nd->timer_gen++;
        return;
    }
    nd->timer_at_local = local;
    nd->timer_gen++;
    struct sim_ev ev = {.at = global_at(s, nd, local), .kind = EV_TIMER};
    ev.node = sim_node_index(s, nd->id);
    ev.gen = nd->timer_gen;
    ev.client = (int)nd->inc;
    sim_push(s, &ev);
}

/* Our own snapshot goes through the disk queue like every write: written ahead of a pending
 * truncation, it would keep stale entries after it (raft.h's contract, step 1). */
static void node_take_snapshot(struct sim *s, struct sim_node *nd)
{
    struct hy_buf b;
    hy_buf_init(&b);
    sim_kv_snapshot(nd->kv, &b);
    uint64_t index = nd->applied;
    struct raft_event ev = {.type = RAFT_EV_SNAPSHOT};
    ev.snapshot.index = index;
    ev.snapshot.data = b.data;
    ev.snapshot.len = b.len;
    sim_node_event(s, nd, &ev);
    if (nd->up && raft_snapshot_index(&nd->raft) == index) {
        struct sim_batch *w = batch_new(s, nd, 1);
        w->snap = 2;
        w->snap_index = index;
        w->snap_term = nd->raft.snapshot_term;
        raft_snapshot_membership(&nd->raft, &w->snap_membership);
        w->snap_data = b.len ? hy_xmemdup(b.data, b.len) : NULL;
        w->snap_len = b.len;
        sim_trace(s, "n%llu: snapshot at %llu (%zu bytes)", (unsigned long long)nd->id,
                  (unsigned long long)index, b.len);
    }
    hy_buf_free(&b);
}

static void node_handle_update(struct sim *s, struct sim_node *nd, const struct raft_update *up)
{
    if (up->snapshot_install) {
        if (!sim_kv_restore(nd->kv, up->snap_data, up->snap_len)) {
            sim_fail(s, "n%llu: snapshot does not decode", (unsigned long long)nd->id);
        }
        nd->applied = up->snap_index;
        sim_trace(s, "n%llu: installed snapshot %llu", (unsigned long long)nd->id,
                  (unsigned long long)up->snap_index);
    }
    node_persist_and_send(s, nd, up);
    node_apply(s, nd, up->commit_index);
    node_on_read_results(s, nd, up);
    node_serve_reads(s, nd);
    node_arm_timer(s, nd, up->timeout_ms);
    nd->last_status = up->status;
    nd->last_submit_index = up->submit_index;
    nd->last_submit_term = up->submit_term;
}

static void crash_soon(struct sim *s, struct sim_node *nd, uint64_t within_ms)
{
    struct sim_ev ev = {.at = s->now + hy_prng_below(&s->rng, within_ms + 1), .kind = EV_CRASH};
    ev.node = sim_node_index(s, nd->id);
    ev.gen = nd->inc;
    sim_push(s, &ev);
}

/* Crash points: moments where a crash exposes the most (a new leader whose no-op has not
 * spread; a leader that just advanced its commit index). */
static void maybe_crash_point(struct sim *s, struct sim_node *nd, int was_leader,
                              uint64_t old_commit)
{
    if (!fault_on(s, SIM_F_CRASH) || !nd->up || raft_role(&nd->raft) != RAFT_LEADER) {
        return;
    }
    if (!was_leader && hy_prng_chance(&s->rng, 1, 6)) {
        crash_soon(s, nd, 5);
    } else if (raft_commit_index(&nd->raft) > old_commit && hy_prng_chance(&s->rng, 1, 40)) {
        crash_soon(s, nd, 2);
    }
}

#define SIM_WAKE_MS 1000u /* a follower told its leader's node is down acts within this */

/* A follower told that its leader's node is down must act (campaign, or find a leader, or see
 * a new term) within SIM_WAKE_MS: that is its only way out of a quiesced group. */
static void wake_note(struct sim *s, const struct sim_node *nd)
{
    int i = sim_node_index(s, nd->id);
    const struct raft *r = &nd->raft;
    if (s->wake_deadline[i] != 0 && (raft_role(r) != RAFT_FOLLOWER || raft_leader(r) != RAFT_NONE ||
                                     raft_term(r) != s->wake_term[i])) {
        s->wake_deadline[i] = 0;
    }
}

void sim_node_event(struct sim *s, struct sim_node *nd, struct raft_event *ev)
{
    if (!nd->up) {
        return;
    }
    int was_leader = raft_role(&nd->raft) == RAFT_LEADER;
    int was_quiesced = raft_quiesced(&nd->raft);
    uint64_t old_commit = raft_commit_index(&nd->raft);
    ev->now_ms = local_now(s, nd);
    struct raft_update up;
    (void)raft_step(&nd->raft, ev, &up);
    if (raft_quiesced(&nd->raft) != was_quiesced) {
        sim_trace(s, "n%llu: %s %s", (unsigned long long)nd->id,
                  raft_role_name(raft_role(&nd->raft)), was_quiesced ? "wakes" : "quiesces");
        s->quiesces += !was_quiesced && raft_role(&nd->raft) == RAFT_LEADER;
    }
    wake_note(s, nd);
    node_handle_update(s, nd, &up);
    check_after_step(s, nd);
    maybe_crash_point(s, nd, was_leader, old_commit);
    int status = nd->last_status;
    /* (applied beyond commit happens only under the apply-uncommitted mutation) */
    /* A snapshot the leader needs (a follower lacks entries released below) is taken even
     * when the seed's faults leave snapshots out: without it that follower never catches up. */
    if (up.snapshot_wanted && ((s->faults >> SIM_F_SNAPSHOT & 1u) || up.snapshot_needed) &&
        nd->up && nd->applied > raft_snapshot_index(&nd->raft) &&
        nd->applied <= raft_commit_index(&nd->raft)) {
        s->snaps_needed += up.snapshot_needed != 0;
        node_take_snapshot(s, nd);
        nd->last_status = status;
    }
    /* Step 3b, after the checkers read this step's committed entries: applied entries go. */
    if (nd->up) {
        raft_release_applied(&nd->raft, nd->applied);
    }
}

void sim_node_lose(struct sim *s, struct sim_node *nd)
{
    sim_trace(s, "n%llu: lost until faults stop", (unsigned long long)nd->id);
    node_crash(s, nd);
}

struct sim_node *sim_leader(struct sim *s)
{
    struct sim_node *best = NULL;
    for (int i = 0; i < s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        if (nd->up && raft_role(&nd->raft) == RAFT_LEADER &&
            (best == NULL || raft_term(&nd->raft) > raft_term(&best->raft))) {
            best = nd;
        }
    }
    return best;
}

/* ---- event dispatch -------------------------------------------------------------------------- */

static void on_disk_done(struct sim *s, const struct sim_ev *ev)
{
    struct sim_node *nd = &s->nodes[ev->node];
    if (!nd->up || ev->gen != nd->inc || nd->nbatches == 0) {
        return;
    }
    struct sim_batch b = nd->batches[0];
    memmove(nd->batches, nd->batches + 1, (nd->nbatches - 1) * sizeof(*nd->batches));
    nd->nbatches--;
    batch_write(&nd->disk, &b, b.n);
    node_send_all(s, nd, b.msgs, b.nmsgs);
    if (b.has_entries && b.n > 0) {
        struct raft_event pev = {.type = RAFT_EV_PERSISTED};
        pev.persisted.index = b.first + b.n - 1;
        pev.persisted.term = b.ents[b.n - 1].term;
        sim_node_event(s, nd, &pev);
    }
    batch_free(&b);
}

/* A server that lost its disk rejoins as a new identity (dissertation §3.8: it "cannot safely
 * rejoin the cluster with its prior identity"): messages to or from its former self are
 * refused, as a real transport would refuse a stale incarnation. */
static int msg_stale_identity(const struct sim *s, const struct sim_ev *ev)
{
    int from = sim_node_index(s, ev->msg->m.from);
    return ev->msg->to_wipes != s->nodes[ev->node].wipes ||
           (from >= 0 && ev->msg->from_wipes != s->nodes[from].wipes);
}

static void on_deliver(struct sim *s, const struct sim_ev *ev)
{
    struct sim_node *nd = &s->nodes[ev->node];
    if (nd->up && !msg_stale_identity(s, ev)) {
        struct raft_event rev = {.type = RAFT_EV_RECEIVE};
        rev.receive.msg = &ev->msg->m;
        sim_node_event(s, nd, &rev);
    }
    msg_free(ev->msg);
}

static void on_timer(struct sim *s, const struct sim_ev *ev)
{
    struct sim_node *nd = &s->nodes[ev->node];
    if (!nd->up || ev->gen != nd->timer_gen || (uint32_t)ev->client != nd->inc) {
        return;
    }
    nd->timer_at_local = 0;
    struct raft_event rev = {.type = RAFT_EV_TIMEOUT};
    sim_node_event(s, nd, &rev);
}

/* ---- faults -----------------------------------------------------------------------------------
 */

static void net_heal(struct sim *s)
{
    memset(s->block, 0, sizeof(s->block));
    s->net_faulted = 0;
}

static void cut(struct sim *s, int a, int b)
{
    s->block[a][b] = s->block[b][a] = 1;
}

static void partition_make(struct sim *s, int kind)
{
    int n = s->n;
    int side[SIM_NODES_MAX];
    for (int i = 0; i < n; i++) {
        side[i] = (int)hy_prng_below(&s->rng, 2);
    }
    struct sim_node *l = sim_leader(s);
    int li = l ? sim_node_index(s, l->id) : (int)hy_prng_below(&s->rng, (uint64_t)n);
    int bridge = (int)hy_prng_below(&s->rng, (uint64_t)n);
    for (int a = 0; a < n; a++) {
        for (int b = 0; b < n; b++) {
            if (a == b) {
                continue;
            }
            switch (kind) {
            case SIM_F_PARTITION:
                if (side[a] != side[b]) {
                    cut(s, a, b);
                }
                break;
            case SIM_F_ISOLATE:
                if (a == li) {
                    cut(s, a, b);
                }
                break;
            case SIM_F_ONEWAY:
                if (side[a] == 0 && side[b] == 1) {
                    s->block[a][b] = 1;
                }
                break;
            case SIM_F_BRIDGE:
                if (side[a] != side[b] && a != bridge && b != bridge) {
                    cut(s, a, b);
                }
                break;
            default: break;
            }
        }
    }
    s->net_faulted = 1;
    sim_trace(s, "net: %s (leader n%d, bridge n%d)", sim_fault_name(kind), li + 1, bridge + 1);
    struct sim_ev ev = {.at = s->now + 50 + hy_prng_below(&s->rng, 1500), .kind = EV_HEAL_NET};
    sim_push(s, &ev);
}

static void node_wipe_and_boot(struct sim *s, struct sim_node *nd)
{
    node_crash(s, nd);
    disk_wipe(&nd->disk);
    nd->wipes++;
    node_boot(s, nd);
}

/* Membership: re-add removed servers as learners (fresh disks), promote caught-up learners,
 * remove a voter (the leader included) now and then. */
static void fault_membership(struct sim *s, struct sim_node *l)
{
    const struct raft_membership *m = raft_membership(&l->raft);
    struct raft_event ev = {.type = RAFT_EV_CHANGE};
    for (int i = 0; i < s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        int idx = -1;
        for (uint32_t k = 0; k < m->count; k++) {
            if (m->servers[k].id == nd->id) {
                idx = (int)k;
            }
        }
        if (idx < 0) {
            if (raft_commit_index(&l->raft) < l->raft.membership_index) {
                return;
            }
            sim_trace(s, "membership: wipe n%llu and add it as a learner",
                      (unsigned long long)nd->id);
            node_wipe_and_boot(s, nd);
            ev.change.op = RAFT_ADD_LEARNER;
            ev.change.id = nd->id;
            sim_node_event(s, l, &ev);
            return;
        }
        if (m->servers[idx].role == RAFT_LEARNER) {
            ev.change.op = RAFT_PROMOTE;
            ev.change.id = nd->id;
            sim_node_event(s, l, &ev);
            sim_trace(s, "membership: promote n%llu: %s", (unsigned long long)nd->id,
                      hy_status_name(l->last_status));
            return;
        }
    }
    uint32_t voters = 0;
    for (uint32_t k = 0; k < m->count; k++) {
        voters += m->servers[k].role == RAFT_VOTER;
    }
    if (voters >= 3 && hy_prng_chance(&s->rng, 1, 2)) {
        raft_id id = m->servers[hy_prng_below(&s->rng, m->count)].id;
        ev.change.op = RAFT_REMOVE;
        ev.change.id = id;
        sim_node_event(s, l, &ev);
        sim_trace(s, "membership: remove n%llu: %s", (unsigned long long)id,
                  hy_status_name(l->last_status));
    }
}

static void fault_transfer(struct sim *s, struct sim_node *l)
{
    struct raft_event ev = {.type = RAFT_EV_TRANSFER};
    ev.transfer.target = (raft_id)(1 + hy_prng_below(&s->rng, (uint64_t)s->n));
    sim_node_event(s, l, &ev);
    sim_trace(s, "transfer n%llu -> n%llu: %s", (unsigned long long)l->id,
              (unsigned long long)ev.transfer.target, hy_status_name(l->last_status));
}

static void fault_crash(struct sim *s)
{
    struct sim_node *nd = &s->nodes[hy_prng_below(&s->rng, (uint64_t)s->n)];
    if (!nd->up) {
        return;
    }
    node_crash(s, nd);
    struct sim_ev ev = {.at = s->now + 10 + hy_prng_below(&s->rng, 1500), .kind = EV_RESTART};
    ev.node = sim_node_index(s, nd->id);
    ev.gen = nd->inc;
    sim_push(s, &ev);
}

static void on_fault_tick(struct sim *s)
{
    if (s->healing) {
        return;
    }
    int choices[SIM_F_COUNT], n = 0;
    static const int active[] = {SIM_F_PARTITION, SIM_F_ISOLATE,    SIM_F_ONEWAY,   SIM_F_BRIDGE,
                                 SIM_F_CRASH,     SIM_F_MEMBERSHIP, SIM_F_TRANSFER, SIM_F_PAUSE};
    for (size_t i = 0; i < HY_ARRAY_LEN(active); i++) {
        if (fault_on(s, active[i])) {
            choices[n++] = active[i];
        }
    }
    if (n > 0) {
        int f = choices[hy_prng_below(&s->rng, (uint64_t)n)];
        struct sim_node *l = sim_leader(s);
        if (f == SIM_F_CRASH) {
            fault_crash(s);
        } else if (f == SIM_F_PAUSE) {
            /* Often the leader: a stalled leader is the gray failure raft must shed. */
            struct sim_node *nd = l && hy_prng_chance(&s->rng, 1, 2)
                                      ? l
                                      : &s->nodes[hy_prng_below(&s->rng, (uint64_t)s->n)];
            nd->paused_until = s->now + 50 + hy_prng_below(&s->rng, 750);
            sim_trace(s, "n%llu: paused until %llu", (unsigned long long)nd->id,
                      (unsigned long long)nd->paused_until);
        } else if (f == SIM_F_MEMBERSHIP && l) {
            fault_membership(s, l);
        } else if (f == SIM_F_TRANSFER && l) {
            fault_transfer(s, l);
        } else if (f != SIM_F_MEMBERSHIP && f != SIM_F_TRANSFER && f != SIM_F_PAUSE &&
                   !s->net_faulted) {
            partition_make(s, f);
        }
    }
    struct sim_ev ev = {.at = s->now + 30 + hy_prng_below(&s->rng, 300), .kind = EV_FAULT_TICK};
    sim_push(s, &ev);
}

static void on_crash(struct sim *s, const struct sim_ev *ev)
{
    struct sim_node *nd = &s->nodes[ev->node];
    if (!nd->up || ev->gen != nd->inc || s->healing) {
        return;
    }
    node_crash(s, nd);
    struct sim_ev rs = {.at = s->now + 5 + hy_prng_below(&s->rng, 40), .kind = EV_RESTART};
    rs.node = ev->node;
    rs.gen = nd->inc;
    sim_push(s, &rs);
}

static void on_restart(struct sim *s, const struct sim_ev *ev)
{
    struct sim_node *nd = &s->nodes[ev->node];
    if (!nd->up && ev->gen == nd->inc) {
        node_boot(s, nd);
    }
}

/* A paused node handles nothing until it resumes; its events keep their order. */
static int deferred_by_pause(struct sim *s, const struct sim_ev *ev)
{
    int node_event = ev->kind == EV_DELIVER || ev->kind == EV_TIMER || ev->kind == EV_DISK ||
                     ev->kind == EV_CLIENT_REQ;
    if (!node_event || s->now >= s->nodes[ev->node].paused_until) {
        return 0;
    }
    struct sim_ev later = *ev;
    later.at = s->nodes[ev->node].paused_until;
    sim_push(s, &later);
    return 1;
}

/* ---- node-level failure detection (quiesce seeds) -------------------------------------------
 *
 * What the peer link tells a node about another node (src/io/peer.c): it hears b while b runs
 * and the link b -> a carries frames; silent for suspect_ms, b is reported down; heard again,
 * up. Each report goes to every group as RAFT_EV_LIVENESS. A paused process's own detector is
 * paused with it (peer.c's late-tick rule). */

static void liveness_deliver(struct sim *s, int a, int b, int alive)
{
    struct sim_node *nd = &s->nodes[a];
    const struct raft *r = &nd->raft;
    int expect = !alive && raft_quiesced(r) && raft_role(r) == RAFT_FOLLOWER &&
                 raft_leader(r) == s->nodes[b].id &&
                 raft_membership_is_voter(raft_membership(r), nd->id);
    s->liveness_downs += !alive;
    sim_trace(s, "n%llu: node-level view: n%llu %s", (unsigned long long)nd->id,
              (unsigned long long)s->nodes[b].id, alive ? "up" : "down");
    struct raft_event ev = {.type = RAFT_EV_LIVENESS};
    ev.liveness.id = s->nodes[b].id;
    ev.liveness.alive = alive;
    sim_node_event(s, nd, &ev);
    if (expect && nd->up && raft_role(r) == RAFT_FOLLOWER && raft_leader(r) == RAFT_NONE) {
        s->wake_deadline[a] = s->now + SIM_WAKE_MS;
        s->wake_term[a] = raft_term(r);
    }
}

/* A suspicion (gossip's SUSPECT, raft.c on_liveness): a's quiesced followers of b wake and nudge
 * b. Real detectors suspect before they declare a death, and now and then suspect a node that
 * is fine (a late heartbeat): `falsely`. */
static void suspect_deliver(struct sim *s, int a, int b, int falsely)
{
    s->suspect_view[a][b] = 1;
    s->suspicions++;
    s->false_suspicions += (uint64_t)falsely;
    sim_trace(s, "n%llu: node-level view: n%llu suspected%s", (unsigned long long)s->nodes[a].id,
              (unsigned long long)s->nodes[b].id, falsely ? " (falsely)" : "");
    struct raft_event ev = {.type = RAFT_EV_LIVENESS};
    ev.liveness.id = s->nodes[b].id;
    ev.liveness.suspect = 1;
    sim_node_event(s, &s->nodes[a], &ev);
}

static void on_liveness_tick(struct sim *s)
{
    for (int a = 0; a < s->n && !s->failed; a++) {
        struct sim_node *na = &s->nodes[a];
        if (!na->up) {
            continue;
        }
        int paused = s->now < na->paused_until;
        if (paused && s->wake_deadline[a] != 0) {
            s->wake_deadline[a] = HY_MAX(s->wake_deadline[a], na->paused_until + SIM_WAKE_MS);
        }
        for (int b = 0; b < s->n && na->up; b++) {
            const struct sim_node *nb = &s->nodes[b];
            int hears = nb->up && s->now >= nb->paused_until && !s->block[b][a];
            if (b == a || paused) {
                s->heard_ms[a][b] = s->now;
                continue;
            }
            if (hears) {
                s->heard_ms[a][b] = s->now;
                s->suspect_view[a][b] = 0;
            }
            if (hears && !s->alive_view[a][b]) {
                s->alive_view[a][b] = 1;
                liveness_deliver(s, a, b, 1);
            } else if (hears && hy_prng_below(&s->qrng, 2000) == 0) {
                suspect_deliver(s, a, b, 1);
            } else if (!hears && s->alive_view[a][b] && !s->suspect_view[a][b] &&
                       s->now >= s->heard_ms[a][b] + s->suspect_ms / 2) {
                suspect_deliver(s, a, b, 0);
            } else if (!hears && s->alive_view[a][b] &&
                       s->now >= s->heard_ms[a][b] + s->suspect_ms) {
                s->alive_view[a][b] = 0;
                liveness_deliver(s, a, b, 0);
            }
        }
        if (na->up && !paused && s->wake_deadline[a] != 0 && s->now > s->wake_deadline[a]) {
            sim_fail(s,
                     "quiesce: n%llu was told its leader's node is down %u ms ago and has neither "
                     "campaigned nor found a leader",
                     (unsigned long long)na->id, SIM_WAKE_MS);
        }
    }
    struct sim_ev ev = {.at = s->now + 20, .kind = EV_LIVENESS};
    sim_push(s, &ev);
}

static void dispatch(struct sim *s, const struct sim_ev *ev)
{
    if (deferred_by_pause(s, ev)) {
        return;
    }
    switch (ev->kind) {
    case EV_DELIVER: on_deliver(s, ev); break;
    case EV_TIMER: on_timer(s, ev); break;
    case EV_DISK: on_disk_done(s, ev); break;
    case EV_CLIENT_START: client_on_start(s, ev); break;
    case EV_CLIENT_REQ: node_on_client_req(s, ev); break;
    case EV_CLIENT_REPLY: client_on_reply(s, ev); break;
    case EV_CLIENT_TIMEOUT: client_on_timeout(s, ev); break;
    case EV_FAULT_TICK: on_fault_tick(s); break;
    case EV_RESTART: on_restart(s, ev); break;
    case EV_CRASH: on_crash(s, ev); break;
    case EV_SCENARIO: sim_scenario_tick(s); break;
    case EV_LIVENESS: on_liveness_tick(s); break;
    case EV_HEAL_NET:
        if (!s->healing) {
            net_heal(s);
            sim_trace(s, "net: healed");
        }
        break;
    default: HY_UNREACHABLE();
    }
}

/* ---- setup, phases, teardown ----------------------------------------------------------------- */

static void pick_faults(struct sim *s)
{
    s->faults = s->o.fault_mask;
    if (s->o.swarm) {
        uint32_t pick = (uint32_t)hy_prng_next(&s->rng);
        s->faults &= pick | (pick >> 16);
    }
    s->drop_pm = 5 + (uint32_t)hy_prng_below(&s->rng, 150);
    s->dup_pm = 5 + (uint32_t)hy_prng_below(&s->rng, 100);
    s->delay_max_ms = 5 + (uint32_t)hy_prng_below(&s->rng, 60);
    s->slow_disk_pm = 10 + (uint32_t)hy_prng_below(&s->rng, 200);
    s->slow_disk_max_ms = 10 + (uint32_t)hy_prng_below(&s->rng, 80);
    s->skew_ppm = (uint32_t)hy_prng_below(&s->rng, 20000);
    s->client_timeout_ms = 100 + (uint32_t)hy_prng_below(&s->rng, 400);
}

static void config_pick(struct sim *s)
{
    struct raft_config *c = &s->rcfg;
    raft_config_default(c, 1);
    c->election_timeout_min_ms = 150;
    c->election_timeout_max_ms = 300;
    c->heartbeat_ms = 30 + (uint32_t)hy_prng_below(&s->rng, 20);
    c->inflight_max = 1 + (uint32_t)hy_prng_below(&s->rng, 8);
    c->batch_entries_max =
        hy_prng_chance(&s->rng, 1, 3) ? 1 : 1 + (uint32_t)hy_prng_below(&s->rng, 16);
    c->batch_bytes_max = 64 + (uint32_t)hy_prng_below(&s->rng, 512);
    c->snapshot_threshold = 10 + (uint32_t)hy_prng_below(&s->rng, 60);
    c->snapshot_trailing = (uint32_t)hy_prng_below(&s->rng, 10);
    c->applied_keep = c->snapshot_trailing;         /* no new draw: seeds keep their schedules */
    c->applied_keep_bytes = c->batch_bytes_max / 4; /* often fewer than applied_keep */
    c->snapshot_chunk_bytes = 16 + (uint32_t)hy_prng_below(&s->rng, 256);
    c->late_bound_ms = 400;
    c->clock_drift_ppm = 50000;
    /* Leases: 0.9 * eto_min / (1 + drift) keeps inside the bound; clocks skew < 2% each. */
    c->lease_ms = (s->faults >> SIM_F_LEASE & 1u) ? 125 : 0;
    c->mutation = s->o.mutation;
    if (s->o.scenario != SIM_SCEN_NONE) {
        /* Scenarios run the server's batch size (raft_config_default): issue 20's defect hid
         * behind it, a learner looked caught up while the log was shorter than one batch. */
        c->batch_entries_max = 512;
        c->batch_bytes_max = 1024 * 1024;
    }
}

static void sim_setup(struct sim *s, const struct sim_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->o = *o;
    hy_prng_seed(&s->rng, o->seed);
    hy_prng_seed(&s->qrng, o->seed ^ 0x7175696573636531ull);
    pick_faults(s);
    if (o->scenario != SIM_SCEN_NONE) {
        s->faults &= ~(1u << SIM_F_QUIESCE);
    }
    config_pick(s);
    if (fault_on(s, SIM_F_QUIESCE)) {
        s->rcfg.quiesce_ticks = 1 + (uint32_t)hy_prng_below(&s->qrng, 4);
        s->quiet_period_ms = 600 + (uint32_t)hy_prng_below(&s->qrng, 2400);
        s->suspect_ms = 20 + (uint32_t)hy_prng_below(&s->qrng, 400);
    }
    s->log = (struct hy_log){
        .level = o->trace ? HY_LOG_DEBUG : HY_LOG_WARN, .ctx = s, .write_cb = raft_log_cb};
    s->n = o->nodes;
    s->voters = s->n;
    if (o->scenario != SIM_SCEN_NONE) {
        HY_ASSERT(sim_scenario_nodes(o->scenario, &s->voters) == s->n);
    }
    struct raft_membership boot = {.count = (uint32_t)s->voters};
    for (int i = 0; i < s->voters; i++) {
        boot.servers[i] = (struct raft_server){.id = (raft_id)(i + 1), .role = RAFT_VOTER};
    }
    for (int i = 0; i < s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        nd->id = (raft_id)(i + 1);
        if (i < s->voters) {
            nd->disk.bootstrap = boot; /* the others start empty, as a node that will join */
        }
        uint64_t skew = fault_on(s, SIM_F_SKEW) ? s->skew_ppm : 0;
        nd->rate_ppm = 1000000u - skew + hy_prng_below(&s->rng, 2 * skew + 1);
        nd->clk_base_l = hy_prng_below(&s->rng, 100000);
        node_boot(s, nd);
    }
    s->nclients = 3 + (int)hy_prng_below(&s->rng, SIM_CLIENTS_MAX - 2);
    client_start_all(s);
    if (o->scenario != SIM_SCEN_NONE) {
        sim_scenario_setup(s);
        return;
    }
    struct sim_ev ev = {.at = 300, .kind = EV_FAULT_TICK};
    sim_push(s, &ev);
    if (fault_on(s, SIM_F_QUIESCE)) {
        struct sim_ev lt = {.at = 300, .kind = EV_LIVENESS};
        sim_push(s, &lt);
    }
}

static void sim_teardown(struct sim *s)
{
    for (int i = 0; i < s->n; i++) {
        node_crash(s, &s->nodes[i]);
        disk_wipe(&s->nodes[i].disk);
        hy_free(s->nodes[i].batches);
        hy_free(s->nodes[i].pw);
        hy_free(s->nodes[i].pr);
    }
    for (size_t i = 0; i < s->nheap; i++) {
        msg_free(s->heap[i].msg);
    }
    hy_free(s->heap);
    hy_free(s->ops);
    hy_free(s->term_leader);
    record_free(&s->committed);
    record_free(&s->applied);
    record_free(&s->acked);
}

static void heal_all(struct sim *s)
{
    s->healing = 1;
    s->heal_ms = s->now;
    net_heal(s);
    for (int i = 0; i < s->n; i++) {
        if (!s->nodes[i].up) {
            node_boot(s, &s->nodes[i]);
        }
    }
    for (int i = 0; i < s->nclients; i++) {
        s->clients[i].ok_after_heal = 0;
    }
    sim_trace(s, "heal: faults stop");
}

/* Liveness once faults stop, first part: a leader with its no-op committed, and every client
 * served at least once since. */
static int live(struct sim *s)
{
    struct sim_node *l = sim_leader(s);
    if (l == NULL || raft_commit_index(&l->raft) < l->raft.term_start_index) {
        return 0;
    }
    for (int i = 0; i < s->nclients; i++) {
        if (!s->clients[i].ok_after_heal) {
            return 0;
        }
    }
    return 1;
}

/* Second part, with the workload stopped: every pending operation has completed and every
 * member has caught up with the leader. */
static int converged(struct sim *s)
{
    struct sim_node *l = sim_leader(s);
    if (l == NULL) {
        return 0;
    }
    for (int i = 0; i < s->nclients; i++) {
        if (s->clients[i].busy) {
            return 0;
        }
    }
    const struct raft_membership *m = raft_membership(&l->raft);
    for (uint32_t k = 0; k < m->count; k++) {
        int i = sim_node_index(s, m->servers[k].id);
        if (i >= 0 && s->nodes[i].applied != raft_commit_index(&l->raft)) {
            return 0;
        }
    }
    return sim_scenario_done(s, l);
}

#define SIM_LIVENESS_MS 10000u

static void run_loop(struct sim *s)
{
    while (s->nheap > 0 && !s->failed) {
        struct sim_ev ev = sim_pop(s);
        s->now = ev.at;
        dispatch(s, &ev);
        s->steps++;
        if (!s->healing && s->steps >= s->o.steps) {
            heal_all(s);
        }
        if (s->healing && !s->draining && (s->steps & 15) == 0 && live(s)) {
            s->draining = 1;
            sim_trace(s, "liveness: leader serving every client %llu ms after faults stopped",
                      (unsigned long long)(s->now - s->heal_ms));
        }
        if (s->draining && (s->steps & 15) == 0 && converged(s)) {
            sim_trace(s, "liveness: all caught up %llu ms after faults stopped",
                      (unsigned long long)(s->now - s->heal_ms));
            return;
        }
        if (s->healing && s->now > s->heal_ms + SIM_LIVENESS_MS) {
            sim_fail(s, "liveness: %s within %u ms after faults stopped",
                     s->draining ? "members not caught up or operations pending"
                                 : "no stable leader serving every client",
                     SIM_LIVENESS_MS);
        }
    }
}

static void finish_checks(struct sim *s, struct sim_result *res)
{
    if (!s->failed) {
        check_logs_full(s);
    }
    if (!s->failed) {
        check_convergence(s);
    }
    for (size_t i = 0; i < s->nops; i++) {
        res->ops_ok += s->ops[i].done;
        res->ops_indeterminate += !s->ops[i].done && !s->ops[i].failed;
    }
    if (!s->failed) {
        char why[256];
        int r = sim_lin_check(s->ops, s->nops, SIM_LIN_STEPS_MAX, why, sizeof(why));
        if (r <= 0) {
            /* An inconclusive search proves nothing, so it fails the seed like a violation. */
            res->lin_gave_up = r < 0;
            sim_fail(s, "linearizability: %s", why);
        }
    }
}

int sim_run(const struct sim_opts *o, struct sim_result *res)
{
    struct sim *s = hy_xcalloc(1, sizeof(*s));
    memset(res, 0, sizeof(*res));
    sim_setup(s, o);
    run_loop(s);
    if (!s->failed && !s->draining) {
        sim_fail(s, "liveness: the simulation ran out of events");
    }
    finish_checks(s, res);
    res->ok = !s->failed;
    snprintf(res->reason, sizeof(res->reason), "%s", s->reason);
    res->steps = s->steps;
    res->sim_ms = s->now;
    res->committed = s->commit_max;
    res->faults_used = s->faults;
    res->quiesces = s->quiesces;
    res->snaps_needed = s->snaps_needed;
    res->liveness_downs = s->liveness_downs;
    res->suspicions = s->suspicions;
    res->false_suspicions = s->false_suspicions;
    sim_teardown(s);
    hy_free(s);
    return res->ok;
}
