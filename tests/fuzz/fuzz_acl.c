/*
 * fuzz_acl.c - libFuzzer target for the ACL rule parser (store_acl_rule_apply) and the ACL
 * file parser (acl_file_parse), both fed by operators and clients.
 *
 * The input is an ACL file. Properties:
 *  - parsing never crashes, and every argument it returns points into the input or into
 *    strings the parse made (ASan sees a stray pointer);
 *  - each user's rules, applied to a fresh user, either fail with a reason or build a user
 *    whose description, parsed back rule by rule, builds a user with the same description (a
 *    snapshot stores users as their descriptions: the round trip must be exact);
 *  - the file as one STORE_OP_ACL_LOAD entry applies without a crash, and it succeeds exactly
 *    when every user built (and a failed load leaves the users as they were).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/status.h"
#include "node/acl.h"
#include "store/store.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rebuilds a user from a description (space-separated rules); 0 when a rule fails. */
static int rebuild(const char *name, const struct hy_buf *d, struct hy_buf *again)
{
    struct store_acl_user *u = store_acl_user_new((const uint8_t *)name, strlen(name));
    size_t i = 0;
    int ok = 1;
    while (ok && i < d->len) {
        size_t j = i;
        while (j < d->len && d->data[j] != ' ') {
            j++;
        }
        ok = store_acl_rule_apply(u, d->data + i, j - i) == NULL;
        i = j + 1;
    }
    if (ok) {
        store_acl_user_describe(u, again);
    }
    store_acl_user_free(u);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = hy_xmalloc(size + 1);
    memcpy(copy, data, size);
    struct acl_file f;
    char err[300];
    if (acl_file_parse(copy, size, &f, err, sizeof(err)) != 0) {
        FUZZ_CHECK(strchr(err, ':') != NULL); /* "LINE: reason" */
        hy_free(copy);
        return 0;
    }
    int all_built = 1, has_keeper = 0;
    size_t users = 0;
    struct hy_buf d, again;
    hy_buf_init(&d);
    hy_buf_init(&again);
    for (size_t i = 0; i < f.argc; users++) {
        FUZZ_CHECK(i + 1 < f.argc);
        size_t rules = strtoull((const char *)f.args[i + 1].ptr, NULL, 10);
        FUZZ_CHECK(i + 2 + rules <= f.argc);
        char name[STORE_ACL_NAME_MAX + 1];
        size_t nlen = f.args[i].len < STORE_ACL_NAME_MAX ? f.args[i].len : STORE_ACL_NAME_MAX;
        memcpy(name, f.args[i].ptr, nlen);
        name[nlen] = '\0';
        has_keeper |= f.args[i].len == 6 && memcmp(f.args[i].ptr, "keeper", 6) == 0;
        struct store_acl_user *u = store_acl_user_new((const uint8_t *)name, nlen);
        int built = 1;
        for (size_t r = 0; r < rules && built; r++) {
            built = store_acl_rule_apply(u, f.args[i + 2 + r].ptr, f.args[i + 2 + r].len) == NULL;
        }
        if (built) {
            hy_buf_reset(&d);
            hy_buf_reset(&again);
            store_acl_user_describe(u, &d);
            FUZZ_CHECK(rebuild(name, &d, &again));
            FUZZ_CHECK(again.len == d.len && memcmp(again.data, d.data, d.len) == 0);
        }
        store_acl_user_free(u);
        all_built &= built;
        i += 2 + rules;
    }
    /* The whole file as one replicated entry. */
    struct store_config cfg = {.seed = 1};
    struct store *s = store_create(&cfg, NULL);
    struct store_arg keep[2] = {{(const uint8_t *)"keeper", 6}, {(const uint8_t *)"0", 1}};
    struct store_entry e0 = {.op = STORE_OP_ACL_LOAD, .expire_at_ms = -1, .argc = 2, .argv = keep};
    struct hy_buf enc;
    hy_buf_init(&enc);
    store_entry_encode(&e0, &enc);
    FUZZ_CHECK(store_apply(s, enc.data, enc.len, NULL) == HY_OK);
    struct store_entry e = {
        .op = STORE_OP_ACL_LOAD, .expire_at_ms = -1, .argc = (uint32_t)f.argc, .argv = f.args};
    hy_buf_reset(&enc);
    store_entry_encode(&e, &enc);
    struct hy_buf out;
    hy_buf_init(&out);
    struct resp_writer w = {&out, 2};
    FUZZ_CHECK(store_apply(s, enc.data, enc.len, &w) == HY_OK);
    int loaded = out.len >= 3 && memcmp(out.data, "+OK", 3) == 0;
    /* Names the parse let through may still be refused by the store (spaces cannot occur,
     * but control bytes, a name too long, or too many users): a refusal then is fine. */
    if (loaded) {
        FUZZ_CHECK(all_built);
        FUZZ_CHECK((store_acl_find(s, (const uint8_t *)"keeper", 6) != NULL) == has_keeper);
    } else {
        FUZZ_CHECK(store_acl_find(s, (const uint8_t *)"keeper", 6) != NULL);
    }
    hy_buf_free(&out);
    hy_buf_free(&enc);
    hy_buf_free(&d);
    hy_buf_free(&again);
    store_destroy(s);
    acl_file_free(&f);
    hy_free(copy);
    return 0;
}
