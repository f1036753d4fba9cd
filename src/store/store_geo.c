/*
 * store_geo.c - GEO: points on the WGS84 sphere kept as sorted-set scores, as Redis does.
 *
 * A point is its 52-bit geohash: longitude in [-180, 180] and latitude in
 * [-85.05112878, 85.05112878] (Web Mercator's limits) each scaled to 26 bits, latitude bits
 * at even positions and longitude bits at odd ones; the score is that integer (exact in a
 * double). Decoding takes the centre of the cell. Distances are the haversine formula on a
 * sphere of radius 6372797.560856 m (Redis's EARTH_RADIUS_IN_METERS), so GEODIST and the
 * searches give Redis's figures. Written from the published algorithms (geohash, haversine).
 *
 * A search visits the geohash cells around the centre as Redis does (below) and keeps the
 * members inside the shape (a radius, or a box whose half-height is a latitude distance and
 * half-width a longitude distance measured at the member's latitude, Redis's test). Pure: used
 * by reads and by STORE_OP_GEOSEARCH.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "store/store.h"
#include "store/store_int.h"

#define ARG(e, i)     (e)->argv[(i)].ptr, (e)->argv[(i)].len
#define GEO_LAT_MIN   (-85.05112878)
#define GEO_LAT_MAX   85.05112878
#define GEO_LONG_MIN  (-180.0)
#define GEO_LONG_MAX  180.0
#define GEO_STEP      26
#define EARTH_RADIUS  6372797.560856
#define DEG_TO_RAD(d) ((d) * (M_PI / 180.0))

/* Spreads the low 32 bits of v to the even bit positions. */
static uint64_t spread(uint32_t v)
{
    uint64_t x = v;
    x = (x | (x << 16)) & 0x0000FFFF0000FFFFull;
    x = (x | (x << 8)) & 0x00FF00FF00FF00FFull;
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0Full;
    x = (x | (x << 2)) & 0x3333333333333333ull;
    x = (x | (x << 1)) & 0x5555555555555555ull;
    return x;
}

/* The even bits of v packed into 32 bits. */
static uint32_t squeeze(uint64_t x)
{
    x &= 0x5555555555555555ull;
    x = (x | (x >> 1)) & 0x3333333333333333ull;
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0Full;
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FFull;
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFFull;
    x = (x | (x >> 16)) & 0x00000000FFFFFFFFull;
    return (uint32_t)x;
}

static uint64_t encode_step(double lon, double lat, double lat_min, double lat_max, unsigned step)
{
    double lat_off = (lat - lat_min) / (lat_max - lat_min) * (double)(1ull << step);
    double lon_off = (lon - GEO_LONG_MIN) / (GEO_LONG_MAX - GEO_LONG_MIN) * (double)(1ull << step);
    return spread((uint32_t)lat_off) | (spread((uint32_t)lon_off) << 1);
}

static uint64_t encode_in(double lon, double lat, double lat_min, double lat_max)
{
    return encode_step(lon, lat, lat_min, lat_max, GEO_STEP);
}

int store_geo_valid(double lon, double lat)
{
    return lon >= GEO_LONG_MIN && lon <= GEO_LONG_MAX && lat >= GEO_LAT_MIN && lat <= GEO_LAT_MAX;
}

int store_geo_encode(double lon, double lat, uint64_t *bits_out)
{
    if (!store_geo_valid(lon, lat)) {
        return 0;
    }
    *bits_out = encode_in(lon, lat, GEO_LAT_MIN, GEO_LAT_MAX);
    return 1;
}

void store_geo_decode(uint64_t bits, double *lon_out, double *lat_out)
{
    uint32_t ilat = squeeze(bits), ilon = squeeze(bits >> 1);
    double scale = (double)(1ull << GEO_STEP);
    double lat_lo = GEO_LAT_MIN + (ilat * 1.0 / scale) * (GEO_LAT_MAX - GEO_LAT_MIN);
    double lat_hi =
        GEO_LAT_MIN + ((uint32_t)(ilat + 1) * 1.0 / scale) * (GEO_LAT_MAX - GEO_LAT_MIN);
    double lon_lo = GEO_LONG_MIN + (ilon * 1.0 / scale) * (GEO_LONG_MAX - GEO_LONG_MIN);
    double lon_hi =
        GEO_LONG_MIN + ((uint32_t)(ilon + 1) * 1.0 / scale) * (GEO_LONG_MAX - GEO_LONG_MIN);
    double lon = (lon_lo + lon_hi) / 2, lat = (lat_lo + lat_hi) / 2;
    *lon_out = lon > GEO_LONG_MAX ? GEO_LONG_MAX : lon < GEO_LONG_MIN ? GEO_LONG_MIN : lon;
    *lat_out = lat > GEO_LAT_MAX ? GEO_LAT_MAX : lat < GEO_LAT_MIN ? GEO_LAT_MIN : lat;
}

static double lat_distance(double lat1, double lat2)
{
    return EARTH_RADIUS * fabs(DEG_TO_RAD(lat2) - DEG_TO_RAD(lat1));
}

double store_geo_distance(double lon1, double lat1, double lon2, double lat2)
{
    double v = sin((DEG_TO_RAD(lon2) - DEG_TO_RAD(lon1)) / 2);
    if (v == 0.0) {
        return lat_distance(lat1, lat2); /* same meridian: the cheap exact form */
    }
    double lat1r = DEG_TO_RAD(lat1), lat2r = DEG_TO_RAD(lat2);
    double u = sin((lat2r - lat1r) / 2);
    double a = u * u + cos(lat1r) * cos(lat2r) * v * v;
    return 2.0 * EARTH_RADIUS * asin(sqrt(a));
}

void store_geo_hash_string(uint64_t bits, char out[12])
{
    static const char alphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
    double lon, lat;
    store_geo_decode(bits, &lon, &lat);
    /* The standard geohash: latitude over [-90, 90]; 52 bits, so the 11th letter is 0. */
    uint64_t std = encode_in(lon, lat, -90.0, 90.0);
    for (int i = 0; i < 11; i++) {
        unsigned idx = i == 10 ? 0 : (unsigned)((std >> (52 - (i + 1) * 5)) & 0x1f);
        out[i] = alphabet[idx];
    }
    out[11] = '\0';
}

/* Whether the point (lon, lat) is inside q's shape around (clon, clat); *dist_out is its
 * distance from the centre, in metres. */
static int in_shape(const struct store_geo_query *q, double clon, double clat, double lon,
                    double lat, double *dist_out)
{
    if (q->by_box) {
        if (lat_distance(lat, clat) > q->height_m / 2 ||
            store_geo_distance(lon, lat, clon, lat) > q->width_m / 2) {
            return 0;
        }
        *dist_out = store_geo_distance(clon, clat, lon, lat);
        return 1;
    }
    *dist_out = store_geo_distance(clon, clat, lon, lat);
    return *dist_out <= q->radius_m;
}

static int hit_asc(const void *pa, const void *pb)
{
    const struct store_geo_hit *a = pa, *b = pb;
    return a->dist_m < b->dist_m ? -1 : a->dist_m > b->dist_m;
}

static int hit_desc(const void *pa, const void *pb)
{
    return hit_asc(pb, pa);
}

/* ---- the cells Redis visits ---------------------------------------------------------------
 *
 * Redis does not scan the whole set: it picks a geohash precision from the radius, takes the
 * centre's cell and its 8 neighbours (dropping those the shape cannot reach), and visits them
 * in the order centre, N, S, E, W, NE, NW, SE, SW, each in score order. Its replies without
 * ASC/DESC come in that order, so the search visits the same cells in the same order. */

struct cell {
    uint64_t bits;
    unsigned step; /* 0: none */
};

struct cell_area {
    double lat_min, lat_max, lon_min, lon_max;
};

static void cell_area(struct cell c, struct cell_area *a)
{
    uint32_t ilat = squeeze(c.bits), ilon = squeeze(c.bits >> 1);
    double scale = (double)(1ull << c.step);
    a->lat_min = GEO_LAT_MIN + (ilat * 1.0 / scale) * (GEO_LAT_MAX - GEO_LAT_MIN);
    a->lat_max = GEO_LAT_MIN + ((uint32_t)(ilat + 1) * 1.0 / scale) * (GEO_LAT_MAX - GEO_LAT_MIN);
    a->lon_min = GEO_LONG_MIN + (ilon * 1.0 / scale) * (GEO_LONG_MAX - GEO_LONG_MIN);
    a->lon_max =
        GEO_LONG_MIN + ((uint32_t)(ilon + 1) * 1.0 / scale) * (GEO_LONG_MAX - GEO_LONG_MIN);
}

/* The neighbouring cell dx (longitude, odd bits) and dy (latitude, even bits) steps away,
 * wrapping around at the edges as Redis's geohash_move_x/_y do. */
static struct cell cell_move(struct cell c, int dx, int dy)
{
    uint64_t x = c.bits & 0xaaaaaaaaaaaaaaaaull, y = c.bits & 0x5555555555555555ull;
    unsigned shift = 64 - c.step * 2;
    if (dx != 0) {
        uint64_t zz = 0x5555555555555555ull >> shift;
        x = dx > 0 ? x + (zz + 1) : (x | zz) - (zz + 1);
        x &= 0xaaaaaaaaaaaaaaaaull >> shift;
    }
    if (dy != 0) {
        uint64_t zz = 0xaaaaaaaaaaaaaaaaull >> shift;
        y = dy > 0 ? y + (zz + 1) : (y | zz) - (zz + 1);
        y &= 0x5555555555555555ull >> shift;
    }
    return (struct cell){x | y, c.step};
}

static unsigned steps_for_radius(double range_m, double lat)
{
    if (!(range_m > 0)) {
        return 26; /* 0 (the parsers refuse negatives; a hand-made entry may not) */
    }
    int step = 1;
    while (range_m < 20037726.37 && step < 64) { /* Mercator's half circumference */
        range_m *= 2;
        step++;
    }
    step -= 2;
    if (lat > 66 || lat < -66) {
        step--;
        if (lat > 80 || lat < -80) {
            step--;
        }
    }
    return (unsigned)(step < 1 ? 1 : step > 26 ? 26 : step);
}

/* The 9 cells to visit, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW), step 0 for
 * the ones it drops. */
static void cells_for(const struct store_geo_query *q, double lon, double lat, struct cell out[9])
{
    double h = q->by_box ? q->height_m / 2 : q->radius_m;
    double w = q->by_box ? q->width_m / 2 : q->radius_m;
    double radius = q->by_box ? sqrt(w * w + h * h) : q->radius_m;
    double lat_delta = (h / EARTH_RADIUS) * (180.0 / M_PI);
    double lon_top = (w / EARTH_RADIUS / cos(DEG_TO_RAD(lat + lat_delta))) * (180.0 / M_PI);
    double lon_bottom = (w / EARTH_RADIUS / cos(DEG_TO_RAD(lat - lat_delta))) * (180.0 / M_PI);
    int south = lat < 0;
    double min_lon = lon - (south ? lon_bottom : lon_top);
    double max_lon = lon + (south ? lon_bottom : lon_top);
    double min_lat = lat - lat_delta, max_lat = lat + lat_delta;
    unsigned step = steps_for_radius(radius, lat);
    static const int d[9][2] = {{0, 0}, {0, 1},  {0, -1}, {1, 0},  {-1, 0},
                                {1, 1}, {-1, 1}, {1, -1}, {-1, -1}};
    for (int pass = 0; pass < 2; pass++) {
        struct cell c = {encode_step(lon, lat, GEO_LAT_MIN, GEO_LAT_MAX, step), step};
        for (int i = 0; i < 9; i++) {
            out[i] = cell_move(c, d[i][0], d[i][1]);
        }
        struct cell_area n, s, e, wst;
        cell_area(out[1], &n);
        cell_area(out[2], &s);
        cell_area(out[3], &e);
        cell_area(out[4], &wst);
        int decrease = n.lat_max < max_lat || s.lat_min > min_lat || e.lon_max < max_lon ||
                       wst.lon_min > min_lon;
        if (pass == 1 || step <= 1 || !decrease) {
            break;
        }
        step--;
    }
    struct cell_area a;
    cell_area(out[0], &a);
    if (step >= 2) {
        static const int drop[4][3] = {{2, 8, 7}, {1, 5, 6}, {4, 8, 6}, {3, 7, 5}};
        int cond[4] = {a.lat_min<min_lat, a.lat_max> max_lat,
                       a.lon_min<min_lon, a.lon_max> max_lon};
        for (int k = 0; k < 4; k++) {
            for (int j = 0; j < 3 && cond[k]; j++) {
                out[drop[k][j]] = (struct cell){0, 0};
            }
        }
    }
}

/* The ranks of sorted set o with min <= score < max. */
static void score_ranks(const struct store_obj *o, double min, double max, size_t *lo, size_t *hi)
{
    struct store_zscore_range r = {min, max, 0, 1};
    store_zset_score_span(o, &r, lo, hi);
}

long store_geo_search(const struct store_obj *o, const struct store_geo_query *q,
                      struct store_geo_hit **hits_out)
{
    *hits_out = NULL;
    if (o == NULL) {
        return 0;
    }
    double clon = q->lon, clat = q->lat, score;
    if (q->member != NULL) {
        if (!store_zset_score(o, q->member, q->mlen, &score)) {
            return -1;
        }
        store_geo_decode((uint64_t)score, &clon, &clat);
    }
    struct cell cells[9];
    cells_for(q, clon, clat, cells);
    size_t len = store_zset_len(o), n = 0;
    struct store_geo_hit *hits = hy_xmalloc(HY_MAX(len, 1) * sizeof(*hits));
    int last = -1, full = 0;
    for (int c = 0; c < 9 && !full; c++) {
        if (cells[c].step == 0 || (last >= 0 && cells[c].bits == cells[last].bits)) {
            continue; /* dropped, or the same cell again (huge radii) */
        }
        last = c;
        unsigned shift = 52 - cells[c].step * 2;
        size_t lo, hi;
        score_ranks(o, (double)(cells[c].bits << shift), (double)((cells[c].bits + 1) << shift),
                    &lo, &hi);
        for (size_t i = lo; i < hi; i++) {
            const uint8_t *m;
            size_t mlen;
            double lon, lat, dist;
            store_zset_at(o, i, &score, &m, &mlen);
            store_geo_decode((uint64_t)score, &lon, &lat);
            if (!in_shape(q, clon, clat, lon, lat, &dist)) {
                continue;
            }
            hits[n++] = (struct store_geo_hit){i, dist, score, lon, lat};
            if (q->any && q->count > 0 && n >= q->count) {
                full = 1;
                break;
            }
        }
    }
    int sort = q->sort;
    if (sort == 0 && q->count > 0 && !q->any) {
        sort = 1; /* COUNT without ANY returns the nearest: Redis sorts ascending */
    }
    if (sort != 0) {
        qsort(hits, n, sizeof(*hits), sort == 1 ? hit_asc : hit_desc);
    }
    if (q->count > 0 && n > q->count) {
        n = (size_t)q->count;
    }
    *hits_out = hits;
    return (long)n;
}

/* A coordinate as Redis's human long double form: %.17Lf without trailing zeros. */
static void write_coord(struct resp_writer *w, double v)
{
    char buf[128]; /* |v| <= 180: at most 22 bytes */
    int len = snprintf(buf, sizeof(buf), "%.17Lf", (long double)v);
    len = (int)HY_MIN((size_t)len, sizeof(buf) - 1);
    while (len > 1 && buf[len - 1] == '0') {
        len--;
    }
    if (len > 1 && buf[len - 1] == '.') {
        len--;
    }
    if (w->proto >= 3) {
        hy_buf_append(w->out, ",", 1);
        hy_buf_append(w->out, buf, (size_t)len);
        hy_buf_append(w->out, "\r\n", 2);
    } else {
        resp_write_bulk(w, buf, (size_t)len);
    }
}

void store_geo_write_point(struct resp_writer *w, double lon, double lat)
{
    resp_write_array(w, 2);
    write_coord(w, lon);
    write_coord(w, lat);
}

void store_geo_write_distance(struct resp_writer *w, double dist)
{
    char buf[400]; /* "%.4f" of DBL_MAX is 314 bytes: a fuzzed unit can make it that big */
    int len = snprintf(buf, sizeof(buf), "%.4f", dist);
    resp_write_bulk(w, buf, (size_t)HY_MIN((size_t)len, sizeof(buf) - 1));
}

void store_geo_reply(struct resp_writer *w, const struct store_obj *o,
                     const struct store_geo_query *q, const struct store_geo_hit *hits, size_t n)
{
    size_t extra = (size_t)(q->withdist != 0) + (q->withhash != 0) + (q->withcoord != 0);
    resp_write_array(w, n);
    for (size_t i = 0; i < n; i++) {
        double score;
        const uint8_t *m;
        size_t mlen;
        store_zset_at(o, hits[i].rank, &score, &m, &mlen);
        if (extra == 0) {
            resp_write_bulk(w, m, mlen);
            continue;
        }
        resp_write_array(w, 1 + extra);
        resp_write_bulk(w, m, mlen);
        if (q->withdist) {
            store_geo_write_distance(w, hits[i].dist_m / q->unit_m);
        }
        if (q->withhash) {
            resp_write_int(w, (int64_t)hits[i].score);
        }
        if (q->withcoord) {
            store_geo_write_point(w, hits[i].lon, hits[i].lat);
        }
    }
}

/* ---- STORE_OP_GEOSEARCH ---------------------------------------------------------------------- */

#define BLOB_SIZE (8 + 6 * 8 + 8)

void store_geo_query_encode(const struct store_geo_query *q, uint8_t out[STORE_GEO_BLOB_BYTES])
{
    _Static_assert(STORE_GEO_BLOB_BYTES == BLOB_SIZE, "blob layout");
    uint8_t flags[8] = {(uint8_t)q->by_box,    (uint8_t)q->any,
                        (uint8_t)q->sort,      (uint8_t)q->store,
                        (uint8_t)q->withdist,  (uint8_t)q->withhash,
                        (uint8_t)q->withcoord, (uint8_t)(q->member != NULL)};
    memcpy(out, flags, 8);
    double d[6] = {q->lon, q->lat, q->radius_m, q->width_m, q->height_m, q->unit_m};
    for (int i = 0; i < 6; i++) {
        uint64_t bits;
        memcpy(&bits, &d[i], 8);
        hy_store_u64le(out + 8 + 8 * i, bits);
    }
    hy_store_u64le(out + 56, q->count);
}

/* Decodes and checks a query blob (an entry is untrusted bytes); 0 when malformed. */
static int query_decode(const uint8_t *p, size_t len, struct store_geo_query *q)
{
    if (len != BLOB_SIZE) {
        return 0;
    }
    memset(q, 0, sizeof(*q));
    q->by_box = p[0], q->any = p[1], q->sort = p[2], q->store = p[3];
    q->withdist = p[4], q->withhash = p[5], q->withcoord = p[6];
    double d[6];
    for (int i = 0; i < 6; i++) {
        uint64_t bits = hy_load_u64le(p + 8 + 8 * i);
        memcpy(&d[i], &bits, 8);
        if (isnan(d[i])) {
            return 0;
        }
    }
    q->lon = d[0], q->lat = d[1], q->radius_m = d[2], q->width_m = d[3], q->height_m = d[4];
    q->unit_m = d[5];
    q->count = hy_load_u64le(p + 56);
    return p[0] <= 1 && p[1] <= 1 && p[2] <= 2 && p[3] <= 2 && p[4] <= 1 && p[5] <= 1 &&
           p[6] <= 1 && p[7] <= 1 && q->unit_m > 0 && q->radius_m >= 0 && q->width_m >= 0 &&
           q->height_m >= 0 && store_geo_valid(q->lon, q->lat);
}

/* [dst ("" without STORE), src, query blob, member (FROMMEMBER)]: the search runs here, at
 * apply, so it sees every write before it; it replies the results, or stores them (scores:
 * the geohash, or with STOREDIST the distance in the query's unit) and replies their count. */
void store__op_geosearch(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_geo_query q;
    if (!query_decode(e->argv[2].ptr, e->argv[2].len, &q) ||
        (e->argc == 4) != (e->argv[2].ptr[7] == 1)) {
        store__r_err(w, "ERR syntax error");
        return;
    }
    if (e->argc == 4) {
        q.member = e->argv[3].ptr;
        q.mlen = e->argv[3].len;
    }
    int wrong;
    struct store_obj *src = store__lookup_typed(STORE_ZSET, s, e, 1, w, &wrong);
    if (wrong) {
        return;
    }
    struct store_geo_hit *hits;
    long n = store_geo_search(src, &q, &hits);
    if (n < 0) {
        store__r_err(w, "ERR could not decode requested zset member");
        return;
    }
    if (q.store == 0) {
        if (w != NULL) {
            store_geo_reply(w, src, &q, hits, (size_t)n);
        }
        hy_free(hits);
        return;
    }
    struct zobj *z = store__zobj_new(s->hash_seed);
    for (long i = 0; i < n; i++) {
        double score;
        const uint8_t *m;
        size_t mlen;
        store_zset_at(src, hits[i].rank, &score, &m, &mlen);
        store__zobj_insert(z, q.store == 2 ? hits[i].dist_m / q.unit_m : score, m, mlen);
    }
    hy_free(hits);
    struct store_obj *dst = store__lookup_write(s, ARG(e, 0), e->time_ms);
    if (dst != NULL) {
        store__delete(s, dst);
    }
    if (n == 0) {
        store__zobj_free(z);
    } else {
        struct store_obj *o = store__entry_new(STORE_ZSET, -1, ARG(e, 0), 0);
        store__set_vobj(o, z);
        o->lru = store__lru_of(e);
        store__link(s, o);
    }
    store__r_int(w, n);
}
