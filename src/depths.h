/*
 * depths.h: how much work waits in the database, for /metrics (depths.c),
 * and the queues' counts in SQL, which the operator console reads too.
 */
#ifndef PUSHGATE_DEPTHS_H
#define PUSHGATE_DEPTHS_H

#include <ev.h>

#include "store.h"

/*
 * The queues: X(NAME, COND) for each, SEP between two (COND: the
 * recipients' states, each with a partial index of its own).  NAME is the
 * queue label of pushgate_queue_depth and the console's key.
 */
#define DEPTHS_QUEUES(X, SEP) \
	X("sms_queued", "state = 'SMS_QUEUED'") SEP \
	X("sms_in_flight", "state = 'SMS_SUBMITTED'") SEP \
	X("sms_waiting_receipt", "state = 'SMS_ACCEPTED'") SEP \
	X("push_pending", "state = 'PUSH_SENT'") SEP \
	X("scheduled", "state IN ('SCHEDULED', 'HELD')")

/* The recipients that meet COND, counted up to CAP (an SQL integer: a count is never worth a long scan). */
#define DEPTHS_COUNT(COND, CAP) "(SELECT count(*) FROM (SELECT 1 FROM recipients WHERE " COND " LIMIT " CAP ") s)"

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
