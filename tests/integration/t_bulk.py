"""t_bulk: 1,000 recipients over several requests, every outcome smsc-sim has.

Destinations end in every digit 0-9, so each final state appears (delivered,
UNDELIV, REJECTD, EXPIRED, submit refused). Checks: one recipients row per
requested recipient, each reaches its expected final state within a bounded
wait, each destination is submitted exactly once, events are in order.
"""
import collections
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import DELIVERED_PATH, FINAL_STATES, TAP, expected_outcome, outcome_ok

tests = TAP()
TOTAL = 1000
PER_REQUEST = 250
FINAL_WAIT = 180  # seconds for all 1,000 to finish; a healthy run needs a few
_run = {}

PATHS = {
    "SMS_DELIVERED": DELIVERED_PATH,
    "SMS_EXPIRED": DELIVERED_PATH[:4] + ["SMS_EXPIRED"],
    "SMS_FAILED": DELIVERED_PATH[:4] + ["SMS_FAILED"],
    "submit_refused": DELIVERED_PATH[:3] + ["SMS_FAILED"],
}


def numbers():
    return [f"8210{70000000 + i:08d}" for i in range(TOTAL)]


def expected_path(msisdn):
    if msisdn[-1] == "6":
        return PATHS["submit_refused"]
    return PATHS[expected_outcome(msisdn)[0]]


def sent(env):
    """Send the batch once: {'bodies': [...], 'by_msisdn': {msisdn: recipient id}}."""
    if not _run:
        nums = numbers()
        bodies = []
        for i in range(0, TOTAL, PER_REQUEST):
            chunk = nums[i:i + PER_REQUEST]
            bodies.append((chunk, env.send(chunk, text=f"bulk {i // PER_REQUEST}")))
        _run["bodies"] = bodies
        _run["ids"] = [b["id"] for _, b in bodies]
    return _run


def settled(env):
    """Wait (bounded) until every recipient of the batch is final."""
    run = sent(env)
    if "settled" not in run:
        ids = ",".join(str(int(i)) for i in run["ids"])
        finals = ",".join(f"'{s}'" for s in sorted(FINAL_STATES))
        env.wait_for(lambda: env.scalar(
            f"SELECT count(*) FROM recipients WHERE message_id IN ({ids}) "
            f"AND state NOT IN ({finals})") == "0",
            timeout=FINAL_WAIT, interval=0.5, what="all 1,000 recipients final")
        run["settled"] = True
    return run


@tests.case
def every_request_is_accepted_with_one_id_per_recipient(env):
    run = sent(env)
    assert len(run["bodies"]) == TOTAL // PER_REQUEST
    seen = set()
    for chunk, body in run["bodies"]:
        assert [r["to"] for r in body["recipients"]] == chunk, "recipients out of order"
        for r in body["recipients"]:
            assert r["id"] not in seen, f"recipient id {r['id']} given twice"
            seen.add(r["id"])
    assert len(seen) == TOTAL


@tests.case
def exactly_one_recipients_row_per_requested_recipient(env):
    run = sent(env)
    ids = ",".join(str(int(i)) for i in run["ids"])
    rows = env.sql(f"SELECT msisdn, count(*) FROM recipients WHERE message_id IN ({ids}) "
                   "GROUP BY msisdn")
    counts = {m: int(c) for m, c in rows}
    dupes = {m: c for m, c in counts.items() if c != 1}
    assert not dupes, f"duplicated recipients: {list(dupes.items())[:10]}"
    assert set(counts) == set(numbers()), \
        f"missing {len(set(numbers()) - set(counts))}, extra {len(set(counts) - set(numbers()))}"


@tests.case
def every_recipient_reaches_its_expected_final_state(env):
    run = settled(env)
    ids = ",".join(str(int(i)) for i in run["ids"])
    rows = env.sql(f"SELECT msisdn, state, error_code, smsc_id FROM recipients "
                   f"WHERE message_id IN ({ids})")
    wrong = []
    by_state = collections.Counter()
    for msisdn, state, error_code, smsc_id in rows:
        by_state[state] += 1
        if not outcome_ok(msisdn, state, error_code):
            wrong.append((msisdn, state, error_code, expected_outcome(msisdn)))
        elif msisdn[-1] != "6" and not smsc_id:
            wrong.append((msisdn, state, "no smsc_id"))
    assert not wrong, f"{len(wrong)} wrong, first: {wrong[:10]}; states: {dict(by_state)}"
    assert len(rows) == TOTAL, len(rows)


@tests.case
def each_destination_is_submitted_exactly_once(env):
    settled(env)
    submits = collections.Counter()
    for line in env.smsc_log().splitlines():
        fields = line.split()
        if "ev=submit_sm" not in fields:
            continue
        for f in fields:
            if f.startswith("dst="):
                submits[re.sub(r"^\+", "", f[4:])] += 1
    mine = {n: submits.get(n, 0) for n in numbers()}
    wrong = {n: c for n, c in mine.items() if c != 1}
    assert not wrong, f"{len(wrong)} destinations not submitted exactly once: " \
                      f"{list(wrong.items())[:10]}"


@tests.case
def events_per_recipient_follow_the_state_machine_in_order(env):
    run = settled(env)
    ids = ",".join(str(int(i)) for i in run["ids"])
    rows = env.sql("SELECT r.msisdn, e.state, e.at >= lag(e.at, 1, e.at) OVER w "
                   "FROM events e JOIN recipients r ON r.id = e.recipient_id "
                   f"WHERE r.message_id IN ({ids}) "
                   "WINDOW w AS (PARTITION BY e.recipient_id ORDER BY e.id) "
                   "ORDER BY e.recipient_id, e.id")
    seqs = collections.defaultdict(list)
    backwards = []
    for msisdn, state, in_order in rows:
        if in_order != "t":
            backwards.append(msisdn)
        seq = seqs[msisdn]
        if state is not None and (not seq or seq[-1] != state):
            seq.append(state)
    assert not backwards, f"event time goes backwards for {backwards[:10]}"
    wrong = [(m, seqs.get(m)) for m in numbers() if seqs.get(m) != expected_path(m)]
    assert not wrong, f"{len(wrong)} wrong histories, first: {wrong[:5]}"


@tests.case
def status_api_agrees_with_postgresql(env):
    run = settled(env)
    chunk, body = run["bodies"][0]
    msg = env.message(body["id"])
    assert [r["to"] for r in msg["recipients"]] == chunk or \
        sorted(r["to"] for r in msg["recipients"]) == sorted(chunk), "recipients differ"
    db = dict(env.sql(f"SELECT msisdn, state FROM recipients WHERE message_id = {int(body['id'])}"))
    api = {r["to"]: r["state"] for r in msg["recipients"]}
    assert api == db, [(k, api.get(k), db.get(k)) for k in db if api.get(k) != db.get(k)][:10]


tests.run(dlr_delay_ms=50)
