/*
 * client.h: the carrier-facing SMPP engine (pushgate as ESME).
 *
 * One engine per process drives every configured route: its binds (TRX,
 * or TX+RX pairs), windows, TPS limit, failover, long and Unicode texts.
 * It leases queued recipients from PostgreSQL, submits them, and stores
 * every response and receipt through recipient.c's statements; a receipt is
 * acknowledged to the SMSC only after it is committed.
 */
#ifndef PUSHGATE_SMPP_CLIENT_H
#define PUSHGATE_SMPP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "codec.h"
#include "config.h"
#include "store.h"

struct smpp_client;

struct smpp_client *smpp_client_new(struct ev_loop *loop, struct store *store,
				    const struct config *cfg, const char *node);
/*
 * Receipts, parked receipts and bind stats on their own
 * store (connection); by default they share the store of leases and responses.
 */
void smpp_client_set_receipt_store(struct smpp_client *c, struct store *rstore);
void smpp_client_start(struct smpp_client *c);
/* New SMS work may be queued: look now instead of at the next poll. */
void smpp_client_kick(struct smpp_client *c);
/*
 * Reads route_pauses again (at each engine store connection, and when
 * pushgate_routes is notified): a paused route leases nothing, and a route
 * failing over to another hands it its queue.  Until the first read, no
 * route leases.
 */
void smpp_client_pauses_changed(struct smpp_client *c);
/* Stops leasing, gives back what is not sent, drains windows (at most grace seconds), unbinds. */
void smpp_client_stop(struct smpp_client *c, double grace);
/* 1 while work is still in flight (windows, batches not yet committed). */
int smpp_client_busy(const struct smpp_client *c);
/* "bound" when every route has a bound transmitter, "partial", or "down". */
const char *smpp_client_state(void *c);
/* Prometheus text: per-bind counters, SMSC response time per route. */
struct metrics_out;
void smpp_client_metrics(const struct smpp_client *c, struct metrics_out *o);
/* Seconds from intake to the final state of the receipts this node recorded (NULL without c). */
struct metrics_histogram;
const struct metrics_histogram *smpp_client_final_latency(const struct smpp_client *c);
void smpp_client_free(struct smpp_client *c);

/*
 * Mobile-originated messages (deliver_sm / data_sm that are not receipts)
 * go to fn, which calls done(ctx, status) once it stored them: the carrier
 * gets its deliver_sm_resp with that status then.  Without fn they are
 * logged and acknowledged.
 */
typedef void (*smpp_client_mo_fn)(void *arg, const char *route, const struct smpp_pdu *pdu,
				  void (*done)(void *ctx, uint32_t status), void *ctx);
void smpp_client_on_mo(struct smpp_client *c, smpp_client_mo_fn fn, void *arg);

#endif
