"""t_signals: what pushgated tells its service manager, and what SIGHUP does (issue: faults).

A pushgated started with $NOTIFY_SOCKET sends READY=1 once its gate is open
(/readyz answers 200 by then) and STOPPING=1 when SIGTERM starts the drain.
SIGHUP never stops it: it reopens [server] log_file (logrotate's rename,
then SIGHUP: the next lines go to the new file), reloads log_level, says so
in the log, and keeps running on an ini it can't read, saying that too.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP, free_port

tests = TAP()
state = {}


readyz = harness.Env.readyz_at


def write_ini(env, port, log_file, level="info", broken=False, grace=0, path=None):
    with open(env.ini_path) as f:
        text = f.read().replace(f"127.0.0.1:{env.http_port}", f"127.0.0.1:{port}")
    lines = []
    for line in text.split("\n"):
        k = line.split("=")[0].strip()
        if k == "log_file":
            line = f"log_file = {log_file}"
        elif k == "log_level":
            line = f"log_level = {level}"
        elif k == "drain_grace":
            line = f"drain_grace = {grace}"
        lines.append(line)
    if broken:
        lines.append("[server]\nno_such_key = 1")
    env.write_private(path or state["ini"], "\n".join(lines))


def notes(sock, timeout):
    """What arrived on the notify socket within timeout: a list of datagrams."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    return got


@tests.case
def ready_is_notified_once_the_gate_is_open(env):
    sock_path = os.path.join(env.tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    state["sock"] = sock
    port = free_port()
    state["port"] = port
    state["ini"] = os.path.join(env.tmp, "signals.ini")
    state["log"] = os.path.join(env.tmp, "signals.log")
    write_ini(env, port, state["log"])
    child_env = dict(env._child_env(), NOTIFY_SOCKET=sock_path)
    state["proc"] = subprocess.Popen([os.path.join(env.builddir, "pushgated"), "-c", state["ini"]],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=child_env)
    sock.settimeout(30)
    first = sock.recv(4096).decode()
    assert first == "READY=1", first
    st, body = readyz(port)
    assert st == 200 or (body or {}).get("db") == "up", (st, body)   # the gate is open when READY comes
    assert "ev=ready" in harness._read_text(state["log"])


@tests.case
def sighup_reopens_the_log_file_reloads_log_level_and_keeps_serving(env):
    proc, port = state["proc"], state["port"]
    rotated = state["log"] + ".1"
    os.rename(state["log"], rotated)          # logrotate's move, then its SIGHUP
    write_ini(env, port, state["log"], level="debug")
    proc.send_signal(signal.SIGHUP)
    env.wait_for(lambda: "ev=reloaded log_reopened=yes log_level=debug" in harness._read_text(state["log"]),
                 timeout=10, what="the reload said in the new log file")
    assert proc.poll() is None
    assert "ev=reloaded" not in harness._read_text(rotated)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/messages", body=json.dumps({"from": "HUP", "to": ["821045000000"], "text": "x"}),
              headers={"Authorization": f"Bearer {env.key}", "Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 202, (r.status, r.read())
    r.read()
    env.wait_for(lambda: "level=debug" in harness._read_text(state["log"]), timeout=10, what="debug lines")


@tests.case
def sighup_with_an_ini_it_cannot_read_keeps_running_and_says_so(env):
    proc, port = state["proc"], state["port"]
    write_ini(env, port, state["log"], broken=True)
    proc.send_signal(signal.SIGHUP)
    env.wait_for(lambda: "ev=reload_failed" in harness._read_text(state["log"]), timeout=10,
                 what="the failed reload logged")
    time.sleep(0.5)
    assert proc.poll() is None and readyz(port)[0] == 200


@tests.case
def sigterm_notifies_stopping_then_the_daemon_exits_cleanly(env):
    proc = state["proc"]
    notes(state["sock"], 0.05)   # whatever came before
    proc.send_signal(signal.SIGTERM)
    got = notes(state["sock"], 5)
    assert "STOPPING=1" in got, got
    assert proc.wait(timeout=30) == 0
    log = harness._read_text(state["log"]) + harness._read_text(state["log"] + ".1")
    assert "level=error" not in log and "ERROR: AddressSanitizer" not in log, log[-2000:]


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


@tests.case
def during_drain_grace_readyz_says_draining_and_requests_are_still_served(env):
    # a load balancer must see "not ready" before the ports close: [server] drain_grace
    port = free_port()
    ini, log = os.path.join(env.tmp, "grace.ini"), os.path.join(env.tmp, "grace.log")
    write_ini(env, port, log, grace=3, path=ini)
    proc = subprocess.Popen([os.path.join(env.builddir, "pushgated"), "-c", ini], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env._child_env())
    try:
        env.wait_for(lambda: readyz(port)[0] == 200, timeout=30, what="the second daemon ready")
        proc.send_signal(signal.SIGTERM)
        env.wait_for(lambda: "ev=stopping" in harness._read_text(log), timeout=10, what="the stop logged")
        st, body = readyz(port)
        assert st == 503 and body["draining"] is True and body["reason"] == "draining", (st, body)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/v1/messages", body=json.dumps({"from": "HUP", "to": ["821045000001"], "text": "x"}),
                  headers={"Authorization": f"Bearer {env.key}", "Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 202, (r.status, r.read())
        r.read()
        c.close()
        assert not re.search(r"ev=drain$", harness._read_text(log), re.M), "drained before the grace was over"
        env.wait_for(lambda: refused(port), timeout=15, what="the ports closed once the grace was over")
        assert proc.wait(timeout=30) == 0
        text = harness._read_text(log)
        assert "drain_grace=3" in text and re.search(r"ev=drain$", text, re.M), text[-1500:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


tests.run()
