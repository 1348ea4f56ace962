/*
 * client.h: the carrier-facing SMPP engine, first cut: one route, one
 * transceiver bind.  Leases queued recipients from PostgreSQL, submits them
 * within the window, stores each response and receipt through the router's
 * statements, and answers deliver_sm only after the receipt is committed.
 */
#ifndef PUSHGATE_SMPP_CLIENT_H
#define PUSHGATE_SMPP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "config.h"
#include "store.h"

struct smpp_client;

struct smpp_client *smpp_client_new(struct ev_loop *loop, struct store *store,
				    const struct config *cfg, const char *node);
void smpp_client_start(struct smpp_client *c);
/* New SMS work may be queued: look now instead of at the next poll. */
void smpp_client_kick(struct smpp_client *c);
/* Stops leasing, drains the window (at most grace seconds), unbinds. */
void smpp_client_stop(struct smpp_client *c, double grace);
/* 1 while work is still in flight (window, batches not yet committed). */
int smpp_client_busy(const struct smpp_client *c);
/* "bound" or "down" */
const char *smpp_client_state(void *c);
void smpp_client_free(struct smpp_client *c);

/*
 * UTF-8 text to the submit_sm body: data_coding 0 when every character is
 * plain ASCII that GSM 03.38 writes the same way, else UCS-2 (8) with
 * surrogate pairs.  Returns the octet count, or -1 when out is too small.
 */
long smpp_client_encode_text(const char *utf8, size_t len, uint8_t *out, size_t cap, uint8_t *data_coding);

#endif
