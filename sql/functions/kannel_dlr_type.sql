-- The Kannel DLR type of one event for a mask, or NULL (no report):
--  1 delivered: PUSH_DELIVERED (the app stored it), SMS_DELIVERED
--  2 failed: SMS_FAILED after an SMSC accepted it, SMS_EXPIRED, DROPPED, CANCELED
--  4 buffered: PUSH_SENT (waiting for the app), an intermediate SMSC receipt
--  8 SMSC accepted: SMS_ACCEPTED (submit_sm_resp ok)
-- 16 SMSC rejected: SMS_FAILED before any SMSC accepted it (refused submit,
--    no route); like Kannel, sent when the mask has 16 or 2.
-- SMS_UNKNOWN (no receipt within validity) reports nothing, like a Kannel SMSC
-- that never reports.  One expression (no subquery), so PostgreSQL inlines it
-- into the trigger's statement and plans it once, not once per event row.
CREATE OR REPLACE FUNCTION kannel_dlr_type(kind text, state text, accepted boolean, mask integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN kind = 'receipt' AND state IS NULL THEN CASE WHEN mask & 4 <> 0 THEN 4 END
        WHEN kind <> 'state' THEN NULL
        WHEN state IN ('PUSH_DELIVERED', 'SMS_DELIVERED') THEN CASE WHEN mask & 1 <> 0 THEN 1 END
        WHEN state = 'PUSH_SENT' THEN CASE WHEN mask & 4 <> 0 THEN 4 END
        WHEN state = 'SMS_ACCEPTED' THEN CASE WHEN mask & 8 <> 0 THEN 8 END
        WHEN state = 'SMS_FAILED' AND NOT accepted THEN CASE WHEN mask & 18 <> 0 THEN 16 END
        WHEN state IN ('SMS_FAILED', 'SMS_EXPIRED', 'DROPPED', 'CANCELED') THEN CASE WHEN mask & 2 <> 0 THEN 2 END
    END
$$;
