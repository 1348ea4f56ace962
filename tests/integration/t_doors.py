"""t_doors: every door hands its messages to the one intake, and they behave alike.

A message to a number with no app goes by SMS, and with [push] invite on, the
number gets one install invitation: through POST /v1/messages, Kannel's
sendsms (GET), an ESME on the SMPP server (tests/interop/netsmpp_esme.pl,
Net::SMPP), a campaign (POST /v1/batches, JSON and CSV) and `pushgatectl
send`.  Each door's message is stored with its door and gets exactly one
invitation, and the daemon's doors reach the carrier without waiting for the
engine's idle look (set to 5 s here): the intake kicks the engine for every
door, once for the message and once for the invitations.  pushgatectl is
another process: its SMS wait for that look.
"""
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import TAP  # noqa: E402

tests = TAP()
PORT = harness.free_port()
N_KICK = int(os.environ.get("N_KICK", "100"))   # rounds of the lost-kick case
IDLE_POLL = 5   # seconds: without a kick, a message would wait up to this for the engine's look
INI = {"push": {"invite": "yes", "otp_echo": "yes"}, "smpp": {"idle_poll": str(IDLE_POLL)},
       "smpp_server": {"listen": f"127.0.0.1:{PORT}", "auth_delay": "0.1"}}
state = {}


def invitations(env, msisdn):
    return env.sql("SELECT r.state FROM recipients r JOIN messages m ON m.id = r.message_id"
                   " JOIN accounts a ON a.id = m.account_id"
                   f" WHERE a.name = '_system' AND r.msisdn = '{msisdn}' AND m.body LIKE '%app%'")


def door_case(env, msisdn, send):
    """send() stores one message to msisdn; then: its SMS, one invitation, the source recorded."""
    t0 = time.monotonic()
    send()
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients r JOIN messages m ON m.id = r.message_id"
                                    f" JOIN accounts a ON a.id = m.account_id WHERE a.name <> '_system'"
                                    f" AND r.msisdn = '{msisdn}' AND r.state = 'SMS_DELIVERED'") == "1",
                 timeout=20, what=f"the message to {msisdn} delivered by SMS")
    env.wait_for(lambda: invitations(env, msisdn) == [("SMS_DELIVERED",)], timeout=20,
                 what=f"one invitation to {msisdn} delivered")
    # seconds from acceptance to the carrier, for the message and for its invitation
    submitted = [float(x) for (x,) in env.sql(
        "SELECT extract(epoch FROM min(e.at) FILTER (WHERE e.state = 'SMS_SUBMITTED')"
        " - min(e.at) FILTER (WHERE e.state = 'ACCEPTED')) FROM events e JOIN recipients r ON r.id = e.recipient_id"
        f" WHERE r.msisdn = '{msisdn}' GROUP BY r.id")]
    # the door is the ACCEPTED event's detail
    return env.scalar(f"SELECT e.detail FROM events e JOIN recipients r ON r.id = e.recipient_id"
                      f" WHERE r.msisdn = '{msisdn}' AND e.state = 'ACCEPTED' AND r.account_id <> (SELECT id"
                      f" FROM accounts WHERE name = '_system')"), submitted, time.monotonic() - t0


@tests.case
def http_json_gets_its_sms_and_one_invitation(env):
    source, submitted, _ = door_case(env, "821078800010", lambda: env.send(["821078800010"], text="via http"))
    assert source == "http", source
    state["http"] = submitted


@tests.case
def kannel_sendsms_gets_its_sms_and_one_invitation(env):
    def send():
        q = urllib.parse.urlencode({"username": "test", "password": env.key, "from": "ACME",
                                    "to": "821078800020", "text": "via sendsms"})
        st, _, _, raw = env.http("GET", "/cgi-bin/sendsms?" + q, key=None)
        assert st == 202, (st, raw)
    source, submitted, _ = door_case(env, "821078800020", send)
    assert source == "kannel", source
    state["kannel"] = submitted


@tests.case
def an_esme_on_the_smpp_server_gets_its_sms_and_one_invitation(env):
    env.ctl("smpp-account", "add", "test", "--system-id", "doors", "--password", "pwdoors", check=True)

    def send():
        log = os.path.join(env.tmp, "esme.log")
        r = subprocess.run(["perl", os.path.join(env.srcdir, "tests", "interop", "netsmpp_esme.pl"),
                            "--port", str(PORT), "--log", log, "--system-id", "doors", "--password", "pwdoors",
                            "--count", "1", "--prefix", "8210788", "--first", "30", "--expect-receipts", "1",
                            "--max-seconds", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, timeout=60)
        assert r.returncode == 0, open(log, encoding="utf-8").read()
    source, submitted, _ = door_case(env, "821078800030", send)
    assert source == "smpp", source
    state["smpp"] = submitted


@tests.case
def a_json_campaign_gets_its_sms_and_one_invitation(env):
    def send():
        st, _, b, raw = env.http("POST", "/v1/batches", {"from": "ACME", "text": "via campaign",
                                                         "recipients": [{"to": "821078800040"}]})
        assert st == 202, (st, raw)
    source, submitted, _ = door_case(env, "821078800040", send)
    assert source == "batch", source
    state["batch"] = submitted


@tests.case
def a_csv_campaign_gets_its_sms_and_one_invitation(env):
    def send():
        q = urllib.parse.urlencode({"from": "ACME", "text": "Hello {name}"})
        st, _, b, raw = env.http("POST", "/v1/batches?" + q, "to,name\n821078800050,Kim\n",
                                 headers={"Content-Type": "text/csv"})
        assert st == 202, (st, raw)
    source, submitted, _ = door_case(env, "821078800050", send)
    assert source == "batch", source
    assert env.scalar("SELECT text FROM recipients WHERE msisdn = '821078800050' AND batch_id IS NOT NULL") \
        == "Hello Kim"
    state["csv"] = submitted


@tests.case
def pushgatectl_send_gets_its_sms_and_one_invitation(env):
    path = os.path.join(env.tmp, "doors.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("to\n821078800060\n")

    def send():
        r = env.ctl("-c", env.ini_path, "send", "--csv", path, "--from", "ACME", "--text", "via pushgatectl",
                    "--account", "test")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "level=info" not in r.stderr, r.stderr   # the store's own lines stay quiet
    source, submitted, _ = door_case(env, "821078800060", send)
    assert source == "batch", source
    # another process: the engine finds its SMS at its next look, never later
    assert all(s <= IDLE_POLL + 2 for s in submitted), submitted


@tests.case
def a_kick_while_the_engine_leases_is_not_lost(env):
    # A message to a new number: its commit kicks the engine (lease 1 takes it, and once it is
    # sent lease 2 looks again), then its invitation commits a few ms later and kicks again,
    # often while lease 2 is in the database with a snapshot from before that commit.  Lease 2
    # answers "nothing"; the kick must still count, so the invitation goes now, not at the
    # engine's next idle look.  (It used to be lost about once in 30 rounds here: the invitation
    # waited up to [smpp] idle_poll.)
    late = []
    for i in range(N_KICK):
        msisdn = f"8210788{1000 + i:05d}"
        env.send([msisdn], text="kick")
        t0 = time.monotonic()
        q = ("SELECT count(*) FROM recipients r JOIN events e ON e.recipient_id = r.id"
             f" AND e.state = 'SMS_SUBMITTED' WHERE r.msisdn = '{msisdn}'")
        while env.scalar(q) != "2" and time.monotonic() - t0 < IDLE_POLL + 2:
            time.sleep(0.01)
        if time.monotonic() - t0 > IDLE_POLL / 2:
            late.append((msisdn, round(time.monotonic() - t0, 2)))
    assert not late, f"message and invitation not both submitted within {IDLE_POLL / 2} s: {late}"


@tests.case
def every_door_kicks_the_engine_at_once_for_the_message_and_its_invitation(env):
    # with the engine's idle look every 5 s, only the intake's kick at the commit gets an SMS out in time
    assert set(state) == {"http", "kannel", "smpp", "batch", "csv"}, state
    assert all(len(v) == 2 for v in state.values()), state
    slow = {k: v for k, v in state.items() if max(v) > IDLE_POLL / 2}
    assert not slow, f"seconds from acceptance to submit (message, invitation): {state}"


tests.run(ini=INI)
