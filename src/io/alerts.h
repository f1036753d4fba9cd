/*
 * alerts.h - webhook alerts (issue 14 item 4): the cluster events that need an operator
 * (QUORUM_LOST and QUORUM_REGAINED, MEMBER_FAILED, DISK_FULL, FOLLOWER_LAGGING; ALERT_TEST) POSTed
 * as JSON to every URL of `alert-webhooks`, by a thread of their own (libcurl): the loop only
 * queues. Each alert is tried up to 4 times per URL with a doubling backoff from 250 ms (5 s per
 * attempt), at most alert-rate-max per alert-rate-window-ms per URL (default 60 a minute; more
 * are dropped, the drop logged and counted), and at most 256 wait (the oldest goes first).
 * Failures are logged; none ever blocks or stops the node.
 */
#ifndef HY_IO_ALERTS_H
#define HY_IO_ALERTS_H

#include <stdint.h>

#include "common/log.h"
#include "common/status.h"

struct io_alerts;

/* What became of the alerts so far, per alert and URL (io_alerts_stats). */
struct io_alerts_stats {
    uint64_t sent;         /* a 2xx answer */
    uint64_t failed;       /* every attempt failed */
    uint64_t rate_limited; /* dropped: over the URL's rate */
    uint64_t queue_full;   /* dropped before any URL: the queue was full (once per alert) */
    uint64_t retries;      /* attempts after the first */
};

/* Starts the sender for the comma-separated URLs (*out = NULL when there are none), sending at
 * most rate_max alerts per window_ms to each. HY_ECONFIG (logged) for a list that is not
 * http(s) URLs. */
int io_alerts_open(const char *urls, uint32_t rate_max, uint64_t window_ms,
                   const struct hy_log *log, struct io_alerts **out);
/* Queues one alert (JSON, copied). a may be NULL (no webhooks). */
void io_alerts_push(struct io_alerts *a, const char *json);
/* The counts so far (all zero when a is NULL). */
void io_alerts_stats(struct io_alerts *a, struct io_alerts_stats *out);
/* Whether a cluster event (its JSON) is one that alerts. */
int io_alerts_wanted(const char *json);
/* Stops the thread (alerts still queued are dropped). a may be NULL. */
void io_alerts_close(struct io_alerts *a);

#endif
