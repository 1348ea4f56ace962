"""t_smpp_tls: carrier links over TLS, and the ways TLS can fail.

A throwaway CA and a server certificate for localhost / 127.0.0.1 are made
with the openssl CLI in the test's temporary directory; a second, unrelated
CA stands for "the wrong trust anchor".  One smsc-sim speaks TLS, the
harness's own smsc-sim speaks plain TCP, and a silent listener accepts TCP
but never answers.  pushgated gets one route per case:

  sec      tls, verified against the right CA, name localhost   -> bound
  plain    no TLS (the default route)                           -> bound
  wrongca  tls, verified against another CA                     -> never binds
  badname  tls, right CA, a name the certificate does not carry -> never binds
  nottls   tls towards the plain-TCP smsc-sim                   -> handshake fails
  silent   tls towards a listener that never answers            -> handshake times out

Messages over sec and plain are delivered with their receipts; the failing
routes are logged with the reason, retried with backoff, and pushgated keeps
running.  Where tshark can capture on lo, a capture shows TLS application
records on the sec link and no destination number in clear, while the plain
link shows its submit_sm (the control that the capture works).
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP

tests = TAP()
FINAL = ("SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN")
extra = {}


def openssl(env, *args):
    r = subprocess.run(["openssl", *args], cwd=env.tmp, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr[-500:]}"


def make_pki(env):
    """ca.pem/server.pem/server.key for localhost + 127.0.0.1, and other-ca.pem."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    openssl(env, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=pushgate test CA", *ca_ext)
    openssl(env, "req", "-x509", *ec, "-keyout", "other-ca.key", "-out", "other-ca.pem", "-days", "2",
            "-subj", "/CN=pushgate other CA", *ca_ext)
    openssl(env, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(env.tmp, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl(env, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    openssl(env, "verify", "-CAfile", "ca.pem", "server.pem")
    return {k: os.path.join(env.tmp, v) for k, v in
            (("ca", "ca.pem"), ("other", "other-ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}


def start_sim(env, name, *args):
    log = os.path.join(env.tmp, f"smsc-{name}.log")
    err = os.path.join(env.tmp, f"smsc-{name}.stderr")
    cmd = [os.path.join(env.builddir, "smsc-sim"), "--listen", "127.0.0.1:0",
           "--dlr-delay-ms", "50", "--log", log, *args]
    with open(err, "ab") as e:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=e, stdin=subprocess.DEVNULL)
    line = harness._read_line_matching(proc, "ready port=", timeout=15)
    assert line, f"smsc-sim {name} did not start: {harness.tail(err, 10)}"
    threading.Thread(target=harness._drain, args=(proc.stdout, log + ".out"), daemon=True).start()
    return proc, int(line.split("ready port=", 1)[1].split()[0]), log, err


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def daemon_lines(env, *needles):
    return [l for l in read(env.pushgated_log).splitlines() if all(n in l for n in needles)]


def bind_states(env):
    return dict(env.sql("SELECT route, state FROM smpp_binds"))


def send_final(env, tos, timeout=40):
    body = env.send(tos, text="over tls")
    ids = [int(r["id"]) for r in body["recipients"]]
    idl = ",".join(map(str, ids))
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients WHERE id IN ({idl}) AND state IN "
                                    "('SMS_DELIVERED','SMS_FAILED','SMS_EXPIRED','SMS_UNKNOWN')")
                 == str(len(ids)), timeout=timeout, what=f"{len(ids)} recipients final")
    return ids


def smpp_bind_pdu():
    body = b"probe\0secret\0\0" + bytes([0x34, 0, 0]) + b"\0"
    return struct.pack(">IIII", 16 + len(body), 0x00000009, 0, 1) + body


@tests.case
def tls_route_binds_next_to_plain_and_failing_ones(env):
    pki = make_pki(env)
    extra["pki"] = pki
    sim = start_sim(env, "tls", "--tls-cert", pki["cert"], "--tls-key", pki["key"])
    extra["tls"] = sim
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)   # the kernel completes TCP handshakes; nobody ever answers
    extra["silent"] = silent
    tls_port = sim[1]
    tls = {"tls": "yes", "tls_verify": "yes", "tls_ca_file": pki["ca"], "tls_server_name": "localhost"}
    env.ini_overrides.update({
        "smpp": {"retry_min": "0.2", "response_timeout": "3"},
        "route sec": {"host": "127.0.0.1", "port": str(tls_port), "prefixes": "8210", **tls},
        "route plain": {"host": "127.0.0.1", "port": str(env.smsc_port), "default": "yes"},
        "route wrongca": {"host": "127.0.0.1", "port": str(tls_port), "prefixes": "8230",
                          **tls, "tls_ca_file": pki["other"]},
        "route badname": {"host": "127.0.0.1", "port": str(tls_port), "prefixes": "8250",
                          **tls, "tls_server_name": "carrier.example"},
        "route nottls": {"host": "127.0.0.1", "port": str(env.smsc_port), "prefixes": "8240",
                         "tls": "yes", "tls_verify": "no"},
        "route silent": {"host": "127.0.0.1", "port": str(silent.getsockname()[1]), "prefixes": "8260",
                         "tls": "yes", "response_timeout": "1"},
    })
    env.write_ini()
    env.start_pushgated(wait_smpp=False)
    env.wait_for(lambda: bind_states(env).get("sec") == "bound" and bind_states(env).get("plain") == "bound",
                 timeout=20, what="sec and plain bound")
    assert env.health().get("smpp") == "partial", env.health()
    states = bind_states(env)
    for route in ("wrongca", "badname", "nottls", "silent"):
        assert states.get(route) != "bound", states
    assert daemon_lines(env, "bind=sec/trx0", "ev=tls_established", "verified=yes"), \
        harness.tail(env.pushgated_log, 20)
    assert "ev=tls peer=" in read(sim[2]), read(sim[2])[-2000:]


@tests.case
def messages_over_tls_are_delivered_with_receipts(env):
    ids = send_final(env, ["821000000001", "821000000002", "821000000009"])
    idl = ",".join(map(str, ids))
    rows = env.sql(f"SELECT msisdn, route, state FROM recipients WHERE id IN ({idl}) ORDER BY msisdn")
    assert rows == [("821000000001", "sec", "SMS_DELIVERED"), ("821000000002", "sec", "SMS_DELIVERED"),
                    ("821000000009", "sec", "SMS_FAILED")], rows
    receipts = int(env.scalar(f"SELECT count(*) FROM events WHERE recipient_id IN ({idl}) AND kind = 'receipt'"))
    assert receipts == 3, receipts
    sim_log = read(extra["tls"][2])
    for n in ("821000000001", "821000000002", "821000000009"):
        assert sum(1 for l in sim_log.splitlines() if "ev=submit_sm " in l and f"dst={n}" in l) == 1, n


def start_capture(env, ports):
    """tshark on lo for `ports`, or (None, why not)."""
    if shutil.which("tshark") is None:
        return None, "tshark is not installed"
    pcap = os.path.join(env.tmp, "wire.pcapng")
    err_path = os.path.join(env.tmp, "tshark.stderr")
    open(pcap, "wb").close()
    os.chmod(pcap, 0o666)   # dumpcap may drop privileges before writing
    filt = " or ".join(f"tcp port {p}" for p in ports)
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(["tshark", "-i", "lo", "-f", filt, "-w", pcap, "-a", "duration:120"],
                                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    extra["tshark"] = proc
    env.wait_for(lambda: b"Capturing on" in open(err_path, "rb").read() or proc.poll() is not None,
                 timeout=20, what="tshark capturing")
    if proc.poll() is not None:
        return None, "tshark cannot capture on lo: " + harness.tail(err_path, 3).replace("\n", " ")
    return (proc, pcap), None


def tshark_fields(pcap, decode_as, display, field):
    r = subprocess.run(["tshark", "-r", pcap, *decode_as, "-Y", display, "-T", "fields", "-e", field],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    return [l for l in r.stdout.splitlines() if l.strip()]


@tests.case
def tls_link_carries_no_cleartext_on_the_wire(env):
    tls_port = extra["tls"][1]
    cap, why = start_capture(env, (tls_port, env.smsc_port))
    if cap is None:
        print(f"# cleartext check not run: {why}", flush=True)
        return
    proc, pcap = cap

    polls = {"n": 0}

    def probe_seen():
        # "Capturing on" comes before packets are really caught: a plain probe proves it
        if polls["n"] % 20 == 0:
            env.send([f"4477009001{polls['n'] // 20:02d}"], text="probe")
        polls["n"] += 1
        return b"4477009001" in open(pcap, "rb").read()
    env.wait_for(probe_seen, timeout=30, interval=0.2, what="a plain probe in the capture")
    send_final(env, ["821000000021", "447700900021"])
    time.sleep(0.5)   # let the receipts' frames reach the capture
    proc.terminate()
    proc.wait(timeout=20)
    app = tshark_fields(pcap, ["-d", f"tcp.port=={tls_port},tls"],
                        f"tcp.port == {tls_port} && tls.record.content_type == 23", "frame.number")
    assert len(app) >= 2, f"no TLS application records on the sec link: {app}"
    plain = tshark_fields(pcap, ["-d", f"tcp.port=={env.smsc_port},smpp"], "smpp.destination_addr",
                          "smpp.destination_addr")
    assert "447700900021" in plain, plain
    raw = open(pcap, "rb").read()
    assert b"447700900021" in raw, "the capture misses the plain link's bytes"
    assert b"821000000021" not in raw, "a destination number crossed the TLS link in clear"


@tests.case
def plain_route_still_works_alongside(env):
    ids = send_final(env, ["447700900001"])
    assert env.sql(f"SELECT route, state FROM recipients WHERE id = {ids[0]}") == [("plain", "SMS_DELIVERED")]
    assert "dst=447700900001" in env.smsc_log()
    assert "dst=447700900001" not in read(extra["tls"][2])


@tests.case
def wrong_ca_never_binds_logs_the_verify_error_and_retries(env):
    env.wait_for(lambda: len(daemon_lines(env, "bind=wrongca/trx0", "ev=tls_error", "during=handshake")) >= 2,
                 timeout=20, what="two failed handshakes on wrongca")
    line = daemon_lines(env, "bind=wrongca/trx0", "ev=tls_error")[0]
    assert 'verify="unable to get local issuer certificate"' in line, line
    assert "certificate verify failed" in line, line
    assert bind_states(env).get("wrongca") != "bound"
    assert env.pushgated_alive()
    assert not daemon_lines(env, "bind=wrongca/trx0", "ev=bound")


@tests.case
def certificate_without_the_configured_name_is_refused(env):
    env.wait_for(lambda: daemon_lines(env, "bind=badname/trx0", "ev=tls_error"), timeout=20,
                 what="badname handshake failure")
    line = daemon_lines(env, "bind=badname/trx0", "ev=tls_error")[0]
    assert 'verify="hostname mismatch"' in line, line
    assert bind_states(env).get("badname") != "bound"


@tests.case
def tls_towards_a_plain_smsc_fails_cleanly(env):
    env.wait_for(lambda: len(daemon_lines(env, "bind=nottls/trx0", "ev=tls_error", "during=handshake")) >= 2,
                 timeout=20, what="two failed handshakes on nottls")
    assert daemon_lines(env, "bind=nottls/trx0", "ev=tls_unverified"), "no warning for tls_verify = no"
    assert not daemon_lines(env, "bind=nottls/trx0", "ev=bound")
    assert env.pushgated_alive()
    assert env.smsc.poll() is None, "the plain smsc-sim died"


@tests.case
def silent_peer_times_the_handshake_out(env):
    env.wait_for(lambda: daemon_lines(env, "bind=silent/trx0", 'why="tls_handshake timed out"'), timeout=20,
                 what="handshake timeout on silent")
    assert bind_states(env).get("silent") != "bound"


@tests.case
def tls_listener_refuses_plain_smpp(env):
    # A cleartext bind to the TLS port never gets a bind_resp: the bytes are not a TLS record.
    with socket.create_connection(("127.0.0.1", extra["tls"][1]), timeout=5) as s:
        s.sendall(smpp_bind_pdu())
        s.settimeout(5)
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert not (len(got) >= 8 and got[4:8] == b"\x80\x00\x00\x09"), got[:32]
    env.wait_for(lambda: "ev=tls_error" in read(extra["tls"][2]), timeout=10, what="sim logs the refusal")


@tests.case
def everything_stops_cleanly(env):
    assert env.pushgated_alive() and extra["tls"][0].poll() is None
    ids = send_final(env, ["821000000011"])
    assert env.scalar(f"SELECT state FROM recipients WHERE id = {ids[0]}") == "SMS_DELIVERED"
    env.pushgated.terminate()
    assert env.pushgated.wait(timeout=20) == 0
    proc = extra["tls"][0]
    proc.terminate()
    assert proc.wait(timeout=20) == 0
    for path in (env.pushgated_log, extra["tls"][3]):
        text = read(path)
        assert "Sanitizer" not in text and "runtime error" not in text, text[-3000:]
    assert "ev=close" in read(extra["tls"][2])


def teardown_extra():
    if "tshark" in extra:
        harness._stop_process(extra["tshark"])
    if "tls" in extra:
        harness._stop_process(extra["tls"][0])
    if "silent" in extra:
        extra["silent"].close()


import atexit
atexit.register(teardown_extra)
tests.run(daemon=False)
