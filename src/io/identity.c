/*
 * identity.c - which cluster a data dir belongs to, and joining one (see identity.h).
 */
#include "io/identity.h"
#include "node/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "io/disk.h"
#include "io/peer_auth.h"
#include "client/rconn.h"
#include "io/wal_codec.h"
#include "io/server.h"
#include "node/join_auth.h"
#include "proto/dns.h"
#include "proto/resp.h"

#define IDENTITY_FILE      "cluster"
#define IDENTITY_BYTES_MAX 16384
#define JOIN_DEADLINE_MS   60000

/* Reads dir/name into out (NUL-terminated); 1 = read, 0 = absent, -1 = error. */
static int read_small(const char *dir, const char *name, char *out, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0 || (len += (size_t)n) == cap - 1) {
            break;
        }
    }
    close(fd);
    out[len] = '\0';
    return 1;
}

/* 1 when a segment file holds more than the term-0 records a new log starts with. */
static int segment_has_log(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    struct stat st;
    int found = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1 << 30)) {
        uint8_t *buf = hy_xmalloc((size_t)st.st_size);
        ssize_t got = pread(fd, buf, (size_t)st.st_size, 0);
        if (got > 0) {
            struct wal_seg_parse p;
            wal_segment_parse(buf, (size_t)got, 0, &p);
            for (size_t i = 0; i < p.n_records && !found; i++) {
                found = p.records[i].kind != WAL_KIND_TERM_VOTE || p.records[i].index != 0;
            }
            wal_seg_parse_free(&p);
        }
        hy_free(buf);
    }
    close(fd);
    return found;
}

/* 1 when DATA_DIR/wal holds log entries, snapshots or a term: more than the term/vote
 * records a new log starts with. */
static int group_has_log(const char *data_dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/wal", data_dir);
    DIR *dir = opendir(path);
    if (dir == NULL) {
        return 0;
    }
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(dir)) != NULL) {
        const char *n = de->d_name;
        if (strncmp(n, "segment-", 8) == 0 || strncmp(n, "snapshot-", 9) == 0) {
            found = strstr(n, ".tmp") == NULL;
        } else if (strncmp(n, "open-", 5) == 0) {
            char file[4500];
            snprintf(file, sizeof(file), "%s/%s", path, n);
            found = segment_has_log(file);
        }
    }
    closedir(dir);
    return found;
}

static void set_string(char **field, const char *value)
{
    hy_free(*field);
    *field = hy_xstrdup(value);
}

/* ---- joining: one blocking RESP connection (src/client/rconn.h, shared with the clients) ---- */

#define JOIN_CONNECT_MS 2000
#define JOIN_ANSWER_MS  10000 /* a join waits for its entry to commit */

/* A connection to host:port bounded by JOIN_CONNECT_MS, resolved now (a name may have changed
 * since the last attempt; rconn_dial tries each of its A/AAAA addresses in the resolver's order:
 * a headless service naming every member); fd -1 when it failed (errno says why). */
static struct rconn dial(const char *host, uint16_t port)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    return (struct rconn){.fd = rconn_dial(host, service, rconn_now_ms() + JOIN_CONNECT_MS, NULL),
                          .wake_fd = -1};
}

/* Sends one request and reads one reply into *v (strings borrow from in). 0 or -1. */
static int roundtrip(struct rconn *c, const char *const *argv, size_t argc, struct hy_buf *in,
                     struct resp_value *v)
{
    int rc =
        rconn_call(c, (int)argc, argv, NULL, in, NULL, rconn_now_ms() + JOIN_ANSWER_MS, v, NULL, 0);
    return rc == RCONN_OK ? 0 : -1;
}

/* The members list from HALYARD PEERS, comma-separated; 0 or -1. */
static int peers_list(const struct resp_value *v, struct hy_buf *out)
{
    if (v->type != RESP_ARRAY || v->count == 0) {
        return -1;
    }
    for (size_t i = 0; i < v->count; i++) {
        const struct resp_value *e = &v->elems[i];
        if (e->type != RESP_BULK || e->len == 0 || memchr(e->str, ',', e->len) != NULL) {
            return -1;
        }
        if (i > 0) {
            hy_buf_append(out, ",", 1);
        }
        hy_buf_append(out, e->str, e->len);
    }
    hy_buf_append(out, "", 1);
    return 0;
}

/* Errors after which asking again may succeed (no leader yet, outcome unknown: JOIN is
 * idempotent). */
static int retryable(const struct resp_value *v)
{
    static const char *const codes[] = {"TRYAGAIN", "UNKNOWN", "NOQUORUM", "BUSY", "LOADING"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t len = strlen(codes[i]);
        if (v->len >= len && memcmp(v->str, codes[i], len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Proves the cluster secret on the member's client port (node/join_auth.h), so a member with
 * requirepass lets us in without the clients' password. 0, 1 = refused (v holds the error
 * reply, to be freed), or -1 = no answer. */
static int prove_secret(const struct hy_config *cfg, struct rconn *c, struct hy_buf *in,
                        struct resp_value *v)
{
    const char *challenge[] = {"HALYARD", "CHALLENGE"};
    if (roundtrip(c, challenge, 2, in, v) != 0) {
        return -1;
    }
    if (v->type != RESP_BULK || v->len > 64) {
        return v->type == RESP_ERROR ? 1 : (resp_value_free(v), -1);
    }
    char nonce[65], msg[1024], mac_hex[2 * JOIN_AUTH_MAC_BYTES + 1];
    snprintf(nonce, sizeof(nonce), "%.*s", (int)v->len, (const char *)v->str);
    resp_value_free(v);
    size_t len = join_auth_message(cfg->cluster_name, cfg->node_id, nonce, msg, sizeof(msg));
    uint8_t mac[JOIN_AUTH_MAC_BYTES];
    peer_auth_mac((const uint8_t *)cfg->cluster_secret, strlen(cfg->cluster_secret),
                  (const uint8_t *)msg, len, mac);
    join_auth_hex(mac, sizeof(mac), mac_hex);
    const char *auth[] = {"HALYARD", "PEER-AUTH", cfg->node_id, mac_hex};
    if (roundtrip(c, auth, 4, in, v) != 0) {
        return -1;
    }
    if (v->type == RESP_ERROR) {
        return 1;
    }
    resp_value_free(v);
    return 0;
}

/* CONFIG GET name on conn: its value as a number in *out, def when the member does not know
 * the setting (an empty list). 0 on an answer, -1 when there was none. */
static int config_get_number(struct rconn *conn, const char *name, struct hy_buf *in, int64_t def,
                             int64_t *out)
{
    const char *argv[] = {"CONFIG", "GET", name};
    struct resp_value v;
    if (roundtrip(conn, argv, 3, in, &v) != 0) {
        return -1;
    }
    *out = def;
    if (v.type == RESP_ARRAY && v.count == 2 && v.elems[1].type == RESP_BULK &&
        v.elems[1].len > 0 && v.elems[1].len < 8) {
        char num[8];
        snprintf(num, sizeof(num), "%.*s", (int)v.elems[1].len, (const char *)v.elems[1].str);
        *out = strtol(num, NULL, 10);
    }
    resp_value_free(&v);
    return 0;
}

/* Asks the member at host:client_port to add us; fills members. HY_OK, HY_EAGAIN (try
 * again) or HY_ECONFIG (refused: the reason is logged). */
static int join_once(const struct hy_config *cfg, const struct hy_log *log, const char *host,
                     uint16_t port, struct hy_buf *members, int64_t *partitions, int64_t *rf)
{
    struct rconn conn = dial(host, port);
    if (conn.fd < 0) {
        hy_log(log, HY_LOG_WARN, "join: cannot reach %s:%u: %s; retrying", host, port,
               strerror(errno));
        return HY_EAGAIN;
    }
    char peer_port[16];
    snprintf(peer_port, sizeof(peer_port), "%lld", (long long)cfg->peer_port);
    /* Without --role (role auto), JOIN names none: the member keeps the role it was added
     * with (halyctl cluster join ... --observer), else it joins as a voter. */
    const char *join[] = {"HALYARD",    "JOIN",
                          cfg->node_id, cfg->bind,
                          peer_port,    cfg->role == CONFIG_ROLE_OBSERVER ? "OBSERVER" : "VOTER"};
    size_t join_argc = cfg->role == CONFIG_ROLE_AUTO ? 5 : 6;
    const char *peers[] = {"HALYARD", "PEERS"};
    struct hy_buf in;
    hy_buf_init(&in);
    struct resp_value v;
    int rc = HY_EAGAIN, proof = prove_secret(cfg, &conn, &in, &v);
    if (proof < 0) {
        hy_log(log, HY_LOG_WARN, "join: no answer from %s:%u; retrying", host, port);
    } else if (proof > 0) {
        hy_log(log, HY_LOG_ERROR, "join: %s:%u refused this node's cluster-secret: %.*s", host,
               port, (int)v.len, (const char *)v.str);
        rc = HY_ECONFIG;
        resp_value_free(&v);
    } else if (roundtrip(&conn, join, join_argc, &in, &v) != 0) {
        hy_log(log, HY_LOG_WARN, "join: no answer from %s:%u; retrying", host, port);
    } else if (v.type == RESP_ERROR) {
        int again = retryable(&v);
        hy_log(log, again ? HY_LOG_WARN : HY_LOG_ERROR, "join: %s:%u answered: %.*s%s", host, port,
               (int)v.len, (const char *)v.str, again ? "; retrying" : "");
        rc = again ? HY_EAGAIN : HY_ECONFIG;
        resp_value_free(&v);
    } else {
        resp_value_free(&v);
        if (roundtrip(&conn, peers, 2, &in, &v) == 0) {
            rc = peers_list(&v, members) == 0 ? HY_OK : HY_EAGAIN;
            resp_value_free(&v);
        }
        /* The cluster's partition count and replication factor were fixed when it formed:
         * the joiner takes them (a member from before partitions answers an empty list: one
         * partition; from before the replication factor: every member holds every one). */
        if (rc == HY_OK &&
            (config_get_number(&conn, "partitions", &in, 1, partitions) != 0 ||
             config_get_number(&conn, "replication-factor", &in, NODE_RF_EVERY_MEMBER, rf) != 0)) {
            rc = HY_EAGAIN;
        } else if (rc == HY_OK && (*partitions < 1 || *partitions > NODE_PARTITIONS_MAX)) {
            hy_log(log, HY_LOG_ERROR, "join: %s:%u has %lld partitions; at most %d here", host,
                   port, (long long)*partitions, NODE_PARTITIONS_MAX);
            rc = HY_ECONFIG;
        } else if (rc == HY_OK && (*rf < 1 || (*rf > NODE_RF_MAX && *rf != NODE_RF_EVERY_MEMBER))) {
            hy_log(log, HY_LOG_ERROR, "join: %s:%u has replication-factor %lld; 1..%d here", host,
                   port, (long long)*rf, NODE_RF_MAX);
            rc = HY_ECONFIG;
        }
    }
    hy_buf_free(&in);
    rconn_close(&conn);
    return rc;
}

/* SIGINT/SIGTERM while joining: the event loop (and its signal handling) is not running yet,
 * so a signal would kill the process with no word said. The join loop notices this flag
 * instead and stops with an error: the node did not join, and must not exit 0. */
static volatile sig_atomic_t join_stop_signal;

static void join_signal_handler(int signum)
{
    join_stop_signal = signum;
}

#define JOIN_TARGETS_MAX   64
#define JOIN_SRV_NAMES_MAX 8

/* The join list split: DNS SRV names (entries starting with '_' and without a port, as
 * _halyard._tcp.example.com: RFC 2782's _service._proto.name), asked for at every attempt,
 * and the rest (HOST:PEERPORT, ranges) for node_join_targets_parse. */
struct join_list {
    char srv[JOIN_SRV_NAMES_MAX][DNS_NAME_MAX + 1];
    size_t srv_count;
    struct hy_buf rest; /* NUL-terminated */
};

static int join_list_split(const char *list, struct join_list *out, char *err, size_t cap)
{
    out->srv_count = 0;
    hy_buf_init(&out->rest);
    for (const char *p = list; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > 0 && p[0] == '_' && memchr(p, ':', len) == NULL) {
            if (out->srv_count == JOIN_SRV_NAMES_MAX || len > DNS_NAME_MAX) {
                snprintf(err, cap, "at most %d SRV names of at most %d bytes", JOIN_SRV_NAMES_MAX,
                         DNS_NAME_MAX);
                hy_buf_free(&out->rest);
                return -1;
            }
            snprintf(out->srv[out->srv_count++], DNS_NAME_MAX + 1, "%.*s", (int)len, p);
        } else if (len > 0) {
            if (out->rest.len > 0) {
                hy_buf_append(&out->rest, ",", 1);
            }
            hy_buf_append(&out->rest, p, len);
        }
        p = end != NULL ? end + 1 : p + len;
    }
    hy_buf_append(&out->rest, "", 1);
    return 0;
}

/* Asks the resolver for name's SRV records now: up to cap targets (host and peer port, the
 * best first) in out; their count (0 when the name has none or the resolver fails: logged). */
static size_t srv_targets(const struct hy_log *log, const char *name, struct node_join_target *out,
                          size_t cap)
{
    uint8_t answer[4096];
    int len = res_query(name, ns_c_in, ns_t_srv, answer, sizeof(answer));
    if (len < 0) {
        hy_log(log, HY_LOG_WARN, "join: no SRV records for %s (%s); retrying", name,
               hstrerror(h_errno));
        return 0;
    }
    struct dns_srv recs[JOIN_TARGETS_MAX];
    size_t count = 0, n = 0;
    if (dns_srv_parse(answer, (size_t)HY_MIN((size_t)len, sizeof(answer)), recs,
                      HY_MIN(cap, (size_t)JOIN_TARGETS_MAX), &count) != HY_OK) {
        hy_log(log, HY_LOG_WARN, "join: malformed SRV answer for %s; retrying", name);
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        if (recs[i].port <= 10000 || strlen(recs[i].target) > NODE_MEMBER_HOST_MAX) {
            hy_log(log, HY_LOG_WARN, "join: SRV %s names %s:%u, not a HOST:PEERPORT; skipped", name,
                   recs[i].target, recs[i].port);
            continue;
        }
        snprintf(out[n].host, sizeof(out[n].host), "%s", recs[i].target);
        out[n++].peer_port = recs[i].port;
    }
    return n;
}

/* One join attempt on each target in turn: HY_EAGAIN when none took it. */
static int join_round(const struct hy_config *cfg, const struct hy_log *log,
                      const struct node_join_target *targets, size_t n, struct hy_buf *out,
                      int64_t *partitions, int64_t *rf)
{
    for (size_t i = 0; i < n; i++) {
        hy_buf_reset(out);
        int rc = join_once(cfg, log, targets[i].host, (uint16_t)(targets[i].peer_port - 10000), out,
                           partitions, rf);
        if (join_stop_signal != 0) {
            hy_log(log, HY_LOG_ERROR, "join: received %s before joining; not joined, exiting",
                   strsignal(join_stop_signal));
            return HY_ECLOSED;
        }
        if (rc != HY_EAGAIN) {
            return rc;
        }
    }
    return HY_EAGAIN;
}

/* Rounds over the targets: each is asked in turn (a name resolved anew each time, SRV names
 * asked for their targets first); the first that takes the join ends it, a refusal ends it,
 * and after a round where none answered the next waits a doubling delay, until the deadline. */
static int join_attempts(const struct hy_config *cfg, const struct hy_log *log,
                         const struct join_list *list, const struct node_join_target *targets,
                         size_t n, struct hy_buf *out, int64_t *partitions, int64_t *rf)
{
    uint64_t deadline = io_clock_ms() + JOIN_DEADLINE_MS;
    uint32_t delay_ms = 100;
    for (;;) {
        for (size_t s = 0; s < list->srv_count; s++) {
            struct node_join_target found[JOIN_TARGETS_MAX];
            size_t k = srv_targets(log, list->srv[s], found, JOIN_TARGETS_MAX);
            int rc = join_round(cfg, log, found, k, out, partitions, rf);
            if (rc != HY_EAGAIN) {
                return rc;
            }
        }
        int rc = join_round(cfg, log, targets, n, out, partitions, rf);
        if (rc != HY_EAGAIN) {
            return rc;
        }
        if (io_clock_ms() + delay_ms > deadline) {
            hy_log(log, HY_LOG_ERROR, "join: gave up after %d s", JOIN_DEADLINE_MS / 1000);
            return HY_ETIMEDOUT;
        }
        usleep(delay_ms * 1000); /* cut short by a signal: checked on the next round */
        delay_ms = delay_ms < 2000 ? delay_ms * 2 : 2000;
    }
}

static int join_cluster(const struct hy_config *cfg, const struct hy_log *log, struct hy_buf *out,
                        int64_t *partitions, int64_t *rf)
{
    struct node_join_target targets[JOIN_TARGETS_MAX];
    size_t n = 0;
    char err[160];
    struct join_list list;
    if (join_list_split(cfg->join, &list, err, sizeof(err)) != 0) {
        hy_log(log, HY_LOG_ERROR, "join: %s", err);
        return HY_ECONFIG;
    }
    const char *rest = (const char *)list.rest.data;
    if ((rest[0] != '\0' || list.srv_count == 0) &&
        node_join_targets_parse(rest, targets, JOIN_TARGETS_MAX, &n, err) != 0) {
        hy_log(log, HY_LOG_ERROR, "join: %s", err);
        hy_buf_free(&list.rest);
        return HY_ECONFIG;
    }
    for (size_t i = 0; i < n; i++) {
        if (targets[i].peer_port <= 10000) {
            hy_log(log, HY_LOG_ERROR,
                   "join: %s:%u is not HOST:PEERPORT (the member's client port is 10000 below)",
                   targets[i].host, targets[i].peer_port);
            hy_buf_free(&list.rest);
            return HY_ECONFIG;
        }
    }
    if (strcmp(cfg->bind, "0.0.0.0") == 0 || strcmp(cfg->bind, "::") == 0) {
        hy_log(log, HY_LOG_ERROR,
               "join: set bind to the address the other members reach this "
               "node at (it is advertised to them)");
        hy_buf_free(&list.rest);
        return HY_ECONFIG;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = join_signal_handler; /* no SA_RESTART: sleeps and reads end early */
    sigemptyset(&sa.sa_mask);
    join_stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = join_attempts(cfg, log, &list, targets, n, out, partitions, rf);
    hy_buf_free(&list.rest);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

/* ---- the identity file ----------------------------------------------------------------------- */

int io_identity_load(struct hy_config *cfg, const struct hy_log *log)
{
    cfg->formed = 0;
    if (disk_posix_mkdirs(cfg->data_dir) != 0) {
        hy_log(log, HY_LOG_ERROR, "cannot create data dir %s: %s", cfg->data_dir, strerror(errno));
        return HY_EIO;
    }
    char text[IDENTITY_BYTES_MAX];
    int got = read_small(cfg->data_dir, IDENTITY_FILE, text, sizeof(text));
    if (got < 0) {
        hy_log(log, HY_LOG_ERROR, "cannot read %s/%s: %s", cfg->data_dir, IDENTITY_FILE,
               strerror(errno));
        return HY_EIO;
    }
    if (got > 0) {
        char *nl = strchr(text, '\n');
        if (nl != NULL) {
            *nl = '\0';
            /* "partitions N" on the second line; a file from before partitions has none. */
            long parts = 1;
            if (sscanf(nl + 1, "partitions %ld", &parts) == 1 &&
                (parts < 1 || parts > NODE_PARTITIONS_MAX)) {
                hy_log(log, HY_LOG_ERROR, "%s/%s: partitions %ld is out of range (1..%d)",
                       cfg->data_dir, IDENTITY_FILE, parts, NODE_PARTITIONS_MAX);
                return HY_ECORRUPT;
            }
            if (cfg->partitions != 1 && cfg->partitions != parts) {
                hy_log(log, HY_LOG_WARN,
                       "the cluster was created with %ld partitions; partitions %lld is ignored",
                       parts, (long long)cfg->partitions);
            }
            cfg->partitions = parts;
            /* "replication-factor R" on the third line; a file from before it has none: every
             * member held every partition, and still does. */
            const char *rf_line = strstr(nl + 1, "\nreplication-factor ");
            long rf = NODE_RF_EVERY_MEMBER;
            if (rf_line != NULL && (sscanf(rf_line + 1, "replication-factor %ld", &rf) != 1 ||
                                    rf < 1 || rf > NODE_RF_MAX)) {
                hy_log(log, HY_LOG_ERROR, "%s/%s: replication-factor is out of range (1..%d)",
                       cfg->data_dir, IDENTITY_FILE, NODE_RF_MAX);
                return HY_ECORRUPT;
            }
            if (cfg->replication_factor != NODE_RF_DEFAULT && cfg->replication_factor != rf) {
                hy_log(log, HY_LOG_WARN,
                       "the cluster was created with replication-factor %ld; %lld is ignored", rf,
                       (long long)cfg->replication_factor);
            }
            cfg->replication_factor = rf;
        }
        int joined = strncmp(text, "join ", 5) == 0;
        if (!joined && strncmp(text, "bootstrap ", 10) != 0) {
            hy_log(log, HY_LOG_ERROR,
                   "%s/%s is not a halyard cluster file (want 'bootstrap LIST' or 'join LIST')",
                   cfg->data_dir, IDENTITY_FILE);
            return HY_ECORRUPT;
        }
        const char *list = text + (joined ? 5 : 10);
        if (cfg->bootstrap[0] != '\0' && strcmp(cfg->bootstrap, list) != 0) {
            hy_log(log, HY_LOG_WARN,
                   "the data dir was formed with '%s'; --bootstrap '%s' is ignored "
                   "(members change with HALYARD JOIN/REMOVE)",
                   list, cfg->bootstrap);
        }
        set_string(&cfg->bootstrap, list);
        cfg->joined = joined;
        cfg->formed = 1;
        return HY_OK;
    }
    /* A fresh data dir, or one a crash left between its log's creation and this file's (the
     * log then holds nothing but term 0), or one from before this file existed (a log with
     * entries: it keeps the flags' list). */
    if (cfg->join[0] != '\0' && !group_has_log(cfg->data_dir)) {
        struct hy_buf list;
        hy_buf_init(&list);
        int64_t parts = 1, rf = NODE_RF_EVERY_MEMBER;
        int rc = join_cluster(cfg, log, &list, &parts, &rf);
        if (rc != HY_OK) {
            hy_buf_free(&list);
            return rc;
        }
        cfg->joined = 1;
        cfg->partitions = parts;
        cfg->replication_factor = rf;
        set_string(&cfg->bootstrap, (const char *)list.data);
        hy_buf_free(&list);
        hy_log(log, HY_LOG_INFO, "joined: members %s", cfg->bootstrap);
    }
    return HY_OK;
}

int io_identity_save(const struct hy_config *cfg, const struct hy_log *log)
{
    if (cfg->formed) {
        return HY_OK;
    }
    /* A lone node keeps an empty list: it is its own first configuration. */
    struct hy_buf text;
    hy_buf_init(&text);
    hy_buf_printf(&text, "%s %s\npartitions %lld\n", cfg->joined ? "join" : "bootstrap",
                  cfg->bootstrap, (long long)cfg->partitions);
    if (cfg->replication_factor != NODE_RF_EVERY_MEMBER) {
        hy_buf_printf(&text, "replication-factor %lld\n", (long long)cfg->replication_factor);
    }
    int rc = disk_posix_write_file(cfg->data_dir, IDENTITY_FILE, text.data, text.len);
    hy_buf_free(&text);
    if (rc != 0) {
        hy_log(log, HY_LOG_ERROR, "cannot write %s/%s: %s", cfg->data_dir, IDENTITY_FILE,
               strerror(errno));
        return HY_EIO;
    }
    return HY_OK;
}
