/*
 * store_bits.c - strings as bit arrays: SETBIT, BITOP and BITFIELD's ops of the log, and the
 * BITFIELD parser the command handler and apply share.
 *
 * Bits are numbered from the most significant bit of the first byte, as Redis's. A write past
 * the end grows the string with zero bytes (keeping its expiry); a read past the end sees
 * zeros. BITFIELD's entry carries the command's own arguments, and apply parses them again
 * with the same parser: a well-formed command parses identically on every replica, and a
 * malformed entry (only a corrupt or hostile log could hold one) answers the same error
 * everywhere without changing anything.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

#define ARG(e, i) (e)->argv[(i)].ptr, (e)->argv[(i)].len

#define ERR_BIT_OFFSET "ERR bit offset is not an integer or out of range"
#define ERR_BIT_VALUE  "ERR bit is not an integer or out of range"
#define ERR_BF_TYPE                                                                             \
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but " \
    "i64 is."
#define ERR_SYNTAX "ERR syntax error"

int store_bit_offset_parse(const uint8_t *p, size_t len, int hash, unsigned bits, uint64_t *out)
{
    int usehash = len > 0 && p[0] == '#' && hash && bits > 0;
    int64_t v;
    if (!hy_parse_i64(p + usehash, len - (size_t)usehash, &v)) {
        return 0;
    }
    if (usehash) {
        if (v > INT64_MAX / (int64_t)bits || v < INT64_MIN / (int64_t)bits) {
            return 0;
        }
        v *= (int64_t)bits;
    }
    if (v < 0 || (uint64_t)(v >> 3) >= STORE_STRING_BYTES_MAX) {
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

static int bf_type_parse(const uint8_t *p, size_t len, uint8_t *sign_out, uint8_t *bits_out)
{
    if (len < 2 || (p[0] != 'i' && p[0] != 'u')) {
        return 0;
    }
    int64_t bits;
    int sign = p[0] == 'i';
    if (!hy_parse_i64(p + 1, len - 1, &bits) || bits < 1 || bits > (sign ? 64 : 63)) {
        return 0;
    }
    *sign_out = (uint8_t)sign;
    *bits_out = (uint8_t)bits;
    return 1;
}

long store_bitfield_parse(const struct store_arg *args, size_t n, struct store_bf_op *ops,
                          int *writes_out, uint64_t *highest_out, const char **err_out)
{
    long nops = 0;
    uint8_t overflow = STORE_BF_WRAP;
    *writes_out = 0;
    *highest_out = 0;
    for (size_t j = 0; j < n; j++) {
        const struct store_arg *a = &args[j];
        size_t rem = n - j - 1;
        struct store_bf_op op = {.overflow = overflow};
        if (hy_eq_nocase(a->ptr, a->len, "GET") && rem >= 2) {
            op.opcode = STORE_BF_GET;
        } else if (hy_eq_nocase(a->ptr, a->len, "SET") && rem >= 3) {
            op.opcode = STORE_BF_SET;
        } else if (hy_eq_nocase(a->ptr, a->len, "INCRBY") && rem >= 3) {
            op.opcode = STORE_BF_INCRBY;
        } else if (hy_eq_nocase(a->ptr, a->len, "OVERFLOW") && rem >= 1) {
            const struct store_arg *t = &args[++j];
            if (hy_eq_nocase(t->ptr, t->len, "WRAP")) {
                overflow = STORE_BF_WRAP;
            } else if (hy_eq_nocase(t->ptr, t->len, "SAT")) {
                overflow = STORE_BF_SAT;
            } else if (hy_eq_nocase(t->ptr, t->len, "FAIL")) {
                overflow = STORE_BF_FAIL;
            } else {
                *err_out = "ERR Invalid OVERFLOW type specified";
                return -1;
            }
            continue;
        } else {
            *err_out = ERR_SYNTAX;
            return -1;
        }
        if (!bf_type_parse(args[j + 1].ptr, args[j + 1].len, &op.sign, &op.bits)) {
            *err_out = ERR_BF_TYPE;
            return -1;
        }
        if (!store_bit_offset_parse(args[j + 2].ptr, args[j + 2].len, 1, op.bits, &op.offset)) {
            *err_out = ERR_BIT_OFFSET;
            return -1;
        }
        if (op.opcode != STORE_BF_GET) {
            *writes_out = 1;
            *highest_out = HY_MAX(*highest_out, op.offset + op.bits - 1);
            if (!hy_parse_i64(args[j + 3].ptr, args[j + 3].len, &op.value)) {
                *err_out = STORE_ERR_NOT_INT;
                return -1;
            }
        }
        ops[nops++] = op;
        j += op.opcode == STORE_BF_GET ? 2 : 3;
    }
    return nops;
}

/* ---- bit field arithmetic (Redis's semantics, overflow rules included) ------------------ */

static uint64_t bf_get_unsigned(const uint8_t *p, uint64_t offset, unsigned bits)
{
    uint64_t v = 0;
    for (unsigned j = 0; j < bits; j++, offset++) {
        uint64_t byte = offset >> 3;
        unsigned bit = 7 - (unsigned)(offset & 7);
        v = (v << 1) | ((p[byte] >> bit) & 1u);
    }
    return v;
}

static int64_t bf_get_signed(const uint8_t *p, uint64_t offset, unsigned bits)
{
    uint64_t v = bf_get_unsigned(p, offset, bits);
    if (bits < 64 && (v & (UINT64_C(1) << (bits - 1)))) {
        v |= UINT64_MAX << bits;
    }
    return (int64_t)v;
}

static void bf_set(uint8_t *p, uint64_t offset, unsigned bits, uint64_t v)
{
    for (unsigned j = 0; j < bits; j++, offset++) {
        unsigned bitval = (unsigned)((v >> (bits - 1 - j)) & 1u);
        uint64_t byte = offset >> 3;
        unsigned bit = 7 - (unsigned)(offset & 7);
        p[byte] = (uint8_t)((p[byte] & ~(1u << bit)) | (bitval << bit));
    }
}

/* Returns 1 (and the value to store in *limit_out unless FAIL) when value + incr overflows. */
static int bf_overflow_unsigned(uint64_t value, int64_t incr, unsigned bits, int owtype,
                                uint64_t *limit_out)
{
    uint64_t max = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    int64_t maxincr = (int64_t)(max - value);
    int64_t minincr = -(int64_t)value;
    int over = value > max || (incr > 0 && incr > maxincr);
    int under = !over && incr < 0 && incr < minincr;
    if (!over && !under) {
        return 0;
    }
    if (owtype == STORE_BF_WRAP) {
        *limit_out = (value + (uint64_t)incr) & ~(UINT64_MAX << bits);
    } else if (owtype == STORE_BF_SAT) {
        *limit_out = over ? max : 0;
    }
    return 1;
}

static int bf_overflow_signed(int64_t value, int64_t incr, unsigned bits, int owtype,
                              int64_t *limit_out)
{
    int64_t max = bits == 64 ? INT64_MAX : (int64_t)((UINT64_C(1) << (bits - 1)) - 1);
    int64_t min = -max - 1;
    int64_t maxincr = (int64_t)((uint64_t)max - (uint64_t)value);
    int64_t minincr = (int64_t)((uint64_t)min - (uint64_t)value);
    int over =
        value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr);
    int under = !over && (value < min || (bits != 64 && incr < minincr) ||
                          (value < 0 && incr < 0 && incr < minincr));
    if (!over && !under) {
        return 0;
    }
    if (owtype == STORE_BF_WRAP) {
        uint64_t c = (uint64_t)value + (uint64_t)incr;
        if (bits < 64) {
            uint64_t mask = UINT64_MAX << bits;
            c = (c & (UINT64_C(1) << (bits - 1))) ? c | mask : c & ~mask;
        }
        *limit_out = (int64_t)c;
    } else if (owtype == STORE_BF_SAT) {
        *limit_out = over ? max : min;
    }
    return 1;
}

/* Executes a SET or INCRBY on the (large enough) string p and replies its result. */
/* Writes one SET or INCRBY; returns 1 when it counts as a change (store_dirty): INCRBY
 * always, SET when the bits changed, neither when OVERFLOW FAIL refused it. */
static int bf_write(uint8_t *p, const struct store_bf_op *op, struct resp_writer *w)
{
    int overflow;
    uint64_t newval;
    int64_t retval;
    if (op->sign) {
        int64_t oldval = bf_get_signed(p, op->offset, op->bits), wrapped = 0;
        int64_t nv;
        if (op->opcode == STORE_BF_INCRBY) {
            overflow = bf_overflow_signed(oldval, op->value, op->bits, op->overflow, &wrapped);
            nv = overflow ? wrapped : (int64_t)((uint64_t)oldval + (uint64_t)op->value);
            retval = nv;
        } else {
            nv = op->value;
            overflow = bf_overflow_signed(nv, 0, op->bits, op->overflow, &wrapped);
            nv = overflow ? wrapped : nv;
            retval = oldval;
        }
        newval = (uint64_t)nv;
    } else {
        uint64_t oldval = bf_get_unsigned(p, op->offset, op->bits), wrapped = 0;
        if (op->opcode == STORE_BF_INCRBY) {
            overflow = bf_overflow_unsigned(oldval, op->value, op->bits, op->overflow, &wrapped);
            newval = overflow ? wrapped : oldval + (uint64_t)op->value;
            retval = (int64_t)newval;
        } else {
            newval = (uint64_t)op->value;
            overflow = bf_overflow_unsigned(newval, 0, op->bits, op->overflow, &wrapped);
            newval = overflow ? wrapped : newval;
            retval = (int64_t)oldval;
        }
    }
    if (overflow && op->overflow == STORE_BF_FAIL) {
        store__r_null(w);
        return 0;
    }
    store__r_int(w, retval);
    uint64_t before = bf_get_unsigned(p, op->offset, op->bits);
    bf_set(p, op->offset, op->bits, newval);
    return op->opcode == STORE_BF_INCRBY || bf_get_unsigned(p, op->offset, op->bits) != before;
}

/* GET reads through a zero-padded copy of the 9 bytes it may touch, so it never reads past
 * the end of the string. */
static void bf_read(const uint8_t *p, size_t len, const struct store_bf_op *op,
                    struct resp_writer *w)
{
    uint8_t buf[9] = {0};
    uint64_t byte = op->offset >> 3;
    for (size_t i = 0; i < sizeof(buf) && p != NULL && byte + i < len; i++) {
        buf[i] = p[byte + i];
    }
    uint64_t off = op->offset - byte * 8;
    if (op->sign) {
        store__r_int(w, bf_get_signed(buf, off, op->bits));
    } else {
        store__r_int(w, (int64_t)bf_get_unsigned(buf, off, op->bits));
    }
}

void store_bitfield_read(const uint8_t *p, size_t len, const struct store_bf_op *ops, size_t n,
                         struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_array(w, n);
    }
    for (size_t i = 0; i < n; i++) {
        bf_read(p, len, &ops[i], w);
    }
}

/* The string at argv[0] for a bit write reaching bit `maxbit`: created or grown with zeros
 * (keeping its expiry). NULL after a WRONGTYPE reply. */
/* The string at argv[0] for a bit write, created or grown to hold maxbit; *grown_out says
 * whether it was (Redis counts that as a change even when no bit changes). */
static struct store_obj *string_for_bits(struct store *s, const struct store_entry *e,
                                         uint64_t maxbit, struct resp_writer *w, int *grown_out)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STRING, s, e, 0, w, &wrong);
    *grown_out = 0;
    if (wrong) {
        return NULL;
    }
    size_t need = (size_t)(maxbit >> 3) + 1;
    if (o == NULL) {
        o = store__string_put(s, e, NULL, 0, NULL, 0, -1);
        *grown_out = 1;
    }
    const uint8_t *v;
    size_t vlen;
    store_obj_string(o, &v, &vlen);
    if (vlen < need) {
        o = store__string_resize(s, o, need);
        *grown_out = 1;
    }
    return o;
}

void store__op_bitfield(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    s->dirty_delta = 0; /* until a write counts */
    size_t n = e->argc - 1;
    struct store_bf_op stack[16];
    struct store_bf_op *ops = n <= HY_ARRAY_LEN(stack) ? stack : hy_xmalloc(n * sizeof(*ops));
    int writes;
    uint64_t highest;
    const char *err = NULL;
    long nops = store_bitfield_parse(e->argv + 1, n, ops, &writes, &highest, &err);
    if (nops < 0) {
        store__r_err(w, err);
        goto out;
    }
    struct store_obj *o = NULL;
    int grown = 0;
    uint64_t changes = 0;
    if (writes && (o = string_for_bits(s, e, highest, w, &grown)) == NULL) {
        goto out;
    }
    if (!writes) {
        int wrong;
        o = store__lookup_typed(STORE_STRING, s, e, 0, w, &wrong);
        if (wrong) {
            goto out;
        }
    }
    if (w != NULL) {
        resp_write_array(w, (size_t)nops);
    }
    for (long i = 0; i < nops; i++) {
        if (ops[i].opcode == STORE_BF_GET) {
            const uint8_t *v = NULL;
            size_t vlen = 0;
            if (o != NULL) {
                store_obj_string(o, &v, &vlen);
            }
            bf_read(v, vlen, &ops[i], w);
        } else {
            /* As Redis: each write counts when it changed bits or the string was created or
             * grown for it. */
            changes += (uint64_t)(bf_write(store__value_ptr(o), &ops[i], w) || grown);
        }
    }
    s->dirty_delta = changes;
out:
    if (ops != stack) {
        hy_free(ops);
    }
}

void store__op_setbit(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    s->dirty_delta = 0; /* until a bit changes */
    uint64_t off;
    if (!store_bit_offset_parse(ARG(e, 1), 0, 0, &off)) {
        store__r_err(w, ERR_BIT_OFFSET);
        return;
    }
    int64_t on;
    if (!hy_parse_i64(ARG(e, 2), &on) || (on & ~1)) {
        store__r_err(w, ERR_BIT_VALUE);
        return;
    }
    int grown;
    struct store_obj *o = string_for_bits(s, e, off, w, &grown);
    if (o == NULL) {
        return;
    }
    uint8_t *p = store__value_ptr(o);
    unsigned bit = 7 - (unsigned)(off & 7);
    int old = (p[off >> 3] >> bit) & 1;
    p[off >> 3] = (uint8_t)((p[off >> 3] & ~(1u << bit)) | ((unsigned)on << bit));
    s->dirty_delta = (uint64_t)(grown || old != on); /* Redis: only a change counts */
    store__r_int(w, old);
}

/* BITOP kinds (entry.incr). */
enum { BITOP_AND = 0, BITOP_OR = 1, BITOP_XOR = 2, BITOP_NOT = 3 };

static void bitop_combine(int kind, uint8_t *res, size_t maxlen, const uint8_t *const *src,
                          const size_t *len, uint32_t n)
{
    for (size_t i = 0; i < maxlen; i++) {
        uint8_t acc = i < len[0] ? src[0][i] : 0;
        if (kind == BITOP_NOT) {
            res[i] = (uint8_t)~acc;
            continue;
        }
        for (uint32_t j = 1; j < n; j++) {
            uint8_t b = i < len[j] ? src[j][i] : 0;
            acc = kind == BITOP_AND  ? (uint8_t)(acc & b)
                  : kind == BITOP_OR ? (uint8_t)(acc | b)
                                     : (uint8_t)(acc ^ b);
        }
        res[i] = acc;
    }
}

void store__op_bitop(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    uint32_t n = e->argc - 1;
    if (e->incr < BITOP_AND || e->incr > BITOP_NOT || (e->incr == BITOP_NOT && n != 1)) {
        store__r_err(w, e->incr == BITOP_NOT ? "ERR BITOP NOT must be called with a single "
                                               "source key."
                                             : ERR_SYNTAX);
        return;
    }
    const uint8_t **src = hy_xmalloc(n * sizeof(*src));
    size_t *len = hy_xmalloc(n * sizeof(*len));
    size_t maxlen = 0;
    for (uint32_t j = 0; j < n; j++) {
        int wrong;
        struct store_obj *o = store__lookup_typed(STORE_STRING, s, e, j + 1, w, &wrong);
        if (wrong) {
            goto out;
        }
        src[j] = NULL;
        len[j] = 0;
        if (o != NULL) {
            store_obj_string(o, &src[j], &len[j]);
        }
        maxlen = HY_MAX(maxlen, len[j]);
    }
    uint8_t *res = maxlen > 0 ? hy_xmalloc(maxlen) : NULL;
    bitop_combine((int)e->incr, res, maxlen, src, len, n);
    struct store_obj *dst = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (maxlen == 0) {
        if (dst != NULL) {
            store__delete(s, dst);
        }
    } else {
        store__string_put(s, e, dst, 0, res, maxlen, -1);
    }
    hy_free(res);
    store__r_int(w, (int64_t)maxlen);
out:
    hy_free(src);
    hy_free(len);
}
