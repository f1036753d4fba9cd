/*
 * fuzz_wire.c - libFuzzer target for the peer wire codec (src/proto/wire.c).
 *
 * The input is a byte stream from an untrusted peer. It is read as a sequence of frames:
 *  - whole, then arriving in two reads split at a point derived from the data, then (for
 *    short inputs) one byte at a time: all readings must give the same frames and the same
 *    error, or the reader's resumption state is wrong;
 *  - every frame accepted must re-encode to exactly its own bytes (the encoder and decoder
 *    agree on one layout, and the decoder accepts no frame the encoder could not produce);
 *  - every decoded pointer lies inside the frame it came from.
 * The WAN link's frames (WAN_HELLO, WAN_APPLY, WAN_DEMOTE, WAN_PARTS, WAN_REPLY) are held to
 * the same rules: the corpus has one of each (wan-*).
 * Each buffer handed to the reader is a fresh allocation of exactly the bytes "received", so a
 * read past them shows up under ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/status.h"
#include "proto/wire.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits half of the time (chosen by the last byte) so that every limit is reachable. */
static void fuzz_limits(const uint8_t *data, size_t size, struct wire_limits *l)
{
    wire_limits_default(l);
    if (size > 0 && (data[size - 1] & 1)) {
        l->frame_bytes_max = 512;
        l->entries_max = 4;
    }
}

static int inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
    return n == 0 || (p >= base && p <= base + len && n <= (size_t)(base + len - p));
}

static void check_raft_pointers(const struct raft_message *m, const uint8_t *f, size_t len)
{
    for (uint32_t i = 0; i < m->n_entries; i++) {
        FUZZ_CHECK(inside(m->entries[i].data, m->entries[i].len, f, len));
    }
    FUZZ_CHECK(inside(m->data, m->len, f, len));
    FUZZ_CHECK(m->snap_membership.count <= RAFT_SERVERS_MAX);
}

/* Encodes a decoded frame again; the result must be the frame's own bytes. */
static void reencode(const struct wire_frame *fr, const struct wire_limits *l, struct hy_buf *out)
{
    switch (fr->type) {
    case WIRE_HELLO:
    case WIRE_CHALLENGE: FUZZ_CHECK(wire_encode_hello(out, &fr->hello) == HY_OK); break;
    case WIRE_WAN_HELLO: FUZZ_CHECK(wire_encode_wan_hello(out, &fr->hello) == HY_OK); break;
    case WIRE_WAN_APPLY:
    case WIRE_WAN_DEMOTE:
    case WIRE_WAN_PARTS:
    case WIRE_WAN_REPLY: FUZZ_CHECK(wire_encode_wan(out, fr->type, &fr->wan, l) == HY_OK); break;
    case WIRE_AUTH: wire_encode_auth(out, fr->mac); break;
    case WIRE_WELCOME: wire_encode_welcome(out); break;
    case WIRE_REJECT: {
        char text[WIRE_REASON_MAX + 1];
        memcpy(text, fr->reject.text, fr->reject.text_len);
        text[fr->reject.text_len] = '\0';
        wire_encode_reject(out, fr->reject.code, text);
        break;
    }
    case WIRE_RAFT: FUZZ_CHECK(wire_encode_raft(out, fr->raft_group, &fr->raft, l) == HY_OK); break;
    case WIRE_PING:
    case WIRE_PONG: wire_encode_ping(out, fr->type, fr->ping_token); break;
    case WIRE_FORWARD:
    case WIRE_FORWARD_REPLY:
    case WIRE_PUBLISH:
    case WIRE_GOSSIP:
    case WIRE_BUSY:
        FUZZ_CHECK(wire_encode_forward(out, fr->type, fr->forward.req_id, fr->forward.data,
                                       fr->forward.len, l) == HY_OK);
        break;
    case WIRE_HEARTBEAT: {
        struct hy_buf entries;
        hy_buf_init(&entries);
        for (uint32_t i = 0; i < fr->heartbeat.count; i++) {
            uint16_t group;
            struct raft_message m;
            wire_heartbeat_get(&fr->heartbeat, i, &group, &m);
            FUZZ_CHECK(wire_heartbeat_add(&entries, group, &m) == HY_OK);
        }
        FUZZ_CHECK(wire_encode_heartbeat(out, entries.data, fr->heartbeat.count, l) == HY_OK);
        hy_buf_free(&entries);
        break;
    }
    default: FUZZ_CHECK(0);
    }
}

/* Checks one accepted frame and appends a digest of it (its bytes) to d. */
static void frame_record(struct hy_buf *d, const struct wire_frame *fr, const struct wire_limits *l,
                         const uint8_t *f, size_t len)
{
    if (fr->type == WIRE_RAFT) {
        check_raft_pointers(&fr->raft, f, len);
        FUZZ_CHECK(wire_raft_frame_len(&fr->raft) == len);
    }
    if (fr->type == WIRE_HEARTBEAT) {
        FUZZ_CHECK(inside(fr->heartbeat.entries,
                          (size_t)fr->heartbeat.count * WIRE_HEARTBEAT_ENTRY_BYTES, f, len));
    }
    if (fr->type == WIRE_FORWARD || fr->type == WIRE_FORWARD_REPLY || fr->type == WIRE_PUBLISH ||
        fr->type == WIRE_GOSSIP || fr->type == WIRE_BUSY) {
        FUZZ_CHECK(inside(fr->forward.data, fr->forward.len, f, len));
    }
    if (fr->type == WIRE_WAN_APPLY || fr->type == WIRE_WAN_DEMOTE || fr->type == WIRE_WAN_REPLY) {
        FUZZ_CHECK(inside(fr->wan.data, fr->wan.len, f, len));
    }
    struct hy_buf again;
    hy_buf_init(&again);
    reencode(fr, l, &again);
    FUZZ_CHECK(again.len == len && memcmp(again.data, f, len) == 0);
    hy_buf_free(&again);
    hy_buf_printf(d, "F%u:%zu;", fr->type, len);
}

/* Reads the stream delivered in chunks ending at the offsets in cuts[] (the last is size);
 * appends the frames and final status to d. */
static void read_stream(struct hy_buf *d, const uint8_t *data, size_t size,
                        const struct wire_limits *l, const size_t *cuts, size_t n_cuts)
{
    struct wire_reader r;
    wire_reader_init(&r, l);
    size_t start = 0; /* first unconsumed byte */
    int rc = HY_EAGAIN;
    for (size_t c = 0; c < n_cuts; c++) {
        for (;;) {
            size_t avail = cuts[c] - start;
            uint8_t *copy = hy_xmalloc(avail > 0 ? avail : 1);
            memcpy(copy, data + start, avail);
            struct wire_frame fr;
            size_t consumed = 0;
            rc = wire_read(&r, copy, avail, &consumed, &fr);
            FUZZ_CHECK(rc == HY_OK || rc == HY_EAGAIN || rc == HY_EPROTO || rc == HY_ECORRUPT ||
                       rc == HY_ETOOBIG);
            FUZZ_CHECK(rc == HY_OK ? consumed > 0 && consumed <= avail : consumed == 0);
            FUZZ_CHECK(rc == HY_OK || rc == HY_EAGAIN || r.error[0] != '\0');
            if (rc == HY_OK) {
                frame_record(d, &fr, l, copy, consumed);
                start += consumed;
            }
            hy_free(copy);
            if (rc != HY_OK) {
                break;
            }
        }
        if (rc != HY_EAGAIN) {
            break;
        }
    }
    hy_buf_printf(d, "rc=%d", rc);
    wire_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_limits l;
    fuzz_limits(data, size, &l);
    struct hy_buf whole, split, bytes;
    hy_buf_init(&whole);
    hy_buf_init(&split);
    hy_buf_init(&bytes);

    size_t all[1] = {size};
    read_stream(&whole, data, size, &l, all, 1);

    size_t at = size > 0 ? (size_t)data[0] * 7 % (size + 1) : 0;
    size_t two[2] = {at, size};
    read_stream(&split, data, size, &l, two, 2);
    FUZZ_CHECK(whole.len == split.len && memcmp(whole.data, split.data, whole.len) == 0);

    if (size <= 512) {
        size_t *cuts = hy_xmalloc((size + 1) * sizeof(*cuts));
        for (size_t i = 0; i <= size; i++) {
            cuts[i] = i;
        }
        read_stream(&bytes, data, size, &l, cuts, size + 1);
        FUZZ_CHECK(whole.len == bytes.len && memcmp(whole.data, bytes.data, whole.len) == 0);
        hy_free(cuts);
    }
    hy_buf_free(&whole);
    hy_buf_free(&split);
    hy_buf_free(&bytes);
    return 0;
}
