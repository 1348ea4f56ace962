/*
 * history.c: the history's recipient id ranges (sql/029) and message id
 * ranges (sql/036) on pushgated's loop, jobs on the slow store:
 *  - made ahead: every HISTORY_INTERVAL seconds it calls history_ensure()
 *    (sql/functions/history_ensure.sql), which adds the next range (a
 *    partition of each history table: recipients, sms_parts, events,
 *    webhook_outbox, smpp_outbox) while fewer ids than a whole range are
 *    left, and message_ensure(), the same for messages.  A row whose recipient id no range holds could
 *    not be written at all, so the margin is a range (about a day of
 *    traffic, at least HISTORY_RANGE_MIN_SQL ids) and the check runs often:
 *    the bulk path's 25,000 recipients a second use a quarter of the
 *    smallest range between two checks.
 *  - retention, per class of table (sql/032): every [retention]
 *    check_interval seconds (0: never; also never when export_dir asks for
 *    an export first, which pushgatectl retention run does) it calls
 *    history_retention_drop() (sql/functions/history_retention_drop.sql),
 *    which drops the oldest range older than [retention] history_days with
 *    nothing in flight, whole partitions, its locks taken only when free at
 *    once; when outbox_days is shorter, a second job empties the outbox
 *    partitions (webhook_outbox, smpp_outbox) of the oldest range older than
 *    that the same way; a third drops the oldest message range no kept
 *    recipient or idempotency key names (message_retention()).  After a
 *    success each asks again at once, so old
 *    ranges go one at a time; a lock not granted is tried again after a
 *    minute (HISTORY_RETRY, or the interval if shorter).
 *  - the rows outside the ranges (no recipient id: a carrier's MO and its
 *    deliveries to ESMEs and webhooks; idempotency keys), at the same
 *    interval: history_trim() deletes those older than the limits (MO and
 *    keys history_days, delivered deliveries outbox_days), HISTORY_TRIM_BATCH rows of each table a call,
 *    and calls again at once while a call took a whole batch.
 * Logs each range made, dropped and emptied, each trim and each failure.  Owns its
 * jobs (periodics: each one in flight at most) and the figures for
 * /metrics; never blocks.
 */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"
#include "periodic.h"

#define HISTORY_INTERVAL  10.0        /* seconds between checks of the ranges ahead */
#define HISTORY_RETRY     60.0        /* at most this many seconds before a try that was busy or failed comes again */
#define HISTORY_TRIM_BATCH 5000       /* rows of each table deleted by one call of history_trim() */

static const struct store_stmt stmt_ensure = {
	"history_ensure",
	"SELECT h.made + m.made, h.ahead, m.ahead FROM history_ensure(" HISTORY_RANGE_MIN_SQL ", '" HISTORY_RANGE_SPAN_SQL "') h,"
	" message_ensure(" HISTORY_RANGE_MIN_SQL ", '" HISTORY_RANGE_SPAN_SQL "') m",
	0, 0,
};

/* $1 days kept, $2 class.  Row (when a range was judged): lo, suffix, newest, action. */
static const struct store_stmt stmt_drop = {
	"history_retention_drop",
	"SELECT lo, suffix, newest, action FROM history_retention_drop(make_interval(secs => $1::float8 * 86400), $2)",
	2, 0,
};

/* $1 days MO and keys kept, $2 days delivered deliveries kept, $3 rows a table.  Rows: table, rows deleted. */
static const struct store_stmt stmt_trim = {
	"history_trim",
	"SELECT tbl, deleted FROM history_trim(make_interval(secs => $1::float8 * 86400),"
	" make_interval(secs => $2::float8 * 86400), $3::int)",
	3, 0,
};

/* One retention class's job: a range (history) or its outboxes (outbox) at a time. */
struct retire {
	struct periodic  job;
	struct history  *h;
	const char      *class;    /* history_tables.class */
	const char      *success;  /* the action history_range_drop() answers when done */
	const char      *event;    /* logged then */
	double           keep_days;
	char             p_days[32];
	const char      *params[2];
	int              on;
	unsigned long long done;
};

struct history {
	struct periodic  ensure;
	struct retire    drop, clear;   /* class history: ranges dropped; outbox: their outboxes emptied */
	struct retire    msgs;          /* class messages: message ranges dropped */
	struct periodic  trim;          /* rows outside the ranges deleted */
	char             trim_days[2][32];
	char             trim_batch[16];
	const char      *trim_params[3];
	unsigned long long trimmed;
	double           drop_interval; /* 0: pushgated retires nothing */
	long long        ahead;         /* ids left in the ranges made (-1: not seen yet) */
	long long        msg_ahead;     /* message ids left in the message ranges made (-1: not seen yet) */
	unsigned long long drop_failures;
};

static void ensure_done(void *arg, const PGresult *res, enum store_error err, const char *msg)
{
	struct history *h = arg;
	if (err == STORE_SQL_ERROR)
		log_error("history", "ev=history_ensure_failed err=\"%s\"", msg);
	if (err == STORE_OK && PQntuples(res) == 1 && PQnfields(res) == 3) {
		int made = atoi(PQgetvalue(res, 0, 0));
		h->ahead = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		h->msg_ahead = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		if (made > 0)
			log_info("history", "ev=history_range_made ranges=%d ahead=%lld message_ids_ahead=%lld", made, h->ahead,
				 h->msg_ahead);
	}
}

/* A try that was busy or failed comes again after a minute, or the interval when shorter. */
static double retry_after(const struct history *h)
{
	return h->drop_interval < HISTORY_RETRY ? h->drop_interval : HISTORY_RETRY;
}

static void retire_done(void *arg, const PGresult *res, enum store_error err, const char *msg)
{
	struct retire *r = arg;
	struct history *h = r->h;
	if (err != STORE_OK) {
		h->drop_failures++;
		if (err == STORE_SQL_ERROR)
			log_error("history", "ev=history_retention_failed class=%s err=\"%s\"", r->class, msg);
		periodic_again(&r->job, retry_after(h));
		return;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 4)
		return;   /* nothing old enough: the next check at the interval */
	const char *suffix = PQgetvalue(res, 0, 1), *newest = PQgetvalue(res, 0, 2), *action = PQgetvalue(res, 0, 3);
	if (strcmp(action, r->success) == 0) {
		r->done++;
		log_info("history", "ev=%s range=%s newest=\"%s\" keep_days=%g", r->event, suffix, newest, r->keep_days);
		periodic_again(&r->job, 0.0);   /* the next old one, if any */
	} else if (strcmp(action, "busy") == 0) {
		h->drop_failures++;
		log_info("history", "ev=history_retention_busy class=%s range=%s retry_s=%g", r->class, suffix,
			 retry_after(h));
		periodic_again(&r->job, retry_after(h));
	}
	/* otherwise it changed its mind under the lock (a recipient came back in flight): the interval */
}

static void trim_done(void *arg, const PGresult *res, enum store_error err, const char *msg)
{
	struct history *h = arg;
	if (err != STORE_OK) {
		h->drop_failures++;
		if (err == STORE_SQL_ERROR)
			log_error("history", "ev=history_trim_failed err=\"%s\"", msg);
		periodic_again(&h->trim, retry_after(h));
		return;
	}
	int full = 0;
	for (int i = 0; PQnfields(res) == 2 && i < PQntuples(res); i++) {
		long long n = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		if (n <= 0)
			continue;
		h->trimmed += (unsigned long long)n;
		full |= n >= HISTORY_TRIM_BATCH;
		log_info("history", "ev=history_trimmed table=%s rows=%lld", PQgetvalue(res, i, 0), n);
	}
	if (full)
		periodic_again(&h->trim, 0.0);   /* more of them: the next batch */
}

static void retire_init(struct retire *r, struct history *h, struct ev_loop *loop, struct store *store,
			const char *class, const char *success, const char *event, double keep_days, int on)
{
	*r = (struct retire){ .h = h, .class = class, .success = success, .event = event, .keep_days = keep_days,
			      .on = on };
	snprintf(r->p_days, sizeof(r->p_days), "%.17g", keep_days);
	r->params[0] = r->p_days;
	r->params[1] = class;
	periodic_init(&r->job, loop, store, &stmt_drop, r->params, retire_done, r);
}

struct history *history_new(struct ev_loop *loop, struct store *store, const struct history_config *c)
{
	struct history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ahead = -1;
	h->msg_ahead = -1;
	h->drop_interval = c->export_first ? 0 : c->drop_interval;
	periodic_init(&h->ensure, loop, store, &stmt_ensure, NULL, ensure_done, h);
	retire_init(&h->drop, h, loop, store, "history", "dropped", "history_range_dropped", c->keep_days, 1);
	/* outboxes kept as long as their range or longer go with it: no job of their own */
	retire_init(&h->clear, h, loop, store, "outbox", "cleared", "history_outboxes_cleared", c->outbox_days,
		    c->outbox_days < c->keep_days);
	retire_init(&h->msgs, h, loop, store, "messages", "dropped", "history_messages_dropped", c->keep_days, 1);
	for (int i = 0; i < 2; i++) {
		snprintf(h->trim_days[i], sizeof(h->trim_days[i]), "%.17g", i == 0 ? c->keep_days : c->outbox_days);
		h->trim_params[i] = h->trim_days[i];
	}
	snprintf(h->trim_batch, sizeof(h->trim_batch), "%d", HISTORY_TRIM_BATCH);
	h->trim_params[2] = h->trim_batch;
	periodic_init(&h->trim, loop, store, &stmt_trim, h->trim_params, trim_done, h);
	if (c->drop_interval > 0 && c->export_first)
		log_info("history", "ev=history_retention_manual why=\"[retention] export_dir is set: pushgatectl retention "
			 "run --export drops the old ranges\"");
	return h;
}

/* The first retention check a minute after start (the ranges ahead come first), then every interval. */
static void retire_start(struct retire *r)
{
	double every = r->h->drop_interval;
	if (r->on && every > 0)
		periodic_start(&r->job, every < 60 ? every : 60, every);
}

void history_start(struct history *h)
{
	if (!h)
		return;
	periodic_start(&h->ensure, 0.5, HISTORY_INTERVAL);
	retire_start(&h->drop);
	retire_start(&h->clear);
	retire_start(&h->msgs);
	if (h->drop_interval > 0)
		periodic_start(&h->trim, h->drop_interval < 60 ? h->drop_interval : 60, h->drop_interval);
}

void history_stop(struct history *h)
{
	if (!h)
		return;
	periodic_stop(&h->ensure);
	periodic_stop(&h->drop.job);
	periodic_stop(&h->clear.job);
	periodic_stop(&h->msgs.job);
	periodic_stop(&h->trim);
}

void history_free(struct history *h)
{
	if (!h)
		return;
	history_stop(h);
	free(h);
}

void history_metrics(const struct history *h, struct metrics_out *o)
{
	if (!h)
		return;
	metrics_family(o, "pushgate_history_ids_ahead", METRICS_GAUGE,
		       "recipient ids left in the history ranges made ahead, as this node last saw them (-1: not yet)");
	metrics_double(o, "pushgate_history_ids_ahead", NULL, (double)h->ahead);
	metrics_family(o, "pushgate_history_message_ids_ahead", METRICS_GAUGE,
		       "message ids left in the message ranges made ahead, as this node last saw them (-1: not yet)");
	metrics_double(o, "pushgate_history_message_ids_ahead", NULL, (double)h->msg_ahead);
	metrics_family(o, "pushgate_history_ranges_dropped_total", METRICS_COUNTER,
		       "history ranges this node dropped under [retention] history_days");
	metrics_double(o, "pushgate_history_ranges_dropped_total", NULL, (double)h->drop.done);
	metrics_family(o, "pushgate_history_message_ranges_dropped_total", METRICS_COUNTER,
		       "message ranges this node dropped once no kept recipient or idempotency key named their messages");
	metrics_double(o, "pushgate_history_message_ranges_dropped_total", NULL, (double)h->msgs.done);
	metrics_family(o, "pushgate_history_outboxes_cleared_total", METRICS_COUNTER,
		       "history ranges whose outboxes this node emptied under [retention] outbox_days");
	metrics_double(o, "pushgate_history_outboxes_cleared_total", NULL, (double)h->clear.done);
	metrics_family(o, "pushgate_history_rows_trimmed_total", METRICS_COUNTER,
		       "rows outside the history ranges (MO, its deliveries, idempotency keys) this node deleted under [retention]");
	metrics_double(o, "pushgate_history_rows_trimmed_total", NULL, (double)h->trimmed);
	metrics_family(o, "pushgate_history_retention_failures_total", METRICS_COUNTER,
		       "retention checks that failed or found the history's tables busy (tried again a minute later)");
	metrics_double(o, "pushgate_history_retention_failures_total", NULL, (double)h->drop_failures);
}
