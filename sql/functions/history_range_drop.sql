-- Retention of the history range starting at p_lo for one class
-- (sql/032), when history_retention(p_keep, p_lo, p_class) says so, in the
-- caller's transaction:
--   'history': drops the range, all its partitions (history_parts()) and
--   its history_ranges row; returns 'dropped';
--   'outbox': empties its outbox partitions (TRUNCATE: they stay for rows
--   still to come) and sets its outboxes_cleared_at; returns 'cleared'.
-- Else 'busy' (the tables were never free at once: nothing done, try
-- again later), or why the range stays.  pushgated calls it through
-- history_retention_drop(), pushgatectl retention run for each range.
--
-- Dropping a partition takes ACCESS EXCLUSIVE on it and on its parent
-- (TRUNCATE, on the partition alone), and every statement of the traffic
-- locks every partition of the tables it reads (a generic plan prunes at
-- run time, after its locks).  Waiting for such a lock while holding
-- another could deadlock with a transaction that takes them in the other
-- order, and makes the traffic queue behind the waiter.  So no lock is
-- waited for: each try takes them all NOWAIT (the class's partitions of the
-- range, then, to drop, their parents), in a subtransaction that gives them
-- all back when one is not free at once; up to 150 tries, 10 ms apart.
-- The traffic never waits behind a try, only behind the drop itself (a few
-- catalog changes, milliseconds).  Under the locks the range is judged
-- again: nothing can have entered it since.  No DELETE, no dead rows, O(1)
-- whatever the range holds.  (DETACH ... CONCURRENTLY would not need the
-- parents' lock, but cannot run in a function nor on a table with a default
-- partition, as the outboxes have.)
-- SECURITY DEFINER: pushgated's role may write rows, not drop tables.
DO $$
BEGIN
    IF to_regprocedure('history_range_drop(bigint, interval)') IS NOT NULL THEN
        DROP FUNCTION history_range_drop(bigint, interval);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION history_range_drop(p_lo bigint, p_keep interval, p_class text DEFAULT 'history')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '200ms' AS $$
DECLARE
    g record;
    t record;
    parts text[];
BEGIN
    FOR attempt IN 1..150 LOOP
        BEGIN
            -- one caller at a time (history_ensure() takes it too)
            LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
            SELECT coalesce(array_agg(p.part ORDER BY h.ord DESC), '{}') INTO parts FROM history_parts(p_lo) p
              JOIN history_tables h ON h.name = p.tbl WHERE p_class = 'history' OR h.class = p_class;
            FOR i IN 1..cardinality(parts) LOOP
                EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', parts[i]);
            END LOOP;
            IF p_class = 'history' THEN
                FOR t IN SELECT h.name FROM history_tables h ORDER BY h.ord LOOP
                    EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', t.name);
                END LOOP;
            END IF;
            SELECT * INTO g FROM history_retention(p_keep, p_lo, p_class) h;
            IF NOT FOUND OR g.action NOT IN ('drop', 'clear') THEN
                RETURN coalesce(g.action, 'gone');
            END IF;
            IF p_class = 'outbox' THEN
                IF cardinality(parts) > 0 THEN
                    EXECUTE 'TRUNCATE ' || (SELECT string_agg(quote_ident(x), ', ') FROM unnest(parts) x);
                END IF;
                UPDATE history_ranges h SET outboxes_cleared_at = now() WHERE h.lo = p_lo;
                RETURN 'cleared';
            END IF;
            FOR i IN 1..cardinality(parts) LOOP
                EXECUTE format('DROP TABLE %I', parts[i]);
            END LOOP;
            DELETE FROM history_ranges h WHERE h.lo = p_lo;
            RETURN 'dropped';
        EXCEPTION WHEN lock_not_available OR deadlock_detected OR undefined_table THEN
            PERFORM pg_sleep(0.01);
        END;
    END LOOP;
    RETURN 'busy';
END $$;
