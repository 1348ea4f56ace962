#!/usr/bin/env python3
"""bench_wss_idle.py: pushgated's memory per idle device connection, wss:// against ws://.

N verified devices are inserted straight into the devices table (as
bench_push.py does); this process then opens N WebSockets to /v1/device
(hello / welcome), first over plain HTTP, then, after a restart of
pushgated, over TLS ([server] https_listen with a throwaway certificate made
by the openssl CLI).  pushgated's VmRSS before and after, over N, is the
memory per connection; each kind gets a fresh process so the second does not
reuse what the first freed.  Heartbeat is 600 s so nothing but the idle
connections is measured.  Standard library only; every wait bounded.

Environment: BENCH_N [3000] connections per kind (lowered to fit
RLIMIT_NOFILE), BENCH_TLS_MAX ["" = 1.3 | "1.2"]: the client's highest TLS
version, PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR as for the integration tests.
"""
import os
import resource
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from harness import Env, free_port  # noqa: E402
from wsclient import WS  # noqa: E402
import bench_push  # noqa: E402


def make_cert(tmp):
    def run(*a):
        subprocess.run(["openssl", *a], cwd=tmp, check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "bench.key", "-out", "bench.pem", "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    return os.path.join(tmp, "bench.pem"), os.path.join(tmp, "bench.key")


def open_devices(port, n, ctx):
    conns = []
    t0 = time.monotonic()
    for i in range(n):
        ws = WS("127.0.0.1", port, timeout=30, ssl_context=ctx, server_hostname="localhost" if ctx else None)
        ws.send({"type": "hello", "token": bench_push.token_of(i)})
        w = ws.recv()
        assert w.get("type") == "welcome", w
        conns.append(ws)
    return conns, time.monotonic() - t0


def settle_rss(pid):
    """VmRSS once it stopped moving (bounded: 3 s)."""
    last = bench_push.rss_bytes(pid)
    for _ in range(30):
        time.sleep(0.1)
        now = bench_push.rss_bytes(pid)
        if now == last:
            return now
        last = now
    return last


def measure(env, port, n, ctx, label):
    pid = env.pushgated.pid
    rss0 = settle_rss(pid)
    conns, secs = open_devices(port, n, ctx)
    rss1 = settle_rss(pid)
    version = conns[0].sock.version() if ctx else "-"
    per = (rss1 - rss0) / n
    print(f"{label}: {n} idle connections in {secs:.1f} s, tls={version}: pushgated VmRSS "
          f"{rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB = {per:,.0f} bytes/connection", flush=True)
    for ws in conns:
        ws.sock.close()
    return per


def main():
    n = int(os.environ.get("BENCH_N", "3000") or 3000)
    nofile = bench_push.raise_nofile(n + 1024)
    n = min(n, nofile - 512)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    print(f"RLIMIT_NOFILE hard limit {hard}; {n} connections per kind", flush=True)
    env = Env(smsc=False, daemon=False)
    try:
        env.start()
        bench_push.insert_devices(env, n)
        cert, key = make_cert(env.tmp)
        https_port = free_port()
        env.ini_overrides.update({
            "server": {"https_listen": f"127.0.0.1:{https_port}", "tls_cert": cert, "tls_key": key},
            "push": {"heartbeat": "600"},
        })
        env.write_ini()
        env.start_pushgated(wait_smpp=False)
        plain = measure(env, env.http_port, n, None, "ws ")
        env.restart_pushgated()
        ctx = ssl.create_default_context(cafile=cert)
        if os.environ.get("BENCH_TLS_MAX") == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        tls = measure(env, https_port, n, ctx, "wss")
        print(f"TLS adds {tls - plain:,.0f} bytes per idle connection ({tls / plain:.1f}x plain)", flush=True)
    finally:
        env.teardown()


if __name__ == "__main__":
    main()
