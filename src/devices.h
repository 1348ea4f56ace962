/*
 * devices.h: app installs (devices) and their registration by one-time
 * code over HTTP (docs/device-protocol.md §1).
 */
#ifndef PUSHGATE_DEVICES_H
#define PUSHGATE_DEVICES_H

#include "config.h"
#include "http.h"
#include "store.h"

struct devices;
struct push;

struct devices *devices_new(struct ev_loop *loop, struct store *store, const struct config *cfg, struct push *push,
			    void (*on_new_work)(void *arg), void *work_arg);
void devices_free(struct devices *d);

/* POST /v1/devices {"msisdn", "platform"}: a pending device and its code by SMS. */
void devices_register(struct devices *d, struct http_request *req);
/* POST /v1/devices/{id}/verify {"code"}: the device token, once. */
void devices_verify(struct devices *d, struct http_request *req, long long id);
/* DELETE /v1/devices/{id} with the device's own token. */
void devices_revoke(struct devices *d, struct http_request *req, long long id);
/* GET /v1/devices/{msisdn} (the caller checked the operator role). */
void devices_list(struct devices *d, struct http_request *req, const char *msisdn);

#endif
