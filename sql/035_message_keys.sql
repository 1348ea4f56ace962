-- 035_message_keys: the idempotency keys leave messages for a table of
-- their own.  A key is unique per account over every message; messages is
-- to be partitioned by id in ranges (sql/036), and a unique index of a
-- partitioned table must hold its partition key, so the uniqueness lives
-- here: the intake claims a message's key (INSERT ... ON CONFLICT DO
-- NOTHING) in the statement that stores it, and stores the message only
-- when the claim is its own.  messages.idempotency_key stays (the message
-- as it was asked for).  Retention deletes keys older than [retention]
-- history_days (history_trim(), through message_keys_created), and keeps a
-- range of messages while one of its keys is kept (message_keys_message):
-- a replay always finds its message.
-- The keys already used are copied in this transaction (it reads messages,
-- it blocks no writer of it).
CREATE TABLE message_keys (
    account_id bigint NOT NULL,
    key        text NOT NULL,
    message_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
COMMENT ON TABLE message_keys IS 'idempotency keys: the message each (account, key) stored; kept [retention] history_days';
CREATE INDEX message_keys_created ON message_keys (created_at);
CREATE INDEX message_keys_message ON message_keys (message_id);
INSERT INTO message_keys (account_id, key, message_id, created_at)
SELECT account_id, idempotency_key, id, created_at FROM messages WHERE idempotency_key IS NOT NULL
ON CONFLICT DO NOTHING;
