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

struct json_t;
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

/*
 * An account was disabled or enabled (NOTIFY pushgate_accounts, from any
 * node): its cached keys are forgotten, so the next request looks it up.
 */
void api_accounts_changed(struct api *api, long long account_id);
/* The http_wants_stream_fn: every body is streamed, read only once its request may have it. */
int api_wants_stream(const struct http_request *req, void *arg);


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

#endif
