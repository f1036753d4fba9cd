/*
 * halyctl - the admin CLI, a thin shell over the HALYARD commands (DESIGN.md §8).
 *
 *   halyctl [-h HOST] [-p PORT] [--json] cluster status
 *   halyctl [-h HOST] [-p PORT] cluster failover [--to NODE]
 *   halyctl [-h HOST] [-p PORT] node drain     (hand leadership over, stop the node)
 *   halyctl [-h HOST] [-p PORT] cluster join NODE@HOST:PEERPORT [--observer]
 *   halyctl [-h HOST] [-p PORT] cluster remove NODE
 *   halyctl [-h HOST] [-p PORT] cluster force-quorum --confirm-data-loss
 *   halyctl [-h HOST] [-p PORT] snapshot
 *
 * It speaks RESP over one blocking TCP connection; replies are decoded with the project's own
 * codec (src/proto/resp.h). Exit codes: 0 done, 1 the cluster refused or timed out, 2 usage or
 * connection error.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "proto/resp.h"

struct conn {
    int fd;
    struct hy_buf in;
};

static int conn_open(struct conn *c, const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "halyctl: cannot resolve %s\n", host);
        return -1;
    }
    c->fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "halyctl: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    hy_buf_init(&c->in);
    return 0;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    hy_buf_free(&c->in);
}

/* 1 when nothing accepts connections on host:port any more. */
static int probe_closed(const char *host, const char *port, struct conn *scratch)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return 0;
    }
    scratch->fd = socket(res->ai_family, SOCK_STREAM, 0);
    int refused = scratch->fd >= 0 && connect(scratch->fd, res->ai_addr, res->ai_addrlen) != 0;
    if (scratch->fd >= 0) {
        close(scratch->fd);
    }
    freeaddrinfo(res);
    return refused;
}

/* Sends argv as a multibulk and reads one reply into *out (its strings borrow c->in until the
 * next call). Returns 0, or -1 on a connection or protocol error. */
static int conn_call(struct conn *c, int argc, const char **argv, struct resp_value *out)
{
    struct hy_buf req;
    hy_buf_init(&req);
    hy_buf_printf(&req, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        hy_buf_printf(&req, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    }
    ssize_t w = write(c->fd, req.data, req.len);
    hy_buf_free(&req);
    if (w < 0) {
        return -1;
    }
    hy_buf_reset(&c->in);
    struct resp_limits limits;
    resp_limits_default(&limits);
    for (;;) {
        size_t used;
        char err[128];
        int rc = resp_value_parse(&limits, c->in.data, c->in.len, out, &used, err);
        if (rc == HY_OK) {
            return 0;
        }
        if (rc != HY_EAGAIN) {
            fprintf(stderr, "halyctl: bad reply: %s\n", err);
            return -1;
        }
        uint8_t *p = hy_buf_reserve(&c->in, 4096);
        ssize_t n = read(c->fd, p, 4096);
        if (n <= 0) {
            fprintf(stderr, "halyctl: connection closed\n");
            return -1;
        }
        c->in.len += (size_t)n;
    }
}

static int print_reply(const struct resp_value *v)
{
    if (v->type == RESP_ERROR || v->type == RESP_BULK_ERROR) {
        fprintf(stderr, "%.*s\n", (int)v->len, (const char *)v->str);
        return 1;
    }
    const char *s = (const char *)v->str;
    size_t len = v->len;
    if (v->type == RESP_VERBATIM && len >= 4) {
        s += 4; /* "txt:" */
        len -= 4;
    }
    printf("%.*s%s", (int)len, s, len > 0 && s[len - 1] == '\n' ? "" : "\n");
    return 0;
}

/* Copies the JSON string value that follows `key` (e.g. "\"leader\":\"") in json, or "". */
static void json_string_after(const char *json, const char *key, char *out, size_t cap)
{
    const char *p = strstr(json, key);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(key);
        const char *q = strchr(p, '"');
        snprintf(out, cap, "%.*s", q ? (int)(q - p) : 0, p);
    }
}

/* The leader's name and client address from HALYARD STATUS JSON ("" when none is known). */
static void status_leader_addr(struct conn *c, char *leader, size_t cap, char *addr,
                               size_t addr_cap)
{
    const char *argv[] = {"HALYARD", "STATUS", "JSON"};
    struct resp_value v;
    leader[0] = '\0';
    if (addr != NULL) {
        addr[0] = '\0';
    }
    if (conn_call(c, 3, argv, &v) != 0) {
        return;
    }
    if (v.type == RESP_BULK) {
        char json[8192], key[256];
        snprintf(json, sizeof(json), "%.*s", (int)v.len, (const char *)v.str);
        json_string_after(json, "\"leader\":\"", leader, cap);
        snprintf(key, sizeof(key), "{\"name\":\"%s\",\"address\":\"", leader);
        if (addr != NULL && leader[0] != '\0') {
            json_string_after(json, key, addr, addr_cap);
        }
    }
    resp_value_free(&v);
}

static void status_leader(struct conn *c, char *leader, size_t cap)
{
    status_leader_addr(c, leader, cap, NULL, 0);
}

/* Reconnects c to the leader when this node is not it. Returns 0, or -1. */
static int conn_to_leader(struct conn *c)
{
    char leader[128], addr[300];
    /* Right after an election a member may not know the leader yet: ask again for up to 3 s. */
    for (int i = 0; i < 60; i++) {
        status_leader_addr(c, leader, sizeof(leader), addr, sizeof(addr));
        if (leader[0] != '\0') {
            break;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    char *colon = strrchr(addr, ':');
    if (leader[0] == '\0' || colon == NULL) {
        fprintf(stderr, "halyctl: no leader is known right now\n");
        return -1;
    }
    *colon = '\0';
    conn_close(c);
    return conn_open(c, addr, colon + 1);
}

static int cmd_failover(struct conn *c, const char *to)
{
    char before[128], now[128];
    if (conn_to_leader(c) != 0) {
        return 1;
    }
    status_leader(c, before, sizeof(before));
    const char *argv[] = {"HALYARD", "FAILOVER", "TO", to};
    struct resp_value v;
    if (conn_call(c, to ? 4 : 2, argv, &v) != 0) {
        return 2;
    }
    int rc = print_reply(&v);
    resp_value_free(&v);
    if (rc != 0) {
        return 1;
    }
    /* Wait for another leader: the transfer finishes within an election timeout or aborts. */
    for (int i = 0; i < 100; i++) {
        status_leader(c, now, sizeof(now));
        if (now[0] != '\0' && strcmp(now, before) != 0) {
            printf("leader is now %s\n", now);
            return 0;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    fprintf(stderr, "halyctl: leadership did not move within 5 s\n");
    return 1;
}

/* node drain: the node hands leadership over and exits; wait (10 s at most) until its port
 * stops answering. */
static int cmd_drain(struct conn *c, const char *host, const char *port)
{
    const char *argv[] = {"HALYARD", "DRAIN"};
    struct resp_value v;
    if (conn_call(c, 2, argv, &v) != 0) {
        return 2;
    }
    int rc = print_reply(&v);
    resp_value_free(&v);
    if (rc != 0) {
        return 1;
    }
    for (int i = 0; i < 200; i++) {
        struct conn probe;
        if (probe_closed(host, port, &probe)) {
            printf("node stopped\n");
            return 0;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    fprintf(stderr, "halyctl: the node did not stop within 10 s\n");
    return 1;
}

/* What the member at c reports of NODE: its role ("" when it is not listed) and, from the
 * leader only, whether NODE ever answered it (-1: not known here) and is caught up. */
struct member_state {
    char role[64];
    int answered;
    int caught_up;
};

static void member_state(struct conn *c, const char *name, struct member_state *st)
{
    const char *argv[] = {"HALYARD", "MEMBERS", "JSON"};
    struct resp_value v;
    st->role[0] = '\0';
    st->answered = -1;
    st->caught_up = 0;
    if (conn_call(c, 3, argv, &v) != 0) {
        return;
    }
    if (v.type == RESP_BULK) {
        char json[16384], key[256];
        snprintf(json, sizeof(json), "%.*s", (int)v.len, (const char *)v.str);
        snprintf(key, sizeof(key), "{\"name\":\"%s\",", name);
        char *at = strstr(json, key);
        char *end = at ? strchr(at, '}') : NULL;
        if (end != NULL) {
            *end = '\0'; /* one member's object: members hold no nested objects */
            json_string_after(at, "\"role\":\"", st->role, sizeof(st->role));
            st->answered = strstr(at, "\"answered\":true")    ? 1
                           : strstr(at, "\"answered\":false") ? 0
                                                              : -1;
            st->caught_up = strstr(at, "\"caught_up\":true") != NULL;
        }
    }
    resp_value_free(&v);
}

/* Says what the join waits for, once per change. */
static void join_progress(const char *name, const char *where, const struct member_state *st,
                          char *said, size_t cap)
{
    char line[1024];
    if (st->role[0] == '\0' || strcmp(st->role, "joining") == 0) {
        snprintf(line, sizeof(line), "waiting for the leader to add %s", name);
    } else if (st->answered == 0) {
        snprintf(line, sizeof(line),
                 "waiting for %s: it has not answered the leader at %s yet (start it with --join; "
                 "a node with another cluster-secret or cluster-name is refused, see its log)",
                 name, where);
    } else if (st->answered == 1) {
        snprintf(line, sizeof(line), "%s answers; %s is a %s, catching up", name, name, st->role);
    } else {
        return;
    }
    if (strcmp(line, said) != 0) {
        printf("%s\n", line);
        fflush(stdout);
        snprintf(said, cap, "%s", line);
    }
}

/* cluster join / remove: the change is written at once; the leader then adds, promotes or
 * removes the member one step at a time. Waits (60 s at most) until it is done: for a join,
 * until the member answers the leader and is a voter (or an observer); only the leader knows
 * whether it answers, so the wait asks the leader. */
static int cmd_member(struct conn *c, const char *op, const char *spec, int observer)
{
    char name[128], host[256], port[16], where[300];
    const char *at = strchr(spec, '@'), *colon = strrchr(spec, ':');
    if (strcmp(op, "JOIN") == 0) {
        if (at == NULL || colon == NULL || colon < at || at - spec >= (long)sizeof(name) ||
            colon - at - 1 >= (long)sizeof(host) || strlen(colon + 1) >= sizeof(port)) {
            fprintf(stderr, "halyctl: want NODE@HOST:PEERPORT, got '%s'\n", spec);
            return 2;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(at - spec), spec);
        snprintf(host, sizeof(host), "%.*s", (int)(colon - at - 1), at + 1);
        snprintf(port, sizeof(port), "%s", colon + 1);
        snprintf(where, sizeof(where), "%s:%s", host, port);
    } else {
        snprintf(name, sizeof(name), "%s", spec);
    }
    const char *join[] = {"HALYARD", "JOIN", name, host, port, observer ? "OBSERVER" : "VOTER"};
    const char *remove[] = {"HALYARD", "REMOVE", name};
    struct resp_value v;
    if (conn_call(c, op[0] == 'J' ? 6 : 3, op[0] == 'J' ? join : remove, &v) != 0) {
        return 2;
    }
    int rc = print_reply(&v);
    resp_value_free(&v);
    if (rc != 0) {
        return 1;
    }
    fflush(stdout);
    if (op[0] == 'J') {
        (void)conn_to_leader(c); /* on failure c stays where it was */
    }
    const char *want = op[0] == 'R' ? "" : observer ? "observer" : "follower";
    struct member_state st;
    char said[1024] = "";
    for (int i = 0; i < 600; i++) {
        member_state(c, name, &st);
        int there = strcmp(st.role, want) == 0 ||
                    (op[0] == 'J' && !observer && strcmp(st.role, "leader") == 0);
        if (there && (op[0] == 'R' || !observer || st.answered == 1)) {
            printf("%s is %s\n", name, op[0] == 'R' ? "removed" : st.role);
            return 0;
        }
        if (op[0] == 'J') {
            join_progress(name, where, &st, said, sizeof(said));
        }
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    fprintf(stderr,
            "halyctl: %s is still '%s'%s after 60 s (the change goes on in the background)\n", name,
            st.role, st.answered == 0 ? " and has never answered the leader" : "");
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: halyctl [-h HOST] [-p PORT] [--json] cluster status\n"
                    "       halyctl [-h HOST] [-p PORT] cluster failover [--to NODE]\n"
                    "       halyctl [-h HOST] [-p PORT] cluster join NODE@HOST:PEERPORT "
                    "[--observer]\n"
                    "       halyctl [-h HOST] [-p PORT] cluster remove NODE\n"
                    "       halyctl [-h HOST] [-p PORT] cluster force-quorum --confirm-data-loss\n"
                    "       halyctl [-h HOST] [-p PORT] node drain\n"
                    "       halyctl [-h HOST] [-p PORT] snapshot\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "7379", *to = NULL;
    int json = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            port = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            return usage();
        }
    }
    int rest = argc - i;
    char **w = argv + i;
    if (rest >= 2 && strcmp(w[0], "cluster") == 0 && strcmp(w[1], "failover") == 0 && rest == 4 &&
        strcmp(w[2], "--to") == 0) {
        to = w[3];
    }
    struct conn c;
    if (rest < 1 || conn_open(&c, host, port) != 0) {
        return rest < 1 ? usage() : 2;
    }
    int rc;
    struct resp_value v;
    if (rest == 2 && strcmp(w[0], "cluster") == 0 && strcmp(w[1], "status") == 0) {
        const char *a[] = {"HALYARD", "STATUS", "JSON"};
        rc = conn_call(&c, json ? 3 : 2, a, &v) != 0 ? 2 : print_reply(&v);
        if (rc != 2) {
            resp_value_free(&v);
        }
    } else if (rest >= 2 && strcmp(w[0], "cluster") == 0 && strcmp(w[1], "failover") == 0 &&
               (rest == 2 || to != NULL)) {
        rc = cmd_failover(&c, to);
    } else if ((rest == 3 || (rest == 4 && strcmp(w[3], "--observer") == 0)) &&
               strcmp(w[0], "cluster") == 0 && strcmp(w[1], "join") == 0) {
        rc = cmd_member(&c, "JOIN", w[2], rest == 4);
    } else if (rest == 3 && strcmp(w[0], "cluster") == 0 && strcmp(w[1], "remove") == 0) {
        rc = cmd_member(&c, "REMOVE", w[2], 0);
    } else if (rest == 3 && strcmp(w[0], "cluster") == 0 && strcmp(w[1], "force-quorum") == 0 &&
               strcmp(w[2], "--confirm-data-loss") == 0) {
        const char *a[] = {"HALYARD", "FORCE-QUORUM", "CONFIRM-DATA-LOSS"};
        rc = conn_call(&c, 3, a, &v) != 0 ? 2 : print_reply(&v);
        if (rc != 2) {
            resp_value_free(&v);
        }
    } else if (rest == 2 && strcmp(w[0], "node") == 0 && strcmp(w[1], "drain") == 0) {
        rc = cmd_drain(&c, host, port);
    } else if (rest == 1 && strcmp(w[0], "snapshot") == 0) {
        const char *a[] = {"HALYARD", "SNAPSHOT"};
        rc = conn_call(&c, 2, a, &v) != 0 ? 2 : print_reply(&v);
        if (rc != 2) {
            resp_value_free(&v);
        }
    } else {
        rc = usage();
    }
    conn_close(&c);
    return rc;
}
