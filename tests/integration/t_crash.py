"""t_crash: kill -9 of pushgated under load, restarted at once.

One scenario, observed by several cases.  Single-recipient POST
/v1/messages from several clients; smsc-sim answers every submit_sm 300 ms
late (a slow carrier), so some submits are always in flight.  pushgated is
killed with SIGKILL and started again straight away under the same node
name.  Expected: the new process takes back the leases its predecessor
held (the node name is held by an advisory lock, so nothing else can hold
them), every recipient acknowledged before the kill is final within 5 s of
the restart, none is lost, each in-flight submit is sent again at most once
and that resend is recorded (events.kind 'resend', the log, /metrics).
Also: a second live pushgated under the same node name is refused.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FINAL_STATES, TAP, free_port, outcome_ok  # noqa: E402
from postload import PostLoad  # noqa: E402

tests = TAP()
RESP_DELAY_MS = 300
DLR_DELAY_MS = 600      # receipts after the resp: each in-flight submit has its resp pending
CLIENTS = 6
KILL_AFTER = 120        # acknowledged messages before the kill
RESTART_BOUND = 5.0     # seconds from the restart to the last final state
_obs = {}


def scenario(env):
    if _obs:
        return _obs
    load = PostLoad(env, CLIENTS, 821040000000, "crash test", timeout=10)
    load.start()
    env.wait_for(lambda: len(load.select(202)) >= KILL_AFTER, timeout=60, interval=0.02,
                 what=f"{KILL_AFTER} messages acknowledged")
    in_flight = int(env.scalar("SELECT count(*) FROM recipients WHERE state = 'SMS_SUBMITTED'"))
    env.pushgated.send_signal(signal.SIGKILL)
    env.pushgated.wait(timeout=10)
    killed_at = time.time()
    before = load.acked()
    log_from = len(env.pushgated_log_text())
    env.spawn_pushgated()
    restarted_at = time.time()
    env.wait_ready()
    _obs["ready_after"] = time.time() - restarted_at
    time.sleep(1.0)   # traffic goes on after the restart
    load.finish()
    acked = load.acked()
    ids = ",".join(str(int(i)) for i in before)
    finals = ",".join(f"'{s}'" for s in sorted(FINAL_STATES))
    try:
        env.wait_for(lambda: env.scalar(
            f"SELECT count(*) FROM recipients WHERE message_id IN ({ids}) AND state NOT IN ({finals})") == "0",
            timeout=60, interval=0.2, what="every recipient acknowledged before the kill final")
    except AssertionError as e:
        _obs["final_error"] = str(e)
    _obs["last_final_after"] = float(env.scalar(
        f"SELECT coalesce(extract(epoch FROM max(final_at)), 0) FROM recipients WHERE message_id IN ({ids})")) \
        - restarted_at
    all_ids = ",".join(str(int(i)) for i in acked)
    env.wait_for(lambda: env.scalar(
        f"SELECT count(*) FROM recipients WHERE message_id IN ({all_ids}) AND state NOT IN ({finals})") == "0",
        timeout=60, interval=0.2, what="every acknowledged recipient final")
    _obs.update(before=before, acked=acked, in_flight=in_flight, killed_at=killed_at,
                restarted_at=restarted_at, log_from=log_from, errors=load.errors())
    print(f"# crash: {len(before)} acknowledged before the kill ({in_flight} submitted, unanswered), "
          f"{len(acked)} in all; ready {_obs['ready_after']:.2f} s after the restart, last of the "
          f"earlier ones final {_obs['last_final_after']:.2f} s after it; client errors {load.errors()}",
          flush=True)
    return _obs


@tests.case
def acknowledged_before_the_kill_are_final_within_5_s_of_the_restart(env):
    obs = scenario(env)
    assert "final_error" not in obs, obs["final_error"]
    assert obs["last_final_after"] <= RESTART_BOUND, \
        f"the last one became final {obs['last_final_after']:.2f} s after the restart"


@tests.case
def no_acknowledged_message_is_lost(env):
    obs = scenario(env)
    acked = obs["acked"]
    ids = ",".join(str(int(i)) for i in acked)
    rows = env.sql(f"SELECT message_id, msisdn, state, error_code FROM recipients WHERE message_id IN ({ids})")
    stored = {int(m): (to, st, code) for m, to, st, code in rows}
    lost = [m for m in acked if int(m) not in stored or stored[int(m)][0] != acked[m][0]]
    wrong = [(m, v) for m, v in stored.items() if not outcome_ok(*v)]
    assert not lost, f"{len(lost)} acknowledged but not stored: {lost[:5]}"
    assert not wrong, f"{len(wrong)} in the wrong final state: {wrong[:5]}"


@tests.case
def the_kill_happened_with_submits_in_flight(env):
    # the scenario proves something only if the dead process held leases
    obs = scenario(env)
    assert obs["in_flight"] > 0, "nothing was in flight at the kill"
    taken = [l for l in env.pushgated_log_text()[obs["log_from"]:].splitlines() if "ev=taken_back" in l]
    assert len(taken) == 1, taken
    assert int(taken[0].split("sms_resent=")[1].split()[0]) > 0, taken[0]


@tests.case
def each_resend_is_recorded_and_none_is_sent_a_third_time(env):
    obs = scenario(env)
    acked = obs["acked"]
    ids = ",".join(str(int(i)) for i in acked)
    resent = dict(env.sql(f"SELECT r.msisdn, count(*) FROM events e JOIN recipients r ON r.id = e.recipient_id"
                          f" WHERE e.kind = 'resend' AND r.message_id IN ({ids}) GROUP BY r.msisdn"))
    submits = env.smsc_submits()
    wanted = [to for to, _ in acked.values() if to[-1] != "6"]   # 6: refused at the resp, never resent
    twice = [n for n in wanted if submits[n] == 2]
    assert all(submits[n] in (1, 2) for n in wanted), \
        [(n, submits[n]) for n in wanted if submits[n] not in (1, 2)][:10]
    unrecorded = [n for n in twice if n not in resent]
    assert not unrecorded, f"sent twice without a resend event: {unrecorded[:10]}"
    assert all(int(c) == 1 for c in resent.values()), resent
    taken = [l for l in env.pushgated_log_text()[obs["log_from"]:].splitlines() if "ev=taken_back" in l]
    assert int(taken[0].split("sms_resent=")[1].split()[0]) == len(resent), (taken[0], len(resent))
    st, _, _, raw = env.http("GET", "/metrics", key=None)
    metric = [l for l in raw.decode().splitlines() if l.startswith('pushgate_sms_resends_total{cause="restart"}')]
    assert metric and int(metric[0].split()[-1]) == len(resent), (metric, len(resent))


@tests.case
def resends_are_in_the_report(env):
    scenario(env)
    n = int(env.scalar("SELECT count(*) FROM events WHERE kind = 'resend'"))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    r = env.ctl("report", "--since", since, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["resends"]
    assert rows == [{"route": "default", "resends": n}], (rows, n)


@tests.case
def a_second_live_pushgated_under_the_same_name_is_refused(env):
    scenario(env)
    node = [l for l in env.pushgated_log_text().splitlines() if "ev=started" in l][-1].split("node=")[1].split()[0]
    other = os.path.join(env.tmp, "other.ini")
    text = open(env.ini_path, encoding="utf-8").read()
    text = text.replace(f"127.0.0.1:{env.http_port}", f"127.0.0.1:{free_port()}")
    text = text.replace("node_name =", f"node_name = {node}", 1)
    env.write_private(other, text)
    log = os.path.join(env.tmp, "other.log")
    with open(log, "ab") as f:
        p = subprocess.Popen([os.path.join(env.builddir, "pushgated"), "-c", other], stdout=f,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env._child_env())
    try:
        env.wait_for(lambda: "held by another live pushgated" in open(log, encoding="utf-8").read(),
                     timeout=20, what="the second process to find the name held")
        assert p.poll() is None
        assert "ev=ready" not in open(log, encoding="utf-8").read()
        # the first one kept its name and its work
        assert env.pushgated_alive()
        env.send(["821049999990"])
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)


tests.run(dlr_delay_ms=DLR_DELAY_MS, smsc_args=["--resp-delay-ms", str(RESP_DELAY_MS)])
