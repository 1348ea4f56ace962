#!/usr/bin/env python3
"""bench_wake.py: platform push (Web Push) to devices that have no socket.

N verified devices are inserted straight into the devices table, each with a
Web Push subscription at tests/pushsvc/webpush-service.mjs (HTTPS on
loopback; N subscriptions sharing one key pair, so the setup is quick; the
service verifies the VAPID JWT and decrypts with http_ece one push in
BENCH_VERIFY_EVERY and answers the others 201 after checking their headers,
so it keeps up on the same machine).  None of them connects.  Then M
recipients are preloaded as PUSH_SENT the way the intake writes them and
announced with NOTIFY pushgate_push, in one of two shapes:

  campaign: one message to all N devices (its claims come page by page);
  single:   M messages of one recipient each (every claim is one message).

Timed until every recipient has its wake's outcome (wakes.done_at; the
service counted M accepted).  Each push is an ECDH, two HKDFs and an
AES-128-GCM, a TLS request and a claim and outcome in PostgreSQL.  The rate is
pushes per second of wall time and, because the machine is shared by
pushgated, PostgreSQL and the service, pushes per CPU second of pushgated
alone ("per core").  Every wait is bounded; everything it starts is stopped
on exit.

Environment (defaults in brackets):
  BENCH_N [100000; 5000 with BENCH_QUICK=1]   devices with a subscription, no socket
  BENCH_SHAPE [campaign]                      campaign | single
  BENCH_REPS [3; 1 with BENCH_QUICK=1]        repetitions
  BENCH_VERIFY_EVERY [100]                    the service verifies one push in this many
  BENCH_CONCURRENCY [256]                     [wake] concurrency
  BENCH_STATEMENTS [0]                        print pg_stat_statements per rep
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR         as for the integration tests
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from harness import Env  # noqa: E402

from pushsvc import Service, certificate, vapid_key  # noqa: E402
from benchlib import env_int, history_cover, postgres_cpu, proc_cpu, statements_wanted, summary  # noqa: E402

MSISDN_BASE = 821090000000


class BenchEnv(Env):
    """Env whose PostgreSQL loads pg_stat_statements (track_planning on) when asked for."""

    def start_pg(self):
        extra = ("-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all "
                 "-c pg_stat_statements.track_planning=on") if statements_wanted() else ""
        opts = (f"-k {self.pg_sock} -p {self.pg_port} -c listen_addresses=127.0.0.1 -c max_connections=50 {extra}")
        self._pg_ctl("start", "-w", "-t", "60", "-l", self.pg_log, "-o", opts, timeout=90)
        self._pg_started = True


def insert_devices(env, svc, n, work):
    subs = svc.call("POST", "/subscribe", {"count": n}, timeout=120)
    ids = os.path.join(work, "subs.txt")
    with open(ids, "w") as f:
        for i, sid in enumerate(subs["ids"]):
            f.write(f"{i}\t{subs['endpoint_prefix']}{sid}\n")
    env.psql("CREATE TABLE bench_subs (i int, endpoint text)")
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(env.pg_port),
                        "-U", "postgres", "-d", "pushgate", "-c", f"\\copy bench_subs FROM '{ids}'"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    p256dh = subs["keys"]["p256dh"]
    auth = subs["keys"]["auth"]
    env.psql(f"""
        INSERT INTO devices (id, msisdn, platform, token_hash, verified_at)
          SELECT 1 + i, ({MSISDN_BASE} + i)::text, 'web', sha256(convert_to('bench-' || i, 'UTF8')), now()
          FROM generate_series(0, {n - 1}) i;
        INSERT INTO device_wakeups (device_id, kind, endpoint, p256dh, auth)
          SELECT 1 + s.i, 'webpush', s.endpoint,
                 decode(translate('{p256dh}', '-_', '+/') || '=', 'base64'),
                 decode(translate('{auth}', '-_', '+/') || '==', 'base64')
          FROM bench_subs s;
        DROP TABLE bench_subs;
    """)
    env.psql("VACUUM ANALYZE devices")
    env.psql("VACUUM ANALYZE device_wakeups")


def preload(env, n, shape, rep):
    """N recipients PUSH_SENT (one message, or one message each) with the intake's events."""
    acct = int(env.scalar("SELECT id FROM accounts WHERE name = 'test'"))
    first = int(env.scalar("SELECT coalesce(max(id), 0) FROM messages")) + 1
    r0 = int(env.scalar("SELECT coalesce(max(id), 0) FROM recipients"))
    history_cover(env, r0 + n)
    msgs = 1 if shape == "campaign" else n
    msg_of = f"{first}" if shape == "campaign" else f"{first - 1} + i"
    env.psql(f"""
        INSERT INTO messages (id, account_id, sender, body, purpose)
          SELECT {first - 1} + g, {acct}, 'BENCH', 'pushgate wake benchmark ' || {rep} || '/' || g,
                 CASE WHEN '{shape}' = 'single' THEN 'AUTH' ELSE 'NORMAL' END
          FROM generate_series(1, {msgs}) g;
        SELECT setval('messages_id_seq', {first - 1 + msgs});
        INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, expires_at, push_deadline)
          SELECT {r0} + i, {msg_of}, {acct}, ({MSISDN_BASE} + i - 1)::text, 'PUSH_SENT', 'push',
                 now() + interval '1 day', now() + interval '1 hour'
          FROM generate_series(1, {n}) i;
        SELECT setval('recipients_id_seq', {r0 + n});
        INSERT INTO events (recipient_id, message_id, account_id, state, detail)
          SELECT {r0} + i, {msg_of}, {acct}, s.state, s.detail
          FROM generate_series(1, {n}) i,
               (VALUES (1, 'ACCEPTED', 'http'), (2, 'PUSH_SENT', 'app installed: push first')) AS s(o, state, detail)
          ORDER BY i, s.o;
    """)
    for t in ("messages", "recipients", "events"):
        env.psql(f"VACUUM ANALYZE {t}")
    env.psql("CHECKPOINT")
    return first, first - 1 + msgs, r0


def print_statements(env):
    rows = env.sql("""
        SELECT calls, total_exec_time, total_plan_time, plans, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 60)
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pushgate')
          AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 8""")
    print("#   pg_stat_statements:   calls   exec s   plan s  plans  rows/call  statement")
    for calls, ms, pms, plans, nrows, q in rows:
        calls = int(calls)
        print(f"#   {'':<18} {calls:>6} {float(ms) / 1000:>8.3f} {float(pms) / 1000:>8.3f} {int(plans):>6}"
              f" {int(nrows) / calls if calls else 0:>10.1f}  {q}")


def one_rep(env, svc, n, shape, rep):
    first, last, r0 = preload(env, n, shape, rep)
    if statements_wanted():
        env.psql("SELECT pg_stat_statements_reset()")
    acc0 = svc.call("GET", "/stats")["accepted"]
    cpu0 = (proc_cpu(env.pushgated.pid), proc_cpu(svc.p.pid), postgres_cpu(env.pg_data))
    t0 = time.time()
    # what the intake does on commit: one NOTIFY per message (in chunks, as many intake groups would)
    for lo in range(first, last + 1, 10000):
        env.psql(f"SELECT pg_notify('pushgate_push', g::text) FROM generate_series({lo}, {min(last, lo + 9999)}) g")
    # the service's counter, not a query: polling the database would cost it more than the claims do
    deadline = time.monotonic() + max(120.0, n / 200.0)
    while time.monotonic() < deadline and svc.call("GET", "/stats")["accepted"] - acc0 < n:
        if not env.pushgated_alive():
            raise RuntimeError("pushgated exited during the run")
        time.sleep(0.2)
    left = None
    while time.monotonic() < deadline:   # then every outcome written
        left = int(env.scalar(f"SELECT {n} - count(*) FROM wakes WHERE recipient_id > {r0} AND done_at IS NOT NULL"))
        if left == 0:
            break
        time.sleep(0.2)
    cpu1 = (proc_cpu(env.pushgated.pid), proc_cpu(svc.p.pid), postgres_cpu(env.pg_data))
    if left != 0:
        raise RuntimeError(f"rep {rep}: {left} of {n} wakes without an outcome after the time limit")
    t_last = float(env.scalar(f"SELECT extract(epoch FROM max(done_at)) FROM wakes WHERE recipient_id > {r0}")) - t0
    bad = int(env.scalar(f"SELECT count(*) FROM wakes WHERE recipient_id > {r0} AND status <> 201"))
    accepted = svc.call("GET", "/stats")["accepted"] - acc0
    ev = int(env.scalar(f"SELECT count(*) FROM events WHERE recipient_id > {r0} AND kind = 'wake'"))
    if statements_wanted():
        print_statements(env)
    return {"rep": rep, "t": t_last, "rate": n / t_last, "bad": bad, "accepted": accepted, "events": ev,
            "cpu_pushgated": cpu1[0] - cpu0[0], "cpu_svc": cpu1[1] - cpu0[1], "cpu_pg": cpu1[2] - cpu0[2]}


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = env_int("BENCH_N", 5000 if quick else 100000)
    reps = env_int("BENCH_REPS", 1 if quick else 3)
    shape = os.environ.get("BENCH_SHAPE", "campaign")
    verify_every = env_int("BENCH_VERIFY_EVERY", 100)
    conc = env_int("BENCH_CONCURRENCY", 256)
    if shape not in ("campaign", "single"):
        print(f"BENCH_SHAPE must be campaign or single, not {shape!r}", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="pushgate-bench-wake-")
    print(f"# wake benchmark: N={n} devices with a Web Push subscription and no socket, shape={shape}, "
          f"reps={reps}, [wake] concurrency={conc}, the service verifies 1 push in {verify_every} "
          f"(synchronous_commit=on, fsync=on)", flush=True)
    cert = certificate(work)
    vapid, _ = vapid_key(work)
    svc = Service(work, "webpush-service", "--verify-every", str(verify_every))
    env = BenchEnv(ini={"push": {"push_timeout": 3600, "heartbeat": 300},
                        "webpush": {"vapid_key": vapid, "subject": "mailto:bench@pushgate.test"},
                        "wake": {"allow_internal": "127.0.0.1/32", "ca_file": cert, "concurrency": conc}},
                   daemon=False, smsc=False)
    results = []
    ok = True
    try:
        env.start()
        if statements_wanted():
            env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        insert_devices(env, svc, n, work)
        env.start_pushgated(wait_smpp=False)
        for rep in range(1, reps + 1):
            r = one_rep(env, svc, n, shape, rep)
            results.append(r)
            print(f"rep {rep}: {n} pushes in {r['t']:.2f} s = {r['rate']:,.0f} pushes/s; CPU s: pushgated "
                  f"{r['cpu_pushgated']:.2f} ({n / r['cpu_pushgated'] if r['cpu_pushgated'] else 0:,.0f} pushes per "
                  f"pushgated CPU second), PostgreSQL {r['cpu_pg']:.2f}, push service {r['cpu_svc']:.2f}; "
                  f"not 201: {r['bad']}; service accepted {r['accepted']}; wake events {r['events']}", flush=True)
            if r["bad"] or r["accepted"] != n or r["events"] != n:
                ok = False
        rss = 0
        with open(f"/proc/{env.pushgated.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        print(summary("pushes/s (wall)", [r["rate"] for r in results]))
        print(summary("pushes/pushgated CPU s", [n / r["cpu_pushgated"] for r in results if r["cpu_pushgated"]]))
        print(f"pushgated RSS at the end: {rss / 2**20:.1f} MiB")
    except Exception as e:
        ok = False
        print(f"# FAILED: {e}", flush=True)
        print(env.diagnostics() if env.tmp else "", flush=True)
    finally:
        env.teardown()
        svc.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
