"""t_plans: pushgated plans each hot statement once per connection, not once per call.

PostgreSQL loads pg_stat_statements here (nested statements and planning
tracked). The everyday traffic of every door goes through once to warm up:
single-recipient and bulk POST /v1/messages, Kannel sendsms with a dlr-url
(the events trigger and the webhook worker's GETs), an ESME on the SMPP
server (intake, receipts back as deliver_sm) and the SMS engine delivering
all of it to smsc-sim. Then the statistics are reset and the same traffic
runs again. A statement planned per call shows as many plans as calls; one
planned once per connection shows at most one plan per pushgated backend.
Counts, not timings: the result does not depend on the machine's speed.

Nothing polls PostgreSQL during the measured round (the test's own queries
would be planned and counted): completion is read from pushgated's HTTP API,
the dlr-url receiver and the ESME.
"""
import http.server
import os
import subprocess
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FINAL_STATES, TAP, free_port, serve_http

tests = TAP()
SMPPS_PORT = free_port()
SINGLES, BULKS, BULK_SIZE, SENDSMS, ESME_SUBMITS = 40, 4, 10, 20, 20
_run = {"round": 0, "esme": 0}


class DlrReceiver:
    """Counts Kannel dlr-url GETs by type (answers 200)."""

    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.types = {}
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                with rec.lock:
                    t = q.get("type", ["?"])[0]
                    rec.types[t] = rec.types.get(t, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = serve_http(self.port, Handler)

    def count(self, t):
        with self.lock:
            return self.types.get(t, 0)


def esme(env, count):
    """netsmpp_esme.pl (Net::SMPP): COUNT submits, waits for their receipts; exit code."""
    _run["esme"] += 1
    log = os.path.join(env.tmp, f"esme{_run['esme']}.log")
    cmd = ["perl", os.path.join(env.srcdir, "tests", "interop", "netsmpp_esme.pl"), "--port", str(SMPPS_PORT),
           "--log", log, "--system-id", "plans", "--password", "pwplans", "--count", str(count),
           "--window", "10", "--prefix", f"447700{_run['esme']}", "--kinds", "gsm",
           "--expect-receipts", str(count), "--max-seconds", "90"]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL, timeout=120).returncode


def traffic(env, rec):
    """One round of every door; returns when all of it is final (read without SQL)."""
    _run["round"] += 1
    r = _run["round"]
    ids = [env.send([f"8216{r}{i:07d}1"])["id"] for i in range(SINGLES)]
    ids += [env.send([f"8217{r}{b}{i:05d}1" for i in range(BULK_SIZE)])["id"] for b in range(BULKS)]
    url = f"http://127.0.0.1:{rec.port}/dlr?type=%d&rid=%I"
    before = rec.count("1")
    for i in range(SENDSMS):   # every one to the same number, as OTP traffic does
        q = urllib.parse.urlencode({"username": "test", "password": env.key, "from": "ACME",
                                    "to": "821055500031", "text": f"code {r}{i:04d}",
                                    "dlr-mask": "31", "dlr-url": url})
        st, _, _, raw = env.http("GET", "/cgi-bin/sendsms?" + q, key=None)
        assert st == 202, (st, raw)
    assert esme(env, ESME_SUBMITS) == 0, "the ESME did not get every submit answered and receipted"

    def all_final():
        for mid in ids:
            msg = env.message(mid)
            if any(x["state"] not in FINAL_STATES for x in msg["recipients"]):
                return False
        return True
    env.wait_for(all_final, timeout=60, interval=0.3, what="every API message final")
    env.wait_for(lambda: rec.count("1") >= before + SENDSMS, timeout=60, interval=0.2,
                 what="a delivered dlr-url report for every sendsms")


@tests.case
def hot_statements_are_planned_once_per_connection_not_per_call(env):
    env.ctl("smpp-account", "add", "test", "--system-id", "plans", "--password", "pwplans", check=True)
    # an ANALYZE (autovacuum) invalidates cached plans, and each connection plans again once:
    # legitimate, but not what is counted here, so none runs during this test
    env.psql("ALTER SYSTEM SET autovacuum = off")
    env.psql("SELECT pg_reload_conf()")
    rec = DlrReceiver()
    traffic(env, rec)                       # warm-up: every statement prepared and planned
    env.psql("SELECT pg_stat_statements_reset()")
    traffic(env, rec)
    backends = int(env.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = 'pushgate' "
                              "AND application_name = '' AND pid <> pg_backend_pid() "
                              "AND backend_type = 'client backend'"))
    rows = env.sql("SELECT calls, plans, left(regexp_replace(query, '\\s+', ' ', 'g'), 120) "
                   "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pushgate') "
                   "AND query NOT LIKE '%pg_stat_%' ORDER BY calls DESC")
    hot = [(int(c), int(p), q) for c, p, q in rows if int(c) > backends]
    assert len(hot) >= 10, f"too few statements ran: {rows}"
    planned_per_call = [(c, p, q) for c, p, q in hot if p > backends]
    assert not planned_per_call, (f"planned more than once per connection ({backends} backends):\n"
                                  + "\n".join(f"{c} calls, {p} plans: {q}" for c, p, q in planned_per_call))


tests.run(stat_statements=True,
          ini={"smpp_server": {"listen": f"127.0.0.1:{SMPPS_PORT}", "auth_delay": "0"},
               "smpp": {"window": "200"}})
