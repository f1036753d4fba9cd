/*
 * fuzz_busy_notice.c - libFuzzer target for the BUSY notice reader (node_busy_notice_parse,
 * src/node/busy_peers.c): the payload of a BUSY frame from a peer, authenticated but not
 * trusted (docs/peer-protocol.md "BUSY (14)").
 *
 *  - reading never crashes nor reads outside the input (each input is copied into an
 *    allocation of exactly its size, so ASan sees any overread);
 *  - what it accepts keeps the documented bounds (known flags, group numbers that fit 32 bits,
 *    no groups in an end notice, at most NODE_BUSY_GROUPS_MAX of them);
 *  - an accepted notice, written again by node_busy_notice_encode, reads back the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "node/node_internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_copy(data, size);
    struct node_busy_notice nb;
    if (node_busy_notice_parse(copy, size, &nb)) {
        FUZZ_CHECK(nb.flags <= NODE_BUSY_F_ALL);
        FUZZ_CHECK(nb.count <= NODE_BUSY_GROUPS_MAX);
        FUZZ_CHECK(nb.flags != 0 || nb.count == 0);
        struct hy_buf again;
        hy_buf_init(&again);
        node_busy_notice_encode(&again, &nb);
        struct node_busy_notice back;
        FUZZ_CHECK(node_busy_notice_parse(again.data, again.len, &back));
        FUZZ_CHECK(back.flags == nb.flags && back.ran_ms == nb.ran_ms && back.count == nb.count);
        for (size_t i = 0; i < nb.count; i++) {
            FUZZ_CHECK(back.group[i] == nb.group[i] && back.term[i] == nb.term[i]);
        }
        node_busy_notice_free(&back);
        hy_buf_free(&again);
        node_busy_notice_free(&nb);
    }
    free(copy);
    return 0;
}
