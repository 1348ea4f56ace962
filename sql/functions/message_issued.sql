-- The last message id issued (messages_id_seq's last value, or one below
-- the next when none has been taken since setval(.., false)): the message
-- ranges (sql/036) at or below it are being filled or full, those above it
-- are made ahead.  message_ensure(), message_range_add() and
-- message_retention() size and judge the ranges by it.
CREATE OR REPLACE FUNCTION message_issued()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END FROM messages_id_seq s
$$;
