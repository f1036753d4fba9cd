/*
 * store_notify.c - keyspace notifications: which events an applied entry reports.
 *
 * One table says, per op, the class and event name Redis 7.0 notifies for the command, the
 * keys it concerns and whether it fires on any success or only when the op did something.
 * Whether it did is read from the op's reply (a positive count, OK, a value, a non-empty
 * array), which every replica computes the same way, so every replica reports the same events.
 * Around the op, the keys' existence before and after gives Redis's generic "new" (a key
 * created) and "del" (a collection emptied, a key deleted) events; expiry and eviction
 * deletions report "expired" and "evicted" where they happen (store.c, store_apply.c).
 */
#include <string.h>

#include "common/assert.h"
#include "store/store.h"
#include "store/store_int.h"

enum when { W_OK = 0, W_TRUE = 1 };
enum shape {
    SH_NONE = 0, /* no event */
    SH_KEY,      /* the event on argv[0] */
    SH_MSET,     /* the event on every even argument */
    SH_DEL,      /* "del" on every key that existed and does no more */
    SH_MOVE,     /* ev (ev_right with RIGHT) on argv[0], ev2 (ev2_right with DST_RIGHT) argv[1] */
    SH_RENAME,   /* "rename_from" on argv[0], "rename_to" on argv[1] */
    SH_COPY,     /* the event on argv[1] */
    SH_STORE,    /* the event on argv[0] when it exists after, else "del" if it existed */
    SH_MPOP,     /* the event on the first key that existed (the one LMPOP/ZMPOP popped) */
    SH_GETEX,    /* "expire" or "persist", by the entry's expiry and flags */
    SH_SELF,     /* the op announces its own events (streams); here only "new" */
};

struct rule {
    uint16_t cls;
    uint8_t shape, when;
    const char *ev, *ev_right; /* ev_right: with STORE_F_RIGHT (or by incr for kinds) */
    const char *ev2, *ev2_right;
};

#define G   STORE_NOTIFY_GENERIC
#define STR STORE_NOTIFY_STRING
#define L   STORE_NOTIFY_LIST
#define SE  STORE_NOTIFY_SET
#define H   STORE_NOTIFY_HASH
#define Z   STORE_NOTIFY_ZSET

static const struct rule rules[STORE_OP_COUNT] = {
    [STORE_OP_SET] = {STR, SH_KEY, W_TRUE, "set", NULL, NULL, NULL},
    [STORE_OP_MSET] = {STR, SH_MSET, W_TRUE, "set", NULL, NULL, NULL},
    [STORE_OP_DEL] = {G, SH_DEL, W_TRUE, "del", NULL, NULL, NULL},
    [STORE_OP_EXPIRE] = {G, SH_KEY, W_TRUE, "expire", NULL, NULL, NULL},
    [STORE_OP_PERSIST] = {G, SH_KEY, W_TRUE, "persist", NULL, NULL, NULL},
    [STORE_OP_RENAME] = {G, SH_RENAME, W_TRUE, "rename_from", NULL, "rename_to", NULL},
    [STORE_OP_INCRBY] = {STR, SH_KEY, W_OK, "incrby", NULL, NULL, NULL},
    [STORE_OP_INCRBYFLOAT] = {STR, SH_KEY, W_OK, "incrbyfloat", NULL, NULL, NULL},
    [STORE_OP_APPEND] = {STR, SH_KEY, W_OK, "append", NULL, NULL, NULL},
    [STORE_OP_SETRANGE] = {STR, SH_KEY, W_OK, "setrange", NULL, NULL, NULL},
    [STORE_OP_GETDEL] = {G, SH_DEL, W_TRUE, "del", NULL, NULL, NULL},
    [STORE_OP_GETEX] = {G, SH_GETEX, W_TRUE, "expire", NULL, "persist", NULL},
    [STORE_OP_HSET] = {H, SH_KEY, W_OK, "hset", NULL, NULL, NULL},
    [STORE_OP_HSETNX] = {H, SH_KEY, W_TRUE, "hset", NULL, NULL, NULL},
    [STORE_OP_HDEL] = {H, SH_KEY, W_TRUE, "hdel", NULL, NULL, NULL},
    [STORE_OP_HINCRBY] = {H, SH_KEY, W_OK, "hincrby", NULL, NULL, NULL},
    [STORE_OP_HINCRBYFLOAT] = {H, SH_KEY, W_OK, "hincrbyfloat", NULL, NULL, NULL},
    [STORE_OP_PUSH] = {L, SH_KEY, W_TRUE, "lpush", "rpush", NULL, NULL},
    [STORE_OP_POP] = {L, SH_KEY, W_TRUE, "lpop", "rpop", NULL, NULL},
    [STORE_OP_LSET] = {L, SH_KEY, W_OK, "lset", NULL, NULL, NULL},
    [STORE_OP_LINSERT] = {L, SH_KEY, W_TRUE, "linsert", NULL, NULL, NULL},
    [STORE_OP_LREM] = {L, SH_KEY, W_TRUE, "lrem", NULL, NULL, NULL},
    [STORE_OP_LTRIM] = {L, SH_KEY, W_OK, "ltrim", NULL, NULL, NULL},
    [STORE_OP_LMOVE] = {L, SH_MOVE, W_TRUE, "lpop", "rpop", "lpush", "rpush"},
    [STORE_OP_LMPOP] = {L, SH_MPOP, W_TRUE, "lpop", "rpop", NULL, NULL},
    [STORE_OP_SADD] = {SE, SH_KEY, W_TRUE, "sadd", NULL, NULL, NULL},
    [STORE_OP_SREM] = {SE, SH_KEY, W_TRUE, "srem", NULL, NULL, NULL},
    [STORE_OP_SMOVE] = {SE, SH_MOVE, W_TRUE, "srem", NULL, "sadd", NULL},
    [STORE_OP_SPOP] = {SE, SH_KEY, W_TRUE, "spop", NULL, NULL, NULL},
    [STORE_OP_SSTORE] = {SE, SH_STORE, W_OK, "sinterstore", NULL, NULL, NULL},
    [STORE_OP_ZADD] = {Z, SH_KEY, W_TRUE, "zadd", NULL, NULL, NULL},
    [STORE_OP_ZREM] = {Z, SH_KEY, W_TRUE, "zrem", NULL, NULL, NULL},
    [STORE_OP_ZPOP] = {Z, SH_KEY, W_TRUE, "zpopmin", "zpopmax", NULL, NULL},
    [STORE_OP_ZMPOP] = {Z, SH_MPOP, W_TRUE, "zpopmin", "zpopmax", NULL, NULL},
    [STORE_OP_ZREMRANGE] = {Z, SH_KEY, W_TRUE, "zremrangebyrank", NULL, NULL, NULL},
    [STORE_OP_ZSTORE] = {Z, SH_STORE, W_OK, "zunionstore", NULL, NULL, NULL},
    [STORE_OP_ZRANGESTORE] = {Z, SH_STORE, W_OK, "zrangestore", NULL, NULL, NULL},
    [STORE_OP_SETBIT] = {STR, SH_KEY, W_OK, "setbit", NULL, NULL, NULL},
    [STORE_OP_BITOP] = {STR, SH_STORE, W_OK, "set", NULL, NULL, NULL},
    [STORE_OP_BITFIELD] = {STR, SH_KEY, W_OK, "setbit", NULL, NULL, NULL},
    [STORE_OP_COPY] = {G, SH_COPY, W_TRUE, "copy_to", NULL, NULL, NULL},
    [STORE_OP_PFADD] = {STR, SH_KEY, W_TRUE, "pfadd", NULL, NULL, NULL},
    [STORE_OP_PFMERGE] = {STR, SH_KEY, W_OK, "pfadd", NULL, NULL, NULL},
    [STORE_OP_RESTORE] = {G, SH_KEY, W_OK, "restore", NULL, NULL, NULL},
    [STORE_OP_XADD] = {G, SH_SELF, W_OK, NULL, NULL, NULL, NULL},
    [STORE_OP_XGROUP] = {G, SH_SELF, W_OK, NULL, NULL, NULL, NULL},
};

/* The event names of ops whose kind is in entry.incr. */
static const char *const setstore_ev[] = {"sinterstore", "sunionstore", "sdiffstore"};
static const char *const zstore_ev[] = {"zunionstore", "zinterstore", "zdiffstore"};
static const char *const zremrange_ev[] = {"zremrangebyrank", "zremrangebyscore", "zremrangebylex"};

void store_set_notify(struct store *s, store_notify_fn fn, void *ctx)
{
    s->notify_fn = fn;
    s->notify_ctx = ctx;
}

void store__notify(struct store *s, unsigned cls, const char *event, const uint8_t *k, size_t klen)
{
    if (s->notify_fn != NULL && (s->cfg.notify_classes & cls) != 0) {
        s->notify_fn(s->notify_ctx, cls, event, k, klen);
    }
}

int store__notify_wanted(const struct store *s, const struct store_entry *e)
{
    return s->notify_fn != NULL && s->cfg.notify_classes != 0 && rules[e->op].shape != SH_NONE;
}

static int alive(const struct store *s, const struct store_arg *a, uint64_t time_ms)
{
    const struct store_obj *o = (const struct store_obj *)htab_find(&s->keys, a->ptr, a->len);
    return o != NULL && (store__expire(o) < 0 || (uint64_t)store__expire(o) > time_ms);
}

void store__notify_before(const struct store *s, const struct store_entry *e,
                          struct store_notify_pre *pre)
{
    for (uint32_t i = 0; i < e->argc && i < STORE_NOTIFY_KEYS_MAX; i++) {
        pre->existed[i] = (uint8_t)alive(s, &e->argv[i], e->time_ms);
    }
}

/* Whether the reply says the op did something: not an error, not null, not 0, not empty. */
static int reply_true(const uint8_t *r, size_t len, int *error_out)
{
    *error_out = len > 0 && r[0] == '-';
    if (len == 0 || r[0] == '-' || r[0] == '_') {
        return 0;
    }
    if (len >= 3 && (r[0] == '$' || r[0] == '*' || r[0] == ':') && r[1] == '-') {
        return 0; /* null bulk, null array; a negative count (LINSERT's -1) */
    }
    if (len >= 2 && (r[0] == ':' || r[0] == '*') && r[1] == '0' && r[2] == '\r') {
        return 0;
    }
    return 1;
}

static void ev_key(struct store *s, unsigned cls, const char *ev, const struct store_entry *e,
                   uint32_t i)
{
    if (i < e->argc) {
        store__notify(s, cls, ev, e->argv[i].ptr, e->argv[i].len);
    }
}

/* "new" for every key the op named that did not exist and does now (before its event). */
static void notify_new(struct store *s, const struct store_entry *e,
                       const struct store_notify_pre *pre, enum shape sh)
{
    for (uint32_t i = 0; i < e->argc && i < STORE_NOTIFY_KEYS_MAX; i++) {
        int key = i == 0 || (sh == SH_MSET && i % 2 == 0) ||
                  (i == 1 && (sh == SH_MOVE || sh == SH_RENAME || sh == SH_COPY));
        if (key && !pre->existed[i] && alive(s, &e->argv[i], e->time_ms)) {
            ev_key(s, STORE_NOTIFY_NEW, "new", e, i);
        }
    }
}

static const char *kind_event(const struct store_entry *e, const struct rule *r)
{
    uint64_t k = (uint64_t)e->incr;
    switch (e->op) {
    case STORE_OP_SSTORE: return k < 3 ? setstore_ev[k] : r->ev;
    case STORE_OP_ZSTORE: return zstore_ev[(k % 4) < 3 ? k % 4 : 0];
    case STORE_OP_ZREMRANGE: return k < 3 ? zremrange_ev[k] : r->ev;
    case STORE_OP_ZADD: return (e->flags & STORE_F_INCR) ? "zincr" : r->ev;
    default: return (r->ev_right != NULL && (e->flags & STORE_F_RIGHT)) ? r->ev_right : r->ev;
    }
}

void store__notify_after(struct store *s, const struct store_entry *e,
                         const struct store_notify_pre *pre, const uint8_t *reply, size_t len)
{
    const struct rule *r = &rules[e->op];
    int error;
    int truth = reply_true(reply, len, &error);
    if (error || (r->when == W_TRUE && !truth)) {
        return;
    }
    enum shape sh = (enum shape)r->shape;
    notify_new(s, e, pre, sh);
    const char *ev = kind_event(e, r);
    int gone0 = e->argc > 0 && pre->existed[0] && !alive(s, &e->argv[0], e->time_ms);
    switch (sh) {
    case SH_NONE:
    case SH_SELF: return;
    case SH_KEY:
        if (!(e->op == STORE_OP_EXPIRE && gone0)) { /* a past time deletes: "del" only */
            ev_key(s, r->cls, ev, e, 0);
        }
        if (e->op == STORE_OP_SET && e->expire_at_ms >= 0) {
            ev_key(s, G, "expire", e, 0);
        }
        break;
    case SH_MSET:
        for (uint32_t i = 0; i < e->argc; i += 2) {
            ev_key(s, r->cls, ev, e, i);
        }
        return;
    case SH_DEL:
        for (uint32_t i = 0; i < e->argc && i < STORE_NOTIFY_KEYS_MAX; i++) {
            if (pre->existed[i] && !alive(s, &e->argv[i], e->time_ms)) {
                ev_key(s, G, "del", e, i);
            }
        }
        return;
    case SH_MOVE:
        ev_key(s, r->cls, ev, e, 0);
        ev_key(s, r->cls,
               (r->ev2_right != NULL && (e->flags & STORE_F_DST_RIGHT)) ? r->ev2_right : r->ev2, e,
               1);
        break;
    case SH_RENAME:
        ev_key(s, G, r->ev, e, 0);
        ev_key(s, G, r->ev2, e, 1);
        return;
    case SH_COPY: ev_key(s, G, r->ev, e, 1); return;
    case SH_STORE:
        if (e->argc > 0 && alive(s, &e->argv[0], e->time_ms)) {
            ev_key(s, r->cls, ev, e, 0);
        } else if (gone0) {
            ev_key(s, G, "del", e, 0);
        }
        return;
    case SH_MPOP:
        for (uint32_t i = 0; i < e->argc && i < STORE_NOTIFY_KEYS_MAX; i++) {
            if (pre->existed[i]) {
                ev_key(s, r->cls, ev, e, i);
                if (!alive(s, &e->argv[i], e->time_ms)) {
                    ev_key(s, G, "del", e, i);
                }
                break;
            }
        }
        return;
    case SH_GETEX:
        if (e->flags & STORE_F_PERSIST) {
            ev_key(s, G, "persist", e, 0);
        } else if (e->expire_at_ms >= 0) {
            ev_key(s, G, gone0 ? "del" : "expire", e, 0);
        }
        return;
    }
    if (gone0) { /* a collection emptied by the op (or a key deleted by EXPIRE's past time) */
        ev_key(s, G, "del", e, 0);
    }
}
