/*
 * history.h: the history range keeper (history.c) on pushgated's loop:
 * ranges made ahead, old ones dropped (or their outboxes emptied) under
 * [retention], and the old rows outside the ranges (MO) deleted.
 */
#ifndef PUSHGATE_HISTORY_H
#define PUSHGATE_HISTORY_H

#include <ev.h>

#include "store.h"

/* The smallest range made and the traffic a range is sized for. */
#define HISTORY_RANGE_MIN_SQL  "1000000"
#define HISTORY_RANGE_SPAN_SQL "1 day"

struct history;
struct metrics_out;

struct history_config {
	double keep_days;       /* [retention] history_days */
	double outbox_days;     /* [retention] outbox_days: a range's outboxes emptied after (when shorter) */
	double drop_interval;   /* [retention] check_interval: seconds between drops of old ranges, 0: none */
	int    export_first;    /* [retention] export_dir set: pushgatectl retention run drops, after its export */
};

/*
 * Calls history_ensure() on `store` at start and every few seconds once
 * started, and history_retention_drop() (per class) and history_trim() every
 * drop_interval.  `store` must
 * run each job in a transaction of its own (round_max 1): a drop's locks
 * last no longer than the drop.
 */
struct history *history_new(struct ev_loop *loop, struct store *store, const struct history_config *c);
void history_start(struct history *h);
void history_stop(struct history *h);
void history_free(struct history *h);

/*
 * pushgate_history_ids_ahead: recipient ids left in the ranges made (-1
 * before the first check); ranges dropped, ranges' outboxes emptied, rows
 * outside the ranges deleted and retention checks failed.
 */
void history_metrics(const struct history *h, struct metrics_out *o);

#endif
