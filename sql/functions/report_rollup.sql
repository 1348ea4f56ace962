-- The report rollup job (sql/026): adds the events written in
-- [watermark, w) to report_counts and report_latency and moves the
-- watermark to w, in one transaction.  w is the start of the oldest
-- transaction still open (an event's `at` is clock_timestamp() inside its
-- transaction, so every event not yet committed is at or after it), no
-- later than a second before this one's start (a transaction that has just
-- begun shows in pg_stat_activity a moment later), and at most p_step past
-- the watermark (a database with years of history catches up in steps;
-- `behind` says more is due).
-- Seeing other sessions' transactions needs pg_read_all_stats
-- (docs/operations.md); without it nothing moves and `blocked` says why.
-- Nodes take turns: a run that finds another one under way returns at once
-- with `busy` (and `blocked` saying so); callers test `busy`, not the text.
-- Planned for each run's window (force_custom_plan): a generic plan knows
-- no window and could pick a scan of every event or recipient.
-- A function's result columns cannot change in place: the older form
-- without `busy` is dropped first, once (a database that already has
-- `busy` keeps its function and the rights granted on it).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = to_regprocedure('report_rollup(interval)')
               AND NOT 'busy' = ANY (p.proargnames)) THEN
        DROP FUNCTION report_rollup(interval);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION report_rollup(p_step interval DEFAULT '6 hours')
RETURNS TABLE (watermark timestamptz, events bigint, behind boolean, blocked text, busy boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    w_from timestamptz;
    w_to timestamptz;
    w_safe timestamptz;
    counted bigint := 0;
    more boolean := false;
BEGIN
    IF NOT pg_has_role('pg_read_all_stats', 'USAGE') THEN
        RETURN QUERY SELECT s.watermark, 0::bigint, false,
            'the role needs pg_read_all_stats to see open transactions'::text, false
            FROM report_rollup_state s WHERE s.id = 1;
        RETURN;
    END IF;
    SELECT s.watermark INTO w_from FROM report_rollup_state s WHERE s.id = 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN QUERY SELECT s.watermark, 0::bigint, false, 'another run is under way'::text, true
            FROM report_rollup_state s WHERE s.id = 1;
        RETURN;
    END IF;
    SELECT min(a.xact_start) INTO w_safe FROM pg_stat_activity a
    WHERE a.backend_type = 'client backend' AND a.datname = current_database();
    w_to := least(w_safe, transaction_timestamp() - interval '1 second');
    IF w_from IS NULL THEN
        SELECT min(m.created_at) INTO w_from FROM messages m;
        w_from := least(coalesce(w_from, w_to), w_to);
    END IF;
    IF w_to > w_from + p_step THEN
        w_to := w_from + p_step;
        more := true;
    END IF;
    IF w_to > w_from THEN
        WITH ev AS MATERIALIZED (
            SELECT e.recipient_id, e.message_id, e.state FROM events e
            WHERE e.at >= w_from AND e.at < w_to AND e.kind = 'state'
              AND (e.state = 'ACCEPTED' OR recipient_final(e.state))),
        x AS MATERIALIZED (
            SELECT date_bin('1 hour', m.created_at, '2000-01-01 00:00:00+00') AS hour, m.account_id, m.sender,
                   ev.state,
                   CASE WHEN ev.state = 'ACCEPTED' THEN '' ELSE coalesce(r.route, '') END AS route,
                   CASE WHEN ev.state = 'ACCEPTED' THEN '' ELSE coalesce(r.channel, '') END AS channel,
                   ev.state <> 'ACCEPTED' AND (ev.state = 'DROPPED' OR (r.channel = 'sms' AND EXISTS (
                       SELECT 1 FROM events o WHERE o.recipient_id = ev.recipient_id AND o.state = 'OPTED_OUT')))
                       AS opted_out,
                   ev.state <> 'ACCEPTED' AND r.push_deadline IS NOT NULL AS push_tried,
                   ev.state <> 'ACCEPTED' AND r.submitted_at IS NOT NULL AS submitted,
                   CASE ev.state WHEN 'PUSH_DELIVERED' THEN 'push' WHEN 'SMS_DELIVERED' THEN 'sms' END AS lat_kind,
                   extract(epoch FROM r.final_at - r.created_at)::float8 * 1000 AS lat_ms,
                   CASE WHEN ev.state = 'SMS_DELIVERED' AND r.submitted_at IS NOT NULL
                        THEN extract(epoch FROM r.final_at - r.submitted_at)::float8 * 1000 END AS receipt_ms
            FROM ev JOIN messages m ON m.id = ev.message_id
            LEFT JOIN recipients r ON r.id = ev.recipient_id AND ev.state <> 'ACCEPTED'),
        -- per UTC hour first (date_bin: plain arithmetic, no time zone per row), the days from those few rows
        xh AS MATERIALIZED (
            SELECT hour, account_id, sender, route, channel, state, opted_out, push_tried, submitted, count(*) AS n
            FROM x GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9),
        xl AS MATERIALIZED (
            SELECT x.hour, x.account_id, x.sender, k.route, k.kind, report_hist_bucket(k.ms) AS bucket, count(*) AS n
            FROM x CROSS JOIN LATERAL (VALUES (x.lat_kind, x.lat_ms, ''), ('receipt', x.receipt_ms, x.route))
                AS k(kind, ms, route)
            WHERE k.kind IS NOT NULL AND k.ms IS NOT NULL
            GROUP BY 1, 2, 3, 4, 5, 6),
        c AS (
            INSERT INTO report_counts AS t (grain, start, account_id, sender, route, channel, state, opted_out,
                                            push_tried, submitted, recipients)
            SELECT 'h', hour, account_id, sender, route, channel, state, opted_out, push_tried, submitted, n FROM xh
            UNION ALL
            SELECT 'd', date_bin('1 day', hour, '2000-01-01 00:00:00+00'), account_id, sender, route, channel, state,
                   opted_out, push_tried, submitted, sum(n)
            FROM xh GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10
            ON CONFLICT (grain, start, account_id, sender, route, channel, state, opted_out, push_tried, submitted)
            DO UPDATE SET recipients = t.recipients + excluded.recipients
            RETURNING 1),
        l AS (
            INSERT INTO report_latency AS t (grain, start, account_id, sender, route, kind, bucket, n)
            SELECT 'h', hour, account_id, sender, route, kind, bucket, n FROM xl
            UNION ALL
            SELECT 'd', date_bin('1 day', hour, '2000-01-01 00:00:00+00'), account_id, sender, route, kind, bucket,
                   sum(n)
            FROM xl GROUP BY 2, 3, 4, 5, 6, 7
            ON CONFLICT (grain, start, account_id, sender, route, kind, bucket)
            DO UPDATE SET n = t.n + excluded.n
            RETURNING 1)
        SELECT count(*) + 0 * ((SELECT count(*) FROM c) + (SELECT count(*) FROM l)) INTO counted FROM x;
        UPDATE report_rollup_state s SET watermark = w_to, updated_at = now(), events = s.events + counted WHERE s.id = 1;
    ELSE
        w_to := w_from;
    END IF;
    RETURN QUERY SELECT w_to, counted, more, NULL::text, false;
END
$$;
