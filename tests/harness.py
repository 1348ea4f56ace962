"""harness.py: the integration-test harness (Python 3.11 standard library only).

It owns a throwaway world per test script: a private PostgreSQL cluster in a
temporary directory, smsc-sim and pushgated on free 127.0.0.1 ports, and the
teardown of all three (atexit, SIGINT/SIGTERM and finally), so a test run
never leaves a process behind. It never touches the system PostgreSQL service
and never talks to anything but 127.0.0.1. Every wait is bounded.

    from harness import TAP
    tests = TAP()

    @tests.case
    def first_message_is_delivered(env):
        status, _, body, _ = env.http("POST", "/v1/messages", {...})
        assert status == 202, body

    tests.run(dlr_delay_ms=50)

TAP output goes to stdout (automake's tap-driver counts it); the exit status
is 0 unless the harness itself breaks. PUSHGATE_BUILDDIR / PUSHGATE_SRCDIR
come from `make check` (defaults: the source tree holding this file and its
build/ directory); PUSHGATE_KEEP=1 keeps the
temporary directory of a failed run.
"""

import atexit
import collections
import configparser
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

FINAL_STATES = {"SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN"}

# error_code value meaning "whatever the receipt carried".
ANY_CODE = "any"

# Outcome smsc-sim gives a destination, by its last digit: (state, error_code).
SIM_OUTCOMES = {
    "9": ("SMS_FAILED", 1),    # receipt UNDELIV err 1
    "8": ("SMS_FAILED", 2),    # receipt REJECTD err 2
    "7": ("SMS_EXPIRED", ANY_CODE),
    "6": ("SMS_FAILED", 11),   # submit_sm_resp status 0x0B
}

# The path a delivered SMS takes, one event per state.
DELIVERED_PATH = ["ACCEPTED", "SMS_QUEUED", "SMS_SUBMITTED", "SMS_ACCEPTED",
                  "SMS_DELIVERED"]

_USE_ENV_KEY = object()
_FIELD_SEP = "\x1f"
_RECORD_SEP = "\x1e"
_NULL_MARK = "\x1d"


def expected_outcome(msisdn):
    """(final state, error_code) smsc-sim produces for a destination."""
    return SIM_OUTCOMES.get(str(msisdn)[-1], ("SMS_DELIVERED", None))


def outcome_ok(msisdn, state, error_code):
    """True when (state, error_code) from PostgreSQL is what smsc-sim causes."""
    want_state, want_code = expected_outcome(msisdn)
    if state != want_state:
        return False
    if want_code == ANY_CODE:
        return True
    return (int(error_code) if error_code is not None else None) == want_code


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir():
    """Highest /usr/lib/postgresql/N/bin that has initdb, else PATH."""
    best = None
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        for v in os.listdir(base):
            if v.isdigit() and os.path.exists(os.path.join(base, v, "bin", "initdb")):
                if best is None or int(v) > int(best):
                    best = v
    if best is not None:
        return os.path.join(base, best, "bin")
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    raise RuntimeError("PostgreSQL server binaries not found: tools/install-deps installs them")


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"({path}: {e.strerror})"
    return "\n".join(data.splitlines()[-lines:])


class Timeout(AssertionError):
    """A bounded wait ran out."""


class Fatal(RuntimeError):
    """Waiting any longer is pointless (a daemon died)."""


class OpenTx:
    """A psql session whose transaction stays open between calls (Env.open_tx)."""

    def __init__(self, env):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                   "-p", str(env.pg_port), "-U", "postgres", "-d", "pushgate"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        env.on_teardown(self.close)

    def run(self, sql):
        """Runs sql, then returns the lines it printed (waits for them)."""
        self.p.stdin.write(sql + "\n\\echo __done__\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            assert line, f"psql ended: {self.p.stderr.read()}"
            if line.strip() == "__done__":
                return lines
            lines.append(line.rstrip("\n"))

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(timeout=10)


class Env:
    """One private PostgreSQL + smsc-sim + pushgated, torn down on exit.

    Keyword arguments: dlr_delay_ms (smsc-sim receipt delay, default 50),
    smsc_args (extra smsc-sim arguments), ini ({section: {key: value}}
    overrides for pushgate.ini), smsc (False: do not start smsc-sim),
    daemon (False: do not start pushgated), stat_statements (True: the
    cluster loads pg_stat_statements, tracking nested statements and planning),
    pg_opts (more postgres options, e.g. "-c archive_mode=on ...").
    """

    def __init__(self, dlr_delay_ms=50, smsc_args=(), ini=None, smsc=True, daemon=True,
                 stat_statements=False, pg_opts=""):
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.srcdir = os.path.abspath(os.environ.get("PUSHGATE_SRCDIR", here))
        self.builddir = os.path.abspath(os.environ.get("PUSHGATE_BUILDDIR",
                                                       os.path.join(self.srcdir, "build")))
        self.dlr_delay_ms = dlr_delay_ms
        self.smsc_args = list(smsc_args)
        self.ini_overrides = ini or {}
        self.want_smsc = smsc
        self.want_daemon = daemon
        self.stat_statements = stat_statements
        self.pg_opts = pg_opts
        self.failed = False
        self.tmp = None
        self.pg_port = None
        self.http_port = None
        self.smsc_port = None
        self.key = None
        self.conninfo = None
        self.pushgated = None
        self.smsc = None
        self._pg_started = False
        self._torn_down = False
        self._as_pg = []
        self._pg_uid = None
        self._cleanups = []

    # --- life cycle -------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.failed = True
        self.teardown()
        return False

    def start(self):
        atexit.register(self.teardown)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.tmp = tempfile.mkdtemp(prefix="pushgate-test-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self._check_binaries()
        self._start_postgres()
        self._create_database()
        self.key = self.create_account("test")
        if self.want_smsc:
            self.start_smsc()
        self.ini_path = os.path.join(self.tmp, "pushgate.ini")
        self.http_port = free_port()
        self.write_ini()
        if self.want_daemon:
            self.start_pushgated()

    def _on_signal(self, signum, frame):
        self.failed = True
        self.teardown()
        os._exit(128 + signum)

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer")

    def stop_and_check_logs(self):
        """Stops pushgated and smsc-sim (SIGTERM) and lists what went wrong:
        a non-zero exit, or a sanitizer report in any log under the temp dir."""
        problems = []
        for name, proc in (("pushgated", self.pushgated), ("smsc-sim", self.smsc)):
            if proc is None:
                continue
            running = proc.poll() is None
            _stop_process(proc)
            if running and proc.returncode not in (0, None):
                problems.append(f"{name} exited with status {proc.returncode} on SIGTERM")
        if self.tmp and os.path.isdir(self.tmp):
            for root, _, files in os.walk(self.tmp):
                if os.path.basename(root) == "pg" or "/pg/" in root:
                    continue
                for f in files:
                    if not f.endswith((".log", ".stderr", ".stdout")):
                        continue
                    path = os.path.join(root, f)
                    try:
                        with open(path, encoding="utf-8", errors="replace") as fh:
                            text = fh.read()
                    except OSError:
                        continue
                    for mark in self.SANITIZER_MARKS:
                        if mark in text:
                            at = text.index(mark)
                            problems.append(f"{f}: {text[max(0, at - 200):at + 1500]}")
                            break
        return problems

    def teardown(self):
        if self._torn_down:
            return
        self._torn_down = True
        for proc in (self.pushgated, self.smsc):
            _stop_process(proc)
        if self._pg_started:
            self._pg_ctl("stop", "-m", "fast", check=False, timeout=30)
            self._pg_started = False
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # teardown goes on: the temp dir must still go
                print(f"# cleanup {getattr(fn, '__name__', fn)} failed: {e!r}", flush=True)
        if self.tmp and os.path.isdir(self.tmp):
            if self.failed and os.environ.get("PUSHGATE_KEEP") == "1":
                print(f"# PUSHGATE_KEEP=1: kept {self.tmp}", flush=True)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def open_tx(self):
        """A psql session of its own, for a transaction held open across steps (OpenTx)."""
        return OpenTx(self)

    def on_teardown(self, fn):
        """fn() runs at teardown, after PostgreSQL stopped and before the temp dir goes (last added, first run)."""
        self._cleanups.append(fn)

    def pg_owns(self, path):
        """Gives path to the user PostgreSQL runs as (a tablespace directory)."""
        if self._pg_uid is not None:
            pw = pwd.getpwuid(self._pg_uid)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _check_binaries(self):
        for name in ("pushgatectl", "pushgated", "smsc-sim"):
            path = os.path.join(self.builddir, name)
            if not os.access(path, os.X_OK):
                raise RuntimeError(f"{path} is missing: build first (tools/test does)")

    # --- PostgreSQL -------------------------------------------------------
    def _start_postgres(self):
        self.pg_bin = pg_bindir()
        self.pg_data = os.path.join(self.tmp, "pg")
        self.pg_sock = os.path.join(self.tmp, "sock")
        self.pg_log = os.path.join(self.tmp, "postgres.log")
        os.mkdir(self.pg_data, 0o700)
        os.mkdir(self.pg_sock, 0o755)
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: the cluster belongs to 'postgres'.
            pw = pwd.getpwnam("postgres")
            self._pg_uid = pw.pw_uid
            for p in (self.pg_data, self.pg_sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            with open(self.pg_log, "w"):
                pass
            os.chown(self.pg_log, pw.pw_uid, pw.pw_gid)
            self._as_pg = ["runuser", "-u", "postgres", "--"]
        self._run(self._as_pg + [os.path.join(self.pg_bin, "initdb"), "-D", self.pg_data,
                                 "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                 "--locale=C"], timeout=120, cwd=self.tmp,
                  log=os.path.join(self.tmp, "initdb.log"))
        self.pg_port = free_port()
        self.conninfo = (f"host=127.0.0.1 port={self.pg_port} dbname=pushgate "
                         f"user=postgres connect_timeout=5")
        self.start_pg()

    def _pg_ctl(self, *args, check=True, timeout=60):
        cmd = self._as_pg + [os.path.join(self.pg_bin, "pg_ctl"), "-D", self.pg_data]
        return self._run(cmd + list(args), check=check, timeout=timeout, cwd=self.tmp,
                         log=os.path.join(self.tmp, "pg_ctl.log"))

    def start_pg(self):
        """Start (or restart) the private cluster on its fixed port."""
        opts = (f"-k {self.pg_sock} -p {self.pg_port} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=50")
        if self.stat_statements:
            opts += (" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
                     " -c pg_stat_statements.track_planning=on")
        if self.pg_opts:
            opts += " " + self.pg_opts
        self._pg_ctl("start", "-w", "-t", "60", "-l", self.pg_log, "-o", opts, timeout=90)
        self._pg_started = True

    def stop_pg(self):
        """Stop PostgreSQL (fast shutdown: sessions are cut, as in an outage)."""
        self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast", timeout=90)
        self._pg_started = False

    def _create_database(self):
        self.psql("CREATE DATABASE pushgate", dbname="postgres")
        if self.stat_statements:
            self.psql("CREATE EXTENSION pg_stat_statements")
        self.ctl("migrate", check=True)

    def psql(self, query, dbname="pushgate", check=True):
        cmd = ["psql", "-X", "-q", "-A", "-t", "-F", _FIELD_SEP, "-R", _RECORD_SEP,
               "-P", f"null={_NULL_MARK}", "-v", "ON_ERROR_STOP=1",
               "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
               "-d", dbname, "-c", query]
        env = dict(os.environ, PGCONNECT_TIMEOUT="5")
        r = subprocess.run(cmd, capture_output=True, timeout=60, env=env)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}): {query}\n"
                               f"{r.stderr.decode(errors='replace')}")
        return r.stdout.decode("utf-8")

    def sql(self, query):
        """Rows of a query as tuples of strings (NULL -> None)."""
        out = self.psql(query)
        if out.endswith("\n"):
            out = out[:-1]
        rows = []
        for rec in out.split(_RECORD_SEP):
            if rec == "":
                continue
            rows.append(tuple(None if v == _NULL_MARK else v for v in rec.split(_FIELD_SEP)))
        return rows

    def scalar(self, query):
        rows = self.sql(query)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise AssertionError(f"expected one value from {query!r}, got {rows!r}")
        return rows[0][0]

    # --- pushgatectl ------------------------------------------------------
    def ctl(self, *args, check=False, timeout=60):
        """Run build/pushgatectl -d CONNINFO ARGS; returns CompletedProcess (text).
        A "--password", PW pair goes as "--password-file -" with PW on stdin
        (pushgatectl takes no password on its command line)."""
        args = list(args)
        given = None
        if "--password" in args:
            i = args.index("--password")
            given = args[i + 1] + "\n"
            args[i:i + 2] = ["--password-file", "-"]
        cmd = [os.path.join(self.builddir, "pushgatectl"), "-d", self.conninfo] + args
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=self._child_env(), input=given,
                           stdin=subprocess.DEVNULL if given is None else None)
        if check and r.returncode != 0:
            raise RuntimeError(f"pushgatectl {' '.join(args)} exited {r.returncode}:\n"
                               f"{r.stdout}{r.stderr}")
        return r

    def create_account(self, name, any_sender=True):
        """A new account's key.  any_sender: it may send from any sender no
        other account owns (tests send from many); else approved ones only."""
        r = self.ctl("account", "add", *(["--any-sender"] if any_sender else []), name, check=True)
        key = r.stdout.strip()
        if not key or "\n" in key or " " in key:
            raise RuntimeError(f"pushgatectl account add printed {r.stdout!r}, not a key alone")
        return key

    # --- smsc-sim ---------------------------------------------------------
    def start_smsc(self, port=0):
        """Starts smsc-sim (port 0: any free port; a restart passes the old one)."""
        self.smsc_log_path = os.path.join(self.tmp, "smsc.log")
        cmd = [os.path.join(self.builddir, "smsc-sim"), "--listen", f"127.0.0.1:{port}",
               "--dlr-delay-ms", str(self.dlr_delay_ms), "--log", self.smsc_log_path]
        cmd += [a.replace("{tmp}", self.tmp) for a in self.smsc_args]   # "{tmp}": this run's temp dir
        err = open(os.path.join(self.tmp, "smsc-sim.stderr"), "ab")
        self.smsc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL, env=self._child_env())
        err.close()
        line = _read_line_matching(self.smsc, "ready port=", timeout=15)
        if line is None:
            try:
                code = self.smsc.wait(timeout=0.5)
                why = f"smsc-sim exited with status {code} before printing 'ready port=N'"
            except subprocess.TimeoutExpired:
                why = "smsc-sim did not print 'ready port=N' within 15 s"
            raise RuntimeError(why + "; stderr:\n"
                               + tail(os.path.join(self.tmp, "smsc-sim.stderr"), 20))
        self.smsc_port = int(line.split("ready port=", 1)[1].split()[0])
        # Keep draining stdout so a chatty simulator never blocks on a full pipe.
        out_path = os.path.join(self.tmp, "smsc-sim.stdout")
        threading.Thread(target=_drain, args=(self.smsc.stdout, out_path), daemon=True).start()

    def smsc_log(self):
        return _read_text(self.smsc_log_path)

    def smsc_submits(self, accepted_only=False):
        """submit_sm per destination in smsc-sim's log (a Counter; accepted_only: those answered 0x00)."""
        n = collections.Counter()
        for line in self.smsc_log().splitlines():
            fields = line.split()
            if "ev=submit_sm" in fields and (not accepted_only or "status=0x00" in fields):
                dst = next((f[4:] for f in fields if f.startswith("dst=")), None)
                if dst is not None:
                    n[dst.lstrip("+")] += 1
        return n

    # --- pushgated --------------------------------------------------------

    def smsc_texts(self, msisdn):
        """The texts smsc-sim got for msisdn, oldest first (its log's text= token, '_' back to ' ')."""
        out = []
        for line in self.smsc_log().splitlines():
            fields = line.split()
            if "ev=submit_sm" in fields and f"dst={msisdn}" in fields:
                text = next((f[5:] for f in fields if f.startswith("text=")), "-")
                out.append("" if text == "-" else text.replace("_", " "))
        return out
    def write_ini(self):
        cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
        cp.optionxform = str
        template = os.path.join(self.srcdir, "etc", "pushgate.ini")
        cp.read(template, encoding="utf-8")
        values = {
            # the suite runs pushgated as whoever runs it (root in CI); t_tenants tests the switch
            "server": {"http_listen": f"127.0.0.1:{self.http_port}",
                       "allow_root": "yes" if os.geteuid() == 0 else "no"},
            "database": {"conninfo": self.conninfo},
            # the suite registers many devices from 127.0.0.1; t_abuse tests the caps themselves
            "push": {"code_per_ip": "1000000", "code_rate": "100000", "code_daily_cap": "0",
                     "max_connections_per_ip": "1000000"},
            # the suite's webhook and dlr-url receivers listen on loopback; t_abuse tests the refusal
            "webhook": {"allow_internal": "127.0.0.0/8, ::1"},
            "smpp": {"host": "127.0.0.1", "port": str(self.smsc_port or free_port()),
                     "reconnect_min": "1", "reconnect_max": "2"},
            # tests and benchmarks seed months-old history that must stay; t_retention turns it on
            "retention": {"check_interval": "0"},
        }
        for section, kv in self.ini_overrides.items():
            values.setdefault(section, {}).update({k: str(v) for k, v in kv.items()})
        for section, kv in values.items():
            if not cp.has_section(section):
                cp.add_section(section)
            for k, v in kv.items():
                cp.set(section, k, v)
        # pushgated refuses a configuration open to other users (it holds passwords)
        with open(os.open(self.ini_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
            f.write(f"; written by tests/harness.py from {template}\n")
            for section in cp.sections():
                f.write(f"[{section}]\n")
                for k, v in cp.items(section):
                    f.write(f"{k} = {v}\n" if v != "" else f"{k} =\n")
                f.write("\n")

    @staticmethod
    def readyz_at(port):
        """(status, json body) of GET /readyz from the pushgated on port; (None, None) when it doesn't answer."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            r = c.getresponse()
            return r.status, json.loads(r.read())
        except (OSError, ValueError):
            return None, None

    def write_private(self, path, text):
        """Writes a file only its owner may read (pushgated refuses an ini open to others)."""
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
            f.write(text)

    def start_pushgated(self, wait_smpp=True):
        self.spawn_pushgated()
        self.wait_ready(wait_smpp)

    def spawn_pushgated(self):
        """Starts pushgated without waiting for anything (start_pushgated waits)."""
        self.pushgated_log = os.path.join(self.tmp, "pushgated.log")
        log = open(self.pushgated_log, "ab")
        self.pushgated = subprocess.Popen(
            [os.path.join(self.builddir, "pushgated"), "-c", self.ini_path],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self._child_env())
        log.close()

    def pushgated_log_text(self):
        return _read_text(self.pushgated_log)

    def wait_ready(self, wait_smpp=True, timeout=30):
        """Waits on pushgated's own readiness, not on time: /readyz answers
        only once every database connection is up and the schema is current
        (the listeners open then); with wait_smpp (and a simulator) every
        route must also be bound (200 and "smpp": "bound")."""
        want_smpp = wait_smpp and self.smsc is not None

        def ready():
            st, body = self._readyz()
            if body is None or body.get("db") != "up":
                return False
            return not want_smpp or (st == 200 and body.get("smpp") == "bound")

        self.wait_for(ready, timeout=timeout,
                      what="/readyz: database up" + (" and every route bound" if want_smpp else ""))

    def stop_pushgated(self):
        _stop_process(self.pushgated)

    def restart_pushgated(self):
        self.stop_pushgated()
        self.start_pushgated()

    def pushgated_alive(self):
        return self.pushgated is not None and self.pushgated.poll() is None

    def _child_env(self):
        env = dict(os.environ)
        if self.conninfo:
            env["PUSHGATE_DB"] = self.conninfo
        return env

    # --- HTTP -------------------------------------------------------------
    def http(self, method, path, body=None, headers=None, key=_USE_ENV_KEY, timeout=15, source=None):
        """One HTTP request to pushgated: (status, headers, json or None, raw bytes).

        body: dict/list -> JSON; str/bytes -> sent as is. key: API key for the
        Bearer header (default: the test account's; None: no header).
        source: the client's address (any 127.x.y.z), for per-address limits."""
        hdrs = {}
        if key is _USE_ENV_KEY:
            key = self.key
        if key is not None:
            hdrs["Authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = bytes(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            try:
                conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (413) before reading the whole body
            resp = conn.getresponse()
            raw = resp.read()
            rh = {k.lower(): v for k, v in resp.getheaders()}
            status = resp.status
        finally:
            conn.close()
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        return status, rh, parsed, raw

    def _readyz(self):
        """(status, body) of GET /readyz, or (None, None) while nothing answers."""
        if self.pushgated is not None and self.pushgated.poll() is not None:
            raise Fatal(f"pushgated exited with status {self.pushgated.returncode}")
        try:
            st, _, body, _ = self.http("GET", "/readyz", key=None, timeout=5)
        except (OSError, http.client.HTTPException):
            return None, None
        return st, body if isinstance(body, dict) else None

    def health(self):
        status, _, body, raw = self.http("GET", "/healthz", key=None, timeout=5)
        if status != 200 or not isinstance(body, dict):
            raise AssertionError(f"/healthz: {status} {raw[:200]!r}")
        return body

    def send(self, to, text="hello", sender="PUSHGATE", key=_USE_ENV_KEY):
        """POST /v1/messages that must be accepted; returns the 202 body."""
        status, _, body, raw = self.http("POST", "/v1/messages",
                                         {"from": sender, "to": list(to), "text": text},
                                         key=key, timeout=30)
        if status != 202:
            raise AssertionError(f"POST /v1/messages: expected 202, got {status} {raw[:300]!r}")
        if not isinstance(body, dict) or "id" not in body or "recipients" not in body:
            raise AssertionError(f"POST /v1/messages: bad 202 body {raw[:300]!r}")
        return body

    def register_device(self, msisdn, platform="test"):
        """POST /v1/devices and its verify with the code pushgated echoes ([push] otp_echo = yes):
        the verify answer (device_id, token, msisdn)."""
        st, _, body, raw = self.http("POST", "/v1/devices", {"msisdn": msisdn, "platform": platform}, key=None)
        if st != 202:
            raise AssertionError(f"POST /v1/devices: expected 202, got {st} {raw[:300]!r}")
        st, _, v, raw = self.http("POST", f"/v1/devices/{body['device_id']}/verify", {"code": body["code"]}, key=None)
        if st != 200:
            raise AssertionError(f"POST /v1/devices/{body['device_id']}/verify: expected 200, got {st} {raw[:300]!r}")
        return v

    def message(self, msg_id, key=_USE_ENV_KEY):
        status, _, body, raw = self.http("GET", f"/v1/messages/{msg_id}", key=key)
        if status != 200:
            raise AssertionError(f"GET /v1/messages/{msg_id}: {status} {raw[:300]!r}")
        return body

    # --- waiting ----------------------------------------------------------
    def wait_for(self, predicate, timeout=30.0, interval=0.1, what=None):
        """Call predicate until it returns a true value (returned) or timeout."""
        deadline = time.monotonic() + timeout
        last, last_exc = None, None
        while True:
            try:
                last = predicate()
                last_exc = None
                if last:
                    return last
            except Fatal:
                raise
            except Exception as e:  # keep trying; report the last error
                last_exc = e
            if time.monotonic() >= deadline:
                name = what or getattr(predicate, "__name__", "condition")
                detail = f"last error: {last_exc!r}" if last_exc else f"last value: {last!r}"
                raise Timeout(f"timed out after {timeout} s waiting for {name}; {detail}")
            time.sleep(interval)

    def recipients_final(self, message_ids):
        """True when every recipient of the given messages is in a final state."""
        ids = ",".join(str(int(i)) for i in message_ids)
        left = self.scalar(
            f"SELECT count(*) FROM recipients WHERE message_id IN ({ids}) "
            f"AND state NOT IN ({','.join(repr(s) for s in sorted(FINAL_STATES))})")
        return int(left) == 0

    def diagnostics(self):
        parts = []
        if self.pushgated is not None and self.pushgated.poll() is not None:
            parts.append(f"pushgated exited with status {self.pushgated.returncode}")
        for label, name in (("pushgated.log", "pushgated.log"), ("smsc.log", "smsc.log"),
                            ("smsc-sim stderr", "smsc-sim.stderr")):
            path = os.path.join(self.tmp or "/nonexistent", name)
            if os.path.exists(path):
                parts.append(f"--- tail of {label}:\n{tail(path, 30)}")
        return "\n".join(parts)

    # --- helpers ----------------------------------------------------------
    def _run(self, cmd, check=True, timeout=60, cwd=None, log=None):
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                               cwd=cwd, stdin=subprocess.DEVNULL)
        finally:
            if log:
                out.close()
        if check and r.returncode != 0:
            detail = tail(log, 20) if log else ""
            raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}\n{detail}")
        return r


def port_open(port):
    """True when something accepts a TCP connection on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def start_kannel(env, conf, procs):
    """bearerbox, then smsbox once bearerbox listens for it (smsbox gives up when it finds no
    bearerbox), then waits for smsbox's sendsms port: both appended to procs. Ports from conf."""
    ports = {}
    for line in open(conf, encoding="utf-8"):
        key = line.split("=", 1)[0].strip()
        if key in ("smsbox-port", "sendsms-port"):
            ports[key] = int(line.split("=", 1)[1])
    for prog, port in (("bearerbox", ports["smsbox-port"]), ("smsbox", ports["sendsms-port"])):
        with open(os.path.join(env.tmp, f"{prog}.stderr"), "wb") as err:
            procs.append(subprocess.Popen([prog, conf], stdout=subprocess.DEVNULL, stderr=err,
                                          stdin=subprocess.DEVNULL))
        proc = procs[-1]
        env.wait_for(lambda: proc.poll() is None and port_open(port), timeout=60,
                     what=f"{prog} listening on {port}")


def kannel_smsc(smsc_id, port, username, password, window):
    """One Kannel `group = smsc` binding as an SMPP transceiver to 127.0.0.1:port."""
    return f"""
group = smsc
smsc = smpp
smsc-id = {smsc_id}
host = 127.0.0.1
port = {port}
transceiver-mode = true
smsc-username = {username}
smsc-password = {password}
system-type = ""
msg-id-type = 0x03
enquire-link-interval = 30
max-pending-submits = {window}
source-addr-ton = 5
source-addr-npi = 0
dest-addr-ton = 1
dest-addr-npi = 1
"""


def kannel_conf(tmp, admin, box, sendsms, smsc_groups, core_extra="dlr-storage = internal",
                sendsms_user="username = app\npassword = apppw\nmax-messages = 10", extra=""):
    """A Kannel 1.4.5 configuration (bearerbox + smsbox on 127.0.0.1, logs in tmp): admin, box and
    sendsms ports, the smsc groups' text, more core settings, the sendsms-user and other groups."""
    return f"""group = core
admin-port = {admin}
admin-password = adminpw
smsbox-port = {box}
admin-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{tmp}/bearerbox.log"
log-level = 0
{core_extra}
{smsc_groups}
{extra}
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{tmp}/smsbox.log"
log-level = 0

group = sendsms-user
{sendsms_user}

group = sms-service
keyword = default
text = "no service"
"""


def serve_http(port, handler):
    """A ThreadingHTTPServer on 127.0.0.1:port serving handler from a daemon thread; returns it
    (shutdown() and server_close() stop it)."""
    import http.server
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _read_text(path):
    """A whole log file as text ("" while it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _stop_process(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def _read_line_matching(proc, needle, timeout):
    """Read proc's stdout line by line until one contains needle (bounded)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return None
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if needle in text:
                    return text
    finally:
        sel.close()
    return None


def _drain(stream, path):
    with open(path, "ab") as out:
        while True:
            chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            if not chunk:
                return
            out.write(chunk)
            out.flush()


class TAP:
    """A tiny TAP producer: register cases with @tests.case, then tests.run()."""

    def __init__(self):
        self.cases = []

    def case(self, fn):
        self.cases.append(fn)
        return fn

    def run(self, **env_kwargs):
        # one more case than registered: the daemons stopped cleanly, and
        # their logs hold no sanitizer report (ASan/UBSan builds)
        print(f"1..{len(self.cases) + 1}", flush=True)
        env = Env(**env_kwargs)
        try:
            try:
                env.start()
            except Exception as e:
                env.failed = True
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                _diag(traceback.format_exc())
                _diag(env.diagnostics())
                print(f"Bail out! setup failed: {reason}", flush=True)
                return
            for i, fn in enumerate(self.cases, 1):
                name = fn.__name__.replace("_", " ")
                try:
                    fn(env)
                except Exception:
                    env.failed = True
                    print(f"not ok {i} - {name}", flush=True)
                    _diag(traceback.format_exc())
                    _diag(env.diagnostics())
                else:
                    print(f"ok {i} - {name}", flush=True)
            i = len(self.cases) + 1
            problems = env.stop_and_check_logs()
            if problems:
                env.failed = True
                print(f"not ok {i} - daemons stop cleanly and their logs are sanitizer-clean", flush=True)
                _diag("\n".join(problems))
            else:
                print(f"ok {i} - daemons stop cleanly and their logs are sanitizer-clean", flush=True)
        finally:
            env.teardown()
            sys.stdout.flush()


def _diag(text):
    for line in text.rstrip("\n").splitlines():
        print(f"# {line}")
    sys.stdout.flush()
