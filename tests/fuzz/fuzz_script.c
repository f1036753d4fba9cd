/*
 * fuzz_script.c - libFuzzer target for the Lua engine (node/script.c): the sandbox and the
 * conversions between RESP replies and Lua values, which face untrusted scripts and arbitrary
 * replies.
 *
 * Input: a split byte s, then the script body (s bytes, or all that is left) and the bytes
 * every redis.call answers (the rest; an invalid reply must be refused, not trusted). The
 * script runs with a small step and memory budget; its reply must be exactly one complete
 * RESP value. The same body is then read as a function library (FUNCTION LOAD), which must
 * answer a library or one error. Then a canary script runs in the thread's long-lived engine,
 * where the input ran: it must answer what it answers in a fresh state (the input left
 * nothing behind that a later script, on a replica that never ran it, would not see).
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

/* Looks for what a script could leave in the engine: globals, the string metatable, the
 * libraries' fields, cjson's settings, math.random's state. */
static const char canary[] =
    "local names = {'x', 'a', 'b', 't', 'f', 'k', 'v', 's', 'leak', 'KEYS2'} local out = {} "
    "for i, n in ipairs(names) do out[#out + 1] = tostring(pcall(function() return _G[n] end)) "
    "end "
    "out[#out + 1] = ('abc'):upper() .. tostring(getmetatable('').__index == string) "
    "out[#out + 1] = cjson.encode({{{1}}, 1.5, 'x'}) "
    "out[#out + 1] = tostring(math.random(1000)) "
    "for _, lib in ipairs({string, table, math, redis, cjson, bit, cmsgpack, struct, coroutine}) "
    "do local n = 0 for _ in pairs(lib) do n = n + 1 end out[#out + 1] = tostring(n) end "
    "out[#out + 1] = type(setmetatable) .. type(loadstring) .. type(getfenv) .. #KEYS .. #ARGV "
    "return table.concat(out, ',')";

static void canary_run(int fresh, struct hy_buf *out)
{
    struct script_env env = {.steps_max = 200000, .fresh_state = fresh};
    struct resp_arg keys[1] = {{(const uint8_t *)"k", 1}};
    struct resp_writer w = {out, 2};
    (void)script_run(&env, (const uint8_t *)canary, sizeof(canary) - 1, keys, 1, NULL, 0, &w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hy_buf expected;
    if (expected.len == 0) {
        canary_run(1, &expected);
    }
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
    struct hy_buf seen;
    hy_buf_init(&seen);
    canary_run(0, &seen);
    FUZZ_CHECK(seen.len == expected.len && memcmp(seen.data, expected.data, seen.len) == 0);
    hy_buf_free(&seen);
    return 0;
}
