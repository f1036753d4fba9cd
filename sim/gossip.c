/*
 * gossip.c - halyard-sim --membership (gossip.h): the membership core alone on a simulated
 * network. One binary heap of events (message deliveries, ticks, heartbeats, faults) ordered
 * by time then by insertion, so a seed replays exactly.
 */
#include "gossip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/prng.h"
#include "membership/membership.h"

#define GS_HB_MS        100  /* heartbeat period on the ring links (the shell's beacons) */
#define GS_WARM_MS      3000 /* no faults before */
#define GS_DELAY_MAX_MS 20
#define GS_FAULTS_MAX   32

enum { EV_MSG, EV_TICK, EV_HB, EV_FAULT, EV_HOG };
enum { F_KILL, F_RESTART, F_FREEZE, F_THAW };

struct gs_event {
    uint64_t at, order;
    uint32_t kind, node, arg;
};

struct gs_msg {
    int from, heartbeat, next_free;
    struct membership_msg msg;
};

struct gs_fault {
    int kind, node, long_freeze;
    uint64_t at;
};

struct gs_node {
    struct membership mb;
    int up, frozen, life;
    int hogged;                /* --hog: starved of CPU right now (runs nothing, like a freeze) */
    uint64_t hog_from, hog_to; /* the last hog stall (GS_WHY) */
    uint64_t own_seen, own_probe, own_link; /* its own suspicions so far (GS_WHY) */
    uint64_t tick_at, frozen_until;
    uint64_t self_inc; /* highest own incarnation seen in this life */
    /* Windows in which this node may be suspected / declared dead (ms; end 0 = open). */
    uint64_t ok_suspect_from, ok_suspect_to, ok_dead_from, ok_dead_to;
    int killed_for_good;
    uint64_t killed_at, started_at;
    /* The shell's measure of runnable time (membership_note_runnable): the life's time less
     * its freezes (a frozen node is stopped; a hogged one waits for a CPU: runnable). */
    uint64_t life_at, stopped_ms, frozen_at;
};

struct gs_opts {
    uint64_t seed;
    int nodes, loss_pct, mutation, quiet;
    int hog;      /* every node starved again and again (below) */
    int no_grace; /* the core's loop-lag grace off (lag_window_ms 0) */
    uint64_t fault_ms;
};

struct gs_world {
    struct gs_opts o;
    struct hy_prng prng;
    struct membership_config cfg;
    struct gs_node *nodes;
    struct gs_event *heap;
    size_t heap_len, heap_cap;
    uint64_t order, now_ms, end_ms, bound_ms;
    struct gs_msg *pool;
    size_t pool_len, pool_cap;
    int pool_free;
    struct gs_fault faults[GS_FAULTS_MAX];
    int fault_count;
    int sender; /* the node whose call is running (for send_cb) */
    /* Results. */
    int failed;
    char reason[256];
    uint64_t *suspect_ms, *dead_ms; /* per (kill, observer): first time after the kill */
    int kill_count;
    int kill_nodes[GS_FAULTS_MAX];
    uint64_t kill_at[GS_FAULTS_MAX];
    uint64_t false_suspicions, false_deads, msgs;
    uint64_t false_suspicions_warm; /* of them, after the warm-up */
    uint64_t hog_stalls, hog_stall_max;
};

static void fail(struct gs_world *w, const char *fmt, const char *a, const char *b, uint64_t t)
{
    if (w->failed) {
        return;
    }
    w->failed = 1;
    char what[200];
    snprintf(what, sizeof(what), fmt, a, b);
    snprintf(w->reason, sizeof(w->reason), "at %llu ms: %s", (unsigned long long)t, what);
}

/* ---- the event heap ------------------------------------------------------------------------ */

static int ev_less(const struct gs_event *a, const struct gs_event *b)
{
    return a->at != b->at ? a->at < b->at : a->order < b->order;
}

static void push(struct gs_world *w, uint64_t at, uint32_t kind, uint32_t node, uint32_t arg)
{
    if (w->heap_len == w->heap_cap) {
        w->heap_cap = w->heap_cap ? 2 * w->heap_cap : 4096;
        w->heap = hy_xrealloc(w->heap, w->heap_cap * sizeof(*w->heap));
    }
    size_t i = w->heap_len++;
    w->heap[i] =
        (struct gs_event){.at = at, .order = w->order++, .kind = kind, .node = node, .arg = arg};
    while (i > 0 && ev_less(&w->heap[i], &w->heap[(i - 1) / 2])) {
        struct gs_event t = w->heap[i];
        w->heap[i] = w->heap[(i - 1) / 2];
        w->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct gs_event pop(struct gs_world *w)
{
    struct gs_event top = w->heap[0];
    w->heap[0] = w->heap[--w->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->heap_len && ev_less(&w->heap[l], &w->heap[m])) {
            m = l;
        }
        if (r < w->heap_len && ev_less(&w->heap[r], &w->heap[m])) {
            m = r;
        }
        if (m == i) {
            break;
        }
        struct gs_event t = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = t;
        i = m;
    }
    return top;
}

static int pool_get(struct gs_world *w)
{
    if (w->pool_free >= 0) {
        int i = w->pool_free;
        w->pool_free = w->pool[i].next_free;
        return i;
    }
    if (w->pool_len == w->pool_cap) {
        w->pool_cap = w->pool_cap ? 2 * w->pool_cap : 1024;
        w->pool = hy_xrealloc(w->pool, w->pool_cap * sizeof(*w->pool));
    }
    return (int)w->pool_len++;
}

static void pool_put(struct gs_world *w, int i)
{
    w->pool[i].next_free = w->pool_free;
    w->pool_free = i;
}

/* ---- the network --------------------------------------------------------------------------- */

static int node_index(const char *name)
{
    return atoi(name + 1);
}

static void deliver_later(struct gs_world *w, int from, int to, const struct membership_msg *msg,
                          int heartbeat)
{
    w->msgs++;
    if (hy_prng_chance(&w->prng, (uint64_t)w->o.loss_pct, 100)) {
        return;
    }
    int i = pool_get(w);
    w->pool[i].from = from;
    w->pool[i].heartbeat = heartbeat;
    if (msg != NULL) {
        w->pool[i].msg = *msg;
    }
    uint64_t delay = hy_prng_range(&w->prng, 1, GS_DELAY_MAX_MS);
    push(w, w->now_ms + delay, EV_MSG, (uint32_t)to, (uint32_t)i);
}

static void gs_send_cb(void *ctx, const char *to, const struct membership_msg *msg)
{
    struct gs_world *w = ctx;
    deliver_later(w, w->sender, node_index(to), msg, 0);
}

static int in_window(uint64_t t, uint64_t from, uint64_t to)
{
    return from != 0 && t >= from && (to == 0 || t <= to);
}

static void gs_state_cb(void *ctx, const char *name, int from, int to, uint64_t inc)
{
    struct gs_world *w = ctx;
    (void)from;
    (void)inc;
    int who = node_index(name);
    int observer = w->sender;
    if (getenv("GS_TRACE") && atoi(getenv("GS_TRACE")) == who) {
        printf("%llu n%d: n%d %s -> %s inc %llu\n", (unsigned long long)w->now_ms, observer, who,
               membership_state_name(from), membership_state_name(to), (unsigned long long)inc);
    }
    if (who == observer || who < 0 || who >= w->o.nodes) {
        return;
    }
    struct gs_node *n = &w->nodes[who];
    /* GS_WHY=1: each false suspicion an observer raised itself, with its cause and the
     * observer's grace, and the target's and the observer's last hog stalls. */
    if (getenv("GS_WHY") && to == MEMBERSHIP_SUSPECT) {
        struct gs_node *o = &w->nodes[observer];
        const struct membership_stats *st = &o->mb.stats;
        uint64_t own = st->suspect_probe + st->suspect_phi + st->suspect_link;
        const char *cause = st->suspect_probe != o->own_probe ? "probe"
                            : st->suspect_link != o->own_link ? "link"
                                                              : "phi";
        o->own_probe = st->suspect_probe;
        o->own_link = st->suspect_link;
        if (own != o->own_seen && !in_window(w->now_ms, n->ok_suspect_from, n->ok_suspect_to)) {
            printf("why %llu n%d suspects n%d: %s grace %u lhm %u probe %llu-%llu; target hog "
                   "%llu-%llu%s; observer hog %llu-%llu\n",
                   (unsigned long long)w->now_ms, observer, who, cause, membership_grace(&o->mb),
                   o->mb.lhm, (unsigned long long)o->mb.probe_start_ms,
                   (unsigned long long)o->mb.probe_end_at, (unsigned long long)n->hog_from,
                   (unsigned long long)n->hog_to, n->hogged ? " (now)" : "",
                   (unsigned long long)o->hog_from, (unsigned long long)o->hog_to);
        }
        o->own_seen = own;
    }
    for (int k = 0; k < w->kill_count; k++) {
        if (w->kill_nodes[k] != who || w->now_ms < w->kill_at[k]) {
            continue;
        }
        uint64_t *s = &w->suspect_ms[(size_t)k * (size_t)w->o.nodes + (size_t)observer];
        uint64_t *d = &w->dead_ms[(size_t)k * (size_t)w->o.nodes + (size_t)observer];
        if (to == MEMBERSHIP_SUSPECT && *s == 0) {
            *s = w->now_ms;
        }
        if (to == MEMBERSHIP_DEAD && *d == 0) {
            *d = w->now_ms;
            if (*s == 0) {
                *s = w->now_ms;
            }
        }
    }
    if (to == MEMBERSHIP_SUSPECT && !in_window(w->now_ms, n->ok_suspect_from, n->ok_suspect_to)) {
        w->false_suspicions++;
        w->false_suspicions_warm += w->now_ms >= GS_WARM_MS;
    }
    if (to == MEMBERSHIP_DEAD && !in_window(w->now_ms, n->ok_dead_from, n->ok_dead_to)) {
        w->false_deads++;
        if (w->o.loss_pct <= GOSSIP_SIM_LOSS_SAFE_PCT) {
            char obs[32];
            snprintf(obs, sizeof(obs), "n%d", observer);
            fail(w, "false DEAD: %s declared %s dead while it was alive and not frozen", obs, name,
                 w->now_ms);
        }
    }
}

static void reschedule(struct gs_world *w, int i)
{
    struct gs_node *n = &w->nodes[i];
    if (!n->up || n->frozen || n->hogged) {
        return;
    }
    uint64_t t = membership_next_ms(&n->mb);
    if (t <= w->now_ms) {
        t = w->now_ms + 1;
    }
    if (n->tick_at <= w->now_ms || t < n->tick_at) {
        n->tick_at = t;
        push(w, t, EV_TICK, (uint32_t)i, 0);
    }
}

/* After every call on node i: its own incarnation never goes back within one life. */
static void check_self(struct gs_world *w, int i)
{
    struct gs_node *n = &w->nodes[i];
    uint64_t inc = n->mb.members[0].incarnation;
    if (inc < n->self_inc) {
        fail(w, "incarnation of %s went back%s", n->mb.members[0].name, "", w->now_ms);
    }
    n->self_inc = inc;
}

static void node_start(struct gs_world *w, int i)
{
    struct gs_node *n = &w->nodes[i];
    char name[32];
    snprintf(name, sizeof(name), "n%d", i);
    struct membership_callbacks cbs = {.ctx = w, .send_cb = gs_send_cb, .state_cb = gs_state_cb};
    w->sender = i;
    HY_ASSERT(membership_init(&n->mb, &w->cfg, name, NULL, &cbs,
                              w->o.seed * 1000003u + (uint64_t)i * 7919u + (uint64_t)n->life,
                              w->now_ms) == HY_OK);
    for (int j = 0; j < w->o.nodes; j++) {
        char other[32];
        snprintf(other, sizeof(other), "n%d", j);
        HY_ASSERT(membership_add(&n->mb, other, w->now_ms) == HY_OK);
    }
    n->up = 1;
    n->frozen = 0;
    n->life_at = w->now_ms;
    n->stopped_ms = 0;
    n->self_inc = 0;
    n->tick_at = 0;
    reschedule(w, i);
}

/* ---- faults -------------------------------------------------------------------------------- */

static void plan_faults(struct gs_world *w)
{
    uint64_t lo, hi;
    membership_suspicion_bounds(&w->nodes[0].mb, &lo, &hi);
    int n = w->o.nodes;
    int used_count = 0;
    int used[GS_FAULTS_MAX];
    int kills = 1 + (int)hy_prng_below(&w->prng, (uint64_t)HY_MAX(1, HY_MIN(n / 20, 4)));
    int shorts = 1 + (int)hy_prng_below(&w->prng, 2);
    int longs = (int)hy_prng_below(&w->prng, 2);
    for (int k = 0; k < kills + shorts + longs && used_count < n - 1; k++) {
        int node;
        int dup;
        do {
            node = (int)hy_prng_below(&w->prng, (uint64_t)n);
            dup = 0;
            for (int j = 0; j < used_count; j++) {
                dup |= used[j] == node;
            }
        } while (dup);
        used[used_count++] = node;
        uint64_t at = GS_WARM_MS + hy_prng_below(&w->prng, w->o.fault_ms - GS_WARM_MS);
        struct gs_node *g = &w->nodes[node];
        if (k < kills) {
            w->faults[w->fault_count++] = (struct gs_fault){.kind = F_KILL, .node = node, .at = at};
            w->kill_nodes[w->kill_count] = node;
            w->kill_at[w->kill_count++] = at;
            g->ok_suspect_from = g->ok_dead_from = at;
            if (hy_prng_chance(&w->prng, 1, 2)) {
                uint64_t back = at + hy_prng_range(&w->prng, 2000, 6000);
                w->faults[w->fault_count++] =
                    (struct gs_fault){.kind = F_RESTART, .node = node, .at = back};
                g->ok_suspect_to = g->ok_dead_to = back + w->bound_ms;
            } else {
                g->killed_for_good = 1;
                g->killed_at = at;
            }
            continue;
        }
        /* Short freezes (a GC pause, a stalled VM) stay under a third of the minimum
         * suspicion timeout past phi's threshold: they may be suspected, never killed. Long
         * ones outlast the longest timeout: they may be declared dead, and must come back. */
        int is_long = k >= kills + shorts;
        uint64_t len = is_long ? hi + hy_prng_range(&w->prng, 1000, 3000)
                               : hy_prng_range(&w->prng, 100, 500 + lo / 3);
        w->faults[w->fault_count++] = (struct gs_fault){.kind = F_FREEZE, .node = node, .at = at};
        w->faults[w->fault_count++] =
            (struct gs_fault){.kind = F_THAW, .node = node, .at = at + len};
        g->ok_suspect_from = at;
        g->ok_suspect_to = at + len + w->bound_ms;
        if (is_long) {
            g->ok_dead_from = at;
            g->ok_dead_to = at + len + w->bound_ms;
        }
    }
    for (int f = 0; f < w->fault_count; f++) {
        push(w, w->faults[f].at, EV_FAULT, (uint32_t)w->faults[f].node, (uint32_t)f);
    }
}

static void run_fault(struct gs_world *w, const struct gs_fault *f)
{
    struct gs_node *n = &w->nodes[f->node];
    if (getenv("GS_TRACE")) {
        printf("%llu fault %d on n%d\n", (unsigned long long)w->now_ms, f->kind, f->node);
    }
    switch (f->kind) {
    case F_KILL:
        n->up = 0;
        membership_free(&n->mb);
        break;
    case F_RESTART:
        /* A new life sees everything afresh: its detection times start over. */
        for (int k = 0; k < w->kill_count; k++) {
            w->suspect_ms[(size_t)k * (size_t)w->o.nodes + (size_t)f->node] = 0;
            w->dead_ms[(size_t)k * (size_t)w->o.nodes + (size_t)f->node] = 0;
        }
        n->started_at = w->now_ms;
        n->life++;
        node_start(w, f->node);
        break;
    case F_FREEZE:
        n->frozen = 1;
        n->frozen_until = UINT64_MAX;
        n->frozen_at = w->now_ms;
        break;
    default:
        n->stopped_ms += n->frozen ? w->now_ms - n->frozen_at : 0;
        n->frozen = 0;
        n->frozen_until = 0;
        n->started_at = w->now_ms; /* it could observe nothing while frozen */
        n->tick_at = 0;
        reschedule(w, f->node);
        break;
    }
}

/* ---- the CPU hog (--hog) -------------------------------------------------------------------
 * A host whose cores a hog saturates: every node, from the start, does not run for a while
 * again and again, each on its own (a starved process is not scheduled; what is sent to it
 * waits in its socket buffer, and its first turn after comes before it reads them, as in the
 * shell). Every 200-2000 ms a stall of 20 ms to the short-freeze bound (500 ms + a third of
 * the minimum suspicion timeout), heavy-tailed (20 + span * u^3): mostly short, now and then
 * long. No stall is a failure: every suspicion of a stalled node counts as false. */

static void hog_next(struct gs_world *w, int i)
{
    push(w, w->now_ms + hy_prng_range(&w->prng, 200, 2000), EV_HOG, (uint32_t)i, 1);
}

static void on_hog(struct gs_world *w, int i, int start)
{
    struct gs_node *n = &w->nodes[i];
    if (!start) {
        n->hogged = 0;
        n->hog_to = w->now_ms;
        n->tick_at = 0;
        reschedule(w, i);
        hog_next(w, i);
        return;
    }
    uint64_t lo, hi;
    membership_suspicion_bounds(&w->nodes[0].mb, &lo, &hi);
    double u = (double)hy_prng_below(&w->prng, 1000001) / 1000000.0;
    uint64_t len = 20 + (uint64_t)((double)(500 + lo / 3 - 20) * u * u * u);
    n->hogged = 1;
    if (getenv("GS_TRACE") && atoi(getenv("GS_TRACE")) == i) {
        printf("%llu n%d hogged for %llu ms\n", (unsigned long long)w->now_ms, i,
               (unsigned long long)len);
    }
    n->hog_from = w->now_ms;
    n->hog_to = w->now_ms + len;
    w->hog_stalls++;
    w->hog_stall_max = HY_MAX(w->hog_stall_max, len);
    push(w, w->now_ms + len, EV_HOG, (uint32_t)i, 0);
}

/* ---- the run ------------------------------------------------------------------------------- */

/* What mesh.c gives before a turn: the node's runnable time, its freezes left out. */
static void gs_note_runnable(struct gs_world *w, struct gs_node *n)
{
    membership_note_runnable(&n->mb, w->now_ms - n->life_at - n->stopped_ms, w->now_ms);
}

static void on_msg(struct gs_world *w, const struct gs_event *ev)
{
    struct gs_node *n = &w->nodes[ev->node];
    struct gs_msg *m = &w->pool[ev->arg];
    if (n->up && (n->frozen || n->hogged)) {
        /* Held in the frozen process's socket buffer until it runs again. A starved one reads
         * what waited for it in its first loop turn after the stall, before the gossip turn that
         * judges (the shell polls gossip every 10 ms and reads its sockets between): the
         * messages go right after the stall's end, which was queued before them. */
        push(w, n->frozen ? w->now_ms + 10 : n->hog_to, EV_MSG, ev->node, ev->arg);
        return;
    }
    if (n->up) {
        char from[32];
        snprintf(from, sizeof(from), "n%d", m->from);
        w->sender = (int)ev->node;
        if (m->heartbeat) {
            gs_note_runnable(w, n);
            membership_heartbeat(&n->mb, from, w->now_ms);
        } else {
            membership_receive(&n->mb, from, &m->msg, w->now_ms);
        }
        check_self(w, (int)ev->node);
        reschedule(w, (int)ev->node);
    }
    pool_put(w, (int)ev->arg);
}

static void on_event(struct gs_world *w, const struct gs_event *ev)
{
    struct gs_node *n = &w->nodes[ev->node];
    switch (ev->kind) {
    case EV_MSG: on_msg(w, ev); break;
    case EV_TICK:
        if (ev->at == n->tick_at && n->up && !n->frozen && !n->hogged) {
            w->sender = (int)ev->node;
            gs_note_runnable(w, n);
            membership_tick(&n->mb, w->now_ms);
            check_self(w, (int)ev->node);
            n->tick_at = 0;
            reschedule(w, (int)ev->node);
        }
        break;
    case EV_HB:
        if (n->up && !n->frozen && !n->hogged) {
            /* To the node's ring neighbours in its own view, as the shell beacons (the core
             * decides who they are for both). */
            const char *ring[2 * MEMBERSHIP_RING_K_MAX];
            size_t count = membership_ring(&n->mb, ring, HY_ARRAY_LEN(ring));
            for (size_t i = 0; i < count; i++) {
                deliver_later(w, (int)ev->node, node_index(ring[i]), NULL, 1);
            }
        }
        push(w, w->now_ms + GS_HB_MS, EV_HB, ev->node, 0);
        break;
    case EV_HOG: on_hog(w, (int)ev->node, (int)ev->arg); break;
    default: run_fault(w, &w->faults[ev->arg]); break;
    }
}

/* The end: killed nodes dead everywhere within the bound, everybody else alive everywhere. */
static void final_checks(struct gs_world *w)
{
    int n = w->o.nodes;
    for (int k = 0; k < w->kill_count && !w->failed; k++) {
        struct gs_node *dead = &w->nodes[w->kill_nodes[k]];
        if (!dead->killed_for_good) {
            continue;
        }
        for (int i = 0; i < n && !w->failed; i++) {
            if (!w->nodes[i].up) {
                continue;
            }
            uint64_t d = w->dead_ms[(size_t)k * (size_t)n + (size_t)i];
            char a[32], b[32];
            snprintf(a, sizeof(a), "n%d", i);
            snprintf(b, sizeof(b), "n%d", w->kill_nodes[k]);
            uint64_t since = HY_MAX(w->kill_at[k], w->nodes[i].started_at);
            since = d != 0 && d < since ? w->kill_at[k] : since; /* seen before it was blind */
            if (d == 0 || d - since > w->bound_ms) {
                fail(w, "%s did not declare killed %s DEAD within the bound", a, b, w->now_ms);
            }
        }
    }
    for (int i = 0; i < n && !w->failed; i++) {
        for (int j = 0; j < n && !w->failed && w->nodes[i].up; j++) {
            if (!w->nodes[j].up || i == j) {
                continue;
            }
            char name[32], obs[32];
            snprintf(name, sizeof(name), "n%d", j);
            snprintf(obs, sizeof(obs), "n%d", i);
            const struct membership_member *mm = membership_find(&w->nodes[i].mb, name);
            /* A suspicion younger than the detection bound may be loss's doing and still
             * on its way to refutation; anything else must be ALIVE. */
            int fresh = mm != NULL && mm->state == MEMBERSHIP_SUSPECT &&
                        w->now_ms - mm->state_since_ms < w->bound_ms;
            if (mm == NULL || (mm->state != MEMBERSHIP_ALIVE && !fresh)) {
                fail(w, "after the faults %s still does not hold live %s ALIVE", obs, name,
                     w->now_ms);
            }
        }
    }
}

struct gs_result {
    int failed;
    char reason[256];
    uint64_t *suspect_lat, *dead_lat; /* appended: detection latencies (ms) */
    size_t lat_count, lat_cap;
    uint64_t false_suspicions, false_deads, node_ms, msgs, kills;
    uint64_t false_suspicions_warm, hog_stalls, hog_stall_max;
    /* Summed over the nodes alive at the end: their own suspicions by cause, those the
     * loop-lag grace held back. */
    uint64_t own_probe, own_phi, saved_probe, saved_phi;
};

static void gs_run(const struct gs_opts *o, struct gs_result *res)
{
    struct gs_world *w = hy_xcalloc(1, sizeof(*w));
    w->o = *o;
    hy_prng_seed(&w->prng, o->seed);
    membership_config_default(&w->cfg);
    w->cfg.mutation = o->mutation;
    if (o->no_grace) {
        w->cfg.lag_window_ms = 0;
    }
    w->cfg.members_max = (uint32_t)HY_MAX(o->nodes, 16);
    w->pool_free = -1;
    w->nodes = hy_xcalloc((size_t)o->nodes, sizeof(*w->nodes));
    w->suspect_ms = hy_xcalloc((size_t)GS_FAULTS_MAX * (size_t)o->nodes, sizeof(uint64_t));
    w->dead_ms = hy_xcalloc((size_t)GS_FAULTS_MAX * (size_t)o->nodes, sizeof(uint64_t));
    w->now_ms = 1;
    for (int i = 0; i < o->nodes; i++) {
        node_start(w, i);
        push(w, 1 + hy_prng_below(&w->prng, GS_HB_MS), EV_HB, (uint32_t)i, 0);
        if (o->hog) {
            hog_next(w, i);
        }
    }
    uint64_t lo, hi;
    membership_suspicion_bounds(&w->nodes[0].mb, &lo, &hi);
    /* Detection bound: a few passes' worth of probe periods to notice and spread, plus the
     * longest suspicion timeout. */
    w->bound_ms = hi + 40ull * w->cfg.probe_interval_ms;
    plan_faults(w);
    w->end_ms = o->fault_ms + 8000 + w->bound_ms;
    while (w->heap_len > 0 && !w->failed) {
        struct gs_event ev = pop(w);
        if (ev.at > w->end_ms) {
            break;
        }
        w->now_ms = ev.at;
        on_event(w, &ev);
    }
    w->now_ms = w->end_ms;
    final_checks(w);
    res->failed = w->failed;
    snprintf(res->reason, sizeof(res->reason), "%s", w->reason);
    for (int k = 0; k < w->kill_count; k++) {
        if (!w->nodes[w->kill_nodes[k]].killed_for_good) {
            continue;
        }
        res->kills++;
        for (int i = 0; i < o->nodes; i++) {
            uint64_t s = w->suspect_ms[(size_t)k * (size_t)o->nodes + (size_t)i];
            uint64_t d = w->dead_ms[(size_t)k * (size_t)o->nodes + (size_t)i];
            if (!w->nodes[i].up || d == 0) {
                continue;
            }
            if (res->lat_count == res->lat_cap) {
                res->lat_cap = res->lat_cap ? 2 * res->lat_cap : 1024;
                res->suspect_lat = hy_xrealloc(res->suspect_lat, res->lat_cap * sizeof(uint64_t));
                res->dead_lat = hy_xrealloc(res->dead_lat, res->lat_cap * sizeof(uint64_t));
            }
            uint64_t since = HY_MAX(w->kill_at[k], w->nodes[i].started_at);
            since = s < since ? w->kill_at[k] : since;
            res->suspect_lat[res->lat_count] = s - since;
            res->dead_lat[res->lat_count++] = d - since;
        }
    }
    res->false_suspicions += w->false_suspicions;
    res->false_suspicions_warm += w->false_suspicions_warm;
    res->hog_stalls += w->hog_stalls;
    res->hog_stall_max = HY_MAX(res->hog_stall_max, w->hog_stall_max);
    res->false_deads += w->false_deads;
    res->node_ms += (uint64_t)o->nodes * w->end_ms;
    res->msgs += w->msgs;
    for (int i = 0; i < o->nodes; i++) {
        if (w->nodes[i].up) {
            const struct membership_stats *st = &w->nodes[i].mb.stats;
            res->own_probe += st->suspect_probe;
            res->own_phi += st->suspect_phi;
            res->saved_probe += st->grace_saved_probe;
            res->saved_phi += st->grace_saved_phi;
            membership_free(&w->nodes[i].mb);
        }
    }
    hy_free(w->nodes);
    hy_free(w->heap);
    hy_free(w->pool);
    hy_free(w->suspect_ms);
    hy_free(w->dead_ms);
    hy_free(w);
}

/* ---- the command line ---------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, int p)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (n * (size_t)p + 99) / 100;
    return v[i == 0 ? 0 : i - 1];
}

static const char *const mutation_names[MEMBERSHIP_MUT_COUNT] = {"none", "no-refute", "no-suspect",
                                                                 "inc-reset"};

int gossip_sim_main(int argc, char **argv)
{
    uint64_t from = 1, count = 1;
    int nodes = 0, loss = -1, mutation = 0, quiet = 0, first_failure = 0, hog = 0, no_grace = 0;
    uint64_t fault_ms = 20000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--membership") == 0) {
            continue;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--hog") == 0) {
            hog = 1;
        } else if (strcmp(a, "--no-grace") == 0) {
            no_grace = 1;
        } else if (strcmp(a, "--first-failure") == 0) {
            first_failure = 1;
        } else if (v != NULL && strcmp(a, "--seed") == 0) {
            from = strtoull(v, NULL, 10), count = 1, i++;
        } else if (v != NULL && strcmp(a, "--seeds") == 0) {
            count = strtoull(v, NULL, 10), i++;
        } else if (v != NULL && strcmp(a, "--from") == 0) {
            from = strtoull(v, NULL, 10), i++;
        } else if (v != NULL && strcmp(a, "--nodes") == 0) {
            nodes = atoi(v), i++;
        } else if (v != NULL && strcmp(a, "--loss") == 0) {
            loss = atoi(v), i++;
        } else if (v != NULL && strcmp(a, "--fault-ms") == 0) {
            fault_ms = strtoull(v, NULL, 10), i++;
        } else if (v != NULL && strcmp(a, "--mutation") == 0) {
            mutation = -1;
            for (int m = 0; m < MEMBERSHIP_MUT_COUNT; m++) {
                if (strcmp(v, mutation_names[m]) == 0) {
                    mutation = m;
                }
            }
            i++;
        } else {
            mutation = -1;
        }
    }
    if (mutation < 0 || nodes < 0 || nodes == 1 || nodes == 2 || nodes > 100000 || loss > 50 ||
        fault_ms < GS_WARM_MS + 1000) {
        fprintf(stderr, "usage: halyard-sim --membership [--seed S | --seeds N --from S] "
                        "[--nodes N>=3] [--loss PCT] [--fault-ms MS] [--mutation "
                        "no-refute|no-suspect|inc-reset] [--hog] [--no-grace] [--first-failure] "
                        "[--quiet]\n");
        return 2;
    }
    struct gs_result r = {0};
    uint64_t passed = 0, failed = 0;
    for (uint64_t k = 0; k < count; k++) {
        struct gs_opts o = {.seed = from + k,
                            .mutation = mutation,
                            .fault_ms = fault_ms,
                            .hog = hog,
                            .no_grace = no_grace};
        static const int cycle[] = {5, 20, 100};
        o.nodes = nodes ? nodes : cycle[o.seed % 3];
        o.loss_pct = loss >= 0 ? loss : (int)(o.seed % (GOSSIP_SIM_LOSS_SAFE_PCT + 1));
        r.failed = 0;
        gs_run(&o, &r);
        if (r.failed) {
            failed++;
            printf("seed %llu FAILED (%d nodes, loss %d%%): %s\n", (unsigned long long)o.seed,
                   o.nodes, o.loss_pct, r.reason);
            printf("  replay: halyard-sim --membership --seed %llu --nodes %d --loss %d%s%s%s%s\n",
                   (unsigned long long)o.seed, o.nodes, o.loss_pct, mutation ? " --mutation " : "",
                   mutation ? mutation_names[mutation] : "", hog ? " --hog" : "",
                   no_grace ? " --no-grace" : "");
            if (first_failure) {
                printf("first failure after %llu seeds\n", (unsigned long long)(k + 1));
                break;
            }
        } else {
            passed++;
        }
        fflush(stdout);
    }
    double hours = (double)r.node_ms / 3600000.0;
    if (!quiet || count > 1) {
        uint64_t s50 = pct(r.suspect_lat, r.lat_count, 50),
                 s99 = pct(r.suspect_lat, r.lat_count, 99);
        uint64_t d50 = pct(r.dead_lat, r.lat_count, 50), d99 = pct(r.dead_lat, r.lat_count, 99);
        printf("membership: %llu kills seen by %zu observers: SUSPECT p50 %llu ms p99 %llu ms, "
               "DEAD p50 %llu ms p99 %llu ms; false suspicions %llu (%.1f per node-hour), "
               "false DEAD %llu; %llu messages\n",
               (unsigned long long)r.kills, r.lat_count, (unsigned long long)s50,
               (unsigned long long)s99, (unsigned long long)d50, (unsigned long long)d99,
               (unsigned long long)r.false_suspicions,
               hours > 0 ? (double)r.false_suspicions / hours : 0.0,
               (unsigned long long)r.false_deads, (unsigned long long)r.msgs);
        if (hog) {
            printf("hog: %llu stalls (longest %llu ms); false suspicions after the %d ms warm-up: "
                   "%llu (%.1f per node-hour); own suspicions: probe %llu, phi %llu; held back by "
                   "the grace: probe %llu, phi %llu\n",
                   (unsigned long long)r.hog_stalls, (unsigned long long)r.hog_stall_max,
                   GS_WARM_MS, (unsigned long long)r.false_suspicions_warm,
                   hours > 0 ? (double)r.false_suspicions_warm / hours : 0.0,
                   (unsigned long long)r.own_probe, (unsigned long long)r.own_phi,
                   (unsigned long long)r.saved_probe, (unsigned long long)r.saved_phi);
        }
    }
    hy_free(r.suspect_lat);
    hy_free(r.dead_lat);
    printf("%llu passed, %llu failed\n", (unsigned long long)passed, (unsigned long long)failed);
    return failed ? 1 : 0;
}
