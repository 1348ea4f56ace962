-- The recipient states after which nothing more happens (final), and those a
-- cancel may stop (not yet handed to a carrier nor acked by a device).  The
-- same lists as RECIPIENT_FINAL_SQL and RECIPIENT_CANCELABLE_SQL in
-- src/recipient.h: t_schema fails when they differ.  Plain SQL expressions,
-- so PostgreSQL inlines them into the statements that use them.
CREATE OR REPLACE FUNCTION recipient_final(state text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT state IN ('PUSH_DELIVERED', 'DROPPED', 'CANCELED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED',
                     'SMS_UNKNOWN')
$$;

CREATE OR REPLACE FUNCTION recipient_cancelable(state text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT state IN ('ACCEPTED', 'SCHEDULED', 'HELD', 'SMS_QUEUED', 'PUSH_SENT', 'OPTED_OUT')
$$;
