-- 017_code_text_scrub: a registration code is not kept in the database once
-- its SMS is done. The code's SMS text lives in its recipient's text while
-- the SMS engine may still need it (messages.body holds it masked); a
-- recipient listed here has that text removed once it is final (or after
-- a day), by devices.c.
CREATE TABLE code_sms_pending (
    recipient_id  bigint PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now()
);
