-- 006_reports: what operators and senders read ([0035], [0037]: success
-- rates per channel; claims 3 and 6: push and carrier results reported).
--
-- Definitions.  A recipient counts once, by its current state:
--   push_delivered  PUSH_DELIVERED (the app stored it and sent its receipt)
--   sms_delivered   SMS_DELIVERED (every part's carrier receipt said DELIVRD)
--   failed          SMS_FAILED + SMS_EXPIRED
--   unknown         SMS_UNKNOWN (accepted by the carrier, no receipt within validity)
--   dropped         DROPPED (never sent: opt-out policy 'drop', or no usable channel)
--   canceled        CANCELED
--   pending         any state that is not final (ACCEPTED, SCHEDULED, HELD,
--                   PUSH_SENT, OPTED_OUT, SMS_QUEUED, SMS_SUBMITTED, SMS_ACCEPTED)
-- These seven columns add up to recipients.  One more column is counted by
-- history rather than by state, so it overlaps them:
--   opted_out       DROPPED + recipients whose events hold OPTED_OUT (they
--                   blocked the sender in the app; with policy 'sms' they
--                   also count in their SMS outcome)
-- Derived:
--   push_share      push_delivered / (push_delivered + sms_delivered), 0..1, NULL when both are 0
--   sms_saved       push_delivered: each one is an SMS not paid for
--   latency         final_at - created_at of delivered recipients, per channel,
--                   p50 and p95 (percentile_cont) in milliseconds
-- A recipient belongs to the time its message was accepted
-- (messages.created_at); days are UTC days.
--
-- Speed: a time window starts from messages.created_at (index below, or
-- messages_account_created for one account) and reaches recipients
-- through recipients_message; one batch through
-- recipients_batch_state; the opt-out probe per recipient is one lookup in
-- a partial index that holds only OPTED_OUT events.  Filters on a view's
-- grouping columns (batch_id, account_id, sender, route) are pushed below
-- the aggregation by the planner, so `WHERE batch_id = N` reads one batch.

CREATE INDEX messages_created ON messages (created_at);
CREATE INDEX events_opted_out ON events (recipient_id) WHERE state = 'OPTED_OUT';

-- One row per recipient with its report class.  The base of every report.
CREATE VIEW report_recipients AS
SELECT r.id AS recipient_id, r.message_id, m.account_id, a.name AS account, m.sender, r.batch_id,
       m.created_at AS accepted_at, (m.created_at AT TIME ZONE 'UTC')::date AS day,
       r.route, r.channel, r.state,
       CASE r.state
           WHEN 'PUSH_DELIVERED' THEN 'push_delivered'
           WHEN 'SMS_DELIVERED' THEN 'sms_delivered'
           WHEN 'SMS_FAILED' THEN 'failed'
           WHEN 'SMS_EXPIRED' THEN 'failed'
           WHEN 'SMS_UNKNOWN' THEN 'unknown'
           WHEN 'DROPPED' THEN 'dropped'
           WHEN 'CANCELED' THEN 'canceled'
           ELSE 'pending' END AS outcome,
       -- Only DROPPED and SMS-path recipients can have opted out: others skip the probe.
       (r.state = 'DROPPED' OR (r.channel = 'sms' AND EXISTS (
           SELECT 1 FROM events e WHERE e.recipient_id = r.id AND e.state = 'OPTED_OUT'))) AS opted_out,
       r.push_deadline IS NOT NULL AS push_tried,
       r.created_at, r.submitted_at, r.final_at,
       CASE WHEN r.state IN ('PUSH_DELIVERED', 'SMS_DELIVERED')
            THEN extract(epoch FROM r.final_at - r.created_at)::float8 * 1000 END AS latency_ms,
       CASE WHEN r.state IN ('SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED') AND r.submitted_at IS NOT NULL
            THEN extract(epoch FROM r.final_at - r.submitted_at)::float8 * 1000 END AS receipt_latency_ms
FROM recipients r
JOIN messages m ON m.id = r.message_id
JOIN accounts a ON a.id = m.account_id;

-- The outcome columns, grouped by `p_by`: 'total' (one row), 'account',
-- 'sender' (account + sender), 'day' (day + account + sender) or 'batch'
-- (batch + account); key columns that `p_by` does not use are NULL.  Only
-- messages accepted at or after `p_since`.  One SQL SELECT, STABLE, not
-- STRICT: the planner inlines it, folds the CASEs on the constant `p_by`,
-- and pushes outer filters on the key columns below the GROUP BY.
CREATE FUNCTION report_outcomes(p_since timestamptz, p_by text)
RETURNS TABLE (day date, account_id bigint, account text, sender text, batch_id bigint,
               recipients bigint, push_delivered bigint, sms_delivered bigint, failed bigint,
               opted_out bigint, unknown bigint, dropped bigint, canceled bigint, pending bigint,
               push_share numeric, sms_saved bigint,
               push_p50_ms bigint, push_p95_ms bigint, sms_p50_ms bigint, sms_p95_ms bigint)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_by = 'day' THEN x.day END,
           CASE WHEN p_by IN ('account', 'sender', 'day', 'batch') THEN x.account_id END,
           CASE WHEN p_by IN ('account', 'sender', 'day', 'batch') THEN x.account END,
           CASE WHEN p_by IN ('sender', 'day') THEN x.sender END,
           CASE WHEN p_by = 'batch' THEN x.batch_id END,
           count(*),
           count(*) FILTER (WHERE x.outcome = 'push_delivered'),
           count(*) FILTER (WHERE x.outcome = 'sms_delivered'),
           count(*) FILTER (WHERE x.outcome = 'failed'),
           count(*) FILTER (WHERE x.opted_out),
           count(*) FILTER (WHERE x.outcome = 'unknown'),
           count(*) FILTER (WHERE x.outcome = 'dropped'),
           count(*) FILTER (WHERE x.outcome = 'canceled'),
           count(*) FILTER (WHERE x.outcome = 'pending'),
           round(count(*) FILTER (WHERE x.outcome = 'push_delivered')::numeric
                 / nullif(count(*) FILTER (WHERE x.outcome IN ('push_delivered', 'sms_delivered')), 0), 4),
           count(*) FILTER (WHERE x.outcome = 'push_delivered'),
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'push_delivered'))::bigint,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'push_delivered'))::bigint,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint
    FROM report_recipients x
    WHERE x.accepted_at >= p_since
    GROUP BY 1, 2, 3, 4, 5
$$;

-- SMS per route (carrier): recipients on the route, submitted at least
-- once, delivered, failed (SMS_FAILED + SMS_EXPIRED), unknown, pending,
-- delivery_rate = delivered / (delivered + failed + unknown), and the
-- receipt latency final_at - submitted_at (last submit) of delivered SMS.
CREATE FUNCTION report_routes(p_since timestamptz)
RETURNS TABLE (route text, recipients bigint, submitted bigint, delivered bigint, failed bigint,
               unknown bigint, pending bigint, delivery_rate numeric,
               receipt_p50_ms bigint, receipt_p95_ms bigint)
LANGUAGE sql STABLE AS $$
    SELECT x.route, count(*),
           count(*) FILTER (WHERE x.submitted_at IS NOT NULL),
           count(*) FILTER (WHERE x.outcome = 'sms_delivered'),
           count(*) FILTER (WHERE x.outcome = 'failed'),
           count(*) FILTER (WHERE x.outcome = 'unknown'),
           count(*) FILTER (WHERE x.outcome = 'pending'),
           round(count(*) FILTER (WHERE x.outcome = 'sms_delivered')::numeric
                 / nullif(count(*) FILTER (WHERE x.outcome IN ('sms_delivered', 'failed', 'unknown')), 0), 4),
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.receipt_latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x.receipt_latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint
    FROM report_recipients x
    WHERE x.accepted_at >= p_since AND x.channel = 'sms' AND x.route IS NOT NULL
    GROUP BY x.route
$$;

CREATE VIEW report_by_day AS
    SELECT day, account_id, account, sender, recipients, push_delivered, sms_delivered, failed, opted_out,
           unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms
    FROM report_outcomes('-infinity', 'day');

CREATE VIEW report_by_sender AS
    SELECT account_id, account, sender, recipients, push_delivered, sms_delivered, failed, opted_out,
           unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms
    FROM report_outcomes('-infinity', 'sender');

CREATE VIEW report_by_batch AS
    SELECT batch_id, account_id, account, recipients, push_delivered, sms_delivered, failed, opted_out,
           unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms
    FROM report_outcomes('-infinity', 'batch')
    WHERE batch_id IS NOT NULL;

-- One batch's recipients per current state (index-only on recipients_batch_state).
CREATE VIEW report_by_batch_state AS
    SELECT batch_id, state, count(*) AS recipients
    FROM recipients WHERE batch_id IS NOT NULL
    GROUP BY batch_id, state;

CREATE VIEW report_by_route AS
    SELECT * FROM report_routes('-infinity');

-- Success per channel and day ([0035], [0037]).  push: recipients pushed
-- (a push deadline was set), delivered = PUSH_DELIVERED, pending =
-- PUSH_SENT, fell_back = went on to SMS or was dropped after the push.
-- sms: recipients on the SMS path, delivered = SMS_DELIVERED, failed =
-- SMS_FAILED + SMS_EXPIRED, unknown = SMS_UNKNOWN (and dropped or
-- canceled, counted in recipients only).  success_rate =
-- delivered / the recipients whose channel result is known (not pending).
CREATE VIEW report_by_channel AS
    SELECT x.day, x.account_id, x.account, c.channel, count(*) AS recipients,
           count(*) FILTER (WHERE c.result = 'delivered') AS delivered,
           count(*) FILTER (WHERE c.result = 'failed') AS failed,
           count(*) FILTER (WHERE c.result = 'unknown') AS unknown,
           count(*) FILTER (WHERE c.result = 'fell_back') AS fell_back,
           count(*) FILTER (WHERE c.result = 'pending') AS pending,
           round(count(*) FILTER (WHERE c.result = 'delivered')::numeric
                 / nullif(count(*) FILTER (WHERE c.result <> 'pending'), 0), 4) AS success_rate,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE c.result = 'delivered'))::bigint AS p50_ms,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE c.result = 'delivered'))::bigint AS p95_ms
    FROM report_recipients x
    CROSS JOIN LATERAL (VALUES
        ('push', CASE WHEN NOT x.push_tried THEN NULL
                      WHEN x.state = 'PUSH_DELIVERED' THEN 'delivered'
                      WHEN x.state = 'PUSH_SENT' THEN 'pending'
                      ELSE 'fell_back' END),
        ('sms', CASE WHEN x.channel IS DISTINCT FROM 'sms' THEN NULL
                     WHEN x.outcome = 'sms_delivered' THEN 'delivered'
                     WHEN x.outcome IN ('failed', 'unknown') THEN x.outcome
                     ELSE x.outcome END)) AS c(channel, result)
    WHERE c.result IS NOT NULL
    GROUP BY x.day, x.account_id, x.account, c.channel;
