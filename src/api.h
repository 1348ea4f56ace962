/*
 * api.h: the enterprise HTTP API (routes under /v1, /healthz).
 */
#ifndef PUSHGATE_API_H
#define PUSHGATE_API_H

#include <stddef.h>
#include <ev.h>

#include "config.h"
#include "door.h"
#include "http.h"
#include "intake.h"
#include "store.h"

struct api;
struct push;
struct devices;
struct metrics_out;

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
	struct door          door;         /* what the doors share (door.h) */
	/* what /healthz and /readyz report (NULL: database of `store` only, SMPP "down") */
	void               (*readiness)(void *arg, struct api_readiness *out);
	/* the rest of the daemon's metrics, after the database's and HTTP's (NULL: none) */
	void               (*metrics)(void *arg, struct metrics_out *o);
	void                *arg;          /* for readiness and metrics */
	/* push channel and device registration (NULL: no push routes) */
	struct push         *push;
	struct devices      *devices;
	/* reports and the console, whose reads may take long (NULL: door.store) */
	struct store        *slow_store;
};

struct api *api_new(const struct api_deps *deps);
void api_free(struct api *api);

/* The http_handler_fn: answers every request (now or after the store). */
void api_handle(struct http_request *req, void *arg);

/* The http_on_response_fn (arg: the api): counts answers and their latency per route for /metrics. */
void api_on_response(const struct http_request *req, int status, double seconds, void *arg);

/* The http_wants_stream_fn: every body is streamed, read only once its request may have it. */
int api_wants_stream(const struct http_request *req, void *arg);

#endif
