/*
 * session.h: one SMPP session as an ESME (we connect and bind).
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

enum sess_state { SESS_CLOSED, SESS_CONNECTING, SESS_TLS_HANDSHAKE, SESS_BINDING, SESS_BOUND, SESS_UNBINDING };

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
