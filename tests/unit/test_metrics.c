/* Unit tests for src/common/metrics (histograms, Prometheus text) and JSON strings (buf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/metrics.h"

/* The buffer as a NUL-terminated string (the buffer keeps it). */
static const char *text(struct hy_buf *b)
{
    hy_buf_append_u8(b, '\0');
    b->len--;
    return (const char *)b->data;
}

/* Samples land in the first bucket whose bound is at least the value; ms histograms have no
 * bucket finer than 1 ms, and values past the last bound go to +Inf. */
static void test_histo_buckets(void **state)
{
    (void)state;
    struct hy_histo h;
    hy_histo_init_us(&h);
    hy_histo_record_us(&h, 0);
    hy_histo_record_us(&h, 50);
    hy_histo_record_us(&h, 51);
    hy_histo_record_us(&h, 20000000);
    assert_int_equal(h.bucket[0], 2);
    assert_int_equal(h.bucket[1], 1);
    assert_int_equal(h.bucket[HY_HISTO_BOUNDS], 1);
    assert_int_equal(h.count, 4);
    assert_int_equal(h.sum_us, 20000101);
    hy_histo_init_ms(&h);
    hy_histo_record_ms(&h, 0);
    hy_histo_record_ms(&h, 1);
    hy_histo_record_ms(&h, 2);
    assert_int_equal(hy_histo_bounds_us[h.first], 1000);
    assert_int_equal(h.bucket[h.first], 2);
    assert_int_equal(h.bucket[h.first + 1], 1); /* 2 ms <= 2.5 ms */
    assert_int_equal(h.sum_us, 3000);
    hy_histo_record_ms(&h, UINT64_MAX); /* saturates instead of wrapping */
    assert_int_equal(h.bucket[HY_HISTO_BOUNDS], 1);
}

/* A histogram is written with cumulative buckets, exact decimal bounds, +Inf equal to the
 * count, the sum in seconds, and its labels before le. */
static void test_prom_histo(void **state)
{
    (void)state;
    struct hy_histo h;
    hy_histo_init_ms(&h);
    hy_histo_record_ms(&h, 1);
    hy_histo_record_ms(&h, 3);
    hy_histo_record_ms(&h, 60000);
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "cmd", "set");
    struct hy_buf b;
    hy_buf_init(&b);
    prom_family(&b, "x_seconds", "histogram", "Help text.");
    prom_histo(&b, "x_seconds", &l, &h);
    const char *t = text(&b);
    assert_non_null(strstr(t, "# HELP x_seconds Help text.\n# TYPE x_seconds histogram\n"));
    assert_null(strstr(t, "le=\"0.0005\"")); /* below the ms resolution: not written */
    assert_non_null(strstr(t, "x_seconds_bucket{cmd=\"set\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(t, "x_seconds_bucket{cmd=\"set\",le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(t, "x_seconds_bucket{cmd=\"set\",le=\"0.005\"} 2\n"));
    assert_non_null(strstr(t, "x_seconds_bucket{cmd=\"set\",le=\"10\"} 2\n"));
    assert_non_null(strstr(t, "x_seconds_bucket{cmd=\"set\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "x_seconds_sum{cmd=\"set\"} 60.004\n"));
    assert_non_null(strstr(t, "x_seconds_count{cmd=\"set\"} 3\n"));
    hy_buf_reset(&b);
    prom_histo(&b, "y", NULL, &h);
    assert_non_null(strstr(text(&b), "y_bucket{le=\"+Inf\"} 3\ny_sum 60.004\ny_count 3\n"));
    hy_buf_free(&b);
}

/* Label values escape backslash, double quote and line feed; samples without labels have no
 * braces; seconds are written exactly. */
static void test_prom_samples(void **state)
{
    (void)state;
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "member", "a\"b\\c\nd");
    prom_label(&l, "reason", "x");
    assert_string_equal(l.text, "member=\"a\\\"b\\\\c\\nd\",reason=\"x\"");
    struct hy_buf b;
    hy_buf_init(&b);
    prom_u64(&b, "n_total", NULL, 18446744073709551615ull);
    prom_u64(&b, "m", &l, 0);
    prom_seconds(&b, "s", NULL, 250);
    prom_seconds(&b, "t", NULL, 2000000);
    prom_seconds(&b, "u", NULL, 0);
    assert_string_equal(text(&b), "n_total 18446744073709551615\n"
                                  "m{member=\"a\\\"b\\\\c\\nd\",reason=\"x\"} 0\n"
                                  "s 0.00025\nt 2\nu 0\n");
    hy_buf_free(&b);
}

/* JSON strings escape quotes, backslashes and control characters, and nothing else. */
static void test_json_str(void **state)
{
    (void)state;
    struct hy_buf b;
    hy_buf_init(&b);
    hy_buf_append_json_str(&b, "a\"b\\c\n\x01 é");
    assert_string_equal(text(&b), "\"a\\\"b\\\\c\\u000a\\u0001 é\"");
    hy_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histo_buckets),
        cmocka_unit_test(test_prom_histo),
        cmocka_unit_test(test_prom_samples),
        cmocka_unit_test(test_json_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
