"""t_wake_native: platform push to native apps through FCM HTTP v1 and APNs.

Real PostgreSQL, smsc-sim and pushgated; Google's and Apple's services are
tests/pushsvc/fcm-service.mjs and apns-service.mjs over HTTPS (HTTP/2),
which check each request as the two documents say (OAuth 2.0 JWT bearer
grant with an RS256 assertion, messages:send bodies, the APNs ES256
provider token, paths and apns-* headers) with node:crypto and jose, and
answer with the documented bodies.

Covers: registration of FCM and APNs tokens (errors named by field); an
OTP to a sleeping Android device and one to a sleeping iPhone, each acked
over HTTP before push_timeout with no SMS; an expired OAuth access token and
an expired provider token renewed and the push sent again; UNREGISTERED,
410 Unregistered and BadDeviceToken revoke; 503 with Retry-After retried; a
long message is a wake-up alert; a push whose notification was missed is
found by the scan at the wake connection's next start.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP
import pushsvc

tests = TAP()
PUSH_TIMEOUT = 20
BUNDLE = "com.pushgate.test"
work = pushsvc.workdir("pushgate-native-")
pushsvc.certificate(work)
FCM = pushsvc.Service(work, "fcm-service")
APNS = pushsvc.Service(work, "apns-service")
FCM_PORT, APNS_PORT = FCM.port, APNS.port


def fcm(method, path, body=None):
    return FCM.call(method, path, body)


def apns(method, path, body=None):
    return APNS.call(method, path, body)


def write(name, text, mode=0o600):
    path = os.path.join(work, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


SA_PATH = write("fcm-sa.json", json.dumps(fcm("POST", "/service-account")))
APNS_KEY = apns("POST", "/key")
P8_PATH = write(f"AuthKey_{APNS_KEY['key_id']}.p8", APNS_KEY["p8"])


def register(env, msisdn):
    v = env.register_device(msisdn, "android")
    return v["device_id"], v["token"]


def sleeping(env, msisdn, kind):
    dev, token = register(env, msisdn)
    ptoken = (fcm if kind == "fcm" else apns)("POST", "/devices")["token"]
    st, _, _, raw = env.http("POST", "/v1/device/wakeup", {"kind": kind, "token": ptoken}, key=token)
    assert st == 204, (st, raw)
    return dev, token, ptoken


def send(env, to, text, purpose=None):
    body = {"to": [to], "text": text, "from": "ACME"}
    if purpose:
        body["purpose"] = purpose
    st, _, b, raw = env.http("POST", "/v1/messages", body)
    assert st == 202, (st, raw)
    return int(b["recipients"][0]["id"])


def wake_events(env, rid):
    return env.sql(f"SELECT route, error_code, detail FROM events WHERE recipient_id = {rid} AND kind = 'wake'"
                   " ORDER BY id")


def received_for(svc, ptoken):
    got = svc("GET", "/received")
    return [r for r in got["received"] if r.get("token") == ptoken], \
        [r for r in got["rejected"] if r.get("token") == ptoken], got


def acked(env, token, rid):
    st, _, b, raw = env.http("POST", "/v1/device/acks", {"ids": [rid]}, key=token)
    assert st == 200 and b["acked"] == 1, (st, raw)
    assert env.scalar(f"SELECT state FROM recipients WHERE id = {rid}") == "PUSH_DELIVERED"


@tests.case
def native_tokens_are_registered_and_bad_ones_named(env):
    dev, token = register(env, "821088800001")
    cases = [
        ({"kind": "fcm", "token": "has space"}, "token"),
        ({"kind": "fcm", "token": ""}, "token"),
        ({"kind": "apns", "token": "zz" * 32}, "token"),
        ({"kind": "apns", "token": "ab" * 31 + "a"}, "token"),
        ({"kind": "fcm", "token": "abc", "app": "nosuchapp"}, "app"),
        ({"kind": "webpush", "endpoint": "https://127.0.0.1/x", "keys": {}}, "kind"),   # Web Push is off here
    ]
    for body, field in cases:
        st, _, b, raw = env.http("POST", "/v1/device/wakeup", body, key=token)
        assert st == 400 and b["error"]["field"] == field, (body, st, raw)
    st, _, _, raw = env.http("POST", "/v1/device/wakeup", {"kind": "apns", "token": "AB" * 32, "app": "ios"},
                             key=token)
    assert st == 204, raw
    row = env.sql(f"SELECT kind, endpoint, app FROM device_wakeups WHERE device_id = {dev}")
    assert row == [("apns", "ab" * 32, "ios")], row   # hex stored lower case
    st, _, b, _ = env.http("GET", "/v1/device/webpush-key", key=None)
    assert st == 404, b


@tests.case
def an_otp_to_a_sleeping_android_device_goes_through_fcm(env):
    msisdn = "821088800011"
    dev, token, ptoken = sleeping(env, msisdn, "fcm")
    text = "[ACME] 인증번호 771204"
    t0 = time.monotonic()
    rid = send(env, msisdn, text, purpose="AUTH")
    env.wait_for(lambda: received_for(fcm, ptoken)[0], timeout=10, what="the FCM send")
    (r,), rejected, got = received_for(fcm, ptoken)
    assert rejected == [], rejected
    assert r["http_version"] == "2.0" and r["authorization_ok"], r
    msg = r["message"]
    assert msg["token"] == ptoken, msg
    data = msg["data"]
    assert data["type"] == "msg" and data["id"] == str(rid) and data["text"] == text and data["sender"] == "ACME", data
    assert all(isinstance(v, str) for v in data.values()), data
    assert msg["android"]["priority"] == "high", msg
    ttl = float(msg["android"]["ttl"].rstrip("s"))
    assert 0 < ttl <= PUSH_TIMEOUT, msg
    assert got["token_grants"] == 1, got["token_grants"]
    grant = got["grants"][0]
    assert grant["claims"]["scope"] == "https://www.googleapis.com/auth/firebase.messaging", grant
    acked(env, token, rid)
    assert time.monotonic() - t0 < PUSH_TIMEOUT / 2
    ev = wake_events(env, rid)
    assert len(ev) == 1 and ev[0][0] == "fcm" and ev[0][1] == "200", ev
    time.sleep(0.5)
    assert all("771204" not in t for t in env.smsc_texts(msisdn))


@tests.case
def an_expired_oauth_token_is_renewed_and_the_push_sent_again(env):
    msisdn = "821088800021"
    dev, token, ptoken = sleeping(env, msisdn, "fcm")
    grants = fcm("GET", "/received")["token_grants"]
    fcm("POST", "/control/expire-tokens")
    rid = send(env, msisdn, "after the token expired")
    env.wait_for(lambda: received_for(fcm, ptoken)[0], timeout=10, what="the send with a new token")
    assert fcm("GET", "/received")["token_grants"] == grants + 1
    ev = wake_events(env, rid)
    assert [e[1] for e in ev] == ["401", "200"], ev
    assert "credentials renewed" in ev[0][2], ev


@tests.case
def fcm_unregistered_revokes_and_unavailable_is_retried(env):
    msisdn = "821088800031"
    dev, token, ptoken = sleeping(env, msisdn, "fcm")
    fcm("POST", "/control", {"answers": [{"status": 503, "retry_after": 1}]})
    t0 = time.monotonic()
    rid = send(env, msisdn, "retried after 503")
    env.wait_for(lambda: received_for(fcm, ptoken)[0], timeout=10, what="the retried send")
    assert time.monotonic() - t0 >= 1.0
    assert [e[1] for e in wake_events(env, rid)] == ["503", "200"], wake_events(env, rid)
    fcm("DELETE", f"/devices/{ptoken}")
    rid2 = send(env, msisdn, "to an uninstalled app")
    env.wait_for(lambda: env.scalar(f"SELECT revoked_at IS NOT NULL FROM device_wakeups WHERE device_id = {dev}")
                 == "t", timeout=10, what="the FCM token revoked")
    ev = wake_events(env, rid2)
    assert ev[0][1] == "404" and "UNREGISTERED" in ev[0][2] and "revoked" in ev[0][2], ev


@tests.case
def an_otp_to_a_sleeping_iphone_goes_through_apns(env):
    msisdn = "821088800041"
    dev, token, ptoken = sleeping(env, msisdn, "apns")
    text = "[ACME] 인증번호 550133"
    rid = send(env, msisdn, text, purpose="AUTH")
    env.wait_for(lambda: received_for(apns, ptoken)[0], timeout=10, what="the APNs push")
    (r,), rejected, _ = received_for(apns, ptoken)
    assert rejected == [], rejected
    assert r["http_version"] == "2.0", r
    h = r["headers"]
    assert h["apns-topic"] == BUNDLE and h["apns-push-type"] == "alert" and h["apns-priority"] == "10", h
    assert 0 < int(h["apns-expiration"]) - time.time() <= PUSH_TIMEOUT + 2, h
    assert r["jwt"]["header"]["kid"] == APNS_KEY["key_id"] and r["jwt"]["claims"]["iss"] == APNS_KEY["team_id"], r
    p = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
    assert p["aps"]["alert"] == {"title": "ACME", "body": text}, p
    assert p["pushgate"]["id"] == rid and p["pushgate"]["text"] == text, p
    assert r["warnings"] == [], r["warnings"]
    acked(env, token, rid)
    ev = wake_events(env, rid)
    assert len(ev) == 1 and ev[0][0] == "apns" and ev[0][1] == "200", ev


@tests.case
def an_expired_provider_token_is_renewed_and_dead_tokens_revoked(env):
    msisdn = "821088800051"
    dev, token, ptoken = sleeping(env, msisdn, "apns")
    seen = apns("GET", "/received")["jwts_seen"]
    apns("POST", "/control/expire-tokens")
    rid = send(env, msisdn, "after the provider token expired")
    env.wait_for(lambda: received_for(apns, ptoken)[0], timeout=10, what="the push with a new provider token")
    assert [e[1] for e in wake_events(env, rid)] == ["403", "200"], wake_events(env, rid)
    assert apns("GET", "/received")["jwts_seen"] == seen + 1
    # a device token Apple no longer knows
    apns("POST", "/control", {"answers": [{"status": 400, "reason": "BadDeviceToken"}]})
    rid2 = send(env, msisdn, "to a bad device token")
    env.wait_for(lambda: wake_events(env, rid2), timeout=10, what="the BadDeviceToken answer")
    assert "BadDeviceToken" in wake_events(env, rid2)[0][2]
    assert env.scalar(f"SELECT revoked_at IS NOT NULL FROM device_wakeups WHERE device_id = {dev}") == "t"
    # an uninstalled app: 410 Unregistered
    dev3, token3, ptoken3 = sleeping(env, "821088800052", "apns")
    apns("DELETE", f"/devices/{ptoken3}")
    rid3 = send(env, "821088800052", "to an uninstalled app")
    env.wait_for(lambda: env.scalar(f"SELECT revoked_at IS NOT NULL FROM device_wakeups WHERE device_id = {dev3}")
                 == "t", timeout=10, what="410 revokes")
    assert wake_events(env, rid3)[0][1] == "410"


@tests.case
def a_long_message_is_a_wake_up_alert(env):
    msisdn = "821088800061"
    dev, token, ptoken = sleeping(env, msisdn, "apns")
    text = "가" * 1350
    rid = send(env, msisdn, text)
    env.wait_for(lambda: received_for(apns, ptoken)[0], timeout=10, what="the wake-up alert")
    p = received_for(apns, ptoken)[0][0]["payload"]
    p = p if isinstance(p, dict) else json.loads(p)
    assert p["pushgate"] == {"type": "wake"} and p["aps"]["alert"]["body"] == "New message", p
    st, _, b, _ = env.http("GET", "/v1/device/pending", key=token)
    assert any(m["id"] == rid and m["text"] == text for m in b["messages"]), b


@tests.case
def a_push_whose_notification_was_missed_is_found_by_the_scan(env):
    msisdn = "821088800071"
    dev, token, ptoken = sleeping(env, msisdn, "fcm")
    # a PUSH_SENT recipient whose NOTIFY nobody heard (the link was down): only the scan finds it
    acct = env.scalar("SELECT id FROM accounts WHERE name = 'test'")
    rid = int(env.scalar(f"""
        WITH m AS (INSERT INTO messages (account_id, sender, body) VALUES ({acct}, 'ACME', 'missed') RETURNING id)
        INSERT INTO recipients (message_id, account_id, msisdn, state, channel, expires_at, push_deadline)
        SELECT m.id, {acct}, '{msisdn}', 'PUSH_SENT', 'push', now() + interval '1 hour', now() + interval '1 minute'
        FROM m RETURNING id"""))
    time.sleep(0.5)
    assert received_for(fcm, ptoken)[0] == []   # nothing announced it
    # the wake module's connection breaks (it is the one that claims and writes wakes): at the
    # reconnection it looks for what it may have missed
    killed = env.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'pushgate' AND pid <> pg_backend_pid()"
                        " AND (query LIKE '%INSERT INTO wakes%' OR query LIKE '%UPDATE wakes%'"
                        " OR query LIKE 'LISTEN pushgate_wake%')")
    assert killed == "1", killed
    env.wait_for(lambda: received_for(fcm, ptoken)[0], timeout=15, what="the scan's wake")
    assert received_for(fcm, ptoken)[0][0]["message"]["data"]["id"] == str(rid)


tests.run(ini={
    "push": {"otp_echo": "yes", "push_timeout": str(PUSH_TIMEOUT)},
    "wake": {"allow_internal": "127.0.0.1/32", "ca_file": os.path.join(work, "svc.pem"),
             "backoff_min": "0.5"},
    "fcm android": {"credentials": SA_PATH, "endpoint": f"https://127.0.0.1:{FCM_PORT}"},
    "apns ios": {"key_file": P8_PATH, "key_id": APNS_KEY["key_id"], "team_id": APNS_KEY["team_id"],
                 "bundle_id": BUNDLE, "environment": "sandbox", "endpoint": f"https://127.0.0.1:{APNS_PORT}"},
})
