"""t_rollups: the report rollups (sql/026, report_rollup()) equal what the
recipients say, and the watermark never skips an event.

Real PostgreSQL, smsc-sim and pushgated (its own job off, [reports]
rollup_interval = 0, until the last case: the test runs `pushgatectl rollup`).
History written before the first run (three days of hours of every final
state, opt-outs and latencies across the buckets) and live traffic (SMS
delivered, failed, expired, a push delivered, a push that fell back to SMS,
a dropped and a canceled recipient) are counted; then every row of
report_counts and report_latency, per hour and per day, is compared with the
same grouping computed from recipients and messages, and report_outcomes()
and report_routes() with their _raw twins for windows that start on a day, in
a day and before all history.  A transaction still open when the job runs
holds the watermark behind its start, and what it wrote is counted once it
commits; a run that finds another under way says `busy` and `pushgatectl
rollup` waits for it; a role without pg_read_all_stats is told why nothing
moves.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP, _FIELD_SEP, _NULL_MARK
from wsclient import WS

tests = TAP()

# report_hist_bounds() in ms, checked independently of report_hist_bucket()
HIST_BOUNDS = [100, 250, 500, 1000, 2000, 3000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000,
               1800000, 3600000, 10800000, 43200000, 86400000]
FINAL = "('PUSH_DELIVERED', 'DROPPED', 'CANCELED', 'SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED', 'SMS_UNKNOWN')"
COUNT_COLS = ("recipients", "push_delivered", "sms_delivered", "failed", "opted_out", "unknown", "dropped",
              "canceled", "pending", "push_share", "sms_saved")
ctx = {}

# 420 recipients of account test over the last 80 hours, created before any rollup run: each
# state in turn, final 0-2000 s after acceptance, some SMS after an opt-out.
HISTORY = """
WITH a AS (SELECT id FROM accounts WHERE name = 'test'),
m AS (
  INSERT INTO messages (account_id, sender, body, created_at)
  SELECT a.id, 'HIST' || (g % 3), 'old', date_trunc('second', now()) - make_interval(hours => 2 + (g * 7) % 78, mins => g % 60)
  FROM a, generate_series(1, 420) g ORDER BY g
  RETURNING id, account_id, created_at),
k AS (
  SELECT m.*, s.state, s.channel, s.route, s.sub, s.push,
         m.created_at + make_interval(secs => ((m.id * 37) % 2000) / 10.0) AS final_at
  FROM m CROSS JOIN LATERAL (SELECT * FROM (VALUES
      (0, 'PUSH_DELIVERED', 'push', NULL, false, true), (1, 'SMS_DELIVERED', 'sms', 'default', true, true),
      (2, 'SMS_DELIVERED', 'sms', 'backup', true, false), (3, 'SMS_FAILED', 'sms', 'default', true, false),
      (4, 'SMS_EXPIRED', 'sms', 'default', false, false), (5, 'SMS_UNKNOWN', 'sms', 'backup', true, false),
      (6, 'DROPPED', NULL, NULL, false, false), (7, 'CANCELED', 'sms', 'default', false, false))
    AS s(i, state, channel, route, sub, push) WHERE s.i = m.id % 8) s),
r AS (
  INSERT INTO recipients (message_id, account_id, msisdn, state, channel, route, created_at, updated_at,
                          submitted_at, final_at, push_deadline, expires_at)
  SELECT k.id, k.account_id, '821099' || lpad(k.id::text, 6, '0'), k.state, k.channel, k.route, k.created_at,
         k.final_at, CASE WHEN k.sub THEN k.created_at + interval '50 milliseconds' END, k.final_at,
         CASE WHEN k.push THEN k.created_at + interval '2 seconds' END, k.created_at + interval '1 day'
  FROM k ORDER BY k.id
  RETURNING id, message_id, account_id, state, route, created_at, final_at)
INSERT INTO events (recipient_id, message_id, account_id, at, state, route, detail)
SELECT r.id, r.message_id, r.account_id, e.at, e.state, r.route, 'history'
FROM r CROSS JOIN LATERAL (VALUES (1, r.created_at, 'ACCEPTED'),
    (2, r.created_at + interval '1 millisecond', CASE WHEN r.message_id % 5 = 0 THEN 'OPTED_OUT' END),
    (3, r.final_at, r.state)) AS e(o, at, state)
WHERE e.state IS NOT NULL ORDER BY r.id, e.o
"""

# The rollups' rows as recomputed from the recipients (final ones) and messages (accepted ones).
RAW_COUNTS = """
WITH x AS (
  SELECT m.created_at, m.account_id, m.sender, coalesce(r.route, '') AS route, coalesce(r.channel, '') AS channel,
         r.state, (r.state = 'DROPPED' OR (r.channel = 'sms' AND EXISTS (SELECT 1 FROM events e
           WHERE e.recipient_id = r.id AND e.state = 'OPTED_OUT'))) AS opted_out,
         r.push_deadline IS NOT NULL AS push_tried, r.submitted_at IS NOT NULL AS submitted
  FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.state IN {final}
  UNION ALL
  SELECT m.created_at, m.account_id, m.sender, '', '', 'ACCEPTED', false, false, false
  FROM recipients r JOIN messages m ON m.id = r.message_id)
SELECT g.grain, date_trunc(g.unit, x.created_at, 'UTC')::text, x.account_id::text, x.sender, x.route, x.channel,
       x.state, x.opted_out::text, x.push_tried::text, x.submitted::text, count(*)::text
FROM x CROSS JOIN (VALUES ('h', 'hour'), ('d', 'day')) g(grain, unit)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
""".format(final=FINAL)

ROLLED_COUNTS = """
SELECT grain::text, start::text, account_id::text, sender, route, channel, state, opted_out::text,
       push_tried::text, submitted::text, recipients::text
FROM report_counts ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""

# Latencies in ms of the final recipients, with their histogram's key (bucketed in Python):
# a route for the receipt latency only.
RAW_LATENCIES = """
SELECT date_trunc('hour', m.created_at, 'UTC')::text, date_trunc('day', m.created_at, 'UTC')::text,
       m.account_id::text, m.sender, k.route, k.kind, k.ms::text
FROM recipients r JOIN messages m ON m.id = r.message_id
CROSS JOIN LATERAL (VALUES
    (CASE r.state WHEN 'PUSH_DELIVERED' THEN 'push' WHEN 'SMS_DELIVERED' THEN 'sms' END,
     extract(epoch FROM r.final_at - r.created_at)::float8 * 1000, ''),
    ('receipt', CASE WHEN r.state = 'SMS_DELIVERED' AND r.submitted_at IS NOT NULL
                     THEN extract(epoch FROM r.final_at - r.submitted_at)::float8 * 1000 END,
     coalesce(r.route, ''))) AS k(kind, ms, route)
WHERE k.kind IS NOT NULL AND k.ms IS NOT NULL
"""


def bucket(ms):
    return sum(1 for b in HIST_BOUNDS if b <= ms)


def raw_latency_rows(env):
    out = {}
    for hour, day, account, sender, route, kind, ms in env.sql(RAW_LATENCIES):
        b = bucket(float(ms))
        for key in (("h", hour, account, sender, route, kind, b), ("d", day, account, sender, route, kind, b)):
            out[key] = out.get(key, 0) + 1
    return sorted(k + (n,) for k, n in out.items())


def rolled_latency_rows(env):
    return sorted((g, start, account, sender, route, kind, int(b), int(n)) for g, start, account, sender, route, kind, b, n
                  in env.sql("SELECT grain::text, start::text, account_id::text, sender, route, kind, bucket, n"
                             " FROM report_latency"))


def rollup(env):
    r = env.ctl("rollup", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def all_final(env):
    return env.scalar(f"SELECT count(*) FROM recipients WHERE state NOT IN {FINAL}") == "0"


def check_equal(env, label):
    raw, rolled = env.sql(RAW_COUNTS), env.sql(ROLLED_COUNTS)
    missing, extra = sorted(set(raw) - set(rolled)), sorted(set(rolled) - set(raw))
    assert raw == rolled, f"{label}: rows only in the recipients: {missing[:10]}; only in the rollups: {extra[:10]}"
    raw_l, rolled_l = raw_latency_rows(env), rolled_latency_rows(env)
    assert raw_l == rolled_l, f"{label}: latency rows differ: {sorted(set(raw_l) ^ set(rolled_l))[:10]}"
    return len(raw), len(raw_l)


def register(env, msisdn):
    """A registered app install of msisdn, its socket past hello."""
    v = env.register_device(msisdn)
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": v["token"]})
    assert ws.recv()["type"] == "welcome"
    return ws


@tests.case
def history_and_live_traffic_are_counted_exactly_per_hour_and_day(env):
    env.psql(HISTORY)
    acks = register(env, "821066600010")
    mute = register(env, "821066600020")
    pushed = env.send(["821066600010"], sender="LIVE")["recipients"][0]["id"]
    msg = acks.recv_type("msg")
    acks.send({"type": "ack", "id": msg["id"]})
    env.send(["821066600020"], sender="LIVE")
    mute.recv_type("msg")   # never acknowledged: SMS after the push deadline
    env.send(["821066600001", "821066600002", "821066600009", "821066600007", "821066600006"], sender="LIVE")
    env.ctl("account", "policy", "test", "drop", check=True)
    env.send(["821066600099"], sender="DROP")
    env.ctl("account", "policy", "test", "sms", check=True)
    other = env.create_account("other")
    env.send(["821066600031", "821066600039"], sender="OTHER", key=other)
    st, _, b, raw = env.http("POST", "/v1/batches", {"from": "LATER", "text": "x", "send_at": "2099-01-01T00:00:00Z",
                                                     "recipients": [{"to": "821066600041"}, {"to": "821066600042"}]})
    assert st == 202, raw
    st, _, c, raw = env.http("POST", f"/v1/batches/{b['id']}/cancel")
    assert st == 200 and c["canceled"] == 2, raw
    env.wait_for(lambda: all_final(env), timeout=60, what="every recipient final")
    for ws in (acks, mute):
        ws.close()
    assert env.scalar(f"SELECT state FROM recipients WHERE id = {int(pushed)}") == "PUSH_DELIVERED"
    states = dict(env.sql("SELECT state, count(*)::text FROM recipients GROUP BY 1"))
    for s in ("PUSH_DELIVERED", "SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN", "DROPPED", "CANCELED"):
        assert int(states.get(s, 0)) > 0, (s, states)

    assert env.scalar("SELECT watermark FROM report_rollup_state") is None
    out = rollup(env)
    n_events = int(out.split()[-1])
    want = int(env.scalar(f"SELECT count(*) FROM events WHERE kind = 'state' AND (state = 'ACCEPTED' OR state IN {FINAL})"))
    assert n_events == want, (out, want)
    rows, lat = check_equal(env, "after the first run")
    hours = env.scalar("SELECT count(DISTINCT start) FROM report_counts WHERE grain = 'h'")
    days = env.scalar("SELECT count(DISTINCT start) FROM report_counts WHERE grain = 'd'")
    assert int(hours) > 50 and int(days) >= 4, (hours, days)
    print(f"# {n_events} events -> {rows} counter rows over {hours} hours and {days} days, {lat} histogram rows",
          file=sys.stderr)
    # a second run finds nothing new and changes nothing
    out = rollup(env)
    assert out.split()[-1] == "0", out
    check_equal(env, "after a second run")


@tests.case
def reports_from_the_rollups_equal_the_reports_from_the_recipients(env):
    cols = ", ".join(COUNT_COLS)
    # the windows, fixed once (an hour may turn between two queries): from a day's start, from an
    # hour inside a day, from the current hour, and all of it
    day_start, in_a_day, this_hour = env.sql(
        "SELECT date_trunc('day', now() - interval '2 days', 'UTC'), date_trunc('hour', now() - interval '50 hours', 'UTC'),"
        " date_trunc('hour', now(), 'UTC')")[0]
    for since in ("'-infinity'", f"'{day_start}'", f"'{in_a_day}'", f"'{this_hour}'"):
        for by in ("total", "account", "sender", "day"):
            q = "SELECT day::text, account, sender, {cols} FROM {fn}(({since})::timestamptz, '{by}') ORDER BY 1, 2, 3"
            rolled = env.sql(q.format(cols=cols, fn="report_outcomes", since=since, by=by))
            raw = env.sql(q.format(cols=cols, fn="report_outcomes_raw", since=since, by=by))
            assert rolled == raw, (since, by, rolled, raw)
            assert rolled or since == f"'{this_hour}'", (since, by)
        q = ("SELECT route, recipients, submitted, delivered, failed, unknown, pending, delivery_rate"
             " FROM {fn}(({since})::timestamptz) ORDER BY 1")
        rolled = env.sql(q.format(fn="report_routes", since=since))
        raw = env.sql(q.format(fn="report_routes_raw", since=since))
        assert rolled == raw, (since, rolled, raw)
    # the 90-day report reads counters: neither recipients nor events nor messages
    plan = env.psql("EXPLAIN SELECT * FROM report_outcomes(now() - interval '90 days', 'sender')")
    for table in ("recipients", "events", "messages"):
        assert f"on {table} " not in plan and f"on {table}_" not in plan, plan
    assert "report_counts" in plan, plan
    # report_counts_in() and report_latency_in() are inlined: the scans of the tables show, no function's
    for q in ("report_outcomes(now() - interval '90 days', 'sender')", "report_routes(now() - interval '90 days')"):
        plan = env.psql(f"EXPLAIN SELECT * FROM {q}")
        assert "Function Scan" not in plan and " on report_counts " in plan and " on report_latency " in plan, plan


@tests.case
def an_open_transaction_holds_the_watermark_and_is_counted_once_it_commits(env):
    rid = env.scalar("SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id "
                     "WHERE m.sender = 'LIVE' AND r.state = 'SMS_DELIVERED' ORDER BY r.id LIMIT 1")
    st, _, b, raw = env.http("POST", "/v1/batches", {"from": "SLOW", "text": "x", "send_at": "2099-01-01T00:00:00Z",
                                                     "recipients": [{"to": "821066600051"}]})
    assert st == 202, raw
    late = env.scalar(f"SELECT id FROM recipients WHERE batch_id = {b['id']}")
    tx = env.open_tx()
    [started] = tx.run("BEGIN; SELECT now()::text;")
    tx.run(f"UPDATE recipients SET state = 'CANCELED', final_at = now(), updated_at = now(), release_at = NULL"
           f" WHERE id = {late}; INSERT INTO events (recipient_id, message_id, account_id, state, detail)"
           f" SELECT id, message_id, account_id, 'CANCELED', 'by hand' FROM recipients WHERE id = {late};")
    # more traffic commits meanwhile, after the open transaction began
    env.send(["821066600061"], sender="SLOW")
    env.wait_for(lambda: env.scalar("SELECT count(*) FROM recipients r JOIN messages m ON m.id = r.message_id"
                                    f" WHERE m.sender = 'SLOW' AND r.state IN {FINAL}") == "1",
                 timeout=30, what="the SLOW SMS final")
    time.sleep(1.2)   # the job also stays a second behind its own start
    for _ in range(3):
        w, blocked, busy = env.sql("SELECT watermark::text, blocked, busy FROM report_rollup()")[0]
        assert blocked is None and busy == "f", (blocked, busy)
        assert env.scalar(f"SELECT '{w}'::timestamptz <= '{started}'::timestamptz") == "t", (w, started)
    assert env.scalar("SELECT count(*) FROM report_counts WHERE state = 'CANCELED' AND sender = 'SLOW'") == "0"
    # another run under way (a node holding the state row): this one returns at once
    [busy] = tx.run("SELECT 1 FROM report_rollup_state FOR UPDATE;")
    t0 = time.monotonic()
    assert env.sql("SELECT events, busy, blocked FROM report_rollup()") == [("0", "t", "another run is under way")]
    assert time.monotonic() - t0 < 5
    # pushgatectl rollup waits for that run (busy) instead of failing, and ends once it has
    waiting = subprocess.Popen([os.path.join(env.builddir, "pushgatectl"), "-d", env.conninfo, "rollup"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    time.sleep(1)
    assert waiting.poll() is None, waiting.communicate()
    tx.run("COMMIT;")
    out, err = waiting.communicate(timeout=180)
    assert waiting.returncode == 0 and out.startswith("watermark "), (waiting.returncode, out, err)
    rollup(env)
    check_equal(env, "after the open transaction committed")
    assert env.scalar("SELECT sum(recipients) FROM report_counts WHERE grain = 'd' AND state = 'CANCELED'"
                      " AND sender = 'SLOW'") == "1"


@tests.case
def a_role_without_pg_read_all_stats_is_told_why_nothing_moves(env):
    env.psql("CREATE ROLE blind LOGIN; GRANT SELECT, UPDATE ON report_rollup_state TO blind;"
             " GRANT SELECT, INSERT, UPDATE ON report_counts, report_latency TO blind;"
             " GRANT SELECT ON events, recipients, messages TO blind")
    before = env.scalar("SELECT watermark::text FROM report_rollup_state")
    conninfo = env.conninfo.replace("user=postgres", "user=blind")
    assert conninfo != env.conninfo, env.conninfo
    r = subprocess.run([os.path.join(env.builddir, "pushgatectl"), "-d", conninfo, "rollup"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "pg_read_all_stats" in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert env.scalar("SELECT watermark::text FROM report_rollup_state") == before
    env.psql("GRANT pg_read_all_stats TO blind")
    r = subprocess.run([os.path.join(env.builddir, "pushgatectl"), "-d", conninfo, "rollup"],
                       capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout, r.stderr)


@tests.case
def pushgated_keeps_the_rollups_up_to_date_by_itself(env):
    env.ini_overrides["reports"] = {"rollup_interval": "0.2"}
    env.stop_pushgated()
    env.write_ini()
    env.start_pushgated()
    env.send(["821066600071"], sender="AUTO")
    env.wait_for(lambda: env.scalar("SELECT coalesce(sum(recipients), 0) FROM report_counts WHERE grain = 'd'"
                                    " AND sender = 'AUTO' AND state = 'SMS_DELIVERED'") == "1",
                 timeout=30, what="the AUTO SMS counted by pushgated's job")
    st, _, body, raw = env.http("GET", "/metrics", key=None)
    text = raw.decode()
    assert "pushgate_report_rollup_events_total" in text and "pushgate_report_rollup_lag_seconds" in text, text[-2000:]
    lag = [float(l.split()[-1]) for l in text.splitlines() if l.startswith("pushgate_report_rollup_lag_seconds ")]
    assert lag and 0 <= lag[0] < 30, lag
    assert "ev=rollup_blocked" not in env.pushgated_log_text()
    check_equal(env, "with pushgated's job")


INI = {"push": {"otp_echo": "yes", "push_timeout": "2", "heartbeat": "5"}, "reports": {"rollup_interval": "0"}}
tests.run(ini=INI)
