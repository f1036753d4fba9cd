/*
 * helpers.c - libhalyard's typed helpers (include/halyard.h): GET, SET, DEL and INCRBY as
 * argument vectors for halyard_command, and the integer answers taken out of the reply. They
 * add nothing to the request engine: a helper behaves as the command it builds. And
 * halyard_quorum_parse, which reads the server's -NOQUORUM and -QUORUM texts
 * (docs/protocol.md "Errors") out of a reply.
 */
#include <stdio.h>
#include <string.h>

#include "halyard.h"

/* The reply's integer into *out when the command succeeded with one. A server that answered
 * something else (a plain Redis module, say) leaves *out alone but keeps HALYARD_OK: the reply
 * says what came. */
static halyard_status take_integer(halyard_status st, const halyard_reply *r, long long *out)
{
    if (st == HALYARD_OK && out != NULL && r != NULL && r->type == HALYARD_REPLY_INTEGER) {
        *out = r->integer;
    }
    return st;
}

halyard_status halyard_get(halyard_client *c, const char *key, halyard_reply **reply)
{
    if (key == NULL) {
        *reply = NULL;
        return HALYARD_INVALID;
    }
    const char *argv[] = {"GET", key};
    return halyard_command(c, 2, argv, NULL, reply);
}

halyard_status halyard_set(halyard_client *c, const char *key, const void *value, size_t len,
                           halyard_reply **reply)
{
    if (key == NULL || (value == NULL && len > 0)) {
        *reply = NULL;
        return HALYARD_INVALID;
    }
    const char *argv[] = {"SET", key, value != NULL ? value : ""};
    const size_t argvlen[] = {3, strlen(key), len};
    return halyard_command(c, 3, argv, argvlen, reply);
}

halyard_status halyard_del(halyard_client *c, const char *key, long long *out,
                           halyard_reply **reply)
{
    if (key == NULL) {
        *reply = NULL;
        return HALYARD_INVALID;
    }
    const char *argv[] = {"DEL", key};
    halyard_status st = halyard_command(c, 2, argv, NULL, reply);
    return take_integer(st, *reply, out);
}

halyard_status halyard_incrby(halyard_client *c, const char *key, long long by, long long *out,
                              halyard_reply **reply)
{
    if (key == NULL) {
        *reply = NULL;
        return HALYARD_INVALID;
    }
    char num[24];
    snprintf(num, sizeof(num), "%lld", by);
    const char *argv[] = {"INCRBY", key, num};
    halyard_status st = halyard_command(c, 3, argv, NULL, reply);
    return take_integer(st, *reply, out);
}

int halyard_quorum_parse(const halyard_reply *r, halyard_quorum_info *out)
{
    if (r == NULL || r->str == NULL || out == NULL) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    int partition = 0;
    /* NOQUORUM <partition> <have>/<need> ...: -1 names the metadata group (docs/protocol.md). */
    if (sscanf(r->str, "NOQUORUM %d %u/%u", &partition, &out->have, &out->need) == 3) {
        out->partition = partition >= 0 ? (unsigned)partition : HALYARD_PARTITION_METADATA;
        return 0;
    }
    /* QUORUM <rule> required=<n> actual=<m> */
    if (sscanf(r->str, "QUORUM %63s required=%u actual=%u", out->name, &out->required,
               &out->actual) == 3) {
        out->rule = 1;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -1;
}
