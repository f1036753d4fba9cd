/*
 * fuzz_wan.c - libFuzzer target for the decoders of links between clusters (docs/wan.md): the
 * batch a source partition leader ships (wan_batch_open/next, run by a target on bytes that
 * arrive over its client port in HY.WANAPPLY) and a link's stored definition (wan_link_decode,
 * read from the metadata group's keyspace), and a partition's outbox as its snapshots keep it
 * (wan_outbox_image_decode); a cluster's region role (wan_role_decode, from the metadata group)
 * and a target's -DEMOTED refusal as the sender reads it (wan_demoted_parse, bytes from the
 * target's client port).
 *
 * The input's first byte picks the decoder ('O' the outbox, 'R' a role, 'D' a refusal, else odd
 * a link, even a batch); for a link, the next byte is the name's length.
 * Properties: decoding never crashes or reads past the input; a batch that reads to its end
 * has strictly increasing indexes and, built again with wan_batch_init_ext (its header
 * extension, an active-active link's name and policies or a resync's base and slots, copied
 * as read) and wan_batch_add,
 * gives back exactly the input (one encoding per batch); a definition that decodes encodes back to
 * exactly its bytes, and so does an outbox image; a role that decodes encodes to a value that
 * decodes to the same role; a refusal read gives an epoch above 0 and a valid name that fits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "node/wan.h"
#include "store/store_wan.h"
#include "fuzz.h"

static void fuzz_role(const uint8_t *p, size_t len)
{
    struct wan_role r, again;
    if (!wan_role_decode(p, len, &r)) {
        return;
    }
    FUZZ_CHECK(r.epoch > 0 && wan_name_ok((const uint8_t *)r.by, strlen(r.by)));
    struct hy_buf out;
    hy_buf_init(&out);
    wan_role_encode(&r, &out);
    FUZZ_CHECK(wan_role_decode(out.data, out.len, &again));
    FUZZ_CHECK(again.kind == r.kind && again.epoch == r.epoch && strcmp(again.by, r.by) == 0);
    /* A promotion in place of one source keeps it; only a primary has one. */
    FUZZ_CHECK(strcmp(again.from, r.from) == 0 &&
               (r.from[0] == '\0' || r.kind == WAN_ROLE_PRIMARY));
    hy_buf_free(&out);
}

static void fuzz_demoted(const uint8_t *p, size_t len)
{
    char *err = malloc(len + 1);
    FUZZ_CHECK(err != NULL);
    memcpy(err, p, len);
    err[len] = '\0';
    uint64_t epoch = 0;
    char by[8];
    if (wan_demoted_parse(err, &epoch, by, sizeof(by))) {
        FUZZ_CHECK(epoch > 0 && strlen(by) < sizeof(by) &&
                   wan_name_ok((const uint8_t *)by, strlen(by)));
    }
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_batch(const uint8_t *p, size_t len)
{
    struct wan_batch_reader r;
    if (wan_batch_open(&r, p, len) != HY_OK) {
        return;
    }
    FUZZ_CHECK(strlen(r.origin) >= 1 && strlen(r.origin) <= WAN_ORIGIN_MAX);
    FUZZ_CHECK(!r.clear || (r.resync && r.clear_lo <= r.clear_hi && r.clear_hi < 16384));
    struct wan_batch again;
    wan_batch_init_ext(&again, r.origin, r.src_partition, SIZE_MAX, UINT32_MAX, r.ext, r.ext_len);
    uint64_t last = 0, index;
    const uint8_t *entry;
    size_t elen;
    enum hy_status rc;
    while ((rc = wan_batch_next(&r, &index, &entry, &elen)) == HY_OK) {
        FUZZ_CHECK(index > last);
        FUZZ_CHECK(entry >= p && elen <= len && entry + elen <= p + len);
        FUZZ_CHECK(wan_batch_add(&again, index, entry, elen) == HY_OK);
        last = index;
    }
    if (rc == HY_ENOTFOUND) {
        FUZZ_CHECK(again.buf.len == len && memcmp(again.buf.data, p, len) == 0);
    } else {
        FUZZ_CHECK(rc == HY_ECORRUPT);
    }
    wan_batch_free(&again);
}

static void fuzz_link(const uint8_t *p, size_t len)
{
    if (len < 1) {
        return;
    }
    size_t name_len = p[0] < len - 1 ? p[0] : len - 1;
    const uint8_t *name = p + 1, *value = p + 1 + name_len;
    size_t vlen = len - 1 - name_len;
    struct wan_link l;
    if (!wan_link_decode(name, name_len, value, vlen, &l)) {
        return;
    }
    FUZZ_CHECK(strlen(l.name) == name_len && memcmp(l.name, name, name_len) == 0);
    struct hy_buf out;
    hy_buf_init(&out);
    wan_link_encode(&l, &out);
    FUZZ_CHECK(out.len == vlen && memcmp(out.data, value, vlen) == 0);
    hy_buf_free(&out);
}

static void fuzz_outbox(const uint8_t *p, size_t len)
{
    struct wan_outbox_image im;
    if (!wan_outbox_image_decode(p, len, &im)) {
        return;
    }
    FUZZ_CHECK(im.recs_len <= len && im.count <= len / WAN_OUTBOX_REC_HEADER);
    struct hy_buf out;
    hy_buf_init(&out);
    wan_outbox_image_encode(&im, &out);
    FUZZ_CHECK(out.len == len && memcmp(out.data, p, len) == 0);
    hy_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if (data[0] == 'O') {
        fuzz_outbox(data + 1, size - 1);
    } else if (data[0] == 'R') {
        fuzz_role(data + 1, size - 1);
    } else if (data[0] == 'D') {
        fuzz_demoted(data + 1, size - 1);
    } else if (data[0] & 1) {
        fuzz_link(data + 1, size - 1);
    } else {
        fuzz_batch(data + 1, size - 1);
    }
    return 0;
}
