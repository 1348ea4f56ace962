-- Kannel dlr-url reports (sendsms messages with a dlr-url): statement-level,
-- one INSERT ... SELECT per statement that writes events.  The report text
-- of a final state is the raw receipt that led to it (same statement), else
-- the event's detail, else the state.  Each event's message, recipient and
-- account are read by key (LATERAL ... OFFSET 0): the statement's cost
-- depends only on its own rows, whatever the generic plan guesses.
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

CREATE OR REPLACE TRIGGER events_kannel_dlr AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION kannel_dlr_fill();
