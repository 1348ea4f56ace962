/*
 * history.c: keeps the history's recipient id ranges (sql/029) made ahead
 * of the ids issued: every HISTORY_INTERVAL seconds it calls
 * history_ensure() (sql/functions/history_ensure.sql), which adds the next
 * range of recipients, sms_parts and events partitions while fewer ids
 * than a whole range are left.  A row whose recipient id no range holds
 * could not be written at all, so the margin is a range (about a day of
 * traffic, at least HISTORY_RANGE_MIN_SQL ids) and the check runs often: the
 * bulk path's 25,000 recipients a second use a quarter of the smallest
 * range between two checks.  On the slow store; logs each range made and
 * each failure (a lock not granted within 2 s is tried at the next tick).
 * Owns its one job in flight and the figure for /metrics; never blocks.
 */
#include "history.h"

#include <stdlib.h>

#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"

#define HISTORY_INTERVAL  10.0        /* seconds between checks */

static const struct store_stmt stmt_ensure = {
	"history_ensure",
	"SELECT made, ahead FROM history_ensure(" HISTORY_RANGE_MIN_SQL ", '" HISTORY_RANGE_SPAN_SQL "')",
	0, 0,
};

struct history {
	struct ev_loop  *loop;
	struct store    *store;
	ev_timer         tick;
	struct store_job job;
	int              in_flight, stopping;
	long long        ahead;       /* ids left in the ranges made (-1: not seen yet) */
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

struct history *history_new(struct ev_loop *loop, struct store *store)
{
	struct history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->loop = loop;
	h->store = store;
	h->ahead = -1;
	ev_timer_init(&h->tick, tick_cb, 0.5, HISTORY_INTERVAL);
	h->tick.data = h;
	return h;
}

void history_start(struct history *h)
{
	if (h)
		ev_timer_start(h->loop, &h->tick);
}

void history_stop(struct history *h)
{
	if (!h)
		return;
	h->stopping = 1;
	ev_timer_stop(h->loop, &h->tick);
}

void history_free(struct history *h)
{
	if (!h)
		return;
	ev_timer_stop(h->loop, &h->tick);
	free(h);
}

void history_metrics(const struct history *h, struct metrics_out *o)
{
	if (!h)
		return;
	metrics_family(o, "pushgate_history_ids_ahead", METRICS_GAUGE,
		       "recipient ids left in the history ranges made ahead, as this node last saw them (-1: not yet)");
	metrics_double(o, "pushgate_history_ids_ahead", NULL, (double)h->ahead);
}
