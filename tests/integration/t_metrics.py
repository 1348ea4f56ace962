"""t_metrics: /metrics to Prometheus's conventions, after real traffic.

Real PostgreSQL, smsc-sim and pushgated.  Traffic: SMS to numbers without
an app (delivered by receipt, one failed by its receipt), a push acked by a
WebSocket device, a message refused for its sender, a scheduled message,
reads and unknown paths.  The SMPP server role and Web Push are configured, so their families are
there too.  Then GET /metrics must pass `promtool check
metrics` (Debian's prometheus package: HELP and TYPE on every family,
counters named _total, histogram series well formed) and its figures must
agree with the traffic: HTTP latency per route, SMSC response time per
route, intake-to-final time per channel, queue depths against the
database, per-account counters bounded by [server] metrics_accounts (2
here: a third account is counted as "other").
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pushsvc  # noqa: E402
from harness import TAP, free_port  # noqa: E402
from wsclient import WS  # noqa: E402

tests = TAP()
SMS_TO = ["821077700001", "821077700002", "821077700003", "821077700009"]   # ...9: failed by receipt
PUSH_TO = "821077700100"
_obs = {}
work = pushsvc.workdir("pushgate-metrics-")
VAPID_PATH, _ = pushsvc.vapid_key(work)   # the platform push families appear too

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value}, {family: type}, {family: help}."""
    samples, types, helps = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, t = line.split(" ", 3)
            assert name not in types, f"TYPE twice for {name}"
            types[name] = t
        elif line.startswith("# HELP "):
            _, _, name, h = line.split(" ", 3)
            helps[name] = h
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels = frozenset(LABEL.findall(m.group(2) or ""))
            key = (m.group(1), labels)
            assert key not in samples, f"sample twice: {line!r}"
            samples[key] = float(m.group(3))
    return samples, types, helps


def value(samples, name, **labels):
    want = set(labels.items())
    hits = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    assert hits, f"no sample {name}{labels}"
    return sum(hits)


def metrics(env):
    st, hdrs, _, raw = env.http("GET", "/metrics", key=None)
    assert st == 200, (st, raw[:200])
    return raw.decode()


def traffic(env):
    if _obs:
        assert "ids" in _obs, "the traffic failed in an earlier case"
        return _obs
    _obs["started"] = True
    keys = [env.key, env.create_account("metrics-b"), env.create_account("metrics-c")]
    ids = []
    for i, to in enumerate(SMS_TO):
        body = env.send([to], text=f"metrics {i}", key=keys[i % 3])
        ids.append(int(body["id"]))
    # a push, acked by the device
    st, _, b, raw = env.http("POST", "/v1/devices", {"msisdn": PUSH_TO, "platform": "test"}, key=None)
    assert st == 202, raw
    st, _, v, raw = env.http("POST", f"/v1/devices/{b['device_id']}/verify", {"code": b["code"]}, key=None)
    assert st == 200, raw
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": v["token"]})
    assert ws.recv()["type"] == "welcome"
    body = env.send([PUSH_TO], text="pushed", sender="ACME")
    rid = int(body["recipients"][0]["id"])
    msg = ws.recv_type("msg")
    ws.send({"type": "ack", "id": msg["id"]})
    env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE id = {rid}") == "PUSH_DELIVERED",
                 timeout=10, what="the push acked")
    ws.close()
    # refused: an account that may send only from approved senders
    strict = env.create_account("metrics-strict", any_sender=False)
    st, _, _, raw = env.http("POST", "/v1/messages", {"from": "NOTMINE", "to": ["821077700200"], "text": "x"},
                             key=strict)
    assert st == 403, (st, raw)
    # scheduled for tomorrow: waits in its queue
    st, _, _, raw = env.http("POST", "/v1/messages", {"from": "ACME", "to": ["821077700300"], "text": "later",
                                                      "send_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                               time.gmtime(time.time() + 86400))})
    assert st == 202, raw
    env.http("GET", f"/v1/messages/{ids[0]}")
    env.http("GET", "/v1/nothing-here")
    env.http("GET", "/healthz", key=None)
    nums = ",".join(f"'{n}'" for n in SMS_TO + [PUSH_TO])   # PUSH_TO: its registration code
    env.wait_for(lambda: env.scalar(
        f"SELECT count(*) FROM recipients WHERE msisdn IN ({nums}) AND state IN ('SMS_DELIVERED', 'SMS_FAILED')")
        == str(len(SMS_TO) + 1), timeout=30, what="every SMS final")
    _obs["ids"] = ids
    return _obs


@tests.case
def metrics_pass_promtool_check_after_real_traffic(env):
    traffic(env)
    text = metrics(env)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"promtool check metrics exited {r.returncode}:\n{r.stdout}{r.stderr}"
    samples, types, helps = parse(text)
    assert set(types) == set(helps), f"TYPE without HELP or the reverse: {set(types) ^ set(helps)}"
    for family in ("pushgate_smpps_binds", "pushgate_wake_sent_total", "pushgate_webhook_backlog",
                   "pushgate_smpp_bound", "pushgate_push_connections"):
        assert family in types, f"{family} missing"
    for name, t in types.items():
        if t == "counter":
            assert name.endswith("_total"), f"counter {name} without _total"
    for (name, _), _ in samples.items():
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample {name} of no family"


@tests.case
def http_latency_is_a_histogram_per_route(env):
    traffic(env)
    samples, types, _ = parse(metrics(env))
    assert types["pushgate_http_request_duration_seconds"] == "histogram"
    n = value(samples, "pushgate_http_request_duration_seconds_count", route="/v1/messages")
    assert n >= len(SMS_TO) + 3, n    # the sends, the refusal, the scheduled one
    assert value(samples, "pushgate_http_request_duration_seconds_bucket", route="/v1/messages", le="+Inf") == n
    buckets = sorted(((float(dict(ls)["le"]), v) for (nm, ls), v in samples.items()
                      if nm == "pushgate_http_request_duration_seconds_bucket" and ("route", "/v1/messages") in ls))
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"buckets not cumulative: {buckets}"
    assert value(samples, "pushgate_http_responses_total", route="/v1/messages", code="2xx") >= len(SMS_TO) + 2
    assert value(samples, "pushgate_http_responses_total", route="/v1/messages", code="4xx") >= 1
    assert value(samples, "pushgate_http_responses_total", route="/v1/", code="4xx") >= 1
    assert value(samples, "pushgate_http_request_duration_seconds_count", route="/v1/messages/") >= 1


@tests.case
def smsc_response_time_and_intake_to_final_per_channel(env):
    traffic(env)
    samples, types, _ = parse(metrics(env))
    assert types["pushgate_smpp_response_seconds"] == "histogram"
    resp = value(samples, "pushgate_smpp_response_seconds_count")
    submits = int(env.scalar("SELECT count(*) FROM sms_parts"))
    assert resp == submits, (resp, submits)
    assert value(samples, "pushgate_smpp_response_seconds_sum") > 0
    sms = value(samples, "pushgate_intake_to_final_seconds_count", channel="sms")
    assert sms == len(SMS_TO) + 1, sms   # + the device's registration code
    push = value(samples, "pushgate_intake_to_final_seconds_count", channel="push")
    assert push == 1, push
    # the sum agrees with the database's own view, to the rounding
    db = float(env.scalar("SELECT sum(extract(epoch FROM final_at - created_at)) FROM recipients"
                          " WHERE state IN ('SMS_DELIVERED', 'SMS_FAILED')"))
    got = value(samples, "pushgate_intake_to_final_seconds_sum", channel="sms")
    assert abs(got - db) < 0.5, (got, db)
    assert value(samples, "pushgate_smpp_submits_total") == submits


@tests.case
def queue_depths_agree_with_the_database(env):
    traffic(env)
    db = int(env.scalar("SELECT count(*) FROM recipients WHERE state IN ('SCHEDULED', 'HELD')"))
    assert db == 1, db

    def counted():
        samples, _, _ = parse(metrics(env))
        return (value(samples, "pushgate_queue_depth", queue="scheduled") == db
                and 0 <= value(samples, "pushgate_queue_depth_age_seconds") < 10)
    env.wait_for(counted, timeout=15, interval=0.5, what="the scheduled message counted")
    samples, _, _ = parse(metrics(env))
    for q in ("sms_queued", "sms_in_flight", "sms_waiting_receipt", "push_pending"):
        assert value(samples, "pushgate_queue_depth", queue=q) == 0, q
    assert value(samples, "pushgate_webhook_backlog") == 0


@tests.case
def per_account_counters_stop_at_metrics_accounts(env):
    traffic(env)
    samples, _, _ = parse(metrics(env))
    series = {dict(ls)["account"]: v for (n, ls), v in samples.items() if n == "pushgate_account_recipients_total"}
    assert len(series) == 3 and "other" in series, series   # 2 accounts by id, the rest summed
    assert sum(series.values()) == len(SMS_TO) + 2, series   # + the push and the scheduled one
    refused = {dict(ls)["account"]: v for (n, ls), v in samples.items() if n == "pushgate_account_refused_total"}
    assert sum(refused.values()) == 1, refused
    assert value(samples, "pushgate_intake_refused_total", reason="sender") == 1
    assert value(samples, "pushgate_intake_recipients_total", source="http") == len(SMS_TO) + 2


@tests.case
def every_family_is_documented(env):
    traffic(env)
    _, types, _ = parse(metrics(env))
    with open(os.path.join(env.srcdir, "docs", "metrics.md"), encoding="utf-8") as f:
        doc = f.read().splitlines()
    missing = []
    for name in types:
        mod, rest = name.split("_", 2)[1], name.split("_", 2)[2]
        if not any(f"`{name}`" in line or (f"`pushgate_{mod}_" in line and f"`_{rest}`" in line) for line in doc):
            missing.append(name)
    assert not missing, f"families docs/metrics.md does not describe: {missing}"


tests.run(ini={"server": {"metrics_accounts": "2"}, "push": {"otp_echo": "yes"},
               "smpp_server": {"listen": f"127.0.0.1:{free_port()}"},   # and the SMPP server's
               "webpush": {"vapid_key": VAPID_PATH}})
