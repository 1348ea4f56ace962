-- 005_intake: one decision for every recipient, at intake and when a
-- scheduled or held recipient is released: push first, SMS, or dropped.
-- Per-recipient text for campaign templates.

ALTER TABLE recipients ADD COLUMN text text;   -- this recipient's rendered text; NULL: the message's body

-- The channel a recipient takes now.  app: the number has a live device;
-- opted: it blocked this sender; route: the SMS route serving it (NULL:
-- none); channels: the message's order ('{push,sms}', '{sms}', '{push}',
-- '{sms,push}' = SMS only: push never follows an SMS); policy: what an
-- opt-out means ('sms' or 'drop'; ads always drop); auth_sms_first: the
-- account sends AUTH codes by SMS first.
CREATE FUNCTION recipient_decide(app boolean, opted boolean, route text, channels text[], purpose text,
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

-- Why, in words, for the event row.
CREATE FUNCTION recipient_decide_why(state text, app boolean, opted boolean, channels text[], purpose text)
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

-- Ads outside the allowed local hours are held until the window opens,
-- unless the account recorded the recipients' consent to night sending.
-- NULL: send now.
CREATE FUNCTION ad_hold_until(purpose text, consent boolean, at timestamptz, start_hour integer,
                              end_hour integer, tz text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN purpose <> 'AD' OR consent THEN NULL
        WHEN extract(hour FROM at AT TIME ZONE tz) >= start_hour
             AND extract(hour FROM at AT TIME ZONE tz) < end_hour THEN NULL
        ELSE (date_trunc('day', at AT TIME ZONE tz) + make_interval(hours => start_hour)
              + CASE WHEN extract(hour FROM at AT TIME ZONE tz) >= end_hour THEN interval '1 day'
                     ELSE interval '0' END) AT TIME ZONE tz END
$$;
