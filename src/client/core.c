/*
 * core.c - libhalyard's pure core (core.h): one request from its first attempt to its outcome.
 *
 * Where a request goes: the current member; on a refused or lost connection the next one at
 * once, and after a whole round of failures an exponential backoff with jitter (so a restarted
 * cluster is not hit by every client at the same instant). -MOVED names the member to use.
 * -TRYAGAIN (an election) and -NOQUORUM (a minority) mean "not applied": wait a backoff step
 * and send again (to the next member after -NOQUORUM), until the request's deadline.
 *
 * Writes, exactly once: with sessions on (the default), a write goes inside HY.REQ under the
 * client's session (opened on first use) with a sequence number of its own, kept through every
 * re-send. A reply lost with its connection, or -UNKNOWN (the server lost track of it), is
 * answered by sending the same (session, seq) again: the server applies it once and replays
 * the first reply (docs/protocol.md "Exactly-once writes"). Without a session, such a write
 * ends HALYARD_UNKNOWN at once: it is never re-sent blindly. Reads are re-sent freely.
 *
 * Which commands are reads: a fixed list of Redis's read-only commands. Anything else is sent
 * as a write; a command the server will not wrap (CONFIG, HALYARD ...: "HY.REQ wraps a data
 * write command") is remembered and sent plain from then on.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/core.h"
#include "common/alloc.h"
#include "common/crc.h"
#include "common/status.h"
#include "proto/resp.h"

#define NAME_MAX_LEN 31
#define NOWRAP_MAX   32

enum frame {
    FRAME_NONE,
    FRAME_AUTH,
    FRAME_TOPO,
    FRAME_EVENTS,
    FRAME_PARTS,
    FRAME_REGION,
    FRAME_OPEN,
    FRAME_RO,
    FRAME_RW,
    FRAME_REQ
};

/* Raft groups a cluster may have: the metadata group and up to 64 partitions. */
#define GROUPS_MAX 65

#define RANGES_MAX 128

#define REPLICAS_MAX 8

#define FRESH_MAX 1024

struct slot_range {
    uint16_t start, end;
    size_t member;                 /* the leader: index in members[] */
    size_t replicas[REPLICAS_MAX]; /* every replica the map names, the leader first */
    size_t n_replicas;
};

/* A member's circuit breaker (halyard.h): closed while failures < breaker_failures; open
 * until open_until_ms; then half-open: the next attempt decides. */
struct breaker {
    uint32_t failures;
    uint64_t open_until_ms; /* 0: closed */
};

struct hyc_cluster {
    char name[HYC_NAME_MAX + 1];
    struct hyc_member *members; /* n of them, in the core's own allocation (cl_members) */
    size_t n;
};

#define EVENTS_MAX 32

struct hyc_core {
    halyard_config cfg;
    char *password;
    char *username; /* NULL: AUTH password (the default user) */
    struct hyc_cluster clusters[HYC_CLUSTERS_MAX];
    size_t n_clusters, ci;         /* the cluster in use */
    uint32_t rounds;               /* full passes over the cluster list without a connection */
    int gave_up;                   /* failover_try_count rounds passed: requests fail at once */
    int connected;                 /* as events see it: connected to the cluster */
    int changed_cluster;           /* raise CLIENT_CHANGED_CLUSTER at the next connection */
    size_t region_moves;           /* this request's moves on a WAN role's -READONLY */
    int region_query;              /* ask the cluster in use its region priority (CLUSTER INFO) */
    uint64_t unreachable_since_ms; /* no connection to the cluster since (0: connected) */
    /* Membership listeners (events_poll_ms): per member, the last event id raised (0 with
     * synced 0: not asked yet: the first answer only sets the cursor). */
    uint64_t ev_cursor[HYC_MEMBERS_MAX];
    uint8_t ev_synced[HYC_MEMBERS_MAX];
    uint64_t ev_next_ms;
    int ev_due, ev_off;
    /* Fail-back to cluster 0 (failback_after_ms): probes since healthy_since all succeeded. */
    uint64_t fb_healthy_since_ms, fb_next_probe_ms;
    size_t fb_member;
    struct hyc_event events[EVENTS_MAX];
    size_t ev_head, ev_count;
    struct hyc_member members[HYC_MEMBERS_MAX]; /* the cluster in use, plus -MOVED's */
    struct breaker breakers[HYC_MEMBERS_MAX];   /* one per member, same index */
    size_t n_members, cur;
    /* Smart routing: the slot map from CLUSTER SLOTS (stale = read it again). */
    int routing; /* on, and the cluster answers CLUSTER SLOTS */
    int topo_stale;
    uint64_t topo_read_ms;
    uint64_t topo_push_gen; /* the server-pushed topology events seen (hyc_topology_changed) */
    struct slot_range ranges[RANGES_MAX];
    size_t n_ranges;
    /* Read routing (read_from): per member a round-trip average (x8, in ms) of its answers;
     * the balancer's next pick; READONLY asked on this connection (or refused: ro_off). */
    uint32_t rtt_x8[HYC_MEMBERS_MAX];
    uint8_t rtt_known[HYC_MEMBERS_MAX];
    size_t rr;
    int repick;
    /* Balancers: the shared in-flight counts (LEAST_OUTSTANDING, max_inflight_per_member) and
     * the entry this request's attempt is counted in (NULL: none); the weights of the first
     * cluster's addrs and the smooth weighted round robin's current weights. */
    struct hyc_load *load;
    struct hyc_load own_load;
    atomic_uint *counted;
    atomic_uint *pipe_entry; /* pipelined requests are counted there, pipe_counted of them */
    size_t pipe_counted;
    uint32_t weights0[HYC_MEMBERS_MAX];
    int64_t wrr_cw[HYC_MEMBERS_MAX];
    int ro_on, ro_off;
    /* max_staleness_ms: the heartbeats' verdicts per member and partition (hyc_set_fresh); a
     * read that no replica within the bound can take goes to the leader (linear), its
     * connection leaving READONLY first (READWRITE) if it was in it. */
    struct {
        size_t member;
        uint16_t lo, hi;
        uint8_t fresh;
    } fresh[FRESH_MAX];
    size_t n_fresh;
    int linear;
    int abandon;   /* a heartbeat found the member dead: leave it as after attempt_timeout_ms */
    int heard;     /* some member sent bytes during this request: the cluster was reachable */
    int has_avoid; /* this request should not go to `avoid` (a hedged copy) */
    struct hyc_member avoid;
    int has_slot; /* the request names a key: `slot` is its slot */
    uint16_t slot;
    int up, connecting, authed, must_close;
    struct hy_prng prng;
    uint32_t backoff_ms;
    uint64_t wait_until_ms;
    size_t tried_in_round; /* connection failures since the last answer */
    /* Sessions, one per Raft group written to (a session lives in one partition's store:
     * docs/protocol.md): group 0 until the cluster says it has partitions. */
    struct {
        uint64_t id, next_seq;
    } sess[GROUPS_MAX];
    uint32_t parts;   /* the cluster's partitions (CLUSTER INFO), 0 = one / not asked */
    int parts_query;  /* a session was refused for this key's partition: ask how many */
    int open_group;   /* the group the HY.SESSION OPEN in flight is for */
    int sessions_off; /* the server does not know HY.SESSION (a plain Redis) */
    char nowrap[NOWRAP_MAX][NAME_MAX_LEN + 1];
    size_t n_nowrap;
    /* the request */
    int done;
    struct hy_buf args; /* its arguments as RESP bulk strings */
    int argc;
    char name[NAME_MAX_LEN + 1];
    int is_write;
    uint64_t req_session, seq; /* its slot once wrapped, kept through re-sends */
    int maybe_applied;         /* a wrapped attempt was lost after it was sent */
    uint64_t deadline_ms;
    enum frame inflight;
    int sent;
    uint64_t sent_ms; /* when the frame in flight went out */
    struct hy_buf out, in;
    halyard_status status;
    halyard_reply *reply;
    char last_err[256];
    halyard_stats stats;
    /* The clusters' member addresses, sized to the configuration: a core is allocated (and
     * cleared) per client and per I/O thread, and a table for HYC_CLUSTERS_MAX clusters of
     * HYC_MEMBERS_MAX members each was two thirds of its 200 KB. */
    struct hyc_member cl_members[];
};

/* Redis's read-only commands (lower case, sorted): sent plain, re-sent freely. */
static const char *const read_commands[] = {
    "bitcount",      "bitpos",      "dbsize",      "dump",           "echo",
    "exists",        "expiretime",  "geodist",     "geohash",        "geopos",
    "georadius_ro",  "geosearch",   "get",         "getbit",         "getrange",
    "hexists",       "hget",        "hgetall",     "hkeys",          "hlen",
    "hmget",         "hrandfield",  "hscan",       "hstrlen",        "hvals",
    "info",          "keys",        "lindex",      "llen",           "lpos",
    "lrange",        "mget",        "object",      "pexpiretime",    "pfcount",
    "ping",          "pttl",        "randomkey",   "scan",           "scard",
    "sdiff",         "sinter",      "sintercard",  "sismember",      "smembers",
    "smismember",    "srandmember", "sscan",       "strlen",         "substr",
    "sunion",        "time",        "ttl",         "type",           "xinfo",
    "xlen",          "xpending",    "xrange",      "xread",          "xrevrange",
    "zcard",         "zcount",      "zdiff",       "zinter",         "zintercard",
    "zlexcount",     "zmscore",     "zrandmember", "zrange",         "zrangebylex",
    "zrangebyscore", "zrank",       "zrevrange",   "zrevrangebylex", "zrevrangebyscore",
    "zrevrank",      "zscan",       "zscore",      "zunion",
};

static int is_read(const char *name)
{
    size_t lo = 0, hi = sizeof(read_commands) / sizeof(read_commands[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(read_commands[mid], name);
        if (c == 0) {
            return 1;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

/* Commands whose first argument is not a key (sorted): routed to the current member. */
static const char *const keyless_commands[] = {
    "auth",      "client",   "cluster",   "command", "config",     "dbsize", "echo", "flushall",
    "flushdb",   "halyard",  "hello",     "hy.req",  "hy.session", "info",   "keys", "ping",
    "randomkey", "readonly", "readwrite", "scan",    "select",     "time",
};

static int no_key(const char *name)
{
    for (size_t i = 0; i < sizeof(keyless_commands) / sizeof(keyless_commands[0]); i++) {
        if (strcmp(keyless_commands[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int parse_addr(const char *s, size_t len, struct hyc_member *m)
{
    const char *colon = memrchr(s, ':', len);
    if (colon == NULL || colon == s || (size_t)(colon - s) > HYC_HOST_MAX) {
        return 0;
    }
    long port = 0;
    for (const char *p = colon + 1; p < s + len; p++) {
        if (*p < '0' || *p > '9' || port > 65535) {
            return 0;
        }
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) {
        return 0;
    }
    memcpy(m->host, s, (size_t)(colon - s));
    m->host[colon - s] = '\0';
    m->port = (int)port;
    return 1;
}

const char *hyc_config_check(const halyard_config *cfg)
{
    if (cfg == NULL || cfg->addrs == NULL || cfg->n_addrs == 0) {
        return "at least one member address (host:port) is needed";
    }
    if (cfg->n_failover + 1 > HYC_CLUSTERS_MAX) {
        return "too many failover clusters (at most 7)";
    }
    for (size_t c = 0; c <= cfg->n_failover; c++) {
        const char *const *addrs = c == 0 ? cfg->addrs : cfg->failover[c - 1].addrs;
        size_t n = c == 0 ? cfg->n_addrs : cfg->failover[c - 1].n_addrs;
        if (addrs == NULL || n == 0) {
            return "every failover cluster needs at least one member address";
        }
        if (n > HYC_MEMBERS_MAX) {
            return "too many member addresses (at most 64 per cluster)";
        }
        for (size_t i = 0; i < n; i++) {
            struct hyc_member m;
            if (addrs[i] == NULL || !parse_addr(addrs[i], strlen(addrs[i]), &m)) {
                return "a member address is not host:port";
            }
        }
    }
    if (cfg->n_failover > 0 && cfg->cluster_connect_timeout_ms == 0) {
        return "cluster_connect_timeout_ms must be above 0 with failover clusters";
    }
    if (cfg->connect_timeout_ms == 0 || cfg->request_timeout_ms == 0 ||
        cfg->attempt_timeout_ms == 0) {
        return "timeouts must be above 0";
    }
    if (cfg->backoff_initial_ms == 0 || cfg->backoff_max_ms < cfg->backoff_initial_ms ||
        !(cfg->backoff_multiplier >= 1.0) || !(cfg->backoff_jitter >= 0.0) ||
        cfg->backoff_jitter > 1.0) {
        return "backoff: initial > 0, max >= initial, multiplier >= 1, jitter in [0, 1]";
    }
    if (cfg->sessions && cfg->session_ttl_ms == 0) {
        return "session_ttl_ms must be above 0";
    }
    if (cfg->read_from < HALYARD_READ_LEADER || cfg->read_from > HALYARD_READ_NEAREST) {
        return "read_from: LEADER, REPLICA or NEAREST";
    }
    if (cfg->load_balancer < HALYARD_LB_ROUND_ROBIN || cfg->load_balancer > HALYARD_LB_WEIGHTED) {
        return "load_balancer: ROUND_ROBIN, RANDOM, LEAST_OUTSTANDING or WEIGHTED";
    }
    if (cfg->weights != NULL && cfg->n_weights != cfg->n_addrs) {
        return "weights: one per member address (n_weights == n_addrs)";
    }
    if (cfg->max_staleness_ms > 0 && (cfg->heartbeat_interval_ms == 0 ||
                                      cfg->max_staleness_ms / 2 < cfg->heartbeat_interval_ms)) {
        return "max_staleness_ms needs heartbeats (heartbeat_interval_ms) and must be at least "
               "twice heartbeat_interval_ms (the estimate's resolution is one interval)";
    }
    return NULL;
}

struct hyc_core *hyc_core_new(const halyard_config *cfg, uint64_t seed)
{
    size_t n_addrs = cfg->n_addrs;
    for (size_t c = 0; c < cfg->n_failover; c++) {
        n_addrs += cfg->failover[c].n_addrs;
    }
    struct hyc_core *k = hy_xcalloc(1, sizeof(*k) + n_addrs * sizeof(k->cl_members[0]));
    k->cfg = *cfg;
    k->cfg.addrs = NULL;
    k->password = cfg->password ? hy_xstrdup(cfg->password) : NULL;
    k->cfg.password = NULL;
    k->username = cfg->username && cfg->password ? hy_xstrdup(cfg->username) : NULL;
    k->cfg.username = NULL;
    k->cfg.cluster_name = NULL;
    k->cfg.failover = NULL;
    k->n_clusters = cfg->n_failover + 1;
    struct hyc_member *next = k->cl_members;
    for (size_t c = 0; c < k->n_clusters; c++) {
        struct hyc_cluster *cl = &k->clusters[c];
        const char *name = c == 0 ? cfg->cluster_name : cfg->failover[c - 1].name;
        if (name != NULL) {
            snprintf(cl->name, sizeof(cl->name), "%s", name);
        } else {
            snprintf(cl->name, sizeof(cl->name), c == 0 ? "primary" : "failover-%zu", c);
        }
        const char *const *addrs = c == 0 ? cfg->addrs : cfg->failover[c - 1].addrs;
        cl->n = c == 0 ? cfg->n_addrs : cfg->failover[c - 1].n_addrs;
        cl->members = next;
        next += cl->n;
        for (size_t i = 0; i < cl->n; i++) {
            (void)parse_addr(addrs[i], strlen(addrs[i]), &cl->members[i]);
        }
    }
    memcpy(k->members, k->clusters[0].members, k->clusters[0].n * sizeof(k->members[0]));
    k->n_members = k->clusters[0].n;
    k->region_query = k->n_clusters > 1;
    k->load = &k->own_load;
    for (size_t i = 0; i < HYC_MEMBERS_MAX; i++) {
        k->weights0[i] = cfg->weights != NULL && i < cfg->n_weights ? cfg->weights[i] : 1;
    }
    k->cfg.weights = NULL;
    k->backoff_ms = cfg->backoff_initial_ms;
    k->routing = cfg->smart_routing && !cfg->tls;
    k->topo_stale = 1;
    k->rr = (size_t)(seed % HYC_MEMBERS_MAX); /* clients (and I/O threads) start apart */
    hy_prng_seed(&k->prng, seed);
    hy_buf_init(&k->args);
    hy_buf_init(&k->out);
    hy_buf_init(&k->in);
    return k;
}

void hyc_core_free(struct hyc_core *k)
{
    if (k == NULL) {
        return;
    }
    hy_buf_free(&k->args);
    hy_buf_free(&k->out);
    hy_buf_free(&k->in);
    halyard_reply_free(k->reply);
    hy_free(k->password);
    hy_free(k->username);
    hy_free(k);
}

const struct hyc_member *hyc_member(const struct hyc_core *k, size_t i)
{
    return i < k->n_members ? &k->members[i] : NULL;
}

void hyc_stats(const struct hyc_core *k, halyard_stats *out)
{
    *out = k->stats;
}

const char *hyc_cluster_name(const struct hyc_core *k)
{
    return k->clusters[k->ci].name;
}

static void push_event(struct hyc_core *k, halyard_event ev, const struct hyc_member *m)
{
    if (k->ev_count == EVENTS_MAX) { /* nobody drains: the oldest goes */
        k->ev_head = (k->ev_head + 1) % EVENTS_MAX;
        k->ev_count--;
    }
    struct hyc_event *e = &k->events[(k->ev_head + k->ev_count++) % EVENTS_MAX];
    e->ev = ev;
    memcpy(e->cluster, k->clusters[k->ci].name, sizeof(e->cluster)); /* same size */
    if (m != NULL) {
        snprintf(e->member, sizeof(e->member), "%s:%d", m->host, m->port);
    } else {
        e->member[0] = '\0';
    }
}

/* An event named by the server: member is a name, not an address. */
static void push_named_event(struct hyc_core *k, halyard_event ev, const char *member, size_t len)
{
    push_event(k, ev, NULL);
    struct hyc_event *e = &k->events[(k->ev_head + k->ev_count - 1) % EVENTS_MAX];
    snprintf(e->member, sizeof(e->member), "%.*s", (int)len, member);
}

/* The text of "key":"value" in a JSON object (p, len); 0 when absent. */
static size_t json_field(const char *p, size_t len, const char *key, const char **out)
{
    char pat[24];
    int n = snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *at = memmem(p, len, pat, (size_t)n);
    if (at == NULL) {
        return 0;
    }
    const char *v = at + n, *end = p + len;
    int quoted = v < end && *v == '"';
    v += quoted;
    const char *e = v;
    while (e < end && (quoted ? *e != '"' : (*e != ',' && *e != '}'))) {
        e++;
    }
    *out = v;
    return (size_t)(e - v);
}

int hyc_event_parse(const char *p, size_t len, halyard_event *ev, char *member, size_t cap)
{
    static const struct {
        const char *type;
        halyard_event ev;
    } known[] = {{"MEMBER_ADDED", HALYARD_EV_MEMBER_ADDED},
                 {"MEMBER_REMOVED", HALYARD_EV_MEMBER_REMOVED},
                 {"MEMBER_SUSPECT", HALYARD_EV_MEMBER_SUSPECT},
                 {"MEMBER_ALIVE", HALYARD_EV_MEMBER_ALIVE},
                 {"MEMBER_FAILED", HALYARD_EV_MEMBER_FAILED},
                 {"LEADER_CHANGED", HALYARD_EV_LEADER_CHANGED},
                 {"QUORUM_LOST", HALYARD_EV_QUORUM_LOST},
                 {"QUORUM_REGAINED", HALYARD_EV_QUORUM_REGAINED}};
    const char *f;
    size_t tl = json_field(p, len, "type", &f);
    for (size_t t = 0; t < sizeof(known) / sizeof(known[0]); t++) {
        if (tl != strlen(known[t].type) || memcmp(f, known[t].type, tl) != 0) {
            continue;
        }
        const char *who = "";
        size_t wl = json_field(p, len, "member", &who);
        if (wl == 0) {
            wl = json_field(p, len, "leader", &who);
        }
        *ev = known[t].ev;
        if (known[t].ev == HALYARD_EV_QUORUM_LOST || known[t].ev == HALYARD_EV_QUORUM_REGAINED) {
            const char *pv = "";
            size_t pl = json_field(p, len, "partition", &pv);
            snprintf(member, cap, "partition=%.*s", (int)(pl < 8 ? pl : 8), pv);
        } else {
            snprintf(member, cap, "%.*s", (int)(wl < HYC_HOST_MAX ? wl : HYC_HOST_MAX), who);
        }
        return 1;
    }
    return 0;
}

/* HALYARD EVENTS' answer: each event after the cursor becomes a listener event. */
static void read_events(struct hyc_core *k, const struct resp_value *v)
{
    size_t m = k->cur;
    int first = !k->ev_synced[m];
    k->ev_synced[m] = 1;
    for (size_t i = 0; v->type == RESP_ARRAY && i < v->count; i++) {
        const struct resp_value *e = &v->elems[i];
        if (e->type != RESP_BULK || e->str == NULL) {
            continue;
        }
        const char *p = (const char *)e->str, *f;
        size_t n = json_field(p, e->len, "id", &f);
        uint64_t id = n ? strtoull(f, NULL, 10) : 0;
        if (id <= k->ev_cursor[m]) {
            continue;
        }
        k->ev_cursor[m] = id;
        if (first) {
            continue; /* the first answer sets the cursor: history is not replayed */
        }
        halyard_event ev;
        char who[HYC_HOST_MAX + 8];
        if (hyc_event_parse(p, e->len, &ev, who, sizeof(who))) {
            push_named_event(k, ev, who, strlen(who));
        }
    }
}

void hyc_topology_changed(struct hyc_core *k, uint64_t gen)
{
    if (gen != k->topo_push_gen) {
        k->topo_push_gen = gen;
        if (k->routing) {
            k->topo_stale = 1; /* read at the start of the next request */
        }
    }
}

void hyc_push_event(struct hyc_core *k, halyard_event ev)
{
    push_event(k, ev, NULL);
}

int hyc_take_event(struct hyc_core *k, struct hyc_event *out)
{
    if (k->ev_count == 0) {
        return 0;
    }
    *out = k->events[k->ev_head];
    k->ev_head = (k->ev_head + 1) % EVENTS_MAX;
    k->ev_count--;
    return 1;
}

/* No member of this cluster could be connected for cluster_connect_timeout_ms: the next
 * cluster of the list. A write that may have reached the one left is UNKNOWN: its session
 * does not exist on the next. */
static void use_cluster(struct hyc_core *k, size_t ci, uint64_t now_ms)
{
    k->ci = ci;
    k->fb_healthy_since_ms = 0;
    k->fb_next_probe_ms = now_ms + k->cfg.failback_after_ms / 3;
    const struct hyc_cluster *cl = &k->clusters[k->ci];
    memcpy(k->members, cl->members, cl->n * sizeof(k->members[0]));
    memset(k->breakers, 0, sizeof(k->breakers));
    memset(k->rtt_known, 0, sizeof(k->rtt_known));
    memset(k->wrr_cw, 0, sizeof(k->wrr_cw));
    k->ro_off = 0;
    memset(k->ev_cursor, 0, sizeof(k->ev_cursor));
    memset(k->ev_synced, 0, sizeof(k->ev_synced));
    k->ev_off = 0;
    k->n_members = cl->n;
    k->cur = 0;
    k->tried_in_round = 0;
    k->wait_until_ms = 0;
    k->backoff_ms = k->cfg.backoff_initial_ms;
    k->unreachable_since_ms = now_ms;
    memset(k->sess, 0, sizeof(k->sess));
    k->parts = 0;
    k->parts_query = 0;
    k->sessions_off = 0;
    k->routing = k->cfg.smart_routing && !k->cfg.tls;
    k->topo_stale = 1;
    k->n_ranges = 0;
    k->region_query = 1;
    k->changed_cluster = 1;
    k->stats.cluster_changes++;
}

static void change_cluster(struct hyc_core *k, uint64_t now_ms)
{
    size_t ci = (k->ci + 1) % k->n_clusters;
    if (ci == 0 && k->cfg.failover_try_count > 0 && ++k->rounds >= k->cfg.failover_try_count) {
        k->gave_up = 1;
    }
    use_cluster(k, ci, now_ms);
}

/* Fail-back: time to probe the first cluster (between requests' attempts only: nothing of
 * this request has been sent). */
static int failback_due(const struct hyc_core *k, uint64_t now_ms)
{
    return k->cfg.failback_after_ms > 0 && k->ci != 0 && !k->gave_up && !k->done && !k->sent &&
           k->inflight == FRAME_NONE && now_ms >= k->fb_next_probe_ms;
}

void hyc_probed(struct hyc_core *k, int ok, uint64_t now_ms)
{
    k->fb_next_probe_ms = now_ms + k->cfg.failback_after_ms / 3;
    if (!ok) {
        k->fb_healthy_since_ms = 0;
        k->fb_member = (k->fb_member + 1) % k->clusters[0].n; /* another member next time */
        return;
    }
    if (k->fb_healthy_since_ms == 0) {
        k->fb_healthy_since_ms = now_ms;
    }
    if (now_ms - k->fb_healthy_since_ms >= k->cfg.failback_after_ms) {
        /* Healthy for the whole hysteresis: back to the first cluster (a fresh round). */
        k->rounds = 0;
        use_cluster(k, 0, now_ms);
        k->unreachable_since_ms = 0;
        k->stats.failbacks++;
        if (k->up) {
            k->must_close = 1;
        }
    }
}

uint64_t hyc_session(const struct hyc_core *k)
{
    for (size_t g = 0; g < GROUPS_MAX; g++) {
        if (k->sess[g].id != 0) {
            return k->sess[g].id;
        }
    }
    return 0;
}

/* The group whose store holds the request's key: partition p is group p + 1 and holds the
 * slots s with s * parts / 16384 == p (docs/partitioning.md); keyless writes, and every write
 * on a cluster of one partition, go to group 0. */
static int request_group(const struct hyc_core *k)
{
    if (k->parts <= 1 || !k->has_slot) {
        return 0;
    }
    return 1 + (int)(((uint32_t)k->slot * k->parts) / HY_SLOT_COUNT);
}

/* The start of HY.REQ session seq <command...> for a command of argc arguments. */
static void put_req_head(struct hy_buf *b, int argc, uint64_t session, uint64_t seq)
{
    resp_request_header(b, '*', (size_t)argc + 3);
    hy_buf_append(b, "$6\r\nHY.REQ\r\n", 12);
    uint64_t v[2] = {session, seq};
    for (int j = 0; j < 2; j++) {
        char tmp[24];
        size_t i = sizeof(tmp);
        do {
            tmp[--i] = (char)('0' + v[j] % 10);
            v[j] /= 10;
        } while (v[j] > 0);
        resp_request_arg(b, tmp + i, sizeof(tmp) - i);
    }
}

void hyc_begin(struct hyc_core *k, int argc, const char *const *argv, const size_t *argvlen,
               uint64_t now_ms)
{
    hy_buf_reset(&k->args);
    for (int i = 0; i < argc; i++) {
        resp_request_arg(&k->args, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    }
    size_t n0 = argvlen ? argvlen[0] : strlen(argv[0]);
    size_t n = n0 < NAME_MAX_LEN ? n0 : NAME_MAX_LEN;
    for (size_t i = 0; i < n; i++) {
        k->name[i] = (char)tolower((unsigned char)argv[0][i]);
    }
    k->name[n] = '\0';
    k->argc = argc;
    k->is_write = !is_read(k->name);
    k->has_slot = argc >= 2 && !no_key(k->name);
    k->slot = k->has_slot
                  ? hy_key_slot((const uint8_t *)argv[1], argvlen ? argvlen[1] : strlen(argv[1]))
                  : 0;
    k->done = 0;
    k->req_session = k->seq = 0;
    k->maybe_applied = 0;
    k->region_moves = 0;
    k->has_avoid = 0;
    k->heard = 0;
    k->linear = 0;
    k->deadline_ms = now_ms + k->cfg.request_timeout_ms;
    k->inflight = FRAME_NONE;
    k->sent = 0;
    k->status = HALYARD_OK;
    halyard_reply_free(k->reply);
    k->reply = NULL;
    snprintf(k->last_err, sizeof(k->last_err), "no member answered");
}

static int wrappable(const struct hyc_core *k)
{
    if (!k->is_write || !k->cfg.sessions || k->sessions_off) {
        return 0;
    }
    for (size_t i = 0; i < k->n_nowrap; i++) {
        if (strcmp(k->nowrap[i], k->name) == 0) {
            return 0;
        }
    }
    return 1;
}

static void uncount(struct hyc_core *k);

static void finish(struct hyc_core *k, halyard_status st, halyard_reply *r, const char *msg)
{
    uncount(k);
    k->done = 1;
    k->status = st;
    k->reply = r != NULL ? r : hyc_reply_error(msg);
}

/* Waits a backoff step (drawn from [w*(1-jitter), w]) before the next attempt; the step grows
 * by the multiplier up to the maximum. */
static void back_off(struct hyc_core *k, uint64_t now_ms)
{
    uint64_t w = k->backoff_ms;
    uint64_t lo = (uint64_t)((double)w * (1.0 - k->cfg.backoff_jitter));
    k->wait_until_ms = now_ms + (lo < w ? hy_prng_range(&k->prng, lo, w) : w);
    double next = (double)k->backoff_ms * k->cfg.backoff_multiplier;
    k->backoff_ms = next > k->cfg.backoff_max_ms ? k->cfg.backoff_max_ms : (uint32_t)next;
}

/* A member answered: the next failure starts a fresh round. */
static void answered(struct hyc_core *k)
{
    k->backoff_ms = k->cfg.backoff_initial_ms;
    k->tried_in_round = 0;
}

static int breaker_open(const struct hyc_core *k, size_t m, uint64_t now_ms)
{
    return k->cfg.breaker_failures > 0 && now_ms < k->breakers[m].open_until_ms;
}

/* A failure of member m: its breaker opens after breaker_failures in a row, or again at once
 * when it was half-open (its probe failed). */
static void breaker_fail(struct hyc_core *k, size_t m, uint64_t now_ms)
{
    struct breaker *b = &k->breakers[m];
    if (k->cfg.breaker_failures == 0) {
        return;
    }
    int half_open = b->open_until_ms != 0 && now_ms >= b->open_until_ms;
    if (++b->failures >= k->cfg.breaker_failures || half_open) {
        b->open_until_ms = now_ms + k->cfg.breaker_cooldown_ms;
        k->stats.breaker_opens++;
    }
}

static void breaker_ok(struct hyc_core *k, size_t m)
{
    k->breakers[m] = (struct breaker){0, 0};
}

/* The in-flight table's entry of member m (FNV-1a of its address, linear probing), claimed
 * when `claim`; NULL when absent (or the table is full: that member is not counted). */
static atomic_uint *load_entry(struct hyc_load *l, const struct hyc_member *m, int claim)
{
    uint64_t key = 14695981039346656037ull;
    for (const char *p = m->host; *p != '\0'; p++) {
        key = (key ^ (uint8_t)*p) * 1099511628211ull;
    }
    key = ((key ^ (uint64_t)m->port) * 1099511628211ull) | 1; /* never 0: 0 is free */
    for (size_t j = 0; j < HYC_LOAD_MAX; j++) {
        size_t i = (size_t)((key + j) % HYC_LOAD_MAX);
        uint64_t seen = atomic_load(&l->e[i].key);
        if (seen == 0) {
            if (!claim) {
                return NULL;
            }
            if (atomic_compare_exchange_strong(&l->e[i].key, &seen, key) || seen == key) {
                return &l->e[i].n;
            }
        }
        if (seen == key) {
            return &l->e[i].n;
        }
    }
    return NULL;
}

uint32_t hyc_load_get(struct hyc_load *l, const struct hyc_member *m)
{
    atomic_uint *e = load_entry(l, m, 0);
    return e != NULL ? atomic_load(e) : 0;
}

void hyc_set_load(struct hyc_core *k, struct hyc_load *l)
{
    k->load = l != NULL ? l : &k->own_load;
}

static uint32_t load_of(const struct hyc_core *k, size_t m)
{
    return hyc_load_get(k->load, &k->members[m]);
}

/* Whether member m has max_inflight_per_member requests of the client in flight. */
static int member_full(const struct hyc_core *k, size_t m)
{
    return k->cfg.max_inflight_per_member > 0 && load_of(k, m) >= k->cfg.max_inflight_per_member;
}

/* Counts one request in flight to member m unless it is full (then 0: shed). The increment
 * comes first, so cores on several threads never pass the bound together. */
static atomic_uint *claim_slot(struct hyc_core *k, size_t m)
{
    atomic_uint *e = load_entry(k->load, &k->members[m], 1);
    if (e == NULL) {
        static atomic_uint uncounted; /* a full table: counted nowhere that matters */
        atomic_fetch_add(&uncounted, 1);
        return &uncounted;
    }
    unsigned before = atomic_fetch_add(e, 1);
    if (k->cfg.max_inflight_per_member > 0 && before >= k->cfg.max_inflight_per_member) {
        atomic_fetch_sub(e, 1);
        return NULL;
    }
    return e;
}

/* The request's attempt is no longer in flight (answered, lost, ended, or moved). */
static void uncount(struct hyc_core *k)
{
    if (k->counted != NULL) {
        atomic_fetch_sub(k->counted, 1);
        k->counted = NULL;
    }
}

/* The weight of member m for HALYARD_LB_WEIGHTED: the first cluster's addrs as configured,
 * any other member 1. */
static uint32_t weight_of(const struct hyc_core *k, size_t m)
{
    return k->ci == 0 && m < k->clusters[0].n ? k->weights0[m] : 1;
}

/* Moves on to the next member whose breaker is not open (the current one again when it is the
 * only such; when every breaker is open, the next member anyway: a breaker only saves
 * attempts while some member may answer); after a whole round of failures, backs off. */
static void next_member(struct hyc_core *k, uint64_t now_ms)
{
    size_t next = (k->cur + 1) % k->n_members;
    for (size_t i = 0; i < k->n_members; i++) { /* the current one last */
        size_t m = (k->cur + 1 + i) % k->n_members;
        if (!breaker_open(k, m, now_ms)) {
            next = m;
            break;
        }
        k->stats.breaker_skips++;
        ++k->tried_in_round; /* skipped: counts as tried in this round */
    }
    k->cur = next;
    if (++k->tried_in_round >= k->n_members) {
        k->tried_in_round = 0;
        back_off(k, now_ms);
    }
}

/* Outcome at the deadline: what can honestly be said of this request. */
static void expire(struct hyc_core *k)
{
    char msg[400];
    int in_flight = k->inflight == FRAME_REQ && k->sent;
    if (k->is_write && (k->maybe_applied || in_flight)) {
        snprintf(msg, sizeof(msg),
                 "UNKNOWN outcome: the write was sent but no answer came before the request "
                 "deadline (last: %s); it may or may not be applied",
                 k->last_err);
        finish(k, HALYARD_UNKNOWN, NULL, msg);
    } else if (in_flight) {
        snprintf(msg, sizeof(msg), "TIMEOUT no answer to the read before the request deadline");
        finish(k, HALYARD_TIMEOUT, NULL, msg);
    } else if (!k->up && k->unreachable_since_ms != 0 && !k->heard) {
        /* No member answered anything during the request and none is connected (each refused,
         * timed out or failed its handshake): not applied, and the program may want to know
         * why. A member that answered (-NOQUORUM, say) was reachable: not this status. */
        snprintf(msg, sizeof(msg),
                 "UNREACHABLE no member of the cluster could be connected before the request "
                 "deadline; not applied (last: %s)",
                 k->last_err);
        finish(k, HALYARD_UNREACHABLE, NULL, msg);
    } else if (strncmp(k->last_err, "NOQUORUM ", 9) == 0) {
        /* The server's words first, so that halyard_quorum_parse reads them. */
        snprintf(msg, sizeof(msg),
                 "%s (not applied: no majority of the partition could be reached before the "
                 "request deadline)",
                 k->last_err);
        finish(k, HALYARD_NO_QUORUM, NULL, msg);
    } else {
        snprintf(msg, sizeof(msg),
                 "NOT APPLIED no member could take the request before the deadline (last: %s)",
                 k->last_err);
        finish(k, HALYARD_NOT_APPLIED, NULL, msg);
    }
}

static void lose_connection(struct hyc_core *k, uint64_t now_ms);

/* The key's range in the slot map (even a stale map when `stale_ok`), or NULL. */
static const struct slot_range *find_range_in(const struct hyc_core *k, int stale_ok)
{
    if (!k->routing || (k->topo_stale && !stale_ok) || !k->has_slot) {
        return NULL;
    }
    for (size_t i = 0; i < k->n_ranges; i++) {
        if (k->slot >= k->ranges[i].start && k->slot <= k->ranges[i].end) {
            return &k->ranges[i];
        }
    }
    return NULL;
}

static const struct slot_range *find_range(const struct hyc_core *k)
{
    return find_range_in(k, 0);
}

static int is_avoided(const struct hyc_core *k, size_t m)
{
    return k->has_avoid && k->members[m].port == k->avoid.port &&
           strcmp(k->members[m].host, k->avoid.host) == 0;
}

/* Whether this request is a read to send to a replica (read_from REPLICA or NEAREST). */
static int replica_read(const struct hyc_core *k)
{
    return !k->is_write && k->cfg.read_from != HALYARD_READ_LEADER && !k->ro_off && !k->linear;
}

/* max_staleness_ms: whether member m may serve this read from its own copy (no bound: yes; a
 * keyed read: its verdict for the key's partition; a keyless one: fresh for every partition it
 * holds). Unmeasured: no. */
static int within_bound(const struct hyc_core *k, size_t m)
{
    if (k->cfg.max_staleness_ms == 0) {
        return 1;
    }
    int seen = 0;
    for (size_t i = 0; i < k->n_fresh; i++) {
        if (k->fresh[i].member != m) {
            continue;
        }
        if (k->has_slot && k->slot >= k->fresh[i].lo && k->slot <= k->fresh[i].hi) {
            return k->fresh[i].fresh;
        }
        if (!k->has_slot && !k->fresh[i].fresh) {
            return 0;
        }
        seen = 1;
    }
    return !k->has_slot && seen;
}

/* LEAST_OUTSTANDING leaves the current member for one with this many fewer requests in flight
 * (a margin, so that two members with about the same load do not swap the connection at every
 * request). */
#define LOR_MARGIN 2

/* The balancer's pick among n candidates (n > 0). */
static size_t balance(struct hyc_core *k, const size_t *cand, size_t n)
{
    switch (k->cfg.load_balancer) {
    case HALYARD_LB_RANDOM: return cand[hy_prng_range(&k->prng, 0, n - 1)];
    case HALYARD_LB_LEAST_OUTSTANDING: {
        uint32_t least = UINT32_MAX;
        for (size_t i = 0; i < n; i++) {
            uint32_t l = load_of(k, cand[i]);
            least = l < least ? l : least;
        }
        size_t start = k->rr++;
        for (size_t j = 0; j < n; j++) { /* ties in turn */
            size_t m = cand[(start + j) % n];
            if (load_of(k, m) == least) {
                return m;
            }
        }
        return cand[start % n]; /* the counts moved meanwhile */
    }
    case HALYARD_LB_WEIGHTED: {
        /* Smooth weighted round robin: each pick adds every candidate's weight to its current
         * weight, takes the highest and subtracts the total from it, so over sum(weights)
         * picks each member gets its weight's share, interleaved. Weight 0 counts only when no
         * candidate weighs more. */
        int any = 0;
        for (size_t i = 0; i < n; i++) {
            any |= weight_of(k, cand[i]) > 0;
        }
        int64_t total = 0;
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            int64_t w = any ? (int64_t)weight_of(k, cand[i]) : 1;
            if (w == 0) {
                continue;
            }
            total += w;
            k->wrr_cw[cand[i]] += w;
            if (best == SIZE_MAX || k->wrr_cw[cand[i]] > k->wrr_cw[best]) {
                best = cand[i];
            }
        }
        k->wrr_cw[best] -= total;
        return best;
    }
    default: return cand[k->rr++ % n];
    }
}

/* Whether the current member, a candidate, should be kept: yes until the next pick is due,
 * unless LEAST_OUTSTANDING sees another candidate with LOR_MARGIN fewer requests in flight. */
static int keep_current(const struct hyc_core *k, const size_t *cand, size_t n)
{
    if (k->repick) {
        return 0;
    }
    if (k->cfg.load_balancer != HALYARD_LB_LEAST_OUTSTANDING) {
        return 1;
    }
    uint32_t mine = load_of(k, k->cur);
    for (size_t i = 0; i < n; i++) {
        if (load_of(k, cand[i]) + LOR_MARGIN <= mine) {
            return 0;
        }
    }
    return 1;
}

/* A read to a replica: the current member while it stays eligible (a replica of the key's
 * partition, breaker closed, not avoided, not full: max_inflight_per_member; after a failure the
 * core has moved on to the next member) until the next topology refresh, else one picked by the
 * balancer (NEAREST: the lowest round trip, unmeasured members first so that each gets
 * measured). SIZE_MAX when none is eligible, or while the slot map is being read. */
static size_t route_read(struct hyc_core *k, uint64_t now_ms)
{
    size_t cand[HYC_MEMBERS_MAX], n = 0;
    /* A stale map still names the replicas (stale reads are allowed here); none read yet: the
     * first connection reads it. */
    const struct slot_range *r = find_range_in(k, 1);
    if (r == NULL && k->routing && k->has_slot && k->n_ranges == 0) {
        return SIZE_MAX;
    }
    size_t total = r != NULL ? r->n_replicas : k->n_members;
    for (size_t i = 0; i < total; i++) {
        size_t m = r != NULL ? r->replicas[i] : i;
        if (!breaker_open(k, m, now_ms) && !is_avoided(k, m) && within_bound(k, m) &&
            !member_full(k, m)) {
            cand[n++] = m;
        }
    }
    if (n == 0) {
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++) { /* connected, or about to connect */
        if (cand[i] == k->cur && keep_current(k, cand, n)) {
            return k->cur;
        }
    }
    k->repick = 0;
    if (k->cfg.read_from == HALYARD_READ_NEAREST) {
        size_t best = cand[0];
        for (size_t i = 1; i < n; i++) {
            uint64_t a = k->rtt_known[cand[i]] ? k->rtt_x8[cand[i]] + 1 : 0;
            uint64_t b = k->rtt_known[best] ? k->rtt_x8[best] + 1 : 0;
            if (a < b) {
                best = cand[i];
            }
        }
        return best;
    }
    return balance(k, cand, n);
}

/* The member the request should go to: its slot's, by the map (unless its breaker is open:
 * then the current member, which forwards), else the current one; a read to a replica by
 * route_read. A hedged copy avoids the member its first copy went to: then the next member
 * (which forwards to the leader). */
static size_t route(struct hyc_core *k, uint64_t now_ms)
{
    if (replica_read(k)) {
        size_t m = route_read(k, now_ms);
        if (m != SIZE_MAX) {
            return m;
        }
        /* No replica within the bound: a linearizable read, through the leader. */
        k->linear = k->cfg.max_staleness_ms > 0;
    }
    size_t target = k->cur;
    const struct slot_range *r = find_range(k);
    if (r != NULL && !breaker_open(k, r->member, now_ms)) {
        target = r->member;
    }
    for (size_t i = 0; i < k->n_members && is_avoided(k, target); i++) {
        target = (target + 1) % k->n_members;
    }
    return target;
}

/* A member named in the slot map: its index, learned if new (SIZE_MAX when full). */
static size_t learn_member(struct hyc_core *k, const struct resp_value *node)
{
    if (node->type != RESP_ARRAY || node->count < 2 || node->elems[0].str == NULL ||
        node->elems[1].type != RESP_INTEGER || node->elems[0].len > HYC_HOST_MAX ||
        node->elems[1].integer < 1 || node->elems[1].integer > 65535) {
        return SIZE_MAX;
    }
    struct hyc_member m;
    memcpy(m.host, node->elems[0].str, node->elems[0].len);
    m.host[node->elems[0].len] = '\0';
    m.port = (int)node->elems[1].integer;
    for (size_t i = 0; i < k->n_members; i++) {
        if (strcmp(k->members[i].host, m.host) == 0 && k->members[i].port == m.port) {
            return i;
        }
    }
    if (k->n_members == HYC_MEMBERS_MAX) {
        return SIZE_MAX;
    }
    k->members[k->n_members] = m;
    return k->n_members++;
}

/* CLUSTER SLOTS: [[start, end, [host, port, id], replicas...], ...]. */
static void read_topology(struct hyc_core *k, const struct resp_value *v, uint64_t now_ms)
{
    if (v->type == RESP_ERROR || v->type == RESP_BULK_ERROR) {
        k->routing = 0; /* no cluster support (a plain Redis): requests go where they are */
        return;
    }
    k->n_ranges = 0;
    for (size_t i = 0; v->type == RESP_ARRAY && i < v->count && k->n_ranges < RANGES_MAX; i++) {
        const struct resp_value *r = &v->elems[i];
        if (r->type != RESP_ARRAY || r->count < 3 || r->elems[0].type != RESP_INTEGER ||
            r->elems[1].type != RESP_INTEGER || r->elems[0].integer < 0 ||
            r->elems[1].integer > 16383 || r->elems[0].integer > r->elems[1].integer) {
            continue;
        }
        size_t m = learn_member(k, &r->elems[2]);
        if (m == SIZE_MAX) {
            continue;
        }
        struct slot_range *sr = &k->ranges[k->n_ranges++];
        *sr = (struct slot_range){.start = (uint16_t)r->elems[0].integer,
                                  .end = (uint16_t)r->elems[1].integer,
                                  .member = m};
        for (size_t j = 2; j < r->count && sr->n_replicas < REPLICAS_MAX; j++) {
            size_t rm = learn_member(k, &r->elems[j]);
            if (rm != SIZE_MAX) {
                sr->replicas[sr->n_replicas++] = rm;
            }
        }
    }
    /* An empty map (no leader right now): requests stay where they are, and the map is read
     * again in a second rather than at once. */
    k->topo_stale = 0;
    /* Replica reads choose again with the new map: the balancer spreads clients that all
     * started on the first address, and NEAREST may have measured a nearer member. */
    k->repick = k->cfg.read_from != HALYARD_READ_LEADER;
    k->topo_read_ms = k->n_ranges > 0 || k->cfg.topology_refresh_ms <= 1000
                          ? now_ms
                          : now_ms - k->cfg.topology_refresh_ms + 1000;
    k->stats.topology_reads++;
}

static void build_frame(struct hyc_core *k)
{
    hy_buf_reset(&k->out);
    if (!k->authed && k->password != NULL) {
        hy_buf_append_str(&k->out, k->username ? "*3\r\n$4\r\nAUTH\r\n" : "*2\r\n$4\r\nAUTH\r\n");
        if (k->username != NULL) {
            resp_request_arg(&k->out, k->username, strlen(k->username));
        }
        resp_request_arg(&k->out, k->password, strlen(k->password));
        k->inflight = FRAME_AUTH;
        return;
    }
    if (k->region_query) {
        hy_buf_append_str(&k->out, "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n");
        k->inflight = FRAME_REGION;
        return;
    }
    if (k->routing && k->topo_stale) {
        hy_buf_append_str(&k->out, "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n");
        k->inflight = FRAME_TOPO;
        return;
    }
    if (k->ev_due) {
        char since[24];
        int n = snprintf(since, sizeof(since), "%llu", (unsigned long long)k->ev_cursor[k->cur]);
        if (k->ev_synced[k->cur]) {
            hy_buf_append_str(&k->out, "*6\r\n$7\r\nHALYARD\r\n$6\r\nEVENTS\r\n$5\r\nSINCE\r\n");
            resp_request_arg(&k->out, since, (size_t)n);
            hy_buf_append_str(&k->out, "$5\r\nCOUNT\r\n$4\r\n1000\r\n");
        } else { /* the first time: only where its events stand */
            hy_buf_append_str(&k->out,
                              "*4\r\n$7\r\nHALYARD\r\n$6\r\nEVENTS\r\n$5\r\nCOUNT\r\n$1\r\n1\r\n");
        }
        k->inflight = FRAME_EVENTS;
        return;
    }
    if (replica_read(k) && !k->ro_on) {
        hy_buf_append_str(&k->out, "*1\r\n$8\r\nREADONLY\r\n");
        k->inflight = FRAME_RO;
        return;
    }
    if (k->linear && k->ro_on) { /* a read the bound sends to the leader: no local copy */
        hy_buf_append_str(&k->out, "*1\r\n$9\r\nREADWRITE\r\n");
        k->inflight = FRAME_RW;
        return;
    }
    int wrap = wrappable(k);
    if (wrap && k->parts_query) {
        hy_buf_append_str(&k->out, "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n");
        k->inflight = FRAME_PARTS;
        return;
    }
    int g = request_group(k);
    if (wrap && k->seq == 0 && k->sess[g].id == 0) {
        char ttl[24], slot[8];
        int n = snprintf(ttl, sizeof(ttl), "%u", k->cfg.session_ttl_ms);
        int ns = snprintf(slot, sizeof(slot), "%u", (unsigned)k->slot);
        hy_buf_append_str(&k->out, g == 0 ? "*3\r\n$10\r\nHY.SESSION\r\n$4\r\nOPEN\r\n"
                                          : "*5\r\n$10\r\nHY.SESSION\r\n$4\r\nOPEN\r\n");
        resp_request_arg(&k->out, ttl, (size_t)n);
        if (g != 0) {
            resp_request_arg(&k->out, "SLOT", 4); /* opened in the key's partition */
            resp_request_arg(&k->out, slot, (size_t)ns);
        }
        k->open_group = g;
        k->inflight = FRAME_OPEN;
        return;
    }
    if (wrap) {
        if (k->seq == 0) {
            k->req_session = k->sess[g].id;
            k->seq = k->sess[g].next_seq++;
        }
        put_req_head(&k->out, k->argc, k->req_session, k->seq);
    } else {
        resp_request_header(&k->out, '*', (size_t)k->argc);
    }
    hy_buf_append(&k->out, k->args.data, k->args.len);
    k->inflight = FRAME_REQ;
    if (!k->is_write && k->ro_on) {
        k->stats.replica_reads++;
    }
}

void hyc_next(struct hyc_core *k, uint64_t now_ms, struct hyc_action *a)
{
    memset(a, 0, sizeof(*a));
    if (!k->done && now_ms >= k->deadline_ms) {
        expire(k);
        if (k->up && k->inflight != FRAME_NONE && k->sent) {
            k->must_close = 1; /* a late answer would be taken for the next request's */
            /* The member did not answer within the whole deadline: a failure of it, as after
             * attempt_timeout_ms (which may be longer), so the next request does not wait on
             * it again (a stopped member that still accepts connections would otherwise keep
             * every request of this connection until its deadline). */
            breaker_fail(k, k->cur, now_ms);
            k->cur = (k->cur + 1) % k->n_members;
        }
    }
    if (!k->done && k->up &&
        (k->abandon || (k->sent && now_ms >= k->sent_ms + k->cfg.attempt_timeout_ms))) {
        const struct hyc_member *m = &k->members[k->cur];
        snprintf(k->last_err, sizeof(k->last_err), "%.160s:%d did not answer within %s", m->host,
                 m->port, k->abandon ? "heartbeat_timeout_ms" : "attempt_timeout_ms");
        k->abandon = 0;
        lose_connection(k, now_ms); /* closes: a late answer must not be read as the next */
        k->must_close = 1;
    }
    if (k->must_close) {
        uncount(k);
        k->must_close = 0;
        k->up = k->authed = 0;
        k->inflight = FRAME_NONE;
        k->sent = 0;
        hy_buf_reset(&k->in);
        a->what = HYC_DO_CLOSE;
        return;
    }
    if (k->done) {
        a->what = HYC_DO_DONE;
        return;
    }
    if (failback_due(k, now_ms)) {
        a->what = HYC_DO_PROBE;
        a->probe = &k->clusters[0].members[k->fb_member];
        a->until_ms = now_ms + k->cfg.connect_timeout_ms;
        return;
    }
    /* The move to the next cluster is due at its moment: a backoff step does not delay it. */
    int may_move = !k->up && k->n_clusters > 1 && k->unreachable_since_ms != 0 && !k->done;
    uint64_t move_ms = k->unreachable_since_ms + k->cfg.cluster_connect_timeout_ms;
    if (now_ms < k->wait_until_ms && !(may_move && now_ms >= move_ms)) {
        a->what = HYC_DO_SLEEP;
        a->until_ms = k->wait_until_ms < k->deadline_ms ? k->wait_until_ms : k->deadline_ms;
        if (may_move && move_ms < a->until_ms) {
            a->until_ms = move_ms;
        }
        return;
    }
    if (may_move && now_ms >= move_ms) {
        if (k->is_write && k->maybe_applied) {
            char msg[400];
            snprintf(msg, sizeof(msg),
                     "UNKNOWN outcome: the write was sent to cluster %s, which became "
                     "unreachable before it answered; it may or may not be applied there",
                     k->clusters[k->ci].name);
            finish(k, HALYARD_UNKNOWN, NULL, msg);
            change_cluster(k, now_ms);
            a->what = HYC_DO_DONE;
            return;
        }
        k->seq = 0; /* never sent: a new slot in the next cluster's session */
        change_cluster(k, now_ms);
    }
    if (k->gave_up && !k->done) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "UNREACHABLE no cluster could be reached in %u rounds (failover_try_count); "
                 "not applied",
                 k->cfg.failover_try_count);
        finish(k, HALYARD_UNREACHABLE, NULL, msg);
        a->what = HYC_DO_DONE;
        return;
    }
    if (k->routing && !k->topo_stale && now_ms >= k->topo_read_ms + k->cfg.topology_refresh_ms) {
        k->topo_stale = 1;
    }
    size_t target = route(k, now_ms);
    if (target != k->cur && (k->inflight == FRAME_NONE || !k->sent)) {
        /* The map says another member serves this key: go there (not mid-request). */
        uncount(k); /* a frame built for the member left, not sent */
        k->cur = target;
        k->stats.routed++;
        if (k->up) {
            k->up = k->authed = 0;
            k->inflight = FRAME_NONE;
            k->sent = 0;
            hy_buf_reset(&k->in);
            a->what = HYC_DO_CLOSE;
            return;
        }
    }
    if (!k->up) {
        uint64_t until = now_ms + k->cfg.connect_timeout_ms;
        a->what = HYC_DO_CONNECT;
        a->member = k->cur;
        a->until_ms = until < k->deadline_ms ? until : k->deadline_ms;
        k->connecting = 1;
        return;
    }
    if (k->cfg.events_poll_ms > 0 && !k->ev_off && k->inflight == FRAME_NONE && !k->sent &&
        now_ms >= k->ev_next_ms) {
        k->ev_due = 1;
    }
    if (k->inflight == FRAME_NONE) {
        build_frame(k);
    }
    if (k->inflight == FRAME_REQ && !k->sent && k->counted == NULL) {
        /* Counted in flight to its member from now; a member full of the client's requests
         * sheds it (not applied), except a write re-sent under its session slot, an earlier
         * copy of which may have run: "not applied" could not be said of it. */
        k->counted = claim_slot(k, k->cur);
        if (k->counted == NULL && k->maybe_applied) {
            k->counted = load_entry(k->load, &k->members[k->cur], 1);
            if (k->counted != NULL) {
                atomic_fetch_add(k->counted, 1);
            }
        } else if (k->counted == NULL) {
            const struct hyc_member *m = &k->members[k->cur];
            char msg[400];
            snprintf(msg, sizeof(msg),
                     "BUSY shed by the client: %s:%d already has %u requests of this client in "
                     "flight (max_inflight_per_member); not applied",
                     m->host, m->port, k->cfg.max_inflight_per_member);
            k->inflight = FRAME_NONE; /* built, never sent: the session slot stays unused */
            k->stats.shed++;
            k->stats.member_sheds++;
            finish(k, HALYARD_BUSY, NULL, msg);
            a->what = HYC_DO_DONE;
            return;
        }
    }
    if (!k->sent) {
        a->what = HYC_DO_SEND;
        a->data = k->out.data;
        a->len = k->out.len;
        return;
    }
    uint64_t give_up = k->sent_ms + k->cfg.attempt_timeout_ms;
    a->what = HYC_DO_RECV;
    a->until_ms = give_up < k->deadline_ms ? give_up : k->deadline_ms;
}

void hyc_connected(struct hyc_core *k, uint64_t now_ms)
{
    (void)now_ms;
    k->connecting = 0;
    k->up = 1;
    k->authed = 0;
    k->ro_on = 0;
    k->inflight = FRAME_NONE;
    k->sent = 0;
    hy_buf_reset(&k->in);
    k->stats.connects++;
    k->unreachable_since_ms = 0;
    k->rounds = 0;
    if (!k->connected) {
        k->connected = 1;
        push_event(k, HALYARD_EV_CLIENT_CONNECTED, &k->members[k->cur]);
    }
    if (k->changed_cluster) {
        k->changed_cluster = 0;
        push_event(k, HALYARD_EV_CLIENT_CHANGED_CLUSTER, &k->members[k->cur]);
    }
}

void hyc_sent(struct hyc_core *k, uint64_t now_ms)
{
    k->sent = 1;
    k->sent_ms = now_ms;
}

/* The connection is gone (or given up): what was in flight on it is lost. A read or a write
 * under its session slot goes again to the next member; a write without one is UNKNOWN. */
static void lose_connection(struct hyc_core *k, uint64_t now_ms)
{
    breaker_fail(k, k->cur, now_ms);
    int lost = k->inflight == FRAME_REQ && k->sent && !k->done;
    if (k->connected) {
        k->connected = 0;
        push_event(k, HALYARD_EV_CLIENT_DISCONNECTED, &k->members[k->cur]);
    }
    k->topo_stale = 1; /* a member went away: leadership may have moved */
    if (k->unreachable_since_ms == 0) {
        k->unreachable_since_ms = now_ms;
    }
    k->connecting = k->up = k->authed = 0;
    k->inflight = FRAME_NONE;
    k->sent = 0;
    uncount(k);
    hy_buf_reset(&k->in);
    if (lost) {
        if (k->is_write && k->seq == 0) {
            char msg[400];
            snprintf(msg, sizeof(msg),
                     "UNKNOWN outcome: %s after the write was sent (no session): it may or may "
                     "not be applied",
                     k->last_err);
            finish(k, HALYARD_UNKNOWN, NULL, msg);
            return;
        }
        k->maybe_applied |= k->is_write; /* sent again under the same slot */
        k->stats.resends++;
    }
    next_member(k, now_ms);
}

void hyc_closed(struct hyc_core *k, uint64_t now_ms)
{
    const struct hyc_member *m = &k->members[k->cur];
    if (k->connecting) {
        k->stats.connect_failures++;
        snprintf(k->last_err, sizeof(k->last_err), "could not connect to %.160s:%d", m->host,
                 m->port);
    } else {
        snprintf(k->last_err, sizeof(k->last_err), "the connection to %.160s:%d was lost", m->host,
                 m->port);
    }
    lose_connection(k, now_ms);
}

static int starts(const struct resp_value *v, const char *prefix)
{
    size_t n = strlen(prefix);
    return v->len >= n && memcmp(v->str, prefix, n) == 0;
}

/* The status of an error answer the core gives to the program: a quorum rule's refusal has its
 * own (not applied, and why), any other is the command's error. */
static halyard_status error_status(const struct resp_value *v)
{
    return starts(v, "QUORUM ") ? HALYARD_QUORUM_RULE : HALYARD_REPLY_ERROR;
}

static void remember(struct hyc_core *k, const struct resp_value *v)
{
    if (v->str == NULL) { /* not an error text: an answer of the wrong kind */
        snprintf(k->last_err, sizeof(k->last_err), "an unexpected reply of type %d", v->type);
        return;
    }
    size_t n = v->len < sizeof(k->last_err) - 1 ? v->len : sizeof(k->last_err) - 1;
    memcpy(k->last_err, v->str, n);
    k->last_err[n] = '\0';
}

/* The member named by -MOVED <slot> <host:port>: found or learned. */
static void follow_moved(struct hyc_core *k, const struct resp_value *v)
{
    const uint8_t *sp = memrchr(v->str, ' ', v->len);
    struct hyc_member m;
    if (sp == NULL || !parse_addr((const char *)sp + 1, v->len - (size_t)(sp + 1 - v->str), &m)) {
        return;
    }
    for (size_t i = 0; i < k->n_members; i++) {
        if (strcmp(k->members[i].host, m.host) == 0 && k->members[i].port == m.port) {
            k->cur = i;
            return;
        }
    }
    if (k->n_members < HYC_MEMBERS_MAX) {
        k->members[k->n_members] = m;
        k->cur = k->n_members++;
    }
}

/* A refusal that says this cluster takes no client writes in region failover (docs/wan.md
 * "Region failover"): a passive WAN target not promoted, or an old primary demoted since. The
 * write did not run. */
static int region_refusal(const struct resp_value *v)
{
    return starts(v, "READONLY this cluster was demoted") ||
           starts(v, "READONLY this cluster is a passive WAN target");
}

/* The cluster in use refused the write by its region role: the next cluster of the list
 * (addrs, failover...: the region priority) is tried at once, on a new connection and a new
 * session there, each at most once per request; once every other cluster was tried, the
 * client waits a backoff step and goes on round the list, until a promotion makes one of them
 * writable or the request's deadline passes (then the refusal is the answer). */
static void follow_region(struct hyc_core *k, uint64_t now_ms)
{
    k->stats.resends++;
    uint32_t backoff_ms =
        k->backoff_ms; /* use_cluster starts a fresh one: this request's goes on */
    k->seq = 0;        /* not applied: a new slot in the next cluster's session */
    use_cluster(k, (k->ci + 1) % k->n_clusters, now_ms);
    k->must_close = 1;
    k->backoff_ms = backoff_ms;
    if (k->region_moves + 1 >= k->n_clusters) { /* every other cluster refused too */
        k->region_moves = 0;
        back_off(k, now_ms);
    } else {
        k->region_moves++;
    }
}

static void on_request_reply(struct hyc_core *k, const struct resp_value *v, uint64_t now_ms)
{
    int err = v->type == RESP_ERROR || v->type == RESP_BULK_ERROR;
    if (!err) {
        answered(k);
        finish(k, HALYARD_OK, hyc_reply_of(v), "out of memory");
        return;
    }
    remember(k, v);
    if (starts(v, "MOVED ")) {
        k->topo_stale = 1; /* the map was wrong: read it again at the next connection */
        k->stats.moved++;
        k->stats.resends++;
        follow_moved(k, v);
        k->must_close = 1; /* reconnect there; nothing ran here */
        return;
    }
    if (starts(v, "TRYAGAIN") || starts(v, "NOQUORUM") || starts(v, "LOADING") ||
        starts(v, "CLUSTERDOWN") || (starts(v, "BUSY") && !k->maybe_applied)) {
        /* Not applied: an election, a minority (then try another member), a member still
         * loading, or one shedding load (-BUSY: its queue is full): wait and send again, the
         * waits growing, so that a loaded cluster is not hit harder. */
        k->stats.resends++;
        k->stats.server_backoffs++;
        back_off(k, now_ms);
        if (starts(v, "NOQUORUM")) {
            k->must_close = 1;
            k->cur = (k->cur + 1) % k->n_members;
        }
        return;
    }
    if (!k->maybe_applied && k->n_clusters > 1 && region_refusal(v)) {
        follow_region(k, now_ms);
        return;
    }
    if (k->maybe_applied && (starts(v, "READONLY") || starts(v, "OOM") || starts(v, "BUSY"))) {
        /* A refusal of this copy only: an earlier one may have been applied, so "refused"
         * cannot be the answer. Tried again until the deadline (then UNKNOWN). */
        k->stats.resends++;
        back_off(k, now_ms);
        return;
    }
    if (k->seq != 0 && starts(v, "UNKNOWN")) {
        k->maybe_applied = 1; /* the same slot again: applied once whatever happened */
        k->stats.resends++;
        back_off(k, now_ms);
        return;
    }
    if (k->seq != 0 && starts(v, "ERR unknown or expired session")) {
        k->sess[request_group(k)].id = 0; /* not applied; a new session, a new slot */
        k->seq = 0;
        return;
    }
    if (k->seq != 0 && !k->maybe_applied && starts(v, "ERR session ") &&
        memmem(v->str, v->len, " belongs to group ", 18) != NULL) {
        /* Not applied: the cluster has partitions and this key's is another. Learn how many
         * (once; a second refusal means the cluster is not what it says: send plain). */
        if (k->parts > 1) {
            k->sessions_off = 1;
        } else {
            k->parts_query = 1;
        }
        k->seq = 0;
        return;
    }
    if (k->seq != 0 && starts(v, "ERR HY.REQ wraps a data write command")) {
        if (k->n_nowrap < NOWRAP_MAX) {
            snprintf(k->nowrap[k->n_nowrap++], NAME_MAX_LEN + 1, "%s", k->name);
        }
        k->seq = 0; /* refused before anything ran: sent plain */
        return;
    }
    if (k->seq != 0 && starts(v, "ERR unknown command") && hyc_session(k) == 0) {
        k->sessions_off = 1;
        k->seq = 0;
        return;
    }
    answered(k);
    finish(k, error_status(v), hyc_reply_of(v), "out of memory");
}

/* The region priority of the cluster in use (CLUSTER INFO's halyard_region_failover_priority,
 * names of clusters in failover order): the clusters of the list it names come first, in its
 * order, the others after them in theirs. The cluster in use stays in use (a move is
 * fail-back's, failback_after_ms, or a failover's); cluster 0, the one fail-back returns to,
 * is now the first of the priority. No priority (none set, an older server): the list as
 * configured. */
static void follow_priority(struct hyc_core *k, const char *info, size_t len)
{
    static const char key[] = "halyard_region_failover_priority:";
    const char *at = memmem(info, len, key, sizeof(key) - 1);
    if (at == NULL) {
        return;
    }
    const char *p = at + sizeof(key) - 1, *end = info + len;
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    end = eol != NULL ? eol : end;
    struct hyc_cluster sorted[HYC_CLUSTERS_MAX];
    uint8_t taken[HYC_CLUSTERS_MAX] = {0};
    size_t n = 0, ci = k->ci;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t nl = (size_t)((comma != NULL ? comma : end) - p);
        for (size_t c = 0; c < k->n_clusters; c++) {
            if (!taken[c] && strlen(k->clusters[c].name) == nl &&
                memcmp(k->clusters[c].name, p, nl) == 0) {
                taken[c] = 1;
                ci = c == k->ci ? n : ci;
                sorted[n++] = k->clusters[c];
                break;
            }
        }
        p += nl + (comma != NULL);
    }
    for (size_t c = 0; c < k->n_clusters; c++) {
        if (!taken[c]) {
            ci = c == k->ci ? n : ci;
            sorted[n++] = k->clusters[c];
        }
    }
    if (memcmp(sorted, k->clusters, n * sizeof(sorted[0])) != 0) {
        memcpy(k->clusters, sorted, n * sizeof(sorted[0]));
        k->ci = ci;
        k->fb_member = 0;
        k->fb_healthy_since_ms = 0;
        k->stats.region_reorders++;
    }
}

static void on_reply(struct hyc_core *k, const struct resp_value *v, uint64_t now_ms)
{
    enum frame f = k->inflight;
    if (f == FRAME_REQ) {
        uncount(k);
    }
    if (f != FRAME_NONE && k->sent) {
        /* A round trip of this member: the average NEAREST reads by. */
        uint32_t sample_x8 =
            (uint32_t)(now_ms - k->sent_ms > 60000 ? 60000 : now_ms - k->sent_ms) * 8;
        uint32_t *avg = &k->rtt_x8[k->cur];
        *avg = k->rtt_known[k->cur] ? *avg - *avg / 8 + sample_x8 / 8 : sample_x8;
        k->rtt_known[k->cur] = 1;
    }
    k->inflight = FRAME_NONE;
    k->sent = 0;
    int err = v->type == RESP_ERROR || v->type == RESP_BULK_ERROR;
    switch (f) {
    case FRAME_RO:
        if (err) {
            k->ro_off = 1; /* a server without READONLY: reads go to the leader */
        } else {
            k->ro_on = 1;
        }
        return;
    case FRAME_RW:
        if (err) {
            k->must_close = 1; /* the connection stays READONLY: a new one is not */
        } else {
            k->ro_on = 0;
        }
        return;
    case FRAME_AUTH:
        if (err) {
            answered(k);
            finish(k, HALYARD_AUTH, hyc_reply_of(v), "out of memory");
        } else {
            k->authed = 1;
        }
        return;
    case FRAME_TOPO: read_topology(k, v, now_ms); return;
    case FRAME_EVENTS:
        k->ev_due = 0;
        k->ev_next_ms = now_ms + k->cfg.events_poll_ms;
        if (err) {
            k->ev_off = 1; /* a server without HALYARD EVENTS (a plain Redis, an older one) */
        } else {
            read_events(k, v);
        }
        return;
    case FRAME_PARTS:
        k->parts_query = 0;
        k->parts = 1;
        if (!err && (v->type == RESP_BULK || v->type == RESP_VERBATIM)) {
            const char *at = memmem(v->str, v->len, "halyard_partitions:", 19);
            if (at != NULL) {
                unsigned long n = strtoul(at + 19, NULL, 10);
                k->parts = n >= 1 && n < GROUPS_MAX ? (uint32_t)n : 1;
            }
        }
        if (k->parts <= 1) {
            k->sessions_off = 1; /* sessions refused, yet no partitions: send plain */
        }
        return;
    case FRAME_REGION:
        k->region_query = 0;
        if (!err && (v->type == RESP_BULK || v->type == RESP_VERBATIM)) {
            follow_priority(k, (const char *)v->str, v->len);
        }
        return;
    case FRAME_OPEN:
        if (!err && v->type == RESP_INTEGER && v->integer > 0) {
            k->sess[k->open_group].id = (uint64_t)v->integer;
            k->sess[k->open_group].next_seq = 1;
            k->stats.sessions_opened++;
        } else if (err && starts(v, "ERR unknown command")) {
            k->sessions_off = 1; /* a plain Redis: writes go plain */
        } else if (err && !k->maybe_applied && k->n_clusters > 1 && region_refusal(v)) {
            remember(k, v);
            follow_region(k, now_ms); /* a passive cluster opens no session either */
        } else {
            remember(k, v);
            back_off(k, now_ms);
        }
        return;
    case FRAME_REQ: on_request_reply(k, v, now_ms); return;
    case FRAME_NONE: break;
    }
    /* An answer to nothing asked: the stream is out of step. */
    snprintf(k->last_err, sizeof(k->last_err), "an unexpected reply; reconnecting");
    k->must_close = 1;
}

void hyc_received(struct hyc_core *k, const uint8_t *data, size_t len, uint64_t now_ms)
{
    k->heard = 1;
    hy_buf_append(&k->in, data, len);
    while (k->in.len > 0 && !k->must_close && !k->done) {
        struct resp_value v;
        size_t used = 0;
        char err[128];
        int rc = resp_value_parse(NULL, k->in.data, k->in.len, &v, &used, err);
        if (rc == HY_EAGAIN) {
            return;
        }
        if (rc != HY_OK) {
            snprintf(k->last_err, sizeof(k->last_err), "protocol error from the server: %s", err);
            lose_connection(k, now_ms); /* as if cut: elsewhere, or UNKNOWN without a slot */
            k->must_close = 1;
            return;
        }
        if (v.type != RESP_PUSH && v.type != RESP_ATTRIBUTE) {
            breaker_ok(k, k->cur); /* it answered: alive, whatever it said */
            on_reply(k, &v, now_ms);
        }
        resp_value_free(&v);
        hy_buf_consume(&k->in, used);
    }
}

halyard_status hyc_take_result(struct hyc_core *k, halyard_reply **reply)
{
    *reply = k->reply;
    k->reply = NULL;
    return k->status;
}

void hyc_avoid(struct hyc_core *k, const struct hyc_member *m)
{
    k->has_avoid = 1;
    k->avoid = *m;
}

const struct hyc_member *hyc_current(const struct hyc_core *k)
{
    return k->up ? &k->members[k->cur] : NULL;
}

void hyc_cancel(struct hyc_core *k, uint64_t now_ms)
{
    (void)now_ms;
    if (k->done) {
        return;
    }
    int in_flight = k->inflight == FRAME_REQ && k->sent;
    if (k->up && k->inflight != FRAME_NONE && k->sent) {
        k->must_close = 1; /* its answer must not be read as the next request's */
    }
    k->stats.cancelled++;
    if (k->is_write && (k->maybe_applied || in_flight)) {
        finish(k, HALYARD_UNKNOWN, NULL,
               "UNKNOWN outcome: the request was cancelled after the write was sent; it may or "
               "may not be applied");
    } else {
        finish(k, HALYARD_CANCELLED, NULL, "CANCELLED the request was cancelled before it ran");
    }
}

void hyc_latency_add(struct hyc_latency *l, uint64_t ms)
{
    l->ms[l->head] = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    l->head = (l->head + 1) % HYC_LATENCY_RING;
    if (l->count < HYC_LATENCY_RING) {
        l->count++;
    }
}

uint64_t hyc_hedge_delay(const struct hyc_latency *l, uint32_t hedge_after_ms)
{
    if (hedge_after_ms > 0) {
        return hedge_after_ms;
    }
    if (l->count < 20) {
        return 50; /* too few reads to know their p95: a guess that hedges only slow ones */
    }
    uint32_t sorted[HYC_LATENCY_RING];
    memcpy(sorted, l->ms, l->count * sizeof(sorted[0]));
    for (size_t i = 1; i < l->count; i++) { /* insertion sort: 256 values at most */
        uint32_t v = sorted[i];
        size_t j = i;
        while (j > 0 && sorted[j - 1] > v) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = v;
    }
    uint32_t p95 = sorted[(l->count * 95 + 99) / 100 - 1];
    return p95 > 0 ? p95 : 1;
}

int hyc_is_read(const char *name, size_t len)
{
    char low[NAME_MAX_LEN + 1];
    if (len > NAME_MAX_LEN) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        low[i] = (char)tolower((unsigned char)name[i]);
    }
    low[len] = '\0';
    return is_read(low);
}

/* The member at m's address, or SIZE_MAX. */
static size_t member_index(const struct hyc_core *k, const struct hyc_member *m)
{
    for (size_t i = 0; i < k->n_members; i++) {
        if (k->members[i].port == m->port && strcmp(k->members[i].host, m->host) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

void hyc_member_down(struct hyc_core *k, const struct hyc_member *m, uint64_t now_ms)
{
    size_t i = member_index(k, m);
    if (i == SIZE_MAX || k->cfg.breaker_failures == 0) {
        return;
    }
    if (!breaker_open(k, i, now_ms)) {
        k->stats.breaker_opens++;
    }
    k->breakers[i].failures = k->cfg.breaker_failures;
    k->breakers[i].open_until_ms = now_ms + k->cfg.breaker_cooldown_ms;
    if (k->up && k->cur == i && k->inflight == FRAME_NONE && !k->sent) {
        k->must_close = 1; /* between requests: leave it now, for the next member */
        next_member(k, now_ms);
    }
}

void hyc_set_fresh(struct hyc_core *k, const struct hyc_fresh *f, size_t n)
{
    k->n_fresh = 0;
    for (size_t i = 0; i < n && k->n_fresh < FRESH_MAX; i++) {
        size_t m = member_index(k, &f[i].m);
        if (m != SIZE_MAX) {
            k->fresh[k->n_fresh].member = m;
            k->fresh[k->n_fresh].lo = f[i].lo;
            k->fresh[k->n_fresh].hi = f[i].hi;
            k->fresh[k->n_fresh].fresh = (uint8_t)(f[i].fresh != 0);
            k->n_fresh++;
        }
    }
}

void hyc_member_up(struct hyc_core *k, const struct hyc_member *m)
{
    size_t i = member_index(k, m);
    if (i != SIZE_MAX) {
        breaker_ok(k, i);
    }
}

void hyc_abandon(struct hyc_core *k)
{
    k->abandon = k->up && !k->done;
}

/* Whether the connected member may serve the request set up in k as it is (see hyc_pipe_add). */
static int pipe_route_ok(struct hyc_core *k, uint64_t now_ms)
{
    if (breaker_open(k, k->cur, now_ms)) {
        return 0;
    }
    if (replica_read(k)) {
        if (!k->ro_on || k->repick || !within_bound(k, k->cur)) {
            return 0;
        }
        const struct slot_range *r = find_range_in(k, 1);
        for (size_t i = 0; r != NULL && i < r->n_replicas; i++) {
            if (r->replicas[i] == k->cur) {
                return 1;
            }
        }
        return r == NULL && (!k->routing || !k->has_slot);
    }
    const struct slot_range *r = find_range(k);
    return r == NULL || r->member == k->cur;
}

int hyc_pipe_add(struct hyc_core *k, int argc, const char *const *argv, const size_t *argvlen,
                 uint64_t now_ms, struct hy_buf *out, struct hyc_pipe_slot *slot)
{
    if (!k->up || k->must_close || k->inflight != FRAME_NONE || k->sent || k->abandon ||
        (k->password != NULL && !k->authed) || !k->done) {
        return 0;
    }
    if (k->region_query ||
        (k->routing && (k->topo_stale || now_ms >= k->topo_read_ms + k->cfg.topology_refresh_ms))) {
        return 0;
    }
    if (k->cfg.events_poll_ms > 0 && !k->ev_off && now_ms >= k->ev_next_ms) {
        return 0;
    }
    /* The request's own fields are free between requests: set them as hyc_begin would. */
    size_t n0 = argvlen ? argvlen[0] : strlen(argv[0]);
    size_t n = n0 < NAME_MAX_LEN ? n0 : NAME_MAX_LEN;
    for (size_t i = 0; i < n; i++) {
        k->name[i] = (char)tolower((unsigned char)argv[0][i]);
    }
    k->name[n] = '\0';
    k->is_write = !is_read(k->name);
    k->has_slot = argc >= 2 && !no_key(k->name);
    k->slot = k->has_slot
                  ? hy_key_slot((const uint8_t *)argv[1], argvlen ? argvlen[1] : strlen(argv[1]))
                  : 0;
    k->has_avoid = 0;
    k->linear = 0;
    if (!pipe_route_ok(k, now_ms)) {
        return 0;
    }
    *slot = (struct hyc_pipe_slot){0, 0, k->is_write};
    int wrap = wrappable(k);
    if (wrap && (k->parts_query || k->sess[request_group(k)].id == 0)) {
        return 0; /* its session is to be opened: the normal path does it */
    }
    atomic_uint *e = claim_slot(k, k->cur);
    if (e == NULL) {
        return 0; /* its member is full: the normal path sheds it */
    }
    if (k->pipe_counted > 0 && e != k->pipe_entry) {
        atomic_fetch_sub(e, 1); /* answers still due from another member: not here */
        return 0;
    }
    k->pipe_entry = e;
    k->pipe_counted++;
    if (wrap) {
        int g = request_group(k);
        slot->session = k->sess[g].id;
        slot->seq = k->sess[g].next_seq++;
        put_req_head(out, argc, slot->session, slot->seq);
    } else {
        resp_request_header(out, '*', (size_t)argc);
    }
    for (int i = 0; i < argc; i++) {
        resp_request_arg(out, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    }
    if (!k->is_write && k->ro_on) {
        k->stats.replica_reads++;
    }
    k->stats.pipelined++;
    return 1;
}

/* Error answers that the normal path handles (anything else is the command's own answer). */
static int needs_core(const struct resp_value *v)
{
    static const char *const prefixes[] = {
        "MOVED ",         "TRYAGAIN",
        "NOQUORUM",       "LOADING",
        "CLUSTERDOWN",    "BUSY",
        "READONLY",       "OOM",
        "UNKNOWN",        "NOAUTH",
        "ERR unknown or", "ERR session ",
        "ERR HY.REQ",     "ERR unknown command",
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (v->str != NULL && starts(v, prefixes[i])) {
            return 1;
        }
    }
    return v->str == NULL;
}

/* A plain write (no session) is sent again only after an answer that says it did not run. */
static int not_run(const struct resp_value *v)
{
    static const char *const prefixes[] = {"MOVED ",  "TRYAGAIN",    "NOQUORUM",
                                           "LOADING", "CLUSTERDOWN", "BUSY"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (v->str != NULL && starts(v, prefixes[i])) {
            return 1;
        }
    }
    return 0;
}

/* n pipelined requests are no longer in flight (counted where they were sent, whatever the
 * core did since). */
static void pipe_uncount(struct hyc_core *k, size_t n)
{
    n = n < k->pipe_counted ? n : k->pipe_counted;
    if (n > 0) {
        atomic_fetch_sub(k->pipe_entry, (unsigned)n);
        k->pipe_counted -= n;
    }
}

int hyc_pipe_answer(struct hyc_core *k, const struct hyc_pipe_slot *slot, const uint8_t *buf,
                    size_t len, size_t *used, halyard_status *st, halyard_reply **reply)
{
    struct resp_value v;
    char err[128];
    *used = 0;
    int rc = resp_value_parse(NULL, buf, len, &v, used, err);
    if (rc == HY_EAGAIN) {
        return 0;
    }
    if (rc != HY_OK) {
        snprintf(k->last_err, sizeof(k->last_err), "protocol error from the server: %s", err);
        return -1;
    }
    *reply = NULL;
    if (v.type == RESP_PUSH || v.type == RESP_ATTRIBUTE) {
        resp_value_free(&v); /* not an answer: consumed, the caller parses on */
        return 3;
    }
    breaker_ok(k, k->cur);
    pipe_uncount(k, 1);
    int is_err = v.type == RESP_ERROR || v.type == RESP_BULK_ERROR;
    int plain_write = slot->is_write && slot->session == 0;
    if (is_err && (plain_write ? not_run(&v) : needs_core(&v))) {
        resp_value_free(&v);
        return 2;
    }
    answered(k);
    *st = is_err ? error_status(&v) : HALYARD_OK;
    *reply = hyc_reply_of(&v);
    if (*reply == NULL) {
        *st = HALYARD_NO_MEMORY;
    }
    resp_value_free(&v);
    return 1;
}

void hyc_pipe_lost(struct hyc_core *k, const char *why, size_t unanswered, uint64_t now_ms)
{
    k->stats.resends += unanswered; /* the shell sends them again (or settles plain writes) */
    pipe_uncount(k, unanswered);
    const struct hyc_member *m = &k->members[k->cur];
    snprintf(k->last_err, sizeof(k->last_err), "%.160s:%d: %s", m->host, m->port, why);
    k->done = 1;
    lose_connection(k, now_ms); /* no request of the core's own runs: bookkeeping only */
    k->must_close = 1;
}

halyard_reply *hyc_pipe_unknown(void)
{
    return hyc_reply_error("UNKNOWN outcome: the connection was lost after the write was sent "
                           "(no session): it may or may not be applied");
}

void hyc_resume(struct hyc_core *k, const struct hyc_pipe_slot *slot, int maybe_applied)
{
    if (slot->session != 0) {
        k->req_session = slot->session;
        k->seq = slot->seq;
        k->maybe_applied = maybe_applied;
    }
}
