/*
 * webhook.h: recipient state changes POSTed to accounts' webhook URLs (and
 * messages' callback_url) from the durable outbox table webhook_outbox.
 *
 * Contract towards a receiver:
 *   POST <url>, Content-Type: application/json, body {"events":[...]} with
 *   at most [webhook] batch_max payloads in outbox order;
 *   X-Pushgate-Delivery: <first outbox id>-<last outbox id>;
 *   X-Pushgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *   (only when the account has a webhook_secret).
 * Any 2xx delivers the batch; anything else (timeout, refused, 3xx, 4xx, 5xx)
 * is retried with exponential backoff until max_age, then given up.  Events
 * of one recipient (per URL) are delivered in order: a later one never goes
 * out while an earlier one is in flight or waiting for its retry.
 * Delivery is at least once: a batch whose 2xx answer was lost, or whose
 * lease ran out, is sent again.
 */
#ifndef PUSHGATE_WEBHOOK_H
#define PUSHGATE_WEBHOOK_H

#include <stddef.h>
#include <ev.h>

#include "config.h"
#include "store.h"

#define WEBHOOK_SIG_HEX 64   /* hex digits of an HMAC-SHA256 */

struct webhook;

/* Needs cfg and node to outlive it.  NULL when out of memory or libcurl fails. */
struct webhook *webhook_new(struct ev_loop *loop, struct store *store, const struct config *cfg,
			    const char *node);
void webhook_start(struct webhook *w);
/* Looks at the outbox now (e.g. after the store came back). */
void webhook_kick(struct webhook *w);
/* No new leases; queued batches are handed back; requests in flight finish. */
void webhook_stop(struct webhook *w);
/* 1 while requests or their state writes are in flight (drain). */
int webhook_busy(const struct webhook *w);
/* Prometheus text of the counters; returns bytes written (<= cap). */
size_t webhook_metrics(void *arg, char *buf, size_t cap);
/* After store_free: aborts what is left (their leases expire and return). */
void webhook_free(struct webhook *w);

/* --- pure helpers (unit-tested) --------------------------------------------------- */

/*
 * hex HMAC-SHA256(secret, "<t>." + body) into out (WEBHOOK_SIG_HEX + 1 bytes).
 * 0, or -1 when the crypto library fails.
 */
int webhook_sign(const char *secret, size_t secret_len, long long t, const char *body, size_t body_len,
		 char out[WEBHOOK_SIG_HEX + 1]);

/*
 * Seconds to wait after a failed attempt when the batch had already failed
 * `attempts` times: d = min(backoff_min * 2^attempts, backoff_max), then
 * jitter r in [0, 1) takes off up to a quarter: d * (1 - r / 4).
 */
double webhook_backoff(int attempts, double backoff_min, double backoff_max, double r);

/*
 * {"events":[p0,p1,...]} from n JSON texts (trusted: jsonb from PostgreSQL),
 * malloc'd and NUL-terminated; *len gets its length.  NULL when out of memory.
 */
char *webhook_body(const char *const *payloads, size_t n, size_t *len);

#endif
