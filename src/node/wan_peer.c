/*
 * wan_peer.c - a WAN link's requests that arrived on the peer port (node.h
 * node_wan_link_request, docs/multi-region.md "The link's transport").
 *
 * Each request runs as the same command a link sent on the client port, by an internal client
 * of its own (no socket, wan_link set: it may run only what a link sends), so routing to the
 * partition's leader, the apply-once check and the answers are those of HY.WANAPPLY, HALYARD
 * WAN DEMOTE and CONFIG GET partitions. Once the client has its one answer, the answer is
 * turned into a NODE_WAN_REPLY for the shell and the client freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "node/node_internal.h"
#include "proto/wire.h"

/* The length of the line at p (up to "\r\n" or the end). */
static size_t line_len(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len && p[i] != '\r' && p[i] != '\n') {
        i++;
    }
    return i;
}

/* The answer a command wrote (RESP) as a WAN_REPLY's fields: an integer, +OK (or any simple
 * string), an error's text, or CONFIG GET's pair (name, value): the value as an integer. */
static void reply_fields(const uint8_t *p, size_t len, int *status, int64_t *value,
                         const uint8_t **text, size_t *text_len)
{
    *status = WIRE_WAN_ERROR;
    *value = 0;
    *text = (const uint8_t *)"ERR the target gave an answer a link does not expect";
    *text_len = strlen((const char *)*text);
    size_t n = len > 0 ? line_len(p + 1, len - 1) : 0;
    if (len == 0) {
        return;
    }
    if (p[0] == ':' && hy_parse_i64(p + 1, n, value)) {
        *status = WIRE_WAN_INTEGER;
    } else if (p[0] == '+' || p[0] == '-') {
        *status = p[0] == '+' ? WIRE_WAN_OK : WIRE_WAN_ERROR;
        *text = p + 1;
        *text_len = HY_MIN(n, WIRE_REASON_MAX);
    } else if (p[0] == '*') {
        /* CONFIG GET partitions: *2 $10 partitions $N value; the last line is the value. */
        size_t end = len;
        while (end > 0 && (p[end - 1] == '\r' || p[end - 1] == '\n')) {
            end--;
        }
        size_t start = end;
        while (start > 0 && p[start - 1] != '\n') {
            start--;
        }
        if (start < end && hy_parse_i64(p + start, end - start, value)) {
            *status = WIRE_WAN_INTEGER;
            *text_len = 0;
        }
    }
}

int wan_peer_maybe_finish(struct hy_node *n, struct node_client *c)
{
    if (c->wan_conn == 0 || c->waiting > 0 || c->blocked_on_read || c->forwarding ||
        c->in.len > 0 || c->out.len == 0 || c->scatter_pending > 0) {
        return 0;
    }
    int status;
    int64_t value;
    const uint8_t *text;
    size_t text_len;
    reply_fields(c->out.data, c->out.len, &status, &value, &text, &text_len);
    char clean[WIRE_REASON_MAX];
    for (size_t i = 0; i < text_len; i++) {
        clean[i] = text[i] >= 0x20 && text[i] <= 0x7e ? (char)text[i] : '?';
    }
    node_outbox_push(n, NODE_WAN_REPLY, "", c->wan_req, (const uint8_t *)clean, text_len);
    n->outbox_tail->wan_conn = c->wan_conn;
    n->outbox_tail->wan_status = status;
    n->outbox_tail->wan_value = value;
    node_client_free(n, c);
    return 1;
}

void node_wan_link_request(struct hy_node *n, uint64_t conn, const char *source, uint64_t req_id,
                           int op, uint16_t slot, uint64_t epoch, const uint8_t *data, size_t len,
                           uint64_t now_ms)
{
    char addr[96];
    snprintf(addr, sizeof(addr), "wan:%s", source);
    struct node_client *c = node_client_new(n, addr, "", -1, now_ms);
    c->flags &= ~NODE_CLIENT_CLOSE_AFTER_REPLY; /* maxclients is for sockets */
    hy_buf_reset(&c->out);
    c->authenticated = 1; /* the peer transport checked the link's proof */
    c->wan_link = 1;
    c->user[0] = '\0'; /* not a client's rights: wan_link says what it may run */
    c->wan_conn = conn;
    c->wan_req = req_id;
    struct resp_writer w = {&c->in, 2};
    char num[24];
    if (op == NODE_WAN_OP_APPLY) {
        snprintf(num, sizeof(num), "%u", (unsigned)slot);
        resp_write_array(&w, 3);
        resp_write_bulk_str(&w, "HY.WANAPPLY");
        resp_write_bulk_str(&w, num);
        resp_write_bulk(&w, data, len);
    } else if (op == NODE_WAN_OP_DEMOTE) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)epoch);
        resp_write_array(&w, 5);
        resp_write_bulk_str(&w, "HALYARD");
        resp_write_bulk_str(&w, "WAN");
        resp_write_bulk_str(&w, "DEMOTE");
        resp_write_bulk_str(&w, num);
        resp_write_bulk(&w, data, len);
    } else {
        resp_write_array(&w, 3);
        resp_write_bulk_str(&w, "CONFIG");
        resp_write_bulk_str(&w, "GET");
        resp_write_bulk_str(&w, "partitions");
    }
    node_client_process(n, c, now_ms);
    wan_peer_maybe_finish(n, c);
}
