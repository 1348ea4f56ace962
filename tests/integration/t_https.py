"""t_https: the HTTP API and the device WebSocket over TLS ([server] https_listen).

A throwaway CA and a server certificate for localhost / 127.0.0.1 are made
with the openssl CLI in the test's temporary directory; pushgated listens on
plain HTTP (the harness's health checks) and on HTTPS side by side, with a
short idle_timeout so a stalled handshake is dropped within the test.
Clients verify the server against the CA, as a real client would.

Covers: POST /v1/messages over https -> 202 (and keep-alive, and a body of
many TLS records); a device registers over https, connects over wss, gets a
push and acks it (PUSH_DELIVERED in PostgreSQL); plain HTTP sent to the TLS
port is closed and nothing else suffers; half a ClientHello followed by
silence is dropped by the idle timeout; pushgated exits cleanly.
"""
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP
from wsclient import WS

tests = TAP()
IDLE_TIMEOUT = 2
PUSH_TIMEOUT = 10
state = {}


def openssl(env, *args):
    r = subprocess.run(["openssl", *args], cwd=env.tmp, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr[-500:]}"


def make_pki(env):
    """ca.pem, server.pem (localhost + 127.0.0.1, signed by the CA), server.key."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(env, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=pushgate https test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl(env, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(env.tmp, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl(env, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return {k: os.path.join(env.tmp, v) for k, v in (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}


def client_ctx():
    ctx = ssl.create_default_context(cafile=state["pki"]["ca"])
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def https(env, method, path, body=None, key=harness._USE_ENV_KEY, conn=None):
    """One request over TLS: (status, json or None, raw). conn: reuse a connection (keep-alive)."""
    hdrs = {}
    if key is harness._USE_ENV_KEY:
        key = env.key
    if key is not None:
        hdrs["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    own = conn is None
    if own:
        conn = http.client.HTTPSConnection("127.0.0.1", state["port"], timeout=15, context=client_ctx())
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        status = resp.status
    finally:
        if own:
            conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, parsed, raw


def https_up():
    try:
        return https(None, "GET", "/healthz", key=None)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


@tests.case
def pushgated_listens_on_https_next_to_plain_http(env):
    pki = make_pki(env)
    state["pki"] = pki
    state["port"] = harness.free_port()
    env.ini_overrides.update({
        "server": {"https_listen": f"127.0.0.1:{state['port']}", "tls_cert": pki["cert"],
                   "tls_key": pki["key"], "tls_min_version": "1.2", "idle_timeout": str(IDLE_TIMEOUT)},
        "push": {"otp_echo": "yes", "push_timeout": str(PUSH_TIMEOUT), "heartbeat": "5"},
    })
    env.write_ini()
    env.start_pushgated()
    env.wait_for(https_up, timeout=10, what="GET /healthz over https")
    with open(env.pushgated_log, encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert f"port={state['port']} tls=yes" in log, "no TLS listen line"
    assert f"port={env.http_port} tls=no" in log, "no plain listen line"


@tests.case
def message_posted_over_https_with_a_verified_certificate_is_accepted(env):
    st, body, raw = https(env, "POST", "/v1/messages", {"to": ["821077700001"], "text": "over https",
                                                        "from": "ACME"})
    assert st == 202, (st, raw)
    rid = int(body["recipients"][0]["id"])
    env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE id = {rid}") == "SMS_DELIVERED",
                 timeout=20, what="the https message delivered by SMS")
    # keep-alive: three requests on one TLS connection
    conn = http.client.HTTPSConnection("127.0.0.1", state["port"], timeout=15, context=client_ctx())
    try:
        for _ in range(3):
            st, h, _ = https(env, "GET", "/healthz", key=None, conn=conn)
            assert st == 200, st
        sock_version = conn.sock.version()
        assert sock_version in ("TLSv1.2", "TLSv1.3"), sock_version
    finally:
        conn.close()
    # a body of many TLS records (~600 KB): read whole, refused as JSON, not as a broken connection
    st, b, raw = https(env, "POST", "/v1/messages", b"[" + b" " * 600000 + b"x")
    assert st == 400 and b["error"]["code"] == "invalid_json", (st, raw[:200])


@tests.case
def a_client_that_does_not_trust_our_ca_refuses_the_connection(env):
    ctx = ssl.create_default_context()   # system roots only: our throwaway CA is unknown
    try:
        with socket.create_connection(("127.0.0.1", state["port"]), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost"):
                pass
    except ssl.SSLCertVerificationError:
        pass
    else:
        raise AssertionError("an untrusted certificate was accepted")
    assert https_up()


@tests.case
def device_registers_and_connects_over_wss_and_acks_a_push(env):
    st, b, raw = https(env, "POST", "/v1/devices", {"msisdn": "821077700010", "platform": "test"}, key=None)
    assert st == 202, (st, raw)
    st, v, raw = https(env, "POST", f"/v1/devices/{b['device_id']}/verify", {"code": b["code"]}, key=None)
    assert st == 200, (st, raw)
    ws = WS("127.0.0.1", state["port"], ssl_context=client_ctx(), server_hostname="localhost")
    try:
        assert ws.sock.version() in ("TLSv1.2", "TLSv1.3")
        ws.send({"type": "hello", "token": v["token"]})
        assert ws.recv()["type"] == "welcome"
        st, body, raw = https(env, "POST", "/v1/messages", {"to": ["821077700010"], "text": "푸시 over wss",
                                                            "from": "ACME"})
        assert st == 202, (st, raw)
        rid = int(body["recipients"][0]["id"])
        msg = ws.recv_type("msg")
        assert msg["id"] == rid and msg["text"] == "푸시 over wss", msg
        ws.send({"type": "ack", "id": rid})
        env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE id = {rid}") == "PUSH_DELIVERED",
                     timeout=10, what="PUSH_DELIVERED")
        # a 50 KB frame spans several TLS records; the ping after it still answers
        ws.send({"type": "ping", "pad": "x" * 50000})
        assert ws.recv_type("pong")["type"] == "pong"
        ws.send({"type": "ping"})
        assert ws.recv_type("pong")["type"] == "pong"
    finally:
        ws.close()
    state["token"] = v["token"]


@tests.case
def plain_http_on_the_tls_port_is_closed_and_nothing_else_suffers(env):
    with socket.create_connection(("127.0.0.1", state["port"]), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        got = b""
        try:
            while time.monotonic() - t0 < 5:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        assert b"HTTP/1.1 200" not in got, got
        assert time.monotonic() - t0 < IDLE_TIMEOUT + 1, "closed only by the idle timeout"
    assert env.pushgated_alive()
    assert https_up()
    assert env.health() is not None


@tests.case
def half_a_handshake_then_silence_is_dropped_by_the_idle_timeout(env):
    # a real ClientHello, cut in half
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert len(hello) > 100, len(hello)
    with socket.create_connection(("127.0.0.1", state["port"]), timeout=IDLE_TIMEOUT + 8) as s:
        s.sendall(hello[: len(hello) // 2])
        t0 = time.monotonic()
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        waited = time.monotonic() - t0
    assert data == b"", data
    assert IDLE_TIMEOUT - 0.5 <= waited <= IDLE_TIMEOUT + 5, f"dropped after {waited:.2f}s"
    # a wss device is not dropped by the same timeout: pings keep it (heartbeat 5 s, idle 15 s)
    ws = WS("127.0.0.1", state["port"], ssl_context=client_ctx(), server_hostname="localhost")
    try:
        ws.send({"type": "hello", "token": state["token"]})
        assert ws.recv()["type"] == "welcome"
        time.sleep(IDLE_TIMEOUT + 1)
        ws.send({"type": "ping"})
        assert ws.recv_type("pong")["type"] == "pong"
    finally:
        ws.close()
    assert env.pushgated_alive()


tests.run(daemon=False)
