-- Keeps one whole range of message ids made ahead of the ids issued, as
-- history_ensure() does for recipient ids (pushgated calls both every 10
-- seconds; range_ensure() does it).  Returns the number of ranges made and
-- the ids left above the last one issued
-- (pushgate_history_message_ids_ahead).
CREATE OR REPLACE FUNCTION message_ensure(p_min bigint DEFAULT 1000000, p_span interval DEFAULT '1 day')
RETURNS TABLE (made int, ahead bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM range_ensure('messages', p_min, p_span)
$$;
