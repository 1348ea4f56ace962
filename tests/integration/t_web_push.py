"""t_web_push: the web inbox's service worker (web/sw.js) takes a Web Push
while the page is closed, stores the message, shows it and acks it.

Real PostgreSQL, smsc-sim and pushgated (with a VAPID key); the push service
is tests/pushsvc/webpush-service.mjs over HTTPS, which decrypts what
pushgated sent with http_ece and checks its VAPID JWT with jose, neither of
which shares code with pushgated. Debian's headless Chromium, driven by
tests/browser/push.test.mjs, registers a number through the page and lets the
page register its service worker; then the page is closed (no socket).

Headless Chromium cannot subscribe at a real push service, so the sleeping
device's subscription is one made at pushsvc and registered through the API
with the device's own token, and the decrypted push is handed to the worker
with the DevTools protocol (ServiceWorker.deliverPushMessage) - what the
browser's push service client would do with it.

Covers: the push arrives at the push service as the msg frame, byte for byte
(recipient id, Korean text); the worker stores it, notifies (title sender,
body text, tag the id) and acks: PUSH_DELIVERED, a 'wake' event via webpush
201, and no SMS; a repeat is stored once; the reopened page shows it from
the store. A message longer than one push arrives as {"type":"wake"}: the
worker fetches GET /v1/device/pending, stores, acks: PUSH_DELIVERED. Log
out removes the subscription at pushgated. Screenshots go to
$PUSHGATE_BUILDDIR/test-artifacts/push-*.png, the driver's log to
test-artifacts/push-driver.log. Every wait is bounded.
"""
import atexit
import base64
import configparser
import json
import os
import selectors
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pushsvc as pushsvc_files  # noqa: E402  (tests/pushsvc.py; pushsvc() below starts the service)
from harness import TAP, tail

MSISDN = "821055502461"        # last digit 1: smsc-sim delivers the code's SMS
SENDER = "ACME"
PUSH_TIMEOUT = 20
TEXT = "[ACME] 인증번호 482913 — 타인에게 알려주지 마세요. \"quoted\" / slash"
# Over 4000 bytes (the default [server] max_text is 4096): its msg frame does not fit in one push.
LONG_TEXT = "[ACME] 긴 메시지 " + "가나다라마바사 " * 183 + "끝"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SRCDIR = os.path.abspath(os.environ.get(
    "PUSHGATE_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))

tests = TAP()
_state = {}
work = pushsvc_files.workdir("pushgate-webpush-")
# The VAPID key and the push service's certificate exist before pushgated starts (its ini names them).
pushsvc_files.certificate(work)
VAPID_PATH, VAPID_PUBLIC = pushsvc_files.vapid_key(work)


class Driver:
    """A node process speaking one JSON line in, one JSON line out."""

    def __init__(self, argv, log_path, env=None, stdin=subprocess.PIPE):
        self.log_path = log_path
        log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=log,
                                     cwd=SRCDIR, env=env)
        log.close()
        self.buf = b""

    def read_line(self, timeout):
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None
                self.buf += chunk
        finally:
            sel.close()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8")

    def stop(self, timeout=10):
        if self.proc.poll() is not None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)


class Browser(Driver):
    def __init__(self, env):
        script = os.path.join(SRCDIR, "tests", "browser", "push.test.mjs")
        modules = os.path.join(SRCDIR, "tests", "browser", "node_modules", "playwright-core")
        for path, what in ((CHROMIUM, "chromium"), (modules, "playwright-core")):
            if not os.path.exists(path):
                raise RuntimeError(f"{path} is missing ({what}): run tools/install-deps")
        artifacts = os.path.join(env.builddir, "test-artifacts")
        os.makedirs(artifacts, exist_ok=True)
        super().__init__([shutil.which("node") or "node", script, f"http://127.0.0.1:{env.http_port}/", artifacts],
                         os.path.join(artifacts, "push-driver.log"),
                         env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1", CHROMIUM=CHROMIUM))
        atexit.register(self.close)

    def call(self, cmd, timeout=30, **args):
        if self.proc.poll() is not None:
            raise AssertionError(f"browser driver exited ({self.proc.returncode}):\n" + tail(self.log_path, 20))
        self.proc.stdin.write((json.dumps(dict(args, cmd=cmd)) + "\n").encode())
        self.proc.stdin.flush()
        line = self.read_line(timeout)
        if line is None:
            raise AssertionError(f"browser step {cmd}: no answer within {timeout} s:\n" + tail(self.log_path, 20))
        reply = json.loads(line)
        if not reply.get("ok"):
            raise AssertionError(f"browser step {cmd} failed: {reply.get('error')}\n" + tail(self.log_path, 20))
        return reply

    def close(self):
        """End of stdin makes the driver close Chromium; bounded, then killed."""
        if self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.stop()


def browser(env):
    if "browser" not in _state:
        _state["browser"] = Browser(env)
    return _state["browser"]


# --- the push service -----------------------------------------------------------------

def pushsvc(env):
    """Starts tests/pushsvc once (stopped at teardown); its HTTPS port."""
    if "svc" in _state:
        return _state["svc"]
    if not os.path.isdir(os.path.join(SRCDIR, "tests", "pushsvc", "node_modules", "http_ece")):
        raise RuntimeError("tests/pushsvc/node_modules is missing: npm ci --prefix tests/pushsvc")
    svc = Driver([shutil.which("node") or "node", os.path.join(SRCDIR, "tests", "pushsvc", "webpush-service.mjs"),
                  "--cert", os.path.join(work, "svc.pem"), "--key", os.path.join(work, "svc.key")],
                 os.path.join(env.tmp, "pushsvc.stderr"), stdin=subprocess.DEVNULL)
    env.on_teardown(svc.stop)
    atexit.register(svc.stop)
    line = svc.read_line(15)
    if line is None:
        raise AssertionError("pushsvc printed no port within 15 s:\n" + tail(svc.log_path, 20))
    _state["svc"] = json.loads(line)["port"]
    _state["svc_ctx"] = ssl.create_default_context(cafile=os.path.join(work, "svc.pem"))
    return _state["svc"]


def svc_call(env, method, path):
    req = urllib.request.Request(f"https://127.0.0.1:{pushsvc(env)}{path}", method=method,
                                 data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(req, context=_state["svc_ctx"], timeout=10) as r:
        return json.loads(r.read())


def received(env, sub):
    got = svc_call(env, "GET", f"/received/{sub['id']}")
    assert got["rejected"] == [], got["rejected"]
    return got["received"]


# --- helpers ------------------------------------------------------------------------------

def send(env, text):
    st, _, b, raw = env.http("POST", "/v1/messages", {"from": SENDER, "to": [MSISDN], "text": text,
                                                      "purpose": "AUTH"})
    assert st == 202, (st, raw)
    return int(b["recipients"][0]["id"])


def recipient_state(env, rid):
    return env.scalar(f"SELECT state FROM recipients WHERE id = {rid}")


def no_socket(env):
    return env.scalar(f"SELECT socket_node IS NULL FROM devices WHERE id = {_state['device_id']}") == "t"


def msg_frame(env, rid, text):
    """The msg frame pushgated sends for a recipient (docs/device-protocol.md), as compact JSON."""
    sent_at = env.scalar("SELECT to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                         f"FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = {rid}")
    frame = {"type": "msg", "id": rid, "sender": SENDER, "sender_name": SENDER, "text": text,
             "folder": SENDER, "sent_at": sent_at}
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def delivered_by_the_worker(env, rid):
    """PUSH_DELIVERED, the wake event (webpush, 201), and no step of the SMS path."""
    env.wait_for(lambda: recipient_state(env, rid) == "PUSH_DELIVERED", timeout=10,
                 what=f"recipient {rid} to become PUSH_DELIVERED (the worker's ack)")
    events = env.sql(f"SELECT state, coalesce(kind, ''), coalesce(route, ''), coalesce(error_code::text, '') "
                     f"FROM events WHERE recipient_id = {rid} ORDER BY id")
    assert ("PUSH_SENT", "wake", "webpush", "201") in events, events
    assert [e for e in events if e[0].startswith("SMS_")] == [], events
    channel, device = env.sql(f"SELECT channel, device_id FROM recipients WHERE id = {rid}")[0]
    assert channel != "sms" and int(device) == _state["device_id"], (channel, device)
    assert env.smsc_submits()[MSISDN] == 1, env.smsc_log()   # the registration code's only


def ack_call(rid, acked):
    """The worker's POST /v1/device/acks for one id, as pushgated answered it."""
    return {"method": "POST", "path": "/v1/device/acks", "body": json.dumps({"ids": [rid]}, separators=(",", ":")),
            "status": 200, "answer": json.dumps({"acked": acked}, separators=(",", ":"))}


def sleep_page(env):
    b = browser(env)
    closed = b.call("close_inbox")
    assert all(not u.startswith("http") for u in closed["pages"]), closed
    env.wait_for(lambda: no_socket(env), timeout=10, what="the device's socket to be gone (socket_node NULL)")


# --- cases -------------------------------------------------------------------------------------

@tests.case
def page_registers_the_number_and_its_service_worker(env):
    b = browser(env)
    assert b.call("open")["title"] == "pushgate inbox"
    reg = b.call("register", msisdn=MSISDN)
    assert reg["conn"] == "Live", reg
    # the code the demo server answered is the one that went out by SMS
    texts = env.wait_for(lambda: env.smsc_texts(MSISDN), timeout=10, what="the registration code's SMS")
    assert len(texts) == 1 and reg["code"] in texts[0], (texts, reg)
    setup = b.call("push_setup")
    # The worker is registered at /web/ and active; headless Chromium has no push
    # service, so the page's subscribe fails quietly and it stays live on its socket.
    assert setup["scope"].endswith("/web/") and setup["scriptURL"].endswith("/web/sw.js"), setup
    assert setup["conn"] == "live", setup
    assert setup["push"]["state"] in ("subscribing", "failed", "subscribed"), setup
    print(f"# page push set-up: {setup['push']}", flush=True)
    dev = b.call("device")
    assert dev["idb"] == dev["local"], dev
    _state["device_id"], _state["token"] = int(dev["idb"]["device_id"]), dev["idb"]["token"]
    rows = env.sql(f"SELECT msisdn, platform FROM devices WHERE id = {_state['device_id']} "
                   "AND verified_at IS NOT NULL AND revoked_at IS NULL")
    assert rows == [(MSISDN, "web")], rows
    st, _, body, _ = env.http("GET", "/v1/device/webpush-key", key=None)
    assert st == 200 and body == {"public_key": VAPID_PUBLIC}, (st, body)


@tests.case
def closed_page_leaves_a_device_with_only_a_web_push_subscription(env):
    sleep_page(env)
    sub = svc_call(env, "POST", "/subscribe")
    st, _, _, raw = env.http("POST", "/v1/device/wakeup",
                             {"endpoint": sub["endpoint"], "expirationTime": None, "keys": sub["keys"]},
                             key=_state["token"])
    assert st == 204, (st, raw)
    _state["sub"] = sub


@tests.case
def message_reaches_the_push_service_as_the_exact_msg_frame(env):
    rid = send(env, TEXT)
    _state["rid"] = rid
    got = env.wait_for(lambda: received(env, _state["sub"]), timeout=10, what="the push at pushsvc")
    assert len(got) == 1, got
    want = msg_frame(env, rid, TEXT)
    assert got[0]["plaintext"] == want, (got[0]["plaintext"], want)
    assert base64.b64decode(got[0]["plaintext_b64"]) == want.encode("utf-8")
    assert got[0]["urgency"] == "high" and 0 < got[0]["ttl"] <= PUSH_TIMEOUT, got[0]
    _state["plain"] = got[0]["plaintext"]


@tests.case
def worker_stores_notifies_and_acks_so_the_recipient_is_push_delivered(env):
    b = browser(env)
    t0 = time.monotonic()
    d = b.call("deliver", data=_state["plain"])
    assert all(not u.startswith("http") for u in d["pages"]), d   # no inbox page open
    delivered_by_the_worker(env, _state["rid"])
    print(f"# push handed to the worker -> PUSH_DELIVERED in {time.monotonic() - t0:.2f} s", flush=True)
    calls = b.call("worker_calls", count=1)["calls"]
    assert calls == [ack_call(_state["rid"], 1)], calls


@tests.case
def junk_is_ignored_and_a_repeated_push_is_stored_once_and_acked_again(env):
    b = browser(env)
    frame = json.loads(_state["plain"])
    junk = ["not json", "[]", '{"type":"msg"}', json.dumps({**frame, "id": str(frame["id"])}),
            json.dumps({**frame, "id": -1}), json.dumps({**frame, "sender": "A" * 65}),
            json.dumps({**frame, "text": None}), json.dumps({**frame, "type": "shiny-new-type"})]
    n = len(b.call("worker_calls", count=0)["calls"])
    for data in junk:
        b.call("deliver", data=data)
    # pushes reach the worker in order: the repeat's ack comes after whatever the junk caused (nothing)
    b.call("deliver", data=_state["plain"])
    calls = b.call("worker_calls", count=n + 1)["calls"][n:]
    assert calls == [ack_call(_state["rid"], 0)], calls   # acks are idempotent: nothing left to move
    assert recipient_state(env, _state["rid"]) == "PUSH_DELIVERED"


@tests.case
def reopened_page_shows_the_message_and_the_notification_exists(env):
    b = browser(env)
    shown = b.call("reopen")
    assert shown["folders"] == [SENDER], shown
    assert shown["stats"]["stored"] == 0, shown   # from the worker's store, not from the socket
    notes = b.call("notifications")["notifications"]
    mine = [n for n in notes if n["tag"] == str(_state["rid"])]
    assert mine == [{"title": SENDER, "body": TEXT, "tag": str(_state["rid"])}], notes
    folder = b.call("open_folder", folder=SENDER, text=TEXT[:12])
    assert folder["texts"] == [TEXT] and folder["ids"] == [_state["rid"]], folder
    b.call("screenshot", name="after-worker")


@tests.case
def long_message_is_a_wake_up_and_the_worker_fetches_pending(env):
    b = browser(env)
    sleep_page(env)
    before = len(received(env, _state["sub"]))
    n = len(b.call("worker_calls", count=0)["calls"])
    rid = send(env, LONG_TEXT)
    assert len(LONG_TEXT.encode()) > 4000
    got = env.wait_for(lambda: received(env, _state["sub"])[before:], timeout=10, what="the wake-up at pushsvc")
    assert [g["plaintext"] for g in got] == ['{"type":"wake"}'], got
    assert got[0]["topic"] == "pending", got[0]
    b.call("deliver", data=got[0]["plaintext"])
    delivered_by_the_worker(env, rid)
    calls = b.call("worker_calls", count=n + 2)["calls"][n:]
    assert [(c["method"], c["path"], c["status"]) for c in calls[:1]] == [("GET", "/v1/device/pending", 200)], calls
    assert [m["id"] for m in json.loads(calls[0]["answer"])["messages"]] == [rid], calls[0]["answer"][:300]
    assert calls[1:] == [ack_call(rid, 1)], calls
    shown = b.call("reopen")
    notes = b.call("notifications")["notifications"]
    mine = [n for n in notes if n["tag"] == str(rid)]
    assert mine == [{"title": SENDER, "body": LONG_TEXT[:239] + "…", "tag": str(rid)}], notes
    folder = b.call("open_folder", folder=SENDER, text="끝")
    assert folder["texts"][0] == LONG_TEXT and sorted(folder["ids"]) == [_state["rid"], rid], (shown, folder)
    b.call("screenshot", name="after-wake")


@tests.case
def logout_removes_the_subscription_at_pushgated(env):
    b = browser(env)
    b.call("logout")
    rows = env.sql(f"SELECT revoked_why FROM device_wakeups WHERE device_id = {_state['device_id']}")
    assert rows == [("removed by the device",)], rows
    assert env.scalar(f"SELECT revoked_at IS NOT NULL FROM devices WHERE id = {_state['device_id']}") == "t"


@tests.case
def browser_ran_without_script_errors(env):
    b = browser(env)
    errors = b.call("errors")
    b.call("quit")
    assert errors["errors"] == [] and errors["worker_errors"] == [], errors


def ini():
    """pushgated with Web Push (VAPID key), the push service's certificate, and the inbox from SRCDIR/web."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(os.path.join(SRCDIR, "etc", "pushgate.ini"), encoding="utf-8")
    web = next((s for s in cp.sections() if cp.has_option(s, "web_root")), "push")
    out = {
        "webpush": {"vapid_key": VAPID_PATH, "subject": "mailto:ops@example.com"},
        "wake": {"allow_internal": "127.0.0.0/8", "ca_file": os.path.join(work, "svc.pem")},
        "push": {"otp_echo": "yes", "push_timeout": str(PUSH_TIMEOUT)},
    }
    out.setdefault(web, {})["web_root"] = os.path.join(SRCDIR, "web")
    return out


tests.run(dlr_delay_ms=50, ini=ini())
