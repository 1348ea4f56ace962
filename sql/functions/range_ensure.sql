-- Keeps one whole range of ids made ahead of the ids issued, for the
-- recipient ranges (p_kind 'history': history_ranges, history_issued(),
-- history_range_add(), sql/029) or the message ranges ('messages':
-- message_ranges, message_issued(), message_range_add(), sql/036):
-- while fewer ids than the newest range holds are left above the last one
-- issued, adds the next range, sized by range_next_size().  Returns the
-- number of ranges made and the ids left above the last one issued.  Two
-- callers at once: the second waits for the first's lock and then finds
-- nothing to do.  history_ensure() and message_ensure() call it.
CREATE OR REPLACE FUNCTION range_ensure(p_kind text, p_min bigint, p_span interval)
RETURNS TABLE (made int, ahead bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ranges text := CASE p_kind WHEN 'history' THEN 'history_ranges' WHEN 'messages' THEN 'message_ranges' END;
    newest record;
    issued bigint;
    size bigint;
BEGIN
    IF ranges IS NULL THEN
        RAISE EXCEPTION 'range_ensure: no ranges of kind %', p_kind;
    END IF;
    made := 0;
    EXECUTE format('LOCK TABLE %I IN SHARE ROW EXCLUSIVE MODE', ranges);
    issued := CASE p_kind WHEN 'history' THEN history_issued() ELSE message_issued() END;
    LOOP
        EXECUTE format('SELECT lo, hi, created_at, issued FROM %I ORDER BY lo DESC LIMIT 1', ranges) INTO newest;
        size := range_next_size(newest.lo, newest.hi, newest.created_at, newest.issued, issued, p_min, p_span);
        ahead := newest.hi - issued;
        EXIT WHEN ahead >= size;
        IF p_kind = 'history' THEN
            PERFORM history_range_add(newest.hi, newest.hi + size);
        ELSE
            PERFORM message_range_add(newest.hi, newest.hi + size);
        END IF;
        made := made + 1;
    END LOOP;
    RETURN NEXT;
END $$;
