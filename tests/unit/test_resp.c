/* Unit tests for src/proto/resp: request parser, value parser, writer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/status.h"
#include "proto/resp.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* ---- helpers --------------------------------------------------------------------------------- */

struct req {
    int rc;
    size_t consumed;
    size_t argc;
    const struct resp_arg *argv;
};

static struct req parse(struct resp_request_parser *p, const uint8_t *buf, size_t len)
{
    struct req r;
    r.rc = resp_request_parse(p, buf, len, &r.consumed, &r.argc, &r.argv);
    return r;
}

static void assert_arg(const struct resp_arg *a, const char *want, size_t want_len)
{
    assert_int_equal(a->len, want_len);
    if (want_len > 0) {
        assert_memory_equal(a->ptr, want, want_len);
    }
}

#define ASSERT_ARG(a, lit) assert_arg((a), (lit), sizeof(lit) - 1)

/* Parses `buf` in one call with the given limits and expects a protocol error `reason`. */
static void expect_proto_error(const struct resp_limits *l, const uint8_t *buf, size_t len,
                               const char *reason)
{
    struct resp_request_parser p;
    resp_request_parser_init(&p, l);
    struct req r = parse(&p, buf, len);
    assert_int_equal(r.rc, HY_EPROTO);
    assert_string_equal(p.error, reason);
    assert_int_equal(r.consumed, 0);
    /* The error is sticky: the connection is done, whatever arrives next. */
    r = parse(&p, S("*1\r\n$4\r\nPING\r\n"));
    assert_int_equal(r.rc, HY_EPROTO);
    resp_request_parser_free(&p);
}

#define EXPECT_PROTO_ERROR(l, lit, reason) expect_proto_error((l), S(lit), (reason))

/* Serialises a parse result (status, consumed, args, error) so two runs can be compared. */
static void req_digest(struct hy_buf *d, const struct resp_request_parser *p, const struct req *r)
{
    hy_buf_printf(d, "rc=%d c=%zu n=%zu:", r->rc, r->consumed, r->argc);
    for (size_t i = 0; i < r->argc; i++) {
        hy_buf_printf(d, "%zu/", r->argv[i].len);
        hy_buf_append(d, r->argv[i].ptr, r->argv[i].len);
    }
    if (r->rc == HY_EPROTO) {
        hy_buf_append_str(d, p->error);
    }
}

/* Parses every request in buf[0..len) handed over whole; returns the digest of the results. */
static void parse_whole(const uint8_t *buf, size_t len, struct hy_buf *d)
{
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    size_t off = 0;
    for (;;) {
        struct req r = parse(&p, buf + off, len - off);
        if (r.rc != HY_OK) {
            req_digest(d, &p, &r);
            break;
        }
        req_digest(d, &p, &r);
        off += r.consumed;
    }
    resp_request_parser_free(&p);
}

/* The same, but the bytes arrive one at a time, each time in a freshly allocated buffer of exactly
 * the bytes received (so a read past them, or a stale pointer, shows under ASan). */
static void parse_bytewise(const uint8_t *buf, size_t len, struct hy_buf *d)
{
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    size_t off = 0, avail = 0;
    for (;;) {
        size_t n = avail - off;
        uint8_t *copy = hy_xmalloc(n ? n : 1);
        memcpy(copy, buf + off, n);
        struct req r = parse(&p, copy, n);
        if (r.rc == HY_EAGAIN && avail < len) {
            assert_int_equal(r.consumed, 0);
            hy_free(copy);
            avail++;
            continue;
        }
        req_digest(d, &p, &r);
        hy_free(copy);
        if (r.rc != HY_OK) {
            break;
        }
        off += r.consumed;
    }
    resp_request_parser_free(&p);
}

/* ---- request parser: multibulk --------------------------------------------------------------- */

/* A multibulk request yields its arguments as slices of the input and consumes all of it. */
static void test_multibulk_basic(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    static const uint8_t in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    struct req r = parse(&p, in, sizeof(in) - 1);
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.consumed, sizeof(in) - 1);
    assert_int_equal(r.argc, 3);
    ASSERT_ARG(&r.argv[0], "SET");
    ASSERT_ARG(&r.argv[1], "k");
    ASSERT_ARG(&r.argv[2], "hello");
    assert_ptr_equal(r.argv[2].ptr, in + 24);
    resp_request_parser_free(&p);
}

/* Bulk arguments are binary safe: CR, LF and NUL inside them are data; empty bulks work. */
static void test_multibulk_binary(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    static const uint8_t in[] = "*2\r\n$5\r\na\r\n\0b\r\n$0\r\n\r\n";
    struct req r = parse(&p, in, sizeof(in) - 1);
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 2);
    assert_arg(&r.argv[0], "a\r\n\0b", 5);
    ASSERT_ARG(&r.argv[1], "");
    assert_int_equal(r.consumed, sizeof(in) - 1);
    resp_request_parser_free(&p);
}

/* "*0" and "*-1" (any count <= 0) are skipped as empty requests, as Redis does. */
static void test_multibulk_empty(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    struct req r = parse(&p, S("*0\r\n*1\r\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 4);
    r = parse(&p, S("*-1\r\nPING\r\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 5);
    r = parse(&p, S("PING\r\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 1);
    resp_request_parser_free(&p);
}

/* Several requests in one buffer come out one per call, each consuming exactly its bytes. */
static void test_pipeline(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    static const uint8_t in[] = "*1\r\n$4\r\nPING\r\n"
                                "ECHO hi\r\n"
                                "*0\r\n"
                                "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                                "*1\r\n$4\r\nPI";
    size_t len = sizeof(in) - 1, off = 0;
    struct req r = parse(&p, in + off, len - off);
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 1);
    ASSERT_ARG(&r.argv[0], "PING");
    assert_int_equal(r.consumed, 14);
    off += r.consumed;
    r = parse(&p, in + off, len - off);
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 2);
    ASSERT_ARG(&r.argv[1], "hi");
    off += r.consumed;
    r = parse(&p, in + off, len - off);
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 0);
    off += r.consumed;
    r = parse(&p, in + off, len - off);
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 2);
    ASSERT_ARG(&r.argv[0], "GET");
    ASSERT_ARG(&r.argv[1], "k");
    off += r.consumed;
    r = parse(&p, in + off, len - off);
    assert_int_equal(r.rc, HY_EAGAIN);
    assert_int_equal(r.consumed, 0);
    assert_int_equal(len - off, 10);
    resp_request_parser_free(&p);
}

/* Fed one byte at a time, every request waits (EAGAIN) until complete and then gives exactly the
 * result of a whole-buffer parse, including the error of a bad request. */
static void test_bytewise_resumption(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n",
        "SET \"a b\" 'c' \"\\x41\\n\"\r\nGET a\n",
        "*1\r\n$4\r\nPING\r\n*0\r\n\r\nPING\r\n",
        "*2\r\n$3\r\nGET\r\n$3\r\nabcXY",
        "*1\r\n$x\r\n",
        "PING \"unterminated\r\n",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct hy_buf a, b;
        hy_buf_init(&a);
        hy_buf_init(&b);
        const uint8_t *in = (const uint8_t *)inputs[i];
        parse_whole(in, strlen(inputs[i]), &a);
        parse_bytewise(in, strlen(inputs[i]), &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        hy_buf_free(&a);
        hy_buf_free(&b);
    }
}

/* A large bulk arriving in pieces is not rescanned, and the parser tells the caller how many bytes
 * the request needs so it can reserve room at once. */
static void test_bytes_needed(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    uint8_t in[64 + 1000];
    int h = snprintf((char *)in, 64, "*1\r\n$1000\r\n");
    memset(in + h, 'x', 1000);
    in[h + 1000] = '\r';
    in[h + 1001] = '\n';
    size_t total = (size_t)h + 1002;
    assert_int_equal(resp_request_bytes_needed(&p), 0);
    struct req r = parse(&p, in, (size_t)h + 10);
    assert_int_equal(r.rc, HY_EAGAIN);
    assert_int_equal(resp_request_bytes_needed(&p), total);
    r = parse(&p, in, total - 1);
    assert_int_equal(r.rc, HY_EAGAIN);
    r = parse(&p, in, total);
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argv[0].len, 1000);
    assert_int_equal(resp_request_bytes_needed(&p), 0);
    resp_request_parser_free(&p);
}

/* Once the argument arrays have grown, parsing further requests allocates nothing at all. */
static void test_steady_state_allocates_nothing(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    static const uint8_t in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nSET k v\r\n";
    struct req r = parse(&p, in, sizeof(in) - 1);
    assert_int_equal(r.rc, HY_OK);
    const struct resp_arg *first = r.argv;
    hy_alloc_fail_after(0); /* the next allocation would abort the test */
    for (int i = 0; i < 100; i++) {
        r = parse(&p, in, sizeof(in) - 1);
        assert_int_equal(r.rc, HY_OK);
        assert_ptr_equal(r.argv, first);
        r = parse(&p, in + r.consumed, sizeof(in) - 1 - r.consumed);
        assert_int_equal(r.rc, HY_OK);
        assert_int_equal(r.argc, 3);
    }
    hy_alloc_fail_after(-1);
    resp_request_parser_free(&p);
}

/* A header announcing a million arguments reserves little until the arguments arrive. */
static void test_huge_count_reserves_little(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    struct req r = parse(&p, S("*1000000\r\n$1\r\na\r\n"));
    assert_int_equal(r.rc, HY_EAGAIN);
    assert_true(p.argv_cap <= 1024);
    assert_int_equal(p.argc, 1);
    resp_request_parser_free(&p);
}

/* ---- request parser: inline ------------------------------------------------------------------ */

/* Inline commands split on spaces and tabs; CRLF or a bare LF ends them. */
static void test_inline_plain(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    struct req r = parse(&p, S("  SET\tkey   value \r\nPING\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 3);
    ASSERT_ARG(&r.argv[0], "SET");
    ASSERT_ARG(&r.argv[1], "key");
    ASSERT_ARG(&r.argv[2], "value");
    assert_int_equal(r.consumed, 20);
    r = parse(&p, S("PING\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 1);
    assert_int_equal(r.consumed, 5);
    r = parse(&p, S("PING"));
    assert_int_equal(r.rc, HY_EAGAIN);
    resp_request_parser_free(&p);
}

/* Quotes and escapes decode as in Redis's inline parser (sdssplitargs). */
static void test_inline_quotes(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    struct req r = parse(&p, S("SET \"a b\" 'c' \"\\x41\\x4a\\n\\t\\r\\b\\a\\\\\\\"\\q\" "
                               "'it\\'s' \"\" x\"y z\"\r\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 7);
    ASSERT_ARG(&r.argv[0], "SET");
    ASSERT_ARG(&r.argv[1], "a b");
    ASSERT_ARG(&r.argv[2], "c");
    ASSERT_ARG(&r.argv[3], "AJ\n\t\r\b\a\\\"q");
    ASSERT_ARG(&r.argv[4], "it's");
    ASSERT_ARG(&r.argv[5], "");
    ASSERT_ARG(&r.argv[6], "xy z");
    /* "\x" without two hex digits is just an escaped 'x'; in single quotes \n stays as is. */
    r = parse(&p, S("\"\\xZ1\" '\\n'\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 2);
    ASSERT_ARG(&r.argv[0], "xZ1");
    ASSERT_ARG(&r.argv[1], "\\n");
    resp_request_parser_free(&p);
}

/* Unterminated quotes, or a closing quote glued to more text, are protocol errors. */
static void test_inline_unbalanced(void **state)
{
    (void)state;
    const char *reason = "unbalanced quotes in request";
    EXPECT_PROTO_ERROR(NULL, "SET \"abc\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "SET 'abc\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "SET \"a\"b\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "SET 'a'b\n", reason);
    EXPECT_PROTO_ERROR(NULL, "SET \"a\\\"\n", reason);
}

/* An empty or blank line is a request with no arguments, which the caller ignores. */
static void test_inline_empty(void **state)
{
    (void)state;
    struct resp_request_parser p;
    resp_request_parser_init(&p, NULL);
    struct req r = parse(&p, S("\r\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 2);
    r = parse(&p, S("\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 1);
    r = parse(&p, S(" \t \r\n"));
    assert_int_equal(r.rc, HY_OK);
    assert_int_equal(r.argc, 0);
    assert_int_equal(r.consumed, 5);
    resp_request_parser_free(&p);
}

/* ---- request parser: limits and bad input ---------------------------------------------------- */

/* Bulk lengths above the limit, negative or not canonical decimals are "invalid bulk length". */
static void test_limit_bulk(void **state)
{
    (void)state;
    struct resp_limits l;
    resp_limits_default(&l);
    l.bulk_bytes_max = 10;
    const char *reason = "invalid bulk length";
    EXPECT_PROTO_ERROR(&l, "*1\r\n$11\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$536870913\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$-1\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$x\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$+3\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$03\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$99999999999999999999999\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$3\rx", reason);
    struct resp_request_parser p;
    resp_request_parser_init(&p, &l);
    struct req r = parse(&p, S("*1\r\n$10\r\n0123456789\r\n"));
    assert_int_equal(r.rc, HY_OK);
    resp_request_parser_free(&p);
}

/* Argument counts above the limit or not decimal are "invalid multibulk length". */
static void test_limit_multibulk(void **state)
{
    (void)state;
    struct resp_limits l;
    resp_limits_default(&l);
    l.multibulk_count_max = 2;
    const char *reason = "invalid multibulk length";
    EXPECT_PROTO_ERROR(&l, "*3\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*1048577\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*-\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*abc\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*\r\n", reason);
    EXPECT_PROTO_ERROR(NULL, "*3\rx", reason);
    EXPECT_PROTO_ERROR(&l, "a b c\r\n", reason);
    struct resp_request_parser p;
    resp_request_parser_init(&p, &l);
    struct req r = parse(&p, S("*2\r\n$1\r\na\r\n$1\r\nb\r\n"));
    assert_int_equal(r.rc, HY_OK);
    resp_request_parser_free(&p);
}

/* Inline lines and header lines longer than the inline limit fail, whether or not their end has
 * arrived, with Redis's texts for each. */
static void test_limit_inline(void **state)
{
    (void)state;
    struct resp_limits l;
    resp_limits_default(&l);
    l.inline_bytes_max = 16;
    EXPECT_PROTO_ERROR(&l, "GET 0123456789abc", "too big inline request");
    EXPECT_PROTO_ERROR(&l, "GET 0123456789abc\r\n", "too big inline request");
    EXPECT_PROTO_ERROR(&l, "*00000000000000001", "too big mbulk count string");
    EXPECT_PROTO_ERROR(&l, "*00000000000000001\r\n", "too big mbulk count string");
    EXPECT_PROTO_ERROR(&l, "*1\r\n$00000000000000001", "too big bulk count string");
    struct resp_request_parser p;
    resp_request_parser_init(&p, &l);
    struct req r = parse(&p, S("GET 0123456789a\r\n")); /* the CR counts */
    assert_int_equal(r.rc, HY_OK);
    r = parse(&p, S("GET 0123456789ab"));
    assert_int_equal(r.rc, HY_EAGAIN);
    resp_request_parser_free(&p);
    /* The default inline limit is 64 KiB, as Redis's PROTO_INLINE_MAX_SIZE. */
    struct hy_buf big;
    hy_buf_init(&big);
    for (int i = 0; i < 64 * 1024 + 1; i++) {
        hy_buf_append_u8(&big, 'a');
    }
    expect_proto_error(NULL, big.data, big.len, "too big inline request");
    hy_buf_free(&big);
}

/* A bulk header must start with '$', and bulk data must be followed by CRLF. */
static void test_bad_framing(void **state)
{
    (void)state;
    EXPECT_PROTO_ERROR(NULL, "*1\r\nfoo\r\n", "expected '$', got 'f'");
    EXPECT_PROTO_ERROR(NULL, "*2\r\n$1\r\na\r\n:1\r\n", "expected '$', got ':'");
    EXPECT_PROTO_ERROR(NULL, "*1\r\n\r\n", "expected '$', got ' '");
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$3\r\nfooXY", "expected CRLF after bulk data");
    EXPECT_PROTO_ERROR(NULL, "*1\r\n$3\r\nfoo\n\n", "expected CRLF after bulk data");
}

/* ---- value parser ---------------------------------------------------------------------------- */

static struct resp_value parse_value_ok(const uint8_t *buf, size_t len)
{
    struct resp_value v;
    size_t consumed;
    char err[128] = "";
    int rc = resp_value_parse(NULL, buf, len, &v, &consumed, err);
    if (rc != HY_OK) {
        fail_msg("parse failed (%d): %s", rc, err);
    }
    assert_int_equal(consumed, len);
    return v;
}

#define VALUE_OK(lit) parse_value_ok(S(lit))

static void assert_str(const struct resp_value *v, enum resp_type t, const char *s)
{
    assert_int_equal(v->type, t);
    assert_int_equal(v->len, strlen(s));
    assert_memory_equal(v->str, s, v->len);
}

/* Every RESP2 and RESP3 scalar type decodes to its type and value. */
static void test_value_scalars(void **state)
{
    (void)state;
    struct resp_value v = VALUE_OK("+OK\r\n");
    assert_str(&v, RESP_SIMPLE, "OK");
    v = VALUE_OK("-ERR bad\r\n");
    assert_str(&v, RESP_ERROR, "ERR bad");
    v = VALUE_OK(":-42\r\n");
    assert_int_equal(v.type, RESP_INTEGER);
    assert_int_equal(v.integer, -42);
    v = VALUE_OK(":+7\r\n");
    assert_int_equal(v.integer, 7);
    v = VALUE_OK(":-9223372036854775808\r\n");
    assert_int_equal(v.integer, INT64_MIN);
    v = VALUE_OK("$5\r\na\r\nbc\r\n");
    assert_str(&v, RESP_BULK, "a\r\nbc");
    v = VALUE_OK("$0\r\n\r\n");
    assert_str(&v, RESP_BULK, "");
    v = VALUE_OK("$-1\r\n");
    assert_int_equal(v.type, RESP_NULL);
    v = VALUE_OK("*-1\r\n");
    assert_int_equal(v.type, RESP_NULL);
    v = VALUE_OK("_\r\n");
    assert_int_equal(v.type, RESP_NULL);
    v = VALUE_OK("#t\r\n");
    assert_int_equal(v.type, RESP_BOOLEAN);
    assert_int_equal(v.integer, 1);
    v = VALUE_OK("#f\r\n");
    assert_int_equal(v.integer, 0);
    v = VALUE_OK(",1.5\r\n");
    assert_int_equal(v.type, RESP_DOUBLE);
    assert_true(v.dbl == 1.5);
    assert_str(&v, RESP_DOUBLE, "1.5");
    v = VALUE_OK(",-inf\r\n");
    assert_true(isinf(v.dbl) && v.dbl < 0);
    v = VALUE_OK(",inf\r\n");
    assert_true(isinf(v.dbl) && v.dbl > 0);
    v = VALUE_OK(",nan\r\n");
    assert_true(isnan(v.dbl));
    v = VALUE_OK(",1e10\r\n");
    assert_true(v.dbl == 1e10);
    v = VALUE_OK("(3492890328409238509324850943850943825024385\r\n");
    assert_str(&v, RESP_BIGNUM, "3492890328409238509324850943850943825024385");
    v = VALUE_OK("!21\r\nSYNTAX invalid syntax\r\n");
    assert_str(&v, RESP_BULK_ERROR, "SYNTAX invalid syntax");
    v = VALUE_OK("=15\r\ntxt:Some string\r\n");
    assert_str(&v, RESP_VERBATIM, "txt:Some string");
}

/* Aggregates decode recursively; maps and attributes count pairs and hold 2*count elements. */
static void test_value_aggregates(void **state)
{
    (void)state;
    struct resp_value v = VALUE_OK("*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n%1\r\n+k\r\n~2\r\n#t\r\n,2\r\n");
    assert_int_equal(v.type, RESP_ARRAY);
    assert_int_equal(v.count, 3);
    assert_int_equal(v.elems[0].integer, 1);
    assert_int_equal(v.elems[1].type, RESP_ARRAY);
    assert_int_equal(v.elems[1].count, 2);
    assert_str(&v.elems[1].elems[0], RESP_SIMPLE, "a");
    assert_int_equal(v.elems[1].elems[1].type, RESP_NULL);
    const struct resp_value *m = &v.elems[2];
    assert_int_equal(m->type, RESP_MAP);
    assert_int_equal(m->count, 1);
    assert_str(&m->elems[0], RESP_SIMPLE, "k");
    assert_int_equal(m->elems[1].type, RESP_SET);
    assert_int_equal(m->elems[1].count, 2);
    assert_true(m->elems[1].elems[1].dbl == 2.0);
    resp_value_free(&v);
    assert_null(v.elems);

    v = VALUE_OK(">2\r\n+message\r\n$2\r\nhi\r\n");
    assert_int_equal(v.type, RESP_PUSH);
    assert_int_equal(v.count, 2);
    resp_value_free(&v);
    v = VALUE_OK("|1\r\n+ttl\r\n:3600\r\n");
    assert_int_equal(v.type, RESP_ATTRIBUTE);
    assert_int_equal(v.count, 1);
    assert_int_equal(v.elems[1].integer, 3600);
    resp_value_free(&v);
    /* Inside an aggregate, attributes annotate the next element and are dropped. */
    v = VALUE_OK("*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n|1\r\n+c\r\n*1\r\n:0\r\n:2\r\n");
    assert_int_equal(v.type, RESP_ARRAY);
    assert_int_equal(v.count, 2);
    assert_int_equal(v.elems[0].integer, 1);
    assert_int_equal(v.elems[1].integer, 2);
    resp_value_free(&v);
    v = VALUE_OK("*0\r\n");
    assert_int_equal(v.type, RESP_ARRAY);
    assert_int_equal(v.count, 0);
    assert_null(v.elems);
    v = VALUE_OK("%0\r\n");
    assert_int_equal(v.type, RESP_MAP);
    resp_value_free(&v);
}

/* Only one value is consumed; what follows is left for the next call. */
static void test_value_consumes_one(void **state)
{
    (void)state;
    struct resp_value v;
    size_t consumed;
    int rc = resp_value_parse(NULL, S("+OK\r\n:1\r\n"), &v, &consumed, NULL);
    assert_int_equal(rc, HY_OK);
    assert_int_equal(consumed, 5);
}

/* Aggregates deeper than nesting_max are refused; exactly nesting_max levels are fine. */
static void test_value_nesting(void **state)
{
    (void)state;
    struct resp_limits l;
    resp_limits_default(&l);
    l.nesting_max = 2;
    struct resp_value v;
    size_t consumed;
    char err[128];
    int rc = resp_value_parse(&l, S("*1\r\n%1\r\n:1\r\n:2\r\n"), &v, &consumed, err);
    assert_int_equal(rc, HY_OK);
    resp_value_free(&v);
    rc = resp_value_parse(&l, S("*1\r\n*1\r\n*1\r\n:1\r\n"), &v, &consumed, err);
    assert_int_equal(rc, HY_EPROTO);
    assert_string_equal(err, "too deep nesting");
    /* The default depth stops a deep bomb without exhausting the stack. */
    struct hy_buf deep;
    hy_buf_init(&deep);
    for (int i = 0; i < 100000; i++) {
        hy_buf_append(&deep, "*1\r\n", 4);
    }
    rc = resp_value_parse(NULL, deep.data, deep.len, &v, &consumed, err);
    assert_int_equal(rc, HY_EPROTO);
    assert_string_equal(err, "too deep nesting");
    hy_buf_free(&deep);
}

static void expect_value_error(const struct resp_limits *l, const uint8_t *buf, size_t len,
                               const char *reason)
{
    struct resp_value v;
    size_t consumed = 99;
    char err[128] = "";
    int rc = resp_value_parse(l, buf, len, &v, &consumed, err);
    assert_int_equal(rc, HY_EPROTO);
    assert_string_equal(err, reason);
    assert_int_equal(consumed, 0);
    assert_null(v.elems);
}

#define EXPECT_VALUE_ERROR(l, lit, reason) expect_value_error((l), S(lit), (reason))

/* Malformed values and broken limits are protocol errors with a reason, never a crash. */
static void test_value_errors(void **state)
{
    (void)state;
    struct resp_limits l;
    resp_limits_default(&l);
    l.bulk_bytes_max = 4;
    l.multibulk_count_max = 4;
    EXPECT_VALUE_ERROR(NULL, "@x\r\n", "got '@' as reply type byte");
    EXPECT_VALUE_ERROR(NULL, "#x\r\n", "invalid boolean");
    EXPECT_VALUE_ERROR(NULL, "#tt\r\n", "invalid boolean");
    EXPECT_VALUE_ERROR(NULL, ":1x\r\n", "invalid integer");
    EXPECT_VALUE_ERROR(NULL, ":9223372036854775808\r\n", "invalid integer");
    EXPECT_VALUE_ERROR(NULL, "_x\r\n", "invalid null");
    EXPECT_VALUE_ERROR(NULL, ",abc\r\n", "invalid double");
    EXPECT_VALUE_ERROR(NULL, ",\r\n", "invalid double");
    EXPECT_VALUE_ERROR(NULL, "(12a\r\n", "invalid big number");
    EXPECT_VALUE_ERROR(NULL, "$-2\r\n", "invalid bulk length");
    EXPECT_VALUE_ERROR(NULL, "!-1\r\n", "invalid bulk length");
    EXPECT_VALUE_ERROR(&l, "$5\r\n", "invalid bulk length");
    EXPECT_VALUE_ERROR(NULL, "$3\r\nfooXY", "expected CRLF after bulk data");
    EXPECT_VALUE_ERROR(NULL, "=3\r\nabc\r\n", "invalid verbatim string");
    EXPECT_VALUE_ERROR(NULL, "%-1\r\n", "invalid multibulk length");
    EXPECT_VALUE_ERROR(NULL, "*-2\r\n", "invalid multibulk length");
    EXPECT_VALUE_ERROR(&l, "*5\r\n", "invalid multibulk length");
    EXPECT_VALUE_ERROR(&l, "%3\r\n", "invalid multibulk length");
    EXPECT_VALUE_ERROR(NULL, "+a\nb\r\n", "line feed inside a line");
    EXPECT_VALUE_ERROR(NULL, "+ab\rx", "expected CRLF at end of line");
    /* An error deep inside an aggregate frees what was built so far (checked by ASan). */
    EXPECT_VALUE_ERROR(NULL, "*2\r\n*2\r\n+a\r\n+b\r\n*1\r\n#?\r\n", "invalid boolean");
}

/* Every strict prefix of a valid value is "incomplete", never an error or a wrong value. */
static void test_value_prefixes(void **state)
{
    (void)state;
    static const char in[] = "*4\r\n$3\r\nfoo\r\n%1\r\n+k\r\n,-1.25\r\n~1\r\n(12\r\n"
                             "=8\r\ntxt:abcd\r\n";
    for (size_t n = 0; n < sizeof(in) - 1; n++) {
        struct resp_value v;
        size_t consumed;
        int rc = resp_value_parse(NULL, (const uint8_t *)in, n, &v, &consumed, NULL);
        assert_int_equal(rc, HY_EAGAIN);
        assert_int_equal(consumed, 0);
    }
    struct resp_value v = parse_value_ok((const uint8_t *)in, sizeof(in) - 1);
    assert_int_equal(v.count, 4);
    resp_value_free(&v);
}

/* ---- writer ---------------------------------------------------------------------------------- */

struct wcase {
    struct hy_buf out;
    struct resp_writer w;
};

static void wcase_init(struct wcase *c, int proto)
{
    hy_buf_init(&c->out);
    c->w.out = &c->out;
    c->w.proto = proto;
}

static void assert_out(struct wcase *c, const char *want)
{
    size_t n = strlen(want);
    if (c->out.len != n || memcmp(c->out.data, want, n) != 0) {
        fail_msg("writer gave \"%.*s\", want \"%s\"", (int)c->out.len, (const char *)c->out.data,
                 want);
    }
    hy_buf_reset(&c->out);
}

/* Writes one of each reply with the given protocol; returns the buffer for comparison. */
static void write_each(struct wcase *c)
{
    resp_write_simple(&c->w, "PONG");
    resp_write_error(&c->w, "ERR x");
    resp_write_ok(&c->w);
    resp_write_int(&c->w, -12);
    resp_write_bulk(&c->w, "ab", 2);
    resp_write_bulk_str(&c->w, "");
    resp_write_bulk_i64(&c->w, 9223372036854775807LL);
    resp_write_null(&c->w);
    resp_write_null_array(&c->w);
    resp_write_array(&c->w, 2);
    resp_write_map(&c->w, 2);
    resp_write_set(&c->w, 3);
    resp_write_push(&c->w, 1);
    resp_write_double(&c->w, 1.5);
    resp_write_bool(&c->w, 1);
    resp_write_bool(&c->w, 0);
    resp_write_verbatim(&c->w, "txt", "hi", 2);
}

/* RESP2 clients get RESP3 types degraded exactly as Redis does. */
static void test_writer_resp2(void **state)
{
    (void)state;
    struct wcase c;
    wcase_init(&c, 2);
    write_each(&c);
    assert_out(&c, "+PONG\r\n-ERR x\r\n+OK\r\n:-12\r\n$2\r\nab\r\n$0\r\n\r\n"
                   "$19\r\n9223372036854775807\r\n$-1\r\n*-1\r\n*2\r\n*4\r\n*3\r\n*1\r\n"
                   "$3\r\n1.5\r\n:1\r\n:0\r\n$2\r\nhi\r\n");
    hy_buf_free(&c.out);
}

/* RESP3 clients get the native RESP3 types. */
static void test_writer_resp3(void **state)
{
    (void)state;
    struct wcase c;
    wcase_init(&c, 3);
    write_each(&c);
    assert_out(&c, "+PONG\r\n-ERR x\r\n+OK\r\n:-12\r\n$2\r\nab\r\n$0\r\n\r\n"
                   "$19\r\n9223372036854775807\r\n_\r\n_\r\n*2\r\n%2\r\n~3\r\n>1\r\n"
                   ",1.5\r\n#t\r\n#f\r\n=6\r\ntxt:hi\r\n");
    hy_buf_free(&c.out);
}

/* Doubles print as Redis 7 does (%.17g, inf / -inf / nan), as a bulk string in RESP2. */
static void test_writer_double(void **state)
{
    (void)state;
    struct wcase c;
    wcase_init(&c, 3);
    resp_write_double(&c.w, 0.1);
    assert_out(&c, ",0.10000000000000001\r\n");
    resp_write_double(&c.w, 3.0);
    assert_out(&c, ",3\r\n");
    resp_write_double(&c.w, -0.0);
    assert_out(&c, ",-0\r\n");
    resp_write_double(&c.w, 1e300);
    assert_out(&c, ",1.0000000000000001e+300\r\n");
    resp_write_double(&c.w, INFINITY);
    assert_out(&c, ",inf\r\n");
    resp_write_double(&c.w, -INFINITY);
    assert_out(&c, ",-inf\r\n");
    resp_write_double(&c.w, NAN);
    assert_out(&c, ",nan\r\n");
    c.w.proto = 2;
    resp_write_double(&c.w, -INFINITY);
    assert_out(&c, "$4\r\n-inf\r\n");
    resp_write_double(&c.w, 0.1);
    assert_out(&c, "$19\r\n0.10000000000000001\r\n");
    hy_buf_free(&c.out);
}

/* Status and error lines stay single lines: CR and LF in them become spaces. */
static void test_writer_lines(void **state)
{
    (void)state;
    struct wcase c;
    wcase_init(&c, 2);
    resp_write_error(&c.w, "ERR a\r\nb");
    assert_out(&c, "-ERR a  b\r\n");
    resp_write_simple(&c.w, "x\ny");
    assert_out(&c, "+x y\r\n");
    resp_write_errorf(&c.w, "ERR Protocol error: %s", "invalid bulk length");
    assert_out(&c, "-ERR Protocol error: invalid bulk length\r\n");
    resp_write_errorf(&c.w, "ERR unknown command '%s'", "a\nb");
    assert_out(&c, "-ERR unknown command 'a b'\r\n");
    /* A long formatted error (beyond any small stack buffer) is written whole. */
    char arg[1001];
    memset(arg, 'z', 1000);
    arg[1000] = '\0';
    resp_write_errorf(&c.w, "ERR %s!", arg);
    assert_int_equal(c.out.len, 1 + 4 + 1000 + 1 + 2);
    assert_memory_equal(c.out.data + c.out.len - 3, "!\r\n", 3);
    hy_buf_free(&c.out);
}

/* What the writer produces, the value parser reads back with the same meaning. */
static void test_writer_roundtrip(void **state)
{
    (void)state;
    struct wcase c;
    wcase_init(&c, 3);
    resp_write_map(&c.w, 2);
    resp_write_bulk_str(&c.w, "a");
    resp_write_double(&c.w, -2.5);
    resp_write_bulk_str(&c.w, "b");
    resp_write_set(&c.w, 2);
    resp_write_bool(&c.w, 1);
    resp_write_null(&c.w);
    struct resp_value v = parse_value_ok(c.out.data, c.out.len);
    assert_int_equal(v.type, RESP_MAP);
    assert_int_equal(v.count, 2);
    assert_true(v.elems[1].dbl == -2.5);
    assert_int_equal(v.elems[3].type, RESP_SET);
    assert_int_equal(v.elems[3].elems[0].integer, 1);
    assert_int_equal(v.elems[3].elems[1].type, RESP_NULL);
    resp_value_free(&v);
    hy_buf_free(&c.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_basic),
        cmocka_unit_test(test_multibulk_binary),
        cmocka_unit_test(test_multibulk_empty),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_bytewise_resumption),
        cmocka_unit_test(test_bytes_needed),
        cmocka_unit_test(test_steady_state_allocates_nothing),
        cmocka_unit_test(test_huge_count_reserves_little),
        cmocka_unit_test(test_inline_plain),
        cmocka_unit_test(test_inline_quotes),
        cmocka_unit_test(test_inline_unbalanced),
        cmocka_unit_test(test_inline_empty),
        cmocka_unit_test(test_limit_bulk),
        cmocka_unit_test(test_limit_multibulk),
        cmocka_unit_test(test_limit_inline),
        cmocka_unit_test(test_bad_framing),
        cmocka_unit_test(test_value_scalars),
        cmocka_unit_test(test_value_aggregates),
        cmocka_unit_test(test_value_consumes_one),
        cmocka_unit_test(test_value_nesting),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_value_prefixes),
        cmocka_unit_test(test_writer_resp2),
        cmocka_unit_test(test_writer_resp3),
        cmocka_unit_test(test_writer_double),
        cmocka_unit_test(test_writer_lines),
        cmocka_unit_test(test_writer_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
