/*
 * pushgatectl.c: the operator's command-line tool.  Applies schema
 * migrations, creates and lists accounts, shows one message with its
 * recipients and their events, prints delivery reports (sql/functions/report_*.sql),
 * loads CSV campaigns (send: streamed in chunks through the intake queue,
 * never the whole file in memory).
 *
 * Owns: one blocking libpq connection for the length of one command (and,
 * for send, the intake queue's store on a private loop).
 * Account limits, senders and key rotation are tenants.c's.
 * Output contract: results on stdout (account add prints the new key alone,
 * so scripts can capture it), everything else on stderr.  Exit 0 on
 * success, 1 on a runtime error, 2 on a usage error.
 *
 * Never builds SQL from its arguments (every query is PQexecParams), never
 * prints or stores an API key other than the one line of `account add`
 * (or `account rotate`)
 * (nor a webhook secret other than the one line of `account webhook`
 * when it made the secret up),
 * and never writes bytes from the database to the terminal unescaped:
 * message texts and receipts come from the network.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <ev.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "smpp_accounts.h"
#include "ctl_messages.h"
#include "ctl_rollup.h"
#include "ctl_retention.h"
#include "ctl_routes.h"
#include "console.h"
#include "tenants.h"
#include "batch_csv.h"
#include "config.h"
#include "intake.h"
#include "keys.h"
#include "log.h"
#include "migrate.h"
#include "msgjson.h"
#include "recipient.h"
#include "respond.h"
#include "search.h"
#include "server.h"
#include "stmts.h"
#include "store.h"
#include "util.h"
#include "webhook.h"

#define PROG "pushgatectl"
#define DEFAULT_CONNINFO "dbname=pushgate"
#define CONNECT_TIMEOUT "10"
#define ACCOUNT_NAME_MAX 128
#define TEXT_SHOW_CHARS 60
#define DETAIL_SHOW_CHARS 60
#define FIELD_SHOW_CHARS 40
#define STATUS_MAX_RECIPIENTS 1000

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
	"usage: " PROG " [-c INI] [-d CONNINFO] COMMAND ...\n"
	"       " PROG " --help | --version\n"
	"\n"
	"commands:\n"
	"  migrate [--to VERSION]\n"
	"                       apply pending schema migrations (up to VERSION only) and the\n"
	"                       functions and views\n"
	"  account add [--operator] [--any-sender] NAME\n"
	"                       create an account; prints its new API key (shown once);\n"
	"                       --operator: the key may also list devices; --any-sender: it may\n"
	"                       send from any sender no other account owns (default: approved only)\n"
	"  account quota NAME DAILY MONTHLY\n"
	"                       recipients per UTC day and month, on every node together (0: none)\n"
	"  account balance NAME add N | set N | off\n"
	"                       prepaid recipients, taken at intake (off: postpaid)\n"
	"  account senders NAME listed|any | account sender NAME allow|revoke SENDER\n"
	"                       which senders the account may send from; an approved sender is its own\n"
	"  account requests NAME N\n"
	"                       API requests a minute the account may make, on each node (0: none)\n"
	"  account urls NAME HOST[,HOST...] | any\n"
	"                       the hosts its callback_url and dlr-url may name (.domain: under it)\n"
	"  account rotate NAME [GRACE_SECONDS]\n"
	"                       a new API key (printed once); the old one works GRACE (86400) more s\n"
	"  account show NAME    limits, usage today and this month, balance, senders\n"
	"  account policy NAME sms|drop\n"
	"                       what happens to recipients who blocked the account's sender\n"
	"  account limit NAME N recipients a minute the account may send, every node\n"
	"                       together (0: no limit)\n"
	"  account options NAME [night-consent yes|no] [auth-sms-first yes|no]\n"
	"       [opt-out-number NUMBER|none]\n"
	"                       what the account recorded with its users: ads at night,\n"
	"                       AUTH messages by SMS first, the number its ads name for opt-out\n"
	"  account disable NAME | account enable NAME\n"
	"                       stop (or allow again) the account's keys and SMPP binds, on every\n"
	"                       node at once; its ESMEs are unbound\n"
	"  account list         list accounts: id, name, created_at, disabled\n"
	"  account webhook NAME URL [SECRET] | account webhook NAME off\n"
	"                       POST every recipient state change to URL (http or https),\n"
	"                       signed with SECRET; without one a new secret is printed once\n"
	"  status MESSAGE_ID    show a message, its recipients and their events\n"
	"  messages [--to NUMBER] [--from SENDER] [--account NAME] [--since TIME]\n"
	"       [--until TIME] [--state STATE] [--limit N]\n"
	"                       recipients newest first (default 50), every account\n"
	"                       unless --account; status MESSAGE_ID shows one's history\n"
	"  binds                SMPP binds of every node: state, window, counters\n"
	"  route pause NAME [REASON] | route resume NAME | route list\n"
	"                       stop (or start again) leasing SMS for a route on every\n"
	"                       node at once; a route failing over hands its queue over\n"
	"  orphans              receipts no submit of ours matches (parked > 1 minute)\n"
	"  report [--batch ID | --since DATE] [--format table|csv|json]\n"
	"                       delivery report: per route and per sender since DATE, and\n"
	"                       the SMS sent again after a crash or an expired lease\n"
	"                       (YYYY-MM-DD or ISO 8601 time, UTC by default; default:\n"
	"                       the last 24 hours), or one batch by state with its totals\n"
	"  rollup [status]      bring the report rollups up to date now (pushgated does it\n"
	"                       every [reports] rollup_interval); status: the watermark,\n"
	"                       how far behind it is, the events counted\n"
	"  retention status|run [--keep-days N] [--outbox-days N] [--export DIR]\n"
	"                       the history ranges and what retention does with each; run\n"
	"                       drops those older than [retention] history_days (default 90)\n"
	"                       with nothing in flight, and empties the outboxes of those\n"
	"                       older than outbox_days when shorter; first written to DIR\n"
	"                       as .csv.gz\n"
	"  send --csv FILE --from SENDER --text TEXT [--account NAME] [--name NAME]\n"
	"       [--channels push,sms] [--push-timeout S] [--sms-text T] [--purpose P]\n"
	"       [--send-at TIME] [--validity S] [--opt-out-policy sms|drop]\n"
	"       [--callback-url URL] [--chunk N]\n"
	"                       a campaign from a CSV file (- for stdin): a 'to' column\n"
	"                       plus the {variables} of TEXT; streamed in chunks, bad\n"
	"                       rows reported by line; prints the batch id\n"
	"  smpp-account add NAME --system-id ID [--password-file FILE|-] [--binds N]\n"
	"       [--window N] [--tps N] [--allowed-sources CIDR,...] [--mo-addresses A,...]\n"
	"                       an SMPP server login for account NAME (the password from\n"
	"                       FILE or stdin, else a generated one printed once);\n"
	"                       smpp-account list shows them\n"
	"  smpp-account password SYSTEM_ID [--password-file FILE|-]\n"
	"                       a new password for its next bind (none given: one is made\n"
	"                       and printed once)\n"
	"  smpp-account disable SYSTEM_ID | smpp-account enable SYSTEM_ID\n"
	"                       refuse (or allow again) one login; its binds are unbound\n"
	"                       on every node at once\n"
	"  plan [STATEMENT [VALUE...]]\n"
	"                       the plan PostgreSQL keeps for one of pushgated's hot\n"
	"                       statements (its generic plan, nothing executed), or\n"
	"                       with a value per parameter (NULL: null) the plan for\n"
	"                       those values; without STATEMENT, the names\n"
	"  states [--dot]       the recipient state machine: every edge, what takes it\n"
	"                       and the statement that writes it (--dot: a Graphviz graph)\n"
	"  help                 show this text\n"
	"\n"
	"options:\n"
	"  -c INI        read [database] conninfo from this pushgate.ini\n"
	"  -d CONNINFO   libpq connection string or URI\n"
	"  -h, --help    show this text\n"
	"  -V, --version show the version\n"
	"\n"
	"The connection string is taken from -d, else $PUSHGATE_DB, else the\n"
	"[database] conninfo of -c INI, else \"" DEFAULT_CONNINFO "\".\n"
	"Exit status: 0 ok, 1 error, 2 usage error.\n";

static void usage(FILE *out)
{
	fputs(usage_text, out);
}

static void fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "pushgatectl: <message>" on stderr. */
static void vfail(const char *fmt, va_list ap)
{
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void fail_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(fmt, ap);
	va_end(ap);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(fmt, ap);
	va_end(ap);
	usage(stderr);
	return EXIT_USAGE;
}

/* Folds a libpq message (several lines, tabs, trailing newline) into one line. */
static void one_line(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	int space = 0;
	if (outlen == 0)
		return;
	for (; *in && n + 1 < outlen; in++) {
		unsigned char c = (unsigned char)*in;
		if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < outlen)
			out[n++] = ' ';
		space = 0;
		out[n++] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
	}
	out[n] = '\0';
}

/* The message of a failed result, on one line, with a hint for a missing schema. */
static void report_result(const char *what, const PGresult *res, PGconn *conn)
{
	char line[1024];
	/* The primary message reads best on one line; the full text is the fallback. */
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg || !msg[0])
		msg = res ? PQresultErrorMessage(res) : NULL;
	if (!msg || !msg[0])
		msg = PQerrorMessage(conn);
	one_line(msg, line, sizeof(line));
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	int no_table = state && strcmp(state, "42P01") == 0;
	fail_msg("%s: %s%s", what, line,
		 no_table ? " (has `" PROG " migrate` been run?)" : "");
}

/* ---- display of untrusted text ------------------------------------------ */

/*
 * Copies `in` to `out` for a terminal: at most `max` characters, control
 * characters escaped (\n, \r, \t, else ?), C1 controls and invalid UTF-8
 * replaced by ?, "..." appended when cut.  Returns the characters written.
 * outlen must be at least 4 * max + 4.
 */
static size_t display(const char *in, size_t max, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)(in ? in : "-");
	size_t n = 0, chars = 0;
	if (outlen < 4 * max + 4) {
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	while (*p) {
		char chunk[4];
		size_t clen = 0, ccols = 1, adv = 1;
		unsigned char c = p[0];
		if (c == '\n' || c == '\r' || c == '\t') {
			chunk[0] = '\\';
			chunk[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			clen = 2;
			ccols = 2;
		} else if (c < 0x20 || c == 0x7f) {
			chunk[clen++] = '?';
		} else if (c < 0x80) {
			chunk[clen++] = (char)c;
		} else {
			size_t need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
			size_t k = 1;
			if (c >= 0xf5)
				need = 0;
			while (need && k < need && (p[k] & 0xc0) == 0x80)
				k++;
			if (need == 0 || k < need || (c == 0xc2 && p[1] < 0xa0)) {
				/* invalid, truncated, or a C1 control (U+0080..U+009F) */
				chunk[clen++] = '?';
				adv = need && k == need ? need : 1;
			} else {
				memcpy(chunk, p, need);
				clen = need;
				adv = need;
			}
		}
		if (chars + ccols > max) {
			memcpy(out + n, "...", 3);
			n += 3;
			chars += 3;
			break;
		}
		memcpy(out + n, chunk, clen);
		n += clen;
		chars += ccols;
		p += adv;
	}
	out[n] = '\0';
	return chars;
}

/* Room for the widest column: display() needs 4 bytes a character plus "...". */
#define CELL_BUF (4 * ACCOUNT_NAME_MAX + 4)
_Static_assert(ACCOUNT_NAME_MAX >= FIELD_SHOW_CHARS && ACCOUNT_NAME_MAX >= DETAIL_SHOW_CHARS,
	       "CELL_BUF must hold every column");

/* A value of a result for display: NULL becomes "-". */
static const char *value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* Prints `text` padded with spaces to `width` characters (not after the last column). */
static void print_cell(const char *text, size_t max, size_t width, int last)
{
	char buf[CELL_BUF];
	size_t cols = display(text, max, buf, sizeof(buf));
	fputs(buf, stdout);
	if (!last) {
		for (size_t i = cols; i < width + 2; i++)
			fputc(' ', stdout);
	}
}

static size_t cell_width(const char *text, size_t max)
{
	char buf[CELL_BUF];
	return display(text, max, buf, sizeof(buf));
}

/*
 * A column of a table: its header, the result column it shows, the most
 * characters shown.
 */
struct column {
	const char *header;
	int         field;
	size_t      max;
	size_t      width;
};

static void columns_fit(struct column *cols, size_t ncols, const PGresult *res)
{
	for (size_t c = 0; c < ncols; c++) {
		cols[c].width = strlen(cols[c].header);
		for (int r = 0; r < PQntuples(res); r++) {
			size_t w = cell_width(value(res, r, cols[c].field), cols[c].max);
			if (w > cols[c].width)
				cols[c].width = w;
		}
	}
}

static void print_header(const char *indent, const struct column *cols, size_t ncols)
{
	fputs(indent, stdout);
	for (size_t c = 0; c < ncols; c++)
		print_cell(cols[c].header, cols[c].max, cols[c].width, c + 1 == ncols);
	fputc('\n', stdout);
}

static void print_row(const char *indent, const struct column *cols, size_t ncols,
		      const PGresult *res, int row)
{
	fputs(indent, stdout);
	for (size_t c = 0; c < ncols; c++)
		print_cell(value(res, row, cols[c].field), cols[c].max, cols[c].width,
			   c + 1 == ncols);
	fputc('\n', stdout);
}

/* stdout must reach its reader: a full disk or closed pipe is an error. */
static int flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fail_msg("cannot write to stdout: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- connection ---------------------------------------------------------- */

struct options {
	const char *ini;
	const char *conninfo;
};

/* Picks the connection string by the documented precedence. 0 / -1. */
static int resolve_conninfo(const struct options *opt, struct config *cfg,
			    const char **conninfo)
{
	const char *env = getenv("PUSHGATE_DB");
	if (opt->conninfo) {
		*conninfo = opt->conninfo;
		return 0;
	}
	if (env && env[0]) {
		*conninfo = env;
		return 0;
	}
	if (opt->ini) {
		char err[512] = "";
		if (config_load(cfg, opt->ini, err, sizeof(err)) < 0) {
			fail_msg("%s: %s", opt->ini, err[0] ? err : "cannot load configuration");
			return -1;
		}
		if (cfg->conninfo[0]) {
			*conninfo = cfg->conninfo;
			return 0;
		}
	}
	*conninfo = DEFAULT_CONNINFO;
	return 0;
}

static PGconn *connect_db(const struct options *opt)
{
	static struct config cfg;
	const char *conninfo;
	if (resolve_conninfo(opt, &cfg, &conninfo) < 0)
		return NULL;

	/* Entries before dbname are overridden by the string, those after win. */
	const char *keys[4], *vals[4];
	int k = 0;
	if (!getenv("PGCONNECT_TIMEOUT")) {
		keys[k] = "connect_timeout";
		vals[k++] = CONNECT_TIMEOUT;
	}
	keys[k] = "dbname";
	vals[k++] = conninfo;
	keys[k] = "fallback_application_name";
	vals[k++] = PROG;
	keys[k] = NULL;
	vals[k] = NULL;

	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (!conn) {
		fail_msg("cannot connect to PostgreSQL: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char line[1024];
		one_line(PQerrorMessage(conn), line, sizeof(line));
		fail_msg("cannot connect to PostgreSQL: %s", line[0] ? line : "unknown error");
		PQfinish(conn);
		return NULL;
	}
	/* Server notices (e.g. from migrations) are not the operator's business here. */
	PGresult *res = PQexecParams(conn, "SET client_min_messages = warning",
				     0, NULL, NULL, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		report_result("cannot set up the session", res, conn);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

/* ---- commands ------------------------------------------------------------ */

static int cmd_migrate(PGconn *conn, int upto)
{
	char err[1024] = "";
	int functions = 0;
	int applied = migrate_apply_upto(conn, upto, &functions, err, sizeof(err));
	if (applied < 0) {
		fail_msg("%s", err[0] ? err : "migration failed");
		return EXIT_FAIL;
	}
	int version = migrate_current(conn);
	if (version < 0) {
		char line[1024];
		one_line(PQerrorMessage(conn), line, sizeof(line));
		fail_msg("cannot read schema_version: %s", line);
		return EXIT_FAIL;
	}
	if (applied == 0 && functions == 0)
		printf("schema at version %d, nothing to do\n", version);
	else if (functions == 0)
		printf("applied %d migration(s), schema at version %d\n", applied, version);
	else
		printf("applied %d migration(s) and %d function file(s), schema at version %d\n", applied, functions,
		       version);
	return flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
}

/* Names are what operators type and read: printable, no control characters. */
static int account_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > ACCOUNT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return name[0] != ' ' && name[len - 1] != ' ';
}

static int exec_ok(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
	int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		report_result(what, res, conn);
	PQclear(res);
	return ok ? 0 : -1;
}

/*
 * The key is written to stdout inside the transaction and the row committed
 * only when that write succeeded: an account never exists with a key nobody saw.
 */
static int cmd_account_add(PGconn *conn, const char *name, const char *role, int any_sender)
{
	char key[KEYS_API_KEY_LEN + 1];
	char hash[2 + 2 * KEYS_HASH_LEN + 1];
	char id[32];
	int rc = EXIT_FAIL;

	if (keys_generate(key, sizeof(key)) < 0) {
		fail_msg("cannot generate a key: no randomness available");
		return EXIT_FAIL;
	}
	keys_hash_bytea(key, strlen(key), hash, sizeof(hash));

	if (exec_ok(conn, "BEGIN", "cannot begin a transaction") < 0)
		goto out;
	/* senders_listed: a new account sends from the senders the operator approves, unless told otherwise */
	const char *params[4] = { name, hash, role, any_sender ? "f" : "t" };
	PGresult *res = PQexecParams(conn,
		"INSERT INTO accounts (name, api_key_hash, role, senders_listed) VALUES ($1, $2::bytea, $3, $4::boolean)"
		" ON CONFLICT (name) DO NOTHING RETURNING id",
		4, NULL, params, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		report_result("cannot create the account", res, conn);
		PQclear(res);
		goto rollback;
	}
	if (PQntuples(res) != 1) {
		char shown[4 * ACCOUNT_NAME_MAX + 4];
		display(name, ACCOUNT_NAME_MAX, shown, sizeof(shown));
		fail_msg("account '%s' already exists", shown);
		PQclear(res);
		goto rollback;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	printf("%s\n", key);
	if (flush_stdout() < 0) {
		fail_msg("account not created");
		goto rollback;
	}
	if (exec_ok(conn, "COMMIT", "account not created") < 0)
		goto out;
	{
		char shown[4 * ACCOUNT_NAME_MAX + 4];
		display(name, ACCOUNT_NAME_MAX, shown, sizeof(shown));
		fprintf(stderr, "account %s created (id %s); the key is shown once\n", shown, id);
	}
	rc = EXIT_OK;
	goto out;

rollback:
	res = PQexecParams(conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
	PQclear(res);
out:
	memset(key, 0, sizeof(key));
	return rc;
}

/* Runs a query without parameters and prints its rows under cols. */
static int print_table(PGconn *conn, const char *sql, struct column *cols, size_t ncols, const char *what)
{
	PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		report_result(what, res, conn);
		PQclear(res);
		return EXIT_FAIL;
	}
	columns_fit(cols, ncols, res);
	print_header("", cols, ncols);
	for (int r = 0; r < PQntuples(res); r++)
		print_row("", cols, ncols, res, r);
	PQclear(res);
	return flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
}

static int cmd_account_list(PGconn *conn)
{
	struct column cols[] = {
		{ "ID", 0, FIELD_SHOW_CHARS, 0 },
		{ "NAME", 1, ACCOUNT_NAME_MAX, 0 },
		{ "CREATED_AT", 2, FIELD_SHOW_CHARS, 0 },
		{ "DISABLED", 3, FIELD_SHOW_CHARS, 0 },
		{ "RATE_LIMIT", 4, FIELD_SHOW_CHARS, 0 },
	};
	return print_table(conn, "SELECT id, name, " STMTS_ISO_TS("created_at") ","
			   " CASE WHEN disabled THEN 'yes' ELSE 'no' END,"
			   " CASE WHEN rate_limit > 0 THEN rate_limit || '/min' ELSE '-' END FROM accounts ORDER BY id",
			   cols, sizeof(cols) / sizeof(cols[0]), "cannot list accounts");
}

/*
 * Runs an UPDATE of one account found by name ($1, never the system
 * account) that returns its id.  0 when it was found, -1 after saying why.
 */
static int update_account(PGconn *conn, const char *name, const char *sql, int nparams,
			  const char *const *params, const char *what)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		report_result(what, res, conn);
		PQclear(res);
		return -1;
	}
	int found = PQntuples(res) == 1;
	PQclear(res);
	if (!found) {
		char shown[4 * ACCOUNT_NAME_MAX + 4];
		display(name, ACCOUNT_NAME_MAX, shown, sizeof(shown));
		fail_msg("no account '%s'", shown);
		return -1;
	}
	return 0;
}

/* Recipients a minute over HTTP and sendsms, per node; every pushgated hears it at the commit (NOTIFY). */
static int cmd_account_limit(PGconn *conn, const char *name, const char *limit)
{
	const char *params[2] = { name, limit };
	return update_account(conn, name,
			      "WITH u AS (UPDATE accounts SET rate_limit = $2::int WHERE name = $1 AND role <> 'system'"
			      " RETURNING id)"
			      " SELECT id, pg_notify('pushgate_accounts', id || ':limit') FROM u",
			      2, params, "cannot set the rate limit") < 0 ? EXIT_FAIL : EXIT_OK;
}

/* Disabled: no key works, no bind succeeds; every pushgated hears it at the commit (NOTIFY). */
static int cmd_account_disable(PGconn *conn, const char *name, int disable)
{
	const char *params[2] = { name, disable ? "t" : "f" };
	return update_account(conn, name,
			      "WITH u AS (UPDATE accounts SET disabled = $2::boolean WHERE name = $1 AND role <> 'system'"
			      " RETURNING id)"
			      " SELECT id, pg_notify('pushgate_accounts', id || CASE WHEN $2::boolean THEN ':disabled'"
			      " ELSE ':enabled' END) FROM u",
			      2, params, disable ? "cannot disable the account" : "cannot enable the account") < 0
		       ? EXIT_FAIL : EXIT_OK;
}

/* What a recipient who blocked the sender gets: sms (fall back) or drop. */
static int cmd_account_policy(PGconn *conn, const char *name, const char *policy)
{
	const char *params[2] = { name, policy };
	if (update_account(conn, name,
			   "UPDATE accounts SET opt_out_policy = $2 WHERE name = $1 AND role <> 'system' RETURNING id",
			   2, params, "cannot set the policy") < 0)
		return EXIT_FAIL;
	fprintf(stderr, "opt-out policy of %s is now %s\n", name, policy);
	return EXIT_OK;
}

/* "http://..." or "https://...", printable, no blanks: what the webhook sender accepts. */
static int webhook_url_ok(const char *u)
{
	size_t n = strlen(u);
	if (n > 2000 || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
		return 0;
	for (; *u; u++)
		if ((unsigned char)*u <= 0x20 || (unsigned char)*u >= 0x7f)
			return 0;
	return n > 8;
}

/*
 * Sets (url) or clears (url NULL) the account's webhook.  A made-up secret
 * is printed inside the transaction, committed only once it was written.
 */
static int cmd_account_webhook(PGconn *conn, const char *name, const char *url, const char *secret)
{
	char made[KEYS_API_KEY_LEN + 1], sec[6 + 64 + 1];
	int rc = EXIT_FAIL;
	if (url && !secret) {
		if (keys_generate(made, sizeof(made)) < 0) {
			fail_msg("cannot generate a secret: no randomness available");
			return EXIT_FAIL;
		}
		snprintf(sec, sizeof(sec), "whsec_%s", made + 3);   /* the 64 random hex digits */
		memset(made, 0, sizeof(made));
		secret = sec;
	} else {
		sec[0] = '\0';
	}
	if (exec_ok(conn, "BEGIN", "cannot begin a transaction") < 0)
		goto out;
	const char *params[3] = { name, url, url ? secret : NULL };
	if (update_account(conn, name,
			   "UPDATE accounts SET webhook_url = $2, webhook_secret = $3 WHERE name = $1 AND role <> 'system'"
			   " RETURNING id", 3, params, "cannot set the webhook") < 0)
		goto rollback;
	if (sec[0]) {
		printf("%s\n", sec);
		if (flush_stdout() < 0) {
			fail_msg("webhook not set");
			goto rollback;
		}
	}
	if (exec_ok(conn, "COMMIT", "webhook not set") < 0)
		goto out;
	{
		char shown[4 * ACCOUNT_NAME_MAX + 4];
		display(name, ACCOUNT_NAME_MAX, shown, sizeof(shown));
		fprintf(stderr, "webhook of %s %s\n", shown,
			!url ? "is off" : sec[0] ? "set; the secret is shown once" : "set");
	}
	rc = EXIT_OK;
	goto out;
rollback:
	PQclear(PQexecParams(conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
out:
	memset(sec, 0, sizeof(sec));
	return rc;
}

/* Every node's SMPP binds with their counters, as the engines last wrote them. */
static int cmd_binds(PGconn *conn)
{
	struct column cols[] = {
		{ "NODE", 0, FIELD_SHOW_CHARS, 0 },
		{ "ROUTE", 1, FIELD_SHOW_CHARS, 0 },
		{ "BIND", 2, FIELD_SHOW_CHARS, 0 },
		{ "STATE", 3, FIELD_SHOW_CHARS, 0 },
		{ "WINDOW", 4, FIELD_SHOW_CHARS, 0 },
		{ "SUBMITS", 5, FIELD_SHOW_CHARS, 0 },
		{ "OK", 6, FIELD_SHOW_CHARS, 0 },
		{ "TEMP", 7, FIELD_SHOW_CHARS, 0 },
		{ "PERM", 8, FIELD_SHOW_CHARS, 0 },
		{ "TIMEOUTS", 9, FIELD_SHOW_CHARS, 0 },
		{ "RECEIPTS", 10, FIELD_SHOW_CHARS, 0 },
		{ "DELIVERED", 11, FIELD_SHOW_CHARS, 0 },
		{ "FAILED", 12, FIELD_SHOW_CHARS, 0 },
		{ "THROTTLED", 13, FIELD_SHOW_CHARS, 0 },
		{ "RECONNECTS", 14, FIELD_SHOW_CHARS, 0 },
		{ "UPDATED_AT", 15, FIELD_SHOW_CHARS, 0 },
	};
	return print_table(conn,
		"SELECT node, route, bind, state, window_used || '/' || window_size, submits, resp_ok, resp_temp,"
		" resp_perm, timeouts, receipts, receipts_delivered, receipts_failed, throttled, reconnects, "
		STMTS_ISO_TS("updated_at") " FROM smpp_binds ORDER BY route, node, bind",
		cols, sizeof(cols) / sizeof(cols[0]), "cannot list binds");
}

/* pushgated's hot statements, by the name they are prepared under. */
static const struct store_stmt *const plan_stmts[] = {
	&recipient_stmt_intake, &recipient_stmt_release, &recipient_stmt_sms_lease, &recipient_stmt_sms_resp,
	&recipient_stmt_sms_receipts, &recipient_stmt_apply_parked, &recipient_stmt_sweep, &recipient_stmt_push_acks,
	&stmts_wake_claim_messages, &stmts_wake_claim_scan, &stmts_wake_outcomes,
	&search_stmt_number, &search_stmt_account, &console_stmt_overview,
	&webhook_stmt_lease, &webhook_stmt_delivered, &webhook_stmt_failed,
	&smpp_server_stmt_outbox_lease, &smpp_server_stmt_outbox_ack, &smpp_server_stmt_outbox_release,
};

static const struct store_stmt *plan_stmt(const char *name)
{
	for (size_t i = 0; i < sizeof(plan_stmts) / sizeof(plan_stmts[0]); i++)
		if (strcmp(plan_stmts[i]->name, name) == 0)
			return plan_stmts[i];
	return NULL;
}

/*
 * The plan of one statement: without values its generic plan (what a
 * prepared statement settles on after its first executions, which knows no
 * parameter values: array sizes, LIMIT), shown with the scan of every
 * partition of the history tables (EXPLAIN EXECUTE with NULLs would prune
 * them all at start-up; pruning is off for the explain); with a value for
 * every parameter ("NULL" for NULL) the plan made for those values (what an
 * unprepared statement gets on each call).  Statements whose data-modifying
 * parts must find rows by key are checked by the tests through this.
 * Nothing is executed.
 */
static int cmd_plan(PGconn *conn, const struct store_stmt *st, int nvalues, char **values)
{
	size_t cap = 64 + 8 * 32, n;
	for (int i = 0; i < nvalues; i++)
		cap += 2 * strlen(values[i]) + 8;
	char *sql = malloc(cap);
	if (!sql)
		return EXIT_FAIL;
	n = (size_t)snprintf(sql, cap, "EXPLAIN EXECUTE plan_stmt");
	for (int i = 0; i < st->nparams && i < 32; i++) {
		char *lit = NULL;
		if (i < nvalues && strcmp(values[i], "NULL") != 0 &&
		    !(lit = PQescapeLiteral(conn, values[i], strlen(values[i])))) {
			free(sql);
			report_result(st->name, NULL, conn);
			return EXIT_FAIL;
		}
		n += (size_t)snprintf(sql + n, cap - n, "%s%s", i ? ", " : "(", lit ? lit : "NULL");
		PQfreemem(lit);
	}
	snprintf(sql + n, cap - n, "%s", st->nparams ? ")" : "");
	int ok = exec_ok(conn, nvalues ? "SET plan_cache_mode = force_custom_plan"
				       : "SET plan_cache_mode = force_generic_plan", "plan") == 0 &&
		 (nvalues || exec_ok(conn, "SET enable_partition_pruning = off", "plan") == 0);
	PGresult *res = ok ? PQprepare(conn, "plan_stmt", st->sql, st->nparams, NULL) : NULL;
	ok = ok && res && PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		report_result(st->name, res, conn);
	PQclear(res);
	res = ok ? PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0) : NULL;
	free(sql);
	ok = ok && res && PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok && res)
		report_result(st->name, res, conn);
	for (int i = 0; ok && i < PQntuples(res); i++)
		if (printf("%s\n", PQgetvalue(res, i, 0)) < 0)
			ok = 0;
	PQclear(res);
	return ok && fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

/* Receipts parked longer than a minute: no submit of ours carries their id. */
static int cmd_orphans(PGconn *conn)
{
	struct column cols[] = {
		{ "ID", 0, FIELD_SHOW_CHARS, 0 },
		{ "ROUTE", 1, FIELD_SHOW_CHARS, 0 },
		{ "SMSC_ID", 2, FIELD_SHOW_CHARS, 0 },
		{ "STATE", 3, FIELD_SHOW_CHARS, 0 },
		{ "RECEIVED_AT", 4, FIELD_SHOW_CHARS, 0 },
		{ "DETAIL", 5, TEXT_SHOW_CHARS, 0 },
	};
	return print_table(conn,
		"SELECT id, route, smsc_id, state, " STMTS_ISO_TS("received_at") ", detail FROM dlr_orphans ORDER BY id",
		cols, sizeof(cols) / sizeof(cols[0]), "cannot list orphan receipts");
}

/* Digits only, fits a bigint. */
static int parse_id(const char *s, int64_t *out)
{
	int64_t v = 0;
	if (!s[0] || strlen(s) > 19)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		int d = *p - '0';
		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int cmd_status(PGconn *conn, int64_t message_id)
{
	char idbuf[32];
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)message_id);
	const char *params[1] = { idbuf };
	PGresult *msg = NULL, *rcp = NULL, *ev = NULL;
	int rc = EXIT_FAIL;

	msg = PQexecParams(conn,
		"SELECT m.id, a.name, m.sender, " STMTS_ISO_TS("m.created_at") ", m.body"
		" FROM messages m JOIN accounts a ON a.id = m.account_id WHERE m.id = $1::bigint",
		1, NULL, params, NULL, NULL, 0);
	if (!msg || PQresultStatus(msg) != PGRES_TUPLES_OK) {
		report_result("cannot read the message", msg, conn);
		goto out;
	}
	if (PQntuples(msg) != 1) {
		fail_msg("no message %s", idbuf);
		goto out;
	}

	char lim[16];
	snprintf(lim, sizeof(lim), "%d", STATUS_MAX_RECIPIENTS + 1);
	const char *rparams[2] = { idbuf, lim };
	rcp = PQexecParams(conn,
		"SELECT id, msisdn, state, channel, route, smsc_id, error_code, " STMTS_ISO_TS("updated_at")
		" FROM recipients WHERE message_id = $1::bigint ORDER BY id LIMIT $2::int",
		2, NULL, rparams, NULL, NULL, 0);
	if (!rcp || PQresultStatus(rcp) != PGRES_TUPLES_OK) {
		report_result("cannot read the recipients", rcp, conn);
		goto out;
	}
	int nrcp = PQntuples(rcp);
	int more = nrcp > STATUS_MAX_RECIPIENTS;
	if (more)
		nrcp = STATUS_MAX_RECIPIENTS;

	snprintf(lim, sizeof(lim), "%d", STATUS_MAX_RECIPIENTS);
	ev = PQexecParams(conn,
		"SELECT e.recipient_id, " STMTS_ISO_TS("e.at") ", e.kind, e.state, e.error_code, e.detail"
		" FROM events e WHERE e.recipient_id IN ("
		"   SELECT r.id FROM recipients r WHERE r.message_id = $1::bigint"
		"   ORDER BY r.id LIMIT $2::int)"
		" ORDER BY e.recipient_id, e.id",
		2, NULL, rparams, NULL, NULL, 0);
	if (!ev || PQresultStatus(ev) != PGRES_TUPLES_OK) {
		report_result("cannot read the events", ev, conn);
		goto out;
	}

	char buf[4 * TEXT_SHOW_CHARS + 4];
	printf("message %s\n", PQgetvalue(msg, 0, 0));
	display(value(msg, 0, 1), ACCOUNT_NAME_MAX < TEXT_SHOW_CHARS ? ACCOUNT_NAME_MAX : TEXT_SHOW_CHARS,
		buf, sizeof(buf));
	printf("  account:    %s\n", buf);
	display(value(msg, 0, 2), TEXT_SHOW_CHARS, buf, sizeof(buf));
	printf("  from:       %s\n", buf);
	printf("  created_at: %s\n", PQgetvalue(msg, 0, 3));
	display(value(msg, 0, 4), TEXT_SHOW_CHARS, buf, sizeof(buf));
	printf("  text:       %s\n", buf);
	printf("recipients: %d%s\n", nrcp, more ? " (more not shown)" : "");
	if (nrcp == 0)
		goto done;

	struct column rcols[] = {
		{ "ID", 0, FIELD_SHOW_CHARS, 0 },
		{ "TO", 1, FIELD_SHOW_CHARS, 0 },
		{ "STATE", 2, FIELD_SHOW_CHARS, 0 },
		{ "CHANNEL", 3, FIELD_SHOW_CHARS, 0 },
		{ "ROUTE", 4, FIELD_SHOW_CHARS, 0 },
		{ "SMSC_ID", 5, FIELD_SHOW_CHARS, 0 },
		{ "ERROR", 6, FIELD_SHOW_CHARS, 0 },
		{ "UPDATED_AT", 7, FIELD_SHOW_CHARS, 0 },
	};
	struct column ecols[] = {
		{ "AT", 1, FIELD_SHOW_CHARS, 0 },
		{ "KIND", 2, FIELD_SHOW_CHARS, 0 },
		{ "STATE", 3, FIELD_SHOW_CHARS, 0 },
		{ "ERROR", 4, FIELD_SHOW_CHARS, 0 },
		{ "DETAIL", 5, DETAIL_SHOW_CHARS, 0 },
	};
	size_t nr = sizeof(rcols) / sizeof(rcols[0]), ne = sizeof(ecols) / sizeof(ecols[0]);
	columns_fit(rcols, nr, rcp);
	columns_fit(ecols, ne, ev);
	print_header("", rcols, nr);

	/* Both results are ordered by recipient id: walk them together. */
	int e = 0, nev = PQntuples(ev);
	for (int r = 0; r < nrcp; r++) {
		print_row("", rcols, nr, rcp, r);
		const char *rid = PQgetvalue(rcp, r, 0);
		int first = 1;
		while (e < nev && strcmp(PQgetvalue(ev, e, 0), rid) == 0) {
			if (first)
				print_header("    ", ecols, ne);
			first = 0;
			print_row("    ", ecols, ne, ev, e);
			e++;
		}
		if (first)
			printf("    (no events)\n");
	}
done:
	rc = flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
out:
	PQclear(msg);
	PQclear(rcp);
	PQclear(ev);
	return rc;
}

/* ---- report ---------------------------------------------------------------- */

enum report_format { FMT_TABLE, FMT_CSV, FMT_JSON };

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF. */
static void csv_field(const char *s)
{
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, stdout);
		return;
	}
	fputc('"', stdout);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', stdout);
		fputc(*s, stdout);
	}
	fputc('"', stdout);
}

/* A result value as JSON: numbers for integer and numeric columns, else strings. */
static json_t *json_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	const char *v = PQgetvalue(res, row, col);
	switch (PQftype(res, col)) {
	case 20: case 21: case 23:   /* int8, int2, int4 */
		return json_integer(strtoll(v, NULL, 10));
	case 700: case 701: case 1700:   /* float4, float8, numeric */
		return json_real(strtod(v, NULL));
	default:
		return json_string(v);
	}
}

static json_t *json_row(const PGresult *res, int row)
{
	json_t *o = json_object();
	for (int c = 0; c < PQnfields(res); c++)
		json_object_set_new(o, PQfname(res, c), json_value(res, row, c));
	return o;
}

/*
 * Prints one section of a report: table (a title line, then aligned
 * columns), csv (a header line whose first field is "section", then rows,
 * CRLF line ends, a blank line after), or json (added to `out` under
 * `name`: an array of row objects, or one object (or null) when `one`).
 */
static void report_section(const char *name, const char *title, const PGresult *res, int one,
			   enum report_format fmt, json_t *out)
{
	int nf = PQnfields(res), nr = PQntuples(res);
	if (fmt == FMT_JSON) {
		if (one) {
			json_object_set_new(out, name, nr > 0 ? json_row(res, 0) : json_null());
		} else {
			json_t *a = json_array();
			for (int r = 0; r < nr; r++)
				json_array_append_new(a, json_row(res, r));
			json_object_set_new(out, name, a);
		}
		return;
	}
	if (fmt == FMT_CSV) {
		fputs("section", stdout);
		for (int c = 0; c < nf; c++) {
			fputc(',', stdout);
			csv_field(PQfname(res, c));
		}
		fputs("\r\n", stdout);
		for (int r = 0; r < nr; r++) {
			csv_field(name);
			for (int c = 0; c < nf; c++) {
				fputc(',', stdout);
				csv_field(value(res, r, c));
			}
			fputs("\r\n", stdout);
		}
		fputs("\r\n", stdout);
		return;
	}
	struct column cols[32];
	char heads[32][40];
	size_t n = 0;
	for (int c = 0; c < nf && n < sizeof(cols) / sizeof(cols[0]); c++, n++) {
		size_t i = 0;
		for (const char *h = PQfname(res, c); *h && i + 1 < sizeof(heads[0]); h++)
			heads[n][i++] = (char)(*h >= 'a' && *h <= 'z' ? *h - 'a' + 'A' : *h);
		heads[n][i] = '\0';
		cols[n] = (struct column){ heads[n], c, ACCOUNT_NAME_MAX, 0 };
	}
	printf("%s\n", title);
	columns_fit(cols, n, res);
	print_header("  ", cols, n);
	for (int r = 0; r < nr; r++)
		print_row("  ", cols, n, res, r);
	if (nr == 0)
		printf("  (none)\n");
	fputc('\n', stdout);
}

static PGresult *report_query(PGconn *conn, const char *sql, const char *param, const char *what)
{
	const char *params[1] = { param };
	PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		report_result(what, res, conn);
		PQclear(res);
		return NULL;
	}
	return res;
}

#define REPORT_OUTCOME_COLUMNS \
	" recipients, push_delivered, sms_delivered, failed, opted_out, unknown, dropped, canceled, pending," \
	" push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms"

/*
 * The reports of sql/functions/report_*.sql.  batch: that batch, its recipients
 * per state and its totals; else messages accepted since `since` (a
 * timestamptz literal) per route and per sender.
 */
static int cmd_report(PGconn *conn, const char *since, const char *batch, enum report_format fmt)
{
	PGresult *res[4] = { NULL, NULL, NULL, NULL };
	json_t *out = fmt == FMT_JSON ? json_object() : NULL;
	int rc = EXIT_FAIL;

	/* Reports are short scans of many rows: compiling them costs more than it saves. */
	PQclear(PQexecParams(conn, "SET jit = off", 0, NULL, NULL, NULL, NULL, 0));
	if (batch) {
		res[0] = report_query(conn,
			"SELECT b.id AS batch, a.name AS account, b.name, b.state, b.total, " STMTS_ISO_TS("b.created_at")
			" AS created_at FROM batches b JOIN accounts a ON a.id = b.account_id WHERE b.id = $1::bigint",
			batch, "cannot read the batch");
		if (!res[0])
			goto out;
		if (PQntuples(res[0]) != 1) {
			fail_msg("no batch %s", batch);
			goto out;
		}
		res[1] = report_query(conn, "SELECT state, recipients FROM report_by_batch_state"
				      " WHERE batch_id = $1::bigint ORDER BY state", batch, "cannot read the batch's states");
		res[2] = res[1] ? report_query(conn, "SELECT" REPORT_OUTCOME_COLUMNS " FROM report_by_batch"
					       " WHERE batch_id = $1::bigint", batch, "cannot read the batch's totals") : NULL;
		if (!res[2])
			goto out;
		report_section("batch", "batch", res[0], 1, fmt, out);
		report_section("states", "recipients by state", res[1], 0, fmt, out);
		report_section("totals", "totals (latency in ms: accepted -> delivered)", res[2], 1, fmt, out);
	} else {
		/* the rollups count whole UTC hours, up to their watermark */
		res[0] = report_query(conn,
				      "SELECT " STMTS_ISO_TS("date_trunc('hour', $1::timestamptz, 'UTC')") " AS since,"
				      " coalesce(" STMTS_ISO_TS("(SELECT watermark FROM report_rollup_state WHERE id = 1)")
				      ", '-') AS as_of", since, "bad --since");
		if (!res[0])
			goto out;
		res[1] = report_query(conn,
			"SELECT route, recipients, submitted, delivered, failed, unknown, pending, delivery_rate,"
			" receipt_p50_ms, receipt_p95_ms FROM report_routes($1::timestamptz) ORDER BY route",
			since, "cannot read the report per route");
		res[2] = res[1] ? report_query(conn, "SELECT account, sender," REPORT_OUTCOME_COLUMNS
					       " FROM report_outcomes($1::timestamptz, 'sender') ORDER BY account, sender",
					       since, "cannot read the report per sender") : NULL;
		/* events_resend (sql/020): the resends alone, by time */
		res[3] = res[2] ? report_query(conn, "SELECT coalesce(route, '-') AS route, count(*) AS resends"
					       " FROM events WHERE kind = 'resend' AND at >= $1::timestamptz"
					       " GROUP BY 1 ORDER BY 1", since, "cannot read the resends") : NULL;
		if (!res[3])
			goto out;
		if (fmt == FMT_JSON) {
			json_object_set_new(out, "since", json_string(PQgetvalue(res[0], 0, 0)));
			json_object_set_new(out, "as_of", json_string(PQgetvalue(res[0], 0, 1)));
		} else if (fmt == FMT_TABLE) {
			printf("messages accepted since %s, counted until %s (pushgatectl rollup)\n\n",
			       PQgetvalue(res[0], 0, 0), PQgetvalue(res[0], 0, 1));
		}
		report_section("routes", "SMS per route (receipt latency in ms: submitted -> receipt)", res[1], 0, fmt, out);
		report_section("senders", "per sender (latency in ms: accepted -> delivered)", res[2], 0, fmt, out);
		report_section("resends", "SMS sent again without a recorded response (a node stopped unclean, or"
			       " a lease expired): the carrier may have delivered them twice", res[3], 0, fmt, out);
	}
	if (fmt == FMT_JSON) {
		char *text = json_dumps(out, RESPOND_JSON_FLAGS);
		if (!text) {
			fail_msg("out of memory");
			goto out;
		}
		puts(text);
		free(text);
	}
	rc = flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
out:
	for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		PQclear(res[i]);
	json_decref(out);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

/* --- send: a CSV campaign from the shell ------------------------------------- */

#define SEND_BUF (2 * BATCH_RECORD_MAX + 2)

struct send_args {
	const char *csv, *from, *text, *account, *name;
	size_t      chunk;
};

static PGresult *send_exec(PGconn *conn, const char *sql, int n, const char *const *params, const char *what)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		report_result(what, res, conn);
		PQclear(res);
		return NULL;
	}
	return res;
}

static void send_progress(size_t done_bytes, size_t size, size_t rows, int tty, int *last_tenth)
{
	if (size == 0)
		return;
	int pct = (int)(done_bytes * 100 / size);
	if (tty) {
		char bar[41];
		int fill = pct * 40 / 100;
		for (int i = 0; i < 40; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[40] = '\0';
		fprintf(stderr, "\r[%s] %3d%% %zu recipients", bar, pct, rows);
		fflush(stderr);
	} else if (pct / 10 > *last_tenth) {
		*last_tenth = pct / 10;
		fprintf(stderr, PROG ": send: %d%% (%zu recipients)\n", *last_tenth * 10, rows);
	}
}

/*
 * The chunks go through the intake queue (intake.c), as every door's
 * messages do, on a store connection of its own driven by a private loop:
 * the same statement, the same install invitations.  pushgated's engine
 * finds the new SMS work at its next poll ([smpp] idle_poll).
 */
struct send_intake {
	struct ev_loop      *loop;
	struct store        *store;
	struct intake_queue *q;
	ev_timer             timer;
	int                  up, timed_out;
};

struct send_req {
	struct intake_req   r;
	int                 done;
	enum store_error    e;
	enum intake_refusal why;
	int                 wait;
	char                err[256];
};

static void send_up(void *arg)
{
	((struct send_intake *)arg)->up = 1;
}

static void send_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	((struct send_intake *)w->data)->timed_out = 1;
}

static void send_intake_close(struct send_intake *si)
{
	/* the invitations of the last chunk are still the store's: let them finish */
	while (si->store && si->up && store_is_up(si->store) && store_pending(si->store) > 0)
		ev_run(si->loop, EVRUN_ONCE);
	store_free(si->store);
	intake_queue_free(si->q);
	if (si->loop)
		ev_loop_destroy(si->loop);
	memset(si, 0, sizeof(*si));
}

/* Connects the intake's store (within CONNECT_TIMEOUT seconds).  0 / -1. */
static int send_intake_open(struct send_intake *si, const struct options *opt, const struct config *cfg)
{
	static struct config ccfg;
	const char *conninfo;
	memset(si, 0, sizeof(*si));
	log_set_level(LOG_WARN);   /* the store's and the queue's info lines are the daemon's business */
	if (resolve_conninfo(opt, &ccfg, &conninfo) < 0)
		return -1;
	struct store_config sc = { conninfo, cfg->batch_max, cfg->reconnect_interval, 120.0, 0 };
	if (!(si->loop = ev_loop_new(EVFLAG_AUTO)) || !(si->store = store_new(si->loop, &sc)) ||
	    !(si->q = intake_queue_new(si->loop, si->store, cfg, BATCH_CHUNK, NULL, NULL))) {
		fail_msg("send: out of memory");
		send_intake_close(si);
		return -1;
	}
	store_on_up(si->store, send_up, si);
	ev_timer_init(&si->timer, send_timeout, atof(CONNECT_TIMEOUT), 0);
	si->timer.data = si;
	ev_timer_start(si->loop, &si->timer);
	store_start(si->store);
	while (!si->up && !si->timed_out)
		ev_run(si->loop, EVRUN_ONCE);
	ev_timer_stop(si->loop, &si->timer);
	if (!si->up) {
		fail_msg("send: cannot connect to PostgreSQL for the intake within %s s", CONNECT_TIMEOUT);
		send_intake_close(si);
		return -1;
	}
	return 0;
}

static void send_chunk_done(struct intake_req *r, enum store_error e, const char *err, PGresult *res, int first, int n)
{
	struct send_req *sr = (struct send_req *)r;
	sr->done = 1;
	sr->e = e;
	util_strlcpy(sr->err, err ? err : "", sizeof(sr->err));
	sr->why = e == STORE_OK ? intake_refusal_of(res, first, n, &sr->wait) : INTAKE_ADMITTED;
}

/* One chunk through the intake queue, waited for.  0 / -1. */
static int send_chunk(struct send_intake *si, long long account, const struct send_args *a, size_t n, char (*to)[21],
		      char **texts, const struct intake_opts *o)
{
	struct send_req sr;
	memset(&sr, 0, sizeof(sr));
	sr.r.msg = (struct intake_msg){ .account_id = account, .from = a->from, .text = a->text, .n_to = n,
					.to = (const char (*)[21])to, .texts = (const char *const *)texts, .opts = o };
	sr.r.done = send_chunk_done;
	intake_submit(si->q, &sr.r);
	while (!sr.done)
		ev_run(si->loop, EVRUN_ONCE);
	if (sr.e != STORE_OK) {
		char line[256];
		one_line(sr.err, line, sizeof(line));
		fail_msg("send: intake: %s", sr.e == STORE_UNAVAILABLE ? "the database is unavailable"
			 : line[0] ? line : "the statement failed");
		return -1;
	}
	if (sr.why != INTAKE_ADMITTED) {
		if (sr.wait > 0)
			fail_msg("send: refused by the account's limits (%s); it may pass in %d s",
				 intake_refusal_name(sr.why), sr.wait);
		else
			fail_msg("send: refused by the account's limits (%s)", intake_refusal_name(sr.why));
		return -1;
	}
	return 0;
}

static int cmd_send(const struct options *opt, int argc, char **argv)
{
	struct send_args a = { .chunk = BATCH_CHUNK };
	json_t *root = json_object();
	for (int i = 0; i < argc; i++) {
		static const char *const passed[] = { "channels", "push-timeout", "sms-text", "purpose", "send-at",
						      "validity", "opt-out-policy", "callback-url" };
		const char *k = argv[i];
		if (strncmp(k, "--", 2) != 0 || i + 1 >= argc) {
			json_decref(root);
			return usage_error("send: expected --OPTION VALUE, not '%.40s'", k);
		}
		const char *v = argv[++i];
		k += 2;
		if (!strcmp(k, "csv")) a.csv = v;
		else if (!strcmp(k, "from")) a.from = v;
		else if (!strcmp(k, "text")) a.text = v;
		else if (!strcmp(k, "account")) a.account = v;
		else if (!strcmp(k, "name")) a.name = v;
		else if (!strcmp(k, "chunk")) {
			long c;
			if (util_parse_long(v, 1, BATCH_CHUNK, &c) < 0) {
				json_decref(root);
				return usage_error("send: --chunk must be 1 to %d", BATCH_CHUNK);
			}
			a.chunk = (size_t)c;
		} else {
			size_t j;
			for (j = 0; j < sizeof(passed) / sizeof(passed[0]); j++)
				if (!strcmp(k, passed[j]))
					break;
			if (j == sizeof(passed) / sizeof(passed[0])) {
				json_decref(root);
				return usage_error("send: unknown option '--%.40s'", k);
			}
			char key[32];
			util_strlcpy(key, k, sizeof(key));
			for (char *c = key; *c; c++)
				if (*c == '-')
					*c = '_';
			double d;
			json_t *val;
			if ((!strcmp(key, "push_timeout") || !strcmp(key, "validity")) && util_parse_double(v, -1e18, 1e18, &d) == 0)
				val = json_real(d);
			else if (!strcmp(key, "channels")) {
				val = json_array();
				char tmp[64];
				util_strlcpy(tmp, v, sizeof(tmp));
				for (char *s = tmp, *tok; (tok = strsep(&s, ","));)
					json_array_append_new(val, json_string(tok));
			} else
				val = json_string(v);
			json_object_set_new(root, key, val);
		}
	}
	if (!a.csv || !a.from || !a.text) {
		json_decref(root);
		return usage_error("send needs --csv FILE --from SENDER --text TEXT");
	}
	size_t flen = strlen(a.from);
	int from_ok = flen >= 1 && flen <= 20;
	for (size_t i = 0; from_ok && i < flen; i++)
		from_ok = a.from[i] >= 0x20 && a.from[i] <= 0x7e;
	if (!from_ok) {
		json_decref(root);
		return usage_error("send: --from must be 1 to 20 printable ASCII characters");
	}

	struct config cfg;
	config_defaults(&cfg);
	if (opt->ini) {
		char err[512] = "";
		if (config_load(&cfg, opt->ini, err, sizeof(err)) < 0) {
			fail_msg("%s: %s", opt->ini, err[0] ? err : "cannot load configuration");
			json_decref(root);
			return EXIT_FAIL;
		}
	}
	if (!a.text[0] || strlen(a.text) > cfg.max_text || !batch_text_ok(a.text, strlen(a.text))) {
		json_decref(root);
		return usage_error("send: --text must be 1 to %zu bytes of UTF-8 text", cfg.max_text);
	}
	struct intake_opts o;
	const char *field = NULL;
	char msg[256];
	if (msgjson_options(root, &cfg, &o, &field, msg, sizeof(msg)) < 0) {
		json_decref(root);
		return usage_error("send: --%s: %s", field ? field : "?", msg);
	}
	o.source = "batch";

	FILE *f = strcmp(a.csv, "-") == 0 ? stdin : fopen(a.csv, "rb");
	if (!f) {
		fail_msg("send: %s: %s", a.csv, strerror(errno));
		json_decref(root);
		return EXIT_FAIL;
	}
	struct stat st;
	size_t size = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
	int rc = EXIT_FAIL;
	PGconn *conn = NULL;
	struct send_intake si;
	memset(&si, 0, sizeof(si));
	char *buf = malloc(SEND_BUF), (*to)[21] = calloc(a.chunk, sizeof(*to));
	char **texts = calloc(a.chunk, sizeof(*texts)), *arena = NULL;
	size_t arena_cap = 0, arena_len = 0;
	size_t len = 0, off = 0, consumed = 0, line = 1, n = 0, loaded = 0, rejected = 0;
	long long account = 0, batch = 0;
	int eof = 0, tty = isatty(2), tenth = 0, header = 1;
	struct batch_csv csv;
	memset(&csv, 0, sizeof(csv));
	size_t *offs = calloc(a.chunk, sizeof(*offs));
	if (!buf || !to || !texts || !offs) {
		fail_msg("send: out of memory");
		goto out;
	}
	if (!(conn = connect_db(opt)))
		goto out;
	{
		const char *p[1] = { a.account };
		PGresult *res = send_exec(conn, a.account
			? "SELECT id FROM accounts WHERE name = $1 AND NOT disabled"
			: "SELECT id FROM accounts WHERE NOT disabled", a.account ? 1 : 0, p, "send: account");
		if (!res)
			goto out;
		if (PQntuples(res) != 1) {
			fail_msg("send: %s", a.account ? "no such account (or disabled)"
				 : "several accounts: say which with --account NAME");
			PQclear(res);
			goto out;
		}
		account = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	if (send_intake_open(&si, opt, &cfg) < 0)
		goto out;
	for (;;) {
		/* one record from the buffer, refilled as needed */
		size_t rl, next;
		int complete = batch_csv_record(buf + off, len - off, &rl, &next);
		if (!complete && !eof) {
			if (len - off >= BATCH_RECORD_MAX + 1) {
				fail_msg("send: line %zu: record longer than %d bytes (an unclosed quote?)", line, BATCH_RECORD_MAX);
				goto fail;
			}
			memmove(buf, buf + off, len - off);
			len -= off;
			off = 0;
			size_t got = fread(buf + len, 1, SEND_BUF - len, f);
			if (got == 0) {
				if (ferror(f)) {
					fail_msg("send: %s: read error", a.csv);
					goto fail;
				}
				eof = 1;
			}
			len += got;
			continue;
		}
		if (!complete && off == len)
			break;   /* end of file */
		const char *rec = buf + off;
		size_t at = line;
		for (size_t i = 0; i < next; i++)
			line += rec[i] == '\n';
		off += next;
		consumed += next;
		if (header) {
			header = 0;
			if (batch_csv_open(&csv, rec, rl, a.text, cfg.max_text, &field, msg, sizeof(msg)) < 0) {
				fail_msg("send: %s: %s", field, msg);
				goto out;
			}
			if (csv.tpl.nvars && (strcmp(o.purpose, "AD") == 0 || o.sms_text)) {
				fail_msg("send: a --text with {variables} cannot be combined with --purpose AD or --sms-text");
				goto out;
			}
			const char *p[3] = { NULL, a.name, "0" };
			char acc[24];
			snprintf(acc, sizeof(acc), "%lld", account);
			p[0] = acc;
			PGresult *res = send_exec(conn, stmts_batch_create.sql, 3, p, "send: batch");
			if (!res)
				goto out;
			batch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
			o.batch_id = batch;
			continue;
		}
		char num[21];
		const char *text = NULL;
		enum batch_row r = batch_csv_row(&csv, rec, rl, num, &text, &field, msg, sizeof(msg));
		if (r == BATCH_ROW_NOMEM) {
			fail_msg("send: out of memory");
			goto fail;
		}
		if (r == BATCH_ROW_BAD) {
			if (rejected++ < BATCH_REJECTED_SHOWN) {
				if (tty)
					fputc('\n', stderr);
				fprintf(stderr, PROG ": send: line %zu rejected: %s: %s\n", at, field, msg);
			}
		}
		if (r == BATCH_ROW_OK) {
			memcpy(to[n], num, sizeof(num));
			if (text) {
				size_t tl = strlen(text) + 1;
				if (arena_cap - arena_len < tl) {
					size_t cap = (arena_cap ? arena_cap * 2 : 64 * 1024) + tl;
					char *na = realloc(arena, cap);
					if (!na) {
						fail_msg("send: out of memory");
						goto fail;
					}
					arena = na;
					arena_cap = cap;
				}
				memcpy(arena + arena_len, text, tl);
				offs[n] = arena_len;
				arena_len += tl;
			}
			n++;
		}
		if (n == a.chunk || (n > 0 && eof && off == len)) {
			for (size_t i = 0; csv.tpl.nvars && i < n; i++)
				texts[i] = arena + offs[i];
			if (send_chunk(&si, account, &a, n, to, csv.tpl.nvars ? texts : NULL, &o) < 0)
				goto fail;
			loaded += n;
			n = 0;
			arena_len = 0;
			send_progress(consumed, size, loaded, tty, &tenth);
		}
	}
	if (header) {
		fail_msg("send: %s is empty: a header line with a 'to' column is required", a.csv);
		goto out;
	}
	if (n > 0) {
		for (size_t i = 0; csv.tpl.nvars && i < n; i++)
			texts[i] = arena + offs[i];
		if (send_chunk(&si, account, &a, n, to, csv.tpl.nvars ? texts : NULL, &o) < 0)
			goto fail;
		loaded += n;
	}
	send_progress(size, size, loaded, tty, &tenth);
	if (tty && size)
		fputc('\n', stderr);
	{
		char id[24], total[24];
		snprintf(id, sizeof(id), "%lld", batch);
		snprintf(total, sizeof(total), "%zu", loaded);
		const char *p[2] = { id, total };
		PGresult *res = send_exec(conn, stmts_batch_loaded.sql, 2, p, "send: batch loaded");
		if (!res)
			goto fail;
		PQclear(res);
	}
	fprintf(stderr, PROG ": send: batch %lld: %zu recipients loaded, %zu rows rejected\n", batch, loaded, rejected);
	printf("%lld\n", batch);
	rc = flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
	goto out;
fail:
	if (batch) {
		char id[24];
		snprintf(id, sizeof(id), "%lld", batch);
		const char *p[4] = { id, NULL, "FAILED", "pushgatectl send failed while loading" };
		PGresult *res = send_exec(conn, recipient_stmt_batch_cancel.sql, 4, p, "send: marking the batch failed");
		if (res)
			PQclear(res);
		fail_msg("send: batch %lld failed after %zu recipients; its loaded part was canceled", batch, loaded);
	}
out:
	batch_csv_close(&csv);
	send_intake_close(&si);
	if (conn)
		PQfinish(conn);
	if (f && f != stdin)
		fclose(f);
	free(buf);
	free(to);
	free(texts);
	free(offs);
	free(arena);
	json_decref(root);
	return rc;
}

/*
 * Each command checks its arguments before it connects (a usage error never
 * waits for the database), then runs on one connection.
 */
typedef int (*db_fn)(PGconn *conn, void *arg);

static int with_db(const struct options *opt, db_fn fn, void *arg)
{
	PGconn *conn = connect_db(opt);
	if (!conn)
		return EXIT_FAIL;
	int rc = fn(conn, arg);
	PQfinish(conn);
	return rc;
}

static int db_migrate(PGconn *conn, void *arg)
{
	return cmd_migrate(conn, *(const int *)arg);
}

/* pushgatectl migrate [--to VERSION] */
static int run_migrate(const struct options *opt, int argc, char **argv)
{
	int upto = INT_MAX;
	if (argc == 3 && strcmp(argv[1], "--to") == 0) {
		char *end;
		errno = 0;
		long v = strtol(argv[2], &end, 10);
		if (errno || *end || end == argv[2] || v < 1 || v > INT_MAX)
			return usage_error("migrate --to takes a schema version");
		upto = (int)v;
	} else if (argc != 1) {
		return usage_error("migrate takes no arguments but --to VERSION");
	}
	return with_db(opt, db_migrate, &upto);
}

/* pushgatectl account ... (the limits, senders, hosts and keys are tenants.c's) */
struct account_args {
	enum { A_ADD, A_LIST, A_DISABLE, A_ENABLE, A_LIMIT, A_POLICY, A_WEBHOOK } what;
	const char *name, *role, *value, *url, *secret;
	int         any_sender;
};

static int db_account(PGconn *conn, void *arg)
{
	const struct account_args *a = arg;
	switch (a->what) {
	case A_ADD:
		return cmd_account_add(conn, a->name, a->role, a->any_sender);
	case A_LIST:
		return cmd_account_list(conn);
	case A_DISABLE:
	case A_ENABLE:
		return cmd_account_disable(conn, a->name, a->what == A_DISABLE);
	case A_LIMIT:
		return cmd_account_limit(conn, a->name, a->value);
	case A_POLICY:
		return cmd_account_policy(conn, a->name, a->value);
	case A_WEBHOOK:
		return cmd_account_webhook(conn, a->name, a->url, a->secret);
	}
	return EXIT_FAIL;
}

/* A command of its own module: fn(NULL, ...) checks the arguments before connecting, then runs with the connection. */
static int run_module(const struct options *opt, int (*fn)(PGconn *conn, int argc, char **argv), int argc,
		      char **argv)
{
	int rc = fn(NULL, argc, argv);
	PGconn *conn = rc == EXIT_OK ? connect_db(opt) : NULL;
	if (rc == EXIT_OK)
		rc = conn ? fn(conn, argc, argv) : EXIT_FAIL;
	PQfinish(conn);
	return rc;
}

static int run_account(const struct options *opt, int argc, char **argv)
{
	struct account_args a = { .role = "client" };
	if (argc >= 2 && tenants_handles(argv[1])) {
		return run_module(opt, tenants_ctl, argc - 1, argv + 1);
	} else if (argc >= 2 && strcmp(argv[1], "add") == 0) {
		while (argc >= 4 && (strcmp(argv[2], "--operator") == 0 || strcmp(argv[2], "--any-sender") == 0)) {
			if (argv[2][2] == 'o')
				a.role = "operator";
			else
				a.any_sender = 1;
			memmove(&argv[2], &argv[3], (size_t)(argc - 3) * sizeof(argv[0]));
			argc--;
		}
		if (argc != 3)
			return usage_error("account add needs exactly one NAME");
		if (!account_name_ok(argv[2]))
			return usage_error("account name must be 1-%d printable characters, "
					   "without leading or trailing spaces", ACCOUNT_NAME_MAX);
		a.what = A_ADD;
		a.name = argv[2];
	} else if (argc >= 2 && strcmp(argv[1], "limit") == 0) {
		long n;
		if (argc != 4 || util_parse_long(argv[3], 0, 100000000, &n) < 0)
			return usage_error("account limit needs NAME and a number of recipients a minute (0: none)");
		a.what = A_LIMIT;
		a.name = argv[2];
		a.value = argv[3];
	} else if (argc >= 2 && (strcmp(argv[1], "disable") == 0 || strcmp(argv[1], "enable") == 0)) {
		if (argc != 3)
			return usage_error("account %s needs exactly one NAME", argv[1]);
		a.what = strcmp(argv[1], "disable") == 0 ? A_DISABLE : A_ENABLE;
		a.name = argv[2];
	} else if (argc >= 2 && strcmp(argv[1], "policy") == 0) {
		if (argc != 4 || (strcmp(argv[3], "sms") != 0 && strcmp(argv[3], "drop") != 0))
			return usage_error("account policy needs NAME and sms or drop");
		a.what = A_POLICY;
		a.name = argv[2];
		a.value = argv[3];
	} else if (argc >= 2 && strcmp(argv[1], "webhook") == 0) {
		if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[3], "off") == 0))
			return usage_error("account webhook needs NAME and URL [SECRET], or NAME off");
		a.what = A_WEBHOOK;
		a.name = argv[2];
		if (strcmp(argv[3], "off") != 0) {
			if (!webhook_url_ok(argv[3]))
				return usage_error("account webhook: URL must be http:// or https://, printable, "
						   "without blanks, at most 2000 characters");
			a.url = argv[3];
			a.secret = argc == 5 ? argv[4] : NULL;
			if (a.secret && (!a.secret[0] || strlen(a.secret) > 200))
				return usage_error("account webhook: SECRET must be 1-200 characters");
		}
	} else if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return usage_error("account list takes no arguments");
		a.what = A_LIST;
	} else {
		return usage_error("account needs a subcommand: add [--operator] [--any-sender] NAME | policy NAME sms|drop |"
				   " webhook NAME URL|off | limit NAME N | disable|enable NAME | quota | balance |"
				   " senders | sender | urls | requests | rotate | options | show | list");
	}
	return with_db(opt, db_account, &a);
}

static int db_binds(PGconn *conn, void *arg)
{
	(void)arg;
	return cmd_binds(conn);
}

static int db_orphans(PGconn *conn, void *arg)
{
	(void)arg;
	return cmd_orphans(conn);
}

static int run_binds(const struct options *opt, int argc, char **argv)
{
	if (argc != 1)
		return usage_error("%s takes no arguments", argv[0]);
	return with_db(opt, argv[0][0] == 'b' ? db_binds : db_orphans, NULL);
}

static int db_status(PGconn *conn, void *arg)
{
	return cmd_status(conn, *(const int64_t *)arg);
}

static int run_status(const struct options *opt, int argc, char **argv)
{
	int64_t message_id;
	if (argc != 2)
		return usage_error("status needs exactly one MESSAGE_ID");
	if (parse_id(argv[1], &message_id) < 0) {
		char shown[4 * 40 + 4];
		display(argv[1], 40, shown, sizeof(shown));
		return usage_error("status: MESSAGE_ID must be a number, not '%s'", shown);
	}
	return with_db(opt, db_status, &message_id);
}

struct report_args {
	const char        *batch;
	char               since[STMTS_SINCE_MAX];
	enum report_format fmt;
};

static int db_report(PGconn *conn, void *arg)
{
	const struct report_args *r = arg;
	return cmd_report(conn, r->since, r->batch, r->fmt);
}

static int run_report(const struct options *opt, int argc, char **argv)
{
	struct report_args r = { .fmt = FMT_TABLE };
	for (int i = 1; i < argc; i++) {
		const char *opt_name = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
		char shown[4 * 40 + 4];
		if (strcmp(opt_name, "--batch") != 0 && strcmp(opt_name, "--since") != 0
		    && strcmp(opt_name, "--format") != 0) {
			display(opt_name, 40, shown, sizeof(shown));
			return usage_error("report: unknown option '%s'", shown);
		}
		if (!arg)
			return usage_error("report: %s needs a value", opt_name);
		i++;
		display(arg, 40, shown, sizeof(shown));
		if (opt_name[2] == 'f') {
			if (strcmp(arg, "table") == 0)
				r.fmt = FMT_TABLE;
			else if (strcmp(arg, "csv") == 0)
				r.fmt = FMT_CSV;
			else if (strcmp(arg, "json") == 0)
				r.fmt = FMT_JSON;
			else
				return usage_error("report: --format must be table, csv or json, not '%s'", shown);
		} else if (opt_name[2] == 'b') {
			int64_t bid;
			if (parse_id(arg, &bid) < 0 || bid == 0) {
				fail_msg("report: --batch must be a batch id, not '%s'", shown);
				return EXIT_FAIL;
			}
			r.batch = arg;
		} else if (stmts_parse_since(arg, r.since, sizeof(r.since)) < 0) {
			fail_msg("report: bad --since '%s': use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]", shown);
			return EXIT_FAIL;
		}
	}
	if (r.batch && r.since[0])
		return usage_error("report: give --batch or --since, not both");
	if (!r.batch && !r.since[0]) {
		time_t t = time(NULL) - 24 * 3600;
		struct tm tm;
		if (!gmtime_r(&t, &tm) || !strftime(r.since, sizeof(r.since), "%Y-%m-%d %H:%M:%S+00:00", &tm)) {
			fail_msg("report: cannot read the clock");
			return EXIT_FAIL;
		}
	}
	return with_db(opt, db_report, &r);
}

struct plan_args {
	const struct store_stmt *st;
	int                      nvalues;
	char                   **values;
};

static int db_plan(PGconn *conn, void *arg)
{
	const struct plan_args *a = arg;
	return cmd_plan(conn, a->st, a->nvalues, a->values);
}

/* The transition table of recipient.c, as text or as a Graphviz graph; no database. */
static int run_states(const struct options *opt, int argc, char **argv)
{
	(void)opt;
	int dot = argc == 2 && !strcmp(argv[1], "--dot");
	if (argc > 2 || (argc == 2 && !dot))
		return usage_error("states takes no argument but --dot");
	if (dot)
		printf("digraph recipient {\n  rankdir=LR;\n  node [shape=box];\n  new [shape=point];\n");
	for (size_t i = 0; i < recipient_edges_count; i++) {
		const struct recipient_edge *e = &recipient_edges[i];
		if (dot)
			printf("  %s -> %s [label=\"%s\"];\n", e->from[0] ? e->from : "new", e->to, e->stmt->name);
		else
			printf("%-14s -> %-14s %-16s %s%s\n", e->from[0] ? e->from : "(new)", e->to, e->stmt->name, e->on,
			       e->decided ? " (recipient_decide)" : "");
	}
	if (dot) {
		for (size_t i = 0; i < recipient_edges_count; i++)
			if (recipient_state_final(recipient_edges[i].to))
				printf("  %s [peripheries=2];\n", recipient_edges[i].to);
		printf("}\n");
	}
	return flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run_plan(const struct options *opt, int argc, char **argv)
{
	const struct store_stmt *plan;
	if (argc == 1) {
		for (size_t i = 0; i < sizeof(plan_stmts) / sizeof(plan_stmts[0]); i++)
			printf("%s\n", plan_stmts[i]->name);
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
	}
	if (!(plan = plan_stmt(argv[1]))) {
		char shown[4 * 40 + 4];
		display(argv[1], 40, shown, sizeof(shown));
		return usage_error("plan needs one STATEMENT (`" PROG " plan` lists them), not '%s'", shown);
	}
	if (argc > 2 && argc - 2 != plan->nparams)
		return usage_error("plan %s takes %d values, or none", plan->name, plan->nparams);
	struct plan_args a = { plan, argc - 2, argv + 2 };
	return with_db(opt, db_plan, &a);
}

static int run_send(const struct options *opt, int argc, char **argv)
{
	return cmd_send(opt, argc - 1, argv + 1);
}

static int run_smpp_account(const struct options *opt, int argc, char **argv)
{
	return run_module(opt, smpp_accounts_ctl, argc, argv);
}

static int run_messages(const struct options *opt, int argc, char **argv)
{
	return run_module(opt, ctl_messages, argc, argv);
}

static int run_rollup(const struct options *opt, int argc, char **argv)
{
	return run_module(opt, ctl_rollup, argc, argv);
}

/* pushgatectl retention status|run: [retention] of -c INI gives the defaults */
static int run_retention(const struct options *opt, int argc, char **argv)
{
	static struct config cfg;
	config_defaults(&cfg);
	if (opt->ini) {
		char err[512] = "";
		if (config_load(&cfg, opt->ini, err, sizeof(err)) < 0) {
			fail_msg("%s: %s", opt->ini, err[0] ? err : "cannot load configuration");
			return EXIT_FAIL;
		}
	}
	int rc = ctl_retention(NULL, argc, argv, &cfg);
	PGconn *conn = rc == EXIT_OK ? connect_db(opt) : NULL;
	if (rc == EXIT_OK)
		rc = conn ? ctl_retention(conn, argc, argv, &cfg) : EXIT_FAIL;
	PQfinish(conn);
	return rc;
}

static int run_route(const struct options *opt, int argc, char **argv)
{
	return run_module(opt, ctl_routes, argc, argv);
}

static int run_help(const struct options *opt, int argc, char **argv)
{
	(void)opt, (void)argc, (void)argv;
	usage(stdout);
	return EXIT_OK;
}

/* The commands: argv[0] is the command's name. */
static const struct {
	const char *name;
	int       (*run)(const struct options *opt, int argc, char **argv);
} commands[] = {
	{ "migrate", run_migrate },
	{ "account", run_account },
	{ "status", run_status },
	{ "messages", run_messages },
	{ "route", run_route },
	{ "binds", run_binds },
	{ "orphans", run_binds },
	{ "report", run_report },
	{ "rollup", run_rollup },
	{ "retention", run_retention },
	{ "plan", run_plan },
	{ "send", run_send },
	{ "states", run_states },
	{ "smpp-account", run_smpp_account },
	{ "help", run_help },
};

int main(int argc, char **argv)
{
	struct options opt = { NULL, NULL };
	int ch;

	opterr = 0;
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	while ((ch = getopt_long(argc, argv, "+c:d:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt.ini = optarg;
			break;
		case 'd':
			opt.conninfo = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf(PROG " %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			if (optopt == 'c' || optopt == 'd')
				return usage_error("option -%c needs an argument", optopt);
			if (optopt)
				return usage_error("unknown option -%c", optopt);
			return usage_error("%s", "unknown option");
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		return usage_error("no command given");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return commands[i].run(&opt, argc, argv);
	char shown[4 * 40 + 4];
	display(argv[0], 40, shown, sizeof(shown));
	return usage_error("unknown command '%s'", shown);
}
