-- sql/schema.sql: pushgate's schema after every migration (tools/schema-dump).
-- Generated: edit the migrations, then regenerate; t_schema checks they agree.

--
-- PostgreSQL database dump
--

--
-- Name: accounts_kept(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.accounts_kept() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'accounts are never deleted nor renumbered (pushgatectl account disable stops one)'
        USING ERRCODE = 'restrict_violation';
END $$;

--
-- Name: ad_hold_until(text, boolean, timestamp with time zone, integer, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ad_hold_until(purpose text, consent boolean, at timestamp with time zone, start_hour integer, end_hour integer, tz text) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
        WHEN purpose <> 'AD' OR consent THEN NULL
        WHEN extract(hour FROM at AT TIME ZONE tz) >= start_hour
             AND extract(hour FROM at AT TIME ZONE tz) < end_hour THEN NULL
        ELSE (date_trunc('day', at AT TIME ZONE tz) + make_interval(hours => start_hour)
              + CASE WHEN extract(hour FROM at AT TIME ZONE tz) >= end_hour THEN interval '1 day'
                     ELSE interval '0' END) AT TIME ZONE tz END
$$;

--
-- Name: history_ensure(bigint, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_ensure(p_min bigint DEFAULT 1000000, p_span interval DEFAULT '1 day'::interval) RETURNS TABLE(made integer, ahead bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM range_ensure('history', p_min, p_span)
$$;

--
-- Name: history_issued(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_issued() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END FROM recipients_id_seq s
$$;

--
-- Name: history_parts(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_parts(p_lo bigint) RETURNS TABLE(tbl text, part text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN QUERY
    SELECT h.name, p.part
      FROM history_tables h
     CROSS JOIN LATERAL (
           SELECT h.name || '_' || CASE WHEN p_lo = -9223372036854775808 THEN 'legacy' ELSE p_lo::text END AS part) p
     WHERE to_regclass('public.' || quote_ident(p.part)) IS NOT NULL
     ORDER BY h.ord DESC;
END $$;

--
-- Name: history_range_add(bigint, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_range_add(p_lo bigint, p_hi bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    t record;
    i record;
    part text;
BEGIN
    IF p_hi <= p_lo THEN
        RAISE EXCEPTION 'history range [%, %) is empty', p_lo, p_hi;
    END IF;
    -- (a table not partitioned yet, being converted, gets none)
    FOR t IN SELECT h.name, h.reloptions, h.own_key FROM history_tables h JOIN pg_class c ON c.oid = h.name::regclass
              WHERE c.relkind = 'p' ORDER BY h.ord LOOP
        part := t.name || '_' || p_lo;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)%s',
                       part, t.name,
                       CASE WHEN t.reloptions IS NULL THEN ''
                            ELSE ' WITH (' || array_to_string(t.reloptions, ', ') || ')' END);
        IF t.own_key IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (%I)', part, t.name || '_pkey_' || p_lo,
                           t.own_key);
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       t.name, part, p_lo, p_hi);
        -- the indexes ATTACH made are named after the parent's and the
        -- range: events_at -> events_at_<lo> (plans read as the parent's)
        FOR i IN SELECT c.relname AS own, pc.relname AS parent
                   FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                   JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
                  WHERE x.indrelid = part::regclass AND c.relname <> pc.relname || '_' || p_lo LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_' || p_lo);
        END LOOP;
    END LOOP;
    INSERT INTO history_ranges (lo, hi, issued)
    VALUES (p_lo, p_hi, history_issued());
END $$;

--
-- Name: history_range_drop(bigint, interval, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_range_drop(p_lo bigint, p_keep interval, p_class text DEFAULT 'history'::text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET lock_timeout TO '200ms'
    AS $$
DECLARE
    g record;
    t record;
    parts text[];
BEGIN
    FOR attempt IN 1..150 LOOP
        BEGIN
            -- one caller at a time (history_ensure() takes it too)
            LOCK TABLE history_ranges IN SHARE ROW EXCLUSIVE MODE;
            SELECT coalesce(array_agg(p.part ORDER BY h.ord DESC), '{}') INTO parts FROM history_parts(p_lo) p
              JOIN history_tables h ON h.name = p.tbl WHERE p_class = 'history' OR h.class = p_class;
            FOR i IN 1..cardinality(parts) LOOP
                EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', parts[i]);
            END LOOP;
            IF p_class = 'history' THEN
                FOR t IN SELECT h.name FROM history_tables h ORDER BY h.ord LOOP
                    EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', t.name);
                END LOOP;
            END IF;
            SELECT * INTO g FROM history_retention(p_keep, p_lo, p_class) h;
            IF NOT FOUND OR g.action NOT IN ('drop', 'clear') THEN
                RETURN coalesce(g.action, 'gone');
            END IF;
            IF p_class = 'outbox' THEN
                IF cardinality(parts) > 0 THEN
                    EXECUTE 'TRUNCATE ' || (SELECT string_agg(quote_ident(x), ', ') FROM unnest(parts) x);
                END IF;
                UPDATE history_ranges h SET outboxes_cleared_at = now() WHERE h.lo = p_lo;
                RETURN 'cleared';
            END IF;
            FOR i IN 1..cardinality(parts) LOOP
                EXECUTE format('DROP TABLE %I', parts[i]);
            END LOOP;
            DELETE FROM history_ranges h WHERE h.lo = p_lo;
            RETURN 'dropped';
        EXCEPTION WHEN lock_not_available OR deadlock_detected OR undefined_table THEN
            PERFORM pg_sleep(0.01);
        END;
    END LOOP;
    RETURN 'busy';
END $$;

--
-- Name: history_retention(interval, bigint, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_retention(p_keep interval, p_lo bigint DEFAULT NULL::bigint, p_class text DEFAULT 'history'::text) RETURNS TABLE(lo bigint, hi bigint, suffix text, newest timestamp with time zone, in_flight boolean, action text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
DECLARE
    g record;
    w record;
    part text;
    pending text;
    found boolean;
    issued bigint := history_issued();
BEGIN
    IF p_class NOT IN ('history', 'outbox') THEN
        RAISE EXCEPTION 'no retention class %', p_class;
    END IF;
    FOR g IN SELECT h.lo, h.hi, h.outboxes_cleared_at FROM history_ranges h WHERE p_lo IS NULL OR h.lo = p_lo
              ORDER BY h.lo LOOP
        lo := g.lo;
        hi := g.hi;
        suffix := CASE WHEN g.lo = -9223372036854775808 THEN 'legacy' ELSE g.lo::text END;
        part := 'recipients_' || suffix;
        BEGIN
            EXECUTE format('SELECT created_at FROM %I ORDER BY id DESC LIMIT 1', part) INTO newest;
        EXCEPTION WHEN undefined_table THEN
            CONTINUE;   -- dropped meanwhile (another node's retention, after this loop's rows were read)
        END;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I WHERE state IN (''SCHEDULED'', ''HELD''))'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''PUSH_SENT'')'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''SMS_QUEUED'')'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''SMS_SUBMITTED'')'
                       ' OR EXISTS (SELECT 1 FROM %1$I WHERE state = ''SMS_ACCEPTED'')', part) INTO in_flight;
        -- its webhook deliveries and SMPP receipts still to be made (each outbox's partial index)
        pending := NULL;
        FOR w IN SELECT p.tbl, p.part FROM history_parts(g.lo) p WHERE p.tbl IN ('webhook_outbox', 'smpp_outbox') LOOP
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE delivered_at IS NULL%s)', w.part,
                           CASE WHEN w.tbl = 'webhook_outbox' THEN ' AND given_up_at IS NULL' ELSE '' END) INTO found;
            IF found THEN
                pending := CASE w.tbl WHEN 'webhook_outbox' THEN 'a webhook delivery pending'
                                      ELSE 'an SMPP receipt undelivered' END;
            END IF;
        END LOOP;
        action := CASE WHEN g.hi > issued + 1 THEN 'kept: ids still to be issued in it'
                       WHEN newest >= now() - p_keep THEN 'kept: newer than the limit'
                       WHEN in_flight THEN 'kept: a recipient in flight'
                       WHEN pending IS NOT NULL THEN 'kept: ' || pending
                       WHEN p_class = 'history' THEN 'drop'
                       WHEN g.outboxes_cleared_at IS NOT NULL THEN 'cleared'
                       ELSE 'clear' END;
        RETURN NEXT;
    END LOOP;
END $_$;

--
-- Name: history_retention_drop(interval, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_retention_drop(p_keep interval, p_class text DEFAULT 'history'::text) RETURNS TABLE(lo bigint, hi bigint, suffix text, newest timestamp with time zone, action text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    g record;
BEGIN
    IF p_class = 'messages' THEN
        SELECT * INTO g FROM message_retention(p_keep) h WHERE h.action = 'drop' ORDER BY h.lo LIMIT 1;
        IF FOUND THEN
            lo := g.lo;
            hi := g.hi;
            suffix := 'messages_' || g.suffix;
            newest := g.newest;
            action := message_range_drop(g.lo, p_keep);
            RETURN NEXT;
        END IF;
        RETURN;
    END IF;
    SELECT * INTO g FROM history_retention(p_keep, NULL, p_class) h WHERE h.action IN ('drop', 'clear')
     ORDER BY h.lo LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    lo := g.lo;
    hi := g.hi;
    suffix := g.suffix;
    newest := g.newest;
    action := history_range_drop(g.lo, p_keep, p_class);
    RETURN NEXT;
END $$;

--
-- Name: history_trim(interval, interval, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_trim(p_keep interval, p_outbox_keep interval, p_limit integer) RETURNS TABLE(tbl text, deleted bigint)
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $_$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM history_trim_tables() LOOP
        tbl := t.tbl;
        EXECUTE format('WITH d AS (DELETE FROM %1$I WHERE %2$I = ANY (ARRAY(SELECT history_trimmable(%1$L, $1, $2, $3)))'
                       ' RETURNING 1) SELECT count(*) FROM d', t.tbl, t.id_column)
            INTO deleted USING p_keep, p_outbox_keep, p_limit;
        RETURN NEXT;
    END LOOP;
END $_$;

--
-- Name: history_trim_tables(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_trim_tables() RETURNS TABLE(tbl text, id_column text, class text)
    LANGUAGE sql IMMUTABLE
    AS $$
    VALUES ('mo_messages', 'id', 'history'),
           ('message_keys', 'message_id', 'history'),
           ('smpp_outbox_other', 'id', 'outbox'),
           ('webhook_outbox_other', 'id', 'outbox')
$$;

--
-- Name: history_trimmable(text, interval, interval, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.history_trimmable(p_table text, p_keep interval, p_outbox_keep interval, p_limit integer DEFAULT NULL::integer) RETURNS SETOF bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF p_table = 'mo_messages' THEN
        RETURN QUERY SELECT id FROM mo_messages WHERE received_at < now() - p_keep
                     ORDER BY received_at LIMIT p_limit;
    ELSIF p_table = 'message_keys' THEN
        RETURN QUERY SELECT message_id FROM message_keys WHERE created_at < now() - p_keep
                     ORDER BY created_at LIMIT p_limit;
    ELSIF p_table = 'smpp_outbox_other' THEN
        RETURN QUERY SELECT id FROM smpp_outbox_other WHERE created_at < now() - p_outbox_keep
                       AND delivered_at IS NOT NULL ORDER BY created_at LIMIT p_limit;
    ELSIF p_table = 'webhook_outbox_other' THEN
        RETURN QUERY SELECT id FROM webhook_outbox_other WHERE created_at < now() - p_outbox_keep
                       AND (delivered_at IS NOT NULL OR given_up_at IS NOT NULL) ORDER BY created_at LIMIT p_limit;
    ELSE
        RAISE EXCEPTION 'history_trimmable: % is not a table retention trims', p_table;
    END IF;
END $$;

--
-- Name: intake_admit(bigint[], integer[], text[], text[], text[], text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.intake_admit(p_account bigint[], p_n integer[], p_sender text[], p_idem text[], p_callback text[], p_dlr text[]) RETURNS TABLE(mord integer, refusal text, retry_after integer)
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: kannel_dlr_fill(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.kannel_dlr_fill() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    SELECT min(message_id), max(message_id) INTO lo, hi FROM new_events;
    IF lo IS NULL OR NOT EXISTS (SELECT 1 FROM messages WHERE dlr_url IS NOT NULL AND id BETWEEN lo AND hi) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_outbox (account_id, url, method, event_id, recipient_id, message_id, payload)
    SELECT k.account_id,
           kannel_dlr_url(k.dlr_url, k.type, k.msisdn, k.sender,
                          CASE k.type WHEN 8 THEN 'ACK/'
                                      WHEN 16 THEN 'NACK/' || coalesce(coalesce(k.error_code, k.r_error)::text, '')
                                                   || '/' || coalesce(k.detail, '')
                                      ELSE coalesce(CASE WHEN k.kind = 'state' THEN k.receipts[cardinality(k.receipts)] END,
                                                    k.detail, k.state, '') END,
                          k.at, k.recipient_id, coalesce(k.route, k.r_route), coalesce(k.smsc_id, k.r_smsc), a.name),
           'GET', k.id, k.recipient_id, k.message_id,
           jsonb_build_object('event_id', k.id, 'message_id', k.message_id, 'recipient_id', k.recipient_id,
                              'kannel_dlr_type', k.type, 'state', k.state)
    FROM (SELECT w.*, r.msisdn, r.error_code AS r_error, r.route AS r_route, r.smsc_id AS r_smsc,
                 kannel_dlr_type(w.kind, w.state, r.smsc_id IS NOT NULL, w.dlr_mask) AS type
          FROM (SELECT e.*, m.dlr_url, m.dlr_mask, m.sender,
                       array_agg(e.detail) FILTER (WHERE e.kind = 'receipt')
                           OVER (PARTITION BY e.recipient_id ORDER BY e.id) AS receipts
                FROM new_events e
                CROSS JOIN LATERAL (SELECT x.dlr_url, x.dlr_mask, x.sender FROM messages x
                                    WHERE x.id = e.message_id OFFSET 0) m
                WHERE m.dlr_url IS NOT NULL AND m.dlr_mask > 0 AND e.recipient_id IS NOT NULL) w
          CROSS JOIN LATERAL (SELECT x.msisdn, x.error_code, x.route, x.smsc_id FROM recipients x
                              WHERE x.id = w.recipient_id OFFSET 0) r) k
    CROSS JOIN LATERAL (SELECT x.name FROM accounts x WHERE x.id = k.account_id OFFSET 0) a
    WHERE k.type IS NOT NULL
    ORDER BY k.id;
    RETURN NULL;
END $$;

--
-- Name: kannel_dlr_type(text, text, boolean, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.kannel_dlr_type(kind text, state text, accepted boolean, mask integer) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE
        WHEN kind = 'receipt' AND state IS NULL THEN CASE WHEN mask & 4 <> 0 THEN 4 END
        WHEN kind <> 'state' THEN NULL
        WHEN state IN ('PUSH_DELIVERED', 'SMS_DELIVERED') THEN CASE WHEN mask & 1 <> 0 THEN 1 END
        WHEN state = 'PUSH_SENT' THEN CASE WHEN mask & 4 <> 0 THEN 4 END
        WHEN state = 'SMS_ACCEPTED' THEN CASE WHEN mask & 8 <> 0 THEN 8 END
        WHEN state = 'SMS_FAILED' AND NOT accepted THEN CASE WHEN mask & 18 <> 0 THEN 16 END
        WHEN state IN ('SMS_FAILED', 'SMS_EXPIRED', 'DROPPED', 'CANCELED') THEN CASE WHEN mask & 2 <> 0 THEN 2 END
    END
$$;

--
-- Name: kannel_dlr_url(text, integer, text, text, text, timestamp with time zone, bigint, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.kannel_dlr_url(tpl text, type integer, receiver text, sender text, reply text, at timestamp with time zone, recipient bigint, route text, smsc_id text, account text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    AS $$
DECLARE
    out text := '';
    rest text := tpl;
    p integer;
    c text;
BEGIN
    LOOP
        p := strpos(rest, '%');
        IF p = 0 OR p = length(rest) THEN
            RETURN out || rest;
        END IF;
        c := substr(rest, p + 1, 1);
        out := out || left(rest, p - 1) || CASE c
            WHEN 'd' THEN type::text
            WHEN 'p' THEN kannel_urlencode(receiver)
            WHEN 'P' THEN kannel_urlencode(sender)
            WHEN 'q' THEN kannel_urlencode(kannel_plus(receiver))
            WHEN 'Q' THEN kannel_urlencode(kannel_plus(sender))
            WHEN 'A' THEN kannel_urlencode(coalesce(reply, ''))
            WHEN 'a' THEN kannel_urlencode(coalesce(reply, ''))
            WHEN 'T' THEN floor(extract(epoch FROM at))::bigint::text
            WHEN 't' THEN kannel_urlencode(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
            WHEN 'I' THEN recipient::text
            WHEN 'i' THEN kannel_urlencode(coalesce(route, ''))
            WHEN 'F' THEN kannel_urlencode(coalesce(smsc_id, ''))
            WHEN 'n' THEN kannel_urlencode(coalesce(account, ''))
            WHEN '%' THEN '%'
            ELSE '%' || c END;
        rest := substr(rest, p + 2);
    END LOOP;
END $$;

--
-- Name: kannel_plus(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.kannel_plus(n text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS $$
    SELECT CASE WHEN n LIKE '00%' THEN '+' || substr(n, 3) ELSE n END
$$;

--
-- Name: kannel_urlencode(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.kannel_urlencode(s text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS $$
    SELECT CASE WHEN s !~ '[^A-Za-z0-9._~-]' THEN s ELSE
        (SELECT coalesce(string_agg(CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122
                                              OR b IN (45, 46, 95, 126) THEN chr(b)
                                         ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i), '')
         FROM (SELECT i, get_byte(convert_to(s, 'UTF8'), i) AS b
               FROM generate_series(0, octet_length(convert_to(s, 'UTF8')) - 1) AS i) x) END
$$;

--
-- Name: message_ensure(bigint, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_ensure(p_min bigint DEFAULT 1000000, p_span interval DEFAULT '1 day'::interval) RETURNS TABLE(made integer, ahead bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM range_ensure('messages', p_min, p_span)
$$;

--
-- Name: message_issued(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_issued() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END FROM messages_id_seq s
$$;

--
-- Name: message_range_add(bigint, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_range_add(p_lo bigint, p_hi bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    i record;
    part text := 'messages_' || p_lo;
    opts text[];
BEGIN
    IF p_hi <= p_lo THEN
        RAISE EXCEPTION 'message range [%, %) is empty', p_lo, p_hi;
    END IF;
    SELECT c.reloptions INTO opts FROM message_ranges r
      JOIN pg_class c ON c.oid = to_regclass('public.messages_' || CASE WHEN r.lo = -9223372036854775808
                                                                         THEN 'legacy' ELSE r.lo::text END)
     ORDER BY r.lo DESC LIMIT 1;
    EXECUTE format('CREATE TABLE %I (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)%s',
                   part, CASE WHEN opts IS NULL THEN '' ELSE ' WITH (' || array_to_string(opts, ', ') || ')' END);
    EXECUTE format('ALTER TABLE messages ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', part, p_lo, p_hi);
    FOR i IN SELECT c.relname AS own, pc.relname AS parent
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
               JOIN pg_inherits h ON h.inhrelid = x.indexrelid JOIN pg_class pc ON pc.oid = h.inhparent
              WHERE x.indrelid = part::regclass AND c.relname <> pc.relname || '_' || p_lo LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', i.own, i.parent || '_' || p_lo);
    END LOOP;
    INSERT INTO message_ranges (lo, hi, issued) VALUES (p_lo, p_hi, message_issued());
END $$;

--
-- Name: message_range_drop(bigint, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_range_drop(p_lo bigint, p_keep interval) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET lock_timeout TO '200ms'
    AS $$
DECLARE
    g record;
    part text := 'messages_' || CASE WHEN p_lo = -9223372036854775808 THEN 'legacy' ELSE p_lo::text END;
BEGIN
    FOR attempt IN 1..150 LOOP
        BEGIN
            LOCK TABLE message_ranges IN SHARE ROW EXCLUSIVE MODE;
            EXECUTE format('LOCK TABLE ONLY %I IN ACCESS EXCLUSIVE MODE NOWAIT', part);
            LOCK TABLE ONLY messages IN ACCESS EXCLUSIVE MODE NOWAIT;
            SELECT * INTO g FROM message_retention(p_keep, p_lo) h;
            IF NOT FOUND OR g.action <> 'drop' THEN
                RETURN coalesce(g.action, 'gone');
            END IF;
            EXECUTE format('DROP TABLE %I', part);
            DELETE FROM message_ranges m WHERE m.lo = p_lo;
            RETURN 'dropped';
        EXCEPTION WHEN lock_not_available OR deadlock_detected OR undefined_table THEN
            PERFORM pg_sleep(0.01);
        END;
    END LOOP;
    RETURN 'busy';
END $$;

--
-- Name: message_retention(interval, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_retention(p_keep interval, p_lo bigint DEFAULT NULL::bigint) RETURNS TABLE(lo bigint, hi bigint, suffix text, newest timestamp with time zone, action text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    g record;
    issued bigint := message_issued();
    named bigint := (SELECT min(r.message_id) FROM recipients r);
BEGIN
    FOR g IN SELECT m.lo, m.hi FROM message_ranges m WHERE p_lo IS NULL OR m.lo = p_lo ORDER BY m.lo LOOP
        lo := g.lo;
        hi := g.hi;
        suffix := CASE WHEN g.lo = -9223372036854775808 THEN 'legacy' ELSE g.lo::text END;
        BEGIN
            EXECUTE format('SELECT created_at FROM %I ORDER BY id DESC LIMIT 1', 'messages_' || suffix) INTO newest;
        EXCEPTION WHEN undefined_table THEN
            CONTINUE;   -- dropped meanwhile
        END;
        action := CASE WHEN g.hi > issued + 1 THEN 'kept: ids still to be issued in it'
                       WHEN newest >= now() - p_keep THEN 'kept: newer than the limit'
                       WHEN named < g.hi THEN 'kept: a recipient of its messages is kept'
                       WHEN EXISTS (SELECT 1 FROM message_keys k WHERE k.message_id >= g.lo AND k.message_id < g.hi)
                           THEN 'kept: an idempotency key of its messages is kept'
                       ELSE 'drop' END;
        RETURN NEXT;
    END LOOP;
END $$;

--
-- Name: range_ensure(text, bigint, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.range_ensure(p_kind text, p_min bigint, p_span interval) RETURNS TABLE(made integer, ahead bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    ranges text := CASE p_kind WHEN 'history' THEN 'history_ranges' WHEN 'messages' THEN 'message_ranges' END;
    newest record;
    issued bigint;
    size bigint;
BEGIN
    IF ranges IS NULL THEN
        RAISE EXCEPTION 'range_ensure: no ranges of kind %', p_kind;
    END IF;
    made := 0;
    EXECUTE format('LOCK TABLE %I IN SHARE ROW EXCLUSIVE MODE', ranges);
    issued := CASE p_kind WHEN 'history' THEN history_issued() ELSE message_issued() END;
    LOOP
        EXECUTE format('SELECT lo, hi, created_at, issued FROM %I ORDER BY lo DESC LIMIT 1', ranges) INTO newest;
        size := range_next_size(newest.lo, newest.hi, newest.created_at, newest.issued, issued, p_min, p_span);
        ahead := newest.hi - issued;
        EXIT WHEN ahead >= size;
        IF p_kind = 'history' THEN
            PERFORM history_range_add(newest.hi, newest.hi + size);
        ELSE
            PERFORM message_range_add(newest.hi, newest.hi + size);
        END IF;
        made := made + 1;
    END LOOP;
    RETURN NEXT;
END $$;

--
-- Name: range_next_size(bigint, bigint, timestamp with time zone, bigint, bigint, bigint, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.range_next_size(p_lo bigint, p_hi bigint, p_made timestamp with time zone, p_then bigint, p_now bigint, p_min bigint, p_span interval) RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    size bigint := p_hi - p_lo;
    elapsed double precision := extract(epoch FROM now() - p_made);
BEGIN
    IF elapsed >= 600 AND p_now > p_then THEN
        size := ceil((p_now - p_then) / elapsed * extract(epoch FROM p_span))::bigint;
    END IF;
    RETURN greatest(size, p_min);
END $$;

--
-- Name: recipient_cancelable(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recipient_cancelable(state text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT state IN ('ACCEPTED', 'SCHEDULED', 'HELD', 'SMS_QUEUED', 'PUSH_SENT', 'OPTED_OUT')
$$;

--
-- Name: recipient_decide(boolean, boolean, text, text[], text, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recipient_decide(app boolean, opted boolean, route text, channels text[], purpose text, policy text, auth_sms_first boolean) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE
        WHEN opted AND (purpose = 'AD' OR policy = 'drop') THEN 'DROPPED'
        WHEN app AND NOT opted AND channels[1] = 'push'
             AND NOT (purpose = 'AUTH' AND auth_sms_first AND 'sms' = ANY(channels)) THEN 'PUSH_SENT'
        WHEN NOT ('sms' = ANY(channels)) THEN 'DROPPED'
        WHEN route IS NULL THEN 'SMS_FAILED'
        ELSE 'SMS_QUEUED' END
$$;

--
-- Name: recipient_decide_why(text, boolean, boolean, text[], text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recipient_decide_why(state text, app boolean, opted boolean, channels text[], purpose text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE state
        WHEN 'PUSH_SENT' THEN 'app installed: push first'
        WHEN 'DROPPED' THEN CASE WHEN opted AND purpose = 'AD' THEN 'opted out: ads are never sent'
                                 WHEN opted THEN 'opt-out policy: drop'
                                 ELSE 'no app and SMS not among the channels' END
        WHEN 'SMS_FAILED' THEN 'no route for this number'
        ELSE CASE WHEN opted THEN 'opt-out policy: sms'
                  WHEN app AND channels[1] = 'push' THEN 'AUTH goes by SMS first for this account'
                  WHEN app THEN 'SMS first by the message''s channels'
                  ELSE 'no app for this number' END END
$$;

--
-- Name: recipient_final(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recipient_final(state text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT state IN ('PUSH_DELIVERED', 'DROPPED', 'CANCELED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED',
                     'SMS_UNKNOWN')
$$;

--
-- Name: report_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.report_counts (
    grain character(1) NOT NULL,
    start timestamp with time zone NOT NULL,
    account_id bigint NOT NULL,
    sender text NOT NULL,
    route text NOT NULL,
    channel text NOT NULL,
    state text NOT NULL,
    opted_out boolean NOT NULL,
    push_tried boolean NOT NULL,
    submitted boolean NOT NULL,
    recipients bigint NOT NULL,
    CONSTRAINT report_counts_grain_check CHECK ((grain = ANY (ARRAY['h'::bpchar, 'd'::bpchar])))
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: report_counts_in(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_counts_in(p_since timestamp with time zone) RETURNS SETOF public.report_counts
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    WITH w AS (SELECT h0, CASE WHEN date_trunc('day', h0, 'UTC') = h0 THEN h0
                               ELSE date_trunc('day', h0, 'UTC') + interval '24 hours' END AS d0
               FROM (SELECT date_trunc('hour', p_since, 'UTC') AS h0) s)
    SELECT x.* FROM report_counts x, w WHERE x.grain = 'h' AND x.start >= w.h0 AND x.start < w.d0
    UNION ALL
    SELECT x.* FROM report_counts x, w WHERE x.grain = 'd' AND x.start >= w.d0
$$;

--
-- Name: report_hist_at(smallint, double precision); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_hist_at(b smallint, f double precision) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- one expression, no FROM: the planner inlines it (and folds the bounds), no call per row
    SELECT round(('{0}'::float8[] || report_hist_bounds())[b + 1]
                 + (coalesce((report_hist_bounds())[b + 1], ('{0}'::float8[] || report_hist_bounds())[b + 1])
                    - ('{0}'::float8[] || report_hist_bounds())[b + 1]) * f)::bigint
$$;

--
-- Name: report_hist_bounds(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_hist_bounds() RETURNS double precision[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT '{100,250,500,1000,2000,3000,5000,10000,15000,30000,60000,120000,300000,600000,1800000,3600000,10800000,43200000,86400000}'::float8[]
$$;

--
-- Name: report_hist_bucket(double precision); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_hist_bucket(ms double precision) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT width_bucket(ms, report_hist_bounds())::smallint
$$;

--
-- Name: report_latency; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.report_latency (
    grain character(1) NOT NULL,
    start timestamp with time zone NOT NULL,
    account_id bigint NOT NULL,
    sender text NOT NULL,
    route text NOT NULL,
    kind text NOT NULL,
    bucket smallint NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT report_latency_grain_check CHECK ((grain = ANY (ARRAY['h'::bpchar, 'd'::bpchar]))),
    CONSTRAINT report_latency_kind_check CHECK ((kind = ANY (ARRAY['push'::text, 'sms'::text, 'receipt'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: report_latency_in(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_latency_in(p_since timestamp with time zone) RETURNS SETOF public.report_latency
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    WITH w AS (SELECT h0, CASE WHEN date_trunc('day', h0, 'UTC') = h0 THEN h0
                               ELSE date_trunc('day', h0, 'UTC') + interval '24 hours' END AS d0
               FROM (SELECT date_trunc('hour', p_since, 'UTC') AS h0) s)
    SELECT x.* FROM report_latency x, w WHERE x.grain = 'h' AND x.start >= w.h0 AND x.start < w.d0
    UNION ALL
    SELECT x.* FROM report_latency x, w WHERE x.grain = 'd' AND x.start >= w.d0
$$;

--
-- Name: report_outcomes(timestamp with time zone, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_outcomes(p_since timestamp with time zone, p_by text) RETURNS TABLE(day date, account_id bigint, account text, sender text, batch_id bigint, recipients bigint, push_delivered bigint, sms_delivered bigint, failed bigint, opted_out bigint, unknown bigint, dropped bigint, canceled bigint, pending bigint, push_share numeric, sms_saved bigint, push_p50_ms bigint, push_p95_ms bigint, sms_p50_ms bigint, sms_p95_ms bigint)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    WITH c AS (
        SELECT CASE WHEN p_by = 'day' THEN (c.start AT TIME ZONE 'UTC')::date END AS day,
               CASE WHEN p_by IN ('account', 'sender', 'day') THEN c.account_id END AS account_id,
               CASE WHEN p_by IN ('sender', 'day') THEN c.sender END AS sender,
               sum(c.recipients) FILTER (WHERE c.state = 'ACCEPTED') AS accepted,
               sum(c.recipients) FILTER (WHERE c.state = 'PUSH_DELIVERED') AS push_delivered,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_DELIVERED') AS sms_delivered,
               sum(c.recipients) FILTER (WHERE c.state IN ('SMS_FAILED', 'SMS_EXPIRED')) AS failed,
               sum(c.recipients) FILTER (WHERE c.opted_out) AS opted_out,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_UNKNOWN') AS unknown,
               sum(c.recipients) FILTER (WHERE c.state = 'DROPPED') AS dropped,
               sum(c.recipients) FILTER (WHERE c.state = 'CANCELED') AS canceled,
               sum(c.recipients) FILTER (WHERE c.state <> 'ACCEPTED') AS final
        FROM report_counts_in(p_since) c
        GROUP BY 1, 2, 3),
    lb AS (
        SELECT CASE WHEN p_by = 'day' THEN (l.start AT TIME ZONE 'UTC')::date END AS day,
               CASE WHEN p_by IN ('account', 'sender', 'day') THEN l.account_id END AS account_id,
               CASE WHEN p_by IN ('sender', 'day') THEN l.sender END AS sender,
               l.kind, l.bucket, sum(l.n)::float8 AS n
        FROM report_latency_in(p_since) l
        WHERE l.kind IN ('push', 'sms')
        GROUP BY 1, 2, 3, 4, 5),
    -- each histogram's running count; a percentile p is in the one bucket where the running
    -- count reaches p * total, at f = (p * total - the count before it) / its count
    lc AS (
        SELECT lb.*, sum(lb.n) OVER (PARTITION BY day, account_id, sender, kind ORDER BY bucket) AS cum,
               sum(lb.n) OVER (PARTITION BY day, account_id, sender, kind) AS total
        FROM lb),
    lp AS (
        SELECT day, account_id, sender,
               max(report_hist_at(bucket, (0.5 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'push' AND cum >= 0.5 * total AND cum - n < 0.5 * total) AS push_p50,
               max(report_hist_at(bucket, (0.95 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'push' AND cum >= 0.95 * total AND cum - n < 0.95 * total) AS push_p95,
               max(report_hist_at(bucket, (0.5 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'sms' AND cum >= 0.5 * total AND cum - n < 0.5 * total) AS sms_p50,
               max(report_hist_at(bucket, (0.95 * total - (cum - n)) / n))
                   FILTER (WHERE kind = 'sms' AND cum >= 0.95 * total AND cum - n < 0.95 * total) AS sms_p95
        FROM lc GROUP BY 1, 2, 3)
    SELECT c.day, c.account_id, a.name, c.sender, NULL::bigint,
           coalesce(c.accepted, 0)::bigint, coalesce(c.push_delivered, 0)::bigint,
           coalesce(c.sms_delivered, 0)::bigint, coalesce(c.failed, 0)::bigint, coalesce(c.opted_out, 0)::bigint,
           coalesce(c.unknown, 0)::bigint, coalesce(c.dropped, 0)::bigint, coalesce(c.canceled, 0)::bigint,
           (coalesce(c.accepted, 0) - coalesce(c.final, 0))::bigint,
           round(coalesce(c.push_delivered, 0)
                 / nullif(coalesce(c.push_delivered, 0) + coalesce(c.sms_delivered, 0), 0), 4),
           coalesce(c.push_delivered, 0)::bigint,
           lp.push_p50, lp.push_p95, lp.sms_p50, lp.sms_p95
    FROM c
    LEFT JOIN accounts a ON a.id = c.account_id
    LEFT JOIN lp ON coalesce(lp.day, 'infinity') = coalesce(c.day, 'infinity')
                AND coalesce(lp.account_id, 0) = coalesce(c.account_id, 0) AND coalesce(lp.sender, '') = coalesce(c.sender, '')
$$;

--
-- Name: report_outcomes_raw(timestamp with time zone, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_outcomes_raw(p_since timestamp with time zone, p_by text) RETURNS TABLE(day date, account_id bigint, account text, sender text, batch_id bigint, recipients bigint, push_delivered bigint, sms_delivered bigint, failed bigint, opted_out bigint, unknown bigint, dropped bigint, canceled bigint, pending bigint, push_share numeric, sms_saved bigint, push_p50_ms bigint, push_p95_ms bigint, sms_p50_ms bigint, sms_p95_ms bigint)
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN p_by = 'day' THEN x.day END,
           CASE WHEN p_by IN ('account', 'sender', 'day', 'batch') THEN x.account_id END,
           CASE WHEN p_by IN ('account', 'sender', 'day', 'batch') THEN x.account END,
           CASE WHEN p_by IN ('sender', 'day') THEN x.sender END,
           CASE WHEN p_by = 'batch' THEN x.batch_id END,
           count(*),
           count(*) FILTER (WHERE x.outcome = 'push_delivered'),
           count(*) FILTER (WHERE x.outcome = 'sms_delivered'),
           count(*) FILTER (WHERE x.outcome = 'failed'),
           count(*) FILTER (WHERE x.opted_out),
           count(*) FILTER (WHERE x.outcome = 'unknown'),
           count(*) FILTER (WHERE x.outcome = 'dropped'),
           count(*) FILTER (WHERE x.outcome = 'canceled'),
           count(*) FILTER (WHERE x.outcome = 'pending'),
           round(count(*) FILTER (WHERE x.outcome = 'push_delivered')::numeric
                 / nullif(count(*) FILTER (WHERE x.outcome IN ('push_delivered', 'sms_delivered')), 0), 4),
           count(*) FILTER (WHERE x.outcome = 'push_delivered'),
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'push_delivered'))::bigint,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'push_delivered'))::bigint,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint
    FROM report_recipients x
    WHERE x.accepted_at >= p_since
    GROUP BY 1, 2, 3, 4, 5
$$;

--
-- Name: report_rollup(interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_rollup(p_step interval DEFAULT '06:00:00'::interval) RETURNS TABLE(watermark timestamp with time zone, events bigint, behind boolean, blocked text, busy boolean)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    w_from timestamptz;
    w_to timestamptz;
    w_safe timestamptz;
    counted bigint := 0;
    more boolean := false;
BEGIN
    IF NOT pg_has_role('pg_read_all_stats', 'USAGE') THEN
        RETURN QUERY SELECT s.watermark, 0::bigint, false,
            'the role needs pg_read_all_stats to see open transactions'::text, false
            FROM report_rollup_state s WHERE s.id = 1;
        RETURN;
    END IF;
    SELECT s.watermark INTO w_from FROM report_rollup_state s WHERE s.id = 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN QUERY SELECT s.watermark, 0::bigint, false, 'another run is under way'::text, true
            FROM report_rollup_state s WHERE s.id = 1;
        RETURN;
    END IF;
    SELECT min(a.xact_start) INTO w_safe FROM pg_stat_activity a
    WHERE a.backend_type = 'client backend' AND a.datname = current_database();
    w_to := least(w_safe, transaction_timestamp() - interval '1 second');
    IF w_from IS NULL THEN
        SELECT min(m.created_at) INTO w_from FROM messages m;
        w_from := least(coalesce(w_from, w_to), w_to);
    END IF;
    IF w_to > w_from + p_step THEN
        w_to := w_from + p_step;
        more := true;
    END IF;
    IF w_to > w_from THEN
        WITH ev AS MATERIALIZED (
            SELECT e.recipient_id, e.message_id, e.state FROM events e
            WHERE e.at >= w_from AND e.at < w_to AND e.kind = 'state'
              AND (e.state = 'ACCEPTED' OR recipient_final(e.state))),
        x AS MATERIALIZED (
            SELECT date_bin('1 hour', m.created_at, '2000-01-01 00:00:00+00') AS hour, m.account_id, m.sender,
                   ev.state,
                   CASE WHEN ev.state = 'ACCEPTED' THEN '' ELSE coalesce(r.route, '') END AS route,
                   CASE WHEN ev.state = 'ACCEPTED' THEN '' ELSE coalesce(r.channel, '') END AS channel,
                   ev.state <> 'ACCEPTED' AND (ev.state = 'DROPPED' OR (r.channel = 'sms' AND EXISTS (
                       SELECT 1 FROM events o WHERE o.recipient_id = ev.recipient_id AND o.state = 'OPTED_OUT')))
                       AS opted_out,
                   ev.state <> 'ACCEPTED' AND r.push_deadline IS NOT NULL AS push_tried,
                   ev.state <> 'ACCEPTED' AND r.submitted_at IS NOT NULL AS submitted,
                   CASE ev.state WHEN 'PUSH_DELIVERED' THEN 'push' WHEN 'SMS_DELIVERED' THEN 'sms' END AS lat_kind,
                   extract(epoch FROM r.final_at - r.created_at)::float8 * 1000 AS lat_ms,
                   CASE WHEN ev.state = 'SMS_DELIVERED' AND r.submitted_at IS NOT NULL
                        THEN extract(epoch FROM r.final_at - r.submitted_at)::float8 * 1000 END AS receipt_ms
            FROM ev JOIN messages m ON m.id = ev.message_id
            LEFT JOIN recipients r ON r.id = ev.recipient_id AND ev.state <> 'ACCEPTED'),
        -- per UTC hour first (date_bin: plain arithmetic, no time zone per row), the days from those few rows
        xh AS MATERIALIZED (
            SELECT hour, account_id, sender, route, channel, state, opted_out, push_tried, submitted, count(*) AS n
            FROM x GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9),
        xl AS MATERIALIZED (
            SELECT x.hour, x.account_id, x.sender, k.route, k.kind, report_hist_bucket(k.ms) AS bucket, count(*) AS n
            FROM x CROSS JOIN LATERAL (VALUES (x.lat_kind, x.lat_ms, ''), ('receipt', x.receipt_ms, x.route))
                AS k(kind, ms, route)
            WHERE k.kind IS NOT NULL AND k.ms IS NOT NULL
            GROUP BY 1, 2, 3, 4, 5, 6),
        c AS (
            INSERT INTO report_counts AS t (grain, start, account_id, sender, route, channel, state, opted_out,
                                            push_tried, submitted, recipients)
            SELECT 'h', hour, account_id, sender, route, channel, state, opted_out, push_tried, submitted, n FROM xh
            UNION ALL
            SELECT 'd', date_bin('1 day', hour, '2000-01-01 00:00:00+00'), account_id, sender, route, channel, state,
                   opted_out, push_tried, submitted, sum(n)
            FROM xh GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10
            ON CONFLICT (grain, start, account_id, sender, route, channel, state, opted_out, push_tried, submitted)
            DO UPDATE SET recipients = t.recipients + excluded.recipients
            RETURNING 1),
        l AS (
            INSERT INTO report_latency AS t (grain, start, account_id, sender, route, kind, bucket, n)
            SELECT 'h', hour, account_id, sender, route, kind, bucket, n FROM xl
            UNION ALL
            SELECT 'd', date_bin('1 day', hour, '2000-01-01 00:00:00+00'), account_id, sender, route, kind, bucket,
                   sum(n)
            FROM xl GROUP BY 2, 3, 4, 5, 6, 7
            ON CONFLICT (grain, start, account_id, sender, route, kind, bucket)
            DO UPDATE SET n = t.n + excluded.n
            RETURNING 1)
        SELECT count(*) + 0 * ((SELECT count(*) FROM c) + (SELECT count(*) FROM l)) INTO counted FROM x;
        UPDATE report_rollup_state s SET watermark = w_to, updated_at = now(), events = s.events + counted WHERE s.id = 1;
    ELSE
        w_to := w_from;
    END IF;
    RETURN QUERY SELECT w_to, counted, more, NULL::text, false;
END
$$;

--
-- Name: report_routes(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_routes(p_since timestamp with time zone) RETURNS TABLE(route text, recipients bigint, submitted bigint, delivered bigint, failed bigint, unknown bigint, pending bigint, delivery_rate numeric, receipt_p50_ms bigint, receipt_p95_ms bigint)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    WITH f AS (
        SELECT c.route, sum(c.recipients) AS recipients,
               sum(c.recipients) FILTER (WHERE c.submitted) AS submitted,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_DELIVERED') AS delivered,
               sum(c.recipients) FILTER (WHERE c.state IN ('SMS_FAILED', 'SMS_EXPIRED')) AS failed,
               sum(c.recipients) FILTER (WHERE c.state = 'SMS_UNKNOWN') AS unknown
        FROM report_counts_in(p_since) c
        WHERE c.channel = 'sms' AND c.route <> '' AND c.state <> 'ACCEPTED'
        GROUP BY 1),
    -- the SMS on their way, through their states' partial indexes (small), then their messages from the
    -- hour of p_since, a value the planner sees (by key over a long window, messages_created over a short one)
    p AS (
        SELECT r.route, count(*) AS pending, count(*) FILTER (WHERE r.submitted_at IS NOT NULL) AS submitted
        FROM (SELECT message_id, route, submitted_at FROM recipients
                WHERE state = 'SMS_QUEUED' AND channel = 'sms' AND route IS NOT NULL
              UNION ALL
              SELECT message_id, route, submitted_at FROM recipients
                WHERE state = 'SMS_SUBMITTED' AND channel = 'sms' AND route IS NOT NULL
              UNION ALL
              SELECT message_id, route, submitted_at FROM recipients
                WHERE state = 'SMS_ACCEPTED' AND channel = 'sms' AND route IS NOT NULL) r
        JOIN messages m ON m.id = r.message_id
        WHERE m.created_at >= date_trunc('hour', p_since, 'UTC')
        GROUP BY 1),
    lc AS (
        SELECT x.*, sum(x.n) OVER (PARTITION BY x.route ORDER BY x.bucket) AS cum,
               sum(x.n) OVER (PARTITION BY x.route) AS total
        FROM (SELECT l.route, l.bucket, sum(l.n)::float8 AS n
              FROM report_latency_in(p_since) l
              WHERE l.kind = 'receipt'
              GROUP BY 1, 2) x),
    l AS (
        SELECT route,
               max(report_hist_at(bucket, (0.5 * total - (cum - n)) / n))
                   FILTER (WHERE cum >= 0.5 * total AND cum - n < 0.5 * total) AS p50,
               max(report_hist_at(bucket, (0.95 * total - (cum - n)) / n))
                   FILTER (WHERE cum >= 0.95 * total AND cum - n < 0.95 * total) AS p95
        FROM lc GROUP BY 1)
    SELECT k.route,
           (coalesce(f.recipients, 0) + coalesce(p.pending, 0))::bigint,
           (coalesce(f.submitted, 0) + coalesce(p.submitted, 0))::bigint,
           coalesce(f.delivered, 0)::bigint, coalesce(f.failed, 0)::bigint, coalesce(f.unknown, 0)::bigint,
           coalesce(p.pending, 0)::bigint,
           round(coalesce(f.delivered, 0)::numeric
                 / nullif(coalesce(f.delivered, 0) + coalesce(f.failed, 0) + coalesce(f.unknown, 0), 0), 4),
           l.p50, l.p95
    FROM (SELECT route FROM f UNION SELECT route FROM p) k
    LEFT JOIN f ON f.route = k.route
    LEFT JOIN p ON p.route = k.route
    LEFT JOIN l ON l.route = k.route
$$;

--
-- Name: report_routes_raw(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.report_routes_raw(p_since timestamp with time zone) RETURNS TABLE(route text, recipients bigint, submitted bigint, delivered bigint, failed bigint, unknown bigint, pending bigint, delivery_rate numeric, receipt_p50_ms bigint, receipt_p95_ms bigint)
    LANGUAGE sql STABLE
    AS $$
    SELECT x.route, count(*),
           count(*) FILTER (WHERE x.submitted_at IS NOT NULL),
           count(*) FILTER (WHERE x.outcome = 'sms_delivered'),
           count(*) FILTER (WHERE x.outcome = 'failed'),
           count(*) FILTER (WHERE x.outcome = 'unknown'),
           count(*) FILTER (WHERE x.outcome = 'pending'),
           round(count(*) FILTER (WHERE x.outcome = 'sms_delivered')::numeric
                 / nullif(count(*) FILTER (WHERE x.outcome IN ('sms_delivered', 'failed', 'unknown')), 0), 4),
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.receipt_latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY x.receipt_latency_ms) FILTER (WHERE x.outcome = 'sms_delivered'))::bigint
    FROM report_recipients x
    WHERE x.accepted_at >= p_since AND x.channel = 'sms' AND x.route IS NOT NULL
    GROUP BY x.route
$$;

--
-- Name: smpp_outbox_fill(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.smpp_outbox_fill() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    SELECT min(message_id), max(message_id) INTO lo, hi FROM new_events;
    IF lo IS NULL OR NOT EXISTS (SELECT 1 FROM messages WHERE smpp_account_id IS NOT NULL AND id BETWEEN lo AND hi) THEN
        RETURN NULL;
    END IF;
    INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, recipient_id, state, registered, error_code,
                             source_addr, dest_addr, body, submitted_at, done_at)
    SELECT m.smpp_account_id, m.account_id, 'receipt', e.recipient_id, e.state, m.smpp_registered, r.error_code,
           r.msisdn, m.sender, left(coalesce(r.text, m.body), 20), r.created_at, e.at
    FROM new_events e
    CROSS JOIN LATERAL (SELECT x.smpp_account_id, x.account_id, x.smpp_registered, x.sender, x.body FROM messages x
                        WHERE x.id = e.message_id OFFSET 0) m
    CROSS JOIN LATERAL (SELECT x.error_code, x.msisdn, x.text, x.created_at FROM recipients x
                        WHERE x.id = e.recipient_id OFFSET 0) r
    WHERE m.smpp_account_id IS NOT NULL AND e.kind = 'state' AND m.smpp_registered & 3 <> 0
      AND recipient_final(e.state)
    ORDER BY e.id
    ON CONFLICT (recipient_id) WHERE kind = 'receipt' DO NOTHING;
    RETURN NULL;
END $$;

--
-- Name: url_host(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.url_host(u text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT lower(substring(u FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]/]*\]|[^/:?#]*)'))
$$;

--
-- Name: url_host_allowed(text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.url_host_allowed(u text, hosts text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT u IS NULL OR EXISTS (SELECT 1 FROM unnest(hosts) h, url_host(u) x(host)
                                WHERE x.host <> '' AND (x.host = lower(h) OR (h LIKE '.%' AND x.host LIKE '%' || lower(h))))
$$;

--
-- Name: webhook_outbox_fill(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_outbox_fill() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM accounts WHERE webhook_url IS NOT NULL) THEN
        SELECT min(message_id), max(message_id) INTO lo, hi FROM new_events;
        IF lo IS NULL OR NOT EXISTS (SELECT 1 FROM messages WHERE callback_url IS NOT NULL AND id BETWEEN lo AND hi) THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO webhook_outbox (account_id, url, event_id, recipient_id, message_id, payload)
    SELECT e.account_id, u.url, e.id, e.recipient_id, e.message_id,
           jsonb_build_object('event_id', e.id, 'message_id', e.message_id, 'recipient_id', e.recipient_id,
                              'to', r.msisdn, 'kind', e.kind, 'state', e.state, 'at', e.at,
                              'channel', r.channel, 'route', e.route, 'smsc_id', e.smsc_id,
                              'error_code', e.error_code, 'detail', e.detail,
                              'batch_id', m.batch_id)
    FROM new_events e
    CROSS JOIN LATERAL (SELECT x.callback_url, x.batch_id, x.account_id FROM messages x
                        WHERE x.id = e.message_id OFFSET 0) m
    CROSS JOIN LATERAL (SELECT x.webhook_url FROM accounts x WHERE x.id = m.account_id OFFSET 0) a
    LEFT JOIN LATERAL (SELECT x.msisdn, x.channel FROM recipients x WHERE x.id = e.recipient_id OFFSET 0) r ON true
    CROSS JOIN LATERAL (SELECT DISTINCT x.url FROM (VALUES (m.callback_url), (a.webhook_url)) AS x(url)
                        WHERE x.url IS NOT NULL) u
    WHERE e.recipient_id IS NOT NULL
    ORDER BY e.id;
    RETURN NULL;
END $$;

--
-- Name: account_rate; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.account_rate (
    account_id bigint NOT NULL,
    minute timestamp with time zone NOT NULL,
    cur bigint NOT NULL,
    prev bigint NOT NULL
);

--
-- Name: account_senders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.account_senders (
    account_id bigint NOT NULL,
    sender text NOT NULL,
    approved_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: account_usage; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.account_usage (
    account_id bigint NOT NULL,
    day date NOT NULL,
    recipients bigint DEFAULT 0 NOT NULL
);

--
-- Name: accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.accounts (
    id bigint NOT NULL,
    name text NOT NULL,
    api_key_hash bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled boolean DEFAULT false NOT NULL,
    role text DEFAULT 'client'::text NOT NULL,
    opt_out_policy text DEFAULT 'sms'::text NOT NULL,
    webhook_url text,
    webhook_secret text,
    ad_night_consent boolean DEFAULT false NOT NULL,
    auth_sms_first boolean DEFAULT false NOT NULL,
    opt_out_number text,
    rate_limit integer DEFAULT 0 NOT NULL,
    daily_quota bigint DEFAULT 0 NOT NULL,
    monthly_quota bigint DEFAULT 0 NOT NULL,
    balance bigint,
    senders_listed boolean DEFAULT true NOT NULL,
    prev_key_hash bytea,
    prev_key_until timestamp with time zone,
    url_hosts text[],
    request_limit integer DEFAULT 0 NOT NULL,
    CONSTRAINT accounts_balance_check CHECK ((balance >= 0)),
    CONSTRAINT accounts_daily_quota_check CHECK ((daily_quota >= 0)),
    CONSTRAINT accounts_monthly_quota_check CHECK ((monthly_quota >= 0)),
    CONSTRAINT accounts_opt_out_policy_check CHECK ((opt_out_policy = ANY (ARRAY['sms'::text, 'drop'::text]))),
    CONSTRAINT accounts_rate_limit_check CHECK ((rate_limit >= 0)),
    CONSTRAINT accounts_request_limit_check CHECK ((request_limit >= 0)),
    CONSTRAINT accounts_role_check CHECK ((role = ANY (ARRAY['client'::text, 'operator'::text, 'system'::text])))
);

--
-- Name: accounts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.accounts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: accounts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.accounts_id_seq OWNED BY public.accounts.id;

--
-- Name: batches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.batches (
    id bigint NOT NULL,
    account_id bigint NOT NULL,
    name text,
    state text DEFAULT 'LOADING'::text NOT NULL,
    total integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    loaded_at timestamp with time zone,
    canceled_at timestamp with time zone,
    error text,
    done_at timestamp with time zone,
    CONSTRAINT batches_state_check CHECK ((state = ANY (ARRAY['LOADING'::text, 'RUNNING'::text, 'DONE'::text, 'CANCELED'::text, 'FAILED'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: batches_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.batches_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: batches_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.batches_id_seq OWNED BY public.batches.id;

--
-- Name: code_sms_daily; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.code_sms_daily (
    day date NOT NULL,
    sent integer NOT NULL
);

--
-- Name: code_sms_pending; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.code_sms_pending (
    recipient_id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: device_wakeups; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.device_wakeups (
    device_id bigint NOT NULL,
    kind text NOT NULL,
    endpoint text NOT NULL,
    p256dh bytea,
    auth bytea,
    app text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    revoked_why text,
    CONSTRAINT device_wakeups_check CHECK (((kind <> 'webpush'::text) OR ((octet_length(p256dh) = 65) AND (octet_length(auth) = 16)))),
    CONSTRAINT device_wakeups_kind_check CHECK ((kind = ANY (ARRAY['webpush'::text, 'fcm'::text, 'apns'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: devices; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.devices (
    id bigint NOT NULL,
    msisdn text NOT NULL,
    platform text DEFAULT ''::text NOT NULL,
    token_hash bytea,
    code_hash bytea,
    code_expires_at timestamp with time zone,
    code_attempts integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    verified_at timestamp with time zone,
    revoked_at timestamp with time zone,
    last_seen_at timestamp with time zone,
    socket_node text
);

--
-- Name: devices_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.devices_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: devices_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.devices_id_seq OWNED BY public.devices.id;

--
-- Name: dlr_parked; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dlr_parked (
    id bigint NOT NULL,
    route text NOT NULL,
    smsc_id text NOT NULL,
    state text NOT NULL,
    error_code integer,
    detail text,
    received_at timestamp with time zone DEFAULT now() NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: dlr_orphans; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.dlr_orphans AS
 SELECT dlr_parked.id,
    dlr_parked.route,
    dlr_parked.smsc_id,
    dlr_parked.state,
    dlr_parked.error_code,
    dlr_parked.detail,
    dlr_parked.received_at
   FROM public.dlr_parked
  WHERE (dlr_parked.received_at < (now() - '00:01:00'::interval));

--
-- Name: dlr_parked_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dlr_parked_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: dlr_parked_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dlr_parked_id_seq OWNED BY public.dlr_parked.id;

--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id bigint NOT NULL,
    recipient_id bigint NOT NULL,
    message_id bigint,
    account_id bigint,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    kind text DEFAULT 'state'::text NOT NULL,
    state text,
    route text,
    smsc_id text,
    error_code integer,
    detail text
)
PARTITION BY RANGE (recipient_id);

--
-- Name: events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.events_id_seq OWNED BY public.events.id;

--
-- Name: events_1; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events_1 (
    id bigint DEFAULT nextval('public.events_id_seq'::regclass) NOT NULL,
    recipient_id bigint NOT NULL,
    message_id bigint,
    account_id bigint,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    kind text DEFAULT 'state'::text NOT NULL,
    state text,
    route text,
    smsc_id text,
    error_code integer,
    detail text
)
WITH (autovacuum_vacuum_insert_scale_factor='0.05', autovacuum_vacuum_insert_threshold='10000', autovacuum_analyze_scale_factor='0.05');

--
-- Name: history_ranges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.history_ranges (
    lo bigint NOT NULL,
    hi bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    issued bigint NOT NULL,
    outboxes_cleared_at timestamp with time zone,
    CONSTRAINT history_ranges_check CHECK ((hi > lo))
);

--
-- Name: TABLE history_ranges; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.history_ranges IS 'recipient id ranges [lo, hi) of the history partitions: recipients_<n>, sms_parts_<n>, events_<n>; issued: recipients_id_seq when the range was made (sizing)';

--
-- Name: COLUMN history_ranges.outboxes_cleared_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.history_ranges.outboxes_cleared_at IS 'when the range''s outbox partitions were emptied (retention class outbox)';

--
-- Name: history_tables; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.history_tables (
    name text NOT NULL,
    key text NOT NULL,
    reloptions text[],
    ord integer NOT NULL,
    own_key text,
    class text DEFAULT 'history'::text NOT NULL,
    CONSTRAINT history_tables_class_check CHECK ((class = ANY (ARRAY['history'::text, 'outbox'::text])))
);

--
-- Name: TABLE history_tables; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.history_tables IS 'the tables partitioned by recipient id range, their partition key and the storage options each new partition gets';

--
-- Name: COLUMN history_tables.own_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.history_tables.own_key IS 'each partition''s own primary key column (a key of the parent would have to hold the partition key)';

--
-- Name: COLUMN history_tables.class; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.history_tables.class IS 'retention class: history ([retention] history_days) or outbox (outbox_days)';

--
-- Name: invitations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.invitations (
    msisdn text NOT NULL,
    last_sent_at timestamp with time zone NOT NULL,
    sent integer DEFAULT 1 NOT NULL
);

--
-- Name: message_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.message_keys (
    account_id bigint NOT NULL,
    key text NOT NULL,
    message_id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: TABLE message_keys; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.message_keys IS 'idempotency keys: the message each (account, key) stored; kept [retention] history_days';

--
-- Name: message_ranges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.message_ranges (
    lo bigint NOT NULL,
    hi bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    issued bigint NOT NULL,
    CONSTRAINT message_ranges_check CHECK ((hi > lo))
);

--
-- Name: TABLE message_ranges; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.message_ranges IS 'message id ranges [lo, hi) of the partitions messages_<lo>; issued: messages_id_seq when the range was made (sizing)';

--
-- Name: messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.messages (
    id bigint NOT NULL,
    account_id bigint NOT NULL,
    sender text NOT NULL,
    body text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    channels text[] DEFAULT '{push,sms}'::text[] NOT NULL,
    push_timeout double precision,
    sms_text text,
    purpose text DEFAULT 'NORMAL'::text NOT NULL,
    send_at timestamp with time zone,
    validity double precision,
    opt_out_policy text,
    callback_url text,
    batch_id bigint,
    idempotency_key text,
    dlr_url text,
    dlr_mask integer,
    smpp_account_id bigint,
    smpp_registered smallint,
    CONSTRAINT messages_opt_out_policy_check CHECK ((opt_out_policy = ANY (ARRAY['sms'::text, 'drop'::text]))),
    CONSTRAINT messages_purpose_check CHECK ((purpose = ANY (ARRAY['NORMAL'::text, 'AUTH'::text, 'AD'::text])))
)
PARTITION BY RANGE (id);

--
-- Name: messages_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.messages_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: messages_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.messages_id_seq OWNED BY public.messages.id;

--
-- Name: messages_1; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.messages_1 (
    id bigint DEFAULT nextval('public.messages_id_seq'::regclass) NOT NULL,
    account_id bigint NOT NULL,
    sender text NOT NULL,
    body text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    channels text[] DEFAULT '{push,sms}'::text[] NOT NULL,
    push_timeout double precision,
    sms_text text,
    purpose text DEFAULT 'NORMAL'::text NOT NULL,
    send_at timestamp with time zone,
    validity double precision,
    opt_out_policy text,
    callback_url text,
    batch_id bigint,
    idempotency_key text,
    dlr_url text,
    dlr_mask integer,
    smpp_account_id bigint,
    smpp_registered smallint,
    CONSTRAINT messages_opt_out_policy_check CHECK ((opt_out_policy = ANY (ARRAY['sms'::text, 'drop'::text]))),
    CONSTRAINT messages_purpose_check CHECK ((purpose = ANY (ARRAY['NORMAL'::text, 'AUTH'::text, 'AD'::text])))
)
WITH (autovacuum_vacuum_insert_scale_factor='0.05', autovacuum_vacuum_insert_threshold='10000', autovacuum_analyze_scale_factor='0.05');

--
-- Name: mo_messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.mo_messages (
    id bigint NOT NULL,
    route text,
    source_addr text NOT NULL,
    dest_addr text NOT NULL,
    body text NOT NULL,
    data_coding smallint,
    smpp_account_id bigint,
    account_id bigint,
    opt_out boolean DEFAULT false NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: mo_messages_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.mo_messages_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: mo_messages_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.mo_messages_id_seq OWNED BY public.mo_messages.id;

--
-- Name: opt_out_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.opt_out_log (
    id bigint NOT NULL,
    msisdn text NOT NULL,
    sender text NOT NULL,
    action text NOT NULL,
    source text NOT NULL,
    device_id bigint,
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT opt_out_log_action_check CHECK ((action = ANY (ARRAY['reject'::text, 'allow'::text])))
);

--
-- Name: opt_out_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.opt_out_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: opt_out_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.opt_out_log_id_seq OWNED BY public.opt_out_log.id;

--
-- Name: opt_outs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.opt_outs (
    msisdn text NOT NULL,
    sender text NOT NULL,
    source text NOT NULL,
    device_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: recipients; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.recipients (
    id bigint NOT NULL,
    message_id bigint NOT NULL,
    account_id bigint NOT NULL,
    msisdn text NOT NULL,
    state text NOT NULL,
    channel text,
    route text,
    smsc_id text,
    error_code integer,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone DEFAULT (now() + '1 day'::interval) NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    submitted_at timestamp with time zone,
    final_at timestamp with time zone,
    parts integer,
    push_deadline timestamp with time zone,
    device_id bigint,
    release_at timestamp with time zone,
    batch_id bigint,
    text text,
    CONSTRAINT recipients_state_check CHECK ((state = ANY (ARRAY['ACCEPTED'::text, 'SCHEDULED'::text, 'HELD'::text, 'PUSH_SENT'::text, 'PUSH_DELIVERED'::text, 'OPTED_OUT'::text, 'DROPPED'::text, 'CANCELED'::text, 'SMS_QUEUED'::text, 'SMS_SUBMITTED'::text, 'SMS_ACCEPTED'::text, 'SMS_DELIVERED'::text, 'SMS_FAILED'::text, 'SMS_EXPIRED'::text, 'SMS_UNKNOWN'::text])))
)
PARTITION BY RANGE (id);

--
-- Name: recipients_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.recipients_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: recipients_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.recipients_id_seq OWNED BY public.recipients.id;

--
-- Name: recipients_1; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.recipients_1 (
    id bigint DEFAULT nextval('public.recipients_id_seq'::regclass) NOT NULL,
    message_id bigint NOT NULL,
    account_id bigint NOT NULL,
    msisdn text NOT NULL,
    state text NOT NULL,
    channel text,
    route text,
    smsc_id text,
    error_code integer,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone DEFAULT (now() + '1 day'::interval) NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    submitted_at timestamp with time zone,
    final_at timestamp with time zone,
    parts integer,
    push_deadline timestamp with time zone,
    device_id bigint,
    release_at timestamp with time zone,
    batch_id bigint,
    text text,
    CONSTRAINT recipients_state_check CHECK ((state = ANY (ARRAY['ACCEPTED'::text, 'SCHEDULED'::text, 'HELD'::text, 'PUSH_SENT'::text, 'PUSH_DELIVERED'::text, 'OPTED_OUT'::text, 'DROPPED'::text, 'CANCELED'::text, 'SMS_QUEUED'::text, 'SMS_SUBMITTED'::text, 'SMS_ACCEPTED'::text, 'SMS_DELIVERED'::text, 'SMS_FAILED'::text, 'SMS_EXPIRED'::text, 'SMS_UNKNOWN'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.02', autovacuum_vacuum_threshold='10000', autovacuum_analyze_scale_factor='0.02', autovacuum_analyze_threshold='10000', autovacuum_vacuum_cost_limit='1000');

--
-- Name: report_by_batch; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.report_by_batch AS
 SELECT report_outcomes_raw.batch_id,
    report_outcomes_raw.account_id,
    report_outcomes_raw.account,
    report_outcomes_raw.recipients,
    report_outcomes_raw.push_delivered,
    report_outcomes_raw.sms_delivered,
    report_outcomes_raw.failed,
    report_outcomes_raw.opted_out,
    report_outcomes_raw.unknown,
    report_outcomes_raw.dropped,
    report_outcomes_raw.canceled,
    report_outcomes_raw.pending,
    report_outcomes_raw.push_share,
    report_outcomes_raw.sms_saved,
    report_outcomes_raw.push_p50_ms,
    report_outcomes_raw.push_p95_ms,
    report_outcomes_raw.sms_p50_ms,
    report_outcomes_raw.sms_p95_ms
   FROM public.report_outcomes_raw('-infinity'::timestamp with time zone, 'batch'::text) report_outcomes_raw(day, account_id, account, sender, batch_id, recipients, push_delivered, sms_delivered, failed, opted_out, unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms)
  WHERE (report_outcomes_raw.batch_id IS NOT NULL);

--
-- Name: report_by_batch_state; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.report_by_batch_state AS
 SELECT recipients.batch_id,
    recipients.state,
    count(*) AS recipients
   FROM public.recipients
  WHERE (recipients.batch_id IS NOT NULL)
  GROUP BY recipients.batch_id, recipients.state;

--
-- Name: report_recipients; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.report_recipients AS
 SELECT r.id AS recipient_id,
    r.message_id,
    m.account_id,
    a.name AS account,
    m.sender,
    r.batch_id,
    m.created_at AS accepted_at,
    ((m.created_at AT TIME ZONE 'UTC'::text))::date AS day,
    r.route,
    r.channel,
    r.state,
        CASE r.state
            WHEN 'PUSH_DELIVERED'::text THEN 'push_delivered'::text
            WHEN 'SMS_DELIVERED'::text THEN 'sms_delivered'::text
            WHEN 'SMS_FAILED'::text THEN 'failed'::text
            WHEN 'SMS_EXPIRED'::text THEN 'failed'::text
            WHEN 'SMS_UNKNOWN'::text THEN 'unknown'::text
            WHEN 'DROPPED'::text THEN 'dropped'::text
            WHEN 'CANCELED'::text THEN 'canceled'::text
            ELSE 'pending'::text
        END AS outcome,
    ((r.state = 'DROPPED'::text) OR ((r.channel = 'sms'::text) AND (EXISTS ( SELECT 1
           FROM public.events e
          WHERE ((e.recipient_id = r.id) AND (e.state = 'OPTED_OUT'::text)))))) AS opted_out,
    (r.push_deadline IS NOT NULL) AS push_tried,
    r.created_at,
    r.submitted_at,
    r.final_at,
        CASE
            WHEN (r.state = ANY (ARRAY['PUSH_DELIVERED'::text, 'SMS_DELIVERED'::text])) THEN ((EXTRACT(epoch FROM (r.final_at - r.created_at)))::double precision * (1000)::double precision)
            ELSE NULL::double precision
        END AS latency_ms,
        CASE
            WHEN ((r.state = ANY (ARRAY['SMS_DELIVERED'::text, 'SMS_FAILED'::text, 'SMS_EXPIRED'::text])) AND (r.submitted_at IS NOT NULL)) THEN ((EXTRACT(epoch FROM (r.final_at - r.submitted_at)))::double precision * (1000)::double precision)
            ELSE NULL::double precision
        END AS receipt_latency_ms
   FROM ((public.recipients r
     JOIN public.messages m ON ((m.id = r.message_id)))
     JOIN public.accounts a ON ((a.id = m.account_id)));

--
-- Name: report_by_channel; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.report_by_channel AS
 SELECT x.day,
    x.account_id,
    x.account,
    c.channel,
    count(*) AS recipients,
    count(*) FILTER (WHERE (c.result = 'delivered'::text)) AS delivered,
    count(*) FILTER (WHERE (c.result = 'failed'::text)) AS failed,
    count(*) FILTER (WHERE (c.result = 'unknown'::text)) AS unknown,
    count(*) FILTER (WHERE (c.result = 'fell_back'::text)) AS fell_back,
    count(*) FILTER (WHERE (c.result = 'pending'::text)) AS pending,
    round(((count(*) FILTER (WHERE (c.result = 'delivered'::text)))::numeric / (NULLIF(count(*) FILTER (WHERE (c.result <> 'pending'::text)), 0))::numeric), 4) AS success_rate,
    (round(percentile_cont((0.5)::double precision) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE (c.result = 'delivered'::text))))::bigint AS p50_ms,
    (round(percentile_cont((0.95)::double precision) WITHIN GROUP (ORDER BY x.latency_ms) FILTER (WHERE (c.result = 'delivered'::text))))::bigint AS p95_ms
   FROM (public.report_recipients x
     CROSS JOIN LATERAL ( VALUES ('push'::text,
                CASE
                    WHEN (NOT x.push_tried) THEN NULL::text
                    WHEN (x.state = 'PUSH_DELIVERED'::text) THEN 'delivered'::text
                    WHEN (x.state = 'PUSH_SENT'::text) THEN 'pending'::text
                    ELSE 'fell_back'::text
                END), ('sms'::text,
                CASE
                    WHEN (x.channel IS DISTINCT FROM 'sms'::text) THEN NULL::text
                    WHEN (x.outcome = 'sms_delivered'::text) THEN 'delivered'::text
                    WHEN (x.outcome = ANY (ARRAY['failed'::text, 'unknown'::text])) THEN x.outcome
                    ELSE x.outcome
                END)) c(channel, result))
  WHERE (c.result IS NOT NULL)
  GROUP BY x.day, x.account_id, x.account, c.channel;

--
-- Name: report_by_day; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.report_by_day AS
 SELECT report_outcomes.day,
    report_outcomes.account_id,
    report_outcomes.account,
    report_outcomes.sender,
    report_outcomes.recipients,
    report_outcomes.push_delivered,
    report_outcomes.sms_delivered,
    report_outcomes.failed,
    report_outcomes.opted_out,
    report_outcomes.unknown,
    report_outcomes.dropped,
    report_outcomes.canceled,
    report_outcomes.pending,
    report_outcomes.push_share,
    report_outcomes.sms_saved,
    report_outcomes.push_p50_ms,
    report_outcomes.push_p95_ms,
    report_outcomes.sms_p50_ms,
    report_outcomes.sms_p95_ms
   FROM public.report_outcomes('-infinity'::timestamp with time zone, 'day'::text) report_outcomes(day, account_id, account, sender, batch_id, recipients, push_delivered, sms_delivered, failed, opted_out, unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms);

--
-- Name: report_by_route; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.report_by_route AS
 SELECT report_routes.route,
    report_routes.recipients,
    report_routes.submitted,
    report_routes.delivered,
    report_routes.failed,
    report_routes.unknown,
    report_routes.pending,
    report_routes.delivery_rate,
    report_routes.receipt_p50_ms,
    report_routes.receipt_p95_ms
   FROM public.report_routes('-infinity'::timestamp with time zone) report_routes(route, recipients, submitted, delivered, failed, unknown, pending, delivery_rate, receipt_p50_ms, receipt_p95_ms);

--
-- Name: report_by_sender; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.report_by_sender AS
 SELECT report_outcomes.account_id,
    report_outcomes.account,
    report_outcomes.sender,
    report_outcomes.recipients,
    report_outcomes.push_delivered,
    report_outcomes.sms_delivered,
    report_outcomes.failed,
    report_outcomes.opted_out,
    report_outcomes.unknown,
    report_outcomes.dropped,
    report_outcomes.canceled,
    report_outcomes.pending,
    report_outcomes.push_share,
    report_outcomes.sms_saved,
    report_outcomes.push_p50_ms,
    report_outcomes.push_p95_ms,
    report_outcomes.sms_p50_ms,
    report_outcomes.sms_p95_ms
   FROM public.report_outcomes('-infinity'::timestamp with time zone, 'sender'::text) report_outcomes(day, account_id, account, sender, batch_id, recipients, push_delivered, sms_delivered, failed, opted_out, unknown, dropped, canceled, pending, push_share, sms_saved, push_p50_ms, push_p95_ms, sms_p50_ms, sms_p95_ms);

--
-- Name: report_rollup_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.report_rollup_state (
    id integer NOT NULL,
    watermark timestamp with time zone,
    updated_at timestamp with time zone,
    events bigint DEFAULT 0 NOT NULL,
    CONSTRAINT report_rollup_state_id_check CHECK ((id = 1))
);

--
-- Name: route_pauses; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.route_pauses (
    route text NOT NULL,
    paused_at timestamp with time zone DEFAULT now() NOT NULL,
    reason text
);

--
-- Name: schema_functions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_functions (
    name text NOT NULL,
    md5 text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: schema_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_version (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: smpp_accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.smpp_accounts (
    id bigint NOT NULL,
    account_id bigint NOT NULL,
    system_id text NOT NULL,
    password_hash text NOT NULL,
    max_binds integer DEFAULT 4 NOT NULL,
    window_size integer DEFAULT 100 NOT NULL,
    tps double precision DEFAULT 0 NOT NULL,
    allowed_sources cidr[],
    mo_addresses text[],
    disabled boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT smpp_accounts_max_binds_check CHECK (((max_binds >= 1) AND (max_binds <= 1000))),
    CONSTRAINT smpp_accounts_system_id_check CHECK (((length(system_id) >= 1) AND (length(system_id) <= 15))),
    CONSTRAINT smpp_accounts_tps_check CHECK ((tps >= (0)::double precision)),
    CONSTRAINT smpp_accounts_window_size_check CHECK (((window_size >= 1) AND (window_size <= 10000)))
);

--
-- Name: smpp_accounts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.smpp_accounts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: smpp_accounts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.smpp_accounts_id_seq OWNED BY public.smpp_accounts.id;

--
-- Name: smpp_binds; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.smpp_binds (
    node text NOT NULL,
    route text NOT NULL,
    bind text NOT NULL,
    state text NOT NULL,
    window_used integer DEFAULT 0 NOT NULL,
    window_size integer DEFAULT 0 NOT NULL,
    submits bigint DEFAULT 0 NOT NULL,
    resp_ok bigint DEFAULT 0 NOT NULL,
    resp_temp bigint DEFAULT 0 NOT NULL,
    resp_perm bigint DEFAULT 0 NOT NULL,
    timeouts bigint DEFAULT 0 NOT NULL,
    receipts bigint DEFAULT 0 NOT NULL,
    receipts_delivered bigint DEFAULT 0 NOT NULL,
    receipts_failed bigint DEFAULT 0 NOT NULL,
    throttled bigint DEFAULT 0 NOT NULL,
    reconnects bigint DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: smpp_outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.smpp_outbox (
    id bigint NOT NULL,
    smpp_account_id bigint NOT NULL,
    account_id bigint NOT NULL,
    kind text NOT NULL,
    recipient_id bigint,
    state text,
    registered smallint,
    error_code integer,
    source_addr text NOT NULL,
    dest_addr text NOT NULL,
    body text,
    submitted_at timestamp with time zone,
    done_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    delivered_at timestamp with time zone,
    CONSTRAINT smpp_outbox_kind_check CHECK ((kind = ANY (ARRAY['receipt'::text, 'mo'::text])))
)
PARTITION BY RANGE (recipient_id);

--
-- Name: smpp_outbox_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.smpp_outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: smpp_outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.smpp_outbox_id_seq OWNED BY public.smpp_outbox.id;

--
-- Name: smpp_outbox_1; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.smpp_outbox_1 (
    id bigint DEFAULT nextval('public.smpp_outbox_id_seq'::regclass) NOT NULL,
    smpp_account_id bigint NOT NULL,
    account_id bigint NOT NULL,
    kind text NOT NULL,
    recipient_id bigint,
    state text,
    registered smallint,
    error_code integer,
    source_addr text NOT NULL,
    dest_addr text NOT NULL,
    body text,
    submitted_at timestamp with time zone,
    done_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    delivered_at timestamp with time zone,
    CONSTRAINT smpp_outbox_kind_check CHECK ((kind = ANY (ARRAY['receipt'::text, 'mo'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: smpp_outbox_other; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.smpp_outbox_other (
    id bigint DEFAULT nextval('public.smpp_outbox_id_seq'::regclass) NOT NULL,
    smpp_account_id bigint NOT NULL,
    account_id bigint NOT NULL,
    kind text NOT NULL,
    recipient_id bigint,
    state text,
    registered smallint,
    error_code integer,
    source_addr text NOT NULL,
    dest_addr text NOT NULL,
    body text,
    submitted_at timestamp with time zone,
    done_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    delivered_at timestamp with time zone,
    CONSTRAINT smpp_outbox_kind_check CHECK ((kind = ANY (ARRAY['receipt'::text, 'mo'::text]))),
    CONSTRAINT smpp_outbox_other_no_recipient CHECK ((recipient_id IS NULL))
);

--
-- Name: sms_parts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sms_parts (
    recipient_id bigint NOT NULL,
    part_no integer NOT NULL,
    account_id bigint NOT NULL,
    route text NOT NULL,
    smsc_id text NOT NULL,
    state text NOT NULL,
    error_code integer,
    accepted_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sms_parts_state_check CHECK ((state = ANY (ARRAY['SMS_ACCEPTED'::text, 'SMS_DELIVERED'::text, 'SMS_FAILED'::text, 'SMS_EXPIRED'::text])))
)
PARTITION BY RANGE (recipient_id);

--
-- Name: sms_parts_1; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sms_parts_1 (
    recipient_id bigint NOT NULL,
    part_no integer NOT NULL,
    account_id bigint NOT NULL,
    route text NOT NULL,
    smsc_id text NOT NULL,
    state text NOT NULL,
    error_code integer,
    accepted_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sms_parts_state_check CHECK ((state = ANY (ARRAY['SMS_ACCEPTED'::text, 'SMS_DELIVERED'::text, 'SMS_FAILED'::text, 'SMS_EXPIRED'::text])))
)
WITH (fillfactor='50', autovacuum_vacuum_scale_factor='0.02', autovacuum_vacuum_threshold='10000', autovacuum_analyze_scale_factor='0.02', autovacuum_analyze_threshold='10000', autovacuum_vacuum_cost_limit='1000');

--
-- Name: wakes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.wakes (
    recipient_id bigint NOT NULL,
    device_id bigint NOT NULL,
    node text NOT NULL,
    kind text NOT NULL,
    claimed_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    status integer,
    done_at timestamp with time zone
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: webhook_outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_outbox (
    id bigint NOT NULL,
    account_id bigint NOT NULL,
    url text NOT NULL,
    event_id bigint NOT NULL,
    recipient_id bigint,
    message_id bigint,
    payload jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    delivered_at timestamp with time zone,
    given_up_at timestamp with time zone,
    last_error text,
    method text DEFAULT 'POST'::text NOT NULL,
    CONSTRAINT webhook_outbox_method_check CHECK ((method = ANY (ARRAY['POST'::text, 'GET'::text])))
)
PARTITION BY RANGE (recipient_id);

--
-- Name: webhook_outbox_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.webhook_outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: webhook_outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.webhook_outbox_id_seq OWNED BY public.webhook_outbox.id;

--
-- Name: webhook_outbox_1; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_outbox_1 (
    id bigint DEFAULT nextval('public.webhook_outbox_id_seq'::regclass) NOT NULL,
    account_id bigint NOT NULL,
    url text NOT NULL,
    event_id bigint NOT NULL,
    recipient_id bigint,
    message_id bigint,
    payload jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    delivered_at timestamp with time zone,
    given_up_at timestamp with time zone,
    last_error text,
    method text DEFAULT 'POST'::text NOT NULL,
    CONSTRAINT webhook_outbox_method_check CHECK ((method = ANY (ARRAY['POST'::text, 'GET'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.05', autovacuum_vacuum_threshold='1000');

--
-- Name: webhook_outbox_other; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_outbox_other (
    id bigint DEFAULT nextval('public.webhook_outbox_id_seq'::regclass) NOT NULL,
    account_id bigint NOT NULL,
    url text NOT NULL,
    event_id bigint NOT NULL,
    recipient_id bigint,
    message_id bigint,
    payload jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    delivered_at timestamp with time zone,
    given_up_at timestamp with time zone,
    last_error text,
    method text DEFAULT 'POST'::text NOT NULL,
    CONSTRAINT webhook_outbox_method_check CHECK ((method = ANY (ARRAY['POST'::text, 'GET'::text]))),
    CONSTRAINT webhook_outbox_other_no_recipient CHECK ((recipient_id IS NULL))
);

--
-- Name: events_1; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events ATTACH PARTITION public.events_1 FOR VALUES FROM ('1') TO ('1000001');

--
-- Name: messages_1; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages ATTACH PARTITION public.messages_1 FOR VALUES FROM ('1') TO ('1000001');

--
-- Name: recipients_1; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recipients ATTACH PARTITION public.recipients_1 FOR VALUES FROM ('1') TO ('1000001');

--
-- Name: smpp_outbox_1; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_outbox ATTACH PARTITION public.smpp_outbox_1 FOR VALUES FROM ('1') TO ('1000001');

--
-- Name: smpp_outbox_other; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_outbox ATTACH PARTITION public.smpp_outbox_other DEFAULT;

--
-- Name: sms_parts_1; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sms_parts ATTACH PARTITION public.sms_parts_1 FOR VALUES FROM ('1') TO ('1000001');

--
-- Name: webhook_outbox_1; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_outbox ATTACH PARTITION public.webhook_outbox_1 FOR VALUES FROM ('1') TO ('1000001');

--
-- Name: webhook_outbox_other; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_outbox ATTACH PARTITION public.webhook_outbox_other DEFAULT;

--
-- Name: accounts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts ALTER COLUMN id SET DEFAULT nextval('public.accounts_id_seq'::regclass);

--
-- Name: batches id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches ALTER COLUMN id SET DEFAULT nextval('public.batches_id_seq'::regclass);

--
-- Name: devices id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.devices ALTER COLUMN id SET DEFAULT nextval('public.devices_id_seq'::regclass);

--
-- Name: dlr_parked id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dlr_parked ALTER COLUMN id SET DEFAULT nextval('public.dlr_parked_id_seq'::regclass);

--
-- Name: events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events ALTER COLUMN id SET DEFAULT nextval('public.events_id_seq'::regclass);

--
-- Name: messages id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages ALTER COLUMN id SET DEFAULT nextval('public.messages_id_seq'::regclass);

--
-- Name: mo_messages id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mo_messages ALTER COLUMN id SET DEFAULT nextval('public.mo_messages_id_seq'::regclass);

--
-- Name: opt_out_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.opt_out_log ALTER COLUMN id SET DEFAULT nextval('public.opt_out_log_id_seq'::regclass);

--
-- Name: recipients id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recipients ALTER COLUMN id SET DEFAULT nextval('public.recipients_id_seq'::regclass);

--
-- Name: smpp_accounts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_accounts ALTER COLUMN id SET DEFAULT nextval('public.smpp_accounts_id_seq'::regclass);

--
-- Name: smpp_outbox id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_outbox ALTER COLUMN id SET DEFAULT nextval('public.smpp_outbox_id_seq'::regclass);

--
-- Name: webhook_outbox id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_outbox ALTER COLUMN id SET DEFAULT nextval('public.webhook_outbox_id_seq'::regclass);

--
-- Name: account_rate account_rate_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_rate
    ADD CONSTRAINT account_rate_pkey PRIMARY KEY (account_id);

--
-- Name: account_senders account_senders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_senders
    ADD CONSTRAINT account_senders_pkey PRIMARY KEY (account_id, sender);

--
-- Name: account_usage account_usage_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_usage
    ADD CONSTRAINT account_usage_pkey PRIMARY KEY (account_id, day);

--
-- Name: accounts accounts_api_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_api_key_hash_key UNIQUE (api_key_hash);

--
-- Name: accounts accounts_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_name_key UNIQUE (name);

--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);

--
-- Name: batches batches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_pkey PRIMARY KEY (id);

--
-- Name: code_sms_daily code_sms_daily_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.code_sms_daily
    ADD CONSTRAINT code_sms_daily_pkey PRIMARY KEY (day);

--
-- Name: code_sms_pending code_sms_pending_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.code_sms_pending
    ADD CONSTRAINT code_sms_pending_pkey PRIMARY KEY (recipient_id);

--
-- Name: device_wakeups device_wakeups_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.device_wakeups
    ADD CONSTRAINT device_wakeups_pkey PRIMARY KEY (device_id);

--
-- Name: devices devices_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_pkey PRIMARY KEY (id);

--
-- Name: devices devices_token_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.devices
    ADD CONSTRAINT devices_token_hash_key UNIQUE (token_hash);

--
-- Name: dlr_parked dlr_parked_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dlr_parked
    ADD CONSTRAINT dlr_parked_pkey PRIMARY KEY (id);

--
-- Name: events_1 events_pkey_1; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events_1
    ADD CONSTRAINT events_pkey_1 PRIMARY KEY (id);

--
-- Name: history_ranges history_ranges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.history_ranges
    ADD CONSTRAINT history_ranges_pkey PRIMARY KEY (lo);

--
-- Name: history_tables history_tables_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.history_tables
    ADD CONSTRAINT history_tables_pkey PRIMARY KEY (name);

--
-- Name: invitations invitations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.invitations
    ADD CONSTRAINT invitations_pkey PRIMARY KEY (msisdn);

--
-- Name: message_keys message_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_keys
    ADD CONSTRAINT message_keys_pkey PRIMARY KEY (account_id, key);

--
-- Name: message_ranges message_ranges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.message_ranges
    ADD CONSTRAINT message_ranges_pkey PRIMARY KEY (lo);

--
-- Name: messages messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);

--
-- Name: messages_1 messages_pkey_1; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages_1
    ADD CONSTRAINT messages_pkey_1 PRIMARY KEY (id);

--
-- Name: mo_messages mo_messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mo_messages
    ADD CONSTRAINT mo_messages_pkey PRIMARY KEY (id);

--
-- Name: opt_out_log opt_out_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.opt_out_log
    ADD CONSTRAINT opt_out_log_pkey PRIMARY KEY (id);

--
-- Name: opt_outs opt_outs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.opt_outs
    ADD CONSTRAINT opt_outs_pkey PRIMARY KEY (msisdn, sender);

--
-- Name: recipients recipients_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recipients
    ADD CONSTRAINT recipients_pkey PRIMARY KEY (id);

--
-- Name: recipients_1 recipients_pkey_1; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recipients_1
    ADD CONSTRAINT recipients_pkey_1 PRIMARY KEY (id);

--
-- Name: report_counts report_counts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.report_counts
    ADD CONSTRAINT report_counts_pkey PRIMARY KEY (grain, start, account_id, sender, route, channel, state, opted_out, push_tried, submitted) INCLUDE (recipients);

--
-- Name: report_latency report_latency_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.report_latency
    ADD CONSTRAINT report_latency_pkey PRIMARY KEY (grain, start, account_id, sender, route, kind, bucket) INCLUDE (n);

--
-- Name: report_rollup_state report_rollup_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.report_rollup_state
    ADD CONSTRAINT report_rollup_state_pkey PRIMARY KEY (id);

--
-- Name: route_pauses route_pauses_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.route_pauses
    ADD CONSTRAINT route_pauses_pkey PRIMARY KEY (route);

--
-- Name: schema_functions schema_functions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_functions
    ADD CONSTRAINT schema_functions_pkey PRIMARY KEY (name);

--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (version);

--
-- Name: smpp_accounts smpp_accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_accounts
    ADD CONSTRAINT smpp_accounts_pkey PRIMARY KEY (id);

--
-- Name: smpp_accounts smpp_accounts_system_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_accounts
    ADD CONSTRAINT smpp_accounts_system_id_key UNIQUE (system_id);

--
-- Name: smpp_binds smpp_binds_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_binds
    ADD CONSTRAINT smpp_binds_pkey PRIMARY KEY (node, route, bind);

--
-- Name: smpp_outbox_1 smpp_outbox_pkey_1; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_outbox_1
    ADD CONSTRAINT smpp_outbox_pkey_1 PRIMARY KEY (id);

--
-- Name: smpp_outbox_other smpp_outbox_pkey_other; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_outbox_other
    ADD CONSTRAINT smpp_outbox_pkey_other PRIMARY KEY (id);

--
-- Name: sms_parts sms_parts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sms_parts
    ADD CONSTRAINT sms_parts_pkey PRIMARY KEY (recipient_id, part_no);

--
-- Name: sms_parts_1 sms_parts_pkey_1; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sms_parts_1
    ADD CONSTRAINT sms_parts_pkey_1 PRIMARY KEY (recipient_id, part_no);

--
-- Name: wakes wakes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.wakes
    ADD CONSTRAINT wakes_pkey PRIMARY KEY (recipient_id, device_id);

--
-- Name: webhook_outbox_1 webhook_outbox_pkey_1; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_outbox_1
    ADD CONSTRAINT webhook_outbox_pkey_1 PRIMARY KEY (id);

--
-- Name: webhook_outbox_other webhook_outbox_pkey_other; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_outbox_other
    ADD CONSTRAINT webhook_outbox_pkey_other PRIMARY KEY (id);

--
-- Name: account_senders_sender; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX account_senders_sender ON public.account_senders USING btree (sender);

--
-- Name: accounts_prev_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX accounts_prev_key ON public.accounts USING btree (prev_key_hash) WHERE (prev_key_hash IS NOT NULL);

--
-- Name: batches_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX batches_account ON public.batches USING btree (account_id, id);

--
-- Name: batches_running; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX batches_running ON public.batches USING btree (id) WHERE (state = 'RUNNING'::text);

--
-- Name: devices_msisdn_active; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX devices_msisdn_active ON public.devices USING btree (msisdn) WHERE ((verified_at IS NOT NULL) AND (revoked_at IS NULL));

--
-- Name: devices_msisdn_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX devices_msisdn_created ON public.devices USING btree (msisdn, created_at);

--
-- Name: dlr_parked_lookup; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dlr_parked_lookup ON public.dlr_parked USING btree (route, smsc_id);

--
-- Name: events_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_at ON ONLY public.events USING brin (at) WITH (pages_per_range='32', autosummarize='on');

--
-- Name: events_at_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_at_1 ON public.events_1 USING brin (at) WITH (pages_per_range='32', autosummarize='on');

--
-- Name: events_opted_out; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_opted_out ON ONLY public.events USING btree (recipient_id) WHERE (state = 'OPTED_OUT'::text);

--
-- Name: events_opted_out_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_opted_out_1 ON public.events_1 USING btree (recipient_id) WHERE (state = 'OPTED_OUT'::text);

--
-- Name: events_recipient; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_recipient ON ONLY public.events USING btree (recipient_id, id);

--
-- Name: events_recipient_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_recipient_1 ON public.events_1 USING btree (recipient_id, id);

--
-- Name: events_resend; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_resend ON ONLY public.events USING btree (at) WHERE (kind = 'resend'::text);

--
-- Name: events_resend_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_resend_1 ON public.events_1 USING btree (at) WHERE (kind = 'resend'::text);

--
-- Name: message_keys_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_keys_created ON public.message_keys USING btree (created_at);

--
-- Name: message_keys_message; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX message_keys_message ON public.message_keys USING btree (message_id);

--
-- Name: messages_account_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_account_created ON ONLY public.messages USING btree (account_id, created_at);

--
-- Name: messages_account_created_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_account_created_1 ON public.messages_1 USING btree (account_id, created_at);

--
-- Name: messages_batch; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_batch ON ONLY public.messages USING btree (batch_id) WHERE (batch_id IS NOT NULL);

--
-- Name: messages_batch_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_batch_1 ON public.messages_1 USING btree (batch_id) WHERE (batch_id IS NOT NULL);

--
-- Name: messages_callback; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_callback ON ONLY public.messages USING btree (id) WHERE (callback_url IS NOT NULL);

--
-- Name: messages_callback_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_callback_1 ON public.messages_1 USING btree (id) WHERE (callback_url IS NOT NULL);

--
-- Name: messages_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_created ON ONLY public.messages USING btree (created_at);

--
-- Name: messages_created_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_created_1 ON public.messages_1 USING btree (created_at);

--
-- Name: messages_kannel_dlr; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_kannel_dlr ON ONLY public.messages USING btree (id) WHERE (dlr_url IS NOT NULL);

--
-- Name: messages_kannel_dlr_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_kannel_dlr_1 ON public.messages_1 USING btree (id) WHERE (dlr_url IS NOT NULL);

--
-- Name: messages_smpp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_smpp ON ONLY public.messages USING btree (id) WHERE (smpp_account_id IS NOT NULL);

--
-- Name: messages_smpp_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_smpp_1 ON public.messages_1 USING btree (id) WHERE (smpp_account_id IS NOT NULL);

--
-- Name: mo_messages_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX mo_messages_account ON public.mo_messages USING btree (account_id, id);

--
-- Name: mo_messages_received; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX mo_messages_received ON public.mo_messages USING btree (received_at);

--
-- Name: opt_out_log_msisdn; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX opt_out_log_msisdn ON public.opt_out_log USING btree (msisdn, id);

--
-- Name: recipients_batch_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_batch_state ON ONLY public.recipients USING btree (batch_id, state) WHERE (batch_id IS NOT NULL);

--
-- Name: recipients_batch_state_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_batch_state_1 ON public.recipients_1 USING btree (batch_id, state) WHERE (batch_id IS NOT NULL);

--
-- Name: recipients_message_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_message_id ON ONLY public.recipients USING btree (message_id, id);

--
-- Name: recipients_message_id_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_message_id_1 ON public.recipients_1 USING btree (message_id, id);

--
-- Name: recipients_msisdn; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_msisdn ON ONLY public.recipients USING btree (msisdn, id) WHERE (final_at IS NOT NULL);

--
-- Name: recipients_msisdn_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_msisdn_1 ON public.recipients_1 USING btree (msisdn, id) WHERE (final_at IS NOT NULL);

--
-- Name: recipients_push_deadline; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_push_deadline ON ONLY public.recipients USING btree (push_deadline) WHERE (state = 'PUSH_SENT'::text);

--
-- Name: recipients_push_deadline_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_push_deadline_1 ON public.recipients_1 USING btree (push_deadline) WHERE (state = 'PUSH_SENT'::text);

--
-- Name: recipients_push_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_push_pending ON ONLY public.recipients USING btree (msisdn, id) WHERE (state = 'PUSH_SENT'::text);

--
-- Name: recipients_push_pending_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_push_pending_1 ON public.recipients_1 USING btree (msisdn, id) WHERE (state = 'PUSH_SENT'::text);

--
-- Name: recipients_release; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_release ON ONLY public.recipients USING btree (release_at) WHERE (state = ANY (ARRAY['SCHEDULED'::text, 'HELD'::text]));

--
-- Name: recipients_release_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_release_1 ON public.recipients_1 USING btree (release_at) WHERE (state = ANY (ARRAY['SCHEDULED'::text, 'HELD'::text]));

--
-- Name: recipients_sms_inflight; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_sms_inflight ON ONLY public.recipients USING btree (lease_until) WHERE (state = 'SMS_SUBMITTED'::text);

--
-- Name: recipients_sms_inflight_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_sms_inflight_1 ON public.recipients_1 USING btree (lease_until) WHERE (state = 'SMS_SUBMITTED'::text);

--
-- Name: recipients_sms_queue; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_sms_queue ON ONLY public.recipients USING btree (next_attempt_at, id) WHERE (state = 'SMS_QUEUED'::text);

--
-- Name: recipients_sms_queue_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_sms_queue_1 ON public.recipients_1 USING btree (next_attempt_at, id) WHERE (state = 'SMS_QUEUED'::text);

--
-- Name: recipients_sms_waiting; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_sms_waiting ON ONLY public.recipients USING btree (expires_at) WHERE (state = 'SMS_ACCEPTED'::text);

--
-- Name: recipients_sms_waiting_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recipients_sms_waiting_1 ON public.recipients_1 USING btree (expires_at) WHERE (state = 'SMS_ACCEPTED'::text);

--
-- Name: smpp_outbox_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX smpp_outbox_due ON ONLY public.smpp_outbox USING btree (smpp_account_id, id) WHERE (delivered_at IS NULL);

--
-- Name: smpp_outbox_due_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX smpp_outbox_due_1 ON public.smpp_outbox_1 USING btree (smpp_account_id, id) WHERE (delivered_at IS NULL);

--
-- Name: smpp_outbox_due_other; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX smpp_outbox_due_other ON public.smpp_outbox_other USING btree (smpp_account_id, id) WHERE (delivered_at IS NULL);

--
-- Name: smpp_outbox_one_receipt; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX smpp_outbox_one_receipt ON ONLY public.smpp_outbox USING btree (recipient_id) WHERE (kind = 'receipt'::text);

--
-- Name: smpp_outbox_one_receipt_1; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX smpp_outbox_one_receipt_1 ON public.smpp_outbox_1 USING btree (recipient_id) WHERE (kind = 'receipt'::text);

--
-- Name: smpp_outbox_one_receipt_other; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX smpp_outbox_one_receipt_other ON public.smpp_outbox_other USING btree (recipient_id) WHERE (kind = 'receipt'::text);

--
-- Name: smpp_outbox_other_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX smpp_outbox_other_created ON public.smpp_outbox_other USING btree (created_at);

--
-- Name: sms_parts_smsc_newest; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sms_parts_smsc_newest ON ONLY public.sms_parts USING btree (route, smsc_id, recipient_id);

--
-- Name: sms_parts_smsc_newest_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sms_parts_smsc_newest_1 ON public.sms_parts_1 USING btree (route, smsc_id, recipient_id);

--
-- Name: webhook_outbox_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_outbox_due ON ONLY public.webhook_outbox USING btree (next_attempt_at, id) WHERE ((delivered_at IS NULL) AND (given_up_at IS NULL));

--
-- Name: webhook_outbox_due_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_outbox_due_1 ON public.webhook_outbox_1 USING btree (next_attempt_at, id) WHERE ((delivered_at IS NULL) AND (given_up_at IS NULL));

--
-- Name: webhook_outbox_due_other; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_outbox_due_other ON public.webhook_outbox_other USING btree (next_attempt_at, id) WHERE ((delivered_at IS NULL) AND (given_up_at IS NULL));

--
-- Name: webhook_outbox_other_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_outbox_other_created ON public.webhook_outbox_other USING btree (created_at);

--
-- Name: webhook_outbox_recipient; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_outbox_recipient ON ONLY public.webhook_outbox USING btree (recipient_id, id) WHERE ((delivered_at IS NULL) AND (given_up_at IS NULL));

--
-- Name: webhook_outbox_recipient_1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_outbox_recipient_1 ON public.webhook_outbox_1 USING btree (recipient_id, id) WHERE ((delivered_at IS NULL) AND (given_up_at IS NULL));

--
-- Name: webhook_outbox_recipient_other; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_outbox_recipient_other ON public.webhook_outbox_other USING btree (recipient_id, id) WHERE ((delivered_at IS NULL) AND (given_up_at IS NULL));

--
-- Name: events_at_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.events_at ATTACH PARTITION public.events_at_1;

--
-- Name: events_opted_out_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.events_opted_out ATTACH PARTITION public.events_opted_out_1;

--
-- Name: events_recipient_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.events_recipient ATTACH PARTITION public.events_recipient_1;

--
-- Name: events_resend_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.events_resend ATTACH PARTITION public.events_resend_1;

--
-- Name: messages_account_created_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.messages_account_created ATTACH PARTITION public.messages_account_created_1;

--
-- Name: messages_batch_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.messages_batch ATTACH PARTITION public.messages_batch_1;

--
-- Name: messages_callback_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.messages_callback ATTACH PARTITION public.messages_callback_1;

--
-- Name: messages_created_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.messages_created ATTACH PARTITION public.messages_created_1;

--
-- Name: messages_kannel_dlr_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.messages_kannel_dlr ATTACH PARTITION public.messages_kannel_dlr_1;

--
-- Name: messages_pkey_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.messages_pkey ATTACH PARTITION public.messages_pkey_1;

--
-- Name: messages_smpp_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.messages_smpp ATTACH PARTITION public.messages_smpp_1;

--
-- Name: recipients_batch_state_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_batch_state ATTACH PARTITION public.recipients_batch_state_1;

--
-- Name: recipients_message_id_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_message_id ATTACH PARTITION public.recipients_message_id_1;

--
-- Name: recipients_msisdn_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_msisdn ATTACH PARTITION public.recipients_msisdn_1;

--
-- Name: recipients_pkey_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_pkey ATTACH PARTITION public.recipients_pkey_1;

--
-- Name: recipients_push_deadline_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_push_deadline ATTACH PARTITION public.recipients_push_deadline_1;

--
-- Name: recipients_push_pending_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_push_pending ATTACH PARTITION public.recipients_push_pending_1;

--
-- Name: recipients_release_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_release ATTACH PARTITION public.recipients_release_1;

--
-- Name: recipients_sms_inflight_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_sms_inflight ATTACH PARTITION public.recipients_sms_inflight_1;

--
-- Name: recipients_sms_queue_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_sms_queue ATTACH PARTITION public.recipients_sms_queue_1;

--
-- Name: recipients_sms_waiting_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.recipients_sms_waiting ATTACH PARTITION public.recipients_sms_waiting_1;

--
-- Name: smpp_outbox_due_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.smpp_outbox_due ATTACH PARTITION public.smpp_outbox_due_1;

--
-- Name: smpp_outbox_due_other; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.smpp_outbox_due ATTACH PARTITION public.smpp_outbox_due_other;

--
-- Name: smpp_outbox_one_receipt_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.smpp_outbox_one_receipt ATTACH PARTITION public.smpp_outbox_one_receipt_1;

--
-- Name: smpp_outbox_one_receipt_other; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.smpp_outbox_one_receipt ATTACH PARTITION public.smpp_outbox_one_receipt_other;

--
-- Name: sms_parts_pkey_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.sms_parts_pkey ATTACH PARTITION public.sms_parts_pkey_1;

--
-- Name: sms_parts_smsc_newest_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.sms_parts_smsc_newest ATTACH PARTITION public.sms_parts_smsc_newest_1;

--
-- Name: webhook_outbox_due_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.webhook_outbox_due ATTACH PARTITION public.webhook_outbox_due_1;

--
-- Name: webhook_outbox_due_other; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.webhook_outbox_due ATTACH PARTITION public.webhook_outbox_due_other;

--
-- Name: webhook_outbox_recipient_1; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.webhook_outbox_recipient ATTACH PARTITION public.webhook_outbox_recipient_1;

--
-- Name: webhook_outbox_recipient_other; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.webhook_outbox_recipient ATTACH PARTITION public.webhook_outbox_recipient_other;

--
-- Name: accounts accounts_never_deleted; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER accounts_never_deleted BEFORE DELETE ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.accounts_kept();

--
-- Name: accounts accounts_never_renumbered; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER accounts_never_renumbered BEFORE UPDATE OF id ON public.accounts FOR EACH ROW WHEN ((old.id IS DISTINCT FROM new.id)) EXECUTE FUNCTION public.accounts_kept();

--
-- Name: accounts accounts_never_truncated; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER accounts_never_truncated BEFORE TRUNCATE ON public.accounts FOR EACH STATEMENT EXECUTE FUNCTION public.accounts_kept();

--
-- Name: events events_kannel_dlr; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER events_kannel_dlr AFTER INSERT ON public.events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION public.kannel_dlr_fill();

--
-- Name: events events_smpp_outbox; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER events_smpp_outbox AFTER INSERT ON public.events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION public.smpp_outbox_fill();

--
-- Name: events events_webhook_outbox; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER events_webhook_outbox AFTER INSERT ON public.events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION public.webhook_outbox_fill();

--
-- Name: account_rate account_rate_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_rate
    ADD CONSTRAINT account_rate_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- Name: account_senders account_senders_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_senders
    ADD CONSTRAINT account_senders_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- Name: account_usage account_usage_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.account_usage
    ADD CONSTRAINT account_usage_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- Name: batches batches_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.batches
    ADD CONSTRAINT batches_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- Name: smpp_accounts smpp_accounts_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.smpp_accounts
    ADD CONSTRAINT smpp_accounts_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(id);

--
-- PostgreSQL database dump complete
--
