#!/usr/bin/env python3
"""bench_push.py: the push channel benchmark, pushgate-device -> pushgated over loopback.

(a) Idle connections: N verified devices are inserted straight into the
    devices table (token "dt_" + 64 hex, token_hash = SHA-256 of the token
    text, as src/devices.c stores it) instead of N one-time-code round
    trips; one pushgate-device process then opens N WebSockets (hello /
    welcome) spread over several 127.0.0.x source addresses so the ephemeral
    port range is no limit.  pushgated's RSS (VmRSS) before and after, over
    N, is the memory per connection.

(b) Push throughput: with every device connected, M recipients (round robin
    over the devices, 1000 per message) are preloaded as PUSH_SENT the way
    the HTTP intake writes them, then announced with NOTIFY pushgate_push
    (what the intake does on commit), and timed until every one is
    PUSH_DELIVERED, i.e. pushed, acked by a device and the ack committed with
    its event.  BENCH_MODE=http sends them through POST /v1/messages
    instead (1000 recipients per request, one client), timing intake too.
    Rates come from PostgreSQL's clock: events.at is clock_timestamp().

It reuses tests/harness.py's Env (private PostgreSQL with synchronous_commit
and fsync on, pushgated on free 127.0.0.1 ports; smsc-sim only with BENCH_SMSC=1).  RLIMIT_NOFILE
is raised for itself and its children (pushgated, pushgate-device) when
allowed.  Every wait is bounded; everything it starts is stopped on exit.
Standard library only.

Environment (defaults in brackets):
  BENCH_N [50000; 2000 with BENCH_QUICK=1]   devices = idle connections (lowered to the
                                             RLIMIT_NOFILE hard limit - 1024 when that is less)
  BENCH_MSGS [2 * N; N with BENCH_QUICK=1]   recipients pushed per repetition
  BENCH_REPS [3; 1 with BENCH_QUICK=1]       repetitions of (b)
  BENCH_MODE [notify]                        notify | http (see above)
  BENCH_STATEMENTS [1]                       print the top pg_stat_statements per rep
  BENCH_SMSC [0]                             1: start smsc-sim too, so the SMPP engine is bound
                                             and polls for SMS work beside the pushes
  BENCH_SOURCES [N / 20000 + 1]              127.0.0.2 ... source addresses
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR        as for the integration tests
"""

import hashlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from harness import Env  # noqa: E402

from benchlib import env_int, history_cover, postgres_cpu, proc_cpu, summary  # noqa: E402
MSISDN_BASE = 821090000000
PER_MESSAGE = 1000


def token_of(i):
    return "dt_" + hashlib.sha256(f"pushgate-bench-{i}".encode()).hexdigest()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return need
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Device:
    """pushgate-device in the background; its stdout lines are kept."""

    def __init__(self, env, tokens, n, sources):
        self.lines = []
        self.lock = threading.Lock()
        cmd = [os.path.join(env.builddir, "pushgate-device"), "--url", f"http://127.0.0.1:{env.http_port}",
               "--tokens", tokens, "--devices", str(n), "--duration", "3600", "--report-every", "0.5",
               "--max-connecting", "512"]
        if sources:
            cmd += ["--source-addrs", ",".join(sources)]
        self.log_path = os.path.join(env.tmp, "pushgate-device.log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
                                  text=True, bufsize=1)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def find(self, prefix):
        with self.lock:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
        return None

    def last_report(self):
        with self.lock:
            for line in reversed(self.lines):
                if line.startswith("devices="):
                    return dict(kv.split("=", 1) for kv in line.split())
        return {}

    def stop(self, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=10)
        self.t.join(timeout=10)
        self.log.close()
        return self.p.returncode

    def tail(self, n=20):
        with open(self.log_path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")


class BenchEnv(Env):
    """Env whose PostgreSQL loads pg_stat_statements, to show where each rep's time went."""

    def start_pg(self):
        opts = (f"-k {self.pg_sock} -p {self.pg_port} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=50 -c shared_preload_libraries=pg_stat_statements "
                f"-c pg_stat_statements.track=all -c pg_stat_statements.max=500")
        self._pg_ctl("start", "-w", "-t", "60", "-l", self.pg_log, "-o", opts, timeout=90)
        self._pg_started = True


def print_statements(env):
    rows = env.sql("""
        SELECT calls, total_exec_time, rows, wal_bytes, shared_blks_written,
               left(regexp_replace(query, '\\s+', ' ', 'g'), 60)
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pushgate')
          AND query NOT LIKE '%pg_stat_statements%'
        ORDER BY total_exec_time DESC LIMIT 6""")
    print("#   pg_stat_statements: calls   total s   rows/call  WAL MB  blks written  statement")
    for calls, ms, nrows, wal, written, q in rows:
        calls, ms, nrows = int(calls), float(ms), int(nrows)
        print(f"#   {'':<16} {calls:>6} {ms / 1000:>9.3f} {nrows / calls if calls else 0:>11.1f}"
              f" {int(wal) / 1e6:>7.1f} {int(written):>13}  {q}")
    sys.stdout.flush()


def insert_devices(env, n):
    env.psql(f"""
        INSERT INTO devices (msisdn, platform, token_hash, verified_at)
          SELECT ({MSISDN_BASE} + i)::text, 'bench',
                 sha256(convert_to('dt_' || encode(sha256(convert_to('pushgate-bench-' || i, 'UTF8')), 'hex'), 'UTF8')),
                 now()
          FROM generate_series(0, {n - 1}) i;
    """)
    env.psql("VACUUM ANALYZE devices")


def write_tokens(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"{MSISDN_BASE + i} {token_of(i)}\n")


def preload_push(env, n_dev, m, rep):
    """M recipients as PUSH_SENT with the intake's events; returns (first, last) message id."""
    acct = int(env.scalar("SELECT id FROM accounts WHERE name = 'test'"))
    first = int(env.scalar("SELECT coalesce(max(id), 0) FROM messages")) + 1
    r0 = int(env.scalar("SELECT coalesce(max(id), 0) FROM recipients"))
    history_cover(env, r0 + m)
    msgs = (m + PER_MESSAGE - 1) // PER_MESSAGE
    env.psql(f"""
        INSERT INTO messages (id, account_id, sender, body)
          SELECT {first - 1} + g, {acct}, 'BENCH' || ({rep} % 10), 'pushgate benchmark ' || g
          FROM generate_series(1, {msgs}) g;
        SELECT setval('messages_id_seq', {first - 1 + msgs});
        INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, expires_at, push_deadline)
          SELECT {r0} + i, {first - 1} + (i - 1) / {PER_MESSAGE} + 1, {acct},
                 ({MSISDN_BASE} + (i - 1) % {n_dev})::text, 'PUSH_SENT', 'push',
                 now() + interval '1 day', now() + interval '1 hour'
          FROM generate_series(1, {m}) i;
        SELECT setval('recipients_id_seq', {r0 + m});
        INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)
          SELECT {r0} + i, {first - 1} + (i - 1) / {PER_MESSAGE} + 1, {acct}, s.state, NULL, s.detail
          FROM generate_series(1, {m}) i,
               (VALUES (1, 'ACCEPTED', 'http'), (2, 'PUSH_SENT', 'app installed: push first')) AS s(o, state, detail)
          ORDER BY i, s.o;
    """)
    for t in ("messages", "recipients", "events"):
        env.psql(f"VACUUM ANALYZE {t}")
    env.psql("CHECKPOINT")
    return first, first - 1 + msgs, r0


def send_http(env, n_dev, m, rep):
    """POST /v1/messages, 1000 recipients each; returns seconds spent in intake."""
    t0 = time.time()
    sent = 0
    k = 0
    while sent < m:
        cnt = min(PER_MESSAGE, m - sent)
        to = [str(MSISDN_BASE + (sent + j) % n_dev) for j in range(cnt)]
        env.send(to, text=f"pushgate benchmark {rep}/{k}", sender=f"BENCH{rep % 10}")
        sent += cnt
        k += 1
    return time.time() - t0


def one_rep(env, dev, n_dev, m, rep, mode):
    r0 = int(env.scalar("SELECT coalesce(max(id), 0) FROM recipients"))
    e0 = int(env.scalar("SELECT coalesce(max(id), 0) FROM events"))
    acks0 = int(dev.last_report().get("acks", 0))
    if mode == "notify":
        first, last, r0 = preload_push(env, n_dev, m, rep)
    env.psql("SELECT pg_stat_statements_reset()")
    cpu0 = (proc_cpu(env.pushgated.pid), proc_cpu(dev.p.pid), postgres_cpu(env.pg_data))
    t0 = time.time()
    intake_s = None
    if mode == "notify":
        env.psql(f"SELECT pg_notify('pushgate_push', g::text) FROM generate_series({first}, {last}) g")
    else:
        intake_s = send_http(env, n_dev, m, rep)
    deadline = time.monotonic() + max(120.0, m / 1000.0 * 3)
    left = None
    while time.monotonic() < deadline:
        if not env.pushgated_alive():
            raise RuntimeError("pushgated exited during the run")
        left = int(env.scalar(f"SELECT count(*) FROM recipients WHERE id > {r0} AND state <> 'PUSH_DELIVERED'"))
        if left == 0:
            break
        time.sleep(0.2)
    t_poll = time.time() - t0
    cpu1 = (proc_cpu(env.pushgated.pid), proc_cpu(dev.p.pid), postgres_cpu(env.pg_data))
    if left != 0:
        states = env.sql(f"SELECT state, count(*) FROM recipients WHERE id > {r0} GROUP BY 1 ORDER BY 1")
        raise RuntimeError(f"rep {rep}: {left} of {m} recipients not PUSH_DELIVERED after the time limit: {states}")
    row = env.sql(f"""
        SELECT extract(epoch FROM max(at) FILTER (WHERE state = 'PUSH_DELIVERED')),
               count(*) FILTER (WHERE state = 'PUSH_DELIVERED'),
               extract(epoch FROM min(at) FILTER (WHERE state = 'PUSH_DELIVERED'))
        FROM events WHERE id > {e0}""")[0]
    t_last = float(row[0]) - t0
    delivered_events = int(row[1])
    t_first = float(row[2]) - t0
    # how many transactions committed the acks (xmin of the recipient rows)
    ack_txns = int(env.scalar(f"SELECT count(DISTINCT xmin::text) FROM recipients WHERE id > {r0}"))
    until = time.monotonic() + 10.0   # the device reports twice a second
    while int(dev.last_report().get("acks", 0)) - acks0 < m and time.monotonic() < until:
        time.sleep(0.1)
    acks = int(dev.last_report().get("acks", 0)) - acks0
    return {"rep": rep, "t_last": t_last, "t_first": t_first, "ack_txns": ack_txns, "t_poll": t_poll, "rate": m / t_last, "intake_s": intake_s,
            "events_ok": delivered_events == m, "acks": acks,
            "cpu_pushgated": cpu1[0] - cpu0[0], "cpu_device": cpu1[1] - cpu0[1], "cpu_pg": cpu1[2] - cpu0[2]}


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = env_int("BENCH_N", 2000 if quick else 50000)
    m = env_int("BENCH_MSGS", n if quick else 2 * n)
    reps = env_int("BENCH_REPS", 1 if quick else 3)
    mode = os.environ.get("BENCH_MODE", "notify")
    show_stmts = os.environ.get("BENCH_STATEMENTS", "1") == "1"
    with_smsc = os.environ.get("BENCH_SMSC", "0") == "1"
    if mode not in ("notify", "http"):
        print(f"BENCH_MODE must be notify or http, not {mode!r}", file=sys.stderr)
        return 2
    nofile = raise_nofile(n + 4096)
    if nofile < n + 1024:
        # pushgated holds one descriptor per device: the hard limit caps N (raising it needs CAP_SYS_RESOURCE)
        print(f"# RLIMIT_NOFILE hard limit {nofile} < N + 1024: N lowered from {n} to {nofile - 1024} "
              f"(N={n} needs `ulimit -Hn {n + 1024}` or more)", flush=True)
        n = nofile - 1024
        m = env_int("BENCH_MSGS", n if quick else 2 * n)
    nsrc = env_int("BENCH_SOURCES", n // 20000 + 1)
    sources = [f"127.0.0.{2 + i}" for i in range(nsrc)]
    print(f"# push benchmark: N={n} devices, M={m} pushes per rep, reps={reps}, mode={mode}, "
          f"sources={nsrc}, RLIMIT_NOFILE={nofile}, smsc-sim={'yes' if with_smsc else 'no'} "
          f"(synchronous_commit=on, fsync=on)", flush=True)
    if n < 1:
        return 1
    env = BenchEnv(ini={"push": {"push_timeout": 3600, "heartbeat": 300},
                        "server": {"max_recipients": PER_MESSAGE}}, daemon=False, smsc=with_smsc)
    dev = None
    results = []
    ok = True
    try:
        env.start()
        env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        insert_devices(env, n)
        tokens = os.path.join(env.tmp, "tokens.txt")
        write_tokens(tokens, n)
        env.start_pushgated(wait_smpp=False)
        time.sleep(1.0)
        rss0 = rss_bytes(env.pushgated.pid)
        cpu0 = proc_cpu(env.pushgated.pid)
        t0 = time.time()
        dev = Device(env, tokens, n, sources)
        deadline = time.monotonic() + max(60.0, n / 200.0)
        while time.monotonic() < deadline and not dev.find("event=all_connected"):
            if dev.p.poll() is not None:
                raise RuntimeError("pushgate-device exited early:\n" + dev.tail())
            if not env.pushgated_alive():
                raise RuntimeError("pushgated exited while devices connected")
            time.sleep(0.1)
        line = dev.find("event=all_connected")
        if not line:
            raise RuntimeError(f"not all {n} devices connected in time: {dev.last_report()}\n" + dev.tail())
        t_conn = float(dict(kv.split("=", 1) for kv in line.split())["t"])
        cpu_conn = proc_cpu(env.pushgated.pid) - cpu0
        time.sleep(3.0)
        rss1 = rss_bytes(env.pushgated.pid)
        rss_dev = rss_bytes(dev.p.pid)
        per_conn = (rss1 - rss0) / n
        print(f"idle: {n} connections in {t_conn:.2f} s ({n / t_conn:,.0f}/s, pushgated CPU {cpu_conn:.2f} s); "
              f"pushgated RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB = {per_conn:,.0f} bytes/connection "
              f"(target <= 10240); pushgate-device RSS {rss_dev / 2**20:.1f} MiB "
              f"({rss_dev / n:,.0f} bytes/connection)  {'ok' if per_conn <= 10240 else 'ABOVE TARGET'}",
              flush=True)
        for rep in range(1, reps + 1):
            r = one_rep(env, dev, n, m, rep, mode)
            results.append(r)
            good = r["events_ok"] and r["acks"] >= m
            ok = ok and good
            intake = f"intake {r['intake_s']:.2f} s; " if r["intake_s"] is not None else ""
            print(f"rep {rep}: {m} pushes delivered at {r['t_last']:.2f} s = {r['rate']:,.0f}/s "
                  f"({intake}first ack committed at {r['t_first']:.2f} s, {r['ack_txns']} ack transactions; "
                  f"seen by poll at {r['t_poll']:.2f} s; device acks {r['acks']})  CPU s: pushgated "
                  f"{r['cpu_pushgated']:.2f} pushgate-device {r['cpu_device']:.2f} postgres {r['cpu_pg']:.2f}  "
                  f"{'ok' if good else 'CHECK FAILED'}", flush=True)
            if show_stmts:
                print_statements(env)
        rep_line = dev.last_report()
        rc = dev.stop()
        summ = dev.find("summary ")
        dev = None
        print(f"# pushgate-device: exit {rc}, {summ}", flush=True)
        ok = ok and rc == 0 and int(rep_line.get("errors", 1)) == 0
    except BaseException:
        env.failed = True
        if dev is not None:
            print(dev.tail(), file=sys.stderr)
        print(env.diagnostics(), file=sys.stderr)
        raise
    finally:
        if dev is not None:
            dev.stop()
        env.teardown()
    if results:
        print(f"summary over {len(results)} reps, N={n}, M={m}:{'':<3} {'min':>10} {'median':>10} {'max':>10}")
        print(summary("pushes delivered/s", [r["rate"] for r in results]))
        print(summary("CPU s pushgated", [r["cpu_pushgated"] for r in results], "{:.2f}"))
        print(summary("CPU s pushgate-device", [r["cpu_device"] for r in results], "{:.2f}"))
        print(summary("CPU s postgres", [r["cpu_pg"] for r in results], "{:.2f}"))
        print(summary("CPU us/push, server side", [1e6 * (r["cpu_pushgated"] + r["cpu_pg"]) / m
                                                   for r in results], "{:.1f}"))
    sys.stdout.flush()
    return 0 if ok and results else 1


if __name__ == "__main__":
    sys.exit(main())
