-- Outcomes per campaign (batch), with its account, counted live from its
-- recipients (report_outcomes_raw by 'batch'; the rollups have no campaigns).
CREATE OR REPLACE VIEW report_by_batch AS
    SELECT batch_id, account_id, account, recipients, push_delivered, sms_delivered, failed, opted_out,
           unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms
    FROM report_outcomes_raw('-infinity', 'batch')
    WHERE batch_id IS NOT NULL;
