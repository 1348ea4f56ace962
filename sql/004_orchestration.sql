-- 004_orchestration: what an enterprise buys.  Per-message delivery
-- options, campaigns (batches), idempotent requests, account rules for
-- ads, and the durable webhook outbox every recipient state change feeds.

-- Per-message options (POST /v1/messages, batches, Kannel's sendsms).
ALTER TABLE messages ADD COLUMN channels text[] NOT NULL DEFAULT '{push,sms}';  -- order tried
ALTER TABLE messages ADD COLUMN push_timeout double precision;                  -- NULL: [push] push_timeout
ALTER TABLE messages ADD COLUMN sms_text text;                                  -- NULL: body
ALTER TABLE messages ADD COLUMN purpose text NOT NULL DEFAULT 'NORMAL'
    CHECK (purpose IN ('NORMAL', 'AUTH', 'AD'));
ALTER TABLE messages ADD COLUMN send_at timestamptz;                            -- NULL: now
ALTER TABLE messages ADD COLUMN validity double precision;                      -- seconds; NULL: [smpp] validity
ALTER TABLE messages ADD COLUMN opt_out_policy text CHECK (opt_out_policy IN ('sms', 'drop'));  -- NULL: account's
ALTER TABLE messages ADD COLUMN callback_url text;                              -- webhook for this message
ALTER TABLE messages ADD COLUMN batch_id bigint;
ALTER TABLE messages ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX messages_idempotency ON messages (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_batch ON messages (batch_id) WHERE batch_id IS NOT NULL;

-- A recipient waiting for its time (send_at, or an ad held outside the allowed hours).
ALTER TABLE recipients DROP CONSTRAINT recipients_state_check;
ALTER TABLE recipients ADD CONSTRAINT recipients_state_check CHECK (state IN (
    'ACCEPTED', 'SCHEDULED', 'HELD', 'PUSH_SENT', 'PUSH_DELIVERED', 'OPTED_OUT', 'DROPPED', 'CANCELED',
    'SMS_QUEUED', 'SMS_SUBMITTED', 'SMS_ACCEPTED',
    'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED', 'SMS_UNKNOWN'));
ALTER TABLE recipients ADD COLUMN release_at timestamptz;      -- SCHEDULED / HELD until then
ALTER TABLE recipients ADD COLUMN batch_id bigint;
CREATE INDEX recipients_release ON recipients (release_at) WHERE state IN ('SCHEDULED', 'HELD');
CREATE INDEX recipients_batch_state ON recipients (batch_id, state) WHERE batch_id IS NOT NULL;

-- Account rules.
ALTER TABLE accounts ADD COLUMN webhook_url text;              -- every recipient state change, POSTed
ALTER TABLE accounts ADD COLUMN webhook_secret text;           -- HMAC-SHA256 key of the signature header
ALTER TABLE accounts ADD COLUMN ad_night_consent boolean NOT NULL DEFAULT false;  -- may send ads at night
ALTER TABLE accounts ADD COLUMN auth_sms_first boolean NOT NULL DEFAULT false;    -- AUTH goes SMS first
ALTER TABLE accounts ADD COLUMN opt_out_number text;           -- shown in the ad opt-out line

-- Campaigns.
CREATE TABLE batches (
    id            bigserial PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts(id),
    name          text,
    state         text NOT NULL DEFAULT 'LOADING' CHECK (state IN ('LOADING', 'RUNNING', 'DONE', 'CANCELED', 'FAILED')),
    total         integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    loaded_at     timestamptz,
    canceled_at   timestamptz,
    error         text
);
CREATE INDEX batches_account ON batches (account_id, id);

-- The webhook outbox: one row per recipient state change (or raw receipt)
-- destined for a URL, written by the trigger below in the same transaction
-- as the change itself, delivered in order per recipient, retried with
-- backoff for 24 hours.
CREATE TABLE webhook_outbox (
    id             bigserial PRIMARY KEY,
    account_id     bigint NOT NULL,
    url            text NOT NULL,
    event_id       bigint NOT NULL,
    recipient_id   bigint,
    message_id     bigint,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner    text,
    lease_until    timestamptz,
    delivered_at   timestamptz,
    given_up_at    timestamptz,
    last_error     text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id) WHERE delivered_at IS NULL AND given_up_at IS NULL;
CREATE INDEX webhook_outbox_recipient ON webhook_outbox (recipient_id, id) WHERE delivered_at IS NULL AND given_up_at IS NULL;

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
