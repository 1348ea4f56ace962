-- 005_intake: one decision for every recipient, at intake and when a
-- scheduled or held recipient is released: push first, SMS, or dropped.
-- Per-recipient text for campaign templates.

ALTER TABLE recipients ADD COLUMN text text;   -- this recipient's rendered text; NULL: the message's body

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
