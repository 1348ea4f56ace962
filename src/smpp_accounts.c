/*
 * smpp_accounts.c: pushgatectl smpp-account: the SMPP server's accounts.
 *
 *   smpp-account add NAME --system-id ID [--password-file FILE|-] [--binds N]
 *       [--window N] [--tps N] [--allowed-sources CIDR,...] [--mo-addresses A,...]
 *   smpp-account password SYSTEM_ID [--password-file FILE|-]
 *   smpp-account disable SYSTEM_ID | smpp-account enable SYSTEM_ID
 *   smpp-account list
 *
 * A new password counts for the next bind (binds open stay); a disabled
 * login's binds are unbound on every node (NOTIFY pushgate_accounts).
 * Owns nothing beyond one command's run.  The password is read from a file
 * or stdin (never from the command line, which every user of the machine
 * can read), hashed here (passwd.c) and never stored or printed, except a
 * generated one, printed once.  Arguments are checked before any
 * connection is made (called with conn == NULL for that); the password is
 * read in the second call; the database checks the CIDRs.
 */
#include "smpp_accounts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "passwd.h"
#include "util.h"

static int usage(const char *msg)
{
	fprintf(stderr, "pushgatectl: smpp-account: %s\n"
		"usage: pushgatectl smpp-account add NAME --system-id ID [--password-file FILE|-] [--binds N] [--window N]\n"
		"                                 [--tps N] [--allowed-sources CIDR,...] [--mo-addresses A,...]\n"
		"       pushgatectl smpp-account password SYSTEM_ID [--password-file FILE|-]\n"
		"       pushgatectl smpp-account disable SYSTEM_ID | enable SYSTEM_ID\n"
		"       pushgatectl smpp-account list\n", msg);
	return 2;
}

static int printable(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n < 1 || n > max)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* "a,b,c" -> "{a,b,c}" (items printable, no quotes or braces); 0 / -1. */
static int to_array(const char *list, char *out, size_t cap)
{
	size_t o = 0;
	out[o++] = '{';
	for (const char *p = list; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p > 0x7e || strchr("{}\"\\", *p) || o + 2 >= cap)
			return -1;
		out[o++] = *p;
	}
	out[o++] = '}';
	out[o] = '\0';
	return o > 2 ? 0 : -1;
}

static int list(PGconn *conn)
{
	PGresult *r = PQexec(conn, "SELECT s.system_id, a.name, s.max_binds, s.window_size, s.tps,"
				   " coalesce(s.allowed_sources::text, 'any'), coalesce(s.mo_addresses::text, '-'),"
				   " CASE WHEN s.disabled THEN 'disabled' ELSE 'enabled' END"
				   " FROM smpp_accounts s JOIN accounts a ON a.id = s.account_id ORDER BY s.id");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: smpp-account list: %s", PQerrorMessage(conn));
		PQclear(r);
		return 1;
	}
	printf("%-16s %-20s %5s %6s %8s %-24s %-16s %s\n", "system_id", "account", "binds", "window", "tps",
	       "allowed_sources", "mo_addresses", "state");
	for (int i = 0; i < PQntuples(r); i++)
		printf("%-16s %-20s %5s %6s %8s %-24s %-16s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		       PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
		       PQgetvalue(r, i, 6), PQgetvalue(r, i, 7));
	PQclear(r);
	return 0;
}

/*
 * The password: the first line of password_file ("-": stdin), or a new one
 * (generated = 1, to be printed once).  Its hash in hash.  0, 1 (error
 * said), or 2 (usage).
 */
static int password_hash(const char *password_file, char *hash, size_t hashlen, char generated[9], int *gen)
{
	char given[64];
	const char *password;
	*gen = 0;
	if (password_file) {
		/* its first line, without the line end */
		FILE *f = strcmp(password_file, "-") == 0 ? stdin : fopen(password_file, "r");
		if (!f) {
			fprintf(stderr, "pushgatectl: smpp-account: cannot read the password file\n");
			return 1;
		}
		int got = fgets(given, sizeof(given), f) != NULL;
		if (f != stdin)
			fclose(f);
		given[strcspn(given, "\r\n")] = '\0';
		if (!got || !printable(given, 8)) {
			OPENSSL_cleanse(given, sizeof(given));
			return usage("the password must be 1 to 8 printable characters (SMPP 3.4 allows no more)");
		}
		password = given;
	} else {
		static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
		unsigned char rnd[8];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			fprintf(stderr, "pushgatectl: smpp-account: no random bytes\n");
			return 1;
		}
		for (int i = 0; i < 8; i++)
			generated[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
		generated[8] = '\0';
		password = generated;
		*gen = 1;
	}
	int rc = smpp_passwd_hash(password, SMPP_PASSWD_ITERATIONS, hash, hashlen) < 0;
	OPENSSL_cleanse(given, sizeof(given));
	if (rc)
		fprintf(stderr, "pushgatectl: smpp-account: cannot hash the password\n");
	return rc;
}

/* password, disable, enable: one login by its system_id. */
static int login_ctl(PGconn *conn, int argc, char **argv)
{
	const char *sub = argv[1], *system_id = argv[2], *password_file = NULL;
	int pw = !strcmp(sub, "password");
	if (!printable(system_id, 15))
		return usage("SYSTEM_ID must be 1 to 15 printable characters");
	if (pw && argc == 5 && !strcmp(argv[3], "--password-file"))
		password_file = argv[4];
	else if (argc != 3)
		return usage(pw ? "password takes SYSTEM_ID [--password-file FILE|-]" : "disable and enable take SYSTEM_ID");
	if (!conn)
		return 0;
	char hash[SMPP_PASSWD_HASH_MAX], generated[9];
	int gen = 0;
	const char *params[2] = { system_id, NULL };
	const char *sql;
	if (pw) {
		int rc = password_hash(password_file, hash, sizeof(hash), generated, &gen);
		if (rc)
			return rc;
		params[1] = hash;
		sql = "UPDATE smpp_accounts SET password_hash = $2 WHERE system_id = $1 RETURNING id, account_id";
	} else if (!strcmp(sub, "disable")) {
		sql = "WITH u AS (UPDATE smpp_accounts SET disabled = true WHERE system_id = $1 RETURNING id, account_id)"
		      " SELECT id, pg_notify('pushgate_accounts', account_id || ':login-disabled:' || id) FROM u";
	} else {
		sql = "UPDATE smpp_accounts SET disabled = false WHERE system_id = $1 RETURNING id, account_id";
	}
	PGresult *r = PQexecParams(conn, sql, pw ? 2 : 1, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: smpp-account %s: %s", sub, PQerrorMessage(conn));
		rc = 1;
	} else if (PQntuples(r) < 1) {
		fprintf(stderr, "pushgatectl: smpp-account %s: no login with system_id '%s'\n", sub, system_id);
		rc = 1;
	} else if (gen) {
		printf("%s\n", generated);
	} else {
		fprintf(stderr, "%s %s\n", system_id, pw ? "has a new password (for its next bind)" :
			!strcmp(sub, "disable") ? "disabled: its binds are unbound on every node" : "enabled");
	}
	PQclear(r);
	OPENSSL_cleanse(generated, sizeof(generated));
	return rc;
}

int smpp_accounts_ctl(PGconn *conn, int argc, char **argv)
{
	if (argc >= 3 && (!strcmp(argv[1], "password") || !strcmp(argv[1], "disable") || !strcmp(argv[1], "enable")))
		return login_ctl(conn, argc, argv);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return conn ? list(conn) : 0;
	if (argc < 3 || strcmp(argv[1], "add") != 0)
		return usage("needs a subcommand: add NAME --system-id ID ... | password | disable | enable | list");
	const char *name = argv[2], *system_id = NULL, *password_file = NULL, *sources = NULL,
		   *mo = NULL;
	long binds = 4, window = 100;
	double tps = 0;
	for (int i = 3; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage("every option needs a value");
		if (!strcmp(k, "--system-id"))
			system_id = v;
		else if (!strcmp(k, "--password"))
			return usage("a password is never taken on the command line (other users see it):"
				     " --password-file FILE, or - to read it from stdin");
		else if (!strcmp(k, "--password-file"))
			password_file = v;
		else if (!strcmp(k, "--binds")) {
			if (util_parse_long(v, 1, 1000, &binds) < 0)
				return usage("--binds must be 1 to 1000");
		} else if (!strcmp(k, "--window")) {
			if (util_parse_long(v, 1, 10000, &window) < 0)
				return usage("--window must be 1 to 10000");
		} else if (!strcmp(k, "--tps")) {
			if (util_parse_double(v, 0, 1000000, &tps) < 0)
				return usage("--tps must be 0 (no limit) to 1000000");
		} else if (!strcmp(k, "--allowed-sources"))
			sources = v;
		else if (!strcmp(k, "--mo-addresses"))
			mo = v;
		else
			return usage("unknown option");
	}
	if (!system_id || !printable(system_id, 15))
		return usage("--system-id must be 1 to 15 printable characters");
	char src_arr[1024], mo_arr[1024];
	if (sources && to_array(sources, src_arr, sizeof(src_arr)) < 0)
		return usage("--allowed-sources must be a comma-separated list of CIDRs");
	if (mo && to_array(mo, mo_arr, sizeof(mo_arr)) < 0)
		return usage("--mo-addresses must be a comma-separated list of numbers or short codes");
	if (!conn)
		return 0;
	char hash[SMPP_PASSWD_HASH_MAX], generated[9], p_binds[16], p_window[16], p_tps[32];
	int gen = 0, hrc = password_hash(password_file, hash, sizeof(hash), generated, &gen);
	if (hrc)
		return hrc;
	snprintf(p_binds, sizeof(p_binds), "%ld", binds);
	snprintf(p_window, sizeof(p_window), "%ld", window);
	snprintf(p_tps, sizeof(p_tps), "%g", tps);
	const char *params[8] = { name, system_id, hash, p_binds, p_window, p_tps, sources ? src_arr : NULL,
				  mo ? mo_arr : NULL };
	PGresult *r = PQexecParams(conn,
				   "INSERT INTO smpp_accounts (account_id, system_id, password_hash, max_binds, window_size,"
				   " tps, allowed_sources, mo_addresses)"
				   " SELECT id, $2, $3, $4::int, $5::int, $6::float8, $7::cidr[], $8::text[]"
				   " FROM accounts WHERE name = $1 RETURNING id",
				   8, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pushgatectl: smpp-account add: %s", PQerrorMessage(conn));
		rc = 1;
	} else if (PQntuples(r) != 1) {
		fprintf(stderr, "pushgatectl: smpp-account add: no account named '%s' (pushgatectl account add)\n", name);
		rc = 1;
	} else if (gen) {
		printf("%s\n", generated);
	}
	PQclear(r);
	OPENSSL_cleanse(generated, sizeof(generated));
	return rc;
}
