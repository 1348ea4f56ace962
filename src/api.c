/*
 * api.c: the HTTP API.  Routes requests from one table (routes[], at the
 * end: each path's methods, how its body is read, and its handler:
 * messages, devices, the device WebSocket, batches, Kannel's sendsms,
 * reports, the inbox page, health and metrics), has their API keys checked (auth.c: a minute's cache shared by
 * every door), has POST /v1/messages bodies checked field by field
 * (msgjson.c), and hands messages to the intake queue (intake.c) and other
 * work to the recipient statements (recipient.c).  Campaigns (batches.c) and sendsms
 * (kannel.c) get the doors' shared dependencies (door.h), never the API.
 * Every body arrives streamed (api_wants_stream) and is read only once its
 * request may have it (api_body_gate): a request that needs a key has it
 * checked from its headers first (no 100-continue, no body byte read for
 * an unknown key), the public ones (device registration, Kannel's sendsms)
 * get a few KiB, the others none.
 * A 202 is sent only from a done() callback, i.e. after the commit.  A
 * method a route does not take gets 405 with that route's Allow.  Counts
 * every answer and its latency per route (api_on_response) for /metrics.  Never
 * waits on the network or the database; the one disk read is the inbox page's few small files.  Never
 * trusts a byte of the request: every field is type- and length-checked
 * and every error names the field.
 */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "batches.h"
#include "console.h"
#include "devices.h"
#include "kannel.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "msgjson.h"
#include "pgarr.h"
#include "push.h"
#include "respond.h"
#include "search.h"
#include "stmts.h"
#include "util.h"

#define PUBLIC_BODY_MAX  4096u           /* device registration and verification: a few fields */
#define SENDSMS_BODY_MAX (64u * 1024u)  /* Kannel's POST form: credentials may be inside, so read unauthenticated */

/* Answers and their latency per route (index 0: refused before a route was known). */
#define API_MAX_ROUTES 24
struct route_stats {
	struct metrics_histogram latency;
	unsigned long long       by_class[5];   /* 1xx .. 5xx */
};

struct api {
	struct api_deps    d;
	struct route_stats stats[API_MAX_ROUTES + 1];
};

enum pend_kind { PEND_AUTH, PEND_INTAKE, PEND_GET, PEND_DEVICES, PEND_REPORT, PEND_ACCOUNT, PEND_SEARCH,
		 PEND_OPERATOR };

/* One request waiting for the store.  Owned by api.c; freed when answered. */
struct pending {
	struct store_job     job;
	struct api          *api;
	struct http_request *req;
	enum pend_kind       kind;
	enum pend_kind       next;        /* what to do after PEND_AUTH */
	unsigned char        hash[KEYS_HASH_LEN];
	char                 hash_text[2 + 2 * KEYS_HASH_LEN + 1];
	long long            account_id;
	int                  operator;    /* the key has the operator role */
	long long            message_id;
	char                 msisdn[21];  /* PEND_DEVICES */
	const char          *params[2];
	char                 p_account[24], p_id[24];
	struct intake_req    intake;      /* PEND_INTAKE */
	struct msgjson   msg;
	void                *json;
	int                  bad;         /* body invalid: 400 once authenticated */
	const char          *bad_code, *bad_field;
	char                 bad_msg[256];
	char                 r_since[STMTS_SINCE_MAX], r_account[129];   /* PEND_REPORT */
	const char          *r_params[3];
	struct search_query  sq;          /* PEND_SEARCH */
	struct search_job    sj;
	const char          *rest;        /* PEND_OPERATOR: the path after /v1/operator/ (in req) */
};

/* Reports and the console: reads that may take long, off the requests' connection when there is one. */
static struct store *api_slow_store(const struct api *api)
{
	return api->d.slow_store ? api->d.slow_store : api->d.door.store;
}

static void pending_free(struct pending *p)
{
	msgjson_free(&p->msg, p->json);
	free(p);
}

static void store_error_reply(struct pending *p, enum store_error e, const char *err)
{
	if (e == STORE_UNAVAILABLE) {
		respond_error(p->req, 503, "unavailable", NULL, "database unavailable, retry later");
	} else {
		log_error("api", "ev=store_error path=%s err=\"%s\"", p->req->path, err ? err : "");
		respond_error(p->req, 500, "internal", NULL, "internal error");
	}
	pending_free(p);
}

static void run_next(struct pending *p);

static void auth_done(struct store_job *job, enum store_error e, const char *err)
{
	struct pending *p = job->arg;
	if (e != STORE_OK) {
		store_error_reply(p, e, err);
		return;
	}
	if (PQntuples(job->res) != 1) {
		respond_error(p->req, 401, "unauthorized", NULL, "unknown API key");
		pending_free(p);
		return;
	}
	p->account_id = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
	p->operator = strcmp(PQgetvalue(job->res, 0, 1), "operator") == 0;
	auth_remember(p->api->d.door.auth, p->hash, job->res);
	if (auth_request_admit(p->api->d.door.auth, p->req, p->hash, p->account_id) < 0) {
		pending_free(p);
		return;
	}
	run_next(p);
}

/* Returns 0 when the request can go on (maybe later, via run_next), -1 when answered. */
static int authenticate(struct pending *p)
{
	const char *h = http_header(p->req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		respond_error(p->req, 401, "unauthorized", NULL, "missing 'Authorization: Bearer <key>'");
		return -1;
	}
	const char *key = h + 7;
	while (*key == ' ')
		key++;
	size_t klen = strlen(key);
	if (klen == 0 || klen > 256) {
		respond_error(p->req, 401, "unauthorized", NULL, "unknown API key");
		return -1;
	}
	keys_hash(key, klen, p->hash);
	p->account_id = auth_cached(p->api->d.door.auth, p->hash, NULL, &p->operator);
	if (p->account_id > 0)
		return auth_request_admit(p->api->d.door.auth, p->req, p->hash, p->account_id);
	keys_hash_bytea(key, klen, p->hash_text, sizeof(p->hash_text));
	p->kind = PEND_AUTH;
	p->params[0] = p->hash_text;
	p->job = (struct store_job){ .stmt = &stmts_auth, .nparams = 1, .params = p->params,
				     .done = auth_done, .arg = p };
	store_submit(p->api->d.door.store, &p->job);
	return 1;
}

/* --- POST /v1/messages --------------------------------------------------------- */

static void intake_done(struct intake_req *r, enum store_error e, const char *err, PGresult *res, int first,
			int rows)
{
	struct pending *p = r->arg;
	if (e != STORE_OK) {
		store_error_reply(p, e, err);
		return;
	}
	int wait;
	enum intake_refusal why = intake_refusal_of(res, first, rows, &wait);
	if (why != INTAKE_ADMITTED) {
		log_info("api", "ev=refused account=%lld why=%s recipients=%zu", p->account_id, intake_refusal_name(why),
			 p->msg.n_to);
		respond_refused(p->req, why, wait, NULL);
		pending_free(p);
		return;
	}
	json_t *list = json_array();
	long long mid = rows > 0 ? strtoll(PQgetvalue(res, first, 0), NULL, 10) : 0;
	for (int i = first; i < first + rows; i++)
		json_array_append_new(list, json_pack("{s:s, s:I}", "to", PQgetvalue(res, i, 2),
						      "id", (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10)));
	int replay = rows > 0 && strcmp(PQgetvalue(res, first, 5), "t") == 0;
	log_info("api", "ev=%s message=%lld account=%lld recipients=%d", replay ? "replayed" : "accepted", mid,
		 p->account_id, rows);
	respond_json(p->req, 202, replay ? "Idempotent-Replayed: true\r\n" : NULL,
			 json_pack("{s:I, s:o}", "id", (json_int_t)mid, "recipients", list));
	pending_free(p);
}

static void message_submit(struct pending *p)
{
	const char *key = http_header(p->req, "Idempotency-Key");
	if (key) {
		size_t n = strlen(key);
		int ok = n > 0 && n < sizeof(p->msg.opts.idempotency_key);
		for (size_t i = 0; ok && i < n; i++)
			ok = key[i] > 0x20 && key[i] < 0x7f;
		if (!ok) {
			respond_error(p->req, 400, "invalid_field", "Idempotency-Key",
					  "Idempotency-Key must be 1 to 128 printable ASCII characters");
			pending_free(p);
			return;
		}
		util_strlcpy(p->msg.opts.idempotency_key, key, sizeof(p->msg.opts.idempotency_key));
	}
	p->kind = PEND_INTAKE;
	p->intake = (struct intake_req){
		.msg = { p->account_id, p->msg.from, p->msg.text, p->msg.n_to, (const char (*)[21])p->msg.to, NULL,
			 &p->msg.opts },
		.done = intake_done, .arg = p,
	};
	intake_submit(p->api->d.door.intake, &p->intake);
}

/* --- GET /v1/messages/{id} ----------------------------------------------------- */

/* A statement answering one JSON document (GET /v1/messages/{id}, GET /v1/account): 200 with it, or 404. */
static void json_row_done(struct store_job *job, enum store_error e, const char *err)
{
	struct pending *p = job->arg;
	if (e != STORE_OK) {
		store_error_reply(p, e, err);
		return;
	}
	if (PQntuples(job->res) != 1) {
		respond_error(p->req, 404, "not_found", NULL,
				  p->kind == PEND_ACCOUNT ? "no such account" : "no such message");
	} else {
		respond_json_text(p->req, 200, NULL, PQgetvalue(job->res, 0, 0));
	}
	pending_free(p);
}

static void get_submit(struct pending *p)
{
	snprintf(p->p_id, sizeof(p->p_id), "%lld", p->message_id);
	snprintf(p->p_account, sizeof(p->p_account), "%lld", p->account_id);
	p->kind = PEND_GET;
	p->params[0] = p->p_id;
	p->params[1] = p->p_account;
	p->job = (struct store_job){ .stmt = &stmts_message_json, .nparams = 2, .params = p->params,
				     .done = json_row_done, .arg = p };
	store_submit(p->api->d.door.store, &p->job);
}

/* --- GET /v1/account --------------------------------------------------------------- */

/* The account's own limits, usage (UTC day and month), balance and senders (sql/018); $1 account. */
static const struct store_stmt stmt_account_json = {
	"account_json",
	"SELECT json_build_object('id', a.id, 'name', a.name,"
	"  'limits', json_build_object('recipients_per_minute', NULLIF(a.rate_limit, 0),"
	"    'requests_per_minute_per_node', NULLIF(a.request_limit, 0),"
	"    'daily_quota', NULLIF(a.daily_quota, 0), 'monthly_quota', NULLIF(a.monthly_quota, 0)),"
	"  'usage', json_build_object("
	"    'today', coalesce((SELECT u.recipients FROM account_usage u WHERE u.account_id = a.id"
	"                       AND u.day = (now() AT TIME ZONE 'UTC')::date), 0),"
	"    'this_month', coalesce((SELECT sum(u.recipients) FROM account_usage u WHERE u.account_id = a.id"
	"                       AND u.day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date), 0)),"
	"  'balance', a.balance,"
	"  'senders', json_build_object('policy', CASE WHEN a.senders_listed THEN 'listed' ELSE 'any' END,"
	"    'approved', coalesce((SELECT json_agg(s.sender ORDER BY s.sender) FROM account_senders s"
	"                          WHERE s.account_id = a.id), '[]'::json)),"
	"  'url_hosts', to_json(a.url_hosts),"
	"  'previous_key_until', to_char(a.prev_key_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
	" FROM accounts a WHERE a.id = $1::bigint",
	1, 0,
};

static void account_submit(struct pending *p)
{
	snprintf(p->p_account, sizeof(p->p_account), "%lld", p->account_id);
	p->kind = PEND_ACCOUNT;
	p->params[0] = p->p_account;
	p->job = (struct store_job){ .stmt = &stmt_account_json, .nparams = 1, .params = p->params,
				     .done = json_row_done, .arg = p };
	store_submit(p->api->d.door.store, &p->job);
}

/* --- GET /v1/reports/summary ------------------------------------------------------ */


/* since=, batch=, account= of the query into p; an error is kept for after auth. */
static void report_parse(struct pending *p)
{
	const char *q = p->req->query;
	char since[64] = "";
	int seen_since = 0, seen_batch = 0, seen_account = 0;
	while (q && *q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		const char *v = eq ? eq + 1 : q + len;
		size_t vlen = (size_t)(q + len - v);
		const char *field = NULL;
		int rc = -1;
		char num[24];
		long id;
		if (klen == 5 && memcmp(q, "since", 5) == 0 && !seen_since++) {
			field = "since";
			rc = util_query_decode(v, vlen, since, sizeof(since));
			if (rc == 0)
				rc = stmts_parse_since(since, p->r_since, sizeof(p->r_since));
		} else if (klen == 5 && memcmp(q, "batch", 5) == 0 && !seen_batch++) {
			field = "batch";
			rc = util_query_decode(v, vlen, num, sizeof(num));
			if (rc == 0 && (strspn(num, "0123456789") != strlen(num)
					|| util_parse_long(num, 1, 0x7fffffffffffffffL, &id) < 0))
				rc = -1;
			if (rc == 0)
				p->message_id = id;
		} else if (klen == 7 && memcmp(q, "account", 7) == 0 && !seen_account++) {
			field = "account";
			rc = util_query_decode(v, vlen, p->r_account, sizeof(p->r_account));
			if (rc == 0 && !p->r_account[0])
				rc = -1;
		}
		if (rc < 0) {
			p->bad = 1;
			p->bad_code = "invalid_field";
			p->bad_field = field;
			snprintf(p->bad_msg, sizeof(p->bad_msg), "%s",
				 !field ? "unknown or repeated query parameter: use since, batch, account"
				 : field[0] == 's' ? "since must be YYYY-MM-DD or an ISO 8601 time (YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])"
				 : field[0] == 'b' ? "batch must be a batch id"
				 : "account must be an account name");
			return;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	if (!seen_since) {
		/* the last 24 hours; with a batch: all of it */
		time_t t = time(NULL) - 86400;
		struct tm tm;
		if (seen_batch)
			util_strlcpy(p->r_since, "-infinity", sizeof(p->r_since));
		else if (gmtime_r(&t, &tm))
			strftime(p->r_since, sizeof(p->r_since), "%Y-%m-%d %H:%M:%S+00:00", &tm);
	}
}

static void report_done(struct store_job *job, enum store_error e, const char *err)
{
	struct pending *p = job->arg;
	if (e != STORE_OK) {
		store_error_reply(p, e, err);
		return;
	}
	if (PQntuples(job->res) != 1) {
		respond_error(p->req, 404, "not_found", p->message_id ? "batch" : "account",
				  p->message_id ? "no such batch" : "no such account");
	} else {
		respond_json_text(p->req, 200, NULL, PQgetvalue(job->res, 0, 0));
	}
	pending_free(p);
}

/* Clients see their own account; operators any account (account=NAME) or all of them. */
static void report_submit(struct pending *p)
{
	const struct store_stmt *stmt;
	int n = 2;
	if (p->r_account[0] && !p->operator) {
		respond_error(p->req, 403, "forbidden", "account", "account= needs an operator key");
		pending_free(p);
		return;
	}
	snprintf(p->p_account, sizeof(p->p_account), "%lld", p->account_id);
	snprintf(p->p_id, sizeof(p->p_id), "%lld", p->message_id);
	p->r_params[0] = p->r_since;
	p->r_params[1] = NULL;
	p->r_params[2] = NULL;
	if (p->message_id) {
		stmt = &stmts_report_batch;
		p->r_params[1] = p->p_id;
		p->r_params[2] = p->operator ? NULL : p->p_account;
		n = 3;
	} else if (p->r_account[0]) {
		stmt = &stmts_report_named;
		p->r_params[1] = p->r_account;
	} else if (p->operator) {
		stmt = &stmts_report_all;
		n = 1;
	} else {
		stmt = &stmts_report_account;
		p->r_params[1] = p->p_account;
	}
	p->kind = PEND_REPORT;
	p->job = (struct store_job){ .stmt = stmt, .nparams = n, .params = p->r_params,
				     .done = report_done, .arg = p };
	store_submit(api_slow_store(p->api), &p->job);
}

static void run_next(struct pending *p)
{
	if (p->bad) {
		respond_error(p->req, 400, p->bad_code, p->bad_field, p->bad_msg);
		pending_free(p);
	} else if (p->next == PEND_INTAKE) {
		double wait = auth_admit(p->api->d.door.auth, p->hash, p->account_id, p->msg.n_to);
		if (wait > 0) {
			respond_rate_limited(p->req, wait, p->msg.n_to, wait >= 1e9);
			pending_free(p);
			return;
		}
		message_submit(p);
	} else if (p->next == PEND_REPORT) {
		report_submit(p);
	} else if (p->next == PEND_ACCOUNT) {
		account_submit(p);
	} else if (p->next == PEND_OPERATOR) {
		if (!p->operator)
			respond_error(p->req, 403, "forbidden", NULL, "the console's API needs an operator key");
		else
			console_handle(api_slow_store(p->api), p->req, p->rest);
		pending_free(p);
	} else if (p->next == PEND_SEARCH) {
		p->kind = PEND_SEARCH;
		search_prepare(&p->sj, &p->sq, p->account_id);
		p->sj.job.done = json_row_done;
		p->sj.job.arg = p;
		store_submit(api_slow_store(p->api), &p->sj.job);
	} else if (p->next == PEND_DEVICES) {
		if (!p->operator)
			respond_error(p->req, 403, "forbidden", NULL, "listing devices needs an operator key");
		else
			devices_list(p->api->d.devices, p->req, p->msisdn);
		pending_free(p);
	} else {
		get_submit(p);
	}
}

/* --- routing --------------------------------------------------------------------- */

static void readiness(struct api *api, struct api_readiness *r)
{
	*r = (struct api_readiness){ .db_up = store_is_up(api->d.door.store), .open = 1, .smpp = "down" };
	if (api->d.readiness)
		api->d.readiness(api->d.arg, r);
}

/* Liveness: the loop answers.  What is up is said, the status is always 200. */
static void handle_healthz(struct api *api, struct http_request *req)
{
	struct api_readiness r;
	readiness(api, &r);
	respond_json(req, 200, NULL, json_pack("{s:s, s:s, s:s, s:I}", "status", "ok",
					       "db", r.db_up ? "up" : "down", "smpp", r.smpp,
					       "db_pending", (json_int_t)store_pending(api->d.door.store)));
}

/*
 * Readiness: 200 when every database connection is up, the listeners are
 * open, at least one SMPP route has a bound transmitter (or none is
 * configured) and the daemon is not draining; else 503 naming what is not.
 */
static void handle_readyz(struct api *api, struct http_request *req)
{
	struct api_readiness r;
	readiness(api, &r);
	const char *why = !r.db_up ? "database unavailable" : !r.open ? "starting" : r.draining ? "draining"
			: !strcmp(r.smpp, "down") ? "no SMPP route bound" : NULL;
	json_t *body = json_pack("{s:b, s:s, s:s, s:b}", "ready", why == NULL, "db", r.db_up ? "up" : "down",
				 "smpp", r.smpp, "draining", r.draining);
	if (body && why)
		json_object_set_new(body, "reason", json_string(why));
	respond_json(req, why ? 503 : 200, why ? "Retry-After: 1\r\n" : NULL, body);
}

/* 1 when the peer ("127.0.0.1:5555", "[::1]:5555") is this host. */
static int peer_is_loopback(const char *peer)
{
	return strncmp(peer, "127.", 4) == 0 || strncmp(peer, "[::1]:", 6) == 0 || strncmp(peer, "[::ffff:127.", 12) == 0;
}

static void api_metrics(struct api *api, struct metrics_out *o);

static void handle_metrics(struct api *api, struct http_request *req)
{
	/* [server] metrics_token set: that bearer token from anywhere; else this host only */
	const char *token = api->d.door.cfg->metrics_token;
	if (token[0]) {
		const char *h = http_header(req, "Authorization");
		const char *got = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : "";
		size_t n = strlen(token);
		if (strlen(got) != n || CRYPTO_memcmp(got, token, n) != 0) {
			respond_error(req, 401, "unauthorized", NULL, "missing or wrong metrics token");
			return;
		}
	} else if (!peer_is_loopback(req->peer)) {
		respond_error(req, 403, "forbidden", NULL, "metrics are served to this host only, or with metrics_token");
		return;
	}
	struct metrics_out o = { 0 };
	metrics_one(&o, "pushgate_db_up", METRICS_GAUGE, "1 while every database connection of this node is up",
		    (unsigned long long)store_is_up(api->d.door.store));
	metrics_one(&o, "pushgate_db_pending", METRICS_GAUGE,
		    "statements of the main connection queued or in the database", store_pending(api->d.door.store));
	api_metrics(api, &o);
	if (api->d.metrics)
		api->d.metrics(api->d.arg, &o);
	if (o.oom)
		respond_error(req, 503, "unavailable", NULL, "out of memory");
	else
		http_respond(req, 200, "Content-Type: text/plain; version=0.0.4\r\n", o.buf, o.len);
	metrics_out_free(&o);
}

/* --- the inbox page (web_root) ------------------------------------------------------ */

#ifndef PUSHGATE_WEB_ROOT
#define PUSHGATE_WEB_ROOT "/usr/local/share/pushgate/web"
#endif

static const char *content_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js") || !strcmp(dot, ".mjs"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	if (!strcmp(dot, ".png"))
		return "image/png";
	if (!strcmp(dot, ".json") || !strcmp(dot, ".webmanifest"))
		return "application/json";
	return "application/octet-stream";
}

static void serve_file(struct http_request *req, const char *path, const char *ctype);

/* Small local files: read whole (at most 1 MiB); names are one path segment, no dot first. */
static void serve_static(struct api *api, struct http_request *req, const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64 || name[0] == '.' || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
		respond_error(req, 404, "not_found", NULL, "no such file");
		return;
	}
	const char *root = api->d.door.cfg->web_root[0] ? api->d.door.cfg->web_root : PUSHGATE_WEB_ROOT;
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	serve_file(req, path, content_type(name));
}

/* One file of the operator's choosing (a path from the configuration), as it is. */
static void serve_file(struct http_request *req, const char *path, const char *ctype)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	if (f) {
		buf = malloc(1024 * 1024);
		len = buf ? fread(buf, 1, 1024 * 1024, f) : 0;
		fclose(f);
	}
	if (!buf) {
		respond_error(req, 404, "not_found", NULL, "no such file");
		return;
	}
	/* the page's own script, styles and WebSocket only, and never inside another site's frame
	 * (its Reject button must not be clickable through an overlay) */
	char extra[512];
	snprintf(extra, sizeof(extra), "Content-Type: %s\r\nCache-Control: no-cache\r\n"
		 "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
		 "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
		 " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n",
		 ctype);
	http_respond(req, 200, extra, buf, len);
	free(buf);
}

static int parse_id(const char *s, long long *out)
{
	long v;
	if (util_parse_long(s, 1, 0x7fffffffffffffffL, &v) < 0)
		return -1;
	for (const char *c = s; *c; c++)
		if (!isdigit((unsigned char)*c))
			return -1;
	*out = v;
	return 0;
}

static void api_route(struct api *api, struct http_request *req);

/* --- bodies: read only once the request may have one ------------------------------ */

int api_wants_stream(const struct http_request *req, void *arg)
{
	(void)req;
	(void)arg;
	return 1;   /* every body: api_body_gate decides whether, and how much of it, is read */
}

/* --- the route table (at the end of the file) ------------------------------------- */

/* How a route's body is read (api_body_gate): never (answered at once), after the key, or without one. */
enum body_rule { BODY_NONE, BODY_KEYED, BODY_PUBLIC };
enum body_limit { LIMIT_BODY, LIMIT_PUBLIC, LIMIT_SENDSMS, LIMIT_BATCH };

struct route {
	const char     *path;      /* exact; a prefix when it ends in '/' (the handler gets the rest) */
	unsigned        methods;   /* M_* allowed (405 with Allow otherwise); 0: the handler sorts them out */
	enum body_rule  body;
	enum body_limit limit;
	void          (*handle)(struct api *api, struct http_request *req, const char *rest);
};

static const struct route *find_route(const char *path, const char **rest);

static size_t body_limit(const struct api *api, const char *path)
{
	const struct route *r = find_route(path, NULL);
	const struct config *cfg = api->d.door.cfg;
	switch (r ? r->limit : LIMIT_BODY) {
	case LIMIT_PUBLIC:  return PUBLIC_BODY_MAX;
	case LIMIT_SENDSMS: return cfg->max_body < SENDSMS_BODY_MAX ? cfg->max_body : SENDSMS_BODY_MAX;
	case LIMIT_BATCH:   return cfg->max_batch_body;
	default:            return cfg->max_body;
	}
}

static void gate_body(struct http_request *req, int status, void *arg)
{
	struct api *api = arg;
	if (status == 0) {
		api_route(api, req);
		return;
	}
	char msg[96];
	if (status == 413) {
		snprintf(msg, sizeof(msg), "the body is larger than %zu bytes", body_limit(api, req->path));
		respond_error(req, 413, "too_large", NULL, msg);
	} else if (status == 400) {
		respond_error(req, 400, "bad_request", NULL, "broken body framing");
	} else if (status == 503) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
	} else {
		respond_error(req, 400, "bad_request", NULL, "the client went away");   /* nobody reads it */
	}
}

static void gate_authed(void *arg, long long account_id, int operator)
{
	struct http_request *req = arg;
	(void)operator;
	if (account_id <= 0)
		return;   /* answered (401, 503): the body is never read */
	struct api *api = req->user;
	req->user = NULL;
	if (http_request_read_body(req, body_limit(api, req->path), gate_body, api) < 0)
		respond_error(req, 400, "bad_request", NULL, "the body can't be read");
}

/*
 * A request whose body has not been read: the key first when its path needs
 * one (from the headers; the handler finds it cached afterwards), the body
 * up to its path's limit then; paths that take no body are answered at once
 * (404, 405) without reading it.
 */
static void api_body_gate(struct api *api, struct http_request *req)
{
	const struct route *r = find_route(req->path, NULL);
	if (!r || r->body == BODY_NONE) {
		api_route(api, req);   /* health, metrics, pages, the WebSocket, unknown paths: none reads a body */
		return;
	}
	if (r->body == BODY_KEYED) {
		req->user = api;
		auth_key(api->d.door.auth, req, NULL, gate_authed, req);
		return;
	}
	if (http_request_read_body(req, body_limit(api, req->path), gate_body, api) < 0)
		respond_error(req, 400, "bad_request", NULL, "the body can't be read");
}

void api_handle(struct http_request *req, void *arg)
{
	struct api *api = arg;
	if (req->body_streamed && !batches_wants_stream(req, &api->d.door)) {
		api_body_gate(api, req);   /* a CSV upload streams to batches.c, which authenticates first */
		return;
	}
	api_route(api, req);
}

/*
 * A request for the store: its key checked first (authenticate), then next.
 * arg: the number (PEND_DEVICES) or the path after /v1/operator/
 * (PEND_OPERATOR, it lives in req).
 */
static void start_pending(struct api *api, struct http_request *req, enum pend_kind next, long long id,
			  const char *arg)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		return;
	}
	p->api = api;
	p->req = req;
	p->next = next;
	p->message_id = id;
	if (next == PEND_OPERATOR)
		p->rest = arg;
	else if (arg)
		util_strlcpy(p->msisdn, arg, sizeof(p->msisdn));
	if (next == PEND_REPORT)
		report_parse(p);   /* a bad query is answered after auth */
	if (next == PEND_SEARCH && search_parse(req->query, 0, &p->sq, &p->bad_field, p->bad_msg, sizeof(p->bad_msg)) < 0) {
		p->bad = 1;
		p->bad_code = "invalid_field";
	}

	if (next == PEND_INTAKE) {
		if (!store_is_up(api->d.door.store)) {
			respond_error(req, 503, "unavailable", NULL, "database unavailable, retry later");
			pending_free(p);
			return;
		}
		/* Validated now, answered after auth: an unknown key learns nothing. */
		if (msgjson_parse(req->body, req->body_len, api->d.door.cfg, &p->msg, &p->json,
				      &p->bad_code, &p->bad_field, p->bad_msg, sizeof(p->bad_msg)) < 0)
			p->bad = 1;
	}
	int auth_rc = authenticate(p);
	if (auth_rc < 0)
		pending_free(p);
	else if (auth_rc == 0)
		run_next(p);
}

/* --- the routes ------------------------------------------------------------------------- */

static void route_healthz(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	handle_healthz(api, req);
}

static void route_readyz(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	handle_readyz(api, req);
}

static void route_metrics(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	handle_metrics(api, req);
}

static void route_page(struct api *api, struct http_request *req, const char *rest)
{
	serve_static(api, req, rest && rest[0] ? rest : "index.html");
}

/* The operator console: its page (web root), its charting library (Debian's libjs-chart.js). */
static void route_console(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	serve_static(api, req, "console.html");
}

static void route_chart(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	serve_file(req, api->d.door.cfg->console_chart_js, "text/javascript; charset=utf-8");
}

static void route_operator(struct api *api, struct http_request *req, const char *rest)
{
	start_pending(api, req, PEND_OPERATOR, 0, rest);
}

static void route_sendsms(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	kannel_sendsms(&api->d.door, req);
}

static void route_batches(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	batches_handle(&api->d.door, req);
}

static void route_device_socket(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	if (!api->d.push)
		respond_error(req, 404, "not_found", NULL, "no such resource");
	else
		push_accept(api->d.push, req);
}

/* /v1/device/{wakeup,acks,pending} with the device's token; /v1/device/webpush-key for anyone. */
static void route_device_own(struct api *api, struct http_request *req, const char *rest)
{
	if (!api->d.devices) {
		respond_error(req, 404, "not_found", NULL, "no such resource");
	} else if (strcmp(rest, "webpush-key") == 0) {
		if (req->method == HTTP_M_GET || req->method == HTTP_M_HEAD)
			devices_webpush_key(api->d.devices, req);
		else
			respond_not_allowed(req, "GET, HEAD");
	} else {
		devices_own(api->d.devices, req, rest);
	}
}

static void route_devices(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	if (!api->d.devices)
		respond_error(req, 404, "not_found", NULL, "no such resource");
	else
		devices_register(api->d.devices, req);
}

/* /v1/devices/{id}/verify (POST), /v1/devices/{id} (DELETE), /v1/devices/{msisdn} (GET, operators). */
static void route_device(struct api *api, struct http_request *req, const char *rest)
{
	long long id = 0;
	const char *slash = strchr(rest, '/');
	if (!api->d.devices) {
		respond_error(req, 404, "not_found", NULL, "no such resource");
		return;
	}
	if (slash && strcmp(slash, "/verify") == 0) {
		char num[24];
		size_t n = (size_t)(slash - rest);
		if (n >= sizeof(num) || (memcpy(num, rest, n), num[n] = '\0', parse_id(num, &id) < 0)) {
			respond_error(req, 404, "not_found", NULL, "no such device");
			return;
		}
		if (req->method != HTTP_M_POST) {
			respond_not_allowed(req, "POST");
			return;
		}
		devices_verify(api->d.devices, req, id);
		return;
	}
	/* DELETE /v1/devices/{device id}; GET /v1/devices/{msisdn}: any number registration takes (+, 20 digits) */
	char msisdn[21];
	if (req->method != HTTP_M_GET && req->method != HTTP_M_DELETE) {
		respond_not_allowed(req, "GET, DELETE");
		return;
	}
	if (slash || (req->method == HTTP_M_DELETE ? parse_id(rest, &id) : util_msisdn(rest, msisdn)) < 0) {
		respond_error(req, 404, "not_found", NULL, "no such resource");
		return;
	}
	if (req->method == HTTP_M_DELETE) {
		devices_revoke(api->d.devices, req, id);
		return;
	}
	start_pending(api, req, PEND_DEVICES, 0, msisdn);
}

/* POST: a message; GET: the account's messages (search.c). */
static void route_messages(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	start_pending(api, req, req->method == HTTP_M_GET ? PEND_SEARCH : PEND_INTAKE, 0, NULL);
}

static void route_message(struct api *api, struct http_request *req, const char *rest)
{
	long long id;
	if (parse_id(rest, &id) < 0)
		respond_error(req, 404, "not_found", NULL, "no such message");
	else
		start_pending(api, req, PEND_GET, id, NULL);
}

static void route_report(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	start_pending(api, req, PEND_REPORT, 0, NULL);
}

static void route_account(struct api *api, struct http_request *req, const char *rest)
{
	(void)rest;
	start_pending(api, req, PEND_ACCOUNT, 0, NULL);
}

static void route_unknown(struct api *api, struct http_request *req, const char *rest)
{
	(void)api;
	(void)rest;
	respond_error(req, 404, "not_found", NULL, "no such resource");
}

#define M_GET    (1u << HTTP_M_GET)
#define M_POST   (1u << HTTP_M_POST)
#define M_DELETE (1u << HTTP_M_DELETE)
#define M_HEAD   (1u << HTTP_M_HEAD)

/*
 * Every path pushgated answers, in the order they are matched.  The key of
 * a BODY_KEYED route is checked from the headers before a byte of its body
 * is read (api_body_gate); its handler finds it cached.  An unknown path
 * is a 404; under /v1/ a body sent to one is not read without a key.
 */
static const struct route routes[] = {
	{ "/healthz",            M_GET | M_HEAD, BODY_NONE,   LIMIT_BODY,    route_healthz },
	{ "/readyz",             M_GET | M_HEAD, BODY_NONE,   LIMIT_BODY,    route_readyz },
	{ "/metrics",            M_GET,          BODY_NONE,   LIMIT_BODY,    route_metrics },
	{ "/",                   M_GET | M_HEAD, BODY_NONE,   LIMIT_BODY,    route_page },
	{ "/web/",               M_GET | M_HEAD, BODY_NONE,   LIMIT_BODY,    route_page },
	{ "/console",            M_GET | M_HEAD, BODY_NONE,   LIMIT_BODY,    route_console },
	{ "/console/chart.js",   M_GET | M_HEAD, BODY_NONE,   LIMIT_BODY,    route_chart },
	{ "/cgi-bin/sendsms",    0,              BODY_PUBLIC, LIMIT_SENDSMS, route_sendsms },   /* GET, POST: kannel.c */
	{ "/v1/batches",         0,              BODY_KEYED,  LIMIT_BATCH,   route_batches },   /* batches.c */
	{ "/v1/batches/",        0,              BODY_KEYED,  LIMIT_BODY,    route_batches },
	{ "/v1/device",          M_GET,          BODY_NONE,   LIMIT_BODY,    route_device_socket },   /* WebSocket */
	{ "/v1/device/",         0,              BODY_PUBLIC, LIMIT_PUBLIC,  route_device_own },   /* devices.c */
	{ "/v1/devices",         M_POST,         BODY_PUBLIC, LIMIT_PUBLIC,  route_devices },
	{ "/v1/devices/",        0,              BODY_PUBLIC, LIMIT_PUBLIC,  route_device },
	{ "/v1/messages",        M_GET | M_POST, BODY_KEYED,  LIMIT_BODY,    route_messages },
	{ "/v1/messages/",       M_GET,          BODY_KEYED,  LIMIT_BODY,    route_message },
	{ "/v1/reports/summary", M_GET,          BODY_KEYED,  LIMIT_BODY,    route_report },
	{ "/v1/account",         M_GET,          BODY_KEYED,  LIMIT_BODY,    route_account },
	{ "/v1/operator/",       M_GET,          BODY_KEYED,  LIMIT_BODY,    route_operator },   /* console.c */
	{ "/v1/",                0,              BODY_KEYED,  LIMIT_BODY,    route_unknown },
};

static const struct route *find_route(const char *path, const char **rest)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		size_t n = strlen(r->path);
		int prefix = n > 1 && r->path[n - 1] == '/';
		if (prefix ? strncmp(path, r->path, n) == 0 : strcmp(path, r->path) == 0) {
			if (rest)
				*rest = prefix ? path + n : "";
			return r;
		}
	}
	return NULL;
}

/* "GET, HEAD" from a method mask. */
static void allow_text(unsigned methods, char *out, size_t cap)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ M_GET, "GET" }, { M_HEAD, "HEAD" }, { M_POST, "POST" }, { M_DELETE, "DELETE" },
	};
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (methods & names[i].bit)
			o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", o ? ", " : "", names[i].name);
}

static void api_route(struct api *api, struct http_request *req)
{
	const char *rest = "";
	const struct route *r = find_route(req->path, &rest);
	if (!r) {
		route_unknown(api, req, rest);
		return;
	}
	req->route = (int)(r - routes) + 1;
	if (r->methods && !(r->methods & (1u << req->method))) {
		char allow[48];
		allow_text(r->methods, allow, sizeof(allow));
		respond_not_allowed(req, allow);
		return;
	}
	r->handle(api, req, rest);
}

_Static_assert(sizeof(routes) / sizeof(routes[0]) <= API_MAX_ROUTES, "API_MAX_ROUTES too small");

void api_on_response(const struct http_request *req, int status, double seconds, void *arg)
{
	struct api *api = arg;
	int i = req->route > 0 && (size_t)req->route <= sizeof(routes) / sizeof(routes[0]) ? req->route : 0;
	struct route_stats *st = &api->stats[i];
	metrics_observe(&st->latency, seconds);
	if (status >= 100 && status < 600)
		st->by_class[status / 100 - 1]++;
}

/* Per route: answers by status class and their latency (routes never answered are left out). */
static void api_metrics(struct api *api, struct metrics_out *o)
{
	static const char *const classes[5] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	size_t n = sizeof(routes) / sizeof(routes[0]);
	metrics_family(o, "pushgate_http_responses_total", METRICS_COUNTER,
		       "HTTP answers by route (the path pattern that took the request) and status class");
	for (size_t i = 0; i <= n; i++)
		for (int k = 0; k < 5; k++)
			if (api->stats[i].by_class[k]) {
				const char *lab[] = { "route", i ? routes[i - 1].path : "none", "code", classes[k], NULL };
				metrics_u64(o, "pushgate_http_responses_total", lab, api->stats[i].by_class[k]);
			}
	metrics_family(o, "pushgate_http_request_duration_seconds", METRICS_HISTOGRAM,
		       "from a request's first byte to its answer being written, by route");
	for (size_t i = 0; i <= n; i++)
		if (api->stats[i].latency.count) {
			const char *lab[] = { "route", i ? routes[i - 1].path : "none", NULL };
			metrics_histogram_write(o, "pushgate_http_request_duration_seconds", lab, &api->stats[i].latency);
		}
}

struct api *api_new(const struct api_deps *deps)
{
	struct api *api = calloc(1, sizeof(*api));
	if (!api)
		return NULL;
	api->d = *deps;
	for (size_t i = 0; i <= API_MAX_ROUTES; i++)
		metrics_histogram_init(&api->stats[i].latency, &metrics_http_bounds);
	return api;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	free(api);
}
