/*
 * placement.h - which members hold a replica of which partition (the partition map), as a pure
 * function: the metadata group's leader computes the map with it and commits it; every node
 * follows what is committed (docs/partitioning.md "Replicas").
 */
#ifndef HY_NODE_PLACEMENT_H
#define HY_NODE_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "raft/raft.h"

/* One partition's replicas (node ids, the order they were placed in) and its epoch: it grows
 * by one at every change of the set. */
struct node_placement {
    uint64_t epoch;
    uint32_t count;
    raft_id ids[RAFT_SERVERS_MAX];
};

/* Moves map[0..parts) towards `rf` replicas per partition on `members` (node ids, any order,
 * each once; at most RAFT_SERVERS_MAX), as few replicas as possible (new replicas go to the
 * members not in `avoid` first: those the leader sees down):
 *  - a replica on a node that is no longer a member goes;
 *  - a partition with fewer than min(rf, members) replicas gets new ones on the members
 *    holding fewest replicas (the short partitions with least choice first), so that from
 *    an empty map every member holds floor or ceil of parts * r / members;
 *  - a partition with more loses those on the members holding most.
 * Replicas never move onto a new member for balance here (node_place_rebalance does, one at
 * a time). Deterministic. Returns
 * how many partitions changed (their epochs grew). */
size_t node_place(struct node_placement *map, uint32_t parts, const raft_id *members,
                  size_t n_members, uint32_t rf, const raft_id *avoid, size_t n_avoid);

/* A member's failure domains: its zone and its rack, as small numbers the caller gives (equal
 * numbers = the same zone; a rack number names one rack of one zone). */
struct node_domain {
    uint32_t zone;
    uint32_t rack;
};

/* node_place, zone-aware: dom[i] is members[i]'s domains (NULL: none, as node_place). When
 * the members span more than one zone (rack), a partition's replicas go to distinct zones
 * (then distinct racks) whenever enough exist: new replicas go where they share a zone with
 * no other replica of the partition first (then a rack), even onto a more loaded member; and
 * a partition whose replicas share a zone (rack) while a member of a zone (rack) it lacks
 * could hold one instead has those replicas replaced, all in one change of its replica set
 * (its leader then moves them one Raft change at a time, never below its replication factor:
 * member.c). Members in `avoid` never receive a replaced one, and a partition with more
 * than rf replicas (the factor lowered) drops theirs first, in the order `avoid` lists them
 * (the caller lists the members down longest first). Balance (floor or ceil) holds
 * where the zones allow it: when every zone has as many members and zones >= rf. */
size_t node_place_domains(struct node_placement *map, uint32_t parts, const raft_id *members,
                          const struct node_domain *dom, size_t n_members, uint32_t rf,
                          const raft_id *avoid, size_t n_avoid);

/* One balancing move (fair share after a join, issue 12): when some member holds two or
 * more replicas than another (not in `avoid`), one replica moves from the most loaded such
 * member to the least loaded one, in a partition that lacks the latter, is not `busy[p]`
 * (its last change not carried out yet) and whose zones and racks stay as spread. The
 * lowest such partition; none when loads are within one (or nothing may move). Returns the
 * partition changed (its epoch grown), or -1. Deterministic. Repeated, every member ends
 * within one replica of every other where the zones allow it. */
int node_place_rebalance(struct node_placement *map, uint32_t parts, const raft_id *members,
                         const struct node_domain *dom, size_t n_members, const raft_id *avoid,
                         size_t n_avoid, const uint8_t *busy);

/* How many pairs of partition pl's replicas share a zone (*zone_out) and, among the others,
 * a rack (*rack_out); ids not among members count in no domain. */
void node_placement_shared(const struct node_placement *pl, const raft_id *members,
                           const struct node_domain *dom, size_t n_members, uint32_t *zone_out,
                           uint32_t *rack_out);

/* Whether a and b list the same replicas, in any order. */
int node_placement_same(const struct node_placement *a, const struct node_placement *b);

/* Moves under way (issue 12: rebalance-max-moves, cancel). origin[p] is where partition p's
 * unfinished move started: the replicas its map listed, at that epoch, when the move's first
 * change was made while its voters were those replicas; count 0 when no move of p is under
 * way. The metadata leader keeps them in the metadata group with the map (partmap.c). */

/* Notes the changes from cur to next in origin: a partition next changes that was settled
 * (settled[p]: its voters are cur[p]'s replicas), or had no move recorded, starts a move from
 * cur[p]; one changed again mid-move keeps the origin it had (the move is redirected, its
 * voters are still where it started); one unchanged and settled has finished (its origin
 * goes). Returns 1 when origin changed. */
int node_moves_note(struct node_placement *origin, const struct node_placement *cur,
                    const struct node_placement *next, uint32_t parts, const uint8_t *settled);

/* Bounds the moves next starts: of the partitions next changes (their epochs differ from
 * cur's) that are not `moving[p]` already (a move redirected takes no new room), at most
 * `room` keep their change, the lowest first; the others get cur's back, to change once moves
 * finish. Returns how many were held back. */
size_t node_place_limit(const struct node_placement *cur, struct node_placement *next,
                        uint32_t parts, const uint8_t *moving, size_t room);

/* Cancels the moves under way in map: every partition with an origin that is not settled
 * (settled[p]) goes back to its origin's replicas (its epoch grows; cancelled[p] = 1; its
 * origin goes), unless placement on members (as node_place_domains with dom, rf and avoid)
 * would change it again at once (the move is one the map must make: its source is no longer
 * a member, the partition lacks replicas, a zone rule), which stays. Returns how many were
 * cancelled. */
size_t node_moves_cancel(struct node_placement *map, struct node_placement *origin, uint32_t parts,
                         const uint8_t *settled, const raft_id *members,
                         const struct node_domain *dom, size_t n_members, uint32_t rf,
                         const raft_id *avoid, size_t n_avoid, uint8_t *cancelled);

/* Whether partition pl lists id. */
int node_placement_has(const struct node_placement *pl, raft_id id);

/* The map as the metadata group stores it: text, "halyard-partition-map 1 <parts>\n" then one
 * line per partition, "<epoch> <id>,<id>,...\n" (ids in hex). decode returns 0 when the text
 * is not such a map of exactly `parts` partitions. */
void node_placement_encode(const struct node_placement *map, uint32_t parts, struct hy_buf *out);
int node_placement_decode(const uint8_t *p, size_t len, struct node_placement *map, uint32_t parts);

#endif
