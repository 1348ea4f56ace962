-- 003_push: the push channel.  Devices (an app install bound to an MSISDN,
-- verified by a one-time code sent by SMS), per-sender opt-outs from the
-- app (current state + append-only log), the push deadline of each
-- recipient, account roles and opt-out policy.

ALTER TABLE accounts ADD COLUMN role text NOT NULL DEFAULT 'client'
    CHECK (role IN ('client', 'operator', 'system'));
-- What happens to a recipient who blocked the sender: 'sms' (the original
-- method: fall back to SMS) or 'drop' (what ad rules require).
ALTER TABLE accounts ADD COLUMN opt_out_policy text NOT NULL DEFAULT 'sms'
    CHECK (opt_out_policy IN ('sms', 'drop'));

-- The account that sends pushgate's own SMS (one-time codes, invitations).
-- Its key hash is random and it is disabled: nobody can authenticate as it.
INSERT INTO accounts (name, api_key_hash, disabled, role)
VALUES ('_system', decode(md5(random()::text || clock_timestamp()::text) || md5(random()::text), 'hex'), true, 'system');

ALTER TABLE recipients ADD COLUMN push_deadline timestamptz;   -- PUSH_SENT until then, SMS after
ALTER TABLE recipients ADD COLUMN device_id bigint;            -- the device whose ack delivered it

CREATE TABLE devices (
    id               bigserial PRIMARY KEY,
    msisdn           text NOT NULL,
    platform         text NOT NULL DEFAULT '',
    token_hash       bytea UNIQUE,                 -- SHA-256 of the device token, set when verified
    code_hash        bytea,                        -- SHA-256 of msisdn:code while unverified
    code_expires_at  timestamptz,
    code_attempts    integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    verified_at      timestamptz,
    revoked_at       timestamptz,
    last_seen_at     timestamptz
);
CREATE INDEX devices_msisdn_active ON devices (msisdn) WHERE verified_at IS NOT NULL AND revoked_at IS NULL;
CREATE INDEX devices_msisdn_created ON devices (msisdn, created_at);

CREATE TABLE opt_outs (
    msisdn      text NOT NULL,
    sender      text NOT NULL,
    source      text NOT NULL,                     -- 'app', 'sms' (keyword), 'operator'
    device_id   bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (msisdn, sender)
);

CREATE TABLE opt_out_log (
    id          bigserial PRIMARY KEY,
    msisdn      text NOT NULL,
    sender      text NOT NULL,
    action      text NOT NULL CHECK (action IN ('reject', 'allow')),
    source      text NOT NULL,
    device_id   bigint,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX opt_out_log_msisdn ON opt_out_log (msisdn, id);

-- the push queue: what a device gets when it connects, and the deadline sweep
CREATE INDEX recipients_push_pending ON recipients (msisdn, id) WHERE state = 'PUSH_SENT';
CREATE INDEX recipients_push_deadline ON recipients (push_deadline) WHERE state = 'PUSH_SENT';

-- Install invitations ([0036]): when pushgate last invited a number with
-- no app to install it, so invitations stay rate-limited per number.
CREATE TABLE invitations (
    msisdn        text PRIMARY KEY,
    last_sent_at  timestamptz NOT NULL,
    sent          integer NOT NULL DEFAULT 1
);
