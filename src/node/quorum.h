/*
 * quorum.h - split-brain protection rules (issue 14, "Split-brain protection rules"; Hazelcast's
 * split-brain protection): named rules, each with a minimum number of live members (as the
 * failure detector sees them: this node and every member gossip holds alive or suspect), a type
 * (read, write or read-write) and a key pattern (a glob, `*` for every key). A command of the
 * rule's type whose keys match is refused with `-QUORUM <rule> required=<n> actual=<m>` while
 * fewer members are live. Raft's majority still decides what commits; a rule only refuses
 * earlier, and refuses reads too (a READONLY connection's stale reads on a minority side).
 *
 * The setting `quorum-rules` is a comma-separated list of NAME:MIN:TYPE[:PATTERN] (a YAML
 * sequence is joined with commas); this module parses it. Pure.
 */
#ifndef HY_QUORUM_H
#define HY_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#define QUORUM_RULES_MAX   16
#define QUORUM_NAME_MAX    32
#define QUORUM_PATTERN_MAX 128
#define QUORUM_MEMBERS_MAX 1000

enum quorum_type { QUORUM_READ = 1, QUORUM_WRITE = 2, QUORUM_READ_WRITE = 3 };

struct quorum_rule {
    char name[QUORUM_NAME_MAX + 1];
    uint32_t min_members;
    unsigned type; /* enum quorum_type: a bit set */
    char pattern[QUORUM_PATTERN_MAX + 1];
    size_t pattern_len;
};

struct quorum_rules {
    struct quorum_rule rule[QUORUM_RULES_MAX];
    size_t count;
};

/* Parses text (the setting's value; "" is no rule) into *out. Returns 1, or 0 with the reason
 * in err (cap bytes) and *out left empty. Names are [A-Za-z0-9_-]+ and unique. */
int quorum_rules_parse(const char *text, struct quorum_rules *out, char *err, size_t cap);

/* "read", "write" or "read-write". */
const char *quorum_type_name(unsigned type);

/* 1 when rule r applies to a command of kind (QUORUM_READ or QUORUM_WRITE) touching key (NULL:
 * a command without keys, or whose keys are unknown, which only `*` rules cover). */
int quorum_rule_applies(const struct quorum_rule *r, unsigned kind, const uint8_t *key,
                        size_t klen);

#endif
