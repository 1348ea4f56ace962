-- The partitions that go with the history range starting at p_lo, in the
-- order they are dropped (the outbox and events before the recipients they
-- name): each history table's <name>_<suffix> (suffix: lo, or legacy for
-- the range sql/029 made of a populated database's rows); for a table whose
-- legacy partition reaches past the range (history_tables.legacy_hi,
-- sql/030), that legacy partition instead, once this is the last range
-- below its end, else nothing.  Only partitions that exist.
-- history_retention() judges them, history_retention_drop() and
-- pushgatectl retention run drop them.  PL/pgSQL: an older schema
-- (pushgatectl migrate --to) has no history_tables to check a body against.
CREATE OR REPLACE FUNCTION history_parts(p_lo bigint)
RETURNS TABLE (tbl text, part text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT h.name, p.part
      FROM history_tables h
     CROSS JOIN LATERAL (
           SELECT CASE WHEN h.legacy_hi IS NULL OR p_lo >= h.legacy_hi
                       THEN h.name || '_' || CASE WHEN p_lo = -9223372036854775808 THEN 'legacy' ELSE p_lo::text END
                       WHEN NOT EXISTS (SELECT 1 FROM history_ranges r WHERE r.lo < h.legacy_hi AND r.lo <> p_lo)
                       THEN h.name || '_legacy' END AS part) p
     WHERE to_regclass('public.' || quote_ident(p.part)) IS NOT NULL
     ORDER BY h.ord DESC;
END $$;
