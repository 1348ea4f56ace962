"""t_retention: `pushgatectl retention status|run` drops the history by range
(sql/029, history_retention(), src/ctl_retention.c).

Real PostgreSQL, smsc-sim and pushgated taking traffic.  Four ranges of
seeded history: one 100 days old and final (dropped), one 100 days old with a
recipient still waiting for its receipt (kept: in flight), one 10 days old
(kept: newer than the limit) and one 100 days old exported first.  After the
run the first range's recipients, parts and events are gone, whole
partitions, each range in under a second; webhook deliveries go with their
range, and one still pending keeps it; the others and the live traffic
are untouched, the report rollups still count what was dropped, a second run
drops nothing, and the export holds every row as CSV.  Then pushgated
itself ([retention] check_interval) drops an old range while a client sends
one message per request: tried while a reader holds the range (busy, undone,
the traffic goes on), then dropped whole once the reader is gone; one in
flight kept; the longest wait between two acknowledgements printed and
bounded.  A carrier's MO and its deliveries (no recipient, so no range) are
deleted by age, exported first, what is pending kept; pushgated does it in
batches.
"""
import csv
import gzip
import io
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP

tests = TAP()
SIZE = 100           # recipient ids per seeded range
ctx = {}

SEED = """
WITH a AS (SELECT id FROM accounts WHERE name = 'test'),
m AS (INSERT INTO messages (account_id, sender, body, created_at)
      SELECT a.id, '{sender}', 'old', now() - interval '{age}' + g * interval '1 second'
      FROM a, generate_series(0, {n} - 1) g RETURNING id, account_id, created_at),
mm AS (SELECT *, row_number() OVER (ORDER BY id) - 1 AS k FROM m),
r AS (INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, route, smsc_id, parts, created_at,
                              updated_at, submitted_at, final_at, expires_at, release_at)
      SELECT {lo} + k, id, account_id, '8210' || lpad(({lo} + k)::text, 8, '0'),
             CASE WHEN k = {open} THEN 'SCHEDULED' ELSE 'SMS_DELIVERED' END, 'sms', 'default', 'R' || ({lo} + k), 1,
             created_at, created_at, created_at, CASE WHEN k = {open} THEN NULL ELSE created_at + interval '3 s' END,
             created_at + interval '1 day', CASE WHEN k = {open} THEN now() + interval '1 day' END
      FROM mm RETURNING id, message_id, account_id, created_at, state),
p AS (INSERT INTO sms_parts (recipient_id, part_no, account_id, route, smsc_id, state, accepted_at, updated_at)
      SELECT id, 1, account_id, 'default', 'R' || id, state, created_at, created_at FROM r WHERE state <> 'SCHEDULED')
INSERT INTO events (recipient_id, message_id, account_id, at, state, route)
SELECT r.id, r.message_id, r.account_id, r.created_at + s.o * interval '1 s', s.state, 'default'
FROM r, (VALUES (0, 'ACCEPTED'), (1, 'SMS_QUEUED'), (2, 'SMS_SUBMITTED'), (3, 'SMS_ACCEPTED'),
                (4, 'SMS_DELIVERED')) AS s(o, state)
WHERE r.state = 'SMS_DELIVERED' OR s.o = 0
"""
# what a seeded range holds: recipients, parts, events (one scheduled recipient: no part, one event)
FULL = (SIZE, SIZE, SIZE * 5)
WITH_OPEN = (SIZE, SIZE - 1, (SIZE - 1) * 5 + 1)


def counts(env, lo):
    return tuple(int(env.scalar(f"SELECT count(*) FROM {t} WHERE {k} >= {lo} AND {k} < {lo + SIZE}"))
                 for t, k in (("recipients", "id"), ("sms_parts", "recipient_id"), ("events", "recipient_id")))


def status(env, *args):
    """{range: (in flight, action)}; with the outboxes' own limit also {range: outboxes' action}."""
    r = env.ctl("retention", "status", *args, check=True)
    rows, outboxes = {}, None
    table, *rest = r.stdout.split("\n\n")
    for line in table.splitlines()[1:]:
        f = line.split(None, 6)   # RANGE TO NEWEST IN_FLIGHT SIZE (a number and its unit) ACTION
        if len(f) == 7:
            rows[f[0]] = (f[3], f[6])
    for section in rest:
        if not section.startswith("outboxes "):
            continue   # the rows outside the ranges (old_mo_... reads them)
        outboxes = {}
        for line in section.splitlines()[2:]:
            f = line.split(None, 1)   # RANGE OUTBOXES
            if len(f) == 2 and not line.startswith("limit:"):
                outboxes[f[0]] = f[1]
    return (rows, outboxes) if outboxes is not None else rows


@tests.case
def seeded_history_is_in_four_ranges_and_status_says_what_goes(env):
    # live traffic first: its range must stay
    live = env.send(["821066000010"], sender="LIVE")["id"]
    env.wait_for(lambda: env.recipients_final([live]), timeout=60, what="the live message final")
    top = int(env.scalar("SELECT max(hi) FROM history_ranges"))
    names = ("old", "inflight", "recent", "export")
    ages = ("100 days", "100 days", "10 days", "100 days")
    for i, (name, age) in enumerate(zip(names, ages)):
        lo = top + i * SIZE
        env.sql(f"SELECT history_range_add({lo}, {lo + SIZE})")
        env.psql(SEED.format(sender=name.upper(), age=age, n=SIZE, lo=lo, open=7 if name == "inflight" else -1))
        ctx[name] = lo
    # new ids after the seeded ones: pushgated makes the range they go to
    env.sql(f"SELECT setval('recipients_id_seq', {top + 4 * SIZE - 1})")
    env.wait_for(lambda: int(env.scalar("SELECT max(hi) FROM history_ranges")) > top + 4 * SIZE, timeout=30,
                 what="pushgated's next range")
    # the rollups' first run starts at the oldest message: the seeded history is counted
    env.ctl("rollup", check=True, timeout=180)
    ctx["rolled"] = env.sql("SELECT sender, state, sum(recipients) FROM report_counts WHERE grain = 'd'"
                            " GROUP BY 1, 2 ORDER BY 1, 2")
    ctx["report"] = env.sql("SELECT * FROM report_outcomes('-infinity', 'sender') ORDER BY sender")
    assert ("OLD", "SMS_DELIVERED", str(SIZE)) in ctx["rolled"] and ("EXPORT", "ACCEPTED", str(SIZE)) in ctx["rolled"], \
        ctx["rolled"]
    for name in names:
        assert counts(env, ctx[name]) == (WITH_OPEN if name == "inflight" else FULL), (name, counts(env, ctx[name]))
    st = status(env)
    assert st[str(ctx["old"])] == ("no", "drop"), st
    assert st[str(ctx["inflight"])] == ("yes", "kept: a recipient in flight"), st
    assert st[str(ctx["recent"])] == ("no", "kept: newer than the limit"), st
    assert st[str(ctx["export"])] == ("no", "drop"), st
    assert st["1"][1] == "kept: newer than the limit", st   # the live traffic's range
    last = max(st, key=lambda k: int(k))
    assert st[last][1] == "kept: ids still to be issued in it", st


@tests.case
def retention_run_drops_whole_old_ranges_and_nothing_in_flight(env):
    exp = os.path.join(env.tmp, "export")
    os.mkdir(exp)
    # the export range first, written out; then the rest without export (O(1) per range)
    r = env.ctl("retention", "run", "--export", exp, check=True, timeout=120)
    dropped = re.findall(r"^range (\S+) to \S+ .*\n(?:  exported .*\n)*  dropped in ([0-9.]+) s$", r.stdout, re.M)
    assert {lo for lo, _ in dropped} == {str(ctx["old"]), str(ctx["export"])}, r.stdout
    for t in ("recipients", "sms_parts", "events"):
        with gzip.open(os.path.join(exp, f"{t}_{ctx['export']}.csv.gz"), "rt", encoding="utf-8") as f:
            rows = list(csv.reader(io.StringIO(f.read())))
        assert rows[0][:2] == {"recipients": ["id", "message_id"], "sms_parts": ["recipient_id", "part_no"],
                               "events": ["id", "recipient_id"]}[t], rows[0]
        assert len(rows) - 1 == (SIZE * 5 if t == "events" else SIZE), (t, len(rows))
    for name in ("old", "export"):
        lo = ctx[name]
        assert counts(env, lo) == (0, 0, 0), name
        for t in ("recipients", "sms_parts", "events"):
            assert env.scalar(f"SELECT to_regclass('{t}_{lo}') IS NULL") == "t", (t, lo)
        assert env.scalar(f"SELECT count(*) FROM history_ranges WHERE lo = {lo}") == "0"
    # in flight, newer, live: untouched
    assert counts(env, ctx["inflight"]) == WITH_OPEN
    assert counts(env, ctx["recent"]) == FULL
    assert env.scalar(f"SELECT state FROM recipients WHERE id = {ctx['inflight'] + 7}") == "SCHEDULED"
    # the rollups keep the counts of what was dropped
    assert env.sql("SELECT sender, state, sum(recipients) FROM report_counts WHERE grain = 'd'"
                   " GROUP BY 1, 2 ORDER BY 1, 2") == ctx["rolled"]
    assert env.sql("SELECT * FROM report_outcomes('-infinity', 'sender') ORDER BY sender") == ctx["report"]
    # the message of a dropped recipient is still there, its recipients are not
    mid = env.scalar("SELECT max(id) FROM messages WHERE sender = 'OLD'")
    assert env.message(mid)["recipients"] == []
    # a second run: nothing more to drop
    r = env.ctl("retention", "run", check=True, timeout=60)
    assert "0 range(s) dropped" in r.stdout, r.stdout
    for _, took in dropped:
        assert float(took) < 5.0, dropped   # with the export: the copy's time


@tests.case
def a_range_without_export_is_dropped_in_under_a_second(env):
    # a range of 5,000 recipients, 100 days old, made on top and then passed by the id sequence
    top = int(env.scalar("SELECT max(hi) FROM history_ranges"))
    n = 5000
    env.sql(f"SELECT history_range_add({top}, {top + n})")
    env.psql(SEED.format(sender="BIG", age="100 days", n=n, lo=top, open=-1))
    env.sql(f"SELECT setval('recipients_id_seq', {top + n - 1})")
    env.wait_for(lambda: int(env.scalar("SELECT max(hi) FROM history_ranges")) > top + n, timeout=30,
                 what="pushgated's next range")
    assert counts(env, top)[0] == SIZE   # (counts() looks at the first SIZE ids)
    r = env.ctl("retention", "run", check=True, timeout=60)
    m = re.search(rf"^range {top} to .*\n  dropped in ([0-9.]+) s$", r.stdout, re.M)
    assert m, r.stdout
    print(f"# a range of {n} recipients ({n * 5} events): dropped in {m.group(1)} s", flush=True)
    assert float(m.group(1)) < 1.0, r.stdout
    assert int(env.scalar(f"SELECT count(*) FROM recipients WHERE id >= {top} AND id < {top + n}")) == 0
    # live traffic goes on
    live = env.send(["821066000020"], sender="LIVE")["id"]
    env.wait_for(lambda: env.recipients_final([live]), timeout=60, what="a message after the drop")


@tests.case
def a_range_dropped_while_status_reads_is_left_out(env):
    """Regression (fresh-clone run 12): history_retention() reads history_ranges and then each
    range's partitions by name; a range another node dropped in between failed the whole call
    ('relation recipients_<lo> does not exist').  A reader whose snapshot still sees the range
    row while its partitions are gone (REPEATABLE READ, taken before the drop) gets the others."""
    top = int(env.scalar("SELECT max(hi) FROM history_ranges"))
    env.sql(f"SELECT history_range_add({top}, {top + SIZE})")
    env.psql(SEED.format(sender="GONE", age="100 days", n=SIZE, lo=top, open=-1))
    env.sql(f"SELECT setval('recipients_id_seq', {top + SIZE - 1})")
    env.wait_for(lambda: int(env.scalar("SELECT max(hi) FROM history_ranges")) > top + SIZE, timeout=30,
                 what="pushgated's next range")
    reader = env.open_tx()
    reader.run("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM history_ranges;")
    r = env.ctl("retention", "run", check=True, timeout=60)
    assert re.search(rf"^range {top} to .*\n  dropped in ", r.stdout, re.M), r.stdout
    assert env.scalar(f"SELECT to_regclass('recipients_{top}') IS NULL") == "t"
    try:
        assert reader.run(f"SELECT count(*) FROM history_ranges WHERE lo = {top};") == ["1"]   # still seen
        for cls in ("history", "outbox"):
            rows = reader.run(f"SELECT lo || ' ' || action FROM history_retention('90 days', NULL, '{cls}');")
            los = [int(line.split()[0]) for line in rows]
            assert top not in los and los and all(lo != top for lo in los), (cls, rows)
            assert reader.run(f"SELECT count(*) FROM history_retention('90 days', {top}, '{cls}');") == ["0"], cls
    finally:
        reader.run("COMMIT;")
    # status from a fresh snapshot: the range is simply gone
    assert str(top) not in status(env)


HOOKS = """
INSERT INTO webhook_outbox (account_id, url, event_id, recipient_id, message_id, payload, created_at, delivered_at,
                            next_attempt_at)
SELECT e.account_id, 'http://192.0.2.1/hook', e.id, e.recipient_id, e.message_id, '{{}}', e.at,
       CASE WHEN e.recipient_id = {pending} THEN NULL ELSE e.at + interval '1 s' END, now() + interval '1 day'
FROM events e WHERE e.recipient_id >= {lo} AND e.recipient_id < {hi}
"""
# (the pending ones are due tomorrow: pushgated's sender leaves them alone meanwhile)


RECEIPTS = """
INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, recipient_id, state, source_addr, dest_addr, body,
                         created_at, delivered_at)
SELECT (SELECT id FROM smpp_accounts WHERE system_id = 'keeper'), r.account_id, 'receipt', r.id, r.state, r.msisdn,
       'KEEP', 'old', r.created_at, CASE WHEN r.id = {pending} THEN NULL ELSE r.created_at + interval '5 s' END
FROM recipients r WHERE r.id >= {lo} AND r.id < {hi}
"""
# (no ESME of that login binds: the undelivered receipt waits)


@tests.case
def outbox_rows_go_with_their_range_and_a_pending_one_keeps_it(env):
    """webhook_outbox (sql/030) and smpp_outbox (sql/031) are partitioned with the ranges: a
    range goes with its deliveries, and one still to be made, of either, keeps it."""
    env.ctl("smpp-account", "add", "test", "--system-id", "keeper", "--password", "pwkeeper", check=True)
    top = int(env.scalar("SELECT max(hi) FROM history_ranges"))
    n = SIZE
    done, hook, receipt = top, top + n, top + 2 * n
    for lo in (done, hook, receipt):
        env.sql(f"SELECT history_range_add({lo}, {lo + n})")
        env.psql(SEED.format(sender="HOOK", age="100 days", n=n, lo=lo, open=-1))
        # every event of the range written for a webhook and every recipient's receipt for an ESME,
        # delivered; one webhook event of the second range still to go, one receipt of the third
        env.psql(HOOKS.format(lo=lo, hi=lo + n, pending=hook + 3 if lo == hook else -1))
        env.psql(RECEIPTS.format(lo=lo, hi=lo + n, pending=receipt + 5 if lo == receipt else -1))
    env.sql(f"SELECT setval('recipients_id_seq', {top + 3 * n - 1})")
    env.wait_for(lambda: int(env.scalar("SELECT max(hi) FROM history_ranges")) > top + 3 * n, timeout=30,
                 what="pushgated's next range")
    for lo in (done, hook, receipt):
        assert int(env.scalar(f"SELECT count(*) FROM webhook_outbox_{lo}")) == n * 5, lo
        assert int(env.scalar(f"SELECT count(*) FROM smpp_outbox_{lo}")) == n, lo
    st = status(env)
    assert st[str(done)] == ("no", "drop"), st
    assert st[str(hook)] == ("no", "kept: a webhook delivery pending"), st
    assert st[str(receipt)] == ("no", "kept: an SMPP receipt undelivered"), st
    r = env.ctl("retention", "run", check=True, timeout=60)
    assert re.search(rf"^range {done} to ", r.stdout, re.M), r.stdout
    assert not re.search(rf"^range ({hook}|{receipt}) to ", r.stdout, re.M), r.stdout
    for t in ("smpp_outbox", "webhook_outbox", "events", "sms_parts", "recipients"):
        assert env.scalar(f"SELECT to_regclass('{t}_{done}') IS NULL") == "t", t
        for kept in (hook, receipt):
            assert env.scalar(f"SELECT to_regclass('{t}_{kept}') IS NOT NULL") == "t", (t, kept)
    for t in ("smpp_outbox", "webhook_outbox"):
        assert int(env.scalar(f"SELECT count(*) FROM {t} WHERE recipient_id >= {done}"
                              f" AND recipient_id < {done + n}")) == 0, t
    assert int(env.scalar(f"SELECT count(*) FROM webhook_outbox_{hook}")) == n * 5
    assert int(env.scalar(f"SELECT count(*) FROM smpp_outbox_{receipt}")) == n
    # delivered (given up, for the webhook) at last: the ranges may go
    env.sql(f"UPDATE webhook_outbox SET given_up_at = now() WHERE recipient_id = {hook + 3} AND delivered_at IS NULL")
    env.sql(f"UPDATE smpp_outbox SET delivered_at = now() WHERE recipient_id = {receipt + 5}")
    st = status(env)
    assert st[str(hook)] == ("no", "drop") and st[str(receipt)] == ("no", "drop"), st


@tests.case
def pushgated_drops_old_ranges_by_itself_while_traffic_goes_on(env):
    # two 100-day-old ranges of 2,000 recipients, one with a recipient in flight
    top = int(env.scalar("SELECT max(hi) FROM history_ranges"))
    n = 2000
    old, busy = top, top + n
    for lo, open_k in ((old, -1), (busy, 11)):
        env.sql(f"SELECT history_range_add({lo}, {lo + n})")
        env.psql(SEED.format(sender="AUTO", age="100 days", n=n, lo=lo, open=open_k))
    env.sql(f"SELECT setval('recipients_id_seq', {top + 2 * n - 1})")
    env.wait_for(lambda: int(env.scalar("SELECT max(hi) FROM history_ranges")) > top + 2 * n, timeout=30,
                 what="pushgated's next range")
    # vacuumed now, so that no autovacuum of the fresh rows holds them when pushgated drops them
    for lo in (old, busy):
        env.psql(f"VACUUM (ANALYZE) recipients_{lo}, sms_parts_{lo}, events_{lo}")
    # a reader of the old range holds it: pushgated's first tries are busy and undo themselves
    reader = env.open_tx()
    reader.run(f"BEGIN; SELECT count(*) FROM events_{old};")
    # pushgated checks every second from now on; traffic runs through the drop, every 202 timed
    env.ini_overrides.setdefault("retention", {})["check_interval"] = "1"
    env.write_ini()
    env.restart_pushgated()
    acks, stop = [], threading.Event()

    def traffic():
        k = 0
        while not stop.is_set() and k < 20000:
            env.send([f"8210770{k % 100000:05d}"], sender="LIVE")
            acks.append(time.monotonic())
            k += 1

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        env.wait_for(lambda: "ev=history_retention_busy" in env.pushgated_log_text(), timeout=30,
                     what="a try that found the range held")
        time.sleep(1.0)   # traffic while the tries come back busy
        assert env.scalar(f"SELECT count(*) FROM history_ranges WHERE lo = {old}") == "1"
        reader.run("COMMIT;")
        env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM history_ranges WHERE lo = {old}") == "0",
                     timeout=30, what="pushgated's drop of the old range")
        time.sleep(1.0)   # traffic after the drop too
    finally:
        stop.set()
        t.join(timeout=30)
    assert not t.is_alive(), "the traffic thread did not stop"
    log = env.pushgated_log_text()
    assert re.search(rf"ev=history_range_dropped range={old} ", log), log[-3000:]
    assert not re.search(rf"ev=history_range_dropped range={busy} ", log)
    assert counts(env, old) == (0, 0, 0)
    for t_ in ("recipients", "sms_parts", "events"):
        assert env.scalar(f"SELECT to_regclass('{t_}_{old}') IS NULL") == "t", t_
    # in flight: kept whole; the live traffic's ranges too
    assert int(env.scalar(f"SELECT count(*) FROM recipients WHERE id >= {busy} AND id < {busy + n}")) == n
    assert env.scalar(f"SELECT state FROM recipients WHERE id = {busy + 11}") == "SCHEDULED"
    gaps = [b - a for a, b in zip(acks, acks[1:])]
    assert len(acks) > 20, len(acks)
    print(f"# pushgated dropped a range of {n} recipients during {len(acks)} single-message requests;"
          f" longest wait between two 202s {max(gaps):.3f} s", flush=True)
    assert max(gaps) < 2.0, f"traffic stood still {max(gaps):.2f} s"
    st, _, _, raw = env.http("GET", "/metrics", key=None)
    # (the last case's range, delivered at last, went too)
    drops = len(re.findall(r"ev=history_range_dropped ", env.pushgated_log_text()))
    assert st == 200 and re.search(rf"^pushgate_history_ranges_dropped_total {drops}$", raw.decode(), re.M), raw[-2000:]
    assert re.search(r"^pushgate_history_retention_failures_total [1-9][0-9]*$", raw.decode(), re.M), raw[-2000:]
    # every message sent during the drop was stored and goes its way
    assert int(env.scalar("SELECT count(*) FROM messages WHERE sender = 'LIVE'")) >= len(acks)


@tests.case
def outboxes_go_after_outbox_days_and_their_range_stays(env):
    """[retention] outbox_days (sql/032): a range's delivered webhook and SMPP outbox rows are
    emptied (TRUNCATE: the partitions stay) before the range itself goes; a pending delivery
    keeps them; pushgatectl (with --export) and pushgated both do it."""
    top = int(env.scalar("SELECT max(hi) FROM history_ranges"))
    n = SIZE
    done, hook = top, top + n
    for lo in (done, hook):
        env.sql(f"SELECT history_range_add({lo}, {lo + n})")
        env.psql(SEED.format(sender="OUTBOX", age="40 days", n=n, lo=lo, open=-1))
        env.psql(HOOKS.format(lo=lo, hi=lo + n, pending=hook + 7 if lo == hook else -1))
        env.psql(RECEIPTS.format(lo=lo, hi=lo + n, pending=-1))
    env.sql(f"SELECT setval('recipients_id_seq', {top + 2 * n - 1})")
    env.wait_for(lambda: int(env.scalar("SELECT max(hi) FROM history_ranges")) > top + 2 * n, timeout=30,
                 what="pushgated's next range")
    rows, outboxes = status(env, "--outbox-days", "30")
    assert rows[str(done)] == ("no", "kept: newer than the limit"), rows
    assert outboxes[str(done)] == "clear" and outboxes[str(hook)] == "kept: a webhook delivery pending", outboxes
    assert status(env) == rows   # outboxes kept as long as their range: no section of their own
    out = os.path.join(env.tmp, "outbox-export")
    os.mkdir(out)
    r = env.ctl("retention", "run", "--outbox-days", "30", "--export", out, check=True, timeout=60)
    m = re.search(rf"^range {done} to .*, its outboxes:\n(?:  exported .*\n)+  emptied in ([0-9.]+) s$", r.stdout, re.M)
    assert m and not re.search(rf"^range {hook} to ", r.stdout, re.M), r.stdout
    assert float(m.group(1)) < 1.0, r.stdout
    assert sorted(os.listdir(out)) == [f"smpp_outbox_{done}.csv.gz", f"webhook_outbox_{done}.csv.gz"], os.listdir(out)
    with gzip.open(os.path.join(out, f"webhook_outbox_{done}.csv.gz"), "rt") as f:
        assert sum(1 for _ in f) == n * 5 + 1   # every row, and the header
    # emptied, not dropped: the history of the range is all there, and rows may still come
    assert [int(env.scalar(f"SELECT count(*) FROM {t}_{done}")) for t in ("webhook_outbox", "smpp_outbox")] == [0, 0]
    assert counts(env, done) == FULL
    assert env.scalar(f"SELECT outboxes_cleared_at IS NOT NULL FROM history_ranges WHERE lo = {done}") == "t"
    assert status(env, "--outbox-days", "30")[1][str(done)] == "cleared"
    env.sql(f"INSERT INTO webhook_outbox (account_id, url, event_id, recipient_id, payload, delivered_at) SELECT"
            f" account_id, 'http://192.0.2.1/hook', 0, id, '{{}}', now() FROM recipients WHERE id = {done + 1}")
    assert int(env.scalar(f"SELECT count(*) FROM webhook_outbox_{hook}")) == n * 5
    # pushgated, once the pending delivery is given up
    env.sql(f"UPDATE webhook_outbox SET given_up_at = now() WHERE recipient_id = {hook + 7} AND delivered_at IS NULL")
    env.ini_overrides.setdefault("retention", {}).update({"check_interval": "1", "outbox_days": "30"})
    env.write_ini()
    env.restart_pushgated()
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM webhook_outbox_{hook}") == "0", timeout=30,
                 what="pushgated emptying the second range's outboxes")
    assert int(env.scalar(f"SELECT count(*) FROM smpp_outbox_{hook}")) == 0
    assert counts(env, hook) == FULL
    assert re.search(rf"ev=history_outboxes_cleared range={hook} ", env.pushgated_log_text())
    st, _, _, raw = env.http("GET", "/metrics", key=None)
    assert st == 200 and re.search(r"^pushgate_history_outboxes_cleared_total 1$", raw.decode(), re.M), raw[-2000:]


# rows no range holds (no recipient id): a carrier's MO, queued for an ESME and posted to a webhook
MO_SEED = """
INSERT INTO mo_messages (route, source_addr, dest_addr, body, received_at)
SELECT 'default', '8210' || lpad(g::text, 8, '0'), '{tag}', 'stop', now() - interval '{age}' + g * interval '1 ms'
FROM generate_series(1, {n}) g;
INSERT INTO smpp_outbox (smpp_account_id, account_id, kind, source_addr, dest_addr, body, created_at, delivered_at)
SELECT s.id, s.account_id, 'mo', '821012345678', '{tag}', 'hi', now() - interval '{age}',
       CASE WHEN g > {pending} THEN now() - interval '{age}' END
FROM smpp_accounts s, generate_series(1, {n}) g WHERE s.system_id = 'keeper';
INSERT INTO webhook_outbox (account_id, url, event_id, payload, created_at, next_attempt_at, delivered_at, given_up_at)
SELECT a.id, 'http://192.0.2.1/mo', 0, jsonb_build_object('kind', 'mo', 'to', '{tag}'), now() - interval '{age}',
       now() + interval '1 day', CASE WHEN g > {pending} + 1 THEN now() - interval '{age}' END,
       CASE WHEN g = {pending} + 1 THEN now() - interval '{age}' END
FROM accounts a, generate_series(1, {n}) g WHERE a.name = 'test';
INSERT INTO message_keys (account_id, key, message_id, created_at)
SELECT a.id, '{tag}-' || g, -(abs(hashtext('{tag}'))::bigint * 100000 + g), now() - interval '{age}' FROM accounts a, generate_series(1, {n}) g WHERE a.name = 'test'
"""


def mo_counts(env, tag):
    return tuple(int(env.scalar(f"SELECT count(*) FROM {t} WHERE {c} = '{tag}'"))
                 for t, c in (("mo_messages", "dest_addr"), ("smpp_outbox_other", "dest_addr"),
                              ("webhook_outbox_other", "payload->>'to'"), ("message_keys", "split_part(key, '-', 1)")))


@tests.case
def old_mo_and_its_delivered_deliveries_are_deleted_and_what_is_pending_stays(env):
    """The rows no history range holds (sql/034, history_trimmable(), history_trim()): a
    carrier's MO older than history_days, and its deliveries to ESMEs and webhooks older than
    outbox_days once delivered or given up, are deleted oldest first; one still to be delivered
    stays however old.  pushgatectl with --export writes out exactly what it deletes; pushgated
    does it by itself in batches."""
    env.ini_overrides.setdefault("retention", {}).update({"check_interval": "0", "outbox_days": "30"})
    env.write_ini()
    env.restart_pushgated()
    env.psql(MO_SEED.format(tag="MOOLD", age="100 days", n=5, pending=1))   # 1 pending in each outbox
    env.psql(MO_SEED.format(tag="MONEW", age="10 days", n=5, pending=0))
    assert mo_counts(env, "MOOLD") == (5, 5, 5, 5)
    r = env.ctl("retention", "status", "--outbox-days", "30", check=True)
    got = dict(re.findall(r"^(mo_messages|message_keys|smpp_outbox_other|webhook_outbox_other) +(\d+) ", r.stdout,
                          re.M))
    # the MO and the idempotency keys are older than history_days (90); of the deliveries (older
    # than 30 days), those delivered or given up: 4 of each outbox's 5 (MO_SEED)
    assert got == {"mo_messages": "5", "message_keys": "5", "smpp_outbox_other": "4", "webhook_outbox_other": "4"}, \
        r.stdout
    out = os.path.join(env.tmp, "mo-export")
    os.mkdir(out)
    r = env.ctl("retention", "run", "--outbox-days", "30", "--export", out, check=True, timeout=60)
    assert "outside the ranges: mo_messages 5, message_keys 5, smpp_outbox_other 4, webhook_outbox_other 4 rows" \
        " deleted" in r.stdout, r.stdout
    assert mo_counts(env, "MOOLD") == (0, 1, 1, 0)   # the pending ones stay
    assert mo_counts(env, "MONEW") == (5, 5, 5, 5)
    assert env.scalar("SELECT count(*) FROM webhook_outbox_other WHERE payload->>'to' = 'MOOLD'"
                      " AND delivered_at IS NULL AND given_up_at IS NULL") == "1"
    files = sorted(os.listdir(out))
    assert [re.sub(r"-\d{8}T\d{6}Z", "", f) for f in files] == \
        ["message_keys.csv.gz", "mo_messages.csv.gz", "smpp_outbox_other.csv.gz", "webhook_outbox_other.csv.gz"], files
    with gzip.open(os.path.join(out, files[1]), "rt", encoding="utf-8") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    assert rows[0][:2] == ["id", "route"] and len(rows) == 6 and all(r_[3] == "MOOLD" for r_ in rows[1:]), rows
    with gzip.open(os.path.join(out, files[0]), "rt", encoding="utf-8") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    assert rows[0][:3] == ["account_id", "key", "message_id"] and sorted(r_[1] for r_ in rows[1:]) == \
        [f"MOOLD-{i}" for i in range(1, 6)], rows
    r = env.ctl("retention", "run", "--outbox-days", "30", check=True, timeout=60)
    assert "outside the ranges: mo_messages 0, message_keys 0, smpp_outbox_other 0, webhook_outbox_other 0 rows" \
        " deleted" in r.stdout, r.stdout
    # pushgated by itself: more than a batch (5,000) of old MO, the next batch at once
    env.psql(MO_SEED.format(tag="MOBULK", age="100 days", n=6000, pending=0))
    env.ini_overrides["retention"]["check_interval"] = "1"
    env.write_ini()
    env.restart_pushgated()
    env.wait_for(lambda: mo_counts(env, "MOBULK") == (0, 0, 0, 0), timeout=60, what="pushgated deleting the old MO")
    assert mo_counts(env, "MONEW") == (5, 5, 5, 5) and mo_counts(env, "MOOLD") == (0, 1, 1, 0)
    log = env.pushgated_log_text()
    assert re.search(r"ev=history_trimmed table=mo_messages rows=5000$", log, re.M), log[-3000:]
    assert re.search(r"ev=history_trimmed table=mo_messages rows=1000$", log, re.M), log[-3000:]
    st, _, _, raw = env.http("GET", "/metrics", key=None)
    assert re.search(r"ev=history_trimmed table=message_keys rows=5000$", log, re.M), log[-3000:]
    assert st == 200 and re.search(r"^pushgate_history_rows_trimmed_total 24000$", raw.decode(), re.M), raw[-2000:]


@tests.case
def a_message_range_goes_once_no_kept_recipient_or_key_names_its_messages(env):
    """Message ranges (sql/036, message_retention(), message_range_drop()), in a database of
    their own: four ranges of old messages; the first names no kept recipient (dropped), the
    second has a recipient kept (it and every later range stay: the least message id a kept
    recipient names bounds them), the third an idempotency key kept, the fourth ids still to be
    issued.  As the recipient and then the key go, so do their ranges, through pushgatectl
    (exported first) and through pushgated's own job (history_retention_drop(.., 'messages'))."""
    env.psql("CREATE DATABASE mranges", dbname="postgres")
    ctl = [os.path.join(env.builddir, "pushgatectl"), "-d", re.sub(r"dbname=\S+", "dbname=mranges", env.conninfo)]

    def run(*args):
        r = subprocess.run(ctl + list(args), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def q(sql):
        return env.psql(sql, dbname="mranges").strip()
    run("migrate")
    assert q("SELECT string_agg(lo || '-' || hi, ',') FROM message_ranges") == "1-1000001"
    # ids issued up to 3,000,000: the ranges up to it made, and one ahead
    q("SELECT setval('messages_id_seq', 3000000)")
    assert q("SELECT made FROM message_ensure()") == "3"
    assert q("SELECT string_agg(lo::text, ',' ORDER BY lo) FROM message_ranges") == "1,1000001,2000001,3000001"
    q("INSERT INTO messages (id, account_id, sender, body, created_at)"
      " SELECT lo + g, 1, 'OLD', 'old', now() - interval '100 days' FROM (VALUES (1), (1000001), (2000001)) r(lo),"
      " generate_series(0, 4) g")
    q("INSERT INTO recipients (id, message_id, account_id, msisdn, state, final_at)"
      " VALUES (5, 1000003, 1, '821000000005', 'SMS_DELIVERED', now() - interval '100 days')")
    q("INSERT INTO message_keys (account_id, key, message_id) VALUES (1, 'k-kept', 2000002)")

    def actions():
        return dict(l.split("|") for l in q("SELECT lo || '|' || action FROM message_retention('90 days')").splitlines())
    assert actions() == {"1": "drop", "1000001": "kept: a recipient of its messages is kept",
                         "2000001": "kept: a recipient of its messages is kept",
                         "3000001": "kept: ids still to be issued in it"}, actions()
    out = run("retention", "status")
    assert re.search(r"^1 +1000001 +\S.* drop$", out, re.M), out
    exp = os.path.join(env.tmp, "mexport")
    os.mkdir(exp)
    out = run("retention", "run", "--export", exp)
    assert re.search(r"^message range 1 to 1000001 .*\n  exported messages_1: 5 rows to .*\n  dropped in [0-9.]+ s$",
                     out, re.M), out
    assert "1 message range(s) dropped" in out, out
    assert q("SELECT to_regclass('messages_1') IS NULL") == "t"
    with gzip.open(os.path.join(exp, "messages_1.csv.gz"), "rt", encoding="utf-8") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    assert rows[0][:2] == ["id", "account_id"] and [r_[0] for r_ in rows[1:]] == ["1", "2", "3", "4", "5"], rows
    # the recipient goes (its history range dropped): the key still holds the third range
    q("DELETE FROM recipients WHERE id = 5")
    assert actions() == {"1000001": "drop", "2000001": "kept: an idempotency key of its messages is kept",
                         "3000001": "kept: ids still to be issued in it"}, actions()
    assert q("SELECT suffix || ' ' || action FROM history_retention_drop('90 days', 'messages')") == \
        "messages_1000001 dropped"
    assert q("SELECT count(*) FROM history_retention_drop('90 days', 'messages')") == "0"
    q("DELETE FROM message_keys")
    assert q("SELECT suffix || ' ' || action FROM history_retention_drop('90 days', 'messages')") == \
        "messages_2000001 dropped"
    assert q("SELECT string_agg(lo::text, ',' ORDER BY lo) FROM message_ranges") == "3000001"
    assert q("SELECT count(*) FROM messages") == "0"
    # a message newer than the limit keeps its range, whatever names it
    q("SELECT setval('messages_id_seq', 5000000)")
    q("SELECT message_ensure()")
    q("INSERT INTO messages (id, account_id, sender, body) VALUES (3000001, 1, 'NEW', 'new')")
    assert actions()["3000001"] == "kept: newer than the limit", actions()


@tests.case
def bad_arguments_are_usage_errors(env):
    for args in (("retention",), ("retention", "drop"), ("retention", "run", "--keep-days", "0"),
                 ("retention", "status", "--export", "/tmp"), ("retention", "run", "--export"),
                 ("retention", "status", "--outbox-days", "0")):
        r = env.ctl(*args)
        assert r.returncode == 2 and "usage: pushgatectl retention" in r.stderr, (args, r.returncode, r.stderr)
    r = env.ctl("retention", "run", "--export", "/nonexistent/dir")
    assert r.returncode == 1 and "is not a directory" in r.stderr, r.stderr


# pushgated drops nothing by itself (the harness sets check_interval 0) until the cases at the end turn it on
tests.run(ini={"reports": {"rollup_interval": "0"}})
