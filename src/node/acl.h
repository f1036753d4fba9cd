/*
 * acl.h - ACL users in the engine (Redis 6/7 semantics for the common subset): command
 * categories, permission checks on every command, authentication, ACL LOG and the ACL command.
 *
 * The users are replicated state (store.h, "ACL users"); this module reads them from the store a
 * command runs against and never changes them but through log entries, so a change made on any
 * member holds on every member. Command rules are evaluated in order for each command ("+@all
 * -@dangerous +flushdb"): no compiled cache to invalidate, and a user has few rules. `default`
 * is implicit (on, +@all, ~*, &*) until ACL SETUSER names it; `requirepass`, when set, is the
 * default user's password (besides any it was given by ACL SETUSER). Passwords are hashed with
 * the SHA-256 the shell lends (node_set_hash): the core makes no calls into OpenSSL, and the
 * log and snapshots never hold a clear password. ACL LOG is per node, as Redis's.
 */
#ifndef HY_NODE_ACL_H
#define HY_NODE_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "node/node_internal.h"

#define ACL_LOG_MAX            128 /* entries kept (Redis's acllog-max-len default) */
/* Failed AUTH on one connection: after ACL_AUTH_FREE_FAILURES in a row, the next attempt waits
 * ACL_AUTH_DELAY_MS, doubling per failure up to ACL_AUTH_DELAY_MS_MAX (an earlier one is
 * refused without checking the password), so one connection cannot try passwords at speed. */
#define ACL_AUTH_FREE_FAILURES 3
#define ACL_AUTH_DELAY_MS      100
#define ACL_AUTH_DELAY_MS_MAX  10000

/* Redis's categories, in ACL CAT's order; a command's categories are a mask of these bits. */
size_t acl_category_count(void);
const char *acl_category_name(size_t i);
/* The category named name[0..len) (without '@'), or -1. */
int acl_category_find(const uint8_t *name, size_t len);
/* The categories of command d run with argv (subcommands of CLIENT, ACL and CLUSTER differ). */
uint32_t acl_command_categories(const struct cmd_def *d, size_t argc, const struct resp_arg *argv);

/* Whether the command rules (in order) let a user run d with argv. */
int acl_rules_allow(char *const *rules, size_t count, const struct cmd_def *d, size_t argc,
                    const struct resp_arg *argv);

enum acl_result { ACL_OK = 0, ACL_DENIED_CMD, ACL_DENIED_KEY, ACL_DENIED_CHANNEL };
/* Whether user u may run d with argv; on ACL_DENIED_KEY (ACL_DENIED_CHANNEL) *key_index_out
 * names the key (the channel or pattern). */
enum acl_result acl_user_check(const struct store_acl_user *u, const struct cmd_def *d, size_t argc,
                               const struct resp_arg *argv, size_t *key_index_out);

/* COMMAND INFO's ACL categories of d: a set of "@read", "@string"... */
void acl_write_categories(struct resp_writer *w, const struct cmd_def *d);

void acl_init(struct hy_node *n);
void acl_free(struct hy_node *n);

/* The dispatch hook: 1 when the client's user may run d as x asks, else 0 with the NOPERM
 * error written and an ACL LOG entry made. Forwarded requests were checked by the follower. */
int acl_check(struct cmd_ctx *x, const struct cmd_def *d);

/* AUTH / HELLO AUTH: user NULL means `default`. Returns 1 and switches the client to the user,
 * or writes the error (WRONGPASS, logged in ACL LOG) and returns 0. */
int acl_authenticate(struct cmd_ctx *x, const struct resp_arg *user, const struct resp_arg *pass);

/* Whether a new connection starts authenticated as `default` (on, nopass, no requirepass). */
int acl_default_open(const struct hy_node *n, const struct store *s);

/* Shared with cmd_acl.c. */
struct store_acl_user *acl__implicit_default(const struct hy_node *n);
const struct store_acl_user *acl__resolve(const struct hy_node *n, const struct store *s,
                                          const uint8_t *name, size_t len,
                                          struct store_acl_user **tmp_out);
void acl__log(struct cmd_ctx *x, const char *reason, const uint8_t *object, size_t olen,
              const char *username);
void acl__log_reply(struct cmd_ctx *x, size_t count);
void acl__log_reset(struct hy_node *n);
int acl__command_rule_known(const struct hy_node *n, const struct resp_arg *r);
/* A clear-password rule (">p" or "<p", len >= 1) as its hashed form ("#hex" or "!hex") into out
 * (ACL_HASHED_RULE_BYTES, NUL-terminated); n->crypto_hash must be set. */
#define ACL_HASHED_RULE_BYTES (2 * STORE_ACL_HASH_BYTES + 2)
void acl__hash_rule(const struct hy_node *n, const uint8_t *rule, size_t len, char *out);
/* Proposes op with x's arguments from argv[from] on, as they are (ACL DELUSER, HY.ACLLOAD). */
void acl__propose_args(struct cmd_ctx *x, uint32_t op, size_t from);

/* An ACL file parsed (acl_file.c): STORE_OP_ACL_LOAD's arguments, [name, rule count, rules...]
 * per user, and the line each came from. */
struct acl_file {
    struct store_arg *args;
    uint32_t *lines;
    size_t argc, cap;
    char **owned; /* strings the args point to that the file made */
    size_t owned_count;
};
/* Redis's format: "user NAME RULE..." per line; blank lines and lines starting with # are
 * skipped. 0 and *f (free with acl_file_free; args point into text), or -1 with "LINE:
 * reason" in err (a line without the keyword or a name, a user named twice). Rules are not
 * checked here. */
int acl_file_parse(const uint8_t *text, size_t len, struct acl_file *f, char *err, size_t cap);
void acl_file_free(struct acl_file *f);
/* ACL LOAD and ACL SAVE; HY.ACLLOAD (the replicated replacement, cmd table). */
void acl_file_cmd_load(struct cmd_ctx *x);
void acl_file_cmd_save(struct cmd_ctx *x);
/* From cron: a node started with aclfile loads it once the metadata group has a leader. */
void acl_file_startup(struct hy_node *n, uint64_t now_ms);

#endif
