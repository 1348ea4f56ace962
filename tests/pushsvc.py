"""pushsvc.py: the tests' side of the push service stand-ins in tests/pushsvc/.

A private working directory (removed at exit), a throw-away certificate for
127.0.0.1 and a VAPID key made with the openssl CLI, and a stand-in service
(webpush-service, fcm-service, apns-service) started, called over HTTPS
with that certificate trusted, and stopped at exit.  Standard library only.
"""
import atexit
import base64
import json
import os
import select
import shutil
import ssl
import subprocess
import tempfile
import urllib.request

SRCDIR = os.path.abspath(os.environ.get(
    "PUSHGATE_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))


def workdir(prefix):
    work = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, work, True)
    return work


def openssl(work, *args):
    r = subprocess.run(["openssl", *args], cwd=work, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr[-400:]}"


def certificate(work):
    """svc.pem / svc.key in work: an EC certificate for IP 127.0.0.1; returns the certificate's path."""
    openssl(work, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", "svc.key", "-out", "svc.pem")
    return os.path.join(work, "svc.pem")


def vapid_key(work):
    """vapid.pem in work (mode 600, as pushgated wants it): (its path, its public key in base64url)."""
    openssl(work, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "vapid.pem")
    path = os.path.join(work, "vapid.pem")
    os.chmod(path, 0o600)
    der = subprocess.run(["openssl", "ec", "-in", path, "-pubout", "-outform", "DER"],
                         capture_output=True, timeout=30, check=True).stdout
    return path, base64.urlsafe_b64encode(der[-65:]).rstrip(b"=").decode()


class Service:
    """tests/pushsvc/NAME.mjs on work's certificate (certificate() first); its log in work/NAME.log."""

    def __init__(self, work, name, *args):
        self.log = open(os.path.join(work, f"{name}.log"), "wb")
        self.p = subprocess.Popen(["node", os.path.join(SRCDIR, "tests", "pushsvc", f"{name}.mjs"),
                                   "--cert", os.path.join(work, "svc.pem"), "--key", os.path.join(work, "svc.key"),
                                   *args], stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        atexit.register(self.stop)
        ready, _, _ = select.select([self.p.stdout], [], [], 15)   # bounded: a service that hangs fails the test
        line = self.p.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"{name} printed no port within 15 s (see {work}/{name}.log)")
        self.port = json.loads(line)["port"]
        self.ctx = ssl.create_default_context(cafile=os.path.join(work, "svc.pem"))

    def call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data is not None else {})
        with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.log.close()
