/*
 * raft_bench.c - throughput of the Raft core alone: three servers in one process, messages
 * handed over in memory, a disk that is durable at once, no state machine. Measures committed
 * entries per second with batching and the messages sent per committed entry.
 *
 *   build/raft-bench [entries] [entry bytes] [entries per submit]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "raft/raft.h"

#define N 3

struct qmsg {
    struct raft_message m;
    struct raft_entry *ents;
};

struct bench {
    struct raft r[N];
    struct qmsg *q;
    size_t head, count, cap;
    uint64_t now;
    uint64_t msgs;
};

static void enqueue(struct bench *b, const struct raft_message *m)
{
    if (b->head + b->count == b->cap) {
        if (b->head > 0) {
            memmove(b->q, b->q + b->head, b->count * sizeof(*b->q));
            b->head = 0;
        } else {
            b->cap = b->cap ? b->cap * 2 : 1024;
            b->q = hy_xrealloc(b->q, b->cap * sizeof(*b->q));
        }
    }
    struct qmsg *q = &b->q[b->head + b->count++];
    q->m = *m;
    q->ents = NULL;
    if (m->n_entries) {
        /* Entries are borrowed until the sender's next step: copy the headers; the data
         * stays valid because the sender's log owns it until compaction, which the bench
         * only runs with the queue drained. */
        q->ents = hy_xmalloc(m->n_entries * sizeof(*q->ents));
        memcpy(q->ents, m->entries, m->n_entries * sizeof(*q->ents));
        q->m.entries = q->ents;
    }
    b->msgs++;
}

static void step(struct bench *b, int i, struct raft_event *ev);

static void handle(struct bench *b, int i, const struct raft_update *up)
{
    for (uint32_t k = 0; k < up->n_messages; k++) {
        enqueue(b, &up->messages[k]);
    }
    if (up->n_entries > 0) {
        struct raft_event ev = {.type = RAFT_EV_PERSISTED};
        ev.persisted.index = up->entries_first_index + up->n_entries - 1;
        ev.persisted.term = up->entries[up->n_entries - 1].term;
        step(b, i, &ev);
    }
}

static void step(struct bench *b, int i, struct raft_event *ev)
{
    struct raft_update up;
    ev->now_ms = b->now;
    (void)raft_step(&b->r[i], ev, &up);
    handle(b, i, &up);
}

static void pump(struct bench *b)
{
    while (b->count > 0) {
        struct qmsg q = b->q[b->head++];
        b->count--;
        struct raft_event ev = {.type = RAFT_EV_RECEIVE};
        ev.receive.msg = &q.m;
        step(b, (int)q.m.to - 1, &ev);
        hy_free(q.ents);
    }
}

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void setup(struct bench *b)
{
    memset(b, 0, sizeof(*b));
    struct raft_membership m = {.count = N};
    for (int i = 0; i < N; i++) {
        m.servers[i] = (struct raft_server){(raft_id)(i + 1), RAFT_VOTER};
    }
    for (int i = 0; i < N; i++) {
        struct raft_config cfg;
        raft_config_default(&cfg, (raft_id)(i + 1));
        cfg.election_timeout_min_ms = cfg.election_timeout_max_ms = i == 0 ? 100 : 1000000;
        cfg.heartbeat_ms = 1000000;
        cfg.batch_entries_max = 4096;
        cfg.batch_bytes_max = 4 * 1024 * 1024;
        cfg.inflight_max = 16;
        cfg.snapshot_threshold = 0;
        cfg.snapshot_trailing = 0;
        raft_init(&b->r[i], &cfg);
        struct raft_event ev = {.type = RAFT_EV_START};
        ev.start.bootstrap = m;
        step(b, i, &ev);
    }
    b->now = 100;
    struct raft_event t = {.type = RAFT_EV_TIMEOUT};
    step(b, 0, &t);
    pump(b);
    HY_ASSERT(raft_role(&b->r[0]) == RAFT_LEADER);
}

/* Compacts every log up to the commit index so memory stays flat over millions of entries. */
static void compact(struct bench *b)
{
    for (int i = 0; i < N; i++) {
        uint64_t c = raft_commit_index(&b->r[i]);
        if (c > raft_snapshot_index(&b->r[i])) {
            struct raft_event ev = {.type = RAFT_EV_SNAPSHOT};
            ev.snapshot.index = c;
            ev.snapshot.data = (const uint8_t *)"snap";
            ev.snapshot.len = 4;
            step(b, i, &ev);
        }
    }
}

int main(int argc, char **argv)
{
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    uint32_t size = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 64;
    uint32_t per_submit = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 256;
    struct bench *b = hy_xcalloc(1, sizeof(*b));
    setup(b);
    uint8_t *payload = hy_xcalloc(1, size ? size : 1);
    struct raft_entry *batch = hy_xcalloc(per_submit, sizeof(*batch));
    for (uint32_t k = 0; k < per_submit; k++) {
        batch[k] = (struct raft_entry){.type = RAFT_ENTRY_COMMAND, .len = size, .data = payload};
    }
    uint64_t start_commit = raft_commit_index(&b->r[0]);
    uint64_t msgs0 = b->msgs;
    /* CPU time as well as wall time: the figure should not depend on what else the machine
     * runs (the bench is single-threaded). */
    double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t submitted = 0, compacted = 0;
    while (submitted < total) {
        /* Several submits per round keep AppendEntries in flight (pipelining) while the
         * queue carries the acknowledgements of earlier ones. */
        for (int s = 0; s < 4 && submitted < total; s++) {
            struct raft_event ev = {.type = RAFT_EV_SUBMIT};
            ev.submit.entries = batch;
            ev.submit.n_entries = per_submit;
            step(b, 0, &ev);
            submitted += per_submit;
        }
        pump(b);
        if (submitted - compacted >= 16384) {
            compact(b);
            compacted = submitted;
        }
    }
    pump(b);
    double dt = seconds(CLOCK_MONOTONIC) - t0;
    double ct = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    uint64_t committed = raft_commit_index(&b->r[0]) - start_commit;
    uint64_t msgs = b->msgs - msgs0;
    printf("raft core, 3 in-process nodes, no I/O: %llu entries of %u bytes, %u per submit\n",
           (unsigned long long)committed, size, per_submit);
    printf("  %.0f committed entries/s of CPU (%.3f s CPU), %.0f/s wall (%.3f s), %.4f messages "
           "per committed entry\n",
           (double)committed / ct, ct, (double)committed / dt, dt,
           (double)msgs / (double)committed);
    for (int i = 0; i < N; i++) {
        raft_free(&b->r[i]);
    }
    hy_free(batch);
    hy_free(payload);
    hy_free(b->q);
    hy_free(b);
    return committed >= total ? 0 : 1;
}
