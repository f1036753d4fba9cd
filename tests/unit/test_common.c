/* Unit tests for src/common: status strings, buffers, PRNG, CRCs, slots, parsing, glob. */
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
#include "common/clock.h"
#include "common/crc.h"
#include "common/log.h"
#include "common/prng.h"
#include "common/status.h"
#include "common/strutil.h"

#define S(lit) (const uint8_t *)(lit), strlen(lit)

/* Every status has a distinct name and a text; out-of-range values do not crash. */
static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(hy_strerror(HY_OK), "ok");
    assert_string_equal(hy_status_name(HY_ECORRUPT), "HY_ECORRUPT");
    assert_string_equal(hy_strerror(-5), "unknown status");
    assert_string_equal(hy_strerror(HY_STATUS_COUNT), "unknown status");
}

/* Buffers grow, keep their contents, and consume from the front. */
static void test_buf(void **state)
{
    (void)state;
    struct hy_buf b;
    hy_buf_init(&b);
    for (int i = 0; i < 1000; i++) {
        hy_buf_printf(&b, "%d,", i);
    }
    assert_true(b.len > 1000);
    assert_memory_equal(b.data, "0,1,2,", 6);
    hy_buf_consume(&b, 2);
    assert_memory_equal(b.data, "1,2,", 4);
    hy_buf_reset(&b);
    hy_buf_append_u64le(&b, 0x0102030405060708ULL);
    assert_int_equal(hy_load_u64le(b.data), 0x0102030405060708ULL);
    hy_buf_free(&b);
}

/* The same seed gives the same sequence; bounded draws stay in range. */
static void test_prng(void **state)
{
    (void)state;
    struct hy_prng a, b;
    hy_prng_seed(&a, 42);
    hy_prng_seed(&b, 42);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(hy_prng_next(&a), hy_prng_next(&b));
    }
    for (int i = 0; i < 1000; i++) {
        uint64_t v = hy_prng_range(&a, 10, 20);
        assert_true(v >= 10 && v <= 20);
    }
}

/* CRC16 and slots match Redis Cluster's published values; CRC32C and CRC-64 match their check
 * values. */
static void test_crc(void **state)
{
    (void)state;
    assert_int_equal(hy_crc16(S("123456789")), 0x31C3);
    assert_int_equal(hy_key_slot(S("foo")), 12182);
    assert_int_equal(hy_key_slot(S("{user1000}.following")), hy_key_slot(S("user1000")));
    assert_int_equal(hy_key_slot(S("foo{}{bar}")), hy_crc16(S("foo{}{bar}")) & 16383);
    assert_int_equal(hy_key_slot(S("foo{{bar}}zap")), hy_crc16(S("{bar")) & 16383);
    assert_int_equal(hy_crc32c(0, S("123456789")), 0xE3069283u);
    /* Incremental use equals one pass, and odd lengths take the byte path. */
    uint32_t c = hy_crc32c(0, S("12345"));
    assert_int_equal(hy_crc32c(c, S("6789")), 0xE3069283u);
    /* CRC-64/Jones, Redis's DUMP checksum: its check value, in one pass and in two. */
    assert_true(hy_crc64(0, S("123456789")) == 0xe9c6d914c4b8d9caull);
    assert_true(hy_crc64(hy_crc64(0, S("1234")), S("56789")) == 0xe9c6d914c4b8d9caull);
}

/* The table-driven CRC16 equals the bitwise definition (polynomial 0x1021, MSB first) on
 * every single byte and on random strings of every length up to 64. */
static uint16_t crc16_bitwise(const uint8_t *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)buf[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

static void test_crc16_table(void **state)
{
    (void)state;
    uint8_t buf[64];
    for (int b = 0; b < 256; b++) {
        buf[0] = (uint8_t)b;
        assert_int_equal(hy_crc16(buf, 1), crc16_bitwise(buf, 1));
    }
    struct hy_prng p;
    hy_prng_seed(&p, 17);
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)hy_prng_range(&p, 0, sizeof(buf));
        for (size_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)hy_prng_range(&p, 0, 255);
        }
        assert_int_equal(hy_crc16(buf, len), crc16_bitwise(buf, len));
    }
}

/* Integer parsing accepts exactly Redis's canonical forms. */
static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v;
    assert_true(hy_parse_i64(S("0"), &v) && v == 0);
    assert_true(hy_parse_i64(S("-12"), &v) && v == -12);
    assert_true(hy_parse_i64(S("9223372036854775807"), &v) && v == INT64_MAX);
    assert_true(hy_parse_i64(S("-9223372036854775808"), &v) && v == INT64_MIN);
    assert_false(hy_parse_i64(S("9223372036854775808"), &v));
    assert_false(hy_parse_i64(S("01"), &v));
    assert_false(hy_parse_i64(S("-0"), &v));
    assert_false(hy_parse_i64(S("+1"), &v));
    assert_false(hy_parse_i64(S(" 1"), &v));
    assert_false(hy_parse_i64(S("1a"), &v));
    assert_false(hy_parse_i64(S(""), &v));
    assert_false(hy_parse_i64(S("-"), &v));
}

/* Doubles format as INCRBYFLOAT replies do. */
/* hy_format_i64 against snprintf's %lld: the ends, every power of ten and its neighbours,
 * both signs, and a spread of others. */
static void test_format_i64(void **state)
{
    (void)state;
    int64_t vals[200];
    size_t n = 0;
    vals[n++] = 0;
    vals[n++] = INT64_MAX;
    vals[n++] = INT64_MIN;
    vals[n++] = INT64_MIN + 1;
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
        vals[n++] = p * 10 - 1;
        vals[n++] = p * 10;
        vals[n++] = p * 10 + 1;
        vals[n++] = -(p * 10);
        vals[n++] = -(p * 10 - 1);
    }
    for (int64_t x = 7; n < HY_ARRAY_LEN(vals) && x < INT64_MAX / 13; x = x * 13 + 5) {
        vals[n++] = x;
        if (n < HY_ARRAY_LEN(vals)) {
            vals[n++] = -x;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char got[24], want[24];
        size_t len = hy_format_i64(got, vals[i]);
        int wlen = snprintf(want, sizeof(want), "%lld", (long long)vals[i]);
        assert_int_equal(len, (size_t)wlen);
        assert_memory_equal(got, want, len);
    }
    for (int64_t v = -1000; v <= 1000; v++) {
        char got[24], want[24];
        size_t len = hy_format_i64(got, v);
        int wlen = snprintf(want, sizeof(want), "%lld", (long long)v);
        assert_int_equal(len, (size_t)wlen);
        assert_memory_equal(got, want, len);
    }
}

static void test_format_double(void **state)
{
    (void)state;
    char out[5 * 1024];
    long double d;
    assert_true(hy_parse_double(S("10.5"), 0, &d));
    hy_format_long_double(out, sizeof(out), d + 0.1L);
    assert_string_equal(out, "10.6");
    hy_format_long_double(out, sizeof(out), 3.0L);
    assert_string_equal(out, "3");
    hy_format_long_double(out, sizeof(out), 5.0e3L);
    assert_string_equal(out, "5000");
    assert_false(hy_parse_double(S("abc"), 0, &d));
    assert_false(hy_parse_double(S("inf"), 0, &d));
    assert_false(hy_parse_double(S("nan"), 1, &d));
}

/* Glob patterns behave like Redis's stringmatch. */
static void test_glob(void **state)
{
    (void)state;
    assert_true(hy_glob_match(S("*"), S("anything"), 0));
    assert_true(hy_glob_match(S("h?llo"), S("hello"), 0));
    assert_true(hy_glob_match(S("h*llo"), S("heeeello"), 0));
    assert_true(hy_glob_match(S("h[ae]llo"), S("hallo"), 0));
    assert_false(hy_glob_match(S("h[^e]llo"), S("hello"), 0));
    assert_true(hy_glob_match(S("h[a-b]llo"), S("hbllo"), 0));
    assert_true(hy_glob_match(S("a\\*b"), S("a*b"), 0));
    assert_false(hy_glob_match(S("a\\*b"), S("axb"), 0));
    assert_true(hy_glob_match(S("key:*:x"), S("key:1:2:x"), 0));
    assert_false(hy_glob_match(S("a*a*a*a*a*a*a*a*b"), S("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0));
    assert_true(hy_glob_match(S("HELLO"), S("hello"), 1));
}

/* The purge rule: the smallest RSS - used gap seen is the base; a purge is due only when the
 * gap exceeds it by more than 1 MiB + used/16, and an unknown RSS never asks for one. */
static void test_alloc_purge_due(void **state)
{
    (void)state;
    const size_t mib = (size_t)1 << 20;
    size_t base = 0;
    assert_false(hy_alloc_purge_due(2 * mib, 0, &base)); /* RSS unknown */
    assert_int_equal(base, 0);
    assert_false(hy_alloc_purge_due(2 * mib, 10 * mib, &base)); /* the first gap: the base */
    assert_int_equal(base, 8 * mib);
    /* 16 MiB used: 1 MiB + 1 MiB of slack over the 8 MiB base. */
    assert_false(hy_alloc_purge_due(16 * mib, 26 * mib, &base));
    assert_true(hy_alloc_purge_due(16 * mib, 26 * mib + 1, &base));
    assert_int_equal(base, 8 * mib);
    assert_false(hy_alloc_purge_due(16 * mib, 20 * mib, &base)); /* a smaller gap: new base */
    assert_int_equal(base, 4 * mib);
    assert_false(hy_alloc_purge_due(16 * mib, 22 * mib, &base));
    assert_true(hy_alloc_purge_due(16 * mib, 22 * mib + 1, &base));
    assert_false(hy_alloc_purge_due(40 * mib, 30 * mib, &base)); /* RSS under used: gap 0 */
    assert_int_equal(base, 1);
    /* A purge that left 12 MiB over 16 MiB used: that gap is the base, and the same RSS
     * does not ask again; a purge that left less than the base keeps the base. */
    base = 4 * mib;
    assert_true(hy_alloc_purge_due(16 * mib, 30 * mib, &base));
    hy_alloc_purge_done(16 * mib, 28 * mib, &base);
    assert_int_equal(base, 12 * mib);
    assert_false(hy_alloc_purge_due(16 * mib, 28 * mib, &base));
    hy_alloc_purge_done(16 * mib, 17 * mib, &base);
    assert_int_equal(base, 12 * mib);
}

/* The allocation hook fails exactly the Nth allocation and accounting returns to its start. */
static void test_alloc_hook(void **state)
{
    (void)state;
    size_t before = hy_alloc_used_bytes();
    hy_alloc_fail_after(2);
    void *a = hy_malloc(10), *b = hy_malloc(10), *c = hy_malloc(10);
    hy_alloc_fail_after(-1);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_true(hy_alloc_used_bytes() >= before + 20);
    hy_free(a);
    hy_free(b);
    assert_int_equal(hy_alloc_used_bytes(), before);
}

static int log_calls;
static void log_cb(void *ctx, enum hy_log_level level, const char *msg)
{
    (void)ctx;
    (void)level;
    assert_string_equal(msg, "x=1");
    log_calls++;
}

/* The logger drops lines under its level and passes formatted lines to the callback. */
static void test_log(void **state)
{
    (void)state;
    struct hy_log log = {.level = HY_LOG_INFO, .ctx = NULL, .write_cb = log_cb};
    hy_log(&log, HY_LOG_DEBUG, "x=%d", 1);
    hy_log(&log, HY_LOG_WARN, "x=%d", 1);
    assert_int_equal(log_calls, 1);
    assert_int_equal(hy_log_level_parse("warning"), HY_LOG_WARN);
    assert_int_equal(hy_log_level_parse("loud"), -1);
}

/* A JSON log line carries time, level, node, event ("log" with no fields, or a cluster
 * event's type with the event as its fields), pid and the message, each string escaped. */
static void test_log_json(void **state)
{
    (void)state;
    struct hy_buf b;
    hy_buf_init(&b);
    hy_log_format_json(&b, "2026-01-02T03:04:05.678Z", HY_LOG_WARN, "n\"1", 42,
                       "disk \"full\"\n\tnow");
    hy_buf_append_u8(&b, '\0');
    assert_string_equal((const char *)b.data,
                        "{\"time\":\"2026-01-02T03:04:05.678Z\",\"level\":\"warn\","
                        "\"node\":\"n\\\"1\",\"event\":\"log\",\"fields\":{},\"pid\":42,"
                        "\"msg\":\"disk \\\"full\\\"\\u000a\\u0009now\"}");
    hy_buf_reset(&b);
    hy_log_format_json(&b, "t", HY_LOG_INFO, "n1", 7,
                       "event {\"id\":3,\"time\":9,\"type\":\"LEADER_CHANGED\",\"leader\":\"n1\"}");
    hy_buf_append_u8(&b, '\0');
    assert_string_equal(
        (const char *)b.data,
        "{\"time\":\"t\",\"level\":\"info\",\"node\":\"n1\",\"event\":"
        "\"LEADER_CHANGED\",\"fields\":{\"id\":3,\"time\":9,\"type\":"
        "\"LEADER_CHANGED\",\"leader\":\"n1\"},\"pid\":7,\"msg\":\"event "
        "{\\\"id\\\":3,\\\"time\\\":9,\\\"type\\\":\\\"LEADER_CHANGED\\\",\\\"leader\\\":"
        "\\\"n1\\\"}\"}");
    hy_buf_free(&b);
}

/* The node's clock (clock.h): a wall clock stepped back or forward a little is followed by
 * slewing at 0.5%, never by going back or jumping; far ahead, it is joined at once; far behind,
 * the clock still advances at 99.5% of the monotonic clock's pace. */
static void test_clock_follows_the_wall_clock_by_slewing(void **state)
{
    (void)state;
    struct hy_clock c = {0};
    uint64_t wall = 1700000000000ull, mono = 5000;
    assert_int_equal(hy_clock_read(&c, wall, mono), wall);
    for (int i = 0; i < 100; i++) {
        wall += 10;
        mono += 10;
        assert_int_equal(hy_clock_read(&c, wall, mono), wall);
    }
    /* Stepped back 500 ms: never back, 99.5% pace, in step again after 100 s. */
    wall -= 500;
    uint64_t last = c.now_us / 1000;
    uint64_t in_step_at = 0;
    for (uint64_t t = 1; t <= 120000; t++) {
        wall++;
        mono++;
        uint64_t now = hy_clock_read(&c, wall, mono);
        assert_true(now >= last && now <= last + 1);
        last = now;
        if (in_step_at == 0 && now == wall) {
            in_step_at = t;
        }
    }
    assert_true(in_step_at >= 99000 && in_step_at <= 101000);
    assert_int_equal(c.now_us / 1000, wall);
    /* Stepped forward 500 ms: at most 0.5% faster, in step after 100 s. */
    wall += 500;
    last = c.now_us / 1000;
    in_step_at = 0;
    for (uint64_t t = 1; t <= 120000; t++) {
        wall += 2;
        mono += 2;
        uint64_t now = hy_clock_read(&c, wall, mono);
        assert_true(now >= last + 2 && now <= last + 3);
        last = now;
        if (in_step_at == 0 && now == wall) {
            in_step_at = t * 2;
        }
    }
    assert_true(in_step_at >= 99000 && in_step_at <= 101000);
    /* An hour ahead: joined at once. */
    wall += 3600000;
    mono += 1;
    assert_int_equal(hy_clock_read(&c, wall, mono), wall);
    /* An hour behind: still advancing, at least 99.5% of the monotonic pace. */
    wall -= 3600000;
    last = c.now_us / 1000;
    for (int i = 0; i < 1000; i++) {
        wall += 1000;
        mono += 1000;
        uint64_t now = hy_clock_read(&c, wall, mono);
        assert_true(now >= last + 995 && now <= last + 1000);
        last = now;
    }
    /* A monotonic clock read back (another thread's older reading): no time passes. */
    assert_int_equal(hy_clock_read(&c, wall, mono - 50), last);
}

/* Kept in microseconds: a wall clock and a monotonic clock whose milliseconds tick at different
 * moments read the wall clock's millisecond whenever they are in step. In milliseconds, the
 * clock lagged the wall clock by one for 200 ms at a time (a PTTL read 10001 of a 10000 ms
 * expiry just set, from Redis's own tests). */
static void test_clock_in_step_reads_the_wall_clocks_millisecond(void **state)
{
    (void)state;
    struct hy_clock c = {0};
    uint64_t wall = 1700000000000900ull, mono = 5000100; /* 0.9 ms into one, 0.1 into the other */
    assert_int_equal(hy_clock_read_us(&c, wall, mono), wall / 1000);
    for (int i = 0; i < 10000; i++) {
        wall += 37;
        mono += 37;
        assert_int_equal(hy_clock_read_us(&c, wall, mono), wall / 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_prng),
        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_crc16_table),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_format_i64),
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_alloc_hook),
        cmocka_unit_test(test_alloc_purge_due),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_clock_follows_the_wall_clock_by_slewing),
        cmocka_unit_test(test_clock_in_step_reads_the_wall_clocks_millisecond),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
