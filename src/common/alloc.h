/*
 * alloc.h - the one allocation wrapper.
 *
 * All heap memory in halyard goes through these functions so that (a) tests can make the Nth
 * allocation fail (hy_alloc_fail_after) and (b) the process knows how many bytes it holds
 * (hy_alloc_used_bytes, reported as INFO used_memory and used by maxmemory).
 *
 * hy_malloc/hy_calloc/hy_realloc return NULL on failure: the client library uses them and
 * returns HY_ENOMEM. The x-variants abort with a clear message: the server may stop on OOM
 * rather than run on in a state it cannot keep (STYLE.md).
 */
#ifndef HY_ALLOC_H
#define HY_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *hy_malloc(size_t size);
void *hy_calloc(size_t count, size_t size);
void *hy_realloc(void *ptr, size_t size);
void hy_free(void *ptr);

void *hy_xmalloc(size_t size);
void *hy_xcalloc(size_t count, size_t size);
void *hy_xrealloc(void *ptr, size_t size);
char *hy_xstrdup(const char *s);
void *hy_xmemdup(const void *p, size_t len);

/* Bytes the allocator actually handed out for `ptr` (>= the size asked for). */
size_t hy_alloc_size(const void *ptr);

/* Bytes currently allocated through this wrapper, process-wide. */
size_t hy_alloc_used_bytes(void);

/* Whether freed heap pages are worth handing back to the kernel (malloc_trim): RSS exceeds
 * used_memory by more than 1 MiB + used/16 beyond *base, the smallest gap seen so far (the
 * process's code, libraries and stacks), which the call updates. rss 0 (unknown): no. */
int hy_alloc_purge_due(size_t used, size_t rss, size_t *base);

/* After a purge: the gap it left (rss_after - used; pages still partly in use, which no purge
 * hands back) becomes *base when larger, so that a gap no purge can shrink is not purged again
 * every period for nothing. */
void hy_alloc_purge_done(size_t used, size_t rss_after, size_t *base);

/* Test hook: the allocation after `count` more successful ones fails (returns NULL, or aborts
 * for the x-variants). A negative count disables the hook. */
void hy_alloc_fail_after(long count);

#endif
