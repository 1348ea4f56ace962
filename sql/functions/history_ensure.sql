-- Keeps one whole range of recipient ids made ahead of the ids issued
-- (pushgated calls it every 10 seconds): while fewer ids than the newest
-- range holds are left above the last one issued (history_issued()),
-- adds the next range.  A range is sized to hold p_span of traffic at the
-- rate seen since the newest range was made (once that is at least ten
-- minutes ago; until then the newest range's size), never less than
-- p_min ids: with the default a day, a range is about a day of history.
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
    elapsed double precision;
BEGIN
    made := 0;
    LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
    issued := history_issued();
    LOOP
        SELECT * INTO newest FROM history_ranges ORDER BY lo DESC LIMIT 1;
        size := newest.hi - newest.lo;
        elapsed := extract(epoch FROM now() - newest.created_at);
        IF elapsed >= 600 AND issued > newest.issued THEN
            size := ceil((issued - newest.issued) / elapsed * extract(epoch FROM p_span))::bigint;
        END IF;
        size := greatest(size, p_min);
        ahead := newest.hi - issued;
        EXIT WHEN ahead >= size;
        PERFORM history_range_add(newest.hi, newest.hi + size);
        made := made + 1;
    END LOOP;
    RETURN NEXT;
END $$;
