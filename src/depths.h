/*
 * depths.h: how much work waits in the database, for /metrics (depths.c).
 */
#ifndef PUSHGATE_DEPTHS_H
#define PUSHGATE_DEPTHS_H

#include <ev.h>

#include "store.h"

struct depths;
struct metrics_out;

/* Counted on `store` every DEPTHS_INTERVAL once started (each count capped at 1,000,000). */
struct depths *depths_new(struct ev_loop *loop, struct store *store);
void depths_start(struct depths *d);
void depths_stop(struct depths *d);
void depths_free(struct depths *d);

/*
 * pushgate_queue_depth{queue="sms_queued"|"sms_in_flight"|"sms_waiting_receipt"|
 * "push_pending"|"scheduled"} (every node's work together, as last counted)
 * and pushgate_queue_depth_age_seconds (how old that count is).
 */
void depths_metrics(const struct depths *d, struct metrics_out *o);

#endif
