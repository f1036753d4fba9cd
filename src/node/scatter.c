/*
 * scatter.c - one client command carried out in every partition: FLUSHALL and FLUSHDB on a
 * cluster with partitions (docs/partitioning.md).
 *
 * The client's command becomes one internal request per partition (HY.FLUSHPART slot, run in
 * the partition that holds the slot), each on an internal client of its own that goes the way
 * any request goes: proposed here when this node leads the partition, forwarded to its leader
 * otherwise, waiting for a leader during an election. The client is answered once every
 * partition has answered: +OK when all did, else the first error. Like Redis Cluster's
 * FLUSHALL (one node at a time), the whole is not atomic: each partition is flushed at its
 * own point of its log, and a write to another partition may land in between.
 *
 * While its parts run, the client runs nothing else (its later requests wait), so replies
 * keep the order of requests.
 */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc.h"
#include "node/node_internal.h"

int node_scatter_flush(struct cmd_ctx *x)
{
    if (x->node->group_count == 1) {
        return 0; /* one group: the plain command */
    }
    node_scatter_parts(x, "HY.FLUSHPART", NULL, 0, "");
    return 1;
}

void node_scatter_parts(struct cmd_ctx *x, const char *cmd, const struct resp_arg *extra,
                        size_t nextra, const char *ok_reply)
{
    struct hy_node *n = x->node;
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    if (n->wrap_active || n->capture != NULL) {
        resp_write_errorf(&x->w,
                          "ERR %s runs in every partition: it cannot travel inside "
                          "HY.REQ or a transaction",
                          x->cmd != NULL ? x->cmd->name : cmd);
        return;
    }
    struct node_client *parent = x->client;
    HY_ASSERT(parent->scatter_pending == 0 && parent->waiting == 0);
    HY_ASSERT(strlen(ok_reply) < sizeof(parent->scatter_ok));
    parent->scatter_pending = (uint32_t)parts;
    parent->scatter_error[0] = '\0';
    snprintf(parent->scatter_ok, sizeof(parent->scatter_ok), "%s", ok_reply);
    for (size_t p = 0; p < parts; p++) {
        struct node_client *c = node_client_new(n, "internal:scatter", "", -1, x->now_ms);
        c->flags &= ~NODE_CLIENT_CLOSE_AFTER_REPLY; /* maxclients is for sockets */
        hy_buf_reset(&c->out);
        n->stats.connections_received--;
        c->authenticated = 1; /* its parent was let in, and allowed the command (acl.c) */
        c->user[0] = '\0';    /* internal: not a client's rights */
        c->proto = 2;
        c->scatter_parent = parent;
        snprintf(c->name, sizeof(c->name), "scatter-%llu", (unsigned long long)parent->id);
        char slot[8];
        int len = snprintf(slot, sizeof(slot), "%u",
                           (unsigned)(((uint64_t)p * HY_SLOT_COUNT + parts - 1) / parts));
        hy_buf_printf(&c->in, "*%zu\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n", 2 + nextra, strlen(cmd), cmd,
                      len, slot);
        for (size_t i = 0; i < nextra; i++) {
            hy_buf_printf(&c->in, "$%zu\r\n", extra[i].len);
            hy_buf_append(&c->in, extra[i].ptr, extra[i].len);
            hy_buf_append_str(&c->in, "\r\n");
        }
        node_client_process(n, c, x->now_ms);
        replica_mark_ready(n, c); /* answered at once (an error): collected like the others */
    }
}

/* HY.FLUSHPART slot: flushes the partition holding the slot (routed there by
 * node_command_group; forwarded to its leader like any write). */
void cmd_hy_flushpart(struct cmd_ctx *x)
{
    struct store_entry e = {.op = STORE_OP_FLUSHALL, .time_ms = x->now_ms, .expire_at_ms = -1};
    node_propose(x, &e);
}

int scatter_maybe_finish(struct hy_node *n, struct node_client *c)
{
    if (c->scatter_parent == NULL && c->is_scatter_orphan == 0) {
        return 0;
    }
    if (c->waiting > 0 || c->forwarding || c->blocked_on_read || c->out.len == 0) {
        return 1; /* not answered yet: it comes back to the ready list when it is */
    }
    struct node_client *parent = c->scatter_parent;
    if (parent == NULL && c->log_reply) {
        int error = c->out.data[0] == '-';
        hy_log(n->log, error ? HY_LOG_ERROR : HY_LOG_INFO, "%s: %s%.*s", c->name,
               error ? "refused: " : "done: ", (int)HY_MIN(c->out.len - 2, 300),
               (const char *)c->out.data);
    }
    if (parent != NULL) {
        if (c->out.data[0] == '-' && parent->scatter_error[0] == '\0') {
            size_t len = HY_MIN(c->out.len, sizeof(parent->scatter_error) - 1);
            memcpy(parent->scatter_error, c->out.data, len);
            parent->scatter_error[len] = '\0';
            char *eol = strchr(parent->scatter_error, '\r');
            if (eol != NULL) {
                *eol = '\0';
            }
        }
        HY_ASSERT(parent->scatter_pending > 0);
        if (--parent->scatter_pending == 0) {
            if (parent->scatter_error[0] != '\0') {
                hy_buf_printf(&parent->out, "%s\r\n", parent->scatter_error);
            } else if (parent->scatter_ok[0] != '\0') {
                hy_buf_append_str(&parent->out, parent->scatter_ok);
            } else {
                hy_buf_append_str(&parent->out, "+OK\r\n");
            }
            replica_mark_ready(n, parent); /* its later requests run from wake_clients */
        }
    }
    node_client_free(n, c);
    return 1;
}

void scatter_client_gone(struct hy_node *n, struct node_client *c)
{
    for (struct node_client *k = n->clients; k != NULL; k = k->next) {
        if (k->scatter_parent == c) {
            k->scatter_parent = NULL;
            k->is_scatter_orphan = 1; /* still freed once its part is answered */
        }
    }
}
