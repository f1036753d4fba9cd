/*
 * buf.h - a growable byte buffer.
 *
 * Invariant: len <= cap; data is NULL only when cap == 0. A buffer may carry a soft limit that
 * callers check with hy_buf_over_limit() (output buffers of slow clients, STYLE.md "every
 * buffer has a bound"); growth itself aborts only on real OOM (server side).
 */
#ifndef HY_BUF_H
#define HY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct hy_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void hy_buf_init(struct hy_buf *b);
void hy_buf_free(struct hy_buf *b);
/* Makes room for `extra` more bytes; returns a pointer to data + len. */
uint8_t *hy_buf_reserve(struct hy_buf *b, size_t extra);
void hy_buf_append(struct hy_buf *b, const void *p, size_t n);
void hy_buf_append_str(struct hy_buf *b, const char *s);
/* Appends s as a JSON string: quoted, with \" \\ and control characters escaped. */
void hy_buf_append_json_str(struct hy_buf *b, const char *s);
void hy_buf_append_u8(struct hy_buf *b, uint8_t v);
void hy_buf_append_u32le(struct hy_buf *b, uint32_t v);
void hy_buf_append_u64le(struct hy_buf *b, uint64_t v);
void hy_buf_printf(struct hy_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first `n` bytes (n <= len). */
void hy_buf_consume(struct hy_buf *b, size_t n);
void hy_buf_reset(struct hy_buf *b);

/* Little-endian readers over borrowed memory; the caller checks bounds. */
static inline uint32_t hy_load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t hy_load_u64le(const uint8_t *p)
{
    return (uint64_t)hy_load_u32le(p) | (uint64_t)hy_load_u32le(p + 4) << 32;
}

static inline void hy_store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void hy_store_u64le(uint8_t *p, uint64_t v)
{
    hy_store_u32le(p, (uint32_t)v);
    hy_store_u32le(p + 4, (uint32_t)(v >> 32));
}

#endif
