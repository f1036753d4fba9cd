/*
 * wire.c - peer frames: header, payload encoders and the incremental, bounded reader.
 * The byte layout is documented in docs/peer-protocol.md; the static_asserts below pin the
 * constants that document states.
 */
#include "proto/wire.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/crc.h"

/* Header offsets. */
#define H_MAGIC   0
#define H_VERSION 4
#define H_TYPE    5
#define H_FLAGS   6
#define H_LEN     8
#define H_CRC     12

static_assert(WIRE_HEADER_BYTES == H_CRC + 4, "header is magic..crc");
static_assert(WIRE_RAFT_FIXED_BYTES == 144, "raft fixed part: 4 + 4 + 16 * 8 + 4 + 4");
static_assert(WIRE_RAFT_SERVER_BYTES == sizeof(uint64_t) + 1, "server: id u64, role u8");
static_assert(WIRE_RAFT_ENTRY_HEAD_BYTES == 8 + 4 + 4, "entry head: term, type, len");
static_assert(RAFT_SERVERS_MAX <= 255, "membership count fits the checks below");
static_assert(WIRE_NAME_MAX <= 255, "names are u8-length-prefixed");
static_assert(WIRE_REASON_MAX <= 65535, "reject text is u16-length-prefixed");

/* Raft message flag bits (one byte instead of four booleans). */
#define F_PRE_VOTE 0x01u
#define F_TRANSFER 0x02u
#define F_GRANTED  0x04u
#define F_SUCCESS  0x08u
#define F_QUIESCE  0x10u /* APPEND: quiesce; APPEND_RESP: quiesced */
#define F_ALL      0x1fu

void wire_limits_default(struct wire_limits *l)
{
    l->frame_bytes_max = WIRE_FRAME_BYTES_DEFAULT;
    l->entries_max = WIRE_ENTRIES_MAX_DEFAULT;
}

const char *wire_type_name(uint8_t type)
{
    static const char *const names[WIRE_TYPE_COUNT] = {
        [WIRE_HELLO] = "HELLO",
        [WIRE_CHALLENGE] = "CHALLENGE",
        [WIRE_AUTH] = "AUTH",
        [WIRE_WELCOME] = "WELCOME",
        [WIRE_REJECT] = "REJECT",
        [WIRE_RAFT] = "RAFT",
        [WIRE_PING] = "PING",
        [WIRE_PONG] = "PONG",
        [WIRE_FORWARD] = "FORWARD",
        [WIRE_FORWARD_REPLY] = "FORWARD_REPLY",
        [WIRE_PUBLISH] = "PUBLISH",
        [WIRE_HEARTBEAT] = "HEARTBEAT",
        [WIRE_GOSSIP] = "GOSSIP",
        [WIRE_BUSY] = "BUSY",
        [WIRE_WAN_HELLO] = "WAN_HELLO",
        [WIRE_WAN_APPLY] = "WAN_APPLY",
        [WIRE_WAN_DEMOTE] = "WAN_DEMOTE",
        [WIRE_WAN_PARTS] = "WAN_PARTS",
        [WIRE_WAN_REPLY] = "WAN_REPLY",
    };
    return type > 0 && type < WIRE_TYPE_COUNT ? names[type] : "?";
}

const char *wire_reject_name(uint16_t code)
{
    switch (code) {
    case WIRE_REJECT_PROTOCOL: return "protocol";
    case WIRE_REJECT_VERSION: return "version";
    case WIRE_REJECT_CLUSTER: return "cluster";
    case WIRE_REJECT_UNKNOWN_NODE: return "unknown-node";
    case WIRE_REJECT_AUTH: return "auth";
    case WIRE_REJECT_SHUTDOWN: return "shutdown";
    default: return "?";
    }
}

int wire_name_valid(const uint8_t *s, size_t len)
{
    if (len == 0 || len > WIRE_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* ---- framing ------------------------------------------------------------------------------- */

/* Reserves the header; the payload is appended after it; frame_end fills the header. */
static size_t frame_begin(struct hy_buf *out)
{
    size_t start = out->len;
    hy_buf_reserve(out, WIRE_HEADER_BYTES);
    out->len += WIRE_HEADER_BYTES;
    return start;
}

static void frame_end(struct hy_buf *out, size_t start, uint8_t type)
{
    uint8_t *h = out->data + start;
    size_t payload = out->len - start - WIRE_HEADER_BYTES;
    HY_ASSERT(payload <= UINT32_MAX - WIRE_HEADER_BYTES);
    hy_store_u32le(h + H_MAGIC, WIRE_MAGIC);
    h[H_VERSION] = WIRE_VERSION;
    h[H_TYPE] = type;
    h[H_FLAGS] = 0;
    h[H_FLAGS + 1] = 0;
    hy_store_u32le(h + H_LEN, (uint32_t)payload);
    uint32_t crc = hy_crc32c(0, h, H_CRC);
    crc = hy_crc32c(crc, h + WIRE_HEADER_BYTES, payload);
    hy_store_u32le(h + H_CRC, crc);
}

static void append_name(struct hy_buf *out, const uint8_t *s, size_t len)
{
    hy_buf_append_u8(out, (uint8_t)len);
    hy_buf_append(out, s, len);
}

static int encode_hello(struct hy_buf *out, const struct wire_hello *h, uint8_t type)
{
    if (!wire_name_valid(h->cluster, h->cluster_len) || !wire_name_valid(h->node, h->node_len)) {
        return HY_EINVAL;
    }
    size_t start = frame_begin(out);
    hy_buf_append_u32le(out, h->version);
    append_name(out, h->cluster, h->cluster_len);
    append_name(out, h->node, h->node_len);
    hy_buf_append(out, h->nonce, WIRE_NONCE_BYTES);
    if (h->mac != NULL) {
        hy_buf_append(out, h->mac, WIRE_MAC_BYTES);
    }
    frame_end(out, start, type);
    return HY_OK;
}

int wire_encode_hello(struct hy_buf *out, const struct wire_hello *h)
{
    return encode_hello(out, h, h->mac != NULL ? WIRE_CHALLENGE : WIRE_HELLO);
}

int wire_encode_wan_hello(struct hy_buf *out, const struct wire_hello *h)
{
    return h->mac != NULL ? HY_EINVAL : encode_hello(out, h, WIRE_WAN_HELLO);
}

static int text_printable(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* The payload's length of a WAN frame, or 0 when its fields are not valid. */
static size_t wan_payload_len(uint8_t type, const struct wire_wan *w)
{
    switch (type) {
    case WIRE_WAN_APPLY: return 8 + 2 + w->len;
    case WIRE_WAN_DEMOTE: return wire_name_valid(w->data, w->len) ? 8 + 8 + 1 + w->len : 0;
    case WIRE_WAN_PARTS: return 8;
    case WIRE_WAN_REPLY:
        return w->status <= WIRE_WAN_ERROR && w->len <= WIRE_REASON_MAX &&
                       text_printable(w->data, w->len)
                   ? 8 + 1 + 8 + 2 + w->len
                   : 0;
    default: HY_UNREACHABLE();
    }
}

int wire_encode_wan(struct hy_buf *out, uint8_t type, const struct wire_wan *w,
                    const struct wire_limits *l)
{
    HY_ASSERT(type == WIRE_WAN_APPLY || type == WIRE_WAN_DEMOTE || type == WIRE_WAN_PARTS ||
              type == WIRE_WAN_REPLY);
    size_t payload = wan_payload_len(type, w);
    if (payload == 0) {
        return HY_EINVAL;
    }
    if (w->len > (size_t)l->frame_bytes_max ||
        payload > (size_t)l->frame_bytes_max - WIRE_HEADER_BYTES) {
        return HY_ETOOBIG;
    }
    size_t start = frame_begin(out);
    hy_buf_append_u64le(out, w->req_id);
    switch (type) {
    case WIRE_WAN_APPLY:
        hy_buf_append_u8(out, (uint8_t)w->slot);
        hy_buf_append_u8(out, (uint8_t)(w->slot >> 8));
        hy_buf_append(out, w->data, w->len);
        break;
    case WIRE_WAN_DEMOTE:
        hy_buf_append_u64le(out, w->epoch);
        append_name(out, w->data, w->len);
        break;
    case WIRE_WAN_REPLY:
        hy_buf_append_u8(out, w->status);
        hy_buf_append_u64le(out, (uint64_t)w->value);
        hy_buf_append_u8(out, (uint8_t)w->len);
        hy_buf_append_u8(out, (uint8_t)(w->len >> 8));
        hy_buf_append(out, w->data, w->len);
        break;
    default: break;
    }
    frame_end(out, start, type);
    return HY_OK;
}

void wire_encode_auth(struct hy_buf *out, const uint8_t mac[WIRE_MAC_BYTES])
{
    size_t start = frame_begin(out);
    hy_buf_append(out, mac, WIRE_MAC_BYTES);
    frame_end(out, start, WIRE_AUTH);
}

void wire_encode_welcome(struct hy_buf *out)
{
    frame_end(out, frame_begin(out), WIRE_WELCOME);
}

void wire_encode_reject(struct hy_buf *out, uint16_t code, const char *text)
{
    size_t len = strlen(text);
    len = len > WIRE_REASON_MAX ? WIRE_REASON_MAX : len;
    size_t start = frame_begin(out);
    hy_buf_append_u8(out, (uint8_t)code);
    hy_buf_append_u8(out, (uint8_t)(code >> 8));
    hy_buf_append_u8(out, (uint8_t)len);
    hy_buf_append_u8(out, (uint8_t)(len >> 8));
    /* The peer logs this text: anything unprintable becomes '?' rather than a refusal. */
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        hy_buf_append_u8(out, c >= 0x20 && c <= 0x7e ? c : '?');
    }
    frame_end(out, start, WIRE_REJECT);
}

void wire_encode_ping(struct hy_buf *out, uint8_t type, uint64_t token)
{
    HY_ASSERT(type == WIRE_PING || type == WIRE_PONG);
    size_t start = frame_begin(out);
    hy_buf_append_u64le(out, token);
    frame_end(out, start, type);
}

int wire_encode_forward(struct hy_buf *out, uint8_t type, uint64_t req_id, const uint8_t *data,
                        size_t len, const struct wire_limits *l)
{
    HY_ASSERT(type == WIRE_FORWARD || type == WIRE_FORWARD_REPLY || type == WIRE_PUBLISH ||
              type == WIRE_GOSSIP || type == WIRE_BUSY);
    if (len > (size_t)l->frame_bytes_max - WIRE_HEADER_BYTES - 8) {
        return HY_ETOOBIG;
    }
    size_t start = frame_begin(out);
    hy_buf_append_u64le(out, req_id);
    hy_buf_append(out, data, len);
    frame_end(out, start, type);
    return HY_OK;
}

/* ---- raft messages ----------------------------------------------------------------------- */

static int raft_check_membership(const struct raft_membership *mb, const char **reason_out)
{
    if (mb->count > RAFT_SERVERS_MAX) {
        *reason_out = "membership count over RAFT_SERVERS_MAX";
        return HY_EPROTO;
    }
    for (uint32_t i = 0; i < mb->count; i++) {
        const struct raft_server *s = &mb->servers[i];
        if (s->id == RAFT_NONE || (s->role != RAFT_VOTER && s->role != RAFT_LEARNER)) {
            *reason_out = "membership server with id 0 or unknown role";
            return HY_EPROTO;
        }
    }
    return HY_OK;
}

static int raft_check_entries(const struct raft_message *m, const char **reason_out)
{
    if (m->n_entries > 0 && m->type != RAFT_MSG_APPEND) {
        *reason_out = "entries in a message that is not APPEND";
        return HY_EPROTO;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        uint32_t t = m->entries[i].type;
        if (t != RAFT_ENTRY_COMMAND && t != RAFT_ENTRY_NOOP && t != RAFT_ENTRY_CONFIG) {
            *reason_out = "entry of unknown type";
            return HY_EPROTO;
        }
    }
    return HY_OK;
}

int wire_raft_check(const struct raft_message *m, const char **reason_out)
{
    *reason_out = NULL;
    if (m->type < RAFT_MSG_VOTE || m->type >= RAFT_MSG_TYPE_COUNT) {
        *reason_out = "unknown raft message type";
        return HY_EPROTO;
    }
    if (m->from == RAFT_NONE || m->to == RAFT_NONE) {
        *reason_out = "raft message without from/to";
        return HY_EPROTO;
    }
    if (m->len > 0 && m->type != RAFT_MSG_SNAPSHOT) {
        *reason_out = "chunk data in a message that is not SNAPSHOT";
        return HY_EPROTO;
    }
    if (m->type == RAFT_MSG_SNAPSHOT && (m->offset > m->total || m->len > m->total - m->offset)) {
        *reason_out = "snapshot chunk beyond its total";
        return HY_EPROTO;
    }
    if (m->type != RAFT_MSG_SNAPSHOT && m->snap_membership.count != 0) {
        *reason_out = "membership in a message that is not SNAPSHOT";
        return HY_EPROTO;
    }
    if (m->type != RAFT_MSG_SNAPSHOT && m->snap_crc != 0) {
        *reason_out = "snapshot checksum in a message that is not SNAPSHOT";
        return HY_EPROTO;
    }
    int rc = raft_check_membership(&m->snap_membership, reason_out);
    if (rc != HY_OK) {
        return rc;
    }
    return raft_check_entries(m, reason_out);
}

/* A SNAPSHOT ends with the whole data's checksum, after its chunk (docs/peer-protocol.md). */
static uint64_t raft_trailer_len(uint32_t type)
{
    return type == RAFT_MSG_SNAPSHOT ? 4 : 0;
}

/* Payload bytes of m, or 0 when the sum overflows (never for a checked message in memory). */
static uint64_t raft_payload_len(const struct raft_message *m)
{
    uint64_t n = WIRE_RAFT_FIXED_BYTES + raft_trailer_len(m->type);
    n += (uint64_t)m->snap_membership.count * WIRE_RAFT_SERVER_BYTES;
    n += (uint64_t)m->n_entries * WIRE_RAFT_ENTRY_HEAD_BYTES;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        n += m->entries[i].len;
    }
    return n + m->len;
}

size_t wire_raft_frame_len(const struct raft_message *m)
{
    const char *reason;
    if (wire_raft_check(m, &reason) != HY_OK) {
        return 0;
    }
    return (size_t)(WIRE_HEADER_BYTES + raft_payload_len(m));
}

static uint8_t raft_flags(const struct raft_message *m)
{
    return (uint8_t)((m->pre_vote ? F_PRE_VOTE : 0) | (m->transfer ? F_TRANSFER : 0) |
                     (m->granted ? F_GRANTED : 0) | (m->success ? F_SUCCESS : 0) |
                     (m->quiesce ? F_QUIESCE : 0));
}

static void raft_encode_fixed(struct hy_buf *out, uint16_t group, const struct raft_message *m)
{
    hy_buf_append_u8(out, (uint8_t)m->type);
    hy_buf_append_u8(out, raft_flags(m));
    hy_buf_append_u8(out, (uint8_t)(group & 0xff)); /* u16 little-endian */
    hy_buf_append_u8(out, (uint8_t)(group >> 8));
    hy_buf_append_u32le(out, m->n_entries);
    const uint64_t words[16] = {
        m->from,       m->to,        m->term,   m->last_log_index, m->last_log_term, m->prev_index,
        m->prev_term,  m->commit,    m->index,  m->hint_term,      m->seq,           m->sent_ms,
        m->snap_index, m->snap_term, m->offset, m->total,
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(words); i++) {
        hy_buf_append_u64le(out, words[i]);
    }
    hy_buf_append_u32le(out, m->snap_membership.count);
    hy_buf_append_u32le(out, m->len);
}

int wire_encode_raft(struct hy_buf *out, uint16_t group, const struct raft_message *m,
                     const struct wire_limits *l)
{
    const char *reason;
    if (wire_raft_check(m, &reason) != HY_OK) {
        return HY_EINVAL;
    }
    if (m->n_entries > l->entries_max ||
        raft_payload_len(m) > (uint64_t)l->frame_bytes_max - WIRE_HEADER_BYTES) {
        return HY_ETOOBIG;
    }
    size_t start = frame_begin(out);
    raft_encode_fixed(out, group, m);
    HY_ASSERT(out->len - start == WIRE_HEADER_BYTES + WIRE_RAFT_FIXED_BYTES);
    for (uint32_t i = 0; i < m->snap_membership.count; i++) {
        hy_buf_append_u64le(out, m->snap_membership.servers[i].id);
        hy_buf_append_u8(out, m->snap_membership.servers[i].role);
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        hy_buf_append_u64le(out, m->entries[i].term);
        hy_buf_append_u32le(out, m->entries[i].type);
        hy_buf_append_u32le(out, m->entries[i].len);
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        hy_buf_append(out, m->entries[i].data, m->entries[i].len);
    }
    hy_buf_append(out, m->data, m->len);
    if (m->type == RAFT_MSG_SNAPSHOT) {
        hy_buf_append_u32le(out, m->snap_crc);
    }
    frame_end(out, start, WIRE_RAFT);
    HY_ASSERT(out->len - start == WIRE_HEADER_BYTES + raft_payload_len(m));
    return HY_OK;
}

/* ---- the coalesced heartbeat ------------------------------------------------------------------
 */

/* The flags an entry may carry: APPEND quiesce; APPEND_RESP success and quiesced. */
#define F_HEARTBEAT (F_SUCCESS | F_QUIESCE)

int wire_heartbeat_fits(const struct raft_message *m)
{
    const char *reason;
    int kind = (m->type == RAFT_MSG_APPEND && m->n_entries == 0) || m->type == RAFT_MSG_APPEND_RESP;
    return kind && (raft_flags(m) & ~F_HEARTBEAT) == 0 && m->len == 0 &&
           m->snap_membership.count == 0 && m->last_log_index == 0 && m->last_log_term == 0 &&
           m->snap_index == 0 && m->snap_term == 0 && m->offset == 0 && m->total == 0 &&
           (m->type == RAFT_MSG_APPEND
                ? m->index == 0 && m->hint_term == 0
                : m->prev_index == 0 && m->prev_term == 0 && m->commit == 0) &&
           wire_raft_check(m, &reason) == HY_OK;
}

int wire_heartbeat_add(struct hy_buf *entries, uint16_t group, const struct raft_message *m)
{
    if (!wire_heartbeat_fits(m)) {
        return HY_EINVAL;
    }
    size_t start = entries->len;
    int append = m->type == RAFT_MSG_APPEND;
    hy_buf_append_u8(entries, (uint8_t)(group & 0xff));
    hy_buf_append_u8(entries, (uint8_t)(group >> 8));
    hy_buf_append_u8(entries, (uint8_t)m->type);
    hy_buf_append_u8(entries, raft_flags(m));
    const uint64_t words[8] = {m->from,
                               m->to,
                               m->term,
                               append ? m->prev_index : m->index,
                               append ? m->prev_term : m->hint_term,
                               m->commit,
                               m->seq,
                               m->sent_ms};
    for (size_t i = 0; i < HY_ARRAY_LEN(words); i++) {
        hy_buf_append_u64le(entries, words[i]);
    }
    HY_ASSERT(entries->len - start == WIRE_HEARTBEAT_ENTRY_BYTES);
    return HY_OK;
}

int wire_encode_heartbeat(struct hy_buf *out, const uint8_t *entries, uint32_t count,
                          const struct wire_limits *l)
{
    uint64_t payload = 4 + (uint64_t)count * WIRE_HEARTBEAT_ENTRY_BYTES;
    if (payload > (uint64_t)l->frame_bytes_max - WIRE_HEADER_BYTES) {
        return HY_ETOOBIG;
    }
    size_t start = frame_begin(out);
    hy_buf_append_u32le(out, count);
    hy_buf_append(out, entries, (size_t)count * WIRE_HEARTBEAT_ENTRY_BYTES);
    frame_end(out, start, WIRE_HEARTBEAT);
    return HY_OK;
}

void wire_heartbeat_get(const struct wire_heartbeat *h, uint32_t i, uint16_t *group_out,
                        struct raft_message *m_out)
{
    HY_ASSERT(i < h->count);
    const uint8_t *p = h->entries + (size_t)i * WIRE_HEARTBEAT_ENTRY_BYTES;
    memset(m_out, 0, sizeof(*m_out));
    *group_out = (uint16_t)(p[0] | p[1] << 8);
    m_out->type = p[2];
    uint8_t flags = p[3];
    m_out->success = (flags & F_SUCCESS) != 0;
    m_out->quiesce = (flags & F_QUIESCE) != 0;
    uint64_t w[8];
    for (size_t k = 0; k < HY_ARRAY_LEN(w); k++) {
        w[k] = hy_load_u64le(p + 4 + 8 * k);
    }
    m_out->from = w[0];
    m_out->to = w[1];
    m_out->term = w[2];
    if (m_out->type == RAFT_MSG_APPEND) {
        m_out->prev_index = w[3];
        m_out->prev_term = w[4];
    } else {
        m_out->index = w[3];
        m_out->hint_term = w[4];
    }
    m_out->commit = w[5];
    m_out->seq = w[6];
    m_out->sent_ms = w[7];
}

/* ---- reader -------------------------------------------------------------------------------- */

void wire_reader_init(struct wire_reader *r, const struct wire_limits *limits)
{
    memset(r, 0, sizeof(*r));
    if (limits != NULL) {
        r->limits = *limits;
    } else {
        wire_limits_default(&r->limits);
    }
    HY_ASSERT(r->limits.frame_bytes_max >= WIRE_HEADER_BYTES + WIRE_RAFT_FIXED_BYTES);
}

void wire_reader_free(struct wire_reader *r)
{
    hy_free(r->entries);
    r->entries = NULL;
    r->entries_cap = 0;
}

size_t wire_reader_bytes_needed(const struct wire_reader *r)
{
    return r->frame_len;
}

static int fail(struct wire_reader *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct wire_reader *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    r->status = status;
    return status;
}

/* A cursor over one payload: every read is bounds-checked, the first overrun sets bad. */
struct cur {
    const uint8_t *p;
    size_t left;
    int bad;
};

static const uint8_t *cur_take(struct cur *c, size_t n)
{
    if (c->bad || n > c->left) {
        c->bad = 1;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint8_t cur_u8(struct cur *c)
{
    const uint8_t *p = cur_take(c, 1);
    return p != NULL ? p[0] : 0;
}

static uint16_t cur_u16(struct cur *c)
{
    const uint8_t *p = cur_take(c, 2);
    return p != NULL ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

static uint32_t cur_u32(struct cur *c)
{
    const uint8_t *p = cur_take(c, 4);
    return p != NULL ? hy_load_u32le(p) : 0;
}

static uint64_t cur_u64(struct cur *c)
{
    const uint8_t *p = cur_take(c, 8);
    return p != NULL ? hy_load_u64le(p) : 0;
}

/* HELLO and CHALLENGE. */
static int decode_hello(struct wire_reader *r, struct cur *c, uint8_t type, struct wire_hello *h)
{
    h->version = cur_u32(c);
    h->cluster_len = cur_u8(c);
    h->cluster = cur_take(c, h->cluster_len);
    h->node_len = cur_u8(c);
    h->node = cur_take(c, h->node_len);
    h->nonce = cur_take(c, WIRE_NONCE_BYTES);
    h->mac = type == WIRE_CHALLENGE ? cur_take(c, WIRE_MAC_BYTES) : NULL;
    if (c->bad || c->left != 0) {
        return fail(r, HY_EPROTO, "%s payload length does not match its fields",
                    wire_type_name(type));
    }
    if (!wire_name_valid(h->cluster, h->cluster_len) || !wire_name_valid(h->node, h->node_len)) {
        return fail(r, HY_EPROTO, "%s with an empty or unprintable name", wire_type_name(type));
    }
    return HY_OK;
}

static int decode_reject(struct wire_reader *r, struct cur *c, struct wire_reject *rj)
{
    rj->code = cur_u16(c);
    rj->text_len = cur_u16(c);
    rj->text = cur_take(c, rj->text_len);
    if (c->bad || c->left != 0) {
        return fail(r, HY_EPROTO, "REJECT payload length does not match its text length");
    }
    if (rj->code < 1 || rj->code > WIRE_REJECT_CODE_MAX || rj->text_len > WIRE_REASON_MAX) {
        return fail(r, HY_EPROTO, "REJECT with unknown code %u or text too long", rj->code);
    }
    if (!text_printable(rj->text, rj->text_len)) {
        return fail(r, HY_EPROTO, "REJECT text is not printable ASCII");
    }
    return HY_OK;
}

/* WAN_APPLY, WAN_DEMOTE, WAN_PARTS, WAN_REPLY: exactly the bytes wire_encode_wan writes. */
static int decode_wan(struct wire_reader *r, struct cur *c, uint8_t type, struct wire_wan *w)
{
    w->req_id = cur_u64(c);
    switch (type) {
    case WIRE_WAN_APPLY:
        w->slot = cur_u16(c);
        w->len = c->left;
        w->data = cur_take(c, c->left);
        break;
    case WIRE_WAN_DEMOTE:
        w->epoch = cur_u64(c);
        w->len = cur_u8(c);
        w->data = cur_take(c, w->len);
        break;
    case WIRE_WAN_REPLY:
        w->status = cur_u8(c);
        w->value = (int64_t)cur_u64(c);
        w->len = cur_u16(c);
        w->data = cur_take(c, w->len);
        break;
    default: break; /* PARTS: the id only */
    }
    if (c->bad || c->left != 0) {
        return fail(r, HY_EPROTO, "%s payload length does not match its fields",
                    wire_type_name(type));
    }
    if (type == WIRE_WAN_DEMOTE && !wire_name_valid(w->data, w->len)) {
        return fail(r, HY_EPROTO, "WAN_DEMOTE with an empty or unprintable name");
    }
    if (type == WIRE_WAN_REPLY && (w->status > WIRE_WAN_ERROR || w->len > WIRE_REASON_MAX ||
                                   !text_printable(w->data, w->len))) {
        return fail(r, HY_EPROTO,
                    "WAN_REPLY with an unknown status or a text too long or "
                    "not printable");
    }
    return HY_OK;
}

static int decode_fixed_size(struct wire_reader *r, struct cur *c, uint8_t type,
                             struct wire_frame *f)
{
    switch (type) {
    case WIRE_AUTH: f->mac = cur_take(c, WIRE_MAC_BYTES); break;
    case WIRE_WELCOME: break;
    case WIRE_PING:
    case WIRE_PONG: f->ping_token = cur_u64(c); break;
    default: HY_UNREACHABLE();
    }
    if (c->bad || c->left != 0) {
        return fail(r, HY_EPROTO, "%s payload has the wrong length", wire_type_name(type));
    }
    return HY_OK;
}

static int decode_forward(struct wire_reader *r, struct cur *c, struct wire_forward *fw)
{
    fw->req_id = cur_u64(c);
    if (c->bad) {
        return fail(r, HY_EPROTO, "FORWARD payload shorter than its request id");
    }
    fw->len = c->left;
    fw->data = cur_take(c, c->left);
    return HY_OK;
}

static void raft_decode_fixed(struct cur *c, struct raft_message *m, uint8_t *flags_out,
                              uint16_t *group_out)
{
    memset(m, 0, sizeof(*m));
    m->type = cur_u8(c);
    *flags_out = cur_u8(c);
    *group_out = cur_u16(c);
    m->n_entries = cur_u32(c);
    uint64_t *const words[16] = {
        &m->from,          &m->to,         &m->term,      &m->last_log_index,
        &m->last_log_term, &m->prev_index, &m->prev_term, &m->commit,
        &m->index,         &m->hint_term,  &m->seq,       &m->sent_ms,
        &m->snap_index,    &m->snap_term,  &m->offset,    &m->total,
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(words); i++) {
        *words[i] = cur_u64(c);
    }
    m->snap_membership.count = cur_u32(c);
    m->len = cur_u32(c);
    m->pre_vote = (*flags_out & F_PRE_VOTE) != 0;
    m->transfer = (*flags_out & F_TRANSFER) != 0;
    m->granted = (*flags_out & F_GRANTED) != 0;
    m->success = (*flags_out & F_SUCCESS) != 0;
    m->quiesce = (*flags_out & F_QUIESCE) != 0;
}

/* Reads the membership and validates the counts against the bytes left, before any is used
 * to size an allocation. */
static int raft_decode_counts(struct wire_reader *r, struct cur *c, struct raft_message *m)
{
    struct raft_membership *mb = &m->snap_membership;
    if (mb->count > RAFT_SERVERS_MAX) {
        return fail(r, HY_EPROTO, "RAFT membership count %u over %d", mb->count, RAFT_SERVERS_MAX);
    }
    for (uint32_t i = 0; i < mb->count; i++) {
        mb->servers[i].id = cur_u64(c);
        mb->servers[i].role = cur_u8(c);
    }
    if (m->n_entries > r->limits.entries_max) {
        return fail(r, HY_EPROTO, "RAFT with %u entries, over the limit %u", m->n_entries,
                    r->limits.entries_max);
    }
    uint64_t heads = (uint64_t)m->n_entries * WIRE_RAFT_ENTRY_HEAD_BYTES;
    if (c->bad || heads + m->len + raft_trailer_len(m->type) > c->left) {
        return fail(r, HY_EPROTO, "RAFT counts (%u entries, chunk %u) exceed the payload",
                    m->n_entries, m->len);
    }
    return HY_OK;
}

static int raft_decode_entries(struct wire_reader *r, struct cur *c, struct raft_message *m)
{
    if (m->n_entries > r->entries_cap) {
        r->entries = hy_xrealloc(r->entries, (size_t)m->n_entries * sizeof(*r->entries));
        r->entries_cap = m->n_entries;
    }
    uint64_t data_bytes = 0;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        r->entries[i].term = cur_u64(c);
        r->entries[i].type = cur_u32(c);
        r->entries[i].len = cur_u32(c);
        data_bytes += r->entries[i].len;
    }
    /* Checked before any data pointer is taken: the lengths must fill the payload exactly. */
    if (c->bad || data_bytes + m->len + raft_trailer_len(m->type) != c->left) {
        return fail(r, HY_EPROTO, "RAFT entry lengths do not match the payload");
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        r->entries[i].data = cur_take(c, r->entries[i].len);
    }
    m->entries = m->n_entries > 0 ? r->entries : NULL;
    m->data = cur_take(c, m->len);
    if (m->type == RAFT_MSG_SNAPSHOT) {
        m->snap_crc = cur_u32(c);
    }
    HY_ASSERT(!c->bad && c->left == 0);
    return HY_OK;
}

static int decode_raft(struct wire_reader *r, struct cur *c, struct raft_message *m,
                       uint16_t *group_out)
{
    uint8_t flags;
    raft_decode_fixed(c, m, &flags, group_out);
    if (c->bad) {
        return fail(r, HY_EPROTO, "RAFT payload shorter than its fixed part");
    }
    if ((flags & ~F_ALL) != 0) {
        return fail(r, HY_EPROTO, "RAFT with unknown flags");
    }
    int rc = raft_decode_counts(r, c, m);
    if (rc == HY_OK) {
        rc = raft_decode_entries(r, c, m);
    }
    if (rc != HY_OK) {
        return rc;
    }
    const char *reason;
    if (wire_raft_check(m, &reason) != HY_OK) {
        return fail(r, HY_EPROTO, "RAFT %s", reason);
    }
    return HY_OK;
}

/* Every entry is checked here, so wire_heartbeat_get cannot meet a bad one. */
static int decode_heartbeat(struct wire_reader *r, struct cur *c, struct wire_heartbeat *h)
{
    h->count = cur_u32(c);
    if (c->bad || (uint64_t)h->count * WIRE_HEARTBEAT_ENTRY_BYTES != c->left) {
        return fail(r, HY_EPROTO, "HEARTBEAT count does not match its payload");
    }
    h->entries = cur_take(c, c->left);
    for (uint32_t i = 0; i < h->count; i++) {
        const uint8_t *p = h->entries + (size_t)i * WIRE_HEARTBEAT_ENTRY_BYTES;
        if (p[2] != RAFT_MSG_APPEND && p[2] != RAFT_MSG_APPEND_RESP) {
            return fail(r, HY_EPROTO, "HEARTBEAT entry %u of type %u", i, p[2]);
        }
        if ((p[3] & ~F_HEARTBEAT) != 0) {
            return fail(r, HY_EPROTO, "HEARTBEAT entry %u with unknown flags", i);
        }
        /* The encoder's own rule, so that every accepted entry is one it could produce. */
        uint16_t group;
        struct raft_message m;
        wire_heartbeat_get(h, i, &group, &m);
        if (!wire_heartbeat_fits(&m)) {
            return fail(r, HY_EPROTO, "HEARTBEAT entry %u is not a heartbeat or its answer", i);
        }
    }
    return HY_OK;
}

static int decode_payload(struct wire_reader *r, uint8_t type, const uint8_t *p, size_t len,
                          struct wire_frame *f)
{
    struct cur c = {.p = p, .left = len, .bad = 0};
    memset(f, 0, sizeof(*f));
    f->type = type;
    switch (type) {
    case WIRE_HELLO:
    case WIRE_WAN_HELLO:
    case WIRE_CHALLENGE: return decode_hello(r, &c, type, &f->hello);
    case WIRE_WAN_APPLY:
    case WIRE_WAN_DEMOTE:
    case WIRE_WAN_PARTS:
    case WIRE_WAN_REPLY: return decode_wan(r, &c, type, &f->wan);
    case WIRE_REJECT: return decode_reject(r, &c, &f->reject);
    case WIRE_RAFT: return decode_raft(r, &c, &f->raft, &f->raft_group);
    case WIRE_FORWARD:
    case WIRE_FORWARD_REPLY:
    case WIRE_PUBLISH:
    case WIRE_GOSSIP:
    case WIRE_BUSY: return decode_forward(r, &c, &f->forward);
    case WIRE_HEARTBEAT: return decode_heartbeat(r, &c, &f->heartbeat);
    default: return decode_fixed_size(r, &c, type, f);
    }
}

/* Validates as much of the header as has arrived, so that a stranger (an HTTP client, a
 * Redis client on the wrong port) is refused on its first bytes. */
static int check_header(struct wire_reader *r, const uint8_t *buf, size_t len)
{
    static const uint8_t magic[4] = {'H', 'Y', 'P', 'W'};
    static_assert(WIRE_MAGIC == ((uint32_t)'H' | (uint32_t)'Y' << 8 | (uint32_t)'P' << 16 |
                                 (uint32_t)'W' << 24),
                  "magic bytes");
    if (memcmp(buf, magic, len < 4 ? len : 4) != 0) {
        return fail(r, HY_EPROTO, "bad magic (not a halyard peer)");
    }
    if (len > H_VERSION && buf[H_VERSION] != WIRE_VERSION) {
        return fail(r, HY_EPROTO, "unsupported frame version %u", buf[H_VERSION]);
    }
    if (len > H_TYPE && (buf[H_TYPE] == 0 || buf[H_TYPE] >= WIRE_TYPE_COUNT)) {
        return fail(r, HY_EPROTO, "unknown frame type %u", buf[H_TYPE]);
    }
    if (len < WIRE_HEADER_BYTES) {
        return HY_EAGAIN;
    }
    if (buf[H_FLAGS] != 0 || buf[H_FLAGS + 1] != 0) {
        return fail(r, HY_EPROTO, "unknown frame flags");
    }
    uint32_t payload = hy_load_u32le(buf + H_LEN);
    if (payload > r->limits.frame_bytes_max - WIRE_HEADER_BYTES) {
        return fail(r, HY_ETOOBIG, "frame of %u payload bytes over the limit %u", payload,
                    r->limits.frame_bytes_max);
    }
    r->frame_len = WIRE_HEADER_BYTES + payload;
    return HY_OK;
}

void wire_reader_rewind(struct wire_reader *r)
{
    r->frame_len = 0;
}

int wire_read(struct wire_reader *r, const uint8_t *buf, size_t len, size_t *consumed_out,
              struct wire_frame *out)
{
    *consumed_out = 0;
    if (r->status != HY_OK) {
        return r->status;
    }
    if (r->frame_len == 0) {
        int rc = check_header(r, buf, len);
        if (rc != HY_OK) {
            return rc;
        }
    }
    if (len < r->frame_len) {
        return HY_EAGAIN;
    }
    size_t payload = r->frame_len - WIRE_HEADER_BYTES;
    uint32_t crc = hy_crc32c(0, buf, H_CRC);
    crc = hy_crc32c(crc, buf + WIRE_HEADER_BYTES, payload);
    if (crc != hy_load_u32le(buf + H_CRC)) {
        return fail(r, HY_ECORRUPT, "frame CRC mismatch");
    }
    int rc = decode_payload(r, buf[H_TYPE], buf + WIRE_HEADER_BYTES, payload, out);
    if (rc != HY_OK) {
        return rc;
    }
    *consumed_out = r->frame_len;
    r->frame_len = 0;
    return HY_OK;
}

/* ---- handshake transcript ---------------------------------------------------------------------
 */

static void transcript_field(struct hy_buf *out, const uint8_t *p, size_t len)
{
    hy_buf_append_u32le(out, (uint32_t)len);
    hy_buf_append(out, p, len);
}

void wire_auth_transcript(struct hy_buf *out, enum wire_auth_role role, const char *cluster,
                          const char *initiator, const char *acceptor,
                          const uint8_t initiator_nonce[WIRE_NONCE_BYTES],
                          const uint8_t acceptor_nonce[WIRE_NONCE_BYTES])
{
    const char *label = role == WIRE_AUTH_BY_INITIATOR    ? "halyard-peer-v1 initiator proof"
                        : role == WIRE_AUTH_BY_ACCEPTOR   ? "halyard-peer-v1 acceptor proof"
                        : role == WIRE_AUTH_WAN_BY_SOURCE ? "halyard-wan-v1 source proof"
                                                          : "halyard-wan-v1 target proof";
    transcript_field(out, (const uint8_t *)label, strlen(label));
    transcript_field(out, (const uint8_t *)cluster, strlen(cluster));
    transcript_field(out, (const uint8_t *)initiator, strlen(initiator));
    transcript_field(out, (const uint8_t *)acceptor, strlen(acceptor));
    transcript_field(out, initiator_nonce, WIRE_NONCE_BYTES);
    transcript_field(out, acceptor_nonce, WIRE_NONCE_BYTES);
}
