/*
 * cmd_dump.c - DUMP and RESTORE: one value as a self-checking payload in Redis's RDB format
 * (store.h "DUMP payloads", docs/disk-format.md "DUMP payload"), and back. RESTORE is a log
 * entry (STORE_OP_RESTORE); its options are checked here, in Redis 7.0's order, and the
 * payload is checked and turned into halyard's own format here too, so that a corrupt one is
 * refused without a log entry and the entry carries the format apply has always read.
 */
#include <string.h>

#include "common/alloc.h"
#include "node/node_internal.h"

void cmd_dump(struct cmd_ctx *x)
{
    const struct store_obj *o = node_lookup(x, 1);
    if (o == NULL) {
        resp_write_null(&x->w);
        return;
    }
    struct hy_buf out;
    hy_buf_init(&out);
    store_dump_rdb(o, &out);
    resp_write_bulk(&x->w, out.data, out.len);
    hy_buf_free(&out);
}

struct restore_opts {
    int replace, absttl;
    int64_t idle_s; /* -1: none */
    int64_t freq;   /* -1: none (accepted and ignored: halyard evicts by LRU only) */
};

/* RESTORE's options after the payload; 0 = an error was replied. */
static int restore_parse(struct cmd_ctx *x, struct restore_opts *o)
{
    *o = (struct restore_opts){0, 0, -1, -1};
    for (size_t i = 4; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        int more = i + 1 < x->argc;
        if (node_arg_is(a, "REPLACE")) {
            o->replace = 1;
        } else if (node_arg_is(a, "ABSTTL")) {
            o->absttl = 1;
        } else if (node_arg_is(a, "IDLETIME") && more && o->freq == -1) {
            if (!node_arg_i64(x, ++i, &o->idle_s)) {
                return 0;
            }
            if (o->idle_s < 0) {
                resp_write_error(&x->w, "ERR Invalid IDLETIME value, must be >= 0");
                return 0;
            }
        } else if (node_arg_is(a, "FREQ") && more && o->idle_s == -1) {
            if (!node_arg_i64(x, ++i, &o->freq)) {
                return 0;
            }
            if (o->freq < 0 || o->freq > 255) {
                resp_write_error(&x->w, "ERR Invalid FREQ value, must be >= 0 and <= 255");
                return 0;
            }
        } else {
            node_reply_syntax_error(x);
            return 0;
        }
    }
    return 1;
}

/* RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]. */
void cmd_restore(struct cmd_ctx *x)
{
    struct restore_opts o;
    if (!restore_parse(x, &o)) {
        return;
    }
    /* Redis answers BUSYKEY before looking at the TTL or the payload; apply checks it again
     * (another write may come first). */
    if (!o.replace && store_peek(x->store, x->argv[1].ptr, x->argv[1].len, x->now_ms) != NULL) {
        resp_write_error(&x->w, "BUSYKEY Target key name already exists.");
        return;
    }
    int64_t ttl;
    if (!node_arg_i64(x, 2, &ttl)) {
        return;
    }
    if (ttl < 0) {
        resp_write_error(&x->w, "ERR Invalid TTL value, must be >= 0");
        return;
    }
    /* A Redis payload becomes halyard's own here, so that the log entry and its apply on
     * every replica stay those of halyard's format. */
    struct hy_buf own;
    hy_buf_init(&own);
    int rc = store_restore_payload(x->argv[3].ptr, x->argv[3].len, &own);
    if (rc != STORE_DUMP_OK) {
        hy_buf_free(&own);
        resp_write_error(&x->w, store_dump_error(rc));
        return;
    }
    int64_t at = -1;
    if (ttl > 0 && !node_expire_abs(ttl, 1, o.absttl ? 0 : (int64_t)x->now_ms, &at)) {
        at = INT64_MAX; /* beyond any clock: as good as no expiry, but kept as one */
    }
    int64_t idle_ms = -1;
    if (o.idle_s >= 0) {
        idle_ms = o.idle_s > INT64_MAX / 1000 ? INT64_MAX : o.idle_s * 1000;
    }
    struct store_arg args[2] = {{x->argv[1].ptr, x->argv[1].len}, {own.data, own.len}};
    struct store_entry e = {.op = STORE_OP_RESTORE,
                            .flags = o.replace ? STORE_F_REPLACE : 0,
                            .time_ms = x->now_ms,
                            .expire_at_ms = at,
                            .incr = idle_ms,
                            .argc = 2,
                            .argv = args};
    node_propose(x, &e);
    hy_buf_free(&own);
}
