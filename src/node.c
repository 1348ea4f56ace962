/*
 * node.c: this pushgated's name among the nodes that share a database, and
 * what the name is worth after a crash.
 *
 * Leases record the name of the node that holds them (recipients while
 * SMS_SUBMITTED, webhook_outbox, smpp_outbox).  The name is stable across
 * restarts (node_default_name), and a session advisory lock on it, held by
 * a connection of this module's own for the process's life, makes sure no
 * two live processes hold it at once.  So whatever the database still
 * shows leased under the name when a process has just taken the lock was
 * leased by a predecessor that is gone (kill -9, power cut): node_take_back
 * returns it at once, instead of leaving it to wait for the lease's expiry
 * (a minute for an SMS).  Each SMS taken back is queued again as a
 * recorded resend (events.kind 'resend'): the carrier may have it already.
 * Leases of other nodes still wait for their expiry (router_stmt_sweep).
 *
 * Owns: the lock's connection (blocking libpq: used at start, and when the
 * database came back, both moments when it answers at once).
 */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "router.h"
#include "server.h"
#include "store.h"
#include "util.h"
#include "webhook.h"

/* pg_try_advisory_lock(key1, key2): key1 says "a pushgated node name", key2 is its hash */
#define NODE_LOCK_CLASS "1886745448"

struct node {
	char    *conninfo;
	char     name[96];
	PGconn  *conn;   /* holds the lock while CONNECTION_OK */
};

/* The port of "ADDR:PORT" when fixed (not 0), else 0. */
static long listen_port(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	if (!colon || !colon[1])
		return 0;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	return *end == '\0' && p > 0 && p < 65536 ? p : 0;
}

void node_default_name(const struct config *cfg, char *out, size_t cap, int *stable)
{
	if (cfg->node_name[0]) {
		util_strlcpy(out, cfg->node_name, cap);
		*stable = 1;
		return;
	}
	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	const char *const listeners[] = { cfg->http_listen, cfg->https_listen, cfg->smpps_listen,
					  cfg->smpps_tls_listen };
	for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]); i++) {
		long p = listen_port(listeners[i]);
		if (p) {
			snprintf(out, cap, "%s:%ld", host, p);
			*stable = 1;
			return;
		}
	}
	snprintf(out, cap, "%s:pid%ld", host, (long)getpid());
	*stable = 0;
}

struct node *node_new(const char *conninfo, const char *name)
{
	struct node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->conninfo = strdup(conninfo);
	if (!n->conninfo) {
		free(n);
		return NULL;
	}
	util_strlcpy(n->name, name, sizeof(n->name));
	return n;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	if (n->conn)
		PQfinish(n->conn);   /* the lock goes with the session */
	free(n->conninfo);
	free(n);
}

static void one_line(const char *msg, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", msg ? msg : "");
	err[strcspn(err, "\n")] = '\0';
}

int node_claim(struct node *n, char *err, size_t errlen)
{
	if (n->conn && PQstatus(n->conn) == CONNECTION_OK)
		return 1;
	if (n->conn)
		PQfinish(n->conn);
	/* a hung server must not hold the loop for long: a bound the conninfo may override */
	const char *keys[] = { "connect_timeout", "dbname", "fallback_application_name", NULL };
	const char *vals[] = { "5", n->conninfo, "pushgated-node", NULL };
	n->conn = PQconnectdbParams(keys, vals, 1);
	if (!n->conn || PQstatus(n->conn) != CONNECTION_OK) {
		one_line(n->conn ? PQerrorMessage(n->conn) : "out of memory", err, errlen);
		PQfinish(n->conn);
		n->conn = NULL;
		return -1;
	}
	/*
	 * If this host dies without closing the socket, the server must still
	 * end the session (and the lock) soon, or the restarted node waits for
	 * TCP's two hours: keepalives of this session only, from the server's side.
	 */
	PQclear(PQexec(n->conn, "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5;"
			   " SET tcp_keepalives_count = 3"));
	const char *params[1] = { n->name };
	PGresult *r = PQexecParams(n->conn, "SELECT pg_try_advisory_lock(" NODE_LOCK_CLASS ", hashtext($1))",
				   1, NULL, params, NULL, NULL, 0);
	int rc;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		one_line(PQerrorMessage(n->conn), err, errlen);
		rc = -1;
	} else if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		rc = 1;
	} else {
		snprintf(err, errlen, "node name %s is held by another live pushgated (set [server] node_name)",
			 n->name);
		rc = 0;
	}
	PQclear(r);
	if (rc != 1) {
		PQfinish(n->conn);
		n->conn = NULL;
	}
	return rc;
}

int node_holds(struct node *n)
{
	if (!n->conn)
		return 0;
	if (PQstatus(n->conn) == CONNECTION_OK && PQconsumeInput(n->conn)) {
		PGnotify *x;
		while ((x = PQnotifies(n->conn)) != NULL)
			PQfreemem(x);
		if (PQstatus(n->conn) == CONNECTION_OK)
			return 1;
	}
	PQfinish(n->conn);
	n->conn = NULL;
	return 0;
}

/* One statement of the take-back: its first column, or -1 with err. */
static long long run_count(PGconn *conn, const struct store_stmt *st, const char *name, char *err, size_t errlen)
{
	const char *params[1] = { name };
	PGresult *r = PQexecParams(conn, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
	long long v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		snprintf(err, errlen, "%s: %s", st->name, PQerrorMessage(conn)), err[strcspn(err, "\n")] = '\0';
	PQclear(r);
	return v;
}

int node_take_back(struct node *n, struct node_taken *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!n->conn) {
		snprintf(err, errlen, "the node name is not held");
		return -1;
	}
	PGresult *r = PQexec(n->conn, "BEGIN");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		one_line(PQerrorMessage(n->conn), err, errlen);
		return -1;
	}
	out->sms = run_count(n->conn, &router_stmt_take_back, n->name, err, errlen);
	if (out->sms >= 0)
		out->webhooks = run_count(n->conn, &webhook_stmt_take_back, n->name, err, errlen);
	if (out->sms >= 0 && out->webhooks >= 0)
		out->outbox = run_count(n->conn, &smpp_server_stmt_take_back, n->name, err, errlen);
	ok = out->sms >= 0 && out->webhooks >= 0 && out->outbox >= 0;
	r = PQexec(n->conn, ok ? "COMMIT" : "ROLLBACK");
	if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
		one_line(PQerrorMessage(n->conn), err, errlen);
		ok = 0;
	}
	PQclear(r);
	return ok ? 0 : -1;
}
