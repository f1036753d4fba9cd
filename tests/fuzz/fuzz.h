/*
 * fuzz.h - what every libFuzzer target in tests/fuzz shares.
 *
 * FUZZ_CHECK states a property the code under test must keep for any input (a decoded value
 * encodes back to the same bytes, a length stays within its buffer). It traps rather than
 * asserting, so the check holds in every build mode and libFuzzer records the input that broke
 * it as a crash.
 */
#ifndef HY_FUZZ_H
#define HY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)      \
    do {                      \
        if (!(cond)) {        \
            __builtin_trap(); \
        }                     \
    } while (0)

/* An exact-size copy of the input (free it), so that a read past its end shows up under ASan
 * as it would not in libFuzzer's own, larger buffer; one byte for an empty input. */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) {
        __builtin_trap();
    }
    if (size > 0) {
        memcpy(copy, data, size);
    }
    return copy;
}

#endif
