/*
 * node_log.c - the Raft core's log lines, with nodes named as operators know them.
 *
 * The core knows members only by their 64-bit Raft ids (hashes of the names), and writes them
 * in decimal: "raft 626980046172116160: leader of term 1". Operators know the names. The node
 * hands the core a log sink of its own that replaces every number that is a member's Raft id
 * with the member's name before passing the line on; terms and indexes never come near the
 * size of an id, so nothing else changes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_internal.h"

static void raft_log_cb(void *ctx, enum hy_log_level level, const char *msg)
{
    const struct hy_node *n = ctx;
    char out[1200];
    size_t len = 0;
    for (const char *p = msg; *p != '\0' && len < sizeof(out) - 1;) {
        if (!isdigit((unsigned char)*p) || (p > msg && isalnum((unsigned char)p[-1]))) {
            out[len++] = *p++;
            continue;
        }
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        const char *name = isalnum((unsigned char)*end) ? NULL : node_member_name(n, (raft_id)v);
        size_t take = name != NULL ? strlen(name) : (size_t)(end - p);
        if (take > sizeof(out) - 1 - len) {
            break;
        }
        memcpy(out + len, name != NULL ? name : p, take);
        len += take;
        p = end;
    }
    out[len] = '\0';
    n->log->write_cb(n->log->ctx, level, out);
}

const struct hy_log *node_raft_log(struct hy_node *n)
{
    if (n->log == NULL || n->log->write_cb == NULL) {
        return n->log;
    }
    n->raft_log = (struct hy_log){.level = n->log->level, .ctx = n, .write_cb = raft_log_cb};
    return &n->raft_log;
}
