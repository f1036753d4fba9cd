#include "io/mesh.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/peer.h"
#include "io/server.h"
#include "io/snap_recv.h"
#include "io/snap_stream.h"
#include "io/tls.h"

/* How often the shell turns gossip's crank: samples the links' heartbeats for phi, runs the
 * core's timers when due and sends what it queued. */
#define MESH_GOSSIP_POLL_MS 10

struct mesh_heard {
    char name[WIRE_NAME_MAX + 1];
    uint64_t last_uv_ms; /* peer_last_heard_ms last passed on */
};

struct io_mesh {
    struct hy_node *node;
    uint64_t busy_pumped_ms; /* io_mesh_busy: the peers' sockets last looked at */
    uint64_t busy_notice_ms; /* and the last BUSY notice sent (0: none since the script began) */
    int busy_told;           /* peers were told a script runs here: tell them when it ends */
    uv_loop_t *loop;
    uv_timer_t gossip_timer;
    int gossip_timer_on;
    int schedstat_fd; /* /proc/self/schedstat (mesh_runnable_ms), -1: not on this system */
    int closing;      /* handles still to close (transport, gossip timer) */
    struct mesh_heard heard[PEER_MAX + 1];
    size_t heard_count;
    const char *cfg_node_id; /* borrowed from the settings */
    const struct hy_log *log;
    io_mesh_progress_cb progress_cb;
    void *ctx;
    int batch_depth;  /* inside one socket read's frames (mesh_batch_cb) */
    int progress_due; /* and a frame moved the engine: progress_cb once they are done */
    struct peer_transport *transport;
    struct io_tls_ctx *tls; /* tls-cluster yes: the peer port's contexts; NULL: clear text */
    uint64_t members_epoch; /* the node's member list the peers were taken from */
    uint64_t ring_epoch;    /* gossip's ring the beacons were last set from */
    int ring_set;           /* 0: set them again at the next turn (the peers changed) */
    /* Snapshots go to followers from the log's files (snap_stream.h), read through a disk of
     * the mesh's own on the log directory; a group whose file was damaged is asked for a new
     * snapshot at the next flush (not from inside the engine's step that sent the chunk). */
    struct disk *snap_disk;
    struct snap_stream *snaps;
    /* Snapshots received from leaders are written through the same disk as they arrive
     * (snap_recv.h): a follower holds a chunk of one, not the partition. */
    struct snap_recv *recv;
    uint32_t snap_redo[16];
    size_t snap_redo_count;
    void (*done_cb)(void *arg);
    void *done_arg;
};

/* The engine moved: the shell hands its batches on and flushes the clients it answered, at
 * once, or once the socket read under way is done. The engine's wake of the clients is held
 * for the read's frames (node_wake_hold); the shell taking the ready clients meanwhile took
 * those the updates had unblocked off the ready list before the wake ran them, and they never
 * ran (a scattered DBSIZE waited for ever). */
static void mesh_progress(struct io_mesh *mesh)
{
    if (mesh->batch_depth > 0) {
        mesh->progress_due = 1;
        return;
    }
    mesh->progress_cb(mesh->ctx);
}

static void mesh_raft_cb(void *ctx, const char *from, uint16_t group, const struct raft_message *m)
{
    struct io_mesh *mesh = ctx;
    /* The transport authenticated `from`; the message must not claim another sender (nor a
     * recipient other than us), or one member could speak for another. */
    const char *claimed = node_member_name(mesh->node, m->from);
    if (claimed == NULL || strcmp(claimed, from) != 0 ||
        m->to != node_member_id(mesh->cfg_node_id)) {
        hy_log(mesh->log, HY_LOG_WARN, "peer %s: dropped a Raft message claiming to be from %s",
               from, claimed ? claimed : "an unknown member");
        return;
    }
    node_receive(mesh->node, group, m, io_clock_ms());
    mesh_progress(mesh);
}

static void mesh_forward_cb(void *ctx, const char *from, uint64_t req_id, const uint8_t *data,
                            size_t len)
{
    struct io_mesh *mesh = ctx;
    node_forward_request(mesh->node, from, req_id, data, len, io_clock_ms());
    mesh_progress(mesh);
}

static void mesh_forward_reply_cb(void *ctx, const char *from, uint64_t req_id, const uint8_t *data,
                                  size_t len)
{
    struct io_mesh *mesh = ctx;
    node_forward_reply(mesh->node, from, req_id, data, len, io_clock_ms());
    mesh_progress(mesh);
}

static void mesh_publish_cb(void *ctx, const char *from, const uint8_t *data, size_t len)
{
    struct io_mesh *mesh = ctx;
    node_publish_received(mesh->node, from, data, len, io_clock_ms());
    mesh_progress(mesh); /* subscribers it gave output */
}

/* One socket read's frames: the clients their updates answered or woke are looked at once,
 * after all of them (node_wake_hold), not once per frame: with thousands of clients waiting
 * on thousands of groups (a scattered DBSIZE over 4,096 partitions during a round of leader
 * transfers) that look, repeated for every frame, held the loop for seconds. */
static void mesh_batch_cb(void *ctx, int begin)
{
    struct io_mesh *mesh = ctx;
    if (begin) {
        mesh->batch_depth++;
        node_wake_hold(mesh->node);
        return;
    }
    node_wake_release(mesh->node, io_clock_ms());
    if (--mesh->batch_depth == 0 && mesh->progress_due) {
        mesh->progress_due = 0;
        mesh->progress_cb(mesh->ctx); /* the clients that look answered or ran */
    }
}

static void mesh_state_cb(void *ctx, const char *id, int up, const char *reason)
{
    struct io_mesh *mesh = ctx;
    hy_log(mesh->log, up ? HY_LOG_INFO : HY_LOG_WARN, "peer %s %s%s%s", id, up ? "up" : "down",
           reason ? ": " : "", reason ? reason : "");
    node_peer_state(mesh->node, id, up, io_clock_ms());
    mesh_progress(mesh); /* clients it answered or woke */
}

static void mesh_busy_cb(void *ctx, const char *from, const uint8_t *data, size_t len)
{
    struct io_mesh *mesh = ctx;
    node_peer_busy(mesh->node, from, data, len, io_clock_ms());
    mesh_progress(mesh); /* what its groups' timers changed */
}

static int mesh_busy_forward_cb(void *ctx, uint8_t type, const char *from, const uint8_t *data,
                                size_t len, struct hy_buf *reply)
{
    struct io_mesh *mesh = ctx;
    if (type == WIRE_BUSY) {
        node_peer_busy_note(mesh->node, from, data, len, io_clock_ms());
        return 0;
    }
    return node_busy_forward(mesh->node, from, data, len, io_clock_ms(), reply);
}

/* A WAN link's request (peer.h wan_cb): run by the engine, answered by io_mesh_flush. */
static void mesh_wan_cb(void *ctx, uint64_t conn, const char *source, const char *link,
                        const struct wire_frame *f)
{
    struct io_mesh *mesh = ctx;
    (void)link;
    const struct wire_wan *w = &f->wan;
    int op = f->type == WIRE_WAN_APPLY    ? NODE_WAN_OP_APPLY
             : f->type == WIRE_WAN_DEMOTE ? NODE_WAN_OP_DEMOTE
                                          : NODE_WAN_OP_PARTS;
    node_wan_link_request(mesh->node, conn, source, w->req_id, op, w->slot, w->epoch, w->data,
                          w->len, io_clock_ms());
    mesh_progress(mesh);
}

/* A node the member list does not name yet proved the cluster secret (peer.h "Guests"). */
static int mesh_admit_cb(void *ctx, const char *id, int admitted)
{
    struct io_mesh *mesh = ctx;
    if (admitted) {
        node_guest_add(mesh->node, id);
    }
    return node_guest_admissible(mesh->node, id);
}

/* Sends what gossip queued. */
static void mesh_gossip_flush(struct io_mesh *m)
{
    char to[WIRE_NAME_MAX + 1];
    const uint8_t *data;
    size_t len;
    while (node_gossip_take(m->node, to, sizeof(to), &data, &len)) {
        (void)peer_send_gossip(m->transport, to, data, len); /* gossip is lossy by design */
    }
}

static void mesh_gossip_cb(void *ctx, const char *from, const uint8_t *data, size_t len)
{
    struct io_mesh *mesh = ctx;
    node_gossip_receive(mesh->node, from, data, len, io_clock_ms());
    mesh_gossip_flush(mesh);
    mesh_progress(mesh);
}

/* Anything that arrived on a peer's link since the last poll is one heartbeat for its phi
 * detector, dated when it arrived (the loop's clock, moved to the engine's). */
static void mesh_gossip_heard(struct io_mesh *m, uint64_t now_ms)
{
    size_t count;
    const struct node_member *members = node_members(m->node, &count);
    uint64_t uv = uv_now(m->loop);
    for (size_t i = 0; i < count; i++) {
        if (!node_member_is_peer(m->node, &members[i]) ||
            strcmp(members[i].name, m->cfg_node_id) == 0) {
            continue;
        }
        uint64_t heard = peer_last_heard_ms(m->transport, members[i].name);
        struct mesh_heard *h = NULL;
        for (size_t k = 0; k < m->heard_count && h == NULL; k++) {
            if (strcmp(m->heard[k].name, members[i].name) == 0) {
                h = &m->heard[k];
            }
        }
        if (h == NULL && m->heard_count < HY_ARRAY_LEN(m->heard)) {
            h = &m->heard[m->heard_count++];
            snprintf(h->name, sizeof(h->name), "%s", members[i].name);
            h->last_uv_ms = 0;
        }
        if (h == NULL || heard == 0 || heard <= h->last_uv_ms) {
            continue;
        }
        h->last_uv_ms = heard;
        node_gossip_heartbeat(m->node, members[i].name, now_ms - HY_MIN(uv - heard, now_ms));
    }
}

/* Beacons to gossip's ring neighbours only (DESIGN.md §7, docs/operations.md "Failure
 * detection"): a link off the ring carries no beacon, and its peer is watched by the probes. */
static void mesh_gossip_ring(struct io_mesh *m)
{
    const char *ring[NODE_GOSSIP_RING_MAX];
    uint64_t epoch;
    size_t count = node_gossip_ring(m->node, ring, HY_ARRAY_LEN(ring), &epoch);
    if (m->ring_set && epoch == m->ring_epoch) {
        return;
    }
    m->ring_epoch = epoch;
    m->ring_set = 1;
    peer_transport_set_beacons(m->transport, ring, HY_MIN(count, HY_ARRAY_LEN(ring)));
}

/* The loop thread's runnable time in ms, on a CPU or waiting for one (Linux's
 * /proc/self/schedstat: the main thread's ns on a CPU, ns on a run queue), or UINT64_MAX when
 * the system gives none. A stall it grew little in was the process's own (stopped, blocked),
 * not the host starving every loop (membership_note_runnable). */
static uint64_t mesh_runnable_ms(struct io_mesh *m)
{
    char buf[128];
    ssize_t got = m->schedstat_fd >= 0 ? pread(m->schedstat_fd, buf, sizeof(buf) - 1, 0) : -1;
    uint64_t on_cpu, waiting;
    if (got <= 0) {
        return UINT64_MAX;
    }
    buf[got] = '\0';
    if (sscanf(buf, "%" SCNu64 " %" SCNu64, &on_cpu, &waiting) != 2) {
        return UINT64_MAX;
    }
    return (on_cpu + waiting) / 1000000;
}

static void mesh_gossip_timer_cb(uv_timer_t *t)
{
    struct io_mesh *m = t->data;
    uint64_t now = io_clock_ms();
    uint64_t runnable = mesh_runnable_ms(m);
    if (runnable != UINT64_MAX) {
        node_gossip_note_runnable(m->node, runnable, now); /* before the heartbeats it judges */
    }
    mesh_gossip_heard(m, now);
    if (node_gossip_next_ms(m->node) > now) {
        mesh_gossip_ring(m);
        mesh_gossip_flush(m);
        return;
    }
    node_gossip_tick(m->node, now);
    mesh_gossip_ring(m);
    mesh_gossip_flush(m);
    mesh_progress(m); /* its verdicts moved the engine (events, liveness) */
}

static void mesh_liveness_cb(void *ctx, const char *id, int alive)
{
    struct io_mesh *mesh = ctx;
    node_peer_liveness(mesh->node, id, alive, io_clock_ms());
    mesh_progress(mesh);
}

/* The transport's peers from the group's members (the transport skips this node); at most
 * cap of them. */
static size_t mesh_peers(const struct hy_node *node, struct peer_addr *out, size_t cap)
{
    size_t count, n = 0;
    const struct node_member *members = node_members(node, &count);
    for (size_t i = 0; i < count && n < cap; i++) {
        if (!node_member_is_peer(node, &members[i])) {
            continue;
        }
        memset(&out[n], 0, sizeof(out[n]));
        snprintf(out[n].id, sizeof(out[n].id), "%s", members[i].name);
        snprintf(out[n].host, sizeof(out[n].host), "%s", members[i].host);
        out[n].port = members[i].peer_port;
        n++;
    }
    return n;
}

static uint16_t mesh_listen_port(const struct hy_node *node, const struct hy_config *cfg)
{
    size_t count;
    const struct node_member *members = node_members(node, &count);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(members[i].name, cfg->node_id) == 0) {
            return members[i].peer_port;
        }
    }
    return (uint16_t)cfg->peer_port;
}

/* A chunk of a snapshot this node receives, to its file in the log's directory. */
static int mesh_snapshot_chunk(void *ctx, uint32_t group, const struct raft_update *up)
{
    struct io_mesh *m = ctx;
    return snap_recv_chunk(m->recv, group, up);
}

/* Room for a snapshot before its first chunk reaches the core (snap_recv_reserve). */
static int mesh_snapshot_reserve(void *ctx, uint32_t group, const struct raft_message *msg)
{
    struct io_mesh *m = ctx;
    return snap_recv_reserve(m->recv, group, msg);
}

/* A received snapshot read back for its install (replica.c install_snapshot). */
static int mesh_snapshot_recv_load(void *ctx, uint32_t group, uint64_t index, struct hy_buf *out)
{
    struct io_mesh *m = ctx;
    return snap_recv_load(m->snap_disk, group, index, out);
}

/* A parked copy's keyspace, read back from the log's snapshot file (replica.c). */
static int mesh_snapshot_load(void *ctx, uint32_t group, uint64_t index, struct hy_buf *out)
{
    struct io_mesh *m = ctx;
    return snap_stream_load(m->snap_disk, group, index, out);
}

int io_mesh_open(uv_loop_t *loop, struct hy_node *node, const struct hy_config *cfg,
                 const struct hy_log *log, io_mesh_progress_cb progress_cb, void *ctx,
                 struct io_mesh **out)
{
    *out = NULL;
    struct peer_addr peers[PEER_MAX + 1];
    size_t n_peers = mesh_peers(node, peers, HY_ARRAY_LEN(peers));
    if (n_peers > 1 && cfg->cluster_secret[0] == '\0') {
        hy_log(log, HY_LOG_ERROR, "a cluster needs cluster-secret (the same on every member)");
        return HY_ECONFIG;
    }
    if (cfg->cluster_secret[0] == '\0') {
        return HY_OK; /* a lone node without a secret: nobody can join it */
    }
    struct io_tls_ctx *tls = NULL;
    if (cfg->tls_cluster) {
        char err[600];
        tls = io_tls_cluster_ctx_new(cfg, err, sizeof(err));
        if (tls == NULL) {
            hy_log(log, HY_LOG_ERROR, "tls-cluster: %s", err);
            return HY_ECONFIG;
        }
    }
    struct io_mesh *m = hy_xcalloc(1, sizeof(*m));
    *m = (struct io_mesh){.node = node,
                          .loop = loop,
                          .schedstat_fd = -1,
                          .tls = tls,
                          .members_epoch = node_members_epoch(node),
                          .cfg_node_id = cfg->node_id,
                          .log = log,
                          .progress_cb = progress_cb,
                          .ctx = ctx};
    struct peer_config pc;
    peer_config_default(&pc);
    pc.self_id = cfg->node_id;
    pc.cluster = cfg->cluster_name;
    pc.secret = (const uint8_t *)cfg->cluster_secret;
    pc.secret_len = strlen(cfg->cluster_secret);
    pc.listen_host = cfg->bind;
    pc.listen_port = mesh_listen_port(node, cfg);
    pc.peers = peers;
    pc.n_peers = n_peers;
    pc.seed = io_clock_ms() ^ (uint64_t)cfg->pid;
    /* The node pair's liveness (DESIGN.md §7): a beacon every heartbeat interval on an
     * otherwise silent link, and a peer silent for an election timeout is suspected, which
     * wakes the quiesced groups it leads (their followers campaign) or follows. */
    pc.beacon_ms = (uint32_t)cfg->heartbeat_ms;
    pc.ping_timeout_ms = (uint32_t)cfg->peer_ping_timeout_ms;
    /* Links off gossip's ring that carry nothing but keepalive for this long close, quietly,
     * and are dialled again on demand (peer.h "Idle links"). */
    pc.idle_close_ms = (uint32_t)cfg->peer_idle_close_ms;
    pc.suspect_ms = (uint32_t)cfg->election_timeout_ms;
    /* With gossip on, the beacons are the phi detector's heartbeats and gossip replaces the
     * fixed silence detector (docs/operations.md "Failure detection"); they go to the ring
     * neighbours only once gossip's first turn named them (mesh_gossip_ring). */
    if (cfg->gossip) {
        pc.suspect_ms = 0;
    }
    pc.log = log;
    pc.tls = tls;
    struct peer_callbacks cbs = {.ctx = m,
                                 .raft_cb = mesh_raft_cb,
                                 .forward_cb = mesh_forward_cb,
                                 .forward_reply_cb = mesh_forward_reply_cb,
                                 .wan_cb = mesh_wan_cb,
                                 .publish_cb = mesh_publish_cb,
                                 .state_cb = mesh_state_cb,
                                 .liveness_cb = mesh_liveness_cb,
                                 .gossip_cb = mesh_gossip_cb,
                                 .busy_cb = mesh_busy_cb,
                                 .batch_cb = mesh_batch_cb,
                                 .admit_cb = mesh_admit_cb};
    int rc = peer_transport_create(loop, &pc, &cbs, &m->transport);
    if (rc != HY_OK) {
        io_tls_ctx_free(tls);
        hy_free(m);
        return rc;
    }
    if (node_gossip_start(node, pc.seed * 31 + 7, io_clock_ms()) != HY_OK) {
        hy_log(log, HY_LOG_ERROR, "gossip: invalid settings (gossip-*)");
    } else if (node_gossip_on(node)) {
        m->schedstat_fd = open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC);
        uv_timer_init(loop, &m->gossip_timer);
        m->gossip_timer.data = m;
        uv_timer_start(&m->gossip_timer, mesh_gossip_timer_cb, MESH_GOSSIP_POLL_MS,
                       MESH_GOSSIP_POLL_MS);
        m->gossip_timer_on = 1;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/wal", cfg->data_dir);
    if (disk_posix_open(path, &m->snap_disk) == HY_OK) {
        m->snaps = snap_stream_new(m->snap_disk, log);
        m->recv = snap_recv_new(m->snap_disk, log);
        node_set_snapshot_receiver(node, mesh_snapshot_chunk, mesh_snapshot_recv_load,
                                   mesh_snapshot_reserve, m);
        node_set_snapshots_on_disk(node, 1);
        node_set_snapshot_loader(node, mesh_snapshot_load, m);
    } else {
        hy_log(log, HY_LOG_WARN,
               "cannot open %s to stream snapshots from: they are sent from "
               "memory",
               path);
    }
    *out = m;
    return HY_OK;
}

void io_mesh_update(struct io_mesh *m)
{
    if (m == NULL || m->members_epoch == node_members_epoch(m->node)) {
        return;
    }
    m->members_epoch = node_members_epoch(m->node);
    struct peer_addr peers[PEER_MAX + 1];
    size_t n = mesh_peers(m->node, peers, HY_ARRAY_LEN(peers));
    (void)peer_transport_set_peers(m->transport, peers, n); /* failures are logged */
    m->ring_set = 0; /* a peer added now gets its beacons only if the ring names it */
}

/* A snapshot chunk whose bytes are read from the log's file now (snap_stream.h). One that
 * cannot be read is dropped, as a lost message: Raft sends it again. */
static void mesh_send_chunk(struct io_mesh *m, const char *to, uint32_t group,
                            const struct raft_message *msg)
{
    struct raft_message c = *msg;
    uint8_t *buf = hy_xmalloc(c.len);
    int rc = m->snaps != NULL ? snap_stream_fill(m->snaps, group, &c, buf) : HY_ENOTFOUND;
    if (rc == HY_OK) {
        (void)peer_send_raft(m->transport, to, (uint16_t)group, &c);
    } else if (rc == HY_ECORRUPT && m->snap_redo_count < HY_ARRAY_LEN(m->snap_redo)) {
        m->snap_redo[m->snap_redo_count++] = group;
    }
    hy_free(buf);
}

void io_mesh_send_one(void *ctx, uint32_t group, const struct raft_message *msg)
{
    struct io_mesh *m = ctx;
    const char *to = node_member_name(m->node, msg->to);
    if (to != NULL && msg->type == RAFT_MSG_SNAPSHOT && msg->len > 0 && msg->data == NULL) {
        mesh_send_chunk(m, to, group, msg);
    } else if (to != NULL) {
        /* A peer that is down or slow drops the message; Raft retransmits. */
        (void)peer_send_raft(m->transport, to, (uint16_t)group, msg);
    }
}

void io_mesh_send(struct io_mesh *m, const struct node_io_batch *b)
{
    if (m == NULL) {
        return;
    }
    for (uint32_t i = 0; i < b->n_messages; i++) {
        io_mesh_send_one(m, b->group, &b->messages[i]);
    }
}

void io_mesh_flush_peers(struct io_mesh *m)
{
    if (m != NULL) {
        peer_transport_flush(m->transport);
    }
}

void io_mesh_flush(struct io_mesh *m, struct hy_node *node)
{
    for (size_t i = 0; m != NULL && i < m->snap_redo_count; i++) {
        (void)node_snapshot_request(node, m->snap_redo[i], io_clock_ms());
    }
    if (m != NULL) {
        m->snap_redo_count = 0;
    }
    struct node_peer_msg *msg;
    while ((msg = node_take_peer_msg(node)) != NULL) {
        if (m != NULL) {
            /* A forward dropped here (peer down, queue full) never left: the engine runs it
             * again once a leader is reachable. A dropped reply leaves the follower to learn
             * of the failure from the link or the leadership (-UNKNOWN for a write). */
            if (msg->kind == NODE_PUBLISH) {
                (void)peer_send_publish(m->transport, msg->to, msg->data.data, msg->data.len);
            } else if (msg->kind == NODE_WAN_REPLY) {
                /* Lost with its connection, or over its queue: the link asks again. */
                struct wire_wan w = {.req_id = msg->req_id,
                                     .status = (uint8_t)msg->wan_status,
                                     .value = msg->wan_value,
                                     .data = msg->data.data,
                                     .len = msg->data.len};
                int rc = peer_send_wan_reply(m->transport, msg->wan_conn, &w);
                (void)rc;
            } else if (msg->kind == NODE_FORWARD || msg->kind == NODE_FORWARD_BUSY) {
                if (peer_send_forward_on(m->transport, msg->to, msg->req_id, msg->data.data,
                                         msg->data.len, msg->kind == NODE_FORWARD_BUSY) != HY_OK) {
                    node_forward_dropped(node, msg->req_id, io_clock_ms());
                }
            } else {
                (void)peer_send_forward_reply(m->transport, msg->to, msg->req_id, msg->data.data,
                                              msg->data.len);
            }
        }
        node_peer_msg_free(msg);
    }
}

void io_mesh_busy(struct io_mesh *m, int64_t ran_ms, uint64_t now_ms)
{
    if (m == NULL) {
        return;
    }
    if (ran_ms < 0) {
        if (m->busy_told) { /* over: queued, so it leaves before the replies made after it */
            struct hy_buf notice;
            hy_buf_init(&notice);
            node_busy_notice(m->node, now_ms, &notice);
            peer_send_busy_all(m->transport, notice.data, notice.len);
            hy_buf_free(&notice);
        }
        m->busy_told = 0;
        m->busy_notice_ms = 0;
        return;
    }
    if (ran_ms < NODE_BUSY_PEER_MS || now_ms == m->busy_pumped_ms) {
        return;
    }
    m->busy_pumped_ms = now_ms;
    struct hy_buf notice;
    hy_buf_init(&notice);
    if (m->busy_notice_ms == 0 || now_ms >= m->busy_notice_ms + NODE_BUSY_NOTICE_MS) {
        node_busy_notice(m->node, now_ms, &notice);
        m->busy_notice_ms = now_ms;
        m->busy_told = 1;
    }
    peer_transport_busy_pump(m->transport, notice.len > 0 ? notice.data : NULL, notice.len,
                             mesh_busy_forward_cb, m);
    hy_buf_free(&notice);
}

/* The mesh goes once the transport and the gossip timer are both closed. */
static void mesh_close_done(struct io_mesh *m)
{
    if (--m->closing > 0) {
        return;
    }
    void (*done)(void *) = m->done_cb;
    void *done_arg = m->done_arg;
    io_tls_ctx_free(m->tls);
    if (m->schedstat_fd >= 0) {
        close(m->schedstat_fd);
    }
    snap_stream_free(m->snaps);
    snap_recv_free(m->recv);
    if (m->snap_disk != NULL) {
        disk_destroy(m->snap_disk);
    }
    hy_free(m);
    if (done != NULL) {
        done(done_arg);
    }
}

static void mesh_closed_cb(void *arg)
{
    mesh_close_done(arg);
}

static void mesh_timer_closed_cb(uv_handle_t *h)
{
    mesh_close_done(h->data);
}

void io_mesh_close(struct io_mesh *m, void (*done_cb)(void *arg), void *arg)
{
    if (m == NULL) {
        if (done_cb != NULL) {
            done_cb(arg);
        }
        return;
    }
    m->done_cb = done_cb;
    m->done_arg = arg;
    m->closing = 1 + m->gossip_timer_on;
    if (m->gossip_timer_on) {
        uv_timer_stop(&m->gossip_timer);
        uv_close((uv_handle_t *)&m->gossip_timer, mesh_timer_closed_cb);
    }
    /* At once: nothing may reach the engine once the shell started stopping it. */
    peer_transport_close(m->transport, mesh_closed_cb, m);
}

int io_mesh_peer_stats(const struct io_mesh *m, const char *name, struct peer_stats *out)
{
    if (m == NULL || m->transport == NULL) {
        return 0;
    }
    return peer_get_stats(m->transport, name, out) == HY_OK;
}

int io_mesh_tls_prepare(const struct io_mesh *m, const struct hy_config *cfg,
                        struct io_tls_ctx **out, char *err, size_t cap)
{
    *out = NULL;
    if (m == NULL || m->tls == NULL) {
        return 0; /* clear text: tls-cluster takes a restart */
    }
    *out = io_tls_cluster_ctx_new(cfg, err, cap);
    return *out == NULL ? -1 : 0;
}

void io_mesh_tls_swap(struct io_mesh *m, struct io_tls_ctx *fresh)
{
    if (fresh == NULL) {
        return;
    }
    /* Open connections hold their own reference to the old context (OpenSSL counts them). */
    io_tls_ctx_free(m->tls);
    m->tls = fresh;
    peer_transport_set_tls(m->transport, fresh);
}
