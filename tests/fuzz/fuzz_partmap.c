/*
 * fuzz_partmap.c - libFuzzer target for the partition map's decoder (node_placement_decode),
 * which reads the map from the metadata group's store (its log and snapshots).
 *
 * The input's first byte picks the partition count (1..64), the rest is the map's text.
 * Properties: decoding never crashes or reads past the input; a map that decodes has at most
 * RAFT_SERVERS_MAX distinct non-zero ids per partition, encodes back to exactly the input, and
 * placing it again on its own members keeps every replica it had.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "node/placement.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint32_t parts = (uint32_t)(data[0] % 64) + 1;
    struct node_placement *map = hy_xcalloc(parts, sizeof(*map));
    if (node_placement_decode(data + 1, size - 1, map, parts)) {
        raft_id members[RAFT_SERVERS_MAX];
        size_t n = 0;
        for (uint32_t p = 0; p < parts; p++) {
            FUZZ_CHECK(map[p].count <= RAFT_SERVERS_MAX);
            for (uint32_t i = 0; i < map[p].count; i++) {
                FUZZ_CHECK(map[p].ids[i] != 0);
                for (uint32_t j = i + 1; j < map[p].count; j++) {
                    FUZZ_CHECK(map[p].ids[i] != map[p].ids[j]);
                }
                int known = 0;
                for (size_t k = 0; k < n; k++) {
                    known |= members[k] == map[p].ids[i];
                }
                if (!known && n < RAFT_SERVERS_MAX) {
                    members[n++] = map[p].ids[i];
                }
            }
        }
        struct hy_buf b;
        hy_buf_init(&b);
        node_placement_encode(map, parts, &b);
        FUZZ_CHECK(b.len == size - 1 && memcmp(b.data, data + 1, b.len) == 0);
        hy_buf_free(&b);
        if (n > 0) {
            struct node_placement *again = hy_xcalloc(parts, sizeof(*again));
            memcpy(again, map, parts * sizeof(*again));
            (void)node_place(again, parts, members, n, RAFT_SERVERS_MAX, NULL, 0);
            for (uint32_t p = 0; p < parts; p++) {
                for (uint32_t i = 0; i < map[p].count; i++) {
                    int kept = node_placement_has(&again[p], map[p].ids[i]);
                    /* a member beyond the RAFT_SERVERS_MAX first is not a member: dropped */
                    int member = 0;
                    for (size_t k = 0; k < n; k++) {
                        member |= members[k] == map[p].ids[i];
                    }
                    FUZZ_CHECK(kept == member);
                }
            }
            hy_free(again);
        }
    }
    hy_free(map);
    return 0;
}
