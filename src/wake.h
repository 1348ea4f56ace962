/*
 * wake.h: platform push, which wakes a device that has no live WebSocket
 * (docs/device-protocol.md section 4).  When a recipient enters PUSH_SENT
 * (NOTIFY pushgate_push, and a periodic scan for what a notification
 * missed), every device of the number with a registered endpoint and no
 * live socket on any node gets one platform push, claimed in `wakes` by
 * exactly one node.  Web Push (RFC 8030) carries the message itself,
 * encrypted for the device (RFC 8291), with a VAPID signature (RFC 8292);
 * a message too long for one record becomes a wake-up that makes the app
 * fetch.  FCM HTTP v1 (an OAuth access token bought with the service
 * account's signed assertion) and APNs (an ES256 provider token, HTTP/2)
 * carry it as data and an alert.  Each attempt and its outcome is an event
 * of kind 'wake'.
 */
#ifndef PUSHGATE_WAKE_H
#define PUSHGATE_WAKE_H

#include <stddef.h>
#include <ev.h>

#include "config.h"
#include "store.h"

struct wake;

/*
 * NULL with a message in err when a configured key can't be used, or out
 * of memory.  The store is the module's own (it LISTENs on it); cfg and
 * node must outlive it.
 */
struct wake *wake_new(struct ev_loop *loop, struct store *store, const struct config *cfg, const char *node,
		      char *err, size_t errlen);
void wake_free(struct wake *w);

/* The store (re)connected: LISTEN again and look for what was missed. */
void wake_on_store_up(struct wake *w);
/* 1 when platform pushes of this kind ("webpush", "fcm", "apns") can be sent. */
int wake_kind_enabled(const struct wake *w, const char *kind);
/* 1 when [fcm NAME] / [apns NAME] names a configured app ("" : the only app of that kind). */
int wake_app_known(const struct wake *w, const char *kind, const char *name);
/* The VAPID public key, base64url (the applicationServerKey of a subscription); "" when Web Push is off. */
const char *wake_vapid_public(const struct wake *w);
/* No new claims; retries waiting are dropped (the SMS fallback covers them). */
void wake_stop(struct wake *w);
/* 1 while pushes or their outcomes are in flight. */
int wake_busy(const struct wake *w);
/* Prometheus text. */
struct metrics_out;
void wake_metrics(const struct wake *w, struct metrics_out *o);

#endif
