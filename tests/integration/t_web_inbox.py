"""t_web_inbox: the reference web inbox (web/) in a real browser.

pushgated serves the page from the source tree's web/; Debian's headless
Chromium, driven by tests/browser/inbox.test.mjs (playwright-core), registers
a number through the page with the one-time code that went out by SMS (read
here from what smsc-sim received), goes live on the WebSocket, and then:

  message from ACME -> shown in folder ACME with an unread badge, and the
  page's ack makes the recipient PUSH_DELIVERED -> Reject -> an opt_outs row
  -> the next ACME message takes the SMS path and never reaches the page ->
  Allow -> the next one is pushed and shown again -> Log out revokes the
  device.

Screenshots go to $PUSHGATE_BUILDDIR/test-artifacts/inbox-*.png, the
driver's log to test-artifacts/inbox-driver.log. Every wait is bounded.
"""
import configparser
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from browserdriver import BrowserDriver  # noqa: E402
from harness import TAP

MSISDN = "821055501231"        # last digit 1: smsc-sim delivers its SMS
SENDER = "ACME"
TEXTS = {
    "first": "[ACME] 카드 승인 12,000원 (홍길동) 서울 마포구 — first",
    "blocked": "ACME second: this one must not reach the page",
    "third": "ACME third: 다시 허용됨",
    "restart": "ACME fourth, after a restart",
}
SMS_FINAL = ("SMS_DELIVERED", "SMS_FAILED", "SMS_EXPIRED", "SMS_UNKNOWN")

tests = TAP()
_state = {}


def Browser(env):
    return BrowserDriver(env, "inbox.test.mjs", "/", "inbox-driver.log")


def browser(env):
    if "browser" not in _state:
        _state["browser"] = Browser(env)
    return _state["browser"]


def newest_code(env):
    """The 6-digit code in the newest SMS smsc-sim got for MSISDN, else None (the
    database keeps the code's text masked)."""
    texts = env.smsc_texts(MSISDN)
    if not texts:
        return None
    m = re.search(r"(?<!\d)(\d{6})(?!\d)", texts[-1])
    return m.group(1) if m else None


def send(env, key):
    body = env.send([MSISDN], text=TEXTS[key], sender=SENDER)
    rid = int(body["recipients"][0]["id"])
    _state[key] = rid
    return rid


def recipient(env, rid):
    rows = env.sql(f"SELECT state, channel, device_id FROM recipients WHERE id = {int(rid)}")
    assert len(rows) == 1, rows
    return rows[0]


def states(env, rid):
    return [s for (s,) in env.sql(
        f"SELECT state FROM events WHERE recipient_id = {int(rid)} ORDER BY id")]


@tests.case
def page_is_served_and_registers_the_number_with_the_sms_code(env):
    b = browser(env)
    opened = b.call("open")
    assert opened["title"] == "pushgate inbox", opened
    b.call("register", msisdn=MSISDN)
    code = env.wait_for(lambda: newest_code(env), timeout=30,
                        what=f"a 6-digit code in a message to {MSISDN}")
    live = b.call("verify", code=code)
    assert live["conn"] == "Live", live
    rows = env.sql("SELECT platform, verified_at IS NOT NULL, revoked_at IS NULL FROM devices "
                   f"WHERE msisdn = '{MSISDN}'")
    assert rows == [("web", "t", "t")], rows


@tests.case
def message_from_acme_shows_in_its_folder_with_an_unread_badge(env):
    b = browser(env)
    send(env, "first")
    got = b.call("wait_message", folder=SENDER, text=TEXTS["first"][:20])
    assert got["unread"] == 1 and got["total_unread"] == 1, got
    assert got["title"].startswith("(1) "), got
    assert SENDER in got["toast"], got
    # stored in IndexedDB, acked, and announced with the WebAudio beep
    assert got["stats"]["stored"] == 1 and got["stats"]["acks"] == 1, got
    assert got["stats"]["beeps"] >= 1, got
    b.call("screenshot", name="after-receive")


@tests.case
def page_ack_makes_the_recipient_push_delivered(env):
    rid = _state["first"]
    env.wait_for(lambda: recipient(env, rid)[0] == "PUSH_DELIVERED", timeout=20,
                 what=f"recipient {rid} to become PUSH_DELIVERED")
    state, _, device_id = recipient(env, rid)
    owner = env.scalar(f"SELECT msisdn FROM devices WHERE id = {int(device_id)}")
    assert owner == MSISDN, (state, device_id, owner)
    assert "PUSH_DELIVERED" in states(env, rid), states(env, rid)


@tests.case
def opening_the_folder_marks_it_read(env):
    opened = browser(env).call("open_folder", folder=SENDER)
    assert opened["unread"] == 0 and opened["total_unread"] == 0, opened


@tests.case
def reject_records_an_opt_out_for_the_number_and_sender(env):
    b = browser(env)
    shown = b.call("reject")
    assert "Blocked" in shown["state"], shown
    rows = env.sql(f"SELECT source FROM opt_outs WHERE msisdn = '{MSISDN}' AND sender = '{SENDER}'")
    assert rows == [("app",)], rows
    b.call("screenshot", name="after-reject")


@tests.case
def rejected_sender_takes_the_sms_path_and_never_reaches_the_page(env):
    rid = send(env, "blocked")
    env.wait_for(lambda: recipient(env, rid)[0] in SMS_FINAL, timeout=60,
                 what=f"recipient {rid} to finish on the SMS path")
    state, channel, _ = recipient(env, rid)
    seen = states(env, rid)
    assert state == "SMS_DELIVERED" and channel == "sms", (state, channel, seen)
    assert "PUSH_DELIVERED" not in seen and "SMS_SUBMITTED" in seen, seen
    shown = browser(env).call("folder_texts")
    assert TEXTS["blocked"] not in shown["texts"], shown
    assert shown["stats"]["stored"] == 1, shown


@tests.case
def allow_resumes_pushes_and_the_next_message_is_shown(env):
    b = browser(env)
    shown = b.call("allow")
    assert "Blocked" not in shown["state"], shown
    left = env.scalar(f"SELECT count(*) FROM opt_outs WHERE msisdn = '{MSISDN}' "
                      f"AND sender = '{SENDER}'")
    assert left == "0", left
    rid = send(env, "third")
    got = b.call("wait_in_folder", text=TEXTS["third"])
    assert got["texts"][0] == TEXTS["third"] and TEXTS["blocked"] not in got["texts"], got
    env.wait_for(lambda: recipient(env, rid)[0] == "PUSH_DELIVERED", timeout=20,
                 what=f"recipient {rid} to become PUSH_DELIVERED")
    b.call("screenshot", name="after-allow")


@tests.case
def page_reconnects_after_a_pushgated_restart_and_gets_the_next_message_once(env):
    b = browser(env)
    before = b.call("folder_texts")["stats"]
    env.stop_pushgated()
    offline = b.call("wait_conn", state="offline")
    assert "retrying" in offline["text"], offline
    env.start_pushgated()
    # Sent at once: pushed live or, if the page is still backing off, from
    # the backlog right after its next welcome; shown once either way.
    send(env, "restart")
    b.call("wait_conn", state="live", ms=50000, timeout=70)
    got = b.call("wait_in_folder", text=TEXTS["restart"])
    assert got["texts"].count(TEXTS["restart"]) == 1, got
    after = b.call("folder_texts")["stats"]
    assert after["connects"] > before["connects"], (before, after)
    assert after["stored"] == before["stored"] + 1, (before, after)
    env.wait_for(lambda: recipient(env, _state["restart"])[0] == "PUSH_DELIVERED", timeout=20,
                 what="the message sent after the restart to become PUSH_DELIVERED")


@tests.case
def logout_revokes_the_device_and_forgets_the_token(env):
    out = browser(env).call("logout")
    assert out["stored"] is None and out["conn"] == "off", out
    env.wait_for(lambda: env.scalar(
        f"SELECT count(*) FROM devices WHERE msisdn = '{MSISDN}' AND revoked_at IS NOT NULL") == "1",
        timeout=10, what="the device to be revoked")


@tests.case
def page_ran_without_script_errors(env):
    b = browser(env)
    errors = b.call("errors")["errors"]
    b.call("quit")
    assert errors == [], errors


def web_ini():
    """{section: {"web_root": SRCDIR/web}} for the section pushgate.ini keeps web_root in."""
    srcdir = os.path.abspath(os.environ.get(
        "PUSHGATE_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(os.path.join(srcdir, "etc", "pushgate.ini"), encoding="utf-8")
    section = next((s for s in cp.sections() if cp.has_option(s, "web_root")), "server")
    return {section: {"web_root": os.path.join(srcdir, "web")}}


tests.run(dlr_delay_ms=50, ini=web_ini())
