#!/usr/bin/env python3
"""bench_engine.py: the SMPP engine benchmark, pushgated -> smsc-sim over loopback.

It preloads N recipients straight into PostgreSQL as SMS_QUEUED (one
messages row per 1000 recipients, route 'default', the ACCEPTED and
SMS_QUEUED events the HTTP intake would have written) while pushgated is
stopped, then starts pushgated and times how long the engine takes to lease,
submit and get every recipient to SMS_ACCEPTED (submit_sm/s) and to a final
state with its receipt matched (final/s).  It also reports the CPU seconds
of pushgated, smsc-sim and PostgreSQL (from /proc/<pid>/stat) and, from
pg_stat_statements, where PostgreSQL spent its time.  Each repetition starts
from truncated tables; min/median/max are printed at the end.

It reuses tests/harness.py's Env (private PostgreSQL with synchronous_commit
and fsync left on, smsc-sim, pushgated on free 127.0.0.1 ports) and never
touches anything else.  Every wait is bounded; everything it starts is
stopped on exit.  Standard library only.

Environment (defaults in brackets):
  BENCH_N [100000; 20000 with BENCH_QUICK=1]  recipients per repetition
  BENCH_REPS [3; 1 with BENCH_QUICK=1]         repetitions
  BENCH_WARMUP [1; 0 with BENCH_QUICK=1]       repetitions run first and not counted: a fresh
                                               cluster creates (zero-fills) its WAL segments
                                               during its first run, a running one recycles them
  BENCH_BINDS [2]  BENCH_WINDOW [1000]         [smpp] binds and window
  BENCH_BATCH_MAX [500]                        [database] batch_max
  BENCH_DLR_DELAY_MS [50]                      smsc-sim --dlr-delay-ms
  BENCH_BIND_MODE [trx]                        [smpp] bind_mode (trx | tx+rx)
  BENCH_STATEMENTS [0]                         print pg_stat_statements per rep (its tracking
                                               costs ~5% of the rate: off unless asked for)
  BENCH_PERF=FILE                              `perf record -a -g` during rep 1
  BENCH_AUTO_EXPLAIN_MS=MS                     auto_explain plans of statements slower than MS
  BENCH_ANALYZE [1]                            VACUUM ANALYZE after the preload
  BENCH_BACKLOG [0]                            also preload this many recipients waiting for
                                               a receipt that never comes (SMS_ACCEPTED, one
                                               part each, route 'backlog'): receipts must not
                                               slow down with the number of those waiting
  BENCH_PG_OPTS="-c k=v ..."                   extra PostgreSQL settings (plan experiments)
  BENCH_SETUP_SQL="..."                        SQL run once after the migrations (schema experiments)
  BENCH_TIMEOUT [max(60, N/1000*1.5)]          seconds a repetition may take
  BENCH_PG_LOG=PREFIX                          keep PREFIX.postgres.log, PREFIX.pushgated.log
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR          as for the integration tests
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from harness import Env, FINAL_STATES  # noqa: E402

from benchlib import env_int, history_cover, postgres_cpu, proc_cpu, statements_wanted, summary  # noqa: E402
FINALS_SQL = ",".join(f"'{s}'" for s in sorted(FINAL_STATES))


class BenchEnv(Env):
    """Env whose PostgreSQL loads pg_stat_statements (settings otherwise the defaults)."""

    def start_pg(self):
        libs = "pg_stat_statements"
        extra = ""
        explain_ms = os.environ.get("BENCH_AUTO_EXPLAIN_MS", "")
        if explain_ms:
            libs += ",auto_explain"
            extra = (f" -c auto_explain.log_min_duration={int(explain_ms)} -c auto_explain.log_analyze=on"
                     f" -c auto_explain.log_buffers=on -c auto_explain.log_nested_statements=on")
        opts = (f"-k {self.pg_sock} -p {self.pg_port} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=50 -c shared_preload_libraries={libs} "
                f"-c pg_stat_statements.track={'all' if statements_wanted() else 'none'} "
                f"-c pg_stat_statements.max=500" + extra
                + " " + os.environ.get("BENCH_PG_OPTS", "")).rstrip()
        self._pg_ctl("start", "-w", "-t", "60", "-l", self.pg_log, "-o", opts, timeout=90)
        self._pg_started = True


def preload(env, n):
    """N recipients as SMS_QUEUED, with the history the HTTP intake writes."""
    acct = int(env.scalar("SELECT id FROM accounts ORDER BY id LIMIT 1"))
    msgs = (n + 999) // 1000
    history_cover(env, n + env_int("BENCH_BACKLOG", 0))
    # Destinations end in 0..5: smsc-sim delivers those (6..9 are its failure suffixes).
    env.psql(f"""
        INSERT INTO messages (id, account_id, sender, body)
          SELECT g, {acct}, 'PUSHGATE', 'Your pushgate benchmark code is ' || (100000 + g)
          FROM generate_series(1, {msgs}) g;
        SELECT setval('messages_id_seq', {msgs});
        INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, route, expires_at)
          SELECT i, (i - 1) / 1000 + 1, {acct},
                 '4670' || lpad(((i - 1) / 6)::text, 7, '0') || ((i - 1) % 6)::text,
                 'SMS_QUEUED', 'sms', 'default', now() + interval '1 day'
          FROM generate_series(1, {n}) i;
        SELECT setval('recipients_id_seq', {n});
        INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)
          SELECT i, (i - 1) / 1000 + 1, {acct}, s.state, s.route, s.detail
          FROM generate_series(1, {n}) i,
               (VALUES (1, 'ACCEPTED', NULL, 'http'),
                       (2, 'SMS_QUEUED', 'default', 'no push channel')) AS s(o, state, route, detail)
          ORDER BY i, s.o;
    """)
    backlog = env_int("BENCH_BACKLOG", 0)
    if backlog > 0:
        bmsgs = (backlog + 999) // 1000
        env.psql(f"""
            INSERT INTO messages (id, account_id, sender, body)
              SELECT {msgs} + g, {acct}, 'BACKLOG', 'waiting for a receipt' FROM generate_series(1, {bmsgs}) g;
            SELECT setval('messages_id_seq', {msgs + bmsgs});
            INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, route, smsc_id,
                                    parts, attempts, expires_at)
              SELECT {n} + i, {msgs} + (i - 1) / 1000 + 1, {acct}, '4671' || lpad(i::text, 8, '0'),
                     'SMS_ACCEPTED', 'sms', 'backlog', 'B' || i, 1, 1, now() + interval '1 day'
              FROM generate_series(1, {backlog}) i;
            SELECT setval('recipients_id_seq', {n + backlog});
            INSERT INTO sms_parts (recipient_id, part_no, account_id, route, smsc_id, state)
              SELECT {n} + i, 1, {acct}, 'backlog', 'B' || i, 'SMS_ACCEPTED' FROM generate_series(1, {backlog}) i;
        """)
    if os.environ.get("BENCH_ANALYZE", "1") == "1":
        for t in ("messages", "recipients", "events", "sms_parts", "dlr_parked"):
            env.psql(f"VACUUM ANALYZE {t}")
    env.psql("CHECKPOINT")


def reset_tables(env):
    env.psql("TRUNCATE events, sms_parts, dlr_parked, recipients, messages, smpp_binds "
             "RESTART IDENTITY")


def statement_name(query):
    """Which of pushgated's statements a pg_stat_statements query text is."""
    q = " ".join(query.split())
    table = [
        ("sms_lease", "WITH q AS ( SELECT id FROM recipients WHERE state = 'SMS_QUEUED'"),
        ("sms_resp", "INSERT INTO sms_parts (recipient_id, part_no"),
        ("apply_parked", "DELETE FROM dlr_parked"),
        ("sms_receipts", "INSERT INTO dlr_parked"),
        ("sweep", "lease expired without a response"),
        ("bind_stats", "INSERT INTO smpp_binds"),
        ("poll (bench)", "count(*) FILTER"),
        ("COMMIT/sync", "COMMIT"),
    ]
    for name, needle in table:
        if needle in q:
            return name
    return q[:13]


class Poller:
    """One psql session kept open for the progress polls (no backend per poll)."""

    def __init__(self, env, n):
        self.n = n
        cmd = ["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(env.pg_port),
               "-U", "postgres", "-d", "pushgate"]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def counts(self):
        """(not yet accepted, not yet final) recipients."""
        self.p.stdin.write(
            "SELECT count(*) FILTER (WHERE state IN ('SMS_QUEUED','SMS_SUBMITTED')) || ' ' ||"
            f" count(*) FILTER (WHERE state NOT IN ({FINALS_SQL})) FROM recipients WHERE id <= {self.n};\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("polling psql ended")
        a, b = line.split()
        return int(a), int(b)

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait(timeout=10)


def one_rep(env, n, rep, perf_file):
    if env.pushgated_alive():
        env.stop_pushgated()
    reset_tables(env)
    preload(env, n)
    env.psql("SELECT pg_stat_statements_reset(), pg_stat_reset()")
    pg0 = postgres_cpu(env.pg_data)
    smsc0 = proc_cpu(env.smsc.pid)
    perf = None
    if perf_file and rep == 1:
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "499", "-o", perf_file],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    poller = Poller(env, n)
    t0 = time.time()
    env.start_pushgated(wait_smpp=False)
    t_acc = t_fin = None
    limit = float(os.environ.get("BENCH_TIMEOUT", "") or max(60.0, n / 1000.0 * 1.5))
    deadline = time.monotonic() + limit
    polls = 0
    try:
        while time.monotonic() < deadline:
            if not env.pushgated_alive():
                raise RuntimeError("pushgated exited during the run\n" + env.diagnostics())
            # pushgated's counters first (costs PostgreSQL nothing), then the database.
            if metric_sum(env, "receipts_total") < n:
                time.sleep(0.2)
                continue
            left_acc, left_fin = poller.counts()
            polls += 1
            now = time.time()
            if t_acc is None and left_acc == 0:
                t_acc = now - t0
            if left_fin == 0:
                t_fin = now - t0
                break
            time.sleep(0.1)
    finally:
        poller.close()
    pushgated_cpu = proc_cpu(env.pushgated.pid)
    smsc_cpu = proc_cpu(env.smsc.pid) - smsc0
    pg_cpu = postgres_cpu(env.pg_data) - pg0
    if perf is not None:
        perf.send_signal(2)
        try:
            perf.wait(timeout=60)
        except subprocess.TimeoutExpired:
            perf.kill()
            perf.wait(timeout=10)
    if t_fin is None:
        left = poller_left(env)
        print(f"# rep {rep}: DID NOT FINISH within {time.time() - t0:.0f} s: {left}; "
              f"all accepted (poll) at {t_acc if t_acc is None else round(t_acc, 2)} s", flush=True)
        env.stop_pushgated()
        return None
    # Exact times from PostgreSQL: events.at is clock_timestamp() of each insert.
    row = env.sql(f"""
        SELECT extract(epoch FROM min(at) FILTER (WHERE state = 'SMS_SUBMITTED')),
               extract(epoch FROM max(at) FILTER (WHERE state = 'SMS_ACCEPTED')),
               extract(epoch FROM max(at) FILTER (WHERE state IN ({FINALS_SQL}))),
               count(*), count(*) FILTER (WHERE kind = 'receipt')
        FROM events WHERE kind IN ('state', 'receipt') AND id > 2 * {n}""")[0]
    first_sub, last_acc, last_fin = (float(x) - t0 for x in row[:3])
    n_events, n_receipts = int(row[3]) + 2 * n, int(row[4])
    delivered = int(env.scalar("SELECT count(*) FROM recipients WHERE state = 'SMS_DELIVERED' AND route = 'default'"))
    parked = int(env.scalar("SELECT count(*) FROM dlr_parked"))
    attempts = int(env.scalar("SELECT coalesce(sum(attempts), 0) FROM recipients WHERE route = 'default'"))
    ok = delivered == n and parked == 0 and n_receipts == n and attempts == n
    if not ok:
        print(f"# rep {rep}: CHECK FAILED delivered={delivered}/{n} parked={parked} "
              f"receipts={n_receipts} attempts={attempts} events={n_events}", flush=True)
    stmts = env.sql("""
        SELECT query, calls, total_exec_time, rows, wal_bytes, shared_blks_hit + shared_blks_read
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pushgate')
        ORDER BY total_exec_time DESC""")
    env.stop_pushgated()
    # row updates that stayed on their page without new index entries (HOT), per table
    hot = env.sql("""
        SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
        WHERE relname IN ('recipients', 'sms_parts') ORDER BY relname""")
    return {
        "rep": rep, "ok": ok, "t_acc_poll": t_acc, "t_fin_poll": t_fin,
        "first_submit": first_sub, "t_acc": last_acc, "t_fin": last_fin,
        "submit_rate": n / last_acc, "final_rate": n / last_fin,
        "steady_submit_rate": n / (last_acc - first_sub),
        "cpu_pushgated": pushgated_cpu, "cpu_smsc": smsc_cpu, "cpu_pg": pg_cpu,
        "events": n_events, "polls": polls, "stmts": stmts, "hot": hot,
    }


def metric_sum(env, name):
    """Sum over binds of pushgate_smpp_<name> from GET /metrics (0 when unreachable)."""
    try:
        status, _, _, raw = env.http("GET", "/metrics", key=None, timeout=5)
    except OSError:
        return 0
    if status != 200:
        return 0
    total = 0
    prefix = f"pushgate_smpp_{name}{{"
    for line in raw.decode(errors="replace").splitlines():
        if line.startswith(prefix):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def poller_left(env):
    return env.sql("SELECT state, count(*) FROM recipients GROUP BY state ORDER BY state")


def print_statements(r, n):
    rows = []
    total = 0.0
    for q, calls, ms, nrows, wal, blks in r["stmts"]:
        calls, ms, nrows = int(calls), float(ms), int(nrows)
        total += ms
        rows.append((statement_name(q), calls, ms, nrows, int(wal), int(blks)))
    merged = {}
    for name, calls, ms, nrows, wal, blks in rows:
        m = merged.setdefault(name, [0, 0.0, 0, 0, 0])
        m[0] += calls
        m[1] += ms
        m[2] += nrows
        m[3] += wal
        m[4] += blks
    print(f"#   pg_stat_statements, rep {r['rep']} (exec time {total / 1000:.2f} s in all):")
    print("#   statement      calls   total s  share  ms/call  rows/call  WAL MB  blocks/call")
    for name, (calls, ms, nrows, wal, blks) in sorted(merged.items(), key=lambda kv: -kv[1][1])[:9]:
        print(f"#   {name[:13]:<13} {calls:>6} {ms / 1000:>9.2f} {100 * ms / total if total else 0:>5.1f}%"
              f" {ms / calls if calls else 0:>8.2f} {nrows / calls if calls else 0:>10.1f}"
              f" {wal / 1e6:>7.1f} {blks / calls if calls else 0:>12.0f}")
    sys.stdout.flush()


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = env_int("BENCH_N", 20000 if quick else 100000)
    reps = env_int("BENCH_REPS", 1 if quick else 3)
    warmup = env_int("BENCH_WARMUP", 0 if quick else 1)
    binds = env_int("BENCH_BINDS", 2)
    window = env_int("BENCH_WINDOW", 1000)
    batch_max = env_int("BENCH_BATCH_MAX", 500)
    dlr_delay = env_int("BENCH_DLR_DELAY_MS", 50)
    bind_mode = os.environ.get("BENCH_BIND_MODE", "trx")
    show_stmts = statements_wanted()
    perf_file = os.environ.get("BENCH_PERF") or None
    ini = {"smpp": {"binds": binds, "window": window, "bind_mode": bind_mode},
           "database": {"batch_max": batch_max}}
    print(f"# engine benchmark: N={n} reps={reps} (+{warmup} warm-up) binds={binds} bind_mode={bind_mode} "
          f"window={window} batch_max={batch_max} dlr_delay_ms={dlr_delay} "
          f"(synchronous_commit=on, fsync=on)", flush=True)
    env = BenchEnv(dlr_delay_ms=dlr_delay, ini=ini, daemon=False)
    results = []
    failed_reps = 0
    try:
        env.start()
        env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if os.environ.get("BENCH_SETUP_SQL", "").strip():
            env.psql(os.environ["BENCH_SETUP_SQL"])
        for rep in range(1 - warmup, reps + 1):
            r = one_rep(env, n, rep, perf_file)
            if r is None:
                failed_reps += 1
                break
            if rep >= 1:
                results.append(r)
            elif not r["ok"]:
                failed_reps += 1
            print(f"rep {rep}{' (warm-up, not counted)' if rep < 1 else ''}: submit_sm/s {r['submit_rate']:,.0f} (all accepted at {r['t_acc']:.2f} s; "
                  f"first submit at {r['first_submit']:.2f} s; steady {r['steady_submit_rate']:,.0f}/s)  "
                  f"final/s {r['final_rate']:,.0f} (all final at {r['t_fin']:.2f} s; seen by poll at "
                  f"{r['t_fin_poll']:.2f} s)  CPU s: pushgated {r['cpu_pushgated']:.2f} "
                  f"smsc-sim {r['cpu_smsc']:.2f} postgres {r['cpu_pg']:.2f}  "
                  f"{'ok' if r['ok'] else 'CHECK FAILED'}", flush=True)
            print("#   HOT row updates (no new index entries): "
                  + ", ".join(f"{rel} {int(h):,} of {int(u):,}" for rel, u, h in r["hot"]), flush=True)
            if show_stmts:
                print_statements(r, n)
    except BaseException:
        env.failed = True
        print(env.diagnostics(), file=sys.stderr)
        raise
    finally:
        keep_log = os.environ.get("BENCH_PG_LOG")
        if keep_log and env.tmp:
            for name in ("postgres.log", "pushgated.log"):
                src = os.path.join(env.tmp, name)
                if os.path.exists(src):
                    with open(src, "rb") as fi, open(f"{keep_log}.{name}", "wb") as fo:
                        fo.write(fi.read())
        env.teardown()
    if not results:
        print("no repetition finished: see the lines above")
        return 1
    print(f"summary over {len(results)} reps, N={n}:{'':<6} {'min':>10} {'median':>10} {'max':>10}")
    print(summary("submit_sm/s", [r["submit_rate"] for r in results]))
    print(summary("final/s (receipts matched)", [r["final_rate"] for r in results]))
    print(summary("steady submit_sm/s", [r["steady_submit_rate"] for r in results]))
    print(summary("CPU s pushgated", [r["cpu_pushgated"] for r in results], "{:.2f}"))
    print(summary("CPU s smsc-sim", [r["cpu_smsc"] for r in results], "{:.2f}"))
    print(summary("CPU s postgres", [r["cpu_pg"] for r in results], "{:.2f}"))
    print(summary("CPU us/recipient, all", [1e6 * (r["cpu_pushgated"] + r["cpu_smsc"] + r["cpu_pg"]) / n
                                              for r in results], "{:.1f}"))
    sys.stdout.flush()
    return 0 if not failed_reps and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
