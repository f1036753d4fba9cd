/*
 * script_libs.h - the Lua libraries Redis 7.0 gives scripts that Debian does not package for
 * Lua 5.1: cmsgpack (MessagePack, as lua-cmsgpack 0.4.0 that Redis embeds) and struct
 * (Roberto Ierusalimschy's binary packing library, as Redis embeds it).
 *
 * Both are pure functions of their arguments: no clock, no randomness, no global state, so a
 * script using them reaches the same result on every replica. Every allocation goes through
 * the state's allocator, so a script's memory limit covers what they build.
 */
#ifndef HY_SCRIPT_LIBS_H
#define HY_SCRIPT_LIBS_H

#include <lua.h>

/* Provided by script.c for these libraries' long loops: called with a loop's count, every
 * SCRIPT_LIB_CHECKPOINT_EVERY items it lets the run's poll go on as its instruction hook does
 * (a C function runs no hook: a pack of a 100,000-item table held the node for hundreds of
 * ms without its busy notices, and its followers elected another leader). A stop the poll
 * asks for (SCRIPT KILL) is raised at the run's next instruction, as usual. Counts no
 * instruction, so no run's outcome changes. */
#define SCRIPT_LIB_CHECKPOINT_EVERY 1024
void script_lib_checkpoint(lua_State *L, size_t count);

/* Opens the cmsgpack library: pack, unpack, unpack_one, unpack_limit. Leaves its table on the
 * stack and returns 1 (a lua_CFunction, called as any luaopen_*). */
int script_luaopen_cmsgpack(lua_State *L);

/* Opens the struct library: pack, unpack, size. Leaves its table on the stack; returns 1. */
int script_luaopen_struct(lua_State *L);

#endif
