-- The channel a recipient takes now.  app: the number has a live device;
-- opted: it blocked this sender; route: the SMS route serving it (NULL:
-- none); channels: the message's order ('{push,sms}', '{sms}', '{push}',
-- '{sms,push}' = SMS only: push never follows an SMS); policy: what an
-- opt-out means ('sms' or 'drop'; ads always drop); auth_sms_first: the
-- account sends AUTH codes by SMS first.
CREATE OR REPLACE FUNCTION recipient_decide(app boolean, opted boolean, route text, channels text[], purpose text,
                                 policy text, auth_sms_first boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN opted AND (purpose = 'AD' OR policy = 'drop') THEN 'DROPPED'
        WHEN app AND NOT opted AND channels[1] = 'push'
             AND NOT (purpose = 'AUTH' AND auth_sms_first AND 'sms' = ANY(channels)) THEN 'PUSH_SENT'
        WHEN NOT ('sms' = ANY(channels)) THEN 'DROPPED'
        WHEN route IS NULL THEN 'SMS_FAILED'
        ELSE 'SMS_QUEUED' END
$$;
