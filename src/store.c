/*
 * store.c: one PostgreSQL connection on the event loop (pushgated opens
 * several, one per kind of work: docs/architecture.md lists them).
 *
 * Owns the PGconn, its libev watchers, the queue of waiting jobs and the
 * round in flight (a round: the jobs of one pipeline and one transaction,
 * at most [database] batch_max).  All waiting jobs go out in one pipeline (prepared
 * statements, prepared lazily once per connection) closed by one Sync: the
 * implicit transaction commits them together, so a thousand HTTP requests
 * cost one commit.  done() runs only after the Sync came back (commit
 * durable).  When a statement fails, only its job fails: the others of the
 * round are queued again in order.  When the connection breaks, or the
 * server says it is out of disk or memory (then the connection is dropped
 * too), jobs with retry=1 wait for the reconnect, the rest fail with
 * STORE_UNAVAILABLE (HTTP answers 503).  Never blocks: every libpq call
 * here is nonblocking.
 */
#include "store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum st_state { ST_DOWN, ST_CONNECTING, ST_READY, ST_BUSY };
static const char *const st_names[] = { "down", "connecting", "ready", "busy" };

enum op_kind { OP_PREPARE, OP_EXEC };

struct op {
	enum op_kind             kind;
	const struct store_stmt *stmt;
	struct store_job        *job;    /* OP_EXEC */
	PGresult                *res;
	int                      failed;
	int                      aborted;   /* not run: an earlier statement of the pipeline failed */
};

#define MAX_PREPARED 64

struct store {
	struct ev_loop *loop;
	char           *conninfo;
	size_t          round_max;
	double          reconnect_interval;
	double          round_timeout;
	int             plan_per_call;     /* store_config's */
	double          backoff;

	enum st_state   state;
	PGconn         *conn;
	ev_io           io;
	int             io_fd;
	int             io_events;
	ev_timer        retry_timer;
	ev_timer        round_timer;

	struct store_job *head, *tail;     /* waiting */
	size_t          n_waiting;

	struct op      *ops;               /* round in flight */
	size_t          n_ops, cap_ops, cur_op;
	int             round_failed;      /* a statement failed: the rest is aborted */
	int             flushing;
	int             completing;        /* inside round_complete: no new round yet */
	int             closing;           /* store_free running: submit fails at once */

	const struct store_stmt *prepared[MAX_PREPARED];
	size_t          n_prepared;

	void          (*on_up)(void *arg);
	void           *on_up_arg;
	struct {
		void  (*fn)(void *arg, const char *channel, const char *payload);
		void   *arg;
	} on_notify[4];                    /* every owner that listens on this connection */
	size_t          n_on_notify;
	struct store_job setup_job;        /* first statement of every connection */
};

/*
 * Session settings sent first on every connection.  JIT compiles plans
 * whose estimated cost is high (a lease over a big queue): hundreds of
 * milliseconds spent on statements that run in a few: never worth it here.
 * Plans: every statement is prepared once per connection and planned once
 * (its generic plan), statements inside trigger functions too.  Left to
 * itself the plan cache re-plans a statement on every execution as long as
 * it guesses a custom plan cheaper (the intake: 0.85 ms of planning for
 * 0.3 ms of work), and which plan a connection ends up with depends on the
 * traffic it saw first.  Every hot statement is written so that its generic
 * plan finds rows by key (`pushgatectl plan NAME` shows it; t_plans counts
 * plans against calls).
 */
static const struct store_stmt stmt_setup = {
	"setup", "SELECT set_config('jit', 'off', false), set_config('plan_cache_mode', 'force_generic_plan', false)",
	0, 1,
};

/*
 * A store for rare reads over skewed data (reports, the console, searches:
 * how many rows an account or a number has is data) plans each statement for
 * its values instead: a generic plan cannot know whose rows it reads.
 */
static const struct store_stmt stmt_setup_per_call = {
	"setup", "SELECT set_config('jit', 'off', false), set_config('plan_cache_mode', 'force_custom_plan', false)",
	0, 1,
};

static void setup_done(struct store_job *job, enum store_error e, const char *err)
{
	(void)job;
	if (e == STORE_SQL_ERROR)
		log_warn("store", "ev=setup_failed err=\"%s\"", err ? err : "");
}

/* Hands every notification libpq has read to the owner. */
static void st_notifies(struct store *st)
{
	PGnotify *n;
	while (st->conn && (n = PQnotifies(st->conn))) {
		for (size_t i = 0; i < st->n_on_notify; i++)
			st->on_notify[i].fn(st->on_notify[i].arg, n->relname, n->extra);
		PQfreemem(n);
	}
}

static void st_enter(struct store *st, enum st_state next);
static void st_kick(struct store *st);
static void st_broken(struct store *st, const char *why);

/* --- watchers ------------------------------------------------------------ */

static void st_watch(struct store *st, int events)
{
	int fd = st->conn ? PQsocket(st->conn) : -1;
	if (fd == st->io_fd && events == st->io_events && ev_is_active(&st->io))
		return;
	ev_io_stop(st->loop, &st->io);
	st->io_fd = fd;
	st->io_events = events;
	if (fd >= 0 && events) {
		ev_io_set(&st->io, fd, events);
		ev_io_start(st->loop, &st->io);
	}
}

static void st_enter(struct store *st, enum st_state next)
{
	if (st->state != next)
		log_debug("store", "ev=state from=%s to=%s", st_names[st->state], st_names[next]);
	st->state = next;
}

/* --- job queue ----------------------------------------------------------- */

static void queue_push_back(struct store *st, struct store_job *job)
{
	job->next = NULL;
	if (st->tail)
		st->tail->next = job;
	else
		st->head = job;
	st->tail = job;
	st->n_waiting++;
}

/* Puts a chain (in order) back at the front of the queue. */
static void queue_push_front_chain(struct store *st, struct store_job *first, struct store_job *last, size_t n)
{
	if (!first)
		return;
	last->next = st->head;
	st->head = first;
	if (!st->tail)
		st->tail = last;
	st->n_waiting += n;
}

static struct store_job *queue_pop(struct store *st)
{
	struct store_job *job = st->head;
	if (job) {
		st->head = job->next;
		if (!st->head)
			st->tail = NULL;
		job->next = NULL;
		st->n_waiting--;
	}
	return job;
}

static void job_finish(struct store_job *job, enum store_error e, const char *err)
{
	job->done(job, e, err);
}

/* Fails every waiting job that may not wait for a reconnect. */
static void queue_fail_nonretry(struct store *st)
{
	struct store_job *keep_head = NULL, *keep_tail = NULL, *fail = NULL, *fail_tail = NULL;
	size_t kept = 0;
	while (st->head) {
		struct store_job *job = queue_pop(st);
		if (job->retry) {
			if (keep_tail)
				keep_tail->next = job;
			else
				keep_head = job;
			keep_tail = job;
			kept++;
		} else {
			if (fail_tail)
				fail_tail->next = job;
			else
				fail = job;
			fail_tail = job;
		}
	}
	queue_push_front_chain(st, keep_head, keep_tail, kept);
	while (fail) {
		struct store_job *next = fail->next;
		job_finish(fail, STORE_UNAVAILABLE, "database unavailable");
		fail = next;
	}
}

/* --- connection ------------------------------------------------------------ */

static void st_schedule_reconnect(struct store *st)
{
	st_enter(st, ST_DOWN);
	ev_timer_stop(st->loop, &st->retry_timer);
	ev_timer_set(&st->retry_timer, st->backoff, 0.);
	ev_timer_start(st->loop, &st->retry_timer);
	st->backoff *= 2;
	if (st->backoff > st->reconnect_interval * 10)
		st->backoff = st->reconnect_interval * 10;
}

static void st_connect(struct store *st)
{
	st->conn = PQconnectStart(st->conninfo);
	if (!st->conn || PQstatus(st->conn) == CONNECTION_BAD) {
		log_warn("store", "ev=connect_failed err=\"%s\"",
			 st->conn ? PQerrorMessage(st->conn) : "out of memory");
		if (st->conn)
			PQfinish(st->conn);
		st->conn = NULL;
		st_schedule_reconnect(st);
		return;
	}
	st_enter(st, ST_CONNECTING);
	st_watch(st, EV_WRITE);
}

static void st_connected(struct store *st)
{
	if (PQsetnonblocking(st->conn, 1) != 0 || PQenterPipelineMode(st->conn) != 1) {
		st_broken(st, "cannot enter pipeline mode");
		return;
	}
	st->n_prepared = 0;
	st->backoff = st->reconnect_interval;
	st->setup_job = (struct store_job){ .stmt = st->plan_per_call ? &stmt_setup_per_call : &stmt_setup,
					    .done = setup_done, .arg = st, .retry = 0 };
	st->setup_job.next = NULL;
	queue_push_front_chain(st, &st->setup_job, &st->setup_job, 1);
	st_enter(st, ST_READY);
	st_watch(st, EV_READ);
	log_info("store", "ev=connected server_version=%d", PQserverVersion(st->conn));
	if (st->on_up)
		st->on_up(st->on_up_arg);
	st_kick(st);
}

static void st_poll_connect(struct store *st)
{
	PostgresPollingStatusType polled = PQconnectPoll(st->conn);
	/*
	 * PQconnectPoll may have closed its socket and opened another (the next
	 * host of a multi-host conninfo, one refused or read-only; the next
	 * address of a name; SSL refused).  The new socket usually gets the old
	 * number, and epoll never reports a new socket that libev was not told
	 * about (ev_io_set): the store stayed connecting for ever.  Re-arm.
	 */
	st->io_fd = -1;
	switch (polled) {
	case PGRES_POLLING_READING:
		st_watch(st, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		st_watch(st, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		st_connected(st);
		break;
	default: {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(st->conn));
		msg[strcspn(msg, "\n")] = '\0';
		log_warn("store", "ev=connect_failed err=\"%s\" retry_in=%.1f", msg, st->backoff);
		st_watch(st, 0);
		PQfinish(st->conn);
		st->conn = NULL;
		st_schedule_reconnect(st);
		break;
	}
	}
}

/* The round in flight ends: results cleared, jobs not yet finished handled by the caller. */
static void round_clear(struct store *st)
{
	for (size_t i = 0; i < st->n_ops; i++)
		if (st->ops[i].res)
			PQclear(st->ops[i].res);
	st->n_ops = st->cur_op = 0;
	st->round_failed = 0;
	st->flushing = 0;
	ev_timer_stop(st->loop, &st->round_timer);
}

/* A round's jobs whose commit did not happen: the retry jobs chained in order (rh..rt, nr), the others in fail. */
struct job_split {
	struct store_job *rh, *rt, *fail, *ft;
	size_t            nr;
};

static void split_jobs(struct op *ops, size_t n_ops, struct job_split *sp)
{
	memset(sp, 0, sizeof(*sp));
	for (size_t i = 0; i < n_ops; i++) {
		struct store_job *job = ops[i].kind == OP_EXEC ? ops[i].job : NULL;
		if (!job)
			continue;
		job->next = NULL;
		if (job->retry) {
			if (sp->rt) sp->rt->next = job; else sp->rh = job;
			sp->rt = job;
			sp->nr++;
		} else {
			if (sp->ft) sp->ft->next = job; else sp->fail = job;
			sp->ft = job;
		}
	}
}

static void st_broken(struct store *st, const char *why)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "%s", st->conn ? PQerrorMessage(st->conn) : "");
	msg[strcspn(msg, "\n")] = '\0';
	log_warn("store", "ev=connection_lost why=\"%s\" err=\"%s\" in_flight=%zu waiting=%zu",
		 why, msg, st->n_ops, st->n_waiting);
	st_watch(st, 0);
	if (st->conn)
		PQfinish(st->conn);
	st->conn = NULL;

	/* Jobs in flight: commit unknown.  Retry jobs go back first, in order. */
	struct job_split sp;
	split_jobs(st->ops, st->n_ops, &sp);
	struct store_job *fail = sp.fail;
	round_clear(st);
	queue_push_front_chain(st, sp.rh, sp.rt, sp.nr);
	st->backoff = st->reconnect_interval;
	st_schedule_reconnect(st);
	while (fail) {
		struct store_job *next = fail->next;
		job_finish(fail, STORE_UNAVAILABLE, "database connection lost");
		fail = next;
	}
	queue_fail_nonretry(st);
}

/* --- rounds --------------------------------------------------------------- */

static int is_prepared(struct store *st, const struct store_stmt *stmt)
{
	for (size_t i = 0; i < st->n_prepared; i++)
		if (st->prepared[i] == stmt)
			return 1;
	return 0;
}

static void forget_prepared(struct store *st, const struct store_stmt *stmt)
{
	for (size_t i = 0; i < st->n_prepared; i++)
		if (st->prepared[i] == stmt) {
			st->prepared[i] = st->prepared[--st->n_prepared];
			return;
		}
}

static int ops_reserve(struct store *st, size_t n)
{
	if (n <= st->cap_ops)
		return 0;
	size_t cap = st->cap_ops ? st->cap_ops : 64;
	while (cap < n)
		cap *= 2;
	struct op *ops = realloc(st->ops, cap * sizeof(*ops));
	if (!ops)
		return -1;
	st->ops = ops;
	st->cap_ops = cap;
	return 0;
}

static void st_flush(struct store *st)
{
	int rc = PQflush(st->conn);
	if (rc < 0) {
		st_broken(st, "flush failed");
		return;
	}
	st->flushing = rc == 1;
	st_watch(st, rc == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void st_kick(struct store *st)
{
	if (st->state != ST_READY || !st->head || st->completing)
		return;
	size_t n = st->n_waiting < st->round_max ? st->n_waiting : st->round_max;
	if (ops_reserve(st, 2 * n) < 0)
		return;   /* try again on the next event */
	st->n_ops = st->cur_op = 0;
	st->round_failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_job *job = queue_pop(st);
		const struct store_stmt *stmt = job->stmt;
		if (stmt->unprepared) {
			st->ops[st->n_ops++] = (struct op){ OP_EXEC, stmt, job, NULL, 0, 0 };
			if (!PQsendQueryParams(st->conn, stmt->sql, job->nparams, NULL, job->params, NULL, NULL, 0))
				goto send_failed;
			continue;
		}
		if (!is_prepared(st, stmt)) {
			if (st->n_prepared < MAX_PREPARED)
				st->prepared[st->n_prepared++] = stmt;
			st->ops[st->n_ops++] = (struct op){ OP_PREPARE, stmt, NULL, NULL, 0, 0 };
			if (!PQsendPrepare(st->conn, stmt->name, stmt->sql, stmt->nparams, NULL))
				goto send_failed;
		}
		st->ops[st->n_ops++] = (struct op){ OP_EXEC, stmt, job, NULL, 0, 0 };
		if (!PQsendQueryPrepared(st->conn, stmt->name, job->nparams, job->params, NULL, NULL, 0))
			goto send_failed;
	}
	if (!PQpipelineSync(st->conn))
		goto send_failed;
	st_enter(st, ST_BUSY);
	ev_timer_set(&st->round_timer, st->round_timeout, 0.);
	ev_timer_start(st->loop, &st->round_timer);
	st_flush(st);
	return;
send_failed:
	st_broken(st, "send failed");
}

/*
 * SQLSTATE classes that say nothing about the statement and everything
 * about the server: 53 (disk full, out of memory, too many connections), 58
 * (I/O error), 57P (shutting down, cannot connect now).
 */
static int sqlstate_is_resource(const char *state)
{
	return !strncmp(state, "53", 2) || !strncmp(state, "58", 2) || !strncmp(state, "57P", 3);
}

/*
 * A round failed because the server can't take writes (disk full...): like
 * a lost connection, not like a bad statement.  The connection is dropped
 * and reconnected with backoff; retry jobs wait for it (a carrier's response
 * is not thrown away because the disk filled), the others fail with
 * STORE_UNAVAILABLE (HTTP answers 503 + Retry-After) until space returns.
 */
static void round_out_of_resources(struct store *st, struct op *ops, size_t n_ops)
{
	struct job_split sp;
	split_jobs(ops, n_ops, &sp);
	struct store_job *fail = sp.fail;
	for (size_t i = 0; i < n_ops; i++) {
		if (ops[i].res) {
			PQclear(ops[i].res);
			ops[i].res = NULL;
		}
		if (ops[i].kind == OP_EXEC && ops[i].job)
			ops[i].job->res = NULL;
	}
	queue_push_front_chain(st, sp.rh, sp.rt, sp.nr);
	st->completing = 0;
	st_broken(st, "the server is out of resources");
	while (fail) {
		struct store_job *next = fail->next;
		job_finish(fail, STORE_UNAVAILABLE, "database unavailable");
		fail = next;
	}
}

/* The Sync came back: the transaction is over. */
static void round_complete(struct store *st)
{
	size_t n_ops = st->n_ops;
	int failed = st->round_failed;
	struct op *ops = st->ops;
	struct store_job *rh = NULL, *rt = NULL;
	size_t nr = 0;
	struct store_job *bad = NULL;
	int transient = 0;   /* the failure was a deadlock or serialization conflict */
	int resource = 0;    /* the server is out of disk, memory or connections, or going away */
	char err[512] = "";

	ev_timer_stop(st->loop, &st->round_timer);
	/* Detach the round first: done() callbacks may submit new jobs. */
	st->n_ops = st->cur_op = 0;
	st->round_failed = 0;
	st_enter(st, ST_READY);
	st->completing = 1;

	for (size_t i = 0; i < n_ops; i++) {
		struct op *op = &ops[i];
		if (op->kind == OP_PREPARE) {
			if (op->aborted && !op->failed)
				forget_prepared(st, op->stmt);   /* never reached the server: prepared again next time */
			if (op->failed) {
				forget_prepared(st, op->stmt);
				if (!bad && i + 1 < n_ops && ops[i + 1].kind == OP_EXEC) {
					bad = ops[i + 1].job;
					snprintf(err, sizeof(err), "prepare %s: %s", op->stmt->name,
						 op->res ? PQresultErrorMessage(op->res) : "failed");
				}
			}
			continue;
		}
		if (failed) {
			if (op->failed && !bad) {
				bad = op->job;
				snprintf(err, sizeof(err), "%s", op->res ? PQresultErrorMessage(op->res) : "failed");
				const char *state = op->res ? PQresultErrorField(op->res, PG_DIAG_SQLSTATE) : NULL;
				transient = state && (!strcmp(state, "40001") || !strcmp(state, "40P01"));
				resource = state && sqlstate_is_resource(state);
			} else if (op->job != bad) {
				op->job->next = NULL;
				if (rt) rt->next = op->job; else rh = op->job;
				rt = op->job;
				nr++;
			}
		}
	}
	if (!failed) {
		for (size_t i = 0; i < n_ops; i++) {
			if (ops[i].kind != OP_EXEC)
				continue;
			ops[i].job->res = ops[i].res;
			job_finish(ops[i].job, STORE_OK, NULL);
			ops[i].job = NULL;
		}
	} else {
		err[strcspn(err, "\n")] = '\0';
		log_warn("store", "ev=statement_failed stmt=%s err=\"%s\" requeued=%zu",
			 bad && bad->stmt ? bad->stmt->name : "?", err, nr);
		if (bad && resource) {
			round_out_of_resources(st, ops, n_ops);
			return;
		}
		if (bad && transient && bad->retry) {
			/* a deadlock or serialization conflict says nothing about the job: the whole round runs again, in order */
			rh = rt = NULL;
			nr = 0;
			for (size_t i = 0; i < n_ops; i++) {
				struct store_job *job = ops[i].kind == OP_EXEC ? ops[i].job : NULL;
				if (!job)
					continue;
				job->next = NULL;
				if (rt) rt->next = job; else rh = job;
				rt = job;
				nr++;
			}
			bad = NULL;
		}
		queue_push_front_chain(st, rh, rt, nr);
		if (bad) {
			bad->res = NULL;
			job_finish(bad, STORE_SQL_ERROR, err);
		}
	}
	for (size_t i = 0; i < n_ops; i++)
		if (ops[i].res) {
			PQclear(ops[i].res);
			ops[i].res = NULL;
		}
	st->completing = 0;
	st_kick(st);
}

static void st_read_results(struct store *st)
{
	if (!PQconsumeInput(st->conn)) {
		st_broken(st, "read failed");
		return;
	}
	st_notifies(st);
	while (st->state == ST_BUSY && !PQisBusy(st->conn)) {
		PGresult *res = PQgetResult(st->conn);
		if (st->cur_op >= st->n_ops) {
			/* all statements answered: what follows is the Sync */
			if (!res)
				continue;
			ExecStatusType s = PQresultStatus(res);
			PQclear(res);
			if (s == PGRES_PIPELINE_SYNC) {
				/* a notification read with the results (a NOTIFY of this very round arrives just
				 * before its Sync) is parsed only now: handed over, or it waits for other traffic */
				st_notifies(st);
				round_complete(st);
				return;
			}
			st_broken(st, "unexpected result after the last statement");
			return;
		}
		struct op *op = &st->ops[st->cur_op];
		if (!res) {          /* end of this statement's results */
			st->cur_op++;
			continue;
		}
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			break;
		case PGRES_PIPELINE_ABORTED:
			op->aborted = 1;
			break;
		default:
			op->failed = 1;
			st->round_failed = 1;
			break;
		}
		if (op->res)
			PQclear(op->res);
		op->res = res;
	}
	st_notifies(st);   /* parsed while the results were */
	if (st->state == ST_BUSY && st->conn && PQstatus(st->conn) == CONNECTION_BAD)
		st_broken(st, "connection bad");
}

static void st_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct store *st = w->data;
	(void)loop;
	switch (st->state) {
	case ST_CONNECTING:
		st_poll_connect(st);
		return;
	case ST_READY:
	case ST_BUSY:
		if ((revents & EV_WRITE) && st->flushing) {
			st_flush(st);
			if (!st->conn)
				return;
		}
		if (revents & EV_READ) {
			if (st->state == ST_READY) {
				/* idle: only a notice or the server going away */
				if (!PQconsumeInput(st->conn) || PQstatus(st->conn) == CONNECTION_BAD) {
					st_broken(st, "server closed the connection");
					return;
				}
				st_notifies(st);
				return;
			}
			st_read_results(st);
		}
		return;
	case ST_DOWN:
		st_watch(st, 0);
		return;
	}
}

static void st_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct store *st = w->data;
	if (st->state == ST_DOWN)
		st_connect(st);
}

static void st_round_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct store *st = w->data;
	if (st->state == ST_BUSY)
		st_broken(st, "round timed out");
}

/* --- public ---------------------------------------------------------------- */

struct store *store_new(struct ev_loop *loop, const struct store_config *cfg)
{
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->loop = loop;
	st->conninfo = strdup(cfg->conninfo);
	if (!st->conninfo) {
		free(st);
		return NULL;
	}
	st->round_max = cfg->round_max ? cfg->round_max : 500;
	st->reconnect_interval = cfg->reconnect_interval > 0 ? cfg->reconnect_interval : 1.0;
	st->round_timeout = cfg->round_timeout > 0 ? cfg->round_timeout : 30.0;
	st->plan_per_call = cfg->plan_per_call;
	st->backoff = st->reconnect_interval;
	st->state = ST_DOWN;
	st->io_fd = -1;
	ev_init(&st->io, st_io_cb);
	st->io.data = st;
	ev_init(&st->retry_timer, st_retry_cb);
	st->retry_timer.data = st;
	ev_init(&st->round_timer, st_round_timeout_cb);
	st->round_timer.data = st;
	return st;
}

void store_start(struct store *st)
{
	if (st->state == ST_DOWN && !st->conn)
		st_connect(st);
}

int store_is_up(const struct store *st)
{
	return st->state == ST_READY || st->state == ST_BUSY;
}

void store_on_up(struct store *st, void (*fn)(void *arg), void *arg)
{
	st->on_up = fn;
	st->on_up_arg = arg;
}

int store_on_notify(struct store *st, void (*fn)(void *arg, const char *channel, const char *payload), void *arg)
{
	if (st->n_on_notify == sizeof(st->on_notify) / sizeof(st->on_notify[0]))
		return -1;
	st->on_notify[st->n_on_notify].fn = fn;
	st->on_notify[st->n_on_notify].arg = arg;
	st->n_on_notify++;
	return 0;
}

size_t store_pending(const struct store *st)
{
	return st->n_waiting + st->n_ops;
}

void store_submit(struct store *st, struct store_job *job)
{
	assert(job->stmt && job->done);
	job->res = NULL;
	if (st->closing || (!store_is_up(st) && !job->retry)) {
		job_finish(job, STORE_UNAVAILABLE, "database unavailable");
		return;
	}
	queue_push_back(st, job);
	st_kick(st);
}

void store_free(struct store *st)
{
	if (!st)
		return;
	st->closing = 1;
	ev_timer_stop(st->loop, &st->retry_timer);
	ev_timer_stop(st->loop, &st->round_timer);
	st_watch(st, 0);
	ev_io_stop(st->loop, &st->io);
	for (size_t i = 0; i < st->n_ops; i++) {
		if (st->ops[i].kind == OP_EXEC && st->ops[i].job) {
			struct store_job *job = st->ops[i].job;
			st->ops[i].job = NULL;
			job_finish(job, STORE_UNAVAILABLE, "shutting down");
		}
	}
	round_clear(st);
	while (st->head)
		job_finish(queue_pop(st), STORE_UNAVAILABLE, "shutting down");
	if (st->conn)
		PQfinish(st->conn);
	free(st->ops);
	free(st->conninfo);
	free(st);
}
