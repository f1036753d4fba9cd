#include "node/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/strutil.h"

raft_id node_member_id(const char *name)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = name; *p; p++) {
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    }
    return h == RAFT_NONE ? 1 : h;
}

/* Parses one "name@host:port" of len bytes. */
static int member_parse(const char *s, size_t len, struct node_member *m, char *err)
{
    const char *at = memchr(s, '@', len);
    const char *colon = NULL;
    for (const char *p = s + len; p > s; p--) {
        if (p[-1] == ':') {
            colon = p - 1;
            break;
        }
    }
    if (at == NULL || colon == NULL || colon < at || at == s ||
        (size_t)(at - s) > NODE_MEMBER_NAME_MAX || colon == at + 1 ||
        (size_t)(colon - at - 1) > NODE_MEMBER_HOST_MAX) {
        snprintf(err, 160, "bad member '%.*s' (want name@host:peerport)", (int)HY_MIN(len, 80), s);
        return HY_ECONFIG;
    }
    int64_t port;
    if (!hy_parse_i64((const uint8_t *)colon + 1, (size_t)(s + len - colon - 1), &port) ||
        port <= 10000 || port > 65535) {
        snprintf(err, 160,
                 "bad peer port in '%.*s' (10001..65535: the client port is 10000 "
                 "below it)",
                 (int)HY_MIN(len, 80), s);
        return HY_ECONFIG;
    }
    memset(m, 0, sizeof(*m));
    memcpy(m->name, s, (size_t)(at - s));
    memcpy(m->host, at + 1, (size_t)(colon - at - 1));
    m->peer_port = (uint16_t)port;
    m->client_port = (uint16_t)(port - 10000);
    m->id = node_member_id(m->name);
    return HY_OK;
}

int node_members_parse(const char *list, struct node_member *out, size_t cap, size_t *count_out,
                       char *err)
{
    size_t count = 0;
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (count == cap) {
            snprintf(err, 160, "too many members (at most %zu)", cap);
            return HY_ECONFIG;
        }
        if (member_parse(p, len, &out[count], err) != HY_OK) {
            return HY_ECONFIG;
        }
        for (size_t i = 0; i < count; i++) {
            if (out[i].id == out[count].id) {
                snprintf(err, 160, "member '%s' is listed twice", out[count].name);
                return HY_ECONFIG;
            }
        }
        count++;
        p += len + (comma ? 1 : 0);
    }
    *count_out = count;
    return HY_OK;
}

const struct node_member *node_member_find(const struct node_member *members, size_t count,
                                           raft_id id)
{
    for (size_t i = 0; i < count; i++) {
        if (members[i].id == id) {
            return &members[i];
        }
    }
    return NULL;
}
