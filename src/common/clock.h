/*
 * clock.h - the node's clock: wall-clock milliseconds (key expiry times and the times entries
 * carry are wall-clock times) that advance with the monotonic clock, so that a step of the
 * wall clock (NTP, an administrator, a restored VM) never moves them back and never makes
 * them jump a small way: Raft's timers, leases and request deadlines measure intervals on
 * them.
 *
 * The clock follows the wall clock by slewing: while the two differ, it runs up to
 * HY_CLOCK_SLEW_PPM faster or slower than the monotonic clock until they agree (0.5%: a
 * 500 ms step is absorbed in 100 s, far inside the 5% drift that leases allow). A wall clock
 * more than HY_CLOCK_JUMP_MS ahead is joined at once (a VM restored after hours: timers fire
 * early, which costs at most an election); a wall clock behind is never joined by a jump,
 * whatever the distance (time going back would stall every timer for as long).
 *
 * Pure: the caller reads both clocks and passes them (src/io/server.c io_clock_ms).
 */
#ifndef HY_COMMON_CLOCK_H
#define HY_COMMON_CLOCK_H

#include <stdint.h>

#define HY_CLOCK_SLEW_PPM 5000u
#define HY_CLOCK_JUMP_MS  2000u

struct hy_clock {
    uint64_t now_us;  /* the last reading */
    uint64_t mono_us; /* the monotonic clock then */
    uint64_t owed_ns; /* slew not yet applied: fractions of a microsecond carried over */
    int started;
};

/* The next reading in milliseconds, from the wall clock and the monotonic clock read now (in
 * microseconds: kept so, a clock in step reads what the wall clock truncated to milliseconds
 * reads). Never less than the last reading; never ahead of it by more than the monotonic time
 * elapsed (plus the slew), a jump to a wall clock over HY_CLOCK_JUMP_MS ahead aside. */
uint64_t hy_clock_read_us(struct hy_clock *c, uint64_t wall_us, uint64_t mono_us);
/* The same from readings in milliseconds. */
uint64_t hy_clock_read(struct hy_clock *c, uint64_t wall_ms, uint64_t mono_ms);

#endif
