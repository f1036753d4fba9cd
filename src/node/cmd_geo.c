/*
 * cmd_geo.c - GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS[_RO],
 * GEORADIUSBYMEMBER[_RO], on sorted sets (store_geo.c has the geohash and the distances).
 *
 * GEOADD is a ZADD of the points' scores. The searches parse here, with Redis 7.0's errors;
 * GEOSEARCH and the _RO forms read the replica, while GEORADIUS[BYMEMBER] (a write in the
 * table, for its STORE option) and GEOSEARCHSTORE are log entries (STORE_OP_GEOSEARCH) that
 * search at apply, as SORT does, so they see the writes before them on every replica.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"
#include "common/strutil.h"
#include "node/node_internal.h"

/* "m", "km", "ft", "mi": metres per unit; 0 = replied. */
static double unit_m(struct cmd_ctx *x, size_t i)
{
    static const struct {
        const char *name;
        double m;
    } units[] = {{"m", 1}, {"km", 1000}, {"ft", 0.3048}, {"mi", 1609.34}};
    for (size_t k = 0; k < HY_ARRAY_LEN(units); k++) {
        if (node_arg_is(&x->argv[i], units[k].name)) {
            return units[k].m;
        }
    }
    resp_write_error(&x->w, "ERR unsupported unit provided. please use M, KM, FT, MI");
    return 0;
}

static int arg_double(struct cmd_ctx *x, size_t i, double *out, const char *err)
{
    long double v;
    if (!hy_parse_double(x->argv[i].ptr, x->argv[i].len, 0, &v)) {
        resp_write_error(&x->w, err);
        return 0;
    }
    *out = (double)v;
    return 1;
}

static int arg_lonlat(struct cmd_ctx *x, size_t i, double *lon, double *lat)
{
    if (!arg_double(x, i, lon, "ERR value is not a valid float") ||
        !arg_double(x, i + 1, lat, "ERR value is not a valid float")) {
        return 0;
    }
    if (!store_geo_valid(*lon, *lat)) {
        resp_write_errorf(&x->w, "ERR invalid longitude,latitude pair %f,%f", *lon, *lat);
        return 0;
    }
    return 1;
}

/* GEOADD key [NX|XX] [CH] lon lat member ...: proposed as ZADD with the points' scores. */
void cmd_geoadd(struct cmd_ctx *x)
{
    uint32_t flags = 0;
    size_t i = 2;
    for (; i < x->argc; i++) {
        if (node_arg_is(&x->argv[i], "NX")) {
            flags |= STORE_F_NX;
        } else if (node_arg_is(&x->argv[i], "XX")) {
            flags |= STORE_F_XX;
        } else if (node_arg_is(&x->argv[i], "CH")) {
            flags |= STORE_F_CH;
        } else {
            break;
        }
    }
    size_t n = (x->argc - i) / 3;
    if ((x->argc - i) % 3 != 0 || n == 0 || ((flags & STORE_F_NX) && (flags & STORE_F_XX))) {
        node_reply_syntax_error(x);
        return;
    }
    struct store_arg *args = hy_xmalloc((1 + 2 * n) * sizeof(*args));
    char(*scores)[24] = hy_xmalloc(n * sizeof(*scores));
    args[0] = (struct store_arg){x->argv[1].ptr, x->argv[1].len};
    for (size_t k = 0; k < n; k++, i += 3) {
        double lon, lat;
        uint64_t bits;
        if (!arg_lonlat(x, i, &lon, &lat) || !store_geo_encode(lon, lat, &bits)) {
            hy_free(args);
            hy_free(scores);
            return;
        }
        int len = snprintf(scores[k], sizeof(scores[k]), "%llu", (unsigned long long)bits);
        args[1 + 2 * k] = (struct store_arg){(const uint8_t *)scores[k], (size_t)len};
        args[2 + 2 * k] = (struct store_arg){x->argv[i + 2].ptr, x->argv[i + 2].len};
    }
    struct store_entry e = {.op = STORE_OP_ZADD,
                            .flags = flags,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = (uint32_t)(1 + 2 * n),
                            .argv = args};
    node_propose(x, &e);
    hy_free(args);
    hy_free(scores);
}

/* The score of member argv[i] in zset o as a point; 0 when absent. */
static int member_point(const struct store_obj *o, const struct resp_arg *m, double *lon,
                        double *lat, double *score_out)
{
    double score;
    if (o == NULL || !store_zset_score(o, m->ptr, m->len, &score)) {
        return 0;
    }
    store_geo_decode((uint64_t)score, lon, lat);
    if (score_out != NULL) {
        *score_out = score;
    }
    return 1;
}

void cmd_geodist(struct cmd_ctx *x)
{
    double unit = 1;
    if (x->argc > 5) {
        node_reply_syntax_error(x);
        return;
    }
    if (x->argc == 5 && (unit = unit_m(x, 4)) == 0) {
        return;
    }
    const struct store_obj *o;
    if (!node_lookup_typed(x, 1, STORE_ZSET, &o)) {
        return;
    }
    double lon1, lat1, lon2, lat2;
    if (!member_point(o, &x->argv[2], &lon1, &lat1, NULL) ||
        !member_point(o, &x->argv[3], &lon2, &lat2, NULL)) {
        resp_write_null(&x->w);
        return;
    }
    store_geo_write_distance(&x->w, store_geo_distance(lon1, lat1, lon2, lat2) / unit);
}

static void geo_members(struct cmd_ctx *x, int hash)
{
    const struct store_obj *o;
    if (!node_lookup_typed(x, 1, STORE_ZSET, &o)) {
        return;
    }
    resp_write_array(&x->w, x->argc - 2);
    for (size_t i = 2; i < x->argc; i++) {
        double lon, lat, score;
        if (!member_point(o, &x->argv[i], &lon, &lat, &score)) {
            if (hash) {
                resp_write_null(&x->w);
            } else {
                resp_write_null_array(&x->w);
            }
        } else if (hash) {
            char h[12];
            store_geo_hash_string((uint64_t)score, h);
            resp_write_bulk(&x->w, h, 11);
        } else {
            store_geo_write_point(&x->w, lon, lat);
        }
    }
}

void cmd_geohash(struct cmd_ctx *x)
{
    geo_members(x, 1);
}

void cmd_geopos(struct cmd_ctx *x)
{
    geo_members(x, 0);
}

/* Which command is parsing: the options each accepts differ. */
enum geo_kind { GEO_RADIUS, GEO_RADIUS_RO, GEO_BYMEMBER, GEO_BYMEMBER_RO, GEO_SEARCH, GEO_STORE };

/* The shape after GEORADIUS's centre: radius unit; 0 = replied. */
static int parse_radius(struct cmd_ctx *x, size_t i, struct store_geo_query *q)
{
    double r;
    if (!arg_double(x, i, &r, "ERR need numeric radius")) {
        return 0;
    }
    if (r < 0) {
        resp_write_error(&x->w, "ERR radius cannot be negative");
        return 0;
    }
    if ((q->unit_m = unit_m(x, i + 1)) == 0) {
        return 0;
    }
    q->radius_m = r * q->unit_m;
    return 1;
}

static int parse_box(struct cmd_ctx *x, size_t i, struct store_geo_query *q)
{
    double wd, ht;
    if (!arg_double(x, i, &wd, "ERR need numeric width") ||
        !arg_double(x, i + 1, &ht, "ERR need numeric height")) {
        return 0;
    }
    if (wd < 0 || ht < 0) {
        resp_write_error(&x->w, "ERR height or width cannot be negative");
        return 0;
    }
    if ((q->unit_m = unit_m(x, i + 2)) == 0) {
        return 0;
    }
    q->by_box = 1;
    q->width_m = wd * q->unit_m;
    q->height_m = ht * q->unit_m;
    return 1;
}

struct geo_parse {
    struct store_geo_query q;
    const struct resp_arg *store_key;
    int from, by; /* GEOSEARCH: FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX seen */
};

/* One option at argv[*i]; 0 = replied (an error). */
static int parse_option(struct cmd_ctx *x, enum geo_kind k, size_t *i, struct geo_parse *p)
{
    const struct resp_arg *a = &x->argv[*i];
    size_t left = x->argc - *i - 1;
    int search = k == GEO_SEARCH || k == GEO_STORE;
    int can_store = k == GEO_RADIUS || k == GEO_BYMEMBER;
    if (node_arg_is(a, "WITHDIST") && k != GEO_STORE) {
        p->q.withdist = 1;
    } else if (node_arg_is(a, "WITHHASH") && k != GEO_STORE) {
        p->q.withhash = 1;
    } else if (node_arg_is(a, "WITHCOORD") && k != GEO_STORE) {
        p->q.withcoord = 1;
    } else if (node_arg_is(a, "ANY")) {
        p->q.any = 1;
    } else if (node_arg_is(a, "ASC")) {
        p->q.sort = 1;
    } else if (node_arg_is(a, "DESC")) {
        p->q.sort = 2;
    } else if (node_arg_is(a, "COUNT") && left >= 1) {
        int64_t c;
        if (!node_arg_i64(x, ++*i, &c)) {
            return 0;
        }
        if (c <= 0) {
            resp_write_error(&x->w, "ERR COUNT must be > 0");
            return 0;
        }
        p->q.count = (uint64_t)c;
    } else if ((node_arg_is(a, "STORE") || node_arg_is(a, "STOREDIST")) && can_store && left >= 1) {
        p->q.store = node_arg_is(a, "STORE") ? 1 : 2;
        p->store_key = &x->argv[++*i];
    } else if (node_arg_is(a, "STOREDIST") && k == GEO_STORE) {
        p->q.store = 2;
    } else if ((node_arg_is(a, "FROMMEMBER") || node_arg_is(a, "FROMLONLAT")) && p->from) {
        node_reply_syntax_error(x); /* Redis: a second FROM... is a syntax error */
        return 0;
    } else if ((node_arg_is(a, "BYRADIUS") || node_arg_is(a, "BYBOX")) && p->by) {
        node_reply_syntax_error(x);
        return 0;
    } else if (node_arg_is(a, "FROMMEMBER") && search && left >= 1) {
        p->from++;
        p->q.member = x->argv[*i + 1].ptr;
        p->q.mlen = x->argv[*i + 1].len;
        ++*i;
    } else if (node_arg_is(a, "FROMLONLAT") && search && left >= 2) {
        p->from++;
        if (!arg_lonlat(x, *i + 1, &p->q.lon, &p->q.lat)) {
            return 0;
        }
        *i += 2;
    } else if (node_arg_is(a, "BYRADIUS") && search && left >= 2) {
        p->by++;
        if (!parse_radius(x, *i + 1, &p->q)) {
            return 0;
        }
        *i += 2;
    } else if (node_arg_is(a, "BYBOX") && search && left >= 3) {
        p->by++;
        if (!parse_box(x, *i + 1, &p->q)) {
            return 0;
        }
        *i += 3;
    } else {
        node_reply_syntax_error(x);
        return 0;
    }
    return 1;
}

/* The whole command; 0 = replied. */
static int geo_parse(struct cmd_ctx *x, enum geo_kind k, struct geo_parse *p)
{
    memset(p, 0, sizeof(*p));
    size_t i;
    if (k == GEO_RADIUS || k == GEO_RADIUS_RO) {
        if (!arg_lonlat(x, 2, &p->q.lon, &p->q.lat) || !parse_radius(x, 4, &p->q)) {
            return 0;
        }
        i = 6;
    } else if (k == GEO_BYMEMBER || k == GEO_BYMEMBER_RO) {
        p->q.member = x->argv[2].ptr;
        p->q.mlen = x->argv[2].len;
        if (!parse_radius(x, 3, &p->q)) {
            return 0;
        }
        i = 5;
    } else {
        i = k == GEO_STORE ? 3 : 2;
        p->q.store = k == GEO_STORE ? 1 : 0;
    }
    for (; i < x->argc; i++) {
        if (!parse_option(x, k, &i, p)) {
            return 0;
        }
    }
    if ((k == GEO_SEARCH || k == GEO_STORE) && p->from != 1) {
        resp_write_error(&x->w, "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for "
                                "GEOSEARCH");
        return 0;
    }
    if ((k == GEO_SEARCH || k == GEO_STORE) && p->by != 1) {
        resp_write_error(&x->w,
                         "ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH");
        return 0;
    }
    if (p->store_key != NULL && (p->q.withdist || p->q.withhash || p->q.withcoord)) {
        resp_write_error(&x->w, "ERR STORE option in GEORADIUS is not compatible with WITHDIST, "
                                "WITHHASH and WITHCOORD options");
        return 0;
    }
    if (p->q.any && p->q.count == 0) {
        resp_write_error(&x->w, "ERR the ANY argument requires COUNT argument");
        return 0;
    }
    return 1;
}

/* The read forms: searched on this replica, answered now. */
static void geo_read(struct cmd_ctx *x, enum geo_kind k)
{
    struct geo_parse p;
    if (!geo_parse(x, k, &p)) {
        return;
    }
    const struct store_obj *o;
    if (!node_lookup_typed(x, 1, STORE_ZSET, &o)) {
        return;
    }
    struct store_geo_hit *hits;
    long n = store_geo_search(o, &p.q, &hits);
    if (n < 0) {
        resp_write_error(&x->w, "ERR could not decode requested zset member");
        return;
    }
    store_geo_reply(&x->w, o, &p.q, hits, (size_t)n);
    hy_free(hits);
}

/* The write forms: one STORE_OP_GEOSEARCH entry, searched at apply. */
static void geo_write(struct cmd_ctx *x, enum geo_kind k)
{
    struct geo_parse p;
    if (!geo_parse(x, k, &p)) {
        return;
    }
    const struct resp_arg *src = k == GEO_STORE ? &x->argv[2] : &x->argv[1];
    const struct resp_arg *dst = k == GEO_STORE ? &x->argv[1] : p.store_key;
    if (dst != NULL &&
        !node_keys_in_group(x->node, x->group, x->cmd, 2, (const struct resp_arg[]){*src, *dst})) {
        resp_write_error(&x->w, "CROSSSLOT Keys in request don't hash to the same slot");
        return;
    }
    uint8_t blob[STORE_GEO_BLOB_BYTES];
    store_geo_query_encode(&p.q, blob);
    struct store_arg args[4] = {
        {dst != NULL ? dst->ptr : (const uint8_t *)"", dst != NULL ? dst->len : 0},
        {src->ptr, src->len},
        {blob, sizeof(blob)},
        {p.q.member, p.q.mlen},
    };
    struct store_entry e = {.op = STORE_OP_GEOSEARCH,
                            .time_ms = x->now_ms,
                            .expire_at_ms = -1,
                            .argc = p.q.member != NULL ? 4 : 3,
                            .argv = args};
    node_propose(x, &e);
}

void cmd_georadius(struct cmd_ctx *x)
{
    geo_write(x, GEO_RADIUS);
}

void cmd_georadius_ro(struct cmd_ctx *x)
{
    geo_read(x, GEO_RADIUS_RO);
}

void cmd_georadiusbymember(struct cmd_ctx *x)
{
    geo_write(x, GEO_BYMEMBER);
}

void cmd_georadiusbymember_ro(struct cmd_ctx *x)
{
    geo_read(x, GEO_BYMEMBER_RO);
}

void cmd_geosearch(struct cmd_ctx *x)
{
    geo_read(x, GEO_SEARCH);
}

void cmd_geosearchstore(struct cmd_ctx *x)
{
    geo_write(x, GEO_STORE);
}
