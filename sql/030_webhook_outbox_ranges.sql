-- migrate: online
-- 030_webhook_outbox_ranges: webhook_outbox joins the history ranges
-- (sql/029): partitioned by recipient id on the same bounds as recipients,
-- sms_parts and events, so a range's webhook deliveries are made and
-- dropped with its recipients (retention keeps a range while one of its
-- deliveries is pending).  Rows without a recipient (a mobile-originated
-- message forwarded to its owner's webhook, smpp/outbox.c) go to the
-- default partition webhook_outbox_other, whose CHECK (recipient_id IS
-- NULL) spares every range attached later a scan of it.  Each partition has
-- its own primary key on id, as events' do: a key of the parent would have
-- to hold recipient_id (history_tables.own_key).
--
-- The conversion, one short transaction (ACCESS EXCLUSIVE on the outbox
-- alone, each try waiting at most a second, for a minute): the old table is
-- renamed webhook_outbox_old, the partitioned one made in its place with a
-- partition for each history range, and the rows still to be delivered are
-- moved over (ids, leases and attempts as they were: a node's lease goes on
-- in the new table).  The old table keeps the delivered history (dropped at
-- once when it has none; else for the operator to drop when it is no longer
-- wanted, docs/operations.md).  Run again, it finds the table partitioned.
ALTER TABLE history_tables ADD COLUMN IF NOT EXISTS own_key text;
COMMENT ON COLUMN history_tables.own_key IS 'each partition''s own primary key column (a key of the parent would have to hold the partition key)';
UPDATE history_tables SET own_key = 'id' WHERE name = 'events' AND own_key IS NULL;
SET lock_timeout = '1s';
DO $$
DECLARE
    g record;
    i record;
    r record;
    idx text[];
    vw text[];
    d text;
    part text;
    moved bigint;
    locked boolean := false;
    orphans bigint;
    orphan_lo bigint;
    orphan_hi bigint;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'webhook_outbox'::regclass) = 'p' THEN
        RETURN;
    END IF;
    FOR attempt IN 1..60 LOOP
        BEGIN
            LOCK TABLE webhook_outbox IN ACCESS EXCLUSIVE MODE;
            locked := true;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            PERFORM pg_sleep(0.2);
        END;
        EXIT WHEN locked;
    END LOOP;
    IF NOT locked THEN
        RAISE EXCEPTION 'webhook_outbox: no moment without a transaction on it in a minute; run the migration again';
    END IF;
    -- a row still to be delivered must go to its recipient's range: one whose recipient id no
    -- range holds (a recipient that never was) is the operator's to settle first
    SELECT count(*), min(o.recipient_id), max(o.recipient_id) INTO orphans, orphan_lo, orphan_hi FROM webhook_outbox o
     WHERE o.delivered_at IS NULL AND o.given_up_at IS NULL AND o.recipient_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM history_ranges h WHERE o.recipient_id >= h.lo AND o.recipient_id < h.hi);
    IF orphans > 0 THEN
        RAISE EXCEPTION 'webhook_outbox: % rows still to be delivered name recipient ids no history range holds (% to %);'
                        ' deliver, give up or delete them, then run the migration again', orphans, orphan_lo, orphan_hi;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'webhook_outbox'::regclass AND NOT tgisinternal) THEN
        RAISE EXCEPTION 'webhook_outbox: a trigger on it; this migration does not move triggers';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = 'webhook_outbox'::regclass AND x.indisunique
                  AND NOT x.indisprimary) THEN
        RAISE EXCEPTION 'webhook_outbox: unique index besides the primary key';
    END IF;
    -- what follows the table by name, captured before the rename
    SELECT coalesce(array_agg(format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid))), '{}')
      INTO vw
      FROM (SELECT DISTINCT rw.ev_class AS oid FROM pg_depend dp JOIN pg_rewrite rw ON rw.oid = dp.objid
             WHERE dp.classid = 'pg_rewrite'::regclass AND dp.refobjid = 'webhook_outbox'::regclass
               AND rw.ev_class <> 'webhook_outbox'::regclass) v;
    SELECT coalesce(array_agg(pg_get_indexdef(x.indexrelid)), '{}') INTO idx
      FROM pg_index x WHERE x.indrelid = 'webhook_outbox'::regclass AND NOT x.indisprimary;
    ALTER TABLE webhook_outbox RENAME TO webhook_outbox_old;
    FOR i IN SELECT ic.relname FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
              WHERE x.indrelid = 'webhook_outbox_old'::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.relname, i.relname || '_old');
    END LOOP;
    CREATE TABLE webhook_outbox (LIKE webhook_outbox_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                                 INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (recipient_id);
    FOREACH d IN ARRAY idx LOOP
        EXECUTE d;
    END LOOP;
    INSERT INTO history_tables (name, key, reloptions, ord, own_key)
    SELECT 'webhook_outbox', 'recipient_id', c.reloptions, 4, 'id'
      FROM pg_class c WHERE c.oid = 'webhook_outbox_old'::regclass
    ON CONFLICT (name) DO NOTHING;
    FOR g IN SELECT h.lo, h.hi, t.reloptions FROM history_ranges h, history_tables t
              WHERE t.name = 'webhook_outbox' ORDER BY h.lo LOOP
        part := 'webhook_outbox_' || CASE WHEN g.lo = -9223372036854775808 THEN 'legacy' ELSE g.lo::text END;
        EXECUTE format('CREATE TABLE %I PARTITION OF webhook_outbox FOR VALUES FROM (%s) TO (%s)%s', part,
                       CASE WHEN g.lo = -9223372036854775808 THEN 'MINVALUE' ELSE g.lo::text END, g.hi,
                       CASE WHEN g.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(g.reloptions, ', ') || ')' END);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (id)', part,
                       'webhook_outbox_pkey_' || substr(part, length('webhook_outbox_') + 1));
        FOR i IN SELECT c.relname AS own, pc.relname AS parent
                   FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                   JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
                  WHERE x.indrelid = part::regclass
                    AND c.relname <> pc.relname || '_' || substr(part, length('webhook_outbox_') + 1) LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_' || substr(part, length('webhook_outbox_') + 1));
        END LOOP;
    END LOOP;
    CREATE TABLE webhook_outbox_other PARTITION OF webhook_outbox DEFAULT;
    ALTER TABLE webhook_outbox_other ADD CONSTRAINT webhook_outbox_other_no_recipient CHECK (recipient_id IS NULL);
    ALTER TABLE webhook_outbox_other ADD CONSTRAINT webhook_outbox_pkey_other PRIMARY KEY (id);
    FOR i IN SELECT c.relname AS own, pc.relname AS parent
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
               JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
              WHERE x.indrelid = 'webhook_outbox_other'::regclass AND c.relname <> pc.relname || '_other' LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_other');
    END LOOP;
    -- the rows still to be delivered, as they are
    WITH m AS (DELETE FROM webhook_outbox_old o WHERE o.delivered_at IS NULL AND o.given_up_at IS NULL RETURNING o.*)
    INSERT INTO webhook_outbox SELECT * FROM m;
    FOR r IN SELECT s.oid::regclass AS seq, a.attname FROM pg_depend dp JOIN pg_class s ON s.oid = dp.objid
              JOIN pg_attribute a ON a.attrelid = dp.refobjid AND a.attnum = dp.refobjsubid
              WHERE dp.classid = 'pg_class'::regclass AND s.relkind = 'S'
                AND dp.refobjid = 'webhook_outbox_old'::regclass AND dp.deptype = 'a' LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNED BY webhook_outbox.%I', r.seq, r.attname);
    END LOOP;
    FOREACH d IN ARRAY vw LOOP
        EXECUTE d;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM webhook_outbox_old) THEN
        DROP TABLE webhook_outbox_old;
    END IF;
END $$;
RESET lock_timeout;
