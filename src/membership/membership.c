/*
 * membership.c - SWIM + Lifeguard gossip and phi accrual (membership.h). Pure: every function
 * is a function of the view, the event and now_ms; sends and state changes go out through the
 * callbacks given at init.
 */
#include "membership/membership.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"

/* One watched peer's inter-arrival window (Hayashibara et al. §4: the accrual detector keeps
 * a sliding window of heartbeat intervals and estimates their normal distribution). */
struct membership_phi {
    uint32_t samples[MEMBERSHIP_PHI_WINDOW_MAX];
    uint32_t count, head;
    double sum, sum_sq;
    uint64_t last_ms;
    /* A window starts when its link joins the ring, before anything came on it: the first
     * heartbeat only dates the next one, or the wait for the link would be a sample. */
    uint8_t heard;
};

static const char *const state_names[] = {"alive", "suspect", "dead", "left"};

const char *membership_state_name(int state)
{
    return state >= 0 && state <= MEMBERSHIP_LEFT ? state_names[state] : "?";
}

void membership_config_default(struct membership_config *cfg)
{
    *cfg = (struct membership_config){.probe_interval_ms = 200,
                                      .probe_timeout_ms = 100,
                                      .indirect_probes = 3,
                                      .suspicion_mult = 3,
                                      .gossip_interval_ms = 100,
                                      .gossip_fanout = 3,
                                      .suspicion_max_mult = 6,
                                      .retransmit_mult = 4,
                                      .lhm_max = 8,
                                      .phi_threshold = 8.0,
                                      .phi_window = 100,
                                      .phi_min_samples = 3,
                                      .phi_min_stddev_ms = 50,
                                      .phi_pause_ms = 100,
                                      .stall_ms = 100,
                                      .lag_window_ms = 30000,
                                      .lag_grace_max_ms = 2000,
                                      .ring_k = 2,
                                      .members_max = 1024};
}

int membership_config_check(const struct membership_config *c)
{
    if (c->probe_interval_ms == 0 || c->probe_timeout_ms == 0 ||
        c->probe_timeout_ms >= c->probe_interval_ms || c->suspicion_mult == 0 ||
        c->suspicion_max_mult == 0 || c->retransmit_mult == 0 || c->phi_window < 2 ||
        c->phi_window > MEMBERSHIP_PHI_WINDOW_MAX || !(c->phi_threshold > 0.0) ||
        c->phi_min_samples < 2 || c->members_max < 1 || c->members_max > (1u << 20) ||
        c->indirect_probes > 16 || c->gossip_interval_ms == 0 || c->gossip_fanout > 16 ||
        c->mutation < 0 || c->mutation >= MEMBERSHIP_MUT_COUNT || c->ring_k < 1 ||
        c->ring_k > MEMBERSHIP_RING_K_MAX ||
        (c->lag_window_ms != 0 && c->lag_window_ms < MEMBERSHIP_LAG_BUCKETS)) {
        return HY_EINVAL;
    }
    return HY_OK;
}

/* ---- names --------------------------------------------------------------------------------- */

static int name_ok(const char *s, size_t len, int may_be_empty)
{
    if (len > MEMBERSHIP_NAME_MAX || (len == 0 && !may_be_empty)) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return 0;
        }
    }
    return 1;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    }
    return h | 1; /* never 0: 0 marks an empty suspector slot */
}

static int find_idx(const struct membership *m, const char *name)
{
    size_t mask = m->index_cap - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        uint32_t v = m->index[i];
        if (v == 0) {
            return -1;
        }
        if (strcmp(m->members[v - 1].name, name) == 0) {
            return (int)(v - 1);
        }
    }
}

/* Adds `name` (not yet known) ALIVE at incarnation inc. Returns its index, or -1 when full. */
static int insert_member(struct membership *m, const char *name, uint64_t inc, uint64_t now_ms)
{
    if (m->count >= m->cfg.members_max) {
        return -1;
    }
    size_t idx = m->count++;
    struct membership_member *mm = &m->members[idx];
    memset(mm, 0, sizeof(*mm));
    snprintf(mm->name, sizeof(mm->name), "%s", name);
    mm->state = MEMBERSHIP_ALIVE;
    mm->incarnation = inc;
    mm->state_since_ms = now_ms;
    size_t mask = m->index_cap - 1;
    size_t i = name_hash(name) & mask;
    while (m->index[i] != 0) {
        i = (i + 1) & mask;
    }
    m->index[i] = (uint32_t)idx + 1;
    m->ring_stale = 1; /* a new member may be a new neighbour */
    return (int)idx;
}

/* ---- dissemination ------------------------------------------------------------------------- */

static uint32_t retransmit_limit(const struct membership *m)
{
    uint32_t digits = (uint32_t)ceil(log10((double)m->count + 1.0));
    return m->cfg.retransmit_mult * HY_MAX(digits, 1u);
}

/* The member's current state is news: it rides on the next messages. */
static void broadcast(struct membership *m, size_t idx)
{
    struct membership_member *mm = &m->members[idx];
    if (mm->tx_left == 0) {
        m->bcast[m->bcast_count++] = (uint32_t)idx;
    }
    mm->tx_left = retransmit_limit(m);
}

static void make_update(const struct membership *m, size_t idx, const char *origin,
                        struct membership_update *u)
{
    const struct membership_member *mm = &m->members[idx];
    memset(u, 0, sizeof(*u));
    u->state = mm->state;
    u->incarnation = mm->incarnation;
    snprintf(u->name, sizeof(u->name), "%s", mm->name);
    if (mm->state == MEMBERSHIP_ALIVE) {
        u->meta = mm->meta;
    } else if (mm->state == MEMBERSHIP_SUSPECT) {
        snprintf(u->origin, sizeof(u->origin), "%s", origin ? origin : m->members[0].name);
    }
}

/* Fills msg's updates: the recipient's own state first when this view holds it SUSPECT or
 * DEAD (Lifeguard's buddy system: it learns in one hop and can refute), then the updates sent
 * the fewest times (memberlist's order: the freshest news spreads first). */
static void piggyback(struct membership *m, int to, struct membership_msg *msg)
{
    msg->update_count = 0;
    int buddy = to >= 0 && (m->members[to].state == MEMBERSHIP_SUSPECT ||
                            m->members[to].state == MEMBERSHIP_DEAD);
    if (buddy) {
        make_update(m, (size_t)to, NULL, &msg->updates[msg->update_count++]);
    }
    uint32_t taken[MEMBERSHIP_PIGGYBACK_MAX];
    size_t taken_count = 0;
    while (msg->update_count < MEMBERSHIP_PIGGYBACK_MAX && m->bcast_count > 0) {
        size_t best = 0;
        for (size_t i = 1; i < m->bcast_count; i++) {
            if (m->members[m->bcast[i]].tx_left > m->members[m->bcast[best]].tx_left) {
                best = i;
            }
        }
        uint32_t idx = m->bcast[best];
        /* Out of the list while this message is built, so it carries each update once. */
        m->bcast[best] = m->bcast[--m->bcast_count];
        m->members[idx].tx_left--;
        taken[taken_count++] = idx;
        if (!(buddy && (int)idx == to)) {
            make_update(m, idx, NULL, &msg->updates[msg->update_count++]);
        }
    }
    for (size_t k = 0; k < taken_count; k++) {
        if (m->members[taken[k]].tx_left > 0) {
            m->bcast[m->bcast_count++] = taken[k];
        }
    }
}

static void send_msg(struct membership *m, int to, struct membership_msg *msg)
{
    HY_ASSERT(to > 0 && (size_t)to < m->count);
    piggyback(m, to, msg);
    m->stats.msgs_sent++;
    if (m->cbs.send_cb != NULL) {
        m->cbs.send_cb(m->cbs.ctx, m->members[to].name, msg);
    }
}

static void send_simple(struct membership *m, int to, uint8_t type, uint32_t seq,
                        const char *target)
{
    struct membership_msg msg;
    msg.type = type;
    msg.seq = seq;
    snprintf(msg.target, sizeof(msg.target), "%s", target ? target : "");
    send_msg(m, to, &msg);
}

/* ---- states -------------------------------------------------------------------------------- */

static void set_state(struct membership *m, size_t idx, int state, uint64_t inc, uint64_t now_ms)
{
    struct membership_member *mm = &m->members[idx];
    HY_ASSERT(inc >= mm->incarnation); /* incarnations never go back */
    int old = mm->state;
    mm->incarnation = inc;
    if (old != state) {
        mm->state = (uint8_t)state;
        mm->state_since_ms = now_ms;
        if (old == MEMBERSHIP_LEFT || state == MEMBERSHIP_LEFT) {
            m->ring_stale = 1; /* the ring is made of the members not LEFT */
        }
        if (state == MEMBERSHIP_DEAD) {
            m->stats.deaths++;
        }
        if (m->cbs.state_cb != NULL) {
            m->cbs.state_cb(m->cbs.ctx, mm->name, old, state, inc);
        }
    }
    broadcast(m, idx);
}

/* ---- loop lag ------------------------------------------------------------------------------ */

/* One turn came late_ms after its work was due: the peak of the current bucket, the buckets
 * older than lag_window_ms dropped. */
static void lag_record(struct membership *m, uint64_t late_ms, uint64_t now_ms)
{
    if (m->cfg.lag_window_ms == 0) {
        return;
    }
    uint64_t span = m->cfg.lag_window_ms / MEMBERSHIP_LAG_BUCKETS;
    if (now_ms < m->lag_bucket_ms) {
        m->lag_bucket_ms = now_ms; /* a clock that stepped back: start the bucket again */
    }
    for (int moved = 0; now_ms >= m->lag_bucket_ms + span; moved++) {
        if (moved == MEMBERSHIP_LAG_BUCKETS) {
            m->lag_bucket_ms = now_ms; /* silent for a whole window: nothing to keep */
            break;
        }
        m->lag_cur = (m->lag_cur + 1) % MEMBERSHIP_LAG_BUCKETS;
        m->lag_peak[m->lag_cur] = 0;
        m->lag_bucket_ms += span;
    }
    uint32_t late = (uint32_t)HY_MIN(late_ms, (uint64_t)UINT32_MAX);
    m->lag_peak[m->lag_cur] = HY_MAX(m->lag_peak[m->lag_cur], late);
}

static uint64_t stall_limit(const struct membership *m);

/* Whether the stall this node finds now ended with the shell's last gap between notes, and
 * the process was runnable (on a CPU or waiting for one) for less than half of that gap: it
 * was stopped (SIGSTOP, a suspended VM) or blocked, which says nothing of the host's other
 * loops, unlike a starved CPU (membership_note_runnable). 0 when the shell gives no measure.
 * Measured across the gap itself: from the last turn instead, a loaded node's busy time
 * before the stop (its turns 0.1-0.2 s apart) counted as runnable, and a 0.3 s SIGSTOP was
 * taken for starvation (a CI run of test_gossip). */
static int stall_was_own(const struct membership *m, uint64_t now_ms)
{
    return m->runnable_known && m->gap_end_ms != 0 && now_ms < m->gap_end_ms + stall_limit(m) &&
           2 * m->gap_runnable_ms < m->gap_len_ms;
}

void membership_note_runnable(struct membership *m, uint64_t runnable_ms, uint64_t now_ms)
{
    if (m->runnable_known && runnable_ms >= m->runnable_ms && now_ms >= m->runnable_note_ms &&
        now_ms - m->runnable_note_ms >= stall_limit(m)) {
        m->gap_end_ms = now_ms;
        m->gap_len_ms = now_ms - m->runnable_note_ms;
        m->gap_runnable_ms = runnable_ms - m->runnable_ms;
    }
    m->runnable_ms = runnable_ms;
    m->runnable_note_ms = now_ms;
    m->runnable_known = 1;
}

/* The stall on hold (pause_ms) was no pause: nobody held this node dead, or suspected it,
 * since it began. A suspicion the others raised during the stall says they saw this node
 * alone fall silent, not a host that starves them all (whose silences they learn on their
 * own: peer_stall_record): counted, a node of 3 SIGSTOPped for 0.7 s (bench/partitions.py
 * (f)) kept a grace of 1.4 s for the next 30 s, and when the next node stopped, it and the
 * other survivor, which had learned the first one's silence up to 8 times its grace, took
 * 1.8-2.0 s to let the partitions elect. */
static int pause_counts(const struct membership *m)
{
    uint64_t news = HY_MAX(m->held_dead_ms, m->held_suspect_ms);
    return m->pause_ms != 0 && news + m->pause_ms < m->pause_at_ms;
}

uint32_t membership_grace(const struct membership *m)
{
    if (m->cfg.lag_window_ms == 0) {
        return 0;
    }
    uint64_t peak = 0;
    for (size_t i = 0; i < MEMBERSHIP_LAG_BUCKETS; i++) {
        peak = HY_MAX(peak, (uint64_t)m->lag_peak[i]);
    }
    if (pause_counts(m)) {
        /* A stall past the minimum suspicion timeout, on hold (membership_tick): it counts
         * at once, and stops counting when news comes that this node was held dead. Waiting
         * the longest suspicion timeout before it counted left the members' stalls as long
         * as this node's suspected meanwhile. */
        peak = HY_MAX(peak, m->pause_ms);
    }
    return (uint32_t)HY_MIN(2 * peak, (uint64_t)m->cfg.lag_grace_max_ms);
}

void membership_suspicion_bounds(const struct membership *m, uint64_t *min_ms, uint64_t *max_ms)
{
    double scale = HY_MAX(1.0, log10((double)HY_MAX(m->count, (size_t)1)));
    uint64_t lo = (uint64_t)(m->cfg.suspicion_mult * scale * m->cfg.probe_interval_ms);
    *min_ms = lo;
    *max_ms = lo * m->cfg.suspicion_max_mult;
}

/* Lifeguard §4.2: the timeout falls from max to min as the log of the confirmations, reaching
 * min at K = the independent suspicions one may expect (k helpers, at most n - 2 others). */
static void suspicion_deadline(const struct membership *m, struct membership_member *mm)
{
    uint64_t lo, hi;
    membership_suspicion_bounds(m, &lo, &hi);
    uint32_t k = m->cfg.indirect_probes;
    if (m->count < 3) {
        k = 0;
    } else if (k > m->count - 2) {
        k = (uint32_t)(m->count - 2);
    }
    double t = (double)lo;
    if (k > 0 && mm->confirmations < k) {
        double frac = log((double)mm->confirmations + 1.0) / log((double)k + 1.0);
        t = (double)hi - ((double)hi - (double)lo) * frac;
    }
    /* The grace only grows within a suspicion: one learned meanwhile (the suspect's own
     * silence is a stall if it refutes) moves the deadline later, one that lapsed keeps it. */
    mm->suspect_grace = mm->suspect_link ? 0 : HY_MAX(mm->suspect_grace, membership_grace(m));
    mm->suspect_deadline = mm->suspect_start_ms + (uint64_t)HY_MAX(t, (double)lo) +
                           mm->suspect_grace + mm->suspect_deferred_ms;
}

static void suspect(struct membership *m, size_t idx, uint64_t inc, const char *origin,
                    uint64_t now_ms)
{
    struct membership_member *mm = &m->members[idx];
    mm->suspect_start_ms = now_ms;
    mm->suspect_deferred_ms = 0;
    mm->suspect_gap_ms = 0;
    mm->gap_suspected = 1;
    mm->suspect_grace = 0;
    mm->suspect_link = 0;
    mm->confirmations = 0;
    memset(mm->suspectors, 0, sizeof(mm->suspectors));
    mm->suspectors[0] = name_hash(origin);
    suspicion_deadline(m, mm);
    if (!mm->listed) {
        mm->listed = 1;
        m->suspects[m->suspect_count++] = (uint32_t)idx;
    }
    m->stats.suspicions++;
    set_state(m, idx, MEMBERSHIP_SUSPECT, inc, now_ms);
}

/* Another node suspects the same incarnation: one more confirmation if it is a new voice. */
static void confirm(struct membership *m, size_t idx, const char *origin)
{
    struct membership_member *mm = &m->members[idx];
    uint64_t h = name_hash(origin);
    for (size_t i = 0; i < MEMBERSHIP_SUSPECTORS_MAX; i++) {
        if (mm->suspectors[i] == h) {
            return;
        }
        if (mm->suspectors[i] == 0) {
            mm->suspectors[i] = h;
            mm->confirmations++;
            suspicion_deadline(m, mm);
            broadcast(m, idx); /* memberlist re-gossips accepted confirmations too */
            return;
        }
    }
}

/* This node's own suspicion of member idx (a failed probe, phi, a broken link); cause: the
 * counter of stats to count it in when it starts a suspicion. */
static void suspect_local(struct membership *m, size_t idx, uint64_t now_ms, uint64_t *cause)
{
    struct membership_member *mm = &m->members[idx];
    if (mm->is_self || m->cfg.mutation == MEMBERSHIP_MUT_NO_SUSPECT) {
        return;
    }
    if (mm->state == MEMBERSHIP_ALIVE) {
        (*cause)++;
        suspect(m, idx, mm->incarnation, m->members[0].name, now_ms);
    } else if (mm->state == MEMBERSHIP_SUSPECT) {
        confirm(m, idx, m->members[0].name);
    }
}

static void lhm_add(struct membership *m, int delta)
{
    int64_t v = (int64_t)m->lhm + delta;
    m->lhm = (uint32_t)HY_MAX((int64_t)0, HY_MIN(v, (int64_t)m->cfg.lhm_max));
}

/* ---- updates ------------------------------------------------------------------------------- */

/* A refuted silence teaches the grace only up to this many times the grace already learned. */
#define PEER_STALL_RATIO 4

/* Member mm refuted this view's suspicion of it: it was alive all along. When its heartbeats
 * had been silent (its loop did not run: a starved host), that silence joins this node's loop
 * lag (see membership_grace): on this host a loop stalls that long, so for lag_window_ms this
 * node gives every member that much more before it suspects it. Only a watched member's
 * silence is known (a suspicion after a lost probe, with the heartbeats flowing, teaches
 * nothing). And only a silence of the order of the lag this host already showed (its own
 * turns, its members' late heartbeats: at most PEER_STALL_RATIO times the grace, i.e. 8 times
 * the peak lag): a silence far beyond it, among punctual turns and members, was that member's
 * own pause (SIGSTOP, a debugger, a suspended VM), which says nothing of the host, and taught, it
 * would delay the detection of the next hung member by up to the grace's ceiling for the whole
 * window (an idle host's grace is a few ms: such a silence is never learned there). Under a
 * starved host's stalls the grace grows with them, and they are learned as before: the
 * simulator's --hog, seeds 1-24, 7,340 false suspicions after warm-up with a ratio of 8, 7,420
 * without (a ratio of 4: 8,305; a fixed floor of stall_ms: a third more than without). With
 * the rules of session 25 (a heartbeat after a suspected silence, and this node's own stalls
 * the others suspected, teach nothing) a ratio of 8 let a survivor of 3 nodes on 2 cores, its
 * turns ~100 ms late during a failover, learn a SIGSTOPped member's 0.7 s silence; 4: hog seeds
 * 1-24 8,179 false suspicions after warm-up (8 with those rules: 8,119; none of them: 7,089),
 * no false DEAD, and bench/partitions.py (f) SIGSTOP p99 0.7 s. */
static void peer_stall_record(struct membership *m, const struct membership_member *mm,
                              uint64_t now_ms)
{
    if (mm->phi == NULL || !mm->phi->heard) {
        return;
    }
    uint64_t silent = HY_MAX(mm->suspect_gap_ms, now_ms - HY_MIN(mm->phi->last_ms, now_ms));
    if (silent > PEER_STALL_RATIO * (uint64_t)membership_grace(m)) {
        /* Far beyond any lag this host showed: the member's own pause, not the host's. */
        return;
    }
    if (m->last_stall_ms != 0 && m->last_stall_ms + silent >= now_ms &&
        2 * m->last_stall_len_ms >= silent) {
        return; /* this node itself did not run for most of it: the silence was its own */
    }
    m->stats.peer_stalls++;
    lag_record(m, silent, now_ms);
}

/* This node missed news (it starts, it did not run for longer than the minimum suspicion
 * timeout, or it hears it was held dead): it asks MEMBERSHIP_SYNC_REQUESTS members for the
 * whole view, on its next probe periods. Deaths spread as a few piggybacked retransmits, over
 * by the time such a node listens again, and its own probes come round to a dead member only
 * a whole pass later (past the detection bound at 100 nodes). Once per longest suspicion
 * timeout: stale reports of its death go on arriving for a while, and each answer to a SYNC
 * is the whole view. */
static void ask_whole_view(struct membership *m, uint64_t now_ms)
{
    uint64_t lo, hi;
    membership_suspicion_bounds(m, &lo, &hi);
    if (m->view_asked_ms != 0 && now_ms < m->view_asked_ms + hi) {
        return;
    }
    m->view_asked_ms = now_ms;
    /* Never fewer than still to send (a restart held dead: simulator seed 16 --nodes 100). */
    m->sync_left = HY_MAX(m->sync_left, (uint32_t)MEMBERSHIP_SYNC_REQUESTS);
}

/* An update about this node: anything but ALIVE of our own incarnation is refuted with a
 * higher incarnation (SWIM §4.2); only this node ever raises it. */
static void apply_self(struct membership *m, const struct membership_update *u, uint64_t now_ms)
{
    struct membership_member *self = &m->members[0];
    if (m->left) {
        return;
    }
    if (u->state == MEMBERSHIP_DEAD) {
        /* Held dead (now, or at an incarnation it refuted since): its last long stall was a
         * pause, not the host's lag (membership_tick), and the others went on without it:
         * it asks for the whole view. At any incarnation: a node thawed after a long pause
         * that reads an old suspicion first refutes it, and every DEAD after comes at the
         * incarnation it left; asking only at its current one, it asked for nothing and
         * learned of a death of its pause only when its probes came round to the dead
         * member, past the detection bound (simulator seed 29 --nodes 100 --loss 5). */
        ask_whole_view(m, now_ms);
        m->held_dead_ms = now_ms;
    }
    if (u->incarnation < self->incarnation) {
        if (u->state != MEMBERSHIP_ALIVE) {
            /* Someone still holds an older suspicion or death of ours (it missed the
             * refutation): spread the current incarnation again. */
            broadcast(m, 0);
        }
        return;
    }
    if (u->state == MEMBERSHIP_ALIVE) {
        if (u->incarnation > self->incarnation) {
            /* A view from before a restart: take a higher incarnation so ours counts. */
            set_state(m, 0, MEMBERSHIP_ALIVE, u->incarnation + 1, now_ms);
        }
        return;
    }
    m->held_suspect_ms = now_ms;
    if (m->cfg.mutation == MEMBERSHIP_MUT_NO_REFUTE) {
        return;
    }
    m->stats.refutations++;
    lhm_add(m, 1); /* Lifeguard: being suspected hints that this node is the slow one */
    if (m->cfg.mutation == MEMBERSHIP_MUT_INC_RESET) {
        self->incarnation = 0; /* the bug: a refutation that resets, not raises */
        broadcast(m, 0);
        return;
    }
    set_state(m, 0, MEMBERSHIP_ALIVE, u->incarnation + 1, now_ms);
}

static void apply_known(struct membership *m, size_t idx, const struct membership_update *u,
                        uint64_t now_ms)
{
    struct membership_member *mm = &m->members[idx];
    uint64_t inc = u->incarnation;
    switch (u->state) {
    case MEMBERSHIP_ALIVE:
        if (inc > mm->incarnation) {
            if (mm->state == MEMBERSHIP_SUSPECT && inc == mm->incarnation + 1) {
                /* The refutation of this very suspicion (not a view that was stale: a
                 * restarted node suspects at incarnation 0 before it learns the real ones). */
                peer_stall_record(m, mm, now_ms);
            }
            mm->meta = u->meta;
            set_state(m, idx, MEMBERSHIP_ALIVE, inc, now_ms);
        }
        break;
    case MEMBERSHIP_SUSPECT:
        if ((mm->state == MEMBERSHIP_ALIVE && inc >= mm->incarnation) ||
            (mm->state != MEMBERSHIP_LEFT && inc > mm->incarnation)) {
            suspect(m, idx, inc, u->origin, now_ms);
        } else if (mm->state == MEMBERSHIP_SUSPECT && inc == mm->incarnation) {
            confirm(m, idx, u->origin);
        }
        break;
    case MEMBERSHIP_DEAD:
    case MEMBERSHIP_LEFT:
        if ((mm->state != MEMBERSHIP_DEAD && mm->state != MEMBERSHIP_LEFT &&
             inc >= mm->incarnation) ||
            inc > mm->incarnation) {
            set_state(m, idx, u->state, inc, now_ms);
        }
        break;
    default: break;
    }
}

/* Returns the index of the member when the update is older than this view (its sender missed
 * news), else -1. */
static int apply_update(struct membership *m, const struct membership_update *u, uint64_t now_ms)
{
    if (strcmp(u->name, m->members[0].name) == 0) {
        apply_self(m, u, now_ms);
        return -1;
    }
    int idx = find_idx(m, u->name);
    if (idx > 0 && u->incarnation < m->members[idx].incarnation) {
        return idx;
    }
    if (idx < 0) {
        /* Gossip teaches us of members we did not know; the dead are not worth learning. */
        if (u->state != MEMBERSHIP_ALIVE && u->state != MEMBERSHIP_SUSPECT) {
            return -1;
        }
        idx = insert_member(m, u->name, u->incarnation, now_ms);
        if (idx < 0) {
            return -1;
        }
        m->members[idx].meta = u->meta;
        if (m->cbs.state_cb != NULL) {
            m->cbs.state_cb(m->cbs.ctx, u->name, -1, MEMBERSHIP_ALIVE, u->incarnation);
        }
        broadcast(m, (size_t)idx);
        if (u->state == MEMBERSHIP_SUSPECT) {
            suspect(m, (size_t)idx, u->incarnation, u->origin, now_ms);
        }
        return -1;
    }
    apply_known(m, (size_t)idx, u, now_ms);
    return -1;
}

/* ---- the ring ------------------------------------------------------------------------------ */

static int ring_cmp(const void *a, const void *b)
{
    const struct membership_member *x = *(const struct membership_member *const *)a;
    const struct membership_member *y = *(const struct membership_member *const *)b;
    return strcmp(x->name, y->name);
}

/* The ring neighbours of this node into out (at most 2 * ring_k member indexes, see
 * membership_ring); returns how many. */
static size_t ring_compute(const struct membership *m, uint32_t *out)
{
    const struct membership_member **circle = hy_xcalloc(m->count, sizeof(*circle));
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++) {
        if (i == 0 || m->members[i].state != MEMBERSHIP_LEFT) {
            circle[n++] = &m->members[i];
        }
    }
    qsort(circle, n, sizeof(*circle), ring_cmp);
    size_t self = 0;
    while (circle[self] != &m->members[0]) {
        self++;
    }
    size_t count = 0;
    for (int before = 0; before < 2; before++) {
        for (size_t d = 1; d <= m->cfg.ring_k && d < n; d++) {
            size_t pos = before ? (self + n - d) % n : (self + d) % n;
            uint32_t idx = (uint32_t)(circle[pos] - m->members);
            int dup = 0;
            for (size_t j = 0; j < count && !dup; j++) {
                dup = out[j] == idx; /* a small circle meets itself going both ways */
            }
            if (!dup) {
                out[count++] = idx;
            }
        }
    }
    hy_free(circle);
    return count;
}

/* The ring again if its members changed. A link that left it loses its phi window: nothing
 * beacons on it any more, so its silence would soon read as a failure. A link that joined it
 * gets an empty one: a window kept from an earlier time on the ring would date its last
 * heartbeat from then and suspect at once, and one filled by the link's other traffic (Raft's,
 * the probes') would have learned a slower rhythm than the beacons'. The empty window is
 * judged once phi_min_samples heartbeats came, with the loop-lag grace this node learned
 * (membership_grace: the ring does not touch it). */
static void ring_refresh(struct membership *m)
{
    if (!m->ring_stale) {
        return;
    }
    m->ring_stale = 0;
    uint32_t next[2 * MEMBERSHIP_RING_K_MAX];
    size_t count = ring_compute(m, next);
    int changed = count != m->ring_count;
    for (size_t i = 0; i < m->ring_count; i++) {
        m->members[m->ring[i]].ring = 0;
    }
    for (size_t i = 0; i < count; i++) {
        m->members[next[i]].ring = 1;
        changed = changed || next[i] != m->ring[i];
    }
    memcpy(m->ring, next, count * sizeof(*next));
    m->ring_count = count;
    for (size_t i = 0; i < m->watched_count;) {
        struct membership_member *mm = &m->members[m->watched[i]];
        if (mm->ring) {
            i++;
            continue;
        }
        hy_free(mm->phi);
        mm->phi = NULL;
        mm->phi_graced = 0;
        m->watched[i] = m->watched[--m->watched_count];
    }
    for (size_t i = 0; i < count; i++) {
        struct membership_member *mm = &m->members[next[i]];
        if (mm->phi == NULL) {
            mm->phi = hy_xcalloc(1, sizeof(*mm->phi));
            m->watched[m->watched_count++] = next[i];
        }
    }
    if (changed) {
        m->ring_epoch++;
    }
}

size_t membership_ring(struct membership *m, const char **out, size_t cap)
{
    ring_refresh(m);
    for (size_t i = 0; i < m->ring_count && i < cap; i++) {
        out[i] = m->members[m->ring[i]].name;
    }
    return m->ring_count;
}

/* ---- phi accrual --------------------------------------------------------------------------- */

/* phi = -log10(1 - F(elapsed)), F the normal CDF (mean + acceptable pause, stddev floored),
 * with the logistic approximation of F Akka and Cassandra use (error under 1e-4). */
static double phi_of(const struct membership_config *cfg, const struct membership_phi *p,
                     uint32_t grace_ms, uint64_t now_ms)
{
    if (p->count < cfg->phi_min_samples) {
        return 0.0;
    }
    double mean = p->sum / p->count;
    double var = p->sum_sq / p->count - mean * mean;
    double sd = sqrt(HY_MAX(var, 0.0));
    sd = HY_MAX(sd, (double)cfg->phi_min_stddev_ms);
    mean += cfg->phi_pause_ms + grace_ms;
    double elapsed = (double)(now_ms - HY_MIN(p->last_ms, now_ms));
    double y = (elapsed - mean) / sd;
    double e = exp(-y * (1.5976 + 0.070566 * y * y));
    double tail = elapsed > mean ? e / (1.0 + e) : 1.0 - 1.0 / (1.0 + e);
    if (tail < 1e-300) {
        return 300.0;
    }
    return -log10(tail);
}

/* A live member's heartbeat came gap_ms after the previous one. How far it came past its
 * usual rhythm (the window's mean plus one standard deviation, floored like phi's) is a stall
 * of that member's loop, or of this node's while the heartbeat sat unread, that nobody
 * suspected: on this host a loop stalls that long, so it joins the loop lag exactly as this
 * node's own late turns do (membership_grace). Without it the grace learned only from this
 * node's own turns and from refuted suspicions, so the first long stall of a member after a
 * hog started was suspected even when shorter stalls of every member had shown the host
 * starving; with it, every stall any watched member has shows. A gap longer than the minimum
 * suspicion timeout is left out: a member silent that long while held alive means this node
 * did not judge meanwhile (it was paused itself: membership_tick holds those). */
static void peer_gap_record(struct membership *m, const struct membership_phi *p, uint64_t gap_ms,
                            uint64_t now_ms)
{
    if (p->count < m->cfg.phi_min_samples) {
        return;
    }
    double mean = p->sum / p->count;
    double sd = sqrt(HY_MAX(p->sum_sq / p->count - mean * mean, 0.0));
    double late = (double)gap_ms - mean - HY_MAX(sd, (double)m->cfg.phi_min_stddev_ms);
    uint64_t lo, hi;
    membership_suspicion_bounds(m, &lo, &hi);
    if (late < 1.0 || late > (double)lo) {
        return;
    }
    m->stats.peer_gaps++;
    /* This node did not run for most of the gap itself (a stall of its own: its turn is
     * overdue now, or its last one came late): the heartbeat sat unread, and the gap is held
     * with that stall, dropped with it if the others suspected this node meanwhile
     * (pause_counts). Learned at once, a node of 3 resumed after a 0.47 s SIGSTOP read both
     * members' heartbeats as 0.4 s late and kept a grace of 1 s (bench/partitions.py (f)),
     * though its tick dropped the stall itself. */
    uint64_t due = HY_MAX(membership_next_ms(m), m->last_tick_ms);
    double own = now_ms > due && m->last_tick_ms != 0 ? (double)(now_ms - due) : 0.0;
    /* Only a stall tells a stopped process from a starved one: an idle loop asleep in its poll
     * is not runnable either. */
    int own_stopped = own >= (double)stall_limit(m) && stall_was_own(m, now_ms);
    if (m->last_stall_ms != 0 && m->last_stall_ms + gap_ms >= now_ms &&
        (double)m->last_stall_len_ms > own) {
        own = (double)m->last_stall_len_ms;
        own_stopped = m->last_stall_stopped;
    }
    if (2.0 * own >= late) {
        /* Read late because this process was stopped: nothing to hold, it never counts. */
        if (!own_stopped) {
            m->pause_ms = HY_MAX(m->pause_ms, (uint64_t)late);
            m->pause_at_ms = now_ms;
        }
    } else {
        lag_record(m, (uint64_t)late, now_ms);
    }
}

void membership_heartbeat(struct membership *m, const char *from, uint64_t now_ms)
{
    ring_refresh(m);
    int idx = find_idx(m, from);
    if (idx <= 0) {
        return;
    }
    struct membership_member *mm = &m->members[idx];
    if (mm->phi == NULL) {
        return; /* not a ring neighbour: the probes watch it */
    }
    struct membership_phi *p = mm->phi;
    if (!p->heard) {
        p->heard = 1;
        p->last_ms = now_ms;
        return;
    }
    if (mm->phi_graced && mm->state == MEMBERSHIP_ALIVE) {
        m->stats.grace_saved_phi++; /* phi alone would have suspected it */
    }
    mm->phi_graced = 0;
    uint64_t gap = now_ms - HY_MIN(p->last_ms, now_ms);
    p->last_ms = now_ms;
    /* The silence of a suspected or dead member is the failure itself, not a sample of its
     * heartbeat rhythm: keeping it would blunt the detector for the next failure. A suspect's
     * is kept aside: a stall if it refutes (peer_stall_record). So is a silence during which
     * it was suspected and that ends, the refutation read first, with the member ALIVE again:
     * taken as a late heartbeat (peer_gap_record) it taught the grace what peer_stall_record's
     * bound refuses. A node of 3 SIGSTOPped for 0.6 s (bench/partitions.py (f)) left both
     * survivors with a grace of 1.1 s (twice its silence, from a lag of 56 ms), and the next
     * stop was detected that much later. */
    int suspected = mm->gap_suspected;
    mm->gap_suspected = 0;
    if (mm->state == MEMBERSHIP_SUSPECT) {
        mm->suspect_gap_ms = HY_MAX(mm->suspect_gap_ms, gap);
    }
    if (mm->state != MEMBERSHIP_ALIVE || suspected || gap > UINT32_MAX) {
        return;
    }
    peer_gap_record(m, p, gap, now_ms);
    uint32_t window = m->cfg.phi_window;
    if (p->count == window) {
        uint32_t old = p->samples[p->head];
        p->sum -= old;
        p->sum_sq -= (double)old * old;
    } else {
        p->count++;
    }
    p->samples[p->head] = (uint32_t)gap;
    p->head = (p->head + 1) % window;
    p->sum += (double)gap;
    p->sum_sq += (double)gap * (double)gap;
}

double membership_phi(const struct membership *m, const char *name, uint64_t now_ms)
{
    int idx = find_idx(m, name);
    if (idx < 0 || m->members[idx].phi == NULL) {
        return 0.0;
    }
    return phi_of(&m->cfg, m->members[idx].phi, membership_grace(m), now_ms);
}

/* ---- probing ------------------------------------------------------------------------------- */

static uint32_t scaled(const struct membership *m, uint32_t ms)
{
    return ms * (1 + m->lhm);
}

static int probeable(const struct membership_member *mm)
{
    return !mm->is_self && (mm->state == MEMBERSHIP_ALIVE || mm->state == MEMBERSHIP_SUSPECT);
}

/* The next member in the shuffled round-robin order (SWIM §4.3: every member is probed within
 * one pass, and a fresh shuffle each pass). -1 when there is nobody to probe. */
static int next_target(struct membership *m)
{
    for (int pass = 0; pass < 2; pass++) {
        while (m->order_pos < m->order_len) {
            uint32_t idx = m->order[m->order_pos++];
            if (idx < m->count && probeable(&m->members[idx])) {
                return (int)idx;
            }
        }
        m->order_len = 0;
        m->order_pos = 0;
        for (size_t i = 1; i < m->count; i++) {
            if (probeable(&m->members[i])) {
                m->order[m->order_len++] = (uint32_t)i;
            }
        }
        for (size_t i = m->order_len; i > 1; i--) {
            size_t j = hy_prng_below(&m->prng, i);
            uint32_t t = m->order[i - 1];
            m->order[i - 1] = m->order[j];
            m->order[j] = t;
        }
    }
    return -1;
}

/* A DEAD member picked at random, or -1. Pinging one now and then lets two sides that
 * declared each other dead (a healed partition) meet again: the ping tells the member it is
 * held dead, it refutes, and its ALIVE spreads (memberlist gets the same from its periodic
 * full-state exchange). */
static int dead_target(struct membership *m)
{
    for (int tries = 0; tries < 8 && m->count > 1; tries++) {
        int idx = (int)hy_prng_range(&m->prng, 1, m->count - 1);
        if (m->members[idx].state == MEMBERSHIP_DEAD) {
            return idx;
        }
    }
    return -1;
}

static void probe_start(struct membership *m, uint64_t now_ms)
{
    uint32_t grace = membership_grace(m);
    m->next_probe_ms = now_ms + scaled(m, m->cfg.probe_interval_ms) + grace;
    m->periods++;
    if (m->periods % MEMBERSHIP_DEAD_PROBE_EVERY == 0) {
        int dead = dead_target(m);
        if (dead > 0) {
            send_simple(m, dead, MEMBERSHIP_PING, ++m->seq, m->members[dead].name);
            return;
        }
    }
    int target = next_target(m);
    if (target < 0) {
        return;
    }
    if (m->sync_left > 0) {
        m->sync_left--;
        int helper = (int)hy_prng_range(&m->prng, 1, m->count - 1);
        if (probeable(&m->members[helper])) {
            send_simple(m, helper, MEMBERSHIP_SYNC, 0, NULL);
        }
    }
    m->probing = 1;
    m->probe_seq = ++m->seq;
    m->probe_target = (uint32_t)target;
    m->probe_acked = 0;
    m->probe_indirect_sent = 0;
    m->probe_nacks = 0;
    m->probe_nacks_expected = 0;
    m->probe_start_ms = now_ms;
    m->probe_timeout_at = now_ms + scaled(m, m->cfg.probe_timeout_ms) + grace;
    m->probe_end_at = m->next_probe_ms;
    m->probe_graceless_end_at = m->probe_end_at - grace;
    m->probe_grace = grace;
    m->stats.probes++;
    send_simple(m, target, MEMBERSHIP_PING, m->probe_seq, m->members[target].name);
}

/* SWIM §3.1: k other members ping the target for us. */
static void probe_indirect(struct membership *m)
{
    m->probe_indirect_sent = 1;
    uint32_t want = m->cfg.indirect_probes;
    int chosen[16];
    uint32_t n = 0;
    for (uint32_t tries = 0; n < want && tries < 4 * want + 8 && m->count > 2; tries++) {
        int idx = (int)hy_prng_range(&m->prng, 1, m->count - 1);
        int dup = idx == (int)m->probe_target || m->members[idx].state != MEMBERSHIP_ALIVE;
        for (uint32_t k = 0; k < n && !dup; k++) {
            dup = chosen[k] == idx;
        }
        if (!dup) {
            chosen[n++] = idx;
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        send_simple(m, chosen[k], MEMBERSHIP_PING_REQ, m->probe_seq,
                    m->members[m->probe_target].name);
    }
    m->probe_nacks_expected = n;
    m->stats.indirect_probes += n;
}

/* The period ended. Lifeguard §4.1: a failed probe raises local health by the NACKs that
 * did not come (our own slowness hides them), or by one when nobody could help. */
static void probe_finish(struct membership *m, uint64_t now_ms)
{
    m->probing = 0;
    if (m->probe_acked) {
        lhm_add(m, -1);
        return;
    }
    m->stats.probes_failed++;
    if (m->probe_nacks_expected > 0) {
        lhm_add(m,
                (int)(m->probe_nacks_expected - HY_MIN(m->probe_nacks, m->probe_nacks_expected)));
    } else {
        lhm_add(m, 1);
    }
    suspect_local(m, m->probe_target, now_ms, &m->stats.suspect_probe);
}

static void tick_probe(struct membership *m, uint64_t now_ms)
{
    if (m->probing && !m->probe_acked && !m->probe_indirect_sent && now_ms >= m->probe_timeout_at) {
        probe_indirect(m);
    }
    if (m->probing && now_ms >= m->probe_end_at) {
        probe_finish(m, now_ms);
    }
    if (!m->probing && now_ms >= m->next_probe_ms) {
        probe_start(m, now_ms);
    }
}

static void tick_suspects(struct membership *m, uint64_t now_ms)
{
    size_t keep = 0;
    for (size_t i = 0; i < m->suspect_count; i++) {
        uint32_t idx = m->suspects[i];
        struct membership_member *mm = &m->members[idx];
        if (mm->state != MEMBERSHIP_SUSPECT) {
            mm->listed = 0;
            continue;
        }
        if (now_ms >= mm->suspect_deadline) {
            mm->listed = 0;
            set_state(m, idx, MEMBERSHIP_DEAD, mm->incarnation, now_ms);
            continue;
        }
        m->suspects[keep++] = idx;
    }
    m->suspect_count = keep;
}

static void tick_relays(struct membership *m, uint64_t now_ms)
{
    for (size_t i = 0; i < MEMBERSHIP_RELAYS_MAX; i++) {
        struct membership_relay *r = &m->relays[i];
        if (r->used && now_ms >= r->deadline_ms) {
            r->used = 0;
            int to = find_idx(m, r->origin);
            if (to > 0) {
                send_simple(m, to, MEMBERSHIP_NACK, r->origin_seq, NULL);
            }
        }
    }
}

static void tick_phi(struct membership *m, uint64_t now_ms)
{
    uint32_t grace = membership_grace(m);
    for (size_t i = 0; i < m->watched_count; i++) {
        struct membership_member *mm = &m->members[m->watched[i]];
        if (mm->state != MEMBERSHIP_ALIVE) {
            continue;
        }
        if (phi_of(&m->cfg, mm->phi, grace, now_ms) > m->cfg.phi_threshold) {
            suspect_local(m, m->watched[i], now_ms, &m->stats.suspect_phi);
        } else if (grace > 0 && !mm->phi_graced &&
                   phi_of(&m->cfg, mm->phi, 0, now_ms) > m->cfg.phi_threshold) {
            mm->phi_graced = 1; /* counted if its next heartbeat comes before a suspicion */
        }
    }
}

/* memberlist's gossip timer: what is news goes to a few random live members now, not only
 * on the next probes. */
static void tick_gossip(struct membership *m, uint64_t now_ms)
{
    if (now_ms < m->next_gossip_ms) {
        return;
    }
    m->next_gossip_ms = now_ms + m->cfg.gossip_interval_ms;
    int sent[16];
    uint32_t n = 0;
    for (uint32_t tries = 0; n < m->cfg.gossip_fanout && tries < 4 * m->cfg.gossip_fanout + 8 &&
                             m->bcast_count > 0 && m->count > 1;
         tries++) {
        int idx = (int)hy_prng_range(&m->prng, 1, m->count - 1);
        int skip = !probeable(&m->members[idx]);
        for (uint32_t k = 0; k < n && !skip; k++) {
            skip = sent[k] == idx;
        }
        if (!skip) {
            sent[n++] = idx;
            send_simple(m, idx, MEMBERSHIP_GOSSIP, 0, NULL);
        }
    }
}

/* This node did not run for late_ms: its pending deadlines (the probe's, the relays', the
 * suspicions') move that much later. Each was meant as time for an answer to reach this node;
 * an answer that came while it did not run is still unread in its sockets, and the shell reads
 * them only after this turn (in the simulator, within its next few milliseconds). */
static void defer_deadlines(struct membership *m, uint64_t late_ms)
{
    if (m->probing) {
        m->probe_timeout_at += late_ms;
        m->probe_end_at += late_ms;
        m->probe_graceless_end_at += late_ms;
        m->next_probe_ms = m->probe_end_at;
    }
    for (size_t i = 0; i < MEMBERSHIP_RELAYS_MAX; i++) {
        if (m->relays[i].used) {
            m->relays[i].deadline_ms += late_ms;
        }
    }
    for (size_t i = 0; i < m->suspect_count; i++) {
        struct membership_member *mm = &m->members[m->suspects[i]];
        if (mm->state == MEMBERSHIP_SUSPECT) {
            mm->suspect_deferred_ms += late_ms;
            suspicion_deadline(m, mm);
        }
    }
}

/* The grace grew since the probe in progress and the suspicions took their deadlines (a
 * member's heartbeat gap, a refuted silence, a stall of this node's own): they move later by
 * as much before this turn judges them. A stall learned while a probe waits is as much a
 * reason to wait for that probe's ack as one learned before it started. */
static void grace_follow(struct membership *m)
{
    uint32_t grace = membership_grace(m);
    if (m->probing && grace > m->probe_grace) {
        uint64_t more = grace - m->probe_grace;
        m->probe_timeout_at += more;
        m->probe_end_at += more;
        m->next_probe_ms = m->probe_end_at;
        m->probe_grace = grace;
    }
    for (size_t i = 0; i < m->suspect_count; i++) {
        struct membership_member *mm = &m->members[m->suspects[i]];
        if (mm->state == MEMBERSHIP_SUSPECT && !mm->suspect_link && grace > mm->suspect_grace) {
            suspicion_deadline(m, mm);
        }
    }
}

/* How late a turn is a stall: stall_ms, and with the guard off (0) the default's 100 ms, so that
 * stalls are counted (and held: membership_tick) to show what the guard would do. */
static uint64_t stall_limit(const struct membership *m)
{
    return m->cfg.stall_ms != 0 ? m->cfg.stall_ms : 100;
}

/* 1 when this turn comes stall_ms or more after it was due (and after the previous turn):
 * this node did not run meanwhile (its loop was stalled, its process starved or stopped). What
 * it would judge now, a member's silence (phi), a probe without its ack, a suspicion without its
 * refutation, may be sitting unread in its own socket buffers: the shell reads them only after
 * this turn. So the turn judges nothing; the next one, after the shell has read what arrived
 * (it turns the crank every few ms while a deadline is past), judges with the news. Lifeguard
 * (Dadgar et al., section 4.1) applies: a node that finds itself slow raises its local health
 * multiplier, so that for a while it probes and suspects more slowly. */
static int tick_stalled(struct membership *m, uint64_t now_ms)
{
    /* The earliest deadline now past (or the previous turn, when it judged nothing and left
     * them past: the next turn is then measured from it). */
    uint64_t ref = HY_MAX(membership_next_ms(m), m->last_tick_ms);
    if (m->last_tick_ms == 0 || now_ms < ref + stall_limit(m)) {
        return 0;
    }
    m->stats.stalls++;
    m->stats.stall_max_ms = HY_MAX(m->stats.stall_max_ms, now_ms - ref);
    m->last_stall_ms = now_ms;
    m->last_stall_len_ms = now_ms - ref;
    if (m->cfg.stall_ms == 0) {
        return 0;
    }
    lhm_add(m, 1);
    defer_deadlines(m, now_ms - ref);
    return 1;
}

void membership_tick(struct membership *m, uint64_t now_ms)
{
    if (m->left) {
        return;
    }
    ring_refresh(m);
    uint64_t lo, hi;
    membership_suspicion_bounds(m, &lo, &hi);
    if (m->last_tick_ms != 0) {
        /* How late this turn came: after the work that was due (or the previous turn). A
         * turn stall_limit or more late may be a pause (SIGSTOP, a suspended VM) that the
         * others suspected or declared dead: no measure of how long a live member may stay
         * silent here. It counts at once but is held for the longest suspicion timeout: news
         * that this node was suspected or held dead (apply_self) drops it (pause_counts). One
         * later than the minimum suspicion timeout also asks for the whole view. */
        uint64_t due = HY_MAX(membership_next_ms(m), m->last_tick_ms);
        uint64_t late = now_ms > due ? now_ms - due : 0;
        if (late >= stall_limit(m)) {
            /* A stall the process spent mostly not runnable (stopped, blocked: the shell's
             * measure) was its own, not the host's: never held, never learned. Held, a node of
             * 3 SIGSTOPped for 0.5-0.8 s that nobody's news reached in time kept a grace of
             * twice that for the next lag_window_ms, and as a survivor of the next stop it let
             * the partitions elect only after it (bench/partitions.py (f), sessions 26-27). */
            m->last_stall_stopped = stall_was_own(m, now_ms);
            if (m->last_stall_stopped) {
                m->stats.stalls_stopped++;
            } else {
                m->pause_ms = HY_MAX(m->pause_ms, late);
                m->pause_at_ms = now_ms;
            }
            if (late > lo) {
                ask_whole_view(m, now_ms);
            }
            late = 0;
        }
        lag_record(m, late, now_ms);
    }
    if (m->pause_ms != 0 && now_ms >= m->pause_at_ms + hi) {
        if (pause_counts(m)) {
            lag_record(m, m->pause_ms, now_ms); /* nobody held this node dead: a stall */
        }
        m->pause_ms = 0;
    }
    if (!tick_stalled(m, now_ms)) {
        grace_follow(m);
        tick_gossip(m, now_ms);
        tick_relays(m, now_ms);
        tick_phi(m, now_ms);
        tick_probe(m, now_ms);
        tick_suspects(m, now_ms);
    }
    m->last_tick_ms = now_ms;
}

uint64_t membership_next_ms(const struct membership *m)
{
    uint64_t t = m->next_probe_ms;
    if (m->bcast_count > 0) {
        t = HY_MIN(t, m->next_gossip_ms);
    }
    if (m->probing) {
        t = HY_MIN(t, m->probe_indirect_sent ? m->probe_end_at : m->probe_timeout_at);
    }
    for (size_t i = 0; i < m->suspect_count; i++) {
        const struct membership_member *mm = &m->members[m->suspects[i]];
        if (mm->state == MEMBERSHIP_SUSPECT) {
            t = HY_MIN(t, mm->suspect_deadline);
        }
    }
    for (size_t i = 0; i < MEMBERSHIP_RELAYS_MAX; i++) {
        if (m->relays[i].used) {
            t = HY_MIN(t, m->relays[i].deadline_ms);
        }
    }
    return t;
}

/* ---- receiving ----------------------------------------------------------------------------- */

static void on_ping_req(struct membership *m, int from, const struct membership_msg *msg,
                        uint64_t now_ms)
{
    int target = find_idx(m, msg->target);
    if (target <= 0) {
        return;
    }
    for (size_t i = 0; i < MEMBERSHIP_RELAYS_MAX; i++) {
        struct membership_relay *r = &m->relays[i];
        if (!r->used) {
            r->used = 1;
            r->seq = ++m->seq;
            r->origin_seq = msg->seq;
            snprintf(r->origin, sizeof(r->origin), "%s", m->members[from].name);
            /* Lifeguard §4.1: the NACK must reach the requester before its period ends. */
            r->deadline_ms = now_ms + scaled(m, m->cfg.probe_timeout_ms) * 4 / 5;
            send_simple(m, target, MEMBERSHIP_PING, r->seq, m->members[target].name);
            return;
        }
    }
    /* Every relay slot busy: the requester will count this as a missing NACK. */
}

static void on_ack(struct membership *m, const struct membership_msg *msg, uint64_t now_ms)
{
    if (m->probing && msg->seq == m->probe_seq) {
        if (!m->probe_acked && now_ms >= m->probe_graceless_end_at && now_ms < m->probe_end_at) {
            m->stats.grace_saved_probe++; /* without the grace, the probe had failed */
        }
        m->probe_acked = 1;
        return;
    }
    for (size_t i = 0; i < MEMBERSHIP_RELAYS_MAX; i++) {
        struct membership_relay *r = &m->relays[i];
        if (r->used && r->seq == msg->seq) {
            r->used = 0;
            int to = find_idx(m, r->origin);
            if (to > 0) {
                send_simple(m, to, MEMBERSHIP_ACK, r->origin_seq, NULL);
            }
            return;
        }
    }
}

/* GOSSIP messages to `to` carrying the current state of the members idx[0..n), bypassing
 * the piggyback queue (the corrections and the SYNC answer). */
static void send_states(struct membership *m, int to, const uint32_t *idx, size_t n)
{
    for (size_t i = 0; i < n;) {
        struct membership_msg msg = {.type = MEMBERSHIP_GOSSIP};
        while (i < n && msg.update_count < MEMBERSHIP_PIGGYBACK_MAX) {
            make_update(m, idx[i++], NULL, &msg.updates[msg.update_count++]);
        }
        m->stats.msgs_sent++;
        if (m->cbs.send_cb != NULL) {
            m->cbs.send_cb(m->cbs.ctx, m->members[to].name, &msg);
        }
    }
}

static void on_sync(struct membership *m, int from)
{
    uint32_t chunk[MEMBERSHIP_PIGGYBACK_MAX];
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++) {
        chunk[n++] = (uint32_t)i;
        if (n == MEMBERSHIP_PIGGYBACK_MAX || i + 1 == m->count) {
            send_states(m, from, chunk, n);
            n = 0;
        }
    }
}

void membership_receive(struct membership *m, const char *from, const struct membership_msg *msg,
                        uint64_t now_ms)
{
    m->stats.msgs_received++;
    int src = find_idx(m, from);
    if (src < 0) {
        src = insert_member(m, from, 0, now_ms);
        if (src >= 0 && m->cbs.state_cb != NULL) {
            m->cbs.state_cb(m->cbs.ctx, from, -1, MEMBERSHIP_ALIVE, 0);
        }
    }
    if (src <= 0 || m->left) {
        m->stats.msgs_refused++;
        return;
    }
    uint32_t stale[MEMBERSHIP_PIGGYBACK_MAX];
    size_t stale_count = 0;
    for (uint32_t i = 0; i < msg->update_count && i < MEMBERSHIP_PIGGYBACK_MAX; i++) {
        int idx = apply_update(m, &msg->updates[i], now_ms);
        if (idx > 0) {
            stale[stale_count++] = (uint32_t)idx;
        }
    }
    send_states(m, src, stale, stale_count);
    switch (msg->type) {
    case MEMBERSHIP_PING:
        if (strcmp(msg->target, m->members[0].name) != 0) {
            m->stats.msgs_refused++; /* meant for an earlier holder of the address */
            return;
        }
        send_simple(m, src, MEMBERSHIP_ACK, msg->seq, NULL);
        break;
    case MEMBERSHIP_ACK: on_ack(m, msg, now_ms); break;
    case MEMBERSHIP_PING_REQ: on_ping_req(m, src, msg, now_ms); break;
    case MEMBERSHIP_NACK:
        if (m->probing && msg->seq == m->probe_seq) {
            m->probe_nacks++;
        }
        break;
    case MEMBERSHIP_GOSSIP: break; /* its updates were the message */
    case MEMBERSHIP_SYNC: on_sync(m, src); break;
    default: m->stats.msgs_refused++; break;
    }
}

void membership_link_down(struct membership *m, const char *name, uint64_t now_ms)
{
    int idx = find_idx(m, name);
    if (idx > 0 && !m->left) {
        suspect_local(m, (size_t)idx, now_ms, &m->stats.suspect_link);
        struct membership_member *mm = &m->members[idx];
        if (mm->state == MEMBERSHIP_SUSPECT && !mm->suspect_link) {
            /* A broken link is no stall (a starved process keeps its connections): the
             * suspicion times out without the loop-lag grace. */
            mm->suspect_link = 1;
            suspicion_deadline(m, mm);
        }
    }
}

/* ---- the view ------------------------------------------------------------------------------ */

int membership_init(struct membership *m, const struct membership_config *cfg, const char *self,
                    const struct membership_meta *meta, const struct membership_callbacks *cbs,
                    uint64_t seed, uint64_t now_ms)
{
    memset(m, 0, sizeof(*m));
    if (cfg != NULL) {
        m->cfg = *cfg;
    } else {
        membership_config_default(&m->cfg);
    }
    if (membership_config_check(&m->cfg) != HY_OK || self == NULL ||
        !name_ok(self, strlen(self), 0)) {
        return HY_EINVAL;
    }
    if (cbs != NULL) {
        m->cbs = *cbs;
    }
    hy_prng_seed(&m->prng, seed);
    size_t cap = m->cfg.members_max;
    m->index_cap = 1;
    while (m->index_cap < 2 * cap) {
        m->index_cap <<= 1;
    }
    m->members = hy_xcalloc(cap, sizeof(*m->members));
    m->index = hy_xcalloc(m->index_cap, sizeof(*m->index));
    m->order = hy_xcalloc(cap, sizeof(*m->order));
    m->bcast = hy_xcalloc(cap, sizeof(*m->bcast));
    m->watched = hy_xcalloc(cap, sizeof(*m->watched));
    m->suspects = hy_xcalloc(cap, sizeof(*m->suspects));
    int idx = insert_member(m, self, 0, now_ms);
    HY_ASSERT(idx == 0);
    m->members[0].is_self = 1;
    if (meta != NULL) {
        m->members[0].meta = *meta;
    }
    /* The first probe waits a random part of a period, so that nodes started together do
     * not probe in lockstep. */
    m->next_probe_ms = now_ms + hy_prng_below(&m->prng, m->cfg.probe_interval_ms);
    ask_whole_view(m, now_ms);
    return HY_OK;
}

void membership_free(struct membership *m)
{
    if (m->members != NULL) {
        for (size_t i = 0; i < m->count; i++) {
            hy_free(m->members[i].phi);
        }
    }
    hy_free(m->members);
    hy_free(m->index);
    hy_free(m->order);
    hy_free(m->bcast);
    hy_free(m->watched);
    hy_free(m->suspects);
    memset(m, 0, sizeof(*m));
}

int membership_set_config(struct membership *m, const struct membership_config *cfg)
{
    if (membership_config_check(cfg) != HY_OK || cfg->members_max != m->cfg.members_max) {
        return HY_EINVAL;
    }
    if (cfg->ring_k != m->cfg.ring_k) {
        m->ring_stale = 1;
    }
    m->cfg = *cfg;
    return HY_OK;
}

int membership_add(struct membership *m, const char *name, uint64_t now_ms)
{
    if (!name_ok(name, strlen(name), 0)) {
        return HY_EINVAL;
    }
    int idx = find_idx(m, name);
    if (idx >= 0) {
        if (m->members[idx].state == MEMBERSHIP_LEFT) {
            /* Back in the configuration: probed again, and a new life must refute. */
            suspect(m, (size_t)idx, m->members[idx].incarnation, m->members[0].name, now_ms);
        }
        return HY_OK;
    }
    idx = insert_member(m, name, 0, now_ms);
    return idx < 0 ? HY_ENOSPC : HY_OK;
}

void membership_remove(struct membership *m, const char *name, uint64_t now_ms)
{
    int idx = find_idx(m, name);
    if (idx > 0 && m->members[idx].state != MEMBERSHIP_LEFT) {
        set_state(m, (size_t)idx, MEMBERSHIP_LEFT, m->members[idx].incarnation, now_ms);
    }
}

void membership_leave(struct membership *m, uint64_t now_ms)
{
    set_state(m, 0, MEMBERSHIP_LEFT, m->members[0].incarnation + 1, now_ms);
    m->left = 1;
}

void membership_set_meta(struct membership *m, const struct membership_meta *meta, uint64_t now_ms)
{
    m->members[0].meta = *meta;
    set_state(m, 0, m->members[0].state, m->members[0].incarnation + 1, now_ms);
}

const struct membership_member *membership_find(const struct membership *m, const char *name)
{
    int idx = find_idx(m, name);
    return idx < 0 ? NULL : &m->members[idx];
}

/* ---- codec ----------------------------------------------------------------------------------
 * msg:    type u8 · seq u32 · target str · count u8 · count × update
 * update: state u8 · incarnation u64 · name str · SUSPECT: origin str ·
 *         ALIVE: addr str · zone str · version str · load u32
 * str:    length u8 · bytes (printable ASCII, no spaces)
 */

static void put_str(struct hy_buf *out, const char *s)
{
    size_t len = strlen(s);
    HY_ASSERT(len <= 255);
    uint8_t l = (uint8_t)len;
    hy_buf_append(out, &l, 1);
    hy_buf_append(out, s, len);
}

static void put_u32(struct hy_buf *out, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    hy_buf_append(out, b, 4);
}

static void put_u64(struct hy_buf *out, uint64_t v)
{
    put_u32(out, (uint32_t)v);
    put_u32(out, (uint32_t)(v >> 32));
}

void membership_msg_encode(struct hy_buf *out, const struct membership_msg *msg)
{
    HY_ASSERT(msg->type >= MEMBERSHIP_PING && msg->type <= MEMBERSHIP_MSG_TYPE_MAX);
    HY_ASSERT(msg->update_count <= MEMBERSHIP_PIGGYBACK_MAX);
    hy_buf_append(out, &msg->type, 1);
    put_u32(out, msg->seq);
    put_str(out, msg->target);
    uint8_t count = (uint8_t)msg->update_count;
    hy_buf_append(out, &count, 1);
    for (uint32_t i = 0; i < msg->update_count; i++) {
        const struct membership_update *u = &msg->updates[i];
        HY_ASSERT(u->state <= MEMBERSHIP_LEFT);
        hy_buf_append(out, &u->state, 1);
        put_u64(out, u->incarnation);
        put_str(out, u->name);
        if (u->state == MEMBERSHIP_SUSPECT) {
            put_str(out, u->origin);
        } else if (u->state == MEMBERSHIP_ALIVE) {
            put_str(out, u->meta.addr);
            put_str(out, u->meta.zone);
            put_str(out, u->meta.version);
            put_u32(out, u->meta.load);
        }
    }
}

struct reader {
    const uint8_t *p;
    size_t left;
    int bad;
};

static uint64_t get_uint(struct reader *r, size_t bytes)
{
    if (r->bad || r->left < bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++) {
        v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += bytes;
    r->left -= bytes;
    return v;
}

/* A string of at most max bytes into dst (max + 1 bytes), checked like a name. */
static void get_str(struct reader *r, char *dst, size_t max, int may_be_empty)
{
    size_t len = (size_t)get_uint(r, 1);
    dst[0] = '\0';
    if (r->bad || len > max || len > r->left || !name_ok((const char *)r->p, len, may_be_empty)) {
        r->bad = 1;
        return;
    }
    memcpy(dst, r->p, len);
    dst[len] = '\0';
    r->p += len;
    r->left -= len;
}

static void get_update(struct reader *r, struct membership_update *u)
{
    memset(u, 0, sizeof(*u));
    u->state = (uint8_t)get_uint(r, 1);
    u->incarnation = get_uint(r, 8);
    get_str(r, u->name, MEMBERSHIP_NAME_MAX, 0);
    if (u->state > MEMBERSHIP_LEFT || u->incarnation > MEMBERSHIP_INCARNATION_MAX) {
        r->bad = 1;
    } else if (u->state == MEMBERSHIP_SUSPECT) {
        get_str(r, u->origin, MEMBERSHIP_NAME_MAX, 0);
    } else if (u->state == MEMBERSHIP_ALIVE) {
        get_str(r, u->meta.addr, MEMBERSHIP_ADDR_MAX, 1);
        get_str(r, u->meta.zone, MEMBERSHIP_ZONE_MAX, 1);
        get_str(r, u->meta.version, MEMBERSHIP_VERSION_MAX, 1);
        u->meta.load = (uint32_t)get_uint(r, 4);
    }
}

int membership_msg_decode(const uint8_t *buf, size_t len, struct membership_msg *msg)
{
    struct reader r = {.p = buf, .left = len};
    msg->type = (uint8_t)get_uint(&r, 1);
    msg->seq = (uint32_t)get_uint(&r, 4);
    get_str(&r, msg->target, MEMBERSHIP_NAME_MAX, 1);
    msg->update_count = (uint32_t)get_uint(&r, 1);
    if (r.bad || msg->type < MEMBERSHIP_PING || msg->type > MEMBERSHIP_MSG_TYPE_MAX ||
        msg->update_count > MEMBERSHIP_PIGGYBACK_MAX ||
        ((msg->type == MEMBERSHIP_PING || msg->type == MEMBERSHIP_PING_REQ) &&
         msg->target[0] == '\0')) {
        return HY_EPROTO;
    }
    for (uint32_t i = 0; i < msg->update_count && !r.bad; i++) {
        get_update(&r, &msg->updates[i]);
    }
    return r.bad || r.left != 0 ? HY_EPROTO : HY_OK;
}
