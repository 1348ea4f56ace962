-- SMS per route counted from the recipients themselves, live and exact
-- (report_routes() reads the rollups instead): recipients on the route, submitted at least
-- once, delivered, failed (SMS_FAILED + SMS_EXPIRED), unknown, pending,
-- delivery_rate = delivered / (delivered + failed + unknown), and the
-- receipt latency final_at - submitted_at (last submit) of delivered SMS.
CREATE OR REPLACE FUNCTION report_routes_raw(p_since timestamptz)
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
