-- The tables whose rows no history range holds, which retention deletes by
-- age instead (history_trimmable()), in the order history_trim() deletes
-- them: each with the column that names a row (what history_trimmable()
-- returns) and its limit, 'history' ([retention] history_days) or 'outbox'
-- (outbox_days).  history_trim() and pushgatectl retention read this list;
-- nothing else holds it.
CREATE OR REPLACE FUNCTION history_trim_tables()
RETURNS TABLE (tbl text, id_column text, class text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('mo_messages', 'id', 'history'),
           ('message_keys', 'message_id', 'history'),
           ('smpp_outbox_other', 'id', 'outbox'),
           ('webhook_outbox_other', 'id', 'outbox')
$$;
