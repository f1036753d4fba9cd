/*
 * cmd_hash.c - hash commands: the grid's named maps.
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

void cmd_hset(struct cmd_ctx *x)
{
    if (x->argc % 2 != 0) {
        node_reply_arity(&x->w, x->cmd->name);
        return;
    }
    node_propose_argv(x, STORE_OP_HSET, 0, 0, -1, x->argc - 1);
}

void cmd_hmset(struct cmd_ctx *x)
{
    if (x->argc % 2 != 0) {
        node_reply_arity(&x->w, x->cmd->name);
        return;
    }
    node_propose_argv(x, STORE_OP_HSET, STORE_F_REPLY_OK, 0, -1, x->argc - 1);
}

void cmd_hsetnx(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_HSETNX, 0, 0, -1, x->argc - 1);
}

void cmd_hdel(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_HDEL, 0, 0, -1, x->argc - 1);
}

void cmd_hincrby(struct cmd_ctx *x)
{
    int64_t by;
    if (!node_arg_i64(x, 3, &by)) {
        return;
    }
    x->argc = 3; /* key, field: the increment travels in the entry */
    node_propose_argv(x, STORE_OP_HINCRBY, 0, by, -1, x->argc - 1);
}

void cmd_hincrbyfloat(struct cmd_ctx *x)
{
    long double by;
    if (!hy_parse_double(x->argv[3].ptr, x->argv[3].len, 1, &by)) {
        resp_write_error(&x->w, "ERR value is not a valid float");
        return;
    }
    if (isinf(by)) {
        resp_write_error(&x->w, "ERR value is NaN or Infinity");
        return;
    }
    node_propose_argv(x, STORE_OP_HINCRBYFLOAT, 0, 0, -1, x->argc - 1);
}

/* Looks up argv[1] as a hash: 1 with *o (NULL when missing), or 0 after WRONGTYPE. */
static int hash_lookup(struct cmd_ctx *x, const struct store_obj **o)
{
    return node_lookup_typed(x, 1, STORE_HASH, o);
}

void cmd_hget(struct cmd_ctx *x)
{
    const struct store_obj *o;
    const uint8_t *v;
    size_t vlen;
    if (!hash_lookup(x, &o)) {
        return;
    }
    if (o != NULL && store_hash_get(o, x->argv[2].ptr, x->argv[2].len, &v, &vlen)) {
        resp_write_bulk(&x->w, v, vlen);
    } else {
        resp_write_null(&x->w);
    }
}

void cmd_hmget(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (!hash_lookup(x, &o)) {
        return;
    }
    resp_write_array(&x->w, x->argc - 2);
    for (size_t i = 2; i < x->argc; i++) {
        const uint8_t *v;
        size_t vlen;
        if (o != NULL && store_hash_get(o, x->argv[i].ptr, x->argv[i].len, &v, &vlen)) {
            resp_write_bulk(&x->w, v, vlen);
        } else {
            resp_write_null(&x->w);
        }
    }
}

void cmd_hexists(struct cmd_ctx *x)
{
    const struct store_obj *o;
    const uint8_t *v;
    size_t vlen;
    if (hash_lookup(x, &o)) {
        resp_write_int(&x->w,
                       o != NULL && store_hash_get(o, x->argv[2].ptr, x->argv[2].len, &v, &vlen));
    }
}

void cmd_hlen(struct cmd_ctx *x)
{
    const struct store_obj *o;
    if (hash_lookup(x, &o)) {
        resp_write_int(&x->w, o ? (int64_t)store_hash_len(o) : 0);
    }
}

void cmd_hstrlen(struct cmd_ctx *x)
{
    const struct store_obj *o;
    const uint8_t *v;
    size_t vlen = 0;
    if (!hash_lookup(x, &o)) {
        return;
    }
    if (o == NULL || !store_hash_get(o, x->argv[2].ptr, x->argv[2].len, &v, &vlen)) {
        vlen = 0;
    }
    resp_write_int(&x->w, (int64_t)vlen);
}

enum hash_part { HASH_FIELDS = 1, HASH_VALUES = 2, HASH_BOTH = 3 };

struct hash_walk {
    struct resp_writer *w;
    enum hash_part part;
};

static void write_field_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    struct hash_walk *hw = ctx;
    if (hw->part & HASH_FIELDS) {
        resp_write_bulk(hw->w, f, flen);
    }
    if (hw->part & HASH_VALUES) {
        resp_write_bulk(hw->w, v, vlen);
    }
}

static void hash_dump(struct cmd_ctx *x, enum hash_part part)
{
    const struct store_obj *o;
    if (!hash_lookup(x, &o)) {
        return;
    }
    size_t n = o ? store_hash_len(o) : 0;
    if (part == HASH_BOTH) {
        resp_write_map(&x->w, n);
    } else {
        resp_write_array(&x->w, n);
    }
    if (o != NULL) {
        struct hash_walk hw = {&x->w, part};
        store_hash_foreach(o, write_field_cb, &hw);
    }
}

void cmd_hgetall(struct cmd_ctx *x)
{
    hash_dump(x, HASH_BOTH);
}

void cmd_hkeys(struct cmd_ctx *x)
{
    hash_dump(x, HASH_FIELDS);
}

void cmd_hvals(struct cmd_ctx *x)
{
    hash_dump(x, HASH_VALUES);
}

/* ---- HRANDFIELD --------------------------------------------------------------------------------
 */

struct reservoir {
    struct hy_prng *prng;
    size_t want, seen;
    struct resp_arg *fields, *values; /* want slots each */
};

/* Reservoir sampling (Algorithm R): `want` distinct fields, each equally likely. */
static void reservoir_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    struct reservoir *r = ctx;
    size_t slot = r->seen < r->want ? r->seen : (size_t)hy_prng_below(r->prng, r->seen + 1);
    r->seen++;
    if (slot < r->want) {
        r->fields[slot] = (struct resp_arg){f, flen};
        r->values[slot] = (struct resp_arg){v, vlen};
    }
}

static void write_pair(struct cmd_ctx *x, int withvalues, const uint8_t *f, size_t flen,
                       const uint8_t *v, size_t vlen)
{
    if (withvalues && x->w.proto == 3) {
        resp_write_array(&x->w, 2); /* RESP3: one [field, value] array per pick */
    }
    resp_write_bulk(&x->w, f, flen);
    if (withvalues) {
        resp_write_bulk(&x->w, v, vlen);
    }
}

static void write_pick_count(struct cmd_ctx *x, size_t picks, int withvalues)
{
    resp_write_array(&x->w, withvalues && x->w.proto == 2 ? picks * 2 : picks);
}

static void hrandfield_count(struct cmd_ctx *x, const struct store_obj *o, int64_t count,
                             int withvalues)
{
    size_t len = o ? store_hash_len(o) : 0;
    if (count == 0 || len == 0) {
        resp_write_array(&x->w, 0);
        return;
    }
    if (count < 0) { /* repetition allowed: exactly -count picks */
        /* Each pick uniform over the fields: they are listed once and drawn by index (a
         * table's random bucket walk would favour fields in short chains). */
        size_t picks = (size_t)(-(count + 1)) + 1;
        struct reservoir all = {NULL, len, 0, hy_xmalloc(len * sizeof(struct resp_arg)),
                                hy_xmalloc(len * sizeof(struct resp_arg))};
        store_hash_foreach(o, reservoir_cb, &all); /* want == len: keeps every field in order */
        write_pick_count(x, picks, withvalues);
        for (size_t i = 0; i < picks; i++) {
            size_t k = (size_t)hy_prng_below(&x->node->prng, len);
            write_pair(x, withvalues, all.fields[k].ptr, all.fields[k].len, all.values[k].ptr,
                       all.values[k].len);
        }
        hy_free(all.fields);
        hy_free(all.values);
        return;
    }
    size_t want = (size_t)count < len ? (size_t)count : len;
    struct reservoir r = {&x->node->prng, want, 0, hy_xmalloc(want * sizeof(struct resp_arg)),
                          hy_xmalloc(want * sizeof(struct resp_arg))};
    store_hash_foreach(o, reservoir_cb, &r);
    write_pick_count(x, want, withvalues);
    for (size_t i = 0; i < want; i++) {
        write_pair(x, withvalues, r.fields[i].ptr, r.fields[i].len, r.values[i].ptr,
                   r.values[i].len);
    }
    hy_free(r.fields);
    hy_free(r.values);
}

void cmd_hrandfield(struct cmd_ctx *x)
{
    int64_t count;
    int withvalues;
    if (!node_rand_count(x, "WITHVALUES", &count, &withvalues)) {
        return;
    }
    const struct store_obj *o;
    if (!hash_lookup(x, &o)) {
        return;
    }
    if (x->argc >= 3) {
        hrandfield_count(x, o, count, withvalues);
        return;
    }
    if (o == NULL) {
        resp_write_null(&x->w);
        return;
    }
    const uint8_t *f, *v;
    size_t flen, vlen;
    store_hash_random(x->store, o, &f, &flen, &v, &vlen);
    resp_write_bulk(&x->w, f, flen);
}

/* ---- HSCAN --------------------------------------------------------------------------------- */

struct pair_list {
    struct resp_arg *items; /* field, value, field, value... */
    size_t count, cap;
    const struct scan_opts *opts;
};

static void collect_pair_cb(void *ctx, const uint8_t *f, size_t flen, const uint8_t *v, size_t vlen)
{
    struct pair_list *l = ctx;
    if (!node_scan_match(l->opts, f, flen)) {
        return;
    }
    if (l->count + 2 > l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->items = hy_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->count++] = (struct resp_arg){f, flen};
    l->items[l->count++] = (struct resp_arg){v, vlen};
}

void cmd_hscan(struct cmd_ctx *x)
{
    uint64_t cursor;
    struct scan_opts opts;
    const struct store_obj *o;
    if (!node_parse_cursor(x, 2, &cursor) || !node_parse_scan_opts(x, 3, 0, &opts) ||
        !hash_lookup(x, &o)) {
        return;
    }
    struct pair_list l = {.opts = &opts};
    if (o == NULL) {
        cursor = 0;
    } else {
        int rounds = 0;
        do {
            cursor = store_hash_scan(o, cursor, (size_t)HY_MIN(opts.count, 1 << 20),
                                     collect_pair_cb, &l);
        } while (cursor != 0 && l.count / 2 < (size_t)opts.count && ++rounds < 10);
    }
    resp_write_array(&x->w, 2);
    node_write_cursor(&x->w, cursor);
    resp_write_array(&x->w, l.count);
    for (size_t i = 0; i < l.count; i++) {
        resp_write_bulk(&x->w, l.items[i].ptr, l.items[i].len);
    }
    hy_free(l.items);
}
