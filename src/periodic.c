/*
 * periodic.c: a timer on pushgated's loop that submits one statement to a
 * store, one job at a time: a time that comes while the job is still in
 * flight, or while the store is down, passes without a run (no queue of
 * runs behind a slow statement or a database outage); once stopped it
 * submits nothing.  Its owner reads each outcome and may set the next run
 * itself (periodic_again: at once while behind, later after a busy try).
 * Owns its timer and its job; never blocks, never allocates.
 */
#include "periodic.h"

static void periodic_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct periodic *p = job->arg;
	p->in_flight = 0;
	p->done(p->arg, job->res, err, msg);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct periodic *p = w->data;
	if (p->stopping || p->in_flight || !store_is_up(p->store))
		return;
	p->in_flight = 1;
	p->job = (struct store_job){ .stmt = p->stmt, .nparams = p->stmt->nparams, .params = p->params,
				     .done = periodic_done, .arg = p };
	store_submit(p->store, &p->job);
}

void periodic_init(struct periodic *p, struct ev_loop *loop, struct store *store, const struct store_stmt *stmt,
		   const char *const *params, periodic_done_fn done, void *arg)
{
	*p = (struct periodic){ .loop = loop, .store = store, .stmt = stmt, .params = params, .done = done, .arg = arg };
	ev_init(&p->timer, tick_cb);
	p->timer.data = p;
}

void periodic_start(struct periodic *p, double first, double every)
{
	p->every = every;
	periodic_again(p, first);
}

void periodic_again(struct periodic *p, double after)
{
	if (p->stopping)
		return;
	ev_timer_stop(p->loop, &p->timer);
	ev_timer_set(&p->timer, after, p->every);
	ev_timer_start(p->loop, &p->timer);
}

void periodic_stop(struct periodic *p)
{
	p->stopping = 1;
	ev_timer_stop(p->loop, &p->timer);
}
