-- Success per channel and day ([0035], [0037]).  push: recipients pushed
-- (a push deadline was set), delivered = PUSH_DELIVERED, pending =
-- PUSH_SENT, fell_back = went on to SMS or was dropped after the push.
-- sms: recipients on the SMS path, delivered = SMS_DELIVERED, failed =
-- SMS_FAILED + SMS_EXPIRED, unknown = SMS_UNKNOWN (and dropped or
-- canceled, counted in recipients only).  success_rate =
-- delivered / the recipients whose channel result is known (not pending).
CREATE OR REPLACE VIEW report_by_channel AS
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
