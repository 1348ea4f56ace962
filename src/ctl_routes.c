/*
 * ctl_routes.c: `pushgatectl route pause NAME [REASON]`, `route resume NAME`
 * and `route list`.  A pause is a row of route_pauses (sql/025) and a NOTIFY
 * on pushgate_routes in the same transaction: every pushgated stops leasing
 * SMS for the route at the commit (a route failing over to another hands its
 * queue over) and starts again at the resume.  What is already submitted
 * finishes; what waits keeps its place until its validity ends.  The list
 * shows each route's pause and its binds on every node (smpp_binds).
 * Arguments are checked before connecting.
 */
#include "ctl_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(const char *msg)
{
	fprintf(stderr, "pushgatectl: route: %s\n"
		"usage: pushgatectl route pause NAME [REASON]\n"
		"       pushgatectl route resume NAME\n"
		"       pushgatectl route list\n", msg);
	return 2;
}

/* A [route NAME] of pushgate.ini: 1-31 letters, digits, '-', '_', '.'. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n < 32 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static int printable(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int exec(PGconn *conn, const char *sql, int n, const char *const *p, PGresult **out)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: route: %s", PQerrorMessage(conn));
		PQclear(r);
		return 1;
	}
	*out = r;
	return 0;
}

static int list(PGconn *conn)
{
	PGresult *r;
	if (exec(conn,
		 "WITH names AS (SELECT route FROM route_pauses UNION SELECT route FROM smpp_binds)"
		 " SELECT n.route, CASE WHEN p.route IS NULL THEN 'running' ELSE 'paused' END,"
		 "  coalesce(to_char(p.paused_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
		 "  coalesce((SELECT count(*) FILTER (WHERE b.state = 'bound') || '/' || count(*) FROM smpp_binds b"
		 "            WHERE b.route = n.route), '0/0'),"
		 "  coalesce(NULLIF(p.reason, ''), '-')"
		 " FROM names n LEFT JOIN route_pauses p ON p.route = n.route ORDER BY n.route",
		 0, NULL, &r))
		return 1;
	printf("%-32s %-8s %-21s %-11s %s\n", "ROUTE", "STATE", "PAUSED_AT", "BINDS_UP", "REASON");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%-32s %-8s %-21s %-11s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		       PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
	PQclear(r);
	return fflush(stdout) == 0 ? 0 : 1;
}

int ctl_routes(PGconn *conn, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "list"))
		return conn ? list(conn) : 0;
	int pause = argc >= 3 && !strcmp(argv[1], "pause"), resume = argc == 3 && !strcmp(argv[1], "resume");
	if ((!pause && !resume) || (pause && argc > 4))
		return usage("route needs pause NAME [REASON], resume NAME or list");
	if (!name_ok(argv[2]))
		return usage("NAME must be a [route NAME] of pushgate.ini (letters, digits, - _ .; at most 31)");
	if (pause && argc == 4 && !printable(argv[3], 200))
		return usage("REASON must be printable, at most 200 characters");
	if (!conn)
		return 0;
	const char *p[2] = { argv[2], pause && argc == 4 ? argv[3] : NULL };
	PGresult *r;
	if (pause) {
		if (exec(conn,
			 "WITH i AS (INSERT INTO route_pauses (route, reason) VALUES ($1, $2)"
			 "  ON CONFLICT (route) DO UPDATE SET reason = coalesce(excluded.reason, route_pauses.reason)"
			 "  RETURNING route)"
			 " SELECT route, pg_notify('pushgate_routes', route) FROM i",
			 2, p, &r))
			return 1;
		PQclear(r);
		fprintf(stderr, "route %s paused: no node leases SMS for it until route resume\n", argv[2]);
		return 0;
	}
	if (exec(conn, "WITH d AS (DELETE FROM route_pauses WHERE route = $1 RETURNING route)"
		       " SELECT route, pg_notify('pushgate_routes', route) FROM d", 1, p, &r))
		return 1;
	int found = PQntuples(r) > 0;
	PQclear(r);
	if (!found) {
		fprintf(stderr, "pushgatectl: route: %s is not paused\n", argv[2]);
		return 1;
	}
	fprintf(stderr, "route %s resumed\n", argv[2]);
	return 0;
}
