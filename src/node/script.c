/*
 * script.c - the Lua engine (script.h): one long-lived, sandboxed Lua 5.1 state per thread for
 * EVAL bodies and FCALL, a state of their own for FUNCTION LOAD's reading of a library.
 *
 * The engine. Building a state, its libraries and sandbox, then compiling the body and closing
 * it all again was most of a short script's cost (254k instructions for an EVALSHA, run twice:
 * the leader's probe, then at apply). As Redis does, the state now lives on: built once, every
 * library opened then, each body compiled once and cached by its text (bounded: past
 * ENGINE_CACHE_COUNT_MAX bodies or ENGINE_CACHE_BYTES_MAX bytes the cache starts over). A run
 * sets KEYS and ARGV, gives its chunk the sandbox's globals again and calls it. An FCALL runs
 * its library's chunk (compiled once, kept by its code) again to register the functions
 * afresh, then calls the function: no upvalue of a previous call survives. Replicas must
 * reach the same result as a fresh state would, though a follower's engine never ran the
 * leader's probe and has other bodies cached: so nothing a script can reach outlives its run.
 * The globals and every library table are read-only proxies (below); getfenv answers the proxy
 * for the thread's real globals, setfenv(0) is refused, a loadstring'd chunk runs in the
 * proxy, the string metatable hides behind a read-only stand-in, the coroutine table is a
 * proxy, collectgarbage cannot change the collector's settings; math.random's state, the RESP
 * version and the step count are the run's. What a run could still leave behind makes the
 * engine "doubtful" and it is closed after the run and built again at the next: a cjson
 * setting changed (they live in cjson's upvalues), a run that ran out of memory, or a state
 * grown past ENGINE_BYTES_MAX. What a reused state cannot make the same as a fresh one is
 * what depends on the collector's timing, which follows everything the state held before:
 * when a weak table's entries go, and exactly where a run that grows to the memory bound
 * stops (collectgarbage("count") answers 0 for that reason). docs/protocol.md says so.
 *
 * Memory comes from an arena (script_arena): the engine's blocks are reused through its free
 * lists; a state of its own gives its chunks back to a small per-thread pool when it closes.
 *
 * The sandbox. The base, table, string and math libraries are opened, with cjson and bit (the
 * Debian packages) and cmsgpack and struct (script_libs.c); loadfile, dofile, print and load
 * are removed and loadstring refuses bytecode (a crafted chunk can break the VM). Scripts see the
 * globals through an empty proxy whose metatable reads the real table (a missing name is an error,
 * as Redis's "nonexistent global variable") and refuses every write; the library tables are proxies
 * of the same kind. Debian's Lua has no read-only tables (Redis patches its VM for them), so
 * setmetatable and rawset refuse a proxy themselves and the proxies' metatables are hidden behind
 * read-only ones.
 *
 * Errors. A Lua error is turned by the message handler into Redis's error table ({err = "ERR
 * ..."} with the line it was raised at); the reply is then "<err> script: <sha>, on
 * @user_script:<line>.", as Redis 7.0 answers. redis.call raises the error reply it got;
 * redis.pcall returns it as {err = ...}.
 *
 * Memory: every allocation goes through script_alloc, which refuses to let a run grow the
 * state past what it held when the run began by more than the run's limit (Lua then raises
 * "not enough memory"). Steps: a count hook every SCRIPT_HOOK_STEPS
 * instructions; past the budget it raises an error, and again at every later instruction, so
 * a pcall in the script cannot swallow it.
 */
#include "node/script.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/sha1.h"
#include "node/script_libs.h"

int luaopen_cjson(lua_State *L);
int luaopen_bit(lua_State *L);

#define SCRIPT_HOOK_STEPS 1000
#define SCRIPT_DEPTH_MAX  64 /* nesting of a table converted to a reply, and back */
#define SCRIPT_CHUNK_NAME "@user_script"
#define LRAND48_MAX       INT32_MAX
#define FUNCTION_CHUNK    "@user_function"

/*
 * A state's memory. When every run had a state of its own, most of its CPU went to malloc and
 * free: a few thousand small blocks for the libraries and the sandbox, each freed again at
 * lua_close (45% of an EVALSHA's profile). Blocks up to ARENA_SMALL_MAX bytes are cut from 64 KiB
 * chunks in 16-byte size classes, and a freed block goes on its class's list for the run's next
 * allocation of that class; larger ones are malloc's. Lua gives the old size of every block it
 * frees or resizes, so blocks need no header. At the run's end the chunks go back to a small
 * per-thread pool, and the next run takes them without a malloc. What a run may use
 * (mem_max) is counted in Lua's own sizes, as before: the arena changes no script's outcome.
 * Under AddressSanitizer the plain allocator is kept, so ASan still sees every block.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SCRIPT_ARENA 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCRIPT_ARENA 0
#endif
#endif
#ifndef SCRIPT_ARENA
#define SCRIPT_ARENA 1
#endif

#define ARENA_CHUNK_BYTES (64u * 1024)
#define ARENA_SMALL_MAX   1024u
#define ARENA_CLASSES     (ARENA_SMALL_MAX / 16 + 1)
#define ARENA_POOL_MAX    8 /* chunks a thread keeps between runs: 512 KiB */

struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    _Alignas(16) unsigned char data[ARENA_CHUNK_BYTES];
};

struct arena_free {
    struct arena_free *next;
};

struct script_arena {
    struct arena_chunk *chunks; /* the one being cut first */
    struct arena_free *free[ARENA_CLASSES];
};

static _Thread_local struct arena_chunk *arena_pool;
static _Thread_local int arena_pool_count;

static void *arena_small(struct script_arena *a, size_t n)
{
    size_t cls = (n + 15) / 16;
    struct arena_free *f = a->free[cls];
    if (f != NULL) {
        a->free[cls] = f->next;
        return f;
    }
    size_t size = cls * 16;
    struct arena_chunk *c = a->chunks;
    if (c == NULL || c->used + size > ARENA_CHUNK_BYTES) {
        if (arena_pool != NULL) {
            c = arena_pool;
            arena_pool = c->next;
            arena_pool_count--;
        } else {
            c = malloc(sizeof(*c));
            if (c == NULL) {
                return NULL;
            }
        }
        c->next = a->chunks;
        c->used = 0;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

static void arena_small_free(struct script_arena *a, void *p, size_t n)
{
    struct arena_free *f = p;
    size_t cls = (n + 15) / 16;
    f->next = a->free[cls];
    a->free[cls] = f;
}

/* The run is over (its state closed): the chunks go back to the pool or to malloc. */
static void arena_release(struct script_arena *a)
{
    while (a->chunks != NULL) {
        struct arena_chunk *c = a->chunks;
        a->chunks = c->next;
        if (arena_pool_count < ARENA_POOL_MAX) {
            c->next = arena_pool;
            arena_pool = c;
            arena_pool_count++;
        } else {
            free(c);
        }
    }
    memset(a->free, 0, sizeof(a->free));
}

/* Lua's allocator contract on the arena: nsize 0 frees, ptr NULL (osize 0) allocates, else
 * resizes. A block is the arena's exactly when its size is at most ARENA_SMALL_MAX. */
static void *arena_realloc(struct script_arena *a, void *ptr, size_t osize, size_t nsize)
{
    int was_small = ptr != NULL && osize <= ARENA_SMALL_MAX;
    if (nsize == 0) {
        if (was_small) {
            arena_small_free(a, ptr, osize);
        } else {
            free(ptr);
        }
        return NULL;
    }
    if (nsize > ARENA_SMALL_MAX) {
        if (ptr == NULL || !was_small) {
            return realloc(ptr, nsize);
        }
        void *p = malloc(nsize);
        if (p != NULL) {
            memcpy(p, ptr, osize);
            arena_small_free(a, ptr, osize);
        }
        return p;
    }
    if (was_small && (nsize + 15) / 16 <= (osize + 15) / 16) {
        return ptr; /* it fits where it is (a shrunk block is freed later by its new size) */
    }
    void *p = arena_small(a, nsize);
    if (p != NULL && ptr != NULL) {
        memcpy(p, ptr, HY_MIN(osize, nsize));
        if (was_small) {
            arena_small_free(a, ptr, osize);
        } else {
            free(ptr);
        }
    }
    return p;
}

struct script_run {
    const struct script_env *env;
    size_t mem_max;
    uint64_t steps;
    int killed;
    int quiet;           /* stopped by SCRIPT_STOP_QUIET: raises quiet_stop, no message */
    int oom;             /* an allocation was refused: the engine is rebuilt after the run */
    char stop_msg[160];  /* what a killed run raises */
    int proto;           /* redis.setresp */
    int loading;         /* a library's code runs: register_function yes, redis.call no */
    int function;        /* FCALL: errors name @user_function */
    uint64_t rand;       /* Redis's lrand48 state (48 bits) */
    const uint8_t *body; /* the script's (for its SHA-1, made only when an error names it) */
    size_t body_len;
    char sha[HY_SHA1_HEX_LEN + 1]; /* "" until needed */
};

/*
 * A Lua state and what it is charged with. The engine that runs EVAL bodies lives on (one per
 * thread: the node's loop runs every script of the node, whichever partition's store it
 * touches, and the simulator runs its nodes on one thread too): its libraries and sandbox are
 * built once and each body is compiled once, cached by its text. Library loads, FCALL and
 * compile checks still build a state of their own (an engine on the stack) and close it.
 * A run is charged the bytes it makes the state hold above what it held when the run began
 * (mem_base).
 */
struct script_engine {
    lua_State *L;
    struct script_arena arena;
    struct script_run *run; /* the run in progress, NULL between runs */
    size_t mem_used;        /* what Lua holds, in Lua's own sizes */
    size_t mem_base;        /* mem_used when the run began (0 for a state of its own) */
    size_t cache_count, cache_bytes;
    int doubtful; /* something may have survived a run: rebuilt before the next */
    /* The engine's registry references (luaL_ref), so a run looks nothing up by name: its
     * run function, the message handler, the body cache, the globals' proxy, and the names
     * KEYS and ARGV. */
    int ref_run, ref_handler, ref_cache, ref_fcache, ref_env, ref_keys, ref_argv;
};

static void script_hook(lua_State *L, lua_Debug *ar);
static int raise_err(lua_State *L, const char *msg);

static struct script_engine *engine_of(lua_State *L)
{
    void *ud;
    (void)lua_getallocf(L, &ud);
    return ud;
}

static struct script_run *run_of(lua_State *L)
{
    return engine_of(L)->run;
}

static void *script_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct script_engine *e = ud;
    if (nsize == 0) {
        if (SCRIPT_ARENA) {
            (void)arena_realloc(&e->arena, ptr, osize, 0);
        } else {
            free(ptr);
        }
        e->mem_used -= osize;
        return NULL;
    }
    struct script_run *r = e->run;
    if (r != NULL && nsize > osize && e->mem_used - osize + nsize > e->mem_base + r->mem_max) {
        r->oom = 1;
        return NULL; /* Lua raises "not enough memory" */
    }
    void *p = SCRIPT_ARENA ? arena_realloc(&e->arena, ptr, osize, nsize) : realloc(ptr, nsize);
    if (p != NULL) {
        e->mem_used = e->mem_used - osize + nsize;
    }
    return p;
}

/* Closes a state and gives its memory back (the arena's chunks to the pool). */
static void state_close(lua_State *L)
{
    struct script_engine *e = engine_of(L);
    lua_close(L);
    arena_release(&e->arena);
}

const char SCRIPT_STOP_QUIET[] = "stopped";

/* What a quiet stop raises: no message to format, no line to look up (the message handler
 * passes it through), where a stop's error cost as much as a short script's whole run. */
static char quiet_stop;

/* Raises the stop message: a library's load stopped by its budget says "FUNCTION LOAD
 * timeout" with no line, as Redis 7.0's load timeout; a script's stop names its line. */
static void raise_stop(lua_State *L, const struct script_run *r)
{
    if (r->loading) {
        raise_err(L, "ERR FUNCTION LOAD timeout");
    }
    if (r->quiet) {
        lua_pushlightuserdata(L, &quiet_stop);
        lua_error(L);
    }
    luaL_error(L, "%s", r->stop_msg);
}

/* Stops the run with msg: raised now and again at every later instruction, so a pcall in the
 * script cannot swallow it. */
/* The run is stopped with msg: raised at its every instruction from now on. */
static void run_mark_stopped(lua_State *L, struct script_run *r, const char *msg)
{
    if (!r->killed) {
        r->killed = 1;
        if (r->env->stopped_out != NULL) {
            *r->env->stopped_out = 1;
        }
        r->quiet = msg == SCRIPT_STOP_QUIET;
        if (!r->quiet) { /* a quiet stop raises no message (and a probe stops quietly often) */
            snprintf(r->stop_msg, sizeof(r->stop_msg), "%s", msg);
        }
        lua_sethook(L, script_hook, LUA_MASKCOUNT, 1);
    }
}

static void run_stop(lua_State *L, struct script_run *r, const char *msg)
{
    run_mark_stopped(L, r, msg);
    raise_stop(L, r);
}

static void script_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct script_run *r = run_of(L);
    if (r->killed) {
        r->steps++;
        raise_stop(L, r);
    }
    r->steps += SCRIPT_HOOK_STEPS;
    if (r->env->steps_max > 0 && r->steps > r->env->steps_max) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "Script killed: it ran past script-max-instructions (%llu Lua instructions)",
                 (unsigned long long)r->env->steps_max);
        run_stop(L, r, msg);
    }
    const char *stop = r->env->poll_cb != NULL ? r->env->poll_cb(r->env->ctx) : NULL;
    if (stop != NULL) {
        run_stop(L, r, stop);
    }
}

void script_lib_checkpoint(lua_State *L, size_t count)
{
    if (count % SCRIPT_LIB_CHECKPOINT_EVERY != 0) {
        return;
    }
    struct script_run *r = run_of(L);
    if (r->killed || r->env->poll_cb == NULL) {
        return;
    }
    const char *stop = r->env->poll_cb(r->env->ctx);
    if (stop != NULL) {
        /* Raised at the next instruction, not here: the library's C function ends first. */
        run_mark_stopped(L, r, stop);
    }
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* Raises Redis's error table {err = msg}. */
static int raise_err(lua_State *L, const char *msg)
{
    lua_newtable(L);
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "err");
    return lua_error(L);
}

static int readonly_err(lua_State *L)
{
    return luaL_error(L, "Attempt to modify a readonly table");
}

/* The message handler: any error becomes {err = "ERR ...", source, line}. */
static int error_handler(lua_State *L)
{
    if (lua_touserdata(L, 1) == &quiet_stop) {
        return 1;
    }
    if (!lua_istable(L, 1)) {
        const char *msg = lua_tostring(L, 1);
        lua_newtable(L);
        lua_pushfstring(L, "ERR %s", msg != NULL ? msg : "(error object is not a string)");
        lua_setfield(L, -2, "err");
        lua_replace(L, 1);
    }
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (strcmp(ar.what, "C") != 0 && ar.currentline > 0) {
            lua_pushinteger(L, ar.currentline);
            lua_setfield(L, 1, "line");
            break;
        }
    }
    lua_settop(L, 1);
    return 1;
}

/* ---- RESP -> Lua ----------------------------------------------------------------------------- */

static void push_value(lua_State *L, const struct resp_value *v, int depth);

static void push_aggregate(lua_State *L, const struct resp_value *v, int depth)
{
    lua_newtable(L);
    if (v->type == RESP_MAP) {
        lua_newtable(L);
        for (size_t i = 0; i < v->count; i++) {
            push_value(L, &v->elems[2 * i], depth + 1);
            push_value(L, &v->elems[2 * i + 1], depth + 1);
            lua_settable(L, -3);
        }
        lua_setfield(L, -2, "map");
    } else if (v->type == RESP_SET) {
        lua_newtable(L);
        for (size_t i = 0; i < v->count; i++) {
            push_value(L, &v->elems[i], depth + 1);
            lua_pushboolean(L, 1);
            lua_settable(L, -3);
        }
        lua_setfield(L, -2, "set");
    } else {
        for (size_t i = 0; i < v->count; i++) {
            push_value(L, &v->elems[i], depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
    }
}

static void push_field_table(lua_State *L, const char *field, const uint8_t *p, size_t len)
{
    lua_newtable(L);
    lua_pushlstring(L, (const char *)p, len);
    lua_setfield(L, -2, field);
}

static void push_value(lua_State *L, const struct resp_value *v, int depth)
{
    luaL_checkstack(L, 4, "reached lua stack limit");
    if (depth > SCRIPT_DEPTH_MAX) {
        lua_pushboolean(L, 0);
        return;
    }
    switch (v->type) {
    case RESP_INTEGER: lua_pushnumber(L, (lua_Number)v->integer); break;
    case RESP_BULK: lua_pushlstring(L, (const char *)v->str, v->len); break;
    case RESP_SIMPLE: push_field_table(L, "ok", v->str, v->len); break;
    case RESP_ERROR:
    case RESP_BULK_ERROR: push_field_table(L, "err", v->str, v->len); break;
    case RESP_NULL:
        /* RESP2's null bulk and null array are false; RESP3's null is nil. */
        if (run_of(L)->proto == 3) {
            lua_pushnil(L);
        } else {
            lua_pushboolean(L, 0);
        }
        break;
    case RESP_BOOLEAN: lua_pushboolean(L, v->integer != 0); break;
    case RESP_DOUBLE:
        lua_newtable(L);
        lua_pushnumber(L, v->dbl);
        lua_setfield(L, -2, "double");
        break;
    case RESP_BIGNUM: push_field_table(L, "big_number", v->str, v->len); break;
    case RESP_VERBATIM:
        lua_newtable(L);
        lua_newtable(L);
        lua_pushlstring(L, (const char *)v->str + HY_MIN(v->len, 4), v->len - HY_MIN(v->len, 4));
        lua_setfield(L, -2, "string");
        lua_pushlstring(L, (const char *)v->str, HY_MIN(v->len, 3));
        lua_setfield(L, -2, "format");
        lua_setfield(L, -2, "verbatim_string");
        break;
    default: push_aggregate(L, v, depth); break;
    }
}

/* The conversion of a reply, called protected (lua_pcall, not lua_cpcall: no closure made at
 * every redis.call); the value is its one result. */
static int push_reply_protected(lua_State *L)
{
    const struct resp_value *v = lua_touserdata(L, 1);
    push_value(L, v, 0);
    return 1;
}

/* ---- Lua -> RESP ----------------------------------------------------------------------------- */

/* Writes msg as an error reply, its line breaks turned to spaces (a reply is one line). */
static void write_error_text(struct resp_writer *w, const char *msg, size_t len)
{
    char *copy = hy_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        copy[i] = msg[i] == '\r' || msg[i] == '\n' ? ' ' : msg[i];
    }
    copy[len] = '\0';
    resp_write_error(w, copy);
    hy_free(copy);
}

static void write_value(lua_State *L, struct resp_writer *w, int depth);

/* Pushes t[name] of the table at the top without metamethods (no script code runs). */
static void raw_field(lua_State *L, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, -2);
}

/* The table at the top: {err}, {ok}, {double}, {map}, {set}, or an array. */
static void write_table(lua_State *L, struct resp_writer *w, int depth)
{
    raw_field(L, "err");
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *msg = lua_tolstring(L, -1, &len);
        write_error_text(w, msg, len);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    raw_field(L, "ok");
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *msg = lua_tolstring(L, -1, &len);
        char *copy = hy_xmalloc(len + 1);
        for (size_t i = 0; i < len; i++) {
            copy[i] = msg[i] == '\r' || msg[i] == '\n' ? ' ' : msg[i];
        }
        copy[len] = '\0';
        resp_write_simple(w, copy);
        hy_free(copy);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    raw_field(L, "double");
    if (lua_type(L, -1) == LUA_TNUMBER) {
        resp_write_double(w, lua_tonumber(L, -1));
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    raw_field(L, "map");
    if (lua_type(L, -1) == LUA_TTABLE) {
        size_t pairs = 0;
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
            pairs++;
        }
        resp_write_map(w, pairs);
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
            lua_pushvalue(L, -2);
            write_value(L, w, depth + 1);
            lua_pop(L, 1);
            write_value(L, w, depth + 1);
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    raw_field(L, "set");
    if (lua_type(L, -1) == LUA_TTABLE) {
        size_t n = 0;
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
            n++;
        }
        resp_write_set(w, n);
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
            lua_pushvalue(L, -2);
            write_value(L, w, depth + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    /* An array: elements 1, 2, ... up to the first nil, as Redis reads it. */
    size_t n = 0;
    for (;; n++) {
        lua_rawgeti(L, -1, (int)n + 1);
        int nil = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (nil) {
            break;
        }
    }
    resp_write_array(w, n);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        write_value(L, w, depth + 1);
        lua_pop(L, 1);
    }
}

/* Writes the value at the top of L's stack (left there) as a reply. */
static void write_value(lua_State *L, struct resp_writer *w, int depth)
{
    if (depth > SCRIPT_DEPTH_MAX || !lua_checkstack(L, 8)) {
        resp_write_error(w, "ERR reached lua stack limit");
        return;
    }
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t len;
        const char *p = lua_tolstring(L, -1, &len);
        resp_write_bulk(w, p, len);
        break;
    }
    case LUA_TBOOLEAN:
        if (w->proto == 3) {
            resp_write_bool(w, lua_toboolean(L, -1));
        } else if (lua_toboolean(L, -1)) {
            resp_write_int(w, 1);
        } else {
            resp_write_null(w);
        }
        break;
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, -1);
        /* Redis truncates to an integer (the float is cast). */
        int64_t v = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
        resp_write_int(w, d != d ? 0 : v);
        break;
    }
    case LUA_TTABLE: write_table(L, w, depth); break;
    default: resp_write_null(w); break;
    }
}

/* ---- the redis library ----------------------------------------------------------------------- */

/* redis.call's arguments (stack 1..argc) as strings, numbers formatted as Redis does. Returns
 * 0 (nothing allocated) when one is neither. */
static int collect_args(lua_State *L, int argc, struct resp_arg *argv)
{
    for (int i = 1; i <= argc; i++) {
        int t = lua_type(L, i);
        if (t == LUA_TNUMBER) {
            double d = lua_tonumber(L, i);
            char buf[64];
            if (d == (double)(long long)d && fabs(d) < 1e17) {
                snprintf(buf, sizeof(buf), "%lld", (long long)d);
            } else {
                snprintf(buf, sizeof(buf), "%.17g", d);
            }
            lua_pushstring(L, buf);
            lua_replace(L, i);
        } else if (t != LUA_TSTRING) {
            return 0;
        }
        size_t len;
        const char *p = lua_tolstring(L, i, &len);
        argv[i - 1] = (struct resp_arg){(const uint8_t *)p, len};
    }
    return 1;
}

/* redis.call (raise = 1) and redis.pcall (raise = 0). */
static int redis_generic_call(lua_State *L, int raise)
{
    struct script_run *r = run_of(L);
    int argc = lua_gettop(L);
    if (r->loading) {
        return raise_err(L, "ERR redis.call and redis.pcall can not be used while a library "
                            "loads");
    }
    if (argc == 0) {
        return raise_err(L, "ERR Please specify at least one argument for this redis lib call");
    }
    /* A short command's arguments on the C stack; a long one's in a userdata (collected). */
    struct resp_arg few[16];
    struct resp_arg *argv = argc <= 16 ? few : lua_newuserdata(L, (size_t)argc * sizeof(*argv));
    if (!collect_args(L, argc, argv)) {
        return raise_err(L, "ERR Lua redis lib command arguments must be strings or integers");
    }
    struct hy_buf reply;
    hy_buf_init(&reply);
    if (r->env->call_cb == NULL) {
        hy_buf_append_str(&reply, "-ERR redis.call is not available here\r\n");
    } else {
        r->env->call_cb(r->env->ctx, (size_t)argc, argv, r->proto, &reply);
    }
    const char *stop = r->env->poll_cb != NULL ? r->env->poll_cb(r->env->ctx) : NULL;
    if (stop != NULL) {
        hy_buf_free(&reply);
        run_stop(L, r, stop);
    }
    struct resp_limits limits;
    resp_limits_default(&limits);
    limits.nesting_max = 1024;
    struct resp_value v;
    size_t used;
    int rc = resp_value_parse(&limits, reply.data, reply.len, &v, &used, NULL);
    if (rc != HY_OK) {
        hy_buf_free(&reply);
        return raise_err(L, "ERR the command's reply could not be read");
    }
    /* Lua errors longjmp: the conversion runs protected (it may run out of memory), the C
     * memory is freed, and only then may this function raise. */
    int is_err = v.type == RESP_ERROR || v.type == RESP_BULK_ERROR;
    lua_pushvalue(L, lua_upvalueindex(1)); /* push_reply_protected */
    lua_pushlightuserdata(L, &v);
    rc = lua_pcall(L, 1, 1, 0);
    resp_value_free(&v);
    hy_buf_free(&reply);
    if (rc != 0) {
        return lua_error(L); /* the message is on the stack */
    }
    if (is_err && raise) {
        return lua_error(L);
    }
    return 1;
}

static int redis_call(lua_State *L)
{
    return redis_generic_call(L, 1);
}

static int redis_pcall(lua_State *L)
{
    return redis_generic_call(L, 0);
}

/* redis.acl_check_cmd(command, args...): whether the script's caller may run it, as Redis
 * 7.0 answers (false for a command or key it may not use; an unknown command raises). */
static int redis_acl_check_cmd(lua_State *L)
{
    struct script_run *r = run_of(L);
    int argc = lua_gettop(L);
    if (argc == 0) {
        return raise_err(L, "ERR Please specify at least one argument for this redis lib call");
    }
    struct resp_arg *argv = lua_newuserdata(L, (size_t)argc * sizeof(*argv)); /* GC'd */
    if (!collect_args(L, argc, argv)) {
        return raise_err(L, "ERR Lua redis lib command arguments must be strings or integers");
    }
    int ok = r->env->acl_cb != NULL ? r->env->acl_cb(r->env->ctx, (size_t)argc, argv) : 1;
    if (ok < 0) {
        return raise_err(L, "ERR Invalid command passed to redis.acl_check_cmd()");
    }
    lua_pushboolean(L, ok);
    return 1;
}

static int redis_field_reply(lua_State *L, const char *field)
{
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
        /* Redis returns this error as the value (the script goes on), it does not raise it. */
        lua_newtable(L);
        lua_pushliteral(L, "ERR wrong number or type of arguments");
        lua_setfield(L, -2, "err");
        return 1;
    }
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, field);
    return 1;
}

/* redis.error_reply(s): Redis 7.0 reads s (a leading '-' added if missing) as "-CODE msg"
 * when it has a space, else gives it the code ERR; a trailing newline is dropped. */
static int redis_error_reply(lua_State *L)
{
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
        return redis_field_reply(L, "err");
    }
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    if (len > 0 && s[0] == '-') {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == '\n')) {
        len--;
    }
    lua_newtable(L);
    if (memchr(s, ' ', len) != NULL) {
        lua_pushlstring(L, s, len);
    } else {
        lua_pushliteral(L, "ERR ");
        lua_pushlstring(L, s, len);
        lua_concat(L, 2);
    }
    lua_setfield(L, -2, "err");
    return 1;
}

static int redis_status_reply(lua_State *L)
{
    return redis_field_reply(L, "ok");
}

static int redis_sha1hex(lua_State *L)
{
    if (lua_gettop(L) != 1) {
        return raise_err(L, "ERR wrong number of arguments");
    }
    size_t len;
    const char *p = lua_tolstring(L, 1, &len);
    char hex[HY_SHA1_HEX_LEN + 1];
    hy_sha1_hex(p != NULL ? p : "", p != NULL ? len : 0, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int redis_log(lua_State *L)
{
    int argc = lua_gettop(L);
    if (argc < 2) {
        return raise_err(L, "ERR redis.log() requires two arguments or more.");
    }
    if (!lua_isnumber(L, 1)) {
        return raise_err(L, "ERR First argument must be a number (log level).");
    }
    int level = (int)lua_tointeger(L, 1);
    if (level < 0 || level > 3) {
        return raise_err(L, "ERR Invalid debug level.");
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 2; i <= argc; i++) {
        size_t len;
        const char *p = lua_tolstring(L, i, &len);
        if (p != NULL) {
            if (i > 2) {
                luaL_addchar(&b, ' ');
            }
            luaL_addlstring(&b, p, len);
        }
    }
    luaL_pushresult(&b);
    const struct script_run *r = run_of(L);
    static const enum hy_log_level levels[] = {HY_LOG_DEBUG, HY_LOG_DEBUG, HY_LOG_INFO,
                                               HY_LOG_WARN};
    if (r->env->log != NULL) {
        hy_log(r->env->log, levels[level], "script: %s", lua_tostring(L, -1));
    }
    return 0;
}

static int redis_setresp(lua_State *L)
{
    if (lua_gettop(L) != 1) {
        return raise_err(L, "ERR redis.setresp() requires one argument.");
    }
    int v = (int)lua_tointeger(L, 1);
    if (v != 2 && v != 3) {
        return raise_err(L, "ERR RESP version must be 2 or 3.");
    }
    run_of(L)->proto = v;
    return 0;
}

static int redis_set_repl(lua_State *L)
{
    if (lua_gettop(L) != 1) {
        /* Redis 7.0's text, though the function takes one argument. */
        return raise_err(L, "ERR redis.set_repl() requires two arguments.");
    }
    int v = (int)lua_tointeger(L, 1);
    if (v < 0 || v > 3) {
        return raise_err(L, "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, "
                            "REPL_ALL or REPL_NONE.");
    }
    return 0; /* accepted: the whole script is the replicated entry */
}

static int redis_true(lua_State *L)
{
    lua_pushboolean(L, 1);
    return 1;
}

static int redis_false(lua_State *L)
{
    lua_pushboolean(L, 0);
    return 1;
}

/* ---- math.random: Redis's lrand48, seeded with the run's rand_seed ---------------------------
 */

static int32_t rand48_next(struct script_run *r)
{
    r->rand = (r->rand * 0x5DEECE66DULL + 0xB) & ((1ULL << 48) - 1);
    return (int32_t)(r->rand >> 17);
}

static void rand48_seed(struct script_run *r, int32_t seed)
{
    r->rand = ((uint64_t)(uint32_t)seed << 16) | 0x330E;
}

static int math_random(lua_State *L)
{
    struct script_run *r = run_of(L);
    lua_Number x = (lua_Number)(rand48_next(r) % LRAND48_MAX) / (lua_Number)LRAND48_MAX;
    switch (lua_gettop(L)) {
    case 0: lua_pushnumber(L, x); return 1;
    case 1: {
        int u = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= u, 1, "interval is empty");
        lua_pushnumber(L, floor(x * u) + 1);
        return 1;
    }
    case 2: {
        int l = luaL_checkint(L, 1), u = luaL_checkint(L, 2);
        luaL_argcheck(L, l <= u, 2, "interval is empty");
        lua_pushnumber(L, floor(x * (u - l + 1)) + l);
        return 1;
    }
    default: return luaL_error(L, "wrong number of arguments");
    }
}

static int math_randomseed(lua_State *L)
{
    rand48_seed(run_of(L), (int32_t)luaL_checkint(L, 1));
    return 0;
}

/* ---- the sandbox ------------------------------------------------------------------------------
 */

static int is_protected(lua_State *L, int idx)
{
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) {
        return 0;
    }
    raw_field(L, "__hy_readonly");
    int yes = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return yes;
}

/* Redis's VM refuses setmetatable and rawset on a read-only table without naming a line (an
 * assignment to one names it: readonly_err). */
static int readonly_call_err(lua_State *L)
{
    return raise_err(L, "ERR Attempt to modify a readonly table");
}

static int safe_setmetatable(lua_State *L)
{
    if (is_protected(L, 1)) {
        return readonly_call_err(L);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int safe_rawset(lua_State *L)
{
    if (is_protected(L, 1)) {
        return readonly_call_err(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int safe_loadstring(lua_State *L)
{
    size_t len;
    const char *p = luaL_checklstring(L, 1, &len);
    if (len > 0 && p[0] == LUA_SIGNATURE[0]) {
        lua_pushnil(L);
        lua_pushstring(L, "bytecode loading is not allowed");
        return 2;
    }
    const char *name = luaL_optstring(L, 2, p);
    if (luaL_loadbuffer(L, p, len, name) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    /* Its globals are the sandbox's, as the script's (not the thread's real table). */
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_env");
    lua_setfenv(L, -2);
    return 1;
}

/* The global proxy's __index: the real globals' value, or Redis's error. */
/* __index reading the table at index t (absolute or an upvalue): a missing name raises
 * Redis's "nonexistent global variable" error. */
static int lazy_lib_open(lua_State *L, const char *name);

static int index_or_raise(lua_State *L, int t)
{
    lua_pushvalue(L, 2);
    lua_rawget(L, t);
    if (lua_isnil(L, -1)) {
        const char *name = lua_tostring(L, 2);
        return luaL_error(L, "Script attempted to access nonexistent global variable '%s'",
                          name != NULL ? name : "?");
    }
    return 1;
}

static int global_index(lua_State *L)
{
    return index_or_raise(L, lua_upvalueindex(1));
}

/* The globals' __index: the real globals, or while a library's code loads only what Redis 7.0
 * gives that code (hy_load_globals: redis with register_function, log and the versions), so a
 * library cannot call commands or use math, string... at load, as in Redis. */
static int env_index(lua_State *L)
{
    if (run_of(L)->loading) {
        lua_getfield(L, LUA_REGISTRYINDEX, "hy_load_globals");
        return index_or_raise(L, lua_gettop(L));
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    /* At most twice: the base library, then the name's own. */
    while (lua_isnil(L, -1) && lua_type(L, 2) == LUA_TSTRING &&
           lazy_lib_open(L, lua_tostring(L, 2))) {
        lua_pop(L, 1);
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1));
    }
    if (lua_isnil(L, -1)) {
        return index_or_raise(L, lua_upvalueindex(1));
    }
    return 1;
}

/* Pushes a read-only proxy of the table at index real (absolute): reads go to it, writes
 * fail; its metatable is marked (is_protected) and hidden behind a read-only empty table. */
static void push_readonly_proxy(lua_State *L, int real, lua_CFunction index)
{
    /* What every proxy of the state shares, made once: readonly_err, and the read-only empty
     * table that getmetatable(proxy) answers. */
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_ro_mt");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushcfunction(L, readonly_err);
        lua_setfield(L, LUA_REGISTRYINDEX, "hy_ro_err");
        lua_newtable(L);
        lua_newtable(L);
        lua_getfield(L, LUA_REGISTRYINDEX, "hy_ro_err");
        lua_setfield(L, -2, "__newindex");
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "__hy_readonly");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, "hy_ro_mt");
    }
    int hidden = lua_gettop(L);
    lua_newtable(L);          /* the proxy */
    lua_createtable(L, 0, 4); /* its metatable */
    if (index != NULL) {
        lua_pushvalue(L, real);
        lua_pushcclosure(L, index, 1);
    } else {
        lua_pushvalue(L, real);
    }
    lua_setfield(L, -2, "__index");
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_ro_err");
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "__hy_readonly");
    lua_pushvalue(L, hidden);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, hidden);
}

static void open_lib(lua_State *L, lua_CFunction open, const char *name)
{
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (lua_istable(L, -1) && name[0] != '\0') {
        lua_setglobal(L, name);
    } else {
        lua_pop(L, 1);
    }
}

static void set_fn(lua_State *L, const char *name, lua_CFunction fn);

/* math's own random and randomseed give way to Redis's (the run's lrand48 state). */
static void math_redis_random(lua_State *L)
{
    lua_getglobal(L, LUA_MATHLIBNAME);
    set_fn(L, "random", math_random);
    set_fn(L, "randomseed", math_randomseed);
    lua_pop(L, 1);
}

/* A cjson setting (encode_sparse_array, encode_max_depth, ...): it lives in cjson's own
 * upvalues, past the run, so a script that calls one leaves the engine doubtful (rebuilt
 * after the run), and the next run sees cjson's defaults again. */
static int cjson_setting(lua_State *L)
{
    engine_of(L)->doubtful = 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void cjson_guard(lua_State *L)
{
    lua_getglobal(L, "cjson");
    int t = lua_gettop(L);
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (lua_iscfunction(L, -1) && strcmp(k, "encode") != 0 && strcmp(k, "decode") != 0 &&
            strcmp(k, "new") != 0) {
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_pushcclosure(L, cjson_setting, 1);
            lua_rawset(L, t);
        }
    }
    lua_pop(L, 1);
}

/*
 * The libraries opened on a script's first use of their name, not before every run: opening
 * all of them and building their proxies was most of a short script's cost. Nothing a script
 * can see tells the two apart (the globals it sees are an empty proxy: it can list none of
 * them), and every replica runs the same script, so each opens the same ones.
 */
static const struct lazy_lib {
    const char *name;
    lua_CFunction open;
    void (*after)(lua_State *L); /* changes made to the real table before it is proxied */
} lazy_libs[] = {
    {LUA_TABLIBNAME, luaopen_table, NULL},       {LUA_MATHLIBNAME, luaopen_math, math_redis_random},
    {"cjson", luaopen_cjson, cjson_guard},       {"bit", luaopen_bit, NULL},
    {"cmsgpack", script_luaopen_cmsgpack, NULL}, {"struct", script_luaopen_struct, NULL},
};

static int safe_setmetatable(lua_State *L);
static int safe_rawset(lua_State *L);
static int safe_loadstring(lua_State *L);

/* Calls the wrapped getfenv or setfenv (upvalue 1) with this call's arguments: a stack level
 * is one more there (this wrapper is a level of its own). */
static int fenv_forward(lua_State *L, int nresults)
{
    if (lua_type(L, 1) == LUA_TNUMBER && lua_tonumber(L, 1) > 0) {
        lua_pushnumber(L, lua_tonumber(L, 1) + 1);
        lua_replace(L, 1);
    }
    if (lua_gettop(L) == 0) {
        lua_pushinteger(L, 2); /* getfenv(): the caller's, level 1 here */
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, nresults);
    return lua_gettop(L);
}

/* getfenv answers the thread's globals for level 0 and for C functions: the real table, which
 * the script must never reach (a write there would outlive the run). It answers the proxy. */
static int safe_getfenv(lua_State *L)
{
    (void)fenv_forward(L, 1);
    if (lua_rawequal(L, -1, LUA_GLOBALSINDEX)) {
        lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, "hy_env");
    }
    return 1;
}

/* setfenv(0, t) would replace the thread's globals for every later run: refused. (A function's
 * own environment may change: the run's chunk gets the sandbox's again at every run.) */
static int safe_setfenv(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TNUMBER && lua_tonumber(L, 1) == 0) {
        return raise_err(L, "ERR Attempt to modify a readonly table");
    }
    return fenv_forward(L, LUA_MULTRET);
}

/* collectgarbage: "collect" and "step" collect everything (step answers true: a cycle
 * ended); the collector's settings ("stop", "restart", "setpause", "setstepmul") belong to the
 * engine and are left alone; "count" answers 0, as those do: what the state holds depends on
 * what ran in it before (other scripts, the leader's probe), so it is not the same on every
 * replica, and a script could write it. */
static int safe_collectgarbage(lua_State *L)
{
    static const char *const opts[] = {"collect", "count",    "step",       "stop",
                                       "restart", "setpause", "setstepmul", NULL};
    int o = luaL_checkoption(L, 1, "collect", opts);
    if (o == 0 || o == 2) {
        lua_gc(L, LUA_GCCOLLECT, 0);
    }
    if (o == 2) {
        lua_pushboolean(L, 1);
    } else {
        lua_pushinteger(L, 0);
    }
    return 1;
}

/* Replaces the global function name with a C closure of fn over the original. */
static void wrap_global(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getglobal(L, name);
    lua_pushcclosure(L, fn, 1);
    lua_setglobal(L, name);
}

/* The base library, sandboxed: what a script may not have is removed or replaced. It sets _G
 * to the real globals, which the script must never reach: _G names the proxy again. */
static void base_open(lua_State *L)
{
    open_lib(L, luaopen_base, "");
    static const char *const removed[] = {"loadfile", "dofile",  "print",    "load",
                                          "module",   "require", "newproxy", "gcinfo"};
    for (size_t i = 0; i < HY_ARRAY_LEN(removed); i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    wrap_global(L, "setmetatable", safe_setmetatable);
    wrap_global(L, "getfenv", safe_getfenv);
    wrap_global(L, "setfenv", safe_setfenv);
    lua_pushcfunction(L, safe_rawset);
    lua_setglobal(L, "rawset");
    lua_pushcfunction(L, safe_loadstring);
    lua_setglobal(L, "loadstring");
    lua_pushcfunction(L, safe_collectgarbage);
    lua_setglobal(L, "collectgarbage");
    /* The base library's own table, read-only as the others. */
    lua_getglobal(L, "coroutine");
    push_readonly_proxy(L, lua_gettop(L), NULL);
    lua_setglobal(L, "coroutine");
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_env");
    lua_setglobal(L, "_G");
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "hy_base");
}

/* Opens what a missing global name may need, into the real globals: the base library at the
 * first miss (so any of its names; the caller then looks again), or the lazy library name,
 * behind its read-only proxy. 0 when there is nothing to open. Raises Lua's memory error
 * when memory runs out. */
static int lazy_lib_open(lua_State *L, const char *name)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_base");
    int base = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!base) {
        base_open(L);
        return 1;
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(lazy_libs); i++) {
        const struct lazy_lib *lib = &lazy_libs[i];
        if (strcmp(lib->name, name) != 0) {
            continue;
        }
        open_lib(L, lib->open, lib->name);
        if (lib->after != NULL) {
            lib->after(L);
        }
        lua_getglobal(L, lib->name);
        if (lua_istable(L, -1)) {
            push_readonly_proxy(L, lua_gettop(L), NULL);
            lua_setglobal(L, lib->name);
        }
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}

static int name_valid(const char *p, size_t len)
{
    if (len == 0 || len > SCRIPT_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* The flags table of register_function into *out; 0 on an unknown flag (or one that is not a
 * string). */
static int register_flags(lua_State *L, int idx, unsigned *out)
{
    *out = 0;
    for (int i = 1;; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            return 1;
        }
        const char *f = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
        if (f == NULL) {
            lua_pop(L, 1);
            return 0;
        }
        if (strcmp(f, "no-writes") == 0) {
            *out |= SCRIPT_FN_NO_WRITES;
        } else if (strcmp(f, "no-cluster") == 0) {
            *out |= SCRIPT_FN_NO_CLUSTER;
        } else if (strcmp(f, "allow-oom") != 0 && strcmp(f, "allow-stale") != 0 &&
                   strcmp(f, "allow-cross-slot-keys") != 0) {
            lua_pop(L, 1);
            return 0;
        }
        lua_pop(L, 1);
    }
}

/* register_function's arguments, read from its named form or its positional one. */
struct register_args {
    int name_idx, fn_idx; /* stack indexes of the name and the callback */
    int desc_idx;         /* of the description; 0: none */
    unsigned flags;
};

/* redis.register_function{function_name=, callback=, flags=, description=}: the table at 1,
 * read in its own order, the first wrong argument reported, as Redis 7.0 does. On success the
 * name and the callback are at a->name_idx and a->fn_idx. Returns NULL or the error. */
static const char *register_named_args(lua_State *L, struct register_args *a)
{
    if (!lua_istable(L, 1)) {
        return "calling redis.register_function with a single argument is only applicable to "
               "Lua table (representing named arguments).";
    }
    luaL_checkstack(L, 8, "in redis.register_function");
    lua_newtable(L); /* 2: the name and the callback found so far */
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (key == NULL) {
            return "named argument key given to redis.register_function is not a string";
        }
        if (strcasecmp(key, "function_name") == 0) {
            if (!lua_isstring(L, -1)) {
                return "function_name argument given to redis.register_function must be a "
                       "string";
            }
            lua_pushvalue(L, -1);
            lua_setfield(L, 2, "name");
        } else if (strcasecmp(key, "description") == 0) {
            if (!lua_isstring(L, -1)) {
                return "description argument given to redis.register_function must be a string";
            }
            lua_pushvalue(L, -1);
            lua_setfield(L, 2, "desc");
        } else if (strcasecmp(key, "callback") == 0) {
            if (!lua_isfunction(L, -1)) {
                return "callback argument given to redis.register_function must be a function";
            }
            lua_pushvalue(L, -1);
            lua_setfield(L, 2, "fn");
        } else if (strcasecmp(key, "flags") == 0) {
            if (!lua_istable(L, -1)) {
                return "flags argument to redis.register_function must be a table representing "
                       "function flags";
            }
            if (!register_flags(L, lua_gettop(L), &a->flags)) {
                return "unknown flag given";
            }
        } else {
            return "unknown argument given to redis.register_function";
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, 2, "name"); /* 3 */
    lua_getfield(L, 2, "fn");   /* 4 */
    if (lua_isnil(L, 3)) {
        return "redis.register_function must get a function name argument";
    }
    if (lua_isnil(L, 4)) {
        return "redis.register_function must get a callback argument";
    }
    a->name_idx = 3;
    a->fn_idx = 4;
    lua_getfield(L, 2, "desc"); /* 5, nil when not given */
    a->desc_idx = lua_isnil(L, 5) ? 0 : 5;
    return NULL;
}

/* The arguments of redis.register_function, in either form; NULL or the error. */
static const char *register_args_read(lua_State *L, struct register_args *a)
{
    int argc = lua_gettop(L);
    if (argc < 1 || argc > 2) {
        return "wrong number of arguments to redis.register_function";
    }
    if (argc == 1) {
        return register_named_args(L, a);
    }
    if (!lua_isstring(L, 1)) {
        return "first argument to redis.register_function must be a string";
    }
    if (!lua_isfunction(L, 2)) {
        return "second argument to redis.register_function must be a function";
    }
    a->name_idx = 1;
    a->fn_idx = 2;
    return NULL;
}

/* redis.register_function(name, fn) or redis.register_function{...}: while a library loads,
 * keeps {fn, flags} under the lower-cased name. Its errors carry no line, as Redis's. */
static int redis_register_function(lua_State *L)
{
    if (!run_of(L)->loading) {
        return raise_err(L, "ERR redis.register_function can only be called on FUNCTION LOAD "
                            "command");
    }
    struct register_args a = {0};
    const char *err = register_args_read(L, &a);
    size_t len = 0;
    const char *name = err == NULL ? lua_tolstring(L, a.name_idx, &len) : NULL;
    if (err == NULL && !name_valid(name, len)) {
        /* Redis 7.0 says "Library" for a function's name too; scripts match the text. */
        err = "Library names can only contain letters, numbers, or underscores(_) and must be at "
              "least one character long";
    }
    char lower[SCRIPT_NAME_MAX + 1];
    if (err == NULL) {
        for (size_t i = 0; i <= len; i++) {
            lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        }
        lua_getfield(L, LUA_REGISTRYINDEX, "hy_functions");
        lua_getfield(L, -1, lower);
        if (!lua_isnil(L, -1)) {
            err = "Function already exists in the library";
        }
        lua_pop(L, 1);
    }
    if (err != NULL) {
        lua_pushfstring(L, "ERR %s", err);
        return raise_err(L, lua_tostring(L, -1));
    }
    lua_newtable(L);
    lua_pushvalue(L, a.fn_idx);
    lua_setfield(L, -2, "fn");
    lua_pushinteger(L, (lua_Integer)a.flags);
    lua_setfield(L, -2, "flags");
    if (a.desc_idx != 0) {
        lua_pushvalue(L, a.desc_idx);
        lua_setfield(L, -2, "desc");
    }
    lua_setfield(L, -2, lower);
    return 0;
}

static void set_fn(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
}

static void set_int(lua_State *L, const char *name, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, name);
}

static void open_redis_lib(lua_State *L)
{
    /* Sized for its 23 fields at once: grown from empty, the table was rehashed five times
     * in every run (lua_setfield was a third of a short EVALSHA's instructions). */
    lua_createtable(L, 0, 23);
    /* call and pcall hold the reply's converter, which they run protected. */
    lua_pushcfunction(L, push_reply_protected);
    lua_pushcclosure(L, redis_call, 1);
    lua_setfield(L, -2, "call");
    lua_pushcfunction(L, push_reply_protected);
    lua_pushcclosure(L, redis_pcall, 1);
    lua_setfield(L, -2, "pcall");
    set_fn(L, "error_reply", redis_error_reply);
    set_fn(L, "status_reply", redis_status_reply);
    set_fn(L, "sha1hex", redis_sha1hex);
    set_fn(L, "log", redis_log);
    set_fn(L, "setresp", redis_setresp);
    set_fn(L, "set_repl", redis_set_repl);
    set_fn(L, "acl_check_cmd", redis_acl_check_cmd);
    set_fn(L, "replicate_commands", redis_true);
    set_fn(L, "breakpoint", redis_false);
    set_fn(L, "debug", redis_false);
    set_int(L, "LOG_DEBUG", 0);
    set_int(L, "LOG_VERBOSE", 1);
    set_int(L, "LOG_NOTICE", 2);
    set_int(L, "LOG_WARNING", 3);
    set_int(L, "REPL_NONE", 0);
    set_int(L, "REPL_AOF", 1);
    set_int(L, "REPL_SLAVE", 2);
    set_int(L, "REPL_REPLICA", 2);
    set_int(L, "REPL_ALL", 3);
    lua_pushstring(L, "7.0.15");
    lua_setfield(L, -2, "REDIS_VERSION");
    set_int(L, "REDIS_VERSION_NUM", 0x0007000f);
    lua_setglobal(L, "redis");
}

static void push_string_array(lua_State *L, const struct resp_arg *a, size_t n)
{
    lua_createtable(L, (int)HY_MIN(n, (size_t)INT32_MAX), 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushlstring(L, (const char *)a[i].ptr, a[i].len);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

struct setup_args {
    const struct resp_arg *keys, *args;
    size_t nkeys, nargs;
    int functions; /* a library: no KEYS/ARGV globals */
};

/* Builds what a library's code sees while it loads (env_index), as Redis 7.0's library API:
 * redis with register_function, log, the log levels and the versions, all read-only, a
 * missing name (redis.call, math) being a "nonexistent global variable". */
static void push_load_globals(lua_State *L)
{
    lua_newtable(L);
    int api = lua_gettop(L);
    set_fn(L, "register_function", redis_register_function);
    set_fn(L, "log", redis_log);
    set_int(L, "LOG_DEBUG", 0);
    set_int(L, "LOG_VERBOSE", 1);
    set_int(L, "LOG_NOTICE", 2);
    set_int(L, "LOG_WARNING", 3);
    lua_pushstring(L, "7.0.15");
    lua_setfield(L, -2, "REDIS_VERSION");
    set_int(L, "REDIS_VERSION_NUM", 0x0007000f);
    lua_newtable(L);
    int globals = lua_gettop(L);
    push_readonly_proxy(L, api, global_index);
    lua_setfield(L, globals, "redis");
    lua_setfield(L, LUA_REGISTRYINDEX, "hy_load_globals");
    lua_pop(L, 1);
}

/* Every string's metatable is shared by every run: getmetatable('') answers a read-only
 * stand-in ({__index = the string library's proxy}), so no script can change what ('x'):upper()
 * means for the next (Redis 7 made the metatables of basic types read-only too). */
static void string_metatable_guard(lua_State *L)
{
    lua_pushliteral(L, "");
    if (!lua_getmetatable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    int mt = lua_gettop(L);
    lua_createtable(L, 0, 1);
    lua_getglobal(L, LUA_STRLIBNAME); /* its proxy by now */
    lua_setfield(L, -2, "__index");
    push_readonly_proxy(L, lua_gettop(L), NULL);
    lua_setfield(L, mt, "__metatable");
    lua_pop(L, 3);
}

/* Opens the libraries and builds the sandbox (run under lua_cpcall: errors are caught). */
static int sandbox_setup(lua_State *L)
{
    const struct setup_args *a = lua_touserdata(L, 1);
    /* The others open on first use (lazy_lib_open): the base library at a script's first
     * global name that is not here, table, math, cjson... at their names. string's functions
     * are also every string's methods, which reach it without its name. */
    open_lib(L, luaopen_string, LUA_STRLIBNAME);
    open_redis_lib(L);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "hy_functions");
    if (a != NULL && !a->functions) {
        push_string_array(L, a->keys, a->nkeys);
        lua_setglobal(L, "KEYS");
        push_string_array(L, a->args, a->nargs);
        lua_setglobal(L, "ARGV");
    }
    /* Library tables become read-only proxies. */
    static const char *const libs[] = {"redis", LUA_STRLIBNAME};
    for (size_t i = 0; i < HY_ARRAY_LEN(libs); i++) {
        lua_getglobal(L, libs[i]);
        if (lua_istable(L, -1)) {
            push_readonly_proxy(L, lua_gettop(L), NULL);
            lua_setglobal(L, libs[i]);
        }
        lua_pop(L, 1);
    }
    string_metatable_guard(L);
    if (a != NULL && a->functions) {
        push_load_globals(L);
    }
    /* The globals' proxy, which the script runs in; _G names it. */
    push_readonly_proxy(L, LUA_GLOBALSINDEX, env_index);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "_G");
    lua_setfield(L, LUA_REGISTRYINDEX, "hy_env");
    return 0;
}

/* Loads body as the chunk to run (a "#!lua" first line is left out, its line kept). */
static int load_chunk(lua_State *L, const uint8_t *body, size_t len, const char *chunk)
{
    const char *p = (const char *)body;
    if (len >= 2 && p[0] == '#' && p[1] == '!') {
        /* "--" in place of "#!": the shebang becomes a comment and lines keep their numbers. */
        lua_pushliteral(L, "--");
        lua_pushlstring(L, p + 2, len - 2);
        lua_concat(L, 2);
        size_t blen;
        const char *bp = lua_tolstring(L, -1, &blen);
        int rc = luaL_loadbuffer(L, bp, blen, chunk);
        lua_remove(L, -2);
        return rc;
    }
    return luaL_loadbuffer(L, p, len, chunk);
}

static int load_body(lua_State *L, const uint8_t *body, size_t len)
{
    return load_chunk(L, body, len, SCRIPT_CHUNK_NAME);
}

/* A state of its own for one use (a library's load, an FCALL), charged to e (zeroed by the
 * caller, e->run set). NULL when memory runs out. */
static lua_State *state_new(struct script_engine *e, const struct setup_args *a)
{
    lua_State *L = lua_newstate(script_alloc, e);
    if (L == NULL) {
        arena_release(&e->arena);
        return NULL;
    }
    if (lua_cpcall(L, sandbox_setup, (void *)a) != 0) {
        state_close(L);
        return NULL;
    }
    return L;
}

static void write_compile_error(struct resp_writer *w, lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    struct hy_buf b;
    hy_buf_init(&b);
    hy_buf_printf(&b, "ERR Error compiling script (new function): %s",
                  msg != NULL ? msg : "unknown error");
    write_error_text(w, (const char *)b.data, b.len);
    hy_buf_free(&b);
}

/* Writes the error table at the top as Redis 7.0's script error reply. */
static void write_run_error(struct script_run *r, lua_State *L, struct resp_writer *w)
{
    if (r->quiet) {
        resp_write_error(w, "ERR script stopped");
        return;
    }
    if (r->sha[0] == '\0') {
        hy_sha1_hex(r->body, r->body_len, r->sha); /* made here only: most runs need none */
    }
    const char *err = NULL;
    size_t len = 0;
    int line = 0;
    if (lua_istable(L, -1)) {
        raw_field(L, "err");
        err = lua_tolstring(L, -1, &len);
        lua_pop(L, 1);
        raw_field(L, "line");
        line = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    struct hy_buf b;
    hy_buf_init(&b);
    if (err == NULL) {
        hy_buf_append_str(&b, "ERR unknown error");
    } else {
        hy_buf_append(&b, err, len);
    }
    hy_buf_printf(&b, " script: %s, on %s:%d.", r->sha,
                  r->function ? FUNCTION_CHUNK : SCRIPT_CHUNK_NAME, line);
    write_error_text(w, (const char *)b.data, b.len);
    hy_buf_free(&b);
}

/* ---- the engine: one long-lived state for EVAL ------------------------------------------------
 */

/* Bodies compiled and kept (by their text) before the cache starts over, and their bytes. */
#define ENGINE_CACHE_COUNT_MAX 1024
#define ENGINE_CACHE_BYTES_MAX (4u * 1024 * 1024)
/* Past this many bytes held after a run (a big run's garbage, a full cache), the engine is
 * closed and built again, which gives the memory back. */
#define ENGINE_BYTES_MAX       (16u * 1024 * 1024)

static int engine_run_protected(lua_State *L);
static void engine_cache_clear(lua_State *L, struct script_engine *e);
static int library_register(lua_State *L, struct script_run *r, const uint8_t *code, size_t len,
                            int cache, struct resp_writer *w);

static _Thread_local struct script_engine *engine_tls;
static _Thread_local uint64_t engine_builds;

/* The engine's setup, past sandbox_setup's: every library open now (a run must not pay for
 * one, nor leave one opened behind it), the collector settled, and the compiled-body cache. */
static int engine_setup(lua_State *L)
{
    struct setup_args a = {0};
    lua_pushlightuserdata(L, &a);
    lua_replace(L, 1);
    sandbox_setup(L);
    lua_settop(L, 0);
    (void)lazy_lib_open(L, "");
    for (size_t i = 0; i < HY_ARRAY_LEN(lazy_libs); i++) {
        (void)lazy_lib_open(L, lazy_libs[i].name);
    }
    struct script_engine *e = engine_of(L);
    lua_pushcfunction(L, engine_run_protected);
    e->ref_run = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, error_handler);
    e->ref_handler = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    e->ref_cache = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L); /* library code's chunks (FCALL): named @user_function */
    e->ref_fcache = luaL_ref(L, LUA_REGISTRYINDEX);
    push_load_globals(L); /* what a library's code sees while it registers its functions */
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_env");
    e->ref_env = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushliteral(L, "KEYS");
    e->ref_keys = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushliteral(L, "ARGV");
    e->ref_argv = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static void engine_free(struct script_engine *e)
{
    if (e != NULL) {
        state_close(e->L);
        hy_free(e);
    }
}

static struct script_engine *engine_new(void)
{
    struct script_engine *e = hy_xcalloc(1, sizeof(*e));
    engine_builds++;
    e->L = lua_newstate(script_alloc, e);
    if (e->L == NULL) {
        arena_release(&e->arena);
        hy_free(e);
        return NULL;
    }
    if (lua_cpcall(e->L, engine_setup, NULL) != 0) {
        engine_free(e);
        return NULL;
    }
    lua_gc(e->L, LUA_GCCOLLECT, 0); /* the setup's garbage is not the first run's to pay */
    return e;
}

void script_engine_reset(void)
{
    engine_free(engine_tls);
    engine_tls = NULL;
}

uint64_t script_engine_builds(void)
{
    return engine_builds;
}

void script_cache_flush(void)
{
    struct script_engine *e = engine_tls;
    if (e != NULL && e->run == NULL && e->cache_count > 0) {
        engine_cache_clear(e->L, e); /* allocates nothing: it cannot fail */
    }
}

/* Empties the table at index t (in place: who holds it keeps it). */
static void table_clear(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, t); /* clearing a field during a traversal is allowed */
    }
}

/* Forgets every compiled body and library chunk of the engine. */
static void engine_cache_clear(lua_State *L, struct script_engine *e)
{
    int refs[] = {e->ref_cache, e->ref_fcache};
    for (size_t i = 0; i < HY_ARRAY_LEN(refs); i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, refs[i]);
        table_clear(L, lua_gettop(L));
        lua_pop(L, 1);
    }
    e->cache_count = 0;
    e->cache_bytes = 0;
}

/* Pushes body's compiled chunk (named chunk): from the cache table at index cache_idx, or
 * compiled now and kept there; when that is not a table, compiled only. 0 with the compile
 * error pushed instead. Raises Lua's memory error. */
static int chunk_get(lua_State *L, int cache_idx, const uint8_t *body, size_t len,
                     const char *chunk)
{
    struct script_engine *e = engine_of(L);
    if (!lua_istable(L, cache_idx)) {
        return load_chunk(L, body, len, chunk) == 0;
    }
    lua_pushvalue(L, cache_idx);
    int cache = lua_gettop(L);
    lua_pushlstring(L, (const char *)body, len);
    lua_pushvalue(L, -1);
    lua_rawget(L, cache);
    if (lua_isfunction(L, -1)) {
        lua_replace(L, cache);
        lua_settop(L, cache);
        return 1;
    }
    lua_pop(L, 1);
    if (load_chunk(L, body, len, chunk) != 0) {
        lua_replace(L, cache);
        lua_settop(L, cache);
        return 0;
    }
    if (e->cache_count >= ENGINE_CACHE_COUNT_MAX || e->cache_bytes + len > ENGINE_CACHE_BYTES_MAX) {
        engine_cache_clear(L, e); /* start over: an optimisation, no one's state */
    }
    if (len <= ENGINE_CACHE_BYTES_MAX) {
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, cache);
        e->cache_count++;
        e->cache_bytes += len;
    }
    lua_replace(L, cache);
    lua_settop(L, cache);
    return 1;
}

struct engine_call {
    struct script_run *r;
    const uint8_t *body; /* EVAL's body, or FCALL's library code */
    size_t len;
    const struct resp_arg *keys, *args;
    size_t nkeys, nargs;
    int compiled;
    struct resp_writer w; /* into a scratch buffer, kept only when the call ends normally */
    const char *fname;    /* FCALL: the function (lower case); NULL for EVAL */
};

/* Sets the global name (a registry reference) to the table of a[0..n), or to nil when not
 * present. */
static void set_global_array(lua_State *L, int name_ref, const struct resp_arg *a, size_t n,
                             int present)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, name_ref);
    if (present) {
        push_string_array(L, a, n);
    } else {
        lua_pushnil(L);
    }
    lua_rawset(L, LUA_GLOBALSINDEX);
}

/*
 * An FCALL in the engine: the library's chunk (compiled once, kept by its code) runs again to
 * register its functions afresh, so no upvalue a previous call left survives (Redis keeps a
 * library's state between calls; here a follower never ran the leader's probe), then the
 * function runs with KEYS and ARGV as its arguments, as in a state of its own: no KEYS or ARGV
 * global (an EVAL's are cleared). Handler at index 1.
 */
static int engine_fcall(lua_State *L, struct script_engine *e, struct engine_call *c)
{
    set_global_array(L, e->ref_keys, NULL, 0, 0);
    set_global_array(L, e->ref_argv, NULL, 0, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref_fcache); /* 2 */
    if (!library_register(L, c->r, c->body, c->len, 2, &c->w)) {
        return 0;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_functions");
    lua_getfield(L, -1, c->fname);
    if (!lua_istable(L, -1)) {
        resp_write_error(&c->w, "ERR Function not found");
        return 0;
    }
    raw_field(L, "fn");
    lua_replace(L, 2);
    lua_settop(L, 2);
    push_string_array(L, c->keys, c->nkeys);
    push_string_array(L, c->args, c->nargs);
    e->mem_base = e->mem_used;
    lua_sethook(L, script_hook, LUA_MASKCOUNT, SCRIPT_HOOK_STEPS);
    int rc = lua_pcall(L, 2, 1, 1);
    lua_sethook(L, NULL, 0, 0);
    if (rc != 0) {
        write_run_error(c->r, L, &c->w);
    } else {
        write_value(L, &c->w, 0);
    }
    return 0;
}

/* One run in the engine, called protected: anything raised outside the script's own pcall
 * (memory, while KEYS are built or the reply converted) ends it, and the caller answers. */
static int engine_run_protected(lua_State *L)
{
    struct engine_call *c = lua_touserdata(L, 1);
    struct script_engine *e = engine_of(L);
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref_handler); /* 1 */
    if (c->fname != NULL) {
        return engine_fcall(L, e, c);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref_cache); /* 2 */
    if (!chunk_get(L, 2, c->body, c->len, SCRIPT_CHUNK_NAME)) {
        write_compile_error(&c->w, L);
        return 0;
    }
    lua_replace(L, 2); /* the chunk */
    c->compiled = 1;
    /* A run may have changed its chunk's environment (setfenv(1, t)): the next sees the
     * sandbox's globals again. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref_env);
    lua_setfenv(L, 2);
    set_global_array(L, e->ref_keys, c->keys, c->nkeys, 1);
    set_global_array(L, e->ref_argv, c->args, c->nargs, 1);
    /* The run is charged from here: a cached body's compile cost nothing, a fresh one's is not
     * the script's to count. */
    e->mem_base = e->mem_used;
    lua_sethook(L, script_hook, LUA_MASKCOUNT, SCRIPT_HOOK_STEPS);
    int rc = lua_pcall(L, 0, 1, 1);
    lua_sethook(L, NULL, 0, 0);
    if (rc == 0) {
        write_value(L, &c->w, 0);
    } else if (c->r->quiet || lua_istable(L, -1)) {
        write_run_error(c->r, L, &c->w);
    } else {
        /* The handler itself failed (out of memory, say). */
        const char *msg = lua_tostring(L, -1);
        struct hy_buf b;
        hy_buf_init(&b);
        hy_buf_printf(&b, "ERR Error running script: %s", msg != NULL ? msg : "error");
        write_error_text(&c->w, (const char *)b.data, b.len);
        hy_buf_free(&b);
    }
    return 0;
}

/* The run r as script.h's caller set it up: limits, math.random's seed, the SHA-1 if known. */
static void run_init(struct script_run *r, const struct script_env *env)
{
    memset(r, 0, sizeof(*r));
    r->env = env;
    r->mem_max = env->memory_max > 0 ? env->memory_max : SCRIPT_MEMORY_BYTES_MAX;
    r->proto = 2;
    rand48_seed(r, (int32_t)env->rand_seed);
    if (env->sha != NULL) {
        memcpy(r->sha, env->sha, HY_SHA1_HEX_LEN); /* 40 digits (script.h); r->sha ends zeroed */
    }
}

/* Runs c (its run c->r) in the thread's engine, or in a state of its own when the caller asks
 * (env->fresh_state) or the engine is busy (a run inside a run: never from the node, which
 * refuses scripts in scripts), and appends the reply to w. */
static void engine_call_run(struct engine_call *c, struct resp_writer *w)
{
    struct script_run *r = c->r;
    struct script_engine *e = engine_tls;
    int own = r->env->fresh_state || (e != NULL && e->run != NULL);
    if (own || e == NULL) {
        e = engine_new();
        if (e == NULL) {
            resp_write_error(w, "ERR the script could not start: out of memory");
            return;
        }
        if (!own) {
            engine_tls = e;
        }
    }
    struct hy_buf scratch;
    hy_buf_init(&scratch);
    c->w = (struct resp_writer){&scratch, w->proto};
    e->run = r;
    e->mem_base = e->mem_used;
    /* lua_pcall of a function made once, not lua_cpcall (a new closure, and garbage, each run). */
    lua_rawgeti(e->L, LUA_REGISTRYINDEX, e->ref_run);
    lua_pushlightuserdata(e->L, c);
    int rc = lua_pcall(e->L, 1, 0, 0);
    lua_sethook(e->L, NULL, 0, 0);
    lua_settop(e->L, 0);
    e->run = NULL;
    e->mem_base = 0;
    if (rc != 0) {
        resp_write_error(w, "ERR the script's reply could not be converted (out of memory)");
        r->oom = 1;
    } else {
        hy_buf_append(w->out, scratch.data, scratch.len);
    }
    hy_buf_free(&scratch);
    /* What a run could leave behind that the next must not see is rebuilt from scratch: a
     * state that ran out of memory (Lua's own structures may be half grown), a library whose
     * settings a script changed (cjson's), or one grown too large. */
    if (own || r->oom || e->doubtful || e->mem_used > ENGINE_BYTES_MAX) {
        if (e == engine_tls) {
            engine_tls = NULL;
        }
        engine_free(e);
    }
}

/* script_run and script_fcall: fname NULL for an EVAL body, else the function of library
 * code body. Returns 1 when the body compiled (EVAL). */
static int engine_invoke(const struct script_env *env, const uint8_t *body, size_t len,
                         const char *fname, const struct resp_arg *keys, size_t nkeys,
                         const struct resp_arg *args, size_t nargs, struct resp_writer *w)
{
    struct script_run r;
    run_init(&r, env);
    if (fname != NULL) {
        r.function = 1;
        snprintf(r.sha, sizeof(r.sha), "%s", fname); /* errors name the function */
    } else {
        r.body = body;
        r.body_len = len;
    }
    struct engine_call c = {.r = &r,
                            .body = body,
                            .len = len,
                            .keys = keys,
                            .args = args,
                            .nkeys = nkeys,
                            .nargs = nargs,
                            .fname = fname};
    engine_call_run(&c, w);
    return c.compiled;
}

int script_run(const struct script_env *env, const uint8_t *body, size_t len,
               const struct resp_arg *keys, size_t nkeys, const struct resp_arg *args, size_t nargs,
               struct resp_writer *w)
{
    return engine_invoke(env, body, len, NULL, keys, nkeys, args, nargs, w);
}

int script_compile_check(const uint8_t *body, size_t len, struct resp_writer *w)
{
    struct script_env env = {0};
    struct script_run r = {.env = &env, .mem_max = SCRIPT_MEMORY_BYTES_MAX, .proto = 2};
    /* Compiling needs no library, nor the sandbox: a bare state parses as well, at a fraction
     * of the cost (the libraries and read-only proxies were most of each EVAL's checks). */
    struct script_engine e = {.run = &r};
    lua_State *L = lua_newstate(script_alloc, &e);
    if (L == NULL) {
        arena_release(&e.arena);
        resp_write_error(w, "ERR Error compiling script: out of memory");
        return 0;
    }
    int ok = load_body(L, body, len) == 0;
    if (!ok) {
        write_compile_error(w, L);
    }
    state_close(L);
    return ok;
}

/* ---- functions --------------------------------------------------------------------------------
 */

/* Splits line into words as Redis's sdssplitargs does: blanks separate words; "double
 * quotes" take the escapes \xHH, \n, \r, \t, \b, \a and \<char>; 'single quotes' take \';
 * a closing quote must end its word. The words are written NUL-terminated into out (as large
 * as line), words[i] pointing at each. Returns their count, or -1 when a quote is not closed
 * or not followed by a blank, or past max words. */
static int split_args(const char *p, char *out, char **words, int max)
{
    int n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f') {
            p++;
        }
        if (*p == '\0') {
            return n;
        }
        if (n == max) {
            return -1;
        }
        words[n++] = out;
        int quote = 0; /* '"', '\'' or 0 */
        for (int done = 0; !done; p += *p != '\0') {
            if (quote == 0) {
                if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '\0') {
                    done = 1;
                } else if (*p == '"' || *p == '\'') {
                    quote = *p;
                } else {
                    *out++ = *p;
                }
                continue;
            }
            if (*p == '\0') {
                return -1; /* the quote is never closed */
            }
            if (*p == quote) {
                if (p[1] != '\0' && !isspace((unsigned char)p[1])) {
                    return -1;
                }
                done = 1;
            } else if (quote == '\'' && p[0] == '\\' && p[1] == '\'') {
                *out++ = *++p;
            } else if (quote == '"' && p[0] == '\\' && p[1] == 'x' &&
                       isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3])) {
                char hex[3] = {p[2], p[3], '\0'};
                *out++ = (char)strtol(hex, NULL, 16);
                p += 3;
            } else if (quote == '"' && p[0] == '\\' && p[1] != '\0') {
                static const char from[] = "nrtba", to[] = "\n\r\t\b\a";
                const char *e = strchr(from, *++p);
                *out++ = e != NULL ? to[e - from] : *p;
            } else {
                *out++ = *p;
            }
        }
        *out++ = '\0';
    }
}

/* The "#!<engine> name=<lib>" line of a library, read as Redis 7.0 reads it (its words split
 * as sdssplitargs splits them, so name="x" is x). Returns 1 with the name, else 0 with the
 * error written. */
static int library_meta(const uint8_t *code, size_t len, char name_out[SCRIPT_NAME_MAX + 1],
                        struct resp_writer *w)
{
    if (len < 2 || code[0] != '#' || code[1] != '!') {
        resp_write_error(w, "ERR Missing library metadata");
        return 0;
    }
    /* Redis looks for the newline in the code as a C string: a NUL before it hides it. */
    size_t end = 0;
    while (end < len && code[end] != '\n' && code[end] != '\0') {
        end++;
    }
    if (end == len || code[end] != '\n') {
        resp_write_error(w, "ERR Invalid library metadata");
        return 0;
    }
    char line[1024], words_buf[1024];
    char *words[32];
    if (end >= sizeof(line)) {
        resp_write_error(w, "ERR Invalid metadata: the first line is too long");
        return 0;
    }
    memcpy(line, code, end);
    line[end] = '\0';
    int n = split_args(line, words_buf, words, (int)HY_ARRAY_LEN(words));
    if (n <= 0) {
        resp_write_error(w, "ERR Invalid library metadata");
        return 0;
    }
    const char *name = NULL;
    for (int i = 1; i < n; i++) {
        if (strncasecmp(words[i], "name=", 5) != 0) {
            resp_write_errorf(w, "ERR Invalid metadata value given: %s", words[i]);
            return 0;
        }
        if (name != NULL) {
            resp_write_error(w, "ERR Invalid metadata value, name argument was given multiple "
                                "times");
            return 0;
        }
        name = words[i] + 5;
    }
    if (name == NULL) {
        resp_write_error(w, "ERR Library name was not given");
        return 0;
    }
    if (!name_valid(name, strlen(name))) {
        resp_write_error(w, "ERR Library names can only contain letters, numbers, or "
                            "underscores(_) and must be at least one character long");
        return 0;
    }
    /* words[0] is "#!<engine>" (the shebang has no blank after "#!" in a valid library). */
    if (strcasecmp(words[0] + 2, "lua") != 0) {
        resp_write_errorf(w, "ERR Engine '%s' not found", words[0] + 2);
        return 0;
    }
    snprintf(name_out, SCRIPT_NAME_MAX + 1, "%s", name);
    return 1;
}

/*
 * Runs a library's code as FUNCTION LOAD does (loading: register_function yes, redis.call no):
 * its functions go to a new registry table hy_functions. The message handler is at index 1;
 * the chunk is taken from (and kept in) the cache table at index cache when that is a table,
 * else compiled. Returns 1, or 0 with the error written to w (as Redis words it).
 */
static int library_register(lua_State *L, struct script_run *r, const uint8_t *code, size_t len,
                            int cache, struct resp_writer *w)
{
    if (!chunk_get(L, cache, code, len, FUNCTION_CHUNK)) {
        const char *msg = lua_tostring(L, -1);
        struct hy_buf b;
        hy_buf_init(&b);
        hy_buf_printf(&b, "ERR Error compiling function: %s", msg != NULL ? msg : "error");
        write_error_text(w, (const char *)b.data, b.len);
        hy_buf_free(&b);
        return 0;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_env");
    lua_setfenv(L, -2);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "hy_functions");
    r->loading = 1;
    lua_sethook(L, script_hook, LUA_MASKCOUNT, SCRIPT_HOOK_STEPS);
    int rc = lua_pcall(L, 0, 0, 1);
    lua_sethook(L, NULL, 0, 0);
    r->loading = 0;
    if (rc == 0) {
        return 1;
    }
    const char *err = NULL;
    size_t elen = 0;
    if (lua_istable(L, -1)) {
        raw_field(L, "err");
        err = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &elen) : NULL;
    }
    struct hy_buf b;
    hy_buf_init(&b);
    hy_buf_append_str(&b, "ERR Error registering functions: ");
    if (err != NULL) {
        /* The error keeps its own code: "... functions: ERR user_function:2: ...", as Redis
         * 7.0 words it. */
        hy_buf_append(&b, err, elen);
    }
    write_error_text(w, (const char *)b.data, b.len);
    hy_buf_free(&b);
    return 0;
}

/* Loads and runs a library's code in a fresh state charged to e (its functions registered;
 * e->run is the run). Returns L, or NULL with the error written. */
static lua_State *library_load(struct script_engine *e, const uint8_t *code, size_t len,
                               struct resp_writer *w)
{
    struct script_run *r = e->run;
    struct setup_args a = {.functions = 1};
    lua_State *L = state_new(e, &a);
    if (L == NULL) {
        resp_write_error(w, "ERR the library could not load: out of memory");
        return NULL;
    }
    lua_pushcfunction(L, error_handler);
    lua_pushnil(L); /* no cache: the state is the call's */
    if (!library_register(L, r, code, len, lua_gettop(L), w)) {
        state_close(L);
        return NULL;
    }
    lua_settop(L, 0);
    return L;
}

int script_library_parse(const uint8_t *code, size_t len, struct script_library *out,
                         struct resp_writer *w)
{
    memset(out, 0, sizeof(*out));
    if (!library_meta(code, len, out->name, w)) {
        return 0;
    }
    struct script_env env = {0};
    struct script_run r = {.env = &env, .mem_max = SCRIPT_MEMORY_BYTES_MAX, .proto = 2};
    env.steps_max = 100u * 1000 * 1000; /* a library's top level only defines functions */
    struct script_engine e = {.run = &r};
    lua_State *L = library_load(&e, code, len, w);
    if (L == NULL) {
        return 0;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "hy_functions");
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
        out->funcs = hy_xrealloc(out->funcs, (out->count + 1) * sizeof(*out->funcs));
        struct script_function *f = &out->funcs[out->count++];
        snprintf(f->name, sizeof(f->name), "%s", lua_tostring(L, -2));
        raw_field(L, "flags");
        f->flags = (unsigned)lua_tointeger(L, -1);
        lua_pop(L, 1);
        raw_field(L, "desc");
        size_t dlen;
        const char *desc = lua_isstring(L, -1) ? lua_tolstring(L, -1, &dlen) : NULL;
        f->description = desc != NULL ? hy_xmemdup(desc, dlen + 1) : NULL;
        lua_pop(L, 1);
    }
    state_close(L);
    if (out->count == 0) {
        resp_write_error(w, "ERR No functions registered");
        return 0;
    }
    return 1;
}

void script_library_free(struct script_library *l)
{
    for (size_t i = 0; i < l->count; i++) {
        hy_free(l->funcs[i].description);
    }
    hy_free(l->funcs);
    l->funcs = NULL;
    l->count = 0;
}

void script_fcall(const struct script_env *env, const uint8_t *code, size_t len, const char *fname,
                  const struct resp_arg *keys, size_t nkeys, const struct resp_arg *args,
                  size_t nargs, struct resp_writer *w)
{
    (void)engine_invoke(env, code, len, fname, keys, nkeys, args, nargs, w);
}
