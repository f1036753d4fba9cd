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

#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define BUSY_F_ACTIVE   1u /* a script runs there */
#define BUSY_F_EVAL     2u /* EVAL and friends (SCRIPT KILL), else a function (FUNCTION KILL) */
#define BUSY_F_KILLABLE 4u /* a probe or a read-only run: SCRIPT KILL stops it */
#define BUSY_GROUPS_MAX 4096

static void bulk_u64(struct hy_buf *out, uint64_t v)
{
    char txt[24];
    int len = snprintf(txt, sizeof(txt), "%llu", (unsigned long long)v);
    hy_buf_printf(out, "$%d\r\n%s\r\n", len, txt);
}

void node_busy_notice(struct hy_node *n, uint64_t now_ms, struct hy_buf *out)
{
    const struct node_script_busy *b = &n->script_busy;
    size_t led = 0;
    for (size_t i = 0; i < n->group_count; i++) {
        led += replica_is_leader(n->groups[i]);
    }
    unsigned flags = 0;
    if (b->active) {
        flags =
            BUSY_F_ACTIVE | (b->is_eval ? BUSY_F_EVAL : 0) | (b->killable ? BUSY_F_KILLABLE : 0);
    }
    uint64_t ran =
        b->active && b->started_ms != 0 && now_ms > b->started_ms ? now_ms - b->started_ms : 0;
    hy_buf_printf(out, "*%zu\r\n$4\r\nBUSY\r\n", 3 + 2 * (flags != 0 ? led : 0));
    bulk_u64(out, flags);
    bulk_u64(out, ran);
    for (size_t i = 0; flags != 0 && i < n->group_count; i++) {
        const struct node_group *g = n->groups[i];
        if (replica_is_leader(g)) {
            bulk_u64(out, g->id);
            bulk_u64(out, raft_term(&g->raft));
        }
    }
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

/* The notice's groups: each of this node's groups that `from` leads in that term hears that
 * its leader is alive. */
static void peer_busy_groups(struct hy_node *n, const struct node_member *m, size_t argc,
                             const struct resp_arg *argv, uint64_t now_ms)
{
    for (size_t i = 3; i + 1 < argc; i += 2) {
        uint64_t group, term;
        if (arg_u64(&argv[i], &group) && arg_u64(&argv[i + 1], &term) && group <= UINT32_MAX) {
            replica_leader_busy(n, (uint32_t)group, m->id, term, now_ms);
        }
    }
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

void node_peer_busy(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                    uint64_t now_ms)
{
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    size_t consumed = 0, argc = 0;
    const struct resp_arg *argv = NULL;
    uint64_t flags = 0, ran = 0;
    const struct node_member *m = member_named(n, from);
    if (resp_request_parse(&p, data, len, &consumed, &argc, &argv) != HY_OK || consumed != len ||
        argc < 3 || argc % 2 == 0 || argc > 3 + 2 * BUSY_GROUPS_MAX ||
        !node_arg_is(&argv[0], "BUSY") || !arg_u64(&argv[1], &flags) || !arg_u64(&argv[2], &ran) ||
        m == NULL) {
        hy_log(n->log, HY_LOG_WARN, "peer %s: malformed busy notice dropped", from);
        resp_request_parser_free(&p);
        return;
    }
    if (!(flags & BUSY_F_ACTIVE)) {
        node_peer_busy_forget(n, from);
    } else {
        struct node_peer_busy *b = peer_busy_slot(n, from, 1);
        if (b != NULL) {
            b->flags = (unsigned)flags;
            b->started_ms = now_ms - HY_MIN(ran, now_ms);
            b->until_ms = now_ms + NODE_BUSY_NOTICE_TTL_MS;
        }
        peer_busy_groups(n, m, argc, argv, now_ms);
    }
    resp_request_parser_free(&p);
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
        if (pick == NULL || ((p->flags & BUSY_F_KILLABLE) && !(pick->flags & BUSY_F_KILLABLE))) {
            pick = p;
        }
        i++;
    }
    return pick;
}

int node_busy_elsewhere(struct hy_node *n, struct node_client *c, const struct cmd_def *d,
                        size_t argc, const struct resp_arg *argv, uint64_t now_ms)
{
    if (n->peer_busy_count == 0 || c->is_proxy) {
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
        struct node_group *g = node_command_group(n, d, argc, argv);
        struct cmd_ctx x = {.node = n,
                            .group = g,
                            .store = g->store,
                            .client = c,
                            .cmd = d,
                            .argc = argc,
                            .argv = argv,
                            .now_ms = now_ms,
                            .w = {.out = &c->out, .proto = c->proto}};
        return proxy_forward_to(&x, m);
    }
    if (now_ms - HY_MIN(p->started_ms, now_ms) < (uint64_t)n->cfg->busy_reply_threshold) {
        return 0; /* not past this node's threshold yet: it waits, as Redis's client would */
    }
    struct resp_writer w = {&c->out, c->proto};
    node_multi_busy(c, d, &w, node_busy_text((p->flags & BUSY_F_EVAL) != 0));
    return 1;
}
