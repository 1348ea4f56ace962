/*
 * respond.c: the JSON answers every HTTP door shares: a body, and the one
 * error shape {"error":{"code":..,"field":..,"message":..}} with the headers
 * its status calls for (Retry-After, WWW-Authenticate, Allow), the 429 of a
 * node's pacing and the refusals of the intake's admission (sql/functions/intake_admit.sql).
 * Every JSON body leaves in one style (compact, numbers to 12 significant
 * digits), whether jansson or PostgreSQL's json_build_object made it.
 * Owns nothing: each call answers one request (http_respond) and is done.
 */
#include "respond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"
#include "util.h"

void respond_json(struct http_request *req, int status, const char *extra, json_t *body)
{
	char *text = json_dumps(body, RESPOND_JSON_FLAGS);
	json_decref(body);
	if (!text) {
		http_respond(req, 500, NULL, "{\"error\":{\"code\":\"internal\"}}", 29);
		return;
	}
	http_respond(req, status, extra, text, strlen(text));
	free(text);
}

void respond_json_text(struct http_request *req, int status, const char *extra, const char *text)
{
	json_error_t jerr;
	json_t *body = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!body) {   /* our own SQL wrote it: a bug, not the client's */
		http_respond(req, 500, NULL, "{\"error\":{\"code\":\"internal\"}}", 29);
		return;
	}
	respond_json(req, status, extra, body);
}

void respond_error(struct http_request *req, int status, const char *code,
		       const char *field, const char *message)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
	if (field)
		json_object_set_new(err, "field", json_string(field));
	const char *extra = NULL;
	if (status == 503)
		extra = "Retry-After: 1\r\n";
	else if (status == 429)
		extra = "Retry-After: 30\r\n";
	else if (status == 401)
		extra = "WWW-Authenticate: Bearer\r\n";
	respond_json(req, status, extra, json_pack("{s:o}", "error", err));
}

void respond_not_allowed(struct http_request *req, const char *allow)
{
	char extra[96], msg[96];
	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	snprintf(msg, sizeof(msg), "use %s", allow);
	respond_json(req, 405, extra, json_pack("{s:{s:s, s:s}}", "error", "code", "method_not_allowed", "message", msg));
}

void respond_rate_limited(struct http_request *req, double wait, size_t recipients, int over_burst)
{
	char extra[48], msg[160];
	long secs = util_retry_after(wait);
	snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", secs);
	if (over_burst)
		snprintf(msg, sizeof(msg), "%zu recipients are more than the account may send in a minute", recipients);
	else
		snprintf(msg, sizeof(msg), "the account's rate limit is reached: retry after %ld s", secs);
	respond_json(req, 429, extra, json_pack("{s:{s:s, s:s}}", "error", "code", "rate_limited", "message", msg));
}

void respond_refused(struct http_request *req, enum intake_refusal why, int retry_after, json_t *more)
{
	char extra[48];
	extra[0] = '\0';
	if (retry_after > 0)
		snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", retry_after);
	int status = 429;
	const char *code = "rate_limited", *field = NULL, *msg = "the account's rate limit across the nodes is reached";
	switch (why) {
	case INTAKE_REFUSED_SENDER:
		status = 403, code = "sender_not_allowed", field = "from";
		msg = "this sender is not approved for the account";
		break;
	case INTAKE_REFUSED_URL:
		status = 403, code = "url_not_allowed", field = "callback_url";
		msg = "callback_url names a host this account may not reach (pushgatectl account urls)";
		break;
	case INTAKE_REFUSED_DAILY_QUOTA:
		code = "quota_exceeded", msg = "the account's daily quota (recipients per UTC day) is used up";
		break;
	case INTAKE_REFUSED_MONTHLY_QUOTA:
		code = "quota_exceeded", msg = "the account's monthly quota (recipients per UTC month) is used up";
		break;
	case INTAKE_REFUSED_BALANCE:
		status = 402, code = "balance_exhausted", msg = "the account's balance cannot pay for these recipients";
		break;
	case INTAKE_REFUSED_RATE:
	case INTAKE_ADMITTED:
		break;
	}
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (field)
		json_object_set_new(err, "field", json_string(field));
	json_t *body = more ? more : json_object();
	json_object_set_new(body, "error", err);
	respond_json(req, status, extra[0] ? extra : NULL, body);
}
