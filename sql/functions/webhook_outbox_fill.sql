-- Webhooks: statement-level, one INSERT ... SELECT per statement that writes
-- events, whatever the batch size.  Only events of accounts or messages with
-- a URL (returns at once when no account has a webhook and no message of the
-- statement has a callback_url); each event's message, recipient and
-- account read by key.
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

CREATE OR REPLACE TRIGGER events_webhook_outbox AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox_fill();
