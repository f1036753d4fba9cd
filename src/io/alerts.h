/*
 * alerts.h - webhook alerts (issue 14 item 4): the cluster events that need an operator
 * (QUORUM_LOST and QUORUM_REGAINED, MEMBER_FAILED, DISK_FULL, FOLLOWER_LAGGING) POSTed as JSON
 * to every URL of `alert-webhooks`, by a thread of their own (libcurl): the loop only queues.
 * Each alert is tried up to 4 times per URL with a doubling backoff from 250 ms (5 s per
 * attempt), at most 60 a minute per URL (more are dropped and the drop logged), and at most 256
 * wait (the oldest goes first). Failures are logged; none ever blocks or stops the node.
 */
#ifndef HY_IO_ALERTS_H
#define HY_IO_ALERTS_H

#include "common/log.h"
#include "common/status.h"

struct io_alerts;

/* Starts the sender for the comma-separated URLs (*out = NULL when there are none).
 * HY_ECONFIG (logged) for a list that is not http(s) URLs. */
int io_alerts_open(const char *urls, const struct hy_log *log, struct io_alerts **out);
/* Queues one alert (JSON, copied). a may be NULL (no webhooks). */
void io_alerts_push(struct io_alerts *a, const char *json);
/* Whether a cluster event (its JSON) is one that alerts. */
int io_alerts_wanted(const char *json);
/* Stops the thread (alerts still queued are dropped). a may be NULL. */
void io_alerts_close(struct io_alerts *a);

#endif
