/*
 * rollup.h: the report rollup job (rollup.c) on pushgated's loop.
 */
#ifndef PUSHGATE_ROLLUP_H
#define PUSHGATE_ROLLUP_H

#include <ev.h>

#include "store.h"

/*
 * How far one run of report_rollup() may move the watermark (an SQL
 * interval): a database with history catches up in steps this long, each
 * one short transaction, pushgated's job and `pushgatectl rollup` alike.
 */
#define ROLLUP_STEP "1 hour"

struct rollup;
struct metrics_out;

/* Runs report_rollup() on `store` every `interval` seconds once started (NULL when interval is 0). */
struct rollup *rollup_new(struct ev_loop *loop, struct store *store, double interval);
void rollup_start(struct rollup *r);
void rollup_stop(struct rollup *r);
void rollup_free(struct rollup *r);

/*
 * pushgate_report_rollup_lag_seconds (now - the watermark, as last seen;
 * -1 before any) and pushgate_report_rollup_events_total (events this node
 * added to the rollups).
 */
void rollup_metrics(const struct rollup *r, struct metrics_out *o);

#endif
