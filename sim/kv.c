/*
 * kv.c - the simulator's state machine: the real keyspace (src/store) driven by encoded log
 * entries exactly as the server drives it, with replies parsed back from RESP bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "proto/resp.h"
#include "sim.h"
#include "store/store.h"

struct sim_kv {
    struct store *store;
    struct hy_buf reply;
};

static void key_name(int key, char *buf)
{
    snprintf(buf, 8, "k%d", key);
}

struct sim_kv *sim_kv_create(uint64_t seed)
{
    struct sim_kv *kv = hy_xcalloc(1, sizeof(*kv));
    struct store_config cfg = {.seed = seed, .maxmemory_samples = 5};
    kv->store = store_create(&cfg, NULL);
    hy_buf_init(&kv->reply);
    return kv;
}

void sim_kv_destroy(struct sim_kv *kv)
{
    if (kv == NULL) {
        return;
    }
    store_destroy(kv->store);
    hy_buf_free(&kv->reply);
    hy_free(kv);
}

void sim_kv_encode(int kind, int key, int64_t arg, uint64_t time_ms, struct hy_buf *out)
{
    char k[8], v[24];
    key_name(key, k);
    size_t vlen = hy_format_i64(v, arg);
    struct store_arg argv[2] = {{(const uint8_t *)k, strlen(k)}, {(const uint8_t *)v, vlen}};
    struct store_entry e = {.time_ms = time_ms, .expire_at_ms = -1, .argv = argv, .argc = 1};
    switch (kind) {
    case SIM_OP_SET:
        e.op = STORE_OP_SET;
        e.argc = 2;
        break;
    case SIM_OP_INCR:
        e.op = STORE_OP_INCRBY;
        e.incr = 1;
        break;
    case SIM_OP_DEL: e.op = STORE_OP_DEL; break;
    default: HY_UNREACHABLE();
    }
    store_entry_encode(&e, out);
}

int sim_kv_apply(struct sim_kv *kv, const uint8_t *entry, size_t len, int64_t *result_out)
{
    hy_buf_reset(&kv->reply);
    struct resp_writer w = {.out = &kv->reply, .proto = 2};
    if (store_apply(kv->store, entry, len, &w) != HY_OK) {
        return 0;
    }
    const uint8_t *p = kv->reply.data;
    size_t n = kv->reply.len;
    *result_out = 0;
    if (n >= 5 && memcmp(p, "+OK\r\n", 5) == 0) {
        return 1;
    }
    if (n >= 3 && p[0] == ':' && p[n - 2] == '\r') {
        return hy_parse_i64(p + 1, n - 3, result_out);
    }
    return 0;
}

int sim_kv_get(struct sim_kv *kv, int key, int64_t *value_out)
{
    char k[8];
    key_name(key, k);
    const struct store_obj *o = store_find(kv->store, (const uint8_t *)k, strlen(k), 0);
    if (o == NULL) {
        return 0;
    }
    const uint8_t *p;
    size_t len;
    HY_ASSERT(store_obj_type(o) == STORE_STRING);
    store_obj_string(o, &p, &len);
    HY_ASSERT(hy_parse_i64(p, len, value_out));
    return 1;
}

void sim_kv_snapshot(struct sim_kv *kv, struct hy_buf *out)
{
    store_snapshot_encode(kv->store, out);
}

int sim_kv_restore(struct sim_kv *kv, const uint8_t *buf, size_t len)
{
    return store_snapshot_decode(kv->store, buf, len) == HY_OK;
}
