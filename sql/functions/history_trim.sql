-- Deletes what retention takes of the rows outside the history ranges
-- (history_trim_tables(), history_trimmable(): old MO and its delivered
-- deliveries, old idempotency keys), at most p_limit rows of each table, in
-- the caller's transaction.  One row per table: how many went.  Unlike a
-- range (a partition dropped whole), these are deleted: a few a day next to
-- the MT history, and autovacuum takes the dead rows as they come; bounded
-- calls keep each transaction short.
CREATE OR REPLACE FUNCTION history_trim(p_keep interval, p_outbox_keep interval, p_limit integer)
RETURNS TABLE (tbl text, deleted bigint)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM history_trim_tables() LOOP
        tbl := t.tbl;
        EXECUTE format('WITH d AS (DELETE FROM %1$I WHERE %2$I = ANY (ARRAY(SELECT history_trimmable(%1$L, $1, $2, $3)))'
                       ' RETURNING 1) SELECT count(*) FROM d', t.tbl, t.id_column)
            INTO deleted USING p_keep, p_outbox_keep, p_limit;
        RETURN NEXT;
    END LOOP;
END $$;
