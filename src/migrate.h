/*
 * migrate.h: schema migrations compiled into the binaries (sql/NNN_*.sql).
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

/*
 * Applies every migration newer than the database's schema_version, each in
 * its own transaction, under an advisory lock so two processes can't race.
 * Re-running is a no-op.  Returns the number applied, or -1 with err set.
 */
int migrate_apply(PGconn *conn, char *err, size_t errlen);

/* Highest version applied, 0 for an empty database, -1 on error. */
int migrate_current(PGconn *conn);

#endif
