/*
 * curlev.c: libcurl's multi interface on the libev loop (socket and timer
 * callbacks), the common options of every outbound request, and the
 * outbound policy applied to each address after DNS (so a name rebound to
 * an internal address is caught too).  Owns the multi handle, the watched
 * sockets and the timer; the transfers belong to their callers.
 */
#include "curlev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "log.h"
#include "netpolicy.h"

/* A socket libcurl asked us to watch. */
struct cl_sock {
	ev_io          io;
	curl_socket_t  fd;
	struct curlev *c;
	struct cl_sock *next;
};

struct curlev {
	struct ev_loop         *loop;
	const struct netpolicy *policy;
	CURLM                  *multi;
	ev_timer                timer;
	struct cl_sock         *socks;
	int                     freeing;
	void                  (*collected)(void *arg);
	void                   *arg;
};

void curlev_clean_text(char *dst, size_t cap, const char *src)
{
	size_t o = 0;
	for (; *src && o + 1 < cap; src++)
		dst[o++] = (*src >= 0x20 && *src < 0x7f && *src != '"' && *src != '\\') ? *src : '?';
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = '\0';
}

/* --- transfers ---------------------------------------------------------------------- */

void curlev_xfer_clear(struct curlev_xfer *x)
{
	if (x->easy) {
		if (x->owner && x->owner->multi)
			curl_multi_remove_handle(x->owner->multi, x->easy);
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
	}
	curl_slist_free_all(x->headers);
	x->headers = NULL;
}

static size_t on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	struct curlev_xfer *x = arg;
	size_t n = size * nmemb;
	if (x->answer && x->answered + 1 < x->answer_cap) {
		size_t k = x->answer_cap - 1 - x->answered;
		if (k > n)
			k = n;
		memcpy(x->answer + x->answered, data, k);
		x->answer[x->answered + k] = '\0';
		x->answered += k;
	} else if (!x->answer) {
		x->answered += n;   /* read and dropped: only the status matters */
	}
	return n;
}

/*
 * Every connection libcurl opens: the address it is about to connect to
 * must pass the outbound policy.  A refusal fails the transfer with a
 * reason in x->refused.
 */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct curlev_xfer *x = arg;
	(void)purpose;
	const char *why = NULL;
	if (!netpolicy_allows(x->owner->policy, &addr->addr, &why)) {
		char host[INET6_ADDRSTRLEN] = "?";
		if (addr->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&addr->addr)->sin_addr, host, sizeof(host));
		else if (addr->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&addr->addr)->sin6_addr, host, sizeof(host));
		snprintf(x->refused, sizeof(x->refused), "address %s refused by the outbound policy (%s)", host, why);
		log_warn(x->who ? x->who : "curl", "ev=address_refused addr=%s why=\"%s\" tag=%lld", host, why, x->tag);
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype, addr->protocol);
}

int curlev_easy(struct curlev *c, struct curlev_xfer *x, const char *url, double timeout, double connect_timeout)
{
	x->owner = c;
	x->errbuf[0] = '\0';
	x->refused[0] = '\0';
	x->answered = 0;
	if (x->answer && x->answer_cap)
		x->answer[0] = '\0';
	CURL *e = x->easy = curl_easy_init();
	if (!e)
		return -1;
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK) {
		curlev_xfer_clear(x);
		return -1;
	}
	long timeout_ms = (long)(timeout * 1000), connect_ms = (long)(connect_timeout * 1000);
	if (connect_ms > timeout_ms)
		connect_ms = timeout_ms;
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms > 0 ? connect_ms : 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(e, CURLOPT_PROXY, "");   /* no proxy from the environment: the policy sees the real peer */
	return 0;
}

int curlev_start(struct curlev *c, struct curlev_xfer *x)
{
	if (x->headers)
		curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	return curl_multi_add_handle(c->multi, x->easy) == CURLM_OK ? 0 : -1;
}

/* Hands every finished transfer to its owner. */
static void collect(struct curlev *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode cc = m->data.result;
		char *priv = NULL;
		long status = 0;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		struct curlev_xfer *x = (struct curlev_xfer *)(void *)priv;
		if (!x)
			continue;
		curl_off_t ra = 0;
		x->retry_after = curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0 ? (long)ra : 0;
		curl_multi_remove_handle(c->multi, e);
		curl_easy_cleanup(e);
		x->easy = NULL;
		x->done(x, cc, status);
	}
	if (!c->freeing && c->collected)
		c->collected(c->arg);
}

/* --- libcurl on libev ------------------------------------------------------------------ */

static void sock_cb_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	struct cl_sock *s = io->data;
	struct curlev *c = s->c;
	int action = ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(c->multi, s->fd, action, &running);   /* may free s */
	collect(c);
}

static void sock_drop(struct curlev *c, struct cl_sock *s)
{
	ev_io_stop(c->loop, &s->io);
	for (struct cl_sock **p = &c->socks; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	free(s);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)e;
	struct curlev *c = userp;
	struct cl_sock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			if (!c->freeing)
				curl_multi_assign(c->multi, fd, NULL);
			sock_drop(c, s);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fd = fd;
		s->c = c;
		s->next = c->socks;
		c->socks = s;
		ev_init(&s->io, sock_cb_io);
		s->io.data = s;
		curl_multi_assign(c->multi, fd, s);
	}
	int events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	ev_io_stop(c->loop, &s->io);
	ev_io_set(&s->io, fd, events);
	if (events)
		ev_io_start(c->loop, &s->io);
	return 0;
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop; (void)revents;
	struct curlev *c = t->data;
	int running;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(c);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct curlev *c = userp;
	ev_timer_stop(c->loop, &c->timer);
	if (timeout_ms >= 0 && !c->freeing) {
		ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

/* --- public ---------------------------------------------------------------------------- */

struct curlev *curlev_new(struct ev_loop *loop, const struct netpolicy *policy, long max_total,
			  void (*collected)(void *arg), void *arg)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	struct curlev *c = calloc(1, sizeof(*c));
	if (!c || !(c->multi = curl_multi_init())) {
		free(c);
		curl_global_cleanup();
		return NULL;
	}
	c->loop = loop;
	c->policy = policy;
	c->collected = collected;
	c->arg = arg;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	if (max_total > 0)
		curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
	ev_init(&c->timer, timer_cb);
	c->timer.data = c;
	return c;
}

void curlev_free(struct curlev *c)
{
	if (!c)
		return;
	c->freeing = 1;
	ev_timer_stop(c->loop, &c->timer);
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while (c->socks)
		sock_drop(c, c->socks);
	free(c);
	curl_global_cleanup();
}
