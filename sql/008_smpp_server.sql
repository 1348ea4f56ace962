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

-- The intake statement's one per-message slot, callback_url, carries
-- 'smpp:ACCOUNT:REGISTERED' from the SMPP server (the API accepts only
-- http(s) URLs, so no client can); this moves it to the columns above.
CREATE FUNCTION smpp_message_take() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    acct text := split_part(NEW.callback_url, ':', 2);
    reg text := split_part(NEW.callback_url, ':', 3);
BEGIN
    IF acct !~ '^[0-9]{1,18}$' OR reg !~ '^[0-9]{1,3}$' THEN
        RAISE EXCEPTION 'smpp intake: bad callback_url';
    END IF;
    NEW.smpp_account_id := acct::bigint;
    NEW.smpp_registered := reg::smallint;
    NEW.callback_url := NULL;
    RETURN NEW;
END $$;

CREATE TRIGGER messages_smpp_take BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.callback_url LIKE 'smpp:%') EXECUTE FUNCTION smpp_message_take();

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

-- Statement-level like the webhook outbox: one INSERT ... SELECT per
-- statement that writes events.  Final states only, of messages an SMPP
-- account submitted asking for receipts.
CREATE FUNCTION smpp_outbox_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, recipient_id, state, registered, error_code,
                             source_addr, dest_addr, body, submitted_at, done_at)
    SELECT m.smpp_account_id, m.account_id, 'receipt', e.recipient_id, e.state, m.smpp_registered, r.error_code,
           r.msisdn, m.sender, left(coalesce(r.text, m.body), 20), r.created_at, e.at
    FROM new_events e
    JOIN messages m ON m.id = e.message_id AND m.smpp_account_id IS NOT NULL
    JOIN recipients r ON r.id = e.recipient_id
    WHERE e.kind = 'state' AND m.smpp_registered & 3 <> 0
      AND e.state IN ('PUSH_DELIVERED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED', 'SMS_UNKNOWN',
                      'DROPPED', 'CANCELED')
    ORDER BY e.id
    ON CONFLICT (recipient_id) WHERE kind = 'receipt' DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER events_smpp_outbox AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION smpp_outbox_fill();

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
