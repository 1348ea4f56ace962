-- One verdict per refused message of an intake group: p_* are per message
-- (in order); refusal is 'sender', 'url', 'rate', 'daily_quota',
-- 'monthly_quota' or 'balance', retry_after the seconds until it may pass (NULL: not by
-- waiting).  Counts what it admits.  Accounts are taken in id order, so
-- groups of two nodes never wait for each other in a cycle.
CREATE OR REPLACE FUNCTION intake_admit(p_account bigint[], p_n int[], p_sender text[], p_idem text[], p_callback text[],
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
        SELECT array_agg(k.key) INTO replays FROM message_keys k
        WHERE k.account_id = a.id AND k.key = ANY (p_idem);

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
