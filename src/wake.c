/*
 * wake.c: platform push to devices with no live socket (wake.h).
 *
 * Claims come from two places, both statements on this module's own store:
 * the message ids of NOTIFY pushgate_push (every node hears them; the insert
 * into `wakes` gives each (recipient, device) to one node), and a scan every
 * [wake] scan seconds for PUSH_SENT recipients whose devices were not
 * claimed (a notification missed while the store was down, a device whose
 * socket closed, an endpoint registered after the message).
 *
 * A claimed push is a request (struct wreq), owned here from its claim to
 * its last outcome's write:
 *   QUEUED --slot free--> SENDING --2xx--> done (event: "via webpush: 201")
 *   SENDING --404/410--> done, the endpoint revoked
 *   SENDING --429/5xx/no answer, time left before the push deadline-->
 *           WAITING (Retry-After, or backoff doubling from [wake] backoff_min)
 *           --timer--> QUEUED
 *   SENDING --413 with the message inside--> QUEUED again as a wake-up only
 *   SENDING --other 4xx, or no time left--> done
 * Every attempt's outcome is written (wakes row, events row of kind 'wake'),
 * all outcomes of a loop turn by one statement.  A node that dies holding
 * claims loses those pushes; the recipients' push deadline still sends the
 * SMS.  Web Push: the payload is the WebSocket's msg frame (device
 * protocol), padded to a multiple of 128 bytes, encrypted per RFC 8291; TTL
 * is the time left to the push deadline, Urgency high for AUTH and low for
 * AD, and a wake-up carries Topic "pending" so the push service keeps one.
 * The VAPID JWT is cached per push service origin for 12 hours.
 * Never blocks; never logs an endpoint, a key or a message text.
 */
#include "wake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/pem.h>

#include "curlev.h"
#include "log.h"
#include "netpolicy.h"
#include "pgarr.h"
#include "stmts.h"
#include "util.h"
#include "webpush.h"

#define FLUSH_INTERVAL  0.002
#define CLAIM_MAX       2000        /* message ids per claim */
#define SCAN_LIMIT      "1000"
#define PLAIN_MAX       (WEBPUSH_RECORD_SIZE - WEBPUSH_HEADER_LEN - WEBPUSH_TAG_LEN - 1)
#define PAD_TO          128
#define VAPID_LIFE      43200       /* seconds a JWT is valid; made again when less than half is left */
#define VAPID_CACHE     32          /* push service origins remembered */
#define DETAIL_MAX      200
#define BACKOFF_MAX     300.0

enum wr_state { WR_QUEUED, WR_SENDING, WR_WAITING };

struct wreq {
	struct wake       *w;
	struct wreq       *next;              /* the queue */
	struct wreq       *all_prev, *all_next;   /* every request, whatever its state */
	enum wr_state      state;
	long long          rid, did;
	char               kind[8];
	char              *endpoint;
	uint8_t            p256dh[WEBPUSH_KEY_LEN], auth[WEBPUSH_AUTH_LEN];
	double             deadline;          /* ev_now() when the push deadline passes */
	const char        *urgency;
	char              *plain;             /* the msg frame; NULL: a wake-up */
	size_t             plain_len;
	int                attempts;
	ev_timer           retry;
	struct curlev_xfer x;
	uint8_t           *body;
	size_t             body_len;
};

struct vapid {
	char      aud[160];
	long long exp;
	char     *header;                     /* "Authorization: vapid t=..., k=..." */
};

/* Outcomes accumulated for one statement (rid, did, status, kind, detail, done, revoke). */
struct outcomes {
	struct pgarr a[7];
	size_t       n;
};

struct wake {
	struct ev_loop      *loop;
	struct store        *store;
	const struct config *cfg;
	const char          *node;
	struct netpolicy    *policy;
	struct curlev       *curl;
	EVP_PKEY            *vapid_key;       /* NULL: Web Push off */
	char                 vapid_public[96];
	struct vapid         vapid[VAPID_CACHE];
	size_t               n_vapid;
	struct wreq         *q_head, *q_tail;
	struct wreq         *all;
	size_t               n_queued, n_sending, n_waiting;
	int                  stopping, freeing;
	ev_timer             flush, scan;
	/* claims */
	struct pgarr         ids;             /* message ids heard of */
	int                  claim_in_flight, scan_again;
	struct store_job     claim_job;
	const char          *claim_params[2];
	char                *claim_lit;
	/* outcomes */
	struct outcomes      acc;
	int                  out_in_flight;
	struct store_job     out_job;
	const char          *out_params[7];
	char                *out_lit[7];
	struct store_job     listen_job;
	int                  listen_in_flight;
	unsigned long long   sent, accepted, failed, revoked, retries, gone_wake_only;
};

static const struct store_stmt stmt_listen = { "wake_listen", "LISTEN pushgate_push", 0, 1 };

static void pump(struct wake *w);
static void outcomes_flush(struct wake *w);

/* --- small helpers ---------------------------------------------------------------------------- */

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* "https://host[:port]" of an endpoint (RFC 8292 aud), or -1. */
static int origin_of(const char *url, char *out, size_t cap)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &port, 0);   /* absent: the scheme's default */
		int n = port ? snprintf(out, cap, "%s://%s:%s", scheme, host, port)
			     : snprintf(out, cap, "%s://%s", scheme, host);
		rc = n > 0 && (size_t)n < cap ? 0 : -1;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* The Authorization header for an endpoint's push service, made at most every VAPID_LIFE/2 per origin. */
static const char *vapid_header(struct wake *w, const char *endpoint)
{
	char aud[160];
	if (origin_of(endpoint, aud, sizeof(aud)) < 0)
		return NULL;
	long long now = (long long)time(NULL);
	struct vapid *v = NULL;
	for (size_t i = 0; i < w->n_vapid && !v; i++)
		if (strcmp(w->vapid[i].aud, aud) == 0)
			v = &w->vapid[i];
	if (v && v->exp - now > VAPID_LIFE / 2)
		return v->header;
	if (!v)
		v = &w->vapid[w->n_vapid < VAPID_CACHE ? w->n_vapid++ : (size_t)(now % VAPID_CACHE)];
	char value[1024];
	if (webpush_vapid(w->vapid_key, aud, now + VAPID_LIFE, w->cfg->webpush_subject, value, sizeof(value)) < 0)
		return NULL;
	size_t len = strlen("Authorization: ") + strlen(value) + 1;
	char *h = malloc(len);
	if (!h)
		return NULL;
	snprintf(h, len, "Authorization: %s", value);
	free(v->header);
	v->header = h;
	v->exp = now + VAPID_LIFE;
	util_strlcpy(v->aud, aud, sizeof(v->aud));
	return v->header;
}

/* --- outcomes ----------------------------------------------------------------------------------- */

static void outcome(struct wake *w, struct wreq *r, long status, const char *detail, int done, int revoke)
{
	struct outcomes *o = &w->acc;
	char clean[DETAIL_MAX + 1];
	curlev_clean_text(clean, sizeof(clean), detail);
	pgarr_num(&o->a[0], r->rid, 0);
	pgarr_num(&o->a[1], r->did, 0);
	pgarr_num(&o->a[2], status, 0);
	pgarr_text(&o->a[3], r->kind);
	pgarr_text(&o->a[4], clean);
	pgarr_text(&o->a[5], done ? "t" : "f");
	pgarr_text(&o->a[6], revoke ? "t" : "f");
	o->n++;
}

static void out_done(struct store_job *job, enum store_error e, const char *err)
{
	struct wake *w = job->arg;
	w->out_in_flight = 0;
	for (int i = 0; i < 7; i++) {
		free(w->out_lit[i]);
		w->out_lit[i] = NULL;
	}
	if (e != STORE_OK)
		log_error("wake", "ev=outcomes_not_written err=\"%s\"", err ? err : "");
	else
		w->revoked += strtoull(PQgetvalue(job->res, 0, 0), NULL, 10);
	if (!w->freeing)
		outcomes_flush(w);
}

static void outcomes_flush(struct wake *w)
{
	struct outcomes *o = &w->acc;
	if (w->out_in_flight || o->n == 0 || !store_is_up(w->store))
		return;
	int oom = 0;
	for (int i = 0; i < 7; i++) {
		w->out_lit[i] = pgarr_take(&o->a[i]);
		oom |= !w->out_lit[i];
		w->out_params[i] = w->out_lit[i];
	}
	o->n = 0;
	w->out_in_flight = 1;
	w->out_job = (struct store_job){ .stmt = &stmts_wake_outcomes, .nparams = 7, .params = w->out_params,
					 .done = out_done, .arg = w, .retry = 1 };
	if (oom) {
		out_done(&w->out_job, STORE_SQL_ERROR, "out of memory");
		return;
	}
	store_submit(w->store, &w->out_job);
}

/* --- requests ------------------------------------------------------------------------------------ */

static void wreq_free(struct wreq *r)
{
	if (r->all_prev)
		r->all_prev->all_next = r->all_next;
	else
		r->w->all = r->all_next;
	if (r->all_next)
		r->all_next->all_prev = r->all_prev;
	curlev_xfer_clear(&r->x);
	if (ev_is_active(&r->retry)) {
		ev_timer_stop(r->w->loop, &r->retry);
		r->w->n_waiting--;
	}
	free(r->endpoint);
	free(r->plain);
	free(r->body);
	free(r);
}

static void enqueue(struct wake *w, struct wreq *r)
{
	r->state = WR_QUEUED;
	r->next = NULL;
	if (w->q_tail)
		w->q_tail->next = r;
	else
		w->q_head = r;
	w->q_tail = r;
	w->n_queued++;
}

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop; (void)revents;
	struct wreq *r = t->data;
	struct wake *w = r->w;
	w->n_waiting--;
	enqueue(w, r);
	pump(w);
}

static void sent(struct curlev_xfer *x, CURLcode cc, long status)
{
	struct wreq *r = x->arg;
	struct wake *w = r->w;
	char detail[DETAIL_MAX + 64];
	const char *what = r->plain ? "message" : "wake-up";
	w->n_sending--;
	curlev_xfer_clear(&r->x);
	free(r->body);
	r->body = NULL;
	r->attempts++;
	if (cc == CURLE_OK && status >= 200 && status < 300) {
		w->accepted++;
		snprintf(detail, sizeof(detail), "via %s: %ld, %s to device %lld", r->kind, status, what, r->did);
		outcome(w, r, status, detail, 1, 0);
		wreq_free(r);
		return;
	}
	if (cc == CURLE_OK && (status == 404 || status == 410)) {
		w->failed++;
		snprintf(detail, sizeof(detail), "via %s: %ld, the subscription is gone: endpoint of device %lld revoked",
			 r->kind, status, r->did);
		outcome(w, r, status, detail, 1, 1);
		wreq_free(r);
		return;
	}
	if (cc == CURLE_OK && status == 413 && r->plain) {
		/* the push service takes less than one record: wake the app, it fetches */
		w->gone_wake_only++;
		snprintf(detail, sizeof(detail), "via %s: 413, message too large here: sent again as a wake-up", r->kind);
		outcome(w, r, status, detail, 0, 0);
		free(r->plain);
		r->plain = NULL;
		r->plain_len = 0;
		enqueue(w, r);
		return;
	}
	int transient = cc != CURLE_OK || status == 429 || status >= 500;
	char why[160];
	if (cc != CURLE_OK)
		util_strlcpy(why, r->x.refused[0] ? r->x.refused : r->x.errbuf[0] ? r->x.errbuf : curl_easy_strerror(cc),
			     sizeof(why));
	else
		snprintf(why, sizeof(why), "%ld", status);
	double wait = w->cfg->wake_backoff_min;
	for (int i = 1; i < r->attempts && wait < BACKOFF_MAX; i++)
		wait *= 2;
	if (r->x.retry_after > 0)
		wait = (double)r->x.retry_after;
	if (wait > BACKOFF_MAX)
		wait = BACKOFF_MAX;
	double left = r->deadline - ev_now(w->loop);
	if (transient && !w->stopping && !r->x.refused[0] && wait < left) {
		w->retries++;
		snprintf(detail, sizeof(detail), "via %s: %s, again in %.1f s", r->kind, why, wait);
		outcome(w, r, cc == CURLE_OK ? status : 0, detail, 0, 0);
		r->state = WR_WAITING;
		ev_timer_init(&r->retry, retry_cb, wait, 0.);
		r->retry.data = r;
		ev_timer_start(w->loop, &r->retry);
		w->n_waiting++;
		return;
	}
	w->failed++;
	snprintf(detail, sizeof(detail), "via %s: %s, %s", r->kind, why,
		 transient ? "no time left before the push deadline" : "refused");
	outcome(w, r, cc == CURLE_OK ? status : 0, detail, 1, 0);
	wreq_free(r);
}

/* Builds and starts one Web Push request.  0, or -1 (the caller records why). */
static int start_webpush(struct wake *w, struct wreq *r, const char **why)
{
	static const char wake_only[] = "{\"type\":\"wake\"}";
	const uint8_t *plain = r->plain ? (const uint8_t *)r->plain : (const uint8_t *)wake_only;
	size_t len = r->plain ? r->plain_len : sizeof(wake_only) - 1;
	size_t pad = (PAD_TO - len % PAD_TO) % PAD_TO;
	if (len + pad > PLAIN_MAX)
		pad = PLAIN_MAX - len;
	size_t cap = WEBPUSH_HEADER_LEN + len + 1 + pad + WEBPUSH_TAG_LEN;
	const char *auth = vapid_header(w, r->endpoint);
	if (!auth) {
		*why = "no VAPID signature for this endpoint";
		return -1;
	}
	if (!(r->body = malloc(cap)) ||
	    webpush_encrypt(r->p256dh, r->auth, plain, len, pad, r->body, cap, &r->body_len) < 0) {
		*why = "encryption failed (bad subscription keys)";
		return -1;
	}
	r->x = (struct curlev_xfer){ .done = sent, .arg = r, .who = "wake", .tag = r->did };
	if (curlev_easy(w->curl, &r->x, r->endpoint, w->cfg->wake_timeout, w->cfg->wake_timeout) < 0) {
		*why = "not a usable URL";
		return -1;
	}
	char line[96];
	long ttl = (long)(r->deadline - ev_now(w->loop));
	struct curl_slist *t;
#define ADD_HEADER(s) do { if (!(t = curl_slist_append(r->x.headers, (s)))) goto oom; r->x.headers = t; } while (0)
	snprintf(line, sizeof(line), "TTL: %ld", ttl > 0 ? ttl : 0);
	ADD_HEADER(line);
	snprintf(line, sizeof(line), "Urgency: %s", r->urgency);
	ADD_HEADER(line);
	if (!r->plain)
		ADD_HEADER("Topic: pending");
	ADD_HEADER("Content-Encoding: aes128gcm");
	ADD_HEADER("Content-Type: application/octet-stream");
	ADD_HEADER("Expect:");
	ADD_HEADER(auth);
#undef ADD_HEADER
	CURL *e = r->x.easy;
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pushgate-wake/1");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	if (w->cfg->wake_ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, w->cfg->wake_ca_file);
	if (curlev_start(w->curl, &r->x) < 0)
		goto oom;
	return 0;
oom:
	*why = "out of memory";
	return -1;
}

/* Starts what the concurrency allows. */
static void pump(struct wake *w)
{
	while (w->q_head && w->n_sending < w->cfg->wake_concurrency && !w->freeing) {
		struct wreq *r = w->q_head;
		w->q_head = r->next;
		if (!w->q_head)
			w->q_tail = NULL;
		w->n_queued--;
		r->next = NULL;
		const char *why = "no provider for this kind on this node";
		double left = r->deadline - ev_now(w->loop);
		if (left <= 0) {
			why = "the push deadline passed while it waited";
		} else if (strcmp(r->kind, "webpush") == 0 && w->vapid_key) {
			if (start_webpush(w, r, &why) == 0) {
				r->state = WR_SENDING;
				w->n_sending++;
				w->sent++;
				continue;
			}
		}
		char detail[DETAIL_MAX];
		snprintf(detail, sizeof(detail), "via %s: not sent, %s", r->kind, why);
		w->failed++;
		outcome(w, r, 0, detail, 1, 0);
		wreq_free(r);
	}
}

/* Transfers ended in this loop turn: their slots are free. */
static void collected(void *arg)
{
	pump(arg);
}

/* --- claims ------------------------------------------------------------------------------------- */

/* Rows (stmts.h): recipient, device, kind, endpoint, p256dh, auth, app, left, purpose, sender, body, sent_at. */
static void claimed(struct wake *w, PGresult *res)
{
	double now = ev_now(w->loop);
	for (int i = 0; i < PQntuples(res); i++) {
		struct wreq *r = calloc(1, sizeof(*r));
		if (!r)
			break;
		r->w = w;
		r->all_next = w->all;
		if (w->all)
			w->all->all_prev = r;
		w->all = r;
		r->rid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		r->did = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		util_strlcpy(r->kind, PQgetvalue(res, i, 2), sizeof(r->kind));
		r->endpoint = strdup(PQgetvalue(res, i, 3));
		r->deadline = now + strtod(PQgetvalue(res, i, 7), NULL);
		const char *purpose = PQgetvalue(res, i, 8);
		r->urgency = !strcmp(purpose, "AUTH") ? "high" : !strcmp(purpose, "AD") ? "low" : "normal";
		const char *sender = PQgetvalue(res, i, 9);
		json_t *msg = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "type", "msg", "id",
					(json_int_t)r->rid, "sender", sender, "sender_name", sender, "text",
					PQgetvalue(res, i, 10), "folder", sender, "sent_at", PQgetvalue(res, i, 11));
		r->plain = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
		json_decref(msg);
		r->plain_len = r->plain ? strlen(r->plain) : 0;
		if (r->plain_len > PLAIN_MAX) {   /* wake the app: it fetches over HTTP or its socket */
			free(r->plain);
			r->plain = NULL;
			r->plain_len = 0;
		}
		int keys_ok = strcmp(r->kind, "webpush") != 0 ||
			      (unhex(PQgetvalue(res, i, 4), r->p256dh, sizeof(r->p256dh)) == 0 &&
			       unhex(PQgetvalue(res, i, 5), r->auth, sizeof(r->auth)) == 0);
		if (!r->endpoint || !keys_ok) {
			outcome(w, r, 0, keys_ok ? "not sent: out of memory" : "not sent: the subscription's keys are unusable",
				1, 0);
			wreq_free(r);
			continue;
		}
		enqueue(w, r);
	}
	pump(w);
}

static void claim_done(struct store_job *job, enum store_error e, const char *err)
{
	struct wake *w = job->arg;
	w->claim_in_flight = 0;
	free(w->claim_lit);
	w->claim_lit = NULL;
	if (e == STORE_OK) {
		claimed(w, job->res);
		if (job->stmt == &stmts_wake_claim_scan && PQntuples(job->res) >= atoi(SCAN_LIMIT))
			w->scan_again = 1;
	} else if (e == STORE_SQL_ERROR) {
		log_error("wake", "ev=claim_failed stmt=%s err=\"%s\"", job->stmt->name, err ? err : "");
	}
}

static void claim_next(struct wake *w)
{
	if (w->claim_in_flight || w->stopping || !store_is_up(w->store))
		return;
	if (w->ids.n > 0) {
		w->claim_lit = pgarr_take(&w->ids);
		if (!w->claim_lit)
			return;
		w->claim_params[0] = w->claim_lit;
		w->claim_job = (struct store_job){ .stmt = &stmts_wake_claim_messages };
	} else if (w->scan_again) {
		w->scan_again = 0;
		w->claim_params[0] = SCAN_LIMIT;
		w->claim_job = (struct store_job){ .stmt = &stmts_wake_claim_scan };
	} else {
		return;
	}
	w->claim_params[1] = w->node;
	w->claim_job.nparams = 2;
	w->claim_job.params = w->claim_params;
	w->claim_job.done = claim_done;
	w->claim_job.arg = w;
	w->claim_in_flight = 1;
	store_submit(w->store, &w->claim_job);
}

static void flush_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop; (void)revents;
	struct wake *w = t->data;
	claim_next(w);
	outcomes_flush(w);
}

static void scan_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop; (void)revents;
	struct wake *w = t->data;
	w->scan_again = 1;
	claim_next(w);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct wake *w = arg;
	long id;
	if (w->stopping || strcmp(channel, "pushgate_push") != 0 ||
	    util_parse_long(payload, 1, 0x7fffffffffffffffL, &id) < 0)
		return;
	pgarr_num(&w->ids, id, 0);
	if (w->ids.n >= CLAIM_MAX)
		claim_next(w);
}

static void listen_done(struct store_job *job, enum store_error e, const char *err)
{
	struct wake *w = job->arg;
	w->listen_in_flight = 0;
	if (e == STORE_SQL_ERROR)
		log_error("wake", "ev=listen_failed err=\"%s\"", err ? err : "");
}

/* --- public ------------------------------------------------------------------------------------- */

void wake_on_store_up(struct wake *w)
{
	if (!w)
		return;
	if (!w->listen_in_flight) {
		w->listen_in_flight = 1;
		w->listen_job = (struct store_job){ .stmt = &stmt_listen, .done = listen_done, .arg = w, .retry = 1 };
		store_submit(w->store, &w->listen_job);
	}
	w->scan_again = 1;   /* notifications sent while the link was down are lost */
}

void wake_kick(struct wake *w)
{
	if (!w)
		return;
	w->scan_again = 1;
	claim_next(w);
}

int wake_kind_enabled(const struct wake *w, const char *kind)
{
	return w && strcmp(kind, "webpush") == 0 && w->vapid_key != NULL;
}

const char *wake_vapid_public(const struct wake *w)
{
	return w ? w->vapid_public : "";
}

void wake_stop(struct wake *w)
{
	if (!w || w->stopping)
		return;
	w->stopping = 1;
	ev_timer_stop(w->loop, &w->scan);
	struct wreq *r;
	while ((r = w->q_head)) {
		w->q_head = r->next;
		w->n_queued--;
		wreq_free(r);
	}
	w->q_tail = NULL;
}

int wake_busy(const struct wake *w)
{
	return w && (w->n_sending > 0 || w->out_in_flight || w->acc.n > 0 || w->claim_in_flight);
}

size_t wake_metrics(void *arg, char *buf, size_t cap)
{
	struct wake *w = arg;
	if (!w)
		return 0;
	int n = snprintf(buf, cap,
			 "# TYPE pushgate_wake_sent_total counter\npushgate_wake_sent_total %llu\n"
			 "# TYPE pushgate_wake_accepted_total counter\npushgate_wake_accepted_total %llu\n"
			 "# TYPE pushgate_wake_failed_total counter\npushgate_wake_failed_total %llu\n"
			 "# TYPE pushgate_wake_retries_total counter\npushgate_wake_retries_total %llu\n"
			 "# TYPE pushgate_wake_revoked_total counter\npushgate_wake_revoked_total %llu\n"
			 "# TYPE pushgate_wake_in_flight gauge\npushgate_wake_in_flight %zu\n"
			 "# TYPE pushgate_wake_queued gauge\npushgate_wake_queued %zu\n"
			 "# TYPE pushgate_wake_waiting gauge\npushgate_wake_waiting %zu\n",
			 w->sent, w->accepted, w->failed, w->retries, w->revoked, w->n_sending, w->n_queued,
			 w->n_waiting);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap;
}

static EVP_PKEY *load_key(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "[webpush] vapid_key: cannot open %s", path);
		return NULL;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	uint8_t pub[WEBPUSH_KEY_LEN];
	if (!k || webpush_public_key(k, pub) < 0) {
		snprintf(err, errlen, "[webpush] vapid_key: %s is not a PEM P-256 private key", path);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

struct wake *wake_new(struct ev_loop *loop, struct store *store, const struct config *cfg, const char *node,
		      char *err, size_t errlen)
{
	struct wake *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->loop = loop;
	w->store = store;
	w->cfg = cfg;
	w->node = node;
	char why[160];
	if (cfg->webpush_vapid_key[0]) {
		uint8_t pub[WEBPUSH_KEY_LEN];
		if (!(w->vapid_key = load_key(cfg->webpush_vapid_key, err, errlen)) ||
		    webpush_public_key(w->vapid_key, pub) < 0 ||
		    jose_b64url_encode(pub, sizeof(pub), w->vapid_public, sizeof(w->vapid_public)) < 0) {
			wake_free(w);
			return NULL;
		}
	}
	if (!(w->policy = netpolicy_new(cfg->wake_allow_internal, why, sizeof(why))) ||
	    !(w->curl = curlev_new(loop, w->policy, (long)cfg->wake_concurrency, collected, w))) {
		snprintf(err, errlen, "[wake]: %s", w->policy ? "libcurl failed" : why);
		wake_free(w);
		return NULL;
	}
	store_on_notify(store, on_notify, w);
	ev_timer_init(&w->flush, flush_cb, FLUSH_INTERVAL, FLUSH_INTERVAL);
	w->flush.data = w;
	ev_timer_start(loop, &w->flush);
	ev_timer_init(&w->scan, scan_cb, cfg->wake_scan, cfg->wake_scan);
	w->scan.data = w;
	ev_timer_start(loop, &w->scan);
	return w;
}

void wake_free(struct wake *w)
{
	if (!w)
		return;
	w->freeing = w->stopping = 1;
	ev_timer_stop(w->loop, &w->flush);
	ev_timer_stop(w->loop, &w->scan);
	/* queued, in flight or waiting: their claims stay in wakes unanswered, the SMS fallback covers them */
	while (w->all)
		wreq_free(w->all);
	curlev_free(w->curl);
	for (size_t i = 0; i < w->n_vapid; i++)
		free(w->vapid[i].header);
	for (int i = 0; i < 7; i++) {
		pgarr_reset(&w->acc.a[i]);
		free(w->out_lit[i]);
	}
	pgarr_reset(&w->ids);
	free(w->claim_lit);
	netpolicy_free(w->policy);
	EVP_PKEY_free(w->vapid_key);
	free(w);
}
