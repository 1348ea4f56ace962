-- The partitions of the history range starting at p_lo, in the order they
-- are dropped (the outbox and events before the recipients they name): each
-- history table's <name>_<suffix> (suffix: lo, or legacy for the range
-- sql/029 made of a populated database's rows), those that exist.
-- history_retention() judges them, history_retention_drop() and pushgatectl
-- retention run drop them.  PL/pgSQL: an older schema (pushgatectl migrate
-- --to) has no history_tables to check a body against.
CREATE OR REPLACE FUNCTION history_parts(p_lo bigint)
RETURNS TABLE (tbl text, part text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT h.name, p.part
      FROM history_tables h
     CROSS JOIN LATERAL (
           SELECT h.name || '_' || CASE WHEN p_lo = -9223372036854775808 THEN 'legacy' ELSE p_lo::text END AS part) p
     WHERE to_regclass('public.' || quote_ident(p.part)) IS NOT NULL
     ORDER BY h.ord DESC;
END $$;
