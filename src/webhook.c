/*
 * webhook.c: delivers the webhook outbox (webhook_outbox, filled by a
 * trigger on events) to receivers over HTTP(S), with libcurl's multi
 * interface on the libev loop (curlev.c).
 *
 * Owns the leased rows from the lease until their outcome is committed,
 * the batches built from them (one POST per (account, url), whole runs of
 * one recipient's events, at most batch_max), the curl handles, and the
 * counters.  Order per recipient and URL comes from the lease statement:
 * it only leases the earliest undelivered event of a recipient together
 * with the events behind it, never one behind an event that is leased, in
 * flight or waiting for its retry; so batches on hand never share a
 * recipient and URL (but a GET run, below, which starts in lease order) and
 * may start in any order.  Fairness: batches wait for a slot in
 * webhook_fair, which takes turns over the accounts and starts a batch only
 * while its account has fewer than [webhook] per_account and its host
 * fewer than per_host in flight (concurrency in all); one that may not
 * start keeps its place.  The lease skips accounts that hold twice
 * per_account batches, and also runs when slots are free that no queued
 * batch may take, so a slow account's backlog neither fills the queue nor
 * hides the others' rows; a batch that waited so long for a slot that its
 * lease could run out is handed back.  Several nodes share the work (FOR
 * UPDATE SKIP LOCKED; the caps are per node); a lease that runs out (dead
 * node) returns the rows.  Outcomes are written with retry=1: the
 * deliveries of a loop turn (and of the time the previous write was in the
 * database) by one statement together, a failure by one statement per
 * group.  Rows with method GET (Kannel dlr-urls, sql/functions/kannel_dlr_fill.sql) are a
 * GET of their already substituted URL instead, one request per event: no
 * body, no signature.
 * Every address connected to passes the outbound policy first
 * (netpolicy.c: no loopback, private, link-local or metadata address unless
 * [webhook] allow_internal says so), checked on the resolved address.
 * Never blocks, never follows redirects, never speaks anything but http(s),
 * uses no proxy from the environment, never logs a URL or a secret.
 */
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "curlev.h"
#include "log.h"
#include "metrics.h"
#include "netpolicy.h"
#include "periodic.h"
#include "pgarr.h"
#include "ranges.h"
#include "util.h"

#define POLL_INTERVAL   0.2       /* seconds between looks at the outbox when idle */
#define STATS_INTERVAL  5.0       /* backlog count */
#define SCAN_MAX        5000      /* rows one lease looks at */
#define ERR_MAX         200       /* last_error kept per row */
#define BUSY_MAX        1024      /* accounts one lease may skip */

enum req_state { REQ_QUEUED, REQ_POSTING, REQ_WRITING };

/* One POST: a batch of leased rows for one (account, url).  Owned by the webhook until freed. */
struct wh_req {
	struct webhook   *w;
	struct wh_req    *next;          /* queue, or the in-flight list */
	enum req_state    state;
	long long         account_id;
	char             *url;
	char              host[WEBHOOK_HOST_MAX];   /* host:port of url: what per_host counts */
	struct webhook_fair_item fq;            /* in the start queue from the lease until its transfer is over */
	int               get;           /* a Kannel dlr-url (sql/007): a GET of url, no body */
	char             *secret;        /* NULL: unsigned */
	char             *body;
	size_t            body_len;
	long long        *ids;           /* outbox ids, increasing */
	long long        *rids;          /* their recipients */
	size_t            n;
	int               attempts;      /* most attempts of any row before this one */
	struct curlev_xfer x;            /* the transfer while posting */
	/* the outcome's write */
	struct store_job  job;
	const char       *params[6];
	char             *p_ids, *p_rids;
	char              p_err[ERR_MAX + 1];
	char              p_delay[32], p_max_age[32];
};

struct counters {
	unsigned long long delivered, delivered_posts, failed, failed_posts, given_up;
};

struct webhook {
	struct ev_loop      *loop;
	struct store        *store;
	const struct config *cfg;
	char                 node[96];
	struct curlev       *curl;
	ev_timer             poll;
	struct webhook_fair *fq;                 /* leased, waiting for a slot; in flight per account and host */
	size_t               q_events;          /* events of the batches waiting */
	struct netpolicy    *policy;            /* addresses a customer's URL may reach */
	struct wh_req       *posting;           /* in flight */
	size_t               n_posting, events_posting;
	size_t               n_writing;         /* outcomes on their way to PostgreSQL */
	int                  stopping, freeing, started;
	/* lease */
	int                  lease_in_flight, lease_again;
	double               lease_sent;
	struct store_job     lease_job;
	const char          *lease_params[5];
	char                 p_scan[16], p_lease[32], p_batch[16];
	char                *p_busy;            /* accounts the lease skips */
	long long            busy[BUSY_MAX];
	size_t               lease_busy;        /* how many the lease in flight skips */
	double               busy_quiet_until;  /* no lease that skips accounts before (ev_now) */
	/* delivered outcomes: everything answered 2xx during a loop turn (and while the previous
	 * write is in the database) is written by one statement */
	struct wh_req       *dl_head;           /* answered, waiting for the next write */
	struct wh_req       *dl_flight;         /* in the write in flight */
	struct store_job     dl_job;
	const char          *dl_params[2];
	char                *dl_ids, *dl_rids;
	ev_prepare           dl_flush;
	/* backlog */
	struct periodic      stats;
	long long            backlog;
	struct counters      c;
};

/* --- statements ------------------------------------------------------------------ */

#define PENDING(t) t ".delivered_at IS NULL AND " t ".given_up_at IS NULL"
#define BLOCKED_BY_LEASE "2 seconds"   /* longest a row waits behind an event in flight before a look */
/* Rows of t the lease's rows k name (by id), pruned to the recipient ids of c (ranges.h). */
#define LEASED(t) RANGES_OUTBOX_KEYED(t, "k", "recipient_id", "c")

/*
 * $1 node, $2 rows to look at, $3 lease seconds, $4 most events of one
 * recipient per batch, $5 accounts to skip (this node holds enough of
 * theirs).  Looks at due rows (oldest first, skipping rows other nodes
 * hold and the skipped accounts' rows, so a slow account's backlog does not
 * hide the others'); per (recipient, url), when the first of them is the
 * recipient's earliest undelivered event, it leases them (up to $4), or
 * only that first one when an undelivered row it did not get lies between
 * them (held elsewhere, or not due).  Rows that wait behind an earlier
 * undelivered event are pushed back to when that one is due, so they stop
 * being looked at; behind one that is leased (its POST in flight), only for
 * BLOCKED_BY_LEASE: its outcome normally comes long before its lease ends,
 * and the statement that records it (another node's, maybe) may have run
 * before this one committed, so nothing else would bring them back sooner
 * (t_faults saw them wait out a whole lease).  Window functions only: no
 * join between the CTEs.
 * A leased row is not due until its lease runs out (next_attempt_at).
 */
const struct store_stmt webhook_stmt_lease = {
	"webhook_lease",
	"WITH c AS ("
	"  SELECT o.id, o.recipient_id, o.url FROM webhook_outbox o"
	"  WHERE " PENDING("o") " AND o.next_attempt_at <= now() AND o.account_id <> ALL($5::bigint[])"
	"  ORDER BY o.next_attempt_at, o.id LIMIT $2 FOR UPDATE SKIP LOCKED),"
	" w AS ("
	"  SELECT c.id, c.recipient_id, c.url,"
	"    row_number() OVER (PARTITION BY c.recipient_id, c.url ORDER BY c.id) AS n,"
	"    count(*) OVER (PARTITION BY c.recipient_id, c.url) AS cnt,"
	"    max(c.id) OVER (PARTITION BY c.recipient_id, c.url) AS last"
	"  FROM c),"
	" h AS ("
	"  SELECT w.*,"
	"   CASE WHEN w.n = 1 THEN (SELECT CASE WHEN b.lease_owner IS NULL THEN b.next_attempt_at"
	"     ELSE least(b.next_attempt_at, now() + interval '" BLOCKED_BY_LEASE "') END FROM webhook_outbox b"
	"     WHERE b.recipient_id = w.recipient_id AND b.url = w.url AND b.id < w.id AND " PENDING("b")
	"     ORDER BY b.id LIMIT 1) END AS blocker,"
	"   CASE WHEN w.n = 1 AND w.cnt > 1 THEN (SELECT count(*) FROM webhook_outbox b"
	"     WHERE b.recipient_id = w.recipient_id AND b.url = w.url AND b.id > w.id AND b.id <= w.last"
	"     AND " PENDING("b") ") <> w.cnt - 1 END AS gap"
	"  FROM w),"
	" k AS ("
	"  SELECT h.id, h.recipient_id, h.n, max(h.blocker) OVER p AS blocked_until,"
	"    coalesce(bool_or(h.gap) OVER p, false) AS gapped"
	"  FROM h WINDOW p AS (PARTITION BY h.recipient_id, h.url)),"
	" d AS ("
	"  UPDATE webhook_outbox o SET next_attempt_at = greatest(k.blocked_until, now() + interval '1 second')"
	"  FROM k WHERE " LEASED("o") " AND k.blocked_until IS NOT NULL RETURNING o.id),"
	" l AS ("
	"  UPDATE webhook_outbox o SET lease_owner = $1,"
	"    lease_until = now() + make_interval(secs => $3::float8),"
	"    next_attempt_at = now() + make_interval(secs => $3::float8)"
	"  FROM k WHERE " LEASED("o") " AND k.blocked_until IS NULL AND k.n <= CASE WHEN k.gapped THEN 1 ELSE $4 END"
	"  RETURNING o.id, o.account_id, o.url, o.recipient_id, o.payload, o.attempts, o.method)"
	" SELECT l.id, l.account_id, l.url, l.recipient_id, l.payload::text, l.attempts, a.webhook_secret,"
	"  (SELECT count(*) FROM d), l.method"
	" FROM l JOIN accounts a ON a.id = l.account_id"
	" ORDER BY l.account_id, l.url, l.recipient_id, l.id",
	5, 0,
};

/*
 * $1 ids: delivered (whoever holds them now: the receiver has them).  The
 * rows that waited behind them ($2: their recipients) become due now.
 */
const struct store_stmt webhook_stmt_delivered = {
	"webhook_delivered",
	"WITH d AS ("
	"  UPDATE webhook_outbox o SET delivered_at = now(), attempts = o.attempts + 1,"
	"    lease_owner = NULL, lease_until = NULL, last_error = NULL"
	"  WHERE o.id = ANY($1::bigint[]) AND " RANGES_OUTBOX_IN("o", "$2::bigint[]") " AND " PENDING("o")
	"  RETURNING o.recipient_id, o.url),"
	" f AS ("
	"  UPDATE webhook_outbox o SET next_attempt_at = now()"
	"  FROM (SELECT DISTINCT recipient_id, url FROM d) g"
	"  WHERE " RANGES_OUTBOX_IN("o", "$2::bigint[]") " AND o.recipient_id = g.recipient_id AND o.url = g.url"
	"    AND " PENDING("o")
	"    AND o.lease_owner IS NULL AND o.next_attempt_at > now() AND o.id <> ALL($1::bigint[])"
	"  RETURNING 1)"
	" SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM f)",
	2, 0,
};

/*
 * $1 ids, $2 node (only rows still ours), $3 error, $4 seconds to the next
 * attempt, $5 max_age, $6 their recipients: the next attempt is never later
 * than max_age after the event; an attempt that fails after that gives the
 * row up.  Rows that the lease pushed back behind these (to their lease's
 * end) are due again with them, or now behind a row given up: a failure
 * must not leave them waiting for a lease that is over.
 */
const struct store_stmt webhook_stmt_failed = {
	"webhook_failed",
	"WITH f AS ("
	"  UPDATE webhook_outbox o SET attempts = o.attempts + 1, last_error = $3,"
	"    lease_owner = NULL, lease_until = NULL,"
	"    next_attempt_at = least(now() + make_interval(secs => $4::float8),"
	"                            o.created_at + make_interval(secs => $5::float8)),"
	"    given_up_at = CASE WHEN o.created_at + make_interval(secs => $5::float8) <= now() THEN now() END"
	"  WHERE o.id = ANY($1::bigint[]) AND " RANGES_OUTBOX_IN("o", "$6::bigint[]") " AND o.lease_owner = $2"
	"    AND " PENDING("o")
	"  RETURNING o.id, o.recipient_id, o.url,"
	"    CASE WHEN o.given_up_at IS NULL THEN o.next_attempt_at ELSE now() END AS due,"
	"    o.given_up_at IS NOT NULL AS gave_up),"
	" g AS (SELECT recipient_id, url, min(due) AS due FROM f GROUP BY recipient_id, url),"
	" w AS ("
	"  UPDATE webhook_outbox o SET next_attempt_at = g.due"
	"  FROM g WHERE " RANGES_OUTBOX_IN("o", "$6::bigint[]") " AND o.recipient_id = g.recipient_id AND o.url = g.url"
	"    AND " PENDING("o") " AND o.lease_owner IS NULL AND o.next_attempt_at > g.due"
	"    AND o.id <> ALL($1::bigint[])"
	"  RETURNING 1)"
	" SELECT count(*) FILTER (WHERE NOT gave_up), count(*) FILTER (WHERE gave_up),"
	"  min(id) FILTER (WHERE gave_up), max(id) FILTER (WHERE gave_up), (SELECT count(*) FROM w) FROM f",
	6, 0,
};

/*
 * A restarted node's own leases ($1 its name, node.c): due now, and so are
 * the rows the lease had pushed back behind them (same recipient and URL).
 * Row: leased rows returned.
 */
const struct store_stmt webhook_stmt_take_back = {
	"webhook_take_back",
	"WITH t AS ("
	"  UPDATE webhook_outbox o SET lease_owner = NULL, lease_until = NULL, next_attempt_at = now()"
	"  WHERE o.lease_owner = $1 AND " PENDING("o")
	"  RETURNING o.recipient_id, o.url),"
	" f AS ("
	"  UPDATE webhook_outbox o SET next_attempt_at = now()"
	"  FROM (SELECT DISTINCT recipient_id, url FROM t) g"
	"  WHERE o.recipient_id = g.recipient_id AND o.url = g.url AND " PENDING("o")
	"    AND o.lease_owner IS NULL AND o.next_attempt_at > now()"
	"  RETURNING 1)"
	" SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM f)",
	1, 0,
};

/* $1 ids, $2 node: leased rows handed back unsent (stopping; once, so it looks in every range). */
static const struct store_stmt stmt_give_back = {
	"webhook_give_back",
	"UPDATE webhook_outbox o SET lease_owner = NULL, lease_until = NULL, next_attempt_at = now()"
	" WHERE o.id = ANY($1::bigint[]) AND o.lease_owner = $2 AND " PENDING("o"),
	2, 0,
};

/* Undelivered rows, counted up to a bound (a gauge, not an audit). */
static const struct store_stmt stmt_backlog = {
	"webhook_backlog",
	"SELECT count(*) FROM (SELECT 1 FROM webhook_outbox o WHERE " PENDING("o") " LIMIT 10000000) s",
	0, 0,
};

/* --- pure helpers ---------------------------------------------------------------- */

int webhook_sign(const char *secret, size_t secret_len, long long t, const char *body, size_t body_len,
		 char out[WEBHOOK_SIG_HEX + 1])
{
	char prefix[32];
	int plen = snprintf(prefix, sizeof(prefix), "%lld.", t);
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	int rc = -1;
	char digest[] = "SHA256";
	OSSL_PARAM params[2] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
				 OSSL_PARAM_construct_end() };
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	if (!ctx || plen <= 0)
		goto out;
	if (EVP_MAC_init(ctx, (const unsigned char *)secret, secret_len, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)plen) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)body, body_len) != 1 ||
	    EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) != 1 || mac_len != WEBHOOK_SIG_HEX / 2)
		goto out;
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < mac_len; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[WEBHOOK_SIG_HEX] = '\0';
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return rc;
}

double webhook_backoff(int attempts, double backoff_min, double backoff_max, double r)
{
	if (attempts < 0)
		attempts = 0;
	double d = backoff_min;
	for (int i = 0; i < attempts && d < backoff_max; i++)
		d *= 2;
	if (d > backoff_max)
		d = backoff_max;
	if (r < 0)
		r = 0;
	if (r >= 1)
		r = 0.999999;
	return d * (1.0 - r / 4.0);
}

char *webhook_body(const char *const *payloads, size_t n, size_t *len)
{
	static const char head[] = "{\"events\":[", tail[] = "]}";
	size_t total = sizeof(head) - 1 + sizeof(tail) - 1 + 1;
	for (size_t i = 0; i < n; i++)
		total += strlen(payloads[i]) + 1;
	char *b = malloc(total);
	if (!b)
		return NULL;
	size_t o = 0;
	memcpy(b, head, sizeof(head) - 1);
	o += sizeof(head) - 1;
	for (size_t i = 0; i < n; i++) {
		if (i)
			b[o++] = ',';
		size_t l = strlen(payloads[i]);
		memcpy(b + o, payloads[i], l);
		o += l;
	}
	memcpy(b + o, tail, sizeof(tail));   /* with its NUL */
	o += sizeof(tail) - 1;
	*len = o;
	return b;
}

void webhook_host_key(const char *url, char out[WEBHOOK_HOST_MAX])
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	out[0] = '\0';
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
		snprintf(out, WEBHOOK_HOST_MAX, "%s:%s", host, port);
	for (char *c = out; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

/* --- the fair start queue ------------------------------------------------------------ */

/*
 * Two chained hash tables of counts, accounts by id and hosts by name, each
 * entry freed when nothing of it waits or is started; a ring of the
 * accounts that have waiting batches, with the turn on one of them; every
 * waiting batch also on one list, oldest first.  webhook_fair_next looks at
 * each waiting batch at most once.
 */
#define FAIR_BUCKETS 256

struct wf_account {
	struct wf_account        *next;            /* bucket chain */
	struct wf_account        *r_prev, *r_next; /* the ring, while items wait */
	long long                 id;
	size_t                    waiting, started;
	struct webhook_fair_item *head, *tail;     /* its queue */
};

struct wf_host {
	struct wf_host *next;                      /* bucket chain */
	size_t          waiting, started;
	unsigned        bucket;
	char            name[];
};

struct webhook_fair {
	size_t                    per_account, per_host;
	struct wf_account        *accounts[FAIR_BUCKETS];
	struct wf_host           *hosts[FAIR_BUCKETS];
	struct wf_account        *turn;            /* on the ring: whose turn it is; NULL when nothing waits */
	size_t                    n_ring;
	struct webhook_fair_item *o_head, *o_tail; /* every waiting item, oldest first */
	size_t                    waiting;
};

static unsigned wf_account_bucket(long long id)
{
	unsigned long long h = (unsigned long long)id * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 56) % FAIR_BUCKETS;
}

static unsigned wf_host_bucket(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % FAIR_BUCKETS;
}

struct webhook_fair *webhook_fair_new(size_t per_account, size_t per_host)
{
	struct webhook_fair *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->per_account = per_account;
	q->per_host = per_host;
	return q;
}

void webhook_fair_free(struct webhook_fair *q)
{
	if (!q)
		return;
	for (unsigned b = 0; b < FAIR_BUCKETS; b++) {
		while (q->accounts[b]) {
			struct wf_account *t = q->accounts[b];
			q->accounts[b] = t->next;
			free(t);
		}
		while (q->hosts[b]) {
			struct wf_host *h = q->hosts[b];
			q->hosts[b] = h->next;
			free(h);
		}
	}
	free(q);
}

static struct wf_account *wf_account_find(const struct webhook_fair *q, long long id)
{
	struct wf_account *t = q->accounts[wf_account_bucket(id)];
	while (t && t->id != id)
		t = t->next;
	return t;
}

/* Frees an account's entry once nothing of it waits or is started. */
static void wf_account_maybe_free(struct webhook_fair *q, struct wf_account *t)
{
	if (t->waiting || t->started)
		return;
	for (struct wf_account **pp = &q->accounts[wf_account_bucket(t->id)]; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			free(t);
			return;
		}
}

static void wf_host_maybe_free(struct webhook_fair *q, struct wf_host *h)
{
	if (h->waiting || h->started)
		return;
	for (struct wf_host **pp = &q->hosts[h->bucket]; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			free(h);
			return;
		}
}

static void wf_ring_add(struct webhook_fair *q, struct wf_account *t)
{
	if (!q->turn) {
		t->r_prev = t->r_next = t;
		q->turn = t;
	} else {   /* last in the round: just before the account whose turn it is */
		t->r_next = q->turn;
		t->r_prev = q->turn->r_prev;
		t->r_prev->r_next = t;
		q->turn->r_prev = t;
	}
	q->n_ring++;
}

static void wf_ring_remove(struct webhook_fair *q, struct wf_account *t)
{
	if (q->turn == t)
		q->turn = t->r_next == t ? NULL : t->r_next;
	t->r_prev->r_next = t->r_next;
	t->r_next->r_prev = t->r_prev;
	t->r_prev = t->r_next = NULL;
	q->n_ring--;
}

int webhook_fair_put(struct webhook_fair *q, struct webhook_fair_item *it, void *owner, long long account,
		     const char *host, double now)
{
	struct wf_account *t = wf_account_find(q, account);
	int new_account = 0;
	if (!t) {
		if (!(t = calloc(1, sizeof(*t))))
			return -1;
		t->id = account;
		new_account = 1;
	}
	unsigned hb = wf_host_bucket(host);
	struct wf_host *h = q->hosts[hb];
	while (h && strcmp(h->name, host) != 0)
		h = h->next;
	if (!h) {
		size_t len = strlen(host);
		if (!(h = calloc(1, sizeof(*h) + len + 1))) {
			if (new_account)
				free(t);
			return -1;
		}
		memcpy(h->name, host, len + 1);
		h->bucket = hb;
		h->next = q->hosts[hb];
		q->hosts[hb] = h;
	}
	if (new_account) {
		unsigned tb = wf_account_bucket(account);
		t->next = q->accounts[tb];
		q->accounts[tb] = t;
	}
	*it = (struct webhook_fair_item){ .owner = owner, .since = now, .account = t, .host = h, .o_prev = q->o_tail };
	if (t->tail)
		t->tail->t_next = it;
	else
		t->head = it;
	t->tail = it;
	if (t->waiting++ == 0)
		wf_ring_add(q, t);
	h->waiting++;
	if (q->o_tail)
		q->o_tail->o_next = it;
	else
		q->o_head = it;
	q->o_tail = it;
	q->waiting++;
	return 0;
}

/* Takes a waiting item off its account's queue (prev: the one before it there, or NULL) and the oldest list. */
static void wf_unlink_waiting(struct webhook_fair *q, struct webhook_fair_item *it,
			      struct webhook_fair_item *prev)
{
	struct wf_account *t = it->account;
	if (prev)
		prev->t_next = it->t_next;
	else
		t->head = it->t_next;
	if (t->tail == it)
		t->tail = prev;
	it->t_next = NULL;
	if (it->o_prev)
		it->o_prev->o_next = it->o_next;
	else
		q->o_head = it->o_next;
	if (it->o_next)
		it->o_next->o_prev = it->o_prev;
	else
		q->o_tail = it->o_prev;
	it->o_prev = it->o_next = NULL;
	it->host->waiting--;
	q->waiting--;
	if (--t->waiting == 0)
		wf_ring_remove(q, t);
}

struct webhook_fair_item *webhook_fair_next(struct webhook_fair *q)
{
	struct wf_account *t = q->turn;
	for (size_t k = 0; t && k < q->n_ring; k++, t = t->r_next) {
		if (t->started >= q->per_account)
			continue;
		struct webhook_fair_item *prev = NULL, *it = t->head;
		while (it && it->host->started >= q->per_host) {
			prev = it;
			it = it->t_next;
		}
		if (!it)
			continue;
		q->turn = t->r_next;   /* the next account goes first next time */
		wf_unlink_waiting(q, it, prev);
		t->started++;
		it->host->started++;
		return it;
	}
	return NULL;
}

void webhook_fair_done(struct webhook_fair *q, struct webhook_fair_item *it)
{
	struct wf_account *t = it->account;
	struct wf_host *h = it->host;
	t->started--;
	h->started--;
	it->account = NULL;
	it->host = NULL;
	wf_account_maybe_free(q, t);
	wf_host_maybe_free(q, h);
}

struct webhook_fair_item *webhook_fair_oldest(const struct webhook_fair *q)
{
	return q->o_head;
}

void webhook_fair_remove(struct webhook_fair *q, struct webhook_fair_item *it)
{
	struct wf_account *t = it->account;
	struct wf_host *h = it->host;
	struct webhook_fair_item *prev = NULL;
	for (struct webhook_fair_item *x = t->head; x && x != it; x = x->t_next)
		prev = x;
	wf_unlink_waiting(q, it, prev);
	it->account = NULL;
	it->host = NULL;
	wf_account_maybe_free(q, t);
	wf_host_maybe_free(q, h);
}

size_t webhook_fair_waiting(const struct webhook_fair *q)
{
	return q->waiting;
}

size_t webhook_fair_account_load(const struct webhook_fair *q, long long account)
{
	const struct wf_account *t = wf_account_find(q, account);
	return t ? t->waiting + t->started : 0;
}

size_t webhook_fair_loaded_accounts(const struct webhook_fair *q, size_t load, long long *out, size_t cap)
{
	size_t n = 0;
	for (unsigned b = 0; b < FAIR_BUCKETS && n < cap; b++)
		for (const struct wf_account *t = q->accounts[b]; t && n < cap; t = t->next)
			if (t->waiting + t->started >= load)
				out[n++] = t->id;
	return n;
}

/* --- requests ---------------------------------------------------------------------- */

static void pump(struct webhook *w);

static void req_free(struct wh_req *r)
{
	if (!r)
		return;
	curlev_xfer_clear(&r->x);
	free(r->url);
	free(r->secret);
	free(r->body);
	free(r->ids);
	free(r->rids);
	free(r->p_ids);
	free(r->p_rids);
	free(r);
}

static char *ids_literal(const long long *ids, size_t n)
{
	struct pgarr a = {0};
	for (size_t i = 0; i < n; i++)
		pgarr_num(&a, ids[i], 0);
	return pgarr_take(&a);
}

static void write_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct wh_req *r = job->arg;
	struct webhook *w = r->w;
	w->n_writing--;
	if (err != STORE_OK) {
		log_error("webhook", "ev=outcome_write_failed account=%lld delivery=%lld-%lld err=\"%s\"",
			  r->account_id, r->ids[0], r->ids[r->n - 1], msg);
	} else if (job->stmt == &webhook_stmt_failed && PQntuples(job->res) == 1) {
		long long gave_up = strtoll(PQgetvalue(job->res, 0, 1), NULL, 10);
		if (gave_up > 0) {
			w->c.given_up += (unsigned long long)gave_up;
			log_warn("webhook", "ev=given_up account=%lld events=%lld first=%s last=%s max_age=%g",
				 r->account_id, gave_up, PQgetvalue(job->res, 0, 2), PQgetvalue(job->res, 0, 3),
				 w->cfg->webhook_max_age);
		}
	}
	req_free(r);
	if (!w->freeing)
		pump(w);
}

/* The outcome of a failed POST (or a hand-back) to PostgreSQL: one statement (deliveries go together: delivered_add). */
static void req_write(struct wh_req *r, const struct store_stmt *stmt)
{
	struct webhook *w = r->w;
	r->state = REQ_WRITING;
	r->p_ids = ids_literal(r->ids, r->n);
	int with_rids = stmt == &webhook_stmt_failed;
	r->p_rids = with_rids ? ids_literal(r->rids, r->n) : NULL;
	if (!r->p_ids || (with_rids && !r->p_rids)) {
		log_error("webhook", "ev=outcome_dropped why=\"out of memory\" delivery=%lld-%lld",
			  r->ids[0], r->ids[r->n - 1]);
		req_free(r);   /* the lease runs out and the rows return */
		return;
	}
	r->params[0] = r->p_ids;
	r->params[1] = w->node;
	r->params[2] = r->p_err;
	r->params[3] = r->p_delay;
	r->params[4] = r->p_max_age;
	r->params[5] = r->p_rids;
	w->n_writing++;
	r->job = (struct store_job){ .stmt = stmt, .nparams = stmt->nparams, .params = r->params,
				     .done = write_done, .arg = r, .retry = 1 };
	store_submit(w->store, &r->job);
}

static void delivered_flush(struct webhook *w);

static void delivered_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct webhook *w = job->arg;
	struct wh_req *r = w->dl_flight;
	if (err != STORE_OK && r)
		log_error("webhook", "ev=outcome_write_failed delivery=%lld-%lld err=\"%s\"", r->ids[0],
			  r->ids[r->n - 1], msg);   /* their leases run out; the receiver may get them again */
	w->dl_flight = NULL;
	while (r) {
		struct wh_req *next = r->next;
		w->n_writing--;
		req_free(r);
		r = next;
	}
	free(w->dl_ids);
	free(w->dl_rids);
	w->dl_ids = w->dl_rids = NULL;
	if (w->freeing)
		return;
	if (w->dl_head)
		delivered_flush(w);
	pump(w);
}

/* One webhook_stmt_delivered for every request answered 2xx that waits (one write in flight at a time). */
static void delivered_flush(struct webhook *w)
{
	if (w->dl_flight || !w->dl_head || w->freeing)
		return;
	struct pgarr ids = {0}, rids = {0};
	for (struct wh_req *r = w->dl_head; r; r = r->next)
		for (size_t i = 0; i < r->n; i++) {
			pgarr_num(&ids, r->ids[i], 0);
			pgarr_num(&rids, r->rids[i], 0);
		}
	w->dl_ids = pgarr_take(&ids);
	w->dl_rids = pgarr_take(&rids);
	if (!w->dl_ids || !w->dl_rids) {
		free(w->dl_ids);
		free(w->dl_rids);
		w->dl_ids = w->dl_rids = NULL;
		log_error("webhook", "ev=outcome_write_delayed why=\"out of memory\"");
		return;   /* the next answer or poll tries again */
	}
	w->dl_flight = w->dl_head;
	w->dl_head = NULL;
	w->dl_params[0] = w->dl_ids;
	w->dl_params[1] = w->dl_rids;
	w->dl_job = (struct store_job){ .stmt = &webhook_stmt_delivered, .nparams = 2, .params = w->dl_params,
					.done = delivered_done, .arg = w, .retry = 1 };
	store_submit(w->store, &w->dl_job);
}

static void dl_flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)revents;
	ev_prepare_stop(loop, p);
	delivered_flush(p->data);
}

/* A request the receiver answered 2xx: its rows are marked delivered with the others of this turn. */
static void delivered_add(struct webhook *w, struct wh_req *r)
{
	r->state = REQ_WRITING;
	r->next = w->dl_head;
	w->dl_head = r;
	w->n_writing++;
	ev_prepare_start(w->loop, &w->dl_flush);
}

static void posting_unlink(struct webhook *w, struct wh_req *r);

/* A transfer is over (curlev took its handle off): the outcome goes to PostgreSQL. */
static void req_finished(struct curlev_xfer *x, CURLcode cc, long status)
{
	struct wh_req *r = x->arg;
	struct webhook *w = r->w;
	posting_unlink(w, r);
	curlev_xfer_clear(&r->x);
	if (cc == CURLE_OK && status >= 200 && status < 300) {
		w->c.delivered += r->n;
		w->c.delivered_posts++;
		log_debug("webhook", "ev=delivered account=%lld delivery=%lld-%lld events=%zu status=%ld",
			  r->account_id, r->ids[0], r->ids[r->n - 1], r->n, status);
		delivered_add(w, r);
		return;
	}
	char http[32];
	snprintf(http, sizeof(http), "http %ld", status);
	curlev_clean_text(r->p_err, sizeof(r->p_err),
			  r->x.refused[0] ? r->x.refused : cc == CURLE_OK ? http
			  : r->x.errbuf[0] ? r->x.errbuf : curl_easy_strerror(cc));
	double delay = webhook_backoff(r->attempts, w->cfg->webhook_backoff_min, w->cfg->webhook_backoff_max,
				       util_random_unit());
	snprintf(r->p_delay, sizeof(r->p_delay), "%.3f", delay);
	snprintf(r->p_max_age, sizeof(r->p_max_age), "%.3f", w->cfg->webhook_max_age);
	w->c.failed += r->n;
	w->c.failed_posts++;
	log_warn("webhook", "ev=post_failed account=%lld delivery=%lld-%lld events=%zu attempt=%d err=\"%s\" retry_in=%.3f",
		 r->account_id, r->ids[0], r->ids[r->n - 1], r->n, r->attempts + 1, r->p_err, delay);
	req_write(r, &webhook_stmt_failed);
}

static int req_post(struct webhook *w, struct wh_req *r)
{
	char line[160];
	r->x = (struct curlev_xfer){ .done = req_finished, .arg = r, .who = "webhook", .tag = r->account_id };
	if (curlev_easy(w->curl, &r->x, r->url, w->cfg->webhook_timeout, w->cfg->webhook_connect_timeout) < 0)
		return -1;
	struct curl_slist *t;
#define ADD_HEADER(s) do { t = curl_slist_append(r->x.headers, (s)); if (!t) goto fail; r->x.headers = t; } while (0)
	if (!r->get) {
		ADD_HEADER("Content-Type: application/json");
		ADD_HEADER("Expect:");
	}
	snprintf(line, sizeof(line), "X-Pushgate-Delivery: %lld-%lld", r->ids[0], r->ids[r->n - 1]);
	ADD_HEADER(line);
	if (!r->get && r->secret && r->secret[0]) {
		long long now = (long long)time(NULL);
		char sig[WEBHOOK_SIG_HEX + 1];
		if (webhook_sign(r->secret, strlen(r->secret), now, r->body, r->body_len, sig) < 0)
			goto fail;
		snprintf(line, sizeof(line), "X-Pushgate-Signature: t=%lld,v1=%s", now, sig);
		ADD_HEADER(line);
	}
#undef ADD_HEADER
	CURL *e = r->x.easy;
	if (r->get) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	}
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pushgate-webhook/1");
	if (curlev_start(w->curl, &r->x) < 0)
		goto fail;
	r->state = REQ_POSTING;
	r->next = w->posting;
	w->posting = r;
	w->n_posting++;
	w->events_posting += r->n;
	return 0;
fail:
	curlev_xfer_clear(&r->x);
	return -1;
}

static void posting_unlink(struct webhook *w, struct wh_req *r)
{
	for (struct wh_req **p = &w->posting; *p; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			r->next = NULL;
			w->n_posting--;
			w->events_posting -= r->n;
			webhook_fair_done(w->fq, &r->fq);   /* its account's and host's places are free */
			if (webhook_fair_account_load(w->fq, r->account_id) + 1 == 2 * w->cfg->webhook_per_account)
				w->lease_again = 1;   /* the lease skipped this account: now it may take rows again */
			return;
		}
	}
}

/* The finished transfers of a loop wake-up were handed over: room for more. */
static void collected(void *arg)
{
	struct webhook *w = arg;
	if (!w->freeing)
		pump(w);
}

/* --- leasing ------------------------------------------------------------------------- */

/* A leased batch waits for its turn (webhook_fair: in turns over the accounts, within the caps). */
static int queue_push(struct webhook *w, struct wh_req *r)
{
	r->state = REQ_QUEUED;
	r->next = NULL;
	if (webhook_fair_put(w->fq, &r->fq, r, r->account_id, r->host, ev_now(w->loop)) < 0)
		return -1;
	w->q_events += r->n;
	return 0;
}

/* Takes a batch out of the queue unstarted: the one that waited longest, or r. */
static struct wh_req *queue_take(struct webhook *w, struct wh_req *r)
{
	if (!r) {
		struct webhook_fair_item *it = webhook_fair_oldest(w->fq);
		if (!it)
			return NULL;
		r = it->owner;
	}
	webhook_fair_remove(w->fq, &r->fq);
	w->q_events -= r->n;
	return r;
}

/* The next batch that may start (counted in flight for its account and host until posting_unlink). */
static struct wh_req *queue_next(struct webhook *w)
{
	struct webhook_fair_item *it = webhook_fair_next(w->fq);
	if (!it)
		return NULL;
	struct wh_req *r = it->owner;
	w->q_events -= r->n;
	return r;
}

struct row_ref { long long id; int row; };

static int by_id(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

/* Rows [from, to) of the lease result (one account + url) become one batch. */
static struct wh_req *batch_from_rows(struct webhook *w, PGresult *res, int from, int to)
{
	size_t n = (size_t)(to - from);
	struct wh_req *r = calloc(1, sizeof(*r));
	struct row_ref *refs = calloc(n, sizeof(*refs));
	const char **payloads = calloc(n, sizeof(*payloads));
	if (!r || !refs || !payloads)
		goto fail;
	r->w = w;
	r->n = n;
	r->account_id = strtoll(PQgetvalue(res, from, 1), NULL, 10);
	r->url = strdup(PQgetvalue(res, from, 2));
	r->get = strcmp(PQgetvalue(res, from, 8), "GET") == 0;
	webhook_host_key(PQgetvalue(res, from, 2), r->host);
	if (!PQgetisnull(res, from, 6))
		r->secret = strdup(PQgetvalue(res, from, 6));
	r->ids = calloc(n, sizeof(*r->ids));
	r->rids = calloc(n, sizeof(*r->rids));
	if (!r->url || !r->ids || !r->rids || (!PQgetisnull(res, from, 6) && !r->secret))
		goto fail;
	for (int i = from; i < to; i++) {
		refs[i - from] = (struct row_ref){ strtoll(PQgetvalue(res, i, 0), NULL, 10), i };
		int a = (int)strtol(PQgetvalue(res, i, 5), NULL, 10);
		if (a > r->attempts)
			r->attempts = a;
	}
	qsort(refs, n, sizeof(*refs), by_id);
	for (size_t i = 0; i < n; i++) {
		r->ids[i] = refs[i].id;
		r->rids[i] = strtoll(PQgetvalue(res, refs[i].row, 3), NULL, 10);
		payloads[i] = PQgetvalue(res, refs[i].row, 4);
	}
	r->body = webhook_body(payloads, n, &r->body_len);
	if (!r->body)
		goto fail;
	free(refs);
	free(payloads);
	return r;
fail:
	free(refs);
	free(payloads);
	req_free(r);
	return NULL;
}

static int same_target(PGresult *res, int a, int b)
{
	return strcmp(PQgetvalue(res, a, 1), PQgetvalue(res, b, 1)) == 0 &&
	       strcmp(PQgetvalue(res, a, 2), PQgetvalue(res, b, 2)) == 0 &&
	       strcmp(PQgetvalue(res, a, 8), PQgetvalue(res, b, 8)) == 0;
}

static int same_recipient(PGresult *res, int a, int b)
{
	return same_target(res, a, b) && strcmp(PQgetvalue(res, a, 3), PQgetvalue(res, b, 3)) == 0;
}

static void hand_back(struct webhook *w, struct wh_req *r)
{
	r->p_err[0] = '\0';
	req_write(r, &stmt_give_back);
}

static void lease_done(struct store_job *job, enum store_error err, const char *msg)
{
	struct webhook *w = job->arg;
	w->lease_in_flight = 0;
	if (err != STORE_OK) {
		if (err == STORE_SQL_ERROR)
			log_error("webhook", "ev=lease_failed err=\"%s\"", msg);
		return;
	}
	PGresult *res = job->res;
	int rows = PQntuples(res);
	size_t max = w->cfg->webhook_batch_max;
	/*
	 * rows come by account, url, recipient, id: whole recipient runs, at most batch_max per POST.
	 * A GET (a Kannel dlr-url) carries one event and no body: each row is a request of its own,
	 * even when several events substitute to the same URL.
	 */
	int i = 0;
	while (i < rows) {
		int get = strcmp(PQgetvalue(res, i, 8), "GET") == 0;
		int j = get ? i + 1 : i;
		while (!get && j < rows && same_target(res, i, j)) {
			int k = j;
			while (k < rows && same_recipient(res, j, k))
				k++;
			if (j > i && (size_t)(k - i) > max)
				break;
			j = k;
		}
		struct wh_req *r = batch_from_rows(w, res, i, j);
		if (!r) {
			log_error("webhook", "ev=batch_dropped why=\"out of memory\" events=%d", j - i);
		} else if (queue_push(w, r) < 0) {
			log_error("webhook", "ev=batch_handed_back why=\"out of memory\" events=%d", j - i);
			hand_back(w, r);
		}
		i = j;
	}
	if (rows > 0)
		log_debug("webhook", "ev=leased events=%d batches=%zu deferred=%s ms=%.1f", rows,
			  webhook_fair_waiting(w->fq), PQgetvalue(res, 0, 7), (ev_time() - w->lease_sent) * 1000);
	w->lease_again = rows > 0;   /* maybe more is due; else wait for the poll */
	if (rows == 0 && w->lease_busy > 0) {
		/*
		 * It skipped accounts and found nothing: the scan walked past every due
		 * row of theirs.  With a backlog of hundreds of thousands that takes a
		 * while; the next such scan waits nine times as long (at most a tenth
		 * of the store's time goes to scans that find nothing).
		 */
		w->busy_quiet_until = ev_now(w->loop) + 9 * (ev_time() - w->lease_sent);
	}
	if (w->stopping || w->freeing) {
		struct wh_req *r;
		while ((r = queue_take(w, NULL)))
			hand_back(w, r);
		return;
	}
	pump(w);
}

/* Seconds a leased row is ours: long enough for a queued batch to wait for its slot and then time out. */
static double lease_seconds(const struct config *cfg)
{
	return cfg->webhook_timeout * 3 + 30;
}

/*
 * Leases up to `slots` batches' worth of rows (slots x batch_max), skipping
 * the accounts that have twice their per_account on hand (in flight and
 * queued) already: they have enough to fill their places, and their older
 * rows must not hide other accounts' rows from the scan.  Such a scan walks
 * past every due row of the skipped accounts: after one that found nothing
 * the next waits (busy_quiet_until, lease_done).
 */
static void lease(struct webhook *w, size_t slots)
{
	size_t scan = slots * w->cfg->webhook_batch_max;
	if (scan > SCAN_MAX)
		scan = SCAN_MAX;
	size_t n_busy = webhook_fair_loaded_accounts(w->fq, 2 * w->cfg->webhook_per_account, w->busy, BUSY_MAX);
	if (n_busy > 0 && ev_now(w->loop) < w->busy_quiet_until)
		return;   /* lease_again stays: the next pump or poll asks again */
	struct pgarr busy = {0};
	for (size_t i = 0; i < n_busy; i++)
		pgarr_num(&busy, w->busy[i], 0);
	free(w->p_busy);
	w->p_busy = pgarr_take(&busy);
	if (!w->p_busy && !(w->p_busy = strdup("{}"))) {
		log_error("webhook", "ev=lease_delayed why=\"out of memory\"");
		return;   /* the next poll tries again */
	}
	snprintf(w->p_scan, sizeof(w->p_scan), "%zu", scan);
	snprintf(w->p_batch, sizeof(w->p_batch), "%zu", w->cfg->webhook_batch_max);
	snprintf(w->p_lease, sizeof(w->p_lease), "%.3f", lease_seconds(w->cfg));
	w->lease_params[0] = w->node;
	w->lease_params[1] = w->p_scan;
	w->lease_params[2] = w->p_lease;
	w->lease_params[3] = w->p_batch;
	w->lease_params[4] = w->p_busy;
	w->lease_busy = n_busy;
	w->lease_in_flight = 1;
	w->lease_again = 0;
	w->lease_sent = ev_time();
	w->lease_job = (struct store_job){ .stmt = &webhook_stmt_lease, .nparams = 5, .params = w->lease_params,
					   .done = lease_done, .arg = w };
	store_submit(w->store, &w->lease_job);
}

/*
 * Starts queued batches while there are slots, in turns over the accounts
 * and within per_account / per_host (webhook_fair); a batch that may not start yet
 * keeps its place.  Leases more while fewer than 2 x concurrency batches are
 * on hand, and also whenever slots are free but no queued batch may start
 * (all wait on their account's or host's cap): then the lease brings other
 * accounts' rows, up to twice as many events as the first rule ever holds.
 */
static void pump(struct webhook *w)
{
	size_t max = w->cfg->webhook_concurrency;
	struct wh_req *r;
	while (!w->stopping && w->n_posting < max && (r = queue_next(w))) {
		if (req_post(w, r) < 0) {
			log_error("webhook", "ev=post_not_started account=%lld delivery=%lld-%lld",
				  r->account_id, r->ids[0], r->ids[r->n - 1]);
			webhook_fair_done(w->fq, &r->fq);
			hand_back(w, r);
		}
	}
	size_t queued = webhook_fair_waiting(w->fq), have = w->n_posting + queued;
	if (w->stopping || !w->started || w->lease_in_flight || !w->lease_again || !store_is_up(w->store))
		return;
	size_t slots = have < 2 * max ? 2 * max - have : 0;
	int stuck = w->n_posting < max && queued > 0;   /* free slots, and nothing queued may take them */
	if (stuck && w->q_events < 4 * max * w->cfg->webhook_batch_max && slots < max - w->n_posting)
		slots = max - w->n_posting;
	if (slots > 0)
		lease(w, slots);
}

/*
 * Hands back the batches that waited for their turn so long that their
 * lease could run out before their request does (a slow account's or host's
 * queue): their rows are due again at once, for the next lease of any node.
 */
static void queue_expire(struct webhook *w)
{
	double cutoff = ev_now(w->loop) - (lease_seconds(w->cfg) - w->cfg->webhook_timeout - 10);
	struct webhook_fair_item *it;
	size_t n = 0;
	while ((it = webhook_fair_oldest(w->fq)) && it->since < cutoff) {
		hand_back(w, queue_take(w, it->owner));
		n++;
	}
	if (n)
		log_info("webhook", "ev=handed_back why=\"waited too long for a slot\" batches=%zu", n);
}

static void poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop; (void)revents;
	struct webhook *w = t->data;
	queue_expire(w);
	w->lease_again = 1;
	pump(w);
}

static void stats_done(void *arg, const PGresult *res, enum store_error err, const char *msg)
{
	struct webhook *w = arg;
	if (err == STORE_SQL_ERROR)
		log_error("webhook", "ev=backlog_failed err=\"%s\"", msg);
	else if (err == STORE_OK && PQntuples(res) == 1)
		w->backlog = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
}

/* --- public ---------------------------------------------------------------------------- */

struct webhook *webhook_new(struct ev_loop *loop, struct store *store, const struct config *cfg,
			    const char *node)
{
	struct webhook *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->loop = loop;
	w->store = store;
	w->cfg = cfg;
	snprintf(w->node, sizeof(w->node), "%s", node);
	w->lease_again = 1;
	char why[160];
	if (!(w->policy = netpolicy_new(cfg->webhook_allow_internal, why, sizeof(why))) ||
	    !(w->curl = curlev_new(loop, w->policy, (long)cfg->webhook_concurrency, collected, w)) ||
	    !(w->fq = webhook_fair_new(cfg->webhook_per_account, cfg->webhook_per_host))) {
		webhook_free(w);
		return NULL;
	}
	ev_prepare_init(&w->dl_flush, dl_flush_cb);
	w->dl_flush.data = w;
	ev_timer_init(&w->poll, poll_cb, POLL_INTERVAL, POLL_INTERVAL);
	w->poll.data = w;
	periodic_init(&w->stats, loop, store, &stmt_backlog, NULL, stats_done, w);
	return w;
}

void webhook_start(struct webhook *w)
{
	w->started = 1;
	ev_timer_start(w->loop, &w->poll);
	periodic_start(&w->stats, 1.0, STATS_INTERVAL);
}

void webhook_kick(struct webhook *w)
{
	if (!w)
		return;
	w->lease_again = 1;
	pump(w);
}

void webhook_stop(struct webhook *w)
{
	if (!w || w->stopping)
		return;
	w->stopping = 1;
	ev_timer_stop(w->loop, &w->poll);
	periodic_stop(&w->stats);
	struct wh_req *r;
	size_t n = 0;
	while ((r = queue_take(w, NULL))) {
		hand_back(w, r);
		n++;
	}
	log_info("webhook", "ev=stopping posting=%zu handed_back=%zu", w->n_posting, n);
}

int webhook_busy(const struct webhook *w)
{
	return w && (w->n_posting > 0 || webhook_fair_waiting(w->fq) > 0 || w->n_writing > 0 || w->lease_in_flight);
}

void webhook_metrics(const struct webhook *w, struct metrics_out *o)
{
	if (!w)
		return;
	metrics_one(o, "pushgate_webhook_delivered_total", METRICS_COUNTER, "events delivered to webhooks",
		    w->c.delivered);
	metrics_one(o, "pushgate_webhook_delivered_posts_total", METRICS_COUNTER, "webhook POSTs answered 2xx",
		    w->c.delivered_posts);
	metrics_one(o, "pushgate_webhook_failed_total", METRICS_COUNTER, "events in webhook POSTs that failed",
		    w->c.failed);
	metrics_one(o, "pushgate_webhook_failed_posts_total", METRICS_COUNTER, "webhook POSTs that failed",
		    w->c.failed_posts);
	metrics_one(o, "pushgate_webhook_given_up_total", METRICS_COUNTER, "events given up after every retry",
		    w->c.given_up);
	metrics_one(o, "pushgate_webhook_in_flight", METRICS_GAUGE, "webhook POSTs waiting for an answer", w->n_posting);
	metrics_one(o, "pushgate_webhook_in_flight_events", METRICS_GAUGE, "events in those POSTs", w->events_posting);
	metrics_one(o, "pushgate_webhook_queued", METRICS_GAUGE, "events leased by this node, waiting to be posted",
		    webhook_fair_waiting(w->fq));
	metrics_one(o, "pushgate_webhook_backlog", METRICS_GAUGE,
		    "events not yet delivered nor given up, every node together (counted every few seconds)",
		    w->backlog > 0 ? (unsigned long long)w->backlog : 0);
}

void webhook_free(struct webhook *w)
{
	if (!w)
		return;
	w->freeing = w->stopping = 1;
	ev_timer_stop(w->loop, &w->poll);
	periodic_stop(&w->stats);
	ev_prepare_stop(w->loop, &w->dl_flush);
	struct wh_req *r;
	while (w->fq && (r = queue_take(w, NULL)))
		req_free(r);
	while ((r = w->dl_head)) {   /* answered, never written: their leases run out */
		w->dl_head = r->next;
		req_free(r);
	}
	while ((r = w->posting)) {
		posting_unlink(w, r);
		req_free(r);   /* its lease runs out and the rows return */
	}
	curlev_free(w->curl);
	netpolicy_free(w->policy);
	webhook_fair_free(w->fq);
	free(w->p_busy);
	free(w);
}
