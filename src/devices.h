/*
 * devices.h: app installs (devices), their registration by one-time
 * code over HTTP (docs/device-protocol.md §1), and their own HTTP calls
 * (§4: platform endpoint, acks, pending messages).
 */
#ifndef PUSHGATE_DEVICES_H
#define PUSHGATE_DEVICES_H

#include "config.h"
#include "http.h"
#include "store.h"

struct devices;
struct push;
struct wake;

/* wake: platform push (NULL: none on this node). */
struct devices *devices_new(struct ev_loop *loop, struct store *store, const struct config *cfg, struct push *push,
			    struct wake *wake, void (*on_new_work)(void *arg), void *work_arg);
void devices_free(struct devices *d);

/* POST /v1/devices {"msisdn", "platform"}: a pending device and its code by SMS. */
void devices_register(struct devices *d, struct http_request *req);
/* POST /v1/devices/{id}/verify {"code"}: the device token, once. */
void devices_verify(struct devices *d, struct http_request *req, long long id);
/* DELETE /v1/devices/{id} with the device's own token. */
void devices_revoke(struct devices *d, struct http_request *req, long long id);
/*
 * The device's own calls with its token (docs/device-protocol.md section 4):
 * what = "wakeup" (POST: set its platform endpoint, DELETE: remove it),
 * "acks" (POST {"ids": [...]}: acks over HTTP, e.g. from a service worker),
 * "pending" (GET: the messages waiting for its number).
 */
void devices_own(struct devices *d, struct http_request *req, const char *what);
/* GET /v1/device/webpush-key: the VAPID public key a subscription needs (404 when Web Push is off). */
void devices_webpush_key(struct devices *d, struct http_request *req);
/* GET /v1/devices/{msisdn} (the caller checked the operator role). */
void devices_list(struct devices *d, struct http_request *req, const char *msisdn);

#endif
