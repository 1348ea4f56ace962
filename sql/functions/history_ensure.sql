-- Keeps one whole range of recipient ids made ahead of the ids issued
-- (pushgated calls it every 10 seconds): while fewer ids than the newest
-- range holds are left above the last one issued (history_issued()),
-- adds the next range.  A range is sized to hold p_span of traffic at the
-- rate seen since the newest range was made, never less than p_min ids
-- (range_next_size()): with the default a day, a range is about a day of
-- history.
-- Returns the number of ranges made and the ids left above the last one
-- issued (pushgate_history_ids_ahead).  Two callers at once: the second
-- waits for the first's lock and then finds nothing to do.
CREATE OR REPLACE FUNCTION history_ensure(p_min bigint DEFAULT 1000000, p_span interval DEFAULT '1 day')
RETURNS TABLE (made int, ahead bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    newest record;
    issued bigint;
    size bigint;
BEGIN
    made := 0;
    LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
    issued := history_issued();
    LOOP
        SELECT * INTO newest FROM history_ranges ORDER BY lo DESC LIMIT 1;
        size := range_next_size(newest.lo, newest.hi, newest.created_at, newest.issued, issued, p_min, p_span);
        ahead := newest.hi - issued;
        EXIT WHEN ahead >= size;
        PERFORM history_range_add(newest.hi, newest.hi + size);
        made := made + 1;
    END LOOP;
    RETURN NEXT;
END $$;
