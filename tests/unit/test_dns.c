/* Unit tests for src/proto/dns (the SRV records of a DNS reply): the fuzz corpus's replies,
 * read record by record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "proto/dns.h"

static size_t load(const char *name, uint8_t *buf, size_t cap)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/fuzz/corpus/fuzz_dns/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Three records come back sorted by priority, then by weight (highest first), with their
 * names expanded; a small cap keeps the best ones. */
static void test_srv_sorted(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t len = load("srv-three", buf, sizeof(buf)), count;
    struct dns_srv out[4];
    assert_int_equal(dns_srv_parse(buf, len, out, 4, &count), HY_OK);
    assert_int_equal(count, 3);
    assert_string_equal(out[0].target, "m2.hy.test");
    assert_int_equal(out[0].port, 17380);
    assert_string_equal(out[1].target, "m3.hy.test");
    assert_string_equal(out[2].target, "m1.hy.test");
    assert_int_equal(out[2].port, 17379);
    assert_int_equal(dns_srv_parse(buf, len, out, 2, &count), HY_OK);
    assert_int_equal(count, 2);
    assert_string_equal(out[1].target, "m3.hy.test");
}

/* Compression pointers are followed; loops, truncation, error replies and targets that are
 * not host names are refused or skipped. */
static void test_srv_refusals(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct dns_srv out[4];
    size_t count;
    size_t len = load("srv-compressed", buf, sizeof(buf));
    assert_int_equal(dns_srv_parse(buf, len, out, 4, &count), HY_OK);
    assert_int_equal(count, 1);
    assert_string_equal(out[0].target, "m9._halyard._tcp.hy.test");
    len = load("pointer-loop", buf, sizeof(buf));
    assert_int_equal(dns_srv_parse(buf, len, out, 4, &count), HY_EPROTO);
    assert_int_equal(count, 0);
    len = load("truncated", buf, sizeof(buf));
    assert_int_equal(dns_srv_parse(buf, len, out, 4, &count), HY_EPROTO);
    len = load("nxdomain", buf, sizeof(buf));
    assert_int_equal(dns_srv_parse(buf, len, out, 4, &count), HY_EPROTO);
    len = load("bad-chars", buf, sizeof(buf));
    assert_int_equal(dns_srv_parse(buf, len, out, 4, &count), HY_OK);
    assert_int_equal(count, 0);
    len = load("a-only", buf, sizeof(buf));
    assert_int_equal(dns_srv_parse(buf, len, out, 4, &count), HY_OK);
    assert_int_equal(count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srv_sorted),
        cmocka_unit_test(test_srv_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
