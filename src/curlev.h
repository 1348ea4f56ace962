/*
 * curlev.h: outbound HTTP(S) for the modules that call a customer's or a
 * device's URL (webhooks and dlr-urls, platform push): libcurl's multi
 * interface driven by the libev loop, and the rules every such request
 * follows.  Each address connected to passes the outbound policy
 * (netpolicy.c) after DNS; no redirects, nothing but http(s), no proxy from
 * the environment.  A transfer is a struct curlev_xfer embedded in the
 * caller's request; its done callback runs once, from the loop, with the
 * easy handle already taken off the multi handle and cleaned up.
 */
#ifndef PUSHGATE_CURLEV_H
#define PUSHGATE_CURLEV_H

#include <stddef.h>
#include <curl/curl.h>
#include <ev.h>

struct curlev;
struct netpolicy;

struct curlev_xfer {
	CURL              *easy;          /* set by curlev_easy, NULL once done */
	struct curl_slist *headers;       /* the caller's, freed by curlev_xfer_clear */
	void             (*done)(struct curlev_xfer *x, CURLcode cc, long status);
	void              *arg;
	struct curlev     *owner;
	const char        *who;           /* log prefix of the owner ("webhook", "wake") */
	long long          tag;           /* logged with a refused address (an account, a device) */
	size_t             answered;      /* answer bytes seen (kept only up to answer_cap) */
	char              *answer;        /* NULL unless answer_cap */
	size_t             answer_cap;
	char               errbuf[CURL_ERROR_SIZE];
	char               refused[128];  /* the outbound policy's reason, when it refused the address */
	long               retry_after;   /* the answer's Retry-After in seconds (0: none) */
};

/*
 * max_total: connections at once (CURLMOPT_MAX_TOTAL_CONNECTIONS, 0: no
 * cap); collected(arg) runs after the finished transfers of a loop wake-up
 * were handed to their done callbacks.  The policy must outlive it.
 */
struct curlev *curlev_new(struct ev_loop *loop, const struct netpolicy *policy, long max_total,
			  void (*collected)(void *arg), void *arg);
/* Clear every transfer first (curlev_xfer_clear): none may outlive it. */
void curlev_free(struct curlev *c);

/*
 * A new easy handle in x with the common options: url, http(s) only, no
 * redirects, no proxy, the policy's socket opener, timeouts in seconds, the
 * answer read into x->answer up to x->answer_cap (set it first) and
 * dropped beyond.  The caller adds its own options, then curlev_start.
 */
int curlev_easy(struct curlev *c, struct curlev_xfer *x, const char *url, double timeout, double connect_timeout);
int curlev_start(struct curlev *c, struct curlev_xfer *x);
/* Takes x off the multi handle if it is there; frees its handle and headers (not its answer). */
void curlev_xfer_clear(struct curlev_xfer *x);

/* Printable ASCII only, no quotes, no trailing blanks: error texts for logs and tables. */
void curlev_clean_text(char *dst, size_t cap, const char *src);

#endif
