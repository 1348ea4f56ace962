-- migrate: online
-- 034_outside_ranges_time: the rows no recipient id places in a history
-- range (sql/029-031) cannot go with a range: a carrier's MO (mo_messages)
-- and its deliveries to ESMEs and webhooks (the outboxes' default
-- partitions).  Retention deletes them by age, oldest first
-- (history_trimmable(), history_trim()): an index on each one's time lets a
-- call read only the rows it deletes.  Built CONCURRENTLY: MO goes on.
DROP INDEX CONCURRENTLY IF EXISTS mo_messages_received;
CREATE INDEX CONCURRENTLY mo_messages_received ON mo_messages (received_at);
DROP INDEX CONCURRENTLY IF EXISTS smpp_outbox_other_created;
CREATE INDEX CONCURRENTLY smpp_outbox_other_created ON smpp_outbox_other (created_at);
DROP INDEX CONCURRENTLY IF EXISTS webhook_outbox_other_created;
CREATE INDEX CONCURRENTLY webhook_outbox_other_created ON webhook_outbox_other (created_at);
