/*
 * store_rdb.c - DUMP payloads in Redis's RDB format (docs/disk-format.md "DUMP payload:
 * Redis's RDB format"): DUMP answers with them, and RESTORE reads them, so that keys move
 * between Redis and halyard by DUMP/RESTORE.
 *
 * RESTORE turns a Redis payload into halyard's own payload (format 1, store_codec.c) before
 * anything is proposed: the RESTORE log entry, its apply on every replica and the WAN links
 * keep the one format they always had, and a decoder of Redis's many encodings never runs at
 * apply. DUMP reads the value through halyard's own payload too (store_dump), so this file
 * needs no knowledge of the objects' insides beyond which encoding each is in.
 *
 * Everything is written from the formats' published descriptions: the RDB length and string
 * encodings, LZF, ziplists, listpacks, intsets and the stream listpack layout. The decoder
 * reads untrusted bytes: every read is bounds-checked, every count is bounded by the bytes
 * left, and any inconsistency is STORE_DUMP_BAD_DATA, never a crash.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "store/store.h"
#include "store/store_int.h"

#define RDB_VERSION      10 /* Redis 7.0's; a payload of a later version is refused, as 7.0 does */
#define RDB_TRAILER_SIZE 10 /* version u16 LE, CRC-64 u64 LE */
#define OWN_TRAILER_SIZE 6  /* halyard's payload: version u16 LE, CRC32C u32 LE */

/* Redis's object type bytes (rdb.h), the ones Redis 6.x and 7.0 write or still read. */
enum rdb_type {
    RDB_STRING = 0,
    RDB_LIST = 1,
    RDB_SET = 2,
    RDB_ZSET = 3,
    RDB_HASH = 4,
    RDB_ZSET_2 = 5,
    RDB_MODULE = 6,
    RDB_MODULE_2 = 7,
    RDB_HASH_ZIPMAP = 9,
    RDB_LIST_ZIPLIST = 10,
    RDB_SET_INTSET = 11,
    RDB_ZSET_ZIPLIST = 12,
    RDB_HASH_ZIPLIST = 13,
    RDB_LIST_QUICKLIST = 14,
    RDB_STREAM_LISTPACKS = 15,
    RDB_HASH_LISTPACK = 16,
    RDB_ZSET_LISTPACK = 17,
    RDB_LIST_QUICKLIST_2 = 18,
    RDB_STREAM_LISTPACKS_2 = 19,
};

/* A quicklist node's container (RDB_LIST_QUICKLIST_2). */
#define QL_PLAIN  1
#define QL_PACKED 2

/* Stream entry flags in a stream listpack. */
#define STREAM_DELETED    1
#define STREAM_SAMEFIELDS 2

/* LZF expands at most 88 times: a 3-byte back reference copies at most 264 bytes. A claimed
 * length beyond that cannot be met, and is refused before anything is allocated for it. */
#define LZF_MAX_RATIO 88

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    /* An empty name may have no buffer at all (NULL): memcmp must not see it. */
    int c = HY_MIN(alen, blen) == 0 ? 0 : memcmp(a, b, HY_MIN(alen, blen));
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen;
}

/* Redis's string2ll: an optional '-', then digits without a leading zero ("0" alone is one),
 * within int64. Redis stores exactly these strings as integers in listpacks and RDB strings. */
static int str_to_i64(const uint8_t *p, size_t len, int64_t *v_out)
{
    if (len == 0 || len > 20) {
        return 0;
    }
    if (len == 1 && p[0] == '0') {
        *v_out = 0;
        return 1;
    }
    size_t i = p[0] == '-' ? 1 : 0;
    if (i == len || p[i] < '1' || p[i] > '9') {
        return 0;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - 9) / 10) {
            return 0;
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (p[0] == '-') {
        if (v > (uint64_t)INT64_MAX + 1) {
            return 0;
        }
        *v_out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        return 1;
    }
    if (v > (uint64_t)INT64_MAX) {
        return 0;
    }
    *v_out = (int64_t)v;
    return 1;
}

/* ---- reading Redis's encodings ----------------------------------------------------------------
 */

static uint64_t rd_be(struct rd *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | r->p[r->off + i];
    }
    r->off += n;
    return v;
}

static uint64_t rd_le(struct rd *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = n; i > 0; i--) {
        v = v << 8 | r->p[r->off + i - 1];
    }
    r->off += n;
    return v;
}

/* An RDB length: 6 bits, 14 bits (big-endian), or 0x80 / 0x81 then 32 / 64 bits big-endian.
 * The 0b11 prefix marks a specially encoded string: *special is set and the 6 bits say which
 * (special NULL: not allowed here, bad). */
static uint64_t rdb_len_enc(struct rd *r, int *special)
{
    uint8_t b = rd_u8(r);
    if (special != NULL) {
        *special = 0;
    }
    if (r->bad) {
        return 0;
    }
    switch (b >> 6) {
    case 0: return b & 0x3f;
    case 1: return (uint64_t)(b & 0x3f) << 8 | rd_be(r, 1);
    case 3:
        if (special == NULL) {
            r->bad = 1;
            return 0;
        }
        *special = 1;
        return b & 0x3f;
    default:
        if (b == 0x80) {
            return rd_be(r, 4);
        }
        if (b == 0x81) {
            return rd_be(r, 8);
        }
        r->bad = 1;
        return 0;
    }
}

static uint64_t rdb_len(struct rd *r)
{
    return rdb_len_enc(r, NULL);
}

/* A count of things that take at least one byte each: more than the bytes left is bad. */
static uint64_t rdb_count(struct rd *r)
{
    uint64_t n = rdb_len(r);
    if (!r->bad && n > r->len - r->off) {
        r->bad = 1;
    }
    return r->bad ? 0 : n;
}

/* LZF decompression (liblzf's format): a control byte below 32 starts a run of ctrl + 1
 * literal bytes; above, its top 3 bits are a length (7: one more length byte follows) and
 * its low 5 bits with the next byte an offset back into the output, from which length + 2
 * bytes are copied (overlapping copies repeat bytes). Returns 1 when in[0..ilen) decodes to
 * exactly olen bytes, never writing past out[olen) nor reading before out. */
static int lzf_decode(const uint8_t *in, size_t ilen, uint8_t *out, size_t olen)
{
    size_t i = 0, o = 0;
    while (i < ilen) {
        unsigned ctrl = in[i++];
        if (ctrl < 32) {
            size_t n = (size_t)ctrl + 1;
            if (n > ilen - i || n > olen - o) {
                return 0;
            }
            memcpy(out + o, in + i, n);
            i += n;
            o += n;
            continue;
        }
        size_t n = ctrl >> 5;
        if (n == 7) {
            if (i >= ilen) {
                return 0;
            }
            n += in[i++];
        }
        if (i >= ilen) {
            return 0;
        }
        size_t back = ((size_t)(ctrl & 0x1f) << 8) + in[i++] + 1;
        n += 2;
        if (back > o || n > olen - o) {
            return 0;
        }
        for (size_t k = 0; k < n; k++, o++) {
            out[o] = out[o - back];
        }
    }
    return o == olen;
}

/* A string read from a payload: borrowed from the input, or the text of an integer, or the
 * output of LZF (heap, freed by rstr_free). p points into the struct itself for integers:
 * a struct rstr is never copied. */
struct rstr {
    const uint8_t *p;
    size_t len;
    uint8_t *heap;
    char num[24];
};

static void rstr_free(struct rstr *s)
{
    hy_free(s->heap);
    s->heap = NULL;
}

/* Reads an RDB string into s (s->p NULL and r->bad set when malformed). */
static void rdb_str(struct rd *r, struct rstr *s)
{
    memset(s, 0, sizeof(*s));
    int special;
    uint64_t n = rdb_len_enc(r, &special);
    if (r->bad) {
        return;
    }
    if (special) {
        int64_t v;
        if (n == 0) {
            v = (int8_t)rd_le(r, 1);
        } else if (n == 1) {
            v = (int16_t)rd_le(r, 2);
        } else if (n == 2) {
            v = (int32_t)rd_le(r, 4);
        } else if (n == 3) {
            uint64_t clen = rdb_len(r), ulen = rdb_len(r);
            if (r->bad || clen > r->len - r->off || ulen == 0 || ulen > STORE_STRING_BYTES_MAX ||
                ulen / LZF_MAX_RATIO > clen) {
                r->bad = 1;
                return;
            }
            s->heap = hy_xmalloc((size_t)ulen);
            if (!lzf_decode(r->p + r->off, (size_t)clen, s->heap, (size_t)ulen)) {
                rstr_free(s);
                r->bad = 1;
                return;
            }
            r->off += (size_t)clen;
            s->p = s->heap;
            s->len = (size_t)ulen;
            return;
        } else {
            r->bad = 1;
            return;
        }
        if (!r->bad) {
            s->len = (size_t)snprintf(s->num, sizeof(s->num), "%lld", (long long)v);
            s->p = (const uint8_t *)s->num;
        }
        return;
    }
    if (n > r->len - r->off || n > STORE_STRING_BYTES_MAX) {
        r->bad = 1;
        return;
    }
    s->p = r->p + r->off;
    s->len = (size_t)n;
    r->off += (size_t)n;
}

/* ---- ziplists and listpacks ------------------------------------------------------------------ */

/* One element of a ziplist or listpack: a string (p, len) or an integer. */
struct elem {
    const uint8_t *p;
    size_t len;
    int64_t v;
    int is_int;
};

/* The element's bytes: its string, or its integer's decimal text written into buf. */
static void elem_text(const struct elem *e, char buf[24], const uint8_t **p, size_t *len)
{
    if (e->is_int) {
        *len = (size_t)snprintf(buf, 24, "%lld", (long long)e->v);
        *p = (const uint8_t *)buf;
    } else {
        *p = e->p;
        *len = e->len;
    }
}

static int elem_int(const struct elem *e, int64_t *v)
{
    if (e->is_int) {
        *v = e->v;
        return 1;
    }
    return str_to_i64(e->p, e->len, v);
}

static int64_t sign_extend(uint64_t v, unsigned bits)
{
    uint64_t m = 1ull << (bits - 1);
    return (int64_t)((v ^ m) - m);
}

/* Reads the ziplist entry at p[off..end) into e; returns its size, 0 when malformed. The
 * entry starts with the previous entry's size (1 byte, or 0xfe and 4 bytes LE), which must
 * be prev. */
static size_t zl_entry(const uint8_t *p, size_t end, size_t off, size_t prev, struct elem *e)
{
    size_t at = off;
    size_t pl;
    if (at >= end) {
        return 0;
    }
    if (p[at] < 0xfe) {
        pl = p[at];
        at += 1;
    } else if (p[at] == 0xfe && end - at >= 5) {
        pl = hy_load_u32le(p + at + 1);
        at += 5;
    } else {
        return 0;
    }
    if (pl != prev || at >= end) {
        return 0;
    }
    uint8_t c = p[at++];
    memset(e, 0, sizeof(*e));
    size_t need;
    if (c >> 6 == 0 || c >> 6 == 1 || c == 0x80) { /* strings: 6 bits, 14 bits, 32 bits BE */
        size_t slen;
        if (c >> 6 == 0) {
            slen = c & 0x3f;
        } else if (c >> 6 == 1) {
            if (at >= end) {
                return 0;
            }
            slen = (size_t)(c & 0x3f) << 8 | p[at++];
        } else {
            if (end - at < 4) {
                return 0;
            }
            slen =
                (size_t)p[at] << 24 | (size_t)p[at + 1] << 16 | (size_t)p[at + 2] << 8 | p[at + 3];
            at += 4;
        }
        if (slen > end - at) {
            return 0;
        }
        e->p = p + at;
        e->len = slen;
        return at + slen - off;
    }
    e->is_int = 1;
    switch (c) {
    case 0xc0: need = 2; break;
    case 0xd0: need = 4; break;
    case 0xe0: need = 8; break;
    case 0xf0: need = 3; break;
    case 0xfe: need = 1; break;
    default:
        if (c >= 0xf1 && c <= 0xfd) { /* 4-bit immediate: 0 to 12 */
            e->v = (c & 0x0f) - 1;
            return at - off;
        }
        return 0;
    }
    if (end - at < need) {
        return 0;
    }
    uint64_t u = 0;
    for (size_t i = need; i > 0; i--) {
        u = u << 8 | p[at + i - 1];
    }
    e->v = sign_extend(u, (unsigned)need * 8);
    return at + need - off;
}

/* A listpack entry's back length: the size of its encoding and data, 7 bits a byte, most
 * significant first, every byte but the first with its top bit set (so that it reads
 * backwards from the end). The size limits are Redis's own. */
static size_t lp_backlen(size_t l, uint8_t buf[5])
{
    if (l <= 127) {
        buf[0] = (uint8_t)l;
        return 1;
    }
    size_t n = l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
    for (size_t i = 0; i < n; i++) {
        size_t shift = 7 * (n - 1 - i);
        buf[i] = (uint8_t)(((l >> shift) & 127) | (i > 0 ? 128 : 0));
    }
    return n;
}

/* Reads the listpack entry at p[off..end) into e; returns its size with its back length, 0
 * when malformed. */
static size_t lp_entry(const uint8_t *p, size_t end, size_t off, struct elem *e)
{
    size_t at = off;
    if (at >= end) {
        return 0;
    }
    uint8_t c = p[at];
    memset(e, 0, sizeof(*e));
    size_t hdr, slen = 0, ilen = 0;
    if ((c & 0x80) == 0) { /* 7-bit unsigned integer */
        e->is_int = 1;
        e->v = c;
        hdr = 1;
    } else if ((c & 0xc0) == 0x80) { /* string, 6-bit length */
        hdr = 1;
        slen = c & 0x3f;
    } else if ((c & 0xe0) == 0xc0) { /* 13-bit signed integer */
        hdr = 1;
        ilen = 1;
    } else if ((c & 0xf0) == 0xe0) { /* string, 12-bit length */
        if (end - at < 2) {
            return 0;
        }
        hdr = 2;
        slen = (size_t)(c & 0x0f) << 8 | p[at + 1];
    } else if (c == 0xf0) { /* string, 32-bit length */
        if (end - at < 5) {
            return 0;
        }
        hdr = 5;
        slen = hy_load_u32le(p + at + 1);
    } else if (c >= 0xf1 && c <= 0xf4) { /* 16, 24, 32 and 64-bit integers */
        hdr = 1;
        ilen = c == 0xf4 ? 8 : (size_t)(c - 0xf1) + 2;
    } else {
        return 0;
    }
    size_t body = ilen > 0 ? ilen : slen;
    if (end - at < hdr || end - at - hdr < body) {
        return 0;
    }
    if (ilen > 0) {
        e->is_int = 1;
        if (c < 0xe0) {
            e->v = sign_extend((uint64_t)(c & 0x1f) << 8 | p[at + 1], 13);
        } else {
            uint64_t u = 0;
            for (size_t i = ilen; i > 0; i--) {
                u = u << 8 | p[at + hdr + i - 1];
            }
            e->v = sign_extend(u, (unsigned)ilen * 8);
        }
    } else if (!e->is_int) {
        e->p = p + at + hdr;
        e->len = slen;
    }
    size_t size = hdr + (e->is_int && ilen == 0 ? 0 : body);
    uint8_t bl[5];
    size_t bn = lp_backlen(size, bl);
    if (end - at - size < bn || memcmp(p + at + size, bl, bn) != 0) {
        return 0;
    }
    return size + bn;
}

/* A validated ziplist or listpack, read element by element. */
struct seq {
    const uint8_t *p;
    size_t end; /* the offset of the end byte (0xff) */
    size_t off;
    size_t prev; /* ziplists: the size of the entry before off */
    int lp;
    size_t count;
};

#define ZL_HEADER 10 /* bytes u32, tail offset u32, count u16 */
#define LP_HEADER 6  /* bytes u32, count u16 */

/* Checks blob[0..len) whole: its header (total size, a count unless 65535, a ziplist's tail
 * offset), every entry, and the end byte right after the last. Returns 1 and sets up s to
 * read the elements (s->count of them). */
static int seq_open(struct seq *s, const uint8_t *blob, size_t len, int lp)
{
    size_t hdr = lp ? LP_HEADER : ZL_HEADER;
    if (len < hdr + 1 || hy_load_u32le(blob) != len || blob[len - 1] != 0xff) {
        return 0;
    }
    unsigned hcount = lp ? (unsigned)blob[4] | (unsigned)blob[5] << 8
                         : (unsigned)blob[8] | (unsigned)blob[9] << 8;
    *s = (struct seq){blob, len - 1, hdr, 0, lp, 0};
    size_t last = hdr;
    struct elem e;
    while (s->off < s->end) {
        size_t n =
            lp ? lp_entry(blob, s->end, s->off, &e) : zl_entry(blob, s->end, s->off, s->prev, &e);
        if (n == 0) {
            return 0;
        }
        last = s->off;
        s->prev = n;
        s->off += n;
        s->count++;
    }
    if ((hcount != 65535 && hcount != s->count) ||
        (!lp && hy_load_u32le(blob + 4) != (s->count > 0 ? last : hdr))) {
        return 0;
    }
    s->off = hdr;
    s->prev = 0;
    return 1;
}

/* The next element (the caller reads no more than s->count). */
static void seq_next(struct seq *s, struct elem *e)
{
    size_t n =
        s->lp ? lp_entry(s->p, s->end, s->off, e) : zl_entry(s->p, s->end, s->off, s->prev, e);
    HY_ASSERT(n > 0); /* seq_open walked the same entries */
    s->prev = n;
    s->off += n;
}

/* Appends the element as a length-prefixed string (halyard's encoding). */
static void out_elem(struct hy_buf *out, const struct elem *e)
{
    char buf[24];
    const uint8_t *p;
    size_t len;
    elem_text(e, buf, &p, &len);
    varint_append_bytes(out, p, len);
}

/* ---- Redis values into halyard's payload values ---------------------------------------------- */

/* Every decoder below reads one value from r and appends halyard's encoding of its elements
 * to body, counting them in *n (lists: elements; hashes: fields; sets: members). Returns 0
 * when malformed. The caller puts the count in front. */

static int dec_strings(struct rd *r, uint64_t k, struct hy_buf *body, uint64_t *n)
{
    uint64_t count = rdb_count(r);
    for (uint64_t i = 0; i < count * k && !r->bad; i++) {
        struct rstr s;
        rdb_str(r, &s);
        if (!r->bad) {
            varint_append_bytes(body, s.p, s.len);
        }
        rstr_free(&s);
    }
    *n = count;
    return !r->bad;
}

/* A ziplist or listpack in an RDB string: every element, or pairs of them (k = 2). */
static int dec_packed(struct rd *r, int lp, unsigned k, struct hy_buf *body, uint64_t *n)
{
    struct rstr s;
    rdb_str(r, &s);
    struct seq q;
    int ok = !r->bad && seq_open(&q, s.p, s.len, lp) && q.count % k == 0;
    for (size_t i = 0; ok && i < q.count; i++) {
        struct elem e;
        seq_next(&q, &e);
        out_elem(body, &e);
    }
    *n += ok ? q.count / k : 0;
    rstr_free(&s);
    return ok;
}

/* A zipmap length: one byte below 254, or 254 and 4 bytes LE; 0 when malformed. */
static int zm_len(const uint8_t *p, size_t end, size_t *off, size_t *len)
{
    if (*off >= end || p[*off] == 255) {
        return 0;
    }
    if (p[*off] < 254) {
        *len = p[(*off)++];
        return 1;
    }
    if (end - *off < 5) {
        return 0;
    }
    *len = hy_load_u32le(p + *off + 1);
    *off += 5;
    return 1;
}

/* HASH_ZIPMAP (Redis before 2.6): a count byte (254: count them), then per field its length,
 * its bytes, the value's length, a free byte, the value's bytes and that many unused bytes;
 * 0xff at the end. */
static int dec_zipmap(struct rd *r, struct hy_buf *body, uint64_t *n)
{
    struct rstr s;
    rdb_str(r, &s);
    int ok = !r->bad && s.len >= 2 && s.p[s.len - 1] == 0xff;
    size_t end = ok ? s.len - 1 : 0, off = 1;
    uint64_t count = 0;
    while (ok && off < end) {
        size_t fl, vl;
        ok = zm_len(s.p, end, &off, &fl) && fl <= end - off;
        size_t fo = off;
        off += ok ? fl : 0;
        ok = ok && zm_len(s.p, end, &off, &vl) && off < end;
        size_t fr = ok ? s.p[off++] : 0;
        ok = ok && vl <= end - off && fr <= end - off - vl;
        if (ok) {
            varint_append_bytes(body, s.p + fo, fl);
            varint_append_bytes(body, s.p + off, vl);
            off += vl + fr;
            count++;
        }
    }
    ok = ok && off == end && (s.p[0] >= 254 || s.p[0] == count);
    *n = count;
    rstr_free(&s);
    return ok;
}

/* QUICKLIST (ziplist nodes) and QUICKLIST_2 (a container, then a plain element or a listpack
 * node). Empty nodes are skipped, as Redis does. */
static int dec_quicklist(struct rd *r, int v2, struct hy_buf *body, uint64_t *n)
{
    uint64_t nodes = rdb_count(r);
    *n = 0;
    for (uint64_t i = 0; i < nodes && !r->bad; i++) {
        uint64_t container = v2 ? rdb_len(r) : QL_PACKED;
        if (r->bad || (container != QL_PLAIN && container != QL_PACKED)) {
            return 0;
        }
        if (container == QL_PLAIN) {
            struct rstr s;
            rdb_str(r, &s);
            if (!r->bad) {
                varint_append_bytes(body, s.p, s.len);
                (*n)++;
            }
            rstr_free(&s);
        } else if (!dec_packed(r, v2, 1, body, n)) {
            return 0;
        }
    }
    return !r->bad;
}

/* An intset: encoding (2, 4 or 8 bytes a member) u32 LE, count u32 LE, then the members LE,
 * strictly ascending. */
static int dec_intset(struct rd *r, struct hy_buf *body, uint64_t *n)
{
    struct rstr s;
    rdb_str(r, &s);
    int ok = !r->bad && s.len >= 8;
    uint32_t width = ok ? hy_load_u32le(s.p) : 0;
    uint32_t count = ok ? hy_load_u32le(s.p + 4) : 0;
    ok = ok && (width == 2 || width == 4 || width == 8) && (s.len - 8) / width == count &&
         (s.len - 8) % width == 0;
    int64_t prev = 0;
    for (uint32_t i = 0; ok && i < count; i++) {
        struct rd m = {s.p + 8 + (size_t)i * width, width, 0, 0};
        int64_t v = sign_extend(rd_le(&m, width), width * 8);
        if (i > 0 && v <= prev) {
            ok = 0;
            break;
        }
        prev = v;
        char buf[24];
        int len = snprintf(buf, sizeof(buf), "%lld", (long long)v);
        varint_append_bytes(body, (const uint8_t *)buf, (size_t)len);
    }
    *n = count;
    rstr_free(&s);
    return ok;
}

/* ---- sorted sets ---- */

struct zref {
    double score;
    size_t off; /* the member's length-prefixed bytes in the members buffer */
    size_t len;
    const uint8_t *m; /* the member's bytes, set once the buffer no longer moves */
    size_t mlen;
};

struct zacc {
    struct hy_buf members; /* each member as halyard writes it (length-prefixed) */
    struct zref *v;
    size_t n, cap;
};

static void zacc_add(struct zacc *z, const uint8_t *m, size_t mlen, double score)
{
    if (z->n == z->cap) {
        z->cap = HY_MAX(z->cap * 2, 16);
        z->v = hy_xrealloc(z->v, z->cap * sizeof(*z->v));
    }
    size_t off = z->members.len;
    varint_append_bytes(&z->members, m, mlen);
    z->v[z->n++] = (struct zref){score, off, z->members.len - off, NULL, mlen};
}

static int zref_cmp(const void *pa, const void *pb)
{
    const struct zref *a = pa, *b = pb;
    if (a->score != b->score) {
        return a->score < b->score ? -1 : 1;
    }
    return bytes_cmp(a->m, a->mlen, b->m, b->mlen);
}

/* The members in rank order (score, then bytes), as halyard's payload lists them: a sorted
 * input inserts in linear time. */
static void zacc_emit(struct zacc *z, struct hy_buf *body)
{
    for (size_t i = 0; i < z->n; i++) {
        z->v[i].m = z->members.data + z->v[i].off + (z->v[i].len - z->v[i].mlen);
    }
    if (z->n > 1) {
        qsort(z->v, z->n, sizeof(*z->v), zref_cmp);
    }
    for (size_t i = 0; i < z->n; i++) {
        hy_buf_append(body, z->members.data + z->v[i].off, z->v[i].len);
        uint64_t bits;
        memcpy(&bits, &z->v[i].score, sizeof(bits));
        hy_buf_append_u64le(body, bits);
    }
}

static void zacc_free(struct zacc *z)
{
    hy_buf_free(&z->members);
    hy_free(z->v);
}

/* A score as text (ziplists and listpacks, RDB_ZSET): what strtod reads whole, not NaN. */
static int score_parse(const uint8_t *p, size_t len, double *out)
{
    char buf[128];
    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end;
    *out = strtod(buf, &end);
    return end == buf + len && !isnan(*out);
}

/* ZSET (text scores: a length byte, 253 NaN, 254 +inf, 255 -inf) and ZSET_2 (binary scores). */
static int dec_zset(struct rd *r, int binary, struct zacc *z)
{
    uint64_t count = rdb_count(r);
    for (uint64_t i = 0; i < count && !r->bad; i++) {
        struct rstr m;
        rdb_str(r, &m);
        double score = 0;
        if (binary) {
            uint64_t bits = rd_le(r, 8);
            memcpy(&score, &bits, sizeof(score));
        } else {
            uint8_t l = rd_u8(r);
            if (l == 254 || l == 255) {
                score = l == 254 ? INFINITY : -INFINITY;
            } else if (l == 253 || r->bad || l > r->len - r->off ||
                       !score_parse(r->p + r->off, l, &score)) {
                r->bad = 1;
            } else {
                r->off += l;
            }
        }
        if (!r->bad && isnan(score)) {
            r->bad = 1;
        }
        if (!r->bad) {
            zacc_add(z, m.p, m.len, score);
        }
        rstr_free(&m);
    }
    return !r->bad;
}

/* ZSET_ZIPLIST and ZSET_LISTPACK: member, score, member, score... */
static int dec_zset_packed(struct rd *r, int lp, struct zacc *z)
{
    struct rstr s;
    rdb_str(r, &s);
    struct seq q;
    int ok = !r->bad && seq_open(&q, s.p, s.len, lp) && q.count % 2 == 0;
    for (size_t i = 0; ok && i < q.count; i += 2) {
        struct elem m, sc;
        seq_next(&q, &m);
        seq_next(&q, &sc);
        double score;
        char mb[24], sb[24];
        const uint8_t *mp, *sp;
        size_t ml, sl;
        elem_text(&m, mb, &mp, &ml);
        elem_text(&sc, sb, &sp, &sl);
        ok = score_parse(sp, sl, &score);
        if (ok) {
            zacc_add(z, mp, ml, score);
        }
    }
    rstr_free(&s);
    return ok;
}

/* ---- streams ---- */

struct sid {
    uint64_t ms, seq;
};

static int sid_cmp(struct sid a, struct sid b)
{
    if (a.ms != b.ms) {
        return a.ms < b.ms ? -1 : 1;
    }
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

static struct sid rd_sid_len(struct rd *r)
{
    struct sid id;
    id.ms = rdb_len(r);
    id.seq = rdb_len(r);
    return id;
}

static struct sid rd_sid_raw(struct rd *r)
{
    struct sid id;
    id.ms = rd_be(r, 8);
    id.seq = rd_be(r, 8);
    return id;
}

static void out_sid(struct hy_buf *out, struct sid id)
{
    varint_append(out, id.ms);
    varint_append(out, id.seq);
}

/* What a stream decodes to before halyard's encoding is written. */
struct xdec {
    struct hy_buf entries; /* halyard's entries: (ID, node, pairs, fields) each */
    uint64_t count;
    struct sid first, prev;
    uint64_t nodes, tail_fill;
};

static int lp_next_int(struct seq *q, size_t *left, int64_t *v)
{
    struct elem e;
    if (*left == 0) {
        return 0;
    }
    seq_next(q, &e);
    (*left)--;
    return elem_int(&e, v);
}

/* One stream node: its master ID (the key, 16 bytes big-endian) and its listpack: live
 * count, deleted count, the master fields (count, names, a 0), then per entry its flags, the
 * ID's difference to the master ID, its values (SAMEFIELDS) or its fields and values, and
 * its element count. Live entries go to x as node number x->nodes. */
static int dec_stream_node(struct rd *r, struct xdec *x)
{
    struct rstr key, lp;
    rdb_str(r, &key);
    rdb_str(r, &lp);
    struct seq q;
    int ok = !r->bad && key.len == 16 && seq_open(&q, lp.p, lp.len, 1) && q.count > 0;
    struct rd kr = {key.p, key.len, 0, 0};
    struct sid master = ok ? rd_sid_raw(&kr) : (struct sid){0, 0};
    size_t left = ok ? q.count : 0;
    int64_t live = 0, deleted = 0, nf = 0, zero = -1;
    ok = ok && lp_next_int(&q, &left, &live) && lp_next_int(&q, &left, &deleted) &&
         lp_next_int(&q, &left, &nf) && live >= 0 && deleted >= 0 && nf >= 1 &&
         (uint64_t)nf <= left;
    struct elem *mf = ok ? hy_xmalloc((size_t)nf * sizeof(*mf)) : NULL;
    for (int64_t i = 0; ok && i < nf; i++) {
        seq_next(&q, &mf[i]);
        left--;
    }
    ok = ok && lp_next_int(&q, &left, &zero) && zero == 0;
    x->nodes++;
    int64_t seen_live = 0, seen_deleted = 0;
    struct hy_buf fields;
    hy_buf_init(&fields);
    while (ok && left > 0) {
        int64_t flags, dms, dseq, pairs, lpcount;
        ok = lp_next_int(&q, &left, &flags) && lp_next_int(&q, &left, &dms) &&
             lp_next_int(&q, &left, &dseq) && flags >= 0 && flags <= 3;
        int same = ok && (flags & STREAM_SAMEFIELDS) != 0;
        if (ok && !same) {
            ok = lp_next_int(&q, &left, &pairs) && pairs >= 1 && (uint64_t)pairs <= left / 2;
        } else if (ok) {
            pairs = nf;
            ok = (uint64_t)nf <= left;
        }
        hy_buf_reset(&fields);
        for (int64_t i = 0; ok && i < pairs; i++) {
            struct elem f, v;
            if (same) {
                f = mf[i];
            } else {
                seq_next(&q, &f);
                left--;
            }
            seq_next(&q, &v);
            left--;
            out_elem(&fields, &f);
            out_elem(&fields, &v);
        }
        ok = ok && lp_next_int(&q, &left, &lpcount) && lpcount == (same ? nf + 3 : pairs * 2 + 4);
        if (!ok) {
            break;
        }
        struct sid id = {master.ms + (uint64_t)dms, master.seq + (uint64_t)dseq};
        if (flags & STREAM_DELETED) {
            seen_deleted++;
            continue;
        }
        if (x->count > 0 && sid_cmp(x->prev, id) >= 0) {
            ok = 0;
            break;
        }
        if (x->count == 0) {
            x->first = id;
        }
        x->prev = id;
        x->count++;
        seen_live++;
        out_sid(&x->entries, id);
        varint_append(&x->entries, x->nodes);
        varint_append(&x->entries, (uint64_t)pairs);
        varint_append_bytes(&x->entries, fields.data, fields.len);
    }
    ok = ok && seen_live == live && seen_deleted == deleted;
    x->tail_fill = (uint64_t)seen_live + (uint64_t)seen_deleted;
    hy_buf_free(&fields);
    hy_free(mf);
    rstr_free(&key);
    rstr_free(&lp);
    if (!ok) {
        r->bad = 1;
    }
    return ok;
}

/* Redis's estimate of a group's entries read for a payload that does not carry it (RDB
 * version 9, STREAM_LISTPACKS): exact at the ends of the stream, else unknown (-1). */
static int64_t entries_read_estimate(const struct xdec *x, uint64_t added, struct sid last,
                                     struct sid maxdel, struct sid id)
{
    if (added == 0) {
        return 0;
    }
    if (x->count == 0 && sid_cmp(id, last) <= 0) {
        return (int64_t)added;
    }
    int c = sid_cmp(id, last);
    if (c == 0) {
        return (int64_t)added;
    }
    if (c > 0) {
        return -1;
    }
    int cf = sid_cmp(id, x->first);
    if ((maxdel.ms == 0 && maxdel.seq == 0) || sid_cmp(maxdel, x->first) < 0) {
        if (cf < 0) {
            return (int64_t)(added - x->count);
        }
        if (cf == 0) {
            return (int64_t)(added - x->count + 1);
        }
    }
    return -1;
}

struct pel_ref {
    struct sid id;
    uint64_t time_ms, count, owner; /* owner: consumer index, UINT64_MAX while none */
};

static int pel_cmp_id(const struct pel_ref *p, size_t n, struct sid id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = sid_cmp(p[mid].id, id);
        if (c == 0) {
            return (int)mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

/* One consumer group into out (halyard's group encoding). Its global PEL comes first in
 * Redis's payload, then each consumer with the IDs it owns: every pending entry must have
 * exactly one owner, as halyard keeps them. */
static int dec_stream_group(struct rd *r, int v2, const struct xdec *x, uint64_t added,
                            struct sid last, struct sid maxdel, struct hy_buf *out)
{
    struct rstr name;
    rdb_str(r, &name);
    struct sid glast = rd_sid_len(r);
    int64_t er = v2 ? (int64_t)rdb_len(r) : 0;
    if (!r->bad && !v2) {
        er = entries_read_estimate(x, added, last, maxdel, glast);
    }
    uint64_t npel = rdb_count(r);
    if (r->bad || er < -1 || npel > (r->len - r->off) / 24) { /* a PEL entry: 24 bytes + */
        rstr_free(&name);
        r->bad = 1;
        return 0;
    }
    struct pel_ref *pel = hy_xmalloc(HY_MAX(npel, 1) * sizeof(*pel));
    for (uint64_t i = 0; i < npel && !r->bad; i++) {
        pel[i].id = rd_sid_raw(r);
        pel[i].time_ms = rd_le(r, 8);
        pel[i].count = rdb_len(r);
        pel[i].owner = UINT64_MAX;
        if (i > 0 && sid_cmp(pel[i - 1].id, pel[i].id) >= 0) {
            r->bad = 1;
        }
    }
    uint64_t ncons = rdb_count(r);
    struct hy_buf cons;
    hy_buf_init(&cons);
    struct hy_buf prev_name;
    hy_buf_init(&prev_name);
    for (uint64_t c = 0; c < ncons && !r->bad; c++) {
        struct rstr cn;
        rdb_str(r, &cn);
        uint64_t seen = rd_le(r, 8);
        uint64_t owned = rdb_count(r);
        /* Consumers come in ascending name order (Redis writes its radix tree in order),
         * which halyard's encoding requires too. */
        if (!r->bad && c > 0 && bytes_cmp(prev_name.data, prev_name.len, cn.p, cn.len) >= 0) {
            r->bad = 1;
        }
        if (!r->bad) {
            hy_buf_reset(&prev_name);
            hy_buf_append(&prev_name, cn.p, cn.len);
            varint_append_bytes(&cons, cn.p, cn.len);
            varint_append(&cons, seen);
        }
        rstr_free(&cn);
        for (uint64_t k = 0; k < owned && !r->bad; k++) {
            int at = pel_cmp_id(pel, (size_t)npel, rd_sid_raw(r));
            if (r->bad || at < 0 || pel[at].owner != UINT64_MAX) {
                r->bad = 1;
            } else {
                pel[at].owner = c;
            }
        }
    }
    for (uint64_t i = 0; i < npel && !r->bad; i++) {
        if (pel[i].owner == UINT64_MAX) {
            r->bad = 1;
        }
    }
    if (!r->bad) {
        varint_append_bytes(out, name.p, name.len);
        out_sid(out, glast);
        varint_append(out, zigzag(er));
        varint_append(out, ncons);
        hy_buf_append(out, cons.data, cons.len);
        varint_append(out, npel);
        for (uint64_t i = 0; i < npel; i++) {
            out_sid(out, pel[i].id);
            varint_append(out, pel[i].owner);
            varint_append(out, pel[i].time_ms);
            varint_append(out, pel[i].count);
        }
    }
    hy_buf_free(&cons);
    hy_buf_free(&prev_name);
    hy_free(pel);
    rstr_free(&name);
    return !r->bad;
}

/* STREAM_LISTPACKS (RDB 9) and STREAM_LISTPACKS_2 (RDB 10) into halyard's stream encoding
 * (docs/disk-format.md "Streams"). */
static int dec_stream(struct rd *r, int v2, struct hy_buf *out)
{
    struct xdec x;
    memset(&x, 0, sizeof(x));
    hy_buf_init(&x.entries);
    uint64_t nodes = rdb_count(r);
    for (uint64_t i = 0; i < nodes && !r->bad; i++) {
        dec_stream_node(r, &x);
    }
    uint64_t length = rdb_len(r);
    struct sid last = rd_sid_len(r);
    struct sid maxdel = {0, 0};
    uint64_t added = length;
    if (v2) {
        (void)rd_sid_len(r); /* the first ID: the entries say it */
        maxdel = rd_sid_len(r);
        added = rdb_len(r);
    }
    uint64_t ngroups = rdb_count(r);
    if (r->bad || length != x.count || added < x.count ||
        (x.count > 0 && sid_cmp(x.prev, last) > 0)) {
        hy_buf_free(&x.entries);
        r->bad = 1;
        return 0;
    }
    out_sid(out, last);
    out_sid(out, maxdel);
    varint_append(out, added);
    varint_append(out, x.nodes);
    varint_append(out, x.nodes > 0 ? x.tail_fill : 0);
    varint_append(out, x.count);
    hy_buf_append(out, x.entries.data, x.entries.len);
    varint_append(out, ngroups);
    for (uint64_t g = 0; g < ngroups && !r->bad; g++) {
        dec_stream_group(r, v2, &x, added, last, maxdel, out);
    }
    hy_buf_free(&x.entries);
    return !r->bad;
}

/* ---- the decoder's entry point -----------------------------------------------------------------
 */

/* 1 when buf[0..len) is framed as a Redis payload: an RDB version this decoder knows and a
 * CRC-64 over everything before the checksum that holds. */
static int rdb_frame_ok(const uint8_t *buf, size_t len)
{
    if (buf == NULL || len < RDB_TRAILER_SIZE + 1) {
        return 0;
    }
    const uint8_t *t = buf + len - RDB_TRAILER_SIZE;
    unsigned version = (unsigned)t[0] | (unsigned)t[1] << 8;
    return version <= RDB_VERSION && hy_crc64(0, buf, len - 8) == hy_load_u64le(t + 2);
}

/* The value of a Redis payload's body (type byte and value) as halyard's payload, appended to
 * out. Returns an enum store_dump_status. */
static int rdb_convert(const uint8_t *buf, size_t len, struct hy_buf *out)
{
    struct rd r = {buf, len, 1, 0};
    uint8_t type = buf[0];
    struct hy_buf body;
    hy_buf_init(&body);
    uint64_t n = 0;
    uint8_t own;
    int ok;
    struct zacc z;
    memset(&z, 0, sizeof(z));
    switch (type) {
    case RDB_STRING: {
        struct rstr s;
        rdb_str(&r, &s);
        ok = !r.bad;
        if (ok) {
            varint_append_bytes(&body, s.p, s.len);
        }
        rstr_free(&s);
        own = STORE_STRING;
        break;
    }
    case RDB_LIST: ok = dec_strings(&r, 1, &body, &n), own = STORE_LIST; break;
    case RDB_LIST_ZIPLIST: ok = dec_packed(&r, 0, 1, &body, &n), own = STORE_LIST; break;
    case RDB_LIST_QUICKLIST: ok = dec_quicklist(&r, 0, &body, &n), own = STORE_LIST; break;
    case RDB_LIST_QUICKLIST_2: ok = dec_quicklist(&r, 1, &body, &n), own = STORE_LIST; break;
    case RDB_SET: ok = dec_strings(&r, 1, &body, &n), own = STORE_SET; break;
    case RDB_SET_INTSET: ok = dec_intset(&r, &body, &n), own = STORE_SET; break;
    case RDB_HASH: ok = dec_strings(&r, 2, &body, &n), own = STORE_HASH; break;
    case RDB_HASH_ZIPMAP: ok = dec_zipmap(&r, &body, &n), own = STORE_HASH; break;
    case RDB_HASH_ZIPLIST: ok = dec_packed(&r, 0, 2, &body, &n), own = STORE_HASH; break;
    case RDB_HASH_LISTPACK: ok = dec_packed(&r, 1, 2, &body, &n), own = STORE_HASH; break;
    case RDB_ZSET: ok = dec_zset(&r, 0, &z), own = STORE_ZSET; break;
    case RDB_ZSET_2: ok = dec_zset(&r, 1, &z), own = STORE_ZSET; break;
    case RDB_ZSET_ZIPLIST: ok = dec_zset_packed(&r, 0, &z), own = STORE_ZSET; break;
    case RDB_ZSET_LISTPACK: ok = dec_zset_packed(&r, 1, &z), own = STORE_ZSET; break;
    case RDB_STREAM_LISTPACKS: ok = dec_stream(&r, 0, &body), own = STORE_STREAM; break;
    case RDB_STREAM_LISTPACKS_2: ok = dec_stream(&r, 1, &body), own = STORE_STREAM; break;
    case RDB_MODULE:
    case RDB_MODULE_2: hy_buf_free(&body); return STORE_DUMP_MODULE;
    default: hy_buf_free(&body); return STORE_DUMP_BAD_DATA;
    }
    if (own == STORE_ZSET && ok) {
        n = z.n;
        zacc_emit(&z, &body);
    }
    zacc_free(&z);
    /* Bytes after the value are refused (Redis ignores them): a payload is one value. */
    if (!ok || r.bad || r.off != r.len) {
        hy_buf_free(&body);
        return STORE_DUMP_BAD_DATA;
    }
    size_t start = out->len;
    hy_buf_append_u8(out, own);
    if (own != STORE_STRING && own != STORE_STREAM) {
        varint_append(out, n);
    }
    hy_buf_append(out, body.data, body.len);
    hy_buf_free(&body);
    uint8_t version[2] = {STORE_DUMP_VERSION & 0xff, STORE_DUMP_VERSION >> 8};
    hy_buf_append(out, version, sizeof(version));
    hy_buf_append_u32le(out, hy_crc32c(0, out->data + start, out->len - start));
    return STORE_DUMP_OK;
}

int store_restore_payload(const uint8_t *buf, size_t len, struct hy_buf *out)
{
    size_t start = out->len;
    int rc;
    if (rdb_frame_ok(buf, len)) {
        rc = rdb_convert(buf, len - RDB_TRAILER_SIZE, out);
        /* What halyard's decoder refuses (a duplicate field or member, an empty collection)
         * is bad data in the Redis payload. */
        if (rc == STORE_DUMP_OK &&
            store_dump_check(out->data + start, out->len - start) != STORE_DUMP_OK) {
            rc = STORE_DUMP_BAD_DATA;
        }
    } else {
        rc = store_dump_check(buf, len);
        if (rc == STORE_DUMP_OK) {
            hy_buf_append(out, buf, len);
        }
    }
    if (rc != STORE_DUMP_OK) {
        out->len = start;
    }
    return rc;
}

/* ---- the encoder: halyard's values as Redis 7.0 writes them ------------------------------------
 */

static void rdb_put_len(struct hy_buf *out, uint64_t v)
{
    if (v < 64) {
        hy_buf_append_u8(out, (uint8_t)v);
    } else if (v < 16384) {
        hy_buf_append_u8(out, (uint8_t)(0x40 | v >> 8));
        hy_buf_append_u8(out, (uint8_t)v);
    } else {
        size_t n = v <= UINT32_MAX ? 4 : 8;
        hy_buf_append_u8(out, n == 4 ? 0x80 : 0x81);
        for (size_t i = n; i > 0; i--) {
            hy_buf_append_u8(out, (uint8_t)(v >> (8 * (i - 1))));
        }
    }
}

/* LZF compression (the format lzf_decode reads): 3-byte prefixes are hashed to their last
 * position; a prefix seen again within 8 KiB becomes a back reference as long as the bytes
 * match (at most 264), every other byte a literal in runs of at most 32 behind a control byte.
 * Returns the compressed size, or 0 when it would not fit in out[0..cap). */
#define LZF_HLOG    14
#define LZF_MAX_OFF 8192
#define LZF_MAX_REF 264

static size_t lzf_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    /* A table no larger than the input needs: zeroing 64 KiB for each short string of a big
     * hash would cost more than compressing it. */
    uint32_t table[1u << LZF_HLOG];
    unsigned bits = 6;
    while (bits < LZF_HLOG && ((size_t)1 << bits) < len) {
        bits++;
    }
    memset(table, 0, sizeof(table[0]) << bits);
    size_t ip = 0, op = 0, lit = 0, ctl;
    if (cap == 0) {
        return 0;
    }
    ctl = op++; /* the control byte of the literal run being written */
    while (ip < len) {
        size_t n = 0, dist = 0;
        if (len - ip >= 3) {
            uint32_t key = (uint32_t)in[ip] << 16 | (uint32_t)in[ip + 1] << 8 | in[ip + 2];
            uint32_t h = (key * 2654435761u) >> (32 - bits);
            size_t ref = table[h];
            table[h] = (uint32_t)(ip + 1);
            if (ref > 0 && ip - (ref - 1) <= LZF_MAX_OFF && memcmp(in + ref - 1, in + ip, 3) == 0) {
                dist = ip - (ref - 1);
                size_t max = HY_MIN((size_t)LZF_MAX_REF, len - ip);
                n = 3;
                while (n < max && in[ref - 1 + n] == in[ip + n]) {
                    n++;
                }
            }
        }
        if (n == 0) {
            if (op >= cap) {
                return 0;
            }
            out[op++] = in[ip++];
            if (++lit == 32) {
                out[ctl] = 31;
                lit = 0;
                if (op >= cap) {
                    return 0;
                }
                ctl = op++;
            }
            continue;
        }
        if (lit > 0) {
            out[ctl] = (uint8_t)(lit - 1);
            lit = 0;
        } else {
            op--; /* the reserved control byte: no literal came */
        }
        size_t l = n - 2, off = dist - 1;
        if (cap - op < (l < 7 ? 2u : 3u) + 1) {
            return 0;
        }
        out[op++] = (uint8_t)((l < 7 ? l : 7) << 5 | off >> 8);
        if (l >= 7) {
            out[op++] = (uint8_t)(l - 7);
        }
        out[op++] = (uint8_t)off;
        /* The positions the reference covers are hashed too: a later repeat then finds its
         * nearest earlier copy, not only the copies that started a literal. */
        for (size_t end = ip + n, q = ip + 1; q + 3 <= len && q < end; q++) {
            uint32_t k = (uint32_t)in[q] << 16 | (uint32_t)in[q + 1] << 8 | in[q + 2];
            table[(k * 2654435761u) >> (32 - bits)] = (uint32_t)(q + 1);
        }
        ip += n;
        ctl = op++;
    }
    if (lit > 0) {
        out[ctl] = (uint8_t)(lit - 1);
    } else {
        op--;
    }
    return op;
}

/* An RDB string's bytes as Redis's rdbSaveRawString writes them: LZF-compressed (0xc3, the
 * compressed and the original lengths, the data) when longer than 20 bytes and the data
 * shrinks by more than 4 bytes, else its length and bytes. */
static void rdb_put_raw(struct hy_buf *out, const uint8_t *p, size_t len)
{
    if (len > 20) {
        uint8_t *z = hy_xmalloc(len - 4);
        size_t zn = lzf_encode(p, len, z, len - 4);
        if (zn > 0) {
            hy_buf_append_u8(out, 0xc3);
            rdb_put_len(out, zn);
            rdb_put_len(out, len);
            hy_buf_append(out, z, zn);
        }
        hy_free(z);
        if (zn > 0) {
            return;
        }
    }
    rdb_put_len(out, len);
    hy_buf_append(out, p, len);
}

/* An RDB string as rdbSaveRawString writes it: a string of at most 11 bytes that is an
 * integer's canonical text within 32 bits as that integer (8, 16 or 32 bits LE behind 0xc0,
 * 0xc1, 0xc2), any other as rdb_put_raw does. */
static void rdb_put_str(struct hy_buf *out, const uint8_t *p, size_t len)
{
    int64_t v;
    if (len <= 11 && str_to_i64(p, len, &v) && v >= INT32_MIN && v <= INT32_MAX) {
        size_t n = v >= INT8_MIN && v <= INT8_MAX ? 1 : v >= INT16_MIN && v <= INT16_MAX ? 2 : 4;
        hy_buf_append_u8(out, (uint8_t)(0xc0 | (n == 1 ? 0 : n == 2 ? 1 : 2)));
        for (size_t i = 0; i < n; i++) {
            hy_buf_append_u8(out, (uint8_t)((uint64_t)v >> (8 * i)));
        }
        return;
    }
    rdb_put_raw(out, p, len);
}

static void rdb_put_sid_raw(struct hy_buf *out, struct sid id)
{
    for (int i = 7; i >= 0; i--) {
        hy_buf_append_u8(out, (uint8_t)(id.ms >> (8 * i)));
    }
    for (int i = 7; i >= 0; i--) {
        hy_buf_append_u8(out, (uint8_t)(id.seq >> (8 * i)));
    }
}

/* A listpack being built: entries are appended, lp_finish writes the header and end byte. */
struct lpb {
    struct hy_buf b;
    size_t count;
};

static void lp_start(struct lpb *l)
{
    hy_buf_init(&l->b);
    uint8_t hdr[LP_HEADER] = {0};
    hy_buf_append(&l->b, hdr, sizeof(hdr));
    l->count = 0;
}

static void lp_put_int(struct lpb *l, int64_t v)
{
    uint8_t e[9];
    size_t n;
    if (v >= 0 && v <= 127) {
        e[0] = (uint8_t)v;
        n = 1;
    } else if (v >= -4096 && v <= 4095) {
        uint64_t u = (uint64_t)v & 0x1fff;
        e[0] = (uint8_t)(0xc0 | u >> 8);
        e[1] = (uint8_t)u;
        n = 2;
    } else {
        size_t w = v >= INT16_MIN && v <= INT16_MAX   ? 2
                   : v >= -8388608 && v <= 8388607    ? 3
                   : v >= INT32_MIN && v <= INT32_MAX ? 4
                                                      : 8;
        e[0] = w == 8 ? 0xf4 : (uint8_t)(0xf1 + w - 2);
        for (size_t i = 0; i < w; i++) {
            e[1 + i] = (uint8_t)((uint64_t)v >> (8 * i));
        }
        n = 1 + w;
    }
    uint8_t bl[5];
    hy_buf_append(&l->b, e, n);
    hy_buf_append(&l->b, bl, lp_backlen(n, bl));
    l->count++;
}

/* A string element: an integer's canonical text is stored as the integer, as Redis does. */
static void lp_put_str(struct lpb *l, const uint8_t *p, size_t len)
{
    int64_t v;
    if (str_to_i64(p, len, &v)) {
        lp_put_int(l, v);
        return;
    }
    uint8_t h[5];
    size_t hn;
    if (len < 64) {
        h[0] = (uint8_t)(0x80 | len);
        hn = 1;
    } else if (len < 4096) {
        h[0] = (uint8_t)(0xe0 | len >> 8);
        h[1] = (uint8_t)len;
        hn = 2;
    } else {
        h[0] = 0xf0;
        hy_store_u32le(h + 1, (uint32_t)len);
        hn = 5;
    }
    uint8_t bl[5];
    hy_buf_append(&l->b, h, hn);
    hy_buf_append(&l->b, p, len);
    hy_buf_append(&l->b, bl, lp_backlen(hn + len, bl));
    l->count++;
}

/* Finishes the listpack and appends it to out as an RDB string. */
static void lp_finish(struct lpb *l, struct hy_buf *out)
{
    hy_buf_append_u8(&l->b, 0xff);
    HY_ASSERT(l->b.len <= UINT32_MAX);
    hy_store_u32le(l->b.data, (uint32_t)l->b.len);
    unsigned c = l->count < 65535 ? (unsigned)l->count : 65535;
    l->b.data[4] = (uint8_t)c;
    l->b.data[5] = (uint8_t)(c >> 8);
    rdb_put_raw(out, l->b.data, l->b.len);
    hy_buf_free(&l->b);
}

/* Redis 7.0's quicklist node limit at its default list-max-listpack-size (-2): 8 KiB. */
#define QL_NODE_BYTES 8192

static void enc_list(struct rd *r, struct hy_buf *out)
{
    uint64_t n = rd_varint(r);
    /* Nodes are counted first: the count comes before them. */
    size_t save = r->off;
    uint64_t nodes = 0;
    size_t fill = 0, in_node = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        (void)rd_bytes(r, &len);
        size_t sz = len + 11; /* an upper bound of the entry's size */
        if (in_node > 0 && fill + sz > QL_NODE_BYTES) {
            nodes++;
            fill = 0;
            in_node = 0;
        }
        fill += sz;
        in_node++;
    }
    nodes += in_node > 0;
    r->off = save;
    hy_buf_append_u8(out, RDB_LIST_QUICKLIST_2);
    rdb_put_len(out, nodes);
    struct lpb l;
    fill = 0;
    in_node = 0;
    lp_start(&l);
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = rd_bytes(r, &len);
        size_t sz = len + 11;
        if (in_node > 0 && fill + sz > QL_NODE_BYTES) {
            rdb_put_len(out, QL_PACKED);
            lp_finish(&l, out);
            lp_start(&l);
            fill = 0;
            in_node = 0;
        }
        lp_put_str(&l, p, len);
        fill += sz;
        in_node++;
    }
    rdb_put_len(out, QL_PACKED);
    lp_finish(&l, out);
}

/* A hash: HASH_LISTPACK while compact (its fields in insertion order), else HASH. */
static void enc_hash(struct rd *r, int compact, struct hy_buf *out)
{
    uint64_t n = rd_varint(r);
    if (compact) {
        struct lpb l;
        lp_start(&l);
        for (uint64_t i = 0; i < n * 2; i++) {
            size_t len;
            const uint8_t *p = rd_bytes(r, &len);
            lp_put_str(&l, p, len);
        }
        hy_buf_append_u8(out, RDB_HASH_LISTPACK);
        lp_finish(&l, out);
        return;
    }
    hy_buf_append_u8(out, RDB_HASH);
    rdb_put_len(out, n);
    for (uint64_t i = 0; i < n * 2; i++) {
        size_t len;
        const uint8_t *p = rd_bytes(r, &len);
        rdb_put_str(out, p, len);
    }
}

static int i64_cmp(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

/* A set: SET_INTSET while an intset (the narrowest width that holds every member), else SET. */
static void enc_set(struct rd *r, int intset, struct hy_buf *out)
{
    uint64_t n = rd_varint(r);
    if (!intset) {
        hy_buf_append_u8(out, RDB_SET);
        rdb_put_len(out, n);
        for (uint64_t i = 0; i < n; i++) {
            size_t len;
            const uint8_t *p = rd_bytes(r, &len);
            rdb_put_str(out, p, len);
        }
        return;
    }
    int64_t *v = hy_xmalloc(HY_MAX(n, 1) * sizeof(*v));
    uint32_t width = 2;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = rd_bytes(r, &len);
        HY_ASSERT(str_to_i64(p, len, &v[i])); /* an intset's members are integers */
        if (v[i] < INT16_MIN || v[i] > INT16_MAX) {
            width = HY_MAX(width, v[i] < INT32_MIN || v[i] > INT32_MAX ? 8 : 4);
        }
    }
    qsort(v, (size_t)n, sizeof(*v), i64_cmp);
    struct hy_buf blob;
    hy_buf_init(&blob);
    hy_buf_append_u32le(&blob, width);
    hy_buf_append_u32le(&blob, (uint32_t)n);
    for (uint64_t i = 0; i < n; i++) {
        for (uint32_t b = 0; b < width; b++) {
            hy_buf_append_u8(&blob, (uint8_t)((uint64_t)v[i] >> (8 * b)));
        }
    }
    hy_buf_append_u8(out, RDB_SET_INTSET);
    rdb_put_raw(out, blob.data, blob.len);
    hy_buf_free(&blob);
    hy_free(v);
}

/* Redis's d2string for a score in a listpack: an integral value within 2^52 as an integer,
 * else "%.17g" (infinities as "inf" and "-inf"). */
static size_t score_text(double d, char buf[32])
{
    if (isinf(d)) {
        return (size_t)snprintf(buf, 32, "%s", d > 0 ? "inf" : "-inf");
    }
    if (d == 0) {
        return (size_t)snprintf(buf, 32, "%s", signbit(d) ? "-0" : "0");
    }
    if (d > -4503599627370495.0 && d < 4503599627370496.0 && d == (double)(long long)d) {
        return (size_t)snprintf(buf, 32, "%lld", (long long)d);
    }
    return (size_t)snprintf(buf, 32, "%.17g", d);
}

/* A sorted set: ZSET_LISTPACK while compact (member, score, in rank order), else ZSET_2
 * (member, binary score), highest rank first as Redis walks its skiplist. */
static void enc_zset(struct rd *r, int compact, struct hy_buf *out)
{
    uint64_t n = rd_varint(r);
    if (compact) {
        struct lpb l;
        lp_start(&l);
        for (uint64_t i = 0; i < n; i++) {
            size_t len;
            const uint8_t *p = rd_bytes(r, &len);
            uint64_t bits = hy_load_u64le(r->p + r->off);
            r->off += 8;
            double d;
            memcpy(&d, &bits, sizeof(d));
            char buf[32];
            lp_put_str(&l, p, len);
            lp_put_str(&l, (const uint8_t *)buf, score_text(d, buf));
        }
        hy_buf_append_u8(out, RDB_ZSET_LISTPACK);
        lp_finish(&l, out);
        return;
    }
    size_t *at = hy_xmalloc(HY_MAX(n, 1) * sizeof(*at));
    for (uint64_t i = 0; i < n; i++) {
        at[i] = r->off;
        size_t len;
        (void)rd_bytes(r, &len);
        r->off += 8;
    }
    hy_buf_append_u8(out, RDB_ZSET_2);
    rdb_put_len(out, n);
    for (uint64_t i = n; i > 0; i--) {
        struct rd m = {r->p, r->len, at[i - 1], 0};
        size_t len;
        const uint8_t *p = rd_bytes(&m, &len);
        rdb_put_str(out, p, len);
        hy_buf_append(out, m.p + m.off, 8);
    }
    hy_free(at);
}

/* One entry of halyard's stream encoding. */
struct xent {
    struct sid id;
    uint64_t node, pairs;
    const uint8_t *f;
    size_t flen;
};

/* 1 when entry e has the same field names, in the same order, as entry m. */
static int same_fields(const struct xent *e, const struct xent *m)
{
    if (e->pairs != m->pairs) {
        return 0;
    }
    struct rd a = {e->f, e->flen, 0, 0}, b = {m->f, m->flen, 0, 0};
    for (uint64_t i = 0; i < e->pairs; i++) {
        size_t al, bl, vl;
        const uint8_t *ap = rd_bytes(&a, &al), *bp = rd_bytes(&b, &bl);
        if (al != bl || memcmp(ap, bp, al) != 0) {
            return 0;
        }
        (void)rd_bytes(&a, &vl);
        (void)rd_bytes(&b, &vl);
    }
    return 1;
}

/* Entries [from, to) as one stream node: its master ID and listpack (dec_stream_node). */
static void enc_stream_node(const struct xent *v, size_t from, size_t to, struct hy_buf *out)
{
    const struct xent *m = &v[from];
    rdb_put_len(out, 16);
    rdb_put_sid_raw(out, m->id);
    struct lpb l;
    lp_start(&l);
    lp_put_int(&l, (int64_t)(to - from));
    lp_put_int(&l, 0);
    lp_put_int(&l, (int64_t)m->pairs);
    struct rd f = {m->f, m->flen, 0, 0};
    for (uint64_t i = 0; i < m->pairs; i++) {
        size_t len;
        const uint8_t *p = rd_bytes(&f, &len);
        lp_put_str(&l, p, len);
        (void)rd_bytes(&f, &len);
    }
    lp_put_int(&l, 0);
    for (size_t i = from; i < to; i++) {
        int same = same_fields(&v[i], m);
        lp_put_int(&l, same ? STREAM_SAMEFIELDS : 0);
        lp_put_int(&l, (int64_t)(v[i].id.ms - m->id.ms));
        lp_put_int(&l, (int64_t)(v[i].id.seq - m->id.seq));
        if (!same) {
            lp_put_int(&l, (int64_t)v[i].pairs);
        }
        struct rd e = {v[i].f, v[i].flen, 0, 0};
        for (uint64_t k = 0; k < v[i].pairs; k++) {
            size_t len;
            const uint8_t *p = rd_bytes(&e, &len);
            if (!same) {
                lp_put_str(&l, p, len);
            }
            p = rd_bytes(&e, &len);
            lp_put_str(&l, p, len);
        }
        lp_put_int(&l, (int64_t)(same ? v[i].pairs + 3 : v[i].pairs * 2 + 4));
    }
    lp_finish(&l, out);
}

static void rdb_put_ms(struct hy_buf *out, uint64_t ms)
{
    hy_buf_append_u64le(out, ms);
}

static struct sid rd_sid_own(struct rd *r)
{
    struct sid id;
    id.ms = rd_varint(r);
    id.seq = rd_varint(r);
    return id;
}

/* A stream as STREAM_LISTPACKS_2: a node per halyard node (the entries appended together),
 * then the stream's metadata and its groups, each with its PEL and its consumers. */
static void enc_stream(struct rd *r, struct hy_buf *out)
{
    struct sid last = rd_sid_own(r), maxdel = rd_sid_own(r);
    uint64_t added = rd_varint(r);
    (void)rd_varint(r); /* the tail node and its fill: nothing in Redis's payload holds them */
    (void)rd_varint(r);
    uint64_t n = rd_varint(r);
    struct xent *v = hy_xmalloc(HY_MAX(n, 1) * sizeof(*v));
    uint64_t nodes = 0;
    for (uint64_t i = 0; i < n; i++) {
        v[i].id = rd_sid_own(r);
        v[i].node = rd_varint(r);
        v[i].pairs = rd_varint(r);
        v[i].f = rd_bytes(r, &v[i].flen);
        nodes += i == 0 || v[i].node != v[i - 1].node;
    }
    hy_buf_append_u8(out, RDB_STREAM_LISTPACKS_2);
    rdb_put_len(out, nodes);
    for (size_t from = 0; from < n;) {
        size_t to = from + 1;
        while (to < n && v[to].node == v[from].node) {
            to++;
        }
        enc_stream_node(v, from, to, out);
        from = to;
    }
    rdb_put_len(out, n);
    rdb_put_len(out, last.ms);
    rdb_put_len(out, last.seq);
    struct sid first = n > 0 ? v[0].id : (struct sid){0, 0};
    rdb_put_len(out, first.ms);
    rdb_put_len(out, first.seq);
    rdb_put_len(out, maxdel.ms);
    rdb_put_len(out, maxdel.seq);
    rdb_put_len(out, added);
    hy_free(v);
    uint64_t ngroups = rd_varint(r);
    rdb_put_len(out, ngroups);
    for (uint64_t g = 0; g < ngroups; g++) {
        size_t nlen;
        const uint8_t *name = rd_bytes(r, &nlen);
        struct sid glast = rd_sid_own(r);
        int64_t er = unzigzag(rd_varint(r));
        rdb_put_str(out, name, nlen);
        rdb_put_len(out, glast.ms);
        rdb_put_len(out, glast.seq);
        rdb_put_len(out, (uint64_t)er);
        uint64_t ncons = rd_varint(r);
        size_t cons_at = r->off;
        for (uint64_t c = 0; c < ncons; c++) {
            size_t len;
            (void)rd_bytes(r, &len);
            (void)rd_varint(r);
        }
        uint64_t npel = rd_varint(r);
        size_t pel_at = r->off;
        rdb_put_len(out, npel);
        for (uint64_t k = 0; k < npel; k++) {
            struct sid id = rd_sid_own(r);
            (void)rd_varint(r);
            uint64_t t = rd_varint(r), cnt = rd_varint(r);
            rdb_put_sid_raw(out, id);
            rdb_put_ms(out, t);
            rdb_put_len(out, cnt);
        }
        size_t end = r->off;
        /* Each consumer, then the IDs it owns: the PEL is walked once per consumer. */
        rdb_put_len(out, ncons);
        r->off = cons_at;
        for (uint64_t c = 0; c < ncons; c++) {
            size_t len;
            const uint8_t *cn = rd_bytes(r, &len);
            uint64_t seen = rd_varint(r);
            rdb_put_str(out, cn, len);
            rdb_put_ms(out, seen);
            struct rd p = {r->p, r->len, pel_at, 0};
            uint64_t owned = 0;
            for (int pass = 0; pass < 2; pass++) {
                p.off = pel_at;
                for (uint64_t k = 0; k < npel; k++) {
                    struct sid id = rd_sid_own(&p);
                    uint64_t owner = rd_varint(&p);
                    (void)rd_varint(&p);
                    (void)rd_varint(&p);
                    if (owner != c) {
                        continue;
                    }
                    if (pass == 0) {
                        owned++;
                    } else {
                        rdb_put_sid_raw(out, id);
                    }
                }
                if (pass == 0) {
                    rdb_put_len(out, owned);
                }
            }
        }
        r->off = end;
    }
}

void store_dump_rdb(const struct store_obj *o, struct hy_buf *out)
{
    struct hy_buf own;
    hy_buf_init(&own);
    store_dump(o, &own);
    /* The value of halyard's own payload, between its type byte and its trailer: our own
     * bytes, so every read below holds (the reader's checks stay as a net). */
    struct rd r = {own.data, own.len - OWN_TRAILER_SIZE, 1, 0};
    size_t start = out->len;
    switch (se_type(o)) {
    case STORE_STRING: {
        size_t len;
        const uint8_t *p = rd_bytes(&r, &len);
        hy_buf_append_u8(out, RDB_STRING);
        rdb_put_str(out, p, len);
        break;
    }
    case STORE_HASH: enc_hash(&r, store__hobj_compact(store__hobj(o)), out); break;
    case STORE_LIST: enc_list(&r, out); break;
    case STORE_SET: enc_set(&r, store__hobj_intset(store__hobj(o)), out); break;
    case STORE_ZSET: enc_zset(&r, store__zobj_compact(store__zobj(o)), out); break;
    case STORE_STREAM: enc_stream(&r, out); break;
    default: HY_ASSERT(0);
    }
    HY_ASSERT(!r.bad && r.off == r.len);
    hy_buf_free(&own);
    hy_buf_append_u8(out, RDB_VERSION & 0xff);
    hy_buf_append_u8(out, RDB_VERSION >> 8);
    hy_buf_append_u64le(out, hy_crc64(0, out->data + start, out->len - start));
}
