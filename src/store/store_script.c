/*
 * store_script.c - the Lua script cache and the script ops (store.h, "Lua scripts").
 *
 * The cache maps a script's SHA-1 (40 lower-case hex digits) to its body. It is replicated
 * state: it changes only through STORE_OP_EVAL (a body that compiles is cached),
 * STORE_OP_SCRIPT_LOAD and STORE_OP_SCRIPT_FLUSH, and it travels in snapshots (version 7), so
 * every replica answers EVALSHA and SCRIPT EXISTS alike. A script itself runs through the
 * runner the node registered (store_set_script_runner): the store knows no Lua.
 */
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

/* Caches body under its SHA-1 (written to sha_out). Returns 0 when the cache is full. */
static int scripts_add(struct store_scripts **tp, const uint8_t *body, size_t len,
                       char sha_out[HY_SHA1_HEX_LEN + 1])
{
    hy_sha1_hex(body, len, sha_out);
    if (*tp == NULL) {
        *tp = hy_xcalloc(1, sizeof(**tp));
    }
    struct store_scripts *t = *tp;
    int found;
    size_t i = script_search(t, sha_out, &found);
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
    memcpy(sc->sha, sha_out, sizeof(sc->sha));
    sc->body = hy_xmalloc(len > 0 ? len : 1);
    if (len > 0) {
        memcpy(sc->body, body, len);
    }
    sc->len = len;
    t->count++;
    t->bytes += len;
    return 1;
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
    if (e->argc < 3 || e->argv[0].len != 16 || e->argv[2].len != 4) {
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
    s->script_depth++;
    int compiled = s->script_run(s->script_run_ctx, s, e, w);
    s->script_depth--;
    if (compiled) {
        char sha[HY_SHA1_HEX_LEN + 1];
        (void)scripts_add(&s->scripts, e->argv[1].ptr, e->argv[1].len, sha);
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

static void put_varint(struct hy_buf *out, uint64_t v)
{
    uint8_t tmp[VARINT_MAX];
    hy_buf_append(out, tmp, varint_put(tmp, v));
}

void store__scripts_encode(const struct store *s, struct hy_buf *out)
{
    size_t n = store_script_count(s);
    put_varint(out, n);
    for (size_t i = 0; i < n; i++) {
        put_varint(out, s->scripts->v[i].len);
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
