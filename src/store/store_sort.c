/*
 * store_sort.c - SORT and SORT_RO: options, BY/GET pattern lookups, the sort itself, and the
 * STORE op of the log.
 *
 * SORT runs over the store it is given, so the same code answers SORT_RO on a replica and
 * SORT ... STORE at apply time (in log order, from the entry's own arguments, parsed again
 * with the same parser the handler used). BY and GET patterns look keys up in this store
 * only: on a node that hosts many partitions, a pattern's keys that live in another
 * partition read as missing (documented in docs/protocol.md). Ties between equal scores are
 * broken by the elements' bytes, as Redis does, so the order is the same on every replica.
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

#define ERR_SYNTAX "ERR syntax error"

int store_sort_parse(const struct store_arg *args, size_t n, int readonly,
                     struct store_sort_opts *o, const char **err_out)
{
    memset(o, 0, sizeof(*o));
    o->limit_count = -1;
    o->gets = hy_xmalloc((n + 1) * sizeof(*o->gets));
    for (size_t j = 0; j < n; j++) {
        const struct store_arg *a = &args[j];
        size_t left = n - j - 1;
        if (hy_eq_nocase(a->ptr, a->len, "ASC")) {
            o->desc = 0;
        } else if (hy_eq_nocase(a->ptr, a->len, "DESC")) {
            o->desc = 1;
        } else if (hy_eq_nocase(a->ptr, a->len, "ALPHA")) {
            o->alpha = 1;
        } else if (hy_eq_nocase(a->ptr, a->len, "LIMIT") && left >= 2) {
            if (!hy_parse_i64(args[j + 1].ptr, args[j + 1].len, &o->limit_start) ||
                !hy_parse_i64(args[j + 2].ptr, args[j + 2].len, &o->limit_count)) {
                *err_out = STORE_ERR_NOT_INT;
                goto fail;
            }
            j += 2;
        } else if (!readonly && hy_eq_nocase(a->ptr, a->len, "STORE") && left >= 1) {
            o->store = &args[++j];
        } else if (hy_eq_nocase(a->ptr, a->len, "BY") && left >= 1) {
            o->by = &args[++j];
            o->dontsort = memchr(o->by->ptr, '*', o->by->len) == NULL;
        } else if (hy_eq_nocase(a->ptr, a->len, "GET") && left >= 1) {
            o->gets[o->ngets++] = args[++j];
        } else {
            *err_out = ERR_SYNTAX;
            goto fail;
        }
    }
    return 1;
fail:
    store_sort_opts_free(o);
    return 0;
}

void store_sort_opts_free(struct store_sort_opts *o)
{
    hy_free(o->gets);
    o->gets = NULL;
}

/* How items compare (qsort has no context argument: each item points at it). */
struct sort_ctx {
    int alpha, by, desc;
};

/* One element to sort: its bytes (borrowed from the store) and what it sorts by. */
struct sort_item {
    const struct sort_ctx *ctx;
    const uint8_t *p;
    size_t len;
    double score;
    const uint8_t *cmp; /* ALPHA BY: the BY value, NULL when missing */
    size_t cmplen;
};

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, HY_MIN(alen, blen));
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/*
 * Redis's lookupKeyByPattern: "#" is the element itself; otherwise the first '*' is replaced
 * by the element and, after it, "->field" reads a hash field. A pattern without '*', a
 * missing key or one of the wrong type reads as missing (0).
 */
static int pattern_lookup(struct store *s, uint64_t now, const struct store_arg *pat,
                          const uint8_t *elem, size_t elen, const uint8_t **v_out, size_t *vlen_out)
{
    if (pat->len == 1 && pat->ptr[0] == '#') {
        *v_out = elem;
        *vlen_out = elen;
        return 1;
    }
    const uint8_t *star = memchr(pat->ptr, '*', pat->len);
    if (star == NULL) {
        return 0;
    }
    size_t prefix = (size_t)(star - pat->ptr), rest = pat->len - prefix - 1, field = 0;
    for (size_t i = 0; i + 2 < rest; i++) { /* "->" with at least one byte after it */
        if (star[1 + i] == '-' && star[2 + i] == '>') {
            field = rest - i - 2;
            break;
        }
    }
    size_t post = rest - (field > 0 ? field + 2 : 0);
    uint8_t *key = hy_xmalloc(prefix + elen + post + 1);
    memcpy(key, pat->ptr, prefix);
    memcpy(key + prefix, elem, elen);
    memcpy(key + prefix + elen, star + 1, post);
    const struct store_obj *o = store_find(s, key, prefix + elen + post, now);
    hy_free(key);
    if (o == NULL) {
        return 0;
    }
    if (field > 0) {
        return store_obj_type(o) == STORE_HASH &&
               store_hash_get(o, pat->ptr + pat->len - field, field, v_out, vlen_out);
    }
    if (store_obj_type(o) != STORE_STRING) {
        return 0;
    }
    store_obj_string(o, v_out, vlen_out);
    return 1;
}

struct collect {
    struct sort_item *items;
    size_t n;
};

static void collect_cb(void *ctx, const uint8_t *m, size_t mlen, const uint8_t *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    struct collect *c = ctx;
    c->items[c->n++] = (struct sort_item){.p = m, .len = mlen};
}

/* The elements of o in their native order (sets: the store's iteration order). */
static size_t load_items(const struct store_obj *o, struct sort_item **items_out)
{
    size_t n = store_obj_type(o) == STORE_LIST  ? store_list_len(o)
               : store_obj_type(o) == STORE_SET ? store_set_len(o)
                                                : store_zset_len(o);
    struct collect c = {hy_xmalloc((n + 1) * sizeof(*c.items)), 0};
    if (store_obj_type(o) == STORE_SET) {
        store_set_foreach(o, collect_cb, &c);
    }
    for (size_t i = 0; store_obj_type(o) != STORE_SET && i < n; i++) {
        struct sort_item *it = &c.items[c.n++];
        memset(it, 0, sizeof(*it));
        if (store_obj_type(o) == STORE_LIST) {
            store_list_at(o, i, &it->p, &it->len);
        } else {
            double score;
            store_zset_at(o, i, &score, &it->p, &it->len);
        }
    }
    HY_ASSERT(c.n == n);
    *items_out = c.items;
    return n;
}

/* Redis parses BY values (or elements) with strtod: an empty string is 0. */
static int sort_score(const uint8_t *p, size_t len, double *out)
{
    long double v;
    if (len == 0) {
        *out = 0;
        return 1;
    }
    if (!hy_parse_double(p, len, 1, &v)) {
        return 0;
    }
    *out = (double)v;
    return 1;
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct sort_item *a = pa, *b = pb;
    const struct sort_ctx *ctx = a->ctx;
    int c;
    if (!ctx->alpha) {
        c = a->score > b->score   ? 1
            : a->score < b->score ? -1
                                  : bytes_cmp(a->p, a->len, b->p, b->len);
    } else if (ctx->by) {
        c = a->cmp == NULL || b->cmp == NULL ? (a->cmp != NULL) - (b->cmp != NULL)
                                             : bytes_cmp(a->cmp, a->cmplen, b->cmp, b->cmplen);
    } else {
        c = bytes_cmp(a->p, a->len, b->p, b->len);
    }
    return ctx->desc ? -c : c;
}

/* Fills each item's sort key; 0 when a score does not parse. */
static int prepare_keys(struct store *s, uint64_t now, const struct store_sort_opts *o,
                        struct sort_item *items, size_t n)
{
    int ok = 1;
    for (size_t j = 0; j < n; j++) {
        const uint8_t *v = items[j].p;
        size_t vlen = items[j].len;
        if (o->by != NULL && !pattern_lookup(s, now, o->by, items[j].p, items[j].len, &v, &vlen)) {
            continue;
        }
        if (o->alpha) {
            if (o->by != NULL) {
                items[j].cmp = v;
                items[j].cmplen = vlen;
            }
        } else if (!sort_score(v, vlen, &items[j].score)) {
            ok = 0;
        }
    }
    return ok;
}

static void result_add(struct store_sort_result *r, const uint8_t *p, size_t len, int present)
{
    r->off[r->n] = r->data.len;
    r->len[r->n] = present ? len : SIZE_MAX;
    r->n++;
    if (present && len > 0) {
        hy_buf_append(&r->data, p, len);
    }
}

/* Applies LIMIT and GET to the sorted items, copying what they give into r. */
static void emit(struct store *s, uint64_t now, const struct store_sort_opts *o,
                 const struct sort_item *items, size_t n, struct store_sort_result *r)
{
    int64_t len = (int64_t)n;
    int64_t start = o->limit_start < 0 ? 0 : o->limit_start, end = -1;
    if (start < len) { /* counts beyond the length are clamped before adding: no overflow */
        end = o->limit_count < 0 || o->limit_count > len ? len - 1 : start + o->limit_count - 1;
        end = HY_MIN(end, len - 1);
    }
    size_t count = end >= start ? (size_t)(end - start + 1) : 0;
    size_t per = o->ngets > 0 ? o->ngets : 1;
    r->off = hy_xmalloc((count * per + 1) * sizeof(*r->off));
    r->len = hy_xmalloc((count * per + 1) * sizeof(*r->len));
    for (size_t j = 0; j < count; j++) {
        const struct sort_item *it = &items[(size_t)start + j];
        if (o->ngets == 0) {
            result_add(r, it->p, it->len, 1);
        }
        for (size_t g = 0; g < o->ngets; g++) {
            const uint8_t *v = NULL;
            size_t vlen = 0;
            int found = pattern_lookup(s, now, &o->gets[g], it->p, it->len, &v, &vlen);
            result_add(r, v, vlen, found);
        }
    }
}

int store_sort_run(struct store *s, uint64_t now, const uint8_t *key, size_t klen,
                   const struct store_sort_opts *o, struct store_sort_result *r,
                   const char **err_out)
{
    memset(r, 0, sizeof(*r));
    hy_buf_init(&r->data);
    const struct store_obj *src = store_find(s, key, klen, now);
    if (src != NULL && store_obj_type(src) != STORE_LIST && store_obj_type(src) != STORE_SET &&
        store_obj_type(src) != STORE_ZSET) {
        *err_out = STORE_ERR_WRONGTYPE;
        return 0;
    }
    struct sort_item *items = NULL;
    size_t n = src == NULL ? 0 : load_items(src, &items);
    int dontsort = o->dontsort, alpha = o->alpha;
    if (dontsort && src != NULL && store_obj_type(src) == STORE_SET && o->store != NULL) {
        dontsort = 0; /* a stored set's order must not depend on the replica: sort it */
        alpha = 1;
    }
    if (dontsort && o->desc && src != NULL && store_obj_type(src) != STORE_SET) {
        for (size_t i = 0; i < n / 2; i++) { /* lists and sorted sets: native order, reversed */
            struct sort_item t = items[i];
            items[i] = items[n - 1 - i];
            items[n - 1 - i] = t;
        }
    }
    if (!dontsort) {
        struct store_sort_opts eff = *o;
        eff.alpha = alpha;
        eff.by = dontsort != o->dontsort ? NULL : o->by;
        if (!prepare_keys(s, now, &eff, items, n)) {
            hy_free(items);
            *err_out = "ERR One or more scores can't be converted into double";
            return 0;
        }
        struct sort_ctx ctx = {alpha, eff.by != NULL, o->desc};
        for (size_t i = 0; i < n; i++) {
            items[i].ctx = &ctx;
        }
        if (n > 1) {
            qsort(items, n, sizeof(*items), item_cmp);
        }
    }
    emit(s, now, o, items, n, r);
    hy_free(items);
    return 1;
}

void store_sort_result_free(struct store_sort_result *r)
{
    hy_buf_free(&r->data);
    hy_free(r->off);
    hy_free(r->len);
    memset(r, 0, sizeof(*r));
}

/* The bytes of result i (its buffer is NULL while every result is empty or nil). */
static const uint8_t *result_at(const struct store_sort_result *r, size_t i)
{
    return r->data.data == NULL ? (const uint8_t *)"" : r->data.data + r->off[i];
}

/* Replaces whatever key holds by a list of r's elements (nil as empty), or deletes it when r
 * is empty. r owns its bytes, so key may be the very key that was sorted. */
static void list_replace(struct store *s, const struct store_entry *e, const uint8_t *key,
                         size_t klen, const struct store_sort_result *r)
{
    struct store_obj *old = store__lookup_write(s, key, klen, e->time_ms);
    if (old != NULL) {
        store__delete(s, old);
    }
    if (r->n == 0) {
        return;
    }
    struct lobj *l = store__lobj_new();
    for (size_t i = 0; i < r->n; i++) {
        size_t len = r->len[i] == SIZE_MAX ? 0 : r->len[i];
        store__lobj_insert(l, i, store__lelem_new(result_at(r, i), len), &s->cfg.encoding);
    }
    struct store_obj *o = store__entry_new(STORE_LIST, -1, key, klen, 0);
    store__set_vobj(o, l);
    o->lru = store__lru_of(e);
    store__link(s, o);
}

/* SORT as an entry: [key, options...]; with STORE the result becomes a list at the
 * destination (nil elements stored as empty strings, no result deletes it) and the reply is
 * its length; without, the reply is the result itself. */
void store__op_sort(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_sort_opts o;
    const char *err = NULL;
    if (!store_sort_parse(e->argv + 1, e->argc - 1, 0, &o, &err)) {
        store__r_err(w, err);
        return;
    }
    struct store_sort_result r;
    if (!store_sort_run(s, e->time_ms, e->argv[0].ptr, e->argv[0].len, &o, &r, &err)) {
        store__r_err(w, err);
        store_sort_opts_free(&o);
        store_sort_result_free(&r);
        return;
    }
    if (o.store == NULL) {
        store_sort_reply(&r, w);
    } else {
        list_replace(s, e, o.store->ptr, o.store->len, &r);
        store__r_int(w, (int64_t)r.n);
    }
    store_sort_opts_free(&o);
    store_sort_result_free(&r);
}

void store_sort_reply(const struct store_sort_result *r, struct resp_writer *w)
{
    if (w == NULL) {
        return;
    }
    resp_write_array(w, r->n);
    for (size_t i = 0; i < r->n; i++) {
        if (r->len[i] == SIZE_MAX) {
            resp_write_null(w);
        } else {
            resp_write_bulk(w, result_at(r, i), r->len[i]);
        }
    }
}
