#include "common/crc.h"

#include <string.h>

uint16_t hy_crc16(const uint8_t *buf, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)buf[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t hy_key_slot(const uint8_t *key, size_t len)
{
    /* Redis Cluster: hash only what is between the first '{' and the first '}' after it, when
     * that is non-empty; otherwise the whole key. */
    const uint8_t *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t start = (size_t)(open - key) + 1;
        const uint8_t *close = memchr(key + start, '}', len - start);
        if (close != NULL && close > key + start) {
            return hy_crc16(key + start, (size_t)(close - (key + start))) & (HY_SLOT_COUNT - 1);
        }
    }
    return hy_crc16(key, len) & (HY_SLOT_COUNT - 1);
}

static uint32_t crc32c_table[256];
static int crc32c_table_ready;

static void crc32c_init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        }
        crc32c_table[i] = c;
    }
    crc32c_table_ready = 1;
}

static uint32_t crc32c_soft(uint32_t crc, const uint8_t *buf, size_t len)
{
    if (!crc32c_table_ready) {
        crc32c_init_table(); /* idempotent: a racing second init writes the same values */
    }
    for (size_t i = 0; i < len; i++) {
        crc = crc32c_table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
    }
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *buf,
                                                            size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, buf, 8);
        c = __builtin_ia32_crc32di(c, v);
        buf += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *buf);
        buf++;
        len--;
    }
    return c32;
}
#endif

uint32_t hy_crc32c(uint32_t crc, const uint8_t *buf, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) {
        return ~crc32c_hw(crc, buf, len);
    }
#endif
    return ~crc32c_soft(crc, buf, len);
}
