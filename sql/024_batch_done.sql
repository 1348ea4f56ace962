-- 024_batch_done: a campaign becomes DONE when its last recipient is final,
-- whether or not anyone reads it (the sweeper's batches_done, every 2 s),
-- and says when.  The partial index finds the running ones among every
-- campaign ever sent.
ALTER TABLE batches ADD COLUMN done_at timestamptz;
CREATE INDEX batches_running ON batches (id) WHERE state = 'RUNNING';
UPDATE batches SET done_at = coalesce(loaded_at, created_at) WHERE state = 'DONE';
