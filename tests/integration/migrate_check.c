/*
 * migrate_check.c: src/migrate.c's online migrations against a real
 * PostgreSQL, for t_schema.py (conninfo of an empty database in argv[1]).
 * It carries its own two migrations instead of sql/: a table, then an
 * online one building an index CONCURRENTLY.  Applied once; then the
 * second is made to look cut short (its version row gone, a stray index
 * left under its name) and applied again: it must run from the start and
 * leave one valid index and its row.  Prints what it saw; exit 0 when all
 * held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

const struct migration migrations[] = {
	{ 1, "001_check", "CREATE TABLE check_t (a int);\n" },
	{ 2, "002_check_online", "-- migrate: online\n"
	  "-- comments travel with the first statement\n"
	  "DROP INDEX CONCURRENTLY IF EXISTS check_t_a;\n"
	  "CREATE INDEX CONCURRENTLY check_t_a ON check_t (a);\n" },
};
const size_t migrations_count = sizeof(migrations) / sizeof(migrations[0]);
const struct sql_function sql_functions[] = { { "check_fn", "SELECT 1;\n" } };
const size_t sql_functions_count = 1;

static const char *one(PGconn *c, const char *sql)
{
	static char out[64];
	PGresult *r = PQexec(c, sql);
	snprintf(out, sizeof(out), "%s", r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
					       ? PQgetvalue(r, 0, 0) : "?");
	PQclear(r);
	return out;
}

#define STATE "SELECT (SELECT count(*) FROM schema_version WHERE version = 2) || ' ' ||" \
	" (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid" \
	"  WHERE c.relname = 'check_t_a' AND i.indisvalid) || ' ' ||" \
	" (SELECT count(*) FROM pg_class WHERE relname LIKE 'check_t_a%')"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: migrate_check CONNINFO\n");
		return 2;
	}
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "migrate_check: %s", PQerrorMessage(c));
		return 2;
	}
	char err[512] = "";
	int first = migrate_apply(c, NULL, err, sizeof(err));
	char after_first[64];
	snprintf(after_first, sizeof(after_first), "%s", one(c, STATE));
	printf("first: applied=%d err=\"%s\" state=%s\n", first, err, after_first);
	/* cut short: the row never written, and the build left an index behind (plain here) */
	PQclear(PQexec(c, "DELETE FROM schema_version WHERE version = 2"));
	PQclear(PQexec(c, "DROP INDEX check_t_a"));
	PQclear(PQexec(c, "CREATE INDEX check_t_a ON check_t ((a + 1))"));
	int again = migrate_apply(c, NULL, err, sizeof(err));
	char after_again[64];
	snprintf(after_again, sizeof(after_again), "%s", one(c, STATE));
	const char *def = one(c, "SELECT pg_get_indexdef('check_t_a'::regclass)");
	printf("again: applied=%d err=\"%s\" state=%s def=%s\n", again, err, after_again, def);
	int ok = first == 2 && !strcmp(after_first, "1 1 1") && again == 1 && !strcmp(after_again, "1 1 1") &&
		 strstr(def, "(a)") != NULL && PQtransactionStatus(c) == PQTRANS_IDLE;
	PQfinish(c);
	printf("result: %s\n", ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}
