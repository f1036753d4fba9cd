/*
 * sim_int.h - the simulator's internals shared by cluster.c, client.c and check.c.
 *
 * Ownership: messages in flight (struct sim_msg) own copies of their entries and chunk bytes;
 * each event owns its message until delivered or dropped. A node owns its raft, its keyspace,
 * its durable disk image and its queue of pending disk batches (which own copies of what they
 * will write and of the messages held back until the write is durable).
 */
#ifndef HY_SIM_INT_H
#define HY_SIM_INT_H

#include "common/buf.h"
#include "sim.h"

struct sim_msg {
    struct raft_message m;
    uint32_t from_wipes; /* identities of both ends when sent (see sim_node.wipes) */
    uint32_t to_wipes;
    struct raft_entry *ents; /* owned, with owned data */
    uint8_t *data;           /* owned snapshot chunk */
};

/* What is on the simulated disk: survives crashes. */
struct sim_disk {
    uint64_t term;
    raft_id vote;
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_membership snap_membership;
    uint8_t *snap;
    size_t snap_len;
    struct raft_entry *ents; /* entries snap_index + 1 .. snap_index + n */
    size_t n;
    size_t cap;
    struct raft_membership bootstrap;
};

/* One update's writes and the messages that must wait for them. */
struct sim_batch {
    uint64_t done_at;
    int tv;
    uint64_t term;
    raft_id vote;
    int snap; /* 1: install from the leader (log discarded); 2: our own (log kept after) */
    uint64_t snap_index;
    uint64_t snap_term;
    struct raft_membership snap_membership;
    uint8_t *snap_data;
    size_t snap_len;
    int has_entries;
    uint64_t first;
    struct raft_entry *ents;
    uint32_t n;
    struct sim_msg **msgs;
    uint32_t nmsgs;
};

struct sim_pending_write {
    uint64_t index;
    uint64_t term;
    int client;
    size_t op;
};

struct sim_pending_read {
    uint64_t id;
    uint64_t index;
    int ready;
    int client;
    size_t op;
};

struct sim_node {
    raft_id id;
    int up;
    uint32_t inc;   /* incarnation: events of a previous life are ignored */
    uint32_t wipes; /* times its disk was wiped to rejoin: a new identity to its peers */
    struct raft raft;
    struct sim_kv *kv;
    uint64_t applied;
    struct sim_disk disk;
    struct sim_batch *batches;
    size_t nbatches;
    size_t capbatches;
    uint64_t disk_free_at;
    /* Clock: local = base_l + (now - base_g) * rate_ppm / 1e6. */
    uint64_t clk_base_g;
    uint64_t clk_base_l;
    uint64_t rate_ppm;
    uint64_t timer_at_local;
    uint32_t timer_gen;
    uint64_t last_commit;
    uint64_t paused_until; /* a stalled process (GC, VM migration): its events wait */
    uint64_t leader_term;  /* term in which we last saw it lead (completeness check) */
    struct sim_pending_write *pw;
    size_t npw, cappw;
    struct sim_pending_read *pr;
    size_t npr, cappr;
    /* Result of the last SUBMIT/CHANGE/TRANSFER step. */
    int last_status;
    uint64_t last_submit_index;
    uint64_t last_submit_term;
};

enum sim_ev_kind {
    EV_DELIVER,
    EV_TIMER,
    EV_DISK,
    EV_CLIENT_START,
    EV_CLIENT_REQ,
    EV_CLIENT_REPLY,
    EV_CLIENT_TIMEOUT,
    EV_FAULT_TICK,
    EV_RESTART,
    EV_HEAL_NET,
    EV_CRASH,
    EV_SCENARIO,
    EV_LIVENESS,
};

struct sim_ev {
    uint64_t at;
    uint64_t seq;
    int kind;
    int node;
    uint32_t gen;
    struct sim_msg *msg;
    int client;
    size_t op;
    int status; /* reply: 1 ok, 0 failed */
    int has_value;
    int64_t value;
    raft_id hint;
};

struct sim_client {
    int target;
    uint32_t gen;
    size_t op;
    int busy;
    int ok_after_heal;
};

/* Per-index record of what the cluster agreed on, for the safety checks. */
struct sim_record {
    uint64_t *term;
    uint32_t *crc;
    uint64_t *in_term; /* committed record: the term in which the entry became committed */
    size_t cap;
};

/* A scripted scenario's progress (scenario.c). */
struct sim_scenario {
    int phase; /* 0 start, 1 learner added, 2 voters lost, 3 forced */
    uint64_t added_ms;
    uint64_t lost_ms;
    int survivor;
    uint64_t promotions;
};

struct sim {
    struct sim_opts o;
    struct hy_prng rng;
    uint32_t faults;
    uint64_t now;
    uint64_t seq;
    uint64_t hseq; /* history clock: every call and return gets the next number */
    struct sim_ev *heap;
    size_t nheap, capheap;
    struct sim_node nodes[SIM_NODES_MAX];
    int n;
    uint8_t block[SIM_NODES_MAX][SIM_NODES_MAX]; /* block[a][b]: a cannot reach b */
    int net_faulted;
    struct sim_client clients[SIM_CLIENTS_MAX];
    int nclients;
    struct sim_op *ops;
    size_t nops, capops;
    uint64_t read_ids;
    /* Fault intensities drawn from the seed. */
    uint32_t drop_pm, dup_pm, delay_max_ms, slow_disk_pm, slow_disk_max_ms, skew_ppm;
    struct raft_config rcfg;
    uint32_t client_timeout_ms;
    int voters; /* initial voters: servers 1..voters; the others start empty */
    struct sim_scenario scen;
    /* Quiescing (the "quiesce" swarm feature): idle groups and node-level failure detection.
     * Its draws come from qrng, so seeds without it make exactly the choices they made before
     * it existed. */
    struct hy_prng qrng;
    uint32_t quiet_period_ms; /* workload: quiet the second half of every period; 0 = never */
    uint32_t suspect_ms;      /* node-level detector: silent this long = suspected down */
    uint8_t alive_view[SIM_NODES_MAX][SIM_NODES_MAX]; /* [a][b]: a thinks b's node is up */
    uint64_t heard_ms[SIM_NODES_MAX][SIM_NODES_MAX];  /* [a][b]: a last heard b's node */
    uint64_t wake_deadline[SIM_NODES_MAX]; /* told its leader is down: act before; 0 = none */
    uint64_t wake_term[SIM_NODES_MAX];
    uint64_t quiesces;       /* times a leader quiesced (reported) */
    uint64_t snaps_needed;   /* snapshots a leader asked for (raft_release_applied) */
    uint64_t liveness_downs; /* node-level "down" reports delivered */
    /* [a][b]: a reported b suspected (gossip's SUSPECT) since it last heard it. */
    uint8_t suspect_view[SIM_NODES_MAX][SIM_NODES_MAX];
    uint64_t suspicions, false_suspicions; /* suspect reports; those of a node a heard */
    int healing;
    int draining;
    uint64_t heal_ms;
    /* Checker state. */
    raft_id *term_leader;
    size_t cap_terms;
    struct sim_record committed;
    struct sim_record applied;
    struct sim_record acked;
    uint64_t commit_max;
    int failed;
    char reason[512];
    uint64_t steps;
    struct hy_log log;
};

/* cluster.c */
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_push(struct sim *s, const struct sim_ev *ev);
int sim_node_index(const struct sim *s, raft_id id);
void sim_node_event(struct sim *s, struct sim_node *nd, struct raft_event *ev);
struct sim_node *sim_leader(struct sim *s);
/* Crashes nd with no restart planned (it comes back only when faults stop). */
void sim_node_lose(struct sim *s, struct sim_node *nd);

/* scenario.c */
void sim_scenario_setup(struct sim *s);
void sim_scenario_tick(struct sim *s);
void sim_scenario_check(struct sim *s, const struct sim_node *nd);
/* 1 when the scenario's end state holds on leader l (always 1 without a scenario). */
int sim_scenario_done(struct sim *s, const struct sim_node *l);

/* 1 when the workload is in a quiet window at time t (client.c). */
int sim_quiet_at(const struct sim *s, uint64_t t);

/* client.c */
void client_start_all(struct sim *s);
void client_on_start(struct sim *s, const struct sim_ev *ev);
void client_on_reply(struct sim *s, const struct sim_ev *ev);
void client_on_timeout(struct sim *s, const struct sim_ev *ev);
void node_on_client_req(struct sim *s, const struct sim_ev *ev);
void node_reply(struct sim *s, struct sim_node *nd, int client, size_t op, int ok, int has_value,
                int64_t value);
void node_serve_reads(struct sim *s, struct sim_node *nd);
void node_on_read_results(struct sim *s, struct sim_node *nd, const struct raft_update *up);
void node_on_applied(struct sim *s, struct sim_node *nd, uint64_t index, uint64_t term, int ok,
                     int64_t result);

/* check.c */
uint32_t sim_entry_crc(const struct raft_entry *e);
void check_after_step(struct sim *s, struct sim_node *nd);
void check_applied(struct sim *s, struct sim_node *nd, uint64_t index, const struct raft_entry *e);
void check_acked(struct sim *s, uint64_t index, uint64_t term);
void check_logs_full(struct sim *s);
void check_convergence(struct sim *s);
void record_free(struct sim_record *r);

#endif
