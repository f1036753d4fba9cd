/*
 * pubsub.c - SUBSCRIBE, PSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH and PUBSUB, cluster-wide.
 *
 * Subscriptions belong to connections, so they live on the node the client is connected to,
 * not in any Raft group. PUBLISH delivers to this node's subscribers and sends one PUBLISH
 * frame to every other member over the peer transport (as Redis Cluster broadcasts over its
 * bus), which delivers to its own: at most once (a member whose link is down misses the
 * message, as a Redis subscriber that is disconnected does), in the order each node published
 * (one connection per node pair keeps it), never stored nor replayed. docs/protocol.md
 * "Pub/sub" argues the choice against the metadata group's log.
 *
 * A subscriber that does not read its messages is disconnected once its unread output passes
 * client-output-buffer-limit-pubsub (Redis's client-output-buffer-limit pubsub class), so a
 * slow consumer costs bounded memory.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/log.h"
#include "common/strutil.h"
#include "node/node_internal.h"

struct sub_name {
    uint8_t *p;
    size_t len;
};

struct node_subs {
    struct sub_name *ch, *pat, *sch; /* channels, patterns, shard channels */
    size_t nch, npat, nsch, cap_ch, cap_pat, cap_sch;
};

static struct node_subs *subs_of(struct node_client *c)
{
    if (c->subs == NULL) {
        c->subs = hy_xcalloc(1, sizeof(*c->subs));
    }
    return c->subs;
}

size_t node_pubsub_count(const struct node_client *c)
{
    return c->subs == NULL ? 0 : c->subs->nch + c->subs->npat + c->subs->nsch;
}

#define NOT_FOUND SIZE_MAX

static size_t find(const struct sub_name *v, size_t n, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == len && memcmp(v[i].p, p, len) == 0) {
            return i;
        }
    }
    return NOT_FOUND;
}

/* Adds name to the list; returns 0 when it was there already. */
static int add(struct sub_name **v, size_t *n, size_t *cap, const uint8_t *p, size_t len)
{
    if (find(*v, *n, p, len) != NOT_FOUND) {
        return 0;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = hy_xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[*n].p = hy_xmalloc(HY_MAX(len, 1));
    memcpy((*v)[*n].p, p, len);
    (*v)[*n].len = len;
    (*n)++;
    return 1;
}

static int del(struct sub_name *v, size_t *n, const uint8_t *p, size_t len)
{
    size_t i = find(v, *n, p, len);
    if (i == NOT_FOUND) {
        return 0;
    }
    hy_free(v[i].p);
    v[i] = v[*n - 1]; /* order does not matter, except for UNSUBSCRIBE's replies (below) */
    (*n)--;
    return 1;
}

void node_pubsub_free(struct node_client *c)
{
    struct node_subs *s = c->subs;
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->nch; i++) {
        hy_free(s->ch[i].p);
    }
    for (size_t i = 0; i < s->npat; i++) {
        hy_free(s->pat[i].p);
    }
    for (size_t i = 0; i < s->nsch; i++) {
        hy_free(s->sch[i].p);
    }
    hy_free(s->ch);
    hy_free(s->pat);
    hy_free(s->sch);
    hy_free(s);
    c->subs = NULL;
}

/* ["subscribe", name, count]: a push in RESP3, an array in RESP2. */
static void write_notice(struct resp_writer *w, const char *kind, const uint8_t *p, size_t len,
                         size_t count)
{
    resp_write_push(w, 3);
    resp_write_bulk_str(w, kind);
    if (p != NULL) {
        resp_write_bulk(w, p, len);
    } else {
        resp_write_null(w);
    }
    resp_write_int(w, (int64_t)count);
}

static void subscribe(struct cmd_ctx *x, int pattern)
{
    struct node_subs *s = subs_of(x->client);
    for (size_t i = 1; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        if (pattern) {
            add(&s->pat, &s->npat, &s->cap_pat, a->ptr, a->len);
        } else {
            add(&s->ch, &s->nch, &s->cap_ch, a->ptr, a->len);
        }
        write_notice(&x->w, pattern ? "psubscribe" : "subscribe", a->ptr, a->len, s->nch + s->npat);
    }
}

static void unsubscribe(struct cmd_ctx *x, int pattern)
{
    struct node_subs *s = subs_of(x->client);
    struct sub_name **v = pattern ? &s->pat : &s->ch;
    size_t *n = pattern ? &s->npat : &s->nch;
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    if (x->argc > 1) {
        for (size_t i = 1; i < x->argc; i++) {
            del(*v, n, x->argv[i].ptr, x->argv[i].len);
            write_notice(&x->w, kind, x->argv[i].ptr, x->argv[i].len, s->nch + s->npat);
        }
        return;
    }
    if (*n == 0) {
        write_notice(&x->w, kind, NULL, 0, s->nch + s->npat);
        return;
    }
    while (*n > 0) {
        /* The last first: removing it moves nothing. */
        struct sub_name last = (*v)[*n - 1];
        (*n)--;
        write_notice(&x->w, kind, last.p, last.len, s->nch + s->npat);
        hy_free(last.p);
    }
}

void cmd_subscribe(struct cmd_ctx *x)
{
    subscribe(x, 0);
}

void cmd_psubscribe(struct cmd_ctx *x)
{
    subscribe(x, 1);
}

void cmd_unsubscribe(struct cmd_ctx *x)
{
    unsubscribe(x, 0);
}

void cmd_punsubscribe(struct cmd_ctx *x)
{
    unsubscribe(x, 1);
}

/* ---- sharded pub/sub (Redis 7) ------------------------------------------------------------------
 *
 * A shard channel lives in its slot, as a key: SSUBSCRIBE's channels must share one slot
 * (-CROSSSLOT otherwise). Every replica of the slot's partition serves them, as Redis 7
 * Cluster lets a shard's replicas do, and every node holds a replica of every partition today
 * (docs/partitioning.md), so every node serves every shard channel: SPUBLISH delivers to this
 * node's shard subscribers and sends the PUBLISH frame, flagged as sharded, to every other
 * member. When placement gives a partition to fewer nodes, -MOVED for the others goes here. */

static void encode_publish(struct hy_buf *out, const struct resp_arg *ch, const struct resp_arg *m);
static size_t deliver(struct hy_node *n, const uint8_t *ch, size_t chlen, const uint8_t *msg,
                      size_t mlen);

#define SHARD_FLAG 0x80000000u /* in the PUBLISH frame's channel length: a shard channel */

int node_cmd_shard_channels(const struct cmd_def *d)
{
    return d != NULL && (d->handler == cmd_ssubscribe || d->handler == cmd_sunsubscribe ||
                         d->handler == cmd_spublish);
}

/* Whether argv[1..] share one slot; replies -CROSSSLOT otherwise. */
static int one_slot(struct cmd_ctx *x)
{
    for (size_t i = 2; i < x->argc; i++) {
        if (hy_key_slot(x->argv[i].ptr, x->argv[i].len) !=
            hy_key_slot(x->argv[1].ptr, x->argv[1].len)) {
            resp_write_error(&x->w, "CROSSSLOT Keys in request don't hash to the same slot");
            return 0;
        }
    }
    return 1;
}

void cmd_ssubscribe(struct cmd_ctx *x)
{
    if (!one_slot(x)) {
        return;
    }
    struct node_subs *s = subs_of(x->client);
    for (size_t i = 1; i < x->argc; i++) {
        const struct resp_arg *a = &x->argv[i];
        add(&s->sch, &s->nsch, &s->cap_sch, a->ptr, a->len);
        write_notice(&x->w, "ssubscribe", a->ptr, a->len, s->nsch);
    }
}

void cmd_sunsubscribe(struct cmd_ctx *x)
{
    if (x->argc > 1 && !one_slot(x)) {
        return;
    }
    struct node_subs *s = subs_of(x->client);
    if (x->argc > 1) {
        for (size_t i = 1; i < x->argc; i++) {
            del(s->sch, &s->nsch, x->argv[i].ptr, x->argv[i].len);
            write_notice(&x->w, "sunsubscribe", x->argv[i].ptr, x->argv[i].len, s->nsch);
        }
        return;
    }
    if (s->nsch == 0) {
        write_notice(&x->w, "sunsubscribe", NULL, 0, 0);
        return;
    }
    while (s->nsch > 0) {
        struct sub_name last = s->sch[--s->nsch];
        write_notice(&x->w, "sunsubscribe", last.p, last.len, s->nsch);
        hy_free(last.p);
    }
}

/* Delivers ["smessage", channel, message] to this node's subscribers of the shard channel. */
static size_t deliver_shard(struct hy_node *n, const uint8_t *ch, size_t chlen, const uint8_t *msg,
                            size_t mlen)
{
    size_t receivers = 0;
    for (struct node_client *c = n->clients; c != NULL; c = c->next) {
        struct node_subs *s = c->subs;
        if (s == NULL || (c->flags & NODE_CLIENT_CLOSE_ASAP) ||
            find(s->sch, s->nsch, ch, chlen) == NOT_FOUND) {
            continue;
        }
        struct resp_writer w = {&c->out, c->proto};
        resp_write_push(&w, 3);
        resp_write_bulk_str(&w, "smessage");
        resp_write_bulk(&w, ch, chlen);
        resp_write_bulk(&w, msg, mlen);
        replica_mark_ready(n, c);
        receivers++;
    }
    return receivers;
}

void cmd_spublish(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    size_t count = 0;
    const struct node_member *members = node_members(n, &count);
    struct hy_buf frame;
    hy_buf_init(&frame);
    encode_publish(&frame, &x->argv[1], &x->argv[2]);
    hy_store_u32le(frame.data, (uint32_t)x->argv[1].len | SHARD_FLAG);
    for (size_t i = 0; i < count; i++) {
        if (node_member_is_peer(n, &members[i])) {
            node_outbox_push(n, NODE_PUBLISH, members[i].name, 0, frame.data, frame.len);
        }
    }
    hy_buf_free(&frame);
    resp_write_int(&x->w, (int64_t)deliver_shard(n, x->argv[1].ptr, x->argv[1].len, x->argv[2].ptr,
                                                 x->argv[2].len));
}

/* RESET and friends: drop every subscription without a word. */
void node_pubsub_reset(struct node_client *c)
{
    node_pubsub_free(c);
}

/* ---- delivery ------------------------------------------------------------------------------ */

/* One message frame: ["message", ch, msg], or ["pmessage", pat, ch, msg] when pat is set. */
static void write_message(struct resp_writer *w, const uint8_t *pat, size_t plen, const uint8_t *ch,
                          size_t chlen, const uint8_t *msg, size_t mlen)
{
    if (pat != NULL) {
        resp_write_push(w, 4);
        resp_write_bulk_str(w, "pmessage");
        resp_write_bulk(w, pat, plen);
    } else {
        resp_write_push(w, 3);
        resp_write_bulk_str(w, "message");
    }
    resp_write_bulk(w, ch, chlen);
    resp_write_bulk(w, msg, mlen);
}

static void deliver_to(struct hy_node *n, struct node_client *c, const uint8_t *pat, size_t plen,
                       const uint8_t *ch, size_t chlen, const uint8_t *msg, size_t mlen)
{
    struct resp_writer w = {&c->out, c->proto};
    write_message(&w, pat, plen, ch, chlen, msg, mlen);
    int64_t limit = n->cfg->client_output_buffer_limit_pubsub;
    if (limit > 0 && (int64_t)(c->out.len + c->out_inflight) > limit &&
        !(c->flags & NODE_CLIENT_CLOSE_ASAP)) {
        hy_log(n->log, HY_LOG_WARN,
               "client %llu (%s) closed: subscriber output over client-output-buffer-limit-pubsub "
               "(%zu bytes pending)",
               (unsigned long long)c->id, c->addr, c->out.len + c->out_inflight);
        c->flags |= NODE_CLIENT_CLOSE_ASAP;
        n->kills++;
    }
    replica_mark_ready(n, c);
}

/* Delivers to this node's subscribers; returns how many received it (Redis counts a client
 * once per matching subscription). */
static size_t deliver(struct hy_node *n, const uint8_t *ch, size_t chlen, const uint8_t *msg,
                      size_t mlen)
{
    size_t receivers = 0;
    for (struct node_client *c = n->clients; c != NULL; c = c->next) {
        struct node_subs *s = c->subs;
        if (s == NULL || (c->flags & NODE_CLIENT_CLOSE_ASAP)) {
            continue;
        }
        if (find(s->ch, s->nch, ch, chlen) != NOT_FOUND) {
            deliver_to(n, c, NULL, 0, ch, chlen, msg, mlen);
            receivers++;
        }
        for (size_t i = 0; i < s->npat && !(c->flags & NODE_CLIENT_CLOSE_ASAP); i++) {
            if (hy_glob_match(s->pat[i].p, s->pat[i].len, ch, chlen, 0)) {
                deliver_to(n, c, s->pat[i].p, s->pat[i].len, ch, chlen, msg, mlen);
                receivers++;
            }
        }
    }
    return receivers;
}

/* The PUBLISH frame's payload: channel length (u32 LE), channel, message. */
static void encode_publish(struct hy_buf *out, const struct resp_arg *ch, const struct resp_arg *m)
{
    hy_buf_append_u32le(out, (uint32_t)ch->len);
    hy_buf_append(out, ch->ptr, ch->len);
    hy_buf_append(out, m->ptr, m->len);
}

/* Channels under this prefix are the node's own (cluster events): a client may subscribe to
 * them but not publish on them, so no client can forge an event another client would act on. */
#define HALYARD_CHANNEL_PREFIX "__halyard__:"

static int reserved_channel(const struct resp_arg *ch)
{
    size_t plen = sizeof(HALYARD_CHANNEL_PREFIX) - 1;
    return ch->len >= plen && memcmp(ch->ptr, HALYARD_CHANNEL_PREFIX, plen) == 0;
}

static const char events_channel[] = NODE_EVENTS_CHANNEL;
#define EVENTS_CHANNEL_LEN (sizeof(events_channel) - 1)

void node_pubsub_event(struct hy_node *n, const char *json)
{
    deliver(n, (const uint8_t *)events_channel, EVENTS_CHANNEL_LEN, (const uint8_t *)json,
            strlen(json));
}

/* The subscription is SUBSCRIBE's, so that every client library's pub/sub reader takes its
 * frames (RESP3 pushes, or RESP2's subscriber context); the replay goes into the reply itself,
 * after the notice, so nothing published meanwhile can come between (one loop turn). */
void node_pubsub_events_subscribe(struct cmd_ctx *x, int64_t since)
{
    struct node_subs *s = subs_of(x->client);
    const uint8_t *ch = (const uint8_t *)events_channel;
    add(&s->ch, &s->nch, &s->cap_ch, ch, EVENTS_CHANNEL_LEN);
    write_notice(&x->w, "subscribe", ch, EVENTS_CHANNEL_LEN, s->nch + s->npat);
    uint64_t last = node_events_last_id(x->node);
    for (uint64_t id = since < 0 ? last + 1 : (uint64_t)since + 1; id <= last; id++) {
        const char *json = node_event_get(x->node, id);
        if (json != NULL) { /* NULL: overwritten in the ring; the reader sees the gap */
            write_message(&x->w, NULL, 0, ch, EVENTS_CHANNEL_LEN, (const uint8_t *)json,
                          strlen(json));
        }
    }
}

void node_pubsub_events_unsubscribe(struct cmd_ctx *x)
{
    struct node_subs *s = subs_of(x->client);
    const uint8_t *ch = (const uint8_t *)events_channel;
    del(s->ch, &s->nch, ch, EVENTS_CHANNEL_LEN);
    write_notice(&x->w, "unsubscribe", ch, EVENTS_CHANNEL_LEN, s->nch + s->npat);
}

/* HALYARD EVENTS SUBSCRIBE / UNSUBSCRIBE: the subscriber context's own commands. */
static int events_subscription_cmd(const struct cmd_def *d, size_t argc,
                                   const struct resp_arg *argv)
{
    return d->handler == cmd_halyard && argc >= 3 && node_arg_is(&argv[1], "EVENTS") &&
           (node_arg_is(&argv[2], "SUBSCRIBE") || node_arg_is(&argv[2], "UNSUBSCRIBE"));
}

void cmd_publish(struct cmd_ctx *x)
{
    struct hy_node *n = x->node;
    if (reserved_channel(&x->argv[1])) {
        resp_write_error(&x->w, "ERR channels under " HALYARD_CHANNEL_PREFIX
                                " carry this node's cluster events: clients may not publish there");
        return;
    }
    size_t count = 0;
    const struct node_member *members = node_members(n, &count);
    struct hy_buf frame;
    hy_buf_init(&frame);
    encode_publish(&frame, &x->argv[1], &x->argv[2]);
    for (size_t i = 0; i < count; i++) {
        if (node_member_is_peer(n, &members[i])) {
            node_outbox_push(n, NODE_PUBLISH, members[i].name, 0, frame.data, frame.len);
        }
    }
    hy_buf_free(&frame);
    resp_write_int(
        &x->w, (int64_t)deliver(n, x->argv[1].ptr, x->argv[1].len, x->argv[2].ptr, x->argv[2].len));
}

void node_publish_received(struct hy_node *n, const char *from, const uint8_t *data, size_t len,
                           uint64_t now_ms)
{
    (void)now_ms;
    uint32_t word = len >= 4 ? hy_load_u32le(data) : 0;
    size_t chlen = word & ~SHARD_FLAG;
    if (len < 4 || chlen > len - 4) {
        hy_log(n->log, HY_LOG_WARN, "peer %s: dropped a malformed PUBLISH", from);
        return;
    }
    if (!(word & SHARD_FLAG)) {
        deliver(n, data + 4, chlen, data + 4 + chlen, len - 4 - chlen);
        return;
    }
    deliver_shard(n, data + 4, chlen, data + 4 + chlen, len - 4 - chlen);
}

/* ---- PUBSUB ------------------------------------------------------------------------------------
 */

/* Appends name to out (a list of unique names) unless it is there. */
static void unique_add(struct sub_name **out, size_t *n, size_t *cap, const struct sub_name *s)
{
    if (find(*out, *n, s->p, s->len) != NOT_FOUND) {
        return;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *out = hy_xrealloc(*out, *cap * sizeof(**out));
    }
    (*out)[(*n)++] = *s; /* borrowed */
}

/* kind: 0 channels (CHANNELS), 1 patterns (NUMPAT), 2 shard channels (SHARDCHANNELS). */
static void pubsub_channels(struct cmd_ctx *x, int kind)
{
    struct sub_name *all = NULL;
    size_t n = 0, cap = 0;
    int patterns = kind == 1;
    for (struct node_client *c = x->node->clients; c != NULL; c = c->next) {
        if (c->subs == NULL) {
            continue;
        }
        size_t cnt = patterns ? c->subs->npat : kind == 2 ? c->subs->nsch : c->subs->nch;
        const struct sub_name *v = patterns ? c->subs->pat : kind == 2 ? c->subs->sch : c->subs->ch;
        for (size_t i = 0; i < cnt; i++) {
            if (!patterns && x->argc == 3 &&
                !hy_glob_match(x->argv[2].ptr, x->argv[2].len, v[i].p, v[i].len, 0)) {
                continue;
            }
            unique_add(&all, &n, &cap, &v[i]);
        }
    }
    if (patterns) {
        resp_write_int(&x->w, (int64_t)n);
    } else {
        resp_write_array(&x->w, n);
        for (size_t i = 0; i < n; i++) {
            resp_write_bulk(&x->w, all[i].p, all[i].len);
        }
    }
    hy_free(all);
}

static void pubsub_numsub(struct cmd_ctx *x, int shard)
{
    resp_write_map(&x->w, x->argc - 2);
    for (size_t i = 2; i < x->argc; i++) {
        size_t count = 0;
        for (struct node_client *c = x->node->clients; c != NULL; c = c->next) {
            if (c->subs != NULL &&
                find(shard ? c->subs->sch : c->subs->ch, shard ? c->subs->nsch : c->subs->nch,
                     x->argv[i].ptr, x->argv[i].len) != NOT_FOUND) {
                count++;
            }
        }
        resp_write_bulk(&x->w, x->argv[i].ptr, x->argv[i].len);
        resp_write_int(&x->w, (int64_t)count);
    }
}

void cmd_pubsub(struct cmd_ctx *x)
{
    const struct resp_arg *sub = &x->argv[1];
    if (node_arg_is(sub, "CHANNELS") && x->argc <= 3) {
        pubsub_channels(x, 0);
    } else if (node_arg_is(sub, "NUMPAT") && x->argc == 2) {
        pubsub_channels(x, 1);
    } else if (node_arg_is(sub, "NUMSUB")) {
        pubsub_numsub(x, 0);
    } else if (node_arg_is(sub, "SHARDCHANNELS") && x->argc <= 3) {
        pubsub_channels(x, 2);
    } else if (node_arg_is(sub, "SHARDNUMSUB")) {
        pubsub_numsub(x, 1);
    } else if (node_arg_is(sub, "HELP") && x->argc == 2) {
        static const char *const lines[] = {
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "HELP",
            "    Print this help."};
        node_reply_help(x, lines, HY_ARRAY_LEN(lines));
    } else {
        resp_write_errorf(&x->w,
                          "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                          "PUBSUB HELP.",
                          (int)HY_MIN(sub->len, 128), (const char *)sub->ptr);
    }
}

/* RESP2 clients with subscriptions may only run these (Redis's subscriber context). */
int node_pubsub_allowed(const struct node_client *c, const struct cmd_def *d, size_t argc,
                        const struct resp_arg *argv)
{
    if (c->proto >= 3 || node_pubsub_count(c) == 0 || d == NULL) {
        return 1;
    }
    return events_subscription_cmd(d, argc, argv) || d->handler == cmd_subscribe ||
           d->handler == cmd_unsubscribe || d->handler == cmd_psubscribe ||
           d->handler == cmd_punsubscribe || d->handler == cmd_ssubscribe ||
           d->handler == cmd_sunsubscribe || d->handler == cmd_ping || d->handler == cmd_quit ||
           d->handler == cmd_reset;
}

/* ---- keyspace notifications ------------------------------------------------------------------
 *
 * Each replica reports the events of the entries it applies (store.h "keyspace
 * notifications") to this callback, which publishes them to this node's subscribers only:
 * every node holding a replica of the key's partition applies the same entry, so a subscriber
 * on any such node hears of every change, once, without a PUBLISH frame between nodes. */

void node_notify_keyspace_cb(void *ctx, unsigned cls, const char *event, const uint8_t *key,
                             size_t klen)
{
    struct hy_node *n = ctx;
    unsigned flags;
    if (!config_notify_parse(n->cfg->notify_keyspace_events, &flags) || !(flags & cls)) {
        return;
    }
    /* The partition map is the cluster's own record (partmap.c), written when a leader is
     * elected: not a user's key, so not announced (a subscriber saw its "set" among its own). */
    static const char partmap_key[] = "halyard:partition-map";
    if (klen == sizeof(partmap_key) - 1 && memcmp(key, partmap_key, klen) == 0) {
        return;
    }
    struct hy_buf ch;
    hy_buf_init(&ch);
    size_t elen = strlen(event);
    if (flags & CONFIG_NOTIFY_KEYSPACE) {
        hy_buf_append(&ch, "__keyspace@0__:", 15);
        hy_buf_append(&ch, key, klen);
        deliver(n, ch.data, ch.len, (const uint8_t *)event, elen);
    }
    if (flags & CONFIG_NOTIFY_KEYEVENT) {
        hy_buf_reset(&ch);
        hy_buf_append(&ch, "__keyevent@0__:", 15);
        hy_buf_append(&ch, event, elen);
        deliver(n, ch.data, ch.len, key, klen);
    }
    hy_buf_free(&ch);
}

unsigned node_notify_classes(const struct hy_config *cfg)
{
    unsigned flags;
    if (!config_notify_parse(cfg->notify_keyspace_events, &flags) ||
        !(flags & (CONFIG_NOTIFY_KEYSPACE | CONFIG_NOTIFY_KEYEVENT))) {
        return 0; /* no channel to publish on: apply need not look */
    }
    return flags & ~(CONFIG_NOTIFY_KEYSPACE | CONFIG_NOTIFY_KEYEVENT);
}
