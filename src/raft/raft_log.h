/*
 * raft_log.h - the in-memory Raft log: entries (snap_index, last_index] over a growable array.
 *
 * The log owns a copy of every entry's data, carved out of blocks it allocates (raft_log.c), and
 * never moves it while the entry is held. Indexes below the base (snap_index) are gone:
 * they live in a snapshot. Terms are non-decreasing along the log (asserted on append).
 */
#ifndef HY_RAFT_LOG_H
#define HY_RAFT_LOG_H

#include "raft/raft.h"

void raft_log_init(struct raft_log *l);
void raft_log_free(struct raft_log *l);
uint64_t raft_log_last_index(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
/* The entry at index (borrowed until the log changes), or NULL when outside the log. */
struct raft_entry *raft_log_get(const struct raft_log *l, uint64_t index);
/* Term at index, snap_index included; 0 when outside. */
uint64_t raft_log_term(const struct raft_log *l, uint64_t index);
/* Appends a copy of e (data copied) at last_index + 1. */
void raft_log_append(struct raft_log *l, const struct raft_entry *e);
/* Drops every entry with index >= from (from > snap_index). */
void raft_log_truncate(struct raft_log *l, uint64_t from);
/* Drops every entry with index <= upto (snap_index < upto <= last_index); upto becomes the base. */
void raft_log_compact(struct raft_log *l, uint64_t upto);
/* Drops everything; the log restarts after (index, term). */
void raft_log_reset(struct raft_log *l, uint64_t index, uint64_t term);

#endif
