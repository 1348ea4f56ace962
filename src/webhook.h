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
#define WEBHOOK_HOST_MAX 272 /* a host key: 255 for the name, brackets, ':', port */

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
struct metrics_out;
void webhook_metrics(const struct webhook *w, struct metrics_out *o);
/* After store_free: aborts what is left (their leases expire and return). */
void webhook_free(struct webhook *w);

/* --- the fair start queue (unit-tested) ------------------------------------------- */

/*
 * Leased batches wait here for a slot.  Each account's batches wait in the
 * order they were put; webhook_fair_next takes turns over the accounts that
 * have waiting batches (round-robin: the account after the one served last
 * goes first) and gives out the first batch of that account's queue that may
 * start: an account has at most per_account batches started and not done, a
 * host at most per_host.  A batch that may not start keeps its place; only a
 * batch to another host (so another URL) can pass it.  The caller owns the
 * batches (struct webhook_fair_item is embedded in them); the queue owns its
 * counts.  One event loop, no locking.
 */
struct webhook_fair;
struct wf_account;
struct wf_host;

/* Embedded in the caller's batch; every field is the queue's while the batch is in it. */
struct webhook_fair_item {
	void                     *owner;           /* the caller's batch */
	double                    since;           /* when it was put */
	struct webhook_fair_item *t_next;          /* its account's queue */
	struct webhook_fair_item *o_prev, *o_next; /* every waiting batch, oldest first */
	struct wf_account        *account;
	struct wf_host           *host;
};

struct webhook_fair *webhook_fair_new(size_t per_account, size_t per_host);
/* Frees the counts; batches still waiting or started are the caller's and are not touched. */
void webhook_fair_free(struct webhook_fair *q);
/*
 * Puts `it` (owner: the caller's batch) at the end of its account's queue;
 * host names where it goes (copied).  0, or -1 when out of memory (nothing
 * changed).
 */
int webhook_fair_put(struct webhook_fair *q, struct webhook_fair_item *it, void *owner, long long account,
		     const char *host, double now);
/*
 * The next batch that may start, taken out of the queue and counted as
 * started until webhook_fair_done; NULL when no waiting batch may start.
 */
struct webhook_fair_item *webhook_fair_next(struct webhook_fair *q);
/* A started batch is over: its account's and host's places are free again. */
void webhook_fair_done(struct webhook_fair *q, struct webhook_fair_item *it);
/* The waiting batch put first (it stays in the queue), or NULL. */
struct webhook_fair_item *webhook_fair_oldest(const struct webhook_fair *q);
/* Takes a waiting batch out without starting it. */
void webhook_fair_remove(struct webhook_fair *q, struct webhook_fair_item *it);
/* Batches waiting. */
size_t webhook_fair_waiting(const struct webhook_fair *q);
/* Batches of `account` waiting or started. */
size_t webhook_fair_account_load(const struct webhook_fair *q, long long account);
/* The accounts with at least `load` batches waiting or started, up to cap of them into out; how many. */
size_t webhook_fair_loaded_accounts(const struct webhook_fair *q, size_t load, long long *out, size_t cap);

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

/*
 * What [webhook] per_host counts a URL as: "host:port" as libcurl reads the
 * URL (port filled in from the scheme, no user part, lower case, IPv6 in
 * brackets); "" for a URL libcurl can't read (those share one count).
 */
void webhook_host_key(const char *url, char out[WEBHOOK_HOST_MAX]);

/* A restarted node's own leases returned at once ($1 its name; node.c runs it). */
extern const struct store_stmt webhook_stmt_take_back;

/* The lease, delivered and failed statements (pushgatectl plan shows their plans). */
extern const struct store_stmt webhook_stmt_lease, webhook_stmt_delivered, webhook_stmt_failed;

#endif
