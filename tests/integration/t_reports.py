"""t_reports: the report views (sql/006_reports.sql), pushgatectl report and
GET /v1/reports/summary against a known mix of outcomes.

Real PostgreSQL, smsc-sim and pushgated.  Account "test" (sender ACME)
sends to: a device that acks (PUSH_DELIVERED), a device that never acks
(push deadline -> SMS_DELIVERED), a number that blocked ACME in the app
(OPTED_OUT -> SMS_DELIVERED, then DROPPED under the drop policy), and
numbers without the app that smsc-sim delivers (..1, ..2), fails (..9,
..6) or expires (..7).  Account "other" sends two SMS.  Every number is
then checked exactly in each view, in the three output formats of
pushgatectl report, and in the API summary (own account only; operators
see any account or all).
"""
import csv
import io
import json
import re
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP
from wsclient import WS

tests = TAP()
PUSH_TIMEOUT = 2
FINAL = ("PUSH_DELIVERED", "SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN", "DROPPED", "CANCELED")
ctx = {}

# What account "test" must show once every recipient is final.
EXPECTED = {"recipients": 9, "push_delivered": 1, "sms_delivered": 4, "failed": 3, "opted_out": 2,
            "unknown": 0, "dropped": 1, "canceled": 0, "pending": 0, "sms_saved": 1}


def register(env, msisdn):
    """A registered app install of msisdn, its socket past hello."""
    v = env.register_device(msisdn)
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": v["token"]})
    assert ws.recv()["type"] == "welcome"
    return ws


def state(env, rid):
    return env.scalar(f"SELECT state FROM recipients WHERE id = {int(rid)}")


def send(env, to, sender="ACME", key=None):
    body = env.send(to, sender=sender, key=key or env.key)
    return [int(r["id"]) for r in body["recipients"]], int(body["id"])


def all_final(env):
    finals = ",".join(f"'{s}'" for s in FINAL)
    return env.scalar(f"SELECT count(*) FROM recipients WHERE state NOT IN ({finals})") == "0"


def pct(values, p):
    """percentile_cont: linear interpolation between the closest ranks."""
    v = sorted(values)
    if not v:
        return None
    pos = p * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


# report_hist_bounds() (sql/functions/report_hist.sql): the latency histograms' bucket bounds in ms
HIST_BOUNDS = [0, 100, 250, 500, 1000, 2000, 3000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000,
               1800000, 3600000, 10800000, 43200000, 86400000, float("inf")]


def bucket_of(ms):
    """(lower, upper) bounds of the histogram bucket holding ms."""
    for lo, hi in zip(HIST_BOUNDS, HIST_BOUNDS[1:]):
        if lo <= ms < hi:
            return lo, hi
    raise ValueError(ms)


def near(got, values, p):
    """A percentile read from the rollups' histograms lies in the buckets of the two samples
    percentile_cont interpolates between (the exact value lies between them)."""
    v = sorted(values)
    if not v:
        return got is None
    pos = p * (len(v) - 1)
    lo, hi = bucket_of(v[int(pos)])[0], bucket_of(v[min(int(pos) + 1, len(v) - 1)])[1]
    return got is not None and lo <= float(got) <= hi


def latencies(env, account, state_):
    rows = env.sql("SELECT extract(epoch FROM r.final_at - r.created_at) * 1000 FROM recipients r "
                   f"JOIN accounts a ON a.id = r.account_id WHERE a.name = '{account}' AND r.state = '{state_}'")
    return [float(x) for (x,) in rows]


def check_outcomes(row, label):
    """row: a mapping of the outcome columns for account test."""
    for k, want in EXPECTED.items():
        assert int(row[k]) == want, f"{label}: {k} = {row[k]}, want {want}; {row}"
    assert abs(float(row["push_share"]) - 0.2) < 1e-9, f"{label}: push_share {row['push_share']}"


def check_latency(env, get, label):
    """get(channel, p) -> the reported value."""
    for ch, st in (("push", "PUSH_DELIVERED"), ("sms", "SMS_DELIVERED")):
        lat = latencies(env, "test", st)
        for p in (0.5, 0.95):
            assert near(get(ch, p), lat, p), f"{label}: {ch} p{int(p * 100)} = {get(ch, p)}, want {pct(lat, p)}"


@tests.case
def a_known_mix_of_outcomes_reaches_its_final_states(env):
    acks = register(env, "821077700010")
    mute = register(env, "821077700020")
    blocker = register(env, "821077700030")
    blocker.send({"type": "reject", "sender": "ACME"})
    assert blocker.recv_type("rejected")["sender"] == "ACME"

    (pushed,), m1 = send(env, ["821077700010"])
    msg = acks.recv_type("msg")
    assert msg["id"] == pushed
    acks.send({"type": "ack", "id": pushed})
    (unacked,), _ = send(env, ["821077700020"])
    mute.recv_type("msg")   # received, never acknowledged: SMS after the deadline
    (opted,), _ = send(env, ["821077700030"])
    sms, m_sms = send(env, ["821077700021", "821077700022", "821077700029", "821077700027", "821077700026"])
    env.ctl("account", "policy", "test", "drop", check=True)
    (dropped,), _ = send(env, ["821077700030"])
    env.ctl("account", "policy", "test", "sms", check=True)
    assert state(env, dropped) == "DROPPED"

    other = env.create_account("other")
    ctx["other_key"] = other
    send(env, ["821077700041", "821077700049"], sender="OTHER", key=other)

    env.wait_for(lambda: all_final(env), timeout=PUSH_TIMEOUT + 30, what="every recipient final")
    assert state(env, pushed) == "PUSH_DELIVERED"
    assert state(env, unacked) == "SMS_DELIVERED"
    assert state(env, opted) == "SMS_DELIVERED"
    for ws in (acks, mute, blocker):
        ws.close()

    # One campaign: the five SMS-only numbers are batch N of account test.
    bid = int(env.scalar("INSERT INTO batches (account_id, name, state, total) SELECT id, 'spring', 'DONE', 5 "
                         "FROM accounts WHERE name = 'test' RETURNING id"))
    env.psql(f"UPDATE messages SET batch_id = {bid} WHERE id = {m_sms}; "
             f"UPDATE recipients SET batch_id = {bid} WHERE message_id = {m_sms}")
    ctx["batch"] = bid
    ctx["opkey"] = env.ctl("account", "add", "--operator", "ops", check=True).stdout.strip()
    # reports read the rollups: everything committed so far is in them once this returns
    r = env.ctl("rollup", check=True)
    assert re.fullmatch(r"watermark \S+ events \d+\n", r.stdout), r.stdout


def view_rows(env, query):
    out = env.psql(f"SELECT coalesce(json_agg(t), '[]') FROM ({query}) t")
    return json.loads(out)


@tests.case
def views_count_each_recipient_once_by_its_state(env):
    rows = view_rows(env, "SELECT * FROM report_by_sender WHERE account = 'test'")
    assert len(rows) == 1 and rows[0]["sender"] == "ACME", rows
    check_outcomes(rows[0], "report_by_sender")
    check_latency(env, lambda ch, p: rows[0][f"{ch}_p{int(p * 100)}_ms"], "report_by_sender")
    day = view_rows(env, "SELECT * FROM report_by_day WHERE account = 'test'")
    assert len(day) == 1, day
    check_outcomes(day[0], "report_by_day")
    o = view_rows(env, "SELECT * FROM report_by_sender WHERE account = 'other'")
    assert [(r["sender"], r["recipients"], r["sms_delivered"], r["failed"], r["push_share"]) for r in o] \
        == [("OTHER", 2, 1, 1, 0)], o


@tests.case
def batch_view_reads_one_batch_and_counts_it(env):
    bid = ctx["batch"]
    rows = view_rows(env, f"SELECT * FROM report_by_batch WHERE batch_id = {bid}")
    assert len(rows) == 1, rows
    r = rows[0]
    assert (r["recipients"], r["sms_delivered"], r["failed"], r["push_delivered"], r["pending"]) == (5, 2, 3, 0, 0), r
    assert r["push_share"] == 0 and r["sms_saved"] == 0, r
    states = view_rows(env, f"SELECT state, recipients FROM report_by_batch_state WHERE batch_id = {bid} ORDER BY state")
    assert states == [{"state": "SMS_DELIVERED", "recipients": 2}, {"state": "SMS_EXPIRED", "recipients": 1},
                      {"state": "SMS_FAILED", "recipients": 2}], states
    plan = env.psql(f"EXPLAIN SELECT * FROM report_by_batch WHERE batch_id = {bid}")
    assert "recipients_batch_state" in plan or f"batch_id = {bid}" in plan, plan
    assert "Seq Scan on recipients" not in plan, plan


@tests.case
def route_and_channel_views_match_the_recipients_table(env):
    want = env.sql("SELECT route, count(*), count(submitted_at), count(*) FILTER (WHERE state = 'SMS_DELIVERED'),"
                   " count(*) FILTER (WHERE state IN ('SMS_FAILED', 'SMS_EXPIRED')) FROM recipients"
                   " WHERE channel = 'sms' AND route IS NOT NULL GROUP BY route ORDER BY route")
    rows = view_rows(env, "SELECT * FROM report_by_route ORDER BY route")
    got = [(r["route"], str(r["recipients"]), str(r["submitted"]), str(r["delivered"]), str(r["failed"])) for r in rows]
    assert got == want, (got, want)
    for r in rows:
        d, f, u = r["delivered"], r["failed"], r["unknown"]
        assert abs(float(r["delivery_rate"]) - round(d / (d + f + u), 4)) < 1e-9, r
        assert r["receipt_p50_ms"] is not None and r["receipt_p50_ms"] <= r["receipt_p95_ms"], r
    ch = {r["channel"]: r for r in view_rows(env, "SELECT * FROM report_by_channel WHERE account = 'test'")}
    assert (ch["push"]["recipients"], ch["push"]["delivered"], ch["push"]["fell_back"]) == (2, 1, 1), ch
    assert float(ch["push"]["success_rate"]) == 0.5, ch
    assert (ch["sms"]["delivered"], ch["sms"]["failed"], ch["sms"]["unknown"]) == (4, 3, 0), ch


def ctl_report(env, *args):
    """stdout of pushgatectl report, bytes decoded as they are (CSV keeps its CRLF)."""
    cmd = [os.path.join(env.builddir, "pushgatectl"), "-d", env.conninfo, "report"] + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout.decode("utf-8")


def csv_sections(text):
    """Blocks separated by an empty line; the first field of every row names its section."""
    out = {}
    for block in text.split("\r\n\r\n"):
        if not block.strip():
            continue
        rows = list(csv.reader(io.StringIO(block, newline="")))
        head = rows[0]
        assert head[0] == "section", head
        for row in rows[1:]:
            out.setdefault(row[0], []).append(dict(zip(head[1:], row[1:])))
        out.setdefault(None, []).append(head)
    return out


@tests.case
def pushgatectl_report_in_table_csv_and_json(env):
    table = ctl_report(env)
    assert "messages accepted since" in table and "ACME" in table and "OTHER" in table, table
    line = [l for l in table.splitlines() if " ACME " in f" {l} "][0].split()
    assert line[:3] == ["test", "ACME", "9"], line

    text = ctl_report(env, "--format", "csv")
    assert "\r\n" in text
    secs = csv_sections(text)
    acme = [r for r in secs["senders"] if r["account"] == "test"]
    assert len(acme) == 1, secs
    check_outcomes(acme[0], "csv")
    routes = {r["route"]: r for r in secs["routes"]}
    assert routes, secs

    doc = json.loads(ctl_report(env, "--format", "json", "--since", time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))))
    acme = [r for r in doc["senders"] if r["account"] == "test"][0]
    check_outcomes(acme, "json")
    check_latency(env, lambda ch, p: acme[f"{ch}_p{int(p * 100)}_ms"], "json")
    assert {r["route"]: str(r["recipients"]) for r in doc["routes"]} == {k: v["recipients"] for k, v in routes.items()}
    empty = json.loads(ctl_report(env, "--format", "json", "--since", "2099-01-01T00:00:00Z"))
    assert empty["senders"] == [] and empty["routes"] == [], empty
    assert empty["since"] == "2099-01-01T00:00:00.000Z", empty
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", empty["as_of"]), empty   # the rollups' watermark


@tests.case
def pushgatectl_report_of_one_batch_by_state(env):
    bid = str(ctx["batch"])
    table = ctl_report(env, "--batch", bid)
    assert "spring" in table and "SMS_EXPIRED" in table, table
    doc = json.loads(ctl_report(env, "--batch", bid, "--format", "json"))
    assert doc["batch"]["name"] == "spring" and doc["batch"]["account"] == "test", doc
    assert {s["state"]: s["recipients"] for s in doc["states"]} == {"SMS_DELIVERED": 2, "SMS_EXPIRED": 1, "SMS_FAILED": 2}
    assert (doc["totals"]["recipients"], doc["totals"]["failed"]) == (5, 3), doc
    secs = csv_sections(ctl_report(env, "--batch", bid, "--format", "csv"))
    assert {r["state"]: r["recipients"] for r in secs["states"]} == {"SMS_DELIVERED": "2", "SMS_EXPIRED": "1", "SMS_FAILED": "2"}
    assert secs["totals"][0]["sms_delivered"] == "2", secs


@tests.case
def pushgatectl_report_refuses_bad_dates_and_unknown_batches(env):
    for bad in ("2024-02-30", "yesterday", "2024-01-01T25:00", "2024-01-01T10:00+5"):
        r = env.ctl("report", "--since", bad)
        assert r.returncode == 1 and "--since" in r.stderr, (bad, r.returncode, r.stderr)
    r = env.ctl("report", "--batch", "987654")
    assert r.returncode == 1 and "no batch 987654" in r.stderr, (r.returncode, r.stderr)
    r = env.ctl("report", "--batch", "x1")
    assert r.returncode == 1, r.stderr
    r = env.ctl("report", "--format", "xml")
    assert r.returncode == 2, r.stderr
    r = env.ctl("report", "--batch", "1", "--since", "2024-01-01")
    assert r.returncode == 2, r.stderr


def summary(env, query="", key=None):
    st, _, body, raw = env.http("GET", "/v1/reports/summary" + query, key=key or env.key)
    return st, body, raw


@tests.case
def api_summary_shows_the_callers_own_numbers(env):
    st, b, raw = summary(env)
    assert st == 200, raw
    assert b["account"] == "test", b
    check_outcomes(b, "api")
    check_latency(env, lambda ch, p: b["latency_ms"][ch]["p50" if p == 0.5 else "p95"], "api")
    st, o, raw = summary(env, key=ctx["other_key"])
    assert st == 200 and o["account"] == "other", raw
    assert (o["recipients"], o["sms_delivered"], o["failed"], o["push_delivered"]) == (2, 1, 1, 0), o
    assert o["push_share"] == 0, o
    st, later, raw = summary(env, "?since=2099-01-01")
    assert st == 200 and later["recipients"] == 0 and later["push_share"] is None, raw
    assert later["since"] == "2099-01-01T00:00:00.000Z" and later["latency_ms"]["sms"]["p50"] is None, later
    st, b, raw = summary(env, f"?batch={ctx['batch']}")
    assert st == 200 and (b["batch"], b["recipients"], b["failed"]) == (ctx["batch"], 5, 3), raw


@tests.case
def api_summary_lets_operators_see_any_account_or_all(env):
    st, b, raw = summary(env, "?account=test", key=ctx["opkey"])
    assert st == 200, raw
    check_outcomes(b, "operator account=test")
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    st, b, raw = summary(env, "?since=" + since.replace(":", "%3A"), key=ctx["opkey"])
    assert st == 200 and b["account"] is None, raw
    want = env.sql(f"SELECT count(*), count(*) FILTER (WHERE r.state = 'PUSH_DELIVERED'),"
                   f" count(*) FILTER (WHERE r.state = 'SMS_DELIVERED') FROM recipients r"
                   f" JOIN messages m ON m.id = r.message_id WHERE m.created_at >= '{since}'")[0]
    assert (str(b["recipients"]), str(b["push_delivered"]), str(b["sms_delivered"])) == want, (b, want)
    st, b, raw = summary(env, f"?batch={ctx['batch']}", key=ctx["opkey"])
    assert st == 200 and b["account"] == "test" and b["recipients"] == 5, raw


@tests.case
def api_summary_refuses_bad_input_and_other_accounts(env):
    for q in ("?since=2024-02-30", "?since=soon", "?since=2024-01-01T10%3A00%2B5"):
        st, b, raw = summary(env, q)
        assert st == 400 and b["error"]["field"] == "since", (q, raw)
    st, b, raw = summary(env, "?batch=abc")
    assert st == 400 and b["error"]["field"] == "batch", raw
    st, b, raw = summary(env, "?colour=red")
    assert st == 400 and b["error"]["code"] == "invalid_field", raw
    st, b, raw = summary(env, "?account=other")
    assert st == 403, raw
    st, b, raw = summary(env, f"?batch={ctx['batch']}", key=ctx["other_key"])
    assert st == 404 and b["error"]["field"] == "batch", raw
    st, b, raw = summary(env, "?account=nosuch", key=ctx["opkey"])
    assert st == 404, raw
    st, b, raw = summary(env, "?since=2024-01-01", key="wrong")
    assert st == 401, raw
    st, _, _, raw = env.http("POST", "/v1/reports/summary", {})
    assert st == 405, raw


@tests.case
def json_is_one_style_with_rounded_numbers(env):
    # regression: SQL-built bodies said {"id" : 1}, jansson's {"id":1}, and
    # report --format json printed 0.66669999999999996
    long_real = re.compile(r"\d\.\d{13,}")
    out = ctl_report(env, "--format", "json")
    assert not long_real.search(out), out
    for path in ("/v1/reports/summary", f"/v1/reports/summary?batch={ctx['batch']}", "/v1/account",
                 f"/v1/batches/{ctx['batch']}", "/v1/messages?limit=3"):
        st, _, body, raw = env.http("GET", path)
        assert st == 200, (path, raw)
        text = raw.decode()
        assert '" :' not in text and '": ' not in text and ', "' not in text, (path, text[:300])
        assert not long_real.search(text), (path, text[:300])
        assert json.dumps(body, separators=(",", ":"), ensure_ascii=False) == text, (path, text[:300])


tests.run(ini={"push": {"otp_echo": "yes", "push_timeout": str(PUSH_TIMEOUT), "heartbeat": "5"}})
