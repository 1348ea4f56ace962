-- 013_outbox_fills_by_key: the events triggers read each event's message,
-- recipient and account by key, whatever PostgreSQL guesses.
--
-- pushgated plans every statement once per connection (its generic plan),
-- and statements over a transition table are estimated without statistics:
-- a connection that first ran the triggers on small tables kept hash joins
-- over sequential scans of messages and recipients, so each fill read both
-- tables whole (3.4 ms per statement, 183 us per report, growing with the
-- tables). Each lookup is now a LATERAL subquery that cannot be flattened
-- (OFFSET 0): one primary-key probe per event row of the statement, and the
-- statement's cost depends only on its own rows. Same rows written as in 009.

CREATE OR REPLACE FUNCTION webhook_outbox_fill() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION kannel_dlr_fill() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION smpp_outbox_fill() RETURNS trigger LANGUAGE plpgsql AS $$
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
      AND e.state IN ('PUSH_DELIVERED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED', 'SMS_UNKNOWN',
                      'DROPPED', 'CANCELED')
    ORDER BY e.id
    ON CONFLICT (recipient_id) WHERE kind = 'receipt' DO NOTHING;
    RETURN NULL;
END $$;
