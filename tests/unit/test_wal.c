/* Unit tests for src/io/disk_mem.c and the durable log (wal.c, wal_recover.c)
 * on the simulated disk: appends, truncation, metadata, snapshots, every
 * recovery rule, every injected fault, crashes that drop or tear unsynced
 * writes, and a fail-the-Nth-call loop. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "common/buf.h"
#include "common/crc.h"
#include "common/prng.h"
#include "io/disk_mem.h"
#include "io/wal.h"

#define MAX_INDEX 4096
#define BATCH_MAX 64

/* ---- the model: what the log must hold
 * ------------------------------------------------------ */

/* Entry payloads are a function of (index, term), so a term per index describes
 * a whole log. */
struct model {
    uint64_t terms[MAX_INDEX];
    uint64_t last;
    uint64_t snap;
    uint64_t snap_term;
    uint64_t term;
    uint64_t vote;
};

static size_t payload(uint64_t index, uint64_t term, uint8_t *buf)
{
    size_t len = (size_t)((index * 7 + term * 3) % 61);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(index * 31 + term * 17 + i);
    }
    return len;
}

static uint8_t arena[BATCH_MAX][64];
static struct wal_entry batch[BATCH_MAX];

static const struct wal_entry *make_batch(uint64_t first, size_t n, uint64_t term)
{
    assert_true(n <= BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        batch[i].term = term;
        batch[i].type = 1 + (uint32_t)((first + i) % 3);
        batch[i].len = (uint32_t)payload(first + i, term, arena[i]);
        batch[i].data = arena[i];
    }
    return batch;
}

static int append(struct wal *w, struct model *m, uint64_t first, size_t n, uint64_t term)
{
    int rc = wal_append(w, 0, first, make_batch(first, n, term), n);
    if (rc == HY_OK) {
        for (size_t i = 0; i < n; i++) {
            m->terms[first + i] = term;
        }
        m->last = first + n - 1;
    }
    return rc;
}

static void check_entry(const struct wal_entry *e, uint64_t index, uint64_t term)
{
    uint8_t want[64];
    size_t len = payload(index, term, want);
    assert_int_equal(e->term, term);
    assert_int_equal(e->type, 1 + (uint32_t)(index % 3));
    assert_int_equal(e->len, len);
    if (len > 0) {
        assert_memory_equal(e->data, want, len);
    }
}

/* The recovered log holds exactly the model: every acknowledged entry, in
 * order. */
static void check_exact(const struct wal_recovered *r, const struct model *m)
{
    assert_int_equal(r->term, m->term);
    assert_int_equal(r->vote, m->vote);
    assert_int_equal(r->snapshot.index, m->snap);
    if (r->n_entries == 0) {
        assert_int_equal(m->last, m->snap);
        return;
    }
    assert_true(r->first_index <= m->snap + 1);
    assert_int_equal(r->first_index + r->n_entries - 1, m->last);
    for (size_t i = 0; i < r->n_entries; i++) {
        check_entry(&r->entries[i], r->first_index + i, m->terms[r->first_index + i]);
    }
}

/* After a crash in the middle of an operation that changed `before` into
 * `after`: everything both agree on is there, every other entry is one of the
 * two versions, and once the log switches to the new version it does not switch
 * back (nothing reordered). */
static void check_between(const struct wal_recovered *r, const struct model *before,
                          const struct model *after)
{
    uint64_t common = 0;
    while (common < before->last && common < after->last &&
           before->terms[common + 1] == after->terms[common + 1]) {
        common++;
    }
    uint64_t last = r->n_entries ? r->first_index + r->n_entries - 1 : r->snapshot.index;
    assert_true(last >= common);
    assert_true(r->snapshot.index == before->snap || r->snapshot.index == after->snap);
    int switched = 0;
    for (size_t i = 0; i < r->n_entries; i++) {
        uint64_t index = r->first_index + i;
        uint64_t t = r->entries[i].term;
        int is_before = index <= before->last && before->terms[index] == t;
        int is_after = index <= after->last && after->terms[index] == t;
        assert_true(is_before || is_after);
        if (index > common && is_after && !is_before) {
            switched = 1;
        }
        assert_false(switched && !is_after);
        check_entry(&r->entries[i], index, t);
    }
    assert_true((r->term == before->term && r->vote == before->vote) ||
                (r->term == after->term && r->vote == after->vote));
}

/* ---- fixture
 * -------------------------------------------------------------------------------
 */

struct fx {
    struct disk *disk;
    struct wal_config cfg;
    struct wal *w;
    struct wal_recovered rec;
    char err[1024];
};

static void fx_init(struct fx *f, uint64_t seed, uint64_t segment_size)
{
    memset(f, 0, sizeof(*f));
    f->disk = disk_mem_new("/data/g0", seed);
    wal_config_default(&f->cfg);
    f->cfg.segment_size_bytes = segment_size;
    f->cfg.retention_logs = 0;
}

static int fx_open(struct fx *f)
{
    if (f->w != NULL) {
        wal_close(f->w);
        wal_recovered_free(&f->rec);
        f->w = NULL;
    }
    static const uint32_t group0 = 0;
    return wal_open(f->disk, &f->cfg, &group0, 1, &f->w, &f->rec, f->err, sizeof(f->err));
}

static void fx_reopen(struct fx *f)
{
    int rc = fx_open(f);
    if (rc != HY_OK) {
        fail_msg("reopen: %s: %s", hy_status_name(rc), f->err);
    }
}

/* Simulates the process dying (abort or power loss) and restarting. */
static void fx_crash(struct fx *f, enum disk_mem_crash_mode mode)
{
    disk_mem_crash(f->disk, mode);
    disk_mem_fail_clear(f->disk);
    if (f->w != NULL) {
        wal_close(f->w); /* the handles are already gone with the crash */
        wal_recovered_free(&f->rec);
        f->w = NULL;
    }
}

static void fx_free(struct fx *f)
{
    if (f->w != NULL) {
        wal_close(f->w);
        wal_recovered_free(&f->rec);
    }
    disk_destroy(f->disk);
}

static int count_files(struct disk *d, const char *prefix)
{
    char **names;
    size_t n;
    assert_int_equal(d->ops->list(d, &names, &n), HY_OK);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        count += strncmp(names[i], prefix, strlen(prefix)) == 0;
    }
    disk_names_free(names, n);
    return count;
}

/* Name of the first file whose name starts with prefix (closed segments start
 * with "0"). */
static void find_file(struct disk *d, const char *prefix, char *out, size_t out_len)
{
    char **names;
    size_t n;
    assert_int_equal(d->ops->list(d, &names, &n), HY_OK);
    char best[128] = "";
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], prefix, strlen(prefix)) == 0 &&
            (best[0] == '\0' || strcmp(names[i], best) < 0)) {
            snprintf(best, sizeof(best), "%s", names[i]);
        }
    }
    disk_names_free(names, n);
    assert_true(best[0] != '\0');
    snprintf(out, out_len, "%s", best);
}

static void read_all(struct disk *d, const char *name, uint8_t **buf, size_t *len)
{
    int fd;
    uint64_t size;
    assert_int_equal(d->ops->open(d, name, 0, &fd), HY_OK);
    assert_int_equal(d->ops->size(d, fd, &size), HY_OK);
    *buf = hy_xmalloc((size_t)size + 1);
    assert_int_equal(d->ops->read(d, fd, 0, *buf, (size_t)size, len), HY_OK);
    d->ops->close(d, fd);
}

/* Flips one byte of a file, durably (bit rot or a bad sector). */
static void flip_byte(struct disk *d, const char *name, uint64_t offset)
{
    uint8_t *buf;
    size_t len;
    read_all(d, name, &buf, &len);
    assert_true(offset < len);
    buf[offset] ^= 0x5a;
    assert_int_equal(disk_mem_put_file(d, name, buf, len), HY_OK);
    hy_free(buf);
}

/* ---- the simulated disk
 * ------------------------------------------------------------------------- */

/* Proves the simulated disk loses exactly what was not synced, and tears at
 * sector size. */
static void test_disk_mem_crash_semantics(void **state)
{
    (void)state;
    struct disk *d = disk_mem_new("/m", 7);
    int fd;
    uint8_t buf[2048];
    size_t got;
    memset(buf, 0xab, sizeof(buf));
    assert_int_equal(d->ops->sync_parent(d), HY_OK); /* an old directory */
    assert_int_equal(d->ops->open(d, "a", DISK_CREATE, &fd), HY_OK);
    assert_int_equal(d->ops->write(d, fd, 0, buf, 100), HY_OK);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    disk_mem_crash(d, DISK_CRASH_DROP); /* synced data, but the name was never dir-synced */
    assert_int_equal(d->ops->open(d, "a", 0, &fd), HY_ENOTFOUND);
    assert_int_equal(d->ops->open(d, "a", DISK_CREATE, &fd), HY_OK);
    disk_mem_crash(d, DISK_CRASH_KEEP);
    assert_int_equal(d->ops->open(d, "a", 0, &fd), HY_OK);
    assert_int_equal(d->ops->sync_dir(d), HY_OK);
    assert_int_equal(d->ops->write(d, fd, 0, buf, 100), HY_OK);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    memset(buf, 0xcd, sizeof(buf));
    assert_int_equal(d->ops->write(d, fd, 0, buf, 2048), HY_OK); /* unsynced */
    disk_mem_crash(d, DISK_CRASH_DROP);
    assert_int_equal(d->ops->open(d, "a", 0, &fd), HY_OK);
    assert_int_equal(d->ops->read(d, fd, 0, buf, sizeof(buf), &got), HY_OK);
    assert_int_equal(got, 100);
    assert_int_equal(buf[99], 0xab);
    memset(buf, 0xcd, sizeof(buf));
    assert_int_equal(d->ops->write(d, fd, 0, buf, 2048), HY_OK);
    disk_mem_crash(d, DISK_CRASH_TEAR);
    assert_int_equal(d->ops->open(d, "a", 0, &fd), HY_OK);
    assert_int_equal(d->ops->read(d, fd, 0, buf, sizeof(buf), &got), HY_OK);
    for (size_t s = 0; s < got; s += 512) { /* each sector is all old or all new */
        for (size_t i = s; i < HY_MIN(got, s + 512); i++) {
            assert_int_equal(buf[i], buf[s]);
        }
    }
    disk_destroy(d);
}

/* Proves faults fire on the Nth matching call, once or persistently, and
 * latency is reported. */
static void test_disk_mem_faults(void **state)
{
    (void)state;
    struct disk *d = disk_mem_new("/m", 1);
    int fd;
    uint8_t b[8] = {0};
    assert_int_equal(d->ops->open(d, "f", DISK_CREATE, &fd), HY_OK);
    disk_mem_fail(d, DISK_OP_BIT(DISK_OP_WRITE), 2, HY_EIO, 0);
    assert_int_equal(d->ops->write(d, fd, 0, b, 8), HY_OK);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    assert_int_equal(d->ops->write(d, fd, 0, b, 8), HY_EIO);
    assert_true(disk_mem_fault_fired(d));
    assert_int_equal(d->ops->write(d, fd, 0, b, 8), HY_OK);
    disk_mem_fail(d, DISK_OP_BIT(DISK_OP_SYNC), 1, HY_EIO, 1);
    assert_int_equal(d->ops->sync(d, fd), HY_EIO);
    assert_int_equal(d->ops->sync(d, fd), HY_EIO);
    disk_mem_fail_clear(d);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    disk_mem_set_capacity(d, 100);
    assert_int_equal(d->ops->preallocate(d, fd, 200), HY_ENOSPC);
    assert_int_equal(d->ops->write(d, fd, 0, b, 8), HY_OK); /* overwrite needs no space */
    disk_mem_set_latency(d, 1, 2, 100, 200);
    uint64_t calls = disk_mem_calls(d);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    assert_int_equal(disk_mem_calls(d), calls + 1);
    uint64_t us = disk_mem_take_latency_us(d);
    assert_true(us >= 100 && us <= 200);
    assert_int_equal(disk_mem_take_latency_us(d), 0);
    disk_destroy(d);
}

/* ---- appends, truncation, metadata
 * ------------------------------------------------------------ */

/* Proves an empty directory opens as an empty log with term 0 and no vote. */
static void test_open_empty(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 1, 1 << 20);
    fx_reopen(&f);
    assert_int_equal(f.rec.n_entries, 0);
    assert_int_equal(f.rec.term, 0);
    assert_int_equal(f.rec.snapshot.index, 0);
    assert_int_equal(wal_last_index(f.w, 0), 0);
    assert_true(f.rec.created);
    /* The group's first term/vote record is written at once. */
    assert_int_equal(wal_segment_count(f.w), 1);
    fx_free(&f);
}

/* Proves batches of every size come back after a reopen, across many segment
 * rolls. */
static void test_append_recover_with_rolls(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 2, 1024);
    fx_reopen(&f);
    uint64_t next = 1;
    for (size_t n = 1; n <= 40; n++) {
        assert_int_equal(append(f.w, &m, next, n, 1 + n / 10), HY_OK);
        next += n;
    }
    assert_true(wal_segment_count(f.w) > 10);
    assert_int_equal(wal_last_index(f.w, 0), next - 1);
    assert_int_equal(wal_last_term(f.w, 0), 5);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_true(count_files(f.disk, "segment-") > 10);
    assert_int_equal(append(f.w, &m, next, 3, 6), HY_OK);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    fx_free(&f);
}

/* Proves a large group commit gives its staging buffer back once written: a pipelined burst
 * of writes (a bulk load) left megabytes allocated for good (issue 13). */
static void test_large_batch_buffer_is_released(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 1, 8 << 20);
    fx_reopen(&f);
    struct model m;
    memset(&m, 0, sizeof(m));
    assert_int_equal(append(f.w, &m, 1, 1, 1), HY_OK);
    size_t before = hy_alloc_used_bytes();
    size_t len = 2 << 20;
    uint8_t *big = hy_xcalloc(1, len);
    struct wal_entry e = {.term = 1, .type = 1, .len = (uint32_t)len, .data = big};
    assert_int_equal(wal_append(f.w, 0, 2, &e, 1), HY_OK);
    hy_free(big);
    assert_int_equal(wal_last_index(f.w, 0), 2);
    assert_true(hy_alloc_used_bytes() < before + 64 * 1024);
    fx_free(&f);
}

/* Proves term and vote survive reopening and crashes (records in the shared log). */
static void test_term_vote(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 3, 1 << 16);
    fx_reopen(&f);
    assert_true(f.rec.created);
    assert_int_equal(wal_set_term_vote(f.w, 0, 1, 3), HY_OK);
    assert_int_equal(wal_set_term_vote(f.w, 0, 2, 0), HY_OK);
    assert_int_equal(wal_set_term_vote(f.w, 0, 2, 5), HY_OK);
    m.term = 2;
    m.vote = 5;
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(wal_set_term_vote(f.w, 0, 7, 1), HY_OK);
    fx_crash(&f, DISK_CRASH_DROP); /* synced: nothing to drop */
    fx_reopen(&f);
    m.term = 7;
    m.vote = 1;
    check_exact(&f.rec, &m);
    fx_free(&f);
}

/* Proves a conflicting suffix is superseded inside the open segment and across
 * closed segments, and the new entries replace it durably. */
static void test_truncate(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 5, 2048);
    fx_reopen(&f);
    for (uint64_t i = 1; i <= 200; i += 10) {
        assert_int_equal(append(f.w, &m, i, 10, 1), HY_OK);
    }
    assert_int_equal(append(f.w, &m, 198, 2, 2), HY_OK); /* inside the open segment */
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(append(f.w, &m, 45, 5, 3), HY_OK); /* inside a closed segment */
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(wal_truncate(f.w, 0, 20), HY_OK);
    m.last = 19;
    assert_int_equal(wal_last_term(f.w, 0), 1);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(wal_truncate(f.w, 0, 1), HY_OK);
    m.last = 0;
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(append(f.w, &m, 1, 4, 9), HY_OK);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    fx_free(&f);
}

/* ---- recovery rules
 * ---------------------------------------------------------------------------
 */

/* Rule 5: a damaged last write in the open segment is a torn tail: cut with a
 * warning, and the log goes on from the last good record. */
static void test_torn_tail_is_cut(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 6, 1 << 16);
    fx_reopen(&f);
    assert_int_equal(append(f.w, &m, 1, 5, 1), HY_OK);
    struct model before = m;
    assert_int_equal(append(f.w, &m, 6, 5, 1), HY_OK);
    char name[128];
    find_file(f.disk, "open-", name, sizeof(name));
    /* Damage record 8 (the second record of the last write), after the segment's head
     * (group 0's term/vote) and the new group's first term/vote record. */
    uint64_t off = 16 + 2 * WAL_REC_HEADER_SIZE;
    for (uint64_t i = 1; i < 8; i++) {
        uint8_t tmp[64];
        off += wal_record_size((uint32_t)payload(i, 1, tmp));
    }
    flip_byte(f.disk, name, off + 45);
    fx_reopen(&f);
    before.last = 7;
    for (uint64_t i = 6; i <= 7; i++) {
        before.terms[i] = 1;
    }
    check_exact(&f.rec, &before);
    assert_int_equal(append(f.w, &before, 8, 3, 2), HY_OK);
    fx_reopen(&f);
    check_exact(&f.rec, &before);
    fx_free(&f);
}

/* Rule 5: damage in the open segment followed by an intact later write is
 * corruption: refuse, naming file and offset and the repair command; repair
 * cuts there and the log opens. */
static void test_open_segment_corruption_refuses_then_repair(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 7, 1 << 16);
    fx_reopen(&f);
    assert_int_equal(append(f.w, &m, 1, 3, 1), HY_OK);
    assert_int_equal(append(f.w, &m, 4, 3, 1), HY_OK);
    assert_int_equal(append(f.w, &m, 7, 3, 1), HY_OK);
    char name[128];
    find_file(f.disk, "open-", name, sizeof(name));
    flip_byte(f.disk, name, 16 + 20); /* the first record's kind */
    assert_int_equal(fx_open(&f), HY_ECORRUPT);
    assert_non_null(strstr(f.err, name));
    assert_non_null(strstr(f.err, "offset 16"));
    assert_non_null(strstr(f.err, "halyard --repair /data/g0"));
    char report[1024];
    assert_int_equal(wal_repair(f.disk, &f.cfg, report, sizeof(report)), HY_OK);
    assert_non_null(strstr(report, name));
    fx_reopen(&f);
    assert_int_equal(f.rec.n_entries, 0);
    fx_free(&f);
}

/* Rule 4: any damage in a closed segment refuses; repair cuts after the last
 * good record and removes every later segment. */
static void test_closed_segment_corruption(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 8, 1024);
    fx_reopen(&f);
    for (uint64_t i = 1; i <= 100; i += 4) {
        assert_int_equal(append(f.w, &m, i, 4, 1), HY_OK);
    }
    wal_close(f.w);
    wal_recovered_free(&f.rec);
    f.w = NULL;
    char name[128];
    find_file(f.disk, "segment-", name, sizeof(name)); /* the first closed segment: 1..k */
    uint8_t *buf;
    size_t len;
    read_all(f.disk, name, &buf, &len);
    hy_free(buf);
    flip_byte(f.disk, name, len - 3); /* inside the last record */
    assert_int_equal(fx_open(&f), HY_ECORRUPT);
    assert_non_null(strstr(f.err, name));
    assert_non_null(strstr(f.err, "--repair"));
    char report[2048];
    assert_int_equal(wal_repair(f.disk, &f.cfg, report, sizeof(report)), HY_OK);
    assert_non_null(strstr(report, "cut"));
    assert_non_null(strstr(report, "removed"));
    fx_reopen(&f);
    assert_true(f.rec.n_entries >= 1 && f.rec.n_entries < 20);
    m.last = f.rec.n_entries;
    check_exact(&f.rec, &m);
    assert_int_equal(append(f.w, &m, m.last + 1, 2, 2), HY_OK);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(wal_repair(f.disk, &f.cfg, report, sizeof(report)), HY_OK);
    assert_non_null(strstr(report, "nothing to repair"));
    fx_free(&f);
}

/* Rules 3 and 6: a missing first segment leaves a gap before the log (no snapshot), a
 * missing middle one breaks the write sequence: both refuse. */
static void test_gap_refuses(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 9, 1024);
    fx_reopen(&f);
    for (uint64_t i = 1; i <= 60; i += 3) {
        assert_int_equal(append(f.w, &m, i, 3, 1), HY_OK);
    }
    char name[128];
    find_file(f.disk, "segment-", name, sizeof(name));
    assert_int_equal(f.disk->ops->remove(f.disk, name), HY_OK);
    assert_int_equal(fx_open(&f), HY_ECORRUPT); /* starts after 1 with no snapshot */
    assert_non_null(strstr(f.err, "a gap"));
    fx_free(&f);
}

/* Rule 1 and 5: temp files and segments left empty by an interrupted creation
 * are deleted. */
static void test_leftovers_removed(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 10, 1 << 16);
    fx_reopen(&f);
    assert_int_equal(append(f.w, &m, 1, 2, 1), HY_OK);
    uint8_t zeros[4096] = {0};
    assert_int_equal(
        disk_mem_put_file(f.disk, "snapshot-0000000000-00000000000000000009.tmp", zeros, 10),
        HY_OK);
    assert_int_equal(disk_mem_put_file(f.disk, "open-99", zeros, sizeof(zeros)), HY_OK);
    assert_int_equal(disk_mem_put_file(f.disk, "open-98", zeros, 3), HY_OK);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(count_files(f.disk, "snapshot"), 0);
    assert_int_equal(count_files(f.disk, "open-"), 1);
    /* New segments are numbered after the highest seen. */
    fx_free(&f);
}

/* ---- snapshots
 * --------------------------------------------------------------------------------
 */

static const uint8_t membership[] = {1, 2, 3, 4, 5};

static struct wal_snapshot snap_at(uint64_t index, uint64_t term, const uint8_t *data, size_t len)
{
    struct wal_snapshot s = {.index = index,
                             .term = term,
                             .membership = membership,
                             .membership_len = sizeof(membership),
                             .data = data,
                             .data_len = len};
    return s;
}

/* Regression (fuzz_wal_snapshot): a snapshot whose index is near 2^64 is refused as corrupt
 * (no index arithmetic may overflow), with the file recognised by its 20-digit name. */
static void test_snapshot_huge_index_refused(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 19, 1 << 16);
    uint8_t file[WAL_SNAP_HEADER_SIZE];
    struct wal_snapshot s = snap_at(1, 1, NULL, 0);
    s.membership_len = 0;
    wal_snapshot_header_encode(&s, file);
    hy_store_u64le(file + 16, UINT64_MAX - 2);
    hy_store_u32le(file + 48, hy_crc32c(0, file, 48));
    assert_int_equal(
        disk_mem_put_file(f.disk, "snapshot-0000000000-18446744073709551613", file, sizeof(file)),
        HY_OK);
    assert_int_equal(fx_open(&f), HY_ECORRUPT);
    assert_non_null(strstr(f.err, "snapshot-0000000000-18446744073709551613"));
    fx_free(&f);
}

/* Proves a snapshot is stored and reloaded, covered segments are removed as
 * configured, and the retained tail is kept. */
static void test_snapshot_compaction(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 11, 1024);
    f.cfg.snapshot_interval = 100;
    f.cfg.retention_logs = 20;
    fx_reopen(&f);
    for (uint64_t i = 1; i <= 200; i += 5) {
        assert_int_equal(append(f.w, &m, i, 5, 1), HY_OK);
        assert_int_equal(wal_snapshot_wanted(f.w, 0), i + 4 >= 100);
    }
    size_t segs = wal_segment_count(f.w);
    const uint8_t data[] = "keyspace bytes";
    struct wal_snapshot s = snap_at(150, 1, data, sizeof(data));
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 0), HY_OK);
    m.snap = 150;
    assert_false(wal_snapshot_wanted(f.w, 0));
    assert_true(wal_segment_count(f.w) < segs);
    assert_true(wal_first_index(f.w, 0) <= 131 && wal_first_index(f.w, 0) > 1);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(f.rec.snapshot.term, 1);
    assert_int_equal(f.rec.snapshot.data_len, sizeof(data));
    assert_memory_equal(f.rec.snapshot.data, data, sizeof(data));
    assert_memory_equal(f.rec.snapshot.membership, membership, sizeof(membership));
    /* A newer snapshot replaces the old file; max_log_entries drops the retained
     * tail. */
    f.cfg.max_log_entries = 10;
    fx_reopen(&f);
    assert_true(wal_snapshot_wanted(f.w, 0));
    s = snap_at(190, 1, data, 3);
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 0), HY_OK);
    m.snap = 190;
    assert_int_equal(count_files(f.disk, "snapshot-"), 1);
    assert_true(wal_first_index(f.w, 0) > 131);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    fx_free(&f);
}

/* Proves a snapshot from the leader replaces the whole log and appends go on
 * after it. */
static void test_snapshot_install(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 12, 1024);
    fx_reopen(&f);
    for (uint64_t i = 1; i <= 50; i += 5) {
        assert_int_equal(append(f.w, &m, i, 5, 1), HY_OK);
    }
    struct wal_snapshot s = snap_at(500, 4, (const uint8_t *)"x", 1);
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 1), HY_OK);
    assert_int_equal(wal_last_index(f.w, 0), 500);
    assert_int_equal(wal_last_term(f.w, 0), 4);
    m.snap = m.last = 500;
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(append(f.w, &m, 501, 3, 4), HY_OK);
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    assert_int_equal(f.rec.first_index, 501);
    fx_free(&f);
}

/* Proves the two halves of wal_snapshot_put (the file written off the log's thread, then
 * installed) recover at each crash point: before the install the newest snapshot file wins
 * with the log kept; after it, with the old file's removal not made durable, the old file may
 * come back and recovery removes it; a snapshot past the log's end voids the log once
 * installed. */
static void test_snapshot_file_then_install(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 23, 1024);
    f.cfg.retention_logs = 1000; /* keeps the log whole: check_exact compares all of it */
    fx_reopen(&f);
    for (uint64_t i = 1; i <= 60; i += 5) {
        assert_int_equal(append(f.w, &m, i, 5, 1), HY_OK);
    }
    const uint8_t data[] = "state at 20";
    struct wal_snapshot s = snap_at(20, 1, data, sizeof(data));
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 0), HY_OK);
    m.snap = 20;
    /* Crash after the file of 40 is durable, before the log installed it. */
    s = snap_at(40, 1, data, sizeof(data));
    assert_int_equal(wal_snapshot_file_write(f.disk, 0, &s), HY_OK);
    assert_int_equal(wal_snapshot_index(f.w, 0), 20); /* the log knows nothing of it yet */
    fx_crash(&f, DISK_CRASH_DROP);
    fx_reopen(&f);
    m.snap = 40;
    check_exact(&f.rec, &m);
    assert_int_equal(count_files(f.disk, "snapshot-"), 1);
    /* Written, then installed; the crash drops the unsynced removal of the old file. */
    s = snap_at(55, 1, data, sizeof(data));
    assert_int_equal(wal_snapshot_file_write(f.disk, 0, &s), HY_OK);
    assert_int_equal(wal_snapshot_install(f.w, 0, &s, 0), HY_OK);
    assert_int_equal(wal_snapshot_index(f.w, 0), 55);
    assert_int_equal(wal_last_index(f.w, 0), 60);
    fx_crash(&f, DISK_CRASH_DROP);
    fx_reopen(&f);
    m.snap = 55;
    check_exact(&f.rec, &m);
    assert_int_equal(count_files(f.disk, "snapshot-"), 1);
    /* Past the log's end: installing it voids the log; appends go on after it. */
    s = snap_at(90, 2, data, sizeof(data));
    assert_int_equal(wal_snapshot_file_write(f.disk, 0, &s), HY_OK);
    assert_int_equal(wal_snapshot_install(f.w, 0, &s, 0), HY_OK);
    assert_int_equal(wal_last_index(f.w, 0), 90);
    assert_int_equal(append(f.w, &m, 91, 2, 2), HY_OK);
    fx_crash(&f, DISK_CRASH_DROP);
    fx_reopen(&f);
    assert_int_equal(f.rec.snapshot.index, 90);
    assert_int_equal(f.rec.first_index, 91);
    assert_int_equal(f.rec.n_entries, 2);
    fx_free(&f);
}

/* Proves wal_group_forget leaves the group as a new one that voted (no log, no snapshot file,
 * its term/vote kept, reported forgotten by every later open), across a crash, and that
 * appends start again at 1; and that a crash after its truncation record but before the
 * file's removal recovers the snapshot alone. */
static void test_group_forget(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 29, 1024);
    fx_reopen(&f);
    assert_int_equal(wal_set_term_vote(f.w, 0, 3, 2), HY_OK);
    for (uint64_t i = 1; i <= 40; i += 5) {
        assert_int_equal(append(f.w, &m, i, 5, 3), HY_OK);
    }
    struct wal_snapshot s = snap_at(30, 3, (const uint8_t *)"kv", 2);
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 0), HY_OK);
    /* The file's removal fails (a full disk refuses nothing else here): the log is void and
     * the snapshot alone recovers. */
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_REMOVE), 1, HY_EIO, 1);
    assert_false(f.rec.forgotten);
    assert_int_equal(wal_group_forget(f.w, 0), HY_EIO);
    fx_crash(&f, DISK_CRASH_DROP);
    fx_reopen(&f);
    assert_true(f.rec.forgotten); /* the marker went first */
    assert_int_equal(f.rec.snapshot.index, 30);
    assert_int_equal(f.rec.n_entries, 0);
    assert_int_equal(f.rec.term, 3);
    assert_int_equal(f.rec.vote, 2);
    assert_int_equal(wal_group_forget(f.w, 0), HY_OK);
    assert_int_equal(wal_snapshot_index(f.w, 0), 0);
    assert_int_equal(wal_last_index(f.w, 0), 0);
    assert_int_equal(count_files(f.disk, "snapshot-"), 0);
    fx_crash(&f, DISK_CRASH_DROP);
    fx_reopen(&f);
    assert_int_equal(f.rec.snapshot.index, 0);
    assert_int_equal(f.rec.n_entries, 0);
    assert_int_equal(f.rec.term, 3);
    assert_int_equal(f.rec.vote, 2);
    assert_int_equal(count_files(f.disk, "snapshot-"), 0);
    assert_true(f.rec.forgotten); /* it starts without the bootstrap configuration */
    assert_int_equal(count_files(f.disk, "forgotten-"), 1);
    assert_int_equal(wal_append(f.w, 0, 1, make_batch(1, 2, 4), 2), HY_OK);
    fx_reopen(&f);
    assert_int_equal(f.rec.first_index, 1);
    assert_int_equal(f.rec.n_entries, 2);
    fx_free(&f);
}

/* Rule 3: a damaged snapshot refuses to open (and repair leaves it alone,
 * saying so). */
static void test_snapshot_damage_refuses(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 13, 1024);
    fx_reopen(&f);
    assert_int_equal(append(f.w, &m, 1, 5, 1), HY_OK);
    struct wal_snapshot s = snap_at(3, 1, (const uint8_t *)"abcdef", 6);
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 0), HY_OK);
    flip_byte(f.disk, "snapshot-0000000000-00000000000000000003", 60);
    assert_int_equal(fx_open(&f), HY_ECORRUPT);
    assert_non_null(strstr(f.err, "snapshot-0000000000-00000000000000000003"));
    assert_non_null(strstr(f.err, "checksum"));
    char report[1024];
    assert_int_equal(wal_repair(f.disk, &f.cfg, report, sizeof(report)), HY_ECORRUPT);
    assert_non_null(strstr(report, "left alone"));
    fx_free(&f);
}

/* Rule 6: a log older than the snapshot (a crash between an install and the
 * log's removal) is removed at open; a log that starts after the snapshot
 * leaves a gap and refuses. */
static void test_log_older_than_snapshot(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 14, 1024);
    fx_reopen(&f);
    for (uint64_t i = 1; i <= 40; i += 4) {
        assert_int_equal(append(f.w, &m, i, 4, 1), HY_OK);
    }
    /* The snapshot's three writes succeed, the log's truncation record fails. */
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_WRITE), 4, HY_EIO, 1);
    struct wal_snapshot s = snap_at(30, 2, (const uint8_t *)"s", 1); /* term 2 != log's 1 */
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 1), HY_EIO);
    assert_int_equal(wal_append(f.w, 0, 31, make_batch(31, 1, 2), 1), HY_EIO); /* sticky */
    fx_crash(&f, DISK_CRASH_KEEP);
    fx_reopen(&f);
    assert_int_equal(f.rec.snapshot.index, 30);
    assert_int_equal(f.rec.n_entries, 0);
    assert_int_equal(wal_last_index(f.w, 0), 30);
    /* The open wrote the truncation itself: appends after the snapshot recover. */
    assert_int_equal(append(f.w, &m, 31, 2, 2), HY_OK);
    m.snap = 30;
    m.term = 0;
    fx_reopen(&f);
    assert_int_equal(f.rec.first_index, 31);
    assert_int_equal(f.rec.n_entries, 2);
    fx_free(&f);
}

/* ---- disk faults
 * ------------------------------------------------------------------------------
 */

/* Proves a full disk refuses the append with HY_ENOSPC, corrupts nothing, keeps
 * the log readable, and appends succeed again once space returns. */
static void test_enospc_then_space_returns(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 15, 2048);
    fx_reopen(&f);
    disk_mem_set_capacity(f.disk, 8192);
    uint64_t next = 1;
    int rc;
    while ((rc = append(f.w, &m, next, 4, 1)) == HY_OK) {
        next += 4;
    }
    assert_int_equal(rc, HY_ENOSPC);
    assert_true(next > 20);
    assert_int_equal(wal_last_index(f.w, 0), next - 1);
    disk_mem_set_capacity(f.disk, disk_mem_used_bytes(f.disk));
    fx_reopen(&f); /* reads continue on a full disk */
    check_exact(&f.rec, &m);
    assert_int_equal(append(f.w, &m, next, 4, 1), HY_ENOSPC);
    disk_mem_set_capacity(f.disk, 0);
    assert_int_equal(append(f.w, &m, next, 4, 1), HY_OK);
    assert_int_equal(wal_set_term_vote(f.w, 0, 2, 1), HY_OK);
    m.term = 2;
    m.vote = 1;
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    fx_free(&f);
}

/* Proves an injected ENOSPC on a write or preallocation is transient: nothing
 * changes, the retry succeeds; ENOSPC on a snapshot leaves no temp file. */
static void test_enospc_injected(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 16, 1024);
    fx_reopen(&f);
    assert_int_equal(append(f.w, &m, 1, 3, 1), HY_OK);
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_WRITE), 1, HY_ENOSPC, 0);
    assert_int_equal(append(f.w, &m, 4, 3, 1), HY_ENOSPC);
    assert_int_equal(append(f.w, &m, 4, 3, 1), HY_OK);
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_PREALLOCATE), 1, HY_ENOSPC, 0);
    assert_int_equal(append(f.w, &m, 7, 20, 1), HY_ENOSPC); /* needs a new segment */
    assert_int_equal(append(f.w, &m, 7, 20, 1), HY_OK);
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_WRITE), 2, HY_ENOSPC, 0);
    struct wal_snapshot s = snap_at(10, 1, (const uint8_t *)"abc", 3);
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 0), HY_ENOSPC);
    assert_int_equal(count_files(f.disk, "snapshot"), 0);
    assert_int_equal(wal_snapshot_put(f.w, 0, &s, 0), HY_OK);
    m.snap = 10;
    fx_reopen(&f);
    check_exact(&f.rec, &m);
    fx_free(&f);
}

/* Proves a failed fdatasync (or write EIO) is fatal and sticky: every later
 * call fails, and after the process "aborts" nothing acknowledged is lost. */
static void test_sync_failure_is_fatal(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 17, 1 << 16);
    fx_reopen(&f);
    assert_int_equal(append(f.w, &m, 1, 3, 1), HY_OK);
    struct model before = m;
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_SYNC), 1, HY_EIO, 0);
    assert_int_equal(append(f.w, &m, 4, 3, 1), HY_EIO);
    /* Even though the fault was transient, the wal never retries: the kernel may
     * have dropped the pages. */
    assert_int_equal(append(f.w, &m, 4, 3, 1), HY_EIO);
    assert_int_equal(wal_set_term_vote(f.w, 0, 1, 1), HY_EIO);
    assert_int_equal(wal_truncate(f.w, 0, 2), HY_EIO);
    struct model after = before;
    for (uint64_t i = 4; i <= 6; i++) {
        after.terms[i] = 1;
    }
    after.last = 6;
    fx_crash(&f, DISK_CRASH_TEAR);
    fx_reopen(&f);
    check_between(&f.rec, &before, &after);
    disk_mem_fail(f.disk, DISK_OP_BIT(DISK_OP_WRITE), 1, HY_EIO, 1);
    assert_int_equal(wal_set_term_vote(f.w, 0, 3, 3), HY_EIO);
    assert_int_equal(append(f.w, &m, wal_last_index(f.w, 0) + 1, 1, 1), HY_EIO);
    fx_free(&f);
}

/* ---- operations for the crash loops
 * ----------------------------------------------------------- */

enum op_kind { OP_APPEND, OP_META, OP_SNAPSHOT, OP_REOPEN };

struct op {
    enum op_kind kind;
    uint64_t a; /* APPEND: first index; META: term; SNAPSHOT: index */
    uint64_t n; /* APPEND: count; META: vote; SNAPSHOT: discard_log */
    uint64_t term;
};

static void model_apply(struct model *m, const struct op *op)
{
    switch (op->kind) {
    case OP_APPEND:
        for (uint64_t i = 0; i < op->n; i++) {
            m->terms[op->a + i] = op->term;
        }
        m->last = op->a + op->n - 1;
        break;
    case OP_META:
        m->term = op->a;
        m->vote = op->n;
        break;
    case OP_SNAPSHOT:
        m->snap = op->a;
        m->snap_term = op->term;
        if (op->n || op->a > m->last) {
            m->last = op->a;
        }
        break;
    case OP_REOPEN: break;
    }
}

static uint8_t snap_bytes[300];

static int run_op(struct fx *f, const struct op *op)
{
    switch (op->kind) {
    case OP_APPEND: return wal_append(f->w, 0, op->a, make_batch(op->a, op->n, op->term), op->n);
    case OP_META: return wal_set_term_vote(f->w, 0, op->a, op->n);
    case OP_SNAPSHOT: {
        for (size_t i = 0; i < sizeof(snap_bytes); i++) {
            snap_bytes[i] = (uint8_t)(op->a + i);
        }
        struct wal_snapshot s = snap_at(op->a, op->term, snap_bytes, op->a % 300);
        return wal_snapshot_put(f->w, 0, &s, (int)op->n);
    }
    case OP_REOPEN: return fx_open(f);
    }
    return HY_EINVAL;
}

/* The model of what a reopened directory holds (to continue after a crash). */
static void model_from(struct model *m, const struct wal_recovered *r)
{
    m->term = r->term;
    m->vote = r->vote;
    m->snap = r->snapshot.index;
    m->snap_term = r->snapshot.term;
    for (size_t i = 0; i < r->n_entries; i++) {
        m->terms[r->first_index + i] = r->entries[i].term;
    }
    m->last = r->n_entries ? r->first_index + r->n_entries - 1 : m->snap;
}

/* Checks the stored snapshot's bytes against what run_op wrote for that index.
 */
static void check_snapshot_bytes(const struct wal_recovered *r)
{
    if (r->snapshot.index == 0) {
        return;
    }
    assert_int_equal(r->snapshot.data_len, r->snapshot.index % 300);
    for (size_t i = 0; i < r->snapshot.data_len; i++) {
        assert_int_equal(r->snapshot.data[i], (uint8_t)(r->snapshot.index + i));
    }
}

/* The full cycle the fail-the-Nth-call loop runs: metadata, appends across
 * segment rolls, a truncation, a compacting snapshot, reopen, an installed
 * snapshot, more appends, reopen. */
static const struct op cycle[] = {
    {OP_META, 1, 1, 0},       {OP_APPEND, 1, 8, 1},    {OP_APPEND, 9, 20, 1},
    {OP_META, 2, 0, 0},       {OP_APPEND, 29, 30, 2},  {OP_APPEND, 25, 10, 3},
    {OP_SNAPSHOT, 20, 0, 1},  {OP_APPEND, 35, 40, 3},  {OP_REOPEN, 0, 0, 0},
    {OP_APPEND, 75, 5, 3},    {OP_SNAPSHOT, 70, 0, 3}, {OP_META, 4, 2, 0},
    {OP_SNAPSHOT, 200, 1, 4}, {OP_APPEND, 201, 5, 4},  {OP_REOPEN, 0, 0, 0},
    {OP_APPEND, 206, 1, 4},
};

/* Runs the cycle with the nth disk call failing with `status`. Returns 1 if the
 * fault fired. */
static int run_cycle_failing(uint64_t nth, int status)
{
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 100 + nth, 1024);
    f.cfg.retention_logs = 5;
    disk_mem_fail(f.disk, DISK_OP_ALL, nth, status, 0);
    int rc = fx_open(&f);
    if (rc == HY_ENOSPC || rc == HY_EIO) {
        rc = fx_open(&f); /* the fault was transient: a restart works */
    }
    if (rc != HY_OK) {
        fail_msg("open with call %" PRIu64 " failing: %s: %s", nth, hy_status_name(rc), f.err);
    }
    for (size_t i = 0; i < HY_ARRAY_LEN(cycle); i++) {
        struct model after = m;
        model_apply(&after, &cycle[i]);
        rc = run_op(&f, &cycle[i]);
        if (rc == HY_ENOSPC) {
            /* Nothing changed; the same operation succeeds once space is back. */
            rc = run_op(&f, &cycle[i]);
        }
        if (rc == HY_OK) {
            m = after;
            continue;
        }
        assert_int_equal(rc, HY_EIO); /* the server aborts here */
        fx_crash(&f, (enum disk_mem_crash_mode)(nth % 4));
        fx_reopen(&f);
        check_between(&f.rec, &m, &after);
        check_snapshot_bytes(&f.rec);
        break;
    }
    int fired = disk_mem_fault_fired(f.disk);
    disk_mem_fail_clear(f.disk);
    if (f.w != NULL && !fired) {
        fx_reopen(&f);
        check_exact(&f.rec, &m);
    }
    fx_free(&f);
    return fired;
}

/* Proves that failing the Nth disk call, for every N through a whole
 * append-snapshot-recover cycle, with EIO and with ENOSPC, never loses or
 * reorders an acknowledged entry. */
static void test_fail_nth_call_loop(void **state)
{
    (void)state;
    const int statuses[] = {HY_EIO, HY_ENOSPC};
    for (size_t s = 0; s < HY_ARRAY_LEN(statuses); s++) {
        uint64_t n = 1;
        while (run_cycle_failing(n, statuses[s])) {
            n++;
        }
        assert_true(n > 100); /* the cycle makes well over a hundred disk calls */
    }
}

static struct op random_op(struct hy_prng *p, const struct model *m, uint64_t *top_term)
{
    uint64_t roll = hy_prng_below(p, 100);
    if (hy_prng_chance(p, 1, 8)) {
        (*top_term)++;
    }
    struct op op = {
        .kind = OP_APPEND, .a = m->last + 1, .n = 1 + hy_prng_below(p, 20), .term = *top_term};
    if (roll < 15 && m->last > m->snap) {
        op.a = m->snap + 1 + hy_prng_below(p, m->last - m->snap); /* conflicting suffix */
        op.term = ++(*top_term);
    } else if (roll < 25) {
        op = (struct op){.kind = OP_META, .a = *top_term, .n = hy_prng_below(p, 4)};
    } else if (roll < 35 && m->last > m->snap) {
        uint64_t idx = m->snap + 1 + hy_prng_below(p, m->last - m->snap);
        op = (struct op){.kind = OP_SNAPSHOT, .a = idx, .n = 0, .term = m->terms[idx]};
    } else if (roll < 38) {
        op = (struct op){.kind = OP_SNAPSHOT,
                         .a = m->last + 1 + hy_prng_below(p, 10),
                         .n = 1,
                         .term = *top_term};
    } else if (roll < 45) {
        op = (struct op){.kind = OP_REOPEN};
    }
    return op;
}

/* Proves random operations interrupted by crashes at random disk calls, with
 * unsynced writes kept, dropped or torn, recover every acknowledged entry in
 * order, over many seeds; and that no call fails except through the injected
 * fault. */
static void test_random_crashes(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct hy_prng p;
        hy_prng_seed(&p, seed);
        struct fx f;
        struct model m;
        memset(&m, 0, sizeof(m));
        fx_init(&f, seed, 512 + hy_prng_below(&p, 4096));
        f.cfg.retention_logs = hy_prng_below(&p, 30);
        f.cfg.max_log_entries = hy_prng_chance(&p, 1, 2) ? 50 : 0;
        fx_reopen(&f);
        uint64_t top_term = 1;
        for (int step = 0; step < 250 && m.last < MAX_INDEX - 64; step++) {
            struct op op = random_op(&p, &m, &top_term);
            int armed = hy_prng_chance(&p, 1, 5);
            if (armed) {
                uint32_t mask = hy_prng_chance(&p, 1, 2) ? DISK_OP_ALL : DISK_OP_BIT(DISK_OP_SYNC);
                disk_mem_fail(f.disk, mask, 1 + hy_prng_below(&p, 6), HY_EIO, 1);
            }
            struct model after = m;
            model_apply(&after, &op);
            int rc = run_op(&f, &op);
            int fired = armed && disk_mem_fault_fired(f.disk);
            disk_mem_fail_clear(f.disk);
            /* Only the injected fault may fail a call, and only with its own code: a valid
             * operation refused for any other reason is a bug, not a crash to recover from. */
            if (rc != HY_OK && !(fired && rc == HY_EIO)) {
                fail_msg("seed %llu step %d: op %d failed with %s without an injected fault "
                         "(armed %d, fired %d): %s",
                         (unsigned long long)seed, step, (int)op.kind, hy_status_name(rc), armed,
                         fired, f.err);
            }
            if (rc == HY_OK && !hy_prng_chance(&p, 1, 10)) {
                m = after;
                continue;
            }
            /* The process dies: after a failed call (it aborts) or at a random
             * moment. */
            struct model before = m;
            if (rc == HY_OK) {
                before = after;
            }
            fx_crash(&f, (enum disk_mem_crash_mode)hy_prng_below(&p, 4));
            fx_reopen(&f);
            check_between(&f.rec, &before, &after);
            check_snapshot_bytes(&f.rec);
            model_from(&m, &f.rec);
            top_term = HY_MAX(top_term, m.terms[m.last]);
            top_term = HY_MAX(top_term, m.snap_term);
        }
        fx_free(&f);
    }
}

/* ---- names: a new directory and its term/vote file (issue 19)
 * ------------------------------------------------------- */

/* Proves the simulated disk loses a new directory whole, synced files and all, in a crash
 * before its own name is synced into its parent (sync_parent), and keeps it after. */
static void test_disk_mem_new_directory_vanishes(void **state)
{
    (void)state;
    struct disk *d = disk_mem_new("/new", 3);
    int fd;
    uint8_t b[16] = "0123456789abcdef";
    assert_int_equal(d->ops->open(d, "f", DISK_CREATE, &fd), HY_OK);
    assert_int_equal(d->ops->write(d, fd, 0, b, sizeof(b)), HY_OK);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    assert_int_equal(d->ops->sync_dir(d), HY_OK);
    disk_mem_crash(d, DISK_CRASH_KEEP); /* even the kindest crash */
    assert_int_equal(d->ops->open(d, "f", 0, &fd), HY_ENOTFOUND);
    assert_int_equal(d->ops->open(d, "f", DISK_CREATE, &fd), HY_OK);
    assert_int_equal(d->ops->write(d, fd, 0, b, sizeof(b)), HY_OK);
    assert_int_equal(d->ops->sync(d, fd), HY_OK);
    assert_int_equal(d->ops->sync_dir(d), HY_OK);
    assert_int_equal(d->ops->sync_parent(d), HY_OK);
    disk_mem_crash(d, DISK_CRASH_DROP);
    assert_int_equal(d->ops->open(d, "f", 0, &fd), HY_OK);
    disk_destroy(d);
}

/* Proves a log opened in a directory made a moment ago keeps what it acknowledged through
 * the worst power cut: the open makes the directory's own name durable. */
static void test_new_directory_log_survives_power_cut(void **state)
{
    (void)state;
    struct fx f;
    struct model m;
    memset(&m, 0, sizeof(m));
    fx_init(&f, 41, 1 << 16);
    fx_reopen(&f);
    assert_true(f.rec.created);
    assert_int_equal(wal_set_term_vote(f.w, 0, 3, 2), HY_OK);
    m.term = 3;
    m.vote = 2;
    assert_int_equal(append(f.w, &m, 1, 5, 3), HY_OK);
    fx_crash(&f, DISK_CRASH_DROP);
    fx_reopen(&f);
    assert_false(f.rec.created);
    check_exact(&f.rec, &m);
    fx_free(&f);
}

/* Proves a log holding a group's entries without any term/vote record of it refuses to open
 * (a node that forgot its vote could vote twice), and that the refusal changes nothing. */
static void test_log_without_term_vote_refused(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 42, 1 << 16);
    uint8_t file[WAL_SEG_HEADER_SIZE + 64] = {0};
    wal_segment_header_encode(file);
    const uint8_t data[8] = "entry!!!";
    struct wal_record r = {.seq = 1,
                           .group = 0,
                           .kind = WAL_KIND_ENTRY,
                           .index = 1,
                           .term = 2,
                           .type = 1,
                           .len = sizeof(data),
                           .data = data};
    wal_record_encode(file + WAL_SEG_HEADER_SIZE, &r);
    assert_int_equal(disk_mem_put_file(f.disk, "open-1", file, sizeof(file)), HY_OK);
    assert_int_equal(fx_open(&f), HY_ECORRUPT);
    assert_non_null(strstr(f.err, "/data/g0"));
    assert_non_null(strstr(f.err, "term/vote"));
    assert_int_equal(fx_open(&f), HY_ECORRUPT); /* still: nothing was rewritten */
    assert_int_equal(count_files(f.disk, ""), 1);
    fx_free(&f);
}

/* Proves an empty directory is refused, and left empty, when the caller knows the node was
 * formed (its cluster file exists), instead of silently starting a new log. */
static void test_must_exist_refuses_an_empty_directory(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 43, 1 << 16);
    f.cfg.must_exist = 1;
    assert_int_equal(fx_open(&f), HY_ECORRUPT);
    assert_non_null(strstr(f.err, "/data/g0"));
    assert_non_null(strstr(f.err, "log was lost"));
    assert_int_equal(count_files(f.disk, ""), 0);
    f.cfg.must_exist = 0;
    fx_reopen(&f);
    assert_true(f.rec.created);
    f.cfg.must_exist = 1;
    fx_reopen(&f); /* a formed node with its term/vote file opens */
    assert_false(f.rec.created);
    fx_free(&f);
}

/* ---- several groups in the one log --------------------------------------------------------- */

#define MG 3
static const uint32_t mg_ids[MG] = {5, 0, 9}; /* any ids, any order */

struct mfx {
    struct disk *disk;
    struct wal_config cfg;
    struct wal *w;
    struct wal_recovered rec[MG];
    struct model m[MG];
    char err[1024];
};

static void mfx_close(struct mfx *f)
{
    if (f->w != NULL) {
        wal_close(f->w);
        for (int i = 0; i < MG; i++) {
            wal_recovered_free(&f->rec[i]);
        }
        f->w = NULL;
    }
}

static int mfx_open(struct mfx *f)
{
    mfx_close(f);
    return wal_open(f->disk, &f->cfg, mg_ids, MG, &f->w, f->rec, f->err, sizeof(f->err));
}

static void mfx_reopen(struct mfx *f)
{
    int rc = mfx_open(f);
    if (rc != HY_OK) {
        fail_msg("reopen: %s: %s", hy_status_name(rc), f->err);
    }
}

static void mfx_init(struct mfx *f, uint64_t seed, uint64_t segment_size)
{
    memset(f, 0, sizeof(*f));
    f->disk = disk_mem_new("/data/wal", seed);
    wal_config_default(&f->cfg);
    f->cfg.segment_size_bytes = segment_size;
    f->cfg.retention_logs = 0;
    mfx_reopen(f);
}

static void mfx_check(struct mfx *f)
{
    for (int i = 0; i < MG; i++) {
        assert_int_equal(f->rec[i].group, mg_ids[i]);
        check_exact(&f->rec[i], &f->m[i]);
    }
}

static void mfx_free(struct mfx *f)
{
    mfx_close(f);
    disk_destroy(f->disk);
}

/* Stages an append of group slot i (entries built into per-group arenas, alive until the
 * commit) and updates its model once the commit succeeds (mfx_commit). */
static uint8_t mg_arena[MG][BATCH_MAX][64];
static struct wal_entry mg_batch[MG][BATCH_MAX];
static struct model mg_after[MG];

static void mfx_stage(struct mfx *f, int i, uint64_t first, size_t n, uint64_t term)
{
    for (size_t k = 0; k < n; k++) {
        uint64_t index = first + k;
        mg_batch[i][k] = (struct wal_entry){.term = term,
                                            .type = 1 + (uint32_t)(index % 3),
                                            .len = (uint32_t)payload(index, term, mg_arena[i][k]),
                                            .data = mg_arena[i][k]};
        mg_after[i].terms[index] = term;
    }
    mg_after[i].last = first + n - 1;
    wal_batch_append(f->w, mg_ids[i], first, mg_batch[i], n);
}

static int mfx_commit(struct mfx *f)
{
    int rc = wal_batch_commit(f->w);
    for (int i = 0; i < MG; i++) {
        if (rc == HY_OK) {
            f->m[i] = mg_after[i];
        } else {
            mg_after[i] = f->m[i];
        }
    }
    return rc;
}

static void mfx_begin(struct mfx *f)
{
    for (int i = 0; i < MG; i++) {
        mg_after[i] = f->m[i];
    }
}

/* Proves several groups' entries and votes, interleaved in the same writes and across
 * segment rolls, come back to each group exactly, with one fdatasync per commit. */
static void test_groups_interleaved(void **state)
{
    (void)state;
    struct mfx f;
    mfx_init(&f, 51, 2048);
    struct hy_prng p;
    hy_prng_seed(&p, 51);
    for (int round = 0; round < 60; round++) {
        mfx_begin(&f);
        for (int i = 0; i < MG; i++) {
            if (hy_prng_chance(&p, 2, 3)) {
                size_t n = 1 + hy_prng_below(&p, 6);
                mfx_stage(&f, i, f.m[i].last + 1, n, 1 + (uint64_t)round / 20);
            }
        }
        wal_batch_term_vote(f.w, mg_ids[round % MG], 1 + (uint64_t)round / 20, (uint64_t)round);
        mg_after[round % MG].term = 1 + (uint64_t)round / 20;
        mg_after[round % MG].vote = (uint64_t)round;
        uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
        size_t segs = wal_segment_count(f.w);
        assert_int_equal(mfx_commit(&f), HY_OK);
        if (wal_segment_count(f.w) == segs) {
            assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1);
        }
        if (round % 17 == 0) {
            mfx_reopen(&f);
            mfx_check(&f);
        }
    }
    assert_true(wal_segment_count(f.w) > 3);
    mfx_reopen(&f);
    mfx_check(&f);
    for (int i = 0; i < MG; i++) {
        assert_int_equal(wal_last_index(f.w, mg_ids[i]), f.m[i].last);
    }
    mfx_free(&f);
}

/* Proves a truncation of one group between the other groups' records removes only that
 * group's suffix, in memory and at recovery, and a later append replaces it. */
static void test_truncate_one_group_between_others(void **state)
{
    (void)state;
    struct mfx f;
    mfx_init(&f, 52, 1 << 16);
    mfx_begin(&f);
    mfx_stage(&f, 0, 1, 10, 1);
    mfx_stage(&f, 1, 1, 5, 1);
    mfx_stage(&f, 2, 1, 7, 1);
    assert_int_equal(mfx_commit(&f), HY_OK);
    mfx_begin(&f);
    mfx_stage(&f, 1, 6, 5, 1);
    wal_batch_truncate(f.w, mg_ids[0], 6);
    mg_after[0].last = 5;
    mfx_stage(&f, 2, 8, 2, 1);
    assert_int_equal(mfx_commit(&f), HY_OK);
    assert_int_equal(wal_last_index(f.w, mg_ids[0]), 5);
    assert_int_equal(wal_last_term(f.w, mg_ids[0]), 1);
    mfx_reopen(&f);
    mfx_check(&f);
    /* Group 0 goes on with a new term; a conflicting suffix of group 2 inside one write. */
    mfx_begin(&f);
    mfx_stage(&f, 0, 6, 3, 2);
    mfx_stage(&f, 2, 4, 2, 3);
    assert_int_equal(mfx_commit(&f), HY_OK);
    assert_int_equal(wal_last_index(f.w, mg_ids[2]), 5);
    assert_int_equal(wal_last_term(f.w, mg_ids[2]), 3);
    mfx_reopen(&f);
    mfx_check(&f);
    assert_int_equal(wal_truncate(f.w, mg_ids[2], 5), HY_OK);
    f.m[2].last = 4;
    assert_int_equal(wal_last_term(f.w, mg_ids[2]), 3);
    mfx_reopen(&f);
    mfx_check(&f);
    mfx_free(&f);
}

/* Proves the torn tail of a write holding several groups' records is cut for all of them: the
 * records before the damage survive (their group's part of the write), the rest of the write
 * is gone in every group, and every group goes on from what it recovered. */
static void test_torn_tail_across_groups(void **state)
{
    (void)state;
    struct mfx f;
    mfx_init(&f, 53, 1 << 16);
    mfx_begin(&f);
    for (int i = 0; i < MG; i++) {
        mfx_stage(&f, i, 1, 4, 1);
    }
    assert_int_equal(mfx_commit(&f), HY_OK);
    struct model before[MG];
    memcpy(before, f.m, sizeof(before));
    mfx_begin(&f);
    for (int i = 0; i < MG; i++) {
        mfx_stage(&f, i, 5, 2, 1);
    }
    assert_int_equal(mfx_commit(&f), HY_OK);
    /* The last write holds slot 0's 5, 6, slot 1's 5, 6, slot 2's 5, 6: damage slot 1's 6. */
    uint64_t off = WAL_SEG_HEADER_SIZE + (uint64_t)(2 * MG) * WAL_REC_HEADER_SIZE;
    uint8_t tmp[64];
    for (int i = 0; i < MG; i++) {
        for (uint64_t k = 1; k <= 4; k++) {
            off += wal_record_size((uint32_t)payload(k, 1, tmp));
        }
    }
    off += wal_record_size((uint32_t)payload(5, 1, tmp)) +
           wal_record_size((uint32_t)payload(6, 1, tmp));
    off += wal_record_size((uint32_t)payload(5, 1, tmp));
    char name[128];
    find_file(f.disk, "open-", name, sizeof(name));
    flip_byte(f.disk, name, off + 41);
    mfx_reopen(&f);
    before[0].last = 6;
    before[0].terms[5] = before[0].terms[6] = 1;
    before[1].last = 5;
    before[1].terms[5] = 1;
    memcpy(f.m, before, sizeof(before));
    mfx_check(&f);
    mfx_begin(&f);
    mfx_stage(&f, 1, 6, 3, 2);
    mfx_stage(&f, 2, 5, 1, 2);
    assert_int_equal(mfx_commit(&f), HY_OK);
    mfx_reopen(&f);
    mfx_check(&f);
    mfx_free(&f);
}

/* A log of 1 KiB segments (at most 6 closed before the log asks for snapshots) in which
 * group slot 1 wrote three entries, then nothing, while slot 0 wrote 400 and snapshotted every
 * 50: slot 1's entries keep the oldest segments. */
static void lagging_group_log(struct mfx *f, uint64_t seed)
{
    memset(f, 0, sizeof(*f));
    f->disk = disk_mem_new("/data/wal", seed);
    wal_config_default(&f->cfg);
    f->cfg.segment_size_bytes = 1024;
    f->cfg.retention_logs = 4;
    f->cfg.snapshot_interval = 0;
    f->cfg.segments_soft_max = 6;
    mfx_reopen(f);
    mfx_begin(f);
    mfx_stage(f, 1, 1, 3, 1); /* the lagging group: three entries, then nothing */
    assert_int_equal(mfx_commit(f), HY_OK);
    const uint8_t data[] = "state";
    for (uint64_t i = 1; i <= 400; i += 5) {
        mfx_begin(f);
        mfx_stage(f, 0, i, 5, 1);
        assert_int_equal(mfx_commit(f), HY_OK);
        if (i % 50 == 1) {
            struct wal_snapshot s = snap_at(i + 4, 1, data, sizeof(data));
            assert_int_equal(wal_snapshot_put(f->w, mg_ids[0], &s, 0), HY_OK);
            f->m[0].snap = i + 4;
        }
    }
}

/* A group whose entries cannot be snapshotted (not committed: a partition without a leader)
 * pins the oldest segments for as long as it lacks one. Its entries appended again at the
 * log's end (node_log_unpin does so) void their old copies: no group pins, the backlog is
 * collected, and recovery finds the group's entries whole, from the new segment. */
static void test_reappended_tail_unpins_old_segments(void **state)
{
    (void)state;
    struct mfx f;
    lagging_group_log(&f, 55);
    uint32_t pinning[4];
    assert_int_equal(wal_pinning_groups(f.w, pinning, 4), 1);
    assert_int_equal(pinning[0], mg_ids[1]);
    size_t before = wal_segment_count(f.w);
    assert_true(before > f.cfg.segments_soft_max);
    mfx_begin(&f);
    mfx_stage(&f, 1, 1, 3, 1); /* the same entries again */
    assert_int_equal(mfx_commit(&f), HY_OK);
    assert_int_equal(wal_pinning_groups(f.w, pinning, 4), 0);
    /* The next roll collects (after syncing what replaced the old copies). */
    for (uint64_t i = 401; wal_segment_count(f.w) >= before && i <= 600; i += 5) {
        mfx_begin(&f);
        mfx_stage(&f, 0, i, 5, 1);
        assert_int_equal(mfx_commit(&f), HY_OK);
    }
    assert_true(wal_segment_count(f.w) <= f.cfg.segments_soft_max + 1);
    assert_int_equal(wal_first_index(f.w, mg_ids[1]), 1);
    assert_int_equal(wal_last_index(f.w, mg_ids[1]), 3);
    mfx_reopen(&f);
    mfx_check(&f);
    assert_int_equal(f.rec[1].n_entries, 3);
    mfx_free(&f);
}

/* Proves segment garbage collection: a segment goes only once no group needs it; a group
 * that lags (entries never snapshotted) pins the oldest segments and, once there are too many,
 * is asked for a snapshot (wal_snapshot_wanted) that lets them go; recovery is whole after. */
static void test_gc_with_lagging_group(void **state)
{
    (void)state;
    struct mfx f;
    lagging_group_log(&f, 54);
    const uint8_t data[] = "state";
    assert_false(wal_snapshot_wanted(f.w, mg_ids[2])); /* never wrote: pins nothing */
    /* Group 0 snapshotted all along, but group 1's first entries pin the first segment. */
    assert_true(wal_segment_count(f.w) > f.cfg.segments_soft_max);
    assert_true(wal_snapshot_wanted(f.w, mg_ids[1]));
    assert_false(wal_snapshot_wanted(f.w, mg_ids[0]));
    uint32_t pinning[4];
    assert_int_equal(wal_pinning_groups(f.w, pinning, 4), 1);
    assert_int_equal(pinning[0], mg_ids[1]);
    mfx_reopen(&f);
    mfx_check(&f);
    struct wal_snapshot s = snap_at(3, 1, data, sizeof(data));
    assert_int_equal(wal_snapshot_put(f.w, mg_ids[1], &s, 0), HY_OK);
    f.m[1].snap = 3;
    assert_false(wal_snapshot_wanted(f.w, mg_ids[1]));
    assert_int_equal(wal_pinning_groups(f.w, pinning, 4), 0);
    /* The backlog is collected (group 0's own retention no longer pins under pressure). */
    assert_true(wal_segment_count(f.w) <= f.cfg.segments_soft_max + 1);
    mfx_reopen(&f);
    mfx_check(&f);
    assert_int_equal(f.rec[1].n_entries, 0); /* its entries went with the old segments */
    /* More writes, group 1 going on after its snapshot: still whole. */
    for (uint64_t i = 401; i <= 460; i += 5) {
        mfx_begin(&f);
        mfx_stage(&f, 0, i, 5, 2);
        if (i == 401) {
            mfx_stage(&f, 1, 4, 2, 2);
        }
        assert_int_equal(mfx_commit(&f), HY_OK);
    }
    mfx_reopen(&f);
    mfx_check(&f);
    mfx_free(&f);
}

/* Proves each group recovers its own snapshot: one group installs a snapshot from the leader
 * (its log voided) between the other groups' records, the others keep their logs, and each
 * goes on after a crash at any point of the install. */
static void test_recovery_per_group_snapshots(void **state)
{
    (void)state;
    struct mfx f;
    mfx_init(&f, 55, 1024);
    for (uint64_t i = 1; i <= 40; i += 4) {
        mfx_begin(&f);
        for (int g = 0; g < MG; g++) {
            mfx_stage(&f, g, i, 4, 1);
        }
        assert_int_equal(mfx_commit(&f), HY_OK);
    }
    struct wal_snapshot s = snap_at(100, 3, (const uint8_t *)"leader", 6);
    assert_int_equal(wal_snapshot_put(f.w, mg_ids[1], &s, 1), HY_OK);
    f.m[1].snap = f.m[1].last = 100;
    struct wal_snapshot s2 = snap_at(20, 1, (const uint8_t *)"own", 3);
    assert_int_equal(wal_snapshot_put(f.w, mg_ids[2], &s2, 0), HY_OK);
    f.m[2].snap = 20;
    mfx_reopen(&f);
    mfx_check(&f);
    assert_int_equal(f.rec[1].snapshot.index, 100);
    assert_int_equal(f.rec[1].n_entries, 0);
    assert_int_equal(f.rec[2].snapshot.data_len, 3);
    mfx_begin(&f);
    mfx_stage(&f, 1, 101, 2, 3);
    mfx_stage(&f, 0, 41, 2, 1);
    assert_int_equal(mfx_commit(&f), HY_OK);
    disk_mem_crash(f.disk, DISK_CRASH_TEAR); /* everything acknowledged was synced */
    mfx_reopen(&f);
    mfx_check(&f);
    mfx_free(&f);
}

/* Proves wal_batch_write leaves its records out of the durable state until wal_sync (a power
 * cut loses them, and only them), that wal_sync and a later synced commit make them durable,
 * and that a process crash without power loss (every pending write kept) loses nothing. */
static void test_write_without_sync(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 11, 1 << 16);
    fx_reopen(&f);
    uint64_t syncs = disk_mem_op_calls(f.disk, DISK_OP_SYNC);
    assert_int_equal(wal_append(f.w, 0, 1, make_batch(1, 3, 1), 3), HY_OK);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1);
    assert_false(wal_unsynced(f.w));
    wal_batch_append(f.w, 0, 4, make_batch(4, 3, 1), 3);
    assert_int_equal(wal_batch_write(f.w), HY_OK);
    assert_int_equal(disk_mem_op_calls(f.disk, DISK_OP_SYNC) - syncs, 1); /* no fdatasync */
    assert_true(wal_unsynced(f.w));
    assert_int_equal(wal_last_index(f.w, 0), 6); /* the state moved on */
    fx_crash(&f, DISK_CRASH_DROP);               /* power cut: the unsynced write is lost */
    fx_reopen(&f);
    assert_int_equal(f.rec.first_index + f.rec.n_entries - 1, 3);

    wal_batch_append(f.w, 0, 4, make_batch(4, 3, 2), 3);
    assert_int_equal(wal_batch_write(f.w), HY_OK);
    assert_int_equal(wal_sync(f.w), HY_OK);
    assert_false(wal_unsynced(f.w));
    assert_int_equal(wal_sync(f.w), HY_OK); /* nothing left: no second fdatasync */
    fx_crash(&f, DISK_CRASH_DROP);
    fx_reopen(&f);
    assert_int_equal(f.rec.n_entries, 6);
    check_entry(&f.rec.entries[5], 6, 2);

    wal_batch_append(f.w, 0, 7, make_batch(7, 2, 2), 2);
    assert_int_equal(wal_batch_write(f.w), HY_OK);
    assert_int_equal(wal_set_term_vote(f.w, 0, 3, 2), HY_OK); /* synced: takes 7..8 along */
    assert_false(wal_unsynced(f.w));
    wal_batch_append(f.w, 0, 9, make_batch(9, 1, 3), 1);
    assert_int_equal(wal_batch_write(f.w), HY_OK);
    fx_crash(&f, DISK_CRASH_KEEP); /* the process died, the machine did not */
    fx_reopen(&f);
    assert_int_equal(f.rec.n_entries, 9);
    assert_int_equal(f.rec.term, 3);
    assert_int_equal(f.rec.vote, 2);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_without_sync),
        cmocka_unit_test(test_disk_mem_crash_semantics),
        cmocka_unit_test(test_disk_mem_faults),
        cmocka_unit_test(test_disk_mem_new_directory_vanishes),
        cmocka_unit_test(test_new_directory_log_survives_power_cut),
        cmocka_unit_test(test_log_without_term_vote_refused),
        cmocka_unit_test(test_must_exist_refuses_an_empty_directory),
        cmocka_unit_test(test_open_empty),
        cmocka_unit_test(test_groups_interleaved),
        cmocka_unit_test(test_truncate_one_group_between_others),
        cmocka_unit_test(test_torn_tail_across_groups),
        cmocka_unit_test(test_gc_with_lagging_group),
        cmocka_unit_test(test_reappended_tail_unpins_old_segments),
        cmocka_unit_test(test_recovery_per_group_snapshots),
        cmocka_unit_test(test_append_recover_with_rolls),
        cmocka_unit_test(test_large_batch_buffer_is_released),
        cmocka_unit_test(test_term_vote),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_torn_tail_is_cut),
        cmocka_unit_test(test_open_segment_corruption_refuses_then_repair),
        cmocka_unit_test(test_closed_segment_corruption),
        cmocka_unit_test(test_gap_refuses),
        cmocka_unit_test(test_leftovers_removed),
        cmocka_unit_test(test_snapshot_compaction),
        cmocka_unit_test(test_snapshot_install),
        cmocka_unit_test(test_snapshot_file_then_install),
        cmocka_unit_test(test_group_forget),
        cmocka_unit_test(test_snapshot_damage_refuses),
        cmocka_unit_test(test_log_older_than_snapshot),
        cmocka_unit_test(test_snapshot_huge_index_refused),
        cmocka_unit_test(test_enospc_then_space_returns),
        cmocka_unit_test(test_enospc_injected),
        cmocka_unit_test(test_sync_failure_is_fatal),
        cmocka_unit_test(test_fail_nth_call_loop),
        cmocka_unit_test(test_random_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
