#include "common/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Process-wide by nature: the allocator itself is process-wide. Relaxed atomics because the
 * WAL thread allocates too and the figure is a statistic, not a synchronisation point. */
static atomic_size_t used_bytes;
static atomic_long fail_countdown = -1;

static int alloc_should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0) {
        return 0;
    }
    if (n == 0) {
        return 1;
    }
    atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
    return 0;
}

static void alloc_account(void *ptr, int sign)
{
    if (ptr == NULL) {
        return;
    }
    size_t n = malloc_usable_size(ptr);
    if (sign > 0) {
        atomic_fetch_add_explicit(&used_bytes, n, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(&used_bytes, n, memory_order_relaxed);
    }
}

void *hy_malloc(size_t size)
{
    if (alloc_should_fail()) {
        return NULL;
    }
    void *p = malloc(size == 0 ? 1 : size);
    alloc_account(p, 1);
    return p;
}

void *hy_calloc(size_t count, size_t size)
{
    if (alloc_should_fail()) {
        return NULL;
    }
    void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    alloc_account(p, 1);
    return p;
}

void *hy_realloc(void *ptr, size_t size)
{
    if (alloc_should_fail()) {
        return NULL;
    }
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    void *p = realloc(ptr, size == 0 ? 1 : size);
    if (p == NULL) {
        return NULL;
    }
    atomic_fetch_sub_explicit(&used_bytes, old, memory_order_relaxed);
    alloc_account(p, 1);
    return p;
}

void hy_free(void *ptr)
{
    alloc_account(ptr, -1);
    free(ptr);
}

static void *alloc_or_die(void *p, size_t size)
{
    if (p == NULL) {
        fprintf(stderr, "halyard: out of memory allocating %zu bytes\n", size);
        abort();
    }
    return p;
}

void *hy_xmalloc(size_t size)
{
    return alloc_or_die(hy_malloc(size), size);
}

void *hy_xcalloc(size_t count, size_t size)
{
    return alloc_or_die(hy_calloc(count, size), count * size);
}

void *hy_xrealloc(void *ptr, size_t size)
{
    return alloc_or_die(hy_realloc(ptr, size), size);
}

void *hy_xmemdup(const void *p, size_t len)
{
    void *d = hy_xmalloc(len + 1);
    if (len > 0) {
        memcpy(d, p, len);
    }
    ((char *)d)[len] = '\0';
    return d;
}

char *hy_xstrdup(const char *s)
{
    return hy_xmemdup(s, strlen(s));
}

size_t hy_alloc_size(const void *ptr)
{
    return ptr ? malloc_usable_size((void *)ptr) : 0;
}

size_t hy_alloc_used_bytes(void)
{
    return atomic_load_explicit(&used_bytes, memory_order_relaxed);
}

int hy_alloc_purge_due(size_t used, size_t rss, size_t *base)
{
    if (rss == 0) {
        return 0;
    }
    size_t gap = rss > used ? rss - used : 0;
    if (*base == 0 || gap < *base) {
        *base = gap > 0 ? gap : 1;
    }
    return gap - (gap < *base ? gap : *base) > ((size_t)1 << 20) + used / 16;
}

void hy_alloc_purge_done(size_t used, size_t rss_after, size_t *base)
{
    if (rss_after > used && rss_after - used > *base) {
        *base = rss_after - used;
    }
}

void hy_alloc_fail_after(long count)
{
    atomic_store_explicit(&fail_countdown, count, memory_order_relaxed);
}
