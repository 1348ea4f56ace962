-- Drops the history range starting at p_lo, when history_retention(p_keep)
-- says it may go: all its partitions (history_parts()) and its
-- history_ranges row, in the caller's transaction.  Returns 'dropped',
-- 'busy' (the tables were never free at once: nothing done, try again
-- later), or why the range stays.  pushgated calls it through
-- history_retention_drop(), pushgatectl retention run for each range.
--
-- Dropping a partition takes ACCESS EXCLUSIVE on it and on its parent, and
-- every statement of the traffic locks every partition of the tables it
-- reads (a generic plan prunes at run time, after its locks).  Waiting for
-- such a lock while holding another could deadlock with a transaction that
-- takes them in the other order, and makes the traffic queue behind the
-- waiter.  So no lock is waited for: each try takes them all NOWAIT (the
-- range's partitions, then their parents), in a subtransaction that gives
-- them all back when one is not free at once; up to 150 tries, 10 ms apart.
-- The traffic never waits behind a try, only behind the drop itself (a few
-- catalog changes, milliseconds).  Under the locks the range is judged
-- again: nothing can have entered it since.  No DELETE, no dead rows, O(1)
-- whatever the range holds.  (DETACH ... CONCURRENTLY would not need the
-- parents' lock, but cannot run in a function nor on a table with a default
-- partition, as the outboxes have.)
-- SECURITY DEFINER: pushgated's role may write rows, not drop tables.
CREATE OR REPLACE FUNCTION history_range_drop(p_lo bigint, p_keep interval)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '200ms' AS $$
DECLARE
    g record;
    t record;
BEGIN
    FOR attempt IN 1..150 LOOP
        BEGIN
            -- one caller at a time (history_ensure() takes it too)
            LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
            FOR t IN SELECT p.part FROM history_parts(p_lo) p LOOP
                EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', t.part);
            END LOOP;
            FOR t IN SELECT h.name FROM history_tables h ORDER BY h.ord LOOP
                EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', t.name);
            END LOOP;
            SELECT * INTO g FROM history_retention(p_keep, p_lo) h;
            IF NOT FOUND OR g.action <> 'drop' THEN
                RETURN coalesce(g.action, 'gone');
            END IF;
            FOR t IN SELECT p.part FROM history_parts(p_lo) p LOOP
                EXECUTE format('DROP TABLE %I', t.part);
            END LOOP;
            DELETE FROM history_ranges h WHERE h.lo = p_lo;
            RETURN 'dropped';
        EXCEPTION WHEN lock_not_available OR deadlock_detected OR undefined_table THEN
            PERFORM pg_sleep(0.01);
        END;
    END LOOP;
    RETURN 'busy';
END $$;
