-- The columns of report_routes_raw() per SMS route, the final recipients
-- read from the rollups (sql/026, the same hours and days as
-- report_outcomes()) and the ones still on their way (queued, submitted,
-- waiting for a receipt) counted live through their states' partial
-- indexes; receipt latency percentiles from the 'receipt' histograms.
CREATE OR REPLACE FUNCTION report_routes(p_since timestamptz)
RETURNS TABLE (route text, recipients bigint, submitted bigint, delivered bigint, failed bigint,
               unknown bigint, pending bigint, delivery_rate numeric,
               receipt_p50_ms bigint, receipt_p95_ms bigint)
LANGUAGE sql STABLE AS $$
    WITH w AS (SELECT h0, CASE WHEN date_trunc('day', h0, 'UTC') = h0 THEN h0
                               ELSE date_trunc('day', h0, 'UTC') + interval '24 hours' END AS d0
               FROM (SELECT date_trunc('hour', p_since, 'UTC') AS h0) s),
    f AS (
        SELECT c.route, sum(c.recipients) AS recipients,
               sum(c.recipients) FILTER (WHERE c.submitted) AS submitted,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_DELIVERED') AS delivered,
               sum(c.recipients) FILTER (WHERE c.state IN ('SMS_FAILED', 'SMS_EXPIRED')) AS failed,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_UNKNOWN') AS unknown
        FROM report_counts c, w
        WHERE c.channel = 'sms' AND c.route <> '' AND c.state <> 'ACCEPTED'
          AND ((c.grain = 'h' AND c.start >= w.h0 AND c.start < w.d0) OR (c.grain = 'd' AND c.start >= w.d0))
        GROUP BY 1),
    p AS (
        SELECT r.route, count(*) AS pending, count(*) FILTER (WHERE r.submitted_at IS NOT NULL) AS submitted
        FROM recipients r JOIN messages m ON m.id = r.message_id, w
        WHERE r.state IN ('SMS_QUEUED', 'SMS_SUBMITTED', 'SMS_ACCEPTED') AND r.channel = 'sms'
          AND r.route IS NOT NULL AND m.created_at >= w.h0
        GROUP BY 1),
    l AS (
        SELECT x.route, array_agg(x.bucket ORDER BY x.bucket) AS b, array_agg(x.n ORDER BY x.bucket) AS n
        FROM (SELECT l.route, l.bucket, sum(l.n)::bigint AS n FROM report_latency l, w
              WHERE l.kind = 'receipt'
                AND ((l.grain = 'h' AND l.start >= w.h0 AND l.start < w.d0) OR (l.grain = 'd' AND l.start >= w.d0))
              GROUP BY 1, 2) x
        GROUP BY 1)
    SELECT k.route,
           (coalesce(f.recipients, 0) + coalesce(p.pending, 0))::bigint,
           (coalesce(f.submitted, 0) + coalesce(p.submitted, 0))::bigint,
           coalesce(f.delivered, 0)::bigint, coalesce(f.failed, 0)::bigint, coalesce(f.unknown, 0)::bigint,
           coalesce(p.pending, 0)::bigint,
           round(coalesce(f.delivered, 0)::numeric
                 / nullif(coalesce(f.delivered, 0) + coalesce(f.failed, 0) + coalesce(f.unknown, 0), 0), 4),
           report_hist_pct(l.b, l.n, 0.5), report_hist_pct(l.b, l.n, 0.95)
    FROM (SELECT route FROM f UNION SELECT route FROM p) k
    LEFT JOIN f ON f.route = k.route
    LEFT JOIN p ON p.route = k.route
    LEFT JOIN l ON l.route = k.route
$$;
