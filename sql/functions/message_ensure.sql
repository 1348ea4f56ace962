-- Keeps one whole range of message ids made ahead of the ids issued, as
-- history_ensure() does for recipient ids (pushgated calls both every 10
-- seconds): while fewer ids than the newest message range holds are left
-- above the last one issued (message_issued()), adds the next range, sized
-- by range_next_size().  Returns the number of ranges made and the ids
-- left above the last one issued.
CREATE OR REPLACE FUNCTION message_ensure(p_min bigint DEFAULT 1000000, p_span interval DEFAULT '1 day')
RETURNS TABLE (made int, ahead bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    newest record;
    issued bigint;
    size bigint;
BEGIN
    made := 0;
    LOCK TABLE message_ranges IN SHARE ROW EXCLUSIVE MODE;
    issued := message_issued();
    LOOP
        SELECT * INTO newest FROM message_ranges ORDER BY lo DESC LIMIT 1;
        size := range_next_size(newest.lo, newest.hi, newest.created_at, newest.issued, issued, p_min, p_span);
        ahead := newest.hi - issued;
        EXIT WHEN ahead >= size;
        PERFORM message_range_add(newest.hi, newest.hi + size);
        made := made + 1;
    END LOOP;
    RETURN NEXT;
END $$;
