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

#define FUZZ_CHECK(cond)      \
    do {                      \
        if (!(cond)) {        \
            __builtin_trap(); \
        }                     \
    } while (0)

#endif
