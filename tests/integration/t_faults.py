"""t_faults: faults injected under mixed traffic through two pushgated nodes
that share one database; after each fault one checker asserts the invariants.

Traffic, from clients pushgate shares no code with where one exists: HTTP
single-recipient and bulk POST /v1/messages, Kannel's sendsms, an ESME on
our SMPP server (tests/interop/netsmpp_esme.pl, Net::SMPP), messages to
numbers with the app, whose devices (WebSocket) connect to either node, ack
most messages, leave some unacked and drop their connection now and then
(the SMS fallback takes those), and every state change POSTed to the
account's webhook.  Both nodes' SMPP engines reach
smsc-sim through a TCP relay in this file, the carrier link, which can be
made slow and lossy on demand (the kernel here has no netem: a lost segment
is a stall of its retransmission time, which is what TCP turns loss into).

Faults, each during traffic, then traffic stops and the checker runs:
  kill -9 of a node (KILLS cycles, the two nodes in turn, restarted at once);
  a PostgreSQL restart; smsc-sim stopped and started again (its receipts
  kept, as a carrier keeps them); smsc-sim hung (SIGSTOP: TCP open, no
  answers); the carrier link slow and lossy; an ESME killed mid-window; the
  webhook receiver answering 500, then coming back; the database's disk full
  (its tablespace on a tmpfs, shrunk to what it holds), where pushgated
  answers 503 and resumes when space returns.
The checker: 0 acknowledged messages lost; every recipient in exactly one
final state, the one smsc-sim's rules give (a device's: pushed, or
delivered by SMS); no number accepted by the carrier more often than once
per recipient of it that went by SMS, plus its recorded resends; every ESME receipt
delivered, again only when the answer to a copy may have been lost (its ESME
died, or its node or the database went away before the node recorded the
answer: SMPP receipts are delivered at least once); every webhook event delivered, with its stable event id; no lease left past its
expiry; each node's descriptors and memory back near their baseline.

PUSHGATE_FAULTS=large runs the larger set (16 kill cycles, every other fault
twice, longer traffic); PUSHGATE_FAULTS_SEED picks the random points.
"""
import collections
import errno
import http.client
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FINAL_STATES, TAP, free_port, outcome_ok
from wsclient import WS

LARGE = os.environ.get("PUSHGATE_FAULTS") == "large"
KILLS = 16 if LARGE else 6
REPEAT = 2 if LARGE else 1
TRAFFIC = 2.5 if LARGE else 1.5     # seconds of traffic on each side of a fault
SETTLE = 90                         # seconds the checker waits for everything to be final
TABLESPACE_MB = 4096                # the tmpfs's size (memory is used only as it fills)
FULL_MARGIN_MB = 4                  # what is left when the disk-full fault shrinks it
DEVICES = 8                         # app installs, each on its own number
ALL_FINAL = FINAL_STATES | {"PUSH_DELIVERED", "DROPPED", "CANCELED"}
RNG = random.Random(int(os.environ.get("PUSHGATE_FAULTS_SEED", "17")))

tests = TAP()
S = {}   # the world: nodes, relay, receiver, traffic, findings


# --- the carrier link ---------------------------------------------------------
class Relay:
    """TCP relay pushgated -> smsc-sim.  slow: every chunk waits 50-250 ms and
    one in twenty waits a retransmission's 1 s; order is kept per direction."""

    def __init__(self, env):
        self.env = env
        self.slow = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.open = set()
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                down, _ = self.sock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.env.smsc_port), timeout=5)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            with self.lock:
                self.open.update((down, up))
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    def pipe(self, src, dst):
        rng = random.Random()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.slow:
                    time.sleep(1.0 if rng.random() < 0.05 else rng.uniform(0.05, 0.25))
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
            with self.lock:
                self.open.discard(s)


# --- the webhook receiver -----------------------------------------------------
class Receiver:
    def __init__(self):
        self.failing = False
        self.events = collections.Counter()   # event_id -> deliveries
        self.posts = collections.Counter()    # status answered -> count
        self.lock = threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if rec.failing else 200
                if status == 200:
                    ids = [e["event_id"] for e in json.loads(body)["events"]]
                    with rec.lock:
                        rec.events.update(ids)
                with rec.lock:
                    rec.posts[status] += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass   # a killed node's connection, reset: nothing to report

        self.server = Server(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- the nodes ----------------------------------------------------------------
class Node:
    def __init__(self, env, label):
        self.env, self.label = env, label
        self.port, self.smpp_port = free_port(), free_port()
        self.ini = os.path.join(env.tmp, f"node{label}.ini")
        self.log = os.path.join(env.tmp, f"node{label}.log")
        self.proc = None
        self.baseline = {}   # pid -> (fds, rss kB)
        saved = env.http_port
        env.http_port = self.port
        env.ini_overrides.setdefault("smpp_server", {})["listen"] = f"127.0.0.1:{self.smpp_port}"
        env.write_ini()
        os.replace(env.ini_path, self.ini)
        env.http_port = saved

    def start(self):
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([os.path.join(self.env.builddir, "pushgated"), "-c", self.ini],
                                         stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env._child_env())
        self.env.wait_for(lambda: self.ready(), timeout=60, what=f"node {self.label} ready")

    def ready(self):
        assert self.proc.poll() is None, f"node {self.label} exited {self.proc.returncode}"
        st, body = self.env.readyz_at(self.port)
        return st == 200 and body.get("smpp") == "bound"

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        ack_lost(self.label, time.time(), time.time(), f"node {self.label} killed")

    def resources(self):
        pid = self.proc.pid
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return fds, rss


# --- traffic ------------------------------------------------------------------
class Traffic:
    """Every door at once, while running.  Each request names fresh numbers,
    so an acknowledged number is an acknowledged recipient."""

    def __init__(self, env, nodes):
        self.env, self.nodes = env, nodes
        self.lock = threading.Lock()
        self.n = 0
        self.acked = set()                  # numbers acknowledged by HTTP or Kannel
        self.refused = collections.Counter()  # (door, status) of answers other than acceptance
        self.esme_runs = []                 # (log path, Popen)
        self.esme_node = {}                 # run index -> label of the node it bound to
        self.push_acked = set()             # recipient ids acknowledged for the devices' numbers
        self.running = threading.Event()
        self.threads = []

    def number(self):
        with self.lock:
            self.n += 1
            return str(821050000000 + self.n)

    def start(self):
        self.running.set()
        self.threads = [threading.Thread(target=f, args=(i,), daemon=True)
                        for i, f in enumerate([self.single, self.single, self.single, self.bulk,
                                               self.kannel, self.esme, self.push]
                                               + [lambda i, d=d: self.device(d) for d in S["devices"]])]
        for t in self.threads:
            t.start()

    def stop(self):
        self.running.clear()
        for t in self.threads:
            t.join(timeout=120)

    def _door(self, name, i, request):
        conns = {}
        k = i
        while self.running.is_set():
            node = self.nodes[k % len(self.nodes)]
            k += 1
            try:
                c = conns.get(node.label) or http.client.HTTPConnection("127.0.0.1", node.port, timeout=15)
                conns[node.label] = c
                nums, method, path, body, headers, ok = request()
                c.request(method, path, body, headers)
                r = c.getresponse()
                raw = r.read()
                if ok(r.status, raw):
                    with self.lock:
                        self.acked.update(nums)
                else:
                    with self.lock:
                        self.refused[(name, r.status)] += 1
                    time.sleep(0.05)
            except (OSError, http.client.HTTPException):
                conns.pop(node.label, None)
                with self.lock:
                    self.refused[(name, "conn")] += 1
                time.sleep(0.05)
        for c in conns.values():
            c.close()

    def _json(self, n):
        nums = [self.number() for _ in range(n)]
        body = json.dumps({"from": "PUSHGATE", "to": nums, "text": "fault suite"})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.env.key}"}
        return nums, "POST", "/v1/messages", body, headers, lambda st, raw: st == 202

    def single(self, i):
        self._door("single", i, lambda: self._json(1))

    def bulk(self, i):
        def req():
            time.sleep(0.2)
            return self._json(5)
        self._door("bulk", i, req)

    def push(self, i):
        """Messages to numbers with the app: pushed, or by SMS when the device drops them."""
        def req():
            time.sleep(0.05)
            to = RNG.choice(S["devices"])["msisdn"]
            body = json.dumps({"from": "PUSHGATE", "to": [to], "text": "pushed"})
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.env.key}"}

            def ok(st, raw):
                if st == 202:
                    with self.lock:
                        self.push_acked.update(r["id"] for r in json.loads(raw)["recipients"])
                return st == 202   # counted here, not as a fresh number (nums is empty)
            return [], "POST", "/v1/messages", body, headers, ok
        self._door("push", i, req)

    def device(self, d):
        """An app: connects to either node, acks most messages, leaves some unacked, drops its
        connection now and then (a phone going to sleep)."""
        rng = random.Random(d["msisdn"])
        while self.running.is_set():
            node = rng.choice(self.nodes)
            try:
                ws = WS("127.0.0.1", node.port, timeout=0.5)
            except OSError:
                time.sleep(0.2)
                continue
            try:
                ws.send({"type": "hello", "token": d["token"]})
                until = time.monotonic() + rng.uniform(1, 4)
                while self.running.is_set() and time.monotonic() < until:
                    try:
                        m = ws.recv()
                    except socket.timeout:
                        continue
                    if m.get("type") != "msg":
                        continue
                    r = rng.random()
                    if r < 0.1:
                        break                       # dropped with the message unacked
                    if r < 0.9:
                        ws.send({"type": "ack", "id": m["id"]})
            except Exception:   # closed by the server (its node killed), or a broken frame
                time.sleep(0.2)
            finally:
                try:
                    ws.close()
                except Exception:
                    pass

    def kannel(self, i):
        def req():
            n = self.number()
            q = urllib.parse.urlencode({"username": "test", "password": self.env.key, "from": "ACME",
                                        "to": n, "text": "fault suite via sendsms"})
            return [n], "GET", "/cgi-bin/sendsms?" + q, None, {}, \
                lambda st, raw: st == 202 and raw == b"0: Accepted for delivery"
        self._door("kannel", i, req)

    def esme(self, i):
        k = 0
        while self.running.is_set():
            node = self.nodes[k % len(self.nodes)]
            k += 1
            # receipts go to whichever ESME of the account is bound: this one does not wait for them
            p, _ = self.run_esme(node, count=20, window=10, wait=True, expect=0)
            if p.returncode != 0:
                time.sleep(0.2)

    def run_esme(self, node, count, window, wait, mode="trx", expect=None, seconds=60):
        with self.lock:
            run = len(self.esme_runs)
            assert run < 1000, "ESME runs name their numbers by a 3-digit run index"
            log = os.path.join(self.env.tmp, f"esme{run}.log")
            cmd = ["perl", os.path.join(self.env.srcdir, "tests", "interop", "netsmpp_esme.pl"),
                   "--port", str(node.smpp_port), "--log", log, "--mode", mode, "--system-id", "faults",
                   "--password", "pwfaults", "--count", str(count), "--window", str(window),
                   "--prefix", f"8219{run:03d}",
                   "--expect-receipts", str(count if expect is None else expect),
                   "--max-seconds", str(seconds)]
            err = open(log + ".stderr", "wb")
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
            err.close()
            self.esme_runs.append((log, p))
            self.esme_node[run] = node.label
        if wait:
            try:
                p.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p, log


def esme_events(log):
    out = []
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("ev="):
                    out.append(dict(t.split("=", 1) for t in line.split() if "=" in t))
    except FileNotFoundError:
        pass
    return out


# --- the checker ----------------------------------------------------------------
ACK_GRACE = 10   # s: an ESME's answer is recorded at the end of its node's loop turn, behind the store


def ack_lost(node, t0, t1, what):
    """Between t0 and t1 an answer a node had from an ESME could be lost before it was recorded:
    the node died (node: its label), or the database was away for every node (node: None)."""
    S["ack_lost"].append((node, round(t0, 3), round(t1, 3), what))


def resend_explained(tr, run, t):
    """A receipt that run `run` got at time t may reach an ESME again (at least once): the ESME
    died before it could answer, or its answer was lost with its node or the database before the
    node recorded it (within ACK_GRACE)."""
    if tr.esme_runs[run][1].returncode != 0:
        return True
    node = tr.esme_node.get(run)
    return any((n is None or n == node) and t0 <= t + ACK_GRACE and t <= t1 for n, t0, t1, _ in S["ack_lost"])


def check(env, what):
    """Traffic has stopped: everything settles, then every invariant holds."""
    tr = S["traffic"]
    finals = ",".join(f"'{s}'" for s in sorted(ALL_FINAL))
    # receipts still owed to the ESME account go to a receiver bound now (on either node)
    owed = lambda: int(env.scalar("SELECT count(*) FROM smpp_outbox WHERE delivered_at IS NULL"))
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        pending = int(env.scalar(f"SELECT count(*) FROM recipients WHERE state NOT IN ({finals})"))
        hooks = int(env.scalar("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL"
                               " AND given_up_at IS NULL"))
        if pending == 0 and hooks == 0 and owed() == 0:
            break
        if pending == 0 and owed() > 0:
            tr.run_esme(RNG.choice(S["nodes"]), count=0, window=1, wait=True, mode="rx", expect=owed(),
                        seconds=15)
        else:
            time.sleep(0.3)
    problems = []
    pending = env.sql(f"SELECT state, count(*) FROM recipients WHERE state NOT IN ({finals}) GROUP BY 1")
    if pending:
        problems.append(f"not final {SETTLE} s after the traffic stopped: {pending}")
    hooks = env.scalar("SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL")
    if hooks != "0":
        problems.append(f"{hooks} webhook events undelivered")
    if owed():
        problems.append(f"{owed()} receipts never delivered to the ESME")

    # 0 acknowledged lost; each in the state smsc-sim's rules give
    acked = set(tr.acked)
    esme_acked = {}   # resp id -> dst
    for log, _ in tr.esme_runs:
        for e in esme_events(log):
            if e.get("ev") == "resp" and e.get("status") == "0x00":
                esme_acked[e["id"]] = e["dst"]
    numbers = acked | set(esme_acked.values())
    rows = env.sql("SELECT msisdn, state, error_code FROM recipients")
    stored = {m.lstrip("+"): (st, code) for m, st, code in rows}
    lost = sorted(n for n in numbers if n not in stored)
    if lost:
        problems.append(f"{len(lost)} acknowledged, not stored: {lost[:5]}")
    wrong = [(n, stored[n]) for n in numbers if n in stored and not outcome_ok(n, *stored[n])]
    if wrong:
        problems.append(f"{len(wrong)} in the wrong final state: {wrong[:5]}")
    push_ids = set(tr.push_acked)
    push_rows = {int(i): st for i, st in env.sql(
        "SELECT r.id, r.state FROM recipients r JOIN devices d ON d.msisdn = r.msisdn WHERE r.account_id <> "
        "(SELECT id FROM accounts WHERE role = 'system')")}
    push_lost = sorted(i for i in push_ids if int(i) not in push_rows)
    if push_lost:
        problems.append(f"{len(push_lost)} acknowledged for the devices' numbers, not stored: {push_lost[:5]}")
    push_wrong = [(i, push_rows[int(i)]) for i in push_ids if int(i) in push_rows
                  and push_rows[int(i)] not in ("PUSH_DELIVERED", "SMS_DELIVERED")]
    if push_wrong:
        problems.append(f"devices' messages neither pushed nor delivered by SMS: {push_wrong[:5]}")
    twice = env.sql("SELECT recipient_id, count(*) FROM events WHERE kind = 'state' AND state IN"
                    f" ({finals}) GROUP BY 1 HAVING count(*) > 1 LIMIT 5")
    if twice:
        problems.append(f"recipients final twice: {twice}")

    # the carrier took each number at most once per recipient of it that went by SMS, plus the resends
    accepted = env.smsc_submits(accepted_only=True)
    resends, by_sms = collections.Counter(), collections.Counter()
    for m, sms, rs in env.sql("SELECT r.msisdn, count(DISTINCT e.recipient_id) FILTER (WHERE e.state = 'SMS_SUBMITTED'),"
                              " count(*) FILTER (WHERE e.kind = 'resend')"
                              " FROM events e JOIN recipients r ON r.id = e.recipient_id GROUP BY 1"):
        resends[m.lstrip("+")], by_sms[m.lstrip("+")] = int(rs), int(sms)
    extra = [(n, c, by_sms[n], resends[n]) for n, c in accepted.items() if c > by_sms[n] + resends[n]]
    if extra:
        problems.append(f"accepted by the carrier more often than resends explain: {extra[:5]}")

    # ESME receipts: all there; a copy again only when the answer to the one before may not have
    # been recorded (see resend_explained)
    got = collections.defaultdict(list)   # tlv id -> [(run index, time the ESME got it)]
    for k, (log, p) in enumerate(tr.esme_runs):
        for e in esme_events(log):
            if e.get("ev") == "receipt":
                got[e["tlv_id"]].append((k, float(e["t"])))
    missing = [i for i in esme_acked if i not in got]
    if missing:
        problems.append(f"{len(missing)} ESME submits without a receipt: {missing[:5]}")
    for i, copies in got.items():
        runs = [k for k, _ in copies]
        unexplained = [c for c in copies[:-1] if not resend_explained(tr, *c)]
        if len(set(runs)) < len(runs) or unexplained:
            problems.append(f"receipt {i} delivered {len(runs)} times: " + ", ".join(
                f"run {k} via node {tr.esme_node.get(k)} at {t:.3f} exit {tr.esme_runs[k][1].returncode}"
                for k, t in copies) + f"; answers lost {S['ack_lost']}")
            break

    # webhooks: every event delivered, ids stable (the receiver saw each id of the outbox)
    outbox_ids = {int(r[0]) for r in env.sql("SELECT event_id FROM webhook_outbox")}
    with S["receiver"].lock:
        seen = set(S["receiver"].events)
    unseen = outbox_ids - seen
    if unseen:
        problems.append(f"{len(unseen)} webhook events never reached the receiver: {sorted(unseen)[:5]}")

    # nothing stuck
    stuck = env.sql("SELECT 'sms', count(*) FROM recipients WHERE state = 'SMS_SUBMITTED' AND lease_until < now()"
                    " UNION ALL SELECT 'webhook', count(*) FROM webhook_outbox WHERE lease_until < now()"
                    " AND delivered_at IS NULL AND given_up_at IS NULL"
                    " UNION ALL SELECT 'smpp_outbox', count(*) FROM smpp_outbox WHERE lease_until < now()"
                    " AND delivered_at IS NULL")
    stuck = [s for s in stuck if s[1] != "0"]
    if stuck:
        problems.append(f"leases past their expiry: {stuck}")

    # descriptors and memory back near the baseline of each process (under AddressSanitizer RSS
    # says nothing: its quarantine keeps up to 256 MB of freed memory; LeakSanitizer checks at exit)
    for node in S["nodes"]:
        fds, rss = node.resources()
        base = node.baseline.setdefault(node.proc.pid, (fds, rss))
        if fds > base[0] + 16 or (not S["asan"] and rss > base[1] + 96 * 1024):
            problems.append(f"node {node.label} pid {node.proc.pid}: fds {base[0]} -> {fds}, "
                            f"RSS {base[1]} -> {rss} kB")
    S["checks"].append((what, problems))
    pushed = sum(1 for st in push_rows.values() if st == "PUSH_DELIVERED")
    S["last"] = (f"{len(numbers)} numbers acknowledged, {len(push_ids)} to devices ({pushed} pushed), "
                 f"{sum(resends.values())} resends recorded, "
                 f"{len(esme_acked)} ESME submits with {sum(len(r) for r in got.values())} receipts, "
                 f"{len(outbox_ids)} webhook events")
    return problems


def fault_round(env, what, inject):
    """Traffic, the fault at a random point, traffic, stop, check."""
    tr = S["traffic"]
    tr.start()
    try:
        time.sleep(RNG.uniform(0.3, TRAFFIC))
        inject()
        time.sleep(TRAFFIC)
    finally:
        tr.stop()
    problems = check(env, what)
    print(f"# {what}: {S['last']}; refused so far {dict(tr.refused)}", flush=True)
    assert not problems, f"after {what}: " + "; ".join(problems)


# --- the world ------------------------------------------------------------------
def tablespace_on_tmpfs(env):
    """The database's tables on a tmpfs of their own, so a test can fill their disk."""
    path = os.path.join(env.tmp, "small")
    os.mkdir(path)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TABLESPACE_MB}m,mode=0700", "tmpfs", path],
                   check=True, capture_output=True)
    env.on_teardown(lambda: subprocess.run(["umount", "-l", path], check=False))
    space = os.path.join(path, "ts")
    os.mkdir(space, 0o700)
    env.pg_owns(path)
    env.pg_owns(space)
    env.psql(f"CREATE TABLESPACE small LOCATION '{space}'", dbname="postgres")
    env.psql("ALTER DATABASE pushgate SET TABLESPACE small", dbname="postgres")
    return path


def world(env):
    if "error" in S:
        raise AssertionError(f"the fault suite's set-up failed: {S['error']}")
    if "traffic" in S:
        return S
    try:
        return build_world(env)
    except Exception as e:
        S["error"] = repr(e)
        raise


def build_world(env):
    S["checks"] = []
    S["ack_lost"] = []
    with open(os.path.join(env.builddir, "pushgated"), "rb") as f:
        S["asan"] = b"__asan_init" in f.read()   # built with --enable-asan
    S["tmpfs"] = tablespace_on_tmpfs(env)
    S["relay"] = Relay(env)
    S["receiver"] = Receiver()
    env.ctl("account", "webhook", "test", f"http://127.0.0.1:{S['receiver'].port}/hook", "hook-secret", check=True)
    env.ctl("smpp-account", "add", "test", "--system-id", "faults", "--password", "pwfaults", "--window", "100",
            check=True)
    env.ini_overrides.update({
        "smpp": {"host": "127.0.0.1", "port": str(S["relay"].port), "response_timeout": "2",
                 "enquire_link": "1", "reconnect_min": "1", "reconnect_max": "2", "retry_min": "1"},
        "smpp_server": {"receipt_retry": "3", "enquire_link": "5"},
        "webhook": {"backoff_min": "1", "backoff_max": "2"},
        "push": {"otp_echo": "yes", "push_timeout": "2", "heartbeat": "5"},
    })
    S["nodes"] = [Node(env, "A"), Node(env, "B")]
    for n in S["nodes"]:
        n.start()
    env.pushgated = S["nodes"][0].proc   # the harness stops and checks node A at the end
    env.http_port = S["nodes"][0].port
    S["devices"] = []
    for i in range(DEVICES):
        msisdn = f"821060000{i:02d}0"
        st, _, body, raw = env.http("POST", "/v1/devices", {"msisdn": msisdn, "platform": "test"}, key=None)
        assert st == 202, (st, raw)
        st, _, v, raw = env.http("POST", f"/v1/devices/{body['device_id']}/verify", {"code": body["code"]},
                                 key=None)
        assert st == 200, (st, raw)
        S["devices"].append({"msisdn": msisdn, "token": v["token"]})
    S["traffic"] = Traffic(env, S["nodes"])
    # a first round without faults sets each process's baseline
    fault_round(env, "warm-up", lambda: None)
    return S


# --- the faults -------------------------------------------------------------------
@tests.case
def kill_9_of_either_node_under_traffic_loses_nothing(env):
    w = world(env)
    for k in range(KILLS):
        node = w["nodes"][k % 2]

        def inject():
            node.kill9()
            node.start()
            if node.label == "A":
                env.pushgated = node.proc
        fault_round(env, f"kill -9 of node {node.label} ({k + 1}/{KILLS})", inject)


@tests.case
def a_postgresql_restart_under_traffic_loses_nothing(env):
    world(env)
    for k in range(REPEAT):
        def inject():
            t0 = time.time()
            env.stop_pg()
            time.sleep(1.5)
            env.start_pg()
            ack_lost(None, t0, time.time(), "PostgreSQL restarted")
        fault_round(env, f"PostgreSQL restart ({k + 1}/{REPEAT})", inject)


@tests.case
def the_smsc_stopped_and_started_again_loses_nothing(env):
    world(env)
    for k in range(REPEAT):
        def inject():
            port = env.smsc_port
            env.smsc.send_signal(signal.SIGTERM)
            env.smsc.wait(timeout=10)
            time.sleep(0.5)
            env.start_smsc(port=port)
        fault_round(env, f"SMSC restart ({k + 1}/{REPEAT})", inject)


@tests.case
def an_smsc_that_hangs_with_its_connections_open_loses_nothing(env):
    world(env)
    for k in range(REPEAT):
        def inject():
            env.smsc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(4)
            finally:
                env.smsc.send_signal(signal.SIGCONT)
        fault_round(env, f"SMSC hung 4 s ({k + 1}/{REPEAT})", inject)


@tests.case
def a_slow_lossy_carrier_link_loses_nothing(env):
    w = world(env)
    for k in range(REPEAT):
        def inject():
            w["relay"].slow = True
            try:
                time.sleep(4)
            finally:
                w["relay"].slow = False
        fault_round(env, f"slow, lossy carrier link ({k + 1}/{REPEAT})", inject)


@tests.case
def an_esme_killed_mid_window_gets_every_receipt_on_its_next_bind(env):
    w = world(env)
    for k in range(REPEAT):
        def inject():
            p, log = w["traffic"].run_esme(w["nodes"][k % 2], count=300, window=50, wait=False)
            env.wait_for(lambda: sum(1 for e in esme_events(log) if e.get("ev") == "resp") >= 30,
                         timeout=30, interval=0.02, what="the ESME to have its window in flight")
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        fault_round(env, f"ESME killed mid-window ({k + 1}/{REPEAT})", inject)


@tests.case
def a_webhook_receiver_answering_500_then_back_gets_every_event(env):
    w = world(env)
    for k in range(REPEAT):
        def inject():
            w["receiver"].failing = True
            try:
                time.sleep(3)
            finally:
                w["receiver"].failing = False
        fault_round(env, f"webhook receiver 500 for 3 s ({k + 1}/{REPEAT})", inject)
    assert w["receiver"].posts[500] > 0, w["receiver"].posts


@tests.case
def a_full_disk_is_answered_503_and_traffic_resumes_when_space_returns(env):
    w = world(env)
    for k in range(REPEAT):
        filler = os.path.join(w["tmpfs"], "filler")
        before = w["traffic"].refused[("single", 503)]

        def remount(mb):
            subprocess.run(["mount", "-o", f"remount,size={mb}m", w["tmpfs"]], check=True, capture_output=True)

        def inject():
            t0 = time.time()
            st = os.statvfs(w["tmpfs"])
            used_mb = (st.f_blocks - st.f_bfree) * st.f_frsize // (1 << 20)
            remount(used_mb + FULL_MARGIN_MB)   # the disk as it is, a few MB left, then none
            with open(filler, "wb") as f:
                chunk = b"\0" * (1 << 20)
                try:
                    while True:
                        f.write(chunk)
                        f.flush()
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
            try:
                env.wait_for(lambda: w["traffic"].refused[("single", 503)] > before, timeout=20,
                             what="a 503 while the disk is full")
                time.sleep(1)
            finally:
                os.unlink(filler)
                remount(TABLESPACE_MB)
                ack_lost(None, t0, time.time(), "disk full")
        fault_round(env, f"disk full ({k + 1}/{REPEAT})", inject)
    bad = {k: v for k, v in w["traffic"].refused.items() if k[1] not in (503, "conn")}
    assert not bad, f"answers other than 202/503: {bad}"


@tests.case
def both_nodes_stop_cleanly_after_the_faults(env):
    w = world(env)
    b = w["nodes"][1].proc
    b.send_signal(signal.SIGTERM)
    assert b.wait(timeout=30) == 0, b.returncode
    total = len(w["traffic"].acked)
    print(f"# faults: {len(w['checks'])} checks, {total} acknowledged over HTTP and sendsms, "
          f"{len(w['traffic'].esme_runs)} ESME runs; refused {dict(w['traffic'].refused)}", flush=True)


tests.run(smsc_args=["--resp-delay-ms", "30", "--state", "{tmp}/smsc.state"], daemon=False, dlr_delay_ms=100)
