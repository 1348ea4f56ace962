"""t_smpp_engine: the SMPP client engine against smsc-sim's failure rules.

One route to one smsc-sim whose outcome rules (by destination suffix) cause
every corner the engine must handle: throttling then acceptance, queue full,
permanent refusal, a receipt that beats its submit_sm_resp, duplicate and
intermediate receipts, a submit that is never answered, long GSM and UCS-2
texts sent as parts.  Each recipient must reach the right final state
exactly once, with the history in events saying how.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP

tests = TAP()

RULES = ["021=THROTTLE:2", "071=QFULL:1", "031=EARLY", "041=DUP", "051=ENROUTE", "061=NORESP"]
FINAL = ("SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN")


def send_and_wait(env, to, text="engine test", timeout=30):
    body = env.send([to], text=text)
    rid = int(body["recipients"][0]["id"])
    env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE id = {rid}") in FINAL,
                 timeout=timeout, what=f"recipient {rid} ({to}) to reach a final state")
    return rid


def row(env, rid):
    r = env.sql(f"SELECT state, error_code, attempts, parts FROM recipients WHERE id = {rid}")[0]
    return r[0], (int(r[1]) if r[1] is not None else None), int(r[2]), (int(r[3]) if r[3] else None)


def events(env, rid):
    return env.sql(f"SELECT kind, state, error_code, detail FROM events WHERE recipient_id = {rid} ORDER BY id")


def state_events(env, rid, state):
    return [e for e in events(env, rid) if e[0] == "state" and e[1] == state]


def submits_to(env, msisdn):
    return sum(1 for line in env.smsc_log().splitlines()
               if "ev=submit_sm " in line and f"dst={msisdn} " in line + " ")


@tests.case
def throttled_submit_is_retried_then_delivered(env):
    to = "821055500021"
    rid = send_and_wait(env, to)
    state, err, attempts, _ = row(env, rid)
    assert state == "SMS_DELIVERED", (state, events(env, rid))
    assert attempts == 3, attempts
    queued = state_events(env, rid, "SMS_QUEUED")
    assert len(queued) == 3, events(env, rid)   # intake + two throttles
    assert all(int(e[2]) == 0x58 for e in queued[1:]), queued
    assert submits_to(env, to) == 3
    assert len(state_events(env, rid, "SMS_DELIVERED")) == 1


@tests.case
def queue_full_is_temporary_too(env):
    rid = send_and_wait(env, "821055500071")
    state, _, attempts, _ = row(env, rid)
    assert (state, attempts) == ("SMS_DELIVERED", 2), (state, attempts, events(env, rid))


@tests.case
def permanent_refusal_fails_at_once_with_its_code(env):
    to = "821055500016"   # default rule: ...6 -> submit_sm_resp 0x0B
    rid = send_and_wait(env, to)
    state, err, attempts, _ = row(env, rid)
    assert (state, err, attempts) == ("SMS_FAILED", 11, 1), (state, err, attempts)
    assert submits_to(env, to) == 1


@tests.case
def receipt_before_its_response_is_parked_then_applied(env):
    rid = send_and_wait(env, "821055500031")
    state, _, _, _ = row(env, rid)
    assert state == "SMS_DELIVERED", events(env, rid)
    receipts = [e for e in events(env, rid) if e[0] == "receipt"]
    assert len(receipts) == 1 and "(parked)" in receipts[0][3], receipts
    assert env.scalar("SELECT count(*) FROM dlr_parked") == "0"


@tests.case
def duplicate_receipt_changes_nothing_twice(env):
    rid = send_and_wait(env, "821055500041")
    env.wait_for(lambda: len([e for e in events(env, rid) if e[0] == "receipt"]) == 2, timeout=10,
                 what="both copies of the receipt recorded")
    assert row(env, rid)[0] == "SMS_DELIVERED"
    assert len(state_events(env, rid, "SMS_DELIVERED")) == 1, events(env, rid)


@tests.case
def intermediate_receipt_is_recorded_without_finalising(env):
    rid = send_and_wait(env, "821055500051")
    evs = events(env, rid)
    receipts = [e for e in evs if e[0] == "receipt"]
    assert len(receipts) == 2, evs
    assert receipts[0][1] is None and "ENROUTE" in receipts[0][3], receipts
    assert receipts[1][1] == "SMS_DELIVERED", receipts
    assert row(env, rid)[0] == "SMS_DELIVERED"


@tests.case
def unanswered_submit_follows_the_route_policy(env):
    # [smpp] no_response = unknown in this run: no resend, SMS_UNKNOWN, and the history says why
    to = "821055500061"
    rid = send_and_wait(env, to, timeout=30)
    state, err, attempts, _ = row(env, rid)
    assert state == "SMS_UNKNOWN", (state, events(env, rid))
    assert attempts == 1 and submits_to(env, to) == 1
    assert any("no submit_sm_resp" in (e[3] or "") and "unknown" in (e[3] or "")
               for e in state_events(env, rid, "SMS_UNKNOWN")), events(env, rid)


@tests.case
def long_gsm_text_goes_as_two_udh_parts_and_is_delivered_once_both_are(env):
    to = "821055500101"
    text = "0123456789" * 20   # 200 septets: 153 + 47
    rid = send_and_wait(env, to, text=text)
    state, _, _, parts = row(env, rid)
    assert (state, parts) == ("SMS_DELIVERED", 2), (state, parts, events(env, rid))
    p = env.sql(f"SELECT part_no, state FROM sms_parts WHERE recipient_id = {rid} ORDER BY part_no")
    assert p == [("1", "SMS_DELIVERED"), ("2", "SMS_DELIVERED")], p
    assert submits_to(env, to) == 2
    assert len([e for e in events(env, rid) if e[0] == "receipt"]) == 2


@tests.case
def korean_text_goes_ucs2_in_parts_that_keep_every_character(env):
    to = "821055500111"
    text = "안녕하세요 푸시게이트 " * 8   # 96 UTF-16 units: 67 + 29
    rid = send_and_wait(env, to, text=text)
    state, _, _, parts = row(env, rid)
    assert (state, parts) == ("SMS_DELIVERED", 2), (state, parts)
    lines = [l for l in env.smsc_log().splitlines() if "ev=submit_sm " in l and f"dst={to}" in l]
    assert len(lines) == 2, lines


@tests.case
def emoji_and_gsm_extension_characters_are_delivered(env):
    rid = send_and_wait(env, "821055500121", text="price 5€ [ok] 😀")
    assert row(env, rid)[0] == "SMS_DELIVERED"


@tests.case
def bind_counters_are_visible_to_operators(env):
    env.wait_for(lambda: int(env.scalar("SELECT coalesce(sum(submits), 0) FROM smpp_binds") or 0) > 0,
                 timeout=15, what="smpp_binds counters written")
    r = env.sql("SELECT route, bind, state, throttled > 0, resp_ok > 0 FROM smpp_binds")
    assert ("default", "trx0", "bound", "t", "t") in r, r
    status, _, _, raw = env.http("GET", "/metrics", key=None)
    assert status == 200
    text = raw.decode()
    assert 'pushgate_smpp_submits_total{route="default",bind="trx0"}' in text, text[:500]
    assert 'pushgate_smpp_bound{route="default",bind="trx0"} 1' in text
    out = env.ctl("binds", check=True).stdout
    line = [l for l in out.splitlines() if " trx0 " in l]
    assert line and "default" in line[0] and "bound" in line[0], out


def leases(env):
    _, _, _, raw = env.http("GET", "/metrics", key=None)
    for line in raw.decode().splitlines():
        if line.startswith("pushgate_smpp_leases_total "):
            return int(line.split()[1])
    raise AssertionError("no pushgate_smpp_leases_total in /metrics")


@tests.case
def idle_engine_looks_at_the_queue_a_few_times_a_second_not_thousands(env):
    # regression: an empty lease used to trigger the next one at once (~4,000 queries/s)
    env.wait_for(lambda: env.scalar("SELECT count(*) FROM recipients WHERE state IN "
                                    "('SMS_QUEUED','SMS_SUBMITTED','SMS_ACCEPTED')") == "0",
                 timeout=30, what="queue drained")
    a = leases(env)
    time.sleep(2.0)
    b = leases(env)
    assert b - a <= 20, f"{b - a} lease statements in 2 s of idling"


@tests.case
def sigterm_drains_the_window_before_unbinding(env):
    # responses to ...031 come 200 ms late: they are in the window when SIGTERM lands
    tos = [f"82105559{i:02d}031" for i in range(20)]
    body = env.send(tos, text="drain me")
    ids = ",".join(str(r["id"]) for r in body["recipients"])
    env.wait_for(lambda: sum(1 for l in env.smsc_log().splitlines()
                             if "ev=submit_sm " in l and "031 " in l and "dst=82105559" in l) >= 20,
                 timeout=15, what="all 20 submits at the SMSC")
    env.pushgated.terminate()
    assert env.pushgated.wait(timeout=20) == 0
    log = env.smsc_log().splitlines()
    deferred = [i for i, l in enumerate(log) if "ev=submit_sm_resp" in l and "deferred=1" in l]
    unbind = [i for i, l in enumerate(log) if "ev=unbind" in l]
    assert unbind and deferred, (unbind, deferred[-3:])
    assert max(deferred) < unbind[-1], "unbound before the window drained"
    assert not any("lost=1" in l for l in log), "a response was lost with the link"
    states = env.sql(f"SELECT state, count(*) FROM recipients WHERE id IN ({ids}) GROUP BY 1")
    assert all(st in ("SMS_ACCEPTED", "SMS_DELIVERED") for st, _ in states), states
    assert sum(int(n) for _, n in states) == 20


tests.run(dlr_delay_ms=100, smsc_args=sum((["--rule", r] for r in RULES), []),
          ini={"smpp": {"retry_min": "0.2", "response_timeout": "1", "no_response": "unknown"}})
