/*
 * dns.h - reading the answer to a DNS SRV query (RFC 2782, message format RFC 1035 §4.1),
 * for discovery: `--join _halyard._tcp.NAME` asks the resolver (res_query, in the shell) for
 * the members' targets and peer ports at every attempt, and this module reads its reply.
 *
 * The reply comes from the network: it is untrusted. The reader is bounded (names of at most
 * 255 bytes, at most DNS_POINTER_JUMPS_MAX compression jumps, every offset checked), keeps
 * only targets whose labels are host-name characters ([A-Za-z0-9_-]) so that what reaches
 * getaddrinfo and the logs is a plain name, and never reads outside the buffer. Pure.
 */
#ifndef HY_DNS_H
#define HY_DNS_H

#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX          253
#define DNS_POINTER_JUMPS_MAX 16
#define DNS_TYPE_SRV          33

struct dns_srv {
    uint16_t priority, weight, port;
    char target[DNS_NAME_MAX + 1]; /* without the final dot */
};

/*
 * Reads the SRV records of the DNS message msg (len bytes; borrowed): at most cap of them into
 * out, sorted by priority (lowest first) then weight (highest first), in *count_out. Records of
 * other types, targets "." (no service) and targets with other characters are skipped.
 * Returns HY_OK, or HY_EPROTO for a message that is not a well-formed reply (then *count_out
 * is 0).
 */
int dns_srv_parse(const uint8_t *msg, size_t len, struct dns_srv *out, size_t cap,
                  size_t *count_out);

#endif
