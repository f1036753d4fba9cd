/*
 * htab.h - a chained hash table with incremental rehash, used for the keyspace and for hash
 * objects.
 *
 * Nodes are intrusive: a node struct begins with `struct htab_node` and the table asks the
 * key_fn for the node's key bytes, so an entry is one allocation with its key inline and the
 * table stores no hash and no key copy (memory per key is a product target).
 *
 * Resizing is incremental, so no single operation pays for moving a whole table: while a
 * resize is under way there are two bucket arrays, lookups search both, inserts go to the new
 * one, and every insert/remove (plus htab_rehash_step when idle) moves a few buckets across.
 * The table grows to twice its size at load factor 1 and shrinks when less than 1/8 full.
 *
 * Invariants: every node is in exactly one bucket; buckets of table 0 below rehash_idx are
 * empty while rehashing; used[0] + used[1] is the node count; table_bytes is the allocator's
 * usable size of both bucket arrays.
 *
 * htab_scan walks buckets in reverse-binary cursor order, so a node present for the whole
 * scan is returned at least once even when the table resizes between calls.
 */
#ifndef HY_STORE_HTAB_H
#define HY_STORE_HTAB_H

#include <stddef.h>
#include <stdint.h>

#include "common/prng.h"

struct htab_node {
    struct htab_node *next;
};

/* Reports the key bytes of node n (borrowed from the node). */
typedef void (*htab_key_fn)(const struct htab_node *n, const uint8_t **k_out, size_t *klen_out);
typedef void (*htab_visit_cb)(void *ctx, struct htab_node *n);

struct htab {
    struct htab_node **table[2];
    uint8_t size_exp[2]; /* table i has 1 << size_exp[i] buckets when table[i] != NULL */
    size_t used[2];
    long rehash_idx; /* next bucket of table 0 to move; -1 when not rehashing */
    uint64_t seed;
    htab_key_fn key_fn;
    size_t table_bytes;
};

void htab_init(struct htab *h, htab_key_fn key_fn, uint64_t seed);
/* Calls free_cb on every node (which may free it) and releases the bucket arrays; the table is
 * empty and reusable afterwards. free_cb may be NULL. */
void htab_clear(struct htab *h, htab_visit_cb free_cb, void *ctx);

size_t htab_count(const struct htab *h);
uint64_t htab_hash(const struct htab *h, const uint8_t *k, size_t klen);

/* The node with key k, or NULL. */
/* A hint (no effect): loads the bucket of the key whose htab_hash is hv (deep = 0) or, deep =
 * 1, the first node in it (the bucket itself is read: hint it with deep = 0 first). */
void htab_prefetch(const struct htab *h, uint64_t hv, int deep);
struct htab_node *htab_find(const struct htab *h, const uint8_t *k, size_t klen);
/* The link (bucket slot or predecessor's next field) that points at the node with key k, or
 * NULL. Valid until the next insert, remove or rehash step. */
struct htab_node **htab_find_link(struct htab *h, const uint8_t *k, size_t klen);

/* Inserts n. Precondition: no node with n's key is present. */
void htab_insert(struct htab *h, struct htab_node *n);
/* Unlinks and returns the node with key k (the caller owns it), or NULL. */
struct htab_node *htab_remove(struct htab *h, const uint8_t *k, size_t klen);
/* Puts new_node in old's place; both must have the same key (a reallocated entry). */
void htab_replace(struct htab *h, struct htab_node *old, struct htab_node *new_node);

/* Presizes the table for count nodes (snapshot load), skipping incremental growth. Only on an
 * empty table. */
void htab_presize(struct htab *h, size_t count);
/* Moves up to `steps` buckets of an ongoing resize; returns 1 while more work remains. */
int htab_rehash_step(struct htab *h, unsigned steps);
int htab_is_rehashing(const struct htab *h);

/* Visits the bucket(s) at cursor and returns the next cursor (0 = done). cb must not change
 * the table. */
uint64_t htab_scan(const struct htab *h, uint64_t cursor, htab_visit_cb cb, void *ctx);
/* Visits every node; cb must not change the table. */
void htab_foreach(const struct htab *h, htab_visit_cb cb, void *ctx);
/* A random node (close to uniform: a random non-empty bucket, then a random chain element),
 * or NULL when empty. */
struct htab_node *htab_random(const struct htab *h, struct hy_prng *prng);

#endif
