/*
 * kannel.c: Kannel's sendsms interface, GET|POST /cgi-bin/sendsms, so an
 * application written for Kannel's smsbox sends through pushgate unchanged
 * (docs/kannel.md lists what is honoured and what is ignored).
 *
 * Takes the request (query string, form body, or a raw text body with
 * X-Kannel-* headers) to kform.c, which reads its parameters into a message
 * (the text converted to UTF-8), checks the account (username = account
 * name, password = its API key: auth.c's key cache, which every door
 * shares, else one statement) and hands the message to the intake queue every entry point
 * uses (one statement for all that arrive together).  "0: Accepted for
 * delivery" (202) goes out only after that commit.  A dlr-url and dlr-mask
 * travel with the message (sql/functions/kannel_dlr_fill.sql turns them into GET reports
 * in the webhook outbox).
 * Owns one request record per call, freed when answered.  Never logs the
 * password or the text, never blocks, never trusts a byte of the request.
 */
#include "kannel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "keys.h"
#include "kform.h"
#include "log.h"
#include "stmts.h"
#include "util.h"

#define TEXT_HTML      "Content-Type: text/html\r\n"

/* One sendsms request.  Owned by kannel.c from kannel_sendsms() until answered. */
struct kreq {
	const struct door   *door;
	struct http_request *req;
	struct store_job     job;            /* the account check */
	const char          *params[2];
	char                 user[129];
	unsigned char        hash[KEYS_HASH_LEN];
	char                 hash_text[2 + 2 * KEYS_HASH_LEN + 1];
	long long            account_id;
	struct kform_msg     msg;            /* the message (kform.c) */
	struct intake_opts   opts;
	struct intake_req    intake;
	/* a request error, answered once the account is known (an unknown user learns nothing) */
	int                  bad_status;
	const char          *bad_text;
};

/* --- answers ------------------------------------------------------------------ */

static void reply(struct http_request *req, int status, const char *text)
{
	http_respond(req, status, status == 503 ? TEXT_HTML "Retry-After: 1\r\n" : TEXT_HTML, text, strlen(text));
}

static void kreq_free(struct kreq *k)
{
	kform_msg_free(&k->msg);
	free(k);
}

/* --- parameters ---------------------------------------------------------------- */

static const char *request_header(const void *arg, const char *name)
{
	return http_header(arg, name);
}

/*
 * Every parameter into k (kform.c), then the intake options.  0, or -1
 * with k->bad_status/bad_text set (the answer after the account check),
 * or -2 when out of memory.
 */
static int parse_request(struct kreq *k, const struct kform_src *src, const char *raw_body, size_t raw_len,
			 const char *raw_charset, int binary_body)
{
	const struct config *cfg = k->door->cfg;
	int rc = kform_parse(&k->msg, src, raw_body, raw_len, raw_charset, binary_body, cfg->max_recipients,
			     cfg->max_text);
	if (rc < 0) {
		k->bad_status = 400;
		k->bad_text = k->msg.bad_text;
		return rc;
	}
	intake_opts_default(&k->opts);
	k->opts.source = "kannel";
	k->opts.dlr_url = k->msg.dlr_url;
	k->opts.dlr_mask = k->msg.dlr_mask;
	if (k->msg.validity > 0)
		k->opts.validity = (double)k->msg.validity * 60;
	if (k->msg.deferred > 0) {
		time_t at = time(NULL) + (time_t)k->msg.deferred * 60;
		struct tm tm;
		if (!gmtime_r(&at, &tm)) {
			k->bad_status = 400;
			k->bad_text = "Deferred field misformed, rejected";
			return -1;
		}
		strftime(k->opts.send_at, sizeof(k->opts.send_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (k->msg.channels[0])
		snprintf(k->opts.channels, sizeof(k->opts.channels), "{%s}", k->msg.channels);
	k->bad_text = NULL;
	k->bad_status = 0;
	return 0;
}

/* --- store ------------------------------------------------------------------------ */

static void store_failed(struct kreq *k, enum store_error e, const char *err)
{
	if (e == STORE_UNAVAILABLE) {
		reply(k->req, 503, "Sending failed.");
	} else {
		log_error("kannel", "ev=store_error err=\"%s\"", err ? err : "");
		reply(k->req, 500, "Sending failed.");
	}
	kreq_free(k);
}

static void intake_done(struct intake_req *r, enum store_error e, const char *err, PGresult *res, int first,
			int rows)
{
	struct kreq *k = r->arg;
	if (e != STORE_OK) {
		store_failed(k, e, err);
		return;
	}
	int wait;
	enum intake_refusal why = intake_refusal_of(res, first, rows, &wait);
	if (why != INTAKE_ADMITTED) {
		/* the account's limits (sql/018): nothing stored; a status and a line like Kannel's own refusals */
		static const char *const text[] = {
			[INTAKE_REFUSED_SENDER] = "Sender not allowed for this account",
			[INTAKE_REFUSED_URL] = "dlr-url host not allowed for this account",
			[INTAKE_REFUSED_RATE] = "Rate limit exceeded for this account",
			[INTAKE_REFUSED_DAILY_QUOTA] = "Daily quota exceeded for this account",
			[INTAKE_REFUSED_MONTHLY_QUOTA] = "Monthly quota exceeded for this account",
			[INTAKE_REFUSED_BALANCE] = "Insufficient balance for this account",
		};
		int status = why == INTAKE_REFUSED_SENDER || why == INTAKE_REFUSED_URL ? 403
			     : why == INTAKE_REFUSED_BALANCE ? 402 : 429;
		char extra[80];
		if (wait > 0)
			snprintf(extra, sizeof(extra), TEXT_HTML "Retry-After: %d\r\n", wait);
		else
			snprintf(extra, sizeof(extra), TEXT_HTML);
		log_info("kannel", "ev=refused account=%lld why=%s", k->account_id, intake_refusal_name(why));
		http_respond(k->req, status, extra, text[why], strlen(text[why]));
		kreq_free(k);
		return;
	}
	long long mid = rows > 0 ? strtoll(PQgetvalue(res, first, 0), NULL, 10) : 0;
	log_info("kannel", "ev=accepted message=%lld account=%lld recipients=%d denied=%d dlr=%s", mid,
		 k->account_id, rows, k->msg.denied != NULL, k->msg.dlr_url ? "yes" : "no");
	if (k->msg.denied) {
		static const char head[] = "0: Accepted for delivery Denied receivers are:";
		size_t n = sizeof(head) - 1 + strlen(k->msg.denied);
		char *body = malloc(n + 1);
		if (body) {
			memcpy(body, head, sizeof(head) - 1);
			memcpy(body + sizeof(head) - 1, k->msg.denied, n - (sizeof(head) - 1) + 1);
			reply(k->req, 202, body);
			free(body);
		} else {
			reply(k->req, 202, "0: Accepted for delivery");
		}
	} else {
		reply(k->req, 202, "0: Accepted for delivery");
	}
	kreq_free(k);
}

static void authorized(struct kreq *k);

static void auth_done(struct store_job *job, enum store_error e, const char *err)
{
	struct kreq *k = job->arg;
	if (e != STORE_OK) {
		store_failed(k, e, err);
		return;
	}
	if (PQntuples(job->res) != 1) {
		log_info("kannel", "ev=auth_failed peer=%s", k->req->peer);
		reply(k->req, 403, "Authorization failed for sendsms");
		kreq_free(k);
		return;
	}
	k->account_id = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
	auth_remember(k->door->auth, k->hash, job->res);
	authorized(k);
}

/* The account is known: a request error is answered now, a message goes to the intake queue. */
static void authorized(struct kreq *k)
{
	if (k->bad_text) {
		reply(k->req, k->bad_status, k->bad_text);
		kreq_free(k);
		return;
	}
	double wait = auth_admit(k->door->auth, k->hash, k->account_id, k->msg.n_to);
	if (wait > 0) {   /* the account's rate limit: nothing stored, the client retries later */
		char extra[80];
		snprintf(extra, sizeof(extra), TEXT_HTML "Retry-After: %ld\r\n", util_retry_after(wait));
		static const char text[] = "Rate limit exceeded for this account";
		http_respond(k->req, 429, extra, text, sizeof(text) - 1);
		kreq_free(k);
		return;
	}
	const struct door *d = k->door;
	k->intake = (struct intake_req){
		.msg = { k->account_id, k->msg.from, k->msg.text, k->msg.n_to, (const char (*)[21])k->msg.to, NULL, &k->opts },
		.done = intake_done, .arg = k,
	};
	intake_submit(d->intake, &k->intake);
}

/* --- entry --------------------------------------------------------------------------- */

static int content_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);
	return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void kannel_sendsms(const struct door *door, struct http_request *req)
{
	if (req->method != HTTP_M_GET && req->method != HTTP_M_POST) {
		http_respond(req, 405, TEXT_HTML "Allow: GET, POST\r\n", "Use GET or POST", 15);
		return;
	}
	struct kform_src src = { .query = req->query ? req->query : "" };
	src.query_len = strlen(src.query);
	const char *raw = NULL;
	size_t raw_len = 0;
	char raw_charset[KFORM_CHARSET_MAX] = "";
	int binary = 0;
	if (req->method == HTTP_M_POST && req->body_len > 0) {
		const char *ct = http_header(req, "Content-Type");
		if (content_type_is(ct, "application/x-www-form-urlencoded")) {
			src.form = req->body;
			src.form_len = req->body_len;
		} else if (content_type_is(ct, "text/plain") || content_type_is(ct, "application/octet-stream")) {
			/* smsbox's POST: the body is the text, the rest in X-Kannel-* headers */
			raw = req->body;
			raw_len = req->body_len;
			src.header = request_header;
			src.header_arg = req;
			binary = content_type_is(ct, "application/octet-stream");
			kform_content_charset(ct, raw_charset, sizeof(raw_charset));
		} else {
			reply(req, 400, "Invalid content-type");
			return;
		}
	}

	struct kreq *k = calloc(1, sizeof(*k));
	if (!k) {
		reply(req, 503, "Sending failed.");
		return;
	}
	k->door = door;
	k->req = req;

	/* who: username/user + password/pass; the password is hashed and never kept */
	char *pass = NULL;
	size_t plen = 0;
	int urc = kform_param_small(&src, "username", "user", "Username", k->user, sizeof(k->user));
	int prc = kform_param(&src, "password", "pass", "Password", &pass, &plen);
	if (prc < 0) {
		reply(req, 503, "Sending failed.");
		kreq_free(k);
		return;
	}
	if (urc != 1 || k->user[0] == '\0' || prc != 1 || plen == 0 || plen > 256 || memchr(pass, '\0', plen)) {
		if (pass)
			memset(pass, 0, plen);
		free(pass);
		reply(req, 403, "Authorization failed for sendsms");
		kreq_free(k);
		return;
	}
	keys_hash(pass, plen, k->hash);
	keys_hash_bytea(pass, plen, k->hash_text, sizeof(k->hash_text));
	memset(pass, 0, plen);
	free(pass);

	int rc = parse_request(k, &src, raw, raw_len, raw_charset, binary);
	if (rc == -2) {
		reply(req, 503, "Sending failed.");
		kreq_free(k);
		return;
	}
	const struct door *d = door;
	if (!store_is_up(d->store)) {
		reply(req, 503, "Sending failed.");
		kreq_free(k);
		return;
	}
	/* the key cache the API shares: a key seen within the minute skips the lookup */
	int op;
	k->account_id = auth_cached(door->auth, k->hash, k->user, &op);
	if (k->account_id > 0) {
		authorized(k);
		return;
	}
	k->params[0] = k->hash_text;
	k->params[1] = k->user;
	k->job = (struct store_job){ .stmt = &stmts_kannel_auth, .nparams = 2, .params = k->params,
				     .done = auth_done, .arg = k };
	store_submit(d->store, &k->job);
}
