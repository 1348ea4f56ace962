/*
 * stmts.c: the SQL statements that never change a recipient's state (those
 * that do are recipient.c's): API key and device lookups, the status and
 * report JSON, bind counters, push reads, opt-out clearing, device
 * verification and listing, platform push (subscriptions, claims and
 * outcomes of wakes), campaign rows; and the report window's parser.
 */
#include "stmts.h"

#include <stdio.h>

#include "recipient.h"

const struct store_stmt stmts_auth = {
	"auth",
	/* the current key, or the one it replaced while its grace lasts (seconds left last) */
	"SELECT id, role, name, rate_limit, NULL::float8, request_limit FROM accounts"
	" WHERE api_key_hash = $1::bytea AND NOT disabled"
	" UNION ALL"
	" SELECT id, role, name, rate_limit, extract(epoch FROM prev_key_until - now())::float8, request_limit FROM accounts"
	" WHERE prev_key_hash = $1::bytea AND prev_key_until > now() AND NOT disabled"
	" LIMIT 1",
	1, 0,
};

const struct store_stmt stmts_message_json = {
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
	2, 0,
};

const struct store_stmt stmts_bind_stats = {
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
	16, 0,
};

/* --- push channel ---------------------------------------------------------------- */

const struct store_stmt stmts_device_auth = {
	"device_auth",
	"UPDATE devices d SET last_seen_at = now(), socket_node = $2 FROM unnest($1::text[]) WITH ORDINALITY AS x(h, ord)"
	" WHERE d.token_hash = decode(x.h, 'hex') AND d.verified_at IS NOT NULL AND d.revoked_at IS NULL"
	" RETURNING x.ord, d.id, d.msisdn",
	2, 0,
};

const struct store_stmt stmts_device_sockets_gone = {
	"device_sockets_gone",
	/* platform push may wake them now: every node's wake.c hears their numbers */
	"WITH u AS (UPDATE devices SET socket_node = NULL WHERE id = ANY($1::bigint[]) AND socket_node = $2 RETURNING msisdn)"
	" SELECT pg_notify('pushgate_wake', x.msisdn) FROM (SELECT DISTINCT msisdn FROM u) x",
	2, 0,
};

const struct store_stmt stmts_device_sockets_take_back = {
	"device_sockets_take_back",
	"WITH u AS (UPDATE devices SET socket_node = NULL WHERE socket_node = $1 RETURNING 1) SELECT count(*) FROM u",
	1, 0,
};

const struct store_stmt stmts_device_by_token = {
	"device_by_token",
	"SELECT id, msisdn FROM devices WHERE token_hash = $1::bytea AND verified_at IS NOT NULL AND revoked_at IS NULL",
	1, 0,
};

#define PUSH_MSG_COLUMNS \
	" r.id, r.msisdn, m.sender, coalesce(r.text, m.body)," \
	" " STMTS_ISO_TS("m.created_at")

const struct store_stmt stmts_push_pending = {
	"push_pending",
	"SELECT" PUSH_MSG_COLUMNS
	" FROM recipients r JOIN messages m ON m.id = r.message_id"
	" WHERE r.msisdn = ANY($1::text[]) AND r.state = 'PUSH_SENT' ORDER BY r.id",
	1, 0,
};

const struct store_stmt stmts_push_of_messages = {
	"push_of_messages",
	"SELECT" PUSH_MSG_COLUMNS
	" FROM recipients r JOIN messages m ON m.id = r.message_id"
	" WHERE r.message_id = ANY($1::bigint[]) AND r.state = 'PUSH_SENT' ORDER BY r.id",
	1, 0,
};

/* --- platform push (wake.c, devices.c) ------------------------------------------------ */

const struct store_stmt stmts_wakeup_set = {
	"wakeup_set",
	"WITH s AS (INSERT INTO device_wakeups (device_id, kind, endpoint, p256dh, auth, app)"
	" VALUES ($1, $2, $3, decode($4, 'hex'), decode($5, 'hex'), $6)"
	" ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind, endpoint = excluded.endpoint,"
	"  p256dh = excluded.p256dh, auth = excluded.auth, app = excluded.app, created_at = now(),"
	"  revoked_at = NULL, revoked_why = NULL RETURNING device_id)"
	/* what waits for the number may be woken now, by any node */
	" SELECT pg_notify('pushgate_wake', d.msisdn) FROM s JOIN devices d ON d.id = s.device_id",
	6, 0,
};

const struct store_stmt stmts_wakeup_clear = {
	"wakeup_clear",
	"UPDATE device_wakeups SET revoked_at = now(), revoked_why = 'removed by the device'"
	" WHERE device_id = $1 AND revoked_at IS NULL RETURNING device_id",
	1, 0,
};

/*
 * What a claim returns, and the test that the device has no live socket: no
 * node holds it, or its node is gone (holds no advisory lock on its name,
 * node.c).  The claim is the insert into wakes: of two nodes claiming the
 * same (recipient, device), one gets the row.
 */
#define WAKE_LIVE \
	"WITH live AS MATERIALIZED (SELECT l.objid FROM pg_locks l WHERE l.locktype = 'advisory'" \
	"  AND l.classid = 1886745448 AND l.objsubid = 2 AND l.granted),"
#define WAKE_NO_SOCKET "(d.socket_node IS NULL OR hashtext(d.socket_node)::oid NOT IN (SELECT objid FROM live))"
/* Not claimed yet: a probe of wakes' primary key per pair (a subquery, never an anti-join over wakes). */
#define WAKE_UNCLAIMED "(SELECT count(*) FROM wakes k WHERE k.recipient_id = r.id AND k.device_id = d.id) = 0"
#define WAKE_CANDIDATE \
	"  SELECT r.id AS rid, d.id AS did, w.kind"
#define WAKE_CLAIM \
	" i AS (INSERT INTO wakes (recipient_id, device_id, node, kind) SELECT rid, did, $2, kind FROM c ORDER BY rid, did" \
	"  ON CONFLICT DO NOTHING RETURNING recipient_id, device_id)" \
	/* what each claimed pair needs, by key from the claim (a join with c compared every pair with every other) */ \
	" SELECT i.recipient_id, i.device_id, w.kind, w.endpoint, encode(w.p256dh, 'hex'), encode(w.auth, 'hex'), w.app," \
	"  extract(epoch FROM r.push_deadline - now())::float8, m.purpose, m.sender, coalesce(r.text, m.body)," \
	"  " STMTS_ISO_TS("m.created_at") ", r.msisdn" \
	" FROM i JOIN recipients r ON r.id = i.recipient_id JOIN messages m ON m.id = r.message_id" \
	" JOIN device_wakeups w ON w.device_id = i.device_id ORDER BY i.recipient_id, i.device_id"

/*
 * Driven from each message by (message_id, id): a page of the recipients
 * that have a device to wake (EXISTS: the same conditions as the pairs),
 * from $4 on in id order, so the generic plan walks each message's own
 * rows; a plan ordered by the primary key alone walked every recipient.
 */
const struct store_stmt stmts_wake_claim_messages = {
	"wake_claim_messages",
	WAKE_LIVE
	" rr AS MATERIALIZED ("
	"  SELECT x.id FROM unnest($1::bigint[]) AS q(mid)"
	"  CROSS JOIN LATERAL (SELECT r.id FROM recipients r"
	"   WHERE r.message_id = q.mid AND r.id >= $4::bigint AND r.state = 'PUSH_SENT' AND r.push_deadline > now()"
	"    AND EXISTS (SELECT 1 FROM devices d JOIN device_wakeups w ON w.device_id = d.id AND w.revoked_at IS NULL"
	"     WHERE d.msisdn = r.msisdn AND d.verified_at IS NOT NULL AND d.revoked_at IS NULL AND " WAKE_NO_SOCKET
	"      AND " WAKE_UNCLAIMED ")"
	"   ORDER BY r.id LIMIT $3::int) x"
	"  ORDER BY x.id LIMIT $3::int),"
	" c AS MATERIALIZED ("
	WAKE_CANDIDATE
	"  FROM rr JOIN recipients r ON r.id = rr.id JOIN messages m ON m.id = r.message_id"
	"  JOIN devices d ON d.msisdn = r.msisdn AND d.verified_at IS NOT NULL AND d.revoked_at IS NULL"
	"  JOIN device_wakeups w ON w.device_id = d.id AND w.revoked_at IS NULL"
	"  WHERE " WAKE_NO_SOCKET
	"   AND " WAKE_UNCLAIMED
	"  ORDER BY r.id, d.id LIMIT $3::int),"
	WAKE_CLAIM,
	4, 0,
};

const struct store_stmt stmts_wake_claim_numbers = {
	"wake_claim_numbers",
	WAKE_LIVE
	" c AS MATERIALIZED ("
	WAKE_CANDIDATE
	"  FROM unnest($1::text[]) AS q(msisdn)"
	"  JOIN recipients r ON r.msisdn = q.msisdn AND r.state = 'PUSH_SENT'"
	"  JOIN messages m ON m.id = r.message_id"
	"  JOIN devices d ON d.msisdn = r.msisdn AND d.verified_at IS NOT NULL AND d.revoked_at IS NULL"
	"  JOIN device_wakeups w ON w.device_id = d.id AND w.revoked_at IS NULL"
	"  WHERE r.push_deadline > now() AND " WAKE_NO_SOCKET " AND " WAKE_UNCLAIMED
	"  LIMIT $3::int),"
	WAKE_CLAIM,
	3, 0,
};

const struct store_stmt stmts_wake_claim_scan = {
	"wake_claim_scan",
	WAKE_LIVE
	" c AS MATERIALIZED ("
	WAKE_CANDIDATE
	"  FROM device_wakeups w"
	"  JOIN devices d ON d.id = w.device_id AND d.verified_at IS NOT NULL AND d.revoked_at IS NULL"
	"  JOIN recipients r ON r.msisdn = d.msisdn AND r.state = 'PUSH_SENT'"
	"  JOIN messages m ON m.id = r.message_id"
	"  WHERE w.revoked_at IS NULL AND r.push_deadline > now() AND " WAKE_NO_SOCKET
	"   AND " WAKE_UNCLAIMED
	"  LIMIT $1::int),"
	WAKE_CLAIM,
	2, 0,
};

const struct store_stmt stmts_wake_outcomes = {
	"wake_outcomes",
	"WITH d AS MATERIALIZED (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[],"
	"   $6::bool[], $7::bool[]) AS d(rid, did, status, kind, detail, done, revoke)),"
	" u AS (UPDATE wakes w SET status = d.status, attempts = w.attempts + 1,"
	"   done_at = CASE WHEN d.done THEN now() END"
	"  FROM d WHERE w.recipient_id = d.rid AND w.device_id = d.did),"
	" v AS (UPDATE device_wakeups x SET revoked_at = now(), revoked_why = d.detail"
	"  FROM d WHERE d.revoke AND x.device_id = d.did AND x.revoked_at IS NULL RETURNING x.device_id),"
	" e AS (INSERT INTO events (recipient_id, message_id, account_id, kind, state, route, error_code, detail)"
	"  SELECT r.id, r.message_id, r.account_id, 'wake', 'PUSH_SENT', d.kind, NULLIF(d.status, 0), d.detail"
	"  FROM d CROSS JOIN LATERAL (SELECT id, message_id, account_id FROM recipients WHERE id = d.rid) r"
	"  ORDER BY d.rid, d.did)"
	" SELECT (SELECT count(*) FROM v)",
	7, 0,
};

const struct store_stmt stmts_push_allow = {
	"push_allow",
	"WITH d AS (DELETE FROM opt_outs WHERE msisdn = $1 AND sender = $2 RETURNING 1),"
	" l AS (INSERT INTO opt_out_log (msisdn, sender, action, source, device_id) VALUES ($1, $2, 'allow', 'app', $3))"
	" SELECT count(*) FROM d",
	3, 0,
};

/*
 * Verification: $1 device id, $2 code hash, $3 token hash, $4 most attempts
 * per registration, $5 most attempts per number in a day, whatever the
 * registrations (new ones would otherwise bring new tries every 30 s).
 * Row: ok, msisdn, void (expired, too many attempts, or the number's
 * budget spent); none: no such pending device (or its code was voided by
 * a newer one).
 */
const struct store_stmt stmts_device_verify = {
	"device_verify",
	"WITH c AS ("
	"  SELECT id, code_hash = $2::bytea AND code_expires_at > now() AND code_attempts < $4"
	"    AND (SELECT coalesce(sum(o.code_attempts), 0) FROM devices o"
	"         WHERE o.msisdn = x.msisdn AND o.created_at > now() - interval '1 day') < $5 AS ok"
	"  FROM devices x WHERE id = $1 AND verified_at IS NULL AND revoked_at IS NULL AND code_hash IS NOT NULL"
	"  FOR UPDATE)"
	" UPDATE devices d SET code_attempts = d.code_attempts + 1,"
	"   verified_at = CASE WHEN c.ok THEN now() END,"
	"   token_hash = CASE WHEN c.ok THEN $3::bytea END,"
	"   code_hash = CASE WHEN c.ok THEN NULL ELSE d.code_hash END"
	" FROM c WHERE d.id = c.id"
	" RETURNING c.ok, d.msisdn, NOT c.ok AND (d.code_attempts >= $4 OR d.code_expires_at <= now()"
	"   OR (SELECT coalesce(sum(o.code_attempts), 0) FROM devices o"
	"       WHERE o.msisdn = d.msisdn AND o.created_at > now() - interval '1 day') >= $5) AS void",
	5, 0,
};

/* Logout: $1 device id, $2 token hash.  Row when revoked. */
const struct store_stmt stmts_device_revoke = {
	"device_revoke",
	"UPDATE devices SET revoked_at = now() WHERE id = $1 AND token_hash = $2::bytea AND revoked_at IS NULL RETURNING id",
	2, 0,
};

/* Operators: a number's devices as JSON.  $1 msisdn. */
const struct store_stmt stmts_devices_json = {
	"devices_json",
	"SELECT coalesce(json_agg(json_build_object('id', id, 'platform', platform, 'created_at', created_at,"
	" 'verified_at', verified_at, 'revoked_at', revoked_at, 'last_seen_at', last_seen_at) ORDER BY created_at, id),"
	" '[]'::json)::text"
	" FROM devices WHERE msisdn = $1",
	1, 0,
};

/* --- reports (sql/functions/report_*.sql) ------------------------------------------------ */

static int take_digits(const char **p, int n, int *val)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;   /* also stops at the NUL: nothing past it is read */
		v = v * 10 + (c - '0');
	}
	*p += n;
	*val = v;
	return 0;
}

int stmts_parse_since(const char *in, char *out, size_t outlen)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = in;
	int y, mo, d, h = 0, mi = 0, s = 0, tzh = 0, tzm = 0;
	char frac[7] = "", sign = '+';

	if (take_digits(&p, 4, &y) < 0 || *p++ != '-' || take_digits(&p, 2, &mo) < 0 || *p++ != '-'
	    || take_digits(&p, 2, &d) < 0)
		return -1;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (take_digits(&p, 2, &h) < 0 || *p++ != ':' || take_digits(&p, 2, &mi) < 0)
			return -1;
		if (*p == ':') {
			p++;
			if (take_digits(&p, 2, &s) < 0)
				return -1;
			if (*p == '.') {
				size_t n = 0;
				for (p++; *p >= '0' && *p <= '9'; p++) {
					if (n + 1 >= sizeof(frac))
						return -1;
					frac[n++] = *p;
				}
				if (n == 0)
					return -1;
				frac[n] = '\0';
			}
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p++;
			if (take_digits(&p, 2, &tzh) < 0)
				return -1;
			if (*p == ':')
				p++;
			if (*p && take_digits(&p, 2, &tzm) < 0)
				return -1;
		}
	}
	if (*p != '\0')
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 59
	    || tzh > 14 || tzm > 59)
		return -1;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	int n = snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d%s%s%c%02d:%02d", y, mo, d, h, mi, s,
			 frac[0] ? "." : "", frac, sign, tzh, tzm);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* The rollups count whole hours: the window starts at the hour of $1; as_of is their watermark. */
#define REPORT_ROLLED_SINCE STMTS_ISO_TS("date_trunc('hour', $1::timestamptz, 'UTC')")
#define REPORT_ROLLED_AS_OF STMTS_ISO_TS("(SELECT watermark FROM report_rollup_state WHERE id = 1)")

/*
 * The summary object of GET /v1/reports/summary; o is report_outcomes() or,
 * for a campaign, report_outcomes_raw() (LEFT JOINed: no row = zeros).
 */
#define REPORT_SUMMARY_JSON(ACCOUNT, BATCH, SINCE, AS_OF) \
	"SELECT json_build_object('account', " ACCOUNT ", 'batch', " BATCH "," \
	" 'since', " SINCE ", 'as_of', " AS_OF "," \
	" 'recipients', coalesce(o.recipients, 0), 'push_delivered', coalesce(o.push_delivered, 0)," \
	" 'sms_delivered', coalesce(o.sms_delivered, 0), 'failed', coalesce(o.failed, 0)," \
	" 'opted_out', coalesce(o.opted_out, 0), 'unknown', coalesce(o.unknown, 0)," \
	" 'dropped', coalesce(o.dropped, 0), 'canceled', coalesce(o.canceled, 0)," \
	" 'pending', coalesce(o.pending, 0), 'push_share', o.push_share, 'sms_saved', coalesce(o.sms_saved, 0)," \
	" 'latency_ms', json_build_object(" \
	"   'push', json_build_object('p50', o.push_p50_ms, 'p95', o.push_p95_ms)," \
	"   'sms', json_build_object('p50', o.sms_p50_ms, 'p95', o.sms_p95_ms)))::text"

/* Unprepared: planned with the values, so report_outcomes() is inlined with constants and reads its hours and days. */
const struct store_stmt stmts_report_account = {
	"report_account",
	REPORT_SUMMARY_JSON("a.name", "NULL::bigint", REPORT_ROLLED_SINCE, REPORT_ROLLED_AS_OF)
	" FROM accounts a LEFT JOIN report_outcomes($1::timestamptz, 'account') o ON o.account_id = a.id"
	" WHERE a.id = $2::bigint",
	2, 1,
};

const struct store_stmt stmts_report_named = {
	"report_named",
	REPORT_SUMMARY_JSON("a.name", "NULL::bigint", REPORT_ROLLED_SINCE, REPORT_ROLLED_AS_OF)
	" FROM accounts a LEFT JOIN report_outcomes($1::timestamptz, 'account') o ON o.account_id = a.id"
	" WHERE a.name = $2",
	2, 1,
};

const struct store_stmt stmts_report_all = {
	"report_all",
	REPORT_SUMMARY_JSON("NULL::text", "NULL::bigint", REPORT_ROLLED_SINCE, REPORT_ROLLED_AS_OF)
	" FROM (SELECT 1) s LEFT JOIN report_outcomes($1::timestamptz, 'total') o ON true",
	1, 1,
};

/* The join on b.id = $2 reaches report_outcomes_raw() as batch_id = $2: one batch's rows are read, live. */
const struct store_stmt stmts_report_batch = {
	"report_batch",
	REPORT_SUMMARY_JSON("a.name", "b.id", STMTS_ISO_TS("$1::timestamptz"), "NULL::text")
	" FROM batches b JOIN accounts a ON a.id = b.account_id"
	" LEFT JOIN report_outcomes_raw($1::timestamptz, 'batch') o ON o.batch_id = b.id"
	" WHERE b.id = $2::bigint AND ($3::bigint IS NULL OR b.account_id = $3::bigint)",
	3, 1,
};

const struct store_stmt stmts_kannel_auth = {
	"kannel_auth",
	"SELECT id, role, name, rate_limit FROM accounts WHERE api_key_hash = $1::bytea AND name = $2::text AND NOT disabled",
	2, 0,
};

const struct store_stmt stmts_batch_create = {
	"batch_create",
	"INSERT INTO batches (account_id, name, state, total) VALUES ($1, $2::text, 'LOADING', $3::int) RETURNING id",
	3, 0,
};

const struct store_stmt stmts_batch_loaded = {
	"batch_loaded",
	"UPDATE batches SET state = CASE WHEN state = 'LOADING' THEN 'RUNNING' ELSE state END,"
	" total = $2::int, loaded_at = now() WHERE id = $1 RETURNING state",
	2, 0,
};

/*
 * Running campaigns whose recipients are all in and all final become DONE
 * (the sweeper, every few seconds; nobody has to read them).  An open
 * recipient is looked for by key (recipients_batch_state, one probe per open
 * state); only a campaign with none left is counted whole, once.
 */
const struct store_stmt stmts_batches_done = {
	"batches_done",
	"UPDATE batches b SET state = 'DONE', done_at = now()"
	" WHERE b.state = 'RUNNING' AND b.loaded_at IS NOT NULL"
	"   AND CASE WHEN EXISTS (SELECT 1 FROM recipients r WHERE r.batch_id = b.id"
	"                         AND r.state IN (" RECIPIENT_OPEN_SQL "))"
	"     THEN false ELSE (SELECT count(*) FROM recipients r WHERE r.batch_id = b.id) >= b.total END"
	" RETURNING b.id",
	0, 0,
};

const struct store_stmt stmts_batch_json = {
	"batch_json",
	"WITH b AS (SELECT * FROM batches WHERE id = $1 AND account_id = $2),"
	" s AS (SELECT state, count(*) AS n FROM recipients WHERE batch_id = (SELECT id FROM b) GROUP BY state),"
	" t AS (SELECT coalesce(sum(n), 0)::bigint AS loaded,"
	"   coalesce(sum(n) FILTER (WHERE state IN (" RECIPIENT_FINAL_SQL ")), 0)::bigint AS final FROM s)"
	/* DONE as soon as it is (the sweeper writes it within seconds: stmts_batches_done) */
	" SELECT json_build_object('id', b.id, 'name', b.name,"
	"  'state', CASE WHEN b.state = 'RUNNING' AND b.loaded_at IS NOT NULL AND t.final >= t.loaded"
	"    AND t.loaded >= b.total THEN 'DONE' ELSE b.state END,"
	"  'total', b.total, 'loaded', t.loaded, 'final', t.final, 'pending', b.total - t.final,"
	"  'by_state', (SELECT coalesce(json_object_agg(state, n ORDER BY state), '{}'::json) FROM s),"
	"  'created_at', b.created_at, 'loaded_at', b.loaded_at, 'done_at', b.done_at, 'canceled_at', b.canceled_at,"
	"  'error', b.error)::text"
	" FROM b, t",
	2, 0,
};
