/*
 * history.c: the history's recipient id ranges (sql/029) on pushgated's
 * loop, two jobs on the slow store:
 *  - made ahead: every HISTORY_INTERVAL seconds it calls history_ensure()
 *    (sql/functions/history_ensure.sql), which adds the next range of
 *    recipients, sms_parts and events partitions while fewer ids than a
 *    whole range are left.  A row whose recipient id no range holds could
 *    not be written at all, so the margin is a range (about a day of
 *    traffic, at least HISTORY_RANGE_MIN_SQL ids) and the check runs often:
 *    the bulk path's 25,000 recipients a second use a quarter of the
 *    smallest range between two checks.
 *  - retention: every [retention] check_interval seconds (0: never; also
 *    never when export_dir asks for an export first, which pushgatectl
 *    retention run does) it calls history_retention_drop()
 *    (sql/functions/history_retention_drop.sql), which drops the oldest
 *    range older than [retention] history_days with nothing in flight, whole
 *    partitions under a lock that waits at most 200 ms; after a drop it asks
 *    again at once, so old ranges go one at a time; a lock not granted is
 *    tried again after a minute (HISTORY_RETRY, or the interval if shorter).
 * Logs each range made and dropped and each failure.  Owns its jobs in
 * flight and the figures for /metrics; never blocks.
 */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"

#define HISTORY_INTERVAL  10.0        /* seconds between checks of the ranges ahead */
#define HISTORY_RETRY     60.0        /* at most this many seconds before a try that was busy or failed comes again */

static const struct store_stmt stmt_ensure = {
	"history_ensure",
	"SELECT made, ahead FROM history_ensure(" HISTORY_RANGE_MIN_SQL ", '" HISTORY_RANGE_SPAN_SQL "')",
	0, 0,
};

/* $1 days kept.  Row (when a range was judged): lo, suffix, newest, action. */
static const struct store_stmt stmt_drop = {
	"history_retention_drop",
	"SELECT lo, suffix, newest, action FROM history_retention_drop(make_interval(secs => $1::float8 * 86400))",
	1, 0,
};

struct history {
	struct ev_loop  *loop;
	struct store    *store;
	ev_timer         tick, drop_tick;
	struct store_job job, drop_job;
	int              in_flight, drop_in_flight, stopping;
	double           keep_days, drop_interval;   /* drop_interval 0: pushgated drops nothing */
	char             p_days[32];
	const char      *drop_params[1];
	long long        ahead;       /* ids left in the ranges made (-1: not seen yet) */
	unsigned long long dropped, drop_failures;
};

static void history_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct history *h = job->arg;
	h->in_flight = 0;
	if (err == STORE_SQL_ERROR)
		log_error("history", "ev=history_ensure_failed err=\"%s\"", msg);
	if (err == STORE_OK && PQntuples(job->res) == 1 && PQnfields(job->res) == 2) {
		int made = atoi(PQgetvalue(job->res, 0, 0));
		h->ahead = strtoll(PQgetvalue(job->res, 0, 1), NULL, 10);
		if (made > 0)
			log_info("history", "ev=history_range_made ranges=%d ahead=%lld", made, h->ahead);
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct history *h = w->data;
	if (h->stopping || h->in_flight || !store_is_up(h->store))
		return;
	h->in_flight = 1;
	h->job = (struct store_job){ .stmt = &stmt_ensure, .done = history_done, .arg = h };
	store_submit(h->store, &h->job);
}

/* The next retention check in `after` seconds. */
static void drop_again(struct history *h, double after)
{
	if (h->stopping)
		return;
	ev_timer_stop(h->loop, &h->drop_tick);
	ev_timer_set(&h->drop_tick, after, h->drop_interval);
	ev_timer_start(h->loop, &h->drop_tick);
}

/* A try that was busy or failed comes again after a minute, or the interval when shorter. */
static double retry_after(const struct history *h)
{
	return h->drop_interval < HISTORY_RETRY ? h->drop_interval : HISTORY_RETRY;
}

static void drop_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct history *h = job->arg;
	h->drop_in_flight = 0;
	if (err != STORE_OK) {
		h->drop_failures++;
		if (err == STORE_SQL_ERROR)
			log_error("history", "ev=history_retention_failed err=\"%s\"", msg);
		drop_again(h, retry_after(h));
		return;
	}
	if (PQntuples(job->res) != 1 || PQnfields(job->res) != 4)
		return;   /* nothing old enough: the next check at the interval */
	const char *suffix = PQgetvalue(job->res, 0, 1), *newest = PQgetvalue(job->res, 0, 2),
		   *action = PQgetvalue(job->res, 0, 3);
	if (strcmp(action, "dropped") == 0) {
		h->dropped++;
		log_info("history", "ev=history_range_dropped range=%s newest=\"%s\" keep_days=%g", suffix, newest,
			 h->keep_days);
		drop_again(h, 0.0);   /* the next old one, if any */
	} else if (strcmp(action, "busy") == 0) {
		h->drop_failures++;
		log_info("history", "ev=history_retention_busy range=%s retry_s=%g", suffix, retry_after(h));
		drop_again(h, retry_after(h));
	}
	/* otherwise it changed its mind under the lock (a recipient came back in flight): the interval */
}

static void drop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct history *h = w->data;
	if (h->stopping || h->drop_in_flight || !store_is_up(h->store))
		return;
	h->drop_in_flight = 1;
	h->drop_params[0] = h->p_days;
	h->drop_job = (struct store_job){ .stmt = &stmt_drop, .nparams = 1, .params = h->drop_params, .done = drop_done,
					  .arg = h };
	store_submit(h->store, &h->drop_job);
}

struct history *history_new(struct ev_loop *loop, struct store *store, const struct history_config *c)
{
	struct history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->loop = loop;
	h->store = store;
	h->ahead = -1;
	h->keep_days = c->keep_days;
	h->drop_interval = c->export_first ? 0 : c->drop_interval;
	snprintf(h->p_days, sizeof(h->p_days), "%.17g", c->keep_days);
	ev_timer_init(&h->tick, tick_cb, 0.5, HISTORY_INTERVAL);
	h->tick.data = h;
	/* the first retention check a minute after start: the ranges ahead come first */
	ev_timer_init(&h->drop_tick, drop_cb, h->drop_interval < 60 ? h->drop_interval : 60, h->drop_interval);
	h->drop_tick.data = h;
	if (c->drop_interval > 0 && c->export_first)
		log_info("history", "ev=history_retention_manual why=\"[retention] export_dir is set: pushgatectl retention "
			 "run --export drops the old ranges\"");
	return h;
}

void history_start(struct history *h)
{
	if (!h)
		return;
	ev_timer_start(h->loop, &h->tick);
	if (h->drop_interval > 0)
		ev_timer_start(h->loop, &h->drop_tick);
}

void history_stop(struct history *h)
{
	if (!h)
		return;
	h->stopping = 1;
	ev_timer_stop(h->loop, &h->tick);
	ev_timer_stop(h->loop, &h->drop_tick);
}

void history_free(struct history *h)
{
	if (!h)
		return;
	ev_timer_stop(h->loop, &h->tick);
	ev_timer_stop(h->loop, &h->drop_tick);
	free(h);
}

void history_metrics(const struct history *h, struct metrics_out *o)
{
	if (!h)
		return;
	metrics_family(o, "pushgate_history_ids_ahead", METRICS_GAUGE,
		       "recipient ids left in the history ranges made ahead, as this node last saw them (-1: not yet)");
	metrics_double(o, "pushgate_history_ids_ahead", NULL, (double)h->ahead);
	metrics_family(o, "pushgate_history_ranges_dropped_total", METRICS_COUNTER,
		       "history ranges this node dropped under [retention] history_days");
	metrics_double(o, "pushgate_history_ranges_dropped_total", NULL, (double)h->dropped);
	metrics_family(o, "pushgate_history_retention_failures_total", METRICS_COUNTER,
		       "retention checks that failed or found the history's tables busy (tried again a minute later)");
	metrics_double(o, "pushgate_history_retention_failures_total", NULL, (double)h->drop_failures);
}
