/*
 * migrate.h: the schema compiled into the binaries: numbered migrations
 * (sql/NNN_*.sql: tables and indexes) and the functions, triggers and views
 * of sql/functions/ (one file each, re-applied when changed).
 */
#ifndef PUSHGATE_MIGRATE_H
#define PUSHGATE_MIGRATE_H

#include <stddef.h>
#include <libpq-fe.h>

struct migration {
	int         version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/* One file of sql/functions/: CREATE OR REPLACE statements, safe to run again. */
struct sql_function {
	const char *name;
	const char *sql;
};

extern const struct sql_function sql_functions[];   /* in the order they are applied */
extern const size_t sql_functions_count;

/*
 * Applies every migration newer than the database's schema_version, each in
 * its own transaction, then, when any file of sql/functions/ differs from
 * the one recorded in schema_functions (md5), all of them in order in one
 * transaction; under an advisory lock so two processes can't race.
 * Re-running is a no-op.  Returns the number of migrations applied (and in
 * *functions, when not NULL, the number of function files applied: 0 or
 * all), or -1 with err set.
 */
int migrate_apply(PGconn *conn, int *functions, char *err, size_t errlen);
/*
 * The same, with the migrations up to version `upto` only (the functions
 * all the same): an operator stages a schema change, a test builds the
 * database an older release left to upgrade it.
 */
int migrate_apply_upto(PGconn *conn, int upto, int *functions, char *err, size_t errlen);

/* Highest version applied, 0 for an empty database, -1 on error. */
int migrate_current(PGconn *conn);

#endif
