/*
 * ctl_messages.c: `pushgatectl messages`, what happened to a number, a
 * sender or an account over a time range: one line per recipient, newest
 * first, across every account unless --account names one (the operator's
 * view; GET /v1/messages is a customer's, of its own account only).
 * `pushgatectl status MESSAGE_ID` then shows one message's full history.
 * Arguments are checked (the same rules as the API's) before connecting;
 * the statement is planned for the filters given (a number: its final
 * recipients on recipients_msisdn and its pushes in flight; an SMS in
 * flight shows once final).  Never writes.
 */
#include "ctl_messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"
#include "stmts.h"
#include "util.h"

static int usage(const char *msg)
{
	fprintf(stderr, "pushgatectl: messages: %s\n"
		"usage: pushgatectl messages [--to NUMBER] [--from SENDER] [--account NAME] [--since TIME]\n"
		"                            [--until TIME] [--state STATE] [--limit N]\n", msg);
	return 2;
}

int ctl_messages(PGconn *conn, int argc, char **argv)
{
	static const char *const names[] = { "--to", "--from", "--account", "--since", "--until", "--state", "--limit" };
	const char *val[7] = { 0 };
	char to[21], since[STMTS_SINCE_MAX] = "-infinity", until[STMTS_SINCE_MAX] = "infinity", limit[16] = "50";
	for (int i = 1; i < argc; i += 2) {
		size_t k;
		for (k = 0; k < 7 && strcmp(argv[i], names[k]); k++)
			;
		if (k == 7)
			return usage("unknown option (--to, --from, --account, --since, --until, --state, --limit)");
		if (i + 1 >= argc || val[k])
			return usage("each option takes one value, once");
		val[k] = argv[i + 1];
	}
	long n;
	if (val[0] && util_msisdn(val[0], to) < 0)
		return usage("--to must be a phone number (digits, E.164 without +)");
	if (val[1] && (!util_valid_sender(val[1]) || strlen(val[1]) > 20))
		return usage("--from must be a sender (1 to 20 printable characters)");
	if (val[2] && (!val[2][0] || strlen(val[2]) > 128))
		return usage("--account must be an account name");
	if (val[3] && stmts_parse_since(val[3], since, sizeof(since)) < 0)
		return usage("--since must be YYYY-MM-DD or an ISO 8601 time");
	if (val[4] && stmts_parse_since(val[4], until, sizeof(until)) < 0)
		return usage("--until must be YYYY-MM-DD or an ISO 8601 time");
	if (val[5] && !search_state_known(val[5]))
		return usage("--state must be a recipient state (pushgatectl states lists them)");
	if (val[6]) {
		if (util_parse_long(val[6], 1, 100000, &n) < 0)
			return usage("--limit must be 1 to 100000");
		snprintf(limit, sizeof(limit), "%ld", n);
	}
	if (!conn)
		return 0;

	if (val[2]) {
		const char *p[1] = { val[2] };
		PGresult *r = PQexecParams(conn, "SELECT 1 FROM accounts WHERE name = $1", 1, NULL, p, NULL, NULL, 0);
		int found = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
		int failed = !r || PQresultStatus(r) != PGRES_TUPLES_OK;
		PQclear(r);
		if (failed) {
			fprintf(stderr, "pushgatectl: messages: %s", PQerrorMessage(conn));
			return 1;
		}
		if (!found) {
			fprintf(stderr, "pushgatectl: messages: no account named '%s'\n", val[2]);
			return 1;
		}
	}
	/* unnamed: planned with these values, so the filters given pick the index */
	const char *params[7] = { val[0] ? to : NULL, val[1], val[2], since, until, val[5], limit };
	PGresult *r = PQexecParams(conn,
		"SELECT r.id, r.message_id, a.name, r.msisdn, m.sender, r.state, coalesce(r.channel, '-'),"
		"  coalesce(r.route, '-'), coalesce(r.error_code::text, '-'),"
		"  " STMTS_ISO_TS("r.created_at")
		" FROM recipients r JOIN messages m ON m.id = r.message_id JOIN accounts a ON a.id = r.account_id"
		" WHERE ($1::text IS NULL OR (r.msisdn = $1 AND (r.final_at IS NOT NULL OR r.state = 'PUSH_SENT')))"
		"   AND ($2::text IS NULL OR m.sender = $2)"
		"   AND ($3::text IS NULL OR a.name = $3)"
		"   AND r.created_at >= $4::timestamptz AND r.created_at < $5::timestamptz"
		"   AND ($6::text IS NULL OR r.state = $6)"
		" ORDER BY r.id DESC LIMIT $7::int",
		7, NULL, params, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: messages: %s", PQerrorMessage(conn));
		PQclear(r);
		return 1;
	}
	static const char *const head[] = { "RECIPIENT", "MESSAGE", "ACCOUNT", "TO", "FROM", "STATE", "CHANNEL",
					    "ROUTE", "ERROR", "CREATED_AT" };
	int w[10];
	for (int c = 0; c < 10; c++) {
		w[c] = (int)strlen(head[c]);
		for (int i = 0; i < PQntuples(r); i++)
			if (PQgetlength(r, i, c) > w[c])
				w[c] = PQgetlength(r, i, c) > 40 ? 40 : PQgetlength(r, i, c);
	}
	for (int c = 0; c < 10; c++)
		printf("%-*s%s", w[c], head[c], c < 9 ? "  " : "\n");
	for (int i = 0; i < PQntuples(r); i++)
		for (int c = 0; c < 10; c++)
			printf("%-*.*s%s", w[c], w[c], PQgetvalue(r, i, c), c < 9 ? "  " : "\n");
	PQclear(r);
	return fflush(stdout) == 0 ? 0 : 1;
}
