/*
 * crc.h - checksums and the key → slot mapping.
 *
 * crc16: CRC-16/XMODEM (poly 0x1021), the function Redis Cluster uses to map keys to its 16384
 * slots; hy_key_slot applies Redis Cluster's {hash tag} rule so clients route identically.
 * crc32c: Castagnoli CRC, hardware-accelerated on x86-64 when SSE4.2 is present; frames every
 * record on disk and on the peer wire.
 * crc64: CRC-64/Jones (reflected polynomial 0xad93d23594c935a9, initial 0, no final xor), the
 * checksum that ends Redis's DUMP payloads and RDB files.
 */
#ifndef HY_CRC_H
#define HY_CRC_H

#include <stddef.h>
#include <stdint.h>

#define HY_SLOT_COUNT 16384

uint16_t hy_crc16(const uint8_t *buf, size_t len);
/* Slot of `key`: crc16 of the hash tag if the key has a non-empty {...}, else of the key. */
uint16_t hy_key_slot(const uint8_t *key, size_t len);

/* CRC32C of buf, continuing from `crc` (start with 0). */
uint32_t hy_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

/* CRC-64/Jones of buf, continuing from `crc` (start with 0); "123456789" gives
 * 0xe9c6d914c4b8d9ca. */
uint64_t hy_crc64(uint64_t crc, const uint8_t *buf, size_t len);

#endif
