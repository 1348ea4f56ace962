#!/usr/bin/env python3
"""bench_campaign.py: one CSV campaign from request to the last final state.

N recipients in one POST /v1/batches (text/csv, "Hello {name}" rendered per
recipient): half of the numbers have a verified device held open by
pushgate-device (which acks every push: PUSH_DELIVERED), half have none and
go by SMS to smsc-sim (receipts after BENCH_DLR_DELAY_MS: SMS_DELIVERED, or
the failure its last digit asks for; every one is final).  Devices are
inserted straight into the devices table (as bench_push.py does).

Reported: the intake time (request to 202, i.e. every chunk committed),
recipients/s from the request to the last final state stored (events.at is
PostgreSQL's clock_timestamp()), the batch's totals by state (they must
add up to N), and pushgated's peak RSS during the campaign (VmHWM, reset
through /proc/PID/clear_refs just before the request, so the idle device
connections' memory is the floor and the growth is the campaign's).

One pushgated holds one descriptor per device, so when RLIMIT_NOFILE can't
be raised to N/2 + 1024 (this container: hard limit 20,000, even for root)
the devices are spread over several pushgated nodes on the same
PostgreSQL (the multi-node setup of ARCHITECTURE.md: pushes reach a device
on any node through NOTIFY; every node's SMPP engine leases SMS work with
SKIP LOCKED).  The campaign is posted to the first node, whose RSS is the
one reported.

It reuses tests/harness.py's Env (private PostgreSQL with synchronous_commit
and fsync on, smsc-sim and pushgated on free 127.0.0.1 ports).  Every wait is
bounded; everything it starts is stopped on exit.  Standard library only.

Environment (defaults in brackets):
  BENCH_N [100000; 10000 with BENCH_QUICK=1]   recipients (half with devices)
  BENCH_REPS [1]                               campaigns, one after another
  BENCH_DLR_DELAY_MS [50]                      smsc-sim --dlr-delay-ms
  BENCH_BINDS [2], BENCH_WINDOW [1000]         the SMS route's binds and window
  PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR          as for the integration tests
"""

import http.client
import json
import os
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_push import (MSISDN_BASE, BenchEnv, Device, env_int, insert_devices, postgres_cpu,  # noqa: E402
                        proc_cpu, raise_nofile, token_of)
import harness  # noqa: E402

SMS_BASE = 821080000000


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def reset_peak(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def campaign_csv(n_dev, n_sms, rep):
    rows = ["to,name"]
    for i in range(max(n_dev, n_sms)):
        if i < n_dev:
            rows.append(f"{MSISDN_BASE + i},Device {rep}-{i}")
        if i < n_sms:
            rows.append(f"{SMS_BASE + i},Phone {rep}-{i}")
    return ("\n".join(rows) + "\n").encode()


def request(env, method, path, body=None, ctype="application/json", timeout=600):
    conn = http.client.HTTPConnection("127.0.0.1", env.http_port, timeout=timeout)
    try:
        hdrs = {"Authorization": f"Bearer {env.key}"}
        if body is not None:
            hdrs["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def start_node(env, k):
    """Another pushgated on the same database and smsc-sim; returns (proc, port)."""
    ini = os.path.join(env.tmp, f"node{k}.ini")
    port = harness.free_port()
    with open(env.ini_path) as f:
        text = f.read().replace(f"127.0.0.1:{env.http_port}", f"127.0.0.1:{port}")
    env.write_private(ini, text)
    log = open(os.path.join(env.tmp, f"pushgated-{k}.log"), "ab")
    proc = subprocess.Popen([os.path.join(env.builddir, "pushgated"), "-c", ini], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env._child_env())
    log.close()
    return proc, port


def node_up(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/healthz")
        return c.getresponse().status == 200
    except OSError:
        return False


def one_campaign(env, devs, n_dev, n_sms, rep):
    n = n_dev + n_sms
    body = campaign_csv(n_dev, n_sms, rep)
    env.psql("CHECKPOINT")
    pid = env.pushgated.pid
    peak_reset = reset_peak(pid)
    rss0 = status_kib(pid, "VmRSS")
    cpu0 = (proc_cpu(pid), proc_cpu(env.smsc.pid), sum(proc_cpu(d.p.pid) for d in devs), postgres_cpu(env.pg_data))
    t0 = time.time()
    st, b = request(env, "POST", "/v1/batches?from=BENCH&text=Hello%20%7Bname%7D&name=bench", body, "text/csv")
    t_intake = time.time() - t0
    if st != 202 or b.get("total") != n:
        raise RuntimeError(f"POST /v1/batches answered {st}: {b}")
    bid = b["id"]
    deadline = time.monotonic() + max(300.0, n / 200.0)
    p = None
    while time.monotonic() < deadline:
        if not env.pushgated_alive():
            raise RuntimeError("pushgated exited during the campaign")
        st, p = request(env, "GET", f"/v1/batches/{bid}")
        if st != 200:
            raise RuntimeError(f"GET /v1/batches/{bid} answered {st}: {p}")
        if p["state"] == "DONE":
            break
        time.sleep(0.25)
    cpu1 = (proc_cpu(pid), proc_cpu(env.smsc.pid), sum(proc_cpu(d.p.pid) for d in devs), postgres_cpu(env.pg_data))
    hwm = status_kib(pid, "VmHWM")
    if p is None or p["state"] != "DONE":
        raise RuntimeError(f"campaign {bid} not done in time: {p}")
    t_last = float(env.scalar(
        f"SELECT extract(epoch FROM max(e.at)) FROM events e JOIN recipients r ON r.id = e.recipient_id "
        f"WHERE r.batch_id = {bid} AND e.kind = 'state' AND e.state = r.state"))
    return {"rep": rep, "id": bid, "n": n, "t_intake": t_intake, "t_last": t_last - t0, "rate": n / (t_last - t0),
            "totals_ok": p["total"] == n and p["final"] == n and sum(p["by_state"].values()) == n,
            "by_state": p["by_state"], "rss0": rss0, "hwm": hwm, "peak_reset": peak_reset,
            "cpu": [b - a for a, b in zip(cpu0, cpu1)]}


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = env_int("BENCH_N", 10000 if quick else 100000)
    reps = env_int("BENCH_REPS", 1)
    dlr_delay = env_int("BENCH_DLR_DELAY_MS", 50)
    binds = env_int("BENCH_BINDS", 2)
    window = env_int("BENCH_WINDOW", 1000)
    n_dev = n // 2
    n_sms = n - n_dev
    nofile = raise_nofile(n_dev + 4096)
    per_node = max(1000, nofile - 2048)
    nodes = (n_dev + per_node - 1) // per_node
    per_node = (n_dev + nodes - 1) // nodes
    print(f"# campaign benchmark: N={n} ({n_dev} with devices acking, {n_sms} by SMS), reps={reps}, "
          f"binds={binds} window={window} dlr_delay_ms={dlr_delay} (synchronous_commit=on, fsync=on); "
          f"RLIMIT_NOFILE={nofile}: devices on {nodes} pushgated node(s)", flush=True)
    env = BenchEnv(dlr_delay_ms=dlr_delay, daemon=False,
                   ini={"push": {"push_timeout": 3600, "heartbeat": 300},
                        "smpp": {"binds": binds, "window": window}})
    devs = []
    others = []
    ok = True
    results = []
    try:
        env.start()
        env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        insert_devices(env, n_dev)
        env.start_pushgated()
        ports = [env.http_port]
        for k in range(2, nodes + 1):
            proc, port = start_node(env, k)
            others.append(proc)
            ports.append(port)
        for port in ports:
            env.wait_for(lambda: node_up(port), timeout=30, what=f"pushgated on {port} up")
        for k, port in enumerate(ports):
            lo, hi = k * per_node, min(n_dev, (k + 1) * per_node)
            tdir = os.path.join(env.tmp, f"dev{k}")
            os.makedirs(tdir, exist_ok=True)
            tokens = os.path.join(tdir, "tokens.txt")
            with open(tokens, "w") as f:
                for i in range(lo, hi):
                    f.write(f"{MSISDN_BASE + i} {token_of(i)}\n")
            shim = types.SimpleNamespace(builddir=env.builddir, http_port=port, tmp=tdir)
            sources = [f"127.0.0.{2 + k * 3 + i}" for i in range((hi - lo) // 20000 + 1)]
            devs.append(Device(shim, tokens, hi - lo, sources))
        deadline = time.monotonic() + max(60.0, n_dev / 200.0)
        while time.monotonic() < deadline and not all(d.find("event=all_connected") for d in devs):
            for d in devs:
                if d.p.poll() is not None:
                    raise RuntimeError("pushgate-device exited early:\n" + d.tail())
            time.sleep(0.1)
        if not all(d.find("event=all_connected") for d in devs):
            raise RuntimeError(f"not all {n_dev} devices connected: {[d.last_report() for d in devs]}")
        time.sleep(2.0)
        print(f"# {n_dev} devices connected; pushgated RSS {status_kib(env.pushgated.pid, 'VmRSS') / 1024:.1f} MiB",
              flush=True)
        for rep in range(1, reps + 1):
            r = one_campaign(env, devs, n_dev, n_sms, rep)
            results.append(r)
            good = r["totals_ok"]
            ok = ok and good
            c = r["cpu"]
            print(f"campaign {rep} (batch {r['id']}): {r['n']} recipients, intake (request to 202) "
                  f"{r['t_intake']:.2f} s, last final state stored at {r['t_last']:.2f} s = {r['rate']:,.0f} "
                  f"recipients/s (target >= 10,000)  {'ok' if r['rate'] >= 10000 else 'BELOW TARGET'}", flush=True)
            print(f"  totals {'ok' if good else 'WRONG'}: {json.dumps(r['by_state'], sort_keys=True)}", flush=True)
            print(f"  pushgated RSS before {r['rss0'] / 1024:.1f} MiB, peak during the campaign (VmHWM"
                  f"{'' if r['peak_reset'] else ', since start: clear_refs refused'}) {r['hwm'] / 1024:.1f} MiB "
                  f"(+{(r['hwm'] - r['rss0']) / 1024:.1f} MiB)", flush=True)
            print(f"  CPU s: pushgated {c[0]:.2f} smsc-sim {c[1]:.2f} pushgate-device {c[2]:.2f} "
                  f"postgres {c[3]:.2f}", flush=True)
    except BaseException:
        env.failed = True
        for d in devs:
            print(d.tail(), file=sys.stderr)
        print(env.diagnostics(), file=sys.stderr)
        raise
    finally:
        for d in devs:
            d.stop()
        for proc in others:
            harness._stop_process(proc)
        env.teardown()
    return 0 if ok and results else 1


if __name__ == "__main__":
    sys.exit(main())
