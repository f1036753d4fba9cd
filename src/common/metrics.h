/*
 * metrics.h - latency histograms as plain data, and the Prometheus text exposition format
 * (version 0.0.4) they and the other numbers are written in.
 *
 * A histogram is a fixed array of bucket counts over one table of upper bounds in
 * microseconds (50 us .. 10 s, then +Inf), so recording is a short scan with no allocation and
 * a histogram can be copied with memcpy (the shell publishes copies to its HTTP thread). A
 * histogram fed from a millisecond clock (the cores get time as now_ms) starts at the 1 ms
 * bound: finer buckets would claim a precision its samples do not have.
 *
 * The writer appends to a hy_buf: a family's # HELP and # TYPE lines, then its samples, which
 * the caller must emit together (the format requires a family's samples to be contiguous).
 * Label values are escaped as the format says (backslash, double quote, line feed). Pure.
 */
#ifndef HY_METRICS_H
#define HY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define HY_HISTO_BOUNDS 17 /* finite upper bounds; one more bucket holds what lies above */

struct hy_histo {
    uint32_t first;                       /* index of the first bound written (resolution) */
    uint64_t bucket[HY_HISTO_BOUNDS + 1]; /* per bucket, not cumulative; last = above all */
    uint64_t count;
    uint64_t sum_us;
};

/* The finite upper bounds, in microseconds, ascending. */
extern const uint64_t hy_histo_bounds_us[HY_HISTO_BOUNDS];

/* An empty histogram for samples measured in microseconds (buckets from 50 us). */
void hy_histo_init_us(struct hy_histo *h);
/* An empty histogram for samples measured with a millisecond clock (buckets from 1 ms). */
void hy_histo_init_ms(struct hy_histo *h);
void hy_histo_record_us(struct hy_histo *h, uint64_t us);
void hy_histo_record_ms(struct hy_histo *h, uint64_t ms);

/* A label set, written as k="v",k2="v2" (escaped). Room for a few short labels; overflowing
 * it is a programmer error (asserted). */
struct prom_labels {
    char text[512];
    size_t len;
};

void prom_labels_init(struct prom_labels *l);
/* Adds key="value". key must be a valid label name; value is any NUL-terminated text. */
void prom_label(struct prom_labels *l, const char *key, const char *value);

/* Starts a family: "# HELP name help" and "# TYPE name type" (type: counter, gauge,
 * histogram). help is one line of plain text (no backslash or line feed). */
void prom_family(struct hy_buf *b, const char *name, const char *type, const char *help);
/* One sample "name{labels} value"; l may be NULL (no labels). */
void prom_u64(struct hy_buf *b, const char *name, const struct prom_labels *l, uint64_t v);
/* A value in seconds given in microseconds, written exactly (e.g. 0.00025). */
void prom_seconds(struct hy_buf *b, const char *name, const struct prom_labels *l, uint64_t us);
/* A histogram's samples: name_bucket{...,le="..."} (cumulative, +Inf last), name_sum in
 * seconds, name_count. l may be NULL. */
void prom_histo(struct hy_buf *b, const char *name, const struct prom_labels *l,
                const struct hy_histo *h);

#endif
