/*
 * config_load.c - halyard_config_load: the client's settings from a YAML file (docs/client.md
 * "YAML"), with libyaml's document API. Every key is checked: an unknown key, a value of the
 * wrong kind or out of range is an error naming the line, so a typo never passes silently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "halyard.h"

/* What a loaded config owns: every string and array it points to, freed together. */
struct loaded {
    void **ptrs;
    size_t n;
};

static void *own(halyard_config *cfg, void *p)
{
    struct loaded *l = cfg->loaded_;
    void **grown = realloc(l->ptrs, (l->n + 1) * sizeof(*grown));
    if (grown == NULL || p == NULL) {
        free(p);
        return NULL;
    }
    l->ptrs = grown;
    l->ptrs[l->n++] = p;
    return p;
}

HALYARD_API void halyard_config_release(halyard_config *cfg)
{
    struct loaded *l = cfg->loaded_;
    if (l == NULL) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        free(l->ptrs[i]);
    }
    free(l->ptrs);
    free(l);
    cfg->loaded_ = NULL;
}

struct ctx {
    yaml_document_t *doc;
    halyard_config *cfg;
    char *err;
    size_t errlen;
    halyard_cluster *building; /* the failover cluster being read */
};

static int fail(struct ctx *x, const yaml_node_t *n, const char *what, const char *key)
{
    snprintf(x->err, x->errlen, "line %lu: %s%s%s", (unsigned long)n->start_mark.line + 1, what,
             key ? ": " : "", key ? key : "");
    return -1;
}

static const char *scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_u32(struct ctx *x, const yaml_node_t *n, const char *key, uint32_t *out)
{
    const char *s = scalar(n);
    char *end;
    errno = 0;
    unsigned long long v = s ? strtoull(s, &end, 10) : 0;
    if (s == NULL || s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || v > UINT32_MAX) {
        return fail(x, n, "expected a whole number", key);
    }
    *out = (uint32_t)v;
    return 0;
}

static int get_double(struct ctx *x, const yaml_node_t *n, const char *key, double *out)
{
    const char *s = scalar(n);
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (s == NULL || s[0] == '\0' || *end != '\0') {
        return fail(x, n, "expected a number", key);
    }
    *out = v;
    return 0;
}

static int get_bool(struct ctx *x, const yaml_node_t *n, const char *key, int *out)
{
    const char *s = scalar(n);
    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)) {
        *out = 1;
    } else if (s != NULL &&
               (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)) {
        *out = 0;
    } else {
        return fail(x, n, "expected true or false", key);
    }
    return 0;
}

/* One of `names` (its index in *out). */
static int get_choice(struct ctx *x, const yaml_node_t *n, const char *key,
                      const char *const *names, int count, int *out)
{
    const char *s = scalar(n);
    for (int i = 0; s != NULL && i < count; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return fail(x, n,
                count == 3 ? "expected leader, replica or nearest"
                           : "expected round-robin, random, least-outstanding or weighted",
                key);
}

static int get_str(struct ctx *x, const yaml_node_t *n, const char *key, const char **out)
{
    const char *s = scalar(n);
    if (s == NULL) {
        return fail(x, n, "expected a string", key);
    }
    char *copy = own(x->cfg, strdup(s));
    if (copy == NULL) {
        return fail(x, n, "out of memory", key);
    }
    *out = copy;
    return 0;
}

/* A sequence of "host:port" strings. */
static int get_addrs(struct ctx *x, const yaml_node_t *n, const char *key, const char *const **out,
                     size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        return fail(x, n, "expected a list of host:port", key);
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    const char **v = own(x->cfg, calloc(len + 1, sizeof(*v)));
    if (v == NULL) {
        return fail(x, n, "out of memory", key);
    }
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *e = yaml_document_get_node(x->doc, n->data.sequence.items.start[i]);
        if (get_str(x, e, key, &v[i]) != 0) {
            return -1;
        }
    }
    *out = v;
    *count = len;
    return 0;
}

/* A sequence of whole numbers (weights). */
static int get_u32s(struct ctx *x, const yaml_node_t *n, const char *key, const uint32_t **out,
                    size_t *count)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        return fail(x, n, "expected a list of whole numbers", key);
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    uint32_t *v = own(x->cfg, calloc(len + 1, sizeof(*v)));
    if (v == NULL) {
        return fail(x, n, "out of memory", key);
    }
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *e = yaml_document_get_node(x->doc, n->data.sequence.items.start[i]);
        if (get_u32(x, e, key, &v[i]) != 0) {
            return -1;
        }
    }
    *out = v;
    *count = len;
    return 0;
}

typedef int (*section_fn)(struct ctx *x, const char *key, const yaml_node_t *v);

/* Calls fn for every key of the mapping n. */
static int each_key(struct ctx *x, const yaml_node_t *n, const char *what, section_fn fn)
{
    if (n->type != YAML_MAPPING_NODE) {
        return fail(x, n, "expected a mapping", what);
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
        const char *key = scalar(k);
        if (key == NULL) {
            return fail(x, k, "a key must be a string", what);
        }
        if (fn(x, key, v) != 0) {
            return -1;
        }
    }
    return 0;
}

static int retry_key(struct ctx *x, const char *key, const yaml_node_t *v)
{
    halyard_config *c = x->cfg;
    if (strcmp(key, "initial-backoff-ms") == 0) {
        return get_u32(x, v, key, &c->backoff_initial_ms);
    }
    if (strcmp(key, "max-backoff-ms") == 0) {
        return get_u32(x, v, key, &c->backoff_max_ms);
    }
    if (strcmp(key, "multiplier") == 0) {
        return get_double(x, v, key, &c->backoff_multiplier);
    }
    if (strcmp(key, "jitter") == 0) {
        return get_double(x, v, key, &c->backoff_jitter);
    }
    if (strcmp(key, "cluster-connect-timeout-ms") == 0) {
        return get_u32(x, v, key, &c->cluster_connect_timeout_ms);
    }
    return fail(x, v, "unknown key in connection-retry", key);
}

static int tls_key(struct ctx *x, const char *key, const yaml_node_t *v)
{
    halyard_config *c = x->cfg;
    if (strcmp(key, "enabled") == 0) {
        return get_bool(x, v, key, &c->tls);
    }
    if (strcmp(key, "ca-file") == 0) {
        return get_str(x, v, key, &c->tls_ca_file);
    }
    if (strcmp(key, "cert-file") == 0) {
        return get_str(x, v, key, &c->tls_cert_file);
    }
    if (strcmp(key, "key-file") == 0) {
        return get_str(x, v, key, &c->tls_key_file);
    }
    if (strcmp(key, "server-name") == 0) {
        return get_str(x, v, key, &c->tls_server_name);
    }
    if (strcmp(key, "insecure-no-verify") == 0) {
        return get_bool(x, v, key, &c->tls_insecure_no_verify);
    }
    return fail(x, v, "unknown key in tls", key);
}

static int breaker_key(struct ctx *x, const char *key, const yaml_node_t *v)
{
    if (strcmp(key, "failures") == 0) {
        return get_u32(x, v, key, &x->cfg->breaker_failures);
    }
    if (strcmp(key, "cooldown-ms") == 0) {
        return get_u32(x, v, key, &x->cfg->breaker_cooldown_ms);
    }
    return fail(x, v, "unknown key in circuit-breaker", key);
}

static int cluster_key(struct ctx *x, const char *key, const yaml_node_t *v)
{
    if (strcmp(key, "name") == 0) {
        return get_str(x, v, key, &x->building->name);
    }
    if (strcmp(key, "addresses") == 0) {
        return get_addrs(x, v, key, &x->building->addrs, &x->building->n_addrs);
    }
    return fail(x, v, "unknown key in a failover cluster", key);
}

static int failover_key(struct ctx *x, const char *key, const yaml_node_t *v)
{
    halyard_config *c = x->cfg;
    if (strcmp(key, "try-count") == 0) {
        return get_u32(x, v, key, &c->failover_try_count);
    }
    if (strcmp(key, "clusters") != 0) {
        return fail(x, v, "unknown key in failover", key);
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        return fail(x, v, "expected a list of clusters", key);
    }
    size_t len = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    halyard_cluster *cl = own(c, calloc(len + 1, sizeof(*cl)));
    if (cl == NULL) {
        return fail(x, v, "out of memory", key);
    }
    for (size_t i = 0; i < len; i++) {
        x->building = &cl[i];
        const yaml_node_t *e = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
        if (each_key(x, e, "a failover cluster", cluster_key) != 0) {
            return -1;
        }
    }
    c->failover = cl;
    c->n_failover = len;
    return 0;
}

static int top_key(struct ctx *x, const char *key, const yaml_node_t *v)
{
    halyard_config *c = x->cfg;
    static const struct {
        const char *name;
        size_t off;
    } u32s[] = {
        {"connect-timeout-ms", offsetof(halyard_config, connect_timeout_ms)},
        {"request-timeout-ms", offsetof(halyard_config, request_timeout_ms)},
        {"attempt-timeout-ms", offsetof(halyard_config, attempt_timeout_ms)},
        {"topology-refresh-ms", offsetof(halyard_config, topology_refresh_ms)},
        {"session-ttl-ms", offsetof(halyard_config, session_ttl_ms)},
        {"failback-after-ms", offsetof(halyard_config, failback_after_ms)},
        {"events-poll-ms", offsetof(halyard_config, events_poll_ms)},
        {"async-threads", offsetof(halyard_config, async_threads)},
        {"max-outstanding", offsetof(halyard_config, max_outstanding)},
        {"pipeline-max", offsetof(halyard_config, pipeline_max)},
        {"hedge-after-ms", offsetof(halyard_config, hedge_after_ms)},
        {"heartbeat-interval-ms", offsetof(halyard_config, heartbeat_interval_ms)},
        {"heartbeat-timeout-ms", offsetof(halyard_config, heartbeat_timeout_ms)},
        {"max-staleness-ms", offsetof(halyard_config, max_staleness_ms)},
        {"max-inflight-per-member", offsetof(halyard_config, max_inflight_per_member)},
    };
    for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++) {
        if (strcmp(key, u32s[i].name) == 0) {
            return get_u32(x, v, key, (uint32_t *)((char *)c + u32s[i].off));
        }
    }
    if (strcmp(key, "cluster-name") == 0) {
        return get_str(x, v, key, &c->cluster_name);
    }
    if (strcmp(key, "addresses") == 0) {
        return get_addrs(x, v, key, &c->addrs, &c->n_addrs);
    }
    if (strcmp(key, "sessions") == 0) {
        return get_bool(x, v, key, &c->sessions);
    }
    if (strcmp(key, "smart-routing") == 0) {
        return get_bool(x, v, key, &c->smart_routing);
    }
    if (strcmp(key, "server-events") == 0) {
        return get_bool(x, v, key, &c->server_events);
    }
    if (strcmp(key, "hedge-reads") == 0) {
        return get_bool(x, v, key, &c->hedge_reads);
    }
    if (strcmp(key, "read-from") == 0) {
        static const char *const names[] = {"leader", "replica", "nearest"};
        return get_choice(x, v, key, names, 3, &c->read_from);
    }
    if (strcmp(key, "load-balancer") == 0) {
        static const char *const names[] = {"round-robin", "random", "least-outstanding",
                                            "weighted"};
        return get_choice(x, v, key, names, 4, &c->load_balancer);
    }
    if (strcmp(key, "weights") == 0) {
        return get_u32s(x, v, key, &c->weights, &c->n_weights);
    }
    if (strcmp(key, "username") == 0) {
        return get_str(x, v, key, &c->username);
    }
    if (strcmp(key, "password") == 0) {
        return get_str(x, v, key, &c->password);
    }
    if (strcmp(key, "connection-retry") == 0) {
        return each_key(x, v, key, retry_key);
    }
    if (strcmp(key, "circuit-breaker") == 0) {
        return each_key(x, v, key, breaker_key);
    }
    if (strcmp(key, "tls") == 0) {
        return each_key(x, v, key, tls_key);
    }
    if (strcmp(key, "failover") == 0) {
        return each_key(x, v, key, failover_key);
    }
    return fail(x, v, "unknown key", key);
}

HALYARD_API int halyard_config_load(const char *path, halyard_config *cfg, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    halyard_config_init(cfg);
    cfg->loaded_ = calloc(1, sizeof(struct loaded));
    FILE *f = fopen(path, "rb");
    if (cfg->loaded_ == NULL || f == NULL) {
        snprintf(err, errlen, "%s: %s", path, f == NULL ? strerror(errno) : "out of memory");
        if (f != NULL) {
            fclose(f);
        }
        halyard_config_release(cfg);
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s: line %lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "not YAML");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        struct ctx x = {&doc, cfg, err, errlen, NULL};
        char inner[400];
        x.err = inner;
        x.errlen = sizeof(inner);
        if (root == NULL) {
            snprintf(err, errlen, "%s: empty", path);
        } else if (each_key(&x, root, "the file", top_key) != 0) {
            snprintf(err, errlen, "%s: %s", path, inner);
        } else {
            rc = 0;
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc != 0) {
        halyard_config_release(cfg);
        return -1;
    }
    return 0;
}
