/*
 * devices.c: registration of app installs.  A number proves it is yours by
 * a one-time code that pushgate sends by SMS through its own engine (the
 * code's SMS and the pending device are stored in one statement, at most
 * one per number per 30 s); verifying it returns a device token, stored
 * only as its SHA-256; five wrong codes or an expired one void the
 * registration, a newer code voids the older ones, and a number gets ten
 * tries a day whatever its registrations; the number's app installs get a
 * push saying that another device asked (in the same statement).  Device ids are random.  Logout revokes the token and closes live connections.
 * The code's SMS text is its recipient's only until that SMS is final
 * (then a timer removes it; the message keeps the text masked), so the
 * database holds no usable code once it is sent.
 * A code is an SMS anyone may ask for, so before anything is stored the
 * number must match [push] code_prefixes and the request must fit this
 * node's buckets (per client address and overall, ratelimit.c); the daily
 * cap of every node together is taken in the registration statement.
 * A device's own calls carry its token (Authorization: Bearer): its
 * platform endpoint for wake-ups (a Web Push subscription is checked
 * before it is stored: https endpoint, a point on P-256, a 16-byte
 * secret), acks over HTTP (a service worker has no socket) and the
 * messages pending for its number.
 * Owns the buckets and in-flight requests; never logs a code or a token.
 */
#include "devices.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ipcount.h"
#include "pgarr.h"
#include "keys.h"
#include "log.h"
#include "periodic.h"
#include "push.h"
#include "ratelimit.h"
#include "respond.h"
#include "recipient.h"
#include "stmts.h"
#include "util.h"
#include "wake.h"
#include "webpush.h"

#define MAX_CODE_ATTEMPTS   "5"    /* per registration */
#define MAX_NUMBER_ATTEMPTS "10"   /* per number and day, every registration together */
#define SCRUB_INTERVAL      5.0    /* seconds between looks for code SMS that are done */
/* pushed to the number's app installs when another device asks for a code (until the code expires) */
#define NEW_DEVICE_NOTICE   "[pushgate] A new device asked to register this number. If it was not you, " \
			    "never give anyone the code you receive by SMS."

struct devices {
	struct store        *store;
	const struct config *cfg;
	struct push         *push;
	struct wake         *wake;        /* NULL: no platform push on this node */
	void               (*on_new_work)(void *arg);
	void                *work_arg;
	struct ratelimit    *per_ip;      /* code SMS per client address */
	struct ratelimit    *overall;     /* code SMS of this node */
	struct ev_loop      *loop;
	struct periodic      scrub;       /* codes out of the database once their SMS is final */
};

enum dev_op { OP_NONE, OP_WAKEUP_SET, OP_WAKEUP_CLEAR, OP_ACKS, OP_PENDING };

/* One request waiting for the store. */
struct dreq {
	struct store_job     job;
	struct devices      *d;
	struct http_request *req;
	long long            id;
	const char          *params[13];
	char                 msisdn[21], platform[33], code[7];
	char                 p_hash[2 + 2 * KEYS_HASH_LEN + 1], p_token_hash[2 + 2 * KEYS_HASH_LEN + 1];
	char                 p_id[24], p_ttl[32], p_validity[32], p_cap[24], p_new_id[24], p_notice_ttl[32];
	char                 masked[96];
	char                 text[96];
	char                 token[KEYS_API_KEY_LEN + 1];
	/* the device's own HTTP calls (section 4): what was asked, kept until its token is checked */
	enum dev_op          op;
	char                *endpoint, *ids;
	char                 kind[8], p256dh_hex[2 * WEBPUSH_KEY_LEN + 1], auth_hex[2 * WEBPUSH_AUTH_LEN + 1];
	char                 p_msisdns[32];
	char                 app[32];        /* fcm, apns: the app's section name ("": the only one) */
};

static struct dreq *dreq_new(struct devices *d, struct http_request *req)
{
	struct dreq *r = calloc(1, sizeof(*r));
	if (!r) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		return NULL;
	}
	r->d = d;
	r->req = req;
	return r;
}

/* Store failures answer 503 (retry) or 500; the request is freed. */
static int store_failed(struct dreq *r, enum store_error e, const char *err)
{
	if (e == STORE_OK)
		return 0;
	if (e == STORE_UNAVAILABLE) {
		respond_error(r->req, 503, "unavailable", NULL, "database unavailable, retry later");
	} else {
		log_error("devices", "ev=store_error err=\"%s\"", err ? err : "");
		respond_error(r->req, 500, "internal", NULL, "internal error");
	}
	free(r);
	return 1;
}

/* Body must be a JSON object; returns it or answers 400 and returns NULL. */
static json_t *body_object(struct http_request *req)
{
	json_error_t jerr;
	json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		char msg[200];
		snprintf(msg, sizeof(msg), "the body must be a JSON object%s%s", root ? "" : ": ", root ? "" : jerr.text);
		respond_error(req, 400, "invalid_json", NULL, msg);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* --- POST /v1/devices ---------------------------------------------------------------- */

/* 429 with the seconds to wait (at least 1). */
static void too_many(struct http_request *req, double wait, const char *field, const char *message)
{
	char extra[48];
	snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", util_retry_after(wait));
	json_t *err = json_pack("{s:s, s:s}", "code", "too_many_requests", "message", message);
	if (field)
		json_object_set_new(err, "field", json_string(field));
	respond_json(req, 429, extra, json_pack("{s:o}", "error", err));
}

/* 1 when a code may go to msisdn: it starts with one of the comma-separated prefixes, or the list is "*". */
static int code_prefix_ok(const char *list, const char *msisdn)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ", ");
		if (n == 1 && *p == '*')
			return 1;
		if (n > 0 && strncmp(msisdn, p, n) == 0)
			return 1;
		p += n;
	}
	return 0;
}

static void register_done(struct store_job *job, enum store_error e, const char *err)
{
	struct dreq *r = job->arg;
	if (store_failed(r, e, err))
		return;
	if (PQntuples(job->res) != 1 || PQgetisnull(job->res, 0, 0)) {
		if (PQntuples(job->res) == 1 && strcmp(PQgetvalue(job->res, 0, 1), "t") == 0) {
			too_many(r->req, 30, "msisdn", "a code was sent to this number less than 30 seconds ago");
		} else {
			time_t now = time(NULL);
			log_warn("devices", "ev=code_daily_cap_reached cap=%zu", r->d->cfg->code_daily_cap);
			too_many(r->req, 86400 - (double)(now % 86400), NULL,
				 "the registration codes of the day are used up: try again tomorrow");
		}
		free(r);
		return;
	}
	long long id = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
	log_info("devices", "ev=registration device=%lld msisdn=%s platform=\"%s\"", id, r->msisdn, r->platform);
	json_t *out = json_pack("{s:I, s:I}", "device_id", (json_int_t)id, "expires_in", (json_int_t)r->d->cfg->otp_ttl);
	if (r->d->cfg->otp_echo)
		json_object_set_new(out, "code", json_string(r->code));
	respond_json(r->req, 202, NULL, out);
	if (r->d->on_new_work)
		r->d->on_new_work(r->d->work_arg);
	free(r);
}

void devices_register(struct devices *d, struct http_request *req)
{
	json_t *root = body_object(req);
	if (!root)
		return;
	const char *platform = json_string_value(json_object_get(root, "platform"));
	char msisdn[21];
	if (util_msisdn(json_string_value(json_object_get(root, "msisdn")), msisdn) < 0) {
		respond_error(req, 400, "invalid_field", "msisdn",
				  "msisdn must be a phone number of 3 to 20 digits, optionally with a leading +");
		json_decref(root);
		return;
	}
	if (json_object_get(root, "platform") && (!platform || strlen(platform) > 32)) {
		respond_error(req, 400, "invalid_field", "platform", "platform must be a string of at most 32 characters");
		json_decref(root);
		return;
	}
	if (!code_prefix_ok(d->cfg->code_prefixes, msisdn)) {
		respond_error(req, 403, "forbidden", "msisdn", "registration codes are not sent to this number's country");
		json_decref(root);
		return;
	}
	/* the address first: requests it refuses must not use up the share of everyone else */
	char client[48];
	ipcount_addr_of(req->peer, client, sizeof(client));
	double now = (double)util_now_ms() / 1000, wait;
	if ((wait = ratelimit_take(d->per_ip, client, now)) > 0) {
		log_warn("devices", "ev=code_refused why=per_ip client=%s", client);
		too_many(req, wait, NULL, "too many registration codes asked from this address");
		json_decref(root);
		return;
	}
	if ((wait = ratelimit_take(d->overall, "", now)) > 0) {
		log_warn("devices", "ev=code_refused why=rate client=%s", client);
		too_many(req, wait, NULL, "too many registration codes asked right now");
		json_decref(root);
		return;
	}
	struct dreq *r = dreq_new(d, req);
	if (!r) {
		json_decref(root);
		return;
	}
	util_strlcpy(r->msisdn, msisdn, sizeof(r->msisdn));
	util_strlcpy(r->platform, platform ? platform : "", sizeof(r->platform));
	json_decref(root);
	for (char *c = r->platform; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';

	unsigned char rnd[12];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		respond_error(req, 503, "unavailable", NULL, "no randomness");
		free(r);
		return;
	}
	uint32_t v = ((uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 | (uint32_t)rnd[2] << 8 | rnd[3]) % 1000000u;
	/* the device id: 52 random bits (never 0; exact as a JavaScript number): another
	 * registration's id can't be guessed */
	uint64_t nid = 0;
	for (int i = 4; i < 12; i++)
		nid = nid << 8 | rnd[i];
	nid = (nid >> 12) | 1;
	snprintf(r->p_new_id, sizeof(r->p_new_id), "%llu", (unsigned long long)nid);
	snprintf(r->code, sizeof(r->code), "%06u", v);
	char salted[32];
	snprintf(salted, sizeof(salted), "otp:%s", r->code);
	keys_hash_bytea(salted, strlen(salted), r->p_hash, sizeof(r->p_hash));
	snprintf(r->p_ttl, sizeof(r->p_ttl), "%.0f", d->cfg->otp_ttl);
	snprintf(r->p_validity, sizeof(r->p_validity), "%.0f", d->cfg->otp_ttl);
	snprintf(r->text, sizeof(r->text), "[pushgate] your code is %s (valid %.0f minutes)", r->code,
		 d->cfg->otp_ttl / 60 < 1 ? 1 : d->cfg->otp_ttl / 60);
	snprintf(r->masked, sizeof(r->masked), "[pushgate] your code is ****** (valid %.0f minutes)",
		 d->cfg->otp_ttl / 60 < 1 ? 1 : d->cfg->otp_ttl / 60);
	const struct route_config *route = config_route_for(d->cfg, r->msisdn);
	r->params[0] = r->msisdn;
	r->params[1] = r->platform;
	r->params[2] = r->p_hash;
	r->params[3] = r->p_ttl;
	r->params[4] = d->cfg->otp_sender;
	r->params[5] = r->text;
	r->params[6] = route ? route->name : NULL;
	r->params[7] = r->p_validity;
	snprintf(r->p_cap, sizeof(r->p_cap), "%zu", d->cfg->code_daily_cap);
	r->params[8] = r->p_cap;
	r->params[9] = r->p_new_id;
	r->params[10] = r->masked;
	r->params[11] = NEW_DEVICE_NOTICE;
	snprintf(r->p_notice_ttl, sizeof(r->p_notice_ttl), "%.0f", d->cfg->otp_ttl);
	r->params[12] = r->p_notice_ttl;
	r->job = (struct store_job){ .stmt = &recipient_stmt_device_register, .nparams = 13, .params = r->params,
				     .done = register_done, .arg = r };
	store_submit(d->store, &r->job);
}

/* --- POST /v1/devices/{id}/verify ------------------------------------------------------- */

static void verify_done(struct store_job *job, enum store_error e, const char *err)
{
	struct dreq *r = job->arg;
	if (store_failed(r, e, err))
		return;
	if (PQntuples(job->res) != 1) {
		respond_error(r->req, 404, "not_found", NULL, "no registration waiting for a code");
	} else if (strcmp(PQgetvalue(job->res, 0, 0), "t") == 0) {
		const char *msisdn = PQgetvalue(job->res, 0, 1);
		log_info("devices", "ev=verified device=%lld msisdn=%s", r->id, msisdn);
		respond_json(r->req, 200, NULL, json_pack("{s:I, s:s, s:s}", "device_id", (json_int_t)r->id,
							      "msisdn", msisdn, "token", r->token));
	} else if (strcmp(PQgetvalue(job->res, 0, 2), "t") == 0) {
		respond_error(r->req, 410, "gone", "code", "the code expired or was tried too often: register again");
	} else {
		respond_error(r->req, 400, "invalid_code", "code", "wrong code");
	}
	OPENSSL_cleanse(r->token, sizeof(r->token));
	free(r);
}

void devices_verify(struct devices *d, struct http_request *req, long long id)
{
	json_t *root = body_object(req);
	if (!root)
		return;
	const char *code = json_string_value(json_object_get(root, "code"));
	if (!code || strlen(code) != 6 || strspn(code, "0123456789") != 6) {
		respond_error(req, 400, "invalid_field", "code", "code must be the 6 digits sent by SMS");
		json_decref(root);
		return;
	}
	struct dreq *r = dreq_new(d, req);
	if (!r) {
		json_decref(root);
		return;
	}
	char salted[32];
	snprintf(salted, sizeof(salted), "otp:%s", code);
	json_decref(root);
	keys_hash_bytea(salted, strlen(salted), r->p_hash, sizeof(r->p_hash));
	if (keys_generate(r->token, sizeof(r->token)) < 0) {
		respond_error(req, 503, "unavailable", NULL, "no randomness");
		free(r);
		return;
	}
	memcpy(r->token, "dt_", 3);
	keys_hash_bytea(r->token, strlen(r->token), r->p_token_hash, sizeof(r->p_token_hash));
	r->id = id;
	snprintf(r->p_id, sizeof(r->p_id), "%lld", id);
	r->params[0] = r->p_id;
	r->params[1] = r->p_hash;
	r->params[2] = r->p_token_hash;
	r->params[3] = MAX_CODE_ATTEMPTS;
	r->params[4] = MAX_NUMBER_ATTEMPTS;
	r->job = (struct store_job){ .stmt = &stmts_device_verify, .nparams = 5, .params = r->params,
				     .done = verify_done, .arg = r };
	store_submit(d->store, &r->job);
}

/* --- DELETE /v1/devices/{id} ---------------------------------------------------------------- */

static void revoke_done(struct store_job *job, enum store_error e, const char *err)
{
	struct dreq *r = job->arg;
	if (store_failed(r, e, err))
		return;
	if (PQntuples(job->res) != 1) {
		respond_error(r->req, 404, "not_found", NULL, "no live device with this id and token");
	} else {
		log_info("devices", "ev=revoked device=%lld", r->id);
		if (r->d->push)
			push_device_revoked(r->d->push, r->id);
		http_respond(r->req, 204, NULL, "", 0);
	}
	free(r);
}

void devices_revoke(struct devices *d, struct http_request *req, long long id)
{
	const char *h = http_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) > 256) {
		respond_error(req, 401, "unauthorized", NULL, "missing 'Authorization: Bearer <device token>'");
		return;
	}
	struct dreq *r = dreq_new(d, req);
	if (!r)
		return;
	const char *token = h + 7;
	while (*token == ' ')
		token++;
	keys_hash_bytea(token, strlen(token), r->p_token_hash, sizeof(r->p_token_hash));
	r->id = id;
	snprintf(r->p_id, sizeof(r->p_id), "%lld", id);
	r->params[0] = r->p_id;
	r->params[1] = r->p_token_hash;
	r->job = (struct store_job){ .stmt = &stmts_device_revoke, .nparams = 2, .params = r->params,
				     .done = revoke_done, .arg = r };
	store_submit(d->store, &r->job);
}

/* --- GET /v1/devices/{msisdn} ------------------------------------------------------------------- */

static void list_done(struct store_job *job, enum store_error e, const char *err)
{
	struct dreq *r = job->arg;
	if (store_failed(r, e, err))
		return;
	json_error_t jerr;
	json_t *list = json_loads(PQgetvalue(job->res, 0, 0), 0, &jerr);
	if (!json_is_array(list)) {
		json_decref(list);
		respond_error(r->req, 500, "internal", NULL, "internal error");
		free(r);
		return;
	}
	size_t i;
	json_t *dev;
	json_array_foreach(list, i, dev) {
		long long id = (long long)json_integer_value(json_object_get(dev, "id"));
		json_object_set_new(dev, "connected", json_boolean(r->d->push && push_device_connected(r->d->push, id)));
	}
	respond_json(r->req, 200, NULL, json_pack("{s:s, s:o}", "msisdn", r->msisdn, "devices", list));
	free(r);
}

void devices_list(struct devices *d, struct http_request *req, const char *msisdn)
{
	char num[21];
	if (util_msisdn(msisdn, num) < 0) {
		respond_error(req, 404, "not_found", NULL, "no such number");
		return;
	}
	struct dreq *r = dreq_new(d, req);
	if (!r)
		return;
	util_strlcpy(r->msisdn, num, sizeof(r->msisdn));
	r->params[0] = r->msisdn;
	r->job = (struct store_job){ .stmt = &stmts_devices_json, .nparams = 1, .params = r->params,
				     .done = list_done, .arg = r };
	store_submit(d->store, &r->job);
}

/* --- the device's own calls: /v1/device/{wakeup,acks,pending} ------------------------------------------ */

#define ACKS_MAX 1000

static void dreq_free(struct dreq *r)
{
	free(r->endpoint);
	free(r->ids);
	free(r);
}

static void op_done(struct store_job *job, enum store_error e, const char *err)
{
	struct dreq *r = job->arg;
	if (e != STORE_OK) {
		char *endpoint = r->endpoint, *ids = r->ids;
		store_failed(r, e, err);   /* answered and freed */
		free(endpoint);
		free(ids);
		return;
	}
	switch (r->op) {
	case OP_WAKEUP_SET:
		log_info("devices", "ev=wakeup_set device=%lld kind=%s", r->id, r->kind);
		http_respond(r->req, 204, NULL, "", 0);   /* the statement's NOTIFY wakes what waits */
		break;
	case OP_WAKEUP_CLEAR:
		if (PQntuples(job->res) == 1) {
			log_info("devices", "ev=wakeup_cleared device=%lld", r->id);
			http_respond(r->req, 204, NULL, "", 0);
		} else {
			respond_error(r->req, 404, "not_found", NULL, "this device has no platform endpoint");
		}
		break;
	case OP_ACKS:
		respond_json(r->req, 200, NULL, json_pack("{s:I}", "acked",
							  (json_int_t)strtoll(PQgetvalue(job->res, 0, 0), NULL, 10)));
		break;
	case OP_PENDING: {
		json_t *list = json_array();
		for (int i = 0; list && i < PQntuples(job->res); i++) {
			const char *sender = PQgetvalue(job->res, i, 2);
			json_array_append_new(list, json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "type", "msg", "id",
							      (json_int_t)strtoll(PQgetvalue(job->res, i, 0), NULL, 10),
							      "sender", sender, "sender_name", sender, "text",
							      PQgetvalue(job->res, i, 3), "folder", sender, "sent_at",
							      PQgetvalue(job->res, i, 4)));
		}
		respond_json(r->req, 200, NULL, json_pack("{s:o}", "messages", list ? list : json_array()));
		break;
	}
	default:
		respond_error(r->req, 500, "internal", NULL, "internal error");
	}
	dreq_free(r);
}

/* The token was checked: the operation itself. */
static void token_done(struct store_job *job, enum store_error e, const char *err)
{
	struct dreq *r = job->arg;
	if (e != STORE_OK) {
		char *endpoint = r->endpoint, *ids = r->ids;
		store_failed(r, e, err);
		free(endpoint);
		free(ids);
		return;
	}
	if (PQntuples(job->res) != 1) {
		respond_error(r->req, 401, "unauthorized", NULL, "unknown or revoked device token");
		dreq_free(r);
		return;
	}
	r->id = strtoll(PQgetvalue(job->res, 0, 0), NULL, 10);
	util_strlcpy(r->msisdn, PQgetvalue(job->res, 0, 1), sizeof(r->msisdn));
	snprintf(r->p_id, sizeof(r->p_id), "%lld", r->id);
	const struct store_stmt *stmt = NULL;
	int n = 0;
	switch (r->op) {
	case OP_WAKEUP_SET:
		stmt = &stmts_wakeup_set;
		r->params[0] = r->p_id;
		r->params[1] = r->kind;
		r->params[2] = r->endpoint;
		r->params[3] = r->p256dh_hex[0] ? r->p256dh_hex : NULL;
		r->params[4] = r->auth_hex[0] ? r->auth_hex : NULL;
		r->params[5] = r->app;
		n = 6;
		break;
	case OP_WAKEUP_CLEAR:
		stmt = &stmts_wakeup_clear;
		r->params[0] = r->p_id;
		n = 1;
		break;
	case OP_ACKS: {
		/* the acks statement takes (recipient, device) pairs */
		struct pgarr devs = {0};
		size_t count = 1;
		for (const char *c = r->ids; *c; c++)
			count += *c == ',';
		for (size_t i = 0; i < count; i++)
			pgarr_num(&devs, r->id, 0);
		free(r->endpoint);
		r->endpoint = pgarr_take(&devs);   /* the device ids' literal, freed with the request */
		if (!r->endpoint) {
			respond_error(r->req, 503, "unavailable", NULL, "out of memory");
			dreq_free(r);
			return;
		}
		stmt = &recipient_stmt_push_acks;
		r->params[0] = r->ids;
		r->params[1] = r->endpoint;
		n = 2;
		break;
	}
	case OP_PENDING:
		snprintf(r->p_msisdns, sizeof(r->p_msisdns), "{%s}", r->msisdn);
		stmt = &stmts_push_pending;
		r->params[0] = r->p_msisdns;
		n = 1;
		break;
	default:
		respond_error(r->req, 500, "internal", NULL, "internal error");
		dreq_free(r);
		return;
	}
	r->job = (struct store_job){ .stmt = stmt, .nparams = n, .params = r->params, .done = op_done, .arg = r };
	store_submit(r->d->store, &r->job);
}

/*
 * A native app's token: {"kind": "fcm", "token": registration token, "app": NAME} or
 * {"kind": "apns", "token": hex device token, "app": NAME}; app may be left out when the
 * server has one app of that kind.  0, or answered 400 and -1.
 */
static int parse_native(struct devices *d, struct http_request *req, json_t *root, struct dreq *r)
{
	const char *token = json_string_value(json_object_get(root, "token"));
	const char *app = json_string_value(json_object_get(root, "app"));
	int fcm = strcmp(r->kind, "fcm") == 0;
	size_t n = token ? strlen(token) : 0;
	int ok = fcm ? n >= 1 && n <= 4096 && strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
								"0123456789_:.-") == n
		     : n >= 64 && n <= 200 && n % 2 == 0 && strspn(token, "0123456789abcdefABCDEF") == n;
	if (!ok) {
		respond_error(req, 400, "invalid_field", "token", fcm ? "token must be the app's FCM registration token"
			      : "token must be the app's APNs device token in hex");
		return -1;
	}
	if (app && (strlen(app) >= sizeof(r->app) || !wake_app_known(d->wake, r->kind, app))) {
		respond_error(req, 400, "invalid_field", "app", "no such app configured on this server");
		return -1;
	}
	if (!app && !wake_app_known(d->wake, r->kind, "")) {
		respond_error(req, 400, "invalid_field", "app", "app is required: this server has several apps of this kind");
		return -1;
	}
	if (!(r->endpoint = strdup(token))) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		return -1;
	}
	if (!fcm)
		for (char *c = r->endpoint; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	util_strlcpy(r->app, app ? app : "", sizeof(r->app));
	return 0;
}

/* A Web Push subscription (PushSubscription.toJSON(), or with "kind"): 0, or answered 400 and -1. */
static int parse_wakeup(struct devices *d, struct http_request *req, json_t *root, struct dreq *r)
{
	const char *kind = json_string_value(json_object_get(root, "kind"));
	if (!kind)
		kind = "webpush";
	if (strcmp(kind, "webpush") != 0 && strcmp(kind, "fcm") != 0 && strcmp(kind, "apns") != 0) {
		respond_error(req, 400, "invalid_field", "kind", "kind must be webpush, fcm or apns");
		return -1;
	}
	if (!wake_kind_enabled(d->wake, kind)) {
		respond_error(req, 400, "invalid_field", "kind", "this kind of platform push is not enabled on this server");
		return -1;
	}
	util_strlcpy(r->kind, kind, sizeof(r->kind));
	if (strcmp(kind, "webpush") != 0)
		return parse_native(d, req, root, r);
	const char *endpoint = json_string_value(json_object_get(root, "endpoint"));
	if (!endpoint || strncmp(endpoint, "https://", 8) != 0 || strlen(endpoint) > 1024 || strlen(endpoint) < 9 ||
	    strpbrk(endpoint, " \t\r\n\"\\@") != NULL) {
		respond_error(req, 400, "invalid_field", "endpoint",
			      "endpoint must be the push service's https:// URL (at most 1024 characters)");
		return -1;
	}
	json_t *keys = json_object_get(root, "keys");
	const char *p256dh = json_string_value(json_object_get(keys, "p256dh"));
	const char *auth = json_string_value(json_object_get(keys, "auth"));
	uint8_t pub[WEBPUSH_KEY_LEN], sec[WEBPUSH_AUTH_LEN];
	if (!p256dh || jose_b64url_decode(p256dh, strlen(p256dh), pub, sizeof(pub)) != WEBPUSH_KEY_LEN ||
	    pub[0] != 0x04) {
		respond_error(req, 400, "invalid_field", "keys.p256dh",
			      "keys.p256dh must be the base64url uncompressed P-256 public key (65 bytes)");
		return -1;
	}
	if (!auth || jose_b64url_decode(auth, strlen(auth), sec, sizeof(sec)) != WEBPUSH_AUTH_LEN) {
		respond_error(req, 400, "invalid_field", "keys.auth", "keys.auth must be the base64url 16-byte secret");
		return -1;
	}
	/* a point off the curve is refused now, not at every push */
	uint8_t probe[WEBPUSH_HEADER_LEN + 1 + 1 + WEBPUSH_TAG_LEN];
	size_t probe_len;
	if (webpush_encrypt(pub, sec, (const uint8_t *)"", 0, 0, probe, sizeof(probe), &probe_len) < 0) {
		respond_error(req, 400, "invalid_field", "keys.p256dh", "keys.p256dh is not a point on P-256");
		return -1;
	}
	if (!(r->endpoint = strdup(endpoint))) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < sizeof(pub); i++)
		snprintf(r->p256dh_hex + 2 * i, 3, "%02x", pub[i]);
	for (size_t i = 0; i < sizeof(sec); i++)
		snprintf(r->auth_hex + 2 * i, 3, "%02x", sec[i]);
	return 0;
}

/* {"ids": [positive integers]}: the literal in r->ids, or answered 400 and -1. */
static int parse_acks(struct http_request *req, json_t *root, struct dreq *r)
{
	json_t *ids = json_object_get(root, "ids");
	if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > ACKS_MAX) {
		respond_error(req, 400, "invalid_field", "ids", "ids must be an array of 1 to 1000 message ids");
		return -1;
	}
	struct pgarr a = {0};
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			pgarr_reset(&a);
			respond_error(req, 400, "invalid_field", "ids", "ids must be positive integers");
			return -1;
		}
		pgarr_num(&a, json_integer_value(v), 0);
	}
	if (!(r->ids = pgarr_take(&a))) {
		respond_error(req, 503, "unavailable", NULL, "out of memory");
		return -1;
	}
	return 0;
}

void devices_own(struct devices *d, struct http_request *req, const char *what)
{
	enum dev_op op = OP_NONE;
	const char *allow = NULL;
	if (strcmp(what, "wakeup") == 0) {
		op = req->method == HTTP_M_POST ? OP_WAKEUP_SET : req->method == HTTP_M_DELETE ? OP_WAKEUP_CLEAR : OP_NONE;
		allow = "POST, DELETE";
	} else if (strcmp(what, "acks") == 0) {
		op = req->method == HTTP_M_POST ? OP_ACKS : OP_NONE;
		allow = "POST";
	} else if (strcmp(what, "pending") == 0) {
		op = req->method == HTTP_M_GET ? OP_PENDING : OP_NONE;
		allow = "GET";
	} else {
		respond_error(req, 404, "not_found", NULL, "no such resource");
		return;
	}
	if (op == OP_NONE) {
		respond_not_allowed(req, allow);
		return;
	}
	const char *h = http_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) > 256) {
		respond_error(req, 401, "unauthorized", NULL, "missing 'Authorization: Bearer <device token>'");
		return;
	}
	struct dreq *r = dreq_new(d, req);
	if (!r)
		return;
	r->op = op;
	if (op == OP_WAKEUP_SET || op == OP_ACKS) {
		json_t *root = body_object(req);
		int bad = !root || (op == OP_WAKEUP_SET ? parse_wakeup(d, req, root, r) : parse_acks(req, root, r)) < 0;
		json_decref(root);
		if (bad) {
			dreq_free(r);
			return;
		}
	}
	const char *token = h + 7;
	while (*token == ' ')
		token++;
	keys_hash_bytea(token, strlen(token), r->p_token_hash, sizeof(r->p_token_hash));
	r->params[0] = r->p_token_hash;
	r->job = (struct store_job){ .stmt = &stmts_device_by_token, .nparams = 1, .params = r->params,
				     .done = token_done, .arg = r };
	store_submit(d->store, &r->job);
}

void devices_webpush_key(struct devices *d, struct http_request *req)
{
	const char *key = wake_vapid_public(d->wake);
	if (!key[0]) {
		respond_error(req, 404, "not_found", NULL, "Web Push is not enabled on this server");
		return;
	}
	respond_json(req, 200, NULL, json_pack("{s:s}", "public_key", key));
}

static void scrub_done(void *arg, const PGresult *res, enum store_error e, const char *err)
{
	(void)arg; (void)res;
	if (e == STORE_SQL_ERROR)
		log_error("devices", "ev=code_scrub_failed err=\"%s\"", err ? err : "");
}

struct devices *devices_new(struct ev_loop *loop, struct store *store, const struct config *cfg, struct push *push,
			    struct wake *wake, void (*on_new_work)(void *arg), void *work_arg)
{
	struct devices *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->loop = loop;
	d->store = store;
	d->cfg = cfg;
	d->push = push;
	d->wake = wake;
	d->on_new_work = on_new_work;
	d->work_arg = work_arg;
	/* per address: code_per_ip an hour, all of them at once at most */
	d->per_ip = ratelimit_new(8192, cfg->code_per_ip / 3600, cfg->code_per_ip);
	d->overall = ratelimit_new(16, cfg->code_rate, cfg->code_rate < 1 ? 1 : cfg->code_rate);
	if (!d->per_ip || !d->overall) {
		devices_free(d);
		return NULL;
	}
	periodic_init(&d->scrub, loop, store, &recipient_stmt_code_scrub, NULL, scrub_done, d);
	periodic_start(&d->scrub, SCRUB_INTERVAL, SCRUB_INTERVAL);
	ev_unref(loop);   /* housekeeping keeps no loop running */
	return d;
}

void devices_free(struct devices *d)
{
	if (!d)
		return;
	if (ev_is_active(&d->scrub.timer)) {
		ev_ref(d->loop);
		periodic_stop(&d->scrub);
	}
	ratelimit_free(d->per_ip);
	ratelimit_free(d->overall);
	free(d);
}
