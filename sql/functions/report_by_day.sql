-- Outcomes per UTC day, account and sender (report_outcomes by 'day').
CREATE OR REPLACE VIEW report_by_day AS
    SELECT day, account_id, account, sender, recipients, push_delivered, sms_delivered, failed, opted_out,
           unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms
    FROM report_outcomes('-infinity', 'day');
