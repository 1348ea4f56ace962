/*
 * respond.h: the JSON answers every HTTP door shares (respond.c).
 */
#ifndef PUSHGATE_RESPOND_H
#define PUSHGATE_RESPOND_H

#include <stddef.h>

#include "intake.h"

struct http_request;
struct json_t;

/* How every JSON answer is written: compact, reals to 12 significant digits (0.6667, not 0.66669999999999996). */
#define RESPOND_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

/*
 * Answers with a JSON body (takes ownership of body), or with the error
 * shape every endpoint uses: {"error":{"code":..,"field":..,"message":..}}
 * (field may be NULL).  503 adds Retry-After, 429 and 401 their headers.
 */
void respond_json(struct http_request *req, int status, const char *extra, struct json_t *body);
/* The same for a JSON text (e.g. json_build_object's): parsed and written in the one style. */
void respond_json_text(struct http_request *req, int status, const char *extra, const char *text);
void respond_error(struct http_request *req, int status, const char *code, const char *field,
		   const char *message);

/* 405 method_not_allowed with the route's own Allow ("GET, HEAD"). */
void respond_not_allowed(struct http_request *req, const char *allow);

/* 429 rate_limited with Retry-After for a node's pacing wait (api_admit). */
void respond_rate_limited(struct http_request *req, double wait, size_t recipients, int over_burst);

/*
 * What the intake refused (sql/functions/intake_admit.sql): 403 sender, 429 rate or quota
 * (Retry-After), 402 balance.  more (taken; NULL: none) is the body the
 * "error" object is added to.
 */
void respond_refused(struct http_request *req, enum intake_refusal why, int retry_after, struct json_t *more);

#endif
