/*
 * resp.h - RESP2/RESP3 codec: an incremental request parser, a general value parser and a
 * reply writer. Pure: no I/O, no clock, no global state.
 *
 * Request parser (server side). Clients send either a multibulk (*N\r\n$len\r\n...) or an
 * inline command (words separated by spaces, ending in \n). The caller keeps the connection's
 * input in one buffer and calls resp_request_parse() on it whenever bytes arrive. The parser
 * keeps its position between calls, so a large bulk arriving in many reads is scanned once.
 * On success the argv slices point into the caller's buffer and stay valid until the caller
 * consumes those bytes (resp_request_parse reports how many) or moves the buffer.
 *
 * Limits are hard: a request that breaks one is a protocol error, the parser stays in the
 * error state, and the caller answers `-ERR Protocol error: <reason>` and closes only that
 * connection (as Redis does).
 *
 * Value parser (client side, peers, tests). resp_value_parse() decodes one complete RESP2 or
 * RESP3 value of any type into a tree, bounded by the same limits plus a nesting depth.
 *
 * Writer. Replies are appended to a struct hy_buf; the writer knows the connection's protocol
 * (2 or 3) and degrades RESP3 types for RESP2 clients exactly as Redis does (map -> flat array,
 * null -> $-1 / *-1, double -> bulk string, boolean -> integer 1/0, set -> array).
 */
#ifndef HY_RESP_H
#define HY_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

struct resp_limits {
    size_t bulk_bytes_max;      /* default 512 MiB (Redis proto-max-bulk-len) */
    size_t multibulk_count_max; /* default 1024 * 1024 arguments */
    size_t inline_bytes_max;    /* default 64 KiB */
    unsigned nesting_max;       /* value parser only; default 64 */
};

void resp_limits_default(struct resp_limits *l);

/* One argument: a borrowed slice of the input buffer. */
struct resp_arg {
    const uint8_t *ptr;
    size_t len;
};

struct resp_request_parser {
    struct resp_limits limits;
    /* Progress through the current request, so that a partial one resumes where it stopped. */
    size_t pos;          /* bytes of the buffer already scanned */
    long long multibulk; /* arguments announced (-1: not started / inline) */
    long long bulk;      /* length of the bulk being read (-1: header not read yet) */
    size_t argc;         /* arguments parsed so far */
    size_t argv_cap;
    size_t *arg_off; /* offsets into the buffer (stable across buffer reallocation) */
    size_t *arg_len;
    struct resp_arg *argv; /* filled from the offsets on success */
    char error[128];       /* set when a limit or the grammar was violated */
    /* Bytes of the current header or inline line already searched for its terminator, so that
     * a line arriving in many small reads is searched once (resumption is O(new bytes)). */
    size_t scan;
    /* Decoded inline arguments that used quotes or escapes live here (parser-owned, reused). */
    uint8_t *scratch;
    size_t scratch_cap;
};

/* Copies *limits (NULL: resp_limits_default). Allocates nothing until the first request. */
void resp_request_parser_init(struct resp_request_parser *p, const struct resp_limits *limits);
/* Frees the argument arrays and scratch; the parser may be initialised again afterwards. */
void resp_request_parser_free(struct resp_request_parser *p);

/*
 * Tries to parse one request from buf[0..len).
 * Returns HY_OK with *argc_out / *argv_out set (argv borrowed from the parser, slices borrowed
 * from buf) and *consumed_out = bytes of buf the request used; the caller drops them from its
 * buffer before the next call. An empty inline line returns HY_OK with argc 0 (ignore it).
 * Returns HY_EAGAIN when more bytes are needed (nothing to consume yet), and HY_EPROTO when the
 * input is invalid; the reason is in p->error (e.g. "invalid bulk length").
 */
int resp_request_parse(struct resp_request_parser *p, const uint8_t *buf, size_t len,
                       size_t *consumed_out, size_t *argc_out,
                       const struct resp_arg **argv_out) HY_MUST_CHECK;

/*
 * Buffer contract between calls: buf[0] is always the first byte of the request in progress,
 * and the bytes given before are given again unchanged (the caller may move or compact its
 * buffer, but consumes bytes only after HY_OK). After HY_OK or HY_EPROTO nothing is consumed
 * implicitly: drop *consumed_out bytes, then call again for the next pipelined request.
 * Inline arguments written with quotes or escapes are decoded into parser memory; every argv
 * slice stays valid until the next call on this parser or until the caller drops those bytes.
 */

/*
 * Returns the buffer length the request in progress needs at least before it can complete
 * (known once a bulk header has been read: the rest of that bulk and its CRLF), or 0 when
 * unknown. Lets the shell reserve room for a large argument in one step.
 */
size_t resp_request_bytes_needed(const struct resp_request_parser *p);

/* ---- general values ---------------------------------------------------------------------- */

enum resp_type {
    RESP_SIMPLE,     /* +  */
    RESP_ERROR,      /* -  */
    RESP_INTEGER,    /* :  */
    RESP_BULK,       /* $  */
    RESP_ARRAY,      /* *  */
    RESP_NULL,       /* _ , and RESP2's $-1 / *-1 */
    RESP_BOOLEAN,    /* #  */
    RESP_DOUBLE,     /* ,  */
    RESP_BIGNUM,     /* (  */
    RESP_BULK_ERROR, /* ! */
    RESP_VERBATIM,   /* =  (str holds "txt:..." as sent) */
    RESP_MAP,        /* %  (count = pairs, elems holds 2*count) */
    RESP_SET,        /* ~  */
    RESP_ATTRIBUTE,  /* |  (count = pairs) */
    RESP_PUSH,       /* >  */
};

struct resp_value {
    enum resp_type type;
    int64_t integer;    /* INTEGER, BOOLEAN (0/1) */
    double dbl;         /* DOUBLE */
    const uint8_t *str; /* SIMPLE, ERROR, BULK, BIGNUM, BULK_ERROR, VERBATIM, DOUBLE text */
    size_t len;
    size_t count;             /* aggregates: elements (pairs for MAP/ATTRIBUTE) */
    struct resp_value *elems; /* owned by the value; freed by resp_value_free */
};

/*
 * Parses one complete value from buf[0..len). Returns HY_OK and *consumed_out, HY_EAGAIN when
 * the value is incomplete, HY_EPROTO on bad input or a broken limit (reason in err, which has
 * room for 128 bytes; may be NULL). Strings in *out borrow from buf. limits may be NULL
 * (defaults). On any result but HY_OK, *out owns nothing and *consumed_out is 0; the parse is
 * not incremental, so call again from the start once more bytes arrived.
 * An attribute (|) is returned as a value of its own, like a push: the caller skips it and
 * parses the reply that follows. Inside an aggregate, attributes are parsed and dropped.
 */
int resp_value_parse(const struct resp_limits *limits, const uint8_t *buf, size_t len,
                     struct resp_value *out, size_t *consumed_out, char *err) HY_MUST_CHECK;
/* Frees the elements of an aggregate, recursively; v itself is the caller's. */
void resp_value_free(struct resp_value *v);

/* ---- writer ------------------------------------------------------------------------------ */

struct resp_writer {
    struct hy_buf *out; /* borrowed; replies are appended */
    int proto;          /* 2 or 3 */
};

void resp_write_simple(struct resp_writer *w, const char *s); /* +s */
void resp_write_error(struct resp_writer *w, const char *s);  /* -s ("ERR ..." given whole) */
void resp_write_errorf(struct resp_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void resp_write_ok(struct resp_writer *w);
void resp_write_int(struct resp_writer *w, int64_t v);
void resp_write_bulk(struct resp_writer *w, const void *p, size_t len);
void resp_write_bulk_str(struct resp_writer *w, const char *s);
void resp_write_bulk_i64(struct resp_writer *w, int64_t v);
void resp_write_null(struct resp_writer *w);       /* RESP3 _ ; RESP2 $-1 */
void resp_write_null_array(struct resp_writer *w); /* RESP3 _ ; RESP2 *-1 */
void resp_write_array(struct resp_writer *w, size_t count);
void resp_write_map(struct resp_writer *w, size_t pairs);  /* RESP2: array of 2*pairs */
void resp_write_set(struct resp_writer *w, size_t count);  /* RESP2: array */
void resp_write_push(struct resp_writer *w, size_t count); /* RESP2: array */
void resp_write_double(struct resp_writer *w, double v);   /* RESP2: bulk string */
void resp_write_bool(struct resp_writer *w, int v);        /* RESP2: integer */
void resp_write_verbatim(struct resp_writer *w, const char *fmt3, const void *p, size_t len);

/* ---- requests (the clients' side: libhalyard, halyctl, the server's --join) ---------------- */

/* "<type><n>\r\n": an array's ('*') or a bulk's ('$') header, for a request framed in pieces. */
void resp_request_header(struct hy_buf *out, char type, size_t n);
/* One argument of a request: a bulk string. */
void resp_request_arg(struct hy_buf *out, const void *p, size_t len);
/* A whole request: argv as an array of bulk strings (argvlen NULL: NUL-terminated strings). */
void resp_request_write(struct hy_buf *out, int argc, const char *const *argv,
                        const size_t *argvlen);

#endif
