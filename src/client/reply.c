/*
 * reply.c - replies as a small tree the caller owns (halyard.h), copied out of the RESP value
 * the core parsed (whose strings borrow from its input buffer).
 */
#include <stdlib.h>
#include <string.h>

#include "client/core.h"
#include "proto/resp.h"

static char *dup_str(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s != NULL) {
        if (len > 0) {
            memcpy(s, p, len);
        }
        s[len] = '\0';
    }
    return s;
}

static halyard_reply_type type_of(enum resp_type t)
{
    switch (t) {
    case RESP_SIMPLE: return HALYARD_REPLY_STATUS;
    case RESP_ERROR:
    case RESP_BULK_ERROR: return HALYARD_REPLY_ERRORMSG;
    case RESP_INTEGER: return HALYARD_REPLY_INTEGER;
    case RESP_NULL: return HALYARD_REPLY_NIL;
    case RESP_BOOLEAN: return HALYARD_REPLY_BOOL;
    case RESP_DOUBLE: return HALYARD_REPLY_DOUBLE;
    case RESP_MAP:
    case RESP_ATTRIBUTE: return HALYARD_REPLY_MAP;
    case RESP_ARRAY:
    case RESP_SET:
    case RESP_PUSH: return HALYARD_REPLY_ARRAY;
    case RESP_BULK:
    case RESP_BIGNUM:
    case RESP_VERBATIM: break;
    }
    return HALYARD_REPLY_STRING;
}

halyard_reply *hyc_reply_of(const struct resp_value *v)
{
    halyard_reply *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->type = type_of(v->type);
    r->integer = v->integer;
    r->dval = v->dbl;
    if (v->str != NULL || r->type == HALYARD_REPLY_STRING || r->type == HALYARD_REPLY_STATUS ||
        r->type == HALYARD_REPLY_ERRORMSG) {
        r->str = dup_str(v->str, v->str ? v->len : 0);
        r->len = v->str ? v->len : 0;
        if (r->str == NULL) {
            free(r);
            return NULL;
        }
    }
    size_t n = (v->type == RESP_MAP || v->type == RESP_ATTRIBUTE) ? 2 * v->count : v->count;
    if (n > 0) {
        r->element = calloc(n, sizeof(*r->element));
        if (r->element == NULL) {
            halyard_reply_free(r);
            return NULL;
        }
        r->elements = n;
        for (size_t i = 0; i < n; i++) {
            r->element[i] = hyc_reply_of(&v->elems[i]);
            if (r->element[i] == NULL) {
                halyard_reply_free(r);
                return NULL;
            }
        }
    }
    return r;
}

halyard_reply *hyc_reply_error(const char *msg)
{
    halyard_reply *r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->type = HALYARD_REPLY_ERRORMSG;
        r->len = strlen(msg);
        r->str = dup_str((const uint8_t *)msg, r->len);
        if (r->str == NULL) {
            free(r);
            return NULL;
        }
    }
    return r;
}

void halyard_reply_free(halyard_reply *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        halyard_reply_free(r->element[i]);
    }
    free(r->element);
    free(r->str);
    free(r);
}

const char *halyard_status_str(halyard_status s)
{
    switch (s) {
    case HALYARD_OK: return "ok";
    case HALYARD_REPLY_ERROR: return "error reply";
    case HALYARD_NOT_APPLIED: return "not applied";
    case HALYARD_UNKNOWN: return "outcome unknown";
    case HALYARD_TIMEOUT: return "timeout";
    case HALYARD_AUTH: return "authentication refused";
    case HALYARD_INVALID: return "invalid argument";
    case HALYARD_NO_MEMORY: return "out of memory";
    case HALYARD_BUSY: return "busy (load shed by the client)";
    case HALYARD_CANCELLED: return "cancelled";
    case HALYARD_NO_QUORUM: return "no quorum (not applied)";
    case HALYARD_QUORUM_RULE: return "refused by a quorum rule (not applied)";
    case HALYARD_UNREACHABLE: return "cluster unreachable (not applied)";
    }
    return "?";
}
