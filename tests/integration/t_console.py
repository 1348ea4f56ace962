"""t_console: the operator console (/console, web/console.*) in a real browser.

Real traffic first, through pushgated, smsc-sim and PostgreSQL: SMS
delivered and failed (smsc-sim fails numbers ending in 9 by receipt), a push
acked by a device on the WebSocket, a message scheduled for tomorrow, an
account whose webhook points where nothing listens (its events wait in the
backlog), and the route paused by an operator with an SMS queued behind it.

Then the API's refusals (401 without a key, 403 with a client's, 400 naming
the field), and Debian's headless Chromium, driven by
tests/browser/console.test.mjs (playwright-core), in the Asia/Seoul time
zone: a client key is refused, an operator key signs in, and every view is
compared with PostgreSQL: the throughput charts' points per minute and the
success-rate charts' per hour (read from the Chart.js objects), the
channel, route and sender tables, the queue depths and webhook backlog,
every bind and the paused route, a search by number paged two rows at a
time, filters, every row's account, a recipient's history event by event,
and a message opened by its id (the other filters ignored; an unknown id
is "No such message", a malformed one refused in the page). The route is
resumed and the page's own timer shows its queue drained. Each view is
screenshot to $PUSHGATE_BUILDDIR/test-artifacts/console-*.png, the driver's
log to test-artifacts/console-driver.log.

The delivery view reads the report rollups (report_counts, as of their
watermark): the test runs `pushgatectl rollup` first, so every event
committed before is counted, and compares the page with what the
recipients and messages themselves say (by channel and route the final
recipients, by sender those accepted, their outcomes and the pending
rest), not with the rollups' own SQL.

The page reads the database's state of the moment, so every comparison
happens while nothing moves (all final, the route paused) and after a
refresh asked for once PostgreSQL was read to be settled. Every wait is
bounded.
"""
import configparser
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from browserdriver import BrowserDriver  # noqa: E402
from harness import TAP  # noqa: E402
from wsclient import WS  # noqa: E402

TZ = "Asia/Seoul"                 # the browser's; the database's session is UTC
SMS_OK = ["821055510001", "821055510002"]
SMS_FAIL = "821055510009"          # smsc-sim: receipt UNDELIV err 1
FAIL_SENDS = 3                     # recipients of SMS_FAIL: two pages of two
PUSH_TO = "821055510011"           # a device acks its push
SHOP_TO = "821055510003"           # the account whose webhook nobody answers
QUEUED_TO = "821055510004"         # sent while the route is paused
SCHEDULED_TO = "821055510005"      # send_at tomorrow
ROUTE = "default"
PAUSE_REASON = "maintenance"
DELIVERED = ("PUSH_DELIVERED", "SMS_DELIVERED")
FAILED = ("SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN", "DROPPED")
FINAL = ("PUSH_DELIVERED", "DROPPED", "CANCELED", "SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN")
QUEUE_SQL = {
    "sms_queued": "state = 'SMS_QUEUED'",
    "sms_in_flight": "state = 'SMS_SUBMITTED'",
    "sms_waiting_receipt": "state = 'SMS_ACCEPTED'",
    "push_pending": "state = 'PUSH_SENT'",
    "scheduled": "state IN ('SCHEDULED', 'HELD')",
}

tests = TAP()
_state = {}


def sql_list(values):
    return ", ".join(f"'{v}'" for v in values)


def Browser(env):
    return BrowserDriver(env, "console.test.mjs", "/console", "console-driver.log")


def browser(env):
    if "browser" not in _state:
        _state["browser"] = Browser(env)
        opened = _state["browser"].call("open", timezone=TZ)
        assert opened["title"] == "pushgate console", opened
        assert opened["chart_js"] == "3.9.1", opened   # Debian's Chart.js, from /console/chart.js
    return _state["browser"]


def signed_in(env):
    """The browser, signed in with the operator key, on a fresh overview."""
    b = browser(env)
    assert _state.get("signed_in"), "the sign-in failed in an earlier case"
    b.call("refresh")
    return b


def state_of(env, rid):
    return env.scalar(f"SELECT state FROM recipients WHERE id = {int(rid)}")


def metric_line(env, text):
    return text in env.http("GET", "/metrics", key=None)[3].decode()


def traffic(env):
    """The traffic every view is compared against (once)."""
    if "traffic" in _state:
        return _state["traffic"]
    assert "traffic_started" not in _state, "the traffic failed in an earlier case"
    _state["traffic_started"] = True
    op = env.ctl("account", "add", "--operator", "console-op", check=True).stdout.strip()
    assert op and " " not in op, op
    _state["operator"] = op
    shop = env.create_account("shop")
    env.ctl("account", "webhook", "shop", "http://127.0.0.1:1/", "secret", check=True)

    sms_ids = [int(env.send(SMS_OK, text="console: delivered", sender="ACME")["id"])]
    fail_rids = []
    for i in range(FAIL_SENDS):
        body = env.send([SMS_FAIL], text=f"console: fails {i}", sender="ACME")
        sms_ids.append(int(body["id"]))
        fail_rids.append(int(body["recipients"][0]["id"]))
    body = env.send([SHOP_TO], text="console: the shop's", sender="SHOP", key=shop)
    sms_ids.append(int(body["id"]))
    shop_rid = int(body["recipients"][0]["id"])

    # a push, acked by the device (its registration code goes by SMS)
    st, _, d, raw = env.http("POST", "/v1/devices", {"msisdn": PUSH_TO, "platform": "test"}, key=None)
    assert st == 202, raw
    st, _, v, raw = env.http("POST", f"/v1/devices/{d['device_id']}/verify", {"code": d["code"]}, key=None)
    assert st == 200, raw
    ws = WS("127.0.0.1", env.http_port)
    try:
        ws.send({"type": "hello", "token": v["token"]})
        assert ws.recv()["type"] == "welcome"
        body = env.send([PUSH_TO], text="console: pushed", sender="BANK")
        push_rid = int(body["recipients"][0]["id"])
        msg = ws.recv_type("msg")
        ws.send({"type": "ack", "id": msg["id"]})
        env.wait_for(lambda: state_of(env, push_rid) == "PUSH_DELIVERED", timeout=20, what="the push acked")
    finally:
        ws.close()

    # scheduled for tomorrow: waits in its queue with no channel yet
    tomorrow = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    st, _, _, raw = env.http("POST", "/v1/messages", {"from": "ACME", "to": [SCHEDULED_TO],
                                                      "text": "console: tomorrow", "send_at": tomorrow})
    assert st == 202, raw

    env.wait_for(lambda: env.scalar(
        f"SELECT count(*) FROM recipients WHERE state NOT IN ({sql_list(FINAL)}) "
        "AND state NOT IN ('SCHEDULED', 'HELD')") == "0",
        timeout=60, what="every SMS and push final")
    assert state_of(env, fail_rids[0]) == "SMS_FAILED", state_of(env, fail_rids[0])

    # the operator pauses the route: what is sent now waits in its queue
    env.ctl("route", "pause", ROUTE, PAUSE_REASON, check=True)
    env.wait_for(lambda: metric_line(env, f'pushgate_smpp_route_paused{{route="{ROUTE}"}} 1'),
                 timeout=15, what="the route paused on the node")
    body = env.send([QUEUED_TO], text="console: while paused", sender="ACME")
    queued_rid = int(body["recipients"][0]["id"])
    assert state_of(env, queued_rid) == "SMS_QUEUED"

    # the shop's events (one outbox row each, written with the event) wait for a webhook
    # nobody answers: every one of them undelivered, and POSTs tried and refused
    def shop_backlog():
        waiting, tried, events = env.sql(
            "SELECT count(*), count(*) FILTER (WHERE attempts >= 1 AND last_error IS NOT NULL), "
            f"(SELECT count(*) FROM events WHERE recipient_id = {shop_rid}) FROM webhook_outbox "
            f"WHERE recipient_id = {shop_rid} AND delivered_at IS NULL AND given_up_at IS NULL")[0]
        return int(waiting) == int(events) >= 5 and int(tried) >= 1
    env.wait_for(shop_backlog, timeout=30, what="the shop's events in the webhook backlog, a POST refused")
    _state["traffic"] = {"fail_rids": fail_rids, "push_rid": push_rid, "queued_rid": queued_rid,
                         "shop_rid": shop_rid, "sms_ids": sms_ids}
    return _state["traffic"]


@tests.case
def real_traffic_delivered_failed_pushed_scheduled_queued_behind_a_paused_route(env):
    t = traffic(env)
    rows = dict(env.sql("SELECT state, count(*) FROM recipients GROUP BY 1"))
    assert int(rows.get("SMS_DELIVERED", 0)) >= len(SMS_OK) + 2, rows   # + the shop's, the code
    assert int(rows.get("SMS_FAILED", 0)) == FAIL_SENDS, rows
    assert rows.get("PUSH_DELIVERED") == "1" and rows.get("SCHEDULED") == "1", rows
    assert rows.get("SMS_QUEUED") == "1", rows
    assert env.scalar(f"SELECT reason FROM route_pauses WHERE route = '{ROUTE}'") == PAUSE_REASON
    assert int(env.scalar("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL")) >= 5
    assert t["queued_rid"] > 0


@tests.case
def api_answers_401_without_a_key_403_to_a_client_and_400_naming_the_field(env):
    op = _state["operator"]
    for path in ("/v1/operator/overview", "/v1/operator/messages", "/v1/operator/messages/1"):
        st, _, body, raw = env.http("GET", path, key=None)
        assert st == 401, (path, st, raw)
        st, _, body, raw = env.http("GET", path)   # the test account's key: a client's
        assert st == 403, (path, st, raw)
        assert body["error"]["code"] == "forbidden", body
    for path, field in (("/v1/operator/overview?minutes=1", "minutes"),
                        ("/v1/operator/overview?minutes=abc", "minutes"),
                        ("/v1/operator/overview?hours=169", "hours"),
                        ("/v1/operator/messages?to=abc", "to"),
                        ("/v1/operator/messages?to=82105551000x", "to")):
        st, _, body, raw = env.http("GET", path, key=op)
        assert st == 400, (path, st, raw)
        assert body["error"]["code"] == "invalid_field" and body["error"].get("field") == field, (path, body)
    st, _, body, raw = env.http("GET", "/v1/operator/messages?account=nobody", key=op)
    assert st == 404 and body["error"].get("field") == "account", (st, raw)
    st, _, body, raw = env.http("GET", "/v1/operator/overview?minutes=5&hours=1", key=op)
    assert st == 200 and body["minutes"] == 5 and body["hours"] == 1, (st, raw)
    # the page and its files, under a CSP that allows no inline script or style
    st, h, _, raw = env.http("GET", "/console", key=None)
    assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
    csp = h.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp, csp
    assert b'src="/web/console.js"' in raw and b"style=" not in raw, raw[:200]
    for path in ("/console/chart.js", "/web/console.js", "/web/console.css"):
        st, _, _, raw = env.http("GET", path, key=None)
        assert st == 200 and len(raw) > 1000, (path, st)


@tests.case
def page_refuses_a_wrong_key_and_a_client_key_and_signs_in_an_operator(env):
    traffic(env)
    b = browser(env)
    wrong = b.call("sign_in", key="pk_" + "0" * 64)
    assert not wrong["signed_in"] and "not valid" in wrong["error"], wrong
    client = b.call("sign_in", key=env.key)
    assert not client["signed_in"] and "not an operator" in client["error"], client
    assert client["stored"] is None, client
    b.call("screenshot", name="sign-in")
    ok = b.call("sign_in", key=_state["operator"])
    assert ok["signed_in"] and ok["error"] == "", ok
    assert ok["stored"] == _state["operator"], "the key is kept in sessionStorage"
    assert ok["status"].startswith("Updated "), ok
    _state["signed_in"] = True


def sql_minutes(env, where=""):
    """{(HH:MM in TZ, key): recipients} of the last hour, by channel or, with where, by route."""
    key = "r.route" if where else "coalesce(r.channel, 'none')"
    rows = env.sql(
        f"SELECT to_char(date_trunc('minute', m.created_at) AT TIME ZONE '{TZ}', 'HH24:MI'), {key}, count(*) "
        "FROM messages m JOIN recipients r ON r.message_id = m.id "
        f"WHERE m.created_at >= now() - interval '60 minutes' {where} GROUP BY 1, 2")
    return {(label, k): int(n) for label, k, n in rows}


def chart_points(chart):
    """{(label, dataset key): value} of a chart's non-zero, non-null points."""
    out = {}
    for ds in chart["datasets"]:
        for label, v in zip(chart["labels"], ds["data"]):
            if v:
                out[(label, ds["key"])] = v
    return out


@tests.case
def traffic_view_charts_every_recipient_a_minute_by_channel_and_route(env):
    b = signed_in(env)
    b.call("show", view="traffic")
    got = b.call("traffic")
    b.call("screenshot", name="traffic")
    want = sql_minutes(env)
    assert chart_points(got["channel"]) == want, (got["channel"], want)
    assert {k for _, k in want} >= {"push", "sms", "none"}, want   # the push, the SMS, the scheduled one
    labels = got["channel"]["labels"]
    assert len(labels) == len(set(labels)) == 61, labels   # every minute of the hour, and this one
    want_routes = sql_minutes(env, "AND r.channel = 'sms'")
    assert want_routes and chart_points(got["route"]) == want_routes, (got["route"], want_routes)
    totals = {k: int(v) for k, v in got["totals"].items()}
    per_channel = {}
    for (_, k), n in want.items():
        per_channel[k] = per_channel.get(k, 0) + n
    assert totals["total"] == sum(want.values()), (totals, want)
    for ch in ("push", "sms", "none"):
        assert totals[ch] == per_channel.get(ch, 0), (ch, totals, per_channel)


# the hours the overview reads (whole UTC hours from the one 24 hours ago, by the message's acceptance);
# the traffic is minutes old, so the test's now() and the overview's see the same ones
DELIVERY_WINDOW = "date_trunc('hour', m.created_at, 'UTC') >= date_trunc('hour', now() - interval '24 hours', 'UTC')"


def sql_finals(env, group, where=""):
    """{key: (final recipients, delivered, failed)} of the window, from the recipients."""
    rows = env.sql(
        f"SELECT {group}, count(*), count(*) FILTER (WHERE r.state IN ({sql_list(DELIVERED)})), "
        f"count(*) FILTER (WHERE r.state IN ({sql_list(FAILED)})) "
        "FROM messages m JOIN recipients r ON r.message_id = m.id "
        f"WHERE {DELIVERY_WINDOW} AND r.state IN ({sql_list(FINAL)}) {where} GROUP BY 1")
    return {k: tuple(int(x) for x in rest) for k, *rest in rows}


def sql_senders(env):
    """[(sender, (accepted, delivered, failed, pending))] of the window, most recipients first."""
    rows = env.sql(
        f"SELECT m.sender, count(*), count(*) FILTER (WHERE r.state IN ({sql_list(DELIVERED)})), "
        f"count(*) FILTER (WHERE r.state IN ({sql_list(FAILED)})), "
        f"count(*) FILTER (WHERE r.state NOT IN ({sql_list(FINAL)})) "
        f"FROM messages m JOIN recipients r ON r.message_id = m.id WHERE {DELIVERY_WINDOW} GROUP BY 1")
    out = [(k, tuple(int(x) for x in rest)) for k, *rest in rows]
    return sorted(out, key=lambda kv: (-kv[1][0], kv[0]))[:20]


def rate_text(delivered, failed):
    return f"{100 * delivered / (delivered + failed):.1f}%" if delivered + failed else "—"


def table_outcomes(rows, n):
    """[(first cell, (n numbers), rate text)] of a table's rows, in order."""
    out = []
    for r in rows:
        c = r["cells"]
        out.append((r["data"]["key"], tuple(int(x.replace(",", "")) for x in c[1:1 + n]), c[1 + n]))
    return out


@tests.case
def delivery_view_shows_success_rates_an_hour_and_every_sender(env):
    traffic(env)
    # every event committed before this is then in the rollups the overview reads
    ran = env.ctl("rollup", check=True, timeout=180).stdout.split()
    assert len(ran) == 4 and ran[0] == "watermark" and ran[2] == "events", ran
    rolled_to = datetime.datetime.fromisoformat(ran[1].replace("Z", "+00:00"))
    st, _, o, raw = env.http("GET", "/v1/operator/overview", key=_state["operator"])
    assert st == 200 and o["as_of"], (st, raw)
    assert datetime.datetime.fromisoformat(o["as_of"]) >= rolled_to, (o["as_of"], ran)
    assert all("pending" not in x for x in o["by_channel"] + o["by_route"]), o
    b = signed_in(env)
    b.call("show", view="delivery")
    got = b.call("delivery")
    b.call("screenshot", name="delivery", full=True)
    # the charts: delivered / (delivered + failed) per hour, where something finished
    hour = f"to_char(date_trunc('hour', m.created_at) AT TIME ZONE '{TZ}', 'MM-DD HH24:MI')"
    for chart, group, where in ((got["channel"], "coalesce(r.channel, 'none')", ""),
                                (got["route"], "r.route", "AND r.channel = 'sms' AND r.route <> ''")):
        want = {}
        for k, (_, d, f) in sql_finals(env, f"{hour} || '|' || {group}", where).items():
            if d + f:
                want[tuple(k.split("|", 1))] = 100 * d / (d + f)
        points = {}
        for ds in chart["datasets"]:
            for label, v in zip(chart["labels"], ds["data"]):
                if v is not None:
                    points[(label, ds["key"])] = v
        assert want and points.keys() == want.keys(), (chart, want)
        for k, v in want.items():
            assert abs(points[k] - v) < 1e-9, (k, points[k], v)
    sms = sql_finals(env, "coalesce(r.channel, 'none')")["sms"]
    assert sms[2] == FAIL_SENDS and sms[1] >= len(SMS_OK) + 2, sms   # this traffic's failures and deliveries
    # the tables: by channel and by route (final recipients; the page's order: push, sms, none;
    # routes by name), by sender (accepted, most first, and the pending rest)
    order = {"push": 0, "sms": 1, "none": 2}
    for rows, group, where, key in (
            (got["channel_rows"], "coalesce(r.channel, 'none')", "", lambda k: (order.get(k, 9), k)),
            (got["route_rows"], "r.route", "AND r.channel = 'sms' AND r.route <> ''", lambda k: k)):
        finals = sql_finals(env, group, where)
        want = [(k, v, rate_text(v[1], v[2])) for k, v in sorted(finals.items(), key=lambda kv: key(kv[0]))]
        assert want and table_outcomes(rows, 3) == want, (rows, want)
    want = [(k, v, rate_text(v[1], v[2])) for k, v in sql_senders(env)]
    assert table_outcomes(got["senders"], 4) == want, (got["senders"], want)
    senders = [r["data"]["sender"] for r in got["senders"]]
    assert {"ACME", "BANK", "SHOP"} <= set(senders), senders
    acme = dict(sql_senders(env))["ACME"]
    assert acme[3] == 2, acme   # the SMS queued behind the paused route and the one scheduled for tomorrow


@tests.case
def queues_view_shows_each_queue_and_the_webhook_backlog_as_the_database_counts_them(env):
    b = signed_in(env)
    b.call("show", view="queues")
    got = b.call("queues")
    b.call("screenshot", name="queues")
    want = {k: env.scalar(f"SELECT count(*) FROM recipients WHERE {cond}") for k, cond in QUEUE_SQL.items()}
    assert got["values"] == want, (got, want)
    assert want["sms_queued"] == "1" and want["scheduled"] == "1", want
    backlog = env.scalar("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND given_up_at IS NULL")
    assert got["webhooks"]["webhook_backlog"] == backlog and int(backlog) >= 5, (got, backlog)
    assert got["read_at"].startswith("Read at "), got


@tests.case
def binds_view_shows_every_bind_and_the_paused_route(env):
    traffic(env)
    # the node writes its bind counters every few seconds: wait for the last submit to be in
    sent = sum(env.smsc_submits().values())
    env.wait_for(lambda: env.scalar("SELECT sum(submits) FROM smpp_binds") == str(sent), timeout=30,
                 what=f"smpp_binds to count the {sent} submits smsc-sim saw")
    b = signed_in(env)
    b.call("show", view="binds")
    got = b.call("binds")
    b.call("screenshot", name="binds")
    want = env.sql("SELECT node, route, bind, state, window_used, window_size, submits, throttled "
                   "FROM smpp_binds ORDER BY route, node, bind")
    assert want and len(got["binds"]) == len(want), (got, want)
    for row, (node, route, bind, state, used, size, submits, throttled) in zip(got["binds"], want):
        c = row["cells"]
        assert row["data"] == {"node": node, "route": route, "bind": bind}, (row, node, route, bind)
        assert c[0] == route + "paused" and c[1] == node and c[2] == bind and c[3] == state, (c, route)
        assert c[4] == f"{used} / {size}" and c[5] == submits and c[6] == throttled, (c, used, size)
    assert [p["route"] for p in got["paused"]] == [ROUTE] and PAUSE_REASON in got["paused"][0]["text"], got
    assert not got["paused_empty"], got


def search_ids(env, where):
    return [str(i) for (i,) in env.sql(f"SELECT id FROM recipients WHERE {where} ORDER BY id DESC")]


@tests.case
def search_by_number_pages_through_its_recipients(env):
    b = signed_in(env)
    b.call("show", view="search")
    want = search_ids(env, f"msisdn = '{SMS_FAIL}'")
    assert len(want) == FAIL_SENDS, want
    first = b.call("search", to=SMS_FAIL, limit=2)
    assert first["state"] == "done" and first["more"], first
    assert [r["data"]["recipientId"] for r in first["rows"]] == want[:2], (first, want)
    rest = b.call("more")
    assert [r["data"]["recipientId"] for r in rest["rows"]] == want and not rest["more"], (rest, want)
    b.call("screenshot", name="search")
    msgs = dict(env.sql(f"SELECT id, message_id FROM recipients WHERE msisdn = '{SMS_FAIL}'"))
    for r in rest["rows"]:
        assert r["data"]["messageId"] == msgs[r["data"]["recipientId"]], r
        assert r["cells"][1] == SMS_FAIL and r["cells"][2] == "test" and r["cells"][3] == "ACME", r
        assert r["cells"][4] == "SMS_FAILED" and r["cells"][5] == f"sms · {ROUTE}", r
        assert r["cells"][6] == "1", r   # error code 1: UNDELIV


def account_names(env):
    """{recipient id: its account's name} of every recipient, as PostgreSQL has them."""
    return dict(env.sql("SELECT r.id, a.name FROM recipients r JOIN accounts a ON a.id = r.account_id"))


@tests.case
def search_across_accounts_names_each_rows_account(env):
    b = signed_in(env)
    b.call("show", view="search")
    got = b.call("search", limit=1000)   # no filter: every account's recipients, newest message first
    assert got["state"] == "done" and not got["more"], got
    want = account_names(env)
    shown = {r["data"]["recipientId"]: r["cells"][2] for r in got["rows"]}
    assert shown == want, (shown, want)   # every recipient, each with its account's name
    assert all(r["data"]["account"] == r["cells"][2] for r in got["rows"]), got
    assert {"test", "shop"} <= set(shown.values()), shown
    # by number too (the other statement): the shop's recipient names the shop
    got = b.call("search", to=SHOP_TO)
    rid = str(_state["traffic"]["shop_rid"])
    assert [(r["data"]["recipientId"], r["cells"][2]) for r in got["rows"]] == [(rid, want[rid])], got
    assert want[rid] == "shop", want[rid]


@tests.case
def search_filters_by_account_state_and_time_and_names_a_wrong_field(env):
    b = signed_in(env)
    got = b.call("search", account="shop")
    assert [r["data"]["recipientId"] for r in got["rows"]] == search_ids(
        env, "account_id = (SELECT id FROM accounts WHERE name = 'shop')"), got
    got = b.call("search", account="test", state="SMS_FAILED")
    want = search_ids(env, "account_id = (SELECT id FROM accounts WHERE name = 'test') AND state = 'SMS_FAILED'")
    assert [r["data"]["recipientId"] for r in got["rows"]] == want and len(want) == FAIL_SENDS, (got, want)
    # since and until, in the browser's time zone: from (and until) the second the first failed
    # recipient was created in; read as UTC they would be nine hours off
    at, local = env.sql(
        f"SELECT s, to_char(to_timestamp(s) AT TIME ZONE '{TZ}', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM "
        "(SELECT floor(extract(epoch FROM created_at))::bigint AS s FROM recipients WHERE id = "
        f"{_state['traffic']['fail_rids'][0]}) x")[0]
    got = b.call("search", to=SMS_FAIL, since=local)
    want = search_ids(env, f"msisdn = '{SMS_FAIL}' AND created_at >= to_timestamp({at})")
    assert [r["data"]["recipientId"] for r in got["rows"]] == want and len(want) == FAIL_SENDS, (got, want)
    got = b.call("search", to=SMS_FAIL, until=local)
    want = search_ids(env, f"msisdn = '{SMS_FAIL}' AND created_at < to_timestamp({at})")
    assert got["state"] == "done" and [r["data"]["recipientId"] for r in got["rows"]] == want == [], (got, want)
    got = b.call("search", account="nobody")
    assert got["state"] == "error" and "no such account" in got["error"], got
    assert got["invalid"] == ["q-account"] and got["rows"] == [], got


@tests.case
def history_shows_the_account_and_the_recipients_events_in_order(env):
    b = signed_in(env)
    rid = _state["traffic"]["fail_rids"][-1]
    found = b.call("search", to=SMS_FAIL, limit=2)
    assert found["rows"][0]["data"]["recipientId"] == str(rid), found
    h = b.call("open_history", recipient_id=rid)
    b.call("screenshot", name="history", full=True)
    account, text, mid = env.sql(
        "SELECT a.name, m.body, m.id FROM recipients r JOIN messages m ON m.id = r.message_id "
        f"JOIN accounts a ON a.id = m.account_id WHERE r.id = {rid}")[0]
    assert h["account"] == account == "test" and h["text"] == text, (h, account, text)
    assert h["title"] == f"Message {mid}" and h["to"] == SMS_FAIL, h
    want = env.sql(f"SELECT kind, state, detail FROM events WHERE recipient_id = {rid} ORDER BY id")
    shown = [(e["kind"], e["state"] or None, e["detail"]) for e in h["events"]]
    assert shown == [tuple(w) for w in want], (shown, want)
    states = [s for k, s, _ in want if k == "state"]
    assert states == ["ACCEPTED", "SMS_QUEUED", "SMS_SUBMITTED", "SMS_ACCEPTED", "SMS_FAILED"], states
    assert any(k == "receipt" and "stat:UNDELIV" in (d or "") for k, _, d in want), want
    times = [e["at"] for e in h["events"]]
    stamps = [datetime.datetime.fromisoformat(t) for t in times]
    assert stamps == sorted(stamps), times
    # the push: sent, then acked by the device
    prid = _state["traffic"]["push_rid"]
    found = b.call("search", to=PUSH_TO)
    assert str(prid) in [r["data"]["recipientId"] for r in found["rows"]], found
    h = b.call("open_history", recipient_id=prid)
    want = env.sql(f"SELECT kind, state, detail FROM events WHERE recipient_id = {prid} ORDER BY id")
    assert [(e["kind"], e["state"] or None, e["detail"]) for e in h["events"]] == [tuple(w) for w in want], (h, want)
    assert [s for _, s, _ in want][-2:] == ["PUSH_SENT", "PUSH_DELIVERED"], want


@tests.case
def search_by_message_id_opens_its_history_and_ignores_the_filters(env):
    b = signed_in(env)
    b.call("show", view="search")
    rid = _state["traffic"]["shop_rid"]
    mid, account, text, sender = env.sql(
        "SELECT m.id, a.name, m.body, m.sender FROM recipients r JOIN messages m ON m.id = r.message_id "
        f"JOIN accounts a ON a.id = m.account_id WHERE r.id = {rid}")[0]
    # filters that match nothing of this message (another account, another number): ignored
    h = b.call("open_message", message=f" {mid} ", account="test", to=SMS_FAIL, state="SMS_FAILED")
    b.call("screenshot", name="search-id", full=True)
    assert h["history_state"] == "done" and h["history_visible"] and h["history_body_visible"], h
    assert h["history_error"] == "" and h["history_message_id"] == mid and h["title"] == f"Message {mid}", h
    assert h["account"] == account == "shop" and h["text"] == text and h["from"] == sender == "SHOP", (h, account)
    assert h["by_id"] == "true" and h["invalid"] == [] and h["error"] == "", h
    assert h["rows"] == [] and h["state"] == "idle" and f"Message {mid}" in h["results_text"], h
    # its recipients, in order, the first one's history event by event
    recipients = [i for (i,) in env.sql(f"SELECT id FROM recipients WHERE message_id = {mid} ORDER BY id")]
    assert [c["id"] for c in h["recipients"]] == recipients and recipients[0] == str(rid), (h, recipients)
    assert h["recipients"][0]["current"] == "true" and h["to"] == SHOP_TO, h
    want = env.sql(f"SELECT kind, state, detail FROM events WHERE recipient_id = {rid} ORDER BY id")
    assert [(e["kind"], e["state"] or None, e["detail"]) for e in h["events"]] == [tuple(w) for w in want], (h, want)
    assert [s for k, s, _ in want if k == "state"][-1] == "SMS_DELIVERED", want


@tests.case
def search_by_an_unknown_or_malformed_message_id_says_so(env):
    b = signed_in(env)
    b.call("show", view="search")
    unknown = int(env.scalar("SELECT coalesce(max(id), 0) + 1000000 FROM messages"))
    h = b.call("open_message", message=unknown)
    assert h["history_state"] == "notfound" and h["history_visible"], h
    assert h["history_error"] == f"No such message: there is no message {unknown}.", h
    assert h["history_message_id"] == str(unknown) and not h["history_body_visible"], h   # nothing else shown
    st, _, body, raw = env.http("GET", f"/v1/operator/messages/{unknown}", key=_state["operator"])
    assert st == 404 and body["error"]["code"] == "not_found", (st, raw)   # what the page was told
    # refused in the page, before any request: the field is named, the history stays closed
    for typed, why in (("12a", "digits only"), ("-5", "digits only"), ("0", "1 to 9223372036854775807"),
                       ("9223372036854775808", "1 to 9223372036854775807")):
        h = b.call("open_message", message=typed, to=SMS_FAIL)
        assert h["invalid"] == ["q-message"] and h["error"].startswith("Message id: ") and why in h["error"], h
        assert not h["history_visible"] and h["history_state"] == "closed" and h["rows"] == [], h
    # the field emptied, the form searches by its filters again
    got = b.call("search", to=SMS_FAIL)
    assert got["state"] == "done" and len(got["rows"]) == FAIL_SENDS and got["invalid"] == [], got


@tests.case
def resumed_route_drains_its_queue_and_the_page_shows_it_on_its_own_timer(env):
    b = signed_in(env)
    b.call("show", view="queues")
    env.ctl("route", "resume", ROUTE, check=True)
    qrid = _state["traffic"]["queued_rid"]
    env.wait_for(lambda: state_of(env, qrid) == "SMS_DELIVERED", timeout=30, what="the queued SMS delivered")
    want = {k: env.scalar(f"SELECT count(*) FROM recipients WHERE {cond}") for k, cond in QUEUE_SQL.items()}
    assert want["sms_queued"] == "0", want
    deadline = time.monotonic() + 40
    while True:   # no click: the page's timer brings the drained queue
        b.call("wait_refresh", ms=20000, timeout=40)
        got = b.call("queues")["values"]
        if got == want:
            break
        assert time.monotonic() < deadline, f"the page still shows {got}, the database {want}"
    binds = b.call("binds")
    assert binds["paused"] == [] and binds["paused_empty"], binds


@tests.case
def reload_keeps_the_session_and_sign_out_forgets_the_key(env):
    b = browser(env)
    assert _state.get("signed_in"), "the sign-in failed in an earlier case"
    b.call("show", view="binds")
    again = b.call("reload")
    assert again["hash"] == "#binds", again
    out = b.call("sign_out")
    assert out["stored"] is None and not out["console_visible"] and out["status"] == "Signed out", out


@tests.case
def page_ran_without_script_errors_or_csp_violations(env):
    b = browser(env)
    got = b.call("errors")
    b.call("quit")
    assert got["errors"] == [] and got["csp"] == [], got


def ini():
    """web_root in the section pushgate.ini keeps it (the source tree's web/), and the
    registration code in POST /v1/devices' answer (otp_echo) for the test's device."""
    srcdir = os.path.abspath(os.environ.get(
        "PUSHGATE_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(os.path.join(srcdir, "etc", "pushgate.ini"), encoding="utf-8")
    section = next((s for s in cp.sections() if cp.has_option(s, "web_root")), "server")
    out = {"push": {"otp_echo": "yes"}}
    out.setdefault(section, {})["web_root"] = os.path.join(srcdir, "web")
    return out


tests.run(dlr_delay_ms=50, ini=ini())
