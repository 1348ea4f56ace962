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

-- The host of an http(s) URL, lower case ([v6] with its brackets); NULL when none is found.
CREATE FUNCTION url_host(u text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT lower(substring(u FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]/]*\]|[^/:?#]*)'))
$$;

-- A URL (NULL: none) names a host of the list: itself, or under a ".domain" entry.
CREATE FUNCTION url_host_allowed(u text, hosts text[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT u IS NULL OR EXISTS (SELECT 1 FROM unnest(hosts) h, url_host(u) x(host)
                                WHERE x.host <> '' AND (x.host = lower(h) OR (h LIKE '.%' AND x.host LIKE '%' || lower(h))))
$$;

-- One verdict per refused message of an intake group: p_* are per message
-- (in order); refusal is 'sender', 'url', 'rate', 'daily_quota',
-- 'monthly_quota' or 'balance', retry_after the seconds until it may pass (NULL: not by
-- waiting).  Counts what it admits.  Accounts are taken in id order, so
-- groups of two nodes never wait for each other in a cycle.
CREATE FUNCTION intake_admit(p_account bigint[], p_n int[], p_sender text[], p_idem text[], p_callback text[],
                             p_dlr text[])
RETURNS TABLE (mord int, refusal text, retry_after int)
LANGUAGE plpgsql AS $$
DECLARE
    a          record;
    i          int;
    n_msgs     int := coalesce(array_length(p_account, 1), 0);
    today      date := (now() AT TIME ZONE 'UTC')::date;
    month0     date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    day_used   bigint;
    month_used bigint;
    w          record;
    this_min   timestamptz := date_trunc('minute', now());
    rate_est   float8;
    taken      bigint;
    why        text;
    wait       int;
    listed     text[];   -- the account's approved senders (senders_listed)
    owned      text[];   -- senders of the group approved for another account
    replays    text[];   -- idempotency keys of the group the account used before
    limited    boolean;
    seen       int := 0;   -- accounts found
BEGIN
    -- one query per account for each set; then the messages are walked in memory
    FOR a IN SELECT x.id, x.daily_quota, x.monthly_quota, x.balance, x.rate_limit, x.senders_listed, x.url_hosts
             FROM accounts x WHERE x.id = ANY (p_account) ORDER BY x.id
    LOOP
        seen := seen + 1;
        taken := 0;
        limited := a.daily_quota > 0 OR a.monthly_quota > 0 OR a.balance IS NOT NULL OR a.rate_limit > 0;
        IF limited THEN
            -- the account's row is the lock every node's intake of it waits for; read again under it
            SELECT x.daily_quota, x.monthly_quota, x.balance, x.rate_limit, x.senders_listed
            INTO a.daily_quota, a.monthly_quota, a.balance, a.rate_limit, a.senders_listed
            FROM accounts x WHERE x.id = a.id FOR NO KEY UPDATE;
            SELECT coalesce(sum(u.recipients) FILTER (WHERE u.day = today), 0), coalesce(sum(u.recipients), 0)
            INTO day_used, month_used
            FROM account_usage u WHERE u.account_id = a.id AND u.day >= month0;
            rate_est := 0;
            IF a.rate_limit > 0 THEN
                SELECT r.minute, r.cur, r.prev INTO w FROM account_rate r WHERE r.account_id = a.id;
                IF FOUND AND w.minute = this_min THEN
                    rate_est := w.prev * (1 - extract(epoch FROM now() - this_min) / 60) + w.cur;
                ELSIF FOUND AND w.minute = this_min - interval '1 minute' THEN
                    rate_est := w.cur * (1 - extract(epoch FROM now() - this_min) / 60);
                END IF;
            END IF;
        END IF;
        IF a.senders_listed THEN
            SELECT array_agg(s.sender) INTO listed FROM account_senders s WHERE s.account_id = a.id;
        ELSE
            SELECT array_agg(s.sender) INTO owned FROM account_senders s
            WHERE s.sender = ANY (p_sender) AND s.account_id <> a.id;
        END IF;
        SELECT array_agg(m.idempotency_key) INTO replays FROM messages m
        WHERE m.account_id = a.id AND m.idempotency_key = ANY (p_idem);

        FOR i IN 1 .. n_msgs LOOP
            CONTINUE WHEN p_account[i] <> a.id;
            IF p_idem[i] = ANY (replays) THEN
                CONTINUE;   -- a replay: answered with what was stored, nothing taken
            END IF;
            why := NULL; wait := NULL;
            IF a.senders_listed AND NOT coalesce(p_sender[i] = ANY (listed), false) THEN
                why := 'sender';
            ELSIF NOT a.senders_listed AND coalesce(p_sender[i] = ANY (owned), false) THEN
                why := 'sender';
            ELSIF a.url_hosts IS NOT NULL AND NOT (url_host_allowed(p_callback[i], a.url_hosts)
                                                   AND url_host_allowed(p_dlr[i], a.url_hosts)) THEN
                why := 'url';
            ELSIF NOT limited THEN
                NULL;
            ELSIF a.balance IS NOT NULL AND taken + p_n[i] > a.balance THEN
                why := 'balance';
            ELSIF a.daily_quota > 0 AND day_used + taken + p_n[i] > a.daily_quota THEN
                why := 'daily_quota';
                wait := ceil(extract(epoch FROM (today + 1)::timestamp - (now() AT TIME ZONE 'UTC')));
            ELSIF a.monthly_quota > 0 AND month_used + taken + p_n[i] > a.monthly_quota THEN
                why := 'monthly_quota';
                wait := ceil(extract(epoch FROM (month0 + interval '1 month') - (now() AT TIME ZONE 'UTC')));
            ELSIF a.rate_limit > 0 AND rate_est + taken + p_n[i] > a.rate_limit THEN
                why := 'rate';
                -- the sliding count falls by at least rate_limit / 60 a second once this minute is past
                wait := least(60, ceil((rate_est + taken + p_n[i] - a.rate_limit) * 60.0 / a.rate_limit));
            END IF;
            IF why IS NOT NULL THEN
                mord := i; refusal := why; retry_after := CASE WHEN wait IS NOT NULL THEN greatest(wait, 1) END;
                RETURN NEXT;
            ELSE
                taken := taken + p_n[i];
            END IF;
        END LOOP;

        IF taken > 0 THEN
            INSERT INTO account_usage AS u (account_id, day, recipients) VALUES (a.id, today, taken)
            ON CONFLICT (account_id, day) DO UPDATE SET recipients = u.recipients + EXCLUDED.recipients;
            IF a.balance IS NOT NULL THEN
                UPDATE accounts SET balance = balance - taken WHERE id = a.id;
            END IF;
            IF a.rate_limit > 0 THEN
                INSERT INTO account_rate AS r (account_id, minute, cur, prev) VALUES (a.id, this_min, taken, 0)
                ON CONFLICT (account_id) DO UPDATE SET
                    prev = CASE WHEN r.minute = this_min THEN r.prev
                                WHEN r.minute = this_min - interval '1 minute' THEN r.cur ELSE 0 END,
                    cur = CASE WHEN r.minute = this_min THEN r.cur ELSE 0 END + EXCLUDED.cur,
                    minute = this_min;
            END IF;
        END IF;
    END LOOP;
    -- messages keep no foreign key on accounts (sql/019): an account that does not exist fails
    -- the group here, as that key did (the group is then tried one message at a time)
    IF seen <> (SELECT count(DISTINCT u.id) FROM unnest(p_account) AS u(id)) THEN
        RAISE EXCEPTION 'intake: a message of an account that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
END $$;
