-- The columns of report_routes_raw() per SMS route, the final recipients
-- read from the rollups (sql/026, report_counts_in() and
-- report_latency_in(): the same hours and days as report_outcomes()) and
-- the ones still on their way (queued, submitted, waiting for a receipt,
-- their messages from the hour of `p_since` on) counted live through their
-- states' partial indexes; receipt latency percentiles from the 'receipt'
-- histograms.
CREATE OR REPLACE FUNCTION report_routes(p_since timestamptz)
RETURNS TABLE (route text, recipients bigint, submitted bigint, delivered bigint, failed bigint,
               unknown bigint, pending bigint, delivery_rate numeric,
               receipt_p50_ms bigint, receipt_p95_ms bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH f AS (
        SELECT c.route, sum(c.recipients) AS recipients,
               sum(c.recipients) FILTER (WHERE c.submitted) AS submitted,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_DELIVERED') AS delivered,
               sum(c.recipients) FILTER (WHERE c.state IN ('SMS_FAILED', 'SMS_EXPIRED')) AS failed,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_UNKNOWN') AS unknown
        FROM report_counts_in(p_since) c
        WHERE c.channel = 'sms' AND c.route <> '' AND c.state <> 'ACCEPTED'
        GROUP BY 1),
    -- the SMS on their way, through their states' partial indexes (small), then their messages from the
    -- hour of p_since, a value the planner sees (by key over a long window, messages_created over a short one)
    p AS (
        SELECT r.route, count(*) AS pending, count(*) FILTER (WHERE r.submitted_at IS NOT NULL) AS submitted
        FROM (SELECT message_id, route, submitted_at FROM recipients
                WHERE state = 'SMS_QUEUED' AND channel = 'sms' AND route IS NOT NULL
              UNION ALL
              SELECT message_id, route, submitted_at FROM recipients
                WHERE state = 'SMS_SUBMITTED' AND channel = 'sms' AND route IS NOT NULL
              UNION ALL
              SELECT message_id, route, submitted_at FROM recipients
                WHERE state = 'SMS_ACCEPTED' AND channel = 'sms' AND route IS NOT NULL) r
        JOIN messages m ON m.id = r.message_id
        WHERE m.created_at >= date_trunc('hour', p_since, 'UTC')
        GROUP BY 1),
    lc AS (
        SELECT x.*, sum(x.n) OVER (PARTITION BY x.route ORDER BY x.bucket) AS cum,
               sum(x.n) OVER (PARTITION BY x.route) AS total
        FROM (SELECT l.route, l.bucket, sum(l.n)::float8 AS n
              FROM report_latency_in(p_since) l
              WHERE l.kind = 'receipt'
              GROUP BY 1, 2) x),
    l AS (
        SELECT route,
               max(report_hist_at(bucket, (0.5 * total - (cum - n)) / n))
                   FILTER (WHERE cum >= 0.5 * total AND cum - n < 0.5 * total) AS p50,
               max(report_hist_at(bucket, (0.95 * total - (cum - n)) / n))
                   FILTER (WHERE cum >= 0.95 * total AND cum - n < 0.95 * total) AS p95
        FROM lc GROUP BY 1)
    SELECT k.route,
           (coalesce(f.recipients, 0) + coalesce(p.pending, 0))::bigint,
           (coalesce(f.submitted, 0) + coalesce(p.submitted, 0))::bigint,
           coalesce(f.delivered, 0)::bigint, coalesce(f.failed, 0)::bigint, coalesce(f.unknown, 0)::bigint,
           coalesce(p.pending, 0)::bigint,
           round(coalesce(f.delivered, 0)::numeric
                 / nullif(coalesce(f.delivered, 0) + coalesce(f.failed, 0) + coalesce(f.unknown, 0), 0), 4),
           l.p50, l.p95
    FROM (SELECT route FROM f UNION SELECT route FROM p) k
    LEFT JOIN f ON f.route = k.route
    LEFT JOIN p ON p.route = k.route
    LEFT JOIN l ON l.route = k.route
$$;
