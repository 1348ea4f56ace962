-- Retention as pushgated runs it ([retention] check_interval): drops the
-- oldest history range that history_retention(p_keep) says may go, all its
-- partitions (events, sms_parts, recipients) and its history_ranges row, in
-- one short transaction, and returns it; no row when none may go.  pushgated
-- calls it again at once after a drop, so old ranges go one at a time.
--
-- Dropping a partition takes ACCESS EXCLUSIVE on its parent: the three
-- parents are locked first, in one statement, each try waiting at most
-- lock_timeout (200 ms) behind the transactions under way; the traffic waits
-- behind it no longer, and a try that is not granted (or would deadlock: the
-- lock wait gives up before deadlock_timeout, so this is the side that
-- yields) returns busy and is tried again later.  Under the lock the range
-- is judged again: nothing can have entered it since.  The rest is catalog
-- changes: no DELETE, no dead rows, O(1) whatever the range holds.
-- (pushgatectl retention run detaches CONCURRENTLY instead, and exports
-- first when asked: DETACH ... CONCURRENTLY cannot run inside a function.)
-- SECURITY DEFINER: pushgated's role may write rows, not drop tables.
CREATE OR REPLACE FUNCTION history_retention_drop(p_keep interval)
RETURNS TABLE (lo bigint, hi bigint, suffix text, newest timestamptz, action text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '200ms' AS $$
DECLARE
    g record;
    t record;
BEGIN
    SELECT h.lo INTO lo FROM history_retention(p_keep) h WHERE h.action = 'drop' ORDER BY h.lo LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    BEGIN
        -- one caller at a time (history_ensure() takes it too), then the parents
        LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
        LOCK TABLE recipients, sms_parts, events IN ACCESS EXCLUSIVE MODE;
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        action := 'busy';
        RETURN NEXT;
        RETURN;
    END;
    SELECT * INTO g FROM history_retention(p_keep) h WHERE h.lo = history_retention_drop.lo;
    IF NOT FOUND OR g.action <> 'drop' THEN
        action := coalesce(g.action, 'gone');
        RETURN NEXT;
        RETURN;
    END IF;
    FOR t IN SELECT name FROM history_tables ORDER BY ord DESC LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', t.name || '_' || g.suffix);
    END LOOP;
    DELETE FROM history_ranges h WHERE h.lo = g.lo;
    hi := g.hi;
    suffix := g.suffix;
    newest := g.newest;
    action := 'dropped';
    RETURN NEXT;
END $$;
