#!/usr/bin/env python3
"""bench_report.py: a delivery report over 90 days of history, read from the rollups.

Seeds BENCH_EVENTS events of 90 days (a quarter of them recipients, one per
message: the everyday shape of one OTP per request) for BENCH_ACCOUNTS
accounts with two senders each, over three SMS routes and the push channel,
with every final state and latencies that spread over the histograms'
buckets; `at` of each event follows its recipient's life, as pushgated writes
them.  Then:

  the rollup job's catch-up over the whole history (pushgatectl rollup:
  events/s), the rollups' row counts;
  the reports operators and integrators run, each BENCH_REPEAT times in one
  session (psql \\timing, the server's answer time), median and max:
  report_outcomes over 90 days by total, account, sender and day,
  report_routes over 90 days, and the API summary's statement for one account
  and for all;
  the same 'total' report from the recipients themselves
  (report_outcomes_raw) over one day, for scale.

Real PostgreSQL (the harness's private cluster, defaults plus
shared_buffers=1GB); no pushgated, no SMSC: only the database is measured.

Environment (defaults in brackets):
  BENCH_EVENTS [100000000; 2000000 with BENCH_QUICK=1]
  BENCH_ACCOUNTS [50]
  BENCH_REPEAT [7]
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR   as for the integration tests
"""

import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from harness import Env  # noqa: E402

from benchlib import env_int, history_cover, psql_long  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
EVENTS = env_int("BENCH_EVENTS", 2_000_000 if QUICK else 100_000_000)
ACCOUNTS = env_int("BENCH_ACCOUNTS", 50)
REPEAT = env_int("BENCH_REPEAT", 7)
CHUNK = 2_000_000   # recipients per seeding statement

# One recipient's life by its kind (id % 20): channel, route, final state, the events between
# acceptance and the final one, seconds to the final state (spread by id).
SEED = """
INSERT INTO messages (id, account_id, sender, body, created_at)
  SELECT g, a.id, 'S' || (g % 2) || '_' || a.n, 'code ' || (g % 1000000),
         now() - interval '90 days' + (g - 1) * ({days} * interval '1 day' / {n})
  FROM generate_series({lo}, {hi}) g
  JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM accounts WHERE name LIKE 'bench%') a
    ON a.n = g % {accounts};
INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, route, smsc_id, parts, attempts,
                        created_at, updated_at, submitted_at, final_at, push_deadline, expires_at)
  SELECT m.id, m.id, m.account_id, '8210' || lpad((m.id % 90000000)::text, 8, '0'), k.state, k.channel, k.route,
         CASE WHEN k.channel = 'sms' THEN 'B' || m.id END, 1, 1, m.created_at, f.final_at,
         CASE WHEN k.sub THEN m.created_at + interval '200 ms' END, f.final_at,
         CASE WHEN k.push THEN m.created_at + interval '30 s' END, m.created_at + interval '1 day'
  FROM messages m
  CROSS JOIN LATERAL (SELECT * FROM (VALUES
      (0, 'PUSH_DELIVERED', 'push', NULL, false, true), (1, 'PUSH_DELIVERED', 'push', NULL, false, true),
      (2, 'PUSH_DELIVERED', 'push', NULL, false, true), (3, 'PUSH_DELIVERED', 'push', NULL, false, true),
      (4, 'PUSH_DELIVERED', 'push', NULL, false, true), (5, 'PUSH_DELIVERED', 'push', NULL, false, true),
      (6, 'SMS_DELIVERED', 'sms', 'carrier_a', true, true), (7, 'SMS_DELIVERED', 'sms', 'carrier_a', true, false),
      (8, 'SMS_DELIVERED', 'sms', 'carrier_a', true, false), (9, 'SMS_DELIVERED', 'sms', 'carrier_b', true, false),
      (10, 'SMS_DELIVERED', 'sms', 'carrier_b', true, false), (11, 'SMS_DELIVERED', 'sms', 'carrier_c', true, false),
      (12, 'SMS_DELIVERED', 'sms', 'carrier_c', true, true), (13, 'SMS_FAILED', 'sms', 'carrier_a', true, false),
      (14, 'SMS_FAILED', 'sms', 'carrier_b', true, false), (15, 'SMS_EXPIRED', 'sms', 'carrier_c', true, false),
      (16, 'SMS_UNKNOWN', 'sms', 'carrier_b', true, false), (17, 'DROPPED', NULL, NULL, false, false),
      (18, 'SMS_DELIVERED', 'sms', 'carrier_a', true, false), (19, 'CANCELED', 'sms', 'carrier_c', false, false))
    AS k(i, state, channel, route, sub, push) WHERE k.i = m.id % 20) k
  CROSS JOIN LATERAL (SELECT m.created_at + make_interval(secs => CASE WHEN k.channel = 'push'
      THEN 0.15 + (m.id % 97) / 40.0 ELSE 1.5 + (m.id % 89) / 4.0 END) AS final_at) f
  WHERE m.id BETWEEN {lo} AND {hi};
INSERT INTO events (recipient_id, message_id, account_id, at, state, route, detail)
  SELECT r.id, r.message_id, r.account_id, e.at, e.state, r.route, NULL
  FROM recipients r
  CROSS JOIN LATERAL (VALUES
      (1, r.created_at, 'ACCEPTED'),
      (2, r.created_at + interval '1 ms', CASE WHEN r.channel = 'push' OR r.push_deadline IS NOT NULL
          THEN 'PUSH_SENT' ELSE 'SMS_QUEUED' END),
      (3, coalesce(r.submitted_at, r.created_at + interval '2 ms'), CASE WHEN r.channel = 'sms'
          THEN 'SMS_ACCEPTED' ELSE 'PUSH_SENT' END),
      (4, r.final_at, r.state)) AS e(o, at, state)
  WHERE r.id BETWEEN {lo} AND {hi}
  ORDER BY r.id, e.o;
"""

REPORTS = [
    ("report_outcomes 90 days, total", "SELECT * FROM report_outcomes(now() - interval '90 days', 'total')"),
    ("report_outcomes 90 days, account", "SELECT * FROM report_outcomes(now() - interval '90 days', 'account')"),
    ("report_outcomes 90 days, sender", "SELECT * FROM report_outcomes(now() - interval '90 days', 'sender')"),
    ("report_outcomes 90 days, day", "SELECT * FROM report_outcomes(now() - interval '90 days', 'day')"),
    ("report_routes 90 days", "SELECT * FROM report_routes(now() - interval '90 days')"),
    ("API summary, one account, 90 days",
     "SELECT a.name, o.* FROM accounts a LEFT JOIN report_outcomes(now() - interval '90 days', 'account') o"
     " ON o.account_id = a.id WHERE a.name = 'bench7'"),
    ("API summary, one account, 24 h",
     "SELECT a.name, o.* FROM accounts a LEFT JOIN report_outcomes(now() - interval '24 hours', 'account') o"
     " ON o.account_id = a.id WHERE a.name = 'bench7'"),
    ("report_outcomes_raw 1 day, total (the recipients)",
     "SELECT * FROM report_outcomes_raw(now() - interval '1 day', 'total')"),
]


class ReportEnv(Env):
    def start_pg(self):
        opts = (f"-k {self.pg_sock} -p {self.pg_port} -c listen_addresses=127.0.0.1 -c max_connections=50"
                " -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min")
        self._pg_ctl("start", "-w", "-t", "60", "-l", self.pg_log, "-o", opts, timeout=90)
        self._pg_started = True


def timed_session(env, queries, repeat):
    """{label: [ms...]} from one psql session with \\timing (the server's answer, not psql's start)."""
    script = ["\\timing on", "SET plan_cache_mode = force_custom_plan;"]
    for label, q in queries:
        for _ in range(repeat):
            script.append(f"\\echo @@{label}")
            script.append(f"SELECT count(*) FROM ({q}) x;")
    r = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(env.pg_port), "-U", "postgres",
                        "-d", "pushgate", "-v", "ON_ERROR_STOP=1"], input="\n".join(script) + "\n",
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr
    out, label = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("@@"):
            label = line[2:]
        m = re.match(r"Time: ([0-9.]+) ms", line)
        if m and label:
            out.setdefault(label, []).append(float(m.group(1)))
            label = None
    return out


def main():
    n = EVENTS // 4
    with ReportEnv(smsc=False, daemon=False) as env:
        for i in range(ACCOUNTS):
            env.create_account(f"bench{i}")
        t0 = time.monotonic()
        history_cover(env, n, size=-(-n // 90))   # a history range (sql/029) per day of the 90
        for lo in range(1, n + 1, CHUNK):
            hi = min(n, lo + CHUNK - 1)
            psql_long(env, SEED.format(lo=lo, hi=hi, n=n, days=90, accounts=ACCOUNTS))
            print(f"# seeded recipients {hi:,} / {n:,} ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
        env.psql(f"SELECT setval('messages_id_seq', {n}); SELECT setval('recipients_id_seq', {n})")
        for t in ("messages", "recipients", "events"):
            psql_long(env, f"VACUUM ANALYZE {t}")
        psql_long(env, "CHECKPOINT")
        seeded = time.monotonic() - t0
        events = int(env.scalar("SELECT count(*) FROM events"))
        size = env.scalar("SELECT pg_size_pretty(pg_database_size('pushgate'))")
        print(f"seeded: {events:,} events, {n:,} recipients and messages of {ACCOUNTS} accounts over 90 days"
              f" in {seeded:.0f} s; database {size}", flush=True)

        t0 = time.monotonic()
        r = env.ctl("rollup", timeout=7200)
        assert r.returncode == 0, r.stdout + r.stderr
        took = time.monotonic() - t0
        counted = int(r.stdout.split()[-1])
        print(f"rollup catch-up: {counted:,} events counted (accepted + final) of {events:,} in {took:.0f} s"
              f" = {counted / took:,.0f} counted events/s ({events / took:,.0f} events of history/s)", flush=True)
        for t in ("report_counts", "report_latency"):
            psql_long(env, f"VACUUM ANALYZE {t}")
        rows = env.sql("SELECT grain, count(*) FROM report_counts GROUP BY 1 ORDER BY 1")
        lrows = env.sql("SELECT grain, count(*) FROM report_latency GROUP BY 1 ORDER BY 1")
        print("rollup rows: report_counts " + ", ".join(f"{g} {int(c):,}" for g, c in rows)
              + "; report_latency " + ", ".join(f"{g} {int(c):,}" for g, c in lrows), flush=True)
        # the rollups say what the recipients say (t_rollups checks it row by row on a small mix)
        cols = "recipients, push_delivered, sms_delivered, failed, unknown, dropped, canceled"
        a = psql_long(env, f"SELECT {cols} FROM report_outcomes('-infinity', 'total')")
        b = psql_long(env, f"SELECT {cols} FROM report_outcomes_raw('-infinity', 'total')")
        assert a == b, (a, b)
        print(f"rollups equal the recipients over all history ({cols}): {a}", flush=True)

        times = timed_session(env, REPORTS, REPEAT)
        print(f"\n{'report':<52}{'median ms':>12}{'max ms':>10}")
        for label, _ in REPORTS:
            v = times[label]
            print(f"{label:<52}{statistics.median(v):>12.1f}{max(v):>10.1f}")
        worst = max(statistics.median(times[label]) for label, _ in REPORTS[:-1])
        print(f"\nslowest rollup report, median: {worst:.1f} ms (target < 100 ms at 100M events)")


if __name__ == "__main__":
    main()
