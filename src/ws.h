/*
 * ws.h: WebSocket server connections (RFC 6455) on the libev loop, with
 * wslay doing the framing.
 *
 * ws_accept() checks an upgrade request, takes the socket from http.c,
 * answers 101 and from then on delivers each complete text message to
 * on_text.  Pings every ping_interval; a peer silent for idle_timeout is
 * closed.  Messages over max_message close with 1009, binary frames with
 * 1003.  Memory per idle connection is a few hundred bytes plus wslay's
 * context: no buffers are held while nothing is in flight.
 */
#ifndef PUSHGATE_WS_H
#define PUSHGATE_WS_H

#include <stddef.h>
#include <ev.h>

#include "http.h"

struct ws_conn;

struct ws_callbacks {
	/* one complete text message (UTF-8 checked by wslay? no: check it yourself) */
	void (*on_text)(struct ws_conn *c, const char *data, size_t len, void *arg);
	/* the connection is gone (peer close, error, timeout, ws_close); c is freed after this returns */
	void (*on_close)(struct ws_conn *c, int code, void *arg);
};

struct ws_config {
	size_t max_message;     /* bytes, default 65536 */
	double ping_interval;   /* seconds, default 30 */
	double idle_timeout;    /* seconds without any frame from the peer, default 3 * ping_interval */
};

/*
 * Upgrades req.  Returns the connection, or NULL after answering req itself
 * (400 for a bad handshake, 426 when it is not an upgrade, 503 on
 * resource exhaustion).  `arg` is passed to the callbacks.
 */
struct ws_conn *ws_accept(struct ev_loop *loop, struct http_request *req, const struct ws_config *cfg,
			  const struct ws_callbacks *cb, void *arg);

/* Queues a text message.  0, or -1 when closing/closed or out of memory. */
int ws_send_text(struct ws_conn *c, const char *data, size_t len);

/* Starts a close handshake with `code`; on_close follows once done (bounded). */
void ws_close(struct ws_conn *c, int code, const char *reason);

/* Owner's pointer, free for the caller. */
void ws_set_user(struct ws_conn *c, void *user);
void *ws_user(const struct ws_conn *c);

/* "127.0.0.1:5555" */
const char *ws_peer(const struct ws_conn *c);

/* Open connections (gauge). */
size_t ws_count(void);

#endif
