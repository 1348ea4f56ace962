-- Ads outside the allowed local hours are held until the window opens,
-- unless the account recorded the recipients' consent to night sending.
-- NULL: send now.
CREATE OR REPLACE FUNCTION ad_hold_until(purpose text, consent boolean, at timestamptz, start_hour integer,
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
