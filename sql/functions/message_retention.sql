-- What retention may drop of the message ranges (sql/036): one row per
-- range, oldest first, with its newest message's acceptance time and what
-- retention does with it for a limit of p_keep.  A range goes only whole,
-- and only when
--   * ids past its end have been issued (it is not the range being filled
--     or one made ahead),
--   * its newest message was accepted before now() - p_keep,
--   * no recipient kept names one of its messages: the least message id
--     any kept recipient names (one probe of each history range's
--     recipients_message_id) is past its end, so every recipient of its
--     messages went with its history range (which keeps those in flight),
--   * none of its messages' idempotency keys is kept (message_keys, deleted
--     after history_days): a replay always finds its message.
-- Reads only, by key: O(1) per range.  suffix: what its partition's name
-- ends in (messages_<lo>, or messages_legacy for the range sql/036 made of
-- a populated database's messages).  p_lo: that range alone
-- (message_range_drop() judges one under its locks).  A range another node
-- drops while this reads is left out.  pushgatectl retention status prints
-- it; retention run and pushgated drop what it says through
-- message_range_drop().
CREATE OR REPLACE FUNCTION message_retention(p_keep interval, p_lo bigint DEFAULT NULL)
RETURNS TABLE (lo bigint, hi bigint, suffix text, newest timestamptz, action text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    g record;
    issued bigint := message_issued();
    named bigint := (SELECT min(r.message_id) FROM recipients r);
BEGIN
    FOR g IN SELECT m.lo, m.hi FROM message_ranges m WHERE p_lo IS NULL OR m.lo = p_lo ORDER BY m.lo LOOP
        lo := g.lo;
        hi := g.hi;
        suffix := CASE WHEN g.lo = -9223372036854775808 THEN 'legacy' ELSE g.lo::text END;
        BEGIN
            EXECUTE format('SELECT created_at FROM %I ORDER BY id DESC LIMIT 1', 'messages_' || suffix) INTO newest;
        EXCEPTION WHEN undefined_table THEN
            CONTINUE;   -- dropped meanwhile
        END;
        action := CASE WHEN g.hi > issued + 1 THEN 'kept: ids still to be issued in it'
                       WHEN newest >= now() - p_keep THEN 'kept: newer than the limit'
                       WHEN named < g.hi THEN 'kept: a recipient of its messages is kept'
                       WHEN EXISTS (SELECT 1 FROM message_keys k WHERE k.message_id >= g.lo AND k.message_id < g.hi)
                           THEN 'kept: an idempotency key of its messages is kept'
                       ELSE 'drop' END;
        RETURN NEXT;
    END LOOP;
END $$;
