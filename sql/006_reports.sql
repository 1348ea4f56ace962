-- 006_reports: what operators and senders read ([0035], [0037]: success
-- rates per channel; claims 3 and 6: push and carrier results reported).
--
-- Definitions.  A recipient counts once, by its current state:
--   push_delivered  PUSH_DELIVERED (the app stored it and sent its receipt)
--   sms_delivered   SMS_DELIVERED (every part's carrier receipt said DELIVRD)
--   failed          SMS_FAILED + SMS_EXPIRED
--   unknown         SMS_UNKNOWN (accepted by the carrier, no receipt within validity)
--   dropped         DROPPED (never sent: opt-out policy 'drop', or no usable channel)
--   canceled        CANCELED
--   pending         any state that is not final (ACCEPTED, SCHEDULED, HELD,
--                   PUSH_SENT, OPTED_OUT, SMS_QUEUED, SMS_SUBMITTED, SMS_ACCEPTED)
-- These seven columns add up to recipients.  One more column is counted by
-- history rather than by state, so it overlaps them:
--   opted_out       DROPPED + recipients whose events hold OPTED_OUT (they
--                   blocked the sender in the app; with policy 'sms' they
--                   also count in their SMS outcome)
-- Derived:
--   push_share      push_delivered / (push_delivered + sms_delivered), 0..1, NULL when both are 0
--   sms_saved       push_delivered: each one is an SMS not paid for
--   latency         final_at - created_at of delivered recipients, per channel,
--                   p50 and p95 (percentile_cont) in milliseconds
-- A recipient belongs to the time its message was accepted
-- (messages.created_at); days are UTC days.
--
-- Speed: a time window starts from messages.created_at (index below, or
-- messages_account_created for one account) and reaches recipients
-- through recipients_message; one batch through
-- recipients_batch_state; the opt-out probe per recipient is one lookup in
-- a partial index that holds only OPTED_OUT events.  Filters on a view's
-- grouping columns (batch_id, account_id, sender, route) are pushed below
-- the aggregation by the planner, so `WHERE batch_id = N` reads one batch.

CREATE INDEX messages_created ON messages (created_at);
CREATE INDEX events_opted_out ON events (recipient_id) WHERE state = 'OPTED_OUT';

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
