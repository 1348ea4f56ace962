#!/usr/bin/env python3
"""bench_webhook.py: the webhook outbox delivered to a local receiver, with history ranges.

BENCH_EVENTS undelivered rows are put straight into webhook_outbox (5 events
per recipient, payloads of ~330 bytes as webhook_outbox_fill writes them,
one URL, signed) while pushgated is stopped; the database has BENCH_RANGES
history ranges (sql/029, sql/030: the outbox is partitioned with them, so
the sender's lease reads every range's partial index) and the rows belong to
the newest.  The clock starts when pushgated starts and stops when no row is
left undelivered.  The receiver is a Python ThreadingHTTPServer on
127.0.0.1 (HTTP/1.1 keep-alive) answering 200: it is the same on both sides
of an A/B, and what it costs is in the figure.  Prints events/s, POSTs, and
per statement of the sender (pg_stat_statements, track_planning on): calls,
plans, mean planning and execution time.  Every event must arrive once.

Environment (defaults in brackets):
  BENCH_EVENTS [100000; 20000 with BENCH_QUICK=1]  rows to deliver
  BENCH_RANGES [30]                                history ranges before the newest
  BENCH_RANGE [1000000]                            recipient ids per range
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR              as for the integration tests
"""

import http.server
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from harness import free_port, serve_http  # noqa: E402

from bench_engine import BenchEnv  # noqa: E402
from benchlib import env_int, history_cover, psql_long  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
EVENTS = env_int("BENCH_EVENTS", 20000 if QUICK else 100000)
RANGES = env_int("BENCH_RANGES", 30)
RANGE = env_int("BENCH_RANGE", 1_000_000)


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.events = 0
        self.posts = 0
        self.ids = set()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ids = [e["event_id"] for e in json.loads(body)["events"]]
                with rec.lock:
                    rec.posts += 1
                    rec.events += len(ids)
                    rec.ids.update(ids)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = serve_http(self.port, Handler)


def main():
    os.environ.setdefault("BENCH_STATEMENTS", "1")   # BenchEnv: pg_stat_statements.track = all
    os.environ["BENCH_PG_OPTS"] = (os.environ.get("BENCH_PG_OPTS", "")
                                   + " -c pg_stat_statements.track_planning=on").strip()
    env = BenchEnv(smsc=False)
    try:
        env.start()
        env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rec = Receiver()
        acct = int(env.scalar("SELECT id FROM accounts ORDER BY id LIMIT 1"))
        env.psql(f"UPDATE accounts SET webhook_url = 'http://127.0.0.1:{rec.port}/hook',"
                 f" webhook_secret = 'bench-secret' WHERE id = {acct}")
        env.stop_pushgated()
        history_cover(env, RANGES * RANGE, RANGE)
        lo = int(env.scalar("SELECT max(lo) FROM history_ranges WHERE lo <= %d" % (RANGES * RANGE)))
        env.psql(f"SELECT setval('recipients_id_seq', {lo + EVENTS // 5 + 1})")
        psql_long(env, f"""
            INSERT INTO webhook_outbox (account_id, url, event_id, recipient_id, message_id, payload)
            SELECT {acct}, 'http://127.0.0.1:{rec.port}/hook', g, {lo} + (g - 1) / 5, (g - 1) / 5 + 1,
                   jsonb_build_object('event_id', g, 'message_id', (g - 1) / 5 + 1, 'recipient_id', {lo} + (g - 1) / 5,
                                      'to', '821012345678', 'kind', 'state', 'state', 'SMS_DELIVERED',
                                      'at', now(), 'channel', 'sms', 'route', 'default', 'smsc_id', 'a1b2c3d4e5',
                                      'error_code', NULL, 'detail', 'DELIVRD', 'batch_id', NULL)
            FROM generate_series(1, {EVENTS}) g""")
        psql_long(env, "VACUUM ANALYZE webhook_outbox")
        parts = env.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'webhook_outbox'::regclass")
        env.psql("SELECT pg_stat_statements_reset()")
        t0 = time.monotonic()
        env.start_pushgated(wait_smpp=False)
        deadline = t0 + 600
        while time.monotonic() < deadline:
            with rec.lock:
                if rec.events >= EVENTS:
                    break
            time.sleep(0.05)
        took = time.monotonic() - t0
        left = int(env.scalar("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL"))
        with rec.lock:
            events, posts, unique = rec.events, rec.posts, len(rec.ids)
        print(f"{EVENTS:,} events, {RANGES + 2} history ranges (outbox partitions: {parts}):"
              f" {took:.2f} s, {EVENTS / took:,.0f} events/s, {posts:,} POSTs, {unique:,} distinct events,"
              f" {left} left undelivered (at the last event's arrival)")
        rows = env.sql("SELECT calls, plans, round((mean_plan_time)::numeric, 3), round((mean_exec_time)::numeric, 3),"
                       " left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_statements"
                       " WHERE query LIKE '%webhook_outbox%' AND calls > 0 ORDER BY total_exec_time DESC LIMIT 5")
        print(f"  {'calls':>7} {'plans':>6} {'plan ms':>8} {'exec ms':>8}  statement")
        for calls, plans, pt, et, q in rows:
            print(f"  {int(calls):>7} {int(plans):>6} {pt:>8} {et:>8}  {q}")
        assert events == EVENTS and unique == EVENTS, (events, unique)
    finally:
        env.teardown()


if __name__ == "__main__":
    main()
