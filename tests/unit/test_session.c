/* Unit tests for client sessions in the store: at-most-once application per (session, seq),
 * replay of kept replies, expiry by entry time, bounds, and snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/crc.h"
#include "store/store.h"

static struct store *new_store(void)
{
    struct store_config cfg = {.seed = 1, .maxmemory_samples = 5};
    return store_create(&cfg, NULL);
}

/* Applies an entry; returns the reply (static buffer, NUL-terminated). */
static const char *apply(struct store *s, const struct store_entry *e)
{
    static char out[4096];
    struct hy_buf enc, rep;
    hy_buf_init(&enc);
    hy_buf_init(&rep);
    store_entry_encode(e, &enc);
    struct resp_writer w = {&rep, 2};
    assert_int_equal(store_apply(s, enc.data, enc.len, &w), HY_OK);
    size_t n = rep.len < sizeof(out) - 1 ? rep.len : sizeof(out) - 1;
    if (n > 0) {
        memcpy(out, rep.data, n);
    }
    out[n] = '\0';
    hy_buf_free(&enc);
    hy_buf_free(&rep);
    return out;
}

static const char *open_session(struct store *s, uint64_t now, int64_t ttl)
{
    struct store_entry e = {
        .op = STORE_OP_SESSION_OPEN, .time_ms = now, .expire_at_ms = -1, .incr = ttl};
    return apply(s, &e);
}

/* A session request wrapping INCRBY key by, at time now, under rule `op`. */
static const char *req_incr_op(struct store *s, enum store_op op, uint64_t now, int64_t session,
                               uint64_t seq, const char *key, int64_t by)
{
    struct store_arg karg = {(const uint8_t *)key, strlen(key)};
    struct store_entry inner = {.op = STORE_OP_INCRBY,
                                .time_ms = now,
                                .expire_at_ms = -1,
                                .incr = by,
                                .argc = 1,
                                .argv = &karg};
    struct hy_buf ienc;
    hy_buf_init(&ienc);
    store_entry_encode(&inner, &ienc);
    uint8_t seqb[8];
    hy_store_u64le(seqb, seq);
    struct store_arg args[2] = {{seqb, 8}, {ienc.data, ienc.len}};
    struct store_entry e = {
        .op = op, .time_ms = now, .expire_at_ms = -1, .incr = session, .argc = 2, .argv = args};
    const char *r = apply(s, &e);
    hy_buf_free(&ienc);
    return r;
}

/* HY.REQ session seq INCRBY key by, at time now (the window rule). */
static const char *req_incr(struct store *s, uint64_t now, int64_t session, uint64_t seq,
                            const char *key, int64_t by)
{
    return req_incr_op(s, STORE_OP_SESSION_REQW, now, session, seq, key, by);
}

/* A retried (session, seq) returns the first reply and does not apply again. */
static void test_request_applies_once(void **state)
{
    (void)state;
    struct store *s = new_store();
    assert_string_equal(open_session(s, 1000, 60000), ":1\r\n");
    assert_string_equal(req_incr(s, 1001, 1, 1, "k", 5), ":5\r\n");
    assert_string_equal(req_incr(s, 1002, 1, 1, "k", 5), ":5\r\n"); /* retry */
    assert_string_equal(req_incr(s, 1003, 1, 2, "k", 5), ":10\r\n");
    assert_string_equal(req_incr(s, 1004, 1, 1, "k", 5), ":5\r\n");  /* an old retry */
    assert_string_equal(req_incr(s, 1005, 1, 7, "k", 1), ":11\r\n"); /* gaps are fine */
    assert_string_equal(req_incr(s, 1006, 1, 7, "k", 1), ":11\r\n");
    store_destroy(s);
}

/* Requests arriving out of order (re-sent to a new leader after a failover, for instance)
 * each apply once: a seq below the highest applied but never seen is not "already applied". */
static void test_window_admits_out_of_order(void **state)
{
    (void)state;
    struct store *s = new_store();
    open_session(s, 0, 60000);
    assert_string_equal(req_incr(s, 1, 1, 3, "k", 100), ":100\r\n");
    assert_string_equal(req_incr(s, 2, 1, 1, "k", 1), ":101\r\n");
    assert_string_equal(req_incr(s, 3, 1, 3, "k", 100), ":100\r\n"); /* replayed */
    assert_string_equal(req_incr(s, 4, 1, 2, "k", 10), ":111\r\n");
    assert_string_equal(req_incr(s, 5, 1, 1, "k", 1), ":101\r\n");
    assert_string_equal(req_incr(s, 6, 1, 2, "k", 10), ":111\r\n");
    store_destroy(s);
}

/* The first rule, still applied to the entries of logs written with it: a seq at or below
 * the highest applied was applied, so an out-of-order one is refused and changes nothing. */
static void test_first_rule_kept_for_old_entries(void **state)
{
    (void)state;
    struct store *s = new_store();
    open_session(s, 0, 60000);
    assert_string_equal(req_incr_op(s, STORE_OP_SESSION_REQ, 1, 1, 3, "k", 100), ":100\r\n");
    assert_string_equal(req_incr_op(s, STORE_OP_SESSION_REQ, 2, 1, 1, "k", 1),
                        "-ERR HY.REQ sequence 1 was already applied; its reply is no longer "
                        "kept\r\n");
    assert_string_equal(req_incr_op(s, STORE_OP_SESSION_REQ, 3, 1, 3, "k", 100), ":100\r\n");
    assert_string_equal(req_incr_op(s, STORE_OP_SESSION_REQ, 4, 1, 4, "k", 1), ":101\r\n");
    store_destroy(s);
}

/* Sessions expire by the entries' own time, renewed by each request; unknown ones refuse. */
static void test_sessions_expire_by_entry_time(void **state)
{
    (void)state;
    struct store *s = new_store();
    assert_string_equal(open_session(s, 1000, 100), ":1\r\n");
    assert_string_equal(req_incr(s, 1099, 1, 1, "k", 1), ":1\r\n"); /* renews to 1199 */
    assert_string_equal(req_incr(s, 1198, 1, 2, "k", 1), ":2\r\n");
    const char *gone = "-ERR unknown or expired session; the request was not applied\r\n";
    assert_string_equal(req_incr(s, 1298, 1, 3, "k", 1), gone);
    assert_string_equal(req_incr(s, 1300, 42, 1, "k", 1), gone);
    assert_string_equal(open_session(s, 2000, 100), ":2\r\n"); /* ids never repeat */
    assert_int_equal(store_session_count(s), 1);               /* the expired one purged */
    store_destroy(s);
}

/* Only the STORE_SESSION_WINDOW highest sequences are remembered: one below them is refused
 * (never applied again); a sequence skipped inside the window still applies once. */
static void test_reply_window_is_bounded(void **state)
{
    (void)state;
    struct store *s = new_store();
    open_session(s, 0, 60000);
    const uint64_t skipped = STORE_SESSION_WINDOW; /* never sent until the end */
    for (uint64_t i = 1; i <= STORE_SESSION_WINDOW + 10; i++) {
        if (i != skipped) {
            req_incr(s, i, 1, i, "k", 1);
        }
    }
    char want[64];
    snprintf(want, sizeof(want), ":%d\r\n", STORE_SESSION_WINDOW + 9);
    assert_string_equal(req_incr(s, 500, 1, STORE_SESSION_WINDOW + 10, "k", 1), want);
    assert_memory_equal(req_incr(s, 501, 1, 3, "k", 1),
                        "-ERR HY.REQ sequence 3 is below the session's window", 52);
    assert_memory_equal(req_incr(s, 502, 1, 9, "k", 1),
                        "-ERR HY.REQ sequence 9 is below the session's window", 52);
    assert_string_equal(req_incr(s, 502, 1, 10, "k", 1), ":10\r\n"); /* the lowest kept */
    snprintf(want, sizeof(want), ":%d\r\n", STORE_SESSION_WINDOW + 10);
    assert_string_equal(req_incr(s, 503, 1, skipped, "k", 1), want);
    assert_string_equal(req_incr(s, 504, 1, skipped, "k", 1), want); /* replayed */
    /* The window is full again: the lowest left it, and is refused from now on. */
    assert_memory_equal(req_incr(s, 505, 1, 10, "k", 1),
                        "-ERR HY.REQ sequence 10 is below the session's window", 53);
    store_destroy(s);
}

/* Over the byte bound, the lowest replies lose their bytes but not their sequence: a retry
 * learns the write was applied, and it is never applied again. */
static void test_reply_bytes_are_bounded(void **state)
{
    (void)state;
    struct store *s = new_store();
    open_session(s, 0, 60000);
    size_t big = STORE_SESSION_REPLY_BYTES / 3;
    uint8_t *val = hy_xcalloc(1, big);
    memset(val, 'v', big);
    for (uint64_t seq = 1; seq <= 4; seq++) {
        struct store_arg kv[2] = {{(const uint8_t *)"k", 1}, {val, big}};
        struct store_entry set = {.op = STORE_OP_SET,
                                  .flags = STORE_F_GET,
                                  .time_ms = seq,
                                  .expire_at_ms = -1,
                                  .argc = 2,
                                  .argv = kv};
        struct hy_buf ienc;
        hy_buf_init(&ienc);
        store_entry_encode(&set, &ienc);
        uint8_t seqb[8];
        hy_store_u64le(seqb, seq);
        struct store_arg args[2] = {{seqb, 8}, {ienc.data, ienc.len}};
        struct store_entry e = {.op = STORE_OP_SESSION_REQW,
                                .time_ms = seq,
                                .expire_at_ms = -1,
                                .incr = 1,
                                .argc = 2,
                                .argv = args};
        apply(s, &e); /* SET k v GET: replies hold the previous value (big) */
        hy_buf_free(&ienc);
    }
    assert_string_equal(req_incr(s, 10, 1, 1, "n", 1), "-ERR HY.REQ sequence 1 was already "
                                                       "applied; its reply is no longer "
                                                       "kept\r\n");
    assert_string_equal(req_incr(s, 11, 1, 2, "n", 1), "-ERR HY.REQ sequence 2 was already "
                                                       "applied; its reply is no longer "
                                                       "kept\r\n");
    assert_int_equal(store_key_count(s), 1); /* "n" was never created */
    /* The dropped replies travel in a snapshot as dropped. */
    struct hy_buf snap;
    hy_buf_init(&snap);
    store_snapshot_encode(s, &snap);
    struct store *b = new_store();
    assert_int_equal(store_snapshot_decode(b, snap.data, snap.len), HY_OK);
    assert_memory_equal(req_incr(b, 12, 1, 2, "n", 1), "-ERR HY.REQ sequence 2 was already", 34);
    assert_memory_equal(req_incr(b, 13, 1, 4, "n", 1), "$", 1); /* kept: the old value */
    hy_buf_free(&snap);
    hy_free(val);
    store_destroy(b);
    store_destroy(s);
}

/* A snapshot written before the window (version 3: the highest seq applied and the replies
 * at or below it) is read: that seq becomes the floor and the replies are still replayed. */
static void test_version3_sessions_are_read(void **state)
{
    (void)state;
    struct hy_buf v3;
    hy_buf_init(&v3);
    hy_buf_append(&v3, "HYKS", 4);
    hy_buf_append_u32le(&v3, 3);
    hy_buf_append_u64le(&v3, 0); /* no keys */
    /* sessions: next_id 1, count 1; id 1, ttl 60000, expire_at 60000, max_seq 5, 1 reply */
    const uint8_t sess[] = {1, 1, 1, 0xe0, 0xd4, 0x03, 0xe0, 0xd4, 0x03, 5, 1, 5, 4};
    hy_buf_append(&v3, sess, sizeof(sess));
    hy_buf_append(&v3, ":7\r\n", 4);
    hy_buf_append_u8(&v3, 0); /* no members */
    hy_buf_append_u32le(&v3, hy_crc32c(0, v3.data, v3.len));
    struct store *s = new_store();
    assert_int_equal(store_snapshot_decode(s, v3.data, v3.len), HY_OK);
    assert_string_equal(req_incr(s, 10, 1, 5, "k", 1), ":7\r\n");
    assert_memory_equal(req_incr(s, 11, 1, 4, "k", 1), "-ERR HY.REQ sequence 4 is below", 31);
    assert_string_equal(req_incr(s, 12, 1, 6, "k", 1), ":1\r\n");
    hy_buf_free(&v3);
    store_destroy(s);
}

/* Sessions and their kept replies survive a snapshot round trip, identically. */
static void test_snapshot_keeps_sessions(void **state)
{
    (void)state;
    struct store *a = new_store(), *b = new_store();
    open_session(a, 0, 60000);
    open_session(a, 0, 60000);
    req_incr(a, 1, 1, 1, "x", 3);
    req_incr(a, 2, 2, 9, "y", 4);
    struct hy_buf snap, snap2;
    hy_buf_init(&snap);
    hy_buf_init(&snap2);
    store_snapshot_encode(a, &snap);
    assert_int_equal(store_snapshot_decode(b, snap.data, snap.len), HY_OK);
    assert_int_equal(store_session_count(b), 2);
    assert_string_equal(req_incr(b, 3, 1, 1, "x", 3), ":3\r\n"); /* replayed, not re-applied */
    assert_string_equal(req_incr(b, 3, 2, 9, "y", 4), ":4\r\n");
    assert_string_equal(open_session(b, 4, 100), ":3\r\n"); /* the id counter travelled */
    store_snapshot_encode(a, &snap2);
    assert_int_equal(snap.len, snap2.len);
    assert_memory_equal(snap.data, snap2.data, snap.len);
    /* Every truncation of the sessions section is refused without a crash. */
    for (size_t cut = 16; cut < snap.len; cut++) {
        assert_int_equal(store_snapshot_decode(b, snap.data, cut), HY_ECORRUPT);
    }
    hy_buf_free(&snap);
    hy_buf_free(&snap2);
    store_destroy(a);
    store_destroy(b);
}

/* FLUSHALL empties the keyspace but keeps sessions: a retry after it still replays. */
static void test_flushall_keeps_sessions(void **state)
{
    (void)state;
    struct store *s = new_store();
    open_session(s, 0, 60000);
    assert_string_equal(req_incr(s, 1, 1, 1, "k", 2), ":2\r\n");
    struct store_entry fl = {.op = STORE_OP_FLUSHALL, .time_ms = 2, .expire_at_ms = -1};
    assert_string_equal(apply(s, &fl), "+OK\r\n");
    assert_string_equal(req_incr(s, 3, 1, 1, "k", 2), ":2\r\n");
    assert_int_equal(store_key_count(s), 0);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_applies_once),
        cmocka_unit_test(test_sessions_expire_by_entry_time),
        cmocka_unit_test(test_window_admits_out_of_order),
        cmocka_unit_test(test_first_rule_kept_for_old_entries),
        cmocka_unit_test(test_reply_window_is_bounded),
        cmocka_unit_test(test_reply_bytes_are_bounded),
        cmocka_unit_test(test_version3_sessions_are_read),
        cmocka_unit_test(test_snapshot_keeps_sessions),
        cmocka_unit_test(test_flushall_keeps_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
