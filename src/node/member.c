/*
 * member.c - who the members are and where they live, and membership changes at run time.
 *
 * Two things describe the cluster, and they are kept apart on purpose:
 *  - the Raft configuration (raft.h): who votes and who only learns. It changes one server
 *    at a time through RAFT_EV_CHANGE, and only the leader changes it;
 *  - the address book (store.h, "cluster members"): each member's name, peer address and
 *    wanted role, replicated through the log like any write (STORE_OP_MEMBER_SET), so every
 *    node, and a node that joins or restarts without flags, learns every address.
 * HALYARD JOIN / REMOVE only write the address book. The leader then moves the configuration
 * towards it (member_reconcile, from cron): add a wanted member as a learner, promote it once
 * it has caught up (the core refuses before), remove a member marked "removed". Because the
 * book is replicated and the reconciler is level-triggered, a change survives the leader that
 * started it: the next leader finishes it.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"
#include "proto/wire.h"

/* ---- the member list ------------------------------------------------------------------- */

static void self_fill(const struct hy_node *n, struct node_member *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", n->cfg->node_id);
    snprintf(m->host, sizeof(m->host), "%s", n->cfg->bind);
    m->peer_port = (uint16_t)n->cfg->peer_port;
    /* The port clients reach: tls-port when the plain port is off (port 0). */
    m->client_port = (uint16_t)(n->cfg->port > 0 ? n->cfg->port : n->cfg->tls_port);
    m->id = node_member_id(m->name);
}

int member_load_boot(struct hy_node *n)
{
    char err[160];
    const char *list = n->cfg->bootstrap;
    n->boot_count = 0;
    if (list[0] == '\0') {
        if (!n->cfg->joined) {
            self_fill(n, &n->boot[0]);
            n->boot_count = 1;
        }
    } else if (node_members_parse(list, n->boot, RAFT_SERVERS_MAX, &n->boot_count, err) != HY_OK) {
        hy_log(n->log, HY_LOG_ERROR, "invalid %s list: %s", n->cfg->joined ? "join" : "bootstrap",
               err);
        return HY_ECONFIG;
    } else if (!n->cfg->joined &&
               node_member_find(n->boot, n->boot_count, node_member_id(n->cfg->node_id)) == NULL) {
        hy_log(n->log, HY_LOG_ERROR, "node-id '%s' is not in the bootstrap list", n->cfg->node_id);
        return HY_ECONFIG;
    }
    member_rebuild(n);
    return HY_OK;
}

static struct node_member *find_name(struct node_member *v, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(v[i].name, name) == 0) {
            return &v[i];
        }
    }
    return NULL;
}

/* Folds address-book entries into v (updating by name, appending new ones). */
static size_t overlay(struct node_member *v, size_t count, const struct store_member *book,
                      size_t n_book)
{
    for (size_t i = 0; i < n_book; i++) {
        const struct store_member *sm = &book[i];
        struct node_member *m = find_name(v, count, sm->name);
        if (m == NULL) {
            if (count == NODE_MEMBERS_MAX) {
                continue;
            }
            m = &v[count++];
            memset(m, 0, sizeof(*m));
            snprintf(m->name, sizeof(m->name), "%s", sm->name);
            m->id = node_member_id(m->name);
        }
        snprintf(m->host, sizeof(m->host), "%s", sm->host);
        m->peer_port = sm->peer_port;
        m->client_port = sm->peer_port > 10000 ? (uint16_t)(sm->peer_port - 10000) : 0;
        m->role = sm->role;
    }
    return count;
}

void member_rebuild(struct hy_node *n)
{
    struct node_member next[NODE_MEMBERS_MAX];
    memset(next, 0, sizeof(next));
    const struct store_member *book;
    size_t n_book = store_members(n->meta->store, &book);
    size_t count = overlay(next, 0, book, n_book);
    count = overlay(next, count, n->log_members, n->log_member_count);
    /* This node's own list (--bootstrap, or what it joined with) wins for the names it gives:
     * behind NAT or a proxy, members may reach one another at different addresses. */
    for (size_t i = 0; i < n->boot_count; i++) {
        struct node_member *m = find_name(next, count, n->boot[i].name);
        if (m == NULL && count < NODE_MEMBERS_MAX) {
            next[count++] = n->boot[i];
        } else if (m != NULL) {
            memcpy(m->host, n->boot[i].host, sizeof(m->host));
            m->peer_port = n->boot[i].peer_port;
            m->client_port = n->boot[i].client_port;
        }
    }
    /* This node is always a member of its own list, reachable where it really listens. */
    struct node_member self;
    self_fill(n, &self);
    struct node_member *me = find_name(next, count, self.name);
    if (me == NULL && count < NODE_MEMBERS_MAX) {
        me = &next[count++];
        *me = self;
    }
    if (me != NULL) {
        me->client_port = self.client_port;
    }
    if (count == n->member_count && memcmp(next, n->members, count * sizeof(next[0])) == 0) {
        return;
    }
    uint8_t up[NODE_MEMBERS_MAX];
    for (size_t i = 0; i < count; i++) {
        const struct node_member *old = find_name(n->members, n->member_count, next[i].name);
        up[i] = next[i].id == n->meta->raft.cfg.id ||
                (old != NULL && n->member_up[old - n->members] != 0);
    }
    memcpy(n->members, next, count * sizeof(next[0]));
    memcpy(n->member_up, up, count);
    n->member_count = count;
    n->members_epoch++;
}

void member_maybe_rebuild(struct hy_node *n)
{
    int drop_hints = n->log_member_count > 0 && n->meta->applied >= n->log_members_upto;
    if (drop_hints) {
        n->log_member_count = 0; /* the entries they came from are in the book now */
    }
    uint64_t version = store_members_version(n->meta->store);
    if (version != n->members_seen_version || drop_hints) {
        n->members_seen_version = version;
        member_rebuild(n);
    }
    if (n->meta->raft.membership_index != n->members_seen_config) {
        n->members_seen_config = n->meta->raft.membership_index;
        n->members_epoch++; /* the transport keeps removed members only while configured */
    }
}

void member_scan_log(struct hy_node *n, const struct raft_entry *entries, uint32_t count,
                     uint64_t first_index)
{
    for (uint32_t i = 0; i < count; i++) {
        struct store_entry e;
        if (entries[i].type != RAFT_ENTRY_COMMAND || entries[i].len < 2 ||
            entries[i].data[1] != STORE_OP_MEMBER_SET ||
            store_entry_decode(entries[i].data, entries[i].len, &e) != HY_OK) {
            continue;
        }
        int role = store_member_role_parse(e.argv[2].ptr, e.argv[2].len);
        if (role != 0 && e.argv[0].len <= STORE_MEMBER_NAME_MAX &&
            e.argv[1].len <= STORE_MEMBER_HOST_MAX && e.incr > 0 && e.incr <= 65535) {
            struct store_member sm;
            memset(&sm, 0, sizeof(sm));
            memcpy(sm.name, e.argv[0].ptr, e.argv[0].len);
            memcpy(sm.host, e.argv[1].ptr, e.argv[1].len);
            sm.peer_port = (uint16_t)e.incr;
            sm.role = (uint8_t)role;
            size_t k = 0;
            while (k < n->log_member_count && strcmp(n->log_members[k].name, sm.name) != 0) {
                k++;
            }
            if (k < STORE_MEMBERS_MAX) {
                n->log_members[k] = sm;
                n->log_member_count += k == n->log_member_count;
            }
        }
        store_entry_release(&e);
    }
    n->log_members_upto = first_index + count - 1;
    member_rebuild(n);
}

int node_group_has(const struct node_group *g, raft_id id)
{
    const struct raft_membership *m = raft_membership(&g->raft);
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->servers[i].id == id) {
            return 1;
        }
    }
    return 0;
}

int member_in_config(const struct hy_node *n, raft_id id)
{
    return node_group_has(n->meta, id);
}

const char *member_role_name(const struct hy_node *n, const struct node_member *m)
{
    if (member_in_config(n, m->id)) {
        if (raft_leader(&n->meta->raft) == m->id) {
            return "leader";
        }
        if (raft_membership_is_voter(raft_membership(&n->meta->raft), m->id)) {
            return m->role == STORE_MEMBER_REMOVED ? "leaving" : "follower";
        }
        return m->role == STORE_MEMBER_OBSERVER  ? "observer"
               : m->role == STORE_MEMBER_REMOVED ? "leaving"
                                                 : "learner";
    }
    if (m->role == STORE_MEMBER_VOTER || m->role == STORE_MEMBER_OBSERVER) {
        return "joining";
    }
    return m->role == STORE_MEMBER_REMOVED ? "removed" : "not-a-member";
}

/* ---- the leader's reconciler ---------------------------------------------------------------- */

static const struct store_member *book_find(const struct hy_node *n, const char *name)
{
    const struct store_member *book;
    size_t count = store_members(n->meta->store, &book);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(book[i].name, name) == 0) {
            return &book[i];
        }
    }
    return NULL;
}

/* A MEMBER_SET entry; args holds its three arguments and must outlive e. */
static void member_entry(struct store_entry *e, struct store_arg args[3], const char *name,
                         const char *host, uint16_t port, int role, uint32_t flags, uint64_t now_ms)
{
    const char *role_text = store_member_role_name((enum store_member_role)role);
    args[0] = (struct store_arg){(const uint8_t *)name, strlen(name)};
    args[1] = (struct store_arg){(const uint8_t *)host, strlen(host)};
    args[2] = (struct store_arg){(const uint8_t *)role_text, strlen(role_text)};
    *e = (struct store_entry){.op = STORE_OP_MEMBER_SET,
                              .flags = flags,
                              .time_ms = now_ms,
                              .expire_at_ms = -1,
                              .incr = port,
                              .argc = 3,
                              .argv = args};
}

/* Configured servers missing from the address book (a cluster formed from --bootstrap):
 * write what the bootstrap list says, so that restarts and new members learn them. With NX:
 * a HALYARD JOIN/REMOVE for the same name proposed meanwhile (not applied yet when the gap
 * was seen) wins whichever order the two apply in. */
static void fill_book_gaps(struct hy_node *n, uint64_t now_ms)
{
    if (n->meta->applied < n->meta->internal_index) {
        return; /* what we proposed last is not applied yet */
    }
    const struct raft_membership *cm = raft_membership(&n->meta->raft);
    struct hy_buf buf;
    hy_buf_init(&buf);
    for (uint32_t i = 0; i < cm->count; i++) {
        const struct node_member *m =
            node_member_find(n->members, n->member_count, cm->servers[i].id);
        if (m == NULL || book_find(n, m->name) != NULL || m->peer_port == 0) {
            continue;
        }
        struct store_entry e;
        struct store_arg args[3];
        member_entry(&e, args, m->name, m->host, m->peer_port,
                     cm->servers[i].role == RAFT_VOTER ? STORE_MEMBER_VOTER : STORE_MEMBER_OBSERVER,
                     STORE_F_NX, now_ms);
        hy_buf_reset(&buf);
        store_entry_encode(&e, &buf);
        node_propose_internal(n->meta, &buf);
    }
    hy_buf_free(&buf);
}

static uint32_t config_voters(const struct raft_membership *m)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        v += m->servers[i].role == RAFT_VOTER;
    }
    return v;
}

static const char *const change_names[] = {
    [RAFT_ADD_LEARNER] = "adding as a learner",
    [RAFT_PROMOTE] = "promoting to voter",
    [RAFT_REMOVE] = "removing",
};

/* One group's leader moves its configuration towards the address book (this node's replica
 * of the metadata group's: partitions follow the membership it publishes). */
static void reconcile_group(struct hy_node *n, struct node_group *g, uint64_t now_ms)
{
    const struct raft_membership *cm = raft_membership(&g->raft);
    const struct store_member *book;
    size_t count = store_members(n->meta->store, &book);
    int may_warn = now_ms >= n->member_warned_ms + 10000; /* about every member, now and then */
    for (size_t i = 0; i < count; i++) {
        const struct store_member *sm = &book[i];
        raft_id id = node_member_id(sm->name);
        int in = node_group_has(g, id);
        int voter = raft_membership_is_voter(cm, id);
        uint32_t op;
        if (sm->role == STORE_MEMBER_REMOVED && in) {
            if (voter && config_voters(cm) == 1) {
                continue; /* HALYARD REMOVE refuses this; a stale tombstone cannot force it */
            }
            op = RAFT_REMOVE;
        } else if (sm->role != STORE_MEMBER_REMOVED && !in) {
            op = RAFT_ADD_LEARNER;
        } else if (sm->role == STORE_MEMBER_VOTER && in && !voter) {
            op = RAFT_PROMOTE;
        } else {
            continue;
        }
        int rc = replica_change(g, op, id, now_ms);
        if (rc == HY_OK) {
            hy_log(n->log, HY_LOG_INFO, "membership of group %u: %s %s (%s:%u)", g->id,
                   change_names[op], sm->name, sm->host, sm->peer_port);
            return;
        }
        if (rc == HY_EBUSY || rc == HY_ENOTLEADER) {
            return; /* one change at a time; the next cron tries again */
        }
        if (!may_warn) {
            continue;
        }
        struct raft_follower f;
        if (rc == HY_EAGAIN && raft_follower_info(&g->raft, id, &f) && !f.answered) {
            /* A learner that never answered stays one (§4.2.1): say why, now and then. */
            n->member_warned_ms = now_ms;
            hy_log(n->log, HY_LOG_WARN,
                   "membership: %s (%s:%u) has never answered; it stays a learner until it "
                   "does (is it running, with this cluster's secret and name? its log says)",
                   sm->name, sm->host, sm->peer_port);
        } else if (rc != HY_EAGAIN) {
            n->member_warned_ms = now_ms; /* EAGAIN: a learner still catching up */
            hy_log(n->log, HY_LOG_WARN, "membership: %s %s refused: %s", change_names[op], sm->name,
                   hy_strerror(rc));
        }
    }
}

void member_reconcile(struct hy_node *n, uint64_t now_ms)
{
    if (replica_is_leader(n->meta)) {
        fill_book_gaps(n, now_ms);
    }
    for (size_t i = 0; i < n->group_count; i++) {
        if (replica_is_leader(n->groups[i])) {
            reconcile_group(n, n->groups[i], now_ms);
        }
    }
}

/* ---- HALYARD JOIN / REMOVE / PEERS ------------------------------------------------------- */

/* Changes run on the leader: forwarded there once, or refused when none is known. Returns
 * 1 when the request was handled here (forwarded or refused). */
static int route_to_leader(struct cmd_ctx *x)
{
    if (replica_is_leader(x->node->meta)) {
        return 0;
    }
    if (!x->client->is_proxy && proxy_forward(x)) {
        return 1;
    }
    resp_write_error(&x->w, "TRYAGAIN no leader is known to make the change; nothing was "
                            "changed");
    return 1;
}

static void propose_member(struct cmd_ctx *x, const char *name, const char *host, uint16_t port,
                           int role)
{
    struct store_entry e;
    struct store_arg args[3];
    member_entry(&e, args, name, host, port, role, 0, x->now_ms);
    node_propose(x, &e);
}

static int arg_text(const struct resp_arg *a, char *out, size_t cap)
{
    if (a->len == 0 || a->len >= cap || memchr(a->ptr, '\0', a->len) != NULL) {
        return 0;
    }
    memcpy(out, a->ptr, a->len);
    out[a->len] = '\0';
    return 1;
}

/* Members that are, or are about to be, in the configuration. */
static size_t active_members(const struct hy_node *n)
{
    size_t active = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        active += member_in_config(n, m->id) || m->role == STORE_MEMBER_VOTER ||
                  m->role == STORE_MEMBER_OBSERVER;
    }
    return active;
}

/* The role the address book records for `name` (voter or observer), else voter: what a JOIN
 * that names no role asks for, so that a node started with --join and no --role takes the
 * role it was added with (halyctl cluster join NAME@... --observer). */
static int recorded_role(const struct hy_node *n, const char *name)
{
    const struct store_member *sm = book_find(n, name);
    return sm != NULL && sm->role == STORE_MEMBER_OBSERVER ? STORE_MEMBER_OBSERVER
                                                           : STORE_MEMBER_VOTER;
}

/* HALYARD JOIN name host peerport [VOTER|OBSERVER]: without a role, the recorded one. */
void cmd_halyard_join(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (x->argc != 5 && x->argc != 6) {
        node_reply_syntax_error(x);
        return;
    }
    if (route_to_leader(x)) {
        return;
    }
    char name[NODE_MEMBER_NAME_MAX + 1], host[NODE_MEMBER_HOST_MAX + 1];
    int64_t port = 0;
    int role = STORE_MEMBER_VOTER;
    if (x->argc == 5 && arg_text(&x->argv[2], name, sizeof(name))) {
        role = recorded_role(n, name);
    } else if (x->argc == 6) {
        role = node_arg_is(&x->argv[5], "VOTER")      ? STORE_MEMBER_VOTER
               : node_arg_is(&x->argv[5], "OBSERVER") ? STORE_MEMBER_OBSERVER
                                                      : 0;
    }
    if (!arg_text(&x->argv[2], name, sizeof(name)) ||
        !wire_name_valid((const uint8_t *)name, strlen(name))) {
        resp_write_error(&x->w, "ERR invalid node name (1-64 printable characters, no spaces)");
    } else if (!arg_text(&x->argv[3], host, sizeof(host)) || strpbrk(host, " \t\r\n,@") != NULL) {
        resp_write_error(&x->w, "ERR invalid host");
    } else if (!hy_parse_i64(x->argv[4].ptr, x->argv[4].len, &port) || port <= 10000 ||
               port > 65535) {
        resp_write_error(&x->w, "ERR invalid peer port (10001..65535: the client port is 10000 "
                                "below it)");
    } else if (role == 0) {
        resp_write_error(&x->w, "ERR the role is VOTER or OBSERVER");
    } else if (n->cfg->cluster_secret[0] == '\0') {
        resp_write_error(&x->w, "ERR this node has no cluster-secret; a cluster needs the same "
                                "secret on every member");
    } else {
        const struct node_member *m = find_name(n->members, n->member_count, name);
        int configured_voter =
            m != NULL && raft_membership_is_voter(raft_membership(&n->meta->raft), m->id);
        if (configured_voter && role == STORE_MEMBER_OBSERVER) {
            resp_write_error(&x->w, "ERR that node is a voter; remove it before it rejoins as "
                                    "an observer");
        } else if ((m == NULL || !member_in_config(n, m->id)) &&
                   active_members(n) +
                           (m == NULL || m->role == STORE_MEMBER_REMOVED || m->role == 0) >
                       RAFT_SERVERS_MAX) {
            resp_write_errorf(&x->w, "ERR a cluster has at most %d members", RAFT_SERVERS_MAX);
        } else {
            propose_member(x, name, host, (uint16_t)port, role);
        }
    }
}

/* HALYARD REMOVE name */
void cmd_halyard_remove(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (x->argc != 3) {
        node_reply_syntax_error(x);
        return;
    }
    if (route_to_leader(x)) {
        return;
    }
    char name[NODE_MEMBER_NAME_MAX + 1];
    const struct node_member *m = arg_text(&x->argv[2], name, sizeof(name))
                                      ? find_name(n->members, n->member_count, name)
                                      : NULL;
    const struct raft_membership *cm = raft_membership(&n->meta->raft);
    if (m == NULL || (!member_in_config(n, m->id) && m->role != STORE_MEMBER_VOTER &&
                      m->role != STORE_MEMBER_OBSERVER)) {
        resp_write_error(&x->w, "ERR no such member");
    } else if (raft_membership_is_voter(cm, m->id) && config_voters(cm) == 1) {
        resp_write_error(&x->w, "ERR that is the last voter; a cluster cannot remove it");
    } else {
        propose_member(x, m->name, m->host, m->peer_port, STORE_MEMBER_REMOVED);
    }
}

/* HALYARD FORCE-QUORUM CONFIRM-DATA-LOSS: unsafe recovery when a majority is lost for good
 * (raft.h, RAFT_EV_FORCE). This node becomes the only voter; the reconciler then promotes the
 * members that catch up from it. */
void cmd_halyard_force_quorum(struct cmd_ctx *x)
{
    if (x->argc != 3 || !node_arg_is(&x->argv[2], "CONFIRM-DATA-LOSS")) {
        resp_write_error(&x->w, "ERR this may lose acknowledged writes; to go ahead, run "
                                "HALYARD FORCE-QUORUM CONFIRM-DATA-LOSS on the member with the "
                                "longest log");
        return;
    }
    /* Every group this node holds (the metadata group first): a lost majority is lost for
     * every partition alike, since every member holds every partition. */
    struct hy_node *n = x->node;
    size_t forced = 0;
    int rc = HY_EEXIST;
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        uint64_t last = raft_last_index(&g->raft);
        int grc = replica_force(g, x->now_ms);
        g->force_pending = grc == HY_EEXIST;
        if (grc == HY_OK) {
            forced++;
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: this node is now the only voter of group %u, from its log "
                   "ending at %llu",
                   g->id, (unsigned long long)last);
        } else if (grc != HY_EEXIST) {
            rc = grc;
        }
    }
    if (forced > 0) {
        rc = HY_OK;
        /* A group this node still led (its leadership lasts up to an election timeout after
         * the majority went) refused: forced as soon as it steps down. */
        n->force_until_ms = x->now_ms + 10 * (uint64_t)n->cfg->election_timeout_ms;
    }
    if (rc == HY_EEXIST) {
        resp_write_error(&x->w, "ERR this node leads a working majority; nothing to force");
    } else if (rc != HY_OK) {
        resp_write_errorf(&x->w, "ERR cannot force: %s", hy_strerror(rc));
    } else {
        resp_write_simple(&x->w, "OK this node is the only voter now; members that catch up "
                                 "are promoted again, remove the lost ones");
    }
}

void member_force_step(struct hy_node *n, uint64_t now_ms)
{
    if (now_ms >= n->force_until_ms) {
        for (size_t i = 0; i < n->group_count; i++) {
            n->groups[i]->force_pending = 0; /* it kept a working majority after all */
        }
        return;
    }
    /* Only the groups FORCE-QUORUM found still led here: one forced already is never forced
     * again (that would drop the members re-added since). */
    for (size_t i = 0; i < n->group_count; i++) {
        struct node_group *g = n->groups[i];
        if (!g->force_pending || replica_is_leader(g)) {
            continue;
        }
        if (raft_leader(&g->raft) != RAFT_NONE ||
            replica_reachable_voters(g) >= replica_voters(g) / 2 + 1) {
            /* It stepped down for a leader elected by a majority (members re-added since,
             * a transfer): forcing it now would drop what that majority committed (seed
             * 24001517 --partitions 2). */
            g->force_pending = 0;
            continue;
        }
        if (replica_force(g, now_ms) == HY_OK) {
            g->force_pending = 0;
            hy_log(n->log, HY_LOG_WARN,
                   "FORCE-QUORUM: group %u, led here until it lost its majority, is forced too",
                   g->id);
        }
    }
}

/* HALYARD PEERS: "name@host:peerport" of every member (what a joining node dials). */
void cmd_halyard_peers(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    size_t count = 0;
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        count +=
            m->peer_port != 0 && (m->role != STORE_MEMBER_REMOVED || member_in_config(n, m->id));
    }
    resp_write_array(&x->w, count);
    for (size_t i = 0; i < n->member_count; i++) {
        const struct node_member *m = &n->members[i];
        if (m->peer_port != 0 && (m->role != STORE_MEMBER_REMOVED || member_in_config(n, m->id))) {
            char peer[NODE_MEMBER_NAME_MAX + NODE_MEMBER_HOST_MAX + 16];
            int len = snprintf(peer, sizeof(peer), "%s@%s:%u", m->name, m->host, m->peer_port);
            resp_write_bulk(&x->w, peer, (size_t)len);
        }
    }
}
