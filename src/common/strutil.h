/*
 * strutil.h - strict number parsing and formatting, glob matching, case-folding compares.
 *
 * The parsers accept exactly what Redis accepts for the same argument (no leading '+' or
 * spaces, no trailing bytes), so error replies match Redis where clients parse them.
 */
#ifndef HY_STRUTIL_H
#define HY_STRUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Returns 1 and sets *out when buf is a canonical decimal int64, else 0. */
int hy_parse_i64(const uint8_t *buf, size_t len, int64_t *out);
/* Returns 1 and sets *out for a finite double written as Redis accepts it ("1.5", "-3e2",
 * "inf" only when allow_inf), else 0. */
int hy_parse_double(const uint8_t *buf, size_t len, int allow_inf, long double *out);

/* Writes v in decimal to dst (room for 21 bytes); returns the length. */
size_t hy_format_i64(char *dst, int64_t v);
/* Formats v as Redis's INCRBYFLOAT does (%.17Lg, no exponent for humane values, trailing zeros
 * trimmed); dst has room for 5 * 1024 bytes; returns the length. */
size_t hy_format_long_double(char *dst, size_t cap, long double v);

/* Glob match as Redis's KEYS/SCAN MATCH: * ? [abc] [^a] [a-z] and \ escapes. */
int hy_glob_match(const uint8_t *pat, size_t plen, const uint8_t *str, size_t slen, int nocase);

/* ASCII case-insensitive equality of buf[0..len) with the NUL-terminated `lit`. */
int hy_eq_nocase(const uint8_t *buf, size_t len, const char *lit);

#endif
