-- Why, in words, for the event row.
CREATE OR REPLACE FUNCTION recipient_decide_why(state text, app boolean, opted boolean, channels text[], purpose text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE state
        WHEN 'PUSH_SENT' THEN 'app installed: push first'
        WHEN 'DROPPED' THEN CASE WHEN opted AND purpose = 'AD' THEN 'opted out: ads are never sent'
                                 WHEN opted THEN 'opt-out policy: drop'
                                 ELSE 'no app and SMS not among the channels' END
        WHEN 'SMS_FAILED' THEN 'no route for this number'
        ELSE CASE WHEN opted THEN 'opt-out policy: sms'
                  WHEN app AND channels[1] = 'push' THEN 'AUTH goes by SMS first for this account'
                  WHEN app THEN 'SMS first by the message''s channels'
                  ELSE 'no app for this number' END END
$$;
