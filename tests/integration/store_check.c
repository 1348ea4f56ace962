/*
 * store_check.c: drives src/store.c against a real PostgreSQL for
 * t_store.py (conninfo in argv[1]).  Two statements used for the first time
 * travel in one pipeline and the first fails: the second's PREPARE is
 * aborted with it, and must be prepared again when it runs next (it used to
 * be counted as prepared, and failed on that connection until a reconnect).
 * Prints one line per job outcome; exit 0 when the first failed alone and
 * the second returned its value.
 *
 * With "notify" after the conninfo: the connection LISTENs, then one
 * statement NOTIFYs it.  The notification arrives in the same read as the
 * statement's results; it must reach the owner then, not when some later
 * traffic happens to wake the connection (it used to wait in libpq's queue,
 * and a platform push waited for the next unrelated notice).  Exit 0 when
 * it arrives within 2 seconds of the statement's answer, with nothing else
 * on the connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "log.h"
#include "store.h"

static const struct store_stmt stmt_fail = { "check_fail", "SELECT 1 / $1::int", 1, 0 };
static const struct store_stmt stmt_two = { "check_two", "SELECT 2", 0, 0 };
static const char *const zero[] = { "0" };

struct outcome {
	struct store_job job;
	const char      *name;
	int              done;
	enum store_error err;
	char             value[16];
};

static struct outcome fail1 = { .name = "fail" }, two1 = { .name = "two (same pipeline)" },
		      two2 = { .name = "two (again)" };
static struct store *st;
static struct ev_loop *loop;

static void done(struct store_job *job, enum store_error e, const char *err)
{
	struct outcome *o = job->arg;
	o->done = 1;
	o->err = e;
	if (e == STORE_OK && PQntuples(job->res) == 1)
		snprintf(o->value, sizeof(o->value), "%s", PQgetvalue(job->res, 0, 0));
	printf("%s: %s %s\n", o->name, e == STORE_OK ? "ok" : e == STORE_SQL_ERROR ? "sql_error" : "unavailable",
	       e == STORE_OK ? o->value : (err ? err : ""));
	fflush(stdout);
	if (o == &two1) {   /* the same statement once more, on its own */
		two2.job = (struct store_job){ .stmt = &stmt_two, .done = done, .arg = &two2, .retry = 1 };
		store_submit(st, &two2.job);
	} else if (o == &two2) {
		ev_break(loop, EVBREAK_ALL);
	}
}

static const struct store_stmt stmt_listen = { "check_listen", "LISTEN check_chan", 0, 1 };
static const struct store_stmt stmt_notify = { "check_notify", "SELECT pg_notify('check_chan', 'hello')", 0, 0 };
static int notified, notify_answered;

static void on_notify(void *arg, const char *channel, const char *payload)
{
	(void)arg;
	printf("notified: %s %s\n", channel, payload);
	fflush(stdout);
	if (!strcmp(channel, "check_chan") && !strcmp(payload, "hello"))
		notified = 1;
	if (notify_answered)
		ev_break(loop, EVBREAK_ALL);
}

static void notify_done(struct store_job *job, enum store_error e, const char *err)
{
	(void)job;
	printf("%s: %s\n", job->stmt->name, e == STORE_OK ? "ok" : err ? err : "failed");
	fflush(stdout);
	if (job->stmt == &stmt_notify) {
		notify_answered = 1;
		if (notified)
			ev_break(loop, EVBREAK_ALL);
	}
}

static void timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w; (void)revents;
	ev_break(l, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	if (argc != 2 && !(argc == 3 && !strcmp(argv[2], "notify"))) {
		fprintf(stderr, "usage: store_check CONNINFO [notify]\n");
		return 2;
	}
	log_set_level(LOG_ERROR);
	loop = ev_default_loop(EVFLAG_AUTO);
	struct store_config sc = { argv[1], 100, 1.0, 30.0, 0 };
	st = store_new(loop, &sc);
	if (argc == 3) {
		static struct store_job listen, notify;
		store_on_notify(st, on_notify, NULL);
		listen = (struct store_job){ .stmt = &stmt_listen, .done = notify_done, .retry = 1 };
		notify = (struct store_job){ .stmt = &stmt_notify, .done = notify_done, .retry = 1 };
		store_submit(st, &listen);
		store_submit(st, &notify);
		store_start(st);
		ev_timer t;
		ev_timer_init(&t, timeout_cb, 2., 0.);   /* from the start: connecting is quick on this host */
		ev_timer_start(loop, &t);
		ev_run(loop, 0);
		store_free(st);
		printf("%s\n", notified && notify_answered ? "result: ok" : "result: FAILED");
		return notified && notify_answered ? 0 : 1;
	}
	/* queued before the connection is up: they leave together in its first pipeline */
	fail1.job = (struct store_job){ .stmt = &stmt_fail, .nparams = 1, .params = zero, .done = done, .arg = &fail1,
					.retry = 1 };
	two1.job = (struct store_job){ .stmt = &stmt_two, .done = done, .arg = &two1, .retry = 1 };
	store_submit(st, &fail1.job);
	store_submit(st, &two1.job);
	store_start(st);
	ev_timer t;
	ev_timer_init(&t, timeout_cb, 30., 0.);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	store_free(st);
	int ok = fail1.done && fail1.err == STORE_SQL_ERROR && two1.done && two1.err == STORE_OK &&
		 !strcmp(two1.value, "2") && two2.done && two2.err == STORE_OK && !strcmp(two2.value, "2");
	printf("%s\n", ok ? "result: ok" : "result: FAILED");
	return ok ? 0 : 1;
}
