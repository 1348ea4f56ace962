-- Retention as pushgated runs it ([retention] check_interval): drops the
-- oldest history range that history_retention(p_keep) says may go, all its
-- partitions (history_parts()) and its history_ranges row, in
-- one short transaction, and returns it; no row when none may go.  pushgated
-- calls it again at once after a drop, so old ranges go one at a time.
--
-- Dropping a partition takes ACCESS EXCLUSIVE on its parent: the range's
-- partitions are locked first, then their parents (ONLY the parents: a
-- vacuum running on a current partition does not stand in the way), each
-- lock waiting at most lock_timeout (200 ms) behind the transactions under
-- way; the traffic waits behind it no longer, and a try that is not granted
-- (or would deadlock: the lock wait gives up before deadlock_timeout, so
-- this is the side that yields; or finds a partition gone, dropped by
-- pushgatectl meanwhile) returns busy, undoes what it did and is tried again
-- later.  Under the lock the range is judged again: nothing can have entered
-- it since.
-- The rest is catalog changes: no DELETE, no dead rows, O(1) whatever the
-- range holds.
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
    SELECT * INTO g FROM history_retention(p_keep) h WHERE h.action = 'drop' ORDER BY h.lo LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    lo := g.lo;
    hi := g.hi;
    suffix := g.suffix;
    newest := g.newest;
    BEGIN
        -- one caller at a time (history_ensure() takes it too); the range's
        -- own partitions next, which the traffic does not touch (one held by
        -- a reader, or a vacuum, makes the try busy before the traffic
        -- waits at all); then the parents alone (ONLY: a vacuum of the
        -- current partitions goes on)
        LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
        FOR t IN SELECT p.part FROM history_parts(g.lo) p LOOP
            EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE', t.part);
        END LOOP;
        FOR t IN SELECT h.name FROM history_tables h ORDER BY h.ord LOOP
            EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE', t.name);
        END LOOP;
        SELECT * INTO g FROM history_retention(p_keep) h WHERE h.lo = g.lo;
        IF NOT FOUND OR g.action <> 'drop' THEN
            action := coalesce(g.action, 'gone');
            RETURN NEXT;
            RETURN;
        END IF;
        FOR t IN SELECT p.part FROM history_parts(g.lo) p LOOP
            EXECUTE format('DROP TABLE %I', t.part);
        END LOOP;
        DELETE FROM history_ranges h WHERE h.lo = g.lo;
    EXCEPTION WHEN lock_not_available OR deadlock_detected OR undefined_table THEN
        action := 'busy';
        RETURN NEXT;
        RETURN;
    END;
    action := 'dropped';
    RETURN NEXT;
END $$;
