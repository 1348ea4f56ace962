"""t_failover: the PostgreSQL primary dies, its synchronous standby is promoted.

One scenario, observed by several cases.  A private primary and a
streaming standby made synchronous (synchronous_standby_names on the
primary, synchronous_commit on: a commit returns once the standby flushed
it), both under the test's temporary directory (tests/pgstandby.py).
pushgated's conninfo names both, primary first, with
target_session_attrs=read-write.  Several clients post single-recipient
messages over keep-alive connections; the primary is stopped hard
(pg_ctl stop -m immediate) under that load.  While no primary exists,
pushgated answers 503 with Retry-After, stays alive, and no store connects
to the read-only standby.  The standby is then promoted (pg_ctl promote)
and nothing else is done: pushgated must serve again by itself (202) within
a bound, take its node name back on the new primary, and every message that
got a 202 (before, during, after) must be on the new primary and reach its
expected final state: none acknowledged is lost.

Regression: when libpq moved on to the next host of the conninfo, the new
socket got the old one's number and store.c never re-armed its libev
watcher for it; every store stayed "connecting" for ever, and pushgated
answered 503 long after the standby was promoted.
"""
import collections
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import FINAL_STATES, TAP, outcome_ok  # noqa: E402
from pgstandby import Standby  # noqa: E402
from postload import PostLoad  # noqa: E402

tests = TAP()
CLIENTS = 4
BEFORE = 150            # acknowledged messages before the primary is stopped
AFTER = 150             # acknowledged messages sent after the promotion
RECOVERY_BOUND = 30.0   # seconds from the promotion to the first 202 (store backoff is at most 10 s)
FINAL_WAIT = 180        # an SMS lease whose commit answer was lost waits for its expiry (60 s)
_obs = {}


def log_since(env, offset):
    return env.pushgated_log_text()[offset:]


def scenario(env):
    """Run the failover once and remember what was seen."""
    if _obs:
        return _obs
    _obs["ran"] = True
    sb = Standby(env, "standby1")
    try:
        failover(env, sb, _obs)
    except Exception:
        _obs["error"] = traceback.format_exc()
    finally:
        if not sb.taken_over:
            sb.stop("immediate")
    return _obs


def failover(env, sb, obs):
    sb.create()
    sb.start()
    sb.make_synchronous()
    env.conninfo = sb.multi_host_conninfo()
    env.write_ini()
    env.start_pushgated()
    obs["pid"] = env.pushgated.pid
    obs["conninfo"] = env.conninfo

    load = PostLoad(env, CLIENTS, 821050000000, "failover", timeout=30)
    load.start()
    try:
        env.wait_for(lambda: len(load.select(202)) >= BEFORE, timeout=60, interval=0.02,
                     what=f"{BEFORE} messages acknowledged")
        obs["replication"] = sb.replication_state()

        # the primary dies with the load running
        log_from = len(env.pushgated_log_text())
        obs["t_stop"] = time.monotonic()
        sb.stop_primary_immediate()
        obs["t_stopped"] = time.monotonic()

        # no primary: 503 + Retry-After, db down, the daemon alive, the read-only standby refused
        env.wait_for(lambda: load.select(503, answered_after=obs["t_stopped"]), timeout=30,
                     interval=0.02, what="a POST answered 503 with no primary")
        obs["health_down"] = env.wait_for(lambda: env.health().get("db") == "down" and env.health(),
                                          timeout=30, what="/healthz db down")
        # the stores look for a read-write server on both hosts, twice each, and find none
        # (regression: a store whose socket libpq swapped for the standby's stayed connecting)
        env.wait_for(lambda: log_since(env, log_from).count("mod=store ev=connect_failed") >= 10,
                     timeout=30, what="the stores to find no read-write server, twice")
        st, hdrs, js, _ = env.http("GET", "/readyz", key=None)
        obs["readyz_during"] = (st, hdrs.get("retry-after"), js)
        obs["alive_during"] = env.pushgated_alive()
        obs["log_no_primary"] = log_since(env, log_from)

        # promotion; nothing is done to pushgated
        obs["t_promote"] = time.monotonic()
        sb.promote()
        obs["t_promoted"] = time.monotonic()
        sb.take_over()
        obs["sync_names_after"] = env.scalar("SELECT quote_literal(current_setting('synchronous_standby_names'))")
        env.wait_for(lambda: load.select(202, sent_after=obs["t_promoted"]), timeout=RECOVERY_BOUND,
                     interval=0.02, what="a POST sent after the promotion accepted")
        env.wait_for(lambda: len(load.select(202, sent_after=obs["t_promoted"])) >= AFTER, timeout=60,
                     interval=0.02, what=f"{AFTER} messages acknowledged after the promotion")
    finally:
        obs["answers"] = load.finish()
    # the node name's lock went with the old primary: it is taken again on the new one (node.c, at its store's reconnect)
    env.wait_for(lambda: "ev=name_held_again" in log_since(env, log_from), timeout=30,
                 what="the node name claimed again on the new primary")
    obs["t_reclaimed"] = time.monotonic()

    def ready():
        st, _, js, _ = env.http("GET", "/readyz", key=None)
        return st == 200 and (st, js)
    obs["readyz_after"] = env.wait_for(ready, timeout=30, what="/readyz 200 on the new primary")

    acked = {a[4]: a for a in obs["answers"] if a[2] == 202}
    obs["acked"] = acked
    ids = ",".join(str(int(i)) for i in acked)
    finals = ",".join(f"'{s}'" for s in sorted(FINAL_STATES))
    env.wait_for(lambda: env.scalar(f"SELECT count(*) FROM recipients WHERE message_id IN ({ids}) "
                                    f"AND state NOT IN ({finals})") == "0",
                 timeout=FINAL_WAIT, interval=0.5, what="every acknowledged recipient final")
    obs["rows"] = env.sql(f"SELECT message_id, msisdn, state, error_code FROM recipients "
                          f"WHERE message_id IN ({ids})")
    report(env, obs)


def report(env, obs):
    answers, acked = obs["answers"], obs["acked"]
    t_stopped, t_promoted = obs["t_stopped"], obs["t_promoted"]
    before = [a for a in acked.values() if a[1] < t_stopped]
    during = [a for a in acked.values() if t_stopped <= a[1] < t_promoted]
    after = [a for a in acked.values() if a[1] >= t_promoted]
    u503 = [a for a in answers if a[2] == 503]
    first_after = min(a[1] for a in acked.values() if a[0] >= t_promoted)
    refused = [a[5] for a in answers if a[2] != 202]
    stored_refused = 0
    if refused:
        numbers = ",".join(f"'{n}'" for n in refused)
        stored_refused = int(env.scalar(f"SELECT count(*) FROM recipients WHERE msisdn IN ({numbers})"))
    statuses = collections.Counter(a[2] for a in answers)
    submits = collections.Counter(f[4:] for line in env.smsc_log().splitlines() if "ev=submit_sm" in line
                                  for f in line.split() if f.startswith("dst="))
    obs["figures"] = dict(
        before=len(before), during=len(during), after=len(after),
        s503=(max(a[1] for a in u503) - min(a[1] for a in u503)) if u503 else 0.0,
        n503=len(u503),
        no_primary=obs["t_promote"] - obs["t_stopped"],
        promote=t_promoted - obs["t_promote"],
        first_202=first_after - t_promoted,
        reclaimed=obs["t_reclaimed"] - t_promoted,
        stored_refused=stored_refused,
        twice=sum(1 for a in acked.values() if submits[a[5]] > 1))
    f = obs["figures"]
    print(f"# failover: {f['before']} acked before the stop returned, {f['during']} while no primary, "
          f"{f['after']} after the promote ({len(acked)} in all, 0 lost); 503s for {f['s503']:.2f} s "
          f"({f['n503']} answers; no primary for {f['no_primary']:.2f} s, pg_ctl promote "
          f"{f['promote']:.2f} s); first 202 {f['first_202']:.2f} s after the promote, node name back "
          f"after {f['reclaimed']:.2f} s; "
          f"{f['stored_refused']} answered 503 yet stored (commit unknown); {f['twice']} submitted twice; "
          f"answers {dict(statuses)}",
          flush=True)


def observed(env):
    obs = scenario(env)
    assert "error" not in obs, obs["error"]
    return obs


@tests.case
def the_standby_is_synchronous_and_messages_are_accepted_before_the_stop(env):
    obs = observed(env)
    assert obs["replication"] == ("streaming", "sync"), obs["replication"]
    assert "target_session_attrs=read-write" in obs["conninfo"]
    assert obs["figures"]["before"] >= BEFORE, obs["figures"]


@tests.case
def with_no_primary_post_gets_503_with_retry_after_and_the_daemon_stays_up(env):
    obs = observed(env)
    answers = obs["answers"]
    u503 = [a for a in answers if a[2] == 503]
    assert u503, "no 503 while no primary existed"
    assert all((a[3] or "").strip().isdigit() for a in u503), [a for a in u503 if not (a[3] or "").isdigit()][:5]
    others = collections.Counter(a[2] for a in answers if a[2] not in (202, 503))
    assert not others, f"answers other than 202 and 503: {dict(others)}"
    assert obs["alive_during"], "pushgated exited with no primary"
    assert obs["health_down"]["status"] == "ok", obs["health_down"]
    st, retry_after, js = obs["readyz_during"]
    assert st == 503 and retry_after == "1" and js["db"] == "down", obs["readyz_during"]


@tests.case
def no_store_connects_to_the_read_only_standby(env):
    obs = observed(env)
    log = obs["log_no_primary"]
    connected = [l for l in log.splitlines() if "ev=connected" in l or "ev=name_held_again" in l]
    assert not connected, connected
    # the new primary does not wait for a synchronous standby of its own
    assert obs["sync_names_after"] == "''", obs["sync_names_after"]


@tests.case
def service_resumes_by_itself_after_the_promotion(env):
    obs = observed(env)
    assert obs["figures"]["first_202"] <= RECOVERY_BOUND, obs["figures"]
    assert obs["figures"]["after"] >= AFTER, obs["figures"]
    st, js = obs["readyz_after"]
    assert st == 200 and js["ready"] is True and js["db"] == "up", obs["readyz_after"]
    assert env.pushgated_alive() and env.pushgated.pid == obs["pid"], "pushgated was restarted"


@tests.case
def every_acknowledged_message_is_on_the_new_primary_in_its_final_state(env):
    obs = observed(env)
    acked = obs["acked"]
    stored = {int(m): (to, st, code) for m, to, st, code in obs["rows"]}
    lost = [(m, a[5]) for m, a in acked.items() if int(m) not in stored or stored[int(m)][0] != a[5]]
    wrong = [(m, v) for m, v in stored.items() if not outcome_ok(*v)]
    assert not lost, f"{len(lost)} acknowledged but not on the new primary: {lost[:5]}"
    assert not wrong, f"{len(wrong)} in the wrong final state: {wrong[:5]}"
    # the database serving them is the promoted standby
    assert env.scalar("SELECT pg_is_in_recovery()") == "f"
    assert int(env.scalar("SELECT count(*) FROM pg_stat_replication")) == 0


tests.run(daemon=False)
