/*
 * raft.c - the Raft state machine (see raft.h for the caller's contract).
 *
 * Dissertation references are to Diego Ongaro, "Consensus: Bridging Theory and Practice"
 * (Stanford, 2014). Each rule is quoted briefly above the code that implements it.
 */
#include "raft/raft.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/crc.h"
#include "raft/raft_log.h"

#define INFLIGHT_MAX 64

enum progress_state { PROG_PROBE, PROG_REPLICATE, PROG_SNAPSHOT };

/* What the leader knows about one server of the configuration (itself included). */
struct raft_progress {
    raft_id id;
    uint64_t next_index;
    uint64_t match_index;
    uint32_t state;
    uint64_t inflight[INFLIGHT_MAX]; /* last index of each unacknowledged AppendEntries */
    uint32_t inflight_head;
    uint32_t inflight_count;
    uint64_t last_heard_ms;    /* check-quorum */
    uint64_t busy_heard_ms;    /* its busy notice (RAFT_EV_FOLLOWER_BUSY): check-quorum only */
    uint64_t last_progress_ms; /* stall detection of the pipeline */
    uint64_t ack_seq;          /* highest heartbeat round acknowledged */
    uint64_t ack_sent_ms;      /* our clock when that round was sent (leases) */
    uint64_t probe_sent_ms;    /* PROBE: one AppendEntries outstanding at a time */
    uint64_t snap_index;       /* SNAPSHOT: which snapshot, and the next byte to send */
    uint64_t snap_offset;
    uint64_t snap_sent_ms;
    uint64_t snap_retry_ms;    /* the pacer refused the next chunk: when it may go (0: not) */
    uint64_t snap_wait_ms;     /* since when the next chunk waits (0: none waits), kept across
                                  a newer snapshot restarting the transfer */
    uint64_t snap_started_ms;  /* when the transfer of snap_index began (progress reports) */
    uint32_t snap_fruitless;   /* chunks of a kept snapshot sent since the follower last
                                  acknowledged more of it (transfer_keeps) */
    int snap_yield;            /* its chunks yield at the pacer (raft_snapshot_yield) */
    int heard;                 /* answered at least once since this leader's term began */
    uint64_t catchup_index;    /* §4.2.1 catch-up round: the leader's last index at its start */
    uint64_t catchup_start_ms; /* and when it started */
    uint64_t caught_up_ms;     /* when a round last ended within an election timeout; 0 = never */
    uint64_t quiesce_ack_seq;  /* highest quiesce round it answered as quiesced */
    uint64_t awake_seq;        /* highest round it answered as not quiesced (or woke from) */
    int down;                  /* node-level liveness suspects it (RAFT_EV_LIVENESS) */
    int ahead;                 /* reported a match beyond this leader's log (on_append_resp) */
    uint64_t match_heard_ms;   /* our clock when it last acknowledged holding match_index */
};

struct raft_pending_read {
    uint64_t id;
    uint64_t seq;   /* heartbeat round that must be acknowledged by a majority */
    uint64_t index; /* commit index when the read arrived (§6.4 step 2) */
};

/* ---- small helpers ----------------------------------------------------------------------- */

static uint64_t last_index(const struct raft *r)
{
    return raft_log_last_index(&r->log);
}

static uint64_t last_term(const struct raft *r)
{
    return raft_log_last_term(&r->log);
}

static uint32_t voter_count(const struct raft_membership *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        n += m->servers[i].role == RAFT_VOTER;
    }
    return n;
}

static uint32_t quorum(const struct raft *r)
{
    return voter_count(&r->membership) / 2 + 1;
}

static int membership_find(const struct raft_membership *m, raft_id id)
{
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->servers[i].id == id) {
            return (int)i;
        }
    }
    return -1;
}

int raft_membership_is_voter(const struct raft_membership *m, raft_id id)
{
    int i = membership_find(m, id);
    return i >= 0 && m->servers[i].role == RAFT_VOTER;
}

static int self_is_voter(const struct raft *r)
{
    return raft_membership_is_voter(&r->membership, r->cfg.id);
}

/* Whether this server may grant votes (and pre-votes): its latest configuration lists it (as
 * a voter or a learner: a learner's promotion entry may not have reached it yet, and the
 * candidate may need its vote), or drops it but is not committed yet as far as it knows (a
 * removal a later leader may replace). Raft ids are names hashed, so a member wiped and added
 * back under its old name has the id of an incarnation whose log and votes it does not
 * remember, and a stale copy elsewhere may still count that id as a voter:
 * - with no configuration at all (it joined and holds nothing yet), a vote could elect a second
 *   leader in a term the old incarnation voted in (seed 1032 --partitions 8; docs/simulator.md);
 * - holding only a committed configuration that does not list it (a snapshot from before its
 *   re-add), it voted for a copy removed from the group long ago whose stale configuration
 *   named the old incarnation: campaign seed 5500000544 --nodes 5 --partitions 8 --rf 2
 *   --moved on 203d3fd. n2, moved off partition 0 at map epoch 3, kept {n1 n2 n4}; n4, wiped
 *   and re-added, held n3's snapshot at 4 ({n1 n3 n2}) and voted for it: n2 led term 6 beside
 *   the group's real leader, which had committed to 22.
 * Once its configuration lists it, it holds the entry that re-added it, of a term the log of a
 * copy removed before then does not reach, so that copy's candidacy fails Raft's log check. A
 * member is promoted only once caught up (catchup_done), past that entry, so its vote is there
 * before it is needed. */
static int self_may_vote(const struct raft *r)
{
    return membership_find(&r->membership, r->cfg.id) >= 0 || r->membership_index > r->commit_index;
}

/* Whether this server may stand for election: a voter of its latest configuration, or one
 * that configuration removed (it is not in it at all: a learner stays a learner) while, as
 * far as this server knows, it is not committed yet.
 * §4.2.2 lets a server outside Cnew lead until Cnew commits ("a leader that is removed from
 * the configuration ... manages the cluster without counting itself"), and the election
 * counts Cnew's voters only, so this is as safe as any election. It is needed when this
 * server alone holds Cnew: the others, still on Cold, need its vote and it refuses them
 * (its log is longer), so without it nobody could win again (seed 960001669 --nodes 5
 * --partitions 16 --rf 3: the leader of a move's source removed itself, then lost its
 * majority before Cnew reached anyone; one of Cold's four voters was lost for good, and the
 * partition had no leader after the faults stopped). Once it leads, it commits Cnew with
 * its no-op and hands over (leader_maybe_step_down_removed). */
/* A server whose log is behind the commit index its leader of this term sent does not
 * campaign: its log may end in a configuration the group left long ago. A member removed,
 * wiped and added back under the same id replays the group's history as it catches up; it
 * installed a snapshot (index 66 of 106) taken where a forced configuration made it the
 * only voter, and, its leader cut off, elected itself alone and committed over what a
 * majority had committed (campaign seed 4000030438 --nodes 3 --partitions 4 --pipelined).
 * Such a server cannot win a fair election anyway: a majority of its leader's configuration
 * holds the entries up to that commit index and refuses a candidate without them. */
static int self_may_campaign(const struct raft *r)
{
    if (r->commit_heard_term == r->term && last_index(r) < r->commit_heard) {
        return 0;
    }
    return self_is_voter(r) ||
           (r->membership.count > 0 && membership_find(&r->membership, r->cfg.id) < 0 &&
            r->membership_index > r->commit_index);
}

static struct raft_progress *progress_of(struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->membership.count; i++) {
        if (r->progress[i].id == id) {
            return &r->progress[i];
        }
    }
    return NULL;
}

static uint64_t random_election_timeout(struct raft *r)
{
    return hy_prng_range(&r->prng, r->cfg.election_timeout_min_ms, r->cfg.election_timeout_max_ms);
}

static void reset_election_timer(struct raft *r)
{
    r->election_deadline_ms = r->now_ms + random_election_timeout(r);
    r->deadline_stretched = 0;
}

static struct raft_message *msg_new(struct raft *r, uint32_t type, raft_id to)
{
    if (r->n_msgs == r->cap_msgs) {
        r->cap_msgs = r->cap_msgs ? r->cap_msgs * 2 : 16;
        r->msgs = hy_xrealloc(r->msgs, r->cap_msgs * sizeof(*r->msgs));
    }
    struct raft_message *m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->cfg.id;
    m->to = to;
    m->term = r->term;
    r->stat_msgs_sent++;
    return m;
}

static void read_out(struct raft *r, uint64_t id, uint64_t index, int ok)
{
    if (r->n_out_reads == r->cap_out_reads) {
        r->cap_out_reads = r->cap_out_reads ? r->cap_out_reads * 2 : 16;
        r->out_reads = hy_xrealloc(r->out_reads, r->cap_out_reads * sizeof(*r->out_reads));
    }
    r->out_reads[r->n_out_reads++] = (struct raft_read){.id = id, .index = index, .ok = ok};
}

static void note_written(struct raft *r, uint64_t index)
{
    if (r->append_first == 0 || index < r->append_first) {
        r->append_first = index;
    }
}

static void set_term_vote(struct raft *r, uint64_t term, raft_id vote)
{
    if (term != r->term || vote != r->vote) {
        r->term = term;
        r->vote = vote;
        r->term_vote_dirty = 1;
    }
}

/* ---- membership ------------------------------------------------------------------------ */

size_t raft_membership_encoded_len(const struct raft_membership *m)
{
    return 4 + (size_t)m->count * 9;
}

size_t raft_membership_encode(const struct raft_membership *m, uint8_t *buf)
{
    uint8_t *p = buf;
    hy_store_u32le(p, m->count);
    p += 4;
    for (uint32_t i = 0; i < m->count; i++) {
        hy_store_u64le(p, m->servers[i].id);
        p[8] = m->servers[i].role;
        p += 9;
    }
    return (size_t)(p - buf);
}

int raft_membership_decode(const uint8_t *buf, size_t len, struct raft_membership *m_out)
{
    if (len < 4) {
        return HY_ECORRUPT;
    }
    uint32_t n = hy_load_u32le(buf);
    if (n > RAFT_SERVERS_MAX || len != 4 + (size_t)n * 9) {
        return HY_ECORRUPT;
    }
    memset(m_out, 0, sizeof(*m_out));
    m_out->count = n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = buf + 4 + (size_t)i * 9;
        m_out->servers[i].id = hy_load_u64le(p);
        m_out->servers[i].role = p[8];
        if (p[8] != RAFT_VOTER && p[8] != RAFT_LEARNER) {
            return HY_ECORRUPT;
        }
    }
    return HY_OK;
}

/* §4.2.1: "The algorithm for catching up the new server is split into rounds ... Each round
 * replicates all the log entries present in the leader's log at the start of the round to the
 * new server's log." A round starts at the leader's current end, so its target is an index
 * this leader chose at or after the server joined (never 0: the configuration entry adding it,
 * or this leader's no-op, is in it). */
static void catchup_restart(struct raft *r, struct raft_progress *p)
{
    p->catchup_index = last_index(r);
    p->catchup_start_ms = r->now_ms;
}

/* The pacer's claim (raft_pacer_take) names a follower's progress slot: dropped when the
 * slot no longer waits for a chunk, or names another server. */
static void pacer_forget_slot(struct raft *r, uint32_t i)
{
    raft_pacer_forget(r->cfg.snapshot_pacer, &r->progress[i]);
}

/* Rebuilds the leader's progress array for the current membership, keeping what it knew
 * about servers that stay. */
static void progress_sync(struct raft *r)
{
    struct raft_progress old[RAFT_SERVERS_MAX];
    memcpy(old, r->progress, sizeof(old));
    for (uint32_t i = 0; i < RAFT_SERVERS_MAX; i++) {
        if (i >= r->membership.count || old[i].id != r->membership.servers[i].id) {
            pacer_forget_slot(r, i);
        }
    }
    for (uint32_t i = 0; i < r->membership.count; i++) {
        raft_id id = r->membership.servers[i].id;
        struct raft_progress *p = &r->progress[i];
        int found = 0;
        for (uint32_t j = 0; j < RAFT_SERVERS_MAX; j++) {
            if (old[j].id == id && id != RAFT_NONE) {
                *p = old[j];
                found = 1;
                break;
            }
        }
        if (!found) {
            memset(p, 0, sizeof(*p));
            p->id = id;
            p->next_index = last_index(r) + 1;
            p->last_heard_ms = r->now_ms;
            p->last_progress_ms = r->now_ms;
            catchup_restart(r, p);
        }
    }
    for (uint32_t i = r->membership.count; i < RAFT_SERVERS_MAX; i++) {
        memset(&r->progress[i], 0, sizeof(r->progress[i]));
    }
}

/* §4.1: "a server always uses the latest configuration in its log, regardless of whether the
 * entry is committed." After a truncation the latest one may be older: scan back for it. */
static void membership_recompute(struct raft *r)
{
    for (uint64_t i = last_index(r); i > r->log.snap_index; i--) {
        const struct raft_entry *e = raft_log_get(&r->log, i);
        if (e->type == RAFT_ENTRY_CONFIG) {
            struct raft_membership m;
            HY_ASSERT(raft_membership_decode(e->data, e->len, &m) == HY_OK);
            r->membership = m;
            r->membership_index = i;
            return;
        }
    }
    r->membership = r->snap_membership;
    r->membership_index = r->log.snap_index;
}

/* The configuration in force at `index` (for a snapshot taken there). */
static void membership_at(const struct raft *r, uint64_t index, struct raft_membership *out)
{
    for (uint64_t i = index; i > r->log.snap_index; i--) {
        const struct raft_entry *e = raft_log_get(&r->log, i);
        if (e->type == RAFT_ENTRY_CONFIG) {
            HY_ASSERT(raft_membership_decode(e->data, e->len, out) == HY_OK);
            return;
        }
    }
    *out = r->snap_membership;
}

static void log_append_one(struct raft *r, const struct raft_entry *e)
{
    raft_log_append(&r->log, e);
    note_written(r, last_index(r));
    if (e->type == RAFT_ENTRY_CONFIG) {
        struct raft_membership m;
        if (raft_membership_decode(e->data, e->len, &m) == HY_OK) {
            r->membership = m;
            r->membership_index = last_index(r);
            if (r->role == RAFT_LEADER) {
                progress_sync(r);
            }
        }
    }
}

static void log_truncate(struct raft *r, uint64_t from)
{
    /* Committed entries are never rolled back (§3.5: Leader Completeness). */
    HY_ASSERT(from > r->commit_index);
    raft_log_truncate(&r->log, from);
    note_written(r, from);
    if (r->persisted_index >= from) {
        r->persisted_index = from - 1;
    }
    if (r->membership_index >= from) {
        membership_recompute(r);
    }
}

/* ---- role changes ---------------------------------------------------------------------- */

static void fail_pending_reads(struct raft *r)
{
    for (size_t i = 0; i < r->n_reads; i++) {
        read_out(r, r->reads[i].id, 0, 0);
    }
    r->n_reads = 0;
}

static void become_follower(struct raft *r, uint64_t term, raft_id leader, const char *why)
{
    if (r->role == RAFT_LEADER) {
        for (uint32_t i = 0; i < RAFT_SERVERS_MAX; i++) {
            pacer_forget_slot(r, i); /* its chunks wait no more */
        }
        /* Which group, and why: a higher term met, or the caller's reason. */
        hy_log(r->cfg.log, HY_LOG_INFO, "raft %llu: leader steps down in term %llu (group %u: %s)",
               (unsigned long long)r->cfg.id, (unsigned long long)r->term, r->cfg.group,
               term > r->term ? "a higher term"
               : why != NULL  ? why
                              : "?");
    }
    if (term > r->term) {
        set_term_vote(r, term, RAFT_NONE);
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->quiesced = 0;
    r->idle_ticks = 0;
    r->quiesce_seq = 0;
    r->transfer_target = RAFT_NONE;
    r->step_down_removed = 0;
    r->removed_handover_ms = 0;
    r->unpersisted_since_ms = 0;
    fail_pending_reads(r);
    reset_election_timer(r);
}

static void send_append(struct raft *r, struct raft_progress *p, int heartbeat);
static void broadcast_append(struct raft *r, int heartbeat);

/* §6.4: "Raft handles this by having each leader commit a blank no-op entry into the log at
 * the start of its term." Until it commits, the leader neither serves reads nor knows which
 * earlier entries are committed (§3.6.2). */
static void become_leader(struct raft *r)
{
    hy_log(r->cfg.log, HY_LOG_INFO, "raft %llu: leader of term %llu (group %u)",
           (unsigned long long)r->cfg.id, (unsigned long long)r->term, r->cfg.group);
    r->role = RAFT_LEADER;
    r->leader = r->cfg.id;
    r->leader_since_ms = r->now_ms;
    r->quorum_from_ms = r->now_ms;
    r->deaf_since_ms = r->now_ms;
    r->deaf_excused = 0;
    r->quiesced = 0;
    r->idle_ticks = 0;
    r->quiesce_seq = 0;
    r->transfer_target = RAFT_NONE;
    r->timeout_now_sent = 0;
    r->removed_handover_ms = 0;
    memset(r->progress, 0, sizeof(struct raft_progress) * RAFT_SERVERS_MAX);
    progress_sync(r);
    struct raft_entry noop = {.term = r->term, .type = RAFT_ENTRY_NOOP};
    log_append_one(r, &noop);
    r->term_start_index = last_index(r);
    if (!self_is_voter(r)) {
        r->step_down_removed = last_index(r); /* elected to commit its own removal */
    }
    for (uint32_t i = 0; i < r->membership.count; i++) {
        catchup_restart(r, &r->progress[i]); /* rounds end at this term's no-op at least */
    }
    r->unpersisted_since_ms = r->now_ms;
    r->heartbeat_deadline_ms = r->now_ms + r->cfg.heartbeat_ms;
    broadcast_append(r, 0);
}

/* ---- elections --------------------------------------------------------------------------- */

static void send_vote_requests(struct raft *r, int pre_vote, int transfer)
{
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_server *s = &r->membership.servers[i];
        if (s->id == r->cfg.id || s->role != RAFT_VOTER) {
            continue;
        }
        struct raft_message *m = msg_new(r, RAFT_MSG_VOTE, s->id);
        m->term = pre_vote ? r->term + 1 : r->term;
        m->pre_vote = (uint8_t)pre_vote;
        m->transfer = (uint8_t)transfer;
        m->last_log_index = last_index(r);
        m->last_log_term = last_term(r);
    }
}

static uint32_t count_votes(const struct raft *r, uint32_t bits)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->membership.count; i++) {
        if ((bits >> i & 1u) && r->membership.servers[i].role == RAFT_VOTER) {
            n++;
        }
    }
    return n;
}

static void record_vote(struct raft *r, raft_id from, int granted)
{
    int i = membership_find(&r->membership, from);
    if (i < 0) {
        return;
    }
    if (granted) {
        r->votes_granted |= 1u << i;
    } else {
        r->votes_denied |= 1u << i;
    }
}

/* §3.4: a candidate "increments its current term and transitions to candidate state. It then
 * votes for itself and issues RequestVote RPCs in parallel to each of the other servers". */
static void start_election(struct raft *r, int transfer)
{
    r->stat_elections++;
    r->role = RAFT_CANDIDATE;
    r->leader = RAFT_NONE;
    set_term_vote(r, r->term + 1, r->cfg.id);
    r->votes_granted = r->votes_denied = 0;
    record_vote(r, r->cfg.id, 1);
    reset_election_timer(r);
    if (count_votes(r, r->votes_granted) >= quorum(r)) {
        become_leader(r);
        return;
    }
    send_vote_requests(r, 0, transfer);
}

/* §9.6: "In the Pre-Vote algorithm, a candidate only increments its term if it first learns
 * from a majority of the cluster that they would be willing to grant the candidate their
 * votes". A partitioned server therefore cannot inflate its term and depose a leader. */
static void start_pre_vote(struct raft *r)
{
    r->role = RAFT_PRE_CANDIDATE;
    r->leader = RAFT_NONE;
    r->votes_granted = r->votes_denied = 0;
    record_vote(r, r->cfg.id, 1);
    reset_election_timer(r);
    if (count_votes(r, r->votes_granted) >= quorum(r)) {
        start_election(r, 0);
        return;
    }
    send_vote_requests(r, 1, 0);
}

/* §3.6.1: "The voter denies its vote if its own log is more up-to-date than that of the
 * candidate." */
static int candidate_log_ok(const struct raft *r, const struct raft_message *m)
{
    if (r->cfg.mutation == RAFT_MUT_VOTE_STALE_LOG) {
        return 1;
    }
    if (m->last_log_term != last_term(r)) {
        return m->last_log_term > last_term(r);
    }
    return m->last_log_index >= last_index(r);
}

/* The extra silence tolerated (raft.c "Deafness"): the slack of the last TIMEOUT, while it is
 * recent. A follower whose leader keeps its election timer from firing hears of no new slack,
 * so an old one runs out after three maximum election timeouts rather than keep stretching its
 * stickiness long after the machine calmed down. */
static uint64_t deaf_slack(const struct raft *r)
{
    return r->now_ms <= r->deaf_slack_at_ms + 3ull * r->cfg.election_timeout_max_ms
               ? r->deaf_slack_ms
               : 0;
}

/* §4.2.3: "if a server receives a RequestVote request within the minimum election timeout of
 * hearing from a current leader, it does not update its term or grant its vote." A leader
 * counts as hearing from itself. Leadership transfer overrides this (§3.10). */
static int leader_is_sticky(const struct raft *r)
{
    return r->role == RAFT_LEADER || r->now_ms < r->stickiness_until_ms + deaf_slack(r) ||
           r->now_ms < r->wake_sticky_until_ms;
}

static void reply_vote(struct raft *r, const struct raft_message *m, uint64_t term, int granted)
{
    struct raft_message *out = msg_new(r, RAFT_MSG_VOTE_RESP, m->from);
    out->term = term;
    out->pre_vote = m->pre_vote;
    out->granted = (uint8_t)granted;
}

static void on_vote(struct raft *r, const struct raft_message *m)
{
    if (m->term < r->term) {
        reply_vote(r, m, r->term, 0);
        return;
    }
    if (!m->transfer && leader_is_sticky(r) && m->term > r->term) {
        if (m->pre_vote) {
            reply_vote(r, m, r->term, 0);
        }
        return;
    }
    if (!self_may_vote(r)) {
        if (m->term > r->term && !m->pre_vote) {
            become_follower(r, m->term, RAFT_NONE, NULL);
        }
        reply_vote(r, m, r->term, 0);
        return;
    }
    if (m->pre_vote) {
        /* A pre-vote changes nothing here: no term, no vote, no timer. */
        int grant = m->term > r->term && candidate_log_ok(r, m);
        reply_vote(r, m, grant ? m->term : r->term, grant);
        return;
    }
    if (m->term > r->term) {
        become_follower(r, m->term, RAFT_NONE, NULL);
    }
    int grant = (r->vote == RAFT_NONE || r->vote == m->from) && candidate_log_ok(r, m) &&
                r->role == RAFT_FOLLOWER;
    if (grant) {
        set_term_vote(r, r->term, m->from);
        reset_election_timer(r);
        hy_log(r->cfg.log, HY_LOG_DEBUG, "raft %llu: votes for %llu in term %llu (last %llu/%llu)",
               (unsigned long long)r->cfg.id, (unsigned long long)m->from,
               (unsigned long long)r->term, (unsigned long long)last_index(r),
               (unsigned long long)last_term(r));
    }
    reply_vote(r, m, r->term, grant);
}

static void on_vote_resp(struct raft *r, const struct raft_message *m)
{
    if (m->pre_vote) {
        if (r->role != RAFT_PRE_CANDIDATE || (m->granted && m->term != r->term + 1)) {
            return;
        }
        record_vote(r, m->from, m->granted);
        if (count_votes(r, r->votes_granted) >= quorum(r)) {
            start_election(r, 0);
        } else if (count_votes(r, r->votes_denied) >= quorum(r)) {
            become_follower(r, r->term, RAFT_NONE, NULL);
        }
        return;
    }
    if (r->role != RAFT_CANDIDATE || m->term != r->term) {
        return;
    }
    record_vote(r, m->from, m->granted);
    if (count_votes(r, r->votes_granted) >= quorum(r)) {
        become_leader(r);
    } else if (count_votes(r, r->votes_denied) >= quorum(r)) {
        become_follower(r, r->term, RAFT_NONE, NULL);
    }
}

/* ---- replication: leader side ------------------------------------------------------------ */

static void inflight_clear(struct raft_progress *p)
{
    p->inflight_head = 0;
    p->inflight_count = 0;
}

static void inflight_free_upto(struct raft_progress *p, uint64_t index)
{
    while (p->inflight_count > 0 && p->inflight[p->inflight_head] <= index) {
        p->inflight_head = (p->inflight_head + 1) % INFLIGHT_MAX;
        p->inflight_count--;
    }
}

static uint32_t inflight_limit(const struct raft *r)
{
    uint32_t n = r->cfg.inflight_max ? r->cfg.inflight_max : 1;
    return n > INFLIGHT_MAX ? INFLIGHT_MAX : n;
}

/* Anything a leader sends but its quiesce round's heartbeats (entries, a snapshot, another
 * round's heartbeats) wakes the followers that quiesced on that round, so their answers to it
 * no longer count: the leader must ask again. Quiescing on them left those followers awake
 * with nothing more to hear, and they campaigned an election timeout later (simulator seeds
 * 78000034, 78000330 and 78000001 --nodes 5 --partitions 16 --rf 3: leaders changed all
 * through the quiet time after an entry or a client's read came between the round and the
 * leader's next heartbeat interval). */
static void quiesce_round_void(struct raft *r)
{
    r->idle_ticks = 0;
    r->quiesce_seq = 0;
}

/* Stamps the heartbeat round on every message to a follower: the reply echoes it, which is
 * how ReadIndex (§6.4) and leases (§6.4.1) learn that a majority still follows us. */
static struct raft_message *leader_msg(struct raft *r, uint32_t type, raft_id to)
{
    struct raft_message *m = msg_new(r, type, to);
    m->seq = r->read_seq;
    m->sent_ms = r->now_ms;
    return m;
}

/* Entries [from, ...] fitting one message; returns how many. §10.2.2: "Batching is very
 * natural to implement in Raft, since AppendEntries supports sending multiple consecutive
 * entries in one RPC." */
static uint32_t batch_count(const struct raft *r, uint64_t from)
{
    uint32_t max = r->cfg.batch_entries_max ? r->cfg.batch_entries_max : 1;
    uint64_t bytes = 0;
    uint32_t n = 0;
    for (uint64_t i = from; i <= last_index(r) && n < max; i++) {
        const struct raft_entry *e = raft_log_get(&r->log, i);
        if (n > 0 && bytes + e->len > r->cfg.batch_bytes_max) {
            break;
        }
        bytes += e->len;
        n++;
    }
    return n;
}

/* One AppendEntries from p->next_index. The entries pointer is resolved when the update is
 * built (the log may still grow during this step). */
static uint64_t send_entries(struct raft *r, struct raft_progress *p)
{
    uint64_t prev = p->next_index - 1;
    if (!p->down) {
        quiesce_round_void(r); /* one reported down counts for nothing in the round */
    }
    struct raft_message *m = leader_msg(r, RAFT_MSG_APPEND, p->id);
    m->prev_index = prev;
    m->prev_term = raft_log_term(&r->log, prev);
    m->n_entries = batch_count(r, p->next_index);
    m->commit = r->commit_index;
    return prev + m->n_entries;
}

/* A heartbeat names the follower's known match point, which can never be rejected, and
 * carries the commit index only that far. */
static void send_heartbeat(struct raft *r, struct raft_progress *p)
{
    struct raft_message *m = leader_msg(r, RAFT_MSG_APPEND, p->id);
    /* The follower's match may lie below this leader's log: a snapshot compacted it while the
     * follower's acknowledgements were in flight, and the term there is not known any more.
     * Naming term 0 for it read as a conflict with entries the follower committed (refused
     * and logged as a forced quorum's, at every bench-move start with 16 partitions). Such a
     * heartbeat names no entry (index 0, which every log holds) and so commits nothing. */
    if (p->match_index >= r->log.snap_index) {
        m->prev_index = p->match_index;
        m->prev_term = raft_log_term(&r->log, p->match_index);
        m->commit = HY_MIN(r->commit_index, p->match_index);
    }
    m->quiesce = (uint8_t)(r->quiesce_seq != 0 && r->quiesce_seq == r->read_seq);
}

/* A waiting chunk keeps its claim on the pacer this long past the moment it was told to come
 * back: its group's timer may fire a little late (a loop turn, a tick). A sender that does not
 * come back (its leader stepped down) holds the others back no longer than this. */
#define PACER_CLAIM_SLACK_MS 100

/* Credit is kept in byte-milliseconds, so that a refill after any interval adds exactly
 * interval * rate whatever the rate. A chunk goes whenever nothing is owed, whatever its size,
 * and leaves its bytes owed (struct raft_pacer); of the chunks that wait, the one waiting
 * longest goes first. */
uint64_t raft_pacer_take(struct raft_pacer *pc, uint64_t now_ms, uint64_t len, const void *who,
                         uint64_t since)
{
    if (pc == NULL || pc->rate == 0 || len == 0) {
        return 0;
    }
    int64_t cap = (int64_t)(pc->rate / 10) * 1000;
    if (pc->last_ms == 0) {
        pc->credit = cap; /* a first transfer starts at once */
        pc->last_ms = now_ms;
    } else if (now_ms > pc->last_ms) {
        /* The rate may have come down since the credit was earned. */
        pc->credit = HY_MIN(pc->credit, cap);
        uint64_t elapsed = now_ms - pc->last_ms;
        uint64_t room = (uint64_t)(cap - pc->credit);
        /* Only an interval shorter than the time to fill the bucket is multiplied by the rate:
         * no overflow after a long idle time at a high rate. */
        if (elapsed > room / pc->rate) {
            pc->credit = cap;
        } else {
            pc->credit += (int64_t)(elapsed * pc->rate);
        }
        pc->last_ms = now_ms;
    }
    int yield = since == RAFT_PACER_YIELD;
    int claimed = pc->claim != NULL && now_ms <= pc->claim_until && pc->claim != who &&
                  pc->claim_since <= since;
    /* A yielding chunk also waits while a chunk that does not yield has been refused and is
     * still to come back: the claim passes on only as chunks are refused, so the moment a claim
     * lapsed (its holder no longer waited), a yielding chunk stepping first took the credit
     * from the chunks told to come back then (whole-node simulator seed 3212000067 --nodes 5
     * --partitions 8 --rf 3 --replace-after 1500 --snapshot-bandwidth 512: 4.6 KB, 9 s of the
     * leader's budget, went to a member the map was moving off, down at the time, while a kept
     * replica's snapshot waited; it came too late for the end). */
    int firm = yield && now_ms <= pc->firm_until;
    if (pc->credit >= 0 && !claimed && !firm) {
        pc->credit -= (int64_t)(len * 1000);
        if (pc->claim == who) {
            pc->claim = NULL;
        }
        return 0;
    }
    uint64_t wait =
        pc->credit >= 0 ? 1 : HY_MAX(((uint64_t)(-pc->credit) + pc->rate - 1) / pc->rate, 1u);
    if (firm) {
        wait = HY_MAX(wait, pc->firm_until - now_ms + 1);
    }
    if (claimed) {
        /* Behind the claim: after the time it has to come back for it. */
        wait = HY_MAX(wait, pc->claim_until - now_ms + 1);
    } else {
        pc->claim = who;
        pc->claim_since = since;
        pc->claim_until = now_ms + wait + PACER_CLAIM_SLACK_MS;
    }
    if (!yield) {
        pc->firm_until = HY_MAX(pc->firm_until, now_ms + wait + PACER_CLAIM_SLACK_MS);
    }
    return wait;
}

void raft_pacer_forget(struct raft_pacer *pc, const void *who)
{
    if (pc != NULL && pc->claim == who) {
        pc->claim = NULL;
    }
}

/* ---- A transfer keeps its snapshot ----------------------------------------------------------
 *
 * A transfer restarted from byte 0 by every newer snapshot never ends when the leader snapshots
 * more often than the transfer takes: a partition's leader busy enough to snapshot every few
 * seconds, a snapshot of several chunks, rebalance-bandwidth low (whole-node simulator seed 23
 * --snapshot-bandwidth 512 --snapshot-chunk 512: 4 to 10 KB at 512 B/s, the leader snapshotting
 * every 5 s; the follower restarted at 2,560 of 3,975 bytes, then at 1,536 of 7,791, 1,536 of
 * 9,230, ... and ended 870 entries behind). So a leader keeps the snapshot a transfer under way
 * sends (one older snapshot: kept_*) and the log entries after it, and the transfer goes on with
 * it to the end; the follower then catches up from the log. It gives up, and the transfer starts
 * again from the latest snapshot, when the log pinned behind the kept snapshot would hold more
 * than RAFT_KEPT_LOG_FACTOR times its size (and RAFT_KEPT_LOG_BYTES_MIN), or when
 * RAFT_KEPT_FRUITLESS_MAX chunks of it in a row brought no acknowledgement (its file gone from
 * the caller's disk: the streamer drops such chunks). */
#define RAFT_KEPT_LOG_FACTOR    4
#define RAFT_KEPT_LOG_BYTES_MIN (4u << 20)
#define RAFT_KEPT_FRUITLESS_MAX 3

/* 1 when, as leader, some follower's transfer of snapshot `index` is under way (`begun`: it
 * acknowledged bytes of it). */
static int transfers_of(const struct raft *r, uint64_t index, int begun)
{
    if (r->role != RAFT_LEADER || index == 0) {
        return 0;
    }
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *p = &r->progress[i];
        if (p->id != r->cfg.id && p->state == PROG_SNAPSHOT && p->snap_index == index &&
            (!begun || p->snap_offset > 0)) {
            return 1;
        }
    }
    return 0;
}

static void kept_free(struct raft *r)
{
    hy_free(r->kept_data);
    r->kept_data = NULL;
    r->kept_index = 0;
    r->kept_term = 0;
    r->kept_len = 0;
    r->kept_crc = 0;
}

/* A newer snapshot replaces the latest one: the latest is kept when a transfer of it is under
 * way and the kept one serves none (one kept snapshot at most; the other transfers restart). */
static void kept_take_latest(struct raft *r)
{
    if (!transfers_of(r, r->snapshot_index, 1) || transfers_of(r, r->kept_index, 0)) {
        return;
    }
    kept_free(r);
    r->kept_index = r->snapshot_index;
    r->kept_term = r->snapshot_term;
    r->kept_data = r->snap_data; /* moved */
    r->snap_data = NULL;
    r->kept_len = r->snap_len;
    r->kept_crc = r->snap_crc_index == r->snapshot_index ? r->snap_crc : 0;
}

/* Whether p's transfer goes on with the kept snapshot: it began with it, the log still holds
 * the entries after it, and its chunks are still acknowledged. */
static int transfer_keeps(const struct raft *r, const struct raft_progress *p)
{
    return p->snap_index != 0 && p->snap_index == r->kept_index &&
           p->snap_index != r->snapshot_index && p->snap_index >= r->log.snap_index &&
           p->snap_fruitless < RAFT_KEPT_FRUITLESS_MAX;
}

/* The base a newer snapshot at `index` compacts the log to (`base` without a kept snapshot):
 * no further than the kept snapshot while a transfer of it is under way and the log it pins
 * stays within bounds; past them, the kept snapshot goes. */
static uint64_t kept_pin(struct raft *r, uint64_t base)
{
    if (r->kept_index == 0 || r->kept_index >= base) {
        return base;
    }
    uint64_t bound =
        HY_MAX((uint64_t)RAFT_KEPT_LOG_FACTOR * r->kept_len, (uint64_t)RAFT_KEPT_LOG_BYTES_MIN);
    if (!transfers_of(r, r->kept_index, 0) || r->kept_index < r->log.snap_index ||
        r->log.data_bytes > bound) {
        kept_free(r);
        return base;
    }
    return r->kept_index;
}

/* Whether p's snapshot chunks yield at the pacer (raft_snapshot_yield): marked by the caller,
 * and the group has a majority without it; or a learner, while the group's majority waits for
 * a voter's snapshot. A voter the majority needs does not yield, even one
 * the caller moves off: until it holds the snapshot the group commits nothing (whole-node
 * simulator seed 3312000198 --nodes 5 --partitions 8 --rf 3 --replace-after 1500
 * --snapshot-bandwidth 512: partition 5 on n1 n2 n3, n1 removed by the operator and n2 back
 * from a crash needing a snapshot, both moved off by the map; n2's 1.1 KB waited 10.6 s
 * behind two moves' snapshots to the same node, and the partition served no write meanwhile).
 * Ready voters: this leader if it votes, and the followers that vote, are not sent a snapshot
 * and were heard within an election timeout (quiesced: are not seen down, as
 * raft_follower_info counts contact); a voter that went silent (there: n1, cut off from the
 * others once removed from the cluster) takes no entries. */
static int snapshot_yields(const struct raft *r, const struct raft_progress *p)
{
    uint32_t ready = self_is_voter(r);
    int voter_waits = 0; /* a voter other than p is sent a snapshot */
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *q = &r->progress[i];
        int voter = r->membership.servers[i].role == RAFT_VOTER;
        int heard =
            r->quiesced ? !q->down : q->last_heard_ms + r->cfg.election_timeout_max_ms > r->now_ms;
        ready += q != p && q->id != r->cfg.id && voter && q->state != PROG_SNAPSHOT && heard;
        voter_waits |= q != p && voter && q->state == PROG_SNAPSHOT;
    }
    if (ready < quorum(r)) {
        /* The group commits nothing until a voter holds its snapshot: a learner's chunks (a
         * move's target) give way to that voter's, marked or not. Sharing the pacer with it
         * halved the voter's rate (whole-node simulator seed 4100015180 --nodes 5 --partitions 8
         * --rf 3 --replace-after 1500 --snapshot-bandwidth 512 --snapshot-chunk 512, on
         * d76bce8: partition 2's voters n2, leading, n3, gone silent, and n5, sent 3 KB at
         * 512 B/s from 19.5 s, alternating chunk by chunk with the move's learner n1; the
         * partition committed nothing for 13 s instead of 6). */
        return voter_waits && !raft_membership_is_voter(&r->membership, p->id);
    }
    return p->snap_yield;
}

/* §5.1 / Figure 5.3: the leader sends the snapshot "in chunks" to a follower whose next entry
 * was already discarded; chunks go one at a time, each acknowledged before the next. A chunk
 * the pacer refuses waits for p->snap_retry_ms (leader_tick); a heartbeat (keepalive) then
 * sends an empty chunk at the same offset, which the follower answers with the bytes it holds:
 * it keeps hearing its leader, and the leader keeps hearing it (check-quorum). */
static void send_snapshot_chunk(struct raft *r, struct raft_progress *p, int keepalive)
{
    p->snap_retry_ms = 0;
    int keep = transfer_keeps(r, p);
    /* The follower needs entries raft_release_applied freed and our snapshot predates them:
     * after installing it the follower would need them still. Ask for a newer one and send
     * nothing until it comes (snap_sent_ms stays 0: on_snapshot_taken sends it at once). */
    if (!keep && r->snapshot_index < r->log.snap_index) {
        r->snapshot_needed = 1;
        p->snap_sent_ms = 0;
        return;
    }
    /* The first message of a transfer carries no data: it asks the follower how much of this
     * snapshot it holds already, and the transfer goes on from there (on_snapshot_resp). A
     * follower keeps what it received of a snapshot across leaders (on_snapshot), so a leader
     * elected again, or another one holding the same snapshot, resumes a transfer cut short
     * by the change of leader instead of sending it all again: the same index and term are
     * the same committed state, and the size must match too. Another leader's encoding of it
     * may differ in its bytes (a store snapshot lists keys in its hash table's order,
     * docs/disk-format.md "Store snapshot"): the checksum each chunk names tells, and the
     * follower then starts that transfer again from 0 (on_snapshot). */
    int probe = 0;
    if (!keep && p->snap_index != r->snapshot_index) {
        p->snap_index = r->snapshot_index;
        p->snap_offset = 0;
        p->snap_started_ms = r->now_ms;
        p->snap_fruitless = 0;
        probe = 1;
    }
    size_t total = keep ? r->kept_len : r->snap_len;
    const uint8_t *data = keep ? r->kept_data : r->snap_data;
    uint32_t chunk = r->cfg.snapshot_chunk_bytes ? r->cfg.snapshot_chunk_bytes : 65536;
    uint64_t len = HY_MIN((uint64_t)chunk, total - HY_MIN(p->snap_offset, total));
    /* The follower waits for its next chunk since its first try, and keeps that place at the
     * pacer (the longest waiting goes first) when a newer snapshot restarts the transfer: it
     * still waits for the same catch-up. Counting afresh from each restart sent a transfer
     * whose leader snapshots more often than the pacer lets its turn come to the back of the
     * queue again and again (whole-node seed 296 --nodes 5 --partitions 16 --rf 3
     * --replace-after 1500 --snapshot-bandwidth 512: five groups' snapshots for one new
     * member queued at 512 B/s, their leaders snapshotting every 2 to 3 s; the transfer
     * waiting since 16 s went at 41 s, and a move's learner queued last stayed empty 20 s;
     * test_new_snapshot_keeps_its_transfers_place_at_the_pacer). A new transfer starts its
     * wait afresh (send_append). */
    if (p->snap_wait_ms == 0) {
        p->snap_wait_ms = r->now_ms;
    }
    /* A server the caller is moving off waits behind the replicas the group keeps (whole-node
     * simulator seeds 2512000181 and 2479000111 --nodes 5 --partitions 8 --rf 3 --replace-after
     * 1500 --snapshot-bandwidth 512: a leader spent 8 to 11 s of its budget on a snapshot for a
     * member the operator had removed, a voter still and waiting longest, while the snapshot of
     * the move's target, which the removal waited for, waited behind it). */
    uint64_t since = snapshot_yields(r, p) ? RAFT_PACER_YIELD : p->snap_wait_ms;
    /* A follower the node sees down gets no bytes: they would be lost, and at a low rate a
     * chunk is seconds of the node's budget (whole-node simulator seed 3212000067: 3.6 KB, 7 s
     * at 512 B/s, went to n1 down). Keepalives go on; its answer says it is up (on_receive) and
     * brings the chunk, which kept its place at the pacer meanwhile. */
    int held = p->down && !probe;
    uint64_t wait =
        probe || held ? 0 : raft_pacer_take(r->cfg.snapshot_pacer, r->now_ms, len, p, since);
    if (wait != 0) {
        p->snap_retry_ms = r->now_ms + wait;
    } else if (!probe && !held) {
        p->snap_wait_ms = 0; /* the chunk goes: the next one waits from its own first try */
    }
    if ((wait || held) && !keepalive) {
        return;
    }
    if (!p->down) {
        quiesce_round_void(r);
    }
    struct raft_message *m = leader_msg(r, RAFT_MSG_SNAPSHOT, p->id);
    m->snap_index = p->snap_index;
    m->snap_term = keep ? r->kept_term : r->snapshot_term;
    membership_at(r, p->snap_index, &m->snap_membership);
    m->commit = r->commit_index; /* note_commit_heard */
    m->total = total;
    m->offset = p->snap_offset;
    m->len = wait || probe || held ? 0 : (uint32_t)len;
    m->data = data && m->len ? data + p->snap_offset : NULL;
    /* A snapshot on the caller's disk gets its checksum from its file's header when the
     * caller fills the chunk (snap_stream_fill); one held here is summed once. */
    if (keep && data != NULL && m->len > 0) {
        if (r->kept_crc == 0) {
            r->kept_crc = hy_crc32c(0, data, total);
        }
        m->snap_crc = r->kept_crc;
    } else if (data != NULL && m->len > 0) {
        if (r->snap_crc_index != r->snapshot_index) {
            r->snap_crc = hy_crc32c(0, r->snap_data, r->snap_len);
            r->snap_crc_index = r->snapshot_index;
        }
        m->snap_crc = r->snap_crc;
    }
    p->snap_fruitless += keep && m->len > 0;
    p->snap_sent_ms = r->now_ms;
}

static void send_append(struct raft *r, struct raft_progress *p, int heartbeat)
{
    if (p->id == r->cfg.id) {
        return;
    }
    if (p->state != PROG_SNAPSHOT && p->next_index <= r->log.snap_index) {
        p->state = PROG_SNAPSHOT;
        p->snap_index = 0;
        p->snap_wait_ms = 0;
        inflight_clear(p);
    }
    if (p->state == PROG_SNAPSHOT) {
        if (heartbeat || p->snap_sent_ms == 0) {
            send_snapshot_chunk(r, p, heartbeat);
        }
        return;
    }
    if (p->state == PROG_PROBE) {
        if (heartbeat || p->probe_sent_ms == 0) {
            send_entries(r, p);
            p->probe_sent_ms = r->now_ms;
        }
        return;
    }
    /* §10.2.2 pipelining: "the leader treats the next index for each follower
     * optimistically; it updates the next index to send immediately after sending the
     * previous entry, rather than waiting for the previous entry's acknowledgment." The
     * in-flight window bounds how far ahead it runs. */
    int sent = 0;
    while (p->next_index <= last_index(r) && p->inflight_count < inflight_limit(r)) {
        uint64_t end = send_entries(r, p);
        p->inflight[(p->inflight_head + p->inflight_count) % INFLIGHT_MAX] = end;
        p->inflight_count++;
        p->next_index = end + 1;
        sent = 1;
    }
    if (heartbeat && !sent) {
        send_heartbeat(r, p);
    }
}

static void broadcast_append(struct raft *r, int heartbeat)
{
    for (uint32_t i = 0; i < r->membership.count; i++) {
        send_append(r, &r->progress[i], heartbeat);
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The largest value a majority of voters has reached; the leader's own value is `self`. */
static uint64_t quorum_value(const struct raft *r, size_t field_offset, uint64_t self)
{
    uint64_t vals[RAFT_SERVERS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->membership.count; i++) {
        if (r->membership.servers[i].role != RAFT_VOTER) {
            continue;
        }
        const struct raft_progress *p = &r->progress[i];
        uint64_t v;
        memcpy(&v, (const uint8_t *)p + field_offset, sizeof(v));
        vals[n++] = p->id == r->cfg.id ? self : v;
    }
    if (n == 0) {
        return 0;
    }
    qsort(vals, n, sizeof(vals[0]), cmp_desc);
    return vals[quorum(r) - 1];
}

static void release_reads(struct raft *r);

static void leader_maybe_step_down_removed(struct raft *r)
{
    /* §4.2.2: a leader removed from the configuration "steps down once the Cnew entry is
     * committed", managing the cluster until then without counting itself. Stepping down
     * alone left the others an election timeout without a leader (the 150-300 ms pause at
     * the end of every move whose source led its partition). §3.10 names this case for
     * leadership transfer: the leader hands over to a voter holding its whole log with
     * TimeoutNow, and steps down as it does. Until one holds it (entries proposed since Cnew
     * may still be on their way), it goes on leading Cnew, which is safe as before the
     * commit, for at most a minimum election timeout; then it steps down as before. */
    if (!r->step_down_removed || r->commit_index < r->step_down_removed) {
        return;
    }
    if (r->removed_handover_ms == 0) {
        r->removed_handover_ms = r->now_ms + r->cfg.election_timeout_min_ms;
    }
    const struct raft_progress *best = NULL;
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *p = &r->progress[i];
        if (p->id != r->cfg.id && r->membership.servers[i].role == RAFT_VOTER &&
            p->match_index == last_index(r) &&
            (best == NULL || p->last_heard_ms > best->last_heard_ms)) {
            best = p;
        }
    }
    if (best != NULL) {
        leader_msg(r, RAFT_MSG_TIMEOUT_NOW, best->id);
        r->timeout_now_sent = 1;
        become_follower(r, r->term, RAFT_NONE, "removed from the configuration; handed over");
    } else if (r->now_ms >= r->removed_handover_ms) {
        become_follower(r, r->term, RAFT_NONE,
                        "removed from the configuration; no voter caught up to hand over to");
    }
}

/* §3.6.2: "Raft never commits log entries from previous terms by counting replicas. Only log
 * entries from the leader's current term are committed by counting replicas". */
static void leader_maybe_commit(struct raft *r)
{
    uint64_t q = quorum_value(r, offsetof(struct raft_progress, match_index), r->persisted_index);
    if (q <= r->commit_index) {
        return;
    }
    if (raft_log_term(&r->log, q) != r->term && r->cfg.mutation != RAFT_MUT_COMMIT_OLD_TERM) {
        return;
    }
    r->commit_index = q;
    leader_maybe_step_down_removed(r);
    if (r->role == RAFT_LEADER) {
        release_reads(r);
    }
}

static int lease_allowed(const struct raft *r)
{
    /* The lease must end before any follower's minimum election timeout can elapse on its own
     * clock: lease * (1 + drift) < election_timeout_min. Beyond the drift bound: no lease. */
    uint64_t lease = r->cfg.lease_ms;
    uint64_t stretched = lease * (1000000ull + r->cfg.clock_drift_ppm) / 1000000ull;
    return lease > 0 && stretched < r->cfg.election_timeout_min_ms;
}

int raft_quiesced(const struct raft *r)
{
    return r->quiesced;
}

int raft_msg_may_precede_persist(const struct raft_message *m)
{
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT ||
           m->type == RAFT_MSG_TIMEOUT_NOW;
}

int raft_lease_enabled(const struct raft *r)
{
    return lease_allowed(r);
}

/* §6.4.1 (Figure 6.3): once its heartbeats are acknowledged by a majority, the leader "would
 * extend its lease to start + election timeout / clock drift bound, since the followers
 * shouldn't time out before then". "The lease approach assumes a bound on clock drift across
 * servers." */
static int lease_valid(const struct raft *r)
{
    /* A TimeoutNow lets its target win votes that ignore our lease (even arriving late, after
     * an aborted transfer): no lease reads for the rest of the term once one was sent. */
    if (!lease_allowed(r) || r->transfer_target != RAFT_NONE || r->timeout_now_sent) {
        return 0;
    }
    uint64_t start = quorum_value(r, offsetof(struct raft_progress, ack_sent_ms), r->now_ms);
    return start > 0 && r->now_ms < start + r->cfg.lease_ms;
}

static int noop_committed(const struct raft *r)
{
    return r->commit_index >= r->term_start_index || r->cfg.mutation == RAFT_MUT_READ_BEFORE_NOOP;
}

/* §6.4 ReadIndex: "If the leader has not yet marked an entry from its current term committed,
 * it waits until it has done so" ... "It issues a new round of heartbeats and waits for their
 * acknowledgments from a majority of the cluster." */
static void release_reads(struct raft *r)
{
    if (r->n_reads == 0 || !noop_committed(r)) {
        return;
    }
    uint64_t acked = quorum_value(r, offsetof(struct raft_progress, ack_seq), r->read_seq);
    int lease = lease_valid(r);
    size_t keep = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        struct raft_pending_read *rd = &r->reads[i];
        if (rd->seq <= acked || lease || r->cfg.mutation == RAFT_MUT_READ_NO_HEARTBEAT) {
            uint64_t index = rd->index;
            if (r->cfg.mutation != RAFT_MUT_READ_BEFORE_NOOP) {
                index = HY_MAX(index, r->term_start_index);
            }
            read_out(r, rd->id, index, 1);
        } else {
            r->reads[keep++] = *rd;
        }
    }
    r->n_reads = keep;
}

static void transfer_maybe_fire(struct raft *r, struct raft_progress *p)
{
    /* §3.10: "The prior leader fully updates the target server's log to match its own" and
     * then "sends a TimeoutNow request to the target server." */
    if (r->transfer_target == p->id && p->match_index == last_index(r)) {
        leader_msg(r, RAFT_MSG_TIMEOUT_NOW, p->id);
        r->timeout_now_sent = 1;
    }
}

static void note_ack(struct raft *r, struct raft_progress *p, const struct raft_message *m)
{
    p->last_heard_ms = r->now_ms;
    p->heard = 1;
    if (m->seq > p->ack_seq) {
        p->ack_seq = m->seq;
    }
    if (m->sent_ms > p->ack_sent_ms) {
        p->ack_sent_ms = m->sent_ms;
    }
}

/* §4.2.1: "If the last round lasts less than an election timeout, then the leader adds the
 * new server to the cluster, under the assumption that there are not enough unreplicated
 * entries to create a significant availability gap." Called on every acknowledgement: a round
 * ends once the server holds its target; the next one starts at the leader's end of log then,
 * so a server that keeps up ends a round with each acknowledgement and stays promotable, and
 * one that stops answering or falls behind does not. Unlike the dissertation, rounds are not
 * counted and the change is never aborted: the reconciler keeps the server a learner and asks
 * again (the operator removes a member that never comes). */
static void catchup_note(struct raft *r, struct raft_progress *p)
{
    if (p->catchup_index == 0 || p->match_index < p->catchup_index) {
        return;
    }
    if (r->now_ms - p->catchup_start_ms <= r->cfg.election_timeout_max_ms) {
        p->caught_up_ms = r->now_ms;
    }
    catchup_restart(r, p);
}

/* Promotable now: it ended a quick round within the last election timeout, which bounds in
 * time how far it can lag, and holds at least that round's target, which is never 0. */
static int catchup_done(const struct raft *r, const struct raft_progress *p)
{
    return p->caught_up_ms != 0 && r->now_ms - p->caught_up_ms <= r->cfg.election_timeout_max_ms;
}

/* Fast back-off (§3.5; paper §5.3): "when rejecting an AppendEntries request, the follower
 * can include the term of the conflicting entry and the first index it stores for that term",
 * so the leader skips a whole term per round trip. */
static uint64_t backoff_next(const struct raft *r, const struct raft_message *m)
{
    if (m->hint_term == 0) {
        return m->index;
    }
    for (uint64_t i = HY_MIN(m->index + 64 * 1024, last_index(r)); i > r->log.snap_index; i--) {
        uint64_t t = raft_log_term(&r->log, i);
        if (t == m->hint_term) {
            return i + 1;
        }
        if (t < m->hint_term) {
            break;
        }
    }
    return m->index;
}

/* A follower whose AppendEntries fell below its snapshot takes it as matching (append_check:
 * in Raft its snapshot holds only committed entries, which every later leader holds too) and
 * answers with its snapshot's index and term (hint_term). After FORCE-QUORUM on a node that
 * lacked entries the follower committed, that index may be beyond this log, or hold another
 * term here: counting it would promote the follower and commit entries it never stored (seed
 * 31008127 --nodes 5 --partitions 2 on 15ef547: n4 was promoted in a partition whose forced
 * leader n1 then committed alone on its word; n4 never took the forced configuration, and
 * once n1 led again, n4 refused it and the partition took no write). Not counted: it stays
 * behind until the operator removes it and adds it back afresh, as one that refuses. */
static int follower_ahead(const struct raft *r, const struct raft_message *m)
{
    if (m->index > last_index(r)) {
        return 1;
    }
    return m->hint_term != 0 && m->index >= r->log.snap_index &&
           raft_log_term(&r->log, m->index) != m->hint_term;
}

/* A refusal at or below the follower's match, of a message we sent after its acknowledgement
 * of that match reached us: the follower handled our message after it had said it held the
 * match, and no longer holds it. (Any earlier message may have been handled before: the
 * network reorders, so a message sent later than the one acknowledged, and refused while the
 * follower still lacked entries, is no sign of loss; nor is the refusal of a conflict with
 * committed entries, index 0, after a forced quorum.) The follower lost entries it
 * acknowledged. In Raft never; with `durability:
 * replicated` a power cut loses what a node wrote since its last fdatasync (docs/operations.md).
 * Our heartbeats name the match (send_heartbeat), which it refuses, and refusals below the match
 * were ignored: the follower was never caught up while this leader led (simulator seed 24
 * --durability replicated: stuck 14 s at the end). Its match goes back to what it holds, and
 * it is probed from what it says it holds; what was committed stays committed. */
static void follower_lost_entries(struct raft *r, struct raft_progress *p,
                                  const struct raft_message *m)
{
    uint64_t next = HY_MIN(backoff_next(r, m), m->index);
    hy_log(r->cfg.log, HY_LOG_WARN,
           "raft %llu: follower %llu lacks entries it acknowledged (match %llu, it holds to %llu): "
           "lost unsynced writes (durability replicated and a power cut?); catching it up again",
           (unsigned long long)r->cfg.id, (unsigned long long)p->id,
           (unsigned long long)p->match_index, (unsigned long long)(m->index - 1));
    r->stat_followers_lost++;
    /* Unknown until it acknowledges again: nothing of its log counts for commitment meanwhile
     * (what it holds after the loss was not checked against our log). */
    p->match_index = 0;
    p->match_heard_ms = 0;
    p->caught_up_ms = 0; /* a learner is promoted only on a catch-up round from here */
    p->next_index = HY_MAX(next, 1);
    p->state = PROG_PROBE;
    p->probe_sent_ms = 0;
    inflight_clear(p);
}

static void on_append_resp(struct raft *r, const struct raft_message *m)
{
    struct raft_progress *p = progress_of(r, m->from);
    if (r->role != RAFT_LEADER || p == NULL) {
        return;
    }
    note_ack(r, p, m);
    if (m->success && m->quiesce && m->seq > p->quiesce_ack_seq) {
        p->quiesce_ack_seq = m->seq;
    } else if (m->success && !m->quiesce && m->seq > p->awake_seq) {
        p->awake_seq = m->seq; /* not quiesced on that round, or woken since (wake_by_message) */
    }
    if (m->success && follower_ahead(r, m)) {
        if (!p->ahead) {
            p->ahead = 1;
            r->stat_followers_ahead++;
            hy_log(r->cfg.log, HY_LOG_ERROR,
                   "raft %llu: follower %llu holds a snapshot to %llu that this leader's log "
                   "(to %llu) does not match: it committed entries a forced quorum lacks; not "
                   "counted; remove it and add it back afresh",
                   (unsigned long long)r->cfg.id, (unsigned long long)m->from,
                   (unsigned long long)m->index, (unsigned long long)last_index(r));
        }
        if (m->index <= last_index(r) && p->state == PROG_PROBE) {
            /* Probe there: the follower then sees the conflict itself and says so (on_append). */
            p->next_index = m->index + 1;
            p->probe_sent_ms = 0;
        }
    } else if (m->success) {
        if (m->index > p->match_index) {
            p->match_index = m->index;
            p->last_progress_ms = r->now_ms;
        }
        if (m->index >= p->match_index) {
            p->match_heard_ms = r->now_ms; /* it held the match when it answered */
        }
        inflight_free_upto(p, m->index);
        if (p->state == PROG_PROBE && m->index + 1 >= p->next_index) {
            p->state = PROG_REPLICATE;
            inflight_clear(p);
            p->next_index = p->match_index + 1;
        }
        if (p->next_index <= p->match_index) {
            p->next_index = p->match_index + 1;
        }
        catchup_note(r, p);
        leader_maybe_commit(r);
        leader_maybe_step_down_removed(r); /* a voter may hold the whole log now */
        if (r->role != RAFT_LEADER) {
            return;
        }
        transfer_maybe_fire(r, p);
    } else if (m->index > p->match_index && p->state != PROG_SNAPSHOT) {
        uint64_t next = backoff_next(r, m);
        next = HY_MIN(next, p->next_index);
        p->next_index = HY_MAX(next, p->match_index + 1);
        p->state = PROG_PROBE;
        p->probe_sent_ms = 0;
        inflight_clear(p);
    } else if (m->index > 0 && m->sent_ms > p->match_heard_ms && p->state != PROG_SNAPSHOT) {
        follower_lost_entries(r, p, m);
    }
    release_reads(r);
    send_append(r, p, 0);
}

static void on_snapshot_resp(struct raft *r, const struct raft_message *m)
{
    struct raft_progress *p = progress_of(r, m->from);
    if (r->role != RAFT_LEADER || p == NULL) {
        return;
    }
    note_ack(r, p, m);
    if (m->success) {
        /* The transfer is over: a claim its next chunk took (a chunk asked for again by an
         * earlier answer while the last one was on its way) no longer waits. */
        raft_pacer_forget(r->cfg.snapshot_pacer, p);
        p->match_index = HY_MAX(p->match_index, m->index);
        if (m->index >= p->match_index) {
            p->match_heard_ms = r->now_ms;
        }
        p->next_index = p->match_index + 1;
        p->state = PROG_PROBE;
        p->probe_sent_ms = 0;
        p->last_progress_ms = r->now_ms;
        catchup_note(r, p);
        leader_maybe_commit(r);
        leader_maybe_step_down_removed(r); /* a voter may hold the whole log now */
        if (r->role != RAFT_LEADER) {
            return;
        }
        release_reads(r);
        send_append(r, p, 0);
        return;
    }
    release_reads(r);
    size_t total = p->snap_index == r->kept_index ? r->kept_len : r->snap_len;
    if (p->state == PROG_SNAPSHOT && m->index == p->snap_index && m->offset <= total) {
        if (m->offset > p->snap_offset) {
            p->snap_fruitless = 0; /* the follower holds more of it */
        }
        p->snap_offset = m->offset;
        send_snapshot_chunk(r, p, 0);
    }
}

/* ---- replication: follower side ---------------------------------------------------------- */

static void reply_append(struct raft *r, const struct raft_message *m, int success, uint64_t index,
                         uint64_t hint_term)
{
    struct raft_message *out = msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
    out->success = (uint8_t)success;
    out->index = index;
    out->hint_term = hint_term;
    out->seq = m->seq;
    out->sent_ms = m->sent_ms;
}

/* A valid message from the leader of our term: follow it and hold off elections. */
static void heard_from_leader(struct raft *r, raft_id leader)
{
    if (r->role != RAFT_FOLLOWER) {
        become_follower(r, r->term, leader, NULL);
    }
    r->leader = leader;
    r->leader_contact_ms = r->now_ms;
    r->stickiness_until_ms = r->now_ms + r->cfg.election_timeout_min_ms;
    r->deaf_since_ms = r->now_ms;
    r->deaf_excused = 0;
    reset_election_timer(r);
}

/* m conflicts with an entry this node committed (append_conflicts_committed): refused, and
 * logged once per term, with what conflicts (where m's entries start, the terms there on both
 * sides, this node's commit index and snapshot). */
static void refuse_conflict(struct raft *r, const struct raft_message *m)
{
    r->stat_conflicts_refused++;
    if (r->conflict_logged_term != r->term) {
        r->conflict_logged_term = r->term;
        uint64_t at = m->prev_index;
        uint64_t theirs = m->prev_term;
        if (at < r->log.snap_index) {
            at = r->log.snap_index; /* append_check: nothing to compare below the snapshot */
        }
        for (uint32_t k = 0; k < m->n_entries; k++) { /* the first entry that differs */
            uint64_t index = m->prev_index + 1 + k;
            if (index >= r->log.snap_index && index <= last_index(r) &&
                raft_log_term(&r->log, index) != m->entries[k].term) {
                at = index;
                theirs = m->entries[k].term;
                break;
            }
        }
        hy_log(r->cfg.log, HY_LOG_ERROR,
               "raft %llu: the leader %llu of term %llu sends entries that conflict with "
               "entries this node committed (a quorum forced on a node that lacked them): "
               "refused; remove this member and add it back afresh (group %u: index %llu has "
               "term %llu here, %llu at the leader; commit index %llu, snapshot %llu, last "
               "index %llu)",
               (unsigned long long)r->cfg.id, (unsigned long long)m->from,
               (unsigned long long)r->term, r->cfg.group, (unsigned long long)at,
               (unsigned long long)raft_log_term(&r->log, at), (unsigned long long)theirs,
               (unsigned long long)r->commit_index, (unsigned long long)r->log.snap_index,
               (unsigned long long)last_index(r));
    }
    reply_append(r, m, 0, 0, 0);
}

/* §3.5: "If the follower does not find an entry in its log with the same index and term, then
 * it refuses the new entries." The rejection names where the leader should retry. */
static int append_check(struct raft *r, const struct raft_message *m)
{
    if (m->prev_index < r->log.snap_index) {
        return 1; /* covered by our snapshot: committed, hence matching */
    }
    if (m->prev_index > last_index(r)) {
        reply_append(r, m, 0, last_index(r) + 1, 0);
        return 0;
    }
    uint64_t t = raft_log_term(&r->log, m->prev_index);
    if (t != m->prev_term && m->prev_index <= r->commit_index &&
        r->cfg.mutation != RAFT_MUT_NO_TRUNCATE) {
        /* A committed entry (or the snapshot's last) that the leader holds with another term:
         * in Raft never (Leader Completeness); after FORCE-QUORUM it is on_append's conflict
         * with committed entries, met at prev_index, e.g. at this node's snapshot index when
         * the forced log first reaches it. Backing off would find no match either. */
        refuse_conflict(r, m);
        return 0;
    }
    if (t != m->prev_term) {
        uint64_t first = m->prev_index;
        while (first - 1 > r->log.snap_index && raft_log_term(&r->log, first - 1) == t) {
            first--;
        }
        reply_append(r, m, 0, first, t);
        return 0;
    }
    return 1;
}

/* Whether m's entries conflict with an entry this node committed. In Raft a leader holds
 * every committed entry (§3.6.3, Leader Completeness), so this never happens; after
 * FORCE-QUORUM it does when the forced node lacked entries another survivor committed (with
 * partitions the operator cannot pick a node whose log is the longest in every group). This
 * node cannot roll back what it applied: it refuses, and stays behind until an operator
 * removes it and adds it back afresh (operations.md "Losing a majority"). Aborting instead,
 * as the assertion in log_truncate would, made such a survivor fail at every restart. */
static int append_conflicts_committed(const struct raft *r, const struct raft_message *m)
{
    for (uint32_t k = 0; k < m->n_entries; k++) {
        uint64_t index = m->prev_index + 1 + k;
        if (index > r->commit_index || index > last_index(r)) {
            return 0;
        }
        /* Below the log's base the terms are gone; at the base the snapshot's term stands. */
        if (index >= r->log.snap_index && raft_log_term(&r->log, index) != m->entries[k].term) {
            return 1;
        }
    }
    return 0;
}

/* §3.5: "If an existing entry conflicts with a new one (same index but different terms),
 * delete the existing entry and all that follow it" and append the new ones. */
static void append_entries(struct raft *r, const struct raft_message *m)
{
    for (uint32_t k = 0; k < m->n_entries; k++) {
        uint64_t index = m->prev_index + 1 + k;
        const struct raft_entry *e = &m->entries[k];
        if (index <= r->log.snap_index) {
            continue;
        }
        if (index <= last_index(r)) {
            if (raft_log_term(&r->log, index) == e->term) {
                continue;
            }
            if (r->cfg.mutation == RAFT_MUT_NO_TRUNCATE) {
                continue;
            }
            log_truncate(r, index);
        }
        log_append_one(r, e);
    }
}

/* The commit index the current leader sent (an append taken, a snapshot chunk): the log may
 * not end in the group's configuration until it reaches it (self_may_campaign). */
static void note_commit_heard(struct raft *r, const struct raft_message *m)
{
    if (m->term != r->commit_heard_term || m->commit > r->commit_heard) {
        r->commit_heard_term = m->term;
        r->commit_heard = m->commit;
    }
}

static void on_append(struct raft *r, const struct raft_message *m)
{
    if (m->term < r->term) {
        reply_append(r, m, 0, 0, 0); /* our higher term makes a stale leader step down */
        return;
    }
    heard_from_leader(r, m->from);
    if (!append_check(r, m)) {
        return;
    }
    if (r->cfg.mutation != RAFT_MUT_NO_TRUNCATE && append_conflicts_committed(r, m)) {
        refuse_conflict(r, m);
        return;
    }
    append_entries(r, m);
    note_commit_heard(r, m);
    uint64_t match = HY_MAX(m->prev_index + m->n_entries, r->log.snap_index);
    if (m->commit > r->commit_index) {
        r->commit_index = HY_MAX(r->commit_index, HY_MIN(m->commit, match));
    }
    /* A match at our snapshot's index beyond what m carried was not checked against the
     * leader's log: name the snapshot's term so that the leader checks it (follower_ahead). */
    reply_append(r, m, 1, match, match > m->prev_index + m->n_entries ? r->log.snap_term : 0);
    /* Quiescing: only with nothing left to learn from this leader (raft.c "Quiescing"). */
    if (m->quiesce && r->cfg.quiesce_ticks > 0 && m->n_entries == 0 && match == last_index(r) &&
        r->commit_index == last_index(r)) {
        r->msgs[r->n_msgs - 1].quiesce = 1;
        if (!r->quiesced) {
            r->stat_quiesces++;
        }
        r->quiesced = 1;
        r->quiesced_round = m->seq;
    }
}

static void reply_snapshot(struct raft *r, const struct raft_message *m, int success,
                           uint64_t offset)
{
    struct raft_message *out = msg_new(r, RAFT_MSG_SNAPSHOT_RESP, m->from);
    out->success = (uint8_t)success;
    out->index = m->snap_index;
    out->offset = offset;
    out->seq = m->seq;
    out->sent_ms = m->sent_ms;
}

/* Figure 5.3 receiver: "If done is true ... Discard the entire log. Reset state machine using
 * snapshot contents (and load snapshot's cluster configuration)". */
static void snapshot_install(struct raft *r, const struct raft_message *m)
{
    raft_log_reset(&r->log, m->snap_index, m->snap_term);
    r->commit_index = m->snap_index;
    r->persisted_index = m->snap_index;
    r->snapshot_index = m->snap_index;
    r->snapshot_term = m->snap_term;
    hy_free(r->snap_data);
    r->snap_crc_index = 0;
    if (r->cfg.snapshot_recv_external) {
        /* The data is in the caller's store (this update's last chunk completes it); the
         * chunk buffer stays until the next step, which the update's chunk_data points into. */
        r->snap_data = NULL;
        r->snap_len = r->recv_len;
        r->recv_len = 0;
    } else {
        r->snap_data = r->recv_data;
        r->snap_len = r->recv_len;
        r->recv_data = NULL;
        r->recv_len = r->recv_cap = 0;
    }
    r->recv_index = 0;
    r->snap_membership = m->snap_membership;
    membership_recompute(r);
    r->snapshot_dirty = 1;
    r->append_first = 0;
}

static void on_snapshot(struct raft *r, const struct raft_message *m)
{
    if (m->term < r->term) {
        reply_snapshot(r, m, 0, 0);
        return;
    }
    heard_from_leader(r, m->from);
    note_commit_heard(r, m);
    /* Figure 5.3: "If existing log entry has same index and term as snapshot's last included
     * entry, retain log entries following it". Discarding them would drop entries we may
     * already have acknowledged; the log alone brings the state machine that far. */
    if (m->snap_index <= r->commit_index || raft_log_term(&r->log, m->snap_index) == m->snap_term) {
        r->commit_index = HY_MAX(r->commit_index, m->snap_index);
        reply_snapshot(r, m, 1, 0);
        return;
    }
    /* A transfer starts again at offset 0 with data, or with a snapshot other than the one
     * received so far (index, term and size). An empty chunk at 0 is a leader's first message
     * of a transfer or its keepalive while its pacer holds a chunk back: it must not drop what
     * came, and the answer names the offset to go on from, to this leader or to a new one
     * sending the same snapshot (send_snapshot_chunk). */
    int same =
        r->recv_index == m->snap_index && r->recv_term == m->snap_term && r->recv_total == m->total;
    /* Index, term and size are not proof that two leaders' snapshots hold the same bytes
     * (a store snapshot lists its keys in the order of the node's hash table, and nodes whose
     * encodings differ, during an upgrade, may produce the same size): a chunk
     * with data names the whole data's checksum, and one naming another checksum than the
     * chunks received so far belongs to another snapshot, whose bytes must not be appended to
     * theirs. The transfer then starts again from 0. */
    int other_crc = same && m->len > 0 && r->recv_len > 0 && m->snap_crc != r->recv_want;
    if (other_crc) {
        r->stat_snapshot_crc_mismatches++;
        hy_log(r->cfg.log, HY_LOG_WARN,
               "raft %llu: group %u: snapshot %llu from %llu names checksum %08x, the %llu bytes "
               "received so far were of %08x: starting that transfer again",
               (unsigned long long)r->cfg.id, r->cfg.group, (unsigned long long)m->snap_index,
               (unsigned long long)m->from, m->snap_crc, (unsigned long long)r->recv_len,
               r->recv_want);
    }
    if (!same || other_crc || (m->offset == 0 && m->len > 0)) {
        r->recv_index = m->snap_index;
        r->recv_term = m->snap_term;
        r->recv_total = m->total;
        r->recv_len = 0;
        r->recv_crc = 0;
        r->recv_want = m->snap_crc;
    }
    if (r->recv_index != m->snap_index || m->offset != r->recv_len ||
        m->offset + m->len > m->total) {
        reply_snapshot(r, m, 0, r->recv_index == m->snap_index ? r->recv_len : 0);
        return;
    }
    if (r->cfg.snapshot_recv_external) {
        /* One chunk is held, for the update that hands it to the caller's store; an empty
         * message stores nothing, but for the only chunk of an empty snapshot. */
        if (m->len > r->recv_cap) {
            r->recv_cap = m->len;
            r->recv_data = hy_xrealloc(r->recv_data, r->recv_cap);
        }
        if (m->len > 0 || m->total == 0) {
            r->chunk_dirty = 1;
            r->chunk_offset = m->offset;
            r->chunk_len = m->len;
            r->recv_membership = m->snap_membership;
        }
        if (m->len) {
            memcpy(r->recv_data, m->data, m->len);
        }
    } else {
        if (r->recv_len + m->len > r->recv_cap) {
            r->recv_cap = HY_MAX((size_t)m->total, (size_t)64);
            r->recv_data = hy_xrealloc(r->recv_data, r->recv_cap);
        }
        if (m->len) {
            memcpy(r->recv_data + r->recv_len, m->data, m->len);
        }
    }
    if (m->len) {
        r->recv_crc = hy_crc32c(r->recv_crc, m->data, m->len);
    }
    r->recv_len += m->len;
    if (r->recv_len < m->total) {
        reply_snapshot(r, m, 0, r->recv_len);
        return;
    }
    /* Whole: the data must match the checksum its chunks named, or none is installed (a
     * transfer spliced from two snapshots, or damaged where no frame checksum looked). */
    if (r->recv_want != 0 && r->recv_crc != r->recv_want) {
        r->stat_snapshot_crc_mismatches++;
        hy_log(r->cfg.log, HY_LOG_WARN,
               "raft %llu: group %u: snapshot %llu from %llu: its %llu bytes sum to %08x, not the "
               "%08x named: not installed, starting that transfer again",
               (unsigned long long)r->cfg.id, r->cfg.group, (unsigned long long)m->snap_index,
               (unsigned long long)m->from, (unsigned long long)r->recv_len, r->recv_crc,
               r->recv_want);
        r->recv_index = 0;
        r->recv_len = 0;
        r->chunk_dirty = 0;
        reply_snapshot(r, m, 0, 0);
        return;
    }
    r->chunk_crc = r->recv_want;
    snapshot_install(r, m);
    reply_snapshot(r, m, 1, m->total);
}

static void on_timeout_now(struct raft *r, const struct raft_message *m)
{
    if (m->term != r->term || r->role != RAFT_FOLLOWER || !self_is_voter(r)) {
        return;
    }
    /* §3.10: "This request has the same effect as the target server's election timer
     * firing": no pre-vote, and voters set stickiness aside for it. */
    start_election(r, 1);
}

/* ---- quiescing ----------------------------------------------------------------------------- */

/*
 * Quiescing (DESIGN.md §7, as CockroachDB and TiKV do it): a node hosts many groups and most
 * of them are idle most of the time, so an idle group stops costing anything. A quiesced
 * server runs no timer and sends nothing: a quiesced leader sends no heartbeats, a quiesced
 * follower runs no election timer. Failure detection for such groups moves to the node level:
 * the caller reports RAFT_EV_LIVENESS when the node-to-node link says a server's node is
 * suspected down (or back), one detector per node pair instead of one per group.
 *
 * When a group quiesces. Its leader counts, at each heartbeat interval, whether the group is
 * idle: every entry committed and durable here, no read, transfer, removal or configuration
 * change pending, and every follower (but those the node-level view reports down) answering,
 * replicating, holding the leader's last index, and with no AppendEntries in flight; a
 * majority of the voters must be among them. After cfg.quiesce_ticks idle intervals its
 * heartbeats carry `quiesce` in a fresh heartbeat round (read_seq), with commit = last index.
 * A follower that accepts such a heartbeat and then holds exactly the leader's log, all of it
 * committed, quiesces and says so in its answer. Once every such follower answered that round
 * as quiesced, and the group is still idle, the leader quiesces at its next interval instead
 * of sending a heartbeat. Anything new in between (an entry, a read, a lost answer) ends the
 * idle count and the round does not count.
 *
 * What wakes it. Any event that has work: a leader wakes on SUBMIT, READ, CHANGE, TRANSFER,
 * any message, and on a liveness report about one of its followers (down: so check-quorum
 * runs again and steps it down if it lost its majority, §6.2; up again: so it catches the
 * follower up). A follower wakes on any message, and on a report that its leader's node is
 * down: it then campaigns as after an election timeout (pre-vote first), within a random
 * spread of (max - min) election timeout so that its group's followers rarely collide. A follower
 * woken by a message that is not from its leader (a pre-vote of a server that restarted, say) still
 * counts its leader as alive, since nothing said otherwise: it holds off votes for a minimum
 * election timeout as if it had just heard the leader (leader stickiness, §4.2.3) and nudges the
 * leader awake with a harmless success answer at its commit index, so the leader resumes heartbeats
 * and the woken group settles under the same leader. The nudge names the round the follower
 * quiesced on, not quiesced, so that a leader which has not quiesced yet stops counting its
 * quiesced answer to that round (awake_seq) and sends another round instead of quiescing. A
 * restarted server starts unquiesced (raft_init), like any other.
 *
 * Why this is safe. Quiescing only suppresses timers and heartbeats; every rule that makes Raft
 * safe (votes, log matching, commitment, §3.6) runs unchanged on the messages that are sent,
 * and a wake is only ever a timer or a heartbeat that starts again. Three points need care:
 *  - Leases (§6.4.1): a lease is extended only by acknowledgements of messages followers
 *    received, and each such receipt set that follower's stickiness to at least a minimum
 *    election timeout after it, which outlasts the lease (lease_allowed). A quiesced leader
 *    gets no acknowledgements, so its lease simply runs out; its next read wakes it and takes a
 *    ReadIndex round. The stickiness that real contact set is never shortened (a wake only
 *    adds its own, which a node-level "leader down" report takes back), so no vote can come
 *    sooner than without quiescing, and a lease still running when the leader quiesced is
 *    as safe as before: its followers' stickiness covers it.
 *  - Check-quorum (§6.2): a quiesced leader can lose its majority unnoticed, but it serves
 *    nothing while quiesced: a write or a read wakes it, its lease is gone, and the quorum
 *    window restarts at the wake (quorum_from_ms), after which it steps down as usual if
 *    nobody answers. A liveness report about a follower wakes it at once.
 *  - A follower that misses the quiesce round or anything after it: the leader quiesces only
 *    once every follower not reported down answered that very round as quiesced with the
 *    whole log, so no follower is left behind by a quiesced leader unless the node level
 *    reported it down; when it comes back, its report (or its own messages: a restarted
 *    server starts unquiesced and campaigns, and any message wakes the leader) wakes the
 *    leader, which catches it up as usual. Term changes come only through messages, and any
 *    message wakes.
 */
static void wake(struct raft *r)
{
    r->quiesced = 0;
    r->idle_ticks = 0;
    r->quiesce_seq = 0;
    if (r->role == RAFT_LEADER) {
        r->quorum_from_ms = r->now_ms; /* §6.2's window starts again */
        r->heartbeat_deadline_ms = r->now_ms + r->cfg.heartbeat_ms;
    } else {
        reset_election_timer(r);
    }
}

/* Asks a quiesced leader to wake: a success answer at the commit index, which the leader holds
 * and counts as nothing new, but which it answers with heartbeats again. It names the round
 * this follower quiesced on, not quiesced: a leader that has not quiesced yet would otherwise
 * count this follower's answer to that round and quiesce, leaving it awake with its election
 * timer running and nothing to hear (awake_seq). Both wakes that nudge need it: a message not
 * from the leader (simulator seed 1562500071: a removed member's pre-votes, refused, woke the
 * metadata group's followers again and again, and they deposed their leader 19 times), and a
 * suspicion of the leader's node (test_suspicion_after_quiesce_round_leaves_no_follower_awake:
 * a live leader suspected between its quiesce round and its quiescing; the follower left awake
 * campaigns an election timeout later, and its pre-votes wake the others). */
static void nudge_leader(struct raft *r)
{
    struct raft_message *out = msg_new(r, RAFT_MSG_APPEND_RESP, r->leader);
    out->success = 1;
    out->index = r->commit_index; /* committed, so in the leader's log: changes nothing */
    out->seq = r->quiesced_round;
}

/* A quiesced follower's message from its leader, in its term, stamped with a heartbeat round
 * older than the one it quiesced on: the leader sent it before that round, so it carries
 * nothing the follower did not hold when it quiesced (its whole log, all committed), and the
 * leader counts no answer to it. The network delivered it late (reordered, or a duplicate).
 * Woken by it, the follower ran its election timer while the leader, which had its quiesced
 * answer, quiesced too, and it campaigned an election timeout later (simulator seed 960000605
 * --nodes 5 --partitions 16 --rf 3: a heartbeat of round 256 overtaken by the quiesce round
 * 257). Dropped: a lost message, which Raft tolerates, and the follower stays quiesced. */
static int sent_before_quiesce_round(const struct raft *r, const struct raft_message *m)
{
    return r->role == RAFT_FOLLOWER && r->leader != RAFT_NONE && m->from == r->leader &&
           m->term == r->term && (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) &&
           m->seq < r->quiesced_round;
}

static void wake_by_message(struct raft *r, const struct raft_message *m)
{
    wake(r);
    /* What a leader sends (from ours, or from a newer one) is handled as usual. A vote request
     * carries its candidate's next term: stickiness is exactly for it. */
    if (r->role != RAFT_FOLLOWER || r->leader == RAFT_NONE || m->from == r->leader ||
        raft_msg_may_precede_persist(m)) {
        return;
    }
    /* Nothing said the leader is gone: as if just heard (§4.2.3), and nudge it awake. */
    r->wake_sticky_until_ms = r->now_ms + r->cfg.election_timeout_min_ms;
    nudge_leader(r);
}

/* Followers not reported down; returns 0 when one of them is not idle. */
static int followers_idle(const struct raft *r, uint32_t *voters_up_out)
{
    *voters_up_out = 0;
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *p = &r->progress[i];
        int voter = r->membership.servers[i].role == RAFT_VOTER;
        if (p->id == r->cfg.id) {
            *voters_up_out += (uint32_t)voter;
            continue;
        }
        if (p->down) {
            continue;
        }
        if (p->match_index != last_index(r) || p->state != PROG_REPLICATE ||
            p->inflight_count != 0 || p->last_heard_ms + 2ull * r->cfg.heartbeat_ms < r->now_ms) {
            return 0;
        }
        *voters_up_out += (uint32_t)voter;
    }
    return 1;
}

static int leader_idle(const struct raft *r)
{
    if (r->cfg.quiesce_ticks == 0 || r->n_reads > 0 || r->read_round_wanted ||
        r->transfer_target != RAFT_NONE || r->step_down_removed ||
        r->commit_index != last_index(r) || r->persisted_index != last_index(r) ||
        r->membership_index > r->commit_index) {
        return 0;
    }
    uint32_t voters_up;
    return followers_idle(r, &voters_up) && voters_up >= quorum(r);
}

static int quiesce_acked(const struct raft *r)
{
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *p = &r->progress[i];
        if (p->id != r->cfg.id && !p->down &&
            (p->quiesce_ack_seq < r->quiesce_seq || p->awake_seq >= r->quiesce_seq)) {
            return 0;
        }
    }
    return 1;
}

/* At a heartbeat interval: returns 1 when the leader quiesces now (nothing to send). */
static int leader_quiesce_step(struct raft *r)
{
    if (!leader_idle(r)) {
        r->idle_ticks = 0;
        r->quiesce_seq = 0;
        return 0;
    }
    /* The quiesce round must be the last round sent: the followers quiesced on it and heard
     * nothing since that would have woken them. */
    if (r->quiesce_seq != 0 && r->quiesce_seq == r->read_seq && quiesce_acked(r)) {
        r->quiesced = 1;
        r->stat_quiesces++;
        hy_log(r->cfg.log, HY_LOG_DEBUG, "raft %llu: quiesced at %llu in term %llu",
               (unsigned long long)r->cfg.id, (unsigned long long)last_index(r),
               (unsigned long long)r->term);
        return 1;
    }
    if (++r->idle_ticks >= r->cfg.quiesce_ticks) {
        r->quiesce_seq = ++r->read_seq; /* this round's heartbeats ask to quiesce */
    }
    return 0;
}

/* RAFT_EV_LIVENESS: the node-level failure detector's view of server `id`. */
static void on_liveness(struct raft *r, raft_id id, int alive, int suspect)
{
    if (suspect) {
        /* The leader's node is suspected, not known down. A quiesced follower runs its election
         * timer again and nudges the leader, as an active follower that stopped hearing it
         * would be doing: a live leader answers with heartbeats within a heartbeat interval
         * and the group settles under it again, while a hung one (stopped, stalled) does not,
         * and the follower campaigns an election timeout later (pre-vote first) instead of
         * waiting for the suspicion to time out. A leader ignores suspicions of followers. */
        if (alive || r->role != RAFT_FOLLOWER || id != r->leader || !r->quiesced ||
            r->cfg.mutation == RAFT_MUT_QUIESCE_NO_WAKE) {
            return; /* (the mutation: node-level reports wake nothing) */
        }
        wake(r);
        r->wake_sticky_until_ms = 0;
        /* (Naming the quiesced round here, as nudge_leader does, once made whole-node seed 296
         * --nodes 5 --partitions 16 --rf 3 --replace-after 1500 --snapshot-bandwidth 512 fail:
         * the course it took queued a move's snapshot at n2's pacer behind transfers whose
         * leaders snapshotted anew every 2 to 3 s, each restart sending them to the back of
         * the queue. That was the pacer's, fixed in send_snapshot_chunk.) */
        nudge_leader(r);
        return;
    }
    if (r->role == RAFT_LEADER) {
        struct raft_progress *p = progress_of(r, id);
        if (p == NULL || id == r->cfg.id || p->down == !alive) {
            return;
        }
        p->down = !alive;
        if (r->quiesced) {
            wake(r);
        }
        return;
    }
    if (alive || id != r->leader) {
        return;
    }
    r->wake_sticky_until_ms = 0; /* the leader is not heard at node level after all */
    if (!r->quiesced) {
        return; /* an active follower's own election timer covers it */
    }
    wake(r);
    r->leader = RAFT_NONE; /* its node is gone: stop routing to it */
    /* As after an election timeout: the node level already waited for the silence (or saw the
     * link break). Only a random spread of (max - min) is left, so that the followers of one
     * group, told at the same moment, rarely split the vote (§3.4). */
    r->election_deadline_ms =
        r->now_ms +
        hy_prng_range(&r->prng, 0, r->cfg.election_timeout_max_ms - r->cfg.election_timeout_min_ms);
    if (r->cfg.mutation == RAFT_MUT_QUIESCE_NO_WAKE) {
        r->election_deadline_ms = UINT64_MAX; /* the bug under test: never campaigns */
    }
}

/* ---- Busy leaders ------------------------------------------------------------------------
 *
 * A node's event loop can be held for seconds by one Lua script (docs/protocol.md "Busy
 * scripts"): it then sends no heartbeats, and its followers would elect a new leader although
 * the old one is alive and resumes as soon as the script ends. While held, its shell sends
 * each peer a notice naming the groups it leads and their terms (RAFT_EV_LEADER_BUSY). A
 * follower of that term whose leader it is counts the notice as hearing from the leader (§3.4:
 * "followers remain in follower state as long as they receive valid RPCs from a leader"):
 * its election timer starts again and it refuses votes for a while (leader stickiness,
 * §4.2.3). Nothing else changes: no log, commit index or answer, so no Raft rule depends on
 * it. It only ever delays an election, and only while the leader's node keeps sending
 * notices, which a node does only while a script holds it (bounded by
 * script-max-instructions); a crashed or partitioned leader sends none. A quiesced follower
 * runs no timer and needs nothing; a notice from anyone else, or of another term, is
 * ignored. */
static void on_leader_busy(struct raft *r, raft_id leader, uint64_t term)
{
    if (r->role != RAFT_FOLLOWER || r->quiesced || term != r->term || leader == RAFT_NONE ||
        r->leader != leader || leader == r->cfg.id) {
        return;
    }
    r->leader_contact_ms = r->now_ms;
    r->stickiness_until_ms = r->now_ms + r->cfg.election_timeout_min_ms;
    r->deaf_since_ms = r->now_ms;
    r->deaf_excused = 0;
    reset_election_timer(r);
}

/* The other way round: a follower whose node runs a long script (at apply, the same script on
 * every follower at once) reads nothing meanwhile, and the leader, hearing no majority for an
 * election timeout, stepped down under the script's own client (UNKNOWN outcome). Its notice,
 * over its link, proves it alive: it counts for check-quorum (§6.2: is a majority still
 * reachable?) and for nothing else. No lease, no commit, no quiescing reads it (they read
 * last_heard_ms and the acknowledgements), and a follower busy at apply casts no vote. */
static void on_follower_busy(struct raft *r, raft_id id)
{
    if (r->role != RAFT_LEADER || id == r->cfg.id) {
        return;
    }
    struct raft_progress *p = progress_of(r, id);
    if (p != NULL) {
        p->busy_heard_ms = r->now_ms;
    }
}

static void on_receive(struct raft *r, const struct raft_message *m)
{
    if (m->to != r->cfg.id || m->type == 0 || m->type >= RAFT_MSG_TYPE_COUNT) {
        return;
    }
    if (r->role == RAFT_LEADER) {
        struct raft_progress *p = progress_of(r, m->from);
        if (p != NULL) {
            p->down = 0; /* it speaks: whatever the node-level view says */
        }
    }
    if (r->quiesced) {
        if (sent_before_quiesce_round(r, m)) {
            return;
        }
        wake_by_message(r, m);
    }
    if (m->type == RAFT_MSG_VOTE) {
        on_vote(r, m);
        return;
    }
    int pre_vote_answer = m->type == RAFT_MSG_VOTE_RESP && m->pre_vote;
    if (m->term > r->term && !(pre_vote_answer && m->granted)) {
        int from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT ||
                          m->type == RAFT_MSG_TIMEOUT_NOW;
        become_follower(r, m->term, from_leader ? m->from : RAFT_NONE, NULL);
    }
    switch (m->type) {
    case RAFT_MSG_VOTE_RESP: on_vote_resp(r, m); break;
    case RAFT_MSG_APPEND: on_append(r, m); break;
    case RAFT_MSG_APPEND_RESP:
        if (m->term == r->term) {
            on_append_resp(r, m);
        }
        break;
    case RAFT_MSG_SNAPSHOT: on_snapshot(r, m); break;
    case RAFT_MSG_SNAPSHOT_RESP:
        if (m->term == r->term) {
            on_snapshot_resp(r, m);
        }
        break;
    case RAFT_MSG_TIMEOUT_NOW: on_timeout_now(r, m); break;
    default: break;
    }
}

/* ---- timers ------------------------------------------------------------------------------ */

static int leader_quiesce_step(struct raft *r);

/* §6.2: "a leader in Raft steps down if an election timeout elapses without a successful round
 * of heartbeats to a majority of its cluster". */
static int leader_has_quorum(struct raft *r)
{
    uint64_t window = r->cfg.election_timeout_max_ms + deaf_slack(r);
    if (r->now_ms < r->quorum_from_ms + window) {
        return 1;
    }
    uint32_t active = 0;
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *p = &r->progress[i];
        if (r->membership.servers[i].role != RAFT_VOTER) {
            continue;
        }
        if (p->id == r->cfg.id || HY_MAX(p->last_heard_ms, p->busy_heard_ms) + window > r->now_ms) {
            active++;
        }
    }
    if (active >= quorum(r)) {
        r->deaf_since_ms = r->now_ms; /* a majority heard: deafness may be excused again */
        r->deaf_excused = 0;
        return 1;
    }
    return 0;
}

/* Gray failure: a leader whose own disk or event loop runs late serves nobody well; handing
 * over beats holding leadership it cannot use (DESIGN.md §5). */
static int leader_running_late(const struct raft *r)
{
    uint64_t bound = r->cfg.late_bound_ms;
    if (bound == 0) {
        return 0;
    }
    int tick_late = r->timeout_armed_ms && r->now_ms > r->timeout_armed_ms + bound;
    int disk_late = r->unpersisted_since_ms && r->now_ms > r->unpersisted_since_ms + bound;
    return tick_late || disk_late;
}

static void detect_stalls(struct raft *r)
{
    for (uint32_t i = 0; i < r->membership.count; i++) {
        struct raft_progress *p = &r->progress[i];
        if (p->id == r->cfg.id || p->state != PROG_REPLICATE || p->inflight_count == 0) {
            continue;
        }
        /* Lost AppendEntries leave the window full forever: fall back to probing. */
        if (r->now_ms >= p->last_progress_ms + 2ull * r->cfg.heartbeat_ms) {
            p->state = PROG_PROBE;
            p->probe_sent_ms = 0;
            p->next_index = p->match_index + 1;
            p->last_progress_ms = r->now_ms;
            inflight_clear(p);
        }
    }
}

/* ---- Deafness ----------------------------------------------------------------------------
 *
 * A server counts as its peers' silence the time it waited for them: a follower campaigns when
 * it heard no leader for an election timeout, a leader steps down when it heard no majority for
 * one (check-quorum, §6.2). Time during which the server itself read nothing (its event loop
 * was busy with one long turn, or the machine did not schedule it) is not the peers' silence:
 * they may have been as starved as it was, as when snapshot encoders on every node of one
 * loaded machine take the CPU at once, and a leader that resumes sends its heartbeats at once.
 * Counting it, the followers of a loaded machine campaigned after every such stall, and the
 * leader stepped down for acknowledgements that waited unread in its socket (docs/performance.md
 * "Leader changes under load").
 *
 * So a timeout that reports a stretch of deafness [deaf_from_ms, deaf_to_ms) overlapping the
 * window in which the server waited gives its peers a fresh window from the end of the
 * deafness: a follower rearms its election timer from deaf_to_ms, a leader restarts its
 * check-quorum window there. Within a bound, until the leader (or a majority) is heard again:
 * the first stretch always, further ones only while the silence so far is under three maximum
 * election timeouts. So a server deaf at every turn, with its leader gone for good, still
 * campaigns, at most about three election timeouts after it last heard it, and a deaf leader cut
 * off from its followers still steps down. This only ever delays an election or a step-down,
 * never brings one forward and never grants a vote, so it cannot weaken safety; nor leases,
 * whose bound is the followers' minimum election timeout (raft.c lease_allowed): a follower's
 * election comes, if anything, later.
 *
 * A machine that starves its servers starves them all, the leader too: a follower that happens
 * to run while its leader waits for a CPU hears nothing, without being deaf itself. So the
 * silence each server tolerates also grows by the longest stretch of its own deafness of the
 * last seconds (deaf_recent_ms, at most three maximum election timeouts): a follower's election
 * deadline (once per deadline) and the stickiness that refuses votes to others, and a leader's
 * check-quorum window. On an idle machine it is 0 and nothing changes; on the loaded 2-vCPU
 * machine of docs/performance.md, where the nodes' turns waited up to a second for a CPU, the
 * timeouts stretch as far as the stalls the nodes have been seeing, as an RTO follows the round
 * trips it measures. Again only a delay, bounded. */
static int deaf_excuse(struct raft *r, const struct raft_event *ev, uint64_t window_start)
{
    uint64_t to = ev->timeout.deaf_to_ms;
    uint64_t from = HY_MAX(ev->timeout.deaf_from_ms, HY_MAX(window_start, r->deaf_excused_to_ms));
    uint64_t bound = r->deaf_since_ms + 3ull * r->cfg.election_timeout_max_ms;
    if (to <= from || to > r->now_ms || (r->deaf_excused != 0 && r->now_ms >= bound)) {
        return 0;
    }
    r->deaf_excused++;
    r->deaf_excused_to_ms = to;
    r->stat_deaf_excused++;
    hy_log(r->cfg.log, HY_LOG_INFO,
           "raft %llu: %s in term %llu excused: this server read nothing for %llu ms (group %u)",
           (unsigned long long)r->cfg.id,
           r->role == RAFT_LEADER ? "check-quorum" : "election timeout",
           (unsigned long long)r->term, (unsigned long long)(to - ev->timeout.deaf_from_ms),
           r->cfg.group);
    return 1;
}

static void leader_tick(struct raft *r, const struct raft_event *ev)
{
    if (leader_running_late(r)) {
        hy_log(r->cfg.log, HY_LOG_WARN, "raft %llu: running late, stepping down",
               (unsigned long long)r->cfg.id);
        become_follower(r, r->term, RAFT_NONE, "running late");
        return;
    }
    leader_maybe_step_down_removed(r); /* the hand-over's deadline */
    if (r->role != RAFT_LEADER) {
        return;
    }
    if (r->transfer_target != RAFT_NONE && r->now_ms >= r->transfer_deadline_ms) {
        /* §3.10: "If leadership transfer does not complete after about an election timeout,
         * the prior leader aborts the transfer and resumes accepting client requests." */
        r->transfer_target = RAFT_NONE;
    }
    /* Chunks the snapshot pacer held back (send_snapshot_chunk) whose time has come. */
    for (uint32_t i = 0; i < r->membership.count; i++) {
        struct raft_progress *p = &r->progress[i];
        if (p->state == PROG_SNAPSHOT && p->snap_retry_ms != 0 && p->snap_retry_ms <= r->now_ms) {
            send_snapshot_chunk(r, p, 0);
        }
    }
    if (r->now_ms < r->heartbeat_deadline_ms) {
        return;
    }
    if (!leader_has_quorum(r)) {
        if (deaf_excuse(r, ev, r->now_ms - HY_MIN(r->now_ms, r->cfg.election_timeout_max_ms))) {
            r->quorum_from_ms = ev->timeout.deaf_to_ms; /* §6.2's window starts again */
        } else {
            become_follower(r, r->term, RAFT_NONE, "check-quorum: no majority heard");
            return;
        }
    }
    r->heartbeat_deadline_ms = r->now_ms + r->cfg.heartbeat_ms;
    detect_stalls(r);
    if (leader_quiesce_step(r)) {
        return; /* quiesced: this round, and every later one until a wake, is not sent */
    }
    broadcast_append(r, 1);
}

static void on_timeout(struct raft *r, const struct raft_event *ev)
{
    if (r->quiesced) {
        return; /* no timer runs while quiesced: a late one is spurious */
    }
    r->deaf_slack_ms = HY_MIN(ev->timeout.deaf_recent_ms, 3ull * r->cfg.election_timeout_max_ms);
    r->deaf_slack_at_ms = r->now_ms;
    if (r->role == RAFT_LEADER) {
        leader_tick(r, ev);
        return;
    }
    if (r->now_ms < r->election_deadline_ms) {
        return;
    }
    if (r->role == RAFT_FOLLOWER && !r->deadline_stretched && r->deaf_slack_ms > 0) {
        r->deadline_stretched = 1;
        r->election_deadline_ms += r->deaf_slack_ms;
        if (r->now_ms < r->election_deadline_ms) {
            return;
        }
    }
    if (r->role == RAFT_FOLLOWER && deaf_excuse(r, ev, r->leader_contact_ms)) {
        r->election_deadline_ms = ev->timeout.deaf_to_ms + random_election_timeout(r);
        r->deadline_stretched = 0;
        if (r->now_ms < r->election_deadline_ms) {
            return;
        }
    }
    /* §3.4: "Raft uses randomized election timeouts to ensure that split votes are rare". */
    if (self_may_campaign(r)) {
        start_pre_vote(r);
    } else {
        reset_election_timer(r);
    }
}

/* ---- client-facing events ---------------------------------------------------------------- */

static void on_submit(struct raft *r, const struct raft_event *ev, struct raft_update *up)
{
    if (r->role != RAFT_LEADER) {
        up->status = HY_ENOTLEADER;
        return;
    }
    if (r->transfer_target != RAFT_NONE) {
        up->status = HY_EBUSY; /* §3.10: no new requests while the transfer is underway */
        return;
    }
    up->submit_index = last_index(r) + 1;
    up->submit_term = r->term;
    for (uint32_t i = 0; i < ev->submit.n_entries; i++) {
        struct raft_entry e = ev->submit.entries[i];
        e.term = r->term;
        if (e.type != RAFT_ENTRY_NOOP) {
            e.type = RAFT_ENTRY_COMMAND;
        }
        log_append_one(r, &e);
    }
    if (r->unpersisted_since_ms == 0) {
        r->unpersisted_since_ms = r->now_ms;
    }
    broadcast_append(r, 0);
}

static void on_read(struct raft *r, const struct raft_event *ev)
{
    if (r->role != RAFT_LEADER) {
        for (uint32_t i = 0; i < ev->read.n_ids; i++) {
            read_out(r, ev->read.ids[i], 0, 0);
        }
        return;
    }
    if (r->n_reads + ev->read.n_ids > r->cap_reads) {
        r->cap_reads = HY_MAX(r->cap_reads * 2, r->n_reads + ev->read.n_ids);
        r->reads = hy_xrealloc(r->reads, r->cap_reads * sizeof(*r->reads));
    }
    /* §6.4: "The leader saves its current commit index in a local variable readIndex." All
     * reads of this step share one heartbeat round (batching). */
    for (uint32_t i = 0; i < ev->read.n_ids; i++) {
        r->reads[r->n_reads++] = (struct raft_pending_read){
            .id = ev->read.ids[i], .seq = r->read_seq + 1, .index = r->commit_index};
    }
    r->read_round_wanted = 1;
}

static int change_membership(struct raft *r, uint32_t op, raft_id id, struct raft_membership *m)
{
    int i = membership_find(m, id);
    switch (op) {
    case RAFT_ADD_LEARNER:
        if (i >= 0 || m->count == RAFT_SERVERS_MAX || id == RAFT_NONE) {
            return HY_EINVAL;
        }
        m->servers[m->count++] = (struct raft_server){.id = id, .role = RAFT_LEARNER};
        return HY_OK;
    case RAFT_PROMOTE: {
        if (i < 0 || m->servers[i].role != RAFT_LEARNER) {
            return HY_EINVAL;
        }
        /* §4.2.1: the new server joins "as a non-voting member" and is promoted only once
         * caught up (catchup_note), so that the cluster does not wait on it to commit. A server
         * that never answers stays a learner ("The leader should abort the change if the new
         * server is unavailable or is so slow that it will never catch up"). */
        const struct raft_progress *p = progress_of(r, id);
        if (p == NULL || !catchup_done(r, p)) {
            return HY_EAGAIN;
        }
        HY_ASSERT(p->match_index > 0);
        m->servers[i].role = RAFT_VOTER;
        return HY_OK;
    }
    case RAFT_REMOVE:
        if (i < 0) {
            return HY_EINVAL;
        }
        m->servers[i] = m->servers[--m->count];
        return voter_count(m) > 0 ? HY_OK : HY_EINVAL;
    default: return HY_EINVAL;
    }
}

/* Appends configuration m as an entry of this term (in force at once, §4.1) and reports its
 * position as the submit result. */
static void append_config(struct raft *r, const struct raft_membership *m, struct raft_update *up)
{
    uint8_t buf[4 + RAFT_SERVERS_MAX * 9];
    struct raft_entry e = {.term = r->term, .type = RAFT_ENTRY_CONFIG};
    e.len = (uint32_t)raft_membership_encode(m, buf);
    e.data = buf;
    log_append_one(r, &e);
    up->submit_index = last_index(r);
    up->submit_term = r->term;
}

/* §4.1: "only one server can be added or removed from the cluster at a time"; the leader
 * "appends the new configuration (Cnew) as an entry in its log". A second change waits until
 * the first is committed, and (the single-server errata) until the leader has committed an
 * entry of its own term. */
static void on_change(struct raft *r, const struct raft_event *ev, struct raft_update *up)
{
    if (r->role != RAFT_LEADER) {
        up->status = HY_ENOTLEADER;
        return;
    }
    if (r->membership_index > r->commit_index || r->commit_index < r->term_start_index ||
        r->transfer_target != RAFT_NONE) {
        up->status = HY_EBUSY;
        return;
    }
    struct raft_membership m = r->membership;
    up->status = change_membership(r, ev->change.op, ev->change.id, &m);
    if (up->status != HY_OK) {
        return;
    }
    append_config(r, &m, up);
    if (!raft_membership_is_voter(&m, r->cfg.id)) {
        r->step_down_removed = last_index(r);
    }
    if (r->unpersisted_since_ms == 0) {
        r->unpersisted_since_ms = r->now_ms;
    }
    broadcast_append(r, 0);
}

static void on_transfer(struct raft *r, const struct raft_event *ev, struct raft_update *up)
{
    raft_id target = ev->transfer.target;
    if (r->role != RAFT_LEADER) {
        up->status = HY_ENOTLEADER;
        return;
    }
    if (target == r->cfg.id || !raft_membership_is_voter(&r->membership, target)) {
        up->status = HY_EINVAL;
        return;
    }
    if (r->transfer_target != RAFT_NONE) {
        up->status = HY_EBUSY;
        return;
    }
    r->transfer_target = target;
    r->transfer_deadline_ms = r->now_ms + r->cfg.election_timeout_min_ms;
    struct raft_progress *p = progress_of(r, target);
    transfer_maybe_fire(r, p);
    send_append(r, p, 0);
}

/* RAFT_EV_FORCE (raft.h): unsafe recovery from the permanent loss of a majority. */
static void on_force(struct raft *r, struct raft_update *up)
{
    if (r->role == RAFT_LEADER) {
        up->status = HY_EEXIST;
        return;
    }
    struct raft_membership m = r->membership;
    int self = membership_find(&m, r->cfg.id);
    if (self < 0) {
        if (m.count == RAFT_SERVERS_MAX) {
            up->status = HY_EINVAL;
            return;
        }
        self = (int)m.count++;
        m.servers[self].id = r->cfg.id;
    }
    for (uint32_t i = 0; i < m.count; i++) {
        m.servers[i].role = (int)i == self ? RAFT_VOTER : RAFT_LEARNER;
    }
    hy_log(r->cfg.log, HY_LOG_WARN,
           "raft %llu: FORCED to be the only voter (operator confirmed data loss); %u others "
           "become learners",
           (unsigned long long)r->cfg.id, m.count - 1);
    r->membership = m; /* in force at once; the entry below makes it durable */
    /* Not term + 1: a lost member may have led that term unknown to this node (it was not
     * among the voters), and a lost member that comes back with its disk could then hold
     * entries of the same index and term as ours, which Log Matching would take for ours
     * (moved-mode seed 6; with partitions seed 7 --partitions 8, where a live survivor of
     * that term took the forced node for its leader). A gap of 2^20 terms would need a million
     * elections the survivor never heard of (days of failed elections); terms are 64 bits.
     * Plus a number below 2^20 drawn from this server's id: two survivors forced from the same
     * term (a misuse FORCE-QUORUM's rules refuse where they can tell, member.c) lead different
     * terms, so Log Matching tells their histories apart and the one that meets the other's
     * entries refuses or replaces them, instead of taking equal (index, term) pairs for one
     * entry (campaign seed 2807000521: two leaders of term 2^20 + 2 of one group). */
    set_term_vote(r, r->term + RAFT_FORCE_TERM_GAP + r->cfg.id % RAFT_FORCE_TERM_GAP, r->cfg.id);
    become_leader(r);
    append_config(r, &m, up);
    broadcast_append(r, 0);
}

/* The caller snapshotted its state machine at ev->snapshot.index (§5.1): keep the bytes for
 * lagging followers and drop the log behind it, minus a trailing window that lets slightly
 * lagging followers catch up from the log instead. */
static void on_snapshot_taken(struct raft *r, const struct raft_event *ev, struct raft_update *up)
{
    uint64_t index = ev->snapshot.index;
    /* index == the log's base happens once raft_release_applied moved it there. */
    if (index <= r->snapshot_index || index > r->commit_index || index > last_index(r) ||
        index < r->log.snap_index) {
        up->status = HY_EINVAL;
        return;
    }
    kept_take_latest(r);
    r->snapshot_index = index;
    r->snapshot_term = raft_log_term(&r->log, index);
    hy_free(r->snap_data);
    r->snap_data = ev->snapshot.len && !r->cfg.snapshot_on_disk
                       ? hy_xmemdup(ev->snapshot.data, ev->snapshot.len)
                       : NULL;
    r->snap_len = ev->snapshot.len;
    r->snap_crc_index = 0;
    uint64_t trailing = r->cfg.snapshot_trailing;
    uint64_t base = index > trailing ? kept_pin(r, index - trailing) : 0;
    if (base > r->log.snap_index) {
        /* snap_membership describes the log base: compute it before the entries go. */
        struct raft_membership m;
        membership_at(r, base, &m);
        raft_log_compact(&r->log, base);
        r->snap_membership = m;
    }
    if (r->snapshot_needed && r->snapshot_index >= r->log.snap_index) {
        r->snapshot_needed = 0;
        if (r->role == RAFT_LEADER) {
            broadcast_append(r, 0); /* the followers that waited for it (snap_sent_ms 0) */
        }
    }
}

void raft_release_applied(struct raft *r, uint64_t applied)
{
    uint64_t upto = HY_MIN(HY_MIN(applied, r->commit_index), r->persisted_index);
    if (r->cfg.mutation == RAFT_MUT_RELEASE_UNAPPLIED) {
        upto = r->persisted_index;
    }
    /* Finding what to keep walks back over up to applied_keep entries: it is done once a
     * quarter of that many more have applied, not after every apply (at -P 1, where a group
     * commit applies a few entries, the walk after each was 16% of a SET's instructions), or
     * once the log holds a quarter more bytes than applied_keep_bytes: large entries (50 KiB
     * hashes) would otherwise stay in memory by the thousand, 64 MiB of them, until a snapshot
     * (test_allkeys_lru_with_hashes_stays_bounded). */
    uint64_t keep_bytes = r->cfg.applied_keep_bytes;
    if (upto <= r->log.snap_index) {
        return;
    }
    if (upto <= r->log.snap_index + r->cfg.applied_keep + r->cfg.applied_keep / 4 &&
        (keep_bytes == 0 || r->log.data_bytes <= keep_bytes + keep_bytes / 4)) {
        return;
    }
    /* Keep the last applied_keep entries, fewer when they exceed applied_keep_bytes. */
    uint64_t kept = 0, bytes = 0;
    while (kept < r->cfg.applied_keep && upto - kept > r->log.snap_index) {
        uint32_t len = raft_log_get(&r->log, upto - kept)->len;
        if (r->cfg.applied_keep_bytes != 0 && bytes + len > r->cfg.applied_keep_bytes) {
            break;
        }
        bytes += len;
        kept++;
    }
    upto -= kept;
    if (r->role == RAFT_LEADER) {
        for (uint32_t i = 0; i < r->membership.count; i++) {
            const struct raft_progress *p = &r->progress[i];
            if (p->id != r->cfg.id) {
                upto = HY_MIN(upto, p->match_index);
            }
        }
    }
    if (upto > r->log.snap_index && upto <= last_index(r)) {
        /* snap_membership describes the log base: compute it before the entries go. */
        struct raft_membership m;
        membership_at(r, upto, &m);
        raft_log_compact(&r->log, upto);
        r->snap_membership = m;
    }
    if (r->kept_index != 0 && !transfers_of(r, r->kept_index, 0)) {
        kept_free(r); /* its transfers ended (installed, restarted, or no longer leader) */
    }
    /* A snapshot older than the log's base is never sent (send_snapshot_chunk asks for a newer
     * one): its bytes, as large as the encoded keyspace, need not stay in memory. */
    if (r->snap_data != NULL && r->snapshot_index < r->log.snap_index) {
        hy_free(r->snap_data);
        r->snap_data = NULL;
        r->snap_len = 0;
    }
}

static void on_start(struct raft *r, const struct raft_event *ev)
{
    raft_log_reset(&r->log, ev->start.snap_index, ev->start.snap_term);
    r->term = ev->start.term;
    r->vote = ev->start.vote;
    r->snapshot_index = ev->start.snap_index;
    r->snapshot_term = ev->start.snap_term;
    hy_free(r->snap_data);
    r->snap_data = ev->start.snap_len && !r->cfg.snapshot_on_disk
                       ? hy_xmemdup(ev->start.snap_data, ev->start.snap_len)
                       : NULL;
    r->snap_len = ev->start.snap_len;
    r->snap_crc_index = 0;
    r->snap_membership = ev->start.snap_index ? ev->start.snap_membership : ev->start.bootstrap;
    for (uint32_t i = 0; i < ev->start.n_entries; i++) {
        raft_log_append(&r->log, &ev->start.entries[i]);
    }
    membership_recompute(r);
    r->commit_index = ev->start.snap_index;
    r->persisted_index = last_index(r);
    r->role = RAFT_FOLLOWER;
    r->leader = RAFT_NONE;
    /* With leases, a restarted server may have acknowledged a leader's lease just before it
     * crashed: it waits one minimum election timeout before voting, as if it had just heard
     * the leader, so that the lease holds across its restart. */
    if (r->cfg.lease_ms > 0) {
        r->stickiness_until_ms = r->now_ms + r->cfg.election_timeout_min_ms;
    }
    reset_election_timer(r);
}

static void on_persisted(struct raft *r, const struct raft_event *ev)
{
    uint64_t index = ev->persisted.index;
    if (index > last_index(r) || raft_log_term(&r->log, index) != ev->persisted.term) {
        return; /* a write of entries since truncated */
    }
    if (index > r->persisted_index) {
        r->persisted_index = index;
    }
    if (r->role != RAFT_LEADER) {
        return;
    }
    if (leader_running_late(r)) {
        become_follower(r, r->term, RAFT_NONE, "running late");
        return;
    }
    r->unpersisted_since_ms = r->persisted_index < last_index(r) ? r->now_ms : 0;
    /* §10.2.1: "the leader uses its own match index to indicate the latest entry to have been
     * durably written to its disk." */
    leader_maybe_commit(r);
}

/* ---- the step ------------------------------------------------------------------------------ */

static void resolve_entries(struct raft *r)
{
    for (size_t i = 0; i < r->n_msgs; i++) {
        struct raft_message *m = &r->msgs[i];
        if (m->type == RAFT_MSG_APPEND && m->n_entries > 0) {
            m->entries = raft_log_get(&r->log, m->prev_index + 1);
            HY_ASSERT(m->entries != NULL);
            HY_ASSERT(raft_log_get(&r->log, m->prev_index + m->n_entries) != NULL);
        }
    }
}

static uint64_t next_timeout(const struct raft *r)
{
    if (r->quiesced) {
        return 0; /* no timer at all */
    }
    if (r->role != RAFT_LEADER) {
        return r->election_deadline_ms;
    }
    uint64_t t = r->heartbeat_deadline_ms;
    if (r->transfer_target != RAFT_NONE) {
        t = HY_MIN(t, r->transfer_deadline_ms);
    }
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *p = &r->progress[i];
        if (p->state == PROG_SNAPSHOT && p->snap_retry_ms != 0) {
            t = HY_MIN(t, p->snap_retry_ms);
        }
    }
    return t;
}

static void fill_update(struct raft *r, struct raft_update *up)
{
    if (r->term_vote_dirty) {
        up->term_vote_changed = 1;
        up->term = r->term;
        up->vote = r->vote;
        if (r->cfg.mutation == RAFT_MUT_FORGET_VOTE && r->vote != r->cfg.id) {
            up->vote = RAFT_NONE;
        }
    }
    if (r->snapshot_dirty) {
        up->snapshot_install = 1;
        up->snap_index = r->snapshot_index;
        up->snap_term = r->snapshot_term;
        up->snap_membership = r->snap_membership;
        up->snap_data = r->snap_data;
        up->snap_len = r->snap_len;
    }
    if (r->chunk_dirty) {
        up->chunk = 1;
        up->chunk_index = up->snapshot_install ? r->snapshot_index : r->recv_index;
        up->chunk_term = up->snapshot_install ? r->snapshot_term : r->recv_term;
        up->chunk_membership = r->recv_membership;
        up->chunk_offset = r->chunk_offset;
        up->chunk_total = up->snapshot_install ? r->snap_len : r->recv_total;
        up->chunk_crc = up->snapshot_install ? r->chunk_crc : r->recv_want;
        up->chunk_len = r->chunk_len;
        up->chunk_data = r->chunk_len ? r->recv_data : NULL;
    }
    if (r->append_first) {
        up->entries_first_index = r->append_first;
        up->n_entries = (uint32_t)(last_index(r) + 1 - r->append_first);
        up->entries = up->n_entries ? raft_log_get(&r->log, r->append_first) : NULL;
    }
    resolve_entries(r);
    up->n_messages = (uint32_t)r->n_msgs;
    up->messages = r->msgs;
    up->commit_index = r->commit_index;
    if (r->cfg.mutation == RAFT_MUT_APPLY_UNCOMMITTED && r->role == RAFT_FOLLOWER) {
        up->commit_index = last_index(r);
    }
    up->n_reads = (uint32_t)r->n_out_reads;
    up->reads = r->out_reads;
    up->snapshot_wanted = r->cfg.snapshot_threshold &&
                          r->commit_index >= r->snapshot_index + r->cfg.snapshot_threshold;
    if (r->role != RAFT_LEADER) {
        r->snapshot_needed = 0; /* a new leader finds out again */
    } else if (r->snapshot_needed) {
        up->snapshot_needed = 1;
        up->snapshot_wanted = 1;
    }
    up->timeout_ms = next_timeout(r);
    r->timeout_armed_ms = up->timeout_ms;
}

static void flush_read_round(struct raft *r)
{
    if (!r->read_round_wanted) {
        return;
    }
    r->read_round_wanted = 0;
    if (r->role != RAFT_LEADER) {
        return;
    }
    quiesce_round_void(r); /* its heartbeats do not ask to quiesce */
    r->read_seq++;
    release_reads(r);
    if (r->n_reads > 0) {
        broadcast_append(r, 1);
    }
}

int raft_step(struct raft *r, const struct raft_event *ev, struct raft_update *up)
{
    memset(up, 0, sizeof(*up));
    r->n_msgs = 0;
    r->n_out_reads = 0;
    r->append_first = 0;
    r->term_vote_dirty = 0;
    r->snapshot_dirty = 0;
    r->chunk_dirty = 0;
    if (r->cfg.snapshot_recv_external && r->recv_index == 0 && r->recv_data != NULL) {
        /* The last chunk of a transfer that ended (installed or dropped) went with the last
         * update: no group keeps a chunk's buffer while it receives nothing. */
        hy_free(r->recv_data);
        r->recv_data = NULL;
        r->recv_cap = 0;
    }
    if (r->cfg.snapshot_on_disk && r->snap_data != NULL) {
        /* An installed snapshot's bytes were the last update's, for the caller to apply and
         * persist; from its disk it streams them to followers. */
        hy_free(r->snap_data);
        r->snap_data = NULL;
    }
    if (ev->now_ms > r->now_ms) {
        r->now_ms = ev->now_ms;
    }
    if (r->quiesced && r->role == RAFT_LEADER &&
        (ev->type == RAFT_EV_SUBMIT || ev->type == RAFT_EV_READ || ev->type == RAFT_EV_CHANGE ||
         ev->type == RAFT_EV_TRANSFER)) {
        wake(r); /* a proposal, a read, a membership change or a transfer */
    }
    switch (ev->type) {
    case RAFT_EV_START: on_start(r, ev); break;
    case RAFT_EV_RECEIVE: on_receive(r, ev->receive.msg); break;
    case RAFT_EV_PERSISTED: on_persisted(r, ev); break;
    case RAFT_EV_SNAPSHOT_DONE: break;
    case RAFT_EV_TIMEOUT: on_timeout(r, ev); break;
    case RAFT_EV_SUBMIT: on_submit(r, ev, up); break;
    case RAFT_EV_SNAPSHOT: on_snapshot_taken(r, ev, up); break;
    case RAFT_EV_READ: on_read(r, ev); break;
    case RAFT_EV_CHANGE: on_change(r, ev, up); break;
    case RAFT_EV_TRANSFER: on_transfer(r, ev, up); break;
    case RAFT_EV_FORCE: on_force(r, up); break;
    case RAFT_EV_LIVENESS:
        on_liveness(r, ev->liveness.id, ev->liveness.alive, ev->liveness.suspect);
        break;
    case RAFT_EV_LEADER_BUSY: on_leader_busy(r, ev->busy.leader, ev->busy.term); break;
    case RAFT_EV_FOLLOWER_BUSY: on_follower_busy(r, ev->busy.leader); break;
    default: up->status = HY_EINVAL; break;
    }
    flush_read_round(r);
    fill_update(r, up);
    return up->status == HY_EINVAL ? HY_EINVAL : HY_OK;
}

/* ---- lifecycle and queries --------------------------------------------------------------- */

void raft_config_default(struct raft_config *cfg, raft_id id)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = id;
    cfg->seed = id;
    cfg->election_timeout_min_ms = 150;
    cfg->election_timeout_max_ms = 300;
    cfg->heartbeat_ms = 50;
    cfg->inflight_max = 16;
    cfg->batch_entries_max = 512;
    cfg->batch_bytes_max = 1024 * 1024;
    cfg->snapshot_threshold = 8192;
    cfg->snapshot_trailing = 1024;
    cfg->applied_keep = 64;
    cfg->applied_keep_bytes = 1 << 20;
    cfg->snapshot_chunk_bytes = 64 * 1024;
    cfg->lease_ms = 0;
    cfg->clock_drift_ppm = 50000;
    cfg->late_bound_ms = 0;
}

void raft_init(struct raft *r, const struct raft_config *cfg)
{
    memset(r, 0, sizeof(*r));
    r->cfg = *cfg;
    HY_ASSERT(cfg->id != RAFT_NONE);
    HY_ASSERT(cfg->election_timeout_min_ms > 0);
    HY_ASSERT(cfg->election_timeout_min_ms <= cfg->election_timeout_max_ms);
    HY_ASSERT(cfg->heartbeat_ms > 0);
    hy_prng_seed(&r->prng, cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ull));
    raft_log_init(&r->log);
    r->progress = hy_xcalloc(RAFT_SERVERS_MAX, sizeof(*r->progress));
    r->role = RAFT_FOLLOWER;
}

void raft_free(struct raft *r)
{
    for (uint32_t i = 0; r->role == RAFT_LEADER && i < RAFT_SERVERS_MAX; i++) {
        pacer_forget_slot(r, i); /* the pacer outlives the group */
    }
    raft_log_free(&r->log);
    hy_free(r->progress);
    hy_free(r->reads);
    hy_free(r->msgs);
    hy_free(r->out_reads);
    hy_free(r->snap_data);
    hy_free(r->kept_data);
    hy_free(r->recv_data);
    memset(r, 0, sizeof(*r));
}

enum raft_role raft_role(const struct raft *r)
{
    return r->role;
}

uint64_t raft_term(const struct raft *r)
{
    return r->term;
}

raft_id raft_leader(const struct raft *r)
{
    return r->leader;
}

uint64_t raft_commit_index(const struct raft *r)
{
    return r->commit_index;
}

uint64_t raft_last_index(const struct raft *r)
{
    return last_index(r);
}

void raft_memory_get(const struct raft *r, struct raft_memory *out)
{
    out->log_entries = r->log.count;
    out->log_bytes = r->log.cap * sizeof(struct raft_entry) + r->log.alloc_bytes;
    out->snapshot_bytes = (r->snap_data != NULL ? r->snap_len : 0) +
                          (r->kept_data != NULL ? r->kept_len : 0) + r->recv_cap;
}

int raft_snapshot_transfer(const struct raft *r, raft_id id, uint64_t *acked, uint64_t *total,
                           uint64_t *since_ms)
{
    if (r->role != RAFT_LEADER) {
        return 0;
    }
    for (uint32_t i = 0; i < r->membership.count; i++) {
        const struct raft_progress *p = &r->progress[i];
        if (p->id == id && p->id != r->cfg.id && p->state == PROG_SNAPSHOT &&
            (p->snap_index == r->snapshot_index || transfer_keeps(r, p)) && p->snap_index != 0) {
            *acked = p->snap_offset;
            *total = p->snap_index == r->snapshot_index ? r->snap_len : r->kept_len;
            *since_ms = p->snap_started_ms;
            return 1;
        }
    }
    return 0;
}

void raft_snapshot_yield(struct raft *r, raft_id id, int yield)
{
    for (uint32_t i = 0; r->role == RAFT_LEADER && i < r->membership.count; i++) {
        if (r->progress[i].id == id) {
            r->progress[i].snap_yield = yield != 0;
        }
    }
}

void raft_snapshot_recv_reset(struct raft *r)
{
    r->recv_index = 0;
    r->recv_len = 0;
}

uint64_t raft_snapshot_crc_mismatches(const struct raft *r)
{
    return r->stat_snapshot_crc_mismatches;
}

uint8_t *raft_snapshot_data_take(struct raft *r)
{
    if (!r->cfg.snapshot_on_disk) {
        return NULL;
    }
    uint8_t *data = r->snap_data;
    r->snap_data = NULL;
    return data;
}

int raft_membership_committed(const struct raft *r)
{
    return r->membership_index <= r->commit_index;
}

uint64_t raft_snapshot_index(const struct raft *r)
{
    return r->snapshot_index;
}

const struct raft_entry *raft_entry_get(const struct raft *r, uint64_t index)
{
    return raft_log_get(&r->log, index);
}

uint64_t raft_term_at(const struct raft *r, uint64_t index)
{
    return raft_log_term(&r->log, index);
}

const struct raft_membership *raft_membership(const struct raft *r)
{
    return &r->membership;
}

void raft_snapshot_membership(const struct raft *r, struct raft_membership *m_out)
{
    membership_at(r, r->snapshot_index, m_out);
}

int raft_follower_info(const struct raft *r, raft_id id, struct raft_follower *out)
{
    if (r->role != RAFT_LEADER || id == r->cfg.id) {
        return 0;
    }
    const struct raft_progress *p = progress_of((struct raft *)r, id);
    if (p == NULL) {
        return 0;
    }
    out->match_index = p->match_index;
    /* Quiesced: the node-level view stands for contact (raft.h). */
    out->last_heard_ms = r->quiesced && !p->down ? UINT64_MAX : p->last_heard_ms;
    out->answered = p->heard;
    out->caught_up = catchup_done(r, p);
    out->ahead = p->ahead;
    out->snap_yield = snapshot_yields(r, p);
    out->snapshot = p->state == PROG_SNAPSHOT;
    return 1;
}

uint64_t raft_leader_contact_ms(const struct raft *r)
{
    if (r->quiesced && r->role == RAFT_FOLLOWER) {
        return UINT64_MAX; /* quiesced: no news is good news (raft.h) */
    }
    return r->role == RAFT_LEADER ? r->now_ms : r->leader_contact_ms;
}

const char *raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "?";
}

const char *raft_msg_type_name(uint32_t type)
{
    static const char *names[RAFT_MSG_TYPE_COUNT] = {
        "?",           "vote",     "vote-resp",     "append",
        "append-resp", "snapshot", "snapshot-resp", "timeout-now"};
    return type < RAFT_MSG_TYPE_COUNT ? names[type] : "?";
}
