-- The last recipient id issued (recipients_id_seq's last value, or one
-- below the next when none has been taken since setval(.., false)): the
-- ranges at or below it are being filled or full, those above it are made
-- ahead.  history_ensure(), history_range_add() and history_retention()
-- size and judge the ranges by it.
CREATE OR REPLACE FUNCTION history_issued()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END FROM recipients_id_seq s
$$;
