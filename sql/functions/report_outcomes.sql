-- The outcome columns of report_outcomes_raw(), read from the rollups
-- (sql/026) through report_counts_in() and report_latency_in(): whole UTC
-- hours from the hour of `p_since` (a report counts the hours it touches),
-- whole days from the 'd' rows and the hours before the first whole day
-- from the 'h' rows.  `p_by`: 'total', 'account', 'sender' or 'day' (a
-- campaign's report is report_outcomes_raw(.., 'batch')).  A
-- recipient counts in `recipients` once accepted and in its outcome once
-- final; pending = accepted - final; opted_out counts final recipients.
-- Latency percentiles come from the histograms (report_hist_at(), all
-- groups in one pass: a running count per histogram, the bucket where it
-- reaches the percentile, a linear step inside it; a join of every bucket
-- with the percentiles wanted cost four times as much).  As
-- fresh as the rollup job's watermark (report_rollup_state).  The
-- latency groups join the counters on their keys made non-NULL: a hash join
-- (IS NOT DISTINCT FROM would compare every pair).
CREATE OR REPLACE FUNCTION report_outcomes(p_since timestamptz, p_by text)
RETURNS TABLE (day date, account_id bigint, account text, sender text, batch_id bigint,
               recipients bigint, push_delivered bigint, sms_delivered bigint, failed bigint,
               opted_out bigint, unknown bigint, dropped bigint, canceled bigint, pending bigint,
               push_share numeric, sms_saved bigint,
               push_p50_ms bigint, push_p95_ms bigint, sms_p50_ms bigint, sms_p95_ms bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH c AS (
        SELECT CASE WHEN p_by = 'day' THEN (c.start AT TIME ZONE 'UTC')::date END AS day,
               CASE WHEN p_by IN ('account', 'sender', 'day') THEN c.account_id END AS account_id,
               CASE WHEN p_by IN ('sender', 'day') THEN c.sender END AS sender,
               sum(c.recipients) FILTER (WHERE c.state = 'ACCEPTED') AS accepted,
               sum(c.recipients) FILTER (WHERE c.state = 'PUSH_DELIVERED') AS push_delivered,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_DELIVERED') AS sms_delivered,
               sum(c.recipients) FILTER (WHERE c.state IN ('SMS_FAILED', 'SMS_EXPIRED')) AS failed,
               sum(c.recipients) FILTER (WHERE c.opted_out) AS opted_out,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_UNKNOWN') AS unknown,
               sum(c.recipients) FILTER (WHERE c.state = 'DROPPED') AS dropped,
               sum(c.recipients) FILTER (WHERE c.state = 'CANCELED') AS canceled,
               sum(c.recipients) FILTER (WHERE c.state <> 'ACCEPTED') AS final
        FROM report_counts_in(p_since) c
        GROUP BY 1, 2, 3),
    lb AS (
        SELECT CASE WHEN p_by = 'day' THEN (l.start AT TIME ZONE 'UTC')::date END AS day,
               CASE WHEN p_by IN ('account', 'sender', 'day') THEN l.account_id END AS account_id,
               CASE WHEN p_by IN ('sender', 'day') THEN l.sender END AS sender,
               l.kind, l.bucket, sum(l.n)::float8 AS n
        FROM report_latency_in(p_since) l
        WHERE l.kind IN ('push', 'sms')
        GROUP BY 1, 2, 3, 4, 5),
    -- each histogram's running count; a percentile p is in the one bucket where the running
    -- count reaches p * total, at f = (p * total - the count before it) / its count
    lc AS (
        SELECT lb.*, sum(lb.n) OVER (PARTITION BY day, account_id, sender, kind ORDER BY bucket) AS cum,
               sum(lb.n) OVER (PARTITION BY day, account_id, sender, kind) AS total
        FROM lb),
    lp AS (
        SELECT day, account_id, sender,
               max(report_hist_at(bucket, (0.5 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'push' AND cum >= 0.5 * total AND cum - n < 0.5 * total) AS push_p50,
               max(report_hist_at(bucket, (0.95 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'push' AND cum >= 0.95 * total AND cum - n < 0.95 * total) AS push_p95,
               max(report_hist_at(bucket, (0.5 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'sms' AND cum >= 0.5 * total AND cum - n < 0.5 * total) AS sms_p50,
               max(report_hist_at(bucket, (0.95 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'sms' AND cum >= 0.95 * total AND cum - n < 0.95 * total) AS sms_p95
        FROM lc GROUP BY 1, 2, 3)
    SELECT c.day, c.account_id, a.name, c.sender, NULL::bigint,
           coalesce(c.accepted, 0)::bigint, coalesce(c.push_delivered, 0)::bigint,
           coalesce(c.sms_delivered, 0)::bigint, coalesce(c.failed, 0)::bigint, coalesce(c.opted_out, 0)::bigint,
           coalesce(c.unknown, 0)::bigint, coalesce(c.dropped, 0)::bigint, coalesce(c.canceled, 0)::bigint,
           (coalesce(c.accepted, 0) - coalesce(c.final, 0))::bigint,
           round(coalesce(c.push_delivered, 0)
                 / nullif(coalesce(c.push_delivered, 0) + coalesce(c.sms_delivered, 0), 0), 4),
           coalesce(c.push_delivered, 0)::bigint,
           lp.push_p50, lp.push_p95, lp.sms_p50, lp.sms_p95
    FROM c
    LEFT JOIN accounts a ON a.id = c.account_id
    LEFT JOIN lp ON coalesce(lp.day, 'infinity') = coalesce(c.day, 'infinity')
                AND coalesce(lp.account_id, 0) = coalesce(c.account_id, 0) AND coalesce(lp.sender, '') = coalesce(c.sender, '')
$$;
