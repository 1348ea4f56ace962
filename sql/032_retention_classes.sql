-- 032_retention_classes: retention per class of history table.  Each
-- table of the history ranges (history_tables) is of a class: 'history'
-- (recipients, sms_parts, events: kept [retention] history_days, a range
-- dropped whole) or 'outbox' (webhook_outbox, smpp_outbox, the delivery
-- logs: kept [retention] outbox_days, no longer than their range; a range's
-- outbox partitions are emptied with TRUNCATE and stay for rows still to
-- come).  history_ranges.outboxes_cleared_at says when a range's outboxes
-- were emptied (history_range_drop(lo, keep, 'outbox')).
ALTER TABLE history_tables ADD COLUMN IF NOT EXISTS class text NOT NULL DEFAULT 'history';
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'history_tables_class_check') THEN
        ALTER TABLE history_tables ADD CONSTRAINT history_tables_class_check CHECK (class IN ('history', 'outbox'));
    END IF;
END
$$;
COMMENT ON COLUMN history_tables.class IS 'retention class: history ([retention] history_days) or outbox (outbox_days)';
UPDATE history_tables SET class = 'outbox' WHERE name IN ('webhook_outbox', 'smpp_outbox');
ALTER TABLE history_ranges ADD COLUMN IF NOT EXISTS outboxes_cleared_at timestamptz;
COMMENT ON COLUMN history_ranges.outboxes_cleared_at IS 'when the range''s outbox partitions were emptied (retention class outbox)';
