"""t_first_message: one message to one number takes the whole SMS path.

POST /v1/messages -> 202 (stored before the answer) -> smsc-sim accepts and
sends a DELIVRD receipt -> the recipient is SMS_DELIVERED in PostgreSQL with
one event per state, and GET /v1/messages/{id} shows the same history.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import DELIVERED_PATH, TAP

tests = TAP()
MSISDN = "821012345671"
_sent = {}


def delivered(env):
    """Send the message once and wait (bounded) until it is delivered."""
    if "body" not in _sent:
        _sent["body"] = env.send([MSISDN], text="hello")
        rid = int(_sent["body"]["recipients"][0]["id"])
        env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE id = {rid}")
                     in ("SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN"),
                     timeout=30, what=f"recipient {rid} to reach a final state")
    return _sent["body"]


def state_changes(env, rid):
    rows = env.sql(f"SELECT state FROM events WHERE recipient_id = {int(rid)} ORDER BY id")
    seq = []
    for (state,) in rows:
        if state is not None and (not seq or seq[-1] != state):
            seq.append(state)
    return seq


@tests.case
def post_answers_202_with_message_and_recipient_ids(env):
    body = delivered(env)
    assert isinstance(body["id"], int), body
    assert len(body["recipients"]) == 1, body
    r = body["recipients"][0]
    assert r["to"] == MSISDN and isinstance(r["id"], int), body


@tests.case
def accepted_message_is_stored_before_the_answer(env):
    # A fresh send, checked right after the 202 without any wait.
    body = env.send(["821012345670"], text="stored first")
    rows = env.sql(
        "SELECT m.sender, m.body, r.msisdn, r.message_id, r.account_id = m.account_id "
        f"FROM messages m JOIN recipients r ON r.message_id = m.id WHERE m.id = {int(body['id'])}")
    assert rows == [("PUSHGATE", "stored first", "821012345670", str(body["id"]), "t")], rows
    rid = int(body["recipients"][0]["id"])
    first = env.sql(f"SELECT state FROM events WHERE recipient_id = {rid} ORDER BY id LIMIT 1")
    assert first == [("ACCEPTED",)], first


@tests.case
def recipient_is_delivered_with_smsc_id_in_postgresql(env):
    rid = int(delivered(env)["recipients"][0]["id"])
    rows = env.sql("SELECT state, channel, route, smsc_id, error_code FROM recipients "
                   f"WHERE id = {rid}")
    assert len(rows) == 1, rows
    state, channel, route, smsc_id, error_code = rows[0]
    assert state == "SMS_DELIVERED", rows
    assert channel == "sms" and route == "default", rows
    assert smsc_id, f"smsc_id not stored: {rows}"
    assert error_code is None, rows


@tests.case
def events_record_every_state_in_order(env):
    rid = delivered(env)["recipients"][0]["id"]
    assert state_changes(env, rid) == DELIVERED_PATH, state_changes(env, rid)
    ordered = env.scalar(
        "SELECT bool_and(ok) FROM (SELECT at >= lag(at, 1, at) OVER (ORDER BY id) AS ok "
        f"FROM events WHERE recipient_id = {int(rid)}) s")
    assert ordered == "t", "event timestamps go backwards"


@tests.case
def raw_delivery_receipt_is_kept_as_an_event(env):
    rid = delivered(env)["recipients"][0]["id"]
    details = [d for (d,) in env.sql(
        f"SELECT detail FROM events WHERE recipient_id = {int(rid)} AND detail IS NOT NULL")]
    assert any("DELIVRD" in d for d in details), details


@tests.case
def status_api_shows_the_delivered_history(env):
    body = delivered(env)
    rid = body["recipients"][0]["id"]
    msg = env.message(body["id"])
    assert msg["id"] == body["id"] and msg["from"] == "PUSHGATE" and msg["text"] == "hello", msg
    assert msg.get("created_at"), msg
    assert len(msg["recipients"]) == 1, msg
    r = msg["recipients"][0]
    assert r["id"] == rid and r["to"] == MSISDN, r
    assert r["state"] == "SMS_DELIVERED" and r["channel"] == "sms" and r["route"] == "default", r
    db_smsc_id = env.scalar(f"SELECT smsc_id FROM recipients WHERE id = {int(rid)}")
    assert r["smsc_id"] == db_smsc_id and r["error_code"] is None, (r, db_smsc_id)
    seq = []
    for ev in r["events"]:
        assert "at" in ev and "detail" in ev and "state" in ev, ev
        if ev["state"] is not None and (not seq or seq[-1] != ev["state"]):
            seq.append(ev["state"])
    assert seq == DELIVERED_PATH, r["events"]


@tests.case
def smsc_received_exactly_one_submit(env):
    delivered(env)
    submits = [l for l in env.smsc_log().splitlines()
               if "ev=submit_sm" in l.split() and re.search(r"\bdst=\+?" + MSISDN + r"\b", l)]
    assert len(submits) == 1, submits


tests.run(dlr_delay_ms=50)
