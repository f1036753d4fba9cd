/*
 * membership.h - who is alive: SWIM gossip with Lifeguard's refinements and a phi-accrual
 * detector per directly watched peer (docs/architecture.md "Failure detection"). Pure: no
 * I/O, no clock, no global randomness. Time arrives as now_ms on every call; randomness comes
 * from a PRNG seeded at init; messages leave through send_cb and state changes through
 * state_cb, both called synchronously from inside the call that caused them.
 *
 * The protocol (Das et al., "SWIM", 2002; Dadgar et al., "Lifeguard", 2018):
 *  - every probe period this node pings one member, taken in turn from a shuffled list that
 *    is reshuffled after each full pass; without an ack within the probe timeout it asks
 *    `indirect_probes` other members to ping the target for it (PING_REQ); without any ack by
 *    the end of the period the target becomes SUSPECT;
 *  - a SUSPECT member that does not refute (an ALIVE of a higher incarnation, which only it
 *    may issue) before its suspicion timeout becomes DEAD; the timeout starts at its maximum
 *    and shrinks towards its minimum as independent suspicions of the same incarnation arrive;
 *  - updates (ALIVE with the member's metadata, SUSPECT, DEAD, LEFT) ride on probes and acks
 *    and, every gossip period, go to gossip_fanout random members (memberlist's gossip timer:
 *    a refutation must outrun the suspicion it answers); each is sent at most
 *    retransmit_mult * ceil(log10(n + 1)) times;
 *  - local health (the Lifeguard multiplier, 0..lhm_max): a probe that failed without the
 *    helpers' NACKs, or a suspicion of this node that it had to refute, raises it; a
 *    successful probe lowers it; the probe period and timeout are scaled by (1 + lhm), so a
 *    node that is itself slow stops accusing healthy ones;
 *  - a starting node asks three members for their whole view (SYNC, memberlist's push-pull on
 *    join), and so does a node back from a pause past the minimum suspicion timeout or told
 *    it was held dead (it missed what the others said meanwhile), once per longest
 *    suspicion timeout; a node that hears a stale update (an older incarnation than its view holds)
 *    answers its sender with the current state, so an old suspicion cannot outlive its
 *    refutation in a view that missed it;
 *  - buddy system: a ping to a member this node holds SUSPECT carries that suspicion first,
 *    and so does an answer to a member this node holds SUSPECT or DEAD, so the member learns
 *    of it in one hop and can refute;
 *  - loop-lag grace: every turn measures how late it came (its loop did not run meanwhile:
 *    a starved CPU, a long callback); twice the peak over the last lag_window_ms is added to
 *    every silence this node judges (the probe's deadlines, phi's acceptable pause, the
 *    suspicion timeout unless this node's link to the suspect broke), because on a host where
 *    this node's loop stalls that long, its peers' loops (and their acks) stall as long: a
 *    silence within it is not evidence of a failure. A watched member that refutes a
 *    suspicion after its heartbeats were silent was such a stall too: its silence joins the
 *    lag. A turn later than the minimum suspicion timeout counts only when no news that
 *    this node was declared dead came within the longest timeout (else it was a pause);
 *  - a turn that comes stall_ms late judges nothing and moves its pending deadlines by the
 *    time it did not run (the answers it waited for may sit unread in its sockets);
 *  - phi accrual (Hayashibara et al., 2004): for peers whose heartbeats the shell reports
 *    (membership_heartbeat), phi = -log10(1 - F(elapsed)) with F the normal CDF of the
 *    inter-arrival window (mean + acceptable pause, stddev at least the minimum); phi over
 *    the threshold is this node's own suspicion, exactly like a failed probe;
 *  - the ring: heartbeats flow, and phi watches, only on the links to this node's ring
 *    neighbours, the ring_k members after it and the ring_k before it in the order of the
 *    names of the members not LEFT (membership_ring), so n nodes carry about 2 * ring_k * n
 *    beaconed links, not n * (n - 1); every other member is watched by the probes alone. A
 *    change of the ring drops the window of a link that left it and gives a link that joined
 *    it an empty one, judged only once phi_min_samples heartbeats came on it.
 *
 * Invariants:
 *  - a member's incarnation never decreases in any node's view;
 *  - only a member itself raises its incarnation (to refute, or to publish new metadata);
 *  - state changes reported through state_cb are exactly the changes of the view;
 *  - every queue is bounded: pending relays (MEMBERSHIP_RELAYS_MAX), updates per message
 *    (MEMBERSHIP_PIGGYBACK_MAX), members (members_max).
 */
#ifndef HY_MEMBERSHIP_H
#define HY_MEMBERSHIP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/prng.h"
#include "common/status.h"

#define MEMBERSHIP_NAME_MAX         64
#define MEMBERSHIP_ADDR_MAX         64
#define MEMBERSHIP_ZONE_MAX         32
#define MEMBERSHIP_VERSION_MAX      16
#define MEMBERSHIP_PIGGYBACK_MAX    8
#define MEMBERSHIP_RELAYS_MAX       32
#define MEMBERSHIP_PHI_WINDOW_MAX   200
#define MEMBERSHIP_SUSPECTORS_MAX   8
/* The largest ring_k (ring neighbours each way). */
#define MEMBERSHIP_RING_K_MAX       8
/* The loop-lag window's buckets (peak hold over lag_window_ms, see membership_grace). */
#define MEMBERSHIP_LAG_BUCKETS      6
/* One probe period in this many pings a DEAD member instead (see dead_target). */
#define MEMBERSHIP_DEAD_PROBE_EVERY 5
/* SYNC requests a node sends when it sets out to learn the whole view (each to a random
 * member, one a probe period): a start, a pause past the minimum suspicion timeout, news that
 * it was held dead. One lost request or answer must not leave a death unknown. */
#define MEMBERSHIP_SYNC_REQUESTS    3
/* Incarnations above this are refused by the decoder: a member would need 2^48 refutations to
 * reach it, and room above keeps incarnation + 1 from wrapping (a fuzzer-found crash). */
#define MEMBERSHIP_INCARNATION_MAX  (1ull << 48)
/* The largest encoded message: header + target + piggybacked updates at their largest. */
#define MEMBERSHIP_MSG_BYTES_MAX    2304

enum membership_state { MEMBERSHIP_ALIVE, MEMBERSHIP_SUSPECT, MEMBERSHIP_DEAD, MEMBERSHIP_LEFT };

/* Static text: "alive", "suspect", "dead", "left". */
const char *membership_state_name(int state);

/* What a member says about itself; spread with its ALIVE updates. */
struct membership_meta {
    char addr[MEMBERSHIP_ADDR_MAX + 1];       /* host:port clients use */
    char zone[MEMBERSHIP_ZONE_MAX + 1];       /* may be empty */
    char version[MEMBERSHIP_VERSION_MAX + 1]; /* halyard version */
    uint32_t load;                            /* e.g. connected clients */
};

struct membership_update {
    uint8_t state; /* enum membership_state */
    uint64_t incarnation;
    char name[MEMBERSHIP_NAME_MAX + 1];
    char origin[MEMBERSHIP_NAME_MAX + 1]; /* SUSPECT: who suspects (empty otherwise) */
    struct membership_meta meta;          /* ALIVE only (zeroed otherwise) */
};

enum membership_msg_type {
    MEMBERSHIP_PING = 1, /* seq, target (the recipient, checked), updates */
    MEMBERSHIP_ACK,      /* seq of the ping (or ping-req) it answers, updates */
    MEMBERSHIP_PING_REQ, /* seq, target: ping target for me and relay its ack */
    MEMBERSHIP_NACK,     /* seq: the relay's ping to the target went unanswered */
    MEMBERSHIP_GOSSIP,   /* updates only, to a few random members each gossip period */
    MEMBERSHIP_SYNC,     /* a starting node asks for the whole view (answered in GOSSIPs) */
    MEMBERSHIP_MSG_TYPE_MAX = MEMBERSHIP_SYNC
};

struct membership_msg {
    uint8_t type;
    uint32_t seq;
    char target[MEMBERSHIP_NAME_MAX + 1]; /* PING, PING_REQ; empty otherwise */
    uint32_t update_count;                /* <= MEMBERSHIP_PIGGYBACK_MAX */
    struct membership_update updates[MEMBERSHIP_PIGGYBACK_MAX];
};

/* The message codec (docs/peer-protocol.md "GOSSIP"): all integers little-endian, names as
 * u8 length + bytes (printable ASCII, non-empty where required). encode appends to out and
 * asserts that msg is valid; decode reads untrusted bytes: HY_OK, or HY_EPROTO with *msg
 * unspecified (never a crash, never a read outside buf). */
void membership_msg_encode(struct hy_buf *out, const struct membership_msg *msg);
int membership_msg_decode(const uint8_t *buf, size_t len, struct membership_msg *msg) HY_MUST_CHECK;

/* Test only: known bugs the simulator's checks must catch. */
enum membership_mutation {
    MEMBERSHIP_MUT_NONE,
    MEMBERSHIP_MUT_NO_REFUTE,  /* a suspected member does not refute */
    MEMBERSHIP_MUT_NO_SUSPECT, /* a failed probe suspects nobody */
    MEMBERSHIP_MUT_INC_RESET,  /* a refutation resets the incarnation to 0 */
    MEMBERSHIP_MUT_COUNT
};

struct membership_config {
    uint32_t probe_interval_ms;  /* one probe per period (default 200) */
    uint32_t probe_timeout_ms;   /* direct ack deadline, < probe_interval_ms (default 100) */
    uint32_t indirect_probes;    /* k helpers asked with PING_REQ (default 3) */
    uint32_t suspicion_mult;     /* min timeout = mult * max(1, log10 n) * interval (3) */
    uint32_t suspicion_max_mult; /* max timeout = this * min timeout (default 6) */
    uint32_t gossip_interval_ms; /* pending updates go to gossip_fanout members this often
                                    (memberlist's gossip timer; default 100) */
    uint32_t gossip_fanout;      /* default 3 */
    uint32_t retransmit_mult;    /* sends per update = mult * ceil(log10(n + 1)) (default 4) */
    uint32_t lhm_max;            /* the local health multiplier's ceiling (default 8) */
    double phi_threshold;        /* suspect a watched peer above this phi (default 8) */
    uint32_t phi_window;         /* inter-arrival samples kept (<= WINDOW_MAX; default 100) */
    uint32_t phi_min_samples;    /* phi is not judged before this many samples (default 3) */
    uint32_t phi_min_stddev_ms;  /* floor of the stddev (default 50) */
    uint32_t phi_pause_ms;       /* acceptable pause added to the mean (default 100) */
    uint32_t members_max;        /* the view's bound (default 1024) */
    uint32_t stall_ms;           /* a tick this late means this node did not run: it judges
                                    nothing on that turn (default 100; 0: off) */
    uint32_t lag_window_ms;      /* this node's loop lag is remembered this long: twice its
                                    peak is the grace added to every silence it judges
                                    (default 30000; 0: off) */
    uint32_t lag_grace_max_ms;   /* the grace's ceiling (default 2000) */
    uint32_t ring_k;             /* ring neighbours each way whose links carry heartbeats
                                    (1..MEMBERSHIP_RING_K_MAX; default 2) */
    int mutation;                /* enum membership_mutation; 0 in production */
};

void membership_config_default(struct membership_config *cfg);

/* Called synchronously; pointers are borrowed for the call. */
struct membership_callbacks {
    void *ctx;
    void (*send_cb)(void *ctx, const char *to, const struct membership_msg *msg);
    /* Member `name` moved from `from` to `to` (enum membership_state) in this view. */
    void (*state_cb)(void *ctx, const char *name, int from, int to, uint64_t incarnation);
};

struct membership_phi;

struct membership_member {
    char name[MEMBERSHIP_NAME_MAX + 1];
    uint8_t state;
    uint8_t is_self;
    uint64_t incarnation;
    struct membership_meta meta;
    uint64_t state_since_ms;   /* when the current state was taken */
    uint64_t suspect_deadline; /* SUSPECT: DEAD at this time unless refuted */
    uint64_t suspect_start_ms;
    uint64_t suspect_deferred_ms; /* time this node did not run since (defer_deadlines) */
    uint64_t suspect_gap_ms;      /* the longest heartbeat gap heard while SUSPECT */
    uint8_t gap_suspected;        /* suspected since its last heartbeat (membership_heartbeat) */
    uint64_t suspect_grace;       /* the loop-lag grace its deadline includes (the largest) */
    uint8_t suspect_link;         /* this node's link to it broke since: no grace */
    uint32_t confirmations;       /* independent suspicions beyond the first */
    uint64_t suspectors[MEMBERSHIP_SUSPECTORS_MAX]; /* name hashes of who suspected */
    uint8_t listed;                                 /* in the suspects list */
    uint8_t phi_graced; /* phi is over its threshold only without the grace (counted once) */
    uint8_t ring;       /* one of this node's ring neighbours (membership_ring) */
    uint32_t tx_left;   /* piggyback sends left for this member's current update */
    struct membership_phi *phi; /* ring neighbours only; NULL for the others */
};

struct membership_stats {
    uint64_t probes, probes_failed, indirect_probes, suspicions, refutations, deaths;
    /* This node's own suspicions by cause (suspicions also counts those learned from others):
     * a probe without an ack, phi over its threshold, a broken link. */
    uint64_t suspect_probe, suspect_phi, suspect_link;
    /* Turns judged nothing because this node had not run for stall_ms (membership_tick). */
    uint64_t stalls, stall_max_ms;
    /* Of those, stalls during which the process was mostly not runnable (stopped, or
     * blocked), by the shell's measure (membership_note_runnable): never learned as lag. */
    uint64_t stalls_stopped;
    /* Suspicions the loop-lag grace held back: a probe without its ack, or phi over its
     * threshold, that would have suspected a member without the grace. */
    uint64_t grace_saved_probe, grace_saved_phi;
    /* Suspicions of a member that it refuted: its silence joined the loop lag. */
    uint64_t peer_stalls;
    /* Heartbeat gaps of live members past their rhythm: stalls nobody suspected. */
    uint64_t peer_gaps;
    uint64_t msgs_sent, msgs_received, msgs_refused;
};

struct membership_relay {
    int used;
    uint32_t seq;        /* our ping's seq to the target */
    uint32_t origin_seq; /* the requester's seq */
    char origin[MEMBERSHIP_NAME_MAX + 1];
    uint64_t deadline_ms; /* NACK to the origin when the target has not answered by then */
};

struct membership {
    struct membership_config cfg;
    struct membership_callbacks cbs;
    struct hy_prng prng;
    struct membership_member *members; /* members[0] is this node */
    size_t count;
    uint32_t *index; /* open-addressing hash of names: member index + 1, 0 = empty */
    size_t index_cap;
    uint32_t *order; /* the probe order (member indexes), reshuffled after each pass */
    size_t order_len, order_pos;
    uint32_t *bcast; /* members with tx_left > 0 */
    size_t bcast_count;
    uint32_t *watched; /* members with a phi window: the ring neighbours */
    size_t watched_count;
    /* The ring neighbours (member indexes, successors then predecessors), computed again
     * when the set of members not LEFT or ring_k changed (ring_stale); ring_epoch counts the
     * computations that changed it, so a shell knows when to move its beacons. */
    uint32_t ring[2 * MEMBERSHIP_RING_K_MAX];
    size_t ring_count;
    int ring_stale;
    uint64_t ring_epoch;
    uint32_t *suspects; /* members that were SUSPECT when listed (checked lazily) */
    size_t suspect_count;
    uint32_t lhm; /* Lifeguard's local health multiplier */
    uint32_t seq;
    uint64_t periods;       /* probe periods started */
    uint32_t sync_left;     /* SYNC requests still to send (a starting node learns the view) */
    uint64_t view_asked_ms; /* when this node last set out to learn the whole view */
    /* The probe in progress. */
    int probing;
    uint32_t probe_seq;
    uint32_t probe_target; /* member index */
    int probe_acked, probe_indirect_sent;
    uint32_t probe_nacks, probe_nacks_expected;
    uint64_t probe_start_ms, probe_timeout_at, probe_end_at;
    uint64_t probe_graceless_end_at; /* when it had ended without the loop-lag grace */
    uint32_t probe_grace;            /* the grace its deadlines include (grace_follow) */
    uint64_t next_probe_ms;
    uint64_t next_gossip_ms;
    struct membership_relay relays[MEMBERSHIP_RELAYS_MAX];
    int left;
    uint64_t last_tick_ms;      /* the last membership_tick */
    uint64_t last_stall_ms;     /* the last turn that found this node stalled (0: none) */
    uint64_t last_stall_len_ms; /* how late that turn came */
    int last_stall_stopped;     /* ... and the process was not runnable for most of it */
    /* membership_note_runnable: the process's runnable time (on a CPU or waiting for one),
     * cumulative, in ms, at the last note and when it came; the last gap between notes of
     * stall_ms or more (the process did not run its loop): when it ended, how long it was and
     * how much runnable time grew across it. known: the shell gives the measure. */
    uint64_t runnable_ms, runnable_note_ms;
    uint64_t gap_end_ms, gap_len_ms, gap_runnable_ms;
    int runnable_known;
    uint64_t pause_ms, pause_at_ms; /* this node's longest stall (or heartbeat read late
                                       because of one) on hold, and its last (pause_counts) */
    uint64_t held_dead_ms;          /* when this node last heard it was held dead */
    uint64_t held_suspect_ms;       /* ... or suspected, at its current incarnation */
    /* This node's loop lag (how late its turns came): the peak per bucket of
     * lag_window_ms / MEMBERSHIP_LAG_BUCKETS, lag_peak[lag_cur] the current one. */
    uint32_t lag_peak[MEMBERSHIP_LAG_BUCKETS];
    uint32_t lag_cur;
    uint64_t lag_bucket_ms; /* when the current bucket started */
    struct membership_stats stats;
};

/*
 * Starts the view with this node only, ALIVE at incarnation 0, with *meta (copied; NULL:
 * empty). cfg and cbs are copied (cfg NULL: defaults). Returns HY_OK or HY_EINVAL for an
 * invalid config or name.
 */
int membership_init(struct membership *m, const struct membership_config *cfg, const char *self,
                    const struct membership_meta *meta, const struct membership_callbacks *cbs,
                    uint64_t seed, uint64_t now_ms) HY_MUST_CHECK;
void membership_free(struct membership *m);

/* Replaces the tunables (runtime settings). HY_EINVAL leaves the old ones. */
int membership_set_config(struct membership *m, const struct membership_config *cfg) HY_MUST_CHECK;
int membership_config_check(const struct membership_config *cfg) HY_MUST_CHECK;

/* A member known from outside (the Raft configuration, a seed list): added ALIVE at
 * incarnation 0 if unknown; a LEFT member is taken back. HY_ENOSPC at members_max. */
int membership_add(struct membership *m, const char *name, uint64_t now_ms) HY_MUST_CHECK;
/* A member removed from the cluster (by Raft): LEFT, and never probed again. */
void membership_remove(struct membership *m, const char *name, uint64_t now_ms);
/* This node leaves: LEFT at a higher incarnation, spread on the next messages. */
void membership_leave(struct membership *m, uint64_t now_ms);
/* New metadata for this node: a higher incarnation carries it. */
void membership_set_meta(struct membership *m, const struct membership_meta *meta, uint64_t now_ms);

/* Runs the timers (probe period, probe timeout, relays, suspicion timeouts, phi). */
void membership_tick(struct membership *m, uint64_t now_ms);
/* The process's runnable time so far (ms on a CPU plus ms waiting for one: Linux's
 * /proc/self/schedstat), given by the shell every few ms while its loop runs, and before a
 * membership_tick or membership_heartbeat. It tells a stall of a starved host (the process
 * waited for a CPU: the others' loops wait as long) from this process's own (SIGSTOP, a
 * suspended VM, a blocking call): across a gap of stall_ms or more between two notes, runnable
 * time grew by less than half the gap, so a turn late by that gap was its own pause, never
 * learned as loop lag (membership_tick). Without it every stall may be the host's. */
void membership_note_runnable(struct membership *m, uint64_t runnable_ms, uint64_t now_ms);
/* A message from member `from` (authenticated by the shell). Unknown senders are added. */
void membership_receive(struct membership *m, const char *from, const struct membership_msg *msg,
                        uint64_t now_ms);
/* A heartbeat from `from` (any sign of life on its direct link): one phi sample when `from`
 * is a ring neighbour; ignored otherwise (its link's traffic has no rhythm to judge). */
void membership_heartbeat(struct membership *m, const char *from, uint64_t now_ms);
/*
 * This node's ring neighbours: the members not LEFT (this node included) in the order of
 * their names (strcmp), as a circle; the ring_k after this node and the ring_k before it, each
 * once, this node never (with n <= 2 * ring_k + 1 members: every other member). The shell
 * beacons to exactly these (and the simulator's heartbeats go to exactly these), so both ends
 * of a ring link watch each other when their views agree. Computed again first if the members
 * changed; writes at most cap names (successors nearest first, then predecessors nearest
 * first; borrowed until the view next changes) and returns how many there are.
 */
size_t membership_ring(struct membership *m, const char **out, size_t cap);
/* The direct link to `name` broke: this node's own suspicion, at once. */
void membership_link_down(struct membership *m, const char *name, uint64_t now_ms);

/* The earliest time membership_tick has work to do. */
uint64_t membership_next_ms(const struct membership *m);

/* NULL when unknown. */
const struct membership_member *membership_find(const struct membership *m, const char *name);
/* phi of a watched member now (0 when it has too few samples or is not watched). */
double membership_phi(const struct membership *m, const char *name, uint64_t now_ms);
/* The grace added to every silence this node judges now (ms): twice the peak of its own loop
 * lag over the last lag_window_ms, at most lag_grace_max_ms (0 with lag_window_ms 0). */
uint32_t membership_grace(const struct membership *m);
/* The current suspicion timeout bounds for this view's size (Lifeguard). */
void membership_suspicion_bounds(const struct membership *m, uint64_t *min_ms, uint64_t *max_ms);

#endif
