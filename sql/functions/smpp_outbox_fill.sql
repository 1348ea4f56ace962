-- deliver_sm receipts for ESMEs (the SMPP server role): statement-level like
-- the webhook outbox, one INSERT ... SELECT per statement that writes events.
-- Final states only, of messages an SMPP account submitted asking for
-- receipts; each event's message and recipient read by key.
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
      AND recipient_final(e.state)
    ORDER BY e.id
    ON CONFLICT (recipient_id) WHERE kind = 'receipt' DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER events_smpp_outbox AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION smpp_outbox_fill();
