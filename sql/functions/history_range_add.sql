-- Makes the history range [p_lo, p_hi) of recipient ids: one partition of
-- each table in history_tables (recipients_<lo>, sms_parts_<lo>,
-- events_<lo>, webhook_outbox_<lo>, smpp_outbox_<lo>) with that table's storage options, and
-- its history_ranges row, in the caller's transaction.  Each partition is
-- created on its own and then attached: ATTACH takes SHARE UPDATE EXCLUSIVE
-- on the parent, so the traffic on the current ranges goes on (CREATE TABLE
-- ... PARTITION OF would take ACCESS EXCLUSIVE); the new table is empty,
-- nothing is scanned.
-- A table with an own_key (events and the outboxes: id) gets a primary key
-- on it in each partition (a key of the parent would have to hold
-- recipient_id).  The outboxes' default partitions (rows without a
-- recipient) are locked a moment by the attach; their CHECK spares them a scan.
-- SECURITY DEFINER: pushgated's role may write rows, not create tables.
CREATE OR REPLACE FUNCTION history_range_add(p_lo bigint, p_hi bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t record;
    i record;
    part text;
BEGIN
    IF p_hi <= p_lo THEN
        RAISE EXCEPTION 'history range [%, %) is empty', p_lo, p_hi;
    END IF;
    -- (a table not partitioned yet, being converted, gets none)
    FOR t IN SELECT h.name, h.reloptions, h.own_key FROM history_tables h JOIN pg_class c ON c.oid = h.name::regclass
              WHERE c.relkind = 'p' ORDER BY h.ord LOOP
        part := t.name || '_' || p_lo;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)%s',
                       part, t.name,
                       CASE WHEN t.reloptions IS NULL THEN ''
                            ELSE ' WITH (' || array_to_string(t.reloptions, ', ') || ')' END);
        IF t.own_key IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (%I)', part, t.name || '_pkey_' || p_lo,
                           t.own_key);
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       t.name, part, p_lo, p_hi);
        -- the indexes ATTACH made are named after the parent's and the
        -- range: events_at -> events_at_<lo> (plans read as the parent's)
        FOR i IN SELECT c.relname AS own, pc.relname AS parent
                   FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                   JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
                  WHERE x.indrelid = part::regclass AND c.relname <> pc.relname || '_' || p_lo LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_' || p_lo);
        END LOOP;
    END LOOP;
    INSERT INTO history_ranges (lo, hi, issued)
    VALUES (p_lo, p_hi, history_issued());
END $$;
