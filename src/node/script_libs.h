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

/* Opens the cmsgpack library: pack, unpack, unpack_one, unpack_limit. Leaves its table on the
 * stack and returns 1 (a lua_CFunction, called as any luaopen_*). */
int script_luaopen_cmsgpack(lua_State *L);

/* Opens the struct library: pack, unpack, size. Leaves its table on the stack; returns 1. */
int script_luaopen_struct(lua_State *L);

#endif
