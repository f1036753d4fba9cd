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
#include "common/crc.h"
#include "common/prng.h"
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
    assert_false(wan_link_decode(S("dr"), S("active-other h:1 x"), &back));
    /* Active-active with policy rules, first match first; a stored value spells the policy in
     * capitals (one encoding per definition) and a rule is POLICY=pattern. */
    l.mode = WAN_ACTIVE_ACTIVE;
    l.nrules = 2;
    strcpy(l.rules[0].pattern, "session:*");
    l.rules[0].policy = WAN_POLICY_PUT_IF_ABSENT;
    strcpy(l.rules[1].pattern, "a=b");
    l.rules[1].policy = WAN_POLICY_EXPIRATION_TIME;
    hy_buf_reset(&b);
    wan_link_encode(&l, &b);
    assert_int_equal(b.len, strlen("active-active h1:1,h2:2  PUT_IF_ABSENT=session:* "
                                   "EXPIRATION_TIME=a=b"));
    assert_memory_equal(b.data, "active-active h1:1,h2:2  PUT_IF_ABSENT=session:*", 48);
    assert_true(wan_link_decode(S("dr"), b.data, b.len, &back));
    assert_int_equal(back.mode, WAN_ACTIVE_ACTIVE);
    assert_int_equal(back.nrules, 2);
    assert_string_equal(back.rules[0].pattern, "session:*");
    assert_int_equal(back.rules[0].policy, WAN_POLICY_PUT_IF_ABSENT);
    assert_string_equal(back.rules[1].pattern, "a=b");
    assert_int_equal(back.rules[1].policy, WAN_POLICY_EXPIRATION_TIME);
    assert_false(wan_link_decode(S("dr"), S("active-active h:1 x put_if_absent=*"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-active h:1 x MOST_READ=*"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-active h:1 x DISCARD="), &back));
    assert_false(wan_link_decode(S("dr"), S("active-active h:1 x DISCARD=*  DISCARD=a"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive bad x"), &back));
    /* A key pattern (--keys) comes first, before the rules, and only there. */
    strcpy(l.keys, "user:*");
    hy_buf_reset(&b);
    wan_link_encode(&l, &b);
    assert_memory_equal(b.data, "active-active h1:1,h2:2  KEYS=user:* PUT_IF_ABSENT=", 51);
    assert_true(wan_link_decode(S("dr"), b.data, b.len, &back));
    assert_string_equal(back.keys, "user:*");
    assert_int_equal(back.nrules, 2);
    assert_true(wan_link_decode(S("dr"), S("active-passive h:1 x KEYS=a*"), &back));
    assert_string_equal(back.keys, "a*");
    assert_int_equal(back.nrules, 0);
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1 x KEYS="), &back));
    assert_false(wan_link_decode(S("dr"), S("active-active h:1 x DISCARD=* KEYS=a"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1 x KEYS=a KEYS=b"), &back));
    /* TLS (with the CA file its target is checked against, or the member's), after KEYS and
     * before the rules, once; a definition encodes back to its bytes. */
    l.tls = 1;
    strcpy(l.tls_ca, "/etc/halyard/dr-ca.crt");
    hy_buf_reset(&b);
    wan_link_encode(&l, &b);
    static const char with_tls[] =
        "active-active h1:1,h2:2  KEYS=user:* TLS=/etc/halyard/dr-ca.crt PUT_IF_ABSENT=";
    assert_int_equal(b.len, strlen(with_tls) + strlen("session:* EXPIRATION_TIME=a=b"));
    assert_memory_equal(b.data, with_tls, strlen(with_tls));
    assert_true(wan_link_decode(S("dr"), b.data, b.len, &back));
    assert_true(back.tls);
    assert_string_equal(back.tls_ca, "/etc/halyard/dr-ca.crt");
    assert_int_equal(back.nrules, 2);
    assert_true(wan_link_decode(S("dr"), S("active-passive h:1 x TLS"), &back));
    assert_true(back.tls);
    assert_string_equal(back.tls_ca, "");
    struct hy_buf again;
    hy_buf_init(&again);
    wan_link_encode(&back, &again);
    assert_int_equal(again.len, strlen("active-passive h:1 x TLS"));
    hy_buf_free(&again);
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1 x TLS="), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1 x TLS TLS"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1 x TLSX"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-passive h:1 x TLS KEYS=a"), &back));
    assert_false(wan_link_decode(S("dr"), S("active-active h:1 x DISCARD=* TLS"), &back));
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

/* Applies an entry of op with one argument; returns the reply text. */
static const char *apply_args(struct store *s, enum store_op op, uint32_t argc, struct store_arg *a)
{
    static char text[256];
    struct store_entry e = {.op = op, .expire_at_ms = -1, .argc = argc, .argv = a};
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

static const char *apply_one(struct store *s, enum store_op op, const uint8_t *arg, size_t len)
{
    struct store_arg a[1] = {{arg, len}};
    return apply_args(s, op, 1, a);
}

/* Applies a WAN_APPLY entry holding batch; returns the reply text. */
static const char *apply_batch(struct store *s, const struct wan_batch *b)
{
    return apply_one(s, STORE_OP_WAN_APPLY, b->buf.data, b->buf.len);
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

static const char *apply_fence(struct store *s, const char *epoch)
{
    return apply_one(s, STORE_OP_WAN_FENCE, (const uint8_t *)epoch, strlen(epoch));
}

/* A fence in place of one source (HALYARD WAN PROMOTE FROM from). */
static const char *apply_fence_from(struct store *s, const char *epoch, const char *from)
{
    struct store_arg a[2] = {{(const uint8_t *)epoch, strlen(epoch)},
                             {(const uint8_t *)from, strlen(from)}};
    return apply_args(s, STORE_OP_WAN_FENCE, 2, a);
}

/* A partition that applied its cluster's promotion (STORE_OP_WAN_FENCE) refuses the
 * active-passive batches after it, whatever their source (or, promoted FROM one source, only
 * that source's), and applies those before it; an active-active batch still applies; the
 * fence survives a snapshot, and once lifted (0, the cluster demoted) active-passive batches
 * apply again from where they were. */
static void test_promotion_fence(void **state)
{
    (void)state;
    struct store_config cfg = {.seed = 1, .maxmemory_samples = 5};
    struct store *s = store_create(&cfg, NULL);
    struct hy_buf e1, e2;
    hy_buf_init(&e1);
    hy_buf_init(&e2);
    encode_incr(&e1, "n");
    encode_set(&e2, "k", "from-east");
    struct wan_batch b1, b2, aa;
    wan_batch_init(&b1, "east", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&b1, 10, e1.data, e1.len), HY_OK);
    wan_batch_init(&b2, "east", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&b2, 11, e2.data, e2.len), HY_OK);
    assert_int_equal(store_wan_fence(s), 0);
    assert_string_equal(apply_batch(s, &b1), ":10\r\n"); /* taken before the promotion */
    assert_string_equal(apply_fence(s, "3"), "+OK\r\n");
    assert_int_equal(store_wan_fence(s), 3);
    const char *r = apply_batch(s, &b2);
    assert_non_null(strstr(r, "-ERR this partition applied its cluster's promotion (epoch 3)"));
    assert_null(get(s, "k"));
    assert_int_equal(store_wan_applied(s, "east", 0), 10);
    /* Active-active: no primary in that mode, its batches apply. */
    struct hy_buf ext;
    hy_buf_init(&ext);
    wan_batch_ext_encode(&ext, "dr", NULL, 0);
    wan_batch_init_ext(&aa, "north", 0, 1 << 20, 100, ext.data, ext.len);
    assert_int_equal(wan_batch_add(&aa, 4, e1.data, e1.len), HY_OK);
    assert_string_equal(apply_batch(s, &aa), ":4\r\n");
    /* Malformed epochs change nothing. */
    assert_non_null(strstr(apply_fence(s, "x"), "-ERR invalid fence epoch"));
    assert_non_null(strstr(apply_fence(s, "-1"), "-ERR invalid fence epoch"));
    assert_int_equal(store_wan_fence(s), 3);

    struct hy_buf snap;
    hy_buf_init(&snap);
    store_snapshot_encode(s, &snap);
    struct store *t = store_create(&cfg, NULL);
    assert_int_equal(store_snapshot_decode(t, snap.data, snap.len), HY_OK);
    assert_int_equal(store_digest(s), store_digest(t));
    assert_int_equal(store_wan_fence(t), 3);
    assert_non_null(strstr(apply_batch(t, &b2), "-ERR this partition applied"));
    /* Demoted: the fence goes, and the link's stream resumes after what it had applied. */
    assert_string_equal(apply_fence(t, "0"), "+OK\r\n");
    assert_int_equal(store_wan_fence(t), 0);
    assert_string_equal(apply_batch(t, &b2), ":11\r\n");
    assert_string_equal(get(t, "k"), "from-east");

    /* A promotion in place of east only (FROM east): east's active-passive batches are
     * refused, north's still apply; kept in a snapshot; a later promotion of every source
     * refuses north's too; lifted (0) both apply. */
    struct wan_batch n1, n2, e3;
    wan_batch_init(&n1, "north", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&n1, 5, e1.data, e1.len), HY_OK);
    wan_batch_init(&n2, "north", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&n2, 6, e1.data, e1.len), HY_OK);
    wan_batch_init(&e3, "east", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&e3, 12, e1.data, e1.len), HY_OK);
    assert_string_equal(apply_fence_from(t, "4", "east"), "+OK\r\n");
    assert_int_equal(store_wan_fence(t), 4);
    assert_non_null(strstr(apply_batch(t, &e3), "-ERR this partition applied"));
    assert_string_equal(apply_batch(t, &n1), ":5\r\n");
    hy_buf_reset(&snap);
    store_snapshot_encode(t, &snap);
    struct store *u = store_create(&cfg, NULL);
    assert_int_equal(store_snapshot_decode(u, snap.data, snap.len), HY_OK);
    assert_int_equal(store_digest(t), store_digest(u));
    assert_non_null(strstr(apply_batch(u, &e3), "-ERR this partition applied"));
    assert_non_null(strstr(apply_fence_from(u, "0", "east"), "-ERR invalid fence"));
    assert_non_null(strstr(apply_fence_from(u, "5", "has space"), "-ERR invalid fence"));
    assert_string_equal(apply_fence(u, "5"), "+OK\r\n");
    assert_non_null(strstr(apply_batch(u, &n2), "-ERR this partition applied"));
    assert_string_equal(apply_fence(u, "0"), "+OK\r\n");
    assert_string_equal(apply_batch(u, &n2), ":6\r\n");
    assert_string_equal(apply_batch(u, &e3), ":12\r\n");

    store_destroy(u);
    wan_batch_free(&n1);
    wan_batch_free(&n2);
    wan_batch_free(&e3);
    hy_buf_free(&snap);
    hy_buf_free(&ext);
    wan_batch_free(&aa);
    wan_batch_free(&b1);
    wan_batch_free(&b2);
    hy_buf_free(&e1);
    hy_buf_free(&e2);
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

/* ---- active-active -------------------------------------------------------------------------- */

static struct wan_version ver(int live, uint64_t hlc, uint32_t origin, int64_t expire_at)
{
    struct wan_version v = {.live = live, .hlc = hlc, .origin = origin, .expire_at = expire_at};
    return v;
}

/* The pure decision, every policy: writes against writes, deletions against writes, equal
 * HLCs (the origin decides), and each decision the same seen from either side (the incoming
 * version wins on one side exactly when it loses on the other, for the ordered policies). */
static void test_merge_decide(void **state)
{
    (void)state;
    struct wan_version old_a = ver(1, 100, 7, -1), new_b = ver(1, 200, 3, -1);
    struct wan_version tie_lo = ver(1, 150, 3, -1), tie_hi = ver(1, 150, 9, -1);
    struct wan_version del_new = ver(0, 300, 3, -1), del_old = ver(0, 50, 3, -1);
    struct wan_version unknown = ver(1, 0, 0, -1);

    /* LATEST_UPDATE: the higher HLC, then the higher origin id; a deletion is a version. */
    enum wan_policy p = WAN_POLICY_LATEST_UPDATE;
    assert_true(wan_merge_decide(p, &old_a, &new_b));
    assert_false(wan_merge_decide(p, &new_b, &old_a));
    assert_true(wan_merge_decide(p, &tie_lo, &tie_hi));
    assert_false(wan_merge_decide(p, &tie_hi, &tie_lo));
    assert_false(wan_merge_decide(p, &tie_hi, &tie_hi)); /* the same version: nothing to do */
    assert_true(wan_merge_decide(p, &new_b, &del_new));
    assert_false(wan_merge_decide(p, &del_new, &new_b));
    assert_false(wan_merge_decide(p, &new_b, &del_old));
    assert_true(wan_merge_decide(p, &del_old, &new_b));
    assert_true(wan_merge_decide(p, &unknown, &old_a)); /* written before versions were kept */

    /* PUT_IF_ABSENT, same hits: a value over a deletion (put where the key is absent), then
     * the value written first (a later put found the key there). */
    p = WAN_POLICY_PUT_IF_ABSENT;
    assert_false(wan_merge_decide(p, &old_a, &new_b));
    assert_true(wan_merge_decide(p, &new_b, &old_a));
    assert_true(wan_merge_decide(p, &del_new, &old_a));
    assert_false(wan_merge_decide(p, &old_a, &del_new));
    assert_true(wan_merge_decide(p, &del_old, &new_b)); /* even a deletion written before */
    assert_true(wan_merge_decide(p, &del_new, &del_old));
    assert_true(wan_merge_decide(p, &tie_lo, &tie_hi)); /* the same HLC: the origin id */

    /* DISCARD, same hits: the version written first stays, the later one is discarded, a
     * deletion like a value. */
    p = WAN_POLICY_DISCARD;
    assert_false(wan_merge_decide(p, &old_a, &new_b));
    assert_true(wan_merge_decide(p, &new_b, &old_a));
    assert_true(wan_merge_decide(p, &new_b, &del_old));
    assert_false(wan_merge_decide(p, &del_old, &new_b));
    assert_true(wan_merge_decide(p, &tie_lo, &tie_hi));
    assert_false(wan_merge_decide(p, &tie_hi, &tie_lo));
    assert_false(wan_merge_decide(p, &tie_hi, &tie_hi));

    /* PASS_THROUGH, same hits: the later one passes (HIGHER_HITS's rule). */
    p = WAN_POLICY_PASS_THROUGH;
    assert_true(wan_merge_decide(p, &old_a, &new_b));
    assert_false(wan_merge_decide(p, &new_b, &old_a));
    assert_true(wan_merge_decide(p, &new_b, &del_new));

    /* Every policy but LATEST_UPDATE ranks by hits first: a version with more writes behind it
     * (written after the other was seen) wins whatever the rule between concurrent ones. */
    struct wan_version later_write = old_a;
    later_write.hits = 1;
    enum wan_policy by_hits[] = {WAN_POLICY_PUT_IF_ABSENT, WAN_POLICY_DISCARD,
                                 WAN_POLICY_PASS_THROUGH, WAN_POLICY_EXPIRATION_TIME};
    for (size_t k = 0; k < sizeof(by_hits) / sizeof(by_hits[0]); k++) {
        assert_true(wan_merge_decide(by_hits[k], &new_b, &later_write));
        assert_false(wan_merge_decide(by_hits[k], &later_write, &new_b));
        assert_true(wan_merge_decide(by_hits[k], &del_new, &later_write));
    }
    assert_false(wan_merge_decide(WAN_POLICY_LATEST_UPDATE, &new_b, &later_write));

    /* EXPIRATION_TIME: the later expiry (none is latest; a deletion earliest), then
     * LATEST_UPDATE when they expire alike. */
    p = WAN_POLICY_EXPIRATION_TIME;
    struct wan_version exp_late = ver(1, 120, 7, 9000), exp_soon = ver(1, 210, 3, 5000);
    assert_true(wan_merge_decide(p, &exp_soon, &exp_late));
    assert_false(wan_merge_decide(p, &exp_late, &exp_soon));
    assert_true(wan_merge_decide(p, &exp_late, &old_a)); /* no expiry outlasts any */
    assert_false(wan_merge_decide(p, &exp_soon, &del_new));
    struct wan_version same_exp_lo = ver(1, 150, 3, 5000), same_exp_hi = ver(1, 150, 9, 5000);
    assert_true(wan_merge_decide(p, &same_exp_lo, &same_exp_hi));
    assert_false(wan_merge_decide(p, &same_exp_hi, &same_exp_lo));

    /* HIGHER_HITS: more writes behind a version win, whatever the clocks or a deletion; the
     * same count falls back to LATEST_UPDATE. */
    p = WAN_POLICY_HIGHER_HITS;
    struct wan_version hits_old = ver(1, 110, 7, -1), hits_del = ver(0, 90, 3, -1);
    hits_old.hits = 5;
    hits_del.hits = 6;
    new_b.hits = 2;
    assert_false(wan_merge_decide(p, &hits_old, &new_b)); /* newer, fewer hits: stays */
    assert_true(wan_merge_decide(p, &new_b, &hits_old));
    assert_true(wan_merge_decide(p, &hits_old, &hits_del)); /* a deletion with more hits wins */
    assert_false(wan_merge_decide(p, &hits_del, &hits_old));
    tie_lo.hits = tie_hi.hits = 4;
    assert_true(wan_merge_decide(p, &tie_lo, &tie_hi)); /* the same hits and HLC: origin id */
    assert_false(wan_merge_decide(p, &tie_hi, &tie_lo));
    old_a.hits = 2;
    assert_true(wan_merge_decide(p, &old_a, &new_b)); /* the same hits: the later HLC */
    assert_false(wan_merge_decide(p, &new_b, &old_a));
    assert_true(wan_merge_decide(p, &unknown, &old_a)); /* version 0 has 0 hits */

    /* Every policy decides alike from both sides: exactly one of the two wins. */
    struct wan_version vs[] = {old_a,   new_b,    tie_lo,   tie_hi,   del_new,
                               del_old, exp_late, exp_soon, hits_old, hits_del};
    size_t nv = sizeof(vs) / sizeof(vs[0]);
    for (size_t k = 0; k < WAN_POLICY_COUNT; k++) {
        for (size_t i = 0; i < nv; i++) {
            for (size_t j = 0; j < nv; j++) {
                if (i != j) {
                    assert_int_not_equal(wan_merge_decide((enum wan_policy)k, &vs[i], &vs[j]),
                                         wan_merge_decide((enum wan_policy)k, &vs[j], &vs[i]));
                }
            }
        }
    }

    /* Patterns: the first rule that matches, else LATEST_UPDATE. */
    struct wan_policy_rule rules[2] = {{"s:*", WAN_POLICY_DISCARD}, {"*", WAN_POLICY_PASS_THROUGH}};
    assert_int_equal(wan_policy_for(rules, 2, S("s:1")), WAN_POLICY_DISCARD);
    assert_int_equal(wan_policy_for(rules, 2, S("x")), WAN_POLICY_PASS_THROUGH);
    assert_int_equal(wan_policy_for(rules, 0, S("x")), WAN_POLICY_LATEST_UPDATE);
    enum wan_policy parsed;
    assert_true(wan_policy_parse(S("latest_update"), &parsed));
    assert_int_equal(parsed, WAN_POLICY_LATEST_UPDATE);
    assert_true(wan_policy_parse(S("higher_hits"), &parsed));
    assert_int_equal(parsed, WAN_POLICY_HIGHER_HITS);
    assert_false(wan_policy_parse(S("MOST_READ"), &parsed));
    assert_int_equal(wan_hlc_next(5, 0), 6);
    assert_int_equal(wan_hlc_next(5, 1), 65536);
    assert_int_equal(wan_hlc_next((7ull << 16) + 3, 7), (7ull << 16) + 4);
}

/* One cluster's partition in these tests: a store keeping versions, whose tap collects the
 * states it would ship into an active-active batch. */
struct side {
    struct store *s;
    const char *name;
    struct wan_batch out;
    uint64_t seq;
};

static void side_tap(void *ctx, const struct store_entry *e, const uint8_t *entry, size_t len)
{
    struct side *d = ctx;
    if (e->op == STORE_OP_WAN_PUT) {
        assert_int_equal(wan_batch_add(&d->out, ++d->seq, entry, len), HY_OK);
    }
}

static void side_batch_reset(struct side *d, const struct wan_policy_rule *rules, size_t n)
{
    struct hy_buf ext;
    hy_buf_init(&ext);
    wan_batch_ext_encode(&ext, "dr", rules, n);
    wan_batch_init_ext(&d->out, d->name, 0, 1 << 20, 1000, ext.data, ext.len);
    hy_buf_free(&ext);
}

static void side_init(struct side *d, const char *name, uint64_t seed)
{
    struct store_config cfg = {.seed = seed, .maxmemory_samples = 5};
    memset(d, 0, sizeof(*d));
    d->s = store_create(&cfg, NULL);
    d->name = name;
    store_set_tap(d->s, side_tap, d);
    struct store_arg a[1] = {{(const uint8_t *)name, strlen(name)}};
    struct store_entry e = {.op = STORE_OP_WAN_HLC, .expire_at_ms = -1, .argc = 1, .argv = a};
    struct hy_buf b;
    hy_buf_init(&b);
    store_entry_encode(&e, &b);
    assert_int_equal(store_apply(d->s, b.data, b.len, NULL), HY_OK);
    hy_buf_free(&b);
    assert_true(store_wan_versions_on(d->s));
    side_batch_reset(d, NULL, 0);
}

static void side_free(struct side *d)
{
    wan_batch_free(&d->out);
    store_destroy(d->s);
}

/* A local write at time_ms (op with string arguments, expire_at_ms -1). */
static void side_write(struct side *d, uint64_t time_ms, enum store_op op, int argc, ...)
{
    struct store_arg a[4];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        const char *x = va_arg(ap, const char *);
        a[i].ptr = (const uint8_t *)x;
        a[i].len = strlen(x);
    }
    va_end(ap);
    struct store_entry e = {
        .op = op, .time_ms = time_ms, .expire_at_ms = -1, .argc = (uint32_t)argc, .argv = a};
    struct hy_buf b;
    hy_buf_init(&b);
    store_entry_encode(&e, &b);
    assert_int_equal(store_apply(d->s, b.data, b.len, NULL), HY_OK);
    hy_buf_free(&b);
}

/* A new store decoded from s's snapshot, whose bytes stay in snap (the caller frees both). */
static struct store *snapshot_copy(struct store *s, struct hy_buf *snap)
{
    hy_buf_init(snap);
    store_snapshot_encode(s, snap);
    struct store_config cfg = {.seed = 99, .maxmemory_samples = 5};
    struct store *copy = store_create(&cfg, NULL);
    assert_int_equal(store_snapshot_decode(copy, snap->data, snap->len), HY_OK);
    return copy;
}

/* Two sides (seeds seed and seed + 1) whose batches carry rules. */
static void sides_with_rules(struct side *east, struct side *west, uint64_t seed,
                             const struct wan_policy_rule *rules, size_t n)
{
    side_init(east, "east", seed);
    side_init(west, "west", seed + 1);
    wan_batch_free(&east->out);
    wan_batch_free(&west->out);
    side_batch_reset(east, rules, n);
    side_batch_reset(west, rules, n);
}

/* What from collected reaches to (one direction of a link, as it would ship it, with rules);
 * from starts collecting again. */
static void deliver(struct side *from, struct side *to, const struct wan_policy_rule *rules,
                    size_t n)
{
    struct wan_batch b = from->out;
    side_batch_reset(from, rules, n);
    /* The batch is rebuilt with the rules: the sender's link carries its policies. */
    struct hy_buf ext;
    hy_buf_init(&ext);
    wan_batch_ext_encode(&ext, "dr", rules, n);
    struct wan_batch re;
    wan_batch_init_ext(&re, from->name, 0, 1 << 20, 1000, ext.data, ext.len);
    struct wan_batch_reader r;
    uint64_t idx;
    const uint8_t *entry;
    size_t len;
    assert_int_equal(wan_batch_open(&r, b.buf.data, b.buf.len), HY_OK);
    while (wan_batch_next(&r, &idx, &entry, &len) == HY_OK) {
        assert_int_equal(wan_batch_add(&re, idx, entry, len), HY_OK);
    }
    if (re.count > 0) {
        apply_batch(to->s, &re);
    }
    wan_batch_free(&b);
    wan_batch_free(&re);
    hy_buf_free(&ext);
}

/* Both sides apply what the other collected (as their links would), with rules, then start
 * collecting again. A batch applied is not collected again (the tap is off inside it), so the
 * order of the two directions does not matter. */
static void exchange(struct side *x, struct side *y, const struct wan_policy_rule *rules, size_t n)
{
    deliver(x, y, rules, n);
    deliver(y, x, rules, n);
}

/* The keyspaces of the two sides, compared by their snapshots' key records: the same content
 * (keys, values, expiries) gives the same digest once the sections outside keys are alike,
 * so each side's keys are rebuilt into a fresh store first. */
static void assert_same_keys(struct side *x, struct side *y, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct store_obj *a = store_peek(x->s, S(keys[i]), 0);
        const struct store_obj *b = store_peek(y->s, S(keys[i]), 0);
        assert_true((a == NULL) == (b == NULL));
        if (a != NULL) {
            struct hy_buf da, db;
            hy_buf_init(&da);
            hy_buf_init(&db);
            store_dump(a, &da);
            store_dump(b, &db);
            assert_int_equal(da.len, db.len);
            assert_memory_equal(da.data, db.data, da.len);
            assert_int_equal(store_obj_expire_at(a), store_obj_expire_at(b));
            hy_buf_free(&da);
            hy_buf_free(&db);
        }
    }
}

/* Both sides write the same key at the same millisecond from the same clock: the same HLC.
 * The origin id breaks the tie, alike on both sides, so they converge; a tie-break that kept
 * the local version (or took the incoming one) on both sides would leave them apart. */
static void test_active_active_tie_converges(void **state)
{
    (void)state;
    struct side east, west;
    side_init(&east, "east", 11);
    side_init(&west, "west", 12);
    side_write(&east, 1000, STORE_OP_SET, 2, "k", "from-east");
    side_write(&west, 1000, STORE_OP_SET, 2, "k", "from-west");
    struct wan_version ve, vw;
    assert_true(store_wan_version(east.s, S("k"), &ve));
    assert_true(store_wan_version(west.s, S("k"), &vw));
    assert_int_equal(ve.hlc, vw.hlc);
    assert_int_not_equal(ve.origin, vw.origin);
    exchange(&east, &west, NULL, 0);
    const char *winner = ve.origin > vw.origin ? "from-east" : "from-west";
    assert_string_equal(get(east.s, "k"), winner);
    assert_string_equal(get(west.s, "k"), winner);
    /* One conflict decided on each side, under LATEST_UPDATE: applied on the loser's side,
     * kept on the winner's. */
    const struct wan_conflict_count *c;
    assert_int_equal(store_wan_conflict_counts(east.s, &c), 1);
    assert_string_equal(c[0].link, "dr");
    assert_int_equal(c[0].policy, WAN_POLICY_LATEST_UPDATE);
    assert_int_equal(c[0].applied, ve.origin < vw.origin);
    assert_int_equal(store_wan_conflict_counts(west.s, &c), 1);
    assert_int_equal(c[0].applied, vw.origin < ve.origin);
    struct wan_conflict last[4];
    assert_int_equal(store_wan_conflicts_last(east.s, "dr", last, 4), 1);
    assert_int_equal(last[0].klen, 1);
    assert_string_equal(last[0].origin, "west");
    assert_int_equal(store_wan_conflicts_last(east.s, "other", last, 4), 0);
    side_free(&east);
    side_free(&west);
}

/* Concurrent writes and deletions on both sides, several ops (states are shipped, not ops, so
 * that counters and collections converge too), then the exchange: the same content, and the
 * receiving clock moved past what it received. */
static void test_active_active_writes_and_deletes(void **state)
{
    (void)state;
    struct side east, west;
    side_init(&east, "east", 21);
    side_init(&west, "west", 22);
    /* Before the cut: both know "shared" and "gone" from east. */
    side_write(&east, 1000, STORE_OP_SET, 2, "shared", "v0");
    side_write(&east, 1000, STORE_OP_SET, 2, "gone", "v0");
    exchange(&east, &west, NULL, 0);
    /* The cut: a deletion newer than the other side's write wins; an older one loses. */
    side_write(&east, 2000, STORE_OP_DEL, 1, "gone");           /* newer than west's write */
    side_write(&west, 1500, STORE_OP_SET, 2, "gone", "west");   /* loses to the deletion */
    side_write(&west, 2500, STORE_OP_DEL, 1, "shared");         /* older than east's write */
    side_write(&east, 3000, STORE_OP_SET, 2, "shared", "east"); /* wins over the deletion */
    side_write(&east, 2000, STORE_OP_APPEND, 2, "n", "e");
    side_write(&west, 2100, STORE_OP_APPEND, 2, "n", "w");
    side_write(&west, 2200, STORE_OP_APPEND, 2, "n", "w");
    side_write(&east, 2000, STORE_OP_HSET, 3, "h", "f", "1");
    side_write(&west, 2300, STORE_OP_HSET, 3, "h", "g", "2");
    side_write(&east, 1000, STORE_OP_SET, 2, "only-east", "e");
    side_write(&west, 1000, STORE_OP_SET, 2, "only-west", "w");
    uint64_t east_clock = store_wan_clock(east.s);
    exchange(&east, &west, NULL, 0);
    static const char *const keys[] = {"shared", "gone", "n", "h", "only-east", "only-west"};
    assert_same_keys(&east, &west, keys, 6);
    assert_null(get(east.s, "gone"));
    assert_string_equal(get(west.s, "shared"), "east");
    /* East's clock was at 3000 ms already (its write of "shared"): its append at 2000 ms drew a
     * later HLC than west's at 2200 ms, and its state wins whole (the ops are not replayed). */
    assert_string_equal(get(west.s, "n"), "e");
    assert_string_equal(get(east.s, "only-west"), "w");
    /* West received east's clock: its next write is newer than anything east wrote. */
    assert_true(store_wan_clock(west.s) >= east_clock);
    side_write(&west, 10, STORE_OP_SET, 2, "shared", "late"); /* an old physical clock */
    struct wan_version v;
    assert_true(store_wan_version(west.s, S("shared"), &v));
    assert_true(v.hlc > east_clock);
    exchange(&east, &west, NULL, 0);
    assert_string_equal(get(east.s, "shared"), "late");
    side_free(&east);
    side_free(&west);
}

/* Policies by pattern, the same on both sides: DISCARD keeps the version written first on
 * both sides (the later, concurrent one is discarded), PUT_IF_ABSENT fills a missing key and
 * keeps the first of two concurrent puts, and the versions survive a snapshot of the receiving
 * store. */
static void test_active_active_policies(void **state)
{
    (void)state;
    struct side east, west;
    struct wan_policy_rule rules[2] = {{"keep:*", WAN_POLICY_DISCARD},
                                       {"pia:*", WAN_POLICY_PUT_IF_ABSENT}};
    sides_with_rules(&east, &west, 31, rules, 2);
    side_write(&east, 1000, STORE_OP_SET, 2, "keep:1", "east");
    side_write(&west, 2000, STORE_OP_SET, 2, "keep:1", "west");
    side_write(&east, 3000, STORE_OP_SET, 2, "pia:1", "east");
    side_write(&west, 1000, STORE_OP_SET, 2, "pia:2", "west");
    side_write(&west, 2500, STORE_OP_SET, 2, "pia:3", "west");
    side_write(&east, 2600, STORE_OP_SET, 2, "pia:3", "east");
    exchange(&east, &west, rules, 2);
    assert_string_equal(get(east.s, "keep:1"), "east"); /* west's later write discarded */
    assert_string_equal(get(west.s, "keep:1"), "east");
    assert_string_equal(get(west.s, "pia:1"), "east"); /* absent there: put */
    assert_string_equal(get(east.s, "pia:2"), "west");
    assert_string_equal(get(east.s, "pia:3"), "west"); /* put first */
    assert_string_equal(get(west.s, "pia:3"), "west");
    /* A later write of the same origin is not a conflict: it applies under any policy. */
    side_write(&east, 4000, STORE_OP_SET, 2, "pia:1", "east2");
    exchange(&east, &west, rules, 2);
    assert_string_equal(get(west.s, "pia:1"), "east2");
    /* Nor is a write made after the other side's was seen (one hit more): west overwrites
     * the keep:1 it took from east, and east takes it under DISCARD. */
    side_write(&west, 5000, STORE_OP_SET, 2, "keep:1", "west2");
    exchange(&east, &west, rules, 2);
    assert_string_equal(get(east.s, "keep:1"), "west2");
    /* A deletion concurrent with a put: the value stays on both sides under PUT_IF_ABSENT. */
    side_write(&east, 6000, STORE_OP_DEL, 1, "pia:2");
    side_write(&west, 6100, STORE_OP_SET, 2, "pia:2", "west2");
    exchange(&east, &west, rules, 2);
    assert_string_equal(get(east.s, "pia:2"), "west2");
    assert_string_equal(get(west.s, "pia:2"), "west2");
    const struct wan_conflict_count *c;
    size_t n = store_wan_conflict_counts(west.s, &c);
    /* keep:1 (taken) and pia:3 (kept); pia:1 was absent, then east's own next write. */
    assert_int_equal(n, 2);
    assert_int_equal(c[0].policy, WAN_POLICY_DISCARD);
    assert_int_equal(c[0].applied, 1);
    assert_int_equal(c[1].policy, WAN_POLICY_PUT_IF_ABSENT);
    assert_int_equal(c[1].applied, 0);

    /* The versions travel in snapshots (version 9) and come back the same. */
    struct hy_buf snap;
    struct store *copy = snapshot_copy(west.s, &snap);
    assert_true(store_wan_versions_on(copy));
    assert_int_equal(store_wan_clock(copy), store_wan_clock(west.s));
    struct wan_version a, b;
    assert_true(store_wan_version(copy, S("pia:1"), &a));
    assert_true(store_wan_version(west.s, S("pia:1"), &b));
    assert_int_equal(a.hlc, b.hlc);
    assert_int_equal(a.origin, b.origin);
    assert_int_equal(a.hits, b.hits);
    assert_int_equal(a.hits, 2); /* east's two writes of pia:1 */
    assert_int_equal(store_digest(copy), store_digest(west.s));
    size_t bytes;
    assert_int_equal(store_wan_versions(copy, &bytes), 4);
    assert_true(bytes > 0);
    /* Every truncation of the snapshot is refused. */
    for (size_t cut = 0; cut < snap.len; cut += 7) {
        assert_int_not_equal(store_snapshot_decode(copy, snap.data, cut), HY_OK);
    }
    store_destroy(copy);
    hy_buf_free(&snap);
    side_free(&east);
    side_free(&west);
}

/* A local SET of key to value at time_ms, expiring at expire_at (-1: never). */
static void side_set_ex(struct side *d, uint64_t time_ms, const char *key, const char *value,
                        int64_t expire_at)
{
    struct store_arg a[2] = {{(const uint8_t *)key, strlen(key)},
                             {(const uint8_t *)value, strlen(value)}};
    struct store_entry e = {
        .op = STORE_OP_SET, .time_ms = time_ms, .expire_at_ms = expire_at, .argc = 2, .argv = a};
    struct hy_buf b;
    hy_buf_init(&b);
    store_entry_encode(&e, &b);
    assert_int_equal(store_apply(d->s, b.data, b.len, NULL), HY_OK);
    hy_buf_free(&b);
}

/* Two sides under one policy for every key, written at random (SETs with and without an
 * expiry, APPENDs, DELs of 4 keys, from clocks that drift apart and sometimes tie) while
 * their links deliver at random: both ways, one way, or not at all (a cut). Once both have
 * delivered everything, both hold the same content. */
static void converge_under(enum wan_policy p, uint64_t seed)
{
    struct wan_policy_rule rule = {.pattern = "*", .policy = p};
    struct side east, west;
    sides_with_rules(&east, &west, seed, &rule, 1);
    struct hy_prng r;
    hy_prng_seed(&r, seed);
    static const char *const keys[] = {"a", "b", "c", "d"};
    uint64_t now[2] = {1000, 1000};
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < 2; i++) {
            struct side *d = i == 0 ? &east : &west;
            for (uint64_t w = hy_prng_below(&r, 4); w > 0; w--) {
                now[i] += hy_prng_below(&r, 3);
                const char *k = keys[hy_prng_below(&r, 4)];
                char v[32];
                snprintf(v, sizeof(v), "%s-%d-%u", d->name, round, (unsigned)w);
                switch (hy_prng_below(&r, 4)) {
                case 0: side_set_ex(d, now[i], k, v, -1); break;
                case 1:
                    side_set_ex(d, now[i], k, v, 1000000000 + 1000 * (int64_t)hy_prng_below(&r, 3));
                    break;
                case 2: side_write(d, now[i], STORE_OP_APPEND, 2, k, "+"); break;
                default: side_write(d, now[i], STORE_OP_DEL, 1, k); break;
                }
            }
        }
        switch (hy_prng_below(&r, 4)) {
        case 0: exchange(&east, &west, &rule, 1); break;
        case 1: deliver(&east, &west, &rule, 1); break;
        case 2: deliver(&west, &east, &rule, 1); break;
        default: break; /* cut */
        }
    }
    exchange(&east, &west, &rule, 1);
    assert_same_keys(&east, &west, keys, 4);
    side_free(&east);
    side_free(&west);
}

/* Every policy converges (docs/wan.md "Why every policy converges"): random concurrent writes
 * on both sides, links cut and healed at random, 40 seeds a policy. With DISCARD keeping the
 * local version, PUT_IF_ABSENT keeping any live one or PASS_THROUGH taking the incoming one
 * (their rules before this slice), the two sides end apart. */
static void test_every_policy_converges(void **state)
{
    (void)state;
    for (unsigned p = 0; p < WAN_POLICY_COUNT; p++) {
        for (uint64_t seed = 1; seed <= 40; seed++) {
            converge_under((enum wan_policy)p, seed * 100 + p);
        }
    }
}

/* HIGHER_HITS (docs/wan.md): a key's hits are the writes in its version's history, counted
 * alike on both sides (a write adds one to the version it replaces; a version taken from the
 * link keeps its count). East writes k three times, west once but later: LATEST_UPDATE would
 * take west's, HIGHER_HITS keeps east's on both sides; then west's next write (hits 4, as it
 * counts from east's 3) wins on both. Hits survive a snapshot, and a version 10 snapshot
 * (no hits) still decodes, every version at 0 hits. */
static void test_active_active_higher_hits(void **state)
{
    (void)state;
    struct side east, west;
    struct wan_policy_rule rules[1] = {{"*", WAN_POLICY_HIGHER_HITS}};
    sides_with_rules(&east, &west, 41, rules, 1);
    side_write(&east, 1000, STORE_OP_SET, 2, "k", "e1");
    side_write(&east, 1001, STORE_OP_SET, 2, "k", "e2");
    side_write(&east, 1002, STORE_OP_SET, 2, "k", "e3");
    side_write(&west, 5000, STORE_OP_SET, 2, "k", "w1");
    /* A deletion counts as a write: two on west (3 with the SET) beat east's one. */
    side_write(&east, 1000, STORE_OP_SET, 2, "d", "e1");
    side_write(&west, 900, STORE_OP_SET, 2, "d", "w1");
    side_write(&west, 901, STORE_OP_DEL, 1, "d");
    side_write(&west, 902, STORE_OP_SET, 2, "d", "w2");
    struct wan_version v;
    assert_true(store_wan_version(east.s, S("k"), &v));
    assert_int_equal(v.hits, 3);
    assert_true(store_wan_version(west.s, S("d"), &v));
    assert_int_equal(v.hits, 3);
    exchange(&east, &west, rules, 1);
    static const char *const keys[] = {"k", "d"};
    assert_same_keys(&east, &west, keys, 2);
    assert_string_equal(get(west.s, "k"), "e3");
    assert_string_equal(get(east.s, "d"), "w2");
    assert_true(store_wan_version(west.s, S("k"), &v));
    assert_int_equal(v.hits, 3); /* taken with east's version */
    const struct wan_conflict_count *c;
    assert_int_equal(store_wan_conflict_counts(west.s, &c), 2);
    assert_int_equal(c[0].policy, WAN_POLICY_HIGHER_HITS);
    struct wan_conflict last[4];
    /* East's states of k arrive one by one, newest last: e1 (1 hit) ties with w1 and loses
     * to its later HLC, e2 (2 hits) wins, e3 is then east's next write (no conflict); d: east's
     * 1 hit against west's 3, kept. */
    assert_int_equal(store_wan_conflicts_last(west.s, "dr", last, 4), 3);
    assert_int_equal(last[0].applied, 0);
    assert_int_equal(last[0].in.hits, 1);
    assert_int_equal(last[0].local.hits, 3);
    assert_int_equal(last[1].in.hits, 2);
    assert_int_equal(last[1].local.hits, 1);
    assert_int_equal(last[1].applied, 1);
    assert_int_equal(last[2].in.hits, 1);
    assert_int_equal(last[2].applied, 0);

    side_write(&west, 6000, STORE_OP_SET, 2, "k", "w2");
    assert_true(store_wan_version(west.s, S("k"), &v));
    assert_int_equal(v.hits, 4);
    exchange(&east, &west, rules, 1);
    assert_string_equal(get(east.s, "k"), "w2");
    assert_true(store_wan_version(east.s, S("k"), &v));
    assert_int_equal(v.hits, 4);

    /* The hits travel in snapshots (version 11). */
    struct hy_buf snap;
    struct store *copy = snapshot_copy(east.s, &snap);
    struct store_config cfg = {.seed = 99, .maxmemory_samples = 5};
    assert_true(store_wan_version(copy, S("k"), &v));
    assert_int_equal(v.hits, 4);
    assert_int_equal(hy_load_u32le(snap.data + 4), 11);

    /* A version 10 snapshot: the same bytes without the hits. A store of one version (k,
     * written twice: 2 hits, one varint byte before its dead byte, the owner's section's
     * length 0 and the CRC). */
    struct side solo;
    side_init(&solo, "solo", 43);
    side_write(&solo, 1000, STORE_OP_SET, 2, "k", "s1");
    side_write(&solo, 1001, STORE_OP_SET, 2, "k", "s2");
    hy_buf_reset(&snap);
    store_snapshot_encode(solo.s, &snap);
    size_t at = snap.len - 4 - 4 - 1 - 1;
    assert_int_equal(snap.data[at], 2);
    memmove(snap.data + at, snap.data + at + 1, snap.len - at - 1);
    snap.len--;
    hy_store_u32le(snap.data + 4, 10);
    hy_store_u32le(snap.data + snap.len - 4, hy_crc32c(0, snap.data, snap.len - 4));
    store_destroy(copy);
    copy = store_create(&cfg, NULL);
    assert_int_equal(store_snapshot_decode(copy, snap.data, snap.len), HY_OK);
    assert_true(store_wan_version(copy, S("k"), &v));
    assert_int_equal(v.hits, 0);
    assert_int_equal(v.hlc, store_wan_clock(solo.s));
    assert_string_equal(get(copy, "k"), "s2");
    /* Read as version 11 (the hits byte missing), the same bytes are refused. */
    hy_store_u32le(snap.data + 4, 11);
    hy_store_u32le(snap.data + snap.len - 4, hy_crc32c(0, snap.data, snap.len - 4));
    assert_int_not_equal(store_snapshot_decode(copy, snap.data, snap.len), HY_OK);
    side_free(&solo);
    store_destroy(copy);
    hy_buf_free(&snap);
    side_free(&east);
    side_free(&west);
}

/* HIGHER_HITS counts reads (STORE_OP_WAN_HITS, proposed by the partition's leader with the
 * reads it served): east writes k once and reads it 5 times, west writes it twice; with the
 * reads east's value wins on both sides (1 + 5 hits against 2), without them west's would. The
 * reads' entry makes a new version and ships the key's state; a key absent and a bad count
 * change nothing, nor does the entry in a store keeping no versions. */
static void test_higher_hits_counts_reads(void **state)
{
    (void)state;
    struct side east, west;
    struct wan_policy_rule rules[1] = {{"*", WAN_POLICY_HIGHER_HITS}};
    sides_with_rules(&east, &west, 47, rules, 1);
    side_write(&east, 1000, STORE_OP_SET, 2, "k", "e1");
    side_write(&west, 2000, STORE_OP_SET, 2, "k", "w1");
    side_write(&west, 2001, STORE_OP_SET, 2, "k", "w2");
    size_t shipped = east.seq;
    side_write(&east, 1500, STORE_OP_WAN_HITS, 4, "k", "5", "absent", "3");
    assert_int_equal(east.seq, shipped + 1); /* k's state, not the absent key's */
    struct wan_version v;
    assert_true(store_wan_version(east.s, S("k"), &v));
    assert_int_equal(v.hits, 6);
    assert_false(store_wan_version(east.s, S("absent"), &v));
    exchange(&east, &west, rules, 1);
    static const char *const keys[] = {"k"};
    assert_same_keys(&east, &west, keys, 1);
    assert_string_equal(get(west.s, "k"), "e1");
    assert_true(store_wan_version(west.s, S("k"), &v));
    assert_int_equal(v.hits, 6);
    /* Refused whole: a count of 0, one that is not a number. */
    struct store_arg bad[3] = {{S("k")}, {S("0")}, {S("x")}};
    assert_string_equal(apply_args(east.s, STORE_OP_WAN_HITS, 2, bad),
                        "-ERR invalid read count\r\n");
    bad[1] = (struct store_arg){S("z")};
    assert_string_equal(apply_args(east.s, STORE_OP_WAN_HITS, 2, bad),
                        "-ERR invalid read count\r\n");
    assert_true(store_wan_version(east.s, S("k"), &v));
    assert_int_equal(v.hits, 6);
    side_free(&east);
    side_free(&west);

    /* A store keeping no versions: nothing happens. */
    struct store_config cfg = {.seed = 5, .maxmemory_samples = 5};
    struct store *plain = store_create(&cfg, NULL);
    struct store_arg set[2] = {{S("k")}, {S("v")}};
    apply_args(plain, STORE_OP_SET, 2, set);
    struct store_arg hits[2] = {{S("k")}, {S("4")}};
    assert_string_equal(apply_args(plain, STORE_OP_WAN_HITS, 2, hits), "+OK\r\n");
    assert_false(store_wan_version(plain, S("k"), &v));
    store_destroy(plain);
}

/* Every key a write names is shipped, beyond 64 too (DEL of 100 keys: 100 states); SORT ... STORE
 * ships its destination only (its other arguments are options, not keys). */
static void test_states_of_every_key(void **state)
{
    (void)state;
    struct side east;
    side_init(&east, "east", 51);
    char names[100][16];
    struct store_arg a[100];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "d%d", i);
        a[i].ptr = (const uint8_t *)names[i];
        a[i].len = strlen(names[i]);
    }
    struct store_entry e = {
        .op = STORE_OP_DEL, .time_ms = 5, .expire_at_ms = -1, .argc = 100, .argv = a};
    struct hy_buf b;
    hy_buf_init(&b);
    store_entry_encode(&e, &b);
    assert_int_equal(store_apply(east.s, b.data, b.len, NULL), HY_OK);
    assert_int_equal(east.out.count, 100);
    struct wan_version v;
    assert_true(store_wan_version(east.s, S("d99"), &v));
    assert_false(v.live);
    side_write(&east, 6, STORE_OP_PUSH, 2, "l", "x");
    uint32_t before = east.out.count;
    side_write(&east, 7, STORE_OP_SORT, 4, "l", "ALPHA", "STORE", "dst");
    assert_int_equal(east.out.count, before + 1);
    assert_true(store_wan_version(east.s, S("dst"), &v));
    assert_true(v.live);
    assert_false(store_wan_version(east.s, S("ALPHA"), &v));
    hy_buf_free(&b);
    side_free(&east);
}

/* An active-passive batch from a source keeping versions applies every state (the source is
 * the only writer) and counts no conflict; a WAN_PUT outside a batch is refused. */
static void test_passive_states_apply(void **state)
{
    (void)state;
    struct side east;
    side_init(&east, "east", 41);
    wan_batch_free(&east.out);
    wan_batch_init(&east.out, "east", 0, 1 << 20, 1000); /* no extension: active-passive */
    side_write(&east, 1000, STORE_OP_SET, 2, "k", "v");
    struct store_config cfg = {.seed = 42, .maxmemory_samples = 5};
    struct store *dst = store_create(&cfg, NULL);
    struct hy_buf e;
    hy_buf_init(&e);
    encode_set(&e, "k", "target's own");
    assert_int_equal(store_apply(dst, e.data, e.len, NULL), HY_OK);
    apply_batch(dst, &east.out);
    assert_string_equal(get(dst, "k"), "v");
    const struct wan_conflict_count *c;
    assert_int_equal(store_wan_conflict_counts(dst, &c), 0);
    /* The state entry alone, outside a batch: an error, nothing changed. */
    struct wan_batch_reader r;
    uint64_t idx;
    const uint8_t *entry;
    size_t len;
    assert_int_equal(wan_batch_open(&r, east.out.buf.data, east.out.buf.len), HY_OK);
    assert_int_equal(wan_batch_next(&r, &idx, &entry, &len), HY_OK);
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2};
    assert_int_equal(store_apply(dst, entry, len, &w), HY_OK);
    assert_true(out.len > 0 && out.data[0] == '-');
    hy_buf_free(&out);
    hy_buf_free(&e);
    store_destroy(dst);
    side_free(&east);
}

/* A resync batch (docs/wan.md "Resync") applies its states whatever the position, then sets the
 * position to its base; sent again it changes nothing; once the stream has moved past its base
 * it is refused (a state from before a change applied since would undo it); an op inside one
 * is not applied. A store whose tap asks for states taps an INCR as the key's state. */
static void test_resync_batches(void **state)
{
    (void)state;
    struct store_config cfg = {.seed = 61, .maxmemory_samples = 5};
    struct store *src = store_create(&cfg, NULL), *dst = store_create(&cfg, NULL);
    struct hy_buf incr, set;
    hy_buf_init(&incr);
    hy_buf_init(&set);
    encode_incr(&incr, "n");
    encode_set(&set, "k", "v");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_apply(src, incr.data, incr.len, NULL), HY_OK);
    }
    assert_int_equal(store_apply(src, set.data, set.len, NULL), HY_OK);
    struct wan_batch normal;
    wan_batch_init(&normal, "east", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&normal, 10, incr.data, incr.len), HY_OK);
    assert_string_equal(apply_batch(dst, &normal), ":10\r\n");

    struct hy_buf ext, put;
    hy_buf_init(&ext);
    hy_buf_init(&put);
    wan_batch_ext_resync_encode(&ext, 20, 1, 0, NULL, NULL, 0);
    struct wan_batch rs;
    wan_batch_init_ext(&rs, "east", 0, 1 << 20, 100, ext.data, ext.len);
    const char *keys[] = {"n", "k"};
    for (int i = 0; i < 2; i++) {
        const struct store_obj *o = store_peek(src, S(keys[i]), 0);
        hy_buf_reset(&put);
        store_wan_state(src, S(keys[i]), o, 0, &put);
        assert_int_equal(wan_batch_add(&rs, (uint64_t)i + 1, put.data, put.len), HY_OK);
    }
    struct wan_batch_reader r;
    assert_int_equal(wan_batch_open(&r, rs.buf.data, rs.buf.len), HY_OK);
    assert_true(r.resync && r.resync_base == 20 && !r.active_active);
    assert_string_equal(apply_batch(dst, &rs), ":20\r\n");
    assert_string_equal(get(dst, "n"), "5");
    assert_string_equal(get(dst, "k"), "v");
    assert_int_equal(store_wan_applied(dst, "east", 0), 20);
    assert_string_equal(apply_batch(dst, &rs), ":20\r\n"); /* sent again: the same states */
    assert_string_equal(get(dst, "n"), "5");
    /* The stream resumes after the base; the old scan batch is then refused. */
    wan_batch_free(&normal);
    wan_batch_init(&normal, "east", 0, 1 << 20, 100);
    assert_int_equal(wan_batch_add(&normal, 21, incr.data, incr.len), HY_OK);
    assert_string_equal(apply_batch(dst, &normal), ":21\r\n");
    assert_string_equal(get(dst, "n"), "6");
    assert_true(strncmp(apply_batch(dst, &rs), "-ERR stale WAN resync batch", 27) == 0);
    assert_string_equal(get(dst, "n"), "6");
    assert_int_equal(store_wan_applied(dst, "east", 0), 21);
    /* An op in a resync batch (crafted) is not applied, and an active-active one decodes. */
    struct hy_buf aa;
    hy_buf_init(&aa);
    struct wan_policy_rule rule = {.pattern = "*", .policy = WAN_POLICY_DISCARD};
    wan_batch_ext_encode(&aa, "dr", &rule, 1);
    hy_buf_reset(&ext);
    wan_batch_ext_resync_encode(&ext, 30, 1, 0, NULL, aa.data, aa.len);
    struct wan_batch bad;
    wan_batch_init_ext(&bad, "east", 0, 1 << 20, 100, ext.data, ext.len);
    assert_int_equal(wan_batch_add(&bad, 1, incr.data, incr.len), HY_OK);
    assert_int_equal(wan_batch_open(&r, bad.buf.data, bad.buf.len), HY_OK);
    assert_true(r.resync && r.resync_base == 30 && r.active_active && r.nrules == 1);
    assert_string_equal(r.link, "dr");
    assert_string_equal(apply_batch(dst, &bad), ":30\r\n");
    assert_string_equal(get(dst, "n"), "6");
    /* Every truncation of a resync header is refused. */
    for (size_t cut = 1; cut < 1 + 4 + ext.len; cut++) {
        assert_int_not_equal(wan_batch_open(&r, bad.buf.data, cut), HY_OK);
    }

    /* An active-passive resync's first batch has the target drop what it holds in the source
     * partition's slots first, once: sent again, it deletes nothing the stream wrote since. */
    uint16_t slot_n = hy_key_slot(S("n")), slot_k = hy_key_slot(S("k"));
    hy_buf_reset(&ext);
    wan_batch_ext_resync_encode(&ext, 40, slot_k, slot_k, NULL, NULL, 0);
    struct wan_batch clr;
    wan_batch_init_ext(&clr, "east", 0, 1 << 20, 100, ext.data, ext.len);
    assert_int_equal(wan_batch_open(&r, clr.buf.data, clr.buf.len), HY_OK);
    assert_true(r.resync && r.clear && r.clear_lo == slot_k && r.clear_hi == slot_k);
    assert_true(slot_n != slot_k);
    assert_string_equal(apply_batch(dst, &clr), ":40\r\n");
    assert_null(get(dst, "k"));
    assert_string_equal(get(dst, "n"), "6");
    assert_int_equal(store_apply(dst, set.data, set.len, NULL), HY_OK);
    assert_string_equal(apply_batch(dst, &clr), ":40\r\n");
    assert_string_equal(get(dst, "k"), "v");
    wan_batch_free(&clr);

    /* A link shipping only some keys deletes only those: "k" matches "k*", "n" does not (a
     * resync of a new stream, base 50, over slots holding both). */
    hy_buf_reset(&ext);
    uint16_t lo = slot_n < slot_k ? slot_n : slot_k, hi = slot_n < slot_k ? slot_k : slot_n;
    wan_batch_ext_resync_encode(&ext, 50, lo, hi, "k*", NULL, 0);
    wan_batch_init_ext(&clr, "east", 0, 1 << 20, 100, ext.data, ext.len);
    assert_int_equal(wan_batch_open(&r, clr.buf.data, clr.buf.len), HY_OK);
    assert_true(r.clear && strcmp(r.clear_keys, "k*") == 0);
    assert_string_equal(apply_batch(dst, &clr), ":50\r\n");
    assert_null(get(dst, "k"));
    assert_string_equal(get(dst, "n"), "6");
    for (size_t cut = 1; cut < 1 + 4 + ext.len; cut++) {
        assert_int_not_equal(wan_batch_open(&r, clr.buf.data, cut), HY_OK);
    }
    wan_batch_free(&clr);

    /* The tap: an op as such, a state while states are asked for. */
    struct tapped t = {0};
    store_set_tap(src, tap_cb, &t);
    assert_int_equal(store_apply(src, incr.data, incr.len, NULL), HY_OK);
    store_set_tap_states(src, 1);
    assert_int_equal(store_apply(src, incr.data, incr.len, NULL), HY_OK);
    store_set_tap_states(src, 0);
    assert_int_equal(store_apply(src, incr.data, incr.len, NULL), HY_OK);
    assert_int_equal(t.count, 3);
    assert_int_equal(t.ops[0], STORE_OP_INCRBY);
    assert_int_equal(t.ops[1], STORE_OP_WAN_PUT);
    assert_int_equal(t.ops[2], STORE_OP_INCRBY);
    assert_false(store_wan_versions_on(src)); /* states without versions kept */

    hy_buf_free(&aa);
    wan_batch_free(&bad);
    wan_batch_free(&rs);
    wan_batch_free(&normal);
    hy_buf_free(&ext);
    hy_buf_free(&put);
    hy_buf_free(&incr);
    hy_buf_free(&set);
    store_destroy(src);
    store_destroy(dst);
}

/* A region role survives its encoding, malformed ones are refused, the later promotion wins
 * (a tie of epochs goes to one of the two names, alike from both sides), and a target's
 * -DEMOTED refusal is read back by the sender. */
static void test_region_roles(void **state)
{
    (void)state;
    struct wan_role r = {.kind = WAN_ROLE_PRIMARY, .epoch = 1765000000123ULL}, back;
    strcpy(r.by, "west-1");
    struct hy_buf b;
    hy_buf_init(&b);
    wan_role_encode(&r, &b);
    assert_true(wan_role_decode(b.data, b.len, &back));
    assert_int_equal(back.kind, WAN_ROLE_PRIMARY);
    assert_int_equal(back.epoch, 1765000000123ULL);
    assert_string_equal(back.by, "west-1");
    assert_true(wan_role_decode(S("passive 5 east"), &back));
    assert_int_equal(back.kind, WAN_ROLE_PASSIVE);
    assert_false(wan_role_decode(S("primary 5"), &back));
    assert_false(wan_role_decode(S("primary 0 a"), &back));
    assert_false(wan_role_decode(S("primary -3 a"), &back));
    assert_false(wan_role_decode(S("leader 5 a"), &back));
    assert_false(wan_role_decode(S("primary 5 a b"), &back));
    assert_false(wan_role_decode(S("primary 5x a"), &back));
    assert_false(wan_role_decode(S(""), &back));
    /* A promotion in place of one source (PROMOTE FROM): " from <name>", a primary's only. */
    strcpy(r.from, "east");
    hy_buf_reset(&b);
    wan_role_encode(&r, &b);
    assert_int_equal(b.len, strlen("primary 1765000000123 west-1 from east"));
    assert_true(wan_role_decode(b.data, b.len, &back));
    assert_string_equal(back.by, "west-1");
    assert_string_equal(back.from, "east");
    assert_true(wan_role_decode(S("passive 5 east"), &back));
    assert_string_equal(back.from, "");
    assert_false(wan_role_decode(S("passive 5 west from east"), &back));
    assert_false(wan_role_decode(S("primary 5 west from"), &back));
    assert_false(wan_role_decode(S("primary 5 west from "), &back));
    assert_false(wan_role_decode(S("primary 5 west frm east"), &back));
    assert_false(wan_role_decode(S("primary 5 west from a b"), &back));
    r.from[0] = '\0';
    hy_buf_reset(&b);
    wan_role_encode(&r, &b);
    for (size_t cut = 0; cut < b.len; cut++) {
        /* every truncation of a valid value but those that leave a shorter valid name */
        int ok = wan_role_decode(b.data, cut, &back);
        assert_true(!ok || cut > strlen("primary 1765000000123 "));
    }

    struct wan_role none = {0}, prim = {.kind = WAN_ROLE_PRIMARY, .epoch = 10, .by = "east"},
                    pas = {.kind = WAN_ROLE_PASSIVE, .epoch = 10, .by = "west"};
    assert_true(wan_role_yields(&none, 1, "west"));
    assert_true(wan_role_yields(&prim, 11, "west"));  /* a later promotion elsewhere wins */
    assert_false(wan_role_yields(&prim, 10, "east")); /* not the same one */
    assert_false(wan_role_yields(&prim, 9, "west"));  /* nor an earlier one */
    assert_true(wan_role_yields(&pas, 11, "west"));   /* passive for a newer primary */
    assert_false(wan_role_yields(&pas, 10, "west"));  /* already passive for this one */
    assert_false(wan_role_yields(&pas, 9, "east"));
    /* Two promotions of one epoch: exactly one wins, the same one seen from either side, by
     * the origin ids of the names (it fails when a tie yields, or never yields, both ways). */
    static const char *const names[] = {"east", "west", "eu-1", "us-2", "a", "b", "dr.site"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            struct wan_role pi = {.kind = WAN_ROLE_PRIMARY, .epoch = 7};
            struct wan_role pj = {.kind = WAN_ROLE_PRIMARY, .epoch = 7};
            strcpy(pi.by, names[i]);
            strcpy(pj.by, names[j]);
            int i_yields = wan_role_yields(&pi, 7, names[j]);
            int j_yields = wan_role_yields(&pj, 7, names[i]);
            assert_int_equal(i_yields + j_yields, i == j ? 0 : 1);
            uint32_t oi = wan_origin_id(names[i], strlen(names[i]));
            uint32_t oj = wan_origin_id(names[j], strlen(names[j]));
            assert_int_equal(i_yields, oi < oj);
            assert_int_equal(wan_promotion_cmp(7, names[i], 7, names[j]),
                             -wan_promotion_cmp(7, names[j], 7, names[i]));
        }
    }
    /* A later epoch wins whatever the names. */
    assert_true(wan_promotion_cmp(8, "a", 7, "b") > 0 && wan_promotion_cmp(7, "b", 8, "a") < 0);

    uint64_t epoch;
    char by[WAN_NAME_MAX + 1];
    assert_true(wan_demoted_parse("target partition 1 answered DEMOTED 77 west: this cluster",
                                  &epoch, by, sizeof(by)));
    assert_int_equal(epoch, 77);
    assert_string_equal(by, "west");
    assert_false(wan_demoted_parse("DEMOTED 0 west:", &epoch, by, sizeof(by)));
    assert_false(wan_demoted_parse("DEMOTED x west:", &epoch, by, sizeof(by)));
    assert_false(wan_demoted_parse("DEMOTED 5 :", &epoch, by, sizeof(by)));
    assert_false(wan_demoted_parse("READONLY 5 west", &epoch, by, sizeof(by)));
    assert_false(wan_demoted_parse("DEMOTED 5 west", &epoch, by, 3)); /* does not fit */
    hy_buf_free(&b);
}

/* A resync's progress: a percentage that reaches 100 only when finished, and its bar. */
static void test_resync_progress(void **state)
{
    (void)state;
    char bar[WAN_BAR_WIDTH + 1];
    assert_int_equal(wan_progress_percent(0, 1000, 0), 0);
    assert_int_equal(wan_progress_percent(420, 1000, 0), 42);
    assert_int_equal(wan_progress_percent(1000, 1000, 0), 99); /* not done until the scan is */
    assert_int_equal(wan_progress_percent(5000, 1000, 0), 99); /* keys came during the scan */
    assert_int_equal(wan_progress_percent(0, 0, 0), 99);
    assert_int_equal(wan_progress_percent(3, 1000, 1), 100);
    wan_progress_bar(0, bar, sizeof(bar));
    assert_string_equal(bar, "....................");
    wan_progress_bar(42, bar, sizeof(bar));
    assert_string_equal(bar, "########............");
    wan_progress_bar(100, bar, sizeof(bar));
    assert_string_equal(bar, "####################");
    wan_progress_bar(250, bar, sizeof(bar));
    assert_string_equal(bar, "####################");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_definitions),
        cmocka_unit_test(test_batch_codec),
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_shipper),
        cmocka_unit_test(test_store_applies_once),
        cmocka_unit_test(test_promotion_fence),
        cmocka_unit_test(test_tap),
        cmocka_unit_test(test_nested_batch_refused),
        cmocka_unit_test(test_merge_decide),
        cmocka_unit_test(test_active_active_tie_converges),
        cmocka_unit_test(test_active_active_writes_and_deletes),
        cmocka_unit_test(test_active_active_policies),
        cmocka_unit_test(test_active_active_higher_hits),
        cmocka_unit_test(test_higher_hits_counts_reads),
        cmocka_unit_test(test_every_policy_converges),
        cmocka_unit_test(test_passive_states_apply),
        cmocka_unit_test(test_states_of_every_key),
        cmocka_unit_test(test_resync_batches),
        cmocka_unit_test(test_region_roles),
        cmocka_unit_test(test_resync_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
