/*
 * http.c: the HTTP/1.1 server of pushgated (http-parser glue on libev).
 *
 * Owns the listening socket (bound when built; listening and accepting
 * from http_server_open, which a config with `deferred` leaves to its
 * owner, so nothing connects before the daemon can serve), every
 * connection (struct http_conn: socket,
 * input and output buffers, parser, idle timer) and every request object
 * until the handler answers it with http_respond().  Requests on one
 * connection are handled strictly one at a time, in order: the next
 * pipelined request is not parsed until the current one has been answered,
 * so responses leave in request order.  A request whose peer went away
 * stays alive (its connection marked dead) until http_respond() frees it.
 *
 * However active a client keeps it, a request's headers must be complete
 * header_timeout after its first byte, and its body must average
 * min_body_rate after 10 s (time its sink held the reading back does not
 * count); one client address has at most max_conns_per_ip connections.
 * After a final response with input left unread, the connection lingers
 * (write side shut) discarding at most 2 s or 256 KiB of it, then closes.
 * Bounds: request line + headers <= max_header (431), body <= max_body
 * (or max_upload for paths under upload_prefix; 413, refused from
 * Content-Length before any body byte is read), input
 * buffer <= max_header + max_body + slack, queued output is back-pressured.
 *
 * Streamed bodies (config wants_stream): the request goes to the handler
 * with its headers (CONN_STREAMING) and its body bytes to the handler's
 * sink as they are parsed; while the sink is paused (or not set yet) the
 * socket is not read, and bytes the parser had already produced wait in
 * the request (at most one parser feed).  The body limit still counts.
 *
 * HTTPS: a server built with a certificate owns one SSL_CTX; each of its
 * connections owns an SSL, does a nonblocking SSL_accept (bounded by the
 * idle timeout) and then reads and writes only through it.  A read that
 * needs the socket writable, or a write that needs it readable, is
 * remembered and resumed by the other watcher.  Idle connections keep no
 * TLS record buffers (SSL_MODE_RELEASE_BUFFERS).
 * Never blocks, never trusts a byte from the peer, never knows about routes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "http.h"
#include "ipcount.h"
#include "log.h"
#include "netio.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define HTTP_DEFAULT_MAX_HEADER  (16u * 1024u)
#define HTTP_DEFAULT_MAX_BODY    (1024u * 1024u)
#define HTTP_DEFAULT_IDLE        60.0
#define HTTP_DEFAULT_MAX_CONNS   10000u
#define HTTP_IN_SLACK            4096u     /* chunk framing, pipelined heads */
#define HTTP_IN_INITIAL          4096u
#define HTTP_STREAM_READ         (64u * 1024u) /* input buffer while streaming a body */
#define HTTP_OUT_HIGH_WATER      (256u * 1024u) /* stop parsing while above */
#define HTTP_LINGER_SECONDS      2.0
#define HTTP_LINGER_BYTES        (256u * 1024u)  /* discarded at most while lingering, then reset */
#define HTTP_DEFAULT_HEADER_TIMEOUT 10.0   /* seconds from a request's first byte to its last header */
#define HTTP_DEFAULT_MIN_BODY_RATE  1024.0 /* bytes/s a body must average, after BODY_GRACE */
#define HTTP_DEFAULT_PER_IP         256u
#define HTTP_BODY_GRACE          10.0
#define HTTP_ACCEPT_RETRY        0.1

/* Life of a connection; conn_enter() is the only writer of c->state. */
enum conn_state {
	CONN_READING,   /* parsing requests (or waiting for bytes) */
	CONN_PENDING,   /* a request is with the handler */
	CONN_LINGER,    /* final response sent, write side shut, draining input */
	CONN_DEAD,      /* socket gone while a request was pending; freed by respond */
	CONN_HANDSHAKE, /* TLS listener: SSL_accept in progress, no HTTP yet */
	CONN_STREAMING, /* a request is with the handler, its body goes to the sink */
};

static const char *const conn_state_names[] = { "reading", "pending", "linger", "dead", "tls_handshake",
						"streaming" };

/* Which parser data callback ran last (to split header names from values). */
enum last_cb { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

struct http_conn;

/* A request; pub must stay first.  Owned by its connection while parsed,
 * by the handler from dispatch until http_respond(), which frees it. */
struct req {
	struct http_request pub;
	struct http_conn *conn;
	char    *arena;              /* url\0 name\0 value\0 ... */
	size_t   arena_len, arena_cap;
	size_t   url_len;
	size_t   name_off[HTTP_MAX_HEADERS];
	size_t   value_off[HTTP_MAX_HEADERS];
	enum last_cb last;
	char    *body_buf;           /* NUL-terminated, NULL when empty */
	size_t   body_cap;
	size_t   max_body;           /* this request's limit, set with the headers */
	size_t   received;           /* body bytes parsed so far */
	/* streamed body (pub.body_streamed) */
	http_sink_data_fn sink_data; /* NULL until the handler sets the sink */
	http_sink_end_fn  sink_end;
	void    *sink_arg;
	int      paused;             /* the sink said HTTP_SINK_PAUSE */
	int      body_over;          /* no more bytes: end_status is due after held */
	int      end_status;         /* 0 complete, 400/413 refused, -1 peer gone */
	char    *held;               /* parsed while the sink could not take them */
	size_t   held_len, held_cap;
	int      expect_continue;    /* "Expect: 100-continue": sent when the sink is set, not before */
	/* http_request_read_body: the body gathered into body_buf, then collect_fn */
	http_body_fn collect_fn;
	void    *collect_arg;
	size_t   collect_limit;
	double   started;            /* loop time of its first byte */
	int      keep_alive;
	int      is_head;
	int      upgrade;
	unsigned short http_minor;
};

/* One accepted socket (or, with fd < 0, the socketless http_parse_buffer
 * run).  Owned by its server's list; a dead one is owned by its pending
 * request. */
struct http_conn {
	struct http_server *srv;     /* NULL once dead or detached */
	struct ev_loop *loop;        /* NULL in http_parse_buffer */
	int      fd;
	enum conn_state state;
	ev_io    rio, wio;
	ev_timer timer;
	http_parser parser;
	char    *in;
	size_t   in_len, in_off, in_cap, in_cap_max;
	char    *out;
	size_t   out_len, out_off, out_cap;
	struct req *cur;             /* being parsed */
	struct req *pending;         /* with the handler */
	size_t   head_bytes;         /* bytes of the current head fed so far */
	int      headers_done;
	int      msg_done;
	int      close_after;        /* close once the output is flushed */
	int      running;            /* inside conn_run(): respond must not recurse */
	int      detached;           /* taken over inside conn_run(): it frees c */
	int      err_status;         /* set by a callback refusing the request */
	struct req *streaming;       /* == pending while its body streams (CONN_STREAMING or dead) */
	int      stream_dispatch;    /* headers of a streamed request complete: hand it over */
	int      in_sink;            /* inside a sink call */
	int      stream_cut;         /* answered before its body was over: stop parsing */
	int      unread_body;        /* part of a body was never read: linger before close */
	size_t   linger_bytes;       /* discarded while lingering */
	const char *err_msg;
	SSL     *ssl;                /* TLS listener only: owned, freed with the socket */
	int      tls_up;             /* handshake done */
	struct netio_tls tls;        /* TLS waits and failure (netio.c) */
	char     peer[64];
	struct ipcount_entry *ipc;   /* this connection's address in the server's counts */
	double   req_start;          /* first byte of the request being read (0: none) */
	double   body_start;         /* its headers complete, moved on by the time its sink made it wait */
	double   wait_since;         /* the sink stopped the reading (0: it does not) */
	struct http_conn *prev, *next;
};


struct http_server {
	struct ev_loop *loop;
	http_handler_fn handler;
	void   *arg;
	size_t  max_body, max_header;
	size_t  max_upload;          /* for paths under upload_prefix */
	http_wants_stream_fn wants_stream;
	http_on_response_fn on_response;
	char    upload_prefix[64];
	double  idle_timeout;
	double  header_timeout, min_body_rate;
	unsigned max_conns, nconns, max_per_ip;
	struct ipcount *ips;         /* connections per client address */
	int     fd;
	int     port;
	int     closed;
	SSL_CTX *tls_ctx;            /* owned; NULL for plain HTTP */
	ev_io   accept_w;       /* started by http_server_open */
	int     open;           /* listen() done: connections are accepted */
	ev_timer accept_retry;
	struct http_conn *conns;
	char    listen[128];
};

static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_chunk_header(http_parser *p);
static int on_message_complete(http_parser *p);

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_chunk_header = on_chunk_header,
	.on_message_complete = on_message_complete,
};

static void conn_run(struct http_conn *c);
static void conn_after_io(struct http_conn *c);
static void conn_close(struct http_conn *c, const char *reason);
static void conn_on_readable(struct http_conn *c);

/* ------------------------------------------------------------------------ */

const char *http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Unknown";
	}
}

static const char *status_code_name(int status)
{
	switch (status) {
	case 413: return "too_large";
	case 431: return "header_too_large";
	case 503: return "unavailable";
	default:  return "bad_request";
	}
}

const char *http_header(const struct http_request *req, const char *name)
{
	if (!req || !name)
		return NULL;
	for (unsigned i = 0; i < req->n_headers && i < HTTP_MAX_HEADERS; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* buffers */

/* Makes room for extra more bytes in *buf (len used, cap allocated),
 * never beyond max total.  0 or -1. */
static int buf_reserve(char **buf, size_t *cap, size_t len, size_t extra, size_t max)
{
	if (extra > max || len > max - extra)
		return -1;
	size_t need = len + extra;
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap = ncap > max / 2 ? max : ncap * 2;
	char *nb = realloc(*buf, ncap);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

static int out_append(struct http_conn *c, const char *data, size_t len)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (buf_reserve(&c->out, &c->out_cap, c->out_len, len, SIZE_MAX / 2) < 0)
		return -1;
	if (len)
		memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* requests */

static void req_free(struct req *r)
{
	if (!r)
		return;
	free(r->arena);
	free(r->body_buf);
	free(r->held);
	free(r);
}

static int arena_append(struct req *r, const char *data, size_t len, size_t max)
{
	if (buf_reserve(&r->arena, &r->arena_cap, r->arena_len, len, max) < 0)
		return -1;
	if (len)
		memcpy(r->arena + r->arena_len, data, len);
	r->arena_len += len;
	return 0;
}

/* Arena bound: every head byte once plus a NUL per string. */
static size_t arena_max(const struct http_conn *c)
{
	return c->srv->max_header + 2 * HTTP_MAX_HEADERS + 8;
}

static int refuse(struct http_conn *c, int status, const char *msg)
{
	if (!c->err_status) {
		c->err_status = status;
		c->err_msg = msg;
	}
	return -1;
}

/* The request the parser's bytes belong to: a streaming one, or the one being read. */
static struct req *parsing_req(const struct http_conn *c)
{
	return c->streaming ? c->streaming : c->cur;
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;
	c->req_start = c->loop ? ev_now(c->loop) : 0;
	c->body_start = 0;
	c->wait_since = 0;
	req_free(c->cur);
	c->cur = calloc(1, sizeof(*c->cur));
	if (!c->cur)
		return refuse(c, 503, "out of memory");
	c->cur->conn = c;
	c->cur->started = c->req_start;
	c->headers_done = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct req *r = parsing_req(c);
	if (!r)
		return refuse(c, 400, "no request");
	if (memchr(at, '\0', len))
		return refuse(c, 400, "NUL byte in request target");
	if (arena_append(r, at, len, arena_max(c)) < 0)
		return refuse(c, 431, "request line too large");
	r->url_len += len;
	r->last = CB_URL;
	return 0;
}

/* Terminates the string being collected (url or value) with a NUL. */
static int arena_terminate(struct http_conn *c, struct req *r)
{
	if (arena_append(r, "", 1, arena_max(c)) < 0)
		return refuse(c, 431, "header fields too large");
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct req *r = parsing_req(c);
	if (!r)
		return refuse(c, 400, "no request");
	if (c->headers_done)
		return 0;    /* chunked trailers: bounded by the parser, ignored */
	if (memchr(at, '\0', len))
		return refuse(c, 400, "NUL byte in header");
	if (r->last != CB_FIELD) {
		if (r->pub.n_headers >= HTTP_MAX_HEADERS)
			return refuse(c, 431, "too many header fields");
		if (arena_terminate(c, r) < 0)
			return -1;
		r->name_off[r->pub.n_headers++] = r->arena_len;
		r->last = CB_FIELD;
	}
	if (arena_append(r, at, len, arena_max(c)) < 0)
		return refuse(c, 431, "header fields too large");
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct req *r = parsing_req(c);
	if (!r)
		return refuse(c, 400, "no request");
	if (c->headers_done)
		return 0;
	if (memchr(at, '\0', len))
		return refuse(c, 400, "NUL byte in header");
	if (r->last != CB_VALUE) {
		if (r->last != CB_FIELD || r->pub.n_headers == 0)
			return refuse(c, 400, "header value without name");
		if (arena_terminate(c, r) < 0)
			return -1;
		r->value_off[r->pub.n_headers - 1] = r->arena_len;
		r->last = CB_VALUE;
	}
	if (arena_append(r, at, len, arena_max(c)) < 0)
		return refuse(c, 431, "header fields too large");
	return 0;
}

static enum http_method_id method_id(unsigned m)
{
	switch (m) {
	case HTTP_GET:    return HTTP_M_GET;
	case HTTP_POST:   return HTTP_M_POST;
	case HTTP_PUT:    return HTTP_M_PUT;
	case HTTP_DELETE: return HTTP_M_DELETE;
	case HTTP_HEAD:   return HTTP_M_HEAD;
	default:          return HTTP_M_OTHER;
	}
}

static int is_ows(char ch) { return ch == ' ' || ch == '\t'; }

/* The arena is complete: point the public fields into it. */
static void req_fix_pointers(struct req *r)
{
	struct http_request *q = &r->pub;
	char *a = r->arena;
	a[r->url_len] = '\0';   /* the terminator written after the url */
	char *qm = memchr(a, '?', r->url_len);
	if (qm) {
		*qm = '\0';
		q->query = qm + 1;
	} else {
		q->query = "";
	}
	q->path = a;
	for (unsigned i = 0; i < q->n_headers; i++) {
		q->headers[i].name = a + r->name_off[i];
		char *v = r->value_off[i] ? a + r->value_off[i] : a + r->arena_len - 1;
		while (is_ows(*v))
			v++;
		size_t vl = strlen(v);
		while (vl > 0 && is_ows(v[vl - 1]))
			v[--vl] = '\0';
		q->headers[i].value = v;
	}
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct req *r = c->cur;
	if (!r)
		return refuse(c, 400, "no request");
	if (r->last == CB_FIELD)
		return refuse(c, 400, "header name without value");
	/* url\0 is written before the first name; without headers, write it now */
	if (r->pub.n_headers == 0 && arena_terminate(c, r) < 0)
		return -1;
	if (arena_terminate(c, r) < 0)
		return -1;
	if (r->url_len == 0)
		return refuse(c, 400, "empty request target");
	c->headers_done = 1;
	c->body_start = c->loop ? ev_now(c->loop) : 0;
	req_fix_pointers(r);
	r->pub.method = method_id(p->method);
	r->pub.method_name = http_method_str((enum http_method)p->method);
	r->is_head = p->method == HTTP_HEAD;
	r->http_minor = p->http_minor;
	if (p->http_major != 1)
		return refuse(c, 400, "unsupported HTTP version");

	size_t max_body = c->srv->max_body;
	size_t plen = strlen(c->srv->upload_prefix);
	if (plen && strncmp(r->pub.path, c->srv->upload_prefix, plen) == 0 &&
	    (r->pub.path[plen] == '\0' || r->pub.path[plen] == '/'))
		max_body = c->srv->max_upload;
	r->max_body = max_body;
	int has_body = 0;
	if (p->flags & F_CHUNKED) {
		has_body = 1;
	} else if (p->flags & F_CONTENTLENGTH) {
		if (p->content_length > max_body)
			return refuse(c, 413, "body too large");
		has_body = p->content_length > 0;
	}
	if (has_body && c->srv->wants_stream && c->srv->wants_stream(&r->pub, c->srv->arg)) {
		r->pub.body_streamed = 1;
		r->keep_alive = http_should_keep_alive(p);
		r->upgrade = p->upgrade;
		c->stream_dispatch = 1;   /* conn_parse_step hands it over after this feed */
	} else if (has_body && !(p->flags & F_CHUNKED)) {
		r->body_buf = malloc((size_t)p->content_length + 1);
		if (!r->body_buf)
			return refuse(c, 503, "out of memory");
		r->body_cap = (size_t)p->content_length + 1;
	}
	const char *expect = http_header(&r->pub, "Expect");
	if (expect && has_body && p->http_minor >= 1 && strcasecmp(expect, "100-continue") == 0) {
		if (r->pub.body_streamed) {
			r->expect_continue = 1;   /* only once the handler wants the body (http_request_set_sink) */
		} else {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (out_append(c, cont, sizeof(cont) - 1) < 0)
				return refuse(c, 503, "out of memory");
		}
	}
	return 0;
}

/* Streamed body bytes: to the sink when it can take them, else held for it. */
static int stream_body(struct http_conn *c, struct req *r, const char *at, size_t len)
{
	if (c->streaming == r && r->sink_data && !r->paused && !c->in_sink && r->held_len == 0) {
		c->in_sink = 1;
		int answer = r->sink_data(r->sink_arg, at, len);
		c->in_sink = 0;
		if (c->stream_cut)
			return -1;   /* answered from inside the sink: r is gone */
		if (answer == HTTP_SINK_PAUSE)
			r->paused = 1;
		return 0;
	}
	if (buf_reserve(&r->held, &r->held_cap, r->held_len, len, r->max_body) < 0)
		return refuse(c, 503, "out of memory");
	memcpy(r->held + r->held_len, at, len);
	r->held_len += len;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct req *r = parsing_req(c);
	if (c->stream_cut)
		return -1;
	if (!r)
		return refuse(c, 400, "no request");
	size_t max_body = r->max_body;
	if (len > max_body || r->received > max_body - len)
		return refuse(c, 413, "body too large");
	r->received += len;
	if (r->pub.body_streamed)
		return stream_body(c, r, at, len);
	if (buf_reserve(&r->body_buf, &r->body_cap, r->pub.body_len, len + 1, max_body + 1) < 0)
		return refuse(c, 503, "out of memory");
	memcpy(r->body_buf + r->pub.body_len, at, len);
	r->pub.body_len += len;
	return 0;
}

static int on_chunk_header(http_parser *p)
{
	struct http_conn *c = p->data;
	struct req *r = parsing_req(c);
	if (c->stream_cut)
		return -1;
	if (!r)
		return refuse(c, 400, "no request");
	/* p->content_length is the announced chunk size: refuse before reading it */
	if (p->content_length > r->max_body - r->received)
		return refuse(c, 413, "body too large");
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct req *r = parsing_req(c);
	if (c->stream_cut)
		return -1;
	if (!r || !c->headers_done)
		return refuse(c, 400, "incomplete request");
	if (r->pub.body_streamed) {
		r->body_over = 1;   /* the end goes to the sink after any held bytes */
		r->end_status = 0;
		r->keep_alive = http_should_keep_alive(p);
		c->msg_done = 1;
		http_parser_pause(p, 1);
		return 0;
	}
	if (r->body_buf) {
		r->body_buf[r->pub.body_len] = '\0';
		r->pub.body = r->body_buf;
	} else {
		r->pub.body = "";
	}
	r->keep_alive = http_should_keep_alive(p);
	r->upgrade = p->upgrade;
	memcpy(r->pub.peer, c->peer, sizeof(r->pub.peer));
	c->msg_done = 1;
	http_parser_pause(p, 1);   /* one request at a time */
	return 0;
}

/* ------------------------------------------------------------------------ */
/* connections */

static void conn_enter(struct http_conn *c, enum conn_state next)
{
	if (c->state != next)
		log_debug("http", "ev=conn_state peer=%s from=%s to=%s", c->peer,
			  conn_state_names[c->state], conn_state_names[next]);
	c->state = next;
}

static void conn_unlink(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	if (!srv)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	srv->nconns--;
	ipcount_release(srv->ips, c->ipc);
	c->ipc = NULL;
	c->srv = NULL;
}

/* ------------------------------------------------------------------------ */
/* TLS */

/* Notes a fatal TLS error on c (no close_notify after it) and logs why. */
static void tls_failure(struct http_conn *c, const char *during, int ssl_error)
{
	char err[200];
	netio_tls_reason(ssl_error, errno, err, sizeof(err));
	c->tls.failed = 1;
	log_debug("http", "ev=tls_error peer=%s during=%s ssl_error=%d err=\"%s\"", c->peer, during,
		  ssl_error, err);
}

/* Reads and writes on c's socket or TLS (netio.c); a TLS failure is logged here. */
static ssize_t conn_recv(struct http_conn *c, char *buf, size_t len)
{
	char err[200];
	ssize_t n = netio_recv(c->fd, c->ssl, &c->tls, buf, len, err, sizeof(err));
	if (n < 0 && errno == EPROTO && c->ssl)
		log_debug("http", "ev=tls_error peer=%s during=read err=\"%s\"", c->peer, err);
	return n;
}

static ssize_t conn_send(struct http_conn *c, const char *buf, size_t len)
{
	char err[200];
	ssize_t n = netio_send(c->fd, c->ssl, &c->tls, buf, len, 0, err, sizeof(err));
	if (n < 0 && errno == EPROTO && c->ssl)
		log_debug("http", "ev=tls_error peer=%s during=write err=\"%s\"", c->peer, err);
	return n;
}

/* Frees the connection's SSL; close_notify first (one nonblocking try) when the link is healthy. */
static void tls_drop(struct http_conn *c)
{
	if (!c->ssl)
		return;
	ERR_clear_error();
	if (c->tls_up && !c->tls.failed && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	SSL_free(c->ssl);
	c->ssl = NULL;
}

/* Drives SSL_accept; once done the connection reads HTTP. */
static void conn_handshake(struct http_conn *c)
{
	ERR_clear_error();
	int r = SSL_accept(c->ssl);
	if (r == 1) {
		c->tls_up = 1;
		log_debug("http", "ev=tls_established peer=%s version=%s cipher=%s resumed=%d", c->peer,
			  SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), SSL_session_reused(c->ssl));
		conn_enter(c, CONN_READING);
		ev_io_stop(c->loop, &c->wio);
		ev_io_start(c->loop, &c->rio);
		c->timer.repeat = c->srv ? c->srv->idle_timeout : HTTP_DEFAULT_IDLE;
		ev_timer_again(c->loop, &c->timer);
		conn_on_readable(c);   /* the request may have come with the client's Finished */
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ev_io_stop(c->loop, &c->wio);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		ev_io_start(c->loop, &c->wio);
		return;
	}
	tls_failure(c, "handshake", e);
	conn_close(c, "tls_handshake_failed");
}

/* ------------------------------------------------------------------------ */

static void conn_stop_io(struct http_conn *c)
{
	if (c->loop) {
		ev_io_stop(c->loop, &c->rio);
		ev_io_stop(c->loop, &c->wio);
		ev_timer_stop(c->loop, &c->timer);
	}
	tls_drop(c);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

static void conn_destroy(struct http_conn *c)
{
	conn_stop_io(c);
	conn_unlink(c);
	req_free(c->cur);
	free(c->in);
	free(c->out);
	free(c);
}

/* 1 when the streaming request's sink may be called now. */
static int stream_ready(const struct http_conn *c)
{
	return c->streaming && c->streaming->sink_data && !c->streaming->paused && !c->in_sink;
}

/* Has the sink fed from the event loop (never from inside a handler or sink call). */
static void stream_kick(struct http_conn *c)
{
	if (c->running || !c->loop)
		return;    /* conn_run's loop (or http_parse_buffer's) goes on by itself */
	ev_feed_event(c->loop, &c->wio, EV_WRITE);
}

/* The socket is gone; the connection lives on only for its pending request. */
static void conn_kill(struct http_conn *c)
{
	struct req *s = c->streaming;
	if (s) {   /* its sink learns it at its next turn */
		s->held_len = 0;
		s->body_over = 1;
		s->end_status = -1;
	}
	conn_stop_io(c);
	conn_unlink(c);
	req_free(c->cur);
	c->cur = NULL;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_off = c->in_cap = 0;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
	conn_enter(c, CONN_DEAD);
	if (s && stream_ready(c))
		stream_kick(c);
}

static void conn_close(struct http_conn *c, const char *reason)
{
	log_debug("http", "ev=conn_close peer=%s state=%s reason=\"%s\"", c->peer,
		  conn_state_names[c->state], reason);
	if (c->state == CONN_PENDING || c->state == CONN_DEAD || c->state == CONN_STREAMING)
		conn_kill(c);
	else
		conn_destroy(c);
}

/* Queues a final error response; the connection closes after it. */
static void conn_send_error(struct http_conn *c, int status, const char *msg)
{
	char body[256], head[256];
	int bl = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
			  status_code_name(status), msg);
	if (bl < 0 || (size_t)bl >= sizeof(body))
		bl = 0;
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s"
			  "Content-Length: %d\r\nConnection: close\r\n\r\n",
			  status, http_status_text(status), status == 503 ? "Retry-After: 1\r\n" : "", bl);
	if (hl < 0 || (size_t)hl >= sizeof(head))
		hl = 0;
	log_debug("http", "ev=request_error peer=%s status=%d msg=\"%s\"", c->peer, status, msg);
	c->err_status = status;
	req_free(c->cur);
	c->cur = NULL;
	c->close_after = 1;
	if (out_append(c, head, (size_t)hl) < 0 || out_append(c, body, (size_t)bl) < 0)
		c->out_off = c->out_len = 0;   /* nothing sane to send: just close */
}

/* A streamed body is refused (bad framing, too large): its sink gets the status as its end. */
static void stream_refuse(struct http_conn *c, int status, const char *msg)
{
	struct req *r = c->streaming;
	log_debug("http", "ev=stream_refused peer=%s status=%d msg=\"%s\" received=%zu", c->peer, status, msg,
		  r->received);
	r->held_len = 0;
	r->body_over = 1;
	r->end_status = status;
	c->err_status = status;
	c->close_after = 1;
	c->unread_body = 1;
}

/* Hands a streamed request to the handler once its headers are parsed. */
static void stream_dispatch(struct http_conn *c)
{
	struct req *r = c->cur;
	c->cur = NULL;
	c->stream_dispatch = 0;
	if (c->msg_done) {   /* the whole body came with the headers */
		c->msg_done = 0;
		c->head_bytes = 0;
		c->headers_done = 0;
		http_parser_pause(&c->parser, 0);
	}
	if (r->upgrade)
		r->keep_alive = 0;
	r->pub.body = "";
	memcpy(r->pub.peer, c->peer, sizeof(r->pub.peer));
	c->streaming = r;
	c->pending = r;
	conn_enter(c, CONN_STREAMING);
	c->srv->handler(&r->pub, c->srv->arg);
}

/* Feeds the parser once; may dispatch a request or refuse one. */
static void conn_parse_step(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	size_t feed = c->in_len - c->in_off;
	if (!c->headers_done) {
		if (c->head_bytes >= srv->max_header) {
			conn_send_error(c, 431, "header fields too large");
			return;
		}
		size_t room = srv->max_header - c->head_bytes;
		if (feed > room)
			feed = room;
	}
	size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_off, feed);
	if (n > feed)
		n = feed;
	c->in_off += n;
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

	if (c->stream_cut)
		return;    /* answered from its sink: the rest is never parsed */
	if (c->stream_dispatch && (e == HPE_OK || c->msg_done)) {
		stream_dispatch(c);
		return;
	}
	if (c->msg_done) {
		c->msg_done = 0;
		c->head_bytes = 0;
		c->headers_done = 0;
		http_parser_pause(&c->parser, 0);
		if (c->streaming)
			return;    /* conn_stream_step hands the end to the sink */
		struct req *r = c->cur;
		c->cur = NULL;
		if (r->upgrade)
			r->keep_alive = 0;   /* no protocol switch here: the rest is not HTTP */
		c->pending = r;
		conn_enter(c, CONN_PENDING);
		srv->handler(&r->pub, srv->arg);
		return;
	}
	if (e != HPE_OK) {
		int status = c->err_status ? c->err_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
		const char *msg = c->err_status ? c->err_msg
			: e == HPE_HEADER_OVERFLOW ? "header fields too large" : http_errno_description(e);
		c->stream_dispatch = 0;
		if (c->streaming)
			stream_refuse(c, status, msg);
		else
			conn_send_error(c, status, msg);
		return;
	}
	if (n < feed) {   /* the parser stopped without saying why */
		conn_send_error(c, 400, "unparsable request");
		return;
	}
	if (!c->headers_done)
		c->head_bytes += n;
}

/* A streaming request whose sink is ready: held bytes first, then its end, else parse more. */
static void conn_stream_step(struct http_conn *c)
{
	struct req *r = c->streaming;
	if (r->held_len) {
		size_t n = r->held_len;
		r->held_len = 0;
		c->in_sink = 1;
		int answer = r->sink_data(r->sink_arg, r->held, n);
		c->in_sink = 0;
		if (!c->stream_cut && answer == HTTP_SINK_PAUSE)
			r->paused = 1;
		return;
	}
	if (r->body_over) {
		c->streaming = NULL;
		if (c->state == CONN_STREAMING)
			conn_enter(c, CONN_PENDING);
		log_debug("http", "ev=stream_end peer=%s status=%d bytes=%zu", c->peer, r->end_status, r->received);
		r->sink_end(r->sink_arg, r->end_status);   /* may answer (and free a dead c) */
		return;
	}
	conn_parse_step(c);
}

/* Parses, dispatches and streams while the connection may; output dropped when discard_out. */
static void conn_run_steps(struct http_conn *c, int discard_out)
{
	for (;;) {
		if (c->state == CONN_READING && !c->close_after && c->in_off < c->in_len &&
		    c->out_len - c->out_off <= HTTP_OUT_HIGH_WATER)
			conn_parse_step(c);
		else if (c->state == CONN_STREAMING && stream_ready(c) &&
			 (c->streaming->held_len || c->streaming->body_over || c->in_off < c->in_len))
			conn_stream_step(c);
		else
			break;
		if (discard_out)
			c->out_off = c->out_len = 0;
	}
}

static struct http_conn *conn_alloc(struct http_server *srv, int fd)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->srv = srv;
	c->loop = srv->loop;
	c->fd = fd;
	c->state = CONN_READING;
	c->in_cap_max = srv->max_header + srv->max_body + HTTP_IN_SLACK;   /* no overflow: both <= SIZE_MAX/8 */
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	return c;
}

/* Writes queued output until done or EAGAIN.  0, or -1 on a socket error. */
static int conn_flush(struct http_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n == 0)
			errno = EPIPE;
		return -1;
	}
	c->out_off = c->out_len = 0;
	if (c->out_cap > 64u * 1024u) {   /* do not keep a burst's buffer on an idle conn */
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return 0;
}

/* The final response is out: close now, or linger so the peer reads it. */
static void conn_finish(struct http_conn *c)
{
	if (c->err_status == 0 && c->in_off == c->in_len && !c->unread_body) {
		conn_close(c, "done");
		return;
	}
	if (c->ssl && c->tls_up && !c->tls.failed) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);   /* close_notify, one try; the linger reads raw bytes from here */
		ERR_clear_error();
	}
	shutdown(c->fd, SHUT_WR);
	conn_enter(c, CONN_LINGER);
	ev_io_stop(c->loop, &c->wio);
	ev_io_start(c->loop, &c->rio);
	ev_timer_stop(c->loop, &c->timer);
	c->timer.repeat = HTTP_LINGER_SECONDS;
	ev_timer_again(c->loop, &c->timer);
}

/*
 * Seconds until the request being read breaks a deadline however active its
 * peer is (0: none applies): its headers must be complete header_timeout
 * after its first byte, and its body must average min_body_rate from
 * BODY_GRACE after the headers.  A peer that trickles a byte now and then
 * keeps a connection only that long, not for as long as it keeps trickling.
 */
static double next_deadline(const struct http_conn *c)
{
	const struct http_server *srv = c->srv;
	if (!srv || !c->loop || (c->state != CONN_READING && c->state != CONN_STREAMING) || c->close_after)
		return 0;
	double now = ev_now(c->loop);
	if (c->cur && !c->headers_done && c->req_start > 0) {
		double left = c->req_start + srv->header_timeout - now;
		return left > 0.001 ? left : 0.001;
	}
	struct req *r = parsing_req(c);
	if (r && c->headers_done && c->body_start > 0 && srv->min_body_rate > 0) {
		/* when the bytes received so far stop being enough */
		double due = c->body_start + HTTP_BODY_GRACE + (double)r->received / srv->min_body_rate;
		double left = due - now;
		return left > 0.001 ? left : 0.001;
	}
	return 0;
}

/* The deadline next_deadline() armed has passed: what was broken, or NULL. */
static const char *deadline_broken(const struct http_conn *c)
{
	const struct http_server *srv = c->srv;
	if (!srv || !c->loop || (c->state != CONN_READING && c->state != CONN_STREAMING) || c->close_after)
		return NULL;
	double now = ev_now(c->loop);
	if (c->cur && !c->headers_done && c->req_start > 0)
		return now - c->req_start >= srv->header_timeout ? "header_timeout" : NULL;
	struct req *r = parsing_req(c);
	if (r && c->headers_done && c->body_start > 0 && srv->min_body_rate > 0 &&
	    now - c->body_start >= HTTP_BODY_GRACE &&
	    (double)r->received < (now - c->body_start - HTTP_BODY_GRACE) * srv->min_body_rate)
		return "body_too_slow";
	return NULL;
}

/* After any progress: flush, then set watchers and timer for the state. */
static void conn_after_io(struct http_conn *c)
{
	if (c->fd < 0) {           /* http_parse_buffer: output goes nowhere */
		c->out_off = c->out_len = 0;
		return;
	}
	if (conn_flush(c) < 0) {
		conn_close(c, strerror(errno));
		return;
	}
	int backlog = c->out_off < c->out_len;
	if ((backlog && !c->tls.write_wants_read) || c->tls.read_wants_write)
		ev_io_start(c->loop, &c->wio);
	else
		ev_io_stop(c->loop, &c->wio);
	if (c->close_after && c->state == CONN_READING) {
		if (!backlog)
			conn_finish(c);
		else if (c->tls.write_wants_read)
			ev_io_start(c->loop, &c->rio);
		else
			ev_io_stop(c->loop, &c->rio);
		return;
	}
	/* a streamed body is not read while its sink cannot take it: that is the flow control */
	int stream_wait = c->state == CONN_STREAMING && (!stream_ready(c) || c->streaming->body_over);
	int room = !stream_wait && (c->in_len < c->in_cap || c->in_off > 0 || c->in_cap < c->in_cap_max);
	if (room || c->tls.write_wants_read)
		ev_io_start(c->loop, &c->rio);
	else
		ev_io_stop(c->loop, &c->rio);
	/* decrypted bytes waiting inside OpenSSL never make the socket readable */
	if (room && c->ssl && c->tls_up && SSL_has_pending(c->ssl))
		ev_feed_event(c->loop, &c->rio, EV_READ);
	/* time the handler's sink held the body back is not the client's slowness */
	if (stream_wait && c->wait_since == 0) {
		c->wait_since = ev_now(c->loop);
	} else if (!stream_wait && c->wait_since > 0) {
		if (c->body_start > 0)
			c->body_start += ev_now(c->loop) - c->wait_since;
		c->wait_since = 0;
	}
	if (c->state == CONN_PENDING || stream_wait) {
		ev_timer_stop(c->loop, &c->timer);
	} else {
		double t = c->srv ? c->srv->idle_timeout : HTTP_DEFAULT_IDLE, d = next_deadline(c);
		c->timer.repeat = d > 0 && d < t ? d : t;
		ev_timer_again(c->loop, &c->timer);
	}
}

/* Parses and dispatches buffered requests while the connection may. */
static void conn_run(struct http_conn *c)
{
	c->running = 1;
	conn_run_steps(c, 0);
	c->running = 0;
	if (c->detached) {         /* http_takeover() from inside the handler */
		free(c);
		return;
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	conn_after_io(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *c = w->data;
	(void)loop;
	(void)revents;
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake(c);
		return;
	}
	if (c->tls.write_wants_read && c->state != CONN_LINGER) {
		c->tls.write_wants_read = 0;   /* the blocked SSL_write goes first */
		conn_after_io(c);
		return;
	}
	conn_on_readable(c);
}

/* Input can be read (or buffered TLS data is waiting): read once, then run. */
static void conn_on_readable(struct http_conn *c)
{
	if (c->state == CONN_LINGER) {
		char sink[4096];
		ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
		if (n > 0)
			c->linger_bytes += (size_t)n;
		/* a peer that keeps sending a body nobody wants is cut off, not read for 2 s */
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
		    c->linger_bytes > HTTP_LINGER_BYTES)
			conn_destroy(c);
		return;
	}
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	size_t stream_cap = HTTP_STREAM_READ < c->in_cap_max ? HTTP_STREAM_READ : c->in_cap_max;
	if (c->state == CONN_STREAMING && c->in_cap < stream_cap &&
	    buf_reserve(&c->in, &c->in_cap, 0, stream_cap, c->in_cap_max) < 0) {
		conn_close(c, "out_of_memory");
		return;
	}
	if (c->in_len == c->in_cap) {
		size_t extra = c->in_cap ? c->in_cap : HTTP_IN_INITIAL;
		if (c->in_cap + extra > c->in_cap_max)
			extra = c->in_cap_max - c->in_cap;
		if (extra == 0 || buf_reserve(&c->in, &c->in_cap, c->in_len, extra, c->in_cap_max) < 0) {
			ev_io_stop(c->loop, &c->rio);   /* full: resume when parsing consumes */
			return;
		}
	}
	ssize_t n = conn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
	if (n < 0) {
		if (errno == EAGAIN) {
			if (c->tls.read_wants_write)
				ev_io_start(c->loop, &c->wio);
			return;
		}
		conn_close(c, c->ssl ? "tls_error" : strerror(errno));
		return;
	}
	if (n == 0) {
		conn_close(c, "peer_closed");
		return;
	}
	c->in_len += (size_t)n;
	if (c->state == CONN_READING || c->state == CONN_STREAMING)
		conn_run(c);
	else
		conn_after_io(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *c = w->data;
	(void)loop;
	(void)revents;
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake(c);
		return;
	}
	if (c->state == CONN_DEAD) {   /* fed by stream_kick: the sink learns the peer is gone */
		if (stream_ready(c))
			conn_stream_step(c);
		return;
	}
	if (c->tls.read_wants_write) {
		c->tls.read_wants_write = 0;   /* the blocked SSL_read goes first */
		conn_on_readable(c);
		return;
	}
	if ((c->state == CONN_READING && !c->close_after) || c->state == CONN_STREAMING)
		conn_run(c);
	else
		conn_after_io(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_conn *c = w->data;
	(void)loop;
	(void)revents;
	if (c->state == CONN_LINGER) {
		conn_destroy(c);
		return;
	}
	const char *why = deadline_broken(c);
	double idle = c->srv ? c->srv->idle_timeout : HTTP_DEFAULT_IDLE;
	if (!why && c->timer.repeat < idle) {
		conn_after_io(c);   /* armed for a deadline that is not quite due: arm again */
		return;
	}
	if (why)
		log_info("http", "ev=request_too_slow peer=%s why=%s", c->peer, why);
	conn_close(c, why ? why : c->state == CONN_HANDSHAKE ? "tls_handshake_timeout" : "idle_timeout");
}

/* ------------------------------------------------------------------------ */
/* responses */

static int has_content_type(const char *h)
{
	for (const char *line = h; line && *line; ) {
		if (strncasecmp(line, "Content-Type:", 13) == 0)
			return 1;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

void http_respond(struct http_request *pub, int status, const char *extra_headers,
		  const char *body, size_t body_len)
{
	if (!pub)
		return;
	struct req *r = (struct req *)pub;
	struct http_conn *c = r->conn;
	if (!c || c->pending != r) {   /* not ours to answer: refuse to corrupt state */
		log_warn("http", "ev=respond_unknown_request status=%d", status);
		return;
	}
	c->pending = NULL;
	if (c->streaming == r) {   /* answered before its body was over: the rest is never read */
		c->streaming = NULL;
		c->stream_cut = 1;
		c->unread_body = 1;
		c->close_after = 1;
	}
	if (c->state == CONN_DEAD) {
		log_debug("http", "ev=respond_dropped peer=%s status=%d reason=peer_gone", c->peer, status);
		if (c->loop) {   /* drop a stream_kick still queued for it */
			ev_io_stop(c->loop, &c->rio);
			ev_io_stop(c->loop, &c->wio);
		}
		req_free(r);
		free(c);
		return;
	}
	if (status < 100 || status > 999)
		status = 500;
	if (!body)
		body_len = 0;
	int closing = !r->keep_alive || c->close_after || (c->srv && c->srv->closed);
	char head[512];
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\n%s",
			  status, http_status_text(status),
			  has_content_type(extra_headers) ? "" : "Content-Type: application/json\r\n",
			  body_len,
			  closing ? "Connection: close\r\n"
				  : (r->http_minor == 0 ? "Connection: keep-alive\r\n" : ""));
	int fail = hl < 0 || (size_t)hl >= sizeof(head) ||
		   out_append(c, head, (size_t)hl) < 0 ||
		   (extra_headers && out_append(c, extra_headers, strlen(extra_headers)) < 0) ||
		   out_append(c, "\r\n", 2) < 0 ||
		   (!r->is_head && body_len && out_append(c, body, body_len) < 0);
	if (fail) {
		c->out_off = c->out_len = 0;
		closing = 1;
	}
	if (closing)
		c->close_after = 1;
	if (c->srv && c->srv->on_response && c->loop)
		c->srv->on_response(pub, status, ev_now(c->loop) - r->started, c->srv->arg);
	req_free(r);
	conn_enter(c, CONN_READING);
	if (c->running)
		return;    /* answered from inside the handler call: conn_run goes on */
	conn_run(c);
}

/* ------------------------------------------------------------------------ */
/* server */

static void format_peer(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else {
		snprintf(out, outlen, "unknown");
	}
}

static void refuse_overload(int fd)
{
	static const char resp[] =
		"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
		"Content-Length: 66\r\nConnection: close\r\n\r\n"
		"{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections\"}}";
	ssize_t n = send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_server *srv = w->data;
	(void)revents;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(srv->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* out of descriptors or memory: pause accepting briefly */
			log_warn("http", "ev=accept_error err=\"%s\"", strerror(errno));
			ev_io_stop(loop, &srv->accept_w);
			ev_timer_start(loop, &srv->accept_retry);
			return;
		}
		char peer[64];
		format_peer((struct sockaddr *)&ss, peer, sizeof(peer));
		if (srv->nconns >= srv->max_conns) {
			log_debug("http", "ev=conn_refused peer=%s reason=max_conns max=%u", peer, srv->max_conns);
			if (srv->tls_ctx)
				close(fd);     /* a plain 503 means nothing to a TLS client */
			else
				refuse_overload(fd);
			continue;
		}
		/* connections of one address: a few clients must not take every slot */
		char ip[48];
		ipcount_addr_of(peer, ip, sizeof(ip));
		struct ipcount_entry *ipc = ipcount_take(srv->ips, ip, srv->max_per_ip);
		if (!ipc) {
			log_debug("http", "ev=conn_refused peer=%s reason=max_conns_per_ip max=%u", peer, srv->max_per_ip);
			if (srv->tls_ctx)
				close(fd);
			else
				refuse_overload(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct http_conn *c = conn_alloc(srv, fd);
		if (!c) {
			log_warn("http", "ev=conn_refused peer=%s reason=out_of_memory", peer);
			ipcount_release(srv->ips, ipc);
			close(fd);
			continue;
		}
		c->ipc = ipc;
		memcpy(c->peer, peer, sizeof(c->peer));
		if (srv->tls_ctx) {
			ERR_clear_error();
			c->ssl = SSL_new(srv->tls_ctx);
			if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
				char e[200];
				log_warn("http", "ev=conn_refused peer=%s reason=tls_setup err=\"%s\"", peer,
					 netio_tls_errstr(e, sizeof(e)));
				SSL_free(c->ssl);
				free(c);
				close(fd);
				continue;
			}
			SSL_set_accept_state(c->ssl);
			c->state = CONN_HANDSHAKE;
		}
		ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
		ev_init(&c->timer, conn_timer_cb);
		c->rio.data = c->wio.data = c->timer.data = c;
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
		ev_io_start(loop, &c->rio);
		c->timer.repeat = srv->idle_timeout;
		ev_timer_again(loop, &c->timer);
	}
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct http_server *srv = w->data;
	(void)revents;
	ev_timer_stop(loop, w);
	if (!srv->closed)
		ev_io_start(loop, &srv->accept_w);
}

static void server_apply_config(struct http_server *srv, const struct http_config *cfg)
{
	srv->max_body = cfg->max_body ? cfg->max_body : HTTP_DEFAULT_MAX_BODY;
	srv->max_header = cfg->max_header ? cfg->max_header : HTTP_DEFAULT_MAX_HEADER;
	srv->wants_stream = cfg->wants_stream;
	srv->on_response = cfg->on_response;
	srv->idle_timeout = cfg->idle_timeout > 0 ? cfg->idle_timeout : HTTP_DEFAULT_IDLE;
	srv->header_timeout = cfg->header_timeout > 0 ? cfg->header_timeout : HTTP_DEFAULT_HEADER_TIMEOUT;
	srv->min_body_rate = cfg->min_body_rate > 0 ? cfg->min_body_rate : cfg->min_body_rate < 0 ? 0
			     : HTTP_DEFAULT_MIN_BODY_RATE;
	srv->max_per_ip = cfg->max_conns_per_ip ? cfg->max_conns_per_ip : HTTP_DEFAULT_PER_IP;
	srv->max_conns = cfg->max_conns ? cfg->max_conns : HTTP_DEFAULT_MAX_CONNS;
	/* keep sums far from overflow */
	if (srv->max_body > SIZE_MAX / 8)
		srv->max_body = SIZE_MAX / 8;
	srv->max_upload = cfg->max_upload > srv->max_body ? cfg->max_upload : srv->max_body;
	if (srv->max_upload > SIZE_MAX / 8)
		srv->max_upload = SIZE_MAX / 8;
	srv->upload_prefix[0] = '\0';
	if (cfg->upload_prefix && strlen(cfg->upload_prefix) < sizeof(srv->upload_prefix))
		snprintf(srv->upload_prefix, sizeof(srv->upload_prefix), "%s", cfg->upload_prefix);
	if (srv->max_header > SIZE_MAX / 8)
		srv->max_header = SIZE_MAX / 8;
}

struct http_server *http_server_new(struct ev_loop *loop, const struct http_config *cfg,
				    http_handler_fn handler, void *arg, char *err, size_t errlen)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!loop || !cfg || !cfg->listen || !handler) {
		snprintf(err, errlen, "http_server_new: missing loop, config, listen or handler");
		return NULL;
	}
	struct http_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->loop = loop;
	srv->handler = handler;
	srv->arg = arg;
	server_apply_config(srv, cfg);
	snprintf(srv->listen, sizeof(srv->listen), "%s", cfg->listen);
	if (!(srv->ips = ipcount_new())) {
		snprintf(err, errlen, "out of memory");
		free(srv);
		return NULL;
	}
	if ((cfg->tls_cert && *cfg->tls_cert) || (cfg->tls_key && *cfg->tls_key)) {
		srv->tls_ctx = netio_tls_server_ctx(cfg->tls_cert, cfg->tls_key, cfg->tls_min_version, err, errlen);
		if (!srv->tls_ctx) {
			ipcount_free(srv->ips);
			free(srv);
			return NULL;
		}
	}
	srv->fd = netio_bind(cfg->listen, &srv->port, err, errlen);
	if (srv->fd < 0) {
		SSL_CTX_free(srv->tls_ctx);
		ipcount_free(srv->ips);
		free(srv);
		return NULL;
	}
	ev_io_init(&srv->accept_w, accept_cb, srv->fd, EV_READ);
	srv->accept_w.data = srv;
	ev_timer_init(&srv->accept_retry, accept_retry_cb, HTTP_ACCEPT_RETRY, 0.);
	srv->accept_retry.data = srv;
	log_info("http", "ev=bound addr=%s port=%d tls=%s max_body=%zu max_header=%zu max_conns=%u",
		 srv->listen, srv->port, srv->tls_ctx ? "yes" : "no", srv->max_body, srv->max_header,
		 srv->max_conns);
	if (!cfg->deferred && http_server_open(srv, err, errlen) < 0) {
		http_server_free(srv);
		return NULL;
	}
	return srv;
}

int http_server_open(struct http_server *srv, char *err, size_t errlen)
{
	if (!srv || srv->open)
		return 0;
	if (srv->closed || listen(srv->fd, 1024) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", srv->listen, srv->closed ? "closed" : strerror(errno));
		return -1;
	}
	srv->open = 1;
	ev_io_start(srv->loop, &srv->accept_w);
	log_info("http", "ev=listen addr=%s port=%d", srv->listen, srv->port);
	return 0;
}

int http_server_is_tls(const struct http_server *srv)
{
	return srv && srv->tls_ctx;
}

int http_server_port(const struct http_server *srv)
{
	return srv ? srv->port : 0;
}

unsigned http_server_connections(const struct http_server *srv)
{
	return srv ? srv->nconns : 0;
}

void http_server_close(struct http_server *srv)
{
	if (!srv || srv->closed)
		return;
	srv->closed = 1;
	ev_io_stop(srv->loop, &srv->accept_w);
	ev_timer_stop(srv->loop, &srv->accept_retry);
	if (srv->fd >= 0) {
		close(srv->fd);
		srv->fd = -1;
	}
	log_info("http", "ev=close addr=%s conns=%u", srv->listen, srv->nconns);
	struct http_conn *next;
	for (struct http_conn *c = srv->conns; c; c = next) {
		next = c->next;
		c->close_after = 1;
		if (c->state == CONN_PENDING || c->state == CONN_STREAMING)
			continue;          /* answered, then closed */
		if (c->state == CONN_READING && c->out_off < c->out_len)
			continue;          /* finishing a response, then closed */
		conn_destroy(c);
	}
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	http_server_close(srv);
	struct http_conn *next;
	for (struct http_conn *c = srv->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_PENDING || c->state == CONN_STREAMING)
			conn_kill(c);      /* freed by http_respond() */
		else
			conn_destroy(c);
	}
	ipcount_free(srv->ips);
	SSL_CTX_free(srv->tls_ctx);
	free(srv);
}

/* ------------------------------------------------------------------------ */

int http_parse_buffer(const struct http_config *cfg, const char *data, size_t len,
		      http_handler_fn handler, void *arg)
{
	if (!cfg || !handler || (!data && len))
		return 400;
	struct http_server srv;
	memset(&srv, 0, sizeof(srv));
	srv.handler = handler;
	srv.arg = arg;
	srv.fd = -1;
	server_apply_config(&srv, cfg);
	struct http_conn *c = conn_alloc(&srv, -1);
	if (!c)
		return 503;
	snprintf(c->peer, sizeof(c->peer), "buffer");
	c->in = (char *)data;      /* borrowed: never written, never freed */
	c->in_len = c->in_cap = c->in_cap_max = len;
	c->running = 1;
	conn_run_steps(c, 1);
	int status = c->err_status;
	if (c->state == CONN_PENDING || c->state == CONN_STREAMING) {
		/* the handler broke its promise to answer synchronously */
		log_warn("http", "ev=parse_buffer_unanswered");
		req_free(c->pending);
		c->pending = NULL;
		c->streaming = NULL;
	}
	c->in = NULL;
	c->srv = NULL;
	req_free(c->cur);
	free(c->out);
	free(c);
	return status;
}

/* ------------------------------------------------------------------------ */

/*
 * Hands the socket of a pending request to the caller (protocol upgrade).
 * After an upgrade request every byte behind it belongs to the new
 * protocol; behind a plain request such bytes are a pipelined request,
 * and a response still queued must leave first: both refuse.  The
 * connection's buffers go, the fd stays open; when called from inside
 * the handler, conn_run() frees the struct once the handler returns.
 */
static int takeover(struct http_request *pub, int *fd, SSL **ssl, char **extra, size_t *extra_len)
{
	if (!pub || !fd || !extra || !extra_len)
		return -1;
	struct req *r = (struct req *)pub;
	struct http_conn *c = r->conn;
	if (!c || c->pending != r || c->state != CONN_PENDING || c->fd < 0 || !c->srv ||
	    c->srv->closed || c->close_after)
		return -1;
	if (c->ssl && (!ssl || !c->tls_up || c->tls.failed || c->tls.read_wants_write || c->tls.write_wants_read)) {
		log_debug("http", "ev=takeover_refused peer=%s reason=tls", c->peer);
		return -1;
	}
	size_t left = c->in_len - c->in_off;
	if (left > 0 && !r->upgrade) {
		log_debug("http", "ev=takeover_refused peer=%s reason=pipelined bytes=%zu", c->peer, left);
		return -1;
	}
	if (conn_flush(c) < 0 || c->out_off < c->out_len) {
		log_debug("http", "ev=takeover_refused peer=%s reason=output_pending", c->peer);
		return -1;
	}
	char *copy = NULL;
	if (left > 0) {
		copy = malloc(left);
		if (!copy)
			return -1;
		memcpy(copy, c->in + c->in_off, left);
	}
	log_debug("http", "ev=takeover peer=%s extra=%zu", c->peer, left);
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_timer_stop(c->loop, &c->timer);
	*fd = c->fd;
	*extra = copy;
	*extra_len = left;
	if (ssl)
		*ssl = c->ssl;
	c->ssl = NULL;
	c->fd = -1;
	conn_unlink(c);
	c->pending = NULL;
	req_free(r);
	req_free(c->cur);
	c->cur = NULL;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_off = c->in_cap = 0;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
	if (c->running) {
		c->detached = 1;
		conn_enter(c, CONN_DEAD);   /* stops conn_run's loop; it frees c */
	} else {
		free(c);
	}
	return 0;
}

int http_takeover(struct http_request *pub, int *fd, char **extra, size_t *extra_len)
{
	return takeover(pub, fd, NULL, extra, extra_len);
}

int http_takeover_tls(struct http_request *pub, int *fd, SSL **ssl, char **extra, size_t *extra_len)
{
	if (!ssl)
		return -1;
	*ssl = NULL;
	return takeover(pub, fd, ssl, extra, extra_len);
}

/* ------------------------------------------------------------------------ */
/* streamed bodies */

int http_request_set_sink(struct http_request *pub, http_sink_data_fn on_data, http_sink_end_fn on_end, void *arg)
{
	if (!pub || !on_data || !on_end)
		return -1;
	struct req *r = (struct req *)pub;
	struct http_conn *c = r->conn;
	if (!c || c->pending != r || c->streaming != r || r->sink_data || c->state == CONN_DEAD)
		return -1;
	r->sink_data = on_data;
	r->sink_end = on_end;
	r->sink_arg = arg;
	if (r->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		r->expect_continue = 0;
		if (c->fd >= 0 && out_append(c, cont, sizeof(cont) - 1) < 0)
			log_warn("http", "ev=continue_lost peer=%s", c->peer);   /* the client sends the body anyway */
	}
	stream_kick(c);
	return 0;
}

static int collect_data(void *arg, const char *data, size_t len)
{
	struct req *r = arg;
	if (len > r->collect_limit || r->pub.body_len > r->collect_limit - len) {
		r->collect_limit = 0;
		r->collect_fn(&r->pub, 413, r->collect_arg);   /* answers: the rest is never read */
		return HTTP_SINK_PAUSE;
	}
	if (buf_reserve(&r->body_buf, &r->body_cap, r->pub.body_len, len + 1, r->collect_limit + 1) < 0) {
		r->collect_fn(&r->pub, 503, r->collect_arg);
		return HTTP_SINK_PAUSE;
	}
	memcpy(r->body_buf + r->pub.body_len, data, len);
	r->pub.body_len += len;
	return HTTP_SINK_MORE;
}

static void collect_end(void *arg, int status)
{
	struct req *r = arg;
	if (status == 0) {
		if (!r->body_buf && !(r->body_buf = malloc(1))) {
			r->collect_fn(&r->pub, 503, r->collect_arg);
			return;
		}
		r->body_buf[r->pub.body_len] = '\0';
		r->pub.body = r->body_buf;
		r->pub.body_streamed = 0;
	}
	r->collect_fn(&r->pub, status, r->collect_arg);
}

int http_request_read_body(struct http_request *pub, size_t limit, http_body_fn fn, void *arg)
{
	if (!pub || !fn || !pub->body_streamed)
		return -1;
	struct req *r = (struct req *)pub;
	r->collect_fn = fn;
	r->collect_arg = arg;
	r->collect_limit = limit;
	r->pub.body_len = 0;
	return http_request_set_sink(pub, collect_data, collect_end, r);
}

void http_request_resume(struct http_request *pub)
{
	if (!pub)
		return;
	struct req *r = (struct req *)pub;
	struct http_conn *c = r->conn;
	if (!c || c->pending != r || c->streaming != r || !r->paused)
		return;
	r->paused = 0;
	if (!c->in_sink)
		stream_kick(c);
}
