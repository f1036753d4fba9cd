/* Unit tests for the peer wire codec (src/proto/wire) and the handshake (src/io/peer_auth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/crc.h"
#include "common/status.h"
#include "io/peer_auth.h"
#include "proto/wire.h"

/* ---- helpers --------------------------------------------------------------------------------- */

/* Builds a frame by hand (independently of the encoder) around an arbitrary payload. */
static void raw_frame(struct hy_buf *out, uint8_t type, const uint8_t *payload, size_t len)
{
    uint8_t h[WIRE_HEADER_BYTES] = {'H', 'Y', 'P', 'W', WIRE_VERSION, type, 0, 0};
    hy_store_u32le(h + 8, (uint32_t)len);
    uint32_t crc = hy_crc32c(hy_crc32c(0, h, 12), payload, len);
    hy_store_u32le(h + 12, crc);
    hy_buf_append(out, h, sizeof(h));
    hy_buf_append(out, payload, len);
}

/* Recomputes the CRC of the frame at f after a test edited it (so only the edit is wrong). */
static void refresh_crc(uint8_t *f)
{
    uint32_t len = hy_load_u32le(f + 8);
    hy_store_u32le(f + 12, hy_crc32c(hy_crc32c(0, f, 12), f + WIRE_HEADER_BYTES, len));
}

/* Decodes exactly one frame filling buf and expects success. */
static void read_one(struct wire_reader *r, const struct hy_buf *b, struct wire_frame *f)
{
    size_t consumed = 99;
    assert_int_equal(wire_read(r, b->data, b->len, &consumed, f), HY_OK);
    assert_int_equal(consumed, b->len);
}

/* Expects the frame in b to be refused with `status` and a reason containing `reason`. */
static void expect_error(const struct hy_buf *b, const struct wire_limits *l, int status,
                         const char *reason)
{
    struct wire_reader r;
    wire_reader_init(&r, l);
    struct wire_frame f;
    size_t consumed = 99;
    assert_int_equal(wire_read(&r, b->data, b->len, &consumed, &f), status);
    assert_int_equal(consumed, 0);
    if (strstr(r.error, reason) == NULL) {
        fail_msg("error '%s' does not contain '%s'", r.error, reason);
    }
    /* Sticky: a well-formed frame afterwards does not revive the connection. */
    struct hy_buf ok;
    hy_buf_init(&ok);
    wire_encode_welcome(&ok);
    assert_int_equal(wire_read(&r, ok.data, ok.len, &consumed, &f), status);
    hy_buf_free(&ok);
    wire_reader_free(&r);
}

static const uint8_t nonce_a[WIRE_NONCE_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t mac_a[WIRE_MAC_BYTES] = {0xaa, 0xbb, 0xcc, [31] = 0xdd};

static struct wire_hello hello_of(const char *cluster, const char *node, const uint8_t *mac)
{
    struct wire_hello h = {
        .version = WIRE_VERSION,
        .cluster = (const uint8_t *)cluster,
        .cluster_len = strlen(cluster),
        .node = (const uint8_t *)node,
        .node_len = strlen(node),
        .nonce = nonce_a,
        .mac = mac,
    };
    return h;
}

/* ---- round trips ----------------------------------------------------------------------------- */

/* HELLO and CHALLENGE carry every field back unchanged. */
static void test_hello_challenge_roundtrip(void **state)
{
    (void)state;
    for (int with_mac = 0; with_mac <= 1; with_mac++) {
        struct hy_buf b;
        hy_buf_init(&b);
        struct wire_hello h = hello_of("prod-eu", "n1", with_mac ? mac_a : NULL);
        assert_int_equal(wire_encode_hello(&b, &h), HY_OK);
        struct wire_reader r;
        wire_reader_init(&r, NULL);
        struct wire_frame f;
        read_one(&r, &b, &f);
        assert_int_equal(f.type, with_mac ? WIRE_CHALLENGE : WIRE_HELLO);
        assert_int_equal(f.hello.version, WIRE_VERSION);
        assert_int_equal(f.hello.cluster_len, 7);
        assert_memory_equal(f.hello.cluster, "prod-eu", 7);
        assert_int_equal(f.hello.node_len, 2);
        assert_memory_equal(f.hello.node, "n1", 2);
        assert_memory_equal(f.hello.nonce, nonce_a, WIRE_NONCE_BYTES);
        if (with_mac) {
            assert_memory_equal(f.hello.mac, mac_a, WIRE_MAC_BYTES);
        } else {
            assert_null(f.hello.mac);
        }
        wire_reader_free(&r);
        hy_buf_free(&b);
    }
}

/* The encoder refuses names that the decoder would refuse (empty, too long, unprintable). */
static void test_hello_refuses_bad_names(void **state)
{
    (void)state;
    char longname[WIRE_NAME_MAX + 2];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *bad[] = {"", "a b", "tab\there", longname};
    for (size_t i = 0; i < HY_ARRAY_LEN(bad); i++) {
        struct hy_buf b;
        hy_buf_init(&b);
        struct wire_hello h = hello_of("c", bad[i], NULL);
        assert_int_equal(wire_encode_hello(&b, &h), HY_EINVAL);
        assert_int_equal(b.len, 0);
        hy_buf_free(&b);
    }
}

/* AUTH, WELCOME, REJECT, PING, PONG, FORWARD and FORWARD_REPLY round-trip. */
static void test_small_frames_roundtrip(void **state)
{
    (void)state;
    struct wire_limits l;
    wire_limits_default(&l);
    struct hy_buf b;
    hy_buf_init(&b);
    wire_encode_auth(&b, mac_a);
    wire_encode_welcome(&b);
    wire_encode_reject(&b, WIRE_REJECT_CLUSTER, "wrong\ncluster");
    wire_encode_ping(&b, WIRE_PING, 42);
    wire_encode_ping(&b, WIRE_PONG, UINT64_MAX);
    assert_int_equal(wire_encode_forward(&b, WIRE_FORWARD, 7, (const uint8_t *)"SET k v", 7, &l),
                     HY_OK);
    assert_int_equal(wire_encode_forward(&b, WIRE_FORWARD_REPLY, 8, NULL, 0, &l), HY_OK);

    struct wire_reader r;
    wire_reader_init(&r, NULL);
    struct wire_frame f[7];
    size_t off = 0;
    for (size_t i = 0; i < 7; i++) {
        size_t consumed;
        assert_int_equal(wire_read(&r, b.data + off, b.len - off, &consumed, &f[i]), HY_OK);
        off += consumed;
    }
    assert_int_equal(off, b.len);
    assert_int_equal(f[0].type, WIRE_AUTH);
    assert_memory_equal(f[0].mac, mac_a, WIRE_MAC_BYTES);
    assert_int_equal(f[1].type, WIRE_WELCOME);
    assert_int_equal(f[2].type, WIRE_REJECT);
    assert_int_equal(f[2].reject.code, WIRE_REJECT_CLUSTER);
    /* Control bytes in a reason become '?': the peer logs the text. */
    assert_int_equal(f[2].reject.text_len, 13);
    assert_memory_equal(f[2].reject.text, "wrong?cluster", 13);
    assert_int_equal(f[3].type, WIRE_PING);
    assert_true(f[3].ping_token == 42);
    assert_int_equal(f[4].type, WIRE_PONG);
    assert_true(f[4].ping_token == UINT64_MAX);
    assert_int_equal(f[5].type, WIRE_FORWARD);
    assert_true(f[5].forward.req_id == 7);
    assert_int_equal(f[5].forward.len, 7);
    assert_memory_equal(f[5].forward.data, "SET k v", 7);
    assert_int_equal(f[6].type, WIRE_FORWARD_REPLY);
    assert_true(f[6].forward.req_id == 8);
    assert_int_equal(f[6].forward.len, 0);
    wire_reader_free(&r);
    hy_buf_free(&b);
}

static const struct raft_entry sample_entries[] = {
    {.term = 3, .type = RAFT_ENTRY_COMMAND, .len = 5, .data = (const uint8_t *)"hello"},
    {.term = 3, .type = RAFT_ENTRY_NOOP, .len = 0, .data = NULL},
    {.term = 4, .type = RAFT_ENTRY_CONFIG, .len = 3, .data = (const uint8_t *)"cfg"},
};

/* One message of each raft type with every field it uses set to a distinctive value. */
static struct raft_message sample_raft(uint32_t type)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = 1;
    m.to = UINT64_MAX;
    m.term = 0x0102030405060708ull;
    m.last_log_index = 11;
    m.last_log_term = 12;
    m.pre_vote = type == RAFT_MSG_VOTE || type == RAFT_MSG_VOTE_RESP;
    m.transfer = type == RAFT_MSG_VOTE;
    m.granted = type == RAFT_MSG_VOTE_RESP;
    m.success = type == RAFT_MSG_APPEND_RESP || type == RAFT_MSG_SNAPSHOT_RESP;
    m.quiesce = type == RAFT_MSG_APPEND_RESP; /* the quiesce flag survives the trip */
    m.prev_index = 13;
    m.prev_term = 14;
    m.commit = 15;
    m.index = 16;
    m.hint_term = 17;
    m.seq = 18;
    m.sent_ms = 19;
    if (type == RAFT_MSG_APPEND) {
        m.n_entries = HY_ARRAY_LEN(sample_entries);
        m.entries = sample_entries;
    }
    if (type == RAFT_MSG_SNAPSHOT) {
        m.snap_index = 100;
        m.snap_term = 4;
        m.snap_membership.count = RAFT_SERVERS_MAX;
        for (uint32_t i = 0; i < RAFT_SERVERS_MAX; i++) {
            m.snap_membership.servers[i].id = 1000 + i;
            m.snap_membership.servers[i].role = i % 3 == 0 ? RAFT_LEARNER : RAFT_VOTER;
        }
        m.offset = 10;
        m.total = 20;
        m.len = 4;
        m.data = (const uint8_t *)"snap";
        m.snap_crc = 0xc0ffee42u;
    }
    return m;
}

static void assert_raft_equal(const struct raft_message *a, const struct raft_message *b)
{
    assert_int_equal(a->type, b->type);
    const uint64_t wa[] = {a->from,          a->to,         a->term,      a->last_log_index,
                           a->last_log_term, a->prev_index, a->prev_term, a->commit,
                           a->index,         a->hint_term,  a->seq,       a->sent_ms,
                           a->snap_index,    a->snap_term,  a->offset,    a->total};
    const uint64_t wb[] = {b->from,          b->to,         b->term,      b->last_log_index,
                           b->last_log_term, b->prev_index, b->prev_term, b->commit,
                           b->index,         b->hint_term,  b->seq,       b->sent_ms,
                           b->snap_index,    b->snap_term,  b->offset,    b->total};
    assert_memory_equal(wa, wb, sizeof(wa));
    assert_int_equal(!!a->pre_vote, !!b->pre_vote);
    assert_int_equal(!!a->transfer, !!b->transfer);
    assert_int_equal(!!a->granted, !!b->granted);
    assert_int_equal(!!a->success, !!b->success);
    assert_int_equal(!!a->quiesce, !!b->quiesce);
    assert_int_equal(a->n_entries, b->n_entries);
    for (uint32_t i = 0; i < a->n_entries; i++) {
        assert_true(a->entries[i].term == b->entries[i].term);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].len, b->entries[i].len);
        if (a->entries[i].len > 0) {
            assert_memory_equal(a->entries[i].data, b->entries[i].data, a->entries[i].len);
        }
    }
    assert_int_equal(a->snap_membership.count, b->snap_membership.count);
    for (uint32_t i = 0; i < a->snap_membership.count; i++) {
        assert_true(a->snap_membership.servers[i].id == b->snap_membership.servers[i].id);
        assert_int_equal(a->snap_membership.servers[i].role, b->snap_membership.servers[i].role);
    }
    assert_int_equal(a->len, b->len);
    if (a->len > 0) {
        assert_memory_equal(a->data, b->data, a->len);
    }
    assert_int_equal(a->snap_crc, b->snap_crc);
}

/* Every raft message type round-trips, entries and snapshot chunks included, and the decoded
 * pointers borrow from the frame buffer. */
static void test_raft_roundtrip_every_type(void **state)
{
    (void)state;
    for (uint32_t type = RAFT_MSG_VOTE; type < RAFT_MSG_TYPE_COUNT; type++) {
        struct raft_message m = sample_raft(type);
        struct hy_buf b;
        hy_buf_init(&b);
        /* The group id rides in the fixed part: every value of its u16 comes back. */
        uint16_t group = (uint16_t)(type == RAFT_MSG_VOTE ? 0 : 0xffff - type * 4099);
        assert_int_equal(wire_encode_raft(&b, group, &m, &(struct wire_limits){1 << 20, 16}),
                         HY_OK);
        assert_int_equal(b.len, wire_raft_frame_len(&m));
        struct wire_reader r;
        wire_reader_init(&r, NULL);
        struct wire_frame f;
        read_one(&r, &b, &f);
        assert_int_equal(f.type, WIRE_RAFT);
        assert_int_equal(f.raft_group, group);
        assert_raft_equal(&m, &f.raft);
        if (f.raft.len > 0) {
            /* A SNAPSHOT's chunk is followed by the whole data's checksum. */
            assert_true(f.raft.data > b.data && f.raft.data + f.raft.len + 4 == b.data + b.len);
        }
        if (f.raft.n_entries > 0) {
            assert_true(f.raft.entries[0].data > b.data && f.raft.entries[0].data < b.data + b.len);
        }
        wire_reader_free(&r);
        hy_buf_free(&b);
    }
}

/* The encoder refuses messages the decoder would refuse, and messages over the limits. */
static void test_raft_encode_refuses(void **state)
{
    (void)state;
    struct wire_limits l = {.frame_bytes_max = 1024, .entries_max = 2};
    struct raft_message bad[6];
    bad[0] = sample_raft(RAFT_MSG_VOTE);
    bad[0].type = RAFT_MSG_TYPE_COUNT;
    bad[1] = sample_raft(RAFT_MSG_VOTE);
    bad[1].n_entries = 1;
    bad[1].entries = sample_entries;
    bad[2] = sample_raft(RAFT_MSG_SNAPSHOT);
    bad[2].snap_membership.count = RAFT_SERVERS_MAX + 1;
    bad[3] = sample_raft(RAFT_MSG_SNAPSHOT);
    bad[3].offset = bad[3].total - 1;
    bad[4] = sample_raft(RAFT_MSG_APPEND_RESP);
    bad[4].from = RAFT_NONE;
    bad[5] = sample_raft(RAFT_MSG_SNAPSHOT);
    bad[5].snap_membership.servers[2].role = 9;
    for (size_t i = 0; i < HY_ARRAY_LEN(bad); i++) {
        struct hy_buf b;
        hy_buf_init(&b);
        assert_int_equal(wire_encode_raft(&b, 0, &bad[i], &l), HY_EINVAL);
        assert_int_equal(wire_raft_frame_len(&bad[i]), 0);
        assert_int_equal(b.len, 0);
        hy_buf_free(&b);
    }
    struct raft_message m = sample_raft(RAFT_MSG_APPEND); /* 3 entries, limit 2 */
    struct hy_buf b;
    hy_buf_init(&b);
    assert_int_equal(wire_encode_raft(&b, 0, &m, &l), HY_ETOOBIG);
    static uint8_t big[2048];
    m = sample_raft(RAFT_MSG_SNAPSHOT);
    m.len = sizeof(big);
    m.total = m.offset + m.len;
    m.data = big;
    assert_int_equal(wire_encode_raft(&b, 0, &m, &l), HY_ETOOBIG);
    assert_int_equal(wire_encode_forward(&b, WIRE_FORWARD, 1, big, sizeof(big), &l), HY_ETOOBIG);
    assert_int_equal(b.len, 0);
    hy_buf_free(&b);
}

/* ---- partial reads ----------------------------------------------------------------------- */

/* A stream of every frame type fed one byte at a time decodes to the same frames, each frame
 * completing exactly on its last byte. */
static void test_partial_reads_byte_by_byte(void **state)
{
    (void)state;
    struct wire_limits l;
    wire_limits_default(&l);
    struct hy_buf b;
    hy_buf_init(&b);
    struct wire_hello h = hello_of("c", "n2", mac_a);
    assert_int_equal(wire_encode_hello(&b, &h), HY_OK);
    size_t ends[16];
    size_t n = 0;
    ends[n++] = b.len;
    for (uint32_t type = RAFT_MSG_VOTE; type < RAFT_MSG_TYPE_COUNT; type++) {
        struct raft_message m = sample_raft(type);
        assert_int_equal(wire_encode_raft(&b, 0, &m, &l), HY_OK);
        ends[n++] = b.len;
    }
    assert_int_equal(wire_encode_forward(&b, WIRE_FORWARD, 9, (const uint8_t *)"x", 1, &l), 0);
    ends[n++] = b.len;
    wire_encode_ping(&b, WIRE_PING, 1);
    ends[n++] = b.len;

    struct wire_reader r;
    wire_reader_init(&r, NULL);
    size_t start = 0, got = 0;
    for (size_t avail = 1; avail <= b.len; avail++) {
        /* A fresh copy of exactly the bytes received so far, so ASan sees any over-read. */
        uint8_t *copy = hy_xmemdup(b.data + start, avail - start);
        struct wire_frame f;
        size_t consumed;
        int rc = wire_read(&r, copy, avail - start, &consumed, &f);
        if (avail == ends[got]) {
            assert_int_equal(rc, HY_OK);
            assert_int_equal(consumed, avail - start);
            start = avail;
            got++;
        } else {
            assert_int_equal(rc, HY_EAGAIN);
            assert_int_equal(consumed, 0);
            if (avail - start >= WIRE_HEADER_BYTES) {
                assert_int_equal(wire_reader_bytes_needed(&r), ends[got] - start);
            }
        }
        hy_free(copy);
    }
    assert_int_equal(got, n);
    wire_reader_free(&r);
    hy_buf_free(&b);
}

/* ---- malformed input ------------------------------------------------------------------------ */

/* Bad magic, version, type and flags are refused from the header alone, the magic from its
 * first byte. */
static void test_bad_header(void **state)
{
    (void)state;
    struct hy_buf b;
    hy_buf_init(&b);
    wire_encode_ping(&b, WIRE_PING, 1);
    struct hy_buf one = {.data = (uint8_t *)"G", .len = 1, .cap = 1};
    expect_error(&one, NULL, HY_EPROTO, "bad magic");
    struct {
        size_t off;
        uint8_t val;
        const char *reason;
    } cases[] = {
        {0, 'X', "bad magic"},
        {3, 'Q', "bad magic"},
        {4, 2, "version"},
        {5, 0, "unknown frame type"},
        {5, WIRE_TYPE_COUNT, "unknown frame type"},
        {6, 1, "flags"},
        {7, 0x80, "flags"},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(cases); i++) {
        struct hy_buf c;
        hy_buf_init(&c);
        hy_buf_append(&c, b.data, b.len);
        c.data[cases[i].off] = cases[i].val;
        refresh_crc(c.data);
        expect_error(&c, NULL, HY_EPROTO, cases[i].reason);
        hy_buf_free(&c);
    }
    hy_buf_free(&b);
}

/* A flipped bit in the CRC field or anywhere in the payload is caught by the CRC. */
static void test_bad_crc(void **state)
{
    (void)state;
    struct hy_buf b;
    hy_buf_init(&b);
    struct raft_message m = sample_raft(RAFT_MSG_APPEND);
    struct wire_limits l;
    wire_limits_default(&l);
    assert_int_equal(wire_encode_raft(&b, 0, &m, &l), HY_OK);
    for (size_t off = 12; off < b.len; off++) {
        b.data[off] ^= 0x10;
        expect_error(&b, NULL, HY_ECORRUPT, "CRC");
        b.data[off] ^= 0x10;
    }
    hy_buf_free(&b);
}

/* A length over the limit is refused as soon as the header arrives, before the payload. */
static void test_oversize_length(void **state)
{
    (void)state;
    struct wire_limits l = {.frame_bytes_max = 4096, .entries_max = 16};
    uint8_t payload[4096 - WIRE_HEADER_BYTES + 1] = {0};
    struct hy_buf b;
    hy_buf_init(&b);
    raw_frame(&b, WIRE_FORWARD, payload, sizeof(payload));
    b.len = WIRE_HEADER_BYTES;
    expect_error(&b, &l, HY_ETOOBIG, "over the limit");
    hy_buf_reset(&b);
    raw_frame(&b, WIRE_FORWARD, payload, sizeof(payload) - 1); /* exactly at the limit */
    struct wire_reader r;
    wire_reader_init(&r, &l);
    struct wire_frame f;
    read_one(&r, &b, &f);
    wire_reader_free(&r);
    hy_buf_free(&b);
}

/* Payloads whose length disagrees with their fields: truncated or with trailing bytes. */
static void test_truncated_payloads(void **state)
{
    (void)state;
    struct hy_buf good;
    hy_buf_init(&good);
    struct wire_hello h = hello_of("c", "n1", NULL);
    assert_int_equal(wire_encode_hello(&good, &h), HY_OK);
    const uint8_t *p = good.data + WIRE_HEADER_BYTES;
    size_t plen = good.len - WIRE_HEADER_BYTES;
    for (size_t cut = 0; cut < plen; cut++) {
        struct hy_buf b;
        hy_buf_init(&b);
        raw_frame(&b, WIRE_HELLO, p, cut);
        expect_error(&b, NULL, HY_EPROTO, "HELLO payload length");
        hy_buf_reset(&b);
        raw_frame(&b, WIRE_CHALLENGE, p, cut); /* a HELLO is a CHALLENGE without its MAC */
        expect_error(&b, NULL, HY_EPROTO, "CHALLENGE payload length");
        hy_buf_free(&b);
    }
    uint8_t zeros[WIRE_RAFT_FIXED_BYTES] = {0};
    struct {
        uint8_t type;
        size_t len;
        const char *reason;
    } cases[] = {
        {WIRE_AUTH, 31, "wrong length"},
        {WIRE_AUTH, 33, "wrong length"},
        {WIRE_WELCOME, 1, "wrong length"},
        {WIRE_PING, 7, "wrong length"},
        {WIRE_PONG, 9, "wrong length"},
        {WIRE_FORWARD, 7, "shorter"},
        {WIRE_FORWARD_REPLY, 0, "shorter"},
        {WIRE_REJECT, 3, "REJECT payload"},
        {WIRE_RAFT, WIRE_RAFT_FIXED_BYTES - 1, "fixed part"},
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(cases); i++) {
        struct hy_buf b;
        hy_buf_init(&b);
        raw_frame(&b, cases[i].type, zeros, cases[i].len);
        expect_error(&b, NULL, HY_EPROTO, cases[i].reason);
        hy_buf_free(&b);
    }
    hy_buf_free(&good);
}

/* REJECT with an unknown code, a text length past the payload or unprintable text; HELLO
 * with an unprintable or empty name. */
static void test_bad_reject_and_names(void **state)
{
    (void)state;
    struct hy_buf b;
    hy_buf_init(&b);
    raw_frame(&b, WIRE_REJECT, (const uint8_t *)"\x09\x00\x02\x00hi", 6);
    expect_error(&b, NULL, HY_EPROTO, "unknown code");
    hy_buf_reset(&b);
    raw_frame(&b, WIRE_REJECT, (const uint8_t *)"\x01\x00\x05\x00hi", 6);
    expect_error(&b, NULL, HY_EPROTO, "REJECT payload length");
    hy_buf_reset(&b);
    raw_frame(&b, WIRE_REJECT, (const uint8_t *)"\x01\x00\x02\x00h\n", 6);
    expect_error(&b, NULL, HY_EPROTO, "printable");
    hy_buf_reset(&b);
    uint8_t hello[4 + 1 + 1 + 1 + 2 + WIRE_NONCE_BYTES] = {1, 0, 0, 0, 1, 'c', 2, 'n', 0x07};
    raw_frame(&b, WIRE_HELLO, hello, sizeof(hello));
    expect_error(&b, NULL, HY_EPROTO, "unprintable");
    hy_buf_reset(&b);
    uint8_t empty[4 + 1 + 1 + 2 + WIRE_NONCE_BYTES] = {1, 0, 0, 0, 0, 2, 'n', '1'};
    raw_frame(&b, WIRE_HELLO, empty, sizeof(empty));
    expect_error(&b, NULL, HY_EPROTO, "empty");
    hy_buf_free(&b);
}

/* Encodes m, lets `edit` change the payload, re-CRCs, and expects the decoder to refuse it. */
static void expect_raft_edit_refused(const struct raft_message *m, size_t off, uint64_t val,
                                     int width, const char *reason)
{
    struct wire_limits l;
    wire_limits_default(&l);
    l.entries_max = 1000;
    struct hy_buf b;
    hy_buf_init(&b);
    assert_int_equal(wire_encode_raft(&b, 0, m, &l), HY_OK);
    uint8_t *p = b.data + WIRE_HEADER_BYTES + off;
    if (width == 1) {
        p[0] = (uint8_t)val;
    } else if (width == 4) {
        hy_store_u32le(p, (uint32_t)val);
    } else {
        hy_store_u64le(p, val);
    }
    refresh_crc(b.data);
    expect_error(&b, &l, HY_EPROTO, reason);
    hy_buf_free(&b);
}

/* Every count and field of a RAFT payload is checked against the payload and the rules. */
static void test_raft_counts_inconsistent(void **state)
{
    (void)state;
    struct raft_message app = sample_raft(RAFT_MSG_APPEND);
    struct raft_message snap = sample_raft(RAFT_MSG_SNAPSHOT);
    struct raft_message vote = sample_raft(RAFT_MSG_VOTE);
    size_t ent0 = WIRE_RAFT_FIXED_BYTES; /* APPEND has no membership */
    expect_raft_edit_refused(&app, 0, 0, 1, "unknown raft message type");
    expect_raft_edit_refused(&app, 0, RAFT_MSG_TYPE_COUNT, 1, "unknown raft message type");
    expect_raft_edit_refused(&app, 1, 0x20, 1, "unknown flags");
    expect_raft_edit_refused(&app, 4, 1000, 4, "exceed the payload");
    expect_raft_edit_refused(&app, 4, 1001, 4, "over the limit");
    expect_raft_edit_refused(&app, 4, 2, 4, "entry lengths do not match");
    expect_raft_edit_refused(&app, 4, 0, 4, "entry lengths do not match");
    expect_raft_edit_refused(&app, 8, 0, 8, "without from/to");
    expect_raft_edit_refused(&app, ent0 + 8, 7, 4, "entry of unknown type");
    expect_raft_edit_refused(&app, ent0 + 12, 6, 4, "entry lengths do not match");
    expect_raft_edit_refused(&app, ent0 + 12, UINT32_MAX, 4, "entry lengths do not match");
    expect_raft_edit_refused(&app, 140, 1000, 4, "exceed the payload");
    expect_raft_edit_refused(&vote, 136, 1, 4, "exceed the payload");
    expect_raft_edit_refused(&snap, 136, RAFT_SERVERS_MAX + 1, 4, "over 16");
    expect_raft_edit_refused(&snap, 136, 4, 4, "entry lengths do not match");
    expect_raft_edit_refused(&snap, WIRE_RAFT_FIXED_BYTES + 8, 3, 1, "unknown role");
    expect_raft_edit_refused(&snap, WIRE_RAFT_FIXED_BYTES, 0, 8, "id 0");
    expect_raft_edit_refused(&snap, 120, 17, 8, "beyond its total");
    expect_raft_edit_refused(&snap, 128, 12, 8, "beyond its total");
    /* Another type: the checksum after the chunk is a byte run no other type has. */
    expect_raft_edit_refused(&snap, 0, RAFT_MSG_APPEND, 1, "entry lengths do not match");
    expect_raft_edit_refused(&snap, 0, RAFT_MSG_SNAPSHOT_RESP, 1, "entry lengths do not match");
    /* ... and the encoder refuses a checksum outside a SNAPSHOT, as the decoder would. */
    struct raft_message resp = sample_raft(RAFT_MSG_SNAPSHOT_RESP);
    resp.snap_crc = 1;
    const char *reason;
    assert_int_equal(wire_raft_check(&resp, &reason), HY_EPROTO);
    assert_non_null(strstr(reason, "not SNAPSHOT"));
    expect_raft_edit_refused(&app, 0, RAFT_MSG_VOTE, 1, "not APPEND");
}

/* ---- handshake ---------------------------------------------------------------------------------
 */

struct side {
    struct peer_hs_config cfg;
    struct peer_hs hs;
    struct wire_reader r;
    struct hy_buf out; /* frames this side sent, not yet read by the other */
    const char *known[4];
};

static int side_known_cb(void *ctx, const char *id)
{
    struct side *s = ctx;
    for (size_t i = 0; i < HY_ARRAY_LEN(s->known) && s->known[i] != NULL; i++) {
        if (strcmp(s->known[i], id) == 0) {
            return 1;
        }
    }
    return 0;
}

static void side_init(struct side *s, const char *cluster, const char *id, const char *secret)
{
    memset(s, 0, sizeof(*s));
    s->cfg = (struct peer_hs_config){
        cluster, id, (const uint8_t *)secret, strlen(secret), side_known_cb, s, 1};
    wire_reader_init(&s->r, NULL);
    hy_buf_init(&s->out);
}

static void side_free(struct side *s)
{
    wire_reader_free(&s->r);
    hy_buf_free(&s->out);
}

/* Delivers every frame `from` sent to `to`; returns to's last handshake result. */
static int deliver(struct side *from, struct side *to)
{
    int rc = HY_EAGAIN;
    size_t off = 0;
    struct hy_buf sent = from->out;
    hy_buf_init(&from->out);
    while (off < sent.len) {
        struct wire_frame f;
        size_t consumed;
        assert_int_equal(wire_read(&to->r, sent.data + off, sent.len - off, &consumed, &f), 0);
        off += consumed;
        rc = peer_hs_on_frame(&to->hs, &f, &to->out);
    }
    hy_buf_free(&sent);
    return rc;
}

/* Runs a started handshake (the initiator's HELLO or WAN_HELLO in i->out) to its end; returns
 * the initiator's and acceptor's results. */
static void run_started(struct side *i, struct side *a, int *rc_i, int *rc_a)
{
    peer_hs_start_acceptor(&a->hs, &a->cfg);
    *rc_a = deliver(i, a); /* HELLO */
    *rc_i = deliver(a, i); /* CHALLENGE or REJECT */
    if (*rc_a == HY_EAGAIN || i->out.len > 0) {
        *rc_a = deliver(i, a); /* AUTH or REJECT */
    }
    if (*rc_i == HY_EAGAIN) {
        *rc_i = deliver(a, i); /* WELCOME or REJECT */
    }
}

/* Runs a handshake to its end; returns the initiator's and acceptor's results. */
static void run_handshake(struct side *i, struct side *a, const char *dial, int *rc_i, int *rc_a)
{
    peer_hs_start_initiator(&i->hs, &i->cfg, dial, &i->out);
    run_started(i, a, rc_i, rc_a);
}

/* Both sides with the same cluster and secret authenticate each other. */
static void test_handshake_accepts(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "prod", "n1", "s3cret");
    side_init(&a, "prod", "n2", "s3cret");
    a.known[0] = "n1";
    int rc_i, rc_a;
    run_handshake(&i, &a, "n2", &rc_i, &rc_a);
    assert_int_equal(rc_i, HY_OK);
    assert_int_equal(rc_a, HY_OK);
    assert_string_equal(i.hs.peer, "n2");
    assert_string_equal(a.hs.peer, "n1");
    assert_int_equal(i.hs.state, PEER_HS_DONE);
    assert_int_equal(a.hs.state, PEER_HS_DONE);
    side_free(&i);
    side_free(&a);
}

/* Checks a refused handshake: the refuser has the reason, the other side got it by REJECT. */
static void expect_refused(struct side *refuser, struct side *other, uint16_t code,
                           const char *reason)
{
    assert_int_equal(refuser->hs.state, PEER_HS_FAILED);
    assert_int_equal(other->hs.state, PEER_HS_FAILED);
    assert_int_equal(refuser->hs.refused_by_peer, 0);
    assert_int_equal(other->hs.refused_by_peer, 1);
    assert_int_equal(refuser->hs.reject_code, code);
    assert_int_equal(other->hs.reject_code, code);
    if (strstr(refuser->hs.reason, reason) == NULL || strstr(other->hs.reason, reason) == NULL) {
        fail_msg("reasons '%s' / '%s' lack '%s'", refuser->hs.reason, other->hs.reason, reason);
    }
}

/* A node of another cluster is refused by the acceptor; both sides know why. */
static void test_handshake_wrong_cluster(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "staging", "n1", "s3cret");
    side_init(&a, "prod", "n2", "s3cret");
    a.known[0] = "n1";
    int rc_i, rc_a;
    run_handshake(&i, &a, "n2", &rc_i, &rc_a);
    assert_int_equal(rc_i, HY_EPROTO);
    assert_int_equal(rc_a, HY_EPROTO);
    expect_refused(&a, &i, WIRE_REJECT_CLUSTER, "belongs to cluster 'staging'");
    side_free(&i);
    side_free(&a);
}

/* A wrong secret fails the acceptor's proof: the initiator refuses and the acceptor learns. */
static void test_handshake_wrong_secret(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "prod", "n1", "s3cret");
    side_init(&a, "prod", "n2", "other");
    a.known[0] = "n1";
    int rc_i, rc_a;
    run_handshake(&i, &a, "n2", &rc_i, &rc_a);
    assert_int_equal(rc_i, HY_EPROTO);
    assert_int_equal(rc_a, HY_EPROTO);
    expect_refused(&i, &a, WIRE_REJECT_AUTH, "cluster secret");
    side_free(&i);
    side_free(&a);
}

/* An unknown node id is refused; so is a node answering for another id than dialled. */
static void test_handshake_unknown_node(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "prod", "n9", "s3cret");
    side_init(&a, "prod", "n2", "s3cret");
    a.known[0] = "n1";
    int rc_i, rc_a;
    run_handshake(&i, &a, "n2", &rc_i, &rc_a);
    expect_refused(&a, &i, WIRE_REJECT_UNKNOWN_NODE, "'n9' is not a configured peer");
    side_free(&i);
    side_free(&a);

    side_init(&i, "prod", "n1", "s3cret");
    side_init(&a, "prod", "n3", "s3cret");
    a.known[0] = "n1";
    run_handshake(&i, &a, "n2", &rc_i, &rc_a);
    expect_refused(&i, &a, WIRE_REJECT_UNKNOWN_NODE, "dialled node 'n2' but node 'n3'");
    side_free(&i);
    side_free(&a);
}

/* A recorded HELLO + AUTH replayed on a new connection fails: the acceptor's fresh nonce is
 * not in the old proof. */
static void test_handshake_replayed_auth(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "prod", "n1", "s3cret");
    side_init(&a, "prod", "n2", "s3cret");
    a.known[0] = "n1";
    peer_hs_start_initiator(&i.hs, &i.cfg, "n2", &i.out);
    peer_hs_start_acceptor(&a.hs, &a.cfg);
    struct hy_buf hello;
    hy_buf_init(&hello);
    hy_buf_append(&hello, i.out.data, i.out.len);
    assert_int_equal(deliver(&i, &a), HY_EAGAIN);
    assert_int_equal(deliver(&a, &i), HY_EAGAIN);
    struct hy_buf auth;
    hy_buf_init(&auth);
    hy_buf_append(&auth, i.out.data, i.out.len);
    assert_int_equal(deliver(&i, &a), HY_OK); /* the genuine session succeeds */

    /* The attacker replays both recorded frames to a fresh acceptor connection. */
    struct side a2, eve;
    side_init(&a2, "prod", "n2", "s3cret");
    side_init(&eve, "prod", "n1", "unknown-to-eve");
    a2.known[0] = "n1";
    peer_hs_start_acceptor(&a2.hs, &a2.cfg);
    eve.out = hello;
    assert_int_equal(deliver(&eve, &a2), HY_EAGAIN);
    eve.out = auth;
    assert_int_equal(deliver(&eve, &a2), HY_EPROTO);
    assert_int_equal(a2.hs.reject_code, WIRE_REJECT_AUTH);
    assert_int_equal(a2.hs.refused_by_peer, 0);
    side_free(&i);
    side_free(&a);
    side_free(&a2);
    side_free(&eve);
}

/* A proof is not reflectable: the acceptor's own CHALLENGE MAC sent back as AUTH fails. */
static void test_handshake_reflected_mac(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "prod", "n1", "s3cret");
    side_init(&a, "prod", "n2", "s3cret");
    a.known[0] = "n1";
    peer_hs_start_initiator(&i.hs, &i.cfg, "n2", &i.out);
    peer_hs_start_acceptor(&a.hs, &a.cfg);
    assert_int_equal(deliver(&i, &a), HY_EAGAIN);
    struct wire_reader r;
    wire_reader_init(&r, NULL);
    struct wire_frame f;
    read_one(&r, &a.out, &f);
    struct hy_buf auth;
    hy_buf_init(&auth);
    wire_encode_auth(&auth, f.hello.mac);
    hy_buf_free(&a.out);
    hy_buf_init(&a.out);
    i.out = auth;
    assert_int_equal(deliver(&i, &a), HY_EPROTO);
    assert_int_equal(a.hs.reject_code, WIRE_REJECT_AUTH);
    wire_reader_free(&r);
    side_free(&i);
    side_free(&a);
}

/* A version mismatch and a frame out of order are refused with their own codes. */
static void test_handshake_version_and_order(void **state)
{
    (void)state;
    struct side a;
    side_init(&a, "prod", "n2", "s");
    a.known[0] = "n1";
    peer_hs_start_acceptor(&a.hs, &a.cfg);
    struct wire_frame f = {.type = WIRE_HELLO};
    f.hello = hello_of("prod", "n1", NULL);
    f.hello.version = 2;
    assert_int_equal(peer_hs_on_frame(&a.hs, &f, &a.out), HY_EPROTO);
    assert_int_equal(a.hs.reject_code, WIRE_REJECT_VERSION);
    assert_true(a.out.len > 0);
    side_free(&a);

    side_init(&a, "prod", "n2", "s");
    peer_hs_start_acceptor(&a.hs, &a.cfg);
    struct wire_frame raft = {.type = WIRE_RAFT};
    assert_int_equal(peer_hs_on_frame(&a.hs, &raft, &a.out), HY_EPROTO);
    assert_int_equal(a.hs.reject_code, WIRE_REJECT_PROTOCOL);
    assert_non_null(strstr(a.hs.reason, "unexpected RAFT"));
    side_free(&a);
}

/* HMAC-SHA256 matches RFC 4231 test case 2. */
static void test_hmac_known_answer(void **state)
{
    (void)state;
    static const uint8_t want[WIRE_MAC_BYTES] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                                 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                                 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                                 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    uint8_t mac[WIRE_MAC_BYTES];
    const char *msg = "what do ya want for nothing?";
    peer_auth_mac((const uint8_t *)"Jefe", 4, (const uint8_t *)msg, strlen(msg), mac);
    assert_memory_equal(mac, want, sizeof(want));
}

/* The coalesced heartbeat carries every field of heartbeats and their answers of several
 * groups, in order; an empty one is a valid frame (node liveness only). */
static void test_heartbeat_roundtrip(void **state)
{
    (void)state;
    struct wire_limits l;
    wire_limits_default(&l);
    struct raft_message in[3];
    memset(in, 0, sizeof(in));
    in[0] = (struct raft_message){.type = RAFT_MSG_APPEND,
                                  .from = 1,
                                  .to = UINT64_MAX,
                                  .term = 7,
                                  .prev_index = 40,
                                  .prev_term = 6,
                                  .commit = 39,
                                  .seq = 5,
                                  .sent_ms = 123456789,
                                  .quiesce = 1};
    in[1] = (struct raft_message){.type = RAFT_MSG_APPEND_RESP,
                                  .from = 2,
                                  .to = 1,
                                  .term = 7,
                                  .success = 1,
                                  .index = 40,
                                  .seq = 5,
                                  .sent_ms = 123456789,
                                  .quiesce = 1};
    in[2] = (struct raft_message){
        .type = RAFT_MSG_APPEND_RESP, .from = 3, .to = 1, .term = 7, .index = 12, .hint_term = 4};
    const uint16_t groups[3] = {1, 4095, 0};
    struct hy_buf ents, b;
    hy_buf_init(&ents);
    hy_buf_init(&b);
    for (int i = 0; i < 3; i++) {
        assert_true(wire_heartbeat_fits(&in[i]));
        assert_int_equal(wire_heartbeat_add(&ents, groups[i], &in[i]), HY_OK);
    }
    assert_int_equal(ents.len, 3 * WIRE_HEARTBEAT_ENTRY_BYTES);
    assert_int_equal(wire_encode_heartbeat(&b, ents.data, 3, &l), HY_OK);
    assert_int_equal(wire_encode_heartbeat(&b, NULL, 0, &l), HY_OK);
    struct wire_reader r;
    wire_reader_init(&r, &l);
    struct wire_frame f;
    size_t consumed;
    assert_int_equal(wire_read(&r, b.data, b.len, &consumed, &f), HY_OK);
    assert_int_equal(f.type, WIRE_HEARTBEAT);
    assert_int_equal(f.heartbeat.count, 3);
    for (uint32_t i = 0; i < 3; i++) {
        uint16_t g;
        struct raft_message m;
        wire_heartbeat_get(&f.heartbeat, i, &g, &m);
        assert_int_equal(g, groups[i]);
        assert_raft_equal(&in[i], &m);
    }
    assert_int_equal(wire_read(&r, b.data + consumed, b.len - consumed, &consumed, &f), HY_OK);
    assert_int_equal(f.type, WIRE_HEARTBEAT);
    assert_int_equal(f.heartbeat.count, 0);
    wire_reader_free(&r);
    hy_buf_free(&ents);
    hy_buf_free(&b);
}

/* What is not a heartbeat or its answer never goes in one; a frame with a bad count, a bad
 * entry type, unknown flags or an entry the encoder would refuse is a protocol error. */
static void test_heartbeat_refuses(void **state)
{
    (void)state;
    struct wire_limits l;
    wire_limits_default(&l);
    struct raft_message app = sample_raft(RAFT_MSG_APPEND); /* has entries */
    struct raft_message vote = sample_raft(RAFT_MSG_VOTE);
    struct hy_buf ents, b;
    hy_buf_init(&ents);
    hy_buf_init(&b);
    assert_false(wire_heartbeat_fits(&app));
    assert_false(wire_heartbeat_fits(&vote));
    assert_int_equal(wire_heartbeat_add(&ents, 1, &vote), HY_EINVAL);
    assert_int_equal(ents.len, 0);
    struct raft_message hb = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1, .commit = 1};
    struct raft_message resp_commit = {
        .type = RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 1, .commit = 3};
    assert_false(wire_heartbeat_fits(&resp_commit)); /* an answer carries no commit */
    assert_int_equal(wire_heartbeat_add(&ents, 1, &hb), HY_OK);
    /* (offset in the payload, value, what the reader says) */
    struct {
        size_t off;
        uint8_t val;
        const char *why;
    } bad[] = {
        {0, 2, "count does not match"},
        {4 + 2, RAFT_MSG_VOTE, "of type"},
        {4 + 3, 0x01, "unknown flags"},
        {4 + 4, 0, "not a heartbeat"}, /* from = 0 (its low byte was 1) */
    };
    for (size_t k = 0; k < HY_ARRAY_LEN(bad); k++) {
        hy_buf_reset(&b);
        assert_int_equal(wire_encode_heartbeat(&b, ents.data, 1, &l), HY_OK);
        b.data[WIRE_HEADER_BYTES + bad[k].off] = bad[k].val;
        refresh_crc(b.data);
        expect_error(&b, &l, HY_EPROTO, bad[k].why);
    }
    /* An answer with a commit index: the reader applies the encoder's rule. */
    hy_buf_reset(&b);
    assert_int_equal(wire_encode_heartbeat(&b, ents.data, 1, &l), HY_OK);
    b.data[WIRE_HEADER_BYTES + 4 + 2] = RAFT_MSG_APPEND_RESP; /* commit word (39..) is 1 */
    refresh_crc(b.data);
    expect_error(&b, &l, HY_EPROTO, "not a heartbeat");
    l.frame_bytes_max = WIRE_HEADER_BYTES + 4 + WIRE_HEARTBEAT_ENTRY_BYTES - 1;
    assert_int_equal(wire_encode_heartbeat(&b, ents.data, 1, &l), HY_ETOOBIG);
    hy_buf_free(&ents);
    hy_buf_free(&b);
}

/* ---- WAN links ---------------------------------------------------------------------------- */

/* Encodes w as a frame of `type`, reads it back into *f (its pointers borrow from *b). */
static void wan_roundtrip(uint8_t type, const struct wire_wan *w, struct hy_buf *b,
                          struct wire_frame *f)
{
    struct wire_limits l;
    wire_limits_default(&l);
    assert_int_equal(wire_encode_wan(b, type, w, &l), HY_OK);
    struct wire_reader r;
    wire_reader_init(&r, NULL);
    read_one(&r, b, f);
    assert_int_equal(f->type, type);
    assert_int_equal(f->wan.req_id, w->req_id);
    wire_reader_free(&r);
}

/* WAN_APPLY, WAN_DEMOTE, WAN_PARTS and WAN_REPLY carry their fields back unchanged; the
 * encoder refuses what the decoder would (a bad name, an unknown status, an unprintable or
 * too long text), leaving out unchanged. */
static void test_wan_frames_roundtrip(void **state)
{
    (void)state;
    struct hy_buf b;
    struct wire_frame f;
    hy_buf_init(&b);
    struct wire_wan apply = {
        .req_id = 7, .slot = 16383, .data = (const uint8_t *)"ba\0tch", .len = 6};
    wan_roundtrip(WIRE_WAN_APPLY, &apply, &b, &f);
    assert_int_equal(f.wan.slot, 16383);
    assert_int_equal(f.wan.len, 6);
    assert_memory_equal(f.wan.data, "ba\0tch", 6);
    hy_buf_reset(&b);
    struct wire_wan demote = {
        .req_id = 8, .epoch = 1ull << 40, .data = (const uint8_t *)"west", .len = 4};
    wan_roundtrip(WIRE_WAN_DEMOTE, &demote, &b, &f);
    assert_true(f.wan.epoch == 1ull << 40);
    assert_memory_equal(f.wan.data, "west", 4);
    hy_buf_reset(&b);
    struct wire_wan parts = {.req_id = UINT64_MAX};
    wan_roundtrip(WIRE_WAN_PARTS, &parts, &b, &f);
    hy_buf_reset(&b);
    struct wire_wan reply = {.req_id = 9,
                             .status = WIRE_WAN_ERROR,
                             .value = -5,
                             .data = (const uint8_t *)"DEMOTED x",
                             .len = 9};
    wan_roundtrip(WIRE_WAN_REPLY, &reply, &b, &f);
    assert_int_equal(f.wan.status, WIRE_WAN_ERROR);
    assert_true(f.wan.value == -5);
    assert_memory_equal(f.wan.data, "DEMOTED x", 9);
    hy_buf_reset(&b);

    struct wire_limits l;
    wire_limits_default(&l);
    struct wire_wan bad = demote;
    bad.data = (const uint8_t *)"a b";
    bad.len = 3;
    assert_int_equal(wire_encode_wan(&b, WIRE_WAN_DEMOTE, &bad, &l), HY_EINVAL);
    bad = reply;
    bad.status = 3;
    assert_int_equal(wire_encode_wan(&b, WIRE_WAN_REPLY, &bad, &l), HY_EINVAL);
    bad = reply;
    bad.data = (const uint8_t *)"a\nb";
    bad.len = 3;
    assert_int_equal(wire_encode_wan(&b, WIRE_WAN_REPLY, &bad, &l), HY_EINVAL);
    char big[WIRE_REASON_MAX + 1];
    memset(big, 'x', sizeof(big));
    bad.data = (const uint8_t *)big;
    bad.len = sizeof(big);
    assert_int_equal(wire_encode_wan(&b, WIRE_WAN_REPLY, &bad, &l), HY_EINVAL);
    l.frame_bytes_max = 64;
    bad = apply;
    bad.data = (const uint8_t *)big;
    bad.len = 64;
    assert_int_equal(wire_encode_wan(&b, WIRE_WAN_APPLY, &bad, &l), HY_ETOOBIG);
    assert_int_equal(b.len, 0);
    hy_buf_free(&b);
}

/* Runs a WAN link's handshake (source i, target a) to its end. */
static void run_wan_handshake(struct side *i, struct side *a, const char *link, int *rc_i,
                              int *rc_a)
{
    peer_hs_start_wan(&i->hs, &i->cfg, link, &i->out);
    run_started(i, a, rc_i, rc_a);
}

/* A link of cluster east that holds west's secret is admitted by a west node that does not
 * know it as a member (no known_cb entry): both sides learn the other's names. */
static void test_wan_handshake_accepts(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "east", "east", "west-secret");
    side_init(&a, "west", "w1", "west-secret");
    int rc_i, rc_a;
    run_wan_handshake(&i, &a, "dr", &rc_i, &rc_a);
    assert_int_equal(rc_i, HY_OK);
    assert_int_equal(rc_a, HY_OK);
    assert_true(a.hs.wan && i.hs.wan);
    assert_string_equal(a.hs.peer, "east");
    assert_string_equal(a.hs.link, "dr");
    assert_string_equal(i.hs.peer, "w1");
    assert_string_equal(i.hs.target, "west");
    side_free(&i);
    side_free(&a);
}

/* A link with another secret (east's own, say) is refused by the source itself (the target's
 * proof fails: nothing is sent after it) and the target learns why; a node that takes no link
 * refuses it; a member's secret proof is no link's (other labels). */
static void test_wan_handshake_refuses(void **state)
{
    (void)state;
    struct side i, a;
    side_init(&i, "east", "east", "east-secret");
    side_init(&a, "west", "w1", "west-secret");
    int rc_i, rc_a;
    run_wan_handshake(&i, &a, "dr", &rc_i, &rc_a);
    assert_int_equal(rc_i, HY_EPROTO);
    assert_int_equal(rc_a, HY_EPROTO);
    expect_refused(&i, &a, WIRE_REJECT_AUTH, "did not prove the link's secret");
    side_free(&i);
    side_free(&a);

    side_init(&i, "east", "east", "s");
    side_init(&a, "west", "w1", "s");
    a.cfg.wan_ok = 0;
    run_wan_handshake(&i, &a, "dr", &rc_i, &rc_a);
    assert_int_equal(rc_a, HY_EPROTO);
    expect_refused(&a, &i, WIRE_REJECT_PROTOCOL, "takes no WAN link");
    side_free(&i);
    side_free(&a);

    struct hy_buf member, link;
    hy_buf_init(&member);
    hy_buf_init(&link);
    wire_auth_transcript(&member, WIRE_AUTH_BY_INITIATOR, "west", "east", "w1", nonce_a, nonce_a);
    wire_auth_transcript(&link, WIRE_AUTH_WAN_BY_SOURCE, "west", "east", "w1", nonce_a, nonce_a);
    assert_true(member.len != link.len || memcmp(member.data, link.data, link.len) != 0);
    hy_buf_free(&member);
    hy_buf_free(&link);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_challenge_roundtrip),
        cmocka_unit_test(test_hello_refuses_bad_names),
        cmocka_unit_test(test_small_frames_roundtrip),
        cmocka_unit_test(test_raft_roundtrip_every_type),
        cmocka_unit_test(test_raft_encode_refuses),
        cmocka_unit_test(test_partial_reads_byte_by_byte),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_bad_crc),
        cmocka_unit_test(test_oversize_length),
        cmocka_unit_test(test_truncated_payloads),
        cmocka_unit_test(test_bad_reject_and_names),
        cmocka_unit_test(test_raft_counts_inconsistent),
        cmocka_unit_test(test_heartbeat_roundtrip),
        cmocka_unit_test(test_heartbeat_refuses),
        cmocka_unit_test(test_handshake_accepts),
        cmocka_unit_test(test_handshake_wrong_cluster),
        cmocka_unit_test(test_handshake_wrong_secret),
        cmocka_unit_test(test_handshake_unknown_node),
        cmocka_unit_test(test_handshake_replayed_auth),
        cmocka_unit_test(test_handshake_reflected_mac),
        cmocka_unit_test(test_handshake_version_and_order),
        cmocka_unit_test(test_hmac_known_answer),
        cmocka_unit_test(test_wan_frames_roundtrip),
        cmocka_unit_test(test_wan_handshake_accepts),
        cmocka_unit_test(test_wan_handshake_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
