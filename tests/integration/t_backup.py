"""t_backup: a base backup during traffic, WAL archiving, a point-in-time restore.

The procedure of docs/operations.md ("Backups and point-in-time restore"),
scripted on the harness's private cluster, which archives its WAL here
(archive_mode on, archive_command copying into a directory).  Single-message
POST /v1/messages run from several clients the whole time.  pg_basebackup
copies the cluster while they run; a named restore point is set later
(pg_create_restore_point), traffic goes on after it, the WAL is switched so
the archive holds it all.  Then pushgated and the cluster stop, and the
copy is restored to the restore point (recovery_target_name, WAL from the
archive) and started where the old cluster was; pushgated starts on it.

Expected: every message acknowledged (202) before the backup began, and
every one acknowledged before the restore point was set, is there; nothing
is there that was never acknowledged; the ones acknowledged after the
restore point are counted and reported (some committed before it, the rest
are the restore's loss, as a point-in-time restore means).  pushgated
resumes on the restored database: every recipient that was queued or
submitted at the restore point moves on (sent again by the node's take-back
or its queue) within a bound.  The figures are printed as TAP comments.
"""
import atexit
import os
import pwd
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP  # noqa: E402
from postload import PostLoad  # noqa: E402

tests = TAP()
CLIENTS = 4
ARCHIVE = tempfile.mkdtemp(prefix="pushgate-wal-archive-")
atexit.register(shutil.rmtree, ARCHIVE, True)
if os.geteuid() == 0:
    pw = pwd.getpwnam("postgres")
    os.chown(ARCHIVE, pw.pw_uid, pw.pw_gid)
_obs = {}


def figures(env):
    if _obs:
        assert "restored" in _obs, "the backup and restore failed in an earlier case"
        return _obs
    _obs["started"] = True
    load = PostLoad(env, CLIENTS, 821077000000, "backup test", timeout=10)
    load.start()
    env.wait_for(lambda: len(load.select(202)) >= 50, timeout=60, interval=0.05, what="traffic flowing")
    # the base backup, while messages keep arriving
    before_backup = set(load.acked())
    backup = os.path.join(env.tmp, "base-backup")
    os.mkdir(backup, 0o700)
    if os.geteuid() == 0:
        os.chown(backup, pw.pw_uid, pw.pw_gid)
    t0 = time.monotonic()
    env._run(env._as_pg + [os.path.join(env.pg_bin, "pg_basebackup"), "-d",
                           f"host=127.0.0.1 port={env.pg_port} user=postgres connect_timeout=5",
                           "-D", backup, "-X", "stream", "-c", "fast", "--no-sync"],
             timeout=180, cwd=env.tmp, log=os.path.join(env.tmp, "basebackup.log"))
    _obs["backup_seconds"] = time.monotonic() - t0
    env.wait_for(lambda: len(load.acked()) >= len(before_backup) + 50, timeout=60, interval=0.05,
                 what="traffic after the backup")
    # the restore point: everything acknowledged before this call was committed before it
    acked_before_point = set(load.acked())
    env.sql("SELECT pg_create_restore_point('pushgate-t-backup')")
    point_set = time.monotonic()
    # sent after the point was set: committed after it, so not restored
    sent_after = lambda: {a.id for a in load.select(202, sent_after=point_set)}  # noqa: E731
    env.wait_for(lambda: len(sent_after()) >= 50, timeout=60, interval=0.05, what="traffic after the restore point")
    load.finish()
    acked_all = set(load.acked())
    _obs["sent_after_point"] = sent_after()
    # the segment holding the restore point (and what followed) closed, and archived
    closed = env.scalar("SELECT pg_walfile_name(pg_switch_wal())")
    env.wait_for(lambda: os.path.exists(os.path.join(ARCHIVE, closed)), timeout=60,
                 what=f"WAL segment {closed} archived")

    # restore: the old cluster goes away, the copy recovers to the point where it was
    env.stop_pushgated()
    env.stop_pg()
    old = env.pg_data + "-before-restore"
    os.rename(env.pg_data, old)
    os.rename(backup, env.pg_data)
    with open(os.path.join(env.pg_data, "postgresql.auto.conf"), "a", encoding="utf-8") as f:
        f.write(f"restore_command = 'cp {ARCHIVE}/%f %p'\n"
                "recovery_target_name = 'pushgate-t-backup'\n"
                "recovery_target_action = 'promote'\n")
    open(os.path.join(env.pg_data, "recovery.signal"), "w").close()
    if os.geteuid() == 0:
        for p in ("postgresql.auto.conf", "recovery.signal"):
            os.chown(os.path.join(env.pg_data, p), pw.pw_uid, pw.pw_gid)
    t0 = time.monotonic()
    env.start_pg()
    env.wait_for(lambda: env.scalar("SELECT pg_is_in_recovery()") == "f", timeout=120,
                 what="recovery to the restore point done")
    _obs["restore_seconds"] = time.monotonic() - t0
    ids = {int(x) for (x,) in env.sql("SELECT id FROM messages WHERE body = 'backup test'")}
    _obs.update(before_backup=before_backup, acked_before_point=acked_before_point, acked_all=acked_all,
                errors=len(load.errors()), restored=ids)
    shutil.rmtree(old, ignore_errors=True)
    env.start_pushgated()
    return _obs


@tests.case
def every_message_acknowledged_before_the_restore_point_is_restored(env):
    o = figures(env)
    missing_before_backup = o["before_backup"] - o["restored"]
    missing = o["acked_before_point"] - o["restored"]
    after = o["acked_all"] - o["acked_before_point"]
    print(f"# base backup {o['backup_seconds']:.1f} s during traffic; restore to the point "
          f"{o['restore_seconds']:.1f} s", flush=True)
    print(f"# acknowledged before the backup: {len(o['before_backup'])}, restored "
          f"{len(o['before_backup']) - len(missing_before_backup)}", flush=True)
    print(f"# acknowledged before the restore point: {len(o['acked_before_point'])}, restored "
          f"{len(o['acked_before_point']) - len(missing)}", flush=True)
    print(f"# acknowledged after the restore point: {len(after)}, of which restored "
          f"{len(after & o['restored'])} (committed before the point), lost to the restore "
          f"{len(after - o['restored'])}", flush=True)
    assert not missing_before_backup, sorted(missing_before_backup)[:10]
    assert not missing, sorted(missing)[:10]
    back = o["sent_after_point"] & o["restored"]
    assert not back, f"sent after the restore point, yet restored: {sorted(back)[:10]}"


@tests.case
def nothing_is_restored_that_was_never_acknowledged(env):
    o = figures(env)
    phantom = o["restored"] - o["acked_all"]
    # a request the client gave up on may have committed: only those may be there unacknowledged
    assert len(phantom) <= o["errors"], (sorted(phantom)[:10], o["errors"])


@tests.case
def pushgated_resumes_on_the_restored_database(env):
    figures(env)
    env.wait_for(lambda: env.scalar(
        "SELECT count(*) FROM recipients WHERE state IN ('ACCEPTED', 'SMS_QUEUED', 'SMS_SUBMITTED')") == "0",
        timeout=60, what="what was queued or submitted at the restore point sent on")
    waiting = int(env.scalar("SELECT count(*) FROM recipients WHERE state = 'SMS_ACCEPTED'"))
    final = int(env.scalar("SELECT count(*) FROM recipients WHERE final_at IS NOT NULL"))
    print(f"# after the restart: {final} recipients final, {waiting} waiting for a receipt "
          f"(the carrier sent some before the restore, to the old database)", flush=True)
    assert env.health()["db"] == "up"
    body = env.send(["821077999991"], text="after the restore")
    rid = int(body["recipients"][0]["id"])
    env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE id = {rid}") == "SMS_DELIVERED",
                 timeout=30, what="a new message delivered after the restore")


tests.run(dlr_delay_ms=50, pg_opts=(f"-c wal_level=replica -c archive_mode=on "
                                    f"-c archive_command='test ! -f {ARCHIVE}/%f && cp %p {ARCHIVE}/%f'"))
