#include "node/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/quorum.h"
#include "node/wan.h"

struct config_def {
    const char *name;
    size_t offset;
    enum config_kind kind;
    const char *def;
    int64_t min, max;
    int runtime;
    const char *values;
};

static const struct config_def config_defs[] = {
#define HY__CONFIG_DEF(name, field, kind, def, min, max, rt, values) \
    {name, offsetof(struct hy_config, field), kind, def, min, max, rt, values},
    HY_CONFIG_LIST(HY__CONFIG_DEF)
#undef HY__CONFIG_DEF
};

_Static_assert(HY_ARRAY_LEN(config_defs) <= CONFIG_SETTINGS_MAX, "per-setting arrays must fit");

size_t config_count(void)
{
    return HY_ARRAY_LEN(config_defs);
}

const char *config_name(size_t i)
{
    HY_ASSERT(i < config_count());
    return config_defs[i].name;
}

static const struct config_def *config_find(const char *name)
{
    if (strcasecmp(name, "lua-time-limit") == 0) {
        name = "busy-reply-threshold"; /* Redis 7.0's old name for it */
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(config_defs); i++) {
        if (strcasecmp(config_defs[i].name, name) == 0) {
            return &config_defs[i];
        }
    }
    return NULL;
}

int config_is_secret(size_t i)
{
    HY_ASSERT(i < config_count());
    const char *name = config_defs[i].name;
    return strcmp(name, "cluster-secret") == 0 || strcmp(name, "requirepass") == 0 ||
           strcmp(name, "tls-key-file-pass") == 0 || strcmp(name, "tls-client-key-file-pass") == 0;
}

int config_index(const char *name)
{
    const struct config_def *d = config_find(name);
    return d == NULL ? -1 : (int)(d - config_defs);
}

int config_parse_memory(const char *s, int64_t *out)
{
    size_t n = strlen(s), digits = 0;
    while (digits < n && isdigit((unsigned char)s[digits])) {
        digits++;
    }
    if (digits == 0) {
        return 0;
    }
    int64_t v;
    if (!hy_parse_i64((const uint8_t *)s, digits, &v)) {
        return 0;
    }
    static const struct {
        const char *unit;
        int64_t mul;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"k", 1000},
                 {"kb", 1024},
                 {"m", 1000 * 1000},
                 {"mb", 1024 * 1024},
                 {"g", 1000 * 1000 * 1000},
                 {"gb", 1024 * 1024 * 1024}};
    for (size_t i = 0; i < HY_ARRAY_LEN(units); i++) {
        if (strcasecmp(s + digits, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mul) {
                return 0;
            }
            *out = v * units[i].mul;
            return 1;
        }
    }
    return 0;
}

/* Redis's letters and NOTIFY_* bits, in the order its canonical form lists them. */
static const struct {
    char letter;
    unsigned bit;
} notify_letters[] = {
    {'g', 1u << 2},  {'$', 1u << 3}, {'l', 1u << 4}, {'s', 1u << 5},  {'h', 1u << 6},
    {'z', 1u << 7},  {'x', 1u << 8}, {'e', 1u << 9}, {'t', 1u << 10}, {'d', 1u << 13},
    {'n', 1u << 14}, {'K', 1u << 0}, {'E', 1u << 1}, {'m', 1u << 11},
};
#define NOTIFY_ALL (4u | 8u | 16u | 32u | 64u | 128u | 256u | 512u | 1024u | 8192u)

int config_notify_parse(const char *text, unsigned *flags_out)
{
    unsigned flags = 0;
    for (const char *p = text; *p != '\0'; p++) {
        unsigned bit = 0;
        for (size_t i = 0; i < HY_ARRAY_LEN(notify_letters) && bit == 0; i++) {
            bit = notify_letters[i].letter == *p ? notify_letters[i].bit : 0;
        }
        if (*p == 'A') {
            bit = NOTIFY_ALL;
        }
        if (bit == 0) {
            return 0;
        }
        flags |= bit;
    }
    *flags_out = flags;
    return 1;
}

void config_notify_format(unsigned flags, char *out, size_t cap)
{
    size_t n = 0;
    HY_ASSERT(cap > HY_ARRAY_LEN(notify_letters) + 1);
    if ((flags & NOTIFY_ALL) == NOTIFY_ALL) {
        out[n++] = 'A';
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(notify_letters); i++) {
        int in_all = (notify_letters[i].bit & NOTIFY_ALL) != 0;
        if ((flags & notify_letters[i].bit) && !(in_all && (flags & NOTIFY_ALL) == NOTIFY_ALL)) {
            out[n++] = notify_letters[i].letter;
        }
    }
    out[n] = '\0';
}

/* Index of `value` in the '|'-separated list, or -1. */
static int config_enum_index(const char *values, const char *value)
{
    size_t vlen = strlen(value);
    int index = 0;
    for (const char *p = values;; index++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncasecmp(p, value, len) == 0) {
            return index;
        }
        if (bar == NULL) {
            return -1;
        }
        p = bar + 1;
    }
}

int config_domain_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len > NODE_DOMAIN_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] <= ' ' || name[i] > '~') {
            return 0;
        }
    }
    return 1;
}

int config_region_priority_ok(const char *list)
{
    const char *names[NODE_REGION_PRIORITY_MAX];
    size_t lens[NODE_REGION_PRIORITY_MAX], count = 0;
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (count == NODE_REGION_PRIORITY_MAX || !wan_name_ok((const uint8_t *)p, len)) {
            return 0;
        }
        for (size_t i = 0; i < count; i++) {
            if (lens[i] == len && memcmp(names[i], p, len) == 0) {
                return 0;
            }
        }
        names[count] = p;
        lens[count++] = len;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
        if (*p == '\0') {
            return 0; /* a trailing comma */
        }
    }
    return 1;
}

static int config_set_number(const struct config_def *d, void *field, const char *value, char *err)
{
    int64_t v;
    int ok = d->kind == CONFIG_MEMORY ? config_parse_memory(value, &v)
                                      : hy_parse_i64((const uint8_t *)value, strlen(value), &v);
    if (!ok) {
        snprintf(err, 160, "argument %s",
                 d->kind == CONFIG_MEMORY ? "must be a memory value"
                                          : "couldn't be parsed into an integer");
        return HY_EINVAL;
    }
    if (v < d->min || v > d->max) {
        snprintf(err, 160, "argument must be between %lld and %lld inclusive", (long long)d->min,
                 (long long)d->max);
        return HY_EINVAL;
    }
    *(int64_t *)field = v;
    return HY_OK;
}

int config_set(struct hy_config *cfg, const char *name, const char *value, int runtime, char *err)
{
    const struct config_def *d = config_find(name);
    if (d == NULL) {
        snprintf(err, 160, "unknown setting '%s'", name);
        return HY_ENOTFOUND;
    }
    if (runtime && !d->runtime) {
        snprintf(err, 160, "can't set immutable config");
        return HY_EINVAL;
    }
    void *field = (char *)cfg + d->offset;
    switch (d->kind) {
    case CONFIG_INT:
    case CONFIG_MEMORY: return config_set_number(d, field, value, err);
    case CONFIG_ENUM: {
        int index = config_enum_index(d->values, value);
        if (index < 0) {
            snprintf(err, 160, "argument(s) must be one of the following: %s", d->values);
            return HY_EINVAL;
        }
        *(int64_t *)field = index;
        return HY_OK;
    }
    case CONFIG_STRING: {
        char **s = field;
        char canon[32];
        if (strcmp(d->name, "notify-keyspace-events") == 0) {
            unsigned flags;
            if (!config_notify_parse(value, &flags)) {
                snprintf(err, 160, "Invalid event class character. Use 'Ag$lshzxeKEtmd'.");
                return HY_EINVAL;
            }
            config_notify_format(flags, canon, sizeof(canon));
            value = canon;
        }
        if ((strcmp(d->name, "zone") == 0 || strcmp(d->name, "rack") == 0) &&
            !config_domain_name_ok(value)) {
            snprintf(err, 160, "%s: at most %d printable characters, no spaces", d->name,
                     NODE_DOMAIN_NAME_MAX);
            return HY_EINVAL;
        }
        if (strcmp(d->name, "region-failover-priority") == 0 && !config_region_priority_ok(value)) {
            snprintf(err, 160,
                     "region-failover-priority: up to %d cluster names (1 to 64 of A-Z a-z 0-9 _ "
                     "- .), comma-separated, none twice",
                     NODE_REGION_PRIORITY_MAX);
            return HY_EINVAL;
        }
        if (strcmp(d->name, "wan-passive-keys") == 0 && strlen(value) > WAN_PATTERN_MAX) {
            snprintf(err, 160, "wan-passive-keys: a glob of at most %d bytes", WAN_PATTERN_MAX);
            return HY_EINVAL;
        }
        if (strcmp(d->name, "quorum-rules") == 0) {
            struct quorum_rules *rules = hy_xmalloc(sizeof(*rules));
            int ok = quorum_rules_parse(value, rules, err, 160);
            hy_free(rules);
            if (!ok) {
                return HY_EINVAL;
            }
        }
        hy_free(*s);
        *s = hy_xstrdup(value);
        return HY_OK;
    }
    }
    HY_UNREACHABLE();
}

void config_get(const struct hy_config *cfg, size_t i, char *out, size_t cap)
{
    HY_ASSERT(i < config_count());
    const struct config_def *d = &config_defs[i];
    const void *field = (const char *)cfg + d->offset;
    switch (d->kind) {
    case CONFIG_INT:
    case CONFIG_MEMORY: snprintf(out, cap, "%lld", (long long)*(const int64_t *)field); return;
    case CONFIG_STRING: snprintf(out, cap, "%s", *(char *const *)field); return;
    case CONFIG_ENUM: {
        int64_t index = *(const int64_t *)field;
        const char *p = d->values;
        for (int64_t k = 0; k < index; k++) {
            p = strchr(p, '|') + 1;
        }
        const char *bar = strchr(p, '|');
        int len = bar ? (int)(bar - p) : (int)strlen(p);
        snprintf(out, cap, "%.*s", len, p);
        return;
    }
    }
}

void config_init(struct hy_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    char err[160];
    for (size_t i = 0; i < HY_ARRAY_LEN(config_defs); i++) {
        int rc = config_set(cfg, config_defs[i].name, config_defs[i].def, 0, err);
        HY_ASSERT(rc == HY_OK);
    }
}

void config_free(struct hy_config *cfg)
{
    for (size_t i = 0; i < HY_ARRAY_LEN(config_defs); i++) {
        if (config_defs[i].kind == CONFIG_STRING) {
            char **s = (char **)((char *)cfg + config_defs[i].offset);
            hy_free(*s);
            *s = NULL;
        }
    }
}

int config_check(const struct hy_config *cfg, char *err, size_t cap, int *blame_out)
{
    *blame_out = -1;
    /* Election timeouts are drawn from [election-timeout-ms / 2, election-timeout-ms]: a
     * follower that can wait only half of it must hear a heartbeat sooner, or it starts an
     * election against a healthy leader, over and over. */
    if (cfg->heartbeat_ms * 2 >= cfg->election_timeout_ms) {
        snprintf(err, cap,
                 "heartbeat-ms (%lld) must be below half of election-timeout-ms (%lld), or "
                 "followers start elections between two heartbeats",
                 (long long)cfg->heartbeat_ms, (long long)cfg->election_timeout_ms);
        *blame_out = config_index("heartbeat-ms");
        return HY_ECONFIG;
    }
    if (cfg->gossip_probe_timeout_ms >= cfg->gossip_probe_interval_ms) {
        snprintf(err, cap,
                 "gossip-probe-timeout-ms (%lld) must be below gossip-probe-interval-ms (%lld): "
                 "the indirect probes run in what is left of the period",
                 (long long)cfg->gossip_probe_timeout_ms, (long long)cfg->gossip_probe_interval_ms);
        *blame_out = config_index("gossip-probe-timeout-ms");
        return HY_ECONFIG;
    }
    if (cfg->port == 0 && cfg->tls_port == 0) {
        snprintf(err, cap,
                 "port 0 turns the plain client port off: set tls-port, or clients "
                 "cannot connect at all");
        *blame_out = config_index("port");
        return HY_ECONFIG;
    }
    if (cfg->tls_http && (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0')) {
        snprintf(err, cap, "tls-http yes needs tls-cert-file and tls-key-file");
        *blame_out = config_index("tls-http");
        return HY_ECONFIG;
    }
    if (cfg->tls_cluster &&
        (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0' ||
         (cfg->tls_ca_cert_file[0] == '\0' && cfg->tls_ca_cert_dir[0] == '\0'))) {
        snprintf(err, cap,
                 "tls-cluster yes needs tls-cert-file, tls-key-file and tls-ca-cert-file (or "
                 "tls-ca-cert-dir): members prove themselves to each other with certificates");
        *blame_out = config_index("tls-cluster");
        return HY_ECONFIG;
    }
    if (cfg->peer_port == cfg->port) {
        snprintf(err, cap,
                 "peer-port (%lld) must differ from port: peers and clients speak "
                 "different protocols",
                 (long long)cfg->peer_port);
        *blame_out = config_index("peer-port");
        return HY_ECONFIG;
    }
    if (cfg->tls_port > 0 && (cfg->tls_port == cfg->port || cfg->tls_port == cfg->peer_port ||
                              cfg->tls_port == cfg->http_port)) {
        snprintf(err, cap, "tls-port (%lld) must differ from port, peer-port and http-port",
                 (long long)cfg->tls_port);
        *blame_out = config_index("tls-port");
        return HY_ECONFIG;
    }
    if (cfg->http_port > 0 && (cfg->http_port == cfg->port || cfg->http_port == cfg->peer_port ||
                               cfg->http_port == cfg->tls_port)) {
        snprintf(err, cap, "http-port (%lld) must differ from port, peer-port and tls-port",
                 (long long)cfg->http_port);
        *blame_out = config_index("http-port");
        return HY_ECONFIG;
    }
    if (cfg->join[0] != '\0' && cfg->bootstrap[0] != '\0') {
        snprintf(err, cap,
                 "join and bootstrap exclude each other: bootstrap forms a new "
                 "cluster, join enters a running one");
        *blame_out = config_index("join");
        return HY_ECONFIG;
    }
    return HY_OK;
}

void config_derive(struct hy_config *cfg)
{
    if (cfg->http_port < 0) {
        /* From the client port clients use: tls-port when the plain port is off. */
        int64_t base = cfg->port > 0 ? cfg->port : cfg->tls_port;
        cfg->http_port = base + 1000 <= 65535 ? base + 1000 : 0;
    }
}
