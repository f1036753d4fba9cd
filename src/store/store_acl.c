/*
 * store_acl.c - ACL users as replicated state (store.h, "ACL users").
 *
 * Users change only through STORE_OP_ACL_SETUSER / STORE_OP_ACL_DELUSER entries, whose rules
 * are applied here with no clock, no randomness and no hashing, so every replica builds the
 * same users. The snapshot section writes each user as the rules that rebuild it (the
 * ACL LIST form), and decoding applies them again through the same parser: one grammar for
 * entries and snapshots, and one place where untrusted rule bytes are checked.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/strutil.h"
#include "store/store_int.h"

struct store_acl {
    struct store_acl_user **v; /* sorted by name */
    size_t count;
};

/* ---- one user ------------------------------------------------------------------------------- */

static int name_ok(const uint8_t *p, size_t len)
{
    if (len == 0 || len > STORE_ACL_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= ' ' || p[i] > '~') {
            return 0; /* written into ACL LIST lines and logs: printable, no spaces */
        }
    }
    return 1;
}

struct store_acl_user *store_acl_user_new(const uint8_t *name, size_t len)
{
    HY_ASSERT(len <= STORE_ACL_NAME_MAX);
    struct store_acl_user *u = hy_xcalloc(1, sizeof(*u));
    memcpy(u->name, name, len);
    return u;
}

static void patterns_clear(struct store_acl_user *u, unsigned perm_mask)
{
    size_t kept = 0;
    for (size_t i = 0; i < u->pattern_count; i++) {
        if (u->patterns[i].perm & perm_mask) {
            hy_free(u->patterns[i].p);
        } else {
            u->patterns[kept++] = u->patterns[i];
        }
    }
    u->pattern_count = kept;
}

static void commands_clear(struct store_acl_user *u)
{
    for (size_t i = 0; i < u->command_count; i++) {
        hy_free(u->commands[i]);
    }
    u->command_count = 0;
}

void store_acl_user_free(struct store_acl_user *u)
{
    if (u == NULL) {
        return;
    }
    patterns_clear(u, STORE_ACL_READ | STORE_ACL_WRITE | STORE_ACL_CHANNEL);
    commands_clear(u);
    hy_free(u->patterns);
    hy_free(u->commands);
    hy_free(u->passwords);
    hy_free(u);
}

struct store_acl_user *store_acl_user_copy(const struct store_acl_user *u)
{
    struct store_acl_user *c = store_acl_user_new((const uint8_t *)u->name, strlen(u->name));
    c->flags = u->flags;
    if (u->password_count > 0) {
        c->passwords = hy_xmalloc(u->password_count * sizeof(*c->passwords));
        memcpy(c->passwords, u->passwords, u->password_count * sizeof(*c->passwords));
        c->password_count = u->password_count;
    }
    if (u->pattern_count > 0) {
        c->patterns = hy_xmalloc(u->pattern_count * sizeof(*c->patterns));
        for (size_t i = 0; i < u->pattern_count; i++) {
            c->patterns[i] = u->patterns[i];
            c->patterns[i].p = hy_xmalloc(HY_MAX(u->patterns[i].len, 1));
            memcpy(c->patterns[i].p, u->patterns[i].p, u->patterns[i].len);
        }
        c->pattern_count = u->pattern_count;
    }
    if (u->command_count > 0) {
        c->commands = hy_xmalloc(u->command_count * sizeof(*c->commands));
        for (size_t i = 0; i < u->command_count; i++) {
            size_t len = strlen(u->commands[i]);
            c->commands[i] = hy_xmalloc(len + 1);
            memcpy(c->commands[i], u->commands[i], len + 1);
        }
        c->command_count = u->command_count;
    }
    return c;
}

static size_t rule_count(const struct store_acl_user *u)
{
    return u->password_count + u->pattern_count + u->command_count;
}

static int hex_digit(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "#<64 lower-case hex digits>" into 32 bytes; 0 when malformed. */
static int parse_hash(const uint8_t *p, size_t len, uint8_t *out)
{
    if (len != 2 * STORE_ACL_HASH_BYTES) {
        return 0;
    }
    for (size_t i = 0; i < STORE_ACL_HASH_BYTES; i++) {
        int hi = hex_digit(p[2 * i]), lo = hex_digit(p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return 0;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

static size_t password_index(const struct store_acl_user *u, const uint8_t *hash)
{
    for (size_t i = 0; i < u->password_count; i++) {
        if (memcmp(u->passwords[i], hash, STORE_ACL_HASH_BYTES) == 0) {
            return i;
        }
    }
    return u->password_count;
}

int store_acl_has_password(const struct store_acl_user *u, const uint8_t *hash)
{
    return password_index(u, hash) < u->password_count;
}

static const char *rule_password(struct store_acl_user *u, const uint8_t *rule, size_t len)
{
    uint8_t hash[STORE_ACL_HASH_BYTES];
    if (!parse_hash(rule + 1, len - 1, hash)) {
        return "The password hash must be exactly 64 characters and contain only lowercase "
               "hexadecimal characters";
    }
    size_t at = password_index(u, hash);
    if (rule[0] == '!') {
        if (at == u->password_count) {
            return "The password you are trying to remove from the user does not exist";
        }
        memmove(&u->passwords[at], &u->passwords[at + 1],
                (u->password_count - at - 1) * sizeof(u->passwords[0]));
        u->password_count--;
        return NULL;
    }
    u->flags &= ~(uint32_t)STORE_ACL_NOPASS;
    if (at == u->password_count) {
        u->passwords = hy_xrealloc(u->passwords, (u->password_count + 1) * sizeof(*u->passwords));
        memcpy(u->passwords[u->password_count++], hash, STORE_ACL_HASH_BYTES);
    }
    return NULL;
}

/* Patterns are written space-separated in ACL LIST and in snapshots: none may hold a space
 * (Redis refuses them too). */
static int has_space(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')) {
            return 1;
        }
    }
    return 0;
}

static void pattern_add(struct store_acl_user *u, unsigned perm, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < u->pattern_count; i++) {
        struct store_acl_pattern *q = &u->patterns[i];
        int same_kind = (q->perm & STORE_ACL_CHANNEL) == (perm & STORE_ACL_CHANNEL);
        if (same_kind && q->len == len && memcmp(q->p, p, len) == 0) {
            q->perm |= (uint8_t)perm; /* %R~k then %W~k: one pattern, both ways */
            return;
        }
    }
    u->patterns = hy_xrealloc(u->patterns, (u->pattern_count + 1) * sizeof(*u->patterns));
    struct store_acl_pattern *q = &u->patterns[u->pattern_count++];
    q->perm = (uint8_t)perm;
    q->len = len;
    q->p = hy_xmalloc(HY_MAX(len, 1));
    memcpy(q->p, p, len);
}

/* "%R~pat", "%W~pat", "%RW~pat"; NULL on success. */
static const char *rule_key_perm(struct store_acl_user *u, const uint8_t *rule, size_t len)
{
    unsigned perm = 0;
    size_t i = 1;
    for (; i < len && rule[i] != '~'; i++) {
        unsigned bit = (rule[i] | 32) == 'r'   ? STORE_ACL_READ
                       : (rule[i] | 32) == 'w' ? STORE_ACL_WRITE
                                               : 0;
        if (bit == 0) {
            return "Syntax error";
        }
        perm |= bit;
    }
    if (i == len || perm == 0) {
        return "Syntax error";
    }
    pattern_add(u, perm, rule + i + 1, len - i - 1);
    return NULL;
}

static void command_rule_add(struct store_acl_user *u, const char *rule)
{
    if (strcmp(rule + 1, "@all") == 0) {
        commands_clear(u); /* +@all and -@all start over: what came before no longer counts */
        if (rule[0] == '-') {
            return; /* no rules means -@all */
        }
    } else {
        size_t kept = 0; /* a later rule for the same target replaces an earlier one */
        for (size_t i = 0; i < u->command_count; i++) {
            if (strcmp(u->commands[i] + 1, rule + 1) == 0) {
                hy_free(u->commands[i]);
            } else {
                u->commands[kept++] = u->commands[i];
            }
        }
        u->command_count = kept;
    }
    size_t len = strlen(rule);
    u->commands = hy_xrealloc(u->commands, (u->command_count + 1) * sizeof(*u->commands));
    u->commands[u->command_count] = hy_xmalloc(len + 1);
    memcpy(u->commands[u->command_count++], rule, len + 1);
}

/* "+name", "-name", "+@category", "-@category", "+name|sub": lower-cased; the node checks the
 * names exist. */
static const char *rule_command(struct store_acl_user *u, const uint8_t *rule, size_t len)
{
    char buf[STORE_ACL_RULE_BYTES_MAX + 1];
    size_t start = len > 1 && rule[1] == '@' ? 2 : 1;
    if (len <= start || len > STORE_ACL_RULE_BYTES_MAX) {
        return "Syntax error";
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t c = rule[i] >= 'A' && rule[i] <= 'Z' ? (uint8_t)(rule[i] + 32) : rule[i];
        int ok = i < start || (c > ' ' && c <= '~' && c != '@');
        if (!ok) {
            return "Syntax error";
        }
        buf[i] = (char)c;
    }
    buf[len] = '\0';
    command_rule_add(u, buf);
    return NULL;
}

static const char *rule_word(struct store_acl_user *u, const uint8_t *rule, size_t len)
{
#define IS(lit) hy_eq_nocase(rule, len, (lit))
    if (IS("on")) {
        u->flags |= STORE_ACL_ON;
    } else if (IS("off")) {
        u->flags &= ~(uint32_t)STORE_ACL_ON;
    } else if (IS("nopass")) {
        u->flags |= STORE_ACL_NOPASS;
        u->password_count = 0;
    } else if (IS("resetpass")) {
        u->flags &= ~(uint32_t)STORE_ACL_NOPASS;
        u->password_count = 0;
    } else if (IS("allkeys")) {
        pattern_add(u, STORE_ACL_READ | STORE_ACL_WRITE, (const uint8_t *)"*", 1);
    } else if (IS("resetkeys")) {
        patterns_clear(u, STORE_ACL_READ | STORE_ACL_WRITE);
    } else if (IS("allchannels")) {
        patterns_clear(u, STORE_ACL_CHANNEL);
        u->flags |= STORE_ACL_ALLCHANNELS;
    } else if (IS("resetchannels")) {
        patterns_clear(u, STORE_ACL_CHANNEL);
        u->flags &= ~(uint32_t)STORE_ACL_ALLCHANNELS;
    } else if (IS("allcommands")) {
        command_rule_add(u, "+@all");
    } else if (IS("nocommands")) {
        command_rule_add(u, "-@all");
    } else if (IS("reset")) {
        u->flags = 0;
        u->password_count = 0;
        patterns_clear(u, STORE_ACL_READ | STORE_ACL_WRITE | STORE_ACL_CHANNEL);
        commands_clear(u);
    } else if (IS("sanitize-payload") || IS("skip-sanitize-payload") || IS("clearselectors")) {
        /* accepted for Redis's tools; halyard has no RESTORE payloads nor selectors */
    } else {
        return "Syntax error";
    }
#undef IS
    return NULL;
}

const char *store_acl_rule_apply(struct store_acl_user *u, const uint8_t *rule, size_t len)
{
    if (len == 0 || len > STORE_ACL_RULE_BYTES_MAX) {
        return "Syntax error";
    }
    const char *err = NULL;
    if ((rule[0] == '~' || rule[0] == '%' || rule[0] == '&') && has_space(rule, len)) {
        return "Syntax error";
    }
    switch (rule[0]) {
    case '#':
    case '!': err = rule_password(u, rule, len); break;
    case '>':
    case '<': err = "a clear password must be hashed before it is replicated"; break;
    case '~': pattern_add(u, STORE_ACL_READ | STORE_ACL_WRITE, rule + 1, len - 1); break;
    case '%': err = rule_key_perm(u, rule, len); break;
    case '&':
        if (len == 2 && rule[1] == '*') {
            err = rule_word(u, (const uint8_t *)"allchannels", 11);
        } else if (!(u->flags & STORE_ACL_ALLCHANNELS)) {
            pattern_add(u, STORE_ACL_CHANNEL, rule + 1, len - 1);
        }
        break;
    case '+':
    case '-': err = rule_command(u, rule, len); break;
    default: err = rule_word(u, rule, len); break;
    }
    if (err == NULL && rule_count(u) > STORE_ACL_RULES_MAX) {
        err = "too many rules for one user";
    }
    return err;
}

int store_acl_key_ok(const struct store_acl_user *u, const uint8_t *key, size_t len, unsigned perm)
{
    unsigned have = 0;
    for (size_t i = 0; i < u->pattern_count && (have & perm) != perm; i++) {
        const struct store_acl_pattern *q = &u->patterns[i];
        if (!(q->perm & STORE_ACL_CHANNEL) && (q->perm & perm) &&
            hy_glob_match(q->p, q->len, key, len, 0)) {
            have |= q->perm;
        }
    }
    return (have & perm) == perm;
}

int store_acl_channel_ok(const struct store_acl_user *u, const uint8_t *ch, size_t len, int literal)
{
    if (u->flags & STORE_ACL_ALLCHANNELS) {
        return 1;
    }
    for (size_t i = 0; i < u->pattern_count; i++) {
        const struct store_acl_pattern *q = &u->patterns[i];
        if (!(q->perm & STORE_ACL_CHANNEL)) {
            continue;
        }
        if (literal ? (q->len == len && memcmp(q->p, ch, len) == 0)
                    : hy_glob_match(q->p, q->len, ch, len, 0)) {
            return 1;
        }
    }
    return 0;
}

static void describe_pattern(const struct store_acl_pattern *q, struct hy_buf *out)
{
    if (q->perm & STORE_ACL_CHANNEL) {
        hy_buf_append(out, "&", 1);
    } else if ((q->perm & (STORE_ACL_READ | STORE_ACL_WRITE)) == STORE_ACL_READ) {
        hy_buf_append(out, "%R~", 3);
    } else if ((q->perm & (STORE_ACL_READ | STORE_ACL_WRITE)) == STORE_ACL_WRITE) {
        hy_buf_append(out, "%W~", 3);
    } else {
        hy_buf_append(out, "~", 1);
    }
    hy_buf_append(out, q->p, q->len);
    hy_buf_append(out, " ", 1);
}

void store_acl_user_describe(const struct store_acl_user *u, struct hy_buf *out)
{
    hy_buf_printf(out, "%s ", (u->flags & STORE_ACL_ON) ? "on" : "off");
    if (u->flags & STORE_ACL_NOPASS) {
        hy_buf_printf(out, "nopass ");
    }
    for (size_t i = 0; i < u->password_count; i++) {
        hy_buf_append(out, "#", 1);
        for (size_t b = 0; b < STORE_ACL_HASH_BYTES; b++) {
            hy_buf_printf(out, "%02x", u->passwords[i][b]);
        }
        hy_buf_append(out, " ", 1);
    }
    for (size_t i = 0; i < u->pattern_count; i++) {
        if (!(u->patterns[i].perm & STORE_ACL_CHANNEL)) {
            describe_pattern(&u->patterns[i], out);
        }
    }
    hy_buf_printf(out, "%s", (u->flags & STORE_ACL_ALLCHANNELS) ? "&* " : "resetchannels ");
    for (size_t i = 0; i < u->pattern_count; i++) {
        if (u->patterns[i].perm & STORE_ACL_CHANNEL) {
            describe_pattern(&u->patterns[i], out);
        }
    }
    if (u->command_count == 0 || strcmp(u->commands[0], "+@all") != 0) {
        hy_buf_printf(out, "-@all ");
    }
    for (size_t i = 0; i < u->command_count; i++) {
        hy_buf_printf(out, "%s ", u->commands[i]);
    }
    out->len--; /* the last space */
}

/* ---- the table ------------------------------------------------------------------------------ */

static int name_cmp(const char *a, const uint8_t *b, size_t blen)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b, HY_MIN(alen, blen));
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static size_t user_slot(const struct store_acl *t, const uint8_t *name, size_t len, int *found)
{
    size_t lo = 0, hi = t ? t->count : 0;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(t->v[mid]->name, name, len);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

const struct store_acl_user *store_acl_find(const struct store *s, const uint8_t *name, size_t len)
{
    int found;
    size_t at = user_slot(s->acl, name, len, &found);
    return found ? s->acl->v[at] : NULL;
}

size_t store_acl_users(const struct store *s, const struct store_acl_user *const **out)
{
    *out = s->acl ? (const struct store_acl_user *const *)s->acl->v : NULL;
    return s->acl ? s->acl->count : 0;
}

uint64_t store_acl_version(const struct store *s)
{
    return s->acl_version;
}

static void table_free(struct store_acl *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        store_acl_user_free(t->v[i]);
    }
    hy_free(t->v);
    hy_free(t);
}

void store__acl_free(struct store *s)
{
    table_free(s->acl);
    s->acl = NULL;
}

/* Puts u (owned from now) at `at`, replacing the user there when found. */
static void table_put(struct store_acl **tp, size_t at, int found, struct store_acl_user *u)
{
    if (*tp == NULL) {
        *tp = hy_xcalloc(1, sizeof(**tp));
    }
    struct store_acl *t = *tp;
    if (found) {
        store_acl_user_free(t->v[at]);
        t->v[at] = u;
        return;
    }
    t->v = hy_xrealloc(t->v, (t->count + 1) * sizeof(*t->v));
    memmove(&t->v[at + 1], &t->v[at], (t->count - at) * sizeof(t->v[0]));
    t->v[at] = u;
    t->count++;
}

/* Builds the user named argv[0] from `base` (NULL: a new user) and argv[1..argc): NULL and the
 * user in *out, or the failing rule's reason with its index in *bad_out. */
static const char *user_build(const struct store_acl_user *base, const struct store_arg *argv,
                              uint32_t argc, struct store_acl_user **out, uint32_t *bad_out)
{
    struct store_acl_user *u =
        base ? store_acl_user_copy(base) : store_acl_user_new(argv[0].ptr, argv[0].len);
    for (uint32_t i = 1; i < argc; i++) {
        const char *err = store_acl_rule_apply(u, argv[i].ptr, argv[i].len);
        if (err != NULL) {
            store_acl_user_free(u);
            *bad_out = i;
            return err;
        }
    }
    *out = u;
    return NULL;
}

void store__op_acl_setuser(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    const struct store_arg *name = &e->argv[0];
    if (!name_ok(name->ptr, name->len)) {
        if (w != NULL) {
            resp_write_error(w, "ERR Usernames can't contain spaces or null characters");
        }
        return;
    }
    int found;
    size_t at = user_slot(s->acl, name->ptr, name->len, &found);
    if (!found && s->acl != NULL && s->acl->count >= STORE_ACL_USERS_MAX) {
        if (w != NULL) {
            resp_write_error(w, "ERR too many ACL users; delete one first");
        }
        return;
    }
    struct store_acl_user *u = NULL;
    uint32_t bad = 0;
    const char *err = user_build(found ? s->acl->v[at] : NULL, e->argv, e->argc, &u, &bad);
    if (err != NULL) {
        if (w != NULL) {
            resp_write_errorf(w, "ERR Error in ACL SETUSER modifier '%.*s': %s",
                              (int)HY_MIN(e->argv[bad].len, 128), (const char *)e->argv[bad].ptr,
                              err);
        }
        return;
    }
    table_put(&s->acl, at, found, u);
    s->acl_version++;
    if (w != NULL) {
        resp_write_ok(w);
    }
}

void store__op_acl_deluser(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    int64_t deleted = 0;
    for (uint32_t i = 0; i < e->argc; i++) {
        int found;
        size_t at = user_slot(s->acl, e->argv[i].ptr, e->argv[i].len, &found);
        if (!found || strcmp(s->acl->v[at]->name, "default") == 0) {
            continue; /* the default user always exists */
        }
        store_acl_user_free(s->acl->v[at]);
        memmove(&s->acl->v[at], &s->acl->v[at + 1],
                (s->acl->count - at - 1) * sizeof(s->acl->v[0]));
        s->acl->count--;
        deleted++;
    }
    if (deleted > 0) {
        s->acl_version++;
    }
    if (w != NULL) {
        resp_write_int(w, deleted);
    }
}

/* ACL LOAD: the users are built into a new table first; the old one goes only if all were. */
void store__op_acl_load(struct store *s, const struct store_entry *e, struct resp_writer *w)
{
    struct store_acl *t = hy_xcalloc(1, sizeof(*t));
    const char *err = NULL;
    char why[300];
    uint32_t i = 0;
    while (err == NULL && i < e->argc) {
        const struct store_arg *name = &e->argv[i];
        int64_t rules;
        if (i + 1 >= e->argc || !hy_parse_i64(e->argv[i + 1].ptr, e->argv[i + 1].len, &rules) ||
            rules < 0 || (uint64_t)rules > e->argc - i - 2) {
            err = "ERR malformed ACL LOAD entry";
            break;
        }
        int found;
        size_t at = user_slot(t, name->ptr, name->len, &found);
        if (!name_ok(name->ptr, name->len) || found || t->count >= STORE_ACL_USERS_MAX) {
            snprintf(why, sizeof(why), "ERR user '%.*s' is invalid, repeated or one too many",
                     (int)HY_MIN(name->len, 128), (const char *)name->ptr);
            err = why;
            break;
        }
        struct store_acl_user *u = store_acl_user_new(name->ptr, name->len);
        for (uint32_t r = 0; r < (uint32_t)rules && err == NULL; r++) {
            const struct store_arg *rule = &e->argv[i + 2 + r];
            const char *bad = store_acl_rule_apply(u, rule->ptr, rule->len);
            if (bad != NULL) {
                snprintf(why, sizeof(why), "ERR Error in user '%.*s' rule '%.*s': %s",
                         (int)HY_MIN(name->len, 128), (const char *)name->ptr,
                         (int)HY_MIN(rule->len, 128), (const char *)rule->ptr, bad);
                err = why;
            }
        }
        if (err != NULL) {
            store_acl_user_free(u);
            break;
        }
        table_put(&t, at, 0, u);
        i += 2 + (uint32_t)rules;
    }
    if (err != NULL) {
        table_free(t);
        if (w != NULL) {
            resp_write_error(w, err);
        }
        return;
    }
    table_free(s->acl);
    s->acl = t;
    s->acl_version++;
    if (w != NULL) {
        resp_write_ok(w);
    }
}

/* ---- snapshot section: count, then per user its name and the rules that rebuild it ---------- */

void store__acl_encode(const struct store *s, struct hy_buf *out)
{
    size_t n = s->acl ? s->acl->count : 0;
    varint_append(out, n);
    struct hy_buf d;
    hy_buf_init(&d);
    for (size_t i = 0; i < n; i++) {
        const struct store_acl_user *u = s->acl->v[i];
        varint_append(out, strlen(u->name));
        hy_buf_append(out, u->name, strlen(u->name));
        hy_buf_reset(&d);
        store_acl_user_describe(u, &d);
        varint_append(out, d.len);
        hy_buf_append(out, d.data, d.len);
    }
    hy_buf_free(&d);
}

/* Rebuilds a user from its description (space-separated rules); NULL when a rule fails. */
static struct store_acl_user *user_from_description(const uint8_t *name, size_t nlen,
                                                    const uint8_t *d, size_t dlen)
{
    struct store_acl_user *u = store_acl_user_new(name, nlen);
    size_t i = 0;
    while (i < dlen) {
        size_t j = i;
        while (j < dlen && d[j] != ' ') {
            j++;
        }
        if (store_acl_rule_apply(u, d + i, j - i) != NULL) {
            store_acl_user_free(u);
            return NULL;
        }
        i = j + 1;
    }
    return u;
}

int store__acl_decode(const uint8_t *buf, size_t len, size_t *used_out, struct store_acl **out)
{
    struct rd r = {buf, len, 0, 0};
    uint64_t count = rd_varint(&r);
    *out = NULL;
    if (r.bad || count > STORE_ACL_USERS_MAX) {
        return 0;
    }
    struct store_acl *t = NULL;
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        size_t nlen, dlen;
        const uint8_t *name = rd_bytes(&r, &nlen);
        const uint8_t *d = rd_bytes(&r, &dlen);
        /* Canonical: strictly sorted names, so one table has one encoding. */
        if (r.bad || !name_ok(name, nlen) ||
            (t != NULL && name_cmp(t->v[t->count - 1]->name, name, nlen) >= 0)) {
            r.bad = 1;
            break;
        }
        struct store_acl_user *u = user_from_description(name, nlen, d, dlen);
        if (u == NULL) {
            r.bad = 1;
            break;
        }
        table_put(&t, t ? t->count : 0, 0, u);
    }
    if (r.bad) {
        table_free(t);
        return 0;
    }
    *used_out = r.off;
    *out = t;
    return 1;
}

void store__acl_replace(struct store *s, struct store_acl *fresh)
{
    table_free(s->acl);
    s->acl = fresh;
    s->acl_version++;
}
