/*
 * ws.h: WebSocket server connections (RFC 6455) on the libev loop, with
 * wslay doing the framing.
 *
 * ws_accept() checks an upgrade request, takes the socket from http.c,
 * answers 101 and from then on delivers each complete text message to
 * on_text.  Pings every ping_interval; a peer silent for idle_timeout is
 * closed.  Messages over max_message close with 1009, binary frames with
 * 1003.  Memory per idle connection: 376 bytes of struct ws_conn plus
 * wslay's context (its two fixed 4 KiB frame buffers): about 9.2 KB in all
 * (measured over 9,900 idle connections); no other buffer is held while
 * nothing is in flight.
 */
#ifndef PUSHGATE_WS_H
#define PUSHGATE_WS_H

#include <stddef.h>
#include <ev.h>

#include "http.h"

struct ws_conn;

struct ws_callbacks {
	/*
	 * One complete text message, reassembled from its fragments.  It is
	 * valid UTF-8: wslay checks every text frame and fails the connection
	 * with 1007 itself (no on_text then).  data is not NUL-terminated and
	 * is valid only during the call; may be empty.  ws_send_text() and
	 * ws_close() may be called from here (not ws_accept's req, long gone).
	 * Not called once the connection is closing.
	 */
	void (*on_text)(struct ws_conn *c, const char *data, size_t len, void *arg);
	/*
	 * The connection is gone (peer close, error, timeout, ws_close); c is
	 * freed after this returns.  Called exactly once per connection that
	 * ws_accept() returned, only from the event loop: never from inside
	 * ws_accept(), ws_send_text() or ws_close().  code: the first close
	 * code sent or received (ours for ws_close, 1001 for the idle timeout,
	 * 1002/1003/1007/1008/1009 for a failed peer, the peer's own code, 1005
	 * for a close frame without one), 1006 when the socket dropped without
	 * a close frame.  Here ws_send_text() returns -1, ws_close() is a no-op,
	 * ws_user() and ws_peer() still work.
	 */
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

/*
 * Runs an already upgraded connection on fd (nonblocking; owned from now
 * on, closed on failure) exactly as ws_accept() does after its 101: for
 * the fuzzer and tests.  NULL when out of memory.
 */
struct ws_conn *ws_adopt(struct ev_loop *loop, int fd, const char *peer, const struct ws_config *cfg,
			 const struct ws_callbacks *cb, void *arg);

/*
 * Queues a text message (must be UTF-8; not checked).  wslay copies data:
 * it is the caller's again on return.  Never sends or calls back from
 * here; the loop writes it.  0, or -1 when closing/closed, out of memory,
 * or when the peer does not read and more than 1 MiB (or 4096 frames)
 * would be queued: that starts a close with 1008.
 */
int ws_send_text(struct ws_conn *c, const char *data, size_t len);

/*
 * Starts a close handshake with `code` (one a peer may receive, else 1000)
 * and `reason` (cut to 123 bytes); no on_text after this.  on_close
 * follows from the loop once the peer answered, or after 2 s.
 */
void ws_close(struct ws_conn *c, int code, const char *reason);

/* Owner's pointer, free for the caller. */
void ws_set_user(struct ws_conn *c, void *user);
void *ws_user(const struct ws_conn *c);

/* "127.0.0.1:5555" */
const char *ws_peer(const struct ws_conn *c);

/* Open connections (gauge). */
size_t ws_count(void);

#endif
