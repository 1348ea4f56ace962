-- migrate: online
-- 023_recipients_msisdn: "what happened to this number" (GET /v1/messages?to=,
-- pushgatectl messages --to) reads a number's recipients newest first by key,
-- not by scanning every recipient.  Built CONCURRENTLY: a populated database
-- keeps taking traffic while it is built.  Its cost is one more index entry
-- per recipient row version (BENCHMARKS.md, "Message search").
DROP INDEX CONCURRENTLY IF EXISTS recipients_msisdn;
CREATE INDEX CONCURRENTLY recipients_msisdn ON recipients (msisdn, id);
