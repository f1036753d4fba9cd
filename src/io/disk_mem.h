/*
 * disk_mem.h - a simulated disk for halyard-sim and the unit tests (implements
 * disk.h).
 *
 * Pure: no system calls, no clock, randomness only from a hy_prng seeded at
 * creation, so a simulation replays exactly from its seed. It models what a
 * real disk may do to a process that crashes:
 *  - file writes and size changes stay pending until sync() of that file; name
 * changes (create, rename, remove) stay pending until sync_dir();
 *  - the directory itself is new (just created) until sync_parent(): a crash
 * before that loses it whole, every file in it with it, however synced;
 *  - disk_mem_crash() rebuilds the durable state: each pending write is kept,
 * dropped or torn (a random subset of its 512-byte sectors reaches the disk),
 * and a random prefix of the pending name changes survives;
 *  - faults: the Nth call of chosen operations fails with HY_EIO or HY_ENOSPC,
 * once (transient) or from then on (persistent); a capacity makes growth fail
 * with HY_ENOSPC;
 *  - latency: each call adds a random simulated delay to a counter the caller
 * reads (the simulator turns it into simulated time; nothing sleeps).
 */
#ifndef HY_DISK_MEM_H
#define HY_DISK_MEM_H

#include <stdint.h>

#include "io/disk.h"

enum disk_mem_op {
    DISK_OP_OPEN,
    DISK_OP_PREALLOCATE,
    DISK_OP_WRITE,
    DISK_OP_SYNC,
    DISK_OP_READ,
    DISK_OP_SIZE,
    DISK_OP_TRUNCATE,
    DISK_OP_RENAME,
    DISK_OP_REMOVE,
    DISK_OP_SYNC_DIR,
    DISK_OP_LIST,
    DISK_OP_SYNC_PARENT,
    DISK_OP_COUNT
};

#define DISK_OP_BIT(op) (1u << (op))
#define DISK_OP_ALL     ((1u << DISK_OP_COUNT) - 1)

enum disk_mem_crash_mode {
    DISK_CRASH_KEEP,   /* every pending write and name change reaches the disk */
    DISK_CRASH_DROP,   /* none does */
    DISK_CRASH_TEAR,   /* every pending write is torn; a random prefix of name
                          changes */
    DISK_CRASH_RANDOM, /* each write kept, dropped or torn at random; a random
                          prefix of names */
};

/* Creates an empty simulated disk, as a directory just created: it vanishes in a crash
 * until sync_parent() (see above). `path` only names it in messages. Free with
 * disk_destroy. */
struct disk *disk_mem_new(const char *path, uint64_t seed);

/*
 * Arms a fault: among calls whose operation is in op_mask (DISK_OP_BIT),
 * counted from now, the nth (1-based) fails with `status` (HY_EIO or HY_ENOSPC)
 * and does nothing; when `persistent`, every later matching call fails too,
 * until disk_mem_fail_clear().
 */
void disk_mem_fail(struct disk *d, uint32_t op_mask, uint64_t nth, int status, int persistent);
void disk_mem_fail_clear(struct disk *d);
/* 1 once an armed fault has fired. */
int disk_mem_fault_fired(const struct disk *d);

/* Total bytes of file contents allowed (0 = unlimited); growth beyond it fails
 * HY_ENOSPC. */
void disk_mem_set_capacity(struct disk *d, uint64_t bytes);
uint64_t disk_mem_used_bytes(const struct disk *d);

/* Each call adds a delay uniform in [min, max] µs; syncs use the sync range
 * instead. */
void disk_mem_set_latency(struct disk *d, uint32_t op_us_min, uint32_t op_us_max,
                          uint32_t sync_us_min, uint32_t sync_us_max);
/* Returns the simulated µs accrued since the last call, and resets the counter.
 */
uint64_t disk_mem_take_latency_us(struct disk *d);

/* Number of operations called so far (all kinds), for "fail the Nth call"
 * loops. */
uint64_t disk_mem_calls(const struct disk *d);
/* Number of calls of one operation so far (e.g. fdatasyncs, to check group commit). */
uint64_t disk_mem_op_calls(const struct disk *d, enum disk_mem_op op);

/* Simulates a power loss: rebuilds the durable state (see above) and forgets
 * every open handle. The disk stays usable, as after a reboot. */
void disk_mem_crash(struct disk *d, enum disk_mem_crash_mode mode);

/* Test access: replaces the durable and visible contents of `name` (creating
 * it, durably, and the directory with it). Used to plant corrupt files. Returns HY_OK. */
int disk_mem_put_file(struct disk *d, const char *name, const uint8_t *buf, size_t len);

#endif
