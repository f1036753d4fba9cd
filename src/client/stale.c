/*
 * stale.c - replicas' staleness in time, from the applied indexes members report (stale.h).
 */
#include "client/stale.h"

#include <string.h>

#include "proto/resp.h"

static int str_is(const struct resp_value *v, const char *s)
{
    size_t n = strlen(s);
    return (v->type == RESP_BULK || v->type == RESP_SIMPLE) && v->len == n &&
           memcmp(v->str, s, n) == 0;
}

/* The value of `key` in a map given as RESP3 map or RESP2 array of key, value; NULL if none. */
static const struct resp_value *field(const struct resp_value *m, const char *key)
{
    size_t n = m->type == RESP_MAP ? 2 * m->count : m->type == RESP_ARRAY ? m->count : 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (str_is(&m->elems[i], key)) {
            return &m->elems[i + 1];
        }
    }
    return NULL;
}

static int is_list(const struct resp_value *v)
{
    return v != NULL && (v->type == RESP_ARRAY || v->type == RESP_SET);
}

/* One shard: its slots, and of its nodes the one with an offset (the member answering; the
 * others are reported 0), whether that one is the master. */
static int parse_shard(const struct resp_value *s, struct stale_report *r)
{
    const struct resp_value *slots = field(s, "slots"), *nodes = field(s, "nodes");
    if (!is_list(slots) || slots->count < 2 || slots->elems[0].type != RESP_INTEGER ||
        slots->elems[1].type != RESP_INTEGER || !is_list(nodes)) {
        return -1;
    }
    *r = (struct stale_report){.slot = (uint16_t)slots->elems[0].integer,
                               .end = (uint16_t)slots->elems[1].integer};
    for (size_t i = 0; i < nodes->count; i++) {
        const struct resp_value *off = field(&nodes->elems[i], "replication-offset");
        const struct resp_value *role = field(&nodes->elems[i], "role");
        if (off == NULL || off->type != RESP_INTEGER || role == NULL) {
            return -1;
        }
        if (off->integer > 0) {
            r->applied = (uint64_t)off->integer;
            r->leads = str_is(role, "master");
        }
    }
    return 0;
}

int stale_parse_shards(const struct resp_value *v, struct stale_report *out, size_t max)
{
    if (!is_list(v)) {
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < v->count && n < max; i++) {
        if (parse_shard(&v->elems[i], &out[n]) != 0) {
            return -1;
        }
        n++;
    }
    return (int)n;
}

static struct stale_part *part_of(struct stale_est *e, uint16_t slot)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->parts[i].slot == slot) {
            return &e->parts[i];
        }
    }
    return NULL;
}

void stale_leader_sample(struct stale_est *e, uint16_t slot, uint64_t applied, uint64_t now_ms)
{
    struct stale_part *p = part_of(e, slot);
    if (p == NULL) {
        if (e->n == STALE_PARTS_MAX) {
            return; /* more partitions than a cluster has: its replicas stay unknown */
        }
        p = &e->parts[e->n++];
        memset(p, 0, sizeof(*p));
        p->slot = slot;
    }
    p->t_ms[p->head] = now_ms;
    p->applied[p->head] = applied;
    p->head = (p->head + 1) % STALE_HIST;
    p->n += p->n < STALE_HIST;
}

uint64_t stale_replica_ms(const struct stale_est *e, uint16_t slot, uint64_t applied,
                          uint64_t at_ms)
{
    const struct stale_part *p = part_of((struct stale_est *)e, slot);
    if (p == NULL) {
        return STALE_UNKNOWN;
    }
    uint64_t best = STALE_UNKNOWN;
    for (size_t i = 0; i < p->n; i++) {
        if (p->applied[i] > applied) {
            continue; /* the leader had more then: says nothing of a bound */
        }
        if (p->t_ms[i] >= at_ms) {
            return 0; /* the leader had no more even later: the replica was not behind */
        }
        uint64_t d = at_ms - p->t_ms[i];
        best = d < best ? d : best;
    }
    return best;
}
