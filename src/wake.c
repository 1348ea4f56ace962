/*
 * wake.c: platform push to devices with no live socket (wake.h).
 *
 * Claims come from three places, statements on this module's own store:
 * the message ids of NOTIFY pushgate_push (every node hears them; the insert
 * into `wakes` gives each (recipient, device) to one node), the numbers of
 * NOTIFY pushgate_wake (a device's last socket closed, a device registered
 * an endpoint: what waits for the number), and a scan at each connection
 * (the link was down: notifications were lost) for PUSH_SENT recipients whose devices were
 * not claimed (a notification missed while the store was down).
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

#include "apns.h"
#include "curlev.h"
#include "fcm.h"
#include "log.h"
#include "metrics.h"
#include "netpolicy.h"
#include "pgarr.h"
#include "stmts.h"
#include "util.h"
#include "webpush.h"

#define FLUSH_INTERVAL  0.002
#define CLAIM_MAX       2000        /* message ids per claim */
#define CLAIM_ROWS      "2000"      /* pushes one claim takes (a campaign's message: page after page) */
#define PLAIN_MAX       (WEBPUSH_RECORD_SIZE - WEBPUSH_HEADER_LEN - WEBPUSH_TAG_LEN - 1)
#define PAD_TO          128
#define VAPID_LIFE      43200       /* seconds a JWT is valid; made again when less than half is left */
#define VAPID_CACHE     32          /* push service origins remembered */
#define DETAIL_MAX      200
#define BACKOFF_MAX     300.0
#define ANSWER_MAX      1024        /* bytes of an answer's body kept to judge it */

enum wr_state { WR_QUEUED, WR_SENDING, WR_WAITING, WR_PARKED };

/* What an answer means, whatever the provider. */
enum verdict { V_OK, V_REVOKE, V_RETRY, V_REAUTH, V_SHRINK, V_FAIL };

struct wreq;

/* One [fcm NAME] or [apns NAME] app and its credentials' state. */
struct wapp {
	struct wake             *w;
	const struct app_config *cfg;
	int                      fcm;
	char                     base[256];     /* the service's base URL */
	/* fcm: the OAuth access token */
	struct fcm_account       acct;
	char                     token[2048];
	double                   token_until;   /* ev_now() after which it is not used */
	unsigned                 token_gen;     /* bumped at every new token */
	int                      token_in_flight;
	double                   token_backoff;
	struct curlev_xfer       tx;
	char                    *tx_body;
	char                     tx_answer[8192];
	ev_timer                 token_timer;   /* the next try after a refusal */
	struct wreq             *parked;        /* waiting for a token */
	/* apns: the provider token */
	EVP_PKEY                *key;
	char                     jwt[512];
	long long                jwt_iat;       /* 0: make a new one */
	unsigned                 jwt_gen;
};

struct wreq {
	struct wake       *w;
	struct wreq       *next;              /* the queue */
	struct wreq       *all_prev, *all_next;   /* every request, whatever its state */
	enum wr_state      state;
	long long          rid, did;
	char               kind[8];
	char              *endpoint;          /* webpush: the URL; fcm, apns: the device's token */
	struct wapp       *app;               /* fcm, apns */
	unsigned           gen;               /* the app's token generation this request used */
	int                reauths;
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
	char              *answer;            /* while sending: the start of the answer's body (error reasons) */
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
	struct wapp          apps[CONFIG_MAX_APPS];
	size_t               n_apps;
	struct wreq         *q_head, *q_tail;
	struct wreq         *all;
	size_t               n_queued, n_sending, n_waiting;
	int                  stopping, freeing;
	ev_timer             flush;
	/* claims */
	long long           *ids;             /* message ids heard of, claimed CLAIM_MAX at a time */
	size_t               n_ids, cap_ids;
	struct pgarr         numbers;         /* numbers heard of (a socket closed, an endpoint registered) */
	char                *numbers_lit;     /* in flight; kept while its claims come back full */
	int                  numbers_more;
	int                  claim_in_flight, scan_again;
	struct store_job     claim_job;
	const char          *claim_params[4];
	char                 claim_after[24];  /* the last recipient id of claim_lit's previous page */
	char                *claim_lit;       /* the message ids in flight; kept when their claim was full */
	int                  claim_more;      /* claim_lit again: its last claim took CLAIM_ROWS */
	/* outcomes */
	struct outcomes      acc;
	int                  out_in_flight;
	struct store_job     out_job;
	const char          *out_params[7];
	char                *out_lit[7];
	struct store_job     listen_job, session_job, listen_numbers_job;
	int                  listen_in_flight;
	unsigned long long   sent, accepted, failed, revoked, retries, gone_wake_only;
};

static const struct store_stmt stmt_listen = { "wake_listen", "LISTEN pushgate_push", 0, 1 };
static const struct store_stmt stmt_listen_numbers = { "wake_listen_numbers", "LISTEN pushgate_wake", 0, 1 };
/*
 * This connection's statements find every row by key; the claims' anti-join
 * with `wakes` must stay a probe of its primary key, but the generic plan is
 * made at the first claim, often while `wakes` is empty, and a sequential
 * scan of an empty table looks cheaper (then each probe reads the whole
 * table, for the connection's life).  So no table is scanned whole here.
 */
static const struct store_stmt stmt_session = {
	"wake_session", "SELECT set_config('enable_seqscan', 'off', false)", 0, 1,
};

static void pump(struct wake *w);
static void outcomes_flush(struct wake *w);

/* --- small helpers ---------------------------------------------------------------------------- */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
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
	if (r->state == WR_PARKED && r->app) {
		for (struct wreq **pp = &r->app->parked; *pp; pp = &(*pp)->next)
			if (*pp == r) {
				*pp = r->next;
				r->w->n_waiting--;
				break;
			}
	}
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
	free(r->answer);
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

/* What an answer means for r's provider; why gets the answer in words (status, error code). */
static enum verdict judge(struct wreq *r, CURLcode cc, long status, char *why, size_t cap)
{
	char code[64] = "";
	if (cc != CURLE_OK) {
		util_strlcpy(why, r->x.refused[0] ? r->x.refused : r->x.errbuf[0] ? r->x.errbuf : curl_easy_strerror(cc),
			     cap);
		return r->x.refused[0] ? V_FAIL : V_RETRY;
	}
	if (strcmp(r->kind, "fcm") == 0)
		fcm_error_code(r->answer, code, sizeof(code));
	else if (strcmp(r->kind, "apns") == 0)
		apns_reason(r->answer, code, sizeof(code));
	snprintf(why, cap, "%ld%s%s", status, code[0] ? " " : "", code);
	if (status >= 200 && status < 300)
		return V_OK;
	if (status == 429 && strcmp(code, "TooManyProviderTokenUpdates") == 0)
		return V_RETRY;
	if (status == 429 || status >= 500)
		return V_RETRY;
	if (strcmp(r->kind, "webpush") == 0) {
		if (status == 404 || status == 410)
			return V_REVOKE;
		if (status == 413)
			return V_SHRINK;
		return V_FAIL;
	}
	if (strcmp(r->kind, "fcm") == 0) {
		if (!strcmp(code, "UNREGISTERED") || !strcmp(code, "SENDER_ID_MISMATCH"))
			return V_REVOKE;
		if (status == 401)
			return V_REAUTH;
		if (status == 400 && r->answer && strstr(r->answer, "too big"))
			return V_SHRINK;
		return V_FAIL;
	}
	/* apns */
	if (status == 410 || !strcmp(code, "BadDeviceToken") || !strcmp(code, "DeviceTokenNotForTopic"))
		return V_REVOKE;
	if (!strcmp(code, "ExpiredProviderToken"))
		return V_REAUTH;
	if (status == 413)
		return V_SHRINK;
	return V_FAIL;
}

static void sent(struct curlev_xfer *x, CURLcode cc, long status)
{
	struct wreq *r = x->arg;
	struct wake *w = r->w;
	char detail[DETAIL_MAX + 64], why[160];
	const char *what = r->plain ? "message" : "wake-up";
	w->n_sending--;
	curlev_xfer_clear(&r->x);
	free(r->body);
	r->body = NULL;
	r->attempts++;
	long st = cc == CURLE_OK ? status : 0;
	enum verdict v = judge(r, cc, status, why, sizeof(why));
	free(r->answer);   /* judged: only requests in flight hold one */
	r->answer = NULL;
	switch (v) {
	case V_OK:
		w->accepted++;
		snprintf(detail, sizeof(detail), "via %s: %s, %s to device %lld", r->kind, why, what, r->did);
		outcome(w, r, st, detail, 1, 0);
		wreq_free(r);
		return;
	case V_REVOKE:
		w->failed++;
		snprintf(detail, sizeof(detail), "via %s: %s, the device's endpoint is gone: device %lld revoked",
			 r->kind, why, r->did);
		outcome(w, r, st, detail, 1, 1);
		wreq_free(r);
		return;
	case V_SHRINK:
		if (!r->plain)
			break;
		/* the service takes less than the whole message: wake the app, it fetches */
		w->gone_wake_only++;
		snprintf(detail, sizeof(detail), "via %s: %s, message too large here: sent again as a wake-up", r->kind, why);
		outcome(w, r, st, detail, 0, 0);
		free(r->plain);
		r->plain = NULL;
		r->plain_len = 0;
		enqueue(w, r);
		return;
	case V_REAUTH:
		if (r->reauths++ >= 2)
			break;
		/* the access or provider token ran out (or was refused): a new one, then again at once */
		if (r->app && r->app->fcm && r->gen == r->app->token_gen)
			r->app->token_until = 0;
		if (r->app && !r->app->fcm && r->gen == r->app->jwt_gen)
			r->app->jwt_iat = 0;
		snprintf(detail, sizeof(detail), "via %s: %s, credentials renewed: again", r->kind, why);
		outcome(w, r, st, detail, 0, 0);
		enqueue(w, r);
		return;
	case V_RETRY:
	case V_FAIL:
		break;
	}
	double wait = w->cfg->wake_backoff_min;
	for (int i = 1; i < r->attempts && wait < BACKOFF_MAX; i++)
		wait *= 2;
	if (r->x.retry_after > 0)
		wait = (double)r->x.retry_after;
	if (wait > BACKOFF_MAX)
		wait = BACKOFF_MAX;
	double left = r->deadline - ev_now(w->loop);
	if (v == V_RETRY && !w->stopping && wait < left) {
		w->retries++;
		snprintf(detail, sizeof(detail), "via %s: %s, again in %.1f s", r->kind, why, wait);
		outcome(w, r, st, detail, 0, 0);
		r->state = WR_WAITING;
		ev_timer_init(&r->retry, retry_cb, wait, 0.);
		r->retry.data = r;
		ev_timer_start(w->loop, &r->retry);
		w->n_waiting++;
		return;
	}
	w->failed++;
	snprintf(detail, sizeof(detail), "via %s: %s, %s", r->kind, why,
		 v == V_RETRY ? "no time left before the push deadline" : "refused");
	outcome(w, r, st, detail, 1, 0);
	wreq_free(r);
}

/* The transfer of any provider: a POST of r->body to url (HTTP/2 when TLS offers it), with these headers. */
static int start_post(struct wake *w, struct wreq *r, const char *url, const char *content_type,
		      const char *const *headers, size_t n, const char **why)
{
	if (!r->answer && !(r->answer = malloc(ANSWER_MAX))) {
		*why = "out of memory";
		return -1;
	}
	r->x = (struct curlev_xfer){ .done = sent, .arg = r, .who = "wake", .tag = r->did, .answer = r->answer,
				     .answer_cap = ANSWER_MAX };
	if (curlev_easy(w->curl, &r->x, url, w->cfg->wake_timeout, w->cfg->wake_timeout) < 0) {
		*why = "not a usable URL";
		return -1;
	}
	struct curl_slist *t;
	if (!(t = curl_slist_append(NULL, content_type)))
		goto oom;
	r->x.headers = t;
	if (!(t = curl_slist_append(r->x.headers, "Expect:")))   /* the body goes at once, no 100-continue */
		goto oom;
	r->x.headers = t;
	for (size_t i = 0; i < n; i++) {
		if (!(t = curl_slist_append(r->x.headers, headers[i])))
			goto oom;
		r->x.headers = t;
	}
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
	char ttl[32], urgency[32];
	long left = (long)(r->deadline - ev_now(w->loop));
	snprintf(ttl, sizeof(ttl), "TTL: %ld", left > 0 ? left : 0);
	snprintf(urgency, sizeof(urgency), "Urgency: %s", r->urgency);
	const char *headers[] = { ttl, urgency, "Content-Encoding: aes128gcm", auth, r->plain ? NULL : "Topic: pending" };
	return start_post(w, r, r->endpoint, "Content-Type: application/octet-stream", headers,
			  sizeof(headers) / sizeof(headers[0]) - (r->plain != NULL), why);
}

/* --- FCM and APNs ------------------------------------------------------------------------------ */

static void token_fetch(struct wapp *a);

static void token_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop; (void)revents;
	token_fetch(t->data);
}

/* The parked requests go back to the queue (with a token, or to be failed by the deadline). */
static void unpark(struct wapp *a)
{
	struct wreq *r;
	while ((r = a->parked)) {
		a->parked = r->next;
		a->w->n_waiting--;
		enqueue(a->w, r);
	}
	pump(a->w);
}

static void token_done(struct curlev_xfer *x, CURLcode cc, long status)
{
	struct wapp *a = x->arg;
	struct wake *w = a->w;
	a->token_in_flight = 0;
	curlev_xfer_clear(&a->tx);
	free(a->tx_body);
	a->tx_body = NULL;
	double expires_in = 0;
	if (cc == CURLE_OK && status == 200 && fcm_token_answer(a->tx_answer, a->token, sizeof(a->token), &expires_in) == 0) {
		/* used until a minute before it runs out */
		a->token_until = ev_now(w->loop) + (expires_in > 120 ? expires_in - 60 : expires_in / 2);
		a->token_gen++;
		a->token_backoff = 0;
		log_info("wake", "ev=fcm_token app=%s expires_in=%.0f", a->cfg->name, expires_in);
		unpark(a);
		return;
	}
	char why[160];
	util_strlcpy(why, cc != CURLE_OK ? (a->tx.refused[0] ? a->tx.refused : curl_easy_strerror(cc)) : "refused",
		     sizeof(why));
	a->token_backoff = a->token_backoff > 0 ? a->token_backoff * 2 : w->cfg->wake_backoff_min;
	if (a->token_backoff > BACKOFF_MAX)
		a->token_backoff = BACKOFF_MAX;
	log_error("wake", "ev=fcm_token_failed app=%s status=%ld why=\"%s\" retry_in=%.1f", a->cfg->name, status, why,
		  a->token_backoff);
	ev_timer_stop(w->loop, &a->token_timer);
	ev_timer_set(&a->token_timer, a->token_backoff, 0.);
	ev_timer_start(w->loop, &a->token_timer);
	/* what has no time for another try is failed by pump at its deadline; the rest wait */
	struct wreq **pp = &a->parked;
	double now = ev_now(w->loop);
	while (*pp) {
		struct wreq *r = *pp;
		if (r->deadline - now <= a->token_backoff) {
			*pp = r->next;
			w->n_waiting--;
			w->failed++;
			char detail[DETAIL_MAX + 192];
			snprintf(detail, sizeof(detail), "via fcm: not sent, no OAuth access token (token_uri: %ld %s)",
				 status, why);
			outcome(w, r, 0, detail, 1, 0);
			wreq_free(r);
		} else {
			pp = &r->next;
		}
	}
}

/* An OAuth access token for an FCM app (RFC 7523 assertion to token_uri). */
static void token_fetch(struct wapp *a)
{
	struct wake *w = a->w;
	if (a->token_in_flight || w->freeing)
		return;
	char *body = malloc(8192);
	if (!body || fcm_token_request(&a->acct, (long long)time(NULL), body, 8192) < 0) {
		free(body);
		log_error("wake", "ev=fcm_assertion_failed app=%s", a->cfg->name);
		return;
	}
	a->tx = (struct curlev_xfer){ .done = token_done, .arg = a, .who = "wake", .answer = a->tx_answer,
				      .answer_cap = sizeof(a->tx_answer) };
	if (curlev_easy(w->curl, &a->tx, a->acct.token_uri, w->cfg->wake_timeout, w->cfg->wake_timeout) < 0) {
		free(body);
		return;
	}
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
	a->tx.headers = h;
	a->tx_body = body;
	curl_easy_setopt(a->tx.easy, CURLOPT_POST, 1L);
	curl_easy_setopt(a->tx.easy, CURLOPT_POSTFIELDS, a->tx_body);
	curl_easy_setopt(a->tx.easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(a->tx_body));
	if (w->cfg->wake_ca_file[0])
		curl_easy_setopt(a->tx.easy, CURLOPT_CAINFO, w->cfg->wake_ca_file);
	if (!h || curlev_start(w->curl, &a->tx) < 0) {
		curlev_xfer_clear(&a->tx);
		free(a->tx_body);
		a->tx_body = NULL;
		return;
	}
	a->token_in_flight = 1;
}

/* 0 started, 1 parked until an access token comes, -1 not sent (why). */
static int start_fcm(struct wake *w, struct wreq *r, const char **why)
{
	struct wapp *a = r->app;
	if (ev_now(w->loop) >= a->token_until) {
		r->state = WR_PARKED;
		r->next = a->parked;
		a->parked = r;
		w->n_waiting++;
		if (!ev_is_active(&a->token_timer))
			token_fetch(a);
		return 1;
	}
	long ttl = (long)(r->deadline - ev_now(w->loop));
	const char *priority = strcmp(r->urgency, "low") == 0 ? "normal" : "high";
	char *body = r->plain && r->plain_len <= FCM_DATA_MAX ? fcm_message(r->endpoint, r->plain, 0, priority, ttl) : NULL;
	if (!body)
		body = fcm_message(r->endpoint, NULL, 1, priority, ttl);
	if (!body) {
		*why = "out of memory";
		return -1;
	}
	r->body = (uint8_t *)body;
	r->body_len = strlen(body);
	r->gen = a->token_gen;
	char url[512], auth[2100];
	snprintf(url, sizeof(url), "%s/v1/projects/%s/messages:send", a->base,
		 a->cfg->project_id[0] ? a->cfg->project_id : a->acct.project_id);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a->token);
	const char *headers[] = { auth };
	return start_post(w, r, url, "Content-Type: application/json", headers, 1, why);
}

/* 0 started, -1 not sent (why). */
static int start_apns(struct wake *w, struct wreq *r, const char **why)
{
	struct wapp *a = r->app;
	long long now = (long long)time(NULL);
	/* Apple: no older than an hour, no newer one more often than every 20 minutes */
	if (a->jwt_iat == 0 || now - a->jwt_iat > 40 * 60) {
		if (apns_token(a->key, a->cfg->key_id, a->cfg->team_id, now, a->jwt, sizeof(a->jwt)) < 0) {
			*why = "no provider token (signing failed)";
			return -1;
		}
		a->jwt_iat = now;
		a->jwt_gen++;
	}
	char *body = r->plain ? apns_payload(r->plain, 0) : NULL;
	if (body && strlen(body) > APNS_PAYLOAD_MAX) {
		free(body);
		body = NULL;
	}
	if (!body)
		body = apns_payload(r->plain, 1);
	if (!body) {
		*why = "out of memory";
		return -1;
	}
	r->body = (uint8_t *)body;
	r->body_len = strlen(body);
	r->gen = a->jwt_gen;
	char url[512], auth[600], topic[160], expiration[48], priority[24];
	snprintf(url, sizeof(url), "%s/3/device/%s", a->base, r->endpoint);
	snprintf(auth, sizeof(auth), "authorization: bearer %s", a->jwt);
	snprintf(topic, sizeof(topic), "apns-topic: %s", a->cfg->bundle_id);
	snprintf(expiration, sizeof(expiration), "apns-expiration: %lld", now + (long long)(r->deadline - ev_now(w->loop)));
	snprintf(priority, sizeof(priority), "apns-priority: %s", strcmp(r->urgency, "low") == 0 ? "5" : "10");
	const char *headers[] = { auth, topic, "apns-push-type: alert", priority, expiration };
	return start_post(w, r, url, "Content-Type: application/json", headers, sizeof(headers) / sizeof(headers[0]), why);
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
		int rc = -1;
		if (left <= 0)
			why = "the push deadline passed while it waited";
		else if (strcmp(r->kind, "webpush") == 0 && w->vapid_key)
			rc = start_webpush(w, r, &why);
		else if (strcmp(r->kind, "fcm") == 0 && r->app)
			rc = start_fcm(w, r, &why);
		else if (strcmp(r->kind, "apns") == 0 && r->app)
			rc = start_apns(w, r, &why);
		if (rc == 1)
			continue;   /* parked until its app has credentials */
		if (rc == 0) {
			r->state = WR_SENDING;
			w->n_sending++;
			w->sent++;
			continue;
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

/* The app a device's endpoint belongs to: by name, or the only one of its kind when the name is "". */
static struct wapp *app_find(struct wake *w, const char *kind, const char *name)
{
	struct wapp *only = NULL;
	size_t n = 0;
	for (size_t i = 0; i < w->n_apps; i++) {
		struct wapp *a = &w->apps[i];
		if (strcmp(a->cfg->kind, kind) != 0)
			continue;
		if (strcmp(a->cfg->name, name) == 0)
			return a;
		only = a;
		n++;
	}
	return !name[0] && n == 1 ? only : NULL;
}

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
		r->app = app_find(w, r->kind, PQgetvalue(res, i, 6));
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
	int full = e == STORE_OK && PQntuples(job->res) >= atoi(CLAIM_ROWS);
	w->claim_in_flight = 0;
	if (job->stmt == &stmts_wake_claim_numbers) {
		if (!full) {   /* full: the same numbers again (what is claimed is not taken twice) */
			free(w->numbers_lit);
			w->numbers_lit = NULL;
			w->numbers_more = 0;
		}
	} else if (job->stmt == &stmts_wake_claim_messages && full) {
		/* the same messages again from the last recipient of this page (its other devices may wait) */
		w->claim_more = 1;
		util_strlcpy(w->claim_after, PQgetvalue(job->res, PQntuples(job->res) - 1, 0), sizeof(w->claim_after));
	} else {
		free(w->claim_lit);
		w->claim_lit = NULL;
		w->claim_more = 0;
	}
	if (e == STORE_OK) {
		claimed(w, job->res);
		if (job->stmt == &stmts_wake_claim_scan && full)
			w->scan_again = 1;
	} else if (e == STORE_SQL_ERROR) {
		log_error("wake", "ev=claim_failed stmt=%s err=\"%s\"", job->stmt->name, err ? err : "");
	}
}

static void claim_next(struct wake *w)
{
	if (w->claim_in_flight || w->stopping || !store_is_up(w->store))
		return;
	/* claimed and not sent yet stays bounded: a campaign is taken page by page as it is sent */
	if (w->n_queued + w->n_sending >= 4 * w->cfg->wake_concurrency)
		return;
	if (!w->claim_more && w->n_ids > 0) {
		struct pgarr a = {0};
		size_t k = w->n_ids < CLAIM_MAX ? w->n_ids : CLAIM_MAX;
		for (size_t i = 0; i < k; i++)
			pgarr_num(&a, w->ids[i], 0);
		if (!(w->claim_lit = pgarr_take(&a)))
			return;
		memmove(w->ids, w->ids + k, (w->n_ids - k) * sizeof(*w->ids));
		w->n_ids -= k;
		w->claim_more = 1;
		util_strlcpy(w->claim_after, "0", sizeof(w->claim_after));
	}
	if (w->claim_more) {
		w->claim_params[0] = w->claim_lit;
		w->claim_params[2] = CLAIM_ROWS;
		w->claim_params[3] = w->claim_after;
		w->claim_job = (struct store_job){ .stmt = &stmts_wake_claim_messages, .nparams = 4 };
	} else if (w->numbers_more || w->numbers.n > 0) {
		if (!w->numbers_more) {
			if (!(w->numbers_lit = pgarr_take(&w->numbers)))
				return;
			w->numbers_more = 1;
		}
		w->claim_params[0] = w->numbers_lit;
		w->claim_params[2] = CLAIM_ROWS;
		w->claim_job = (struct store_job){ .stmt = &stmts_wake_claim_numbers, .nparams = 3 };
	} else if (w->scan_again) {
		w->scan_again = 0;
		w->claim_params[0] = CLAIM_ROWS;
		w->claim_job = (struct store_job){ .stmt = &stmts_wake_claim_scan, .nparams = 2 };
	} else {
		return;
	}
	w->claim_params[1] = w->node;
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

static void on_notify(void *arg, const char *channel, const char *payload)
{
	struct wake *w = arg;
	long id;
	if (w->stopping)
		return;
	if (strcmp(channel, "pushgate_push") == 0 && util_parse_long(payload, 1, 0x7fffffffffffffffL, &id) == 0) {
		if (w->n_ids == w->cap_ids) {
			size_t cap = w->cap_ids ? 2 * w->cap_ids : 1024;
			long long *n = realloc(w->ids, cap * sizeof(*n));
			if (!n)
				return;   /* the scan at the next connection, or the SMS at the deadline */
			w->ids = n;
			w->cap_ids = cap;
		}
		w->ids[w->n_ids++] = id;
		if (w->n_ids >= CLAIM_MAX)
			claim_next(w);
	} else if (strcmp(channel, "pushgate_wake") == 0 && payload[0] && strlen(payload) <= 20 &&
		   strspn(payload, "0123456789") == strlen(payload) && w->numbers.n < CLAIM_MAX) {
		pgarr_text(&w->numbers, payload);
	}
}

static void session_done(struct store_job *job, enum store_error e, const char *err)
{
	(void)job;
	if (e == STORE_SQL_ERROR)
		log_error("wake", "ev=session_setup_failed err=\"%s\"", err ? err : "");
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
		w->session_job = (struct store_job){ .stmt = &stmt_session, .done = session_done, .arg = w, .retry = 1 };
		store_submit(w->store, &w->session_job);
		w->listen_job = (struct store_job){ .stmt = &stmt_listen, .done = listen_done, .arg = w, .retry = 1 };
		store_submit(w->store, &w->listen_job);
		w->listen_numbers_job = (struct store_job){ .stmt = &stmt_listen_numbers, .done = session_done, .arg = w,
							    .retry = 1 };
		store_submit(w->store, &w->listen_numbers_job);
	}
	w->scan_again = 1;   /* notifications sent while the link was down are lost */
}

int wake_kind_enabled(const struct wake *w, const char *kind)
{
	if (!w)
		return 0;
	if (strcmp(kind, "webpush") == 0)
		return w->vapid_key != NULL;
	for (size_t i = 0; i < w->n_apps; i++)
		if (strcmp(w->apps[i].cfg->kind, kind) == 0)
			return 1;
	return 0;
}

int wake_app_known(const struct wake *w, const char *kind, const char *name)
{
	return w && app_find((struct wake *)w, kind, name) != NULL;
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

void wake_metrics(const struct wake *w, struct metrics_out *o)
{
	if (!w)
		return;
	metrics_one(o, "pushgate_wake_sent_total", METRICS_COUNTER, "platform pushes (Web Push, FCM, APNs) sent", w->sent);
	metrics_one(o, "pushgate_wake_accepted_total", METRICS_COUNTER, "platform pushes the provider accepted",
		    w->accepted);
	metrics_one(o, "pushgate_wake_failed_total", METRICS_COUNTER, "platform pushes given up", w->failed);
	metrics_one(o, "pushgate_wake_retries_total", METRICS_COUNTER, "platform pushes sent again after a failure",
		    w->retries);
	metrics_one(o, "pushgate_wake_revoked_total", METRICS_COUNTER, "push endpoints the provider said are gone",
		    w->revoked);
	metrics_one(o, "pushgate_wake_in_flight", METRICS_GAUGE, "platform pushes waiting for the provider",
		    w->n_sending);
	metrics_one(o, "pushgate_wake_queued", METRICS_GAUGE, "platform pushes waiting to be sent", w->n_queued);
	metrics_one(o, "pushgate_wake_waiting", METRICS_GAUGE, "platform pushes waiting for a retry", w->n_waiting);
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
	for (size_t i = 0; i < cfg->n_apps; i++) {
		struct wapp *a = &w->apps[w->n_apps];
		const struct app_config *ac = &cfg->apps[i];
		a->w = w;
		a->cfg = ac;
		a->fcm = strcmp(ac->kind, "fcm") == 0;
		ev_timer_init(&a->token_timer, token_timer_cb, 1., 0.);
		a->token_timer.data = a;
		char why2[200];
		if (a->fcm ? fcm_account_load(ac->credentials, &a->acct, why2, sizeof(why2)) < 0
			   : !(a->key = apns_key_load(ac->key_file, why2, sizeof(why2)))) {
			snprintf(err, errlen, "[%s %s] %s: %s", ac->kind, ac->name, a->fcm ? "credentials" : "key_file", why2);
			wake_free(w);
			return NULL;
		}
		util_strlcpy(a->base, ac->endpoint[0] ? ac->endpoint : a->fcm ? FCM_DEFAULT_ENDPOINT
			     : !strcmp(ac->environment, "sandbox") ? APNS_SANDBOX : APNS_PRODUCTION, sizeof(a->base));
		size_t n = strlen(a->base);
		while (n > 0 && a->base[n - 1] == '/')
			a->base[--n] = '\0';
		w->n_apps++;
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
	return w;
}

void wake_free(struct wake *w)
{
	if (!w)
		return;
	w->freeing = w->stopping = 1;
	ev_timer_stop(w->loop, &w->flush);
	/* queued, in flight or waiting: their claims stay in wakes unanswered, the SMS fallback covers them */
	for (size_t i = 0; i < w->n_apps; i++)
		w->apps[i].parked = NULL;   /* freed below with every other request */
	while (w->all) {
		w->all->state = WR_QUEUED;
		wreq_free(w->all);
	}
	for (size_t i = 0; i < w->n_apps; i++) {
		struct wapp *a = &w->apps[i];
		ev_timer_stop(w->loop, &a->token_timer);
		curlev_xfer_clear(&a->tx);
		free(a->tx_body);
		fcm_account_free(&a->acct);
		EVP_PKEY_free(a->key);
	}
	curlev_free(w->curl);
	for (size_t i = 0; i < w->n_vapid; i++)
		free(w->vapid[i].header);
	for (int i = 0; i < 7; i++) {
		pgarr_reset(&w->acc.a[i]);
		free(w->out_lit[i]);
	}
	free(w->ids);
	pgarr_reset(&w->numbers);
	free(w->claim_lit);
	free(w->numbers_lit);
	netpolicy_free(w->policy);
	EVP_PKEY_free(w->vapid_key);
	free(w);
}
