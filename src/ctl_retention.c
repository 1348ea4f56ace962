/*
 * ctl_retention.c: `pushgatectl retention status|run`, the history's
 * retention (docs/operations.md, "Retention").  status prints, for each
 * history range (sql/029), its newest recipient, whether one is in flight,
 * its size and what retention does with it (history_retention(),
 * sql/functions/history_retention.sql); run drops the ranges it says may
 * go, each through history_range_drop() (its partitions, history_parts():
 * smpp_outbox, webhook_outbox, events, sms_parts, recipients, and its history_ranges
 * row, its locks taken only when free at once, tried again while busy).
 * Per class (sql/032): with [retention] outbox_days (--outbox-days) shorter
 * than history_days, a kept range older than it has its outbox partitions
 * emptied instead (TRUNCATE, the range stays), exported first likewise.  No
 * DELETE, no dead rows: the cost of a range is a few catalog changes,
 * whatever it holds.  --export DIR first writes each partition to DIR/<partition>.csv.gz
 * (COPY, CSV with a header, through gzip), holding a SHARE lock on them so
 * that nothing changes them while they are read.  The limit and the
 * directory come from [retention] (history_days, export_dir) unless given.
 * A detach an older release's run left pending is finalized first.
 * The message ranges (sql/036) are listed apart (message_retention()) and
 * dropped after the history ranges (message_range_drop()), each exported
 * first to DIR/messages_<lo>.csv.gz with --export.
 * The rows no range holds (no recipient id: a carrier's MO, its deliveries
 * to ESMEs and webhooks; idempotency keys) are deleted by age instead
 * (history_trim_tables() lists them, history_trimmable(), history_trim():
 * MO and keys after history_days, delivered deliveries after
 * outbox_days); status counts them, run deletes them after the ranges,
 * with --export in a COPY of the DELETE itself, so that what is written out
 * is exactly what went, to DIR/<table>-<UTC time>.csv.gz.
 * Arguments are checked before connecting.
 */
#include "ctl_retention.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "stmts.h"

struct ret_args {
	int         run;          /* run, else status */
	double      keep_days;    /* class history: ranges dropped */
	double      outbox_days;  /* class outbox: a range's outboxes emptied (when shorter than keep_days) */
	const char *export_dir;   /* NULL or "": none */
};

static int usage(const char *msg)
{
	fprintf(stderr, "pushgatectl: retention: %s\n"
		"usage: pushgatectl retention status|run [--keep-days N] [--outbox-days N] [--export DIR]\n", msg);
	return 2;
}

/* A number of days, 1 to 36500, into *out; 0 / -1. */
static int parse_days(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= 1 && v <= 36500))
		return -1;
	*out = v;
	return 0;
}

static int parse(int argc, char **argv, const struct config *cfg, struct ret_args *a)
{
	*a = (struct ret_args){ 0, cfg->retention_history_days, cfg->retention_outbox_days, cfg->retention_export_dir };
	if (argc < 2 || (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "run") != 0))
		return usage("status or run?");
	a->run = argv[1][0] == 'r';
	for (int i = 2; i < argc; i += 2) {
		if (i + 1 >= argc)
			return usage("an option without its value");
		if (strcmp(argv[i], "--keep-days") == 0) {
			if (parse_days(argv[i + 1], &a->keep_days) < 0)
				return usage("--keep-days takes 1 to 36500 days");
		} else if (strcmp(argv[i], "--outbox-days") == 0) {
			if (parse_days(argv[i + 1], &a->outbox_days) < 0)
				return usage("--outbox-days takes 1 to 36500 days");
		} else if (strcmp(argv[i], "--export") == 0 && a->run) {
			a->export_dir = argv[i + 1];
		} else {
			return usage("unknown option");
		}
	}
	if (a->export_dir && a->export_dir[0]) {
		struct stat st;
		if (stat(a->export_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "pushgatectl: retention: %s is not a directory\n", a->export_dir);
			return 1;
		}
	}
	return 0;
}

static PGresult *exec(PGconn *conn, const char *sql, int nparams, const char *const *params, ExecStatusType want)
{
	PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != want) {
		fprintf(stderr, "pushgatectl: retention: %s", PQerrorMessage(conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

static int exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = exec(conn, sql, 0, NULL, PGRES_COMMAND_OK);
	PQclear(r);
	return r ? 0 : -1;
}

/*
 * The tables whose rows no range holds, in the order history_trim() deletes
 * them, as the database lists them (history_trim_tables()): table, the
 * column naming a row, class; NULL on error.
 */
static PGresult *trim_tables(PGconn *conn)
{
	return exec(conn, "SELECT tbl, id_column, class FROM history_trim_tables()", 0, NULL, PGRES_TUPLES_OK);
}

/* Outboxes kept as long as their range, or longer, go with it: no limit of their own. */
static int outboxes_apart(const struct ret_args *a)
{
	return a->outbox_days < a->keep_days;
}

/*
 * The ranges and what retention does with each: lo, hi, suffix, newest,
 * in flight, action (class history), size, action for its outboxes (class
 * outbox); NULL on error.
 */
static PGresult *plan(PGconn *conn, const struct ret_args *a)
{
	char days[32], odays[32];
	snprintf(days, sizeof(days), "%.17g", a->keep_days);
	snprintf(odays, sizeof(odays), "%.17g", a->outbox_days);
	const char *params[2] = { days, odays };
	return exec(conn,
		"SELECT h.lo, h.hi, h.suffix,"
		"  coalesce(" STMTS_ISO_TS("h.newest") ", '-'), CASE WHEN h.in_flight THEN 'yes' ELSE 'no' END, h.action,"
		"  pg_size_pretty((SELECT sum(pg_total_relation_size(to_regclass(p.part))) FROM history_parts(h.lo) p)),"
		"  o.action"
		" FROM history_retention(make_interval(secs => $1::float8 * 86400)) h"
		" JOIN history_retention(make_interval(secs => $2::float8 * 86400), NULL, 'outbox') o ON o.lo = h.lo"
		" ORDER BY h.lo", 2, params, PGRES_TUPLES_OK);
}

/* The message ranges and what retention does with each: lo, hi, suffix, newest, action, size; NULL on error. */
static PGresult *message_plan(PGconn *conn, const char *days)
{
	const char *params[1] = { days };
	return exec(conn,
		"SELECT m.lo, m.hi, m.suffix, coalesce(" STMTS_ISO_TS("m.newest") ", '-'), m.action,"
		"  pg_size_pretty(pg_total_relation_size(to_regclass('public.messages_' || m.suffix)))"
		" FROM message_retention(make_interval(secs => $1::float8 * 86400)) m ORDER BY m.lo", 1, params,
		PGRES_TUPLES_OK);
}

static int status(PGconn *conn, const struct ret_args *a)
{
	PGresult *r = plan(conn, a);
	if (!r)
		return 1;
	printf("%-20s %-20s %-24s %-9s %-10s %s\n", "RANGE", "TO", "NEWEST", "IN_FLIGHT", "SIZE", "ACTION");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%-20s %-20s %-24s %-9s %-10s %s\n", PQgetvalue(r, i, 2), PQgetvalue(r, i, 1),
		       PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 6), PQgetvalue(r, i, 5));
	printf("limit: %g days\n", a->keep_days);
	if (outboxes_apart(a)) {
		printf("\noutboxes (webhook_outbox, smpp_outbox) of the ranges kept:\n%-20s %s\n", "RANGE", "OUTBOXES");
		for (int i = 0; i < PQntuples(r); i++)
			if (strcmp(PQgetvalue(r, i, 5), "drop") != 0)
				printf("%-20s %s\n", PQgetvalue(r, i, 2), PQgetvalue(r, i, 7));
		printf("limit: %g days\n", a->outbox_days);
	}
	PQclear(r);
	char days[32], odays[32];
	snprintf(days, sizeof(days), "%.17g", a->keep_days);
	snprintf(odays, sizeof(odays), "%.17g", a->outbox_days);
	r = message_plan(conn, days);
	if (!r)
		return 1;
	printf("\nmessage ranges (messages_<lo>, sql/036):\n%-20s %-20s %-24s %-10s %s\n", "RANGE", "TO", "NEWEST", "SIZE",
	       "ACTION");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%-20s %-20s %-24s %-10s %s\n", PQgetvalue(r, i, 2), PQgetvalue(r, i, 1), PQgetvalue(r, i, 3),
		       PQgetvalue(r, i, 5), PQgetvalue(r, i, 4));
	PQclear(r);
	const char *params[2] = { days, odays };
	r = exec(conn, "SELECT t.tbl, (SELECT count(*) FROM history_trimmable(t.tbl, make_interval(secs => $1::float8 * 86400),"
		 " make_interval(secs => $2::float8 * 86400))), t.class FROM history_trim_tables() t", 2, params,
		 PGRES_TUPLES_OK);
	if (!r)
		return 1;
	printf("\noutside the ranges (no recipient id), deleted by age:\n%-22s %-8s %s\n", "TABLE", "TO_GO", "LIMIT");
	for (int i = 0; i < PQntuples(r); i++) {
		int outbox = strcmp(PQgetvalue(r, i, 2), "outbox") == 0;
		printf("%-22s %-8s %g days%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		       outbox ? a->outbox_days : a->keep_days, outbox ? ", once delivered" : "");
	}
	PQclear(r);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* gzip -c > path, fed through the returned pipe; *pid set; -1 on error. */
static int gzip_to(const char *path, pid_t *pid)
{
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		fprintf(stderr, "pushgatectl: retention: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int p[2];
	if (pipe(p) < 0) {
		close(out);
		return -1;
	}
	*pid = fork();
	if (*pid == 0) {
		dup2(p[0], 0);
		dup2(out, 1);
		close(p[0]);
		close(p[1]);
		execlp("gzip", "gzip", "-c", (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	close(out);
	if (*pid < 0) {
		close(p[1]);
		return -1;
	}
	return p[1];
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* COPY `what` (a table, or a query in parentheses) out to path (written to .tmp, then renamed); rows or -1. */
static long long export_copy(PGconn *conn, const char *path, const char *what, const char *part)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	size_t len = strlen(what) + 64;
	char *sql = malloc(len);
	if (!sql)
		return -1;
	snprintf(sql, len, "COPY %s TO STDOUT WITH (FORMAT csv, HEADER)", what);
	PGresult *r = PQexec(conn, sql);
	free(sql);
	if (!r || PQresultStatus(r) != PGRES_COPY_OUT) {
		fprintf(stderr, "pushgatectl: retention: %s", PQerrorMessage(conn));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	pid_t pid;
	int fd = gzip_to(tmp, &pid);
	long long lines = 0;
	int bad = fd < 0;
	char *buf;
	int n;
	while ((n = PQgetCopyData(conn, &buf, 0)) > 0) {
		if (!bad && write_all(fd, buf, (size_t)n) < 0)
			bad = 1;
		lines++;
		PQfreemem(buf);
	}
	if (fd >= 0)
		close(fd);
	int wst = 0;
	if (fd >= 0 && (waitpid(pid, &wst, 0) < 0 || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0))
		bad = 1;
	r = PQgetResult(conn);
	if (n == -2 || !r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pushgatectl: retention: COPY %s: %s", part, PQerrorMessage(conn));
		bad = 1;
	}
	PQclear(r);
	while ((r = PQgetResult(conn)))
		PQclear(r);
	if (!bad && rename(tmp, path) < 0)
		bad = 1;
	if (bad) {
		unlink(tmp);
		fprintf(stderr, "pushgatectl: retention: exporting %s to %s failed\n", part, path);
		return -1;
	}
	return lines > 0 ? lines - 1 : 0;   /* the header */
}

/* COPY one partition out to DIR/<part>.csv.gz; rows or -1. */
static long long export_one(PGconn *conn, const char *dir, const char *part)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.csv.gz", dir, part);
	return export_copy(conn, path, part, part);
}

/* The partitions of the range at lo of one class ("history": all), in drop order (history_parts()); NULL on error. */
static PGresult *range_parts(PGconn *conn, const char *lo, const char *class)
{
	const char *params[2] = { lo, class };
	return exec(conn, "SELECT p.tbl, p.part FROM history_parts($1::bigint) p JOIN history_tables h ON h.name = p.tbl"
		    " WHERE $2 = 'history' OR h.class = $2 ORDER BY h.ord DESC", 2, params, PGRES_TUPLES_OK);
}

static int export_range(PGconn *conn, const char *dir, const char *lo, const char *class)
{
	if (exec_ok(conn, "BEGIN") < 0)
		return -1;
	PGresult *parts = range_parts(conn, lo, class);
	int bad = !parts;
	for (int i = 0; !bad && i < PQntuples(parts); i++) {
		char sql[256];
		snprintf(sql, sizeof(sql), "LOCK TABLE ONLY %s IN SHARE MODE", PQgetvalue(parts, i, 1));
		bad = exec_ok(conn, sql) < 0;
	}
	for (int i = parts ? PQntuples(parts) - 1 : -1; !bad && i >= 0; i--) {   /* recipients first */
		const char *part = PQgetvalue(parts, i, 1);
		long long rows = export_one(conn, dir, part);
		if (rows < 0)
			bad = 1;
		else
			printf("  exported %s: %lld rows to %s/%s.csv.gz\n", part, rows, dir, part);
	}
	PQclear(parts);
	if (bad) {
		exec_ok(conn, "ROLLBACK");
		return -1;
	}
	return exec_ok(conn, "COMMIT");
}

/*
 * Drops one range (class history), or empties its outboxes (class outbox),
 * through history_range_drop() (which looks for a moment when its locks are
 * free for ~1.5 s; a busy call is repeated DROP_TRIES times), after
 * finalizing a detach an older release's run left pending.  0 done, 1 kept
 * (why printed), -1 error.
 */
#define DROP_TRIES 10

/*
 * Runs a drop function (history_range_drop(), message_range_drop(): one
 * text answer) until it is not 'busy', DROP_TRIES times 200 ms apart.
 * 0 done ('dropped', 'cleared'), 1 kept (why printed), -1 error or still busy.
 */
static int drop_call(PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what_range)
{
	for (int t = 0; t < DROP_TRIES; t++) {
		PGresult *r = exec(conn, sql, nparams, params, PGRES_TUPLES_OK);
		if (!r)
			return -1;
		const char *what = PQgetvalue(r, 0, 0);
		int rc = strcmp(what, "dropped") == 0 || strcmp(what, "cleared") == 0 ? 0 : strcmp(what, "busy") == 0 ? 2 : 1;
		if (rc == 1)
			printf("  kept: %s\n", what);
		PQclear(r);
		if (rc != 2)
			return rc;
		usleep(200000);
	}
	fprintf(stderr, "pushgatectl: retention: range %s: its tables stayed busy; run again\n", what_range);
	return -1;
}
static int drop_range(PGconn *conn, const char *lo, const char *keep_days, const char *class)
{
	PGresult *parts = range_parts(conn, lo, "history");
	if (!parts)
		return -1;
	int bad = 0;
	for (int i = 0; !bad && i < PQntuples(parts); i++) {
		const char *tbl = PQgetvalue(parts, i, 0), *part = PQgetvalue(parts, i, 1);
		const char *params[1] = { part };
		PGresult *r = exec(conn, "SELECT 1 FROM pg_inherits h WHERE h.inhdetachpending"
				   " AND h.inhrelid = to_regclass('public.' || $1)", 1, params, PGRES_TUPLES_OK);
		if (!r) {
			bad = 1;
			break;
		}
		int pending = PQntuples(r) == 1;
		PQclear(r);
		if (pending) {
			char sql[256];
			snprintf(sql, sizeof(sql), "ALTER TABLE %s DETACH PARTITION %s FINALIZE", tbl, part);
			bad = exec_ok(conn, sql) < 0;
		}
	}
	PQclear(parts);
	if (bad)
		return -1;
	const char *params[3] = { lo, keep_days, class };
	return drop_call(conn, "SELECT history_range_drop($1::bigint, make_interval(secs => $2::float8 * 86400), $3)",
			 3, params, lo);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Drops the message ranges message_retention() says may go (the history
 * ranges went first: theirs may free some), oldest first, each through
 * message_range_drop(), exported first to DIR/messages_<suffix>.csv.gz
 * under a SHARE lock.  The number dropped, or -1.
 */
static int drop_messages(PGconn *conn, const struct ret_args *a, const char *days)
{
	PGresult *r = message_plan(conn, days);
	if (!r)
		return -1;
	int dropped = 0, bad = 0;
	for (int i = 0; i < PQntuples(r) && !bad; i++) {
		if (strcmp(PQgetvalue(r, i, 4), "drop") != 0)
			continue;
		char part[96], sql[160];
		snprintf(part, sizeof(part), "messages_%s", PQgetvalue(r, i, 2));
		double t0 = now_s();
		printf("message range %s to %s (newest %s, %s):\n", PQgetvalue(r, i, 2), PQgetvalue(r, i, 1),
		       PQgetvalue(r, i, 3), PQgetvalue(r, i, 5));
		if (a->export_dir && a->export_dir[0]) {
			snprintf(sql, sizeof(sql), "LOCK TABLE ONLY %s IN SHARE MODE", part);
			long long rows = -1;
			if (exec_ok(conn, "BEGIN") == 0 && exec_ok(conn, sql) == 0)
				rows = export_one(conn, a->export_dir, part);
			if (rows < 0 || exec_ok(conn, "COMMIT") < 0) {
				exec_ok(conn, "ROLLBACK");
				bad = 1;
				break;
			}
			printf("  exported %s: %lld rows to %s/%s.csv.gz\n", part, rows, a->export_dir, part);
		}
		const char *params[2] = { PQgetvalue(r, i, 0), days };
		int rc = drop_call(conn, "SELECT message_range_drop($1::bigint, make_interval(secs => $2::float8 * 86400))",
				   2, params, part);
		if (rc < 0)
			bad = 1;
		else if (rc == 0) {
			printf("  dropped in %.3f s\n", now_s() - t0);
			dropped++;
		}
	}
	PQclear(r);
	return bad ? -1 : dropped;
}

/*
 * Deletes the old rows outside the ranges: through history_trim() in
 * batches (each call its own transaction), or, with an export, each table's
 * in one COPY of its DELETE ... RETURNING (a row deleted is a row written;
 * nothing is deleted unless its file was written whole).  0 / -1.
 */
#define TRIM_BATCH 50000
static int trim(PGconn *conn, const struct ret_args *a, const char *days, const char *odays)
{
	PGresult *tables = trim_tables(conn);
	if (!tables)
		return -1;
	int n = PQntuples(tables);
	long long *total = calloc((size_t)n + 1, sizeof(*total));
	int rc = total ? 0 : -1;
	if (rc == 0 && a->export_dir && a->export_dir[0]) {
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
		for (int i = 0; i < n && rc == 0; i++) {
			const char *tbl = PQgetvalue(tables, i, 0);
			char path[PATH_MAX], what[512];
			snprintf(path, sizeof(path), "%s/%s-%s.csv.gz", a->export_dir, tbl, stamp);
			snprintf(what, sizeof(what), "(DELETE FROM %1$s WHERE %4$s IN (SELECT history_trimmable('%1$s',"
				 " make_interval(secs => %2$s::float8 * 86400), make_interval(secs => %3$s::float8 * 86400)))"
				 " RETURNING *)", tbl, days, odays, PQgetvalue(tables, i, 1));
			if (exec_ok(conn, "BEGIN") < 0) {
				rc = -1;
				break;
			}
			total[i] = export_copy(conn, path, what, tbl);
			if (total[i] < 0 || exec_ok(conn, "COMMIT") < 0) {
				exec_ok(conn, "ROLLBACK");
				rc = -1;
				break;
			}
			if (total[i] > 0)
				printf("  exported %s: %lld rows to %s\n", tbl, total[i], path);
			else
				unlink(path);   /* nothing went: no file */
		}
	} else if (rc == 0) {
		char batch[16];
		snprintf(batch, sizeof(batch), "%d", TRIM_BATCH);
		const char *params[3] = { days, odays, batch };
		for (int more = 1; more && rc == 0;) {
			PGresult *r = exec(conn, "SELECT tbl, deleted FROM history_trim(make_interval(secs => $1::float8 * 86400),"
					   " make_interval(secs => $2::float8 * 86400), $3::int)", 3, params, PGRES_TUPLES_OK);
			if (!r) {
				rc = -1;
				break;
			}
			more = 0;
			for (int j = 0; j < PQntuples(r); j++)
				for (int i = 0; i < n; i++)
					if (strcmp(PQgetvalue(r, j, 0), PQgetvalue(tables, i, 0)) == 0) {
						long long d = strtoll(PQgetvalue(r, j, 1), NULL, 10);
						total[i] += d;
						more |= d >= TRIM_BATCH;
					}
			PQclear(r);
		}
	}
	if (rc == 0) {
		printf("outside the ranges:");
		for (int i = 0; i < n; i++)
			printf("%s %s %lld", i ? "," : "", PQgetvalue(tables, i, 0), total[i]);
		printf(" rows deleted\n");
	}
	free(total);
	PQclear(tables);
	return rc;
}

static int run(PGconn *conn, const struct ret_args *a)
{
	PGresult *r = plan(conn, a);
	if (!r)
		return 1;
	char days[32], odays[32];
	snprintf(days, sizeof(days), "%.17g", a->keep_days);
	snprintf(odays, sizeof(odays), "%.17g", a->outbox_days);
	int dropped = 0, cleared = 0, kept = 0, failed = 0;
	for (int i = 0; i < PQntuples(r) && !failed; i++) {
		const char *lo = PQgetvalue(r, i, 0), *suffix = PQgetvalue(r, i, 2);
		int drop = strcmp(PQgetvalue(r, i, 5), "drop") == 0;
		if (!drop && !(outboxes_apart(a) && strcmp(PQgetvalue(r, i, 7), "clear") == 0)) {
			kept++;
			continue;
		}
		const char *class = drop ? "history" : "outbox";
		double t0 = now_s();
		printf("range %s to %s (newest %s, %s)%s:\n", suffix, PQgetvalue(r, i, 1), PQgetvalue(r, i, 3),
		       PQgetvalue(r, i, 6), drop ? "" : ", its outboxes");
		int rc = a->export_dir && a->export_dir[0] && export_range(conn, a->export_dir, lo, class) < 0
			 ? -1 : drop_range(conn, lo, drop ? days : odays, class);
		if (rc < 0) {
			failed = 1;
			break;
		}
		if (rc == 1) {
			kept++;
			continue;
		}
		printf("  %s in %.3f s\n", drop ? "dropped" : "emptied", now_s() - t0);
		if (drop)
			dropped++;
		else
			cleared++;
	}
	PQclear(r);
	int msgs = failed ? 0 : drop_messages(conn, a, days);
	if (msgs < 0)
		failed = 1;
	if (!failed && trim(conn, a, days, odays) < 0)
		failed = 1;
	printf("%d range(s) dropped, %d range(s)' outboxes emptied, %d kept, %d message range(s) dropped (limit %g days",
	       dropped, cleared, kept, msgs > 0 ? msgs : 0, a->keep_days);
	if (outboxes_apart(a))
		printf(", outboxes %g days", a->outbox_days);
	printf(")\n");
	return fflush(stdout) == 0 && !failed ? 0 : 1;
}

int ctl_retention(PGconn *conn, int argc, char **argv, const struct config *cfg)
{
	struct ret_args a;
	int rc = parse(argc, argv, cfg, &a);
	if (rc || !conn)
		return rc;
	return a.run ? run(conn, &a) : status(conn, &a);
}
