-- The outcome columns counted from the recipients themselves, live and exact
-- (report_outcomes() reads the rollups instead), grouped by `p_by`: 'total' (one row), 'account',
-- 'sender' (account + sender), 'day' (day + account + sender) or 'batch'
-- (batch + account); key columns that `p_by` does not use are NULL.  Only
-- messages accepted at or after `p_since`.  One SQL SELECT, STABLE, not
-- STRICT: the planner inlines it, folds the CASEs on the constant `p_by`,
-- and pushes outer filters on the key columns below the GROUP BY.  One
-- campaign's report reads it ('batch': the batch's recipients by index), and
-- t_rollups compares the rollups with it.
CREATE OR REPLACE FUNCTION report_outcomes_raw(p_since timestamptz, p_by text)
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
