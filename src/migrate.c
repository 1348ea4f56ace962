/*
 * migrate.c: brings a database's schema up to the version this binary
 * carries.  The migrations themselves (sql/NNN_*.sql) are compiled in by
 * tools/embed-sql as migrations[]; the table schema_version records which
 * ones a database has, one row per applied migration.  The functions,
 * triggers and views (sql/functions/, compiled in as sql_functions[]) are
 * the live code: after the migrations, when any file's md5 differs from the
 * one schema_functions recorded, every file is applied again in its order
 * (a changed object may be recreated, and what depends on it comes after
 * it), in one transaction with the new checksums.
 *
 * Owns: the advisory lock MIGRATE_LOCK_KEY for the length of one
 * migrate_apply() call, and the schema_version and schema_functions tables.
 * Each migration runs in its own transaction together with its
 * schema_version row, so a failure leaves the previous version intact;
 * one marked "-- migrate: online" runs statement by statement outside a
 * transaction (an index built CONCURRENTLY, on each partition from a list of
 * statements one of them selects) and is written to be run again.
 *
 * Uses blocking libpq: it runs from pushgatectl and at daemon start-up,
 * never on the event loop.  Never leaves the lock held or a transaction
 * open on the caller's connection when it returns.
 */
#include "migrate.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "pushgate" in ASCII, read as a big-endian 64-bit integer. */
#define MIGRATE_LOCK_KEY "8103509996771308645"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0) {
		err[0] = '\0';
		return;
	}
	/* libpq messages end in a newline: keep the caller's line to one line. */
	size_t len = strlen(err);
	while (len > 0 && (err[len - 1] == '\n' || err[len - 1] == ' '))
		err[--len] = '\0';
}

/* Runs one command without parameters; 0 when it returned `want`. */
static int exec_simple(PGconn *conn, const char *sql, ExecStatusType want)
{
	PGresult *res = PQexec(conn, sql);
	int ok = res && PQresultStatus(res) == want;
	PQclear(res);
	return ok ? 0 : -1;
}

/* 1 when the table exists, 0 when not, -1 on error. */
static int table_exists(PGconn *conn, const char *table)
{
	const char *params[1] = { table };
	PGresult *res = PQexecParams(conn, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, params, NULL, NULL, 0);
	int rc = -1;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return rc;
}

int migrate_current(PGconn *conn)
{
	int exists = table_exists(conn, "schema_version");
	if (exists <= 0)
		return exists;
	PGresult *res = PQexecParams(conn,
		"SELECT coalesce(max(version), 0) FROM schema_version",
		0, NULL, NULL, NULL, NULL, 0);
	int version = -1;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		long v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
		if (v >= 0 && v <= 1000000)
			version = (int)v;
	}
	PQclear(res);
	return version;
}

/*
 * Creates one of migrate's own tables (schema_version, schema_functions)
 * when missing: checked first, so an existing one prints no NOTICE.
 * Called with the lock held.
 */
static int ensure_table(PGconn *conn, const char *table, const char *create, char *err, size_t errlen)
{
	int exists = table_exists(conn, table);
	if (exists < 0) {
		set_err(err, errlen, "cannot read %s: %s", table, PQerrorMessage(conn));
		return -1;
	}
	if (!exists && exec_simple(conn, create, PGRES_COMMAND_OK) < 0) {
		set_err(err, errlen, "cannot create %s: %s", table, PQerrorMessage(conn));
		return -1;
	}
	return 0;
}

/* 1 when some file of sql/functions/ is not recorded with its md5, 0 when all are, -1 on error. */
static int functions_changed(PGconn *conn, char *err, size_t errlen)
{
	for (size_t i = 0; i < sql_functions_count; i++) {
		const char *params[2] = { sql_functions[i].name, sql_functions[i].sql };
		PGresult *res = PQexecParams(conn,
			"SELECT md5($2) IS DISTINCT FROM (SELECT md5 FROM schema_functions WHERE name = $1)",
			2, NULL, params, NULL, NULL, 0);
		int rc = -1;
		if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		else
			set_err(err, errlen, "cannot read schema_functions: %s", PQerrorMessage(conn));
		PQclear(res);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Every file of sql/functions/, in order, and its md5, in one transaction.  0 / -1. */
static int apply_functions(PGconn *conn, char *err, size_t errlen)
{
	const char *name = "";
	if (exec_simple(conn, "BEGIN", PGRES_COMMAND_OK) < 0 ||
	    exec_simple(conn, "SET LOCAL client_min_messages = warning", PGRES_COMMAND_OK) < 0)
		goto fail;
	for (size_t i = 0; i < sql_functions_count; i++) {
		const struct sql_function *f = &sql_functions[i];
		name = f->name;
		PGresult *res = PQexec(conn, f->sql);
		ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		PQclear(res);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			goto fail;
		const char *params[2] = { f->name, f->sql };
		res = PQexecParams(conn,
			"INSERT INTO schema_functions (name, md5) VALUES ($1, md5($2))"
			" ON CONFLICT (name) DO UPDATE SET md5 = EXCLUDED.md5, applied_at = now()",
			2, NULL, params, NULL, NULL, 0);
		st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		PQclear(res);
		if (st != PGRES_COMMAND_OK)
			goto fail;
	}
	name = "";
	PGresult *res = PQexec(conn, "COMMIT");
	int committed = res && PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0;
	PQclear(res);
	if (committed)
		return 0;
fail:
	set_err(err, errlen, "sql/functions/%s%s failed: %s", name, name[0] ? ".sql" : "",
		PQerrorMessage(conn)[0] ? PQerrorMessage(conn) : "transaction rolled back");
	exec_simple(conn, "ROLLBACK", PGRES_COMMAND_OK);
	return -1;
}

/* One migration and its schema_version row in one transaction. */
/*
 * A migration that starts with MIGRATE_ONLINE runs outside a transaction,
 * one statement at a time (each ends with ";" at the end of a line, outside
 * a $$-quoted body): CREATE
 * INDEX CONCURRENTLY builds an index while traffic goes on.  Such a file must
 * be safe to run again from the start (DROP INDEX CONCURRENTLY IF EXISTS
 * first: a build cut short leaves an invalid index), since its version row
 * is written only once every statement succeeded.
 *
 * A statement whose result is one column named MIGRATE_RUN is a list of
 * statements made from the catalog (an index built CONCURRENTLY on each
 * partition of a table, which no function can do): each row's text is run
 * in turn, in the same way, before the file's next statement.
 */
#define MIGRATE_ONLINE "-- migrate: online\n"
#define MIGRATE_RUN "migrate_run"

/* Runs one statement of an online migration, and the statements it lists; 0 when all succeeded. */
static int run_online(PGconn *conn, const char *stmt)
{
	PGresult *res = PQexec(conn, stmt);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		PQclear(res);
		return -1;
	}
	int rc = 0;
	if (st == PGRES_TUPLES_OK && PQnfields(res) == 1 && strcmp(PQfname(res, 0), MIGRATE_RUN) == 0) {
		for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
			PGresult *r = PQexec(conn, PQgetvalue(res, i, 0));
			ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
			PQclear(r);
			if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY)
				rc = -1;
		}
	}
	PQclear(res);
	return rc;
}

/*
 * The ";" that ends the statement starting at s: the first one at the end of
 * a line outside a $$-quoted body (a DO block's statements end lines too).
 * NULL when the text ends first.
 */
static const char *statement_end(const char *s)
{
	int quoted = 0;
	for (const char *p = s; *p; p++) {
		if (p[0] == '$' && p[1] == '$') {
			quoted = !quoted;
			p++;
		} else if (!quoted && p[0] == ';' && p[1] == '\n') {
			return p;
		}
	}
	return NULL;
}

static int apply_online(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
	const char *s = m->sql + strlen(MIGRATE_ONLINE);
	if (exec_simple(conn, "SET client_min_messages = warning", PGRES_COMMAND_OK) < 0)
		goto fail;
	while (*s) {
		const char *end = statement_end(s);
		size_t len = end ? (size_t)(end - s) + 1 : strlen(s);
		char *stmt = strndup(s, len);
		if (!stmt) {
			set_err(err, errlen, "migration %s failed: out of memory", m->name);
			return -1;
		}
		int rc = run_online(conn, stmt);
		free(stmt);
		if (rc < 0)
			goto fail;
		s += len;
		while (*s == '\n')
			s++;
	}
	exec_simple(conn, "RESET client_min_messages", PGRES_COMMAND_OK);
	char version[16];
	snprintf(version, sizeof(version), "%d", m->version);
	const char *params[2] = { version, m->name };
	PGresult *res = PQexecParams(conn, "INSERT INTO schema_version (version, name) VALUES ($1::int, $2)",
				     2, NULL, params, NULL, NULL, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	PQclear(res);
	if (st == PGRES_COMMAND_OK)
		return 0;
fail:
	set_err(err, errlen, "migration %s failed: %s", m->name, PQerrorMessage(conn));
	exec_simple(conn, "RESET client_min_messages", PGRES_COMMAND_OK);
	return -1;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
	if (strncmp(m->sql, MIGRATE_ONLINE, strlen(MIGRATE_ONLINE)) == 0)
		return apply_online(conn, m, err, errlen);
	/* notices ("does not exist, skipping") are not the operator's business */
	if (exec_simple(conn, "BEGIN", PGRES_COMMAND_OK) < 0 ||
	    exec_simple(conn, "SET LOCAL client_min_messages = warning", PGRES_COMMAND_OK) < 0) {
		set_err(err, errlen, "migration %s failed: %s", m->name, PQerrorMessage(conn));
		exec_simple(conn, "ROLLBACK", PGRES_COMMAND_OK);
		return -1;
	}
	PGresult *res = PQexec(conn, m->sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	PQclear(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
		goto fail;

	char version[16];
	snprintf(version, sizeof(version), "%d", m->version);
	const char *params[2] = { version, m->name };
	res = PQexecParams(conn,
		"INSERT INTO schema_version (version, name) VALUES ($1::int, $2)",
		2, NULL, params, NULL, NULL, 0);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	PQclear(res);
	if (st != PGRES_COMMAND_OK)
		goto fail;

	/* A transaction that went bad answers COMMIT with "ROLLBACK". */
	res = PQexec(conn, "COMMIT");
	int committed = res && PQresultStatus(res) == PGRES_COMMAND_OK &&
			strcmp(PQcmdStatus(res), "COMMIT") == 0;
	PQclear(res);
	if (!committed) {
		set_err(err, errlen, "migration %s failed: %s", m->name,
			PQerrorMessage(conn)[0] ? PQerrorMessage(conn) : "transaction rolled back");
		return -1;
	}
	return 0;

fail:
	set_err(err, errlen, "migration %s failed: %s", m->name, PQerrorMessage(conn));
	exec_simple(conn, "ROLLBACK", PGRES_COMMAND_OK);
	return -1;
}

int migrate_apply(PGconn *conn, int *functions, char *err, size_t errlen)
{
	return migrate_apply_upto(conn, INT_MAX, functions, err, errlen);
}

int migrate_apply_upto(PGconn *conn, int upto, int *functions, char *err, size_t errlen)
{
	if (functions)
		*functions = 0;
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		set_err(err, errlen, "no database connection");
		return -1;
	}
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		set_err(err, errlen, "connection is inside a transaction");
		return -1;
	}
	if (exec_simple(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
			PGRES_TUPLES_OK) < 0) {
		set_err(err, errlen, "cannot take the migration lock: %s", PQerrorMessage(conn));
		return -1;
	}

	int applied = 0;
	if (ensure_table(conn, "schema_version",
			 "CREATE TABLE schema_version (version int PRIMARY KEY, name text NOT NULL,"
			 " applied_at timestamptz NOT NULL DEFAULT now())", err, errlen) < 0)
		goto fail;
	int current = migrate_current(conn);
	if (current < 0) {
		set_err(err, errlen, "cannot read schema_version: %s", PQerrorMessage(conn));
		goto fail;
	}
	int previous = 0;
	for (size_t i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		if (m->version <= previous) {
			set_err(err, errlen, "migration %s: version %d out of order", m->name,
				m->version);
			goto fail;
		}
		previous = m->version;
		if (m->version <= current || m->version > upto)
			continue;
		if (apply_one(conn, m, err, errlen) < 0)
			goto fail;
		applied++;
	}
	if (ensure_table(conn, "schema_functions",
			 "CREATE TABLE schema_functions (name text PRIMARY KEY, md5 text NOT NULL,"
			 " applied_at timestamptz NOT NULL DEFAULT now())", err, errlen) < 0)
		goto fail;
	int changed = functions_changed(conn, err, errlen);
	if (changed < 0 || (changed && apply_functions(conn, err, errlen) < 0))
		goto fail;
	if (changed && functions)
		*functions = (int)sql_functions_count;
	exec_simple(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", PGRES_TUPLES_OK);
	return applied;

fail:
	/* The lock is per session: if the connection is gone, so is the lock. */
	exec_simple(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", PGRES_TUPLES_OK);
	return -1;
}
