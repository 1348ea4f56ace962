"""t_smpp_server_kannel: Debian's Kannel uses pushgate as its SMSC.

Kannel's bearerbox binds to pushgated's [smpp_server] listener as a
transceiver (its smsc = smpp group, with an SMPP account made by
pushgatectl); an application sends through Kannel's smsbox (sendsms with
dlr-mask and dlr-url), Kannel submits to pushgate (long texts as UDH parts,
Korean as UCS-2), pushgate routes each through its intake to smsc-sim, and
the receipts come back to Kannel, which calls the dlr-url with the final
status.  Nothing here speaks SMPP to pushgate but Kannel.
"""
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP

tests = TAP()
PORT = harness.free_port()
INI = {"smpp_server": {"listen": f"127.0.0.1:{PORT}", "receipt_retry": "5"}}
st = {"procs": [], "dlrs": []}

LONG = ("Kannel through pushgate: a long GSM text that needs three parts of a concatenated SMS, "
        "so Kannel splits it with a user data header and pushgate puts it back together before "
        "it is pushed or sent on by SMS. ") * 2
KOREAN = "칸넬에서 푸시게이트로 보낸 한국어 메시지입니다"
# (to, text, coding) -- smsc-sim: last digit 9 = UNDELIV
MESSAGES = [("447700700001", "hello from Kannel", 0), ("447700700002", KOREAN, 2),
            ("447700700003", LONG[:400], 0), ("447700700009", "this one fails", 0)]


class DlrHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        st["dlrs"].append({k: v[0] for k, v in q.items()})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def stop_all():
    for p in st["procs"]:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
    st["procs"].clear()


@tests.case
def kannel_bearerbox_binds_to_pushgate_as_its_smsc(env):
    assert shutil.which("bearerbox") and shutil.which("smsbox"), \
        "Kannel missing: tools/install-deps installs the kannel package"
    env.create_account("kannelco")
    env.ctl("smpp-account", "add", "kannelco", "--system-id", "kannel", "--password", "kpw", "--window", "50",
            check=True)
    st["hook"] = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DlrHandler)
    threading.Thread(target=st["hook"].serve_forever, daemon=True).start()
    admin, box, sendsms = harness.free_port(), harness.free_port(), harness.free_port()
    st["sendsms"] = sendsms
    conf = os.path.join(env.tmp, "kannel.conf")
    with open(conf, "w") as f:
        smsc = harness.kannel_smsc("pushgate", PORT, "kannel", "kpw", 20)
        f.write(harness.kannel_conf(env.tmp, admin, box, sendsms, smsc,
                                    sendsms_user="username = app\npassword = apppw\nmax-messages = 10\n"
                                                 "concatenation = true"))

    harness.start_kannel(env, conf, st["procs"])
    env.wait_for(lambda: "ev=bound" in open(env.pushgated_log, errors="replace").read()
                 and 'system_id="kannel"' in open(env.pushgated_log, errors="replace").read(),
                 timeout=30, what="Kannel's bind at pushgated")
    assert all(p.poll() is None for p in st["procs"]), harness.tail(os.path.join(env.tmp, "bearerbox.log"))


def sendsms(to, text, coding, n):
    dlr = f"http://127.0.0.1:{st['hook'].server_address[1]}/dlr?n={n}&status=%d&smsc=%i&to=%p"
    q = {"username": "app", "password": "apppw", "from": "KANNEL", "to": to, "text": text, "dlr-mask": "3",
         "dlr-url": dlr, "charset": "UTF-8"}
    if coding:
        q["coding"] = str(coding)
    url = f"http://127.0.0.1:{st['sendsms']}/cgi-bin/sendsms?" + urllib.parse.urlencode(q)
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode(errors="replace")


@tests.case
def messages_sent_through_kannel_reach_pushgate_whole_and_their_receipts_reach_kannel(env):
    for n, (to, text, coding) in enumerate(MESSAGES):
        deadline = time.monotonic() + 20
        while True:   # smsbox answers 503 until bearerbox reports the SMSC online
            try:
                status, body = sendsms(to, text, coding, n)
            except urllib.error.HTTPError as e:
                status, body = e.code, e.read().decode(errors="replace")
            if status == 202 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 202, (status, body)
    env.wait_for(lambda: len({d["n"] for d in st["dlrs"]}) == len(MESSAGES), timeout=60,
                 what="a final DLR per message at Kannel's dlr-url")
    final = {}
    for d in st["dlrs"]:
        if d["status"] in ("1", "2"):
            final.setdefault(d["n"], []).append(d["status"])
    want = {str(n): ["2" if to.endswith("9") else "1"] for n, (to, _, _) in enumerate(MESSAGES)}
    assert final == want, (final, st["dlrs"])
    assert all(d["smsc"] == "pushgate" for d in st["dlrs"]), st["dlrs"]
    rows = env.sql("SELECT r.msisdn, coalesce(r.text, m.body), r.state, m.sender FROM recipients r "
                   "JOIN messages m ON m.id = r.message_id JOIN smpp_accounts s ON s.id = m.smpp_account_id "
                   "WHERE s.system_id = 'kannel' ORDER BY r.msisdn")
    got = {to: (text, state, sender) for to, text, state, sender in rows}
    assert len(got) == len(MESSAGES), rows
    for to, text, _ in MESSAGES:
        assert got[to][0] == text and got[to][2] == "KANNEL", (to, got[to][0][:50], text[:50])
        assert got[to][1] == ("SMS_FAILED" if to.endswith("9") else "SMS_DELIVERED"), got[to]
    assert env.scalar("SELECT count(*) FROM smpp_outbox o JOIN smpp_accounts s ON s.id = o.smpp_account_id "
                      "WHERE s.system_id = 'kannel' AND delivered_at IS NULL") == "0"


@tests.case
def kannel_unbinds_cleanly_when_stopped(env):
    stop_all()
    env.wait_for(lambda: "conn=" in open(env.pushgated_log, errors="replace").read()
                 and "ev=closed bound=yes" in open(env.pushgated_log, errors="replace").read(),
                 timeout=20, what="Kannel's connection closed at pushgated")
    st["hook"].shutdown()


try:
    tests.run(dlr_delay_ms=50, ini=INI)
finally:
    stop_all()
