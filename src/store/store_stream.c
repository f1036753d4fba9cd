/*
 * store_stream.c - stream values (Redis 7.0's streams) and their ops of the log.
 *
 * A stream is an array of entries sorted by ID (ms, seq), each ONE allocation holding its ID,
 * its field-value pairs (varint length + bytes, alternating) and the number of the "node" it
 * was appended to. Appends go at the end (amortized O(1)); XRANGE is a binary search then a
 * walk; XDEL and trimming move the pointers after the hole (memmove of 8 bytes per entry).
 *
 * Nodes emulate Redis's listpack nodes for approximate trimming (MAXLEN ~, MINID ~, LIMIT):
 * Redis removes only whole nodes of at most stream-node-max-entries appended entries. An entry
 * records the node it was appended to; a new node starts when the tail node has taken that
 * many (the leader's setting, carried in the entry's incr: apply never reads node settings) or
 * has no live entry left. So every replica trims the same entries, as Redis would.
 *
 * Consumer groups hold their last delivered ID, their entries-read counter, their pending
 * entries list (PEL: an array sorted by ID of {id, owner, delivery time, delivery count}) and
 * their consumers (sorted by name, each with its pending count and seen time). Times are the
 * entries' time_ms: the leader's clock carried in the log, so idle times agree everywhere.
 *
 * Every allocation a stream holds goes through acc_* so that x->bytes is their usable sizes'
 * sum (store_used_bytes); store__xobj_check recomputes it.
 *
 * Invariants: entries strictly increase by ID and are <= last_id; a group's PEL strictly
 * increases by ID; each nack's owner is a consumer of its group and a consumer's pending count
 * is the number of nacks it owns; groups and consumers are sorted by name, each name once.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

#define ERR_BAD_ID "ERR Invalid stream ID specified as stream command argument"
#define ERR_SYNTAX "ERR syntax error"
#define ERR_SMALL_ID \
    "ERR The ID specified in XADD is equal or smaller than the target stream top item"
#define ERR_ZERO_ID   "ERR The ID specified in XADD must be greater than 0-0"
#define ERR_EXHAUSTED "ERR The stream has exhausted the last possible ID, unable to add more items"
#define ERR_NEED_KEY                                                                     \
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may " \
    "want to use the MKSTREAM option to create an empty stream automatically."

#define ARG(e, i) (e)->argv[(i)].ptr, (e)->argv[(i)].len

typedef struct store_stream_id sid_t;

struct xentry {
    sid_t id;
    uint64_t node;
    uint32_t pairs;
    uint32_t len;
    uint8_t data[];
};

/* A group's or a consumer's name: their first member, searched by one binary search. */
struct xnamed {
    uint8_t *name;
    size_t nlen;
};

struct xcons {
    struct xnamed nm;
    uint64_t seen_ms;
    size_t pending;
};

struct xnack {
    sid_t id;
    struct xcons *owner;
    uint64_t time_ms;
    uint64_t count;
};

struct xgroup {
    struct xnamed nm;
    sid_t last;
    int64_t entries_read; /* -1: unknown */
    struct xnack *pel;
    size_t npel, pel_cap;
    struct xcons **cons;
    size_t ncons;
};

struct xobj {
    struct xentry **v;
    size_t count, cap;
    sid_t last, max_deleted;
    uint64_t entries_added;
    uint64_t tail_node, tail_fill;
    struct xgroup **groups;
    size_t ngroups;
    size_t bytes; /* usable sizes of everything above but the struct */
};

/* ---- accounting allocation ---------------------------------------------------------------- */

static size_t usable(const void *p)
{
    return p == NULL ? 0 : hy_alloc_size(p);
}

static void *acc_malloc(struct xobj *x, size_t n)
{
    void *p = hy_xmalloc(n);
    x->bytes += usable(p);
    return p;
}

static void *acc_realloc(struct xobj *x, void *p, size_t n)
{
    x->bytes -= usable(p);
    p = hy_xrealloc(p, n);
    x->bytes += usable(p);
    return p;
}

static void acc_free(struct xobj *x, void *p)
{
    x->bytes -= usable(p);
    hy_free(p);
}

static uint8_t *acc_dup(struct xobj *x, const uint8_t *p, size_t len)
{
    uint8_t *d = acc_malloc(x, HY_MAX(len, 1));
    if (len > 0) {
        memcpy(d, p, len);
    }
    return d;
}

/* ---- IDs ---------------------------------------------------------------------------------- */

static int id_cmp(sid_t a, sid_t b)
{
    if (a.ms != b.ms) {
        return a.ms < b.ms ? -1 : 1;
    }
    return (a.seq > b.seq) - (a.seq < b.seq);
}

static int id_is_zero(sid_t a)
{
    return a.ms == 0 && a.seq == 0;
}

static int id_incr(sid_t *a)
{
    if (a->seq == UINT64_MAX) {
        if (a->ms == UINT64_MAX) {
            return 0;
        }
        a->ms++;
        a->seq = 0;
    } else {
        a->seq++;
    }
    return 1;
}

static int id_decr(sid_t *a)
{
    if (a->seq == 0) {
        if (a->ms == 0) {
            return 0;
        }
        a->ms--;
        a->seq = UINT64_MAX;
    } else {
        a->seq--;
    }
    return 1;
}

static int parse_u64(const uint8_t *p, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

int store_stream_id_parse(const uint8_t *p, size_t len, uint64_t missing_seq, int strict,
                          struct store_stream_id *out, int *seq_given_out)
{
    if (seq_given_out != NULL) {
        *seq_given_out = 1;
    }
    if (!strict && len == 1 && (p[0] == '-' || p[0] == '+')) {
        *out = p[0] == '-' ? (sid_t){0, 0} : (sid_t){UINT64_MAX, UINT64_MAX};
        return 1;
    }
    const uint8_t *dash = len > 0 ? memchr(p, '-', len) : NULL;
    if (dash == NULL) {
        out->seq = missing_seq;
        return parse_u64(p, len, &out->ms);
    }
    size_t mlen = (size_t)(dash - p);
    if (!parse_u64(p, mlen, &out->ms)) {
        return 0;
    }
    if (seq_given_out != NULL && len - mlen - 1 == 1 && dash[1] == '*') {
        *seq_given_out = 0;
        out->seq = 0;
        return 1;
    }
    return parse_u64(dash + 1, len - mlen - 1, &out->seq);
}

int store_stream_interval_parse(const uint8_t *p, size_t len, int end, struct store_stream_id *out)
{
    if (len > 1 && p[0] == '(') {
        if (!store_stream_id_parse(p + 1, len - 1, end ? UINT64_MAX : 0, 1, out, NULL)) {
            return 0;
        }
        return end ? (id_decr(out) ? 1 : -1) : (id_incr(out) ? 1 : -1);
    }
    return store_stream_id_parse(p, len, end ? UINT64_MAX : 0, 0, out, NULL);
}

static void r_id(struct resp_writer *w, sid_t id)
{
    if (w != NULL) {
        char buf[48];
        int n = snprintf(buf, sizeof(buf), "%llu-%llu", (unsigned long long)id.ms,
                         (unsigned long long)id.seq);
        resp_write_bulk(w, buf, (size_t)n);
    }
}

static void r_array(struct resp_writer *w, size_t n)
{
    if (w != NULL) {
        resp_write_array(w, n);
    }
}

static void r_ok(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_ok(w);
    }
}

static void r_null_array(struct resp_writer *w)
{
    if (w != NULL) {
        resp_write_null_array(w);
    }
}

/* ---- the object ----------------------------------------------------------------------------- */

struct xobj *store__xobj_new(void)
{
    return hy_xcalloc(1, sizeof(struct xobj));
}

static void group_free(struct xobj *x, struct xgroup *g)
{
    for (size_t i = 0; i < g->ncons; i++) {
        acc_free(x, g->cons[i]->nm.name);
        acc_free(x, g->cons[i]);
    }
    acc_free(x, g->cons);
    acc_free(x, g->pel);
    acc_free(x, g->nm.name);
    acc_free(x, g);
}

void store__xobj_free(struct xobj *x)
{
    if (x == NULL) {
        return;
    }
    for (size_t i = 0; i < x->count; i++) {
        hy_free(x->v[i]);
    }
    hy_free(x->v);
    for (size_t i = 0; i < x->ngroups; i++) {
        group_free(x, x->groups[i]);
    }
    hy_free(x->groups);
    hy_free(x);
}

size_t store__xobj_bytes(const struct xobj *x)
{
    return hy_alloc_size(x) + x->bytes;
}

struct xobj *store__xobj(const struct store_obj *e)
{
    HY_ASSERT(se_type(e) == STORE_STREAM);
    return store__vobj(e);
}

/* The first index whose entry is >= id. */
static size_t lower_bound(const struct xobj *x, sid_t id)
{
    size_t lo = 0, hi = x->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(x->v[mid]->id, id) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static long find_entry(const struct xobj *x, sid_t id)
{
    size_t at = lower_bound(x, id);
    return at < x->count && id_cmp(x->v[at]->id, id) == 0 ? (long)at : -1;
}

/* Appends an entry (its id above every other) from pairs of args. */
static void append_entry(struct xobj *x, sid_t id, uint64_t node, const struct store_arg *args,
                         size_t nargs)
{
    size_t len = 0;
    for (size_t i = 0; i < nargs; i++) {
        len += varint_len(args[i].len) + args[i].len;
    }
    HY_ASSERT(len <= UINT32_MAX);
    struct xentry *en = acc_malloc(x, sizeof(*en) + len);
    en->id = id;
    en->node = node;
    en->pairs = (uint32_t)(nargs / 2);
    en->len = (uint32_t)len;
    size_t off = 0;
    for (size_t i = 0; i < nargs; i++) {
        off += varint_put(en->data + off, args[i].len);
        if (args[i].len > 0) {
            memcpy(en->data + off, args[i].ptr, args[i].len);
        }
        off += args[i].len;
    }
    if (x->count == x->cap) {
        x->cap = HY_MAX(x->cap * 2, 4);
        x->v = acc_realloc(x, x->v, x->cap * sizeof(*x->v));
    }
    x->v[x->count++] = en;
}

/* Removes entries [at, at + n). */
static void remove_entries(struct xobj *x, size_t at, size_t n)
{
    for (size_t i = at; i < at + n; i++) {
        acc_free(x, x->v[i]);
    }
    memmove(x->v + at, x->v + at + n, (x->count - at - n) * sizeof(*x->v));
    x->count -= n;
    if (x->count == 0) {
        acc_free(x, x->v);
        x->v = NULL;
        x->cap = 0;
    } else if (x->cap > 16 && x->count * 4 < x->cap) {
        x->cap /= 2;
        x->v = acc_realloc(x, x->v, x->cap * sizeof(*x->v));
    }
}

static void r_entry(struct resp_writer *w, const struct xentry *en)
{
    if (w == NULL) {
        return;
    }
    resp_write_array(w, 2);
    r_id(w, en->id);
    resp_write_array(w, (size_t)en->pairs * 2);
    struct rd r = {en->data, en->len, 0, 0};
    for (uint32_t i = 0; i < en->pairs * 2; i++) {
        size_t n;
        const uint8_t *p = rd_bytes(&r, &n);
        resp_write_bulk(w, p, n);
    }
}

/* ---- groups and consumers ------------------------------------------------------------------ */

static int name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = HY_MIN(alen, blen);
    int c = n > 0 ? memcmp(a, b, n) : 0;
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* Index of the name (n, len) among count sorted names (at(ctx, i) gives the i-th), or where
 * it would go (*found_out 0). */
static size_t name_pos(const void *ctx, size_t count,
                       const struct xnamed *(*at)(const void *ctx, size_t i), const uint8_t *n,
                       size_t len, int *found_out)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct xnamed *e = at(ctx, mid);
        int c = name_cmp(e->name, e->nlen, n, len);
        if (c == 0) {
            *found_out = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found_out = 0;
    return lo;
}

static const struct xnamed *group_name_at(const void *ctx, size_t i)
{
    return &((const struct xobj *)ctx)->groups[i]->nm;
}

static const struct xnamed *cons_name_at(const void *ctx, size_t i)
{
    return &((const struct xgroup *)ctx)->cons[i]->nm;
}

static size_t group_pos(const struct xobj *x, const uint8_t *n, size_t len, int *found_out)
{
    return name_pos(x, x->ngroups, group_name_at, n, len, found_out);
}

static struct xgroup *group_find(const struct xobj *x, const uint8_t *n, size_t len)
{
    int found;
    size_t at = group_pos(x, n, len, &found);
    return found ? x->groups[at] : NULL;
}

static struct xgroup *group_add(struct xobj *x, const uint8_t *n, size_t len, sid_t last,
                                int64_t entries_read)
{
    int found;
    size_t at = group_pos(x, n, len, &found);
    HY_ASSERT(!found);
    struct xgroup *g = acc_malloc(x, sizeof(*g));
    memset(g, 0, sizeof(*g));
    g->nm.name = acc_dup(x, n, len);
    g->nm.nlen = len;
    g->last = last;
    g->entries_read = entries_read;
    x->groups = acc_realloc(x, x->groups, (x->ngroups + 1) * sizeof(*x->groups));
    memmove(x->groups + at + 1, x->groups + at, (x->ngroups - at) * sizeof(*x->groups));
    x->groups[at] = g;
    x->ngroups++;
    return g;
}

static size_t cons_pos(const struct xgroup *g, const uint8_t *n, size_t len, int *found_out)
{
    return name_pos(g, g->ncons, cons_name_at, n, len, found_out);
}

static struct xcons *cons_find(const struct xgroup *g, const uint8_t *n, size_t len)
{
    int found;
    size_t at = cons_pos(g, n, len, &found);
    return found ? g->cons[at] : NULL;
}

/* A stream event (class t) on the key k, as Redis 7.0 notifies it. */
static void xev(struct store *s, const struct store_arg *k, const char *ev)
{
    store__notify(s, STORE_NOTIFY_STREAM, ev, k->ptr, k->len);
}

/* The consumer named (n, len), created when absent (*created_out 1). */
static struct xcons *cons_get(struct xobj *x, struct xgroup *g, const uint8_t *n, size_t len,
                              uint64_t now, int *created_out)
{
    int found;
    size_t at = cons_pos(g, n, len, &found);
    if (created_out != NULL) {
        *created_out = !found;
    }
    if (found) {
        return g->cons[at];
    }
    struct xcons *c = acc_malloc(x, sizeof(*c));
    c->nm.name = acc_dup(x, n, len);
    c->nm.nlen = len;
    c->seen_ms = now;
    c->pending = 0;
    g->cons = acc_realloc(x, g->cons, (g->ncons + 1) * sizeof(*g->cons));
    memmove(g->cons + at + 1, g->cons + at, (g->ncons - at) * sizeof(*g->cons));
    g->cons[at] = c;
    g->ncons++;
    return c;
}

static size_t pel_lower(const struct xgroup *g, sid_t id)
{
    size_t lo = 0, hi = g->npel;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(g->pel[mid].id, id) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct xnack *pel_find(const struct xgroup *g, sid_t id)
{
    size_t at = pel_lower(g, id);
    return at < g->npel && id_cmp(g->pel[at].id, id) == 0 ? &g->pel[at] : NULL;
}

static struct xnack *pel_insert(struct xobj *x, struct xgroup *g, sid_t id)
{
    size_t at = pel_lower(g, id);
    HY_ASSERT(at == g->npel || id_cmp(g->pel[at].id, id) != 0);
    if (g->npel == g->pel_cap) {
        g->pel_cap = HY_MAX(g->pel_cap * 2, 4);
        g->pel = acc_realloc(x, g->pel, g->pel_cap * sizeof(*g->pel));
    }
    memmove(g->pel + at + 1, g->pel + at, (g->npel - at) * sizeof(*g->pel));
    g->npel++;
    g->pel[at] = (struct xnack){id, NULL, 0, 0};
    return &g->pel[at];
}

static void pel_remove(struct xobj *x, struct xgroup *g, struct xnack *k)
{
    size_t at = (size_t)(k - g->pel);
    HY_ASSERT(at < g->npel);
    if (k->owner != NULL) {
        k->owner->pending--;
    }
    memmove(g->pel + at, g->pel + at + 1, (g->npel - at - 1) * sizeof(*g->pel));
    g->npel--;
    if (g->npel == 0) {
        acc_free(x, g->pel);
        g->pel = NULL;
        g->pel_cap = 0;
    }
}

static void nack_own(struct xnack *k, struct xcons *c)
{
    if (k->owner != NULL) {
        k->owner->pending--;
    }
    k->owner = c;
    c->pending++;
}

void store__xobj_check(const struct xobj *x)
{
    size_t bytes = usable(x->v);
    HY_ASSERT(x->count <= x->cap);
    for (size_t i = 0; i < x->count; i++) {
        bytes += usable(x->v[i]);
        HY_ASSERT(i == 0 || id_cmp(x->v[i - 1]->id, x->v[i]->id) < 0);
        HY_ASSERT(id_cmp(x->v[i]->id, x->last) <= 0);
    }
    bytes += usable(x->groups);
    for (size_t i = 0; i < x->ngroups; i++) {
        const struct xgroup *g = x->groups[i];
        HY_ASSERT(i == 0 || name_cmp(x->groups[i - 1]->nm.name, x->groups[i - 1]->nm.nlen,
                                     g->nm.name, g->nm.nlen) < 0);
        bytes += usable(g) + usable(g->nm.name) + usable(g->pel) + usable(g->cons);
        for (size_t j = 0; j < g->ncons; j++) {
            const struct xcons *c = g->cons[j];
            bytes += usable(c) + usable(c->nm.name);
            size_t owned = 0;
            for (size_t k = 0; k < g->npel; k++) {
                owned += g->pel[k].owner == c;
            }
            HY_ASSERT(owned == c->pending);
            HY_ASSERT(j == 0 || name_cmp(g->cons[j - 1]->nm.name, g->cons[j - 1]->nm.nlen,
                                         c->nm.name, c->nm.nlen) < 0);
        }
        for (size_t k = 0; k < g->npel; k++) {
            HY_ASSERT(g->pel[k].owner != NULL);
            HY_ASSERT(k == 0 || id_cmp(g->pel[k - 1].id, g->pel[k].id) < 0);
        }
    }
    HY_ASSERT(bytes == x->bytes);
}

/* ---- reads (store.h) ---------------------------------------------------------------------- */

size_t store_stream_len(const struct store_obj *o)
{
    return store__xobj(o)->count;
}

struct store_stream_id store_stream_last_id(const struct store_obj *o)
{
    return store__xobj(o)->last;
}

int store_stream_has_after(const struct store_obj *o, struct store_stream_id id)
{
    const struct xobj *x = store__xobj(o);
    return x->count > 0 && id_cmp(x->v[x->count - 1]->id, id) > 0;
}

int store_stream_group_last(const struct store_obj *o, const uint8_t *g, size_t glen,
                            struct store_stream_id *out)
{
    const struct xgroup *gr = group_find(store__xobj(o), g, glen);
    if (gr != NULL) {
        *out = gr->last;
    }
    return gr != NULL;
}

/* The span [*lo, *hi) of entries within [start, end]. */
static void span(const struct xobj *x, sid_t start, sid_t end, size_t *lo, size_t *hi)
{
    *lo = lower_bound(x, start);
    *hi = *lo;
    if (id_cmp(start, end) > 0) {
        return;
    }
    *hi = end.ms == UINT64_MAX && end.seq == UINT64_MAX ? x->count : lower_bound(x, end);
    if (*hi < x->count && id_cmp(x->v[*hi]->id, end) == 0) {
        (*hi)++;
    }
}

void store_stream_range(const struct store_obj *o, struct store_stream_id start,
                        struct store_stream_id end, uint64_t count, int rev, struct resp_writer *w)
{
    const struct xobj *x = store__xobj(o);
    size_t lo, hi;
    span(x, start, end, &lo, &hi);
    size_t n = (size_t)HY_MIN((uint64_t)(hi - lo), count);
    r_array(w, n);
    for (size_t i = 0; i < n; i++) {
        r_entry(w, x->v[rev ? hi - 1 - i : lo + i]);
    }
}

/* ---- XADD and trimming -------------------------------------------------------------------- */

struct trim_args {
    int strategy; /* 0 none, 1 MAXLEN, 2 MINID */
    int approx;
    int64_t maxlen;
    sid_t minid;
    int64_t limit; /* 0: none */
    int nomkstream;
    int id_given, seq_given;
    sid_t id;
};

static int parse_ll(const struct store_arg *a, int64_t *out)
{
    return hy_parse_i64(a->ptr, a->len, out);
}

static int is_word(const struct store_arg *a, const char *lit)
{
    return hy_eq_nocase(a->ptr, a->len, lit);
}

/* XADD's and XTRIM's options from argv[first..]; node_max is stream-node-max-entries. Returns
 * the index of XADD's ID (XTRIM: argc), or 0 after replying an error. */
static size_t trim_parse(const struct store_entry *e, size_t first, int xadd, int64_t node_max,
                         struct trim_args *t, struct resp_writer *w)
{
    memset(t, 0, sizeof(*t));
    int limit_given = 0;
    size_t i = first;
    for (; i < e->argc; i++) {
        size_t more = e->argc - 1 - i;
        const struct store_arg *a = &e->argv[i];
        if (xadd && a->len == 1 && a->ptr[0] == '*') {
            break;
        } else if ((is_word(a, "MAXLEN") || is_word(a, "MINID")) && more > 0) {
            int maxlen = is_word(a, "MAXLEN");
            if (t->strategy != 0) {
                store__r_err(w, "ERR syntax error, MAXLEN and MINID options at the same time are "
                                "not compatible");
                return 0;
            }
            t->approx = 0;
            const struct store_arg *nx = &e->argv[i + 1];
            if (more >= 2 && nx->len == 1 && (nx->ptr[0] == '~' || nx->ptr[0] == '=')) {
                t->approx = nx->ptr[0] == '~';
                i++;
            }
            if (maxlen) {
                if (!parse_ll(&e->argv[i + 1], &t->maxlen)) {
                    store__r_err(w, STORE_ERR_NOT_INT);
                    return 0;
                }
                if (t->maxlen < 0) {
                    store__r_err(w, "ERR The MAXLEN argument must be >= 0.");
                    return 0;
                }
            } else if (!store_stream_id_parse(ARG(e, i + 1), 0, 0, &t->minid, NULL)) {
                store__r_err(w, ERR_BAD_ID);
                return 0;
            }
            i++;
            t->strategy = maxlen ? 1 : 2;
        } else if (is_word(a, "LIMIT") && more > 0) {
            if (!parse_ll(&e->argv[i + 1], &t->limit)) {
                store__r_err(w, STORE_ERR_NOT_INT);
                return 0;
            }
            if (t->limit < 0) {
                store__r_err(w, "ERR The LIMIT argument must be >= 0.");
                return 0;
            }
            limit_given = 1;
            i++;
        } else if (xadd && is_word(a, "NOMKSTREAM")) {
            t->nomkstream = 1;
        } else if (xadd) {
            if (!store_stream_id_parse(a->ptr, a->len, 0, 1, &t->id, &t->seq_given)) {
                store__r_err(w, ERR_BAD_ID);
                return 0;
            }
            t->id_given = 1;
            break;
        } else {
            store__r_err(w, ERR_SYNTAX);
            return 0;
        }
    }
    if (t->limit != 0 && t->strategy == 0) {
        store__r_err(w, "ERR syntax error, LIMIT cannot be used without specifying a trimming "
                        "strategy");
        return 0;
    }
    if (!xadd && t->strategy == 0) {
        store__r_err(w, "ERR syntax error, XTRIM must be called with a trimming strategy");
        return 0;
    }
    if (limit_given && !t->approx) {
        store__r_err(w, "ERR syntax error, LIMIT cannot be used without the special ~ option");
        return 0;
    }
    if (!limit_given && t->approx) {
        t->limit = 100 * node_max;
        if (t->limit <= 0 || t->limit > 10000) {
            t->limit = 10000;
        }
    } else if (!t->approx) {
        t->limit = 0;
    }
    return i;
}

/* Live entries at the head belonging to the head entry's node. */
static size_t head_node_len(const struct xobj *x)
{
    size_t n = 0;
    while (n < x->count && x->v[n]->node == x->v[0]->node) {
        n++;
    }
    return n;
}

/* Trims as XTRIM/XADD do; returns the entries removed. */
static int64_t trim(struct xobj *x, const struct trim_args *t)
{
    int64_t deleted = 0;
    if (t->strategy == 0) {
        return 0;
    }
    while (x->count > 0) {
        size_t node_len = head_node_len(x);
        if (t->limit != 0 && deleted + (int64_t)node_len > t->limit) {
            break;
        }
        int whole = t->strategy == 1 ? (int64_t)(x->count - node_len) >= t->maxlen
                                     : id_cmp(x->v[node_len - 1]->id, t->minid) < 0;
        if (whole) {
            remove_entries(x, 0, node_len);
            deleted += (int64_t)node_len;
            continue;
        }
        if (t->approx) {
            break;
        }
        size_t n = 0;
        while (n < node_len && (t->strategy == 1 ? (int64_t)(x->count - n) > t->maxlen
                                                 : id_cmp(x->v[n]->id, t->minid) < 0)) {
            n++;
        }
        remove_entries(x, 0, n);
        deleted += (int64_t)n;
        break;
    }
    return deleted;
}

/* The ID XADD gives a new entry, or 0 after an error reply. */
static int next_id(const struct xobj *x, const struct trim_args *t, uint64_t now,
                   struct resp_writer *w, sid_t *out)
{
    sid_t last = x->last;
    if (!t->id_given) {
        /* The leader's clock, carried in the entry: max(last + 1, now-0) on every replica. */
        if (now > last.ms) {
            *out = (sid_t){now, 0};
            return 1;
        }
        *out = last;
        HY_ASSERT(id_incr(out)); /* last is not the maximum: checked before */
        return 1;
    }
    *out = t->id;
    if (!t->seq_given) {
        if (t->id.ms == last.ms) {
            if (last.seq == UINT64_MAX) {
                store__r_err(w, ERR_SMALL_ID);
                return 0;
            }
            out->seq = last.seq + 1;
        } else if (t->id.ms < last.ms) {
            store__r_err(w, ERR_SMALL_ID);
            return 0;
        }
        return 1;
    }
    if (id_cmp(*out, last) <= 0) {
        store__r_err(w, ERR_SMALL_ID);
        return 0;
    }
    return 1;
}

static void change_begin(const struct store_obj *o, size_t *before)
{
    *before = store__xobj_bytes(store__xobj(o));
}

static void change_end(struct store *s, const struct store_obj *o, size_t before)
{
    s->obj_bytes = s->obj_bytes - before + store__xobj_bytes(store__xobj(o));
}

static struct store_obj *stream_create(struct store *s, const struct store_entry *e)
{
    struct store_obj *o = store__entry_new(STORE_STREAM, -1, ARG(e, 0), 0);
    store__set_vobj(o, store__xobj_new());
    o->lru = store__lru_of(e);
    store__link(s, o);
    return o;
}

/* [key, XADD's args after the key...]; incr = stream-node-max-entries. */
void store__op_xadd(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct trim_args t;
    size_t idpos = trim_parse(e, 1, 1, e->incr, &t, w);
    if (idpos == 0) {
        return;
    }
    size_t fields = idpos + 1;
    if (e->argc < fields + 2 || (e->argc - fields) % 2 != 0) {
        store__r_err(w, "ERR wrong number of arguments for 'xadd' command");
        return;
    }
    if (t.id_given && t.seq_given && id_is_zero(t.id)) {
        store__r_err(w, ERR_ZERO_ID);
        return;
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL && t.nomkstream) {
        store__r_null(w);
        return;
    }
    if (o != NULL && store__xobj(o)->last.ms == UINT64_MAX &&
        store__xobj(o)->last.seq == UINT64_MAX) {
        store__r_err(w, ERR_EXHAUSTED);
        return;
    }
    sid_t id;
    if (!next_id(o != NULL ? store__xobj(o) : &(struct xobj){0}, &t, e->time_ms, w, &id)) {
        return;
    }
    if (o == NULL) {
        o = stream_create(s, e);
    }
    size_t before;
    change_begin(o, &before);
    struct xobj *x = store__xobj(o);
    int new_node = x->count == 0 || x->v[x->count - 1]->node != x->tail_node ||
                   (e->incr > 0 && x->tail_fill >= (uint64_t)e->incr);
    if (new_node) {
        x->tail_node++;
        x->tail_fill = 0;
    }
    x->tail_fill++;
    append_entry(x, id, x->tail_node, e->argv + fields, e->argc - fields);
    x->last = id;
    x->entries_added++;
    r_id(w, id);
    int64_t trimmed = trim(x, &t);
    change_end(s, o, before);
    xev(s, &e->argv[0], "xadd");
    if (trimmed > 0) {
        xev(s, &e->argv[0], "xtrim");
    }
}

/* [key, XTRIM's args...]; incr = stream-node-max-entries. */
void store__op_xtrim(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        store__r_int(w, 0);
        return;
    }
    struct trim_args t;
    if (trim_parse(e, 1, 0, e->incr, &t, w) == 0) {
        return;
    }
    size_t before;
    change_begin(o, &before);
    int64_t trimmed = trim(store__xobj(o), &t);
    store__r_int(w, trimmed);
    change_end(s, o, before);
    if (trimmed > 0) {
        xev(s, &e->argv[0], "xtrim");
    }
}

/* [key, ids...] */
void store__op_xdel(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        store__r_int(w, 0);
        return;
    }
    for (uint32_t i = 1; i < e->argc; i++) {
        sid_t id;
        if (!store_stream_id_parse(ARG(e, i), 0, 1, &id, NULL)) {
            store__r_err(w, ERR_BAD_ID);
            return;
        }
    }
    size_t before;
    change_begin(o, &before);
    struct xobj *x = store__xobj(o);
    int64_t n = 0;
    for (uint32_t i = 1; i < e->argc; i++) {
        sid_t id;
        HY_ASSERT(store_stream_id_parse(ARG(e, i), 0, 1, &id, NULL));
        long at = find_entry(x, id);
        if (at >= 0) {
            remove_entries(x, (size_t)at, 1);
            if (id_cmp(id, x->max_deleted) > 0) {
                x->max_deleted = id;
            }
            n++;
        }
    }
    change_end(s, o, before);
    store__r_int(w, n);
    if (n > 0) {
        xev(s, &e->argv[0], "xdel");
    }
}

/* [key, id, options...] */
void store__op_xsetid(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    sid_t id, maxdel = {0, 0};
    int64_t added = -1;
    if (!store_stream_id_parse(ARG(e, 1), 0, 1, &id, NULL)) {
        store__r_err(w, ERR_BAD_ID);
        return;
    }
    for (uint32_t i = 2; i < e->argc; i++) {
        if (is_word(&e->argv[i], "ENTRIESADDED") && i + 1 < e->argc) {
            if (!parse_ll(&e->argv[i + 1], &added)) {
                store__r_err(w, STORE_ERR_NOT_INT);
                return;
            }
            if (added < 0) {
                store__r_err(w, "ERR entries_added must be positive");
                return;
            }
            i++;
        } else if (is_word(&e->argv[i], "MAXDELETEDID") && i + 1 < e->argc) {
            if (!store_stream_id_parse(ARG(e, i + 1), 0, 1, &maxdel, NULL)) {
                store__r_err(w, ERR_BAD_ID);
                return;
            }
            if (id_cmp(id, maxdel) < 0) {
                store__r_err(w, "ERR The ID specified in XSETID is smaller than the provided "
                                "max_deleted_entry_id");
                return;
            }
            i++;
        } else {
            store__r_err(w, ERR_SYNTAX);
            return;
        }
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (o == NULL) {
        store__r_err(w, "ERR no such key");
        return;
    }
    struct xobj *x = store__xobj(o);
    if (x->count > 0 && id_cmp(id, x->v[x->count - 1]->id) < 0) {
        store__r_err(w, "ERR The ID specified in XSETID is smaller than the target stream top "
                        "item");
        return;
    }
    if (added != -1 && (int64_t)x->count > added) {
        store__r_err(w, "ERR The entries_added specified in XSETID is smaller than the target "
                        "stream length");
        return;
    }
    x->last = id;
    if (added != -1) {
        x->entries_added = (uint64_t)added;
    }
    if (!id_is_zero(maxdel)) {
        x->max_deleted = maxdel;
    }
    r_ok(w);
    xev(s, &e->argv[0], "xsetid");
}

/* ---- consumer groups ------------------------------------------------------------------------ */

/* Redis's streamRangeHasTombstones(s, start, +): a deleted entry may lie at or after start. */
static int tombstones_after(const struct xobj *x, sid_t start)
{
    if (x->count == 0 || id_is_zero(x->max_deleted)) {
        return 0;
    }
    return id_cmp(start, x->max_deleted) <= 0;
}

/* Redis's streamEstimateDistanceFromFirstEverEntry: the entries-read counter of id, or -1. */
static int64_t estimate_read(const struct xobj *x, sid_t id)
{
    if (x->entries_added == 0) {
        return 0;
    }
    if (x->count == 0 && id_cmp(id, x->last) < 1) {
        return (int64_t)x->entries_added;
    }
    int cmp_last = id_cmp(id, x->last);
    if (cmp_last == 0) {
        return (int64_t)x->entries_added;
    }
    if (cmp_last > 0) {
        return -1;
    }
    sid_t first = x->count > 0 ? x->v[0]->id : (sid_t){0, 0};
    int cmp_first = id_cmp(id, first);
    if (id_is_zero(x->max_deleted) || id_cmp(x->max_deleted, first) < 0) {
        if (cmp_first < 0) {
            return (int64_t)(x->entries_added - x->count);
        }
        if (cmp_first == 0) {
            return (int64_t)(x->entries_added - x->count + 1);
        }
    }
    return -1;
}

/* A group ID argument: "$" (the stream's last ID) or a strict ID; 0 after an error reply. */
static int group_id_arg(const struct xobj *x, const struct store_arg *a, sid_t *out,
                        struct resp_writer *w)
{
    if (a->len == 1 && a->ptr[0] == '$') {
        *out = x != NULL ? x->last : (sid_t){0, 0};
        return 1;
    }
    if (!store_stream_id_parse(a->ptr, a->len, 0, 0, out, NULL)) {
        store__r_err(w, ERR_BAD_ID);
        return 0;
    }
    return 1;
}

/* [ENTRIESREAD n] options from argv[i..]; 0 after an error reply. */
static int entriesread_arg(const struct store_entry *e, uint32_t i, int allow_mkstream,
                           int *mkstream, int64_t *entries_read, struct resp_writer *w)
{
    for (; i < e->argc; i++) {
        if (allow_mkstream && is_word(&e->argv[i], "MKSTREAM")) {
            *mkstream = 1;
        } else if (is_word(&e->argv[i], "ENTRIESREAD") && i + 1 < e->argc) {
            if (!parse_ll(&e->argv[i + 1], entries_read)) {
                store__r_err(w, STORE_ERR_NOT_INT);
                return 0;
            }
            if (*entries_read < 0 && *entries_read != -1) {
                store__r_err(w, "ERR value for ENTRIESREAD must be positive or -1");
                return 0;
            }
            i++;
        } else {
            store__r_err(w, ERR_SYNTAX);
            return 0;
        }
    }
    return 1;
}

static void xgroup_create(struct store *s, const struct store_entry *e, struct store_obj *o,
                          struct resp_writer *w)
{
    int mkstream = 0;
    int64_t entries_read = -1;
    if (!entriesread_arg(e, 4, 1, &mkstream, &entries_read, w)) {
        return;
    }
    sid_t id;
    if (!group_id_arg(o != NULL ? store__xobj(o) : NULL, &e->argv[3], &id, w)) {
        return;
    }
    if (o == NULL && !mkstream) {
        store__r_err(w, ERR_NEED_KEY);
        return;
    }
    if (o == NULL) {
        o = stream_create(s, e);
    }
    struct xobj *x = store__xobj(o);
    if (group_find(x, ARG(e, 2)) != NULL) {
        store__r_err(w, "BUSYGROUP Consumer Group name already exists");
        return;
    }
    size_t before;
    change_begin(o, &before);
    group_add(x, ARG(e, 2), id, entries_read);
    change_end(s, o, before);
    r_ok(w);
    xev(s, &e->argv[0], "xgroup-create");
}

static void r_nogroup(struct resp_writer *w, const struct store_entry *e)
{
    if (w != NULL) {
        resp_write_errorf(w, "NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                          (int)HY_MIN(e->argv[2].len, 1024), (const char *)e->argv[2].ptr,
                          (int)HY_MIN(e->argv[0].len, 1024), (const char *)e->argv[0].ptr);
    }
}

static void xgroup_setid(struct store *s, const struct store_entry *e, struct store_obj *o,
                         struct resp_writer *w)
{
    int64_t entries_read = -1;
    if (!entriesread_arg(e, 4, 0, NULL, &entries_read, w)) {
        return;
    }
    struct xobj *x = store__xobj(o);
    struct xgroup *g = group_find(x, ARG(e, 2));
    if (g == NULL) {
        r_nogroup(w, e);
        return;
    }
    sid_t id;
    if (!group_id_arg(x, &e->argv[3], &id, w)) {
        return;
    }
    g->last = id;
    g->entries_read = entries_read;
    r_ok(w);
    xev(s, &e->argv[0], "xgroup-setid");
}

static void xgroup_destroy(struct store *s, struct xobj *x, const struct store_entry *e,
                           struct resp_writer *w)
{
    int found;
    size_t at = group_pos(x, ARG(e, 2), &found);
    if (found) {
        group_free(x, x->groups[at]);
        memmove(x->groups + at, x->groups + at + 1, (x->ngroups - at - 1) * sizeof(*x->groups));
        x->ngroups--;
        if (x->ngroups == 0) {
            acc_free(x, x->groups);
            x->groups = NULL;
        }
        xev(s, &e->argv[0], "xgroup-destroy");
    }
    store__r_int(w, found);
}

static void xgroup_consumer(struct store *s, struct xobj *x, const struct store_entry *e,
                            int create, struct resp_writer *w)
{
    struct xgroup *g = group_find(x, ARG(e, 2));
    if (g == NULL) {
        r_nogroup(w, e);
        return;
    }
    if (create) {
        int created;
        cons_get(x, g, ARG(e, 3), e->time_ms, &created);
        store__r_int(w, created);
        if (created) {
            xev(s, &e->argv[0], "xgroup-createconsumer");
        }
        return;
    }
    int found;
    size_t at = cons_pos(g, ARG(e, 3), &found);
    if (!found) {
        store__r_int(w, 0);
        return;
    }
    struct xcons *c = g->cons[at];
    int64_t pending = (int64_t)c->pending;
    for (size_t k = g->npel; k-- > 0;) {
        if (g->pel[k].owner == c) {
            pel_remove(x, g, &g->pel[k]);
        }
    }
    acc_free(x, c->nm.name);
    acc_free(x, c);
    memmove(g->cons + at, g->cons + at + 1, (g->ncons - at - 1) * sizeof(*g->cons));
    g->ncons--;
    if (g->ncons == 0) {
        acc_free(x, g->cons);
        g->cons = NULL;
    }
    store__r_int(w, pending);
    xev(s, &e->argv[0], "xgroup-delconsumer");
}

/* [key, subcommand, args...] (XGROUP with its key first). */
void store__op_xgroup(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    static const struct {
        const char *name;
        uint32_t argc_min, argc_max;
    } subs[] = {{"CREATE", 4, 7},
                {"SETID", 4, 6},
                {"DESTROY", 3, 3},
                {"CREATECONSUMER", 4, 4},
                {"DELCONSUMER", 4, 4}};
    size_t k = 0;
    while (k < HY_ARRAY_LEN(subs) && !is_word(&e->argv[1], subs[k].name)) {
        k++;
    }
    if (k == HY_ARRAY_LEN(subs) || e->argc < subs[k].argc_min || e->argc > subs[k].argc_max) {
        if (w != NULL) {
            resp_write_errorf(w,
                              "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                              "Try XGROUP HELP.",
                              (int)HY_MIN(e->argv[1].len, 128), (const char *)e->argv[1].ptr);
        }
        return;
    }
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    if (k == 0) {
        xgroup_create(s, e, o, w);
        return;
    }
    if (o == NULL) {
        store__r_err(w, ERR_NEED_KEY);
        return;
    }
    size_t before;
    change_begin(o, &before);
    if (k == 1) {
        xgroup_setid(s, e, o, w);
    } else if (k == 2) {
        xgroup_destroy(s, store__xobj(o), e, w);
    } else {
        xgroup_consumer(s, store__xobj(o), e, k == 3, w);
    }
    change_end(s, o, before);
}

/* ---- XREADGROUP -------------------------------------------------------------------------- */

/* Delivers new entries (after the group's last ID) to consumer c: up to count (0 = all). */
static void deliver_new(struct xobj *x, struct xgroup *g, struct xcons *c, uint64_t count,
                        int noack, uint64_t now, struct resp_writer *w)
{
    sid_t start = g->last;
    size_t lo = x->count, hi = x->count;
    if (id_incr(&start)) {
        lo = lower_bound(x, start);
    }
    size_t n = hi - lo;
    if (count > 0 && n > count) {
        n = (size_t)count;
    }
    r_array(w, n);
    for (size_t i = lo; i < lo + n; i++) {
        const struct xentry *en = x->v[i];
        r_entry(w, en);
        if (g->entries_read != -1 && !tombstones_after(x, en->id)) {
            g->entries_read++;
        } else if (x->entries_added > 0) {
            g->entries_read = estimate_read(x, en->id);
        }
        g->last = en->id;
        if (noack) {
            continue;
        }
        struct xnack *k = pel_find(g, en->id);
        if (k == NULL) {
            k = pel_insert(x, g, en->id);
        }
        nack_own(k, c);
        k->time_ms = now;
        k->count = 1;
    }
}

/* Re-delivers c's pending entries after id (history), up to count (0 = all). */
static void deliver_history(struct xobj *x, struct xgroup *g, struct xcons *c, sid_t after,
                            uint64_t count, uint64_t now, struct resp_writer *w)
{
    size_t n = 0;
    for (size_t k = pel_lower(g, after); k < g->npel; k++) {
        if (g->pel[k].owner == c && id_cmp(g->pel[k].id, after) > 0) {
            n++;
        }
    }
    if (count > 0 && n > count) {
        n = (size_t)count;
    }
    r_array(w, n);
    size_t sent = 0;
    for (size_t k = pel_lower(g, after); k < g->npel && sent < n; k++) {
        struct xnack *nk = &g->pel[k];
        if (nk->owner != c || id_cmp(nk->id, after) <= 0) {
            continue;
        }
        sent++;
        long at = find_entry(x, nk->id);
        if (at < 0) {
            r_array(w, 2);
            r_id(w, nk->id);
            r_null_array(w);
            continue;
        }
        r_entry(w, x->v[at]);
        nk->time_ms = now;
        nk->count++;
    }
}

/* [group, consumer, keys..., ids...]; incr = COUNT * 2 + NOACK; RESP3 map when w asks. A
 * stream answered only when it has new entries (">") or always (history); none: null. */
void store__op_xreadgroup(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if ((e->argc - 2) % 2 != 0 || e->incr < 0) {
        store__r_err(w, ERR_SYNTAX);
        return;
    }
    size_t nkeys = (e->argc - 2) / 2;
    uint64_t count = (uint64_t)e->incr / 2;
    int noack = (int)(e->incr & 1);
    /* Check everything first: an error leaves every stream as it was. */
    size_t served = 0;
    for (size_t i = 0; i < nkeys; i++) {
        const struct store_arg *id = &e->argv[2 + nkeys + i];
        sid_t tmp;
        int is_new = id->len == 1 && id->ptr[0] == '>';
        if (!is_new && !store_stream_id_parse(id->ptr, id->len, 0, 1, &tmp, NULL)) {
            store__r_err(w, ERR_BAD_ID);
            return;
        }
        int wrong;
        struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, (uint32_t)(2 + i), w, &wrong);
        if (wrong) {
            return;
        }
        struct xgroup *g = o != NULL ? group_find(store__xobj(o), ARG(e, 0)) : NULL;
        if (g == NULL) {
            if (w != NULL) {
                resp_write_errorf(w,
                                  "NOGROUP No such key '%.*s' or consumer group '%.*s' in "
                                  "XREADGROUP with GROUP option",
                                  (int)HY_MIN(e->argv[2 + i].len, 1024),
                                  (const char *)e->argv[2 + i].ptr,
                                  (int)HY_MIN(e->argv[0].len, 1024), (const char *)e->argv[0].ptr);
            }
            return;
        }
        served += !is_new || store_stream_has_after(o, g->last);
    }
    if (served == 0) {
        r_null_array(w);
        return;
    }
    if (w != NULL) {
        w->proto >= 3 ? resp_write_map(w, served) : resp_write_array(w, served);
    }
    for (size_t i = 0; i < nkeys; i++) {
        const struct store_arg *id = &e->argv[2 + nkeys + i];
        struct store_obj *o = store__lookup_write(s, ARG(e, 2 + i), e->time_ms);
        struct xobj *x = store__xobj(o);
        struct xgroup *g = group_find(x, ARG(e, 0));
        int is_new = id->len == 1 && id->ptr[0] == '>';
        if (is_new && !store_stream_has_after(o, g->last)) {
            continue;
        }
        if (w != NULL && w->proto < 3) {
            resp_write_array(w, 2);
        }
        store__r_bulk(w, ARG(e, 2 + i));
        size_t before;
        change_begin(o, &before);
        int created;
        struct xcons *c = cons_get(x, g, ARG(e, 1), e->time_ms, &created);
        c->seen_ms = e->time_ms;
        if (created) {
            xev(s, &e->argv[2 + i], "xgroup-createconsumer");
        }
        if (is_new) {
            deliver_new(x, g, c, count, noack, e->time_ms, w);
        } else {
            sid_t after;
            HY_ASSERT(store_stream_id_parse(id->ptr, id->len, 0, 1, &after, NULL));
            deliver_history(x, g, c, after, count, e->time_ms, w); /* entries > after */
        }
        change_end(s, o, before);
    }
}

/* ---- XACK, XCLAIM, XAUTOCLAIM ------------------------------------------------------------ */

/* [key, group, ids...] */
void store__op_xack(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong);
    if (wrong) {
        return;
    }
    for (uint32_t i = 2; i < e->argc; i++) {
        sid_t id;
        if (!store_stream_id_parse(ARG(e, i), 0, 1, &id, NULL)) {
            store__r_err(w, ERR_BAD_ID);
            return;
        }
    }
    struct xgroup *g = o != NULL ? group_find(store__xobj(o), ARG(e, 1)) : NULL;
    if (g == NULL) {
        store__r_int(w, 0);
        return;
    }
    size_t before;
    change_begin(o, &before);
    int64_t n = 0;
    for (uint32_t i = 2; i < e->argc; i++) {
        sid_t id;
        HY_ASSERT(store_stream_id_parse(ARG(e, i), 0, 1, &id, NULL));
        struct xnack *k = pel_find(g, id);
        if (k != NULL) {
            pel_remove(store__xobj(o), g, k);
            n++;
        }
    }
    change_end(s, o, before);
    store__r_int(w, n);
}

static void r_nogroup_claim(struct resp_writer *w, const struct store_entry *e)
{
    if (w != NULL) {
        resp_write_errorf(w, "NOGROUP No such key '%.*s' or consumer group '%.*s'",
                          (int)HY_MIN(e->argv[0].len, 1024), (const char *)e->argv[0].ptr,
                          (int)HY_MIN(e->argv[1].len, 1024), (const char *)e->argv[1].ptr);
    }
}

/* The stream and group of XCLAIM/XAUTOCLAIM ([key, group, ...]), or NULL after a reply. */
static struct xgroup *claim_group(struct store *s, const struct store_entry *e,
                                  struct resp_writer *w, struct store_obj **o_out)
{
    int wrong;
    struct store_obj *o = store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong);
    if (wrong) {
        return NULL;
    }
    struct xgroup *g = o != NULL ? group_find(store__xobj(o), ARG(e, 1)) : NULL;
    if (g == NULL) {
        r_nogroup_claim(w, e);
        return NULL;
    }
    *o_out = o;
    return g;
}

struct claim_opts {
    int64_t minidle, deliverytime, retrycount;
    int force, justid;
    sid_t lastid;
    uint32_t last_id_arg;
};

static int claim_parse(const struct store_entry *e, uint64_t now, struct claim_opts *c,
                       struct resp_writer *w)
{
    *c = (struct claim_opts){0, -1, -1, 0, 0, {0, 0}, 0};
    if (!parse_ll(&e->argv[3], &c->minidle)) {
        store__r_err(w, "ERR Invalid min-idle-time argument for XCLAIM");
        return 0;
    }
    c->minidle = HY_MAX(c->minidle, 0);
    uint32_t j = 4;
    for (; j < e->argc; j++) {
        sid_t id;
        if (!store_stream_id_parse(ARG(e, j), 0, 1, &id, NULL)) {
            break;
        }
    }
    c->last_id_arg = j;
    for (; j < e->argc; j++) {
        const struct store_arg *a = &e->argv[j];
        int more = j + 1 < e->argc;
        if (is_word(a, "FORCE")) {
            c->force = 1;
        } else if (is_word(a, "JUSTID")) {
            c->justid = 1;
        } else if ((is_word(a, "IDLE") || is_word(a, "TIME")) && more) {
            int idle = is_word(a, "IDLE");
            if (!parse_ll(&e->argv[++j], &c->deliverytime)) {
                store__r_err(w, idle ? "ERR Invalid IDLE option argument for XCLAIM"
                                     : "ERR Invalid TIME option argument for XCLAIM");
                return 0;
            }
            if (idle) {
                c->deliverytime = (int64_t)now - c->deliverytime;
            }
        } else if (is_word(a, "RETRYCOUNT") && more) {
            if (!parse_ll(&e->argv[++j], &c->retrycount)) {
                store__r_err(w, "ERR Invalid RETRYCOUNT option argument for XCLAIM");
                return 0;
            }
        } else if (is_word(a, "LASTID") && more) {
            j++;
            if (!store_stream_id_parse(ARG(e, j), 0, 1, &c->lastid, NULL)) {
                store__r_err(w, ERR_BAD_ID);
                return 0;
            }
        } else {
            if (w != NULL) {
                resp_write_errorf(w, "ERR Unrecognized XCLAIM option '%.*s'",
                                  (int)HY_MIN(a->len, 128), (const char *)a->ptr);
            }
            return 0;
        }
    }
    if (c->deliverytime == -1 || c->deliverytime < 0 || (uint64_t)c->deliverytime > now) {
        c->deliverytime = (int64_t)now;
    }
    return 1;
}

/* [key, group, consumer, min-idle-time, ids..., options...] */
void store__op_xclaim(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_obj *o = NULL;
    struct xgroup *g = claim_group(s, e, w, &o);
    struct claim_opts c;
    if (g == NULL || !claim_parse(e, e->time_ms, &c, w)) {
        return;
    }
    struct xobj *x = store__xobj(o);
    size_t before;
    change_begin(o, &before);
    if (id_cmp(c.lastid, g->last) > 0) {
        g->last = c.lastid;
    }
    struct xcons *cons = NULL;
    /* Two passes: count the reply, then claim (the reply's length comes first). */
    size_t n = 0;
    struct hy_buf body;
    hy_buf_init(&body);
    struct resp_writer bw = {&body, w != NULL ? w->proto : 2};
    struct resp_writer *bwp = w != NULL ? &bw : NULL;
    for (uint32_t j = 4; j < c.last_id_arg; j++) {
        sid_t id;
        HY_ASSERT(store_stream_id_parse(ARG(e, j), 0, 1, &id, NULL));
        struct xnack *k = pel_find(g, id);
        long at = find_entry(x, id);
        if (at < 0) {
            if (k != NULL) {
                pel_remove(x, g, k);
            }
            continue;
        }
        if (c.force && k == NULL) {
            k = pel_insert(x, g, id);
            k->time_ms = e->time_ms;
            k->count = 1;
        }
        if (k == NULL) {
            continue;
        }
        if (k->owner != NULL && c.minidle > 0 &&
            (int64_t)e->time_ms - (int64_t)k->time_ms < c.minidle) {
            continue;
        }
        if (cons == NULL) {
            int created;
            cons = cons_get(x, g, ARG(e, 2), e->time_ms, &created);
            cons->seen_ms = e->time_ms;
            if (created) {
                xev(s, &e->argv[0], "xgroup-createconsumer");
            }
        }
        if (k->owner != cons) {
            nack_own(k, cons);
        }
        k->time_ms = (uint64_t)c.deliverytime;
        if (c.retrycount >= 0) {
            k->count = (uint64_t)c.retrycount;
        } else if (!c.justid) {
            k->count++;
        }
        c.justid ? r_id(bwp, id) : r_entry(bwp, x->v[at]);
        n++;
    }
    change_end(s, o, before);
    if (w != NULL) {
        resp_write_array(w, n);
        hy_buf_append(w->out, body.data, body.len);
    }
    hy_buf_free(&body);
}

/* [key, group, consumer, min-idle-time, start, options...] */
void store__op_xautoclaim(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int wrong;
    if (store__lookup_typed(STORE_STREAM, s, e, 0, w, &wrong) == NULL && wrong) {
        return;
    }
    int64_t minidle, count = 100;
    if (!parse_ll(&e->argv[3], &minidle)) {
        store__r_err(w, "ERR Invalid min-idle-time argument for XAUTOCLAIM");
        return;
    }
    minidle = HY_MAX(minidle, 0);
    sid_t start;
    int r = store_stream_interval_parse(ARG(e, 4), 0, &start);
    if (r <= 0) {
        store__r_err(w, r < 0 ? "ERR invalid start ID for the interval" : ERR_BAD_ID);
        return;
    }
    int justid = 0;
    for (uint32_t j = 5; j < e->argc; j++) {
        if (is_word(&e->argv[j], "COUNT") && j + 1 < e->argc) {
            if (!parse_ll(&e->argv[j + 1], &count) || count < 1 || count > INT64_MAX / 10) {
                store__r_err(w, "ERR COUNT must be > 0");
                return;
            }
            j++;
        } else if (is_word(&e->argv[j], "JUSTID")) {
            justid = 1;
        } else {
            store__r_err(w, ERR_SYNTAX);
            return;
        }
    }
    struct store_obj *o = NULL;
    struct xgroup *g = claim_group(s, e, w, &o); /* Redis 7.0 parses everything first */
    if (g == NULL) {
        return;
    }
    struct xobj *x = store__xobj(o);
    size_t before;
    change_begin(o, &before);
    int64_t attempts = count * 10;
    struct hy_buf claimed, deleted;
    hy_buf_init(&claimed);
    hy_buf_init(&deleted);
    int proto = w != NULL ? w->proto : 2;
    struct resp_writer cw = {&claimed, proto}, dw = {&deleted, proto};
    size_t nclaimed = 0, ndeleted = 0;
    struct xcons *cons = NULL;
    size_t k = pel_lower(g, start);
    while (attempts-- > 0 && count > 0 && k < g->npel) {
        struct xnack *nk = &g->pel[k];
        long at = find_entry(x, nk->id);
        if (at < 0) {
            r_id(&dw, nk->id);
            ndeleted++;
            pel_remove(x, g, nk);
            count--; /* Redis 7.0: the count bounds the reply, deleted IDs included */
            continue;
        }
        if (minidle > 0 && (int64_t)e->time_ms - (int64_t)nk->time_ms < minidle) {
            k++;
            continue;
        }
        if (cons == NULL) {
            int created;
            cons = cons_get(x, g, ARG(e, 2), e->time_ms, &created);
            cons->seen_ms = e->time_ms;
            if (created) {
                xev(s, &e->argv[0], "xgroup-createconsumer");
            }
        }
        if (nk->owner != cons) {
            nack_own(nk, cons);
        }
        nk->time_ms = e->time_ms;
        if (!justid) {
            nk->count++;
        }
        justid ? r_id(&cw, nk->id) : r_entry(&cw, x->v[at]);
        nclaimed++;
        count--;
        k++;
    }
    change_end(s, o, before);
    if (w != NULL) {
        resp_write_array(w, 3);
        r_id(w, k < g->npel ? g->pel[k].id : (sid_t){0, 0});
        resp_write_array(w, nclaimed);
        hy_buf_append(w->out, claimed.data, claimed.len);
        resp_write_array(w, ndeleted);
        hy_buf_append(w->out, deleted.data, deleted.len);
    }
    hy_buf_free(&claimed);
    hy_buf_free(&deleted);
}

/* ---- XPENDING and XINFO (reads) ------------------------------------------------------------ */

static uint64_t idle_of(uint64_t now, uint64_t t)
{
    return now > t ? now - t : 0;
}

void store_stream_xpending(const struct store_obj *o, const struct store_arg *argv, size_t argc,
                           uint64_t now_ms, struct resp_writer *w)
{
    /* argv: [key, group, [IDLE min] start end count [consumer]] */
    const struct xgroup *g =
        o != NULL ? group_find(store__xobj(o), argv[1].ptr, argv[1].len) : NULL;
    int64_t minidle = 0, count = 0;
    size_t i = 2;
    int extended = argc > 2;
    if (extended) {
        if (argc >= 4 && is_word(&argv[2], "IDLE")) {
            if (!parse_ll(&argv[3], &minidle)) {
                resp_write_error(w, STORE_ERR_NOT_INT);
                return;
            }
            if (argc < 7) {
                resp_write_error(w, ERR_SYNTAX);
                return;
            }
            i = 4;
        }
        if (argc - i < 3 || argc - i > 4) {
            resp_write_error(w, ERR_SYNTAX);
            return;
        }
        if (!parse_ll(&argv[i + 2], &count)) {
            resp_write_error(w, STORE_ERR_NOT_INT);
            return;
        }
        count = HY_MAX(count, 0);
    }
    sid_t start = {0, 0}, end = {UINT64_MAX, UINT64_MAX};
    if (extended) {
        int r1 = store_stream_interval_parse(argv[i].ptr, argv[i].len, 0, &start);
        int r2 = store_stream_interval_parse(argv[i + 1].ptr, argv[i + 1].len, 1, &end);
        if (r1 <= 0 || r2 <= 0) {
            resp_write_error(w, r1 < 0   ? "ERR invalid start ID for the interval"
                                : r2 < 0 ? "ERR invalid end ID for the interval"
                                         : ERR_BAD_ID);
            return;
        }
    }
    if (g == NULL) {
        resp_write_errorf(w, "NOGROUP No such key '%.*s' or consumer group '%.*s'",
                          (int)HY_MIN(argv[0].len, 1024), (const char *)argv[0].ptr,
                          (int)HY_MIN(argv[1].len, 1024), (const char *)argv[1].ptr);
        return;
    }
    if (!extended) {
        resp_write_array(w, 4);
        resp_write_int(w, (int64_t)g->npel);
        if (g->npel == 0) {
            resp_write_null(w);
            resp_write_null(w);
            resp_write_null_array(w);
            return;
        }
        r_id(w, g->pel[0].id);
        r_id(w, g->pel[g->npel - 1].id);
        size_t with = 0;
        for (size_t c = 0; c < g->ncons; c++) {
            with += g->cons[c]->pending > 0;
        }
        resp_write_array(w, with);
        for (size_t c = 0; c < g->ncons; c++) {
            if (g->cons[c]->pending > 0) {
                resp_write_array(w, 2);
                resp_write_bulk(w, g->cons[c]->nm.name, g->cons[c]->nm.nlen);
                resp_write_bulk_i64(w, (int64_t)g->cons[c]->pending);
            }
        }
        return;
    }
    const struct xcons *only = i + 3 < argc ? cons_find(g, argv[i + 3].ptr, argv[i + 3].len) : NULL;
    if (i + 3 < argc && only == NULL) {
        resp_write_array(w, 0);
        return;
    }
    struct hy_buf body;
    hy_buf_init(&body);
    struct resp_writer bw = {&body, w->proto};
    size_t n = 0;
    for (size_t k = pel_lower(g, start); k < g->npel && n < (size_t)count; k++) {
        const struct xnack *nk = &g->pel[k];
        if (id_cmp(nk->id, end) > 0 || id_cmp(start, end) > 0) {
            break;
        }
        if ((only != NULL && nk->owner != only) ||
            (minidle > 0 && idle_of(now_ms, nk->time_ms) < (uint64_t)minidle)) {
            continue;
        }
        resp_write_array(&bw, 4);
        r_id(&bw, nk->id);
        resp_write_bulk(&bw, nk->owner->nm.name, nk->owner->nm.nlen);
        resp_write_int(&bw, (int64_t)idle_of(now_ms, nk->time_ms));
        resp_write_int(&bw, (int64_t)nk->count);
        n++;
    }
    resp_write_array(w, n);
    hy_buf_append(w->out, body.data, body.len);
    hy_buf_free(&body);
}

static void r_kv_int(struct resp_writer *w, const char *k, int64_t v)
{
    resp_write_bulk_str(w, k);
    resp_write_int(w, v);
}

static void r_kv_id(struct resp_writer *w, const char *k, sid_t v)
{
    resp_write_bulk_str(w, k);
    r_id(w, v);
}

static size_t node_count(const struct xobj *x)
{
    size_t n = 0;
    for (size_t i = 0; i < x->count; i++) {
        n += i == 0 || x->v[i]->node != x->v[i - 1]->node;
    }
    return n;
}

/* XINFO GROUPS's lag, or -1 (null) when it cannot be known. */
static int64_t group_lag(const struct xobj *x, const struct xgroup *g)
{
    if (x->entries_added == 0) {
        return 0;
    }
    if (g->entries_read != -1 && !tombstones_after(x, g->last)) {
        return (int64_t)x->entries_added - g->entries_read;
    }
    int64_t read = estimate_read(x, g->last);
    return read == -1 ? -1 : (int64_t)x->entries_added - read;
}

static void r_lag(struct resp_writer *w, const struct xobj *x, const struct xgroup *g)
{
    int64_t lag = group_lag(x, g);
    resp_write_bulk_str(w, "lag");
    lag < 0 ? resp_write_null(w) : resp_write_int(w, lag);
}

static void r_entries_read(struct resp_writer *w, const struct xobj *x, const struct xgroup *g)
{
    (void)x; /* the counter as kept: Redis 7.0 shows it so, and lag estimates apart */
    int64_t er = g->entries_read;
    resp_write_bulk_str(w, "entries-read");
    er < 0 ? resp_write_null(w) : resp_write_int(w, er);
}

static void xinfo_groups(const struct xobj *x, struct resp_writer *w)
{
    resp_write_array(w, x->ngroups);
    for (size_t i = 0; i < x->ngroups; i++) {
        const struct xgroup *g = x->groups[i];
        resp_write_map(w, 6);
        resp_write_bulk_str(w, "name");
        resp_write_bulk(w, g->nm.name, g->nm.nlen);
        r_kv_int(w, "consumers", (int64_t)g->ncons);
        r_kv_int(w, "pending", (int64_t)g->npel);
        r_kv_id(w, "last-delivered-id", g->last);
        r_entries_read(w, x, g);
        r_lag(w, x, g);
    }
}

static void xinfo_consumers(const struct xgroup *g, uint64_t now, struct resp_writer *w)
{
    resp_write_array(w, g->ncons);
    for (size_t i = 0; i < g->ncons; i++) {
        const struct xcons *c = g->cons[i];
        resp_write_map(w, 3);
        resp_write_bulk_str(w, "name");
        resp_write_bulk(w, c->nm.name, c->nm.nlen);
        r_kv_int(w, "pending", (int64_t)c->pending);
        r_kv_int(w, "idle", (int64_t)idle_of(now, c->seen_ms));
    }
}

static void xinfo_stream_head(const struct xobj *x, struct resp_writer *w)
{
    r_kv_int(w, "length", (int64_t)x->count);
    r_kv_int(w, "radix-tree-keys", (int64_t)node_count(x));
    r_kv_int(w, "radix-tree-nodes", (int64_t)(node_count(x) + 1));
    r_kv_id(w, "last-generated-id", x->last);
    r_kv_id(w, "max-deleted-entry-id", x->max_deleted);
    r_kv_int(w, "entries-added", (int64_t)x->entries_added);
    r_kv_id(w, "recorded-first-entry-id", x->count > 0 ? x->v[0]->id : (sid_t){0, 0});
}

static void xinfo_full_group(const struct xobj *x, const struct xgroup *g, size_t count,
                             struct resp_writer *w)
{
    resp_write_map(w, 7);
    resp_write_bulk_str(w, "name");
    resp_write_bulk(w, g->nm.name, g->nm.nlen);
    r_kv_id(w, "last-delivered-id", g->last);
    r_entries_read(w, x, g);
    r_lag(w, x, g);
    r_kv_int(w, "pel-count", (int64_t)g->npel);
    resp_write_bulk_str(w, "pending");
    size_t n = count == 0 ? g->npel : HY_MIN(count, g->npel);
    resp_write_array(w, n);
    for (size_t k = 0; k < n; k++) {
        resp_write_array(w, 4);
        r_id(w, g->pel[k].id);
        resp_write_bulk(w, g->pel[k].owner->nm.name, g->pel[k].owner->nm.nlen);
        resp_write_int(w, (int64_t)g->pel[k].time_ms);
        resp_write_int(w, (int64_t)g->pel[k].count);
    }
    resp_write_bulk_str(w, "consumers");
    resp_write_array(w, g->ncons);
    for (size_t i = 0; i < g->ncons; i++) {
        const struct xcons *c = g->cons[i];
        resp_write_map(w, 4);
        resp_write_bulk_str(w, "name");
        resp_write_bulk(w, c->nm.name, c->nm.nlen);
        r_kv_int(w, "seen-time", (int64_t)c->seen_ms);
        r_kv_int(w, "pel-count", (int64_t)c->pending);
        resp_write_bulk_str(w, "pending");
        size_t m = count == 0 ? c->pending : HY_MIN(count, c->pending);
        resp_write_array(w, m);
        size_t sent = 0;
        for (size_t k = 0; k < g->npel && sent < m; k++) {
            if (g->pel[k].owner == c) {
                resp_write_array(w, 3);
                r_id(w, g->pel[k].id);
                resp_write_int(w, (int64_t)g->pel[k].time_ms);
                resp_write_int(w, (int64_t)g->pel[k].count);
                sent++;
            }
        }
    }
}

static void xinfo_stream(const struct xobj *x, int full, size_t count, struct resp_writer *w)
{
    resp_write_map(w, full ? 9 : 10);
    xinfo_stream_head(x, w);
    if (!full) {
        r_kv_int(w, "groups", (int64_t)x->ngroups);
        resp_write_bulk_str(w, "first-entry");
        x->count > 0 ? r_entry(w, x->v[0]) : resp_write_null(w);
        resp_write_bulk_str(w, "last-entry");
        x->count > 0 ? r_entry(w, x->v[x->count - 1]) : resp_write_null(w);
        return;
    }
    resp_write_bulk_str(w, "entries");
    size_t n = count == 0 ? x->count : HY_MIN(count, x->count);
    resp_write_array(w, n);
    for (size_t i = 0; i < n; i++) {
        r_entry(w, x->v[i]);
    }
    resp_write_bulk_str(w, "groups");
    resp_write_array(w, x->ngroups);
    for (size_t i = 0; i < x->ngroups; i++) {
        xinfo_full_group(x, x->groups[i], count, w);
    }
}

int store_stream_xinfo(const struct store_obj *o, const struct store_arg *argv, size_t argc,
                       uint64_t now_ms, struct resp_writer *w)
{
    /* argv: [subcommand, key, ...]; o is the stream at key (not NULL). */
    const struct xobj *x = store__xobj(o);
    if (is_word(&argv[0], "GROUPS") && argc == 2) {
        xinfo_groups(x, w);
        return 1;
    }
    if (is_word(&argv[0], "CONSUMERS") && argc == 3) {
        const struct xgroup *g = group_find(x, argv[2].ptr, argv[2].len);
        if (g == NULL) {
            resp_write_errorf(w, "NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                              (int)HY_MIN(argv[2].len, 1024), (const char *)argv[2].ptr,
                              (int)HY_MIN(argv[1].len, 1024), (const char *)argv[1].ptr);
            return 1;
        }
        xinfo_consumers(g, now_ms, w);
        return 1;
    }
    if (!is_word(&argv[0], "STREAM")) {
        return 0;
    }
    int full = 0;
    int64_t count = 10;
    for (size_t i = 2; i < argc; i++) {
        if (is_word(&argv[i], "FULL") && i == 2) {
            full = 1;
        } else if (full && is_word(&argv[i], "COUNT") && i + 1 < argc) {
            if (!parse_ll(&argv[i + 1], &count)) {
                resp_write_error(w, STORE_ERR_NOT_INT);
                return 1;
            }
            count = HY_MAX(count, 0);
            i++;
        } else {
            resp_write_error(w, ERR_SYNTAX);
            return 1;
        }
    }
    xinfo_stream(x, full, (size_t)count, w);
    return 1;
}

/* ---- snapshots and copies ----------------------------------------------------------------- */

static void put_id(struct hy_buf *out, sid_t id)
{
    varint_append(out, id.ms);
    varint_append(out, id.seq);
}

void store__xobj_encode(const struct xobj *x, struct hy_buf *out)
{
    put_id(out, x->last);
    put_id(out, x->max_deleted);
    varint_append(out, x->entries_added);
    varint_append(out, x->tail_node);
    varint_append(out, x->tail_fill);
    varint_append(out, x->count);
    for (size_t i = 0; i < x->count; i++) {
        const struct xentry *en = x->v[i];
        put_id(out, en->id);
        varint_append(out, en->node);
        varint_append(out, en->pairs);
        varint_append_bytes(out, en->data, en->len);
    }
    varint_append(out, x->ngroups);
    for (size_t i = 0; i < x->ngroups; i++) {
        const struct xgroup *g = x->groups[i];
        varint_append_bytes(out, g->nm.name, g->nm.nlen);
        put_id(out, g->last);
        varint_append(out, zigzag(g->entries_read));
        varint_append(out, g->ncons);
        for (size_t c = 0; c < g->ncons; c++) {
            varint_append_bytes(out, g->cons[c]->nm.name, g->cons[c]->nm.nlen);
            varint_append(out, g->cons[c]->seen_ms);
        }
        varint_append(out, g->npel);
        for (size_t k = 0; k < g->npel; k++) {
            const struct xnack *nk = &g->pel[k];
            size_t owner = 0;
            while (g->cons[owner] != nk->owner) {
                owner++;
            }
            put_id(out, nk->id);
            varint_append(out, owner);
            varint_append(out, nk->time_ms);
            varint_append(out, nk->count);
        }
    }
}

static sid_t rd_id(struct rd *r)
{
    sid_t id;
    id.ms = rd_varint(r);
    id.seq = rd_varint(r);
    return id;
}

/* The fields of an entry: pairs * 2 length-prefixed strings filling exactly len bytes. */
static int fields_ok(const uint8_t *p, size_t len, uint64_t pairs)
{
    struct rd r = {p, len, 0, 0};
    for (uint64_t i = 0; i < pairs * 2 && !r.bad; i++) {
        size_t n;
        (void)rd_bytes(&r, &n);
    }
    return !r.bad && r.off == len;
}

static int decode_entries(struct rd *r, struct xobj *x)
{
    uint64_t n = rd_varint(r);
    if (r->bad || n > r->len - r->off) {
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        sid_t id = rd_id(r);
        uint64_t node = rd_varint(r), pairs = rd_varint(r);
        size_t len;
        const uint8_t *p = rd_bytes(r, &len);
        if (r->bad || pairs == 0 || pairs > len || len > UINT32_MAX ||
            (x->count > 0 && id_cmp(x->v[x->count - 1]->id, id) >= 0) || id_cmp(id, x->last) > 0 ||
            !fields_ok(p, len, pairs)) {
            return 0;
        }
        if (x->count == x->cap) {
            x->cap = HY_MAX(x->cap * 2, 4);
            x->v = acc_realloc(x, x->v, x->cap * sizeof(*x->v));
        }
        struct xentry *en = acc_malloc(x, sizeof(*en) + len);
        en->id = id;
        en->node = node;
        en->pairs = (uint32_t)pairs;
        en->len = (uint32_t)len;
        memcpy(en->data, p, len);
        x->v[x->count++] = en;
    }
    return 1;
}

static int decode_group(struct rd *r, struct xobj *x, uint64_t seed)
{
    (void)seed;
    size_t nlen;
    const uint8_t *name = rd_bytes(r, &nlen);
    sid_t last = rd_id(r);
    int64_t er = unzigzag(rd_varint(r));
    if (r->bad || er < -1 || group_find(x, name, nlen) != NULL) {
        return 0;
    }
    struct xgroup *g = group_add(x, name, nlen, last, er);
    uint64_t ncons = rd_varint(r);
    if (r->bad || ncons > r->len - r->off) {
        return 0;
    }
    for (uint64_t c = 0; c < ncons; c++) {
        size_t clen;
        const uint8_t *cn = rd_bytes(r, &clen);
        uint64_t seen = rd_varint(r);
        int created;
        if (r->bad) {
            return 0;
        }
        struct xcons *cs = cons_get(x, g, cn, clen, seen, &created);
        if (!created || g->cons[g->ncons - 1] != cs) {
            return 0; /* a name twice, or out of order */
        }
    }
    uint64_t npel = rd_varint(r);
    if (r->bad || npel > r->len - r->off) {
        return 0;
    }
    for (uint64_t k = 0; k < npel; k++) {
        sid_t id = rd_id(r);
        uint64_t owner = rd_varint(r), t = rd_varint(r), cnt = rd_varint(r);
        if (r->bad || owner >= g->ncons ||
            (g->npel > 0 && id_cmp(g->pel[g->npel - 1].id, id) >= 0)) {
            return 0;
        }
        struct xnack *nk = pel_insert(x, g, id);
        nack_own(nk, g->cons[owner]);
        nk->time_ms = t;
        nk->count = cnt;
    }
    return 1;
}

struct xobj *store__xobj_decode(struct rd *r, uint64_t seed)
{
    struct xobj *x = store__xobj_new();
    x->last = rd_id(r);
    x->max_deleted = rd_id(r);
    x->entries_added = rd_varint(r);
    x->tail_node = rd_varint(r);
    x->tail_fill = rd_varint(r);
    int ok = !r->bad && decode_entries(r, x);
    uint64_t ngroups = ok ? rd_varint(r) : 0;
    ok = ok && !r->bad && ngroups <= r->len - r->off;
    for (uint64_t i = 0; ok && i < ngroups; i++) {
        ok = decode_group(r, x, seed);
    }
    if (!ok || r->bad || x->entries_added < x->count) {
        r->bad = 1;
        store__xobj_free(x);
        return NULL;
    }
    return x;
}
