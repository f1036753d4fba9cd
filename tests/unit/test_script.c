/* test_script.c - the Lua engine (node/script.h) alone: conversions both ways, the sandbox,
 * the step and memory bounds, and library loading, with a fake redis.call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "node/script.h"
#include "node/script_libs.h"

struct fake {
    const char *reply; /* what every redis.call answers */
    char last[256];    /* the last command, arguments joined by spaces */
};

static void fake_call(void *ctx, size_t argc, const struct resp_arg *argv, int proto,
                      struct hy_buf *reply)
{
    struct fake *f = ctx;
    (void)proto;
    size_t at = 0;
    for (size_t i = 0; i < argc && at + argv[i].len + 2 < sizeof(f->last); i++) {
        memcpy(f->last + at, argv[i].ptr, argv[i].len);
        at += argv[i].len;
        f->last[at++] = ' ';
    }
    f->last[at > 0 ? at - 1 : 0] = '\0';
    hy_buf_append_str(reply, f->reply);
}

/* Runs body in env with KEYS = {"k"}, ARGV = {"a"} and returns the reply text (static). */
static const char *eval_env(const struct script_env *env, const char *body, int proto)
{
    static char text[4096];
    struct resp_arg keys[1] = {{(const uint8_t *)"k", 1}};
    struct resp_arg args[1] = {{(const uint8_t *)"a", 1}};
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, proto};
    (void)script_run(env, (const uint8_t *)body, strlen(body), keys, 1, args, 1, &w);
    snprintf(text, sizeof(text), "%.*s", (int)out.len, (const char *)out.data);
    hy_buf_free(&out);
    return text;
}

static const char *eval(struct fake *f, const char *body, uint64_t steps, int proto)
{
    struct script_env env = {.call_cb = fake_call, .ctx = f, .steps_max = steps};
    return eval_env(&env, body, proto);
}

static void test_lua_to_resp(void **state)
{
    /* Lua values become Redis's replies, in RESP2 and RESP3. */
    (void)state;
    struct fake f = {.reply = "+OK\r\n"};
    assert_string_equal(eval(&f, "return 3.99", 0, 2), ":3\r\n");
    assert_string_equal(eval(&f, "return -2.5", 0, 2), ":-2\r\n");
    assert_string_equal(eval(&f, "return 'x'", 0, 2), "$1\r\nx\r\n");
    assert_string_equal(eval(&f, "return true", 0, 2), ":1\r\n");
    assert_string_equal(eval(&f, "return false", 0, 2), "$-1\r\n");
    assert_string_equal(eval(&f, "return true", 0, 3), "#t\r\n");
    assert_string_equal(eval(&f, "return {1,{2},nil,4}", 0, 2), "*2\r\n:1\r\n*1\r\n:2\r\n");
    assert_string_equal(eval(&f, "return {ok='fine'}", 0, 2), "+fine\r\n");
    assert_string_equal(eval(&f, "return {err='bad\\r\\nthing'}", 0, 2), "-bad  thing\r\n");
    assert_string_equal(eval(&f, "return {double=1.5}", 0, 3), ",1.5\r\n");
    assert_string_equal(eval(&f, "return {KEYS[1], ARGV[1]}", 0, 2),
                        "*2\r\n$1\r\nk\r\n$1\r\na\r\n");
    /* A table that holds itself ends in an error element, not a crash. */
    const char *deep = eval(&f, "local a = {} a[1] = a return a", 0, 2);
    assert_non_null(strstr(deep, "-ERR reached lua stack limit\r\n"));
}

static void test_resp_to_lua(void **state)
{
    /* redis.call's replies become Lua values; arguments are formatted as Redis does. */
    (void)state;
    struct fake f = {.reply = "$-1\r\n"};
    assert_string_equal(eval(&f, "return type(redis.call('get', KEYS[1]))", 0, 2),
                        "$7\r\nboolean\r\n");
    assert_string_equal(f.last, "get k");
    eval(&f, "return redis.call('set', 'n', 3, 1.5, -7)", 0, 2);
    assert_string_equal(f.last, "set n 3 1.5 -7");
    f.reply = "*2\r\n:5\r\n+OK\r\n";
    assert_string_equal(eval(&f, "local r = redis.call('x') return {r[1] + 1, r[2].ok}", 0, 2),
                        "*2\r\n:6\r\n$2\r\nOK\r\n");
    f.reply = "-ERR nope\r\n";
    assert_string_equal(eval(&f, "return redis.pcall('x').err", 0, 2), "$8\r\nERR nope\r\n");
    const char *raised = eval(&f, "redis.call('x') return 1", 0, 2);
    assert_true(strncmp(raised, "-ERR nope script: ", 18) == 0);
    f.reply = "%1\r\n$1\r\nf\r\n:1\r\n";
    assert_string_equal(eval(&f, "redis.setresp(3) return redis.call('x').map.f", 0, 2), ":1\r\n");
    f.reply = "$5\r\nab\r\n"; /* a reply cut short is refused, never read past its end */
    assert_non_null(strstr(eval(&f, "return redis.call('x')", 0, 2), "could not be read"));
}

static void test_bounds_are_deterministic(void **state)
{
    /* A runaway script stops at the same point every time, and a pcall cannot hide it; a
     * script that allocates without bound gets a memory error. */
    (void)state;
    struct fake f = {.reply = "+OK\r\n"};
    char first[512];
    snprintf(first, sizeof(first), "%s",
             eval(&f, "local n = 0 while true do n = n + 1 end", 100000, 2));
    assert_non_null(strstr(first, "Script killed"));
    assert_string_equal(eval(&f, "local n = 0 while true do n = n + 1 end", 100000, 2), first);
    assert_non_null(strstr(eval(&f, "pcall(function() while true do end end) return 1", 50000, 2),
                           "Script killed"));
    assert_non_null(strstr(eval(&f, "local t = {} for i = 1, 1e7 do t[i] = {i} end", 0, 2),
                           "not enough memory"));
    /* math.random: the same sequence at every run. */
    char a[64];
    snprintf(a, sizeof(a), "%s", eval(&f, "return math.random(1000000)", 0, 2));
    assert_string_equal(eval(&f, "return math.random(1000000)", 0, 2), a);
}

static void test_memory_reused_across_runs(void **state)
{
    /* Blocks of every size grow, shrink and move across the arena's small/large boundary
     * (tables resized past 1 KiB and back, strings of 1 byte to 64 KiB), are freed in the
     * middle of the run (the collector) and at its end; run after run on the pooled chunks,
     * the answer stays the same. */
    (void)state;
    struct fake f = {.reply = "+OK\r\n"};
    const char *body =
        "local sum = 0 "
        "for round = 1, 3 do "
        "  local t, s = {}, {} "
        "  for i = 1, 3000 do t[i] = i * round; s[#s + 1] = string.rep('x', i % 700) end "
        "  for i = 1, 3000, 2 do t[i] = nil end "
        "  local big = table.concat(s, '', 1, 200) .. string.rep('y', 65536) "
        "  sum = sum + #big + #s "
        "  for i = 1, 3000 do if t[i] then sum = sum + t[i] end end "
        "  t, s = nil, nil collectgarbage() "
        "end "
        "return sum";
    char first[64];
    snprintf(first, sizeof(first), "%s", eval(&f, body, 0, 2));
    assert_int_equal(first[0], ':');
    for (int i = 0; i < 20; i++) {
        assert_string_equal(eval(&f, body, 0, 2), first);
    }
    /* The memory bound is still Lua's own count: the same failure, run after run. */
    char oom[512];
    snprintf(oom, sizeof(oom), "%s",
             eval(&f, "local t = {} for i = 1, 1e7 do t[i] = {i} end", 0, 2));
    assert_non_null(strstr(oom, "not enough memory"));
    assert_string_equal(eval(&f, "local t = {} for i = 1, 1e7 do t[i] = {i} end", 0, 2), oom);
}

static void test_libraries_open_on_first_use(void **state)
{
    /* table, math, cjson, bit, cmsgpack and struct open when a script first names them: each
     * works, is read-only, and a name that is no library still raises Redis's error. */
    (void)state;
    struct fake f = {.reply = "+OK\r\n"};
    assert_string_equal(eval(&f, "return table.concat({'a','b'}, '-')", 0, 2), "$3\r\na-b\r\n");
    assert_string_equal(eval(&f, "return math.floor(2.5) + math.max(1, 7)", 0, 2), ":9\r\n");
    assert_string_equal(eval(&f, "return cjson.encode({1,2})", 0, 2), "$5\r\n[1,2]\r\n");
    assert_string_equal(eval(&f, "return bit.band(12, 10)", 0, 2), ":8\r\n");
    assert_string_equal(eval(&f, "return #cmsgpack.pack(1)", 0, 2), ":1\r\n");
    assert_string_equal(eval(&f, "return struct.unpack('>I2', struct.pack('>I2', 258))", 0, 2),
                        ":258\r\n");
    assert_string_equal(eval(&f, "return ('abc'):upper()", 0, 2), "$3\r\nABC\r\n");
    assert_non_null(strstr(eval(&f, "math.pi = 3 return 1", 0, 2), "readonly table"));
    assert_non_null(strstr(eval(&f, "cjson.x = 1 return 1", 0, 2), "readonly table"));
    assert_non_null(strstr(eval(&f, "return nosuchlib.x", 0, 2), "nonexistent global variable"));
    /* The base library opens at the first other name; _G stays the read-only proxy. */
    assert_string_equal(eval(&f, "return tostring(12)", 0, 2), "$2\r\n12\r\n");
    assert_non_null(
        strstr(eval(&f, "local x = type(1) _G.y = 1 return 1", 0, 2), "readonly table"));
    assert_non_null(
        strstr(eval(&f, "local x = type(1) rawset(_G, 'y', 1) return 1", 0, 2), "readonly"));
    assert_non_null(strstr(eval(&f, "return print", 0, 2), "nonexistent global variable"));
    assert_non_null(strstr(eval(&f, "return dofile", 0, 2), "nonexistent global variable"));
    /* math.random is Redis's, opened lazily or not: the same first number every run. */
    char a[64];
    snprintf(a, sizeof(a), "%s", eval(&f, "return math.random(1000000)", 0, 2));
    assert_string_equal(eval(&f, "local x = table.concat({}) return math.random(1000000)", 0, 2),
                        a);
}

static void test_cmsgpack_and_struct_inputs(void **state)
{
    /* cmsgpack and struct refuse bad input with an error, never read past it or crash: cut
     * and malformed MessagePack, nesting deeper than the Lua stack, a packing buffer that
     * meets the memory limit (freed at the state's close: ASan checks), short records. */
    (void)state;
    struct fake f = {.reply = "+OK\r\n"};
    assert_non_null(strstr(eval(&f, "return cmsgpack.unpack(string.char(0xdb, 0, 1))", 0, 2),
                           "Missing bytes in input."));
    assert_non_null(
        strstr(eval(&f, "return cmsgpack.unpack(string.char(0xdd, 255, 255, 255, 255))", 0, 2),
               "Missing bytes in input."));
    assert_non_null(strstr(eval(&f, "return cmsgpack.unpack(string.char(0xc7))", 0, 2),
                           "Bad data format in input."));
    assert_non_null(
        strstr(eval(&f, "return cmsgpack.unpack(string.rep(string.char(0x91), 100000))", 0, 2),
               "stack overflow"));
    /* Every prefix of a packed value is refused or decoded, whatever byte it stops at. */
    assert_string_equal(eval(&f,
                             "local s = cmsgpack.pack({1, -300, 'abc', {x = 2.5}, 1e300, true}) "
                             "local bad = 0 for i = 0, #s - 1 do "
                             "if not pcall(cmsgpack.unpack, s:sub(1, i)) then bad = bad + 1 end "
                             "end return bad",
                             0, 2),
                        ":26\r\n");
    assert_non_null(strstr(eval(&f,
                                "local t = {} for i = 1, 100 do "
                                "t[i] = cmsgpack.pack(string.rep('x', 1048576 + i)) end",
                                0, 2),
                           "not enough memory"));
    assert_non_null(strstr(eval(&f, "return struct.unpack('c0', 'abc')", 0, 2),
                           "format 'c0' needs a previous size"));
    assert_non_null(
        strstr(eval(&f, "return struct.unpack('bs', 'ab')", 0, 2), "unfinished string in data"));
    assert_non_null(
        strstr(eval(&f, "return struct.pack('i99999999999', 1)", 0, 2), "integral size overflow"));
}

/* Counts the run's polls; redis.call answers how many so far; the poll asks for a stop from
 * poll number stop_at on (0: never). */
struct polls {
    long count, stop_at;
};

static const char *count_poll(void *ctx)
{
    struct polls *p = ctx;
    p->count++;
    return p->stop_at > 0 && p->count >= p->stop_at ? "ERR stopped by the test" : NULL;
}

static void count_call(void *ctx, size_t argc, const struct resp_arg *argv, int proto,
                       struct hy_buf *reply)
{
    const struct polls *p = ctx;
    (void)argc, (void)argv, (void)proto;
    hy_buf_printf(reply, ":%ld\r\n", p->count);
}

static const char *run_polled(struct polls *p, const char *body)
{
    struct script_env env = {.call_cb = count_call, .poll_cb = count_poll, .ctx = p};
    return eval_env(&env, body, 2);
}

static void test_long_library_calls_poll(void **state)
{
    /* cmsgpack's pack and unpack of a big table are single C calls that run no instruction
     * hook: they poll every SCRIPT_LIB_CHECKPOINT_EVERY items themselves, so a node keeps
     * sending its busy notices (and hears SCRIPT KILL) through them; a stop asked there is
     * raised once the call returns, and the script goes no further. */
    (void)state;
    const char *body = "local t = {} for i = 1, 100000 do t[i] = i end "
                       "local a = redis.call('polls') local e = cmsgpack.pack(t) "
                       "local b = redis.call('polls') local u = cmsgpack.unpack(e) "
                       "local c = redis.call('polls') return {b - a, c - b, #u}";
    struct polls p = {0, 0};
    const char *r = run_polled(&p, body);
    long packed = 0, unpacked = 0, n = 0;
    assert_int_equal(sscanf(r, "*3\r\n:%ld\r\n:%ld\r\n:%ld", &packed, &unpacked, &n), 3);
    assert_int_equal(n, 100000);
    assert_true(packed >= 100000 / SCRIPT_LIB_CHECKPOINT_EVERY);
    assert_true(unpacked >= 100000 / SCRIPT_LIB_CHECKPOINT_EVERY);
    /* A stop asked during the pack (the polls before it: a few from the loop's hook). */
    long before = p.count - packed - unpacked;
    struct polls q = {0, before + 5};
    r = run_polled(&q, "local t = {} for i = 1, 100000 do t[i] = i end "
                       "local a = redis.call('polls') local e = cmsgpack.pack(t) "
                       "return redis.call('polls')");
    assert_non_null(strstr(r, "ERR stopped by the test"));
    assert_true(q.count < p.count);
}

static void test_library_parse(void **state)
{
    /* A library's shebang names it; its functions and flags are learnt by running it; the
     * usual mistakes are refused with Redis's texts. */
    (void)state;
    struct script_library lib;
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2};
    const char *code = "#!lua name=L1\nredis.register_function('F', function() return 1 end)\n"
                       "redis.register_function{function_name='g', callback=function() end, "
                       "flags={'no-writes'}}";
    assert_int_equal(script_library_parse((const uint8_t *)code, strlen(code), &lib, &w), 1);
    assert_string_equal(lib.name, "L1");
    assert_int_equal(lib.count, 2);
    unsigned flags[2] = {0, 0};
    for (size_t i = 0; i < 2; i++) {
        flags[strcmp(lib.funcs[i].name, "f") == 0 ? 0 : 1] = lib.funcs[i].flags;
    }
    assert_int_equal(flags[0], 0);
    assert_int_equal(flags[1], SCRIPT_FN_NO_WRITES);
    script_library_free(&lib);
    static const struct {
        const char *code, *err;
    } bad[] = {
        {"return 1", "-ERR Missing library metadata\r\n"},
        {"#!js name=x\n", "-ERR Engine 'js' not found\r\n"},
        {"#!lua name=a-b\n", "-ERR Library names can only contain letters, numbers, or "
                             "underscores(_) and must be at least one character long\r\n"},
        {"#!lua name=x\nreturn 1", "-ERR No functions registered\r\n"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out.len = 0;
        assert_int_equal(
            script_library_parse((const uint8_t *)bad[i].code, strlen(bad[i].code), &lib, &w), 0);
        hy_buf_append_u8(&out, 0);
        assert_string_equal((const char *)out.data, bad[i].err);
    }
    hy_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lua_to_resp),
        cmocka_unit_test(test_resp_to_lua),
        cmocka_unit_test(test_bounds_are_deterministic),
        cmocka_unit_test(test_library_parse),
        cmocka_unit_test(test_cmsgpack_and_struct_inputs),
        cmocka_unit_test(test_memory_reused_across_runs),
        cmocka_unit_test(test_libraries_open_on_first_use),
        cmocka_unit_test(test_long_library_calls_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
