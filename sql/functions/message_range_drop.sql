-- Drops the message range starting at p_lo (its partition messages_<lo>
-- and its message_ranges row) when message_retention(p_keep, p_lo) says so,
-- in the caller's transaction; returns 'dropped', 'busy' (its locks were
-- never free at once: nothing done, try again later) or why it stays.
-- As history_range_drop() does: no lock is waited for; each try takes the
-- partition's and messages' ACCESS EXCLUSIVE NOWAIT in a subtransaction
-- that gives them back when one is not free, up to 150 tries 10 ms apart.
-- Under messages' lock no statement that writes a recipient of a message
-- (each one reads or writes messages in its transaction) is under way, so
-- the range judged again there stays as judged.  O(1): no DELETE.
-- SECURITY DEFINER: pushgated's role may write rows, not drop tables.
CREATE OR REPLACE FUNCTION message_range_drop(p_lo bigint, p_keep interval)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '200ms' AS $$
DECLARE
    g record;
    part text := 'messages_' || CASE WHEN p_lo = -9223372036854775808 THEN 'legacy' ELSE p_lo::text END;
BEGIN
    FOR attempt IN 1..150 LOOP
        BEGIN
            LOCK TABLE message_ranges IN SHARE ROW EXCLUSIVE MODE;
            EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', part);
            LOCK TABLE ONLY messages IN ACCESS EXCLUSIVE MODE NOWAIT;
            SELECT * INTO g FROM message_retention(p_keep, p_lo) h;
            IF NOT FOUND OR g.action <> 'drop' THEN
                RETURN coalesce(g.action, 'gone');
            END IF;
            EXECUTE format('DROP TABLE %I', part);
            DELETE FROM message_ranges m WHERE m.lo = p_lo;
            RETURN 'dropped';
        EXCEPTION WHEN lock_not_available OR deadlock_detected OR undefined_table THEN
            PERFORM pg_sleep(0.01);
        END;
    END LOOP;
    RETURN 'busy';
END $$;
