"""t_history: the history in recipient id ranges (sql/029, history_range_add(),
history_ensure(), src/history.c).

Real PostgreSQL, smsc-sim and pushgated.  A new database holds recipients,
sms_parts and events as tables partitioned by recipient id, and pushgated
keeps a whole range made ahead of the ids issued.  Messages whose recipients
straddle a range boundary go through push, SMS and receipts, each row in the
partition of its recipient, and the next range is made once the current one
runs short.  A database an older release left (schema version 28) with
history in it converts while a procedure writes a message, a recipient, an
event and an SMS part in a transaction of its own again and again: no
transaction waits more than a few seconds, every row is kept, what comes
after the switch goes to the new range; then pushgated runs on it and
delivers.  HISTORY_ROWS (default 100,000 recipients, 4 events each) sizes
that history: the issue's 5M-row check is HISTORY_ROWS=5000000.  A
version-29 database whose account has a webhook converts its outbox
(sql/030) under the same traffic: the delivered rows stay in
webhook_outbox_old, those still to go (one without a recipient) move to the
partition of their range, and pushgated then delivers every one.  The
receipts' index (sql/033) is built on each partition while traffic goes on,
and again after a run cut short; a receipt then reads the ranges newest first
and no range older than its part.
"""
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP, expected_outcome, free_port, serve_http

tests = TAP()
TABLES = ("recipients", "sms_parts", "events")
ROWS = int(os.environ.get("HISTORY_ROWS", "100000"))
LATEST = max(int(f[:3]) for f in os.listdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sql"))
             if f[:3].isdigit())


def metric(env, name):
    st, _, body, raw = env.http("GET", "/metrics", key=None)
    for line in raw.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def own_database(env, name):
    """A database of its own beside the test's: (pushgatectl argv on it, migrate(*args), q(sql))."""
    env.psql(f"CREATE DATABASE {name}", dbname="postgres")
    ctl = [os.path.join(env.builddir, "pushgatectl"), "-d", re.sub(r"dbname=\S+", f"dbname={name}", env.conninfo)]

    def migrate(*args):
        return subprocess.run(ctl + ["migrate", *args], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    def q(sql):
        return env.psql(sql, dbname=name).strip()
    return ctl, migrate, q

def partition_of(env, table, key, ids):
    """{id: partition name} of the rows of `table` whose `key` is in ids."""
    rows = env.sql(f"SELECT {key}, tableoid::regclass::text FROM {table} WHERE {key} = ANY('{{{','.join(map(str, ids))}}}')")
    out = {}
    for k, part in rows:
        out.setdefault(int(k), set()).add(part)
    return out


@tests.case
def a_new_database_keeps_its_history_in_ranges_made_ahead(env):
    for t in TABLES:
        assert env.scalar(f"SELECT relkind FROM pg_class WHERE oid = '{t}'::regclass") == "p", t
    env.wait_for(lambda: (metric(env, "pushgate_history_ids_ahead") or -1) >= 1000000, timeout=30,
                 what="pushgated sees a whole range ahead")
    ranges = env.sql("SELECT lo, hi FROM history_ranges ORDER BY lo")
    assert ranges[0][0] == "1", ranges   # a new database has no legacy range
    assert env.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_legacy'") == "0"
    assert all(int(a[1]) == int(b[0]) for a, b in zip(ranges, ranges[1:])), f"ranges not contiguous: {ranges}"
    for lo, hi in ranges:
        for t in TABLES:
            bound = env.scalar(f"SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = '{t}_{lo}'")
            assert bound.endswith(f"TO ('{hi}')"), (t, name, bound)
    # each new events partition has its own key on id; the parent has none (it would need recipient_id)
    assert env.scalar(f"SELECT count(*) FROM pg_constraint WHERE conrelid = 'events_{ranges[0][0]}'::regclass"
                      " AND contype = 'p'") == "1"
    # the storage options 028 gave the tables, on each range made by history_range_add() too
    env.sql("SELECT history_range_add(hi, hi + 10) FROM history_ranges ORDER BY lo DESC LIMIT 1")
    last = env.scalar("SELECT max(lo) FROM history_ranges")
    opts = env.scalar(f"SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'recipients_{last}'")
    assert "autovacuum_vacuum_scale_factor=0.02" in opts, opts
    assert env.scalar(f"SELECT count(*) FROM pg_indexes WHERE indexname = 'events_recipient_{last}'") == "1"
    opts = env.scalar(f"SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'recipients_{ranges[0][0]}'")
    assert "autovacuum_vacuum_scale_factor=0.02" in opts, opts
    # messages in ranges of its own (sql/036), one made ahead, each with the storage options and
    # indexes of the first
    assert env.scalar("SELECT relkind FROM pg_class WHERE oid = 'messages'::regclass") == "p"
    env.wait_for(lambda: (metric(env, "pushgate_history_message_ids_ahead") or -1) >= 1000000, timeout=30,
                 what="pushgated sees a whole message range ahead")
    mr = env.sql("SELECT lo, hi FROM message_ranges ORDER BY lo")
    assert mr[0][0] == "1" and all(int(a[1]) == int(b[0]) for a, b in zip(mr, mr[1:])), mr
    env.sql("SELECT message_range_add(hi, hi + 10) FROM message_ranges ORDER BY lo DESC LIMIT 1")
    last = env.scalar("SELECT max(lo) FROM message_ranges")
    opts = env.scalar(f"SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'messages_{last}'")
    assert opts == env.scalar("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'messages_1'") \
        and "autovacuum_vacuum_insert_threshold=10000" in opts, opts
    assert env.scalar(f"SELECT count(*) FROM pg_indexes WHERE indexname IN ('messages_created_{last}',"
                      f" 'messages_pkey_{last}')") == "2"


@tests.case
def messages_across_a_range_boundary_are_delivered_and_kept_with_their_recipient(env):
    lo, hi = (int(v) for v in env.sql("SELECT lo, hi FROM history_ranges WHERE lo <= nextval('recipients_id_seq')"
                                      " ORDER BY lo DESC LIMIT 1")[0])
    made = int(env.scalar("SELECT count(*) FROM history_ranges"))
    # four ids left in the range: pushgated makes the next one within its check interval (10 s)
    env.sql(f"SELECT setval('recipients_id_seq', {hi - 4})")
    env.wait_for(lambda: int(env.scalar("SELECT count(*) FROM history_ranges")) > made, timeout=30,
                 what="the next range made ahead")
    assert "ev=history_range_made" in env.pushgated_log_text()
    numbers = ["821077000010", "821077000021", "821077000032", "821077000049", "821077000053", "821077000068",
               "821077000070", "821077000081"]
    ids = [env.send([n], sender="RANGE")["id"] for n in numbers]
    env.wait_for(lambda: env.recipients_final(ids), timeout=60, what="every RANGE recipient final")
    rows = env.sql("SELECT r.id, r.msisdn, r.state, r.error_code FROM recipients r JOIN messages m ON m.id = r.message_id"
                   f" WHERE m.sender = 'RANGE' ORDER BY r.id")
    assert len(rows) == len(numbers), rows
    rids = [int(r[0]) for r in rows]
    assert rids[0] < hi <= rids[-1], f"recipients {rids} do not straddle {hi}"
    for rid, msisdn, state, err in rows:
        exp_state = expected_outcome(msisdn)[0]
        assert state == exp_state, (msisdn, state, exp_state)
    for t, key in (("recipients", "id"), ("events", "recipient_id"), ("sms_parts", "recipient_id")):
        where = partition_of(env, t, key, rids)
        for rid in rids:
            if t == "sms_parts" and rid not in where:
                continue   # a recipient the SMSC refused at submit has no part
            assert where.get(rid) == {f"{t}_{lo if rid < hi else hi}"}, (t, rid, where.get(rid))
    assert sum(1 for rid in rids if rid in partition_of(env, "sms_parts", "recipient_id", rids)) >= 4
    # what happened to each, from the API: the history is read across both ranges
    for mid in ids:
        msg = env.message(mid)
        assert msg["recipients"][0]["events"], msg
        assert msg["recipients"][0]["events"][0]["state"] == "ACCEPTED", msg
    env.wait_for(lambda: (metric(env, "pushgate_history_ids_ahead") or -1) >= 1000000, timeout=30,
                 what="a whole range ahead again")


@tests.case
def a_receipt_reads_the_ranges_newest_first_and_stops_at_its_part(env):
    """sql/033: a receipt's part is looked up newest range first; the ranges older than the
    part are not read (their index is never scanned), so the cost stays with the ranges kept."""
    assert env.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'sms_parts_smsc_newest'::regclass") == "t"
    assert env.scalar("SELECT to_regclass('sms_parts_route_smsc_id') IS NULL") == "t"

    def scans():
        """{range: (scans of its sms_parts_smsc_newest, scans of its sms_parts of any kind)}"""
        return {int(lo): (int(i), int(t)) for lo, i, t in
                env.sql("SELECT h.lo, coalesce(x.idx_scan, 0), t.seq_scan + coalesce(t.idx_scan, 0) FROM history_ranges h"
                        " JOIN pg_stat_user_tables t ON t.relname = 'sms_parts_' || h.lo"
                        " LEFT JOIN pg_stat_user_indexes x ON x.indexrelname = 'sms_parts_smsc_newest_' || h.lo")}
    def settled():
        """The statistics as of now: a backend flushes its counts at exit, and before its entry
        leaves pg_stat_activity; between times only every second or two (PostgreSQL 15).  Case
        2's receipts, flushed late, once counted here as this case's reads of range 1."""
        env.stop_pushgated()
        env.wait_for(lambda: env.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                                        " AND pid <> pg_backend_pid()") == "0", timeout=30,
                     what="pushgated's sessions gone, their statistics flushed")
        got = scans()
        env.start_pushgated()
        return got

    before = settled()
    numbers = [f"82107710{i:03d}0" for i in range(6)]
    ids = [env.send([n], sender="NEWEST")["id"] for n in numbers]
    env.wait_for(lambda: env.recipients_final(ids), timeout=60, what="every NEWEST recipient final")
    rids = [int(r[0]) for r in env.sql("SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id"
                                       " WHERE m.sender = 'NEWEST' AND r.state = 'SMS_DELIVERED'")]
    assert len(rids) == len(numbers), rids
    older = [int(r[0]) for r in env.sql(f"SELECT lo FROM history_ranges WHERE hi <= {min(rids)}")]
    newer = [lo for lo in before if lo not in older]
    assert older and newer, (older, before)  # the case before leaves the ids in a range after the first
    after = settled()
    # each receipt read at least its part's range (the index only receipts use), and no older one
    assert sum(after[lo][0] - before[lo][0] for lo in newer) >= len(numbers), (before, after)
    for lo in older:
        assert after[lo][1] == before[lo][1], f"range {lo} read for receipts of recipients {rids}: {before} -> {after}"

# the history, in statements of at most 250,000 recipients (HISTORY_ROWS=5000000 takes a while)
SEED_CHUNK = """
WITH a AS (SELECT id FROM accounts WHERE name = 'seed'),
m AS (INSERT INTO messages (account_id, sender, body, created_at)
      SELECT a.id, 'SEED', 'old', now() - interval '100 days' + g * interval '1 second'
      FROM a, generate_series({lo}, {hi}) g RETURNING id, account_id, created_at),
r AS (INSERT INTO recipients (message_id, account_id, msisdn, state, channel, route, final_at, created_at, updated_at)
      SELECT id, account_id, '8210' || lpad((id % 100000000)::text, 8, '0'), 'SMS_DELIVERED', 'sms', 'default',
             created_at + interval '5 s', created_at, created_at FROM m
      RETURNING id, message_id, account_id, created_at),
e AS (INSERT INTO events (recipient_id, message_id, account_id, at, state, route)
      SELECT r.id, r.message_id, r.account_id, r.created_at + s * interval '1 s', st, 'default'
      FROM r, unnest(ARRAY['ACCEPTED', 'SMS_QUEUED', 'SMS_SUBMITTED', 'SMS_DELIVERED']) WITH ORDINALITY AS u(st, s))
INSERT INTO sms_parts (recipient_id, part_no, account_id, route, smsc_id, state, accepted_at, updated_at)
SELECT id, 1, account_id, 'default', 'old' || id, 'SMS_DELIVERED', created_at, created_at FROM r
"""
SEED = """
CREATE TABLE traffic_log (n int PRIMARY KEY, recipient_id bigint NOT NULL, at timestamptz NOT NULL);
CREATE TABLE traffic_stop (at timestamptz);
CREATE PROCEDURE traffic() LANGUAGE plpgsql AS $$
DECLARE
    acct bigint := (SELECT id FROM accounts WHERE name = 'seed');
    mid bigint;
    rid bigint;
    n int := 0;
    t0 timestamptz := clock_timestamp();
BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM traffic_stop) AND clock_timestamp() < t0 + interval '5 minutes' LOOP
        INSERT INTO messages (account_id, sender, body) VALUES (acct, 'LIVE', 'now') RETURNING id INTO mid;
        INSERT INTO recipients (message_id, account_id, msisdn, state) VALUES (mid, acct, '821099000000', 'ACCEPTED')
        RETURNING id INTO rid;
        INSERT INTO events (recipient_id, message_id, account_id, state) VALUES (rid, mid, acct, 'ACCEPTED');
        UPDATE recipients SET state = 'SMS_ACCEPTED', updated_at = now() WHERE id = rid;
        INSERT INTO sms_parts (recipient_id, part_no, account_id, route, smsc_id, state)
        VALUES (rid, 1, acct, 'default', 'live' || rid, 'SMS_ACCEPTED');
        INSERT INTO traffic_log VALUES (n, rid, clock_timestamp());
        COMMIT;
        n := n + 1;
        PERFORM pg_sleep(0.002);
    END LOOP;
END $$;
"""


@tests.case
def a_populated_database_converts_while_traffic_goes_on(env):
    env.psql("CREATE DATABASE conv", dbname="postgres")
    conninfo = env.conninfo.replace("dbname=pushgate", "dbname=conv")
    ctl = [os.path.join(env.builddir, "pushgatectl"), "-d", conninfo]
    r = subprocess.run(ctl + ["migrate", "--to", "28"], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "version 28" in r.stdout, r.stdout + r.stderr
    t0 = time.monotonic()
    env.psql("INSERT INTO accounts (name, api_key_hash) VALUES ('seed', '\\x00')", dbname="conv")
    def long_sql(sql):
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(env.pg_port),
                            "-U", "postgres", "-d", "conv", "-c", sql], capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, r.stderr
    for lo in range(1, ROWS + 1, 250000):
        long_sql(SEED_CHUNK.format(lo=lo, hi=min(ROWS, lo + 249999)))
    long_sql("VACUUM ANALYZE messages, recipients, events, sms_parts")
    env.psql(SEED, dbname="conv")
    # a message sent with an idempotency key before sql/035 moved the keys to message_keys: for
    # the account made after the conversion, the next id (messages name no account by foreign key)
    after_id = env.psql("SELECT max(id) + 1 FROM accounts", dbname="conv").strip()
    old_keyed = env.psql(f"WITH m AS (INSERT INTO messages (account_id, sender, body, idempotency_key)"
                         f" VALUES ({after_id}, 'OLDKEY', 'before', 'k-before') RETURNING id),"
                         f" r AS (INSERT INTO recipients (message_id, account_id, msisdn, state, final_at)"
                         f" SELECT id, {after_id}, '821077100011', 'SMS_DELIVERED', now() FROM m)"
                         f" SELECT id FROM m", dbname="conv").strip()
    seeded = time.monotonic() - t0
    assert env.psql("SELECT count(*) FROM pg_views WHERE viewname = 'report_recipients'", dbname="conv").strip() == "1"
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(env.pg_port), "-U", "postgres",
            "-d", "conv", "-c", "CALL traffic()"]
    traffic = subprocess.Popen(psql, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        env.wait_for(lambda: env.psql("SELECT count(*) FROM traffic_log", dbname="conv").strip() not in ("", "0"),
                     timeout=30, what="traffic under way")
        time.sleep(0.5)
        t0 = time.monotonic()
        r = subprocess.run(ctl + ["migrate"], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        took = time.monotonic() - t0
        assert r.returncode == 0 and f"version {LATEST}" in r.stdout, r.stdout + r.stderr
        time.sleep(1.0)
    finally:
        env.psql("INSERT INTO traffic_stop VALUES (now())", dbname="conv")
        out, err = traffic.communicate(timeout=60)
    assert traffic.returncode == 0, err.decode()

    def q(sql):
        return env.psql(sql, dbname="conv").strip()

    b = int(q("SELECT hi FROM history_ranges ORDER BY lo LIMIT 1"))
    logged = int(q("SELECT count(*) FROM traffic_log"))
    before = int(q(f"SELECT count(*) FROM traffic_log WHERE recipient_id < {b}"))
    after = int(q(f"SELECT count(*) FROM traffic_log WHERE recipient_id >= {b}"))
    assert before > 0 and after > 0, (before, after)
    # every row kept, each in its partition
    assert int(q("SELECT count(*) FROM recipients")) == ROWS + logged + 1   # + the keyed message's
    assert int(q("SELECT count(*) FROM events")) == 4 * ROWS + logged
    assert int(q("SELECT count(*) FROM sms_parts")) == ROWS + logged
    for t in TABLES:
        assert q(f"SELECT relkind FROM pg_class WHERE oid = '{t}'::regclass") == "p", t
        assert int(q(f"SELECT count(*) FROM {t}_legacy")) == \
            (4 if t == "events" else 1) * ROWS + before + (t == "recipients"), t
        assert int(q(f"SELECT count(*) FROM {t}_{b}")) == after, t
    # the longest a transaction of the traffic waited: the gap between two commits
    gap = float(q("SELECT coalesce(extract(epoch FROM max(at - prev)), 0) FROM"
                  " (SELECT at, lag(at) OVER (ORDER BY n) AS prev FROM traffic_log) g"))
    print(f"# {ROWS} recipients ({4 * ROWS} events) seeded in {seeded:.1f} s; migrate took {took:.2f} s"
          f" with {logged} traffic transactions ({before} before the switch); longest gap between two {gap:.3f} s",
          flush=True)
    assert gap < 3.0, f"traffic stood still {gap:.2f} s"
    # what follows the tables by name moved with them
    assert q("SELECT pg_get_serial_sequence('recipients', 'id')") == "public.recipients_id_seq"
    assert q("SELECT pg_get_serial_sequence('events', 'id')") == "public.events_id_seq"
    assert q("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal") == "3"
    assert q("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events_legacy'::regclass AND NOT tgisinternal") == "0"
    dep = q("SELECT string_agg(DISTINCT d.refobjid::regclass::text, ',') FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid"
            " WHERE w.ev_class = 'report_recipients'::regclass AND d.refobjid IN"
            " ('recipients'::regclass, 'events'::regclass, 'recipients_legacy'::regclass, 'events_legacy'::regclass)")
    assert dep == "recipients,events" or set(dep.split(",")) == {"recipients", "events"}, dep
    assert q("SELECT count(*) FROM report_recipients WHERE account = 'seed'") == str(ROWS + logged)
    # messages in ranges too (sql/036): the old table is the legacy range, new messages in the first
    mb = int(q("SELECT hi FROM message_ranges ORDER BY lo LIMIT 1"))
    assert q("SELECT relkind FROM pg_class WHERE oid = 'messages'::regclass") == "p"
    assert int(q("SELECT count(*) FROM messages")) == ROWS + logged + 1
    assert int(q(f"SELECT count(*) FROM messages_{mb}")) == int(q(f"SELECT count(*) FROM messages WHERE id >= {mb}"))
    assert int(q("SELECT count(*) FROM messages_legacy")) == int(q(f"SELECT count(*) FROM messages WHERE id < {mb}"))
    assert q("SELECT pg_get_serial_sequence('messages', 'id')") == "public.messages_id_seq"
    assert q("SELECT count(*) FROM pg_constraint WHERE conname = 'recipients_message_id_fkey'") == "0"
    # every message a traffic transaction wrote has its recipient: none lost across the switch
    assert q("SELECT count(*) FROM traffic_log t JOIN recipients r ON r.id = t.recipient_id"
             " JOIN messages m ON m.id = r.message_id") == str(logged)
    r = subprocess.run(ctl + ["migrate"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr
    # sql/033 built the receipts' index on each partition, legacy one included, and dropped the old
    assert q("SELECT indisvalid FROM pg_index WHERE indexrelid = 'sms_parts_smsc_newest'::regclass") == "t"
    assert q("SELECT to_regclass('sms_parts_route_smsc_id') IS NULL") == "t"
    assert q("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid"
             " JOIN pg_class c ON c.oid = x.indrelid WHERE i.inhparent = 'sms_parts_smsc_newest'::regclass"
             " AND x.indisvalid") == f"sms_parts_{b},sms_parts_legacy", "every partition's index attached"

    # pushgated on the converted database: the next range made ahead, a message delivered
    env.stop_pushgated()
    env.conninfo = conninfo
    env.key = env.create_account("after")
    assert q("SELECT id FROM accounts WHERE name = 'after'") == after_id
    env.write_ini()
    env.start_pushgated()
    # the key used before the conversion still replays its message
    st, hdrs, replay, raw = env.http("POST", "/v1/messages", {"from": "OLDKEY", "to": ["821077100011"], "text": "again"},
                                     headers={"Idempotency-Key": "k-before"})
    assert st == 202 and str(replay["id"]) == old_keyed, (old_keyed, st, raw[:300])
    assert hdrs.get("idempotent-replayed") == "true", hdrs
    body = env.send(["821077100010"], sender="AFTER")
    env.wait_for(lambda: env.recipients_final([body["id"]]), timeout=60, what="the AFTER message final")
    rid = int(q(f"SELECT id FROM recipients WHERE message_id = {body['id']}"))
    assert rid >= b, (rid, b)
    assert q(f"SELECT state FROM recipients WHERE id = {rid}") == "SMS_DELIVERED"
    assert q(f"SELECT count(*) FROM events_{b} WHERE recipient_id = {rid}") != "0"
    env.wait_for(lambda: int(q("SELECT count(*) FROM history_ranges")) >= 3, timeout=30,
                 what="pushgated makes the range after the first")
    # an empty webhook outbox (no account had a webhook) became one partition per range
    for lo in q("SELECT string_agg(lo::text, ',') FROM history_ranges").split(","):
        want = "webhook_outbox_" + ("legacy" if int(lo) == -2 ** 63 else lo)
        assert q(f"SELECT to_regclass('{want}') IS NOT NULL") == "t", want


# a version-29 database whose accounts have a webhook: every event writes an outbox row
HOOK_SEED = """
INSERT INTO webhook_outbox (account_id, url, event_id, recipient_id, message_id, payload, delivered_at, attempts)
SELECT a.id, a.webhook_url, g, g, g, jsonb_build_object('event_id', g, 'recipient_id', g),
       CASE WHEN g > {n} - {pending} THEN NULL ELSE now() END, CASE WHEN g > {n} - {pending} THEN 0 ELSE 1 END
FROM accounts a, generate_series(1, {n}) g WHERE a.name = 'seed';
-- a message from a handset forwarded to its owner: no recipient
INSERT INTO webhook_outbox (account_id, url, event_id, payload)
SELECT a.id, a.webhook_url, {n} + 1, jsonb_build_object('event_id', {n} + 1, 'kind', 'mo') FROM accounts a
WHERE a.name = 'seed';
-- receipts for an ESME (one per recipient), the last ones undelivered, and an MO for it (no recipient)
INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, recipient_id, state, source_addr, dest_addr, body,
                         delivered_at, attempts)
SELECT s.id, s.account_id, 'receipt', g, 'SMS_DELIVERED', '8210' || lpad(g::text, 8, '0'), 'SEED', 'old',
       CASE WHEN g > {n} - {pending} THEN NULL ELSE now() END, CASE WHEN g > {n} - {pending} THEN 0 ELSE 1 END
FROM smpp_accounts s, generate_series(1, {n}) g WHERE s.system_id = 'seedesme';
INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, source_addr, dest_addr, body)
SELECT s.id, s.account_id, 'mo', '821012345678', 'SEED', 'hello' FROM smpp_accounts s WHERE s.system_id = 'seedesme'
"""
OUTBOXES = ("webhook_outbox", "smpp_outbox")


@tests.case
def populated_outboxes_convert_while_traffic_goes_on(env):
    """sql/030 and sql/031: webhook_outbox and smpp_outbox become partitioned by the ranges in one
    run of migrate, under traffic; what was still to be delivered is delivered after."""
    got, lock = [], threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                got.extend(e.get("recipient_id", e["event_id"]) for e in json.loads(body)["events"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = serve_http(port, Handler)
    env.on_teardown(server.server_close)
    env.on_teardown(server.shutdown)
    env.psql("CREATE DATABASE hooks", dbname="postgres")
    conninfo = re.sub(r"dbname=\S+", "dbname=hooks", env.conninfo)
    ctl = [os.path.join(env.builddir, "pushgatectl"), "-d", conninfo]
    r = subprocess.run(ctl + ["migrate", "--to", "29"], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "version 29" in r.stdout, r.stdout + r.stderr

    def q(sql):
        return env.psql(sql, dbname="hooks").strip()

    # a range made ahead (by hand: the function files are today's, for a later schema), up to
    # the seeded rows' recipient ids at least
    top = int(q("SELECT max(hi) FROM history_ranges"))
    hi = max(top + 1000000, ROWS + 2)
    for t in TABLES:
        q(f"CREATE TABLE {t}_{top} PARTITION OF {t} FOR VALUES FROM ({top}) TO ({hi})")
    q(f"INSERT INTO history_ranges (lo, hi, issued) VALUES ({top}, {hi}, 0)")
    q(f"INSERT INTO accounts (name, api_key_hash, webhook_url) VALUES ('seed', '\\x00', 'http://127.0.0.1:{port}/hook')")
    subprocess.run(ctl + ["smpp-account", "add", "seed", "--system-id", "seedesme", "--password-file", "-"],
                   check=True, capture_output=True, timeout=60, input=b"pwseed\n")
    n, pending = ROWS, 10
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(env.pg_port),
                        "-U", "postgres", "-d", "hooks", "-c", HOOK_SEED.format(n=n, pending=pending)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for t in OUTBOXES:
        q(f"VACUUM ANALYZE {t}")
    env.psql(SEED, dbname="hooks")   # the same traffic: its events write the outbox
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(env.pg_port), "-U", "postgres",
            "-d", "hooks", "-c", "CALL traffic()"]
    traffic = subprocess.Popen(psql, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        env.wait_for(lambda: q("SELECT count(*) FROM traffic_log") not in ("", "0"), timeout=30, what="traffic under way")
        time.sleep(0.5)
        t0 = time.monotonic()
        r = subprocess.run(ctl + ["migrate"], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        took = time.monotonic() - t0
        assert r.returncode == 0 and f"version {LATEST}" in r.stdout, r.stdout + r.stderr
        time.sleep(1.0)
    finally:
        q("INSERT INTO traffic_stop VALUES (now())")
        out, err = traffic.communicate(timeout=60)
    assert traffic.returncode == 0, err.decode()
    logged = int(q("SELECT count(*) FROM traffic_log"))
    # the delivered history stays in <outbox>_old; what is still to go moved, each row to its range
    for t, traffic_rows in (("webhook_outbox", logged), ("smpp_outbox", 0)):
        assert q(f"SELECT relkind FROM pg_class WHERE oid = '{t}'::regclass") == "p", t
        assert int(q(f"SELECT count(*) FROM {t}_old")) == n - pending, t
        assert int(q(f"SELECT count(*) FROM {t}_old WHERE delivered_at IS NULL")) == 0, t
        assert int(q(f"SELECT count(*) FROM {t}")) == pending + 1 + traffic_rows, t
        assert int(q(f"SELECT count(DISTINCT id) FROM {t}")) == pending + 1 + traffic_rows, t
        assert int(q(f"SELECT count(*) FROM {t}_other")) == 1, t   # the one without a recipient
        assert q(f"SELECT count(*) FROM {t} w JOIN history_ranges h ON w.recipient_id >= h.lo"
                 f" AND w.recipient_id < h.hi WHERE w.tableoid <> ('{t}_' || h.lo)::regclass") == "0", t
        assert q(f"SELECT pg_get_serial_sequence('{t}', 'id')") == f"public.{t}_id_seq", t
        assert q("SELECT count(*) FROM pg_inherits i LEFT JOIN pg_index x ON x.indrelid = i.inhrelid AND x.indisprimary"
                 f" WHERE i.inhparent = '{t}'::regclass AND x.indexrelid IS NULL") == "0", t
    # one receipt per recipient, still enforced on the partitioned table
    assert q("SELECT indisunique FROM pg_index WHERE indexrelid = 'smpp_outbox_one_receipt'::regclass") == "t"
    gap = float(q("SELECT coalesce(extract(epoch FROM max(at - prev)), 0) FROM"
                  " (SELECT at, lag(at) OVER (ORDER BY n) AS prev FROM traffic_log) g"))
    print(f"# {n} rows in each outbox ({pending} pending): migrate took {took:.2f} s with {logged} traffic"
          f" transactions; longest gap between two {gap:.3f} s", flush=True)
    assert gap < 3.0, f"traffic stood still {gap:.2f} s"
    lo = int(q("SELECT lo FROM history_ranges WHERE lo <= (SELECT max(recipient_id) FROM traffic_log)"
               " ORDER BY lo DESC LIMIT 1"))
    assert q(f"SELECT string_agg(part, ',') FROM history_parts({lo})") \
        == f"smpp_outbox_{lo},webhook_outbox_{lo},events_{lo},sms_parts_{lo},recipients_{lo}"
    # pushgated on it: the pending deliveries (the seeded ones and the traffic's) reach the receiver,
    # and the ESME its receipts and the MO
    env.stop_pushgated()
    env.conninfo = conninfo
    env.key = env.create_account("after2")
    smpps = free_port()
    env.ini_overrides.setdefault("smpp_server", {})["listen"] = f"127.0.0.1:{smpps}"
    env.write_ini()
    env.start_pushgated()
    env.wait_for(lambda: q("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL") == "0", timeout=120,
                 what="every pending webhook delivered")
    with lock:
        seen = set(got)
    assert set(range(n - pending + 1, n + 2)) <= seen, sorted(seen)[:20]   # with the one without a recipient
    assert len(seen) >= pending + 1 + logged, (len(seen), pending, logged)
    log = os.path.join(env.tmp, "seedesme.log")
    r = subprocess.run(["perl", os.path.join(env.srcdir, "tests", "interop", "netsmpp_esme.pl"), "--port", str(smpps),
                        "--system-id", "seedesme", "--password", "pwseed", "--mode", "rx", "--log", log,
                        "--expect-receipts", str(pending), "--expect-mo", "1", "--max-seconds", "60"],
                       capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
    with open(log) as f:
        evs = [dict(t.split("=", 1) for t in line.split() if "=" in t) for line in f if line.startswith("ev=")]
    assert r.returncode == 0, evs[-3:]
    assert sorted(int(e["tlv_id"], 16) for e in evs if e["ev"] == "receipt") == list(range(n - pending + 1, n + 1)), evs
    assert [e["text_hex"] for e in evs if e["ev"] == "mo"] == ["hello".encode().hex()], evs
    env.wait_for(lambda: q("SELECT count(*) FROM smpp_outbox WHERE delivered_at IS NULL") == "0", timeout=10,
                 what="the ESME's answers recorded in the partitioned outbox")


@tests.case
def an_outbox_row_naming_a_recipient_no_range_holds_stops_the_conversion_with_a_clear_error(env):
    """Regression (HISTORY_ROWS=5000000): a row still to be delivered whose recipient id no
    history range holds made sql/030's move fail on the default partition's CHECK, an error
    that names neither the cause nor the fix.  Now each outbox's conversion says so before it
    changes anything, and goes through once the rows are settled."""
    ctl, migrate, q = own_database(env, "orphans")

    assert migrate("--to", "29").returncode == 0
    q("INSERT INTO accounts (name, api_key_hash) VALUES ('seed', '\\x00')")
    subprocess.run(ctl + ["smpp-account", "add", "seed", "--system-id", "orphan", "--password-file", "-"],
                   check=True, capture_output=True, timeout=60, input=b"pworphan\n")
    far = 900000000000
    q(f"INSERT INTO webhook_outbox (account_id, url, event_id, recipient_id, payload)"
      f" SELECT id, 'http://192.0.2.1/', 1, {far}, '{{}}' FROM accounts WHERE name = 'seed'")
    q(f"INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, recipient_id, source_addr, dest_addr)"
      f" SELECT id, account_id, 'receipt', {far}, 'x', 'y' FROM smpp_accounts WHERE system_id = 'orphan'")
    for t in ("webhook_outbox", "smpp_outbox"):
        r = migrate()
        assert r.returncode != 0 and f"{t}: 1 rows still to be delivered name recipient ids no history range" \
            f" holds ({far} to {far})" in r.stderr, r.stdout + r.stderr
        assert q(f"SELECT relkind FROM pg_class WHERE oid = '{t}'::regclass") == "r", t
        assert q(f"SELECT count(*) FROM {t}") == "1", t
        q(f"DELETE FROM {t} WHERE recipient_id = {far}")
    r = migrate()
    assert r.returncode == 0 and f"version {LATEST}" in r.stdout, r.stdout + r.stderr
    for t in ("webhook_outbox", "smpp_outbox"):
        assert q(f"SELECT relkind FROM pg_class WHERE oid = '{t}'::regclass") == "p", t


@tests.case
def the_receipts_index_migration_runs_again_after_being_cut_short(env):
    """sql/033 builds the index on each partition from a list it selects (run by migrate, one
    statement after another outside a transaction): cut short, the version is not recorded, and
    migrate run again drops what it left and builds it anew; each partition then has it once."""
    _, migrate, q = own_database(env, "cutshort")

    assert migrate("--to", "32").returncode == 0
    q("SELECT history_range_add(hi, hi + 1000) FROM history_ranges ORDER BY lo DESC LIMIT 1")
    los = [int(v) for v in q("SELECT string_agg(lo::text, ',' ORDER BY lo) FROM history_ranges").split(",")]
    assert len(los) == 2, los
    # what a run cut short leaves: the parent's index, one partition's built and attached, the
    # other's built and not attached; the old index still there
    q("CREATE INDEX sms_parts_smsc_newest ON ONLY sms_parts (route, smsc_id, recipient_id)")
    for lo in los:
        q(f"CREATE INDEX sms_parts_smsc_newest_{lo} ON sms_parts_{lo} (route, smsc_id, recipient_id)")
    q(f"ALTER INDEX sms_parts_smsc_newest ATTACH PARTITION sms_parts_smsc_newest_{los[0]}")
    assert q("SELECT indisvalid FROM pg_index WHERE indexrelid = 'sms_parts_smsc_newest'::regclass") == "f"
    r = migrate()
    assert r.returncode == 0 and f"version {LATEST}" in r.stdout, r.stdout + r.stderr
    assert q("SELECT indisvalid FROM pg_index WHERE indexrelid = 'sms_parts_smsc_newest'::regclass") == "t"
    assert q("SELECT to_regclass('sms_parts_route_smsc_id') IS NULL") == "t"
    for lo in los:
        assert q(f"SELECT count(*) FROM pg_indexes WHERE tablename = 'sms_parts_{lo}'") == "2", lo  # and the key
        assert q(f"SELECT i.inhparent::regclass FROM pg_inherits i"
                 f" WHERE i.inhrelid = 'sms_parts_smsc_newest_{lo}'::regclass") == "sms_parts_smsc_newest", lo
    r = migrate()
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr


tests.run()
