-- The report_counts rows (sql/026) a report from `p_since` reads: whole UTC
-- hours from the hour of `p_since` (a report counts the hours it touches),
-- the 'h' rows of the hours before the first whole UTC day and the 'd' rows
-- from that day on.  Each branch is an index-only range scan of
-- report_counts_pkey.  One SELECT in SQL, STABLE, not STRICT, no SET: the
-- planner inlines it into the query that calls it (report_outcomes(),
-- report_routes()), so the caller's filters reach the scans.
CREATE OR REPLACE FUNCTION report_counts_in(p_since timestamptz)
RETURNS SETOF report_counts
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH w AS (SELECT h0, CASE WHEN date_trunc('day', h0, 'UTC') = h0 THEN h0
                               ELSE date_trunc('day', h0, 'UTC') + interval '24 hours' END AS d0
               FROM (SELECT date_trunc('hour', p_since, 'UTC') AS h0) s)
    SELECT x.* FROM report_counts x, w WHERE x.grain = 'h' AND x.start >= w.h0 AND x.start < w.d0
    UNION ALL
    SELECT x.* FROM report_counts x, w WHERE x.grain = 'd' AND x.start >= w.d0
$$;
