#include "common/strutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hy_parse_i64(const uint8_t *buf, size_t len, int64_t *out)
{
    if (len == 0 || len > 20) {
        return 0;
    }
    size_t i = 0;
    int neg = 0;
    if (buf[0] == '-') {
        neg = 1;
        i = 1;
        if (len == 1) {
            return 0;
        }
    }
    if (buf[i] == '0' && len > i + 1) {
        return 0; /* no leading zeros: "01" and "-0..." are not canonical */
    }
    if (neg && buf[i] == '0') {
        return 0;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            return 0;
        }
        uint64_t d = (uint64_t)(buf[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return 0;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return 0;
        }
        *out = (int64_t)v;
    }
    return 1;
}

int hy_parse_double(const uint8_t *buf, size_t len, int allow_inf, long double *out)
{
    char tmp[5 * 1024 + 1];
    if (len == 0 || len >= sizeof(tmp) || isspace(buf[0])) {
        return 0;
    }
    memcpy(tmp, buf, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    long double v = strtold(tmp, &end);
    if ((size_t)(end - tmp) != len || isnan(v) || (errno == ERANGE && !isinf(v))) {
        return 0;
    }
    if (isinf(v) && !allow_inf) {
        return 0;
    }
    *out = v;
    return 1;
}

/* "00" "01" ... "99": two digits per division in hy_format_i64 (every integer reply and every
 * length header of a reply goes through it). */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

size_t hy_format_i64(char *dst, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = digit_pairs[d + 1];
        *--p = digit_pairs[d];
    }
    if (u >= 10) {
        *--p = digit_pairs[u * 2 + 1];
        *--p = digit_pairs[u * 2];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0) {
        *--p = '-';
    }
    size_t len = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(dst, p, len);
    return len;
}

size_t hy_format_long_double(char *dst, size_t cap, long double v)
{
    if (isinf(v)) {
        return (size_t)snprintf(dst, cap, "%s", v > 0 ? "inf" : "-inf");
    }
    int n = snprintf(dst, cap, "%.17Lf", v);
    if (n < 0 || (size_t)n >= cap) {
        n = snprintf(dst, cap, "%.17Lg", v);
        return n < 0 ? 0 : (size_t)n;
    }
    /* Trim trailing zeros and a trailing dot: "3.50000" -> "3.5", "3.000" -> "3". */
    if (memchr(dst, '.', (size_t)n) != NULL) {
        while (n > 0 && dst[n - 1] == '0') {
            n--;
        }
        if (n > 0 && dst[n - 1] == '.') {
            n--;
        }
        dst[n] = '\0';
    }
    if (n == 2 && dst[0] == '-' && dst[1] == '0') {
        dst[0] = '0';
        n = 1;
        dst[n] = '\0';
    }
    return (size_t)n;
}

static int glob_fold(int c, int nocase)
{
    return nocase ? tolower(c) : c;
}

static int glob_class(const uint8_t **pp, const uint8_t *pend, int c, int nocase)
{
    const uint8_t *p = *pp + 1; /* past '[' */
    int negate = 0, match = 0;
    if (p < pend && *p == '^') {
        negate = 1;
        p++;
    }
    while (p < pend && *p != ']') {
        if (*p == '\\' && p + 1 < pend) {
            p++;
            match |= glob_fold(*p, nocase) == glob_fold(c, nocase);
        } else if (p + 2 < pend && p[1] == '-' && p[2] != ']') {
            int lo = glob_fold(p[0], nocase), hi = glob_fold(p[2], nocase);
            if (lo > hi) {
                int t = lo;
                lo = hi;
                hi = t;
            }
            int x = glob_fold(c, nocase);
            match |= x >= lo && x <= hi;
            p += 2;
        } else {
            match |= glob_fold(*p, nocase) == glob_fold(c, nocase);
        }
        p++;
    }
    *pp = p < pend ? p : pend - 1; /* on ']' (or the last byte of an unterminated class) */
    return negate ? !match : match;
}

int hy_glob_match(const uint8_t *pat, size_t plen, const uint8_t *str, size_t slen, int nocase)
{
    /* Iterative with one backtrack point for the last '*': linear in practice and immune to
     * the exponential blow-up of naive recursion on patterns like "a*a*a*a*b". */
    const uint8_t *p = pat, *pend = pat + plen, *s = str, *send = str + slen;
    const uint8_t *star_p = NULL, *star_s = NULL;
    while (s < send) {
        if (p < pend && *p == '*') {
            while (p < pend && *p == '*') {
                p++;
            }
            if (p == pend) {
                return 1;
            }
            star_p = p;
            star_s = s;
            continue;
        }
        if (p < pend) {
            int ok;
            const uint8_t *q = p;
            if (*q == '?') {
                ok = 1;
            } else if (*q == '[') {
                ok = glob_class(&q, pend, *s, nocase);
            } else {
                if (*q == '\\' && q + 1 < pend) {
                    q++;
                }
                ok = glob_fold(*q, nocase) == glob_fold(*s, nocase);
            }
            if (ok) {
                p = q + 1;
                s++;
                continue;
            }
        }
        if (star_p == NULL) {
            return 0;
        }
        p = star_p;
        s = ++star_s;
    }
    while (p < pend && *p == '*') {
        p++;
    }
    return p == pend;
}

int hy_eq_nocase(const uint8_t *buf, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (n != len) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (tolower(buf[i]) != tolower((unsigned char)lit[i])) {
            return 0;
        }
    }
    return 1;
}
