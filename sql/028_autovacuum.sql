-- 028_autovacuum: per-table autovacuum for what pushgated rewrites all day
-- (docs/operations.md, "Vacuum and bloat").  PostgreSQL's defaults vacuum a
-- table once a fifth of it is dead: on a recipients table of 50M rows that
-- is 10M dead row versions first, and each SMS leaves three (every state
-- change is a new version: state is indexed, no HOT update).  Here:
--   recipients, sms_parts: vacuum at 2% dead (+10,000 rows), analyze at 2%
--     (the planner sees the queues as they are), five times the default cost
--     budget so one pass keeps up with the engine;
--   webhook_outbox, smpp_outbox, dlr_parked, code_sms_pending, wakes,
--     device_wakeups, report_counts, report_latency, batches: rows are
--     updated or deleted soon after they are written (queues, counters):
--     vacuum at 5% (+1,000);
--   events, messages: appended: vacuum after 5% new rows (+10,000), so the
--     visibility map (index-only scans) and freezing follow in small steps
--     rather than one long pass over a fifth of the history.
-- SET (...) takes a SHARE UPDATE EXCLUSIVE lock: reads and writes go on.
ALTER TABLE recipients SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 10000, autovacuum_vacuum_cost_limit = 1000);
ALTER TABLE sms_parts SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 10000, autovacuum_vacuum_cost_limit = 1000);
ALTER TABLE webhook_outbox SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE smpp_outbox SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE dlr_parked SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE code_sms_pending SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE wakes SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE device_wakeups SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE report_counts SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE report_latency SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE batches SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
ALTER TABLE events SET (autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE messages SET (autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.05);
