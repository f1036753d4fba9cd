/*
 * fuzz_dns.c - libFuzzer target for the DNS SRV reply reader (src/proto/dns.c).
 *
 * The input is a reply from the network. Whatever it holds, the reader must not read outside
 * it (the buffer is a fresh allocation of exactly its bytes, for ASan), and what it returns
 * must be what dns.h promises: at most cap records, sorted by priority then weight, each target
 * a NUL-terminated non-empty name of host-name characters and dots, and a port other than 0;
 * on an error, no record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "proto/dns.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_copy(data, size);
    struct dns_srv out[4];
    size_t cap = size > 0 ? (size_t)(data[0] & 3) + 1 : 4; /* small caps reach the bound */
    size_t count = 99;
    int rc = dns_srv_parse(copy, size, out, cap, &count);
    FUZZ_CHECK(rc == HY_OK || rc == HY_EPROTO);
    FUZZ_CHECK(count <= cap);
    FUZZ_CHECK(rc == HY_OK || count == 0);
    for (size_t i = 0; i < count; i++) {
        size_t n = strnlen(out[i].target, sizeof(out[i].target));
        FUZZ_CHECK(n > 0 && n < sizeof(out[i].target));
        FUZZ_CHECK(out[i].port != 0);
        for (size_t k = 0; k < n; k++) {
            char c = out[i].target[k];
            FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.');
        }
        if (i > 0) {
            FUZZ_CHECK(
                out[i - 1].priority < out[i].priority ||
                (out[i - 1].priority == out[i].priority && out[i - 1].weight >= out[i].weight));
        }
    }
    free(copy);
    return 0;
}
