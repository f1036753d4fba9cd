/*
 * sha1.h - SHA-1 (FIPS 180-4), for the names of Lua scripts: Redis names a script by the hex
 * SHA-1 of its body (EVALSHA, SCRIPT LOAD, redis.sha1hex). Not for security: a name only.
 * Pure: no state besides the caller's.
 */
#ifndef HY_SHA1_H
#define HY_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define HY_SHA1_HEX_LEN 40

/* Writes the 40 lower-case hex digits of SHA-1(p[0..len)) and a NUL into hex (41 bytes). */
void hy_sha1_hex(const void *p, size_t len, char hex[HY_SHA1_HEX_LEN + 1]);

#endif
