#!/usr/bin/env python3
"""t_batches.py: campaigns end to end.

POST /v1/batches with a JSON recipients array and with a CSV upload, the
{name} template rendered per recipient (in PostgreSQL, at the SMSC, in the
push msg), bad rows reported by line while the good ones load, live
progress by state, cancel of the not-yet-sent part (nothing more reaches
the SMSC), another account gets 404, and `pushgatectl send --csv` with
5,000 rows.  The SMS route is paced ([smpp] tps) so a campaign is still
running while the test looks at it.
"""

import os
import sys
import re
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP
from wsclient import WS

tests = TAP()
TPS = 200
_FINAL = {"PUSH_DELIVERED", "DROPPED", "CANCELED", "SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN"}


def register(env, msisdn):
    return env.register_device(msisdn)["token"]


def post_csv(env, csv_text, key=harness._USE_ENV_KEY, **query):
    q = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    return env.http("POST", "/v1/batches?" + q, csv_text.encode(), headers={"Content-Type": "text/csv"}, key=key,
                    timeout=120)


def batch(env, bid, key=harness._USE_ENV_KEY):
    st, _, b, raw = env.http("GET", f"/v1/batches/{bid}", key=key)
    assert st == 200, (st, raw)
    return b


def submits(env, numbers):
    """submit_sm lines at the SMSC for these destinations: {dst: [len, ...]}."""
    out = {}
    for line in env.smsc_log().splitlines():
        m = re.search(r"ev=submit_sm .*dst=(\d+) .*len=(\d+)", line)
        if m and m.group(1) in numbers:
            out.setdefault(m.group(1), []).append(int(m.group(2)))
    return out


@tests.case
def json_batch_renders_each_recipients_text_for_push_and_sms(env):
    token = register(env, "821070000001")
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": token})
    assert ws.recv()["type"] == "welcome"
    people = {"821070000001": "Kim", "821070000002": "Lee", "821070000003": "Park Ji-sung"}
    st, _, b, raw = env.http("POST", "/v1/batches", {
        "from": "ACME", "text": "Hi {name}, your order {order} shipped", "name": "json campaign",
        "recipients": [{"to": "+" + n, "name": nm, "order": i * 111} for i, (n, nm) in enumerate(people.items(), 1)]})
    assert st == 202, (st, raw)
    assert b["total"] == 3 and b["rejected_count"] == 0 and b["rejected"] == [] and b["state"] == "RUNNING", b
    bid = b["id"]
    want = {n: f"Hi {nm}, your order {i * 111} shipped" for i, (n, nm) in enumerate(people.items(), 1)}
    rows = dict(env.sql(f"SELECT msisdn, text FROM recipients WHERE batch_id = {bid}"))
    assert rows == want, rows
    msg = ws.recv_type("msg")
    assert msg["text"] == want["821070000001"] and msg["sender"] == "ACME", msg
    ws.send({"type": "ack", "id": msg["id"]})
    env.wait_for(lambda: batch(env, bid)["state"] == "DONE", timeout=30, what="batch DONE")
    b = batch(env, bid)
    assert b["total"] == 3 and b["final"] == 3 and b["pending"] == 0 and b["name"] == "json campaign", b
    assert b["by_state"] == {"PUSH_DELIVERED": 1, "SMS_DELIVERED": 2}, b
    # the SMSC got the rendered texts (7-bit ASCII: sm_length = characters), not the template
    s = submits(env, {"821070000002", "821070000003"})
    assert s == {n: [len(want[n])] for n in ("821070000002", "821070000003")}, s
    ws.close()


@tests.case
def csv_batch_stores_good_rows_and_reports_bad_ones_by_line(env):
    csv = ("to,name,city\r\n"                        # line 1
           "821071000001,Kim,Seoul\r\n"               # 2 ok
           "82107100000x,Lee,Busan\r\n"               # 3 bad number
           "821071000003,\"Park, Ji\",\"Dae\ngu\"\r\n"  # 4-5 ok: comma and newline inside quotes
           "821071000004,Choi\r\n"                    # 6 too few fields
           "\r\n"                                     # 7 blank: skipped, not an error
           "+821071000001,Kim again,Seoul\r\n"        # 8 duplicate of line 2
           "821071000005,\"Jung \"\"JJ\"\"\",Incheon") # 9 ok, no final newline
    st, _, b, raw = post_csv(env, csv, **{"from": "SHOP", "text": "{name} in {city}", "channels": "sms"})
    assert st == 202, (st, raw)
    assert b["total"] == 3 and b["rejected_count"] == 3, b
    assert [(r["line"], r["field"]) for r in b["rejected"]] == [(3, "to"), (6, "csv"), (8, "to")], b["rejected"]
    assert "duplicate" in b["rejected"][2]["message"], b["rejected"]
    rows = dict(env.sql(f"SELECT msisdn, text FROM recipients WHERE batch_id = {b['id']}"))
    assert rows == {"821071000001": "Kim in Seoul", "821071000003": "Park, Ji in Dae\ngu",
                    "821071000005": 'Jung "JJ" in Incheon'}, rows
    assert env.scalar(f"SELECT count(DISTINCT message_id) FROM recipients WHERE batch_id = {b['id']}") == "1"


@tests.case
def bad_campaigns_are_refused_whole_and_store_nothing(env):
    before = env.scalar("SELECT count(*) FROM batches")
    cases = [
        (lambda: post_csv(env, "number,name\n821072000001,Kim\n", **{"from": "A", "text": "hi"}), "csv"),
        (lambda: post_csv(env, "to,name\n821072000001,Kim\n", **{"from": "A", "text": "hi {nick}"}), "text"),
        (lambda: post_csv(env, "to\n", **{"from": "A", "text": "hi"}), "recipients"),
        (lambda: post_csv(env, "to\nabc\n12\n", **{"from": "A", "text": "hi"}), "recipients"),
        (lambda: post_csv(env, "to\n821072000001\n", **{"text": "hi"}), "from"),
        (lambda: post_csv(env, "to\n821072000001\n", **{"from": "A", "text": "hi", "validity": "5"}), "validity"),
        (lambda: post_csv(env, "to,name\n821072000001,Kim\n", **{"from": "A", "text": "{name}", "purpose": "AD"}),
         "text"),
        (lambda: env.http("POST", "/v1/batches", {"from": "A", "text": "hi", "recipients": []}), "recipients"),
        (lambda: env.http("POST", "/v1/batches", {"from": "A", "text": "hi", "recipients": [{"to": "1x"}]}),
         "recipients"),
        (lambda: env.http("POST", "/v1/batches", {"from": "A", "text": "hi", "channels": ["fax"],
                                                  "recipients": [{"to": "821072000001"}]}), "channels"),
    ]
    for i, (fn, field) in enumerate(cases):
        st, _, b, raw = fn()
        assert st == 400 and b["error"]["field"] == field, (i, st, raw)
    st, _, b, _ = env.http("POST", "/v1/batches", {"from": "A", "text": "hi {x}", "recipients": [{"to": "1x"}]})
    assert st == 400 and b["rejected"][0]["index"] == 0 and b["rejected_count"] == 1, b
    st, _, _, _ = post_csv(env, "to\n821072000001\n", key="wrong", **{"from": "A", "text": "hi"})
    assert st == 401
    st, _, _, _ = env.http("GET", "/v1/batches")
    assert st == 405
    assert env.scalar("SELECT count(*) FROM batches") == before
    assert env.scalar("SELECT count(*) FROM recipients WHERE msisdn = '821072000001'") == "0"


@tests.case
def progress_is_live_and_the_batch_is_done_when_every_recipient_is_final(env):
    n = 600
    csv = "to\n" + "".join(f"8210730{i:05d}\n" for i in range(n))
    st, _, b, raw = post_csv(env, csv, **{"from": "PROG", "text": "progress"})
    assert st == 202 and b["total"] == n, raw
    bid = b["id"]
    seen_running = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        p = batch(env, bid)
        assert sum(p["by_state"].values()) == n and p["loaded"] == n, p
        assert p["final"] == sum(v for k, v in p["by_state"].items() if k in _FINAL), p
        assert p["pending"] == n - p["final"], p
        if p["state"] == "RUNNING" and p["pending"] > 0:
            seen_running = True
        if p["state"] == "DONE":
            break
        time.sleep(0.2)
    assert seen_running, "never saw the batch running"
    assert p["state"] == "DONE" and p["final"] == n, p


@tests.case
def a_batch_nobody_reads_becomes_done_by_itself(env):
    # regression: DONE used to be written by GET /v1/batches/{id} only, so
    # `pushgatectl report --batch` said RUNNING after every recipient was final
    n = 40
    csv = "to\n" + "".join(f"8210731{i:05d}\n" for i in range(n))
    st, _, b, raw = post_csv(env, csv, **{"from": "UNREAD", "text": "nobody looks"})
    assert st == 202 and b["total"] == n, raw
    bid = b["id"]
    finals = ",".join(f"'{s}'" for s in sorted(_FINAL))
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients WHERE batch_id = {bid} AND state IN ({finals})")
                 == str(n), timeout=60, what="every recipient final")
    env.wait_for(lambda: env.scalar(f"SELECT state FROM batches WHERE id = {bid}") == "DONE", timeout=10,
                 what="the batch DONE without a read")
    assert env.scalar(f"SELECT done_at >= loaded_at FROM batches WHERE id = {bid}") == "t"
    out = env.ctl("report", "--batch", str(bid), "--format", "json", check=True).stdout
    assert '"DONE"' in out, out
    assert batch(env, bid)["done_at"], batch(env, bid)


@tests.case
def cancel_stops_the_unsent_part_and_nothing_more_reaches_the_smsc(env):
    n = 3000
    numbers = [f"8210740{i:05d}" for i in range(n)]
    st, _, b, raw = env.http("POST", "/v1/batches", {"from": "CXL", "text": "sale {n}",
                                                     "recipients": [{"to": m, "n": i} for i, m in enumerate(numbers)]})
    assert st == 202 and b["total"] == n, raw
    bid = b["id"]
    env.wait_for(lambda: len(submits(env, set(numbers))) >= 100, timeout=30, what="first submits")
    st, _, c, raw = env.http("POST", f"/v1/batches/{bid}/cancel")
    assert st == 200 and c["state"] == "CANCELED" and c["changed"] is True, (st, raw)
    assert 0 < c["canceled"] < n, c
    env.wait_for(lambda: "SMS_SUBMITTED" not in batch(env, bid)["by_state"], timeout=30, what="in-flight submits")
    sent = submits(env, set(numbers))
    time.sleep(2)
    assert submits(env, set(numbers)) == sent, "submits after the cancel"
    p = batch(env, bid)
    assert p["state"] == "CANCELED" and p["by_state"]["CANCELED"] == c["canceled"] and p["pending"] == 0, p
    canceled = {m for (m,) in env.sql(f"SELECT msisdn FROM recipients WHERE batch_id = {bid} AND state = 'CANCELED'")}
    assert not canceled & set(sent), "a canceled recipient reached the SMSC"
    assert len(sent) + len(canceled) == n, (len(sent), len(canceled))
    ev = env.scalar(f"SELECT count(*) FROM events e JOIN recipients r ON r.id = e.recipient_id "
                    f"WHERE r.batch_id = {bid} AND e.state = 'CANCELED'")
    assert int(ev) == c["canceled"], ev
    st, _, c2, _ = env.http("POST", f"/v1/batches/{bid}/cancel")
    assert st == 200 and c2["changed"] is False and c2["canceled"] == 0, c2


@tests.case
def another_account_cannot_see_or_cancel_a_batch(env):
    other = env.create_account("other")
    st, _, b, raw = env.http("POST", "/v1/batches", {"from": "MINE", "text": "x", "send_at": "2099-01-01T00:00:00Z",
                                                     "recipients": [{"to": "821075000001"}]})
    assert st == 202, raw
    for method, path in (("GET", f"/v1/batches/{b['id']}"), ("POST", f"/v1/batches/{b['id']}/cancel"),
                         ("GET", "/v1/batches/999999"), ("GET", "/v1/batches/1x")):
        st, _, e, raw = env.http(method, path, key=other)
        assert st == 404 and e["error"]["code"] == "not_found", (path, st, raw)
    assert batch(env, b["id"])["by_state"] == {"SCHEDULED": 1}
    st, _, c, _ = env.http("POST", f"/v1/batches/{b['id']}/cancel")
    assert st == 200 and c["canceled"] == 1


@tests.case
def pushgatectl_send_streams_a_5000_row_csv(env):
    path = os.path.join(env.tmp, "campaign.csv")
    with open(path, "w") as f:
        f.write("to,name\n")
        for i in range(5000):
            f.write(f"8210760{i:05d},Member {i}\n")
        f.write("not-a-number,Nobody\n")
    r = env.ctl("send", "--csv", path, "--from", "CTL", "--text", "Dear {name}", "--account", "test",
                "--channels", "push", "--name", "from the shell", "--chunk", "500", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    bid = int(r.stdout.strip())
    assert "line 5002 rejected: to:" in r.stderr, r.stderr
    progress = [l for l in r.stderr.splitlines() if re.search(r"send: \d+% \(", l)]
    assert len(progress) >= 5 and progress[-1].startswith("pushgatectl: send: 100%"), r.stderr
    # every recipient is dropped at once (push only, no app), so the sweeper may have made the
    # batch DONE before this read: either state is right here, DONE is awaited below
    [(total, state, name)] = env.sql(f"SELECT total, state, name FROM batches WHERE id = {bid}")
    assert (total, name) == ("5000", "from the shell") and state in ("RUNNING", "DONE"), (total, state, name)
    assert env.scalar(f"SELECT count(*) FROM recipients WHERE batch_id = {bid}") == "5000"
    assert env.scalar(f"SELECT count(DISTINCT message_id) FROM recipients WHERE batch_id = {bid}") == "10"
    assert env.scalar(f"SELECT text FROM recipients WHERE batch_id = {bid} AND msisdn = '821076004321'") \
        == "Dear Member 4321"
    # push only and no app: every one is dropped at once, so the batch is done
    env.wait_for(lambda: batch(env, bid)["state"] == "DONE", timeout=30, what="DONE")
    assert batch(env, bid)["by_state"] == {"DROPPED": 5000}
    r = env.ctl("send", "--csv", path, "--from", "CTL", "--text", "x", "--account", "nobody")
    assert r.returncode == 1 and "no such account" in r.stderr, r.stderr
    r = env.ctl("send", "--from", "CTL", "--text", "x")
    assert r.returncode == 2, r.stderr


def _status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


BIG_ROWS = 100_000
BIG_PAD = 280      # an unused column: ~300 bytes a row, ~30 MB in all
CHUNK_BYTES = 5000 * (BIG_PAD + 20)   # one BATCH_CHUNK of these rows


def _streamed_upload(env, path_query, ctype, pieces):
    """POSTs the byte strings of pieces with chunked framing (each split in two frames, a short
    pause between pieces) while measuring pushgated's peak RSS; (status line + body json, sent
    bytes, RSS growth in bytes or None when it can't be measured: no peak reset, or ASan)."""
    import json
    import socket
    pid = env.pushgated.pid
    peak_reset = True
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")   # VmHWM := VmRSS
    except OSError:
        peak_reset = False
    rss0 = _status_kib(pid, "VmRSS") if peak_reset else _status_kib(pid, "VmHWM")
    s = socket.create_connection(("127.0.0.1", env.http_port), timeout=60)
    s.sendall((f"POST {path_query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {env.key}\r\n"
               f"Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
    sent = 0
    for data in pieces:
        half = len(data) // 2
        for part in (data[:half], data[half:]):
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sent += len(data)
        time.sleep(0.002)
    s.sendall(b"0\r\n\r\n")
    resp = b""
    deadline = time.monotonic() + 120
    while b"\r\n\r\n" not in resp or len(resp) < resp.index(b"\r\n\r\n") + 4 + int(
            re.search(rb"Content-Length: (\d+)", resp).group(1)):
        assert time.monotonic() < deadline, resp
        chunk = s.recv(65536)
        assert chunk, resp
        resp += chunk
    s.close()
    head, body = resp.split(b"\r\n\r\n", 1)
    hwm = _status_kib(pid, "VmHWM")
    grew = (hwm - rss0) * 1024
    print(f"# streamed {sent} bytes: pushgated peak RSS {rss0} KiB -> {hwm} KiB (+{grew / 1048576:.1f} MiB)",
          file=sys.stderr)
    # ASan's quarantine keeps freed memory: RSS says nothing there.  gcc links
    # libasan.so (seen in the maps); clang links its runtime into the binary.
    with open(f"/proc/{pid}/maps") as f:
        asan = "libasan" in f.read()
    with open(f"/proc/{pid}/exe", "rb") as f:
        asan = asan or b"__asan_init" in f.read()
    return head.split(b"\r\n")[0].decode(), json.loads(body), sent, grew if peak_reset and not asan else None


def _check_big_batch(env, b, grew, bound, number, text):
    if grew is not None:
        assert grew < bound, (grew, bound)
    assert env.sql(f"SELECT total, state FROM batches WHERE id = {b['id']}") == [(str(BIG_ROWS), "RUNNING")]
    assert env.scalar(f"SELECT count(*) FROM recipients WHERE batch_id = {b['id']}") == str(BIG_ROWS)
    assert env.scalar(f"SELECT text FROM recipients WHERE batch_id = {b['id']} AND msisdn = '{number}'") == text
    st, _, c, _ = env.http("POST", f"/v1/batches/{b['id']}/cancel")
    assert st == 200 and c["canceled"] == BIG_ROWS, c


@tests.case
def a_30mb_csv_sent_slowly_in_chunks_streams_with_bounded_memory(env):
    """The upload is streamed: pushgated's peak RSS grows by less than 3 chunks of rows
    (3 x 5,000 x 300 B = 4.5 MB), against the 30 MB a buffered body would cost."""
    q = urllib.parse.urlencode({"from": "BIG", "text": "Hi {name}", "send_at": "2099-01-01T00:00:00Z",
                                "name": "streamed"}, quote_via=urllib.parse.quote)
    pad = "x" * BIG_PAD

    def pieces():   # ~210 KB each
        yield b"to,name,note\n"
        for i in range(0, BIG_ROWS, 700):
            yield "".join(f"821077{j:06d},Member {j},{pad}\n" for j in range(i, min(i + 700, BIG_ROWS))).encode()
    status, b, sent, grew = _streamed_upload(env, f"/v1/batches?{q}", "text/csv", pieces())
    assert sent > 30_000_000, sent
    assert status.startswith("HTTP/1.1 202") and b["total"] == BIG_ROWS and b["rejected_count"] == 0, (status, b)
    _check_big_batch(env, b, grew, 3 * CHUNK_BYTES, "821077054321", "Hi Member 54321")


@tests.case
def a_30mb_json_upload_streams_with_bounded_memory_and_reports_bad_rows_by_index(env):
    """Regression: a JSON campaign was held whole in memory (up to max_batch_body, plus its
    parsed tree).  Beyond max_body it streams like a CSV file: the same bound."""
    import json
    pad = "x" * (BIG_PAD - 40)   # JSON spends ~40 bytes a row more than CSV on names and quotes
    head = {"from": "BIGJ", "text": "Hi {name}", "send_at": "2099-01-01T00:00:00Z", "name": "jstreamed"}

    def pieces():
        yield json.dumps(head)[:-1].encode() + b', "recipients": ['
        for i in range(0, BIG_ROWS + 2, 700):
            rows = []
            for j in range(i, min(i + 700, BIG_ROWS + 2)):
                if j == 5:
                    rows.append('{"to": "12ab", "name": "bad"}')      # index 5: refused alone
                elif j == 9:
                    rows.append('{"to": "821079000000", "name": 1}')  # index 9: a duplicate of index 0
                else:
                    k = j - (j > 5) - (j > 9)
                    rows.append(json.dumps({"to": f"821079{k:06d}", "name": f"Member {k}", "note": pad}))
            yield ((", " if i else "") + ", ".join(rows)).encode()
        yield b"]}"
    status, b, sent, grew = _streamed_upload(env, "/v1/batches", "application/json", pieces())
    assert sent > 29_000_000, sent
    assert status.startswith("HTTP/1.1 202") and b["total"] == BIG_ROWS and b["rejected_count"] == 2, (status, b)
    assert [(r["index"], r["field"]) for r in b["rejected"]] == [(5, "to"), (9, "to")], b["rejected"]
    row = len(json.dumps({"to": "821079000000", "name": "Member 00000", "note": pad})) + 2
    _check_big_batch(env, b, grew, 3 * 5000 * row, "821079054321", "Hi Member 54321")   # 3 chunks of rows


@tests.case
def a_streamed_json_upload_needs_recipients_last_and_a_whole_document(env):
    import json

    def chunked(body):
        head, _, rest = _chunked_post(env, "/v1/batches", "application/json", body, 65536).partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(rest)
    batches0 = env.scalar("SELECT count(*) FROM batches")
    st, b = chunked(b'{"recipients": [{"to": "821079900001"}], "from": "ORDER", "text": "x"}')
    assert st == 400 and b["error"]["field"] == "from" and "last member" in b["error"]["message"], (st, b)
    st, b = chunked(b'{"from": "ORDER", "text": "x", "recipients": [{"to": "821079900001"}], "name": "late"}')
    assert st == 400 and b["error"]["field"] == "name" and "last member" in b["error"]["message"], (st, b)
    assert env.scalar("SELECT count(*) FROM batches") == batches0
    # broken after a chunk committed: FAILED, and what was loaded is canceled
    rows = ", ".join(json.dumps({"to": f"8210799{i:05d}"}) for i in range(6000))
    st, b = chunked(('{"from": "BROKEN", "text": "x", "send_at": "2099-01-01T00:00:00Z", "recipients": ['
                     + rows + '} ]}').encode())   # a brace that closes nothing
    assert st == 400 and "invalid JSON" in b["error"]["message"], (st, b)
    bid = env.scalar("SELECT max(id) FROM batches")
    assert env.scalar(f"SELECT state FROM batches WHERE id = {bid}") == "FAILED"
    assert int(env.scalar(f"SELECT count(*) FROM recipients WHERE batch_id = {bid}")) >= 5000
    assert env.scalar(f"SELECT count(*) FROM recipients WHERE batch_id = {bid} AND state <> 'CANCELED'") == "0"


def _chunked_post(env, path_query, ctype, body, frame):
    """POSTs body in chunked frames of `frame` bytes (the server may answer and close before
    the end) and reads the whole answer: raw bytes."""
    import socket
    s = socket.create_connection(("127.0.0.1", env.http_port), timeout=60)
    s.sendall((f"POST {path_query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {env.key}\r\n"
               f"Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
    resp = b""
    try:
        for off in range(0, len(body), frame):
            part = body[off:off + frame]
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass   # the server may close once it answered
    s.settimeout(30)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    except OSError:
        pass
    s.close()
    return resp


@tests.case
def an_upload_over_max_batch_body_fails_and_its_committed_rows_are_canceled(env):
    q = urllib.parse.urlencode({"from": "OVER", "text": "x", "send_at": "2099-01-01T00:00:00Z"})
    pad = "y" * BIG_PAD
    rows = "to,note\n" + "".join(f"821078{i:06d},{pad}\n" for i in range(112_000))   # ~33.6 MB > 31 MiB
    resp = _chunked_post(env, f"/v1/batches?{q}", "text/csv", rows.encode(), 32768)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:300]
    bid = env.scalar("SELECT max(id) FROM batches")
    assert env.scalar(f"SELECT state FROM batches WHERE id = {bid}") == "FAILED"
    loaded = int(env.scalar(f"SELECT count(*) FROM recipients WHERE batch_id = {bid}"))
    assert loaded >= 5000, loaded   # chunks had committed before the limit was hit ...
    assert env.scalar(f"SELECT count(*) FROM recipients WHERE batch_id = {bid} AND state <> 'CANCELED'") == "0"


tests.run(ini={"push": {"otp_echo": "yes", "push_timeout": "5"}, "smpp": {"tps": str(TPS)},
               "server": {"max_batch_body": "32505856"}})
