"""t_intake: requests that arrive together share one intake statement, and nothing else.

pushgated stores everything that arrives during a loop turn (and while the
previous group is in the database) in one statement and one commit. Each
request must still get its own answer, with its own rows: concurrent
requests (released together by a barrier) to distinct and to repeated
numbers, an idempotency key used by two requests at once, a replay of a
stored key, and a request that PostgreSQL refuses in the middle of them.
The outcomes are the same whether or not the requests shared a statement,
so the checks hold however the requests were grouped.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP

tests = TAP()


def together(env, bodies, headers=None):
    """POST every body at once (one thread each, released by a barrier): [(status, headers, json)]."""
    headers = headers or [None] * len(bodies)
    out = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def one(i):
        barrier.wait(timeout=30)
        st, h, js, raw = env.http("POST", "/v1/messages", bodies[i], headers=headers[i], timeout=60)
        out[i] = (st, h, js if js is not None else raw)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert all(o is not None for o in out), "a request never returned"
    return out


def body(to, text="grouped"):
    return {"from": "PUSHGATE", "to": to, "text": text}


@tests.case
def concurrent_requests_each_get_their_own_recipients(env):
    bodies = [body([f"8219100{i:04d}1", f"8219200{i:04d}1"], f"text {i}") for i in range(60)]
    out = together(env, bodies)
    ids = set()
    for b, (st, _, js) in zip(bodies, out):
        assert st == 202, (st, js)
        assert [r["to"] for r in js["recipients"]] == b["to"], (b["to"], js)
        ids.add(js["id"])
        rows = env.sql(f"SELECT m.body, r.msisdn FROM recipients r JOIN messages m ON m.id = r.message_id "
                       f"WHERE r.message_id = {int(js['id'])} ORDER BY r.id")
        assert rows == [(b["text"], b["to"][0]), (b["text"], b["to"][1])], (b, rows)
    assert len(ids) == 60, "two requests got the same message"


@tests.case
def requests_to_one_number_at_once_are_separate_messages(env):
    out = together(env, [body(["821930000011"], f"otp {i}") for i in range(20)])
    assert all(st == 202 for st, _, _ in out), out
    assert len({js["id"] for _, _, js in out}) == 20
    assert len({js["recipients"][0]["id"] for _, _, js in out}) == 20
    n = env.scalar("SELECT count(*) FROM recipients WHERE msisdn = '821930000011'")
    assert n == "20", n


@tests.case
def a_refused_request_fails_alone_and_replays_keep_their_meaning(env):
    first = env.send(["821940000001"], text="keyed once")
    env.wait_for(lambda: env.recipients_final([first["id"]]), timeout=30, what="the keyed message final")
    # the keyed request again with the same key: a replay; two new requests sharing a new key;
    # one send_at PostgreSQL refuses (year 0); and ordinary neighbours
    bodies, headers = [], []
    env_key = {"Idempotency-Key": "k-replay"}
    env.http("POST", "/v1/messages", body(["821940000001"], "keyed once"), headers=env_key)  # stores k-replay
    for i in range(12):
        bodies.append(body([f"8219500{i:04d}1"], f"neighbour {i}"))
        headers.append(None)
    bodies.append(body(["821940000002"], "keyed once"))
    headers.append(env_key)
    for _ in range(2):
        bodies.append(body(["821940000003"], "two at once"))
        headers.append({"Idempotency-Key": "k-twice"})
    bad = dict(body(["821940000004"], "bad time"), send_at="0000-01-01T00:00:00Z")
    bodies.append(bad)
    headers.append(None)
    out = together(env, bodies, headers)
    for i in range(12):
        st, _, js = out[i]
        assert st == 202 and js["recipients"][0]["to"] == bodies[i]["to"][0], (i, st, js)
    st, h, js = out[12]
    assert st == 202 and h.get("idempotent-replayed") == "true", (st, h, js)
    assert js["recipients"][0]["to"] == "821940000001", js   # the original's, not this body's
    (st1, h1, js1), (st2, h2, js2) = out[13], out[14]
    assert st1 == 202 and st2 == 202, (out[13], out[14])
    assert js1["id"] == js2["id"] and js1["recipients"] == js2["recipients"], (js1, js2)
    assert sorted([h1.get("idempotent-replayed"), h2.get("idempotent-replayed")], key=str) == [None, "true"], (h1, h2)
    st, _, js = out[15]
    assert 400 <= st < 600 and st != 503, (st, js)
    assert env.scalar("SELECT count(*) FROM recipients WHERE msisdn = '821940000004'") == "0"
    assert env.scalar("SELECT count(*) FROM messages WHERE idempotency_key = 'k-twice'") == "1"
    assert env.scalar("SELECT count(*) FROM recipients WHERE msisdn = '821940000002'") == "0"


tests.run()
