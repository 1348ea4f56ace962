/*
 * rollup.c: runs the report rollup job (report_rollup(),
 * sql/functions/report_rollup.sql) every [reports] rollup_interval
 * seconds: it adds the events written since its watermark to the counters
 * that reports and the console read (sql/026).  While the job says it is
 * behind (a database with history, or a node that was down) the next step
 * follows at once.  A run that finds another node's under way returns at
 * once; a reason the job cannot move (the role cannot see open
 * transactions) is logged when it starts and when it ends.  On the slow
 * store: the API's requests never wait behind it.  Owns its job (a
 * periodic: one in flight) and the figures for /metrics; never blocks.
 */
#include "rollup.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"
#include "periodic.h"
#include "util.h"

#define ROLLUP_AGAIN 0.05   /* seconds to the next step while behind */

static const struct store_stmt stmt_rollup = {
	"report_rollup",
	"SELECT extract(epoch FROM watermark), events, behind, blocked, busy FROM report_rollup('" ROLLUP_STEP "')",
	0, 0,
};

struct rollup {
	struct periodic     run;
	double              interval;
	char                blocked[160];   /* the last reason logged ("" when moving) */
	double              watermark;      /* epoch seconds (0: none seen) */
	unsigned long long  events;
};

static void rollup_done(void *arg, const PGresult *res, enum store_error err, const char *msg)
{
	struct rollup *r = arg;
	int behind = 0;
	if (err == STORE_SQL_ERROR)
		log_error("rollup", "ev=rollup_failed err=\"%s\"", msg);
	if (err == STORE_OK && PQntuples(res) == 1 && PQnfields(res) == 5) {
		const char *blocked = PQgetisnull(res, 0, 3) ? "" : PQgetvalue(res, 0, 3);
		int busy = PQgetvalue(res, 0, 4)[0] == 't';
		if (!PQgetisnull(res, 0, 0))
			r->watermark = strtod(PQgetvalue(res, 0, 0), NULL);
		r->events += strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		behind = PQgetvalue(res, 0, 2)[0] == 't';
		/* another node's run under way is no news */
		if (!busy && strcmp(blocked, r->blocked) != 0) {
			if (blocked[0])
				log_error("rollup", "ev=rollup_blocked why=\"%s\"", blocked);
			else
				log_info("rollup", "ev=rollup_moving");
			util_strlcpy(r->blocked, blocked, sizeof(r->blocked));
		}
	}
	periodic_again(&r->run, behind ? ROLLUP_AGAIN : r->interval);   /* the interval from this run's end */
}

struct rollup *rollup_new(struct ev_loop *loop, struct store *store, double interval)
{
	if (interval <= 0)
		return NULL;
	struct rollup *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->interval = interval;
	periodic_init(&r->run, loop, store, &stmt_rollup, NULL, rollup_done, r);
	return r;
}

void rollup_start(struct rollup *r)
{
	if (r)
		periodic_start(&r->run, 1.0, r->interval);
}

void rollup_stop(struct rollup *r)
{
	if (r)
		periodic_stop(&r->run);
}

void rollup_free(struct rollup *r)
{
	if (!r)
		return;
	rollup_stop(r);
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
