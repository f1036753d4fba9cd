/*
 * scenario.c - scripted membership scenarios of halyard-sim (--scenario NAME), for issue 20's
 * defect: a learner promoted before it has any data.
 *
 * Each scenario runs the usual world (network, disks, clocks, clients, every checker, the
 * linearizability check at the end) without random faults, plus a script driven by a tick
 * every 100 ms, which plays the node's membership reconciler: it asks the leader to promote
 * every learner that should become a voter, as src/node/member.c does from cron. The checks
 * of a scenario, after every step: a learner that never answered (a server that does not
 * exist, or one whose every connection is refused) is a voter in no server's configuration;
 * and at the end, a learner that did answer once it could has been promoted.
 *
 *  join-absent    one voter; a learner is added whose server does not exist. Writes go on.
 *  join-refused   one voter and a second server, started empty, that no message reaches in
 *                 either direction (another cluster-secret or cluster-name: the transport
 *                 refuses every connection, so Raft sees a server that never answers). When
 *                 faults stop the link works (the operator fixed the secret): it catches up
 *                 and is promoted.
 *  force-phantom  three voters and a learner that does not exist; two voters are lost, and
 *                 FORCE (halyctl cluster force-quorum) on the survivor with the most up-to-date
 *                 log makes it the only voter: it commits alone and the phantom stays a
 *                 learner. When faults stop the lost voters come back, catch up and are
 *                 promoted.
 */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "sim_int.h"

static const char *const scenario_names[SIM_SCEN_COUNT] = {
    [SIM_SCEN_NONE] = "none",
    [SIM_SCEN_JOIN_ABSENT] = "join-absent",
    [SIM_SCEN_JOIN_REFUSED] = "join-refused",
    [SIM_SCEN_FORCE_PHANTOM] = "force-phantom",
};

int sim_scenario_parse(const char *name)
{
    for (int i = 1; i < SIM_SCEN_COUNT; i++) {
        if (strcmp(name, scenario_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *sim_scenario_name(int scenario)
{
    return scenario > 0 && scenario < SIM_SCEN_COUNT ? scenario_names[scenario] : "none";
}

int sim_scenario_nodes(int scenario, int *voters_out)
{
    switch (scenario) {
    case SIM_SCEN_JOIN_ABSENT: *voters_out = 1; return 1;
    case SIM_SCEN_JOIN_REFUSED: *voters_out = 1; return 2;
    case SIM_SCEN_FORCE_PHANTOM: *voters_out = 3; return 3;
    default: HY_UNREACHABLE();
    }
}

/* The server nobody runs: one id past the simulated ones, so every message to it is lost. */
static raft_id phantom_id(const struct sim *s)
{
    return (raft_id)s->n + 1;
}

static int membership_has(const struct raft_membership *m, raft_id id, int *voter_out)
{
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->servers[i].id == id) {
            *voter_out = m->servers[i].role == RAFT_VOTER;
            return 1;
        }
    }
    return 0;
}

static void change(struct sim *s, struct sim_node *l, uint32_t op, raft_id id)
{
    struct raft_event ev = {.type = RAFT_EV_CHANGE};
    ev.change.op = op;
    ev.change.id = id;
    sim_node_event(s, l, &ev);
    sim_trace(s, "scenario: %s n%llu: %s", op == RAFT_ADD_LEARNER ? "add learner" : "promote",
              (unsigned long long)id, hy_status_name(l->last_status));
}

/* The reconciler: promote every learner that should vote (all but none here; the core
 * refuses those not caught up). */
static void reconcile(struct sim *s, struct sim_node *l)
{
    const struct raft_membership *m = raft_membership(&l->raft);
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->servers[i].role == RAFT_LEARNER) {
            change(s, l, RAFT_PROMOTE, m->servers[i].id);
            if (l->last_status == HY_OK) {
                s->scen.promotions++;
                return; /* one change at a time */
            }
        }
    }
}

static int leader_settled(const struct sim_node *l)
{
    return l != NULL && raft_commit_index(&l->raft) >= l->raft.term_start_index &&
           raft_commit_index(&l->raft) >= l->raft.membership_index;
}

/* The follower whose log is the most up-to-date (§3.6.1's comparison): it holds every
 * committed entry, so FORCE on it loses no acknowledged write. */
static int most_up_to_date_follower(struct sim *s, const struct sim_node *l)
{
    int best = -1;
    for (int i = 0; i < s->n; i++) {
        const struct raft *r = &s->nodes[i].raft;
        if (&s->nodes[i] == l || !s->nodes[i].up) {
            continue;
        }
        if (best < 0) {
            best = i;
            continue;
        }
        const struct raft *b = &s->nodes[best].raft;
        uint64_t t = raft_term_at(r, raft_last_index(r)), bt = raft_term_at(b, raft_last_index(b));
        if (t > bt || (t == bt && raft_last_index(r) > raft_last_index(b))) {
            best = i;
        }
    }
    return best;
}

/* force-phantom, once the phantom's configuration is committed: lose every voter but the
 * survivor for good, then (a second later, when no election can succeed) force it. */
static void force_phantom_step(struct sim *s, struct sim_node *l)
{
    struct sim_scenario *sc = &s->scen;
    if (sc->phase == 1 && leader_settled(l) && s->now >= sc->added_ms + 500) {
        sc->survivor = most_up_to_date_follower(s, l);
        HY_ASSERT(sc->survivor >= 0);
        for (int i = 0; i < s->n; i++) {
            if (i != sc->survivor) {
                sim_node_lose(s, &s->nodes[i]);
            }
        }
        sc->phase = 2;
        sc->lost_ms = s->now;
    } else if (sc->phase == 2 && s->now >= sc->lost_ms + 1000) {
        struct sim_node *nd = &s->nodes[sc->survivor];
        struct raft_event ev = {.type = RAFT_EV_FORCE};
        sim_node_event(s, nd, &ev);
        sim_trace(s, "scenario: FORCE on n%llu: %s", (unsigned long long)nd->id,
                  hy_status_name(nd->last_status));
        if (nd->last_status == HY_OK) {
            sc->phase = 3;
        }
    }
}

void sim_scenario_tick(struct sim *s)
{
    struct sim_scenario *sc = &s->scen;
    struct sim_node *l = sim_leader(s);
    if (sc->phase == 0 && leader_settled(l)) {
        raft_id learner = s->o.scenario == SIM_SCEN_JOIN_REFUSED ? 2 : phantom_id(s);
        change(s, l, RAFT_ADD_LEARNER, learner);
        if (l->last_status == HY_OK) {
            sc->phase = 1;
            sc->added_ms = s->now;
        }
    } else if (sc->phase >= 1 && l != NULL) {
        if (s->o.scenario == SIM_SCEN_FORCE_PHANTOM) {
            force_phantom_step(s, l);
            l = sim_leader(s);
        }
        if (l != NULL) {
            reconcile(s, l);
        }
    } else if (s->o.scenario == SIM_SCEN_FORCE_PHANTOM && sc->phase >= 2) {
        force_phantom_step(s, NULL);
    }
    struct sim_ev ev = {.at = s->now + 100, .kind = EV_SCENARIO};
    sim_push(s, &ev);
}

void sim_scenario_setup(struct sim *s)
{
    if (s->o.scenario == SIM_SCEN_JOIN_REFUSED) {
        s->block[0][1] = s->block[1][0] = 1; /* lifted when faults stop: the fix */
        s->net_faulted = 1;
    }
    struct sim_ev ev = {.at = 300, .kind = EV_SCENARIO};
    sim_push(s, &ev);
}

/* A server that never answered while it could not: the phantom always; the refused server
 * until faults stop. */
static int never_answers(const struct sim *s, raft_id id)
{
    return id == phantom_id(s) ||
           (s->o.scenario == SIM_SCEN_JOIN_REFUSED && id == 2 && !s->healing);
}

void sim_scenario_check(struct sim *s, const struct sim_node *nd)
{
    if (s->o.scenario == SIM_SCEN_NONE || s->failed) {
        return;
    }
    const struct raft_membership *m = raft_membership(&nd->raft);
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->servers[i].role == RAFT_VOTER && never_answers(s, m->servers[i].id)) {
            sim_fail(s,
                     "scenario %s: n%llu, which never answered, is a voter in n%llu's "
                     "configuration",
                     sim_scenario_name(s->o.scenario), (unsigned long long)m->servers[i].id,
                     (unsigned long long)nd->id);
            return;
        }
    }
}

int sim_scenario_done(struct sim *s, const struct sim_node *l)
{
    if (s->o.scenario == SIM_SCEN_NONE) {
        return 1;
    }
    if (s->scen.phase == 0) {
        return 0;
    }
    /* Every simulated server is a voter in the end: the refused one and the lost voters once
     * they can answer again; the phantom stays a learner. */
    const struct raft_membership *m = raft_membership(&l->raft);
    for (int i = 0; i < s->n; i++) {
        int voter = 0;
        if (!membership_has(m, s->nodes[i].id, &voter) || !voter) {
            return 0;
        }
    }
    int voter = 0;
    return s->o.scenario == SIM_SCEN_JOIN_REFUSED ||
           (membership_has(m, phantom_id(s), &voter) && !voter);
}
