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
	" t AS ("
	"  SELECT * FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS t(msisdn, route, ord)),"
	" r AS ("
	"  INSERT INTO recipients (message_id, account_id, msisdn, state, channel, route, expires_at, final_at)"
	"  SELECT m.id, $1, t.msisdn, CASE WHEN t.route IS NULL THEN 'SMS_FAILED' ELSE 'SMS_QUEUED' END, 'sms',"
	"    t.route, now() + make_interval(secs => $6::float8), CASE WHEN t.route IS NULL THEN now() END"
	"  FROM m, t ORDER BY t.ord"
	"  RETURNING id, message_id, msisdn, state, route),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT r.id, r.message_id, $1, s.state, s.route, s.detail FROM r, LATERAL (VALUES"
	"    (1, 'ACCEPTED', NULL, 'http'),"
	"    (2, r.state, r.route, CASE WHEN r.route IS NULL THEN 'no route for this number' ELSE 'no push channel' END)"
	"  ) AS s(o, state, route, detail) ORDER BY r.id, s.o)"
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
	"  WHERE state = 'SMS_QUEUED' AND route = ANY($2::text[]) AND next_attempt_at <= now() AND expires_at > now()"
	"  ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED),"
	" u AS ("
	"  UPDATE recipients r SET state = 'SMS_SUBMITTED', lease_owner = $1, route = $5,"
	"    lease_until = now() + make_interval(secs => $4::float8), attempts = r.attempts + 1,"
	"    submitted_at = now(), updated_at = now()"
	"  FROM q, messages m, recipients old WHERE r.id = q.id AND old.id = q.id AND m.id = r.message_id"
	"  RETURNING r.id, r.message_id, r.account_id, r.msisdn, m.sender, m.body, r.attempts, old.route AS was),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)"
	"  SELECT id, message_id, account_id, 'SMS_SUBMITTED', $5,"
	"    'attempt ' || attempts || CASE WHEN was <> $5 THEN ' via ' || $5 || ' (failover from ' || was || ')' ELSE '' END"
	"  FROM u ORDER BY id)"
	" SELECT u.id, u.msisdn, u.sender, u.body, u.account_id,"
	"  coalesce((SELECT array_agg(part_no ORDER BY part_no) FROM sms_parts sp WHERE sp.recipient_id = u.id), '{}')"
	" FROM u ORDER BY u.id",
	5,
};

const struct store_stmt router_stmt_sms_resp = {
	"sms_resp",
	"WITH d AS ("
	"  SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $6::int[], $7::text[])"
	"  AS d(id, outcome, status, detail, parts, smsc_id)),"
	" p AS ("
	"  INSERT INTO sms_parts (recipient_id, part_no, account_id, route, smsc_id, state)"
	"  SELECT x.rid, x.part_no, r.account_id, x.route, x.smsc_id, 'SMS_ACCEPTED'"
	"  FROM unnest($8::bigint[], $9::int[], $10::text[], $11::text[]) AS x(rid, part_no, smsc_id, route)"
	"  JOIN recipients r ON r.id = x.rid AND r.state = 'SMS_SUBMITTED'"
	"  ON CONFLICT (recipient_id, part_no) DO UPDATE SET smsc_id = excluded.smsc_id, route = excluded.route,"
	"    state = 'SMS_ACCEPTED', error_code = NULL, updated_at = now()),"
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
	"  FROM d WHERE r.id = d.id AND r.state = 'SMS_SUBMITTED'"
	"  RETURNING r.id, r.message_id, r.account_id, r.state, r.route, d.smsc_id, d.status, d.detail),"
	" e AS ("
	"  INSERT INTO events (recipient_id, message_id, account_id, state, route, smsc_id, error_code, detail)"
	"  SELECT id, message_id, account_id, state, route, smsc_id, NULLIF(status, 0), detail FROM u ORDER BY id)"
	" SELECT count(*) FROM u",
	11,
};

/*
 * Applies matched receipts `m` (recipient_id, part_no, smsc_id, route, state,
 * err, detail, ord) to their parts, and finalises a recipient once all its
 * parts are final: failed beats expired beats delivered.  Intermediate
 * receipts (state NULL) only leave an event.
 */
#define RECEIPT_APPLY(DETAIL_SUFFIX) \
	" pu AS ("                                                                               \
	"  UPDATE sms_parts sp SET state = m.state,"                                              \
	"    error_code = CASE WHEN m.state = 'SMS_DELIVERED' THEN NULL ELSE m.err END, updated_at = now()" \
	"  FROM m WHERE sp.recipient_id = m.recipient_id AND sp.part_no = m.part_no"             \
	"    AND m.state IS NOT NULL AND sp.state = 'SMS_ACCEPTED'"                               \
	"  RETURNING sp.recipient_id, sp.part_no, sp.state, sp.error_code),"                      \
	" np AS ("                                                                                \
	"  SELECT recipient_id, part_no, state, error_code FROM pu"                               \
	"  UNION ALL"                                                                             \
	"  SELECT sp.recipient_id, sp.part_no, sp.state, sp.error_code FROM sms_parts sp"        \
	"  WHERE sp.recipient_id IN (SELECT recipient_id FROM pu)"                                \
	"    AND NOT EXISTS (SELECT 1 FROM pu WHERE pu.recipient_id = sp.recipient_id AND pu.part_no = sp.part_no)),"  \
	" agg AS ("                                                                               \
	"  SELECT recipient_id, count(*) AS n,"                                                   \
	"    count(*) FILTER (WHERE state = 'SMS_DELIVERED') AS dl,"                              \
	"    count(*) FILTER (WHERE state = 'SMS_FAILED') AS fl,"                                 \
	"    count(*) FILTER (WHERE state = 'SMS_EXPIRED') AS ex,"                                \
	"    max(error_code) FILTER (WHERE state <> 'SMS_DELIVERED') AS err"                      \
	"  FROM np GROUP BY recipient_id),"                                                       \
	" u AS ("                                                                                 \
	"  UPDATE recipients x SET state = CASE WHEN agg.fl > 0 THEN 'SMS_FAILED'"               \
	"      WHEN agg.ex > 0 THEN 'SMS_EXPIRED' ELSE 'SMS_DELIVERED' END,"                       \
	"    error_code = CASE WHEN agg.fl + agg.ex > 0 THEN agg.err END,"                        \
	"    final_at = now(), updated_at = now()"                                                \
	"  FROM agg WHERE x.id = agg.recipient_id AND x.state = 'SMS_ACCEPTED'"                  \
	"    AND agg.dl + agg.fl + agg.ex = agg.n AND agg.n >= coalesce(x.parts, 1)"             \
	"  RETURNING x.id, x.message_id, x.account_id, x.state, x.route, x.smsc_id, x.error_code)," \
	" ev AS ("                                                                                \
	"  INSERT INTO events (recipient_id, message_id, account_id, kind, state, route, smsc_id, error_code, detail)" \
	"  SELECT rid, message_id, account_id, kind, state, route, smsc_id, err, detail FROM ("  \
	"    SELECT m.ord, 0 AS k, m.recipient_id AS rid, r.message_id, r.account_id, 'receipt' AS kind, m.state," \
	"      m.route, m.smsc_id, m.err, m.detail || CASE WHEN r.parts > 1 THEN ' (part ' || m.part_no || '/' || r.parts || ')' ELSE '' END" \
	"        || " DETAIL_SUFFIX " AS detail"                                                   \
	"    FROM m JOIN recipients r ON r.id = m.recipient_id"                                  \
	"    UNION ALL"                                                                           \
	"    SELECT o.ord, 1, u.id, u.message_id, u.account_id, 'state', u.state, u.route, u.smsc_id, u.error_code, NULL" \
	"    FROM u JOIN (SELECT recipient_id, max(ord) AS ord FROM m GROUP BY recipient_id) o ON o.recipient_id = u.id" \
	"  ) x ORDER BY ord, k)"

const struct store_stmt router_stmt_sms_receipts = {
	"sms_receipts",
	"WITH d AS ("
	"  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY"
	"  AS d(route, smsc_id, state, err, detail, ord)),"
	" dm AS ("
	"  SELECT DISTINCT ON (d.ord) d.*, sp.recipient_id, sp.part_no"
	"  FROM d LEFT JOIN sms_parts sp ON sp.route = d.route AND sp.smsc_id = d.smsc_id"
	"  ORDER BY d.ord, sp.recipient_id DESC),"
	" m AS (SELECT recipient_id, part_no, smsc_id, route, state, err, detail, ord FROM dm"
	"  WHERE recipient_id IS NOT NULL),"
	RECEIPT_APPLY("''") ","
	" pk AS ("
	"  INSERT INTO dlr_parked (route, smsc_id, state, error_code, detail)"
	"  SELECT route, smsc_id, coalesce(state, ''), err, detail FROM dm WHERE recipient_id IS NULL ORDER BY ord)"
	" SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM dm WHERE recipient_id IS NULL)",
	5,
};

const struct store_stmt router_stmt_apply_parked = {
	"apply_parked",
	"WITH p AS ("
	"  DELETE FROM dlr_parked dp USING sms_parts sp"
	"  WHERE sp.route = dp.route AND sp.smsc_id = dp.smsc_id"
	"  RETURNING dp.id AS ord, dp.route, dp.smsc_id, NULLIF(dp.state, '') AS state, dp.error_code AS err,"
	"    dp.detail, sp.recipient_id, sp.part_no),"
	" m AS (SELECT DISTINCT ON (ord) recipient_id, part_no, smsc_id, route, state, err, detail, ord FROM p ORDER BY ord),"
	RECEIPT_APPLY("' (parked)'")
	" SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM u)",
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

const struct store_stmt router_stmt_bind_stats = {
	"bind_stats",
	"INSERT INTO smpp_binds (node, route, bind, state, window_used, window_size, submits, resp_ok, resp_temp,"
	"  resp_perm, timeouts, receipts, receipts_delivered, receipts_failed, throttled, reconnects, updated_at)"
	" SELECT $1, x.* , now() FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::bigint[],"
	"  $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],"
	"  $15::bigint[], $16::bigint[]) AS x"
	" ON CONFLICT (node, route, bind) DO UPDATE SET state = excluded.state, window_used = excluded.window_used,"
	"  window_size = excluded.window_size, submits = excluded.submits, resp_ok = excluded.resp_ok,"
	"  resp_temp = excluded.resp_temp, resp_perm = excluded.resp_perm, timeouts = excluded.timeouts,"
	"  receipts = excluded.receipts, receipts_delivered = excluded.receipts_delivered,"
	"  receipts_failed = excluded.receipts_failed, throttled = excluded.throttled,"
	"  reconnects = excluded.reconnects, updated_at = now()",
	16,
};
