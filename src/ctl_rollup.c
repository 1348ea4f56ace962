/*
 * ctl_rollup.c: `pushgatectl rollup` runs the report rollup job
 * (report_rollup(), sql/functions/report_rollup.sql) step after step until
 * everything committed before the command began is counted (pushgated runs
 * it every [reports] rollup_interval), and prints the watermark and the
 * events it added; a job that cannot move (a role without
 * pg_read_all_stats, a transaction that stays open) is an error.  `rollup status` prints the watermark,
 * how far it is behind, the events counted in all and the counters' rows.
 * Arguments are checked before connecting.
 */
#include "ctl_rollup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rollup.h"
#include "stmts.h"

#define RUN_WAIT_S 120   /* seconds run() waits for open transactions and other runs */

static int usage(const char *msg)
{
	fprintf(stderr, "pushgatectl: rollup: %s\n"
		"usage: pushgatectl rollup [status]\n", msg);
	return 2;
}

static PGresult *query(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: rollup: %s", PQerrorMessage(conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

static int status(PGconn *conn)
{
	PGresult *r = query(conn,
		"SELECT coalesce(" STMTS_ISO_TS("s.watermark") ", '-'),"
		" coalesce(round(extract(epoch FROM now() - s.watermark)::numeric, 1)::text, '-'), s.events,"
		" (SELECT count(*) FROM report_counts), (SELECT count(*) FROM report_latency)"
		" FROM report_rollup_state s WHERE s.id = 1");
	if (!r)
		return 1;
	int ok = PQntuples(r) == 1;
	if (ok)
		printf("watermark      %s\nbehind_seconds %s\nevents         %s\ncount_rows     %s\nlatency_rows   %s\n",
		       PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3),
		       PQgetvalue(r, 0, 4));
	else
		fprintf(stderr, "pushgatectl: rollup: no report_rollup_state row: run pushgatectl migrate\n");
	PQclear(r);
	return ok && fflush(stdout) == 0 ? 0 : 1;
}

/*
 * Steps until the watermark reaches the time this command began: every
 * event committed before it is then counted (a transaction open at that
 * time holds it back until it ends).  Waits at most RUN_WAIT_S.
 */
static int run(PGconn *conn)
{
	unsigned long long total = 0;
	PGresult *t = query(conn, "SELECT clock_timestamp()::text");
	if (!t)
		return 1;
	char target[64];
	snprintf(target, sizeof(target), "%s", PQntuples(t) == 1 ? PQgetvalue(t, 0, 0) : "infinity");
	PQclear(t);
	const char *params[1] = { target };
	for (int waits = 0;;) {
		PGresult *r = PQexecParams(conn,
			"SELECT coalesce(" STMTS_ISO_TS("watermark") ", '-'),"
			" events, behind, blocked, watermark >= $1::timestamptz, busy"
			" FROM report_rollup('" ROLLUP_STEP "')",
			1, NULL, params, NULL, NULL, 0);
		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			fprintf(stderr, "pushgatectl: rollup: %s", r && PQresultStatus(r) == PGRES_TUPLES_OK
				? "no report_rollup_state row: run pushgatectl migrate\n" : PQerrorMessage(conn));
			PQclear(r);
			return 1;
		}
		total += strtoull(PQgetvalue(r, 0, 1), NULL, 10);
		/* another run under way: wait for it */
		int busy = PQgetvalue(r, 0, 5)[0] == 't';
		if (!busy && !PQgetisnull(r, 0, 3)) {
			fprintf(stderr, "pushgatectl: rollup: %s\n", PQgetvalue(r, 0, 3));
			PQclear(r);
			return 1;
		}
		if (!busy && PQgetvalue(r, 0, 4)[0] == 't') {
			printf("watermark %s events %llu\n", PQgetvalue(r, 0, 0), total);
			PQclear(r);
			return fflush(stdout) == 0 ? 0 : 1;
		}
		int behind = !busy && PQgetvalue(r, 0, 2)[0] == 't';
		PQclear(r);
		if (behind)
			continue;
		if (++waits > RUN_WAIT_S * 10) {
			fprintf(stderr, "pushgatectl: rollup: the watermark did not reach %s in %d s: a transaction"
				" open since then holds it (pg_stat_activity), or another run does not end\n",
				target, RUN_WAIT_S);
			return 1;
		}
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	}
}

int ctl_rollup(PGconn *conn, int argc, char **argv)
{
	int st = argc == 2 && strcmp(argv[1], "status") == 0;
	if (argc > 2 || (argc == 2 && !st))
		return usage("unknown arguments");
	if (!conn)
		return 0;
	return st ? status(conn) : run(conn);
}
