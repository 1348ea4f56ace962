-- What retention may drop of the history (sql/029): one row per range,
-- oldest first, with its newest recipient's acceptance time, whether a
-- recipient in it is still in flight, and what retention does with it for
-- a limit of p_keep.  A range goes only whole, and only when
--   * ids past its end have been issued (it is not the range being filled
--     or one made ahead),
--   * its newest recipient was accepted before now() - p_keep (ids are
--     issued in time order: the highest id is the newest), and
--   * none of its recipients is in flight (scheduled, held, push sent,
--     queued, submitted or waiting for a receipt: each state its partial
--     index, so the check reads index pages, not the range), and
--   * none of its webhook deliveries is pending (webhook_outbox_due) and
--     none of its SMPP receipts is undelivered (smpp_outbox_due).
-- Reads only, by key and partial index: O(1) per range.  pushgatectl
-- retention status prints it; retention run exports and drops what it says
-- (history_range_drop()); pushgated drops them one at a time with
-- history_retention_drop().
-- suffix: what its partitions' names end in (<table>_<suffix>: the range's
-- lo, or legacy for the range sql/029 made of a populated database's rows).
-- p_lo: that range alone (history_range_drop() judges one range under its
-- locks, not them all).  A range another node drops while this reads is
-- left out (no lock is taken here: status must never stop the traffic).
-- p_class: 'history' (the default) judges the range as a whole ('drop');
-- 'outbox' judges its outbox partitions alone (sql/032: emptied after
-- [retention] outbox_days, 'clear', or 'cleared' once done), under the same
-- conditions.  A function's arguments and result columns cannot change in
-- place: the older forms are dropped first, once.
DO $$
BEGIN
    IF to_regprocedure('history_retention(interval)') IS NOT NULL THEN
        DROP FUNCTION history_retention(interval);
    END IF;
    IF to_regprocedure('history_retention(interval, bigint)') IS NOT NULL THEN
        DROP FUNCTION history_retention(interval, bigint);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION history_retention(p_keep interval, p_lo bigint DEFAULT NULL, p_class text DEFAULT 'history')
RETURNS TABLE (lo bigint, hi bigint, suffix text, newest timestamptz, in_flight boolean, action text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    g record;
    w record;
    part text;
    pending text;
    found boolean;
    issued bigint := history_issued();
BEGIN
    IF p_class NOT IN ('history', 'outbox') THEN
        RAISE EXCEPTION 'no retention class %', p_class;
    END IF;
    FOR g IN SELECT h.lo, h.hi, h.outboxes_cleared_at FROM history_ranges h WHERE p_lo IS NULL OR h.lo = p_lo
              ORDER BY h.lo LOOP
        lo := g.lo;
        hi := g.hi;
        suffix := CASE WHEN g.lo = -9223372036854775808 THEN 'legacy' ELSE g.lo::text END;
        part := 'recipients_' || suffix;
        BEGIN
            EXECUTE format('SELECT created_at FROM %I ORDER BY id DESC LIMIT 1', part) INTO newest;
        EXCEPTION WHEN undefined_table THEN
            CONTINUE;   -- dropped meanwhile (another node's retention, after this loop's rows were read)
        END;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I WHERE state IN (''SCHEDULED'', ''HELD''))'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''PUSH_SENT'')'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''SMS_QUEUED'')'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''SMS_SUBMITTED'')'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''SMS_ACCEPTED'')', part) INTO in_flight;
        -- its webhook deliveries and SMPP receipts still to be made (each outbox's partial index)
        pending := NULL;
        FOR w IN SELECT p.tbl, p.part FROM history_parts(g.lo) p WHERE p.tbl IN ('webhook_outbox', 'smpp_outbox') LOOP
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE delivered_at IS NULL%s)', w.part,
                           CASE WHEN w.tbl = 'webhook_outbox' THEN ' AND given_up_at IS NULL' ELSE '' END) INTO found;
            IF found THEN
                pending := CASE w.tbl WHEN 'webhook_outbox' THEN 'a webhook delivery pending'
                                      ELSE 'an SMPP receipt undelivered' END;
            END IF;
        END LOOP;
        action := CASE WHEN g.hi > issued + 1 THEN 'kept: ids still to be issued in it'
                       WHEN newest >= now() - p_keep THEN 'kept: newer than the limit'
                       WHEN in_flight THEN 'kept: a recipient in flight'
                       WHEN pending IS NOT NULL THEN 'kept: ' || pending
                       WHEN p_class = 'history' THEN 'drop'
                       WHEN g.outboxes_cleared_at IS NOT NULL THEN 'cleared'
                       ELSE 'clear' END;
        RETURN NEXT;
    END LOOP;
END $$;
