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
    int kept; /* 0: applied, but its reply was dropped to stay within the byte bound */
};

struct session {
    uint64_t id;
    uint64_t ttl_ms;
    int64_t expire_at;
    /* Every seq at or below `floor` that is not in `replies` was applied or is refused: the
     * window moved past it. */
    uint64_t floor;
    struct session_reply *replies; /* ascending by seq, at most STORE_SESSION_WINDOW */
    size_t count, cap, bytes;
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
        hy_free(ss->replies[i].bytes);
    }
    hy_free(ss->replies);
    ss->replies = NULL;
    ss->count = ss->cap = ss->bytes = 0;
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

int store_session_exists(const struct store *s, uint64_t id, uint64_t now_ms)
{
    const struct session *ss = s->sessions ? session_find(s->sessions, id) : NULL;
    return ss != NULL && ss->expire_at > (int64_t)now_ms;
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
    /* Ids start at the partition's base, and at each forced history's own range (store.h). */
    uint64_t epoch = HY_MIN(s->term >> 20, (uint64_t)0xFFFF);
    uint64_t floor = s->cfg.session_id_base + (epoch << 32);
    if (t->next_id < floor) {
        t->next_id = floor;
    }
    ss->id = ++t->next_id;
    ss->ttl_ms = e->incr > 0 ? (uint64_t)e->incr : 1;
    ss->expire_at = (int64_t)(e->time_ms + ss->ttl_ms);
    if (w != NULL) {
        resp_write_int(w, (int64_t)ss->id);
    }
}

/* The index of the first reply whose seq is >= seq. */
static size_t reply_pos(const struct session *ss, uint64_t seq)
{
    size_t lo = 0, hi = ss->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ss->replies[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static const struct session_reply *reply_find(const struct session *ss, uint64_t seq)
{
    size_t i = reply_pos(ss, seq);
    return i < ss->count && ss->replies[i].seq == seq ? &ss->replies[i] : NULL;
}

/* Drops the kept bytes of the lowest sequences until `len` more fit in the byte bound. */
static void reply_make_room(struct session *ss, size_t len)
{
    for (size_t i = 0; i < ss->count && ss->bytes + len > STORE_SESSION_REPLY_BYTES; i++) {
        struct session_reply *r = &ss->replies[i];
        ss->bytes -= r->len;
        hy_free(r->bytes);
        r->bytes = NULL;
        r->len = 0;
        r->kept = 0;
    }
}

/* Records seq as applied with its reply: the lowest sequence leaves the window (raising the
 * floor) when it is full, and the lowest replies lose their bytes when over the byte bound;
 * a reply larger than the bound is recorded without its bytes. */
static void reply_keep(struct session *ss, uint64_t seq, const uint8_t *bytes, size_t len)
{
    size_t at = reply_pos(ss, seq);
    HY_ASSERT(at == ss->count || ss->replies[at].seq != seq);
    if (ss->count == STORE_SESSION_WINDOW) {
        struct session_reply *low = &ss->replies[0];
        if (at == 0) {
            /* Below every sequence kept: it leaves the window at once. */
            ss->floor = seq > ss->floor ? seq : ss->floor;
            return;
        }
        ss->floor = low->seq > ss->floor ? low->seq : ss->floor;
        ss->bytes -= low->len;
        hy_free(low->bytes);
        memmove(&ss->replies[0], &ss->replies[1], (ss->count - 1) * sizeof(*ss->replies));
        ss->count--;
        at--;
    }
    if (ss->count == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 4;
        ss->replies = hy_xrealloc(ss->replies, ss->cap * sizeof(*ss->replies));
    }
    int keep = len <= STORE_SESSION_REPLY_BYTES;
    if (keep) {
        reply_make_room(ss, len);
    }
    memmove(&ss->replies[at + 1], &ss->replies[at], (ss->count - at) * sizeof(*ss->replies));
    ss->replies[at] = (struct session_reply){seq, keep && len ? hy_xmemdup(bytes, len) : NULL,
                                             keep ? len : 0, keep};
    ss->count++;
    ss->bytes += ss->replies[at].len;
}

static void req_error(struct resp_writer *w, const char *msg)
{
    if (w != NULL) {
        resp_write_error(w, msg);
    }
}

/* A request already applied: its kept reply, or the news that it was applied. */
static void req_replay(const struct session_reply *r, uint64_t seq, struct resp_writer *w)
{
    if (w == NULL) {
        return;
    }
    if (r != NULL && r->kept) {
        hy_buf_append(w->out, r->bytes, r->len);
        return;
    }
    resp_write_errorf(w,
                      "ERR HY.REQ sequence %llu was already applied; its reply is no longer "
                      "kept",
                      (unsigned long long)seq);
}

/* Whether (session, seq) runs now; if not, the reply (kept, or an error) is written. */
static int req_admit(struct session *ss, uint64_t seq, int windowed, struct resp_writer *w)
{
    const struct session_reply *r = reply_find(ss, seq);
    if (!windowed) {
        /* The first rule (STORE_OP_SESSION_REQ, kept for logs written by it): a seq at or
         * below the highest applied was applied. */
        uint64_t top = ss->count ? ss->replies[ss->count - 1].seq : 0;
        if (seq <= ss->floor || seq <= top) {
            req_replay(r, seq, w);
            return 0;
        }
        return 1;
    }
    if (r != NULL) {
        req_replay(r, seq, w);
        return 0;
    }
    if (seq <= ss->floor) {
        if (w != NULL) {
            resp_write_errorf(w,
                              "ERR HY.REQ sequence %llu is below the session's window (the "
                              "last %d sequences applied): it is not applied now, and if it "
                              "was applied before, its reply is no longer kept",
                              (unsigned long long)seq, STORE_SESSION_WINDOW);
        }
        return 0;
    }
    return 1;
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
    if (!req_admit(ss, seq, e->op == STORE_OP_SESSION_REQW, w)) {
        return;
    }
    struct store_entry inner;
    if (store_entry_decode(e->argv[1].ptr, e->argv[1].len, &inner) != HY_OK ||
        inner.op == STORE_OP_SESSION_OPEN || inner.op == STORE_OP_SESSION_REQ ||
        inner.op == STORE_OP_SESSION_REQW) {
        req_error(w, "ERR malformed session request");
        return;
    }
    store_entry_release(&inner);
    struct hy_buf reply;
    hy_buf_init(&reply);
    struct resp_writer cw = {&reply, (e->flags & STORE_F_RESP3) ? 3 : 2};
    int rc = store_apply(s, e->argv[1].ptr, e->argv[1].len, &cw);
    HY_ASSERT(rc == HY_OK);                        /* it decoded just above */
    if (s->mutation != STORE_MUT_SESSION_FORGET) { /* the bug under test forgets it */
        reply_keep(ss, seq, reply.data, reply.len);
    }
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
        put_v(out, ss->floor);
        put_v(out, ss->count);
        for (size_t k = 0; k < ss->count; k++) {
            const struct session_reply *r = &ss->replies[k];
            put_v(out, r->seq);
            put_v(out, r->kept ? r->len + 1 : 0); /* 0: applied, reply dropped */
            hy_buf_append(out, r->bytes, r->len);
        }
    }
}

/* Version 4 keeps the window (floor, then up to STORE_SESSION_WINDOW sequences ascending, a
 * reply's length stored plus one, 0 for a dropped reply); versions 2 and 3 kept the highest
 * seq applied and up to 64 replies, all at or below it: that highest seq becomes the floor. */
static int session_decode(struct rd *r, struct session *ss, uint64_t prev_id, uint32_t version)
{
    memset(ss, 0, sizeof(*ss));
    ss->id = rd_varint(r);
    ss->ttl_ms = rd_varint(r);
    uint64_t at = rd_varint(r);
    ss->floor = rd_varint(r);
    uint64_t n = rd_varint(r);
    /* A reply takes at least two bytes: bounds the allocation by the input. */
    if (r->bad || ss->id <= prev_id || at > INT64_MAX || n > STORE_SESSION_WINDOW ||
        n > (r->len - r->off) / 2) {
        return 0;
    }
    ss->expire_at = (int64_t)at;
    ss->cap = n ? (size_t)n : 0;
    ss->replies = n ? hy_xcalloc((size_t)n, sizeof(*ss->replies)) : NULL;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t seq = rd_varint(r), len = rd_varint(r);
        int kept = version < 4 || len > 0;
        if (version >= 4 && kept) {
            len--;
        }
        if (r->bad || len > r->len - r->off || (k > 0 && seq <= ss->replies[k - 1].seq) ||
            (version < 4 && seq > ss->floor) || ss->bytes + len > STORE_SESSION_REPLY_BYTES) {
            return 0;
        }
        ss->replies[k] = (struct session_reply){
            seq, len ? hy_xmemdup(r->p + r->off, (size_t)len) : NULL, (size_t)len, kept};
        ss->count++;
        ss->bytes += (size_t)len;
        r->off += len;
    }
    return 1;
}

struct store_sessions *store__sessions_decode(const uint8_t *buf, size_t len, uint32_t version,
                                              size_t *used_out)
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
        if (!session_decode(&r, &t->v[i], prev, version)) {
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

void store_set_term(struct store *s, uint64_t term)
{
    s->term = term;
}
