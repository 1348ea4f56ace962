/*
 * session.h: one SMPP session, as an ESME (we connect and bind) or, after
 * smpp_session_accept(), as the SMSC side of a connection an ESME opened
 * (it binds; the owner checks the credentials and answers the bind).
 *
 * Explicit states with one enter function; a window of requests awaiting
 * their response, keyed by sequence number; a response timeout per PDU;
 * enquire_link on an idle link and answers to the peer's; reconnect with
 * capped exponential backoff and jitter; graceful unbind; optional TLS
 * (handshake between connect and bind, peer verification).  The owner sees
 * bound/down, each response (or its timeout) by tag, and each request the
 * peer sends, which it must answer with smpp_session_send().
 */
#ifndef PUSHGATE_SMPP_SESSION_H
#define PUSHGATE_SMPP_SESSION_H

#include <stdint.h>
#include <ev.h>

#include "codec.h"

/*
 * SESS_OPEN is the server side's first state (after a TLS handshake when
 * there is one): connected, waiting for a bind.  There, SESS_BINDING means
 * a bind arrived and its check is pending.
 */
enum sess_state { SESS_CLOSED, SESS_CONNECTING, SESS_TLS_HANDSHAKE, SESS_BINDING, SESS_BOUND, SESS_UNBINDING,
		  SESS_OPEN };

struct smpp_session;

/* Pseudo command_status for a response that never came. */
#define SMPP_STATUS_TIMEOUT   0xFFFFFFFFu
/* Pseudo command_status for a request lost with the connection. */
#define SMPP_STATUS_LINK_LOST 0xFFFFFFFEu

struct smpp_session_cb {
	void (*on_bound)(void *arg);
	void (*on_down)(void *arg);
	/* resp is NULL when status is SMPP_STATUS_TIMEOUT / LINK_LOST */
	void (*on_resp)(void *arg, uint64_t tag, uint32_t status, const struct smpp_pdu *resp);
	/* a request from the peer (deliver_sm, data_sm, ...) other than enquire_link/unbind */
	void (*on_request)(void *arg, const struct smpp_pdu *req);
	/*
	 * Server side only: a bind_transmitter/receiver/transceiver arrived in
	 * SESS_OPEN.  The owner answers it later with smpp_session_answer_bind().
	 * On the server side on_down runs once, whenever the connection closes
	 * (from any state); the owner must not free the session inside a callback.
	 */
	void (*on_bind)(void *arg, const struct smpp_pdu *bind);
};

struct smpp_session_config {
	const char *name;            /* for logs: the route */
	const char *host;
	int         port;
	const char *system_id, *password, *system_type;
	uint32_t    bind_command;    /* SMPP_BIND_TRANSCEIVER (default), _TRANSMITTER, _RECEIVER */
	unsigned    window;
	double      enquire_link;    /* idle seconds before enquire_link */
	double      response_timeout;
	double      reconnect_min, reconnect_max;
	int         tls;             /* TLS between connect and bind; every PDU encrypted */
	int         tls_verify;      /* check the peer's chain and name (else: warn, accept any) */
	const char *tls_ca_file;     /* PEM trust anchors; NULL or "" = the system's */
	const char *tls_server_name; /* SNI and the name checked; NULL or "" = host */
};

struct smpp_session *smpp_session_new(struct ev_loop *loop, const struct smpp_session_config *cfg,
				      const struct smpp_session_cb *cb, void *arg);
void smpp_session_free(struct smpp_session *s);

struct ssl_ctx_st;
/*
 * Server side: takes a connected socket an ESME opened (made nonblocking
 * here; closed by the session).  tls: a server SSL_CTX (owned by the caller,
 * must outlive the session) for a handshake before the bind, or NULL.
 * cfg->response_timeout bounds the handshake and the wait for a bind, and
 * each request we send; host/system_id/password are not used.  NULL (fd
 * closed) when out of memory.
 */
struct smpp_session *smpp_session_accept(struct ev_loop *loop, int fd, struct ssl_ctx_st *tls,
					 const struct smpp_session_config *cfg,
					 const struct smpp_session_cb *cb, void *arg);
/*
 * Server side: answers the pending bind.  status 0: bind_*_resp carrying
 * system_id, SESS_BOUND.  Else the error response leaves and the
 * connection closes.  -1 when no bind is pending.
 */
int smpp_session_answer_bind(struct smpp_session *s, uint32_t status, const char *system_id);
/* Server side: the bind command the ESME sent (0 before a bind). */
uint32_t smpp_session_bind_command(const struct smpp_session *s);

void smpp_session_start(struct smpp_session *s);
/* Unbinds (after the window drained, at most `grace` seconds), then stays closed. */
void smpp_session_stop(struct smpp_session *s, double grace);

enum sess_state smpp_session_state(const struct smpp_session *s);
const char *smpp_session_state_name(enum sess_state st);
unsigned smpp_session_window_free(const struct smpp_session *s);

/*
 * Sends a request (sequence number assigned here) and remembers `tag` until
 * its response.  -1 when not bound, the window is full or it doesn't encode.
 */
int smpp_session_request(struct smpp_session *s, struct smpp_pdu *pdu, uint64_t tag);

/* Sends a response (or anything without a window entry).  -1 when closed. */
int smpp_session_send(struct smpp_session *s, const struct smpp_pdu *pdu);

struct smpp_session_stats {
	uint64_t requests, responses, timeouts, received, reconnects;
};
const struct smpp_session_stats *smpp_session_stats(const struct smpp_session *s);

#endif
