-- migrate: online
-- 036_message_ranges: messages is partitioned by id in ranges of its own
-- (message_ranges: messages_<lo>), as the recipients are by theirs
-- (sql/029).  Message ids are issued in time order, so a range is a span of
-- time; the statements reach messages by id (a recipient's message_id, the
-- outbox fills' id ranges) and prune to their range.  pushgated keeps a
-- range made ahead (message_ensure()), retention drops a range whole once
-- no kept recipient names its messages and none of their idempotency keys
-- is kept (message_retention(), message_range_drop()).
-- A unique index of a partitioned table must hold the partition key: the
-- idempotency keys moved to message_keys first (sql/035); messages_idempotency
-- stays the legacy partition's own.  Dropping a message range must not
-- scan the recipients: the foreign key recipients.message_id -> messages
-- goes (each message is written with its recipients in one statement; a
-- recipient's message is kept as long as the recipient, message_retention()).
--
-- A populated database converts online, as sql/029 does: the legacy range
-- (-inf, B), B a billion ids above the last message id issued (1 on an
-- empty database); CHECK (id < B) NOT VALID, then validated under SHARE
-- UPDATE EXCLUSIVE (traffic goes on); then one short transaction (ACCESS
-- EXCLUSIVE on messages and recipients, tries of a second each, for a
-- minute) drops the foreign key, renames messages to messages_legacy,
-- creates the partitioned table in its place, attaches the old one as the
-- partition of (-inf, B) (the validated CHECK spares the scan), its indexes
-- as the new ones' partitions, moves the view and the sequence, makes the
-- first range [B, B + 1e6) and makes the id sequence jump to B.  Each step
-- can run again.
CREATE TABLE IF NOT EXISTS message_ranges (
    lo         bigint PRIMARY KEY,
    hi         bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    issued     bigint NOT NULL,
    CHECK (hi > lo)
);
COMMENT ON TABLE message_ranges IS 'message id ranges [lo, hi) of the partitions messages_<lo>; issued: messages_id_seq when the range was made (sizing)';
DO $$
DECLARE
    last bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM message_ranges) THEN
        RETURN;
    END IF;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO last FROM messages_id_seq;
    last := greatest(last, coalesce((SELECT max(id) FROM messages), 0));
    INSERT INTO message_ranges (lo, hi, issued)
    VALUES (-9223372036854775808, CASE WHEN last = 0 THEN 1 ELSE last + 1000000000 END, last);
END $$;
DO $$
DECLARE
    b bigint := (SELECT hi FROM message_ranges ORDER BY lo LIMIT 1);
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'messages'::regclass) = 'r'
       AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'messages'::regclass
                                                    AND conname = 'messages_legacy_range') THEN
        EXECUTE format('ALTER TABLE messages ADD CONSTRAINT messages_legacy_range CHECK (id IS NOT NULL AND id < %s) NOT VALID', b);
    END IF;
END $$;
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'messages'::regclass) = 'r' THEN
        ALTER TABLE messages VALIDATE CONSTRAINT messages_legacy_range;
    END IF;
END $$;
SET lock_timeout = '1s';
DO $$
DECLARE
    i record;
    r record;
    b bigint := (SELECT hi FROM message_ranges ORDER BY lo LIMIT 1);
    idx text[];
    vw text[];
    d text;
    opts text[];
    locked boolean := false;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'messages'::regclass) = 'p' THEN
        RETURN;
    END IF;
    -- messages first, as the intake writes it before its recipients
    FOR attempt IN 1..60 LOOP
        BEGIN
            LOCK TABLE messages IN ACCESS EXCLUSIVE MODE;
            LOCK TABLE recipients IN ACCESS EXCLUSIVE MODE;
            locked := true;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            PERFORM pg_sleep(0.2);
        END;
        EXIT WHEN locked;
    END LOOP;
    IF NOT locked THEN
        RAISE EXCEPTION 'messages, recipients: no moment without a transaction on them in a minute; run the migration again';
    END IF;
    ALTER TABLE recipients DROP CONSTRAINT IF EXISTS recipients_message_id_fkey;
    SELECT coalesce(array_agg(format('CREATE OR REPLACE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid))), '{}')
      INTO vw
      FROM (SELECT DISTINCT rw.ev_class AS oid FROM pg_depend dp JOIN pg_rewrite rw ON rw.oid = dp.objid
             WHERE dp.classid = 'pg_rewrite'::regclass AND dp.refobjid = 'messages'::regclass
               AND rw.ev_class <> 'messages'::regclass) v;
    -- the primary key (it holds the partition key) and the plain indexes, made
    -- again on the new table, which attaches the old ones; the unique
    -- messages_idempotency stays the old partition's own
    SELECT coalesce(array_agg(CASE WHEN x.indisprimary THEN 'ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id)'
                                   ELSE pg_get_indexdef(x.indexrelid) END), '{}') INTO idx
      FROM pg_index x WHERE x.indrelid = 'messages'::regclass AND (x.indisprimary OR NOT x.indisunique);
    SELECT reloptions INTO opts FROM pg_class WHERE oid = 'messages'::regclass;
    ALTER TABLE messages RENAME TO messages_legacy;
    FOR i IN SELECT ic.relname FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
              WHERE x.indrelid = 'messages_legacy'::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.relname, i.relname || '_legacy');
    END LOOP;
    CREATE TABLE messages (LIKE messages_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
                           INCLUDING COMMENTS) PARTITION BY RANGE (id);
    ALTER TABLE messages DROP CONSTRAINT messages_legacy_range;
    EXECUTE format('ALTER TABLE messages ATTACH PARTITION messages_legacy FOR VALUES FROM (MINVALUE) TO (%s)', b);
    FOREACH d IN ARRAY idx LOOP
        EXECUTE d;
    END LOOP;
    FOREACH d IN ARRAY vw LOOP
        EXECUTE d;
    END LOOP;
    ALTER SEQUENCE messages_id_seq OWNED BY messages.id;
    -- the first range, for the messages written from now on
    EXECUTE format('CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%s) TO (%s)%s', 'messages_' || b, b,
                   b + 1000000, CASE WHEN opts IS NULL THEN '' ELSE ' WITH (' || array_to_string(opts, ', ') || ')' END);
    FOR i IN SELECT c.relname AS own, pc.relname AS parent
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
               JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
              WHERE x.indrelid = ('messages_' || b)::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_' || b);
    END LOOP;
    INSERT INTO message_ranges (lo, hi, issued) VALUES (b, b + 1000000, b - 1);
    IF b > 1 THEN
        PERFORM setval('messages_id_seq', b, false);
    ELSE
        -- a new database: the old table is empty and no id falls below 1
        DROP TABLE messages_legacy;
        DELETE FROM message_ranges WHERE hi = 1;
    END IF;
END $$;
RESET lock_timeout;
