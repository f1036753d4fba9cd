/*
 * identity.h - which cluster a data dir belongs to (the file DATA_DIR/cluster), and joining
 * one with --join.
 *
 * Raft needs the first configuration of a cluster formed from --bootstrap at every start
 * until a snapshot or a configuration entry replaces it, and a node that restarted without
 * the flag would otherwise believe it is alone and elect itself. So the list is written to
 * the data dir, durably, once the log directory and its term/vote file are durable and before
 * the node runs, and from then on the file wins over flags:
 *   "bootstrap LIST"   formed from --bootstrap (LIST empty: a lone node), or
 *   "join LIST"        joined a running cluster: no first configuration of its own (the
 *                      leader's log brings it); LIST is the members it was told about.
 * Joining: with --join HOST:PEERPORT and an empty data dir, asks that member (on its client
 * port, PEERPORT - 10000) with HALYARD JOIN, retrying while no leader answers (up to 60 s),
 * then takes the member list from HALYARD PEERS. Blocking: runs before the event loop.
 */
#ifndef HY_IO_IDENTITY_H
#define HY_IO_IDENTITY_H

#include "common/log.h"
#include "node/config.h"

/* Reads the file and sets cfg->bootstrap, cfg->joined and cfg->formed (the file was there)
 * from it; with no file, joins when asked to (--join) and sets cfg from that. Writes
 * nothing but the data dir itself (made durably). Returns HY_OK, or an error after logging
 * why (the server must not start). */
int io_identity_load(struct hy_config *cfg, const struct hy_log *log) HY_MUST_CHECK;

/* Writes the file durably when it was not there (cfg->formed == 0). Called once the log is
 * open and durable: the file says "this node was formed", so it may only exist when the log
 * does (a cluster file without a log refuses to start: wal.h must_exist). HY_OK or HY_EIO,
 * logged. */
int io_identity_save(const struct hy_config *cfg, const struct hy_log *log) HY_MUST_CHECK;

#endif
