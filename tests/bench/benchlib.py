"""benchlib.py: what the Python benchmarks share (CPU seconds from /proc, knobs, summaries).

Standard library only; imported by bench_engine.py, bench_push.py and
bench_smpp_server.py from their own directory.
"""

import os
import statistics

CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def statements_wanted():
    """BENCH_STATEMENTS=1: track and print pg_stat_statements (the tracking costs ~5% of a rate)."""
    return os.environ.get("BENCH_STATEMENTS", "0") == "1"


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu(pid, children=False):
    """utime+stime (+ reaped children's with children=True) of pid, in seconds (0 when gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])          # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])     # cutime, cstime
    return ticks / CLK_TCK


def postgres_cpu(pg_data):
    """CPU seconds of the whole cluster: postmaster (with exited backends) + live children."""
    with open(os.path.join(pg_data, "postmaster.pid")) as f:
        pm = int(f.readline())
    total = proc_cpu(pm, children=True)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = _stat_fields(d)
        except OSError:
            continue
        if int(fields[1]) == pm:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def summary(label, values, fmt="{:,.0f}", width=28):
    """One line: label, then min, median and max of values."""
    vs = sorted(values)
    return f"{label:<{width}} " + " ".join(fmt.format(v).rjust(10) for v in (vs[0], statistics.median(vs), vs[-1]))


# The start of a wrk Lua script: each thread knows its number (tid, from 1) and counts its
# requests (n); the rest of a script defines request().
WRK_THREADS_LUA = r"""
local tid = 0
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
end
"""
