/*
 * halyard.h - libhalyard, the C client of halyard (the only public header).
 *
 * A client holds the addresses of a cluster's members and talks RESP to whichever of them
 * serves it. It reconnects by itself (next member at once, then exponential backoff with
 * jitter), follows -MOVED, waits out elections (-TRYAGAIN) and minorities (-NOQUORUM) until a
 * per-request deadline, and by default sends every write inside an exactly-once session
 * (HY.SESSION / HY.REQ): a write whose reply was lost is sent again, with the same sequence
 * number, to whichever member serves now, and is applied once. So a program's write loop
 * needs no try/catch around failovers; what a status means is written next to it below.
 *
 * Threads: a client may be shared; blocking calls on one client run one at a time (a mutex, one
 * connection: a client per thread for parallel blocking calls; beyond max_outstanding waiting
 * calls, HALYARD_BUSY);
 * asynchronous calls (halyard_command_async) run on the client's own I/O threads, in parallel.
 * halyard_close cancels what is still queued (HALYARD_CANCELLED) and cuts short what runs.
 * Memory: the caller owns what it passes; replies are the caller's to free with
 * halyard_reply_free. docs/client.md has the details and an example.
 */
#ifndef HALYARD_H
#define HALYARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HALYARD_API __attribute__((visibility("default")))

typedef enum halyard_status {
    HALYARD_OK = 0,      /* the reply is the command's answer (not an error reply) */
    HALYARD_REPLY_ERROR, /* the server answered the command with an error (WRONGTYPE, ...):
                          * the reply holds it; as with Redis, nothing was applied */
    HALYARD_NOT_APPLIED, /* no member could take the request before the deadline (no
                          * leader, no quorum, none reachable): certainly not applied */
    HALYARD_UNKNOWN,     /* the write was sent and its outcome could not be learned before
                          * the deadline (or, with sessions off, its connection was lost):
                          * it may or may not have been applied */
    HALYARD_TIMEOUT,     /* a read got no answer before the deadline */
    HALYARD_AUTH,        /* the password was refused: not applied */
    HALYARD_INVALID,     /* bad arguments or configuration (message says which) */
    HALYARD_NO_MEMORY,
    HALYARD_BUSY,        /* load shed by the client: max_outstanding requests were already
                          * outstanding (asynchronous API), or as many blocking calls were
                          * already waiting on the client, or the request's member had
                          * max_inflight_per_member in flight; nothing was sent: not applied */
    HALYARD_CANCELLED,   /* halyard_close ran before the request was sent: not applied (a write
                          * already sent when the client closed ends HALYARD_UNKNOWN instead) */
    HALYARD_NO_QUORUM,   /* the request's deadline passed while the members answered -NOQUORUM
                          * (a minority: no majority of the key's partition could be reached):
                          * not applied; halyard_quorum_parse gives partition, have, need */
    HALYARD_QUORUM_RULE, /* a split-brain protection rule refused the command (-QUORUM: too few
                          * live members for it): not applied; halyard_quorum_parse gives the
                          * rule's name, required, actual */
    HALYARD_UNREACHABLE, /* no member of the cluster (nor of a failover cluster) could be
                          * connected before the deadline, or failover_try_count rounds over
                          * the clusters passed: not applied */
} halyard_status;

/* Where reads go (read_from). Writes always go to their partition's leader. */
typedef enum halyard_read_from {
    HALYARD_READ_LEADER = 0, /* linearizable (the default) */
    HALYARD_READ_REPLICA,    /* any replica of the key's partition, leader included, over a
                              * READONLY connection: stale reads allowed (max_staleness_ms bounds
                              * how stale), picked by load_balancer */
    HALYARD_READ_NEAREST,    /* as REPLICA, but the replica with the lowest measured round trip
                              * (an average of the client's own requests to it) */
} halyard_read_from;

/* How a member is picked among those eligible (read_from REPLICA: a keyed read's replicas, or
 * every member for a keyless read). Each skips members whose breaker is open, found dead by
 * heartbeats, or at max_inflight_per_member (health-aware). */
typedef enum halyard_balancer {
    HALYARD_LB_ROUND_ROBIN = 0,
    HALYARD_LB_RANDOM,
    HALYARD_LB_LEAST_OUTSTANDING, /* the fewest requests in flight, counted over the whole client
                                   * (blocking call and every I/O thread); ties in turn */
    HALYARD_LB_WEIGHTED,          /* smooth weighted round robin by `weights` */
} halyard_balancer;

typedef enum halyard_reply_type {
    HALYARD_REPLY_STRING, /* bulk string; also RESP3 verbatim strings */
    HALYARD_REPLY_STATUS, /* simple string ("OK") */
    HALYARD_REPLY_ERRORMSG,
    HALYARD_REPLY_INTEGER,
    HALYARD_REPLY_NIL,
    HALYARD_REPLY_ARRAY, /* also RESP3 sets and pushes */
    HALYARD_REPLY_MAP,   /* elements holds key, value, key, value, ... */
    HALYARD_REPLY_DOUBLE,
    HALYARD_REPLY_BOOL,
} halyard_reply_type;

/* A reply as a small tree; strings are NUL-terminated (len excludes the NUL). */
typedef struct halyard_reply {
    halyard_reply_type type;
    long long integer; /* INTEGER, BOOL */
    double dval;       /* DOUBLE */
    char *str;         /* STRING, STATUS, ERRORMSG, DOUBLE (its text) */
    size_t len;
    size_t elements; /* ARRAY, MAP (2 per pair) */
    struct halyard_reply **element;
} halyard_reply;

/* Events, as Hazelcast's lifecycle events (docs/client.md). */
typedef enum halyard_event {
    HALYARD_EV_STARTING,
    HALYARD_EV_STARTED,
    HALYARD_EV_CLIENT_CONNECTED,       /* a connection to the cluster after having none */
    HALYARD_EV_CLIENT_DISCONNECTED,    /* the connection to the cluster was lost */
    HALYARD_EV_CLIENT_CHANGED_CLUSTER, /* now connected to another cluster of the list */
    HALYARD_EV_SHUTTING_DOWN,
    HALYARD_EV_SHUTDOWN,
    /* Membership, as the member the client talks to reports it (events_poll_ms): `member`
     * is the member's name; for LEADER_CHANGED the new leader's, for QUORUM_* "partition=P". */
    HALYARD_EV_MEMBER_ADDED,
    HALYARD_EV_MEMBER_REMOVED,
    HALYARD_EV_MEMBER_SUSPECT,
    HALYARD_EV_MEMBER_ALIVE,
    HALYARD_EV_MEMBER_FAILED,
    HALYARD_EV_LEADER_CHANGED,
    HALYARD_EV_QUORUM_LOST,
    HALYARD_EV_QUORUM_REGAINED,
} halyard_event;

/* Called with the event, the cluster's name and the member ("host:port", or "" when none);
 * never under the client's lock, on the thread whose call caused the event, or, for membership
 * events pushed by the server (server_events), on the client's heartbeat thread. */
typedef void (*halyard_event_fn)(void *ctx, halyard_event ev, const char *cluster,
                                 const char *member);

/* A cluster to fail over to: its name (for events and messages) and members. */
typedef struct halyard_cluster {
    const char *name;
    const char *const *addrs;
    size_t n_addrs;
} halyard_cluster;

typedef struct halyard_config {
    /* "host:port" of members, at least one; more are learned from -MOVED. Copied. */
    const char *const *addrs;
    size_t n_addrs;
    uint32_t connect_timeout_ms;  /* one connection attempt; default 1000 */
    uint32_t request_timeout_ms;  /* a request's deadline, retries included; default 10000 */
    uint32_t attempt_timeout_ms;  /* no answer on a connection this long: the member is taken as
                                   * unresponsive (hung, stopped, cut off) and the request goes
                                   * to the next one (a write under its session); default 2000 */
    uint32_t backoff_initial_ms;  /* after every member failed once; default 50 */
    uint32_t backoff_max_ms;      /* default 2000 */
    double backoff_multiplier;    /* default 2.0 */
    double backoff_jitter;        /* 0..1: each wait is drawn from [w*(1-j), w]; default 0.5 */
    int sessions;                 /* exactly-once writes (HY.SESSION/HY.REQ); default 1 */
    int smart_routing;            /* send each key to the member serving its slot, learned
                                   * with CLUSTER SLOTS; default 1 (off over TLS for now: the
                                   * slot map names plain ports) */
    uint32_t topology_refresh_ms; /* re-read the slot map this often; default 10000 */
    uint32_t session_ttl_ms;      /* default 600000 (10 min) */
    const char *password;         /* AUTH at every connection when set; copied */
    const char *cluster_name;     /* the name of the cluster of `addrs`; default "primary" */
    /* Multi-cluster failover (Hazelcast's failover client): when no member of the current
     * cluster could be connected for cluster_connect_timeout_ms, the next cluster of
     * [addrs, failover[0], failover[1], ...] is tried, round after round, failover_try_count
     * rounds at most (0: no limit); after that every request fails at once, NOT_APPLIED. A
     * write that may have reached the cluster left behind ends UNKNOWN: sessions do not
     * cross clusters. */
    const halyard_cluster *failover;
    size_t n_failover;
    uint32_t cluster_connect_timeout_ms; /* default 4000 */
    uint32_t failover_try_count;         /* default 0 (no limit) */
    /* TLS to every member when tls is set (OpenSSL; TLS 1.2+): the server's certificate is
     * checked against tls_ca_file (system CAs when NULL) and, unless tls_insecure_no_verify,
     * against tls_server_name (the member's host when NULL); tls_cert_file/tls_key_file give
     * a client certificate for mutual TLS. Strings are copied. */
    int tls;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_server_name;
    int tls_insecure_no_verify;
    halyard_event_fn on_event; /* optional */
    void *event_ctx;
    uint64_t seed;        /* jitter's random seed; 0: from the clock */
    const char *username; /* with password: AUTH username password (an ACL user); copied */
    /* A circuit breaker per member (seed 003): after breaker_failures failures in a row
     * (connection refused or lost, no answer within attempt_timeout_ms) the member is left out
     * for breaker_cooldown_ms (open), then one request may try it again (half-open): an answer
     * closes the breaker, a failure opens it again. Open members are skipped when another
     * member can be tried, and smart routing sends around them (the members forward). Defaults
     * 3 and 5000; breaker_failures 0 turns breakers off. */
    uint32_t breaker_failures;
    uint32_t breaker_cooldown_ms;
    /* Fail-back (beyond Hazelcast, which never fails back): on a failover cluster, the client
     * probes the first cluster's members (a TCP connection accepted within
     * connect_timeout_ms) at the start of requests, at most every failback_after_ms / 3; once
     * every probe has succeeded for failback_after_ms (the hysteresis) it moves back
     * (CLIENT_CHANGED_CLUSTER). 0 (the default): it stays where it is. */
    uint32_t failback_after_ms;
    /* Membership listeners: at most this often, at the start of a request, the client asks
     * the member it is connected to for the cluster events it saw since the last time
     * (HALYARD EVENTS) and raises them (HALYARD_EV_MEMBER_*, LEADER_CHANGED, QUORUM_*). Events
     * are per member: after a move to another member, its events count from the move. 0 (the
     * default): no polling. */
    uint32_t events_poll_ms;
    /* Read routing (docs/client.md "Read routing"): read_from is a halyard_read_from,
     * load_balancer a halyard_balancer. A read on a replica stays on its connection while that
     * member stays eligible (after a failure, the next member takes over); the balancer picks
     * again at every topology refresh (topology_refresh_ms), the first one included. Defaults
     * LEADER and ROUND_ROBIN. */
    int read_from;
    int load_balancer;
    /* Asynchronous API (halyard_command_async): up to async_threads I/O threads (started as the
     * queue needs them), each with its own connection and exactly-once session, run requests in
     * parallel; at most max_outstanding requests may be queued or running (beyond:
     * HALYARD_BUSY at once). A queued request's deadline (request_timeout_ms) counts from its
     * submission. Defaults 4 and 1024. */
    uint32_t async_threads;
    uint32_t max_outstanding;
    /* Each I/O thread sends up to this many queued requests back to back on its connection
     * (pipelining), when the connection is in its steady state; 1: one at a time. Not with
     * hedge_reads. Default 64. */
    uint32_t pipeline_max;
    /* Hedged reads (asynchronous API, reads only): a read not answered after hedge_after_ms
     * (0: the p95 of the client's recent reads, at least 1 ms) is sent a second time by another
     * I/O thread, to another member; the first answer wins and the other copy is cancelled.
     * Default 0 (off). */
    int hedge_reads;
    uint32_t hedge_after_ms;
    /* Heartbeats (Hazelcast's heartbeat-interval/-timeout), on a connection of their own per
     * member of `addrs` (a thread of the client's): PING every heartbeat_interval_ms; a member
     * with no answer for heartbeat_timeout_ms is dead: its breaker opens in every connection
     * of the client (requests go around it) and the asynchronous requests running on it leave
     * it at once (re-sent elsewhere, a write under its session); an answer closes the breaker
     * again. Over TLS too (the client's TLS settings). Defaults 1000 and 5000 (on; Hazelcast's
     * are 5 s and 60 s); heartbeat_interval_ms 0 turns them off. */
    uint32_t heartbeat_interval_ms;
    uint32_t heartbeat_timeout_ms;
    /* A staleness bound for replica reads (read_from REPLICA or NEAREST; MongoDB's
     * maxStalenessSeconds): a replica estimated to be more than this far behind its partition's
     * leader, in time, is not read from; the read goes to a replica within the bound, else to
     * the leader. The estimate comes from the heartbeats (which then ask CLUSTER SHARDS for each
     * member's applied index), so it needs heartbeat_interval_ms, and its resolution is one
     * interval: it must be at least twice heartbeat_interval_ms. A replica not yet measured, or
     * not in `addrs`, counts as too stale. 0 (the default): no bound. */
    uint32_t max_staleness_ms;
    /* HALYARD_LB_WEIGHTED: weights[i] is the share of addrs[i] (n_weights == n_addrs; copied);
     * members not in addrs (learned from the slot map) weigh 1; weight 0: only when no member
     * of positive weight is eligible. NULL: every member weighs 1. */
    const uint32_t *weights;
    size_t n_weights;
    /* Load shedding per member: at most this many requests of the client in flight to one
     * member (sent, not answered; counted over the blocking call and every I/O thread). A
     * request whose member is full fails fast with HALYARD_BUSY (not applied) instead of
     * queueing on it; a replica read goes to another eligible replica first. 0: no bound
     * (the default). */
    uint32_t max_inflight_per_member;
    /* Server-pushed cluster events (docs/client.md "Events"): the heartbeat thread keeps a
     * connection to one member of `addrs` subscribed to its __halyard__:events channel. A
     * leader change or a member coming or going makes every connection of the client read the
     * slot map again at its next request; with events_poll_ms 0 the membership listeners
     * (MEMBER_*, LEADER_CHANGED, QUORUM_*) get the events from it, on the heartbeat thread.
     * Needs heartbeats (heartbeat_interval_ms). Default 1. */
    int server_events;
    void *loaded_; /* halyard_config_load's strings (halyard_config_release frees them) */
} halyard_config;

typedef struct halyard_client halyard_client;

/* Fills a config with the defaults above (no addresses). */
HALYARD_API void halyard_config_init(halyard_config *cfg);
/* Fills cfg from a YAML file (docs/client.md "YAML"): the defaults, then every key of the file.
 * An unknown key, a value of the wrong kind, or a file that is not YAML fails with the line in
 * err. 0 or -1. The strings and lists it loads belong to cfg until halyard_config_release
 * (after halyard_open, which copies what it keeps). */
HALYARD_API int halyard_config_load(const char *path, halyard_config *cfg, char *err,
                                    size_t errlen);
HALYARD_API void halyard_config_release(halyard_config *cfg);

/* Creates a client; connects lazily, at the first command. NULL with a message in err (room
 * for errlen bytes) when the configuration is invalid. */
HALYARD_API halyard_client *halyard_open(const halyard_config *cfg, char *err, size_t errlen);
HALYARD_API void halyard_close(halyard_client *c);

/*
 * Runs one command (argv[0] is its name; argvlen[i] the length of argv[i], or argvlen NULL for
 * NUL-terminated strings) and waits for its outcome. *reply is set whatever the status (NULL
 * only for HALYARD_NO_MEMORY and HALYARD_INVALID): the answer, or an ERRORMSG reply saying
 * what happened. Free it with halyard_reply_free.
 */
HALYARD_API halyard_status halyard_command(halyard_client *c, int argc, const char *const *argv,
                                           const size_t *argvlen, halyard_reply **reply);
HALYARD_API void halyard_reply_free(halyard_reply *r);
HALYARD_API const char *halyard_status_str(halyard_status s);

/*
 * Typed helpers for the common commands. Each runs halyard_command with the command shown, so
 * every guarantee of it holds (retries, routing, a write's session), and returns its status
 * and *reply the same way (the caller frees *reply, set whatever the status but for
 * HALYARD_NO_MEMORY and HALYARD_INVALID). `key` is a NUL-terminated string, borrowed for the
 * call; where the answer is a number, *out (may be NULL) gets it when the status is HALYARD_OK
 * and is left as it was otherwise.
 */
/* GET key: *reply is a STRING, or NIL when the key does not exist. */
HALYARD_API halyard_status halyard_get(halyard_client *c, const char *key, halyard_reply **reply);
/* SET key value (len bytes, binary-safe, borrowed for the call): *reply is the STATUS "OK". */
HALYARD_API halyard_status halyard_set(halyard_client *c, const char *key, const void *value,
                                       size_t len, halyard_reply **reply);
/* DEL key: *out is 1 if the key existed, else 0. */
HALYARD_API halyard_status halyard_del(halyard_client *c, const char *key, long long *out,
                                       halyard_reply **reply);
/* INCRBY key by: *out is the value after the increment (applied once: under the session). */
HALYARD_API halyard_status halyard_incrby(halyard_client *c, const char *key, long long by,
                                          long long *out, halyard_reply **reply);

/* halyard_quorum_info.partition of a -NOQUORUM from the metadata group (admin commands). */
#define HALYARD_PARTITION_METADATA 0xFFFFFFFFu

/* What a HALYARD_NO_QUORUM or HALYARD_QUORUM_RULE reply says, for a program to act on. */
typedef struct halyard_quorum_info {
    int rule; /* 0: no quorum (partition, have, need); 1: a rule (name, required, actual) */
    unsigned partition; /* no quorum: the key's partition (0 on a cluster of one partition;
                         * HALYARD_PARTITION_METADATA: the metadata group) */
    unsigned have;      /* the voters of its group the member could reach, itself included */
    unsigned need;      /* a majority of them */
    char name[64];      /* rule: the rule's name (quorum-rules) */
    unsigned required;  /* the live members it requires */
    unsigned actual;    /* those the member saw */
} halyard_quorum_info;
/* Fills *out from r (the reply of a HALYARD_NO_QUORUM or HALYARD_QUORUM_RULE outcome): 0, or -1
 * when r says neither. */
HALYARD_API int halyard_quorum_parse(const halyard_reply *r, halyard_quorum_info *out);

/* Counters for tests and monitoring. */
typedef struct halyard_stats {
    uint64_t connects; /* connections made */
    uint64_t connect_failures;
    uint64_t resends; /* requests sent again (reply lost, MOVED, TRYAGAIN, ...) */
    uint64_t moved;   /* -MOVED followed */
    uint64_t sessions_opened;
    uint64_t cluster_changes;
    uint64_t topology_reads;  /* CLUSTER SLOTS answered */
    uint64_t routed;          /* requests sent to their slot's member by the map */
    uint64_t breaker_opens;   /* a member's breaker opened (or opened again after a probe) */
    uint64_t breaker_skips;   /* a member skipped because its breaker was open */
    uint64_t failbacks;       /* moved back to the first cluster */
    uint64_t server_backoffs; /* -TRYAGAIN/-LOADING/-BUSY/-NOQUORUM answered: backed off */
    uint64_t replica_reads;   /* reads sent on a READONLY connection (read_from) */
    uint64_t shed;            /* asynchronous requests refused HALYARD_BUSY */
    uint64_t hedges;          /* hedged copies sent */
    uint64_t hedge_wins;      /* reads answered first by their hedged copy */
    uint64_t cancelled;       /* requests ended by halyard_close or by losing a hedge race */
    uint64_t heartbeat_downs; /* members found dead by heartbeats (each time one stops answering) */
    uint64_t pipelined;       /* asynchronous requests sent back to back on a connection */
    uint64_t member_sheds;    /* requests refused HALYARD_BUSY: their member was full
                               * (max_inflight_per_member); also counted in shed */
    uint64_t events_pushed;   /* cluster events received from the subscription (server_events) */
    uint64_t region_reorders; /* the cluster list reordered by a cluster's region priority */
} halyard_stats;

HALYARD_API const char *halyard_event_str(halyard_event ev);
/* Fills *out. A macro passes the size of the caller's halyard_stats, so a program built
 * against an older header (fewer counters: new ones are only ever added at the end) gets what
 * its structure holds and nothing past it, with a newer library. */
HALYARD_API void halyard_get_stats_sized(halyard_client *c, halyard_stats *out, size_t size);
#define halyard_get_stats(c, out) halyard_get_stats_sized((c), (out), sizeof *(out))

/*
 * Asynchronous API (docs/client.md "Asynchronous API"). The same core as halyard_command runs
 * each request on one of the client's I/O threads (up to async_threads), so every guarantee
 * holds (retries, failover, exactly-once writes, statuses); each thread runs one request at a
 * time or a pipelined batch of up to pipeline_max, the rest wait in a queue bounded by
 * max_outstanding.
 *
 * The callback gets the outcome halyard_command would have returned; it owns the reply (free it
 * with halyard_reply_free; NULL only with HALYARD_NO_MEMORY) and is called exactly once for
 * every request that halyard_command_async accepted, never under the client's locks: on an I/O
 * thread, or on the caller's libuv loop after halyard_attach_loop. It may call
 * halyard_command_async again, but not halyard_close.
 */
typedef void (*halyard_reply_fn)(void *ctx, halyard_status st, halyard_reply *reply);

/*
 * Queues one command (argv and argvlen as in halyard_command; copied, so they are borrowed for
 * the call only) and returns at once: HALYARD_OK when it was accepted (the callback will run),
 * HALYARD_BUSY when max_outstanding requests are outstanding (load shedding: the callback does
 * not run, nothing was sent), HALYARD_INVALID for bad arguments or once halyard_close has
 * begun, HALYARD_NO_MEMORY. Any thread may call it, a callback included.
 */
HALYARD_API halyard_status halyard_command_async(halyard_client *c, int argc,
                                                 const char *const *argv, const size_t *argvlen,
                                                 halyard_reply_fn cb, void *ctx);

/*
 * Runs the asynchronous callbacks on `uv_loop` (a uv_loop_t * the caller owns and runs) rather
 * than on the I/O threads. Call it once, before the first halyard_command_async, on the loop's
 * thread. The loop must keep running while requests are outstanding, and halyard_close must then
 * be called on the loop's thread: it runs the callbacks still due itself, before returning, and
 * the handle it added to the loop closes at the loop's next turn. 0, or -1 (already attached,
 * or requests already submitted).
 */
HALYARD_API int halyard_attach_loop(halyard_client *c, void *uv_loop);

#ifdef __cplusplus
}
#endif

#endif
