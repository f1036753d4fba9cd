/*
 * fuzz_script.c - libFuzzer target for the Lua engine (node/script.c): the sandbox and the
 * conversions between RESP replies and Lua values, which face untrusted scripts and arbitrary
 * replies.
 *
 * Input: a split byte s, then the script body (s bytes, or all that is left) and the bytes
 * every redis.call answers (the rest; an invalid reply must be refused, not trusted). The
 * script runs with a small step and memory budget; its reply must be exactly one complete
 * RESP value. The same body is then read as a function library (FUNCTION LOAD), which must
 * answer a library or one error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/buf.h"
#include "node/script.h"
#include "proto/resp.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_reply {
    const uint8_t *p;
    size_t len;
    int calls;
};

static void fuzz_call(void *ctx, size_t argc, const struct resp_arg *argv, int proto,
                      struct hy_buf *reply)
{
    struct fuzz_reply *r = ctx;
    (void)proto;
    FUZZ_CHECK(argc >= 1);
    for (size_t i = 0; i < argc; i++) {
        FUZZ_CHECK(argv[i].ptr != NULL || argv[i].len == 0);
    }
    r->calls++;
    hy_buf_append(reply, r->p, r->len);
}

/* out holds exactly one complete RESP value. */
static void check_one_value(const struct hy_buf *out)
{
    struct resp_limits limits;
    resp_limits_default(&limits);
    limits.nesting_max = 1024;
    struct resp_value v;
    size_t used = 0;
    FUZZ_CHECK(resp_value_parse(&limits, out->data, out->len, &v, &used, NULL) == HY_OK);
    FUZZ_CHECK(used == out->len);
    resp_value_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t split = HY_MIN((size_t)data[0] * 4, size - 1);
    const uint8_t *body = data + 1;
    struct fuzz_reply r = {data + 1 + split, size - 1 - split, 0};
    struct script_env env = {
        .call_cb = fuzz_call, .ctx = &r, .steps_max = 200000, .memory_max = 8u * 1024 * 1024};
    struct resp_arg keys[1] = {{(const uint8_t *)"k", 1}};
    struct resp_arg args[2] = {{(const uint8_t *)"a", 1}, {(const uint8_t *)"2", 1}};
    for (int proto = 2; proto <= 3; proto++) {
        struct hy_buf out;
        hy_buf_init(&out);
        struct resp_writer w = {&out, proto};
        (void)script_run(&env, body, split, keys, 1, args, 2, &w);
        check_one_value(&out);
        hy_buf_free(&out);
    }
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2};
    struct script_library lib;
    if (script_library_parse(body, split, &lib, &w)) {
        FUZZ_CHECK(lib.count > 0 && out.len == 0);
        script_fcall(&env, body, split, lib.funcs[0].name, keys, 1, args, 2, &w);
        script_library_free(&lib);
    }
    check_one_value(&out);
    hy_buf_free(&out);
    return 0;
}
