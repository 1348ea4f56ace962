-- 014_code_sms_cap: registration codes are SMS that anyone may ask for
-- (POST /v1/devices needs no key), so their number per UTC day is capped for
-- every node together: the registration statement takes one from this
-- counter in the same transaction that stores the code's SMS, and stores
-- nothing when the day's cap is reached.
CREATE TABLE code_sms_daily (
    day   date PRIMARY KEY,            -- UTC
    sent  integer NOT NULL
);
