-- migrate: online
-- 030_webhook_outbox_ranges: webhook_outbox joins the history ranges
-- (sql/029): partitioned by recipient id on the same bounds as recipients,
-- sms_parts and events, so a range's webhook deliveries are made and
-- dropped with its recipients (retention keeps a range while one of its
-- deliveries is pending).  Every row has a recipient (the fills skip events
-- without one).  Each partition has its own primary key on id, as events'
-- do: a key of the parent would have to hold recipient_id.
--
-- history_tables gains
--   own_key    a column each partition gets its own primary key on;
--   legacy_hi  where the table's <name>_legacy partition ends, when it is
--              not the legacy range's end: no partition of its own is made
--              below it, and the legacy partition goes once no range below
--              it is left.
--
-- A database whose webhook_outbox is empty (a new one, or one that never
-- had a webhook) converts in one short transaction: the old table dropped,
-- the partitioned one made with a partition for each history range.  A
-- populated one converts online, as 029 did: the old table becomes the
-- partition webhook_outbox_legacy of (-inf, X), X a billion recipient ids
-- above the last one issued, proven by a CHECK validated while traffic goes
-- on; in the short transaction that attaches it, recipients_id_seq jumps to
-- X and the range [X, X + 1M) is made for every history table (the ranges
-- made ahead below X stay empty; retention drops them).
-- Every step is written to be run again.
ALTER TABLE history_tables ADD COLUMN IF NOT EXISTS own_key text;
ALTER TABLE history_tables ADD COLUMN IF NOT EXISTS legacy_hi bigint;
COMMENT ON COLUMN history_tables.own_key IS 'each partition''s own primary key column (a key of the parent would have to hold the partition key)';
COMMENT ON COLUMN history_tables.legacy_hi IS 'the end of <name>_legacy when it is not the legacy range''s: no partition of its own below it';
UPDATE history_tables SET own_key = 'id' WHERE name = 'events' AND own_key IS NULL;
DO $$
DECLARE
    x bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM history_tables WHERE name = 'webhook_outbox') THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM webhook_outbox) THEN
        SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END + 1000000000 INTO x
          FROM recipients_id_seq s;
        x := greatest(x, (SELECT max(hi) FROM history_ranges));
    END IF;
    -- history_range_add() makes partitions only of tables already partitioned
    INSERT INTO history_tables (name, key, reloptions, ord, own_key, legacy_hi)
    SELECT 'webhook_outbox', 'recipient_id', c.reloptions, 4, 'id', x
      FROM pg_class c WHERE c.oid = 'webhook_outbox'::regclass;
END $$;
DO $$
DECLARE
    x bigint := (SELECT legacy_hi FROM history_tables WHERE name = 'webhook_outbox');
BEGIN
    IF x IS NOT NULL AND (SELECT relkind FROM pg_class WHERE oid = 'webhook_outbox'::regclass) = 'r'
       AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'webhook_outbox'::regclass
                                                      AND conname = 'webhook_outbox_legacy_range') THEN
        EXECUTE format('ALTER TABLE webhook_outbox ADD CONSTRAINT webhook_outbox_legacy_range'
                       ' CHECK (recipient_id IS NOT NULL AND recipient_id < %s) NOT VALID', x);
    END IF;
END $$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'webhook_outbox'::regclass
                                              AND conname = 'webhook_outbox_legacy_range' AND NOT convalidated) THEN
        ALTER TABLE webhook_outbox VALIDATE CONSTRAINT webhook_outbox_legacy_range;
    END IF;
END $$;
SET lock_timeout = '1s';
DO $$
DECLARE
    x bigint := (SELECT legacy_hi FROM history_tables WHERE name = 'webhook_outbox');
    opts text[] := (SELECT reloptions FROM history_tables WHERE name = 'webhook_outbox');
    with_opts text := CASE WHEN opts IS NULL THEN '' ELSE ' WITH (' || array_to_string(opts, ', ') || ')' END;
    g record;
    t record;
    i record;
    r record;
    idx text[];
    vw text[];
    d text;
    part text;
    locked boolean := false;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'webhook_outbox'::regclass) = 'p' THEN
        RETURN;
    END IF;
    -- each try waits at most a second behind the transactions under way,
    -- for a minute.  A populated table: the new range is attached to every
    -- history table (its foreign key locks messages against writes), so
    -- the locks are taken first, in the order the traffic takes them.
    FOR attempt IN 1..60 LOOP
        BEGIN
            IF x IS NOT NULL THEN
                LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE;
                LOCK TABLE recipients, sms_parts, events IN SHARE UPDATE EXCLUSIVE MODE;
            END IF;
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
    IF x IS NULL AND EXISTS (SELECT 1 FROM webhook_outbox) THEN
        RAISE EXCEPTION 'webhook_outbox got its first rows during the migration; run it again';
    END IF;
    -- what follows the table by name, captured before it goes
    SELECT coalesce(array_agg(format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid))), '{}')
      INTO vw
      FROM (SELECT DISTINCT rw.ev_class AS oid FROM pg_depend dp JOIN pg_rewrite rw ON rw.oid = dp.objid
             WHERE dp.classid = 'pg_rewrite'::regclass AND dp.refobjid = 'webhook_outbox'::regclass
               AND rw.ev_class <> 'webhook_outbox'::regclass) v;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'webhook_outbox'::regclass AND NOT tgisinternal) THEN
        RAISE EXCEPTION 'webhook_outbox: a trigger on it; this migration does not move triggers';
    END IF;
    -- its indexes but the primary key (each partition has its own)
    SELECT coalesce(array_agg(pg_get_indexdef(x.indexrelid)), '{}') INTO idx
      FROM pg_index x WHERE x.indrelid = 'webhook_outbox'::regclass AND NOT x.indisprimary;
    IF EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = 'webhook_outbox'::regclass AND x.indisunique
                  AND NOT x.indisprimary) THEN
        RAISE EXCEPTION 'webhook_outbox: unique index besides the primary key';
    END IF;
    ALTER TABLE webhook_outbox RENAME TO webhook_outbox_legacy;
    FOR i IN SELECT ic.relname FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
              WHERE x.indrelid = 'webhook_outbox_legacy'::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.relname, i.relname || '_legacy');
    END LOOP;
    ALTER TABLE webhook_outbox_legacy ALTER COLUMN recipient_id SET NOT NULL;
    CREATE TABLE webhook_outbox (LIKE webhook_outbox_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                                 INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (recipient_id);
    IF x IS NOT NULL THEN
        ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_legacy_range;
        EXECUTE format('ALTER TABLE webhook_outbox ATTACH PARTITION webhook_outbox_legacy'
                       ' FOR VALUES FROM (MINVALUE) TO (%s)', x);
    END IF;
    FOREACH d IN ARRAY idx LOOP
        EXECUTE d;   -- attaches the legacy partition's index, builds nothing
    END LOOP;
    FOR r IN SELECT s.oid::regclass AS seq, a.attname FROM pg_depend dp JOIN pg_class s ON s.oid = dp.objid
              JOIN pg_attribute a ON a.attrelid = dp.refobjid AND a.attnum = dp.refobjsubid
              WHERE dp.classid = 'pg_class'::regclass AND s.relkind = 'S'
                AND dp.refobjid = 'webhook_outbox_legacy'::regclass AND dp.deptype = 'a' LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNED BY webhook_outbox.%I', r.seq, r.attname);
    END LOOP;
    FOREACH d IN ARRAY vw LOOP
        EXECUTE d;
    END LOOP;
    IF x IS NULL THEN
        DROP TABLE webhook_outbox_legacy;
    END IF;
    -- its partitions: one per history range (an empty table), or the range
    -- [x, x + 1M) of every history table after the jump (a populated one)
    IF x IS NULL THEN
        FOR g IN SELECT lo, hi FROM history_ranges ORDER BY lo LOOP
            part := 'webhook_outbox_' || CASE WHEN g.lo = -9223372036854775808 THEN 'legacy' ELSE g.lo::text END;
            EXECUTE format('CREATE TABLE %I PARTITION OF webhook_outbox FOR VALUES FROM (%s) TO (%s)%s', part,
                           CASE WHEN g.lo = -9223372036854775808 THEN 'MINVALUE' ELSE g.lo::text END, g.hi, with_opts);
        END LOOP;
    ELSE
        -- made on its own and attached, as history_range_add() does (no
        -- ACCESS EXCLUSIVE on the parents the traffic writes)
        FOR g IN SELECT h.name, h.reloptions FROM history_tables h ORDER BY h.ord LOOP
            part := g.name || '_' || x;
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)%s',
                           part, g.name,
                           CASE WHEN g.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(g.reloptions, ', ') || ')' END);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', g.name, part, x, x + 1000000);
        END LOOP;
        INSERT INTO history_ranges (lo, hi, issued) VALUES (x, x + 1000000, x - 1);
        PERFORM setval('recipients_id_seq', x, false);
    END IF;
    -- each new partition: its own primary key, indexes named <parent's>_<lo>
    FOR t IN SELECT c.relname AS part, h.name, h.own_key, substr(c.relname, length(h.name) + 2) AS suffix
               FROM history_tables h JOIN pg_inherits n ON n.inhparent = h.name::regclass
               JOIN pg_class c ON c.oid = n.inhrelid
              WHERE h.own_key IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary) LOOP
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (%I)', t.part, t.name || '_pkey_' || t.suffix,
                       t.own_key);
    END LOOP;
    FOR i IN SELECT c.relname AS own, pc.relname || '_' || substr(tc.relname, length(h.name) + 2) AS want
               FROM history_tables h JOIN pg_inherits n ON n.inhparent = h.name::regclass
               JOIN pg_class tc ON tc.oid = n.inhrelid
               JOIN pg_index x ON x.indrelid = tc.oid JOIN pg_class c ON c.oid = x.indexrelid
               JOIN pg_inherits hi ON hi.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = hi.inhparent
              WHERE c.relname <> pc.relname || '_' || substr(tc.relname, length(h.name) + 2) LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.want);
    END LOOP;
END $$;
RESET lock_timeout;
