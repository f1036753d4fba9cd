/*
 * assert.h - the two assertion tiers.
 *
 * HY_ASSERT is always on, in production too: a node that finds itself in a state the code
 * does not allow stops rather than corrupt replicated data. HY_DEBUG_ASSERT is for checks too
 * expensive for the hot path; it compiles away unless HY_DEBUG is defined.
 */
#ifndef HY_ASSERT_H
#define HY_ASSERT_H

#include <assert.h>

_Noreturn void hy_assert_fail(const char *expr, const char *file, int line, const char *func);

#define HY_ASSERT(expr) ((expr) ? (void)0 : hy_assert_fail(#expr, __FILE__, __LINE__, __func__))

#ifdef HY_DEBUG
#define HY_DEBUG_ASSERT(expr) HY_ASSERT(expr)
#else
#define HY_DEBUG_ASSERT(expr) ((void)sizeof(expr))
#endif

#define HY_UNREACHABLE() hy_assert_fail("unreachable", __FILE__, __LINE__, __func__)

#define HY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HY_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define HY_MAX(a, b)    ((a) > (b) ? (a) : (b))

#endif
