/*
 * resp.c - RESP2/RESP3 codec: incremental request parser, value parser, reply writer.
 *
 * The request parser mirrors the grammar and the error texts of Redis's networking layer (multibulk
 * and inline requests), with three deliberate differences: every limit is checked on the whole line
 * even when the line arrives in one read, the CRLF after bulk data and header lines is verified
 * instead of skipped, and NUL is an ordinary byte in inline requests.
 */
#include "proto/resp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"

/* Arguments kept across requests unless a single request needed more than this many. */
#define RESP__ARGV_KEEP_MAX     65536
/* Arguments reserved up front for a multibulk announcing many: the rest grow on arrival, so a
 * header alone ("*1048576\r\n") cannot make the server allocate much. */
#define RESP__ARGV_PREALLOC_MAX 1024

void resp_limits_default(struct resp_limits *l)
{
    l->bulk_bytes_max = 512u * 1024 * 1024;
    l->multibulk_count_max = 1024u * 1024;
    l->inline_bytes_max = 64u * 1024;
    l->nesting_max = 64;
}

/* ---- request parser -------------------------------------------------------------------------- */

static void req_reset(struct resp_request_parser *p)
{
    p->pos = 0;
    p->scan = 0;
    p->multibulk = -1;
    p->bulk = -1;
    p->argc = 0;
}

void resp_request_parser_init(struct resp_request_parser *p, const struct resp_limits *limits)
{
    memset(p, 0, sizeof(*p));
    if (limits != NULL) {
        p->limits = *limits;
    } else {
        resp_limits_default(&p->limits);
    }
    req_reset(p);
}

static void req_free_args(struct resp_request_parser *p)
{
    hy_free(p->arg_off);
    hy_free(p->arg_len);
    hy_free(p->argv);
    p->arg_off = NULL;
    p->arg_len = NULL;
    p->argv = NULL;
    p->argv_cap = 0;
}

void resp_request_parser_free(struct resp_request_parser *p)
{
    req_free_args(p);
    hy_free(p->scratch);
    p->scratch = NULL;
    p->scratch_cap = 0;
}

size_t resp_request_bytes_needed(const struct resp_request_parser *p)
{
    if (p->multibulk < 0 || p->bulk < 0) {
        return 0;
    }
    return p->pos + (size_t)p->bulk + 2;
}

static int req_fail(struct resp_request_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int req_fail(struct resp_request_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    HY_ASSERT(p->error[0] != '\0');
    return HY_EPROTO;
}

/* Makes room for `count` arguments. Growth doubles, so a request costs no allocation once the
 * arrays have reached the connection's usual argument count. */
static void req_reserve(struct resp_request_parser *p, size_t count)
{
    if (count <= p->argv_cap) {
        return;
    }
    size_t cap = p->argv_cap ? p->argv_cap * 2 : 8;
    if (cap < count) {
        cap = count;
    }
    p->arg_off = hy_xrealloc(p->arg_off, cap * sizeof(*p->arg_off));
    p->arg_len = hy_xrealloc(p->arg_len, cap * sizeof(*p->arg_len));
    p->argv = hy_xrealloc(p->argv, cap * sizeof(*p->argv));
    p->argv_cap = cap;
}

static void req_push(struct resp_request_parser *p, size_t off, size_t len)
{
    req_reserve(p, p->argc + 1);
    p->arg_off[p->argc] = off;
    p->arg_len[p->argc] = len;
    p->argc++;
}

/* Completes a request: resolves the offsets against `base` and resets for the next one. */
static int req_done(struct resp_request_parser *p, const uint8_t *base, size_t consumed,
                    size_t *consumed_out, size_t *argc_out, const struct resp_arg **argv_out)
{
    for (size_t i = 0; i < p->argc; i++) {
        p->argv[i].ptr = base + p->arg_off[i];
        p->argv[i].len = p->arg_len[i];
    }
    *consumed_out = consumed;
    *argc_out = p->argc;
    *argv_out = p->argv;
    req_reset(p);
    return HY_OK;
}

/*
 * Finds the '\r' ending the header line that starts at `start`, searching only bytes not searched
 * before. Returns HY_OK with *eol_out at the '\r' once the '\n' after it is present too, HY_EAGAIN
 * for more bytes, HY_EPROTO (`too_big`) when the line outgrows the inline limit.
 */
static int req_header_line(struct resp_request_parser *p, const uint8_t *buf, size_t len,
                           size_t start, const char *too_big, size_t *eol_out)
{
    size_t from = p->scan > start ? p->scan : start;
    const uint8_t *cr = from < len ? memchr(buf + from, '\r', len - from) : NULL;
    size_t eol = cr != NULL ? (size_t)(cr - buf) : len;
    if (eol - start > p->limits.inline_bytes_max) {
        return req_fail(p, "%s", too_big);
    }
    if (cr == NULL || eol + 1 >= len) {
        p->scan = eol; /* re-examine a trailing '\r' once its '\n' may be there */
        return HY_EAGAIN;
    }
    *eol_out = eol;
    return HY_OK;
}

/* Parses the decimal between buf[from] and the '\r' at eol and checks the '\n' after it. */
static int req_header_number(const uint8_t *buf, size_t from, size_t eol, int64_t *out)
{
    return hy_parse_i64(buf + from, eol - from, out) && buf[eol + 1] == '\n';
}

/* The byte shown in "expected '$', got 'x'": printable ASCII as is, anything else as a space so the
 * error line stays one clean line (Redis turns CR/LF into spaces the same way). */
static int req_show_byte(uint8_t c)
{
    return c >= 0x20 && c < 0x7f ? c : ' ';
}

static int req_multibulk_header(struct resp_request_parser *p, const uint8_t *buf, size_t len)
{
    size_t eol;
    int rc = req_header_line(p, buf, len, 0, "too big mbulk count string", &eol);
    if (rc != HY_OK) {
        return rc;
    }
    int64_t n;
    if (!req_header_number(buf, 1, eol, &n) ||
        (n > 0 && (uint64_t)n > p->limits.multibulk_count_max)) {
        return req_fail(p, "invalid multibulk length");
    }
    p->pos = eol + 2;
    p->scan = p->pos;
    /* Redis skips "*0" and "*-1" (any count <= 0) as an empty request. */
    p->multibulk = n > 0 ? n : 0;
    req_reserve(p, (size_t)HY_MIN(p->multibulk, RESP__ARGV_PREALLOC_MAX));
    return HY_OK;
}

static int req_bulk_header(struct resp_request_parser *p, const uint8_t *buf, size_t len)
{
    if (p->pos >= len) {
        return HY_EAGAIN;
    }
    if (buf[p->pos] != '$') {
        return req_fail(p, "expected '$', got '%c'", req_show_byte(buf[p->pos]));
    }
    size_t eol;
    int rc = req_header_line(p, buf, len, p->pos, "too big bulk count string", &eol);
    if (rc != HY_OK) {
        return rc;
    }
    int64_t n;
    /* The cap below INT64_MAX keeps pos + bulk + 2 from overflowing whatever the limit. */
    uint64_t max = HY_MIN((uint64_t)p->limits.bulk_bytes_max, (uint64_t)INT64_MAX / 2);
    if (!req_header_number(buf, p->pos + 1, eol, &n) || n < 0 || (uint64_t)n > max) {
        return req_fail(p, "invalid bulk length");
    }
    p->bulk = n;
    p->pos = eol + 2;
    p->scan = p->pos;
    return HY_OK;
}

static int req_multibulk(struct resp_request_parser *p, const uint8_t *buf, size_t len,
                         size_t *consumed_out, size_t *argc_out, const struct resp_arg **argv_out)
{
    int rc;
    if (p->multibulk < 0 && (rc = req_multibulk_header(p, buf, len)) != HY_OK) {
        return rc;
    }
    while ((long long)p->argc < p->multibulk) {
        if (p->bulk < 0 && (rc = req_bulk_header(p, buf, len)) != HY_OK) {
            return rc;
        }
        size_t n = (size_t)p->bulk;
        /* O(1) per call while a large bulk trickles in: nothing in it is scanned. */
        if (len - p->pos < n + 2) {
            return HY_EAGAIN;
        }
        if (buf[p->pos + n] != '\r' || buf[p->pos + n + 1] != '\n') {
            return req_fail(p, "expected CRLF after bulk data");
        }
        req_push(p, p->pos, n);
        p->pos += n + 2;
        p->scan = p->pos;
        p->bulk = -1;
    }
    return req_done(p, buf, p->pos, consumed_out, argc_out, argv_out);
}

static int inline_is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Bytes that end an unquoted inline argument (the vertical tab and form feed do not, as in Redis:
 * they are skipped between arguments but kept inside one). */
static int inline_ends_arg(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Splits an inline line without quotes: every argument is a slice of the line itself. */
static void inline_split_plain(struct resp_request_parser *p, const uint8_t *line, size_t n)
{
    size_t i = 0;
    for (;;) {
        while (i < n && inline_is_space(line[i])) {
            i++;
        }
        if (i == n) {
            return;
        }
        size_t start = i;
        while (i < n && !inline_ends_arg(line[i])) {
            i++;
        }
        req_push(p, start, i - start);
    }
}

/* Decodes one double-quoted argument starting after its opening quote; returns the index after the
 * closing quote, or 0 (never a valid index here) when the quotes are unbalanced. */
static size_t inline_dquoted(const uint8_t *line, size_t n, size_t i, uint8_t *out, size_t *o)
{
    for (; i < n; i++) {
        uint8_t c = line[i];
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
            hex_value(line[i + 3]) >= 0) {
            out[(*o)++] = (uint8_t)(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3]));
            i += 3;
        } else if (c == '\\' && i + 1 < n) {
            i++;
            switch (line[i]) {
            case 'n': out[(*o)++] = '\n'; break;
            case 'r': out[(*o)++] = '\r'; break;
            case 't': out[(*o)++] = '\t'; break;
            case 'b': out[(*o)++] = '\b'; break;
            case 'a': out[(*o)++] = '\a'; break;
            default: out[(*o)++] = line[i]; break;
            }
        } else if (c == '"') {
            /* A closing quote must end the argument. */
            return i + 1 < n && !inline_is_space(line[i + 1]) ? 0 : i + 1;
        } else {
            out[(*o)++] = c;
        }
    }
    return 0;
}

/* Same for a single-quoted argument, where only \' is an escape. */
static size_t inline_squoted(const uint8_t *line, size_t n, size_t i, uint8_t *out, size_t *o)
{
    for (; i < n; i++) {
        uint8_t c = line[i];
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
            out[(*o)++] = '\'';
            i++;
        } else if (c == '\'') {
            return i + 1 < n && !inline_is_space(line[i + 1]) ? 0 : i + 1;
        } else {
            out[(*o)++] = c;
        }
    }
    return 0;
}

/* Splits an inline line with quotes into p->scratch, decoding quotes and escapes the way redis-cli
 * and Redis's inline parser do. Returns HY_OK or HY_EPROTO. */
static int inline_split_quoted(struct resp_request_parser *p, const uint8_t *line, size_t n)
{
    if (p->scratch_cap < n) {
        hy_free(p->scratch);
        p->scratch = hy_xmalloc(n);
        p->scratch_cap = n;
    }
    uint8_t *out = p->scratch;
    size_t i = 0, o = 0;
    for (;;) {
        while (i < n && inline_is_space(line[i])) {
            i++;
        }
        if (i == n) {
            return HY_OK;
        }
        size_t start = o;
        while (i < n && !inline_ends_arg(line[i])) {
            if (line[i] == '"' || line[i] == '\'') {
                i = line[i] == '"' ? inline_dquoted(line, n, i + 1, out, &o)
                                   : inline_squoted(line, n, i + 1, out, &o);
                if (i == 0) {
                    return req_fail(p, "unbalanced quotes in request");
                }
                break; /* a closing quote ends the argument */
            }
            out[o++] = line[i++];
        }
        HY_ASSERT(o <= n);
        req_push(p, start, o - start);
    }
}

static int req_inline(struct resp_request_parser *p, const uint8_t *buf, size_t len,
                      size_t *consumed_out, size_t *argc_out, const struct resp_arg **argv_out)
{
    size_t from = p->scan;
    const uint8_t *nl = from < len ? memchr(buf + from, '\n', len - from) : NULL;
    size_t n = nl != NULL ? (size_t)(nl - buf) : len;
    if (n > p->limits.inline_bytes_max) {
        return req_fail(p, "too big inline request");
    }
    if (nl == NULL) {
        p->scan = len;
        return HY_EAGAIN;
    }
    size_t line_len = n > 0 && buf[n - 1] == '\r' ? n - 1 : n;
    const uint8_t *base = buf;
    if (memchr(buf, '"', line_len) == NULL && memchr(buf, '\'', line_len) == NULL) {
        inline_split_plain(p, buf, line_len);
    } else {
        int rc = inline_split_quoted(p, buf, line_len);
        if (rc != HY_OK) {
            return rc;
        }
        base = p->scratch;
    }
    if (p->argc > p->limits.multibulk_count_max) {
        return req_fail(p, "invalid multibulk length");
    }
    return req_done(p, base, n + 1, consumed_out, argc_out, argv_out);
}

int resp_request_parse(struct resp_request_parser *p, const uint8_t *buf, size_t len,
                       size_t *consumed_out, size_t *argc_out, const struct resp_arg **argv_out)
{
    *consumed_out = 0;
    *argc_out = 0;
    *argv_out = NULL;
    if (p->error[0] != '\0') {
        return HY_EPROTO; /* sticky: the connection is to be closed */
    }
    /* Caller contract: the request in progress starts at buf[0] and no byte seen was dropped. */
    HY_ASSERT(p->pos <= len && p->scan <= len);
    if (len == 0) {
        return HY_EAGAIN;
    }
    if (p->pos == 0 && p->scan == 0 && p->argv_cap > RESP__ARGV_KEEP_MAX) {
        /* One huge request must not pin its arrays for the connection's life. */
        req_free_args(p);
    }
    if (buf[0] == '*') {
        return req_multibulk(p, buf, len, consumed_out, argc_out, argv_out);
    }
    return req_inline(p, buf, len, consumed_out, argc_out, argv_out);
}

/* ---- value parser ---------------------------------------------------------------------------- */

struct vp {
    const struct resp_limits *limits;
    const uint8_t *buf;
    size_t len;
    size_t pos;
    char *err;
};

static int vp_fail(struct vp *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int vp_fail(struct vp *s, const char *fmt, ...)
{
    if (s->err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err, 128, fmt, ap);
        va_end(ap);
    }
    return HY_EPROTO;
}

/* Reads the rest of a line (after the type byte): *start_out / *n_out delimit its text and s->pos
 * moves past the CRLF. Lines hold no bare CR or LF. */
static int vp_line(struct vp *s, size_t *start_out, size_t *n_out)
{
    size_t start = s->pos;
    const uint8_t *cr = start < s->len ? memchr(s->buf + start, '\r', s->len - start) : NULL;
    size_t eol = cr != NULL ? (size_t)(cr - s->buf) : s->len;
    if (memchr(s->buf + start, '\n', eol - start) != NULL) {
        return vp_fail(s, "line feed inside a line");
    }
    if (eol - start > s->limits->bulk_bytes_max) {
        return vp_fail(s, "line too long");
    }
    if (cr == NULL || eol + 1 >= s->len) {
        return HY_EAGAIN;
    }
    if (s->buf[eol + 1] != '\n') {
        return vp_fail(s, "expected CRLF at end of line");
    }
    *start_out = start;
    *n_out = eol - start;
    s->pos = eol + 2;
    return HY_OK;
}

/* RESP3 integers may carry a '+' and leading zeros; the value must fit in an int64. */
static int vp_int(const uint8_t *p, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (n > 0 && (p[0] == '-' || p[0] == '+')) {
        neg = p[0] == '-';
        i = 1;
    }
    if (i == n) {
        return 0;
    }
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (lim - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 1;
}

/* Reads a length or count line. Returns HY_OK with *n_out >= -1 (-1 = RESP2 null). */
static int vp_length(struct vp *s, const char *what, int64_t *n_out)
{
    size_t start, n;
    int rc = vp_line(s, &start, &n);
    if (rc != HY_OK) {
        return rc;
    }
    if (!vp_int(s->buf + start, n, n_out) || *n_out < -1) {
        return vp_fail(s, "invalid %s length", what);
    }
    return HY_OK;
}

static int vp_double(struct vp *s, struct resp_value *out)
{
    size_t start, n;
    int rc = vp_line(s, &start, &n);
    if (rc != HY_OK) {
        return rc;
    }
    char tmp[256];
    const uint8_t *t = s->buf + start;
    if (n == 0 || n >= sizeof(tmp) || inline_is_space(t[0])) {
        return vp_fail(s, "invalid double");
    }
    memcpy(tmp, t, n);
    tmp[n] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (end != tmp + n) {
        return vp_fail(s, "invalid double");
    }
    out->dbl = d;
    out->str = t;
    out->len = n;
    return HY_OK;
}

static int vp_bignum(struct vp *s, struct resp_value *out)
{
    size_t start, n;
    int rc = vp_line(s, &start, &n);
    if (rc != HY_OK) {
        return rc;
    }
    const uint8_t *t = s->buf + start;
    size_t i = n > 0 && (t[0] == '-' || t[0] == '+') ? 1 : 0;
    if (i == n) {
        return vp_fail(s, "invalid big number");
    }
    for (; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') {
            return vp_fail(s, "invalid big number");
        }
    }
    out->str = t;
    out->len = n;
    return HY_OK;
}

/* Bulk-shaped types: $ ! = . A RESP2 "$-1" is a null. */
static int vp_bulk(struct vp *s, struct resp_value *out)
{
    int64_t n;
    int rc = vp_length(s, "bulk", &n);
    if (rc != HY_OK) {
        return rc;
    }
    if (n == -1) {
        if (out->type != RESP_BULK) {
            return vp_fail(s, "invalid bulk length");
        }
        out->type = RESP_NULL;
        return HY_OK;
    }
    if ((uint64_t)n > HY_MIN((uint64_t)s->limits->bulk_bytes_max, (uint64_t)INT64_MAX / 2)) {
        return vp_fail(s, "invalid bulk length");
    }
    if (s->len - s->pos < (size_t)n + 2) {
        return HY_EAGAIN;
    }
    const uint8_t *t = s->buf + s->pos;
    if (t[n] != '\r' || t[n + 1] != '\n') {
        return vp_fail(s, "expected CRLF after bulk data");
    }
    if (out->type == RESP_VERBATIM && (n < 4 || t[3] != ':')) {
        return vp_fail(s, "invalid verbatim string");
    }
    out->str = t;
    out->len = (size_t)n;
    s->pos += (size_t)n + 2;
    return HY_OK;
}

static int vp_value(struct vp *s, struct resp_value *out, unsigned depth);

/* Aggregates: * % ~ | > . A RESP2 "*-1" is a null. */
static int vp_aggregate(struct vp *s, struct resp_value *out, unsigned depth)
{
    int64_t n;
    int rc = vp_length(s, "multibulk", &n);
    if (rc != HY_OK) {
        return rc;
    }
    int pairs = out->type == RESP_MAP || out->type == RESP_ATTRIBUTE;
    if (n == -1) {
        if (out->type != RESP_ARRAY) {
            return vp_fail(s, "invalid multibulk length");
        }
        out->type = RESP_NULL;
        return HY_OK;
    }
    size_t max = s->limits->multibulk_count_max;
    if ((uint64_t)n > (pairs ? max / 2 : max)) {
        return vp_fail(s, "invalid multibulk length");
    }
    if (depth >= s->limits->nesting_max) {
        return vp_fail(s, "too deep nesting");
    }
    size_t elems = pairs ? (size_t)n * 2 : (size_t)n;
    /* Every element takes at least 3 bytes ("_\r\n"): a count the buffer cannot hold yet waits for
     * more input instead of allocating for bytes that have not arrived. */
    if (elems > (s->len - s->pos) / 3) {
        return HY_EAGAIN;
    }
    out->count = (size_t)n;
    if (elems == 0) {
        return HY_OK;
    }
    out->elems = hy_xcalloc(elems, sizeof(*out->elems));
    for (size_t i = 0; i < elems; i++) {
        rc = vp_value(s, &out->elems[i], depth + 1);
        /* Attributes before an element annotate it and are not elements themselves; like hiredis,
         * the parser drops them (each one consumed bytes, so this ends). */
        while (rc == HY_OK && out->elems[i].type == RESP_ATTRIBUTE) {
            resp_value_free(&out->elems[i]);
            rc = vp_value(s, &out->elems[i], depth + 1);
        }
        if (rc != HY_OK) {
            resp_value_free(out);
            return rc;
        }
    }
    return HY_OK;
}

static int vp_simple_line(struct vp *s, struct resp_value *out)
{
    size_t start, n;
    int rc = vp_line(s, &start, &n);
    if (rc != HY_OK) {
        return rc;
    }
    const uint8_t *t = s->buf + start;
    switch (out->type) {
    case RESP_INTEGER: return vp_int(t, n, &out->integer) ? HY_OK : vp_fail(s, "invalid integer");
    case RESP_NULL: return n == 0 ? HY_OK : vp_fail(s, "invalid null");
    case RESP_BOOLEAN:
        if (n != 1 || (t[0] != 't' && t[0] != 'f')) {
            return vp_fail(s, "invalid boolean");
        }
        out->integer = t[0] == 't';
        return HY_OK;
    default:
        out->str = t;
        out->len = n;
        return HY_OK;
    }
}

static int vp_value(struct vp *s, struct resp_value *out, unsigned depth)
{
    memset(out, 0, sizeof(*out));
    if (s->pos >= s->len) {
        return HY_EAGAIN;
    }
    uint8_t t = s->buf[s->pos++];
    switch (t) {
    case '+': out->type = RESP_SIMPLE; return vp_simple_line(s, out);
    case '-': out->type = RESP_ERROR; return vp_simple_line(s, out);
    case ':': out->type = RESP_INTEGER; return vp_simple_line(s, out);
    case '_': out->type = RESP_NULL; return vp_simple_line(s, out);
    case '#': out->type = RESP_BOOLEAN; return vp_simple_line(s, out);
    case ',': out->type = RESP_DOUBLE; return vp_double(s, out);
    case '(': out->type = RESP_BIGNUM; return vp_bignum(s, out);
    case '$': out->type = RESP_BULK; return vp_bulk(s, out);
    case '!': out->type = RESP_BULK_ERROR; return vp_bulk(s, out);
    case '=': out->type = RESP_VERBATIM; return vp_bulk(s, out);
    case '*': out->type = RESP_ARRAY; return vp_aggregate(s, out, depth);
    case '%': out->type = RESP_MAP; return vp_aggregate(s, out, depth);
    case '~': out->type = RESP_SET; return vp_aggregate(s, out, depth);
    case '|': out->type = RESP_ATTRIBUTE; return vp_aggregate(s, out, depth);
    case '>': out->type = RESP_PUSH; return vp_aggregate(s, out, depth);
    default: return vp_fail(s, "got '%c' as reply type byte", req_show_byte(t));
    }
}

int resp_value_parse(const struct resp_limits *limits, const uint8_t *buf, size_t len,
                     struct resp_value *out, size_t *consumed_out, char *err)
{
    struct resp_limits defaults;
    if (limits == NULL) {
        resp_limits_default(&defaults);
        limits = &defaults;
    }
    struct vp s = {.limits = limits, .buf = buf, .len = len, .pos = 0, .err = err};
    *consumed_out = 0;
    int rc = vp_value(&s, out, 0);
    if (rc != HY_OK) {
        resp_value_free(out);
        memset(out, 0, sizeof(*out));
        out->type = RESP_NULL;
        return rc;
    }
    HY_ASSERT(s.pos <= len);
    *consumed_out = s.pos;
    return HY_OK;
}

void resp_value_free(struct resp_value *v)
{
    if (v->elems == NULL) {
        return;
    }
    size_t elems = v->type == RESP_MAP || v->type == RESP_ATTRIBUTE ? v->count * 2 : v->count;
    for (size_t i = 0; i < elems; i++) {
        resp_value_free(&v->elems[i]);
    }
    hy_free(v->elems);
    v->elems = NULL;
    v->count = 0;
}

/* ---- writer ---------------------------------------------------------------------------------- */

/* Appends "<type><n>\r\n" with one reservation. */
static void w_header(struct hy_buf *b, uint8_t type, int64_t n)
{
    uint8_t *d = hy_buf_reserve(b, 24);
    d[0] = type;
    size_t k = 1 + hy_format_i64((char *)d + 1, n);
    d[k++] = '\r';
    d[k++] = '\n';
    b->len += k;
}

static int64_t w_count(size_t n)
{
    HY_ASSERT(n <= (size_t)INT64_MAX);
    return (int64_t)n;
}

/* Appends "<type><text>\r\n" with CR and LF in the text turned into spaces: a status or error line
 * must stay one line whatever it quotes (Redis does the same for error replies). */
static void w_line(struct hy_buf *b, uint8_t type, const char *s, size_t n)
{
    uint8_t *d = hy_buf_reserve(b, n + 3);
    d[0] = type;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        d[1 + i] = c == '\r' || c == '\n' ? ' ' : c;
    }
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    b->len += n + 3;
}

void resp_write_simple(struct resp_writer *w, const char *s)
{
    w_line(w->out, '+', s, strlen(s));
}

void resp_write_error(struct resp_writer *w, const char *s)
{
    w_line(w->out, '-', s, strlen(s));
}

void resp_write_errorf(struct resp_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    HY_ASSERT(n >= 0);
    /* Format straight into the output buffer after the '-', then clean it like w_line. */
    struct hy_buf *b = w->out;
    uint8_t *d = hy_buf_reserve(b, (size_t)n + 3);
    d[0] = '-';
    va_start(ap, fmt);
    vsnprintf((char *)d + 1, (size_t)n + 1, fmt, ap);
    va_end(ap);
    for (int i = 1; i <= n; i++) {
        if (d[i] == '\r' || d[i] == '\n') {
            d[i] = ' ';
        }
    }
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    b->len += (size_t)n + 3;
}

void resp_write_ok(struct resp_writer *w)
{
    hy_buf_append(w->out, "+OK\r\n", 5);
}

void resp_write_int(struct resp_writer *w, int64_t v)
{
    w_header(w->out, ':', v);
}

void resp_write_bulk(struct resp_writer *w, const void *p, size_t len)
{
    struct hy_buf *b = w->out;
    hy_buf_reserve(b, len + 26);
    w_header(b, '$', w_count(len));
    if (len > 0) {
        memcpy(b->data + b->len, p, len);
    }
    b->data[b->len + len] = '\r';
    b->data[b->len + len + 1] = '\n';
    b->len += len + 2;
}

void resp_write_bulk_str(struct resp_writer *w, const char *s)
{
    resp_write_bulk(w, s, strlen(s));
}

void resp_write_bulk_i64(struct resp_writer *w, int64_t v)
{
    char tmp[24];
    size_t n = hy_format_i64(tmp, v);
    resp_write_bulk(w, tmp, n);
}

void resp_write_null(struct resp_writer *w)
{
    if (w->proto >= 3) {
        hy_buf_append(w->out, "_\r\n", 3);
    } else {
        hy_buf_append(w->out, "$-1\r\n", 5);
    }
}

void resp_write_null_array(struct resp_writer *w)
{
    if (w->proto >= 3) {
        hy_buf_append(w->out, "_\r\n", 3);
    } else {
        hy_buf_append(w->out, "*-1\r\n", 5);
    }
}

void resp_write_array(struct resp_writer *w, size_t count)
{
    w_header(w->out, '*', w_count(count));
}

void resp_write_map(struct resp_writer *w, size_t pairs)
{
    if (w->proto >= 3) {
        w_header(w->out, '%', w_count(pairs));
    } else {
        HY_ASSERT(pairs <= (size_t)INT64_MAX / 2);
        w_header(w->out, '*', w_count(pairs * 2));
    }
}

void resp_write_set(struct resp_writer *w, size_t count)
{
    w_header(w->out, w->proto >= 3 ? '~' : '*', w_count(count));
}

void resp_write_push(struct resp_writer *w, size_t count)
{
    w_header(w->out, w->proto >= 3 ? '>' : '*', w_count(count));
}

/* Formats v as Redis 7's addReplyDouble: %.17g, and "inf" / "-inf" / "nan" spelled out. */
static size_t w_format_double(char *dst, size_t cap, double v)
{
    if (isnan(v)) {
        return (size_t)snprintf(dst, cap, "nan");
    }
    if (isinf(v)) {
        return (size_t)snprintf(dst, cap, "%s", v > 0 ? "inf" : "-inf");
    }
    int n = snprintf(dst, cap, "%.17g", v);
    HY_ASSERT(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

void resp_write_double(struct resp_writer *w, double v)
{
    char tmp[64];
    size_t n = w_format_double(tmp, sizeof(tmp), v);
    if (w->proto >= 3) {
        w_line(w->out, ',', tmp, n);
    } else {
        resp_write_bulk(w, tmp, n);
    }
}

void resp_write_bool(struct resp_writer *w, int v)
{
    if (w->proto >= 3) {
        hy_buf_append(w->out, v ? "#t\r\n" : "#f\r\n", 4);
    } else {
        hy_buf_append(w->out, v ? ":1\r\n" : ":0\r\n", 4);
    }
}

void resp_write_verbatim(struct resp_writer *w, const char *fmt3, const void *p, size_t len)
{
    if (w->proto < 3) {
        resp_write_bulk(w, p, len);
        return;
    }
    HY_ASSERT(strlen(fmt3) == 3);
    struct hy_buf *b = w->out;
    hy_buf_reserve(b, len + 30);
    w_header(b, '=', w_count(len + 4));
    memcpy(b->data + b->len, fmt3, 3);
    b->data[b->len + 3] = ':';
    if (len > 0) {
        memcpy(b->data + b->len + 4, p, len);
    }
    b->data[b->len + 4 + len] = '\r';
    b->data[b->len + 5 + len] = '\n';
    b->len += len + 6;
}

/* ---- requests ----------------------------------------------------------------------------- */

/* Without printf: clients frame every argument of every request with it. */
void resp_request_header(struct hy_buf *out, char type, size_t n)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    tmp[--i] = '\n';
    tmp[--i] = '\r';
    do {
        tmp[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    tmp[--i] = type;
    hy_buf_append(out, tmp + i, sizeof(tmp) - i);
}

void resp_request_arg(struct hy_buf *out, const void *p, size_t len)
{
    resp_request_header(out, '$', len);
    hy_buf_append(out, p, len);
    hy_buf_append(out, "\r\n", 2);
}

void resp_request_write(struct hy_buf *out, int argc, const char *const *argv,
                        const size_t *argvlen)
{
    resp_request_header(out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        resp_request_arg(out, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
    }
}
