-- migrate: online
-- 029_history_partitions: recipients, sms_parts and events become tables
-- partitioned by recipient id range (docs/architecture.md, "History in
-- ranges").  A range of recipient ids is a span of time (ids are issued in
-- order), and every hot statement reaches these rows by recipient id, so
-- each one prunes to one partition; one range's three partitions are
-- created together and dropped together by retention.
--
-- A populated database converts online:
--   1. history_ranges gets the legacy range (-inf, B): B lies far above
--      every recipient id issued so far (1e9 ids of room for the traffic
--      that goes on during steps 2-3; 1 on an empty database, whose empty
--      legacy partitions step 4 drops);
--   2. each table gets CHECK (key < B) NOT VALID (a catalog change);
--   3. VALIDATE scans each table under SHARE UPDATE EXCLUSIVE: reads and
--      writes go on;
--   4. one short transaction (ACCESS EXCLUSIVE on the three tables, each
--      try waiting at most a second; tried for a minute) renames each
--      table to <table>_legacy, creates the partitioned table in its place
--      and attaches the old one as the partition of (-inf, B): the
--      validated CHECK proves the bound, so nothing is scanned; the indexes
--      of the old table become the partitions of the new one's, the
--      triggers and views follow, and the id sequence jumps to B so new
--      rows go to the first new range.
-- Every step is written to be run again (migrate.c runs an online file
-- again from the start when it was cut short).
CREATE TABLE IF NOT EXISTS history_ranges (
    lo         bigint PRIMARY KEY,
    hi         bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    issued     bigint NOT NULL,
    CHECK (hi > lo)
);
COMMENT ON TABLE history_ranges IS 'recipient id ranges [lo, hi) of the history partitions: recipients_<n>, sms_parts_<n>, events_<n>; issued: recipients_id_seq when the range was made (sizing)';
CREATE TABLE IF NOT EXISTS history_tables (
    name       text PRIMARY KEY,
    key        text NOT NULL,
    reloptions text[],
    ord        int NOT NULL
);
COMMENT ON TABLE history_tables IS 'the tables partitioned by recipient id range, their partition key and the storage options each new partition gets';
DO $$
DECLARE
    b bigint;
    last bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM history_ranges) THEN
        RETURN;
    END IF;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO last FROM recipients_id_seq;
    last := greatest(last, coalesce((SELECT max(id) FROM recipients), 0));
    b := CASE WHEN last = 0 THEN 1 ELSE last + 1000000000 END;
    INSERT INTO history_ranges (lo, hi, issued) VALUES (-9223372036854775808, b, last);
    INSERT INTO history_tables (name, key, reloptions, ord)
    SELECT t.name, t.key, c.reloptions, t.ord
      FROM (VALUES ('recipients', 'id', 1), ('sms_parts', 'recipient_id', 2), ('events', 'recipient_id', 3)) t(name, key, ord)
      JOIN pg_class c ON c.oid = t.name::regclass
    ON CONFLICT (name) DO NOTHING;
END $$;
DO $$
DECLARE
    t record;
    b bigint := (SELECT hi FROM history_ranges ORDER BY lo LIMIT 1);
BEGIN
    FOR t IN SELECT h.name, h.key FROM history_tables h JOIN pg_class c ON c.oid = h.name::regclass
              WHERE c.relkind = 'r' ORDER BY h.ord LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = t.name::regclass
                                                     AND conname = t.name || '_legacy_range') THEN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I < %s) NOT VALID',
                           t.name, t.name || '_legacy_range', t.key, t.key, b);
        END IF;
    END LOOP;
END $$;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT h.name FROM history_tables h JOIN pg_class c ON c.oid = h.name::regclass
              WHERE c.relkind = 'r' ORDER BY h.ord LOOP
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', t.name, t.name || '_legacy_range');
    END LOOP;
END $$;
SET lock_timeout = '1s';
DO $$
DECLARE
    t record;
    i record;
    r record;
    b bigint := (SELECT hi FROM history_ranges ORDER BY lo LIMIT 1);
    legacy text;
    idx text[];
    trg text[];
    vw text[];
    d text;
    locked boolean := false;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'recipients'::regclass) = 'p' THEN
        RETURN;
    END IF;
    -- Each try waits at most lock_timeout (1 s) behind the transactions
    -- under way, and the traffic waits behind it no longer; a try that
    -- fails (or meets a deadlock) lets go of what it took and tries again,
    -- for a minute.  messages: the foreign key added below locks it
    -- against writes; taken first, as the intake writes it first.
    FOR attempt IN 1..60 LOOP
        BEGIN
            LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE;
            LOCK TABLE recipients, sms_parts, events IN ACCESS EXCLUSIVE MODE;
            locked := true;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            PERFORM pg_sleep(0.2);
        END;
        EXIT WHEN locked;
    END LOOP;
    IF NOT locked THEN
        RAISE EXCEPTION 'recipients, sms_parts, events: no moment without a transaction on them in a minute; run the migration again';
    END IF;
    FOR t IN SELECT name, key FROM history_tables ORDER BY ord LOOP
        legacy := t.name || '_legacy';
        -- what follows the table by name, captured before the rename
        SELECT coalesce(array_agg(format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass,
                                         pg_get_viewdef(v.oid))), '{}') INTO vw
          FROM (SELECT DISTINCT rw.ev_class AS oid FROM pg_depend dp JOIN pg_rewrite rw ON rw.oid = dp.objid
                 WHERE dp.classid = 'pg_rewrite'::regclass AND dp.refobjid = t.name::regclass
                   AND rw.ev_class <> t.name::regclass) v;
        SELECT coalesce(array_agg(pg_get_triggerdef(g.oid)), '{}') INTO trg
          FROM pg_trigger g WHERE g.tgrelid = t.name::regclass AND NOT g.tgisinternal;
        FOR r IN SELECT tgname FROM pg_trigger WHERE tgrelid = t.name::regclass AND NOT tgisinternal LOOP
            EXECUTE format('DROP TRIGGER %I ON %I', r.tgname, t.name);
        END LOOP;
        -- indexes of the old table: the same definitions on the new one,
        -- which attaches the old ones rather than building anything
        SELECT coalesce(array_agg(CASE WHEN x.indisprimary
                                       THEN format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (%s)', t.name,
                                                   ic.relname, (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n)
                                                                  FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
                                                                  JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum))
                                       ELSE pg_get_indexdef(x.indexrelid) END), '{}') INTO idx
          FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
         WHERE x.indrelid = t.name::regclass
           AND (x.indisprimary OR NOT x.indisunique);
        -- a unique index other than the primary key cannot be global on a
        -- partitioned table: it stays the old partition's own
        IF EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = t.name::regclass AND x.indisunique
                      AND NOT x.indisprimary) THEN
            RAISE EXCEPTION '%: unique index besides the primary key', t.name;
        END IF;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t.name, legacy);
        FOR i IN SELECT ic.relname FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                  WHERE x.indrelid = legacy::regclass LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', i.relname, i.relname || '_legacy');
        END LOOP;
        -- the events primary key (id) does not hold the partition key: the
        -- old partition keeps it as its own, each new partition gets its own
        -- (ids are unique by their sequence)
        IF t.name = 'events' THEN
            idx := array(SELECT s FROM unnest(idx) s WHERE s NOT LIKE 'ALTER TABLE events ADD CONSTRAINT events_pkey %');
        END IF;
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET NOT NULL', legacy, t.key);
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE'
                       ' INCLUDING COMMENTS) PARTITION BY RANGE (%I)', t.name, legacy, t.key);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t.name, t.name || '_legacy_range');
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%s)', t.name, legacy, b);
        FOREACH d IN ARRAY idx LOOP
            EXECUTE d;
        END LOOP;
        FOREACH d IN ARRAY trg LOOP
            EXECUTE d;
        END LOOP;
        FOREACH d IN ARRAY vw LOOP
            EXECUTE d;
        END LOOP;
        -- the sequences belong to the new table (dropping the old
        -- partition one day must not drop them)
        FOR r IN SELECT s.oid::regclass AS seq, a.attname FROM pg_depend dp JOIN pg_class s ON s.oid = dp.objid
                  JOIN pg_attribute a ON a.attrelid = dp.refobjid AND a.attnum = dp.refobjsubid
                  WHERE dp.classid = 'pg_class'::regclass AND s.relkind = 'S' AND dp.refobjid = legacy::regclass
                    AND dp.deptype = 'a' LOOP
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %I.%I', r.seq, t.name, r.attname);
        END LOOP;
    END LOOP;
    -- recipients' foreign key to messages: the old partition's is attached
    -- to the new table's, not validated again
    ALTER TABLE recipients ADD CONSTRAINT recipients_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages (id);
    -- the first range, for the rows written from now on (pushgated keeps
    -- the next ones made ahead: history_ensure())
    FOR t IN SELECT name, reloptions FROM history_tables ORDER BY ord LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)%s', t.name || '_' || b,
                       t.name, b, b + 1000000,
                       CASE WHEN t.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(t.reloptions, ', ') || ')' END);
        IF t.name = 'events' THEN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (id)', t.name || '_' || b, 'events_pkey_' || b);
        END IF;
        -- its indexes named as history_range_add() names them: <parent's>_<lo>
        FOR i IN SELECT c.relname AS own, pc.relname AS parent
                   FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                   JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
                  WHERE x.indrelid = (t.name || '_' || b)::regclass LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_' || b);
        END LOOP;
    END LOOP;
    INSERT INTO history_ranges (lo, hi, issued) VALUES (b, b + 1000000, b - 1);
    IF b > 1 THEN
        PERFORM setval('recipients_id_seq', b, false);
    ELSE
        -- a new database: the old tables are empty and no id falls below 1
        FOR t IN SELECT name FROM history_tables ORDER BY ord DESC LOOP
            EXECUTE format('DROP TABLE %I', t.name || '_legacy');
        END LOOP;
        DELETE FROM history_ranges WHERE hi = 1;
    END IF;
END $$;
RESET lock_timeout;
