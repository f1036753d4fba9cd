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
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
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

void node_scatter_request(struct hy_node *n, struct node_client *parent, const char *name,
                          const uint8_t *req, size_t len, uint64_t now_ms)
{
    struct node_client *c = node_client_new(n, name, "", -1, now_ms);
    c->flags &= ~NODE_CLIENT_CLOSE_AFTER_REPLY; /* maxclients is for sockets */
    hy_buf_reset(&c->out);
    n->stats.connections_received--;
    c->authenticated = 1; /* its parent was let in, and allowed the command (acl.c) */
    c->user[0] = '\0';    /* internal: not a client's rights */
    c->proto = 2;
    c->scatter_parent = parent;
    c->is_scatter_orphan = parent == NULL;
    snprintf(c->name, sizeof(c->name), "scatter-%llu",
             (unsigned long long)(parent != NULL ? parent->id : 0));
    hy_buf_append(&c->in, req, len);
    node_client_process(n, c, now_ms);
    replica_mark_ready(n, c); /* answered at once (an error): collected like the others */
}

/* One internal client that runs `cmd slot extra...` in the partition holding slot, answered
 * to the client of x (collected by scatter_maybe_finish). */
static void scatter_child_slot(struct cmd_ctx *x, unsigned slot_no, const char *cmd,
                               const struct resp_arg *extra, size_t nextra)
{
    struct hy_buf req;
    hy_buf_init(&req);
    char slot[8];
    int len = snprintf(slot, sizeof(slot), "%u", slot_no);
    hy_buf_printf(&req, "*%zu\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n", 2 + nextra, strlen(cmd), cmd, len,
                  slot);
    for (size_t i = 0; i < nextra; i++) {
        hy_buf_printf(&req, "$%zu\r\n", extra[i].len);
        hy_buf_append(&req, extra[i].ptr, extra[i].len);
        hy_buf_append_str(&req, "\r\n");
    }
    node_scatter_request(x->node, x->client, "internal:scatter", req.data, req.len, x->now_ms);
    hy_buf_free(&req);
}

/* The same, in partition p of `parts`. */
static void scatter_child(struct cmd_ctx *x, size_t p, size_t parts, const char *cmd,
                          const struct resp_arg *extra, size_t nextra)
{
    scatter_child_slot(x, (unsigned)(((uint64_t)p * HY_SLOT_COUNT + parts - 1) / parts), cmd, extra,
                       nextra);
}

int node_scatter_watch(struct cmd_ctx *x)
{
    if (x->node->wrap_active || x->node->capture != NULL || x->client->is_proxy) {
        return 0; /* not a client's own WATCH: read here as before */
    }
    struct node_client *parent = x->client;
    HY_ASSERT(parent->scatter_pending == 0 && parent->waiting == 0);
    parent->scatter_pending = 1;
    parent->scatter_error[0] = '\0';
    parent->scatter_ok[0] = '\0';
    parent->scatter_mode = 6;
    scatter_child_slot(x, hy_key_slot(x->argv[1].ptr, x->argv[1].len), "HY.WATCHPART", x->argv + 1,
                       x->argc - 1);
    return 1;
}

/* Whether x's client may wait for internal parts (not inside HY.REQ or a transaction). */
/* Whether x reads partition g's keys from this node's replica: a READONLY client reads any
 * replica held here (stale reads are what it asked for), any other client only the replicas
 * this node leads; the others' parts run on their leaders (HY.*PART), so that each partition's
 * part is linearizable even where this node holds every partition. Before, a node holding
 * every partition answered DBSIZE, KEYS, SCAN and RANDOMKEY from its own replicas, which may
 * lag: a member cut off from the majority kept answering an old key count. */
int node_scatter_reads_here(const struct cmd_ctx *x, const struct node_group *g)
{
    return node_group_raft_view(g) && (x->client->readonly_mode || replica_is_leader(g));
}

/* Whether every partition's part of x reads here (node_scatter_reads_here), or x cannot
 * scatter (inside HY.REQ or a transaction, or a request proxied from another member). */
static int scatter_all_here(const struct cmd_ctx *x)
{
    const struct hy_node *n = x->node;
    if (n->wrap_active || n->capture != NULL || x->client->is_proxy) {
        return 1;
    }
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups);
    for (size_t p = 0; p < parts; p++) {
        if (!node_scatter_reads_here(x, groups[p])) {
            return 0;
        }
    }
    return 1;
}

static int scatter_allowed(struct cmd_ctx *x)
{
    if (x->node->wrap_active || x->node->capture != NULL) {
        resp_write_errorf(&x->w,
                          "ERR %s runs in partitions held on other members: it cannot travel "
                          "inside HY.REQ or a transaction",
                          x->cmd != NULL ? x->cmd->name : "this command");
        return 0;
    }
    return 1;
}

void node_scatter_parts(struct cmd_ctx *x, const char *cmd, const struct resp_arg *extra,
                        size_t nextra, const char *ok_reply)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(x->node, &groups);
    if (!scatter_allowed(x)) {
        return;
    }
    struct node_client *parent = x->client;
    HY_ASSERT(parent->scatter_pending == 0 && parent->waiting == 0);
    HY_ASSERT(strlen(ok_reply) < sizeof(parent->scatter_ok));
    parent->scatter_pending = (uint32_t)parts;
    parent->scatter_error[0] = '\0';
    snprintf(parent->scatter_ok, sizeof(parent->scatter_ok), "%s", ok_reply);
    for (size_t p = 0; p < parts; p++) {
        scatter_child(x, p, parts, cmd, extra, nextra);
    }
}

int node_scatter_scan(struct cmd_ctx *x, size_t part, uint64_t inner)
{
    struct node_group *const *groups;
    size_t parts = node_data_groups(x->node, &groups);
    if (!scatter_allowed(x)) {
        return 0;
    }
    struct node_client *parent = x->client;
    HY_ASSERT(parent->scatter_pending == 0 && parent->waiting == 0);
    parent->scatter_pending = 1;
    parent->scatter_error[0] = '\0';
    parent->scatter_mode = 3;
    parent->scatter_sum = (int64_t)part;
    hy_buf_reset(&parent->scatter_acc);
    /* HY.SCANPART slot cursor [MATCH m] [COUNT c] [TYPE t]: the client's options as given. */
    size_t nextra = x->argc - 1;
    struct resp_arg *extra = hy_xmalloc(nextra * sizeof(*extra));
    char cur[24];
    int len = snprintf(cur, sizeof(cur), "%llu", (unsigned long long)inner);
    extra[0] = (struct resp_arg){(const uint8_t *)cur, (size_t)len};
    for (size_t i = 2; i < x->argc; i++) {
        extra[i - 1] = x->argv[i];
    }
    scatter_child(x, part, parts, "HY.SCANPART", extra, nextra);
    hy_free(extra);
    return 1;
}

/* RANDOMKEY's candidate of one partition with `count` keys: kept with probability
 * count / (the counts so far), so that the one answered is drawn by key count. */
static void randomkey_candidate(struct hy_node *n, struct node_client *parent, int64_t count,
                                const uint8_t *key, size_t klen)
{
    if (count <= 0 || key == NULL) {
        return;
    }
    parent->scatter_sum += count;
    if (hy_prng_below(&n->prng, (uint64_t)parent->scatter_sum) < (uint64_t)count) {
        hy_buf_reset(&parent->scatter_acc);
        hy_buf_printf(&parent->scatter_acc, "$%zu\r\n", klen);
        hy_buf_append(&parent->scatter_acc, key, klen);
        hy_buf_append_str(&parent->scatter_acc, "\r\n");
    }
}

int node_scatter_randomkey(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    struct node_group *const *groups;
    size_t parts = node_data_groups(n, &groups), elsewhere = 0;
    if (scatter_all_here(x)) {
        return 0;
    }
    for (size_t p = 0; p < parts; p++) {
        elsewhere += !node_scatter_reads_here(x, groups[p]);
    }
    struct node_client *parent = x->client;
    HY_ASSERT(parent->scatter_pending == 0 && parent->waiting == 0);
    parent->scatter_pending = (uint32_t)elsewhere;
    parent->scatter_error[0] = '\0';
    parent->scatter_mode = 4;
    parent->scatter_sum = 0;
    hy_buf_reset(&parent->scatter_acc);
    for (size_t p = 0; p < parts; p++) {
        const uint8_t *key;
        size_t klen;
        if (node_scatter_reads_here(x, groups[p]) &&
            store_random_key(groups[p]->store, x->now_ms, &key, &klen)) {
            randomkey_candidate(n, parent, (int64_t)store_key_count(groups[p]->store), key, klen);
        }
    }
    for (size_t p = 0; p < parts; p++) {
        if (!node_scatter_reads_here(x, groups[p])) {
            scatter_child(x, p, parts, "HY.RANDOMKEYPART", NULL, 0);
        }
    }
    return 1;
}

/* DBSIZE and KEYS where some partitions are not read here (held elsewhere, or led elsewhere:
 * node_scatter_reads_here): one HY.COUNTPART / HY.KEYSPART per partition, each read on its
 * leader (so each partition's part is linearizable; the whole is no single point in time),
 * summed or joined. Returns 0 when every partition reads here (the caller reads its replicas). */
int node_scatter_keyspace(struct cmd_ctx *x, int keys)
{
    if (scatter_all_here(x)) {
        return 0;
    }
    struct node_client *parent = x->client;
    parent->scatter_mode = keys ? 2 : 1;
    parent->scatter_sum = 0;
    hy_buf_reset(&parent->scatter_acc);
    node_scatter_parts(x, keys ? "HY.KEYSPART" : "HY.COUNTPART", keys ? &x->argv[1] : NULL,
                       keys ? 1 : 0, "");
    return 1;
}

void cmd_hy_countpart(struct cmd_ctx *x)
{
    resp_write_int(&x->w, (int64_t)store_key_count(x->store));
}

/* INFO keyspace and memory where some partitions are held elsewhere: one HY.INFOPART per
 * partition, each read on its leader (linearizable per partition, the whole at no single
 * point in time, as DBSIZE), summed into a struct node_info_totals in scatter_acc. A partition
 * that cannot answer (no leader, no quorum) is left out and counted: INFO still answers, as a
 * monitoring tool expects, and says how many partitions its figures cover. */
int node_scatter_info(struct cmd_ctx *x, uint32_t sections)
{
    struct hy_node *n = x->node;
    if (n->group_count == 1 || partmap_holds_all(n) || n->wrap_active || n->capture != NULL ||
        x->client->is_proxy) {
        return 0;
    }
    struct node_group *const *groups;
    struct node_client *parent = x->client;
    struct node_info_totals t = {.partitions = (int64_t)node_data_groups(n, &groups),
                                 .scattered = 1};
    parent->scatter_mode = 5;
    parent->scatter_sum = (int64_t)sections;
    hy_buf_reset(&parent->scatter_acc);
    hy_buf_append(&parent->scatter_acc, (const uint8_t *)&t, sizeof(t));
    node_scatter_parts(x, "HY.INFOPART", NULL, 0, "");
    return 1;
}

/* HY.INFOPART slot: [keys, volatile keys, dataset bytes] of the partition (O(1): counters). */
void cmd_hy_infopart(struct cmd_ctx *x)
{
    resp_write_array(&x->w, 3);
    resp_write_int(&x->w, (int64_t)store_key_count(x->store));
    resp_write_int(&x->w, (int64_t)store_volatile_count(x->store));
    resp_write_int(&x->w, (int64_t)store_used_bytes(x->store));
}

/* A HY.INFOPART reply (*3 of integers) added to the parent's totals; 0 when malformed. */
static int info_fold(struct node_client *parent, const uint8_t *p, size_t len)
{
    int64_t v[3];
    size_t off = 4;
    if (len < 4 || memcmp(p, "*3\r\n", 4) != 0 ||
        parent->scatter_acc.len != sizeof(struct node_info_totals)) {
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        const uint8_t *eol = off < len ? memchr(p + off, '\r', len - off) : NULL;
        if (eol == NULL || p[off] != ':') {
            return 0;
        }
        v[i] = strtoll((const char *)p + off + 1, NULL, 10);
        off = (size_t)(eol - p) + 2;
    }
    struct node_info_totals t;
    memcpy(&t, parent->scatter_acc.data, sizeof(t));
    t.keys += v[0];
    t.expires += v[1];
    t.dataset_bytes += v[2];
    t.answered++;
    memcpy(parent->scatter_acc.data, &t, sizeof(t));
    return 1;
}

/* Skips one RESP2 bulk string or integer at p[*off] (a KEYS part's element). */
static int skip_element(const uint8_t *p, size_t len, size_t *off)
{
    const uint8_t *eol = memchr(p + *off, '\r', len - *off);
    if (eol == NULL || p[*off] != '$') {
        return 0;
    }
    long blen = strtol((const char *)p + *off + 1, NULL, 10);
    size_t next = (size_t)(eol - p) + 2 + (size_t)(blen < 0 ? 0 : blen + 2);
    if (next > len) {
        return 0;
    }
    *off = next;
    return 1;
}

/* A part's reply, folded into its parent's (scatter_mode); 0 when it is not what the mode
 * expects (then it counts as an error). */
static int scatter_fold(struct hy_node *n, struct node_client *parent, const uint8_t *p, size_t len)
{
    if (parent->scatter_mode == 5) {
        return info_fold(parent, p, len);
    }
    if (parent->scatter_mode == 6) {
        return node_multi_watch_fold(parent, p, len);
    }
    if (parent->scatter_mode == 1 && len > 3 && p[0] == ':') {
        parent->scatter_sum += strtoll((const char *)p + 1, NULL, 10);
        return 1;
    }
    if (parent->scatter_mode == 2 && len > 3 && p[0] == '*') {
        const uint8_t *eol = memchr(p, '\r', len);
        if (eol == NULL) {
            return 0;
        }
        long count = strtol((const char *)p + 1, NULL, 10);
        size_t off = (size_t)(eol - p) + 2, start = off;
        for (long i = 0; i < count; i++) {
            if (!skip_element(p, len, &off)) {
                return 0;
            }
        }
        hy_buf_append(&parent->scatter_acc, p + start, off - start);
        parent->scatter_sum += count;
        return 1;
    }
    if (parent->scatter_mode == 4 && len > 6 && memcmp(p, "*2\r\n:", 5) == 0) {
        /* A partition's [key count, key or null] (HY.RANDOMKEYPART). */
        int64_t count = strtoll((const char *)p + 5, NULL, 10);
        const uint8_t *eol = memchr(p + 5, '\r', len - 5);
        if (eol == NULL || (size_t)(eol - p) + 3 > len || eol[2] != '$') {
            return 0;
        }
        size_t off = (size_t)(eol - p) + 2;
        long klen = strtol((const char *)p + off + 1, NULL, 10);
        const uint8_t *keol = memchr(p + off, '\r', len - off);
        if (keol == NULL) {
            return 0;
        }
        size_t kstart = (size_t)(keol - p) + 2;
        if (klen >= 0 && kstart + (size_t)klen + 2 <= len) {
            randomkey_candidate(n, parent, count, p + kstart, (size_t)klen);
        }
        return 1;
    }
    if (parent->scatter_mode == 3 && len > 4 && memcmp(p, "*2\r\n$", 5) == 0) {
        /* A partition's SCAN reply: its cursor becomes the whole keyspace's (scan cursor in
         * cmd_keys.c: the partition in the low bits), the keys go on as they are. */
        const uint8_t *eol = memchr(p + 4, '\r', len - 4);
        if (eol == NULL) {
            return 0;
        }
        size_t off = 4;
        if (!skip_element(p, len, &off)) {
            return 0;
        }
        uint64_t inner = strtoull((const char *)eol + 2, NULL, 10);
        uint64_t part = (uint64_t)parent->scatter_sum;
        struct node_group *const *groups;
        size_t parts = node_data_groups(n, &groups);
        uint64_t cursor = inner != 0         ? inner * NODE_SCAN_PARTS + part
                          : part + 1 < parts ? part + 1
                                             : 0;
        char cur[24];
        int clen = snprintf(cur, sizeof(cur), "%llu", (unsigned long long)cursor);
        hy_buf_printf(&parent->scatter_acc, "*2\r\n$%d\r\n%s\r\n", clen, cur);
        hy_buf_append(&parent->scatter_acc, p + off, len - off);
        return 1;
    }
    return 0;
}

/* HY.FLUSHPART slot: flushes the partition holding the slot (routed there by
 * node_command_group; forwarded to its leader like any write). */
void cmd_hy_flushpart(struct cmd_ctx *x)
{
    struct store_entry e = {.op = STORE_OP_FLUSHALL, .time_ms = x->now_ms, .expire_at_ms = -1};
    node_propose(x, &e);
}

/* An error reply that says "not now" (no leader, no quorum, a failover, a node starting)
 * rather than "never". */
static int reply_is_transient(const uint8_t *p, size_t len)
{
    static const char *const codes[] = {"-TRYAGAIN", "-NOQUORUM", "-UNKNOWN", "-CLUSTERDOWN",
                                        "-LOADING",  "-MOVED",    "-ASK",     "-READONLY"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t k = strlen(codes[i]);
        if (len > k && memcmp(p, codes[i], k) == 0 && (p[k] == ' ' || p[k] == '\r')) {
            return 1;
        }
    }
    return 0;
}

void node_scatter_resume(struct hy_node *n, struct node_client *c)
{
    replica_mark_ready(n, c);
    /* Its later requests, already read (a pipeline of FUNCTION LOADs), run now: the wake
     * after applies has passed for this turn, and no new byte may come to wake the client,
     * which then stalled with its requests unread. */
    if (c->in.len > 0 && n->processing == NULL) {
        node_client_process(n, c, n->raft_now_ms);
    }
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
        if (error && reply_is_transient(c->out.data, c->out.len)) {
            /* The only logged orphan is the aclfile's load at start: a failover or a lost
             * quorum is no answer to it, so it is sent again once a leader is known. */
            hy_log(n->log, HY_LOG_WARN, "%s: sent again once the metadata group has a leader",
                   c->name);
            n->aclfile_pending = 1;
        }
    }
    if (parent != NULL) {
        if (parent->scatter_mode != 0 && c->out.data[0] != '-' &&
            !scatter_fold(n, parent, c->out.data, c->out.len) && parent->scatter_error[0] == '\0') {
            snprintf(parent->scatter_error, sizeof(parent->scatter_error),
                     "-ERR a partition's part answered in an unexpected form");
        }
        if (c->out.data[0] == '-' && parent->scatter_error[0] == '\0' &&
            parent->scatter_mode != 5) { /* INFO counts the partitions that answered */
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
            } else if (parent->scatter_mode == 5) {
                struct node_info_totals t;
                memcpy(&t, parent->scatter_acc.data, sizeof(t));
                node_info_render(n, n->raft_now_ms, (uint32_t)parent->scatter_sum, &t,
                                 parent->proto, &parent->out);
            } else if (parent->scatter_mode == 1) {
                hy_buf_printf(&parent->out, ":%lld\r\n", (long long)parent->scatter_sum);
            } else if (parent->scatter_mode == 4 && parent->scatter_acc.len == 0) {
                hy_buf_append_str(&parent->out, parent->proto == 3 ? "_\r\n" : "$-1\r\n");
            } else if (parent->scatter_mode == 3 || parent->scatter_mode == 4) {
                hy_buf_append(&parent->out, parent->scatter_acc.data, parent->scatter_acc.len);
            } else if (parent->scatter_mode == 2) {
                hy_buf_printf(&parent->out, "*%lld\r\n", (long long)parent->scatter_sum);
                hy_buf_append(&parent->out, parent->scatter_acc.data, parent->scatter_acc.len);
            } else if (parent->scatter_ok[0] != '\0') {
                hy_buf_append_str(&parent->out, parent->scatter_ok);
            } else {
                hy_buf_append_str(&parent->out, "+OK\r\n");
            }
            parent->scatter_mode = 0;
            hy_buf_free(&parent->scatter_acc);
            node_scatter_resume(n, parent);
        }
    }
    node_client_free(n, c);
    return 1;
}

void scatter_client_gone(struct hy_node *n, struct node_client *c)
{
    if (c->scatter_pending == 0) {
        return; /* no part names it: each is freed once answered, counting this down */
    }
    for (struct node_client *k = n->clients; k != NULL; k = k->next) {
        if (k->scatter_parent == c) {
            k->scatter_parent = NULL;
            k->is_scatter_orphan = 1; /* still freed once its part is answered */
        }
    }
}
