/* test_script.c - the Lua engine (node/script.h) alone: conversions both ways, the sandbox,
 * the step and memory bounds, and library loading, with a fake redis.call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "common/assert.h"
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

/* A tiny keyspace for the replica-determinism test: SET, GET, INCR, DEL. A probe (the leader's
 * run before it proposes) answers from it but applies no write, and is stopped quietly after
 * its first write, as the node's probe is. */
#define KV_MAX 16
struct kv {
    char key[KV_MAX][32], val[KV_MAX][64];
    int n;
    int probe, wrote;
};

static int kv_find(struct kv *s, const struct resp_arg *k)
{
    for (int i = 0; i < s->n; i++) {
        if (strlen(s->key[i]) == k->len && memcmp(s->key[i], k->ptr, k->len) == 0) {
            return i;
        }
    }
    return -1;
}

static void kv_call(void *ctx, size_t argc, const struct resp_arg *argv, int proto,
                    struct hy_buf *reply)
{
    struct kv *s = ctx;
    (void)proto;
    char cmd[8] = "";
    snprintf(cmd, sizeof(cmd), "%.*s", (int)HY_MIN(argv[0].len, 7), (const char *)argv[0].ptr);
    int i = argc >= 2 && argv[1].len < 32 ? kv_find(s, &argv[1]) : -1;
    int write = strcasecmp(cmd, "set") == 0 || strcasecmp(cmd, "incr") == 0;
    if (argc < 2 || argv[1].len >= 32 || (strcasecmp(cmd, "get") != 0 && !write)) {
        hy_buf_append_str(reply, "-ERR unknown command\r\n");
        return;
    }
    if (strcasecmp(cmd, "get") == 0) {
        if (i < 0) {
            hy_buf_append_str(reply, "$-1\r\n");
        } else {
            hy_buf_printf(reply, "$%zu\r\n%s\r\n", strlen(s->val[i]), s->val[i]);
        }
        return;
    }
    s->wrote = 1;
    if (i < 0 && s->n < KV_MAX && !s->probe) {
        i = s->n++;
        snprintf(s->key[i], sizeof(s->key[i]), "%.*s", (int)argv[1].len, (const char *)argv[1].ptr);
        s->val[i][0] = '\0';
    }
    if (strcasecmp(cmd, "set") == 0 && argc == 3) {
        if (!s->probe && i >= 0) {
            snprintf(s->val[i], sizeof(s->val[i]), "%.*s", (int)HY_MIN(argv[2].len, 63),
                     (const char *)argv[2].ptr);
        }
        hy_buf_append_str(reply, "+OK\r\n");
        return;
    }
    long v = i >= 0 ? strtol(s->val[i], NULL, 10) + 1 : 1;
    if (!s->probe && i >= 0) {
        snprintf(s->val[i], sizeof(s->val[i]), "%ld", v);
    }
    hy_buf_printf(reply, ":%ld\r\n", v);
}

static const char *kv_poll(void *ctx)
{
    struct kv *s = ctx;
    return s->probe && s->wrote ? SCRIPT_STOP_QUIET : NULL;
}

static void kv_digest(const struct kv *s, char *out, size_t size)
{
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < s->n && at < size; i++) {
        at += (size_t)snprintf(out + at, size - at, "%s=%s;", s->key[i], s->val[i]);
    }
}

/* The scripts of test_reused_state_matches_fresh: each tries to leave something behind for the
 * next (a global, through getfenv, loadstring or setfenv; the string metatable; a library
 * table; cjson's settings; the collector's), or is stopped, or runs out of memory; the
 * script after each looks for what it left. */
static const char *const determinism_scripts[] = {
    "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])",
    "leak = 1 return 1",
    "return leak",
    "local g = getfenv(0) rawset(g, 'leak', 1) g.leak = 1 return 1",
    "local g = getfenv(redis.call) g.leak = 1 return 1",
    "return {pcall(function() return leak end)}",
    "getmetatable('').__index = function() return 'x' end return 1",
    "getmetatable('').__index.upper = function() return 'x' end return 1",
    "rawset(getmetatable(''), '__index', {}) return 1",
    "setmetatable(getmetatable(''), {}) return 1",
    "return ('abc'):upper()",
    "setfenv(0, {}) return 1",
    "local e = getfenv(1) if rawget(e, 'mark') then return 'dirty' end "
    "setfenv(1, setmetatable({mark = true}, {__index = e})) return 'clean'",
    "local e = getfenv(1) if rawget(e, 'mark') then return 'dirty' end "
    "setfenv(1, setmetatable({mark = true}, {__index = e})) return 'clean'",
    "loadstring('leak2 = 5')() return 1",
    "return {pcall(function() return leak2 end)}",
    "coroutine.wrap = nil return 1",
    "rawset(coroutine, 'x', 1) return 1",
    "return type(coroutine.wrap)",
    "string.upper = nil return 1",
    "return ('abc'):upper()",
    "cjson.encode_max_depth(1) return 1",
    "return cjson.encode({{1}})",
    "collectgarbage('stop') collectgarbage('setpause', 1000) return collectgarbage('count')",
    "local t = {} for i = 1, 100000 do t[i % 100 + 1] = {i} end return #t",
    "math.randomseed(7) return math.random(1000)",
    "return math.random(1000)",
    "local n = 0 while true do n = n + 1 end",
    "redis.call('INCR', KEYS[1]) local n = 0 while true do n = n + 1 end",
    "return redis.call('INCR', KEYS[1])",
    "local t = {} for i = 1, 1e7 do t[i] = {i} end",
    "redis.call('INCR', 'after') return redis.call('GET', 'after')",
    "return package",
    "return require",
    "return loadstring(string.dump(function() return 1 end)) == nil",
    "return redis.call('GET', KEYS[1])",
};

/* Runs determinism_scripts in order against s (a probe before each when probe), writing the
 * replies, one per line, to out. */
static void determinism_run(struct kv *s, int fresh, int probe, struct hy_buf *out)
{
    for (size_t i = 0; i < HY_ARRAY_LEN(determinism_scripts); i++) {
        const char *body = determinism_scripts[i];
        struct resp_arg keys[1] = {{(const uint8_t *)"k", 1}};
        struct resp_arg args[1] = {{(const uint8_t *)"v1", 2}};
        struct script_env env = {.call_cb = kv_call,
                                 .ctx = s,
                                 .steps_max = 1000000,
                                 .memory_max = 8u * 1024 * 1024,
                                 .rand_seed = (uint32_t)(i * 7919),
                                 .poll_cb = kv_poll,
                                 .fresh_state = fresh};
        struct hy_buf scratch;
        hy_buf_init(&scratch);
        if (probe) {
            struct resp_writer pw = {&scratch, 2};
            s->probe = 1;
            s->wrote = 0;
            (void)script_run(&env, (const uint8_t *)body, strlen(body), keys, 1, args, 1, &pw);
            s->probe = 0;
        }
        s->wrote = 0;
        struct resp_writer w = {out, 2};
        (void)script_run(&env, (const uint8_t *)body, strlen(body), keys, 1, args, 1, &w);
        hy_buf_append_str(out, "|\n");
        hy_buf_free(&scratch);
    }
}

static void test_reused_state_matches_fresh(void **state)
{
    /* Replica determinism with the long-lived engine: the same scripts give the same replies
     * and the same keyspace in a fresh state per run (what a replica that never ran anything
     * would compute) as in the reused state with a leader's probe before every run; nothing a
     * script tries leaves a trace for the next, and the engine is rebuilt only after the runs
     * that left it doubtful (cjson's setting, the out-of-memory run). */
    (void)state;
    struct kv fresh = {0}, reused = {0};
    struct hy_buf a, b;
    hy_buf_init(&a);
    hy_buf_init(&b);
    determinism_run(&fresh, 1, 0, &a);
    script_engine_reset();
    uint64_t builds = script_engine_builds();
    determinism_run(&reused, 0, 1, &b);
    hy_buf_append_u8(&a, 0);
    hy_buf_append_u8(&b, 0);
    assert_string_equal((const char *)b.data, (const char *)a.data);
    char da[512], db[512];
    kv_digest(&fresh, da, sizeof(da));
    kv_digest(&reused, db, sizeof(db));
    assert_string_equal(db, da);
    assert_string_equal(da, "k=2;after=1;");
    /* What each reply must be, not only the same: the tricks failed. */
    const char *text = (const char *)a.data;
    assert_null(strstr(text, "dirty"));
    assert_non_null(strstr(text, "$5\r\nclean\r\n|\n$5\r\nclean"));
    assert_non_null(strstr(text, "$3\r\nABC\r\n|\n-ERR Attempt to modify a readonly table"));
    assert_non_null(strstr(text, "$5\r\n[[1]]\r\n"));
    assert_non_null(strstr(text, "$8\r\nfunction\r\n"));
    assert_non_null(strstr(text, "not enough memory"));
    assert_non_null(strstr(text, "Script killed"));
    /* Reused: one build, then one after the cjson setting (in the probe and the apply) and
     * two after the out-of-memory run (the probe's and the apply's). */
    assert_int_equal(script_engine_builds() - builds, 5);
    hy_buf_free(&a);
    hy_buf_free(&b);
}

/* Runs function fname of library code (FCALL) in env with KEYS = {"k"}; the reply, static. */
static const char *fcall_env(const struct script_env *env, const char *code, const char *fname)
{
    static char text[1024];
    struct resp_arg keys[1] = {{(const uint8_t *)"k", 1}};
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2};
    script_fcall(env, (const uint8_t *)code, strlen(code), fname, keys, 1, NULL, 0, &w);
    snprintf(text, sizeof(text), "%.*s", (int)out.len, (const char *)out.data);
    hy_buf_free(&out);
    return text;
}

static void test_reused_state_fcall_matches_fresh(void **state)
{
    /* FCALL in the long-lived engine answers as in a state of its own: the library's code runs
     * again at every call (an upvalue counts from the start each time, on every replica), a
     * function sees no KEYS or ARGV global though an EVAL just set them, and what a function
     * tries to leave behind is refused; the library is compiled once. */
    (void)state;
    struct fake f = {.reply = "+OK\r\n"};
    const char *code = "#!lua name=lib\n"
                       "local n = 0\n"
                       "redis.register_function('count', function(keys, args) n = n + 1 "
                       "return {n, keys[1]} end)\n"
                       "redis.register_function('globals', function() return KEYS end)\n"
                       "redis.register_function('leak', function() "
                       "local g = getfenv(0) g.leak = 1 return 1 end)\n"
                       "redis.register_function('seen', function() return leak end)\n";
    static const char *const fnames[] = {"count", "count", "globals", "leak", "seen", "nosuch"};
    char fresh[6][256];
    for (int round = 0; round < 2; round++) {
        struct script_env env = {.call_cb = fake_call, .ctx = &f, .fresh_state = round == 0};
        (void)eval(&f, "return #KEYS", 0, 2); /* an EVAL sets KEYS and ARGV in the engine */
        for (size_t i = 0; i < HY_ARRAY_LEN(fnames); i++) {
            const char *r = fcall_env(&env, code, fnames[i]);
            if (round == 0) {
                snprintf(fresh[i], sizeof(fresh[i]), "%s", r);
            } else {
                assert_string_equal(r, fresh[i]);
            }
        }
    }
    assert_string_equal(fresh[0], "*2\r\n:1\r\n$1\r\nk\r\n");
    assert_string_equal(fresh[1], fresh[0]);
    assert_non_null(strstr(fresh[2], "nonexistent global variable 'KEYS'"));
    assert_non_null(strstr(fresh[3], "readonly table"));
    assert_non_null(strstr(fresh[4], "nonexistent global variable 'leak'"));
    assert_string_equal(fresh[5], "-ERR Function not found\r\n");
    /* One engine for all of the reused calls. */
    uint64_t builds = script_engine_builds();
    struct script_env env = {.call_cb = fake_call, .ctx = &f};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(fcall_env(&env, code, "count"), fresh[0]);
    }
    assert_int_equal(script_engine_builds(), builds);
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
        cmocka_unit_test(test_reused_state_matches_fresh),
        cmocka_unit_test(test_reused_state_fcall_matches_fresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
