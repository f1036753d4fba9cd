/*
 * store_session.c - client sessions for exactly-once writes (store.h, "client sessions").
 *
 * Everything here runs inside store_apply and reads only the entry: ids come from a counter
 * in the table, expiry from the entry's time, so every replica holds the same sessions, and
 * a retried request replays the reply that was kept instead of applying twice (the Raft
 * dissertation's client sessions, §6.3).
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "store/store_int.h"

struct session_reply {
    uint64_t seq;
    uint8_t *bytes;
    size_t len;
};

struct session {
    uint64_t id;
    uint64_t ttl_ms;
    int64_t expire_at;
    uint64_t max_seq;                                    /* highest sequence applied */
    struct session_reply replies[STORE_SESSION_REPLIES]; /* ring, oldest at head */
    size_t head, count, bytes;
};

struct store_sessions {
    struct session *v; /* sorted by id: ids only grow */
    size_t count, cap;
    uint64_t next_id;
};

static struct store_sessions *sessions_of(struct store *s)
{
    if (s->sessions == NULL) {
        s->sessions = hy_xcalloc(1, sizeof(*s->sessions));
    }
    return s->sessions;
}

size_t store_session_count(const struct store *s)
{
    return s->sessions ? s->sessions->count : 0;
}

static void session_clear(struct session *ss)
{
    for (size_t i = 0; i < ss->count; i++) {
        hy_free(ss->replies[(ss->head + i) % STORE_SESSION_REPLIES].bytes);
    }
    ss->head = ss->count = ss->bytes = 0;
}

static void table_free(struct store_sessions *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        session_clear(&t->v[i]);
    }
    hy_free(t->v);
    hy_free(t);
}

void store__sessions_free(struct store *s)
{
    table_free(s->sessions);
    s->sessions = NULL;
}

static struct session *session_find(struct store_sessions *t, uint64_t id)
{
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < t->count && t->v[lo].id == id ? &t->v[lo] : NULL;
}

/* Drops sessions expired at `now` (entry time): O(sessions), done when opening one. */
static void purge_expired(struct store_sessions *t, uint64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (t->v[i].expire_at > (int64_t)now) {
            t->v[keep++] = t->v[i];
        } else {
            session_clear(&t->v[i]);
        }
    }
    t->count = keep;
}

void store__op_session_open(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_sessions *t = sessions_of(s);
    purge_expired(t, e->time_ms);
    if (t->count >= STORE_SESSIONS_MAX) {
        if (w != NULL) {
            resp_write_error(w, "ERR too many client sessions; close or let some expire");
        }
        return;
    }
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->v = hy_xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    struct session *ss = &t->v[t->count++];
    memset(ss, 0, sizeof(*ss));
    ss->id = ++t->next_id;
    ss->ttl_ms = e->incr > 0 ? (uint64_t)e->incr : 1;
    ss->expire_at = (int64_t)(e->time_ms + ss->ttl_ms);
    if (w != NULL) {
        resp_write_int(w, (int64_t)ss->id);
    }
}

static const struct session_reply *reply_find(const struct session *ss, uint64_t seq)
{
    for (size_t i = 0; i < ss->count; i++) {
        const struct session_reply *r = &ss->replies[(ss->head + i) % STORE_SESSION_REPLIES];
        if (r->seq == seq) {
            return r;
        }
    }
    return NULL;
}

/* Keeps seq's reply, dropping the oldest while over the count or byte bound. */
static void reply_keep(struct session *ss, uint64_t seq, const uint8_t *bytes, size_t len)
{
    while (ss->count > 0 &&
           (ss->count == STORE_SESSION_REPLIES || ss->bytes + len > STORE_SESSION_REPLY_BYTES)) {
        struct session_reply *old = &ss->replies[ss->head];
        ss->bytes -= old->len;
        hy_free(old->bytes);
        ss->head = (ss->head + 1) % STORE_SESSION_REPLIES;
        ss->count--;
    }
    if (len > STORE_SESSION_REPLY_BYTES) {
        return; /* too large to keep: a retry learns it was applied, not its reply */
    }
    struct session_reply *r = &ss->replies[(ss->head + ss->count) % STORE_SESSION_REPLIES];
    *r = (struct session_reply){seq, len ? hy_xmemdup(bytes, len) : NULL, len};
    ss->count++;
    ss->bytes += len;
}

static void req_error(struct resp_writer *w, const char *msg)
{
    if (w != NULL) {
        resp_write_error(w, msg);
    }
}

/* A request already applied: its kept reply, or the news that it was applied. */
static void req_replay(const struct session *ss, uint64_t seq, struct resp_writer *w)
{
    const struct session_reply *r = reply_find(ss, seq);
    if (w == NULL) {
        return;
    }
    if (r != NULL) {
        hy_buf_append(w->out, r->bytes, r->len);
        return;
    }
    resp_write_errorf(w,
                      "ERR HY.REQ sequence %llu was already applied; its reply is no longer "
                      "kept",
                      (unsigned long long)seq);
}

void store__op_session_req(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct session *ss = s->sessions ? session_find(s->sessions, (uint64_t)e->incr) : NULL;
    if (e->argv[0].len != 8) {
        req_error(w, "ERR malformed session request");
        return;
    }
    uint64_t seq = hy_load_u64le(e->argv[0].ptr);
    if (ss == NULL || ss->expire_at <= (int64_t)e->time_ms) {
        req_error(w, "ERR unknown or expired session; the request was not applied");
        return;
    }
    ss->expire_at = (int64_t)(e->time_ms + ss->ttl_ms);
    if (seq <= ss->max_seq) {
        req_replay(ss, seq, w);
        return;
    }
    struct store_entry inner;
    if (store_entry_decode(e->argv[1].ptr, e->argv[1].len, &inner) != HY_OK ||
        inner.op == STORE_OP_SESSION_OPEN || inner.op == STORE_OP_SESSION_REQ) {
        req_error(w, "ERR malformed session request");
        return;
    }
    store_entry_release(&inner);
    struct hy_buf reply;
    hy_buf_init(&reply);
    struct resp_writer cw = {&reply, (e->flags & STORE_F_RESP3) ? 3 : 2};
    int rc = store_apply(s, e->argv[1].ptr, e->argv[1].len, &cw);
    HY_ASSERT(rc == HY_OK); /* it decoded just above */
    ss->max_seq = seq;
    reply_keep(ss, seq, reply.data, reply.len);
    if (w != NULL) {
        hy_buf_append(w->out, reply.data, reply.len);
    }
    hy_buf_free(&reply);
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static void put_v(struct hy_buf *out, uint64_t v)
{
    uint8_t tmp[VARINT_MAX];
    hy_buf_append(out, tmp, varint_put(tmp, v));
}

void store__sessions_encode(const struct store *s, struct hy_buf *out)
{
    const struct store_sessions *t = s->sessions;
    put_v(out, t ? t->next_id : 0);
    put_v(out, t ? t->count : 0);
    for (size_t i = 0; t != NULL && i < t->count; i++) {
        const struct session *ss = &t->v[i];
        put_v(out, ss->id);
        put_v(out, ss->ttl_ms);
        put_v(out, (uint64_t)ss->expire_at);
        put_v(out, ss->max_seq);
        put_v(out, ss->count);
        for (size_t k = 0; k < ss->count; k++) {
            const struct session_reply *r = &ss->replies[(ss->head + k) % STORE_SESSION_REPLIES];
            put_v(out, r->seq);
            put_v(out, r->len);
            hy_buf_append(out, r->bytes, r->len);
        }
    }
}

static int session_decode(struct rd *r, struct session *ss, uint64_t prev_id)
{
    memset(ss, 0, sizeof(*ss));
    ss->id = rd_varint(r);
    ss->ttl_ms = rd_varint(r);
    uint64_t at = rd_varint(r);
    ss->max_seq = rd_varint(r);
    uint64_t n = rd_varint(r);
    if (r->bad || ss->id <= prev_id || at > INT64_MAX || n > STORE_SESSION_REPLIES) {
        return 0;
    }
    ss->expire_at = (int64_t)at;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t seq = rd_varint(r), len = rd_varint(r);
        if (r->bad || len > r->len - r->off || seq > ss->max_seq ||
            ss->bytes + len > STORE_SESSION_REPLY_BYTES) {
            return 0;
        }
        reply_keep(ss, seq, r->p + r->off, (size_t)len);
        r->off += len;
    }
    return 1;
}

struct store_sessions *store__sessions_decode(const uint8_t *buf, size_t len, size_t *used_out)
{
    struct rd r = {buf, len, 0, 0};
    struct store_sessions *t = hy_xcalloc(1, sizeof(*t));
    t->next_id = rd_varint(&r);
    uint64_t count = rd_varint(&r);
    /* A session takes at least five bytes: bounds the allocation by the input. */
    if (r.bad || count > STORE_SESSIONS_MAX || count > (len - r.off) / 5) {
        table_free(t);
        return NULL;
    }
    t->cap = count ? (size_t)count : 1;
    t->v = hy_xcalloc(t->cap, sizeof(*t->v));
    for (uint64_t i = 0; i < count; i++) {
        uint64_t prev = i ? t->v[i - 1].id : 0;
        if (!session_decode(&r, &t->v[i], prev)) {
            t->count = (size_t)i + 1; /* frees the partial one too */
            table_free(t);
            return NULL;
        }
        t->count = (size_t)i + 1;
    }
    if (t->count > 0 && t->next_id < t->v[t->count - 1].id) {
        table_free(t);
        return NULL;
    }
    *used_out = r.off;
    return t;
}

void store__sessions_replace(struct store *s, struct store_sessions *fresh)
{
    table_free(s->sessions);
    s->sessions = fresh;
}
