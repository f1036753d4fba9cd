#include "common/prng.h"

#include "common/assert.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void hy_prng_seed(struct hy_prng *p, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        p->s[i] = splitmix64(&seed);
    }
}

uint64_t hy_prng_next(struct hy_prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t hy_prng_below(struct hy_prng *p, uint64_t bound)
{
    HY_ASSERT(bound > 0);
    /* Rejection sampling: discard the top partial range so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
        x = hy_prng_next(p);
    } while (x >= limit);
    return x % bound;
}

uint64_t hy_prng_range(struct hy_prng *p, uint64_t lo, uint64_t hi)
{
    HY_ASSERT(lo <= hi);
    if (lo == 0 && hi == UINT64_MAX) {
        return hy_prng_next(p);
    }
    return lo + hy_prng_below(p, hi - lo + 1);
}

int hy_prng_chance(struct hy_prng *p, uint64_t num, uint64_t den)
{
    HY_ASSERT(den > 0);
    return hy_prng_below(p, den) < num;
}
