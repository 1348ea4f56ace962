"""t_layout: what the source tree's layout promises, checked.

1. No include cycle among the modules of src/ and smpp/ (tools/check-includes):
   a module is a .c with its .h, and a cycle means two modules each need the
   other, so neither can be read, tested or replaced alone.
2. Only src/recipient.c writes recipients.state (docs/architecture.md, section 4):
   no other C file (nor sql/functions/) updates or inserts recipients.
"""
import os
import re
import subprocess
import sys

src = os.path.abspath(os.environ.get("PUSHGATE_SRCDIR",
                                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
print("1..2")

r = subprocess.run([sys.executable, os.path.join(src, "tools", "check-includes"), src],
                   capture_output=True, text=True, timeout=60)
if r.returncode == 0:
    print("ok 1 - no include cycle among src/ and smpp/ (" + r.stdout.strip().splitlines()[-1] + ")")
else:
    print("not ok 1 - include cycles among src/ and smpp/")
    for line in (r.stdout + r.stderr).splitlines():
        print("# " + line)

writers = []
update = re.compile(r'(UPDATE|INSERT\s+INTO)\s+recipients\b', re.I)
for d in ("src", "smpp", "sim", "sql/functions"):
    for f in sorted(os.listdir(os.path.join(src, d))):
        if f.endswith((".c", ".sql")) and (d, f) != ("src", "recipient.c"):
            with open(os.path.join(src, d, f), encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if update.search(line):
                        writers.append(f"{d}/{f}:{n}: {line.strip()}")
if not writers:
    print("ok 2 - only src/recipient.c writes recipients (updates or inserts)")
else:
    print("not ok 2 - recipients written outside src/recipient.c")
    for w in writers:
        print("# " + w)
