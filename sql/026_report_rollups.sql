-- 026_report_rollups: reports read counters, not the history.  A periodic
-- job (report_rollup(), sql/functions/report_rollup.sql; pushgated runs it
-- every [reports] rollup_interval seconds, `pushgatectl rollup` by hand)
-- reads the events written since its watermark and adds each recipient
-- twice: once when it is accepted (state 'ACCEPTED') and once when it
-- reaches its final state, in the bucket of its message's acceptance
-- (UTC hour and UTC day), account, sender, route, channel and final state.
-- Why a job and not the transactions that record final states: those
-- transactions are the engine's hot path, and every final state of an
-- hour, sender and route would update the same counter row (a lock queue
-- and a dead row version each time); the job adds a few thousand events
-- at once, off that path.  A final state is final: nothing changes the
-- recipient after it, so what the job reads of it stays true.
--
-- grain: 'h' (start = the UTC hour) or 'd' (start = the UTC day): a report
-- over 90 days reads whole days from the 'd' rows and the hours of its
-- first day from the 'h' rows.  '' stands for no route or no channel (a
-- primary key has no NULLs).  The keys carry the counts (INCLUDE): a
-- report's window is an index-only range scan, in order, whatever the
-- upserts did to the heap's order.  Flags, as the raw reports define them:
-- opted_out (DROPPED, or on the SMS path after the number blocked the
-- sender), push_tried (a push deadline was set), submitted (handed to a
-- carrier at least once).
CREATE TABLE report_counts (
    grain char(1) NOT NULL CHECK (grain IN ('h', 'd')),
    start timestamptz NOT NULL,
    account_id bigint NOT NULL,
    sender text NOT NULL,
    route text NOT NULL,
    channel text NOT NULL,
    state text NOT NULL,
    opted_out boolean NOT NULL,
    push_tried boolean NOT NULL,
    submitted boolean NOT NULL,
    recipients bigint NOT NULL,
    PRIMARY KEY (grain, start, account_id, sender, route, channel, state, opted_out, push_tried, submitted)
        INCLUDE (recipients)
);

-- Latency histograms, the same buckets (report_hist_bounds()): kind
-- 'push' (accepted -> PUSH_DELIVERED), 'sms' (accepted -> SMS_DELIVERED),
-- both with route '', and 'receipt' (last submit -> the receipt of a
-- delivered SMS) per route.
CREATE TABLE report_latency (
    grain char(1) NOT NULL CHECK (grain IN ('h', 'd')),
    start timestamptz NOT NULL,
    account_id bigint NOT NULL,
    sender text NOT NULL,
    route text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('push', 'sms', 'receipt')),
    bucket smallint NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (grain, start, account_id, sender, route, kind, bucket) INCLUDE (n)
);

-- One row: events with at < watermark are counted, those at or after it
-- are not (NULL: nothing counted yet; the job starts at the oldest message).
CREATE TABLE report_rollup_state (
    id integer PRIMARY KEY CHECK (id = 1),
    watermark timestamptz,
    updated_at timestamptz,
    events bigint NOT NULL DEFAULT 0
);
INSERT INTO report_rollup_state (id) VALUES (1);
