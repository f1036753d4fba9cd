/*
 * prng.h - a small, seeded, deterministic PRNG (xoshiro256**, seeded by splitmix64).
 *
 * The cores never call a global RNG (docs/architecture.md "Cores and shell"): each owner keeps a
 * struct hy_prng seeded at init, so the simulator replays a run exactly from its seed.
 */
#ifndef HY_PRNG_H
#define HY_PRNG_H

#include <stdint.h>

struct hy_prng {
    uint64_t s[4];
};

void hy_prng_seed(struct hy_prng *p, uint64_t seed);
uint64_t hy_prng_next(struct hy_prng *p);
/* Uniform in [0, bound) without modulo bias; bound > 0. */
uint64_t hy_prng_below(struct hy_prng *p, uint64_t bound);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t hy_prng_range(struct hy_prng *p, uint64_t lo, uint64_t hi);
/* Returns 1 with probability num/den. */
int hy_prng_chance(struct hy_prng *p, uint64_t num, uint64_t den);

#endif
