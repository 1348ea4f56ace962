/*
 * recipient.h: the recipient state machine (docs/architecture.md section 4):
 * its transition table, the one list of final and of cancelable states, and
 * the SQL statements that move recipients between states.  Every transition
 * writes the new state on the recipient row and one events row in the same
 * statement, so no state changes only in memory.  Callers (the intake
 * queue, the SMS engine, the sweep, the push channel, devices, campaigns,
 * the SMPP server) batch their parameters and run these through the store.
 * Statements that never change a recipient's state are in stmts.h.
 */
#ifndef PUSHGATE_RECIPIENT_H
#define PUSHGATE_RECIPIENT_H

#include <stddef.h>

#include "store.h"

/*
 * States after which nothing more happens to a recipient, and the states a
 * cancel may stop (not yet handed to a carrier nor acked by a device), as
 * SQL lists, used by every statement here.  The SQL functions use
 * recipient_final() and recipient_cancelable()
 * (sql/functions/recipient_states.sql): t_schema fails when those lists and
 * these differ; test_recipient checks the transition table against them.
 */
#define RECIPIENT_FINAL_SQL \
	"'PUSH_DELIVERED', 'DROPPED', 'CANCELED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED', 'SMS_UNKNOWN'"
#define RECIPIENT_CANCELABLE_SQL "'ACCEPTED', 'SCHEDULED', 'HELD', 'SMS_QUEUED', 'PUSH_SENT', 'OPTED_OUT'"
/* Every state that is not final (test_recipient: the two lists cover every state, once). */
#define RECIPIENT_OPEN_SQL \
	"'ACCEPTED', 'SCHEDULED', 'HELD', 'PUSH_SENT', 'OPTED_OUT', 'SMS_QUEUED', 'SMS_SUBMITTED', 'SMS_ACCEPTED'"

/*
 * One edge of the state machine: from -> to, what takes it, and the
 * statement that writes it.  from "" is a recipient being created (its
 * ACCEPTED event is written with it); decided: to is what
 * recipient_decide() (sql/functions/) chooses, not a literal of the
 * statement.  recipient_edges[] is the table at the top of recipient.c;
 * `pushgatectl states` prints it.
 */
struct recipient_edge {
	const char              *from, *to;
	const char              *on;
	const struct store_stmt *stmt;
	int                      decided;
};

extern const struct recipient_edge recipient_edges[];
extern const size_t recipient_edges_count;

/* 1 when state is final (RECIPIENT_FINAL_SQL), else 0. */
int recipient_state_final(const char *state);

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
extern const struct store_stmt recipient_stmt_intake;

/* Scheduled and held recipients released: decided again (see recipient.c). */
extern const struct store_stmt recipient_stmt_release;

/*
 * SMS queue lease: SMS_QUEUED -> SMS_SUBMITTED for up to $3 recipients of
 * the routes $2 (text[]: the route itself and those failing over to it)
 * whose next attempt is due, leased to node $1 for $4 seconds and moved to
 * route $5.  Rows: recipient_id, msisdn, sender, body, account_id, int[] of
 * the parts already accepted by the SMSC in earlier attempts.
 */
extern const struct store_stmt recipient_stmt_sms_lease;

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
extern const struct store_stmt recipient_stmt_sms_resp;

/*
 * Receipts, batched: $1 text[] routes, $2 text[] normalised SMSC ids, $3 text[]
 * target state (SMS_DELIVERED | SMS_FAILED | SMS_EXPIRED, NULL for an
 * intermediate receipt), $4 int[] error code, $5 text[] raw receipt text.
 * A receipt finalises its part; a recipient is final once all its parts
 * are (duplicates only add a receipt event); unmatched receipts are parked
 * in dlr_parked.  Rows: recipients finalised, receipts parked.
 */
extern const struct store_stmt recipient_stmt_sms_receipts;

/* Parked receipts whose SMSC id is now known are applied.  No parameters. */
extern const struct store_stmt recipient_stmt_apply_parked;

/*
 * Housekeeping: expired leases back to SMS_QUEUED (a resend event each), SMS_QUEUED past validity
 * -> SMS_EXPIRED, SMS_ACCEPTED past validity -> SMS_UNKNOWN, PUSH_SENT past
 * its push deadline -> SMS_QUEUED.  No parameters; one row of four counts.
 */
extern const struct store_stmt recipient_stmt_sweep;

/*
 * A restarted node's own SMS leases ($1 its name, node.c): SMS_SUBMITTED
 * back to SMS_QUEUED, due now, each a resend event.  Row: how many.
 */
extern const struct store_stmt recipient_stmt_take_back;

/* Push acks: $1 bigint[] recipient ids, $2 bigint[] device ids -> PUSH_DELIVERED (device must own the number). */
extern const struct store_stmt recipient_stmt_push_acks;
/* Push reject: $1 msisdn, $2 sender, $3 device id -> opt-out + pending pushes to the policy. */
extern const struct store_stmt recipient_stmt_push_reject;
/* Install invitations to numbers without the app, rate-limited per number (see recipient.c). */
extern const struct store_stmt recipient_stmt_invite;
/* Device registration (its code SMS and the push to the number's apps) and the code's scrub (see recipient.c). */
extern const struct store_stmt recipient_stmt_device_register;
extern const struct store_stmt recipient_stmt_code_scrub;

/*
 * A campaign's recipients canceled: $1 id, $2 account id (NULL: any), $3
 * the batch's new state (CANCELED | FAILED), $4 the events' detail (FAILED:
 * also the batch's error) -> one row (batch state, 1 if the batch changed
 * state, recipients canceled) or none (no such batch).  Cancelable
 * recipients (RECIPIENT_CANCELABLE_SQL) become CANCELED with an event; the
 * others go on.
 */
extern const struct store_stmt recipient_stmt_batch_cancel;

/* cancel_sm of one recipient by its ESME: $1 recipient id, $2 account id.  Row: canceled, exists. */
extern const struct store_stmt recipient_stmt_cancel_one;

#endif
