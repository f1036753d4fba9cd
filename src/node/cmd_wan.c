/*
 * cmd_wan.c - HALYARD WAN ADD|REMOVE|STATUS (docs/wan.md): links from this cluster to another
 * one, kept in the metadata group as "halyard:wan:<name>" keys so that every member knows them
 * and they survive restarts (they travel in that group's log and snapshots).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"

#include "node/node_internal.h"
#include "node/wan.h"

struct link_list {
    struct wan_link links[WAN_LINKS_MAX];
    size_t count;
};

static void collect_link(void *ctx, const uint8_t *key, size_t klen, const struct store_obj *o)
{
    struct link_list *l = ctx;
    size_t plen = strlen(WAN_KEY_PREFIX);
    if (klen <= plen || memcmp(key, WAN_KEY_PREFIX, plen) != 0 ||
        store_obj_type(o) != STORE_STRING || l->count == WAN_LINKS_MAX) {
        return;
    }
    const uint8_t *p;
    size_t len;
    store_obj_string(o, &p, &len);
    if (wan_link_decode(key + plen, klen - plen, p, len, &l->links[l->count])) {
        l->count++;
    }
}

static int link_cmp(const void *a, const void *b)
{
    return strcmp(((const struct wan_link *)a)->name, ((const struct wan_link *)b)->name);
}

size_t node_wan_links(struct hy_node *n, struct wan_link *out, size_t cap)
{
    struct link_list *l = hy_calloc(1, sizeof(*l));
    uint64_t cursor = 0;
    do {
        cursor = store_scan(n->meta->store, cursor, 64, n->raft_now_ms, collect_link, l);
    } while (cursor != 0);
    qsort(l->links, l->count, sizeof(l->links[0]), link_cmp);
    size_t k = HY_MIN(l->count, cap);
    memcpy(out, l->links, k * sizeof(*out));
    hy_free(l);
    return k;
}

/* This cluster's role in region failover, as this member's copy of the metadata group holds it
 * (WAN_ROLE_NONE: never promoted nor demoted, or not partitioned): n's copy of it, refreshed
 * when the metadata store may have changed it. Every client write asks (node_refuse_passive),
 * and a lookup of the role's key each time was a twentieth of a SET's instructions with
 * partitions. */
static const struct wan_role *wan_role_fresh(struct hy_node *n)
{
    if (n->group_count == 1) {
        memset(&n->wan_role_seen, 0, sizeof(n->wan_role_seen));
        n->wan_role_valid = 0;
        return &n->wan_role_seen;
    }
    /* The role changes only by an entry of the metadata group (HALYARD WAN PROMOTE|DEMOTE, a
     * FLUSHALL of it) or by a snapshot it installs: the first counts in the store's changes
     * (store_dirty), the second moves its applied index. With neither moved since the last
     * look, the role read then still holds (the key never carries a TTL: role_propose). */
    const struct store *s = n->meta->store;
    if (n->wan_role_valid && n->wan_role_store == s && n->wan_role_dirty == store_dirty(s) &&
        n->wan_role_applied == n->meta->applied) {
        return &n->wan_role_seen;
    }
    struct wan_role *out = &n->wan_role_seen;
    memset(out, 0, sizeof(*out));
    const struct store_obj *o =
        store_peek(s, (const uint8_t *)WAN_ROLE_KEY, strlen(WAN_ROLE_KEY), n->raft_now_ms);
    if (o != NULL && store_obj_type(o) == STORE_STRING) {
        const uint8_t *p;
        size_t len;
        store_obj_string(o, &p, &len);
        if (!wan_role_decode(p, len, out)) {
            memset(out, 0, sizeof(*out));
        }
    }
    n->wan_role_store = s;
    n->wan_role_dirty = store_dirty(s);
    n->wan_role_applied = n->meta->applied;
    n->wan_role_valid = 1;
    return out;
}

void node_wan_role(struct hy_node *n, struct wan_role *out)
{
    *out = *wan_role_fresh(n);
}

/* Whether this member refuses clients' writes as a passive cluster: demoted (whatever its
 * wan-passive says), or wan-passive yes and not promoted. */
int node_wan_passive(struct hy_node *n, const struct wan_role **role_out)
{
    const struct wan_role *r = wan_role_fresh(n);
    *role_out = r;
    if (r->kind == WAN_ROLE_NONE) {
        return n->cfg->wan_passive != 0;
    }
    return r->kind == WAN_ROLE_PASSIVE;
}

/* Proposes the role r in the metadata group (the caller is its leader). */
static void role_propose(struct cmd_ctx *x, const struct wan_role *r)
{
    struct hy_buf v;
    hy_buf_init(&v);
    wan_role_encode(r, &v);
    struct store_arg args[2] = {{(const uint8_t *)WAN_ROLE_KEY, strlen(WAN_ROLE_KEY)},
                                {v.data, v.len}};
    struct store_entry e = {
        .op = STORE_OP_SET, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = 2, .argv = args};
    node_propose(x, &e);
    hy_buf_free(&v);
}

/* A link change runs on the metadata group's leader (forwarded there, or -TRYAGAIN), and only
 * with partitions: with one, group 0's keyspace is the users', so a link's key would be a user
 * key, seen by KEYS and shipped with the data. Returns 1 when x was answered here. */
static int wan_route_change(struct cmd_ctx *x)
{
    if (x->node->group_count == 1) {
        resp_write_error(&x->w, "ERR WAN links need a partitioned cluster (partitions > 1)");
        return 1;
    }
    return node_route_to_meta_leader(x);
}

/* HALYARD WAN ADD name host:port[,...] [MODE active-passive|active-active] [SECRET s]
 * [KEYS pattern] [TLS] [CA file] [POLICY pattern policy]...: the targets are members' peer
 * ports (docs/wan.md "Transport"); TLS runs the link in TLS (CA: the file the targets'
 * certificates are checked against, else the member's own); KEYS ships only the changes (and a
 * resync only the keys) whose first key matches the glob. POLICY, repeatable
 * up to 16 times, only with active-active: the first rule whose pattern matches a key decides its
 * conflicts, LATEST_UPDATE where none does. */
static void wan_add(struct cmd_ctx *x)
{
    struct wan_link l;
    memset(&l, 0, sizeof(l));
    if (x->argc < 5) {
        node_reply_syntax_error(x);
        return;
    }
    const struct resp_arg *name = &x->argv[3], *to = &x->argv[4];
    if (!wan_name_ok(name->ptr, name->len)) {
        resp_write_error(&x->w, "ERR invalid link name (1 to 64 of A-Z a-z 0-9 _ - .)");
        return;
    }
    if (!wan_targets_ok(to->ptr, to->len)) {
        resp_write_error(&x->w, "ERR invalid target list (host:peerport[,host:peerport...])");
        return;
    }
    l.mode = WAN_ACTIVE_PASSIVE;
    for (size_t i = 5; i < x->argc;) {
        if (node_arg_is(&x->argv[i], "MODE") && i + 1 < x->argc) {
            const struct resp_arg *v = &x->argv[i + 1];
            if (node_arg_is(v, "active-passive")) {
                l.mode = WAN_ACTIVE_PASSIVE;
            } else if (node_arg_is(v, "active-active")) {
                l.mode = WAN_ACTIVE_ACTIVE;
            } else {
                resp_write_error(&x->w, "ERR MODE is active-passive or active-active");
                return;
            }
            i += 2;
        } else if (node_arg_is(&x->argv[i], "KEYS") && i + 1 < x->argc) {
            const struct resp_arg *v = &x->argv[i + 1];
            if (!wan_pattern_ok(v->ptr, v->len)) {
                resp_write_error(&x->w, "ERR invalid KEYS pattern (printable, no spaces, up to "
                                        "128)");
                return;
            }
            memcpy(l.keys, v->ptr, v->len);
            i += 2;
        } else if (node_arg_is(&x->argv[i], "TLS")) {
            l.tls = 1;
            i += 1;
        } else if (node_arg_is(&x->argv[i], "CA") && i + 1 < x->argc) {
            const struct resp_arg *v = &x->argv[i + 1];
            if (v->len == 0 || !wan_secret_ok(v->ptr, v->len)) {
                resp_write_error(&x->w, "ERR invalid CA file path (printable, no spaces, up to "
                                        "256)");
                return;
            }
            l.tls = 1; /* a CA to check the target against: TLS */
            memcpy(l.tls_ca, v->ptr, v->len);
            i += 2;
        } else if (node_arg_is(&x->argv[i], "SECRET") && i + 1 < x->argc) {
            const struct resp_arg *v = &x->argv[i + 1];
            if (!wan_secret_ok(v->ptr, v->len)) {
                resp_write_error(&x->w, "ERR invalid secret (printable, no spaces, up to 256)");
                return;
            }
            memcpy(l.secret, v->ptr, v->len);
            i += 2;
        } else if (node_arg_is(&x->argv[i], "POLICY") && i + 2 < x->argc) {
            const struct resp_arg *pat = &x->argv[i + 1], *pol = &x->argv[i + 2];
            struct wan_policy_rule *r = &l.rules[l.nrules];
            if (l.nrules == WAN_POLICIES_MAX) {
                resp_write_errorf(&x->w, "ERR at most %d POLICY rules", WAN_POLICIES_MAX);
                return;
            }
            if (!wan_pattern_ok(pat->ptr, pat->len)) {
                resp_write_error(&x->w, "ERR invalid POLICY pattern (printable, no spaces, "
                                        "up to 128)");
                return;
            }
            if (!wan_policy_parse(pol->ptr, pol->len, &r->policy)) {
                resp_write_error(&x->w, "ERR unknown policy (LATEST_UPDATE, PUT_IF_ABSENT, "
                                        "PASS_THROUGH, DISCARD, EXPIRATION_TIME, "
                                        "HIGHER_HITS)");
                return;
            }
            memcpy(r->pattern, pat->ptr, pat->len);
            l.nrules++;
            i += 3;
        } else {
            node_reply_syntax_error(x);
            return;
        }
    }
    if (l.nrules > 0 && l.mode != WAN_ACTIVE_ACTIVE) {
        resp_write_error(&x->w, "ERR POLICY needs MODE active-active (an active-passive "
                                "target takes every change)");
        return;
    }
    if (wan_route_change(x)) {
        return;
    }
    struct wan_link have[WAN_LINKS_MAX];
    size_t count = node_wan_links(x->node, have, WAN_LINKS_MAX);
    int exists = 0;
    for (size_t i = 0; i < count; i++) {
        exists |=
            strlen(have[i].name) == name->len && memcmp(have[i].name, name->ptr, name->len) == 0;
    }
    if (!exists && count >= WAN_LINKS_MAX) {
        resp_write_errorf(&x->w, "ERR at most %d WAN links", WAN_LINKS_MAX);
        return;
    }
    memcpy(l.name, name->ptr, name->len);
    memcpy(l.targets, to->ptr, to->len);
    char key[sizeof(WAN_KEY_PREFIX) + WAN_NAME_MAX];
    int klen = snprintf(key, sizeof(key), WAN_KEY_PREFIX "%s", l.name);
    struct hy_buf v;
    hy_buf_init(&v);
    wan_link_encode(&l, &v);
    struct store_arg args[2] = {{(const uint8_t *)key, (size_t)klen}, {v.data, v.len}};
    struct store_entry e = {
        .op = STORE_OP_SET, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = 2, .argv = args};
    node_propose(x, &e);
    hy_buf_free(&v);
}

/* HALYARD WAN PROMOTE (docs/wan.md "Region failover"): this cluster becomes the primary, on
 * every member at once (its role is in the metadata group), from now on: client writes are
 * taken whatever wan-passive says, and active-passive batches are refused with -DEMOTED, which
 * tells their sender to step down. The epoch counts promotions, not time: it is the epoch of the
 * role this cluster holds plus one (its own last promotion, or the one it stepped down for), so
 * it wins over every promotion this cluster has heard of; two of the same epoch are decided by
 * the clusters' names (wan_promotion_cmp), alike on both sides. No wall clock is read. */
static void wan_promote(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (x->argc != 3 && !(x->argc == 5 && node_arg_is(&x->argv[3], "FROM"))) {
        node_reply_syntax_error(x);
        return;
    }
    const struct resp_arg *from = x->argc == 5 ? &x->argv[4] : NULL;
    if (from != NULL && !wan_name_ok(from->ptr, from->len)) {
        resp_write_error(&x->w, "ERR FROM names the source cluster this one replaces (its "
                                "cluster-name: 1 to 64 of A-Z a-z 0-9 _ - .)");
        return;
    }
    const char *me = n->cfg->cluster_name;
    if (!wan_name_ok((const uint8_t *)me, strlen(me))) {
        resp_write_error(&x->w, "ERR cluster-name must be 1 to 64 of A-Z a-z 0-9 _ - . for a "
                                "cluster to be promoted (it names the primary)");
        return;
    }
    if (wan_route_change(x)) {
        return;
    }
    struct wan_role have, r = {.kind = WAN_ROLE_PRIMARY};
    node_wan_role(n, &have);
    r.epoch = have.epoch + 1;
    snprintf(r.by, sizeof(r.by), "%s", me);
    if (from != NULL) {
        snprintf(r.from, sizeof(r.from), "%.*s", (int)from->len, (const char *)from->ptr);
    }
    hy_log(n->log, HY_LOG_WARN, "WAN: this cluster is promoted to primary (epoch %llu%s%s)",
           (unsigned long long)r.epoch, r.from[0] ? ", in place of " : "", r.from);
    role_propose(x, &r);
}

/* HALYARD WAN DEMOTE epoch by: a primary promoted at epoch (the cluster named by) tells this
 * one to step down (a link's thread sends it on connecting; a partition leader whose batch was
 * refused -DEMOTED sends it to its own metadata leader). 1: demoted now; 0: already passive
 * for that promotion or a later one; an error when this cluster was promoted later. */
static void wan_demote(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    int64_t epoch;
    if (x->argc != 5 || !hy_parse_i64(x->argv[3].ptr, x->argv[3].len, &epoch) || epoch <= 0 ||
        !wan_name_ok(x->argv[4].ptr, x->argv[4].len)) {
        node_reply_syntax_error(x);
        return;
    }
    if (wan_route_change(x)) {
        return;
    }
    struct wan_role have, r = {.kind = WAN_ROLE_PASSIVE, .epoch = (uint64_t)epoch};
    memcpy(r.by, x->argv[4].ptr, x->argv[4].len);
    node_wan_role(n, &have);
    if (have.kind == WAN_ROLE_PRIMARY && !wan_role_yields(&have, r.epoch, r.by)) {
        resp_write_errorf(&x->w,
                          "ERR this cluster's promotion (epoch %llu, '%s') wins over '%s''s "
                          "(epoch %llu): not demoted",
                          (unsigned long long)have.epoch, have.by, r.by,
                          (unsigned long long)r.epoch);
        return;
    }
    if (!wan_role_yields(&have, r.epoch, r.by)) {
        resp_write_int(&x->w, 0);
        return;
    }
    hy_log(n->log, HY_LOG_WARN,
           "WAN: this cluster is demoted to passive: cluster '%s' was promoted (epoch %llu)", r.by,
           (unsigned long long)r.epoch);
    role_propose(x, &r);
}

/* HALYARD WAN REMOVE name: the keys deleted (the link's and its positions'; 0: no such link).
 * The positions ("halyard:wanpos:" keys) go with it, so that a link added again under the name
 * starts over from what comes after it. */
static void wan_remove(struct cmd_ctx *x)
{
    if (x->argc != 4) {
        node_reply_syntax_error(x);
        return;
    }
    const struct resp_arg *name = &x->argv[3];
    if (!wan_name_ok(name->ptr, name->len)) {
        resp_write_error(&x->w, "ERR invalid link name (1 to 64 of A-Z a-z 0-9 _ - .)");
        return;
    }
    if (wan_route_change(x)) {
        return;
    }
    /* One DEL of the link's key and of its positions, so both go in the same entry. */
    size_t parts = x->node->group_count - 1;
    size_t keymax = sizeof(WAN_POS_KEY_PREFIX) + WAN_NAME_MAX + 12;
    char *keys = hy_xcalloc(parts + 1, keymax);
    struct store_arg *args = hy_xcalloc(parts + 1, sizeof(*args));
    for (size_t i = 0; i <= parts; i++) {
        int klen = i == 0 ? snprintf(keys, keymax, WAN_KEY_PREFIX "%.*s", (int)name->len,
                                     (const char *)name->ptr)
                          : snprintf(keys + i * keymax, keymax, WAN_POS_KEY_PREFIX "%.*s:%zu",
                                     (int)name->len, (const char *)name->ptr, i - 1);
        args[i].ptr = (const uint8_t *)keys + i * keymax;
        args[i].len = (size_t)klen;
    }
    struct store_entry e = {.op = STORE_OP_DEL,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)(parts + 1),
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
    hy_free(keys);
}

/* The merge decisions over link counted by the partitions this node leads: JSON objects, or a
 * text line when there are any. */
static void status_conflicts(struct hy_node *n, const char *link, struct hy_buf *b, int json)
{
    struct node_wan_conflict_view *v = hy_xcalloc(WAN_CONFLICT_COUNTS_MAX, sizeof(*v));
    size_t count = node_wan_conflict_totals(n, v, WAN_CONFLICT_COUNTS_MAX), shown = 0;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(v[i].link, link) != 0) {
            continue;
        }
        if (json) {
            hy_buf_printf(b, "%s{\"policy\":\"%s\",\"outcome\":\"%s\",\"count\":%llu}",
                          shown > 0 ? "," : "", v[i].policy, v[i].outcome,
                          (unsigned long long)v[i].count);
        } else {
            hy_buf_printf(b, "%s %s %s %llu", shown > 0 ? "," : "  conflicts merged:", v[i].policy,
                          v[i].outcome, (unsigned long long)v[i].count);
        }
        shown++;
    }
    if (!json && shown > 0) {
        hy_buf_append_str(b, "\n");
    }
    hy_free(v);
}

/* One version as shown: "value@HLC from ORIGIN" style, the HLC split into its milliseconds
 * and logical counter. */
static void put_version(struct hy_buf *b, const struct wan_version *v, uint32_t own, int json)
{
    const char *state = v->live ? "value" : "deleted";
    if (json) {
        hy_buf_printf(b,
                      "{\"state\":\"%s\",\"hlc\":%llu,\"hlc_ms\":%llu,\"origin\":\"%08x\","
                      "\"local_origin\":%s,\"expire_at_ms\":%lld,\"hits\":%llu}",
                      state, (unsigned long long)v->hlc, (unsigned long long)(v->hlc >> 16),
                      (unsigned)v->origin, v->origin == own ? "true" : "false",
                      (long long)v->expire_at, (unsigned long long)v->hits);
    } else {
        hy_buf_printf(b, "%s hlc %llu.%llu origin %08x%s hits %llu", state,
                      (unsigned long long)(v->hlc >> 16), (unsigned long long)(v->hlc & 0xffff),
                      (unsigned)v->origin, v->origin == own ? " (this cluster)" : "",
                      (unsigned long long)v->hits);
    }
}

/* HALYARD WAN CONFLICTS name [count] [JSON]: the last merge decisions (at most 64; 10 by
 * default) over link name made by the partitions this node leads, newest first. */
static void wan_conflicts(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    size_t argc = x->argc;
    int json = argc >= 5 && node_arg_is(&x->argv[argc - 1], "JSON");
    if (json) {
        argc--;
    }
    int64_t want = 10;
    if (argc < 4 || argc > 5 || !wan_name_ok(x->argv[3].ptr, x->argv[3].len) ||
        (argc == 5 && (!hy_parse_i64(x->argv[4].ptr, x->argv[4].len, &want) || want < 1))) {
        node_reply_syntax_error(x);
        return;
    }
    if (want > WAN_CONFLICT_LAST_MAX) {
        want = WAN_CONFLICT_LAST_MAX;
    }
    char link[WAN_NAME_MAX + 1];
    memcpy(link, x->argv[3].ptr, x->argv[3].len);
    link[x->argv[3].len] = '\0';
    struct wan_conflict *c = hy_xcalloc((size_t)want, sizeof(*c));
    size_t count = node_wan_conflicts_last(n, link, c, (size_t)want);
    uint32_t own = wan_origin_id(n->cfg->cluster_name, strlen(n->cfg->cluster_name));
    struct hy_buf b;
    hy_buf_init(&b);
    if (json) {
        hy_buf_append_str(&b, "[");
    } else if (count == 0) {
        hy_buf_append_str(&b, "no merge decisions over this link on the partitions this node "
                              "leads\n");
    }
    for (size_t i = 0; i < count; i++) {
        char key[WAN_CONFLICT_KEY_MAX + 1];
        memcpy(key, c[i].key, c[i].klen);
        key[c[i].klen] = '\0';
        if (json) {
            hy_buf_printf(&b, "%s{\"time_ms\":%llu,\"key\":", i > 0 ? "," : "",
                          (unsigned long long)c[i].time_ms);
            hy_buf_append_json_str(&b, key);
            hy_buf_printf(&b, ",\"from\":");
            hy_buf_append_json_str(&b, c[i].origin);
            hy_buf_printf(&b, ",\"policy\":\"%s\",\"outcome\":\"%s\",\"local\":",
                          wan_policy_name(c[i].policy), c[i].applied ? "applied" : "kept");
            put_version(&b, &c[i].local, own, 1);
            hy_buf_append_str(&b, ",\"incoming\":");
            put_version(&b, &c[i].in, own, 1);
            hy_buf_append_str(&b, "}");
        } else {
            hy_buf_printf(&b, "%llu %s from %s: %s %s; local ", (unsigned long long)c[i].time_ms,
                          key, c[i].origin, wan_policy_name(c[i].policy),
                          c[i].applied ? "applied the incoming version" : "kept the local one");
            put_version(&b, &c[i].local, own, 0);
            hy_buf_append_str(&b, "; incoming ");
            put_version(&b, &c[i].in, own, 0);
            hy_buf_append_str(&b, "\n");
        }
    }
    if (json) {
        hy_buf_append_str(&b, "]");
        resp_write_bulk(&x->w, b.data, b.len);
    } else {
        resp_write_verbatim(&x->w, "txt", b.data, b.len);
    }
    hy_buf_free(&b);
    hy_free(c);
}

/* HALYARD WAN STATUS [JSON]: every link this node knows (its committed copy of the metadata
 * group), with, for the partitions this node leads, where shipping stands. The secret is
 * never shown, only whether one was given. */
static void wan_status(struct cmd_ctx *x, int json)
{
    struct hy_node *n = x->node;
    struct wan_link links[WAN_LINKS_MAX];
    size_t count = n->group_count > 1 ? node_wan_links(n, links, WAN_LINKS_MAX) : 0;
    struct hy_buf b;
    hy_buf_init(&b);
    if (json) {
        hy_buf_append_str(&b, "{\"links\":[");
    } else if (count == 0) {
        hy_buf_append_str(&b, "no WAN links\n");
    }
    for (size_t i = 0; i < count; i++) {
        const struct wan_link *l = &links[i];
        if (json) {
            hy_buf_append_str(&b, i > 0 ? ",{\"name\":" : "{\"name\":");
            hy_buf_append_json_str(&b, l->name);
            hy_buf_printf(&b, ",\"mode\":\"%s\",\"targets\":", wan_mode_name(l->mode));
            hy_buf_append_json_str(&b, l->targets);
            hy_buf_printf(&b, ",\"secret\":%s,\"keys\":", l->secret[0] ? "\"given\"" : "\"none\"");
            hy_buf_append_json_str(&b, l->keys[0] ? l->keys : "*");
            hy_buf_printf(&b, ",\"tls\":%s,\"tls_ca\":", l->tls ? "true" : "false");
            hy_buf_append_json_str(&b, l->tls_ca);
            hy_buf_append_str(&b, ",\"policies\":[");
            for (size_t r = 0; r < l->nrules; r++) {
                hy_buf_append_str(&b, r > 0 ? ",{\"pattern\":" : "{\"pattern\":");
                hy_buf_append_json_str(&b, l->rules[r].pattern);
                hy_buf_printf(&b, ",\"policy\":\"%s\"}", wan_policy_name(l->rules[r].policy));
            }
            hy_buf_append_str(&b, "],\"conflicts\":[");
            status_conflicts(n, l->name, &b, 1);
            hy_buf_append_str(&b, "],\"partitions\":[");
        } else {
            hy_buf_printf(&b, "link %s: %s to %s (secret: %s, keys: %s, tls: %s%s%s)\n", l->name,
                          wan_mode_name(l->mode), l->targets, l->secret[0] ? "given" : "none",
                          l->keys[0] ? l->keys : "*", l->tls ? "yes" : "no",
                          l->tls_ca[0] ? ", CA " : "", l->tls_ca);
            if (l->mode == WAN_ACTIVE_ACTIVE) {
                hy_buf_append_str(&b, "  policies:");
                for (size_t r = 0; r < l->nrules; r++) {
                    hy_buf_printf(&b, " %s %s,", l->rules[r].pattern,
                                  wan_policy_name(l->rules[r].policy));
                }
                hy_buf_append_str(&b, " otherwise LATEST_UPDATE\n");
            }
            status_conflicts(n, l->name, &b, 0);
        }
        node_wan_status_partitions(n, l->name, &b, json, x->now_ms);
        if (json) {
            hy_buf_append_str(&b, "]}");
        }
    }
    struct wan_role role;
    const struct wan_role *now;
    int passive = node_wan_passive(n, &now);
    role = *now;
    struct hy_buf pending;
    hy_buf_init(&pending);
    size_t npending = node_wan_fence_pending(n, &role, &pending);
    static const char *const kinds[] = {"none", "primary", "passive"};
    if (json) {
        hy_buf_printf(&b, "],\"role\":\"%s\",\"role_epoch\":%llu,\"role_by\":", kinds[role.kind],
                      (unsigned long long)role.epoch);
        hy_buf_append_json_str(&b, role.by);
        hy_buf_append_str(&b, ",\"role_from\":");
        hy_buf_append_json_str(&b, role.from);
        hy_buf_printf(&b, ",\"promotion_pending\":[%.*s],\"writable\":%s", (int)pending.len,
                      pending.len ? (const char *)pending.data : "",
                      passive || npending ? "false" : "true");
        hy_buf_append_str(&b, ",\"passive_keys\":");
        hy_buf_append_json_str(&b, role.kind == WAN_ROLE_NONE ? n->cfg->wan_passive_keys : "");
        hy_buf_append_str(&b, ",\"region_failover_priority\":");
        hy_buf_append_json_str(&b, n->cfg->region_failover_priority);
        hy_buf_append_str(&b, "}");
        resp_write_bulk(&x->w, b.data, b.len);
    } else {
        if (role.kind == WAN_ROLE_PRIMARY && npending > 0) {
            hy_buf_printf(&b,
                          "region role: primary (promoted, epoch %llu; not applied yet by "
                          "partitions %.*s here: their writes wait)\n",
                          (unsigned long long)role.epoch, (int)pending.len,
                          (const char *)pending.data);
        } else if (role.kind == WAN_ROLE_PRIMARY) {
            hy_buf_printf(&b, "region role: primary (promoted, epoch %llu%s%s%s)\n",
                          (unsigned long long)role.epoch, role.from[0] ? "; in place of '" : "",
                          role.from, role.from[0] ? "' only: other sources' batches apply" : "");
        } else if (role.kind == WAN_ROLE_PASSIVE) {
            hy_buf_printf(&b, "region role: passive (demoted: '%s' was promoted, epoch %llu)\n",
                          role.by, (unsigned long long)role.epoch);
        } else if (passive) {
            hy_buf_append_str(&b, "region role: passive (wan-passive yes on this member)\n");
        } else if (n->cfg->wan_passive_keys[0] != '\0') {
            hy_buf_printf(&b,
                          "region role: passive for the keys matching '%s' (wan-passive-keys on "
                          "this member), writable for the others\n",
                          n->cfg->wan_passive_keys);
        }
        if (n->cfg->region_failover_priority[0] != '\0') {
            hy_buf_printf(&b, "region failover priority: %s\n", n->cfg->region_failover_priority);
        }
        resp_write_verbatim(&x->w, "txt", b.data, b.len);
    }
    hy_buf_free(&pending);
    hy_buf_free(&b);
}

/* HALYARD WAN POS link partition seq|RESYNC (internal: a partition leader's wan_ship.c sends
 * it): the link's target applied partition's changes up to seq. Written only forward; 1 when it
 * moved. RESYNC deletes it (a resync begins). */
static void wan_pos(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    int64_t p, seq = 0;
    /* RESYNC (a resync begins, docs/wan.md "Resync") deletes the position: a new leader then
     * finds none and starts the resync over. */
    int resync = x->argc == 6 && node_arg_is(&x->argv[5], "RESYNC");
    if (x->argc != 6 || !hy_parse_i64(x->argv[4].ptr, x->argv[4].len, &p) ||
        (!resync && !hy_parse_i64(x->argv[5].ptr, x->argv[5].len, &seq)) || p < 0 || seq < 0 ||
        n->group_count == 1 || (uint64_t)p >= n->group_count - 1 ||
        !wan_name_ok(x->argv[3].ptr, x->argv[3].len)) {
        node_reply_syntax_error(x);
        return;
    }
    if (node_route_to_meta_leader(x)) {
        return;
    }
    char name[WAN_NAME_MAX + 1];
    memcpy(name, x->argv[3].ptr, x->argv[3].len);
    name[x->argv[3].len] = '\0';
    char lkey[sizeof(WAN_KEY_PREFIX) + WAN_NAME_MAX];
    int lklen = snprintf(lkey, sizeof(lkey), WAN_KEY_PREFIX "%s", name);
    if (store_peek(n->meta->store, (const uint8_t *)lkey, (size_t)lklen, n->raft_now_ms) == NULL) {
        resp_write_error(&x->w, "ERR no such WAN link");
        return;
    }
    char key[sizeof(WAN_POS_KEY_PREFIX) + WAN_NAME_MAX + 12], value[24];
    int klen = snprintf(key, sizeof(key), WAN_POS_KEY_PREFIX "%s:%lld", name, (long long)p);
    const struct store_obj *o =
        store_peek(n->meta->store, (const uint8_t *)key, (size_t)klen, n->raft_now_ms);
    if (resync) {
        if (o == NULL) {
            resp_write_int(&x->w, 0);
            return;
        }
        struct store_arg dargs[1] = {{(const uint8_t *)key, (size_t)klen}};
        struct store_entry d = {
            .op = STORE_OP_DEL, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = 1, .argv = dargs};
        node_propose(x, &d);
        return;
    }
    if (o != NULL && store_obj_type(o) == STORE_STRING) {
        const uint8_t *v;
        size_t len;
        int64_t have;
        store_obj_string(o, &v, &len);
        if (hy_parse_i64(v, len, &have) && have >= seq) {
            resp_write_int(&x->w, 0);
            return;
        }
    }
    int vlen = snprintf(value, sizeof(value), "%lld", (long long)seq);
    struct store_arg args[2] = {{(const uint8_t *)key, (size_t)klen},
                                {(const uint8_t *)value, (size_t)vlen}};
    struct store_entry e = {
        .op = STORE_OP_SET, .time_ms = x->now_ms, .expire_at_ms = -1, .argc = 2, .argv = args};
    node_propose(x, &e);
}

/* HY.WANAPPLY slot batch: run in the partition holding slot (dispatch.c routes it there, to its
 * leader), as one entry; the reply is the highest source sequence number applied from the
 * batch's source. The batch is checked here, so that every replica applies a well-formed one. */
void cmd_hy_wanapply(struct cmd_ctx *x)
{
    const struct resp_arg *b = &x->argv[2];
    struct wan_batch_reader r;
    enum hy_status rc = wan_batch_open(&r, b->ptr, b->len);
    uint64_t index;
    const uint8_t *entry;
    size_t len;
    while (rc == HY_OK) {
        rc = wan_batch_next(&r, &index, &entry, &len);
    }
    if (rc != HY_ENOTFOUND) {
        resp_write_error(&x->w, "ERR corrupt WAN batch");
        return;
    }
    struct wan_role role;
    node_wan_role(x->node, &role);
    if (role.kind == WAN_ROLE_PRIMARY && !r.active_active &&
        (role.from[0] == '\0' || strcmp(role.from, r.origin) == 0)) {
        /* A promoted cluster's content wins over its former primary's (docs/wan.md "Region
         * failover"): the sender reads the code and steps down. */
        resp_write_errorf(&x->w,
                          WAN_DEMOTED_CODE " %llu %s: this cluster was promoted to primary; "
                                           "the sender is passive from now on",
                          (unsigned long long)role.epoch, role.by);
        return;
    }
    struct store_arg args[1] = {{b->ptr, b->len}};
    struct store_entry e = {.op = STORE_OP_WAN_APPLY,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = 1,
                            .argv = args};
    node_propose(x, &e);
}

void cmd_halyard_wan(struct cmd_ctx *x)
{
    if (x->argc < 3) {
        node_reply_syntax_error(x);
        return;
    }
    const struct resp_arg *sub = &x->argv[2];
    if (node_arg_is(sub, "ADD")) {
        wan_add(x);
    } else if (node_arg_is(sub, "CONFLICTS")) {
        wan_conflicts(x);
    } else if (node_arg_is(sub, "DEMOTE")) {
        wan_demote(x);
    } else if (node_arg_is(sub, "PROMOTE")) {
        wan_promote(x);
    } else if (node_arg_is(sub, "POS")) {
        wan_pos(x);
    } else if (node_arg_is(sub, "REMOVE")) {
        wan_remove(x);
    } else if (node_arg_is(sub, "STATUS") &&
               (x->argc == 3 || (x->argc == 4 && node_arg_is(&x->argv[3], "JSON")))) {
        wan_status(x, x->argc == 4);
    } else {
        node_reply_syntax_error(x);
    }
}
