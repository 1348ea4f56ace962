-- The ids of the rows retention deletes from p_table, one of the tables
-- whose rows no history range holds (history_trim_tables()), oldest
-- first, at most p_limit (NULL: all):
--   * mo_messages (a carrier's MO): received before now() - p_keep
--     ([retention] history_days, as the ranges);
--   * message_keys (idempotency keys, sql/035; a row named by its
--     message_id): used before now() - p_keep: a request repeated later is
--     a new message;
--   * smpp_outbox_other (MO queued for an ESME): created before
--     now() - p_outbox_keep ([retention] outbox_days) and delivered;
--   * webhook_outbox_other (MO posted to a webhook): the same, delivered or
--     given up.
-- A row still to be delivered stays, however old.  Each table's index on
-- its time (sql/034) is read from the oldest row: only the rows returned,
-- and the undelivered old ones among them.  history_trim() deletes them;
-- pushgatectl retention run --export deletes them in a COPY that writes
-- them out.
CREATE OR REPLACE FUNCTION history_trimmable(p_table text, p_keep interval, p_outbox_keep interval,
                                             p_limit integer DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    IF p_table = 'mo_messages' THEN
        RETURN QUERY SELECT id FROM mo_messages WHERE received_at < now() - p_keep
                     ORDER BY received_at LIMIT p_limit;
    ELSIF p_table = 'message_keys' THEN
        RETURN QUERY SELECT message_id FROM message_keys WHERE created_at < now() - p_keep
                     ORDER BY created_at LIMIT p_limit;
    ELSIF p_table = 'smpp_outbox_other' THEN
        RETURN QUERY SELECT id FROM smpp_outbox_other WHERE created_at < now() - p_outbox_keep
                       AND delivered_at IS NOT NULL ORDER BY created_at LIMIT p_limit;
    ELSIF p_table = 'webhook_outbox_other' THEN
        RETURN QUERY SELECT id FROM webhook_outbox_other WHERE created_at < now() - p_outbox_keep
                       AND (delivered_at IS NOT NULL OR given_up_at IS NOT NULL) ORDER BY created_at LIMIT p_limit;
    ELSE
        RAISE EXCEPTION 'history_trimmable: % is not a table retention trims', p_table;
    END IF;
END $$;
