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
 * The intake: a group of messages (any number of requests, from any door)
 * stored in one statement.  Each message gets its messages row, each
 * recipient its decided state (push first, SMS, scheduled, held, dropped)
 * and the events of that decision; a message whose (account, idempotency
 * key) exists already stores nothing and returns the original recipients
 * instead (replay = true).  No key may appear twice in one group.
 * Per message ($1..$18, arrays of one element per message): account id,
 * sender, text, channels ("push,sms"), push timeout s, sms_text, purpose,
 * send_at, validity s, opt_out_policy override, callback_url, idempotency
 * key, batch id, source, Kannel dlr_url and dlr_mask, SMPP account id and
 * registered_delivery.  Per recipient ($19..$22): message ordinal (1-based),
 * MSISDN, route (NULL: none), text (NULL: the message's).  Then $23 ad
 * window start hour, $24 end hour, $25 time zone, $26 ad prefix, $27 ad
 * opt-out line ({number}).
 * Rows, by message ordinal then recipient id: message_id, recipient_id,
 * msisdn, state, route, replay, message ordinal, notified.
 */
extern const struct store_stmt router_stmt_intake;

/* API key lookup: $1 bytea hash.  Rows: account id, role, name. */
extern const struct store_stmt router_stmt_auth;

/* Scheduled and held recipients released (see router.c). */
extern const struct store_stmt router_stmt_release;

/* One message as the status API's JSON: $1 message id, $2 account id.  One text column or no row. */
extern const struct store_stmt router_stmt_message_json;

/*
 * SMS queue lease: SMS_QUEUED -> SMS_SUBMITTED for up to $3 recipients of
 * the routes $2 (text[]: the route itself and those failing over to it)
 * whose next attempt is due, leased to node $1 for $4 seconds and moved to
 * route $5.  Rows: recipient_id, msisdn, sender, body, account_id, int[] of
 * the parts already accepted by the SMSC in earlier attempts.
 */
extern const struct store_stmt router_stmt_sms_lease;

/*
 * submit_sm_resp outcomes, one per recipient once all its parts were
 * answered: $1 bigint[] recipient ids, $2 text[] outcome 'ok' | 'perm' |
 * 'temp' | 'retry' | 'unknown', $3 int[] command_status, $4 text[] detail, $5 first
 * retry delay in seconds (doubles per attempt), $6 int[] parts, $7 text[]
 * first part's SMSC id; and the parts the SMSC accepted: $8 bigint[]
 * recipient ids, $9 int[] part numbers, $10 text[] normalised SMSC ids,
 * $11 text[] routes.  ok -> SMS_ACCEPTED, perm -> SMS_FAILED, unknown ->
 * SMS_UNKNOWN, temp -> SMS_QUEUED with backoff, retry -> SMS_QUEUED due now (accepted parts are kept and
 * not sent again).  Only recipients still SMS_SUBMITTED move.
 */
extern const struct store_stmt router_stmt_sms_resp;

/*
 * Receipts, batched: $1 text[] routes, $2 text[] normalised SMSC ids, $3 text[]
 * target state (SMS_DELIVERED | SMS_FAILED | SMS_EXPIRED, NULL for an
 * intermediate receipt), $4 int[] error code, $5 text[] raw receipt text.
 * A receipt finalises its part; a recipient is final once all its parts
 * are (duplicates only add a receipt event); unmatched receipts are parked
 * in dlr_parked.  Rows: recipients finalised, receipts parked.
 */
extern const struct store_stmt router_stmt_sms_receipts;

/* Parked receipts whose SMSC id is now known are applied.  No parameters. */
extern const struct store_stmt router_stmt_apply_parked;

/*
 * Housekeeping: expired leases back to SMS_QUEUED (a resend event each), SMS_QUEUED past validity
 * -> SMS_EXPIRED, SMS_ACCEPTED past validity -> SMS_UNKNOWN, PUSH_SENT past
 * its push deadline -> SMS_QUEUED.  No parameters; one row of four counts.
 */
extern const struct store_stmt router_stmt_sweep;

/*
 * A restarted node's own SMS leases ($1 its name, node.c): SMS_SUBMITTED
 * back to SMS_QUEUED, due now, each a resend event.  Row: how many.
 */
extern const struct store_stmt router_stmt_take_back;

/*
 * Live SMPP bind counters of node $1, one row per bind: $2 route[], $3
 * bind[], $4 state[], $5 window_used[], $6 window_size[], $7..$16 counters
 * (submits, resp_ok, resp_temp, resp_perm, timeouts, receipts,
 * receipts_delivered, receipts_failed, throttled, reconnects).
 */
extern const struct store_stmt router_stmt_bind_stats;

/* Push channel.  Device hello: $1 text[] token hashes in hex -> rows (ordinal, device id, msisdn). */
extern const struct store_stmt router_stmt_device_auth;
/* Pending pushes: $1 text[] MSISDNs -> rows (recipient id, msisdn, sender, body, sent_at). */
extern const struct store_stmt router_stmt_push_pending;
/* Pushes of new messages: $1 bigint[] message ids -> same rows. */
extern const struct store_stmt router_stmt_push_of_messages;
/* Acks: $1 bigint[] recipient ids, $2 bigint[] device ids -> PUSH_DELIVERED (device must own the number). */
extern const struct store_stmt router_stmt_push_acks;
/* Reject: $1 msisdn, $2 sender, $3 device id -> opt-out + pending pushes to the policy. */
extern const struct store_stmt router_stmt_push_reject;
/* Allow: $1 msisdn, $2 sender, $3 device id -> opt-out cleared. */
extern const struct store_stmt router_stmt_push_allow;
/* Install invitations to numbers without the app, rate-limited per number (see router.c). */
extern const struct store_stmt router_stmt_invite;
/* Devices: registration, verification, logout, operator listing (see router.c). */
extern const struct store_stmt router_stmt_device_register;
extern const struct store_stmt router_stmt_code_scrub;
extern const struct store_stmt router_stmt_device_verify;
extern const struct store_stmt router_stmt_device_revoke;
extern const struct store_stmt router_stmt_devices_json;

/*
 * Reports (sql/functions/report_*.sql).  A report window's start: "YYYY-MM-DD"
 * (00:00 UTC) or "YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+HH[:MM]|-HH[:MM]]"
 * (UTC when no offset; a space may replace the T), checked field by field
 * (real calendar dates, year >= 1970), written to out as a timestamptz
 * literal PostgreSQL reads the same whatever its settings.  0 / -1.
 */
int router_parse_since(const char *in, char *out, size_t outlen);
#define ROUTER_SINCE_MAX 48

/*
 * The summary of GET /v1/reports/summary as one JSON text column:
 * report_account ($1 since, $2 account id; one row), report_named ($1
 * since, $2 account name; no row: no such account), report_all ($1 since;
 * every account).
 */
extern const struct store_stmt router_stmt_report_account;
extern const struct store_stmt router_stmt_report_named;
extern const struct store_stmt router_stmt_report_all;
/* report_batch: $1 since, $2 batch id, $3 account id (NULL: any).  No row: no such batch of this account. */
extern const struct store_stmt router_stmt_report_batch;

/* Kannel's sendsms: $1 bytea hash of the password (an API key), $2 account name.  Row: account id. */
extern const struct store_stmt router_stmt_kannel_auth;

/*
 * Campaigns.  batch_create: $1 account id, $2 name, $3 expected total ->
 * id (state LOADING).  batch_loaded: $1 id, $2 total loaded -> state
 * (RUNNING, or CANCELED when canceled while loading).  batch_json: $1 id, $2
 * account id -> the progress JSON (no row: not this account's batch);
 * marks a RUNNING batch DONE once every recipient is final.
 * batch_cancel: $1 id, $2 account id (NULL: any), $3 the batch's new
 * state (CANCELED | FAILED), $4 the events' detail (FAILED: also the
 * batch's error) -> one row (batch state, 1 if the batch changed state,
 * recipients canceled) or none (no such batch).  Recipients not yet handed
 * to a carrier nor acked (ACCEPTED, SCHEDULED, HELD, SMS_QUEUED,
 * PUSH_SENT, OPTED_OUT) become CANCELED with an event; the others go on.
 */
extern const struct store_stmt router_stmt_batch_create;
extern const struct store_stmt router_stmt_batch_loaded;
extern const struct store_stmt router_stmt_batch_json;
extern const struct store_stmt router_stmt_batch_cancel;

/* cancel_sm of one recipient by its ESME: $1 recipient id, $2 account id.  Row: canceled, exists. */
extern const struct store_stmt router_stmt_cancel_one;

#endif
