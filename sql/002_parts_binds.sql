-- 002_parts_binds: SMS parts (a long text travels as several submit_sm,
-- each with its own SMSC id and receipt), and the SMPP binds' live
-- counters that every pushgated node writes for operators.

ALTER TABLE recipients ADD COLUMN parts integer;        -- submit_sm parts of the SMS (set when accepted)

CREATE TABLE sms_parts (
    recipient_id  bigint NOT NULL,
    part_no       integer NOT NULL,                     -- 1-based
    account_id    bigint NOT NULL,
    route         text NOT NULL,
    smsc_id       text NOT NULL,                        -- normalised per route
    state         text NOT NULL CHECK (state IN ('SMS_ACCEPTED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED')),
    error_code    integer,
    accepted_at   timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_id, part_no)
);
-- receipt lookup: (route, smsc id)
CREATE INDEX sms_parts_route_smsc_id ON sms_parts (route, smsc_id);

CREATE TABLE smpp_binds (
    node          text NOT NULL,
    route         text NOT NULL,
    bind          text NOT NULL,                        -- e.g. "tx0", "rx0", "trx1"
    state         text NOT NULL,
    window_used   integer NOT NULL DEFAULT 0,
    window_size   integer NOT NULL DEFAULT 0,
    submits       bigint NOT NULL DEFAULT 0,
    resp_ok       bigint NOT NULL DEFAULT 0,
    resp_temp     bigint NOT NULL DEFAULT 0,
    resp_perm     bigint NOT NULL DEFAULT 0,
    timeouts      bigint NOT NULL DEFAULT 0,
    receipts      bigint NOT NULL DEFAULT 0,
    receipts_delivered bigint NOT NULL DEFAULT 0,
    receipts_failed    bigint NOT NULL DEFAULT 0,
    throttled     bigint NOT NULL DEFAULT 0,
    reconnects    bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, route, bind)
);

-- Its functions, triggers and views are in sql/functions/ now, where each
-- is kept up to date (src/migrate.c applies them after the migrations).
