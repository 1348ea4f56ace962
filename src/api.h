/*
 * api.h: the enterprise HTTP API (routes under /v1, /healthz).
 */
#ifndef PUSHGATE_API_H
#define PUSHGATE_API_H

#include <stddef.h>
#include <ev.h>

#include "config.h"
#include "http.h"
#include "intake.h"
#include "store.h"

struct api;
struct push;
struct devices;

/*
 * The daemon's readiness, for /healthz (liveness: always 200 while the loop
 * runs) and /readyz (200 only when ready to take traffic, else 503).
 */
struct api_readiness {
	int         db_up;      /* every database connection of the daemon is up */
	int         open;       /* the listeners accept connections */
	int         draining;   /* stopping: no new work */
	const char *smpp;       /* "bound" (every route), "partial", "down" */
};

struct api_deps {
	struct ev_loop      *loop;
	struct store        *store;
	struct store        *bulk_store;   /* campaign loading: its own connection (NULL: store) */
	struct intake_queue *intake;       /* POST /v1/messages and sendsms store their messages here */
	const struct config *cfg;
	/* what /healthz and /readyz report (NULL: database of `store` only, SMPP "down") */
	void               (*readiness)(void *arg, struct api_readiness *out);
	/* Prometheus text of the SMPP counters for /metrics */
	size_t             (*smpp_metrics)(void *arg, char *buf, size_t cap);
	void                *smpp_arg;
	/* called after intake committed new SMS work */
	void               (*on_new_work)(void *arg);
	void                *work_arg;
	/* push channel and device registration (NULL: no push routes) */
	struct push         *push;
	struct devices      *devices;
	/* Prometheus text of the push channel */
	size_t             (*push_metrics)(void *arg, char *buf, size_t cap);
};

struct api *api_new(const struct api_deps *deps);
void api_free(struct api *api);

/* The http_handler_fn: answers every request (now or after the store). */
void api_handle(struct http_request *req, void *arg);
/*
 * The account's rate limit (accounts.rate_limit: recipients per minute on
 * this node, bursts up to a minute's worth) for `recipients` more: 0 when
 * admitted (taken), else seconds to wait (>= 1e9: more than a minute's
 * worth at once).  hash: the key authenticated just before (its cached
 * row has the limit).
 */
double api_admit(struct api *api, const unsigned char *hash, long long account_id, size_t recipients);
/* 429 rate_limited with Retry-After for api_admit's wait. */
void api_respond_rate_limited(struct http_request *req, double wait, size_t recipients, int over_burst);
/*
 * What the intake refused (sql/018): 403 sender, 429 rate or quota
 * (Retry-After), 402 balance.  more (taken; NULL: none) is the body the
 * "error" object is added to.
 */
struct json_t;
void api_respond_refused(struct http_request *req, enum intake_refusal why, int retry_after, struct json_t *more);

/*
 * An account was disabled or enabled (NOTIFY pushgate_accounts, from any
 * node): its cached keys are forgotten, so the next request looks it up.
 */
void api_accounts_changed(struct api *api, long long account_id);
/* The http_wants_stream_fn: every body is streamed, read only once its request may have it. */
int api_wants_stream(const struct http_request *req, void *arg);

/*
 * Answers with a JSON body (takes ownership of body), or with the error
 * shape every endpoint uses: {"error":{"code":..,"field":..,"message":..}}
 * (field may be NULL).  503 adds Retry-After, 401 WWW-Authenticate.
 */
struct json_t;
void api_respond_json(struct http_request *req, int status, const char *extra, struct json_t *body);
void api_respond_error(struct http_request *req, int status, const char *code, const char *field,
		       const char *message);

/*
 * Authentication for other entry points (campaigns, Kannel's sendsms):
 * resolves an API key (key NULL: the request's "Authorization: Bearer"),
 * cached for a minute.  fn gets account_id > 0 and the operator flag; or 0
 * when the request was already answered (401, 503, 500): then only clean up.
 * fn may run before api_auth returns.
 */
typedef void (*api_auth_fn)(void *arg, long long account_id, int operator);
void api_auth(struct api *api, struct http_request *req, const char *key, api_auth_fn fn, void *arg);

/*
 * The key cache that API requests and sendsms share: a key hash (keys.h)
 * looked up within the last minute, with the account's name (NULL: any
 * name); 0 when not cached.  api_key_remember takes a row of
 * router_stmt_auth or router_stmt_kannel_auth (id, role, name).
 */
#define API_NAME_MAX 65
long long api_key_cached(struct api *api, const unsigned char *hash, const char *name);
void api_key_remember(struct api *api, const unsigned char *hash, PGresult *res);

/* What the API was built with (store, config, ...). */
const struct api_deps *api_deps_of(const struct api *api);

/*
 * Validation of POST /v1/messages, separate for unit tests.  Fills the
 * fields and returns 0, or -1 with the offending field name and a message.
 * `to` is deduplicated (first occurrence kept) and '+' stripped.
 */
struct api_message {
	char        from[21];
	const char *text;            /* points into the parsed JSON */
	size_t      n_to;
	char      (*to)[21];         /* n_to MSISDNs, malloc'd */
	struct intake_opts opts;     /* strings point into the parsed JSON */
};
int api_parse_message(const char *body, size_t len, const struct config *cfg,
		      struct api_message *out, void **json_root,
		      const char **err_code, const char **err_field, char *msg, size_t msglen);
void api_message_free(struct api_message *m, void *json_root);

/*
 * The delivery options of POST /v1/messages (channels, push_timeout,
 * sms_text, purpose, send_at, validity, opt_out_policy, callback_url) from
 * a JSON object, for the other entry points: 0, or -1 with the field and a
 * message.  Strings in o point into root.
 */
int api_parse_options(struct json_t *root, const struct config *cfg, struct intake_opts *o,
		      const char **err_field, char *msg, size_t msglen);

#endif
