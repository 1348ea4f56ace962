/*
 * console.c: what the operator console (web/console.html) reads, under
 * /v1/operator/ with an operator key: the overview (recipients a minute per
 * channel and route, delivery per hour by channel, route and sender, the
 * queues, every node's binds and the paused routes, the webhook backlog),
 * the message search across accounts (search.c's statements with no
 * account, or one named) and one message with its account and its whole
 * history.  The per-minute throughput is counted from the recipients of
 * the messages in messages_created's range (at most a day); delivery per
 * hour reads the report rollups (report_counts, sql/026: rows of grain 'h'
 * from the hour of now - hours, at most a week), as fresh as their
 * watermark (as_of): by channel and route from the final recipients, by
 * sender the accepted ones and their outcomes.  Owns one request's job
 * until it is answered; never writes.
 */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "depths.h"
#include "respond.h"
#include "search.h"
#include "stmts.h"
#include "util.h"

#define DELIVERED_SQL "'PUSH_DELIVERED', 'SMS_DELIVERED'"
#define FAILED_SQL    "'SMS_FAILED', 'SMS_EXPIRED', 'SMS_UNKNOWN', 'DROPPED'"
#define COUNT_CAP     "10000000"

/* One recipient row of the last SPAN, with the columns throughput groups by. */
#define WINDOW_ROWS(SPAN) \
	"SELECT m.created_at, coalesce(r.channel, 'none') AS channel, coalesce(r.route, '-') AS route" \
	"  FROM messages m JOIN recipients r ON r.message_id = m.id" \
	"  WHERE m.created_at >= now() - " SPAN

/* Sums of report_counts' rows (rc): recipients accepted, final, delivered, failed. */
#define ACCEPTED "coalesce(sum(recipients) FILTER (WHERE state = 'ACCEPTED'), 0)"
#define FINALS   "coalesce(sum(recipients) FILTER (WHERE state <> 'ACCEPTED'), 0)"
#define ROLLED_OUTCOMES \
	"coalesce(sum(recipients) FILTER (WHERE state IN (" DELIVERED_SQL ")), 0)::bigint AS delivered," \
	" coalesce(sum(recipients) FILTER (WHERE state IN (" FAILED_SQL ")), 0)::bigint AS failed"

/* A queue (depths.h) as json_build_object's key and value. */
#define QUEUE(NAME, COND) "'" NAME "', " DEPTHS_COUNT(COND, COUNT_CAP)

/*
 * $1 minutes of throughput (per minute, from the recipients), $2 hours of
 * delivery (per UTC hour of acceptance, from the rollups' hours: whole
 * hours from the one $2 hours ago).  A recipient is in report_counts once
 * accepted (state 'ACCEPTED', no route nor channel) and once final (its
 * state, route and channel; '' for none): by channel and route count the
 * final ones (a success rate needs nothing else; what is not final shows
 * in the queues), by sender the accepted ones, pending = accepted - final.
 */
const struct store_stmt console_stmt_overview = {
	"console_overview",
	"WITH tp AS MATERIALIZED (" WINDOW_ROWS("make_interval(mins => $1::int)") "),"
	" rc AS MATERIALIZED (SELECT start AS at, sender, route, channel, state, recipients FROM report_counts"
	"   WHERE grain = 'h' AND start >= date_trunc('hour', now() - make_interval(hours => $2::int), 'UTC')),"
	" by_channel AS (SELECT at, CASE WHEN channel = '' THEN 'none' ELSE channel END AS channel,"
	"   sum(recipients)::bigint AS recipients, " ROLLED_OUTCOMES
	"   FROM rc WHERE state <> 'ACCEPTED' GROUP BY 1, 2),"
	" by_route AS (SELECT at, route, sum(recipients)::bigint AS recipients, " ROLLED_OUTCOMES
	"   FROM rc WHERE state <> 'ACCEPTED' AND channel = 'sms' AND route <> '' GROUP BY 1, 2),"
	" by_sender AS (SELECT sender, " ACCEPTED "::bigint AS recipients, " ROLLED_OUTCOMES ","
	"   (" ACCEPTED " - " FINALS ")::bigint AS pending FROM rc GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20)"
	" SELECT json_build_object('generated_at', now(), 'minutes', $1::int, 'hours', $2::int,"
	"  'as_of', (SELECT watermark FROM report_rollup_state WHERE id = 1),"
	"  'throughput', coalesce((SELECT json_agg(json_build_object('at', at, 'channel', channel, 'route', route,"
	"      'recipients', n) ORDER BY at, channel, route)"
	"    FROM (SELECT date_trunc('minute', created_at) AS at, channel, route, count(*) AS n FROM tp"
	"          GROUP BY 1, 2, 3) t), '[]'::json),"
	"  'by_channel', coalesce((SELECT json_agg(row_to_json(c) ORDER BY c.at, c.channel) FROM by_channel c), '[]'::json),"
	"  'by_route', coalesce((SELECT json_agg(row_to_json(r) ORDER BY r.at, r.route) FROM by_route r), '[]'::json),"
	"  'by_sender', coalesce((SELECT json_agg(row_to_json(s) ORDER BY s.recipients DESC, s.sender) FROM by_sender s),"
	"    '[]'::json),"
	"  'queues', json_build_object(" DEPTHS_QUEUES(QUEUE, ", ") "),"
	"  'binds', coalesce((SELECT json_agg(json_build_object('node', node, 'route', route, 'bind', bind, 'state', state,"
	"      'window_used', window_used, 'window_size', window_size, 'submits', submits, 'throttled', throttled,"
	"      'updated_at', updated_at) ORDER BY route, node, bind) FROM smpp_binds), '[]'::json),"
	"  'paused_routes', coalesce((SELECT json_agg(json_build_object('route', route, 'paused_at', paused_at,"
	"      'reason', reason) ORDER BY route) FROM route_pauses), '[]'::json),"
	"  'webhooks', (SELECT json_build_object('backlog', count(*), 'oldest_due', min(next_attempt_at))"
	"    FROM (SELECT next_attempt_at FROM webhook_outbox"
	"          WHERE delivered_at IS NULL AND given_up_at IS NULL LIMIT " COUNT_CAP ") w))::text",
	2, 0,
};

/* A message's account, by its id (the operator's view: any account). */
static const struct store_stmt stmt_message_account = {
	"console_message_account",
	"SELECT m.account_id, a.name FROM messages m JOIN accounts a ON a.id = m.account_id WHERE m.id = $1::bigint",
	1, 0,
};

static const struct store_stmt stmt_account_id = {
	"console_account_id", "SELECT id FROM accounts WHERE name = $1", 1, 0,
};

enum op { OP_OVERVIEW, OP_SEARCH, OP_MESSAGE };

/* One request until it is answered.  Owned here; freed with its answer. */
struct creq {
	struct store        *store;
	struct http_request *req;
	enum op              op;
	int                  step;          /* 0: the first statement, 1: the second */
	struct store_job     job;
	const char          *params[2];
	char                 p_a[24], p_b[24];
	char                 account[129];  /* OP_MESSAGE: its account's name */
	struct search_query  sq;
	struct search_job    sj;
};

static void creq_done(struct store_job *job, enum store_error e, const char *err);

static void fail(struct creq *c, enum store_error e, const char *err)
{
	if (e == STORE_UNAVAILABLE)
		respond_error(c->req, 503, "unavailable", NULL, "database unavailable, retry later");
	else
		respond_error(c->req, 500, "internal", NULL, err && strstr(err, "statement timeout") ? "too slow"
										       : "internal error");
	free(c);
}

static void submit(struct creq *c, const struct store_stmt *st, int n)
{
	c->job = (struct store_job){ .stmt = st, .nparams = n, .params = c->params, .done = creq_done, .arg = c };
	store_submit(c->store, &c->job);
}

static void search_submit(struct creq *c, long long account_id)
{
	search_prepare(&c->sj, &c->sq, account_id);
	c->sj.job.done = creq_done;
	c->sj.job.arg = c;
	c->step = 1;
	store_submit(c->store, &c->sj.job);
}

static void creq_done(struct store_job *job, enum store_error e, const char *err)
{
	struct creq *c = job->arg;
	if (e != STORE_OK) {
		fail(c, e, err);
		return;
	}
	PGresult *res = job->res;
	switch (c->op) {
	case OP_OVERVIEW:
		respond_json_text(c->req, 200, NULL, PQgetvalue(res, 0, 0));
		break;
	case OP_SEARCH:
		if (c->step == 0) {   /* the account named: its id */
			if (PQntuples(res) != 1) {
				respond_error(c->req, 404, "not_found", "account", "no such account");
				break;
			}
			search_submit(c, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
			return;
		}
		respond_json_text(c->req, 200, NULL, PQgetvalue(res, 0, 0));
		break;
	case OP_MESSAGE:
		if (PQntuples(res) != 1) {
			respond_error(c->req, 404, "not_found", NULL, "no such message");
			break;
		}
		if (c->step == 0) {   /* its account, then the message as its account sees it */
			util_strlcpy(c->p_b, PQgetvalue(res, 0, 0), sizeof(c->p_b));
			util_strlcpy(c->account, PQgetvalue(res, 0, 1), sizeof(c->account));
			c->params[1] = c->p_b;
			c->step = 1;
			submit(c, &stmts_message_json, 2);
			return;
		} else {
			json_error_t jerr;
			json_t *msg = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
			if (!msg) {
				respond_error(c->req, 500, "internal", NULL, "internal error");
				break;
			}
			respond_json(c->req, 200, NULL, json_pack("{s:{s:I, s:s}, s:o}", "account", "id",
								  (json_int_t)strtoll(c->p_b, NULL, 10), "name",
								  c->account, "message", msg));
		}
		break;
	}
	free(c);
}

/* minutes= and hours= of the overview; -1 when one is bad. */
static int overview_params(const char *q, long *minutes, long *hours, const char **field)
{
	*minutes = 60;
	*hours = 24;
	while (q && *q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		char v[16];
		size_t vl = eq ? (size_t)(q + len - eq - 1) : 0;
		if (!eq || vl == 0 || vl >= sizeof(v)) {
			*field = NULL;
			return -1;
		}
		memcpy(v, eq + 1, vl);
		v[vl] = '\0';
		size_t kl = (size_t)(eq - q);
		if (kl == 7 && !memcmp(q, "minutes", 7)) {
			*field = "minutes";
			if (util_parse_long(v, 5, 1440, minutes) < 0)
				return -1;
		} else if (kl == 5 && !memcmp(q, "hours", 5)) {
			*field = "hours";
			if (util_parse_long(v, 1, 168, hours) < 0)
				return -1;
		} else {
			*field = NULL;
			return -1;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

void console_handle(struct store *store, struct http_request *req, const char *rest)
{
	if (req->method != HTTP_M_GET) {
		respond_not_allowed(req, "GET");
		return;
	}
	struct creq *c = calloc(1, sizeof(*c));
	if (!c) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		return;
	}
	c->store = store;
	c->req = req;
	c->params[0] = c->p_a;
	if (!strcmp(rest, "overview")) {
		long minutes, hours;
		const char *field = NULL;
		if (overview_params(req->query, &minutes, &hours, &field) < 0) {
			respond_error(req, 400, "invalid_field", field,
				      field ? (field[0] == 'm' ? "minutes must be 5 to 1440" : "hours must be 1 to 168")
					    : "unknown query parameter: use minutes, hours");
			free(c);
			return;
		}
		snprintf(c->p_a, sizeof(c->p_a), "%ld", minutes);
		snprintf(c->p_b, sizeof(c->p_b), "%ld", hours);
		c->params[1] = c->p_b;
		c->op = OP_OVERVIEW;
		submit(c, &console_stmt_overview, 2);
		return;
	}
	if (!strcmp(rest, "messages")) {
		const char *field;
		char msg[256];
		if (search_parse(req->query, 1, &c->sq, &field, msg, sizeof(msg)) < 0) {
			respond_error(req, 400, "invalid_field", field, msg);
			free(c);
			return;
		}
		c->op = OP_SEARCH;
		if (c->sq.account[0]) {
			c->params[0] = c->sq.account;
			submit(c, &stmt_account_id, 1);
		} else {
			search_submit(c, 0);
		}
		return;
	}
	long id;
	if (!strncmp(rest, "messages/", 9) && rest[9] && strspn(rest + 9, "0123456789") == strlen(rest + 9) &&
	    util_parse_long(rest + 9, 1, 0x7fffffffffffffffL, &id) == 0) {
		snprintf(c->p_a, sizeof(c->p_a), "%ld", id);
		c->op = OP_MESSAGE;
		submit(c, &stmt_message_account, 1);
		return;
	}
	respond_error(req, 404, "not_found", NULL, "no such resource");
	free(c);
}
