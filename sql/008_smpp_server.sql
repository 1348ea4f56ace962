-- 008_smpp_server: pushgate as an SMSC for customers' ESMEs.  SMPP accounts
-- (system_id, PBKDF2 password hash, limits, allowed client networks, the
-- numbers and short codes whose mobile-originated messages they receive),
-- the link from a message to the SMPP account that submitted it, and the
-- durable per-account outbox of deliver_sm PDUs (delivery receipts and MO
-- messages) the server sends in id order and retries until answered.

CREATE TABLE smpp_accounts (
    id              bigserial PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES accounts(id),
    system_id       text NOT NULL UNIQUE CHECK (length(system_id) BETWEEN 1 AND 15),
    password_hash   text NOT NULL,                  -- pbkdf2-sha256$iterations$salt$hash (smpp/passwd.c)
    max_binds       integer NOT NULL DEFAULT 4 CHECK (max_binds BETWEEN 1 AND 1000),
    window_size     integer NOT NULL DEFAULT 100 CHECK (window_size BETWEEN 1 AND 10000),
    tps             double precision NOT NULL DEFAULT 0 CHECK (tps >= 0),   -- submits per second over all binds; 0 = no limit
    allowed_sources cidr[],                         -- client addresses allowed to bind; NULL = any
    mo_addresses    text[],                         -- destination numbers / short codes whose MO it receives
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Which SMPP account submitted a message, and what it asked for
-- (registered_delivery: 0 none, 1 every final state, 2 failures only).
ALTER TABLE messages ADD COLUMN smpp_account_id bigint;
ALTER TABLE messages ADD COLUMN smpp_registered smallint;
CREATE INDEX messages_smpp ON messages (id) WHERE smpp_account_id IS NOT NULL;

-- deliver_sm to send to an SMPP account: kind 'receipt' (a recipient of one
-- of its messages reached a final state; one per recipient) or 'mo' (a
-- mobile-originated message to one of its numbers).  Sent in id order per
-- account on a bind that can receive; a row sent and not answered is sent
-- again once its lease runs out; delivered_at set on deliver_sm_resp OK.
CREATE TABLE smpp_outbox (
    id              bigserial PRIMARY KEY,
    smpp_account_id bigint NOT NULL,
    account_id      bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('receipt', 'mo')),
    recipient_id    bigint,                        -- receipt: whose
    state           text,                          -- receipt: the final recipient state
    registered      smallint,                      -- receipt: the submit's registered_delivery
    error_code      integer,
    source_addr     text NOT NULL,                 -- deliver_sm source: the handset
    dest_addr       text NOT NULL,                 -- deliver_sm destination: the submit's sender / the MO's short code
    body            text,                          -- receipt: the message text (first 20 characters go out); mo: the text
    submitted_at    timestamptz,
    done_at         timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    lease_owner     text,
    lease_until     timestamptz,
    delivered_at    timestamptz
);
CREATE UNIQUE INDEX smpp_outbox_one_receipt ON smpp_outbox (recipient_id) WHERE kind = 'receipt';
CREATE INDEX smpp_outbox_due ON smpp_outbox (smpp_account_id, id) WHERE delivered_at IS NULL;

-- Mobile-originated messages from carriers (deliver_sm that is not a
-- receipt), whoever owns the destination.
CREATE TABLE mo_messages (
    id              bigserial PRIMARY KEY,
    route           text,                          -- the carrier route it came in by
    source_addr     text NOT NULL,                 -- the handset
    dest_addr       text NOT NULL,                 -- our number / short code
    body            text NOT NULL,
    data_coding     smallint,
    smpp_account_id bigint,                        -- owner (by dest_addr), NULL: none
    account_id      bigint,
    opt_out         boolean NOT NULL DEFAULT false, -- a keyword: opt_outs row written
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mo_messages_account ON mo_messages (account_id, id);

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
