/*
 * core.h - libhalyard's pure core: one request at a time, from its first attempt to its
 * outcome, across reconnects, redirects, elections and lost replies.
 *
 * Sans-I/O like the server's cores (docs/architecture.md "Cores and shell"): the shell asks
 * hyc_next what to do (connect, send, receive, sleep, close, or done), does it, and reports
 * back with hyc_connected / hyc_sent / hyc_received / hyc_closed, each with the time. The core
 * never reads a clock, sleeps or touches a socket, so tests drive it with scripted servers and
 * simulated time (tests/unit/test_client.c).
 */
#ifndef HY_CLIENT_CORE_H
#define HY_CLIENT_CORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/prng.h"
#include "halyard.h"

#define HYC_HOST_MAX     255
#define HYC_MEMBERS_MAX  64
#define HYC_CLUSTERS_MAX 8
#define HYC_NAME_MAX     63

struct hyc_member {
    char host[HYC_HOST_MAX + 1];
    int port;
};

enum hyc_do {
    HYC_DO_CONNECT, /* connect to member `member`, giving up at `until_ms` */
    HYC_DO_SEND,    /* send data[0..len) whole, then hyc_sent (or hyc_closed) */
    HYC_DO_RECV,    /* wait for bytes until `until_ms`, then hyc_received (or call again) */
    HYC_DO_SLEEP,   /* nothing to do before `until_ms` */
    HYC_DO_CLOSE,   /* close the connection (no hyc_closed needed), then ask again */
    HYC_DO_DONE,    /* the request has its outcome: hyc_take_result */
    HYC_DO_PROBE,   /* connect to `probe` on the side by `until_ms`, close, then hyc_probed */
};

struct hyc_action {
    enum hyc_do what;
    size_t member;
    uint64_t until_ms;
    const uint8_t *data;
    size_t len;
    const struct hyc_member *probe;
};

struct hyc_core;

/*
 * Requests in flight per member, shared by every core of one client (the blocking API's and
 * each I/O thread's): HALYARD_LB_LEAST_OUTSTANDING picks by it and max_inflight_per_member
 * bounds it. An entry is claimed by the member's address (a 64-bit hash) and counted with
 * atomics, so cores on several threads share the table without a lock. A core counts a
 * request from the moment its frame is handed to the shell to send until its answer, the loss
 * of its connection, or its end (deadline, cancel).
 */
#define HYC_LOAD_MAX 256
struct hyc_load {
    struct {
        _Atomic uint64_t key; /* 0: free */
        atomic_uint n;
    } e[HYC_LOAD_MAX];
};
/* Makes k count into l (shared, owned by the caller, outliving k); before its first request.
 * Until then a core counts into a table of its own. */
void hyc_set_load(struct hyc_core *k, struct hyc_load *l);
/* The requests in flight to m in l (0 for a member never counted). */
uint32_t hyc_load_get(struct hyc_load *l, const struct hyc_member *m);

/* cfg must be valid (hyc_config_check); the core copies what it keeps. */
struct hyc_core *hyc_core_new(const halyard_config *cfg, uint64_t seed);
void hyc_core_free(struct hyc_core *k);
/* NULL if cfg is usable, else why not. */
const char *hyc_config_check(const halyard_config *cfg);

const struct hyc_member *hyc_member(const struct hyc_core *k, size_t i);

/* Starts a request (none may be running). argv as in halyard_command. */
void hyc_begin(struct hyc_core *k, int argc, const char *const *argv, const size_t *argvlen,
               uint64_t now_ms);
void hyc_next(struct hyc_core *k, uint64_t now_ms, struct hyc_action *a);
void hyc_connected(struct hyc_core *k, uint64_t now_ms);
void hyc_sent(struct hyc_core *k, uint64_t now_ms);
void hyc_received(struct hyc_core *k, const uint8_t *data, size_t len, uint64_t now_ms);
/* The connection failed, was refused, or closed (an attempt to connect included). */
void hyc_closed(struct hyc_core *k, uint64_t now_ms);
/* After HYC_DO_PROBE: whether the connection was accepted. */
void hyc_probed(struct hyc_core *k, int ok, uint64_t now_ms);
/* After HYC_DO_DONE: the outcome; the reply is the caller's. */
halyard_status hyc_take_result(struct hyc_core *k, halyard_reply **reply);

void hyc_stats(const struct hyc_core *k, halyard_stats *out);

/* After hyc_begin: this request should not go to member m (copied) while another is eligible
 * (a hedged read's second copy avoids the member of its first). */
void hyc_avoid(struct hyc_core *k, const struct hyc_member *m);
/* A heartbeat found member m dead (no answer within heartbeat_timeout_ms): its breaker opens
 * now, for breaker_cooldown_ms, as after breaker_failures failures; requests go around it, and a
 * connection to it is left (call it between requests; hyc_abandon is for one running).
 * hyc_member_up: it answers heartbeats again: its breaker closes. Unknown members are ignored. */
void hyc_member_down(struct hyc_core *k, const struct hyc_member *m, uint64_t now_ms);
void hyc_member_up(struct hyc_core *k, const struct hyc_member *m);
/* max_staleness_ms: whether member m is within the bound for the partition of slots lo..hi (its
 * leader always is), as the heartbeats last estimated it. hyc_set_fresh replaces the whole
 * table (n entries, copied); before the first call, and for a member or a partition not in it,
 * a replica read goes to the leader. Unknown members are ignored. */
struct hyc_fresh {
    struct hyc_member m;
    uint16_t lo, hi;
    int fresh;
};
void hyc_set_fresh(struct hyc_core *k, const struct hyc_fresh *f, size_t n);
/* The connected member is dead (its heartbeats went unanswered): the running request leaves it
 * at the next hyc_next as if attempt_timeout_ms had passed (re-sent elsewhere, a write under
 * its session slot). Nothing when not connected or done. */
void hyc_abandon(struct hyc_core *k);
/*
 * Pipelining (the asynchronous shell): between requests, on a connection in its steady state
 * (connected, authenticated, slot map fresh, no poll due, the key served here, its session
 * open), more requests may go back to back. hyc_pipe_add appends request argv's frame to out
 * and fills *slot (its session slot when wrapped), or returns 0: then it takes the normal path
 * (hyc_begin). Each answer, in order, goes to hyc_pipe_answer: 1 with the outcome (the reply is
 * the caller's), 0 when the request must take the normal path after all (an error the core
 * handles: -MOVED, -TRYAGAIN, -UNKNOWN, a session error, ...): hyc_begin, then hyc_resume with
 * its slot, so a write keeps its (session, seq). When the connection fails mid-pipeline,
 * hyc_pipe_lost, then each unanswered request: a read or a wrapped write takes the normal path
 * (a write with maybe_applied: it was sent), a plain write is UNKNOWN (hyc_pipe_unknown).
 */
struct hyc_pipe_slot {
    uint64_t session, seq; /* 0, 0: sent plain */
    int is_write;
};
int hyc_pipe_add(struct hyc_core *k, int argc, const char *const *argv, const size_t *argvlen,
                 uint64_t now_ms, struct hy_buf *out, struct hyc_pipe_slot *slot);
/* Parses the answer to the pipelined request of `slot` from buf: -1 protocol error, 0
 * incomplete; else *used bytes were consumed and: 1 the outcome (*st, *reply), 2 the request
 * takes the normal path, 3 not an answer (a push): parse on. A plain write goes the normal way
 * only after an answer that says it did not run (-MOVED, -TRYAGAIN, ...): never blindly. */
int hyc_pipe_answer(struct hyc_core *k, const struct hyc_pipe_slot *slot, const uint8_t *buf,
                    size_t len, size_t *used, halyard_status *st, halyard_reply **reply);
void hyc_pipe_lost(struct hyc_core *k, const char *why, size_t unanswered, uint64_t now_ms);
halyard_reply *hyc_pipe_unknown(void);
/* After hyc_begin: continue a pipelined request under its slot. */
void hyc_resume(struct hyc_core *k, const struct hyc_pipe_slot *slot, int maybe_applied);

/* The member the core is connected to, or NULL. */
const struct hyc_member *hyc_current(const struct hyc_core *k);
/* Ends the running request now (halyard_close, or a hedged copy that lost): CANCELLED when
 * nothing of it can have run, UNKNOWN for a write already sent; the connection is closed at
 * the next hyc_next if an answer is pending on it. Then hyc_next says DONE. */
void hyc_cancel(struct hyc_core *k, uint64_t now_ms);

/* Events the core raised, oldest first; 0 when none is left. The shell hands them to the
 * program's callback once it has released its lock. */
struct hyc_event {
    halyard_event ev;
    char cluster[HYC_NAME_MAX + 1];
    char member[HYC_HOST_MAX + 8];
};
int hyc_take_event(struct hyc_core *k, struct hyc_event *out);
/* A cluster event's JSON (docs/operations.md "Cluster events": HALYARD EVENTS' entries, and
 * what a node publishes on __halyard__:events) as a listener event: 1 with *ev and `member` (the
 * member's name; for LEADER_CHANGED the new leader's; for QUORUM_* "partition=P"), 0 for a type
 * listeners do not get (DISK_FULL, FOLLOWER_LAGGING, ...) or not an event. */
int hyc_event_parse(const char *json, size_t len, halyard_event *ev, char *member, size_t cap);
/* The server pushed a topology event (a leader changed, a member came or went); gen counts
 * them: when it differs from the last one seen, the slot map is read again at the start of the
 * next request instead of waiting for topology_refresh_ms, a -MOVED or a lost connection. */
void hyc_topology_changed(struct hyc_core *k, uint64_t gen);
/* The core's own events: the shell raises STARTING/STARTED/SHUTTING_DOWN/SHUTDOWN. */
void hyc_push_event(struct hyc_core *k, halyard_event ev);
/* The name of the cluster in use. */
const char *hyc_cluster_name(const struct hyc_core *k);
uint64_t hyc_session(const struct hyc_core *k); /* 0 = none open */

/* The latencies of recent reads, for hedged reads' delay: a ring of the last 256. */
#define HYC_LATENCY_RING 256
struct hyc_latency {
    uint32_t ms[HYC_LATENCY_RING];
    size_t count, head;
};
void hyc_latency_add(struct hyc_latency *l, uint64_t ms);
/* The delay before a read's hedged copy: hedge_after_ms when set, else the p95 of the ring
 * (at least 1 ms; 50 ms until 20 reads are known). */
uint64_t hyc_hedge_delay(const struct hyc_latency *l, uint32_t hedge_after_ms);
/* Whether a command (argv[0], any case) is a read: hedged, re-sent freely. */
int hyc_is_read(const char *name, size_t len);

/* reply.c: a RESP value as a reply tree, and an ERRORMSG reply of a message. */
struct resp_value;
halyard_reply *hyc_reply_of(const struct resp_value *v);
halyard_reply *hyc_reply_error(const char *msg);

#endif
