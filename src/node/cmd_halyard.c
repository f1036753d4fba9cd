/*
 * cmd_halyard.c - HALYARD STATUS|MEMBERS [JSON], FAILOVER [TO node], DRAIN, SNAPSHOT, and
 * JOIN|REMOVE|PEERS (member.c): the admin
 * commands halyctl is a thin shell over. Text for people, JSON for scripts; both report the
 * same facts as INFO replication and CLUSTER NODES.
 */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "node/node_internal.h"

/* Members shown: configured ones, and those the address book wants in (joining). */
static int member_shown(const struct hy_node *n, const struct node_member *m)
{
    return member_in_config(n, m->id) || m->role == STORE_MEMBER_VOTER ||
           m->role == STORE_MEMBER_OBSERVER;
}

static int has_quorum(const struct hy_node *n)
{
    /* A leader that lost its majority steps down within an election timeout (check-quorum,
     * §6.2), so "a leader is known" is this node's best knowledge of a working majority. */
    return raft_leader(&n->raft) != RAFT_NONE;
}

/* Replication lag of follower m as the leader sees it (entries behind its log, time since it
 * last answered). Only the leader knows it: returns 0 elsewhere. */
struct lag {
    uint64_t match, entries, contact_ms;
};

static int follower_lag(const struct hy_node *n, const struct node_member *m, struct lag *out)
{
    uint64_t heard;
    if (!raft_follower_progress(&n->raft, m->id, &out->match, &heard)) {
        return 0;
    }
    uint64_t last = raft_last_index(&n->raft);
    out->entries = last - HY_MIN(out->match, last);
    out->contact_ms = n->raft_now_ms - HY_MIN(heard, n->raft_now_ms);
    return 1;
}

static void status_json(struct cmd_ctx *x, struct hy_buf *b)
{
    struct hy_node *n = x->node;
    const struct node_member *leader = replica_leader_member(n);
    hy_buf_printf(b,
                  "{\"node\":\"%s\",\"role\":\"%s\",\"term\":%llu,\"leader\":%s%s%s,"
                  "\"has_quorum\":%s,\"commit_index\":%llu,\"applied_index\":%llu,"
                  "\"last_index\":%llu,\"snapshot_index\":%llu,\"members\":[",
                  n->cfg->node_id, raft_role_name(raft_role(&n->raft)),
                  (unsigned long long)raft_term(&n->raft), leader ? "\"" : "",
                  leader ? leader->name : "null", leader ? "\"" : "",
                  has_quorum(n) ? "true" : "false", (unsigned long long)raft_commit_index(&n->raft),
                  (unsigned long long)n->applied, (unsigned long long)raft_last_index(&n->raft),
                  (unsigned long long)raft_snapshot_index(&n->raft));
    int first = 1;
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (!member_shown(n, m)) {
            continue;
        }
        hy_buf_printf(b,
                      "%s{\"name\":\"%s\",\"address\":\"%s:%u\",\"peer\":\"%s:%u\",\"role\":\"%s\"",
                      first ? "" : ",", m->name, m->host, m->client_port, m->host, m->peer_port,
                      member_role_name(n, m));
        first = 0;
        struct lag lag;
        if (follower_lag(n, m, &lag)) {
            hy_buf_printf(b, ",\"match_index\":%llu,\"lag_entries\":%llu,\"last_contact_ms\":%llu",
                          (unsigned long long)lag.match, (unsigned long long)lag.entries,
                          (unsigned long long)lag.contact_ms);
        }
        hy_buf_append_str(b, "}");
    }
    hy_buf_append_str(b, "]}");
}

static void status_text(struct cmd_ctx *x, struct hy_buf *b)
{
    struct hy_node *n = x->node;
    const struct node_member *leader = replica_leader_member(n);
    hy_buf_printf(b,
                  "node: %s\nrole: %s\nterm: %llu\nleader: %s\nhas_quorum: %s\n"
                  "commit_index: %llu\napplied_index: %llu\nlast_index: %llu\n"
                  "snapshot_index: %llu\nmembers:\n",
                  n->cfg->node_id, raft_role_name(raft_role(&n->raft)),
                  (unsigned long long)raft_term(&n->raft), leader ? leader->name : "(none)",
                  has_quorum(n) ? "yes" : "no", (unsigned long long)raft_commit_index(&n->raft),
                  (unsigned long long)n->applied, (unsigned long long)raft_last_index(&n->raft),
                  (unsigned long long)raft_snapshot_index(&n->raft));
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (!member_shown(n, m)) {
            continue;
        }
        hy_buf_printf(b, "  %-12s %s:%u  %s%s", m->name, m->host, m->client_port,
                      member_role_name(n, m), m->id == n->raft.cfg.id ? " (this node)" : "");
        struct lag lag;
        if (follower_lag(n, m, &lag)) {
            hy_buf_printf(b, "  match %llu, lag %llu entries, last contact %llu ms ago",
                          (unsigned long long)lag.match, (unsigned long long)lag.entries,
                          (unsigned long long)lag.contact_ms);
        }
        hy_buf_append_str(b, "\n");
    }
}

static void halyard_status(struct cmd_ctx *x, int json)
{
    struct hy_buf b;
    hy_buf_init(&b);
    if (json) {
        status_json(x, &b);
        resp_write_bulk(&x->w, b.data, b.len);
    } else {
        status_text(x, &b);
        resp_write_verbatim(&x->w, "txt", b.data, b.len);
    }
    hy_buf_free(&b);
}

/* The voter other than this node best placed to take leadership, or RAFT_NONE: on a leader,
 * one heard from within an election timeout with the highest match index (a member that is
 * down would make a drain retry a transfer to it for ever); elsewhere the first one. */
static raft_id other_voter(const struct hy_node *n)
{
    raft_id first = RAFT_NONE, best = RAFT_NONE;
    uint64_t best_match = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        raft_id id = n->members[i].id;
        if (id == n->raft.cfg.id || !raft_membership_is_voter(raft_membership(&n->raft), id)) {
            continue;
        }
        first = first == RAFT_NONE ? id : first;
        uint64_t match, heard;
        if (raft_follower_progress(&n->raft, id, &match, &heard) &&
            n->raft_now_ms - HY_MIN(heard, n->raft_now_ms) <
                (uint64_t)n->cfg->election_timeout_ms &&
            (best == RAFT_NONE || match > best_match)) {
            best = id;
            best_match = match;
        }
    }
    return best != RAFT_NONE ? best : first;
}

int node_drained(const struct hy_node *n)
{
    return n->draining && (!replica_is_leader(n) || replica_voters(n) == 1);
}

const char *node_drain_outcome(const struct hy_node *n)
{
    if (!n->drain_led) {
        return "drained: this node did not lead, nothing to hand over";
    }
    return replica_is_leader(n) ? "drained: the only voter, no one to hand leadership to"
                                : "drained: leadership handed over";
}

/* Called from cron while draining: a transfer that aborted (the target was not caught up in
 * time) is tried again. */
void node_drain_step(struct hy_node *n, uint64_t now_ms)
{
    raft_id target = other_voter(n);
    if (n->draining && replica_is_leader(n)) {
        n->drain_led = 1;
    }
    if (n->draining && replica_is_leader(n) && target != RAFT_NONE) {
        (void)replica_transfer(n, target, now_ms); /* HY_EBUSY while one is under way */
    }
}

/* DRAIN: hand leadership to another voter, then stop accepting and exit (the shell watches
 * node_drained). A follower simply stops. */
static void halyard_drain(struct cmd_ctx *x)
{
    x->node->draining = 1;
    node_drain_step(x->node, x->now_ms);
    resp_write_simple(&x->w, "OK draining: this node stops once it no longer leads");
}

/* FAILOVER [TO name]: without a name, the first other voter. */
static void halyard_failover(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    raft_id target = RAFT_NONE;
    if (x->argc == 4 && node_arg_is(&x->argv[2], "TO")) {
        char name[NODE_MEMBER_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%.*s", (int)HY_MIN(x->argv[3].len, NODE_MEMBER_NAME_MAX),
                 (const char *)x->argv[3].ptr);
        target = node_member_id(name);
    } else if (x->argc != 2) {
        node_reply_syntax_error(x);
        return;
    }
    if (target == RAFT_NONE) {
        target = other_voter(n);
    }
    int rc = target == RAFT_NONE ? HY_EINVAL : replica_transfer(n, target, x->now_ms);
    if (rc == HY_OK) {
        resp_write_simple(&x->w, "OK transfer started");
    } else if (rc == HY_ENOTLEADER) {
        resp_write_error(&x->w, "ERR not the leader: run HALYARD FAILOVER on the leader");
    } else if (rc == HY_EBUSY) {
        resp_write_error(&x->w, "BUSY a leadership transfer is already under way");
    } else {
        resp_write_error(&x->w, "ERR no such voter to hand leadership to");
    }
}

void cmd_halyard(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    int json = x->argc == 3 && node_arg_is(&x->argv[2], "JSON");
    if ((node_arg_is(sub, "STATUS") || node_arg_is(sub, "MEMBERS")) && (x->argc == 2 || json)) {
        halyard_status(x, json);
    } else if (node_arg_is(sub, "FAILOVER")) {
        halyard_failover(x);
    } else if (node_arg_is(sub, "DRAIN") && x->argc == 2) {
        halyard_drain(x);
    } else if (node_arg_is(sub, "JOIN")) {
        cmd_halyard_join(x);
    } else if (node_arg_is(sub, "REMOVE")) {
        cmd_halyard_remove(x);
    } else if (node_arg_is(sub, "FORCE-QUORUM")) {
        cmd_halyard_force_quorum(x);
    } else if (node_arg_is(sub, "CHALLENGE")) {
        cmd_halyard_challenge(x);
    } else if (node_arg_is(sub, "PEER-AUTH")) {
        cmd_halyard_peer_auth(x);
    } else if (node_arg_is(sub, "PEERS") && x->argc == 2) {
        cmd_halyard_peers(x);
    } else if (node_arg_is(sub, "SNAPSHOT") && x->argc == 2) {
        int rc = replica_snapshot_now(x->node, x->now_ms);
        resp_write_simple(&x->w, rc == HY_OK ? "OK snapshot taken" : "OK nothing new to snapshot");
    } else {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for "
                          "'%.*s'. Try HALYARD STATUS.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}
