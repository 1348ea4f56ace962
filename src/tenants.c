/*
 * tenants.c: pushgatectl's commands for what an account may send
 * (sql/018_tenants.sql) and for its key:
 *
 *   account quota NAME DAILY MONTHLY          recipients per UTC day / month (0: none)
 *   account balance NAME add N | set N | off  prepaid recipients (off: postpaid)
 *   account senders NAME listed | any         approved senders only, or any not owned
 *   account sender NAME allow | revoke SENDER the operator's approval of a sender ID
 *   account urls NAME HOST[,HOST...] | any    hosts its callback_url / dlr-url may name
 *   account requests NAME N                   API requests a minute, on each node (0: none)
 *   account rotate NAME [GRACE_SECONDS]       a new key; the old one works for the grace
 *   account options NAME [night-consent yes|no] [auth-sms-first yes|no] [opt-out-number N|none]
 *                                             what it recorded with its users (ads at night,
 *                                             codes by SMS first, the number ads name for opt-out)
 *   account show NAME                         limits, usage, balance, senders
 *
 * Owns nothing beyond one command's run.  Arguments are checked before any
 * connection is made (called with conn == NULL for that).  Every change
 * NOTIFYs pushgate_accounts, so each pushgated forgets its cached keys of
 * the account at the commit.  A new key is printed on stdout before the
 * commit and committed only when that write succeeded, like account add.
 */
#include "tenants.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keys.h"
#include "util.h"

#define SENDER_MAX 20   /* what an SMPP source_addr or an API "from" can carry */

static int usage(const char *msg)
{
	fprintf(stderr, "pushgatectl: account: %s\n"
		"usage: pushgatectl account quota NAME DAILY MONTHLY\n"
		"       pushgatectl account balance NAME add N | set N | off\n"
		"       pushgatectl account senders NAME listed | any\n"
		"       pushgatectl account sender NAME allow | revoke SENDER\n"
		"       pushgatectl account urls NAME HOST[,HOST...] | any\n"
		"       pushgatectl account requests NAME N\n"
		"       pushgatectl account rotate NAME [GRACE_SECONDS]\n"
		"       pushgatectl account options NAME [night-consent yes|no] [auth-sms-first yes|no]\n"
		"                                        [opt-out-number NUMBER|none]\n"
		"       pushgatectl account show NAME\n", msg);
	return 2;
}

int tenants_handles(const char *sub)
{
	static const char *const subs[] = { "quota", "balance", "senders", "sender", "urls", "requests", "rotate",
					    "show", "options" };
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(sub, subs[i]))
			return 1;
	return 0;
}

static int count_ok(const char *s, long long max)
{
	long v;
	return util_parse_long(s, 0, max, &v) == 0;
}

static int sender_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > SENDER_MAX)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/*
 * "a.example,.example.org,[2001:db8::1]" -> "{a.example,.example.org,[2001:db8::1]}": host names
 * (a leading dot: any host under it) or bracketed IPv6 literals, at most 32.  0 / -1.
 */
static int hosts_array(const char *list, char *out, size_t cap)
{
	size_t o = 0, n = 0, len = 0;
	out[o++] = '{';
	for (const char *p = list;; p++) {
		if (*p == ',' || *p == '\0') {
			if (len == 0 || len > 253 || ++n > 32)
				return -1;
			len = 0;
			if (*p == '\0')
				break;
		} else if (!(isalnum((unsigned char)*p) || strchr(".-[]:", *p))) {
			return -1;
		} else {
			len++;
		}
		if (o + 2 >= cap)
			return -1;
		out[o++] = (char)tolower((unsigned char)*p);
	}
	out[o++] = '}';
	out[o] = '\0';
	return 0;
}

/* Runs sql (its rows: one per account changed) and says what happened.  0 / 1. */
static int run(PGconn *conn, const char *sql, int n, const char *const *params, const char *name, const char *done)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: account: %s", PQerrorMessage(conn));
		PQclear(r);
		return 1;
	}
	int found = PQntuples(r) > 0;
	PQclear(r);
	if (!found) {
		fprintf(stderr, "pushgatectl: account: no account '%.64s'\n", name);
		return 1;
	}
	fprintf(stderr, "%s\n", done);
	return 0;
}

/* The accounts statement every change goes through: $1 is the name, never the system account. */
#define CHANGE(set) \
	"WITH u AS (UPDATE accounts SET " set " WHERE name = $1 AND role <> 'system' RETURNING id)" \
	" SELECT id, pg_notify('pushgate_accounts', id || ':changed') FROM u"

static int show(PGconn *conn, const char *name)
{
	const char *params[1] = { name };
	PGresult *r = PQexecParams(conn,
		"SELECT a.id, a.name, CASE WHEN a.disabled THEN 'yes' ELSE 'no' END, a.rate_limit, a.request_limit,"
		"  a.daily_quota,"
		"  a.monthly_quota, coalesce(a.balance::text, 'postpaid'),"
		"  coalesce((SELECT u.recipients FROM account_usage u WHERE u.account_id = a.id"
		"            AND u.day = (now() AT TIME ZONE 'UTC')::date), 0),"
		"  coalesce((SELECT sum(u.recipients) FROM account_usage u WHERE u.account_id = a.id"
		"            AND u.day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0),"
		"  CASE WHEN a.senders_listed THEN 'listed' ELSE 'any' END,"
		"  coalesce((SELECT string_agg(s.sender, ' ' ORDER BY s.sender) FROM account_senders s"
		"            WHERE s.account_id = a.id), '-'),"
		"  coalesce(array_to_string(a.url_hosts, ' '), 'any'),"
		"  coalesce(to_char(a.prev_key_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
		"  CASE WHEN a.ad_night_consent THEN 'yes' ELSE 'no' END, CASE WHEN a.auth_sms_first THEN 'yes' ELSE 'no' END,"
		"  coalesce(a.opt_out_number, '-'), a.opt_out_policy"
		" FROM accounts a WHERE a.name = $1",
		1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: account show: %s", PQerrorMessage(conn));
		PQclear(r);
		return 1;
	}
	if (PQntuples(r) != 1) {
		fprintf(stderr, "pushgatectl: account: no account '%.64s'\n", name);
		PQclear(r);
		return 1;
	}
	static const char *const label[] = { "id", "name", "disabled", "rate_limit_per_minute",
					     "requests_per_minute_per_node", "daily_quota",
					     "monthly_quota", "balance", "used_today", "used_this_month", "senders",
					     "approved_senders", "url_hosts", "previous_key_until", "night_consent",
					     "auth_sms_first", "opt_out_number", "opt_out_policy" };
	for (int i = 0; i < PQnfields(r); i++)
		printf("%-22s %s\n", label[i], PQgetvalue(r, 0, i));
	PQclear(r);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* A new key; the old one keeps working for grace seconds (0: stops at the commit). */
static int rotate(PGconn *conn, const char *name, const char *grace)
{
	char key[KEYS_API_KEY_LEN + 1], hash[2 + 2 * KEYS_HASH_LEN + 1];
	if (keys_generate(key, sizeof(key)) < 0) {
		fprintf(stderr, "pushgatectl: account rotate: no randomness available\n");
		return 1;
	}
	keys_hash_bytea(key, strlen(key), hash, sizeof(hash));
	int rc = 1;
	PGresult *r = PQexec(conn, "BEGIN");
	PQclear(r);
	const char *params[3] = { name, hash, grace };
	r = PQexecParams(conn,
		CHANGE("prev_key_hash = CASE WHEN $3::float8 > 0 THEN api_key_hash END,"
		       " prev_key_until = CASE WHEN $3::float8 > 0 THEN now() + make_interval(secs => $3::float8) END,"
		       " api_key_hash = $2::bytea"),
		3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: account rotate: %s", PQerrorMessage(conn));
	} else if (PQntuples(r) != 1) {
		fprintf(stderr, "pushgatectl: account: no account '%.64s'\n", name);
	} else {
		printf("%s\n", key);
		rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
	}
	PQclear(r);
	r = PQexec(conn, rc == 0 ? "COMMIT" : "ROLLBACK");
	if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pushgatectl: account rotate: not committed: %s", PQerrorMessage(conn));
		rc = 1;
	}
	PQclear(r);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == 0)
		fprintf(stderr, "account %.64s has a new key (shown once); the old one works for %s s\n", name, grace);
	return rc;
}

int tenants_ctl(PGconn *conn, int argc, char **argv)
{
	/* argv[0] is the subcommand, argv[1] the account's name */
	if (argc < 2)
		return usage("a NAME is needed");
	const char *sub = argv[0], *name = argv[1];
	if (!strcmp(sub, "show")) {
		if (argc != 2)
			return usage("show takes one NAME");
		return conn ? show(conn, name) : 0;
	}
	if (!strcmp(sub, "quota")) {
		if (argc != 4 || !count_ok(argv[2], 2000000000L) || !count_ok(argv[3], 2000000000L))
			return usage("quota needs NAME, recipients a UTC day and a UTC month (0: none)");
		if (!conn)
			return 0;
		const char *p[3] = { name, argv[2], argv[3] };
		return run(conn, CHANGE("daily_quota = $2::bigint, monthly_quota = $3::bigint"), 3, p, name, "quota set");
	}
	if (!strcmp(sub, "balance")) {
		int off = argc == 3 && !strcmp(argv[2], "off");
		int add = argc == 4 && !strcmp(argv[2], "add"), set = argc == 4 && !strcmp(argv[2], "set");
		if (!off && !((add || set) && count_ok(argv[3], 2000000000L)))
			return usage("balance needs NAME and add N, set N or off");
		if (!conn)
			return 0;
		const char *p[2] = { name, off ? NULL : argv[3] };
		if (off)
			return run(conn, CHANGE("balance = NULL"), 1, p, name, "balance off: postpaid");
		return run(conn, add ? CHANGE("balance = coalesce(balance, 0) + $2::bigint") : CHANGE("balance = $2::bigint"),
			   2, p, name, add ? "balance credited" : "balance set");
	}
	if (!strcmp(sub, "senders")) {
		if (argc != 3 || (strcmp(argv[2], "listed") && strcmp(argv[2], "any")))
			return usage("senders needs NAME and listed or any");
		if (!conn)
			return 0;
		const char *p[2] = { name, !strcmp(argv[2], "listed") ? "t" : "f" };
		return run(conn, CHANGE("senders_listed = $2::boolean"), 2, p, name, "sender policy set");
	}
	if (!strcmp(sub, "sender")) {
		if (argc != 4 || (strcmp(argv[2], "allow") && strcmp(argv[2], "revoke")) || !sender_ok(argv[3]))
			return usage("sender needs NAME, allow or revoke, and a SENDER of 1-20 printable characters");
		if (!conn)
			return 0;
		const char *p[2] = { name, argv[3] };
		if (!strcmp(argv[2], "allow"))
			return run(conn,
				   "WITH a AS (SELECT id FROM accounts WHERE name = $1 AND role <> 'system'),"
				   " i AS (INSERT INTO account_senders (account_id, sender) SELECT id, $2 FROM a"
				   "       ON CONFLICT DO NOTHING)"
				   " SELECT id, pg_notify('pushgate_accounts', id || ':changed') FROM a",
				   2, p, name, "sender approved");
		return run(conn,
			   "WITH a AS (SELECT id FROM accounts WHERE name = $1 AND role <> 'system'),"
			   " d AS (DELETE FROM account_senders s USING a WHERE s.account_id = a.id AND s.sender = $2)"
			   " SELECT id, pg_notify('pushgate_accounts', id || ':changed') FROM a",
			   2, p, name, "sender approval revoked");
	}
	if (!strcmp(sub, "requests")) {
		if (argc != 3 || !count_ok(argv[2], 100000000L))
			return usage("requests needs NAME and the API requests a minute it may make on each node (0: none)");
		if (!conn)
			return 0;
		const char *p[2] = { name, argv[2] };
		return run(conn, CHANGE("request_limit = $2::int"), 2, p, name, "request rate set");
	}
	if (!strcmp(sub, "urls")) {
		char arr[9000];
		int any = argc == 3 && !strcmp(argv[2], "any");
		if (argc != 3 || (!any && hosts_array(argv[2], arr, sizeof(arr)) < 0))
			return usage("urls needs NAME and any, or up to 32 comma-separated hosts (.domain: any host under it)");
		if (!conn)
			return 0;
		const char *p[2] = { name, any ? NULL : arr };
		return run(conn, CHANGE("url_hosts = $2::text[]"), 2, p, name,
			   any ? "urls: any host the outbound policy allows" : "urls set");
	}
	if (!strcmp(sub, "options")) {
		/* each given option set; the others kept (NULL) */
		const char *p[4] = { name, NULL, NULL, NULL };
		char number[21];
		int given = 0;
		for (int i = 2; i + 1 < argc; i += 2) {
			const char *k = argv[i], *v = argv[i + 1];
			int yes = !strcmp(v, "yes"), no = !strcmp(v, "no");
			int slot = !strcmp(k, "night-consent") ? 1 : !strcmp(k, "auth-sms-first") ? 2
				   : !strcmp(k, "opt-out-number") ? 3 : 0;
			if (!slot || p[slot])
				return usage("options: night-consent, auth-sms-first, opt-out-number, each once");
			if (slot < 3 && !yes && !no)
				return usage("options: night-consent and auth-sms-first take yes or no");
			if (slot == 3 && strcmp(v, "none") && (strlen(v) > 20 || strspn(v, "0123456789") != strlen(v)
							       || strlen(v) < 3))
				return usage("options: opt-out-number takes 3-20 digits (no dashes), or none");
			if (slot == 3)
				util_strlcpy(number, v, sizeof(number));
			p[slot] = slot < 3 ? (yes ? "t" : "f") : !strcmp(v, "none") ? "" : number;
			given++;
		}
		if (!given || (argc - 2) % 2)
			return usage("options needs NAME and at least one OPTION VALUE pair");
		if (!conn)
			return 0;
		return run(conn, CHANGE("ad_night_consent = coalesce($2::boolean, ad_night_consent),"
					" auth_sms_first = coalesce($3::boolean, auth_sms_first),"
					" opt_out_number = CASE WHEN $4::text IS NULL THEN opt_out_number"
					"   ELSE NULLIF($4::text, '') END"),
			   4, p, name, "options set");
	}
	if (!strcmp(sub, "rotate")) {
		if (argc > 3 || (argc == 3 && !count_ok(argv[2], 90L * 86400)))
			return usage("rotate needs NAME and at most GRACE_SECONDS (0 to 7776000; default 86400)");
		return conn ? rotate(conn, name, argc == 3 ? argv[2] : "86400") : 0;
	}
	return usage("unknown subcommand");
}
