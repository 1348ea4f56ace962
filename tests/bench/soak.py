#!/usr/bin/env python3
"""soak.py: pushgated under a steady load for a long time; RSS, descriptors and latency each minute.

The everyday shape at a fixed rate: one recipient per POST /v1/messages
over SOAK_CONNS keep-alive connections, SOAK_RATE requests a second in all
(h2load --h1 --rps: a fixed rate, not as fast as it goes), while the SMS
engine delivers every accepted recipient to smsc-sim.  Each minute is one
h2load run; between runs it samples pushgated's RSS and open descriptors,
the recipients not yet final, and prints one line:

  minute, accepted/s, non-2xx, request time mean/max (ms), RSS MB, fds, backlog

At the end: RSS and fds of the first and last quarter of the minutes, and
the growth between them (flat means the daemon holds nothing per message);
then, per table pushgated rewrites, live and dead rows, autovacuum runs,
size, and dead and free space (pgstattuple_approx): the bloat the soak left.
Numbers repeat (one body for every request): the per-number path, as OTPs
to the same users do.

Environment (defaults in brackets):
  SOAK_MINUTES [60]    minutes of load
  SOAK_RATE [2500]     requests a second (half of what bench_single measures on this machine)
  SOAK_CONNS [10]      connections (the rate is split between them)
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR   as for the integration tests
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from harness import FINAL_STATES  # noqa: E402

from bench_engine import BenchEnv  # noqa: E402
from benchlib import env_int  # noqa: E402

FINALS_SQL = ",".join(f"'{s}'" for s in sorted(FINAL_STATES))


def resources(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return rss / 1024.0, fds


def h2load(env, body_path, rate, conns, seconds):
    """One fixed-rate run: (requests 2xx, non-2xx, mean ms, max ms)."""
    per_client = max(1, rate // conns)
    cmd = ["h2load", "--h1", "-c", str(conns), "--rps", str(per_client), "-D", str(seconds),
           "-d", body_path, "-H", "Content-Type: application/json",
           "-H", f"Authorization: Bearer {env.key}", f"http://127.0.0.1:{env.http_port}/v1/messages"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    ok, bad = (int(m.group(1)), int(m.group(3)) + int(m.group(4))) if m else (0, -1)
    t = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)

    def ms(v):
        return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") \
            else float(v[:-1]) * 1000

    return ok, bad, (ms(t.group(3)) if t else -1), (ms(t.group(2)) if t else -1)


def main():
    minutes = env_int("SOAK_MINUTES", 60)
    rate = env_int("SOAK_RATE", 2500)
    conns = env_int("SOAK_CONNS", 10)
    with BenchEnv(dlr_delay_ms=50, ini={"smpp": {"window": "1000"}}) as env:
        body = os.path.join(env.tmp, "body.json")
        with open(body, "w") as f:
            json.dump({"from": "PUSHGATE", "to": ["821077000000"], "text": "Your code is 123456"}, f)
        pid = env.pushgated.pid
        print(f"# soak: {minutes} min at {rate} requests/s over {conns} connections; pushgated pid {pid}",
              flush=True)
        print(f"{'min':>4} {'acc/s':>8} {'non2xx':>7} {'mean ms':>8} {'max ms':>8} {'RSS MB':>8} {'fds':>5} "
              f"{'backlog':>8}", flush=True)
        rows = []
        for m in range(1, minutes + 1):
            ok, bad, mean, mx = h2load(env, body, rate, conns, 60)
            rss, fds = resources(pid)
            backlog = int(env.scalar(f"SELECT count(*) FROM recipients WHERE state NOT IN ({FINALS_SQL})"))
            rows.append((m, ok / 60.0, bad, mean, mx, rss, fds, backlog))
            print(f"{m:>4} {ok / 60.0:>8,.0f} {bad:>7} {mean:>8.1f} {mx:>8.1f} {rss:>8.1f} {fds:>5} {backlog:>8}",
                  flush=True)
        q = max(1, len(rows) // 4)
        first, last = rows[:q], rows[-q:]
        avg = lambda rs, i: sum(r[i] for r in rs) / len(rs)
        print(f"# RSS MB first quarter {avg(first, 5):.1f}, last quarter {avg(last, 5):.1f} "
              f"({avg(last, 5) - avg(first, 5):+.1f}); fds {avg(first, 6):.1f} -> {avg(last, 6):.1f}; "
              f"mean request ms {avg(first, 3):.1f} -> {avg(last, 3):.1f}; "
              f"recipients stored {env.scalar('SELECT count(*) FROM recipients')}", flush=True)
        bloat(env)


BLOAT_TABLES = ("recipients", "sms_parts", "events", "messages", "webhook_outbox", "smpp_outbox",
                "report_counts", "report_latency")


def bloat(env):
    """Per table after the soak: live and dead rows, autovacuum runs, size, and pgstattuple_approx's
    dead and free space (what vacuum has not yet given back for reuse).  A table in history
    ranges (sql/029) is shown per partition: autovacuum works on those."""
    env.psql("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    tables = []
    for t in BLOAT_TABLES:
        parts = [r[0] for r in env.sql(f"SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                       f" WHERE i.inhparent = '{t}'::regclass ORDER BY c.relname")]
        tables += parts or [t]
    print(f"# {'table':<24}{'live':>12}{'dead':>10}{'dead %':>8}{'autovac':>8}{'size MB':>9}"
          f"{'dead sp %':>10}{'free sp %':>10}", flush=True)
    for t in tables:
        live, dead, runs, size = env.sql(
            "SELECT n_live_tup, n_dead_tup, autovacuum_count, pg_total_relation_size(relid) / 1048576.0"
            f" FROM pg_stat_user_tables WHERE relname = '{t}'")[0]
        dsp, fsp = env.sql(f"SELECT dead_tuple_percent, approx_free_percent FROM pgstattuple_approx('{t}')")[0]
        print(f"# {t:<24}{int(live):>12,}{int(dead):>10,}{100.0 * int(dead) / max(1, int(live)):>8.1f}"
              f"{int(runs):>8}{float(size):>9.1f}{float(dsp):>10.1f}{float(fsp):>10.1f}", flush=True)


if __name__ == "__main__":
    main()
