/*
 * fuzz_resp.c - libFuzzer target for the RESP codec (src/proto/resp.c).
 *
 * The input is treated as bytes from an untrusted client or server:
 *  - as a pipeline of requests, parsed whole, then again arriving in two reads split at a
 *    point derived from the data, then (for short inputs) one byte at a time: all three must
 *    give the same requests and the same error, or the parser's resumption state is wrong;
 *  - as a sequence of RESP2/RESP3 values, with every string checked to lie inside the input
 *    and every strict prefix of a parsed value reported as incomplete;
 *  - each multibulk request the request parser accepts must read the same through the value
 *    parser (two independent readings of one grammar);
 *  - each value is also read as a CLUSTER SHARDS answer by libhalyard's staleness estimate
 *    (src/client/stale.c), which must take or refuse it without reading outside it.
 * Every buffer handed to a parser is a fresh allocation of exactly the bytes "received", so a
 * read past them or a pointer kept into a moved buffer shows up under ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/stale.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/status.h"
#include "proto/resp.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits half of the time (chosen by the last byte) so that every limit is reachable. */
static void fuzz_limits(const uint8_t *data, size_t size, struct resp_limits *l)
{
    resp_limits_default(l);
    if (size > 0 && (data[size - 1] & 1)) {
        l->bulk_bytes_max = 64;
        l->multibulk_count_max = 16;
        l->inline_bytes_max = 64;
        l->nesting_max = 8;
    }
}

static int inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
    return n == 0 || (p >= base && p <= base + len && n <= (size_t)(base + len - p));
}

/* Checks one parse result's invariants and appends it to the digest. */
static void req_record(struct hy_buf *d, const struct resp_request_parser *p, int rc,
                       const uint8_t *buf, size_t len, size_t consumed, size_t argc,
                       const struct resp_arg *argv)
{
    FUZZ_CHECK(rc == HY_OK || rc == HY_EAGAIN || rc == HY_EPROTO);
    FUZZ_CHECK(consumed <= len);
    FUZZ_CHECK(rc == HY_OK ? consumed > 0 : consumed == 0 && argc == 0);
    FUZZ_CHECK(rc != HY_EPROTO || p->error[0] != '\0');
    hy_buf_printf(d, "rc=%d c=%zu n=%zu:", rc, consumed, argc);
    for (size_t i = 0; i < argc; i++) {
        /* Multibulk arguments and plain inline ones lie in the consumed bytes; decoded inline
         * ones in the parser's scratch. */
        FUZZ_CHECK(inside(argv[i].ptr, argv[i].len, buf, consumed) ||
                   inside(argv[i].ptr, argv[i].len, p->scratch, p->scratch_cap));
        hy_buf_printf(d, "%zu/", argv[i].len);
        hy_buf_append(d, argv[i].ptr, argv[i].len);
    }
    if (rc == HY_EPROTO) {
        hy_buf_append_str(d, p->error);
    }
}

/* Cross-check: an accepted multibulk request reads as the same array through resp_value_parse. */
static void req_vs_value(const struct resp_limits *l, const uint8_t *buf, size_t len,
                         size_t consumed, size_t argc, const struct resp_arg *argv)
{
    if (buf[0] != '*' || argc == 0) {
        return;
    }
    struct resp_value v;
    size_t vconsumed;
    int rc = resp_value_parse(l, buf, len, &v, &vconsumed, NULL);
    FUZZ_CHECK(rc == HY_OK);
    FUZZ_CHECK(vconsumed == consumed);
    FUZZ_CHECK(v.type == RESP_ARRAY && v.count == argc);
    for (size_t i = 0; i < argc; i++) {
        FUZZ_CHECK(v.elems[i].type == RESP_BULK && v.elems[i].len == argv[i].len);
        FUZZ_CHECK(v.elems[i].str == argv[i].ptr);
    }
    resp_value_free(&v);
}

/*
 * Feeds data[0..size) as if it arrived in reads ending at the given cut points (ascending,
 * the last being size), keeping unconsumed bytes at the front of a buffer that is
 * reallocated for every read. Returns the digest of every result.
 */
static void req_run(const struct resp_limits *l, const uint8_t *data, size_t size,
                    const size_t *cuts, size_t ncuts, struct hy_buf *d)
{
    struct resp_request_parser p;
    FUZZ_CHECK(ncuts > 0 && cuts[ncuts - 1] == size);
    resp_request_parser_init(&p, l);
    size_t off = 0; /* bytes of data consumed */
    for (size_t c = 0; c < ncuts; c++) {
        size_t avail = cuts[c];
        uint8_t *buf = hy_xmalloc(avail - off ? avail - off : 1);
        memcpy(buf, data + off, avail - off);
        size_t pos = 0;
        for (;;) {
            size_t consumed, argc;
            const struct resp_arg *argv;
            size_t len = avail - off - pos;
            int rc = resp_request_parse(&p, buf + pos, len, &consumed, &argc, &argv);
            if (rc == HY_EAGAIN && c + 1 < ncuts) {
                break; /* wait for the next read */
            }
            req_record(d, &p, rc, buf + pos, len, consumed, argc, argv);
            if (rc != HY_OK) {
                hy_free(buf);
                goto out;
            }
            req_vs_value(l, buf + pos, len, consumed, argc, argv);
            pos += consumed;
        }
        off += pos;
        hy_free(buf);
    }
out:
    resp_request_parser_free(&p);
}

static void fuzz_requests(const struct resp_limits *l, const uint8_t *data, size_t size)
{
    struct hy_buf whole, split;
    hy_buf_init(&whole);
    hy_buf_init(&split);
    size_t cut_whole = size;
    req_run(l, data, size, &cut_whole, 1, &whole);

    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < size; i += 1 + size / 16) {
        h = (h ^ data[i]) * 1099511628211ULL;
    }
    size_t cuts[2] = {size ? (size_t)(h % (size + 1)) : 0, size};
    req_run(l, data, size, cuts, 2, &split);
    FUZZ_CHECK(whole.len == split.len && memcmp(whole.data, split.data, whole.len) == 0);

    if (size > 0 && size <= 256) {
        size_t bytewise[257];
        for (size_t i = 0; i < size; i++) {
            bytewise[i] = i + 1;
        }
        hy_buf_reset(&split);
        req_run(l, data, size, bytewise, size, &split);
        FUZZ_CHECK(whole.len == split.len && memcmp(whole.data, split.data, whole.len) == 0);
    }
    hy_buf_free(&whole);
    hy_buf_free(&split);
}

/* Every string of a parsed value lies inside the input; aggregates hold their elements. */
static void value_check(const struct resp_value *v, const uint8_t *buf, size_t len)
{
    FUZZ_CHECK(inside(v->str, v->len, buf, len));
    switch (v->type) {
    case RESP_ARRAY:
    case RESP_SET:
    case RESP_PUSH:
    case RESP_MAP:
    case RESP_ATTRIBUTE: {
        size_t n = v->type == RESP_MAP || v->type == RESP_ATTRIBUTE ? v->count * 2 : v->count;
        FUZZ_CHECK((n == 0) == (v->elems == NULL));
        for (size_t i = 0; i < n; i++) {
            value_check(&v->elems[i], buf, len);
        }
        break;
    }
    case RESP_BOOLEAN: FUZZ_CHECK(v->integer == 0 || v->integer == 1); break;
    default: FUZZ_CHECK(v->elems == NULL); break;
    }
}

static void fuzz_values(const struct resp_limits *l, const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        struct resp_value v;
        size_t consumed;
        char err[128];
        err[0] = '\0';
        int rc = resp_value_parse(l, data + off, size - off, &v, &consumed, err);
        FUZZ_CHECK(rc == HY_OK || rc == HY_EAGAIN || rc == HY_EPROTO);
        if (rc != HY_OK) {
            FUZZ_CHECK(consumed == 0 && v.elems == NULL);
            FUZZ_CHECK(rc != HY_EPROTO || err[0] != '\0');
            return;
        }
        FUZZ_CHECK(consumed > 0 && consumed <= size - off);
        value_check(&v, data + off, consumed);
        struct stale_report reports[4];
        int n_reports = stale_parse_shards(&v, reports, 4);
        FUZZ_CHECK(n_reports >= -1 && n_reports <= 4);
        resp_value_free(&v);
        /* A strict prefix of a complete value is incomplete, never an error or a value. */
        size_t cut = (consumed * 7 + data[off]) % consumed;
        uint8_t *prefix = hy_xmalloc(cut ? cut : 1);
        memcpy(prefix, data + off, cut);
        size_t pc;
        rc = resp_value_parse(l, prefix, cut, &v, &pc, NULL);
        FUZZ_CHECK(rc == HY_EAGAIN);
        hy_free(prefix);
        off += consumed;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) {
        return 0; /* the grammar is line based; larger inputs add time, not coverage */
    }
    struct resp_limits l;
    fuzz_limits(data, size, &l);
    fuzz_requests(&l, data, size);
    fuzz_values(&l, data, size);
    return 0;
}
