-- migrate: online
-- 023_recipients_msisdn: "what happened to this number" (GET /v1/messages?to=,
-- pushgatectl messages --to) reads a number's recipients newest first by key,
-- not by scanning every recipient.  Final recipients only: a row gets its
-- entry once, with its final update.  An entry for every row version (the
-- insert and each state before the final one) cost the single-message door
-- a fifth of its throughput at 1M recipients of history (BENCHMARKS.md,
-- "Message search"); the number's pushes in flight are found through
-- recipients_push_pending.  Built CONCURRENTLY: a populated database keeps
-- taking traffic while it is built.
DROP INDEX CONCURRENTLY IF EXISTS recipients_msisdn;
CREATE INDEX CONCURRENTLY recipients_msisdn ON recipients (msisdn, id) WHERE final_at IS NOT NULL;
