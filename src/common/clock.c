#include "common/clock.h"

/* Kept in microseconds: whole milliseconds of each clock, truncated apart, made the clock lag
 * the wall clock by a millisecond for as long as the slew took to make it up (200 ms), and a
 * PTTL read then named more time than was set (Redis's own test "GETEX PXAT option" read 10001
 * of a 10000 ms expiry). */
uint64_t hy_clock_read_us(struct hy_clock *c, uint64_t wall_us, uint64_t mono_us)
{
    if (!c->started) {
        c->started = 1;
        c->now_us = wall_us;
        c->mono_us = mono_us;
        c->owed_ns = 0;
        return c->now_us / 1000;
    }
    uint64_t elapsed = mono_us > c->mono_us ? mono_us - c->mono_us : 0;
    c->mono_us = mono_us > c->mono_us ? mono_us : c->mono_us;
    uint64_t next = c->now_us + elapsed;
    if (wall_us > next + (uint64_t)HY_CLOCK_JUMP_MS * 1000) {
        c->owed_ns = 0;
        c->now_us = wall_us;
        return c->now_us / 1000;
    }
    /* The slew this interval allows, in nanoseconds, whole microseconds of it applied. */
    c->owed_ns += elapsed * HY_CLOCK_SLEW_PPM / 1000;
    uint64_t slew = c->owed_ns / 1000;
    if (wall_us > next) {
        uint64_t gap = wall_us - next;
        uint64_t step = slew < gap ? slew : gap;
        next += step;
        c->owed_ns -= step * 1000;
    } else if (wall_us < next) {
        /* Slower, never backwards: at most the elapsed time is taken back. */
        uint64_t gap = next - wall_us;
        uint64_t step = slew < gap ? slew : gap;
        step = step < elapsed ? step : elapsed;
        next -= step;
        c->owed_ns -= step * 1000;
    }
    if (wall_us == next) {
        c->owed_ns = 0; /* in step: nothing is owed */
    }
    c->now_us = next;
    return c->now_us / 1000;
}

uint64_t hy_clock_read(struct hy_clock *c, uint64_t wall_ms, uint64_t mono_ms)
{
    return hy_clock_read_us(c, wall_ms * 1000, mono_ms * 1000);
}
