/*
 * store_hll.c - HyperLogLog (PFADD PFCOUNT PFMERGE): string values in Redis's HLL layout, so
 * GET/SET/DUMP-style tools see the same bytes Redis would hold.
 *
 * Layout (Redis's): "HYLL", an encoding byte (0 dense, 1 sparse), three zero bytes, and an
 * 8-byte little-endian cached cardinality whose top bit set means "stale"; then 16384 6-bit
 * registers packed from the least significant bit (dense), or run-length opcodes (sparse).
 * As Redis, a new HLL is sparse and becomes dense (12304 bytes) once a register exceeds 32
 * or the sparse form would pass 3000 bytes (hll-sparse-max-bytes' default); a dense one stays
 * dense. halyard re-encodes the whole sparse form on each change (canonical runs), where
 * Redis edits it in place: same registers, possibly other bytes.
 *
 * Elements are hashed with MurmurHash64A (seed 0xadc83b19, as Redis), the low 14 bits pick a
 * register and the run of zeros after them (plus one) is its candidate value; the cardinality
 * is Ertl's improved estimator, as Redis 5+. All three are ops of the log: PFCOUNT too, since
 * it refreshes the cached cardinality inside the value (Redis flags PFCOUNT a write as well).
 * Any bytes may be SET into a key, so every decoder here checks lengths and answers
 * INVALIDOBJ for a value it cannot read, never reading out of bounds.
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "store/store_int.h"

#define HLL_P         14
#define HLL_Q         (64 - HLL_P)
#define HLL_REGISTERS (1u << HLL_P)
#define HLL_BITS      6
#define HLL_HDR       16
#define HLL_DENSE_LEN (HLL_HDR + (HLL_REGISTERS * HLL_BITS + 7) / 8)
#define HLL_DENSE     0
#define HLL_SPARSE    1

#define ERR_NOT_HLL "WRONGTYPE Key is not a valid HyperLogLog string value."
#define ERR_INVALID "INVALIDOBJ Corrupted HLL object detected"

#define ARG(e, i) (e)->argv[(i)].ptr, (e)->argv[(i)].len

static uint64_t murmur64a(const uint8_t *p, size_t len, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ull;
    const int r = 47;
    uint64_t h = seed ^ (len * m);
    size_t blocks = len / 8;
    for (size_t i = 0; i < blocks; i++) {
        uint64_t k = 0;
        for (int b = 7; b >= 0; b--) {
            k = (k << 8) | p[i * 8 + (size_t)b]; /* little-endian on every host */
        }
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    const uint8_t *tail = p + blocks * 8;
    size_t rest = len & 7;
    if (rest > 0) {
        for (size_t b = rest; b-- > 0;) {
            h ^= (uint64_t)tail[b] << (8 * b);
        }
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

/* The register an element lands in and its candidate value (1 + the zeros after the index). */
static unsigned hll_pattern(const uint8_t *p, size_t len, unsigned *reg_out)
{
    uint64_t h = murmur64a(p, len, 0xadc83b19ull);
    *reg_out = (unsigned)(h & (HLL_REGISTERS - 1));
    h >>= HLL_P;
    h |= UINT64_C(1) << HLL_Q; /* so the count is at most Q + 1 */
    return (unsigned)__builtin_ctzll(h) + 1;
}

static unsigned dense_get(const uint8_t *r, unsigned i)
{
    size_t bit = (size_t)i * HLL_BITS, b = bit / 8;
    unsigned fb = (unsigned)(bit & 7);
    unsigned v = r[b] >> fb;
    if (fb > 8 - HLL_BITS) {
        v |= (unsigned)r[b + 1] << (8 - fb);
    }
    return v & 63u;
}

static void dense_set(uint8_t *r, unsigned i, unsigned v)
{
    size_t bit = (size_t)i * HLL_BITS, b = bit / 8;
    unsigned fb = (unsigned)(bit & 7);
    r[b] = (uint8_t)((r[b] & ~(63u << fb)) | (v << fb));
    if (fb > 8 - HLL_BITS) {
        unsigned hi = 8 - fb;
        r[b + 1] = (uint8_t)((r[b + 1] & ~(63u >> hi)) | (v >> hi));
    }
}

/* Registers as one byte each. */
struct hll_regs {
    uint8_t r[HLL_REGISTERS];
};

/* 0 valid, 1 not an HLL (WRONGTYPE), 2 corrupt (INVALIDOBJ). */
static int hll_check_header(const uint8_t *p, size_t len)
{
    if (len < HLL_HDR || memcmp(p, "HYLL", 4) != 0 || p[4] > HLL_SPARSE) {
        return 1;
    }
    if (p[4] == HLL_DENSE && len != HLL_DENSE_LEN) {
        return 1;
    }
    return 0;
}

/* Decodes a sparse body into regs; 0 when the opcodes do not cover exactly every register. */
static int sparse_decode(const uint8_t *p, size_t len, struct hll_regs *regs)
{
    size_t idx = 0;
    for (size_t i = HLL_HDR; i < len;) {
        uint8_t op = p[i];
        size_t run;
        unsigned val = 0;
        if ((op & 0xc0) == 0x00) { /* ZERO: 00xxxxxx, run 1..64 */
            run = (size_t)(op & 0x3f) + 1;
            i++;
        } else if ((op & 0xc0) == 0x40) { /* XZERO: 01xxxxxx yyyyyyyy, run 1..16384 */
            if (i + 1 >= len) {
                return 0;
            }
            run = ((size_t)(op & 0x3f) << 8 | p[i + 1]) + 1;
            i += 2;
        } else { /* VAL: 1vvvvvxx, value 1..32, run 1..4 */
            val = ((op >> 2) & 0x1f) + 1u;
            run = (size_t)(op & 0x3) + 1;
            i++;
        }
        if (idx + run > HLL_REGISTERS) {
            return 0;
        }
        memset(regs->r + idx, (int)val, run);
        idx += run;
    }
    return idx == HLL_REGISTERS;
}

/* Reads the HLL value p into regs (NULL p: an empty HLL). Returns 0 on success, else replies
 * the error and returns 1. */
static int hll_load(const uint8_t *p, size_t len, struct hll_regs *regs, struct resp_writer *w)
{
    memset(regs, 0, sizeof(*regs));
    if (p == NULL) {
        return 0;
    }
    if (hll_check_header(p, len)) {
        store__r_err(w, ERR_NOT_HLL);
        return 1;
    }
    if (p[4] == HLL_DENSE) {
        for (unsigned i = 0; i < HLL_REGISTERS; i++) {
            regs->r[i] = (uint8_t)dense_get(p + HLL_HDR, i);
        }
        return 0;
    }
    if (!sparse_decode(p, len, regs)) {
        store__r_err(w, ERR_INVALID);
        return 1;
    }
    return 0;
}

static double hll_sigma(double x)
{
    if (x == 1.) {
        return INFINITY;
    }
    double z_prev, y = 1, z = x;
    do {
        x *= x;
        z_prev = z;
        z += x * y;
        y += y;
    } while (z_prev != z);
    return z;
}

static double hll_tau(double x)
{
    if (x == 0. || x == 1.) {
        return 0.;
    }
    double z_prev, y = 1.0, z = 1 - x;
    do {
        x = sqrt(x);
        z_prev = z;
        y *= 0.5;
        z -= pow(1 - x, 2) * y;
    } while (z_prev != z);
    return z / 3;
}

/* Ertl's estimator ("New cardinality estimation algorithms for HyperLogLog sketches", 2017). */
static uint64_t hll_count(const struct hll_regs *regs)
{
    double m = HLL_REGISTERS;
    unsigned histo[64] = {0};
    for (unsigned i = 0; i < HLL_REGISTERS; i++) {
        histo[regs->r[i] & 63]++;
    }
    double z = m * hll_tau((m - histo[HLL_Q + 1]) / m);
    for (int j = HLL_Q; j >= 1; j--) {
        z += histo[j];
        z *= 0.5;
    }
    z += m * hll_sigma(histo[0] / m);
    return (uint64_t)llroundl(0.721347520444481703680L * m * m / z);
}

#define HLL_SPARSE_BYTES_MAX 3000

/* Encodes regs sparse after the header into buf (room for HLL_SPARSE_BYTES_MAX); returns the
 * total length, or 0 when a register exceeds 32 or the form would be too long. */
static size_t sparse_encode(const struct hll_regs *regs, uint8_t *buf)
{
    size_t n = HLL_HDR;
    for (unsigned i = 0; i < HLL_REGISTERS;) {
        unsigned v = regs->r[i], run = 1;
        while (i + run < HLL_REGISTERS && regs->r[i + run] == v) {
            run++;
        }
        i += run;
        if (v > 32) {
            return 0;
        }
        while (run > 0) {
            if (n + 2 > HLL_SPARSE_BYTES_MAX) {
                return 0;
            }
            unsigned chunk;
            if (v == 0 && run > 64) {
                chunk = HY_MIN(run, HLL_REGISTERS);
                buf[n++] = (uint8_t)(0x40 | ((chunk - 1) >> 8));
                buf[n++] = (uint8_t)((chunk - 1) & 0xff);
            } else if (v == 0) {
                chunk = run;
                buf[n++] = (uint8_t)(chunk - 1);
            } else {
                chunk = HY_MIN(run, 4);
                buf[n++] = (uint8_t)(0x80 | ((v - 1) << 2) | (chunk - 1));
            }
            run -= chunk;
        }
    }
    return n;
}

/* Writes regs as an HLL into key argv[ki] (replacing old): dense when asked, else sparse when
 * it fits; with the cache given (card_valid 0: marked stale). Keeps an existing key's expiry. */
static void hll_store(struct store *s, const struct store_entry *e, struct store_obj *old,
                      uint32_t ki, const struct hll_regs *regs, uint64_t card, int card_valid,
                      int dense)
{
    uint8_t *buf = hy_xmalloc(HY_MAX(HLL_DENSE_LEN, HLL_SPARSE_BYTES_MAX));
    memset(buf, 0, HLL_DENSE_LEN);
    memcpy(buf, "HYLL", 4);
    for (int b = 0; b < 8; b++) {
        buf[8 + b] = (uint8_t)(card >> (8 * b));
    }
    if (!card_valid) {
        buf[15] |= 0x80;
    }
    size_t len = dense ? 0 : sparse_encode(regs, buf);
    if (len > 0) {
        buf[4] = HLL_SPARSE;
    } else {
        memset(buf + HLL_HDR, 0, HLL_DENSE_LEN - HLL_HDR);
        for (unsigned i = 0; i < HLL_REGISTERS; i++) {
            dense_set(buf + HLL_HDR, i, regs->r[i]);
        }
        len = HLL_DENSE_LEN;
    }
    int64_t at = old != NULL ? store__expire(old) : -1;
    store__string_put(s, e, old, ki, buf, len, at);
    hy_free(buf);
}

/* Whether the HLL value of o (NULL: none) is dense. */
static int hll_is_dense(const struct store_obj *o)
{
    if (o == NULL) {
        return 0;
    }
    const uint8_t *p;
    size_t len;
    store_obj_string(o, &p, &len);
    return len > 4 && p[4] == HLL_DENSE;
}

/* The string at argv[i] as an HLL: *o_out (NULL when absent) and its registers. Returns 0,
 * or 1 after an error reply. */
static int hll_arg(struct store *s, const struct store_entry *e, uint32_t i,
                   struct store_obj **o_out, struct hll_regs *regs, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STRING, s, e, i, w, &wrong);
    if (wrong) {
        return 1;
    }
    const uint8_t *p = NULL;
    size_t len = 0;
    if (o != NULL) {
        store_obj_string(o, &p, &len);
    }
    *o_out = o;
    return hll_load(p, len, regs, w);
}

void store__op_pfadd(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct hll_regs *regs = hy_xmalloc(sizeof(*regs));
    struct store_obj *o;
    if (hll_arg(s, e, 0, &o, regs, w) == 0) {
        int changed = o == NULL;
        for (uint32_t i = 1; i < e->argc; i++) {
            unsigned reg, v = hll_pattern(ARG(e, i), &reg);
            if (v > regs->r[reg]) {
                regs->r[reg] = (uint8_t)v;
                changed = 1;
            }
        }
        if (changed) {
            hll_store(s, e, o, 0, regs, 0, 0, hll_is_dense(o));
        }
        store__r_int(w, changed);
    }
    hy_free(regs);
}

/* PFCOUNT of one key answers its cached cardinality when fresh, else computes it and stores
 * it back into the value (the one change PFCOUNT makes); of several keys, the cardinality of
 * their union, changing nothing. */
void store__op_pfcount(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct hll_regs *acc = hy_xmalloc(sizeof(*acc)), *one = hy_xmalloc(sizeof(*one));
    memset(acc, 0, sizeof(*acc));
    struct store_obj *o = NULL;
    uint32_t i;
    for (i = 0; i < e->argc; i++) {
        if (hll_arg(s, e, i, &o, one, w) != 0) {
            break;
        }
        for (unsigned r = 0; r < HLL_REGISTERS; r++) {
            acc->r[r] = HY_MAX(acc->r[r], one->r[r]);
        }
    }
    if (i == e->argc) {
        const uint8_t *p = NULL;
        size_t len = 0;
        if (e->argc == 1 && o != NULL) {
            store_obj_string(o, &p, &len);
        }
        uint64_t card = 0;
        if (p != NULL && !(p[15] & 0x80)) {
            for (int b = 7; b >= 0; b--) {
                card = (card << 8) | p[8 + b];
            }
        } else {
            card = hll_count(acc);
            if (p != NULL) {
                hll_store(s, e, o, 0, acc, card, 1, hll_is_dense(o));
            }
        }
        store__r_int(w, (int64_t)card);
    }
    hy_free(one);
    hy_free(acc);
}

void store__op_pfmerge(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct hll_regs *acc = hy_xmalloc(sizeof(*acc)), *one = hy_xmalloc(sizeof(*one));
    memset(acc, 0, sizeof(*acc));
    struct store_obj *o;
    uint32_t i;
    int dense = 0; /* as Redis: the result is dense when any input was */
    for (i = 0; i < e->argc; i++) {
        if (hll_arg(s, e, i, &o, one, w) != 0) {
            break;
        }
        dense |= hll_is_dense(o);
        for (unsigned r = 0; r < HLL_REGISTERS; r++) {
            acc->r[r] = HY_MAX(acc->r[r], one->r[r]);
        }
    }
    if (i == e->argc) {
        o = store__lookup_write(s, ARG(e, 0), e->time_ms);
        hll_store(s, e, o, 0, acc, 0, 0, dense);
        if (w != NULL) {
            resp_write_ok(w);
        }
    }
    hy_free(one);
    hy_free(acc);
}
