"""browserdriver.py: a page driven in Debian's headless Chromium by a node script of tests/browser/.

The script (playwright-core, one step per command) reads one JSON command a
line on stdin and answers exactly one JSON line on stdout; its diagnostics
go to test-artifacts/LOG_NAME under the build directory, where its
screenshots go too.  Every step is bounded; a step that fails or does not
answer raises AssertionError with the tail of the driver's log.  Used by
t_web_inbox (the inbox page) and t_console (the operator console).
"""
import atexit
import json
import os
import selectors
import shutil
import subprocess
import time

from harness import tail

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class BrowserDriver:
    """The node driver: one JSON command a line in, one JSON reply a line out."""

    def __init__(self, env, script_name, path, log_name):
        script = os.path.join(env.srcdir, "tests", "browser", script_name)
        modules = os.path.join(env.srcdir, "tests", "browser", "node_modules", "playwright-core")
        for p, what in ((CHROMIUM, "chromium"), (modules, "playwright-core")):
            if not os.path.exists(p):
                raise RuntimeError(f"{p} is missing ({what}): run tools/install-deps")
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is missing: run tools/install-deps")
        self.artifacts = os.path.join(env.builddir, "test-artifacts")
        os.makedirs(self.artifacts, exist_ok=True)
        self.log_path = os.path.join(self.artifacts, log_name)
        log = open(self.log_path, "wb")
        url = f"http://127.0.0.1:{env.http_port}{path}"
        self.proc = subprocess.Popen(
            [node, script, url, self.artifacts], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log, cwd=env.srcdir,
            env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1", CHROMIUM=CHROMIUM))
        log.close()
        self.buf = b""
        atexit.register(self.close)

    def call(self, cmd, timeout=45, **args):
        """Run one driver step; its reply, or AssertionError with the driver's log."""
        if self.proc.poll() is not None:
            raise AssertionError(f"browser driver exited ({self.proc.returncode}):\n"
                                 + tail(self.log_path, 20))
        self.proc.stdin.write((json.dumps(dict(args, cmd=cmd)) + "\n").encode())
        self.proc.stdin.flush()
        line = self._read_line(timeout)
        if line is None:
            raise AssertionError(f"browser step {cmd}: no answer within {timeout} s:\n"
                                 + tail(self.log_path, 20))
        reply = json.loads(line)
        if not reply.get("ok"):
            raise AssertionError(f"browser step {cmd} failed: {reply.get('error')}\n"
                                 + tail(self.log_path, 20))
        return reply

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    if time.monotonic() >= deadline:
                        return None
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None
                self.buf += chunk
        finally:
            sel.close()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8")

    def close(self):
        if self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
