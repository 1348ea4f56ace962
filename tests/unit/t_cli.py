"""t_cli: every program answers --help and --version with exit 0, and an unknown option
with exit 2 (what an operator, a package's postinst or a unit file's ExecStartPre runs first).
The version is configure.ac's."""
import os
import re
import subprocess

build = os.path.abspath(os.environ.get("PUSHGATE_BUILDDIR", "build"))
src = os.path.abspath(os.environ.get("PUSHGATE_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")))
with open(os.path.join(src, "configure.ac"), encoding="utf-8") as f:
    version = re.search(r"AC_INIT\(\[pushgate\], \[([^]]+)\]", f.read()).group(1)
programs = ["pushgated", "pushgatectl", "smsc-sim", "pushgate-device"]
print(f"1..{len(programs)}")
for i, prog in enumerate(programs, 1):
    path = os.path.join(build, prog)
    problems = []
    for args, rc, want, stream in ((["--help"], 0, "usage:", "stdout"), (["--version"], 0, f"{prog} {version}\n", "stdout"),
                                   (["--no-such-option"], 2, "", "stdout")):
        r = subprocess.run([path, *args], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        out = getattr(r, stream)
        if r.returncode != rc:
            problems.append(f"{' '.join(args)}: exit {r.returncode}, expected {rc} ({r.stderr.strip()[:120]})")
        elif want and not (out == want if args == ["--version"] else out.startswith(want)):
            problems.append(f"{' '.join(args)}: {stream} {out[:80]!r}, expected {want!r}")
    if problems:
        print(f"not ok {i} - {prog} --help, --version, an unknown option")
        for p in problems:
            print("# " + p)
    else:
        print(f"ok {i} - {prog} --help, --version, an unknown option")
