"""t_kannel: Kannel's sendsms (GET|POST /cgi-bin/sendsms) works unchanged against pushgate.

What a Kannel client sees: 202 "0: Accepted for delivery" only once the
message is stored (source kannel), 403 "Authorization failed for sendsms" for
a wrong user or password (nothing stored), Kannel's 400 texts, receivers
split on spaces, text converted from its charset (UTF-8, EUC-KR, UTF-16BE),
and dlr-url GETs with %d %p %P %A %T %I substituted, only for the DLR types in
dlr-mask, still delivered when the receiver was down for a while. smsc-sim
delivers numbers ending in anything but 9, 8, 7, 6; 9 fails by receipt, 6 is
refused in submit_sm_resp.
"""
import datetime
import http.server
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP, free_port, serve_http  # noqa: E402
from wsclient import WS  # noqa: E402

tests = TAP()
ACCEPTED = b"0: Accepted for delivery"
KOREAN = "카드 승인 10,000원 감사합니다"


class DlrReceiver:
    """Records every GET (path + parsed query); down() closes the port, up() reopens it."""

    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.gets = []
        self.server = None
        self.up()

    def url(self, query):
        return f"http://127.0.0.1:{self.port}/dlr?{query}"

    def up(self):
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                q = urllib.parse.urlsplit(self.path).query
                with rec.lock:
                    rec.gets.append(dict(urllib.parse.parse_qsl(q, keep_blank_values=True)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = serve_http(self.port, Handler)

    def down(self):
        self.server.shutdown()
        self.server.server_close()

    def for_tag(self, tag):
        with self.lock:
            return [g for g in self.gets if g.get("tag") == tag]


def sendsms(env, method="GET", params=None, body=None, headers=None):
    """One request to /cgi-bin/sendsms: (status, headers, raw body)."""
    q = urllib.parse.urlencode(params or {}, encoding="utf-8") if params is not None else ""
    path = "/cgi-bin/sendsms" + ("?" + q if q and method == "GET" else "")
    if method == "POST" and body is None:
        body = q
        headers = dict({"Content-Type": "application/x-www-form-urlencoded"}, **(headers or {}))
    st, h, _, raw = env.http(method, path, body=body, headers=headers, key=None)
    return st, h, raw


def auth(env, **extra):
    p = {"username": "test", "password": env.key, "from": "ACME"}
    p.update(extra)
    return p


def messages_count(env):
    return int(env.scalar("SELECT count(*) FROM messages"))


def last_message(env):
    return env.sql("SELECT m.id, m.sender, m.body, e.detail FROM messages m "
                   "JOIN events e ON e.message_id = m.id AND e.state = 'ACCEPTED' "
                   "ORDER BY m.id DESC, e.id LIMIT 1")[0]


def recipients_of(env, mid):
    return [r[0] for r in env.sql(f"SELECT msisdn FROM recipients WHERE message_id = {int(mid)} ORDER BY id")]


@tests.case
def get_is_answered_202_after_the_commit_and_stored_with_source_kannel(env):
    st, h, raw = sendsms(env, params=auth(env, to="821055500001", text="hello world"))
    assert st == 202 and raw == ACCEPTED, (st, raw)
    assert h["content-type"].startswith("text/html"), h
    mid, sender, body, source = last_message(env)
    assert (sender, body, source) == ("ACME", "hello world", "kannel"), (sender, body, source)
    assert recipients_of(env, mid) == ["821055500001"]
    assert env.scalar(f"SELECT callback_url IS NULL AND dlr_url IS NULL FROM messages WHERE id = {mid}") == "t"


@tests.case
def post_form_and_post_raw_text_with_x_kannel_headers_are_accepted(env):
    st, _, raw = sendsms(env, "POST", params=auth(env, to="821055500002", text="form body"))
    assert st == 202 and raw == ACCEPTED, (st, raw)
    mid, sender, body, source = last_message(env)
    assert (sender, body, source) == ("ACME", "form body", "kannel")
    assert recipients_of(env, mid) == ["821055500002"]
    # smsbox's POST: the body is the text, the rest in X-Kannel-* headers
    hdrs = {"Content-Type": "text/plain; charset=UTF-8", "X-Kannel-Username": "test",
            "X-Kannel-Password": env.key, "X-Kannel-From": "ACME", "X-Kannel-To": "821055500003"}
    st, _, raw = sendsms(env, "POST", body=KOREAN.encode(), headers=hdrs)
    assert st == 202 and raw == ACCEPTED, (st, raw)
    mid, _, body, source = last_message(env)
    assert body == KOREAN and source == "kannel", body
    assert recipients_of(env, mid) == ["821055500003"]
    # other methods and content types are refused
    st, _, raw = sendsms(env, "DELETE")
    assert st == 405, (st, raw)
    st, _, raw = sendsms(env, "POST", body="{}", headers={"Content-Type": "application/json"})
    assert st == 400 and raw == b"Invalid content-type", (st, raw)


@tests.case
def wrong_password_unknown_user_or_another_accounts_name_get_403_and_store_nothing(env):
    other_key = env.create_account("other")
    before = messages_count(env)
    cases = [
        auth(env, password="pk_" + "0" * 64),
        auth(env, username="nobody"),
        auth(env, username="other"),                  # the name of another account with test's key
        dict(auth(env, password=other_key)),          # other's key under test's name
        {k: v for k, v in auth(env).items() if k != "password"},
        {k: v for k, v in auth(env).items() if k != "username"},
        auth(env, password=""),
    ]
    for p in cases:
        p = dict(p, to="821055500004", text="nope")
        for method in ("GET", "POST"):
            st, _, raw = sendsms(env, method, params=p)
            assert st == 403 and raw == b"Authorization failed for sendsms", (p.get("username"), method, st, raw)
    # auth comes first: a bad request with a bad password learns only 403
    st, _, raw = sendsms(env, params={"username": "test", "password": "x", "text": "no to"})
    assert st == 403, (st, raw)
    assert messages_count(env) == before
    # the password never reaches the log
    log = open(env.pushgated_log, encoding="utf-8", errors="replace").read()
    assert env.key not in log and other_key not in log
    # "user" and "pass" are Kannel's aliases
    st, _, raw = sendsms(env, params={"user": "other", "pass": other_key, "from": "X", "to": "821055500005",
                                      "text": "alias"})
    assert st == 202, (st, raw)


@tests.case
def missing_or_bad_fields_get_kannels_400_texts_and_store_nothing(env):
    before = messages_count(env)
    cases = [
        (auth(env, text="x"), b"Missing receiver number, rejected"),
        (auth(env, to="", text="x"), b"Empty receiver number not allowed, rejected"),
        (auth(env, to="821055500006"), b"Missing text, rejected"),
        (auth(env, to="821055500006", text=""), b"Missing text, rejected"),
        (dict(auth(env, to="821055500006", text="x"), **{"from": ""}), b"Sender missing and no global set, rejected"),
        (auth(env, to="12ab 34", text="x"), b"Number(s) has/have been denied by white- and/or black-lists."),
        (auth(env, to="821055500006", text="x", **{"dlr-mask": "64"}), b"DLR-Mask field misformed, rejected"),
        (auth(env, to="821055500006", text="x", **{"dlr-mask": "1", "dlr-url": "ftp://x"}),
         b"DLR-URL field misformed, rejected"),
        (auth(env, to="821055500006", text="x", coding="3"), b"Coding field misformed, rejected"),
        (auth(env, to="821055500006", text="x", coding="1"), b"8-bit (binary) coding is not supported, rejected"),
        (auth(env, to="821055500006", text="x", validity="0"), b"Validity field misformed, rejected"),
        (auth(env, to="821055500006", text="x", deferred="soon"), b"Deferred field misformed, rejected"),
        (auth(env, to="821055500006", text="x", charset="NO-SUCH-CHARSET"), b"Charset or body misformed, rejected"),
        (auth(env, to="821055500006", text="x", channels="fax"), b"Channels field misformed, rejected"),
    ]
    for p, want in cases:
        st, _, raw = sendsms(env, params=p)
        assert st == 400 and raw == want, (p, st, raw)
    # smsbox's POST words a missing receiver in the plural
    hdrs = {"Content-Type": "text/plain", "X-Kannel-Username": "test", "X-Kannel-Password": env.key,
            "X-Kannel-From": "ACME"}
    st, _, raw = sendsms(env, "POST", body=b"hi", headers=hdrs)
    assert st == 400 and raw == b"Missing receiver(s) number(s), rejected", (st, raw)
    assert messages_count(env) == before


@tests.case
def several_receivers_split_on_spaces_with_denied_ones_listed(env):
    # '+' in a query is a space: Kannel's way of listing receivers
    q = (f"username=test&password={env.key}&from=ACME&text=multi"
         "&to=821055500010+821055500011%20%2B821055500012+12ab+821055500010")
    st, _, _, raw = env.http("GET", "/cgi-bin/sendsms?" + q, key=None)
    assert st == 202 and raw == ACCEPTED + b" Denied receivers are: 12ab", (st, raw)
    mid = last_message(env)[0]
    assert recipients_of(env, mid) == ["821055500010", "821055500011", "821055500012"]
    # denied receivers are echoed without markup
    st, _, _, raw = env.http("GET", f"/cgi-bin/sendsms?username=test&password={env.key}&from=ACME&text=x"
                             "&to=821055500013+%3Cscript%3E", key=None)
    assert st == 202 and raw == ACCEPTED + b" Denied receivers are: ?script?", (st, raw)


@tests.case
def korean_text_arrives_as_utf8_from_utf8_euc_kr_and_ucs2(env):
    def send(text_bytes, **extra):
        q = urllib.parse.urlencode(auth(env, to="821055500020", **extra))
        q += "&text=" + urllib.parse.quote_from_bytes(text_bytes)
        st, _, _, raw = env.http("GET", "/cgi-bin/sendsms?" + q, key=None)
        return st, raw
    for text_bytes, extra in [
        (KOREAN.encode("utf-8"), {}),
        (KOREAN.encode("euc-kr"), {"charset": "EUC-KR"}),
        (KOREAN.encode("utf-16-be"), {"coding": "2"}),                          # UCS-2's default charset
        (KOREAN.encode("utf-8"), {"coding": "2", "charset": "UTF-8"}),
        ("café".encode("iso-8859-1"), {"charset": "ISO-8859-1"}),
    ]:
        st, raw = send(text_bytes, **extra)
        assert st == 202 and raw == ACCEPTED, (extra, st, raw)
        body = last_message(env)[2]
        want = "café" if extra.get("charset") == "ISO-8859-1" else KOREAN
        assert body == want, (extra, body)
    # bytes that are not valid in the charset
    before = messages_count(env)
    st, raw = send(b"\xff\xfe\xfd", charset="UTF-8")
    assert st == 400 and raw == b"Charset or body misformed, rejected", (st, raw)
    st, raw = send(KOREAN.encode("euc-kr"))   # EUC-KR bytes announced as UTF-8 (the default)
    assert st == 400, (st, raw)
    assert messages_count(env) == before



@tests.case
def hostile_input_is_refused_with_a_400_and_nothing_stored(env):
    before = messages_count(env)
    base = f"username=test&password={env.key}"
    cases = [
        ("&from=ACME&to=821055500090&text=%00", b"Charset or body misformed, rejected"),
        ("&from=ACME&to=821055500090%00&text=x", b"Number(s) has/have been denied by white- and/or black-lists."),
        ("&from=AC%00ME&to=821055500090&text=x", b"Sender field misformed, rejected"),
        ("&from=" + "A" * 21 + "&to=821055500090&text=x", b"Sender field misformed, rejected"),
        ("&from=ACME&to=821055500090&text=x&dlr-mask=1&dlr-url=http://h/" + "a" * 1100,
         b"DLR-URL field misformed, rejected"),
        ("&from=ACME&to=821055500090&text=x&dlr-mask=1&dlr-url=http://h/a%20b", b"DLR-URL field misformed, rejected"),
        ("&from=ACME&to=821055500090&text=x&dlr-mask=-5", b"DLR-Mask field misformed, rejected"),
        ("&from=ACME&to=821055500090&text=x&dlr-mask=99999999999999999999", b"DLR-Mask field misformed, rejected"),
        ("&from=ACME&to=" + "+".join(["8210555%05d" % i for i in range(1001)]) + "&text=x",
         b"Too many receivers, rejected"),
        ("&from=ACME&to=821055500090&text=" + "a" * 5000, b"Text too long, rejected"),
        ("&from=ACME&to=821055500090&text=x&charset=" + "A" * 100, b"Charset or body misformed, rejected"),
        ("&from=ACME&to=821055500090&text=x&charset=UTF-8%00", b"Charset or body misformed, rejected"),
        ("&from=ACME&to=123456789012345678901&text=x", b"Number(s) has/have been denied by white- and/or black-lists."),
    ]
    for q, want in cases:
        st, _, _, raw = env.http("GET", "/cgi-bin/sendsms?" + base + q, key=None)
        assert st == 400 and raw == want, (q[:80], st, raw)
    # a lone or truncated percent sign is kept as it is
    st, _, _, raw = env.http("GET", "/cgi-bin/sendsms?" + base + "&from=ACME&to=821055500091&text=100%25+%+%4", key=None)
    assert st == 202, (st, raw)
    assert last_message(env)[2] == "100% % %4"
    assert messages_count(env) == before + 1


def _wait_outbox_settled(env, mid, timeout=30):
    def settled():
        n, done = env.sql("SELECT count(*), count(delivered_at) FROM webhook_outbox "
                          f"WHERE message_id = {int(mid)} AND method = 'GET'")[0]
        return int(n) > 0 and n == done
    env.wait_for(settled, timeout=timeout, interval=0.1, what=f"dlr GETs of message {mid} delivered")


def _send_with_dlr(env, rec, tag, to, mask, **extra):
    url = rec.url(f"tag={tag}&type=%d&to=%p&from=%P&a=%A&t=%T&rid=%I&pct=%%")
    st, _, raw = sendsms(env, params=auth(env, to=to, text=f"dlr {tag}", **{"dlr-mask": str(mask), "dlr-url": url},
                                          **extra))
    assert st == 202 and raw == ACCEPTED, (st, raw)
    return int(last_message(env)[0])


@tests.case
def dlr_url_gets_delivered_and_failed_reports_with_substitutions_only_for_the_mask(env):
    rec = DlrReceiver()
    try:
        t0 = int(time.time())
        mid = _send_with_dlr(env, rec, "m3", "821055500031 821055500039", 3)
        env.wait_for(lambda: env.recipients_final([mid]), timeout=30, what="recipients final")
        _wait_outbox_settled(env, mid)
        rids = dict(env.sql(f"SELECT msisdn, id FROM recipients WHERE message_id = {mid}"))
        gets = sorted(rec.for_tag("m3"), key=lambda g: g["to"])
        assert len(gets) == 2, gets   # mask 1+2: no buffered (4), no SMSC accepted (8)
        ok, bad = gets
        assert ok["to"] == "821055500031" and ok["type"] == "1" and "stat:DELIVRD" in ok["a"], ok
        assert bad["to"] == "821055500039" and bad["type"] == "2" and "stat:UNDELIV" in bad["a"], bad
        for g in gets:
            assert g["from"] == "ACME" and g["pct"] == "%", g
            assert t0 - 1 <= int(g["t"]) <= int(time.time()) + 1, g
            assert g["rid"] == rids[g["to"]], (g, rids)

        # mask 8 + 16: the SMSC's acceptance, and its refusal (submit_sm_resp 0x0B) as NACK
        mid = _send_with_dlr(env, rec, "m24", "821055500041 821055500046", 24)
        env.wait_for(lambda: env.recipients_final([mid]), timeout=30, what="recipients final")
        _wait_outbox_settled(env, mid)
        gets = sorted(rec.for_tag("m24"), key=lambda g: g["to"])
        assert [(g["to"], g["type"]) for g in gets] == [("821055500041", "8"), ("821055500046", "16")], gets
        assert gets[0]["a"] == "ACK/" and gets[1]["a"].startswith("NACK/11/"), gets

        # mask 0 or no dlr-url: no report at all
        mid = _send_with_dlr(env, rec, "m0", "821055500051", 0)
        env.wait_for(lambda: env.recipients_final([mid]), timeout=30, what="recipients final")
        time.sleep(0.5)
        assert rec.for_tag("m0") == []
        assert env.scalar(f"SELECT count(*) FROM webhook_outbox WHERE message_id = {mid}") == "0"
    finally:
        rec.down()


@tests.case
def every_message_gets_its_own_report_even_when_the_dlr_urls_are_the_same(env):
    # regression: GET reports that substituted to the same URL (no per-message escape such as
    # %I) were leased into one batch and sent as one GET, and the others marked delivered
    rec = DlrReceiver()
    try:
        url = rec.url("tag=same&type=%d")
        mids = []
        for i in range(6):
            st, _, raw = sendsms(env, params=auth(env, to="821055500061", text=f"same url {i}",
                                                  **{"dlr-mask": "1", "dlr-url": url}))
            assert st == 202 and raw == ACCEPTED, (st, raw)
            mids.append(int(last_message(env)[0]))
        env.wait_for(lambda: env.recipients_final(mids), timeout=30, what="recipients final")
        for mid in mids:
            _wait_outbox_settled(env, mid)
        gets = rec.for_tag("same")
        assert len(gets) == 6 and all(g["type"] == "1" for g in gets), gets
    finally:
        rec.down()


@tests.case
def a_dlr_receiver_that_was_down_gets_its_reports_once_it_is_up(env):
    rec = DlrReceiver()
    rec.down()
    mid = _send_with_dlr(env, rec, "late", "821055500061 821055500069", 3)
    env.wait_for(lambda: env.recipients_final([mid]), timeout=30, what="recipients final")

    def tried_and_failed():
        rows = env.sql("SELECT count(*), min(attempts), count(delivered_at) FROM webhook_outbox "
                       f"WHERE message_id = {mid} AND method = 'GET'")
        n, att, dl = (int(x or 0) for x in rows[0])
        return n == 2 and att >= 1 and dl == 0
    env.wait_for(tried_and_failed, timeout=30, interval=0.2, what="both DLR GETs failed at least once")
    assert rec.for_tag("late") == []
    rec.up()
    _wait_outbox_settled(env, mid)
    gets = sorted((g["to"], g["type"]) for g in rec.for_tag("late"))
    assert gets == [("821055500061", "1"), ("821055500069", "2")], gets
    rec.down()


@tests.case
def push_delivered_is_a_delivered_report_and_channels_sms_skips_the_app(env):
    number = "821055500071"
    st, _, b, raw = env.http("POST", "/v1/devices", {"msisdn": number, "platform": "test"}, key=None)
    assert st == 202, (st, raw)
    st, _, v, raw = env.http("POST", f"/v1/devices/{b['device_id']}/verify", {"code": b["code"]}, key=None)
    assert st == 200, (st, raw)
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": v["token"]})
    assert ws.recv()["type"] == "welcome"
    rec = DlrReceiver()
    try:
        mid = _send_with_dlr(env, rec, "push", number, 5)   # delivered + buffered
        msg = ws.recv_type("msg")
        assert msg["text"] == "dlr push" and msg["sender"] == "ACME", msg
        ws.send({"type": "ack", "id": msg["id"]})
        env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE message_id = {mid}") == "PUSH_DELIVERED",
                     timeout=15, what="push delivered")
        _wait_outbox_settled(env, mid)
        got = [(g["type"], g["a"]) for g in sorted(rec.for_tag("push"), key=lambda g: g["type"])]
        assert [t for t, _ in got] == ["1", "4"], got
        assert got[0][1].startswith("stored in the inbox") and got[1][1], got
        # channels=sms: the same number, by SMS only (pushgate's extension)
        mid = _send_with_dlr(env, rec, "smsonly", number, 1, channels="sms")
        env.wait_for(lambda: env.recipients_final([mid]), timeout=30, what="sms delivered")
        assert env.scalar(f"SELECT state FROM recipients WHERE message_id = {mid}") == "SMS_DELIVERED"
        _wait_outbox_settled(env, mid)
        assert [g["type"] for g in rec.for_tag("smsonly")] == ["1"]
    finally:
        ws.close()
        rec.down()


def kannel_substitute(tpl, values):
    """Kannel's dlr-url escapes, read left to right: %% is a %, a known %c its
    value (URL-encoded except %d, %T, %I), an unknown %c and a trailing %
    stay as they are."""
    def enc(v):
        return "".join(chr(b) if chr(b).isalnum() and b < 128 or chr(b) in "-._~" else f"%{b:02X}"
                       for b in v.encode())
    raw = {"d", "T", "I"}
    out, i = [], 0
    while i < len(tpl):
        c = tpl[i]
        if c != "%" or i == len(tpl) - 1:
            out.append(c)
            i += 1
            continue
        k = tpl[i + 1]
        if k == "%":
            out.append("%")
        elif k in values:
            out.append(values[k] if k in raw else enc(values[k]))
        else:
            out.append("%" + k)
        i += 2
    return "".join(out)


@tests.case
def dlr_url_escapes_are_substituted_as_kannel_reads_them(env):
    """The SQL that builds each report's URL (sql/015 kannel_dlr_url) against a
    reading of Kannel's rules, on templates with every escape, doubled and
    trailing %, unknown escapes, and values that encode to %XX (whose
    letters must not be read as escapes again)."""
    values = {"d": "1", "p": "821012345678", "P": "AC ME/é", "q": "", "Q": "", "A": "héllo %d&x",
              "a": "héllo %d&x", "T": "1796400000", "I": "42", "i": "route-1",
              "F": "ab/cd%AF", "n": "acct one"}
    templates = [
        "", "plain", "%", "a%", "%%", "%%%", "%%d", "%%%d", "a%%%%d", "%d%d%%%d", "%x%d%", "%z", "100%",
        "http://h:1/p?type=%d&to=%p&from=%P&q=%q&Q=%Q&A=%A&a=%a&T=%T&t=%t&I=%I&i=%i&F=%F&n=%n&pct=%%",
        "%F%A%p", "x" * 300 + "%d" + "y" * 300,
    ]

    def lit(v):
        return "'" + v.replace("'", "''") + "'"

    values["t"] = datetime.datetime.fromtimestamp(1796400000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    for tpl in templates:
        got = env.scalar(f"SELECT '[' || kannel_dlr_url({lit(tpl)}, 1, '821012345678', {lit(values['P'])}, "
                         f"{lit(values['A'])}, to_timestamp(1796400000), 42, 'route-1', {lit(values['F'])}, "
                         f"'acct one') || ']'")[1:-1]
        # q, Q: the numbers with a leading 00 made +; these have none
        want = kannel_substitute(tpl, dict(values, q=values["p"], Q=values["P"]))
        assert got == want, (tpl, got, want)


tests.run(ini={"push": {"otp_echo": "yes", "push_timeout": "30"},
               "webhook": {"timeout": "2", "backoff_min": "0.2", "backoff_max": "1", "max_age": "600"}})
