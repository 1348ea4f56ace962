-- Drops the history range starting at p_lo, when history_retention(p_keep)
-- says it may go: all its partitions (history_parts()) and its
-- history_ranges row, in the caller's transaction.  Returns 'dropped',
-- 'busy' (a lock not granted in time: nothing done, try again later), or
-- why the range stays.  pushgated calls it through history_retention_drop(),
-- pushgatectl retention run for each range it exported.
--
-- Dropping a partition takes ACCESS EXCLUSIVE on its parent: the range's
-- partitions are locked first, then their parents (ONLY the parents: a
-- vacuum running on a current partition does not stand in the way), each
-- lock waiting at most lock_timeout (200 ms) behind the transactions under
-- way; the traffic waits behind it no longer, and a try that is not granted
-- (or would deadlock: the lock wait gives up before deadlock_timeout, so
-- this is the side that yields; or finds a partition gone, dropped
-- meanwhile) is busy and undoes what it did.  Under the locks the range is
-- judged again: nothing can have entered it since.  The rest is catalog
-- changes: no DELETE, no dead rows, O(1) whatever the range holds.  (DETACH
-- ... CONCURRENTLY would wait for no lock, but cannot run in a function nor
-- on a table with a default partition, as webhook_outbox has.)
-- SECURITY DEFINER: pushgated's role may write rows, not drop tables.
CREATE OR REPLACE FUNCTION history_range_drop(p_lo bigint, p_keep interval)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '200ms' AS $$
DECLARE
    g record;
    t record;
BEGIN
    BEGIN
        -- one caller at a time (history_ensure() takes it too); the range's
        -- own partitions next, which the traffic does not touch (one held by
        -- a reader, or a vacuum, makes the try busy before the traffic
        -- waits at all); then the parents alone
        LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
        FOR t IN SELECT p.part FROM history_parts(p_lo) p LOOP
            EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE', t.part);
        END LOOP;
        FOR t IN SELECT h.name FROM history_tables h ORDER BY h.ord LOOP
            EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE', t.name);
        END LOOP;
        SELECT * INTO g FROM history_retention(p_keep) h WHERE h.lo = p_lo;
        IF NOT FOUND OR g.action <> 'drop' THEN
            RETURN coalesce(g.action, 'gone');
        END IF;
        FOR t IN SELECT p.part FROM history_parts(p_lo) p LOOP
            EXECUTE format('DROP TABLE %I', t.part);
        END LOOP;
        DELETE FROM history_ranges h WHERE h.lo = p_lo;
    EXCEPTION WHEN lock_not_available OR deadlock_detected OR undefined_table THEN
        RETURN 'busy';
    END;
    RETURN 'dropped';
END $$;
