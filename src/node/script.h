/*
 * script.h - the Lua 5.1 engine behind EVAL and friends, as Redis 7.0 embeds it: the sandbox
 * (no io, os, loadfile, dofile, print; globals and library tables read-only; no bytecode
 * loading), the redis.* library, cjson, bit, cmsgpack and struct, and the conversions between
 * RESP replies and Lua values that Redis documents.
 *
 * It knows no node: redis.call reaches the keyspace through the caller's call_cb, which gets a
 * command and returns its RESP reply. EVAL bodies run in one long-lived sandboxed state per
 * thread (FCALL's library code too), each compiled once; nothing a script does survives its run but
 * what it wrote through redis.call (the sandbox leaves it nothing to change that the next run could
 * see, and what might have changed, the engine is rebuilt after), so a run is a function of (body,
 * keys, args, rand_seed, what call_cb answers), as in a fresh state: math.random is Redis's
 * 48-bit generator seeded with rand_seed at the start of the run, and nothing reads a clock. A run
 * is bounded by steps_max VM instructions (counted, not timed, so every replica stops a runaway
 * script at the same instruction) and by memory_max bytes of Lua memory; the caller's poll_cb may
 * stop it sooner (SCRIPT KILL).
 */
#ifndef HY_SCRIPT_H
#define HY_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "proto/resp.h"

/* Lua memory one run may hold. */
#define SCRIPT_MEMORY_BYTES_MAX (64u * 1024 * 1024)

/* redis.call / redis.pcall: runs argv (argc >= 1) and appends its complete RESP reply, in
 * protocol proto (2 or 3: redis.setresp), to reply. */
typedef void (*script_call_fn)(void *ctx, size_t argc, const struct resp_arg *argv, int proto,
                               struct hy_buf *reply);

extern const char SCRIPT_STOP_QUIET[];

struct script_env {
    script_call_fn call_cb; /* NULL: every redis.call answers an error */
    void *ctx;
    uint64_t steps_max; /* 0: unbounded */
    size_t memory_max;  /* 0: SCRIPT_MEMORY_BYTES_MAX */
    /* math.random's seed at the start of the run. Redis 7.0 no longer reseeds between
     * scripts, so each run draws other numbers: the caller gives each run a fresh seed (the
     * one the leader put in the entry, so every replica draws the same). */
    uint32_t rand_seed;
    /* redis.acl_check_cmd: 1 when the run's user may run argv[0..argc), 0 when not, -1 for
     * an unknown command. NULL: every check answers 1. */
    int (*acl_cb)(void *ctx, size_t argc, const struct resp_arg *argv);
    const struct hy_log *log; /* redis.log; may be NULL */
    /* Called every few thousand instructions and after every redis.call (NULL: never): a
     * message stops the run with that error, raised again at every later instruction;
     * SCRIPT_STOP_QUIET stops it with no message worth making (the caller throws the reply
     * away: a leader's probe that reached a write), and the reply is "-ERR script stopped". */
    const char *(*poll_cb)(void *ctx);
    /* When not NULL, set to 1 if the run was stopped (by steps_max or by poll_cb) rather than
     * ended by itself: its reply is then the stop error, whatever the script did before. */
    int *stopped_out;
    /* The body's SHA-1 (40 lower-case hex digits) when the caller knows it; NULL: made from
     * the body when an error reply names it. */
    const char *sha;
    /* 1: the run gets a state of its own, built and closed around it (tests compare it with
     * the engine's reused state). */
    int fresh_state;
};

/*
 * Runs body (Redis's EVAL script) with KEYS = keys[0..nkeys) and ARGV = args[0..nargs) and
 * writes its reply to w (in w->proto). Returns 1 when the body compiled (whatever the run
 * did: an error raised by the script is its reply), 0 when it did not (the reply is the
 * compile error, as Redis words it).
 */
int script_run(const struct script_env *env, const uint8_t *body, size_t len,
               const struct resp_arg *keys, size_t nkeys, const struct resp_arg *args, size_t nargs,
               struct resp_writer *w);

/* Closes this thread's engine (the next run builds it again). */
void script_engine_reset(void);

/* How many engines (or states of a run's own) this thread has built: tests see a state reused,
 * or rebuilt after a run that left it doubtful. */
uint64_t script_engine_builds(void);

/* Forgets the bodies and library code this thread's engine compiled (SCRIPT FLUSH, FUNCTION
 * FLUSH, FUNCTION DELETE): only memory, since a body compiles to the same function whenever it
 * is compiled. */
void script_cache_flush(void);

/* Compiles body without running it: 1 when it compiles, else 0 with the error reply (as EVAL
 * and SCRIPT LOAD answer it) written to w. */
int script_compile_check(const uint8_t *body, size_t len, struct resp_writer *w);

/* ---- functions (FUNCTION LOAD, FCALL) ----------------------------------------------------- */

#define SCRIPT_NAME_MAX      128 /* a library's or a function's name */
#define SCRIPT_FN_NO_WRITES  1u
#define SCRIPT_FN_NO_CLUSTER 2u

struct script_function {
    char name[SCRIPT_NAME_MAX + 1]; /* lower case */
    unsigned flags;                 /* SCRIPT_FN_* */
    char *description;              /* register_function's description, owned; NULL: none */
};

struct script_library {
    char name[SCRIPT_NAME_MAX + 1];
    struct script_function *funcs; /* owned */
    size_t count;
};

/*
 * Reads a library's code as FUNCTION LOAD does: its "#!lua name=<lib>" line, then runs it in
 * a fresh state where redis.register_function records each function (redis.call refused).
 * Returns 1 with *out filled (free with script_library_free), or 0 with the error reply
 * written to w.
 */
int script_library_parse(const uint8_t *code, size_t len, struct script_library *out,
                         struct resp_writer *w);
void script_library_free(struct script_library *l);

/* FCALL: runs the library code (as above: compiled once in the thread's engine, run again at
 * every call, so nothing of a previous call survives) and calls its function fname (lower
 * case) with KEYS and ARGV as its two arguments; the reply goes to w. */
void script_fcall(const struct script_env *env, const uint8_t *code, size_t len, const char *fname,
                  const struct resp_arg *keys, size_t nkeys, const struct resp_arg *args,
                  size_t nargs, struct resp_writer *w);

#endif
