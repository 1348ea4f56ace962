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

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
