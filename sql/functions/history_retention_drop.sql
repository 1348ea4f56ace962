-- Retention as pushgated runs it ([retention] check_interval), for one
-- class (sql/032): the oldest history range that history_retention(p_keep,
-- NULL, p_class) says may go ('drop') or have its outboxes emptied
-- ('clear') goes through history_range_drop() in one short transaction;
-- returns it with what happened ('dropped', 'cleared', 'busy', or why it
-- stays after all); no row when none may.  pushgated calls it again at once
-- after a success, so old ranges go one at a time.  Class 'messages': the
-- oldest message range (sql/036) message_retention() says may go, through
-- message_range_drop(); its suffix is its partition's name.
DO $$
BEGIN
    IF to_regprocedure('history_retention_drop(interval)') IS NOT NULL THEN
        DROP FUNCTION history_retention_drop(interval);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION history_retention_drop(p_keep interval, p_class text DEFAULT 'history')
RETURNS TABLE (lo bigint, hi bigint, suffix text, newest timestamptz, action text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    g record;
BEGIN
    IF p_class = 'messages' THEN
        SELECT * INTO g FROM message_retention(p_keep) h WHERE h.action = 'drop' ORDER BY h.lo LIMIT 1;
        IF FOUND THEN
            lo := g.lo;
            hi := g.hi;
            suffix := 'messages_' || g.suffix;
            newest := g.newest;
            action := message_range_drop(g.lo, p_keep);
            RETURN NEXT;
        END IF;
        RETURN;
    END IF;
    SELECT * INTO g FROM history_retention(p_keep, NULL, p_class) h WHERE h.action IN ('drop', 'clear')
     ORDER BY h.lo LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    lo := g.lo;
    hi := g.hi;
    suffix := g.suffix;
    newest := g.newest;
    action := history_range_drop(g.lo, p_keep, p_class);
    RETURN NEXT;
END $$;
