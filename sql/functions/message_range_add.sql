-- Makes the message range [p_lo, p_hi) of message ids (sql/036): the
-- partition messages_<lo>, with the storage options of the newest one, and
-- its message_ranges row, in the caller's transaction.  Created on its own
-- and then attached, as history_range_add() does: ATTACH takes SHARE UPDATE
-- EXCLUSIVE on messages, so the traffic goes on; the new table is empty,
-- nothing is scanned.  Its indexes are named <parent's>_<lo>.
-- SECURITY DEFINER: pushgated's role may write rows, not create tables.
CREATE OR REPLACE FUNCTION message_range_add(p_lo bigint, p_hi bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    i record;
    part text := 'messages_' || p_lo;
    opts text[];
BEGIN
    IF p_hi <= p_lo THEN
        RAISE EXCEPTION 'message range [%, %) is empty', p_lo, p_hi;
    END IF;
    SELECT c.reloptions INTO opts FROM message_ranges r
      JOIN pg_class c ON c.oid = to_regclass('public.messages_' || CASE WHEN r.lo = -9223372036854775808
                                                                         THEN 'legacy' ELSE r.lo::text END)
     ORDER BY r.lo DESC LIMIT 1;
    EXECUTE format('CREATE TABLE %I (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)%s',
                   part, CASE WHEN opts IS NULL THEN '' ELSE ' WITH (' || array_to_string(opts, ', ') || ')' END);
    EXECUTE format('ALTER TABLE messages ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', part, p_lo, p_hi);
    FOR i IN SELECT c.relname AS own, pc.relname AS parent
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
               JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
              WHERE x.indrelid = part::regclass AND c.relname <> pc.relname || '_' || p_lo LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_' || p_lo);
    END LOOP;
    INSERT INTO message_ranges (lo, hi, issued) VALUES (p_lo, p_hi, message_issued());
END $$;
