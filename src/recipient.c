/*
 * recipient.c: the recipient state machine.  The transition table below
 * names every edge and the statement that takes it; the statements after it
 * are the only SQL in pushgate that writes recipients.state (t_layout fails
 * when another file does).  Each statement moves a whole batch in one round
 * trip (unnest of arrays) and writes one events row per transition in the
 * same statement, so the history and the current state can't disagree.
 * Guards on the current state (WHERE state = ...) make every transition
 * idempotent: a duplicate response or receipt moves nothing twice.
 * What decides a new or released recipient's state is SQL
 * (sql/functions/recipient_decide.sql), inlined into the statements.
 */
#include "recipient.h"

#include <stdio.h>
#include <string.h>

#include "ranges.h"

/* --- the transition table ------------------------------------------------------------ */

#define NEW ""   /* a recipient created by the statement */
#define DECIDED 1

/* A released recipient is decided again, like a new one. */
#define RELEASE_EDGES(FROM, ON) \
	{ FROM, "PUSH_SENT", ON, &recipient_stmt_release, DECIDED }, \
	{ FROM, "SMS_QUEUED", ON, &recipient_stmt_release, DECIDED }, \
	{ FROM, "SMS_FAILED", ON, &recipient_stmt_release, DECIDED }, \
	{ FROM, "OPTED_OUT", ON, &recipient_stmt_release, DECIDED }, \
	{ FROM, "DROPPED", ON, &recipient_stmt_release, DECIDED }

/* Every cancelable state (RECIPIENT_CANCELABLE_SQL) to CANCELED. */
#define CANCEL_EDGES(ON, STMT) \
	{ "ACCEPTED", "CANCELED", ON, STMT, 0 }, { "SCHEDULED", "CANCELED", ON, STMT, 0 }, \
	{ "HELD", "CANCELED", ON, STMT, 0 }, { "SMS_QUEUED", "CANCELED", ON, STMT, 0 }, \
	{ "PUSH_SENT", "CANCELED", ON, STMT, 0 }, { "OPTED_OUT", "CANCELED", ON, STMT, 0 }

const struct recipient_edge recipient_edges[] = {
	/* intake (every door, intake.c): the decision, written with the ACCEPTED event */
	{ NEW,             "ACCEPTED",       "a door's message is stored",                  &recipient_stmt_intake, 0 },
	{ "ACCEPTED",      "PUSH_SENT",      "a live device and no opt-out",                &recipient_stmt_intake, DECIDED },
	{ "ACCEPTED",      "SMS_QUEUED",     "no app (or SMS first), a route serves it",    &recipient_stmt_intake, DECIDED },
	{ "ACCEPTED",      "SMS_FAILED",     "SMS, and no route serves the number",         &recipient_stmt_intake, DECIDED },
	{ "ACCEPTED",      "OPTED_OUT",      "the number blocked the sender (policy sms)",  &recipient_stmt_intake, DECIDED },
	{ "ACCEPTED",      "DROPPED",        "no usable channel, or opt-out with drop",     &recipient_stmt_intake, DECIDED },
	{ "ACCEPTED",      "SCHEDULED",      "send_at is later",                            &recipient_stmt_intake, 0 },
	{ "ACCEPTED",      "HELD",           "an ad outside its hours",                     &recipient_stmt_intake, 0 },
	/* release (sweep.c): decided again when due */
	{ "SCHEDULED",     "HELD",           "due, but an ad outside its hours",            &recipient_stmt_release, 0 },
	RELEASE_EDGES("SCHEDULED", "due: decided again"),
	RELEASE_EDGES("HELD", "the ad window opened: decided again"),
	/* the push channel (push.c, devices.c) */
	{ "PUSH_SENT",     "PUSH_DELIVERED", "a device of the number acked it",             &recipient_stmt_push_acks, 0 },
	{ "PUSH_SENT",     "OPTED_OUT",      "the app rejected the sender",                 &recipient_stmt_push_reject, 0 },
	{ "OPTED_OUT",     "SMS_QUEUED",     "opt-out policy sms",                          &recipient_stmt_push_reject, 0 },
	{ "OPTED_OUT",     "SMS_FAILED",     "opt-out policy sms, and no route serves it",  &recipient_stmt_push_reject, 0 },
	{ "OPTED_OUT",     "DROPPED",        "opt-out policy drop",                         &recipient_stmt_push_reject, 0 },
	{ NEW,             "ACCEPTED",       "a device registers: its code, its push",      &recipient_stmt_device_register, 0 },
	{ "ACCEPTED",      "SMS_QUEUED",     "the registration code goes by SMS",           &recipient_stmt_device_register, 0 },
	{ "ACCEPTED",      "SMS_FAILED",     "the code, and no route serves the number",    &recipient_stmt_device_register, 0 },
	{ "ACCEPTED",      "PUSH_SENT",      "a new device: to the number's other apps",    &recipient_stmt_device_register, 0 },
	{ NEW,             "ACCEPTED",       "an install invitation",                       &recipient_stmt_invite, 0 },
	{ "ACCEPTED",      "SMS_QUEUED",     "invitations go by SMS",                       &recipient_stmt_invite, 0 },
	/* the SMS engine (smpp/client.c) */
	{ "SMS_QUEUED",    "SMS_SUBMITTED",  "leased to a node's bind",                     &recipient_stmt_sms_lease, 0 },
	{ "SMS_SUBMITTED", "SMS_ACCEPTED",   "submit_sm_resp ok for every part",            &recipient_stmt_sms_resp, 0 },
	{ "SMS_SUBMITTED", "SMS_FAILED",     "a permanent error",                           &recipient_stmt_sms_resp, 0 },
	{ "SMS_SUBMITTED", "SMS_QUEUED",     "throttled or temporary (backoff), or resent", &recipient_stmt_sms_resp, 0 },
	{ "SMS_SUBMITTED", "SMS_UNKNOWN",    "no response in time (the route says unknown)",&recipient_stmt_sms_resp, 0 },
	{ "SMS_ACCEPTED",  "SMS_DELIVERED",  "every part's receipt said delivered",         &recipient_stmt_sms_receipts, 0 },
	{ "SMS_ACCEPTED",  "SMS_FAILED",     "a part's receipt said failed",                &recipient_stmt_sms_receipts, 0 },
	{ "SMS_ACCEPTED",  "SMS_EXPIRED",    "a part's receipt said expired",               &recipient_stmt_sms_receipts, 0 },
	{ "SMS_ACCEPTED",  "SMS_DELIVERED",  "a parked receipt, once its response is in",   &recipient_stmt_apply_parked, 0 },
	/* the sweep (sweep.c) and a restarted node (node.c) */
	{ "SMS_SUBMITTED", "SMS_QUEUED",     "lease expired without a response: resent",    &recipient_stmt_sweep, 0 },
	{ "SMS_QUEUED",    "SMS_EXPIRED",    "validity ended before submission",            &recipient_stmt_sweep, 0 },
	{ "SMS_ACCEPTED",  "SMS_UNKNOWN",    "no receipt within validity",                  &recipient_stmt_sweep, 0 },
	{ "PUSH_SENT",     "SMS_QUEUED",     "no ack before the push deadline",             &recipient_stmt_sweep, 0 },
	{ "PUSH_SENT",     "SMS_FAILED",     "no ack by the deadline, and no route",        &recipient_stmt_sweep, 0 },
	{ "PUSH_SENT",     "DROPPED",        "no ack by the deadline, and no SMS channel",  &recipient_stmt_sweep, 0 },
	{ "SMS_SUBMITTED", "SMS_QUEUED",     "its node restarted without a response",       &recipient_stmt_take_back, 0 },
	/* cancels: a campaign's (batches.c), an ESME's cancel_sm (smpp/server.c) */
	CANCEL_EDGES("a campaign canceled (or failed while loading)", &recipient_stmt_batch_cancel),
	CANCEL_EDGES("cancel_sm from the ESME that sent it", &recipient_stmt_cancel_one),
};

const size_t recipient_edges_count = sizeof(recipient_edges) / sizeof(recipient_edges[0]);

int recipient_state_final(const char *state)
{
	static const char finals[] = RECIPIENT_FINAL_SQL;
	char quoted[40];
	if (!state || strlen(state) > sizeof(quoted) - 3)
		return 0;
	snprintf(quoted, sizeof(quoted), "'%s'", state);
	return strstr(finals, quoted) != NULL;
}

/* --- the statements ------------------------------------------------------------------- */

/* What an SMS-bound recipient becomes: queued on its route, or failed when none serves the number. */
#define SMS_OR_FAILED(route) "CASE WHEN " route " IS NULL THEN 'SMS_FAILED' ELSE 'SMS_QUEUED' END"

/* The columns a decided recipient gets (state s), given its message m and push timeout pt. */
#define DECIDED_CHANNEL(s) "CASE " s " WHEN 'PUSH_SENT' THEN 'push' WHEN 'SMS_QUEUED' THEN 'sms' WHEN 'SMS_FAILED' THEN 'sms' END"
#define DECIDED_FINAL(s)   "CASE WHEN " s " IN ('SMS_FAILED', 'DROPPED', 'CANCELED') THEN now() END"


const struct store_stmt recipient_stmt_intake = {
	"intake",
	/* the messages of the group, each with its account's settings and its id taken now */
	/* ids are drawn over ordered subqueries: they follow the order of arrival */
	/* what the accounts' limits and senders refuse (intake_admit, sql/functions/): stored nothing, answered apart */
	"WITH q AS MATERIALIZED (SELECT * FROM intake_admit($1::bigint[], $28::int[], $2::text[], $12::text[],"
	"                                                 $11::text[], $15::text[])),"
	" mi AS MATERIALIZED ("
	"  SELECT y.*, CASE WHEN NOT y.refused THEN nextval('messages_id_seq') END AS id FROM ("
	"   SELECT x.*, string_to_array(x.channels, ',') AS chan,"
	"    a.opt_out_policy AS a_policy, a.ad_night_consent, a.auth_sms_first, a.opt_out_number,"
	"    x.mord IN (SELECT q.mord FROM q) AS refused"
	"   FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[],"
	"               $8::timestamptz[], $9::float8[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[],"
	"               $15::text[], $16::int[], $17::bigint[], $18::int[])"
	"     WITH ORDINALITY AS x(account_id, sender, body, channels, push_timeout, sms_text, purpose, send_at, validity,"
	"                          opt_out_policy, callback_url, idempotency_key, batch_id, source, dlr_url, dlr_mask,"
	"                          smpp_account_id, smpp_registered, mord)"
	/* the account's settings by key (a LEFT JOIN, so the plan's row estimates don't follow the
	 * accounts table's size) and the refused kept with no id (a filter would shrink the
	 * estimates): estimates that fall to one row make nested loops of the CTE joins below,
	 * quadratic in the group's size */
	"   LEFT JOIN LATERAL (SELECT a.opt_out_policy, a.ad_night_consent, a.auth_sms_first, a.opt_out_number"
	"     FROM accounts a WHERE a.id = x.account_id) a ON true"
	"   ORDER BY x.mord) y),"
	/* each key claimed (sql/035): a message is stored when its key is its own, a replay when it was taken */
	" c AS ("
	"  INSERT INTO message_keys (account_id, key, message_id)"
	"  SELECT mi.account_id, mi.idempotency_key, mi.id FROM mi"
	"  WHERE mi.id IS NOT NULL AND mi.idempotency_key IS NOT NULL ORDER BY mi.mord"
	"  ON CONFLICT (account_id, key) DO NOTHING"
	"  RETURNING message_id),"
	" m AS ("
	"  INSERT INTO messages (id, account_id, sender, body, channels, push_timeout, sms_text, purpose, send_at,"
	"    validity, opt_out_policy, callback_url, batch_id, idempotency_key, dlr_url, dlr_mask, smpp_account_id,"
	"    smpp_registered)"
	"  SELECT mi.id, mi.account_id, mi.sender,"
	"    CASE WHEN mi.purpose = 'AD' THEN concat_ws(' ', NULLIF($26::text, ''), mi.body)"
	"      || CASE WHEN $27::text = '' THEN '' ELSE E'\\n' || replace($27::text, '{number}', coalesce(mi.opt_out_number, '')) END"
	"      ELSE mi.body END,"
	"    mi.chan, mi.push_timeout, mi.sms_text, mi.purpose, mi.send_at, mi.validity, mi.opt_out_policy,"
	"    mi.callback_url, mi.batch_id, mi.idempotency_key, mi.dlr_url, mi.dlr_mask, mi.smpp_account_id,"
	"    mi.smpp_registered"
	"  FROM mi WHERE mi.id IS NOT NULL AND (mi.idempotency_key IS NULL OR mi.id IN (SELECT message_id FROM c))"
	"  ORDER BY mi.mord"
	"  RETURNING id),"
	/* each message's id when it was stored (not refused, not a replay) and its sender, by
	 * ordinal: the recipients below find theirs by subscript, in constant time whatever
	 * the plan's estimates (a join there was a nested loop, quadratic in a group of 1,000) */
	" ma AS MATERIALIZED ("
	"  SELECT array_agg(CASE WHEN mi.id IN (SELECT id FROM m) THEN mi.id END ORDER BY mi.mord) AS ids,"
	"   array_agg(mi.sender ORDER BY mi.mord) AS senders FROM mi),"
	/* the recipients of the messages stored; MATERIALIZED: app and opted stay plain
	 * columns, so recipient_decide() is inlined (not planned per row) */
	" t AS MATERIALIZED ("
	"  SELECT u.*, nextval('recipients_id_seq') AS id FROM ("
	"   SELECT t.mord, t.msisdn, t.route, t.text, ma.ids[t.mord] AS message_id,"
	"    EXISTS (SELECT 1 FROM devices d WHERE d.msisdn = t.msisdn"
	"            AND d.verified_at IS NOT NULL AND d.revoked_at IS NULL) AS app,"
	"    EXISTS (SELECT 1 FROM opt_outs o WHERE o.msisdn = t.msisdn AND o.sender = ma.senders[t.mord]) AS opted"
	"   FROM unnest($19::int[], $20::text[], $21::text[], $22::text[]) WITH ORDINALITY AS t(mord, msisdn, route, text, ord)"
	"   CROSS JOIN ma WHERE ma.ids[t.mord] IS NOT NULL"
	"   ORDER BY t.ord) u),"
	" k AS ("
	"  SELECT t.*, mi.account_id, mi.batch_id, mi.validity, mi.push_timeout, mi.source, mi.chan, mi.purpose, w.release_at,"
	"    CASE WHEN w.release_at IS NULL"
	"      THEN recipient_decide(t.app, t.opted, t.route, mi.chan, mi.purpose, coalesce(mi.opt_out_policy, mi.a_policy),"
	"                            mi.auth_sms_first)"
	"      WHEN mi.send_at > now() THEN 'SCHEDULED' ELSE 'HELD' END AS state"
	"  FROM t JOIN mi ON mi.mord = t.mord,"
	"  LATERAL (SELECT CASE WHEN mi.send_at > now() THEN mi.send_at"
	"      ELSE ad_hold_until(mi.purpose, mi.ad_night_consent, now(), $23::int, $24::int, $25::text) END AS release_at) w),"
	" r AS ("
	"  INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, route, text, batch_id, release_at,"
	"    expires_at, final_at, push_deadline)"
	"  SELECT k.id, k.message_id, k.account_id, k.msisdn, k.state, " DECIDED_CHANNEL("k.state") ", k.route, k.text,"
	"    k.batch_id, k.release_at, coalesce(k.release_at, now()) + make_interval(secs => k.validity), "
	DECIDED_FINAL("k.state") ","
	"    CASE WHEN k.state = 'PUSH_SENT' THEN now() + make_interval(secs => k.push_timeout) END"
	"  FROM k ORDER BY k.id"
	"  RETURNING id),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT k.id, k.message_id, k.account_id, s.state, s.route, s.detail FROM r JOIN k ON k.id = r.id,"
	"  LATERAL (VALUES"
	"    (1, 'ACCEPTED', NULL, coalesce(k.source, 'http')),"
	"    (2, CASE WHEN k.opted AND k.state NOT IN ('SCHEDULED', 'HELD') THEN 'OPTED_OUT' END, NULL,"
	"        'the number blocked this sender in the app'),"
	"    (3, k.state, k.route, CASE k.state"
	"       WHEN 'SCHEDULED' THEN 'scheduled for ' || k.release_at"
	"       WHEN 'HELD' THEN 'ad held outside the allowed hours until ' || k.release_at"
	"       ELSE recipient_decide_why(k.state, k.app, k.opted, k.chan, k.purpose) END)"
	"  ) AS s(o, state, route, detail) WHERE s.state IS NOT NULL ORDER BY k.id, s.o),"
	" n AS ("
	"  SELECT pg_notify('pushgate_push', k.message_id::text) FROM k WHERE k.state = 'PUSH_SENT' GROUP BY k.message_id)"
	" SELECT k.message_id, k.id, k.msisdn, k.state, k.route, false AS replay, k.mord, (SELECT count(*) FROM n) FROM k"
	" UNION ALL"
	/* a message whose idempotency key was used before: its recipients as they were stored */
	" SELECT x.message_id, x.id, x.msisdn, x.state, x.route, true, mi.mord, 0"
	" FROM mi JOIN message_keys o ON o.account_id = mi.account_id AND o.key = mi.idempotency_key"
	" JOIN recipients x ON x.message_id = o.message_id"
	" WHERE mi.idempotency_key IS NOT NULL AND mi.id NOT IN (SELECT id FROM m)"
	" UNION ALL"
	/* a refused message: one row, state REFUSED, the refusal as its route, Retry-After seconds last */
	" SELECT NULL, NULL, NULL, 'REFUSED', q.refusal, false, q.mord, q.retry_after FROM q"
	" ORDER BY 7, 2",
	28, 0,
};

/*
 * Scheduled recipients whose time came and held ads whose window opened:
 * decided now like at intake (or held again).  $1 ad window start hour, $2::text
 * end hour, $3::text time zone, $4 default push timeout seconds.  Row: released.
 */
const struct store_stmt recipient_stmt_release = {
	"release",
	"WITH x AS ("
	"  SELECT r.id, r.message_id, r.account_id, r.route, m.channels, m.purpose, m.push_timeout,"
	"    coalesce(m.opt_out_policy, a.opt_out_policy) AS policy, a.auth_sms_first,"
	"    ad_hold_until(m.purpose, a.ad_night_consent, now(), $1::int, $2::int, $3::text) AS hold,"
	"    EXISTS (SELECT 1 FROM devices d WHERE d.msisdn = r.msisdn"
	"            AND d.verified_at IS NOT NULL AND d.revoked_at IS NULL) AS app,"
	"    EXISTS (SELECT 1 FROM opt_outs o WHERE o.msisdn = r.msisdn AND o.sender = m.sender) AS opted"
	"  FROM recipients r JOIN messages m ON m.id = r.message_id JOIN accounts a ON a.id = r.account_id"
	"  WHERE r.state IN ('SCHEDULED', 'HELD') AND r.release_at <= now()"
	"  ORDER BY r.release_at LIMIT 5000 FOR UPDATE OF r SKIP LOCKED),"
	" d AS ("
	"  SELECT x.*, CASE WHEN x.hold IS NOT NULL THEN 'HELD'"
	"    ELSE recipient_decide(x.app, x.opted, x.route, x.channels, x.purpose, x.policy, x.auth_sms_first) END AS state"
	"  FROM x),"
	" u AS ("
	"  UPDATE recipients r SET state = d.state, release_at = d.hold,"
	"    channel = " DECIDED_CHANNEL("d.state") ", final_at = " DECIDED_FINAL("d.state") ","
	"    push_deadline = CASE WHEN d.state = 'PUSH_SENT'"
	"      THEN now() + make_interval(secs => coalesce(d.push_timeout, $4::float8)) END,"
	"    next_attempt_at = now(), updated_at = now()"
	"  FROM d WHERE r.id = d.id"
	"  RETURNING r.id, r.message_id, r.account_id, r.state, r.route, r.release_at),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT u.id, u.message_id, u.account_id, s.state, s.route, s.detail FROM u JOIN d ON d.id = u.id,"
	"  LATERAL (VALUES"
	"    (1, CASE WHEN d.opted AND u.state <> 'HELD' THEN 'OPTED_OUT' END, NULL, 'the number blocked this sender in the app'),"
	"    (2, u.state, u.route, CASE WHEN u.state = 'HELD' THEN 'ad held outside the allowed hours until ' || u.release_at"
	"       ELSE 'released: ' || recipient_decide_why(u.state, d.app, d.opted, d.channels, d.purpose) END)"
	"  ) AS s(o, state, route, detail) WHERE s.state IS NOT NULL ORDER BY u.id, s.o),"
	" n AS ("
	"  SELECT pg_notify('pushgate_push', message_id::text) FROM (SELECT DISTINCT message_id FROM u"
	"  WHERE state = 'PUSH_SENT') q)"
	" SELECT count(*), (SELECT count(*) FROM n) FROM u",
	4, 0,
};

const struct store_stmt recipient_stmt_sms_lease = {
	"sms_lease",
	/*
	 * The UPDATE finds its rows by primary key (= ANY of q's ids) and joins
	 * nothing else by estimate: the generic plan guesses LIMIT $3 at a tenth
	 * of the table (then it merge-joined q with a scan of the whole primary
	 * key), or at one row (then it probed the whole id array once per row
	 * of q: 330 us per leased row under a backlog), and reads only the
	 * history ranges q's ids fall in (RANGES_IN).  The route before this
	 * lease (failover) is the row's own, read by key (o: the row before
	 * the update).
	 */
	"WITH q AS ("
	"  SELECT id FROM recipients"
	"  WHERE state = 'SMS_QUEUED' AND route = ANY($2::text[]) AND next_attempt_at <= now() AND expires_at > now()"
	"  ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),"
	" u AS ("
	"  UPDATE recipients r SET state = 'SMS_SUBMITTED', lease_owner = $1, route = $5,"
	"    lease_until = now() + make_interval(secs => $4::float8), attempts = r.attempts + 1,"
	"    submitted_at = now(), updated_at = now()"
	"  FROM recipients o, messages m WHERE " RANGES_IN("r.id", "id", "q")
	"    AND o.id = r.id AND m.id = r.message_id"
	"  RETURNING r.id, r.message_id, r.account_id, r.msisdn, m.sender, coalesce(r.text, m.sms_text, m.body) AS body,"
	"    r.attempts, o.route AS was),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT id, message_id, account_id, 'SMS_SUBMITTED', $5,"
	"    'attempt ' || attempts || CASE WHEN was <> $5 THEN ' via ' || $5 || ' (failover from ' || was || ')' ELSE '' END"
	"  FROM u ORDER BY id)"
	/* parts accepted in an earlier attempt: none on the first (only sms_resp writes them, after a lease) */
	" SELECT u.id, u.msisdn, u.sender, u.body, u.account_id,"
	"  CASE WHEN u.attempts > 1 THEN"
	"    coalesce((SELECT array_agg(part_no ORDER BY part_no) FROM sms_parts sp WHERE sp.recipient_id = u.id), '{}')"
	"  ELSE '{}' END"
	" FROM u ORDER BY u.id",
	5, 0,
};

/*
 * submit_sm_resp outcomes, one row per recipient.  The update compares the
 * state with d.was, not with a literal, for the reason given at
 * RECEIPT_APPLY: against 'SMS_SUBMITTED' the generic plan hashed every
 * recipient in flight (index recipients_sms_inflight) for each batch.
 */
const struct store_stmt recipient_stmt_sms_resp = {
	"sms_resp",
	"WITH d AS MATERIALIZED ("
	"  SELECT *, 'SMS_SUBMITTED'::text AS was"
	"  FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $6::int[], $7::text[])"
	"  AS d(id, outcome, status, detail, parts, smsc_id)),"
	" u AS ("
	"  UPDATE recipients r SET"
	"    state = CASE d.outcome WHEN 'ok' THEN 'SMS_ACCEPTED' WHEN 'perm' THEN 'SMS_FAILED'"
	"      WHEN 'unknown' THEN 'SMS_UNKNOWN' ELSE 'SMS_QUEUED' END,"
	"    smsc_id = coalesce(d.smsc_id, r.smsc_id),"
	"    parts = d.parts,"
	"    error_code = CASE WHEN d.outcome = 'ok' THEN NULL ELSE d.status END,"
	"    lease_owner = NULL, lease_until = NULL,"
	"    next_attempt_at = CASE d.outcome"
	"      WHEN 'temp' THEN now() + make_interval(secs => $5::float8 * power(2, least(greatest(r.attempts - 1, 0), 10)))"
	"      WHEN 'retry' THEN now() ELSE r.next_attempt_at END,"
	"    final_at = CASE WHEN d.outcome IN ('perm', 'unknown') THEN now() END,"
	"    updated_at = now()"
	"  FROM d WHERE r.id = d.id AND r.state = d.was"
	"  RETURNING r.id, r.message_id, r.account_id, r.state, r.route, d.smsc_id, d.status, d.detail),"
	/* the accepted parts of the recipients u took (still SMS_SUBMITTED: this lease's) */
	" p AS ("
	"  INSERT INTO sms_parts (recipient_id, part_no, account_id, route, smsc_id, state)"
	"  SELECT x.rid, x.part_no, u.account_id, x.route, x.smsc_id, 'SMS_ACCEPTED'"
	"  FROM unnest($8::bigint[], $9::int[], $10::text[], $11::text[]) AS x(rid, part_no, smsc_id, route)"
	"  JOIN u ON u.id = x.rid"
	"  ON CONFLICT (recipient_id, part_no) DO UPDATE SET smsc_id = excluded.smsc_id, route = excluded.route,"
	"    state = 'SMS_ACCEPTED', error_code = NULL, updated_at = now()),"
	/* no answer (-1 timeout, -2 link lost) and queued again: the carrier may have it, a resend */
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, kind, state, route, smsc_id, error_code, detail)"
	"  SELECT id, message_id, account_id,"
	"    CASE WHEN status < 0 AND state = 'SMS_QUEUED' THEN 'resend' ELSE 'state' END,"
	"    state, route, smsc_id, NULLIF(status, 0), detail FROM u ORDER BY id)"
	" SELECT count(*) FROM u",
	11, 0,
};

/*
 * Applies matched receipts `m` (recipient_id, part_no, smsc_id, route, state,
 * err, detail, ord, and the recipient's message_id, account_id and parts) to
 * their parts, and finalises a recipient once all its parts are final: failed
 * beats expired beats delivered.  Intermediate receipts (state NULL) only
 * leave an event.  The parts are found by key (RANGES_IN of m's recipient ids,
 * in their history ranges only) whatever
 * the join the planner picks: a hash join read every part of every range
 * when a generic plan guessed m large (apply_parked's).  The
 * other parts of a recipient are read by key (OFFSET 0 keeps the lateral
 * a nested loop): a scan there would cost the whole sms_parts table; a
 * recipient of one part (most) has none to read.  The final update compares
 * the state with fin.waiting, not with the literal: against the literal, a
 * generic plan made while few recipients waited for receipts read every
 * waiting recipient (index recipients_sms_waiting) into a hash for each
 * statement, a cost that grew with the receipts still outstanding; compared
 * with a column, only the primary key can find the rows.
 */
/* The seconds from intake to the final state of the recipients u made final (for /metrics), or NULL. */
#define FINAL_AGES "SELECT array_agg(round(extract(epoch FROM now() - created_at), 3)) FROM u"

#define RECEIPT_APPLY(DETAIL_SUFFIX) \
	" pu AS MATERIALIZED ("                                                                  \
	"  UPDATE sms_parts sp SET state = m.state,"                                              \
	"    error_code = CASE WHEN m.state = 'SMS_DELIVERED' THEN NULL ELSE m.err END, updated_at = now()" \
	"  FROM m WHERE sp.recipient_id = m.recipient_id AND sp.part_no = m.part_no"             \
	"    AND " RANGES_IN("sp.recipient_id", "recipient_id", "m")                                 \
	"    AND m.state IS NOT NULL AND sp.state = 'SMS_ACCEPTED'"                               \
	"  RETURNING sp.recipient_id, sp.part_no, sp.state, sp.error_code, m.parts),"             \
	" np AS MATERIALIZED ("                                                                   \
	"  SELECT recipient_id, part_no, state, error_code FROM pu"                               \
	"  UNION ALL"                                                                             \
	"  SELECT sp.recipient_id, sp.part_no, sp.state, sp.error_code"                           \
	"  FROM (SELECT DISTINCT recipient_id FROM pu WHERE coalesce(parts, 2) > 1) k"            \
	"  CROSS JOIN LATERAL (SELECT recipient_id, part_no, state, error_code FROM sms_parts s"  \
	"    WHERE s.recipient_id = k.recipient_id OFFSET 0) sp"                                  \
	"  WHERE NOT EXISTS (SELECT 1 FROM pu WHERE pu.recipient_id = sp.recipient_id AND pu.part_no = sp.part_no)),"  \
	" agg AS MATERIALIZED ("                                                                  \
	"  SELECT recipient_id, count(*) AS n,"                                                   \
	"    count(*) FILTER (WHERE state = 'SMS_DELIVERED') AS dl,"                              \
	"    count(*) FILTER (WHERE state = 'SMS_FAILED') AS fl,"                                 \
	"    count(*) FILTER (WHERE state = 'SMS_EXPIRED') AS ex,"                                \
	"    max(error_code) FILTER (WHERE state <> 'SMS_DELIVERED') AS err"                      \
	"  FROM np GROUP BY recipient_id),"                                                       \
	" fin AS MATERIALIZED ("                                                                  \
	"  SELECT array_agg(recipient_id) AS ids, array_agg(CASE WHEN fl > 0 THEN 'SMS_FAILED'"   \
	"      WHEN ex > 0 THEN 'SMS_EXPIRED' ELSE 'SMS_DELIVERED' END) AS states,"               \
	"    array_agg(CASE WHEN fl + ex > 0 THEN err END) AS errs, array_agg(n) AS ns,"           \
	"    'SMS_ACCEPTED'::text AS waiting"                                                     \
	"  FROM agg WHERE dl + fl + ex = n),"                                                      \
	" u AS ("                                                                                 \
	"  UPDATE recipients x SET state = v.state, error_code = v.err,"                          \
	"    final_at = now(), updated_at = now()"                                                \
	"  FROM fin, unnest(fin.ids, fin.states, fin.errs, fin.ns) AS v(id, state, err, n)"       \
	"  WHERE x.id = v.id AND x.state = fin.waiting AND v.n >= coalesce(x.parts, 1)"          \
	"  RETURNING x.id, x.message_id, x.account_id, x.state, x.route, x.smsc_id, x.error_code, x.created_at)," \
	" ev AS ("                                                                                \
	"  INSERT INTO events (recipient_id, message_id, account_id, kind, state, route, smsc_id, error_code, detail)" \
	"  SELECT rid, message_id, account_id, kind, state, route, smsc_id, err, detail FROM ("  \
	"    SELECT m.ord, 0 AS k, m.recipient_id AS rid, m.message_id, m.account_id, 'receipt' AS kind, m.state," \
	"      m.route, m.smsc_id, m.err, m.detail || CASE WHEN m.parts > 1 THEN ' (part ' || m.part_no || '/' || m.parts || ')' ELSE '' END" \
	"        || " DETAIL_SUFFIX " AS detail"                                                   \
	"    FROM m"                                                                              \
	"    UNION ALL"                                                                           \
	"    SELECT o.ord, 1, u.id, u.message_id, u.account_id, 'state', u.state, u.route, u.smsc_id, u.error_code, NULL" \
	"    FROM u JOIN (SELECT recipient_id, max(ord) AS ord FROM m GROUP BY recipient_id) o ON o.recipient_id = u.id" \
	"  ) x ORDER BY ord, k)"

const struct store_stmt recipient_stmt_sms_receipts = {
	"sms_receipts",
	"WITH d AS ("
	"  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY"
	"  AS d(route, smsc_id, state, err, detail, ord)),"
	/*
	 * the part by its SMSC id, the newest (LIMIT: a nested loop; index
	 * sms_parts_smsc_newest, sql/033, gives each range's parts newest first,
	 * so the ranges are read in order, newest first, and the first part found
	 * ends the probe), then its recipient by key.  Not joined inside the LIMIT: there
	 * the recipients' primary key, ordered across the ranges, offered the
	 * newest-first order, and the plan walked every recipient newer than the
	 * one sought, for each receipt.  (LIMIT 1 on the key: the planner then
	 * counts one row per receipt, and the updates below stay lookups by key.)
	 */
	" dm AS MATERIALIZED ("
	"  SELECT d.*, sp.recipient_id, sp.part_no, r.message_id, r.account_id, r.parts FROM d"
	"  LEFT JOIN LATERAL (SELECT sp.recipient_id, sp.part_no FROM sms_parts sp"
	"    WHERE sp.route = d.route AND sp.smsc_id = d.smsc_id ORDER BY sp.recipient_id DESC LIMIT 1) sp ON true"
	"  LEFT JOIN LATERAL (SELECT r.message_id, r.account_id, r.parts FROM recipients r WHERE r.id = sp.recipient_id"
	"    LIMIT 1) r ON true),"
	" m AS (SELECT recipient_id, part_no, smsc_id, route, state, err, detail, ord, message_id, account_id, parts FROM dm"
	"  WHERE recipient_id IS NOT NULL),"
	RECEIPT_APPLY("''") ","
	" pk AS ("
	"  INSERT INTO dlr_parked (route, smsc_id, state, error_code, detail)"
	"  SELECT route, smsc_id, coalesce(state, ''), err, detail FROM dm WHERE recipient_id IS NULL ORDER BY ord)"
	" SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM dm WHERE recipient_id IS NULL), (" FINAL_AGES ")",
	5, 0,
};

const struct store_stmt recipient_stmt_apply_parked = {
	"apply_parked",
	/*
	 * Each parked receipt's part by its SMSC id (the newest, as sms_receipts
	 * takes it, newest range first): a join of the two tables could hash
	 * every part of every range.
	 */
	"WITH f AS MATERIALIZED ("
	"  SELECT dp.id, sp.recipient_id, sp.part_no FROM dlr_parked dp"
	"  CROSS JOIN LATERAL (SELECT sp.recipient_id, sp.part_no FROM sms_parts sp"
	"    WHERE sp.route = dp.route AND sp.smsc_id = dp.smsc_id ORDER BY sp.recipient_id DESC LIMIT 1) sp),"
	" p AS ("
	"  DELETE FROM dlr_parked dp USING f WHERE dp.id = f.id"
	"  RETURNING dp.id AS ord, dp.route, dp.smsc_id, NULLIF(dp.state, '') AS state, dp.error_code AS err,"
	"    dp.detail, f.recipient_id, f.part_no),"
	" m AS (SELECT p.recipient_id, p.part_no, p.smsc_id, p.route, p.state, p.err, p.detail,"
	"  p.ord, r.message_id, r.account_id, r.parts FROM p"
	"  CROSS JOIN LATERAL (SELECT r.message_id, r.account_id, r.parts FROM recipients r WHERE r.id = p.recipient_id"
	"    LIMIT 1) r ORDER BY p.ord),"
	RECEIPT_APPLY("' (parked)'")
	" SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM u), (" FINAL_AGES ")",
	0, 0,
};

/*
 * The resend of an SMS whose submit_sm_resp was never recorded: queued
 * again (the carrier may have it already), its event of kind 'resend'
 * (sql/020: counted by `pushgatectl resends` and in /metrics).
 */
#define RESEND_EVENTS(FROM) \
	" INSERT INTO events (recipient_id, message_id, account_id, kind, state, route, detail)" \
	" SELECT id, message_id, account_id, 'resend', state, route, detail FROM " FROM " ORDER BY id"

const struct store_stmt recipient_stmt_sweep = {
	"sweep",
	"WITH a AS ("
	"  UPDATE recipients SET state = 'SMS_QUEUED', lease_owner = NULL, lease_until = NULL, updated_at = now()"
	"  WHERE state = 'SMS_SUBMITTED' AND lease_until < now()"
	"  RETURNING id, message_id, account_id, state, route,"
	"    'lease expired without a response: sent again' AS detail),"
	" ae AS (" RESEND_EVENTS("a") "),"
	" b AS ("
	"  UPDATE recipients SET state = 'SMS_EXPIRED', final_at = now(), updated_at = now()"
	"  WHERE state = 'SMS_QUEUED' AND expires_at < now()"
	"  RETURNING id, message_id, account_id, state, route, 'validity ended before submission' AS detail),"
	" c AS ("
	"  UPDATE recipients SET state = 'SMS_UNKNOWN', final_at = now(), updated_at = now()"
	"  WHERE state = 'SMS_ACCEPTED' AND expires_at < now()"
	"  RETURNING id, message_id, account_id, state, route, 'no receipt within validity' AS detail),"
	" d AS ("
	"  UPDATE recipients r SET state = CASE WHEN 'sms' = ANY(m.channels) THEN " SMS_OR_FAILED("r.route") " ELSE 'DROPPED' END,"
	"    channel = CASE WHEN 'sms' = ANY(m.channels) THEN 'sms' ELSE r.channel END,"
	"    final_at = CASE WHEN r.route IS NULL OR NOT 'sms' = ANY(m.channels) THEN now() END,"
	"    next_attempt_at = now(), updated_at = now()"
	"  FROM messages m WHERE m.id = r.message_id AND r.state = 'PUSH_SENT' AND r.push_deadline < now()"
	"  RETURNING r.id, r.message_id, r.account_id, r.state, r.route, 'no app receipt before the push deadline' AS detail),"
	" x AS (SELECT * FROM b UNION ALL SELECT * FROM c UNION ALL SELECT * FROM d),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT id, message_id, account_id, state, route, detail FROM x ORDER BY id)"
	" SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), (SELECT count(*) FROM c), (SELECT count(*) FROM d)",
	0, 0,
};

const struct store_stmt recipient_stmt_take_back = {
	"take_back",
	"WITH a AS ("
	"  UPDATE recipients SET state = 'SMS_QUEUED', lease_owner = NULL, lease_until = NULL,"
	"    next_attempt_at = now(), updated_at = now()"
	"  WHERE state = 'SMS_SUBMITTED' AND lease_owner = $1"
	"  RETURNING id, message_id, account_id, state, route,"
	"    'in flight when node ' || $1 || ' stopped without a response: sent again' AS detail),"
	" ae AS (" RESEND_EVENTS("a") ")"
	" SELECT count(*) FROM a",
	1, 0,
};

const struct store_stmt recipient_stmt_push_acks = {
	"push_acks",
	/*
	 * Driven from the acks: each looked up by primary key (LIMIT 1 keeps the
	 * planner from turning it into a scan of every pending push), then the
	 * updates by primary key from arrays.  The acking device must own the number.
	 */
	"WITH x AS MATERIALIZED ("
	"  SELECT DISTINCT ON (x.rid) x.rid, x.dev FROM unnest($1::bigint[], $2::bigint[]) AS x(rid, dev) ORDER BY x.rid),"
	" k AS MATERIALIZED ("
	"  SELECT r.id, x.dev FROM x"
	"  CROSS JOIN LATERAL (SELECT id, msisdn FROM recipients WHERE id = x.rid AND state = 'PUSH_SENT' LIMIT 1) r"
	"  CROSS JOIN LATERAL (SELECT 1 FROM devices d WHERE d.id = x.dev AND d.msisdn = r.msisdn LIMIT 1) d),"
	" u AS ("
	"  UPDATE recipients r SET state = 'PUSH_DELIVERED', device_id = v.dev, final_at = now(), updated_at = now()"
	"  FROM unnest((SELECT array_agg(id) FROM k), (SELECT array_agg(dev) FROM k)) AS v(id, dev)"
	"  WHERE r.id = v.id AND r.state = 'PUSH_SENT'"
	"  RETURNING r.id, r.message_id, r.account_id, v.dev, r.created_at),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, detail)"
	"  SELECT id, message_id, account_id, 'PUSH_DELIVERED', 'stored in the inbox of device ' || dev FROM u ORDER BY id)"
	" SELECT count(*), (" FINAL_AGES ") FROM u",
	2, 0,
};

/* A reject moves the sender's pending pushes to that number through OPTED_OUT to the account's policy. */
const struct store_stmt recipient_stmt_push_reject = {
	"push_reject",
	"WITH o AS ("
	"  INSERT INTO opt_outs (msisdn, sender, source, device_id) VALUES ($1, $2, 'app', $3)"
	"  ON CONFLICT (msisdn, sender) DO NOTHING),"
	" l AS (INSERT INTO opt_out_log (msisdn, sender, action, source, device_id) VALUES ($1, $2, 'reject', 'app', $3)),"
	" x AS ("
	"  SELECT r.id, CASE WHEN m.purpose = 'AD' OR NOT 'sms' = ANY(m.channels) THEN 'drop'"
	"    ELSE coalesce(m.opt_out_policy, a.opt_out_policy) END AS opt_out_policy"
	"  FROM recipients r JOIN messages m ON m.id = r.message_id"
	"  JOIN accounts a ON a.id = r.account_id"
	"  WHERE r.msisdn = $1 AND m.sender = $2 AND r.state = 'PUSH_SENT' FOR UPDATE OF r),"
	" u AS ("
	"  UPDATE recipients r SET"
	"    state = CASE WHEN x.opt_out_policy = 'drop' THEN 'DROPPED' ELSE " SMS_OR_FAILED("r.route") " END,"
	"    channel = CASE WHEN x.opt_out_policy = 'drop' THEN r.channel ELSE 'sms' END,"
	"    final_at = CASE WHEN x.opt_out_policy = 'drop' OR r.route IS NULL THEN now() END,"
	"    next_attempt_at = now(), updated_at = now()"
	"  FROM x WHERE r.id = x.id"
	"  RETURNING r.id, r.message_id, r.account_id, r.state, r.route, x.opt_out_policy),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT u.id, u.message_id, u.account_id, s.state, s.route, s.detail FROM u, LATERAL (VALUES"
	"    (1, 'OPTED_OUT', NULL, 'sender rejected in the app on device ' || $3),"
	"    (2, u.state, u.route, 'opt-out policy: ' || u.opt_out_policy)) AS s(o, state, route, detail)"
	"  ORDER BY u.id, s.o)"
	" SELECT count(*) FROM u",
	3, 0,
};

/*
 * Registration: a pending device and the SMS carrying its one-time code,
 * at most one per number per 30 seconds and $9 per UTC day for every node
 * together (0: no cap; counted in code_sms_daily).  $1 msisdn, $2 platform,
 * $3 code hash, $4 code lifetime seconds, $5 sender, $6 text, $7 route
 * (NULL: none), $8 validity seconds, $10 the device id (random: ids can't
 * be guessed), $11 the text with the code masked.  The text with the code
 * is the recipient's own until its SMS is final (code_sms_pending,
 * recipient_stmt_code_scrub); the message keeps the masked one.  A new code
 * voids the number's older pending ones.  One row:
 * the device id (NULL when refused), and whether a code went to this number
 * less than 30 s ago.
 */
const struct store_stmt recipient_stmt_device_register = {
	"device_register",
	"WITH recent AS ("
	"  SELECT 1 FROM devices WHERE msisdn = $1 AND created_at > now() - interval '30 seconds' LIMIT 1),"
	" cap AS ("
	"  INSERT INTO code_sms_daily AS c (day, sent)"
	"  SELECT (now() AT TIME ZONE 'UTC')::date, 1 WHERE NOT EXISTS (SELECT 1 FROM recent) AND $9::int <> 0"
	"  ON CONFLICT (day) DO UPDATE SET sent = c.sent + 1 WHERE c.sent < $9::int"
	"  RETURNING sent),"
	" d AS ("
	"  INSERT INTO devices (id, msisdn, platform, code_hash, code_expires_at)"
	"  SELECT $10::bigint, $1, $2, $3::bytea, now() + make_interval(secs => $4::float8)"
	"  WHERE NOT EXISTS (SELECT 1 FROM recent) AND ($9::int = 0 OR EXISTS (SELECT 1 FROM cap))"
	"  RETURNING id),"
	" v AS ("
	"  UPDATE devices SET code_hash = NULL"
	"  WHERE msisdn = $1 AND verified_at IS NULL AND code_hash IS NOT NULL AND EXISTS (SELECT 1 FROM d)),"
	" sys AS (SELECT id FROM accounts WHERE name = '_system'),"
	" m AS ("
	"  INSERT INTO messages (account_id, sender, body) SELECT sys.id, $5, $11 FROM d, sys RETURNING id, account_id),"
	" r AS ("
	"  INSERT INTO recipients (message_id, account_id, msisdn, state, channel, route, expires_at, final_at, text)"
	"  SELECT m.id, m.account_id, $1, " SMS_OR_FAILED("$7::text") ", 'sms', $7,"
	"    now() + make_interval(secs => $8::float8), CASE WHEN $7::text IS NULL THEN now() END, $6 FROM m"
	"  RETURNING id, message_id, account_id, state, route),"
	" cp AS (INSERT INTO code_sms_pending (recipient_id) SELECT id FROM r),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT r.id, r.message_id, r.account_id, s.state, s.route, s.detail FROM r, LATERAL (VALUES"
	"    (1, 'ACCEPTED', NULL, 'device registration code'), (2, r.state, r.route, 'codes go by SMS'))"
	"    AS s(o, state, route, detail) ORDER BY s.o),"
	/* the number's app installs hear of the new registration (a push only: $12 its text, $13 its deadline) */
	" od AS ("
	"  SELECT 1 FROM devices WHERE msisdn = $1 AND verified_at IS NOT NULL AND revoked_at IS NULL"
	"    AND EXISTS (SELECT 1 FROM d) LIMIT 1),"
	" wm AS ("
	"  INSERT INTO messages (account_id, sender, body, channels) SELECT sys.id, $5, $12, '{push}' FROM od, sys"
	"  RETURNING id, account_id),"
	" wr AS ("
	"  INSERT INTO recipients (message_id, account_id, msisdn, state, channel, expires_at, push_deadline)"
	"  SELECT wm.id, wm.account_id, $1, 'PUSH_SENT', 'push', now() + make_interval(secs => $13::float8),"
	"    now() + make_interval(secs => $13::float8) FROM wm"
	"  RETURNING id, message_id, account_id),"
	" we AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, detail)"
	"  SELECT wr.id, wr.message_id, wr.account_id, s.state, s.detail FROM wr, LATERAL (VALUES"
	"    (1, 'ACCEPTED', 'a new device asked to register this number'), (2, 'PUSH_SENT', 'to the app installs of the number'))"
	"    AS s(o, state, detail) ORDER BY s.o),"
	" wn AS (SELECT pg_notify('pushgate_push', wm.id::text) FROM wm)"
	" SELECT (SELECT id FROM d), EXISTS (SELECT 1 FROM recent), (SELECT count(*) FROM wn)",
	13, 0,
};

/*
 * Codes out of the database: the text of each code SMS that is final (or a
 * day old) is removed from its recipient (the message keeps it masked).
 * Driven from the small pending table, each recipient by key, in its
 * history range only (RANGES_IN).
 */
const struct store_stmt recipient_stmt_code_scrub = {
	"code_scrub",
	"WITH f AS MATERIALIZED ("
	"  SELECT c.recipient_id FROM code_sms_pending c"
	"  CROSS JOIN LATERAL (SELECT 1 FROM recipients r WHERE r.id = c.recipient_id"
	"    AND (r.final_at IS NOT NULL OR c.created_at < now() - interval '1 day') OFFSET 0) x"
	"  LIMIT 1000),"
	" d AS (DELETE FROM code_sms_pending c WHERE c.recipient_id IN (SELECT recipient_id FROM f)"
	"  RETURNING c.recipient_id)"
	" UPDATE recipients r SET text = NULL WHERE " RANGES_IN("r.id", "recipient_id", "d"),
	0, 0,
};

/*
 * Install invitations for numbers with no app, at most one per number per
 * $2 seconds: $1 text[] MSISDNs, $3 sender, $4 text, $5 text[] routes,
 * $6 validity seconds.  Rows: the numbers invited now.
 */
const struct store_stmt recipient_stmt_invite = {
	"invite",
	"WITH c AS (SELECT DISTINCT ON (msisdn) msisdn, route FROM unnest($1::text[], $5::text[]) AS c(msisdn, route)"
	"  WHERE route IS NOT NULL),"
	" i AS ("
	"  INSERT INTO invitations (msisdn, last_sent_at) SELECT msisdn, now() FROM c"
	"  ON CONFLICT (msisdn) DO UPDATE SET last_sent_at = now(), sent = invitations.sent + 1"
	"  WHERE invitations.last_sent_at < now() - make_interval(secs => $2::float8)"
	"  RETURNING msisdn),"
	" sys AS (SELECT id FROM accounts WHERE name = '_system'),"
	" m AS ("
	"  INSERT INTO messages (account_id, sender, body) SELECT sys.id, $3, $4 FROM sys"
	"  WHERE EXISTS (SELECT 1 FROM i) RETURNING id, account_id),"
	" r AS ("
	"  INSERT INTO recipients (message_id, account_id, msisdn, state, channel, route, expires_at)"
	"  SELECT m.id, m.account_id, i.msisdn, 'SMS_QUEUED', 'sms', c.route, now() + make_interval(secs => $6::float8)"
	"  FROM m, i JOIN c ON c.msisdn = i.msisdn ORDER BY i.msisdn"
	"  RETURNING id, message_id, account_id, route),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT r.id, r.message_id, r.account_id, s.state, s.route, s.detail FROM r, LATERAL (VALUES"
	"    (1, 'ACCEPTED', NULL, 'install invitation'), (2, 'SMS_QUEUED', r.route, 'no app for this number'))"
	"    AS s(o, state, route, detail) ORDER BY r.id, s.o)"
	" SELECT msisdn FROM i",
	6, 0,
};

/* --- campaigns (batches.c, pushgatectl send) ------------------------------------ */


/*
 * cancel_sm from an ESME (smpp/server.c): $1 recipient id, $2 account id.
 * Row: canceled (0/1), exists (bool).
 */
const struct store_stmt recipient_stmt_cancel_one = {
	"cancel_one",
	"WITH u AS (UPDATE recipients SET state = 'CANCELED', final_at = now(), updated_at = now(),"
	"    release_at = NULL, push_deadline = NULL"
	"  WHERE id = $1 AND account_id = $2 AND state IN (" RECIPIENT_CANCELABLE_SQL ")"
	"  RETURNING id, message_id, account_id),"
	" e AS (INSERT INTO events (recipient_id, message_id, account_id, state, detail)"
	"  SELECT id, message_id, account_id, 'CANCELED', 'cancel_sm from the ESME' FROM u RETURNING 1)"
	" SELECT (SELECT count(*) FROM e),"
	" EXISTS (SELECT 1 FROM recipients WHERE id = $1 AND account_id = $2)",
	2, 0,
};

const struct store_stmt recipient_stmt_batch_cancel = {
	"batch_cancel",
	"WITH b AS (SELECT id FROM batches WHERE id = $1 AND ($2::bigint IS NULL OR account_id = $2)),"
	" bs AS (UPDATE batches x SET state = $3::text, canceled_at = CASE WHEN $3::text = 'CANCELED' THEN now() END,"
	"   error = CASE WHEN $3::text = 'FAILED' THEN $4::text END"
	"   FROM b WHERE x.id = b.id AND x.state IN ('LOADING', 'RUNNING') RETURNING x.state),"
	" c AS (SELECT r.id FROM recipients r WHERE r.batch_id = (SELECT id FROM b)"
	"   AND r.state IN (" RECIPIENT_CANCELABLE_SQL ") ORDER BY r.id FOR UPDATE),"
	" u AS (UPDATE recipients r SET state = 'CANCELED', final_at = now(), updated_at = now(),"
	"   release_at = NULL, push_deadline = NULL FROM c WHERE r.id = c.id AND r.state IN (" RECIPIENT_CANCELABLE_SQL ")"
	"   RETURNING r.id, r.message_id, r.account_id),"
	" e AS (INSERT INTO events (recipient_id, message_id, account_id, state, detail)"
	"   SELECT id, message_id, account_id, 'CANCELED', $4::text FROM u ORDER BY id)"
	" SELECT coalesce((SELECT state FROM bs), (SELECT state FROM batches WHERE id = (SELECT id FROM b))),"
	"  (SELECT count(*) FROM bs), (SELECT count(*) FROM u)"
	" FROM (SELECT 1) one WHERE EXISTS (SELECT 1 FROM b)",
	4, 0,
};
