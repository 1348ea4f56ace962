"""t_includes: no include cycle among the modules of src/ and smpp/ (tools/check-includes).

A module is a .c with its .h; a cycle means two modules each need the other,
so neither can be read, tested or replaced alone.
"""
import os
import subprocess
import sys

src = os.environ.get("PUSHGATE_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
r = subprocess.run([sys.executable, os.path.join(src, "tools", "check-includes"), src],
                   capture_output=True, text=True, timeout=60)
print("1..1")
if r.returncode == 0:
    print("ok 1 - no include cycle among src/ and smpp/ (" + r.stdout.strip().splitlines()[-1] + ")")
else:
    print("not ok 1 - include cycles among src/ and smpp/")
    for line in (r.stdout + r.stderr).splitlines():
        print("# " + line)
