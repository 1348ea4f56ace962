-- Latency histograms of the report rollups (sql/026): the bucket bounds in
-- milliseconds; bucket k holds [bound k, bound k+1), bucket 0 starts at 0
-- and the last one has no end.  Steps of about 2x, so a percentile read
-- from the buckets is within its bucket's width of the exact value: finer
-- where pushes and receipts usually land (0.1 s to a minute).
CREATE OR REPLACE FUNCTION report_hist_bounds() RETURNS float8[] LANGUAGE sql IMMUTABLE AS $$
    SELECT '{100,250,500,1000,2000,3000,5000,10000,15000,30000,60000,120000,300000,600000,1800000,3600000,10800000,43200000,86400000}'::float8[]
$$;

CREATE OR REPLACE FUNCTION report_hist_bucket(ms float8) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
    SELECT width_bucket(ms, report_hist_bounds())::smallint
$$;

-- The p-th percentile (0..1) of a histogram given as its buckets and their
-- counts, interpolated linearly inside the bucket it falls in (the last,
-- open bucket answers its lower bound); NULL when it is empty.
CREATE OR REPLACE FUNCTION report_hist_pct(buckets smallint[], ns bigint[], p float8) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT round(lo + (coalesce(hi, lo) - lo) * ((p * total - (cum - n)) / n))::bigint
    FROM (SELECT b, n, sum(n) OVER (ORDER BY b) AS cum, sum(n) OVER () AS total
          FROM unnest(buckets, ns) AS u(b, n) WHERE n > 0) h,
         LATERAL (SELECT CASE WHEN h.b = 0 THEN 0 ELSE (report_hist_bounds())[h.b] END AS lo,
                         (report_hist_bounds())[h.b + 1] AS hi) x
    WHERE cum >= p * total
    ORDER BY b LIMIT 1
$$;
