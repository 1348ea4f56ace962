-- 009_events_triggers_guard: the three statement-level triggers on events
-- (webhook outbox, Kannel dlr-url, SMPP server receipts) first look whether
-- any message of the statement's events could want a row: the messages of
-- one statement have ids between the smallest and largest message_id of its
-- events, and a small partial index per feature answers "any such message in
-- that range" without reading the transition table again.  When none does
-- (the common case for a carrier-bound bulk flow), the trigger returns at
-- once instead of joining every event to messages, accounts and recipients
-- (measured ~15 us per recipient in the SMPP engine's statements).  The
-- rows written when a message does want them are exactly those of 004, 007
-- and 008: the bodies below are theirs, after the guard.

CREATE INDEX messages_callback ON messages (id) WHERE callback_url IS NOT NULL;
--
-- Its functions are in sql/functions/ now, where each is kept up to date
-- (src/migrate.c applies them after the migrations).
