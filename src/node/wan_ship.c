/*
 * wan_ship.c - the source side of links between clusters (docs/wan.md): every replica of a
 * partition collects the data changes it applies (the store's tap) in an outbox; the
 * partition's leader ships them in batches to each link's target (through the shell, which
 * owns the sockets: node_wan_take / node_wan_done) and records how far the target applied
 * them in the metadata group ("halyard:wanpos:<link>:<partition>"), which every replica
 * trims its outbox by. A new leader starts from that committed position: a change is sent at
 * least once, and the target applies it once (STORE_OP_WAN_APPLY, by sequence number).
 *
 * A change's sequence number is its log index times 65536 plus its place among the writes of
 * that entry (a transaction or a script writes several), so it grows with the log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "node/node_internal.h"
#include "node/wan.h"

#define WAN_RESYNC_KEYS       256u /* a resync batch's keys, about (whole buckets are read) */
#define WAN_BATCH_MAX_BYTES   (256u << 10)
#define WAN_BATCH_MAX_ENTRIES 1024u
#define WAN_TIMEOUT_MS        5000u
#define WAN_BACKOFF_MIN_MS    100u
#define WAN_BACKOFF_MAX_MS    5000u
#define WAN_REFRESH_MS        200u /* how often the links are read back from the metadata group */
#define WAN_READS_MAX         256u /* keys whose reads a partition's leader counts between flushes */
#define WAN_READS_EVERY_MS    1000u /* how often those counts are proposed (STORE_OP_WAN_HITS) */
#define WAN_HITS_PER_ENTRY    64u   /* keys per STORE_OP_WAN_HITS entry (store_wan.c's bound) */
#define WAN_KEY_READ_MAX      1024u /* longer keys' reads are not counted */
#define WAN_POS_EVERY_MS      200u  /* the least time between two position writes of a partition */
#define REC_HEADER            WAN_OUTBOX_REC_HEADER /* seq 8, captured at (ms) 8, length 4 */

/* One partition's changes not yet known applied by every link's target, in order. */
/* Reads of one key a partition's leader served since its last STORE_OP_WAN_HITS. */
struct wan_read {
    uint8_t *key;
    size_t klen;
    uint32_t hash, count;
};

struct node_wan_outbox {
    struct hy_buf recs; /* REC_HEADER + entry, repeated; the first kept at `head` */
    size_t head;
    size_t count;
    uint64_t from_seq;   /* every change from this sequence number on is here (or trimmed) */
    uint64_t next_apply; /* the log index the next apply should have: a jump means a snapshot */
    uint64_t cur_index;  /* the entry being applied, and its changes so far */
    uint32_t cur_sub;
    uint64_t cur_ms;
    uint64_t last_seq;       /* the last change collected */
    uint64_t skipped;        /* writes this slice cannot ship (docs/wan.md) */
    uint64_t hlc_asked_ms;   /* when this leader last proposed STORE_OP_WAN_HLC */
    uint64_t fence_asked_ms; /* when this leader last proposed STORE_OP_WAN_FENCE */
    /* wan-outbox-max-bytes was reached: changes were dropped (until no link is left, or a
     * resync starts over); the leader resyncs once it has shipped what was kept. */
    int overflow;
    /* HIGHER_HITS counts reads (docs/wan.md "HIGHER_HITS"): the keys this leader served reads
     * of, proposed every WAN_READS_EVERY_MS; reads of more keys than that are not counted. */
    struct wan_read reads[WAN_READS_MAX];
    size_t nreads;
    uint64_t reads_flushed_ms;
    uint64_t reads_uncounted;
};

/* A (link, partition)'s resync (docs/wan.md "Resync"): the committed position is taken away
 * (MARK), the keyspace is walked and its states sent (SCAN), then the outbox's changes after
 * the scan's base are shipped as usual (REPLAY) up to where the scan ended, and the position
 * is written again. */
enum rs_phase { RS_NONE = 0, RS_MARK, RS_SCAN, RS_REPLAY };

struct node_wan_part {
    struct wan_shipper sh;
    uint64_t term; /* the leader term this shipper was set up in; 0: not leading */
    int gap;       /* the outbox lacks changes after acked: a resync is needed */
    uint64_t pos_sent_ms;
    int pos_owed;  /* a resync ended: its position is written even with no change shipped */
    int want;      /* a resync is wanted (it starts when it can: an active-active link waits
                    * for its partition's versions) */
    int rs;        /* enum rs_phase */
    int scan_done; /* the cursor came back: the last scan batch is built */
    int restart;   /* the target refused a scan batch as stale: start over */
    int built;     /* scan batches built in this resync */
    uint64_t base; /* the scan's base: the last sequence number its first step saw applied */
    uint64_t end;  /* the last sequence number the scan's last step saw applied */
    uint64_t cursor;
    uint64_t next;       /* the number of the next state in a resync batch (never reset: it
                          * tells the answers of two scan batches apart) */
    struct hy_buf batch; /* the scan batch in flight or to resend; empty: none */
    uint64_t batch_last, batch_keys;
    int in_flight;
    uint64_t retry_at_ms, backoff_ms, mark_ms, started_ms;
    uint64_t keys, bytes; /* the current (or last) resync's states acknowledged, and bytes */
    uint64_t last_ms;     /* how long the last resync took */
    uint64_t paced;       /* scan batches held back by wan-resync-bandwidth (this node) */
    uint64_t resyncs;     /* resyncs this node completed as the partition's leader */
    uint64_t unpos_ms;    /* demoted: when the position was last asked away */
    /* Why the last batch of this partition failed (WAN STATUS), until one is applied. */
    char last_error[160];
};

struct node_wan_link {
    struct wan_link def;
    struct node_wan_part *parts; /* one per partition (group p + 1) */
    int down; /* the last batch of any partition this node leads failed: WAN_LINK_DOWN told */
};

struct node_wan {
    struct node_wan_link links[WAN_LINKS_MAX];
    size_t count;
    uint64_t refresh_ms;
    int collected;           /* a change was collected since node_wan_take last looked */
    uint64_t demote_sent_ms; /* when a target's -DEMOTED was last passed to the metadata leader */
    /* Without a link, each partition's outbox is only emptied: once per change of the node's
     * activity (node_walk_due), not at every tick (a walk of every partition). */
    struct node_walk unlinked;
    /* wan-resync-bandwidth: no new scan batch of any resync leaves before this time */
    uint64_t resync_allow_ms;
};

static uint64_t seq_of(uint64_t index, uint32_t sub)
{
    return (index << 16) | sub;
}

static void parts_free(struct node_wan_part *parts, size_t n)
{
    for (size_t i = 0; parts != NULL && i < n; i++) {
        hy_buf_free(&parts[i].batch);
    }
    hy_free(parts);
}

/* ---- collecting --------------------------------------------------------------------------- */

static struct node_wan_outbox *outbox_of(struct node_group *g)
{
    if (g->wan_out == NULL) {
        g->wan_out = hy_xcalloc(1, sizeof(*g->wan_out));
        hy_buf_init(&g->wan_out->recs);
    }
    return g->wan_out;
}

static void outbox_clear(struct node_wan_outbox *ob, uint64_t from_seq)
{
    hy_buf_reset(&ob->recs);
    ob->head = 0;
    ob->count = 0;
    ob->from_seq = from_seq;
    ob->overflow = 0;
}

/* Whether a write is shipped: the ops whose first argument is the key they change. The rest
 * are either not data (no-ops, sessions, members, WAN batches, ACL users, encoding
 * thresholds) or not shipped by
 * this slice (FLUSHALL, script and function caches, stream consumer groups read by
 * XREADGROUP): counted in `skipped`. A transaction, a script and a session request are not
 * shipped as such: the writes they apply come through the tap one by one. */
static int shippable(const struct store_entry *e, int *skip)
{
    *skip = 0;
    switch (e->op) {
    case STORE_OP_NOOP:
    case STORE_OP_SESSION_OPEN:
    case STORE_OP_SESSION_REQ:
    case STORE_OP_SESSION_REQW:
    case STORE_OP_MEMBER_SET:
    case STORE_OP_EXEC:
    case STORE_OP_EVAL:
    case STORE_OP_FCALL:
    case STORE_OP_WAN_APPLY:
    case STORE_OP_ENCODING_SET:
    case STORE_OP_WAN_HLC:
    case STORE_OP_WAN_HITS: /* its keys' states are tapped one by one (store_wan.c) */
    case STORE_OP_ACL_SETUSER:
    case STORE_OP_ACL_DELUSER:
    case STORE_OP_ACL_LOAD: return 0;
    case STORE_OP_FLUSHALL:
    case STORE_OP_SCRIPT_LOAD:
    case STORE_OP_SCRIPT_FLUSH:
    case STORE_OP_FUNCTION_LOAD:
    case STORE_OP_FUNCTION_DELETE:
    case STORE_OP_FUNCTION_FLUSH:
    case STORE_OP_FUNCTION_RESTORE:
    case STORE_OP_XREADGROUP: *skip = 1; return 0;
    default:
        if (e->argc == 0 || e->argv[0].len == 0) {
            *skip = 1;
            return 0;
        }
        return 1;
    }
}

static void tap(void *ctx, const struct store_entry *e, const uint8_t *entry, size_t len)
{
    struct node_group *g = ctx;
    struct node_wan_outbox *ob = g->wan_out;
    int skip =
        0; /* set by shippable() only: a tap before the outbox knows its entry skips nothing */
    if (ob == NULL || ob->cur_index == 0 || !shippable(e, &skip)) {
        if (ob != NULL && skip) {
            ob->skipped++;
        }
        return;
    }
    if (ob->cur_sub == 0xffff) {
        ob->skipped++; /* more writes in one entry than a sequence number can tell apart */
        return;
    }
    uint64_t seq = seq_of(ob->cur_index, ++ob->cur_sub);
    struct node_wan *w = g->node->wan;
    if (w != NULL && w->count == 0) {
        /* No link is known: nothing is kept (a cluster without links pays no copy), and the
         * outbox claims only what comes after this change. */
        ob->from_seq = seq_of(ob->cur_index + 1, 0);
        return;
    }
    if (ob->overflow) {
        return;
    }
    uint64_t max = (uint64_t)g->node->cfg->wan_outbox_max_bytes;
    if (g->node->cfg->wan_queue_full == WAN_QUEUE_FULL_BLOCK) {
        /* Writes are refused from max on (node_wan_blocked), but those already proposed still
         * apply: they are kept up to twice max, beyond which even this mode drops and
         * resyncs (the outbox stays bounded). */
        max *= 2;
    }
    if (ob->recs.len - ob->head + REC_HEADER + len > max) {
        /* The targets are too far behind: keep no more; the leader resyncs them. */
        hy_log(g->node->log, HY_LOG_WARN,
               "WAN: partition %u's outbox is full (%llu bytes): changes from seq %llu on are "
               "not kept; its links need a resync",
               g->id - 1, (unsigned long long)max, (unsigned long long)seq);
        ob->overflow = 1;
        return;
    }
    uint8_t *p = hy_buf_reserve(&ob->recs, REC_HEADER + len);
    hy_store_u64le(p, seq);
    hy_store_u64le(p + 8, ob->cur_ms);
    hy_store_u32le(p + 16, (uint32_t)len);
    memcpy(p + REC_HEADER, entry, len);
    ob->recs.len += REC_HEADER + len;
    ob->count++;
    ob->last_seq = seq;
    if (w != NULL) {
        w->collected = 1;
    }
}

int node_wan_blocked(const struct node_group *g, size_t *bytes_out)
{
    const struct hy_node *n = g->node;
    const struct node_wan_outbox *ob = g->wan_out;
    *bytes_out = ob != NULL ? ob->recs.len - ob->head : 0;
    return ob != NULL && n->cfg->wan_queue_full == WAN_QUEUE_FULL_BLOCK && n->wan != NULL &&
           n->wan->count > 0 && *bytes_out >= (uint64_t)n->cfg->wan_outbox_max_bytes;
}

int node_wan_pending(const struct hy_node *n)
{
    return n->wan != NULL && n->wan->collected;
}

static void refresh_links(struct hy_node *n);

/* The metadata group's tap: a link added or removed is taken into account as soon as this node
 * applies it, so that every change a partition replica applies after that is kept for it
 * (with the cron's periodic look alone, changes of the next WAN_REFRESH_MS were lost). */
static void meta_tap(void *ctx, const struct store_entry *e, const uint8_t *entry, size_t len)
{
    (void)entry;
    (void)len;
    struct node_group *g = ctx;
    size_t plen = strlen(WAN_KEY_PREFIX);
    if (g->node->group_count > 1 && (e->op == STORE_OP_SET || e->op == STORE_OP_DEL) &&
        e->argc > 0 && e->argv[0].len > plen && memcmp(e->argv[0].ptr, WAN_KEY_PREFIX, plen) == 0) {
        refresh_links(g->node);
    }
}

/* ---- the outbox in the partition's snapshots ------------------------------------------------
 *
 * A snapshot holds the outbox as it was at the snapshot's index (docs/disk-format.md, version
 * 10): without it, a replica restarted from a snapshot taken past its link's committed position
 * (the position is written lazily, WAN_POS_EVERY_MS, and a snapshot may come at any time) had
 * lost the changes between the two for good and reported resync-needed. */

static void outbox_snap_encode(void *ctx, struct hy_buf *out)
{
    const struct node_group *g = ctx;
    const struct node_wan_outbox *ob = g->wan_out;
    if (ob == NULL) {
        return;
    }
    struct wan_outbox_image im = {.from_seq = ob->from_seq,
                                  .next_apply = ob->next_apply,
                                  .last_seq = ob->last_seq,
                                  .skipped = ob->skipped,
                                  .count = ob->count,
                                  .overflow = ob->overflow,
                                  .recs = ob->recs.data + ob->head,
                                  .recs_len = ob->recs.len - ob->head};
    wan_outbox_image_encode(&im, out);
}

static int outbox_snap_load(void *ctx, const uint8_t *p, size_t len)
{
    struct node_group *g = ctx;
    struct wan_outbox_image im;
    if (!wan_outbox_image_decode(p, len, &im)) {
        return 0;
    }
    struct node_wan_outbox *ob = outbox_of(g);
    outbox_clear(ob, im.from_seq);
    hy_buf_append(&ob->recs, im.recs, im.recs_len);
    ob->count = (size_t)im.count;
    ob->next_apply = im.next_apply;
    ob->last_seq = im.last_seq;
    ob->skipped = im.skipped;
    ob->overflow = im.overflow;
    ob->cur_index = 0;
    ob->cur_sub = 0;
    return 1;
}

void node_wan_group_init(struct node_group *g)
{
    if (g->id == 0) {
        /* The metadata group holds no user key once there are partitions: only its link
         * definitions are watched. */
        store_set_tap(g->store, meta_tap, g);
        return;
    }
    outbox_of(g);
    store_set_tap(g->store, tap, g);
    store_set_snapshot_extra(g->store, outbox_snap_encode, outbox_snap_load, g);
}

static void reads_clear(struct node_wan_outbox *ob)
{
    for (size_t i = 0; i < ob->nreads; i++) {
        hy_free(ob->reads[i].key);
    }
    ob->nreads = 0;
}

static int note_read_cb(const void *ctx, const struct resp_arg *key)
{
    struct node_wan_outbox *ob = (struct node_wan_outbox *)ctx;
    uint32_t h = hy_crc32c(0, key->ptr, key->len);
    for (size_t i = 0; i < ob->nreads; i++) {
        struct wan_read *r = &ob->reads[i];
        if (r->hash == h && r->klen == key->len && memcmp(r->key, key->ptr, key->len) == 0) {
            r->count += r->count < UINT32_MAX;
            return 1;
        }
    }
    if (ob->nreads == WAN_READS_MAX || key->len > WAN_KEY_READ_MAX) {
        ob->reads_uncounted++;
        return 1;
    }
    struct wan_read *r = &ob->reads[ob->nreads++];
    r->key = hy_xmalloc(key->len + 1);
    memcpy(r->key, key->ptr, key->len);
    r->klen = key->len;
    r->hash = h;
    r->count = 1;
    return 1;
}

void node_wan_note_read(struct node_group *g, const struct cmd_def *d, size_t argc,
                        const struct resp_arg *argv)
{
    struct node_wan_outbox *ob = g->wan_out;
    if (ob == NULL || !store_wan_versions_on(g->store) || !replica_is_leader(g)) {
        return;
    }
    (void)node_keys_each(d, argc, argv, note_read_cb, ob);
}

/* Proposes the reads counted of the keys a HIGHER_HITS rule of an active-active link covers
 * (the other policies rank by writes only), at most WAN_HITS_PER_ENTRY keys an entry, and
 * forgets every count: a proposal lost with leadership loses its reads. */
static void reads_flush(struct hy_node *n, struct node_group *g, uint64_t now_ms)
{
    struct node_wan_outbox *ob = g->wan_out;
    if (ob->nreads == 0 || now_ms < ob->reads_flushed_ms + WAN_READS_EVERY_MS) {
        return;
    }
    ob->reads_flushed_ms = now_ms;
    struct store_arg args[2 * WAN_HITS_PER_ENTRY];
    char counts[WAN_HITS_PER_ENTRY][12];
    uint32_t argc = 0;
    struct hy_buf buf;
    hy_buf_init(&buf);
    for (size_t i = 0; i <= ob->nreads; i++) {
        if (argc == 2 * WAN_HITS_PER_ENTRY || (i == ob->nreads && argc > 0)) {
            struct store_entry e = {.op = STORE_OP_WAN_HITS,
                                    .time_ms = now_ms,
                                    .expire_at_ms = -1,
                                    .argc = argc,
                                    .argv = args};
            hy_buf_reset(&buf);
            store_entry_encode(&e, &buf);
            node_propose_internal(g, &buf);
            argc = 0;
        }
        if (i == ob->nreads) {
            break;
        }
        const struct wan_read *r = &ob->reads[i];
        int higher_hits = 0;
        for (size_t l = 0; l < n->wan->count && !higher_hits; l++) {
            const struct wan_link *def = &n->wan->links[l].def;
            higher_hits =
                def->mode == WAN_ACTIVE_ACTIVE &&
                wan_policy_for(def->rules, def->nrules, r->key, r->klen) == WAN_POLICY_HIGHER_HITS;
        }
        if (higher_hits) {
            snprintf(counts[argc / 2], sizeof(counts[0]), "%u", r->count);
            args[argc] = (struct store_arg){r->key, r->klen};
            args[argc + 1] =
                (struct store_arg){(const uint8_t *)counts[argc / 2], strlen(counts[argc / 2])};
            argc += 2;
        }
    }
    hy_buf_free(&buf);
    reads_clear(ob);
}

void node_wan_group_free(struct node_group *g)
{
    if (g->wan_out != NULL) {
        reads_clear(g->wan_out);
        hy_buf_free(&g->wan_out->recs);
        hy_free(g->wan_out);
        g->wan_out = NULL;
    }
}

void node_wan_applying(struct node_group *g, uint64_t index, uint64_t now_ms)
{
    struct node_wan_outbox *ob = g->wan_out;
    if (ob == NULL) {
        return;
    }
    if (index != ob->next_apply) {
        /* The first entry applied, or the first after a snapshot was loaded: what came before
         * was never seen here. */
        outbox_clear(ob, seq_of(index, 0));
    }
    ob->next_apply = index + 1;
    ob->cur_index = index;
    ob->cur_sub = 0;
    ob->cur_ms = now_ms;
}

/* Drops the changes every link's target applied (seq <= upto). */
static void outbox_trim(struct node_wan_outbox *ob, uint64_t upto)
{
    while (ob->count > 0) {
        const uint8_t *p = ob->recs.data + ob->head;
        if (hy_load_u64le(p) > upto) {
            break;
        }
        ob->head += REC_HEADER + hy_load_u32le(p + 16);
        ob->count--;
    }
    if (ob->count == 0 || ob->head > ob->recs.len / 2) {
        hy_buf_consume(&ob->recs, ob->head);
        ob->head = 0;
    }
    if (upto + 1 > ob->from_seq) {
        ob->from_seq = upto + 1;
    }
}

/* ---- links and positions ------------------------------------------------------------------ */

static uint64_t committed_pos(struct hy_node *n, const char *link, uint32_t p, int *have)
{
    char key[sizeof(WAN_POS_KEY_PREFIX) + WAN_NAME_MAX + 12];
    int klen = snprintf(key, sizeof(key), WAN_POS_KEY_PREFIX "%s:%u", link, p);
    const struct store_obj *o =
        store_peek(n->meta->store, (const uint8_t *)key, (size_t)klen, n->raft_now_ms);
    *have = 0;
    if (o == NULL || store_obj_type(o) != STORE_STRING) {
        return 0;
    }
    const uint8_t *v;
    size_t len;
    store_obj_string(o, &v, &len);
    int64_t x;
    if (!hy_parse_i64(v, len, &x) || x < 0) {
        return 0;
    }
    *have = 1;
    return (uint64_t)x;
}

static size_t parts_of(const struct hy_node *n)
{
    return n->group_count > 1 ? n->group_count - 1 : 0;
}

size_t node_wan_fence_pending(struct hy_node *n, const struct wan_role *role, struct hy_buf *out)
{
    size_t pending = 0;
    for (size_t p = 0; role->kind == WAN_ROLE_PRIMARY && p < parts_of(n); p++) {
        struct node_group *g = n->groups[p + 1];
        if (g != NULL && g->wan_out != NULL && store_wan_fence(g->store) != role->epoch) {
            hy_buf_printf(out, "%s%zu", pending++ ? "," : "", p);
        }
    }
    return pending;
}

static struct node_wan_link *find_link(struct hy_node *n, const char *name)
{
    if (n->wan == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n->wan->count; i++) {
        if (strcmp(n->wan->links[i].def.name, name) == 0) {
            return &n->wan->links[i];
        }
    }
    return NULL;
}

/* Reads the links back from the metadata group: new ones get shippers, gone ones lose theirs. */
static void refresh_links(struct hy_node *n)
{
    struct wan_link defs[WAN_LINKS_MAX];
    size_t count = node_wan_links(n, defs, WAN_LINKS_MAX);
    if (n->wan == NULL) {
        n->wan = hy_xcalloc(1, sizeof(*n->wan));
    }
    struct node_wan *w = n->wan;
    struct node_wan_link fresh[WAN_LINKS_MAX];
    memset(fresh, 0, sizeof(fresh));
    for (size_t i = 0; i < count; i++) {
        struct node_wan_link *old = find_link(n, defs[i].name);
        fresh[i].def = defs[i];
        if (old != NULL) {
            fresh[i].parts = old->parts;
            fresh[i].down = old->down;
            old->parts = NULL;
        } else {
            fresh[i].parts = hy_xcalloc(parts_of(n), sizeof(struct node_wan_part));
            hy_log(n->log, HY_LOG_INFO, "WAN link '%s' (%s to %s): known here", defs[i].name,
                   wan_mode_name(defs[i].mode), defs[i].targets);
        }
    }
    for (size_t i = 0; i < w->count; i++) {
        if (w->links[i].parts != NULL) {
            hy_log(n->log, HY_LOG_INFO, "WAN link '%s': removed", w->links[i].def.name);
            parts_free(w->links[i].parts, parts_of(n));
        }
    }
    memcpy(w->links, fresh, sizeof(fresh));
    w->count = count;
}

/* Sends this node's HALYARD WAN <args> to the metadata leader through an internal client, as
 * partmap_publish_domain does; nobody waits for the answer (what it changes is read back from
 * the metadata group, and sent again while it is not there). */
static void send_internal(struct hy_node *n, size_t argc, const char *const *argv, uint64_t now_ms)
{
    struct node_client *c = node_client_new(n, "internal:wan", "", -1, now_ms);
    c->flags &= ~NODE_CLIENT_CLOSE_AFTER_REPLY;
    hy_buf_reset(&c->out);
    n->stats.connections_received--;
    c->authenticated = 1;
    c->user[0] = '\0';
    c->proto = 2;
    c->is_scatter_orphan = 1;
    snprintf(c->name, sizeof(c->name), "wan");
    hy_buf_printf(&c->in, "*%zu\r\n$7\r\nHALYARD\r\n$3\r\nWAN\r\n", argc + 2);
    for (size_t i = 0; i < argc; i++) {
        hy_buf_printf(&c->in, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    }
    node_client_process(n, c, now_ms);
    replica_mark_ready(n, c);
}

/* HALYARD WAN POS link p seq|RESYNC (the position of (link, partition), or its deletion). */
static void send_pos_arg(struct hy_node *n, const char *link, uint32_t p, const char *ss,
                         uint64_t now_ms)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%u", p);
    const char *argv[] = {"POS", link, ps, ss};
    send_internal(n, 4, argv, now_ms);
}

static void send_pos(struct hy_node *n, const char *link, uint32_t p, uint64_t seq, uint64_t now_ms)
{
    char ss[24];
    snprintf(ss, sizeof(ss), "%llu", (unsigned long long)seq);
    send_pos_arg(n, link, p, ss, now_ms);
}

/* ---- resync (docs/wan.md "Resync") -----------------------------------------------------------
 *
 * The target of a (link, partition) lacks changes the outbox no longer holds (or never held:
 * the keys written before the link). The leader walks the partition's keyspace in steps and
 * sends each key's state (STORE_OP_WAN_PUT) in resync batches, which the target applies
 * whatever its position and after which it sets the position to the scan's base: the
 * sequence number of the last change applied here when the scan began. The changes after the
 * base stay in the outbox (the link has no committed position meanwhile, so nothing trims
 * them), and once the scan is acknowledged they are shipped as usual, from the base.
 *
 * A key the scan read after a later change already holds it, and that change is shipped
 * again after the scan: an op (INCR, RPUSH) would then count twice. So while the scan runs
 * the store's tap records states instead of ops (store_set_tap_states): applying a key's
 * state twice is harmless, and the states up to the scan's end leave the target with exactly
 * the source's content at that point, from which the ops that follow apply as usual.
 *
 * The position is taken away first (HALYARD WAN POS ... RESYNC deletes it, and the scan
 * waits until that is committed): a new leader then finds none and starts the resync over,
 * instead of shipping ops from an old position over states the scan already sent. The
 * position is written again when the changes up to the scan's end are acknowledged. */

/* Whether the tap of partition p records states: while a scan of one of its links runs. */
static void tap_states_update(struct hy_node *n, uint32_t p)
{
    struct node_group *g = n->groups[p + 1];
    int on = 0;
    for (size_t i = 0; n->wan != NULL && i < n->wan->count; i++) {
        const struct node_wan_part *x = &n->wan->links[i].parts[p];
        on |= x->term == g->raft.term && x->rs == RS_SCAN && !x->scan_done;
    }
    store_set_tap_states(g->store, on);
}

static void resync_reset(struct node_wan_part *sp)
{
    sp->rs = RS_NONE;
    sp->want = 0;
    sp->scan_done = 0;
    sp->restart = 0;
    sp->in_flight = 0;
    sp->retry_at_ms = 0;
    sp->backoff_ms = 0;
    hy_buf_free(&sp->batch);
    hy_buf_init(&sp->batch);
}

static void scan_begin(struct hy_node *n, struct node_group *g, struct node_wan_link *l,
                       struct node_wan_part *sp, uint32_t p, uint64_t now_ms)
{
    struct node_wan_outbox *ob = g->wan_out;
    sp->base = seq_of(g->applied, 0xffff);
    if (ob->overflow) {
        /* The outbox starts over from the base: what it held before is covered by the scan
         * (and the other links of this partition, behind the same hole, resync too). */
        outbox_clear(ob, seq_of(g->applied + 1, 0));
    }
    store_set_tap_states(g->store, 1);
    struct wan_shipper keep = sp->sh;
    wan_shipper_init(&sp->sh, sp->base, WAN_TIMEOUT_MS, WAN_BACKOFF_MIN_MS, WAN_BACKOFF_MAX_MS);
    sp->sh.batches = keep.batches;
    sp->sh.entries = keep.entries;
    sp->sh.failures = keep.failures;
    resync_reset(sp);
    sp->rs = RS_SCAN;
    sp->built = 0;
    sp->cursor = 0;
    sp->end = 0;
    sp->keys = sp->bytes = 0;
    sp->started_ms = now_ms;
    hy_log(n->log, HY_LOG_INFO,
           "WAN link '%s', partition %u: resync: sending the %zu keys' states, then the changes "
           "after seq %llu (log index %llu)",
           l->def.name, p, store_key_count(g->store), (unsigned long long)sp->base,
           (unsigned long long)g->applied);
}

/* An event about (link, partition): {"link":..,"partition":..} and `more` (",..." or ""). */
static void wan_event(struct hy_node *n, const struct node_wan_link *l, uint32_t p,
                      const char *type, const char *more, uint64_t now_ms)
{
    char fields[200];
    snprintf(fields, sizeof(fields), "\"link\":\"%s\",\"partition\":%u%s", l->def.name, p, more);
    node_events_wan(n, now_ms, type, fields);
}

static void resync_begin(struct hy_node *n, struct node_group *g, struct node_wan_link *l,
                         struct node_wan_part *sp, uint32_t p, int have, uint64_t now_ms)
{
    sp->gap = 0;
    wan_event(n, l, p, "RESYNC_STARTED", "", now_ms);
    if (!have) {
        scan_begin(n, g, l, sp, p, now_ms);
        return;
    }
    resync_reset(sp);
    sp->rs = RS_MARK;
    sp->mark_ms = now_ms;
    sp->started_ms = now_ms;
    sp->keys = sp->bytes = 0;
    send_pos_arg(n, l->def.name, p, "RESYNC", now_ms);
    hy_log(n->log, HY_LOG_INFO,
           "WAN link '%s', partition %u: resync: taking the committed position away first",
           l->def.name, p);
}

static void resync_end(struct hy_node *n, struct node_group *g, struct node_wan_link *l,
                       struct node_wan_part *sp, uint32_t p, uint64_t now_ms)
{
    if (sp->end > sp->sh.acked) {
        /* No change followed the scan's end: the target holds everything up to it. */
        wan_shipper_acked(&sp->sh, sp->end, 0, g->wan_out->last_seq, now_ms);
    }
    resync_reset(sp);
    sp->resyncs++;
    sp->last_ms = now_ms - sp->started_ms;
    sp->pos_owed = 1;
    sp->pos_sent_ms = 0;
    char more[96];
    snprintf(more, sizeof(more), ",\"keys\":%llu,\"bytes\":%llu,\"ms\":%llu",
             (unsigned long long)sp->keys, (unsigned long long)sp->bytes,
             (unsigned long long)(now_ms - sp->started_ms));
    wan_event(n, l, p, "RESYNC_DONE", more, now_ms);
    hy_log(n->log, HY_LOG_INFO,
           "WAN link '%s', partition %u: resync done: %llu keys' states (%llu bytes) in %llu ms; "
           "shipping from seq %llu",
           l->def.name, p, (unsigned long long)sp->keys, (unsigned long long)sp->bytes,
           (unsigned long long)(now_ms - sp->started_ms), (unsigned long long)sp->sh.acked);
}

/* One resync step of (link, partition) for node_wan_take: the scan batch to send (again), or
 * none. The walk reads about WAN_RESYNC_KEYS keys or WAN_BATCH_MAX_BYTES a step, on the loop. */
struct scan_ctx {
    struct store *store;
    struct wan_batch *b;
    struct hy_buf put;
    uint64_t *next, now_ms;
    const char *keys; /* the link's key pattern ("": every key) */
};

static void scan_key(void *ctx, const uint8_t *key, size_t klen, const struct store_obj *o)
{
    struct scan_ctx *c = ctx;
    if (c->keys[0] != '\0' &&
        !hy_glob_match((const uint8_t *)c->keys, strlen(c->keys), key, klen, 0)) {
        return; /* --keys: the resync copies only the keys the link ships */
    }
    hy_buf_reset(&c->put);
    store_wan_state(c->store, key, klen, o, c->now_ms, &c->put);
    HY_ASSERT(wan_batch_add(c->b, ++*c->next, c->put.data, c->put.len) == HY_OK);
}

static int scan_step(struct hy_node *n, struct node_group *g, struct node_wan_link *l,
                     struct node_wan_part *sp, uint32_t p, uint64_t now_ms)
{
    if (sp->in_flight || now_ms < sp->retry_at_ms) {
        return 0;
    }
    if (sp->batch.len > 0) {
        return 1; /* sent again as it was */
    }
    struct node_wan *w = n->wan;
    uint64_t bw = (uint64_t)n->cfg->wan_resync_bandwidth;
    if (!sp->scan_done && bw > 0 && now_ms < w->resync_allow_ms) {
        sp->paced++; /* wan-resync-bandwidth: the node's resyncs sent their share already */
        return 0;
    }
    if (sp->scan_done) {
        sp->rs = RS_REPLAY;
        hy_log(n->log, HY_LOG_INFO,
               "WAN link '%s', partition %u: resync: %llu keys' states applied; shipping the "
               "changes from seq %llu to %llu",
               l->def.name, p, (unsigned long long)sp->keys, (unsigned long long)sp->base,
               (unsigned long long)sp->end);
        return 0;
    }
    struct hy_buf aa, ext;
    hy_buf_init(&aa);
    hy_buf_init(&ext);
    if (l->def.mode == WAN_ACTIVE_ACTIVE) {
        wan_batch_ext_encode(&aa, l->def.name, l->def.rules, l->def.nrules);
    }
    /* An active-passive target is a replica of the source's slots: the first batch has it drop
     * what it holds in this partition's (docs/wan.md "Resync"), and goes even when empty. An
     * active-active target keeps its own writes. */
    int clear = l->def.mode != WAN_ACTIVE_ACTIVE && sp->built == 0;
    uint64_t parts = parts_of(n);
    uint16_t lo = 1, hi = 0;
    if (clear) {
        lo = (uint16_t)((p * HY_SLOT_COUNT + parts - 1) / parts);
        hi = (uint16_t)(((p + 1) * HY_SLOT_COUNT + parts - 1) / parts - 1);
    }
    wan_batch_ext_resync_encode(&ext, sp->base, lo, hi, l->def.keys, aa.len > 0 ? aa.data : NULL,
                                aa.len);
    struct wan_batch b;
    wan_batch_init_ext(&b, n->cfg->cluster_name, p, SIZE_MAX, UINT32_MAX, ext.data, ext.len);
    hy_buf_free(&aa);
    hy_buf_free(&ext);
    struct scan_ctx c = {.store = g->store,
                         .b = &b,
                         .next = &sp->next,
                         .now_ms = n->raft_now_ms,
                         .keys = l->def.keys};
    hy_buf_init(&c.put);
    do {
        sp->cursor = store_scan(g->store, sp->cursor, 16, n->raft_now_ms, scan_key, &c);
    } while (sp->cursor != 0 && b.count < WAN_RESYNC_KEYS && b.buf.len < WAN_BATCH_MAX_BYTES);
    hy_buf_free(&c.put);
    if (sp->cursor == 0) {
        /* The last step: the changes applied from here on are no longer seen by the scan, so
         * the tap may record them as ops again. */
        sp->scan_done = 1;
        sp->end = seq_of(g->applied, 0xffff);
        tap_states_update(n, p);
    }
    if (b.count == 0 && !clear) {
        wan_batch_free(&b);
        return scan_step(n, g, l, sp, p, now_ms);
    }
    sp->built++;
    if (bw > 0) {
        /* This batch's bytes at wan-resync-bandwidth delay the next one of any resync. */
        uint64_t from = w->resync_allow_ms > now_ms ? w->resync_allow_ms : now_ms;
        w->resync_allow_ms = from + (uint64_t)b.buf.len * 1000 / bw;
    }
    /* The last batch's buffer, emptied when it was acknowledged (scan_done_batch), goes: an
     * ASan run of test_wan_queue.py found it leaked by the assignment. */
    hy_buf_free(&sp->batch);
    sp->batch = b.buf; /* kept until acknowledged, to be sent again as it is */
    sp->batch_last = b.last_index;
    sp->batch_keys = b.count;
    return 1;
}

/* An active-active link needs the partition's versions per key: its leader proposes
 * STORE_OP_WAN_HLC (once applied, every replica keeps them, and taps states, not ops). Asked
 * again every WAN_REFRESH_MS until it applies, for a proposal can be lost with leadership. */
/* Proposes op with one argument, or two when arg2 is not NULL. */
static void propose_op(struct node_group *g, enum store_op op, const char *arg, const char *arg2,
                       uint64_t now_ms)
{
    struct store_arg args[2] = {{(const uint8_t *)arg, strlen(arg)},
                                {(const uint8_t *)arg2, arg2 ? strlen(arg2) : 0}};
    struct store_entry e = {
        .op = op, .time_ms = now_ms, .expire_at_ms = -1, .argc = arg2 ? 2u : 1u, .argv = args};
    struct hy_buf buf;
    hy_buf_init(&buf);
    store_entry_encode(&e, &buf);
    node_propose_internal(g, &buf);
    hy_buf_free(&buf);
}

static void ask_versions(struct hy_node *n, struct node_group *g, uint64_t now_ms)
{
    struct node_wan_outbox *ob = g->wan_out;
    if (store_wan_versions_on(g->store) || now_ms < ob->hlc_asked_ms + WAN_REFRESH_MS) {
        return;
    }
    ob->hlc_asked_ms = now_ms;
    propose_op(g, STORE_OP_WAN_HLC, n->cfg->cluster_name, NULL, now_ms);
    hy_log(n->log, HY_LOG_INFO,
           "WAN: partition %u keeps versions per key from now on (an active-active link)",
           g->id - 1);
}

/* A promotion is applied by each partition as an entry of its own log (docs/wan.md "Region
 * failover"): the active-passive batches proposed before it apply, those after it are refused
 * on every replica alike, and clients' writes wait for it (dispatch: -TRYAGAIN), so that no
 * batch taken before the promotion lands on a write made after it. Once the cluster is no
 * longer primary, the fence goes (0) and its links' batches apply again. Asked again every
 * WAN_REFRESH_MS until it applies, for a proposal can be lost with leadership. */
static void fence_partition(struct hy_node *n, struct node_group *g, const struct wan_role *role,
                            uint64_t now_ms)
{
    struct node_wan_outbox *ob = g->wan_out;
    uint64_t want = role->kind == WAN_ROLE_PRIMARY ? role->epoch : 0;
    if (store_wan_fence(g->store) == want || now_ms < ob->fence_asked_ms + WAN_REFRESH_MS) {
        return;
    }
    ob->fence_asked_ms = now_ms;
    char es[24];
    snprintf(es, sizeof(es), "%llu", (unsigned long long)want);
    /* A promotion in place of one source fences that source only (store_wan.c). */
    propose_op(g, STORE_OP_WAN_FENCE, es, want != 0 && role->from[0] ? role->from : NULL, now_ms);
    hy_log(n->log, HY_LOG_INFO, "WAN: partition %u applies %s (epoch %llu)", g->id - 1,
           want ? "this cluster's promotion" : "the end of this cluster's promotion",
           (unsigned long long)(want ? want : role->epoch));
}

void node_wan_cron(struct hy_node *n, uint64_t now_ms)
{
    if (parts_of(n) == 0) {
        return;
    }
    if (n->wan == NULL || now_ms >= n->wan->refresh_ms) {
        refresh_links(n);
        n->wan->refresh_ms = now_ms + WAN_REFRESH_MS;
    }
    struct node_wan *w = n->wan;
    struct wan_role role;
    node_wan_role(n, &role);
    /* Without links and without a region role there is nothing to ship or fence: the walk
     * only clears outboxes, when something happened (grid17: an idle node's cron). A role
     * (a promotion to fence in every partition) walks at every tick. */
    if (w->count == 0 && role.kind == WAN_ROLE_NONE && !node_walk_due(n, &w->unlinked, now_ms)) {
        return;
    }
    for (uint32_t p = 0; p < parts_of(n); p++) {
        struct node_group *g = n->groups[p + 1];
        struct node_wan_outbox *ob = g->wan_out;
        if (ob == NULL) {
            continue;
        }
        int leading = replica_is_leader(g) && g->applied >= g->raft.term_start_index;
        if (leading) {
            fence_partition(n, g, &role, now_ms);
        }
        if (w->count == 0) {
            /* No link: nothing is kept, and a link added later ships what comes after it. */
            outbox_clear(ob, seq_of(ob->next_apply, 0));
            store_set_tap_states(g->store, 0);
            continue;
        }
        uint64_t low = UINT64_MAX;
        int demoted = role.kind == WAN_ROLE_PASSIVE;
        int active_active = 0;
        for (size_t i = 0; i < w->count; i++) {
            active_active |= w->links[i].def.mode == WAN_ACTIVE_ACTIVE;
        }
        if (leading && active_active) {
            ask_versions(n, g, now_ms);
            reads_flush(n, g, now_ms);
        } else if (ob->nreads > 0) {
            reads_clear(ob);
        }
        for (size_t i = 0; i < w->count; i++) {
            struct node_wan_link *l = &w->links[i];
            struct node_wan_part *sp = &l->parts[p];
            int have;
            uint64_t pos = committed_pos(n, l->def.name, p, &have);
            if (!have) {
                /* Never acknowledged: its target gets what this replica holds from now on. */
                low = 0;
            } else if (pos < low) {
                low = pos;
            }
            int suspended = demoted && l->def.mode == WAN_ACTIVE_PASSIVE;
            if (leading && suspended && have && now_ms >= sp->unpos_ms + WAN_POS_EVERY_MS) {
                /* Demoted (docs/wan.md "Region failover"): this cluster's content is now the
                 * promoted primary's, so what this link shipped before means nothing; without
                 * a position, a later promotion of this cluster starts the link with a resync. */
                sp->unpos_ms = now_ms;
                send_pos_arg(n, l->def.name, p, "RESYNC", now_ms);
            }
            if (!leading || suspended) {
                if (sp->term != 0) {
                    resync_reset(sp);
                }
                sp->term = 0;
                continue;
            }
            if (sp->term != g->raft.term) {
                /* Leader (again) in a new term: start from the committed position, whatever
                 * the last leader had on the wire (the target drops what it has). */
                uint64_t start = have ? pos : ob->from_seq > 0 ? ob->from_seq - 1 : 0;
                wan_shipper_init(&sp->sh, start, WAN_TIMEOUT_MS, WAN_BACKOFF_MIN_MS,
                                 WAN_BACKOFF_MAX_MS);
                sp->term = g->raft.term;
                sp->gap = 0;
                resync_reset(sp);
                /* A link without a committed position from a partition that holds keys: its
                 * target lacks them (a link added to a cluster with data, or a resync that a
                 * leader change cut short, whose position was taken away): it resyncs. */
                sp->want = !have && store_key_count(g->store) > 0;
                hy_log(n->log, HY_LOG_INFO,
                       "WAN link '%s', partition %u: shipping from seq %llu (log index %llu)%s",
                       l->def.name, p, (unsigned long long)start, (unsigned long long)(start >> 16),
                       sp->want ? " after a resync (no committed position, keys held)" : "");
            }
            if (sp->rs == RS_NONE) {
                if (have && pos > sp->sh.acked) {
                    /* An earlier leader had the target apply more than this one started from
                     * (its position committed since): nothing up to pos is sent again. */
                    wan_shipper_acked(&sp->sh, pos, 0, ob->last_seq, now_ms);
                }
                /* A gap: the changes right after acked are neither here nor trimmed by an
                 * ack. */
                int was_gap = sp->gap;
                sp->gap = sp->sh.acked + 1 < ob->from_seq ||
                          (ob->overflow && sp->sh.acked >= ob->last_seq);
                if (sp->gap && !was_gap) {
                    hy_log(n->log, HY_LOG_WARN,
                           "WAN link '%s', partition %u: changes after seq %llu are not here "
                           "(kept from seq %llu%s): the target needs a resync",
                           l->def.name, p, (unsigned long long)sp->sh.acked,
                           (unsigned long long)ob->from_seq, ob->overflow ? ", outbox full" : "");
                }
                sp->want |= sp->gap;
            }
            if (sp->want && sp->rs == RS_NONE &&
                (l->def.mode != WAN_ACTIVE_ACTIVE || store_wan_versions_on(g->store))) {
                /* An active-active link's states carry versions: it waits for them. */
                resync_begin(n, g, l, sp, p, have, now_ms);
            }
            if (sp->rs == RS_MARK) {
                if (!have) {
                    scan_begin(n, g, l, sp, p, now_ms);
                } else if (now_ms >= sp->mark_ms + WAN_POS_EVERY_MS) {
                    sp->mark_ms = now_ms;
                    send_pos_arg(n, l->def.name, p, "RESYNC", now_ms);
                }
            } else if (sp->rs != RS_NONE && have && now_ms >= sp->mark_ms + WAN_POS_EVERY_MS) {
                /* A position written before the resync began came back after its deletion
                 * (the two went through the metadata leader in no promised order): taken away
                 * again, so that a new leader does not ship ops from it over the scan's states. */
                sp->mark_ms = now_ms;
                send_pos_arg(n, l->def.name, p, "RESYNC", now_ms);
            }
            if (sp->rs != RS_NONE && sp->rs != RS_MARK && (ob->overflow || sp->restart)) {
                /* The outbox filled up during the resync (or the target refused a scan batch
                 * as older than its stream): the changes after the base are not all here. */
                hy_log(n->log, HY_LOG_WARN, "WAN link '%s', partition %u: resync starts over (%s)",
                       l->def.name, p,
                       sp->restart ? "the target refused a scan batch" : "outbox full");
                scan_begin(n, g, l, sp, p, now_ms);
            }
            if (sp->rs == RS_REPLAY && (sp->sh.acked >= sp->end || sp->sh.acked >= ob->last_seq)) {
                resync_end(n, g, l, sp, p, now_ms);
            }
            wan_shipper_committed(&sp->sh, ob->last_seq, now_ms);
            /* Only a position the target acknowledged is written: the starting point of a link
             * nothing was shipped on yet is this replica's own (where its outbox begins), and
             * written down it would make a later leader whose outbox begins after it see a gap
             * that holds no change. None is written during a resync (above). */
            if (sp->rs == RS_NONE && (sp->sh.entries > 0 || sp->pos_owed) && sp->sh.acked > pos &&
                now_ms >= sp->pos_sent_ms + WAN_POS_EVERY_MS) {
                sp->pos_sent_ms = now_ms;
                send_pos(n, l->def.name, p, sp->sh.acked, now_ms);
            }
        }
        tap_states_update(n, p);
        if (low != 0 && low != UINT64_MAX) {
            outbox_trim(ob, low);
        }
    }
}

/* Whether link l ships the change `entry`: every change, or with a key pattern (--keys), those
 * whose first key matches it (as they are routed at the target by their first key). */
static int change_matches(const struct wan_link *l, const uint8_t *entry, size_t len)
{
    struct store_entry e;
    if (l->keys[0] == '\0' || store_entry_decode(entry, len, &e) != HY_OK) {
        return 1;
    }
    int match = e.argc == 0 || hy_glob_match((const uint8_t *)l->keys, strlen(l->keys),
                                             e.argv[0].ptr, e.argv[0].len, 0);
    store_entry_release(&e);
    return match;
}

/* A new job for (link, partition) at the end of *jobs, zeroed but for its link's address. */
/* The TLS files of a job of link l on member cfg (docs/wan.md "Transport"). */
static void job_tls(struct node_wan_job *j, const struct wan_link *l, const struct hy_config *cfg)
{
    j->tls = l->tls;
    if (!l->tls) {
        return;
    }
    int own_ca = l->tls_ca[0] != '\0', client = cfg->tls_client_cert_file[0] != '\0';
    snprintf(j->tls_ca, sizeof(j->tls_ca), "%s", own_ca ? l->tls_ca : cfg->tls_ca_cert_file);
    snprintf(j->tls_ca_dir, sizeof(j->tls_ca_dir), "%s", own_ca ? "" : cfg->tls_ca_cert_dir);
    snprintf(j->tls_cert, sizeof(j->tls_cert), "%s",
             client ? cfg->tls_client_cert_file : cfg->tls_cert_file);
    snprintf(j->tls_key, sizeof(j->tls_key), "%s",
             client ? cfg->tls_client_key_file : cfg->tls_key_file);
    snprintf(j->tls_key_pass, sizeof(j->tls_key_pass), "%s",
             client ? cfg->tls_client_key_file_pass : cfg->tls_key_file_pass);
}

static struct node_wan_job *job_push(struct node_wan_job **jobs, size_t *count, size_t *cap,
                                     const struct node_wan_link *l, uint32_t p, uint64_t term,
                                     const struct wan_role *role, const struct hy_config *cfg)
{
    if (*count == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        *jobs = hy_xrealloc(*jobs, *cap * sizeof(**jobs));
    }
    struct node_wan_job *j = &(*jobs)[(*count)++];
    memset(j, 0, sizeof(*j));
    snprintf(j->link, sizeof(j->link), "%s", l->def.name);
    snprintf(j->targets, sizeof(j->targets), "%s", l->def.targets);
    snprintf(j->secret, sizeof(j->secret), "%s", l->def.secret);
    snprintf(j->source, sizeof(j->source), "%s", cfg->cluster_name);
    j->partition = p;
    j->term = term;
    job_tls(j, &l->def, cfg);
    if (role->kind == WAN_ROLE_PRIMARY && l->def.mode == WAN_ACTIVE_PASSIVE) {
        /* A promoted primary tells its active-passive targets to step down (docs/wan.md
         * "Region failover"): the link's thread sends HALYARD WAN DEMOTE when it connects. */
        j->tell_epoch = role->epoch;
        snprintf(j->tell_by, sizeof(j->tell_by), "%s", role->by);
    }
    return j;
}

size_t node_wan_take(struct hy_node *n, uint64_t now_ms, struct node_wan_job **out)
{
    *out = NULL;
    if (n->wan == NULL || n->wan->count == 0) {
        return 0;
    }
    struct node_wan *w = n->wan;
    w->collected = 0;
    struct wan_role role;
    node_wan_role(n, &role);
    size_t count = 0, cap = 0;
    struct node_wan_job *jobs = NULL;
    for (size_t i = 0; i < w->count; i++) {
        struct node_wan_link *l = &w->links[i];
        for (uint32_t p = 0; p < parts_of(n); p++) {
            struct node_wan_part *sp = &l->parts[p];
            struct node_group *g = n->groups[p + 1];
            struct node_wan_outbox *ob = g->wan_out;
            uint64_t from;
            if (sp->term == 0 || sp->term != g->raft.term || ob == NULL) {
                continue;
            }
            if (sp->rs == RS_SCAN) {
                if (!scan_step(n, g, l, sp, p, now_ms)) {
                    continue;
                }
                struct node_wan_job *j =
                    job_push(&jobs, &count, &cap, l, p, sp->term, &role, n->cfg);
                j->last_seq = sp->batch_last;
                j->entries = sp->batch_keys;
                j->resync = 1;
                hy_buf_init(&j->batch);
                hy_buf_append(&j->batch, sp->batch.data, sp->batch.len);
                sp->in_flight = 1;
                continue;
            }
            if (sp->rs == RS_MARK || sp->gap || sp->want ||
                !wan_shipper_due(&sp->sh, ob->last_seq, now_ms, &from)) {
                continue;
            }
            struct wan_batch b;
            struct hy_buf ext;
            hy_buf_init(&ext);
            if (l->def.mode == WAN_ACTIVE_ACTIVE) {
                /* The receiver merges by this link's policies: they travel in every batch. */
                wan_batch_ext_encode(&ext, l->def.name, l->def.rules, l->def.nrules);
            }
            wan_batch_init_ext(&b, n->cfg->cluster_name, p, WAN_BATCH_MAX_BYTES,
                               WAN_BATCH_MAX_ENTRIES, ext.len > 0 ? ext.data : NULL, ext.len);
            hy_buf_free(&ext);
            size_t off = ob->head;
            uint64_t passed = 0; /* the last change left out by the link's key pattern */
            for (size_t k = 0; k < ob->count; k++) {
                const uint8_t *r = ob->recs.data + off;
                uint64_t seq = hy_load_u64le(r);
                uint32_t len = hy_load_u32le(r + 16);
                off += REC_HEADER + len;
                if (seq <= from) {
                    continue;
                }
                if (!change_matches(&l->def, r + REC_HEADER, len)) {
                    passed = b.count == 0 ? seq : passed;
                    continue;
                }
                if (wan_batch_add(&b, seq, r + REC_HEADER, len) != HY_OK) {
                    break;
                }
            }
            if (b.count == 0) {
                wan_batch_free(&b);
                if (passed > sp->sh.acked && sp->sh.shipped == sp->sh.acked) {
                    /* Nothing to send up to there: as if the target had acknowledged it, and
                     * the position is written so that the outbox is trimmed. */
                    wan_shipper_acked(&sp->sh, passed, 0, ob->last_seq, now_ms);
                    sp->pos_owed = 1;
                }
                continue;
            }
            struct node_wan_job *j = job_push(&jobs, &count, &cap, l, p, sp->term, &role, n->cfg);
            j->last_seq = b.last_index;
            j->entries = b.count;
            j->batch = b.buf; /* the job owns the bytes now */
            wan_shipper_sent(&sp->sh, b.last_index, now_ms);
        }
    }
    *out = jobs;
    return count;
}

void node_wan_jobs_free(struct node_wan_job *jobs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        hy_buf_free(&jobs[i].batch);
    }
    hy_free(jobs);
}

/* A scan batch's outcome: the next one may be built, or this one goes again after a backoff. */
static void scan_done_batch(struct hy_node *n, struct node_wan_part *sp, const char *link,
                            uint32_t partition, int ok, const char *why, uint64_t now_ms)
{
    sp->in_flight = 0;
    if (ok) {
        sp->keys += sp->batch_keys;
        sp->bytes += sp->batch.len;
        hy_buf_reset(&sp->batch);
        sp->backoff_ms = 0;
        n->wan->collected = 1; /* the next step is taken at the end of this loop turn */
        return;
    }
    if (sp->backoff_ms == 0 || sp->backoff_ms >= WAN_BACKOFF_MAX_MS) {
        hy_log(n->log, HY_LOG_WARN, "WAN link '%s', partition %u: resync batch not applied: %s",
               link, partition, why ? why : "?");
    }
    sp->sh.failures++;
    sp->backoff_ms = sp->backoff_ms == 0 ? WAN_BACKOFF_MIN_MS : sp->backoff_ms * 2;
    if (sp->backoff_ms > WAN_BACKOFF_MAX_MS) {
        sp->backoff_ms = WAN_BACKOFF_MAX_MS;
    }
    sp->retry_at_ms = now_ms + sp->backoff_ms;
    if (why != NULL && strstr(why, "stale WAN resync") != NULL) {
        sp->restart = 1;
    }
}

/* A target refused a batch -DEMOTED (why): it was promoted to primary. Unless this cluster was
 * promoted later itself, its metadata leader is told to step down (docs/wan.md "Region
 * failover"); sent again on the next refusal while the role does not say so. */
static void step_down(struct hy_node *n, const char *why, uint64_t now_ms)
{
    uint64_t epoch;
    char by[WAN_NAME_MAX + 1];
    struct wan_role have;
    if (why == NULL || !wan_demoted_parse(why, &epoch, by, sizeof(by))) {
        return;
    }
    node_wan_role(n, &have);
    if (!wan_role_yields(&have, epoch, by) || now_ms < n->wan->demote_sent_ms + WAN_POS_EVERY_MS) {
        return;
    }
    n->wan->demote_sent_ms = now_ms;
    char es[24];
    snprintf(es, sizeof(es), "%llu", (unsigned long long)epoch);
    const char *argv[] = {"DEMOTE", es, by};
    send_internal(n, 3, argv, now_ms);
}

void node_wan_done(struct hy_node *n, const char *link, uint32_t partition, uint64_t term,
                   uint64_t last_seq, uint64_t entries, int resync, int ok, const char *why,
                   uint64_t now_ms)
{
    if (!ok && n->wan != NULL) {
        step_down(n, why, now_ms);
    }
    struct node_wan_link *l = find_link(n, link);
    if (l == NULL || partition >= parts_of(n)) {
        return; /* the link went meanwhile */
    }
    struct node_wan_part *sp = &l->parts[partition];
    struct node_group *g = n->groups[partition + 1];
    if (ok == l->down) {
        /* The link's target unreachable or refusing (first failure), or back (first success):
         * told once per change, whichever partition saw it. */
        l->down = !ok;
        wan_event(n, l, partition, ok ? "WAN_LINK_UP" : "WAN_LINK_DOWN", "", now_ms);
    }
    snprintf(sp->last_error, sizeof(sp->last_error), "%s", ok ? "" : why ? why : "?");
    if (resync) {
        if (sp->term == term && sp->rs == RS_SCAN && sp->in_flight && sp->batch_last == last_seq) {
            scan_done_batch(n, sp, link, partition, ok, why, now_ms);
        }
        return;
    }
    if (sp->term != term || sp->sh.shipped != last_seq) {
        return; /* a batch of an earlier term, or one the shipper already gave up on */
    }
    if (ok) {
        wan_shipper_acked(&sp->sh, last_seq, entries, g->wan_out ? g->wan_out->last_seq : 0,
                          now_ms);
    } else {
        if (sp->sh.failures == 0 || sp->sh.backoff_ms >= WAN_BACKOFF_MAX_MS) {
            hy_log(n->log, HY_LOG_WARN, "WAN link '%s', partition %u: batch not applied: %s", link,
                   partition, why ? why : "?");
        }
        wan_shipper_failed(&sp->sh, now_ms);
    }
}

/* How far a resync is, 0-100: its scan's keys acknowledged against the partition's keys now
 * (an estimate: keys come and go during the scan, and a link with --keys copies only some);
 * 99 at most until the scan's last batch is acknowledged, 100 from there (the catch-up that
 * follows is short). */
static unsigned resync_percent(const struct node_wan_part *sp, const struct node_group *g)
{
    if (sp->rs == RS_NONE) {
        return sp->resyncs > 0 ? 100 : 0;
    }
    if (sp->rs == RS_REPLAY) {
        return 100;
    }
    /* The scan is done once its last batch is built and acknowledged. */
    int finished = sp->scan_done && sp->batch.len == 0 && !sp->in_flight;
    return wan_progress_percent(sp->keys, store_key_count(g->store), finished);
}

/* The changes of partition p not yet acknowledged on link l, and how long the oldest waited. */
static struct wan_lag part_lag(const struct node_wan_outbox *ob, const struct node_wan_part *sp,
                               uint64_t now_ms)
{
    struct wan_lag lag = {0, 0};
    size_t off = ob->head;
    for (size_t k = 0; k < ob->count; k++) {
        const uint8_t *r = ob->recs.data + off;
        off += REC_HEADER + hy_load_u32le(r + 16);
        if (hy_load_u64le(r) > sp->sh.acked) {
            if (lag.entries == 0) {
                uint64_t at = hy_load_u64le(r + 8);
                lag.ms = now_ms > at ? now_ms - at : 0;
            }
            lag.entries++;
        }
    }
    return lag;
}

size_t node_wan_lags(const struct hy_node *n, struct node_wan_lag_view *out, size_t cap,
                     uint64_t now_ms)
{
    size_t k = 0;
    if (n->wan == NULL) {
        return 0;
    }
    for (size_t i = 0; i < n->wan->count; i++) {
        const struct node_wan_link *l = &n->wan->links[i];
        for (uint32_t p = 0; p < parts_of(n) && k < cap; p++) {
            const struct node_wan_part *sp = &l->parts[p];
            const struct node_group *g = n->groups[p + 1];
            if (sp->term == 0 || sp->term != g->raft.term || g->wan_out == NULL) {
                continue;
            }
            struct node_wan_lag_view *v = &out[k++];
            memset(v, 0, sizeof(*v));
            snprintf(v->link, sizeof(v->link), "%s", l->def.name);
            v->partition = p;
            v->acked_seq = sp->sh.acked;
            v->shipped_seq = sp->sh.shipped;
            v->last_seq = g->wan_out->last_seq;
            struct wan_lag lag = part_lag(g->wan_out, sp, now_ms);
            v->lag_entries = lag.entries;
            v->lag_ms = lag.ms;
            v->batches = sp->sh.batches;
            v->entries = sp->sh.entries;
            v->failures = sp->sh.failures;
            v->skipped = g->wan_out->skipped;
            v->gap = sp->gap || (sp->want && sp->rs == RS_NONE);
            v->backing_off = now_ms < sp->sh.retry_at_ms;
            v->resyncing = sp->rs != RS_NONE;
            v->resync_keys = sp->keys;
            v->resync_bytes = sp->bytes;
            v->resyncs = sp->resyncs;
            size_t obytes;
            v->writes_blocked = node_wan_blocked(g, &obytes);
            v->link_down = l->down;
            v->outbox_bytes = obytes;
        }
    }
    return k;
}

void node_wan_status_partitions(struct hy_node *n, const char *link, struct hy_buf *b, int json,
                                uint64_t now_ms)
{
    size_t count = 0;
    struct node_wan_link *l = find_link(n, link);
    for (uint32_t p = 0; l != NULL && p < parts_of(n); p++) {
        const struct node_wan_part *sp = &l->parts[p];
        const struct node_group *g = n->groups[p + 1];
        if (sp->term == 0 || sp->term != g->raft.term || g->wan_out == NULL) {
            continue;
        }
        struct wan_lag lag = part_lag(g->wan_out, sp, now_ms);
        size_t obytes;
        int blocked = node_wan_blocked(g, &obytes);
        size_t vbytes;
        size_t vkept = store_wan_versions(g->store, &vbytes);
        const char *state = sp->rs != RS_NONE               ? "resyncing"
                            : sp->gap || sp->want           ? "resync-needed"
                            : now_ms < sp->sh.retry_at_ms   ? "backing-off"
                            : sp->sh.shipped > sp->sh.acked ? "shipping"
                                                            : "idle";
        const char *phase = sp->rs == RS_MARK     ? "starting"
                            : sp->rs == RS_SCAN   ? "scan"
                            : sp->rs == RS_REPLAY ? "catch-up"
                                                  : "none";
        if (json) {
            hy_buf_printf(
                b,
                "%s{\"partition\":%u,\"state\":\"%s\",\"acked_index\":%llu,"
                "\"acked_seq\":%llu,\"shipped_seq\":%llu,\"last_seq\":%llu,"
                "\"lag_entries\":%llu,\"lag_ms\":%llu,\"batches\":%llu,"
                "\"entries_shipped\":%llu,\"failures\":%llu,\"skipped\":%llu,"
                "\"versions\":%s,\"versions_kept\":%zu,\"versions_bytes\":%zu,"
                "\"resync_phase\":\"%s\",\"resync_keys\":%llu,\"resync_bytes\":%llu,"
                "\"resyncs\":%llu,\"outbox_bytes\":%zu,\"writes_blocked\":%s,"
                "\"resync_percent\":%u,\"resync_of_keys\":%zu,\"resync_ms\":%llu,"
                "\"resync_paced\":%llu,\"last_error\":",
                count > 0 ? "," : "", p, state, (unsigned long long)(sp->sh.acked >> 16),
                (unsigned long long)sp->sh.acked, (unsigned long long)sp->sh.shipped,
                (unsigned long long)g->wan_out->last_seq, (unsigned long long)lag.entries,
                (unsigned long long)lag.ms, (unsigned long long)sp->sh.batches,
                (unsigned long long)sp->sh.entries, (unsigned long long)sp->sh.failures,
                (unsigned long long)g->wan_out->skipped,
                store_wan_versions_on(g->store) ? "true" : "false", vkept, vbytes, phase,
                (unsigned long long)sp->keys, (unsigned long long)sp->bytes,
                (unsigned long long)sp->resyncs, obytes, blocked ? "true" : "false",
                resync_percent(sp, g), store_key_count(g->store),
                (unsigned long long)(sp->rs != RS_NONE ? now_ms - sp->started_ms : sp->last_ms),
                (unsigned long long)sp->paced);
            hy_buf_append_json_str(b, sp->last_error);
            hy_buf_append_str(b, "}");
        } else {
            hy_buf_printf(b,
                          "  partition %u: %s, acked log index %llu, lag %llu changes / %llu ms, "
                          "%llu batches, %llu changes shipped, %llu failures, %llu skipped%s\n",
                          p, state, (unsigned long long)(sp->sh.acked >> 16),
                          (unsigned long long)lag.entries, (unsigned long long)lag.ms,
                          (unsigned long long)sp->sh.batches, (unsigned long long)sp->sh.entries,
                          (unsigned long long)sp->sh.failures,
                          (unsigned long long)g->wan_out->skipped,
                          store_wan_versions_on(g->store) ? ", versions kept" : "");
            if (sp->last_error[0] != '\0') {
                hy_buf_printf(b, "    last failure: %s\n", sp->last_error);
            }
            if (blocked) {
                hy_buf_printf(b,
                              "    outbox full (%zu bytes, wan-queue-full block-writes): writes "
                              "to this partition are refused until it drains\n",
                              obytes);
            }
            if (sp->rs != RS_NONE) {
                char bar[WAN_BAR_WIDTH + 1];
                unsigned pct = resync_percent(sp, g);
                wan_progress_bar(pct, bar, sizeof(bar));
                hy_buf_printf(b,
                              "    resync (%s) [%s] %3u%%: %llu keys' states / %llu bytes "
                              "applied of about %zu keys, for %llu ms\n",
                              phase, bar, pct, (unsigned long long)sp->keys,
                              (unsigned long long)sp->bytes, store_key_count(g->store),
                              (unsigned long long)(now_ms - sp->started_ms));
            }
        }
        count++;
    }
    if (!json && count == 0) {
        hy_buf_append_str(b, "  (this node leads none of the partitions: ask their leaders)\n");
    }
}

void node_wan_free(struct hy_node *n)
{
    if (n->wan != NULL) {
        for (size_t i = 0; i < n->wan->count; i++) {
            parts_free(n->wan->links[i].parts, parts_of(n));
        }
        hy_free(n->wan);
        n->wan = NULL;
    }
}

size_t node_wan_conflict_totals(const struct hy_node *n, struct node_wan_conflict_view *out,
                                size_t cap)
{
    size_t k = 0;
    for (uint32_t p = 0; p < parts_of(n); p++) {
        const struct node_group *g = n->groups[p + 1];
        if (!replica_is_leader(g)) {
            continue;
        }
        const struct wan_conflict_count *c;
        size_t m = store_wan_conflict_counts(g->store, &c);
        for (size_t i = 0; i < m; i++) {
            const char *outcome = c[i].applied ? "applied" : "kept";
            const char *policy = wan_policy_name(c[i].policy);
            size_t j = 0;
            while (j < k && !(strcmp(out[j].link, c[i].link) == 0 &&
                              strcmp(out[j].policy, policy) == 0 && out[j].outcome == outcome)) {
                j++;
            }
            if (j == k) {
                if (k == cap) {
                    continue;
                }
                memset(&out[k], 0, sizeof(out[k]));
                snprintf(out[k].link, sizeof(out[k].link), "%s", c[i].link);
                snprintf(out[k].policy, sizeof(out[k].policy), "%s", policy);
                out[k].outcome = outcome;
                k++;
            }
            out[j].count += c[i].count;
        }
    }
    return k;
}

static int conflict_newer_first(const void *pa, const void *pb)
{
    const struct wan_conflict *a = pa, *b = pb;
    return (a->time_ms < b->time_ms) - (a->time_ms > b->time_ms);
}

size_t node_wan_conflicts_last(struct hy_node *n, const char *link, struct wan_conflict *out,
                               size_t cap)
{
    size_t k = 0;
    struct wan_conflict *all = hy_xcalloc(WAN_CONFLICT_LAST_MAX, sizeof(*all));
    for (uint32_t p = 0; p < parts_of(n); p++) {
        struct node_group *g = n->groups[p + 1];
        if (!replica_is_leader(g)) {
            continue;
        }
        size_t m = store_wan_conflicts_last(g->store, link, all, WAN_CONFLICT_LAST_MAX);
        for (size_t i = 0; i < m; i++) {
            if (k < cap) {
                out[k++] = all[i];
            } else {
                /* Full: the oldest kept makes room for a newer one. */
                qsort(out, k, sizeof(*out), conflict_newer_first);
                if (all[i].time_ms > out[k - 1].time_ms) {
                    out[k - 1] = all[i];
                }
            }
        }
    }
    hy_free(all);
    qsort(out, k, sizeof(*out), conflict_newer_first);
    return k;
}
