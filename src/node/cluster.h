/*
 * cluster.h - the members of the node's Raft group as the engine knows them: names, Raft ids
 * and client addresses (for -MOVED and CLUSTER commands), parsed from the bootstrap list.
 * Pure: parsing and lookups only.
 *
 * Raft ids are derived from member names (FNV-1a 64), so every node computes the same id for
 * a member from its name alone. A member's client port is its peer port minus 10000
 * (docs/architecture.md "Interfaces": peer = client + 10000).
 */
#ifndef HY_NODE_CLUSTER_H
#define HY_NODE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "raft/raft.h"

#define NODE_MEMBER_NAME_MAX 64
#define NODE_MEMBER_HOST_MAX 255

struct node_member {
    char name[NODE_MEMBER_NAME_MAX + 1];
    char host[NODE_MEMBER_HOST_MAX + 1];
    uint16_t peer_port;
    uint16_t client_port;
    raft_id id;
    uint8_t role; /* the address book's wanted role (enum store_member_role), 0 = none */
};

/* The Raft id of a member name. */
raft_id node_member_id(const char *name);

/*
 * Parses "n1@127.0.0.1:17379,n2@127.0.0.1:17380,...". Returns HY_OK with *count_out members
 * (at most cap), or HY_ECONFIG with a reason in err (160 bytes): bad syntax, a port outside
 * 10001..65535, a duplicate name, too many members.
 */
int node_members_parse(const char *list, struct node_member *out, size_t cap, size_t *count_out,
                       char *err) HY_MUST_CHECK;

/* A member to join through: its address and peer port (its client port is 10000 below). */
struct node_join_target {
    char host[NODE_MEMBER_HOST_MAX + 1];
    uint16_t peer_port;
};
/* `join`: targets separated by commas, each HOST:PEERPORT (a name is resolved at every
 * attempt), HOST:PORT1-PORT2 (each port), or A.B.C.D1-D2:PORT (each address). 0 and the
 * targets in order, or -1 with the reason in err (160 bytes). */
int node_join_targets_parse(const char *list, struct node_join_target *out, size_t cap,
                            size_t *count_out, char *err);

/* The member with Raft id `id`, or NULL. */
const struct node_member *node_member_find(const struct node_member *members, size_t count,
                                           raft_id id);

#endif
