/*
 * server.h: pushgate as an SMSC for customers' ESMEs ([smpp_server]).
 *
 * ESMEs bind (transmitter, receiver, transceiver) with an SMPP account
 * (sql/008: PBKDF2 password hash, limits, allowed client networks); each
 * submit_sm / data_sm enters the same intake statement as the HTTP API and
 * is answered after the commit with pushgate's id of the recipient (hex).
 * Long messages (UDH, SAR, message_payload) are reassembled first.  Final
 * states come back as receipts (deliver_sm, esm_class 0x04) and carriers'
 * MO messages as deliver_sm, from a durable per-account outbox.
 */
#ifndef PUSHGATE_SMPP_SERVER_H
#define PUSHGATE_SMPP_SERVER_H

#include <stddef.h>
#include <ev.h>

#include "codec.h"
#include "config.h"
#include "intake.h"
#include "store.h"

struct smpp_server;

/*
 * NULL with err set when a listener's address can't be bound.  Nothing is
 * accepted before smpp_server_open.  Submits are stored through intake
 * (one message each; the queue tells the SMS engine); store holds binds,
 * queries and the outbox.
 */
struct smpp_server *smpp_server_new(struct ev_loop *loop, struct store *store, struct intake_queue *intake,
				    const struct config *cfg, const char *node, char *err, size_t errlen);
/* Starts listening and accepting (once; 0 when already open), or -1 with err. */
int smpp_server_open(struct smpp_server *srv, char *err, size_t errlen);
/*
 * Takes a connection accepted elsewhere (socket activation, tests, the fuzz
 * target) as if the listener had: tls = 1 needs [smpp_server] tls_listen's
 * context.  0, or -1 (fd closed).
 */
int smpp_server_adopt(struct smpp_server *srv, int fd, int tls);
/* Bound ports (0 when that listener is off), for logs and tests. */
int smpp_server_port(const struct smpp_server *srv);
int smpp_server_tls_port(const struct smpp_server *srv);
/* Stops accepting; answers what is in flight, unbinds every ESME (at most grace seconds). */
void smpp_server_stop(struct smpp_server *srv, double grace);
/* 1 while submits or outbox updates wait for the store, or sessions are open. */
int smpp_server_busy(const struct smpp_server *srv);
/* Prometheus text; bytes written (truncated to cap). */
struct metrics_out;
void smpp_server_metrics(const struct smpp_server *srv, struct metrics_out *o);
void smpp_server_free(struct smpp_server *srv);

/*
 * A mobile-originated message a carrier route delivered (deliver_sm that is
 * not a receipt): stored in mo_messages, opt-out keywords applied, and
 * queued for the owning SMPP account.  done(ctx, status) runs once it is
 * committed (status 0) or could not be (non-zero): the caller answers the
 * carrier then.  route: the carrier route's name.
 */
void smpp_server_mo(struct smpp_server *srv, const char *route, const struct smpp_pdu *pdu,
		    void (*done)(void *ctx, uint32_t status), void *ctx);

/* An account was disabled (NOTIFY pushgate_accounts): its ESMEs are unbound; new binds check the flag. */
void smpp_server_account_disabled(struct smpp_server *srv, long long account_id);
/* One SMPP login (smpp_accounts.id) was disabled: its binds are unbound the same way. */
void smpp_server_login_disabled(struct smpp_server *srv, long long smpp_account_id);

/* A restarted node's own outbox leases returned at once ($1 its name; node.c runs it). */
extern const struct store_stmt smpp_server_stmt_take_back;
/* The outbox's hot statements (smpp/outbox.c), for pushgatectl plan. */
extern const struct store_stmt smpp_server_stmt_outbox_lease, smpp_server_stmt_outbox_ack,
	smpp_server_stmt_outbox_release;

#endif
