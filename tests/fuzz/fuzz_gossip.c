/*
 * fuzz_gossip.c - libFuzzer target for the membership message codec
 * (membership_msg_decode, src/membership): the payload of a GOSSIP frame from an untrusted
 * peer.
 *
 *  - decoding never crashes nor reads outside the input (each input is copied into an
 *    allocation of exactly its size, so ASan sees any overread);
 *  - a message the decoder accepts re-encodes to exactly its own bytes;
 *  - an accepted message, fed to a small view, never breaks the core's invariants (its
 *    assertions are on in this build).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/status.h"
#include "membership/membership.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_send_cb(void *ctx, const char *to, const struct membership_msg *msg)
{
    (void)ctx;
    (void)to;
    (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fuzz_copy(data, size);
    struct membership_msg msg;
    if (membership_msg_decode(copy, size, &msg) == HY_OK) {
        struct hy_buf again;
        hy_buf_init(&again);
        membership_msg_encode(&again, &msg);
        FUZZ_CHECK(again.len == size && memcmp(again.data, copy, size) == 0);
        hy_buf_free(&again);
        struct membership_config cfg;
        membership_config_default(&cfg);
        cfg.members_max = 16;
        struct membership_callbacks cbs = {.send_cb = no_send_cb};
        struct membership m;
        FUZZ_CHECK(membership_init(&m, &cfg, "self", NULL, &cbs, 1, 0) == HY_OK);
        FUZZ_CHECK(membership_add(&m, "peer", 0) == HY_OK);
        membership_receive(&m, "peer", &msg, 10);
        membership_tick(&m, 5000);
        membership_receive(&m, "peer", &msg, 6000);
        membership_tick(&m, 60000);
        membership_free(&m);
    }
    free(copy);
    return 0;
}
