/*
 * whole.h - the whole-node simulator (halyard-sim --whole; docs/simulator.md).
 *
 * Runs N real nodes (struct hy_node: engine, store, Raft groups: the metadata group and, with
 * --partitions P, one per partition) in one process from one seed. Each group's log is the real
 * WAL (src/io/wal*.c) on a simulated disk of its own (src/io/disk_mem.c), written
 * by a shell of the simulator's own that plays durable.c's part without a thread; its peer
 * frames are encoded and decoded by src/proto/wire.c and cross a simulated network (loss,
 * duplication, reordering, delay, corruption, partitions, connection breaks); clients send
 * RESP bytes to any node through real node_client objects and parse the RESP replies. Faults
 * (crashes that tear unsynced writes, partitions of peer and client links, frozen processes,
 * clock steps, full disks, and an operator running HALYARD FAILOVER/DRAIN/SNAPSHOT/REMOVE/JOIN
 * and, rarely, FORCE-QUORUM through the RESP path) come from the seed, and so does every other
 * choice: a seed replays bit for bit, and the run's trace digest proves it.
 *
 * Checked, per Raft group where it applies: each key's history is linearizable (lin.c; -UNKNOWN,
 * broken connections and deadlines are indeterminate; writes of exactly-once clients, HY.SESSION +
 * HY.REQ, are retried until settled and must count once), one leader per term, committed entries
 * never change, replicas at the same applied index have the same store digest, a restarted node
 * recovers everything it had acknowledged as durable, no client waits past its deadline on an
 * undisturbed link, and once the faults stop every client is served again within a bound.
 */
#ifndef HY_SIM_WHOLE_H
#define HY_SIM_WHOLE_H

#include <stdint.h>

#include "sim.h"

/* Known bugs the whole-node mutation self-test injects (tests/sim/run.sh). */
enum whole_mutation {
    WHOLE_MUT_NONE = 0,
    WHOLE_MUT_ACK_BEFORE_FSYNC, /* the shell acknowledges a batch before the WAL wrote it */
    WHOLE_MUT_SNAPSHOT_AHEAD,   /* node_set_mutation(NODE_MUT_SNAPSHOT_AHEAD) */
    WHOLE_MUT_SESSION_IGNORED,  /* node_set_mutation(NODE_MUT_SESSION_IGNORED) */
    WHOLE_MUT_RESEND_BARE,      /* NODE_MUT_RESEND_BARE: a re-forwarded write without session */
    WHOLE_MUT_STALE_REPLY,      /* NODE_MUT_STALE_REPLY: a re-sent write's refusal as "not run" */
    WHOLE_MUT_APPLY_CLOCK,      /* NODE_MUT_APPLY_CLOCK: apply reads the node's clock */
    WHOLE_MUT_SESSION_FORGET,   /* NODE_MUT_SESSION_FORGET: the session table forgets a seq */
    WHOLE_MUT_FIRST_MAP_JOINER, /* NODE_MUT_FIRST_MAP_JOINER: the first map over a joiner too */
    WHOLE_MUT_COUNT
};

/* Known bugs a run may tolerate (each has a regression seed in tests/sim/run.sh that must
 * still show it; once it is fixed, the exemption goes). */
enum whole_known_bug {
    /* proxy.c keeps a client's retry_since_ms after a re-run forward was answered, so every
     * later forward of that connection is answered "did not answer within request-timeout-ms"
     * at the next cron tick. Tolerated: the client reconnects. */
    WHOLE_BUG_PROXY_EARLY_TIMEOUT = 1u << 0,
};

struct whole_opts {
    uint64_t seed;
    int nodes;            /* 3..7 */
    uint64_t fault_ms;    /* simulated time with faults; then they stop */
    uint64_t quiet_ms;    /* simulated time after, for recovery and the liveness check */
    int moved;            /* redirect: moved instead of proxy */
    uint32_t mutation;    /* enum whole_mutation */
    int trace;            /* print the timeline */
    int no_faults;        /* a clean run (the determinism test uses both) */
    uint32_t tolerate;    /* enum whole_known_bug */
    int rejoin_early;     /* re-add a removed member before every member has its removal */
    int partitions;       /* 1 (group 0 holds every key), or 2..8: a Raft group per partition */
    int rf;               /* --rf: replication-factor 1..7; 0: every member holds every partition */
    int zones;            /* --zones K: node i is in zone "z<i mod K>" (0: no zones) */
    int replace_after_ms; /* --replace-after MS: the nodes' replace-after-ms (0: the default) */
    int parked_keep_ms;   /* --parked-keep MS: the nodes' parked-keep-ms (-1: the default) */
    int snapshot_bandwidth; /* --snapshot-bandwidth B: the nodes' rebalance-bandwidth, bytes a
                               second (0: unlimited, the simulator's default) */
    int snapshot_chunk;     /* --snapshot-chunk B: the nodes' snapshot-chunk-bytes (512 to 1 MiB; 0:
                               the default, 64 KiB, which sends every simulated snapshot whole) */
    int cancel;             /* --cancel: the operator also cancels moves under way and resumes them
                               (HALYARD REBALANCE CANCEL|RESUME); off by default, so that the seeds of the
                               other runs draw as before */
    int replicated;         /* --durability replicated: the nodes' durability (operations.md):
                               a write counts once written, fdatasync'd within fsync_interval_ms;
                               a crash is a kill -9 (the page cache survives) or a power cut
                               (what was not fdatasync'd may be lost, torn or reordered) */
    int fsync_interval_ms;  /* --fsync-interval MS: the nodes' fsync-interval-ms (default 1000) */
    int no_power_cut;       /* --no-power-cut: every crash is a kill -9 (nothing may be lost) */
    int rf_change;          /* --rf-change (with --rf and partitions): the operator also changes
                               the replication factor at run time (HALYARD REPLICATION-FACTOR) */
    int early_join;         /* --early-join: the last node is left out of the bootstrap list and
                               joins at the cluster's first start, before the first partition
                               map; that map must be the bootstrap members' placement */
    int tx;                 /* --tx: transactions over three keys of one partition, and WATCH
                               read-modify-writes of a counter (whole.c tx_probe_send) */
    int pipe;               /* --pipelined: clients also pipeline 2-6 INCRs of a counter of their
                               own (whole.c pipe_probe_send): followers forward them in batches */
};

struct whole_result {
    int ok;
    char reason[512];
    uint64_t events;
    uint64_t ops_ok;
    uint64_t ops_indeterminate;
    uint64_t ops_failed;
    uint64_t crashes;
    uint64_t commit_index;
    uint64_t trace_digest; /* of every event processed: equal runs replay the same seed */
    int lin_gave_up;
    uint64_t known_bug_hits; /* tolerated symptoms of known bugs */
    /* --durability replicated: power cuts, those that lost acknowledged unsynced writes, and
     * those that left a committed entry held by fewer than a majority of its group's voters. */
    uint64_t power_cuts, power_cut_losses, bare_majority_losses;
};

const char *whole_mutation_name(int m);
int whole_mutation_parse(const char *name);

/* Runs one seed; returns 1 when every check passed. */
int whole_run(const struct whole_opts *o, struct whole_result *res);

#endif
