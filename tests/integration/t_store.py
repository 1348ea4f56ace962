"""t_store: src/store.c against a real PostgreSQL (tests/integration/store_check.c).

Regression: when a statement failed inside a pipeline, a statement prepared
for the first time later in the same pipeline was aborted with it, yet the
store counted it as prepared, and every later use of it on that connection
failed ("prepared statement does not exist") until a reconnect.
Regression: a notification that arrived in the same read as a statement's
results waited in libpq until later traffic woke the connection (a platform
push stalled until an unrelated notice came).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP

tests = TAP()


@tests.case
def a_statement_aborted_with_a_failing_neighbour_is_prepared_again(env):
    prog = os.path.join(env.builddir, "tests", "integration", "store_check")
    r = subprocess.run([prog, env.conninfo], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("fail: sql_error") and "division by zero" in lines[0], lines
    assert "two (same pipeline): ok 2" in lines and "two (again): ok 2" in lines, lines


@tests.case
def a_notification_read_with_a_result_reaches_its_owner_at_once(env):
    prog = os.path.join(env.builddir, "tests", "integration", "store_check")
    r = subprocess.run([prog, env.conninfo, "notify"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "notified: check_chan hello" in r.stdout, r.stdout


tests.run(smsc=False, daemon=False)
