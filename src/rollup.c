/*
 * rollup.c: runs the report rollup job (report_rollup(),
 * sql/functions/report_rollup.sql) every [reports] rollup_interval
 * seconds: it adds the events written since its watermark to the counters
 * that reports and the console read (sql/026).  While the job says it is
 * behind (a database with history, or a node that was down) the next step
 * follows at once.  A run that finds another node's under way returns at
 * once; a reason the job cannot move (the role cannot see open
 * transactions) is logged when it starts and when it ends.  On the slow
 * store: the API's requests never wait behind it.  Owns its one job in
 * flight and the figures for /metrics; never blocks.
 */
#include "rollup.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define ROLLUP_AGAIN 0.05   /* seconds to the next step while behind */

static const struct store_stmt stmt_rollup = {
	"report_rollup",
	"SELECT extract(epoch FROM watermark), events, behind, blocked, busy FROM report_rollup('" ROLLUP_STEP "')",
	0, 0,
};

struct rollup {
	struct ev_loop     *loop;
	struct store       *store;
	double              interval;
	ev_timer            tick;
	struct store_job    job;
	int                 in_flight, stopping;
	char                blocked[160];   /* the last reason logged ("" when moving) */
	double              watermark;      /* epoch seconds (0: none seen) */
	unsigned long long  events;
};

static void schedule(struct rollup *r, double after)
{
	ev_timer_stop(r->loop, &r->tick);
	ev_timer_set(&r->tick, after, 0.0);
	ev_timer_start(r->loop, &r->tick);
}

static void rollup_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct rollup *r = job->arg;
	int behind = 0;
	r->in_flight = 0;
	if (err == STORE_SQL_ERROR)
		log_error("rollup", "ev=rollup_failed err=\"%s\"", msg);
	if (err == STORE_OK && PQntuples(job->res) == 1 && PQnfields(job->res) == 5) {
		const char *blocked = PQgetisnull(job->res, 0, 3) ? "" : PQgetvalue(job->res, 0, 3);
		int busy = PQgetvalue(job->res, 0, 4)[0] == 't';
		if (!PQgetisnull(job->res, 0, 0))
			r->watermark = strtod(PQgetvalue(job->res, 0, 0), NULL);
		r->events += strtoull(PQgetvalue(job->res, 0, 1), NULL, 10);
		behind = PQgetvalue(job->res, 0, 2)[0] == 't';
		/* another node's run under way is no news */
		if (!busy && strcmp(blocked, r->blocked) != 0) {
			if (blocked[0])
				log_error("rollup", "ev=rollup_blocked why=\"%s\"", blocked);
			else
				log_info("rollup", "ev=rollup_moving");
			util_strlcpy(r->blocked, blocked, sizeof(r->blocked));
		}
	}
	if (!r->stopping)
		schedule(r, behind ? ROLLUP_AGAIN : r->interval);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct rollup *r = w->data;
	if (r->stopping || r->in_flight)
		return;
	if (!store_is_up(r->store)) {
		schedule(r, r->interval);
		return;
	}
	r->in_flight = 1;
	r->job = (struct store_job){ .stmt = &stmt_rollup, .done = rollup_done, .arg = r };
	store_submit(r->store, &r->job);
}

struct rollup *rollup_new(struct ev_loop *loop, struct store *store, double interval)
{
	if (interval <= 0)
		return NULL;
	struct rollup *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->loop = loop;
	r->store = store;
	r->interval = interval;
	ev_timer_init(&r->tick, tick_cb, 1.0, 0.0);
	r->tick.data = r;
	return r;
}

void rollup_start(struct rollup *r)
{
	if (r)
		ev_timer_start(r->loop, &r->tick);
}

void rollup_stop(struct rollup *r)
{
	if (!r)
		return;
	r->stopping = 1;
	ev_timer_stop(r->loop, &r->tick);
}

void rollup_free(struct rollup *r)
{
	if (!r)
		return;
	ev_timer_stop(r->loop, &r->tick);
	free(r);
}

void rollup_metrics(const struct rollup *r, struct metrics_out *o)
{
	if (!r)
		return;
	metrics_family(o, "pushgate_report_rollup_lag_seconds", METRICS_GAUGE,
		       "seconds between now and the report rollups' watermark as this node last saw it (-1: not yet)");
	metrics_double(o, "pushgate_report_rollup_lag_seconds", NULL,
		       r->watermark > 0 ? (double)time(NULL) - r->watermark : -1);
	metrics_family(o, "pushgate_report_rollup_events_total", METRICS_COUNTER,
		       "events this node added to the report rollups");
	metrics_u64(o, "pushgate_report_rollup_events_total", NULL, r->events);
}
