/*
 * http.h: a small HTTP/1.1 server on the libev loop (http-parser glue).
 *
 * Owns listening sockets, connections, request parsing and response
 * writing.  Knows nothing about routes: each complete request is handed to
 * one handler, which answers now or later (asynchronously, e.g. after a
 * database commit) with http_respond().  Bodies are bounded (413), headers
 * are bounded (431), and a connection closed by the peer while its request
 * is pending is noticed: http_respond() on it becomes a no-op.
 *
 * Streaming: for requests that the config's wants_stream() picks, the
 * handler is called as soon as the headers are complete (body empty,
 * body_streamed set) and receives the body through a sink it sets with
 * http_request_set_sink(), with flow control: while the sink says
 * HTTP_SINK_PAUSE the socket is not read, so a body of any size costs
 * the server one input buffer.
 *
 * A server whose config names tls_cert and tls_key speaks HTTPS: every
 * connection does a nonblocking TLS handshake first (bounded by
 * idle_timeout), then every byte goes through OpenSSL.
 */
#ifndef PUSHGATE_HTTP_H
#define PUSHGATE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>

struct http_server;
struct http_request;
struct ssl_st;        /* OpenSSL's SSL, for http_takeover_tls() */

enum http_method_id { HTTP_M_OTHER = 0, HTTP_M_GET, HTTP_M_POST, HTTP_M_PUT, HTTP_M_DELETE, HTTP_M_HEAD };

#define HTTP_MAX_HEADERS 32

struct http_header { const char *name; const char *value; };

/*
 * One request.  Owned by the server; valid from the handler call until
 * http_respond() is called for it (then freed).  Strings are NUL-terminated.
 */
struct http_request {
	enum http_method_id method;
	const char *method_name;     /* "GET", ... */
	const char *path;            /* "/v1/messages/12" without the query */
	const char *query;           /* "a=1&b=2" or "" */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned    n_headers;
	const char *body;            /* NUL-terminated copy, may contain NULs */
	size_t      body_len;
	char        peer[64];        /* "127.0.0.1:5555" */
	int         body_streamed;   /* 1: body not read yet, see http_request_set_sink() */
	void       *user;            /* free for the handler (e.g. a pending job) */
	int         admitted;        /* free for the handler: counted against its account's request rate */
	int         route;           /* free for the handler: which of its routes took it (on_response reads it) */
	/* private fields follow in http.c */
};

/* The handler must eventually call http_respond() exactly once for req. */
typedef void (*http_handler_fn)(struct http_request *req, void *arg);

/*
 * Called (with the handler's arg) once the headers of a request with a body
 * are complete; 1 to have that body streamed to a sink instead of buffered.
 * req has method, path, query and headers, no body.
 */
typedef int (*http_wants_stream_fn)(const struct http_request *req, void *arg);

/* What a sink's data callback answers. */
enum http_sink_answer { HTTP_SINK_MORE = 0, HTTP_SINK_PAUSE = 1 };
/* Body bytes in order; HTTP_SINK_PAUSE: no more calls until http_request_resume(). */
typedef int (*http_sink_data_fn)(void *arg, const char *data, size_t len);
/*
 * The body is over: status 0 when complete, 400 (bad chunk framing) or 413
 * (over the limit) when refused, -1 when the peer went away.  Called once,
 * never while paused; the handler still answers with http_respond().
 */
typedef void (*http_sink_end_fn)(void *arg, int status);

/*
 * Called (with the handler's arg) as each answer to a handled request is
 * written: its status and the seconds from its first byte (loop time).
 */
typedef void (*http_on_response_fn)(const struct http_request *req, int status, double seconds, void *arg);

struct http_config {
	const char *listen;          /* "127.0.0.1:8080" (port 0: pick one) */
	size_t      max_body;        /* bytes; larger -> 413 */
	size_t      max_upload;      /* bytes for paths under upload_prefix (0: max_body) */
	const char *upload_prefix;   /* e.g. "/v1/batches" (NULL: none) */
	http_wants_stream_fn wants_stream; /* NULL: every body is buffered whole */
	http_on_response_fn on_response;   /* NULL: none */
	size_t      max_header;      /* bytes of request line + headers; default 16 KiB -> 431 */
	double      idle_timeout;    /* seconds a keep-alive connection may idle, default 60 */
	unsigned    max_conns;       /* default 10000: beyond, new connections get 503 and close */
	unsigned    max_conns_per_ip; /* default 256: connections of one client address */
	double      header_timeout;  /* seconds from a request's first byte to its last header, default 10 */
	double      min_body_rate;   /* bytes/s a body must average after 10 s; default 1024, < 0: none */
	/* HTTPS: both NULL/empty = plain HTTP.  PEM files, read once by http_server_new. */
	const char *tls_cert;        /* certificate chain, leaf first */
	const char *tls_key;         /* its private key */
	const char *tls_min_version; /* "1.2" (default) or "1.3" */
	/* 1: http_server_new only binds the address; connections are refused
	 * until http_server_open() (a daemon opens once it can serve). */
	int         deferred;
};

/* NULL with a message in err when the address, the certificate or the key is unusable. */
struct http_server *http_server_new(struct ev_loop *loop, const struct http_config *cfg,
				    http_handler_fn handler, void *arg, char *err, size_t errlen);
/* Starts listening and accepting (once; 0 when already open), or -1 with err. */
int http_server_open(struct http_server *srv, char *err, size_t errlen);
/* 1 when the server speaks HTTPS. */
int http_server_is_tls(const struct http_server *srv);
/* Port actually bound (useful with port 0). */
int http_server_port(const struct http_server *srv);
/* Open connections (a gauge for /metrics; also lets tests see a close). */
unsigned http_server_connections(const struct http_server *srv);
/* Stops accepting, closes idle connections; pending requests may still be answered. */
void http_server_close(struct http_server *srv);
void http_server_free(struct http_server *srv);

/* Case-insensitive header lookup, NULL when absent. */
const char *http_header(const struct http_request *req, const char *name);

/*
 * Sends the response and releases req.  extra_headers is NULL or a block of
 * "Name: value\r\n" lines.  Content-Type is application/json unless
 * extra_headers sets one.  Safe to call after the peer has gone.
 */
void http_respond(struct http_request *req, int status, const char *extra_headers,
		  const char *body, size_t body_len);

/*
 * For a request with body_streamed set: where its body goes ("Expect:
 * 100-continue" is answered now, not with the headers).  The sink is
 * first called after this returns (from the event loop, or after the
 * handler returns when set from inside it); on_data never runs while the
 * sink is paused nor inside another sink call.  A response sent before the
 * body is over ends the stream: no more sink calls, the rest of the body
 * is never read and the connection closes after the response.  Until the
 * sink is set, the socket is not read.  0, or -1 (not a streamed request,
 * sink already set, or the connection is gone: answer it, a no-op).
 */
int http_request_set_sink(struct http_request *req, http_sink_data_fn on_data, http_sink_end_fn on_end,
			  void *arg);
/* Undoes a HTTP_SINK_PAUSE: the sink gets the next bytes (or its end) from the event loop. */
void http_request_resume(struct http_request *req);

/*
 * For a request with body_streamed set, once the handler has decided it
 * wants the body (e.g. after checking the key from the headers): reads it
 * whole, at most `limit` bytes, then calls fn from the event loop with
 * status 0 and req->body / body_len set (body_streamed cleared), or with
 * 413 (over limit: the rest is never read), 400 (bad framing), 503 (no
 * memory) or -1 (the peer went away); the handler answers in every case.
 * "Expect: 100-continue" is answered only now.  0, or -1 as for
 * http_request_set_sink.
 */
typedef void (*http_body_fn)(struct http_request *req, int status, void *arg);
int http_request_read_body(struct http_request *req, size_t limit, http_body_fn fn, void *arg);

/* Reason phrase for a status code ("Accepted"). */
const char *http_status_text(int status);

/*
 * For the fuzzer and unit tests: feeds raw bytes through the same parser
 * the server uses, with the same limits; calls handler for each complete
 * request (which must respond synchronously).  Returns 0, or the HTTP status
 * the server would answer with before closing (400, 413, 431).
 */
int http_parse_buffer(const struct http_config *cfg, const char *data, size_t len,
		      http_handler_fn handler, void *arg);

/*
 * Takes the connection of `req` away from the HTTP server (for a protocol
 * upgrade).  On success the server forgets the connection and frees req;
 * the caller owns *fd (nonblocking) and the *extra_len bytes the client
 * already sent after the request (*extra is malloc'd, or NULL when none).
 * Fails (-1, req still pending) when other requests are pipelined behind
 * this one or the connection is already gone, and on a TLS connection
 * (whose bytes only http_takeover_tls can hand over).
 */
int http_takeover(struct http_request *req, int *fd, char **extra, size_t *extra_len);

/*
 * The same for plain and TLS connections: *ssl is the connection's
 * established SSL (the caller owns it now: SSL_read/SSL_write on *fd,
 * SSL_free when done; decrypted bytes may already wait in it, see
 * SSL_has_pending), or NULL on a plain connection.
 */
int http_takeover_tls(struct http_request *req, int *fd, struct ssl_st **ssl, char **extra, size_t *extra_len);

#endif
