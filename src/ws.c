/*
 * ws.c: WebSocket server connections (RFC 6455) for the push channel.
 *
 * Checks the upgrade request, takes the socket from http.c, answers 101
 * itself and then lets wslay do the framing on the nonblocking fd, with
 * libev watchers switched on wslay_event_want_read/want_write.  Owns each
 * struct ws_conn, its wslay context, its fd and its one timer (pings,
 * idle timeout, the 2 s close deadline).  Text messages reach on_text whole;
 * wslay itself closes with 1002 (protocol), 1007 (invalid UTF-8) and 1009
 * (too big); binary messages close with 1003, a send queue over
 * WS_MAX_QUEUED with 1008.
 *
 * Never blocks, never calls on_close from inside a call made by the owner
 * (ws_send_text, ws_close, ws_accept): teardown runs only from its own
 * watchers, after wslay has returned.  An idle connection holds no buffer
 * of its own: only the struct and wslay's context (and, over TLS, the SSL
 * handed over by http.c, owned from then on: every byte goes through
 * SSL_read/SSL_write; a read that needs the socket writable or a write
 * that needs it readable is resumed by the other watcher; close_notify
 * goes out with our FIN; idle, it holds no record buffers).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ws.h"
#include "log.h"
#include "netio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>

#define WS_DEFAULT_MAX_MESSAGE  65536u
#define WS_DEFAULT_PING         30.0
#define WS_CLOSE_SECONDS        2.0
#define WS_MAX_QUEUED           (1024u * 1024u)   /* bytes waiting to be sent */
#define WS_MAX_QUEUED_MSGS      4096u             /* frames, e.g. pongs to a ping flood */
#define WS_RX_BUDGET            (64u * 1024u)     /* socket bytes per read event */
#define WS_GUID                 "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Life of a connection; ws_enter() is the only writer of c->state. */
enum ws_state {
	WS_OPEN,      /* messages flow */
	WS_CLOSING,   /* a close frame is queued (by either side): finishing the handshake */
	WS_DRAINING,  /* handshake done, write side shut: reading until EOF */
	WS_CLOSED,    /* torn down: inside on_close, then freed */
};

static const char *const ws_state_names[] = { "open", "closing", "draining", "closed" };

/*
 * One upgraded connection.  Created by ws_accept(), freed by ws_teardown()
 * right after on_close returns; the owner never frees it.
 */
struct ws_conn {
	struct ev_loop *loop;
	wslay_event_context_ptr ws;     /* owned */
	int      fd;                    /* owned */
	SSL     *ssl;                   /* owned; NULL on a plain connection */
	struct netio_tls tls;           /* TLS waits and failure (netio.c) */
	enum ws_state state;
	int      close_code;            /* first close code sent by us or received, 0 = none yet */
	int      eof;                   /* recv saw the peer's FIN */
	int      in_wslay;              /* inside wslay_event_recv/send: no watcher changes */
	size_t   rx_budget;
	ev_io    rio, wio;
	ev_timer timer;
	ev_tstamp last_rx, next_ping;
	struct ws_callbacks cb;
	void    *arg, *user;
	size_t   max_message;
	double   ping_interval, idle_timeout;
	char    *pre;                   /* bytes read by http.c after the request; malloc'd, freed once consumed */
	size_t   pre_len, pre_off;
	char    *hs;                    /* unsent tail of the 101 (rare); malloc'd */
	size_t   hs_len, hs_off;
	char     peer[64];
};

static size_t ws_open_count;

static void ws_after_io(struct ws_conn *c);

size_t ws_count(void)
{
	return ws_open_count;
}

void ws_set_user(struct ws_conn *c, void *user)
{
	if (c)
		c->user = user;
}

void *ws_user(const struct ws_conn *c)
{
	return c ? c->user : NULL;
}

const char *ws_peer(const struct ws_conn *c)
{
	return c ? c->peer : "";
}

/* ------------------------------------------------------------------------ */
/* state */

static void ws_enter(struct ws_conn *c, enum ws_state next)
{
	if (c->state != next)
		log_debug("ws", "ev=state peer=%s from=%s to=%s", c->peer, ws_state_names[c->state],
			  ws_state_names[next]);
	c->state = next;
	if (next == WS_CLOSING) {
		/* from here the whole close handshake has WS_CLOSE_SECONDS */
		ev_timer_stop(c->loop, &c->timer);
		ev_timer_set(&c->timer, WS_CLOSE_SECONDS, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
}

/* ------------------------------------------------------------------------ */
/* socket or TLS */

/* Reads and writes on c's socket or TLS (netio.c); a TLS failure is logged here. */
static ssize_t ws_io_recv(struct ws_conn *c, void *buf, size_t len)
{
	char err[200];
	ssize_t n = netio_recv(c->fd, c->ssl, &c->tls, buf, len, err, sizeof(err));
	if (n < 0 && errno == EPROTO && c->ssl)
		log_debug("ws", "ev=tls_error peer=%s during=read err=\"%s\"", c->peer, err);
	return n;
}

static ssize_t ws_io_send(struct ws_conn *c, const void *buf, size_t len, int more)
{
	char err[200];
	ssize_t n = netio_send(c->fd, c->ssl, &c->tls, buf, len, more, err, sizeof(err));
	if (n < 0 && errno == EPROTO && c->ssl)
		log_debug("ws", "ev=tls_error peer=%s during=write err=\"%s\"", c->peer, err);
	return n;
}

/* close_notify (one nonblocking try) when the link is healthy and none went yet. */
static void ws_tls_notify(struct ws_conn *c)
{
	if (!c->ssl || c->tls.failed || (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
		return;
	ERR_clear_error();
	SSL_shutdown(c->ssl);
	ERR_clear_error();
}

/* Closes the fd, calls on_close once, frees c. */
static void ws_teardown(struct ws_conn *c, const char *why)
{
	if (c->state == WS_CLOSED)
		return;
	int code = c->close_code;
	if (!code)
		code = wslay_event_get_close_sent(c->ws) ? wslay_event_get_status_code_sent(c->ws) : 1006;
	log_debug("ws", "ev=closed peer=%s state=%s code=%d reason=%s", c->peer, ws_state_names[c->state],
		  code, why);
	ws_enter(c, WS_CLOSED);
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_timer_stop(c->loop, &c->timer);
	if (c->ssl) {
		ws_tls_notify(c);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	wslay_event_context_free(c->ws);
	c->ws = NULL;
	free(c->pre);
	c->pre = NULL;
	free(c->hs);
	c->hs = NULL;
	ws_open_count--;
	if (c->cb.on_close)
		c->cb.on_close(c, code, c->arg);
	free(c);
}

/* Queues our close frame and starts the bounded handshake. */
static void ws_start_close(struct ws_conn *c, int code, const char *reason)
{
	if (c->state != WS_OPEN)
		return;
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > 123)
		rl = 123;
	int rv = wslay_event_queue_close(c->ws, (uint16_t)code, (const uint8_t *)reason, rl);
	if (rv != 0 && rv != WSLAY_ERR_NO_MORE_MSG)
		log_debug("ws", "ev=close_not_queued peer=%s code=%d err=%d", c->peer, code, rv);
	if (!c->close_code)
		c->close_code = code;
	log_debug("ws", "ev=close_start peer=%s code=%d reason=\"%.*s\"", c->peer, code, (int)rl,
		  reason ? reason : "");
	ws_enter(c, WS_CLOSING);
}

/* Too much waiting to be sent (a peer that does not read): give up on it. */
static int ws_queue_full(const struct ws_conn *c, size_t more)
{
	size_t q = wslay_event_get_queued_msg_length(c->ws);
	return more > WS_MAX_QUEUED || q > WS_MAX_QUEUED - more ||
	       wslay_event_get_queued_msg_count(c->ws) >= WS_MAX_QUEUED_MSGS;
}

/* ------------------------------------------------------------------------ */
/* wslay callbacks */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct ws_conn *c = user;
	(void)flags;
	if (c->pre) {
		size_t n = c->pre_len - c->pre_off;
		if (n > len)
			n = len;
		memcpy(buf, c->pre + c->pre_off, n);
		c->pre_off += n;
		if (c->pre_off == c->pre_len) {
			free(c->pre);
			c->pre = NULL;
			c->pre_len = c->pre_off = 0;
		}
		return (ssize_t)n;
	}
	if (c->rx_budget == 0) {            /* let other connections run; libev comes back */
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > c->rx_budget)
		len = c->rx_budget;
	ssize_t n = ws_io_recv(c, buf, len);
	if (n > 0) {
		c->rx_budget -= (size_t)n;
		return n;
	}
	if (n == 0) {
		c->eof = 1;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (errno == EAGAIN)
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	struct ws_conn *c = user;
	ssize_t n = ws_io_send(c, data, len, (flags & WSLAY_MSG_MORE) != 0);
	if (n >= 0)
		return n;
	if (errno == EAGAIN)
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static void ws_frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
			      void *user)
{
	struct ws_conn *c = user;
	c->last_rx = ev_now(c->loop);       /* any frame, pongs included, shows the peer is alive */
	if (arg->opcode == WSLAY_BINARY_FRAME && c->state == WS_OPEN) {
		/* refuse before buffering it; stop reading like wslay does on its own errors */
		ws_start_close(c, 1003, "binary messages are not accepted");
		wslay_event_shutdown_read(ctx);
	}
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct ws_conn *c = user;
	(void)ctx;
	switch (arg->opcode) {
	case WSLAY_TEXT_FRAME:
		/* wslay has checked UTF-8 (1007 otherwise) and the length (1009) */
		if (c->state == WS_OPEN && c->cb.on_text)
			c->cb.on_text(c, arg->msg ? (const char *)arg->msg : "", arg->msg_length, c->arg);
		break;
	case WSLAY_CONNECTION_CLOSE:
		/* wslay queues the echo itself */
		if (!c->close_code)
			c->close_code = arg->status_code ? arg->status_code : 1005;
		log_debug("ws", "ev=close_received peer=%s code=%u", c->peer, (unsigned)arg->status_code);
		break;
	default:
		break;
	}
}

static const struct wslay_event_callbacks ws_wslay_callbacks = {
	.recv_callback = ws_recv_cb,
	.send_callback = ws_send_cb,
	.on_frame_recv_start_callback = ws_frame_start_cb,
	.on_msg_recv_callback = ws_msg_cb,
};

/* ------------------------------------------------------------------------ */
/* watchers */

/* Sends what is left of the 101.  0, or -1 on a socket error. */
static int ws_flush_handshake(struct ws_conn *c)
{
	while (c->hs && c->hs_off < c->hs_len) {
		ssize_t n = ws_io_send(c, c->hs + c->hs_off, c->hs_len - c->hs_off, 0);
		if (n > 0) {
			c->hs_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return 0;
		return -1;
	}
	free(c->hs);
	c->hs = NULL;
	c->hs_len = c->hs_off = 0;
	return 0;
}

/* After any progress: follow wslay's state, set the watchers. */
static void ws_after_io(struct ws_conn *c)
{
	if (c->in_wslay || c->state == WS_CLOSED)
		return;
	wslay_event_context_ptr ws = c->ws;
	if (c->state == WS_OPEN && (!wslay_event_get_read_enabled(ws) || !wslay_event_get_write_enabled(ws) ||
				    wslay_event_get_close_received(ws)))
		ws_enter(c, WS_CLOSING);   /* wslay answered a close or failed the connection itself */
	if (c->state == WS_CLOSING && !c->hs && !wslay_event_want_read(ws) && !wslay_event_want_write(ws)) {
		/* our last frame is out: FIN, then wait (bounded) for the peer's */
		ws_tls_notify(c);
		shutdown(c->fd, SHUT_WR);
		ws_enter(c, WS_DRAINING);
	}
	if (c->state == WS_DRAINING) {
		ev_io_stop(c->loop, &c->wio);
		ev_io_start(c->loop, &c->rio);
		return;
	}
	int want_read = wslay_event_want_read(ws);
	int want_write = c->hs || wslay_event_want_write(ws);
	if (want_read || (want_write && c->tls.write_wants_read))
		ev_io_start(c->loop, &c->rio);
	else
		ev_io_stop(c->loop, &c->rio);
	if ((want_write && !c->tls.write_wants_read) || (want_read && c->tls.read_wants_write))
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
	/* decrypted bytes waiting inside OpenSSL never make the socket readable */
	if (want_read && c->ssl && !c->tls.read_wants_write && SSL_has_pending(c->ssl))
		ev_feed_event(c->loop, &c->rio, EV_READ);
}

static void ws_drain(struct ws_conn *c)
{
	char sink[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		ws_teardown(c, n == 0 ? "done" : "recv_error");
		return;
	}
}

static void ws_write_cb(struct ev_loop *loop, ev_io *w, int revents);

static void ws_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ws_conn *c = w->data;
	(void)loop;
	(void)revents;
	if (c->state == WS_DRAINING) {
		ws_drain(c);
		return;
	}
	if (c->tls.write_wants_read) {
		c->tls.write_wants_read = 0;   /* the blocked SSL_write goes first */
		ws_write_cb(loop, &c->wio, EV_WRITE);
		return;
	}
	c->rx_budget = WS_RX_BUDGET;
	c->in_wslay = 1;
	int rv = wslay_event_recv(c->ws);
	c->in_wslay = 0;
	if (rv != 0) {
		ws_teardown(c, c->eof ? "peer_closed" : "recv_error");
		return;
	}
	if (c->state == WS_OPEN && ws_queue_full(c, 0)) {
		log_info("ws", "ev=send_queue_full peer=%s queued=%zu msgs=%zu", c->peer,
			 wslay_event_get_queued_msg_length(c->ws), wslay_event_get_queued_msg_count(c->ws));
		ws_start_close(c, 1008, "send queue full");
	}
	ws_after_io(c);
}

static void ws_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ws_conn *c = w->data;
	(void)loop;
	(void)revents;
	if (c->tls.read_wants_write && c->state != WS_DRAINING) {
		c->tls.read_wants_write = 0;   /* the blocked SSL_read goes first */
		ws_read_cb(loop, &c->rio, EV_READ);
		return;
	}
	if (ws_flush_handshake(c) < 0) {
		ws_teardown(c, "send_error");
		return;
	}
	if (c->hs)
		return;                     /* still blocked on the 101 */
	c->in_wslay = 1;
	int rv = wslay_event_send(c->ws);
	c->in_wslay = 0;
	if (rv != 0) {
		ws_teardown(c, "send_error");
		return;
	}
	ws_after_io(c);
}

static void ws_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ws_conn *c = w->data;
	(void)revents;
	if (c->state != WS_OPEN) {
		ws_teardown(c, "close_timeout");
		return;
	}
	ev_tstamp now = ev_now(loop);
	if (now - c->last_rx >= c->idle_timeout) {
		log_debug("ws", "ev=idle_timeout peer=%s idle=%.1f", c->peer, now - c->last_rx);
		ws_start_close(c, 1001, "idle timeout");
		ws_after_io(c);
		return;
	}
	if (now >= c->next_ping) {
		struct wslay_event_msg ping = { .opcode = WSLAY_PING, .msg = NULL, .msg_length = 0 };
		if (!ws_queue_full(c, 0))
			(void)wslay_event_queue_msg(c->ws, &ping);
		c->next_ping = now + c->ping_interval;
	}
	ev_tstamp at = c->next_ping;
	if (c->last_rx + c->idle_timeout < at)
		at = c->last_rx + c->idle_timeout;
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, at > now ? at - now : 0.001, 0.);
	ev_timer_start(loop, &c->timer);
	ws_after_io(c);
}

/* ------------------------------------------------------------------------ */
/* handshake */

/* Is `token` one of the comma-separated tokens of any `name` header? */
static int header_has_token(const struct http_request *req, const char *name, const char *token)
{
	size_t tl = strlen(token);
	for (unsigned i = 0; i < req->n_headers && i < HTTP_MAX_HEADERS; i++) {
		if (strcasecmp(req->headers[i].name, name) != 0)
			continue;
		const char *p = req->headers[i].value;
		while (*p) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			const char *start = p;
			while (*p && *p != ',')
				p++;
			const char *end = p;
			while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0)
				return 1;
		}
	}
	return 0;
}

/* A Sec-WebSocket-Key is the base64 of exactly 16 bytes: 22 characters and "==". */
static int key_is_valid(const char *key)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
		return 0;
	for (int i = 0; i < 22; i++)
		if (!memchr(alphabet, key[i], sizeof(alphabet) - 1))
			return 0;
	unsigned char raw[24];
	return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

/* base64(SHA-1(key + GUID)) into out (29 bytes with the NUL).  0 / -1. */
static int accept_value(const char *key, char out[29])
{
	char buf[24 + sizeof(WS_GUID)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	if (EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, md, 20) == 28 ? 0 : -1;
}

static void refuse(struct http_request *req, int status, const char *code, const char *msg)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	log_debug("ws", "ev=upgrade_refused peer=%s status=%d msg=\"%s\"", req->peer, status, msg);
	http_respond(req, status, status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" : NULL,
		     body, (size_t)n);
}

/* A connection not yet started: struct and wslay context.  NULL when out of memory. */
static struct ws_conn *ws_conn_new(struct ev_loop *loop, const struct ws_config *cfg,
				   const struct ws_callbacks *cb, void *arg, const char *peer)
{
	struct ws_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (wslay_event_context_server_init(&c->ws, &ws_wslay_callbacks, c) != 0) {
		free(c);
		return NULL;
	}
	c->fd = -1;
	c->loop = loop;
	c->cb = *cb;
	c->arg = arg;
	c->max_message = cfg && cfg->max_message ? cfg->max_message : WS_DEFAULT_MAX_MESSAGE;
	c->ping_interval = cfg && cfg->ping_interval > 0 ? cfg->ping_interval : WS_DEFAULT_PING;
	c->idle_timeout = cfg && cfg->idle_timeout > 0 ? cfg->idle_timeout : 3 * c->ping_interval;
	wslay_event_config_set_max_recv_msg_length(c->ws, c->max_message);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	return c;
}

/* Watchers and timer on fd; from here the loop runs c and on_close will come. */
static void ws_conn_start(struct ws_conn *c, int fd)
{
	struct ev_loop *loop = c->loop;
	c->fd = fd;
	ev_io_init(&c->rio, ws_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, ws_write_cb, fd, EV_WRITE);
	ev_init(&c->timer, ws_timer_cb);
	c->rio.data = c->wio.data = c->timer.data = c;
	ev_tstamp now = ev_now(loop);
	c->last_rx = now;
	c->next_ping = now + c->ping_interval;
	ev_timer_set(&c->timer, c->ping_interval < c->idle_timeout ? c->ping_interval : c->idle_timeout, 0.);
	ev_timer_start(loop, &c->timer);
	ev_io_start(loop, &c->rio);
	if (c->hs)
		ev_io_start(loop, &c->wio);
	/* frames that came with the request: parse them from the loop, not from here */
	if (c->pre || (c->ssl && SSL_has_pending(c->ssl)))
		ev_feed_event(loop, &c->rio, EV_READ);
	ws_open_count++;
	log_debug("ws", "ev=open peer=%s extra=%zu max_message=%zu ping=%.1f idle=%.1f", c->peer, c->pre_len,
		  c->max_message, c->ping_interval, c->idle_timeout);
}

struct ws_conn *ws_accept(struct ev_loop *loop, struct http_request *req, const struct ws_config *cfg,
			  const struct ws_callbacks *cb, void *arg)
{
	if (!req)
		return NULL;
	if (!loop || !cb) {
		refuse(req, 500, "internal", "websocket endpoint misconfigured");
		return NULL;
	}
	if (!header_has_token(req, "Upgrade", "websocket") || !header_has_token(req, "Connection", "upgrade")) {
		refuse(req, 426, "upgrade_required", "this endpoint speaks WebSocket only");
		return NULL;
	}
	if (req->method != HTTP_M_GET) {
		refuse(req, 400, "bad_request", "a WebSocket upgrade must be a GET");
		return NULL;
	}
	const char *version = http_header(req, "Sec-WebSocket-Version");
	if (!version || strcmp(version, "13") != 0) {
		refuse(req, 426, "upgrade_required", "unsupported Sec-WebSocket-Version");
		return NULL;
	}
	const char *key = http_header(req, "Sec-WebSocket-Key");
	char accept[29];
	if (!key_is_valid(key) || accept_value(key, accept) < 0) {
		refuse(req, 400, "bad_request", "missing or malformed Sec-WebSocket-Key");
		return NULL;
	}

	/* everything that can fail for lack of memory, while req can still be answered */
	struct ws_conn *c = ws_conn_new(loop, cfg, cb, arg, req->peer);
	if (!c) {
		refuse(req, 503, "unavailable", "out of memory");
		return NULL;
	}

	int fd = -1;
	SSL *ssl = NULL;
	char *extra = NULL;
	size_t extra_len = 0;
	if (http_takeover_tls(req, &fd, &ssl, &extra, &extra_len) < 0) {
		wslay_event_context_free(c->ws);
		free(c);
		refuse(req, 400, "bad_request", "connection cannot be upgraded (requests pipelined behind it)");
		return NULL;
	}
	/* req is gone from here on */
	c->fd = fd;
	c->ssl = ssl;
	c->pre = extra;
	c->pre_len = extra ? extra_len : 0;

	char resp[160];
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			  "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
	size_t sent = 0;
	while (rl > 0 && sent < (size_t)rl) {
		ssize_t n = ws_io_send(c, resp + sent, (size_t)rl - sent, 0);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			break;
		sent = SIZE_MAX;
		break;
	}
	if (sent < (size_t)rl) {
		c->hs_len = (size_t)rl - sent;
		c->hs = malloc(c->hs_len);
		if (c->hs)
			memcpy(c->hs, resp + sent, c->hs_len);
	}
	if (sent == SIZE_MAX || (c->hs_len && !c->hs)) {
		log_debug("ws", "ev=handshake_failed peer=%s err=\"%s\"", c->peer, strerror(errno));
		SSL_free(c->ssl);
		close(fd);
		wslay_event_context_free(c->ws);
		free(c->pre);
		free(c);
		return NULL;
	}

	ws_conn_start(c, fd);
	return c;
}

struct ws_conn *ws_adopt(struct ev_loop *loop, int fd, const char *peer, const struct ws_config *cfg,
			 const struct ws_callbacks *cb, void *arg)
{
	if (fd < 0)
		return NULL;
	struct ws_conn *c = loop && cb ? ws_conn_new(loop, cfg, cb, arg, peer ? peer : "adopted") : NULL;
	if (!c) {
		close(fd);
		return NULL;
	}
	ws_conn_start(c, fd);
	return c;
}

/* ------------------------------------------------------------------------ */
/* the owner's calls */

int ws_send_text(struct ws_conn *c, const char *data, size_t len)
{
	if (!c || c->state != WS_OPEN || (!data && len))
		return -1;
	if (ws_queue_full(c, len)) {
		log_info("ws", "ev=send_queue_full peer=%s queued=%zu adding=%zu", c->peer,
			 wslay_event_get_queued_msg_length(c->ws), len);
		ws_start_close(c, 1008, "send queue full");
		ws_after_io(c);
		return -1;
	}
	/* wslay copies the payload: data is the caller's again when this returns */
	struct wslay_event_msg msg = { .opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)data, .msg_length = len };
	if (wslay_event_queue_msg(c->ws, &msg) != 0)
		return -1;
	ws_after_io(c);
	return 0;
}

void ws_close(struct ws_conn *c, int code, const char *reason)
{
	if (!c || c->state != WS_OPEN)
		return;
	/* codes a peer may not receive (RFC 6455 7.4, IANA registry) become a plain 1000 */
	if (code < 1000 || code > 4999 || code == 1004 || code == 1005 || code == 1006 ||
	    (code > 1014 && code < 3000))
		code = 1000;
	ws_start_close(c, code, reason);
	ws_after_io(c);
}
