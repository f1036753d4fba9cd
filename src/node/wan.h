/*
 * wan.h - links between clusters (issue 18, first slice; docs/wan.md): the pure parts.
 *
 * A link's definition lives in the metadata group's keyspace, one key per link
 * ("halyard:wan:<name>"), so that every member knows it and it travels in that group's log and
 * snapshots like the partition map. The rest of this header is what a partition leader and a
 * target need to ship committed entries in order and apply them once: the batch format, the
 * dedup rule by source index, and one (link, partition) shipper's state machine with its lag.
 * Nothing here does I/O or reads a clock: time comes in as now_ms.
 */
#ifndef HY_NODE_WAN_H
#define HY_NODE_WAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"
#include "store/store_wan.h"

#define WAN_KEY_PREFIX     "halyard:wan:"
#define WAN_POS_KEY_PREFIX "halyard:wanpos:" /* + "<link>:<partition>" = seq */
#define WAN_NAME_MAX       64
#define WAN_TARGETS_MAX    512
#define WAN_SECRET_MAX     256
#define WAN_LINKS_MAX      16
#define WAN_CA_MAX         256 /* a link's CA file path */

enum wan_mode {
    WAN_ACTIVE_PASSIVE = 0,
    WAN_ACTIVE_ACTIVE = 1, /* both clusters write; the receiver merges by the link's policies */
};

struct wan_link {
    char name[WAN_NAME_MAX + 1];
    enum wan_mode mode;
    char targets[WAN_TARGETS_MAX + 1]; /* "host:peerport[,host:peerport...]" */
    char secret[WAN_SECRET_MAX + 1];   /* the target's password (requirepass); empty: none */
    struct wan_policy_rule rules[WAN_POLICIES_MAX]; /* active-active: first match decides */
    size_t nrules;
    char keys[WAN_PATTERN_MAX + 1]; /* only changes whose first key matches ship; "": all */
    int tls;                        /* the link speaks TLS to the target's TLS client port */
    char tls_ca[WAN_CA_MAX + 1];    /* the CA file its certificate is checked against; "": the
                                     * member's tls-ca-cert-file/-dir (or the system's) */
};

/* A link name: 1..64 of [A-Za-z0-9_.-]. */
int wan_name_ok(const uint8_t *p, size_t len);
/* A target list: 1..16 comma-separated host:port, each port 1..65535, no spaces. */
int wan_targets_ok(const uint8_t *p, size_t len);
/* A secret: 0..256 printable ASCII bytes without spaces (it is stored space-separated). */
int wan_secret_ok(const uint8_t *p, size_t len);
/* A POLICY pattern: 1..128 printable ASCII bytes without spaces. */
int wan_pattern_ok(const uint8_t *p, size_t len);
const char *wan_mode_name(enum wan_mode m);
/* The stored value, "<mode> <targets> <secret>" (the secret may be empty), then " KEYS=<glob>"
 * when the link ships only some keys, then " TLS" or " TLS=<CA file>" when it speaks TLS, then,
 * for each policy rule, " <POLICY>=<pattern>", and back. decode returns 0 on a value HALYARD WAN
 * ADD never writes. */
void wan_link_encode(const struct wan_link *l, struct hy_buf *out);
int wan_link_decode(const uint8_t *name, size_t name_len, const uint8_t *p, size_t len,
                    struct wan_link *out);

/*
 * One (link, partition) shipper on the source partition's leader. acked is the durable
 * position (kept in the partition's replicated state and read back at every new leader);
 * shipped is what is on the wire beyond it. A batch is resent from acked + 1 when its answer
 * does not come within timeout_ms (at least once on the wire); failures back off, doubling
 * from backoff_min_ms up to backoff_max_ms.
 */
struct wan_shipper {
    uint64_t acked;             /* the target applied every shipped entry up to here */
    uint64_t shipped;           /* the last index sent and not yet answered (== acked: none) */
    uint64_t sent_ms;           /* when that batch left */
    uint64_t retry_at_ms;       /* no batch before this (after a failure) */
    uint64_t backoff_ms;        /* the next failure's wait */
    uint64_t oldest_unacked_ms; /* when the first entry beyond acked was committed (0: none) */
    uint64_t batches, entries, failures;
    uint64_t timeout_ms, backoff_min_ms, backoff_max_ms;
};

void wan_shipper_init(struct wan_shipper *s, uint64_t acked, uint64_t timeout_ms,
                      uint64_t backoff_min_ms, uint64_t backoff_max_ms);
/* The source committed entries up to commit_index at now_ms (called as they commit, so that
 * the lag in ms counts from the first one the target lacks). */
void wan_shipper_committed(struct wan_shipper *s, uint64_t commit_index, uint64_t now_ms);
/* Whether a batch starting after *from should leave now: 1 with *from set (acked, or the last
 * index of a batch timed out: it restarts from acked), 0 while one is in flight or the
 * backoff holds, or nothing is committed beyond acked. */
int wan_shipper_due(struct wan_shipper *s, uint64_t commit_index, uint64_t now_ms, uint64_t *from);
/* A batch whose last index is `last` left at now_ms. */
void wan_shipper_sent(struct wan_shipper *s, uint64_t last, uint64_t now_ms);
/* The target applied everything up to `upto`. An answer for less than acked (a late answer
 * to a resend) changes nothing. commit_index says whether entries remain unacked. */
void wan_shipper_acked(struct wan_shipper *s, uint64_t upto, uint64_t entries,
                       uint64_t commit_index, uint64_t now_ms);
/* The batch in flight failed (refused, connection lost): resent from acked after backoff. */
void wan_shipper_failed(struct wan_shipper *s, uint64_t now_ms);

/*
 * A partition's outbox as its snapshots keep it (docs/disk-format.md, version 10; node/wan_ship.c
 * owns the outbox): where it starts and what it has seen, then its records, each a sequence
 * number (u64 LE), the time it was captured (ms, u64 LE), a length (u32 LE) and that many bytes
 * of a store entry. decode checks the frame (records whole, sequence numbers strictly
 * increasing and none below from_seq, overflow 0 or 1) and returns 0 when it is malformed; the
 * records stay in the input (recs, recs_len).
 */
#define WAN_OUTBOX_REC_HEADER 20u
struct wan_outbox_image {
    uint64_t from_seq, next_apply, last_seq, skipped, count;
    int overflow;
    const uint8_t *recs;
    size_t recs_len;
};
void wan_outbox_image_encode(const struct wan_outbox_image *im, struct hy_buf *out);
int wan_outbox_image_decode(const uint8_t *p, size_t len, struct wan_outbox_image *im);

/*
 * A cluster's role in region failover (docs/wan.md "Region failover"), kept in its metadata
 * group as WAN_ROLE_KEY so that every member reads the same one and it survives restarts:
 * none (the members' own wan-passive settings apply), primary (HALYARD WAN PROMOTE: writable
 * whatever wan-passive says, and it refuses active-passive batches, whose sender it tells to
 * step down) or passive (demoted by a primary promoted later: client writes are refused and
 * its active-passive links ship nothing). epoch is a counter, not a clock: a promotion takes
 * the epoch of the role this cluster holds plus one (its own last promotion, or the one it
 * stepped down for, which the links carry: a primary's links tell their targets its epoch), so
 * it follows every promotion this cluster has heard of. by is the promoted cluster's name; of
 * two promotions the higher (epoch, origin id of by, by) wins (wan_promotion_cmp).
 */
#define WAN_ROLE_KEY "halyard:wanrole"
enum wan_role_kind { WAN_ROLE_NONE = 0, WAN_ROLE_PRIMARY = 1, WAN_ROLE_PASSIVE = 2 };
struct wan_role {
    enum wan_role_kind kind;
    uint64_t epoch;
    char by[WAN_NAME_MAX + 1];
    /* A primary promoted in place of one source only (HALYARD WAN PROMOTE FROM name): only that
     * source's active-passive batches are refused; "": every source's. */
    char from[WAN_NAME_MAX + 1];
};
/* The stored value, "primary <epoch> <by>[ from <name>]" or "passive <epoch> <by>", and back;
 * decode returns
 * 0 on a value HALYARD WAN PROMOTE|DEMOTE never writes. */
void wan_role_encode(const struct wan_role *r, struct hy_buf *out);
int wan_role_decode(const uint8_t *p, size_t len, struct wan_role *out);
/* The order of two promotions (epoch, cluster name): <0, 0 or >0 as a is older than, the same
 * as or newer than b. A total order on distinct (epoch, name) pairs: the epoch, then the
 * origin id of the name (wan_origin_id), then the name's bytes. */
int wan_promotion_cmp(uint64_t epoch_a, const char *by_a, uint64_t epoch_b, const char *by_b);
/* Whether a cluster in role `have` steps down for the primary `by` promoted at `epoch`: no
 * when it is itself a primary whose promotion is that one or wins over it, or already passive
 * for that promotion or one that wins over it. */
int wan_role_yields(const struct wan_role *have, uint64_t epoch, const char *by);
/* The refusal a primary answers an active-passive batch with, and its parse on the sender:
 * "DEMOTED <epoch> <by> ..." (the error's first word is its code). 1 when err is one. */
#define WAN_DEMOTED_CODE "DEMOTED"
int wan_demoted_parse(const char *err, uint64_t *epoch_out, char *by_out, size_t by_cap);

/* A resync's progress for WAN STATUS: done of about total, 0-100 (99 at most until finished),
 * and its bar, WAN_BAR_WIDTH characters of '#' and '.' (cap > WAN_BAR_WIDTH). */
#define WAN_BAR_WIDTH 20
unsigned wan_progress_percent(uint64_t done, uint64_t total, int finished);
void wan_progress_bar(unsigned percent, char *out, size_t cap);

struct wan_lag {
    uint64_t entries; /* committed at the source, not yet acknowledged by the target */
    uint64_t ms;      /* how long the oldest of them has waited (0 when none) */
};
struct wan_lag wan_shipper_lag(const struct wan_shipper *s, uint64_t commit_index, uint64_t now_ms);

#endif
