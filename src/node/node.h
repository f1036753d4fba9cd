/*
 * node.h - the node engine: command table, dispatch, the read and write paths.
 *
 * Sans-I/O (DESIGN.md §2). The shell owns sockets; for every connection it creates a
 * node_client, appends the bytes it reads to client->in, and calls node_client_process(),
 * which parses requests, executes commands and appends replies to client->out. The shell
 * writes client->out once per loop turn and honours the client's close flags. node_cron()
 * runs the periodic work (active expiry, eviction, idle timeouts) and must be called hz
 * times per second. Every call takes the caller's wall clock in ms; the engine reads none.
 *
 * The write path: a write command's handler checks syntax, stamps absolute times, encodes a
 * store entry and proposes it (node_propose). Today the node is a one-member log: the entry
 * is appended, committed and applied at once through store_apply(), which also produces the
 * reply. When Raft lands, proposing appends to the Raft log and the reply is produced when
 * the entry commits; nothing else in the command handlers changes.
 */
#ifndef HY_NODE_H
#define HY_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/log.h"
#include "node/config.h"
#include "proto/resp.h"

enum node_client_flag {
    NODE_CLIENT_CLOSE_AFTER_REPLY = 1u << 0, /* QUIT, protocol error, maxclients: flush, close */
    NODE_CLIENT_CLOSE_ASAP = 1u << 1,        /* CLIENT KILL, idle timeout: close now */
};

struct node_client {
    uint64_t id;
    unsigned flags; /* enum node_client_flag */
    int proto;      /* 2 or 3 */
    int authenticated;
    int fd; /* for CLIENT LIST only */
    char name[64];
    char addr[64];  /* peer "ip:port" */
    char laddr[64]; /* local "ip:port" */
    uint64_t created_ms;
    uint64_t last_ms; /* last command */
    const char *last_cmd;
    struct hy_buf in;    /* bytes read, not yet parsed; owned by the client */
    struct hy_buf out;   /* replies not yet handed to the socket; owned by the client */
    size_t out_inflight; /* bytes the shell is still writing (for omem/limits) */
    struct resp_request_parser parser;
    struct node_client *prev, *next; /* the node's list of clients */
    void *shell;                     /* the shell's connection; opaque to the engine */
};

struct hy_node;

/* Creates a node. cfg is borrowed and must outlive the node (the shell owns it; CONFIG SET
 * changes it in place). `seed` seeds the engine's PRNG. */
struct hy_node *node_create(struct hy_config *cfg, const struct hy_log *log, uint64_t seed,
                            uint64_t now_ms);
void node_destroy(struct hy_node *n);

/* A new connection. When maxclients is exceeded the client gets the error reply and
 * NODE_CLIENT_CLOSE_AFTER_REPLY. Owned by the node; free with node_client_free. */
struct node_client *node_client_new(struct hy_node *n, const char *addr, const char *laddr, int fd,
                                    uint64_t now_ms);
void node_client_free(struct hy_node *n, struct node_client *c);

/* Parses and executes every complete request in c->in, consuming them. Replies go to c->out.
 * On a protocol error the error reply is written and CLOSE_AFTER_REPLY set. */
void node_client_process(struct hy_node *n, struct node_client *c, uint64_t now_ms);

/* Periodic work; marks idle clients CLOSE_ASAP. Returns the number of clients marked to close
 * (by timeout or CLIENT KILL since the last call) so the shell knows to sweep. */
size_t node_cron(struct hy_node *n, uint64_t now_ms);

/* Clients marked CLOSE_ASAP by commands since the last call (CLIENT KILL); resets the count. */
size_t node_take_kills(struct hy_node *n);

/* Counters the shell reports into (INFO stats). */
void node_note_rejected_connection(struct hy_node *n);
void node_note_net_io(struct hy_node *n, size_t in_bytes, size_t out_bytes);

/* Applies settings changed in cfg (after CONFIG SET or at start). */
void node_reconfigure(struct hy_node *n);

size_t node_client_count(const struct hy_node *n);

#endif
