"""t_interop_netsmpp: pushgated against an SMSC it shares no code with.

tests/interop/netsmpp_smsc.pl is an SMSC built on Debian's Net::SMPP: that
library decodes every PDU pushgated sends and encodes every PDU it gets
back (bind_transceiver_resp, pipelined submit_sm_resp, deliver_sm receipts
with appendix-B text and receipted_message_id/message_state TLVs,
enquire_link both ways, unbind_resp).  200 recipients get short GSM,
Korean (UCS-2), long GSM and long Korean texts; each must end in the right
final state exactly once, every receipt must be matched and acknowledged,
and the SMSC must reassemble exactly the text that was sent.
"""
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP

tests = TAP()
FINAL = ("SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN")
run = {}   # what one case leaves for the next


def have_net_smpp():
    if shutil.which("perl") is None:
        return False
    return subprocess.run(["perl", "-MNet::SMPP", "-e", "1"], capture_output=True,
                          timeout=30).returncode == 0


def smsc_log(env):
    with open(run["log"], encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def fields(line):
    """key=value pairs of one log line (values without blanks)."""
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def events(env, name):
    return [fields(l) for l in smsc_log(env) if f" ev={name} " in l + " "]


def gsm_text(i, n):
    base = f"Interop {i}: pushgate to Net::SMPP, plain GSM text. "
    return (base * (n // len(base) + 1))[:n]


def korean_text(i, n):
    base = f"푸시게이트 {i} 상호운용 시험 "
    return (base * (n // len(base) + 1))[:n]


# (label, text for batch i, parts expected)
KINDS = [
    ("gsm short", lambda i: gsm_text(i, 60), 1),
    ("ucs2 short", lambda i: korean_text(i, 30), 1),
    ("gsm long", lambda i: gsm_text(i, 400), 3),        # 153 + 153 + 94
    ("ucs2 long", lambda i: korean_text(i, 150), 3),    # 67 + 67 + 16
]


@tests.case
def pushgated_binds_to_the_net_smpp_smsc(env):
    if not have_net_smpp():
        raise AssertionError("Net::SMPP missing: tools/install-deps installs libnet-smpp-perl")
    run["log"] = os.path.join(env.tmp, "netsmpp.log")
    script = os.path.join(env.srcdir, "tests", "interop", "netsmpp_smsc.pl")
    err = open(os.path.join(env.tmp, "netsmpp.stderr"), "ab")
    proc = subprocess.Popen(["perl", script, "--port", "0", "--log", run["log"],
                             "--dlr-delay-ms", "50", "--enquire-every", "3",
                             "--max-seconds", "240", "--system-id", "pushgate",
                             "--password", "secret"],
                            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    err.close()
    env.smsc = proc   # the harness stops it on teardown
    line = harness._read_line_matching(proc, "ready port=", timeout=15)
    assert line, "netsmpp_smsc.pl did not print ready port=N:\n" + harness.tail(
        os.path.join(env.tmp, "netsmpp.stderr"))
    threading.Thread(target=harness._drain, args=(proc.stdout, run["log"] + ".out"),
                     daemon=True).start()
    port = int(line.split("ready port=", 1)[1].split()[0])
    env.ini_overrides.update({"smpp": {"host": "127.0.0.1", "port": str(port), "window": "50",
                                       "system_id": "pushgate", "password": "secret",
                                       "enquire_link": "0.5"}})
    env.write_ini()
    env.start_pushgated()   # waits for /healthz smpp == bound
    binds = events(env, "bind")
    assert len(binds) == 1 and binds[0]["mode"] == "trx" and binds[0]["status"] == "0x00", binds
    assert binds[0]["version"] == "0x34", binds


@tests.case
def two_hundred_mixed_messages_reach_their_final_state_exactly_once(env):
    sent = {}    # msisdn -> (text, parts, recipient id)
    t0 = time.monotonic()
    n = 0
    for batch in range(20):
        label, make, parts = KINDS[batch % len(KINDS)]
        text = make(batch)
        tos = [f"4477{batch:02d}{k:06d}" for k in range(10)]   # last digit 9: UNDELIV
        body = env.send(tos, text=text, sender="PUSHGATE")
        for r in body["recipients"]:
            sent[r["to"]] = (text, parts, int(r["id"]))
        n += len(tos)
    assert n == 200 and len(sent) == 200, (n, len(sent))
    ids = ",".join(str(v[2]) for v in sent.values())
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients WHERE id IN ({ids}) "
                                    f"AND state IN {FINAL!r}") == "200",
                 timeout=120, what="200 recipients final")
    run["elapsed"] = time.monotonic() - t0
    run["sent"] = sent
    rows = env.sql(f"SELECT r.id, r.msisdn, r.state, r.error_code, r.parts, r.attempts, "
                   f"(SELECT count(*) FROM events e WHERE e.recipient_id = r.id AND e.kind = 'state' "
                   f" AND e.state IN {FINAL!r}) "
                   f"FROM recipients r WHERE r.id IN ({ids})")
    wrong = []
    for rid, msisdn, state, err, parts, attempts, finals in rows:
        want_parts = sent[msisdn][1]
        want = ("SMS_FAILED", "1") if msisdn.endswith("9") else ("SMS_DELIVERED", None)
        if (state, err) != want or int(parts or 1) != want_parts or finals != "1" or attempts != "1":
            wrong.append((msisdn, state, err, parts, attempts, finals))
    assert len(rows) == 200 and not wrong, wrong[:5]
    print(f"# 200 recipients ({sum(v[1] for v in sent.values())} submit_sm) final in "
          f"{run['elapsed']:.2f} s", flush=True)


@tests.case
def each_submit_reached_the_smsc_once_and_it_reassembled_the_text_sent(env):
    sent = run["sent"]
    submits = events(env, "submit_sm")
    by_dst = {}
    for s in submits:
        by_dst.setdefault(s["dst"], []).append(s)
    wrong = [(d, len(by_dst.get(d, [])), p) for d, (_, p, _) in sent.items()
             if len(by_dst.get(d, [])) != p]
    assert not wrong, wrong[:5]
    assert len(submits) == sum(p for _, p, _ in sent.values()), len(submits)
    for d, (text, parts, _) in sent.items():
        dcs = "8" if any(ord(ch) > 0x7f for ch in text) else "0"
        assert all(s["dcs"] == dcs and s["src"] == "PUSHGATE" for s in by_dst[d]), by_dst[d]
        if parts > 1:
            assert all(s["esm"] == "0x40" and s["udh"].startswith("050003") for s in by_dst[d]), by_dst[d]
    messages = {m["dst"]: m for m in events(env, "message")}
    bad = []
    for d, (text, parts, _) in sent.items():
        m = messages.get(d)
        got = bytes.fromhex(m["text"]).decode("utf-8") if m else None
        if got != text or int(m["parts"]) != parts:
            bad.append((d, text[:30], (got or "")[:30], m and m["parts"]))
    assert not bad, bad[:3]
    problems = [l for l in smsc_log(env) if any(f"ev={e} " in l for e in
                ("bad_pdu", "warn", "unsupported", "bad_part", "bad_udh", "generic_nack",
                 "unexpected_resp"))]
    assert not problems, problems[:5]


@tests.case
def every_receipt_is_matched_and_acknowledged_once(env):
    sent = run["sent"]
    receipts = events(env, "receipt")
    acks = [a for a in events(env, "deliver_sm_resp") if a["id"] != "-"]
    total = sum(p for _, p, _ in sent.values())
    assert len(receipts) == total, (len(receipts), total)
    assert all(r["try"] == "1" for r in receipts), [r for r in receipts if r["try"] != "1"][:3]
    assert len(acks) == total and all(a["status"] == "0x00" for a in acks), acks[:3]
    assert sorted(a["id"] for a in acks) == sorted(r["id"] for r in receipts)
    ids = ",".join(str(v[2]) for v in sent.values())
    per = env.sql(f"SELECT recipient_id, count(*) FROM events WHERE kind = 'receipt' "
                  f"AND recipient_id IN ({ids}) GROUP BY recipient_id")
    parts_of = {str(v[2]): v[1] for v in sent.values()}
    wrong = [(rid, c) for rid, c in per if int(c) != parts_of[rid]]
    assert len(per) == 200 and not wrong, (len(per), wrong[:5])
    assert env.scalar("SELECT count(*) FROM dlr_parked") == "0"
    # the ids pushgated stored are the ids the SMSC gave (auto format: lower case, no leading 0)
    smsc_ids = {s["id"].lower().lstrip("0") for s in events(env, "submit_sm")}
    stored = {r[0] for r in env.sql(f"SELECT smsc_id FROM recipients WHERE id IN ({ids}) AND parts = 1 "
                                    f"UNION ALL SELECT smsc_id FROM sms_parts WHERE recipient_id IN ({ids})")}
    assert stored == smsc_ids, (len(stored), len(smsc_ids), sorted(stored ^ smsc_ids)[:5])
    with open(env.pushgated_log, encoding="utf-8", errors="replace") as f:
        unreadable = [l for l in f if "receipt_unreadable" in l or "generic_nack" in l]
    assert not unreadable, unreadable[:3]


@tests.case
def pipelined_submits_arrived_several_to_a_read(env):
    reads = events(env, "reads")
    # logged by the SMSC each time one read() brings more whole PDUs than any before
    most = max((int(r["max_pdus_per_read"]) for r in reads), default=0)
    print(f"# most PDUs framed from one read(): {most}", flush=True)
    assert most > 1, "every submit_sm came alone: the window was never used"


@tests.case
def enquire_link_works_both_ways(env):
    env.wait_for(lambda: events(env, "enquire_link") and events(env, "enquire_link_resp"),
                 timeout=15, what="enquire_link from pushgated and its answer to ours")
    resps = events(env, "enquire_link_resp")
    assert all(r["status"] == "0x00" for r in resps), resps
    assert env.health().get("smpp") == "bound"


@tests.case
def pushgated_unbinds_cleanly_on_shutdown(env):
    env.stop_pushgated()
    assert env.pushgated.returncode == 0, env.pushgated.returncode
    env.wait_for(lambda: events(env, "unbind"), timeout=10, what="unbind at the SMSC")
    closes = events(env, "close")
    assert closes and closes[-1]["why"] == "unbind" and closes[-1]["unacked"] == "0", closes


tests.run(smsc=False, daemon=False)
