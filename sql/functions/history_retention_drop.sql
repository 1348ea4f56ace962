-- Retention as pushgated runs it ([retention] check_interval): drops the
-- oldest history range that history_retention(p_keep) says may go
-- (history_range_drop(), in one short transaction) and returns it with
-- what happened ('dropped', 'busy', or why it stays after all); no row when
-- none may go.  pushgated calls it again at once after a drop, so old
-- ranges go one at a time.
CREATE OR REPLACE FUNCTION history_retention_drop(p_keep interval)
RETURNS TABLE (lo bigint, hi bigint, suffix text, newest timestamptz, action text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    g record;
BEGIN
    SELECT * INTO g FROM history_retention(p_keep) h WHERE h.action = 'drop' ORDER BY h.lo LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    lo := g.lo;
    hi := g.hi;
    suffix := g.suffix;
    newest := g.newest;
    action := history_range_drop(g.lo, p_keep);
    RETURN NEXT;
END $$;
