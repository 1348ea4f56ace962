#!/usr/bin/env python3
"""bench_kannel.py: Kannel's sendsms with a dlr-url, pushgate against Debian's Kannel, same load.

Door (b) of the single-message benchmarks: an application written for Kannel
sends one message per request to `/cgi-bin/sendsms` with dlr-mask 31 and a
dlr-url, every message to the same number, over BENCH_CONNS keep-alive
connections (wrk, a Lua script), for BENCH_SECONDS. The same load goes first
to pushgated's sendsms, then to Kannel 1.4.5 (bearerbox + smsbox, its DLRs
stored in PostgreSQL, four TRX binds with window 200 to its own smsc-sim).
Both gateways call back the same receiver (tests/bench/bench_sink.c, a C
HTTP server that counts reports by gateway and type and remembers when the
last one came), both share the machine's 2 cores with their PostgreSQL and
smsc-sim.

For each: accepted/s and latency (wrk), non-202 answers, and end to end:
accepted messages / (time of the last "delivered" report - wrk's start),
which needs every accepted message's delivered report (type 1). The ratio
pushgate / Kannel closes the output.

Environment (defaults in brackets):
  BENCH_SECONDS [20; 5 with BENCH_QUICK=1]   wrk duration for each gateway
  BENCH_CONNS [50]                           wrk connections (2 threads)
  BENCH_GATEWAYS [pushgate,kannel]           which to measure
  BENCH_HISTORY [0]                          preload pushgate's database with this many delivered
                                             messages first (benchlib.preload_history); pushgate
                                             gets a 3 s warm-up run either way
  BENCH_AUTO_EXPLAIN_MS=MS, BENCH_PG_LOG=PREFIX  plans of slow statements, logs kept (as bench_engine)
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR        as for the integration tests
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import harness  # noqa: E402

from bench_engine import BenchEnv  # noqa: E402
from bench_single import parse_wrk, print_top, top_statements  # noqa: E402
from benchlib import WRK_THREADS_LUA, env_int, preload_history_stopped  # noqa: E402

TO = "821055500001"   # one number for every message; smsc-sim delivers it

# the path comes from BENCH_PATH (everything but the text); each request gets its own text
WRK_LUA = WRK_THREADS_LUA + r"""
function init(args)
  n = 0
  base = os.getenv("BENCH_PATH")
end
function request()
  n = n + 1
  return wrk.format("GET", base .. "&text=code+" .. tid .. "+" .. n)
end
"""

KANNEL_DLR_TABLE = """
CREATE TABLE dlr (smsc varchar(48), ts varchar(50), destination varchar(24), source varchar(24),
                  service varchar(24), url text, mask integer, status integer, boxc varchar(16),
                  oid bigserial);
CREATE INDEX dlr_smsc_ts ON dlr (smsc, ts);
"""


class Sink:
    def __init__(self, builddir, tmp):
        path = os.path.join(builddir, "tests", "bench", "pushgate-bench-sink")
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is missing: make -C build tests/bench/pushgate-bench-sink")
        self.proc = subprocess.Popen([path], stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "sink.err"), "wb"),
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"port=(\d+)", line)
        if not m:
            raise RuntimeError(f"bench sink did not start: {line!r}")
        self.port = int(m.group(1))

    def counts(self):
        """{(segment, type): (n, last)}"""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", "/count")
            body = c.getresponse().read().decode()
        finally:
            c.close()
        out = {}
        for line in body.splitlines():
            seg, typ, n, last = line.split()
            out[(seg, typ)] = (int(n), float(last))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def wrk(port, path, seconds, conns, lua):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", lua,
           f"http://127.0.0.1:{port}/"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, BENCH_PATH=path),
                       timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk exited {r.returncode}: {r.stderr[-500:]}")
    return parse_wrk(r.stdout)


def sendsms_path(user, password, sink_port, seg):
    dlr = f"http://127.0.0.1:{sink_port}/{seg}?type=%d"
    q = urllib.parse.urlencode({"username": user, "password": password, "from": "ACME", "to": TO,
                                "dlr-mask": "31", "dlr-url": dlr})
    return "/cgi-bin/sendsms?" + q


def end_to_end(sink, seg, accepted, t0, timeout):
    """Waits until `accepted` delivered reports (type 1) came; msg/s from t0 to the last one."""
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got, last = sink.counts().get((seg, "1"), (0, 0.0))
        if got >= accepted:
            return accepted / (last - t0), got
        time.sleep(0.5)
    return None, got


def run_pushgate(env, sink, lua, seconds, conns):
    preload_history_stopped(env, env_int("BENCH_HISTORY", 0), "pushgate")
    # warm-up: connections, caches, plans; its reports arrive before the measured run
    w = wrk(env.http_port, sendsms_path("test", env.key, sink.port, "w"), 3, conns, lua)
    end_to_end(sink, "w", w["requests"] - w["non2xx"], time.time(), 120)
    path = sendsms_path("test", env.key, sink.port, "p")
    env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    env.psql("SELECT pg_stat_statements_reset()")
    t0 = time.time()
    w = wrk(env.http_port, path, seconds, conns, lua)
    accepted = w["requests"] - w["non2xx"]
    rate, got = end_to_end(sink, "p", accepted, t0, max(120, accepted / 200))
    print_top(top_statements(env))
    if rate is None:   # what came, and what pushgated said about the rest
        print(f"#   reports received: {sink.counts()}")
        shutil.copyfile(env.pushgated_log, "/tmp/bench_kannel.pushgated.log")
        print("#   pushgated.log kept in /tmp/bench_kannel.pushgated.log")
    return w, accepted, rate, got


def start_kannel(env, sink, tmp):
    """bearerbox + smsbox with pgsql DLR storage and 4 TRX binds (window 200) to a smsc-sim of its own."""
    sim_log = os.path.join(tmp, "kannel-smsc.log")
    sim = subprocess.Popen([os.path.join(env.builddir, "smsc-sim"), "--listen", "127.0.0.1:0", "--dlr-delay-ms",
                            "50", "--log", sim_log], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL)
    line = sim.stdout.readline().decode()
    sim_port = int(line.split("ready port=", 1)[1].split()[0])
    env.psql("CREATE DATABASE kannel", dbname="postgres")
    env.psql(KANNEL_DLR_TABLE, dbname="kannel")
    admin, box, sendsms = harness.free_port(), harness.free_port(), harness.free_port()
    smscs = "".join(harness.kannel_smsc("sim", sim_port, f"kannel{i}", "kpw", 200) for i in range(4))
    conf = os.path.join(tmp, "kannel.conf")
    with open(conf, "w") as f:
        f.write(harness.kannel_conf(tmp, admin, box, sendsms, smscs, core_extra="dlr-storage = pgsql", extra=f"""
group = pgsql-connection
id = dlrdb
host = 127.0.0.1
port = {env.pg_port}
username = postgres
password = ""
database = kannel
max-connections = 4

group = dlr-db
id = dlrdb
table = dlr
field-smsc = smsc
field-timestamp = ts
field-destination = destination
field-source = source
field-service = service
field-url = url
field-mask = mask
field-status = status
field-boxc-id = boxc
"""))
    procs = [sim]
    harness.start_kannel(env, conf, procs)
    env.wait_for(lambda: harness._read_text(sim_log).count("ev=bind ") >= 4, timeout=60,
                 what="Kannel's four binds at its smsc-sim")

    return procs, sendsms


def stop(procs):
    for p in reversed(procs):
        harness._stop_process(p, timeout=20)


def line(name, w, accepted, rate, got):
    e2e = f"{rate:,.0f} msg/s" if rate else f"DID NOT FINISH ({got:,} of {accepted:,} delivered reports)"
    return (f"{name:<9} {w['rps']:>8,.0f} accepted/s (p50 {w['p50']:.1f} ms, p99 {w['p99']:.1f} ms, "
            f"non-202 {w['non2xx']}, socket errors {w['socket_errors']}); end to end {e2e}")


def main():
    for tool in ("wrk", "bearerbox", "smsbox"):
        if shutil.which(tool) is None:
            print(f"bench_kannel: {tool} is missing (tools/install-deps installs it)", file=sys.stderr)
            return 1
    quick = os.environ.get("BENCH_QUICK") == "1"
    seconds = env_int("BENCH_SECONDS", 5 if quick else 20)
    conns = env_int("BENCH_CONNS", 50)
    gateways = os.environ.get("BENCH_GATEWAYS", "pushgate,kannel").split(",")
    print(f"# sendsms with dlr-url (mask 31), one number, {conns} connections, wrk {seconds} s per gateway "
          f"(synchronous_commit=on, fsync=on)", flush=True)
    ini = {"smpp": {"window": "1000"}}
    if os.environ.get("BENCH_DEBUG_LOG") == "1":
        ini["server"] = {"log_level": "debug"}
    env = BenchEnv(dlr_delay_ms=50, ini=ini)
    results = {}
    procs = []
    sink = None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA)
        lua = f.name
    try:
        env.start()
        sink = Sink(env.builddir, env.tmp)
        if "pushgate" in gateways:
            w, acc, rate, got = run_pushgate(env, sink, lua, seconds, conns)
            results["pushgate"] = (w, acc, rate, got)
            print("# " + line("pushgate", w, acc, rate, got), flush=True)
            env.stop_pushgated()   # Kannel gets the cores to itself
        if "kannel" in gateways:
            procs, port = start_kannel(env, sink, env.tmp)
            path = sendsms_path("app", "apppw", sink.port, "k")
            t0 = time.time()
            w = wrk(port, path, seconds, conns, lua)
            acc = w["requests"] - w["non2xx"]
            rate, got = end_to_end(sink, "k", acc, t0, max(180, acc / 100))
            results["kannel"] = (w, acc, rate, got)
            print("# " + line("kannel", w, acc, rate, got), flush=True)
    finally:
        os.unlink(lua)
        if os.environ.get("BENCH_PG_LOG") and env.tmp:
            for name in ("postgres.log", "pushgated.log"):
                if os.path.exists(os.path.join(env.tmp, name)):
                    shutil.copyfile(os.path.join(env.tmp, name), f"{os.environ['BENCH_PG_LOG']}.{name}")
        stop(procs)
        if sink:
            sink.stop()
        env.teardown()
    print("sendsms with dlr-url summary:")
    for name, r in results.items():
        print("  " + line(name, *r))
    if "pushgate" in results and "kannel" in results:
        p, k = results["pushgate"], results["kannel"]
        print(f"  pushgate / Kannel: accepted {p[0]['rps'] / k[0]['rps']:.2f}x"
              + (f", end to end {p[2] / k[2]:.2f}x" if p[2] and k[2] else ""))
    return 0 if all(r[2] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
