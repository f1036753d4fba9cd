/*
 * cmd_session.c - HY.SESSION OPEN [ttl_ms] and HY.REQ <session> <seq> <command ...>.
 *
 * Exactly-once writes: a client opens a replicated session, then tags each write with the
 * session and a sequence number it increases per request. The write runs at most once per
 * (session, seq) whatever the retries, to any node, across failovers: a retry gets the reply
 * of the first execution (store.h, "client sessions"; the dissertation's §6.3).
 */
#include <string.h>

#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "node/node_internal.h"

#define SESSION_TTL_DEFAULT_MS 60000
#define SESSION_TTL_MAX_MS     (7 * 24 * 3600 * 1000LL)

void cmd_hy_session(struct cmd_ctx *x)
{
    int64_t ttl = SESSION_TTL_DEFAULT_MS;
    size_t argc = x->argc;
    if (argc >= 4 && node_arg_is(&x->argv[argc - 2], "SLOT")) {
        /* The partition was chosen from it (node_command_group); here it must be valid. */
        int64_t slot;
        if (!node_arg_i64(x, argc - 1, &slot)) {
            return;
        }
        if (slot < 0 || slot >= HY_SLOT_COUNT) {
            resp_write_error(&x->w, "ERR SLOT must be between 0 and 16383");
            return;
        }
        argc -= 2;
    }
    if (!node_arg_is(&x->argv[1], "OPEN") || argc > 3) {
        resp_write_error(&x->w, "ERR usage: HY.SESSION OPEN [ttl_ms] [SLOT slot]");
        return;
    }
    if (argc == 3 && (!node_arg_i64(x, 2, &ttl) || ttl <= 0 || ttl > SESSION_TTL_MAX_MS)) {
        if (ttl <= 0 || ttl > SESSION_TTL_MAX_MS) {
            resp_write_error(&x->w, "ERR session ttl_ms must be between 1 and 604800000");
        }
        return;
    }
    struct store_entry e = {
        .op = STORE_OP_SESSION_OPEN, .time_ms = x->now_ms, .expire_at_ms = -1, .incr = ttl};
    node_propose(x, &e);
}

void cmd_hy_req(struct cmd_ctx *x)
{
    int64_t session, seq;
    if (!node_arg_i64(x, 1, &session) || !node_arg_i64(x, 2, &seq)) {
        return;
    }
    if (session <= 0 || seq <= 0) {
        resp_write_error(&x->w, "ERR session and seq must be positive");
        return;
    }
    const struct cmd_def *d = node_command_lookup(x->node, x->argv[3].ptr, x->argv[3].len);
    d = node_command_sub(x->node, d, x->argc - 3, x->argv + 3); /* ACL SETUSER is a write */
    if (d == NULL || !(d->flags & CMD_WRITE) || d->handler == cmd_hy_req ||
        d->handler == cmd_hy_session) {
        resp_write_error(&x->w, "ERR HY.REQ wraps a data write command (SET, INCR, HSET, ...)");
        return;
    }
    struct cmd_ctx inner = *x;
    inner.argc = x->argc - 3;
    inner.argv = x->argv + 3;
    inner.cmd = d;
    if (d->arity > 0 ? inner.argc != (size_t)d->arity : inner.argc < (size_t)-d->arity) {
        node_reply_arity(&x->w, d->name);
        return;
    }
    HY_ASSERT(node_command_group(x->node, d, inner.argc, inner.argv) == x->group);
    uint64_t owner = (uint64_t)session >> NODE_SESSION_GROUP_SHIFT;
    if (owner != x->group->id) {
        /* A session lives in the store of the partition it was opened for. */
        resp_write_errorf(&x->w,
                          "ERR session %lld belongs to group %llu; this key is in group %u: open "
                          "a session for its slot (HY.SESSION OPEN [ttl_ms] SLOT slot)",
                          (long long)session, (unsigned long long)owner, x->group->id);
        return;
    }
    if (node_refuse_oom(&inner, d)) {
        return; /* as the command alone would be: DEL runs when SET may not */
    }
    struct hy_node *n = x->node;
    HY_ASSERT(!n->wrap_active);
    n->wrap_active = n->mutation != NODE_MUT_SESSION_IGNORED; /* the bug under test */
    n->wrap_session = (uint64_t)session;
    n->wrap_seq = (uint64_t)seq;
    d->handler(&inner); /* a syntax error replies at once and proposes nothing */
    n->wrap_active = 0;
}
