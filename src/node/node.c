#include "node/node.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

const struct cmd_def node_commands[] = {
#define CMD(name, handler, arity, flags, first, last, step, group, summary) \
    {name, handler, arity, flags, first, last, step, group, summary},
#include "node/commands.def"
#undef CMD
};
const size_t node_command_count = HY_ARRAY_LEN(node_commands);

/* FNV-1a over the lower-cased name: command names are matched case-insensitively. */
static uint32_t cmd_hash(const uint8_t *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint32_t)tolower(name[i])) * 16777619u;
    }
    return h;
}

static void cmd_table_build(struct hy_node *n)
{
    static_assert(NODE_CMD_SLOTS >= 2 * HY_ARRAY_LEN(node_commands), "command table too full");
    for (size_t i = 0; i < node_command_count; i++) {
        const struct cmd_def *d = &node_commands[i];
        uint32_t slot = cmd_hash((const uint8_t *)d->name, strlen(d->name)) % NODE_CMD_SLOTS;
        while (n->cmd_slots[slot] != NULL) {
            slot = (slot + 1) % NODE_CMD_SLOTS;
        }
        n->cmd_slots[slot] = d;
    }
}

const struct cmd_def *node_command_lookup(const struct hy_node *n, const uint8_t *name, size_t len)
{
    uint32_t slot = cmd_hash(name, len) % NODE_CMD_SLOTS;
    while (n->cmd_slots[slot] != NULL) {
        if (hy_eq_nocase(name, len, n->cmd_slots[slot]->name)) {
            return n->cmd_slots[slot];
        }
        slot = (slot + 1) % NODE_CMD_SLOTS;
    }
    return NULL;
}

const struct cmd_def *node_command_sub(const struct hy_node *n, const struct cmd_def *d,
                                       size_t argc, const struct resp_arg *argv)
{
    if (d == NULL || !(d->flags & CMD_CONTAINER) || argc < 2) {
        return d;
    }
    char full[64];
    size_t base = strlen(d->name);
    if (base + 1 + argv[1].len > sizeof(full)) {
        return d;
    }
    memcpy(full, d->name, base);
    full[base] = '|';
    memcpy(full + base + 1, argv[1].ptr, argv[1].len);
    const struct cmd_def *sub =
        node_command_lookup(n, (const uint8_t *)full, base + 1 + argv[1].len);
    return sub != NULL ? sub : d;
}

static void node_store_config(const struct hy_config *cfg, uint64_t seed, uint32_t group,
                              struct store_config *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->seed = seed;
    sc->session_id_base = (uint64_t)group << NODE_SESSION_GROUP_SHIFT;
    sc->maxmemory_bytes = (size_t)cfg->maxmemory;
    sc->policy = (enum store_evict_policy)cfg->maxmemory_policy;
    sc->maxmemory_samples = (unsigned)cfg->maxmemory_samples;
    sc->notify_classes = node_notify_classes(cfg);
}

void node_peer_state(struct hy_node *n, const char *name, int up, uint64_t now_ms)
{
    for (size_t i = 0; i < n->member_count; i++) {
        if (strcmp(n->members[i].name, name) == 0) {
            n->member_up[i] = (uint8_t)(up != 0);
            /* Reached now, not at the next cron: a link up and down between two crons
             * counted as never reached, and once gossip said the member ALIVE the events
             * took it for one never reached and said SUSPECT for good (CI, test_events.py:
             * n3 killed 44 ms after its link came up, restarted, ALIVE then SUSPECT). */
            n->events.reached[i] |= (uint8_t)(up != 0);
        }
    }
    for (size_t i = 0; i < NODE_GUESTS_MAX; i++) {
        if (strcmp(n->guests[i], name) == 0) {
            n->guest_up[i] = (uint8_t)(up != 0);
        }
    }
    node_note_activity(n);
    if (!up) {
        node_peer_busy_forget(n, name); /* no end notice can come on a broken link */
    }
    /* A link that broke: its node is suspected (node_peer_liveness also records the event).
     * With gossip on, the broken link is also gossip's own suspicion and gossip decides the
     * rest: it says ALIVE again (a member that restarts refutes), or DEAD. */
    if (!node_gossip_on(n)) {
        node_peer_liveness(n, name, up, now_ms);
    } else if (!up) {
        node_peer_liveness(n, name, 0, now_ms); /* a fact: its Raft groups hear of it now */
        node_gossip_link_down(n, name, now_ms);
    } else {
        /* A link back to a member gossip holds alive: a SUSPECT the events said since (a
         * broken link gossip forgave, or one gossip judged before the link formed) is over,
         * and gossip, with nothing new to say, would not end it. */
        const char *st = node_gossip_state(n, name);
        if (st != NULL && strcmp(st, "alive") == 0) {
            node_events_peer(n, name, 1, now_ms);
        }
    }
    proxy_check(n, now_ms);
    if (up) {
        replica_wake(n, now_ms); /* clients waiting for this leader's link go on */
    }
}

static void peer_liveness(struct hy_node *n, const char *name, int alive, int suspect,
                          uint64_t now_ms)
{
    node_note_activity(n);
    node_events_peer(n, name, alive, now_ms); /* silence reported without a broken link too */
    for (size_t i = 0; i < n->member_count; i++) {
        if (strcmp(n->members[i].name, name) == 0) {
            replica_liveness(n, n->members[i].id, alive, suspect, now_ms);
        }
    }
}

void node_peer_liveness(struct hy_node *n, const char *name, int alive, uint64_t now_ms)
{
    peer_liveness(n, name, alive, 0, now_ms);
}

void node_peer_suspect(struct hy_node *n, const char *name, uint64_t now_ms)
{
    peer_liveness(n, name, 0, 1, now_ms);
}

const struct node_member *node_members(const struct hy_node *n, size_t *count_out)
{
    *count_out = n->member_count;
    return n->members;
}

uint64_t node_members_epoch(const struct hy_node *n)
{
    return n->members_epoch;
}

int node_member_is_peer(const struct hy_node *n, const struct node_member *m)
{
    (void)n;
    return m->peer_port != 0;
}

const char *node_member_name(const struct hy_node *n, raft_id id)
{
    const struct node_member *m = node_member_find(n->members, n->member_count, id);
    if (m != NULL) {
        return m->name;
    }
    for (size_t i = 0; i < NODE_GUESTS_MAX; i++) {
        if (n->guests[i][0] != '\0' && node_member_id(n->guests[i]) == id) {
            return n->guests[i];
        }
    }
    return NULL;
}

static const struct node_member *member_named(const struct hy_node *n, const char *name)
{
    return node_member_find(n->members, n->member_count, node_member_id(name));
}

int node_guest_up(const struct hy_node *n, const char *name)
{
    for (size_t i = 0; i < NODE_GUESTS_MAX; i++) {
        if (strcmp(n->guests[i], name) == 0) {
            return n->guest_up[i];
        }
    }
    return 0;
}

int node_guest_admissible(const struct hy_node *n, const char *name)
{
    const struct node_member *m = member_named(n, name);
    return strlen(name) <= NODE_MEMBER_NAME_MAX && strcmp(name, n->cfg->node_id) != 0 &&
           (m == NULL || m->role != STORE_MEMBER_REMOVED);
}

void node_guest_add(struct hy_node *n, const char *name)
{
    if (!node_guest_admissible(n, name) || member_named(n, name) != NULL) {
        return;
    }
    for (size_t i = 0; i < NODE_GUESTS_MAX; i++) {
        if (strcmp(n->guests[i], name) == 0) {
            return;
        }
    }
    hy_log(n->log, HY_LOG_INFO,
           "node %s: not a member this node knows yet, heard as a guest until its log names it",
           name);
    snprintf(n->guests[n->guest_next], sizeof(n->guests[0]), "%s", name);
    n->guest_up[n->guest_next] = 0; /* node_peer_state says when its link is up */
    n->guest_next = (n->guest_next + 1) % NODE_GUESTS_MAX;
}

struct hy_node *node_create(struct hy_config *cfg, const struct hy_log *log, uint64_t seed,
                            uint64_t now_ms)
{
    struct hy_node *n = hy_xcalloc(1, sizeof(*n));
    n->health_score = n->cluster_health_score = -1;
    n->cfg = cfg;
    n->log = log;
    hy_prng_seed(&n->prng, seed);
    /* Forward request ids start at a point drawn from the seed, from a stream of its own (the
     * node's prng draws stay as they were). A leader may answer a forward of this node's
     * previous incarnation after it restarted; with ids restarting at 1, that stale reply
     * could match a new request of the same id and answer it (test_proxy
     * test_reply_to_a_previous_incarnation_answers_nothing; a plausible cause, not reproduced,
     * of an INCR through a restarted follower answered with a 6 s old value). Two
     * incarnations' ids meet only if one's start falls among the ids the other used. */
    struct hy_prng ids;
    hy_prng_seed(&ids, seed ^ 0x666f7277617264ull); /* its own stream: "forward" */
    n->next_forward_id = (hy_prng_next(&ids) >> 17) << 16;
    n->next_client_id = 1;
    n->start_ms = now_ms;
    n->stats.ops_sample_ms = now_ms;
    hy_buf_init(&n->partmap_raw);
    cmd_table_build(n);
    observe_init(n);
    acl_init(n);
    node_reconfigure(n);
    struct store_config sc;
    node_store_config(cfg, hy_prng_next(&n->prng), 0, &sc);
    /* Before the members: they look up this node's Raft id. */
    n->meta = replica_group_new(n, 0, store_create(&sc, log));
    /* With one partition, group 0 holds every slot besides the membership (the layout of
     * every cluster before partitions); with more, group p + 1 holds partition p's slots. */
    if (cfg->partitions > 1) {
        for (uint32_t p = 0; p < (uint32_t)cfg->partitions; p++) {
            node_store_config(cfg, hy_prng_next(&n->prng), p + 1, &sc);
            replica_group_new(n, p + 1, store_create(&sc, log));
        }
    }
    if (member_load_boot(n) != HY_OK) {
        replica_free(n);
        acl_free(n);
        hy_free(n);
        return NULL;
    }
    return n;
}

void node_destroy(struct hy_node *n)
{
    if (n == NULL) {
        return;
    }
    while (n->clients != NULL) {
        node_client_free(n, n->clients);
    }
    node_gossip_free(n);
    node_quorum_free(n);
    partmap_free(n);
    node_wan_free(n);
    replica_free(n);
    proxy_free(n);
    node_migrate_free(n);
    acl_free(n);
    hy_free(n);
}

void node_reconfigure(struct hy_node *n)
{
    uint64_t seed = hy_prng_next(&n->prng);
    for (size_t i = 0; i < n->group_count; i++) {
        struct store_config sc;
        node_store_config(n->cfg, seed, n->groups[i]->id, &sc);
        store_configure(n->groups[i]->store, &sc);
    }
    resp_limits_default(&n->limits);
    n->limits.bulk_bytes_max = (size_t)n->cfg->proto_max_bulk_len;
    n->limits.multibulk_count_max = (size_t)n->cfg->proto_max_multibulk_len;
    n->limits.inline_bytes_max = (size_t)n->cfg->proto_max_inline_len;
    for (struct node_client *c = n->clients; c != NULL; c = c->next) {
        c->parser.limits = n->limits;
    }
}

struct node_client *node_client_new(struct hy_node *n, const char *addr, const char *laddr, int fd,
                                    uint64_t now_ms)
{
    struct node_client *c = hy_xcalloc(1, sizeof(*c));
    c->id = n->next_client_id++;
    c->proto = 2;
    c->authenticated = acl_default_open(n, n->meta->store);
    memcpy(c->user, "default", sizeof("default"));
    c->fd = fd;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    snprintf(c->laddr, sizeof(c->laddr), "%s", laddr);
    c->created_ms = now_ms;
    c->last_ms = now_ms;
    c->last_cmd = "NULL";
    hy_buf_init(&c->in);
    hy_buf_init(&c->out);
    hy_buf_init(&c->held_out);
    hy_buf_init(&c->scatter_acc);
    resp_request_parser_init(&c->parser, &n->limits);
    c->next = n->clients;
    if (n->clients != NULL) {
        n->clients->prev = c;
    }
    n->clients = c;
    n->client_count++;
    n->stats.connections_received++;
    if (n->client_count > (size_t)n->cfg->maxclients) {
        /* Redis accepts, answers, and closes: the client learns why instead of a reset. */
        struct resp_writer w = {&c->out, 2};
        resp_write_error(&w, "ERR max number of clients reached");
        c->flags |= NODE_CLIENT_CLOSE_AFTER_REPLY;
        n->stats.rejected_connections++;
    }
    return c;
}

void node_client_free(struct hy_node *n, struct node_client *c)
{
    replica_client_gone(n, c);
    proxy_client_gone(n, c);
    scatter_client_gone(n, c);
    if (c->blocked_on_read) {
        n->read_waiters--;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        n->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    n->client_count--;
    node_multi_free(c);
    node_pubsub_free(c);
    hy_buf_free(&c->xread_ids);
    hy_buf_free(&c->xread_text);
    hy_free(c->xread_argv);
    resp_request_parser_free(&c->parser);
    hy_buf_free(&c->in);
    hy_buf_free(&c->out);
    hy_buf_free(&c->held_out);
    hy_buf_free(&c->scatter_acc);
    hy_free(c);
}

size_t node_client_count(const struct hy_node *n)
{
    return n->client_count;
}

void node_note_rejected_connection(struct hy_node *n)
{
    n->stats.rejected_connections++;
}

void node_note_net_io(struct hy_node *n, size_t in_bytes, size_t out_bytes)
{
    n->stats.net_input_bytes += in_bytes;
    n->stats.net_output_bytes += out_bytes;
}

uint64_t node_deaf_recent(const struct hy_node *n, uint64_t now_ms)
{
    return now_ms <= n->deaf_recent_at_ms + NODE_DEAF_RECENT_MS ? n->deaf_recent_ms : 0;
}

/* Records [from_ms, to_ms) as the node's latest deafness when it lasted a heartbeat interval
 * or more: shorter, it could not have hidden a leader's heartbeat. */
static void node_note_deaf(struct hy_node *n, uint64_t from_ms, uint64_t to_ms)
{
    if (to_ms >= from_ms + (uint64_t)n->cfg->heartbeat_ms && to_ms > n->deaf_to_ms) {
        n->deaf_from_ms = from_ms;
        n->deaf_to_ms = to_ms;
        if (to_ms - from_ms >= node_deaf_recent(n, to_ms)) {
            n->deaf_recent_ms = to_ms - from_ms;
            n->deaf_recent_at_ms = to_ms;
        }
    }
}

void node_note_acks_coalesced(struct hy_node *n, size_t count)
{
    n->metrics.acks_coalesced += count;
}

void node_note_timer_late(struct hy_node *n, uint64_t due_ms, uint64_t now_ms)
{
    if (now_ms > due_ms) {
        node_note_deaf(n, due_ms, now_ms);
    }
}

void node_note_loop_turn(struct hy_node *n, uint64_t busy_us, uint64_t cpu_us, uint64_t now_ms)
{
    struct node_metrics *m = &n->metrics;
    hy_histo_record_us(&m->loop_turn, busy_us);
    m->loop_turn_max_us = HY_MAX(m->loop_turn_max_us, busy_us);
    if (busy_us >= (uint64_t)NODE_SLOW_TURN_MS * 1000) {
        m->loop_slow_turns++;
        if (m->slow_logged_ms == 0 || now_ms >= m->slow_logged_ms + 1000) {
            hy_log(n->log, HY_LOG_WARN,
                   "slow event loop turn: %llu ms of work, %llu ms of it on a CPU (%llu more "
                   "slow turns not logged); since the previous turn: %llu entries applied, %llu "
                   "snapshots installed, %llu taken, %llu snapshot bytes sent",
                   (unsigned long long)(busy_us / 1000), (unsigned long long)(cpu_us / 1000),
                   (unsigned long long)m->slow_unlogged,
                   (unsigned long long)(m->entries_applied - m->mark_applied),
                   (unsigned long long)(m->snapshots_installed - m->mark_installed),
                   (unsigned long long)(m->snapshots_taken - m->mark_taken),
                   (unsigned long long)(m->snapshot_sent_bytes - m->mark_sent));
            m->slow_logged_ms = now_ms;
            m->slow_unlogged = 0;
        } else {
            m->slow_unlogged++;
        }
    }
    node_note_deaf(n, now_ms - HY_MIN(busy_us / 1000, now_ms), now_ms);
    m->mark_applied = m->entries_applied;
    m->mark_installed = m->snapshots_installed;
    m->mark_taken = m->snapshots_taken;
    m->mark_sent = m->snapshot_sent_bytes;
}

size_t node_take_kills(struct hy_node *n)
{
    size_t k = n->kills;
    n->kills = 0;
    return k;
}

void node_set_disk_full(struct hy_node *n, int full)
{
    n->disk_full = full;
}
