#!/usr/bin/env python3
"""smsc_sim_faults.py: checks smsc-sim's failure behaviours over raw SMPP sockets.

Starts smsc-sim on a free 127.0.0.1 port per case, talks SMPP 3.4 with a tiny
hand-written client (bind_transceiver, submit_sm, deliver_sm_resp), and checks
what arrives and in which order: THROTTLE:N, QFULL:N, NORESP, DUP, EARLY,
ENROUTE, HEXDEC, --drop-after, --max-binds, --tps, SIGUSR1 stats, SIGTERM exit
and a restart on the same port.  Prints TAP.  Every wait is bounded.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BUILDDIR = os.environ.get("PUSHGATE_BUILDDIR", ".")
SIM = os.environ.get("SMSC_SIM", os.path.join(BUILDDIR, "smsc-sim"))

BIND_TRX, BIND_TRX_RESP = 0x09, 0x80000009
BIND_TX = 0x02
SUBMIT, SUBMIT_RESP = 0x04, 0x80000004
DELIVER, DELIVER_RESP = 0x05, 0x80000005


def cstr(s):
    return s.encode() + b"\0"


LIVE = []   # every Sim started, stopped at exit whatever happened


class Sim:
    def __init__(self, *args, port=0):
        self.dir = tempfile.mkdtemp(prefix="simfaults-")
        self.log = os.path.join(self.dir, "smsc.log")
        self.proc = subprocess.Popen([SIM, "--listen", f"127.0.0.1:{port}", "--log", self.log,
                                      "--dlr-delay-ms", "100", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"ready port=(\d+)", line)
        if not m:
            raise RuntimeError(f"smsc-sim did not start: {line!r}")
        self.port = int(m.group(1))
        LIVE.append(self)

    def lines(self, ev):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return [l for l in f if f" ev={ev} " in l or l.rstrip().endswith(f" ev={ev}")]

    def wait_lines(self, ev, n, timeout=15.0):
        """The log's `ev` lines once there are at least n (the log trails the socket)."""
        end = time.monotonic() + timeout
        while True:
            got = self.lines(ev)
            if len(got) >= n or time.monotonic() > end:
                return got
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=5)


class Client:
    def __init__(self, port, system_id="t"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.seq = 0
        self.buf = b""
        self.system_id = system_id

    def send(self, cmd, body, seq=None, status=0):
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.s.sendall(struct.pack(">IIII", 16 + len(body), cmd, status, seq) + body)
        return seq

    def bind(self, cmd=BIND_TRX):
        body = cstr(self.system_id) + cstr("pw") + cstr("") + bytes([0x34, 0, 0]) + cstr("")
        self.send(cmd, body)
        return self.read(2.0)

    @staticmethod
    def submit_body(dst, text="hello", rd=1):
        return (cstr("") + bytes([1, 1]) + cstr("PUSHGATE") + bytes([1, 1]) + cstr(dst)
                + bytes([0, 0, 0]) + cstr("") + cstr("") + bytes([rd, 0, 0, 0, len(text)])
                + text.encode())

    def submit(self, dst, text="hello", rd=1):
        return self.send(SUBMIT, self.submit_body(dst, text, rd))

    def submit_burst(self, dst, n, rd=1):
        """n submit_sm in one write, so they reach the simulator together."""
        out = b""
        body = self.submit_body(dst, rd=rd)
        for _ in range(n):
            self.seq += 1
            out += struct.pack(">IIII", 16 + len(body), SUBMIT, 0, self.seq) + body
        self.s.sendall(out)

    def read(self, timeout):
        """Next PDU as (cmd, status, seq, body), None on timeout, 'eof' on close."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 16:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= n:
                    pdu, self.buf = self.buf[:n], self.buf[n:]
                    cmd, st, seq = struct.unpack(">III", pdu[4:16])
                    if cmd == DELIVER:
                        self.send(DELIVER_RESP, b"\0", seq=seq)
                    return cmd, st, seq, pdu[16:]
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                return "eof"
            if not data:
                return "eof"
            self.buf += data

    def collect(self, seconds):
        out = []
        end = time.monotonic() + seconds
        while True:
            p = self.read(max(0.0, end - time.monotonic()))
            if p is None:
                return out
            out.append(p)
            if p == "eof":
                return out


def receipt_text(body):
    """short_message of a deliver_sm body, plus its TLVs as {tag: bytes}."""
    i = 0
    def skip_cstr(i):
        return body.index(b"\0", i) + 1
    i = skip_cstr(i)          # service_type
    i += 2; i = skip_cstr(i)  # source
    i += 2; i = skip_cstr(i)  # dest
    esm = body[i]; i += 3     # esm_class, protocol_id, priority
    i = skip_cstr(i); i = skip_cstr(i)
    i += 4
    sm_len = body[i]; i += 1
    text = body[i:i + sm_len].decode("latin-1"); i += sm_len
    tlvs = {}
    while i + 4 <= len(body):
        tag, ln = struct.unpack(">HH", body[i:i + 4])
        tlvs[tag] = body[i + 4:i + 4 + ln]
        i += 4 + ln
    return esm, text, tlvs


def resp_id(body):
    return body.split(b"\0", 1)[0].decode()


RESULTS = []


def case(fn):
    RESULTS.append(fn)
    return fn


@case
def throttle_refuses_first_n_then_accepts_with_receipt():
    sim = Sim("--rule", "55=THROTTLE:2")
    c = Client(sim.port); assert c.bind()[1] == 0
    sts = []
    for _ in range(3):
        c.submit("447700900055")
        p = c.read(2); assert p and p[0] == SUBMIT_RESP, p
        sts.append(p[1])
    assert sts == [0x58, 0x58, 0], sts
    p = c.read(2); assert p and p[0] == DELIVER, p
    assert "stat:DELIVRD" in receipt_text(p[3])[1]
    # another destination under the same rule has its own count
    c.submit("447700900155"); assert c.read(2)[1] == 0x58
    subs = sim.wait_lines("submit_sm", 4)
    assert sum("dst=447700900055 " in l for l in subs) == 3, subs
    assert sum("status=0x58 outcome=THROTTLE" in l for l in subs) == 3, subs
    assert sim.stop() == 0


@case
def qfull_refuses_first_n_with_0x14():
    sim = Sim("--rule", "54=QFULL:1")
    c = Client(sim.port); c.bind()
    c.submit("447700900054"); assert c.read(2)[1] == 0x14
    c.submit("447700900054"); assert c.read(2)[1] == 0
    assert sim.stop() == 0


@case
def noresp_answers_nothing_and_sends_no_receipt():
    sim = Sim("--rule", "53=NORESP")
    c = Client(sim.port); c.bind()
    c.submit("447700900053")
    assert c.collect(0.5) == []
    l = sim.wait_lines("submit_sm", 1)
    assert len(l) == 1 and "outcome=NORESP" in l[0] and "status=none" in l[0], l
    # the link stays usable
    c.submit("447700900001"); assert c.read(2)[1] == 0
    assert sim.stop() == 0


@case
def dup_sends_the_receipt_twice_50ms_apart():
    sim = Sim("--rule", "52=DUP")
    c = Client(sim.port); c.bind()
    c.submit("447700900052")
    p = c.read(2); assert p[0] == SUBMIT_RESP and p[1] == 0
    mid = resp_id(p[3])
    got = []
    for p in c.collect(1.0):
        assert p[0] == DELIVER
        got.append((time.monotonic(), receipt_text(p[3])[1]))
    assert len(got) == 2, got
    assert all(f"id:{mid} " in t and "stat:DELIVRD" in t for _, t in got), got
    assert sim.stop() == 0


@case
def early_sends_receipt_before_submit_sm_resp():
    sim = Sim("--rule", "51=EARLY")
    c = Client(sim.port); c.bind()
    t0 = time.monotonic()
    c.submit("447700900051")
    p1 = c.read(2); t1 = time.monotonic()
    p2 = c.read(2); t2 = time.monotonic()
    assert p1[0] == DELIVER, p1
    assert p2[0] == SUBMIT_RESP and p2[1] == 0, p2
    assert f"id:{resp_id(p2[3])} " in receipt_text(p1[3])[1]
    assert t2 - t1 >= 0.15, (t1 - t0, t2 - t1)
    assert sim.stop() == 0


@case
def enroute_sends_intermediate_then_final_receipt():
    sim = Sim("--rule", "50=ENROUTE")
    c = Client(sim.port); c.bind()
    c.submit("447700900050")
    ps = c.collect(1.0)
    kinds = [p[0] for p in ps]
    assert kinds == [SUBMIT_RESP, DELIVER, DELIVER], kinds
    esm, t1, tl1 = receipt_text(ps[1][3])
    _, t2, tl2 = receipt_text(ps[2][3])
    assert esm == 0x04 and "stat:ENROUTE" in t1 and tl1[0x0427] == b"\x01", (esm, t1, tl1)
    assert "stat:DELIVRD" in t2 and tl2[0x0427] == b"\x02", (t2, tl2)
    assert sim.stop() == 0


@case
def hexdec_resp_hex_receipt_decimal():
    sim = Sim("--rule", "49=HEXDEC", "--id-format", "dec")
    c = Client(sim.port); c.bind()
    c.submit("447700900049")
    p = c.read(2); hid = resp_id(p[3])
    r = c.read(2); _, text, tlvs = receipt_text(r[3])
    dec = str(int(hid, 16))
    assert f"id:{dec} " in text and tlvs[0x001E] == cstr(dec), (hid, text)
    assert re.search(r"[a-f]", hid) or hid != dec
    # other destinations keep --id-format dec
    c.submit("447700900001"); p = c.read(2); r = c.read(2)
    assert f"id:{resp_id(p[3])} " in receipt_text(r[3])[1]
    assert sim.stop() == 0


@case
def drop_after_closes_on_nth_submit_once():
    sim = Sim("--drop-after", "3")
    c = Client(sim.port); c.bind()
    c.submit_burst("447700900001", 5)
    ps = c.collect(2.0)
    resps = [p for p in ps if p != "eof" and p[0] == SUBMIT_RESP]
    assert len(resps) == 2 and ps[-1] == "eof", ps
    # once per process: a new connection is not dropped
    c2 = Client(sim.port); c2.bind()
    for i in range(5):
        c2.submit("447700900001")
    ps = c2.collect(0.6)
    assert sum(1 for p in ps if p != "eof" and p[0] == SUBMIT_RESP) == 5, ps
    # the receipts for the two answered submits of the dropped link come here
    assert sum(1 for p in ps if p != "eof" and p[0] == DELIVER) >= 2
    assert len(sim.wait_lines("drop_after", 1)) == 1
    assert sim.stop() == 0


@case
def drop_every_drops_each_connection():
    sim = Sim("--drop-after", "2", "--drop-every")
    for _ in range(2):
        c = Client(sim.port); c.bind()
        c.submit_burst("447700900001", 2)
        ps = c.collect(2.0)
        assert ps[-1] == "eof" and sum(p[0] == SUBMIT_RESP for p in ps[:-1]) == 1, ps
    assert sim.stop() == 0


@case
def max_binds_refuses_with_0x0d_until_one_leaves():
    sim = Sim("--max-binds", "1")
    a = Client(sim.port); assert a.bind()[1] == 0
    b = Client(sim.port); assert b.bind()[1] == 0x0D
    a_peer = "peer=127.0.0.1:%d " % a.s.getsockname()[1]
    a.s.close()
    # the bind is free once the simulator has seen a leave (its log says so), not after a guess
    sim_saw = lambda: [l for l in sim.lines("close") if a_peer in l]
    end = time.monotonic() + 15
    while not sim_saw() and time.monotonic() < end:
        time.sleep(0.02)
    assert sim_saw(), "smsc-sim never logged the first bind's close"
    c = Client(sim.port); assert c.bind()[1] == 0
    assert sim.stop() == 0


@case
def tps_throttles_per_bind():
    sim = Sim("--tps", "5")
    c = Client(sim.port); c.bind()
    c.submit_burst("447700900001", 8, rd=0)
    ps = c.collect(0.5)
    sts = [p[1] for p in ps]
    assert sts.count(0) == 5 and sts.count(0x58) == 3, sts
    time.sleep(0.5)   # refills 2.5 tokens
    c.submit("447700900001", rd=0); assert c.read(2)[1] == 0
    assert len([l for l in sim.wait_lines("submit_sm", 9) if "outcome=TPS" in l]) == 3
    assert sim.stop() == 0


@case
def sigusr1_logs_stats_and_sigterm_exits_zero():
    sim = Sim()
    c = Client(sim.port); c.bind()
    c.submit("447700900001"); c.read(2); c.read(2)
    sim.proc.send_signal(signal.SIGUSR1)
    end = time.monotonic() + 3
    while not sim.lines("stats") and time.monotonic() < end:
        time.sleep(0.05)
    l = sim.lines("stats")
    assert l and "submits=1 " in l[0] and "receipts=1 " in l[0] and "binds=1 " in l[0], l
    t = time.monotonic()
    assert sim.stop() == 0 and time.monotonic() - t < 2


@case
def kill9_and_restart_on_same_port():
    sim = Sim()
    c = Client(sim.port); c.bind()
    c.submit("447700900001"); c.read(2)
    sim.proc.kill(); sim.proc.wait(timeout=5)
    sim2 = Sim(port=sim.port)
    c = Client(sim2.port); assert c.bind()[1] == 0
    assert sim2.stop() == 0


@case
def state_file_carries_receipts_across_a_clean_restart():
    state = os.path.join(tempfile.mkdtemp(prefix="simfaults-state-"), "receipts")
    sim = Sim("--state", state, "--rule", "58=DUP")
    c = Client(sim.port); assert c.bind(BIND_TX)[1] == 0   # no receiver: receipts park
    ids = []
    for dst in ("447700900001", "447700900009", "447700900058"):
        c.submit(dst)
        ids.append(resp_id(c.read(2)[3]))
    time.sleep(0.3)
    assert sim.stop() == 0 and os.path.exists(state)
    sim2 = Sim("--state", state, port=sim.port)
    assert not os.path.exists(state)   # read once, then gone
    c = Client(sim2.port); assert c.bind()[1] == 0
    got = [receipt_text(p[3])[1] for p in c.collect(1.0)]
    assert len(got) == 4, got           # the DUP copy was pending too
    stats = sorted(re.search(r"stat:(\S+)", t).group(1) for t in got)
    assert stats == ["DELIVRD", "DELIVRD", "DELIVRD", "UNDELIV"], got
    assert all(any(f"id:{i} " in t for t in got) for i in ids), (ids, got)
    assert sim2.stop() == 0
    shutil.rmtree(os.path.dirname(state), ignore_errors=True)


def main():
    print(f"1..{len(RESULTS)}")
    failed = 0
    for i, fn in enumerate(RESULTS, 1):
        try:
            fn()
            print(f"ok {i} - {fn.__name__}")
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"not ok {i} - {fn.__name__}: {type(e).__name__}: {e!r}"[:2000])
            for sim in LIVE:   # the simulators' own account of this case
                try:
                    with open(sim.log, encoding="utf-8", errors="replace") as f:
                        for line in f.readlines()[-15:]:
                            print("# " + line.rstrip())
                except OSError:
                    pass
        finally:
            for sim in LIVE:
                if sim.proc.poll() is None:
                    sim.proc.kill()
                    sim.proc.wait(timeout=5)
                shutil.rmtree(sim.dir, ignore_errors=True)
            LIVE.clear()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
