/*
 * fuzz_leaders.c - libFuzzer target for the reader of HY.LEADERS answers (partmap_leaders_body,
 * partmap_leaders_next), the bytes a peer sends back when asked who leads its groups; the
 * metadata leader's leader balancer (balance.c) plans from them.
 *
 * Properties: reading never crashes or reads past the input; every item read moves strictly
 * forward and stays within the input; a line's name is NUL-terminated and at most
 * NODE_MEMBER_NAME_MAX bytes without whitespace; a configuration index comes only with a settled
 * epoch; the draining mark is a line of its own; a voter line is "voter " and the digits of
 * the group it names, at most UINT32_MAX.
 */
#include <stdint.h>
#include <string.h>

#include "node/node_internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *end = (const char *)data + size;
    const char *p = partmap_leaders_body(data, size);
    FUZZ_CHECK(p == NULL || (p > (const char *)data && p <= end));
    struct partmap_leaders_line l;
    int item;
    while (p != NULL && (item = partmap_leaders_next(&p, end, &l)) != PARTMAP_LEADERS_END) {
        FUZZ_CHECK(p <= end && p[-1] == '\n');
        if (item == PARTMAP_LEADERS_LINE) {
            size_t len = strnlen(l.name, sizeof(l.name));
            FUZZ_CHECK(len > 0 && len <= NODE_MEMBER_NAME_MAX);
            FUZZ_CHECK(l.settled != 0 || l.cfg_index == 0);
            for (size_t i = 0; i < len; i++) {
                FUZZ_CHECK(l.name[i] != ' ' && l.name[i] != '\n' && l.name[i] != '\t');
            }
        } else if (item == PARTMAP_LEADERS_VOTER) {
            /* Its line is "voter " and the group's digits, nothing else. */
            const char *q = p - 1;
            while (q > (const char *)data && q[-1] != '\n') {
                q--;
            }
            FUZZ_CHECK(p - 1 - q > 6 && memcmp(q, "voter ", 6) == 0);
            uint64_t v = 0;
            for (const char *d = q + 6; d < p - 1; d++) {
                FUZZ_CHECK(*d >= '0' && *d <= '9');
                v = v * 10 + (uint64_t)(*d - '0');
                FUZZ_CHECK(v <= UINT32_MAX);
            }
            FUZZ_CHECK(v == l.group);
        } else {
            FUZZ_CHECK(item == PARTMAP_LEADERS_DRAINING && p - 9 >= (const char *)data &&
                       memcmp(p - 9, "draining\n", 9) == 0);
        }
    }
    return 0;
}
