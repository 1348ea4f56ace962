/*
 * router.h: the per-recipient state machine of ARCHITECTURE §2, as the SQL
 * statements that move recipients between states.  Every transition writes
 * the new state on the recipient row and one events row in the same
 * statement, so no state changes only in memory.  Callers (api.c, the SMPP
 * client) batch their parameters and run these through the store.
 */
#ifndef PUSHGATE_ROUTER_H
#define PUSHGATE_ROUTER_H

#include "store.h"

/*
 * Intake: one message and its recipients, ACCEPTED then (no push channel yet)
 * SMS_QUEUED on `route`.  $1 account_id, $2 sender, $3 body, $4 text[] of
 * MSISDNs, $5 route, $6 validity seconds.  Rows: message_id, recipient_id,
 * msisdn in request order.
 */
extern const struct store_stmt router_stmt_intake;

/* API key lookup: $1 bytea hash.  Rows: account id. */
extern const struct store_stmt router_stmt_auth;

/* One message as the status API's JSON: $1 message id, $2 account id.  One text column or no row. */
extern const struct store_stmt router_stmt_message_json;

/*
 * SMS queue lease: SMS_QUEUED -> SMS_SUBMITTED for up to $3 recipients of
 * route $2 whose next attempt is due, leased to node $1 for $4 seconds.
 * Rows: recipient_id, msisdn, sender, body.
 */
extern const struct store_stmt router_stmt_sms_lease;

/*
 * submit_sm_resp outcomes, batched: $1 bigint[] recipient ids, $2 text[]
 * normalised SMSC ids (NULL on error), $3 int[] command_status, $4 text[]
 * outcome 'ok' | 'perm' | 'temp', $5 first retry delay in seconds (doubles
 * per attempt), $6 text[] detail.  ok -> SMS_ACCEPTED, perm -> SMS_FAILED,
 * temp -> SMS_QUEUED with backoff.  Only recipients still SMS_SUBMITTED move.
 */
extern const struct store_stmt router_stmt_sms_resp;

/*
 * Receipts, batched: $1 route, $2 text[] normalised SMSC ids, $3 text[]
 * target state (SMS_DELIVERED | SMS_FAILED | SMS_EXPIRED, NULL for an
 * intermediate receipt), $4 int[] error code, $5 text[] raw receipt text.
 * Matched receipts finalise SMS_ACCEPTED recipients (duplicates only add a
 * receipt event); unmatched ones are parked in dlr_parked.
 */
extern const struct store_stmt router_stmt_sms_receipts;

/* Parked receipts whose SMSC id is now known are applied.  No parameters. */
extern const struct store_stmt router_stmt_apply_parked;

/*
 * Housekeeping: expired leases back to SMS_QUEUED, SMS_QUEUED past validity
 * -> SMS_EXPIRED, SMS_ACCEPTED past validity -> SMS_UNKNOWN.  No parameters.
 */
extern const struct store_stmt router_stmt_sweep;

#endif
