/*
 * wan.c - the pure parts of links between clusters (wan.h, docs/wan.md): link definitions as
 * stored in the metadata group, the batch codec, the dedup rule and the shipper's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/strutil.h"
#include "node/wan.h"

int wan_name_ok(const uint8_t *p, size_t len)
{
    if (len == 0 || len > WAN_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

/* One "host:port": a host of printable bytes without ',' ':' or spaces, a port 1..65535. */
static int target_ok(const uint8_t *p, size_t len)
{
    const uint8_t *colon = NULL;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == ':') {
            colon = p + i;
        } else if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == ',') {
            return 0;
        }
    }
    if (colon == NULL || colon == p) {
        return 0;
    }
    size_t plen = len - (size_t)(colon + 1 - p);
    if (plen == 0 || plen > 5) {
        return 0;
    }
    uint32_t port = 0;
    for (size_t i = 0; i < plen; i++) {
        uint8_t c = colon[1 + i];
        if (c < '0' || c > '9') {
            return 0;
        }
        port = port * 10 + (uint32_t)(c - '0');
    }
    /* Only the last colon separates the port, so a host may not hold one (no bare IPv6). */
    return port >= 1 && port <= 65535 && memchr(p, ':', (size_t)(colon - p)) == NULL;
}

int wan_targets_ok(const uint8_t *p, size_t len)
{
    if (len == 0 || len > WAN_TARGETS_MAX) {
        return 0;
    }
    size_t start = 0, n = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == ',') {
            if (!target_ok(p + start, i - start) || ++n > 16) {
                return 0;
            }
            start = i + 1;
        }
    }
    return 1;
}

int wan_secret_ok(const uint8_t *p, size_t len)
{
    if (len > WAN_SECRET_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

int wan_pattern_ok(const uint8_t *p, size_t len)
{
    return len >= 1 && len <= WAN_PATTERN_MAX && wan_secret_ok(p, len);
}

const char *wan_mode_name(enum wan_mode m)
{
    switch (m) {
    case WAN_ACTIVE_PASSIVE: return "active-passive";
    case WAN_ACTIVE_ACTIVE: return "active-active";
    }
    return "?";
}

void wan_link_encode(const struct wan_link *l, struct hy_buf *out)
{
    hy_buf_printf(out, "%s %s %s", wan_mode_name(l->mode), l->targets, l->secret);
    if (l->keys[0] != '\0') {
        hy_buf_printf(out, " KEYS=%s", l->keys);
    }
    if (l->tls) {
        hy_buf_printf(out, l->tls_ca[0] ? " TLS=%s" : " TLS", l->tls_ca);
    }
    for (size_t i = 0; i < l->nrules; i++) {
        hy_buf_printf(out, " %s=%s", wan_policy_name(l->rules[i].policy), l->rules[i].pattern);
    }
}

/* One " POLICY=pattern" token (without its space) into r; 0 when malformed. */
static int rule_decode(const uint8_t *p, size_t len, struct wan_policy_rule *r)
{
    const uint8_t *eq = memchr(p, '=', len);
    if (eq == NULL || !wan_policy_parse(p, (size_t)(eq - p), &r->policy)) {
        return 0;
    }
    size_t plen = len - (size_t)(eq + 1 - p);
    /* One spelling per value (the encoder writes names in capitals), so that a decoded
     * definition encodes back to its bytes. */
    if (!wan_pattern_ok(eq + 1, plen) ||
        memcmp(p, wan_policy_name(r->policy), (size_t)(eq - p)) != 0) {
        return 0;
    }
    memcpy(r->pattern, eq + 1, plen);
    r->pattern[plen] = '\0';
    return 1;
}

int wan_link_decode(const uint8_t *name, size_t name_len, const uint8_t *p, size_t len,
                    struct wan_link *out)
{
    memset(out, 0, sizeof(*out));
    if (!wan_name_ok(name, name_len)) {
        return 0;
    }
    memcpy(out->name, name, name_len);
    const uint8_t *sp1 = memchr(p, ' ', len);
    if (sp1 == NULL) {
        return 0;
    }
    size_t mlen = (size_t)(sp1 - p);
    if (mlen == strlen("active-passive") && memcmp(p, "active-passive", mlen) == 0) {
        out->mode = WAN_ACTIVE_PASSIVE;
    } else if (mlen == strlen("active-active") && memcmp(p, "active-active", mlen) == 0) {
        out->mode = WAN_ACTIVE_ACTIVE;
    } else {
        return 0;
    }
    const uint8_t *t = sp1 + 1, *end = p + len;
    const uint8_t *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (sp2 == NULL || !wan_targets_ok(t, (size_t)(sp2 - t))) {
        return 0;
    }
    const uint8_t *sec = sp2 + 1;
    const uint8_t *sp3 = memchr(sec, ' ', (size_t)(end - sec));
    const uint8_t *sec_end = sp3 != NULL ? sp3 : end;
    if (!wan_secret_ok(sec, (size_t)(sec_end - sec))) {
        return 0;
    }
    memcpy(out->targets, t, (size_t)(sp2 - t));
    memcpy(out->secret, sec, (size_t)(sec_end - sec));
    /* The key pattern, first when there is one, then the policy rules, one per space-separated
     * token. */
    for (const uint8_t *q = sec_end; q < end;) {
        const uint8_t *tok = q + 1;
        const uint8_t *next = memchr(tok, ' ', (size_t)(end - tok));
        const uint8_t *tok_end = next != NULL ? next : end;
        size_t tlen = (size_t)(tok_end - tok);
        if (q == sec_end && tlen > 5 && memcmp(tok, "KEYS=", 5) == 0) {
            if (!wan_pattern_ok(tok + 5, tlen - 5)) {
                return 0;
            }
            memcpy(out->keys, tok + 5, tlen - 5);
            q = tok_end;
            continue;
        }
        if (!out->tls && out->nrules == 0 && tlen >= 3 && memcmp(tok, "TLS", 3) == 0 &&
            (tlen == 3 || tok[3] == '=')) {
            /* After KEYS, before the rules, once: one spelling per definition. */
            if (tlen > 3 && (tlen == 4 || !wan_secret_ok(tok + 4, tlen - 4))) {
                return 0;
            }
            out->tls = 1;
            if (tlen > 3) {
                memcpy(out->tls_ca, tok + 4, tlen - 4);
            }
            q = tok_end;
            continue;
        }
        if (out->nrules == WAN_POLICIES_MAX ||
            !rule_decode(tok, (size_t)(tok_end - tok), &out->rules[out->nrules])) {
            return 0;
        }
        out->nrules++;
        q = tok_end;
    }
    return 1;
}

/* ---- the shipper ----------------------------------------------------------------------------- */

void wan_shipper_init(struct wan_shipper *s, uint64_t acked, uint64_t timeout_ms,
                      uint64_t backoff_min_ms, uint64_t backoff_max_ms)
{
    memset(s, 0, sizeof(*s));
    s->acked = s->shipped = acked;
    s->timeout_ms = timeout_ms;
    s->backoff_min_ms = backoff_min_ms;
    s->backoff_max_ms = backoff_max_ms;
    s->backoff_ms = backoff_min_ms;
}

void wan_shipper_committed(struct wan_shipper *s, uint64_t commit_index, uint64_t now_ms)
{
    if (commit_index > s->acked && s->oldest_unacked_ms == 0) {
        s->oldest_unacked_ms = now_ms;
    }
}

int wan_shipper_due(struct wan_shipper *s, uint64_t commit_index, uint64_t now_ms, uint64_t *from)
{
    if (s->shipped > s->acked) {
        if (now_ms < s->sent_ms + s->timeout_ms) {
            return 0;
        }
        /* No answer in time: the batch may or may not have been applied; the target's dedup
         * makes sending it again safe, so it goes again from the durable position. */
        s->failures++;
        s->shipped = s->acked;
    }
    if (now_ms < s->retry_at_ms || commit_index <= s->acked) {
        return 0;
    }
    *from = s->acked;
    return 1;
}

void wan_shipper_sent(struct wan_shipper *s, uint64_t last, uint64_t now_ms)
{
    HY_ASSERT(last > s->acked);
    s->shipped = last;
    s->sent_ms = now_ms;
    s->batches++;
}

void wan_shipper_acked(struct wan_shipper *s, uint64_t upto, uint64_t entries,
                       uint64_t commit_index, uint64_t now_ms)
{
    if (upto <= s->acked) {
        return;
    }
    s->acked = upto;
    s->entries += entries;
    if (s->shipped <= upto) {
        s->shipped = upto;
    }
    s->backoff_ms = s->backoff_min_ms;
    s->retry_at_ms = 0;
    /* What remains was committed no later than now: the lag of the rest starts here, an
     * estimate on the short side (the exact commit times are not kept per entry). */
    s->oldest_unacked_ms = commit_index > upto ? now_ms : 0;
}

void wan_shipper_failed(struct wan_shipper *s, uint64_t now_ms)
{
    s->failures++;
    s->shipped = s->acked;
    s->retry_at_ms = now_ms + s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > s->backoff_max_ms ? s->backoff_max_ms : s->backoff_ms * 2;
}

struct wan_lag wan_shipper_lag(const struct wan_shipper *s, uint64_t commit_index, uint64_t now_ms)
{
    struct wan_lag l = {0, 0};
    if (commit_index > s->acked) {
        l.entries = commit_index - s->acked;
        if (s->oldest_unacked_ms != 0 && now_ms > s->oldest_unacked_ms) {
            l.ms = now_ms - s->oldest_unacked_ms;
        }
    }
    return l;
}

/* ---- the outbox in snapshots ------------------------------------------------------------ */

#define OUTBOX_IMAGE_VERSION 1
#define OUTBOX_IMAGE_HEADER  42 /* version 1, from 8, next apply 8, last 8, skipped 8, */
                                /* overflow 1, count 8 */

void wan_outbox_image_encode(const struct wan_outbox_image *im, struct hy_buf *out)
{
    uint8_t h[OUTBOX_IMAGE_HEADER];
    h[0] = OUTBOX_IMAGE_VERSION;
    hy_store_u64le(h + 1, im->from_seq);
    hy_store_u64le(h + 9, im->next_apply);
    hy_store_u64le(h + 17, im->last_seq);
    hy_store_u64le(h + 25, im->skipped);
    h[33] = (uint8_t)(im->overflow != 0);
    hy_store_u64le(h + 34, im->count);
    hy_buf_append(out, h, sizeof(h));
    hy_buf_append(out, im->recs, im->recs_len);
}

int wan_outbox_image_decode(const uint8_t *p, size_t len, struct wan_outbox_image *im)
{
    if (len < OUTBOX_IMAGE_HEADER || p[0] != OUTBOX_IMAGE_VERSION || p[33] > 1) {
        return 0;
    }
    im->from_seq = hy_load_u64le(p + 1);
    im->next_apply = hy_load_u64le(p + 9);
    im->last_seq = hy_load_u64le(p + 17);
    im->skipped = hy_load_u64le(p + 25);
    im->overflow = p[33];
    im->count = hy_load_u64le(p + 34);
    size_t off = OUTBOX_IMAGE_HEADER;
    uint64_t prev = 0;
    for (uint64_t k = 0; k < im->count; k++) {
        if (len - off < WAN_OUTBOX_REC_HEADER ||
            hy_load_u32le(p + off + 16) > len - off - WAN_OUTBOX_REC_HEADER) {
            return 0;
        }
        uint64_t seq = hy_load_u64le(p + off);
        if (seq < im->from_seq || (k > 0 && seq <= prev)) {
            return 0;
        }
        prev = seq;
        off += WAN_OUTBOX_REC_HEADER + hy_load_u32le(p + off + 16);
    }
    if (off != len) {
        return 0;
    }
    im->recs = p + OUTBOX_IMAGE_HEADER;
    im->recs_len = len - OUTBOX_IMAGE_HEADER;
    return 1;
}

void wan_role_encode(const struct wan_role *r, struct hy_buf *out)
{
    HY_ASSERT(r->kind == WAN_ROLE_PRIMARY || r->kind == WAN_ROLE_PASSIVE);
    hy_buf_printf(out, "%s %llu %s", r->kind == WAN_ROLE_PRIMARY ? "primary" : "passive",
                  (unsigned long long)r->epoch, r->by);
    if (r->kind == WAN_ROLE_PRIMARY && r->from[0] != '\0') {
        hy_buf_printf(out, " from %s", r->from);
    }
}

int wan_role_decode(const uint8_t *p, size_t len, struct wan_role *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *sp1 = memchr(p, ' ', len);
    if (sp1 == NULL) {
        return 0;
    }
    size_t klen = (size_t)(sp1 - p);
    if (klen == 7 && memcmp(p, "primary", 7) == 0) {
        out->kind = WAN_ROLE_PRIMARY;
    } else if (klen == 7 && memcmp(p, "passive", 7) == 0) {
        out->kind = WAN_ROLE_PASSIVE;
    } else {
        return 0;
    }
    const uint8_t *e = sp1 + 1, *end = p + len;
    const uint8_t *sp2 = memchr(e, ' ', (size_t)(end - e));
    int64_t epoch;
    if (sp2 == NULL || !hy_parse_i64(e, (size_t)(sp2 - e), &epoch) || epoch <= 0) {
        return 0;
    }
    const uint8_t *by = sp2 + 1, *sp3 = memchr(by, ' ', (size_t)(end - by));
    const uint8_t *by_end = sp3 != NULL ? sp3 : end;
    if (!wan_name_ok(by, (size_t)(by_end - by))) {
        return 0;
    }
    if (sp3 != NULL) {
        /* " from <name>": a primary's only. */
        const uint8_t *f = sp3 + 1;
        if (out->kind != WAN_ROLE_PRIMARY || end - f < 6 || memcmp(f, "from ", 5) != 0 ||
            !wan_name_ok(f + 5, (size_t)(end - f - 5))) {
            return 0;
        }
        memcpy(out->from, f + 5, (size_t)(end - f - 5));
    }
    out->epoch = (uint64_t)epoch;
    memcpy(out->by, by, (size_t)(by_end - by));
    return 1;
}

int wan_promotion_cmp(uint64_t epoch_a, const char *by_a, uint64_t epoch_b, const char *by_b)
{
    if (epoch_a != epoch_b) {
        return epoch_a < epoch_b ? -1 : 1;
    }
    /* Two promotions of one epoch (each cluster counted from what it knew): the cluster's
     * origin id decides, its name where two ids collide, so that one of two distinct clusters
     * always wins, alike wherever it is decided. */
    uint32_t ia = wan_origin_id(by_a, strlen(by_a)), ib = wan_origin_id(by_b, strlen(by_b));
    if (ia != ib) {
        return ia < ib ? -1 : 1;
    }
    int c = strcmp(by_a, by_b);
    return (c > 0) - (c < 0);
}

int wan_role_yields(const struct wan_role *have, uint64_t epoch, const char *by)
{
    return have->kind == WAN_ROLE_NONE || wan_promotion_cmp(have->epoch, have->by, epoch, by) < 0;
}

int wan_demoted_parse(const char *err, uint64_t *epoch_out, char *by_out, size_t by_cap)
{
    const char *d = strstr(err, WAN_DEMOTED_CODE " ");
    if (d == NULL || by_cap == 0) {
        return 0;
    }
    d += strlen(WAN_DEMOTED_CODE " ");
    char *endp;
    unsigned long long epoch = strtoull(d, &endp, 10);
    if (endp == d || *endp != ' ' || epoch == 0) {
        return 0;
    }
    const char *b = endp + 1;
    size_t blen = 0;
    while (b[blen] != '\0' && b[blen] != ' ' && b[blen] != ':') {
        blen++;
    }
    if (!wan_name_ok((const uint8_t *)b, blen) || blen >= by_cap) {
        return 0;
    }
    memcpy(by_out, b, blen);
    by_out[blen] = '\0';
    *epoch_out = epoch;
    return 1;
}

unsigned wan_progress_percent(uint64_t done, uint64_t total, int finished)
{
    if (finished) {
        return 100;
    }
    if (total == 0 || done >= total) {
        return 99;
    }
    return (unsigned)(done * 100 / total);
}

void wan_progress_bar(unsigned percent, char *out, size_t cap)
{
    HY_ASSERT(cap > WAN_BAR_WIDTH);
    size_t full = (size_t)(percent > 100 ? 100 : percent) * WAN_BAR_WIDTH / 100;
    for (size_t i = 0; i < WAN_BAR_WIDTH; i++) {
        out[i] = i < full ? '#' : '.';
    }
    out[WAN_BAR_WIDTH] = '\0';
}
