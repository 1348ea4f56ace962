-- 001_init: schema v1.  Accounts, messages (one per request), recipients
-- (one row per recipient: its current state), events (append-only: every
-- state change and every raw delivery report), parked receipts.
-- Every table carries account_id so it stays partition/Citus friendly.

CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    api_key_hash  bytea NOT NULL UNIQUE,          -- SHA-256 of the key; the key itself is never stored
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled      boolean NOT NULL DEFAULT false
);

CREATE TABLE messages (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id),
    sender      text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_account_created ON messages (account_id, created_at);

CREATE TABLE recipients (
    id              bigserial PRIMARY KEY,
    message_id      bigint NOT NULL REFERENCES messages(id),
    account_id      bigint NOT NULL,
    msisdn          text NOT NULL,
    state           text NOT NULL CHECK (state IN (
                        'ACCEPTED', 'PUSH_SENT', 'PUSH_DELIVERED', 'OPTED_OUT', 'DROPPED',
                        'SMS_QUEUED', 'SMS_SUBMITTED', 'SMS_ACCEPTED',
                        'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED', 'SMS_UNKNOWN')),
    channel         text,                          -- 'push' | 'sms' once chosen
    route           text,                          -- SMPP route (carrier) name
    smsc_id         text,                          -- SMSC message id, normalised per route
    error_code      integer,                       -- submit_sm_resp status or receipt err
    attempts        integer NOT NULL DEFAULT 0,    -- submit_sm sent
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL DEFAULT now() + interval '1 day',
    lease_owner     text,                          -- node holding it while SMS_SUBMITTED
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    submitted_at    timestamptz,
    final_at        timestamptz
);
CREATE INDEX recipients_message ON recipients (message_id);
-- receipt lookup: (route, smsc id)
CREATE INDEX recipients_route_smsc_id ON recipients (route, smsc_id) WHERE smsc_id IS NOT NULL;
-- the SMS queue: small partial indexes, rows leave them as they move on
CREATE INDEX recipients_sms_queue ON recipients (next_attempt_at, id) WHERE state = 'SMS_QUEUED';
CREATE INDEX recipients_sms_inflight ON recipients (lease_until) WHERE state = 'SMS_SUBMITTED';
CREATE INDEX recipients_sms_waiting ON recipients (expires_at) WHERE state = 'SMS_ACCEPTED';

CREATE TABLE events (
    id            bigserial PRIMARY KEY,
    recipient_id  bigint,                          -- NULL for an orphan receipt
    message_id    bigint,
    account_id    bigint,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind          text NOT NULL DEFAULT 'state',   -- 'state' | 'receipt' | 'submit' | 'error'
    state         text,                            -- state entered (kind='state'), or receipt outcome
    route         text,
    smsc_id       text,
    error_code    integer,
    detail        text                             -- raw receipt text, error text, ...
);
CREATE INDEX events_recipient ON events (recipient_id, id);
CREATE INDEX events_message ON events (message_id);

-- Receipts that arrived before their submit_sm_resp was stored: parked here,
-- matched as soon as the id is known, never dropped.
CREATE TABLE dlr_parked (
    id           bigserial PRIMARY KEY,
    route        text NOT NULL,
    smsc_id      text NOT NULL,
    state        text NOT NULL,                    -- recipient state the receipt leads to
    error_code   integer,
    detail       text,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dlr_parked_lookup ON dlr_parked (route, smsc_id);
