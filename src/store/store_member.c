/*
 * store_member.c - the cluster's address book (store.h, "cluster members").
 *
 * A member's name, address and wanted role are replicated state like any key: they change
 * only through STORE_OP_MEMBER_SET entries and travel in snapshots, so a node that joins, or
 * restarts without its --bootstrap list, learns every member's address from the log. The
 * Raft configuration (who votes) is separate; the leader moves it towards what this table
 * asks for, one server at a time (node/member.c).
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "store/store_int.h"

struct store_members {
    struct store_member v[STORE_MEMBERS_MAX]; /* sorted by name */
    size_t count;
};

static const char *const role_names[] = {
    [STORE_MEMBER_VOTER] = "voter",
    [STORE_MEMBER_OBSERVER] = "observer",
    [STORE_MEMBER_REMOVED] = "removed",
};

const char *store_member_role_name(enum store_member_role role)
{
    return role >= STORE_MEMBER_VOTER && role <= STORE_MEMBER_REMOVED ? role_names[role] : "?";
}

int store_member_role_parse(const uint8_t *p, size_t len)
{
    for (int r = STORE_MEMBER_VOTER; r <= STORE_MEMBER_REMOVED; r++) {
        if (strlen(role_names[r]) == len && memcmp(role_names[r], p, len) == 0) {
            return r;
        }
    }
    return 0;
}

/* 1..max printable bytes without spaces (names and hosts are written into logs and
 * replies). */
static int token_ok(const uint8_t *p, size_t len, size_t max)
{
    if (len == 0 || len > max) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= ' ' || p[i] > '~') {
            return 0;
        }
    }
    return 1;
}

size_t store_members(const struct store *s, const struct store_member **out)
{
    *out = s->members ? s->members->v : NULL;
    return s->members ? s->members->count : 0;
}

uint64_t store_members_version(const struct store *s)
{
    return s->members_version;
}

void store__members_free(struct store *s)
{
    hy_free(s->members);
    s->members = NULL;
}

static int name_cmp(const char *a, const uint8_t *b, size_t blen)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b, HY_MIN(alen, blen));
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* Index of `name` in t, or of where it would go (*found = 0). */
static size_t member_slot(const struct store_members *t, const uint8_t *name, size_t len,
                          int *found)
{
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(t->v[mid].name, name, len);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = 0;
    return lo;
}

static void member_fill(struct store_member *m, const uint8_t *name, size_t nlen,
                        const uint8_t *host, size_t hlen, uint64_t port, int role)
{
    memset(m, 0, sizeof(*m));
    memcpy(m->name, name, nlen);
    memcpy(m->host, host, hlen);
    m->peer_port = (uint16_t)port;
    m->role = (uint8_t)role;
}

/* [name, host, role]; incr = peer port. +OK, or an error with the table unchanged. */
void store__op_member_set(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    const struct store_arg *name = &e->argv[0], *host = &e->argv[1], *role_arg = &e->argv[2];
    int role = store_member_role_parse(role_arg->ptr, role_arg->len);
    const char *err = NULL;
    if (!token_ok(name->ptr, name->len, STORE_MEMBER_NAME_MAX)) {
        err = "ERR invalid member name";
    } else if (!token_ok(host->ptr, host->len, STORE_MEMBER_HOST_MAX)) {
        err = "ERR invalid member host";
    } else if (e->incr < 1 || e->incr > 65535) {
        err = "ERR invalid member peer port";
    } else if (role == 0) {
        err = "ERR invalid member role";
    }
    if (s->members == NULL && err == NULL) {
        s->members = hy_xcalloc(1, sizeof(*s->members));
    }
    struct store_members *t = s->members;
    int found = 0;
    size_t at = err ? 0 : member_slot(t, name->ptr, name->len, &found);
    if (err == NULL && !found && t->count == STORE_MEMBERS_MAX) {
        /* Full: a removed member's tombstone makes room (the same choice on every replica). */
        size_t victim = t->count;
        for (size_t i = 0; i < t->count && victim == t->count; i++) {
            victim = t->v[i].role == STORE_MEMBER_REMOVED ? i : victim;
        }
        if (victim == t->count) {
            err = "ERR the member table is full; remove a member first";
        } else {
            memmove(&t->v[victim], &t->v[victim + 1], (t->count - victim - 1) * sizeof(t->v[0]));
            t->count--;
            at = member_slot(t, name->ptr, name->len, &found);
        }
    }
    if (err != NULL) {
        if (w != NULL) {
            resp_write_error(w, err);
        }
        return;
    }
    if (found && (e->flags & STORE_F_NX)) {
        if (w != NULL) {
            resp_write_ok(w); /* NX: only fills a gap; the entry already there stays */
        }
        return;
    }
    if (!found) {
        memmove(&t->v[at + 1], &t->v[at], (t->count - at) * sizeof(t->v[0]));
        t->count++;
    }
    member_fill(&t->v[at], name->ptr, name->len, host->ptr, host->len, (uint64_t)e->incr, role);
    s->members_version++;
    if (w != NULL) {
        resp_write_ok(w);
    }
}

/* ---- snapshot section: count, then per member name, host, port, role (sorted by name) ---- */

void store__members_encode(const struct store *s, struct hy_buf *out)
{
    size_t n = s->members ? s->members->count : 0;
    uint8_t *p = hy_buf_reserve(out, VARINT_MAX);
    out->len += varint_put(p, n);
    for (size_t i = 0; i < n; i++) {
        const struct store_member *m = &s->members->v[i];
        size_t nlen = strlen(m->name), hlen = strlen(m->host);
        p = hy_buf_reserve(out, 3 * VARINT_MAX + nlen + hlen + 1);
        p += varint_put(p, nlen);
        memcpy(p, m->name, nlen);
        p += nlen;
        p += varint_put(p, hlen);
        memcpy(p, m->host, hlen);
        p += hlen;
        p += varint_put(p, m->peer_port);
        *p++ = m->role;
        out->len = (size_t)(p - out->data);
    }
}

/* A name or host: a byte string that must be a token. */
static const uint8_t *rd_token(struct rd *r, size_t max, size_t *len_out)
{
    const uint8_t *p = rd_bytes(r, len_out);
    if (p != NULL && !token_ok(p, *len_out, max)) {
        r->bad = 1;
        return NULL;
    }
    return p;
}

int store__members_decode(const uint8_t *buf, size_t len, size_t *used_out,
                          struct store_members **out)
{
    struct rd r = {buf, len, 0, 0};
    uint64_t count = rd_varint(&r);
    *out = NULL;
    if (r.bad || count > STORE_MEMBERS_MAX) {
        return 0;
    }
    struct store_members *t = count ? hy_xcalloc(1, sizeof(*t)) : NULL;
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        size_t nlen, hlen;
        const uint8_t *name = rd_token(&r, STORE_MEMBER_NAME_MAX, &nlen);
        const uint8_t *host = rd_token(&r, STORE_MEMBER_HOST_MAX, &hlen);
        uint64_t port = rd_varint(&r);
        int role = rd_u8(&r);
        /* Canonical: strictly sorted names, so one table has one encoding. */
        if (r.bad || port < 1 || port > 65535 || role < STORE_MEMBER_VOTER ||
            role > STORE_MEMBER_REMOVED || (i > 0 && name_cmp(t->v[i - 1].name, name, nlen) >= 0)) {
            r.bad = 1;
            break;
        }
        member_fill(&t->v[i], name, nlen, host, hlen, port, role);
        t->count++;
    }
    if (r.bad) {
        hy_free(t);
        return 0;
    }
    *used_out = r.off;
    *out = t;
    return 1;
}

void store__members_replace(struct store *s, struct store_members *fresh)
{
    hy_free(s->members);
    s->members = fresh;
    s->members_version++;
}
