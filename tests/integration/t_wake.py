"""t_wake: platform push (Web Push) to devices with no live socket.

Real PostgreSQL, smsc-sim and pushgated; the push service is
tests/pushsvc/webpush-service.mjs over HTTPS, which checks every request
with implementations that share no code with pushgated (http_ece decrypts
the RFC 8291 payload, jose verifies the RFC 8292 VAPID JWT) and answers as
a push service does (201, or what a case queues: 410, 429, 413...).

Covers: the VAPID key endpoint; subscription errors named by field; the OTP
path (a sleeping device with a subscription gets the message encrypted,
byte-exact, with TTL, Urgency and VAPID claims; its ack over HTTP makes it
PUSH_DELIVERED long before push_timeout and no SMS goes out); a connected
device gets no platform push, and is woken once its socket closes; a node
that is gone does not count as a socket; 410 revokes the subscription and
the SMS fallback follows; 429 with Retry-After is retried; a message too
long for one record is a wake-up and GET /v1/device/pending has it; 413
turns a message into a wake-up; an endpoint the outbound policy refuses;
a subscription registered after the message (its NOTIFY).
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP
from wsclient import WS
import pushsvc

tests = TAP()
PUSH_TIMEOUT = 8
work = pushsvc.workdir("pushgate-wake-")
pushsvc.certificate(work)
VAPID_PATH, VAPID_PUBLIC = pushsvc.vapid_key(work)
SVC = pushsvc.Service(work, "webpush-service")
SVC_PORT = SVC.port


def svc_call(method, path, body=None):
    return SVC.call(method, path, body)


def subscribe():
    return svc_call("POST", "/subscribe")


def received(sub):
    return svc_call("GET", f"/received/{sub['id']}")


def register(env, msisdn):
    v = env.register_device(msisdn, "web")
    return v["device_id"], v["token"]


def set_wakeup(env, token, sub, **extra):
    body = {"endpoint": sub["endpoint"], "expirationTime": None, "keys": sub["keys"], **extra}
    return env.http("POST", "/v1/device/wakeup", body, key=token)


def sleeping_device(env, msisdn):
    """A registered device with a subscription at the push service and no socket."""
    dev, token = register(env, msisdn)
    sub = subscribe()
    st, _, b, raw = set_wakeup(env, token, sub)
    assert st == 204, (st, raw)
    return dev, token, sub


def send(env, to, text, purpose=None, sender="ACME"):
    body = {"to": [to], "text": text, "from": sender}
    if purpose:
        body["purpose"] = purpose
    st, _, b, raw = env.http("POST", "/v1/messages", body)
    assert st == 202, (st, raw)
    return int(b["recipients"][0]["id"])


def wake_events(env, rid):
    return env.sql(f"SELECT route, error_code, detail FROM events WHERE recipient_id = {rid} AND kind = 'wake'"
                   " ORDER BY id")


def state(env, rid):
    return env.scalar(f"SELECT state FROM recipients WHERE id = {rid}")


@tests.case
def the_vapid_key_is_served_and_bad_subscriptions_are_named(env):
    st, _, b, _ = env.http("GET", "/v1/device/webpush-key", key=None)
    assert st == 200 and b["public_key"] == VAPID_PUBLIC, b
    dev, token = register(env, "821077700001")
    sub = subscribe()
    st, _, b, _ = set_wakeup(env, None, sub)
    assert st == 401, b
    st, _, b, _ = set_wakeup(env, "dt_notatoken", sub)
    assert st == 401, b
    cases = [
        ({"endpoint": "http://127.0.0.1/push/x"}, "endpoint"),
        ({"endpoint": "https://" + "a" * 1100}, "endpoint"),
        ({"keys": {"p256dh": "AAAA", "auth": sub["keys"]["auth"]}}, "keys.p256dh"),
        # 65 bytes, the uncompressed prefix, but not a point on the curve
        ({"keys": {"p256dh": base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode(),
                   "auth": sub["keys"]["auth"]}}, "keys.p256dh"),
        ({"keys": {"p256dh": sub["keys"]["p256dh"], "auth": "AAAA"}}, "keys.auth"),
        ({"kind": "fcm"}, "kind"),
        ({"kind": "carrier-pigeon"}, "kind"),
    ]
    for change, field in cases:
        body = {"endpoint": sub["endpoint"], "keys": sub["keys"], **change}
        st, _, b, raw = env.http("POST", "/v1/device/wakeup", body, key=token)
        assert st == 400 and b["error"]["field"] == field, (change, st, raw)
    assert env.scalar(f"SELECT count(*) FROM device_wakeups WHERE device_id = {dev}") == "0"
    st, _, b, _ = env.http("DELETE", "/v1/device/wakeup", key=token)
    assert st == 404, b
    st, _, b, _ = env.http("PUT", "/v1/device/wakeup", {}, key=token)
    assert st == 405, b


@tests.case
def a_sleeping_device_gets_the_otp_encrypted_and_its_ack_saves_the_sms(env):
    msisdn = "821077700011"   # last digit 1: smsc-sim would deliver an SMS
    dev, token, sub = sleeping_device(env, msisdn)
    text = "[ACME] 인증번호 482913 — 타인에게 알려주지 마세요"
    t0 = time.monotonic()
    rid = send(env, msisdn, text, purpose="AUTH")
    env.wait_for(lambda: received(sub)["received"], timeout=10, what="the push at the push service")
    got = received(sub)
    assert got["rejected"] == [], got["rejected"]
    (r,) = got["received"]
    msg = json.loads(r["plaintext"])
    created = env.scalar("SELECT to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                         f" FROM messages m JOIN recipients r ON r.message_id = m.id WHERE r.id = {rid}")
    want = {"type": "msg", "id": rid, "sender": "ACME", "sender_name": "ACME", "text": text, "folder": "ACME",
            "sent_at": created}
    assert msg == want, (msg, want)
    # byte-exact: the compact JSON pushgated's WebSocket sends, UTF-8
    assert base64.b64decode(r["plaintext_b64"]) == r["plaintext"].encode(), r
    assert r["urgency"] == "high" and r["topic"] is None, r
    assert 0 < r["ttl"] <= PUSH_TIMEOUT, r
    assert r["claims"]["aud"] == f"https://127.0.0.1:{SVC_PORT}", r["claims"]
    assert r["claims"]["sub"] == "mailto:ops@pushgate.test", r["claims"]
    assert r["vapid_key"] == VAPID_PUBLIC, r
    assert r["record_size"] == 4096 and r["body_len"] % 128 == (86 + 1 + 16) % 128, r   # padded to 128
    # the app acks over HTTP, as a service worker does
    st, _, b, raw = env.http("POST", "/v1/device/acks", {"ids": [rid]}, key=token)
    assert st == 200 and b["acked"] == 1, (st, raw)
    took = time.monotonic() - t0
    assert state(env, rid) == "PUSH_DELIVERED"
    assert took < PUSH_TIMEOUT / 2, took
    st, _, b, _ = env.http("POST", "/v1/device/acks", {"ids": [rid]}, key=token)
    assert st == 200 and b["acked"] == 0, b   # idempotent
    ev = wake_events(env, rid)
    assert len(ev) == 1 and ev[0][0] == "webpush" and ev[0][1] == "201", ev
    assert env.scalar(f"SELECT status FROM wakes WHERE recipient_id = {rid} AND device_id = {dev}") == "201"
    kinds = env.sql(f"SELECT kind, state FROM events WHERE recipient_id = {rid} ORDER BY id")
    assert kinds == [("state", "ACCEPTED"), ("state", "PUSH_SENT"), ("wake", "PUSH_SENT"),
                     ("state", "PUSH_DELIVERED")], kinds
    time.sleep(1.0)
    texts = env.smsc_texts(msisdn)
    assert len(texts) == 1 and "482913" not in texts[0], texts   # the registration code's SMS only
    st, _, b, _ = env.http("POST", "/v1/device/acks", {"ids": []}, key=token)
    assert st == 400 and b["error"]["field"] == "ids", b


@tests.case
def a_connected_device_gets_no_platform_push_until_its_socket_closes(env):
    msisdn = "821077700021"
    dev, token, sub = sleeping_device(env, msisdn)
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": token})
    assert ws.recv()["type"] == "welcome"
    env.wait_for(lambda: env.scalar(f"SELECT socket_node FROM devices WHERE id = {dev}") not in (None, ""),
                 timeout=5, what="socket_node set")
    rid = send(env, msisdn, "over the socket")
    m = ws.recv()
    assert m["type"] == "msg" and m["id"] == rid, m
    ws.send({"type": "ack", "id": rid})
    env.wait_for(lambda: state(env, rid) == "PUSH_DELIVERED", timeout=5, what="acked over the socket")
    time.sleep(1.5)   # a claim would have come at once
    assert received(sub)["received"] == [], "a connected device was woken"
    assert env.scalar(f"SELECT count(*) FROM wakes WHERE device_id = {dev}") == "0"
    ws.close()
    env.wait_for(lambda: env.scalar(f"SELECT socket_node FROM devices WHERE id = {dev}") in (None, ""),
                 timeout=5, what="socket_node cleared")
    rid2 = send(env, msisdn, "after the socket closed")
    env.wait_for(lambda: len(received(sub)["received"]) == 1, timeout=10, what="the wake after close")
    assert json.loads(received(sub)["received"][0]["plaintext"])["id"] == rid2


@tests.case
def a_socket_on_a_node_that_is_gone_does_not_count(env):
    msisdn = "821077700031"
    dev, token, sub = sleeping_device(env, msisdn)
    env.sql(f"UPDATE devices SET socket_node = 'node-that-died' WHERE id = {dev}")
    rid = send(env, msisdn, "your node is gone")
    env.wait_for(lambda: received(sub)["received"], timeout=10, what="the wake")
    assert json.loads(received(sub)["received"][0]["plaintext"])["id"] == rid


@tests.case
def gone_subscriptions_are_revoked_and_the_sms_follows(env):
    msisdn = "821077700041"
    dev, token, sub = sleeping_device(env, msisdn)
    svc_call("POST", f"/control/{sub['id']}", {"answers": [{"status": 410}]})
    rid = send(env, msisdn, "to a subscription the browser dropped")
    env.wait_for(lambda: env.scalar(f"SELECT revoked_at IS NOT NULL FROM device_wakeups WHERE device_id = {dev}")
                 == "t", timeout=10, what="the subscription revoked")
    ev = wake_events(env, rid)
    assert len(ev) == 1 and ev[0][1] == "410" and "revoked" in ev[0][2], ev
    rid2 = send(env, msisdn, "no push service call any more")
    env.wait_for(lambda: state(env, rid) not in ("PUSH_SENT",) and state(env, rid2) != "PUSH_SENT",
                 timeout=PUSH_TIMEOUT + 10, interval=0.25, what="SMS fallback at the push deadline")
    assert state(env, rid).startswith("SMS_"), state(env, rid)
    assert wake_events(env, rid2) == []
    assert len(received(sub)["rejected"]) == 1   # the 410 one, nothing after


@tests.case
def too_many_requests_is_retried_after_retry_after(env):
    msisdn = "821077700051"
    dev, token, sub = sleeping_device(env, msisdn)
    svc_call("POST", f"/control/{sub['id']}", {"answers": [{"status": 429, "retry_after": 1}, {"status": 503}]})
    t0 = time.monotonic()
    rid = send(env, msisdn, "retried")
    env.wait_for(lambda: received(sub)["received"], timeout=10, what="the third attempt accepted")
    assert time.monotonic() - t0 >= 1.0
    ev = wake_events(env, rid)
    assert [e[1] for e in ev] == ["429", "503", "201"], ev
    assert "again in 1.0 s" in ev[0][2], ev
    assert env.scalar(f"SELECT attempts FROM wakes WHERE recipient_id = {rid}") == "3"


@tests.case
def a_long_message_is_a_wake_up_and_pending_has_it(env):
    msisdn = "821077700061"
    dev, token, sub = sleeping_device(env, msisdn)
    text = "가" * 1320   # 3,960 bytes of UTF-8: with the frame, more than one record holds
    rid = send(env, msisdn, text)
    env.wait_for(lambda: received(sub)["received"], timeout=10, what="the wake-up")
    r = received(sub)["received"][0]
    assert json.loads(r["plaintext"]) == {"type": "wake"} and r["topic"] == "pending", r
    st, _, b, _ = env.http("GET", "/v1/device/pending", key=token)
    assert st == 200, b
    mine = [m for m in b["messages"] if m["id"] == rid]
    assert len(mine) == 1 and mine[0]["text"] == text, b
    # a 413 from the push service: the message goes again as a wake-up
    rid2 = send(env, msisdn, "short, but this push service takes little")
    svc_call("POST", f"/control/{sub['id']}", {"answers": [{"status": 413}]})
    env.wait_for(lambda: len(received(sub)["received"]) == 2, timeout=10, what="the wake-up after 413")
    ev = wake_events(env, rid2)
    assert [e[1] for e in ev] in (["413", "201"], ["201"]), ev   # a race with the control call is fine
    st, _, b, _ = env.http("GET", "/v1/device/pending", key="dt_wrong")
    assert st == 401, b


@tests.case
def an_endpoint_the_outbound_policy_refuses_is_not_called(env):
    msisdn = "821077700071"
    dev, token = register(env, msisdn)
    sub = subscribe()
    sub = dict(sub, endpoint=sub["endpoint"].replace("127.0.0.1", "127.0.0.2"))
    st, _, b, raw = set_wakeup(env, token, sub)
    assert st == 204, raw
    rid = send(env, msisdn, "to an internal address")
    env.wait_for(lambda: wake_events(env, rid), timeout=10, what="the refusal recorded")
    ev = wake_events(env, rid)
    assert "refused by the outbound policy" in ev[0][2], ev
    assert env.scalar(f"SELECT done_at IS NOT NULL FROM wakes WHERE recipient_id = {rid}") == "t"


@tests.case
def a_subscription_registered_later_wakes_what_waits(env):
    msisdn = "821077700081"
    dev, token = register(env, msisdn)
    rid = send(env, msisdn, "sent before the subscription")
    assert state(env, rid) == "PUSH_SENT"
    sub = subscribe()
    st, _, _, raw = set_wakeup(env, token, sub)
    assert st == 204, raw
    env.wait_for(lambda: received(sub)["received"], timeout=10, what="the wake after the subscription")
    assert json.loads(received(sub)["received"][0]["plaintext"])["id"] == rid
    st, _, _, _ = env.http("DELETE", "/v1/device/wakeup", key=token)
    assert st == 204
    assert env.scalar(f"SELECT revoked_why FROM device_wakeups WHERE device_id = {dev}") == "removed by the device"


@tests.case
def a_vapid_key_open_to_others_refuses_the_start(env):
    loose = os.path.join(work, "loose.pem")
    shutil.copy(VAPID_PATH, loose)
    os.chmod(loose, 0o644)
    ini = os.path.join(work, "loose.ini")
    with open(env.ini_path, encoding="utf-8") as f:
        text = f.read().replace(VAPID_PATH, loose)
    with open(os.open(ini, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run([os.path.join(env.builddir, "pushgated"), "-c", ini], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "[webpush] vapid_key" in r.stderr and "open to other users" in r.stderr, r


tests.run(ini={
    "push": {"otp_echo": "yes", "push_timeout": str(PUSH_TIMEOUT)},
    "webpush": {"vapid_key": VAPID_PATH, "subject": "mailto:ops@pushgate.test"},
    "wake": {"allow_internal": "127.0.0.1/32", "ca_file": os.path.join(work, "svc.pem"),
             "backoff_min": "0.5"},
})
