-- migrate: online
-- 027_events_at: the report rollup job (sql/026) reads the events written
-- since its watermark by time.  Events are appended in time order, so a
-- BRIN index (a few pages for millions of rows, nothing to do on most
-- inserts) finds the tail; the newest page ranges are not summarized yet
-- and are read whole, which is the tail the job wants.  Built
-- CONCURRENTLY: a populated database keeps taking traffic meanwhile.
DROP INDEX CONCURRENTLY IF EXISTS events_at;
CREATE INDEX CONCURRENTLY events_at ON events USING brin (at) WITH (pages_per_range = 32, autosummarize = on);
