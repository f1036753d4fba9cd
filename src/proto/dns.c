/*
 * dns.c - the SRV records of a DNS reply (dns.h). Pure.
 */
#include "proto/dns.h"

#include <string.h>

#include "common/assert.h"
#include "common/status.h"

#define DNS_HEADER_BYTES 12

static uint16_t load_u16be(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static int host_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/*
 * Reads the name at *off (following compression pointers), writing it dotted into out (cap
 * bytes, NUL-terminated) when out is not NULL; *off moves past the name where it sits (a
 * pointer ends it). Returns 1 when well formed, 0 otherwise; *plain_out is 0 when a label
 * holds a character that is not a host-name one.
 */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t cap,
                     int *plain_out)
{
    size_t at = *off, n = 0, total = 0;
    int jumps = 0, jumped = 0;
    *plain_out = 1;
    for (;;) {
        if (at >= len) {
            return 0;
        }
        uint8_t b = msg[at];
        if ((b & 0xc0) == 0xc0) {
            if (at + 1 >= len || ++jumps > DNS_POINTER_JUMPS_MAX) {
                return 0;
            }
            if (!jumped) {
                *off = at + 2;
                jumped = 1;
            }
            at = (size_t)(((b & 0x3f) << 8) | msg[at + 1]);
            continue;
        }
        if ((b & 0xc0) != 0) {
            return 0; /* 0x40 and 0x80: label types RFC 1035 does not define */
        }
        at++;
        if (b == 0) {
            break;
        }
        if (at + b > len || (total += (size_t)b + 1) > 255) {
            return 0;
        }
        for (size_t i = 0; i < b; i++) {
            *plain_out &= host_char(msg[at + i]);
        }
        if (out != NULL && n + (n > 0) + b < cap) {
            if (n > 0) {
                out[n++] = '.';
            }
            memcpy(out + n, msg + at, b);
            n += b;
        }
        at += b;
    }
    if (!jumped) {
        *off = at;
    }
    if (out != NULL && cap > 0) {
        out[HY_MIN(n, cap - 1)] = '\0';
    }
    return 1;
}

/* Insertion into out[0..*count) kept sorted (priority up, weight down); drops past cap. */
static void insert_sorted(struct dns_srv *out, size_t cap, size_t *count, const struct dns_srv *r)
{
    size_t at = *count;
    while (at > 0 && (out[at - 1].priority > r->priority ||
                      (out[at - 1].priority == r->priority && out[at - 1].weight < r->weight))) {
        at--;
    }
    if (at >= cap) {
        return;
    }
    size_t move = (*count < cap ? *count : cap - 1) - at;
    memmove(&out[at + 1], &out[at], move * sizeof(*out));
    out[at] = *r;
    if (*count < cap) {
        (*count)++;
    }
}

int dns_srv_parse(const uint8_t *msg, size_t len, struct dns_srv *out, size_t cap,
                  size_t *count_out)
{
    *count_out = 0;
    if (len < DNS_HEADER_BYTES || !(msg[2] & 0x80) || (msg[3] & 0x0f) != 0) {
        return HY_EPROTO; /* not a reply, or an error reply */
    }
    size_t qd = load_u16be(msg + 4), an = load_u16be(msg + 6);
    size_t off = DNS_HEADER_BYTES;
    int plain;
    for (size_t i = 0; i < qd; i++) {
        if (!read_name(msg, len, &off, NULL, 0, &plain) || off + 4 > len) {
            return HY_EPROTO;
        }
        off += 4; /* type, class */
    }
    size_t count = 0;
    for (size_t i = 0; i < an; i++) {
        if (!read_name(msg, len, &off, NULL, 0, &plain) || off + 10 > len) {
            *count_out = 0;
            return HY_EPROTO;
        }
        uint16_t type = load_u16be(msg + off), klass = load_u16be(msg + off + 2);
        size_t rdlen = load_u16be(msg + off + 8);
        off += 10;
        if (off + rdlen > len) {
            *count_out = 0;
            return HY_EPROTO;
        }
        size_t end = off + rdlen;
        if (type == DNS_TYPE_SRV && klass == 1 && rdlen >= 7) {
            struct dns_srv r;
            r.priority = load_u16be(msg + off);
            r.weight = load_u16be(msg + off + 2);
            r.port = load_u16be(msg + off + 4);
            size_t name_at = off + 6;
            if (!read_name(msg, len, &name_at, r.target, sizeof(r.target), &plain) ||
                name_at != end) {
                *count_out = 0;
                return HY_EPROTO;
            }
            if (plain && r.target[0] != '\0' && r.port != 0) {
                insert_sorted(out, cap, &count, &r);
            }
        }
        off = end;
    }
    *count_out = count;
    return HY_OK;
}
