/* Unit tests for src/io/config_file.c: the YAML loader and its FILE:LINE error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/config_file.h"
#include "node/config.h"

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/hy-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

static int load(struct hy_config *cfg, const char *text, char *err, size_t cap)
{
    write_file(text);
    int rc = config_load_file(cfg, path, err, cap);
    unlink(path);
    return rc;
}

/* A valid file sets every key it names, including memory units and a bootstrap list. */
static void test_valid_file(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[512] = "";
    config_init(&cfg);
    int rc = load(&cfg,
                  "# halyard\nport: 7400\nmaxmemory: 10mb\nmaxmemory-policy: allkeys-lru\n"
                  "bootstrap:\n  - n1@127.0.0.1:17379\n  - n2@127.0.0.1:17380\n",
                  err, sizeof(err));
    assert_int_equal(rc, HY_OK);
    assert_int_equal(cfg.port, 7400);
    assert_int_equal(cfg.maxmemory, 10 * 1024 * 1024);
    assert_int_equal(cfg.maxmemory_policy, 1);
    assert_string_equal(cfg.bootstrap, "n1@127.0.0.1:17379,n2@127.0.0.1:17380");
    config_free(&cfg);
}

/* An unknown setting names the file and its line. */
static void test_unknown_key_has_line(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[512] = "";
    config_init(&cfg);
    assert_int_equal(load(&cfg, "port: 7400\n\nfrobnicate: yes\n", err, sizeof(err)), HY_ECONFIG);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ":3: unknown setting 'frobnicate'"));
    config_free(&cfg);
}

/* A bad value says which setting and why. */
static void test_bad_value_has_reason(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[512] = "";
    config_init(&cfg);
    assert_int_equal(load(&cfg, "port: 99999\n", err, sizeof(err)), HY_ECONFIG);
    assert_non_null(strstr(err, ":1: invalid value for 'port': argument must be between"));
    config_free(&cfg);
}

/* Broken YAML and a non-mapping document are refused with a line number. */
static void test_broken_yaml(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[512] = "";
    config_init(&cfg);
    assert_int_equal(load(&cfg, "port: [7400\n", err, sizeof(err)), HY_ECONFIG);
    assert_non_null(strstr(err, "invalid YAML"));
    assert_int_equal(load(&cfg, "- a\n- b\n", err, sizeof(err)), HY_ECONFIG);
    assert_non_null(strstr(err, ":1: expected a mapping"));
    assert_int_equal(load(&cfg, "port:\n  nested: 1\n", err, sizeof(err)), HY_ECONFIG);
    assert_non_null(strstr(err, ":2: expected a value"));
    config_free(&cfg);
}

/* An empty file is a valid (empty) configuration; a missing file is an error. */
static void test_empty_and_missing(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[512] = "";
    config_init(&cfg);
    assert_int_equal(load(&cfg, "", err, sizeof(err)), HY_OK);
    assert_int_equal(cfg.port, 7379);
    assert_int_equal(config_load_file(&cfg, "/nonexistent/halyard.yaml", err, sizeof(err)),
                     HY_ECONFIG);
    assert_non_null(strstr(err, "cannot open"));
    config_free(&cfg);
}

/* A setting given twice is an error at its second line, naming the first. */
static void test_duplicate_key(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[512] = "";
    config_init(&cfg);
    assert_int_equal(load(&cfg, "port: 7400\nhz: 10\nport: 7401\n", err, sizeof(err)), HY_ECONFIG);
    assert_non_null(strstr(err, ":3: duplicate setting 'port' (first at line 1)"));
    config_free(&cfg);
}

/* A line indented by mistake is reported at its own line, not at the setting above it. */
static void test_misindented_line_reported_at_its_line(void **state)
{
    (void)state;
    static const char *const files[] = {
        "port: 7400\n  data-dir: dd\nhz: 10\n",                    /* folded into port */
        "port: 7400\nhz: 10\n    maxmemory-policy: allkeys-lru\n", /* folded into hz */
        "bootstrap:\n  - a@b:10001\n   - c@d:10002\n",             /* folded into a list item */
    };
    static const char *const want[] = {":2: this line is indented", ":3: this line is indented",
                                       ":3: this line is indented"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct hy_config cfg;
        char err[512] = "";
        config_init(&cfg);
        assert_int_equal(load(&cfg, files[i], err, sizeof(err)), HY_ECONFIG);
        if (strstr(err, want[i]) == NULL) {
            fail_msg("file %zu: got '%s'", i, err);
        }
        config_free(&cfg);
    }
    struct hy_config cfg; /* a quoted value may span lines on purpose */
    char err[512] = "";
    config_init(&cfg);
    assert_int_equal(load(&cfg, "cluster-name: \"a\n  b\"\n", err, sizeof(err)), HY_OK);
    config_free(&cfg);
}

/* Settings valid one by one but impossible together are refused, blaming the one to change,
 * whose file line the loader kept. */
static void test_impossible_combinations(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[512] = "";
    int blame;
    config_init(&cfg);
    assert_int_equal(config_check(&cfg, err, sizeof(err), &blame), HY_OK); /* the defaults */
    assert_int_equal(
        load(&cfg, "port: 7400\nelection-timeout-ms: 300\nheartbeat-ms: 150\n", err, sizeof(err)),
        HY_OK);
    assert_int_equal(config_check(&cfg, err, sizeof(err), &blame), HY_ECONFIG);
    assert_int_equal(blame, config_index("heartbeat-ms"));
    assert_int_equal(cfg.file_line[blame], 3);
    assert_non_null(strstr(err, "below half of election-timeout-ms"));
    cfg.heartbeat_ms = 149;
    assert_int_equal(config_check(&cfg, err, sizeof(err), &blame), HY_OK);
    cfg.peer_port = cfg.port;
    assert_int_equal(config_check(&cfg, err, sizeof(err), &blame), HY_ECONFIG);
    assert_int_equal(blame, config_index("peer-port"));
    cfg.peer_port = cfg.port + 10000;
    assert_int_equal(config_set(&cfg, "join", "127.0.0.1:17379", 0, err), HY_OK);
    assert_int_equal(config_set(&cfg, "bootstrap", "n1@127.0.0.1:17380", 0, err), HY_OK);
    assert_int_equal(config_check(&cfg, err, sizeof(err), &blame), HY_ECONFIG);
    assert_int_equal(blame, config_index("join"));
    config_free(&cfg);
}

/* zone and rack: from the file, up to 32 printable characters without spaces, or empty. */
static void test_zone_and_rack(void **state)
{
    (void)state;
    struct hy_config cfg;
    char err[256];
    config_init(&cfg);
    assert_int_equal(load(&cfg, "zone: eu-west-1a\nrack: r12\n", err, sizeof(err)), HY_OK);
    assert_string_equal(cfg.zone, "eu-west-1a");
    assert_string_equal(cfg.rack, "r12");
    assert_int_equal(config_set(&cfg, "zone", "eu west", 0, err), HY_EINVAL);
    assert_int_equal(config_set(&cfg, "rack", "r\x01", 0, err), HY_EINVAL);
    assert_int_equal(config_set(&cfg, "zone", "abcdefghijabcdefghijabcdefghijabc", 0, err),
                     HY_EINVAL);
    assert_string_equal(cfg.zone, "eu-west-1a"); /* a refused value changes nothing */
    assert_int_equal(config_set(&cfg, "zone", "abcdefghijabcdefghijabcdefghijab", 0, err), HY_OK);
    assert_int_equal(config_set(&cfg, "rack", "", 0, err), HY_OK);
    config_free(&cfg);
}

/* CONFIG REWRITE: changed settings in place (a list's lines too), new ones appended, comments
 * and other lines kept, a value with quotes and a control byte reads back exactly, a secret
 * is not written; the rewritten file loads to the running values. */
static void test_rewrite(void **state)
{
    (void)state;
    struct hy_config cfg, back;
    char err[512] = "";
    config_init(&cfg);
    write_file("# halyard\nport: 7400   # clients\nbootstrap:\n  - n1@127.0.0.1:17379\n"
               "  - n2@127.0.0.1:17380\nmaxmemory: 10mb\n# end\n");
    assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)), HY_OK);
    config_derive(&cfg);
    assert_int_equal(config_set(&cfg, "bootstrap", "n9@127.0.0.1:1", 0, err), HY_OK);
    assert_int_equal(config_set(&cfg, "maxmemory-policy", "allkeys-lru", 0, err), HY_OK);
    assert_int_equal(config_set(&cfg, "cluster-name", "a \"b\\c\x01", 0, err), HY_OK);
    assert_int_equal(config_set(&cfg, "requirepass", "s3cret", 0, err), HY_OK);
    int rrc = config_rewrite_file(&cfg, err, sizeof(err));
    if (rrc != HY_OK) {
        fprintf(stderr, "rewrite: %s\n", err);
    }
    assert_int_equal(rrc, HY_OK);
    FILE *f = fopen(path, "r");
    char text[2048];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
    assert_non_null(strstr(text, "# halyard\nport: 7400   # clients\n"
                                 "bootstrap: \"n9@127.0.0.1:1\"\nmaxmemory: 10mb\n# end\n"));
    assert_null(strstr(text, "n2@"));
    assert_null(strstr(text, "s3cret"));
    assert_non_null(strstr(text, "maxmemory-policy: \"allkeys-lru\"\n"));
    config_init(&back);
    assert_int_equal(config_load_file(&back, path, err, sizeof(err)), HY_OK);
    assert_string_equal(back.bootstrap, "n9@127.0.0.1:1");
    assert_string_equal(back.cluster_name, "a \"b\\c\x01");
    assert_int_equal(back.maxmemory_policy, cfg.maxmemory_policy);
    config_free(&back);
    unlink(path);
    /* No file: Redis's reason. */
    cfg.config_file[0] = 0;
    assert_int_not_equal(config_rewrite_file(&cfg, err, sizeof(err)), HY_OK);
    assert_string_equal(err, "The server is running without a config file");
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_unknown_key_has_line),
        cmocka_unit_test(test_bad_value_has_reason),
        cmocka_unit_test(test_broken_yaml),
        cmocka_unit_test(test_empty_and_missing),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_misindented_line_reported_at_its_line),
        cmocka_unit_test(test_impossible_combinations),
        cmocka_unit_test(test_zone_and_rack),
        cmocka_unit_test(test_rewrite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
