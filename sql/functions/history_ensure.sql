-- Keeps one whole range of recipient ids made ahead of the ids issued
-- (pushgated calls it every 10 seconds; range_ensure() does it): while
-- fewer ids than the newest range holds are left above the last one issued
-- (history_issued()), adds the next range.  A range is sized to hold p_span
-- of traffic at the rate seen since the newest range was made, never less
-- than p_min ids (range_next_size()): with the default a day, a range is
-- about a day of history.  Returns the number of ranges made and the ids
-- left above the last one issued (pushgate_history_ids_ahead).
CREATE OR REPLACE FUNCTION history_ensure(p_min bigint DEFAULT 1000000, p_span interval DEFAULT '1 day')
RETURNS TABLE (made int, ahead bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM range_ensure('history', p_min, p_span)
$$;
