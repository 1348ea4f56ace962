#!/usr/bin/env python3
"""bench_single.py: one message per request, driven by wrk, on a database with history.

The everyday shape: an OTP per HTTP request (`POST /v1/messages`, one
recipient, a new number each time) over BENCH_CONNS keep-alive connections,
while the SMS engine delivers every accepted recipient to smsc-sim.  Before
each run the database is preloaded with BENCH_HISTORY single-recipient
messages already delivered (their recipients, events and SMS parts, as the
real path writes them), so the figures say how the path behaves as tables
fill.  For each history size it prints:

  accepted/s and latency (p50/p90/p99, from wrk --latency), non-202 answers;
  end to end: the time from wrk's start until every accepted recipient is final;
  PostgreSQL CPU per accepted request (all backends, from /proc);
  for the intake statement (pg_stat_statements, track_planning on):
  calls, plans, mean planning and execution time.

wrk (Debian's, with a Lua script) is the load generator: a Python client
would measure itself.  It reuses tests/harness.py's Env (private PostgreSQL,
synchronous_commit and fsync on, smsc-sim, pushgated on 127.0.0.1) and
bench_engine's PostgreSQL settings.  Every wait is bounded.

Environment (defaults in brackets):
  BENCH_HISTORY [10000,1000000; 10000 with BENCH_QUICK=1]  preloaded messages, one run each
  BENCH_SECONDS [20; 5 with BENCH_QUICK=1]   wrk duration (after a 3 s warm-up run)
  BENCH_CONNS [50]                           wrk connections (2 threads)
  BENCH_RANGE [1000000]                      recipient ids per history range (sql/029) of the preload
  BENCH_DLR_DELAY_MS [50]                    smsc-sim --dlr-delay-ms
  BENCH_PG_OPTS="-c k=v ..."                 extra PostgreSQL settings
  BENCH_AUTO_EXPLAIN_MS=MS                   auto_explain plans of statements slower than MS
  BENCH_PG_LOG=PREFIX                        keep PREFIX.postgres.log, PREFIX.pushgated.log
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR        as for the integration tests
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from harness import FINAL_STATES  # noqa: E402

from bench_engine import BenchEnv  # noqa: E402
from benchlib import WRK_THREADS_LUA, env_int, postgres_cpu, preload_history, proc_cpu  # noqa: E402

FINALS_SQL = ",".join(f"'{s}'" for s in sorted(FINAL_STATES))

# One request = one message to one new number.  Each wrk thread numbers its
# own requests; numbers end in 0..5 (smsc-sim delivers those).
WRK_LUA = WRK_THREADS_LUA + r"""
local run = os.getenv("BENCH_RUN") or "1"
function init(args)
  n = 0
  hdrs = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY") }
end
function request()
  n = n + 1
  local to = string.format("8219%1d%1d%06d%1d", tonumber(run) % 10, tid, n % 1000000, n % 6)
  local body = '{"from":"PUSHGATE","to":["' .. to .. '"],"text":"Your pushgate code is ' .. (100000 + n % 900000) .. '"}'
  return wrk.format("POST", "/v1/messages", hdrs, body)
end
"""


def reset_tables(env):
    env.psql("TRUNCATE events, sms_parts, dlr_parked, webhook_outbox, recipients, messages, smpp_binds "
             "RESTART IDENTITY CASCADE")


def wrk(env, lua, seconds, conns, run):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", lua,
           f"http://127.0.0.1:{env.http_port}/"]
    e = dict(os.environ, BENCH_KEY=env.key, BENCH_RUN=str(run))
    r = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk exited {r.returncode}: {r.stderr[-500:]}")
    return parse_wrk(r.stdout)


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def parse_wrk(out):
    res = {"raw": out}
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    res["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1))
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        res[f"p{p}"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def intake_stats(env):
    rows = env.sql("""
        SELECT calls, plans, total_plan_time, total_exec_time FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pushgate')
          AND query LIKE '%INSERT INTO messages (id, account_id, sender, body%'""")
    calls = plans = 0
    plan_ms = exec_ms = 0.0
    for c, p, pt, et in rows:
        calls += int(c)
        plans += int(p)
        plan_ms += float(pt)
        exec_ms += float(et)
    return calls, plans, plan_ms, exec_ms


def top_statements(env, n=8):
    """(calls, plans, ms, rows, query) of the statements PostgreSQL spent most time on."""
    return env.sql(f"""
        SELECT calls, plans, total_plan_time + total_exec_time, rows,
               left(regexp_replace(query, '\\s+', ' ', 'g'), {int(os.environ.get("BENCH_QUERY_CHARS", "60"))})
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pushgate')
        ORDER BY total_plan_time + total_exec_time DESC LIMIT {int(n)}""")


def print_top(top):
    print("#   where PostgreSQL spent its time (pg_stat_statements, planning + execution):")
    for c, p, ms, nrows, q in top:
        c, p, ms, nrows = int(c), int(p), float(ms), int(nrows)
        print(f"#   {c:>8,} calls {p:>6,} plans {ms / 1000:>7.2f} s {ms * 1000 / max(c, 1):>8.0f} us/call "
              f"{nrows / max(c, 1):>7.1f} rows/call  {q}", flush=True)


def one_run(env, lua, history, seconds, conns, run):
    if env.pushgated_alive():
        env.stop_pushgated()
    reset_tables(env)
    t = time.monotonic()
    preload_history(env, history)
    load_s = time.monotonic() - t
    env.start_pushgated()
    wrk(env, lua, 3, conns, run * 10)          # warm-up: connections, caches, plans
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients WHERE id > {history} "
                                    f"AND state NOT IN ({FINALS_SQL})") == "0",
                 timeout=120, interval=0.2, what="warm-up recipients final")
    first_new = int(env.scalar("SELECT coalesce(max(id), 0) FROM recipients")) + 1
    env.psql("SELECT pg_stat_statements_reset()")
    pg0, pd0 = postgres_cpu(env.pg_data), proc_cpu(env.pushgated.pid)
    t0 = time.time()
    w = wrk(env, lua, seconds, conns, run * 10 + 1)
    accepted = int(env.scalar(f"SELECT count(*) FROM recipients WHERE id >= {first_new}"))
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients WHERE id >= {first_new} "
                                    f"AND state NOT IN ({FINALS_SQL})") == "0",
                 timeout=max(120, accepted / 200), interval=0.2, what="every accepted recipient final")
    last_final = float(env.scalar(f"SELECT extract(epoch FROM max(final_at)) FROM recipients "
                                  f"WHERE id >= {first_new}"))
    pg_cpu, pd_cpu = postgres_cpu(env.pg_data) - pg0, proc_cpu(env.pushgated.pid) - pd0
    calls, plans, plan_ms, exec_ms = intake_stats(env)
    top = top_statements(env, env_int("BENCH_TOP", 8))
    bad = int(env.scalar(f"SELECT count(*) FROM recipients WHERE id >= {first_new} "
                         "AND state <> 'SMS_DELIVERED'"))
    env.stop_pushgated()
    return {
        "history": history, "load_s": load_s, "wrk": w, "accepted": accepted,
        "e2e_rate": accepted / (last_final - t0), "pg_us": pg_cpu / max(accepted, 1) * 1e6,
        "pd_us": pd_cpu / max(accepted, 1) * 1e6, "calls": calls, "plans": plans,
        "plan_ms": plan_ms / max(calls, 1), "exec_ms": exec_ms / max(calls, 1), "not_delivered": bad,
        "top": top,
    }


def main():
    if shutil.which("wrk") is None:
        print("bench_single: wrk is missing (apt-get install wrk)", file=sys.stderr)
        return 1
    quick = os.environ.get("BENCH_QUICK") == "1"
    hist = os.environ.get("BENCH_HISTORY", "10000" if quick else "10000,1000000")
    histories = [int(x) for x in hist.split(",") if x.strip()]
    seconds = env_int("BENCH_SECONDS", 5 if quick else 20)
    conns = env_int("BENCH_CONNS", 50)
    dlr_delay = env_int("BENCH_DLR_DELAY_MS", 50)
    os.environ.setdefault("BENCH_STATEMENTS", "1")   # BenchEnv: pg_stat_statements.track = all
    os.environ["BENCH_PG_OPTS"] = (os.environ.get("BENCH_PG_OPTS", "")
                                   + " -c pg_stat_statements.track_planning=on").strip()
    print(f"# single-message benchmark: POST /v1/messages, 1 recipient per request, {conns} connections, "
          f"wrk {seconds} s per run, history {histories} messages (synchronous_commit=on, fsync=on)",
          flush=True)
    env = BenchEnv(dlr_delay_ms=dlr_delay, daemon=False, ini={"smpp": {"window": 1000}})
    results = []
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA)
        lua = f.name
    try:
        env.start()
        env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for i, h in enumerate(histories, 1):
            r = one_run(env, lua, h, seconds, conns, i)
            results.append(r)
            w = r["wrk"]
            print(f"# history {h:>9,}: preload {r['load_s']:.0f} s; {w['rps']:,.0f} accepted/s "
                  f"(p50 {w['p50']:.1f} ms, p90 {w['p90']:.1f} ms, p99 {w['p99']:.1f} ms, "
                  f"non-202 {w['non2xx']}, socket errors {w['socket_errors']}); "
                  f"end to end {r['e2e_rate']:,.0f} msg/s; PostgreSQL {r['pg_us']:.0f} us and "
                  f"pushgated {r['pd_us']:.0f} us CPU per request; intake: {r['calls']:,} calls, "
                  f"{r['plans']:,} plans, {r['plan_ms']:.3f} ms planning + {r['exec_ms']:.3f} ms execution "
                  f"per call; {r['not_delivered']} not delivered", flush=True)
            print_top(r["top"])
    finally:
        os.unlink(lua)
        keep_log = os.environ.get("BENCH_PG_LOG")
        if keep_log and env.tmp:
            for name in ("postgres.log", "pushgated.log"):
                src = os.path.join(env.tmp, name)
                if os.path.exists(src):
                    shutil.copyfile(src, f"{keep_log}.{name}")
        env.teardown()
    print("single-message summary (history, accepted/s, p99 ms, end-to-end msg/s, PostgreSQL us/request, "
          "intake plans/calls):")
    for r in results:
        print(f"  {r['history']:>9,} {r['wrk']['rps']:>10,.0f} {r['wrk']['p99']:>8.1f} {r['e2e_rate']:>10,.0f} "
              f"{r['pg_us']:>8.0f} {r['plans']:>8,}/{r['calls']:,}")
    if len(results) >= 2 and results[0]["pg_us"] > 0:
        print(f"  PostgreSQL CPU per request at {results[-1]['history']:,} vs {results[0]['history']:,}: "
              f"{results[-1]['pg_us'] / results[0]['pg_us']:.2f}x")
    return 0 if all(r["not_delivered"] == 0 and r["wrk"]["non2xx"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
