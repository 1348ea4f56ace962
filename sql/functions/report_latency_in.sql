-- The report_latency rows (sql/026) a report from `p_since` reads: the same
-- hours and days as report_counts_in(), each branch an index-only range
-- scan of report_latency_pkey.  Inlined like report_counts_in().
CREATE OR REPLACE FUNCTION report_latency_in(p_since timestamptz)
RETURNS SETOF report_latency
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH w AS (SELECT h0, CASE WHEN date_trunc('day', h0, 'UTC') = h0 THEN h0
                               ELSE date_trunc('day', h0, 'UTC') + interval '24 hours' END AS d0
               FROM (SELECT date_trunc('hour', p_since, 'UTC') AS h0) s)
    SELECT x.* FROM report_latency x, w WHERE x.grain = 'h' AND x.start >= w.h0 AND x.start < w.d0
    UNION ALL
    SELECT x.* FROM report_latency x, w WHERE x.grain = 'd' AND x.start >= w.d0
$$;
