/*
 * store_script.c - the Lua script cache and the script ops (store.h, "Lua scripts").
 *
 * The cache maps a script's SHA-1 (40 lower-case hex digits) to its body. It is replicated
 * state: it changes only through STORE_OP_EVAL (a body that compiles is cached),
 * STORE_OP_SCRIPT_LOAD and STORE_OP_SCRIPT_FLUSH, and it travels in snapshots (version 7), so
 * every replica answers EVALSHA and SCRIPT EXISTS alike. A script itself runs through the
 * runner the node registered (store_set_script_runner): the store knows no Lua.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/sha1.h"
#include "store/store.h"
#include "store/store_int.h"

struct store_script {
    char sha[HY_SHA1_HEX_LEN + 1];
    uint8_t *body;
    size_t len;
};

struct store_scripts {
    struct store_script *v; /* sorted by sha */
    size_t count, cap;
    size_t bytes;
};

/* The index of sha in the cache, or of where it would go (with *found_out 0). */
static size_t script_search(const struct store_scripts *t, const char *sha, int *found_out)
{
    size_t lo = 0, hi = t == NULL ? 0 : t->count;
    *found_out = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(t->v[mid].sha, sha, HY_SHA1_HEX_LEN);
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
    return lo;
}

const uint8_t *store_script_find(const struct store *s, const char *sha, size_t *len_out)
{
    int found;
    size_t i = script_search(s->scripts, sha, &found);
    if (!found) {
        return NULL;
    }
    *len_out = s->scripts->v[i].len;
    return s->scripts->v[i].body;
}

size_t store_script_count(const struct store *s)
{
    return s->scripts == NULL ? 0 : s->scripts->count;
}

size_t store_script_bytes(const struct store *s)
{
    return s->scripts == NULL ? 0 : s->scripts->bytes;
}

/* Caches body under sha, its SHA-1. Returns 0 when the cache is full. */
static int scripts_add_sha(struct store_scripts **tp, const uint8_t *body, size_t len,
                           const char sha[HY_SHA1_HEX_LEN + 1])
{
    if (*tp == NULL) {
        *tp = hy_xcalloc(1, sizeof(**tp));
    }
    struct store_scripts *t = *tp;
    int found;
    size_t i = script_search(t, sha, &found);
    if (found) {
        return 1;
    }
    if (t->count >= STORE_SCRIPTS_MAX || t->bytes + len > STORE_SCRIPT_CACHE_BYTES_MAX) {
        return 0;
    }
    if (t->count == t->cap) {
        t->cap = t->cap == 0 ? 16 : t->cap * 2;
        t->v = hy_xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    memmove(&t->v[i + 1], &t->v[i], (t->count - i) * sizeof(*t->v));
    struct store_script *sc = &t->v[i];
    memcpy(sc->sha, sha, sizeof(sc->sha));
    sc->body = hy_xmalloc(len > 0 ? len : 1);
    if (len > 0) {
        memcpy(sc->body, body, len);
    }
    sc->len = len;
    t->count++;
    t->bytes += len;
    return 1;
}

/* Caches body under its SHA-1 (written to sha_out). Returns 0 when the cache is full. */
static int scripts_add(struct store_scripts **tp, const uint8_t *body, size_t len,
                       char sha_out[HY_SHA1_HEX_LEN + 1])
{
    hy_sha1_hex(body, len, sha_out);
    return scripts_add_sha(tp, body, len, sha_out);
}

static void scripts_free(struct store_scripts *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        hy_free(t->v[i].body);
    }
    hy_free(t->v);
    hy_free(t);
}

void store__scripts_free(struct store *s)
{
    scripts_free(s->scripts);
    s->scripts = NULL;
}

struct hy_prng *store_prng(struct store *s)
{
    return &s->prng;
}

void store_set_script_runner(struct store *s, store_script_run_fn fn, void *ctx)
{
    s->script_run = fn;
    s->script_run_ctx = ctx;
}

int store__eval_shape_ok(const struct store_entry *e)
{
    /* The head: seed, budget, then the caller's user (older entries end after the budget). */
    if (e->argc < 3 || e->argv[0].len < 16 || e->argv[2].len != 4) {
        return 0;
    }
    return hy_load_u32le(e->argv[2].ptr) <= e->argc - 3;
}

void store__op_eval(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    if (s->script_depth > 0) {
        if (w != NULL) {
            resp_write_error(w, "ERR This Redis command is not allowed from script");
        }
        return;
    }
    if (s->script_run == NULL) {
        if (w != NULL) {
            resp_write_error(w, "ERR scripts need the node");
        }
        return;
    }
    /* The body's SHA-1, made once here: the runner names the script with it, the cache
     * keeps the body under it. */
    char sha[HY_SHA1_HEX_LEN + 1];
    int eval = e->op == STORE_OP_EVAL;
    if (eval) {
        hy_sha1_hex(e->argv[1].ptr, e->argv[1].len, sha);
    }
    s->script_depth++;
    int compiled = s->script_run(s->script_run_ctx, s, e, eval ? sha : NULL, w);
    s->script_depth--;
    if (compiled && eval) {
        (void)scripts_add_sha(&s->scripts, e->argv[1].ptr, e->argv[1].len, sha);
    }
}

void store__op_script_load(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    char sha[HY_SHA1_HEX_LEN + 1];
    if (!scripts_add(&s->scripts, e->argv[0].ptr, e->argv[0].len, sha)) {
        if (w != NULL) {
            resp_write_error(w, "ERR the script cache is full (SCRIPT FLUSH empties it)");
        }
        return;
    }
    if (w != NULL) {
        resp_write_bulk(w, sha, HY_SHA1_HEX_LEN);
    }
}

void store__op_script_flush(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    (void)e;
    store__scripts_free(s);
    if (w != NULL) {
        resp_write_ok(w);
    }
}

/* ---- snapshot section (version 7): count, then each body ------------------------------------ */

void store__scripts_encode(const struct store *s, struct hy_buf *out)
{
    size_t n = store_script_count(s);
    varint_append(out, n);
    for (size_t i = 0; i < n; i++) {
        varint_append(out, s->scripts->v[i].len);
        hy_buf_append(out, s->scripts->v[i].body, s->scripts->v[i].len);
    }
}

int store__scripts_decode(const uint8_t *buf, size_t len, size_t *used_out,
                          struct store_scripts **out)
{
    struct rd r = {buf, len, 0, 0};
    uint64_t n = rd_varint(&r);
    if (r.bad || n > STORE_SCRIPTS_MAX || n > len) {
        return 0;
    }
    struct store_scripts *t = NULL;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        size_t blen;
        const uint8_t *body = rd_bytes(&r, &blen);
        char sha[HY_SHA1_HEX_LEN + 1];
        if (r.bad || !scripts_add(&t, body, blen, sha)) {
            r.bad = 1;
        }
    }
    if (r.bad || (t != NULL && t->count != n)) {
        scripts_free(t); /* a body named twice, or a section cut short */
        return 0;
    }
    *used_out = r.off;
    *out = t;
    return 1;
}

void store__scripts_replace(struct store *s, struct store_scripts *fresh)
{
    scripts_free(s->scripts);
    s->scripts = fresh;
}

/* ---- function libraries -------------------------------------------------------------------------
 */

struct store_libraries {
    struct store_library **v; /* sorted by name (byte order of the lower-cased name) */
    size_t count;
};

static int name_cmp_nocase(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = (unsigned char)*a, cb = (unsigned char)*b;
        ca = ca >= 'A' && ca <= 'Z' ? ca + 32 : ca;
        cb = cb >= 'A' && cb <= 'Z' ? cb + 32 : cb;
        if (ca != cb || ca == 0) {
            return ca - cb;
        }
    }
}

static void library_free(struct store_library *l)
{
    if (l == NULL) {
        return;
    }
    hy_free(l->code);
    hy_free(l->funcs);
    hy_free(l);
}

static void libraries_free(struct store_libraries *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        library_free(t->v[i]);
    }
    hy_free(t->v);
    hy_free(t);
}

void store__libraries_free(struct store *s)
{
    libraries_free(s->libraries);
    s->libraries = NULL;
}

size_t store_libraries(const struct store *s, const struct store_library *const **out)
{
    *out = s->libraries == NULL ? NULL : (const struct store_library *const *)s->libraries->v;
    return s->libraries == NULL ? 0 : s->libraries->count;
}

static long library_index(const struct store_libraries *t, const char *name)
{
    for (size_t i = 0; t != NULL && i < t->count; i++) {
        if (name_cmp_nocase(t->v[i]->name, name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

const struct store_library *store_function_find(const struct store *s, const char *name,
                                                const struct store_function **fn_out)
{
    const struct store_libraries *t = s->libraries;
    for (size_t i = 0; t != NULL && i < t->count; i++) {
        for (size_t j = 0; j < t->v[i]->nfuncs; j++) {
            if (name_cmp_nocase(t->v[i]->funcs[j].name, name) == 0) {
                *fn_out = &t->v[i]->funcs[j];
                return t->v[i];
            }
        }
    }
    return NULL;
}

static int name_ok(const uint8_t *p, size_t len)
{
    if (len == 0 || len > STORE_FUNCTION_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] == 0) {
            return 0;
        }
    }
    return 1;
}

/* Builds a library from a FUNCTION_LOAD entry's arguments; NULL when malformed. */
static struct store_library *library_from_args(const struct store_arg *a, size_t argc)
{
    if (argc < 4 || argc % 2 != 0 || !name_ok(a[1].ptr, a[1].len)) {
        return NULL;
    }
    struct store_library *l = hy_xcalloc(1, sizeof(*l));
    memcpy(l->name, a[1].ptr, a[1].len);
    l->code = hy_xmalloc(a[0].len > 0 ? a[0].len : 1);
    memcpy(l->code, a[0].ptr, a[0].len);
    l->len = a[0].len;
    l->nfuncs = (argc - 2) / 2;
    l->funcs = hy_xcalloc(l->nfuncs, sizeof(*l->funcs));
    for (size_t i = 0; i < l->nfuncs; i++) {
        const struct store_arg *n = &a[2 + 2 * i], *f = &a[3 + 2 * i];
        if (!name_ok(n->ptr, n->len) || f->len != 1) {
            library_free(l);
            return NULL;
        }
        memcpy(l->funcs[i].name, n->ptr, n->len);
        l->funcs[i].flags = f->ptr[0];
    }
    return l;
}

/* Adds l (replacing the library of its name when replace); NULL on success, else the
 * reason (l is then freed). */
static const char *libraries_add(struct store_libraries **tp, struct store_library *l, int replace,
                                 char *err, size_t errlen)
{
    if (*tp == NULL) {
        *tp = hy_xcalloc(1, sizeof(**tp));
    }
    struct store_libraries *t = *tp;
    long at = library_index(t, l->name);
    if (at >= 0 && !replace) {
        snprintf(err, errlen, "ERR Library '%s' already exists", l->name);
        library_free(l);
        return err;
    }
    for (size_t i = 0; i < t->count; i++) {
        for (size_t j = 0; (long)i != at && j < t->v[i]->nfuncs; j++) {
            for (size_t k = 0; k < l->nfuncs; k++) {
                if (name_cmp_nocase(t->v[i]->funcs[j].name, l->funcs[k].name) == 0) {
                    snprintf(err, errlen, "ERR Function %s already exists", l->funcs[k].name);
                    library_free(l);
                    return err;
                }
            }
        }
    }
    if (at >= 0) {
        library_free(t->v[at]);
        t->v[at] = l;
        return NULL;
    }
    if (t->count >= STORE_LIBRARIES_MAX) {
        library_free(l);
        return "ERR too many function libraries";
    }
    t->v = hy_xrealloc(t->v, (t->count + 1) * sizeof(*t->v));
    size_t i = t->count;
    while (i > 0 && name_cmp_nocase(t->v[i - 1]->name, l->name) > 0) {
        t->v[i] = t->v[i - 1];
        i--;
    }
    t->v[i] = l;
    t->count++;
    return NULL;
}

void store__op_function_load(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_library *l = library_from_args(e->argv, e->argc);
    char err[STORE_FUNCTION_NAME_MAX + 64];
    const char *why = l == NULL ? "ERR malformed function library" : NULL;
    char name[STORE_FUNCTION_NAME_MAX + 1];
    if (l != NULL) {
        memcpy(name, l->name, sizeof(name));
        why = libraries_add(&s->libraries, l, (e->flags & STORE_F_REPLACE) != 0, err, sizeof(err));
    }
    if (w == NULL) {
        return;
    }
    if (why != NULL) {
        resp_write_error(w, why);
    } else {
        resp_write_bulk(w, name, strlen(name));
    }
}

void store__op_function_delete(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    char name[STORE_FUNCTION_NAME_MAX + 1];
    long at = -1;
    if (name_ok(e->argv[0].ptr, e->argv[0].len)) {
        memcpy(name, e->argv[0].ptr, e->argv[0].len);
        name[e->argv[0].len] = '\0';
        at = library_index(s->libraries, name);
    }
    if (at < 0) {
        if (w != NULL) {
            resp_write_error(w, "ERR Library not found");
        }
        return;
    }
    struct store_libraries *t = s->libraries;
    library_free(t->v[at]);
    memmove(&t->v[at], &t->v[at + 1], (t->count - (size_t)at - 1) * sizeof(*t->v));
    t->count--;
    if (w != NULL) {
        resp_write_ok(w);
    }
}

void store__op_function_flush(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    (void)e;
    store__libraries_free(s);
    if (w != NULL) {
        resp_write_ok(w);
    }
}

/* FUNCTION RESTORE's groups: each is nargs (4 LE) then that many FUNCTION_LOAD arguments. */
int store__function_restore_shape_ok(const struct store_entry *e)
{
    if (e->incr < 0 || e->incr > 2) {
        return 0;
    }
    for (size_t i = 0; i < e->argc;) {
        if (e->argv[i].len != 4) {
            return 0;
        }
        uint32_t n = hy_load_u32le(e->argv[i].ptr);
        if (n < 4 || n % 2 != 0 || n > e->argc - i - 1) {
            return 0;
        }
        i += 1 + n;
    }
    return 1;
}

static struct store_library *library_clone(const struct store_library *l)
{
    struct store_library *c = hy_xmalloc(sizeof(*c));
    *c = *l;
    c->code = hy_xmalloc(l->len > 0 ? l->len : 1);
    memcpy(c->code, l->code, l->len);
    c->funcs = hy_xmalloc(HY_MAX(l->nfuncs, 1) * sizeof(*c->funcs));
    memcpy(c->funcs, l->funcs, l->nfuncs * sizeof(*c->funcs));
    return c;
}

/* Applies FUNCTION RESTORE to a copy of the libraries and installs it only when every library
 * went in: all or nothing, as Redis's (its errors name the library or function, unquoted). */
void store__op_function_restore(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_libraries *tmp = hy_xcalloc(1, sizeof(*tmp));
    const struct store_libraries *cur = s->libraries;
    for (size_t i = 0; e->incr != 2 && cur != NULL && i < cur->count; i++) {
        tmp->v = hy_xrealloc(tmp->v, (tmp->count + 1) * sizeof(*tmp->v));
        tmp->v[tmp->count++] = library_clone(cur->v[i]);
    }
    char err[STORE_FUNCTION_NAME_MAX + 64];
    const char *why = NULL;
    for (size_t i = 0; i < e->argc && why == NULL;) {
        uint32_t n = hy_load_u32le(e->argv[i].ptr);
        struct store_library *l = library_from_args(e->argv + i + 1, n);
        i += 1 + n;
        if (l == NULL) {
            why = "ERR malformed function library";
        } else if (e->incr == 0 && library_index(tmp, l->name) >= 0) {
            snprintf(err, sizeof(err), "ERR Library %s already exists", l->name);
            library_free(l);
            why = err;
        } else {
            why = libraries_add(&tmp, l, e->incr == 1, err, sizeof(err));
        }
    }
    if (why != NULL) {
        libraries_free(tmp);
        store__r_err(w, why);
        return;
    }
    libraries_free(s->libraries);
    s->libraries = tmp->count > 0 ? tmp : NULL;
    if (tmp->count == 0) {
        libraries_free(tmp);
    }
    if (w != NULL) {
        resp_write_ok(w);
    }
}

void store__op_fcall(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    store__op_eval(s, e, w); /* the runner tells the two apart by e->op */
}

int store__fcall_shape_ok(const struct store_entry *e)
{
    if (e->argc < 4 || e->argv[0].len < 16 || e->argv[3].len != 4) {
        return 0;
    }
    return hy_load_u32le(e->argv[3].ptr) <= e->argc - 4;
}

/* Snapshot: count, then per library its code, name, function count and (name, flags). */
void store__libraries_encode(const struct store *s, struct hy_buf *out)
{
    const struct store_libraries *t = s->libraries;
    size_t n = t == NULL ? 0 : t->count;
    varint_append(out, n);
    for (size_t i = 0; i < n; i++) {
        const struct store_library *l = t->v[i];
        varint_append(out, l->len);
        hy_buf_append(out, l->code, l->len);
        varint_append(out, strlen(l->name));
        hy_buf_append(out, l->name, strlen(l->name));
        varint_append(out, l->nfuncs);
        for (size_t j = 0; j < l->nfuncs; j++) {
            varint_append(out, strlen(l->funcs[j].name));
            hy_buf_append(out, l->funcs[j].name, strlen(l->funcs[j].name));
            hy_buf_append_u8(out, (uint8_t)l->funcs[j].flags);
        }
    }
}

int store__libraries_decode(const uint8_t *buf, size_t len, size_t *used_out,
                            struct store_libraries **out)
{
    struct rd r = {buf, len, 0, 0};
    uint64_t n = rd_varint(&r);
    if (r.bad || n > STORE_LIBRARIES_MAX || n > len) {
        return 0;
    }
    struct store_libraries *t = NULL;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        struct store_arg a[2];
        a[0].ptr = rd_bytes(&r, &a[0].len);
        a[1].ptr = rd_bytes(&r, &a[1].len);
        uint64_t nf = rd_varint(&r);
        if (r.bad || nf == 0 || nf > len) {
            r.bad = 1;
            break;
        }
        struct store_arg *all = hy_xmalloc((2 + 2 * nf) * sizeof(*all));
        uint8_t *flags = hy_xmalloc(nf);
        all[0] = a[0];
        all[1] = a[1];
        for (uint64_t j = 0; j < nf && !r.bad; j++) {
            all[2 + 2 * j].ptr = rd_bytes(&r, &all[2 + 2 * j].len);
            flags[j] = rd_u8(&r);
            all[3 + 2 * j] = (struct store_arg){&flags[j], 1};
        }
        struct store_library *l = r.bad ? NULL : library_from_args(all, 2 + 2 * nf);
        char err[STORE_FUNCTION_NAME_MAX + 64];
        if (l == NULL || libraries_add(&t, l, 0, err, sizeof(err)) != NULL) {
            r.bad = 1; /* malformed, or a name given twice */
        }
        hy_free(all);
        hy_free(flags);
    }
    if (r.bad) {
        libraries_free(t);
        return 0;
    }
    *used_out = r.off;
    *out = t;
    return 1;
}

void store__libraries_replace(struct store *s, struct store_libraries *fresh)
{
    libraries_free(s->libraries);
    s->libraries = fresh;
}
