/*
 * sim.h - the deterministic cluster simulator (docs/architecture.md "Cores and shell", "Testing").
 *
 * One process runs K servers built from the real Raft core (src/raft) and the real keyspace
 * (src/store, through kv.c), joined by a simulated network, disk and clocks, and driven by a
 * client workload. Everything random comes from one seed: a failing seed replays exactly.
 * After every step the checkers in check.c run; at the end lin.c checks the client history.
 */
#ifndef HY_SIM_H
#define HY_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/prng.h"
#include "raft/raft.h"

#define SIM_NODES_MAX   7
#define SIM_CLIENTS_MAX 5
#define SIM_KEYS        3
#define SIM_LIN_KEYS    10 /* keys the checker looks at: the whole-node mode uses 6, 10 with --tx */
/* SET values are multiples of this (one per op): INCRs on top of one never reach the next. */
#define SIM_VALUE_SPAN  1000000
#define SIM_INF         UINT64_MAX

/* Faults a seed may switch on ("swarm": each seed draws a subset and an intensity). */
#define SIM_FAULT_LIST(X)       \
    X(DROP, "drop")             \
    X(DUP, "dup")               \
    X(DELAY, "delay")           \
    X(PARTITION, "partition")   \
    X(ISOLATE, "isolate")       \
    X(ONEWAY, "oneway")         \
    X(BRIDGE, "bridge")         \
    X(CRASH, "crash")           \
    X(TORN, "torn")             \
    X(SLOWDISK, "slowdisk")     \
    X(SKEW, "skew")             \
    X(MEMBERSHIP, "membership") \
    X(TRANSFER, "transfer")     \
    X(SNAPSHOT, "snapshot")     \
    X(LEASE, "lease")           \
    X(PAUSE, "pause")           \
    X(QUIESCE, "quiesce")

enum sim_fault {
#define SIM__F(name, text) SIM_F_##name,
    SIM_FAULT_LIST(SIM__F)
#undef SIM__F
        SIM_F_COUNT
};

const char *sim_fault_name(int f);
/* Parses "drop,crash,..." or "all" or "none" into a mask; returns -1 on an unknown name. */
int sim_faults_parse(const char *list, uint32_t *mask_out);

/* Scripted scenarios (scenario.c); SIM_SCEN_NONE = the random fault swarm. */
enum sim_scenario_kind {
    SIM_SCEN_NONE = 0,
    SIM_SCEN_JOIN_ABSENT,
    SIM_SCEN_JOIN_REFUSED,
    SIM_SCEN_FORCE_PHANTOM,
    SIM_SCEN_COUNT
};
/* Parses a scenario name; -1 when unknown. */
int sim_scenario_parse(const char *name);
const char *sim_scenario_name(int scenario);
/* The servers a scenario simulates (returned) and how many of them are initial voters. */
int sim_scenario_nodes(int scenario, int *voters_out);

struct sim_opts {
    uint64_t seed;
    int nodes;           /* 3..7 */
    uint64_t steps;      /* events in the fault phase */
    uint32_t fault_mask; /* faults allowed; the seed picks a subset of them */
    int swarm;           /* 1: the seed picks a subset of fault_mask; 0: all of it */
    int trace;
    uint32_t mutation; /* enum raft_mutation */
    int scenario;      /* enum sim_scenario_kind; nodes must be sim_scenario_nodes() */
};

struct sim_result {
    int ok;
    char reason[512];
    uint64_t steps;
    uint64_t sim_ms;
    uint64_t committed;
    uint64_t ops_ok;
    uint64_t ops_indeterminate;
    uint32_t faults_used;
    int lin_gave_up;
    uint64_t quiesces;                     /* times a leader quiesced its group */
    uint64_t liveness_downs;               /* node-level "down" reports delivered */
    uint64_t suspicions, false_suspicions; /* node-level "suspect" reports; of nodes heard */
    uint64_t snaps_needed; /* snapshots taken because a follower needed released entries */
};

/* Runs one seed; returns 1 when every check passed. */
int sim_run(const struct sim_opts *o, struct sim_result *res);

/* ---- client history (linearizability) --------------------------------------------------- */

/* SIM_OP_TOUCH: a write that leaves the value as it is and answers whether the key exists
 * (an EXPIRE to a time beyond the run: 1 when there was a key to set it on); an unanswered one
 * has no effect on the value, so the check drops it as it drops an unanswered read. */
enum sim_op_kind { SIM_OP_GET, SIM_OP_SET, SIM_OP_INCR, SIM_OP_DEL, SIM_OP_TOUCH };

struct sim_op {
    int client;
    int kind;
    int key;
    int64_t arg;
    uint64_t call; /* global event sequence number at invocation */
    uint64_t ret;  /* at completion; SIM_INF when indeterminate */
    int done;      /* 1 = completed with result below; 0 = indeterminate */
    int failed;    /* definitely not executed: dropped from the history */
    int has_value; /* GET: 1 when a value was returned; DEL: ignored */
    int64_t value; /* GET value, INCR result, DEL count (-1: not known, e.g. FLUSHALL's),
                    * TOUCH: 1 when the key existed, else 0 */
};

/* Steps the search may take per key before it calls the check inconclusive: a step is one
 * candidate considered (about 10 ns), plus a word per memo word stored, so this bounds the
 * search to about 0.1 s and its memo to about 320 MB per key. */
#define SIM_LIN_STEPS_MAX 10000000u

/*
 * Black-box linearizability check of a client history: Wing & Gong's search with Lowe's
 * memoization, per key (linearizability is local). It reads only calls, returns and results:
 * an op neither done nor failed is indeterminate (a write may take effect at any point after
 * its call, or never; a read is dropped). ops is borrowed. Returns 1 when the history is
 * linearizable, 0 when not, -1 when the search ran out of steps_max steps on some key
 * (inconclusive: callers must not count that as a pass); why says which key.
 */
int sim_lin_check(const struct sim_op *ops, size_t n, uint64_t steps_max, char *why,
                  size_t why_len);

/* ---- the state machine behind a small interface ------------------------------------------ */

struct sim_kv;
struct sim_kv *sim_kv_create(uint64_t seed);
void sim_kv_destroy(struct sim_kv *kv);
/* Encodes a client write as a log entry. */
void sim_kv_encode(int kind, int key, int64_t arg, uint64_t time_ms, struct hy_buf *out);
/* Applies an encoded entry; returns 1 with *result_out (INCR value, DEL count, SET 0) when the
 * reply was the expected kind, 0 on an unexpected or error reply. */
int sim_kv_apply(struct sim_kv *kv, const uint8_t *entry, size_t len, int64_t *result_out);
/* Reads key: returns 1 and *value_out when present. */
int sim_kv_get(struct sim_kv *kv, int key, int64_t *value_out);
void sim_kv_snapshot(struct sim_kv *kv, struct hy_buf *out);
int sim_kv_restore(struct sim_kv *kv, const uint8_t *buf, size_t len);

#endif
