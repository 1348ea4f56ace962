"""t_fuzz_build: every libFuzzer target still builds (make fuzz-build, clang).

The fuzz targets link parsers with the modules around them; a refactor that
moves code to a new module breaks their link and nothing else notices (the
daemon, the tools and the unit tests build with their own lists).  This
builds them all; running them is `make fuzz` (README).
"""
import os
import subprocess

build = os.path.abspath(os.environ.get("PUSHGATE_BUILDDIR", "build"))
env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
print("1..1")
r = subprocess.run(["make", "-C", build, "fuzz-build"], capture_output=True, text=True, env=env, timeout=1200)
if r.returncode == 0:
    print("ok 1 - every fuzz target builds")
else:
    print("not ok 1 - make fuzz-build failed")
    for line in (r.stdout + r.stderr).splitlines()[-40:]:
        print("# " + line)
