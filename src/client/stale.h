/*
 * stale.h - how far behind its partition's leader a replica is, in time, for max_staleness_ms
 * (docs/client.md "Read routing"). Pure: the heartbeat thread (heartbeat.c) feeds it what the
 * members answer and the time.
 *
 * Each member reports, per partition it holds, its own applied index (CLUSTER SHARDS'
 * replication-offset: a member fills it for itself only) and whether it leads. The leader's
 * reports make a history of (time, applied) per partition. A replica that had applied a at time
 * t holds everything the leader had applied at any time t_s of a sample with applied <= a, so:
 * if such a sample was taken at t_s >= t, the replica was not behind at t (staleness 0); else
 * the latest such sample bounds its staleness by t - t_s. With no such sample in the history
 * the staleness is unknown, which counts as too stale. The estimate's resolution is one
 * heartbeat interval: under a steady write load a replica that follows closely shows up to one.
 */
#ifndef HY_CLIENT_STALE_H
#define HY_CLIENT_STALE_H

#include <stddef.h>
#include <stdint.h>

struct resp_value;

#define STALE_PARTS_MAX 128 /* partitions tracked (a cluster has at most 64) */
#define STALE_HIST      64  /* leader samples kept per partition */
#define STALE_UNKNOWN   UINT64_MAX

/* What one member said of one partition. */
struct stale_report {
    uint16_t slot;    /* the partition's first slot: its identity */
    uint16_t end;     /* its last slot */
    uint64_t applied; /* the member's own applied index */
    int leads;        /* the member is the partition's leader */
};

/* Parses a CLUSTER SHARDS answer (RESP2 arrays of key, value or RESP3 maps) given by one
 * member: its report on each partition it holds, at most max. Returns how many, or -1 when the
 * answer is not shaped like CLUSTER SHARDS (an error reply, a server without it). */
int stale_parse_shards(const struct resp_value *v, struct stale_report *out, size_t max);

struct stale_part {
    uint16_t slot;
    uint64_t t_ms[STALE_HIST], applied[STALE_HIST]; /* the leader's samples, a ring */
    size_t n, head;                                 /* head: the next to write */
};

struct stale_est {
    struct stale_part parts[STALE_PARTS_MAX];
    size_t n;
};

/* The leader of the partition starting at `slot` reported `applied` at now_ms. */
void stale_leader_sample(struct stale_est *e, uint16_t slot, uint64_t applied, uint64_t now_ms);
/* How stale a replica of that partition was at at_ms, having applied `applied` then: ms, or
 * STALE_UNKNOWN. */
uint64_t stale_replica_ms(const struct stale_est *e, uint16_t slot, uint64_t applied,
                          uint64_t at_ms);

#endif
