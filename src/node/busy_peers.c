/*
 * busy_peers.c - a Lua script that holds one node's event loop, as the other nodes and their
 * clients see it (docs/protocol.md "Busy scripts through a follower").
 *
 * A script runs inside one step of its node's loop (cmd_script.c): that node serves its own
 * clients from the script's poll (-BUSY, SCRIPT KILL), but nothing else runs there. Its
 * shell sends every peer a BUSY notice meanwhile (node_busy_notice): the script's state and
 * how long it has run, and the Raft groups the node leads with their terms. A peer that
 * receives one (node_peer_busy) keeps it for NODE_BUSY_NOTICE_TTL_MS unless renewed or ended
 * and
 *   - answers its own clients as the busy node would (node_busy_elsewhere) once the script
 *     has run this node's busy-reply-threshold: -BUSY, MULTI/DISCARD/EXEC as
 *     node_multi_busy, and SCRIPT KILL / FUNCTION KILL / FUNCTION STATS forwarded to the busy
 *     node, whose poll answers them (node_busy_forward): so a client of any node sees what a
 *     client of one Redis server sees;
 *   - tells each of its groups that the busy node leads in the notice's term that the leader
 *     is alive (RAFT_EV_LEADER_BUSY), so they do not elect another leader while the script
 *     runs (raft.c "Busy leaders").
 *
 * The notice is a RESP array of bulk strings, parsed with the request parser (a peer's bytes,
 * authenticated but not trusted): BUSY, flags, the ms the script has run, then group and term
 * pairs. Flags 0 ends a notice.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

static void bulk_u64(struct hy_buf *out, uint64_t v)
{
    char txt[24];
    int len = snprintf(txt, sizeof(txt), "%llu", (unsigned long long)v);
    hy_buf_printf(out, "$%d\r\n%s\r\n", len, txt);
}

void node_busy_notice_encode(struct hy_buf *out, const struct node_busy_notice *b)
{
    size_t pairs = b->flags != 0 ? b->count : 0;
    hy_buf_printf(out, "*%zu\r\n$4\r\nBUSY\r\n", 3 + 2 * pairs);
    bulk_u64(out, b->flags);
    bulk_u64(out, b->ran_ms);
    for (size_t i = 0; i < pairs; i++) {
        bulk_u64(out, b->group[i]);
        bulk_u64(out, b->term[i]);
    }
}

void node_busy_notice(struct hy_node *n, uint64_t now_ms, struct hy_buf *out)
{
    const struct node_script_busy *b = &n->script_busy;
    struct node_busy_notice nb = {0};
    if (b->active) {
        nb.flags = NODE_BUSY_F_ACTIVE | (b->is_eval ? NODE_BUSY_F_EVAL : 0) |
                   (b->killable ? NODE_BUSY_F_KILLABLE : 0) |
                   (b->replica ? NODE_BUSY_F_REPLICA : 0);
        nb.ran_ms = b->started_ms != 0 && now_ms > b->started_ms ? now_ms - b->started_ms : 0;
    }
    for (size_t i = 0; nb.flags != 0 && i < n->group_count; i++) {
        nb.count += replica_is_leader(n->groups[i]);
    }
    nb.group = hy_xcalloc(HY_MAX(nb.count, 1), sizeof(*nb.group));
    nb.term = hy_xcalloc(HY_MAX(nb.count, 1), sizeof(*nb.term));
    size_t k = 0;
    for (size_t i = 0; nb.flags != 0 && i < n->group_count; i++) {
        const struct node_group *g = n->groups[i];
        if (replica_is_leader(g)) {
            nb.group[k] = g->id;
            nb.term[k++] = raft_term(&g->raft);
        }
    }
    node_busy_notice_encode(out, &nb);
    node_busy_notice_free(&nb);
}

static int arg_u64(const struct resp_arg *a, uint64_t *out)
{
    int64_t v;
    if (!hy_parse_i64(a->ptr, a->len, &v) || v < 0) {
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

static struct node_peer_busy *peer_busy_slot(struct hy_node *n, const char *name, int add)
{
    for (size_t i = 0; i < n->peer_busy_count; i++) {
        if (strcmp(n->peer_busy[i].name, name) == 0) {
            return &n->peer_busy[i];
        }
    }
    if (!add || n->peer_busy_count == NODE_PEER_BUSY_MAX) {
        return NULL;
    }
    struct node_peer_busy *p = &n->peer_busy[n->peer_busy_count++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    return p;
}

void node_peer_busy_forget(struct hy_node *n, const char *name)
{
    struct node_peer_busy *p = peer_busy_slot(n, name, 0);
    if (p != NULL) {
        *p = n->peer_busy[--n->peer_busy_count];
    }
}

void node_busy_notice_free(struct node_busy_notice *b)
{
    hy_free(b->group);
    hy_free(b->term);
    memset(b, 0, sizeof(*b));
}

int node_busy_notice_parse(const uint8_t *data, size_t len, struct node_busy_notice *out)
{
    memset(out, 0, sizeof(*out));
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    size_t consumed = 0, argc = 0;
    const struct resp_arg *argv = NULL;
    uint64_t flags = 0;
    int ok = resp_request_parse(&p, data, len, &consumed, &argc, &argv) == HY_OK &&
             consumed == len && argc >= 3 && argc % 2 == 1 &&
             argc <= 3 + 2 * (size_t)NODE_BUSY_GROUPS_MAX && node_arg_is(&argv[0], "BUSY") &&
             arg_u64(&argv[1], &flags) && flags <= NODE_BUSY_F_ALL &&
             arg_u64(&argv[2], &out->ran_ms) && (flags != 0 || argc == 3);
    if (ok) {
        out->flags = (unsigned)flags;
        out->count = (argc - 3) / 2;
        out->group = hy_xcalloc(HY_MAX(out->count, 1), sizeof(*out->group));
        out->term = hy_xcalloc(HY_MAX(out->count, 1), sizeof(*out->term));
    }
    for (size_t i = 0; ok && i < out->count; i++) {
        uint64_t group = 0;
        ok = arg_u64(&argv[3 + 2 * i], &group) && group <= UINT32_MAX &&
             arg_u64(&argv[4 + 2 * i], &out->term[i]);
        out->group[i] = (uint32_t)group;
    }
    resp_request_parser_free(&p);
    if (!ok) {
        node_busy_notice_free(out);
    }
    return ok;
}

static const struct node_member *member_named(const struct hy_node *n, const char *name)
{
    for (size_t i = 0; i < n->member_count; i++) {
        if (strcmp(n->members[i].name, name) == 0) {
            return &n->members[i];
        }
    }
    return NULL;
}

/* Whether every group the notice says its node leads has a later term here: a leader deposed
 * while its script ran (it cannot learn it before the script ends). Its run is then one at
 * apply that no client waits for any more, as a follower's: the next leader answered the
 * script's client (its follower sent the script again there, under its session), and a
 * client here must not get -BUSY for it (scripting through a follower stopped so at a
 * FUNCTION LOAD). A notice naming no group (a script where reads run) is held as before. */
static int notice_deposed(const struct hy_node *n, const struct node_busy_notice *nb)
{
    for (size_t i = 0; i < nb->count; i++) {
        const struct node_group *g = node_group_get(n, nb->group[i]);
        if (g == NULL || raft_term(&g->raft) <= nb->term[i]) {
            return 0;
        }
    }
    return nb->count > 0;
}

/* Notes what the notice says of from's script; 0 when it is no notice. */
static int peer_busy_read(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                          uint64_t now_ms, struct node_busy_notice *nb)
{
    if (member_named(n, from) == NULL || !node_busy_notice_parse(data, len, nb)) {
        return 0;
    }
    if (!(nb->flags & NODE_BUSY_F_ACTIVE) || (nb->flags & NODE_BUSY_F_REPLICA) ||
        notice_deposed(n, nb)) {
        node_peer_busy_forget(n, from);
    } else {
        struct node_peer_busy *b = peer_busy_slot(n, from, 1);
        if (b != NULL) {
            b->flags = nb->flags;
            b->started_ms = now_ms - HY_MIN(nb->ran_ms, now_ms);
            b->until_ms = now_ms + NODE_BUSY_NOTICE_TTL_MS;
        }
    }
    return 1;
}

void node_peer_busy_note(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                         uint64_t now_ms)
{
    struct node_busy_notice nb;
    if (peer_busy_read(n, from, data, len, now_ms, &nb)) {
        node_busy_notice_free(&nb);
    }
}

void node_peer_busy(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                    uint64_t now_ms)
{
    struct node_busy_notice nb;
    if (!peer_busy_read(n, from, data, len, now_ms, &nb)) {
        hy_log(n->log, HY_LOG_WARN, "peer %s: malformed busy notice dropped", from);
        return;
    }
    const struct node_member *m = member_named(n, from);
    /* Each group here that `from` leads in that term hears that its leader is alive. */
    for (size_t i = 0; i < nb.count; i++) {
        replica_leader_busy(n, nb.group[i], m->id, nb.term[i], now_ms);
    }
    /* And each group this node leads hears that `from`, a follower there, is alive: busy at
     * apply, it reads nothing for as long as the script runs. */
    if (nb.flags & NODE_BUSY_F_ACTIVE) {
        replica_follower_busy(n, m->id, now_ms);
    }
    node_busy_notice_free(&nb);
}

int node_peer_busy_now(struct hy_node *n, const char *name, uint64_t now_ms)
{
    const struct node_peer_busy *p = peer_busy_slot(n, name, 0);
    return p != NULL && now_ms < p->until_ms;
}

/* The busy peer a client of this node deals with: one whose script can be killed first (a
 * kill then reaches it), else any; NULL when none. Notices past their time are dropped. */
static const struct node_peer_busy *peer_busy_pick(struct hy_node *n, uint64_t now_ms)
{
    const struct node_peer_busy *pick = NULL;
    for (size_t i = 0; i < n->peer_busy_count;) {
        const struct node_peer_busy *p = &n->peer_busy[i];
        if (now_ms >= p->until_ms) {
            n->peer_busy[i] = n->peer_busy[--n->peer_busy_count];
            continue;
        }
        if (pick == NULL ||
            ((p->flags & NODE_BUSY_F_KILLABLE) && !(pick->flags & NODE_BUSY_F_KILLABLE))) {
            pick = p;
        }
        i++;
    }
    return pick;
}

int node_busy_elsewhere(struct hy_node *n, struct node_client *c, const struct cmd_def *d,
                        size_t argc, const struct resp_arg *argv, uint64_t now_ms)
{
    if (n->peer_busy_count == 0 || c->is_proxy || c->block_deadline_ms != 0) {
        /* A forward from a peer is not refused; nor is a blocked command run again because
         * data came: it was accepted before, and in Redis a busy script leaves blocked
         * clients blocked, not answered -BUSY. */
        return 0;
    }
    const struct node_peer_busy *p = peer_busy_pick(n, now_ms);
    if (p == NULL) {
        return 0;
    }
    int kill = 0;
    if (node_busy_request_kind(d, argc, argv, &kill)) {
        /* Only the busy node can stop its script or say what runs: forwarded there, where
         * its poll answers at once. */
        const struct node_member *m = member_named(n, p->name);
        if (m == NULL || !n->member_up[m - n->members]) {
            return 0;
        }
        struct resp_writer w = {&c->out, c->proto};
        struct cmd_ctx x =
            node_busy_ctx(n, node_command_group(n, d, argc, argv), c, d, argc, argv, now_ms, w);
        c->forward_busy = 1;
        int sent = proxy_forward_to(&x, m);
        c->forward_busy = 0;
        return sent;
    }
    if (now_ms - HY_MIN(p->started_ms, now_ms) < (uint64_t)n->cfg->busy_reply_threshold) {
        return 0; /* not past this node's threshold yet: it waits, as Redis's client would */
    }
    /* A request that came before the script (it waited for a leader, or was forwarded and
     * is run again because its leader changed) is not refused: Redis refuses only the
     * commands that arrive while a script runs, and one already sent may have been applied,
     * so -BUSY ("not run") could be false. The busy script was often that very request: an
     * FCALL whose leader lost its leadership while it ran, answered -BUSY where it was sent
     * again under its session (scripting through a follower stopped so). */
    uint64_t arrived = c->retry_since_ms != 0 ? c->retry_since_ms : c->wait_start_ms;
    if (c->outcome_unsure || c->fwd_seq != 0 || (arrived != 0 && arrived <= p->started_ms)) {
        return 0;
    }
    struct resp_writer w = {&c->out, c->proto};
    node_multi_busy(c, d, &w, node_busy_text((p->flags & NODE_BUSY_F_EVAL) != 0));
    return 1;
}
