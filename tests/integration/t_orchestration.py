"""t_orchestration: push-then-SMS as an enterprise uses it (issue: orchestration).

Real PostgreSQL, smsc-sim and pushgated; devices are WebSocket clients.  The
per-message options and the rules carriers expect: channels, sms_text,
AUTH SMS-first accounts, ads (framed, held outside the allowed hours, never
to a number that blocked the sender), scheduled sends, and Idempotency-Key
retries that return the original ids and send nothing twice.
"""
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP
from wsclient import WS

tests = TAP()
FINAL = ("PUSH_DELIVERED", "DROPPED", "CANCELED", "SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN")

# A one-hour ad window twelve hours away, so "now" is night for ads for the whole run,
# even when the clock passes an hour while it runs (the window once began at the next hour,
# and a run that crossed it saw its ad sent at once).
HOUR = datetime.datetime.now(datetime.timezone.utc).hour
AD_START = (HOUR + 12) % 24
AD_END = AD_START + 1
state_cache = {}


def post(env, body, headers=None, key=harness._USE_ENV_KEY):
    st, h, b, raw = env.http("POST", "/v1/messages", body, headers=headers, key=key)
    assert st == 202, (st, raw)
    return b, h


def state(env, rid):
    return env.scalar(f"SELECT state FROM recipients WHERE id = {int(rid)}")


def states(env, rid):
    return [s for (s,) in env.sql(f"SELECT state FROM events WHERE recipient_id = {int(rid)} "
                                  "AND kind = 'state' ORDER BY id")]


def final(env, rid, timeout=20):
    env.wait_for(lambda: state(env, rid) in FINAL, timeout=timeout, what=f"recipient {rid} final")
    return state(env, rid)


def submits(env, msisdn):
    return [l for l in env.smsc_log().splitlines() if "ev=submit_sm " in l and f"dst={msisdn} " in l]


def device(env, msisdn):
    """A registered, connected device that acks every push."""
    if msisdn in state_cache:
        return state_cache[msisdn]
    st, _, b, raw = env.http("POST", "/v1/devices", {"msisdn": msisdn}, key=None)
    assert st == 202, raw
    st, _, v, raw = env.http("POST", f"/v1/devices/{b['device_id']}/verify", {"code": b["code"]}, key=None)
    assert st == 200, raw
    ws = WS("127.0.0.1", env.http_port)
    ws.send({"type": "hello", "token": v["token"]})
    assert ws.recv()["type"] == "welcome"
    state_cache[msisdn] = ws
    return ws


def ack_next(ws):
    m = ws.recv_type("msg")
    ws.send({"type": "ack", "id": m["id"]})
    return m


@tests.case
def number_with_an_acking_app_is_push_delivered_and_never_reaches_the_smsc(env):
    ws = device(env, "821077700001")
    b, _ = post(env, {"from": "BANK", "to": ["821077700001"], "text": "card used: 12,000 KRW"})
    rid = b["recipients"][0]["id"]
    m = ack_next(ws)
    assert m["id"] == rid and m["text"] == "card used: 12,000 KRW", m
    assert final(env, rid) == "PUSH_DELIVERED"
    time.sleep(0.5)
    # only the registration code ever went to this number by SMS
    assert len(submits(env, "821077700001")) == 1, submits(env, "821077700001")


@tests.case
def channels_sms_skips_the_app_and_sms_text_is_what_the_handset_gets(env):
    device(env, "821077700001")
    b, _ = post(env, {"from": "BANK", "to": ["821077700001"], "text": "rich text for the app",
                      "sms_text": "SHORT SMS TEXT", "channels": ["sms"]})
    rid = b["recipients"][0]["id"]
    assert final(env, rid) == "SMS_DELIVERED"
    assert states(env, rid)[:2] == ["ACCEPTED", "SMS_QUEUED"], states(env, rid)
    receipt = env.scalar(f"SELECT detail FROM events WHERE recipient_id = {rid} AND kind = 'receipt'")
    assert "text:SHORT SMS TEXT" in receipt, receipt   # smsc-sim echoes the start of the text


@tests.case
def push_only_message_to_a_number_without_app_is_dropped_not_sent_by_sms(env):
    b, _ = post(env, {"from": "BANK", "to": ["821077700021"], "text": "app only", "channels": ["push"]})
    rid = b["recipients"][0]["id"]
    assert final(env, rid) == "DROPPED"
    assert submits(env, "821077700021") == []


@tests.case
def auth_codes_go_by_sms_first_when_the_account_asks(env):
    device(env, "821077700001")
    env.sql("UPDATE accounts SET auth_sms_first = true WHERE name = 'test'")
    time.sleep(0.1)
    b, _ = post(env, {"from": "BANK", "to": ["821077700001"], "text": "code 4711", "purpose": "AUTH"})
    rid = b["recipients"][0]["id"]
    assert final(env, rid) == "SMS_DELIVERED", states(env, rid)
    assert "AUTH goes by SMS first" in env.scalar(
        f"SELECT detail FROM events WHERE recipient_id = {rid} AND state = 'SMS_QUEUED'")
    env.sql("UPDATE accounts SET auth_sms_first = false WHERE name = 'test'")


@tests.case
def ad_at_night_is_framed_and_held_until_the_window_opens(env):
    b, _ = post(env, {"from": "SHOP", "to": ["821077700031"], "text": "50% off today", "purpose": "AD"})
    rid = b["recipients"][0]["id"]
    assert state(env, rid) == "HELD", states(env, rid)
    release = env.scalar(f"SELECT extract(hour FROM release_at AT TIME ZONE 'UTC') FROM recipients WHERE id = {rid}")
    assert int(float(release)) == AD_START, (release, AD_START)
    body = env.scalar(f"SELECT body FROM messages WHERE id = {b['id']}")
    assert body.startswith("(광고) 50% off today") and "무료수신거부" in body, body
    time.sleep(2.5)   # a sweep or two: still held
    assert state(env, rid) == "HELD"
    assert submits(env, "821077700031") == []


@tests.case
def ad_with_recorded_night_consent_goes_out_at_once(env):
    env.sql("UPDATE accounts SET ad_night_consent = true WHERE name = 'test'")
    b, _ = post(env, {"from": "SHOP", "to": ["821077700041"], "text": "consented ad", "purpose": "AD"})
    rid = b["recipients"][0]["id"]
    assert final(env, rid) == "SMS_DELIVERED", states(env, rid)
    env.sql("UPDATE accounts SET ad_night_consent = false WHERE name = 'test'")


@tests.case
def ad_never_reaches_a_number_that_blocked_the_sender_even_with_policy_sms(env):
    ws = device(env, "821077700001")
    ws.send({"type": "reject", "sender": "SHOP"})
    ws.recv_type("rejected")
    env.sql("UPDATE accounts SET ad_night_consent = true WHERE name = 'test'")
    b, _ = post(env, {"from": "SHOP", "to": ["821077700001"], "text": "ad", "purpose": "AD",
                      "opt_out_policy": "sms"})
    rid = b["recipients"][0]["id"]
    assert states(env, rid) == ["ACCEPTED", "OPTED_OUT", "DROPPED"], states(env, rid)
    env.sql("UPDATE accounts SET ad_night_consent = false WHERE name = 'test'")
    ws.send({"type": "allow", "sender": "SHOP"})
    ws.recv_type("allowed")


@tests.case
def scheduled_message_waits_for_its_time(env):
    # checked on the recorded history, not on the state at some moment: a slow machine may
    # answer the POST after send_at has passed
    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)).replace(microsecond=0)
    at = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    b, _ = post(env, {"from": "BANK", "to": ["821077700051"], "text": "later", "send_at": at})
    rid = b["recipients"][0]["id"]
    assert final(env, rid, timeout=20) == "SMS_DELIVERED"
    assert states(env, rid)[:3] == ["ACCEPTED", "SCHEDULED", "SMS_QUEUED"], states(env, rid)
    queued = float(env.scalar(f"SELECT extract(epoch FROM at) FROM events WHERE recipient_id = {int(rid)} "
                              "AND state = 'SMS_QUEUED'"))
    assert queued >= when.timestamp(), (queued, when.timestamp())
    assert len(submits(env, "821077700051")) == 1


@tests.case
def retried_request_with_the_same_idempotency_key_returns_the_same_ids_and_sends_once(env):
    body = {"from": "BANK", "to": ["821077700061", "821077700062"], "text": "once only"}
    first, h1 = post(env, body, headers={"Idempotency-Key": "order-4711"})
    again, h2 = post(env, body, headers={"Idempotency-Key": "order-4711"})
    assert again == first, (first, again)
    assert h2.get("idempotent-replayed") == "true" and "idempotent-replayed" not in h1, (h1, h2)
    for r in first["recipients"]:
        final(env, r["id"])
    assert len(submits(env, "821077700061")) == 1 and len(submits(env, "821077700062")) == 1
    assert env.scalar("SELECT count(*) FROM messages WHERE idempotency_key = 'order-4711'") == "1"
    other, _ = post(env, body, headers={"Idempotency-Key": "order-4712"})
    assert other["id"] != first["id"]


@tests.case
def options_are_validated_field_by_field(env):
    bad = [({"channels": ["fax"]}, "channels"), ({"channels": []}, "channels"),
           ({"push_timeout": 0}, "push_timeout"), ({"purpose": "SPAM"}, "purpose"),
           ({"send_at": "tomorrow"}, "send_at"), ({"validity": 5}, "validity"),
           ({"opt_out_policy": "maybe"}, "opt_out_policy"), ({"callback_url": "ftp://x"}, "callback_url"),
           ({"sms_text": ""}, "sms_text")]
    for extra, field in bad:
        body = {"from": "BANK", "to": ["821077700071"], "text": "x", **extra}
        st, _, b, raw = env.http("POST", "/v1/messages", body)
        assert st == 400 and b["error"]["field"] == field, (extra, st, raw)
    st, _, b, raw = env.http("POST", "/v1/messages", {"from": "BANK", "to": ["821077700071"], "text": "x"},
                             headers={"Idempotency-Key": "x" * 200})
    assert st == 400 and b["error"]["field"] == "Idempotency-Key", raw
    assert env.scalar("SELECT count(*) FROM recipients WHERE msisdn = '821077700071'") == "0"


tests.run(ini={"push": {"otp_echo": "yes", "push_timeout": "3"},
               "rules": {"timezone": "UTC", "ad_start_hour": str(AD_START), "ad_end_hour": str(AD_END)}})
