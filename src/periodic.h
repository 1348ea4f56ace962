/*
 * periodic.h: one statement run on a store every few seconds, one job at a
 * time (periodic.c): the background jobs of pushgated's loop (queue depths,
 * report rollups, history ranges).
 */
#ifndef PUSHGATE_PERIODIC_H
#define PUSHGATE_PERIODIC_H

#include <ev.h>
#include <libpq-fe.h>

#include "store.h"

/* A run's outcome, as a store job's: res holds the result (valid inside only) when err is STORE_OK. */
typedef void (*periodic_done_fn)(void *arg, const PGresult *res, enum store_error err, const char *msg);

/*
 * Embedded in its owner's struct (no allocation); the fields are
 * periodic.c's.  The owner keeps params[] and its strings valid while the
 * periodic lives.
 */
struct periodic {
	struct ev_loop          *loop;
	struct store            *store;
	const struct store_stmt *stmt;
	const char *const       *params;     /* stmt->nparams values */
	periodic_done_fn         done;
	void                    *arg;
	ev_timer                 timer;
	struct store_job         job;
	double                   every;
	int                      in_flight, stopping;
};

/* Runs stmt (with params) on store once started; done(arg, ...) hears each run's outcome. */
void periodic_init(struct periodic *p, struct ev_loop *loop, struct store *store, const struct store_stmt *stmt,
		   const char *const *params, periodic_done_fn done, void *arg);

/*
 * The first run `first` seconds from now, then one every `every` seconds
 * (0: only when periodic_again() asks).  A time that comes while the job is
 * in flight or the store is down passes without a run.
 */
void periodic_start(struct periodic *p, double first, double every);

/* The next run `after` seconds from now, then every `every` again; nothing once stopped.  From done() too. */
void periodic_again(struct periodic *p, double after);

/* No run after this (a job in flight still ends with done()); also what the owner calls before freeing. */
void periodic_stop(struct periodic *p);

#endif
