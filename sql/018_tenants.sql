-- 018_tenants: what an account may send, decided in the intake statement
-- itself, so every pushgated node sharing the database enforces the same
-- limits on the same counters (a refused message stores nothing):
--   * quotas: recipients per UTC day and per UTC month (0: none);
--   * a prepaid balance: recipients it may still send (NULL: postpaid),
--     taken in the intake transaction;
--   * a rate limit across the nodes (accounts.rate_limit, recipients a
--     minute: each node also paces it alone, sql/016); the cluster count is
--     a sliding minute (the previous minute's count weighted by what is
--     left of it, plus this minute's);
--   * sender IDs: an account with senders_listed sends only from the
--     senders the operator approved for it; any other account may use any
--     sender that is not approved for somebody else (an approved sender is
--     owned: "BANK" approved for a bank is nobody else's, nor pushgate's
--     own code sender, which pushgated registers for the system account).
--   * key rotation: a new key replaces api_key_hash, the old one keeps
--     working until prev_key_until (the grace the operator gave);
--   * the hosts a message's callback_url or Kannel dlr-url may name
--     (url_hosts; NULL: any the outbound policy allows): "example.com" is
--     that host, ".example.com" any host under it.
-- requests a minute an account may make of the HTTP API (0: no limit) is
-- paced by each node alone, before any work (request_limit).
-- Every intake counts its recipients in account_usage (one row per account
-- and UTC day), whatever the limits, for GET /v1/account and pushgatectl.
-- A replay of an idempotency key is not counted again.

ALTER TABLE accounts
    ADD COLUMN daily_quota    bigint NOT NULL DEFAULT 0 CHECK (daily_quota >= 0),
    ADD COLUMN monthly_quota  bigint NOT NULL DEFAULT 0 CHECK (monthly_quota >= 0),
    ADD COLUMN balance        bigint CHECK (balance >= 0),
    ADD COLUMN senders_listed boolean NOT NULL DEFAULT false,
    ADD COLUMN prev_key_hash  bytea,
    ADD COLUMN prev_key_until timestamptz,
    ADD COLUMN url_hosts      text[],
    ADD COLUMN request_limit  integer NOT NULL DEFAULT 0 CHECK (request_limit >= 0);
CREATE UNIQUE INDEX accounts_prev_key ON accounts (prev_key_hash) WHERE prev_key_hash IS NOT NULL;
-- accounts that exist keep sending as before; new ones send from approved senders only
ALTER TABLE accounts ALTER COLUMN senders_listed SET DEFAULT true;

CREATE TABLE account_senders (
    account_id   bigint NOT NULL REFERENCES accounts(id),
    sender       text NOT NULL,
    approved_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, sender)
);
CREATE INDEX account_senders_sender ON account_senders (sender);

CREATE TABLE account_usage (
    account_id  bigint NOT NULL REFERENCES accounts(id),
    day         date NOT NULL,               -- UTC
    recipients  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
);

CREATE TABLE account_rate (
    account_id  bigint PRIMARY KEY REFERENCES accounts(id),
    minute      timestamptz NOT NULL,        -- the current minute
    cur         bigint NOT NULL,             -- recipients in it
    prev        bigint NOT NULL              -- recipients in the minute before
);

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
