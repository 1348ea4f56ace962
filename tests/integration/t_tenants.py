"""t_tenants: what an account may send, on every node at once (issue: abuse and tenants).

Two pushgated nodes share one PostgreSQL; requests for one account go to both
at the same time.  Checks: a daily quota, a prepaid balance and a rate limit
hold for the nodes together (exactly the allowed number of recipients
stored, the others 429 / 402 with nothing stored); a replayed idempotency
key is not charged again; a new account sends only from senders the
operator approved, an approved sender is nobody else's (pushgate's own code
sender included), over HTTP, Kannel's sendsms and SMPP; GET /v1/account and pushgatectl
account show tell the account its limits, usage, balance and senders; a
rotated key keeps working for its grace and not after; callback URLs name
only the hosts the operator listed for the account; a batch stops where
the quota ends; pushgatectl takes SMPP passwords from a file or stdin only;
pushgated refuses a configuration open to other users and root unless told,
and switches to [server] user after binding.
"""
import concurrent.futures
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP, free_port

SMPP_PORT = free_port()
tests = TAP()
second = {}


def db_up(port):
    """The pushgated on port answers /readyz with its database up."""
    return (harness.Env.readyz_at(port)[1] or {}).get("db") == "up"


def node_b(env):
    """The second pushgated (same ini, its own HTTP port), started once."""
    if "port" in second:
        return second["port"]
    port = free_port()
    ini = os.path.join(env.tmp, "second.ini")
    with open(env.ini_path) as f:
        text = f.read().replace(f"127.0.0.1:{env.http_port}", f"127.0.0.1:{port}")
        text = text.replace(f"127.0.0.1:{SMPP_PORT}", f"127.0.0.1:{free_port()}")
    env.write_private(ini, text)
    log = open(os.path.join(env.tmp, "pushgated-2.log"), "ab")
    second["proc"] = subprocess.Popen([os.path.join(env.builddir, "pushgated"), "-c", ini], stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env._child_env())
    log.close()

    env.wait_for(lambda: db_up(port), timeout=30, what="second pushgated ready")
    second["port"] = port
    return port


def post(port, key, body, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    h.update(headers or {})
    c.request("POST", "/v1/messages", body=json.dumps(body).encode(), headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        b = json.loads(raw)
    except ValueError:
        b = None
    return r.status, {k.lower(): v for k, v in r.getheaders()}, b


def both_nodes_at_once(env, key, n, first_number):
    """n one-recipient messages, half to each node, all in flight together: [(status, headers, body)]."""
    ports = [env.http_port, node_b(env)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        futs = [ex.submit(post, ports[i % 2], key,
                          {"from": "TENANT", "to": [str(first_number + i)], "text": f"n{i}"}) for i in range(n)]
        return [f.result() for f in futs]


def stored(env, name):
    return int(env.scalar(f"SELECT count(*) FROM recipients r JOIN accounts a ON a.id = r.account_id"
                          f" WHERE a.name = '{name}'"))


def used_today(env, name):
    return int(env.scalar(f"SELECT coalesce(sum(u.recipients), 0) FROM account_usage u JOIN accounts a"
                          f" ON a.id = u.account_id WHERE a.name = '{name}'"
                          f" AND u.day = (now() AT TIME ZONE 'UTC')::date"))


@tests.case
def a_daily_quota_holds_for_two_nodes_together(env):
    key = env.create_account("quota")
    env.ctl("account", "quota", "quota", "10", "0", check=True)
    res = both_nodes_at_once(env, key, 30, 821030000000)
    ok = [r for r in res if r[0] == 202]
    refused = [r for r in res if r[0] != 202]
    assert len(ok) == 10, [r[0] for r in res]
    assert all(r[0] == 429 and r[2]["error"]["code"] == "quota_exceeded" for r in refused), refused[:2]
    # until the next UTC day, at most a day away
    assert all(0 < int(r[1]["retry-after"]) <= 86400 for r in refused), refused[0][1]
    assert stored(env, "quota") == 10 and used_today(env, "quota") == 10
    # a monthly quota below what was used refuses the next one too; 0 0 lifts both
    env.ctl("account", "quota", "quota", "0", "10", check=True)
    st, _, b = post(env.http_port, key, {"from": "TENANT", "to": ["821030000100"], "text": "m"})
    assert st == 429 and "monthly" in b["error"]["message"], (st, b)
    env.ctl("account", "quota", "quota", "0", "0", check=True)
    st, _, b = post(node_b(env), key, {"from": "TENANT", "to": ["821030000101"], "text": "m"})
    assert st == 202, (st, b)


@tests.case
def a_prepaid_balance_is_taken_at_intake_on_both_nodes_and_never_goes_below_zero(env):
    key = env.create_account("prepaid")
    env.ctl("account", "balance", "prepaid", "set", "7", check=True)
    res = both_nodes_at_once(env, key, 20, 821031000000)
    ok = [r for r in res if r[0] == 202]
    assert len(ok) == 7, [r[0] for r in res]
    assert all(r[0] == 402 and r[2]["error"]["code"] == "balance_exhausted" for r in res if r[0] != 202)
    assert stored(env, "prepaid") == 7
    assert env.scalar("SELECT balance FROM accounts WHERE name = 'prepaid'") == "0"
    # a message of three recipients needs three
    env.ctl("account", "balance", "prepaid", "add", "2", check=True)
    st, _, b = post(env.http_port, key, {"from": "TENANT", "to": ["821031000100", "821031000101", "821031000102"],
                                         "text": "three"})
    assert st == 402 and stored(env, "prepaid") == 7, (st, b)
    st, _, b = post(env.http_port, key, {"from": "TENANT", "to": ["821031000100", "821031000101"], "text": "two"})
    assert st == 202 and env.scalar("SELECT balance FROM accounts WHERE name = 'prepaid'") == "0", (st, b)


@tests.case
def a_replayed_idempotency_key_is_not_charged_again(env):
    key = env.create_account("replay")
    env.ctl("account", "balance", "replay", "set", "1", check=True)
    msg = {"from": "TENANT", "to": ["821032000000"], "text": "once"}
    st, _, first = post(env.http_port, key, msg, {"Idempotency-Key": "k-1"})
    assert st == 202, (st, first)
    for port in (env.http_port, node_b(env)):
        st, h, again = post(port, key, msg, {"Idempotency-Key": "k-1"})
        assert st == 202 and h.get("idempotent-replayed") == "true" and again["id"] == first["id"], (st, again)
    assert used_today(env, "replay") == 1
    assert env.scalar("SELECT balance FROM accounts WHERE name = 'replay'") == "0"


@tests.case
def a_rate_limit_holds_for_two_nodes_together(env):
    """Each node alone would let 20 a minute through; together they let 20 through too."""
    key = env.create_account("paced")
    env.ctl("account", "limit", "paced", "20", check=True)
    res = both_nodes_at_once(env, key, 40, 821033000000)
    ok = [r for r in res if r[0] == 202]
    assert len(ok) == 20, [r[0] for r in res]
    assert all(r[0] == 429 and r[2]["error"]["code"] == "rate_limited" and int(r[1]["retry-after"]) >= 1
               for r in res if r[0] != 202), [r for r in res if r[0] != 202][:2]
    assert stored(env, "paced") == 20


@tests.case
def a_new_account_sends_only_from_senders_the_operator_approved(env):
    key = env.create_account("bank", any_sender=False)
    st, _, b = post(env.http_port, key, {"from": "BANK", "to": ["821034000000"], "text": "x"})
    assert st == 403 and b["error"]["code"] == "sender_not_allowed" and b["error"]["field"] == "from", (st, b)
    assert stored(env, "bank") == 0
    env.ctl("account", "sender", "bank", "allow", "BANK", check=True)
    st, _, b = post(node_b(env), key, {"from": "BANK", "to": ["821034000001"], "text": "x"})
    assert st == 202, (st, b)
    # an approved sender is the bank's: an account that may use any sender may not use this one
    st, _, b = post(env.http_port, env.key, {"from": "BANK", "to": ["821034000002"], "text": "x"})
    assert st == 403 and b["error"]["field"] == "from", (st, b)
    env.ctl("account", "sender", "bank", "revoke", "BANK", check=True)
    st, _, b = post(env.http_port, key, {"from": "BANK", "to": ["821034000003"], "text": "x"})
    assert st == 403, (st, b)
    assert stored(env, "bank") == 1


@tests.case
def nobody_sends_as_pushgate_s_own_code_sender(env):
    """Regression: any account could send from "pushgate" a text that looks like a code."""
    st, _, b = post(env.http_port, env.key, {"from": "pushgate", "to": ["821035000000"],
                                             "text": "[pushgate] your code is 123456"})
    assert st == 403 and b["error"]["field"] == "from", (st, b)
    assert env.scalar("SELECT count(*) FROM recipients WHERE msisdn = '821035000000'") == "0"


def cstr(s):
    return s.encode() + b"\0"


def smpp_pdu(cmd, seq, body=b""):
    return struct.pack(">IIII", 16 + len(body), cmd, 0, seq) + body


def smpp_read(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise AssertionError("closed")
            buf += chunk
        return buf
    length, cmd, status, seq = struct.unpack(">IIII", exact(16))
    return cmd, status, seq, exact(length - 16)


def submit_status(sock, seq, source, dest, text):
    body = (cstr("") + bytes([1, 1]) + cstr(source) + bytes([1, 1]) + cstr(dest) + bytes([0, 0, 0])
            + cstr("") + cstr("") + bytes([0, 0, 0, 0]) + bytes([len(text)]) + text.encode())
    sock.sendall(smpp_pdu(0x04, seq, body))
    while True:
        cmd, status, rseq, _ = smpp_read(sock)
        if cmd == 0x80000004 and rseq == seq:
            return status


@tests.case
def an_esme_of_a_listed_account_gets_0x0a_for_a_sender_not_approved_and_0x58_0x45_for_its_limits(env):
    env.create_account("esmeco", any_sender=False)
    env.ctl("account", "sender", "esmeco", "allow", "ESMECO", check=True)
    env.ctl("smpp-account", "add", "esmeco", "--system-id", "esmeco", "--password", "esmepw", check=True)
    s = socket.create_connection(("127.0.0.1", SMPP_PORT), timeout=15)
    s.sendall(smpp_pdu(0x09, 1, cstr("esmeco") + cstr("esmepw") + cstr("") + bytes([0x34, 1, 1]) + cstr("")))
    cmd, status, _, _ = smpp_read(s)
    assert cmd == 0x80000009 and status == 0, (hex(cmd), status)
    assert submit_status(s, 2, "OTHER", "821036000000", "x") == 0x0A
    assert submit_status(s, 3, "ESMECO", "821036000001", "x") == 0
    env.ctl("account", "balance", "esmeco", "set", "0", check=True)
    assert submit_status(s, 4, "ESMECO", "821036000002", "x") == 0x45
    env.ctl("account", "balance", "esmeco", "off", check=True)
    env.ctl("account", "limit", "esmeco", "1", check=True)
    assert submit_status(s, 5, "ESMECO", "821036000003", "x") == 0
    assert submit_status(s, 6, "ESMECO", "821036000004", "x") == 0x58   # one a minute, across the nodes
    s.sendall(smpp_pdu(0x06, 7))
    s.close()
    assert env.scalar("SELECT count(*) FROM recipients WHERE msisdn LIKE '82103600000%'") == "2"


@tests.case
def an_account_s_callback_urls_may_name_only_the_hosts_the_operator_listed(env):
    key = env.create_account("hooks")
    env.ctl("account", "urls", "hooks", "hooks.example,.Partner.example", check=True)

    def cb(url, to):
        return post(env.http_port, key, {"from": "HOOKS", "to": [to], "text": "x", "callback_url": url})
    for url in ("https://evil.example/cb", "https://partner.example.evil/cb", "http://hooks.example.evil/",
                "https://xhooks.example/"):
        st, _, b = cb(url, "821041000000")
        assert st == 403 and b["error"]["code"] == "url_not_allowed" and b["error"]["field"] == "callback_url", \
            (url, st, b)
    assert stored(env, "hooks") == 0
    for i, url in enumerate(("https://hooks.example/cb", "https://HOOKS.example:8443/cb?x=1",
                             "http://a.partner.example/cb")):
        st, _, b = cb(url, f"82104100001{i}")
        assert st == 202, (url, st, b)
    st, _, a, _ = env.http("GET", "/v1/account", key=key)
    assert a["url_hosts"] == ["hooks.example", ".partner.example"], a
    assert env.ctl("account", "urls", "hooks", "bad host!").returncode == 2
    env.ctl("account", "urls", "hooks", "any", check=True)
    assert cb("https://evil.example/cb", "821041000020")[0] == 202


@tests.case
def kannel_s_sendsms_gets_the_same_refusals_in_its_own_words(env):
    import urllib.parse
    key = env.create_account("kclient", any_sender=False)
    env.ctl("account", "sender", "kclient", "allow", "KCLIENT", check=True)

    def sendsms(**extra):
        q = {"username": "kclient", "password": key, "from": "KCLIENT", "to": "821042000000", "text": "x"}
        q.update(extra)
        st, h, _, raw = env.http("GET", "/cgi-bin/sendsms?" + urllib.parse.urlencode(q), key=None)
        return st, h, raw.decode()
    st, _, body = sendsms(**{"from": "OTHER"})
    assert st == 403 and "Sender not allowed" in body, (st, body)
    env.ctl("account", "urls", "kclient", "dlr.example", check=True)
    st, _, body = sendsms(**{"dlr-url": "http://evil.example/dlr?s=%d", "dlr-mask": "3"})
    assert st == 403 and "dlr-url" in body, (st, body)
    st, _, body = sendsms(**{"dlr-url": "http://dlr.example/dlr?s=%d", "dlr-mask": "3"})
    assert st == 202 and body.startswith("0: Accepted"), (st, body)
    env.ctl("account", "quota", "kclient", "1", "0", check=True)
    st, h, body = sendsms()
    assert st == 429 and "Daily quota" in body and int(h["retry-after"]) > 0, (st, body)
    env.ctl("account", "quota", "kclient", "0", "0", check=True)
    env.ctl("account", "balance", "kclient", "set", "0", check=True)
    st, _, body = sendsms()
    assert st == 402 and "balance" in body, (st, body)
    assert stored(env, "kclient") == 1


@tests.case
def an_account_s_api_requests_are_paced_on_each_node(env):
    key = env.create_account("poller")
    env.ctl("account", "requests", "poller", "3", check=True)
    got = [env.http("GET", "/v1/account", key=key)[0] for _ in range(3)]
    assert got == [200, 200, 200], got   # each request counted once, though its key is checked twice
    st, h, b, raw = env.http("GET", "/v1/account", key=key)
    assert st == 429 and b["error"]["code"] == "rate_limited" and int(h["retry-after"]) >= 1, (st, raw)
    st, _, b, raw = env.http("POST", "/v1/messages", {"from": "POLL", "to": ["821043000000"], "text": "x"}, key=key)
    assert st == 429 and "request rate" in b["error"]["message"], (st, raw)
    # another account is not paced by this one's
    assert env.http("GET", "/v1/account")[0] == 200
    env.ctl("account", "requests", "poller", "0", check=True)
    env.wait_for(lambda: env.http("GET", "/v1/account", key=key)[0] == 200, timeout=5, what="the limit lifted")


@tests.case
def pushgatectl_takes_no_password_on_its_command_line(env):
    """Regression: smpp-account add --password P put the password where every user sees it (ps)."""
    ctl = [os.path.join(env.builddir, "pushgatectl"), "-d", env.conninfo]
    r = subprocess.run(ctl + ["smpp-account", "add", "esmeco", "--system-id", "argv", "--password", "pw"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "--password-file" in r.stderr, (r.returncode, r.stderr)
    pwfile = os.path.join(env.tmp, "pw")
    with open(pwfile, "w") as f:
        f.write("filepw\n")
    r = subprocess.run(ctl + ["smpp-account", "add", "esmeco", "--system-id", "fromfile", "--password-file", pwfile],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    s = socket.create_connection(("127.0.0.1", SMPP_PORT), timeout=15)
    s.sendall(smpp_pdu(0x09, 1, cstr("fromfile") + cstr("filepw") + cstr("") + bytes([0x34, 1, 1]) + cstr("")))
    cmd, status, _, _ = smpp_read(s)
    assert cmd == 0x80000009 and status == 0, (hex(cmd), status)
    s.close()
    assert env.scalar("SELECT count(*) FROM smpp_accounts WHERE system_id = 'argv'") == "0"


@tests.case
def get_v1_account_and_account_show_tell_limits_usage_balance_and_senders(env):
    key = env.create_account("viewer", any_sender=False)
    env.ctl("account", "sender", "viewer", "allow", "VIEW", check=True)
    env.ctl("account", "quota", "viewer", "100", "1000", check=True)
    env.ctl("account", "balance", "viewer", "set", "50", check=True)
    env.ctl("account", "limit", "viewer", "600", check=True)
    st, _, b = post(env.http_port, key, {"from": "VIEW", "to": ["821037000000", "821037000001"], "text": "x"})
    assert st == 202, (st, b)
    st, _, a, raw = env.http("GET", "/v1/account", key=key)
    assert st == 200, (st, raw)
    assert a["name"] == "viewer" and a["balance"] == 48, a
    assert a["limits"] == {"recipients_per_minute": 600, "requests_per_minute_per_node": None, "daily_quota": 100,
                           "monthly_quota": 1000}, a
    assert a["usage"] == {"today": 2, "this_month": 2}, a
    assert a["senders"] == {"policy": "listed", "approved": ["VIEW"]}, a
    st, _, _, _ = env.http("GET", "/v1/account", key="pk_nope")
    assert st == 401
    r = env.ctl("account", "show", "viewer", check=True)
    rows = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert rows["balance"] == "48" and rows["used_today"] == "2" and rows["approved_senders"] == "VIEW", r.stdout
    assert env.ctl("account", "quota", "viewer", "-1", "0").returncode == 2
    assert env.ctl("account", "show", "nobody").returncode == 1


@tests.case
def a_rotated_key_works_for_its_grace_and_not_after_on_every_node(env):
    old = env.create_account("rotor")
    for port in (env.http_port, node_b(env)):   # both nodes have the old key cached
        assert post(port, old, {"from": "ROT", "to": ["821038000000"], "text": "x"})[0] == 202
    r = env.ctl("account", "rotate", "rotor", "3", check=True)
    new = r.stdout.strip()
    assert new and new != old and "\n" not in new
    for port in (env.http_port, node_b(env)):
        assert post(port, new, {"from": "ROT", "to": ["821038000001"], "text": "x"})[0] == 202
        assert post(port, old, {"from": "ROT", "to": ["821038000002"], "text": "x"})[0] == 202   # grace
    time.sleep(3.5)
    for port in (env.http_port, node_b(env)):
        assert post(port, old, {"from": "ROT", "to": ["821038000003"], "text": "x"})[0] == 401
        assert post(port, new, {"from": "ROT", "to": ["821038000004"], "text": "x"})[0] == 202
    # no grace: the replaced key stops at the commit, cached or not
    newer = env.ctl("account", "rotate", "rotor", "0", check=True).stdout.strip()
    env.wait_for(lambda: all(post(p, new, {"from": "ROT", "to": ["821038000005"], "text": "x"})[0] == 401
                             for p in (env.http_port, node_b(env))), timeout=5, what="the old key refused")
    assert post(env.http_port, newer, {"from": "ROT", "to": ["821038000006"], "text": "x"})[0] == 202
    assert env.scalar("SELECT count(*) FROM accounts WHERE name = 'rotor' AND api_key_hash IS NOT NULL"
                      " AND prev_key_hash IS NULL") == "1"


@tests.case
def a_batch_stops_where_the_quota_ends_and_says_so(env):
    key = env.create_account("campaign")
    env.ctl("account", "quota", "campaign", "5", "0", check=True)
    rows = "to\n" + "".join(f"82103900{i:04d}\n" for i in range(20))
    st, h, b, raw = env.http("POST", "/v1/batches?from=CAMP&text=hello", rows, key=key,
                             headers={"Content-Type": "text/csv"})
    assert st == 429 and b["error"]["code"] == "quota_exceeded" and b["total"] == 0, (st, raw)
    assert int(h["retry-after"]) > 0
    assert stored(env, "campaign") == 0 and used_today(env, "campaign") == 0


def start_with(env, edit, mode=0o600):
    """pushgated on fresh ports with the suite's ini changed by edit(text); its Popen."""
    port = free_port()
    ini = os.path.join(env.tmp, "privs.ini")
    with open(env.ini_path) as f:
        text = f.read().replace(f"127.0.0.1:{env.http_port}", f"127.0.0.1:{port}")
        text = text.replace(f"127.0.0.1:{SMPP_PORT}", f"127.0.0.1:{free_port()}")
    env.write_private(ini, edit(text))
    os.chmod(ini, mode)
    proc = subprocess.Popen([os.path.join(env.builddir, "pushgated"), "-c", ini], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env._child_env())
    return proc, port


def refused(env, edit, mode=0o600):
    proc, _ = start_with(env, edit, mode)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        harness._stop_process(proc)
        raise AssertionError("pushgated started")
    return proc.returncode, out.decode(errors="replace")


@tests.case
def pushgated_refuses_a_config_open_to_others_and_root_unless_told_and_switches_user(env):
    def set_server(**kv):
        """Changes [server] keys of the suite's ini (which has user = and allow_root = lines)."""
        def edit(text):
            lines = text.split("\n")
            for i, line in enumerate(lines):
                k = line.split("=")[0].strip()
                if k in kv:
                    lines[i] = f"{k} = {kv[k]}"
            return "\n".join(lines)
        return edit
    rc, out = refused(env, lambda t: t, mode=0o644)
    assert rc == 1 and "open to other users" in out and "privs.ini" in out, (rc, out)
    if os.geteuid() == 0:
        rc, out = refused(env, set_server(allow_root="no"))
        assert rc == 1 and "refusing to run as root" in out, (rc, out)
        rc, out = refused(env, set_server(user="no-such-user-pg"))
        assert rc == 1 and "no such user" in out, (rc, out)
        proc, port = start_with(env, set_server(user="nobody", allow_root="no"))
        try:
            env.wait_for(lambda: db_up(port), timeout=30, what="pushgated switched to nobody")
            with open(f"/proc/{proc.pid}/status") as f:
                ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid", "Gid"))}
            nobody = str(__import__("pwd").getpwnam("nobody").pw_uid)
            assert ids["Uid"] == [nobody] * 4, ids
            st, _, b = post(port, env.key, {"from": "PRIV", "to": ["821040000000"], "text": "as nobody"})
            assert st == 202, (st, b)
        finally:
            harness._stop_process(proc)
    else:
        rc, out = refused(env, set_server(user="root"))
        assert rc == 1 and "cannot switch" in out, (rc, out)


@tests.case
def accounts_are_never_deleted_nor_renumbered(env):
    """Messages keep no foreign key on accounts (sql/019: its check cost a row lock per message
    stored); the accounts table refuses what would leave a message's account dangling."""
    for sql in ("DELETE FROM accounts WHERE name = 'test'", "TRUNCATE accounts CASCADE",
                "UPDATE accounts SET id = id + 1000 WHERE name = 'test'"):
        try:
            env.psql(sql)
            raise AssertionError(f"{sql}: done")
        except RuntimeError as e:
            assert "never deleted nor renumbered" in str(e), (sql, e)
    assert env.scalar("SELECT count(*) FROM accounts WHERE name = 'test'") == "1"
    env.sql("UPDATE accounts SET rate_limit = rate_limit WHERE name = 'test'")   # other changes go through
    # and the intake refuses a group naming an account that does not exist, as the key did
    test_id = env.scalar("SELECT id FROM accounts WHERE name = 'test'")
    try:
        env.psql(f"SELECT * FROM intake_admit(ARRAY[{test_id}, 987654321]::bigint[], ARRAY[1, 1], ARRAY['A', 'B'],"
                 " ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[])")
        raise AssertionError("admitted")
    except RuntimeError as e:
        assert "account that does not exist" in str(e), e
    assert post(env.http_port, env.key, {"from": "KEPT", "to": ["821044000000"], "text": "x"})[0] == 202


@tests.case
def the_second_node_stops_cleanly(env):
    if "proc" in second:
        harness._stop_process(second["proc"])
    log = harness._read_text(os.path.join(env.tmp, "pushgated-2.log"))
    assert "level=error" not in log and "ERROR: AddressSanitizer" not in log, log[-2000:]


tests.run(ini={"smpp_server": {"listen": f"127.0.0.1:{SMPP_PORT}"}})
