/*
 * store.h: PostgreSQL on the event loop (libpq, nonblocking, pipeline mode).
 *
 * Callers hand in jobs: one parameterised statement each.  The store sends
 * every queued job in one pipeline and ends it with a Sync, so all jobs of a
 * round share one implicit transaction and one commit (group commit).  A
 * job's done() runs only after that commit, or with ok=0 when its statement
 * failed or the outcome is unknown.
 */
#ifndef PUSHGATE_STORE_H
#define PUSHGATE_STORE_H

#include <stddef.h>
#include <ev.h>
#include <libpq-fe.h>

struct store;
struct store_job;

/*
 * A statement, prepared once per connection under `name`; or, with
 * unprepared=1 (utility commands such as LISTEN, which can't be prepared),
 * sent as is each time.
 */
struct store_stmt {
	const char *name;
	const char *sql;
	int         nparams;
	int         unprepared;
};

enum store_error {
	STORE_OK = 0,
	STORE_UNAVAILABLE,   /* no connection, or it broke before the commit was known */
	STORE_SQL_ERROR,     /* this job's statement failed; err says why */
};

/*
 * ok: res holds the statement's result (owned by the store, cleared after
 * done returns).  Else error says why and err has the message.
 */
typedef void (*store_done_fn)(struct store_job *job, enum store_error error, const char *err);

/*
 * Embedded in the caller's own struct (no allocation in the store).  The
 * caller fills stmt, params, done, arg; params[] and the strings they point
 * to must stay valid until done() runs.
 */
struct store_job {
	const struct store_stmt *stmt;
	int                      nparams;
	const char *const       *params;
	store_done_fn            done;
	void                    *arg;
	int                      retry;   /* 1: when the connection breaks, run again later instead of failing */
	PGresult                *res;     /* valid inside done() */
	/* private */
	struct store_job        *next;
};

struct store_config {
	const char *conninfo;
	size_t      round_max;            /* jobs per pipeline/transaction */
	double      reconnect_interval;   /* seconds; doubles up to 10x */
	double      round_timeout;        /* seconds before a silent server counts as gone (default 30) */
	int         plan_per_call;        /* 1: every statement planned for its values (rare, skewed reads) */
};

struct store *store_new(struct ev_loop *loop, const struct store_config *cfg);
void store_free(struct store *st);   /* fails every pending job with STORE_UNAVAILABLE */

/* Starts connecting (and keeps reconnecting while it fails). */
void store_start(struct store *st);

/* 1 when connected and usable. */
int store_is_up(const struct store *st);

/*
 * Queues a job.  When the store is down and the job has retry=0, done() is
 * called right away with STORE_UNAVAILABLE (before store_submit returns).
 */
void store_submit(struct store *st, struct store_job *job);

/* Called once per successful (re)connection, e.g. to resume work. */
void store_on_up(struct store *st, void (*fn)(void *arg), void *arg);

/*
 * fn is called for each NOTIFY received on the connection (channel,
 * payload), with every other listener of it (at most 4; -1 beyond).
 * LISTEN is the caller's business (a job, typically from store_on_up).
 */
int store_on_notify(struct store *st, void (*fn)(void *arg, const char *channel, const char *payload), void *arg);

/* Jobs waiting + in flight (for metrics and tests). */
size_t store_pending(const struct store *st);

#endif
