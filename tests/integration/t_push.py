"""t_push: the push channel end to end (docs/device-protocol.md).

Real PostgreSQL, smsc-sim and pushgated; devices are WebSocket clients
(tests/wsclient.py) registered through the HTTP API with the one-time code.
Covers: registration errors, push to a connected device acked within a
second, an offline device receiving its message once on reconnect,
reject/allow and the opt-out policies, no device -> SMS, no ack -> SMS
after the push deadline, a number's app installs told of a new registration,
a second pushgated process reaching a device
connected to the first, bad tokens and bad frames, logout, operators.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP
from wsclient import WS, Closed

tests = TAP()
PUSH_TIMEOUT = 3
devices = {}
second = {}


def register(env, msisdn, platform="test"):
    v = env.register_device(msisdn, platform)
    assert v["token"].startswith("dt_") and v["msisdn"] == msisdn
    return v["device_id"], v["token"]


def connect(env, token, port=None):
    ws = WS("127.0.0.1", port or env.http_port)
    ws.send({"type": "hello", "token": token})
    w = ws.recv()
    assert w["type"] == "welcome", w
    return ws


def state(env, rid):
    return env.scalar(f"SELECT state FROM recipients WHERE id = {int(rid)}")


def states(env, rid):
    return [s for (s,) in env.sql(f"SELECT state FROM events WHERE recipient_id = {int(rid)} AND kind = 'state' ORDER BY id")]


def send_one(env, to, text="hello", sender="ACME", key=harness._USE_ENV_KEY):
    body = env.send([to], text=text, sender=sender, key=key)
    return int(body["recipients"][0]["id"])


@tests.case
def registration_refuses_bad_input_and_wrong_codes(env):
    st, _, b, _ = env.http("POST", "/v1/devices", {"msisdn": "12ab"}, key=None)
    assert st == 400 and b["error"]["field"] == "msisdn", b
    st, _, b, _ = env.http("POST", "/v1/devices", "not json", key=None)
    assert st == 400 and b["error"]["code"] == "invalid_json", b
    st, _, b, raw = env.http("POST", "/v1/devices", {"msisdn": "821066600001"}, key=None)
    assert st == 202, b
    # regression: expires_in was written as 300.0, which integer-typed clients refuse
    assert b"\"expires_in\":300," in raw or b"\"expires_in\":300}" in raw, raw
    dev = b["device_id"]
    st, _, b2, _ = env.http("POST", "/v1/devices", {"msisdn": "821066600001"}, key=None)
    assert st == 429, b2
    # the code travelled by SMS through our own engine
    env.wait_for(lambda: "dst=821066600001" in env.smsc_log(), timeout=15, what="code SMS at the SMSC")
    sms = env.smsc_texts("821066600001")[-1]
    assert b["code"] in sms, sms
    # the database keeps it masked (t_abuse: and not at all once the SMS is done)
    stored = env.scalar("SELECT m.body FROM messages m JOIN recipients r ON r.message_id = m.id "
                        "WHERE r.msisdn = '821066600001' ORDER BY m.id DESC LIMIT 1")
    assert b["code"] not in stored and "******" in stored, stored
    for i in range(4):
        st, _, e, _ = env.http("POST", f"/v1/devices/{dev}/verify", {"code": "000000" if b["code"] != "000000" else "111111"}, key=None)
        assert st == 400 and e["error"]["code"] == "invalid_code", e
    st, _, e, _ = env.http("POST", f"/v1/devices/{dev}/verify", {"code": "99999"}, key=None)
    assert st == 400 and e["error"]["field"] == "code", e
    st, _, e, _ = env.http("POST", f"/v1/devices/{dev}/verify", {"code": "000000" if b["code"] != "000000" else "111111"}, key=None)
    assert st == 410, e   # fifth wrong code voids it
    st, _, e, _ = env.http("POST", f"/v1/devices/{dev}/verify", {"code": b["code"]}, key=None)
    assert st in (404, 410), e
    assert env.scalar(f"SELECT token_hash IS NULL FROM devices WHERE id = {dev}") == "t"


@tests.case
def message_to_a_connected_device_is_push_delivered_within_a_second(env):
    dev, token = register(env, "821066600010")
    devices["a"] = (dev, token)
    ws = connect(env, token)
    t0 = time.monotonic()
    rid = send_one(env, "821066600010", text="카드 승인 10,000원")
    msg = ws.recv_type("msg")
    assert msg["id"] == rid and msg["sender"] == "ACME" and msg["folder"] == "ACME", msg
    assert msg["text"] == "카드 승인 10,000원"
    ws.send({"type": "ack", "id": rid})
    env.wait_for(lambda: state(env, rid) == "PUSH_DELIVERED", timeout=5, what="PUSH_DELIVERED")
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, f"took {elapsed:.3f}s"
    assert states(env, rid) == ["ACCEPTED", "PUSH_SENT", "PUSH_DELIVERED"], states(env, rid)
    # the only SMS this number ever got is its registration code
    submits = [l for l in env.smsc_log().splitlines() if "ev=submit_sm " in l and "dst=821066600010 " in l]
    assert len(submits) == 1, submits
    assert env.scalar(f"SELECT device_id FROM recipients WHERE id = {rid}") == str(dev)
    ws.close()


@tests.case
def offline_device_gets_its_message_once_on_reconnect(env):
    dev, token = devices["a"]
    rid = send_one(env, "821066600010", text="while you were away")
    assert state(env, rid) == "PUSH_SENT"
    ws = connect(env, token)
    msg = ws.recv_type("msg")
    assert msg["id"] == rid, msg
    ws.send({"type": "ack", "id": rid})
    ws.send({"type": "ping"})
    assert ws.recv_type("pong")["type"] == "pong"   # nothing but the pong came in between
    env.wait_for(lambda: state(env, rid) == "PUSH_DELIVERED", timeout=5)
    ws.close()
    ws = connect(env, token)
    ws.send({"type": "ping"})
    first = ws.recv()
    assert first["type"] == "pong", f"an acked message came again: {first}"
    ws.close()


@tests.case
def number_without_app_goes_by_sms_with_one_install_invitation(env):
    rid = send_one(env, "821066600021")
    env.wait_for(lambda: state(env, rid) == "SMS_DELIVERED", timeout=15)
    assert states(env, rid)[:2] == ["ACCEPTED", "SMS_QUEUED"], states(env, rid)
    assert "no app" in env.scalar(f"SELECT detail FROM events WHERE recipient_id = {rid} AND state = 'SMS_QUEUED'")
    invites = lambda: env.sql("SELECT r.state FROM recipients r JOIN messages m ON m.id = r.message_id "
                              "JOIN accounts a ON a.id = m.account_id "
                              "WHERE a.name = '_system' AND r.msisdn = '821066600021' AND m.body LIKE '%app%'")
    env.wait_for(lambda: invites() == [("SMS_DELIVERED",)], timeout=15, what="one invitation delivered")
    rid2 = send_one(env, "821066600021", text="again")
    env.wait_for(lambda: state(env, rid2) == "SMS_DELIVERED", timeout=15)
    assert len(invites()) == 1, "invited twice within the period"
    assert env.scalar("SELECT sent FROM invitations WHERE msisdn = '821066600021'") == "1"


@tests.case
def device_that_never_acks_falls_back_to_sms_after_the_push_deadline(env):
    dev, token = register(env, "821066600031")
    ws = connect(env, token)
    rid = send_one(env, "821066600031", text="ack me if you can")
    ws.recv_type("msg")   # received, never acknowledged
    env.wait_for(lambda: state(env, rid) == "SMS_DELIVERED", timeout=PUSH_TIMEOUT + 15)
    assert states(env, rid)[:3] == ["ACCEPTED", "PUSH_SENT", "SMS_QUEUED"], states(env, rid)
    assert "push deadline" in env.scalar(f"SELECT detail FROM events WHERE recipient_id = {rid} AND state = 'SMS_QUEUED'")
    ws.close()


@tests.case
def reject_records_an_opt_out_and_later_sends_skip_push_then_allow_restores_it(env):
    dev, token = devices["a"]
    ws = connect(env, token)
    pending = send_one(env, "821066600010", sender="ADCO", text="buy now")
    assert ws.recv_type("msg")["id"] == pending
    ws.send({"type": "reject", "sender": "ADCO"})
    assert ws.recv_type("rejected")["sender"] == "ADCO"
    row = env.sql("SELECT source, device_id FROM opt_outs WHERE msisdn = '821066600010' AND sender = 'ADCO'")
    assert row == [("app", str(dev))], row
    # the message waiting at the device follows the policy (sms)
    env.wait_for(lambda: state(env, pending) == "SMS_DELIVERED", timeout=15)
    assert "OPTED_OUT" in states(env, pending)
    # a new message from that sender: no push at all
    later = send_one(env, "821066600010", sender="ADCO", text="buy again")
    assert states(env, later)[:3] == ["ACCEPTED", "OPTED_OUT", "SMS_QUEUED"], states(env, later)
    ws.send({"type": "allow", "sender": "ADCO"})
    assert ws.recv_type("allowed")["sender"] == "ADCO"
    assert env.scalar("SELECT count(*) FROM opt_outs WHERE msisdn = '821066600010'") == "0"
    assert env.sql("SELECT action FROM opt_out_log WHERE msisdn = '821066600010' ORDER BY id") == [("reject",), ("allow",)]
    again = send_one(env, "821066600010", sender="ADCO", text="welcome back")
    m = ws.recv_type("msg")
    assert m["id"] == again, m
    ws.send({"type": "ack", "id": again})
    env.wait_for(lambda: state(env, again) == "PUSH_DELIVERED", timeout=5)
    ws.close()


@tests.case
def account_with_drop_policy_drops_opted_out_recipients(env):
    env.ctl("account", "policy", "test", "drop", check=True)
    dev, token = devices["a"]
    ws = connect(env, token)
    ws.send({"type": "reject", "sender": "ADDROP"})
    ws.recv_type("rejected")
    rid = send_one(env, "821066600010", sender="ADDROP", text="ad")
    assert state(env, rid) == "DROPPED", states(env, rid)
    assert states(env, rid) == ["ACCEPTED", "OPTED_OUT", "DROPPED"]
    env.ctl("account", "policy", "test", "sms", check=True)
    ws.close()


@tests.case
def the_app_installs_of_a_number_hear_when_another_device_asks_to_register_it(env):
    number = "821066600077"
    dev, token = register(env, number)
    ws = connect(env, token)
    # older than the 30 s a number waits between two codes
    env.sql(f"UPDATE devices SET created_at = now() - interval '1 minute' WHERE msisdn = '{number}'")
    st, _, b, raw = env.http("POST", "/v1/devices", {"msisdn": number, "platform": "intruder"}, key=None)
    assert st == 202, (st, raw)
    m = ws.recv_type("msg")
    assert "new device asked to register this number" in m["text"] and m["sender"] == "pushgate", m
    ws.send({"type": "ack", "id": m["id"]})
    env.wait_for(lambda: state(env, m["id"]) == "PUSH_DELIVERED", timeout=5, what="the notice delivered")
    # a push only: the code went by SMS, the notice never does
    assert env.scalar(f"SELECT channels::text FROM messages m JOIN recipients r ON r.message_id = m.id"
                      f" WHERE r.id = {int(m['id'])}") == "{push}"
    ws.close()


@tests.case
def second_pushgated_process_reaches_a_device_connected_to_the_first(env):
    ini = os.path.join(env.tmp, "second.ini")
    port = harness.free_port()
    with open(env.ini_path) as f:
        text = f.read().replace(f"127.0.0.1:{env.http_port}", f"127.0.0.1:{port}")
    env.write_private(ini, text)
    log = open(os.path.join(env.tmp, "pushgated-2.log"), "ab")
    proc = subprocess.Popen([os.path.join(env.builddir, "pushgated"), "-c", ini], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env._child_env())
    second["proc"] = proc
    try:
        env.wait_for(lambda: _up(port), timeout=15, what="second pushgated up")
        dev, token = devices["a"]
        ws = connect(env, token, port=port)   # the device is on process 2
        rid = send_one(env, "821066600010", text="via the other node")   # posted to process 1
        m = ws.recv_type("msg")
        assert m["id"] == rid, m
        ws.send({"type": "ack", "id": rid})
        env.wait_for(lambda: state(env, rid) == "PUSH_DELIVERED", timeout=5)
        ws.close()
    finally:
        harness._stop_process(proc)


def _up(port):
    import http.client
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/healthz")
        return c.getresponse().status == 200
    except OSError:
        return False


@tests.case
def bad_token_and_bad_frames_close_the_connection_with_the_right_code(env):
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": "dt_nope"})
    try:
        ws.recv()
        raise AssertionError("not closed")
    except Closed as c:
        assert c.code == 1008, c
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "ack", "id": 1})   # before hello
    try:
        ws.recv()
        raise AssertionError("not closed")
    except Closed as c:
        assert c.code == 1008, c
    dev, token = devices["a"]
    ws = connect(env, token)
    ws.send("{not json")
    try:
        ws.recv_type("never")
        raise AssertionError("not closed")
    except Closed as c:
        assert c.code == 1007, c
    ws = connect(env, token)
    ws.send({"type": "hello", "pad": "x" * 70000})   # over 64 KiB
    try:
        ws.recv_type("never")
        raise AssertionError("not closed")
    except Closed as c:
        assert c.code == 1009, c
    assert env.pushgated_alive()


@tests.case
def operators_list_a_numbers_devices_and_clients_may_not(env):
    st, _, b, _ = env.http("GET", "/v1/devices/821066600010")
    assert st == 403, b
    opkey = env.ctl("account", "add", "--operator", "ops", check=True).stdout.strip()
    st, _, b, raw = env.http("GET", "/v1/devices/821066600010", key=opkey)
    assert st == 200, raw
    dev, _ = devices["a"]
    ids = [d["id"] for d in b["devices"]]
    assert dev in ids, b
    assert all("connected" in d and "last_seen_at" in d for d in b["devices"])
    # regression: a number written with + or of 20 digits (as registration takes them) was a 404
    st, _, b2, raw = env.http("GET", "/v1/devices/+821066600010", key=opkey)
    assert st == 200 and [d["id"] for d in b2["devices"]] == ids, raw
    st, _, b3, raw = env.http("GET", "/v1/devices/82106660001012345678", key=opkey)
    assert st == 200 and b3["devices"] == [], raw


@tests.case
def logout_revokes_the_token_and_closes_its_connection(env):
    dev, token = devices["a"]
    ws = connect(env, token)
    st, _, _, raw = env.http("DELETE", f"/v1/devices/{dev}", key=token)
    assert st == 204, raw
    try:
        ws.recv_type("never")
        raise AssertionError("not closed")
    except Closed as c:
        assert c.code == 1008, c
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": token})
    try:
        ws.recv()
        raise AssertionError("revoked token accepted")
    except Closed as c:
        assert c.code == 1008
    # with the device gone, the number is SMS-only again
    rid = send_one(env, "821066600010")
    assert states(env, rid)[:2] == ["ACCEPTED", "SMS_QUEUED"]


tests.run(ini={"push": {"otp_echo": "yes", "push_timeout": str(PUSH_TIMEOUT), "heartbeat": "5", "invite": "yes"}})
