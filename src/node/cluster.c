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

/* A decimal number in p[0..len) within [lo, hi]; -1 when it is not one. */
static long number_in(const char *p, size_t len, long lo, long hi)
{
    if (len == 0 || len > 5) {
        return -1;
    }
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

/* "A-B" or "A" within [lo, hi] into *a, *b (a <= b); 0 or -1. */
static int range_in(const char *p, size_t len, long lo, long hi, long *a, long *b)
{
    const char *dash = memchr(p, '-', len);
    *a = number_in(p, dash ? (size_t)(dash - p) : len, lo, hi);
    *b = dash ? number_in(dash + 1, len - (size_t)(dash + 1 - p), lo, hi) : *a;
    return *a < 0 || *b < *a ? -1 : 0;
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

/* Adds one "name@host:port" of len bytes to out[*count], refusing a name listed before. */
static int member_add(const char *s, size_t len, struct node_member *out, size_t cap, size_t *count,
                      char *err)
{
    if (*count == cap) {
        snprintf(err, 160, "too many members (at most %zu)", cap);
        return HY_ECONFIG;
    }
    if (member_parse(s, len, &out[*count], err) != HY_OK) {
        return HY_ECONFIG;
    }
    for (size_t i = 0; i < *count; i++) {
        if (out[i].id == out[*count].id) {
            snprintf(err, 160, "member '%s' is listed twice", out[*count].name);
            return HY_ECONFIG;
        }
    }
    (*count)++;
    return HY_OK;
}

/*
 * One bootstrap entry, ranges expanded (issue 14 item 5): "n1-3@10.0.0.1-3:17379" or
 * "n1-3@127.0.0.1:17379-17381" is three members, n1 at the first address (or port), n2 at the
 * second, n3 at the third. A member needs a name, so a range of addresses or ports comes with
 * a range of names of the same length: the name's trailing number range. An entry without an
 * address range is one member, whatever its name (a name may hold "-").
 */
static int entry_parse(const char *p, size_t len, struct node_member *out, size_t cap,
                       size_t *count, char *err)
{
    const char *at = memchr(p, '@', len);
    const char *colon = len ? memrchr(p, ':', len) : NULL;
    if (at == NULL || colon == NULL || colon < at) {
        return member_add(p, len, out, cap, count, err); /* it words the error */
    }
    long pa, pb, ha = -1, hb = -1;
    const char *host = at + 1;
    size_t host_len = (size_t)(colon - host);
    const char *dot = memrchr(host, '.', host_len);
    const char *hdash = dot ? memchr(dot, '-', host_len - (size_t)(dot - host)) : NULL;
    /* Only a last part of digits and "-" is a range: "a.my-host" is a name. */
    for (const char *q = dot ? dot + 1 : NULL; hdash != NULL && q < colon; q++) {
        if (*q != '-' && (*q < '0' || *q > '9')) {
            hdash = NULL;
        }
    }
    int port_range = memchr(colon + 1, '-', len - (size_t)(colon + 1 - p)) != NULL;
    if (!port_range && hdash == NULL) {
        return member_add(p, len, out, cap, count, err);
    }
    if (port_range && hdash != NULL) {
        snprintf(err, 160, "'%.*s': a range of addresses or of ports, not both",
                 (int)HY_MIN(len, 100), p);
        return HY_ECONFIG;
    }
    if ((port_range &&
         range_in(colon + 1, len - (size_t)(colon + 1 - p), 1, 65535, &pa, &pb) != 0) ||
        (hdash != NULL &&
         range_in(dot + 1, host_len - (size_t)(dot + 1 - host), 0, 255, &ha, &hb) != 0)) {
        snprintf(err, 160, "'%.*s': a range is A-B with A <= B", (int)HY_MIN(len, 100), p);
        return HY_ECONFIG;
    }
    /* The name's trailing range: PREFIX A-B, as many names as addresses. */
    const char *name_dash = memrchr(p, '-', (size_t)(at - p));
    const char *num = name_dash;
    while (num != NULL && num > p && num[-1] >= '0' && num[-1] <= '9') {
        num--;
    }
    long na, nb;
    long want = port_range ? pb - pa : hb - ha;
    if (name_dash == NULL || num == name_dash ||
        range_in(num, (size_t)(at - num), 0, 99999, &na, &nb) != 0 || nb - na != want) {
        snprintf(err, 160,
                 "'%.*s': a range of addresses needs a range of names of the same length "
                 "(n1-3@10.0.0.1-3:17379)",
                 (int)HY_MIN(len, 100), p);
        return HY_ECONFIG;
    }
    for (long i = 0; i <= want; i++) {
        char one[NODE_MEMBER_NAME_MAX + NODE_MEMBER_HOST_MAX + 32];
        int w;
        if (port_range) {
            w = snprintf(one, sizeof(one), "%.*s%ld@%.*s:%ld", (int)(num - p), p, na + i,
                         (int)host_len, host, pa + i);
        } else {
            w = snprintf(one, sizeof(one), "%.*s%ld@%.*s%ld:%.*s", (int)(num - p), p, na + i,
                         (int)(dot + 1 - host), host, ha + i, (int)(len - (size_t)(colon + 1 - p)),
                         colon + 1);
        }
        if (w <= 0 || (size_t)w >= sizeof(one)) {
            snprintf(err, 160, "'%.*s': a member is too long", (int)HY_MIN(len, 100), p);
            return HY_ECONFIG;
        }
        if (member_add(one, (size_t)w, out, cap, count, err) != HY_OK) {
            return HY_ECONFIG;
        }
    }
    return HY_OK;
}

int node_members_parse(const char *list, struct node_member *out, size_t cap, size_t *count_out,
                       char *err)
{
    size_t count = 0;
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (entry_parse(p, len, out, cap, &count, err) != HY_OK) {
            return HY_ECONFIG;
        }
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

/* ---- --join targets -------------------------------------------------------------------------- */

static int target_add(struct node_join_target *out, size_t cap, size_t *n, const char *host,
                      size_t host_len, long port, char *err)
{
    if (*n == cap) {
        snprintf(err, 160, "more than %zu join targets", cap);
        return -1;
    }
    if (host_len == 0 || host_len > NODE_MEMBER_HOST_MAX) {
        snprintf(err, 160, "a join target needs a host (at most %d bytes)", NODE_MEMBER_HOST_MAX);
        return -1;
    }
    memcpy(out[*n].host, host, host_len);
    out[*n].host[host_len] = '\0';
    out[*n].peer_port = (uint16_t)port;
    (*n)++;
    return 0;
}

int node_join_targets_parse(const char *list, struct node_join_target *out, size_t cap,
                            size_t *count_out, char *err)
{
    size_t n = 0;
    const char *p = list;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = len ? memrchr(p, ':', len) : NULL;
        long pa, pb;
        if (colon == NULL ||
            range_in(colon + 1, len - (size_t)(colon + 1 - p), 1, 65535, &pa, &pb) != 0) {
            snprintf(err, 160, "'%.*s' is not HOST:PEERPORT, HOST:PORT1-PORT2 or A.B.C.D1-D2:PORT",
                     (int)HY_MIN(len, 100), p);
            return -1;
        }
        size_t host_len = (size_t)(colon - p);
        /* An IPv4 address whose last part is a range: 10.0.0.1-3. */
        const char *dot = memrchr(p, '.', host_len);
        const char *dash = dot ? memchr(dot, '-', host_len - (size_t)(dot - p)) : NULL;
        long ha = -1, hb = -1;
        if (dash != NULL &&
            range_in(dot + 1, host_len - (size_t)(dot + 1 - p), 0, 255, &ha, &hb) != 0) {
            snprintf(err, 160, "'%.*s': the last part of the address is not a range A-B",
                     (int)HY_MIN(len, 100), p);
            return -1;
        }
        for (long h = ha; h <= hb; h++) {
            char host[NODE_MEMBER_HOST_MAX + 1];
            size_t hl = host_len;
            if (dash != NULL) {
                int w = snprintf(host, sizeof(host), "%.*s%ld", (int)(dot + 1 - p), p, h);
                hl = w > 0 ? (size_t)w : 0;
            } else {
                snprintf(host, sizeof(host), "%.*s", (int)HY_MIN(host_len, NODE_MEMBER_HOST_MAX),
                         p);
            }
            for (long port = pa; port <= pb; port++) {
                if (target_add(out, cap, &n, host, hl, port, err) != 0) {
                    return -1;
                }
            }
        }
        p = end ? end + 1 : p + len;
    }
    if (n == 0) {
        snprintf(err, 160, "no join target");
        return -1;
    }
    *count_out = n;
    return 0;
}
