/*
 * cmd_keys.c - commands on keys whatever their type: existence, deletion, renaming, expiry,
 * iteration (KEYS, SCAN), DBSIZE and FLUSHALL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"

void cmd_del(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_DEL, 0, 0, -1, x->argc - 1);
}

/* Key argv[i] without touching its LRU clock: EXISTS, TYPE, TTL and OBJECT leave a key's idle
 * time alone, as Redis's LOOKUP_NOTOUCH does (keyspace hits and misses are not counted). */
static const struct store_obj *peek(struct cmd_ctx *x, size_t i)
{
    return store_peek(x->store, x->argv[i].ptr, x->argv[i].len, x->now_ms);
}

void cmd_exists(struct cmd_ctx *x)
{
    int64_t count = 0;
    for (size_t i = 1; i < x->argc; i++) {
        count += peek(x, i) != NULL;
    }
    resp_write_int(&x->w, count);
}

/* TOUCH counts the keys that exist and, as any read, resets their idle time. */
void cmd_touch(struct cmd_ctx *x)
{
    int64_t count = 0;
    for (size_t i = 1; i < x->argc; i++) {
        count += node_lookup(x, i) != NULL;
    }
    resp_write_int(&x->w, count);
}

/* RANDOMKEY: with partitions, one drawn with weight its key count, then a key of it (the
 * metadata group holds no user key); partitions held elsewhere are asked (scatter.c). */
void cmd_randomkey(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    if (parts > 1 && node_scatter_randomkey(x)) {
        return;
    }
    uint64_t total = 0;
    for (size_t p = 0; p < parts; p++) {
        total += store_key_count(groups[p]->store);
    }
    size_t start = 0;
    if (total > 0) {
        uint64_t at = hy_prng_below(&n->prng, total);
        while (start + 1 < parts && at >= store_key_count(groups[start]->store)) {
            at -= store_key_count(groups[start]->store);
            start++;
        }
    }
    for (size_t k = 0; k < parts && total > 0; k++) {
        const uint8_t *key;
        size_t klen;
        if (store_random_key(groups[(start + k) % parts]->store, x->now_ms, &key, &klen)) {
            resp_write_bulk(&x->w, key, klen);
            return;
        }
    }
    resp_write_null(&x->w);
}

/* HY.RANDOMKEYPART slot: [key count, a random key or null] of the partition holding the slot. */
void cmd_hy_randomkeypart(struct cmd_ctx *x)
{
    const uint8_t *key;
    size_t klen;
    resp_write_array(&x->w, 2);
    resp_write_int(&x->w, (int64_t)store_key_count(x->store));
    if (store_random_key(x->store, x->now_ms, &key, &klen)) {
        resp_write_bulk(&x->w, key, klen);
    } else {
        resp_write_null(&x->w);
    }
}

/* COPY source destination [DB 0] [REPLACE]: only database 0 exists. */
void cmd_copy(struct cmd_ctx *x)
{
    uint32_t flags = 0;
    for (size_t i = 3; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        if (node_arg_is(a, "REPLACE")) {
            flags |= STORE_F_REPLACE;
        } else if (node_arg_is(a, "DB") && i + 1 < x->argc) {
            int64_t db;
            if (!node_arg_i64(x, ++i, &db)) {
                return;
            }
            if (db != 0) {
                resp_write_error(&x->w, "ERR DB index is out of range");
                return;
            }
        } else {
            node_reply_syntax_error(x);
            return;
        }
    }
    if (x->argv[1].len == x->argv[2].len &&
        memcmp(x->argv[1].ptr, x->argv[2].ptr, x->argv[1].len) == 0) {
        resp_write_error(&x->w, "ERR source and destination objects are the same");
        return;
    }
    node_propose_argv(x, STORE_OP_COPY, flags, 0, -1, 2);
}

static const char *const type_names[] = {
    [STORE_STRING] = "string", [STORE_HASH] = "hash", [STORE_LIST] = "list",
    [STORE_SET] = "set",       [STORE_ZSET] = "zset", [STORE_STREAM] = "stream",
};

static const char *type_name(const struct store_obj *o)
{
    return o == NULL ? "none" : type_names[store_obj_type(o)];
}

int node_type_parse(const struct resp_arg *a)
{
    for (size_t t = STORE_STRING; t < HY_ARRAY_LEN(type_names); t++) {
        if (node_arg_is(a, type_names[t])) {
            return (int)t;
        }
    }
    return -1;
}

void cmd_type(struct cmd_ctx *x)
{
    resp_write_simple(&x->w, type_name(peek(x, 1)));
}

/* What Redis 7.0 would answer for the value (tools and tests read it); halyard's own layout
 * differs (docs/protocol.md), but small and large values map to the names Redis gives them. */
static const char *encoding_name(const struct store_obj *o)
{
    switch (store_obj_type(o)) {
    case STORE_STRING: {
        const uint8_t *p;
        size_t len;
        int64_t v;
        store_obj_string(o, &p, &len);
        if (len <= 20 && hy_parse_i64(p, len, &v)) {
            return "int";
        }
        /* Redis creates a HyperLogLog as a raw string whatever its size: a value with the
         * HLL header (magic "HYLL", 16 bytes) is taken for one. */
        if (len >= 16 && memcmp(p, "HYLL", 4) == 0) {
            return "raw";
        }
        return len <= 44 ? "embstr" : "raw";
    }
    case STORE_HASH: return store_obj_compact(o) ? "listpack" : "hashtable";
    case STORE_LIST: return "quicklist"; /* Redis 7.0's only list encoding */
    case STORE_SET: return store_set_intset(o) ? "intset" : "hashtable";
    case STORE_ZSET: return store_obj_compact(o) ? "listpack" : "skiplist";
    case STORE_STREAM: return "stream";
    }
    return "unknown";
}

void cmd_object(struct cmd_ctx *x)
{
    static const char *const help[] = {
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "FREQ <key>",
        "IDLETIME <key>",
        "REFCOUNT <key>",
    };
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "HELP") && x->argc == 2) {
        node_reply_help(x, help, HY_ARRAY_LEN(help));
        return;
    }
    if (x->argc != 3 || !(node_arg_is(sub, "ENCODING") || node_arg_is(sub, "REFCOUNT") ||
                          node_arg_is(sub, "IDLETIME") || node_arg_is(sub, "FREQ"))) {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                          "Try OBJECT HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
        return;
    }
    const struct store_obj *o = peek(x, 2);
    if (o == NULL) {
        resp_write_null(&x->w);
    } else if (node_arg_is(sub, "REFCOUNT")) {
        resp_write_int(&x->w, 1);
    } else if (node_arg_is(sub, "IDLETIME")) {
        resp_write_int(&x->w, (int64_t)(store_obj_idle_ms(o, x->now_ms) / 1000));
    } else if (node_arg_is(sub, "FREQ")) {
        /* halyard's eviction is LRU only (no LFU policy), so there is no frequency. */
        resp_write_error(&x->w, "ERR An LFU maxmemory policy is not selected, access frequency "
                                "not tracked. Please note that when switching between policies "
                                "at runtime LRU and LFU data will take some time to adjust.");
    } else {
        resp_write_bulk_str(&x->w, encoding_name(o));
    }
}

/* MEMORY USAGE key [SAMPLES n]: the bytes the key holds, as maxmemory counts them (every
 * element is counted: SAMPLES is accepted and ignored). */
void cmd_memory(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (!node_arg_is(sub, "USAGE") || (x->argc != 3 && x->argc != 5)) {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                          "Try MEMORY HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
        return;
    }
    int64_t samples;
    if (x->argc == 5 && !node_arg_is(&x->argv[3], "SAMPLES")) {
        node_reply_syntax_error(x);
        return;
    }
    if (x->argc == 5 && !node_arg_i64(x, 4, &samples)) {
        return;
    }
    const struct store_obj *o = node_lookup(x, 2);
    if (o == NULL) {
        resp_write_null(&x->w);
    } else {
        resp_write_int(&x->w, (int64_t)store_obj_bytes(o));
    }
}

void cmd_rename(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_RENAME, 0, 0, -1, 2);
}

void cmd_renamenx(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_RENAME, STORE_F_NX, 0, -1, 2);
}

/* Parses EXPIRE's NX|XX|GT|LT options with Redis's error texts; 0 = replied. */
static int parse_expire_flags(struct cmd_ctx *x, uint32_t *flags)
{
    for (size_t i = 3; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        if (node_arg_is(a, "NX")) {
            *flags |= STORE_F_NX;
        } else if (node_arg_is(a, "XX")) {
            *flags |= STORE_F_XX;
        } else if (node_arg_is(a, "GT")) {
            *flags |= STORE_F_GT;
        } else if (node_arg_is(a, "LT")) {
            *flags |= STORE_F_LT;
        } else {
            resp_write_errorf(&x->w, "ERR Unsupported option %.*s", (int)HY_MIN(a->len, 128),
                              (const char *)a->ptr);
            return 0;
        }
    }
    if ((*flags & STORE_F_NX) && (*flags & (STORE_F_XX | STORE_F_GT | STORE_F_LT))) {
        resp_write_error(&x->w,
                         "ERR NX and XX, GT or LT options at the same time are not compatible");
        return 0;
    }
    if ((*flags & STORE_F_GT) && (*flags & STORE_F_LT)) {
        resp_write_error(&x->w, "ERR GT and LT options at the same time are not compatible");
        return 0;
    }
    return 1;
}

static void expire_generic(struct cmd_ctx *x, int64_t unit_ms, int relative)
{
    uint32_t flags = 0;
    int64_t v, expire_at;
    if (!parse_expire_flags(x, &flags) || !node_arg_i64(x, 2, &v)) {
        return;
    }
    if (!node_expire_abs(v, unit_ms, relative ? (int64_t)x->now_ms : 0, &expire_at)) {
        resp_write_errorf(&x->w, "ERR invalid expire time in '%s' command", x->cmd->name);
        return;
    }
    node_propose_argv(x, STORE_OP_EXPIRE, flags, 0, expire_at, 1);
}

void cmd_expire(struct cmd_ctx *x)
{
    expire_generic(x, 1000, 1);
}

void cmd_pexpire(struct cmd_ctx *x)
{
    expire_generic(x, 1, 1);
}

void cmd_expireat(struct cmd_ctx *x)
{
    expire_generic(x, 1000, 0);
}

void cmd_pexpireat(struct cmd_ctx *x)
{
    expire_generic(x, 1, 0);
}

void cmd_persist(struct cmd_ctx *x)
{
    node_propose_argv(x, STORE_OP_PERSIST, 0, 0, -1, 1);
}

/* TTL family: -2 when missing, -1 without expiry, else the remaining time (or, `absolute`,
 * the expiry time) in unit_ms. */
static void ttl_generic(struct cmd_ctx *x, int absolute, int64_t unit_ms)
{
    const struct store_obj *o = peek(x, 1);
    if (o == NULL) {
        resp_write_int(&x->w, -2);
        return;
    }
    int64_t at = store_obj_expire_at(o);
    if (at < 0) {
        resp_write_int(&x->w, -1);
        return;
    }
    /* Seconds are rounded to the nearest, as Redis does for TTL and EXPIRETIME alike. */
    int64_t ms = absolute ? at : HY_MAX(at - (int64_t)x->now_ms, 0);
    resp_write_int(&x->w, unit_ms == 1 ? ms : (ms + 500) / 1000);
}

void cmd_ttl(struct cmd_ctx *x)
{
    ttl_generic(x, 0, 1000);
}

void cmd_pttl(struct cmd_ctx *x)
{
    ttl_generic(x, 0, 1);
}

void cmd_expiretime(struct cmd_ctx *x)
{
    ttl_generic(x, 1, 1000);
}

void cmd_pexpiretime(struct cmd_ctx *x)
{
    ttl_generic(x, 1, 1);
}

size_t node_key_count(const struct hy_node *n, size_t *volatile_out)
{
    struct node_group *const *groups;
    size_t count = node_data_groups(n, &groups), keys = 0, vol = 0;
    for (size_t i = 0; i < count; i++) {
        keys += store_key_count(groups[i]->store);
        vol += store_volatile_count(groups[i]->store);
    }
    if (volatile_out != NULL) {
        *volatile_out = vol;
    }
    return keys;
}

void cmd_dbsize(struct cmd_ctx *x)
{
    if (node_scatter_keyspace(x, 0)) {
        return; /* partitions held elsewhere: asked of their leaders (scatter.c) */
    }
    /* With partitions: this node's replicas of every partition (docs/partitioning.md). */
    resp_write_int(&x->w, (int64_t)node_key_count(x->node, NULL));
}

void cmd_flushall(struct cmd_ctx *x)
{
    if (x->argc > 2 ||
        (x->argc == 2 && !node_arg_is(&x->argv[1], "ASYNC") && !node_arg_is(&x->argv[1], "SYNC"))) {
        node_reply_syntax_error(x);
        return;
    }
    if (node_scatter_flush(x)) {
        return; /* with partitions: one entry in each, answered once all are (scatter.c) */
    }
    struct store_entry e = {.op = STORE_OP_FLUSHALL, .time_ms = x->now_ms, .expire_at_ms = -1};
    node_propose(x, &e);
}

/* ---- iteration ------------------------------------------------------------------------------- */

/* A growing list of borrowed key slices, valid until the next store_apply. */
struct key_list {
    struct resp_arg *items;
    size_t count, cap;
    const struct scan_opts *opts;
};

static void key_list_push(struct key_list *l, const uint8_t *p, size_t len)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = hy_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->count].ptr = p;
    l->items[l->count].len = len;
    l->count++;
}

int node_scan_match(const struct scan_opts *o, const uint8_t *p, size_t len)
{
    return o->match == NULL || hy_glob_match(o->match->ptr, o->match->len, p, len, 0);
}

static void collect_key_cb(void *ctx, const uint8_t *key, size_t klen, const struct store_obj *o)
{
    struct key_list *l = ctx;
    if (l->opts->type != 0 && (l->opts->type < 0 || (int)store_obj_type(o) != l->opts->type)) {
        return;
    }
    if (node_scan_match(l->opts, key, klen)) {
        key_list_push(l, key, klen);
    }
}

/* HY.KEYSPART slot pattern: KEYS in one partition (its store), for KEYS across partitions
 * held elsewhere (scatter.c). */
void cmd_hy_keyspart(struct cmd_ctx *x)
{
    struct scan_opts opts = {.match = &x->argv[2], .count = 0, .type = 0};
    struct key_list l = {.opts = &opts};
    if (x->argv[2].len == 1 && x->argv[2].ptr[0] == '*') {
        opts.match = NULL;
    }
    uint64_t cursor = 0;
    do {
        cursor = store_scan(x->store, cursor, 1024, x->now_ms, collect_key_cb, &l);
    } while (cursor != 0);
    resp_write_array(&x->w, l.count);
    for (size_t i = 0; i < l.count; i++) {
        resp_write_bulk(&x->w, l.items[i].ptr, l.items[i].len);
    }
    hy_free(l.items);
}

void cmd_keys(struct cmd_ctx *x)
{
    if (node_scatter_keyspace(x, 1)) {
        return; /* partitions held elsewhere: asked of their leaders (scatter.c) */
    }
    struct scan_opts opts = {.match = &x->argv[1], .count = 0, .type = 0};
    struct key_list l = {.opts = &opts};
    if (x->argv[1].len == 1 && x->argv[1].ptr[0] == '*') {
        opts.match = NULL; /* the common KEYS *: skip matching */
    }
    struct node_group *const *groups;
    size_t count = node_data_groups(x->node, &groups);
    for (size_t i = 0; i < count; i++) {
        uint64_t cursor = 0;
        do {
            cursor = store_scan(groups[i]->store, cursor, 1024, x->now_ms, collect_key_cb, &l);
        } while (cursor != 0);
    }
    resp_write_array(&x->w, l.count);
    for (size_t i = 0; i < l.count; i++) {
        resp_write_bulk(&x->w, l.items[i].ptr, l.items[i].len);
    }
    hy_free(l.items);
}

void node_write_cursor(struct resp_writer *w, uint64_t cursor)
{
    char cur[24];
    int len = snprintf(cur, sizeof(cur), "%llu", (unsigned long long)cursor);
    resp_write_bulk(w, cur, (size_t)len);
}

int node_parse_cursor(struct cmd_ctx *x, size_t i, uint64_t *out)
{
    const struct resp_arg *a = &x->argv[i];
    uint64_t v = 0;
    if (a->len == 0 || a->len > 20) {
        resp_write_error(&x->w, "ERR invalid cursor");
        return 0;
    }
    for (size_t k = 0; k < a->len; k++) {
        if (a->ptr[k] < '0' || a->ptr[k] > '9' || v > (UINT64_MAX - 9) / 10) {
            resp_write_error(&x->w, "ERR invalid cursor");
            return 0;
        }
        v = v * 10 + (uint64_t)(a->ptr[k] - '0');
    }
    *out = v;
    return 1;
}

int node_parse_scan_opts(struct cmd_ctx *x, size_t first, int allow_type, struct scan_opts *o)
{
    o->match = NULL;
    o->count = 10;
    o->type = 0;
    for (size_t i = first; i < x->argc; i += 2) {
        const struct resp_arg *a = &x->argv[i];
        if (i + 1 >= x->argc) {
            node_reply_syntax_error(x);
            return 0;
        }
        if (node_arg_is(a, "MATCH")) {
            o->match = &x->argv[i + 1];
        } else if (node_arg_is(a, "COUNT")) {
            if (!node_arg_i64(x, i + 1, &o->count)) {
                return 0;
            }
            if (o->count < 1) {
                node_reply_syntax_error(x);
                return 0;
            }
        } else if (allow_type && node_arg_is(a, "TYPE")) {
            const struct resp_arg *t = &x->argv[i + 1];
            o->type = node_type_parse(t);
        } else {
            node_reply_syntax_error(x);
            return 0;
        }
    }
    return 1;
}

/* [cursor, keys] and l freed: SCAN's reply. */
static void scan_reply(struct cmd_ctx *x, uint64_t cursor, struct key_list *l)
{
    resp_write_array(&x->w, 2);
    node_write_cursor(&x->w, cursor);
    resp_write_array(&x->w, l->count);
    for (size_t i = 0; i < l->count; i++) {
        resp_write_bulk(&x->w, l->items[i].ptr, l->items[i].len);
    }
    hy_free(l->items);
}

void cmd_scan(struct cmd_ctx *x)
{
    uint64_t cursor;
    struct scan_opts opts;
    if (!node_parse_cursor(x, 1, &cursor) || !node_parse_scan_opts(x, 2, 1, &opts)) {
        return;
    }
    struct key_list l = {.opts = &opts};
    /* With partitions the cursor names the partition too: its low bits (SCAN_PART_BITS) are
     * the partition, the rest that partition's own cursor; a partition done moves it to the
     * next one's start. */
    struct node_group *const *groups;
    size_t parts = node_data_groups(x->node, &groups);
    uint64_t part = parts > 1 ? cursor % NODE_SCAN_PARTS : 0;
    uint64_t inner = parts > 1 ? cursor / NODE_SCAN_PARTS : cursor;
    if (part >= parts) {
        part = parts; /* a cursor no SCAN gave: nothing more */
        inner = 0;
    }
    /* As Redis: visit about COUNT buckets' worth, up to ten rounds when filters drop keys. */
    int rounds = 0;
    while (part < parts) {
        if (!node_scatter_reads_here(x, groups[part]) && !x->client->is_proxy) {
            /* Held on other members (a replication factor below the member count): this step
             * runs there, unless keys were found here already (the next call goes there). */
            if (l.count > 0) {
                break;
            }
            (void)node_scatter_scan(x, part, inner); /* answers, now or once it is done */
            hy_free(l.items);
            return;
        }
        inner = store_scan(groups[part]->store, inner, (size_t)HY_MIN(opts.count, 1 << 20),
                           x->now_ms, collect_key_cb, &l);
        if (inner == 0) {
            part++;
        }
        if (l.count >= (size_t)opts.count || ++rounds >= 10) {
            break;
        }
    }
    if (parts <= 1) {
        cursor = inner;
    } else {
        cursor = part >= parts ? 0 : inner * NODE_SCAN_PARTS + part;
    }
    scan_reply(x, cursor, &l);
}

/* HY.SCANPART slot cursor [MATCH m] [COUNT c] [TYPE t]: one SCAN step in the partition that
 * holds the slot, with that partition's own cursor (SCAN of a partition held elsewhere). */
void cmd_hy_scanpart(struct cmd_ctx *x)
{
    uint64_t cursor;
    struct scan_opts opts;
    if (!node_parse_cursor(x, 2, &cursor) || !node_parse_scan_opts(x, 3, 1, &opts)) {
        return;
    }
    struct key_list l = {.opts = &opts};
    int rounds = 0;
    do {
        cursor = store_scan(x->store, cursor, (size_t)HY_MIN(opts.count, 1 << 20), x->now_ms,
                            collect_key_cb, &l);
    } while (cursor != 0 && l.count < (size_t)opts.count && ++rounds < 10);
    scan_reply(x, cursor, &l);
}

/* SORT is proposed whether or not it STOREs: it is a write command, so it must read after
 * this client's pending writes, and with STORE its result is computed at apply, in log order.
 * Options are checked here first so that their errors cost no log entry. */
void cmd_sort(struct cmd_ctx *x)
{
    struct store_arg *args = hy_xmalloc(x->argc * sizeof(*args));
    for (size_t i = 2; i < x->argc; i++) {
        args[i - 2] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
    }
    struct store_sort_opts o;
    const char *err = NULL;
    if (!store_sort_parse(args, x->argc - 2, 0, &o, &err)) {
        resp_write_error(&x->w, err);
    } else {
        store_sort_opts_free(&o);
        node_propose_argv(x, STORE_OP_SORT, 0, 0, -1, x->argc - 1);
    }
    hy_free(args);
}

void cmd_sort_ro(struct cmd_ctx *x)
{
    struct store_arg *args = hy_xmalloc(x->argc * sizeof(*args));
    for (size_t i = 2; i < x->argc; i++) {
        args[i - 2] = (struct store_arg){x->argv[i].ptr, x->argv[i].len};
    }
    struct store_sort_opts o;
    struct store_sort_result r;
    const char *err = NULL;
    if (!store_sort_parse(args, x->argc - 2, 1, &o, &err)) {
        resp_write_error(&x->w, err);
    } else {
        if (store_sort_run(x->store, x->now_ms, x->argv[1].ptr, x->argv[1].len, &o, &r, &err)) {
            store_sort_reply(&r, &x->w);
        } else {
            resp_write_error(&x->w, err);
        }
        store_sort_result_free(&r);
        store_sort_opts_free(&o);
    }
    hy_free(args);
}
