/*
 * sweep.c: the recipient transitions that time makes, not a carrier or a
 * device: every SWEEP_INTERVAL, scheduled recipients whose time came and
 * ads whose allowed hours began are released (recipient_stmt_release, decided
 * again), and the sweep (recipient_stmt_sweep) sends again the SMS whose lease
 * expired without a response, expires what outlived its validity and moves
 * to SMS the pushes no app acknowledged before their deadline; campaigns
 * whose recipients are all final become DONE (stmts_batches_done), read or
 * not.  Any node's
 * sweeper may do any of it (the statements take rows with SKIP LOCKED).
 * Owns its three jobs (one of each in flight) and the resend counters; the
 * statements are recipient.c's and stmts.c's.  Never blocks.
 */
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "metrics.h"
#include "recipient.h"
#include "stmts.h"

#define SWEEP_INTERVAL 2.0   /* seconds between looks */

struct sweeper {
	struct ev_loop      *loop;
	struct store        *store;
	const struct config *cfg;
	void               (*on_work)(void *arg);
	void                *arg;
	ev_timer             tick;
	int                  stopping;
	struct store_job     sweep_job, release_job, batches_job;
	int                  sweep_in_flight, release_in_flight, batches_in_flight;
	const char          *release_params[4];
	char                 p_start[8], p_end[8], p_push_timeout[32];
	unsigned long long   resends_restart, resends_expired;
};

static void sweep_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct sweeper *s = job->arg;
	s->sweep_in_flight = 0;
	if (err != STORE_OK) {
		if (err == STORE_SQL_ERROR)
			log_error("sweep", "ev=sweep_failed err=\"%s\"", msg);
		return;
	}
	const char *a = PQgetvalue(job->res, 0, 0), *b = PQgetvalue(job->res, 0, 1), *d = PQgetvalue(job->res, 0, 2);
	const char *p = PQgetvalue(job->res, 0, 3);
	if (strcmp(a, "0") || strcmp(b, "0") || strcmp(d, "0") || strcmp(p, "0"))
		log_info("sweep", "ev=sweep resent=%s expired=%s unknown=%s push_to_sms=%s", a, b, d, p);
	s->resends_expired += strtoull(a, NULL, 10);
	if ((strcmp(a, "0") || strcmp(p, "0")) && s->on_work)
		s->on_work(s->arg);
}

static void release_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct sweeper *s = job->arg;
	s->release_in_flight = 0;
	if (err == STORE_SQL_ERROR)
		log_error("sweep", "ev=release_failed err=\"%s\"", msg);
	if (err == STORE_OK && strcmp(PQgetvalue(job->res, 0, 0), "0") != 0) {
		log_info("sweep", "ev=released recipients=%s", PQgetvalue(job->res, 0, 0));
		if (s->on_work)
			s->on_work(s->arg);
	}
}

static void batches_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct sweeper *s = job->arg;
	s->batches_in_flight = 0;
	if (err == STORE_SQL_ERROR)
		log_error("sweep", "ev=batches_done_failed err=\"%s\"", msg);
	for (int i = 0; err == STORE_OK && i < PQntuples(job->res); i++)
		log_info("sweep", "ev=batch_done batch=%s", PQgetvalue(job->res, i, 0));
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct sweeper *s = w->data;
	if (s->stopping || !store_is_up(s->store))
		return;
	if (!s->release_in_flight) {
		s->release_in_flight = 1;
		s->release_job = (struct store_job){ .stmt = &recipient_stmt_release, .nparams = 4,
						     .params = s->release_params, .done = release_done, .arg = s };
		store_submit(s->store, &s->release_job);
	}
	if (!s->batches_in_flight) {
		s->batches_in_flight = 1;
		s->batches_job = (struct store_job){ .stmt = &stmts_batches_done, .done = batches_done, .arg = s };
		store_submit(s->store, &s->batches_job);
	}
	if (!s->sweep_in_flight) {
		s->sweep_in_flight = 1;
		s->sweep_job = (struct store_job){ .stmt = &recipient_stmt_sweep, .done = sweep_done, .arg = s };
		store_submit(s->store, &s->sweep_job);
	}
}

struct sweeper *sweep_new(struct ev_loop *loop, struct store *store, const struct config *cfg,
			void (*on_work)(void *arg), void *arg)
{
	struct sweeper *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->store = store;
	s->cfg = cfg;
	s->on_work = on_work;
	s->arg = arg;
	snprintf(s->p_start, sizeof(s->p_start), "%d", cfg->ad_start_hour);
	snprintf(s->p_end, sizeof(s->p_end), "%d", cfg->ad_end_hour);
	snprintf(s->p_push_timeout, sizeof(s->p_push_timeout), "%.3f", cfg->push_timeout);
	s->release_params[0] = s->p_start;
	s->release_params[1] = s->p_end;
	s->release_params[2] = cfg->timezone;
	s->release_params[3] = s->p_push_timeout;
	ev_timer_init(&s->tick, tick_cb, SWEEP_INTERVAL, SWEEP_INTERVAL);
	s->tick.data = s;
	return s;
}

void sweep_start(struct sweeper *s)
{
	ev_timer_start(s->loop, &s->tick);
}

void sweep_stop(struct sweeper *s)
{
	if (!s)
		return;
	s->stopping = 1;
	ev_timer_stop(s->loop, &s->tick);
}

void sweep_free(struct sweeper *s)
{
	if (!s)
		return;
	ev_timer_stop(s->loop, &s->tick);
	free(s);
}

void sweep_count_resends(struct sweeper *s, unsigned long long n)
{
	s->resends_restart += n;
}

void sweep_metrics(const struct sweeper *s, struct metrics_out *o)
{
	if (!s)
		return;
	metrics_family(o, "pushgate_sms_resends_total", METRICS_COUNTER,
		       "SMS queued again without a recorded submit_sm_resp: their node restarted, or their lease expired");
	const char *restart[] = { "cause", "restart", NULL }, *expired[] = { "cause", "lease_expired", NULL };
	metrics_u64(o, "pushgate_sms_resends_total", restart, s->resends_restart);
	metrics_u64(o, "pushgate_sms_resends_total", expired, s->resends_expired);
}
