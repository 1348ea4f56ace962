-- One row per recipient with its report class.  The base of every report.
CREATE OR REPLACE VIEW report_recipients AS
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
