/* Unit tests for links between clusters (docs/wan.md): link definitions (node/wan.c), the batch
 * codec and the dedup rule (store/store_wan.c), the shipper's state machine, and the target's
 * store applying a batch once and keeping its positions in snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "node/wan.h"
#include "store/store.h"
#include "store/store_wan.h"

#define S(lit) (const uint8_t *)(lit), strlen(lit)

static void test_link_definitions(void **state)
{
    (void)state;
    assert_true(wan_name_ok(S("dr-east.1_a")));
    assert_false(wan_name_ok(S("")));
    assert_false(wan_name_ok(S("a b")));
    assert_false(wan_name_ok(S("a:b")));
    assert_true(wan_targets_ok(S("10.0.0.1:17379")));
    assert_true(wan_targets_ok(S("a:1,b.example:65535")));
    assert_false(wan_targets_ok(S("a")));
    assert_false(wan_targets_ok(S("a:0")));
    assert_false(wan_targets_ok(S("a:65536")));
    assert_false(wan_targets_ok(S("a:1,")));
    assert_false(wan_targets_ok(S(":1")));
    assert_false(wan_targets_ok(S("a b:1")));
    assert_false(wan_targets_ok(S("::1:7379"))); /* no bare IPv6 in this slice */
    assert_true(wan_secret_ok(S("")));
    assert_false(wan_secret_ok(S("two words")));

    struct wan_link l = {.mode = WAN_ACTIVE_PASSIVE};
    strcpy(l.name, "dr");
    strcpy(l.targets, "h1:1,h2:2");
    strcpy(l.secret, "s3cret");
    struct hy_buf b;
    hy_buf_init(&b);
    wan_link_encode(&l, &b);
    struct wan_link back;
    assert_true(wan_link_decode(S("dr"), b.data, b.len, &back));
    assert_string_equal(back.name, "dr");
    assert_string_equal(back.targets, "h1:1,h2:2");
    assert_string_equal(back.secret, "s3cret");
    /* No secret: the value ends with the space, and decodes to an empty one. */
    hy_buf_reset(&b);
    l.secret[0] = '\0';
    wan_link_encode(&l, &b);
    assert_true(wan_link_decode(S("dr"), b.data, b.len, &back));
    assert_string_equal(back.secret, "");
    assert_false(wan_link_decode(S("dr"), S("active-active h:1 x"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive bad x"), &back));
    hy_buf_free(&b);
}

static void test_batch_codec(void **state)
{
    (void)state;
    struct wan_batch b;
    wan_batch_init(&b, "east", 7, 64, 3);
    assert_int_equal(wan_batch_add(&b, 5, S("aaaa")), HY_OK);
    assert_int_equal(wan_batch_add(&b, 5, S("dup")), HY_EINVAL); /* indexes only grow */
    assert_int_equal(wan_batch_add(&b, 9, S("bb")), HY_OK);
    /* 64 bytes: header 13 + (12 + 4) + (12 + 2) = 43; 12 + 10 more is too many. */
    assert_int_equal(wan_batch_add(&b, 10, S("cccccccccc")), HY_EBUSY);
    assert_int_equal(wan_batch_add(&b, 10, S("c")), HY_OK);
    assert_int_equal(wan_batch_add(&b, 11, S("d")), HY_EBUSY); /* 3 entries at most */
    assert_int_equal(b.count, 3);
    assert_int_equal(b.last_index, 10);

    struct wan_batch_reader r;
    assert_int_equal(wan_batch_open(&r, b.buf.data, b.buf.len), HY_OK);
    assert_string_equal(r.origin, "east");
    assert_int_equal(r.src_partition, 7);
    assert_int_equal(r.count, 3);
    uint64_t idx;
    const uint8_t *e;
    size_t len;
    assert_int_equal(wan_batch_next(&r, &idx, &e, &len), HY_OK);
    assert_int_equal(idx, 5);
    assert_memory_equal(e, "aaaa", 4);
    assert_int_equal(wan_batch_next(&r, &idx, &e, &len), HY_OK);
    assert_int_equal(idx, 9);
    assert_int_equal(wan_batch_next(&r, &idx, &e, &len), HY_OK);
    assert_int_equal(idx, 10);
    assert_int_equal(wan_batch_next(&r, &idx, &e, &len), HY_ENOTFOUND);

    /* A batch's first entry always goes in, however large. */
    struct wan_batch big;
    wan_batch_init(&big, "east", 0, 16, 1);
    assert_int_equal(wan_batch_add(&big, 1, S("0123456789abcdef0123")), HY_OK);
    wan_batch_free(&big);

    /* Every truncation is refused (never read past the end), and so are trailing bytes. */
    for (size_t cut = 0; cut < b.buf.len; cut++) {
        enum hy_status rc = wan_batch_open(&r, b.buf.data, cut);
        while (rc == HY_OK) {
            rc = wan_batch_next(&r, &idx, &e, &len);
        }
        assert_int_equal(rc, HY_ECORRUPT);
    }
    hy_buf_append_u8(&b.buf, 0);
    assert_int_equal(wan_batch_open(&r, b.buf.data, b.buf.len), HY_OK);
    enum hy_status rc;
    while ((rc = wan_batch_next(&r, &idx, &e, &len)) == HY_OK) {
    }
    assert_int_equal(rc, HY_ECORRUPT);
    wan_batch_free(&b);
}

static void test_dedup(void **state)
{
    (void)state;
    uint64_t last = 0;
    assert_true(wan_dedup_admit(&last, 3));
    assert_true(wan_dedup_admit(&last, 4));
    assert_false(wan_dedup_admit(&last, 4)); /* a resend */
    assert_false(wan_dedup_admit(&last, 2));
    assert_true(wan_dedup_admit(&last, 10)); /* gaps are fine: only data entries are shipped */
    assert_int_equal(last, 10);
}

static void test_shipper(void **state)
{
    (void)state;
    struct wan_shipper s;
    uint64_t from;
    wan_shipper_init(&s, 100, 1000, 100, 400);
    assert_false(wan_shipper_due(&s, 100, 0, &from)); /* nothing beyond acked */
    wan_shipper_committed(&s, 105, 10);
    assert_true(wan_shipper_due(&s, 105, 10, &from));
    assert_int_equal(from, 100);
    wan_shipper_sent(&s, 103, 10);
    assert_false(wan_shipper_due(&s, 105, 20, &from)); /* one batch in flight at a time */
    struct wan_lag lag = wan_shipper_lag(&s, 105, 60);
    assert_int_equal(lag.entries, 5);
    assert_int_equal(lag.ms, 50);
    wan_shipper_acked(&s, 103, 3, 105, 70);
    assert_int_equal(s.acked, 103);
    assert_true(wan_shipper_due(&s, 105, 70, &from));
    assert_int_equal(from, 103);
    wan_shipper_sent(&s, 105, 70);
    /* A late answer to an older batch changes nothing. */
    wan_shipper_acked(&s, 101, 1, 105, 80);
    assert_int_equal(s.acked, 103);
    /* No answer within the timeout: sent again from acked. */
    assert_false(wan_shipper_due(&s, 105, 1069, &from));
    assert_true(wan_shipper_due(&s, 105, 1070, &from));
    assert_int_equal(from, 103);
    assert_int_equal(s.failures, 1);
    wan_shipper_sent(&s, 105, 1070);
    /* Failures back off, doubling up to the maximum. */
    wan_shipper_failed(&s, 2000);
    assert_false(wan_shipper_due(&s, 105, 2099, &from));
    assert_true(wan_shipper_due(&s, 105, 2100, &from));
    wan_shipper_sent(&s, 105, 2100);
    wan_shipper_failed(&s, 3000);
    assert_false(wan_shipper_due(&s, 105, 3199, &from));
    wan_shipper_sent(&s, 105, 3200);
    wan_shipper_failed(&s, 4000);
    wan_shipper_sent(&s, 105, 4400);
    wan_shipper_failed(&s, 5000);
    assert_false(wan_shipper_due(&s, 105, 5399, &from)); /* capped at 400 */
    assert_true(wan_shipper_due(&s, 105, 5400, &from));
    wan_shipper_sent(&s, 105, 5400);
    wan_shipper_acked(&s, 105, 2, 105, 5500);
    assert_int_equal(s.backoff_ms, 100); /* reset by a success */
    lag = wan_shipper_lag(&s, 105, 6000);
    assert_int_equal(lag.entries, 0);
    assert_int_equal(lag.ms, 0);
}

static void encode_set(struct hy_buf *out, const char *k, const char *v)
{
    struct store_arg a[2] = {{(const uint8_t *)k, strlen(k)}, {(const uint8_t *)v, strlen(v)}};
    struct store_entry e = {.op = STORE_OP_SET, .expire_at_ms = -1, .argc = 2, .argv = a};
    store_entry_encode(&e, out);
}

static void encode_incr(struct hy_buf *out, const char *k)
{
    struct store_arg a[1] = {{(const uint8_t *)k, strlen(k)}};
    struct store_entry e = {
        .op = STORE_OP_INCRBY, .expire_at_ms = -1, .incr = 1, .argc = 1, .argv = a};
    store_entry_encode(&e, out);
}

/* Applies a WAN_APPLY entry holding batch; returns the reply text. */
static const char *apply_batch(struct store *s, const struct wan_batch *b)
{
    static char text[256];
    struct store_arg a[1] = {{b->buf.data, b->buf.len}};
    struct store_entry e = {.op = STORE_OP_WAN_APPLY, .expire_at_ms = -1, .argc = 1, .argv = a};
    struct hy_buf entry, out;
    hy_buf_init(&entry);
    hy_buf_init(&out);
    store_entry_encode(&e, &entry);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(s, entry.data, entry.len, &w), HY_OK);
    snprintf(text, sizeof(text), "%.*s", (int)out.len, (const char *)out.data);
    hy_buf_free(&entry);
    hy_buf_free(&out);
    return text;
}

static const char *get(struct store *s, const char *k)
{
    static char text[64];
    const struct store_obj *o = store_peek(s, (const uint8_t *)k, strlen(k), 0);
    if (o == NULL) {
        return NULL;
    }
    const uint8_t *p;
    size_t len;
    store_obj_string(o, &p, &len);
    snprintf(text, sizeof(text), "%.*s", (int)len, (const char *)p);
    return text;
}

/* The target applies each change once: a resent batch, or one overlapping what it has, skips
 * what it applied; positions are per (origin, source partition) and survive a snapshot. */
static void test_store_applies_once(void **state)
{
    (void)state;
    struct store_config cfg = {.seed = 1, .maxmemory_samples = 5};
    struct store *s = store_create(&cfg, NULL);
    struct hy_buf e1, e2, e3;
    hy_buf_init(&e1);
    hy_buf_init(&e2);
    hy_buf_init(&e3);
    encode_incr(&e1, "n");
    encode_set(&e2, "k", "v1");
    encode_incr(&e3, "n");

    struct wan_batch b;
    wan_batch_init(&b, "east", 2, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&b, 10, e1.data, e1.len), HY_OK);
    assert_int_equal(wan_batch_add(&b, 11, e2.data, e2.len), HY_OK);
    assert_string_equal(apply_batch(s, &b), ":11\r\n");
    assert_string_equal(get(s, "n"), "1");
    /* The same batch again (its answer was lost): nothing applied twice. */
    assert_string_equal(apply_batch(s, &b), ":11\r\n");
    assert_string_equal(get(s, "n"), "1");
    /* A resend from an older position, with a new change after: only the new one applies. */
    assert_int_equal(wan_batch_add(&b, 12, e3.data, e3.len), HY_OK);
    assert_string_equal(apply_batch(s, &b), ":12\r\n");
    assert_string_equal(get(s, "n"), "2");
    assert_int_equal(store_wan_applied(s, "east", 2), 12);
    assert_int_equal(store_wan_applied(s, "east", 1), 0);
    /* Another source partition (or cluster) has positions of its own. */
    struct wan_batch o;
    wan_batch_init(&o, "east", 1, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&o, 5, e1.data, e1.len), HY_OK);
    assert_string_equal(apply_batch(s, &o), ":5\r\n");
    assert_string_equal(get(s, "n"), "3");

    /* Snapshot and back: the positions come along (a restarted target still skips). */
    struct hy_buf snap;
    hy_buf_init(&snap);
    store_snapshot_encode(s, &snap);
    struct store *t = store_create(&cfg, NULL);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    assert_int_equal(store_digest(s), store_digest(t));
    assert_int_equal(store_wan_applied(t, "east", 2), 12);
    assert_int_equal(store_wan_applied(t, "east", 1), 5);
    assert_string_equal(apply_batch(t, &b), ":12\r\n");
    assert_string_equal(get(t, "n"), "3");
    /* A FLUSHALL empties the keys, not the positions (they say what arrived, not what is
     * held). */
    struct store_entry fl = {.op = STORE_OP_FLUSHALL, .expire_at_ms = -1};
    struct hy_buf fe;
    hy_buf_init(&fe);
    store_entry_encode(&fl, &fe);
    assert_int_equal(store_apply(t, fe.data, fe.len, NULL), HY_OK);
    assert_int_equal(store_wan_applied(t, "east", 2), 12);

    hy_buf_free(&fe);
    hy_buf_free(&snap);
    wan_batch_free(&o);
    wan_batch_free(&b);
    hy_buf_free(&e1);
    hy_buf_free(&e2);
    hy_buf_free(&e3);
    store_destroy(t);
    store_destroy(s);
}

/* The tap sees every write applied, nested ones too, but not those of a WAN batch. */
struct tapped {
    int count;
    enum store_op ops[8];
};

static void tap_cb(void *ctx, const struct store_entry *e, const uint8_t *entry, size_t len)
{
    (void)entry;
    (void)len;
    struct tapped *t = ctx;
    if (t->count < 8) {
        t->ops[t->count] = e->op;
    }
    t->count++;
}

static void test_tap(void **state)
{
    (void)state;
    struct store_config cfg = {.seed = 2, .maxmemory_samples = 5};
    struct store *s = store_create(&cfg, NULL);
    struct tapped t = {0};
    store_set_tap(s, tap_cb, &t);
    struct hy_buf e;
    hy_buf_init(&e);
    encode_set(&e, "a", "1");
    assert_int_equal(store_apply(s, e.data, e.len, NULL), HY_OK);
    assert_int_equal(t.count, 1);
    assert_int_equal(t.ops[0], STORE_OP_SET);
    struct wan_batch b;
    wan_batch_init(&b, "east", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&b, 1, e.data, e.len), HY_OK);
    apply_batch(s, &b);
    assert_int_equal(t.count, 2); /* the WAN_APPLY itself only */
    assert_int_equal(t.ops[1], STORE_OP_WAN_APPLY);
    wan_batch_free(&b);
    hy_buf_free(&e);
    store_destroy(s);
}

/* A batch holding a batch (only crafted bytes can) is not recursed into: its inner changes are
 * not applied, and the outer position still moves past it on every replica alike. */
static void test_nested_batch_refused(void **state)
{
    (void)state;
    struct store_config cfg = {.seed = 4, .maxmemory_samples = 5};
    struct store *s = store_create(&cfg, NULL);
    struct hy_buf set, inner_entry;
    hy_buf_init(&set);
    hy_buf_init(&inner_entry);
    encode_set(&set, "k", "v");
    struct wan_batch inner, outer;
    wan_batch_init(&inner, "east", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&inner, 1, set.data, set.len), HY_OK);
    struct store_arg a[1] = {{inner.buf.data, inner.buf.len}};
    struct store_entry e = {.op = STORE_OP_WAN_APPLY, .expire_at_ms = -1, .argc = 1, .argv = a};
    store_entry_encode(&e, &inner_entry);
    wan_batch_init(&outer, "north", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&outer, 7, inner_entry.data, inner_entry.len), HY_OK);
    assert_string_equal(apply_batch(s, &outer), ":7\r\n");
    assert_null(get(s, "k"));
    assert_int_equal(store_wan_applied(s, "east", 0), 0);
    wan_batch_free(&inner);
    wan_batch_free(&outer);
    hy_buf_free(&set);
    hy_buf_free(&inner_entry);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_definitions),
        cmocka_unit_test(test_batch_codec),
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_shipper),
        cmocka_unit_test(test_store_applies_once),
        cmocka_unit_test(test_tap),
        cmocka_unit_test(test_nested_batch_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
