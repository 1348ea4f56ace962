"""t_search: finding messages: GET /v1/messages and pushgatectl messages.

Real PostgreSQL, smsc-sim and pushgated.  Two accounts send to the same
numbers; each sees only its own recipients, newest first, a page at a time
(keyset cursors: no row twice, none skipped, even while new messages
arrive between pages), filtered by number, sender, state and time.  Every
row names its account as PostgreSQL has it, also in an operator's search
across accounts (GET /v1/operator/messages).  Bad parameters are 400s
naming the field; a key is needed.  The statements keep their plans on
their indexes (recipients_msisdn, messages_account_created, and
accounts_pkey for each row's account).  The operator's pushgatectl
messages answers across accounts.  The number's index is built online
(migration 023, outside a transaction).
"""
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP  # noqa: E402

tests = TAP()
NUM = "821088800001"
OTHER = "821088800009"   # ...9: smsc-sim fails it by its receipt
_obs = {}


def get(env, key=None, **params):
    q = urllib.parse.urlencode(params)
    kw = {} if key is None else {"key": key}
    return env.http("GET", "/v1/messages" + ("?" + q if q else ""), **kw)


def pages(env, key=None, **params):
    """Every page of a search, following next_cursor (bounded)."""
    out, cursor = [], None
    for _ in range(100):
        p = dict(params)
        if cursor:
            p["cursor"] = cursor
        st, _, body, raw = get(env, key, **p)
        assert st == 200, (st, raw)
        out.append(body["recipients"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("more than 100 pages")


def account_names(env, rows):
    """{recipient id: its account's name} as PostgreSQL has them, for rows of a search."""
    ids = ", ".join(str(int(r["id"])) for r in rows) or "NULL"
    return {int(i): name for i, name in env.sql(
        f"SELECT r.id, a.name FROM recipients r JOIN accounts a ON a.id = r.account_id WHERE r.id IN ({ids})")}


def setup(env):
    if _obs:
        assert "a" in _obs, "the set-up failed in an earlier case"
        return _obs
    _obs["started"] = True
    other_key = env.create_account("search-other")
    a = []
    for i in range(7):
        a.append(env.send([NUM], text=f"a{i}", sender="ACME")["recipients"][0]["id"])
    b = env.send([OTHER, NUM], text="two", sender="BANK")
    a += [r["id"] for r in b["recipients"]]
    a.append(env.send([OTHER], text="failed one", sender="ACME")["recipients"][0]["id"])
    theirs = [env.send([NUM], text="not yours", sender="THEM", key=other_key)["recipients"][0]["id"]
              for _ in range(3)]
    env.wait_for(lambda: env.scalar("SELECT count(*) FROM recipients WHERE state NOT IN "
                                    "('SMS_DELIVERED', 'SMS_FAILED', 'SMS_EXPIRED')") == "0",
                 timeout=30, what="every SMS final")
    _obs.update(a=a, theirs=theirs, other_key=other_key)
    return _obs


@tests.case
def a_number_pages_newest_first_and_only_the_callers(env):
    o = setup(env)
    got = pages(env, to=NUM, limit=3)
    assert [len(p) for p in got] == [3, 3, 2], [len(p) for p in got]
    ids = [r["id"] for p in got for r in p]
    mine = sorted((i for i in o["a"] if env.scalar(f"SELECT msisdn FROM recipients WHERE id = {i}") == NUM),
                  reverse=True)
    assert ids == mine, (ids, mine)
    r = got[0][0]
    assert set(r) == {"id", "message_id", "account", "to", "from", "state", "channel", "route", "error_code",
                      "created_at", "updated_at", "final_at"}, r
    assert r["to"] == NUM and r["state"] == "SMS_DELIVERED" and r["channel"] == "sms", r
    # every row names its account, as PostgreSQL has it
    rows = [x for p in got for x in p]
    assert {x["id"]: x["account"] for x in rows} == account_names(env, rows), rows
    assert {x["account"] for x in rows} == {"test"}, rows
    # the other account sees its three, never ours
    theirs = [r for p in pages(env, key=o["other_key"], to=NUM) for r in p]
    assert [r["id"] for r in theirs] == sorted(o["theirs"], reverse=True), theirs
    assert {r["id"]: r["account"] for r in theirs} == account_names(env, theirs), theirs
    assert {r["account"] for r in theirs} == {"search-other"}, theirs


@tests.case
def an_account_pages_without_repeats_while_messages_arrive(env):
    o = setup(env)
    st, _, first, raw = get(env, limit=4)
    assert st == 200 and len(first["recipients"]) == 4 and first["next_cursor"], raw
    # by account too, every row names its account
    assert {r["id"]: r["account"] for r in first["recipients"]} == account_names(env, first["recipients"]), first
    assert {r["account"] for r in first["recipients"]} == {"test"}, first
    new = env.send([NUM], text="arrives between pages", sender="ACME")["recipients"][0]["id"]
    seen = [r["id"] for r in first["recipients"]]
    cursor = first["next_cursor"]
    while cursor:
        st, _, body, raw = get(env, limit=4, cursor=cursor)
        assert st == 200, raw
        seen += [r["id"] for r in body["recipients"]]
        cursor = body["next_cursor"]
    assert new not in seen                       # newer than the first page: the next search shows it
    assert len(seen) == len(set(seen)), seen      # no repeats
    assert sorted(seen) == sorted(o["a"]), (seen, o["a"])   # none skipped, none of the other account's
    st, _, body, _ = get(env, limit=1)
    assert body["recipients"][0]["id"] == new
    o["a"].append(new)


@tests.case
def filters_by_sender_state_and_time(env):
    o = setup(env)
    bank = [r["id"] for p in pages(env, **{"from": "BANK"}) for r in p]
    assert len(bank) == 2, bank
    failed = [r for p in pages(env, state="SMS_FAILED") for r in p]
    assert failed and all(r["state"] == "SMS_FAILED" for r in failed), failed
    want = int(env.scalar(f"SELECT count(*) FROM recipients WHERE account_id = "
                          f"(SELECT account_id FROM recipients WHERE id = {o['a'][0]}) AND state = 'SMS_FAILED'"))
    assert len(failed) == want, (failed, want)
    assert pages(env, since="2999-01-01") == [[]]
    assert pages(env, until="2000-01-01T00:00:00Z") == [[]]
    cut = env.scalar(f"SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                     f" FROM recipients WHERE id = {o['a'][3]}")
    before = [r["id"] for p in pages(env, to=NUM, until=cut) for r in p]
    assert before and all(i < o["a"][3] for i in before), before
    assert [r["id"] for p in pages(env, to=NUM, since=cut, **{"from": "ACME"}) for r in p][-1] == o["a"][3]


@tests.case
def bad_parameters_are_400s_naming_the_field_and_a_key_is_needed(env):
    setup(env)
    for params, field in [({"to": "12ab"}, "to"), ({"state": "NOPE"}, "state"), ({"limit": "0"}, "limit"),
                          ({"limit": "1001"}, "limit"), ({"since": "yesterday"}, "since"),
                          ({"cursor": "zzz"}, "cursor"), ({"to": NUM, "cursor": "m1.2.3"}, "cursor"),
                          ({"cursor": "r5"}, "cursor"), ({"cursor": "m99999999999999999999.1.1"}, "cursor")]:
        st, _, body, raw = get(env, **params)
        assert st == 400 and body["error"]["field"] == field, (params, st, raw)
    st, _, body, raw = env.http("GET", "/v1/messages?color=red")
    assert st == 400 and "unknown" in body["error"]["message"], raw
    st, _, _, raw = env.http("GET", "/v1/messages?to=%zz")
    assert st == 400, raw
    st, _, _, raw = env.http("GET", "/v1/messages", key=None)
    assert st == 401, raw
    st, hdrs, _, raw = env.http("DELETE", "/v1/messages")
    assert st == 405 and hdrs.get("allow") == "GET, POST", (st, hdrs, raw)


@tests.case
def the_searches_plan_on_their_indexes(env):
    # a history of another account's 20,000 messages, and 2,000 other (disabled) accounts, so the
    # statistics are a real database's
    env.create_account("search-history")
    env.sql("INSERT INTO messages (account_id, sender, body, created_at)"
            " SELECT a.id, 'HIST', 'old', now() - g * interval '1 minute'"
            " FROM accounts a, generate_series(1, 20000) g WHERE a.name = 'search-history';"
            "INSERT INTO recipients (message_id, account_id, msisdn, state, created_at)"
            " SELECT m.id, m.account_id, (821000000000 + m.id % 5000)::text, 'SMS_DELIVERED', m.created_at"
            " FROM messages m JOIN accounts a ON a.id = m.account_id WHERE a.name = 'search-history';"
            "INSERT INTO accounts (name, api_key_hash, disabled)"
            " SELECT 'search-filler-' || g, sha256(('search-filler-' || g)::bytea), true"
            " FROM generate_series(1, 2000) g;"
            "ANALYZE messages; ANALYZE recipients; ANALYZE accounts")
    out = env.ctl("plan", "search_number", check=True).stdout   # prepared: its generic plan
    # each history range's index (sql/029); a sequential scan only of the empty range made ahead
    assert "recipients_msisdn_" in out, out
    assert all("cost=0.00..0.00 " in l for l in out.splitlines() if "Seq Scan" in l), out
    assert "Index Scan using accounts_pkey on accounts a" in out, out   # each row's account name, by key
    # by account: planned per call; a small account's plan reads its own messages by key
    small = env.scalar(f"SELECT account_id FROM recipients WHERE id = {_obs['a'][0]}")
    top = "9223372036854775807"
    out = env.ctl("plan", "search_account", small, "NULL", "-infinity", "infinity", "NULL", "NULL", top, top, "100",
                  check=True).stdout
    assert "messages_account_created" in out, out
    assert all("cost=0.00..0.00 " in l for l in out.splitlines() if "Seq Scan" in l), out
    assert "Index Scan using accounts_pkey on accounts a" in out, out
    # and pushgated plans it so: its slow store plans each call for its values (auto_explain logs what ran);
    # a generic plan walks every account's messages (messages_created) for this small one
    start = os.path.getsize(env.pg_log)   # what the earlier cases, on small tables, logged is not this
    st, _, _, raw = get(env, limit=2)
    assert st == 200, raw

    def logged():
        with open(env.pg_log, encoding="utf-8", errors="replace") as f:
            f.seek(start)
            return f.read()
    # (messages in ranges, sql/036: each range's own index; the range holding the messages is the
    # one that counts, an empty one made ahead may be read through either)
    lo = env.scalar("SELECT max(m.lo) FROM message_ranges m WHERE m.lo <= (SELECT max(id) FROM messages)")
    env.wait_for(lambda: f"Index Scan Backward using messages_account_created_{lo} on messages_{lo} m" in logged(),
                 timeout=10, what="the search's plan in the log")
    assert f"Index Scan Backward using messages_created_{lo} on messages_{lo} m" not in logged(), logged()[-6000:]


@tests.case
def pushgatectl_messages_answers_across_accounts(env):
    o = setup(env)
    out = env.ctl("messages", "--to", NUM, check=True).stdout.splitlines()
    assert out[0].split()[:4] == ["RECIPIENT", "MESSAGE", "ACCOUNT", "TO"], out
    ids = [int(line.split()[0]) for line in out[1:]]
    n = int(env.scalar(f"SELECT count(*) FROM recipients WHERE msisdn = '{NUM}'"))
    assert len(ids) == n and ids == sorted(ids, reverse=True), (ids, n)
    assert set(o["theirs"]) <= set(ids)
    out = env.ctl("messages", "--account", "search-other", "--limit", "2", check=True).stdout.splitlines()
    assert len(out) == 3 and all("search-other" in line for line in out[1:]), out
    r = env.ctl("messages", "--account", "nobody")
    assert r.returncode == 1 and "no account named" in r.stderr, r
    r = env.ctl("messages", "--state", "NOPE")
    assert r.returncode == 2 and "--state" in r.stderr, r


@tests.case
def an_operator_search_across_accounts_names_each_rows_account(env):
    o = setup(env)
    op = env.ctl("account", "add", "--operator", "search-op", check=True).stdout.strip()

    def search(**q):
        st, _, body, raw = env.http("GET", "/v1/operator/messages?" + urllib.parse.urlencode(q), key=op)
        assert st == 200, (q, st, raw)
        return body
    # by number, every page
    rows, cursor = [], None
    for _ in range(100):
        body = search(to=NUM, limit=4, **({"cursor": cursor} if cursor else {}))
        rows += body["recipients"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    else:
        raise AssertionError("more than 100 pages")
    # by account (here every account's): the set-up's and what came after (another case may have added
    # an old history: since keeps it out, limit bounds what it could add)
    since = env.scalar("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                       f" FROM recipients WHERE id = {min(o['a'])}")
    for got in (rows, search(since=since, limit=1000)["recipients"]):
        # each row's account is its recipient's in PostgreSQL, and both accounts are there
        assert {r["id"]: r["account"] for r in got} == account_names(env, got), got
        assert set(o["theirs"]) <= {r["id"] for r in got if r["account"] == "search-other"}, got
        assert set(o["a"]) & {r["id"] for r in got if r["account"] == "test"}, got


@tests.case
def a_number_shows_its_push_in_flight_and_its_sms_once_final(env):
    num = "821088800071"
    st, _, b, raw = env.http("POST", "/v1/devices", {"msisdn": num, "platform": "test"}, key=None)
    assert st == 202, raw
    st, _, _, raw = env.http("POST", f"/v1/devices/{b['device_id']}/verify", {"code": b["code"]}, key=None)
    assert st == 200, raw
    rid = env.send([num], text="waiting for the app", sender="ACME")["recipients"][0]["id"]
    assert env.scalar(f"SELECT state FROM recipients WHERE id = {rid}") == "PUSH_SENT"
    got = [r for p in pages(env, to=num) for r in p]
    assert [(r["id"], r["state"]) for r in got] == [(rid, "PUSH_SENT")], got
    # an SMS in flight is left out until it is final (its index has final rows only)
    env.sql(f"UPDATE recipients SET state = 'SMS_QUEUED', channel = 'sms', final_at = NULL,"
            f" next_attempt_at = now() + interval '1 hour' WHERE id = {rid}")
    assert pages(env, to=num) == [[]]
    env.sql(f"UPDATE recipients SET state = 'SMS_DELIVERED', final_at = now() WHERE id = {rid}")
    assert [r["id"] for p in pages(env, to=num) for r in p] == [rid]


@tests.case
def the_number_index_was_built_online_and_is_valid(env):
    # 023 runs outside a transaction (CREATE INDEX CONCURRENTLY); migrate_check (t_schema) runs
    # such a migration again after it was cut short
    assert env.scalar("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                      " WHERE c.relname = 'recipients_msisdn'") == "t"
    assert env.scalar("SELECT count(*) FROM schema_version WHERE version = 23") == "1"


tests.run(ini={"push": {"otp_echo": "yes", "push_timeout": "600"}},
          pg_opts="-c shared_preload_libraries=auto_explain -c auto_explain.log_min_duration=0")
