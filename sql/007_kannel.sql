-- 007_kannel: delivery reports of Kannel's sendsms (/cgi-bin/sendsms with
-- dlr-url and dlr-mask).  A message keeps its dlr-url template and mask; every
-- recipient state change whose Kannel DLR type is in the mask becomes one row
-- of the webhook outbox, in the same transaction as the change, holding the
-- URL with its escapes already substituted and method GET.  The webhook worker
-- delivers it (a GET, 2xx = done) with the outbox's retries and leases.

ALTER TABLE messages ADD COLUMN dlr_url text;       -- Kannel dlr-url template (%d %p %P %A %T ...)
ALTER TABLE messages ADD COLUMN dlr_mask integer;   -- Kannel dlr-mask: 1 delivered, 2 failed, 4 buffered,
                                                    -- 8 SMSC accepted, 16 SMSC rejected
-- The events trigger below looks messages up through this small index only
-- (whatever plan it picks, it never reads the whole messages table).
CREATE INDEX messages_kannel_dlr ON messages (id) WHERE dlr_url IS NOT NULL;
ALTER TABLE webhook_outbox ADD COLUMN method text NOT NULL DEFAULT 'POST' CHECK (method IN ('POST', 'GET'));

-- The intake statement has one slot for a per-message URL, callback_url;
-- sendsms passes 'kannel-dlr:MASK:URL' there (the API accepts only http(s)
-- URLs, so no client can), and this moves it to the two columns above.
CREATE FUNCTION kannel_dlr_take() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mask text := split_part(NEW.callback_url, ':', 2);
BEGIN
    IF mask !~ '^[0-9]{1,2}$' THEN
        RAISE EXCEPTION 'kannel dlr: bad mask in callback_url';
    END IF;
    NEW.dlr_mask := mask::integer;
    NEW.dlr_url := substr(NEW.callback_url, length('kannel-dlr:') + length(mask) + 2);
    NEW.callback_url := NULL;
    RETURN NEW;
END $$;

CREATE TRIGGER messages_kannel_dlr BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.callback_url LIKE 'kannel-dlr:%') EXECUTE FUNCTION kannel_dlr_take();

-- Percent-encoding of a substituted value: every byte of its UTF-8 except
-- the RFC 3986 unreserved characters.
CREATE FUNCTION kannel_urlencode(s text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT coalesce(string_agg(CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122
                                         OR b IN (45, 46, 95, 126) THEN chr(b)
                                    ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i), '')
    FROM (SELECT i, get_byte(convert_to(s, 'UTF8'), i) AS b
          FROM generate_series(0, octet_length(convert_to(s, 'UTF8')) - 1) AS i) x
$$;

-- Kannel's "+" form of a number: a leading 00 becomes + (%q, %Q).
CREATE FUNCTION kannel_plus(n text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN n LIKE '00%' THEN '+' || substr(n, 3) ELSE n END
$$;

-- The Kannel DLR type of one event for a mask, or NULL (no report):
--  1 delivered: PUSH_DELIVERED (the app stored it), SMS_DELIVERED
--  2 failed: SMS_FAILED after an SMSC accepted it, SMS_EXPIRED, DROPPED, CANCELED
--  4 buffered: PUSH_SENT (waiting for the app), an intermediate SMSC receipt
--  8 SMSC accepted: SMS_ACCEPTED (submit_sm_resp ok)
-- 16 SMSC rejected: SMS_FAILED before any SMSC accepted it (refused submit,
--    no route); like Kannel, sent when the mask has 16 or 2.
-- SMS_UNKNOWN (no receipt within validity) reports nothing, like a Kannel SMSC that never reports.
CREATE FUNCTION kannel_dlr_type(kind text, state text, accepted boolean, mask integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t = 16 AND mask & 18 <> 0 THEN 16 WHEN t <> 16 AND mask & t <> 0 THEN t END
    FROM (SELECT CASE
        WHEN kind = 'receipt' AND state IS NULL THEN 4
        WHEN kind <> 'state' THEN NULL
        WHEN state IN ('PUSH_DELIVERED', 'SMS_DELIVERED') THEN 1
        WHEN state = 'PUSH_SENT' THEN 4
        WHEN state = 'SMS_ACCEPTED' THEN 8
        WHEN state = 'SMS_FAILED' AND NOT accepted THEN 16
        WHEN state IN ('SMS_FAILED', 'SMS_EXPIRED', 'DROPPED', 'CANCELED') THEN 2 END AS t) x
$$;

-- A dlr-url template with Kannel's escapes substituted (values percent-encoded):
-- %d type, %p receiver, %P sender, %q/%Q the same with a leading 00 as +,
-- %A the report text, %a the same, %T unix time, %t "YYYY-MM-DD HH:MM:SS" UTC,
-- %I recipient id, %i route (smsc-id), %F SMSC message id, %n account name
-- (sendsms user), %% a percent sign.  Other escapes stay as they are.
CREATE FUNCTION kannel_dlr_url(tpl text, type integer, receiver text, sender text, reply text,
                               at timestamptz, recipient bigint, route text, smsc_id text, account text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out text := '';
    i integer := 1;
    n integer := length(tpl);
    c text;
BEGIN
    WHILE i <= n LOOP
        c := substr(tpl, i, 1);
        IF c <> '%' OR i = n THEN
            out := out || c;
            i := i + 1;
            CONTINUE;
        END IF;
        c := substr(tpl, i + 1, 1);
        out := out || CASE c
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
        i := i + 2;
    END LOOP;
    RETURN out;
END $$;

-- Statement-level, like webhook_outbox_fill: one INSERT ... SELECT per
-- statement that writes events.  Only messages with a dlr-url; the report
-- text of a final state is the raw receipt that led to it (same statement),
-- else the event's detail, else the state.
CREATE FUNCTION kannel_dlr_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
                FROM new_events e JOIN messages m ON m.id = e.message_id
                WHERE m.dlr_url IS NOT NULL AND m.dlr_mask > 0 AND e.recipient_id IS NOT NULL) w
          JOIN recipients r ON r.id = w.recipient_id) k
    JOIN accounts a ON a.id = k.account_id
    WHERE k.type IS NOT NULL
    ORDER BY k.id;
    RETURN NULL;
END $$;

CREATE TRIGGER events_kannel_dlr AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION kannel_dlr_fill();
