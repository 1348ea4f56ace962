/*
 * router.c: the recipient state machine as SQL.  Owns every statement that
 * changes recipients.state; nothing else in pushgate writes that column.
 * Each statement moves a whole batch in one round trip (unnest of arrays)
 * and writes one events row per transition in the same statement, so the
 * history and the current state can't disagree.  Guards on the current
 * state (WHERE state = ...) make every transition idempotent: a duplicate
 * response or receipt moves nothing twice.
 */
#include "router.h"

const struct store_stmt router_stmt_auth = {
	"auth",
	"SELECT id FROM accounts WHERE api_key_hash = $1::bytea AND NOT disabled",
	1,
};

const struct store_stmt router_stmt_intake = {
	"intake",
	"WITH m AS ("
	"  INSERT INTO messages (account_id, sender, body) VALUES ($1, $2, $3) RETURNING id),"
	" r AS ("
	"  INSERT INTO recipients (message_id, account_id, msisdn, state, channel, route, expires_at)"
	"  SELECT m.id, $1, t.msisdn, 'SMS_QUEUED', 'sms', $5, now() + make_interval(secs => $6::float8)"
	"  FROM m, unnest($4::text[]) WITH ORDINALITY AS t(msisdn, ord) ORDER BY t.ord"
	"  RETURNING id, message_id, msisdn),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT r.id, r.message_id, $1, s.state, CASE WHEN s.o = 2 THEN $5 END, s.detail"
	"  FROM r, (VALUES (1, 'ACCEPTED', 'http'), (2, 'SMS_QUEUED', 'no push channel')) AS s(o, state, detail)"
	"  ORDER BY r.id, s.o)"
	" SELECT r.message_id, r.id, r.msisdn FROM r ORDER BY r.id",
	6,
};

const struct store_stmt router_stmt_message_json = {
	"message_json",
	"SELECT json_build_object('id', m.id, 'from', m.sender, 'text', m.body, 'created_at', m.created_at,"
	" 'recipients', coalesce((SELECT json_agg(json_build_object("
	"   'id', r.id, 'to', r.msisdn, 'state', r.state, 'channel', r.channel, 'route', r.route,"
	"   'smsc_id', r.smsc_id, 'error_code', r.error_code, 'attempts', r.attempts,"
	"   'updated_at', r.updated_at, 'final_at', r.final_at,"
	"   'events', coalesce((SELECT json_agg(json_build_object('at', e.at, 'kind', e.kind,"
	"       'state', e.state, 'error_code', e.error_code, 'smsc_id', e.smsc_id, 'detail', e.detail)"
	"       ORDER BY e.id) FROM events e WHERE e.recipient_id = r.id), '[]'::json)"
	"  ) ORDER BY r.id) FROM recipients r WHERE r.message_id = m.id), '[]'::json))::text"
	" FROM messages m WHERE m.id = $1 AND m.account_id = $2",
	2,
};

const struct store_stmt router_stmt_sms_lease = {
	"sms_lease",
	"WITH q AS ("
	"  SELECT id FROM recipients"
	"  WHERE state = 'SMS_QUEUED' AND route = $2 AND next_attempt_at <= now() AND expires_at > now()"
	"  ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),"
	" u AS ("
	"  UPDATE recipients r SET state = 'SMS_SUBMITTED', lease_owner = $1,"
	"    lease_until = now() + make_interval(secs => $4::float8), attempts = r.attempts + 1,"
	"    submitted_at = now(), updated_at = now()"
	"  FROM q, messages m WHERE r.id = q.id AND m.id = r.message_id"
	"  RETURNING r.id, r.message_id, r.account_id, r.msisdn, m.sender, m.body, r.attempts),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT id, message_id, account_id, 'SMS_SUBMITTED', $2, 'attempt ' || attempts FROM u ORDER BY id)"
	" SELECT id, msisdn, sender, body FROM u ORDER BY id",
	4,
};

const struct store_stmt router_stmt_sms_resp = {
	"sms_resp",
	"WITH d AS ("
	"  SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $6::text[])"
	"  AS d(id, smsc_id, status, outcome, detail)),"
	" u AS ("
	"  UPDATE recipients r SET"
	"    state = CASE d.outcome WHEN 'ok' THEN 'SMS_ACCEPTED' WHEN 'perm' THEN 'SMS_FAILED' ELSE 'SMS_QUEUED' END,"
	"    smsc_id = CASE WHEN d.outcome = 'ok' THEN d.smsc_id ELSE r.smsc_id END,"
	"    error_code = CASE WHEN d.outcome = 'ok' THEN NULL ELSE d.status END,"
	"    lease_owner = NULL, lease_until = NULL,"
	"    next_attempt_at = CASE WHEN d.outcome = 'temp'"
	"      THEN now() + make_interval(secs => $5::float8 * power(2, least(greatest(r.attempts - 1, 0), 10)))"
	"      ELSE r.next_attempt_at END,"
	"    final_at = CASE WHEN d.outcome = 'perm' THEN now() END,"
	"    updated_at = now()"
	"  FROM d WHERE r.id = d.id AND r.state = 'SMS_SUBMITTED'"
	"  RETURNING r.id, r.message_id, r.account_id, r.state, r.route, d.smsc_id, d.status, d.detail),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, smsc_id, error_code, detail)"
	"  SELECT id, message_id, account_id, state, route, smsc_id, NULLIF(status, 0), detail FROM u ORDER BY id)"
	" SELECT count(*) FROM u",
	6,
};

#define RECEIPT_FINALISE \
	"  UPDATE recipients x SET state = r.state,"                                       \
	"    error_code = CASE WHEN r.state = 'SMS_DELIVERED' THEN NULL ELSE r.err END,"    \
	"    final_at = now(), updated_at = now()"                                          \
	"  FROM r WHERE x.id = r.rid AND r.state IS NOT NULL AND x.state = 'SMS_ACCEPTED'"  \
	"  RETURNING x.id, x.message_id, x.account_id, x.state, x.route, x.smsc_id, x.error_code"

const struct store_stmt router_stmt_sms_receipts = {
	"sms_receipts",
	"WITH d AS ("
	"  SELECT * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY"
	"  AS d(smsc_id, state, err, detail, ord)),"
	" r AS ("
	"  SELECT DISTINCT ON (d.ord) d.*, rc.id AS rid, rc.message_id, rc.account_id"
	"  FROM d LEFT JOIN recipients rc ON rc.route = $1 AND rc.smsc_id = d.smsc_id"
	"  ORDER BY d.ord, rc.id DESC),"
	" u AS (" RECEIPT_FINALISE "),"
	" ev AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, kind, state, route, smsc_id, error_code, detail)"
	"  SELECT rid, message_id, account_id, kind, state, $1, smsc_id, err, detail FROM ("
	"    SELECT r.ord, 0 AS k, r.rid, r.message_id, r.account_id, 'receipt' AS kind, r.state, r.smsc_id, r.err, r.detail"
	"    FROM r WHERE r.rid IS NOT NULL"
	"    UNION ALL"
	"    SELECT r.ord, 1, u.id, u.message_id, u.account_id, 'state', u.state, u.smsc_id, u.error_code, NULL"
	"    FROM u JOIN (SELECT DISTINCT ON (rid) rid, ord FROM r ORDER BY rid, ord) r ON r.rid = u.id"
	"  ) x ORDER BY ord, k),"
	" pk AS ("
	"  INSERT INTO dlr_parked (route, smsc_id, state, error_code, detail)"
	"  SELECT $1, r.smsc_id, coalesce(r.state, ''), r.err, r.detail FROM r WHERE r.rid IS NULL ORDER BY r.ord)"
	" SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM r WHERE r.rid IS NULL)",
	5,
};

const struct store_stmt router_stmt_apply_parked = {
	"apply_parked",
	"WITH p AS ("
	"  DELETE FROM dlr_parked dp USING recipients rc"
	"  WHERE rc.route = dp.route AND rc.smsc_id = dp.smsc_id"
	"  RETURNING dp.id AS pid, dp.route, dp.smsc_id, NULLIF(dp.state, '') AS state, dp.error_code AS err,"
	"    dp.detail, rc.id AS rid, rc.message_id, rc.account_id),"
	" r AS (SELECT DISTINCT ON (rid) * FROM p ORDER BY rid, pid),"
	" u AS (" RECEIPT_FINALISE "),"
	" ev AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, kind, state, route, smsc_id, error_code, detail)"
	"  SELECT rid, message_id, account_id, kind, state, route, smsc_id, err, detail FROM ("
	"    SELECT p.pid, 0 AS k, p.rid, p.message_id, p.account_id, 'receipt' AS kind, p.state, p.route,"
	"      p.smsc_id, p.err, p.detail || ' (parked)' AS detail FROM p"
	"    UNION ALL"
	"    SELECT r.pid, 1, u.id, u.message_id, u.account_id, 'state', u.state, u.route, u.smsc_id, u.error_code, NULL"
	"    FROM u JOIN r ON r.rid = u.id"
	"  ) x ORDER BY pid, k)"
	" SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM u)",
	0,
};

const struct store_stmt router_stmt_sweep = {
	"sweep",
	"WITH a AS ("
	"  UPDATE recipients SET state = 'SMS_QUEUED', lease_owner = NULL, lease_until = NULL, updated_at = now()"
	"  WHERE state = 'SMS_SUBMITTED' AND lease_until < now()"
	"  RETURNING id, message_id, account_id, state, route, 'lease expired without a response: resend' AS detail),"
	" b AS ("
	"  UPDATE recipients SET state = 'SMS_EXPIRED', final_at = now(), updated_at = now()"
	"  WHERE state = 'SMS_QUEUED' AND expires_at < now()"
	"  RETURNING id, message_id, account_id, state, route, 'validity ended before submission' AS detail),"
	" c AS ("
	"  UPDATE recipients SET state = 'SMS_UNKNOWN', final_at = now(), updated_at = now()"
	"  WHERE state = 'SMS_ACCEPTED' AND expires_at < now()"
	"  RETURNING id, message_id, account_id, state, route, 'no receipt within validity' AS detail),"
	" x AS (SELECT * FROM a UNION ALL SELECT * FROM b UNION ALL SELECT * FROM c),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT id, message_id, account_id, state, route, detail FROM x ORDER BY id)"
	" SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), (SELECT count(*) FROM c)",
	0,
};
