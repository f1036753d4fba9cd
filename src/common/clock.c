/*
 * clock.c - the node's clock (clock.h).
 */
#include "common/clock.h"

uint64_t hy_clock_read(struct hy_clock *c, uint64_t wall_ms, uint64_t mono_ms)
{
    if (!c->started) {
        c->started = 1;
        c->now_ms = wall_ms;
        c->mono_ms = mono_ms;
        c->owed_us = 0;
        return c->now_ms;
    }
    uint64_t elapsed = mono_ms > c->mono_ms ? mono_ms - c->mono_ms : 0;
    c->mono_ms = mono_ms > c->mono_ms ? mono_ms : c->mono_ms;
    uint64_t next = c->now_ms + elapsed;
    if (wall_ms > next + HY_CLOCK_JUMP_MS) {
        c->owed_us = 0;
        c->now_ms = wall_ms;
        return c->now_ms;
    }
    /* The slew this interval allows, in microseconds, whole milliseconds of it applied. */
    c->owed_us += elapsed * HY_CLOCK_SLEW_PPM / 1000;
    uint64_t slew = c->owed_us / 1000;
    if (wall_ms > next) {
        uint64_t gap = wall_ms - next;
        uint64_t step = slew < gap ? slew : gap;
        next += step;
        c->owed_us -= step * 1000;
    } else if (wall_ms < next) {
        /* Slower, never backwards: at most the elapsed time is taken back. */
        uint64_t gap = next - wall_ms;
        uint64_t step = slew < gap ? slew : gap;
        step = step < elapsed ? step : elapsed;
        next -= step;
        c->owed_us -= step * 1000;
    }
    if (wall_ms == next) {
        c->owed_us = 0; /* in step: nothing is owed */
    }
    c->now_ms = next;
    return c->now_ms;
}
