#include "common/buf.h"

#include "common/alloc.h"
#include "common/assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void hy_buf_init(struct hy_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void hy_buf_free(struct hy_buf *b)
{
    hy_free(b->data);
    hy_buf_init(b);
}

uint8_t *hy_buf_reserve(struct hy_buf *b, size_t extra)
{
    HY_ASSERT(b->len <= b->cap);
    if (b->cap - b->len < extra) {
        size_t want = b->len + extra;
        HY_ASSERT(want >= b->len); /* overflow */
        size_t cap = b->cap ? b->cap : 64;
        while (cap < want) {
            cap = cap * 2 > cap ? cap * 2 : want;
        }
        b->data = hy_xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void hy_buf_append(struct hy_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    memcpy(hy_buf_reserve(b, n), p, n);
    b->len += n;
}

void hy_buf_append_str(struct hy_buf *b, const char *s)
{
    hy_buf_append(b, s, strlen(s));
}

void hy_buf_append_json_str(struct hy_buf *b, const char *s)
{
    hy_buf_append_u8(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            hy_buf_append_u8(b, '\\');
            hy_buf_append_u8(b, *p);
        } else if (*p < 0x20) {
            hy_buf_printf(b, "\\u%04x", *p);
        } else {
            hy_buf_append_u8(b, *p);
        }
    }
    hy_buf_append_u8(b, '"');
}

void hy_buf_append_u8(struct hy_buf *b, uint8_t v)
{
    hy_buf_append(b, &v, 1);
}

void hy_buf_append_u32le(struct hy_buf *b, uint32_t v)
{
    hy_store_u32le(hy_buf_reserve(b, 4), v);
    b->len += 4;
}

void hy_buf_append_u64le(struct hy_buf *b, uint64_t v)
{
    hy_store_u64le(hy_buf_reserve(b, 8), v);
    b->len += 8;
}

void hy_buf_printf(struct hy_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    HY_ASSERT(n >= 0);
    if ((size_t)n < sizeof(small)) {
        hy_buf_append(b, small, (size_t)n);
        return;
    }
    uint8_t *dst = hy_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hy_buf_consume(struct hy_buf *b, size_t n)
{
    HY_ASSERT(n <= b->len);
    if (n == b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void hy_buf_reset(struct hy_buf *b)
{
    b->len = 0;
}
