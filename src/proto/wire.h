/*
 * wire.h - the peer wire codec: the frames halyard nodes exchange on the peer port
 * (docs/peer-protocol.md describes every byte). Pure: no I/O, no clock, no randomness; the
 * shell (src/io/peer.c) moves the bytes, draws the nonces and computes the HMACs.
 *
 * Every frame is a 16-byte header (magic, version, type, flags, payload length, CRC32C over
 * the header's first 12 bytes and the payload), then the payload; all integers little-endian.
 * Limits are hard: a frame that breaks one is refused before its payload is buffered, so a
 * hostile or broken peer can make the reader hold at most frame_bytes_max bytes.
 *
 * Invariants:
 *  - the encoder never produces a frame the decoder refuses (both run wire_raft_check);
 *  - the reader's errors are sticky: after HY_EPROTO/HY_ECORRUPT/HY_ETOOBIG the connection
 *    is done and every further call returns the same error;
 *  - decoded pointers (names, MACs, payloads, entry data, snapshot chunks) borrow from the
 *    caller's input buffer; the raft entry array borrows from the reader.
 */
#ifndef HY_WIRE_H
#define HY_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"
#include "raft/raft.h"

#define WIRE_MAGIC        0x57505948u /* the bytes "HYPW" read as a little-endian u32 */
#define WIRE_VERSION      1
#define WIRE_HEADER_BYTES 16
#define WIRE_NONCE_BYTES  32
#define WIRE_MAC_BYTES    32 /* HMAC-SHA256 */
#define WIRE_NAME_MAX     64 /* cluster names and node ids */
#define WIRE_REASON_MAX   256

/* Snapshot chunks and AppendEntries batches are far below this; the headroom covers a large
 * value plus the message's fixed part. */
#define WIRE_FRAME_BYTES_DEFAULT   (64u * 1024 * 1024 + 64 * 1024)
#define WIRE_ENTRIES_MAX_DEFAULT   65536u
#define WIRE_RAFT_FIXED_BYTES      144
#define WIRE_RAFT_SERVER_BYTES     9
#define WIRE_RAFT_ENTRY_HEAD_BYTES 16
#define WIRE_HEARTBEAT_ENTRY_BYTES 68 /* group, type, flags, from, to, term, 5 more words */

enum wire_type {
    WIRE_HELLO = 1,     /* initiator: version, cluster, node id, nonce */
    WIRE_CHALLENGE,     /* acceptor: its own HELLO fields + MAC over the initiator's nonce */
    WIRE_AUTH,          /* initiator: MAC over the acceptor's nonce */
    WIRE_WELCOME,       /* acceptor: the initiator is authenticated */
    WIRE_REJECT,        /* either side, then close: reason code + text */
    WIRE_RAFT,          /* one struct raft_message */
    WIRE_PING,          /* liveness probe, token echoed in PONG */
    WIRE_PONG,          /* */
    WIRE_FORWARD,       /* a client request proxied to the leader: req id + opaque bytes */
    WIRE_FORWARD_REPLY, /* its reply: req id + opaque bytes */
    WIRE_PUBLISH,       /* a PUBLISH for the receiver's subscribers: id (0) + opaque bytes */
    WIRE_HEARTBEAT,     /* the node pair's coalesced heartbeat: every group's heartbeats and
                           their answers of one loop turn (none: node liveness only) */
    WIRE_GOSSIP,        /* one membership message (src/membership): id (0) + opaque bytes */
    WIRE_BUSY,          /* the sender's loop is held by a script: id (0) + opaque bytes */
    /* A WAN link (docs/multi-region.md "The link's transport"): another cluster's source
     * connects to this peer port, proves this cluster's secret and sends only these. */
    WIRE_WAN_HELLO,  /* the link's HELLO: version, source cluster, link name, nonce */
    WIRE_WAN_APPLY,  /* req id, the slot of the batch's first key, the batch's bytes */
    WIRE_WAN_DEMOTE, /* req id, the promotion epoch, the promoted cluster's name */
    WIRE_WAN_PARTS,  /* req id: the target's partition count, please */
    WIRE_WAN_REPLY,  /* req id, status (enum wire_wan_status), a value, a printable text */
    WIRE_TYPE_COUNT
};

enum wire_reject_code {
    WIRE_REJECT_PROTOCOL = 1, /* malformed frame or unexpected frame in this state */
    WIRE_REJECT_VERSION,      /* protocol version not supported */
    WIRE_REJECT_CLUSTER,      /* different cluster name */
    WIRE_REJECT_UNKNOWN_NODE, /* the node id is not a configured peer (or not the expected) */
    WIRE_REJECT_AUTH,         /* the cluster secret proof failed */
    WIRE_REJECT_SHUTDOWN,     /* the node is stopping */
    WIRE_REJECT_CODE_MAX = WIRE_REJECT_SHUTDOWN
};

struct wire_limits {
    uint32_t frame_bytes_max; /* header + payload */
    uint32_t entries_max;     /* raft entries per RAFT frame */
};

void wire_limits_default(struct wire_limits *l);

/* HELLO and CHALLENGE (mac set only in CHALLENGE). Strings are not NUL-terminated. */
struct wire_hello {
    uint32_t version;
    const uint8_t *cluster;
    size_t cluster_len;
    const uint8_t *node;
    size_t node_len;
    const uint8_t *nonce; /* WIRE_NONCE_BYTES */
    const uint8_t *mac;   /* WIRE_MAC_BYTES, CHALLENGE only */
};

struct wire_reject {
    uint16_t code; /* enum wire_reject_code */
    const uint8_t *text;
    size_t text_len;
};

/* FORWARD and FORWARD_REPLY. */
struct wire_forward {
    uint64_t req_id;
    const uint8_t *data;
    size_t len;
};

/* HEARTBEAT: count entries of WIRE_HEARTBEAT_ENTRY_BYTES, read with wire_heartbeat_get. */
/* The answer of a WAN request: an integer (APPLY: the highest sequence number the target
 * holds from the source; PARTS: the partition count), a plain OK, or an error's text. */
enum wire_wan_status { WIRE_WAN_INTEGER = 0, WIRE_WAN_OK = 1, WIRE_WAN_ERROR = 2 };

/* WAN_APPLY, WAN_DEMOTE, WAN_PARTS and WAN_REPLY (the fields each one carries). */
struct wire_wan {
    uint64_t req_id;
    uint16_t slot;       /* APPLY */
    uint64_t epoch;      /* DEMOTE */
    uint8_t status;      /* REPLY: enum wire_wan_status */
    int64_t value;       /* REPLY */
    const uint8_t *data; /* APPLY: the batch; DEMOTE: the name (wire_name_valid); REPLY: text */
    size_t len;
};

struct wire_heartbeat {
    uint32_t count;
    const uint8_t *entries; /* borrowed from the input, checked by the reader */
};

struct wire_frame {
    uint8_t type;        /* enum wire_type */
    uint16_t raft_group; /* RAFT: the Raft group the message belongs to */
    union {
        struct wire_hello hello;         /* HELLO, CHALLENGE */
        const uint8_t *mac;              /* AUTH */
        struct wire_reject reject;       /* REJECT */
        struct raft_message raft;        /* RAFT */
        uint64_t ping_token;             /* PING, PONG */
        struct wire_forward forward;     /* FORWARD, FORWARD_REPLY, PUBLISH, GOSSIP, BUSY */
        struct wire_heartbeat heartbeat; /* HEARTBEAT */
        struct wire_wan wan;             /* WAN_APPLY, WAN_DEMOTE, WAN_PARTS, WAN_REPLY */
    };
};

/* ---- reader -------------------------------------------------------------------------------- */

struct wire_reader {
    struct wire_limits limits;
    uint32_t frame_len;         /* header + payload of the frame in progress; 0 = unknown */
    struct raft_entry *entries; /* decoded RAFT entries (reader-owned, reused) */
    uint32_t entries_cap;
    int status;      /* sticky error, HY_OK while healthy */
    char error[128]; /* the reason, set with status */
};

/* Copies *limits (NULL: defaults). Allocates nothing until a RAFT frame carries entries. */
void wire_reader_init(struct wire_reader *r, const struct wire_limits *limits);
void wire_reader_free(struct wire_reader *r);
/* Forgets the frame in progress: the caller moved its input, and the next call reads a frame
 * header again at buf[0]. A sticky error stays. */
void wire_reader_rewind(struct wire_reader *r);

/*
 * Tries to decode one frame from buf[0..len), the connection's unconsumed input.
 * Returns HY_OK with *out filled and *consumed_out = the frame's length (drop those bytes
 * before the next call); *out's pointers borrow from buf (until those bytes are dropped) and
 * from r (until the next call). Returns HY_EAGAIN when more bytes are needed (*consumed_out
 * = 0), or a sticky error with the reason in r->error: HY_EPROTO (bad magic, version, type,
 * field), HY_ECORRUPT (CRC mismatch), HY_ETOOBIG (length over frame_bytes_max).
 * Between calls buf[0] must stay the start of the frame in progress; bytes given before are
 * given again unchanged. Work per call is O(1) until the whole frame has arrived.
 */
int wire_read(struct wire_reader *r, const uint8_t *buf, size_t len, size_t *consumed_out,
              struct wire_frame *out) HY_MUST_CHECK;

/* The total input length the frame in progress needs (known once its header arrived), else
 * 0: lets the shell reserve room for a large frame in one step. */
size_t wire_reader_bytes_needed(const struct wire_reader *r);

/* ---- encoders: each appends one complete frame to out ---------------------------------------- */

/* HELLO (mac NULL) or CHALLENGE (mac set); wire_encode_wan_hello: a WAN link's HELLO (mac
 * NULL, cluster: the source cluster's name, node: the link's name). Returns HY_EINVAL for a name
 * that is empty, too long or not printable ASCII. */
int wire_encode_hello(struct hy_buf *out, const struct wire_hello *h) HY_MUST_CHECK;
int wire_encode_wan_hello(struct hy_buf *out, const struct wire_hello *h) HY_MUST_CHECK;
void wire_encode_auth(struct hy_buf *out, const uint8_t mac[WIRE_MAC_BYTES]);
void wire_encode_welcome(struct hy_buf *out);
/* The text is cut at WIRE_REASON_MAX bytes. */
void wire_encode_reject(struct hy_buf *out, uint16_t code, const char *text);
void wire_encode_ping(struct hy_buf *out, uint8_t type, uint64_t token);
/* type is WIRE_FORWARD, WIRE_FORWARD_REPLY, WIRE_PUBLISH, WIRE_GOSSIP or WIRE_BUSY. HY_ETOOBIG when
 * over l->frame_bytes_max. */
int wire_encode_forward(struct hy_buf *out, uint8_t type, uint64_t req_id, const uint8_t *data,
                        size_t len, const struct wire_limits *l) HY_MUST_CHECK;
/* type is WIRE_WAN_APPLY, WIRE_WAN_DEMOTE, WIRE_WAN_PARTS or WIRE_WAN_REPLY, with the fields
 * struct wire_wan says it carries. HY_EINVAL for a DEMOTE name wire_name_valid refuses, a REPLY
 * status out of range or a REPLY text over WIRE_REASON_MAX or not printable; HY_ETOOBIG when
 * over l->frame_bytes_max; out is then unchanged. */
int wire_encode_wan(struct hy_buf *out, uint8_t type, const struct wire_wan *w,
                    const struct wire_limits *l) HY_MUST_CHECK;
/* HY_EINVAL for a message wire_raft_check refuses, HY_ETOOBIG when over a limit; out is then
 * unchanged. */
int wire_encode_raft(struct hy_buf *out, uint16_t group, const struct raft_message *m,
                     const struct wire_limits *l) HY_MUST_CHECK;

/*
 * The coalesced heartbeat (DESIGN.md §7): instead of one RAFT frame per group per heartbeat,
 * the messages that are heartbeats (an APPEND without entries) or their answers (APPEND_RESP)
 * travel as 68-byte entries of one HEARTBEAT frame per node pair and loop turn. Nothing is lost
 * in the translation: every field those two types use is kept.
 *
 * wire_heartbeat_fits(m): 1 when m can travel as an entry. wire_heartbeat_add appends m's
 * entry to `entries` (a batch being built; the caller counts them) and returns HY_OK, or
 * HY_EINVAL when m does not fit (entries unchanged). wire_encode_heartbeat frames `count`
 * entries (0 is a valid frame: node liveness only); HY_ETOOBIG when over l->frame_bytes_max.
 * wire_heartbeat_get decodes entry i (< h->count) of a frame the reader accepted.
 */
int wire_heartbeat_fits(const struct raft_message *m);
int wire_heartbeat_add(struct hy_buf *entries, uint16_t group,
                       const struct raft_message *m) HY_MUST_CHECK;
int wire_encode_heartbeat(struct hy_buf *out, const uint8_t *entries, uint32_t count,
                          const struct wire_limits *l) HY_MUST_CHECK;
void wire_heartbeat_get(const struct wire_heartbeat *h, uint32_t i, uint16_t *group_out,
                        struct raft_message *m_out);

/* Field rules of a raft message on the wire (types, flags, counts, per-type fields). Returns
 * HY_OK, or HY_EPROTO with a static reason in *reason_out. */
int wire_raft_check(const struct raft_message *m, const char **reason_out) HY_MUST_CHECK;

/* Exact encoded frame length of m (header included), or 0 when it cannot be encoded. */
size_t wire_raft_frame_len(const struct raft_message *m);

/* ---- handshake helpers ------------------------------------------------------------------------
 */

/* 1 when s[0..len) is a valid cluster name / node id: 1..WIRE_NAME_MAX bytes of printable
 * ASCII without spaces (names reach logs, so no control bytes). */
int wire_name_valid(const uint8_t *s, size_t len);

/* The WAN roles label a link's proofs (the source, the target cluster's node): a member's
 * proof is no link's, nor the other way round. */
enum wire_auth_role {
    WIRE_AUTH_BY_INITIATOR = 1,
    WIRE_AUTH_BY_ACCEPTOR = 2,
    WIRE_AUTH_WAN_BY_SOURCE = 3,
    WIRE_AUTH_WAN_BY_TARGET = 4,
};

/*
 * Appends to out the bytes a side MACs to prove the cluster secret: a role label, the cluster
 * name, both node ids and both nonces, each length-prefixed. Including both fresh nonces means
 * neither side can replay an old proof; the role label means a proof cannot be reflected back.
 */
void wire_auth_transcript(struct hy_buf *out, enum wire_auth_role role, const char *cluster,
                          const char *initiator, const char *acceptor,
                          const uint8_t initiator_nonce[WIRE_NONCE_BYTES],
                          const uint8_t acceptor_nonce[WIRE_NONCE_BYTES]);

const char *wire_type_name(uint8_t type);
const char *wire_reject_name(uint16_t code);

#endif
