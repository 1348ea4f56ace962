#!/usr/bin/env python3
"""bench_smpp_server.py: pushgate's SMPP server role under one ESME bind.

One bind_transceiver (a raw-socket ESME in this file: prebuilt PDUs, a
window of outstanding submit_sm, every deliver_sm answered at once) submits
N short GSM messages as fast as the window allows.  pushgated accepts each
(intake statement committed, then submit_sm_resp), routes it (no app: SMS
through smsc-sim, whose receipts become deliver_sm receipts back to the
ESME).  Reported per repetition:

  accepted/s  = N / (last submit_sm_resp - first submit_sm)
  receipts/s  = receipts received by then / the same time, and the time until all N arrived
  receipt latency: each receipt after its message's submit_sm_resp (p50, p99, max, over 5 s)
  CPU seconds of pushgated, smsc-sim and PostgreSQL (/proc)

Each repetition uses a fresh SMPP account; min/median/max at the end.
It reuses tests/harness.py's Env (private PostgreSQL with fsync and
synchronous_commit on, smsc-sim, pushgated on free 127.0.0.1 ports).
Every wait is bounded; everything it starts is stopped on exit.

Environment (defaults in brackets):
  BENCH_N [100000; 20000 with BENCH_QUICK=1]   messages per repetition
  BENCH_REPS [3; 1 with BENCH_QUICK=1]
  BENCH_WINDOW [1000]                         ESME window (and the account's)
  BENCH_NUMBERS [0]                           distinct destinations, repeated (0: every one new)
  BENCH_MIX [0]                               every BENCH_MIX-th message is long (two parts), by
                                              turns UDH parts, SAR parts and one message_payload
  BENCH_HISTORY [0]                           preload this many delivered messages (with their
                                              recipients, parts and events) before the first
                                              repetition, then VACUUM ANALYZE (benchlib)
  BENCH_TIMEOUT [max(60, N/1000*3)]           seconds a repetition may take
  BENCH_STATEMENTS [0]                        print the top pg_stat_statements per repetition
                                              (their tracking costs a few % of the rate)
"""

import os
import re
import selectors
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from bench_engine import BenchEnv  # noqa: E402  (PostgreSQL with pg_stat_statements)

from benchlib import env_int, postgres_cpu, preload_history_stopped, proc_cpu, statements_wanted  # noqa: E402


def cstr(s):
    return s.encode() + b"\0"


def pdu(cmd, seq, body=b"", status=0):
    return struct.pack(">IIII", 16 + len(body), cmd, status, seq) + body


GSM_LONG = ("pushgate long message benchmark: this text needs two SMS parts because it is longer "
            "than one hundred and sixty GSM characters, so the ESME splits it or sends it whole ")


def build_submits(n, numbers, mix):
    """[(pdu bytes, message index)]: n messages, each one submit_sm, or two for
    a long message sent as UDH or SAR parts.  mix > 0: every mix-th message is
    long, by turns UDH parts, SAR parts and one message_payload."""
    subs = []
    seq = 2
    modes = ("udh", "sar", "payload")
    for i in range(n):
        d = i % numbers if numbers > 0 else i
        head = (cstr("") + bytes([5, 0]) + cstr("BENCH") + bytes([1, 1]) + cstr(f"4671{d // 6:07d}{d % 6}"))
        tail = cstr("") + cstr("") + bytes([1, 0, 0, 0])    # schedule, validity, registered, replace, coding, default id
        mode = modes[(i // mix) % 3] if mix > 0 and i % mix == mix - 1 else None
        if mode is None:
            text = f"pushgate server benchmark {i:07d}".encode()
            subs.append((pdu(0x04, seq, head + bytes([0, 0, 0]) + tail + bytes([len(text)]) + text), i))
            seq += 1
        elif mode == "payload":
            text = (GSM_LONG + f"{i:07d}").encode()
            body = head + bytes([0, 0, 0]) + tail + bytes([0]) + struct.pack(">HH", 0x0424, len(text)) + text
            subs.append((pdu(0x04, seq, body), i))
            seq += 1
        else:
            text = (GSM_LONG + f"{i:07d}").encode()
            chunks = [text[:153], text[153:]]
            ref = i & 0xFFFF
            for k, chunk in enumerate(chunks, 1):
                if mode == "udh":
                    sm = bytes([5, 0, 3, ref & 0xFF, 2, k]) + chunk
                    body = head + bytes([0x40, 0, 0]) + tail + bytes([len(sm)]) + sm
                else:
                    body = (head + bytes([0, 0, 0]) + tail + bytes([len(chunk)]) + chunk
                            + struct.pack(">HHH", 0x020C, 2, ref) + struct.pack(">HHB", 0x020E, 1, 2)
                            + struct.pack(">HHB", 0x020F, 1, k))
                subs.append((pdu(0x04, seq, body), i))
                seq += 1
    return subs


RECEIPT_ID = re.compile(rb"id:(\S+)")


def run_esme(port, system_id, password, n, window, timeout):
    """Returns (accept_seconds, receipts by then, seconds until all receipts, failed
    resps, receipt latencies in seconds: each receipt after its message's last
    submit_sm_resp)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(pdu(0x09, 1, cstr(system_id) + cstr(password) + cstr("") + bytes([0x34, 0, 0]) + cstr("")))
    head = s.recv(16, socket.MSG_WAITALL)
    length, cmd, status, _ = struct.unpack(">IIII", head)
    s.recv(length - 16, socket.MSG_WAITALL)
    if cmd != 0x80000009 or status != 0:
        raise RuntimeError(f"bind refused: 0x{status:02x}")
    # destinations ending 0..5: smsc-sim delivers them; BENCH_NUMBERS > 0: only that many, repeated
    subs = build_submits(n, env_int("BENCH_NUMBERS", 0), env_int("BENCH_MIX", 0))
    total = len(subs)
    msg_of_seq = {struct.unpack_from(">I", p, 12)[0]: i for p, i in subs}
    resp_at = {}          # message id from submit_sm_resp -> when it arrived
    latencies = []
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    buf = bytearray()
    out = bytearray()
    sent = answered = failed = receipts = 0
    t0 = time.monotonic()
    t_accept = t_all = None
    deadline = t0 + timeout
    while (answered < total or receipts < n) and time.monotonic() < deadline:
        while sent < total and sent - answered < window:
            out += subs[sent][0]
            sent += 1
        if out:
            try:
                k = s.send(out)
                del out[:k]
            except BlockingIOError:
                pass
        for _ in sel.select(0.05):
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise RuntimeError("pushgated closed the connection")
            buf += chunk
        off = 0
        now = time.monotonic()
        while len(buf) - off >= 16:
            length, cmd, status, seq = struct.unpack_from(">IIII", buf, off)
            if len(buf) - off < length:
                break
            if cmd == 0x80000004:
                answered += 1
                failed += status != 0
                if seq in msg_of_seq:
                    mid = bytes(buf[off + 16:off + length]).split(b"\0", 1)[0]
                    resp_at[mid] = now
                if answered == total:
                    t_accept = now - t0
                    receipts_at_accept = receipts
            elif cmd == 0x05:
                receipts += 1
                m = RECEIPT_ID.search(bytes(buf[off + 16:off + length]))
                if m and m.group(1) in resp_at:
                    latencies.append(now - resp_at[m.group(1)])
                out += pdu(0x80000005, seq, b"\0")
                if receipts == n:
                    t_all = now - t0
            elif cmd == 0x15:
                out += pdu(0x80000015, seq)
            off += length
        del buf[:off]
    s.setblocking(True)
    s.sendall(pdu(0x06, 1 << 30))
    s.close()
    if t_accept is None or t_all is None:
        raise RuntimeError(f"timed out: {answered} of {total} answered, {receipts} receipts of {n}")
    return t_accept, receipts_at_accept, t_all, failed, latencies


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    n = env_int("BENCH_N", 20000 if quick else 100000)
    reps = env_int("BENCH_REPS", 1 if quick else 3)
    window = env_int("BENCH_WINDOW", 1000)
    timeout = env_int("BENCH_TIMEOUT", max(60, n // 1000 * 3))
    port = harness.free_port()
    env = BenchEnv(dlr_delay_ms=50, ini={"smpp_server": {"listen": f"127.0.0.1:{port}"},
                                    "smpp": {"window": "1000", "binds": "2"}})
    results = []
    with env:
        env.create_account("bench")
        env.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        preload_history_stopped(env, env_int("BENCH_HISTORY", 0))
        for rep in range(1, reps + 1):
            sid = f"bench{rep}"
            env.ctl("smpp-account", "add", "bench", "--system-id", sid, "--password", "benchpw", "--window",
                    str(window), check=True)
            cpu0 = (proc_cpu(env.pushgated.pid), proc_cpu(env.smsc.pid), postgres_cpu(env.pg_data))
            t_accept, rc_at_accept, t_all, failed, lat = run_esme(port, sid, "benchpw", n, window, timeout)
            cpu1 = (proc_cpu(env.pushgated.pid), proc_cpu(env.smsc.pid), postgres_cpu(env.pg_data))
            cpu = [b - a for a, b in zip(cpu0, cpu1)]
            lat.sort()
            r = {"accepted/s": n / t_accept, "receipts/s": n / t_all, "accept_s": t_accept, "all_s": t_all,
                 "receipts_at_accept": rc_at_accept, "failed": failed, "matched": len(lat),
                 "lat_p50": lat[len(lat) // 2] if lat else float("nan"),
                 "lat_p99": lat[min(len(lat) - 1, len(lat) * 99 // 100)] if lat else float("nan"),
                 "lat_max": lat[-1] if lat else float("nan"), "late": sum(1 for x in lat if x > 5.0)}
            results.append(r)
            if statements_wanted():
                for row in env.sql("SELECT round(total_exec_time)::int, calls, round(mean_exec_time::numeric, 2), "
                                   "regexp_replace(left(query, 90), '\\s+', ' ', 'g') FROM pg_stat_statements "
                                   "ORDER BY total_exec_time DESC LIMIT 6"):
                    print(f"#   {row[0]:>7} ms {row[1]:>7} calls {row[2]:>8} ms/call  {row[3]}", flush=True)
                env.psql("SELECT pg_stat_statements_reset()")
            print(f"rep {rep}: N={n} window={window}: {r['accepted/s']:,.0f} submit_sm/s accepted and committed "
                  f"(all in {t_accept:.2f} s, {rc_at_accept:,} receipts back by then, {failed} refused); "
                  f"all {n:,} receipts in {t_all:.2f} s ({r['receipts/s']:,.0f}/s); receipt after its "
                  f"submit_sm_resp ({r['matched']:,} matched): p50 {r['lat_p50']:.2f} s, p99 {r['lat_p99']:.2f} s, "
                  f"max {r['lat_max']:.2f} s, {r['late']} over 5 s; CPU s: pushgated "
                  f"{cpu[0]:.1f}, smsc-sim {cpu[1]:.1f}, PostgreSQL {cpu[2]:.1f}", flush=True)
    for key in ("accepted/s", "receipts/s"):
        v = [r[key] for r in results]
        print(f"{key}: min {min(v):,.0f}  median {statistics.median(v):,.0f}  max {max(v):,.0f}")
    return 0 if all(r["failed"] == 0 and r["matched"] == n for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
