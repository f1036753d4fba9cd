/* Unit tests for src/node/quorum (split-brain protection rules: parsing and matching) and the
 * quorum-rules setting's validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/config.h"
#include "node/quorum.h"

static int applies(const struct quorum_rule *r, unsigned kind, const char *key)
{
    return quorum_rule_applies(r, kind, (const uint8_t *)key, key ? strlen(key) : 0);
}

/* Every part of NAME:MIN:TYPE[:PATTERN] is read; the pattern defaults to every key and may
 * hold colons; spaces around the commas of a YAML sequence are ignored. */
static void test_parse(void **state)
{
    (void)state;
    struct quorum_rules q;
    char err[160];
    assert_true(quorum_rules_parse("", &q, err, sizeof(err)));
    assert_int_equal(q.count, 0);
    assert_true(quorum_rules_parse("writes:2:write, users:3:read-write:user:*,r:1:READ", &q, err,
                                   sizeof(err)));
    assert_int_equal(q.count, 3);
    assert_string_equal(q.rule[0].name, "writes");
    assert_int_equal(q.rule[0].min_members, 2);
    assert_int_equal(q.rule[0].type, QUORUM_WRITE);
    assert_string_equal(q.rule[0].pattern, "*");
    assert_string_equal(q.rule[1].name, "users");
    assert_int_equal(q.rule[1].type, QUORUM_READ_WRITE);
    assert_string_equal(q.rule[1].pattern, "user:*");
    assert_int_equal(q.rule[2].type, QUORUM_READ);
    assert_string_equal(quorum_type_name(q.rule[1].type), "read-write");
}

/* Malformed rules are refused with a reason, and leave no rule behind. */
static void test_parse_refuses(void **state)
{
    (void)state;
    static const char *bad[] = {
        "w:2",         "w:x:write",  "w:0:write",          "w:2:both",     ":2:write",
        "a b:2:write", "w:2:write:", "w:2:write,w:3:read", "w:1001:write",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct quorum_rules q;
        char err[160] = "";
        assert_false(quorum_rules_parse(bad[i], &q, err, sizeof(err)));
        assert_int_equal(q.count, 0);
        assert_true(strlen(err) > 0);
    }
    struct quorum_rules q;
    char err[160], many[1024] = "";
    for (int i = 0; i <= QUORUM_RULES_MAX; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%sr%d:1:read", i ? "," : "", i);
        strcat(many, one);
    }
    assert_false(quorum_rules_parse(many, &q, err, sizeof(err)));
}

/* A rule covers commands of its type, on keys its pattern matches; a command without keys only
 * falls under an all-keys rule. */
static void test_applies(void **state)
{
    (void)state;
    struct quorum_rules q;
    char err[160];
    assert_true(
        quorum_rules_parse("w:2:write,u:3:read:user:*,rw:2:read-write", &q, err, sizeof(err)));
    assert_true(applies(&q.rule[0], QUORUM_WRITE, "k"));
    assert_true(applies(&q.rule[0], QUORUM_WRITE, NULL));
    assert_false(applies(&q.rule[0], QUORUM_READ, "k"));
    assert_true(applies(&q.rule[1], QUORUM_READ, "user:1"));
    assert_false(applies(&q.rule[1], QUORUM_READ, "order:1"));
    assert_false(applies(&q.rule[1], QUORUM_READ, NULL));
    assert_false(applies(&q.rule[1], QUORUM_WRITE, "user:1"));
    assert_true(applies(&q.rule[2], QUORUM_READ, "x"));
    assert_true(applies(&q.rule[2], QUORUM_WRITE, "x"));
}

/* The setting goes through the parser wherever it is set from (flags, YAML, CONFIG SET). */
static void test_setting_validated(void **state)
{
    (void)state;
    struct hy_config cfg;
    config_init(&cfg);
    char err[160];
    assert_int_equal(config_set(&cfg, "quorum-rules", "w:2:write", 1, err), HY_OK);
    assert_string_equal(cfg.quorum_rules, "w:2:write");
    assert_int_equal(config_set(&cfg, "quorum-rules", "w:2:nope", 1, err), HY_EINVAL);
    assert_non_null(strstr(err, "TYPE"));
    assert_string_equal(cfg.quorum_rules, "w:2:write");
    assert_int_equal(config_set(&cfg, "quorum-rules", "", 1, err), HY_OK);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_applies),
        cmocka_unit_test(test_setting_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
