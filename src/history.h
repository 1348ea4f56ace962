/*
 * history.h: the history range keeper (history.c) on pushgated's loop.
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

/* Calls history_ensure() on `store` at start and every few seconds once started. */
struct history *history_new(struct ev_loop *loop, struct store *store);
void history_start(struct history *h);
void history_stop(struct history *h);
void history_free(struct history *h);

/* pushgate_history_ids_ahead: recipient ids left in the ranges made (-1 before the first check). */
void history_metrics(const struct history *h, struct metrics_out *o);

#endif
