/*
 * metrics.c - histograms and the Prometheus text format (metrics.h).
 */
#include "common/metrics.h"

#include <stdio.h>
#include <string.h>

#include "common/assert.h"

const uint64_t hy_histo_bounds_us[HY_HISTO_BOUNDS] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

#define HY_HISTO_FIRST_MS 4 /* hy_histo_bounds_us[4] is 1 ms */

void hy_histo_init_us(struct hy_histo *h)
{
    memset(h, 0, sizeof(*h));
}

void hy_histo_init_ms(struct hy_histo *h)
{
    memset(h, 0, sizeof(*h));
    h->first = HY_HISTO_FIRST_MS;
}

void hy_histo_record_us(struct hy_histo *h, uint64_t us)
{
    uint32_t i = h->first;
    while (i < HY_HISTO_BOUNDS && us > hy_histo_bounds_us[i]) {
        i++;
    }
    h->bucket[i]++;
    h->count++;
    h->sum_us += us;
}

void hy_histo_record_ms(struct hy_histo *h, uint64_t ms)
{
    hy_histo_record_us(h, ms > UINT64_MAX / 1000 ? UINT64_MAX : ms * 1000);
}

void prom_labels_init(struct prom_labels *l)
{
    l->len = 0;
    l->text[0] = '\0';
}

static void labels_put(struct prom_labels *l, char c)
{
    HY_ASSERT(l->len + 1 < sizeof(l->text));
    l->text[l->len++] = c;
    l->text[l->len] = '\0';
}

void prom_label(struct prom_labels *l, const char *key, const char *value)
{
    if (l->len > 0) {
        labels_put(l, ',');
    }
    for (const char *p = key; *p; p++) {
        labels_put(l, *p);
    }
    labels_put(l, '=');
    labels_put(l, '"');
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"') {
            labels_put(l, '\\');
            labels_put(l, *p);
        } else if (*p == '\n') {
            labels_put(l, '\\');
            labels_put(l, 'n');
        } else {
            labels_put(l, *p);
        }
    }
    labels_put(l, '"');
}

void prom_family(struct hy_buf *b, const char *name, const char *type, const char *help)
{
    HY_ASSERT(strchr(help, '\n') == NULL && strchr(help, '\\') == NULL);
    hy_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_head(struct hy_buf *b, const char *name, const char *suffix,
                        const struct prom_labels *l, const char *extra)
{
    int has_labels = l != NULL && l->len > 0;
    hy_buf_printf(b, "%s%s", name, suffix);
    if (has_labels || extra != NULL) {
        hy_buf_printf(b, "{%s%s%s}", has_labels ? l->text : "",
                      has_labels && extra != NULL ? "," : "", extra != NULL ? extra : "");
    }
    hy_buf_append_str(b, " ");
}

void prom_u64(struct hy_buf *b, const char *name, const struct prom_labels *l, uint64_t v)
{
    sample_head(b, name, "", l, NULL);
    hy_buf_printf(b, "%llu\n", (unsigned long long)v);
}

/* Microseconds as exact decimal seconds: 250 -> "0.00025", 2000000 -> "2". */
static void seconds_text(char *out, size_t cap, uint64_t us)
{
    int n = snprintf(out, cap, "%llu.%06llu", (unsigned long long)(us / 1000000),
                     (unsigned long long)(us % 1000000));
    HY_ASSERT(n > 0 && (size_t)n < cap);
    while (n > 0 && out[n - 1] == '0') {
        out[--n] = '\0';
    }
    if (n > 0 && out[n - 1] == '.') {
        out[--n] = '\0';
    }
}

void prom_seconds(struct hy_buf *b, const char *name, const struct prom_labels *l, uint64_t us)
{
    char text[48];
    seconds_text(text, sizeof(text), us);
    sample_head(b, name, "", l, NULL);
    hy_buf_printf(b, "%s\n", text);
}

void prom_histo(struct hy_buf *b, const char *name, const struct prom_labels *l,
                const struct hy_histo *h)
{
    uint64_t cumulative = 0;
    char le[64], bound[48];
    for (uint32_t i = 0; i < h->first; i++) {
        cumulative += h->bucket[i]; /* none by construction; kept exact all the same */
    }
    for (uint32_t i = h->first; i < HY_HISTO_BOUNDS; i++) {
        cumulative += h->bucket[i];
        seconds_text(bound, sizeof(bound), hy_histo_bounds_us[i]);
        snprintf(le, sizeof(le), "le=\"%s\"", bound);
        sample_head(b, name, "_bucket", l, le);
        hy_buf_printf(b, "%llu\n", (unsigned long long)cumulative);
    }
    cumulative += h->bucket[HY_HISTO_BOUNDS];
    sample_head(b, name, "_bucket", l, "le=\"+Inf\"");
    hy_buf_printf(b, "%llu\n", (unsigned long long)cumulative);
    char sum_name[128];
    snprintf(sum_name, sizeof(sum_name), "%s_sum", name);
    prom_seconds(b, sum_name, l, h->sum_us);
    sample_head(b, name, "_count", l, NULL);
    hy_buf_printf(b, "%llu\n", (unsigned long long)h->count);
}
