-- Latency histograms of the report rollups (sql/026): the bucket bounds in
-- milliseconds; bucket k holds [bound k, bound k+1), bucket 0 starts at 0
-- and the last one has no end.  Steps of about 2x, so a percentile read
-- from the buckets is within its bucket's width of the exact value: finer
-- where pushes and receipts usually land (0.1 s to a minute).
CREATE OR REPLACE FUNCTION report_hist_bounds() RETURNS float8[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{100,250,500,1000,2000,3000,5000,10000,15000,30000,60000,120000,300000,600000,1800000,3600000,10800000,43200000,86400000}'::float8[]
$$;

CREATE OR REPLACE FUNCTION report_hist_bucket(ms float8) RETURNS smallint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT width_bucket(ms, report_hist_bounds())::smallint
$$;

-- The value at fraction f (0..1) of bucket b: linear between its bounds
-- (the last, open bucket answers its lower bound), rounded to a millisecond.
-- With a running count per histogram, the p-th percentile is the first
-- bucket whose count reaches p * total, at f = (p * total - count before
-- it) / its count (report_outcomes(), report_routes()).
CREATE OR REPLACE FUNCTION report_hist_at(b smallint, f float8) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- one expression, no FROM: the planner inlines it (and folds the bounds), no call per row
    SELECT round(('{0}'::float8[] || report_hist_bounds())[b + 1]
                 + (coalesce((report_hist_bounds())[b + 1], ('{0}'::float8[] || report_hist_bounds())[b + 1])
                    - ('{0}'::float8[] || report_hist_bounds())[b + 1]) * f)::bigint
$$;
