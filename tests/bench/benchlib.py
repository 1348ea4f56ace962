"""benchlib.py: what the Python benchmarks share (CPU seconds from /proc, knobs, summaries).

Standard library only; imported by the benchmarks from their own directory.
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


def psql_long(env, sql):
    """env.psql without its one-minute bound: seeding millions of rows takes a while."""
    import subprocess
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                        str(env.pg_port), "-U", "postgres", "-d", "pushgate", "-c", sql],
                       capture_output=True, text=True, timeout=7200)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def history_cover(env, top, size=None):
    """History ranges (sql/029) of SIZE recipient ids (default BENCH_RANGE, 1,000,000) up to
    past id TOP and a range more, and message ranges (sql/036) the same: what pushgated's
    history_ensure() and message_ensure() keep ahead, for a preload that writes its ids itself.  A range of a million ids is a day of a modest service's
    traffic, so the partitions a history of N recipients spans are about those of N / 1M days
    in service; a smaller BENCH_RANGE gives a history the ranges of more days."""
    size = size or env_int("BENCH_RANGE", 1_000_000)
    for ranges, add in (("history_ranges", "history_range_add"), ("message_ranges", "message_range_add")):
        env.psql(f"DO $$ DECLARE h bigint; BEGIN LOOP SELECT max(hi) INTO h FROM {ranges};"
                 f" EXIT WHEN h > {int(top)} + {int(size)}; PERFORM {add}(h, h + {int(size)});"
                 f" END LOOP; END $$")


def preload_history(env, n):
    """N delivered single-recipient messages of the first account, with the rows
    the real path leaves (recipient, SMS part, five events), then VACUUM ANALYZE,
    the report rollups brought up to date and a checkpoint: the history a database
    has after a while in service."""
    if n <= 0:
        return
    acct = int(env.scalar("SELECT id FROM accounts ORDER BY id LIMIT 1"))
    history_cover(env, n)
    for lo in range(1, n + 1, 1_000_000):   # a statement per million: each in its own transaction
        hi = min(n, lo + 999_999)
        psql_long(env, f"""
            INSERT INTO messages (id, account_id, sender, body, created_at)
              SELECT g, {acct}, 'PUSHGATE', 'Your pushgate code is ' || (100000 + g % 900000),
                     now() - interval '1 day' + g * interval '1 ms'
              FROM generate_series({lo}, {hi}) g;
            INSERT INTO recipients (id, message_id, account_id, msisdn, state, channel, route, smsc_id, parts,
                                    attempts, expires_at, final_at)
              SELECT g, g, {acct}, '8218' || lpad((g % 5000000)::text, 8, '0'), 'SMS_DELIVERED', 'sms', 'default',
                     'H' || g, 1, 1, now() + interval '1 day',
                     now() - interval '1 day' + g * interval '1 ms'
              FROM generate_series({lo}, {hi}) g;
            INSERT INTO sms_parts (recipient_id, part_no, account_id, route, smsc_id, state)
              SELECT g, 1, {acct}, 'default', 'H' || g, 'SMS_DELIVERED' FROM generate_series({lo}, {hi}) g;
            INSERT INTO events (recipient_id, message_id, account_id, state, route, detail)
              SELECT g, g, {acct}, s.state, s.route, s.detail
              FROM generate_series({lo}, {hi}) g,
                   (VALUES (1, 'ACCEPTED', NULL, 'http'), (2, 'SMS_QUEUED', 'default', 'no push channel'),
                           (3, 'SMS_SUBMITTED', 'default', NULL), (4, 'SMS_ACCEPTED', 'default', NULL),
                           (5, 'SMS_DELIVERED', 'default', 'DELIVRD')) AS s(o, state, route, detail)
              ORDER BY g, s.o;
        """)
    env.psql(f"SELECT setval('messages_id_seq', {n}); SELECT setval('recipients_id_seq', {n})")
    for t in ("messages", "recipients", "events", "sms_parts"):
        psql_long(env, f"VACUUM ANALYZE {t}")
    # the report rollups count that history now, as in a database in service (not during the run)
    r = env.ctl("rollup", timeout=3600)
    assert r.returncode == 0, r.stdout + r.stderr
    env.psql("CHECKPOINT")


def preload_history_stopped(env, n, label="history"):
    """preload_history with pushgated stopped meanwhile (its plans are made afterwards, on
    the analysed tables); prints how long it took."""
    import time
    if n <= 0:
        return
    env.stop_pushgated()
    t = time.monotonic()
    preload_history(env, n)
    env.start_pushgated()
    print(f"# {label}: {n:,} delivered messages preloaded in {time.monotonic() - t:.0f} s", flush=True)
